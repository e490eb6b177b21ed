/* simd/fmt_float.c — F32, F16, BF16 rows. */
#include "internal.h"

void bn_f32_row_to_float(const void *row, float *dst, int64_t n, float scale)
{
    (void)scale;
    memcpy(dst, row, (size_t)n * sizeof(float));
}

void bn_f16_row_to_float(const void *row, float *dst, int64_t n, float scale)
{
    (void)scale;
    const uint8_t *p = row;
    for (int64_t i = 0; i < n; i++)
        dst[i] = bn_f16_to_f32(bn_rd_u16(p + 2 * i));
}

void bn_bf16_row_to_float(const void *row, float *dst, int64_t n, float scale)
{
    (void)scale;
    const uint8_t *p = row;
    for (int64_t i = 0; i < n; i++) {
        uint32_t bits = (uint32_t)bn_rd_u16(p + 2 * i) << 16;
        memcpy(&dst[i], &bits, 4);
    }
}

size_t bn_f32_quantize(const float *src, void *dst, int64_t nrows, int64_t ncols)
{
    size_t bytes = (size_t)(nrows * ncols) * sizeof(float);
    memcpy(dst, src, bytes);
    return bytes;
}

size_t bn_f16_quantize(const float *src, void *dst, int64_t nrows, int64_t ncols)
{
    int64_t n = nrows * ncols;
    uint8_t *p = dst;
    for (int64_t i = 0; i < n; i++)
        bn_wr_u16(p + 2 * i, bn_f32_to_f16(src[i]));
    return (size_t)n * 2;
}

size_t bn_bf16_quantize(const float *src, void *dst, int64_t nrows, int64_t ncols)
{
    int64_t n = nrows * ncols;
    uint8_t *p = dst;
    for (int64_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &src[i], 4);
        if ((bits & 0x7fffffffu) > 0x7f800000u) {
            bits = (bits >> 16) | 0x40; /* quiet nan */
        } else {
            bits = (bits + 0x7fffu + ((bits >> 16) & 1)) >> 16; /* nearest even */
        }
        bn_wr_u16(p + 2 * i, (uint16_t)bits);
    }
    return (size_t)n * 2;
}
