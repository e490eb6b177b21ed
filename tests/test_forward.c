/* tests/test_forward.c — batching, KV cache and sequence operations of the forward
 * pass, on the tiny reference models: one batch, one token per call and several
 * sequences stepped together must give the same logits bit for bit (every token's
 * arithmetic is independent of what else is in the batch), as must any thread
 * count; and bad batches are refused without changing anything. */
#include "logits_fixture.h"

#define N_LONG 300 /* tokens of the long synthetic sequence (3 KV chunks) */

static struct bn_model *load_model(const char *name, bool reference, int n_threads)
{
    const char *dir = fx_ref_dir();
    char path[FX_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s.gguf", dir, name);
    struct fx_mode mode = {.reference = reference, .path = BN_PATH_COUNT};
    if (reference)
        mode.path = BN_PATH_SCALAR;
    return fx_load(path, &mode, false, n_threads);
}

static int tokens48(int32_t *ids) { return fx_tokens(fx_ref_dir(), ids); }

/* Deterministic pseudo-random regular token ids (< 1000). */
static void synth_tokens(int32_t *ids, int n)
{
    uint32_t x = 12345;
    for (int i = 0; i < n; i++) {
        x = x * 1664525u + 1013904223u;
        ids[i] = (int32_t)((x >> 8) % 1000);
    }
}

static void expect_same(const float *a, const float *b, size_t n, const char *what)
{
    size_t diff = 0;
    double mx = 0;
    for (size_t i = 0; i < n; i++) {
        if (a[i] != b[i]) {
            diff++;
            mx = fmax(mx, fabs((double)a[i] - b[i]));
        }
    }
    cr_expect(diff == 0, "%s: %zu of %zu logits differ (max |diff| %g)", what, diff, n, mx);
}

static void batch_vs_incremental(const char *name, bool reference)
{
    struct bn_model *m = load_model(name, reference, 2);
    int32_t ids[FX_MAX_TOKENS];
    int n = tokens48(ids);
    size_t cnt = (size_t)n * bn_model_get_info(m)->n_vocab;
    float *one = fx_run(m, ids, n, n, BN_KV_DEFAULT_TYPE);
    float *incr = fx_run(m, ids, n, 1, BN_KV_DEFAULT_TYPE);
    float *chunks = fx_run(m, ids, n, 7, BN_KV_DEFAULT_TYPE);
    char what[128];
    snprintf(what, sizeof what, "%s%s one batch vs one token per call", name, reference ? " (reference)" : "");
    expect_same(one, incr, cnt, what);
    snprintf(what, sizeof what, "%s%s one batch vs batches of 7", name, reference ? " (reference)" : "");
    expect_same(one, chunks, cnt, what);
    fprintf(stderr, "%s%s: one batch, one token per call and batches of 7 give bit-identical logits\n",
            name, reference ? " (reference)" : "");
    free(one);
    free(incr);
    free(chunks);
    bn_model_free(m);
}

Test(forward, batch_equals_incremental)
{
    batch_vs_incremental("tinyA-i2s", false);
    batch_vs_incremental("tinyB-i2s", false);
    batch_vs_incremental("tinyA-i2s", true);
}

/* Three sequences of different lengths in one context: a mixed prefill batch
 * (entries interleaved), then steps of one token per unfinished sequence, each at its
 * own position.  Every logit row must equal the one from running that sequence alone. */
Test(forward, multi_sequence_steps)
{
    struct bn_model *m = load_model("tinyB-i2s", false, 2);
    int V = bn_model_get_info(m)->n_vocab;
    int32_t ids[FX_MAX_TOKENS];
    tokens48(ids);
    const int start[3] = {0, 10, 5}, len[3] = {20, 30, 43}, prefill[3] = {8, 5, 12};
    float *alone[3];
    for (int s = 0; s < 3; s++)
        alone[s] = fx_run(m, ids + start[s], len[s], len[s], BN_KV_DEFAULT_TYPE);

    struct bn_ctx_params cp;
    bn_ctx_params_default(&cp);
    cp.n_seq_max = 3;
    cp.n_batch = 32;
    struct bn_ctx *ctx = NULL;
    struct bn_err err = {{0}};
    cr_assert(bn_ctx_new(m, &cp, &ctx, &err) == 0, "%s", err.msg);
    int32_t sid[3];
    for (int s = 0; s < 3; s++)
        cr_assert(bn_seq_new(ctx, &sid[s], &err) == 0, "%s", err.msg);
    struct bn_batch b;
    cr_assert(bn_batch_init(&b, 32, &err) == 0);
    int done[3] = {0, 0, 0}, rows = 0;
    /* prefill: round-robin over the sequences' first tokens */
    for (int k = 0; k < 12; k++)
        for (int s = 0; s < 3; s++)
            if (k < prefill[s])
                bn_batch_add(&b, ids[start[s] + k], sid[s], k, true, NULL);
    for (;;) {
        cr_assert(bn_decode(ctx, &b, &err) == 0, "%s", err.msg);
        for (int64_t e = 0; e < b.n; e++) {
            int s = b.seq[e] == sid[0] ? 0 : b.seq[e] == sid[1] ? 1 : 2;
            const float *row = bn_ctx_logits(ctx, e);
            cr_assert(row);
            char what[96];
            snprintf(what, sizeof what, "sequence %d position %lld", s, (long long)b.pos[e]);
            expect_same(row, alone[s] + (size_t)b.pos[e] * V, (size_t)V, what);
            done[s] = (int)b.pos[e] + 1;
            rows++;
        }
        bn_batch_clear(&b);
        for (int s = 2; s >= 0; s--) /* a different order than the prefill */
            if (done[s] < len[s])
                bn_batch_add(&b, ids[start[s] + done[s]], sid[s], done[s], true, NULL);
        if (b.n == 0)
            break;
    }
    cr_expect_eq(rows, len[0] + len[1] + len[2]);
    for (int s = 0; s < 3; s++)
        cr_expect_eq(bn_seq_len(ctx, sid[s]), len[s]);
    fprintf(stderr, "multi-sequence: %d logit rows from a mixed prefill and per-sequence steps are "
                    "bit-identical to each sequence run alone\n", rows);
    bn_batch_free(&b);
    bn_ctx_free(ctx);
    for (int s = 0; s < 3; s++)
        free(alone[s]);
    bn_model_free(m);
}

/* Rows split by threads, attention items dealt to threads whole: any thread count
 * gives the same logits (no deterministic mode needed). */
Test(forward, thread_count_does_not_change_logits)
{
    int32_t ids[FX_MAX_TOKENS];
    int n = tokens48(ids);
    float *base = NULL;
    size_t cnt = 0;
    for (int nt = 1; nt <= 4; nt++) {
        struct bn_model *m = load_model("tinyB-i2s", false, nt);
        cnt = (size_t)n * bn_model_get_info(m)->n_vocab;
        float *l = fx_run(m, ids, n, n, BN_KV_DEFAULT_TYPE);
        if (!base) {
            base = l;
        } else {
            char what[64];
            snprintf(what, sizeof what, "%d threads vs 1", nt);
            expect_same(base, l, cnt, what);
            free(l);
        }
        bn_model_free(m);
    }
    free(base);
}

/* KV memory follows the tokens held: chunks of BN_KV_CHUNK_TOKENS, returned by
 * truncate / clear / free; truncating and re-feeding reproduces the logits. */
Test(forward, kv_chunks_truncate_and_reuse)
{
    struct bn_model *m = load_model("tinyB-i2s", false, 2);
    const struct bn_model_info *in = bn_model_get_info(m);
    int V = in->n_vocab;
    uint64_t chunk = (uint64_t)in->n_layer * 2 * in->n_head_kv * BN_KV_CHUNK_TOKENS * in->head_dim * 2;
    cr_expect_eq(bn_model_kv_bytes(m, 0), chunk * (in->n_ctx_train / BN_KV_CHUNK_TOKENS));
    cr_expect_eq(bn_model_kv_bytes(m, 129), 2 * chunk);

    static int32_t ids[N_LONG];
    synth_tokens(ids, N_LONG);
    float *ref = fx_run(m, ids, N_LONG, 64, BN_KV_DEFAULT_TYPE);

    struct bn_ctx_params cp;
    bn_ctx_params_default(&cp);
    cp.n_batch = 64;
    struct bn_ctx *ctx = NULL;
    struct bn_err err = {{0}};
    cr_assert(bn_ctx_new(m, &cp, &ctx, &err) == 0, "%s", err.msg);
    cr_expect_eq(bn_ctx_kv_bytes(ctx), 0, "no KV memory before the first token");
    int32_t s;
    cr_assert(bn_seq_new(ctx, &s, &err) == 0);
    struct bn_batch b;
    cr_assert(bn_batch_init(&b, 64, &err) == 0);
    int fed = 0;
    while (fed < N_LONG) {
        bn_batch_clear(&b);
        for (int j = 0; j < 64 && fed + j < N_LONG; j++)
            bn_batch_add(&b, ids[fed + j], s, fed + j, false, NULL);
        cr_assert(bn_decode(ctx, &b, &err) == 0, "%s", err.msg);
        fed += (int)b.n;
    }
    cr_expect_eq(bn_ctx_kv_bytes(ctx), 3 * chunk, "300 tokens take 3 chunks of 128");
    cr_assert(bn_seq_truncate(ctx, s, 100, &err) == 0, "%s", err.msg);
    cr_expect_eq(bn_seq_len(ctx, s), 100);
    cr_expect_eq(bn_ctx_kv_bytes(ctx), chunk, "truncated to 100 tokens: 1 chunk");
    /* re-feed 100..299 in uneven batches: same logits as the first run */
    for (int p = 100; p < N_LONG;) {
        bn_batch_clear(&b);
        int n = p % 3 == 0 ? 37 : 50;
        for (int j = 0; j < n && p + j < N_LONG; j++)
            bn_batch_add(&b, ids[p + j], s, p + j, true, NULL);
        cr_assert(bn_decode(ctx, &b, &err) == 0, "%s", err.msg);
        for (int64_t e = 0; e < b.n; e++)
            expect_same(bn_ctx_logits(ctx, e), ref + (size_t)(p + e) * V, (size_t)V, "after truncate");
        p += (int)b.n;
    }
    cr_expect_eq(bn_seq_truncate(ctx, s, N_LONG + 1, &err), -1);
    cr_expect(strstr(err.msg, "holds 300"), "%s", err.msg);
    cr_assert(bn_seq_clear(ctx, s, &err) == 0);
    cr_expect_eq(bn_seq_len(ctx, s), 0);
    cr_expect_eq(bn_ctx_kv_bytes(ctx), 0);
    bn_seq_free(ctx, s);
    cr_expect_eq(bn_seq_len(ctx, s), -1);
    cr_expect_eq(bn_seq_clear(ctx, s, &err), -1);
    cr_expect(strstr(err.msg, "not open"), "%s", err.msg);
    bn_batch_free(&b);
    bn_ctx_free(ctx);
    free(ref);
    bn_model_free(m);
}

Test(forward, sequence_slots)
{
    struct bn_model *m = load_model("tinyA-i2s", false, 1);
    struct bn_ctx_params cp;
    bn_ctx_params_default(&cp);
    cp.n_seq_max = 2;
    struct bn_ctx *ctx = NULL;
    struct bn_err err = {{0}};
    cr_assert(bn_ctx_new(m, &cp, &ctx, &err) == 0, "%s", err.msg);
    int32_t a, b, c;
    cr_assert(bn_seq_new(ctx, &a, &err) == 0 && bn_seq_new(ctx, &b, &err) == 0);
    cr_expect_neq(a, b);
    cr_expect_eq(bn_seq_new(ctx, &c, &err), -1);
    cr_expect(strstr(err.msg, "n_seq_max"), "%s", err.msg);
    bn_seq_free(ctx, a);
    cr_assert(bn_seq_new(ctx, &c, &err) == 0);
    cr_expect_eq(c, a, "a freed slot is reused");
    cr_expect_eq(bn_seq_truncate(ctx, 7, 0, &err), -1);
    cr_expect(strstr(err.msg, "does not exist"), "%s", err.msg);
    bn_ctx_free(ctx);
    bn_model_free(m);
}

/* Each bad batch gets a sentence naming the entry, and changes nothing: the next
 * good batch gives the logits a fresh context gives. */
Test(forward, bad_batches_are_refused)
{
    struct bn_model *m = load_model("tinyA-i2s", false, 1);
    int V = bn_model_get_info(m)->n_vocab;
    int32_t ids[FX_MAX_TOKENS];
    tokens48(ids);
    float *ref = fx_run(m, ids, 12, 12, BN_KV_DEFAULT_TYPE);

    struct bn_ctx_params cp;
    bn_ctx_params_default(&cp);
    cp.n_ctx = 12;
    cp.n_batch = 16;
    cp.n_seq_max = 2;
    struct bn_ctx *ctx = NULL;
    struct bn_err err = {{0}};
    cr_assert(bn_ctx_new(m, &cp, &ctx, &err) == 0, "%s", err.msg);
    cr_expect_eq(bn_ctx_n_ctx(ctx), 12);
    int32_t s;
    cr_assert(bn_seq_new(ctx, &s, &err) == 0);
    struct bn_batch b;
    cr_assert(bn_batch_init(&b, 20, &err) == 0);

    struct {
        const char *what, *msg;
        int n;         /* entries: ids[0..n) at positions 0..n-1 of s */
        int bad_entry; /* entry to spoil */
        int field;     /* 0 token, 1 seq, 2 pos */
        int64_t value;
    } cases[] = {
        {"token id too large", "token id 1003 is out of range (the vocabulary has 1003", 4, 2, 0, 1003},
        {"negative token id", "token id -1 is out of range", 4, 0, 0, -1},
        {"unknown sequence", "sequence 9 does not exist", 4, 1, 1, 9},
        {"closed sequence", "sequence 1 is not open", 4, 3, 1, 1},
        {"position gap", "position 5 for sequence 0, expected 3", 4, 3, 2, 5},
        {"prompt longer than the context", "beyond the context of 12 positions (n_ctx)", 13, -1, 0, 0},
        {"batch larger than n_batch", "at most 16 per call (n_batch)", 17, -1, 0, 0},
        {"empty batch", "the batch is empty", 0, -1, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bn_batch_clear(&b);
        for (int j = 0; j < cases[i].n; j++)
            bn_batch_add(&b, ids[j % 12], s, j, true, NULL);
        if (cases[i].bad_entry >= 0) {
            int e = cases[i].bad_entry;
            if (cases[i].field == 0)
                b.token[e] = (int32_t)cases[i].value;
            else if (cases[i].field == 1)
                b.seq[e] = (int32_t)cases[i].value;
            else
                b.pos[e] = cases[i].value;
        }
        memset(&err, 0, sizeof err);
        cr_expect_eq(bn_decode(ctx, &b, &err), -1, "%s: accepted", cases[i].what);
        cr_expect(strstr(err.msg, cases[i].msg), "%s: message '%s' lacks '%s'", cases[i].what,
                  err.msg, cases[i].msg);
        cr_expect_eq(bn_seq_len(ctx, s), 0, "%s: the sequence changed", cases[i].what);
        cr_expect_null(bn_ctx_logits(ctx, 0));
        fprintf(stderr, "bad batch (%s): %s\n", cases[i].what, err.msg);
    }
    /* the context is intact: a full context of 12 tokens works and matches */
    bn_batch_clear(&b);
    for (int j = 0; j < 12; j++)
        bn_batch_add(&b, ids[j], s, j, true, NULL);
    cr_assert(bn_decode(ctx, &b, &err) == 0, "%s", err.msg);
    for (int j = 0; j < 12; j++)
        expect_same(bn_ctx_logits(ctx, j), ref + (size_t)j * V, (size_t)V, "after refused batches");
    /* and one more token no longer fits */
    bn_batch_clear(&b);
    bn_batch_add(&b, ids[12], s, 12, true, NULL);
    cr_expect_eq(bn_decode(ctx, &b, &err), -1);
    cr_expect(strstr(err.msg, "beyond the context"), "%s", err.msg);
    bn_batch_free(&b);
    bn_ctx_free(ctx);
    free(ref);
    bn_model_free(m);
}

Test(forward, bad_context_params)
{
    struct bn_model *m = load_model("tinyA-i2s", false, 1);
    struct bn_ctx_params cp;
    struct bn_ctx *ctx = NULL;
    struct bn_err err = {{0}};
    bn_ctx_params_default(&cp);
    cp.kv_type = BN_TYPE_Q8_0;
    cr_expect_eq(bn_ctx_new(m, &cp, &ctx, &err), -1);
    cr_expect(strstr(err.msg, "KV cache type Q8_0"), "%s", err.msg);
    bn_ctx_params_default(&cp);
    cp.n_seq_max = BN_CTX_MAX_SEQ + 1;
    cr_expect_eq(bn_ctx_new(m, &cp, &ctx, &err), -1);
    cr_expect(strstr(err.msg, "n_seq_max"), "%s", err.msg);
    bn_ctx_params_default(&cp);
    cp.n_ctx = BN_MODEL_MAX_CTX + 1;
    cr_expect_eq(bn_ctx_new(m, &cp, &ctx, &err), -1);
    cr_expect(strstr(err.msg, "n_ctx"), "%s", err.msg);
    struct bn_batch b;
    cr_expect_eq(bn_batch_init(&b, 0, &err), -1);
    cr_assert(bn_batch_init(&b, 1, &err) == 0);
    cr_assert(bn_batch_add(&b, 1, 0, 0, true, &err) == 0);
    cr_expect_eq(bn_batch_add(&b, 1, 0, 1, true, &err), -1);
    cr_expect(strstr(err.msg, "full"), "%s", err.msg);
    bn_batch_free(&b);
    bn_model_free(m);
}

/* F32 KV cache: also a faithful model (check 2 tolerances); F16 is the default
 * because the peer keeps K/V in F16 and it halves the memory. */
Test(forward, kv_f32)
{
    const char *dir = fx_ref_dir();
    struct bn_model *m = load_model("tinyB-i2s", false, 2);
    int V = bn_model_get_info(m)->n_vocab;
    int32_t ids[FX_MAX_TOKENS];
    int n = tokens48(ids);
    float *l32 = fx_run(m, ids, n, n, BN_TYPE_F32);
    char path[FX_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/tinyB-i2s.logits.bin", dir);
    size_t np;
    float *peer = fx_read_floats(path, &np);
    cr_assert(peer && np == (size_t)n * V);
    struct fx_stats st;
    fx_compare(l32, peer, n, V, 0.1, &st);
    fx_log("kv-f32", "tinyB-i2s", "default", &st);
    cr_expect(st.cos_min >= 0.998 && st.cos_med >= 0.999 && st.rms <= 0.03 && st.top1_bad == 0);
    free(peer);
    free(l32);
    bn_model_free(m);
}
