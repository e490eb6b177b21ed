/* engine/model_internal.h — the model, context and KV cache structures, shared by
 * model.c, context.c, kvcache.c, batch.c, forward.c and forward_ref.c only (not a
 * public header: the rest of bitnetd goes through bitnet.h). */
#ifndef BN_MODEL_INTERNAL_H
#define BN_MODEL_INTERNAL_H

#include "bitnet.h"

/* Weights of one transformer block (REFERENCE §1).  Shapes as [rows][cols] = [out][in]. */
struct bn_layer {
    const float *attn_norm;     /* [n_embd] */
    const float *attn_sub_norm; /* [n_embd] applied to the attention output before W_o */
    const float *ffn_norm;      /* [n_embd] */
    const float *ffn_sub_norm;  /* [n_ff] applied to relu(gate)^2 * up before W_down */
    struct bn_matrix wq;        /* [n_head * head_dim][n_embd] */
    struct bn_matrix wk;        /* [n_head_kv * head_dim][n_embd] */
    struct bn_matrix wv;        /* [n_head_kv * head_dim][n_embd] */
    struct bn_matrix wo;        /* [n_embd][n_head * head_dim] */
    struct bn_matrix w_gate;    /* [n_ff][n_embd] */
    struct bn_matrix w_up;      /* [n_ff][n_embd] */
    struct bn_matrix w_down;    /* [n_embd][n_ff] */
};

struct bn_model_tensor_rec {
    char name[BN_GGUF_MAX_NAME];
    enum bn_type file_type, layout;
    int64_t rows, cols;
    uint64_t bytes;
    bool repacked;
};

struct bn_model {
    struct bn_model_info info;
    struct bn_model_params params;
    struct bn_layer *layers;    /* [n_layer] */
    struct bn_matrix tok_embd;  /* [n_vocab][n_embd]: embedding rows (and the tied head) */
    struct bn_matrix head;      /* [n_vocab][n_embd]: output.weight, or tok_embd when tied */
    const float *output_norm;   /* [n_embd] */

    const struct bn_gguf *meta;
    struct bn_model_tensor_rec *tensors; /* the tensors used, GGUF order */
    int64_t n_tensors;

    /* Owned resources (NULL / zero when borrowed). */
    struct bn_gguf *own_meta;
    struct bn_mapped_file map;
    void *private_mem; /* repacked tensors, 64-byte aligned each (bn_weights_alloc) */
    size_t private_mem_bytes;
    void *head_mem;    /* the Q8_0 head of params.head_q8 (bn_weights_alloc) */
    size_t head_mem_bytes;
};

/* Bytes of one KV chunk: K and V of every layer for `tokens` positions. */
uint64_t bn_kv_chunk_bytes(const struct bn_model *m, int64_t tokens, enum bn_type kv_type);

/* One sequence's KV cache: chunks of c->kv_chunk positions, allocated on demand.
 * Chunk layout (elements of kv_type):
 *   [n_layer][2: K, V][n_head_kv][kv_chunk positions][head_dim]
 * so the positions of one KV head are contiguous (attention converts / reads them in
 * one run). */
struct bn_kv_seq {
    bool open;
    int64_t n;     /* positions 0..n-1 hold K/V */
    void **chunks; /* [n_chunks]; NULL = not allocated */
};

/* Per-thread attention scratch. */
struct bn_attn_scratch {
    float *scores; /* [n_rep][n_ctx] */
    float *tile;   /* [kv_chunk][head_dim]: K or V rows converted to float */
};

/* Scratch of the scalar reference pass (one token at a time). */
struct bn_ref_scratch {
    float *x, *xb, *xb2; /* [n_embd] */
    float *q;            /* [n_head * head_dim] */
    float *k, *v;        /* [n_head_kv * head_dim] */
    float *att;          /* [n_ctx] */
    float *hb, *hb2;     /* [n_ff] */
    float *wrow;         /* [max(n_embd, n_ff)]: one dequantized weight row */
    float *xq;           /* [max(n_embd, n_ff)]: int8-quantized activations (as floats) */
    float *kvrow;        /* [head_dim] */
};

struct bn_ctx {
    const struct bn_model *model;
    int64_t n_ctx, n_batch;
    int32_t n_seq_max;
    enum bn_type kv_type;
    size_t kv_elem;     /* bytes per K/V element */
    int64_t kv_chunk;   /* positions per chunk */
    int64_t n_chunks;   /* chunks per full sequence */
    uint64_t chunk_bytes;
    uint64_t kv_allocated; /* bytes of KV chunks allocated now */
    struct bn_kv_seq *seqs; /* [n_seq_max] */

    struct bn_pool *pool;
    bool own_pool;

    /* Fast-path activations, [n_batch][...] row-major, allocated at creation. */
    float *x;          /* [n_batch][n_embd] residual stream */
    float *xb;         /* [n_batch][n_embd] normed input / matmul output */
    float *q;          /* [n_batch][n_head * head_dim] */
    float *att;        /* [n_batch][n_head * head_dim] attention output */
    float *k, *v;      /* [n_batch][n_head_kv * head_dim] */
    float *hg, *hu;    /* [n_batch][n_ff] gate, up */
    struct bn_attn_scratch *attn; /* [threads] */
    int n_attn;
    struct bn_ref_scratch ref;

    /* Batch bookkeeping. */
    int64_t *seq_next;  /* [n_seq_max] next position while checking a batch */
    int64_t *out_row;   /* [n_batch] row of `logits` for each entry, -1 = none */
    float *logits;      /* [logits_cap][n_vocab] */
    int64_t logits_cap;
    int64_t n_out;      /* rows of logits of the last decode */
    int64_t last_n;     /* entries of the last decode */
};

/* Pointer to the head_dim elements of K (kv = 0) or V (kv = 1) of layer l, KV head g,
 * position pos of sequence s (its chunk must be allocated). */
void *bn_kv_at(const struct bn_ctx *c, int32_t s, int64_t l, int kv, int64_t g, int64_t pos);
/* Allocate the chunks sequence s needs to hold positions < n_pos. */
int bn_kv_reserve(struct bn_ctx *c, int32_t s, int64_t n_pos, struct bn_err *err);
/* Store n floats as kv_type at dst. */
void bn_kv_store(const struct bn_ctx *c, void *dst, const float *src, int64_t n);
/* Load n elements of kv_type at src as floats. */
void bn_kv_load(const struct bn_ctx *c, float *dst, const void *src, int64_t n);
void bn_kv_free_all(struct bn_ctx *c);

/* The two forward passes over a checked batch (all KV chunks reserved).  They write
 * each entry's K/V into its sequence and the wanted logits into c->logits rows
 * c->out_row[i].  Sequence lengths are updated by the caller. */
void bn_forward_fast(struct bn_ctx *c, const struct bn_batch *b);
void bn_forward_ref(struct bn_ctx *c, const struct bn_batch *b);

#endif
