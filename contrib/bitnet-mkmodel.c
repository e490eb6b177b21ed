/* contrib/bitnet-mkmodel.c — synthetic BitNet b1.58 models in the 2B-4T layout.
 *
 * Writes a GGUF with random weights that follow the model's statistics closely
 * enough for the forward pass to produce non-degenerate logits (the recipe of the
 * reference fixtures, ../shared/data/ref/README.md):
 *   token_embd  N(0, 0.02^2)                                   (F16/Q8_0/Q6_K/F32)
 *   norms       1 + 0.05 N(0, 1)                               (F32)
 *   projections ternary, P(-1) = P(0) = P(+1) = 1/3, one scale per tensor
 *               s = fp16(c / sqrt((2/3) n_in)), c ~ U(0.5, 2)  (I2_S/TQ2_0/TQ1_0)
 * Every format is produced by the simd traits' quantizers.  Each tensor row has its
 * own random stream derived from (seed, tensor, row), so the bytes depend on the
 * seed only, not on the thread count.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bitnet-mkmodel.h"

#define PROG "bitnet-mkmodel"
/* Limits on the shape flags: far beyond any BitNet model, small enough that sizes
 * cannot overflow. */
#define MAX_LAYERS 1024
#define MAX_DIM (1 << 20)
#define MAX_HEADS 4096
#define MAX_CTX (1 << 24)
#define MAX_THREADS 256
/* Rows generated and quantized per step by each thread. */
#define CHUNK_ROWS 256
#define EMBD_STD 0.02
#define NORM_STD 0.05
#define RMS_EPS 1e-5f
#define SCALE_C_MIN 0.5
#define SCALE_C_MAX 2.0

struct shape {
    const char *preset;
    int layers, hidden, ffn, heads, kv_heads, ctx;
    float theta;
};

static const struct shape presets[] = {
    /* REFERENCE §1: microsoft/bitnet-b1.58-2B-4T */
    {"2b4t", 30, 2560, 6912, 20, 5, 4096, 500000.0f},
    {"small", 4, 512, 1536, 8, 2, 1024, 500000.0f},
    {"tiny", 2, 256, 640, 4, 2, 256, 10000.0f},
};

struct type_name {
    const char *flag;
    enum bn_type type;
    uint32_t file_type; /* general.file_type (llama.cpp's / bitnet.cpp's numbering) */
};
static const struct type_name weight_types[] = {
    {"i2_s", BN_TYPE_I2_S, 40},
    {"tq2_0", BN_TYPE_TQ2_0, 37},
    {"tq1_0", BN_TYPE_TQ1_0, 36},
};
static const struct type_name embd_types[] = {
    {"f16", BN_TYPE_F16, 0},
    {"q8_0", BN_TYPE_Q8_0, 0},
    {"q6_k", BN_TYPE_Q6_K, 0},
    {"f32", BN_TYPE_F32, 0},
};

/* ------------------------------------------------------------------------------
 * Random numbers: xoshiro256** seeded through splitmix64
 * --------------------------------------------------------------------------- */
struct rng {
    uint64_t s[4];
};

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Stream for (seed, a, b): e.g. (seed, tensor index, row). */
static void rng_init(struct rng *r, uint64_t seed, uint64_t a, uint64_t b)
{
    uint64_t x = seed;
    x = splitmix64(&x) ^ a;
    x = splitmix64(&x) ^ b;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t rng_next(struct rng *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

/* Uniform in [0, 1) with 53 bits. */
static inline double rng_uniform(struct rng *r) { return (double)(rng_next(r) >> 11) * 0x1p-53; }

/* n values of N(mean, std^2): Marsaglia's polar method (no trigonometry; both
 * outputs used). */
static void rng_normal(struct rng *r, float *out, int64_t n, double mean, double std)
{
    for (int64_t i = 0; i < n; i += 2) {
        double u, v, q;
        do {
            u = 2.0 * rng_uniform(r) - 1.0;
            v = 2.0 * rng_uniform(r) - 1.0;
            q = u * u + v * v;
        } while (q >= 1.0 || q == 0.0);
        double f = std * sqrt(-2.0 * log(q) / q);
        out[i] = (float)(mean + u * f);
        if (i + 1 < n)
            out[i + 1] = (float)(mean + v * f);
    }
}

/* ------------------------------------------------------------------------------
 * Tensor generation (fill callbacks of the GGUF writer)
 *
 * Each thread takes a contiguous range of rows and, CHUNK_ROWS at a time, draws
 * their float values and quantizes them with the traits.  Blocks never straddle
 * rows, so a chunk's blocks are its rows' bytes in the tensor; a format with a
 * tail (I2_S's per-tensor scale) gets it from the chunk that ends the tensor.
 * Ternary values are exactly {-s, 0, +s}, so every chunk packs with the same s as
 * the whole tensor would (checked after, see fill_tensor).
 * --------------------------------------------------------------------------- */
enum kind { KIND_EMBD, KIND_NORM, KIND_TERNARY };

struct gen_tensor {
    char name[BN_GGUF_MAX_NAME];
    enum kind kind;
    enum bn_type type;
    int64_t ne0, ne1; /* cols, rows */
    uint64_t index;   /* tensor number: selects its random streams */
    uint64_t seed;
    struct bn_pool *pool;
};

/* Arguments of one parallel fill. */
struct gen_task {
    const struct gen_tensor *t;
    uint8_t *dst;
    float scale; /* ternary: the tensor's s */
    bool failed;
};

/* Values of row r: ternary {-s, 0, +s} with P = 1/3 each, or normal. */
static void gen_row(const struct gen_task *k, int64_t r, float *out)
{
    const struct gen_tensor *t = k->t;
    struct rng rg;
    rng_init(&rg, t->seed, t->index, (uint64_t)r);
    if (t->kind == KIND_TERNARY) {
        const float v[3] = {-k->scale, 0.0f, k->scale};
        for (int64_t c = 0; c < t->ne0; c += 2) {
            /* two uniform trits per 64-bit draw: ((32 bits) * 3) >> 32 */
            uint64_t x = rng_next(&rg);
            out[c] = v[((x & 0xffffffffu) * 3) >> 32];
            if (c + 1 < t->ne0)
                out[c + 1] = v[((x >> 32) * 3) >> 32];
        }
    } else if (t->kind == KIND_NORM) {
        rng_normal(&rg, out, t->ne0, 1.0, NORM_STD);
    } else {
        rng_normal(&rg, out, t->ne0, 0.0, EMBD_STD);
    }
}

static void gen_task_run(void *arg, int ith, int nth)
{
    struct gen_task *k = arg;
    const struct gen_tensor *t = k->t;
    const struct bn_type_traits *tr = bn_type_traits(t->type);
    size_t row_bytes = bn_row_bytes(t->type, t->ne0);
    int64_t lo, hi;
    bn_split_range(t->ne1, 1, ith, nth, &lo, &hi);
    if (lo >= hi)
        return;
    int64_t chunk = hi - lo < CHUNK_ROWS ? hi - lo : CHUNK_ROWS;
    float *vals = malloc((size_t)(chunk * t->ne0) * sizeof *vals);
    /* with a tail, quantize into scratch so the tail cannot land on the next rows */
    uint8_t *scratch = tr->tail_bytes ? malloc((size_t)chunk * row_bytes + tr->tail_bytes) : NULL;
    if (!vals || (tr->tail_bytes && !scratch)) {
        k->failed = true;
        goto out;
    }
    for (int64_t r0 = lo; r0 < hi; r0 += chunk) {
        int64_t nr = hi - r0 < chunk ? hi - r0 : chunk;
        for (int64_t r = 0; r < nr; r++)
            gen_row(k, r0 + r, vals + r * t->ne0);
        uint8_t *out = k->dst + (size_t)r0 * row_bytes;
        size_t body = (size_t)nr * row_bytes;
        if (tr->quantize(vals, scratch ? scratch : out, nr, t->ne0) != body + tr->tail_bytes) {
            k->failed = true;
            break;
        }
        if (scratch) {
            memcpy(out, scratch, body);
            if (r0 + nr == t->ne1)
                memcpy(out + body, scratch + body, tr->tail_bytes);
        }
    }
out:
    free(vals);
    free(scratch);
}

static int fill_tensor(void *ctx, void *dst, uint64_t bytes, struct bn_err *err)
{
    const struct gen_tensor *t = ctx;
    const struct bn_type_traits *tr = bn_type_traits(t->type);
    struct gen_task k = {.t = t, .dst = dst};
    uint64_t want;
    if (!tr || !tr->quantize)
        return bn_errf(err, "bitnetd has no quantizer for %s", bn_type_name(t->type));
    if (!bn_tensor_bytes(t->type, t->ne1, t->ne0, &want) || want != bytes)
        return bn_errf(err, "%s tensor [%" PRId64 ", %" PRId64 "] should have %" PRIu64 " bytes",
                       tr->name, t->ne0, t->ne1, bytes);
    if (t->kind == KIND_TERNARY) {
        /* One scale per tensor from the tensor's own stream (row id UINT64_MAX). */
        struct rng rg;
        rng_init(&rg, t->seed, t->index, UINT64_MAX);
        double c = SCALE_C_MIN + (SCALE_C_MAX - SCALE_C_MIN) * rng_uniform(&rg);
        k.scale = bn_f16_to_f32(bn_f32_to_f16((float)(c / sqrt(2.0 / 3.0 * (double)t->ne0))));
    }
    bn_pool_run(t->pool, gen_task_run, &k);
    if (k.failed)
        return bn_errf(err, "quantizing to %s failed (out of memory?)", tr->name);
    /* The tail's scale came from the last chunk alone: an all-zero last chunk (odds
     * 3^-(rows*cols)) would have stored 0.  Then quantize the tensor in one piece. */
    if (tr->per_tensor_scale && bn_tensor_scale(t->type, dst, t->ne1, t->ne0) != k.scale) {
        size_t n = (size_t)(t->ne0 * t->ne1);
        float *vals = malloc(n * sizeof *vals);
        if (!vals)
            return bn_errf(err, "out of memory for %zu floats", n);
        for (int64_t r = 0; r < t->ne1; r++)
            gen_row(&k, r, vals + r * t->ne0);
        size_t got = tr->quantize(vals, dst, t->ne1, t->ne0);
        free(vals);
        if (got != bytes)
            return bn_errf(err, "the %s quantizer wrote %zu bytes, expected %" PRIu64, tr->name, got, bytes);
    }
    return 0;
}

/* ------------------------------------------------------------------------------
 * Command line
 * --------------------------------------------------------------------------- */
struct opts {
    struct shape s;
    const char *arch;
    const struct type_name *wtype, *etype;
    uint64_t seed;
    const char *vocab;
    const char *out;
    const char *name;
    int threads; /* 0: one per core */
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: " PROG " [options] --out FILE\n"
            "Write a synthetic BitNet b1.58 model (2B-4T layout, random weights) as GGUF.\n"
            "\n"
            "  --preset 2b4t|small|tiny   shape preset (default tiny); the flags below override it\n"
            "                              2b4t:  30 layers, 2560 hidden, 6912 ffn, 20/5 heads, ctx 4096\n"
            "                              small:  4 layers,  512 hidden, 1536 ffn,  8/2 heads, ctx 1024\n"
            "                              tiny:   2 layers,  256 hidden,  640 ffn,  4/2 heads, ctx 256\n"
            "  --layers N --hidden N --ffn N --heads N --kv-heads N --ctx N --rope-theta X\n"
            "  --arch bitnet-b1.58|bitnet-25   architecture name and key prefix (default bitnet-b1.58)\n"
            "  --weights i2_s|tq2_0|tq1_0      ternary projection format (default i2_s)\n"
            "  --embd f16|q8_0|q6_k|f32        token embedding format (default f16)\n"
            "  --seed N                        random seed (default 1); same seed, same bytes\n"
            "  --vocab FILE                    tokenizer.json (Hugging Face BPE; tokenizer_config.json\n"
            "                                  beside it adds the chat template) or a GGUF whose\n"
            "                                  tokenizer.* keys are copied; default: a small built-in\n"
            "                                  byte-level vocabulary\n"
            "  --name TEXT                     general.name\n"
            "  --threads N                     generator threads (default: one per core; the bytes\n"
            "                                  written do not depend on it)\n"
            "  --out FILE                      output path (written to FILE.tmp, then renamed)\n"
            "  --help\n");
}

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
    va_list ap;
    fputs(PROG ": ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(" (see " PROG " --help)\n", stderr);
    return 2;
}

static int parse_int(const char *flag, const char *s, int min, int max, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end)
        return usage_error("%s: '%s' is not a whole number", flag, s);
    if (v < min || v > max)
        return usage_error("%s: %ld is out of range (%d..%d)", flag, v, min, max);
    *out = (int)v;
    return 0;
}

static const struct type_name *find_type(const struct type_name *list, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i].flag, s) == 0)
            return &list[i];
    return NULL;
}

enum { OPT_PRESET = 256, OPT_LAYERS, OPT_HIDDEN, OPT_FFN, OPT_HEADS, OPT_KV_HEADS, OPT_CTX,
       OPT_THETA, OPT_ARCH, OPT_WEIGHTS, OPT_EMBD, OPT_SEED, OPT_VOCAB, OPT_OUT, OPT_NAME, OPT_THREADS,
       OPT_HELP };

static int parse_args(int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        {"preset", required_argument, NULL, OPT_PRESET}, {"layers", required_argument, NULL, OPT_LAYERS},
        {"hidden", required_argument, NULL, OPT_HIDDEN}, {"ffn", required_argument, NULL, OPT_FFN},
        {"heads", required_argument, NULL, OPT_HEADS},   {"kv-heads", required_argument, NULL, OPT_KV_HEADS},
        {"ctx", required_argument, NULL, OPT_CTX},       {"rope-theta", required_argument, NULL, OPT_THETA},
        {"arch", required_argument, NULL, OPT_ARCH},     {"weights", required_argument, NULL, OPT_WEIGHTS},
        {"embd", required_argument, NULL, OPT_EMBD},     {"seed", required_argument, NULL, OPT_SEED},
        {"vocab", required_argument, NULL, OPT_VOCAB},   {"out", required_argument, NULL, OPT_OUT},
        {"name", required_argument, NULL, OPT_NAME},     {"threads", required_argument, NULL, OPT_THREADS},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    *o = (struct opts){.s = presets[2], .arch = "bitnet-b1.58", .wtype = &weight_types[0],
                       .etype = &embd_types[0], .seed = 1};
    /* The preset first, wherever it is, so that shape flags override it. */
    for (int i = 1; i < argc; i++) {
        const char *p = NULL;
        if (strcmp(argv[i], "--preset") == 0 && i + 1 < argc)
            p = argv[i + 1];
        else if (strncmp(argv[i], "--preset=", 9) == 0)
            p = argv[i] + 9;
        if (!p)
            continue;
        size_t k;
        for (k = 0; k < sizeof presets / sizeof presets[0]; k++)
            if (strcmp(presets[k].preset, p) == 0)
                break;
        if (k == sizeof presets / sizeof presets[0])
            return usage_error("--preset: '%s' is not one of 2b4t, small, tiny", p);
        o->s = presets[k];
    }
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        int rc = 0;
        switch (c) {
        case OPT_PRESET: break;
        case OPT_LAYERS: rc = parse_int("--layers", optarg, 1, MAX_LAYERS, &o->s.layers); break;
        case OPT_HIDDEN: rc = parse_int("--hidden", optarg, 1, MAX_DIM, &o->s.hidden); break;
        case OPT_FFN: rc = parse_int("--ffn", optarg, 1, MAX_DIM, &o->s.ffn); break;
        case OPT_HEADS: rc = parse_int("--heads", optarg, 1, MAX_HEADS, &o->s.heads); break;
        case OPT_KV_HEADS: rc = parse_int("--kv-heads", optarg, 1, MAX_HEADS, &o->s.kv_heads); break;
        case OPT_CTX: rc = parse_int("--ctx", optarg, 1, MAX_CTX, &o->s.ctx); break;
        case OPT_THETA: {
            char *end;
            double v = strtod(optarg, &end);
            if (end == optarg || *end || !(v > 0) || !isfinite((float)v))
                return usage_error("--rope-theta: '%s' is not a positive number", optarg);
            o->s.theta = (float)v;
            break;
        }
        case OPT_ARCH:
            if (strcmp(optarg, "bitnet-b1.58") && strcmp(optarg, "bitnet-25"))
                return usage_error("--arch: '%s' is not bitnet-b1.58 or bitnet-25", optarg);
            o->arch = optarg;
            break;
        case OPT_WEIGHTS:
            o->wtype = find_type(weight_types, sizeof weight_types / sizeof weight_types[0], optarg);
            if (!o->wtype)
                return usage_error("--weights: '%s' is not one of i2_s, tq2_0, tq1_0", optarg);
            break;
        case OPT_EMBD:
            o->etype = find_type(embd_types, sizeof embd_types / sizeof embd_types[0], optarg);
            if (!o->etype)
                return usage_error("--embd: '%s' is not one of f16, q8_0, q6_k, f32", optarg);
            break;
        case OPT_SEED: {
            char *end;
            errno = 0;
            o->seed = strtoull(optarg, &end, 0);
            if (errno || end == optarg || *end || optarg[0] == '-')
                return usage_error("--seed: '%s' is not a non-negative whole number", optarg);
            break;
        }
        case OPT_VOCAB: o->vocab = optarg; break;
        case OPT_OUT: o->out = optarg; break;
        case OPT_NAME: o->name = optarg; break;
        case OPT_THREADS: rc = parse_int("--threads", optarg, 1, MAX_THREADS, &o->threads); break;
        case OPT_HELP: usage(stdout); exit(0);
        case ':': return usage_error("%s needs a value", argv[optind - 1]);
        default: return usage_error("unknown option '%s'", argv[optind - 1]);
        }
        if (rc)
            return rc;
    }
    if (optind < argc)
        return usage_error("unexpected argument '%s'", argv[optind]);
    if (!o->out)
        return usage_error("--out FILE is required");

    const struct shape *s = &o->s;
    if (s->hidden % s->heads)
        return usage_error("--hidden %d is not a multiple of --heads %d", s->hidden, s->heads);
    if (s->heads % s->kv_heads)
        return usage_error("--heads %d is not a multiple of --kv-heads %d", s->heads, s->kv_heads);
    if ((s->hidden / s->heads) % 2)
        return usage_error("head dim %d (--hidden / --heads) must be even for RoPE", s->hidden / s->heads);
    const struct bn_type_traits *wt = bn_type_traits(o->wtype->type), *et = bn_type_traits(o->etype->type);
    if (s->hidden % wt->block_elems || s->ffn % wt->block_elems)
        return usage_error("--hidden %d and --ffn %d must be multiples of %" PRId64 ", the %s block size",
                           s->hidden, s->ffn, wt->block_elems, wt->name);
    if (s->hidden % et->block_elems)
        return usage_error("--hidden %d must be a multiple of %" PRId64 ", the %s block size", s->hidden,
                           et->block_elems, et->name);
    return 0;
}

/* ------------------------------------------------------------------------------
 * The model
 * --------------------------------------------------------------------------- */
static void set_arch_u32(struct bn_gguf_writer *w, const char *arch, const char *key, uint32_t v)
{
    char k[128];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    bn_gguf_set_u32(w, k, v);
}
static void set_arch_f32(struct bn_gguf_writer *w, const char *arch, const char *key, float v)
{
    char k[128];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    bn_gguf_set_f32(w, k, v);
}

static void add_tensor(struct bn_gguf_writer *w, struct gen_tensor *list, size_t *n, struct bn_pool *pool,
                       uint64_t seed, const char *name, enum kind kind, enum bn_type type, int64_t ne0,
                       int64_t ne1)
{
    struct gen_tensor *t = &list[*n];
    *t = (struct gen_tensor){
        .kind = kind, .type = type, .ne0 = ne0, .ne1 = ne1, .index = *n, .seed = seed, .pool = pool};
    snprintf(t->name, sizeof t->name, "%s", name);
    int64_t ne[2] = {ne0, ne1};
    bn_gguf_add_tensor(w, t->name, type, ne1 > 1 || kind != KIND_NORM ? 2 : 1, ne, fill_tensor, t);
    (*n)++;
}

int main(int argc, char **argv)
{
    struct opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc;
    const struct shape *s = &o.s;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);

    struct bn_err err;
    struct mk_vocab vocab;
    if ((o.vocab ? mk_vocab_load(&vocab, o.vocab, &err) : mk_vocab_builtin(&vocab, &err))) {
        fprintf(stderr, PROG ": %s\n", err.msg);
        return 1;
    }

    struct bn_gguf_writer *w = bn_gguf_writer_new();
    struct bn_pool *pool = bn_pool_create(o.threads);
    size_t max_tensors = 11 * (size_t)s->layers + 2;
    struct gen_tensor *tensors = calloc(max_tensors, sizeof *tensors);
    if (!w || !pool || !tensors) {
        fprintf(stderr, PROG ": out of memory\n");
        return 1;
    }

    char name[256];
    snprintf(name, sizeof name, "%s", o.name ? o.name : "");
    if (!o.name)
        snprintf(name, sizeof name, "synthetic-%s-%s-seed%" PRIu64, o.arch, s->preset, o.seed);
    const char *a = o.arch;
    bn_gguf_set_str(w, "general.architecture", a);
    bn_gguf_set_str(w, "general.name", name);
    set_arch_u32(w, a, "vocab_size", (uint32_t)vocab.n);
    set_arch_u32(w, a, "context_length", (uint32_t)s->ctx);
    set_arch_u32(w, a, "embedding_length", (uint32_t)s->hidden);
    set_arch_u32(w, a, "block_count", (uint32_t)s->layers);
    set_arch_u32(w, a, "feed_forward_length", (uint32_t)s->ffn);
    set_arch_u32(w, a, "rope.dimension_count", (uint32_t)(s->hidden / s->heads));
    set_arch_u32(w, a, "attention.head_count", (uint32_t)s->heads);
    set_arch_u32(w, a, "attention.head_count_kv", (uint32_t)s->kv_heads);
    set_arch_f32(w, a, "attention.layer_norm_rms_epsilon", RMS_EPS);
    set_arch_f32(w, a, "rope.freq_base", s->theta);
    bn_gguf_set_u32(w, "general.file_type", o.wtype->file_type);
    bn_gguf_set_u32(w, "general.quantization_version", 2);
    mk_vocab_set_keys(w, &vocab);

    /* Tensors in the order of REFERENCE §1 (ne0 = input features first). */
    int64_t h = s->hidden, ff = s->ffn, kv = (int64_t)(s->hidden / s->heads) * s->kv_heads;
    enum bn_type wt = o.wtype->type;
    size_t n = 0;
    add_tensor(w, tensors, &n, pool, o.seed, "token_embd.weight", KIND_EMBD, o.etype->type, h, (int64_t)vocab.n);
    for (int l = 0; l < s->layers; l++) {
        static const struct {
            const char *suffix;
            enum kind kind;
            int in, out; /* 'h' hidden, 'f' ffn, 'k' kv dim, '1' one row */
        } layer[] = {
            {"attn_norm", KIND_NORM, 'h', '1'},     {"attn_q", KIND_TERNARY, 'h', 'h'},
            {"attn_k", KIND_TERNARY, 'h', 'k'},     {"attn_v", KIND_TERNARY, 'h', 'k'},
            {"attn_output", KIND_TERNARY, 'h', 'h'}, {"attn_sub_norm", KIND_NORM, 'h', '1'},
            {"ffn_norm", KIND_NORM, 'h', '1'},      {"ffn_gate", KIND_TERNARY, 'h', 'f'},
            {"ffn_up", KIND_TERNARY, 'h', 'f'},     {"ffn_down", KIND_TERNARY, 'f', 'h'},
            {"ffn_sub_norm", KIND_NORM, 'f', '1'},
        };
        for (size_t k = 0; k < sizeof layer / sizeof layer[0]; k++) {
            int64_t dims[2];
            int which[2] = {layer[k].in, layer[k].out};
            for (int d = 0; d < 2; d++)
                dims[d] = which[d] == 'h' ? h : which[d] == 'f' ? ff : which[d] == 'k' ? kv : 1;
            char tn[BN_GGUF_MAX_NAME];
            snprintf(tn, sizeof tn, "blk.%d.%s.weight", l, layer[k].suffix);
            add_tensor(w, tensors, &n, pool, o.seed, tn, layer[k].kind,
                       layer[k].kind == KIND_NORM ? BN_TYPE_F32 : wt, dims[0], dims[1]);
        }
    }
    add_tensor(w, tensors, &n, pool, o.seed, "output_norm.weight", KIND_NORM, BN_TYPE_F32, h, 1);

    size_t n_vocab = vocab.n;
    rc = bn_gguf_writer_write(w, o.out, &err);
    if (rc)
        fprintf(stderr, PROG ": %s\n", err.msg);
    bn_gguf_writer_free(w);
    mk_vocab_free(&vocab);
    free(tensors);
    bn_pool_destroy(pool);
    if (rc)
        return 1;

    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    fprintf(stderr, PROG ": wrote %s: %zu tensors, %d layers, vocab %zu, %s weights, %s embedding, in %.1f s\n",
            o.out, n, s->layers, n_vocab, bn_type_name(wt), bn_type_name(o.etype->type), secs);
    return 0;
}
