/* bench/bench-gemv — every matmul kernel on the BitNet b1.58 2B-4T shapes: GB/s of
 * weights streamed and GMAC/s, against this machine's measured rooflines.
 *
 *   bench-gemv [--json] [--threads 1,2] [--tokens 1,128] [--kernel avx512|avx2|scalar|all]
 *              [--shapes q,kv,up,down,head] [--min-time SEC] [--quick]
 *              [--baseline FILE] [--save-baseline FILE]
 *   bench-gemv --accuracy [ROWS]   (logits error of the F16 / Q8_0 / Q6_K head kernels)
 *
 * One token (decode) streams each weight from memory: the matrix is replicated to
 * BENCH_STREAM_BYTES and the copies are used in turn, so no call finds its weights
 * in the caches.  Weights live in bn_weights_alloc memory (transparent huge pages),
 * as a loader should keep them.  Several tokens (prefill) are compute-bound: one copy.  Each figure
 * is the median of repeated bn_matmul calls (activation quantization and thread
 * dispatch included), with the spread (min..max). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"
#include "simd.h"

#define BENCH_STREAM_BYTES (384ull << 20) /* decode working set: 12x a 32 MB L3 */
#define BENCH_MAX_LIST 8
#define BENCH_MAX_SAMPLES 4096
#define BENCH_MIN_SAMPLES 3
#define BENCH_HEAD_MAX_TOKENS 8 /* head shape: batched decode of up to 8 sequences */

struct shape {
    const char *name;
    int64_t rows, cols;
    bool head; /* float formats instead of ternary */
};
static const struct shape shapes[] = {
    {"q", 2560, 2560, false},   /* attn_q, attn_output */
    {"kv", 640, 2560, false},   /* attn_k, attn_v */
    {"up", 6912, 2560, false},  /* ffn_gate, ffn_up */
    {"down", 2560, 6912, false},/* ffn_down */
    {"head", 128256, 2560, true}/* tied token_embd as LM head */
};

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Random valid bytes of a stored format (timing only needs plausible data). */
static void *make_source(enum bn_type type, int64_t rows, int64_t cols)
{
    uint64_t bytes;
    if (!bn_tensor_bytes(type, rows, cols, &bytes))
        return NULL;
    uint8_t *p = bn_weights_alloc(bytes);
    if (!p)
        return NULL;
    for (uint64_t i = 0; i < bytes; i += 8) {
        uint64_t v = rng();
        memcpy(p + i, &v, bytes - i < 8 ? bytes - i : 8);
    }
    if (type == BN_TYPE_I2_S) { /* every 2-bit code in {0,1,2} */
        for (uint64_t i = 0; i < bytes; i++) {
            uint8_t b = p[i], o = 0;
            for (int k = 0; k < 4; k++)
                o |= (uint8_t)((((b >> (2 * k)) & 3) % 3) << (2 * k));
            p[i] = o;
        }
        float s = 0.0375f;
        memcpy(p + (size_t)rows * (size_t)(cols / 4), &s, 4);
    } else if (type == BN_TYPE_F16) { /* finite halves of magnitude < 2 */
        for (uint64_t i = 0; i + 1 < bytes; i += 2)
            p[i + 1] &= 0xbb;
    } else if (type == BN_TYPE_Q8_0) {
        uint16_t d = bn_f32_to_f16(0.01f);
        for (uint64_t i = 0; i < bytes; i += 34)
            memcpy(p + i, &d, 2);
    } else if (type == BN_TYPE_Q6_K) {
        uint16_t d = bn_f32_to_f16(0.001f);
        for (uint64_t i = 0; i < bytes; i += 210)
            memcpy(p + i + 208, &d, 2);
    }
    return p;
}

struct opts {
    bool json, quick;
    int64_t threads[BENCH_MAX_LIST], tokens[BENCH_MAX_LIST];
    int n_threads, n_tokens;
    bool path_on[BN_PATH_COUNT];
    bool shape_on[sizeof shapes / sizeof shapes[0]];
    double min_time;
    const char *baseline, *save;
};

static void usage(void)
{
    fprintf(stderr,
            "usage: bench-gemv [--json] [--threads 1,2] [--tokens 1,128] [--kernel avx512|avx2|scalar|all]\n"
            "                  [--shapes q,kv,up,down,head] [--min-time SEC] [--quick]\n"
            "                  [--baseline FILE] [--save-baseline FILE]\n"
            "       bench-gemv --accuracy [ROWS]\n");
}

static bool parse_args(int argc, char **argv, struct opts *o)
{
    memset(o, 0, sizeof *o);
    o->threads[0] = 1;
    o->threads[1] = 2;
    o->n_threads = 2;
    o->tokens[0] = 1;
    o->tokens[1] = 128;
    o->n_tokens = 2;
    o->min_time = 0.5;
    for (int p = BN_PATH_AVX2; p < BN_PATH_COUNT; p++)
        o->path_on[p] = bn_path_supported((enum bn_path)p);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        o->shape_on[s] = true;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--json")) {
            o->json = true;
        } else if (!strcmp(a, "--quick")) {
            o->quick = true;
            o->min_time = 0.15;
        } else if (!strcmp(a, "--threads") && v) {
            if (!bench_parse_list(v, o->threads, BENCH_MAX_LIST, &o->n_threads))
                return fprintf(stderr, "bench-gemv: --threads wants a list like 1,2\n"), false;
            i++;
        } else if (!strcmp(a, "--tokens") && v) {
            if (!bench_parse_list(v, o->tokens, BENCH_MAX_LIST, &o->n_tokens))
                return fprintf(stderr, "bench-gemv: --tokens wants a list like 1,128\n"), false;
            i++;
        } else if (!strcmp(a, "--kernel") && v) {
            enum bn_path p;
            memset(o->path_on, 0, sizeof o->path_on);
            if (!strcmp(v, "all")) {
                for (int k = 0; k < BN_PATH_COUNT; k++)
                    o->path_on[k] = bn_path_supported((enum bn_path)k);
            } else if (bn_path_parse(v, &p) && bn_path_supported(p)) {
                o->path_on[p] = true;
            } else {
                return fprintf(stderr, "bench-gemv: --kernel %s is not a path this CPU runs\n", v), false;
            }
            i++;
        } else if (!strcmp(a, "--shapes") && v) {
            memset(o->shape_on, 0, sizeof o->shape_on);
            char buf[128];
            snprintf(buf, sizeof buf, "%s", v);
            for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
                size_t s = 0;
                while (s < sizeof shapes / sizeof shapes[0] && strcmp(shapes[s].name, tok))
                    s++;
                if (s == sizeof shapes / sizeof shapes[0])
                    return fprintf(stderr, "bench-gemv: unknown shape '%s' (q, kv, up, down, head)\n", tok), false;
                o->shape_on[s] = true;
            }
            i++;
        } else if (!strcmp(a, "--min-time") && v) {
            o->min_time = atof(v);
            if (!(o->min_time > 0 && o->min_time < 600))
                return fprintf(stderr, "bench-gemv: --min-time wants seconds in (0, 600)\n"), false;
            i++;
        } else if (!strcmp(a, "--baseline") && v) {
            o->baseline = v;
            i++;
        } else if (!strcmp(a, "--save-baseline") && v) {
            o->save = v;
            i++;
        } else {
            usage();
            return false;
        }
    }
    return true;
}

struct run_ctx {
    const struct opts *o;
    struct bench_gate *gate;
    struct bench_roofline roof[BENCH_MAX_LIST];
    float *x, *y;
};

/* Time bn_matmul of `copies` matrices (used in turn) and report one result line. */
static void measure(struct run_ctx *c, const struct shape *sh, enum bn_path path,
                    struct bn_matrix *m, int copies, uint64_t bytes, int64_t nt, int ti)
{
    int nth = (int)c->o->threads[ti];
    struct bn_pool *pool = bn_pool_create(nth);
    static double t[BENCH_MAX_SAMPLES];
    int n = 0;
    bn_matmul(pool, &m[0], c->x, nt, c->y, 0); /* warm-up: scratch, thread start */
    double start = bench_now();
    while (n < BENCH_MAX_SAMPLES && (n < BENCH_MIN_SAMPLES || bench_now() - start < c->o->min_time)) {
        double a = bench_now();
        bn_matmul(pool, &m[n % copies], c->x, nt, c->y, 0);
        t[n++] = bench_now() - a;
    }
    bn_pool_destroy(pool);
    struct bench_stats st = bench_stats(t, n);
    double macs = (double)sh->rows * (double)sh->cols * (double)nt;
    double gbps = (double)bytes / st.median / 1e9, gmac = macs / st.median / 1e9;
    const struct bench_roofline *rf = &c->roof[ti];
    double roof_pct = nt == 1 ? 100.0 * gbps / rf->read_gbps
                              : 100.0 * gmac / (sh->head ? rf->f32_gmacps : rf->i8_gmacps);
    struct bench_rec r = {0};
    bench_rec_str(&r, "kernel", bn_path_name(path));
    bench_rec_str(&r, "format", bn_type_name(m->type));
    bench_rec_str(&r, "shape", sh->name);
    bench_rec_num(&r, "rows", (double)sh->rows);
    bench_rec_num(&r, "cols", (double)sh->cols);
    bench_rec_num(&r, "tokens", (double)nt);
    bench_rec_num(&r, "threads", nth);
    bench_rec_num(&r, "us", st.median * 1e6);
    bench_rec_num(&r, "us_min", st.min * 1e6);
    bench_rec_num(&r, "us_max", st.max * 1e6);
    bench_rec_num(&r, "gb_per_s", gbps);
    bench_rec_num(&r, "gmac_per_s", gmac);
    bench_rec_num(&r, "roofline_pct", isfinite(roof_pct) ? roof_pct : 0.0);
    if (c->o->json) {
        bench_gate_add(c->gate, &r, stderr);
        bench_rec_print_json(&r, stdout);
    } else {
        printf("%-7s %-7s %-5s %6lld x %-5lld %4lld %3d %11.1f %9.1f..%-9.1f %7.2f %8.1f %6.0f%%\n",
               bn_path_name(path), bn_type_name(m->type), sh->name, (long long)sh->rows,
               (long long)sh->cols, (long long)nt, nth, st.median * 1e6, st.min * 1e6,
               st.max * 1e6, gbps, gmac, roof_pct);
        bench_gate_add(c->gate, &r, stdout);
    }
    fflush(stdout);
}

/* Lay out src (stored as src_type) for `path` preferring `prefer`, replicate, time. */
static void bench_layout(struct run_ctx *c, const struct shape *sh, enum bn_path path,
                         enum bn_type src_type, const void *src, enum bn_type prefer)
{
    uint64_t bytes;
    enum bn_type dt = bn_matrix_layout(src_type, sh->rows, sh->cols, path, prefer, &bytes);
    if (prefer != BN_TYPE_COUNT && dt != prefer && !(prefer == BN_TYPE_I2_S && dt != src_type))
        return; /* that layout does not exist on this path */
    void *first = NULL;
    struct bn_matrix m0;
    char err[256];
    if (dt != src_type && !(first = bn_weights_alloc(bytes)))
        return;
    if (!bn_matrix_init(&m0, src_type, src, sh->rows, sh->cols, dt, first, path, err, sizeof err)) {
        fprintf(stderr, "bench-gemv: %s\n", err);
        bn_weights_free(first, bytes);
        return;
    }
    for (int ki = 0; ki < c->o->n_tokens; ki++) {
        int64_t nt = c->o->tokens[ki];
        if (sh->head && nt > BENCH_HEAD_MAX_TOKENS)
            continue; /* logits are wanted for the last token of a prompt, or one per
                       * sequence of a batched decode step: a few tokens at most */
        if (path == BN_PATH_SCALAR && (nt > 1 || sh->head))
            continue; /* the scalar reference takes seconds there */
        int copies = nt == 1 || sh->head ? (int)(BENCH_STREAM_BYTES / bytes) : 1;
        copies = copies < 1 ? 1 : copies;
        struct bn_matrix *ms = calloc((size_t)copies, sizeof *ms);
        void **bufs = calloc((size_t)copies, sizeof *bufs);
        ms[0] = m0;
        int made = 1;
        for (; made < copies; made++) {
            if (!(bufs[made] = bn_weights_alloc(bytes)))
                break;
            memcpy(bufs[made], m0.data, bytes);
            bn_matrix_view(&ms[made], dt, bufs[made], sh->rows, sh->cols, path);
        }
        for (int ti = 0; ti < c->o->n_threads; ti++)
            measure(c, sh, path, ms, made, bytes, nt, ti);
        for (int i = 1; i < made; i++)
            bn_weights_free(bufs[i], bytes);
        free(bufs);
        free(ms);
    }
    bn_weights_free(first, bytes);
}

/* ---- --accuracy: logits of the head formats against float64 math on F16 weights ---- */

#define ACC_VECTORS 6
#define ACC_TOPK 10

static double gauss(void)
{
    double u = ((rng() >> 11) + 0.5) * (1.0 / 9007199254740992.0), v = ((rng() >> 11) + 0.5) * (1.0 / 9007199254740992.0);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

static int64_t argmax(const float *y, int64_t n)
{
    int64_t b = 0;
    for (int64_t i = 1; i < n; i++)
        b = y[i] > y[b] ? i : b;
    return b;
}

/* |top-k(a) & top-k(b)| */
static int topk_overlap(const float *a, const double *b, int64_t n)
{
    int64_t ia[ACC_TOPK], ib[ACC_TOPK];
    for (int k = 0; k < ACC_TOPK; k++) {
        int64_t ba = -1, bb = -1;
        for (int64_t i = 0; i < n; i++) {
            bool ua = false, ub = false;
            for (int j = 0; j < k; j++) {
                ua |= ia[j] == i;
                ub |= ib[j] == i;
            }
            if (!ua && (ba < 0 || a[i] > a[ba]))
                ba = i;
            if (!ub && (bb < 0 || b[i] > b[bb]))
                bb = i;
        }
        ia[k] = ba;
        ib[k] = bb;
    }
    int o = 0;
    for (int i = 0; i < ACC_TOPK; i++)
        for (int j = 0; j < ACC_TOPK; j++)
            o += ia[i] == ib[j];
    return o;
}

static int accuracy(int64_t rows)
{
    const int64_t cols = 2560;
    enum bn_path path = bn_path_default();
    size_t n = (size_t)(rows * cols);
    uint16_t *h = malloc(n * 2);
    float *wf = malloc(n * sizeof(float)), *x = malloc((size_t)cols * sizeof(float));
    double *ref = malloc((size_t)rows * sizeof(double));
    float *y = malloc((size_t)rows * sizeof(float));
    if (!h || !wf || !x || !ref || !y) {
        fprintf(stderr, "bench-gemv: out of memory for the accuracy check\n");
        return 1;
    }
    /* embedding-like rows: normal values, row norms varying by ~2x */
    for (int64_t r = 0; r < rows; r++) {
        double rs = 0.02 * (0.7 + 0.6 * (double)(rng() % 1000) / 1000.0);
        for (int64_t c = 0; c < cols; c++)
            wf[r * cols + c] = (float)(gauss() * rs);
    }
    bn_f32_to_f16_row(wf, h, (int64_t)n);
    bn_f16_to_f32_row(h, wf, (int64_t)n); /* the F16 values are the truth */
    uint64_t b8, b6;
    bn_tensor_bytes(BN_TYPE_Q8_0, rows, cols, &b8);
    bn_tensor_bytes(BN_TYPE_Q6_K, rows, cols, &b6);
    void *q8 = malloc(b8), *q6 = malloc(b6);
    struct bn_matrix m16, m8, m6, m8s, m6s;
    bn_matrix_view(&m16, BN_TYPE_F16, h, rows, cols, path);
    if (!q8 || !q6 || !bn_matrix_init(&m8, BN_TYPE_F16, h, rows, cols, BN_TYPE_Q8_0, q8, path, NULL, 0)) {
        fprintf(stderr, "bench-gemv: cannot build the 8-bit head\n");
        return 1;
    }
    bn_type_traits(BN_TYPE_Q6_K)->quantize(wf, q6, rows, cols);
    bn_matrix_view(&m6, BN_TYPE_Q6_K, q6, rows, cols, path);
    bn_matrix_view(&m8s, BN_TYPE_Q8_0, q8, rows, cols, BN_PATH_SCALAR);
    bn_matrix_view(&m6s, BN_TYPE_Q6_K, q6, rows, cols, BN_PATH_SCALAR);
    struct {
        const char *what;
        struct bn_matrix *m;
        double err2, ref2, maxerr;
        int top1, topk;
    } cases[] = {
        {"F16 head, float activations (" "kernel)", &m16, 0, 0, 0, 0, 0},
        {"Q8_0 (F16 requantized), int8 activations (kernel)", &m8, 0, 0, 0, 0, 0},
        {"Q8_0 (F16 requantized), float activations (scalar)", &m8s, 0, 0, 0, 0, 0},
        {"Q6_K (from the F16 values), int8 activations (kernel)", &m6, 0, 0, 0, 0, 0},
        {"Q6_K (from the F16 values), float activations (scalar)", &m6s, 0, 0, 0, 0, 0},
    };
    const int nc = (int)(sizeof cases / sizeof cases[0]);
    double spread = 0;
    for (int v = 0; v < ACC_VECTORS; v++) {
        for (int64_t c = 0; c < cols; c++)
            x[c] = (float)gauss();
        double mean = 0, var = 0;
        for (int64_t r = 0; r < rows; r++) {
            double s = 0;
            for (int64_t c = 0; c < cols; c++)
                s += (double)wf[r * cols + c] * x[c];
            ref[r] = s;
            mean += s;
        }
        mean /= (double)rows;
        for (int64_t r = 0; r < rows; r++)
            var += (ref[r] - mean) * (ref[r] - mean);
        spread += sqrt(var / (double)rows);
        int64_t best = 0;
        for (int64_t r = 1; r < rows; r++)
            best = ref[r] > ref[best] ? r : best;
        for (int k = 0; k < nc; k++) {
            bn_matmul(NULL, cases[k].m, x, 1, y, 0);
            for (int64_t r = 0; r < rows; r++) {
                double e = y[r] - ref[r];
                cases[k].err2 += e * e;
                cases[k].ref2 += ref[r] * ref[r];
                cases[k].maxerr = fabs(e) > cases[k].maxerr ? fabs(e) : cases[k].maxerr;
            }
            cases[k].top1 += argmax(y, rows) == best;
            cases[k].topk += topk_overlap(y, ref, rows);
        }
    }
    printf("logits of a %lld x %lld head (random normal weights, F16), %d random inputs,\n"
           "against float64 math on the F16 weights; logit std %.4f\n",
           (long long)rows, (long long)cols, ACC_VECTORS, spread / ACC_VECTORS);
    printf("%-56s %12s %14s %7s %9s\n", "head, activations", "rel RMS err", "max err / std", "top-1", "top-10");
    for (int k = 0; k < nc; k++)
        printf("%-56s %12.2e %14.4f %4d/%d %6.1f/10\n", cases[k].what, sqrt(cases[k].err2 / cases[k].ref2),
               cases[k].maxerr / (spread / ACC_VECTORS), cases[k].top1, ACC_VECTORS,
               (double)cases[k].topk / ACC_VECTORS);
    free(h);
    free(wf);
    free(x);
    free(ref);
    free(y);
    free(q8);
    free(q6);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "--accuracy"))
        return accuracy(argc >= 3 ? atoll(argv[2]) : 32768);
    struct opts o;
    if (!parse_args(argc, argv, &o))
        return 2;
    static const char *const keys[] = {"kernel", "format", "rows", "cols", "tokens", "threads", NULL};
    struct bench_gate gate;
    if (!bench_gate_open(&gate, "bench-gemv", keys, "gmac_per_s", o.baseline, o.save))
        return 2;
    struct run_ctx c = {.o = &o, .gate = &gate};
    int64_t max_tok = 1, max_cols = 0;
    for (int i = 0; i < o.n_tokens; i++)
        max_tok = o.tokens[i] > max_tok ? o.tokens[i] : max_tok;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        max_cols = shapes[s].cols > max_cols ? shapes[s].cols : max_cols;
    int64_t max_rows = 128256;
    c.x = malloc((size_t)(max_tok * max_cols) * sizeof(float));
    c.y = malloc((size_t)(max_tok * max_rows) * sizeof(float));
    for (int64_t i = 0; i < max_tok * max_cols; i++)
        c.x[i] = (float)((rng() >> 40) % 2001) / 1000.0f - 1.0f;
    FILE *info = o.json ? stderr : stdout;
    for (int ti = 0; ti < o.n_threads; ti++) {
        c.roof[ti] = bench_roofline((int)o.threads[ti]);
        fprintf(info, "roofline, %lld thread(s): memory read %.1f GB/s; int8 VNNI %.0f GMAC/s; f32 FMA %.0f GMAC/s\n",
                (long long)o.threads[ti], c.roof[ti].read_gbps, c.roof[ti].i8_gmacps, c.roof[ti].f32_gmacps);
    }
    if (!o.json)
        printf("%-7s %-7s %-5s %14s %4s %3s %11s %20s %7s %8s %7s\n", "kernel", "format", "shape",
               "rows x cols", "tok", "thr", "us/call", "spread (us)", "GB/s", "GMAC/s", "roof");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        if (!o.shape_on[s])
            continue;
        const struct shape *sh = &shapes[s];
        if (!sh->head) {
            uint64_t i2_bytes = 0;
            bn_tensor_bytes(BN_TYPE_I2_S, sh->rows, sh->cols, &i2_bytes);
            void *i2 = make_source(BN_TYPE_I2_S, sh->rows, sh->cols);
            for (int p = 0; p < BN_PATH_COUNT; p++) {
                if (!o.path_on[p])
                    continue;
                if (p == BN_PATH_SCALAR) {
                    bench_layout(&c, sh, (enum bn_path)p, BN_TYPE_I2_S, i2, BN_TYPE_I2_S);
                    continue;
                }
                static const enum bn_type layouts[] = {BN_TYPE_I2_R16, BN_TYPE_TQ_R16, BN_TYPE_TL1, BN_TYPE_TL2};
                for (size_t k = 0; k < sizeof layouts / sizeof layouts[0]; k++)
                    if (bn_type_traits(layouts[k]))
                        bench_layout(&c, sh, (enum bn_path)p, BN_TYPE_I2_S, i2, layouts[k]);
            }
            bn_weights_free(i2, i2_bytes);
        } else {
            static const enum bn_type heads[] = {BN_TYPE_F16, BN_TYPE_Q8_0, BN_TYPE_Q6_K};
            for (size_t k = 0; k < sizeof heads / sizeof heads[0]; k++) {
                void *src = make_source(heads[k], sh->rows, sh->cols);
                if (!src) {
                    fprintf(stderr, "bench-gemv: out of memory for the %s head\n", bn_type_name(heads[k]));
                    continue;
                }
                for (int p = 0; p < BN_PATH_COUNT; p++)
                    if (o.path_on[p])
                        bench_layout(&c, sh, (enum bn_path)p, heads[k], src, heads[k]);
                uint64_t hb = 0;
                bn_tensor_bytes(heads[k], sh->rows, sh->cols, &hb);
                bn_weights_free(src, hb);
            }
        }
    }
    bench_gate_close(&gate, info);
    free(c.x);
    free(c.y);
    return 0;
}
