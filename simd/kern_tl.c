/* simd/kern_tl.c — lookup tables of the TL1/TL2 layouts (built per token from the
 * int8 activations) and the scalar table-lookup kernels.
 *
 * A table entry is the exact signed sum of 2 (TL1) or 3 (TL2) int8 activations, in
 * [-384, 384]: it needs 16 bits, and pshufb looks up bytes, so each table is kept as
 * a low-byte table and a high-byte table; unpacking the two lookups byte-wise gives
 * the int16 sums.  Every kernel adds these in integers and ends with the scalar
 * reference's (float)isum / xs * scale: results bit-identical to I2_S.
 *
 * Tables of one token (bn_tl_lut_bytes), per group in the row's order:
 *   TL1 group (16 columns = 8 pairs), 256 bytes: [lo: pairs 0-3][lo: pairs 4-7]
 *     [hi: pairs 0-3][hi: pairs 4-7], 16 bytes per pair (entries 0..8 used).
 *   TL2 group (48 columns = 16 triples), 512 bytes: for index vector j = 0..3
 *     (triples 4j..4j+3 — the layout's A.lo, A.hi, B.lo, B.hi): [lo: 4 x 16][hi: 4 x 16]
 *     (entries 0..13 used: the magnitude index m of pattern 13 + m).
 *   TL2 rows end with their TL1 groups (cols % 48 columns). */
#include <stdlib.h>

#include "internal.h"

#define TL2_GROUP_COLS 48
#define TL1_GROUP_COLS 16

size_t bn_tl_lut_bytes(enum bn_type type, int64_t cols)
{
    if (type == BN_TYPE_TL1)
        return (size_t)(cols / TL1_GROUP_COLS) * BN_TL1_LUT_BYTES;
    return (size_t)(cols / TL2_GROUP_COLS) * BN_TL2_LUT_BYTES +
           (size_t)((cols % TL2_GROUP_COLS) / TL1_GROUP_COLS) * BN_TL1_LUT_BYTES;
}

size_t bn_act_prep_tl1_bytes(int64_t n_tokens, int64_t cols)
{
    return (size_t)n_tokens * bn_tl_lut_bytes(BN_TYPE_TL1, cols);
}

size_t bn_act_prep_tl2_bytes(int64_t n_tokens, int64_t cols)
{
    return (size_t)n_tokens * bn_tl_lut_bytes(BN_TYPE_TL2, cols);
}

static inline void put16(uint8_t *lo, uint8_t *hi, int i, int v)
{
    lo[i] = (uint8_t)(v & 0xff);
    hi[i] = (uint8_t)((unsigned)v >> 8 & 0xff);
}

/* Tables of one TL1 group from its 16 activations. */
static void tl1_group_lut(const int8_t *q, uint8_t *lut)
{
    memset(lut, 0, BN_TL1_LUT_BYTES);
    for (int p = 0; p < 8; p++) {
        uint8_t *lo = lut + (p < 4 ? 0 : 64) + 16 * (p % 4), *hi = lo + 128;
        int a0 = q[2 * p], a1 = q[2 * p + 1];
        for (int i0 = 0; i0 < 3; i0++)
            for (int i1 = 0; i1 < 3; i1++)
                put16(lo, hi, 3 * i0 + i1, (i0 - 1) * a0 + (i1 - 1) * a1);
    }
}

/* Tables of one TL2 group from its 48 activations. */
static void tl2_group_lut(const int8_t *q, uint8_t *lut)
{
    memset(lut, 0, BN_TL2_LUT_BYTES);
    for (int t = 0; t < 16; t++) {
        uint8_t *lo = lut + 128 * (t / 4) + 16 * (t % 4), *hi = lo + 64;
        int a0 = q[3 * t], a1 = q[3 * t + 1], a2 = q[3 * t + 2];
        for (int m = 0; m < 14; m++) {
            int v = 13 + m;
            put16(lo, hi, m, (v / 9 - 1) * a0 + (v / 3 % 3 - 1) * a1 + (v % 3 - 1) * a2);
        }
    }
}

void bn_tl1_luts_scalar(const int8_t *q, int64_t n_groups, uint8_t *lut)
{
    for (int64_t g = 0; g < n_groups; g++)
        tl1_group_lut(q + g * TL1_GROUP_COLS, lut + g * BN_TL1_LUT_BYTES);
}

void bn_tl2_luts_scalar(const int8_t *q, int64_t n_groups, uint8_t *lut)
{
    for (int64_t g = 0; g < n_groups; g++)
        tl2_group_lut(q + g * TL2_GROUP_COLS, lut + g * BN_TL2_LUT_BYTES);
}

/* The tables are built with the vector kernels of bn_path_default (same bytes). */
void bn_act_prep_tl1(const struct bn_act_i8 *a, void *buf, int64_t t0, int64_t t1)
{
    const struct bn_vec_kernels *k = bn_vec_kernels_for(bn_path_default());
    size_t tb = bn_tl_lut_bytes(BN_TYPE_TL1, a->cols);
    for (int64_t t = t0; t < t1; t++)
        k->tl1_luts(a->q + t * a->cols, a->cols / TL1_GROUP_COLS, (uint8_t *)buf + (size_t)t * tb);
}

void bn_act_prep_tl2(const struct bn_act_i8 *a, void *buf, int64_t t0, int64_t t1)
{
    const struct bn_vec_kernels *k = bn_vec_kernels_for(bn_path_default());
    size_t tb = bn_tl_lut_bytes(BN_TYPE_TL2, a->cols);
    int64_t g3 = a->cols / TL2_GROUP_COLS;
    for (int64_t t = t0; t < t1; t++) {
        uint8_t *lut = (uint8_t *)buf + (size_t)t * tb;
        const int8_t *q = a->q + t * a->cols;
        k->tl2_luts(q, g3, lut);
        k->tl1_luts(q + g3 * TL2_GROUP_COLS, (a->cols % TL2_GROUP_COLS) / TL1_GROUP_COLS,
                    lut + g3 * BN_TL2_LUT_BYTES);
    }
}

/* ---- scalar lookup kernels: the same tables, one entry at a time ---- */

static inline int16_t entry(const uint8_t *lo, const uint8_t *hi, int idx)
{
    return (int16_t)(lo[idx] | hi[idx] << 8);
}

/* Sum over one TL1 group of row rr (panel of h rows) with one token's tables. */
static int32_t tl1_group_dot(const uint8_t *g, int64_t h, int64_t rr, const uint8_t *lut)
{
    int32_t s = 0;
    for (int L = 0; L < 4; L++) {
        uint8_t b = g[h * L + rr];
        s += entry(lut + 16 * L, lut + 128 + 16 * L, b & 15);
        s += entry(lut + 64 + 16 * L, lut + 192 + 16 * L, b >> 4);
    }
    return s;
}

static int32_t tl2_group_dot(const uint8_t *g, int64_t h, int64_t rr, const uint8_t *lut)
{
    const uint8_t *A = g, *B = g + 4 * h, *S = g + 8 * h;
    int32_t s = 0;
    for (int t = 0; t < 16; t++) {
        int L = t % 4, j = t / 4;
        uint8_t b = (t < 8 ? A : B)[h * L + rr];
        int m = (t % 8) < 4 ? b & 15 : b >> 4;
        int neg;
        if (h == BN_TL_ROWS) {
            uint32_t w;
            memcpy(&w, S + 4 * (2 * j + rr / 8), 4);
            neg = (w >> (8 * L + rr % 8)) & 1;
        } else {
            neg = (bn_rd_u16(S + 2 * rr) >> t) & 1;
        }
        int v = entry(lut + 128 * j + 16 * L, lut + 128 * j + 64 + 16 * L, m);
        s += neg ? -v : v;
    }
    return s;
}

static void tl_scalar(const struct bn_matrix *w, int64_t r0, int64_t r1, const struct bn_act_i8 *a,
                      float *y, bool tl2)
{
    int64_t rows = w->rows, cols = w->cols, g3 = tl2 ? cols / TL2_GROUP_COLS : 0;
    int64_t g1 = tl2 ? (cols % TL2_GROUP_COLS) / TL1_GROUP_COLS : cols / TL1_GROUP_COLS;
    size_t rb = tl2 ? bn_tl2_row_bytes(cols) : bn_tl1_row_bytes(cols);
    size_t lb = bn_tl_lut_bytes(w->type, cols);
    for (int64_t r = r0; r < r1; r++) {
        int64_t p = r / BN_TL_ROWS, rr = r % BN_TL_ROWS;
        int64_t h = rows - p * BN_TL_ROWS < BN_TL_ROWS ? rows - p * BN_TL_ROWS : BN_TL_ROWS;
        const uint8_t *base = (const uint8_t *)w->data + (size_t)(p * BN_TL_ROWS) * rb;
        for (int64_t t = 0; t < a->n_tokens; t++) {
            const uint8_t *lut = (const uint8_t *)a->prep + (size_t)t * lb;
            int32_t isum = 0;
            for (int64_t g = 0; g < g3; g++)
                isum += tl2_group_dot(base + g * 10 * h, h, rr, lut + g * BN_TL2_LUT_BYTES);
            for (int64_t g = 0; g < g1; g++)
                isum += tl1_group_dot(base + g3 * 10 * h + g * 4 * h, h, rr,
                                      lut + g3 * BN_TL2_LUT_BYTES + g * BN_TL1_LUT_BYTES);
            float acc = 0.0f;
            acc += (float)isum / a->scale[t] * w->scale;
            y[t * rows + r] = acc;
        }
    }
}

void bn_gemm_tl1_scalar(const struct bn_matrix *w, int64_t r0, int64_t r1, const struct bn_act_i8 *a, float *y)
{
    tl_scalar(w, r0, r1, a, y, false);
}

void bn_gemm_tl2_scalar(const struct bn_matrix *w, int64_t r0, int64_t r1, const struct bn_act_i8 *a, float *y)
{
    tl_scalar(w, r0, r1, a, y, true);
}
