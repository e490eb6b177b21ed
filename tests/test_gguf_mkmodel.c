/* tests/test_gguf_mkmodel.c — contrib/bitnet-mkmodel: the files it writes read back
 * with the right metadata, tensors, shapes, types and weight statistics; same seed
 * gives the same bytes; bad flags give clear errors and a non-zero exit. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bitnet.h"

extern char **environ;

static char tmpdir[512];
static char errbuf[4096]; /* stderr of the last run */

static void make_tmpdir(void)
{
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/bn-mkmodel-XXXXXX", t && *t ? t : "/tmp");
    cr_assert(mkdtemp(tmpdir), "mkdtemp %s", tmpdir);
}

static void remove_tmpdir(void)
{
    DIR *d = opendir(tmpdir);
    if (!d)
        return;
    struct dirent *e;
    char p[1024];
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
            unlink(p);
        }
    }
    closedir(d);
    rmdir(tmpdir);
}

TestSuite(mkmodel, .init = make_tmpdir, .fini = remove_tmpdir, .timeout = 120);

/* A path in the test's folder; the last 8 stay valid. */
static const char *path_in_tmp(const char *name)
{
    static char p[8][1024];
    static int k;
    k = (k + 1) % 8;
    snprintf(p[k], sizeof p[k], "%s/%s", tmpdir, name);
    return p[k];
}

/* Run bitnet-mkmodel with args (NULL-terminated); returns its exit status and keeps
 * its stderr in errbuf. */
static int run_mkmodel(const char *const *args)
{
    const char *build = getenv("BITNET_BUILD_DIR");
    if (!build || !*build)
        cr_skip_test("BITNET_BUILD_DIR is not set: run this test through `make check`");
    char prog[1024];
    snprintf(prog, sizeof prog, "%s/contrib/bitnet-mkmodel", build);
    if (access(prog, X_OK) != 0)
        cr_skip_test("%s is not built", prog);
    const char *argv[32] = {prog};
    int n = 1;
    for (; args[n - 1]; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;

    static char err_path[1024];
    snprintf(err_path, sizeof err_path, "%s/stderr.txt", tmpdir);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    cr_assert_eq(posix_spawn(&pid, prog, &fa, NULL, (char *const *)argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    FILE *f = fopen(err_path, "r");
    size_t got = f ? fread(errbuf, 1, sizeof errbuf - 1, f) : 0;
    errbuf[got] = '\0';
    if (f)
        fclose(f);
    cr_assert(WIFEXITED(status), "bitnet-mkmodel crashed: %s", errbuf);
    return WEXITSTATUS(status);
}

struct opened {
    struct bn_mapped_file m;
    struct bn_gguf *g;
};

static void open_model(struct opened *o, const char *path)
{
    struct bn_err err;
    cr_assert_eq(bn_map_file(path, &o->m, &err), 0, "%s", err.msg);
    cr_assert_eq(bn_gguf_open(&o->g, o->m.base, o->m.size, path, 0, &err), 0, "%s", err.msg);
}

static void close_model(struct opened *o)
{
    bn_gguf_close(o->g);
    bn_unmap_file(&o->m);
}

static bool str_is(struct bn_str s, const char *want)
{
    return s.ptr && s.len == strlen(want) && memcmp(s.ptr, want, s.len) == 0;
}

static uint32_t get_u32(const struct bn_gguf *g, const char *key)
{
    struct bn_err err;
    uint32_t v = 0;
    cr_assert_eq(bn_gguf_get_u32(g, key, &v, &err), 0, "%s", err.msg);
    return v;
}

struct expect {
    const char *arch;
    uint32_t layers, hidden, ffn, heads, kv_heads, ctx;
    float theta;
    enum bn_type wtype, etype;
    uint32_t file_type;
};

/* Everything REFERENCE §1 lists, for any shape. */
static void check_model(const struct bn_gguf *g, const struct expect *e, uint32_t *n_vocab_out)
{
    struct bn_err err;
    struct bn_str s;
    char k[128];
    cr_assert_eq(bn_gguf_version(g), 3);
    cr_assert_eq(bn_gguf_get_str(g, "general.architecture", &s, &err), 0, "%s", err.msg);
    cr_assert(str_is(s, e->arch));
    cr_assert_eq(bn_gguf_get_str(g, "general.name", &s, &err), 0, "%s", err.msg);
#define ARCH_U32(suffix, want)                                              \
    do {                                                                    \
        snprintf(k, sizeof k, "%s.%s", e->arch, suffix);                    \
        cr_assert_eq(get_u32(g, k), want, "%s", k);                         \
    } while (0)
    ARCH_U32("context_length", e->ctx);
    ARCH_U32("embedding_length", e->hidden);
    ARCH_U32("block_count", e->layers);
    ARCH_U32("feed_forward_length", e->ffn);
    ARCH_U32("rope.dimension_count", e->hidden / e->heads);
    ARCH_U32("attention.head_count", e->heads);
    ARCH_U32("attention.head_count_kv", e->kv_heads);
#undef ARCH_U32
    float f;
    snprintf(k, sizeof k, "%s.attention.layer_norm_rms_epsilon", e->arch);
    cr_assert(bn_gguf_get_f32(g, k, &f, &err) == 0 && f == 1e-5f, "%s", k);
    snprintf(k, sizeof k, "%s.rope.freq_base", e->arch);
    cr_assert(bn_gguf_get_f32(g, k, &f, &err) == 0 && f == e->theta, "%s", k);
    cr_assert_eq(get_u32(g, "general.file_type"), e->file_type);
    cr_assert_eq(get_u32(g, "general.quantization_version"), 2);

    /* tokenizer */
    cr_assert(bn_gguf_get_str(g, "tokenizer.ggml.model", &s, &err) == 0 && str_is(s, "gpt2"));
    struct bn_gguf_arr tok, types, merges;
    cr_assert_eq(bn_gguf_get_arr(g, "tokenizer.ggml.tokens", &tok, &err), 0, "%s", err.msg);
    cr_assert_eq(tok.type, BN_GGUF_STRING);
    snprintf(k, sizeof k, "%s.vocab_size", e->arch);
    uint32_t n_vocab = get_u32(g, k);
    cr_assert_eq(tok.n, n_vocab);
    cr_assert_eq(bn_gguf_get_arr(g, "tokenizer.ggml.token_type", &types, &err), 0, "%s", err.msg);
    cr_assert_eq(types.n, n_vocab);
    cr_assert_eq(bn_gguf_get_arr(g, "tokenizer.ggml.merges", &merges, &err), 0, "%s", err.msg);
    cr_assert_eq(merges.type, BN_GGUF_STRING);
    uint32_t bos = get_u32(g, "tokenizer.ggml.bos_token_id"), eos = get_u32(g, "tokenizer.ggml.eos_token_id");
    cr_assert(str_is(bn_gguf_arr_str(&tok, bos), "<|begin_of_text|>"));
    cr_assert(str_is(bn_gguf_arr_str(&tok, eos), "<|end_of_text|>"));
    cr_assert_eq(bn_gguf_arr_int(&types, bos), 3, "BOS is a CONTROL token");
    bool add_bos;
    cr_assert(bn_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &add_bos, &err) == 0 && add_bos);

    /* tensors, in order */
    int64_t h = e->hidden, ff = e->ffn, kv = (int64_t)(e->hidden / e->heads) * e->kv_heads;
    cr_assert_eq(bn_gguf_n_tensors(g), 11 * (int64_t)e->layers + 2);
    struct {
        const char *name;
        enum bn_type type;
        int64_t ne0, ne1; /* ne1 = 0: one dimension */
    } want[11 * 64 + 2];
    cr_assert(e->layers <= 64);
    int n = 0;
    want[n++] = (typeof(want[0])){"token_embd.weight", e->etype, h, n_vocab};
    static char names[64][11][BN_GGUF_MAX_NAME];
    static const char *suffix[11] = {"attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "attn_sub_norm",
                                     "ffn_norm", "ffn_gate", "ffn_up", "ffn_down", "ffn_sub_norm"};
    for (uint32_t l = 0; l < e->layers; l++) {
        for (int j = 0; j < 11; j++)
            snprintf(names[l][j], BN_GGUF_MAX_NAME, "blk.%u.%s.weight", l, suffix[j]);
        want[n++] = (typeof(want[0])){names[l][0], BN_TYPE_F32, h, 0};
        want[n++] = (typeof(want[0])){names[l][1], e->wtype, h, h};
        want[n++] = (typeof(want[0])){names[l][2], e->wtype, h, kv};
        want[n++] = (typeof(want[0])){names[l][3], e->wtype, h, kv};
        want[n++] = (typeof(want[0])){names[l][4], e->wtype, h, h};
        want[n++] = (typeof(want[0])){names[l][5], BN_TYPE_F32, h, 0};
        want[n++] = (typeof(want[0])){names[l][6], BN_TYPE_F32, h, 0};
        want[n++] = (typeof(want[0])){names[l][7], e->wtype, h, ff};
        want[n++] = (typeof(want[0])){names[l][8], e->wtype, h, ff};
        want[n++] = (typeof(want[0])){names[l][9], e->wtype, ff, h};
        want[n++] = (typeof(want[0])){names[l][10], BN_TYPE_F32, ff, 0};
    }
    want[n++] = (typeof(want[0])){"output_norm.weight", BN_TYPE_F32, h, 0};
    for (int i = 0; i < n; i++) {
        const struct bn_gguf_tensor *t = bn_gguf_tensor(g, i);
        cr_assert(str_is(t->name, want[i].name), "tensor %d is %.*s, want %s", i, (int)t->name.len,
                  t->name.ptr, want[i].name);
        cr_assert_eq(t->type, want[i].type, "%s: %s", want[i].name, bn_type_name(t->type));
        cr_assert_eq(t->n_dims, want[i].ne1 ? 2u : 1u, "%s", want[i].name);
        cr_assert(t->ne[0] == want[i].ne0 && t->ne[1] == (want[i].ne1 ? want[i].ne1 : 1), "%s",
                  want[i].name);
    }
    cr_assert_null(bn_gguf_find_tensor(g, "output.weight"), "the head is tied");
    if (n_vocab_out)
        *n_vocab_out = n_vocab;
}

/* Dequantize a whole tensor with the traits. */
static float *tensor_floats(const struct bn_gguf_tensor *t)
{
    const struct bn_type_traits *tr = bn_type_traits(t->type);
    int64_t rows = t->ne[1] * t->ne[2] * t->ne[3], cols = t->ne[0];
    float *v = malloc((size_t)(rows * cols) * sizeof *v);
    cr_assert(v);
    float scale = bn_tensor_scale(t->type, t->data, rows, cols);
    size_t rb = bn_row_bytes(t->type, cols);
    for (int64_t r = 0; r < rows; r++)
        tr->row_to_float((const uint8_t *)t->data + (size_t)r * rb, v + r * cols, cols, scale);
    return v;
}

/* The weight recipe: ternary 1/3 zeros and one fp16 scale in range, norms ~1, the
 * embedding with std ~0.02. */
static void check_weights(const struct bn_gguf *g)
{
    const struct bn_gguf_tensor *t = bn_gguf_find_tensor(g, "blk.0.ffn_down.weight");
    int64_t n = t->ne[0] * t->ne[1];
    float *v = tensor_floats(t);
    float s = 0;
    int64_t zeros = 0, pos = 0;
    for (int64_t i = 0; i < n; i++) {
        if (v[i] == 0) {
            zeros++;
            continue;
        }
        if (s == 0)
            s = fabsf(v[i]);
        cr_assert_eq(fabsf(v[i]), s, "one scale per tensor");
        pos += v[i] > 0;
    }
    cr_assert(zeros > n * 0.30 && zeros < n * 0.37, "zeros %lld of %lld", (long long)zeros, (long long)n);
    cr_assert(pos > (n - zeros) * 0.45 && pos < (n - zeros) * 0.55);
    cr_assert_eq(bn_f16_to_f32(bn_f32_to_f16(s)), s, "scale %g is fp16-representable", s);
    double c = s * sqrt(2.0 / 3.0 * (double)t->ne[0]);
    cr_assert(c > 0.49 && c < 2.01, "scale constant %g", c);
    free(v);

    t = bn_gguf_find_tensor(g, "blk.0.attn_norm.weight");
    v = tensor_floats(t);
    double mean = 0;
    for (int64_t i = 0; i < t->ne[0]; i++)
        mean += v[i];
    mean /= (double)t->ne[0];
    cr_assert(fabs(mean - 1.0) < 0.02, "norm mean %g", mean);
    free(v);

    t = bn_gguf_find_tensor(g, "token_embd.weight");
    v = tensor_floats(t);
    n = t->ne[0] * t->ne[1];
    double sum = 0, sq = 0;
    for (int64_t i = 0; i < n; i++) {
        sum += v[i];
        sq += (double)v[i] * v[i];
    }
    double sd = sqrt(sq / (double)n - (sum / (double)n) * (sum / (double)n));
    cr_assert(fabs(sd - 0.02) < 0.002, "embedding std %g", sd);
    free(v);
}

static bool same_bytes(const char *a, const char *b)
{
    struct bn_mapped_file ma, mb;
    struct bn_err err;
    cr_assert_eq(bn_map_file(a, &ma, &err), 0, "%s", err.msg);
    cr_assert_eq(bn_map_file(b, &mb, &err), 0, "%s", err.msg);
    bool same = ma.size == mb.size && memcmp(ma.base, mb.base, ma.size) == 0;
    bn_unmap_file(&ma);
    bn_unmap_file(&mb);
    return same;
}

Test(mkmodel, tiny_builtin_vocab)
{
    const char *out = path_in_tmp("tiny.gguf");
    cr_assert_eq(run_mkmodel((const char *[]){"--preset", "tiny", "--seed", "7", "--out", out, NULL}), 0,
                 "%s", errbuf);
    struct opened o;
    open_model(&o, out);
    struct expect e = {"bitnet-b1.58", 2, 256, 640, 4, 2, 256, 10000.0f, BN_TYPE_I2_S, BN_TYPE_F16, 40};
    uint32_t n_vocab;
    check_model(o.g, &e, &n_vocab);
    check_weights(o.g);

    /* built-in vocabulary: 256 byte tokens, learned merges, specials; pre key set */
    struct bn_err err;
    struct bn_str s;
    cr_assert(bn_gguf_get_str(o.g, "tokenizer.ggml.pre", &s, &err) == 0 && str_is(s, "llama-bpe"));
    struct bn_gguf_arr tok, types, merges;
    bn_gguf_get_arr(o.g, "tokenizer.ggml.tokens", &tok, &err);
    bn_gguf_get_arr(o.g, "tokenizer.ggml.token_type", &types, &err);
    bn_gguf_get_arr(o.g, "tokenizer.ggml.merges", &merges, &err);
    cr_assert(n_vocab > 256 + 100 && n_vocab < 1000, "vocab %u", n_vocab);
    cr_assert(str_is(bn_gguf_arr_str(&tok, 0), "!"), "GPT-2 byte order starts with '!'");
    cr_assert(str_is(bn_gguf_arr_str(&tok, 255), "\xc5\x83"), "byte 0xad maps to U+0143, last"); 
    cr_assert(merges.n >= 100, "%llu merges", (unsigned long long)merges.n);
    cr_assert_eq(n_vocab, 256 + merges.n + 8);
    /* every merge is "a b" whose parts and join are tokens */
    for (uint64_t m = 0; m < merges.n; m++) {
        struct bn_str ms = bn_gguf_arr_str(&merges, m);
        const char *sp = memchr(ms.ptr, ' ', ms.len);
        cr_assert(sp, "merge %llu has no space", (unsigned long long)m);
        struct bn_str joined = bn_gguf_arr_str(&tok, 256 + m);
        cr_assert_eq(joined.len, ms.len - 1);
        cr_assert(memcmp(joined.ptr, ms.ptr, (size_t)(sp - ms.ptr)) == 0);
        cr_assert(memcmp(joined.ptr + (sp - ms.ptr), sp + 1, ms.len - (size_t)(sp - ms.ptr) - 1) == 0);
        cr_assert_eq(bn_gguf_arr_int(&types, 256 + m), 1);
    }
    bool has_eot = false;
    for (uint64_t i = n_vocab - 8; i < n_vocab; i++) {
        cr_assert_eq(bn_gguf_arr_int(&types, i), 3);
        has_eot |= str_is(bn_gguf_arr_str(&tok, i), "<|eot_id|>");
    }
    cr_assert(has_eot);
    close_model(&o);

    /* same seed, same bytes; another seed, other bytes */
    const char *again = path_in_tmp("tiny-again.gguf");
    cr_assert_eq(run_mkmodel((const char *[]){"--seed", "7", "--out", again, NULL}), 0, "%s", errbuf);
    cr_assert(same_bytes(out, again), "two runs with seed 7 differ");
    const char *threads = path_in_tmp("tiny-threads.gguf");
    cr_assert_eq(run_mkmodel((const char *[]){"--seed", "7", "--threads", "3", "--out", threads, NULL}), 0,
                 "%s", errbuf);
    cr_assert(same_bytes(out, threads), "the thread count changed the bytes");
    const char *other = path_in_tmp("tiny-other.gguf");
    cr_assert_eq(run_mkmodel((const char *[]){"--seed", "8", "--out", other, NULL}), 0, "%s", errbuf);
    cr_assert_not(same_bytes(out, other), "seeds 7 and 8 gave the same file");
}

Test(mkmodel, small_tq_formats_and_embeddings)
{
    struct {
        const char *weights, *embd;
        enum bn_type wtype, etype;
        uint32_t file_type;
    } cases[] = {
        {"tq2_0", "q8_0", BN_TYPE_TQ2_0, BN_TYPE_Q8_0, 37},
        {"tq1_0", "q6_k", BN_TYPE_TQ1_0, BN_TYPE_Q6_K, 36},
        {"i2_s", "f32", BN_TYPE_I2_S, BN_TYPE_F32, 40},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *out = path_in_tmp("small.gguf");
        cr_assert_eq(run_mkmodel((const char *[]){"--preset", "small", "--layers", "1", "--arch", "bitnet-25",
                                                  "--weights", cases[i].weights, "--embd", cases[i].embd,
                                                  "--ctx", "2048", "--rope-theta", "10000", "--out", out, NULL}),
                     0, "%s", errbuf);
        struct opened o;
        open_model(&o, out);
        struct expect e = {"bitnet-25", 1, 512, 1536, 8, 2, 2048, 10000.0f, cases[i].wtype, cases[i].etype,
                           cases[i].file_type};
        check_model(o.g, &e, NULL);
        check_weights(o.g);
        close_model(&o);
    }
}

Test(mkmodel, llama3_vocab)
{
    const char *data = getenv("BITNET_TEST_DATA");
    char vocab[1024];
    snprintf(vocab, sizeof vocab, "%s/llama3/tokenizer.json", data ? data : "");
    if (!data || !*data || access(vocab, R_OK) != 0)
        cr_skip_test("the Llama-3 tokenizer (../shared/data/llama3/tokenizer.json) is absent; "
                     "configure --with-test-data=DIR to run this test");
    const char *out = path_in_tmp("tiny-llama3.gguf");
    cr_assert_eq(run_mkmodel((const char *[]){"--preset", "tiny", "--layers", "1", "--vocab", vocab, "--out",
                                              out, NULL}),
                 0, "%s", errbuf);
    struct opened o;
    open_model(&o, out);
    struct expect e = {"bitnet-b1.58", 1, 256, 640, 4, 2, 256, 10000.0f, BN_TYPE_I2_S, BN_TYPE_F16, 40};
    uint32_t n_vocab;
    check_model(o.g, &e, &n_vocab);
    cr_assert_eq(n_vocab, 128256);
    cr_assert_eq(bn_gguf_find_key(o.g, "tokenizer.ggml.pre"), -1, "the 2B-4T file has no pre key");
    struct bn_err err;
    struct bn_gguf_arr tok, types, merges;
    bn_gguf_get_arr(o.g, "tokenizer.ggml.tokens", &tok, &err);
    bn_gguf_get_arr(o.g, "tokenizer.ggml.token_type", &types, &err);
    bn_gguf_get_arr(o.g, "tokenizer.ggml.merges", &merges, &err);
    cr_assert_eq(merges.n, 280147);
    struct bn_str m0 = bn_gguf_arr_str(&merges, 0);
    cr_assert(str_is(m0, "\xc4\xa0 \xc4\xa0"), "first merge is 'Ġ Ġ'");
    cr_assert_eq(get_u32(o.g, "tokenizer.ggml.bos_token_id"), 128000);
    cr_assert_eq(get_u32(o.g, "tokenizer.ggml.eos_token_id"), 128001);
    cr_assert(str_is(bn_gguf_arr_str(&tok, 128009), "<|eot_id|>"));
    cr_assert_eq(bn_gguf_arr_int(&types, 128009), 3);
    cr_assert_eq(bn_gguf_arr_int(&types, 1000), 1);
    struct bn_str tpl;
    cr_assert_eq(bn_gguf_get_str(o.g, "tokenizer.chat_template", &tpl, &err), 0, "%s", err.msg);
    cr_assert(memmem(tpl.ptr, tpl.len, "<|start_header_id|>", 19));
    close_model(&o);
}

Test(mkmodel, vocab_copied_from_gguf)
{
    const char *data = getenv("BITNET_TEST_DATA");
    char src[1024];
    snprintf(src, sizeof src, "%s/ref/tinyA-i2s.gguf", data ? data : "");
    if (!data || !*data || access(src, R_OK) != 0)
        cr_skip_test("the reference GGUF files (../shared/data/ref) are absent; configure "
                     "--with-test-data=DIR to run this test");
    const char *out = path_in_tmp("copyvocab.gguf");
    cr_assert_eq(run_mkmodel((const char *[]){"--vocab", src, "--out", out, NULL}), 0, "%s", errbuf);
    struct opened o, ref;
    open_model(&o, out);
    open_model(&ref, src);
    struct expect e = {"bitnet-b1.58", 2, 256, 640, 4, 2, 256, 10000.0f, BN_TYPE_I2_S, BN_TYPE_F16, 40};
    uint32_t n_vocab;
    check_model(o.g, &e, &n_vocab);
    cr_assert_eq(n_vocab, 1003);
    /* every tokenizer.* key of the source, same type and bytes */
    struct bn_err err;
    const char *keys[] = {"tokenizer.ggml.pre", "tokenizer.ggml.model"};
    for (size_t i = 0; i < 2; i++) {
        struct bn_str a, b;
        cr_assert_eq(bn_gguf_get_str(o.g, keys[i], &a, &err), 0, "%s", err.msg);
        cr_assert_eq(bn_gguf_get_str(ref.g, keys[i], &b, &err), 0, "%s", err.msg);
        cr_assert(a.len == b.len && memcmp(a.ptr, b.ptr, a.len) == 0);
    }
    struct bn_gguf_arr a, b;
    bn_gguf_get_arr(o.g, "tokenizer.ggml.merges", &a, &err);
    bn_gguf_get_arr(ref.g, "tokenizer.ggml.merges", &b, &err);
    cr_assert_eq(a.n, b.n);
    for (uint64_t i = 0; i < a.n; i++) {
        struct bn_str x = bn_gguf_arr_str(&a, i), y = bn_gguf_arr_str(&b, i);
        cr_assert(x.len == y.len && memcmp(x.ptr, y.ptr, x.len) == 0);
    }
    close_model(&o);
    close_model(&ref);
}

Test(mkmodel, bad_flags)
{
    const char *out = path_in_tmp("bad.gguf");
    struct {
        const char *args[8];
        int status;
        const char *want;
    } cases[] = {
        {{"--layers", "abc", "--out", out}, 2, "--layers: 'abc' is not a whole number"},
        {{"--layers", "0", "--out", out}, 2, "--layers: 0 is out of range (1..1024)"},
        {{"--preset", "huge", "--out", out}, 2, "--preset: 'huge' is not one of 2b4t, small, tiny"},
        {{"--weights", "q4_0", "--out", out}, 2, "--weights: 'q4_0' is not one of i2_s, tq2_0, tq1_0"},
        {{"--embd", "bf16", "--out", out}, 2, "--embd: 'bf16' is not one of"},
        {{"--arch", "llama", "--out", out}, 2, "--arch: 'llama' is not bitnet-b1.58 or bitnet-25"},
        {{"--seed", "-1", "--out", out}, 2, "--seed: '-1'"},
        {{"--rope-theta", "0", "--out", out}, 2, "--rope-theta: '0' is not a positive number"},
        {{"--preset", "tiny"}, 2, "--out FILE is required"},
        {{"--bogus", "--out", out}, 2, "unknown option '--bogus'"},
        {{"--out"}, 2, "--out needs a value"},
        {{"--hidden", "302", "--out", out}, 2, "--hidden 302 is not a multiple of --heads 4"},
        {{"--hidden", "300", "--out", out}, 2, "head dim 75 (--hidden / --heads) must be even"},
        {{"--heads", "4", "--kv-heads", "3", "--out", out}, 2, "--heads 4 is not a multiple of --kv-heads 3"},
        {{"--hidden", "320", "--heads", "4", "--out", out}, 2, "must be multiples of 128, the I2_S block size"},
        {{"--weights", "tq2_0", "--out", out}, 2, "--hidden 256 and --ffn 640 must be multiples of 256, the TQ2_0"},
        {{"--vocab", "/nonexistent/tokenizer.json", "--out", out}, 1, "/nonexistent/tokenizer.json: cannot open"},
        {{"--out", "/nonexistent-dir/m.gguf"}, 1, "/nonexistent-dir/m.gguf.tmp: cannot create"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int st = run_mkmodel(cases[i].args);
        cr_assert_eq(st, cases[i].status, "case %zu: exit %d: %s", i, st, errbuf);
        cr_assert(strstr(errbuf, cases[i].want), "case %zu: stderr '%s' lacks '%s'", i, errbuf, cases[i].want);
        cr_assert_neq(access(out, F_OK), 0, "case %zu left a file", i);
    }
    /* a tokenizer.json that is not one */
    const char *bad_json = path_in_tmp("bad.json");
    FILE *f = fopen(bad_json, "w");
    fputs("{\"model\": {\"type\": \"Unigram\", \"vocab\": {}, \"merges\": []}}", f);
    fclose(f);
    cr_assert_eq(run_mkmodel((const char *[]){"--vocab", bad_json, "--out", out, NULL}), 1);
    cr_assert(strstr(errbuf, "model.type is Unigram; only BPE tokenizers are supported"), "%s", errbuf);
    f = fopen(bad_json, "w");
    fputs("{\"model\": {", f);
    fclose(f);
    cr_assert_eq(run_mkmodel((const char *[]){"--vocab", bad_json, "--out", out, NULL}), 1);
    cr_assert(strstr(errbuf, "bad.json: line 1:"), "%s", errbuf);
    cr_assert_eq(run_mkmodel((const char *[]){"--help", NULL}), 0);
}
