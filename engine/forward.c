/* engine/forward.c — the fast forward pass: a whole batch (any mix of sequences and
 * positions) layer by layer, every matmul over all the batch's tokens at once
 * (bn_matmul on the context's pool: each weight matrix is streamed once per call),
 * attention split over (token, KV head) items on the pool.
 *
 * Same math as forward_ref.c (REFERENCE §2-3); shapes are [tokens][features]. */
#include <math.h>
#include <string.h>

#include "model_internal.h"

/* ---- attention ---- */

struct attn_task {
    struct bn_ctx *c;
    const struct bn_batch *b;
    int64_t layer;
};

/* Batch entry t, KV head g: the n_rep query heads that share g attend over positions
 * 0..pos[t] of their sequence.  Reads K/V tile by tile (one chunk's run of positions
 * of head g is contiguous), converting F16 once per tile for all n_rep heads. */
static void attend(struct bn_ctx *c, const struct bn_batch *b, int64_t l, int64_t t, int64_t g,
                   struct bn_attn_scratch *sc)
{
    const struct bn_model_info *in = &c->model->info;
    const int64_t hd = in->head_dim, n_rep = in->n_head / in->n_head_kv;
    const int64_t QD = in->n_head * hd;
    const int32_t s = b->seq[t];
    const int64_t n_kv = b->pos[t] + 1;
    const float scale = 1.0f / sqrtf((float)hd);
    const float *q = c->q + t * QD + g * n_rep * hd;   /* [n_rep][hd] */
    float *out = c->att + t * QD + g * n_rep * hd;     /* [n_rep][hd] */
    float *scores = sc->scores;                        /* [n_rep][n_ctx] */

    for (int64_t p0 = 0; p0 < n_kv; p0 += c->kv_chunk) {
        int64_t len = n_kv - p0 < c->kv_chunk ? n_kv - p0 : c->kv_chunk;
        const void *kp = bn_kv_at(c, s, l, 0, g, p0); /* [len][hd] */
        const float *kf = kp;
        if (c->kv_type != BN_TYPE_F32) {
            bn_kv_load(c, sc->tile, kp, len * hd);
            kf = sc->tile;
        }
        for (int64_t r = 0; r < n_rep; r++)
            for (int64_t j = 0; j < len; j++)
                scores[r * c->n_ctx + p0 + j] = bn_dot_f32(q + r * hd, kf + j * hd, hd) * scale;
    }
    for (int64_t r = 0; r < n_rep; r++)
        bn_softmax(scores + r * c->n_ctx, n_kv);
    memset(out, 0, (size_t)(n_rep * hd) * sizeof(float));
    for (int64_t p0 = 0; p0 < n_kv; p0 += c->kv_chunk) {
        int64_t len = n_kv - p0 < c->kv_chunk ? n_kv - p0 : c->kv_chunk;
        const void *vp = bn_kv_at(c, s, l, 1, g, p0); /* [len][hd] */
        const float *vf = vp;
        if (c->kv_type != BN_TYPE_F32) {
            bn_kv_load(c, sc->tile, vp, len * hd);
            vf = sc->tile;
        }
        for (int64_t r = 0; r < n_rep; r++)
            for (int64_t j = 0; j < len; j++)
                bn_axpy_f32(out + r * hd, scores[r * c->n_ctx + p0 + j], vf + j * hd, hd);
    }
}

/* Items (t, g) are dealt round-robin: prefill items of later tokens are longer, so
 * striding balances better than contiguous ranges.  Each item is computed by one
 * thread start to end, so the result does not depend on the thread count. */
static void attn_run(void *arg, int ith, int nth)
{
    struct attn_task *a = arg;
    int64_t n_kv_head = a->c->model->info.n_head_kv;
    int64_t items = a->b->n * n_kv_head;
    for (int64_t it = ith; it < items; it += nth)
        attend(a->c, a->b, a->layer, it / n_kv_head, it % n_kv_head, &a->c->attn[ith]);
}

/* ---- the pass ---- */

static void rmsnorm_rows(float *out, const float *x, const float *w, int64_t n_rows, int64_t n,
                         float eps)
{
    for (int64_t t = 0; t < n_rows; t++)
        bn_rmsnorm(out + t * n, x + t * n, w, n, eps);
}

void bn_forward_fast(struct bn_ctx *c, const struct bn_batch *b)
{
    const struct bn_model *m = c->model;
    const struct bn_model_info *in = &m->info;
    const int64_t N = b->n, E = in->n_embd, F = in->n_ff, hd = in->head_dim;
    const int64_t QD = in->n_head * hd, KVD = in->n_head_kv * hd;
    const float eps = in->rms_eps;
    const unsigned mmf = m->params.no_act_quant ? BN_MM_FLOAT_ACT : 0;
    struct bn_pool *pool = c->pool;

    /* x[t] = token_embd[token[t]]                                   [N][E] */
    const struct bn_type_traits *et = bn_type_traits(m->tok_embd.type);
    size_t erow = bn_row_bytes(m->tok_embd.type, E);
    for (int64_t t = 0; t < N; t++)
        et->row_to_float((const uint8_t *)m->tok_embd.data + (size_t)b->token[t] * erow,
                         c->x + t * E, E, m->tok_embd.scale);

    for (int64_t l = 0; l < in->n_layer; l++) {
        const struct bn_layer *L = &m->layers[l];

        /* attention block */
        rmsnorm_rows(c->xb, c->x, L->attn_norm, N, E, eps);      /* h = rmsnorm(x) * attn_norm */
        bn_matmul(pool, &L->wq, c->xb, N, c->q, mmf);           /* q [N][QD]  */
        bn_matmul(pool, &L->wk, c->xb, N, c->k, mmf);           /* k [N][KVD] */
        bn_matmul(pool, &L->wv, c->xb, N, c->v, mmf);           /* v [N][KVD] */
        for (int64_t t = 0; t < N; t++) {
            bn_rope_neox(c->q + t * QD, (int)in->n_head, (int)hd, b->pos[t], in->rope_theta);
            bn_rope_neox(c->k + t * KVD, (int)in->n_head_kv, (int)hd, b->pos[t], in->rope_theta);
            for (int64_t g = 0; g < in->n_head_kv; g++) {
                bn_kv_store(c, bn_kv_at(c, b->seq[t], l, 0, g, b->pos[t]), c->k + t * KVD + g * hd, hd);
                bn_kv_store(c, bn_kv_at(c, b->seq[t], l, 1, g, b->pos[t]), c->v + t * KVD + g * hd, hd);
            }
        }
        struct attn_task at = {.c = c, .b = b, .layer = l};
        bn_pool_run(pool, attn_run, &at);                        /* att [N][QD] */
        rmsnorm_rows(c->att, c->att, L->attn_sub_norm, N, QD, eps);
        bn_matmul(pool, &L->wo, c->att, N, c->xb, mmf);         /* [N][E] */
        bn_add_f32(c->x, c->xb, N * E);                          /* x += W_o a */

        /* feed-forward block */
        rmsnorm_rows(c->xb, c->x, L->ffn_norm, N, E, eps);
        bn_matmul(pool, &L->w_gate, c->xb, N, c->hg, mmf);      /* [N][F] */
        bn_matmul(pool, &L->w_up, c->xb, N, c->hu, mmf);        /* [N][F] */
        bn_relu2_mul_f32(c->hg, c->hu, N * F);                   /* relu(g)^2 * u */
        rmsnorm_rows(c->hg, c->hg, L->ffn_sub_norm, N, F, eps);
        bn_matmul(pool, &L->w_down, c->hg, N, c->xb, mmf);      /* [N][E] */
        bn_add_f32(c->x, c->xb, N * E);                          /* x += W_down m */
    }

    /* logits of the wanted entries: head · (rmsnorm(x) * output_norm)   [n_out][V] */
    int64_t n_out = 0;
    for (int64_t t = 0; t < N; t++)
        if (c->out_row[t] >= 0)
            bn_rmsnorm(c->xb + (n_out++) * E, c->x + t * E, m->output_norm, E, eps);
    if (n_out > 0)
        bn_matmul(pool, &m->head, c->xb, n_out, c->logits, 0);
}
