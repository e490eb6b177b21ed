/* engine/pack.c — the packing plan: which in-memory layout each tensor of a model
 * takes for one kernel path, and producing those bytes from the file's bytes. */
#include <stdlib.h>
#include <string.h>

#include "bitnet.h"

void bn_pack_plan_free(struct bn_pack_plan *plan)
{
    if (!plan)
        return;
    free(plan->entries);
    memset(plan, 0, sizeof *plan);
}

int bn_pack_plan_make(struct bn_pack_plan *plan, const struct bn_gguf *g, enum bn_path path,
                      enum bn_type prefer_ternary, struct bn_err *err)
{
    memset(plan, 0, sizeof *plan);
    int64_t n = bn_gguf_n_tensors(g);
    plan->entries = calloc(n > 0 ? (size_t)n : 1, sizeof *plan->entries);
    if (!plan->entries)
        return bn_errf(err, "%s: out of memory planning %lld tensors", bn_gguf_label(g),
                       (long long)n);
    plan->n = (size_t)n;
    plan->path = path;
    unsigned prefer_code = prefer_ternary == BN_TYPE_COUNT ? 0xffu : (unsigned)prefer_ternary & 0xffu;
    plan->layout_id = ((uint32_t)BN_SIMD_LAYOUT_VERSION << 16) | ((uint32_t)path << 8) | prefer_code;
    uint64_t data_off = bn_gguf_data_offset(g);
    for (int64_t i = 0; i < n; i++) {
        const struct bn_gguf_tensor *t = bn_gguf_tensor(g, i);
        struct bn_pack_entry *e = &plan->entries[i];
        size_t len = t->name.len < BN_GGUF_MAX_NAME - 1 ? (size_t)t->name.len : BN_GGUF_MAX_NAME - 1;
        memcpy(e->name, t->name.ptr, len);
        e->name[len] = '\0';
        e->tensor_index = i;
        e->src_type = t->type;
        e->cols = t->ne[0];
        e->rows = t->ne[1] * t->ne[2] * t->ne[3];
        e->src_offset = data_off + t->offset;
        e->src_bytes = t->bytes;
        e->dst_type = t->type;
        e->dst_bytes = t->bytes;
        const struct bn_type_traits *tr = bn_type_traits(t->type);
        if (tr && tr->ternary && t->n_dims == 2) {
            uint64_t bytes = 0;
            enum bn_type dst = bn_matrix_layout(t->type, e->rows, e->cols, path, prefer_ternary, &bytes);
            if (bytes == 0) {
                bn_pack_plan_free(plan);
                return bn_errf(err, "%s: tensor '%s' (%s, %lld x %lld) has no layout for the %s kernels",
                               bn_gguf_label(g), e->name, tr->name, (long long)e->rows,
                               (long long)e->cols, bn_path_name(path));
            }
            e->dst_type = dst;
            e->dst_bytes = bytes;
        }
    }
    return 0;
}

int bn_pack_tensor(const struct bn_pack_plan *plan, const struct bn_pack_entry *e, const void *src,
                   void *dst, struct bn_err *err)
{
    if (e->dst_type == e->src_type) {
        memcpy(dst, src, e->src_bytes);
        return 0;
    }
    struct bn_matrix m;
    char msg[256];
    if (!bn_matrix_init(&m, e->src_type, src, e->rows, e->cols, e->dst_type, dst, plan->path, msg,
                        sizeof msg))
        return bn_errf(err, "tensor '%s': %s", e->name, msg);
    return 0;
}
