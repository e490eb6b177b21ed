/* simd/fmt_ternary.c — ternary weight formats (REFERENCE §4).
 *
 * I2_S  (bitnet.cpp x86): blocks of 128 weights in 32 bytes, weight j of a block at
 *       byte j % 32, bits 6 - 2*(j/32); code = q + 1.  One f32 scale per tensor in a
 *       32-byte tail after all blocks.
 * TQ2_0 (llama.cpp): 256-weight blocks of 66 bytes: qs[64], f16 d.  In each 128-weight
 *       half, weight l*32+m at bits 2l of qs[half*32+m] (lowest bits first).
 * TQ1_0 (llama.cpp): 256-weight blocks of 54 bytes: qs[48] (5 trits/byte), qh[4]
 *       (4 trits/byte), f16 d; trit n of byte b = ((uint8)(b * 3^n) * 3) >> 8.
 */
#include <stdlib.h>

#include "internal.h"

static const uint8_t pow3[6] = {1, 3, 9, 27, 81, 243};

float bn_ternarize(const float *src, int64_t n, int8_t *codes)
{
    float amax = 0.0f;
    for (int64_t i = 0; i < n; i++)
        amax = fmaxf(amax, fabsf(src[i]));
    bool exact = true;
    for (int64_t i = 0; i < n && exact; i++) {
        float a = fabsf(src[i]);
        exact = (a == 0.0f || a == amax);
    }
    if (exact) {
        for (int64_t i = 0; i < n; i++)
            codes[i] = (int8_t)(src[i] > 0.0f ? 1 : src[i] < 0.0f ? -1 : 0);
        return amax;
    }
    /* BitNet b1.58 absmean: scale = mean|W|, q = clamp(round(W / scale), -1, 1) */
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++)
        sum += fabsf(src[i]);
    float scale = (float)(sum / (double)n);
    if (!(scale > 0.0f))
        scale = 1.0f; /* all zero */
    float inv = 1.0f / scale;
    for (int64_t i = 0; i < n; i++) {
        float q = rintf(src[i] * inv);
        codes[i] = (int8_t)(q > 1.0f ? 1 : q < -1.0f ? -1 : q);
    }
    return scale;
}

/* ---- I2_S ---- */

void bn_i2s_row_codes(const void *row, int8_t *codes, int64_t n)
{
    const uint8_t *b = row;
    for (int64_t i = 0; i < n; i += BN_QK_I2S, b += BN_I2S_BLOCK_BYTES)
        for (int j = 0; j < BN_QK_I2S; j++)
            codes[i + j] = (int8_t)(((b[j % 32] >> (6 - 2 * (j / 32))) & 3) - 1);
}

void bn_i2s_row_to_float(const void *row, float *dst, int64_t n, float scale)
{
    const uint8_t *b = row;
    for (int64_t i = 0; i < n; i += BN_QK_I2S, b += BN_I2S_BLOCK_BYTES)
        for (int j = 0; j < BN_QK_I2S; j++)
            dst[i + j] = (float)(((b[j % 32] >> (6 - 2 * (j / 32))) & 3) - 1) * scale;
}

static void i2s_pack(const int8_t *codes, int64_t n, uint8_t *out)
{
    memset(out, 0, (size_t)(n / 4));
    for (int64_t i = 0; i < n; i += BN_QK_I2S, out += BN_I2S_BLOCK_BYTES)
        for (int j = 0; j < BN_QK_I2S; j++)
            out[j % 32] |= (uint8_t)((codes[i + j] + 1) << (6 - 2 * (j / 32)));
}

size_t bn_i2s_quantize(const float *src, void *dst, int64_t nrows, int64_t ncols)
{
    int64_t n = nrows * ncols;
    int8_t *codes = malloc((size_t)n);
    if (!codes)
        return 0;
    float scale = bn_ternarize(src, n, codes);
    uint8_t *out = dst;
    i2s_pack(codes, n, out);
    free(codes);
    memset(out + n / 4, 0, BN_I2S_TAIL_BYTES);
    memcpy(out + n / 4, &scale, sizeof scale);
    return (size_t)(n / 4) + BN_I2S_TAIL_BYTES;
}

/* ---- TQ2_0 ---- */

void bn_tq2_row_codes(const void *row, int8_t *codes, int64_t n, float *block_d)
{
    const uint8_t *b = row;
    for (int64_t i = 0; i < n; i += BN_QK_K, b += BN_TQ2_BLOCK_BYTES) {
        for (int half = 0; half < 2; half++)
            for (int l = 0; l < 4; l++)
                for (int m = 0; m < 32; m++)
                    codes[i + half * 128 + l * 32 + m] =
                        (int8_t)(((b[half * 32 + m] >> (2 * l)) & 3) - 1);
        if (block_d)
            block_d[i / BN_QK_K] = bn_f16_to_f32(bn_rd_u16(b + 64));
    }
}

void bn_tq2_row_to_float(const void *row, float *dst, int64_t n, float scale)
{
    (void)scale;
    const uint8_t *b = row;
    for (int64_t i = 0; i < n; i += BN_QK_K, b += BN_TQ2_BLOCK_BYTES) {
        float d = bn_f16_to_f32(bn_rd_u16(b + 64));
        for (int half = 0; half < 2; half++)
            for (int l = 0; l < 4; l++)
                for (int m = 0; m < 32; m++)
                    dst[i + half * 128 + l * 32 + m] =
                        (float)(((b[half * 32 + m] >> (2 * l)) & 3) - 1) * d;
    }
}

/* Block scale of a TQ block: the tensor scale where the block has a non-zero
 * weight (ggml uses the block's absmax, which is the same for ternary input). */
static uint16_t tq_block_d(const int8_t *codes, float scale)
{
    for (int j = 0; j < BN_QK_K; j++)
        if (codes[j])
            return bn_f32_to_f16(scale);
    return 0;
}

size_t bn_tq2_quantize(const float *src, void *dst, int64_t nrows, int64_t ncols)
{
    int64_t n = nrows * ncols;
    int8_t *codes = malloc((size_t)n);
    if (!codes)
        return 0;
    float scale = bn_ternarize(src, n, codes);
    uint8_t *b = dst;
    for (int64_t i = 0; i < n; i += BN_QK_K, b += BN_TQ2_BLOCK_BYTES) {
        const int8_t *c = codes + i;
        for (int half = 0; half < 2; half++)
            for (int m = 0; m < 32; m++) {
                uint8_t q = 0;
                for (int l = 0; l < 4; l++)
                    q |= (uint8_t)((c[half * 128 + l * 32 + m] + 1) << (2 * l));
                b[half * 32 + m] = q;
            }
        bn_wr_u16(b + 64, tq_block_d(c, scale));
    }
    free(codes);
    return (size_t)(n / BN_QK_K) * BN_TQ2_BLOCK_BYTES;
}

/* ---- TQ1_0 ---- */

static inline int tq1_trit(uint8_t byte, int nth)
{
    uint8_t q = (uint8_t)(byte * pow3[nth]);
    return ((uint16_t)q * 3) >> 8;
}

void bn_tq1_row_codes(const void *row, int8_t *codes, int64_t n, float *block_d)
{
    const uint8_t *b = row;
    for (int64_t i = 0; i < n; i += BN_QK_K, b += BN_TQ1_BLOCK_BYTES) {
        int8_t *y = codes + i;
        for (int t = 0; t < 5; t++) /* qs[0..32): 160 weights */
            for (int m = 0; m < 32; m++)
                *y++ = (int8_t)(tq1_trit(b[m], t) - 1);
        for (int t = 0; t < 5; t++) /* qs[32..48): 80 weights */
            for (int m = 0; m < 16; m++)
                *y++ = (int8_t)(tq1_trit(b[32 + m], t) - 1);
        for (int t = 0; t < 4; t++) /* qh[4]: 16 weights */
            for (int j = 0; j < 4; j++)
                *y++ = (int8_t)(tq1_trit(b[48 + j], t) - 1);
        if (block_d)
            block_d[i / BN_QK_K] = bn_f16_to_f32(bn_rd_u16(b + 52));
    }
}

void bn_tq1_row_to_float(const void *row, float *dst, int64_t n, float scale)
{
    (void)scale;
    int8_t codes[BN_QK_K];
    const uint8_t *b = row;
    for (int64_t i = 0; i < n; i += BN_QK_K, b += BN_TQ1_BLOCK_BYTES) {
        float d;
        bn_tq1_row_codes(b, codes, BN_QK_K, &d);
        for (int j = 0; j < BN_QK_K; j++)
            dst[i + j] = (float)codes[j] * d;
    }
}

/* n trits (most significant first) -> one byte holding them as base-3 fixed point */
static uint8_t tq1_pack_byte(const int *trits, int n)
{
    unsigned q = 0;
    for (int k = 0; k < n; k++)
        q = q * 3 + (unsigned)trits[k];
    for (int k = n; k < 5; k++)
        q *= 3; /* four trits: shift the first to the most significant trit */
    return (uint8_t)((q * 256 + (243 - 1)) / 243); /* ceiling division */
}

size_t bn_tq1_quantize(const float *src, void *dst, int64_t nrows, int64_t ncols)
{
    int64_t n = nrows * ncols;
    int8_t *codes = malloc((size_t)n);
    if (!codes)
        return 0;
    float scale = bn_ternarize(src, n, codes);
    uint8_t *b = dst;
    for (int64_t i = 0; i < n; i += BN_QK_K, b += BN_TQ1_BLOCK_BYTES) {
        const int8_t *c = codes + i;
        int t[5];
        for (int m = 0; m < 32; m++) {
            for (int k = 0; k < 5; k++)
                t[k] = c[m + 32 * k] + 1;
            b[m] = tq1_pack_byte(t, 5);
        }
        for (int m = 0; m < 16; m++) {
            for (int k = 0; k < 5; k++)
                t[k] = c[160 + m + 16 * k] + 1;
            b[32 + m] = tq1_pack_byte(t, 5);
        }
        for (int j = 0; j < 4; j++) {
            for (int k = 0; k < 4; k++)
                t[k] = c[240 + j + 4 * k] + 1;
            b[48 + j] = tq1_pack_byte(t, 4);
        }
        bn_wr_u16(b + 52, tq_block_d(c, scale));
    }
    free(codes);
    return (size_t)(n / BN_QK_K) * BN_TQ1_BLOCK_BYTES;
}
