/* simd/kern_tl_avx512.c — TL1/TL2 table-lookup kernels with AVX-512 (vpshufb).
 *
 * A 64-byte load of a TL group gives, per 16-byte lane, the 4-bit indices of the
 * panel's 16 rows for one pair (TL1) or triple (TL2) in each nibble; vpshufb looks
 * them up in that lane's table (low and high bytes), vpunpck{l,h}bw joins them into
 * int16 sums for rows 0-7 and 8-15, TL2 negates the lanes its sign mask (straight
 * from the layout into a k register) marks, and int16 accumulators are widened to
 * int32 before they can overflow (TL1: 2 entries of |v| <= 256 per group, widened
 * every 32 groups; TL2: 4 of <= 384, every 16).  Exact integers, then the scalar
 * reference's float epilogue: bit-identical to I2_S.  Tables come from the
 * preparation (simd/kern_tl.c); one token at a time per panel, the panel staying
 * in L1 across tokens. */
#include "internal.h"

#if BN_X86
#include <immintrin.h>

#ifdef __clang__
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")
#endif

#define ALWAYS_INLINE inline __attribute__((always_inline))
#define TL2_GROUP_COLS 48
#define TL1_GROUP_COLS 16
#define TL1_WIDEN_GROUPS 32
#define TL2_WIDEN_GROUPS 16

/* A short panel's group: lane L's h bytes at h * L, padded to 16-byte lanes. */
static ALWAYS_INLINE __m512i load_lanes(const uint8_t *p, int64_t h)
{
    if (h == BN_TL_ROWS)
        return _mm512_loadu_si512(p);
    __mmask16 m = (__mmask16)((1u << h) - 1);
    __m512i v = _mm512_castsi128_si512(_mm_maskz_loadu_epi8(m, p));
    v = _mm512_inserti32x4(v, _mm_maskz_loadu_epi8(m, p + h), 1);
    v = _mm512_inserti32x4(v, _mm_maskz_loadu_epi8(m, p + 2 * h), 2);
    return _mm512_inserti32x4(v, _mm_maskz_loadu_epi8(m, p + 3 * h), 3);
}

/* int16 [lane][8 rows] -> int32 [lane 0 + 2 | lane 1 + 3][8 rows] */
static ALWAYS_INLINE __m512i widen(__m512i a16)
{
    return _mm512_add_epi32(_mm512_cvtepi16_epi32(_mm512_castsi512_si256(a16)),
                            _mm512_cvtepi16_epi32(_mm512_extracti64x4_epi64(a16, 1)));
}

/* rows 0-7 and 8-15 from the two widened accumulators */
static ALWAYS_INLINE __m512i finish(__m512i a, __m512i b)
{
    __m256i ra = _mm256_add_epi32(_mm512_castsi512_si256(a), _mm512_extracti64x4_epi64(a, 1));
    __m256i rb = _mm256_add_epi32(_mm512_castsi512_si256(b), _mm512_extracti64x4_epi64(b, 1));
    return _mm512_inserti64x4(_mm512_castsi256_si512(ra), rb, 1);
}

struct acc {
    __m512i a16, b16, a32, b32;
};

static ALWAYS_INLINE void add_lookup(struct acc *s, __m512i idx, const uint8_t *lo_tab, const uint8_t *hi_tab)
{
    __m512i lo = _mm512_shuffle_epi8(_mm512_loadu_si512(lo_tab), idx);
    __m512i hi = _mm512_shuffle_epi8(_mm512_loadu_si512(hi_tab), idx);
    s->a16 = _mm512_add_epi16(s->a16, _mm512_unpacklo_epi8(lo, hi));
    s->b16 = _mm512_add_epi16(s->b16, _mm512_unpackhi_epi8(lo, hi));
}

static ALWAYS_INLINE void add_lookup_signed(struct acc *s, __m512i idx, const uint8_t *lo_tab,
                                            const uint8_t *hi_tab, __mmask32 ka, __mmask32 kb)
{
    const __m512i z = _mm512_setzero_si512();
    __m512i lo = _mm512_shuffle_epi8(_mm512_loadu_si512(lo_tab), idx);
    __m512i hi = _mm512_shuffle_epi8(_mm512_loadu_si512(hi_tab), idx);
    __m512i va = _mm512_unpacklo_epi8(lo, hi), vb = _mm512_unpackhi_epi8(lo, hi);
    s->a16 = _mm512_add_epi16(s->a16, _mm512_mask_sub_epi16(va, ka, z, va));
    s->b16 = _mm512_add_epi16(s->b16, _mm512_mask_sub_epi16(vb, kb, z, vb));
}

static ALWAYS_INLINE void flush(struct acc *s)
{
    s->a32 = _mm512_add_epi32(s->a32, widen(s->a16));
    s->b32 = _mm512_add_epi32(s->b32, widen(s->b16));
    s->a16 = s->b16 = _mm512_setzero_si512();
}

static ALWAYS_INLINE void tl1_groups(struct acc *s, const uint8_t *g, int64_t h, int64_t n,
                                     const uint8_t *lut)
{
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    for (int64_t i = 0; i < n; i++, g += 4 * h, lut += BN_TL1_LUT_BYTES) {
        __m512i v = load_lanes(g, h);
        add_lookup(s, _mm512_and_si512(v, m4), lut, lut + 128);
        add_lookup(s, _mm512_and_si512(_mm512_srli_epi16(v, 4), m4), lut + 64, lut + 192);
        if (i % TL1_WIDEN_GROUPS == TL1_WIDEN_GROUPS - 1)
            flush(s);
    }
    flush(s);
}

/* Sign masks of a short panel's TL2 group from its per-row words (bit t: triple t). */
static void short_signs(const uint8_t *S, int64_t h, uint32_t k[8])
{
    memset(k, 0, 8 * sizeof k[0]);
    for (int64_t r = 0; r < h; r++) {
        uint16_t w = bn_rd_u16(S + 2 * r);
        for (int t = 0; t < 16; t++)
            if (w >> t & 1)
                k[2 * (t / 4) + r / 8] |= 1u << (8 * (t % 4) + r % 8);
    }
}

static ALWAYS_INLINE void tl2_groups(struct acc *s, const uint8_t *g, int64_t h, int64_t n,
                                     const uint8_t *lut)
{
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    for (int64_t i = 0; i < n; i++, g += 10 * h, lut += BN_TL2_LUT_BYTES) {
        __m512i A = load_lanes(g, h), B = load_lanes(g + 4 * h, h);
        uint32_t k[8];
        if (h == BN_TL_ROWS)
            memcpy(k, g + 128, sizeof k);
        else
            short_signs(g + 8 * h, h, k);
        add_lookup_signed(s, _mm512_and_si512(A, m4), lut, lut + 64, k[0], k[1]);
        add_lookup_signed(s, _mm512_and_si512(_mm512_srli_epi16(A, 4), m4), lut + 128, lut + 192, k[2], k[3]);
        add_lookup_signed(s, _mm512_and_si512(B, m4), lut + 256, lut + 320, k[4], k[5]);
        add_lookup_signed(s, _mm512_and_si512(_mm512_srli_epi16(B, 4), m4), lut + 384, lut + 448, k[6], k[7]);
        if (i % TL2_WIDEN_GROUPS == TL2_WIDEN_GROUPS - 1)
            flush(s);
    }
    flush(s);
}

static void tl_avx512(const struct bn_matrix *w, int64_t r0, int64_t r1, const struct bn_act_i8 *a,
                      float *y, bool tl2)
{
    int64_t rows = w->rows, cols = w->cols;
    int64_t g3 = tl2 ? cols / TL2_GROUP_COLS : 0;
    int64_t g1 = tl2 ? (cols % TL2_GROUP_COLS) / TL1_GROUP_COLS : cols / TL1_GROUP_COLS;
    size_t rb = tl2 ? bn_tl2_row_bytes(cols) : bn_tl1_row_bytes(cols);
    size_t lb = bn_tl_lut_bytes(w->type, cols);
    for (int64_t r = r0; r < r1; r += BN_TL_ROWS) {
        int64_t h = rows - r < BN_TL_ROWS ? rows - r : BN_TL_ROWS;
        const uint8_t *base = (const uint8_t *)w->data + (size_t)r * rb;
        __mmask16 ym = (__mmask16)((1u << h) - 1);
        for (int64_t t = 0; t < a->n_tokens; t++) {
            const uint8_t *lut = (const uint8_t *)a->prep + (size_t)t * lb;
            struct acc s = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(),
                            _mm512_setzero_si512()};
            if (g3)
                tl2_groups(&s, base, h, g3, lut);
            if (g1)
                tl1_groups(&s, base + g3 * 10 * h, h, g1, lut + g3 * BN_TL2_LUT_BYTES);
            __m512 f = _mm512_cvtepi32_ps(finish(s.a32, s.b32));
            f = _mm512_mul_ps(_mm512_div_ps(f, _mm512_set1_ps(a->scale[t])), _mm512_set1_ps(w->scale));
            _mm512_mask_storeu_ps(y + t * rows + r, ym, _mm512_add_ps(_mm512_setzero_ps(), f));
        }
    }
}

void bn_gemm_tl1_avx512(const struct bn_matrix *w, int64_t r0, int64_t r1, const struct bn_act_i8 *a, float *y)
{
    tl_avx512(w, r0, r1, a, y, false);
}

void bn_gemm_tl2_avx512(const struct bn_matrix *w, int64_t r0, int64_t r1, const struct bn_act_i8 *a, float *y)
{
    tl_avx512(w, r0, r1, a, y, true);
}

#ifdef __clang__
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif
