/* simd/layout.c — which in-memory layout the kernels of a path want for a tensor,
 * and the conversion into it (done once at load time). */
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

enum bn_type bn_matrix_layout(enum bn_type src_type, int64_t rows, int64_t cols,
                              enum bn_path path, enum bn_type prefer, uint64_t *bytes)
{
    enum bn_type dst = src_type;
    const struct bn_type_traits *tr = bn_type_traits(src_type);
    if (tr && tr->ternary && prefer != BN_TYPE_COUNT && bn_type_traits(prefer) &&
        bn_type_traits(prefer)->ternary) {
        uint64_t b;
        if (bn_tensor_bytes(prefer, rows, cols, &b))
            dst = prefer;
    }
    (void)path;
    if (bytes && !bn_tensor_bytes(dst, rows, cols, bytes))
        *bytes = 0;
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
    if (!ts->row_to_float || !td->quantize || (ts->ternary != td->ternary)) {
        if (err)
            snprintf(err, err_len, "no conversion from %s to %s", ts->name, td->name);
        return false;
    }
    /* Generic route through float: exact between ternary formats (their values are
     * ±scale or 0), so the ternary codes survive unchanged. */
    float *tmp = malloc((size_t)(rows * cols) * sizeof(float));
    if (!tmp) {
        if (err)
            snprintf(err, err_len, "out of memory converting %s to %s", ts->name, td->name);
        return false;
    }
    size_t row_bytes = bn_row_bytes(src_type, cols);
    float scale = bn_tensor_scale(src_type, src, rows, cols);
    for (int64_t r = 0; r < rows; r++)
        ts->row_to_float((const uint8_t *)src + (size_t)r * row_bytes, tmp + r * cols, cols, scale);
    size_t w = td->quantize(tmp, buf, rows, cols);
    free(tmp);
    if (w == 0) {
        if (err)
            snprintf(err, err_len, "converting %s to %s failed", ts->name, td->name);
        return false;
    }
    bn_matrix_view(m, dst_type, buf, rows, cols, path);
    return true;
}
