/* bench/bench_common.h — what the bench programs share: timing, result records
 * printed as a table row and as one JSON object per line, the regression gate
 * (--save-baseline / --baseline), and the machine's rooflines.
 *
 * Regression gate: a result is a flat JSON object; its key fields (e.g. format, op,
 * n) identify it and one metric (higher is better) is compared.  --baseline FILE
 * prints, for each result found in FILE, the change of the metric and a flag:
 * within +-5% "noise", beyond "changed" / "improved", a drop of more than 10%
 * "INVESTIGATE", of more than 20% "REGRESSION".  --save-baseline FILE writes this
 * run's results into FILE, replacing the lines with the same bench and keys and
 * keeping all others (every line names its bench), so one file
 * (bench/baseline.json) holds the standard set. */
#ifndef BN_BENCH_COMMON_H
#define BN_BENCH_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define BENCH_MAX_FIELDS 16
#define BENCH_NAME_MAX 32
#define BENCH_STR_MAX 96
#define BENCH_LINE_MAX 2048        /* longest JSON line read from a baseline file */
#define BENCH_NOISE_PCT 5.0        /* +-: measurement noise band */
#define BENCH_INVESTIGATE_PCT 10.0 /* drop beyond: look into it */
#define BENCH_REGRESSION_PCT 20.0  /* drop beyond: a regression */

/* Wall-clock seconds (CLOCK_MONOTONIC). */
double bench_now(void);

/* Sample statistics of n timings (sorted in place). */
struct bench_stats {
    double median, min, max;
};
struct bench_stats bench_stats(double *t, int n);

/* One result: named string or number fields, in insertion order. */
struct bench_field {
    char name[BENCH_NAME_MAX];
    char str[BENCH_STR_MAX];
    double num;
    bool is_num;
};
struct bench_rec {
    int n;
    struct bench_field f[BENCH_MAX_FIELDS];
};
void bench_rec_str(struct bench_rec *r, const char *name, const char *v);
void bench_rec_num(struct bench_rec *r, const char *name, double v);
const struct bench_field *bench_rec_get(const struct bench_rec *r, const char *name);
void bench_rec_print_json(const struct bench_rec *r, FILE *out);
/* Parse one flat JSON object (string / number / bool values); false if malformed. */
bool bench_rec_parse(const char *line, struct bench_rec *r);

/* The gate of one bench program. */
struct bench_gate {
    const char *bench;              /* this program's name, the "bench" field of its lines */
    const char *const *keys;        /* NULL-terminated key field names */
    const char *metric;             /* compared field (higher is better) */
    struct bench_rec *base;         /* baseline records (all benches) */
    size_t n_base;
    struct bench_rec *run;          /* this run's records */
    size_t n_run, cap_run;
    const char *save_path;
    int n_compared, n_flag[4];      /* noise/changed, improved, investigate, regression */
};
/* Load `baseline_path` (may be NULL).  Returns false with a message on stderr when
 * the file cannot be read. */
bool bench_gate_open(struct bench_gate *g, const char *bench, const char *const *keys,
                     const char *metric, const char *baseline_path, const char *save_path);
/* Record a result (adds the "bench" field); with a baseline, prints its comparison
 * line to `out` when a baseline record has the same keys. */
void bench_gate_add(struct bench_gate *g, struct bench_rec *r, FILE *out);
/* Print the summary, write --save-baseline, free.  Returns the number of
 * regressions (the programs exit 0 regardless: the machine is shared and noisy). */
int bench_gate_close(struct bench_gate *g, FILE *out);

/* Rooflines measured on this machine: streaming read bandwidth with n threads
 * (GB/s, a buffer well beyond the caches) and, when the CPU has AVX-512 VNNI, the
 * int8 multiply-add rate in registers (GMAC/s; 0 otherwise), and the f32 FMA rate. */
struct bench_roofline {
    double read_gbps;
    double i8_gmacps;
    double f32_gmacps;
};
struct bench_roofline bench_roofline(int n_threads);

/* Parse a comma-separated list of positive integers ("1,2"); false if malformed. */
bool bench_parse_list(const char *s, int64_t *out, int max, int *n);

#endif
