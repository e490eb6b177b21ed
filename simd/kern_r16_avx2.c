/* simd/kern_r16_avx2.c — ternary x int8 kernels on the 16-row panel layouts
 * (I2_R16, TQ_R16; simd/internal.h) with AVX2.
 *
 * A panel is processed as two halves of 8 rows (bytes 0..31 and 32..63 of each
 * 16-column group: one int32 lane per row).  pmaddubsw multiplies the codes
 * c = w + 1 in {0, 1, 2} by the int8 activations and adds pairs into int16 lanes
 * (|pair| <= 2 * 2 * 128 = 512, so no saturation); the int16 sums are widened with
 * pmaddwd every BN_AVX2_FLUSH_GROUPS groups (at most 4 * 512 per group per lane, so
 * 8 groups stay below 32767).  As in the AVX-512 file, the activation sum is
 * subtracted at the end and the float epilogue follows the scalar reference, so
 * the results are bit-identical to it. */
#include "internal.h"

#if BN_X86
#include <immintrin.h>

#ifdef __clang__
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#endif

#define ALWAYS_INLINE inline __attribute__((always_inline))
#define BN_AVX2_FLUSH_GROUPS 8 /* groups of int16 accumulation before widening */
#define BN_AVX2_TILE 8         /* tokens per AVX2 tile (16 ymm registers) */

/* Lanes (rows) [0, n) of a half panel. */
static ALWAYS_INLINE __m256i lane_mask(int64_t n)
{
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), idx);
}

static ALWAYS_INLINE __m256i bcast32(const void *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/* acc[t] (8 rows) = sum over the half panel of codes * q for T tokens; x holds
 * the activations as int32 [cols/4][xstride] (one token: xstride 1, x = q). */
static ALWAYS_INLINE void half_panel(const uint8_t *w, int64_t ngroups, int64_t gstride,
                                     __m256i lmask, bool full, const int32_t *x, int64_t xstride,
                                     const int T, __m256i *acc)
{
    const __m256i m3 = _mm256_set1_epi8(3), ones = _mm256_set1_epi16(1);
    __m256i a16[BN_AVX2_TILE];
#pragma GCC unroll 8
    for (int t = 0; t < T; t++)
        acc[t] = _mm256_setzero_si256();
    for (int64_t g0 = 0; g0 < ngroups; g0 += BN_AVX2_FLUSH_GROUPS) {
        int64_t g1 = g0 + BN_AVX2_FLUSH_GROUPS < ngroups ? g0 + BN_AVX2_FLUSH_GROUPS : ngroups;
#pragma GCC unroll 8
        for (int t = 0; t < T; t++)
            a16[t] = _mm256_setzero_si256();
        for (int64_t g = g0; g < g1; g++) {
            const uint8_t *p = w + g * gstride;
            __m256i v = full ? _mm256_loadu_si256((const __m256i *)p)
                             : _mm256_maskload_epi32((const int *)p, lmask);
            const int32_t *xg = x + g * 4 * xstride;
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) {
                __m256i c = _mm256_and_si256(_mm256_srli_epi16(v, 2 * j), m3);
#pragma GCC unroll 8
                for (int t = 0; t < T; t++)
                    a16[t] = _mm256_add_epi16(a16[t], _mm256_maddubs_epi16(c, bcast32(xg + j * xstride + t)));
            }
        }
#pragma GCC unroll 8
        for (int t = 0; t < T; t++)
            acc[t] = _mm256_add_epi32(acc[t], _mm256_madd_epi16(a16[t], ones));
    }
}

static ALWAYS_INLINE void store8(float *y, __m256 f, __m256i lmask, bool full)
{
    if (full)
        _mm256_storeu_ps(y, f);
    else
        _mm256_maskstore_ps(y, lmask, f);
}

/* y = 0 + (float)(acc - sum) / xs * scale */
static ALWAYS_INLINE __m256 i2_epilogue(__m256i acc, int32_t sum, float xs, float scale)
{
    __m256 f = _mm256_cvtepi32_ps(_mm256_sub_epi32(acc, _mm256_set1_epi32(sum)));
    f = _mm256_mul_ps(_mm256_div_ps(f, _mm256_set1_ps(xs)), _mm256_set1_ps(scale));
    return _mm256_add_ps(_mm256_setzero_ps(), f);
}

/* One half panel (n8 rows) x T tokens: I2_R16. */
#define I2_HALF_FN(T)                                                                           \
    static void i2_half_##T(const uint8_t *w, int64_t ngroups, int64_t gstride, int64_t n8,     \
                            const int32_t *x, int64_t xstride, const int32_t *sum,             \
                            const float *xs, float scale, float *y, int64_t ystride)           \
    {                                                                                           \
        __m256i acc[T], lm = lane_mask(n8);                                                     \
        if (n8 == 8)                                                                            \
            half_panel(w, ngroups, gstride, lm, true, x, xstride, T, acc);                      \
        else                                                                                    \
            half_panel(w, ngroups, gstride, lm, false, x, xstride, T, acc);                     \
        _Pragma("GCC unroll 8")                                                                 \
        for (int t = 0; t < T; t++)                                                             \
            store8(y + t * ystride, i2_epilogue(acc[t], sum[t], xs[t], scale), lm, n8 == 8);    \
    }
#define TILE_LIST(X) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8)
TILE_LIST(I2_HALF_FN)
typedef void (*i2_half_fn)(const uint8_t *, int64_t, int64_t, int64_t, const int32_t *, int64_t,
                           const int32_t *, const float *, float, float *, int64_t);
#define I2_HALF_PTR(T) i2_half_##T,
static const i2_half_fn i2_halves[BN_AVX2_TILE + 1] = {NULL, TILE_LIST(I2_HALF_PTR)};

/* Calls fn(half, rows in it, token sub-block) over rows [r0, r1) and all tokens. */
#define FOR_HALVES_AND_TOKENS(BODY)                                                             \
    for (int64_t r = r0; r < r1; r += BN_R16_ROWS) {                                            \
        int64_t h = rows - r < BN_R16_ROWS ? rows - r : BN_R16_ROWS;                            \
        for (int half = 0; half < 2 && 8 * half < h; half++) {                                  \
            int64_t n8 = h - 8 * half < 8 ? h - 8 * half : 8;                                   \
            for (int64_t blk = 0; blk < bn_act_blocks(nt); blk++) {                             \
                int64_t t0, tb;                                                                 \
                bn_act_block(nt, blk, &t0, &tb);                                                \
                const int32_t *xb = nt == 1 ? (const int32_t *)a->q                             \
                                            : (const int32_t *)((const uint8_t *)a->prep + (size_t)(t0 * cols)); \
                for (int64_t s0 = 0; s0 < tb; s0 += BN_AVX2_TILE) {                             \
                    int64_t ts = tb - s0 < BN_AVX2_TILE ? tb - s0 : BN_AVX2_TILE;               \
                    int64_t tok = t0 + s0;                                                      \
                    BODY                                                                        \
                }                                                                               \
            }                                                                                   \
        }                                                                                       \
    }

void bn_gemm_i2r16_avx2(const struct bn_matrix *w, int64_t r0, int64_t r1,
                        const struct bn_act_i8 *a, float *y)
{
    int64_t rows = w->rows, cols = w->cols, ngroups = cols / BN_R16_GROUP, nt = a->n_tokens;
    FOR_HALVES_AND_TOKENS({
        const uint8_t *pw = (const uint8_t *)w->data + (size_t)r * (size_t)(cols / 4) + 32 * half;
        i2_halves[ts](pw, ngroups, 4 * h, n8, xb + s0, tb, a->sum + tok, a->scale + tok, w->scale,
                      y + tok * rows + r + 8 * half, rows);
    })
}

/* ---- TQ_R16: per 256-column block dot, then the reference's scale-run logic ---- */

struct tq_state {
    __m256i isum;
    __m256 d, acc;
};

static ALWAYS_INLINE void tq_block(struct tq_state *s, __m256i dot, __m256 bd, float xs)
{
    __m256 change = _mm256_cmp_ps(bd, s->d, _CMP_NEQ_UQ);
    __m256 f = _mm256_mul_ps(_mm256_div_ps(_mm256_cvtepi32_ps(s->isum), _mm256_set1_ps(xs)), s->d);
    s->acc = _mm256_blendv_ps(s->acc, _mm256_add_ps(s->acc, f), change);
    s->isum = _mm256_add_epi32(_mm256_andnot_si256(_mm256_castps_si256(change), s->isum), dot);
    s->d = _mm256_blendv_ps(s->d, bd, change);
}

#define TQ_HALF_FN(T)                                                                           \
    static void tq_half_##T(const uint8_t *pw, int64_t nb, int64_t h, int half, int64_t n8,     \
                            const int32_t *x, int64_t xstride, const int32_t *bsum,            \
                            int64_t nbs, const float *xs, float *y, int64_t ystride)           \
    {                                                                                           \
        __m256i acc[T], lm = lane_mask(n8);                                                     \
        struct tq_state st[T];                                                                  \
        const uint8_t *sc = pw + (BN_QK_K / 4) * h + 32 * half;                                 \
        __m256 d0 = _mm256_castsi256_ps(_mm256_maskload_epi32((const int *)sc, lm));            \
        for (int t = 0; t < T; t++)                                                             \
            st[t] = (struct tq_state){_mm256_setzero_si256(), d0, _mm256_setzero_ps()};         \
        for (int64_t b = 0; b < nb; b++) {                                                      \
            const uint8_t *bw = pw + b * BN_TQR16_BLOCK_BYTES * h;                              \
            half_panel(bw + 32 * half, BN_QK_K / BN_R16_GROUP, 4 * h, lm, n8 == 8,              \
                       x + b * (BN_QK_K / 4) * xstride, xstride, T, acc);                       \
            __m256 bd = _mm256_castsi256_ps(                                                    \
                _mm256_maskload_epi32((const int *)(bw + (BN_QK_K / 4) * h + 32 * half), lm));  \
            _Pragma("GCC unroll 8")                                                             \
            for (int t = 0; t < T; t++)                                                         \
                tq_block(&st[t], _mm256_sub_epi32(acc[t], _mm256_set1_epi32(bsum[t * nbs + b])), bd, xs[t]); \
        }                                                                                       \
        for (int t = 0; t < T; t++) {                                                           \
            __m256 f = _mm256_mul_ps(_mm256_div_ps(_mm256_cvtepi32_ps(st[t].isum),              \
                                                   _mm256_set1_ps(xs[t])), st[t].d);            \
            store8(y + t * ystride, _mm256_add_ps(st[t].acc, f), lm, n8 == 8);                  \
        }                                                                                       \
    }
TILE_LIST(TQ_HALF_FN)
typedef void (*tq_half_fn)(const uint8_t *, int64_t, int64_t, int, int64_t, const int32_t *,
                           int64_t, const int32_t *, int64_t, const float *, float *, int64_t);
#define TQ_HALF_PTR(T) tq_half_##T,
static const tq_half_fn tq_halves[BN_AVX2_TILE + 1] = {NULL, TILE_LIST(TQ_HALF_PTR)};

void bn_gemm_tqr16_avx2(const struct bn_matrix *w, int64_t r0, int64_t r1,
                        const struct bn_act_i8 *a, float *y)
{
    int64_t rows = w->rows, cols = w->cols, nb = cols / BN_QK_K, nt = a->n_tokens;
    size_t row_bytes = (size_t)nb * BN_TQR16_BLOCK_BYTES;
    const int32_t *bsum = bn_act_prep_tq_block_sums(a);
    FOR_HALVES_AND_TOKENS({
        const uint8_t *pw = (const uint8_t *)w->data + (size_t)r * row_bytes;
        tq_halves[ts](pw, nb, h, half, n8, xb + s0, tb, bsum + tok * nb, nb, a->scale + tok,
                      y + tok * rows + r + 8 * half, rows);
    })
}

#ifdef __clang__
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif
