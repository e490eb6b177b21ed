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
 * fits; float getters accept F32/F64.  Return 0, -1 when absent (err untouched is
 * fine for optional keys: pass NULL), -1 with err when present but of a wrong type. */
int bn_gguf_get_u64(const struct bn_gguf *g, const char *key, uint64_t *out, struct bn_err *err);
int bn_gguf_get_i64(const struct bn_gguf *g, const char *key, int64_t *out, struct bn_err *err);
int bn_gguf_get_u32(const struct bn_gguf *g, const char *key, uint32_t *out, struct bn_err *err);
int bn_gguf_get_f32(const struct bn_gguf *g, const char *key, float *out, struct bn_err *err);
int bn_gguf_get_bool(const struct bn_gguf *g, const char *key, bool *out, struct bn_err *err);
int bn_gguf_get_str(const struct bn_gguf *g, const char *key, struct bn_str *out, struct bn_err *err);
/* Arrays: element type, count, and element access.  Nested arrays are parsed and
 * bounds-checked; bn_gguf_arr_sub() gives an element that is itself an array. */
struct bn_gguf_arr {
    enum bn_gguf_vtype type; /* element type */
    uint64_t n;
    const void *data;        /* fixed-size elements: n * size packed, little-endian */
    const struct bn_gguf *g;
    int64_t kv;              /* owning key index */
    uint64_t sub;            /* internal: index path for nested arrays */
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
 * --------------------------------------------------------------------------- */
struct bn_gguf_writer;
/* Fill `bytes` bytes of tensor data at dst; return 0 or -1 (err filled). */
typedef int (*bn_tensor_fill_fn)(void *ctx, void *dst, uint64_t bytes, struct bn_err *err);

struct bn_gguf_writer *bn_gguf_writer_new(void); /* NULL only on out of memory */
void bn_gguf_writer_free(struct bn_gguf_writer *w);
void bn_gguf_writer_set_alignment(struct bn_gguf_writer *w, uint32_t alignment);
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
};
void bn_model_params_default(struct bn_model_params *p);

/* Tensor data already laid out by a pack plan (e.g. in a shared-memory segment):
 * data[i] holds plan->entries[i] in its dst_type.  Not owned by the model. */
struct bn_model_source {
    const struct bn_gguf *meta;        /* metadata + tensor infos (may be HEADER_ONLY) */
    const struct bn_pack_plan *plan;   /* NULL: tensors from meta's region, packed as needed */
    const void *const *data;           /* plan->n pointers, when plan != NULL */
};

/* More of the model / context / evaluation API below is filled in by the engine
 * work; see docs/ARCHITECTURE.md. */

#ifdef __cplusplus
}
#endif
#endif /* BN_BITNET_H */
