/* bench/bitnet-logits — run token ids through a model and write the logits, or
 * continue them greedily.  Used by the tests and by whoever compares engines.
 *
 *   bitnet-logits -m MODEL --tokens 128000,12,345 --out FILE
 *       float32 little-endian logits [n_tokens][n_vocab], one row per position
 *   bitnet-logits -m MODEL --tokens ... --greedy N
 *       N greedy token ids after the given ones, one per line on stdout
 * Options: --threads T, --no-act-quant, --reference, --incremental (one token per
 * call), --kernel scalar|avx2|avx512, --kv f16|f32, --ctx N, --head-q8 (8-bit copy of
 * a float head, bn_model_params.head_q8).  Timing on stderr. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bitnet.h"

#define MAX_TOKENS BN_CTX_MAX_BATCH /* ids on the command line */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bitnet-logits -m MODEL --tokens ID,ID,... (--out FILE | --greedy N)\n"
            "         [--threads T] [--no-act-quant] [--reference] [--incremental]\n"
            "         [--kernel scalar|avx2|avx512] [--kv f16|f32] [--ctx N] [--head-q8]\n");
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int parse_tokens(const char *s, int32_t **out, int64_t *n)
{
    int64_t cap = 1;
    for (const char *p = s; *p; p++)
        cap += *p == ',';
    if (cap > MAX_TOKENS) {
        fprintf(stderr, "bitnet-logits: --tokens has %" PRId64 " ids; the limit is %d\n", cap,
                MAX_TOKENS);
        return -1;
    }
    int32_t *ids = malloc((size_t)cap * sizeof *ids);
    if (!ids)
        return -1;
    int64_t k = 0;
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || errno || v < INT32_MIN || v > INT32_MAX || (*end && *end != ',')) {
            fprintf(stderr, "bitnet-logits: --tokens: '%s' is not a comma-separated list of ids\n", s);
            free(ids);
            return -1;
        }
        ids[k++] = (int32_t)v;
        p = *end ? end + 1 : end;
    }
    if (k == 0) {
        fprintf(stderr, "bitnet-logits: --tokens is empty\n");
        free(ids);
        return -1;
    }
    *out = ids;
    *n = k;
    return 0;
}

static int32_t argmax(const float *x, int32_t n)
{
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i; /* lowest id on ties */
    return best;
}

/* Feed ids[0..n) to sequence seq (one batch, or one call per token); keep the logits
 * of every position in all_logits [n][n_vocab] when non-NULL. */
static int feed(struct bn_ctx *ctx, struct bn_batch *b, int32_t seq, const int32_t *ids, int64_t n,
                bool incremental, float *all_logits, const float **last, struct bn_err *err)
{
    int32_t n_vocab = bn_model_get_info(bn_ctx_model(ctx))->n_vocab;
    int64_t step = incremental ? 1 : bn_ctx_n_batch(ctx);
    for (int64_t i0 = 0; i0 < n; i0 += step) {
        int64_t len = n - i0 < step ? n - i0 : step;
        bn_batch_clear(b);
        int64_t pos0 = bn_seq_len(ctx, seq);
        for (int64_t j = 0; j < len; j++)
            if (bn_batch_add(b, ids[i0 + j], seq, pos0 + j, all_logits || i0 + j == n - 1, err))
                return -1;
        if (bn_decode(ctx, b, err))
            return -1;
        if (all_logits)
            for (int64_t j = 0; j < len; j++)
                memcpy(all_logits + (size_t)(i0 + j) * (size_t)n_vocab, bn_ctx_logits(ctx, j),
                       (size_t)n_vocab * sizeof(float));
        *last = bn_ctx_logits(ctx, len - 1);
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *model_path = NULL, *tokens_arg = NULL, *out_path = NULL;
    long greedy = -1, n_ctx = 0;
    struct bn_model_params mp;
    bn_model_params_default(&mp);
    struct bn_ctx_params cp;
    bn_ctx_params_default(&cp);
    bool incremental = false;
    enum { O_TOKENS = 256, O_OUT, O_GREEDY, O_THREADS, O_NOAQ, O_REF, O_INCR, O_KERNEL, O_KV, O_CTX, O_HEADQ8 };
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'},   {"tokens", required_argument, NULL, O_TOKENS},
        {"out", required_argument, NULL, O_OUT},   {"greedy", required_argument, NULL, O_GREEDY},
        {"threads", required_argument, NULL, O_THREADS},
        {"no-act-quant", no_argument, NULL, O_NOAQ}, {"reference", no_argument, NULL, O_REF},
        {"incremental", no_argument, NULL, O_INCR}, {"kernel", required_argument, NULL, O_KERNEL},
        {"kv", required_argument, NULL, O_KV},     {"ctx", required_argument, NULL, O_CTX},
        {"head-q8", no_argument, NULL, O_HEADQ8},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "m:h", opts, NULL)) != -1) {
        switch (o) {
        case 'm': model_path = optarg; break;
        case O_TOKENS: tokens_arg = optarg; break;
        case O_OUT: out_path = optarg; break;
        case O_GREEDY: greedy = strtol(optarg, NULL, 10); break;
        case O_THREADS: mp.n_threads = atoi(optarg); break;
        case O_NOAQ: mp.no_act_quant = true; break;
        case O_REF: mp.reference = true; break;
        case O_INCR: incremental = true; break;
        case O_HEADQ8: mp.head_q8 = true; break;
        case O_CTX: n_ctx = strtol(optarg, NULL, 10); break;
        case O_KERNEL:
            if (!bn_path_parse(optarg, &mp.path)) {
                fprintf(stderr, "bitnet-logits: --kernel %s: use scalar, avx2 or avx512\n", optarg);
                return 2;
            }
            break;
        case O_KV:
            if (strcmp(optarg, "f16") == 0) {
                cp.kv_type = BN_TYPE_F16;
            } else if (strcmp(optarg, "f32") == 0) {
                cp.kv_type = BN_TYPE_F32;
            } else {
                fprintf(stderr, "bitnet-logits: --kv %s: use f16 or f32\n", optarg);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!model_path || !tokens_arg || (!out_path && greedy < 0) || (out_path && greedy >= 0) ||
        optind != argc) {
        usage(stderr);
        return 2;
    }
    if (greedy > MAX_TOKENS) {
        fprintf(stderr, "bitnet-logits: --greedy %ld is more than the limit %d\n", greedy, MAX_TOKENS);
        return 2;
    }
    int32_t *ids;
    int64_t n;
    if (parse_tokens(tokens_arg, &ids, &n))
        return 2;

    struct bn_err err = {{0}};
    struct bn_model *model = NULL;
    struct bn_ctx *ctx = NULL;
    struct bn_batch batch = {0};
    float *all = NULL;
    int rc = 1;
    double t0 = now_s();
    if (bn_model_load_file(model_path, &mp, &model, &err))
        goto fail;
    double t_load = now_s() - t0;
    const struct bn_model_info *info = bn_model_get_info(model);
    cp.n_ctx = n_ctx;
    cp.n_batch = n < BN_CTX_DEFAULT_BATCH ? (n > 0 ? n : 1) : BN_CTX_DEFAULT_BATCH;
    if (out_path)
        cp.n_batch = n; /* the logits of every position come from one batch */
    int32_t seq;
    if (bn_ctx_new(model, &cp, &ctx, &err) || bn_seq_new(ctx, &seq, &err) ||
        bn_batch_init(&batch, cp.n_batch, &err))
        goto fail;
    if (out_path && !(all = malloc((size_t)n * (size_t)info->n_vocab * sizeof(float)))) {
        bn_errf(&err, "out of memory for %" PRId64 " x %" PRId32 " logits", n, info->n_vocab);
        goto fail;
    }
    fprintf(stderr, "bitnet-logits: %s: %s, %" PRId64 " layers, n_embd %" PRId64 ", vocab %" PRId32
                    ", %s kernels%s%s, loaded in %.2f s\n",
            model_path, info->arch, info->n_layer, info->n_embd, info->n_vocab,
            bn_path_name(info->path), mp.reference ? ", reference pass" : "",
            mp.no_act_quant ? ", no activation quantization" : "", t_load);

    const float *last = NULL;
    double t1 = now_s();
    if (feed(ctx, &batch, seq, ids, n, incremental, all, &last, &err))
        goto fail;
    double t_prefill = now_s() - t1;
    fprintf(stderr, "bitnet-logits: %" PRId64 " tokens in %.3f s (%.1f tok/s)\n", n, t_prefill,
            (double)n / t_prefill);

    if (out_path) {
        FILE *f = fopen(out_path, "wb");
        if (!f) {
            bn_errf(&err, "%s: cannot create: %s", out_path, strerror(errno));
            goto fail;
        }
        /* x86-64 and aarch64 Linux are little-endian: the floats are written as is. */
        size_t cnt = (size_t)n * (size_t)info->n_vocab;
        bool ok = fwrite(all, sizeof(float), cnt, f) == cnt;
        ok = (fclose(f) == 0) && ok;
        if (!ok) {
            bn_errf(&err, "%s: write failed: %s", out_path, strerror(errno));
            goto fail;
        }
    } else {
        double t2 = now_s();
        for (long i = 0; i < greedy; i++) {
            int32_t id = argmax(last, info->n_vocab);
            printf("%" PRId32 "\n", id);
            fflush(stdout);
            if (i + 1 == greedy)
                break;
            if (feed(ctx, &batch, seq, &id, 1, true, NULL, &last, &err))
                goto fail;
        }
        double t_dec = now_s() - t2;
        if (greedy > 1)
            fprintf(stderr, "bitnet-logits: %ld greedy steps in %.3f s (%.2f tok/s)\n", greedy - 1,
                    t_dec, (double)(greedy - 1) / t_dec);
    }
    rc = 0;
fail:
    if (rc)
        fprintf(stderr, "bitnet-logits: %s\n", err.msg);
    free(all);
    free(ids);
    bn_batch_free(&batch);
    bn_ctx_free(ctx);
    bn_model_free(model);
    return rc;
}
