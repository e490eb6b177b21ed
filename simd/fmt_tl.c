/* simd/fmt_tl.c — bitnetd's table-lookup layouts TL1 and TL2 (REFERENCE §5), for
 * any shape with cols a multiple of 16: codes in and out, sizes.
 *
 * Both keep rows in panels of 16 (the last may be shorter: h rows), so that one
 * 16-byte pshufb lane holds the indices of 16 rows for one group of activations,
 * and a panel's bytes are contiguous (panel p starts at 16p rows' worth of bytes).
 *
 * TL1: 2 weights per 4-bit index: idx = 3 (w0 + 1) + (w1 + 1) in [0, 8].  Per 16
 *   columns (8 pairs) a panel holds 64 bytes: byte 16 L + r (lane L, row r) has the
 *   index of pair L in its low nibble and of pair 4 + L in its high nibble (pair p =
 *   columns 2p, 2p + 1).  A short panel packs the lanes to h bytes: byte h L + r.
 *   2 bits per weight, like I2_S.
 * TL2: 3 weights per 5 bits: v = 9 (w0 + 1) + 3 (w1 + 1) + (w2 + 1) in [0, 26] is
 *   stored as a magnitude m = |v - 13| (4 bits) and a sign (v < 13): negating the
 *   three weights maps v to 26 - v, so a 14-entry table of the signed sums of
 *   (a0, a1, a2) serves all 27 patterns.  Per 48 columns (16 triples) a full panel
 *   holds 160 bytes: indices A (64 bytes: byte 16 L + r, low nibble triple L, high
 *   nibble triple 4 + L), indices B (triples 8 + L, 12 + L), then 8 sign masks of 32
 *   bits: mask [j][half] (j: index vector A.lo, A.hi, B.lo, B.hi; half: rows 0-7 /
 *   8-15) has bit 8 L + (r % 8) set when (row r, triple 4 j + L) is negative — the
 *   order of the int16 lanes a kernel gets after unpacking the lookups, so the mask
 *   loads straight into an AVX-512 mask register.  A short panel: A and B packed to
 *   h bytes per lane, then per row a uint16 of its 16 sign bits (10 h bytes).  The
 *   last cols % 48 columns (16 or 32) are TL1 groups.  1.67 bits per weight.
 * Both end with the I2_S tail: 32 bytes holding the f32 tensor scale. */
#include <stdlib.h>

#include "internal.h"

#if BN_X86 && defined(__GNUC__) && !defined(__SANITIZE_ADDRESS__)
#define BN_TL_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define BN_TL_CLONES
#endif

/* GCC's cost model declines these byte loops; they do gain from vectors. */
#if defined(__GNUC__) && !defined(__clang__)
#define BN_VECTORIZE __attribute__((optimize("vect-cost-model=unlimited")))
#else
#define BN_VECTORIZE
#endif

#define TL2_GROUP_COLS 48
#define TL2_GROUP_BYTES 10 /* per row */
#define TL1_GROUP_COLS 16
#define TL1_GROUP_BYTES 4  /* per row */

size_t bn_tl1_row_bytes(int64_t cols) { return cols % 16 ? 0 : (size_t)(cols / 4); }

size_t bn_tl2_row_bytes(int64_t cols)
{
    if (cols <= 0 || cols % 16)
        return 0;
    return (size_t)(cols / TL2_GROUP_COLS) * TL2_GROUP_BYTES +
           (size_t)((cols % TL2_GROUP_COLS) / TL1_GROUP_COLS) * TL1_GROUP_BYTES;
}

static inline int64_t panel_rows(int64_t rows, int64_t p)
{
    int64_t h = rows - p * BN_TL_ROWS;
    return h < BN_TL_ROWS ? h : BN_TL_ROWS;
}

static void read_scale(const void *data, int64_t rows, size_t row_bytes, int64_t cols, float *bscale)
{
    if (!bscale)
        return;
    float s;
    memcpy(&s, (const uint8_t *)data + (size_t)rows * row_bytes, sizeof s);
    for (int64_t b = 0; b < (cols + BN_QK_K - 1) / BN_QK_K; b++)
        bscale[b] = s;
}

static void write_scale(void *data, int64_t rows, size_t row_bytes, float s)
{
    uint8_t *tail = (uint8_t *)data + (size_t)rows * row_bytes;
    memset(tail, 0, BN_I2S_TAIL_BYTES);
    memcpy(tail, &s, sizeof s);
}

/* ---- TL1 groups (also the tail of TL2 rows) ---- */

static void tl1_group_get(const uint8_t *g, int64_t h, int64_t r, int8_t *codes)
{
    for (int L = 0; L < 4; L++) {
        uint8_t b = g[h * L + r];
        int lo = b & 15, hi = b >> 4;
        codes[2 * L] = (int8_t)(lo / 3 - 1);
        codes[2 * L + 1] = (int8_t)(lo % 3 - 1);
        codes[8 + 2 * L] = (int8_t)(hi / 3 - 1);
        codes[8 + 2 * L + 1] = (int8_t)(hi % 3 - 1);
    }
}

static void tl1_group_put(uint8_t *g, int64_t h, int64_t r, const int8_t *c)
{
    for (int L = 0; L < 4; L++) {
        int lo = 3 * (c[2 * L] + 1) + (c[2 * L + 1] + 1);
        int hi = 3 * (c[8 + 2 * L] + 1) + (c[8 + 2 * L + 1] + 1);
        g[h * L + r] = (uint8_t)(lo | hi << 4);
    }
}

void bn_tl1_codes_get(const void *data, int64_t rows, int64_t cols, int64_t r, int8_t *codes,
                      float *bscale)
{
    size_t rb = bn_tl1_row_bytes(cols);
    int64_t p = r / BN_TL_ROWS, h = panel_rows(rows, p);
    const uint8_t *base = (const uint8_t *)data + (size_t)(p * BN_TL_ROWS) * rb;
    for (int64_t g = 0; g < cols / TL1_GROUP_COLS; g++)
        tl1_group_get(base + g * TL1_GROUP_BYTES * h, h, r % BN_TL_ROWS, codes + g * TL1_GROUP_COLS);
    read_scale(data, rows, rb, cols, bscale);
}

/* Pair indices of one row: P[p] = 3 (c[2p] + 1) + (c[2p+1] + 1); each pair read as
 * one 16-bit word so the loop vectorizes without strided loads. */
BN_TL_CLONES BN_VECTORIZE static void tl1_row_indices(const int8_t *restrict c, int64_t pairs, uint8_t *restrict P)
{
    for (int64_t p = 0; p < pairs; p++) {
        uint16_t w;
        memcpy(&w, c + 2 * p, 2);
        int16_t lo = (int16_t)(int8_t)(w & 0xff), hi = (int16_t)((int16_t)w >> 8);
        P[p] = (uint8_t)(lo + lo + lo + hi + 4);
    }
}

/* The 4 bytes of a TL1 group of one row from its 8 pair indices, to lanes L = 0..3. */
static inline void tl1_scatter(uint8_t *g, int64_t h, int64_t r, const uint8_t *P)
{
    uint32_t lo, hi;
    memcpy(&lo, P, 4);
    memcpy(&hi, P + 4, 4);
    uint32_t b = lo | hi << 4;
    for (int L = 0; L < 4; L++)
        g[h * L + r] = (uint8_t)(b >> (8 * L));
}

void bn_tl1_codes_put(void *data, int64_t rows, int64_t cols, int64_t r0, int64_t n,
                      const int8_t *codes, const float *bscale)
{
    size_t rb = bn_tl1_row_bytes(cols);
    int64_t p = r0 / BN_TL_ROWS, h = panel_rows(rows, p);
    uint8_t *base = (uint8_t *)data + (size_t)(p * BN_TL_ROWS) * rb;
    uint8_t *P = malloc((size_t)(cols / 2));
    for (int64_t i = 0; i < n; i++) {
        if (P) {
            tl1_row_indices(codes + i * cols, cols / 2, P);
            for (int64_t g = 0; g < cols / TL1_GROUP_COLS; g++)
                tl1_scatter(base + g * TL1_GROUP_BYTES * h, h, i, P + 8 * g);
        } else { /* out of memory for the row's indices: byte by byte */
            for (int64_t g = 0; g < cols / TL1_GROUP_COLS; g++)
                tl1_group_put(base + g * TL1_GROUP_BYTES * h, h, i, codes + i * cols + g * TL1_GROUP_COLS);
        }
    }
    free(P);
    write_scale(data, rows, rb, bscale[0]);
}

/* ---- TL2 ---- */

/* Sign bit of (row r, triple t) of a full panel group: mask [j = t / 4][half = r / 8],
 * bit 8 (t % 4) + r % 8. */
static inline int tl2_sign_word(int t, int r) { return 2 * (t / 4) + r / 8; }
static inline int tl2_sign_bit(int t, int r) { return 8 * (t % 4) + r % 8; }

static void tl2_group_get(const uint8_t *g, int64_t h, int64_t r, int8_t *codes)
{
    const uint8_t *A = g, *B = g + 4 * h, *S = g + 8 * h;
    for (int t = 0; t < 16; t++) {
        int L = t % 4;
        const uint8_t *idx = t < 8 ? A : B;
        int m = ((t % 8) < 4 ? idx[h * L + r] & 15 : idx[h * L + r] >> 4);
        int neg;
        if (h == BN_TL_ROWS) {
            uint32_t w;
            memcpy(&w, S + 4 * tl2_sign_word(t, (int)r), 4);
            neg = (w >> tl2_sign_bit(t, (int)r)) & 1;
        } else {
            neg = (bn_rd_u16(S + 2 * r) >> t) & 1;
        }
        int v = neg ? 13 - m : 13 + m;
        codes[3 * t] = (int8_t)(v / 9 - 1);
        codes[3 * t + 1] = (int8_t)(v / 3 % 3 - 1);
        codes[3 * t + 2] = (int8_t)(v % 3 - 1);
    }
}

static void tl2_group_put(uint8_t *g, int64_t h, int64_t r, const int8_t *c)
{
    uint8_t *A = g, *B = g + 4 * h, *S = g + 8 * h;
    uint16_t row_signs = 0;
    for (int t = 0; t < 16; t++) {
        int v = 9 * (c[3 * t] + 1) + 3 * (c[3 * t + 1] + 1) + (c[3 * t + 2] + 1);
        int neg = v < 13, m = neg ? 13 - v : v - 13, L = t % 4;
        uint8_t *idx = (t < 8 ? A : B) + h * L + r;
        if ((t % 8) < 4)
            *idx = (uint8_t)((*idx & 0xf0) | m);
        else
            *idx = (uint8_t)((*idx & 0x0f) | m << 4);
        if (h == BN_TL_ROWS) {
            uint32_t w;
            uint8_t *p = S + 4 * tl2_sign_word(t, (int)r);
            memcpy(&w, p, 4);
            w = (w & ~(1u << tl2_sign_bit(t, (int)r))) | (uint32_t)neg << tl2_sign_bit(t, (int)r);
            memcpy(p, &w, 4);
        }
        row_signs |= (uint16_t)(neg << t);
    }
    if (h != BN_TL_ROWS)
        bn_wr_u16(S + 2 * r, row_signs);
}

void bn_tl2_codes_get(const void *data, int64_t rows, int64_t cols, int64_t r, int8_t *codes,
                      float *bscale)
{
    size_t rb = bn_tl2_row_bytes(cols);
    int64_t p = r / BN_TL_ROWS, h = panel_rows(rows, p), g3 = cols / TL2_GROUP_COLS;
    const uint8_t *base = (const uint8_t *)data + (size_t)(p * BN_TL_ROWS) * rb;
    for (int64_t g = 0; g < g3; g++)
        tl2_group_get(base + g * TL2_GROUP_BYTES * h, h, r % BN_TL_ROWS, codes + g * TL2_GROUP_COLS);
    base += g3 * TL2_GROUP_BYTES * h;
    for (int64_t g = 0; g < (cols % TL2_GROUP_COLS) / TL1_GROUP_COLS; g++)
        tl1_group_get(base + g * TL1_GROUP_BYTES * h, h, r % BN_TL_ROWS,
                      codes + g3 * TL2_GROUP_COLS + g * TL1_GROUP_COLS);
    read_scale(data, rows, rb, cols, bscale);
}

/* Triple magnitudes and signs of one row: v = 9 c0 + 3 c1 + c2 in [-13, 13].
 * V[i] = 9 c[i] + 3 c[i+1] + c[i+2] for every i first (contiguous, vectorized), then
 * every third is kept. V holds 3 * triples bytes. */
BN_TL_CLONES BN_VECTORIZE static void tl2_row_values(const int8_t *restrict c, int64_t n, int8_t *restrict V)
{
    for (int64_t i = 0; i < n; i++) { /* additions only: byte multiplies do not vectorize */
        int8_t a = (int8_t)(c[i] + c[i] + c[i] + c[i + 1]);
        V[i] = (int8_t)(a + a + a + c[i + 2]);
    }
}

BN_TL_CLONES BN_VECTORIZE static void tl2_row_select(const int8_t *restrict V, int64_t triples,
                                                     uint8_t *restrict M, uint8_t *restrict N)
{
    for (int64_t t = 0; t < triples; t++) {
        int8_t v = V[3 * t];
        M[t] = (uint8_t)(v < 0 ? -v : v);
        N[t] = (uint8_t)(v < 0);
    }
}

static void tl2_row_indices(const int8_t *c, int64_t triples, int8_t *V, uint8_t *M, uint8_t *N)
{
    tl2_row_values(c, 3 * triples - 2, V);
    tl2_row_select(V, triples, M, N);
}

/* One row's share of a TL2 group from its 16 magnitudes and signs. */
static inline void tl2_scatter(uint8_t *g, int64_t h, int64_t r, const uint8_t *M, const uint8_t *N)
{
    uint8_t *A = g, *B = g + 4 * h, *S = g + 8 * h;
    tl1_scatter(A, h, r, M);     /* nibble packing as TL1: triples L | 4 + L */
    tl1_scatter(B, h, r, M + 8); /* 8 + L | 12 + L */
    if (h == BN_TL_ROWS) {
        /* word [2j + r/8] gets bit 8L + r%8 for triple 4j + L: the 4 sign bytes of
         * triples 4j..4j+3, shifted by r % 8 */
        for (int j = 0; j < 4; j++) {
            uint32_t w, x;
            uint8_t *p = S + 4 * (2 * j + r / 8);
            memcpy(&w, p, 4);
            memcpy(&x, N + 4 * j, 4);
            uint32_t bit = 0x01010101u << (r % 8);
            w = (w & ~bit) | (x << (r % 8));
            memcpy(p, &w, 4);
        }
    } else {
        uint64_t lo, hi;
        memcpy(&lo, N, 8);
        memcpy(&hi, N + 8, 8);
        /* 8 bytes of 0/1 -> 8 bits in order (multiply gathers bit 0 of each byte) */
        unsigned bl = (unsigned)((lo * 0x0102040810204080ull) >> 56), bh = (unsigned)((hi * 0x0102040810204080ull) >> 56);
        bn_wr_u16(S + 2 * r, (uint16_t)(bl | bh << 8));
    }
}

void bn_tl2_codes_put(void *data, int64_t rows, int64_t cols, int64_t r0, int64_t n,
                      const int8_t *codes, const float *bscale)
{
    size_t rb = bn_tl2_row_bytes(cols);
    int64_t p = r0 / BN_TL_ROWS, h = panel_rows(rows, p), g3 = cols / TL2_GROUP_COLS;
    uint8_t *base = (uint8_t *)data + (size_t)(p * BN_TL_ROWS) * rb;
    uint8_t *M = malloc((size_t)(2 * cols)), *N = M ? M + cols / 2 : NULL;
    int8_t *V = M ? (int8_t *)(M + cols) : NULL;
    for (int64_t i = 0; i < n; i++) {
        const int8_t *c = codes + i * cols;
        if (M) {
            tl2_row_indices(c, g3 * 16, V, M, N);
            for (int64_t g = 0; g < g3; g++)
                tl2_scatter(base + g * TL2_GROUP_BYTES * h, h, i, M + 16 * g, N + 16 * g);
        } else {
            for (int64_t g = 0; g < g3; g++)
                tl2_group_put(base + g * TL2_GROUP_BYTES * h, h, i, c + g * TL2_GROUP_COLS);
        }
        uint8_t *tail = base + g3 * TL2_GROUP_BYTES * h;
        for (int64_t g = 0; g < (cols % TL2_GROUP_COLS) / TL1_GROUP_COLS; g++)
            tl1_group_put(tail + g * TL1_GROUP_BYTES * h, h, i, c + g3 * TL2_GROUP_COLS + g * TL1_GROUP_COLS);
    }
    free(M);
    write_scale(data, rows, rb, bscale[0]);
}

size_t bn_tl1_quantize(const float *src, void *dst, int64_t nrows, int64_t ncols)
{
    return bn_ternary_quantize_via_codes(BN_TYPE_TL1, src, dst, nrows, ncols);
}

size_t bn_tl2_quantize(const float *src, void *dst, int64_t nrows, int64_t ncols)
{
    return bn_ternary_quantize_via_codes(BN_TYPE_TL2, src, dst, nrows, ncols);
}
