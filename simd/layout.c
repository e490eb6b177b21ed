/* simd/layout.c — which in-memory layout the kernels of a path want for a tensor,
 * and the conversion into it (done once at load time).
 *
 * Choice (bn_matrix_layout), from measurements on AMD Zen 4 (see bench/bench-gemv):
 *   ternary, AVX2 / AVX-512 paths: I2_R16 (the vpdpbusd / pmaddubsw panel layout) for
 *     per-tensor-scale sources (I2_S, TL1, TL2) and TQ_R16 for TQ1_0 / TQ2_0 (whose
 *     block scales may differ; bn_matrix_layout_for_data picks I2_R16 when a TQ
 *     tensor has one scale).  An explicit ternary `prefer` (TL1, TL2, I2_R16, ...)
 *     is honoured; BN_TYPE_I2_S means "the I2 kernels" and maps as above.
 *   ternary, scalar path: the stored format (the scalar reference reads it in place).
 *   F16 / BF16 / F32 with prefer Q8_0: requantized to Q8_0 (the optional 8-bit head);
 *     otherwise float and K-quant tensors are used in place. */
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

#define BN_CONVERT_FLOAT_ROWS 64 /* rows per chunk when requantizing through floats */

static bool shape_ok(enum bn_type t, int64_t rows, int64_t cols)
{
    uint64_t b;
    return bn_type_traits(t) && bn_tensor_bytes(t, rows, cols, &b);
}

static bool is_block_scaled(enum bn_type t)
{
    const struct bn_type_traits *tr = bn_type_traits(t);
    return tr && tr->ternary && !tr->per_tensor_scale;
}

enum bn_type bn_matrix_layout(enum bn_type src_type, int64_t rows, int64_t cols,
                              enum bn_path path, enum bn_type prefer, uint64_t *bytes)
{
    enum bn_type dst = src_type;
    const struct bn_type_traits *tr = bn_type_traits(src_type);
    const struct bn_type_traits *tp = prefer != BN_TYPE_COUNT ? bn_type_traits(prefer) : NULL;
    if (tr && tr->ternary) {
        if (tp && tp->ternary && prefer != BN_TYPE_I2_S && tp->codes_put) {
            dst = prefer;
        } else if (path != BN_PATH_SCALAR) {
            dst = is_block_scaled(src_type) ? BN_TYPE_TQ_R16 : BN_TYPE_I2_R16;
        } else if (prefer == BN_TYPE_I2_S && !is_block_scaled(src_type)) {
            dst = BN_TYPE_I2_S;
        }
        if (!shape_ok(dst, rows, cols))
            dst = src_type;
    } else if (tr && tr->row_to_float && prefer == BN_TYPE_Q8_0 &&
               (src_type == BN_TYPE_F16 || src_type == BN_TYPE_BF16 || src_type == BN_TYPE_F32) &&
               shape_ok(BN_TYPE_Q8_0, rows, cols)) {
        dst = BN_TYPE_Q8_0;
    }
    if (bytes && !bn_tensor_bytes(dst, rows, cols, bytes))
        *bytes = 0;
    return dst;
}

/* Block-scaled ternary tensors whose every block has the same scale can take the
 * per-tensor-scale layout: bit-identical results, fewer bytes. */
static bool one_scale(enum bn_type type, const void *data, int64_t rows, int64_t cols)
{
    const struct bn_type_traits *tr = bn_type_traits(type);
    int64_t nb = (cols + BN_QK_K - 1) / BN_QK_K;
    int8_t *codes = malloc((size_t)cols);
    float *bs = malloc((size_t)nb * sizeof(float));
    bool same = codes && bs;
    float first = 0.0f;
    for (int64_t r = 0; r < rows && same; r++) {
        tr->codes_get(data, rows, cols, r, codes, bs);
        if (r == 0)
            first = bs[0];
        for (int64_t b = 0; b < nb && same; b++)
            same = memcmp(&bs[b], &first, sizeof first) == 0;
    }
    free(codes);
    free(bs);
    return same;
}

enum bn_type bn_matrix_layout_for_data(enum bn_type src_type, const void *src, int64_t rows,
                                       int64_t cols, enum bn_path path, enum bn_type prefer,
                                       uint64_t *bytes)
{
    enum bn_type dst = bn_matrix_layout(src_type, rows, cols, path, prefer, bytes);
    if (dst == BN_TYPE_TQ_R16 && shape_ok(BN_TYPE_I2_R16, rows, cols) &&
        one_scale(src_type, src, rows, cols)) {
        dst = BN_TYPE_I2_R16;
        if (bytes && !bn_tensor_bytes(dst, rows, cols, bytes))
            *bytes = 0;
    }
    return dst;
}

void bn_matrix_view(struct bn_matrix *m, enum bn_type type, const void *data, int64_t rows,
                    int64_t cols, enum bn_path path)
{
    m->type = type;
    m->rows = rows;
    m->cols = cols;
    m->data = data;
    m->path = path;
    m->scale = bn_tensor_scale(type, data, rows, cols);
}

/* Ternary -> ternary through int8 codes, 16 rows at a time. */
static bool convert_codes(const struct bn_type_traits *ts, const void *src, int64_t rows,
                          int64_t cols, const struct bn_type_traits *td, void *dst, char *err,
                          size_t err_len)
{
    int64_t nb = (cols + BN_QK_K - 1) / BN_QK_K;
    int8_t *codes = malloc((size_t)(BN_R16_ROWS * cols));
    float *bs = malloc((size_t)(BN_R16_ROWS * nb) * sizeof(float));
    if (!codes || !bs) {
        free(codes);
        free(bs);
        if (err)
            snprintf(err, err_len, "out of memory converting %s to %s", ts->name, td->name);
        return false;
    }
    bool ok = true;
    float first = 0.0f;
    for (int64_t r0 = 0; r0 < rows && ok; r0 += BN_R16_ROWS) {
        int64_t n = rows - r0 < BN_R16_ROWS ? rows - r0 : BN_R16_ROWS;
        for (int64_t i = 0; i < n; i++)
            ts->codes_get(src, rows, cols, r0 + i, codes + i * cols, bs + i * nb);
        if (r0 == 0)
            first = bs[0];
        for (int64_t i = 0; i < n * nb && ok && td->per_tensor_scale; i++)
            ok = memcmp(&bs[i], &first, sizeof first) == 0;
        if (!ok) {
            if (err)
                snprintf(err, err_len,
                         "%s keeps one scale per tensor but this %s tensor's block scales differ "
                         "(row %lld); use TQ_R16", td->name, ts->name, (long long)r0);
            break;
        }
        td->codes_put(dst, rows, cols, r0, n, codes, bs);
    }
    free(codes);
    free(bs);
    return ok;
}

/* Float-valued -> non-ternary format, a chunk of rows at a time (row-wise formats). */
static bool convert_float_rows(const struct bn_type_traits *ts, enum bn_type src_type,
                               const void *src, int64_t rows, int64_t cols,
                               const struct bn_type_traits *td, enum bn_type dst_type, void *dst,
                               char *err, size_t err_len)
{
    float *tmp = malloc((size_t)(BN_CONVERT_FLOAT_ROWS * cols) * sizeof(float));
    if (!tmp) {
        if (err)
            snprintf(err, err_len, "out of memory converting %s to %s", ts->name, td->name);
        return false;
    }
    size_t srb = bn_row_bytes(src_type, cols), drb = bn_row_bytes(dst_type, cols);
    float scale = bn_tensor_scale(src_type, src, rows, cols);
    for (int64_t r0 = 0; r0 < rows; r0 += BN_CONVERT_FLOAT_ROWS) {
        int64_t n = rows - r0 < BN_CONVERT_FLOAT_ROWS ? rows - r0 : BN_CONVERT_FLOAT_ROWS;
        for (int64_t i = 0; i < n; i++)
            ts->row_to_float((const uint8_t *)src + (size_t)(r0 + i) * srb, tmp + i * cols, cols, scale);
        td->quantize(tmp, (uint8_t *)dst + (size_t)r0 * drb, n, cols);
    }
    free(tmp);
    return true;
}

bool bn_matrix_init(struct bn_matrix *m, enum bn_type src_type, const void *src, int64_t rows,
                    int64_t cols, enum bn_type dst_type, void *buf, enum bn_path path, char *err,
                    size_t err_len)
{
    const struct bn_type_traits *ts = bn_type_traits(src_type), *td = bn_type_traits(dst_type);
    uint64_t bytes;
    if (!ts || !td || !bn_tensor_bytes(src_type, rows, cols, &bytes) ||
        !bn_tensor_bytes(dst_type, rows, cols, &bytes)) {
        if (err)
            snprintf(err, err_len, "cannot lay out a %s tensor of %lld x %lld as %s",
                     bn_type_name(src_type), (long long)rows, (long long)cols,
                     bn_type_name(dst_type));
        return false;
    }
    if (dst_type == src_type) {
        bn_matrix_view(m, src_type, src, rows, cols, path);
        return true;
    }
    bool ok;
    if (src_type == BN_TYPE_I2_S && dst_type == BN_TYPE_I2_R16) {
        bn_i2s_to_i2r16(src, buf, rows, cols);
        ok = true;
    } else if (ts->ternary && td->ternary && ts->codes_get && td->codes_put) {
        ok = convert_codes(ts, src, rows, cols, td, buf, err, err_len);
    } else if (!ts->ternary && !td->ternary && ts->row_to_float && td->quantize && td->tail_bytes == 0) {
        ok = convert_float_rows(ts, src_type, src, rows, cols, td, dst_type, buf, err, err_len);
    } else {
        if (err)
            snprintf(err, err_len, "no conversion from %s to %s", ts->name, td->name);
        return false;
    }
    if (ok)
        bn_matrix_view(m, dst_type, buf, rows, cols, path);
    return ok;
}
