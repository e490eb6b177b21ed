/* simd/fmt_r16.c — the 16-row panel layouts of the vpdpbusd kernels (I2_R16, TQ_R16;
 * bit layout in simd/internal.h): codes in and out, and the float quantizer.
 *
 * Panel p holds rows [16p, 16p + h), h = min(16, rows - 16p); every panel before it
 * is full, so it starts at 16p rows' worth of bytes. */
#include <stdlib.h>

#include "internal.h"

static inline int64_t panel_rows(int64_t rows, int64_t p)
{
    int64_t h = rows - p * BN_R16_ROWS;
    return h < BN_R16_ROWS ? h : BN_R16_ROWS;
}

/* ---- I2_R16 ---- */

void bn_i2r16_codes_get(const void *data, int64_t rows, int64_t cols, int64_t r, int8_t *codes,
                        float *bscale)
{
    int64_t p = r / BN_R16_ROWS, rr = r % BN_R16_ROWS, h = panel_rows(rows, p);
    const uint8_t *base = (const uint8_t *)data + (size_t)(p * BN_R16_ROWS) * (size_t)(cols / 4);
    for (int64_t g = 0; g < cols / BN_R16_GROUP; g++) {
        const uint8_t *b = base + g * 4 * h + 4 * rr;
        for (int kk = 0; kk < BN_R16_GROUP; kk++)
            codes[g * BN_R16_GROUP + kk] = (int8_t)(((b[kk & 3] >> (2 * (kk >> 2))) & 3) - 1);
    }
    if (bscale) {
        float s;
        memcpy(&s, (const uint8_t *)data + (size_t)rows * (size_t)(cols / 4), sizeof s);
        for (int64_t b = 0; b < (cols + BN_QK_K - 1) / BN_QK_K; b++)
            bscale[b] = s;
    }
}

/* Pack the codes of rows [r0, r0 + n) of one panel (r0 a multiple of 16, n <= 16);
 * a panel may be written in pieces, each row's bytes are written whole. */
void bn_i2r16_codes_put(void *data, int64_t rows, int64_t cols, int64_t r0, int64_t n,
                        const int8_t *codes, const float *bscale)
{
    int64_t p = r0 / BN_R16_ROWS, h = panel_rows(rows, p);
    uint8_t *base = (uint8_t *)data + (size_t)(p * BN_R16_ROWS) * (size_t)(cols / 4);
    for (int64_t g = 0; g < cols / BN_R16_GROUP; g++) {
        uint8_t *b = base + g * 4 * h;
        for (int64_t rr = 0; rr < n; rr++) {
            const int8_t *c = codes + rr * cols + g * BN_R16_GROUP;
            for (int j = 0; j < 4; j++)
                b[4 * rr + j] = (uint8_t)((c[j] + 1) | (c[4 + j] + 1) << 2 | (c[8 + j] + 1) << 4 |
                                          (c[12 + j] + 1) << 6);
        }
    }
    uint8_t *tail = (uint8_t *)data + (size_t)rows * (size_t)(cols / 4);
    memset(tail, 0, BN_I2S_TAIL_BYTES);
    memcpy(tail, &bscale[0], sizeof(float));
}

size_t bn_i2r16_quantize(const float *src, void *dst, int64_t nrows, int64_t ncols)
{
    return bn_ternary_quantize_via_codes(BN_TYPE_I2_R16, src, dst, nrows, ncols);
}

/* ---- TQ_R16 ---- */

void bn_tqr16_codes_get(const void *data, int64_t rows, int64_t cols, int64_t r, int8_t *codes,
                        float *bscale)
{
    int64_t p = r / BN_R16_ROWS, rr = r % BN_R16_ROWS, h = panel_rows(rows, p);
    size_t row_bytes = (size_t)(cols / BN_QK_K) * BN_TQR16_BLOCK_BYTES;
    const uint8_t *base = (const uint8_t *)data + (size_t)(p * BN_R16_ROWS) * row_bytes;
    for (int64_t blk = 0; blk < cols / BN_QK_K; blk++) {
        const uint8_t *bb = base + blk * BN_TQR16_BLOCK_BYTES * h;
        for (int g = 0; g < BN_QK_K / BN_R16_GROUP; g++) {
            const uint8_t *b = bb + g * 4 * h + 4 * rr;
            for (int kk = 0; kk < BN_R16_GROUP; kk++)
                codes[blk * BN_QK_K + g * BN_R16_GROUP + kk] =
                    (int8_t)(((b[kk & 3] >> (2 * (kk >> 2))) & 3) - 1);
        }
        if (bscale)
            memcpy(&bscale[blk], bb + (BN_QK_K / 4) * h + 4 * rr, sizeof(float));
    }
}

void bn_tqr16_codes_put(void *data, int64_t rows, int64_t cols, int64_t r0, int64_t n,
                        const int8_t *codes, const float *bscale)
{
    int64_t p = r0 / BN_R16_ROWS, h = panel_rows(rows, p), nb = cols / BN_QK_K;
    size_t row_bytes = (size_t)nb * BN_TQR16_BLOCK_BYTES;
    uint8_t *base = (uint8_t *)data + (size_t)(p * BN_R16_ROWS) * row_bytes;
    for (int64_t blk = 0; blk < nb; blk++) {
        uint8_t *bb = base + blk * BN_TQR16_BLOCK_BYTES * h;
        for (int64_t rr = 0; rr < n; rr++) {
            for (int g = 0; g < BN_QK_K / BN_R16_GROUP; g++) {
                const int8_t *c = codes + rr * cols + blk * BN_QK_K + g * BN_R16_GROUP;
                uint8_t *b = bb + g * 4 * h + 4 * rr;
                for (int j = 0; j < 4; j++)
                    b[j] = (uint8_t)((c[j] + 1) | (c[4 + j] + 1) << 2 | (c[8 + j] + 1) << 4 |
                                     (c[12 + j] + 1) << 6);
            }
            memcpy(bb + (BN_QK_K / 4) * h + 4 * rr, &bscale[rr * nb + blk], sizeof(float));
        }
    }
}

size_t bn_tqr16_quantize(const float *src, void *dst, int64_t nrows, int64_t ncols)
{
    return bn_ternary_quantize_via_codes(BN_TYPE_TQ_R16, src, dst, nrows, ncols);
}

/* I2_S -> I2_R16 without going through int8 codes (the load-time repack of every
 * 2B-4T projection: 2.1 G weights).  Both store code w + 1 in 2 bits.  Column k of
 * an I2_S 128-block sits in byte k % 32 at shift 6 - 2 (k / 32); the 16 columns of
 * R16 group g of the block (g = 0..7) all use shift 6 - 2 (g / 2) and bytes
 * 16 (g % 2) + j + 4i (lane byte j, field i), so per row and group: pick 16 source
 * bytes, isolate one 2-bit field in each (64-bit shift and mask), and merge the four
 * 4-byte words with shifts 0, 2, 4, 6. */
void bn_i2s_to_i2r16(const void *src, void *dst, int64_t rows, int64_t cols)
{
    const uint8_t *in = src;
    uint8_t *out = dst;
    size_t rb = (size_t)(cols / 4);
    const uint64_t m2 = 0x0303030303030303ull;
    for (int64_t r = 0; r < rows; r++) {
        int64_t p = r / BN_R16_ROWS, rr = r % BN_R16_ROWS, h = panel_rows(rows, p);
        uint8_t *pan = out + (size_t)(p * BN_R16_ROWS) * rb + 4 * rr;
        const uint8_t *row = in + (size_t)r * rb;
        for (int64_t blk = 0; blk < cols / BN_QK_I2S; blk++) {
            const uint8_t *b = row + blk * BN_I2S_BLOCK_BYTES;
            uint64_t q[4];
            memcpy(q, b, 32);
            for (int g = 0; g < 8; g++) {
                int sh = 6 - 2 * (g / 2);
                uint64_t lo = (q[2 * (g % 2)] >> sh) & m2, hi = (q[2 * (g % 2) + 1] >> sh) & m2;
                uint32_t w = (uint32_t)lo | (uint32_t)(lo >> 32) << 2 | (uint32_t)hi << 4 |
                             (uint32_t)(hi >> 32) << 6;
                memcpy(pan + (blk * 8 + g) * 4 * h, &w, 4);
            }
        }
    }
    float scale;
    memcpy(&scale, in + (size_t)rows * rb, sizeof scale);
    memset(out + (size_t)rows * rb, 0, BN_I2S_TAIL_BYTES);
    memcpy(out + (size_t)rows * rb, &scale, sizeof scale);
}
