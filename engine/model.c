/* engine/model.c — loading a BitNet b1.58 model: hyperparameters from the GGUF
 * metadata, every tensor checked against them, weights bound in place (or repacked
 * once where the kernel path wants another layout). */
#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"

#define ALIGN_PRIVATE 64 /* bytes: cache line, and enough for any SIMD load */
#define KEY_MAX 128      /* "<arch>.attention.layer_norm_rms_epsilon" and the like */
#define DEFAULT_ROPE_THETA 10000.0f /* llama.cpp's default when rope.freq_base is absent */

static const char *const k_archs[] = {"bitnet-b1.58", "bitnet-25"};

void bn_model_params_default(struct bn_model_params *p)
{
    memset(p, 0, sizeof *p);
    p->n_threads = 0;
    p->path = BN_PATH_COUNT;
    p->ternary_layout = BN_TYPE_COUNT;
    p->no_act_quant = false;
    p->reference = false;
    p->head_q8 = false;
}

/* ---- loader state ---- */

enum tensor_kind {
    KIND_NORM,    /* F32 vector */
    KIND_TERNARY, /* I2_S / TQ2_0 / TQ1_0 matrix */
    KIND_FLOAT,   /* F32 / F16 / Q8_0 / Q6_K matrix (embedding, head) */
};

struct loader {
    const struct bn_gguf *g;
    const char *label;
    const struct bn_pack_plan *plan; /* the source's plan, or own_plan */
    struct bn_pack_plan own_plan;
    const void *const *src_data;     /* source's data pointers (plan given), else NULL */
    bool *used;                      /* [n_tensors] */
    void **packed;                   /* [n_tensors] repacked copy, when own plan repacks */
    struct bn_model *m;
    struct bn_err *err;
    bool check_only;                 /* first pass: names, types and shapes only */
};

static int key_name(char *buf, const char *arch, const char *suffix)
{
    return snprintf(buf, KEY_MAX, "%s.%s", arch, suffix) < KEY_MAX ? 0 : -1;
}

/* Integer hyperparameter `<arch>.<suffix>` in [lo, hi]; absent: *out = def when
 * !required. */
static int hp_int(struct loader *ld, const char *suffix, bool required, int64_t def, int64_t lo,
                  int64_t hi, int64_t *out)
{
    char key[KEY_MAX];
    key_name(key, ld->m->info.arch, suffix);
    if (bn_gguf_find_key(ld->g, key) < 0) {
        if (required)
            return bn_errf(ld->err, "%s: key '%s' is missing", ld->label, key);
        *out = def;
        return 0;
    }
    int64_t v;
    if (bn_gguf_get_i64(ld->g, key, &v, ld->err))
        return -1;
    if (v < lo || v > hi)
        return bn_errf(ld->err, "%s: key '%s' is %" PRId64 "; it must be %" PRId64 "..%" PRId64,
                       ld->label, key, v, lo, hi);
    *out = v;
    return 0;
}

/* Float hyperparameter, finite and > 0. */
static int hp_float(struct loader *ld, const char *suffix, bool required, float def, float *out)
{
    char key[KEY_MAX];
    key_name(key, ld->m->info.arch, suffix);
    if (bn_gguf_find_key(ld->g, key) < 0) {
        if (required)
            return bn_errf(ld->err, "%s: key '%s' is missing", ld->label, key);
        *out = def;
        return 0;
    }
    float v;
    if (bn_gguf_get_f32(ld->g, key, &v, ld->err))
        return -1;
    if (!isfinite(v) || v <= 0.0f)
        return bn_errf(ld->err, "%s: key '%s' is %g; it must be a positive finite number",
                       ld->label, key, (double)v);
    *out = v;
    return 0;
}

static int read_arch(struct loader *ld)
{
    struct bn_str arch;
    if (bn_gguf_find_key(ld->g, "general.architecture") < 0)
        return bn_errf(ld->err, "%s: key 'general.architecture' is missing", ld->label);
    if (bn_gguf_get_str(ld->g, "general.architecture", &arch, ld->err))
        return -1;
    for (size_t i = 0; i < sizeof k_archs / sizeof k_archs[0]; i++) {
        if (arch.len == strlen(k_archs[i]) && memcmp(arch.ptr, k_archs[i], arch.len) == 0) {
            snprintf(ld->m->info.arch, sizeof ld->m->info.arch, "%s", k_archs[i]);
            return 0;
        }
    }
    return bn_errf(ld->err,
                   "%s: architecture '%.*s' is not supported (general.architecture must be "
                   "bitnet-b1.58 or bitnet-25)",
                   ld->label, (int)(arch.len > 64 ? 64 : arch.len), arch.ptr);
}

static int read_hparams(struct loader *ld)
{
    struct bn_model_info *in = &ld->m->info;
    if (read_arch(ld))
        return -1;
    struct bn_str name;
    if (bn_gguf_find_key(ld->g, "general.name") >= 0 &&
        bn_gguf_get_str(ld->g, "general.name", &name, NULL) == 0)
        snprintf(in->name, sizeof in->name, "%.*s",
                 (int)(name.len < BN_MODEL_NAME_MAX ? name.len : BN_MODEL_NAME_MAX - 1), name.ptr);

    if (hp_int(ld, "embedding_length", true, 0, 1, BN_MODEL_MAX_EMBD, &in->n_embd) ||
        hp_int(ld, "block_count", true, 0, 1, BN_MODEL_MAX_LAYERS, &in->n_layer) ||
        hp_int(ld, "feed_forward_length", true, 0, 1, BN_MODEL_MAX_FF, &in->n_ff) ||
        hp_int(ld, "context_length", true, 0, 1, BN_MODEL_MAX_CTX, &in->n_ctx_train) ||
        hp_int(ld, "attention.head_count", true, 0, 1, BN_MODEL_MAX_HEADS, &in->n_head) ||
        hp_int(ld, "attention.head_count_kv", false, in->n_head, 1, BN_MODEL_MAX_HEADS,
               &in->n_head_kv) ||
        hp_float(ld, "attention.layer_norm_rms_epsilon", true, 0.0f, &in->rms_eps) ||
        hp_float(ld, "rope.freq_base", false, DEFAULT_ROPE_THETA, &in->rope_theta))
        return -1;

    char kh[KEY_MAX], kk[KEY_MAX];
    key_name(kh, in->arch, "attention.head_count");
    key_name(kk, in->arch, "attention.head_count_kv");
    if (in->n_embd % in->n_head != 0)
        return bn_errf(ld->err, "%s: embedding_length %" PRId64 " is not a multiple of '%s' %" PRId64,
                       ld->label, in->n_embd, kh, in->n_head);
    if (in->n_head % in->n_head_kv != 0)
        return bn_errf(ld->err, "%s: '%s' %" PRId64 " is not a multiple of '%s' %" PRId64,
                       ld->label, kh, in->n_head, kk, in->n_head_kv);
    in->head_dim = in->n_embd / in->n_head;
    int64_t rope_dim;
    if (hp_int(ld, "rope.dimension_count", false, in->head_dim, 1, BN_MODEL_MAX_EMBD, &rope_dim))
        return -1;
    key_name(kk, in->arch, "rope.dimension_count");
    if (rope_dim != in->head_dim)
        return bn_errf(ld->err,
                       "%s: '%s' is %" PRId64 " but the head dimension (embedding_length / "
                       "head_count) is %" PRId64 "; this graph rotates whole heads",
                       ld->label, kk, rope_dim, in->head_dim);
    if (in->head_dim % 2 != 0)
        return bn_errf(ld->err, "%s: head dimension %" PRId64 " is odd; NEOX RoPE needs pairs",
                       ld->label, in->head_dim);

    /* Vocabulary size: <arch>.vocab_size, else the token list's length; both must
     * agree when both are present (token_embd's rows are checked against it). */
    int64_t n_tokens = -1;
    if (bn_gguf_find_key(ld->g, "tokenizer.ggml.tokens") >= 0) {
        struct bn_gguf_arr arr;
        if (bn_gguf_get_arr(ld->g, "tokenizer.ggml.tokens", &arr, ld->err))
            return -1;
        n_tokens = (int64_t)arr.n;
    }
    int64_t n_vocab;
    if (hp_int(ld, "vocab_size", false, -1, 1, BN_MODEL_MAX_VOCAB, &n_vocab))
        return -1;
    key_name(kk, in->arch, "vocab_size");
    if (n_vocab < 0) {
        if (n_tokens < 0)
            return bn_errf(ld->err, "%s: neither '%s' nor 'tokenizer.ggml.tokens' is present, so "
                           "the vocabulary size is unknown", ld->label, kk);
        if (n_tokens < 1 || n_tokens > BN_MODEL_MAX_VOCAB)
            return bn_errf(ld->err, "%s: 'tokenizer.ggml.tokens' has %" PRId64
                           " entries; it must have 1..%d", ld->label, n_tokens, BN_MODEL_MAX_VOCAB);
        n_vocab = n_tokens;
    } else if (n_tokens >= 0 && n_tokens != n_vocab) {
        return bn_errf(ld->err, "%s: '%s' is %" PRId64 " but 'tokenizer.ggml.tokens' has %" PRId64
                       " entries", ld->label, kk, n_vocab, n_tokens);
    }
    in->n_vocab = (int32_t)n_vocab;
    return 0;
}

/* ---- tensors ---- */

static void fmt_shape(char *buf, size_t len, const int64_t *ne, uint32_t n_dims)
{
    size_t o = (size_t)snprintf(buf, len, "[");
    for (uint32_t d = 0; d < n_dims && o < len; d++)
        o += (size_t)snprintf(buf + o, len - o, "%s%" PRId64, d ? ", " : "", ne[d]);
    if (o < len)
        snprintf(buf + o, len - o, "]");
}

static bool kind_accepts(enum tensor_kind kind, enum bn_type t)
{
    switch (kind) {
    case KIND_NORM:
        return t == BN_TYPE_F32;
    case KIND_TERNARY:
        return t == BN_TYPE_I2_S || t == BN_TYPE_TQ2_0 || t == BN_TYPE_TQ1_0;
    case KIND_FLOAT:
        return t == BN_TYPE_F32 || t == BN_TYPE_F16 || t == BN_TYPE_Q8_0 || t == BN_TYPE_Q6_K;
    }
    return false;
}

static const char *kind_expect(enum tensor_kind kind)
{
    switch (kind) {
    case KIND_NORM:
        return "F32";
    case KIND_TERNARY:
        return "a ternary type (I2_S, TQ2_0 or TQ1_0)";
    case KIND_FLOAT:
        return "F32, F16, Q8_0 or Q6_K";
    }
    return "?";
}

/* Find tensor `name`, check type and shape (ne0 = cols, ne1 = rows; rows == 0 for a
 * vector), and return its index. */
static int64_t check_tensor(struct loader *ld, const char *name, enum tensor_kind kind, int64_t cols,
                            int64_t rows)
{
    const struct bn_gguf_tensor *t = bn_gguf_find_tensor(ld->g, name);
    if (!t) {
        bn_errf(ld->err, "%s: tensor '%s' is missing", ld->label, name);
        return -1;
    }
    if (!kind_accepts(kind, t->type)) {
        bn_errf(ld->err, "%s: tensor '%s' has type %s, expected %s", ld->label, name,
                bn_type_name(t->type), kind_expect(kind));
        return -1;
    }
    int64_t want[BN_GGUF_MAX_DIMS] = {cols, rows > 0 ? rows : 1, 1, 1};
    uint32_t want_dims = rows > 0 ? 2 : 1;
    bool ok = true;
    for (int d = 0; d < BN_GGUF_MAX_DIMS; d++)
        ok = ok && t->ne[d] == want[d]; /* trailing dims of 1 are accepted either way */
    if (!ok) {
        char got[96], exp[96];
        fmt_shape(got, sizeof got, t->ne, t->n_dims);
        fmt_shape(exp, sizeof exp, want, want_dims);
        bn_errf(ld->err, "%s: tensor '%s' has shape %s, expected %s", ld->label, name, got, exp);
        return -1;
    }
    return t - bn_gguf_tensor(ld->g, 0); /* the reader keeps its tensors in one array */
}

/* The bytes the kernels read for tensor i, and their layout. */
static int tensor_bytes(struct loader *ld, int64_t i, const void **data, enum bn_type *layout)
{
    const struct bn_pack_entry *e = &ld->plan->entries[i];
    *layout = e->dst_type;
    if (ld->src_data) {
        *data = ld->src_data[i];
    } else if (e->dst_type != e->src_type) {
        *data = ld->packed[i];
    } else {
        *data = bn_gguf_tensor(ld->g, i)->data;
    }
    if (!*data)
        return bn_errf(ld->err, "%s: tensor '%s' has no data (metadata-only source without a "
                       "pack plan)", ld->label, e->name);
    if ((uintptr_t)*data % sizeof(float) != 0)
        return bn_errf(ld->err, "%s: tensor '%s' data is not 4-byte aligned (general.alignment "
                       "%" PRIu64 ")", ld->label, e->name, bn_gguf_alignment(ld->g));
    return 0;
}

static int bind_norm(struct loader *ld, const char *name, int64_t n, const float **out)
{
    int64_t i = check_tensor(ld, name, KIND_NORM, n, 0);
    const void *data;
    enum bn_type layout;
    if (i >= 0 && ld->check_only)
        return 0;
    if (i < 0 || tensor_bytes(ld, i, &data, &layout))
        return -1;
    ld->used[i] = true;
    *out = data;
    return 0;
}

/* A matrix [rows][cols]: checked, bound, and its kernels checked to exist for the
 * way the model will run. */
static int bind_matrix(struct loader *ld, const char *name, enum tensor_kind kind, int64_t cols,
                       int64_t rows, struct bn_matrix *out)
{
    int64_t i = check_tensor(ld, name, kind, cols, rows);
    const void *data;
    enum bn_type layout;
    if (i >= 0 && ld->check_only)
        return 0;
    if (i < 0 || tensor_bytes(ld, i, &data, &layout))
        return -1;
    const struct bn_model_params *p = &ld->m->params;
    const struct bn_type_traits *tr = bn_type_traits(layout);
    if (!tr)
        return bn_errf(ld->err, "%s: tensor '%s' has an unknown in-memory layout %d", ld->label,
                       name, (int)layout);
    bool has_i8 = false, has_f32 = tr->row_to_float != NULL;
    for (int q = 0; q <= (int)p->path; q++) {
        has_i8 = has_i8 || tr->gemm_i8[q] || tr->gemm_act[q];
        has_f32 = has_f32 || tr->gemm_f32[q];
    }
    if (p->reference && !tr->row_to_float)
        return bn_errf(ld->err, "%s: tensor '%s' in layout %s cannot be read by the reference "
                       "pass (no row decoder); load it with the file's layout", ld->label, name,
                       tr->name);
    bool need_i8 = kind == KIND_TERNARY && !p->no_act_quant && !p->reference;
    if (need_i8 ? !has_i8 : (!p->reference && !has_f32))
        return bn_errf(ld->err, "%s: tensor '%s' (%s) has no %s kernel on the %s path", ld->label,
                       name, tr->name, need_i8 ? "int8-activation" : "float-activation",
                       bn_path_name(p->path));
    bn_matrix_view(out, layout, data, rows, cols, p->path);
    if (tr->per_tensor_scale && !isfinite(out->scale))
        return bn_errf(ld->err, "%s: tensor '%s' has a non-finite scale %g", ld->label, name,
                       (double)out->scale);
    ld->used[i] = true;
    return 0;
}

static int bind_layer(struct loader *ld, int64_t l, struct bn_layer *L)
{
    const struct bn_model_info *in = &ld->m->info;
    int64_t E = in->n_embd, QD = in->n_head * in->head_dim, KVD = in->n_head_kv * in->head_dim;
    int64_t F = in->n_ff;
    char nm[BN_GGUF_MAX_NAME];
#define NAME(suffix) (snprintf(nm, sizeof nm, "blk.%" PRId64 "." suffix, l), nm)
    if (bind_norm(ld, NAME("attn_norm.weight"), E, &L->attn_norm) ||
        bind_matrix(ld, NAME("attn_q.weight"), KIND_TERNARY, E, QD, &L->wq) ||
        bind_matrix(ld, NAME("attn_k.weight"), KIND_TERNARY, E, KVD, &L->wk) ||
        bind_matrix(ld, NAME("attn_v.weight"), KIND_TERNARY, E, KVD, &L->wv) ||
        bind_norm(ld, NAME("attn_sub_norm.weight"), QD, &L->attn_sub_norm) ||
        bind_matrix(ld, NAME("attn_output.weight"), KIND_TERNARY, QD, E, &L->wo) ||
        bind_norm(ld, NAME("ffn_norm.weight"), E, &L->ffn_norm) ||
        bind_matrix(ld, NAME("ffn_gate.weight"), KIND_TERNARY, E, F, &L->w_gate) ||
        bind_matrix(ld, NAME("ffn_up.weight"), KIND_TERNARY, E, F, &L->w_up) ||
        bind_norm(ld, NAME("ffn_sub_norm.weight"), F, &L->ffn_sub_norm) ||
        bind_matrix(ld, NAME("ffn_down.weight"), KIND_TERNARY, F, E, &L->w_down))
        return -1;
#undef NAME
    return 0;
}

/* Source plan given: it must describe this metadata's tensors. */
static int check_source_plan(struct loader *ld, const struct bn_model_source *src)
{
    const struct bn_pack_plan *plan = src->plan;
    if ((int64_t)plan->n != bn_gguf_n_tensors(ld->g))
        return bn_errf(ld->err, "%s: the pack plan has %zu entries but the metadata lists %" PRId64
                       " tensors", ld->label, plan->n, bn_gguf_n_tensors(ld->g));
    if (!src->data)
        return bn_errf(ld->err, "%s: a pack plan was given without data pointers", ld->label);
    for (size_t i = 0; i < plan->n; i++) {
        const struct bn_pack_entry *e = &plan->entries[i];
        const struct bn_gguf_tensor *t = bn_gguf_tensor(ld->g, (int64_t)i);
        uint64_t bytes;
        if (e->src_type != t->type || e->cols != t->ne[0] ||
            e->rows != t->ne[1] * t->ne[2] * t->ne[3] || t->name.len != strlen(e->name) ||
            memcmp(t->name.ptr, e->name, t->name.len) != 0)
            return bn_errf(ld->err, "%s: pack plan entry %zu ('%s') does not match the "
                           "metadata's tensor %zu", ld->label, i, e->name, i);
        if (!bn_tensor_bytes(e->dst_type, e->rows, e->cols, &bytes) || bytes != e->dst_bytes)
            return bn_errf(ld->err, "%s: pack plan entry '%s' has %" PRIu64 " bytes of %s for "
                           "%" PRId64 " x %" PRId64 ", which is not that layout's size",
                           ld->label, e->name, e->dst_bytes, bn_type_name(e->dst_type), e->rows,
                           e->cols);
    }
    return 0;
}

/* Repacking runs on a pool: tensors are dealt to threads one at a time. */
struct repack_task {
    struct loader *ld;
    atomic_size_t next;
    atomic_bool failed;
    struct bn_err err; /* the first failure */
};

static void repack_run(void *arg, int ith, int nth)
{
    struct repack_task *t = arg;
    struct loader *ld = t->ld;
    for (;;) {
        size_t i = atomic_fetch_add(&t->next, 1);
        if (i >= ld->plan->n || atomic_load(&t->failed))
            return;
        const struct bn_pack_entry *e = &ld->plan->entries[i];
        if (e->dst_type == e->src_type)
            continue;
        struct bn_err err = {{0}};
        if (bn_pack_tensor(ld->plan, e, bn_gguf_tensor(ld->g, (int64_t)i)->data, ld->packed[i], &err) &&
            !atomic_exchange(&t->failed, true))
            t->err = err;
    }
}

/* No source plan: make one for the path and repack into private memory the
 * tensors whose layout differs (only ternary matrices ever do), once, at load. */
static int repack(struct loader *ld)
{
    struct bn_model *m = ld->m;
    if (bn_pack_plan_make(&ld->own_plan, ld->g, m->params.path, m->params.ternary_layout, ld->err))
        return -1;
    ld->plan = &ld->own_plan;
    uint64_t total = 0;
    for (size_t i = 0; i < ld->plan->n; i++) {
        const struct bn_pack_entry *e = &ld->plan->entries[i];
        if (e->dst_type == e->src_type)
            continue;
        if (!bn_gguf_tensor(ld->g, (int64_t)i)->data)
            return bn_errf(ld->err, "%s: tensor '%s' has no data (metadata-only source)",
                           ld->label, e->name);
        total += (e->dst_bytes + ALIGN_PRIVATE - 1) / ALIGN_PRIVATE * ALIGN_PRIVATE;
    }
    if (total == 0)
        return 0;
    /* bn_weights_alloc: huge pages where the OS allows (decode streams these bytes) */
    if (total > SIZE_MAX || !(m->private_mem = bn_weights_alloc((size_t)total))) {
        return bn_errf(ld->err, "%s: out of memory repacking %" PRIu64 " bytes of weights for "
                       "the %s kernels", ld->label, total, bn_path_name(m->params.path));
    }
    m->private_mem_bytes = (size_t)total;
    uint64_t off = 0;
    for (size_t i = 0; i < ld->plan->n; i++) {
        const struct bn_pack_entry *e = &ld->plan->entries[i];
        if (e->dst_type == e->src_type)
            continue;
        ld->packed[i] = (uint8_t *)m->private_mem + off;
        off += (e->dst_bytes + ALIGN_PRIVATE - 1) / ALIGN_PRIVATE * ALIGN_PRIVATE;
    }
    struct repack_task task = {.ld = ld};
    atomic_init(&task.next, 0);
    atomic_init(&task.failed, false);
    struct bn_pool *pool = bn_pool_create(m->params.n_threads); /* NULL: run on this thread */
    bn_pool_run(pool, repack_run, &task);
    bn_pool_destroy(pool);
    if (atomic_load(&task.failed))
        return bn_errf(ld->err, "%s: %s", ld->label, task.err.msg);
    m->info.private_bytes = total;
    return 0;
}

static int record_tensors(struct loader *ld)
{
    struct bn_model *m = ld->m;
    int64_t n = bn_gguf_n_tensors(ld->g), k = 0;
    for (int64_t i = 0; i < n; i++)
        k += ld->used[i];
    m->tensors = calloc((size_t)(k ? k : 1), sizeof *m->tensors);
    if (!m->tensors)
        return bn_errf(ld->err, "%s: out of memory", ld->label);
    m->n_tensors = k;
    k = 0;
    m->info.n_params = 0;
    m->info.weight_bytes = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!ld->used[i])
            continue;
        const struct bn_pack_entry *e = &ld->plan->entries[i];
        struct bn_model_tensor_rec *r = &m->tensors[k++];
        snprintf(r->name, sizeof r->name, "%s", e->name);
        r->file_type = e->src_type;
        r->layout = e->dst_type;
        r->rows = e->rows;
        r->cols = e->cols;
        r->bytes = e->dst_bytes;
        r->repacked = !ld->src_data && e->dst_type != e->src_type;
        m->info.n_params += (uint64_t)(e->rows * e->cols);
        m->info.weight_bytes += e->dst_bytes;
    }
    return 0;
}

/* Check (check_only) or bind every tensor the graph uses. */
static int bind_all(struct loader *ld)
{
    struct bn_model *m = ld->m;
    struct bn_model_info *in = &m->info;
    if (bind_matrix(ld, "token_embd.weight", KIND_FLOAT, in->n_embd, in->n_vocab, &m->tok_embd))
        return -1;
    if (!ld->check_only && !bn_type_traits(m->tok_embd.type)->row_to_float)
        return bn_errf(ld->err, "%s: tensor 'token_embd.weight' has no row decoder in layout %s",
                       ld->label, bn_type_name(m->tok_embd.type));
    for (int64_t l = 0; l < in->n_layer; l++)
        if (bind_layer(ld, l, &m->layers[l]))
            return -1;
    if (bind_norm(ld, "output_norm.weight", in->n_embd, &m->output_norm))
        return -1;
    in->tied_head = bn_gguf_find_tensor(ld->g, "output.weight") == NULL;
    if (in->tied_head)
        m->head = m->tok_embd;
    else if (bind_matrix(ld, "output.weight", KIND_FLOAT, in->n_embd, in->n_vocab, &m->head))
        return -1;
    return 0;
}

/* params.head_q8: an 8-bit copy of a float head in memory the model owns. */
static int requantize_head(struct loader *ld)
{
    struct bn_model *m = ld->m;
    enum bn_type t = m->head.type;
    if (!m->params.head_q8 || m->params.reference ||
        (t != BN_TYPE_F32 && t != BN_TYPE_F16 && t != BN_TYPE_BF16))
        return 0;
    uint64_t bytes = 0;
    enum bn_type dst = bn_matrix_layout(t, m->head.rows, m->head.cols, m->params.path,
                                        BN_TYPE_Q8_0, &bytes);
    if (dst != BN_TYPE_Q8_0 || bytes == 0)
        return 0; /* no 8-bit head kernels for this shape/path: keep the float head */
    if (bytes > SIZE_MAX || !(m->head_mem = bn_weights_alloc((size_t)bytes)))
        return bn_errf(ld->err, "%s: out of memory for the 8-bit head (%llu bytes)", ld->label,
                       (unsigned long long)bytes);
    m->head_mem_bytes = (size_t)bytes;
    struct bn_matrix q;
    char msg[256];
    if (!bn_matrix_init(&q, t, m->head.data, m->head.rows, m->head.cols, BN_TYPE_Q8_0,
                        m->head_mem, m->params.path, msg, sizeof msg))
        return bn_errf(ld->err, "%s: requantizing the head to Q8_0: %s", ld->label, msg);
    m->head = q;
    m->info.private_bytes += bytes;
    return 0;
}

static enum bn_type file_type_of(const struct bn_gguf *g, const char *name)
{
    const struct bn_gguf_tensor *t = bn_gguf_find_tensor(g, name);
    return t ? t->type : BN_TYPE_COUNT;
}

static int load(struct loader *ld, const struct bn_model_source *src)
{
    struct bn_model *m = ld->m;
    struct bn_model_info *in = &m->info;
    int64_t n = bn_gguf_n_tensors(ld->g);
    ld->used = calloc((size_t)(n > 0 ? n : 1), sizeof *ld->used);
    ld->packed = calloc((size_t)(n > 0 ? n : 1), sizeof *ld->packed);
    if (!ld->used || !ld->packed)
        return bn_errf(ld->err, "%s: out of memory", ld->label);
    if (read_hparams(ld))
        return -1;
    m->layers = calloc((size_t)in->n_layer, sizeof *m->layers);
    if (!m->layers)
        return bn_errf(ld->err, "%s: out of memory", ld->label);
    ld->check_only = true; /* every tensor checked before any is repacked */
    if (bind_all(ld))
        return -1;

    if (src->plan) {
        if (m->params.path != BN_PATH_COUNT && m->params.path != src->plan->path)
            return bn_errf(ld->err, "%s: the weights are laid out for the %s kernels, not %s",
                           ld->label, bn_path_name(src->plan->path), bn_path_name(m->params.path));
        m->params.path = src->plan->path;
        if (check_source_plan(ld, src))
            return -1;
        ld->plan = src->plan;
        ld->src_data = src->data;
    } else {
        if (m->params.path == BN_PATH_COUNT)
            m->params.path = bn_path_default();
        if (!bn_path_supported(m->params.path))
            return bn_errf(ld->err, "%s: the %s kernel path is not supported by this CPU",
                           ld->label, bn_path_name(m->params.path));
        if (repack(ld))
            return -1;
    }
    in->path = m->params.path;
    if ((int)in->path < 0 || in->path >= BN_PATH_COUNT)
        return bn_errf(ld->err, "%s: kernel path %d is not known", ld->label, (int)in->path);

    ld->check_only = false;
    if (bind_all(ld))
        return -1;

    in->embd_type = file_type_of(ld->g, "token_embd.weight");
    in->head_type = in->tied_head ? in->embd_type : file_type_of(ld->g, "output.weight");
    if (requantize_head(ld))
        return -1;
    in->head_layout = m->head.type;
    in->ternary_type = file_type_of(ld->g, "blk.0.attn_q.weight");
    static const char *const proj[] = {"attn_q", "attn_k", "attn_v", "attn_output",
                                       "ffn_gate", "ffn_up", "ffn_down"};
    for (int64_t l = 0; l < in->n_layer; l++) {
        for (size_t j = 0; j < sizeof proj / sizeof proj[0]; j++) {
            char nm[BN_GGUF_MAX_NAME];
            snprintf(nm, sizeof nm, "blk.%" PRId64 ".%s.weight", l, proj[j]);
            if (file_type_of(ld->g, nm) != in->ternary_type)
                in->ternary_type = BN_TYPE_COUNT;
        }
    }
    return record_tensors(ld);
}

static int open_impl(const struct bn_model_source *src, const struct bn_model_params *params,
                     struct bn_model *m, struct bn_err *err)
{
    if (params)
        m->params = *params;
    else
        bn_model_params_default(&m->params);
    if (m->params.reference) {
        /* The reference pass reads the file's own formats through their row decoders:
         * keep every tensor as stored unless the source already fixed the layout. */
        m->params.ternary_layout = BN_TYPE_COUNT;
        if (!src->plan)
            m->params.path = BN_PATH_SCALAR;
    }
    m->meta = src->meta;
    struct loader ld = {.g = src->meta, .label = bn_gguf_label(src->meta), .m = m, .err = err};
    int rc = load(&ld, src);
    bn_pack_plan_free(&ld.own_plan);
    free(ld.used);
    free(ld.packed);
    return rc;
}

int bn_model_open(const struct bn_model_source *src, const struct bn_model_params *params,
                  struct bn_model **out, struct bn_err *err)
{
    *out = NULL;
    if (!src || !src->meta)
        return bn_errf(err, "bn_model_open: no metadata given");
    struct bn_model *m = calloc(1, sizeof *m);
    if (!m)
        return bn_errf(err, "%s: out of memory", bn_gguf_label(src->meta));
    if (open_impl(src, params, m, err)) {
        bn_model_free(m);
        return -1;
    }
    *out = m;
    return 0;
}

int bn_model_load_file(const char *path, const struct bn_model_params *params,
                       struct bn_model **out, struct bn_err *err)
{
    *out = NULL;
    struct bn_model *m = calloc(1, sizeof *m);
    if (!m)
        return bn_errf(err, "%s: out of memory", path);
    if (bn_map_file(path, &m->map, err) ||
        bn_gguf_open(&m->own_meta, m->map.base, m->map.size, path, 0, err)) {
        bn_model_free(m);
        return -1;
    }
    struct bn_model_source src = {.meta = m->own_meta};
    if (open_impl(&src, params, m, err)) {
        bn_model_free(m);
        return -1;
    }
    *out = m;
    return 0;
}

void bn_model_free(struct bn_model *m)
{
    if (!m)
        return;
    free(m->layers);
    free(m->tensors);
    if (m->private_mem)
        bn_weights_free(m->private_mem, m->private_mem_bytes);
    if (m->head_mem)
        bn_weights_free(m->head_mem, m->head_mem_bytes);
    bn_gguf_close(m->own_meta);
    bn_unmap_file(&m->map);
    free(m);
}

const struct bn_model_info *bn_model_get_info(const struct bn_model *m) { return &m->info; }
const struct bn_model_params *bn_model_get_params(const struct bn_model *m) { return &m->params; }
const struct bn_gguf *bn_model_gguf(const struct bn_model *m) { return m->meta; }
int64_t bn_model_n_tensors(const struct bn_model *m) { return m->n_tensors; }

bool bn_model_tensor_at(const struct bn_model *m, int64_t i, struct bn_model_tensor *out)
{
    if (i < 0 || i >= m->n_tensors)
        return false;
    const struct bn_model_tensor_rec *r = &m->tensors[i];
    *out = (struct bn_model_tensor){.name = r->name, .file_type = r->file_type, .layout = r->layout,
                                    .rows = r->rows, .cols = r->cols, .bytes = r->bytes,
                                    .repacked = r->repacked};
    return true;
}

uint64_t bn_kv_chunk_bytes(const struct bn_model *m, int64_t tokens, enum bn_type kv_type)
{
    const struct bn_model_info *in = &m->info;
    uint64_t elem = kv_type == BN_TYPE_F32 ? 4 : 2;
    return (uint64_t)in->n_layer * 2 * (uint64_t)in->n_head_kv * (uint64_t)tokens *
           (uint64_t)in->head_dim * elem;
}

uint64_t bn_model_kv_bytes(const struct bn_model *m, int64_t n_ctx)
{
    if (n_ctx <= 0)
        n_ctx = m->info.n_ctx_train;
    int64_t chunk = n_ctx < BN_KV_CHUNK_TOKENS ? n_ctx : BN_KV_CHUNK_TOKENS;
    int64_t n_chunks = (n_ctx + chunk - 1) / chunk;
    return (uint64_t)n_chunks * bn_kv_chunk_bytes(m, chunk, BN_KV_DEFAULT_TYPE);
}
