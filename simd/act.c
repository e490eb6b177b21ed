/* simd/act.c — int8 activations for the ternary kernels: the public quantizer and
 * the R16 preparation (tokens interleaved by 4-byte column groups). */
#include <stdlib.h>

#include "internal.h"

float bn_quantize_act_i8(const float *x, int64_t n, int8_t *q)
{
    return bn_vec_kernels_for(bn_path_default())->quantize_act_i8(x, n, q, NULL);
}

float bn_quantize_act_i8_sum(const float *x, int64_t n, int8_t *q, int32_t *sum)
{
    return bn_vec_kernels_for(bn_path_default())->quantize_act_i8(x, n, q, sum);
}

/* Block b (bn_act_block: T_b tokens from t0) starts at t0 * cols bytes and holds
 * int32 [cols/4][T_b]: the 4 activations of column group kg for every token of the
 * block, side by side.  A single token needs no interleaving (the kernels read q),
 * hence no bytes. */
size_t bn_act_prep_r16_bytes(int64_t n_tokens, int64_t cols)
{
    return n_tokens <= 1 ? 0 : (size_t)(n_tokens * cols);
}

void bn_act_prep_r16(const struct bn_act_i8 *a, void *buf, int64_t t0, int64_t t1)
{
    if (a->n_tokens <= 1)
        return; /* the kernels read q */
    int64_t groups = a->cols / 4, b = 0, b0, tb;
    bn_act_block(a->n_tokens, b, &b0, &tb);
    for (int64_t t = t0; t < t1; t++) {
        while (t >= b0 + tb)
            bn_act_block(a->n_tokens, ++b, &b0, &tb);
        int32_t *out = (int32_t *)((uint8_t *)buf + (size_t)(b0 * a->cols)) + (t - b0);
        const uint8_t *in = (const uint8_t *)(a->q + t * a->cols);
        for (int64_t kg = 0; kg < groups; kg++) {
            int32_t v;
            memcpy(&v, in + 4 * kg, 4);
            out[kg * tb] = v;
        }
    }
}

/* TQ_R16: the R16 interleaving, then int32 [n_tokens][cols/256] sums of q over each
 * 256-column block (the code offset correction of a block-scaled dot). */
static size_t r16_part(int64_t n_tokens, int64_t cols)
{
    return (bn_act_prep_r16_bytes(n_tokens, cols) + 63) / 64 * 64;
}

size_t bn_act_prep_tq_bytes(int64_t n_tokens, int64_t cols)
{
    return r16_part(n_tokens, cols) + (size_t)(n_tokens * (cols / BN_QK_K)) * sizeof(int32_t);
}

void bn_act_prep_tq(const struct bn_act_i8 *a, void *buf, int64_t t0, int64_t t1)
{
    bn_act_prep_r16(a, buf, t0, t1);
    int64_t nb = a->cols / BN_QK_K;
    int32_t *bs = (int32_t *)((uint8_t *)buf + r16_part(a->n_tokens, a->cols));
    for (int64_t t = t0; t < t1; t++)
        for (int64_t b = 0; b < nb; b++) {
            const int8_t *q = a->q + t * a->cols + b * BN_QK_K;
            int32_t s = 0;
            for (int j = 0; j < BN_QK_K; j++)
                s += q[j];
            bs[t * nb + b] = s;
        }
}

const int32_t *bn_act_prep_tq_block_sums(const struct bn_act_i8 *a)
{
    return (const int32_t *)((const uint8_t *)a->prep + r16_part(a->n_tokens, a->cols));
}

void bn_gemm_i8_via_act(const struct bn_matrix *w, int64_t r0, int64_t r1, const int8_t *xq,
                        const float *xs, int64_t n_tokens, float *y)
{
    const struct bn_type_traits *tr = bn_type_traits(w->type);
    bn_gemm_act_fn fn = NULL;
    for (int p = (int)w->path; p >= 0 && !fn; p--)
        fn = tr->gemm_act[p];
    int64_t cols = w->cols;
    size_t prep_bytes = tr->act_prep_bytes ? tr->act_prep_bytes(n_tokens, cols) : 0;
    int32_t *sum = malloc((size_t)n_tokens * sizeof(int32_t));
    void *prep = prep_bytes ? aligned_alloc(64, (prep_bytes + 63) / 64 * 64) : NULL;
    if (!fn || !sum || (prep_bytes && !prep))
        abort(); /* registered only on layouts with a gemm_act; scratch of n_tokens x cols */
    for (int64_t t = 0; t < n_tokens; t++) {
        int32_t s = 0;
        for (int64_t c = 0; c < cols; c++)
            s += xq[t * cols + c];
        sum[t] = s;
    }
    struct bn_act_i8 a = {.n_tokens = n_tokens, .cols = cols, .q = xq, .scale = xs, .sum = sum,
                          .prep = prep};
    if (prep)
        tr->act_prep(&a, prep, 0, n_tokens);
    fn(w, r0, r1, &a, y);
    free(sum);
    free(prep);
}

/* The 8-bit head kernels quantize each token into their thread's scratch: at most
 * ~2.2 bytes per column (int8 values, block scales and sums, 64-byte aligned). */
size_t bn_head_act_bytes(int64_t n_tokens, int64_t cols)
{
    return (size_t)n_tokens * ((size_t)(3 * cols) + 128);
}
