/* engine/forward_ref.c — the reference forward pass: one token at a time, scalar,
 * single-threaded, written to read like REFERENCE §2-3 (llama2.c's run.c style).
 * It shares nothing with the fast path but the KV cache storage and the format
 * decoders of simd/ (row_to_float), so the tests comparing the two check the
 * kernels, the batching and the attention of the fast path.
 *
 * Sums are accumulated in double: with int8 activations, w = code * scale and
 * q integer, every product and partial sum is exact, so a ternary matvec gives the
 * integer dot product of REFERENCE §3 times scale / s with one final rounding. */
#include <math.h>
#include <string.h>

#include "model_internal.h"

#define ACT_EPS 1e-5f /* REFERENCE §3: s = 127 / max(|x|, 1e-5) */

/* o = x / sqrt(mean(x^2) + eps) * w                                       (n,) */
static void rmsnorm(float *o, const float *x, const float *w, int64_t n, float eps)
{
    double ss = 0.0;
    for (int64_t i = 0; i < n; i++)
        ss += (double)x[i] * x[i];
    double inv = 1.0 / sqrt(ss / (double)n + (double)eps);
    for (int64_t i = 0; i < n; i++)
        o[i] = (float)(x[i] * inv) * w[i];
}

/* Per-token int8 absmax quantization: q = clamp(round_half_even(x * s), -128, 127),
 * s = 127 / max|x|.  q is returned as floats (exact small integers).           (n,) */
static float quantize_act(float *q, const float *x, int64_t n)
{
    float amax = 0.0f;
    for (int64_t i = 0; i < n; i++)
        amax = fmaxf(amax, fabsf(x[i]));
    float s = 127.0f / fmaxf(amax, ACT_EPS);
    for (int64_t i = 0; i < n; i++)
        q[i] = fminf(fmaxf(rintf(x[i] * s), -128.0f), 127.0f); /* rintf: ties to even */
    return s;
}

/* y = W x for W [rows][cols].  Ternary W with int8 activations:
 * y[r] = (sum_c code[r][c] * q[c]) * scale / s; otherwise float activations.
 * Each row is decoded to floats by the format's row_to_float.            (rows,) */
static void matvec(struct bn_ref_scratch *rs, float *y, const struct bn_matrix *w, const float *x,
                   bool act_quant)
{
    const struct bn_type_traits *tr = bn_type_traits(w->type);
    size_t row_bytes = bn_row_bytes(w->type, w->cols);
    bool quant = act_quant && tr->ternary;
    const float *in = x;
    float s = 1.0f;
    if (quant) {
        s = quantize_act(rs->xq, x, w->cols);
        in = rs->xq;
    }
    for (int64_t r = 0; r < w->rows; r++) {
        tr->row_to_float((const uint8_t *)w->data + (size_t)r * row_bytes, rs->wrow, w->cols,
                         w->scale); /* code * scale */
        double acc = 0.0;
        for (int64_t c = 0; c < w->cols; c++)
            acc += (double)rs->wrow[c] * in[c];
        y[r] = (float)(quant ? acc / s : acc);
    }
}

/* NEOX RoPE: in each head, dim i rotates with dim i + d/2 by pos * theta^(-2i/d). */
static void rope(float *v, int64_t n_heads, int64_t d, int64_t pos, float theta)
{
    for (int64_t h = 0; h < n_heads; h++) {
        float *x = v + h * d;
        for (int64_t i = 0; i < d / 2; i++) {
            double angle = (double)pos * pow((double)theta, -2.0 * (double)i / (double)d);
            float c = (float)cos(angle), s = (float)sin(angle);
            float a = x[i], b = x[i + d / 2];
            x[i] = a * c - b * s;
            x[i + d / 2] = a * s + b * c;
        }
    }
}

static void softmax(float *x, int64_t n)
{
    float mx = x[0];
    for (int64_t i = 1; i < n; i++)
        mx = fmaxf(mx, x[i]);
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)(x[i] / sum);
}

/* One token of sequence `seq` at position `pos`; logits (n_vocab,) if non-NULL. */
static void forward_token(struct bn_ctx *c, int32_t token, int32_t seq, int64_t pos, float *logits)
{
    const struct bn_model *m = c->model;
    const struct bn_model_info *p = &m->info;
    struct bn_ref_scratch *s = &c->ref;
    const int64_t E = p->n_embd, hd = p->head_dim, n_rep = p->n_head / p->n_head_kv;
    const bool aq = !m->params.no_act_quant;

    /* x = token_embd[token]                                                 (E,) */
    const struct bn_type_traits *et = bn_type_traits(m->tok_embd.type);
    et->row_to_float((const uint8_t *)m->tok_embd.data + (size_t)token * bn_row_bytes(m->tok_embd.type, E),
                     s->x, E, m->tok_embd.scale);

    for (int64_t l = 0; l < p->n_layer; l++) {
        const struct bn_layer *L = &m->layers[l];

        /* h = rmsnorm(x) * attn_norm; q, k, v = W_q h, W_k h, W_v h */
        rmsnorm(s->xb, s->x, L->attn_norm, E, p->rms_eps);
        matvec(s, s->q, &L->wq, s->xb, aq);   /* (n_head * hd,) */
        matvec(s, s->k, &L->wk, s->xb, aq);   /* (n_head_kv * hd,) */
        matvec(s, s->v, &L->wv, s->xb, aq);   /* (n_head_kv * hd,) */
        rope(s->q, p->n_head, hd, pos, p->rope_theta);
        rope(s->k, p->n_head_kv, hd, pos, p->rope_theta);
        for (int64_t g = 0; g < p->n_head_kv; g++) {
            bn_kv_store(c, bn_kv_at(c, seq, l, 0, g, pos), s->k + g * hd, hd);
            bn_kv_store(c, bn_kv_at(c, seq, l, 1, g, pos), s->v + g * hd, hd);
        }

        /* a = softmax(q k^T / sqrt(hd), causal) v, query head h on KV head h / n_rep */
        for (int64_t h = 0; h < p->n_head; h++) {
            const float *qh = s->q + h * hd;
            float *ah = s->xb + h * hd; /* xb is free again: a (n_head * hd,) */
            for (int64_t j = 0; j <= pos; j++) {
                bn_kv_load(c, s->kvrow, bn_kv_at(c, seq, l, 0, h / n_rep, j), hd);
                double dot = 0.0;
                for (int64_t i = 0; i < hd; i++)
                    dot += (double)qh[i] * s->kvrow[i];
                s->att[j] = (float)(dot / sqrt((double)hd));
            }
            softmax(s->att, pos + 1);
            for (int64_t i = 0; i < hd; i++)
                ah[i] = 0.0f;
            for (int64_t j = 0; j <= pos; j++) {
                bn_kv_load(c, s->kvrow, bn_kv_at(c, seq, l, 1, h / n_rep, j), hd);
                for (int64_t i = 0; i < hd; i++)
                    ah[i] += s->att[j] * s->kvrow[i];
            }
        }

        /* a = rmsnorm(a) * attn_sub_norm; x = x + W_o a */
        rmsnorm(s->xb, s->xb, L->attn_sub_norm, p->n_head * hd, p->rms_eps);
        matvec(s, s->xb2, &L->wo, s->xb, aq);
        for (int64_t i = 0; i < E; i++)
            s->x[i] += s->xb2[i];

        /* h = rmsnorm(x) * ffn_norm; m = relu(W_gate h)^2 * (W_up h) */
        rmsnorm(s->xb, s->x, L->ffn_norm, E, p->rms_eps);
        matvec(s, s->hb, &L->w_gate, s->xb, aq);  /* (n_ff,) */
        matvec(s, s->hb2, &L->w_up, s->xb, aq);   /* (n_ff,) */
        for (int64_t i = 0; i < p->n_ff; i++) {
            float g = fmaxf(s->hb[i], 0.0f);
            s->hb[i] = g * g * s->hb2[i];
        }

        /* m = rmsnorm(m) * ffn_sub_norm; x = x + W_down m */
        rmsnorm(s->hb, s->hb, L->ffn_sub_norm, p->n_ff, p->rms_eps);
        matvec(s, s->xb2, &L->w_down, s->hb, aq);
        for (int64_t i = 0; i < E; i++)
            s->x[i] += s->xb2[i];
    }

    /* logits = head · (rmsnorm(x) * output_norm)                        (n_vocab,) */
    if (logits) {
        rmsnorm(s->xb, s->x, m->output_norm, E, p->rms_eps);
        matvec(s, logits, &m->head, s->xb, false);
    }
}

void bn_forward_ref(struct bn_ctx *c, const struct bn_batch *b)
{
    /* Entries of one sequence come in position order, so running them one by one
     * in batch order is exactly causal. */
    for (int64_t i = 0; i < b->n; i++) {
        float *logits = c->out_row[i] >= 0
                            ? c->logits + (size_t)c->out_row[i] * (size_t)c->model->info.n_vocab
                            : NULL;
        forward_token(c, b->token[i], b->seq[i], b->pos[i], logits);
    }
}
