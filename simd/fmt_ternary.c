/* simd/fmt_ternary.c — ternary weight formats (REFERENCE §4): quantize, dequantize,
 * codes access.
 *
 * I2_S  (bitnet.cpp x86): blocks of 128 weights in 32 bytes, weight j of a block at
 *       byte j % 32, bits 6 - 2*(j/32); code = q + 1.  One f32 scale per tensor in a
 *       32-byte tail after all blocks.
 * TQ2_0 (llama.cpp): 256-weight blocks of 66 bytes: qs[64], f16 d.  In each 128-weight
 *       half, weight l*32+m at bits 2l of qs[half*32+m] (lowest bits first).
 * TQ1_0 (llama.cpp): 256-weight blocks of 54 bytes: qs[48] (5 trits/byte), qh[4]
 *       (4 trits/byte), f16 d; trit n of byte b = ((uint8)(b * 3^n) * 3) >> 8.
 *
 * Speed: quantizing is one pass for the scale (max |w|, smallest non-zero |w|, and
 * the absmean sum) and one pass turning chunks of BN_QUANT_CHUNK floats into codes
 * and packing them, with the per-path vector kernels of bn_path_default() (simd/
 * vec*.c); the absmean sum has one fixed order on every path, so every machine
 * quantizes a tensor to the same bytes.  Unpacking loops are written for the
 * compiler to vectorize and compiled for AVX-512, AVX2 and baseline x86-64, the
 * best chosen at load time (target_clones); they compute the same values. */
#include <pthread.h>
#include <stdlib.h>

#include "internal.h"

#define BN_QUANT_CHUNK 4096 /* floats turned into codes at a time (stack buffer) */

#if BN_X86 && defined(__GNUC__) && !defined(__SANITIZE_ADDRESS__)
#define BN_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define BN_CLONES
#endif

/* ---- scale and codes ---- */

struct tern_scale {
    float scale; /* what the format stores */
    float inv;   /* 1 / scale (absmean rounding) */
    bool exact;  /* every value in {-scale, 0, +scale}: codes are the signs */
};

static const struct bn_vec_kernels *vk(void) { return bn_vec_kernels_for(bn_path_default()); }

/* One pass: max |w|, smallest non-zero |w| (exact iff it equals the max), NaN seen,
 * and sum |w| in a fixed order (struct bn_vec_kernels.ternary_stats). */
static struct tern_scale ternary_scale(const float *src, int64_t n)
{
    struct bn_ternary_stats st;
    vk()->ternary_stats(src, n, &st);
    struct tern_scale s;
    s.exact = !st.nan && (st.min_nonzero == INFINITY || st.min_nonzero == st.amax);
    if (s.exact) {
        s.scale = st.amax;
        s.inv = 0.0f;
        return s;
    }
    /* BitNet b1.58 absmean: scale = mean|W|, q = clamp(round(W / scale), -1, 1) */
    s.scale = (float)(st.sum / (double)n);
    if (!(s.scale > 0.0f))
        s.scale = 1.0f; /* all zero (or NaN) */
    s.inv = 1.0f / s.scale;
    return s;
}

/* codes in {-1, 0, 1}: the sign (exact), or rint(w / scale) clipped — i.e. 1 iff
 * w * inv > 0.5 (0.5 itself rounds to even 0), -1 iff < -0.5; NaN gives 0. */
static void ternary_codes(const float *src, int64_t n, struct tern_scale s, int8_t *codes)
{
    vk()->ternary_codes(src, n, s.inv, s.exact, codes);
}

float bn_ternarize(const float *src, int64_t n, int8_t *codes)
{
    struct tern_scale s = ternary_scale(src, n);
    ternary_codes(src, n, s, codes);
    return s.scale;
}

/* ---- I2_S ---- */

BN_CLONES static void i2s_row_codes_impl(const void *row, int8_t *codes, int64_t n)
{
    const uint8_t *b = row;
    for (int64_t i = 0; i < n; i += BN_QK_I2S, b += BN_I2S_BLOCK_BYTES)
        for (int k = 0; k < 4; k++)
            for (int m = 0; m < 32; m++)
                codes[i + 32 * k + m] = (int8_t)(((b[m] >> (6 - 2 * k)) & 3) - 1);
}

/* (clang emits a target_clones dispatcher only for callers in the same file) */
void bn_i2s_row_codes(const void *row, int8_t *codes, int64_t n) { i2s_row_codes_impl(row, codes, n); }

BN_CLONES static void i2s_row_to_float_impl(const void *row, float *dst, int64_t n, float scale)
{
    const uint8_t *b = row;
    for (int64_t i = 0; i < n; i += BN_QK_I2S, b += BN_I2S_BLOCK_BYTES)
        for (int k = 0; k < 4; k++)
            for (int m = 0; m < 32; m++)
                dst[i + 32 * k + m] = (float)(((b[m] >> (6 - 2 * k)) & 3) - 1) * scale;
}

void bn_i2s_row_to_float(const void *row, float *dst, int64_t n, float scale) { i2s_row_to_float_impl(row, dst, n, scale); }

/* n a multiple of 128 */
static void i2s_pack(const int8_t *c, int64_t n, uint8_t *out)
{
    vk()->pack2(c, n, out, BN_I2S_BLOCK_BYTES, true);
}

size_t bn_i2s_quantize(const float *src, void *dst, int64_t nrows, int64_t ncols)
{
    int64_t n = nrows * ncols;
    int8_t codes[BN_QUANT_CHUNK];
    struct tern_scale s = ternary_scale(src, n);
    uint8_t *out = dst;
    for (int64_t i = 0; i < n; i += BN_QUANT_CHUNK) {
        int64_t k = n - i < BN_QUANT_CHUNK ? n - i : BN_QUANT_CHUNK;
        ternary_codes(src + i, k, s, codes);
        i2s_pack(codes, k, out + i / 4);
    }
    memset(out + n / 4, 0, BN_I2S_TAIL_BYTES);
    memcpy(out + n / 4, &s.scale, sizeof s.scale);
    return (size_t)(n / 4) + BN_I2S_TAIL_BYTES;
}

/* ---- TQ2_0 ---- */

BN_CLONES static void tq2_row_codes_impl(const void *row, int8_t *codes, int64_t n, float *block_d)
{
    const uint8_t *b = row;
    for (int64_t i = 0; i < n; i += BN_QK_K, b += BN_TQ2_BLOCK_BYTES) {
        for (int half = 0; half < 2; half++)
            for (int l = 0; l < 4; l++)
                for (int m = 0; m < 32; m++)
                    codes[i + half * 128 + l * 32 + m] = (int8_t)(((b[half * 32 + m] >> (2 * l)) & 3) - 1);
        if (block_d)
            block_d[i / BN_QK_K] = bn_f16_to_f32(bn_rd_u16(b + 64));
    }
}

void bn_tq2_row_codes(const void *row, int8_t *codes, int64_t n, float *block_d) { tq2_row_codes_impl(row, codes, n, block_d); }

BN_CLONES static void tq2_row_to_float_impl(const void *row, float *dst, int64_t n, float scale)
{
    (void)scale;
    const uint8_t *b = row;
    for (int64_t i = 0; i < n; i += BN_QK_K, b += BN_TQ2_BLOCK_BYTES) {
        float d = bn_f16_to_f32(bn_rd_u16(b + 64));
        for (int half = 0; half < 2; half++)
            for (int l = 0; l < 4; l++)
                for (int m = 0; m < 32; m++)
                    dst[i + half * 128 + l * 32 + m] = (float)(((b[half * 32 + m] >> (2 * l)) & 3) - 1) * d;
    }
}

void bn_tq2_row_to_float(const void *row, float *dst, int64_t n, float scale) { tq2_row_to_float_impl(row, dst, n, scale); }

/* The 64 code bytes of one TQ2 block; returns whether any code is non-zero. */
static bool tq2_pack_block(const int8_t *c, uint8_t *b)
{
    vk()->pack2(c, BN_QK_K, b, 32, false);
    int nz = 0;
    for (int j = 0; j < BN_QK_K; j++)
        nz |= c[j];
    return nz != 0;
}

/* Block scale of a TQ block: the tensor scale where the block has a non-zero
 * weight (ggml uses the block's absmax, which is the same for ternary input). */
size_t bn_tq2_quantize(const float *src, void *dst, int64_t nrows, int64_t ncols)
{
    int64_t n = nrows * ncols;
    int8_t codes[BN_QUANT_CHUNK];
    struct tern_scale s = ternary_scale(src, n);
    uint16_t d = bn_f32_to_f16(s.scale);
    uint8_t *b = dst;
    for (int64_t i = 0; i < n; i += BN_QUANT_CHUNK) {
        int64_t k = n - i < BN_QUANT_CHUNK ? n - i : BN_QUANT_CHUNK;
        ternary_codes(src + i, k, s, codes);
        for (int64_t j = 0; j < k; j += BN_QK_K, b += BN_TQ2_BLOCK_BYTES)
            bn_wr_u16(b + 64, tq2_pack_block(codes + j, b) ? d : 0);
    }
    return (size_t)(n / BN_QK_K) * BN_TQ2_BLOCK_BYTES;
}

/* ---- TQ1_0 ---- */

/* trit n of byte b: ((uint8)(b * 3^n) * 3) >> 8 */
#define TQ1_TRIT(b, p3) ((int)(((uint16_t)(uint8_t)((b) * (p3)) * 3) >> 8))

BN_CLONES static void tq1_row_codes_impl(const void *row, int8_t *codes, int64_t n, float *block_d)
{
    static const uint8_t pow3[5] = {1, 3, 9, 27, 81};
    const uint8_t *b = row;
    for (int64_t i = 0; i < n; i += BN_QK_K, b += BN_TQ1_BLOCK_BYTES) {
        int8_t *y = codes + i;
        for (int t = 0; t < 5; t++) /* qs[0..32): 160 weights */
            for (int m = 0; m < 32; m++)
                y[32 * t + m] = (int8_t)(TQ1_TRIT(b[m], pow3[t]) - 1);
        for (int t = 0; t < 5; t++) /* qs[32..48): 80 weights */
            for (int m = 0; m < 16; m++)
                y[160 + 16 * t + m] = (int8_t)(TQ1_TRIT(b[32 + m], pow3[t]) - 1);
        for (int t = 0; t < 4; t++) /* qh[4]: 16 weights */
            for (int j = 0; j < 4; j++)
                y[240 + 4 * t + j] = (int8_t)(TQ1_TRIT(b[48 + j], pow3[t]) - 1);
        if (block_d)
            block_d[i / BN_QK_K] = bn_f16_to_f32(bn_rd_u16(b + 52));
    }
}

void bn_tq1_row_codes(const void *row, int8_t *codes, int64_t n, float *block_d) { tq1_row_codes_impl(row, codes, n, block_d); }

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

/* Base-3 value q (< 243) of 5 trits (most significant first; 4-trit bytes are
 * shifted up one trit) -> the byte ceil(q * 256 / 243), from a table. */
static uint8_t tq1_byte_of[243];
static void tq1_table_init(void)
{
    for (unsigned q = 0; q < 243; q++)
        tq1_byte_of[q] = (uint8_t)((q * 256 + 242) / 243);
}

#if defined(__GNUC__) && !defined(__clang__)
#define BN_VECTORIZE __attribute__((optimize("vect-cost-model=unlimited")))
#else
#define BN_VECTORIZE
#endif

BN_CLONES BN_VECTORIZE static void tq1_block_values(const int8_t *restrict c, uint8_t *restrict q)
{
    for (int m = 0; m < 32; m++)
        q[m] = (uint8_t)(81 * (c[m] + 1) + 27 * (c[m + 32] + 1) + 9 * (c[m + 64] + 1) +
                         3 * (c[m + 96] + 1) + (c[m + 128] + 1));
    for (int m = 0; m < 16; m++)
        q[32 + m] = (uint8_t)(81 * (c[160 + m] + 1) + 27 * (c[176 + m] + 1) + 9 * (c[192 + m] + 1) +
                              3 * (c[208 + m] + 1) + (c[224 + m] + 1));
    for (int j = 0; j < 4; j++)
        q[48 + j] = (uint8_t)(3 * (27 * (c[240 + j] + 1) + 9 * (c[244 + j] + 1) + 3 * (c[248 + j] + 1) +
                                   (c[252 + j] + 1)));
}

static bool tq1_pack_block(const int8_t *c, uint8_t *b)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, tq1_table_init);
    uint8_t q[52];
    tq1_block_values(c, q);
    for (int j = 0; j < 52; j++)
        b[j] = tq1_byte_of[q[j]];
    int nz = 0;
    for (int j = 0; j < BN_QK_K; j++)
        nz |= c[j];
    return nz != 0;
}

size_t bn_tq1_quantize(const float *src, void *dst, int64_t nrows, int64_t ncols)
{
    int64_t n = nrows * ncols;
    int8_t codes[BN_QUANT_CHUNK];
    struct tern_scale s = ternary_scale(src, n);
    uint16_t d = bn_f32_to_f16(s.scale);
    uint8_t *b = dst;
    for (int64_t i = 0; i < n; i += BN_QUANT_CHUNK) {
        int64_t k = n - i < BN_QUANT_CHUNK ? n - i : BN_QUANT_CHUNK;
        ternary_codes(src + i, k, s, codes);
        for (int64_t j = 0; j < k; j += BN_QK_K, b += BN_TQ1_BLOCK_BYTES)
            bn_wr_u16(b + 52, tq1_pack_block(codes + j, b) ? d : 0);
    }
    return (size_t)(n / BN_QK_K) * BN_TQ1_BLOCK_BYTES;
}

/* ---- codes access (load-time conversion between ternary layouts) ---- */

static inline int64_t n_scale_blocks(int64_t cols) { return (cols + BN_QK_K - 1) / BN_QK_K; }

void bn_i2s_codes_get(const void *data, int64_t rows, int64_t cols, int64_t r, int8_t *codes,
                      float *bscale)
{
    size_t rb = (size_t)(cols / 4);
    bn_i2s_row_codes((const uint8_t *)data + (size_t)r * rb, codes, cols);
    if (bscale) {
        float s;
        memcpy(&s, (const uint8_t *)data + (size_t)rows * rb, sizeof s);
        for (int64_t b = 0; b < n_scale_blocks(cols); b++)
            bscale[b] = s;
    }
}

void bn_i2s_codes_put(void *data, int64_t rows, int64_t cols, int64_t r0, int64_t n,
                      const int8_t *codes, const float *bscale)
{
    size_t rb = (size_t)(cols / 4);
    for (int64_t i = 0; i < n; i++)
        i2s_pack(codes + i * cols, cols, (uint8_t *)data + (size_t)(r0 + i) * rb);
    uint8_t *tail = (uint8_t *)data + (size_t)rows * rb;
    memset(tail, 0, BN_I2S_TAIL_BYTES);
    memcpy(tail, &bscale[0], sizeof(float));
}

void bn_tq2_codes_get(const void *data, int64_t rows, int64_t cols, int64_t r, int8_t *codes,
                      float *bscale)
{
    (void)rows;
    size_t rb = (size_t)(cols / BN_QK_K) * BN_TQ2_BLOCK_BYTES;
    bn_tq2_row_codes((const uint8_t *)data + (size_t)r * rb, codes, cols, bscale);
}

void bn_tq2_codes_put(void *data, int64_t rows, int64_t cols, int64_t r0, int64_t n,
                      const int8_t *codes, const float *bscale)
{
    (void)rows;
    int64_t nb = cols / BN_QK_K;
    for (int64_t i = 0; i < n; i++) {
        uint8_t *b = (uint8_t *)data + (size_t)(r0 + i) * (size_t)nb * BN_TQ2_BLOCK_BYTES;
        for (int64_t blk = 0; blk < nb; blk++, b += BN_TQ2_BLOCK_BYTES) {
            tq2_pack_block(codes + i * cols + blk * BN_QK_K, b);
            bn_wr_u16(b + 64, bn_f32_to_f16(bscale[i * nb + blk]));
        }
    }
}

void bn_tq1_codes_get(const void *data, int64_t rows, int64_t cols, int64_t r, int8_t *codes,
                      float *bscale)
{
    (void)rows;
    size_t rb = (size_t)(cols / BN_QK_K) * BN_TQ1_BLOCK_BYTES;
    bn_tq1_row_codes((const uint8_t *)data + (size_t)r * rb, codes, cols, bscale);
}

void bn_tq1_codes_put(void *data, int64_t rows, int64_t cols, int64_t r0, int64_t n,
                      const int8_t *codes, const float *bscale)
{
    (void)rows;
    int64_t nb = cols / BN_QK_K;
    for (int64_t i = 0; i < n; i++) {
        uint8_t *b = (uint8_t *)data + (size_t)(r0 + i) * (size_t)nb * BN_TQ1_BLOCK_BYTES;
        for (int64_t blk = 0; blk < nb; blk++, b += BN_TQ1_BLOCK_BYTES) {
            tq1_pack_block(codes + i * cols + blk * BN_QK_K, b);
            bn_wr_u16(b + 52, bn_f32_to_f16(bscale[i * nb + blk]));
        }
    }
}

/* Any ternary layout through its codes_put, 16 rows at a time (its panel). */
size_t bn_ternary_quantize_via_codes(enum bn_type type, const float *src, void *dst,
                                     int64_t nrows, int64_t ncols)
{
    const struct bn_type_traits *tr = bn_type_traits(type);
    uint64_t bytes;
    if (!tr || !tr->codes_put || !bn_tensor_bytes(type, nrows, ncols, &bytes))
        return 0;
    int64_t nb = n_scale_blocks(ncols);
    int8_t *codes = malloc((size_t)(BN_R16_ROWS * ncols));
    float *bs = malloc((size_t)(BN_R16_ROWS * nb) * sizeof(float));
    if (!codes || !bs) {
        free(codes);
        free(bs);
        return 0;
    }
    struct tern_scale s = ternary_scale(src, nrows * ncols);
    for (int64_t i = 0; i < BN_R16_ROWS * nb; i++)
        bs[i] = s.scale;
    for (int64_t r = 0; r < nrows; r += BN_R16_ROWS) {
        int64_t cnt = nrows - r < BN_R16_ROWS ? nrows - r : BN_R16_ROWS;
        ternary_codes(src + r * ncols, cnt * ncols, s, codes);
        tr->codes_put(dst, nrows, ncols, r, cnt, codes, bs);
    }
    free(codes);
    free(bs);
    return (size_t)bytes;
}
