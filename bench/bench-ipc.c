/* bench/bench-ipc.c — what the daemon costs and what batching gains, measured against a
 * running bitnetd through libbitnet-client (what applications link):
 *
 *   ping        round trip of `ping` (p50/p99 µs; target p50 <= 25 µs)
 *   stream      decode tokens/s of one streamed greedy generation through the daemon,
 *               and of the same model run by the engine in this process, one token
 *               per step, same thread count (target: daemon >= 98% of the engine)
 *   concurrent  aggregate decode tokens/s with 1, 2, 4, 8 clients generating at once
 *               (median of --runs runs)
 *               (target: 4 clients >= 2.5x one client: the scheduler batches them, so
 *               each weight matrix is streamed once per step for all)
 *
 * usage: bench-ipc --socket PATH --model NAME [--json] [--tokens N] [--pings N]
 *                  [--clients LIST] [--runs N] [--threads N] [--no-engine]
 * The model is loaded (as NAME: a configured name or, when the daemon allows, a path)
 * if it is not resident.  Decode rates are measured from the first to the last token
 * of each generation (prefill excluded), on the client side for the daemon.
 */
#include "config.h"

#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_common.h"
#include "bitnet.h"
#include "bitnet_client.h"

#define PINGS_DEFAULT 20000
#define PING_WARMUP 500
#define TOKENS_DEFAULT 128
#define RUNS_DEFAULT 3
#define RUNS_MAX 32
#define CLIENTS_MAX 64
#define CLIENT_COUNTS_MAX 16 /* entries of --clients */
#define PROMPT_TEXT "The history of the city begins with a small settlement on the river, where"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

struct opts {
    const char *socket;
    const char *model;
    bool json;
    int tokens;
    int pings;
    int runs;
    int clients[CLIENT_COUNTS_MAX];
    int n_clients;
    bool engine;
    int threads; /* engine threads: the engine-alone run, and the load when bench-ipc loads */
};

static void usage(FILE *f)
{
    fprintf(f, "usage: bench-ipc --socket PATH --model NAME [--json] [--tokens N] [--pings N]\n"
               "                 [--clients 1,2,4,8] [--runs N] [--threads N] [--no-engine]\n"
               "  --tokens N     tokens per generation (default %d)\n"
               "  --pings N      ping round trips (default %d)\n"
               "  --runs N       stream: generations per side, best taken; concurrent: runs per\n"
               "                 client count, in rounds over the counts, median taken (default %d,\n"
               "                 at most 32)\n"
               "  --threads N    engine threads of the in-process run, and of the load when the\n"
               "                 model is not resident yet (default 0: one per core, like bitnetd);\n"
               "                 give bitnetd the same --threads for a fair comparison\n"
               "  --no-engine    skip the in-process engine comparison\n",
            TOKENS_DEFAULT, PINGS_DEFAULT, RUNS_DEFAULT);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int die_bnc(const char *what, const struct bnc_error *e)
{
    fprintf(stderr, "bench-ipc: %s: %s (%s)\n", what, e->message, bnc_code_name(e->code));
    return 1;
}

/* ---- streaming: token timestamps ---- */
struct stream_rec {
    double first, last;
    int64_t n;
};
static int on_token(void *user, const char *text, size_t len, int32_t token)
{
    (void)text, (void)len, (void)token;
    struct stream_rec *r = user;
    double t = now_s();
    if (r->n == 0)
        r->first = t;
    r->last = t;
    r->n++;
    return 0;
}

static void gen_params(struct bnc_generate_params *p, const struct opts *o, const int32_t *prompt, size_t n)
{
    bnc_generate_params_init(p);
    p->model = o->model;
    p->tokens = prompt;
    p->n_tokens = n;
    p->max_tokens = o->tokens;
    p->options.temperature = 0;
}

/* Decode tokens/s of one streamed generation (first to last token). */
static int stream_once(struct bnc_conn *c, const struct opts *o, const int32_t *prompt, size_t n, double *tps,
                       int64_t *n_tokens)
{
    struct bnc_generate_params p;
    gen_params(&p, o, prompt, n);
    struct stream_rec r = {0};
    struct bnc_generate_result res = {0};
    struct bnc_error e;
    if (bnc_generate(c, &p, on_token, &r, &res, &e) < 0)
        return die_bnc("generate", &e);
    bnc_result_free(&res);
    *n_tokens = r.n;
    *tps = r.n > 1 && r.last > r.first ? (double)(r.n - 1) / (r.last - r.first) : 0;
    return 0;
}

/* The engine alone: same file, same prompt, one token per bn_decode, greedy.  Opened
 * once and kept, so that its runs can alternate with the daemon's (a busy machine then
 * disturbs both alike). */
struct engine {
    struct bn_model *m;
    struct bn_ctx *ctx;
    struct bn_batch b;
    struct bn_sampler *smp;
    int32_t seq;
};

static void engine_close(struct engine *en)
{
    bn_sampler_free(en->smp);
    bn_batch_free(&en->b);
    bn_ctx_free(en->ctx);
    bn_model_free(en->m);
    memset(en, 0, sizeof(*en));
}

static int engine_open(struct engine *en, const char *path, int threads, size_t n_prompt)
{
    struct bn_err err = {{0}};
    struct bn_model_params mp;
    bn_model_params_default(&mp);
    mp.n_threads = threads;
    memset(en, 0, sizeof(*en));
    struct bn_sampler_params sp;
    bn_sampler_params_default(&sp);
    sp.temperature = 0;
    if (bn_model_load_file(path, &mp, &en->m, &err) < 0 || bn_ctx_new(en->m, NULL, &en->ctx, &err) < 0 ||
        bn_batch_init(&en->b, (int64_t)n_prompt + 1, &err) < 0 ||
        !(en->smp = bn_sampler_new(&sp, bn_model_get_info(en->m)->n_vocab, &err)) ||
        bn_seq_new(en->ctx, &en->seq, &err) < 0) {
        fprintf(stderr, "bench-ipc: engine: %s\n", err.msg);
        engine_close(en);
        return 1;
    }
    return 0;
}

static int engine_tps(struct engine *en, const int32_t *prompt, size_t n, int tokens, double *tps)
{
    struct bn_err err = {{0}};
    if (bn_seq_clear(en->ctx, en->seq, &err) < 0)
        goto fail;
    bn_batch_clear(&en->b);
    for (size_t i = 0; i < n; i++)
        bn_batch_add(&en->b, prompt[i], en->seq, (int64_t)i, i + 1 == n, NULL);
    int64_t pos = (int64_t)n;
    double first = 0, last = 0;
    int got = 0;
    for (int g = 0; g < tokens && pos < bn_ctx_n_ctx(en->ctx); g++) {
        if (bn_decode(en->ctx, &en->b, &err) < 0)
            goto fail;
        int32_t t = bn_sampler_sample(en->smp, bn_ctx_logits(en->ctx, en->b.n - 1), &err);
        if (t < 0)
            goto fail;
        double now = now_s();
        if (got++ == 0)
            first = now;
        last = now;
        bn_batch_clear(&en->b);
        bn_batch_add(&en->b, t, en->seq, pos++, true, NULL);
    }
    *tps = got > 1 ? (double)(got - 1) / (last - first) : 0;
    return 0;
fail:
    fprintf(stderr, "bench-ipc: engine: %s\n", err.msg);
    return 1;
}

/* ---- concurrent clients ---- */
struct worker {
    pthread_t th;
    const struct opts *o;
    const int32_t *prompt;
    size_t n;
    pthread_barrier_t *start;
    struct stream_rec rec;
    int rc;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct bnc_options opt;
    bnc_options_init(&opt);
    opt.socket_path = w->o->socket;
    opt.client_name = "bench-ipc";
    struct bnc_conn *c = NULL;
    struct bnc_error e;
    w->rc = bnc_connect(&c, &opt, &e) < 0 ? die_bnc("connect", &e) : 0;
    pthread_barrier_wait(w->start);
    if (w->rc)
        return NULL;
    struct bnc_generate_params p;
    gen_params(&p, w->o, w->prompt, w->n);
    struct bnc_generate_result res = {0};
    if (bnc_generate(c, &p, on_token, &w->rec, &res, &e) < 0)
        w->rc = die_bnc("generate", &e);
    bnc_result_free(&res);
    bnc_close(c);
    return NULL;
}

static int concurrent(const struct opts *o, int k, const int32_t *prompt, size_t n, double *agg)
{
    struct worker w[CLIENTS_MAX];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)k);
    for (int i = 0; i < k; i++) {
        w[i] = (struct worker){.o = o, .prompt = prompt, .n = n, .start = &start};
        pthread_create(&w[i].th, NULL, worker_main, &w[i]);
    }
    int rc = 0;
    for (int i = 0; i < k; i++) {
        pthread_join(w[i].th, NULL);
        rc |= w[i].rc;
    }
    pthread_barrier_destroy(&start);
    if (rc)
        return 1;
    double first = 1e300, last = 0;
    int64_t tokens = 0;
    for (int i = 0; i < k; i++) {
        if (w[i].rec.n == 0)
            continue;
        first = w[i].rec.first < first ? w[i].rec.first : first;
        last = w[i].rec.last > last ? w[i].rec.last : last;
        tokens += w[i].rec.n - 1; /* each client's first token ends its prefill */
    }
    *agg = last > first ? (double)tokens / (last - first) : 0;
    return 0;
}

static int parse_clients(struct opts *o, const char *s)
{
    o->n_clients = 0;
    while (*s && o->n_clients < CLIENT_COUNTS_MAX) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 1 || v > CLIENTS_MAX)
            return -1;
        o->clients[o->n_clients++] = (int)v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
            return -1;
    }
    return o->n_clients ? 0 : -1;
}

int main(int argc, char **argv)
{
    struct opts o = {.tokens = TOKENS_DEFAULT, .pings = PINGS_DEFAULT, .runs = RUNS_DEFAULT,
                     .clients = {1, 2, 4, 8}, .n_clients = 4, .engine = true};
    static const struct option lo[] = {
        {"socket", required_argument, NULL, 's'}, {"model", required_argument, NULL, 'm'},
        {"json", no_argument, NULL, 'j'},         {"tokens", required_argument, NULL, 't'},
        {"pings", required_argument, NULL, 'p'},  {"clients", required_argument, NULL, 'c'},
        {"runs", required_argument, NULL, 'r'},   {"no-engine", no_argument, NULL, 'E'},
        {"threads", required_argument, NULL, 'T'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 's': o.socket = optarg; break;
        case 'm': o.model = optarg; break;
        case 'j': o.json = true; break;
        case 't': o.tokens = atoi(optarg); break;
        case 'p': o.pings = atoi(optarg); break;
        case 'r': o.runs = atoi(optarg); break;
        case 'E': o.engine = false; break;
        case 'T': o.threads = atoi(optarg); break;
        case 'c':
            if (parse_clients(&o, optarg) < 0) {
                fprintf(stderr, "bench-ipc: --clients: '%s' is not a list like 1,2,4,8 (each 1..%d)\n", optarg,
                        CLIENTS_MAX);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!o.socket || !o.model || o.tokens < 2 || o.pings < 1 || o.runs < 1 || o.runs > RUNS_MAX) {
        usage(stderr);
        return 2;
    }
    struct bnc_options opt;
    bnc_options_init(&opt);
    opt.socket_path = o.socket;
    opt.client_name = "bench-ipc";
    struct bnc_conn *c;
    struct bnc_error e;
    if (bnc_connect(&c, &opt, &e) < 0)
        return die_bnc("connect", &e);

    /* The model: resident already, or loaded now. */
    struct bnc_ps_result ps = {0};
    if (bnc_ps(c, &ps, &e) < 0)
        return die_bnc("ps", &e);
    const struct bnc_model_status *ms = NULL;
    for (size_t i = 0; i < ps.n_models; i++)
        if (strcmp(ps.models[i].name, o.model) == 0)
            ms = &ps.models[i];
    if (!ms) {
        struct bnc_load_params lp;
        bnc_load_params_init(&lp);
        lp.model = o.model;
        lp.threads = o.threads;
        struct bnc_load_result lr = {0};
        if (bnc_load(c, &lp, NULL, NULL, &lr, &e) < 0)
            return die_bnc("load", &e);
        o.model = strdup(lr.name);
        bnc_result_free(&lr);
        bnc_result_free(&ps);
        if (bnc_ps(c, &ps, &e) < 0)
            return die_bnc("ps", &e);
        for (size_t i = 0; i < ps.n_models; i++)
            if (strcmp(ps.models[i].name, o.model) == 0)
                ms = &ps.models[i];
        if (!ms) {
            fprintf(stderr, "bench-ipc: %s is not resident after loading it\n", o.model);
            return 1;
        }
    }
    char *path = strdup(ms->path);
    struct bnc_status_result st = {0};
    if (bnc_status(c, &st, &e) < 0)
        return die_bnc("status", &e);
    struct bnc_tokens_result tk = {0};
    if (bnc_tokenize(c, o.model, PROMPT_TEXT, true, false, &tk, &e) < 0)
        return die_bnc("tokenize", &e);
    size_t n_prompt = tk.n_tokens;
    int32_t *prompt = malloc(n_prompt * sizeof(*prompt));
    memcpy(prompt, tk.tokens, n_prompt * sizeof(*prompt));
    bnc_result_free(&tk);
    if (!o.json)
        printf("bench-ipc: model %s (%s), %zu prompt tokens, %d tokens per generation, daemon parallel %lld\n",
               o.model, path, n_prompt, o.tokens, (long long)st.parallel);

    /* ping */
    double *lat = malloc((size_t)o.pings * sizeof(*lat));
    for (int i = 0; i < PING_WARMUP; i++)
        if (bnc_ping(c, &e) < 0)
            return die_bnc("ping", &e);
    for (int i = 0; i < o.pings; i++) {
        double t0 = now_s();
        if (bnc_ping(c, &e) < 0)
            return die_bnc("ping", &e);
        lat[i] = (now_s() - t0) * 1e6;
    }
    qsort(lat, (size_t)o.pings, sizeof(*lat), cmp_double);
    double p50 = lat[o.pings / 2], p99 = lat[(size_t)((double)o.pings * 0.99)];
    if (o.json)
        printf("{\"test\": \"ping\", \"p50_us\": %.2f, \"p99_us\": %.2f}\n", p50, p99);
    else
        printf("ping        p50 %.2f us   p99 %.2f us   (%d round trips; target p50 <= 25 us)\n", p50, p99, o.pings);
    fflush(stdout);
    free(lat);

    /* stream: the daemon and the engine alone, alternating (never both at once) */
    double best_d = 0, best_e = 0;
    int64_t got = 0;
    double warm;
    struct engine en;
    if (stream_once(c, &o, prompt, n_prompt, &warm, &got))
        return 1;
    if (o.engine && engine_open(&en, path, o.threads, n_prompt))
        return 1;
    for (int r = 0; r < o.runs; r++) {
        double tps;
        if (stream_once(c, &o, prompt, n_prompt, &tps, &got))
            return 1;
        best_d = tps > best_d ? tps : best_d;
        if (o.engine) {
            if (engine_tps(&en, prompt, n_prompt, (int)got, &tps))
                return 1;
            best_e = tps > best_e ? tps : best_e;
        }
    }
    if (o.engine)
        engine_close(&en);
    if (o.json)
        printf("{\"test\": \"stream\", \"tokens\": %lld, \"daemon_tokens_per_s\": %.2f, \"engine_tokens_per_s\": %.2f, "
               "\"ratio\": %.4f}\n",
               (long long)got, best_d, best_e, best_e > 0 ? best_d / best_e : 0);
    else
        printf("stream      daemon %.2f tok/s   engine %.2f tok/s   ratio %.3f   (%lld tokens, best of %d; "
               "target >= 0.98)\n",
               best_d, best_e, best_e > 0 ? best_d / best_e : 0, (long long)got, o.runs);
    fflush(stdout);

    /* concurrent clients */
    /* Runs interleaved (every client count once per round), so that a slow phase of a
     * noisy machine hits all counts alike; the median per count. */
    double one = 0;
    static double runs[CLIENT_COUNTS_MAX][RUNS_MAX];
    int n_runs = o.runs < RUNS_MAX ? o.runs : RUNS_MAX;
    for (int r = 0; r < n_runs; r++)
        for (int i = 0; i < o.n_clients; i++)
            if (concurrent(&o, o.clients[i], prompt, n_prompt, &runs[i][r]))
                return 1;
    for (int i = 0; i < o.n_clients; i++) {
        int k = o.clients[i];
        double agg = bench_stats(runs[i], n_runs).median;
        if (k == 1)
            one = agg;
        if (o.json) {
            printf("{\"test\": \"concurrent\", \"clients\": %d, \"aggregate_tokens_per_s\": %.2f", k, agg);
            if (one > 0)
                printf(", \"vs_one_client\": %.3f", agg / one);
            printf("}\n");
        } else if (one > 0 && k > 1) {
            printf("concurrent  %2d clients %8.2f tok/s aggregate = %.2fx one client%s\n", k, agg,
                   agg / one, k == 4 ? " (target >= 2.5x)" : "");
        } else {
            printf("concurrent  %2d client%s %8.2f tok/s aggregate\n", k, k == 1 ? " " : "s", agg);
        }
        if (!o.json && k > st.parallel)
            printf("            (only %lld run at once: the daemon's parallel setting)\n", (long long)st.parallel);
        fflush(stdout);
    }
    bnc_result_free(&ps);
    bnc_result_free(&st);
    free(prompt);
    free(path);
    bnc_close(c);
    return 0;
}
