/* bench/load_clients.h — many clients at once against a running bitnetd, for
 * bench/bench-load-clients (the full run: 32 clients x 100 requests, 1000 idle
 * connections) and tests/test-load-clients (a short one in make check).
 *
 * Each client is a thread with its own libbitnet-client connection doing a fixed,
 * seeded mix of requests: greedy generations (checked against reference answers taken
 * before the run: batching must not change a token), sampled streams (the streamed
 * pieces must add up to the final text), chats with a session, tokenize (checked
 * against a reference), ps/status, generations cancelled after their first token, and
 * clients that walk away in the middle of a stream (a raw socket closed after the
 * first token).  Every answer is checked; anything but a well-formed, expected answer
 * is a problem, counted and described.
 */
#ifndef BN_BENCH_LOAD_CLIENTS_H
#define BN_BENCH_LOAD_CLIENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "bitnet_client.h"

#define LC_CLIENTS_MAX 1024
#define LC_PROBLEM_MAX 512 /* bytes of the first problem's description */

enum lc_kind {
    LC_GENERATE,   /* greedy, compared with the reference answer */
    LC_STREAM,     /* sampled (seeded) stream: pieces add up to the text */
    LC_CHAT,       /* chat in the client's own session */
    LC_TOKENIZE,   /* compared with the reference ids */
    LC_PS,         /* ps, or status */
    LC_CANCEL,     /* stream cancelled after its first token */
    LC_DISCONNECT, /* raw connection closed after the first token */
    LC_KINDS
};
const char *lc_kind_name(enum lc_kind k);

struct lc_config {
    const char *socket;
    const char *model;   /* a resident (or configured) model name */
    int clients;         /* threads, each with its own connection */
    int requests;        /* per client */
    uint64_t seed;       /* the mix of each client follows from it */
};

struct lc_kind_stats {
    uint64_t n;          /* requests of this kind done */
    uint64_t problems;
    double p50_ms, p99_ms, max_ms;
};

struct lc_report {
    uint64_t requests;       /* answered (or walked away from) */
    uint64_t problems;       /* unexpected errors and malformed or wrong answers */
    uint64_t cancelled;      /* LC_CANCEL that the server reported cancelled */
    double seconds;          /* wall time of the run */
    double p50_ms, p99_ms;   /* all request kinds together */
    struct lc_kind_stats kind[LC_KINDS];
    char first_problem[LC_PROBLEM_MAX];
};

/* Reference answers, taken once (greedy texts of the fixed prompts, tokenizations)
 * before any load: the model must be resident.  0, or -1 with why (LC_PROBLEM_MAX). */
struct lc_refs;
int lc_refs_make(struct lc_refs **out, const char *socket, const char *model, char *why);
void lc_refs_free(struct lc_refs *r);

/* Run the mix; fills *rep.  0 when the run took place (problems or not: see
 * rep->problems), -1 with rep->first_problem when it could not start. */
int lc_run(const struct lc_config *cfg, const struct lc_refs *refs, struct lc_report *rep);

/* One client doing n sequential small requests (tokenize, a 4-token greedy generate,
 * ping in turn): latency percentiles in ms.  0, or -1 with why. */
int lc_probe(const char *socket, const char *model, int n, double *p50_ms, double *p99_ms, char *why);

/* n raw connections that say hello and then stay idle; *fds (malloc'd, n entries)
 * for lc_idle_close.  0, or -1 with why (those opened are closed). */
int lc_idle_open(const char *socket, int n, int **fds, char *why);
void lc_idle_close(int *fds, int n);

/* A connection of the caller's (bnc_close it), e.g. an observer that stays open while
 * the daemon's descriptors are counted, so that the count does not depend on when the
 * daemon notices a connection of ours closing.  NULL with why. */
struct bnc_conn *lc_connect(const char *socket, const char *name, char *why);
/* Through obs: wait until the daemon runs and queues nothing and has `others`
 * connections besides obs.  0, or -1 on timeout or error. */
int lc_wait_quiet(struct bnc_conn *obs, int64_t others, int timeout_ms);

/* The daemon's pid (from hello), -1 on error. */
pid_t lc_daemon_pid(const char *socket);
/* /proc figures of a process: resident set (KiB) and open descriptors; -1 on error. */
long lc_rss_kib(pid_t pid);
int lc_fd_count(pid_t pid);
/* Raise the soft RLIMIT_NOFILE to at least n (up to the hard limit): 0, or -1. */
int lc_raise_nofile(int n);

#endif
