/* simd/kern_head_avx512.c — kernels of the float and 8/6-bit formats (the LM head
 * and any non-ternary matrix) with AVX-512 (+ VNNI for Q8_0).
 *
 * Decode is memory-bound: a 128256 x 2560 F16 head is 656 MB per token, Q8_0 349 MB,
 * Q6_K 269 MB, so each weight byte is read once.  Q8_0 and Q6_K go one row at a
 * time (one sequential stream per thread, which the hardware prefetcher follows
 * best); F16/F32 go two rows at a time with software prefetch into L2 of the rows
 * ahead (two interleaved rows without it: 12 GB/s per core on Zen 4, vs 20-26 GB/s
 * for one row), which several tokens need (see float_pair_dot).
 *   F16, F32: float activations, FMA.
 *   Q8_0, Q6_K: the activations are quantized to int8 per block (Q8_0: 32, Q6_K: 256
 *     elements, scale = absmax / 127, as llama.cpp does for these formats) and the
 *     dot products are integer (vpdpbusd / vpmaddubsw), scaled per block in float:
 *     converting every weight to float instead costs ~1 op per weight and made
 *     these kernels compute-bound (3 GB/s per core for Q6_K).  The activation
 *     rounding changes logits slightly (see bench/bench-gemv --accuracy).
 * Float sums are in a different order from the scalar reference: close, not
 * bit-identical. */
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

static ALWAYS_INLINE __mmask16 tail16(int64_t left) { return left >= 16 ? 0xffff : (__mmask16)((1u << left) - 1); }

static ALWAYS_INLINE __m512 cvt_f16x16(const void *p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)); }

/* ---- F16 / F32: float activations ---- */

/* Several tokens (head_blocking in internal.h): up to HEAD_TOK meet each row while
 * it is in registers/L1, the weights loaded (and F16-converted, Q8_0-permuted, Q6_K-
 * unpacked) once for all of them.  Every token keeps its own accumulators, in the
 * order of the one-token case: a token's result does not depend on how many tokens
 * share the call (the engine's batch invariance). */
#define HEAD_TOK BN_HEAD_GROUP_TOKENS
#define HEAD_PAIR_PF_ROWS 4 /* prefetch distance of the pair kernel, in rows */
/* Several tokens make a row pass compute-heavy enough that the hardware prefetcher
 * alone leaves memory idle; software prefetches into L2 (_MM_HINT_T1) keep the
 * stream going (into L1, T0, they did not overlap at all: F16, 2 tokens, one thread
 * 49 -> 23 ms per 656 MB head with T1). */
#define HEAD_PF_BYTES 4096 /* distance of the one-row kernels' prefetch */

static ALWAYS_INLINE __m512 float16(const uint8_t *w, bool f16, int64_t c)
{
    return f16 ? cvt_f16x16(w + 2 * c) : _mm512_loadu_ps((const float *)w + c);
}
static ALWAYS_INLINE __m512 float16_tail(const uint8_t *w, bool f16, int64_t c, __mmask16 m)
{
    return f16 ? _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, w + 2 * c))
               : _mm512_maskz_loadu_ps(m, (const float *)w + c);
}

/* The summation order of every float kernel here, per row and token: two chains,
 * the 32-column steps' first 16 columns on chain 0 and last 16 on chain 1, the
 * columns past the last whole step on chain 0 (16 at a time, the last masked), then
 * chain 0 + chain 1.  One token's conversion (vcvtph2ps, 2 cycles on Zen 4) bounds
 * one row at ~48 GB/s of F16 per core, above the memory stream, so two chains lose
 * nothing there; the pair kernel below needs the few chains to keep 2 rows x 4
 * tokens of accumulators in registers. */

/* F16 / F32 row · T tokens (x: [T][xstride]). */
static ALWAYS_INLINE void float_row_dot(const uint8_t *w, bool f16, const float *x, int64_t xstride,
                                        int64_t cols, const int T, float *out, int64_t ostride)
{
    __m512 a[HEAD_TOK][2];
    _Pragma("GCC unroll 4")
    for (int t = 0; t < T; t++)
        a[t][0] = a[t][1] = _mm512_setzero_ps();
    int64_t c = 0;
    for (; c + 32 <= cols; c += 32) {
        __m512 w0 = float16(w, f16, c), w1 = float16(w, f16, c + 16);
        _Pragma("GCC unroll 4")
        for (int t = 0; t < T; t++) {
            a[t][0] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x + t * xstride + c), a[t][0]);
            a[t][1] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(x + t * xstride + c + 16), a[t][1]);
        }
    }
    for (; c < cols; c += 16) {
        __mmask16 m = tail16(cols - c);
        __m512 wv = float16_tail(w, f16, c, m);
        _Pragma("GCC unroll 4")
        for (int t = 0; t < T; t++)
            a[t][0] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(m, x + t * xstride + c), a[t][0]);
    }
    _Pragma("GCC unroll 4")
    for (int t = 0; t < T; t++)
        out[t * ostride] = _mm512_reduce_add_ps(_mm512_add_ps(a[t][0], a[t][1]));
}

/* Rows w0 and w1 · T tokens, each (row, token) in the order of float_row_dot: every
 * activation load serves two rows and every conversion T tokens, which is what
 * several tokens need (one row at a time, 4 tokens ran at half the FMA rate).
 * Outputs: row 0 at out[t * ostride], row 1 at out[t * ostride + 1]. */
static ALWAYS_INLINE void float_pair_dot(const uint8_t *w0, const uint8_t *w1, bool f16,
                                         const float *x, int64_t xstride, int64_t cols, const int T,
                                         float *out, int64_t ostride)
{
    __m512 a[HEAD_TOK][2], b[HEAD_TOK][2];
    _Pragma("GCC unroll 4")
    for (int t = 0; t < T; t++)
        a[t][0] = a[t][1] = b[t][0] = b[t][1] = _mm512_setzero_ps();
    /* The rows of the pairs ahead, as one sequential stream at the rate this pair is
     * consumed (the hardware prefetcher follows two interleaved rows badly). */
    const int64_t eb = f16 ? 2 : 4;
    const char *pf = (const char *)w0 + HEAD_PAIR_PF_ROWS * eb * cols;
    int64_t c = 0;
    for (; c + 32 <= cols; c += 32) {
        _Pragma("GCC unroll 4")
        for (int64_t l = 0; l < 2 * 32 * eb; l += 64)
            _mm_prefetch(pf + 2 * eb * c + l, _MM_HINT_T1);
        __m512 u0 = float16(w0, f16, c), u1 = float16(w0, f16, c + 16);
        __m512 v0 = float16(w1, f16, c), v1 = float16(w1, f16, c + 16);
        _Pragma("GCC unroll 4")
        for (int t = 0; t < T; t++) {
            __m512 x0 = _mm512_loadu_ps(x + t * xstride + c);
            __m512 x1 = _mm512_loadu_ps(x + t * xstride + c + 16);
            a[t][0] = _mm512_fmadd_ps(u0, x0, a[t][0]);
            b[t][0] = _mm512_fmadd_ps(v0, x0, b[t][0]);
            a[t][1] = _mm512_fmadd_ps(u1, x1, a[t][1]);
            b[t][1] = _mm512_fmadd_ps(v1, x1, b[t][1]);
        }
    }
    for (; c < cols; c += 16) {
        __mmask16 m = tail16(cols - c);
        __m512 u = float16_tail(w0, f16, c, m), v = float16_tail(w1, f16, c, m);
        _Pragma("GCC unroll 4")
        for (int t = 0; t < T; t++) {
            __m512 xv = _mm512_maskz_loadu_ps(m, x + t * xstride + c);
            a[t][0] = _mm512_fmadd_ps(u, xv, a[t][0]);
            b[t][0] = _mm512_fmadd_ps(v, xv, b[t][0]);
        }
    }
    _Pragma("GCC unroll 4")
    for (int t = 0; t < T; t++) {
        out[t * ostride] = _mm512_reduce_add_ps(_mm512_add_ps(a[t][0], a[t][1]));
        out[t * ostride + 1] = _mm512_reduce_add_ps(_mm512_add_ps(b[t][0], b[t][1]));
    }
}

/* Instantiations per token count (the accumulators stay in registers) and the loop
 * over rows, tokens in groups of HEAD_TOK, rows in pairs when there are several. */
#define FLOAT_KERNEL(name, is_f16)                                                         \
    static void name##_rows(const uint8_t *p, const uint8_t *xa, size_t tb, int64_t cols,  \
                            int64_t nt, float *y, int64_t ystride)                         \
    {                                                                                      \
        const float *x = (const float *)xa; /* tb == cols floats */                        \
        (void)tb;                                                                          \
        switch (nt) {                                                                      \
        case 1: float_row_dot(p, is_f16, x, cols, cols, 1, y, ystride); break;             \
        case 2: float_row_dot(p, is_f16, x, cols, cols, 2, y, ystride); break;             \
        case 3: float_row_dot(p, is_f16, x, cols, cols, 3, y, ystride); break;             \
        default: float_row_dot(p, is_f16, x, cols, cols, 4, y, ystride); break;            \
        }                                                                                  \
    }                                                                                      \
    static void name##_pair(const uint8_t *p, const uint8_t *q, const uint8_t *xa,         \
                            size_t tb, int64_t cols, int64_t nt, float *y, int64_t ystride)\
    {                                                                                      \
        const float *x = (const float *)xa;                                                \
        (void)tb;                                                                          \
        switch (nt) {                                                                      \
        case 1: float_pair_dot(p, q, is_f16, x, cols, cols, 1, y, ystride); break;         \
        case 2: float_pair_dot(p, q, is_f16, x, cols, cols, 2, y, ystride); break;         \
        case 3: float_pair_dot(p, q, is_f16, x, cols, cols, 3, y, ystride); break;         \
        default: float_pair_dot(p, q, is_f16, x, cols, cols, 4, y, ystride); break;        \
        }                                                                                  \
    }                                                                                      \
    void name(const struct bn_matrix *w, int64_t r0, int64_t r1, const float *x,           \
              int64_t n_tokens, float *y, float *scratch)                                  \
    {                                                                                      \
        (void)scratch;                                                                     \
        head_walk_pairs(w, r0, r1, (const uint8_t *)x, (size_t)w->cols * sizeof(float),    \
                        n_tokens, HEAD_TOK, y, name##_rows, name##_pair);                  \
    }
FLOAT_KERNEL(bn_gemm_f16_avx512, true)
FLOAT_KERNEL(bn_gemm_f32_avx512, false)

/* ---- int8 activations per block ---- */

/* x[0..32) -> q (int8), returns the scale d (x ~ q * d); sum of q in *sum. */
static ALWAYS_INLINE float quant32(const float *x, int8_t *q, int32_t *sum)
{
    __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
    float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
    float d = amax / 127.0f, id = amax > 0.0f ? 127.0f / amax : 0.0f;
    __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, _mm512_set1_ps(id)));
    __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, _mm512_set1_ps(id)));
    q0 = _mm512_max_epi32(_mm512_min_epi32(q0, _mm512_set1_epi32(127)), _mm512_set1_epi32(-127));
    q1 = _mm512_max_epi32(_mm512_min_epi32(q1, _mm512_set1_epi32(127)), _mm512_set1_epi32(-127));
    _mm_storeu_si128((__m128i *)q, _mm512_cvtepi32_epi8(q0));
    _mm_storeu_si128((__m128i *)(q + 16), _mm512_cvtepi32_epi8(q1));
    *sum = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
    return d;
}

/* Q8_0 activations of one token, laid out for pairs of blocks: for pair P (blocks
 * 2P, 2P+1) 64 bytes with the two blocks' 4-byte groups interleaved (lane 2i: block
 * 2P, lane 2i+1: block 2P+1), then int32 [16] starting values (-128 * block sum in
 * lanes 0 and 1, the correction of the weights' +128 offset), then float [2] block
 * scales.  An odd last block pairs with an empty one. */
#define Q8_PAIR_BYTES (64 + 64 + 8)
static size_t q8_0_token_bytes(int64_t cols) { return (size_t)((cols / 32 + 1) / 2) * Q8_PAIR_BYTES; }

static void q8_0_quant_token(const float *x, int64_t cols, uint8_t *out)
{
    int64_t nb = cols / BN_QK8_0;
    for (int64_t p = 0; p < (nb + 1) / 2; p++, out += Q8_PAIR_BYTES) {
        int8_t q[2][32];
        int32_t s[2] = {0, 0};
        float d[2] = {0.0f, 0.0f};
        memset(q, 0, sizeof q);
        for (int k = 0; k < 2 && 2 * p + k < nb; k++)
            d[k] = quant32(x + (2 * p + k) * 32, q[k], &s[k]);
        for (int i = 0; i < 8; i++) {
            memcpy(out + 8 * i, q[0] + 4 * i, 4);
            memcpy(out + 8 * i + 4, q[1] + 4 * i, 4);
        }
        int32_t init[16] = {-128 * s[0], -128 * s[1]};
        memcpy(out + 64, init, sizeof init);
        memcpy(out + 128, d, sizeof d);
    }
}

static ALWAYS_INLINE void q8_0_row_dot(const uint8_t *w, const uint8_t *xa0, size_t xstride,
                                       int64_t cols, const int T, float *out, int64_t ostride)
{
    int64_t nb = cols / BN_QK8_0;
    const __m512i idx = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i off = _mm512_set1_epi8((char)0x80);
    __m512 a0[HEAD_TOK], a1[HEAD_TOK];
    _Pragma("GCC unroll 4")
    for (int t = 0; t < T; t++)
        a0[t] = a1[t] = _mm512_setzero_ps();
    for (int64_t p = 0; 2 * p < nb; p++) {
        const uint8_t *b0 = w + 2 * p * BN_Q8_0_BLOCK_BYTES, *b1 = b0 + BN_Q8_0_BLOCK_BYTES;
        if (T > 1) { /* more compute per byte: keep the stream ahead (see HEAD_PF_BYTES) */
            _mm_prefetch((const char *)b0 + HEAD_PF_BYTES, _MM_HINT_T1);
            _mm_prefetch((const char *)b0 + HEAD_PF_BYTES + 64, _MM_HINT_T1);
        }
        bool two = 2 * p + 1 < nb;
        __m512i lo = _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(b0 + 2)));
        __m512i hi = two ? _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(b1 + 2)))
                         : _mm512_setzero_si512();
        /* weights + 128 as u8 times int8 activations, started at -128 * sum(q) */
        __m512i wq = _mm512_xor_si512(_mm512_permutex2var_epi32(lo, idx, hi), off);
        uint32_t h = bn_rd_u16(b0) | (two ? (uint32_t)bn_rd_u16(b1) << 16 : 0);
        __m512 dw = _mm512_cvtph_ps(_mm256_set1_epi32((int)h));                    /* dw0 dw1 dw0 .. */
        _Pragma("GCC unroll 4")
        for (int t = 0; t < T; t++) {
            const uint8_t *xa = xa0 + (size_t)t * xstride + (size_t)p * Q8_PAIR_BYTES;
            __m512i dot = _mm512_dpbusd_epi32(_mm512_loadu_si512(xa + 64), wq, _mm512_loadu_si512(xa));
            double xd2;
            memcpy(&xd2, xa + 128, 8);
            __m512 sc = _mm512_mul_ps(dw, _mm512_castpd_ps(_mm512_set1_pd(xd2))); /* * xd0 xd1 .. */
            if (p & 1)
                a1[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), sc, a1[t]);
            else
                a0[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), sc, a0[t]);
        }
    }
    _Pragma("GCC unroll 4")
    for (int t = 0; t < T; t++)
        out[t * ostride] = _mm512_reduce_add_ps(_mm512_add_ps(a0[t], a1[t]));
}

/* Q6_K activations of one token: int8 [cols], then per 256-block a float scale and
 * int16 [16] sums of each 16 (the -32 offset of the weights). */
static size_t q6_k_token_bytes(int64_t cols) { return (size_t)cols + (size_t)(cols / BN_QK_K) * (4 + 32); }

static void q6_k_quant_token(const float *x, int64_t cols, uint8_t *out)
{
    int64_t nb = cols / BN_QK_K;
    int8_t *q = (int8_t *)out;
    uint8_t *meta = out + cols;
    for (int64_t b = 0; b < nb; b++, meta += 36) {
        const float *xb = x + b * BN_QK_K;
        __m512 m = _mm512_setzero_ps();
        for (int i = 0; i < BN_QK_K; i += 16)
            m = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(xb + i)), m);
        float amax = _mm512_reduce_max_ps(m);
        float d = amax / 127.0f, id = amax > 0.0f ? 127.0f / amax : 0.0f;
        int16_t sums[16];
        for (int i = 0; i < 16; i++) {
            __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(xb + 16 * i), _mm512_set1_ps(id)));
            v = _mm512_max_epi32(_mm512_min_epi32(v, _mm512_set1_epi32(127)), _mm512_set1_epi32(-127));
            _mm_storeu_si128((__m128i *)(q + b * BN_QK_K + 16 * i), _mm512_cvtepi32_epi8(v));
            sums[i] = (int16_t)_mm512_reduce_add_epi32(v);
        }
        memcpy(meta, &d, 4);
        memcpy(meta + 4, sums, 32);
    }
}

/* Per 128-weight half: ql (64 bytes) low nibbles -> weights 0..63, high -> 64..127;
 * qh (32 bytes) bits 0-1 / 2-3 -> 0..31 / 32..63 and 4-5 / 6-7 -> 64..95 / 96..127.
 * maddubs(q6, x) pairs fit int16 (2 * 63 * 127); each 16 weights share a scale, so
 * madd by scales broadcast per 8 int16 lanes gives int32 sums of q6 * x * sc; the
 * -32 offset is subtracted once per block as 32 * sum(sc * sum16(x)). */
static ALWAYS_INLINE void q6_k_row_dot(const uint8_t *w, const uint8_t *xa0, size_t xstride,
                                       int64_t cols, const int T, float *out, int64_t ostride)
{
    int64_t nb = cols / BN_QK_K;
    const __m512i m4 = _mm512_set1_epi8(0x0f), m30 = _mm512_set1_epi8(0x30);
    /* scale index per int16 lane: 64 weights = 4 subs of 16 = 4 x 8 lanes */
    const __m512i sidx0 = _mm512_set_epi16(3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2,
                                           1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    __m512 acc[HEAD_TOK];
    _Pragma("GCC unroll 4")
    for (int t = 0; t < T; t++)
        acc[t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = w + b * BN_Q6_K_BLOCK_BYTES;
        if (T > 1) /* more compute per byte: keep the stream ahead (see HEAD_PF_BYTES) */
            _Pragma("GCC unroll 4")
            for (int l = 0; l < BN_Q6_K_BLOCK_BYTES; l += 64)
                _mm_prefetch((const char *)blk + HEAD_PF_BYTES + l, _MM_HINT_T1);
        /* the 16 scales as int16 (lanes 0..15) */
        __m512i sc = _mm512_cvtepi8_epi16(_mm256_zextsi128_si256(_mm_loadu_si128((const __m128i *)(blk + 192))));
        __m512i isum[HEAD_TOK];
        _Pragma("GCC unroll 4")
        for (int t = 0; t < T; t++)
            isum[t] = _mm512_setzero_si512();
        for (int h = 0; h < 2; h++) {
            __m512i L = _mm512_loadu_si512(blk + 64 * h);
            __m256i H = _mm256_loadu_si256((const __m256i *)(blk + 128 + 32 * h));
            __m512i H2 = _mm512_inserti64x4(_mm512_castsi256_si512(H), _mm256_srli_epi16(H, 2), 1);
            __m512i lo = _mm512_or_si512(_mm512_and_si512(L, m4), _mm512_and_si512(_mm512_slli_epi16(H2, 4), m30));
            __m512i hi = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(L, 4), m4), _mm512_and_si512(H2, m30));
            /* lanes of lo: subs 8h + 0..3, of hi: 8h + 4..7 */
            __m512i slo = _mm512_permutexvar_epi16(_mm512_add_epi16(sidx0, _mm512_set1_epi16((short)(8 * h))), sc);
            __m512i shi = _mm512_permutexvar_epi16(_mm512_add_epi16(sidx0, _mm512_set1_epi16((short)(8 * h + 4))), sc);
            _Pragma("GCC unroll 4")
            for (int t = 0; t < T; t++) {
                const int8_t *x = (const int8_t *)(xa0 + (size_t)t * xstride) + b * BN_QK_K + 128 * h;
                __m512i plo = _mm512_maddubs_epi16(lo, _mm512_loadu_si512(x));
                __m512i phi = _mm512_maddubs_epi16(hi, _mm512_loadu_si512(x + 64));
                isum[t] = _mm512_add_epi32(isum[t], _mm512_madd_epi16(plo, slo));
                isum[t] = _mm512_add_epi32(isum[t], _mm512_madd_epi16(phi, shi));
            }
        }
        float dw = _cvtsh_ss(bn_rd_u16(blk + 208));
        _Pragma("GCC unroll 4")
        for (int t = 0; t < T; t++) {
            const uint8_t *meta = xa0 + (size_t)t * xstride + cols + (size_t)b * 36;
            __m256i bs = _mm256_loadu_si256((const __m256i *)(meta + 4));
            __m256i corr = _mm256_madd_epi16(_mm512_castsi512_si256(sc), bs); /* 8 x int32 */
            __m512i is = _mm512_sub_epi32(isum[t], _mm512_zextsi256_si512(_mm256_slli_epi32(corr, 5)));
            float xd;
            memcpy(&xd, meta, 4);
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is), _mm512_set1_ps(dw * xd), acc[t]);
        }
    }
    _Pragma("GCC unroll 4")
    for (int t = 0; t < T; t++)
        out[t * ostride] = _mm512_reduce_add_ps(acc[t]);
}

HEAD_INT8_KERNEL(bn_gemm_q8_0_avx512, q8_0_token_bytes, q8_0_quant_token, q8_0_row_dot, HEAD_TOK)
HEAD_INT8_KERNEL(bn_gemm_q6_k_avx512, q6_k_token_bytes, q6_k_quant_token, q6_k_row_dot, HEAD_TOK)

#ifdef __clang__
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif
