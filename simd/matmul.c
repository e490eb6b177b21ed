/* simd/matmul.c — bn_matmul: activation quantization, thread split, and the
 * scalar reference kernels every SIMD kernel is compared against. */
#include <stdlib.h>

#include "internal.h"

/* bn_matmul quantizes activations on the pool (each thread a share of the tokens)
 * from this many tokens on; below, the caller does it (one dispatch less). */
#define BN_MM_PARALLEL_QUANT_TOKENS 4
#define BN_MM_ALIGN 64 /* bytes: alignment of each scratch array */
#define BN_MM_F32_SCRATCH_ROWS 4 /* gemm_f32 scratch per thread: rows of cols floats */

/* ---- scalar reference kernels ---- */

/* Ternary rows as int8 codes (any ternary layout, through its codes_get), then an
 * exact int32 dot per token.  Formats with one scale per block (TQ*) accumulate in
 * integers while consecutive blocks share a scale, so a TQ tensor with one scale
 * gives bit-for-bit what I2_S gives:
 *   acc = 0; for each run of blocks with scale d: acc += (float)isum / xs * d. */
static void ternary_rows_scalar(const struct bn_matrix *w, int64_t r0, int64_t r1,
                                const int8_t *xq, const float *xs, int64_t n_tokens, float *y)
{
    const struct bn_type_traits *tr = bn_type_traits(w->type);
    int64_t cols = w->cols, nb = (cols + BN_QK_K - 1) / BN_QK_K;
    int8_t *codes = malloc((size_t)cols);
    float *bd = malloc((size_t)nb * sizeof(float));
    if (!codes || !bd || !tr->codes_get)
        abort(); /* scratch of one row: a few KB; codes_get exists for every ternary row */
    for (int64_t r = r0; r < r1; r++) {
        tr->codes_get(w->data, w->rows, cols, r, codes, bd);
        for (int64_t t = 0; t < n_tokens; t++) {
            const int8_t *q = xq + t * cols;
            float acc = 0.0f;
            int32_t isum = 0;
            float d = bd[0];
            for (int64_t b = 0; b < nb; b++) {
                if (bd[b] != d) {
                    acc += (float)isum / xs[t] * d;
                    isum = 0;
                    d = bd[b];
                }
                int64_t end = (b + 1) * BN_QK_K < cols ? (b + 1) * BN_QK_K : cols;
                for (int64_t j = b * BN_QK_K; j < end; j++)
                    isum += codes[j] * q[j];
            }
            acc += (float)isum / xs[t] * d;
            y[t * w->rows + r] = acc;
        }
    }
    free(codes);
    free(bd);
}

void bn_gemm_i8_ternary_scalar(const struct bn_matrix *w, int64_t r0, int64_t r1,
                               const int8_t *xq, const float *xs, int64_t n_tokens, float *y)
{
    ternary_rows_scalar(w, r0, r1, xq, xs, n_tokens, y);
}

void bn_gemm_i8_codes_scalar(const struct bn_matrix *w, int64_t r0, int64_t r1,
                             const int8_t *xq, const float *xs, int64_t n_tokens, float *y)
{
    ternary_rows_scalar(w, r0, r1, xq, xs, n_tokens, y);
}

void bn_gemm_act_codes_scalar(const struct bn_matrix *w, int64_t r0, int64_t r1,
                              const struct bn_act_i8 *a, float *y)
{
    ternary_rows_scalar(w, r0, r1, a->q, a->scale, a->n_tokens, y);
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

/* Ternary layouts without a row decoder (interleaved rows): codes -> floats with
 * each block's scale, then the same float dot. */
void bn_gemm_f32_codes_scalar(const struct bn_matrix *w, int64_t r0, int64_t r1, const float *x,
                              int64_t n_tokens, float *y, float *scratch)
{
    const struct bn_type_traits *tr = bn_type_traits(w->type);
    int64_t cols = w->cols, nb = (cols + BN_QK_K - 1) / BN_QK_K;
    int8_t *codes = malloc((size_t)cols);
    float *bd = malloc((size_t)nb * sizeof(float));
    if (!codes || !bd)
        abort();
    for (int64_t r = r0; r < r1; r++) {
        tr->codes_get(w->data, w->rows, cols, r, codes, bd);
        for (int64_t c = 0; c < cols; c++)
            scratch[c] = (float)codes[c] * bd[c / BN_QK_K];
        for (int64_t t = 0; t < n_tokens; t++) {
            const float *xt = x + t * cols;
            float s = 0.0f;
            for (int64_t c = 0; c < cols; c++)
                s += scratch[c] * xt[c];
            y[t * w->rows + r] = s;
        }
    }
    free(codes);
    free(bd);
}

/* ---- dispatch ---- */

/* One bn_matmul_n call: up to BN_MATMUL_MAX_MATS matrices of one layout and path
 * sharing the input x (e.g. q, k, v), one activation quantization, one dispatch.
 * Threads take contiguous ranges of the matrices' tiles laid end to end. */
struct mm_task {
    int n_mats;
    const struct bn_matrix *w[BN_MATMUL_MAX_MATS];
    float *y[BN_MATMUL_MAX_MATS];
    int64_t first_unit[BN_MATMUL_MAX_MATS + 1]; /* prefix sums of tiles per matrix */
    const float *x;
    int64_t n_tokens, cols;
    struct bn_act_i8 act;
    int8_t *q;      /* act.q, writable */
    float *xs;      /* act.scale */
    int32_t *sum;   /* act.sum */
    void *prep;     /* act.prep */
    bn_act_prep_fn act_prep;
    bn_gemm_act_fn gact;
    bn_gemm_i8_fn gi8;
    bn_gemm_f32_fn gf32;
    float *scratch; /* scratch_stride floats per thread */
    size_t scratch_stride;
    int64_t align;
    int64_t n_chunks, n_quant_chunks;
};

static void quant_tokens(struct mm_task *t, int64_t t0, int64_t t1)
{
    for (int64_t i = t0; i < t1; i++)
        t->xs[i] = bn_quantize_act_i8_sum(t->x + i * t->cols, t->cols, t->q + i * t->cols, &t->sum[i]);
    if (t->act_prep && t1 > t0)
        t->act_prep(&t->act, t->prep, t0, t1);
}

/* Chunks of tokens (quantization) and of row tiles (matmul); a few per thread so a
 * thread that runs late or slow takes fewer. */
#define BN_MM_CHUNKS_PER_THREAD 4

static void quant_chunk(void *p, int64_t c, int thread)
{
    (void)thread;
    struct mm_task *t = p;
    int64_t n = t->n_quant_chunks;
    quant_tokens(t, t->n_tokens * c / n, t->n_tokens * (c + 1) / n);
}

static void mm_chunk(void *p, int64_t c, int thread)
{
    struct mm_task *t = p;
    int64_t total = t->first_unit[t->n_mats];
    int64_t u0 = total * c / t->n_chunks, u1 = total * (c + 1) / t->n_chunks;
    for (int k = 0; k < t->n_mats && u0 < u1; k++) {
        int64_t a = t->first_unit[k], b = t->first_unit[k + 1];
        if (u1 <= a || u0 >= b)
            continue;
        const struct bn_matrix *w = t->w[k];
        int64_t lo = ((u0 > a ? u0 : a) - a) * t->align, hi = ((u1 < b ? u1 : b) - a) * t->align;
        hi = hi < w->rows ? hi : w->rows;
        if (t->gact)
            t->gact(w, lo, hi, &t->act, t->y[k]);
        else if (t->gi8)
            t->gi8(w, lo, hi, t->act.q, t->act.scale, t->n_tokens, t->y[k]);
        else
            t->gf32(w, lo, hi, t->x, t->n_tokens, t->y[k], t->scratch + (size_t)thread * t->scratch_stride);
    }
}

static bn_gemm_act_fn pick_act(const struct bn_type_traits *tr, enum bn_path path)
{
    for (int p = (int)path; p >= 0; p--)
        if (tr->gemm_act[p])
            return tr->gemm_act[p];
    return NULL;
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
    if (tr->row_to_float)
        return bn_gemm_f32_scalar;
    return tr->codes_get ? bn_gemm_f32_codes_scalar : NULL;
}

static size_t align_up(size_t n) { return (n + BN_MM_ALIGN - 1) / BN_MM_ALIGN * BN_MM_ALIGN; }

static void matmul_multi(struct bn_pool *pool, int n, const struct bn_matrix *const *w,
                         const float *x, int64_t n_tokens, float *const *y, unsigned flags)
{
    const struct bn_type_traits *tr = bn_type_traits(w[0]->type);
    if (!tr)
        abort(); /* a matrix is always made by bn_matrix_init/view from a known type */
    int nth = bn_pool_threads(pool);
    int64_t cols = w[0]->cols;
    struct mm_task t = {.n_mats = n, .x = x, .n_tokens = n_tokens, .cols = cols,
                        .align = tr->row_align > 0 ? tr->row_align : 1};
    for (int k = 0; k < n; k++) {
        t.w[k] = w[k];
        t.y[k] = y[k];
        t.first_unit[k + 1] = t.first_unit[k] + (w[k]->rows + t.align - 1) / t.align;
    }
    void *heap = NULL; /* scratch when there is no pool */
    size_t need;
    if (tr->ternary && !(flags & BN_MM_FLOAT_ACT) &&
        ((t.gact = pick_act(tr, w[0]->path)) || (t.gi8 = pick_i8(tr, w[0]->path)))) {
        size_t prep_bytes = t.gact && tr->act_prep_bytes ? align_up(tr->act_prep_bytes(n_tokens, cols)) : 0;
        size_t q_bytes = align_up((size_t)(n_tokens * cols)), s_bytes = align_up((size_t)n_tokens * 4);
        need = q_bytes + 2 * s_bytes + prep_bytes;
        uint8_t *mem = pool ? bn_pool_scratch(pool, need) : (heap = aligned_alloc(BN_MM_ALIGN, need));
        if (!mem)
            abort(); /* scratch of n_tokens x cols bytes */
        t.q = (int8_t *)mem;
        t.xs = (float *)(mem + q_bytes);
        t.sum = (int32_t *)(mem + q_bytes + s_bytes);
        t.prep = prep_bytes ? mem + q_bytes + 2 * s_bytes : NULL;
        t.act_prep = prep_bytes ? tr->act_prep : NULL;
        t.act = (struct bn_act_i8){.n_tokens = n_tokens, .cols = cols, .q = t.q, .scale = t.xs,
                                   .sum = t.sum, .prep = t.prep};
        if (nth > 1 && n_tokens >= BN_MM_PARALLEL_QUANT_TOKENS) {
            t.n_quant_chunks = n_tokens < nth * BN_MM_CHUNKS_PER_THREAD ? n_tokens : nth * BN_MM_CHUNKS_PER_THREAD;
            bn_pool_run_chunks(pool, quant_chunk, &t, t.n_quant_chunks);
        } else {
            quant_tokens(&t, 0, n_tokens);
        }
    } else {
        t.gact = NULL;
        t.gi8 = NULL;
        t.gf32 = pick_f32(tr, w[0]->path);
        if (!t.gf32)
            abort(); /* the model loader checks a float kernel exists before using a matrix */
        size_t per = BN_MM_F32_SCRATCH_ROWS * (size_t)cols * sizeof(float) +
                     (tr->f32_scratch_bytes ? tr->f32_scratch_bytes(n_tokens, cols) : 0);
        t.scratch_stride = align_up(per) / sizeof(float);
        need = (size_t)nth * t.scratch_stride * sizeof(float);
        t.scratch = pool ? bn_pool_scratch(pool, need) : (heap = aligned_alloc(BN_MM_ALIGN, need));
        if (!t.scratch)
            abort();
    }
    int64_t units = t.first_unit[n];
    t.n_chunks = nth == 1 ? 1 : units < nth * BN_MM_CHUNKS_PER_THREAD ? units : nth * BN_MM_CHUNKS_PER_THREAD;
    bn_pool_run_chunks(pool, mm_chunk, &t, t.n_chunks);
    free(heap);
}

void bn_matmul(struct bn_pool *pool, const struct bn_matrix *w, const float *x, int64_t n_tokens,
               float *y, unsigned flags)
{
    if (n_tokens > 0)
        matmul_multi(pool, 1, &w, x, n_tokens, &y, flags);
}

void bn_matmul_n(struct bn_pool *pool, int n, const struct bn_matrix *const *w, const float *x,
                 int64_t n_tokens, float *const *y, unsigned flags)
{
    if (n_tokens <= 0 || n <= 0)
        return;
    bool shared = n <= BN_MATMUL_MAX_MATS;
    for (int k = 1; k < n && shared; k++)
        shared = w[k]->type == w[0]->type && w[k]->path == w[0]->path && w[k]->cols == w[0]->cols;
    if (shared) {
        matmul_multi(pool, n, w, x, n_tokens, y, flags);
        return;
    }
    for (int k = 0; k < n; k++)
        matmul_multi(pool, 1, &w[k], x, n_tokens, &y[k], flags);
}
