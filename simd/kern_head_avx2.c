/* simd/kern_head_avx2.c — kernels of the float and 8/6-bit formats with AVX2 + FMA +
 * F16C; same scheme as simd/kern_head_avx512.c (one row at a time, several tokens per
 * row pass; Q8_0 and Q6_K with int8 activations per block and integer dots via
 * vpmaddubsw). */
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

static ALWAYS_INLINE float hsum(__m256 v)
{
    __m128 a = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    a = _mm_add_ps(a, _mm_movehl_ps(a, a));
    a = _mm_add_ss(a, _mm_shuffle_ps(a, a, 1));
    return _mm_cvtss_f32(a);
}

static ALWAYS_INLINE int32_t hsum_i32(__m256i v)
{
    __m128i a = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    a = _mm_add_epi32(a, _mm_shuffle_epi32(a, 0x4e));
    a = _mm_add_epi32(a, _mm_shuffle_epi32(a, 0xb1));
    return _mm_cvtsi128_si32(a);
}

static ALWAYS_INLINE __m256 cvt_f16x8(const void *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }

/* ---- F16 / F32 ---- */

/* Several tokens as in simd/kern_head_avx512.c (head_blocking in internal.h): up to
 * HEAD_TOK_* tokens meet each row while it is in registers/L1, each weight chunk
 * loaded (F16-converted, Q8_0 sign-split, Q6_K-unpacked) once for all of them.  A
 * token keeps its own accumulators in the one-token order, so its result does not
 * depend on how many tokens share the call.  Group limits for the 16 ymm registers:
 *   F16/F32: 4 chains per token + 1 weight vector: 3 tokens = 13 ymm (4 would be 17);
 *   Q8_0: 2 chains per token + w, |w|, ones, 2 temporaries: 4 tokens = 13 ymm;
 *   Q6_K: acc + block sum per token + masks, 1 unpacked chunk, its scales and a
 *   temporary: 4 tokens = 13 ymm (all 4 chunks unpacked at once spilled). */
#define HEAD_TOK_FLOAT 3
#define HEAD_TOK_INT8 4
#define HEAD_PF_BYTES 4096 /* prefetch distance of the several-token passes: F16, 2 tokens, 2 threads: 31.9 -> 23.5 ms per 656 MB head */

/* F16 / F32 row · T tokens (x: [T][xstride] floats), 4 accumulator chains per token;
 * out[t * ostride] for token t. */
static ALWAYS_INLINE void float_row_dot(const uint8_t *w, bool f16, const float *x, int64_t xstride,
                                        int64_t cols, const int T, float *out, int64_t ostride)
{
    __m256 a[HEAD_TOK_FLOAT][4];
    _Pragma("GCC unroll 4")
    for (int t = 0; t < T; t++)
        a[t][0] = a[t][1] = a[t][2] = a[t][3] = _mm256_setzero_ps();
    int64_t c = 0;
    for (; c + 32 <= cols; c += 32) {
        if (T > 1) { /* more compute per byte: help the stream along; 32 cols = 1 (F16) or 2 (F32) lines */
            _mm_prefetch((const char *)w + (f16 ? 2 : 4) * c + HEAD_PF_BYTES, _MM_HINT_T0);
            if (!f16)
                _mm_prefetch((const char *)w + 4 * c + HEAD_PF_BYTES + 64, _MM_HINT_T0);
        }
        _Pragma("GCC unroll 4")
        for (int k = 0; k < 4; k++) { /* one weight vector live at a time (register budget) */
            __m256 wv = f16 ? cvt_f16x8(w + 2 * (c + 8 * k)) : _mm256_loadu_ps((const float *)w + c + 8 * k);
            _Pragma("GCC unroll 4")
            for (int t = 0; t < T; t++)
                a[t][k] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + t * xstride + c + 8 * k), a[t][k]);
        }
    }
    for (; c + 8 <= cols; c += 8) {
        __m256 wv = f16 ? cvt_f16x8(w + 2 * c) : _mm256_loadu_ps((const float *)w + c);
        _Pragma("GCC unroll 4")
        for (int t = 0; t < T; t++)
            a[t][0] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + t * xstride + c), a[t][0]);
    }
    _Pragma("GCC unroll 4")
    for (int t = 0; t < T; t++) {
        float s = hsum(_mm256_add_ps(_mm256_add_ps(a[t][0], a[t][1]), _mm256_add_ps(a[t][2], a[t][3])));
        for (int64_t i = c; i < cols; i++)
            s += (f16 ? _cvtsh_ss(bn_rd_u16(w + 2 * i)) : ((const float *)w)[i]) * x[t * xstride + i];
        out[t * ostride] = s;
    }
}

/* Rows in L2-sized blocks, tokens in groups of up to HEAD_TOK_FLOAT (head_blocking). */
#define FLOAT_KERNEL(name, is_f16)                                                         \
    static void name##_rows(const uint8_t *p, const uint8_t *xa, size_t tb, int64_t cols,  \
                            int64_t nt, float *y, int64_t ystride)                         \
    {                                                                                      \
        const float *x = (const float *)xa; /* tb == cols floats */                        \
        (void)tb;                                                                          \
        switch (nt) {                                                                      \
        case 1: float_row_dot(p, is_f16, x, cols, cols, 1, y, ystride); break;             \
        case 2: float_row_dot(p, is_f16, x, cols, cols, 2, y, ystride); break;             \
        default: float_row_dot(p, is_f16, x, cols, cols, 3, y, ystride); break;            \
        }                                                                                  \
    }                                                                                      \
    void name(const struct bn_matrix *w, int64_t r0, int64_t r1, const float *x,           \
              int64_t n_tokens, float *y, float *scratch)                                  \
    {                                                                                      \
        (void)scratch;                                                                     \
        head_walk(w, r0, r1, (const uint8_t *)x, (size_t)w->cols * sizeof(float), n_tokens,\
                  HEAD_TOK_FLOAT, y, name##_rows);                                         \
    }
FLOAT_KERNEL(bn_gemm_f16_avx2, true)
FLOAT_KERNEL(bn_gemm_f32_avx2, false)

/* ---- int8 activations per block: x ~ q * d, |q| <= 127 ---- */

/* n (multiple of 8) floats -> int8; returns d; sums of each 16 in sums16 (may be NULL). */
static float quant_block(const float *x, int n, int8_t *q, int16_t *sums16)
{
    __m256 m = _mm256_setzero_ps();
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int i = 0; i < n; i += 8)
        m = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + i)), m);
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 1));
    float amax = _mm_cvtss_f32(m4);
    float d = amax / 127.0f, id = amax > 0.0f ? 127.0f / amax : 0.0f;
    const __m256i hi = _mm256_set1_epi32(127), lo = _mm256_set1_epi32(-127);
    for (int i = 0; i < n; i += 16) {
        __m256i a = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + i), _mm256_set1_ps(id)));
        __m256i b = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + i + 8), _mm256_set1_ps(id)));
        a = _mm256_max_epi32(_mm256_min_epi32(a, hi), lo);
        b = _mm256_max_epi32(_mm256_min_epi32(b, hi), lo);
        __m128i w = _mm_packs_epi16(_mm_packs_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1)),
                                    _mm_packs_epi32(_mm256_castsi256_si128(b), _mm256_extracti128_si256(b, 1)));
        _mm_storeu_si128((__m128i *)(q + i), w);
        if (sums16)
            sums16[i / 16] = (int16_t)hsum_i32(_mm256_add_epi32(a, b));
    }
    return d;
}

/* Q8_0: int8 [cols] then float [cols/32] scales. */
static size_t q8_0_token_bytes(int64_t cols) { return (size_t)cols + (size_t)(cols / 32) * 4; }

static void q8_0_quant_token(const float *x, int64_t cols, uint8_t *out)
{
    float *d = (float *)(out + cols);
    for (int64_t b = 0; b < cols / 32; b++)
        d[b] = quant_block(x + 32 * b, 32, (int8_t *)out + 32 * b, NULL);
}

/* Q8_0 block b of a row · T tokens (x: [T][xstride] bytes), into acc[t]. */
static ALWAYS_INLINE void q8_0_block(const uint8_t *blk, const uint8_t *xa0, size_t xstride, int64_t cols,
                                     int64_t b, const int T, __m256 *acc)
{
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i wq = _mm256_loadu_si256((const __m256i *)(blk + 2));
    __m256i wa = _mm256_sign_epi8(wq, wq);
    float dw = _cvtsh_ss(bn_rd_u16(blk));
    _Pragma("GCC unroll 4")
    for (int t = 0; t < T; t++) {
        const uint8_t *xa = xa0 + (size_t)t * xstride;
        __m256i xq = _mm256_loadu_si256((const __m256i *)(xa + 32 * b));
        float xd;
        memcpy(&xd, xa + cols + 4 * b, 4);
        /* |w| (u8) times x with w's sign: pairs fit int16 (2 * 128 * 127) */
        __m256i p = _mm256_maddubs_epi16(wa, _mm256_sign_epi8(xq, wq));
        __m256 f = _mm256_cvtepi32_ps(_mm256_madd_epi16(p, ones));
        acc[t] = _mm256_fmadd_ps(f, _mm256_set1_ps(dw * xd), acc[t]);
    }
}

/* Q8_0 row · T tokens; even blocks into a0, odd into a1 (2 chains per token). */
static ALWAYS_INLINE void q8_0_row_dot(const uint8_t *w, const uint8_t *xa0, size_t xstride,
                                       int64_t cols, const int T, float *out, int64_t ostride)
{
    int64_t nb = cols / BN_QK8_0, b = 0;
    __m256 a0[HEAD_TOK_INT8], a1[HEAD_TOK_INT8];
    _Pragma("GCC unroll 4")
    for (int t = 0; t < T; t++)
        a0[t] = a1[t] = _mm256_setzero_ps();
    for (; b + 2 <= nb; b += 2) {
        const uint8_t *blk = w + b * BN_Q8_0_BLOCK_BYTES; /* 68 bytes: about one line per pair */
        if (T > 1)
            _mm_prefetch((const char *)blk + HEAD_PF_BYTES, _MM_HINT_T0);
        q8_0_block(blk, xa0, xstride, cols, b, T, a0);
        q8_0_block(blk + BN_Q8_0_BLOCK_BYTES, xa0, xstride, cols, b + 1, T, a1);
    }
    if (b < nb)
        q8_0_block(w + b * BN_Q8_0_BLOCK_BYTES, xa0, xstride, cols, b, T, a0);
    _Pragma("GCC unroll 4")
    for (int t = 0; t < T; t++)
        out[t * ostride] = hsum(_mm256_add_ps(a0[t], a1[t]));
}

/* Q6_K: int8 [cols], then per 256-block float scale and int16 [16] sums of 16. */
static size_t q6_k_token_bytes(int64_t cols) { return (size_t)cols + (size_t)(cols / BN_QK_K) * 36; }

static void q6_k_quant_token(const float *x, int64_t cols, uint8_t *out)
{
    uint8_t *meta = out + cols;
    for (int64_t b = 0; b < cols / BN_QK_K; b++, meta += 36) {
        int16_t sums[16];
        float d = quant_block(x + BN_QK_K * b, BN_QK_K, (int8_t *)out + BN_QK_K * b, sums);
        memcpy(meta, &d, 4);
        memcpy(meta + 4, sums, 32);
    }
}

/* Q6_K row · T tokens (layout and the -32 offset as in simd/kern_head_avx512.c): per
 * 256-block an exact int32 sum per token, then one FMA per block into acc[t]. */
static ALWAYS_INLINE void q6_k_row_dot(const uint8_t *w, const uint8_t *xa0, size_t xstride,
                                       int64_t cols, const int T, float *out, int64_t ostride)
{
    const __m256i m4 = _mm256_set1_epi8(0x0f), m3 = _mm256_set1_epi8(3);
    __m256 acc[HEAD_TOK_INT8];
    _Pragma("GCC unroll 4")
    for (int t = 0; t < T; t++)
        acc[t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < cols / BN_QK_K; b++) {
        const uint8_t *blk = w + b * BN_Q6_K_BLOCK_BYTES;
        const int8_t *sc = (const int8_t *)(blk + 192);
        if (T > 1) { /* 210 bytes per block: 4 lines */
            _Pragma("GCC unroll 4")
            for (int l = 0; l < 4; l++)
                _mm_prefetch((const char *)blk + HEAD_PF_BYTES + 64 * l, _MM_HINT_T0);
        }
        __m256i isum[HEAD_TOK_INT8];
        _Pragma("GCC unroll 4")
        for (int t = 0; t < T; t++)
            isum[t] = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            _Pragma("GCC unroll 4")
            for (int j = 0; j < 4; j++) { /* weights 128h + 32j .. +32: subs 8h + 2j, +1 */
                /* ql bytes 64h + 32(j & 1): low nibbles for j < 2, high for j >= 2;
                 * qh bits 2j, 2j+1 of bytes 128 + 32h.  Unpacked one chunk at a time so
                 * that 2 x T accumulators stay in registers. */
                __m256i L = _mm256_loadu_si256((const __m256i *)(blk + 64 * h + 32 * (j & 1)));
                __m256i H = _mm256_loadu_si256((const __m256i *)(blk + 128 + 32 * h));
                __m256i q = _mm256_or_si256(_mm256_and_si256(j & 2 ? _mm256_srli_epi16(L, 4) : L, m4),
                                            _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(H, 2 * j), m3), 4));
                int k = 8 * h + 2 * j;
                __m256i s = _mm256_setr_m128i(_mm_set1_epi16(sc[k]), _mm_set1_epi16(sc[k + 1]));
                _Pragma("GCC unroll 4")
                for (int t = 0; t < T; t++) {
                    const int8_t *xq = (const int8_t *)(xa0 + (size_t)t * xstride) + b * BN_QK_K + 128 * h + 32 * j;
                    __m256i p = _mm256_maddubs_epi16(q, _mm256_loadu_si256((const __m256i *)xq));
                    isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(p, s));
                    /* keeps the adds in this order: GCC would regroup them into trees
                     * over j (4 products per token live at once) and spill */
                    __asm__("" : "+x"(isum[t]));
                }
            }
        }
        __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)sc));
        float dw = _cvtsh_ss(bn_rd_u16(blk + 208));
        _Pragma("GCC unroll 4")
        for (int t = 0; t < T; t++) {
            const uint8_t *meta = xa0 + (size_t)t * xstride + cols + (size_t)b * 36;
            __m256i corr = _mm256_madd_epi16(sc16, _mm256_loadu_si256((const __m256i *)(meta + 4)));
            __m256i is = _mm256_sub_epi32(isum[t], _mm256_slli_epi32(corr, 5));
            float xd;
            memcpy(&xd, meta, 4);
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is), _mm256_set1_ps(dw * xd), acc[t]);
        }
    }
    _Pragma("GCC unroll 4")
    for (int t = 0; t < T; t++)
        out[t * ostride] = hsum(acc[t]);
}

HEAD_INT8_KERNEL(bn_gemm_q8_0_avx2, q8_0_token_bytes, q8_0_quant_token, q8_0_row_dot, HEAD_TOK_INT8)
HEAD_INT8_KERNEL(bn_gemm_q6_k_avx2, q6_k_token_bytes, q6_k_quant_token, q6_k_row_dot, HEAD_TOK_INT8)

#ifdef __clang__
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif
