/* simd/matmul.c — bn_matmul: activation quantization, thread split, and the
 * scalar reference kernels every SIMD kernel is compared against. */
#include <stdlib.h>

#include "internal.h"

float bn_quantize_act_i8(const float *x, int64_t n, int8_t *q)
{
    float amax = 0.0f;
    for (int64_t i = 0; i < n; i++)
        amax = fmaxf(amax, fabsf(x[i]));
    float s = 127.0f / fmaxf(amax, BN_ACT_EPS);
    for (int64_t i = 0; i < n; i++) {
        float v = rintf(x[i] * s); /* current rounding mode: nearest, ties to even */
        q[i] = (int8_t)(v > 127.0f ? 127 : v < -128.0f ? -128 : v);
    }
    return s;
}

/* ---- scalar reference kernels ---- */

/* Ternary rows as int8 codes, then an exact int32 dot per token.  Formats with one
 * scale per block (TQ*) accumulate in integers while consecutive blocks share a
 * scale, so a TQ tensor with one scale gives bit-for-bit what I2_S gives. */
void bn_gemm_i8_ternary_scalar(const struct bn_matrix *w, int64_t r0, int64_t r1,
                                   const int8_t *xq, const float *xs, int64_t n_tokens, float *y)
{
    int64_t cols = w->cols;
    size_t row_bytes = bn_row_bytes(w->type, cols);
    int8_t *codes = malloc((size_t)cols);
    int64_t n_blocks = cols / BN_QK_K + 1;
    float *bd = malloc((size_t)n_blocks * sizeof(float));
    if (!codes || !bd)
        abort(); /* scratch of one row: a few KB */
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = (const uint8_t *)w->data + (size_t)r * row_bytes;
        int64_t block = cols; /* elements sharing one scale */
        switch (w->type) {
        case BN_TYPE_I2_S:
            bn_i2s_row_codes(row, codes, cols);
            bd[0] = w->scale;
            break;
        case BN_TYPE_TQ2_0:
            bn_tq2_row_codes(row, codes, cols, bd);
            block = BN_QK_K;
            break;
        case BN_TYPE_TQ1_0:
            bn_tq1_row_codes(row, codes, cols, bd);
            block = BN_QK_K;
            break;
        default:
            abort(); /* only registered for the formats above */
        }
        for (int64_t t = 0; t < n_tokens; t++) {
            const int8_t *q = xq + t * cols;
            float acc = 0.0f;
            int32_t isum = 0;
            float d = bd[0];
            for (int64_t b = 0; b * block < cols; b++) {
                if (bd[b] != d) {
                    acc += (float)isum / xs[t] * d;
                    isum = 0;
                    d = bd[b];
                }
                for (int64_t j = b * block; j < (b + 1) * block; j++)
                    isum += codes[j] * q[j];
            }
            acc += (float)isum / xs[t] * d;
            y[t * w->rows + r] = acc;
        }
    }
    free(codes);
    free(bd);
}

/* Any format with row_to_float: dequantize a row, dot with each token. */
void bn_gemm_f32_scalar(const struct bn_matrix *w, int64_t r0, int64_t r1, const float *x,
                            int64_t n_tokens, float *y, float *scratch)
{
    const struct bn_type_traits *tr = bn_type_traits(w->type);
    size_t row_bytes = bn_row_bytes(w->type, w->cols);
    for (int64_t r = r0; r < r1; r++) {
        tr->row_to_float((const uint8_t *)w->data + (size_t)r * row_bytes, scratch, w->cols,
                         w->scale);
        for (int64_t t = 0; t < n_tokens; t++) {
            const float *xt = x + t * w->cols;
            float s = 0.0f;
            for (int64_t c = 0; c < w->cols; c++)
                s += scratch[c] * xt[c];
            y[t * w->rows + r] = s;
        }
    }
}

/* ---- dispatch ---- */

struct mm_task {
    const struct bn_matrix *w;
    const float *x;
    int64_t n_tokens;
    float *y;
    const int8_t *xq;
    const float *xs;
    bn_gemm_i8_fn gi8;
    bn_gemm_f32_fn gf32;
    float *scratch; /* cols floats per thread */
    int64_t align;
};

static void mm_run(void *p, int ith, int nth)
{
    struct mm_task *t = p;
    int64_t lo, hi;
    bn_split_range(t->w->rows, t->align, ith, nth, &lo, &hi);
    if (lo >= hi)
        return;
    if (t->gi8)
        t->gi8(t->w, lo, hi, t->xq, t->xs, t->n_tokens, t->y);
    else
        t->gf32(t->w, lo, hi, t->x, t->n_tokens, t->y, t->scratch + (int64_t)ith * t->w->cols);
}

static bn_gemm_i8_fn pick_i8(const struct bn_type_traits *tr, enum bn_path path)
{
    for (int p = (int)path; p >= 0; p--)
        if (tr->gemm_i8[p])
            return tr->gemm_i8[p];
    return NULL;
}

static bn_gemm_f32_fn pick_f32(const struct bn_type_traits *tr, enum bn_path path)
{
    for (int p = (int)path; p >= 0; p--)
        if (tr->gemm_f32[p])
            return tr->gemm_f32[p];
    return tr->row_to_float ? bn_gemm_f32_scalar : NULL;
}

void bn_matmul(struct bn_pool *pool, const struct bn_matrix *w, const float *x, int64_t n_tokens,
               float *y, unsigned flags)
{
    const struct bn_type_traits *tr = bn_type_traits(w->type);
    if (!tr)
        abort(); /* a matrix is always made by bn_matrix_init/view from a known type */
    int nth = bn_pool_threads(pool);
    struct mm_task t = {.w = w, .x = x, .n_tokens = n_tokens, .y = y,
                        .align = tr->row_align > 0 ? tr->row_align : 1};
    int8_t *xq = NULL;
    float *xs = NULL;
    if (tr->ternary && !(flags & BN_MM_FLOAT_ACT) && (t.gi8 = pick_i8(tr, w->path))) {
        xq = malloc((size_t)(n_tokens * w->cols) + 64);
        xs = malloc((size_t)n_tokens * sizeof(float));
        if (!xq || !xs)
            abort();
        for (int64_t i = 0; i < n_tokens; i++)
            xs[i] = bn_quantize_act_i8(x + i * w->cols, w->cols, xq + i * w->cols);
        t.xq = xq;
        t.xs = xs;
    } else {
        t.gi8 = NULL;
        t.gf32 = pick_f32(tr, w->path);
        if (!t.gf32)
            abort();
        t.scratch = malloc((size_t)nth * (size_t)w->cols * sizeof(float));
        if (!t.scratch)
            abort();
    }
    bn_pool_run(pool, mm_run, &t);
    free(xq);
    free(xs);
    free(t.scratch);
}
