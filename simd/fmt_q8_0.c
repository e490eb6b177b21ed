/* simd/fmt_q8_0.c — Q8_0: blocks of 32 int8 with one f16 scale d (34 bytes). */
#include "internal.h"

void bn_q8_0_row_to_float(const void *row, float *dst, int64_t n, float scale)
{
    (void)scale;
    const uint8_t *b = row;
    for (int64_t i = 0; i < n; i += BN_QK8_0, b += BN_Q8_0_BLOCK_BYTES) {
        float d = bn_f16_to_f32(bn_rd_u16(b));
        const int8_t *q = (const int8_t *)(b + 2);
        for (int j = 0; j < BN_QK8_0; j++)
            dst[i + j] = d * (float)q[j];
    }
}

size_t bn_q8_0_quantize(const float *src, void *dst, int64_t nrows, int64_t ncols)
{
    int64_t n = nrows * ncols;
    uint8_t *b = dst;
    for (int64_t i = 0; i < n; i += BN_QK8_0, b += BN_Q8_0_BLOCK_BYTES) {
        float amax = 0.0f;
        for (int j = 0; j < BN_QK8_0; j++)
            amax = fmaxf(amax, fabsf(src[i + j]));
        float d = amax / 127.0f;
        float id = d > 0.0f ? 1.0f / d : 0.0f;
        bn_wr_u16(b, bn_f32_to_f16(d));
        int8_t *q = (int8_t *)(b + 2);
        for (int j = 0; j < BN_QK8_0; j++)
            q[j] = (int8_t)lrintf(src[i + j] * id);
    }
    return (size_t)(n / BN_QK8_0) * BN_Q8_0_BLOCK_BYTES;
}
