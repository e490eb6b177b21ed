/* simd/traits.c — the format traits table: one row per tensor format.
 * Adding a format is adding a row here (and its row_to_float / quantize). */
#include "internal.h"

#define ROW(id, nm, gg, be, bb, tail, tern, pts, r2f, qz, ...)                                 \
    [id] = {.name = nm, .gguf_id = gg, .block_elems = be, .block_bytes = bb, .tail_bytes = tail, \
            .ternary = tern, .per_tensor_scale = pts, .row_to_float = r2f, .quantize = qz,       \
            __VA_ARGS__}

/* Kernels of a ternary format, by path. */
#define TERNARY_KERNELS(scalar) .gemm_i8 = {[BN_PATH_SCALAR] = scalar}, .row_align = 1

static const struct bn_type_traits traits[BN_TYPE_COUNT] = {
    ROW(BN_TYPE_F32, "F32", 0, 1, 4, 0, false, false, bn_f32_row_to_float, bn_f32_quantize),
    ROW(BN_TYPE_F16, "F16", 1, 1, 2, 0, false, false, bn_f16_row_to_float, bn_f16_quantize),
    ROW(BN_TYPE_BF16, "BF16", 30, 1, 2, 0, false, false, bn_bf16_row_to_float, bn_bf16_quantize),
    ROW(BN_TYPE_Q8_0, "Q8_0", 8, BN_QK8_0, BN_Q8_0_BLOCK_BYTES, 0, false, false,
        bn_q8_0_row_to_float, bn_q8_0_quantize),
    ROW(BN_TYPE_Q6_K, "Q6_K", 14, BN_QK_K, BN_Q6_K_BLOCK_BYTES, 0, false, false,
        bn_q6_k_row_to_float, bn_q6_k_quantize),
    ROW(BN_TYPE_TQ1_0, "TQ1_0", 34, BN_QK_K, BN_TQ1_BLOCK_BYTES, 0, true, false,
        bn_tq1_row_to_float, bn_tq1_quantize, TERNARY_KERNELS(bn_gemm_i8_ternary_scalar)),
    ROW(BN_TYPE_TQ2_0, "TQ2_0", 35, BN_QK_K, BN_TQ2_BLOCK_BYTES, 0, true, false,
        bn_tq2_row_to_float, bn_tq2_quantize, TERNARY_KERNELS(bn_gemm_i8_ternary_scalar)),
    ROW(BN_TYPE_I2_S, "I2_S", 36, BN_QK_I2S, BN_I2S_BLOCK_BYTES, BN_I2S_TAIL_BYTES, true, true,
        bn_i2s_row_to_float, bn_i2s_quantize, TERNARY_KERNELS(bn_gemm_i8_ternary_scalar)),
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
