/* bench/bench-load-clients.c — bitnetd under many clients at once (bench/load_clients.h):
 *
 *   load     C clients x R requests each, a seeded mix of greedy generations (checked
 *            against answers taken alone), sampled streams, chats with sessions,
 *            tokenize, ps/status, generations cancelled after their first token and
 *            clients walking away mid-stream: problems (unexpected errors, malformed or
 *            wrong answers), p50/p99 latency per kind; the daemon's RSS and open
 *            descriptors before and after each round
 *   idle     the latency of one working client (tokenize, 4-token generate, ping in
 *            turn) without and with N idle connections held open, and the
 *            descriptors once they are gone
 *
 * usage: bench-load-clients [--socket PATH --model NAME] [--clients N] [--requests N]
 *                           [--rounds N] [--idle N] [--probe N] [--seed N]
 *                           [--bitnetd PATH] [--gguf FILE]
 * Without --socket it starts a bitnetd of its own (the one of this build) on a private
 * socket and segment folder, serving a tiny model (bitnet-mkmodel --preset tiny, or
 * --gguf FILE), and stops it at the end.  Exit status 0 when there was no problem, the
 * descriptors came back to their count before the load, and RSS came back within the
 * tolerance (RSS_TOLERANCE_*), 1 otherwise.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bitnet_client.h"
#include "load_clients.h"

#define CLIENTS_DEFAULT 32
#define REQUESTS_DEFAULT 100
#define ROUNDS_DEFAULT 2
#define IDLE_DEFAULT 1000
#define PROBE_DEFAULT 300
#define QUIET_TIMEOUT_MS 60000
#define START_TIMEOUT_MS 30000
/* RSS after a round may exceed the baseline (taken after a warm-up round of the same
 * size) by this much: glibc keeps freed memory in its per-thread arenas (libuv's
 * workers, the engine thread, the loop), and how fragmented they are after a round
 * depends on how the threads interleaved: over 20 rounds of 3200 requests the RSS
 * wanders by about +-2 MiB around a plateau without a trend.  A leak grows with every
 * round instead (100 bytes per request would be +320 KiB a round). */
#define RSS_TOLERANCE_KIB 8192
#define RSS_TOLERANCE_FRACTION 0.10

struct opts {
    const char *socket;
    const char *model;
    int clients, requests, rounds, idle, probe;
    uint64_t seed;
    const char *bitnetd;
    const char *gguf;
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bench-load-clients [--socket PATH --model NAME] [--clients N] [--requests N]\n"
            "                          [--rounds N] [--idle N] [--probe N] [--seed N]\n"
            "                          [--bitnetd PATH] [--gguf FILE]\n"
            "  --clients N    concurrent clients (default %d)\n"
            "  --requests N   requests per client and round (default %d)\n"
            "  --rounds N     rounds after the warm-up (default %d)\n"
            "  --idle N       idle connections held open for the idle test (default %d; 0: skip)\n"
            "  --probe N      requests of the working client in the idle test (default %d)\n"
            "  --socket PATH  use a running bitnetd (with --model NAME) instead of starting one\n"
            "  --bitnetd PATH the daemon to start (default: this build's daemon/bitnetd)\n"
            "  --gguf FILE    the model it serves (default: bitnet-mkmodel --preset tiny)\n",
            CLIENTS_DEFAULT, REQUESTS_DEFAULT, ROUNDS_DEFAULT, IDLE_DEFAULT, PROBE_DEFAULT);
}

/* ---- a daemon of our own ---- */

struct own {
    char dir[PATH_MAX];
    char sock[PATH_MAX + 16];
    char log[PATH_MAX + 16];
    pid_t pid;
};

/* A program of this build: $BITNET_BUILD_DIR/REL, else beside this program (libtool
 * may run it from bench/.libs). */
static int find_tool(const char *rel, char *out, size_t cap)
{
    const char *b = getenv("BITNET_BUILD_DIR");
    if (b && *b) {
        snprintf(out, cap, "%s/%s", b, rel);
        if (access(out, X_OK) == 0)
            return 0;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return -1;
    exe[n] = 0;
    char *dir = dirname(exe);
    static const char *const ups[] = {"..", "../.."};
    for (size_t i = 0; i < 2; i++) {
        snprintf(out, cap, "%s/%s/%s", dir, ups[i], rel);
        if (access(out, X_OK) == 0)
            return 0;
    }
    return -1;
}

static int run_quiet(char *const argv[])
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void rm_tree(const char *dir)
{
    char cmd[PATH_MAX + 32];
    snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", dir); /* dir: our own mkdtemp name */
    if (system(cmd) != 0)
        fprintf(stderr, "bench-load-clients: could not remove %s\n", dir);
}

static int own_start(struct own *d, const struct opts *o)
{
    char bitnetd[PATH_MAX], model[PATH_MAX + 16], conf[PATH_MAX + 16], shm[PATH_MAX + 16];
    if (o->bitnetd)
        snprintf(bitnetd, sizeof(bitnetd), "%s", o->bitnetd);
    else if (find_tool("daemon/bitnetd", bitnetd, sizeof(bitnetd)) < 0) {
        fprintf(stderr, "bench-load-clients: cannot find daemon/bitnetd of this build (give --bitnetd)\n");
        return -1;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(d->dir, sizeof(d->dir), "%s/bench-load-clients.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(d->dir)) {
        fprintf(stderr, "bench-load-clients: mkdtemp: %s\n", strerror(errno));
        return -1;
    }
    if (o->gguf) {
        snprintf(model, sizeof(model), "%s", o->gguf);
    } else {
        char mk[PATH_MAX];
        snprintf(model, sizeof(model), "%s/tiny.gguf", d->dir);
        char *argv[] = {mk, "--preset", "tiny", "--out", model, NULL};
        if (find_tool("contrib/bitnet-mkmodel", mk, sizeof(mk)) < 0 || run_quiet(argv) != 0) {
            fprintf(stderr, "bench-load-clients: cannot make a tiny model with contrib/bitnet-mkmodel (give --gguf)\n");
            return -1;
        }
    }
    snprintf(d->sock, sizeof(d->sock), "%s/s.sock", d->dir);
    snprintf(d->log, sizeof(d->log), "%s/bitnetd.log", d->dir);
    snprintf(conf, sizeof(conf), "%s/bitnetd.conf", d->dir);
    snprintf(shm, sizeof(shm), "%s/shm", d->dir);
    mkdir(shm, 0700);
    FILE *f = fopen(conf, "w");
    if (!f)
        return -1;
    fprintf(f, "# bench-load-clients\n[models]\ntiny = %s\n", model);
    fclose(f);
    d->pid = fork();
    if (d->pid < 0)
        return -1;
    if (d->pid == 0) {
        int lf = open(d->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        dup2(lf, 1);
        dup2(lf, 2);
        execl(bitnetd, bitnetd, "--config", conf, "--socket", d->sock, "--shm-dir", shm, "--log-level", "warn",
              (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < START_TIMEOUT_MS / 10; i++) {
        if (lc_daemon_pid(d->sock) == d->pid)
            return 0;
        int st;
        if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
            fprintf(stderr, "bench-load-clients: bitnetd exited at start; see %s\n", d->log);
            d->pid = -1;
            return -1;
        }
        struct timespec ts = {0, 10000000L};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "bench-load-clients: bitnetd did not come up; see %s\n", d->log);
    return -1;
}

/* SIGTERM and wait; the exit status (-1: killed or not ours). */
static int own_stop(struct own *d)
{
    int rc = -1;
    if (d->pid > 0) {
        kill(d->pid, SIGTERM);
        int st;
        if (waitpid(d->pid, &st, 0) == d->pid && WIFEXITED(st))
            rc = WEXITSTATUS(st);
        d->pid = -1;
    }
    if (rc != 0)
        fprintf(stderr, "bench-load-clients: bitnetd's log (%s) follows\n", d->log);
    if (rc != 0) {
        char cmd[PATH_MAX + 32];
        snprintf(cmd, sizeof(cmd), "cat -- '%s' >&2", d->log);
        (void)!system(cmd);
    }
    if (d->dir[0])
        rm_tree(d->dir);
    return rc;
}

/* ---- the run ---- */

static int ensure_loaded(const char *socket, const char *model)
{
    struct bnc_options o;
    bnc_options_init(&o);
    o.socket_path = socket;
    struct bnc_conn *c;
    struct bnc_error e;
    if (bnc_connect(&c, &o, &e) < 0) {
        fprintf(stderr, "bench-load-clients: %s\n", e.message);
        return -1;
    }
    struct bnc_load_params lp;
    bnc_load_params_init(&lp);
    lp.model = model;
    struct bnc_load_result lr = {0};
    int rc = bnc_load(c, &lp, NULL, NULL, &lr, &e);
    if (rc < 0)
        fprintf(stderr, "bench-load-clients: load %s: %s\n", model, e.message);
    bnc_result_free(&lr);
    bnc_close(c);
    return rc;
}

static void print_report(const char *title, const struct lc_report *r)
{
    printf("%s: %llu requests in %.2f s (%.0f/s), %llu problems, %llu cancelled by the server\n", title,
           (unsigned long long)r->requests, r->seconds, r->seconds > 0 ? (double)r->requests / r->seconds : 0,
           (unsigned long long)r->problems, (unsigned long long)r->cancelled);
    printf("  %-11s %7s %9s %9s %9s %8s\n", "kind", "n", "p50 ms", "p99 ms", "max ms", "problems");
    for (int k = 0; k < LC_KINDS; k++)
        printf("  %-11s %7llu %9.2f %9.2f %9.2f %8llu\n", lc_kind_name((enum lc_kind)k),
               (unsigned long long)r->kind[k].n, r->kind[k].p50_ms, r->kind[k].p99_ms, r->kind[k].max_ms,
               (unsigned long long)r->kind[k].problems);
    printf("  %-11s %7llu %9.2f %9.2f\n", "all", (unsigned long long)r->requests, r->p50_ms, r->p99_ms);
    if (r->first_problem[0])
        printf("  first problem: %s\n", r->first_problem);
}

static int run(const struct opts *o, const char *socket, const char *model)
{
    int bad = 0;
    char why[LC_PROBLEM_MAX] = "";
    if (lc_raise_nofile(o->idle + o->clients + 256) < 0)
        fprintf(stderr, "bench-load-clients: cannot raise RLIMIT_NOFILE to %d: the idle test may fail\n",
                o->idle + o->clients + 256);
    pid_t pid = lc_daemon_pid(socket);
    if (pid <= 0 || ensure_loaded(socket, model) < 0)
        return 1;
    struct lc_refs *refs;
    struct bnc_conn *obs = lc_connect(socket, "bench-load-clients observer", why);
    if (!obs || lc_refs_make(&refs, socket, model, why) < 0) {
        fprintf(stderr, "bench-load-clients: %s\n", why);
        bnc_close(obs);
        return 1;
    }
    /* The warm-up is a round of the same size: it takes every code path and brings the
     * allocator's arenas to the high-water mark of such a round. */
    struct lc_config cfg = {.socket = socket, .model = model, .clients = o->clients, .requests = o->requests,
                            .seed = o->seed};
    struct lc_report rep;
    lc_wait_quiet(obs, 0, QUIET_TIMEOUT_MS);
    printf("bitnetd pid %d, model %s: %d clients x %d requests, %d round%s after a warm-up round; "
           "at rest: RSS %ld KiB, %d descriptors\n",
           (int)pid, model, o->clients, o->requests, o->rounds, o->rounds == 1 ? "" : "s", lc_rss_kib(pid),
           lc_fd_count(pid));
    if (lc_run(&cfg, refs, &rep) < 0 || lc_wait_quiet(obs, 0, QUIET_TIMEOUT_MS) < 0) {
        fprintf(stderr, "bench-load-clients: warm-up: %s\n", rep.first_problem);
        lc_refs_free(refs);
        bnc_close(obs);
        return 1;
    }
    bad |= rep.problems != 0;
    if (rep.problems)
        print_report("warm-up", &rep);
    long rss0 = lc_rss_kib(pid);
    int fd0 = lc_fd_count(pid);
    printf("baseline after the warm-up: RSS %ld KiB, %d descriptors\n", rss0, fd0);
    long rss_prev = rss0;
    for (int r = 0; r < o->rounds; r++) {
        cfg.requests = o->requests;
        cfg.seed = o->seed + 1 + (uint64_t)r;
        char title[32];
        snprintf(title, sizeof(title), "round %d", r + 1);
        if (lc_run(&cfg, refs, &rep) < 0) {
            fprintf(stderr, "bench-load-clients: %s: %s\n", title, rep.first_problem);
            bad = 1;
            break;
        }
        print_report(title, &rep);
        bad |= rep.problems != 0;
        if (lc_wait_quiet(obs, 0, QUIET_TIMEOUT_MS) < 0) {
            fprintf(stderr, "bench-load-clients: the daemon did not go quiet after %s\n", title);
            bad = 1;
            break;
        }
        long rss = lc_rss_kib(pid);
        int fds = lc_fd_count(pid);
        long allow = (long)(RSS_TOLERANCE_FRACTION * (double)rss0);
        if (allow < RSS_TOLERANCE_KIB)
            allow = RSS_TOLERANCE_KIB;
        bool rss_ok = rss - rss0 <= allow, fd_ok = fds == fd0;
        printf("  after: RSS %ld KiB (%+ld vs baseline, %+ld vs the round before; allowed +%ld), "
               "descriptors %d (%+d)%s%s\n",
               rss, rss - rss0, rss - rss_prev, allow, fds, fds - fd0, rss_ok ? "" : "  RSS NOT BACK",
               fd_ok ? "" : "  DESCRIPTOR LEAK");
        bad |= !rss_ok || !fd_ok;
        rss_prev = rss;
    }
    lc_refs_free(refs);

    if (o->idle > 0) {
        double p50a, p99a, p50b, p99b;
        int *fds = NULL;
        if (lc_probe(socket, model, o->probe, &p50a, &p99a, why) < 0 || lc_idle_open(socket, o->idle, &fds, why) < 0) {
            fprintf(stderr, "bench-load-clients: idle test: %s\n", why);
            bnc_close(obs);
            return 1;
        }
        int fd_idle = lc_fd_count(pid);
        long rss_idle = lc_rss_kib(pid);
        int rc = lc_probe(socket, model, o->probe, &p50b, &p99b, why);
        lc_idle_close(fds, o->idle);
        if (rc < 0) {
            fprintf(stderr, "bench-load-clients: idle test: %s\n", why);
            bnc_close(obs);
            return 1;
        }
        bool quiet = lc_wait_quiet(obs, 0, QUIET_TIMEOUT_MS) == 0;
        int fd_after = lc_fd_count(pid);
        printf("idle: working client (%d requests: tokenize, 4-token generate, ping) p50 %.3f ms, p99 %.3f ms alone;\n"
               "      p50 %.3f ms, p99 %.3f ms with %d idle connections open (daemon: %d descriptors, RSS %ld KiB);\n"
               "      descriptors after closing them: %d (baseline %d)%s\n",
               o->probe, p50a, p99a, p50b, p99b, o->idle, fd_idle, rss_idle, fd_after, fd0,
               quiet && fd_after == fd0 ? "" : "  DESCRIPTOR LEAK");
        bad |= !quiet || fd_after != fd0;
    }
    bnc_close(obs);
    return bad;
}

int main(int argc, char **argv)
{
    struct opts o = {.clients = CLIENTS_DEFAULT, .requests = REQUESTS_DEFAULT, .rounds = ROUNDS_DEFAULT,
                     .idle = IDLE_DEFAULT, .probe = PROBE_DEFAULT, .seed = 1};
    static const struct option lo[] = {
        {"socket", required_argument, 0, 's'},  {"model", required_argument, 0, 'm'},
        {"clients", required_argument, 0, 'c'}, {"requests", required_argument, 0, 'r'},
        {"rounds", required_argument, 0, 'R'},  {"idle", required_argument, 0, 'i'},
        {"probe", required_argument, 0, 'p'},   {"seed", required_argument, 0, 'S'},
        {"bitnetd", required_argument, 0, 'b'}, {"gguf", required_argument, 0, 'g'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 's': o.socket = optarg; break;
        case 'm': o.model = optarg; break;
        case 'c': o.clients = atoi(optarg); break;
        case 'r': o.requests = atoi(optarg); break;
        case 'R': o.rounds = atoi(optarg); break;
        case 'i': o.idle = atoi(optarg); break;
        case 'p': o.probe = atoi(optarg); break;
        case 'S': o.seed = strtoull(optarg, NULL, 10); break;
        case 'b': o.bitnetd = optarg; break;
        case 'g': o.gguf = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc || o.clients < 1 || o.clients > LC_CLIENTS_MAX || o.requests < 1 || o.rounds < 1 ||
        o.idle < 0 || o.probe < 1 || (o.socket && !o.model)) {
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (o.socket)
        return run(&o, o.socket, o.model);
    struct own d = {.pid = -1};
    if (own_start(&d, &o) < 0) {
        own_stop(&d);
        return 1;
    }
    int bad = run(&o, d.sock, "tiny");
    int st = own_stop(&d);
    if (st != 0)
        printf("bitnetd exited with status %d\n", st);
    return bad || st != 0;
}
