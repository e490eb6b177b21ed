/* simd/kern_r16_avx512.c — ternary x int8 kernels on the 16-row panel layouts
 * (I2_R16, TQ_R16; simd/internal.h) with AVX-512 VNNI.
 *
 * One 64-byte load gives 16 rows x 16 columns of codes c = w + 1 in {0, 1, 2};
 * (v >> 2j) & 3 is 16 rows x 4 columns, and vpdpbusd adds c * q over those 4
 * columns into each row's int32 lane, the 4 activations broadcast from memory.
 * sum_k c*q = sum_k w*q + sum_k q, so the token's activation sum is subtracted at
 * the end: exact int32 arithmetic, then the scalar reference's float ops in its
 * order ((float)isum / xs * scale, added to 0), hence bit-identical results.
 *
 * Decode (one token) streams each weight byte once, with 8 independent accumulator
 * chains so the loop runs at memory speed.  Prefill tiles up to BN_ACT_BLOCK tokens:
 * the unpacked codes of a group feed 4 x T vpdpbusd (T accumulators in registers),
 * so unpacking costs ~7 ops per 64 multiply-adds, and the 16-row panel (cols/4
 * bytes) stays in L1 while the token blocks stream from L2.  Measured on Zen 4: ~225
 * GMAC/s per core for T = 12..18, i.e. close to one vpdpbusd per cycle. */
#include "internal.h"

#if BN_X86
#include <immintrin.h>

#ifdef __clang__
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")
#endif

#define ALWAYS_INLINE inline __attribute__((always_inline))

static ALWAYS_INLINE __m512i bcast32(const void *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

/* y = 0 + (float)(acc - sum) / xs * scale, the scalar reference's op order. */
static ALWAYS_INLINE void store_i2(float *y, __m512i acc, int32_t sum, float xs, float scale,
                                   __mmask16 m)
{
    __m512 f = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc, _mm512_set1_epi32(sum)));
    f = _mm512_mul_ps(_mm512_div_ps(f, _mm512_set1_ps(xs)), _mm512_set1_ps(scale));
    _mm512_mask_storeu_ps(y, m, _mm512_add_ps(_mm512_setzero_ps(), f));
}

/* One token over `ngroups` groups of a panel: sum of codes * q per row. */
static ALWAYS_INLINE __m512i gemv_panel(const uint8_t *w, int64_t ngroups, int64_t gstride,
                                        __mmask64 lm, const int8_t *q)
{
    const __m512i m3 = _mm512_set1_epi8(3);
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    int64_t g = 0;
    for (; g + 2 <= ngroups; g += 2) {
        __m512i v0 = _mm512_maskz_loadu_epi8(lm, w + g * gstride);
        __m512i v1 = _mm512_maskz_loadu_epi8(lm, w + (g + 1) * gstride);
        const int8_t *x = q + g * BN_R16_GROUP;
        a0 = _mm512_dpbusd_epi32(a0, _mm512_and_si512(v0, m3), bcast32(x));
        a1 = _mm512_dpbusd_epi32(a1, _mm512_and_si512(_mm512_srli_epi16(v0, 2), m3), bcast32(x + 4));
        a2 = _mm512_dpbusd_epi32(a2, _mm512_and_si512(_mm512_srli_epi16(v0, 4), m3), bcast32(x + 8));
        a3 = _mm512_dpbusd_epi32(a3, _mm512_and_si512(_mm512_srli_epi16(v0, 6), m3), bcast32(x + 12));
        a4 = _mm512_dpbusd_epi32(a4, _mm512_and_si512(v1, m3), bcast32(x + 16));
        a5 = _mm512_dpbusd_epi32(a5, _mm512_and_si512(_mm512_srli_epi16(v1, 2), m3), bcast32(x + 20));
        a6 = _mm512_dpbusd_epi32(a6, _mm512_and_si512(_mm512_srli_epi16(v1, 4), m3), bcast32(x + 24));
        a7 = _mm512_dpbusd_epi32(a7, _mm512_and_si512(_mm512_srli_epi16(v1, 6), m3), bcast32(x + 28));
    }
    if (g < ngroups) {
        __m512i v0 = _mm512_maskz_loadu_epi8(lm, w + g * gstride);
        const int8_t *x = q + g * BN_R16_GROUP;
        a0 = _mm512_dpbusd_epi32(a0, _mm512_and_si512(v0, m3), bcast32(x));
        a1 = _mm512_dpbusd_epi32(a1, _mm512_and_si512(_mm512_srli_epi16(v0, 2), m3), bcast32(x + 4));
        a2 = _mm512_dpbusd_epi32(a2, _mm512_and_si512(_mm512_srli_epi16(v0, 4), m3), bcast32(x + 8));
        a3 = _mm512_dpbusd_epi32(a3, _mm512_and_si512(_mm512_srli_epi16(v0, 6), m3), bcast32(x + 12));
    }
    a0 = _mm512_add_epi32(_mm512_add_epi32(a0, a1), _mm512_add_epi32(a2, a3));
    a4 = _mm512_add_epi32(_mm512_add_epi32(a4, a5), _mm512_add_epi32(a6, a7));
    return _mm512_add_epi32(a0, a4);
}

/* Accumulators of a tile as 16 named variables (not an array: GCC keeps an array
 * of vectors in memory and copies it every iteration); with T a compile-time
 * constant the unused ones vanish. */
#define ACC_IDX(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) \
    X(14) X(15)
#define ACC_DECL(i) __m512i a##i = _mm512_setzero_si512();
#define ACC_DP(i) if (T > i) a##i = _mm512_dpbusd_epi32(a##i, c, _mm512_set1_epi32(xj[i]));
/* Up to 8 tokens, the odd 2-bit slices go to a second set, so each token has two
 * dependency chains to cover vpdpbusd's latency (int32 sums: the order does not
 * change the result); beyond 8 the registers only hold one set. */
#define ACC_TWO_CHAINS (T <= 8)
#define ACC_DECL_ODD(i) __m512i b##i = _mm512_setzero_si512();
#define ACC_DP_ODD(i)                                                                          \
    if (T > i) {                                                                               \
        if (ACC_TWO_CHAINS)                                                                    \
            b##i = _mm512_dpbusd_epi32(b##i, c, _mm512_set1_epi32(xj[i]));                     \
        else                                                                                   \
            a##i = _mm512_dpbusd_epi32(a##i, c, _mm512_set1_epi32(xj[i]));                     \
    }
#define ACC_OUT(i) if (T > i) acc[i] = ACC_TWO_CHAINS ? _mm512_add_epi32(a##i, b##i) : a##i;

/* T tokens (compile-time constant after inlining) over `ngroups` groups of a panel.
 * xp: the token block's interleaved activations, int32 [cols/4][T]. */
static ALWAYS_INLINE void gemm_panel(const uint8_t *w, int64_t ngroups, int64_t gstride,
                                     __mmask64 lm, const int32_t *xp, const int T, __m512i *acc)
{
    const __m512i m3 = _mm512_set1_epi8(3);
    ACC_IDX(ACC_DECL)
    ACC_IDX(ACC_DECL_ODD)
    for (int64_t g = 0; g < ngroups; g++) {
        __m512i v = _mm512_maskz_loadu_epi8(lm, w + g * gstride);
        const int32_t *xj = xp + g * 4 * T;
        __m512i c = _mm512_and_si512(v, m3);
        ACC_IDX(ACC_DP)
        xj += T;
        c = _mm512_and_si512(_mm512_srli_epi16(v, 2), m3);
        ACC_IDX(ACC_DP_ODD)
        xj += T;
        c = _mm512_and_si512(_mm512_srli_epi16(v, 4), m3);
        ACC_IDX(ACC_DP)
        xj += T;
        c = _mm512_and_si512(_mm512_srli_epi16(v, 6), m3);
        ACC_IDX(ACC_DP_ODD)
    }
    ACC_IDX(ACC_OUT)
}

/* ---- I2_R16 ---- */

/* One instantiation per token count: the accumulators stay in registers. */
#define I2_TILE_FN(T)                                                                          \
    static void i2_tile_##T(const uint8_t *w, int64_t ngroups, int64_t gstride, __mmask64 lm,  \
                            const int32_t *xp, const int32_t *sum, const float *xs, float scale, \
                            float *y, int64_t ystride, __mmask16 ym)                           \
    {                                                                                          \
        __m512i acc[T];                                                                        \
        gemm_panel(w, ngroups, gstride, lm, xp, T, acc);                                       \
        _Pragma("GCC unroll 16")                                                               \
        for (int t = 0; t < T; t++)                                                            \
            store_i2(y + t * ystride, acc[t], sum[t], xs[t], scale, ym);                       \
    }
#define TILE_LIST(X)                                                                           \
    X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15) X(16)
TILE_LIST(I2_TILE_FN)

typedef void (*i2_tile_fn)(const uint8_t *, int64_t, int64_t, __mmask64, const int32_t *,
                           const int32_t *, const float *, float, float *, int64_t, __mmask16);
#define I2_TILE_PTR(T) i2_tile_##T,
static const i2_tile_fn i2_tiles[BN_ACT_BLOCK + 1] = {NULL, TILE_LIST(I2_TILE_PTR)};

_Static_assert(BN_ACT_BLOCK == 16, "TILE_LIST instantiates tiles of 1..16 tokens");

void bn_gemm_i2r16_avx512(const struct bn_matrix *w, int64_t r0, int64_t r1,
                          const struct bn_act_i8 *a, float *y)
{
    int64_t rows = w->rows, cols = w->cols, ngroups = cols / BN_R16_GROUP, nt = a->n_tokens;
    const uint8_t *base = w->data;
    for (int64_t r = r0; r < r1; r += BN_R16_ROWS) {
        int64_t h = rows - r < BN_R16_ROWS ? rows - r : BN_R16_ROWS;
        const uint8_t *pw = base + (size_t)r * (size_t)(cols / 4);
        __mmask64 lm = h == BN_R16_ROWS ? ~(__mmask64)0 : (((__mmask64)1 << (4 * h)) - 1);
        __mmask16 ym = (__mmask16)((1u << h) - 1);
        if (nt == 1) {
            __m512i acc = gemv_panel(pw, ngroups, 4 * h, lm, a->q);
            store_i2(y + r, acc, a->sum[0], a->scale[0], w->scale, ym);
            continue;
        }
        for (int64_t b = 0; b < bn_act_blocks(nt); b++) {
            int64_t t0, tb;
            bn_act_block(nt, b, &t0, &tb);
            const int32_t *xp = (const int32_t *)((const uint8_t *)a->prep + (size_t)(t0 * cols));
            i2_tiles[tb](pw, ngroups, 4 * h, lm, xp, a->sum + t0, a->scale + t0, w->scale,
                         y + t0 * rows + r, rows, ym);
        }
    }
}

/* ---- TQ_R16 ----
 * Per 256-column block: the block's int32 dot (block activation sums from the
 * preparation), then per row lane the reference's run logic: when the block scale
 * differs from the running one, flush acc += (float)isum / xs * d and restart. */

struct tq_state {
    __m512i isum;
    __m512 d, acc;
};

static ALWAYS_INLINE void tq_block(struct tq_state *s, __m512i dot, __m512 bd, float xs)
{
    __mmask16 change = _mm512_cmp_ps_mask(bd, s->d, _CMP_NEQ_UQ);
    __m512 f = _mm512_mul_ps(_mm512_div_ps(_mm512_cvtepi32_ps(s->isum), _mm512_set1_ps(xs)), s->d);
    s->acc = _mm512_mask_add_ps(s->acc, change, s->acc, f);
    s->isum = _mm512_add_epi32(_mm512_maskz_mov_epi32((__mmask16)~change, s->isum), dot);
    s->d = _mm512_mask_mov_ps(s->d, change, bd);
}

static ALWAYS_INLINE void tq_finish(const struct tq_state *s, float xs, float *y, __mmask16 m)
{
    __m512 f = _mm512_mul_ps(_mm512_div_ps(_mm512_cvtepi32_ps(s->isum), _mm512_set1_ps(xs)), s->d);
    _mm512_mask_storeu_ps(y, m, _mm512_add_ps(s->acc, f));
}

#define TQ_TILE_FN(T)                                                                          \
    static void tq_tile_##T(const uint8_t *pw, int64_t nb, int64_t h, __mmask64 lm,           \
                            const int32_t *xp, const int32_t *bsum, int64_t bsum_stride,      \
                            const float *xs, float *y, int64_t ystride, __mmask16 ym)          \
    {                                                                                          \
        struct tq_state st[T];                                                                 \
        __m512i acc[T];                                                                        \
        __mmask16 sm = (__mmask16)((1u << h) - 1);                                             \
        __m512 d0 = _mm512_maskz_loadu_ps(sm, pw + (BN_QK_K / 4) * h);                         \
        for (int t = 0; t < T; t++)                                                            \
            st[t] = (struct tq_state){_mm512_setzero_si512(), d0, _mm512_setzero_ps()};        \
        for (int64_t b = 0; b < nb; b++) {                                                     \
            const uint8_t *bw = pw + b * BN_TQR16_BLOCK_BYTES * h;                             \
            if (T == 1) /* decode: independent accumulator chains */                           \
                acc[0] = gemv_panel(bw, BN_QK_K / BN_R16_GROUP, 4 * h, lm,                     \
                                    (const int8_t *)xp + b * BN_QK_K);                          \
            else                                                                               \
                gemm_panel(bw, BN_QK_K / BN_R16_GROUP, 4 * h, lm, xp + b * (BN_QK_K / 4) * T, T, acc); \
            __m512 bd = _mm512_maskz_loadu_ps(sm, bw + (BN_QK_K / 4) * h);                     \
            _Pragma("GCC unroll 16")                                                           \
            for (int t = 0; t < T; t++)                                                        \
                tq_block(&st[t], _mm512_sub_epi32(acc[t], _mm512_set1_epi32(bsum[t * bsum_stride + b])), \
                         bd, xs[t]);                                                           \
        }                                                                                      \
        for (int t = 0; t < T; t++)                                                            \
            tq_finish(&st[t], xs[t], y + t * ystride, ym);                                     \
    }
TILE_LIST(TQ_TILE_FN)

typedef void (*tq_tile_fn)(const uint8_t *, int64_t, int64_t, __mmask64, const int32_t *,
                           const int32_t *, int64_t, const float *, float *, int64_t, __mmask16);
#define TQ_TILE_PTR(T) tq_tile_##T,
static const tq_tile_fn tq_tiles[BN_ACT_BLOCK + 1] = {NULL, TILE_LIST(TQ_TILE_PTR)};

void bn_gemm_tqr16_avx512(const struct bn_matrix *w, int64_t r0, int64_t r1,
                          const struct bn_act_i8 *a, float *y)
{
    int64_t rows = w->rows, cols = w->cols, nb = cols / BN_QK_K, nt = a->n_tokens;
    size_t row_bytes = (size_t)nb * BN_TQR16_BLOCK_BYTES;
    const int32_t *bsum = bn_act_prep_tq_block_sums(a);
    for (int64_t r = r0; r < r1; r += BN_R16_ROWS) {
        int64_t h = rows - r < BN_R16_ROWS ? rows - r : BN_R16_ROWS;
        const uint8_t *pw = (const uint8_t *)w->data + (size_t)r * row_bytes;
        __mmask64 lm = h == BN_R16_ROWS ? ~(__mmask64)0 : (((__mmask64)1 << (4 * h)) - 1);
        __mmask16 ym = (__mmask16)((1u << h) - 1);
        for (int64_t b = 0; b < bn_act_blocks(nt); b++) {
            int64_t t0, tb;
            bn_act_block(nt, b, &t0, &tb);
            const int32_t *xp = nt == 1 ? (const int32_t *)a->q
                                        : (const int32_t *)((const uint8_t *)a->prep + (size_t)(t0 * cols));
            tq_tiles[tb](pw, nb, h, lm, xp, bsum + t0 * nb, nb, a->scale + t0, y + t0 * rows + r,
                         rows, ym);
        }
    }
}

#ifdef __clang__
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif
