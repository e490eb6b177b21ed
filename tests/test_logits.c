/* tests/test_logits.c — our logits against the peer engine's (bitnet.cpp) on the
 * tiny reference models of ../shared/data/ref, through the reference pass and the
 * fast pass on every kernel path of this CPU.  Tolerances from ref/README.md.
 *
 * One test per group of files that hold the same weights (an I2_S file, its TQ2_0 /
 * TQ1_0 variants and the .bitnet-b1.58.gguf copies): each file's logits are computed
 * once per mode and serve all checks.  Measured figures go to stderr
 * (tests/test-logits.log). */
#include "logits_fixture.h"

/* Check 1 (graph, no activation quantization) vs <family>.f16src.logits.bin. */
#define GRAPH_COS_MIN 0.99999
#define GRAPH_MAX_ABS 0.01
#define GRAPH_TOP1_MARGIN 0.005
/* Check 2 (per-token int8 activations) vs the I2_S <model>.logits.bin. */
#define AQ_COS_MIN 0.998
#define AQ_COS_MEDIAN 0.999
#define AQ_RMS 0.03
#define AQ_TOP1_MARGIN 0.1
/* Check 3 (greedy): steps where the peer's top-2 margin is at least this count. */
#define GREEDY_MARGIN 0.1
/* Reference vs fast pass without activation quantization: float summation noise ... */
#define REF_NOAQ_COS_MIN 0.999999
#define REF_NOAQ_MAX_ABS 1e-3
/* ... except with a Q8_0 / Q6_K head, whose SIMD kernels quantize the head's input to
 * int8 per block as ggml does (Q8_0 / Q8_K activations), while the reference pass
 * multiplies it in float: about 1e-2 of difference in the logits. */
#define REF_NOAQ_QHEAD_COS_MIN 0.9999
#define REF_NOAQ_QHEAD_MAX_ABS 0.05

#define MAX_GROUP 16
#define MAX_MODES (1 + BN_PATH_COUNT)

/* The group a file belongs to: its name without ".bitnet-b1.58" and with a TQ type
 * replaced by I2_S (the file the group's variants are compared with). */
static void group_key(const char *name, char *out, size_t len)
{
    fx_base_name(name, out, len);
    char *tq = strstr(out, "-tq");
    if (tq) {
        char rest[256];
        const char *after = strchr(tq + 1, '-');
        snprintf(rest, sizeof rest, "%s", after ? after : "");
        snprintf(tq, len - (size_t)(tq - out), "-i2s%s", rest);
    }
}

/* tinyA-i2s -> tinyA */
static void family(const char *name, char *out, size_t len)
{
    fx_base_name(name, out, len);
    char *dash = strchr(out, '-');
    if (dash)
        *dash = '\0';
}

struct group_param {
    char key[128];
};

ParameterizedTestParameters(logits, group)
{
    static struct group_param none = {.key = ""};
    const char *dir = fx_ref_dir_find();
    char *names[FX_MAX_MODELS];
    int n = dir ? fx_list_models(dir, names) : 0;
    if (n == 0)
        return cr_make_param_array(struct group_param, &none, 1); /* the test skips */
    struct group_param *p = cr_malloc(sizeof *p * (size_t)n);
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        char key[128];
        group_key(names[i], key, sizeof key);
        bool seen = false;
        for (size_t j = 0; j < k; j++)
            seen = seen || strcmp(p[j].key, key) == 0;
        if (!seen)
            snprintf(p[k++].key, sizeof p[0].key, "%s", key);
        free(names[i]);
    }
    return cr_make_param_array(struct group_param, p, k, NULL);
}

struct member {
    char name[128];
    char path[FX_PATH_MAX + 160];
    float *aq[MAX_MODES], *noaq[MAX_MODES]; /* [48][V] per mode */
    enum bn_type head_type;
};

static void check_graph(const struct member *f, const struct fx_mode *mode, const float *ours,
                        const float *peer, int n, int V)
{
    struct fx_stats st;
    fx_compare(ours, peer, n, V, GRAPH_TOP1_MARGIN, &st);
    fx_log("check1", f->name, mode->name, &st);
    cr_expect(st.cos_min >= GRAPH_COS_MIN, "%s %s: check 1 cos min %.7f < %g", f->name, mode->name,
              st.cos_min, GRAPH_COS_MIN);
    cr_expect(st.max_abs <= GRAPH_MAX_ABS, "%s %s: check 1 max |diff| %.5f > %g", f->name,
              mode->name, st.max_abs, GRAPH_MAX_ABS);
    cr_expect(st.top1_bad == 0, "%s %s: check 1 top-1 differs at position %d (peer margin > %g)",
              f->name, mode->name, st.first_bad_pos, GRAPH_TOP1_MARGIN);
}

static void check_act_quant(const struct member *f, const struct fx_mode *mode, const float *ours,
                            const float *peer, int n, int V)
{
    struct fx_stats st;
    fx_compare(ours, peer, n, V, AQ_TOP1_MARGIN, &st);
    fx_log("check2", f->name, mode->name, &st);
    cr_expect(st.cos_min >= AQ_COS_MIN, "%s %s: check 2 cos min %.7f < %g", f->name, mode->name,
              st.cos_min, AQ_COS_MIN);
    cr_expect(st.cos_med >= AQ_COS_MEDIAN, "%s %s: check 2 cos median %.7f < %g", f->name,
              mode->name, st.cos_med, AQ_COS_MEDIAN);
    cr_expect(st.rms <= AQ_RMS, "%s %s: check 2 RMS %.5f > %g", f->name, mode->name, st.rms, AQ_RMS);
    cr_expect(st.top1_bad == 0, "%s %s: check 2 top-1 differs at position %d (peer margin > %g)",
              f->name, mode->name, st.first_bad_pos, AQ_TOP1_MARGIN);
}

/* Check 3.  Teacher forcing: prompt + the peer's generated ids in one batch; the
 * argmax after position n_prompt - 1 + j must be gen[j] wherever the peer's margin
 * was >= GREEDY_MARGIN.  Free running like the peer: the prompt in one call, then
 * one greedy token per call; our ids must equal the peer's until its first step
 * with a margin below GREEDY_MARGIN. */
static void check_greedy(const struct member *f, const struct fx_mode *mode, const struct bn_model *m,
                         const struct fx_greedy *g)
{
    int V = bn_model_get_info(m)->n_vocab;
    int32_t seq[FX_MAX_TOKENS];
    memcpy(seq, g->prompt, (size_t)g->n_prompt * sizeof *seq);
    memcpy(seq + g->n_prompt, g->gen, (size_t)g->n_gen * sizeof *seq);
    int n = g->n_prompt + g->n_gen - 1; /* the last generated id is never fed */
    float *tf = fx_run(m, seq, n, n, BN_KV_DEFAULT_TYPE);
    int checked = 0, bad = 0, agree = 0;
    for (int j = 0; j < g->n_gen; j++) {
        int got = fx_argmax(tf + (size_t)(g->n_prompt - 1 + j) * V, V);
        agree += got == g->gen[j];
        if (g->margin[j] < GREEDY_MARGIN)
            continue;
        checked++;
        if (got != g->gen[j]) {
            bad++;
            cr_expect(0, "%s %s: teacher-forced step %d: argmax %d, peer %d (margin %.4f)", f->name,
                      mode->name, j, got, g->gen[j], g->margin[j]);
        }
    }
    free(tf);

    int n_free = 0;
    while (n_free < g->n_gen && g->margin[n_free] >= GREEDY_MARGIN)
        n_free++;
    struct bn_ctx *ctx = NULL;
    struct bn_err err = {{0}};
    struct bn_batch b;
    int32_t s;
    cr_assert(bn_ctx_new(m, NULL, &ctx, &err) == 0 && bn_seq_new(ctx, &s, &err) == 0 &&
                  bn_batch_init(&b, g->n_prompt, &err) == 0, "%s", err.msg);
    for (int i = 0; i < g->n_prompt; i++)
        bn_batch_add(&b, g->prompt[i], s, i, i == g->n_prompt - 1, NULL);
    cr_assert(bn_decode(ctx, &b, &err) == 0, "%s", err.msg);
    int same = 0;
    const float *last = bn_ctx_logits(ctx, g->n_prompt - 1);
    for (int j = 0; j < n_free; j++) {
        int32_t id = fx_argmax(last, V);
        if (id != g->gen[j]) {
            cr_expect(0, "%s %s: free-running id %d differs from the peer's %d at step %d", f->name,
                      mode->name, id, g->gen[j], j);
            break;
        }
        same++;
        bn_batch_clear(&b);
        bn_batch_add(&b, id, s, g->n_prompt + j, true, NULL);
        cr_assert(bn_decode(ctx, &b, &err) == 0, "%s", err.msg);
        last = bn_ctx_logits(ctx, 0);
    }
    bn_batch_free(&b);
    bn_ctx_free(ctx);
    fprintf(stderr, "greedy   %-34s %-14s teacher-forced: %d/%d steps with margin >= %.1f agree "
                    "(%d/%d overall); free-running: %d/%d steps up to the first margin < %.1f agree\n",
            f->name, mode->name, checked - bad, checked, GREEDY_MARGIN, agree, g->n_gen, same,
            n_free, GREEDY_MARGIN);
}

ParameterizedTest(struct group_param *gp, logits, group, .timeout = 600)
{
    const char *dir = fx_ref_dir();
    cr_assert(gp->key[0], "no model files in %s", dir);
    struct fx_mode modes[MAX_MODES];
    int n_modes = fx_modes(modes);
    int32_t ids[FX_MAX_TOKENS];
    int n_ids = fx_tokens(dir, ids);

    /* Members: the group's original first (the file named like the key). */
    char *names[FX_MAX_MODELS];
    int n_names = fx_list_models(dir, names);
    static struct member mem[MAX_GROUP];
    int n_mem = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < n_names; i++) {
            char key[128];
            group_key(names[i], key, sizeof key);
            bool is_orig = strcmp(names[i], gp->key) == 0;
            if (strcmp(key, gp->key) != 0 || is_orig != (pass == 0) || n_mem == MAX_GROUP)
                continue;
            struct member *f = &mem[n_mem++];
            snprintf(f->name, sizeof f->name, "%s", names[i]);
            snprintf(f->path, sizeof f->path, "%s/%s.gguf", dir, names[i]);
        }
    }
    for (int i = 0; i < n_names; i++)
        free(names[i]);
    cr_assert(n_mem > 0 && strcmp(mem[0].name, gp->key) == 0, "group %s has no file %s.gguf",
              gp->key, gp->key);

    char fam[128], path[FX_PATH_MAX + 300];
    family(gp->key, fam, sizeof fam);
    size_t n_f16, n_aq;
    snprintf(path, sizeof path, "%s/%s.f16src.logits.bin", dir, fam);
    float *peer_f16 = strstr(gp->key, "embq6k") ? NULL : fx_read_floats(path, &n_f16);
    snprintf(path, sizeof path, "%s/%s.logits.bin", dir, gp->key);
    float *peer_aq = fx_read_floats(path, &n_aq);
    cr_assert(peer_aq, "%s is missing", path);

    int V = 0;
    for (int i = 0; i < n_mem; i++) {
        struct member *f = &mem[i];
        char base[256];
        fx_base_name(f->name, base, sizeof base);
        struct fx_greedy g;
        snprintf(path, sizeof path, "%s/%s.greedy.json", dir, base);
        /* a .bitnet-b1.58 copy shares its original's greedy file; check 4 shows
         * its logits are the original's, bit for bit */
        bool greedy = strcmp(base, f->name) == 0 && fx_greedy_load(path, &g);
        for (int k = 0; k < n_modes; k++) {
            struct bn_model *m = fx_load(f->path, &modes[k], false, 2);
            V = bn_model_get_info(m)->n_vocab;
            f->head_type = bn_model_get_info(m)->head_type;
            cr_assert_eq(n_aq, (size_t)n_ids * V, "%s.logits.bin: size", gp->key);
            f->aq[k] = fx_run(m, ids, n_ids, n_ids, BN_KV_DEFAULT_TYPE);
            check_act_quant(f, &modes[k], f->aq[k], peer_aq, n_ids, V);
            if (greedy)
                check_greedy(f, &modes[k], m, &g);
            bn_model_free(m);

            m = fx_load(f->path, &modes[k], true, 2);
            f->noaq[k] = fx_run(m, ids, n_ids, n_ids, BN_KV_DEFAULT_TYPE);
            if (peer_f16) {
                cr_assert_eq(n_f16, (size_t)n_ids * V, "%s.f16src.logits.bin: size", fam);
                check_graph(f, &modes[k], f->noaq[k], peer_f16, n_ids, V);
            }
            bn_model_free(m);

            /* Check 4: same ternary values, per-token activations for every format,
             * exact integer dot products: bit-identical to the group's original. */
            if (i > 0) {
                size_t bytes = (size_t)n_ids * V * sizeof(float);
                cr_expect(memcmp(f->aq[k], mem[0].aq[k], bytes) == 0 &&
                              memcmp(f->noaq[k], mem[0].noaq[k], bytes) == 0,
                          "%s %s: logits differ from %s", f->name, modes[k].name, mem[0].name);
                fprintf(stderr, "check4   %-34s %-14s %s %s.gguf\n", f->name, modes[k].name,
                        memcmp(f->aq[k], mem[0].aq[k], bytes) == 0 &&
                                memcmp(f->noaq[k], mem[0].noaq[k], bytes) == 0
                            ? "bit-identical to"
                            : "DIFFERENT from",
                        mem[0].name);
            }
        }
    }

    /* The reference pass (mode 0) against the fast pass on each path, original only.
     * Without activation quantization the two agree to summation noise; with it a
     * last-bit difference anywhere flips a few int8 codes (ref/README.md), so the
     * comparison uses check 2's tolerances. */
    for (int k = 1; k < n_modes; k++) {
        struct fx_stats st;
        fx_compare(mem[0].noaq[k], mem[0].noaq[0], n_ids, V, GRAPH_TOP1_MARGIN, &st);
        fx_log("ref-noaq", mem[0].name, modes[k].name, &st);
        bool qhead = mem[0].head_type == BN_TYPE_Q8_0 || mem[0].head_type == BN_TYPE_Q6_K;
        cr_expect(st.cos_min >= (qhead ? REF_NOAQ_QHEAD_COS_MIN : REF_NOAQ_COS_MIN) &&
                      st.max_abs <= (qhead ? REF_NOAQ_QHEAD_MAX_ABS : REF_NOAQ_MAX_ABS),
                  "%s %s vs reference (no act quant): cos min %.7f, max |diff| %.5f", mem[0].name,
                  modes[k].name, st.cos_min, st.max_abs);
        fx_compare(mem[0].aq[k], mem[0].aq[0], n_ids, V, AQ_TOP1_MARGIN, &st);
        fx_log("ref-aq", mem[0].name, modes[k].name, &st);
        cr_expect(st.cos_min >= AQ_COS_MIN && st.cos_med >= AQ_COS_MEDIAN && st.rms <= AQ_RMS &&
                      st.top1_bad == 0,
                  "%s %s vs reference: cos min %.7f, median %.7f, rms %.5f", mem[0].name,
                  modes[k].name, st.cos_min, st.cos_med, st.rms);
    }

    for (int i = 0; i < n_mem; i++)
        for (int k = 0; k < n_modes; k++) {
            free(mem[i].aq[k]);
            free(mem[i].noaq[k]);
        }
    free(peer_f16);
    free(peer_aq);
}

/* bn_model_params.head_q8: the F16 head requantized to Q8_0 at load.  Its logits
 * against the F16 head's (same pass, same path) are logged as "headq8"; they must
 * still pass check 2 against the peer and keep every top-1 whose F16 margin is at
 * least AQ_TOP1_MARGIN. */
#define HEADQ8_COS_MIN 0.9995
Test(logits, head_q8, .timeout = 300)
{
    const char *dir = fx_ref_dir();
    static const char *const files[] = {"tinyA-i2s", "tinyB-i2s"};
    struct fx_mode modes[MAX_MODES];
    int n_modes = fx_modes(modes);
    int32_t ids[FX_MAX_TOKENS];
    int n_ids = fx_tokens(dir, ids);
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[FX_PATH_MAX + 160], peer_path[FX_PATH_MAX + 160];
        snprintf(path, sizeof path, "%s/%s.gguf", dir, files[i]);
        snprintf(peer_path, sizeof peer_path, "%s/%s.logits.bin", dir, files[i]);
        size_t n_peer;
        float *peer = fx_read_floats(peer_path, &n_peer);
        cr_assert(peer, "%s is missing", peer_path);
        for (int k = 1; k < n_modes; k++) { /* the fast passes (the reference ignores it) */
            struct bn_model *m = fx_load(path, &modes[k], false, 2);
            const struct bn_model_info *in = bn_model_get_info(m);
            cr_assert_eq(in->head_type, BN_TYPE_F16, "%s: head is %s, this test wants F16",
                         files[i], bn_type_name(in->head_type));
            int V = in->n_vocab;
            float *f16 = fx_run(m, ids, n_ids, n_ids, BN_KV_DEFAULT_TYPE);
            bn_model_free(m);

            struct bn_model_params mp;
            bn_model_params_default(&mp);
            mp.path = modes[k].path;
            mp.n_threads = 2;
            mp.head_q8 = true;
            struct bn_err err = {{0}};
            cr_assert(bn_model_load_file(path, &mp, &m, &err) == 0, "%s", err.msg);
            in = bn_model_get_info(m);
            cr_expect_eq(in->head_layout, BN_TYPE_Q8_0, "%s %s: head read as %s", files[i],
                         modes[k].name, bn_type_name(in->head_layout));
            cr_expect_eq(in->head_type, BN_TYPE_F16, "head_type stays the file's type");
            float *q8 = fx_run(m, ids, n_ids, n_ids, BN_KV_DEFAULT_TYPE);
            bn_model_free(m);

            struct fx_stats st;
            fx_compare(q8, f16, n_ids, V, AQ_TOP1_MARGIN, &st);
            fx_log("headq8", files[i], modes[k].name, &st);
            cr_expect(st.cos_min >= HEADQ8_COS_MIN && st.top1_bad == 0,
                      "%s %s: Q8_0 head vs F16 head: cos min %.7f, top-1 differs at %d", files[i],
                      modes[k].name, st.cos_min, st.first_bad_pos);
            struct member f = {0};
            snprintf(f.name, sizeof f.name, "%s+headq8", files[i]);
            check_act_quant(&f, &modes[k], q8, peer, n_ids, V);
            free(f16);
            free(q8);
        }
        free(peer);
    }
}
