/* bench/bitnet-bench — prompt processing and generation speed of a model, like
 * llama-bench: ppN evaluates an N-token prompt as one batch (logits of the last
 * token), tgN generates N tokens one batch of one at a time (logits of each), both
 * from an empty cache; each test runs -r times after one warm-up and reports the
 * median tokens/s and the spread.
 *
 *   bitnet-bench -m MODEL [-p 128] [-n 64] [-t 2] [-r 3] [--json] [-k avx512|avx2|scalar]
 *                [--layout i2|tl1|tl2] [--head-q8] [--baseline FILE] [--save-baseline FILE]
 *
 * --head-q8 requantizes an F16 head to Q8_0 at load (bn_model_params.head_q8); the
 * head column then shows the layout the head GEMV reads.
 * -p, -n and -t take comma-separated lists (-t 1,2).  Model size is the bytes the
 * kernels read per token (weights as laid out); peak RSS is the process's maximum
 * resident set. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "bench_common.h"
#include "bitnet.h"

#define BENCH_MAX_LIST 8
#define BENCH_MAX_REPS 100
#define BENCH_TOKEN_SEED 0x9e3779b97f4a7c15ull

struct opts {
    const char *model;
    int64_t p[BENCH_MAX_LIST], n[BENCH_MAX_LIST], t[BENCH_MAX_LIST];
    int np, nn, nt, reps;
    bool json, head_q8;
    enum bn_path path;
    enum bn_type layout;
    const char *baseline, *save;
};

static void usage(void)
{
    fprintf(stderr,
            "usage: bitnet-bench -m MODEL [-p 128] [-n 64] [-t 2] [-r 3] [--json]\n"
            "                    [-k avx512|avx2|scalar] [--layout i2|tl1|tl2] [--head-q8]\n"
            "                    [--baseline FILE] [--save-baseline FILE]\n"
            "  -p, -n, -t take lists like 1,2; -p 0 or -n 0 skips that test\n");
}

static bool parse_list0(const char *s, int64_t *out, int *n)
{
    if (strcmp(s, "0") == 0) {
        *n = 0;
        return true;
    }
    return bench_parse_list(s, out, BENCH_MAX_LIST, n);
}

static bool parse_args(int argc, char **argv, struct opts *o)
{
    memset(o, 0, sizeof *o);
    o->p[0] = 128;
    o->np = 1;
    o->n[0] = 64;
    o->nn = 1;
    o->t[0] = 2;
    o->nt = 1;
    o->reps = 3;
    o->path = BN_PATH_COUNT;
    o->layout = BN_TYPE_COUNT;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
        if (!strcmp(a, "--json")) {
            o->json = true;
            continue;
        }
        if (!strcmp(a, "--head-q8")) {
            o->head_q8 = true;
            continue;
        }
        if (!v) {
            usage();
            return false;
        }
        if (!strcmp(a, "-m")) {
            o->model = v;
        } else if (!strcmp(a, "-p")) {
            ok = parse_list0(v, o->p, &o->np);
        } else if (!strcmp(a, "-n")) {
            ok = parse_list0(v, o->n, &o->nn);
        } else if (!strcmp(a, "-t")) {
            ok = bench_parse_list(v, o->t, BENCH_MAX_LIST, &o->nt);
        } else if (!strcmp(a, "-r")) {
            o->reps = atoi(v);
            ok = o->reps >= 1 && o->reps <= BENCH_MAX_REPS;
        } else if (!strcmp(a, "-k")) {
            ok = bn_path_parse(v, &o->path);
        } else if (!strcmp(a, "--layout")) {
            o->layout = !strcmp(v, "i2") ? BN_TYPE_I2_S : !strcmp(v, "tl1") ? BN_TYPE_TL1
                        : !strcmp(v, "tl2") ? BN_TYPE_TL2 : BN_TYPE_F32;
            ok = o->layout != BN_TYPE_F32;
        } else if (!strcmp(a, "--baseline")) {
            o->baseline = v;
        } else if (!strcmp(a, "--save-baseline")) {
            o->save = v;
        } else {
            usage();
            return false;
        }
        if (!ok) {
            fprintf(stderr, "bitnet-bench: bad value '%s' for %s\n", v, a);
            return false;
        }
        i++;
    }
    if (!o->model) {
        usage();
        return false;
    }
    return true;
}

static uint64_t rng_state = BENCH_TOKEN_SEED;
static int32_t random_token(int32_t n_vocab)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (int32_t)(rng_state % (uint64_t)n_vocab);
}

/* One run of a test; seconds, or < 0 with err. */
static double run_test(struct bn_ctx *c, struct bn_batch *b, int32_t seq, int32_t n_vocab,
                       int64_t n_prompt, int64_t n_gen, struct bn_err *err)
{
    if (bn_seq_clear(c, seq, err))
        return -1;
    double t0 = bench_now();
    if (n_prompt > 0) {
        bn_batch_clear(b);
        for (int64_t i = 0; i < n_prompt; i++)
            if (bn_batch_add(b, random_token(n_vocab), seq, i, i == n_prompt - 1, err))
                return -1;
        if (bn_decode(c, b, err))
            return -1;
    }
    for (int64_t i = 0; i < n_gen; i++) {
        bn_batch_clear(b);
        if (bn_batch_add(b, random_token(n_vocab), seq, i, true, err) || bn_decode(c, b, err))
            return -1;
    }
    return bench_now() - t0;
}

static double peak_rss_bytes(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss * 1024.0;
}

int main(int argc, char **argv)
{
    struct opts o;
    if (!parse_args(argc, argv, &o))
        return 2;
    static const char *const keys[] = {"model", "test", "threads", "kernel", "layout", "head", NULL};
    struct bench_gate gate;
    if (!bench_gate_open(&gate, "bitnet-bench", keys, "tokens_per_s", o.baseline, o.save))
        return 2;
    const char *name = strrchr(o.model, '/') ? strrchr(o.model, '/') + 1 : o.model;
    FILE *info = o.json ? stderr : stdout;
    int64_t max_p = 0, max_n = 0;
    for (int i = 0; i < o.np; i++)
        max_p = o.p[i] > max_p ? o.p[i] : max_p;
    for (int i = 0; i < o.nn; i++)
        max_n = o.n[i] > max_n ? o.n[i] : max_n;
    if (!o.json)
        printf("| %-22s | %9s | %-5s | %-6s | %-6s | %7s | %-6s | %22s |\n", "model", "size GiB",
               "head", "kernel", "layout", "threads", "test", "t/s (median, min..max)");
    int rc = 0;
    for (int ti = 0; ti < o.nt && rc == 0; ti++) {
        struct bn_model_params mp;
        bn_model_params_default(&mp);
        mp.n_threads = (int)o.t[ti];
        mp.path = o.path;
        mp.ternary_layout = o.layout;
        mp.head_q8 = o.head_q8;
        struct bn_err err = {{0}};
        struct bn_model *m = NULL;
        double tl = bench_now();
        if (bn_model_load_file(o.model, &mp, &m, &err)) {
            fprintf(stderr, "bitnet-bench: %s\n", err.msg);
            rc = 1;
            break;
        }
        tl = bench_now() - tl;
        const struct bn_model_info *in = bn_model_get_info(m);
        const char *layout = "?";
        for (int64_t i = 0; i < bn_model_n_tensors(m); i++) {
            struct bn_model_tensor t;
            if (bn_model_tensor_at(m, i, &t) && bn_type_traits(t.file_type) &&
                bn_type_traits(t.file_type)->ternary) {
                layout = bn_type_name(t.layout);
                break;
            }
        }
        fprintf(info, "loaded %s in %.2f s: %s, %lld layers, head %s, %.2f GiB as laid out (%.2f GiB repacked), kernels %s\n",
                o.model, tl, in->name, (long long)in->n_layer, bn_type_name(in->head_layout),
                (double)in->weight_bytes / (1 << 30), (double)in->private_bytes / (1 << 30),
                bn_path_name(in->path));
        struct bn_ctx_params cp;
        bn_ctx_params_default(&cp);
        cp.n_ctx = max_p + max_n + 1;
        cp.n_seq_max = 1;
        cp.n_batch = max_p > 1 ? max_p : 1;
        cp.n_threads = (int)o.t[ti];
        struct bn_ctx *c = NULL;
        struct bn_batch b = {0};
        int32_t seq = -1;
        if (bn_ctx_new(m, &cp, &c, &err) || bn_batch_init(&b, cp.n_batch, &err) ||
            bn_seq_new(c, &seq, &err)) {
            fprintf(stderr, "bitnet-bench: %s\n", err.msg);
            rc = 1;
        }
        for (int kind = 0; kind < 2 && rc == 0; kind++) {
            for (int k = 0; k < (kind == 0 ? o.np : o.nn) && rc == 0; k++) {
                int64_t np = kind == 0 ? o.p[k] : 0, ng = kind == 1 ? o.n[k] : 0;
                double tps[BENCH_MAX_REPS];
                if (run_test(c, &b, seq, in->n_vocab, np, ng, &err) < 0) { /* warm-up */
                    fprintf(stderr, "bitnet-bench: %s\n", err.msg);
                    rc = 1;
                    break;
                }
                for (int r = 0; r < o.reps && rc == 0; r++) {
                    double s = run_test(c, &b, seq, in->n_vocab, np, ng, &err);
                    if (s < 0) {
                        fprintf(stderr, "bitnet-bench: %s\n", err.msg);
                        rc = 1;
                    }
                    tps[r] = (double)(np + ng) / s;
                }
                if (rc)
                    break;
                struct bench_stats st = bench_stats(tps, o.reps);
                char test[32];
                snprintf(test, sizeof test, "%s%lld", kind == 0 ? "pp" : "tg", (long long)(np + ng));
                struct bench_rec rec = {0};
                bench_rec_str(&rec, "model", name);
                bench_rec_str(&rec, "test", test);
                bench_rec_num(&rec, "threads", (double)o.t[ti]);
                bench_rec_num(&rec, "tokens_per_s", st.median);
                bench_rec_num(&rec, "min", st.min);
                bench_rec_num(&rec, "max", st.max);
                bench_rec_str(&rec, "kernel", bn_path_name(in->path));
                bench_rec_str(&rec, "layout", layout);
                bench_rec_str(&rec, "head", bn_type_name(in->head_layout));
                bench_rec_num(&rec, "model_bytes", (double)in->weight_bytes);
                bench_rec_num(&rec, "peak_rss", peak_rss_bytes());
                bench_rec_num(&rec, "reps", o.reps);
                if (o.json) {
                    bench_gate_add(&gate, &rec, stderr);
                    bench_rec_print_json(&rec, stdout);
                } else {
                    printf("| %-22.22s | %9.2f | %-5s | %-6s | %-6s | %7lld | %-6s | %8.2f  %6.2f..%-6.2f |\n",
                           name, (double)in->weight_bytes / (1 << 30), bn_type_name(in->head_layout),
                           bn_path_name(in->path), layout, (long long)o.t[ti], test, st.median,
                           st.min, st.max);
                    bench_gate_add(&gate, &rec, stdout);
                }
                fflush(stdout);
            }
        }
        bn_batch_free(&b);
        bn_ctx_free(c);
        bn_model_free(m);
    }
    fprintf(info, "peak RSS %.2f GiB\n", peak_rss_bytes() / (1 << 30));
    bench_gate_close(&gate, info);
    return rc;
}
