/* tests/daemon_harness.h — what the bitnetd tests share: a tiny model made once per
 * test program, a real bitnetd started on a temporary socket, and a blocking test
 * client speaking the protocol through libipc's codec (so that tests can also send
 * bytes no well-behaved client would).
 */
#ifndef BN_TESTS_DAEMON_HARNESS_H
#define BN_TESTS_DAEMON_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "bitnet.h"
#include "ipc.h"

#define DH_TIMEOUT_MS 30000   /* any single wait in a test; a hang fails instead */
#define DH_CLEANUP_TERM_MS 3000 /* dh_cleanup: time a daemon gets to exit on SIGTERM */
#define DH_PATH_MAX 512

/* ---- the model ---- */
/* Call from a ReportHook(PRE_ALL): make the tiny model (bitnet-mkmodel --preset tiny,
 * else the ref tinyA model of $BITNET_TEST_DATA) into a temp folder and publish its
 * path in the environment for the forked tests.  POST_ALL: dh_model_cleanup. */
void dh_model_setup(void);
void dh_model_cleanup(void);
/* The model's path, or NULL (the test should cr_skip with the reason from dh_model_why). */
const char *dh_model_path(void);
const char *dh_model_why(void);

/* ---- a daemon under test ---- */
struct dh {
    char dir[DH_PATH_MAX];  /* temp folder: socket, segments, config, log */
    char sock[DH_PATH_MAX + 16];
    char log[DH_PATH_MAX + 16];
    pid_t pid;
    int status;             /* after dh_wait */
};
/* Start bitnetd with `--socket DIR/s.sock --shm-dir DIR/shm --config DIR/bitnetd.conf`;
 * the config holds `[models] tiny = MODEL` plus `conf` lines (may be NULL), args are
 * extra flags (NULL-terminated, may be NULL).  Waits until the socket accepts.
 * Returns 0, or -1 (the log is printed). */
int dh_start(struct dh *h, const char *conf, const char *const *args);
/* Same, with a listening socket passed as fd 3 (socket activation): bitnetd gets no
 * --socket; LISTEN_FDS=1 and LISTEN_PID are set in the child. */
int dh_start_activated(struct dh *h, const char *conf, const char *const *args);
/* Start bitnetd again in h's folder (same socket, DIR/shm segments, log appended)
 * once the previous one exited or was killed and reaped (dh_wait): a restart. */
int dh_restart(struct dh *h, const char *conf, const char *const *args);
/* Rewrite the daemon's config file (same form as dh_start writes). */
int dh_write_conf(const struct dh *h, const char *conf);
/* When set, the next dh_start gives the daemon NOTIFY_SOCKET=this. */
extern const char *dh_notify_socket;
/* SIGTERM and wait (at most DH_TIMEOUT_MS); returns the exit status or -1. */
int dh_stop(struct dh *h);
/* Wait for the daemon to exit by itself. */
int dh_wait(struct dh *h, int timeout_ms);
/* Stop if running (SIGTERM, then SIGKILL after DH_CLEANUP_TERM_MS), remove the folder. */
void dh_cleanup(struct dh *h);
/* Print the daemon's log to stderr (on failure). */
void dh_dump_log(const struct dh *h);
/* The log contains s; the number of its lines that contain s. */
bool dh_log_has(const struct dh *h, const char *s);
int dh_log_count(const struct dh *h, const char *s);

/* ---- a test client ---- */
struct tc_token {
    uint32_t msgid;
    int32_t token;
    char text[64]; /* first bytes only */
    size_t text_len;
};
struct tc_stash; /* messages received for other msgids */
struct tc {
    int fd;
    struct bn_rpc_framer fr;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_zone *zone;          /* decoded results live here until tc_close */
    uint32_t next_id;
    struct tc_token *tokens;     /* every token notification received */
    size_t n_tokens, cap_tokens;
    size_t n_progress;           /* progress notifications received */
    struct tc_stash *stash;
    bool closed_by_server;
};
/* Connect to sock (no hello). */
int tc_open(struct tc *c, const char *sock);
/* Connect and say hello. */
int tc_connect(struct tc *c, const char *sock);
void tc_close(struct tc *c);
/* Raw bytes. */
int tc_send_raw(struct tc *c, const void *p, size_t n);
/* Send a request; returns its msgid. */
uint32_t tc_send(struct tc *c, enum bn_rpc_method m, const void *params);
/* Read until the response to msgid arrives (other responses are kept for later
 * waits; notifications are recorded).  0 with *result decoded, or -1 with err (the
 * server's error, or a local one: code BN_RPC_E_IO when the connection closed,
 * BN_RPC_E_TIMEOUT). */
int tc_wait(struct tc *c, uint32_t msgid, enum bn_rpc_method m, void *result, struct bn_rpc_error *err);
/* A response with a nil msgid (framing errors). */
int tc_wait_nil(struct tc *c, struct bn_rpc_error *err);
/* Send and wait. */
int tc_call(struct tc *c, enum bn_rpc_method m, const void *params, void *result, struct bn_rpc_error *err);
/* Wait until at least n token notes for msgid were received. */
int tc_wait_tokens(struct tc *c, uint32_t msgid, size_t n);
size_t tc_count_tokens(const struct tc *c, uint32_t msgid);
/* True once the server closed the connection (reads until EOF or timeout_ms). */
bool tc_wait_closed(struct tc *c, int timeout_ms);

/* ---- helpers ---- */
/* generate params with the model "tiny", greedy, given token ids. */
void tc_gen_tokens(struct bn_rpc_generate_params *p, const int32_t *ids, size_t n, int32_t max_tokens, bool stream);
int tc_load_tiny(struct tc *c, const char *extra_name, double keep_alive, bool has_keep_alive);
/* status shortcut */
int tc_status(struct tc *c, struct bn_rpc_status_result *st);
/* Poll status until active_sequences == 0 && queued == 0 (or timeout); returns 0. */
int tc_wait_idle(struct tc *c, int timeout_ms);

/* Greedy generation with the engine alone (no daemon): n_gen ids after prompt. */
int engine_greedy(const char *model, const int32_t *prompt, size_t n_prompt, size_t n_gen, int32_t *out,
                  size_t *n_out);
/* Same with bn_model_params.head_q8 (the daemon's head_q8 setting). */
int engine_greedy_head(const char *model, bool head_q8, const int32_t *prompt, size_t n_prompt,
                       size_t n_gen, int32_t *out, size_t *n_out);

/* Open file descriptors of a process (/proc/PID/fd), its resident set in KiB
 * (VmRSS), entries of a folder; -1 when they cannot be read. */
int dh_count_fds(pid_t pid);
long dh_rss_kib(pid_t pid);
int dh_count_entries(const char *dir);

/* A temp folder under $TMPDIR or /tmp; removed by rm_rf. */
int make_tmpdir(char *out, size_t len, const char *tag);
void rm_rf(const char *path);
void sleep_ms(int ms);

#endif
