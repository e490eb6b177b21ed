/* engine/bitnet.h — the engine: GGUF files, models, the forward pass, tokenizer,
 * sampler and chat format.  The only header outside code includes from engine/.
 * Depends on simd/simd.h.
 *
 * Memory: every function says who frees what.  Errors: functions that can fail take
 * a `struct bn_err *` (may be NULL) and fill it with one sentence naming the file,
 * the field and the limit.
 */
#ifndef BN_BITNET_H
#define BN_BITNET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "simd.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------
 * Errors
 * --------------------------------------------------------------------------- */
#define BN_ERR_MSG_MAX 512
struct bn_err {
    char msg[BN_ERR_MSG_MAX];
};
/* printf into err (if non-NULL); returns -1 so callers can `return bn_errf(...)`. */
int bn_errf(struct bn_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ------------------------------------------------------------------------------
 * GGUF (v2, v3) reader — engine/gguf.c
 *
 * Parses a memory region (a mapped file or a shared-memory segment) in place: keys,
 * strings and tensor data point into the region; nothing is copied.  Every count,
 * offset, dimension and string length is checked against the region.
 * --------------------------------------------------------------------------- */
#define BN_GGUF_MAGIC 0x46554747u /* "GGUF" little-endian */
#define BN_GGUF_DEFAULT_ALIGNMENT 32
#define BN_GGUF_MAX_DIMS 4
#define BN_GGUF_MAX_NAME 64 /* ggml's tensor name limit, incl. NUL */
#define BN_GGUF_MAX_ARRAY_DEPTH 8 /* arrays of arrays nested deeper are rejected */

enum bn_gguf_vtype {
    BN_GGUF_UINT8 = 0,
    BN_GGUF_INT8 = 1,
    BN_GGUF_UINT16 = 2,
    BN_GGUF_INT16 = 3,
    BN_GGUF_UINT32 = 4,
    BN_GGUF_INT32 = 5,
    BN_GGUF_FLOAT32 = 6,
    BN_GGUF_BOOL = 7,
    BN_GGUF_STRING = 8,
    BN_GGUF_ARRAY = 9,
    BN_GGUF_UINT64 = 10,
    BN_GGUF_INT64 = 11,
    BN_GGUF_FLOAT64 = 12,
};

/* A string inside the region: not NUL-terminated. */
struct bn_str {
    const char *ptr;
    uint64_t len;
};

struct bn_gguf_tensor {
    struct bn_str name;
    uint32_t n_dims;
    int64_t ne[BN_GGUF_MAX_DIMS]; /* ne[0] fastest; unused dims = 1 */
    enum bn_type type;
    uint64_t offset;   /* from the start of the data section */
    uint64_t bytes;    /* bn_tensor_bytes(type, ne[1]*ne[2]*ne[3], ne[0]) */
    const void *data;  /* into the region; NULL when opened with BN_GGUF_HEADER_ONLY */
};

struct bn_gguf;

enum {
    /* The region holds the header, metadata and tensor infos only (e.g. a copy kept
     * in a segment); tensor data bounds are not checked and data pointers are NULL. */
    BN_GGUF_HEADER_ONLY = 1u << 0,
};

/* Parse `size` bytes at `base`.  `label` (usually the file path) starts every error
 * message.  On success *out is owned by the caller (bn_gguf_close); the region must
 * outlive it.  Returns 0 or -1 with err filled. */
int bn_gguf_open(struct bn_gguf **out, const void *base, uint64_t size, const char *label,
                 unsigned flags, struct bn_err *err);
void bn_gguf_close(struct bn_gguf *g);

uint32_t bn_gguf_version(const struct bn_gguf *g);
uint64_t bn_gguf_alignment(const struct bn_gguf *g);
uint64_t bn_gguf_data_offset(const struct bn_gguf *g); /* start of the data section */
const char *bn_gguf_label(const struct bn_gguf *g);

/* Metadata.  Keys are looked up by exact name; -1 when absent. */
int64_t bn_gguf_n_kv(const struct bn_gguf *g);
int64_t bn_gguf_find_key(const struct bn_gguf *g, const char *key);
struct bn_str bn_gguf_key(const struct bn_gguf *g, int64_t i);
enum bn_gguf_vtype bn_gguf_kv_type(const struct bn_gguf *g, int64_t i);
/* Typed getters by key name.  Integer getters accept any integer type whose value
 * fits; float getters accept F32/F64.  Return 0, -1 when absent (err says "key 'x'
 * is missing"; for optional keys pass NULL, or bn_gguf_find_key first), -1 with err
 * when present but of a wrong type or out of range.  Strings point into the region. */
int bn_gguf_get_u64(const struct bn_gguf *g, const char *key, uint64_t *out, struct bn_err *err);
int bn_gguf_get_i64(const struct bn_gguf *g, const char *key, int64_t *out, struct bn_err *err);
int bn_gguf_get_u32(const struct bn_gguf *g, const char *key, uint32_t *out, struct bn_err *err);
int bn_gguf_get_f32(const struct bn_gguf *g, const char *key, float *out, struct bn_err *err);
int bn_gguf_get_bool(const struct bn_gguf *g, const char *key, bool *out, struct bn_err *err);
int bn_gguf_get_str(const struct bn_gguf *g, const char *key, struct bn_str *out, struct bn_err *err);
/* Arrays: element type, count, and element access, all O(1).  Nested arrays are
 * parsed and bounds-checked; bn_gguf_arr_sub() gives an element that is itself an
 * array.  A bn_gguf_arr is a view valid while g is open; nothing to free.  Element
 * getters return 0 / {NULL, 0} / -1 for an index >= n or a wrong element type;
 * bn_gguf_arr_int reads u8..i64 and bool (u64 above INT64_MAX wraps). */
struct bn_gguf_arr {
    enum bn_gguf_vtype type; /* element type */
    uint64_t n;
    const void *data;        /* first element in the region; fixed-size elements are
                                n * size packed, little-endian, unaligned */
    const struct bn_gguf *g;
    int64_t kv;              /* owning key index */
    uint64_t sub;            /* internal: the reader's index node of this array (for
                                STRING/ARRAY elements it holds each element's offset) */
};
int bn_gguf_get_arr(const struct bn_gguf *g, const char *key, struct bn_gguf_arr *out, struct bn_err *err);
struct bn_str bn_gguf_arr_str(const struct bn_gguf_arr *a, uint64_t i); /* type STRING */
int64_t bn_gguf_arr_int(const struct bn_gguf_arr *a, uint64_t i);      /* integer types */
double bn_gguf_arr_float(const struct bn_gguf_arr *a, uint64_t i);     /* F32/F64 */
int bn_gguf_arr_sub(const struct bn_gguf_arr *a, uint64_t i, struct bn_gguf_arr *out); /* type ARRAY */

/* Tensors, in file order. */
int64_t bn_gguf_n_tensors(const struct bn_gguf *g);
const struct bn_gguf_tensor *bn_gguf_tensor(const struct bn_gguf *g, int64_t i);
const struct bn_gguf_tensor *bn_gguf_find_tensor(const struct bn_gguf *g, const char *name);

/* Map a whole file read-only (MAP_PRIVATE).  Errors name the path. */
struct bn_mapped_file {
    void *base;
    uint64_t size;
};
int bn_map_file(const char *path, struct bn_mapped_file *out, struct bn_err *err);
void bn_unmap_file(struct bn_mapped_file *m);

/* ------------------------------------------------------------------------------
 * GGUF writer — engine/gguf_write.c.  Writes GGUF v3 with alignment; keys and
 * tensors in the order they were added.  Tensor bytes come from a callback so that
 * a 1.2 GB model is written without holding it in memory.
 *
 * The set/add calls copy keys, names and values (not add_tensor_data's bytes) and
 * return 0, or -1 on a bad key/name/shape/type, a duplicate tensor name or out of
 * memory; the first such failure is kept and bn_gguf_writer_write then fails with
 * it, so a caller may check only the final write.  Setting a key again replaces its
 * value in place (it keeps its first position).
 * --------------------------------------------------------------------------- */
struct bn_gguf_writer;
/* Fill `bytes` bytes of tensor data at dst (called once per tensor, in order, during
 * bn_gguf_writer_write; dst is the writer's buffer, reused); return 0 or -1 (err
 * filled). */
typedef int (*bn_tensor_fill_fn)(void *ctx, void *dst, uint64_t bytes, struct bn_err *err);

struct bn_gguf_writer *bn_gguf_writer_new(void); /* NULL only on out of memory */
void bn_gguf_writer_free(struct bn_gguf_writer *w);
/* Tensor data alignment (a non-zero power of two): sets the u32 key
 * general.alignment, which is what the written file's alignment follows (it may
 * also come from bn_gguf_set_from); without the key the alignment is 32. */
void bn_gguf_writer_set_alignment(struct bn_gguf_writer *w, uint32_t alignment);
/* fsync the file (and its folder after the rename) before returning; default off. */
void bn_gguf_writer_set_fsync(struct bn_gguf_writer *w, bool on);
int bn_gguf_set_u32(struct bn_gguf_writer *w, const char *key, uint32_t v);
int bn_gguf_set_i32(struct bn_gguf_writer *w, const char *key, int32_t v);
int bn_gguf_set_u64(struct bn_gguf_writer *w, const char *key, uint64_t v);
int bn_gguf_set_f32(struct bn_gguf_writer *w, const char *key, float v);
int bn_gguf_set_bool(struct bn_gguf_writer *w, const char *key, bool v);
int bn_gguf_set_str(struct bn_gguf_writer *w, const char *key, const char *v);
/* Arrays of fixed-size elements (copied), and of strings (copied). */
int bn_gguf_set_arr(struct bn_gguf_writer *w, const char *key, enum bn_gguf_vtype type,
                    const void *data, uint64_t n);
int bn_gguf_set_arr_str(struct bn_gguf_writer *w, const char *key, const char *const *v,
                        uint64_t n);
/* Raw value copied from a reader (any type, nested arrays included). */
int bn_gguf_set_from(struct bn_gguf_writer *w, const struct bn_gguf *src, int64_t kv);
/* Tensor whose bytes (bn_tensor_bytes of type/shape) are produced by fill(ctx, ...)
 * when the file is written.  ne has n_dims entries. */
int bn_gguf_add_tensor(struct bn_gguf_writer *w, const char *name, enum bn_type type,
                       uint32_t n_dims, const int64_t *ne, bn_tensor_fill_fn fill, void *ctx);
/* Tensor whose bytes are copied from memory (kept by the caller until write). */
int bn_gguf_add_tensor_data(struct bn_gguf_writer *w, const char *name, enum bn_type type,
                            uint32_t n_dims, const int64_t *ne, const void *data);
/* Write the file: PATH.tmp first, renamed over PATH when complete (removed on
 * failure).  Each tensor is padded with zero bytes to the alignment.  The writer
 * can be written again or freed afterwards.  Returns 0 or -1 with err filled. */
int bn_gguf_writer_write(struct bn_gguf_writer *w, const char *path, struct bn_err *err);

/* ------------------------------------------------------------------------------
 * Packing plan — engine/pack.c
 *
 * Which layout each tensor of a model takes in memory for one kernel path.  The
 * plain loader uses it to repack what the kernels want repacked (the rest is used in
 * place from the mapped file); the daemon's resident store uses it to lay out a
 * shared-memory segment and to fill it as file chunks arrive.
 * --------------------------------------------------------------------------- */
struct bn_pack_entry {
    char name[BN_GGUF_MAX_NAME]; /* tensor name, NUL-terminated */
    int64_t tensor_index;        /* index in the GGUF tensor table */
    enum bn_type src_type;       /* as stored in the file */
    enum bn_type dst_type;       /* as the kernels want it (== src_type: copied as is) */
    int64_t rows, cols;          /* rows = ne[1]*ne[2]*ne[3], cols = ne[0] */
    uint64_t src_offset;         /* absolute offset in the file */
    uint64_t src_bytes;
    uint64_t dst_bytes;          /* bytes in dst_type */
};
struct bn_pack_plan {
    struct bn_pack_entry *entries; /* n entries, GGUF tensor order; owned by the plan */
    size_t n;
    enum bn_path path;
    uint32_t layout_id; /* changes whenever any packed layout of this build/path changes */
};
/* prefer_ternary: BN_TYPE_COUNT (fastest measured on this path), or BN_TYPE_I2_S /
 * BN_TYPE_TL1 / BN_TYPE_TL2 to force a layout for every ternary matrix. */
int bn_pack_plan_make(struct bn_pack_plan *plan, const struct bn_gguf *g, enum bn_path path,
                      enum bn_type prefer_ternary, struct bn_err *err);
void bn_pack_plan_free(struct bn_pack_plan *plan);
/* Produce entry e's bytes in dst (e->dst_bytes) from src (e->src_bytes file bytes). */
int bn_pack_tensor(const struct bn_pack_plan *plan, const struct bn_pack_entry *e,
                   const void *src, void *dst, struct bn_err *err);

/* ------------------------------------------------------------------------------
 * Models — engine/model.c
 * --------------------------------------------------------------------------- */
struct bn_model_params {
    int n_threads;               /* <= 0: one per core */
    enum bn_path path;           /* BN_PATH_COUNT: bn_path_default() */
    enum bn_type ternary_layout; /* BN_TYPE_COUNT: fastest; or I2_S / TL1 / TL2 */
    bool no_act_quant;           /* reference mode: float activations into ternary matmuls */
    bool reference;              /* run the scalar reference forward pass */
    /* Requantize an F32/F16/BF16 LM head to Q8_0 at load (off by default): the tied
     * head of the 2B-4T file is 656 MB in F16 and is read once per decoded token, so
     * an 8-bit copy (349 MB, private to the model, not shared) speeds decode by ~1/3.
     * Logits change slightly (docs/ARCHITECTURE.md gives the measured effect); the
     * embedding lookup keeps reading the file's rows.  Ignored for other head types
     * and by the reference pass. */
    bool head_q8;
};
void bn_model_params_default(struct bn_model_params *p);

/* Tensor data already laid out by a pack plan (e.g. in a shared-memory segment):
 * data[i] holds plan->entries[i] in its dst_type.  Not owned by the model. */
struct bn_model_source {
    const struct bn_gguf *meta;        /* metadata + tensor infos (may be HEADER_ONLY) */
    const struct bn_pack_plan *plan;   /* NULL: tensors from meta's region, packed as needed */
    const void *const *data;           /* plan->n pointers, when plan != NULL */
};

/* Loading.  A model is immutable once loaded: any number of contexts (and threads)
 * may evaluate it at once.
 *
 * Accepted files: general.architecture "bitnet-b1.58" or "bitnet-25" (metadata keys
 * are prefixed with it), the 2B-4T graph of REFERENCE §1-2: ternary projections in
 * I2_S, TQ2_0 or TQ1_0; token_embd in F32, F16, Q8_0 or Q6_K; F32 norms; the LM head
 * tied to token_embd when `output.weight` is absent.  Every hyperparameter is
 * checked against the limits below and against the others (n_embd % n_head, n_head %
 * n_head_kv, rope.dimension_count == head dim and even), and every tensor's presence,
 * type and shape against the hyperparameters, before anything is used; errors name
 * the file, the key or the tensor, e.g.
 *   "m.gguf: tensor 'blk.3.attn_k.weight' has shape [2560, 512], expected [2560, 640]".
 * Tensor data is used in place (mapped file or the source's pointers); only tensors
 * whose layout for the kernel path differs from the file's are repacked, once, into
 * memory the model owns (bn_model_info.private_bytes). */
#define BN_MODEL_MAX_LAYERS 1024
#define BN_MODEL_MAX_EMBD 65536
#define BN_MODEL_MAX_FF (1 << 20)
#define BN_MODEL_MAX_HEADS 4096
#define BN_MODEL_MAX_VOCAB (1 << 24)
#define BN_MODEL_MAX_CTX (1 << 20) /* positions; bounds n_ctx_train and bn_ctx n_ctx */
#define BN_MODEL_ARCH_MAX 32
#define BN_MODEL_NAME_MAX 128

struct bn_model;

/* Map `path` (bn_map_file), parse it and load it; the model owns the mapping and the
 * parsed metadata.  params may be NULL (bn_model_params_default).  On success *out
 * is owned by the caller (bn_model_free).  Returns 0, or -1 with err filled. */
int bn_model_load_file(const char *path, const struct bn_model_params *params,
                       struct bn_model **out, struct bn_err *err);
/* Load from already parsed metadata.  src->plan == NULL: tensor data comes from
 * src->meta's region (not HEADER_ONLY), repacked where the pack plan of params->path
 * says so.  src->plan != NULL: src->data[i] holds plan->entries[i] in its dst_type
 * and is used without copying; params->path must be BN_PATH_COUNT or plan->path.
 * Nothing of src is owned: meta, plan and the data must outlive the model. */
int bn_model_open(const struct bn_model_source *src, const struct bn_model_params *params,
                  struct bn_model **out, struct bn_err *err);
void bn_model_free(struct bn_model *m); /* NULL is fine */

struct bn_model_info {
    char arch[BN_MODEL_ARCH_MAX]; /* "bitnet-b1.58" or "bitnet-25" */
    char name[BN_MODEL_NAME_MAX]; /* general.name (truncated), "" when absent */
    int32_t n_vocab;
    int64_t n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_ctx_train;
    float rope_theta, rms_eps;
    enum bn_type ternary_type; /* of the projections; BN_TYPE_COUNT when they differ */
    enum bn_type embd_type;    /* token_embd */
    enum bn_type head_type;    /* output.weight, or embd_type when tied (file type) */
    enum bn_type head_layout;  /* as the head GEMV reads it: head_type, or Q8_0 (head_q8) */
    bool tied_head;
    enum bn_path path;         /* kernel path the matrices are laid out for */
    uint64_t n_params;         /* elements of all tensors the model uses */
    uint64_t weight_bytes;     /* bytes of those tensors as the kernels read them */
    uint64_t private_bytes;    /* of which repacked into memory owned by the model */
};
/* Valid while m lives. */
const struct bn_model_info *bn_model_get_info(const struct bn_model *m);
/* The params the model was loaded with (path resolved to the one in use). */
const struct bn_model_params *bn_model_get_params(const struct bn_model *m);
/* The metadata (tokenizer keys, chat template...), valid while m lives. */
const struct bn_gguf *bn_model_gguf(const struct bn_model *m);

/* One tensor the model uses, in GGUF order (for `show`). */
struct bn_model_tensor {
    const char *name;      /* NUL-terminated, valid while m lives */
    enum bn_type file_type;
    enum bn_type layout;   /* as the kernels read it (== file_type unless repacked) */
    int64_t rows, cols;    /* rows = ne[1], cols = ne[0] (1-D: rows = 1) */
    uint64_t bytes;        /* in layout */
    bool repacked;         /* in private memory rather than in place */
};
int64_t bn_model_n_tensors(const struct bn_model *m);
/* false when i is out of range. */
bool bn_model_tensor_at(const struct bn_model *m, int64_t i, struct bn_model_tensor *out);

/* Bytes the KV cache of ONE sequence holding n_ctx positions takes (K and V of every
 * layer, in BN_KV_DEFAULT_TYPE, rounded up to whole BN_KV_CHUNK_TOKENS chunks).
 * n_ctx <= 0: the model's context length. */
uint64_t bn_model_kv_bytes(const struct bn_model *m, int64_t n_ctx);

/* ------------------------------------------------------------------------------
 * Contexts, sequences, batches — engine/context.c, kvcache.c, batch.c,
 * forward.c (fast path), forward_ref.c (scalar reference pass)
 *
 * A context evaluates one model for up to n_seq_max independent sequences, each with
 * its own KV cache of at most n_ctx positions.  KV memory is allocated lazily, per
 * sequence, in chunks of BN_KV_CHUNK_TOKENS positions (all layers), when a batch
 * first writes into a chunk, and returned by bn_seq_clear / bn_seq_truncate /
 * bn_seq_free: a daemon with many sequences pays only for the tokens they hold.
 * One bn_decode call evaluates a batch: any mix of tokens of any open sequences
 * (prefill of a prompt, one decode step of several sequences, or both), with each
 * weight matrix streamed once per call.  A context is used by one thread at a time;
 * it owns a thread pool (or borrows one) that splits each step.  Results do not
 * depend on the number of threads, nor (for a token) on what else is in the batch:
 * no deterministic mode is needed.
 * --------------------------------------------------------------------------- */
#define BN_KV_CHUNK_TOKENS 128         /* positions per KV allocation */
#define BN_KV_DEFAULT_TYPE BN_TYPE_F16 /* like the peer (bitnet.cpp) */
#define BN_CTX_DEFAULT_BATCH 512       /* entries per bn_decode call */
#define BN_CTX_MAX_BATCH 65536
#define BN_CTX_MAX_SEQ 4096

struct bn_ctx_params {
    int64_t n_ctx;        /* positions per sequence; <= 0: the model's context length */
    int32_t n_seq_max;    /* sequences; <= 0: 1 */
    int64_t n_batch;      /* max entries per bn_decode; <= 0: BN_CTX_DEFAULT_BATCH
                           * (activation scratch is n_batch x ~(4 n_embd + 2 n_ff) floats) */
    int n_threads;        /* <= 0: the model params' n_threads (<= 0 there: one per core) */
    struct bn_pool *pool; /* non-NULL: run on this pool (not owned; n_threads ignored) */
    enum bn_type kv_type; /* BN_TYPE_F16 or BN_TYPE_F32 */
};
void bn_ctx_params_default(struct bn_ctx_params *p);

struct bn_ctx;
/* m must outlive the context.  p may be NULL (defaults).  Allocates the scratch for
 * n_batch entries; no KV memory yet.  Caller frees with bn_ctx_free. */
int bn_ctx_new(const struct bn_model *m, const struct bn_ctx_params *p, struct bn_ctx **out,
               struct bn_err *err);
void bn_ctx_free(struct bn_ctx *c); /* NULL is fine */
const struct bn_model *bn_ctx_model(const struct bn_ctx *c);
int64_t bn_ctx_n_ctx(const struct bn_ctx *c);
int32_t bn_ctx_n_seq_max(const struct bn_ctx *c);
int64_t bn_ctx_n_batch(const struct bn_ctx *c);
uint64_t bn_ctx_kv_bytes(const struct bn_ctx *c); /* KV memory allocated right now */

/* Sequences are slots 0..n_seq_max-1.  bn_seq_new opens a free slot (empty cache)
 * and stores its id; -1 with err when all are open.  bn_seq_free closes one and
 * returns its KV memory.  bn_seq_clear empties an open sequence (memory returned);
 * bn_seq_truncate keeps its first n tokens (e.g. the common prefix of a chat
 * session's next prompt) and returns the chunks past them.  Errors: bad or closed id,
 * n > length. */
int bn_seq_new(struct bn_ctx *c, int32_t *seq, struct bn_err *err);
void bn_seq_free(struct bn_ctx *c, int32_t seq); /* closed or bad ids are ignored */
int bn_seq_clear(struct bn_ctx *c, int32_t seq, struct bn_err *err);
int bn_seq_truncate(struct bn_ctx *c, int32_t seq, int64_t n_tokens, struct bn_err *err);
int64_t bn_seq_len(const struct bn_ctx *c, int32_t seq); /* tokens cached; -1 if not open */

/* A batch: entry i feeds token[i] to sequence seq[i] at position pos[i] and asks for
 * the logits after it when logits[i].  The entries of one sequence must continue its
 * cache in batch order (first pos == bn_seq_len, then +1 each; entries of different
 * sequences may interleave) and stay below n_ctx.  Start from {0} or bn_batch_init. */
struct bn_batch {
    int64_t n, cap;
    int32_t *token; /* [cap] */
    int32_t *seq;   /* [cap] */
    int64_t *pos;   /* [cap] */
    bool *logits;   /* [cap] */
};
/* Allocate room for cap entries (n = 0).  Free with bn_batch_free. */
int bn_batch_init(struct bn_batch *b, int64_t cap, struct bn_err *err);
void bn_batch_free(struct bn_batch *b);
void bn_batch_clear(struct bn_batch *b); /* n = 0 */
/* Append one entry; -1 with err when the batch is full. */
int bn_batch_add(struct bn_batch *b, int32_t token, int32_t seq, int64_t pos, bool want_logits,
                 struct bn_err *err);

/* Evaluate a batch: append each entry's K/V to its sequence and compute the logits
 * asked for.  The whole batch is checked first (token ids < n_vocab, sequence open,
 * positions continuing each sequence and < n_ctx, n <= n_batch, KV memory
 * available); on error nothing is changed and err names the entry.  Uses the fast
 * path, or the scalar reference pass when the model params say `reference`. */
int bn_decode(struct bn_ctx *c, const struct bn_batch *b, struct bn_err *err);
/* Logits [n_vocab] after entry i of the last bn_decode, or NULL when entry i did not
 * ask for them.  Owned by the context; valid until the next bn_decode. */
const float *bn_ctx_logits(const struct bn_ctx *c, int64_t i);

/* ------------------------------------------------------------------------------
 * Tokenizer / sampler / chat — engine/vocab.c, vocab_gguf.c, tokenizer.c,
 * tokenizer_decode.c, tokenizer_buf.c, utf8.c, sampler.c, chat.c, chat_stop.c
 *
 * Byte-level BPE over a GGUF `gpt2` vocabulary with the Llama-3 pre-tokenizer
 * (REFERENCE §6).  A vocabulary is immutable once built: any number of threads may
 * tokenize / detokenize with the same `struct bn_vocab` at once (all scratch memory
 * is per call).
 * --------------------------------------------------------------------------- */

/* Token types as stored in tokenizer.ggml.token_type (llama.cpp's numbering). */
enum bn_token_type {
    BN_TOKEN_UNDEFINED = 0,
    BN_TOKEN_NORMAL = 1,       /* byte-level BPE text (GPT-2 byte-to-unicode mapped) */
    BN_TOKEN_UNKNOWN = 2,
    BN_TOKEN_CONTROL = 3,      /* <|begin_of_text|> ...: matched/rendered only on request */
    BN_TOKEN_USER_DEFINED = 4, /* literal text, always matched as a whole */
    BN_TOKEN_UNUSED = 5,
    BN_TOKEN_BYTE = 6,
};

#define BN_VOCAB_MAX_TOKENS (1 << 24)       /* ids are int32; 16 M tokens is far beyond any model */
#define BN_VOCAB_MAX_TOKEN_BYTES 4096       /* longest accepted token text */
#define BN_VOCAB_MAX_MERGES (1 << 24)
#define BN_TOKENIZE_MAX_BYTES (256u << 20)  /* longest text one bn_tokenize call accepts */

struct bn_vocab;

/* Everything a vocabulary is built from; both the GGUF loader and test loaders
 * (e.g. from a Hugging Face tokenizer.json) fill this and call bn_vocab_from_arrays.
 * Strings are copied: the arrays may be freed after the call. */
struct bn_vocab_spec {
    const char *label;            /* starts every error message (usually the file path) */
    const struct bn_str *tokens;  /* [n_tokens] texts as in tokenizer.ggml.tokens */
    const int32_t *types;         /* [n_tokens] enum bn_token_type; NULL: all NORMAL */
    size_t n_tokens;
    const struct bn_str *merges;  /* [n_merges] "left right", rank order (rank = index) */
    size_t n_merges;
    struct bn_str pre;            /* tokenizer.ggml.pre; ptr == NULL when absent */
    int64_t bos_id, eos_id;       /* -1: none */
    int64_t eot_id;               /* -1: look up "<|eot_id|>" by text */
    bool add_bos;                 /* tokenizer.ggml.add_bos_token */
};
/* Build a vocabulary.  Fails (-1, err filled) on: a bos/eos/eot id out of range, a
 * token type outside 0..6, an over-long token text, a NORMAL token whose text is not byte-level mapped, a
 * merge whose parts or result are not tokens, a missing single-byte token, or a
 * pre-tokenizer other than Llama-3's (accepted: pre "llama-bpe", "llama3",
 * "llama-v3", or no pre with exactly 128256 tokens — the 2B-4T file, REFERENCE §6).
 * Tokens with the same text: lookups give the lowest id.  On success *out is owned
 * by the caller (bn_vocab_free). */
int bn_vocab_from_arrays(struct bn_vocab **out, const struct bn_vocab_spec *spec,
                         struct bn_err *err);
/* Build from the tokenizer.ggml.* keys of a parsed GGUF (tokenizer.ggml.model must be
 * "gpt2").  Nothing of g is referenced afterwards. */
int bn_vocab_from_gguf(struct bn_vocab **out, const struct bn_gguf *g, struct bn_err *err);
void bn_vocab_free(struct bn_vocab *v); /* NULL is fine */

int32_t bn_vocab_n_tokens(const struct bn_vocab *v);
int32_t bn_vocab_bos(const struct bn_vocab *v); /* -1 when the vocabulary has none */
int32_t bn_vocab_eos(const struct bn_vocab *v);
int32_t bn_vocab_eot(const struct bn_vocab *v); /* tokenizer.ggml.eot_token_id or "<|eot_id|>" */
bool bn_vocab_add_bos(const struct bn_vocab *v); /* tokenizer.ggml.add_bos_token */
/* End of generation: eos, eot, and the CONTROL tokens "<|end_of_text|>" / "<|endoftext|>". */
bool bn_vocab_is_eog(const struct bn_vocab *v, int32_t id);
/* false for ids out of range. */
bool bn_vocab_is_control(const struct bn_vocab *v, int32_t id);
enum bn_token_type bn_vocab_token_type(const struct bn_vocab *v, int32_t id); /* UNDEFINED when out of range */
/* The token's text as stored in the vocabulary (byte-level mapped for NORMAL tokens,
 * e.g. "Ġthe"), pointing into v; {NULL, 0} when id is out of range. */
struct bn_str bn_vocab_token_text(const struct bn_vocab *v, int32_t id);
/* The bytes the token stands for (" the"): literal text for CONTROL/USER_DEFINED
 * tokens.  Points into v; {NULL, 0} when id is out of range. */
struct bn_str bn_vocab_token_bytes(const struct bn_vocab *v, int32_t id);
/* Id of the token whose stored text is exactly s[0..len), or -1. */
int32_t bn_vocab_find(const struct bn_vocab *v, const char *s, size_t len);

/* A growable array of token ids.  Start from {0}; free with bn_tokens_free. */
struct bn_tokens {
    int32_t *ids;
    size_t n, cap;
};
void bn_tokens_free(struct bn_tokens *t);
/* Append one id (grows the array); -1 (err filled) only when out of memory. */
int bn_tokens_push(struct bn_tokens *t, int32_t id, struct bn_err *err);

/* A growable byte string, kept NUL-terminated (data[len] == 0) for convenience; the
 * bytes themselves may contain NULs.  Start from {0}; free with bn_bytes_free. */
struct bn_bytes {
    char *data;
    size_t len, cap;
};
void bn_bytes_free(struct bn_bytes *b);
int bn_bytes_append(struct bn_bytes *b, const void *p, size_t n, struct bn_err *err);

/* Tokenize text[0..len) and APPEND the ids to out (prepending bos when add_bos and
 * the vocabulary has one).  parse_special: CONTROL token texts in the input become
 * their ids (leftmost-longest match); otherwise they are tokenized as plain text.
 * USER_DEFINED tokens are always matched.  Any bytes are accepted: maximal runs of
 * valid UTF-8 are split by the pre-tokenizer regex, and each run of invalid bytes is
 * one piece of its own (encoded with single-byte tokens / their merges), so
 * decoding gives back the input bytes exactly.  The regex runs in PCRE2 (UTF + UCP),
 * whose \s also matches U+180E (MONGOLIAN VOWEL SEPARATOR), which the Hugging Face
 * tokenizer's regex engine (Oniguruma) does not: text with U+180E next to spaces may
 * split differently there; all reference cases agree.  -1 with err on a text longer than
 * BN_TOKENIZE_MAX_BYTES or out of memory (out keeps what it had before the call). */
int bn_tokenize(const struct bn_vocab *v, const char *text, size_t len, bool add_bos,
                bool parse_special, struct bn_tokens *out, struct bn_err *err);

/* Append the bytes of ids[0..n) to out.  render_special: CONTROL (and UNKNOWN /
 * UNUSED) tokens render as their text; otherwise as nothing.  -1 with err naming the
 * position and id when an id is out of range (out then holds the bytes before it). */
int bn_detokenize(const struct bn_vocab *v, const int32_t *ids, size_t n, bool render_special,
                  struct bn_bytes *out, struct bn_err *err);

/* Streaming detokenizer, one per sequence: it never emits part of a UTF-8 sequence
 * that a later token may complete; bytes that can never be completed (invalid UTF-8)
 * are passed through unchanged.  Plain struct, no allocation: zero it or call
 * bn_detok_init. */
struct bn_detok {
    uint8_t held[4]; /* incomplete UTF-8 sequence carried to the next token */
    uint8_t n_held;
    bool render_special;
};
void bn_detok_init(struct bn_detok *d, bool render_special);
/* Append the complete text of token id to out; -1 with err when id is out of range. */
int bn_detok_push(struct bn_detok *d, const struct bn_vocab *v, int32_t id, struct bn_bytes *out,
                  struct bn_err *err);
/* Append held bytes (an unfinished sequence at the end of generation) and reset. */
int bn_detok_flush(struct bn_detok *d, struct bn_bytes *out, struct bn_err *err);

/* Sampler, one per sequence: its own PRNG (xoshiro256** seeded through splitmix64),
 * so the same seed and the same logits give the same tokens whatever the threads.
 * Order: penalties -> greedy (temperature 0) or temperature -> top-k -> top-p ->
 * min-p -> draw.  top-p and min-p apply to the tempered distribution (top-p to what
 * top-k kept).  Tokens less likely than 2^-64 times the best one are never drawn
 * (a 53-bit uniform draw could not pick them anyway).  Cost per call: two passes
 * over the logits plus O(kept) work, no sort; memory: 12 bytes per logit (+ 4 with
 * penalties). */
#define BN_SAMPLER_MAX_PENALTY_WINDOW 65536 /* tokens of history the penalties look at */
struct bn_sampler_params {
    float temperature;       /* >= 0; 0 = greedy (argmax, lowest id on ties) */
    int32_t top_k;           /* >= 0; 0 = off */
    float top_p;             /* (0, 1]; 1 = off */
    float min_p;             /* [0, 1]; 0 = off; keeps p >= min_p * p_max */
    float repeat_penalty;    /* > 0; 1 = off; llama.cpp rule: logit > 0 ? l / r : l * r */
    float presence_penalty;  /* finite; 0 = off; subtracted once per token present */
    float frequency_penalty; /* finite; 0 = off; subtracted per occurrence */
    int32_t penalty_last_n;  /* [0, BN_SAMPLER_MAX_PENALTY_WINDOW]; 0 = penalties off */
    uint64_t seed;
};
/* temperature 0.8, top_k 40, top_p 0.95, min_p 0.05, penalties off (1/0/0, last 64), seed 0. */
void bn_sampler_params_default(struct bn_sampler_params *p);
/* 0, or -1 with err naming the field, its value and the accepted range. */
int bn_sampler_params_check(const struct bn_sampler_params *p, struct bn_err *err);

struct bn_sampler;
/* Checks p; n_vocab = logits per call.  Caller frees with bn_sampler_free. */
struct bn_sampler *bn_sampler_new(const struct bn_sampler_params *p, int32_t n_vocab,
                                  struct bn_err *err);
void bn_sampler_free(struct bn_sampler *s);
/* Add a token to the penalty history (prompt tokens and each sampled token). */
void bn_sampler_accept(struct bn_sampler *s, int32_t id);
/* Forget the history and restart the PRNG from the seed. */
void bn_sampler_reset(struct bn_sampler *s);
/* Choose a token from logits[n_vocab] (not modified).  Does NOT accept it: call
 * bn_sampler_accept.  Returns the id, or -1 with err if no logit is finite. */
int32_t bn_sampler_sample(struct bn_sampler *s, const float *logits, struct bn_err *err);

/* Chat formats (REFERENCE §7). */
enum bn_chat_format {
    BN_CHAT_NONE = 0, /* no known format: callers pass raw prompts */
    BN_CHAT_BITNET,   /* 2B-4T: <|begin_of_text|>Role: content<|eot_id|>...Assistant: */
    BN_CHAT_LLAMA3,   /* <|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|> */
};
const char *bn_chat_format_name(enum bn_chat_format f); /* "none", "bitnet", "llama3" */
/* From general.architecture and tokenizer.chat_template (either may be {NULL,0}):
 * bitnet-b1.58 / bitnet-25 -> BITNET (their embedded template is known wrong); a
 * template containing "<|start_header_id|>" -> LLAMA3; other bitnet* archs -> BITNET;
 * else NONE. */
enum bn_chat_format bn_chat_format_detect(struct bn_str arch, struct bn_str chat_template);
enum bn_chat_format bn_chat_format_from_gguf(const struct bn_gguf *g);

#define BN_CHAT_MAX_ROLE 32 /* bytes of a role name */
struct bn_chat_msg {
    const char *role;    /* "system", "user", "assistant" (any case); LLAMA3 also takes
                          * other [A-Za-z0-9_-] roles, e.g. "ipython" */
    const char *content; /* content_len bytes */
    size_t content_len;
};
/* Append the text of msgs[from..n) to out: `<|begin_of_text|>` first when from == 0,
 * then each turn, then the generation prompt ("Assistant: " or the assistant header)
 * when add_generation_prompt.  Rendering [0, k) without the prompt and then [k, n)
 * gives the same text as [0, n), so a session appends only its new turns.  LLAMA3
 * trims content (as its template does); BITNET keeps it byte for byte.  -1 with err
 * naming the message index on an unknown role or format. */
int bn_chat_render(enum bn_chat_format f, const struct bn_chat_msg *msgs, size_t n, size_t from,
                   bool add_generation_prompt, struct bn_bytes *out, struct bn_err *err);
/* The same conversation as token ids, APPENDED to out: the format's special tokens
 * (<|begin_of_text|>, <|eot_id|>, headers) become their ids, and the text between two
 * of them (template text and content together) is tokenized with special-token
 * parsing off, so message content can never inject a special token.  It already holds
 * <|begin_of_text|> when from == 0: do not add a BOS.  -1 with err (out unchanged) on
 * an unknown role or format, or a vocabulary lacking a token the format needs. */
int bn_chat_tokenize(const struct bn_vocab *v, enum bn_chat_format f, const struct bn_chat_msg *msgs, size_t n,
                     size_t from, bool add_generation_prompt, struct bn_tokens *out, struct bn_err *err);

/* Stop conditions for one generated sequence: end-of-generation tokens, stop strings
 * matched on the decoded text across token boundaries, and a token budget.  Text that
 * could still be the start of a stop string is held back until it is decided. */
#define BN_STOP_MAX_STRINGS 16
#define BN_STOP_MAX_STRING_BYTES 256
enum bn_stop_reason {
    BN_STOP_NONE = 0,   /* keep generating */
    BN_STOP_EOG,        /* an end-of-generation token (its text is not emitted) */
    BN_STOP_STRING,     /* a stop string (not emitted, nor anything after it) */
    BN_STOP_MAX_TOKENS, /* the budget is used up */
};
struct bn_stopper;
/* stops: n_stops NUL-terminated non-empty strings (copied).  max_tokens <= 0: no
 * budget.  v is kept by reference and must outlive the stopper. */
struct bn_stopper *bn_stopper_new(const struct bn_vocab *v, const char *const *stops, size_t n_stops,
                                  int64_t max_tokens, bool render_special, struct bn_err *err);
void bn_stopper_free(struct bn_stopper *s);
/* Feed one generated token: append the text now known to be final to out and return
 * why generation stops (an enum bn_stop_reason; BN_STOP_NONE: go on).  On any stop
 * the held text that is not part of a stop string is flushed to out, and further
 * pushes return the same reason.  -1 with err on an id out of range. */
int bn_stopper_push(struct bn_stopper *s, int32_t id, struct bn_bytes *out, struct bn_err *err);
/* Generation ended for another reason (e.g. the context is full): flush held text
 * (stop strings completed by the flushed bytes still cut).  0 or -1 with err. */
int bn_stopper_finish(struct bn_stopper *s, struct bn_bytes *out, struct bn_err *err);
/* Stop-string matcher alone (the stopper uses one): n_stops <= BN_STOP_MAX_STRINGS
 * strings of 1..BN_STOP_MAX_STRING_BYTES bytes (copied); NULL with err otherwise.
 * feed() appends to out the part of text[0..len) that can no longer be the start of a
 * stop string and sets *matched once one has matched (the earliest-ending match wins;
 * the text before it is emitted, the stop string and everything after are dropped,
 * and later feeds append nothing).  flush() appends what is still held back (call it
 * when the text ends).  Both return 0, or -1 with err when out of memory. */
struct bn_stop_matcher;
struct bn_stop_matcher *bn_stop_matcher_new(const char *const *stops, size_t n_stops, struct bn_err *err);
void bn_stop_matcher_free(struct bn_stop_matcher *m);
int bn_stop_matcher_feed(struct bn_stop_matcher *m, const char *text, size_t len, struct bn_bytes *out,
                         bool *matched, struct bn_err *err);
int bn_stop_matcher_flush(struct bn_stop_matcher *m, struct bn_bytes *out, struct bn_err *err);

#ifdef __cplusplus
}
#endif
#endif /* BN_BITNET_H */
