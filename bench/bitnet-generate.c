/* bench/bitnet-generate — generate text with the engine alone (no daemon).
 *
 *   bitnet-generate -m MODEL -p "prompt" -n N [--chat] [--system TEXT]
 *       [--temperature T] [--top-k K] [--top-p P] [--min-p P] [--repeat-penalty R]
 *       [--seed S] [--stop STR]... [--threads T] [--kernel scalar|avx2|avx512] [--ctx N]
 *
 * The generated text alone goes to stdout as it is produced; statistics (prompt
 * tokens, prefill and decode speed, why generation stopped) go to stderr.  Raw
 * completion of the prompt (with BOS when the vocabulary asks for it) unless --chat,
 * which renders the prompt as one user turn in the model's chat format. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bitnet.h"

#define MAX_N 1000000 /* -n limit: tokens to generate */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bitnet-generate -m MODEL -p PROMPT [-n N] [--chat] [--system TEXT]\n"
            "         [--temperature T] [--top-k K] [--top-p P] [--min-p P] [--repeat-penalty R]\n"
            "         [--seed S] [--stop STR]... [--threads T] [--kernel scalar|avx2|avx512] [--ctx N]\n");
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static bool parse_num(const char *opt, const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !isfinite(v) || v < lo || v > hi) {
        fprintf(stderr, "bitnet-generate: %s %s: expected a number in [%g, %g]\n", opt, s, lo, hi);
        return false;
    }
    *out = v;
    return true;
}

static const char *stop_name(int r)
{
    switch (r) {
    case BN_STOP_EOG: return "end-of-generation token";
    case BN_STOP_STRING: return "stop string";
    case BN_STOP_MAX_TOKENS: return "token limit (-n)";
    default: return "context full";
    }
}

static int write_out(struct bn_bytes *b)
{
    if (b->len && fwrite(b->data, 1, b->len, stdout) != b->len)
        return -1;
    fflush(stdout);
    b->len = 0;
    return 0;
}

int main(int argc, char **argv)
{
    const char *model_path = NULL, *prompt = NULL, *system = NULL;
    const char *stops[BN_STOP_MAX_STRINGS];
    size_t n_stops = 0;
    double n_gen = 128, n_ctx = 0, v;
    bool chat = false;
    struct bn_model_params mp;
    bn_model_params_default(&mp);
    struct bn_sampler_params sp;
    bn_sampler_params_default(&sp);
    enum { O_CHAT = 256, O_SYSTEM, O_TEMP, O_TOPK, O_TOPP, O_MINP, O_REP, O_SEED, O_STOP,
           O_THREADS, O_KERNEL, O_CTX };
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'},     {"prompt", required_argument, NULL, 'p'},
        {"n-predict", required_argument, NULL, 'n'}, {"chat", no_argument, NULL, O_CHAT},
        {"system", required_argument, NULL, O_SYSTEM},
        {"temperature", required_argument, NULL, O_TEMP}, {"temp", required_argument, NULL, O_TEMP},
        {"top-k", required_argument, NULL, O_TOPK},  {"top-p", required_argument, NULL, O_TOPP},
        {"min-p", required_argument, NULL, O_MINP},  {"repeat-penalty", required_argument, NULL, O_REP},
        {"seed", required_argument, NULL, O_SEED},   {"stop", required_argument, NULL, O_STOP},
        {"threads", required_argument, NULL, O_THREADS}, {"kernel", required_argument, NULL, O_KERNEL},
        {"ctx", required_argument, NULL, O_CTX},     {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "m:p:n:h", opts, NULL)) != -1) {
        bool ok = true;
        switch (o) {
        case 'm': model_path = optarg; break;
        case 'p': prompt = optarg; break;
        case 'n': ok = parse_num("-n", optarg, 0, MAX_N, &n_gen); break;
        case O_CHAT: chat = true; break;
        case O_SYSTEM: system = optarg; break;
        case O_TEMP: ok = parse_num("--temperature", optarg, -INFINITY, INFINITY, &v); sp.temperature = (float)v; break;
        case O_TOPK: ok = parse_num("--top-k", optarg, -1e9, 1e9, &v); sp.top_k = (int32_t)v; break;
        case O_TOPP: ok = parse_num("--top-p", optarg, -INFINITY, INFINITY, &v); sp.top_p = (float)v; break;
        case O_MINP: ok = parse_num("--min-p", optarg, -INFINITY, INFINITY, &v); sp.min_p = (float)v; break;
        case O_REP: ok = parse_num("--repeat-penalty", optarg, -INFINITY, INFINITY, &v); sp.repeat_penalty = (float)v; break;
        case O_SEED: ok = parse_num("--seed", optarg, 0, 18446744073709551615.0, &v); sp.seed = (uint64_t)v; break;
        case O_THREADS: ok = parse_num("--threads", optarg, 0, 1024, &v); mp.n_threads = (int)v; break;
        case O_CTX: ok = parse_num("--ctx", optarg, 0, BN_MODEL_MAX_CTX, &n_ctx); break;
        case O_STOP:
            if (n_stops == BN_STOP_MAX_STRINGS) {
                fprintf(stderr, "bitnet-generate: at most %d --stop strings\n", BN_STOP_MAX_STRINGS);
                return 2;
            }
            stops[n_stops++] = optarg;
            break;
        case O_KERNEL:
            if (!bn_path_parse(optarg, &mp.path)) {
                fprintf(stderr, "bitnet-generate: --kernel %s: use scalar, avx2 or avx512\n", optarg);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
        if (!ok)
            return 2;
    }
    if (!model_path || !prompt || optind != argc) {
        usage(stderr);
        return 2;
    }

    struct bn_err err = {{0}};
    struct bn_model *model = NULL;
    struct bn_vocab *vocab = NULL;
    struct bn_ctx *ctx = NULL;
    struct bn_sampler *smp = NULL;
    struct bn_stopper *stopper = NULL;
    struct bn_batch batch = {0};
    struct bn_tokens toks = {0};
    struct bn_bytes out = {0};
    int rc = 1;

    if (bn_sampler_params_check(&sp, &err))
        goto fail;
    double t0 = now_s();
    if (bn_model_load_file(model_path, &mp, &model, &err) ||
        bn_vocab_from_gguf(&vocab, bn_model_gguf(model), &err))
        goto fail;
    const struct bn_model_info *info = bn_model_get_info(model);
    double t_load = now_s() - t0;

    if (chat) {
        enum bn_chat_format f = bn_chat_format_from_gguf(bn_model_gguf(model));
        if (f == BN_CHAT_NONE) {
            bn_errf(&err, "%s: the model has no known chat format; drop --chat for a raw prompt",
                    model_path);
            goto fail;
        }
        struct bn_chat_msg msgs[2];
        size_t n_msgs = 0;
        if (system)
            msgs[n_msgs++] = (struct bn_chat_msg){"system", system, strlen(system)};
        msgs[n_msgs++] = (struct bn_chat_msg){"user", prompt, strlen(prompt)};
        if (bn_chat_tokenize(vocab, f, msgs, n_msgs, 0, true, &toks, &err))
            goto fail;
    } else if (bn_tokenize(vocab, prompt, strlen(prompt), bn_vocab_add_bos(vocab), false, &toks, &err)) {
        goto fail;
    }
    if (toks.n == 0) {
        bn_errf(&err, "the prompt is empty and the vocabulary adds no BOS: nothing to continue");
        goto fail;
    }

    struct bn_ctx_params cp;
    bn_ctx_params_default(&cp);
    cp.n_ctx = (int64_t)n_ctx;
    int32_t seq;
    if (bn_ctx_new(model, &cp, &ctx, &err) || bn_seq_new(ctx, &seq, &err) ||
        bn_batch_init(&batch, bn_ctx_n_batch(ctx), &err))
        goto fail;
    if ((int64_t)toks.n >= bn_ctx_n_ctx(ctx)) {
        bn_errf(&err, "the prompt has %zu tokens; the context holds %" PRId64
                " (--ctx), which leaves no room to generate", toks.n, bn_ctx_n_ctx(ctx));
        goto fail;
    }
    if (!(smp = bn_sampler_new(&sp, info->n_vocab, &err)) ||
        !(stopper = bn_stopper_new(vocab, stops, n_stops, (int64_t)n_gen, false, &err)))
        goto fail;
    for (size_t i = 0; i < toks.n; i++)
        bn_sampler_accept(smp, toks.ids[i]);
    fprintf(stderr, "bitnet-generate: %s (%s, %" PRId64 " layers, %s kernels, %d-token context), "
                    "loaded in %.2f s\n",
            model_path, info->arch, info->n_layer, bn_path_name(info->path),
            (int)bn_ctx_n_ctx(ctx), t_load);

    /* prefill, n_batch tokens per call */
    double t1 = now_s();
    const float *logits = NULL;
    for (size_t i0 = 0; i0 < toks.n; i0 += (size_t)batch.cap) {
        bn_batch_clear(&batch);
        for (size_t i = i0; i < toks.n && i < i0 + (size_t)batch.cap; i++)
            bn_batch_add(&batch, toks.ids[i], seq, (int64_t)i, i == toks.n - 1, NULL);
        if (bn_decode(ctx, &batch, &err))
            goto fail;
    }
    logits = bn_ctx_logits(ctx, batch.n - 1);
    double t_prefill = now_s() - t1;

    /* decode */
    double t2 = now_s();
    int64_t n_done = 0;
    int reason = BN_STOP_NONE;
    while (n_gen > 0) {
        int32_t id = bn_sampler_sample(smp, logits, &err);
        if (id < 0)
            goto fail;
        bn_sampler_accept(smp, id);
        n_done++;
        reason = bn_stopper_push(stopper, id, &out, &err);
        if (reason < 0 || write_out(&out))
            goto fail;
        if (reason != BN_STOP_NONE)
            break;
        if (bn_seq_len(ctx, seq) >= bn_ctx_n_ctx(ctx)) {
            if (bn_stopper_finish(stopper, &out, &err) || write_out(&out))
                goto fail;
            reason = -2; /* context full */
            break;
        }
        bn_batch_clear(&batch);
        bn_batch_add(&batch, id, seq, bn_seq_len(ctx, seq), true, NULL);
        if (bn_decode(ctx, &batch, &err))
            goto fail;
        logits = bn_ctx_logits(ctx, 0);
    }
    double t_dec = now_s() - t2;
    if (reason == BN_STOP_NONE) /* -n 0: nothing was asked for */
        reason = BN_STOP_MAX_TOKENS;
    fputc('\n', stderr);
    fprintf(stderr, "bitnet-generate: prompt %zu tokens, prefill %.3f s (%.1f tok/s); generated %" PRId64
                    " tokens in %.3f s (%.2f tok/s); stopped by %s\n",
            toks.n, t_prefill, (double)toks.n / t_prefill, n_done, t_dec,
            t_dec > 0 ? (double)(n_done > 1 ? n_done - 1 : 0) / t_dec : 0.0, stop_name(reason));
    rc = 0;
fail:
    if (rc)
        fprintf(stderr, "bitnet-generate: %s\n", err.msg);
    bn_bytes_free(&out);
    bn_tokens_free(&toks);
    bn_batch_free(&batch);
    bn_stopper_free(stopper);
    bn_sampler_free(smp);
    bn_ctx_free(ctx);
    bn_vocab_free(vocab);
    bn_model_free(model);
    return rc;
}
