/* bench/bench-quant — quantize (float -> format) and dequantize (format -> float) of
 * the ternary formats, single-threaded, at 1024 .. 262144 elements, beside the
 * figures of the project this one replaces (its I2S/TL1/TL2 quantize of 262144).
 *
 *   bench-quant [--json] [--min-time SEC] [--baseline FILE] [--save-baseline FILE]
 *
 * Quantize input: arbitrary floats (the absmean path: scale = mean|w|, values
 * rounded and clipped), the case of converting bf16/f32 master weights; the exact
 * path for already-ternary input costs the same two passes.  Dequantize writes
 * value * scale.  One row of n elements. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"
#include "simd.h"

#define BENCH_MAX_SAMPLES 100000
#define BENCH_MIN_SAMPLES 5

struct fmt {
    const char *name; /* as the JSON names it */
    enum bn_type type;
    double seed_quant_us; /* the seed project's quantize of 262144 elements, 0 = none */
};
static const struct fmt fmts[] = {
    {"I2S", BN_TYPE_I2_S, 5390.0},
    {"TL1", BN_TYPE_TL1, 5524.0},
    {"TL2", BN_TYPE_TL2, 3604.0},
    {"TQ1", BN_TYPE_TQ1_0, 0},
    {"TQ2", BN_TYPE_TQ2_0, 0},
};
static const int64_t sizes[] = {1024, 4096, 16384, 65536, 262144};
#define SEED_N 262144

static uint64_t rng_state = 0x853c49e6748fea9bull;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static double min_time = 0.3;

/* Timings of repeated quantize (or dequantize) calls. */
static struct bench_stats time_op(enum bn_type type, bool quant, const float *src, void *q,
                                  float *back, int64_t n)
{
    static double t[BENCH_MAX_SAMPLES];
    const struct bn_type_traits *tr = bn_type_traits(type);
    int k = 0;
    float scale = quant ? 1.0f : bn_tensor_scale(type, q, 1, n);
    double start = bench_now();
    while (k < BENCH_MAX_SAMPLES && (k < BENCH_MIN_SAMPLES || bench_now() - start < min_time)) {
        double a = bench_now();
        if (quant)
            tr->quantize(src, q, 1, n);
        else if (tr->row_to_float)
            tr->row_to_float(q, back, n, scale);
        else
            bn_tensor_to_float(type, q, 1, n, back);
        t[k++] = bench_now() - a;
    }
    return bench_stats(t, k);
}

int main(int argc, char **argv)
{
    bool json = false;
    const char *baseline = NULL, *save = NULL;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--json")) {
            json = true;
        } else if (!strcmp(argv[i], "--min-time") && v) {
            min_time = atof(v);
            if (!(min_time > 0 && min_time < 600)) {
                fprintf(stderr, "bench-quant: --min-time wants seconds in (0, 600)\n");
                return 2;
            }
            i++;
        } else if (!strcmp(argv[i], "--baseline") && v) {
            baseline = argv[++i];
        } else if (!strcmp(argv[i], "--save-baseline") && v) {
            save = argv[++i];
        } else {
            fprintf(stderr, "usage: bench-quant [--json] [--min-time SEC] [--baseline FILE] [--save-baseline FILE]\n");
            return 2;
        }
    }
    static const char *const keys[] = {"format", "op", "n", NULL};
    struct bench_gate gate;
    if (!bench_gate_open(&gate, "bench-quant", keys, "elems_per_s", baseline, save))
        return 2;
    int64_t nmax = sizes[sizeof sizes / sizeof sizes[0] - 1];
    float *src = malloc((size_t)nmax * sizeof(float)), *back = malloc((size_t)nmax * sizeof(float));
    void *q = malloc((size_t)nmax * 2 + 4096);
    for (int64_t i = 0; i < nmax; i++)
        src[i] = (float)((int64_t)(rng() >> 40) % 20001 - 10000) * 1e-5f;
    if (!json)
        printf("%-4s %-10s %7s %11s %14s %22s\n", "fmt", "op", "n", "us (median)", "M elem/s",
               "seed (262144)");
    for (size_t f = 0; f < sizeof fmts / sizeof fmts[0]; f++) {
        const struct bn_type_traits *tr = bn_type_traits(fmts[f].type);
        if (!tr || !tr->quantize)
            continue;
        for (int op = 0; op < 2; op++) {
            if (op == 1 && !tr->row_to_float && !tr->codes_get)
                continue;
            for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
                int64_t n = sizes[s];
                uint64_t bytes;
                if (!bn_tensor_bytes(fmts[f].type, 1, n, &bytes))
                    continue;
                tr->quantize(src, q, 1, n);
                struct bench_stats st = time_op(fmts[f].type, op == 0, src, q, back, n);
                double eps = (double)n / st.median;
                struct bench_rec r = {0};
                bench_rec_str(&r, "format", fmts[f].name);
                bench_rec_str(&r, "op", op == 0 ? "quantize" : "dequantize");
                bench_rec_num(&r, "n", (double)n);
                bench_rec_num(&r, "elems_per_s", eps);
                bench_rec_num(&r, "us", st.median * 1e6);
                bench_rec_num(&r, "us_min", st.min * 1e6);
                char seed[64] = "";
                if (op == 0 && n == SEED_N && fmts[f].seed_quant_us > 0) {
                    bench_rec_num(&r, "seed_us", fmts[f].seed_quant_us);
                    snprintf(seed, sizeof seed, "%.0f us = %.1f M/s (x%.0f)", fmts[f].seed_quant_us,
                             n / fmts[f].seed_quant_us, fmts[f].seed_quant_us / (st.median * 1e6));
                }
                if (json) {
                    bench_gate_add(&gate, &r, stderr);
                    bench_rec_print_json(&r, stdout);
                } else {
                    printf("%-4s %-10s %7lld %11.1f %14.1f   %s\n", fmts[f].name,
                           op == 0 ? "quantize" : "dequantize", (long long)n, st.median * 1e6,
                           eps / 1e6, seed);
                    bench_gate_add(&gate, &r, stdout);
                }
                fflush(stdout);
            }
        }
    }
    bench_gate_close(&gate, json ? stderr : stdout);
    free(src);
    free(back);
    free(q);
    return 0;
}
