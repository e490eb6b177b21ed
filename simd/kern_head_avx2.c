/* simd/kern_head_avx2.c — kernels of the float and 8/6-bit formats with AVX2 + FMA +
 * F16C; same scheme as simd/kern_head_avx512.c (one row at a time; Q8_0 and Q6_K
 * with int8 activations per block and integer dots via vpmaddubsw). */
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

static float f16_row_dot(const uint8_t *w, const float *x, int64_t cols)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t c = 0;
    for (; c + 32 <= cols; c += 32) {
        a0 = _mm256_fmadd_ps(cvt_f16x8(w + 2 * c), _mm256_loadu_ps(x + c), a0);
        a1 = _mm256_fmadd_ps(cvt_f16x8(w + 2 * c + 16), _mm256_loadu_ps(x + c + 8), a1);
        a2 = _mm256_fmadd_ps(cvt_f16x8(w + 2 * c + 32), _mm256_loadu_ps(x + c + 16), a2);
        a3 = _mm256_fmadd_ps(cvt_f16x8(w + 2 * c + 48), _mm256_loadu_ps(x + c + 24), a3);
    }
    for (; c + 8 <= cols; c += 8)
        a0 = _mm256_fmadd_ps(cvt_f16x8(w + 2 * c), _mm256_loadu_ps(x + c), a0);
    float s = hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; c < cols; c++)
        s += _cvtsh_ss(bn_rd_u16(w + 2 * c)) * x[c];
    return s;
}

static float f32_row_dot(const uint8_t *wb, const float *x, int64_t cols)
{
    const float *w = (const float *)wb;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t c = 0;
    for (; c + 32 <= cols; c += 32) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + c), _mm256_loadu_ps(x + c), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + c + 8), _mm256_loadu_ps(x + c + 8), a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w + c + 16), _mm256_loadu_ps(x + c + 16), a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w + c + 24), _mm256_loadu_ps(x + c + 24), a3);
    }
    for (; c + 8 <= cols; c += 8)
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + c), _mm256_loadu_ps(x + c), a0);
    float s = hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; c < cols; c++)
        s += w[c] * x[c];
    return s;
}

#define FLOAT_KERNEL(name, row_dot)                                                             \
    void name(const struct bn_matrix *w, int64_t r0, int64_t r1, const float *x,               \
              int64_t n_tokens, float *y, float *scratch)                                      \
    {                                                                                          \
        (void)scratch;                                                                         \
        size_t rb = bn_row_bytes(w->type, w->cols);                                            \
        for (int64_t r = r0; r < r1; r++) {                                                    \
            const uint8_t *p = (const uint8_t *)w->data + (size_t)r * rb;                      \
            for (int64_t t = 0; t < n_tokens; t++)                                             \
                y[t * w->rows + r] = row_dot(p, x + t * w->cols, w->cols);                     \
        }                                                                                      \
    }
FLOAT_KERNEL(bn_gemm_f16_avx2, f16_row_dot)
FLOAT_KERNEL(bn_gemm_f32_avx2, f32_row_dot)

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

static float q8_0_row_dot(const uint8_t *w, const uint8_t *xa, int64_t cols)
{
    const float *xd = (const float *)(xa + cols);
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 a0 = _mm256_setzero_ps(), a1 = a0;
    for (int64_t b = 0; b < cols / 32; b++) {
        const uint8_t *blk = w + b * BN_Q8_0_BLOCK_BYTES;
        __m256i wq = _mm256_loadu_si256((const __m256i *)(blk + 2));
        __m256i xq = _mm256_loadu_si256((const __m256i *)(xa + 32 * b));
        /* |w| (u8) times x with w's sign: pairs fit int16 (2 * 128 * 127) */
        __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(wq, wq), _mm256_sign_epi8(xq, wq));
        __m256 f = _mm256_cvtepi32_ps(_mm256_madd_epi16(p, ones));
        __m256 s = _mm256_set1_ps(_cvtsh_ss(bn_rd_u16(blk)) * xd[b]);
        if (b & 1)
            a1 = _mm256_fmadd_ps(f, s, a1);
        else
            a0 = _mm256_fmadd_ps(f, s, a0);
    }
    return hsum(_mm256_add_ps(a0, a1));
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

/* Layout and offset handling as in simd/kern_head_avx512.c. */
static float q6_k_row_dot(const uint8_t *w, const uint8_t *xa, int64_t cols)
{
    const int8_t *xq = (const int8_t *)xa;
    const uint8_t *meta = xa + cols;
    const __m256i m4 = _mm256_set1_epi8(0x0f), m3 = _mm256_set1_epi8(3);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < cols / BN_QK_K; b++, meta += 36) {
        const uint8_t *blk = w + b * BN_Q6_K_BLOCK_BYTES;
        const int8_t *sc = (const int8_t *)(blk + 192);
        __m256i isum = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            __m256i l0 = _mm256_loadu_si256((const __m256i *)(blk + 64 * h));
            __m256i l1 = _mm256_loadu_si256((const __m256i *)(blk + 64 * h + 32));
            __m256i H = _mm256_loadu_si256((const __m256i *)(blk + 128 + 32 * h));
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(H, m3), 4));
            q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(H, 2), m3), 4));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(H, 4), m3), 4));
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(H, 6), m3), 4));
            for (int j = 0; j < 4; j++) { /* weights 128h + 32j .. +32: subs 8h + 2j, +1 */
                __m256i p = _mm256_maddubs_epi16(q[j], _mm256_loadu_si256((const __m256i *)(xq + b * BN_QK_K + 128 * h + 32 * j)));
                int k = 8 * h + 2 * j;
                __m256i s = _mm256_setr_m128i(_mm_set1_epi16(sc[k]), _mm_set1_epi16(sc[k + 1]));
                isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, s));
            }
        }
        __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)sc));
        __m256i corr = _mm256_madd_epi16(sc16, _mm256_loadu_si256((const __m256i *)(meta + 4)));
        isum = _mm256_sub_epi32(isum, _mm256_slli_epi32(corr, 5));
        float xd;
        memcpy(&xd, meta, 4);
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(_cvtsh_ss(bn_rd_u16(blk + 208)) * xd), acc);
    }
    return hsum(acc);
}

#define INT8_KERNEL(name, token_bytes, quant_token, row_dot)                                    \
    void name(const struct bn_matrix *w, int64_t r0, int64_t r1, const float *x,               \
              int64_t n_tokens, float *y, float *scratch)                                      \
    {                                                                                          \
        int64_t cols = w->cols;                                                                \
        size_t tb = (token_bytes(cols) + 63) / 64 * 64;                                        \
        uint8_t *xa = (uint8_t *)scratch;                                                      \
        for (int64_t t = 0; t < n_tokens; t++)                                                 \
            quant_token(x + t * cols, cols, xa + (size_t)t * tb);                              \
        size_t rb = bn_row_bytes(w->type, cols);                                               \
        for (int64_t r = r0; r < r1; r++) {                                                    \
            const uint8_t *p = (const uint8_t *)w->data + (size_t)r * rb;                      \
            for (int64_t t = 0; t < n_tokens; t++)                                             \
                y[t * w->rows + r] = row_dot(p, xa + (size_t)t * tb, cols);                    \
        }                                                                                      \
    }
INT8_KERNEL(bn_gemm_q8_0_avx2, q8_0_token_bytes, q8_0_quant_token, q8_0_row_dot)
INT8_KERNEL(bn_gemm_q6_k_avx2, q6_k_token_bytes, q6_k_quant_token, q6_k_row_dot)

#ifdef __clang__
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif
