/* simd/internal.h — shared between the files of simd/ only (not a public header). */
#ifndef BN_SIMD_INTERNAL_H
#define BN_SIMD_INTERNAL_H

#include <math.h>
#include <string.h>

#include "simd.h"

/* Block geometry of the formats (REFERENCE §4, ggml). */
#define BN_QK_I2S 128        /* I2_S: weights per block (x86 layout) */
#define BN_I2S_BLOCK_BYTES 32
#define BN_I2S_TAIL_BYTES 32 /* f32 scale + 28 bytes of padding */
#define BN_QK_K 256          /* super-block of K-quants and TQ formats */
#define BN_QK8_0 32
#define BN_TQ2_BLOCK_BYTES 66 /* qs[64] + f16 d */
#define BN_TQ1_BLOCK_BYTES 54 /* qs[48] + qh[4] + f16 d */
#define BN_Q8_0_BLOCK_BYTES 34
#define BN_Q6_K_BLOCK_BYTES 210 /* ql[128] qh[64] scales[16] d */

/* Activation quantization limit (REFERENCE §3). */
#define BN_ACT_EPS 1e-5f

static inline uint16_t bn_rd_u16(const void *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}
static inline void bn_wr_u16(void *p, uint16_t v) { memcpy(p, &v, 2); }

/* Row formats (simd/fmt_*.c). */
void bn_f32_row_to_float(const void *row, float *dst, int64_t n, float scale);
void bn_f16_row_to_float(const void *row, float *dst, int64_t n, float scale);
void bn_bf16_row_to_float(const void *row, float *dst, int64_t n, float scale);
void bn_q8_0_row_to_float(const void *row, float *dst, int64_t n, float scale);
void bn_q6_k_row_to_float(const void *row, float *dst, int64_t n, float scale);
void bn_i2s_row_to_float(const void *row, float *dst, int64_t n, float scale);
void bn_tq2_row_to_float(const void *row, float *dst, int64_t n, float scale);
void bn_tq1_row_to_float(const void *row, float *dst, int64_t n, float scale);

size_t bn_f32_quantize(const float *src, void *dst, int64_t nrows, int64_t ncols);
size_t bn_f16_quantize(const float *src, void *dst, int64_t nrows, int64_t ncols);
size_t bn_bf16_quantize(const float *src, void *dst, int64_t nrows, int64_t ncols);
size_t bn_q8_0_quantize(const float *src, void *dst, int64_t nrows, int64_t ncols);
size_t bn_q6_k_quantize(const float *src, void *dst, int64_t nrows, int64_t ncols);
size_t bn_i2s_quantize(const float *src, void *dst, int64_t nrows, int64_t ncols);
size_t bn_tq2_quantize(const float *src, void *dst, int64_t nrows, int64_t ncols);
size_t bn_tq1_quantize(const float *src, void *dst, int64_t nrows, int64_t ncols);

/* Ternary codes of a whole tensor: each value -> -1/0/+1 and one scale
 * (exact when values are already {-s,0,+s}; absmean rule otherwise). */
float bn_ternarize(const float *src, int64_t n, int8_t *codes);

/* Ternary row -> int8 codes {-1,0,1}, n multiple of the block size; and the block
 * scales (TQ formats: one per 256; I2_S: none, returns 0 scales). */
void bn_i2s_row_codes(const void *row, int8_t *codes, int64_t n);
void bn_tq2_row_codes(const void *row, int8_t *codes, int64_t n, float *block_d);
void bn_tq1_row_codes(const void *row, int8_t *codes, int64_t n, float *block_d);

/* Scalar reference kernels (simd/matmul.c). */
void bn_gemm_i8_ternary_scalar(const struct bn_matrix *w, int64_t r0, int64_t r1,
                               const int8_t *xq, const float *xs, int64_t n_tokens, float *y);
void bn_gemm_f32_scalar(const struct bn_matrix *w, int64_t r0, int64_t r1, const float *x,
                        int64_t n_tokens, float *y, float *scratch);

#endif
