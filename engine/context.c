/* engine/context.c — evaluation contexts: sizes, thread pool, preallocated scratch
 * (nothing is allocated per token), and the sequence table. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"

void bn_ctx_params_default(struct bn_ctx_params *p)
{
    memset(p, 0, sizeof *p);
    p->n_ctx = 0;
    p->n_seq_max = 1;
    p->n_batch = BN_CTX_DEFAULT_BATCH;
    p->n_threads = 0;
    p->pool = NULL;
    p->kv_type = BN_KV_DEFAULT_TYPE;
}

/* a x b floats, or NULL on overflow / out of memory. */
static float *alloc_floats(int64_t a, int64_t b)
{
    size_t n;
    if (a <= 0 || b <= 0 || __builtin_mul_overflow((size_t)a, (size_t)b, &n) ||
        __builtin_mul_overflow(n, sizeof(float), &n))
        return NULL;
    void *p = NULL;
    return posix_memalign(&p, 64, n) == 0 ? p : NULL;
}

static int alloc_fast_scratch(struct bn_ctx *c)
{
    const struct bn_model_info *in = &c->model->info;
    int64_t B = c->n_batch, QD = in->n_head * in->head_dim, KVD = in->n_head_kv * in->head_dim;
    if (!(c->x = alloc_floats(B, in->n_embd)) || !(c->xb = alloc_floats(B, in->n_embd)) ||
        !(c->q = alloc_floats(B, QD)) || !(c->att = alloc_floats(B, QD)) ||
        !(c->k = alloc_floats(B, KVD)) || !(c->v = alloc_floats(B, KVD)) ||
        !(c->hg = alloc_floats(B, in->n_ff)) || !(c->hu = alloc_floats(B, in->n_ff)))
        return -1;
    c->n_attn = bn_pool_threads(c->pool);
    c->attn = calloc((size_t)c->n_attn, sizeof *c->attn);
    if (!c->attn)
        return -1;
    int64_t n_rep = in->n_head / in->n_head_kv;
    for (int i = 0; i < c->n_attn; i++)
        if (!(c->attn[i].scores = alloc_floats(n_rep, c->n_ctx)) ||
            !(c->attn[i].tile = alloc_floats(c->kv_chunk, in->head_dim)))
            return -1;
    return 0;
}

static int alloc_ref_scratch(struct bn_ctx *c)
{
    const struct bn_model_info *in = &c->model->info;
    struct bn_ref_scratch *r = &c->ref;
    int64_t QD = in->n_head * in->head_dim, KVD = in->n_head_kv * in->head_dim;
    int64_t wide = in->n_ff > QD ? in->n_ff : QD;
    wide = wide > in->n_embd ? wide : in->n_embd;
    if (!(r->x = alloc_floats(1, in->n_embd)) || !(r->xb = alloc_floats(1, QD > in->n_embd ? QD : in->n_embd)) ||
        !(r->xb2 = alloc_floats(1, in->n_embd)) || !(r->q = alloc_floats(1, QD)) ||
        !(r->k = alloc_floats(1, KVD)) || !(r->v = alloc_floats(1, KVD)) ||
        !(r->att = alloc_floats(1, c->n_ctx)) || !(r->hb = alloc_floats(1, in->n_ff)) ||
        !(r->hb2 = alloc_floats(1, in->n_ff)) || !(r->wrow = alloc_floats(1, wide)) ||
        !(r->xq = alloc_floats(1, wide)) || !(r->kvrow = alloc_floats(1, in->head_dim)))
        return -1;
    return 0;
}

int bn_ctx_new(const struct bn_model *m, const struct bn_ctx_params *p, struct bn_ctx **out,
               struct bn_err *err)
{
    *out = NULL;
    struct bn_ctx_params def;
    if (!p) {
        bn_ctx_params_default(&def);
        p = &def;
    }
    const struct bn_model_info *in = &m->info;
    int64_t n_ctx = p->n_ctx > 0 ? p->n_ctx : in->n_ctx_train;
    int32_t n_seq = p->n_seq_max > 0 ? p->n_seq_max : 1;
    int64_t n_batch = p->n_batch > 0 ? p->n_batch : BN_CTX_DEFAULT_BATCH;
    if (n_ctx > BN_MODEL_MAX_CTX)
        return bn_errf(err, "context of %" PRId64 " positions is more than the limit %d (n_ctx)",
                       n_ctx, BN_MODEL_MAX_CTX);
    if (n_seq > BN_CTX_MAX_SEQ)
        return bn_errf(err, "%" PRId32 " sequences is more than the limit %d (n_seq_max)", n_seq,
                       BN_CTX_MAX_SEQ);
    if (n_batch > BN_CTX_MAX_BATCH)
        return bn_errf(err, "batch of %" PRId64 " entries is more than the limit %d (n_batch)",
                       n_batch, BN_CTX_MAX_BATCH);
    if (p->kv_type != BN_TYPE_F16 && p->kv_type != BN_TYPE_F32)
        return bn_errf(err, "KV cache type %s is not supported (F16 or F32)",
                       bn_type_name(p->kv_type));

    struct bn_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return bn_errf(err, "out of memory for a context");
    c->model = m;
    c->n_ctx = n_ctx;
    c->n_seq_max = n_seq;
    c->n_batch = n_batch;
    c->kv_type = p->kv_type;
    c->kv_elem = p->kv_type == BN_TYPE_F32 ? 4 : 2;
    c->kv_chunk = n_ctx < BN_KV_CHUNK_TOKENS ? n_ctx : BN_KV_CHUNK_TOKENS;
    c->n_chunks = (n_ctx + c->kv_chunk - 1) / c->kv_chunk;
    c->chunk_bytes = bn_kv_chunk_bytes(m, c->kv_chunk, c->kv_type);

    if (p->pool) {
        c->pool = p->pool;
    } else {
        int nt = p->n_threads > 0 ? p->n_threads : m->params.n_threads;
        if (m->params.reference)
            nt = 1; /* the reference pass is single-threaded */
        c->pool = bn_pool_create(nt);
        c->own_pool = true;
        if (!c->pool) {
            free(c);
            return bn_errf(err, "cannot start %d threads", nt);
        }
    }

    bool ok = (c->seqs = calloc((size_t)n_seq, sizeof *c->seqs)) &&
              (c->seq_next = calloc((size_t)n_seq, sizeof *c->seq_next)) &&
              (c->out_row = calloc((size_t)n_batch, sizeof *c->out_row));
    for (int32_t s = 0; ok && s < n_seq; s++)
        ok = (c->seqs[s].chunks = calloc((size_t)c->n_chunks, sizeof(void *))) != NULL;
    if (ok)
        ok = (m->params.reference ? alloc_ref_scratch(c) : alloc_fast_scratch(c)) == 0;
    if (!ok) {
        bn_ctx_free(c);
        return bn_errf(err, "out of memory for a context of %" PRId64 " positions x %" PRId32
                       " sequences with batches of %" PRId64, n_ctx, n_seq, n_batch);
    }
    *out = c;
    return 0;
}

void bn_ctx_free(struct bn_ctx *c)
{
    if (!c)
        return;
    if (c->seqs)
        bn_kv_free_all(c);
    free(c->seqs);
    free(c->seq_next);
    free(c->out_row);
    free(c->logits);
    free(c->x);
    free(c->xb);
    free(c->q);
    free(c->att);
    free(c->k);
    free(c->v);
    free(c->hg);
    free(c->hu);
    for (int i = 0; c->attn && i < c->n_attn; i++) {
        free(c->attn[i].scores);
        free(c->attn[i].tile);
    }
    free(c->attn);
    struct bn_ref_scratch *r = &c->ref;
    float *ref[] = {r->x, r->xb, r->xb2, r->q, r->k, r->v, r->att, r->hb, r->hb2, r->wrow, r->xq,
                    r->kvrow};
    for (size_t i = 0; i < sizeof ref / sizeof ref[0]; i++)
        free(ref[i]);
    if (c->own_pool)
        bn_pool_destroy(c->pool);
    free(c);
}

const struct bn_model *bn_ctx_model(const struct bn_ctx *c) { return c->model; }
int64_t bn_ctx_n_ctx(const struct bn_ctx *c) { return c->n_ctx; }
int32_t bn_ctx_n_seq_max(const struct bn_ctx *c) { return c->n_seq_max; }
int64_t bn_ctx_n_batch(const struct bn_ctx *c) { return c->n_batch; }
