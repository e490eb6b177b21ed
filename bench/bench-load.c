/* bench/bench-load.c — how fast a model becomes resident: cold and warm loads into a
 * ready shared-memory segment with io_uring (several queue depths and chunk sizes),
 * plain read() and mmap+copy, against `cat file > /dev/null` throughput of the same
 * run; then the reattach time of a restarted registry.
 *
 *   bench-load [--json] [--repeat N] [--qd 1,4,16] [--chunk 256K,1M,4M]
 *              [--direct auto|on|off] [--no-cold] [--shm-dir DIR]
 *              [--path scalar|avx2|avx512] [--layout fastest|i2_s|tl1|tl2]
 *              [--pack-threads N] [--no-async] MODEL.gguf
 *
 * --path scalar --layout i2_s keeps ternary tensors as stored (no repacking), which
 * measures the I/O path alone; the default measures what the daemon does.
 *
 * Cold = the model file evicted from the page cache before each run (echo 3 >
 * /proc/sys/vm/drop_caches when permitted, else posix_fadvise DONTNEED on the file,
 * which the table says).  Every load goes through the registry, so its time covers
 * parsing the header, creating and reserving the segment, reading (and repacking)
 * all tensors and publishing it.  The best of --repeat runs is shown.  No assertion
 * on time: this prints figures.
 */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "registry.h"

extern char **environ;

#define MAX_LIST 8
#define REATTACH_TARGET_S 0.050 /* issue target: reattach <= 50 ms */
#define CAT_FRACTION_TARGET 0.90 /* io_uring >= 90% of cat throughput */

struct result {
    const char *method; /* "io_uring", "read", "mmap", "cat", "reattach" */
    const char *cache;  /* "cold", "warm" */
    unsigned qd;        /* 0: not applicable */
    uint64_t chunk;     /* 0: not applicable */
    double seconds;
    double gbps;
    bool direct_io;
};

static struct {
    bool json;
    int repeat;
    unsigned qd[MAX_LIST];
    int n_qd;
    uint64_t chunk[MAX_LIST];
    int n_chunk;
    enum load_direct direct;
    bool cold;
    const char *shm_dir;
    enum bn_path path;
    enum bn_type layout;
    int pack_threads; /* -1: default */
    bool async;
    const char *model;
    uint64_t file_size;
    const char *cold_how; /* NULL: cold runs impossible */
    char instance[BN_SEG_INSTANCE_MAX + 1];
} B;

static struct result results[256];
static int n_results;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *fmt, const char *arg) __attribute__((noreturn));
static void die(const char *fmt, const char *arg)
{
    fprintf(stderr, "bench-load: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    exit(2);
}

static uint64_t parse_size(const char *s)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s)
        die("bad size '%s'", s);
    if (*end == 'K' || *end == 'k')
        v <<= 10, end++;
    else if (*end == 'M' || *end == 'm')
        v <<= 20, end++;
    if (*end)
        die("bad size '%s' (use e.g. 256K or 4M)", s);
    return v;
}

static int parse_list(const char *s, uint64_t *out, bool sizes)
{
    int n = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *tok = strtok(buf, ","); tok && n < MAX_LIST; tok = strtok(NULL, ","))
        out[n++] = sizes ? parse_size(tok) : strtoull(tok, NULL, 10);
    if (n == 0)
        die("empty list '%s'", s);
    return n;
}

/* Evict the model file from the page cache.  Returns false when not possible. */
static bool make_cold(void)
{
    sync();
    int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
    if (fd >= 0) {
        bool ok = write(fd, "3", 1) == 1;
        close(fd);
        if (ok)
            return true;
    }
    fd = open(B.model, O_RDONLY);
    if (fd < 0)
        return false;
    int rc = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
    return rc == 0;
}

static const char *probe_cold(void)
{
    int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
    if (fd >= 0) {
        sync();
        bool ok = write(fd, "3", 1) == 1;
        close(fd);
        if (ok)
            return "echo 3 > /proc/sys/vm/drop_caches";
    }
    fd = open(B.model, O_RDONLY);
    if (fd >= 0) {
        int rc = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        close(fd);
        if (rc == 0)
            return "posix_fadvise(DONTNEED) on the file (drop_caches not permitted)";
    }
    return NULL;
}

static void add(const char *method, const char *cache, unsigned qd, uint64_t chunk, double s,
                bool direct)
{
    if (n_results == (int)(sizeof results / sizeof results[0]))
        return;
    struct result *r = &results[n_results++];
    r->method = method;
    r->cache = cache;
    r->qd = qd;
    r->chunk = chunk;
    r->seconds = s;
    r->gbps = (double)B.file_size / 1e9 / s;
    r->direct_io = direct;
}

/* cat MODEL > /dev/null, timed. */
static double run_cat(void)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    char *argv[] = {"cat", (char *)B.model, NULL};
    double t0 = now();
    pid_t pid;
    if (posix_spawnp(&pid, "cat", &fa, NULL, argv, environ) != 0)
        die("cannot run cat on %s", B.model);
    int st;
    waitpid(pid, &st, 0);
    double t = now() - t0;
    posix_spawn_file_actions_destroy(&fa);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        die("cat %s failed", B.model);
    return t;
}

/* One load into a fresh segment; returns seconds (registry's own measure). */
static double run_load(enum load_method m, unsigned qd, uint64_t chunk, enum load_direct direct,
                       bool *direct_used)
{
    struct registry_config c;
    registry_config_default(&c);
    c.instance = B.instance;
    c.shm_dir = B.shm_dir;
    c.load.method = m;
    c.load.queue_depth = qd;
    c.load.chunk_bytes = chunk;
    c.load.direct = direct;
    c.path = B.path;
    c.prefer_ternary = B.layout;
    c.load.async_workers = B.async;
    if (B.pack_threads >= 0)
        c.load.pack_threads = (unsigned)B.pack_threads;
    struct registry *r;
    struct bn_err err = {{0}};
    if (registry_open(&r, &c, &err) != 0)
        die("%s", err.msg);
    registry_discard_unused(r); /* a leftover of an interrupted run */
    struct resident *res;
    if (registry_load(r, B.model, NULL, NULL, &res, &err) != 0)
        die("%s", err.msg);
    struct resident_info info;
    resident_describe(res, &info);
    if (strcmp(info.method, load_method_name(m)) != 0)
        die("the load ran as %s (see the log)", info.method);
    *direct_used = info.direct_io;
    registry_unload(r, res);
    registry_close(r);
    return info.load_seconds;
}

static void bench_load(const char *label, enum load_method m, unsigned qd, uint64_t chunk,
                       enum load_direct direct, bool cold)
{
    double best = 1e30;
    bool dio = false;
    for (int i = 0; i < B.repeat; i++) {
        if (cold && !make_cold())
            return;
        bool d;
        double s = run_load(m, qd, chunk, direct, &d);
        if (s < best)
            best = s, dio = d;
    }
    /* mmap has no queue or chunk of its own */
    add(label, cold ? "cold" : "warm", m == LOAD_MMAP ? 0 : qd, m == LOAD_MMAP ? 0 : chunk, best, dio);
}

static void bench_cat(bool cold)
{
    double best = 1e30;
    for (int i = 0; i < B.repeat; i++) {
        if (cold && !make_cold())
            return;
        double s = run_cat();
        if (s < best)
            best = s;
    }
    add("cat", cold ? "cold" : "warm", 0, 0, best, false);
}

/* A registry that loaded the model stops; a new one opens and loads it again. */
static void bench_reattach(bool cold)
{
    struct registry_config c;
    registry_config_default(&c);
    c.instance = B.instance;
    c.shm_dir = B.shm_dir;
    c.path = B.path;
    c.prefer_ternary = B.layout;
    struct registry *r;
    struct resident *res;
    struct bn_err err = {{0}};
    if (registry_open(&r, &c, &err) != 0 || registry_load(r, B.model, NULL, NULL, &res, &err) != 0)
        die("%s", err.msg);
    registry_close(r);
    double best = 1e30;
    for (int i = 0; i < B.repeat; i++) {
        if (cold && !make_cold())
            break;
        double t0 = now();
        if (registry_open(&r, &c, &err) != 0 || registry_load(r, B.model, NULL, NULL, &res, &err) != 0)
            die("%s", err.msg);
        double s = now() - t0;
        struct resident_info info;
        resident_describe(res, &info);
        if (strcmp(info.method, "reattach") != 0)
            die("the restarted registry did not reattach but loaded with %s", info.method);
        if (s < best)
            best = s;
        registry_close(r); /* keep the segment for the next round */
    }
    if (registry_open(&r, &c, &err) == 0) {
        registry_discard_unused(r);
        registry_close(r);
    }
    if (best < 1e30)
        add("reattach", cold ? "cold" : "warm", 0, 0, best, false);
}

static void fmt_chunk(char *out, size_t cap, uint64_t b)
{
    if (b == 0)
        snprintf(out, cap, "-");
    else if (b % (1u << 20) == 0)
        snprintf(out, cap, "%llu MiB", (unsigned long long)(b >> 20));
    else
        snprintf(out, cap, "%llu KiB", (unsigned long long)(b >> 10));
}

static void print_results(void)
{
    if (B.json) {
        for (int i = 0; i < n_results; i++) {
            const struct result *r = &results[i];
            char qd[32], ch[32];
            snprintf(qd, sizeof qd, r->qd ? "%u" : "null", r->qd);
            snprintf(ch, sizeof ch, r->chunk ? "%llu" : "null", (unsigned long long)r->chunk);
            printf("{\"method\": \"%s\", \"cache\": \"%s\", \"queue_depth\": %s, \"chunk_bytes\": %s, "
                   "\"seconds\": %.6f, \"gb_per_s\": %.3f}\n",
                   r->method, r->cache, qd, ch, r->seconds, r->gbps);
        }
        return;
    }
    printf("model %s: %.3f GB; kernels %s, ternary layout %s; cold = %s; best of %d run(s)\n",
           B.model, (double)B.file_size / 1e9,
           bn_path_name(B.path == BN_PATH_COUNT ? bn_path_default() : B.path),
           B.layout == BN_TYPE_COUNT ? "fastest" : bn_type_name(B.layout),
           B.cold_how ? B.cold_how : "not possible (skipped)", B.repeat);
    printf("%-9s %-5s %5s %9s %9s %8s  %s\n", "method", "cache", "qd", "chunk", "seconds", "GB/s", "");
    for (int i = 0; i < n_results; i++) {
        const struct result *r = &results[i];
        char ch[32], qd[16];
        fmt_chunk(ch, sizeof ch, r->chunk);
        snprintf(qd, sizeof qd, r->qd ? "%u" : "-", r->qd);
        printf("%-9s %-5s %5s %9s %9.4f %8.3f  %s\n", r->method, r->cache, qd, ch, r->seconds,
               r->gbps, r->direct_io ? "O_DIRECT" : "");
    }
    /* Targets, per cache state. */
    const char *caches[] = {"cold", "warm"};
    for (int c = 0; c < 2; c++) {
        double uring = 0, other = 0, cat = 0;
        const char *other_name = "-";
        for (int i = 0; i < n_results; i++) {
            const struct result *r = &results[i];
            if (strcmp(r->cache, caches[c]) != 0)
                continue;
            if (!strcmp(r->method, "io_uring") && r->gbps > uring)
                uring = r->gbps;
            if ((!strcmp(r->method, "read") || !strcmp(r->method, "mmap")) && r->gbps > other)
                other = r->gbps, other_name = r->method;
            if (!strcmp(r->method, "cat"))
                cat = r->gbps;
        }
        if (uring == 0)
            continue;
        printf("%s: best io_uring %.3f GB/s; best of read/mmap %.3f (%s): %s; cat %.3f: io_uring is "
               "%.0f%% of it (target >= %.0f%%): %s\n",
               caches[c], uring, other, other_name, uring >= other ? "met" : "NOT met", cat,
               cat > 0 ? 100 * uring / cat : 0, 100 * CAT_FRACTION_TARGET,
               cat > 0 && uring >= CAT_FRACTION_TARGET * cat ? "met" : "NOT met");
    }
    for (int i = 0; i < n_results; i++)
        if (!strcmp(results[i].method, "reattach"))
            printf("reattach (%s): %.1f ms (target <= %.0f ms): %s\n", results[i].cache,
                   results[i].seconds * 1e3, REATTACH_TARGET_S * 1e3,
                   results[i].seconds <= REATTACH_TARGET_S ? "met" : "NOT met");
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench-load [--json] [--repeat N] [--qd 1,4,16] [--chunk 256K,1M,4M]\n"
            "                  [--direct auto|on|off] [--no-cold] [--shm-dir DIR]\n"
            "                  [--path scalar|avx2|avx512] [--layout fastest|i2_s|tl1|tl2]\n"
            "                  [--pack-threads N] [--no-async] MODEL.gguf\n");
    exit(2);
}

int main(int argc, char **argv)
{
    B.repeat = 2;
    B.cold = true;
    B.direct = LOAD_DIRECT_AUTO;
    B.path = BN_PATH_COUNT;
    B.layout = BN_TYPE_COUNT;
    B.pack_threads = -1;
    B.async = true;
    uint64_t tmp[MAX_LIST];
    B.n_qd = parse_list("1,4,16", tmp, false);
    for (int i = 0; i < B.n_qd; i++)
        B.qd[i] = (unsigned)tmp[i];
    B.n_chunk = parse_list("256K,1M,4M", B.chunk, true);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--json"))
            B.json = true;
        else if (!strcmp(a, "--no-cold"))
            B.cold = false;
        else if (!strcmp(a, "--repeat") && i + 1 < argc)
            B.repeat = atoi(argv[++i]);
        else if (!strcmp(a, "--qd") && i + 1 < argc) {
            B.n_qd = parse_list(argv[++i], tmp, false);
            for (int k = 0; k < B.n_qd; k++)
                B.qd[k] = (unsigned)tmp[k];
        } else if (!strcmp(a, "--chunk") && i + 1 < argc)
            B.n_chunk = parse_list(argv[++i], B.chunk, true);
        else if (!strcmp(a, "--direct") && i + 1 < argc) {
            const char *d = argv[++i];
            B.direct = !strcmp(d, "on") ? LOAD_DIRECT_ON : !strcmp(d, "off") ? LOAD_DIRECT_OFF
                     : !strcmp(d, "auto") ? LOAD_DIRECT_AUTO : (die("bad --direct '%s'", d), 0);
        } else if (!strcmp(a, "--shm-dir") && i + 1 < argc) {
            B.shm_dir = argv[++i];
        } else if (!strcmp(a, "--path") && i + 1 < argc) {
            if (!bn_path_parse(argv[++i], &B.path))
                die("bad --path '%s'", argv[i]);
        } else if (!strcmp(a, "--layout") && i + 1 < argc) {
            const char *l = argv[++i];
            B.layout = !strcmp(l, "fastest") ? BN_TYPE_COUNT : !strcmp(l, "i2_s") ? BN_TYPE_I2_S
                     : !strcmp(l, "tl1") ? BN_TYPE_TL1 : !strcmp(l, "tl2") ? BN_TYPE_TL2
                     : (die("bad --layout '%s'", l), BN_TYPE_COUNT);
        } else if (!strcmp(a, "--pack-threads") && i + 1 < argc) {
            B.pack_threads = atoi(argv[++i]);
        } else if (!strcmp(a, "--no-async")) {
            B.async = false;
        } else if (a[0] == '-')
            usage();
        else
            B.model = a;
    }
    if (!B.model || B.repeat < 1)
        usage();
    struct stat sb;
    if (stat(B.model, &sb) != 0 || !S_ISREG(sb.st_mode))
        die("%s is not a readable regular file", B.model);
    B.file_size = (uint64_t)sb.st_size;
    snprintf(B.instance, sizeof B.instance, "bench%ld", (long)getpid());
    if (!getenv("BITNET_LOG"))
        bn_log_set_level(BN_LOG_WARN); /* BITNET_LOG=debug shows each load's phases */

    B.cold_how = B.cold ? probe_cold() : NULL;
    if (B.cold && !B.cold_how)
        fprintf(stderr, "bench-load: cannot evict %s from the page cache (no drop_caches, no "
                        "fadvise): cold runs skipped\n", B.model);
    for (int pass = 0; pass < 2; pass++) {
        bool cold = pass == 0;
        if (cold && !B.cold_how)
            continue;
        if (!cold)
            run_cat(); /* warm the page cache */
        bench_cat(cold);
        bench_load("read", LOAD_PREAD, 1, 1u << 20, LOAD_DIRECT_OFF, cold);
        bench_load("mmap", LOAD_MMAP, 1, 1u << 20, LOAD_DIRECT_OFF, cold);
        for (int q = 0; q < B.n_qd; q++)
            for (int c = 0; c < B.n_chunk; c++)
                bench_load("io_uring", LOAD_IO_URING, B.qd[q], B.chunk[c], B.direct, cold);
    }
    bench_reattach(false);
    if (B.cold_how)
        bench_reattach(true);
    print_results();
    return 0;
}
