/* simd/kern_tl_avx2.c — TL1/TL2 table-lookup kernels with AVX2 (vpshufb); the
 * scheme of simd/kern_tl_avx512.c on 32-byte halves of each group (lanes 0-1 and
 * 2-3), with TL2's sign bits expanded to int16 lane masks by compare. */
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
#define TL2_GROUP_COLS 48
#define TL1_GROUP_COLS 16
#define TL1_WIDEN_GROUPS 32
#define TL2_WIDEN_GROUPS 16

struct acc {
    __m256i a16, b16; /* int16 [2 lanes][rows 0-7] and [2 lanes][rows 8-15] */
    __m256i a32, b32; /* int32 rows 0-7, rows 8-15 */
};

/* int16 [2 lanes][8 rows] -> int32 [8 rows], the lanes summed */
static ALWAYS_INLINE __m256i widen(__m256i a16)
{
    return _mm256_add_epi32(_mm256_cvtepi16_epi32(_mm256_castsi256_si128(a16)),
                            _mm256_cvtepi16_epi32(_mm256_extracti128_si256(a16, 1)));
}

static ALWAYS_INLINE void flush(struct acc *s)
{
    s->a32 = _mm256_add_epi32(s->a32, widen(s->a16));
    s->b32 = _mm256_add_epi32(s->b32, widen(s->b16));
    s->a16 = s->b16 = _mm256_setzero_si256();
}

/* A group's 64 index bytes (short panels padded to 16-byte lanes) */
static ALWAYS_INLINE const uint8_t *group_bytes(const uint8_t *p, int64_t h, uint8_t *pad)
{
    if (h == BN_TL_ROWS)
        return p;
    memset(pad, 0, 64);
    for (int L = 0; L < 4; L++)
        memcpy(pad + 16 * L, p + h * L, (size_t)h);
    return pad;
}

/* 16 sign bits -> int16 lanes of -1 (negative) / 0 */
static ALWAYS_INLINE __m256i sign_lanes(uint32_t bits16)
{
    const __m256i bit = _mm256_setr_epi16(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096,
                                          8192, 16384, (short)0x8000);
    return _mm256_cmpeq_epi16(_mm256_and_si256(_mm256_set1_epi16((short)bits16), bit), bit);
}

static ALWAYS_INLINE void lookup(struct acc *s, __m256i idx, const uint8_t *lo_tab, const uint8_t *hi_tab,
                                 bool sign, uint32_t ka, uint32_t kb)
{
    __m256i lo = _mm256_shuffle_epi8(_mm256_loadu_si256((const __m256i *)lo_tab), idx);
    __m256i hi = _mm256_shuffle_epi8(_mm256_loadu_si256((const __m256i *)hi_tab), idx);
    __m256i va = _mm256_unpacklo_epi8(lo, hi), vb = _mm256_unpackhi_epi8(lo, hi);
    if (sign) {
        __m256i ma = sign_lanes(ka), mb = sign_lanes(kb);
        va = _mm256_sub_epi16(_mm256_xor_si256(va, ma), ma);
        vb = _mm256_sub_epi16(_mm256_xor_si256(vb, mb), mb);
    }
    s->a16 = _mm256_add_epi16(s->a16, va);
    s->b16 = _mm256_add_epi16(s->b16, vb);
}

static void tl1_groups(struct acc *s, const uint8_t *g, int64_t h, int64_t n, const uint8_t *lut)
{
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    uint8_t pad[64];
    for (int64_t i = 0; i < n; i++, g += 4 * h, lut += BN_TL1_LUT_BYTES) {
        const uint8_t *p = group_bytes(g, h, pad);
        for (int hh = 0; hh < 2; hh++) { /* lanes 2hh, 2hh + 1 */
            __m256i v = _mm256_loadu_si256((const __m256i *)(p + 32 * hh));
            lookup(s, _mm256_and_si256(v, m4), lut + 32 * hh, lut + 128 + 32 * hh, false, 0, 0);
            lookup(s, _mm256_and_si256(_mm256_srli_epi16(v, 4), m4), lut + 64 + 32 * hh,
                   lut + 192 + 32 * hh, false, 0, 0);
        }
        if (i % TL1_WIDEN_GROUPS == TL1_WIDEN_GROUPS - 1)
            flush(s);
    }
    flush(s);
}

static void tl2_groups(struct acc *s, const uint8_t *g, int64_t h, int64_t n, const uint8_t *lut)
{
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    uint8_t padA[64], padB[64];
    for (int64_t i = 0; i < n; i++, g += 10 * h, lut += BN_TL2_LUT_BYTES) {
        const uint8_t *A = group_bytes(g, h, padA), *B = group_bytes(g + 4 * h, h, padB);
        uint32_t k[8] = {0};
        if (h == BN_TL_ROWS) {
            memcpy(k, g + 128, sizeof k);
        } else {
            for (int64_t r = 0; r < h; r++) {
                uint16_t w = bn_rd_u16(g + 8 * h + 2 * r);
                for (int t = 0; t < 16; t++)
                    if (w >> t & 1)
                        k[2 * (t / 4) + r / 8] |= 1u << (8 * (t % 4) + r % 8);
            }
        }
        for (int hh = 0; hh < 2; hh++) {
            __m256i a = _mm256_loadu_si256((const __m256i *)(A + 32 * hh));
            __m256i b = _mm256_loadu_si256((const __m256i *)(B + 32 * hh));
            __m256i idx[4] = {_mm256_and_si256(a, m4), _mm256_and_si256(_mm256_srli_epi16(a, 4), m4),
                              _mm256_and_si256(b, m4), _mm256_and_si256(_mm256_srli_epi16(b, 4), m4)};
            for (int j = 0; j < 4; j++)
                lookup(s, idx[j], lut + 128 * j + 32 * hh, lut + 128 * j + 64 + 32 * hh, true,
                       k[2 * j] >> (16 * hh) & 0xffff, k[2 * j + 1] >> (16 * hh) & 0xffff);
        }
        if (i % TL2_WIDEN_GROUPS == TL2_WIDEN_GROUPS - 1)
            flush(s);
    }
    flush(s);
}

static void store8(float *y, __m256i isum, float xs, float scale, int64_t n)
{
    __m256 f = _mm256_cvtepi32_ps(isum);
    f = _mm256_add_ps(_mm256_setzero_ps(), _mm256_mul_ps(_mm256_div_ps(f, _mm256_set1_ps(xs)), _mm256_set1_ps(scale)));
    if (n >= 8) {
        _mm256_storeu_ps(y, f);
    } else if (n > 0) {
        float tmp[8];
        _mm256_storeu_ps(tmp, f);
        memcpy(y, tmp, (size_t)n * sizeof(float));
    }
}

static void tl_avx2(const struct bn_matrix *w, int64_t r0, int64_t r1, const struct bn_act_i8 *a,
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
        for (int64_t t = 0; t < a->n_tokens; t++) {
            const uint8_t *lut = (const uint8_t *)a->prep + (size_t)t * lb;
            struct acc s = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),
                            _mm256_setzero_si256()};
            if (g3)
                tl2_groups(&s, base, h, g3, lut);
            if (g1)
                tl1_groups(&s, base + g3 * 10 * h, h, g1, lut + g3 * BN_TL2_LUT_BYTES);
            float *yt = y + t * rows + r;
            store8(yt, s.a32, a->scale[t], w->scale, h < 8 ? h : 8);
            store8(yt + 8, s.b32, a->scale[t], w->scale, h - 8);
        }
    }
}

void bn_gemm_tl1_avx2(const struct bn_matrix *w, int64_t r0, int64_t r1, const struct bn_act_i8 *a, float *y)
{
    tl_avx2(w, r0, r1, a, y, false);
}

void bn_gemm_tl2_avx2(const struct bn_matrix *w, int64_t r0, int64_t r1, const struct bn_act_i8 *a, float *y)
{
    tl_avx2(w, r0, r1, a, y, true);
}

#ifdef __clang__
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif
