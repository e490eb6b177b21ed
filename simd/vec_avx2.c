/* simd/vec_avx2.c — vector ops with AVX2 + FMA + F16C, chosen at run time.
 * Same contract as simd/vec_avx512.c: quantize_act_i8 and rope_apply are
 * bit-identical to the scalar reference; the sums differ in order. */
#include "internal.h"

#if BN_X86
#include <immintrin.h>

#ifdef __clang__
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#endif

static inline __m256 abs_ps(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }

static float quantize_act_i8_avx2(const float *x, int64_t n, int8_t *q, int32_t *sum)
{
    __m256 m0 = _mm256_setzero_ps(), m1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) { /* max(|x|, acc) keeps acc when x is NaN */
        m0 = _mm256_max_ps(abs_ps(_mm256_loadu_ps(x + i)), m0);
        m1 = _mm256_max_ps(abs_ps(_mm256_loadu_ps(x + i + 8)), m1);
    }
    m0 = _mm256_max_ps(m0, m1);
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m0), _mm256_extractf128_ps(m0, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 1));
    float amax = _mm_cvtss_f32(m4);
    for (int64_t j = i; j < n; j++)
        amax = fmaxf(amax, fabsf(x[j]));
    float s = 127.0f / fmaxf(amax, BN_ACT_EPS);
    const __m256 vs = _mm256_set1_ps(s), hi = _mm256_set1_ps(127.0f), lo = _mm256_set1_ps(-128.0f);
    __m256i acc = _mm256_setzero_si256();
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (i = 0; i + 32 <= n; i += 32) {
        __m256i vi[4];
        for (int j = 0; j < 4; j++) {
            __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i + 8 * j), vs);
            __m256 ord = _mm256_cmp_ps(v, v, _CMP_ORD_Q); /* NaN lanes -> 0 */
            v = _mm256_max_ps(lo, _mm256_min_ps(hi, v));
            v = _mm256_and_ps(_mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), ord);
            vi[j] = _mm256_cvttps_epi32(v);
            acc = _mm256_add_epi32(acc, vi[j]);
        }
        /* packs work per 128-bit lane: 0..3 8..11 4..7 12..15 | ...; the dword permute
         * puts the bytes back in order */
        __m256i w01 = _mm256_packs_epi32(vi[0], vi[1]), w23 = _mm256_packs_epi32(vi[2], vi[3]);
        __m256i b = _mm256_packs_epi16(w01, w23);
        _mm256_storeu_si256((__m256i *)(q + i), _mm256_permutevar8x32_epi32(b, perm));
    }
    int32_t total = 0;
    __m128i a4 = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    a4 = _mm_add_epi32(a4, _mm_shuffle_epi32(a4, 0x4e));
    a4 = _mm_add_epi32(a4, _mm_shuffle_epi32(a4, 0xb1));
    total = _mm_cvtsi128_si32(a4);
    for (; i < n; i++) {
        float v = rintf(x[i] * s);
        q[i] = v != v ? 0 : (int8_t)(v > 127.0f ? 127 : v < -128.0f ? -128 : v);
        total += q[i];
    }
    if (sum)
        *sum = total;
    return s;
}

static inline float hsum_ps(__m256 v)
{
    __m128 a = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    a = _mm_add_ps(a, _mm_movehl_ps(a, a));
    a = _mm_add_ss(a, _mm_shuffle_ps(a, a, 1));
    return _mm_cvtss_f32(a);
}

static void rmsnorm_avx2(float *out, const float *x, const float *w, int64_t n, float eps)
{
    __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256d d0 = _mm256_cvtps_pd(_mm256_castps256_ps128(v)), d1 = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
        a0 = _mm256_fmadd_pd(d0, d0, a0);
        a1 = _mm256_fmadd_pd(d1, d1, a1);
    }
    a0 = _mm256_add_pd(a0, a1);
    __m128d h = _mm_add_pd(_mm256_castpd256_pd128(a0), _mm256_extractf128_pd(a0, 1));
    double ss = _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
    for (int64_t j = i; j < n; j++)
        ss += (double)x[j] * x[j];
    float inv = (float)(1.0 / sqrt(ss / (double)n + (double)eps));
    const __m256 vi = _mm256_set1_ps(inv);
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i), vi);
        if (w)
            v = _mm256_mul_ps(v, _mm256_loadu_ps(w + i));
        _mm256_storeu_ps(out + i, v);
    }
    for (; i < n; i++)
        out[i] = w ? x[i] * inv * w[i] : x[i] * inv;
}

/* exp for x <= 0, as in simd/vec_avx512.c */
static inline __m256 exp_neg_avx2(__m256 x)
{
    const __m256 log2e = _mm256_set1_ps(1.44269504088896341f);
    const __m256 c1 = _mm256_set1_ps(0.693359375f), c2 = _mm256_set1_ps(-2.12194440e-4f);
    __m256 keep = _mm256_cmp_ps(x, _mm256_set1_ps(-87.3f), _CMP_GE_OQ);
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.3f));
    __m256 nf = _mm256_round_ps(_mm256_mul_ps(x, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(nf, c1, x);
    r = _mm256_fnmadd_ps(nf, c2, r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(nf), _mm256_set1_epi32(127)), 23);
    return _mm256_and_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(e)), keep);
}

static void softmax_avx2(float *x, int64_t n)
{
    float m = -INFINITY;
    int64_t i = 0;
    __m256 mx = _mm256_set1_ps(-INFINITY);
    for (; i + 8 <= n; i += 8)
        mx = _mm256_max_ps(_mm256_loadu_ps(x + i), mx);
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 1));
    m = _mm_cvtss_f32(m4);
    for (int64_t j = i; j < n; j++)
        m = fmaxf(m, x[j]);
    const __m256 vm = _mm256_set1_ps(m);
    __m256 s = _mm256_setzero_ps();
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 e = exp_neg_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
        s = _mm256_add_ps(s, e);
        _mm256_storeu_ps(x + i, e);
    }
    double sum = hsum_ps(s);
    for (; i < n; i++) {
        x[i] = expf(x[i] - m);
        sum += x[i];
    }
    float inv = (float)(1.0 / sum);
    const __m256 vi = _mm256_set1_ps(inv);
    for (i = 0; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), vi));
    for (; i < n; i++)
        x[i] *= inv;
}

static void rope_apply_avx2(float *x, int n_heads, int head_dim, const float *cs, const float *sn)
{
    int half = head_dim / 2;
    for (int h = 0; h < n_heads; h++) {
        float *v = x + (int64_t)h * head_dim;
        int i = 0;
        for (; i + 8 <= half; i += 8) {
            __m256 a = _mm256_loadu_ps(v + i), b = _mm256_loadu_ps(v + i + half);
            __m256 c = _mm256_loadu_ps(cs + i), s = _mm256_loadu_ps(sn + i);
            _mm256_storeu_ps(v + i, _mm256_sub_ps(_mm256_mul_ps(a, c), _mm256_mul_ps(b, s)));
            _mm256_storeu_ps(v + i + half, _mm256_add_ps(_mm256_mul_ps(a, s), _mm256_mul_ps(b, c)));
        }
        for (; i < half; i++) {
            float a = v[i], b = v[i + half];
            v[i] = a * cs[i] - b * sn[i];
            v[i + half] = a * sn[i] + b * cs[i];
        }
    }
}

static float dot_avx2(const float *a, const float *b, int64_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    float s = hsum_ps(_mm256_add_ps(s0, s1));
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static void axpy_avx2(float *y, float a, const float *x, int64_t n)
{
    const __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++)
        y[i] += a * x[i];
}

static void add_avx2(float *y, const float *x, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i), _mm256_loadu_ps(x + i)));
    for (; i < n; i++)
        y[i] += x[i];
}

static void relu2_mul_avx2(float *g, const float *u, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(g + i);
        v = _mm256_and_ps(v, _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_GT_OQ));
        _mm256_storeu_ps(g + i, _mm256_mul_ps(_mm256_mul_ps(v, v), _mm256_loadu_ps(u + i)));
    }
    for (; i < n; i++) {
        float v = g[i] > 0.0f ? g[i] : 0.0f;
        g[i] = v * v * u[i];
    }
}

static void f16_to_f32_avx2(const uint16_t *src, float *dst, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < n; i++)
        dst[i] = bn_f16_to_f32(src[i]);
}

static void f32_to_f16_avx2(const float *src, uint16_t *dst, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    for (; i < n; i++)
        dst[i] = bn_f32_to_f16(src[i]);
}

/* 32 double lanes in 8 registers of 4, the scalar reference's order. */
static void ternary_stats_avx2(const float *x, int64_t n, struct bn_ternary_stats *out)
{
    __m256d s[8];
    for (int k = 0; k < 8; k++)
        s[k] = _mm256_setzero_pd();
    __m256 mx = _mm256_setzero_ps(), mn = _mm256_set1_ps(INFINITY), nan = _mm256_setzero_ps();
    const __m256 z = _mm256_setzero_ps();
    int64_t full = n - n % BN_TERNARY_SUM_LANES, i = 0;
    for (; i < full; i += 32) {
        for (int k = 0; k < 4; k++) {
            __m256 a = abs_ps(_mm256_loadu_ps(x + i + 8 * k));
            s[2 * k] = _mm256_add_pd(s[2 * k], _mm256_cvtps_pd(_mm256_castps256_ps128(a)));
            s[2 * k + 1] = _mm256_add_pd(s[2 * k + 1], _mm256_cvtps_pd(_mm256_extractf128_ps(a, 1)));
            mx = _mm256_max_ps(a, mx);
            __m256 nz = _mm256_blendv_ps(_mm256_set1_ps(INFINITY), a, _mm256_cmp_ps(a, z, _CMP_GT_OQ));
            mn = _mm256_min_ps(nz, mn);
            nan = _mm256_or_ps(nan, _mm256_cmp_ps(a, a, _CMP_UNORD_Q));
        }
    }
    double sv[BN_TERNARY_SUM_LANES];
    for (int k = 0; k < 8; k++)
        _mm256_storeu_pd(sv + 4 * k, s[k]);
    float m8[8], n8[8];
    _mm256_storeu_ps(m8, mx);
    _mm256_storeu_ps(n8, mn);
    float amax = 0.0f, mnz = INFINITY;
    for (int k = 0; k < 8; k++) {
        amax = m8[k] > amax ? m8[k] : amax;
        mnz = n8[k] < mnz ? n8[k] : mnz;
    }
    bool any_nan = _mm256_movemask_ps(nan) != 0;
    for (; i < n; i++) {
        float a = fabsf(x[i]);
        sv[i - full] += a;
        amax = a > amax ? a : amax;
        mnz = a > 0.0f && a < mnz ? a : mnz;
        any_nan |= a != a;
    }
    for (int h = BN_TERNARY_SUM_LANES / 2; h >= 1; h /= 2)
        for (int k = 0; k < h; k++)
            sv[k] += sv[k + h];
    *out = (struct bn_ternary_stats){.sum = sv[0], .amax = amax, .min_nonzero = mnz, .nan = any_nan};
}

static void ternary_codes_avx2(const float *x, int64_t n, float inv, bool exact, int8_t *codes)
{
    const __m256 vi = _mm256_set1_ps(inv);
    const __m256 hi = _mm256_set1_ps(exact ? 0.0f : 0.5f), lo = _mm256_set1_ps(exact ? -0.0f : -0.5f);
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i c[4];
        for (int k = 0; k < 4; k++) {
            __m256 v = _mm256_loadu_ps(x + i + 8 * k);
            if (!exact)
                v = _mm256_mul_ps(v, vi);
            /* true compares are -1: neg - pos = code */
            __m256i pos = _mm256_castps_si256(_mm256_cmp_ps(v, hi, _CMP_GT_OQ));
            __m256i neg = _mm256_castps_si256(_mm256_cmp_ps(v, lo, _CMP_LT_OQ));
            c[k] = _mm256_sub_epi32(neg, pos);
        }
        __m256i b = _mm256_packs_epi16(_mm256_packs_epi32(c[0], c[1]), _mm256_packs_epi32(c[2], c[3]));
        _mm256_storeu_si256((__m256i *)(codes + i), _mm256_permutevar8x32_epi32(b, perm));
    }
    for (; i < n; i++) {
        float v = exact ? x[i] : x[i] * inv;
        codes[i] = exact ? (int8_t)((v > 0.0f) - (v < 0.0f)) : (int8_t)((v > 0.5f) - (v < -0.5f));
    }
}

static void pack2_avx2(const int8_t *c, int64_t n, uint8_t *out, int64_t out_stride, bool msb_first)
{
    const __m256i one = _mm256_set1_epi8(1);
    for (int64_t i = 0; i < n; i += 128, c += 128, out += out_stride) {
        __m256i v[4];
        for (int k = 0; k < 4; k++)
            v[msb_first ? k : 3 - k] = _mm256_add_epi8(_mm256_loadu_si256((const __m256i *)(c + 32 * k)), one);
        __m256i o = _mm256_or_si256(_mm256_or_si256(_mm256_slli_epi16(v[0], 6), _mm256_slli_epi16(v[1], 4)),
                                    _mm256_or_si256(_mm256_slli_epi16(v[2], 2), v[3]));
        _mm256_storeu_si256((__m256i *)out, o);
    }
}

/* TL tables, one pair / triple per register: entries sum_k sign(a_k, S_k) (psignw),
 * low and high bytes packed to the two 16-byte tables. */
static inline void store_lut16(__m256i t, uint8_t *lo, uint8_t *hi)
{
    const __m256i m = _mm256_set1_epi16(0xff);
    __m256i l = _mm256_packus_epi16(_mm256_and_si256(t, m), _mm256_and_si256(t, m));
    __m256i h = _mm256_packus_epi16(_mm256_and_si256(_mm256_srai_epi16(t, 8), m), _mm256_and_si256(_mm256_srai_epi16(t, 8), m));
    _mm_storeu_si128((__m128i *)lo, _mm256_castsi256_si128(_mm256_permute4x64_epi64(l, 0x08)));
    _mm_storeu_si128((__m128i *)hi, _mm256_castsi256_si128(_mm256_permute4x64_epi64(h, 0x08)));
}

static void tl1_luts_avx2(const int8_t *q, int64_t n_groups, uint8_t *lut)
{
    const __m256i S0 = _mm256_set_epi16(0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, -1, -1, -1);
    const __m256i S1 = _mm256_set_epi16(0, 0, 0, 0, 0, 0, 0, 1, 0, -1, 1, 0, -1, 1, 0, -1);
    for (int64_t g = 0; g < n_groups; g++, q += 16, lut += BN_TL1_LUT_BYTES)
        for (int p = 0; p < 8; p++) {
            __m256i t = _mm256_add_epi16(_mm256_sign_epi16(_mm256_set1_epi16(q[2 * p]), S0),
                                         _mm256_sign_epi16(_mm256_set1_epi16(q[2 * p + 1]), S1));
            uint8_t *lo = lut + (p < 4 ? 0 : 64) + 16 * (p % 4);
            store_lut16(t, lo, lo + 128);
        }
}

static void tl2_luts_avx2(const int8_t *q, int64_t n_groups, uint8_t *lut)
{
    int16_t s[3][16];
    for (int m = 0; m < 16; m++) {
        int v = 13 + m;
        s[0][m] = (int16_t)(m < 14 ? v / 9 - 1 : 0);
        s[1][m] = (int16_t)(m < 14 ? v / 3 % 3 - 1 : 0);
        s[2][m] = (int16_t)(m < 14 ? v % 3 - 1 : 0);
    }
    const __m256i S0 = _mm256_loadu_si256((const __m256i *)s[0]), S1 = _mm256_loadu_si256((const __m256i *)s[1]),
                  S2 = _mm256_loadu_si256((const __m256i *)s[2]);
    for (int64_t g = 0; g < n_groups; g++, q += 48, lut += BN_TL2_LUT_BYTES)
        for (int t = 0; t < 16; t++) {
            __m256i v = _mm256_add_epi16(_mm256_add_epi16(_mm256_sign_epi16(_mm256_set1_epi16(q[3 * t]), S0),
                                                          _mm256_sign_epi16(_mm256_set1_epi16(q[3 * t + 1]), S1)),
                                         _mm256_sign_epi16(_mm256_set1_epi16(q[3 * t + 2]), S2));
            uint8_t *lo = lut + 128 * (t / 4) + 16 * (t % 4);
            store_lut16(v, lo, lo + 64);
        }
}

#ifdef __clang__
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

const struct bn_vec_kernels bn_vec_avx2 = {
    .quantize_act_i8 = quantize_act_i8_avx2,
    .rmsnorm = rmsnorm_avx2,
    .softmax = softmax_avx2,
    .rope_apply = rope_apply_avx2,
    .dot = dot_avx2,
    .axpy = axpy_avx2,
    .add = add_avx2,
    .relu2_mul = relu2_mul_avx2,
    .f16_to_f32 = f16_to_f32_avx2,
    .f32_to_f16 = f32_to_f16_avx2,
    .ternary_stats = ternary_stats_avx2,
    .ternary_codes = ternary_codes_avx2,
    .pack2 = pack2_avx2,
    .tl1_luts = tl1_luts_avx2,
    .tl2_luts = tl2_luts_avx2,
};
#endif
