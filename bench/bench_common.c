/* bench/bench_common.c — timing, records, the regression gate and the rooflines
 * shared by the bench programs (see bench_common.h). */
#include "bench_common.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "simd.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#define ROOF_READ_BYTES (512ull << 20) /* streamed by the bandwidth probe: 16x a 32 MB L3 */
#define ROOF_READ_REPS 3
#define ROOF_READ_RUNS 4 /* best of: other processes may share the memory bus */
#define ROOF_MAC_ITERS 20000000L

double bench_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

struct bench_stats bench_stats(double *t, int n)
{
    struct bench_stats s = {0, 0, 0};
    if (n <= 0)
        return s;
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    s.min = t[0];
    s.max = t[n - 1];
    s.median = n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
    return s;
}

/* ---- records ---- */

static struct bench_field *add_field(struct bench_rec *r, const char *name)
{
    for (int i = 0; i < r->n; i++)
        if (strcmp(r->f[i].name, name) == 0)
            return &r->f[i];
    if (r->n >= BENCH_MAX_FIELDS)
        return NULL;
    struct bench_field *f = &r->f[r->n++];
    memset(f, 0, sizeof *f);
    snprintf(f->name, sizeof f->name, "%s", name);
    return f;
}

void bench_rec_str(struct bench_rec *r, const char *name, const char *v)
{
    struct bench_field *f = add_field(r, name);
    if (f) {
        snprintf(f->str, sizeof f->str, "%s", v);
        f->is_num = false;
    }
}

void bench_rec_num(struct bench_rec *r, const char *name, double v)
{
    struct bench_field *f = add_field(r, name);
    if (f) {
        f->num = v;
        f->is_num = true;
    }
}

const struct bench_field *bench_rec_get(const struct bench_rec *r, const char *name)
{
    for (int i = 0; i < r->n; i++)
        if (strcmp(r->f[i].name, name) == 0)
            return &r->f[i];
    return NULL;
}

void bench_rec_print_json(const struct bench_rec *r, FILE *out)
{
    fputc('{', out);
    for (int i = 0; i < r->n; i++) {
        const struct bench_field *f = &r->f[i];
        fprintf(out, "%s\"%s\": ", i ? ", " : "", f->name);
        if (!f->is_num)
            fprintf(out, "\"%s\"", f->str);
        else if (f->num == floor(f->num) && fabs(f->num) < 1e15)
            fprintf(out, "%.0f", f->num);
        else
            fprintf(out, "%.6g", f->num);
    }
    fputs("}\n", out);
}

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

/* "..." without escapes beyond \" and \\ (the benches write plain names). */
static const char *parse_string(const char *p, char *out, size_t cap)
{
    if (*p != '"')
        return NULL;
    p++;
    size_t n = 0;
    while (*p && *p != '"') {
        if (*p == '\\' && p[1])
            p++;
        if (n + 1 < cap)
            out[n++] = *p;
        p++;
    }
    if (*p != '"')
        return NULL;
    out[n] = '\0';
    return p + 1;
}

bool bench_rec_parse(const char *line, struct bench_rec *r)
{
    memset(r, 0, sizeof *r);
    const char *p = skip_ws(line);
    if (*p++ != '{')
        return false;
    p = skip_ws(p);
    if (*p == '}')
        return true;
    for (;;) {
        char name[BENCH_NAME_MAX], sval[BENCH_STR_MAX];
        p = parse_string(skip_ws(p), name, sizeof name);
        if (!p)
            return false;
        p = skip_ws(p);
        if (*p++ != ':')
            return false;
        p = skip_ws(p);
        if (*p == '"') {
            p = parse_string(p, sval, sizeof sval);
            if (!p)
                return false;
            bench_rec_str(r, name, sval);
        } else if (strncmp(p, "true", 4) == 0 || strncmp(p, "false", 5) == 0) {
            bench_rec_num(r, name, *p == 't');
            p += *p == 't' ? 4 : 5;
        } else {
            char *end;
            double v = strtod(p, &end);
            if (end == p)
                return false;
            bench_rec_num(r, name, v);
            p = end;
        }
        p = skip_ws(p);
        if (*p == ',') {
            p++;
            continue;
        }
        return *p == '}';
    }
}

/* ---- gate ---- */

static bool load_lines(const char *path, struct bench_rec **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char line[BENCH_LINE_MAX];
    size_t cap = 0;
    while (fgets(line, sizeof line, f)) {
        struct bench_rec r;
        if (!bench_rec_parse(line, &r) || r.n == 0)
            continue; /* blank or foreign lines are skipped */
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            struct bench_rec *p = realloc(*out, cap * sizeof *p);
            if (!p)
                break;
            *out = p;
        }
        (*out)[(*n)++] = r;
    }
    fclose(f);
    return true;
}

bool bench_gate_open(struct bench_gate *g, const char *bench, const char *const *keys,
                     const char *metric, const char *baseline_path, const char *save_path)
{
    memset(g, 0, sizeof *g);
    g->bench = bench;
    g->keys = keys;
    g->metric = metric;
    g->save_path = save_path;
    if (baseline_path && !load_lines(baseline_path, &g->base, &g->n_base)) {
        fprintf(stderr, "%s: cannot read baseline file %s\n", bench, baseline_path);
        return false;
    }
    return true;
}

static bool same_field(const struct bench_field *a, const struct bench_field *b)
{
    if (!a || !b || a->is_num != b->is_num)
        return false;
    return a->is_num ? a->num == b->num : strcmp(a->str, b->str) == 0;
}

static bool same_keys(const struct bench_gate *g, const struct bench_rec *a, const struct bench_rec *b)
{
    if (!same_field(bench_rec_get(a, "bench"), bench_rec_get(b, "bench")))
        return false;
    for (const char *const *k = g->keys; *k; k++)
        if (!same_field(bench_rec_get(a, *k), bench_rec_get(b, *k)))
            return false;
    return true;
}

static void describe(const struct bench_gate *g, const struct bench_rec *r, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (const char *const *k = g->keys; *k && n < cap; k++) {
        const struct bench_field *f = bench_rec_get(r, *k);
        if (!f)
            continue;
        if (f->is_num)
            n += (size_t)snprintf(buf + n, cap - n, "%s%s=%g", n ? " " : "", *k, f->num);
        else
            n += (size_t)snprintf(buf + n, cap - n, "%s%s", n ? " " : "", f->str);
    }
}

void bench_gate_add(struct bench_gate *g, struct bench_rec *r, FILE *out)
{
    /* the bench name goes first in the line */
    struct bench_rec named = {0};
    bench_rec_str(&named, "bench", g->bench);
    for (int i = 0; i < r->n; i++)
        if (strcmp(r->f[i].name, "bench") != 0)
            named.f[named.n++] = r->f[i];
    *r = named;
    if (g->n_run == g->cap_run) {
        size_t cap = g->cap_run ? 2 * g->cap_run : 64;
        struct bench_rec *p = realloc(g->run, cap * sizeof *p);
        if (p) {
            g->run = p;
            g->cap_run = cap;
        }
    }
    if (g->n_run < g->cap_run)
        g->run[g->n_run++] = *r;
    for (size_t i = 0; i < g->n_base; i++) {
        if (!same_keys(g, r, &g->base[i]))
            continue;
        const struct bench_field *a = bench_rec_get(&g->base[i], g->metric), *b = bench_rec_get(r, g->metric);
        if (!a || !b || !a->is_num || !b->is_num || a->num <= 0)
            break;
        double pct = (b->num - a->num) / a->num * 100.0;
        const char *flag;
        int cls;
        if (pct < -BENCH_REGRESSION_PCT) {
            flag = "REGRESSION";
            cls = 3;
        } else if (pct < -BENCH_INVESTIGATE_PCT) {
            flag = "INVESTIGATE";
            cls = 2;
        } else if (pct > BENCH_NOISE_PCT) {
            flag = "improved";
            cls = 1;
        } else {
            flag = pct < -BENCH_NOISE_PCT ? "changed (beyond noise)" : "noise";
            cls = 0;
        }
        char what[256];
        describe(g, r, what, sizeof what);
        fprintf(out, "  baseline  %-48s %s %10.4g -> %10.4g  %+6.1f%%  %s\n", what, g->metric, a->num,
                b->num, pct, flag);
        g->n_compared++;
        g->n_flag[cls]++;
        break;
    }
}

int bench_gate_close(struct bench_gate *g, FILE *out)
{
    if (g->n_base > 0)
        fprintf(out,
                "baseline: %d figures compared: %d within noise or changed < 10%%, %d improved, "
                "%d to investigate (> 10%% slower), %d regressions (> 20%% slower)\n",
                g->n_compared, g->n_flag[0], g->n_flag[1], g->n_flag[2], g->n_flag[3]);
    if (g->save_path) {
        struct bench_rec *old = NULL;
        size_t n_old = 0;
        load_lines(g->save_path, &old, &n_old); /* a missing file is a new one */
        FILE *f = fopen(g->save_path, "w");
        if (!f) {
            fprintf(stderr, "%s: cannot write baseline file %s\n", g->bench, g->save_path);
        } else {
            for (size_t i = 0; i < n_old; i++) { /* keep what this run did not measure */
                bool replaced = false;
                for (size_t k = 0; k < g->n_run && !replaced; k++)
                    replaced = same_keys(g, &old[i], &g->run[k]);
                if (!replaced)
                    bench_rec_print_json(&old[i], f);
            }
            for (size_t i = 0; i < g->n_run; i++)
                bench_rec_print_json(&g->run[i], f);
            fclose(f);
            fprintf(out, "saved %zu results to %s\n", g->n_run, g->save_path);
        }
        free(old);
    }
    free(g->base);
    free(g->run);
    return g->n_flag[3];
}

/* ---- rooflines ---- */

struct read_arg {
    const uint8_t *p;
    size_t n;
    uint64_t sink;
};

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx2"))) static uint64_t read_avx2(const uint8_t *p, size_t n)
{
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i + 128 <= n; i += 128) {
        a0 = _mm256_xor_si256(a0, _mm256_load_si256((const __m256i *)(p + i)));
        a1 = _mm256_xor_si256(a1, _mm256_load_si256((const __m256i *)(p + i + 32)));
        a2 = _mm256_xor_si256(a2, _mm256_load_si256((const __m256i *)(p + i + 64)));
        a3 = _mm256_xor_si256(a3, _mm256_load_si256((const __m256i *)(p + i + 96)));
    }
    a0 = _mm256_xor_si256(_mm256_xor_si256(a0, a1), _mm256_xor_si256(a2, a3));
    return (uint64_t)_mm256_extract_epi64(a0, 0);
}
#endif

static void *read_main(void *p)
{
    struct read_arg *a = p;
    uint64_t s = 0;
#if defined(__x86_64__) || defined(__i386__)
    if (bn_path_supported(BN_PATH_AVX2)) {
        for (int r = 0; r < ROOF_READ_REPS; r++) {
            s ^= read_avx2(a->p, a->n);
            __asm__ volatile("" ::: "memory"); /* every pass reads memory again */
        }
        a->sink = s;
        return NULL;
    }
#endif
    for (int r = 0; r < ROOF_READ_REPS; r++) {
        for (size_t i = 0; i < a->n; i += 8) {
            uint64_t v;
            memcpy(&v, a->p + i, 8);
            s ^= v;
        }
        __asm__ volatile("" ::: "memory");
    }
    a->sink = s;
    return NULL;
}

#if defined(__x86_64__) || defined(__i386__)
/* 12 independent accumulators in registers (inline assembly, so no compiler can
 * fold or spill them): the instruction's throughput, not its latency. */
#define DP12(op, r)                                                                            \
    op " %%" r "30, %%" r "31, %%" r "0\n\t" op " %%" r "30, %%" r "31, %%" r "1\n\t"          \
    op " %%" r "30, %%" r "31, %%" r "2\n\t" op " %%" r "30, %%" r "31, %%" r "3\n\t"          \
    op " %%" r "30, %%" r "31, %%" r "4\n\t" op " %%" r "30, %%" r "31, %%" r "5\n\t"          \
    op " %%" r "30, %%" r "31, %%" r "6\n\t" op " %%" r "30, %%" r "31, %%" r "7\n\t"          \
    op " %%" r "30, %%" r "31, %%" r "8\n\t" op " %%" r "30, %%" r "31, %%" r "9\n\t"          \
    op " %%" r "30, %%" r "31, %%" r "10\n\t" op " %%" r "30, %%" r "31, %%" r "11\n\t"

__attribute__((target("avx512f,avx512bw,avx512vnni"))) static void *vnni_main(void *p)
{
    long n = ROOF_MAC_ITERS;
    __asm__ volatile("vpxord %%zmm30, %%zmm30, %%zmm30\n\t"
                     "vpxord %%zmm31, %%zmm31, %%zmm31\n\t"
                     "1:\n\t" DP12("vpdpbusd", "zmm") "dec %0\n\tjnz 1b\n\t"
                     : "+r"(n)
                     :
                     : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8",
                       "xmm9", "xmm10", "xmm11", "xmm30", "xmm31", "cc");
    *(int *)p = (int)n;
    return NULL;
}

__attribute__((target("avx2,fma"))) static void *fma_main(void *p)
{
    long n = ROOF_MAC_ITERS;
    __asm__ volatile("vxorps %%ymm14, %%ymm14, %%ymm14\n\t"
                     "vxorps %%ymm15, %%ymm15, %%ymm15\n\t"
                     "1:\n\t"
                     "vfmadd231ps %%ymm14, %%ymm15, %%ymm0\n\tvfmadd231ps %%ymm14, %%ymm15, %%ymm1\n\t"
                     "vfmadd231ps %%ymm14, %%ymm15, %%ymm2\n\tvfmadd231ps %%ymm14, %%ymm15, %%ymm3\n\t"
                     "vfmadd231ps %%ymm14, %%ymm15, %%ymm4\n\tvfmadd231ps %%ymm14, %%ymm15, %%ymm5\n\t"
                     "vfmadd231ps %%ymm14, %%ymm15, %%ymm6\n\tvfmadd231ps %%ymm14, %%ymm15, %%ymm7\n\t"
                     "vfmadd231ps %%ymm14, %%ymm15, %%ymm8\n\tvfmadd231ps %%ymm14, %%ymm15, %%ymm9\n\t"
                     "vfmadd231ps %%ymm14, %%ymm15, %%ymm10\n\tvfmadd231ps %%ymm14, %%ymm15, %%ymm11\n\t"
                     "dec %0\n\tjnz 1b\n\t"
                     : "+r"(n)
                     :
                     : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8",
                       "xmm9", "xmm10", "xmm11", "xmm14", "xmm15", "cc");
    *(float *)p = (float)n;
    return NULL;
}
#endif

static double run_threads(int n, void *(*fn)(void *), void *args, size_t arg_size)
{
    pthread_t th[64];
    if (n > 64)
        n = 64;
    double t = bench_now();
    for (int i = 0; i < n; i++)
        pthread_create(&th[i], NULL, fn, (uint8_t *)args + (size_t)i * arg_size);
    for (int i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    return bench_now() - t;
}

struct bench_roofline bench_roofline(int n_threads)
{
    struct bench_roofline r = {0, 0, 0};
    if (n_threads < 1)
        n_threads = 1;
    if (n_threads > 64)
        n_threads = 64;
    uint8_t *buf = bn_weights_alloc(ROOF_READ_BYTES); /* huge pages, like the weights */
    if (buf) {
        memset(buf, 1, ROOF_READ_BYTES);
        struct read_arg args[64];
        size_t per = ROOF_READ_BYTES / (size_t)n_threads / 128 * 128;
        for (int i = 0; i < n_threads; i++)
            args[i] = (struct read_arg){buf + (size_t)i * per, per, 0};
        double best = 1e30;
        for (int k = 0; k < ROOF_READ_RUNS; k++) {
            double t = run_threads(n_threads, read_main, args, sizeof args[0]);
            best = t < best ? t : best;
        }
        r.read_gbps = (double)per * n_threads * ROOF_READ_REPS / best / 1e9;
        bn_weights_free(buf, ROOF_READ_BYTES);
    }
#if defined(__x86_64__) || defined(__i386__)
    int sink[64];
    if (bn_path_supported(BN_PATH_AVX512)) {
        double t = run_threads(n_threads, vnni_main, sink, sizeof sink[0]);
        r.i8_gmacps = (double)ROOF_MAC_ITERS * 12 * 64 * n_threads / t / 1e9;
    }
    if (bn_path_supported(BN_PATH_AVX2)) {
        float fs[64];
        double t = run_threads(n_threads, fma_main, fs, sizeof fs[0]);
        r.f32_gmacps = (double)ROOF_MAC_ITERS * 12 * 8 * n_threads / t / 1e9;
    }
#endif
    return r;
}

bool bench_parse_list(const char *s, int64_t *out, int max, int *n)
{
    *n = 0;
    while (*s) {
        char *end;
        long long v = strtoll(s, &end, 10);
        if (end == s || v <= 0 || *n >= max)
            return false;
        out[(*n)++] = v;
        s = end;
        if (*s == ',')
            s++;
        else if (*s)
            return false;
    }
    return *n > 0;
}
