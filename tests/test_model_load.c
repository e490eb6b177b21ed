/* tests/test_model_load.c — model loading: the info it reports, loading from a
 * source (plan + data pointers) without copying, a separate LM head, and bad files:
 * copies of a reference model rewritten with one thing wrong (a tensor missing,
 * mistyped or misshapen, hyperparameters that do not divide, a vocabulary of the
 * wrong length ...), each refused with a sentence naming what is wrong. */
#include <unistd.h>

#include "logits_fixture.h"

#define MAX_EDITS 4

/* One rewrite of a GGUF: keys dropped or set, tensors dropped or replaced. */
struct edit {
    const char *drop_key;
    const char *set_key;       /* integer key set to set_u32 (or string key to set_str) */
    uint32_t set_u32;
    const char *set_str;
    const char *drop_tensor;
    const char *retype_f32;    /* tensor rewritten as F32 (its values, same shape) */
    const char *retype_f16;
    const char *reshape;       /* tensor rewritten as I2_S of shape [ne0, ne1] */
    int64_t ne0, ne1;
    const char *add_head;      /* add output.weight: this tensor's values ... */
    enum bn_type head_type;    /* ... as F16 or I2_S */
};

struct tmp_model {
    char dir[256], path[300];
    float *bufs[8];
    int n_bufs;
};

static const char *src_model(const char *name)
{
    static char path[FX_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s.gguf", fx_ref_dir(), name);
    return path;
}

/* Values of tensor t as floats [rows][cols]. */
static float *tensor_floats(const struct bn_gguf_tensor *t)
{
    int64_t cols = t->ne[0], rows = t->ne[1] * t->ne[2] * t->ne[3];
    float *v = malloc((size_t)(rows * cols) * sizeof(float));
    cr_assert(v);
    const struct bn_type_traits *tr = bn_type_traits(t->type);
    float scale = bn_tensor_scale(t->type, t->data, rows, cols);
    size_t rb = bn_row_bytes(t->type, cols);
    for (int64_t r = 0; r < rows; r++)
        tr->row_to_float((const uint8_t *)t->data + (size_t)r * rb, v + r * cols, cols, scale);
    return v;
}

static bool streq(struct bn_str s, const char *c)
{
    return c && s.len == strlen(c) && memcmp(s.ptr, c, s.len) == 0;
}

/* Write `src` with the edits applied to a temporary file (tm->path). */
static void rewrite(const char *src, const struct edit *ed, int n_ed, struct tmp_model *tm)
{
    memset(tm, 0, sizeof *tm);
    const char *tmp = getenv("TMPDIR");
    snprintf(tm->dir, sizeof tm->dir, "%s/bn-model-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    cr_assert(mkdtemp(tm->dir), "mkdtemp");
    snprintf(tm->path, sizeof tm->path, "%s/m.gguf", tm->dir);

    struct bn_mapped_file mf;
    struct bn_gguf *g = NULL;
    struct bn_err err = {{0}};
    cr_assert(bn_map_file(src, &mf, &err) == 0 && bn_gguf_open(&g, mf.base, mf.size, src, 0, &err) == 0,
              "%s", err.msg);
    struct bn_gguf_writer *w = bn_gguf_writer_new();
    cr_assert(w);
    for (int64_t i = 0; i < bn_gguf_n_kv(g); i++) {
        struct bn_str key = bn_gguf_key(g, i);
        bool skip = false;
        for (int e = 0; e < n_ed; e++)
            skip = skip || streq(key, ed[e].drop_key) || streq(key, ed[e].set_key);
        if (!skip)
            bn_gguf_set_from(w, g, i);
    }
    for (int e = 0; e < n_ed; e++) {
        if (ed[e].set_key && ed[e].set_str)
            bn_gguf_set_str(w, ed[e].set_key, ed[e].set_str);
        else if (ed[e].set_key)
            bn_gguf_set_u32(w, ed[e].set_key, ed[e].set_u32);
    }
    for (int64_t i = 0; i < bn_gguf_n_tensors(g); i++) {
        const struct bn_gguf_tensor *t = bn_gguf_tensor(g, i);
        char name[BN_GGUF_MAX_NAME];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        bool done = false;
        for (int e = 0; e < n_ed && !done; e++) {
            if (streq(t->name, ed[e].drop_tensor)) {
                done = true;
            } else if (streq(t->name, ed[e].retype_f32) || streq(t->name, ed[e].retype_f16)) {
                float *v = tensor_floats(t);
                bool f16 = streq(t->name, ed[e].retype_f16);
                if (f16) {
                    int64_t n = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
                    uint16_t *h = malloc((size_t)n * 2);
                    bn_f32_to_f16_row(v, h, n);
                    free(v);
                    v = (float *)h;
                }
                tm->bufs[tm->n_bufs++] = v;
                bn_gguf_add_tensor_data(w, name, f16 ? BN_TYPE_F16 : BN_TYPE_F32, t->n_dims, t->ne, v);
                done = true;
            } else if (streq(t->name, ed[e].reshape)) {
                int64_t ne[2] = {ed[e].ne0, ed[e].ne1};
                uint64_t bytes;
                cr_assert(bn_tensor_bytes(BN_TYPE_I2_S, ne[1], ne[0], &bytes));
                float *vals = malloc((size_t)(ne[0] * ne[1]) * sizeof(float));
                for (int64_t k = 0; k < ne[0] * ne[1]; k++)
                    vals[k] = (float)((int)(k % 3) - 1) * 0.25f;
                void *q = malloc(bytes);
                cr_assert(bn_type_traits(BN_TYPE_I2_S)->quantize(vals, q, ne[1], ne[0]) == bytes);
                free(vals);
                tm->bufs[tm->n_bufs++] = q;
                bn_gguf_add_tensor_data(w, name, BN_TYPE_I2_S, 2, ne, q);
                done = true;
            }
        }
        if (!done)
            bn_gguf_add_tensor_data(w, name, t->type, t->n_dims, t->ne, t->data);
    }
    for (int e = 0; e < n_ed; e++) {
        if (!ed[e].add_head)
            continue;
        const struct bn_gguf_tensor *t = bn_gguf_find_tensor(g, ed[e].add_head);
        cr_assert(t);
        float *v = tensor_floats(t);
        uint64_t bytes;
        cr_assert(bn_tensor_bytes(ed[e].head_type, t->ne[1], t->ne[0], &bytes));
        void *h = malloc(bytes);
        cr_assert(bn_type_traits(ed[e].head_type)->quantize(v, h, t->ne[1], t->ne[0]) == bytes);
        free(v);
        tm->bufs[tm->n_bufs++] = h;
        bn_gguf_add_tensor_data(w, "output.weight", ed[e].head_type, 2, t->ne, h);
    }
    cr_assert(bn_gguf_writer_write(w, tm->path, &err) == 0, "%s", err.msg);
    bn_gguf_writer_free(w);
    bn_gguf_close(g);
    bn_unmap_file(&mf);
}

static void tmp_free(struct tmp_model *tm)
{
    for (int i = 0; i < tm->n_bufs; i++)
        free(tm->bufs[i]);
    unlink(tm->path);
    rmdir(tm->dir);
}

/* Load must fail with a message containing `want`. */
static void expect_refused(const char *what, const struct edit *ed, int n_ed, const char *want)
{
    struct tmp_model tm;
    rewrite(src_model("tinyA-i2s"), ed, n_ed, &tm);
    struct bn_model *m = NULL;
    struct bn_err err = {{0}};
    cr_expect_eq(bn_model_load_file(tm.path, NULL, &m, &err), -1, "%s: loaded", what);
    cr_expect_null(m);
    cr_expect(strstr(err.msg, want), "%s: message '%s' lacks '%s'", what, err.msg, want);
    cr_expect(strstr(err.msg, tm.path), "%s: message '%s' does not name the file", what, err.msg);
    fprintf(stderr, "refused (%s): %s\n", what, err.msg);
    bn_model_free(m);
    tmp_free(&tm);
}

Test(model_load, bad_tensors)
{
    expect_refused("missing tensor", &(struct edit){.drop_tensor = "blk.1.ffn_up.weight"}, 1,
                   "tensor 'blk.1.ffn_up.weight' is missing");
    expect_refused("missing norm", &(struct edit){.drop_tensor = "output_norm.weight"}, 1,
                   "tensor 'output_norm.weight' is missing");
    expect_refused("missing embedding", &(struct edit){.drop_tensor = "token_embd.weight"}, 1,
                   "tensor 'token_embd.weight' is missing");
    expect_refused("mistyped projection", &(struct edit){.retype_f32 = "blk.0.attn_q.weight"}, 1,
                   "tensor 'blk.0.attn_q.weight' has type F32, expected a ternary type (I2_S, TQ2_0 or TQ1_0)");
    expect_refused("mistyped norm", &(struct edit){.retype_f16 = "blk.1.attn_sub_norm.weight"}, 1,
                   "tensor 'blk.1.attn_sub_norm.weight' has type F16, expected F32");
    expect_refused("wrong shape",
                   &(struct edit){.reshape = "blk.1.attn_k.weight", .ne0 = 256, .ne1 = 64}, 1,
                   "tensor 'blk.1.attn_k.weight' has shape [256, 64], expected [256, 128]");
    expect_refused("transposed down projection",
                   &(struct edit){.reshape = "blk.0.ffn_down.weight", .ne0 = 256, .ne1 = 640}, 1,
                   "tensor 'blk.0.ffn_down.weight' has shape [256, 640], expected [640, 256]");
    expect_refused("ternary head",
                   &(struct edit){.add_head = "token_embd.weight", .head_type = BN_TYPE_I2_S}, 1,
                   "tensor 'output.weight' has type I2_S, expected F32, F16, Q8_0 or Q6_K");
}

Test(model_load, bad_hyperparameters)
{
    expect_refused("heads do not divide the width",
                   &(struct edit){.set_key = "bitnet-25.attention.head_count", .set_u32 = 3}, 1,
                   "embedding_length 256 is not a multiple of 'bitnet-25.attention.head_count' 3");
    expect_refused("kv heads do not divide the heads",
                   &(struct edit){.set_key = "bitnet-25.attention.head_count_kv", .set_u32 = 3}, 1,
                   "'bitnet-25.attention.head_count' 4 is not a multiple of 'bitnet-25.attention.head_count_kv' 3");
    expect_refused("rope dims are not the head dim",
                   &(struct edit){.set_key = "bitnet-25.rope.dimension_count", .set_u32 = 32}, 1,
                   "'bitnet-25.rope.dimension_count' is 32 but the head dimension");
    expect_refused("vocab_size disagrees with the token list",
                   &(struct edit){.set_key = "bitnet-25.vocab_size", .set_u32 = 1000}, 1,
                   "'bitnet-25.vocab_size' is 1000 but 'tokenizer.ggml.tokens' has 1003 entries");
    struct edit no_vocab[2] = {{.drop_key = "bitnet-25.vocab_size"}, {.drop_key = "tokenizer.ggml.tokens"}};
    expect_refused("no vocabulary size at all", no_vocab, 2, "the vocabulary size is unknown");
    struct edit big_vocab[2] = {{.set_key = "bitnet-25.vocab_size", .set_u32 = 1004},
                                {.drop_key = "tokenizer.ggml.tokens"}};
    expect_refused("embedding rows are not the vocabulary", big_vocab, 2,
                   "tensor 'token_embd.weight' has shape [256, 1003], expected [256, 1004]");
    expect_refused("zero context", &(struct edit){.set_key = "bitnet-25.context_length", .set_u32 = 0}, 1,
                   "key 'bitnet-25.context_length' is 0; it must be 1..");
    expect_refused("more layers than tensors",
                   &(struct edit){.set_key = "bitnet-25.block_count", .set_u32 = 3}, 1,
                   "tensor 'blk.2.attn_norm.weight' is missing");
    expect_refused("missing epsilon",
                   &(struct edit){.drop_key = "bitnet-25.attention.layer_norm_rms_epsilon"}, 1,
                   "key 'bitnet-25.attention.layer_norm_rms_epsilon' is missing");
    expect_refused("other architecture",
                   &(struct edit){.set_key = "general.architecture", .set_str = "llama"}, 1,
                   "architecture 'llama' is not supported");
}

/* A model whose vocab_size key is absent takes the token list's length. */
Test(model_load, vocab_size_from_token_list)
{
    struct tmp_model tm;
    rewrite(src_model("tinyA-i2s"), &(struct edit){.drop_key = "bitnet-25.vocab_size"}, 1, &tm);
    struct bn_model *m = NULL;
    struct bn_err err = {{0}};
    cr_assert(bn_model_load_file(tm.path, NULL, &m, &err) == 0, "%s", err.msg);
    cr_expect_eq(bn_model_get_info(m)->n_vocab, 1003);
    bn_model_free(m);
    tmp_free(&tm);
}

/* output.weight present: a separate head.  With the embedding's own values (as F16)
 * the logits are the tied model's, bit for bit. */
Test(model_load, separate_head)
{
    struct tmp_model tm;
    rewrite(src_model("tinyA-i2s"),
            &(struct edit){.add_head = "token_embd.weight", .head_type = BN_TYPE_F16}, 1, &tm);
    struct fx_mode mode = {.path = BN_PATH_COUNT};
    struct bn_model *sep = fx_load(tm.path, &mode, false, 1);
    struct bn_model *tied = fx_load(src_model("tinyA-i2s"), &mode, false, 1);
    cr_expect(!bn_model_get_info(sep)->tied_head);
    cr_expect(bn_model_get_info(tied)->tied_head);
    cr_expect_eq(bn_model_get_info(sep)->head_type, BN_TYPE_F16);
    int32_t ids[FX_MAX_TOKENS];
    int n = fx_tokens(fx_ref_dir(), ids);
    float *a = fx_run(sep, ids, n, n, BN_KV_DEFAULT_TYPE), *b = fx_run(tied, ids, n, n, BN_KV_DEFAULT_TYPE);
    cr_expect(memcmp(a, b, (size_t)n * 1003 * sizeof(float)) == 0, "separate head with the same values");
    free(a);
    free(b);
    bn_model_free(sep);
    bn_model_free(tied);
    tmp_free(&tm);
}

Test(model_load, info_and_tensors)
{
    struct fx_mode mode = {.path = BN_PATH_SCALAR};
    struct bn_model *m = fx_load(src_model("tinyB-i2s"), &mode, false, 1);
    const struct bn_model_info *in = bn_model_get_info(m);
    cr_expect_str_eq(in->arch, "bitnet-25");
    cr_expect_eq(in->n_vocab, 1003);
    cr_expect_eq(in->n_embd, 512);
    cr_expect_eq(in->n_layer, 4);
    cr_expect_eq(in->n_head, 4);
    cr_expect_eq(in->n_head_kv, 1);
    cr_expect_eq(in->head_dim, 128);
    cr_expect_eq(in->n_ff, 1536);
    cr_expect_eq(in->n_ctx_train, 512);
    cr_expect_float_eq(in->rope_theta, 500000.0f, 1e-3);
    cr_expect_float_eq(in->rms_eps, 1e-5f, 1e-12);
    cr_expect_eq(in->ternary_type, BN_TYPE_I2_S);
    cr_expect_eq(in->embd_type, BN_TYPE_F16);
    cr_expect(in->tied_head);
    cr_expect_eq(in->path, BN_PATH_SCALAR);
    cr_expect_eq(in->private_bytes, 0, "the scalar path uses the file's bytes in place");
    cr_expect_eq(bn_model_n_tensors(m), 1 + 4 * 11 + 1);
    uint64_t bytes = 0, params = 0;
    struct bn_model_tensor t;
    for (int64_t i = 0; bn_model_tensor_at(m, i, &t); i++) {
        bytes += t.bytes;
        params += (uint64_t)(t.rows * t.cols);
        cr_expect(!t.repacked);
    }
    cr_expect_eq(bytes, in->weight_bytes);
    cr_expect_eq(params, in->n_params);
    cr_expect(!bn_model_tensor_at(m, bn_model_n_tensors(m), &t));
    bn_model_free(m);

    m = fx_load(src_model("tinyB-i2s.bitnet-b1.58"), &mode, false, 1);
    cr_expect_str_eq(bn_model_get_info(m)->arch, "bitnet-b1.58");
    bn_model_free(m);
    m = fx_load(src_model("tinyB-tq1_0"), &mode, false, 1);
    cr_expect_eq(bn_model_get_info(m)->ternary_type, BN_TYPE_TQ1_0);
    bn_model_free(m);
    m = fx_load(src_model("tinyB-i2s-embq6k"), &mode, false, 1);
    cr_expect_eq(bn_model_get_info(m)->embd_type, BN_TYPE_Q6_K);
    bn_model_free(m);
}

/* bn_model_open from a source whose tensors were laid out by a pack plan into
 * separate buffers (as the daemon's shared-memory segments are): same logits, and
 * the buffers are used in place (changing one changes the output). */
Test(model_load, open_from_source_uses_the_bytes_in_place)
{
    const char *path = src_model("tinyA-i2s");
    struct bn_mapped_file mf;
    struct bn_gguf *g = NULL;
    struct bn_err err = {{0}};
    cr_assert(bn_map_file(path, &mf, &err) == 0 && bn_gguf_open(&g, mf.base, mf.size, path, 0, &err) == 0,
              "%s", err.msg);
    struct bn_pack_plan plan;
    enum bn_path p = bn_path_default();
    cr_assert(bn_pack_plan_make(&plan, g, p, BN_TYPE_COUNT, &err) == 0, "%s", err.msg);
    void **data = calloc(plan.n, sizeof *data);
    for (size_t i = 0; i < plan.n; i++) {
        const struct bn_pack_entry *e = &plan.entries[i];
        cr_assert(posix_memalign(&data[i], 64, e->dst_bytes) == 0);
        cr_assert(bn_pack_tensor(&plan, e, bn_gguf_tensor(g, (int64_t)i)->data, data[i], &err) == 0,
                  "%s", err.msg);
    }
    struct bn_model_source src = {.meta = g, .plan = &plan, .data = (const void *const *)data};
    struct bn_model *m = NULL;
    cr_assert(bn_model_open(&src, NULL, &m, &err) == 0, "%s", err.msg);
    cr_expect_eq(bn_model_get_info(m)->private_bytes, 0);
    cr_expect_eq(bn_model_get_info(m)->path, p);

    struct fx_mode mode = {.path = p};
    struct bn_model *plain = fx_load(path, &mode, false, 2);
    int32_t ids[FX_MAX_TOKENS];
    int n = fx_tokens(fx_ref_dir(), ids);
    size_t cnt = (size_t)n * 1003;
    float *a = fx_run(m, ids, n, n, BN_KV_DEFAULT_TYPE), *b = fx_run(plain, ids, n, n, BN_KV_DEFAULT_TYPE);
    cr_expect(memcmp(a, b, cnt * sizeof(float)) == 0, "source vs file: logits differ");
    free(a);

    /* zero output_norm in the source buffer: every logit becomes 0 */
    const struct bn_gguf_tensor *on = bn_gguf_find_tensor(g, "output_norm.weight");
    int64_t idx = on - bn_gguf_tensor(g, 0);
    memset(data[idx], 0, plan.entries[idx].dst_bytes);
    a = fx_run(m, ids, 4, 4, BN_KV_DEFAULT_TYPE);
    for (size_t i = 0; i < 4 * 1003; i++)
        cr_assert(a[i] == 0.0f, "the model did not read the source's output_norm bytes");
    free(a);
    free(b);

    /* a plan for another path than the one asked for is refused */
    struct bn_model_params mp;
    bn_model_params_default(&mp);
    mp.path = p == BN_PATH_SCALAR ? BN_PATH_AVX2 : BN_PATH_SCALAR;
    struct bn_model *bad = NULL;
    cr_expect_eq(bn_model_open(&src, &mp, &bad, &err), -1);
    cr_expect(strstr(err.msg, "laid out for the"), "%s", err.msg);

    bn_model_free(m);
    bn_model_free(plain);
    for (size_t i = 0; i < plan.n; i++)
        free(data[i]);
    free(data);
    bn_pack_plan_free(&plan);
    bn_gguf_close(g);
    bn_unmap_file(&mf);
}

Test(model_load, missing_file)
{
    struct bn_model *m = NULL;
    struct bn_err err = {{0}};
    cr_expect_eq(bn_model_load_file("/nonexistent/m.gguf", NULL, &m, &err), -1);
    cr_expect(strstr(err.msg, "/nonexistent/m.gguf"), "%s", err.msg);
}
