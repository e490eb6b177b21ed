/* simd/traits.c — the format traits table: one row per tensor format.
 * Adding a format is adding a row here (and its row_to_float / quantize). */
#include <stdlib.h>

#include "internal.h"

#define ROW(id, nm, gg, be, bb, tail, tern, pts, r2f, qz, ...)                                 \
    [id] = {.name = nm, .gguf_id = gg, .block_elems = be, .block_bytes = bb, .tail_bytes = tail, \
            .ternary = tern, .per_tensor_scale = pts, .row_to_float = r2f, .quantize = qz,       \
            __VA_ARGS__}

/* Kernel lists of the x86 paths: empty when the SIMD files are not compiled. */
#if BN_X86
#define ON_X86(...) __VA_ARGS__
#else
#define ON_X86(...)
#endif

/* Stored ternary formats: read in place by the scalar reference; the SIMD paths
 * repack them (bn_matrix_layout). */
#define TERNARY_FILE(get, put)                                                                 \
    .gemm_i8 = {[BN_PATH_SCALAR] = bn_gemm_i8_ternary_scalar}, .row_align = 1, .codes_get = get, \
    .codes_put = put

/* Repacked 16-row panel layouts: every path has a kernel (the scalar one reads the
 * codes back), threads split on whole panels. */
#define R16_LAYOUT(get, put, prep_bytes, prep, avx2, avx512)                                   \
    .gemm_i8 = {[BN_PATH_SCALAR] = bn_gemm_i8_codes_scalar,                                     \
                ON_X86([BN_PATH_AVX2] = bn_gemm_i8_via_act, [BN_PATH_AVX512] = bn_gemm_i8_via_act)}, \
    .gemm_f32 = {[BN_PATH_SCALAR] = bn_gemm_f32_codes_scalar}, .row_align = BN_R16_ROWS,        \
    .codes_get = get, .codes_put = put,                                                         \
    .gemm_act = {[BN_PATH_SCALAR] = bn_gemm_act_codes_scalar,                                   \
                 ON_X86([BN_PATH_AVX2] = avx2, [BN_PATH_AVX512] = avx512)},                    \
    .act_prep_bytes = prep_bytes, .act_prep = prep

/* Float-activation kernels of the head formats. */
#define FLOAT_KERNELS(avx2, avx512) .gemm_f32 = {ON_X86([BN_PATH_AVX2] = avx2, [BN_PATH_AVX512] = avx512)}
#define INT8_HEAD_KERNELS(avx2, avx512) FLOAT_KERNELS(avx2, avx512), .f32_scratch_bytes = bn_head_act_bytes

#define TL_LAYOUT(get, put, prep_bytes, prep, scalar, avx2, avx512)                              \
    .gemm_i8 = {[BN_PATH_SCALAR] = bn_gemm_i8_via_act,                                          \
                ON_X86([BN_PATH_AVX2] = bn_gemm_i8_via_act, [BN_PATH_AVX512] = bn_gemm_i8_via_act)}, \
    .gemm_f32 = {[BN_PATH_SCALAR] = bn_gemm_f32_codes_scalar}, .row_align = BN_TL_ROWS,         \
    .codes_get = get, .codes_put = put,                                                         \
    .gemm_act = {[BN_PATH_SCALAR] = scalar, ON_X86([BN_PATH_AVX2] = avx2, [BN_PATH_AVX512] = avx512)}, \
    .act_prep_bytes = prep_bytes, .act_prep = prep

static const struct bn_type_traits traits[BN_TYPE_COUNT] = {
    ROW(BN_TYPE_F32, "F32", 0, 1, 4, 0, false, false, bn_f32_row_to_float, bn_f32_quantize,
        FLOAT_KERNELS(bn_gemm_f32_avx2, bn_gemm_f32_avx512)),
    ROW(BN_TYPE_F16, "F16", 1, 1, 2, 0, false, false, bn_f16_row_to_float, bn_f16_quantize,
        FLOAT_KERNELS(bn_gemm_f16_avx2, bn_gemm_f16_avx512)),
    ROW(BN_TYPE_BF16, "BF16", 30, 1, 2, 0, false, false, bn_bf16_row_to_float, bn_bf16_quantize),
    ROW(BN_TYPE_Q8_0, "Q8_0", 8, BN_QK8_0, BN_Q8_0_BLOCK_BYTES, 0, false, false,
        bn_q8_0_row_to_float, bn_q8_0_quantize, INT8_HEAD_KERNELS(bn_gemm_q8_0_avx2, bn_gemm_q8_0_avx512)),
    ROW(BN_TYPE_Q6_K, "Q6_K", 14, BN_QK_K, BN_Q6_K_BLOCK_BYTES, 0, false, false,
        bn_q6_k_row_to_float, bn_q6_k_quantize, INT8_HEAD_KERNELS(bn_gemm_q6_k_avx2, bn_gemm_q6_k_avx512)),
    ROW(BN_TYPE_TQ1_0, "TQ1_0", 34, BN_QK_K, BN_TQ1_BLOCK_BYTES, 0, true, false,
        bn_tq1_row_to_float, bn_tq1_quantize, TERNARY_FILE(bn_tq1_codes_get, bn_tq1_codes_put)),
    ROW(BN_TYPE_TQ2_0, "TQ2_0", 35, BN_QK_K, BN_TQ2_BLOCK_BYTES, 0, true, false,
        bn_tq2_row_to_float, bn_tq2_quantize, TERNARY_FILE(bn_tq2_codes_get, bn_tq2_codes_put)),
    ROW(BN_TYPE_I2_S, "I2_S", 36, BN_QK_I2S, BN_I2S_BLOCK_BYTES, BN_I2S_TAIL_BYTES, true, true,
        bn_i2s_row_to_float, bn_i2s_quantize, TERNARY_FILE(bn_i2s_codes_get, bn_i2s_codes_put)),
    /* Size-only rows: other ggml formats, so a GGUF holding them can be listed. */
    ROW(BN_TYPE_Q4_0, "Q4_0", 2, 32, 18, 0, false, false, NULL, NULL),
    ROW(BN_TYPE_Q4_1, "Q4_1", 3, 32, 20, 0, false, false, NULL, NULL),
    ROW(BN_TYPE_Q5_0, "Q5_0", 6, 32, 22, 0, false, false, NULL, NULL),
    ROW(BN_TYPE_Q5_1, "Q5_1", 7, 32, 24, 0, false, false, NULL, NULL),
    ROW(BN_TYPE_Q8_1, "Q8_1", 9, 32, 36, 0, false, false, NULL, NULL),
    ROW(BN_TYPE_Q2_K, "Q2_K", 10, 256, 84, 0, false, false, NULL, NULL),
    ROW(BN_TYPE_Q3_K, "Q3_K", 11, 256, 110, 0, false, false, NULL, NULL),
    ROW(BN_TYPE_Q4_K, "Q4_K", 12, 256, 144, 0, false, false, NULL, NULL),
    ROW(BN_TYPE_Q5_K, "Q5_K", 13, 256, 176, 0, false, false, NULL, NULL),
    ROW(BN_TYPE_Q8_K, "Q8_K", 15, 256, 292, 0, false, false, NULL, NULL),
    /* In-memory layouts. */
    ROW(BN_TYPE_I8_ACT, "I8_ACT", -1, 1, 1, 0, false, false, NULL, NULL),
    ROW(BN_TYPE_I2_R16, "I2_R16", -1, BN_R16_GROUP, BN_R16_GROUP / 4, BN_I2S_TAIL_BYTES, true, true,
        NULL, bn_i2r16_quantize,
        R16_LAYOUT(bn_i2r16_codes_get, bn_i2r16_codes_put, bn_act_prep_r16_bytes, bn_act_prep_r16,
                   bn_gemm_i2r16_avx2, bn_gemm_i2r16_avx512)),
    ROW(BN_TYPE_TQ_R16, "TQ_R16", -1, BN_QK_K, BN_TQR16_BLOCK_BYTES, 0, true, false, NULL,
        bn_tqr16_quantize,
        R16_LAYOUT(bn_tqr16_codes_get, bn_tqr16_codes_put, bn_act_prep_tq_bytes, bn_act_prep_tq,
                   bn_gemm_tqr16_avx2, bn_gemm_tqr16_avx512)),
    /* Table lookup (simd/fmt_tl.c): scalar lookup kernels too, 16-row panels. */
    ROW(BN_TYPE_TL1, "TL1", -1, 16, 4, BN_I2S_TAIL_BYTES, true, true, NULL, bn_tl1_quantize,
        TL_LAYOUT(bn_tl1_codes_get, bn_tl1_codes_put, bn_act_prep_tl1_bytes, bn_act_prep_tl1,
                  bn_gemm_tl1_scalar, bn_gemm_tl1_avx2, bn_gemm_tl1_avx512)),
    ROW(BN_TYPE_TL2, "TL2", -1, 16, 4, BN_I2S_TAIL_BYTES, true, true, NULL, bn_tl2_quantize,
        TL_LAYOUT(bn_tl2_codes_get, bn_tl2_codes_put, bn_act_prep_tl2_bytes, bn_act_prep_tl2,
                  bn_gemm_tl2_scalar, bn_gemm_tl2_avx2, bn_gemm_tl2_avx512),
        .row_bytes_fn = bn_tl2_row_bytes),
};

const struct bn_type_traits *bn_type_traits(enum bn_type type)
{
    if ((unsigned)type >= BN_TYPE_COUNT || traits[type].name == NULL)
        return NULL;
    return &traits[type];
}

const struct bn_type_traits *bn_type_from_gguf(uint32_t gguf_id)
{
    if (gguf_id >= 64) /* ids >= 64 are bitnetd's own layouts, never in a file */
        return NULL;
    const struct bn_type_traits *t = bn_type_traits((enum bn_type)gguf_id);
    return t && t->gguf_id == (int)gguf_id ? t : NULL;
}

const char *bn_type_name(enum bn_type type)
{
    const struct bn_type_traits *t = bn_type_traits(type);
    return t ? t->name : "unknown";
}

size_t bn_row_bytes(enum bn_type type, int64_t cols)
{
    const struct bn_type_traits *t = bn_type_traits(type);
    if (!t || cols <= 0 || cols % t->block_elems != 0)
        return 0;
    if (t->row_bytes_fn)
        return t->row_bytes_fn(cols);
    uint64_t bytes;
    if (__builtin_mul_overflow((uint64_t)(cols / t->block_elems), (uint64_t)t->block_bytes, &bytes) ||
        bytes > SIZE_MAX)
        return 0;
    return (size_t)bytes;
}

bool bn_tensor_bytes(enum bn_type type, int64_t nrows, int64_t cols, uint64_t *out)
{
    const struct bn_type_traits *t = bn_type_traits(type);
    if (!t || nrows <= 0)
        return false;
    size_t row = bn_row_bytes(type, cols);
    uint64_t bytes;
    if (row == 0 || __builtin_mul_overflow((uint64_t)nrows, (uint64_t)row, &bytes) ||
        __builtin_add_overflow(bytes, (uint64_t)t->tail_bytes, &bytes))
        return false;
    *out = bytes;
    return true;
}

float bn_tensor_scale(enum bn_type type, const void *data, int64_t nrows, int64_t cols)
{
    const struct bn_type_traits *t = bn_type_traits(type);
    if (!t || !t->per_tensor_scale)
        return 1.0f;
    size_t row = bn_row_bytes(type, cols);
    float s;
    memcpy(&s, (const uint8_t *)data + (size_t)nrows * row, sizeof s);
    return s;
}

bool bn_tensor_to_float(enum bn_type type, const void *data, int64_t nrows, int64_t cols, float *dst)
{
    const struct bn_type_traits *t = bn_type_traits(type);
    uint64_t bytes;
    if (!t || !bn_tensor_bytes(type, nrows, cols, &bytes))
        return false;
    float scale = bn_tensor_scale(type, data, nrows, cols);
    size_t rb = bn_row_bytes(type, cols);
    if (t->row_to_float) {
        for (int64_t r = 0; r < nrows; r++)
            t->row_to_float((const uint8_t *)data + (size_t)r * rb, dst + r * cols, cols, scale);
        return true;
    }
    if (!t->codes_get)
        return false;
    int64_t nb = (cols + BN_QK_K - 1) / BN_QK_K;
    int8_t *codes = malloc((size_t)cols);
    float *bs = malloc((size_t)nb * sizeof(float));
    bool ok = codes && bs;
    for (int64_t r = 0; r < nrows && ok; r++) {
        t->codes_get(data, nrows, cols, r, codes, bs);
        for (int64_t c = 0; c < cols; c++)
            dst[r * cols + c] = (float)codes[c] * bs[c / BN_QK_K];
    }
    free(codes);
    free(bs);
    return ok;
}
