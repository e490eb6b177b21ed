/* tests/logits_fixture.h — reading the reference outputs of ../shared/data/ref
 * (README there), running our engine on token lists, and comparing logits. */
#ifndef BN_TEST_LOGITS_FIXTURE_H
#define BN_TEST_LOGITS_FIXTURE_H

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitnet.h"

#define FX_MAX_MODELS 64
#define FX_MAX_TOKENS 256
#define FX_PATH_MAX 1024

/* ../shared/data/ref when it holds tokens.json, else NULL. */
static inline const char *fx_ref_dir_find(void)
{
    static char dir[FX_PATH_MAX];
    const char *d = getenv("BITNET_TEST_DATA");
    if (d && *d) {
        snprintf(dir, sizeof dir, "%s/ref", d);
        char probe[FX_PATH_MAX + 32];
        snprintf(probe, sizeof probe, "%s/tokens.json", dir);
        FILE *f = fopen(probe, "r");
        if (f) {
            fclose(f);
            return dir;
        }
    }
    return NULL;
}

/* ../shared/data/ref, or skip the test with a sentence saying how to get it. */
static inline const char *fx_ref_dir(void)
{
    const char *dir = fx_ref_dir_find();
    if (!dir)
        cr_skip_test("reference outputs absent: BITNET_TEST_DATA/ref/tokens.json not found "
                     "(configure --with-test-data=DIR pointing at the shared data folder with ref/)");
    return dir;
}

static inline int fx_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names (without ".gguf") of every model file in the folder, sorted; caller frees. */
static inline int fx_list_models(const char *dir, char **names)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < FX_MAX_MODELS) {
        size_t len = strlen(e->d_name);
        if (len > 5 && strcmp(e->d_name + len - 5, ".gguf") == 0)
            names[n++] = strndup(e->d_name, len - 5);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, fx_cmp_str);
    return n;
}

/* "tinyB-i2s-embq6k.bitnet-b1.58" -> "tinyB-i2s-embq6k" (the peer's outputs are
 * shared by a file and its .bitnet-b1.58 copy). */
static inline void fx_base_name(const char *name, char *out, size_t len)
{
    size_t n = strlen(name) < len - 1 ? strlen(name) : len - 1;
    memcpy(out, name, n);
    out[n] = '\0';
    char *dot = strstr(out, ".bitnet-b1.58");
    if (dot)
        *dot = '\0';
}

/* The 48 ids of tokens.json. */
static inline int fx_tokens(const char *dir, int32_t *ids)
{
    char path[FX_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/tokens.json", dir);
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    cr_assert(root, "%s: %s", path, je.text);
    json_t *arr = json_object_get(root, "tokens");
    cr_assert(json_is_array(arr) && json_array_size(arr) <= FX_MAX_TOKENS);
    int n = (int)json_array_size(arr);
    for (int i = 0; i < n; i++)
        ids[i] = (int32_t)json_integer_value(json_array_get(arr, (size_t)i));
    json_decref(root);
    return n;
}

struct fx_greedy {
    int32_t prompt[FX_MAX_TOKENS], gen[FX_MAX_TOKENS];
    double margin[FX_MAX_TOKENS];
    int n_prompt, n_gen;
};

static inline bool fx_greedy_load(const char *path, struct fx_greedy *g)
{
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root)
        return false;
    json_t *p = json_object_get(root, "prompt"), *q = json_object_get(root, "generated"),
           *m = json_object_get(root, "top2_margin");
    cr_assert(json_is_array(p) && json_is_array(q) && json_is_array(m));
    g->n_prompt = (int)json_array_size(p);
    g->n_gen = (int)json_array_size(q);
    cr_assert(g->n_prompt + g->n_gen <= FX_MAX_TOKENS && json_array_size(m) == (size_t)g->n_gen);
    for (int i = 0; i < g->n_prompt; i++)
        g->prompt[i] = (int32_t)json_integer_value(json_array_get(p, (size_t)i));
    for (int i = 0; i < g->n_gen; i++) {
        g->gen[i] = (int32_t)json_integer_value(json_array_get(q, (size_t)i));
        g->margin[i] = json_number_value(json_array_get(m, (size_t)i));
    }
    json_decref(root);
    return true;
}

/* Whole file of float32; NULL when absent.  *n = floats. */
static inline float *fx_read_floats(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    float *v = malloc((size_t)len);
    cr_assert(v);
    cr_assert(fread(v, 1, (size_t)len, f) == (size_t)len);
    fclose(f);
    *n = (size_t)len / sizeof(float);
    return v;
}

/* How our engine runs. */
struct fx_mode {
    char name[32];
    bool reference;
    enum bn_path path;
};

/* The reference pass plus the fast pass on every kernel path this CPU has. */
static inline int fx_modes(struct fx_mode *modes)
{
    int n = 0;
    modes[n++] = (struct fx_mode){.name = "reference", .reference = true, .path = BN_PATH_SCALAR};
    for (int p = 0; p < BN_PATH_COUNT; p++) {
        if (!bn_path_supported((enum bn_path)p))
            continue;
        modes[n] = (struct fx_mode){.reference = false, .path = (enum bn_path)p};
        snprintf(modes[n].name, sizeof modes[n].name, "fast-%s", bn_path_name((enum bn_path)p));
        n++;
    }
    return n;
}

static inline struct bn_model *fx_load(const char *path, const struct fx_mode *mode, bool no_act_quant,
                                       int n_threads)
{
    struct bn_model_params mp;
    bn_model_params_default(&mp);
    mp.path = mode->path;
    mp.reference = mode->reference;
    mp.no_act_quant = no_act_quant;
    mp.n_threads = n_threads;
    struct bn_model *m = NULL;
    struct bn_err err = {{0}};
    cr_assert(bn_model_load_file(path, &mp, &m, &err) == 0, "%s", err.msg);
    return m;
}

/* Logits [n][n_vocab] of ids[0..n) fed to one fresh sequence, `step` tokens per
 * bn_decode call (n: one batch).  Caller frees. */
static inline float *fx_run(const struct bn_model *m, const int32_t *ids, int n, int step,
                            enum bn_type kv_type)
{
    int32_t V = bn_model_get_info(m)->n_vocab;
    struct bn_ctx_params cp;
    bn_ctx_params_default(&cp);
    cp.n_batch = step;
    cp.kv_type = kv_type;
    struct bn_ctx *ctx = NULL;
    struct bn_err err = {{0}};
    cr_assert(bn_ctx_new(m, &cp, &ctx, &err) == 0, "%s", err.msg);
    int32_t seq;
    cr_assert(bn_seq_new(ctx, &seq, &err) == 0, "%s", err.msg);
    struct bn_batch b;
    cr_assert(bn_batch_init(&b, step, &err) == 0, "%s", err.msg);
    float *out = malloc((size_t)n * (size_t)V * sizeof(float));
    cr_assert(out);
    for (int i0 = 0; i0 < n; i0 += step) {
        int len = n - i0 < step ? n - i0 : step;
        bn_batch_clear(&b);
        for (int j = 0; j < len; j++)
            bn_batch_add(&b, ids[i0 + j], seq, i0 + j, true, NULL);
        cr_assert(bn_decode(ctx, &b, &err) == 0, "%s", err.msg);
        for (int j = 0; j < len; j++)
            memcpy(out + (size_t)(i0 + j) * V, bn_ctx_logits(ctx, j), (size_t)V * sizeof(float));
    }
    bn_batch_free(&b);
    bn_ctx_free(ctx);
    return out;
}

static inline int fx_argmax(const float *x, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

/* Logit of the best minus the second best. */
static inline double fx_margin(const float *x, int n)
{
    int a = fx_argmax(x, n);
    float second = -INFINITY;
    for (int i = 0; i < n; i++)
        if (i != a && x[i] > second)
            second = x[i];
    return (double)x[a] - second;
}

struct fx_stats {
    double max_abs, rms, cos_min, cos_med;
    int top1_equal, n_pos;
    int top1_bad;            /* mismatches where the peer's margin > the threshold */
    int first_bad_pos;       /* -1: none */
    double cos[FX_MAX_TOKENS];
};

static inline int fx_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static inline void fx_compare(const float *ours, const float *peer, int n_pos, int V,
                              double margin_min, struct fx_stats *st)
{
    memset(st, 0, sizeof *st);
    st->n_pos = n_pos;
    st->first_bad_pos = -1;
    double se = 0.0;
    double sorted[FX_MAX_TOKENS];
    for (int t = 0; t < n_pos; t++) {
        const float *x = ours + (size_t)t * V, *y = peer + (size_t)t * V;
        double dot = 0, nx = 0, ny = 0;
        for (int i = 0; i < V; i++) {
            double d = (double)x[i] - y[i];
            se += d * d;
            if (fabs(d) > st->max_abs)
                st->max_abs = fabs(d);
            dot += (double)x[i] * y[i];
            nx += (double)x[i] * x[i];
            ny += (double)y[i] * y[i];
        }
        st->cos[t] = sorted[t] = dot / sqrt(nx * ny);
        if (fx_argmax(x, V) == fx_argmax(y, V)) {
            st->top1_equal++;
        } else if (fx_margin(y, V) > margin_min) {
            st->top1_bad++;
            if (st->first_bad_pos < 0)
                st->first_bad_pos = t;
        }
    }
    qsort(sorted, (size_t)n_pos, sizeof *sorted, fx_cmp_double);
    st->cos_min = sorted[0];
    st->cos_med = n_pos % 2 ? sorted[n_pos / 2] : 0.5 * (sorted[n_pos / 2 - 1] + sorted[n_pos / 2]);
    st->rms = sqrt(se / ((double)n_pos * V));
}

static inline void fx_log(const char *what, const char *model, const char *mode,
                          const struct fx_stats *st)
{
    fprintf(stderr, "%-8s %-34s %-14s max|diff| %.5f  rms %.5f  cos min %.7f  median %.7f  top-1 %d/%d\n",
            what, model, mode, st->max_abs, st->rms, st->cos_min, st->cos_med, st->top1_equal,
            st->n_pos);
}

#endif
