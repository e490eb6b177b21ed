/* simd/vec_avx512.c — vector ops with AVX-512 (F/BW/VL/DQ), chosen at run time.
 * Results: quantize_act_i8 and rope_apply are bit-identical to the scalar
 * reference (same float operations per element); rmsnorm, softmax and dot sum in a
 * different order (and exp is a polynomial), so they differ in the last bits. */
#include "internal.h"

#if BN_X86
#include <immintrin.h>

#ifdef __clang__
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")
#endif

static inline __mmask16 tail_mask16(int64_t left) { return left >= 16 ? 0xffff : (__mmask16)((1u << left) - 1); }

static float quantize_act_i8_avx512(const float *x, int64_t n, int8_t *q, int32_t *sum)
{
    /* max(|x|, acc) keeps acc when x is NaN, as fmaxf does */
    __m512 m0 = _mm512_setzero_ps(), m1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        m0 = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x + i)), m0);
        m1 = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x + i + 16)), m1);
    }
    for (; i < n; i += 16)
        m0 = _mm512_max_ps(_mm512_abs_ps(_mm512_maskz_loadu_ps(tail_mask16(n - i), x + i)), m0);
    float amax = _mm512_reduce_max_ps(_mm512_max_ps(m0, m1));
    float s = 127.0f / fmaxf(amax, BN_ACT_EPS);
    const __m512 vs = _mm512_set1_ps(s), hi = _mm512_set1_ps(127.0f), lo = _mm512_set1_ps(-128.0f);
    __m512i acc = _mm512_setzero_si512();
    for (i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask16(n - i);
        __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), vs);
        /* clamp; NaN lanes become 0 as the scalar conversion gives */
        __mmask16 ord = _mm512_cmp_ps_mask(v, v, _CMP_ORD_Q);
        v = _mm512_max_ps(lo, _mm512_min_ps(hi, v));
        __m512i vi = _mm512_maskz_cvt_roundps_epi32(ord, v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        acc = _mm512_add_epi32(acc, vi);
        _mm512_mask_cvtepi32_storeu_epi8(q + i, m, vi);
    }
    if (sum)
        *sum = _mm512_reduce_add_epi32(acc);
    return s;
}

static void rmsnorm_avx512(float *out, const float *x, const float *w, int64_t n, float eps)
{
    __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd();
    for (int64_t i = 0; i < n; i += 16) {
        __m512 v = _mm512_maskz_loadu_ps(tail_mask16(n - i), x + i);
        __m512d d0 = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
        __m512d d1 = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
        a0 = _mm512_fmadd_pd(d0, d0, a0);
        a1 = _mm512_fmadd_pd(d1, d1, a1);
    }
    double ss = _mm512_reduce_add_pd(_mm512_add_pd(a0, a1));
    float inv = (float)(1.0 / sqrt(ss / (double)n + (double)eps));
    const __m512 vi = _mm512_set1_ps(inv);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask16(n - i);
        __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), vi);
        if (w)
            v = _mm512_mul_ps(v, _mm512_maskz_loadu_ps(m, w + i));
        _mm512_mask_storeu_ps(out + i, m, v);
    }
}

/* exp(x) for x <= 0 (softmax inputs after subtracting the max): 2^n * p(r) with
 * n = round(x / ln2), r = x - n ln2 (two-part ln2), p the Cephes expf polynomial
 * (about 1 ulp); x below -87.3 gives 0. */
static inline __m512 exp_neg_avx512(__m512 x)
{
    const __m512 log2e = _mm512_set1_ps(1.44269504088896341f);
    const __m512 c1 = _mm512_set1_ps(0.693359375f), c2 = _mm512_set1_ps(-2.12194440e-4f);
    __mmask16 tiny = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.3f), _CMP_LT_OQ);
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.3f));
    __m512 nf = _mm512_roundscale_ps(_mm512_mul_ps(x, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(nf, c1, x);
    r = _mm512_fnmadd_ps(nf, c2, r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(nf), _mm512_set1_epi32(127)), 23);
    return _mm512_maskz_mul_ps((__mmask16)~tiny, p, _mm512_castsi512_ps(e));
}

static void softmax_avx512(float *x, int64_t n)
{
    __m512 mx = _mm512_set1_ps(-INFINITY);
    for (int64_t i = 0; i < n; i += 16)
        mx = _mm512_max_ps(_mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), tail_mask16(n - i), x + i), mx);
    float m = _mm512_reduce_max_ps(mx);
    const __m512 vm = _mm512_set1_ps(m);
    __m512 s = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 k = tail_mask16(n - i);
        __m512 e = _mm512_maskz_mov_ps(k, exp_neg_avx512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), vm)));
        s = _mm512_add_ps(s, e);
        _mm512_mask_storeu_ps(x + i, k, e);
    }
    const __m512 inv = _mm512_set1_ps((float)(1.0 / (double)_mm512_reduce_add_ps(s)));
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 k = tail_mask16(n - i);
        _mm512_mask_storeu_ps(x + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), inv));
    }
}

static void rope_apply_avx512(float *x, int n_heads, int head_dim, const float *cs, const float *sn)
{
    int half = head_dim / 2;
    for (int h = 0; h < n_heads; h++) {
        float *v = x + (int64_t)h * head_dim;
        for (int i = 0; i < half; i += 16) {
            __mmask16 k = tail_mask16(half - i);
            __m512 a = _mm512_maskz_loadu_ps(k, v + i), b = _mm512_maskz_loadu_ps(k, v + i + half);
            __m512 c = _mm512_maskz_loadu_ps(k, cs + i), s = _mm512_maskz_loadu_ps(k, sn + i);
            _mm512_mask_storeu_ps(v + i, k, _mm512_sub_ps(_mm512_mul_ps(a, c), _mm512_mul_ps(b, s)));
            _mm512_mask_storeu_ps(v + i + half, k, _mm512_add_ps(_mm512_mul_ps(a, s), _mm512_mul_ps(b, c)));
        }
    }
}

static float dot_avx512(const float *a, const float *b, int64_t n)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    }
    for (; i < n; i += 16) {
        __mmask16 k = tail_mask16(n - i);
        s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, a + i), _mm512_maskz_loadu_ps(k, b + i), s0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

static void axpy_avx512(float *y, float a, const float *x, int64_t n)
{
    const __m512 va = _mm512_set1_ps(a);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 k = tail_mask16(n - i);
        _mm512_mask_storeu_ps(y + i, k, _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(k, x + i),
                                                        _mm512_maskz_loadu_ps(k, y + i)));
    }
}

static void add_avx512(float *y, const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 k = tail_mask16(n - i);
        _mm512_mask_storeu_ps(y + i, k, _mm512_add_ps(_mm512_maskz_loadu_ps(k, y + i), _mm512_maskz_loadu_ps(k, x + i)));
    }
}

static void relu2_mul_avx512(float *g, const float *u, int64_t n)
{
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 k = tail_mask16(n - i);
        __m512 v = _mm512_maskz_loadu_ps(k, g + i);
        v = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GT_OQ), v); /* NaN -> 0 as the scalar */
        _mm512_mask_storeu_ps(g + i, k, _mm512_mul_ps(_mm512_mul_ps(v, v), _mm512_maskz_loadu_ps(k, u + i)));
    }
}

static void f16_to_f32_avx512(const uint16_t *src, float *dst, int64_t n)
{
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 k = tail_mask16(n - i);
        _mm512_mask_storeu_ps(dst + i, k, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k, src + i)));
    }
}

static void f32_to_f16_avx512(const float *src, uint16_t *dst, int64_t n)
{
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 k = tail_mask16(n - i);
        __m256i h = _mm512_cvtps_ph(_mm512_maskz_loadu_ps(k, src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm256_mask_storeu_epi16(dst + i, k, h);
    }
}

/* 32 double lanes in 4 registers (lanes 0-7, 8-15, 16-23, 24-31), the scalar
 * reference's order and combination. */
static void ternary_stats_avx512(const float *x, int64_t n, struct bn_ternary_stats *out)
{
    __m512d s0 = _mm512_setzero_pd(), s1 = s0, s2 = s0, s3 = s0;
    __m512 mx = _mm512_setzero_ps(), mn = _mm512_set1_ps(INFINITY);
    __mmask16 nan = 0;
    int64_t full = n - n % BN_TERNARY_SUM_LANES, i = 0;
    for (; i < full; i += 32) {
        __m512 a = _mm512_abs_ps(_mm512_loadu_ps(x + i)), b = _mm512_abs_ps(_mm512_loadu_ps(x + i + 16));
        s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(a)));
        s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1))));
        s2 = _mm512_add_pd(s2, _mm512_cvtps_pd(_mm512_castps512_ps256(b)));
        s3 = _mm512_add_pd(s3, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(b), 1))));
        mx = _mm512_max_ps(a, mx); /* keeps mx where a is NaN */
        mx = _mm512_max_ps(b, mx);
        mn = _mm512_mask_min_ps(mn, _mm512_cmp_ps_mask(a, _mm512_setzero_ps(), _CMP_GT_OQ), a, mn);
        mn = _mm512_mask_min_ps(mn, _mm512_cmp_ps_mask(b, _mm512_setzero_ps(), _CMP_GT_OQ), b, mn);
        nan |= _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(b, b, _CMP_UNORD_Q);
    }
    double s[BN_TERNARY_SUM_LANES];
    _mm512_storeu_pd(s, s0);
    _mm512_storeu_pd(s + 8, s1);
    _mm512_storeu_pd(s + 16, s2);
    _mm512_storeu_pd(s + 24, s3);
    float amax = _mm512_reduce_max_ps(mx), mnz = _mm512_reduce_min_ps(mn);
    bool any_nan = nan != 0;
    for (; i < n; i++) {
        float a = fabsf(x[i]);
        s[i - full] += a;
        amax = a > amax ? a : amax;
        mnz = a > 0.0f && a < mnz ? a : mnz;
        any_nan |= a != a;
    }
    for (int h = BN_TERNARY_SUM_LANES / 2; h >= 1; h /= 2)
        for (int k = 0; k < h; k++)
            s[k] += s[k + h];
    *out = (struct bn_ternary_stats){.sum = s[0], .amax = amax, .min_nonzero = mnz, .nan = any_nan};
}

static void ternary_codes_avx512(const float *x, int64_t n, float inv, bool exact, int8_t *codes)
{
    const __m512 vi = _mm512_set1_ps(inv), z = _mm512_setzero_ps();
    const __m512 hi = _mm512_set1_ps(exact ? 0.0f : 0.5f), lo = _mm512_set1_ps(exact ? -0.0f : -0.5f);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask16(n - i);
        __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        if (!exact)
            v = _mm512_mul_ps(v, vi);
        __mmask16 pos = _mm512_cmp_ps_mask(v, hi, _CMP_GT_OQ), neg = _mm512_cmp_ps_mask(v, lo, _CMP_LT_OQ);
        __m128i c = _mm512_cvtepi32_epi8(_mm512_mask_mov_epi32(_mm512_maskz_mov_epi32(pos, _mm512_set1_epi32(1)),
                                                               neg, _mm512_set1_epi32(-1)));
        _mm_mask_storeu_epi8(codes + i, m, c);
    }
    (void)z;
}

static void pack2_avx512(const int8_t *c, int64_t n, uint8_t *out, int64_t out_stride, bool msb_first)
{
    const __m256i one = _mm256_set1_epi8(1);
    for (int64_t i = 0; i < n; i += 128, c += 128, out += out_stride) {
        __m256i v[4];
        for (int k = 0; k < 4; k++)
            v[k] = _mm256_add_epi8(_mm256_loadu_si256((const __m256i *)(c + 32 * k)), one);
        if (!msb_first) {
            __m256i t = v[0];
            v[0] = v[3];
            v[3] = t;
            t = v[1];
            v[1] = v[2];
            v[2] = t;
        }
        /* codes <= 2: 16-bit shifts never carry across bytes */
        __m256i o = _mm256_or_si256(_mm256_or_si256(_mm256_slli_epi16(v[0], 6), _mm256_slli_epi16(v[1], 4)),
                                    _mm256_or_si256(_mm256_slli_epi16(v[2], 2), v[3]));
        _mm256_storeu_si256((__m256i *)out, o);
    }
}

/* TL tables, two pairs / triples per register: entry e of the signed sums is
 * sum_k sign(a_k, S_k[e]) with constant digit vectors S_k in {-1, 0, 1} (psignw),
 * then the low and high bytes of the 32 int16 go to two adjacent 16-byte tables. */
static void tl1_luts_avx512(const int8_t *q, int64_t n_groups, uint8_t *lut)
{
    /* entry e = 3 i0 + i1: S0 = i0 - 1, S1 = i1 - 1; e >= 9: 0 */
    const __m512i S0 = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, -1, -1, -1,
                                        0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, -1, -1, -1);
    const __m512i S1 = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 1, 0, -1, 1, 0, -1, 1, 0, -1,
                                        0, 0, 0, 0, 0, 0, 0, 1, 0, -1, 1, 0, -1, 1, 0, -1);
    for (int64_t g = 0; g < n_groups; g++, q += 16, lut += BN_TL1_LUT_BYTES)
        for (int p = 0; p < 8; p += 2) { /* pairs p, p + 1: adjacent tables */
            __m512i a0 = _mm512_mask_set1_epi16(_mm512_set1_epi16(q[2 * p]), 0xffff0000u, q[2 * p + 2]);
            __m512i a1 = _mm512_mask_set1_epi16(_mm512_set1_epi16(q[2 * p + 1]), 0xffff0000u, q[2 * p + 3]);
            __m512i t = _mm512_add_epi16(_mm512_mask_sub_epi16(_mm512_maskz_mov_epi16(_mm512_cmpgt_epi16_mask(S0, _mm512_setzero_si512()), a0),
                                                               _mm512_cmplt_epi16_mask(S0, _mm512_setzero_si512()), _mm512_setzero_si512(), a0),
                                         _mm512_mask_sub_epi16(_mm512_maskz_mov_epi16(_mm512_cmpgt_epi16_mask(S1, _mm512_setzero_si512()), a1),
                                                               _mm512_cmplt_epi16_mask(S1, _mm512_setzero_si512()), _mm512_setzero_si512(), a1));
            uint8_t *lo = lut + (p < 4 ? 0 : 64) + 16 * (p % 4);
            _mm256_storeu_si256((__m256i *)lo, _mm512_cvtepi16_epi8(t));
            _mm256_storeu_si256((__m256i *)(lo + 128), _mm512_cvtepi16_epi8(_mm512_srai_epi16(t, 8)));
        }
}

static void tl2_luts_avx512(const int8_t *q, int64_t n_groups, uint8_t *lut)
{
    /* entry m: pattern v = 13 + m, digits v / 9, v / 3 % 3, v % 3 minus 1; m >= 14: 0 */
    int16_t s[3][32];
    for (int e = 0; e < 32; e++) {
        int m = e % 16, v = 13 + m;
        s[0][e] = (int16_t)(m < 14 ? v / 9 - 1 : 0);
        s[1][e] = (int16_t)(m < 14 ? v / 3 % 3 - 1 : 0);
        s[2][e] = (int16_t)(m < 14 ? v % 3 - 1 : 0);
    }
    const __m512i z = _mm512_setzero_si512();
    __mmask32 pos[3], neg[3];
    for (int k = 0; k < 3; k++) {
        __m512i S = _mm512_loadu_si512(s[k]);
        pos[k] = _mm512_cmpgt_epi16_mask(S, z);
        neg[k] = _mm512_cmplt_epi16_mask(S, z);
    }
    for (int64_t g = 0; g < n_groups; g++, q += 48, lut += BN_TL2_LUT_BYTES)
        for (int t = 0; t < 16; t += 2) { /* triples t, t + 1: adjacent tables */
            __m512i sum = z;
            for (int k = 0; k < 3; k++) {
                __m512i a = _mm512_mask_set1_epi16(_mm512_set1_epi16(q[3 * t + k]), 0xffff0000u, q[3 * t + 3 + k]);
                sum = _mm512_add_epi16(sum, _mm512_mask_sub_epi16(_mm512_maskz_mov_epi16(pos[k], a), neg[k], z, a));
            }
            uint8_t *lo = lut + 128 * (t / 4) + 16 * (t % 4);
            _mm256_storeu_si256((__m256i *)lo, _mm512_cvtepi16_epi8(sum));
            _mm256_storeu_si256((__m256i *)(lo + 64), _mm512_cvtepi16_epi8(_mm512_srai_epi16(sum, 8)));
        }
}

#ifdef __clang__
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

const struct bn_vec_kernels bn_vec_avx512 = {
    .quantize_act_i8 = quantize_act_i8_avx512,
    .rmsnorm = rmsnorm_avx512,
    .softmax = softmax_avx512,
    .rope_apply = rope_apply_avx512,
    .dot = dot_avx512,
    .axpy = axpy_avx512,
    .add = add_avx512,
    .relu2_mul = relu2_mul_avx512,
    .f16_to_f32 = f16_to_f32_avx512,
    .f32_to_f16 = f32_to_f16_avx512,
    .ternary_stats = ternary_stats_avx512,
    .ternary_codes = ternary_codes_avx512,
    .pack2 = pack2_avx512,
    .tl1_luts = tl1_luts_avx512,
    .tl2_luts = tl2_luts_avx512,
};
#endif
