/* simd/fmt_q6_k.c — Q6_K (ggml): super-blocks of 256 weights in 210 bytes:
 * ql[128] low 4 bits, qh[64] high 2 bits, scales[16] int8 (one per 16 weights),
 * f16 d.  weight = d * scale[sub] * (q6 - 32). */
#include "internal.h"

void bn_q6_k_row_to_float(const void *row, float *dst, int64_t n, float scale)
{
    (void)scale;
    const uint8_t *blk = row;
    for (int64_t i = 0; i < n; i += BN_QK_K, blk += BN_Q6_K_BLOCK_BYTES) {
        const uint8_t *ql = blk;
        const uint8_t *qh = blk + 128;
        const int8_t *sc = (const int8_t *)(blk + 192);
        float d = bn_f16_to_f32(bn_rd_u16(blk + 208));
        float *y = dst + i;
        for (int half = 0; half < 2; half++) { /* 128 weights each */
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                int q1 = ((ql[l] & 0xf) | (((qh[l] >> 0) & 3) << 4)) - 32;
                int q2 = ((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) - 32;
                int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l] = d * (float)sc[is] * (float)q1;
                y[l + 32] = d * (float)sc[is + 2] * (float)q2;
                y[l + 64] = d * (float)sc[is + 4] * (float)q3;
                y[l + 96] = d * (float)sc[is + 6] * (float)q4;
            }
            y += 128;
            ql += 64;
            qh += 32;
            sc += 8;
        }
    }
}

/* A simple (not rmse-optimal) Q6_K quantizer: one scale per 16 weights so that
 * |q| <= 31, the 16 scales quantized to int8 against d = max scale / 127. */
size_t bn_q6_k_quantize(const float *src, void *dst, int64_t nrows, int64_t ncols)
{
    int64_t n = nrows * ncols;
    uint8_t *blk = dst;
    for (int64_t i = 0; i < n; i += BN_QK_K, blk += BN_Q6_K_BLOCK_BYTES) {
        const float *x = src + i;
        float sub[16], smax = 0.0f;
        for (int s = 0; s < 16; s++) {
            float amax = 0.0f;
            for (int j = 0; j < 16; j++)
                amax = fmaxf(amax, fabsf(x[16 * s + j]));
            sub[s] = amax / 31.0f;
            smax = fmaxf(smax, sub[s]);
        }
        float d = smax / 127.0f;
        uint16_t dh = bn_f32_to_f16(d);
        d = bn_f16_to_f32(dh);
        int8_t sc[16];
        uint8_t q[BN_QK_K];
        for (int s = 0; s < 16; s++) {
            int v = d > 0.0f ? (int)lrintf(sub[s] / d) : 0;
            if (v > 127)
                v = 127;
            sc[s] = (int8_t)v;
            float step = d * (float)v;
            float id = step > 0.0f ? 1.0f / step : 0.0f;
            for (int j = 0; j < 16; j++) {
                int qi = (int)lrintf(x[16 * s + j] * id);
                qi = qi < -32 ? -32 : qi > 31 ? 31 : qi;
                q[16 * s + j] = (uint8_t)(qi + 32);
            }
        }
        uint8_t *ql = blk, *qh = blk + 128;
        memset(qh, 0, 64);
        for (int half = 0; half < 2; half++) {
            const uint8_t *qq = q + 128 * half;
            for (int l = 0; l < 32; l++) {
                uint8_t q1 = qq[l], q2 = qq[l + 32], q3 = qq[l + 64], q4 = qq[l + 96];
                ql[l] = (uint8_t)((q1 & 0xf) | ((q3 & 0xf) << 4));
                ql[l + 32] = (uint8_t)((q2 & 0xf) | ((q4 & 0xf) << 4));
                qh[l] = (uint8_t)((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
            }
            ql += 64;
            qh += 32;
        }
        memcpy(blk + 192, sc, 16);
        bn_wr_u16(blk + 208, dh);
    }
    return (size_t)(n / BN_QK_K) * BN_Q6_K_BLOCK_BYTES;
}
