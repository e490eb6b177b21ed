/* daemon/daemon.h — bitnetd's central state and the interfaces between its parts.
 *
 *   main.c         flags -> config -> daemon_run
 *   config.c       one key table drives the config file, BITNETD_* env and --flags
 *   server.c       libuv loop, listening socket (or socket activation), SO_PEERCRED,
 *                  signals, sd_notify, the cross-thread event queue, shutdown
 *   conn.c         one client connection: framing, output buffer, backpressure
 *   dispatch.c     one handler per protocol method
 *   models.c       models resident in this daemon: load/unload through the registry,
 *                  keep-alive, show
 *   scheduler.c    the engine thread: continuous batching, chat sessions
 *   metrics.c      counters and gauges; Prometheus text; metrics_http.c (GET /metrics)
 *                  and otlp.c (OTLP/HTTP JSON push) render the same snapshot
 *
 * Threads.  Everything in struct daemon, struct conn and struct dmodel belongs to the
 * loop thread unless a field says otherwise.  Inference runs on the scheduler's engine
 * thread; loads, tokenize/detokenize and prompt preparation run on libuv's worker pool.
 * Those threads talk back to the loop only through daemon_post() (a mutex-protected
 * event queue and a uv_async).  Counters shared with other threads are atomics.
 *
 * Internal to bitnetd (and its tests/benches): clients never include it.
 */
#ifndef BN_DAEMON_H
#define BN_DAEMON_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <uv.h>

#include "bitnet.h"
#include "ipc.h"
#include "log.h"
#include "registry.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BITNETD_VERSION_STRING "bitnetd " PACKAGE_VERSION

/* ==== Limits and defaults (each also a config key unless noted) ==== */
#define DAEMON_PARALLEL_DEFAULT 4          /* sequences decoded together */
#define DAEMON_PARALLEL_MAX 256
#define DAEMON_MAX_QUEUE_DEFAULT 64        /* requests waiting for a sequence slot */
#define DAEMON_MAX_QUEUE_MAX 65536
#define DAEMON_PREFILL_CHUNK_DEFAULT 256   /* prompt tokens evaluated per step, all
                                            * sequences together: a long prompt is
                                            * spread over steps so decodes keep going */
#define DAEMON_PREFILL_CHUNK_MAX 8192
#define DAEMON_SESSIONS_DEFAULT 16         /* chat sessions kept per model (LRU) */
#define DAEMON_SESSIONS_MAX 1024
#define DAEMON_KEEP_ALIVE_DEFAULT 300.0    /* seconds an idle model stays (Ollama's 5 min) */
#define DAEMON_GRACE_DEFAULT 10.0          /* seconds to finish work on SIGTERM */
#define DAEMON_GRACE_MAX 3600.0
#define DAEMON_MAX_CONNECTIONS_DEFAULT 4096
#define DAEMON_MAX_CONNECTIONS_MAX 1000000
#define DAEMON_OTLP_INTERVAL_DEFAULT 60.0  /* seconds between OTLP pushes */
#define DAEMON_OTLP_INTERVAL_MIN 0.05
#define DAEMON_MODELS_MAX 1024             /* entries of the [models] section */
#define DAEMON_MODEL_NAME_MAX 64           /* bytes of a model name: [A-Za-z0-9._:-] */
#define DAEMON_SOCKET_BACKLOG 128
#define DAEMON_CONN_INFLIGHT_MAX 64        /* requests one connection may have open;
                                            * past it: busy error (not a config key) */
#define DAEMON_JOBS_MAX 256                /* tokenize/detokenize/show requests on the
                                            * worker pool, all connections together:
                                            * each holds up to a message of input and its
                                            * answer; past it: busy (not a config key) */
#define DAEMON_FD_RESERVE 64               /* file descriptors kept beyond max_connections
                                            * (listener, model files, io_uring, metrics):
                                            * RLIMIT_NOFILE is raised to cover both */
#define DAEMON_WRITE_HIGH_WATER (4u << 20) /* bytes queued to a slow reader: stop reading
                                            * its requests and pause its streams */
#define DAEMON_WRITE_LOW_WATER (1u << 20)  /* ... resume below this */
#define DAEMON_PROGRESS_MIN_NS 50000000ll  /* load progress notes at most every 50 ms */
#define DAEMON_LINGER_MS 2000              /* at exit: time clients get to read their last
                                            * answers before their connections are closed */
#define DAEMON_DEFAULT_SOCKET_SYSTEM "/run/bitnetd/bitnetd.sock"
#define DAEMON_DEFAULT_CONFIG "/etc/bitnetd.conf"
#define DAEMON_CONFIG_LINE_MAX 8192        /* bytes of one config line */
#define DAEMON_CONFIG_FILE_MAX (4u << 20)  /* bytes of a config file */
#define DAEMON_INSTANCE_DEFAULT "main"

/* ==== Config (config.c) ==== */
struct model_conf {
    char *name; /* [models] key */
    char *path; /* its value: a .gguf path */
};

struct daemon_config {
    char *socket_path;      /* NULL until resolved: $XDG_RUNTIME_DIR/bitnetd.sock, or
                             * DAEMON_DEFAULT_SOCKET_SYSTEM as root without XDG */
    char *socket_group;     /* NULL: socket mode 0600; else 0660 and this group */
    char *admin_group;      /* NULL: admin verbs only for our uid and root */
    char *config_path;      /* file read (NULL: none) */
    enum bn_log_level log_level;
    int parallel;
    int max_queue;
    int prefill_chunk;
    int sessions;
    int threads;            /* engine threads per model; 0: one per core */
    bool head_q8;           /* loads requantize an F16/F32 head to Q8_0 (bn_model_params) */
    int64_t ctx;            /* default context length of a load; 0: the model's */
    double keep_alive;      /* seconds; 0: unload when idle; < 0: never */
    double shutdown_grace;  /* seconds */
    bool allow_client_paths;/* load accepts any .gguf path, not only [models] names */
    bool load_on_demand;    /* generate/chat of a configured, unloaded model loads it */
    uint64_t max_message_bytes;
    int max_connections;
    char *metrics_listen;   /* "127.0.0.1:9464"; NULL: no HTTP endpoint */
    bool metrics_allow_remote;
    char *otlp_endpoint;    /* "http://host:port/path"; NULL: no push */
    double otlp_interval;   /* seconds */
    char *instance;         /* shared-memory segment namespace */
    char *shm_dir;          /* NULL: POSIX shm; else a folder for the segments */
    uint64_t mem_limit;     /* bytes of resident models; 0: no limit */
    char *load_method;      /* "io_uring" or "pread" */
    bool mlock;
    bool huge_pages;
    struct model_conf *models;
    size_t n_models;
    bool check_only;        /* --check-config: report and exit (not a key) */
};

/* Where a value came from, for messages. */
struct config_args {
    int argc;
    char **argv;     /* the command line (not copied: must outlive the daemon) */
};

/* Build the config: defaults, then the config file (--config / BITNETD_CONFIG, else
 * DAEMON_DEFAULT_CONFIG when it exists), then BITNETD_* environment variables, then
 * flags.  Strict: an unknown key, a bad value or a duplicate name fails with one line
 * naming the file and line, the variable or the flag.  On success *out is filled
 * (free with config_free); on failure it is left zeroed.  *exit_now is set for
 * --help / --version (printed to stdout) and --check-config. */
int config_load(struct daemon_config *out, const struct config_args *args, bool *exit_now,
                struct bn_err *err);
void config_free(struct daemon_config *c);
/* Parse a config file's text only (tests, fuzzers): applied over *c. */
int config_parse_text(struct daemon_config *c, const char *text, size_t len, const char *label,
                      struct bn_err *err);
void config_defaults(struct daemon_config *c);
/* Check ranges and cross-key rules and resolve the socket path default. */
int config_finish(struct daemon_config *c, struct bn_err *err);
/* Log each difference of `next` from `cur` and say which take effect only at restart.
 * Returns the number of differences. */
int config_log_changes(const struct daemon_config *cur, const struct daemon_config *next);
/* The configured path of model `name`, or NULL. */
const char *config_model_path(const struct daemon_config *c, const char *name);
/* Usage text for --help. */
void config_usage(FILE *out);
/* Parse durations ("300", "1.5s", "250ms", "5m", "1h", "-1") and sizes ("512M", "8G"). */
int config_parse_duration(const char *s, double *out);
int config_parse_size(const char *s, uint64_t *out);
bool daemon_model_name_valid(const char *name);
/* Keys that need a restart keep the running value in `next` (SIGHUP). */
void config_keep_restart_keys(struct daemon_config *next, const struct daemon_config *cur);

/* ==== Text (utf8_fix.c) ==== */
/* Append s[0..n) to out as valid UTF-8 without NUL bytes: each byte that does not
 * start a valid sequence, and each NUL, becomes U+FFFD (what the protocol's strings
 * require).  0, or -1 when out of memory. */
int utf8_sanitize(const char *s, size_t n, struct bn_bytes *out);

/* ==== Metrics (metrics.c) ==== */
enum metric_err { /* error codes counted separately; others go to METRIC_ERR_OTHER */
    METRIC_ERR_PARSE, METRIC_ERR_INVALID_REQUEST, METRIC_ERR_METHOD_NOT_FOUND,
    METRIC_ERR_INVALID_PARAMS, METRIC_ERR_INTERNAL, METRIC_ERR_MODEL_NOT_FOUND,
    METRIC_ERR_MODEL_NOT_LOADED, METRIC_ERR_BUSY, METRIC_ERR_CANCELLED,
    METRIC_ERR_SHUTTING_DOWN, METRIC_ERR_PERMISSION_DENIED, METRIC_ERR_LOAD_FAILED,
    METRIC_ERR_CONTEXT_OVERFLOW, METRIC_ERR_MESSAGE_TOO_LARGE, METRIC_ERR_UNSUPPORTED_VERSION,
    METRIC_ERR_OTHER, METRIC_ERR_COUNT
};

/* Every field is atomic: the loop, the engine thread and the OTLP thread all touch it. */
struct metrics {
    _Atomic uint64_t requests[BN_RPC_METHOD_COUNT + 1]; /* last: unknown method */
    _Atomic uint64_t errors[METRIC_ERR_COUNT];
    _Atomic uint64_t tokens_prompt;    /* prompt tokens evaluated (prefill) */
    _Atomic uint64_t tokens_cached;    /* prompt tokens reused from a session */
    _Atomic uint64_t tokens_generated;
    _Atomic uint64_t generations;      /* generate/chat finished */
    _Atomic uint64_t cancelled;        /* ... of which cancelled or client gone */
    _Atomic uint64_t connections_total;
    _Atomic uint64_t loads;            /* loads that read or reattached a model */
    _Atomic uint64_t load_failures;
    _Atomic uint64_t load_ns_total;    /* sum of their load times */
    _Atomic uint64_t unloads;
    _Atomic uint64_t keepalive_unloads;
    _Atomic uint64_t steps;            /* engine steps (bn_decode calls) */
    _Atomic uint64_t step_ns_total;
    /* gauges */
    _Atomic int64_t connections;
    _Atomic int64_t active_sequences;
    _Atomic int64_t queued;
    _Atomic int64_t kv_bytes;
    _Atomic int64_t models_resident;
    _Atomic int64_t resident_bytes;
    _Atomic int64_t sessions;
    _Atomic uint64_t decode_tps_bits;  /* double: decode tokens/s over the last window */
    _Atomic uint64_t last_load_ns;
    double start_time;                 /* CLOCK_REALTIME seconds at start (set once) */
    double start_mono;                 /* CLOCK_MONOTONIC seconds at start (set once) */
};
void metrics_init(struct metrics *m);
void metrics_count_error(struct metrics *m, int code);
void metrics_set_decode_tps(struct metrics *m, double tps);

/* A snapshot as a flat list of samples: what both renderers walk. */
enum metric_kind { METRIC_COUNTER, METRIC_GAUGE };
struct metric_sample {
    const char *name;   /* Prometheus name without _total, e.g. "bitnetd_requests" */
    const char *help;
    const char *unit;   /* UCUM for OTLP: "1", "s", "By", "{token}" */
    enum metric_kind kind;
    const char *label;  /* label key or NULL */
    const char *label_value;
    bool is_int;
    int64_t i;
    double d;
};
#define METRICS_SAMPLES_MAX 128
/* Fill up to METRICS_SAMPLES_MAX samples; returns how many. */
size_t metrics_snapshot(const struct metrics *m, struct metric_sample *out);
/* Prometheus text exposition 0.0.4.  *out is malloc'd (caller frees); -1 on OOM. */
int metrics_render_prometheus(const struct metrics *m, char **out, size_t *len);
/* OTLP/HTTP JSON (ExportMetricsServiceRequest).  *out malloc'd; -1 on OOM. */
int metrics_render_otlp(const struct metrics *m, char **out, size_t *len);

struct metrics_http;
/* GET /metrics on `listen` ("HOST:PORT", loopback unless allow_remote).  Runs on the
 * loop.  *out owned by the caller (metrics_http_close). */
int metrics_http_start(struct metrics_http **out, uv_loop_t *loop, const struct metrics *m,
                       const char *listen, bool allow_remote, struct bn_err *err);
/* Port actually bound (useful with port 0). */
int metrics_http_port(const struct metrics_http *h);
void metrics_http_close(struct metrics_http *h); /* async: frees itself after uv_close */

struct otlp;
/* Push every interval seconds from a thread of its own to `endpoint`
 * (http://HOST[:PORT][/PATH], default path /v1/metrics).  Never blocks the caller. */
int otlp_start(struct otlp **out, const struct metrics *m, const char *endpoint, double interval,
               struct bn_err *err);
/* Push once more (final values), stop and join the thread. */
void otlp_stop(struct otlp *o);
/* Parse an endpoint URL.  host: >= 256 bytes, path: >= 1024 bytes. */
int otlp_parse_url(const char *url, char *host, size_t host_len, int *port, char *path,
                   size_t path_len, struct bn_err *err);

/* ==== Cross-thread events (server.c) ==== */
struct daemon;
struct req;
struct dmodel;
enum event_kind {
    EV_TOKEN,    /* engine: one streamed token of req */
    EV_DONE,     /* engine or worker: req finished (result or error in req) */
    EV_PROGRESS, /* load worker: bytes done of a load */
};
struct event {
    struct event *next;
    enum event_kind kind;
    struct req *req;
    int32_t token;
    int64_t done, total; /* EV_PROGRESS */
    uint32_t text_len;
    char text[];         /* EV_TOKEN: text_len bytes (not NUL-terminated) */
};
/* From any thread: queue ev (malloc'd; the loop frees it) and wake the loop. */
void daemon_post(struct daemon *d, struct event *ev);
struct event *event_new(enum event_kind kind, struct req *r, const char *text, size_t len);

/* ==== Connections (conn.c) ==== */
struct conn {
    struct conn *prev, *next;     /* daemon's list */
    struct daemon *d;
    uv_pipe_t pipe;
    uint64_t id;                  /* for logs */
    pid_t peer_pid;
    uid_t peer_uid;
    gid_t peer_gid;
    bool admin;                   /* may use load/unload/shutdown */
    bool hello_done;              /* hello answered: other methods allowed */
    bool reading;
    bool closing;                 /* uv_close called or asked after flush */
    bool close_after_flush;       /* a framing error was answered: close when written */
    bool handle_closed;
    bool dirty;                   /* has unflushed output (in daemon's dirty list) */
    bool congested;               /* write queue over the high-water mark */
    struct conn *dirty_next;
    unsigned refs;                /* 1 while open + requests that point at it */
    struct bn_rpc_framer framer;
    msgpack_sbuffer out;          /* encoded, not yet handed to libuv */
    msgpack_packer pk;
    size_t write_queued;          /* bytes in uv_write requests not yet completed */
    struct req *reqs;             /* requests in flight (doubly linked via conn_prev/next) */
    unsigned n_reqs;
    char client_name[BN_RPC_NAME_MAX]; /* from hello */
};
/* Take over an accepted client pipe. */
void conn_start(struct daemon *d, struct conn *c);
/* Output: append one message (flushed when the loop iteration ends). */
void conn_send_result(struct conn *c, uint32_t msgid, enum bn_rpc_method m, const void *result);
void conn_send_error(struct conn *c, const uint32_t *msgid, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void conn_send_note(struct conn *c, enum bn_rpc_note n, const void *params);
/* Write out buffered output of every dirty connection (called once per loop turn). */
void conn_flush_all(struct daemon *d);
/* Close now (pending output is dropped); requests in flight get cancelled. */
void conn_close(struct conn *c);
void conn_unref(struct conn *c);
/* A request is on c's in-flight list. */
void conn_add_req(struct conn *c, struct req *r);
void conn_remove_req(struct conn *c, struct req *r);
struct req *conn_find_req(struct conn *c, uint32_t msgid);

/* ==== Requests that outlive their handler call ==== */
/* A generate/chat request: built on the loop, prepared (tokenized) on a worker, run by
 * the scheduler, answered on the loop.  Between sched_submit and its EV_DONE the
 * engine thread owns the gen fields; the loop touches only the atomics. */
struct gen_msg {
    char *role;
    char *content;
    size_t content_len;
};
struct req {
    _Atomic int refs;                  /* 1 + progress events in the queue; req_free
                                        * drops one and frees at zero */
    struct req *conn_prev, *conn_next; /* conn's in-flight list (loop) */
    struct req *link;                  /* scheduler queue / load waiters */
    struct conn *conn;                 /* holds a reference */
    struct daemon *d;
    uint32_t msgid;
    enum bn_rpc_method method;
    uint64_t conn_id;                  /* its connection's id, for logs (0: internal) */
    uid_t uid;                         /* the peer's uid: chat sessions are per uid */
    struct dmodel *model;              /* holds a model reference (NULL: none) */
    _Atomic int cancel;                /* 0, or the error code that ends it:
                                        * BN_RPC_E_CANCELLED (cancel/disconnect, answered
                                        * as stop_reason "cancelled") or
                                        * BN_RPC_E_SHUTTING_DOWN (answered as an error) */
    _Atomic bool paused;               /* the client is not reading: skip in steps */
    bool stream;
    bool progress;                     /* load: send progress notes */
    bool in_scheduler;                 /* submitted, EV_DONE not yet seen */
    int64_t last_progress_ns;          /* load worker (its thread only) */
    uv_work_t work;                    /* worker pool job (prepare, load, tokenize) */

    /* ---- generation inputs (copied out of the message zone) ---- */
    char *prompt;                      /* generate: text prompt, or NULL */
    size_t prompt_len;
    char *system;
    bool raw;
    struct gen_msg *msgs;              /* chat */
    size_t n_msgs;
    char *session;                     /* chat session id, or NULL */
    char **stop;
    size_t n_stop;
    struct bn_sampler_params sampler;
    int32_t max_tokens;                /* 0: none */
    struct bn_tokens tokens;           /* the prompt as ids (filled by prepare) */

    /* ---- results (written by the thread that finishes it, read after EV_DONE) ---- */
    int err_code;                      /* 0: success */
    char err_msg[BN_RPC_ERROR_MESSAGE_MAX];
    struct bn_bytes text;              /* generated text, whole */
    struct bn_rpc_gen_stats stats;
    double t_submit, t_admit, t_first; /* monotonic seconds */

    /* ---- tokenize/detokenize ---- */
    bool add_special;                  /* tokenize: BOS first */
    bool parse_special;                /* tokenize: special token texts become ids */
    struct bn_bytes out_text;
    /* ---- load / show job ---- */
    struct load_task *load;
};
/* A request on c's in-flight list with one reference; NULL when out of memory. */
struct req *req_new(struct conn *c, uint32_t msgid, enum bn_rpc_method m);
/* Drop a reference; the last one frees r and everything it owns. */
void req_free(struct req *r);
/* Answer nothing more: take r off its connection and drop the request's reference. */
void req_done(struct daemon *d, struct req *r);
/* Finish with an error message from a worker/engine thread (stored in the req). */
void req_fail(struct req *r, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ==== Models (models.c) ==== */
enum dmodel_state { DMODEL_LOADING, DMODEL_READY, DMODEL_RETIRING };
struct session; /* scheduler.c */
struct dmodel {
    struct dmodel *next;
    struct daemon *d;
    char name[DAEMON_MODEL_NAME_MAX + 1];
    char *path;                  /* as given (canonical path in resident info) */
    enum dmodel_state state;
    /* Set when ready (immutable afterwards until freed): */
    struct resident *res;
    struct bn_model *model;
    struct bn_vocab *vocab;
    struct bn_ctx *ctx;          /* engine thread only while it runs sequences */
    enum bn_chat_format chat;
    const struct bn_model_info *info;
    int64_t n_ctx;
    int threads;
    uint64_t bytes;              /* segment bytes */
    enum bn_rpc_loaded_by loaded_by;
    double load_seconds;
    double keep_alive;
    /* Loop thread: */
    unsigned refs;               /* requests in flight that use it */
    double idle_since;           /* monotonic seconds; when refs fell to 0 */
    uv_timer_t keep_timer;
    bool timer_open;
    struct req *waiters;         /* loads of the same name waiting for this one */
    /* Engine thread only: */
    struct session *sessions;
    size_t n_sessions;
    uint64_t session_clock;      /* LRU stamp source */
    int64_t kv_reported;         /* KV bytes of ctx counted in metrics.kv_bytes */
};
struct dmodel *models_find(struct daemon *d, const char *name);
/* Take/drop a request's reference; the last drop arms the keep-alive timer or, for a
 * retiring model, frees it. */
void models_ref(struct dmodel *m);
void models_unref(struct dmodel *m);
/* Handlers with a worker stage. */
void models_load(struct daemon *d, struct conn *c, uint32_t msgid, const struct bn_rpc_load_params *p);
void models_unload(struct daemon *d, struct conn *c, uint32_t msgid, const struct bn_rpc_unload_params *p);
void models_show(struct daemon *d, struct conn *c, uint32_t msgid, const struct bn_rpc_show_params *p);
void models_ps(struct daemon *d, struct conn *c, uint32_t msgid);
void models_list(struct daemon *d, struct conn *c, uint32_t msgid);
/* The model `name` for request r (generate/chat): 1 = ready (r->model set, reference
 * taken); 0 = being loaded (a configured model is loaded on demand when the config
 * allows): r waits and dispatch_model_ready() or dispatch_finish() (error) follows;
 * -1 = err set (not loaded). */
int models_acquire(struct daemon *d, struct req *r, const char *name, struct bn_rpc_error *err);
/* Load progress event from a worker. */
void models_on_progress(struct daemon *d, struct req *r, int64_t done, int64_t total);
/* Load/show finished on a worker. */
void models_on_done(struct daemon *d, struct req *r);
/* Retire every model (shutdown): unload from the registry when unused. */
void models_close_all(struct daemon *d);
/* Count of requests in flight on all models; KV bytes are the scheduler's. */
size_t models_count_resident(struct daemon *d, uint64_t *bytes);
/* Resolve a load/show argument to (name, path): a configured name, a loaded name,
 * or (when allowed) a path.  Writes an error and returns -1. */
int models_resolve(struct daemon *d, const char *arg, const char *want_name, bool for_load,
                   char *name, size_t name_len, char **path, struct bn_rpc_error *err);

/* ==== Scheduler (scheduler.c) ==== */
struct scheduler;
/* Start the engine thread.  parallel: sequences in flight; prefill_chunk: prompt
 * tokens per step. */
int sched_start(struct scheduler **out, struct daemon *d, int parallel, int prefill_chunk,
                struct bn_err *err);
/* Hand a prepared generation to the engine thread (r->tokens filled). */
void sched_submit(struct scheduler *s, struct req *r);
/* Something changed for the engine thread (cancel flag, unpaused stream). */
void sched_wake(struct scheduler *s);
/* Drop the chat sessions of model m (it is going away); runs on the engine thread and
 * returns when done.  m must have no request in flight. */
void sched_drop_sessions(struct scheduler *s, struct dmodel *m);
/* Stop the engine thread (after every request finished) and free. */
void sched_stop(struct scheduler *s);
/* The n_seq_max a model's context needs: parallel + sessions. */
int32_t sched_ctx_slots(const struct daemon *d);
int64_t sched_ctx_batch(const struct daemon *d);
/* Check sampler params from the wire and convert them; -1 with err (invalid params). */
int sched_sampler_from_rpc(const struct bn_rpc_sampler *o, struct bn_sampler_params *out,
                           struct bn_rpc_error *err);

/* ==== The daemon (server.c) ==== */
struct daemon {
    uv_loop_t loop;
    struct daemon_config cfg;
    struct config_args args;
    uv_pipe_t listener;
    bool listening;
    bool activated;              /* listener came from $LISTEN_FDS */
    bool owns_socket_file;       /* unlink it at exit */
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_async_t wake;
    uv_check_t flush_check;
    uv_timer_t grace_timer;
    uv_timer_t unclaimed_timer;  /* segments of an earlier run no load claimed go after
                                  * keep_alive seconds */
    pthread_mutex_t ev_lock;
    struct event *ev_head, *ev_tail;
    struct conn *conns;
    unsigned n_conns;
    uint64_t next_conn_id;
    struct conn *dirty;          /* connections with output to flush */
    struct dmodel *models;
    struct registry *reg;
    struct scheduler *sched;
    struct metrics metrics;
    struct metrics_http *http;
    struct otlp *otlp;
    uid_t uid;
    gid_t admin_gid;
    bool has_admin_gid;
    gid_t socket_gid;
    bool has_socket_gid;
    unsigned gen_inflight;       /* generate/chat requests not yet answered (busy bound) */
    unsigned work_inflight;      /* worker-pool jobs not yet completed */
    unsigned jobs_inflight;      /* tokenize/detokenize/show requests not yet answered
                                  * (bounded by DAEMON_JOBS_MAX) */
    bool shutting_down;
    bool grace_expired;
    bool stopped;
    int exit_code;
};

/* Run bitnetd with a built config (takes ownership of cfg).  Returns the exit code. */
int daemon_run(struct daemon_config *cfg, const struct config_args *args);
/* Begin a graceful shutdown: stop accepting, finish or cancel within grace seconds. */
void daemon_shutdown(struct daemon *d, double grace);
/* Called whenever in-flight work may have reached zero during shutdown. */
void daemon_maybe_finish(struct daemon *d);
/* Last step of a shutdown: close the loop's own handles so that uv_run returns. */
void daemon_close_loop_handles(struct daemon *d);
/* Is uid/gid (a peer) allowed the admin verbs? */
bool daemon_peer_is_admin(const struct daemon *d, uid_t uid, gid_t gid);
/* Send READY=1 etc. to $NOTIFY_SOCKET (no-op when unset).  0 or -1. */
int daemon_sd_notify(const char *state);
/* Monotonic seconds. */
double daemon_now(void);
/* Sockets passed by socket activation ($LISTEN_PID is this process): their count
 * (from fd 3 on), 0 when not activated, -1 when $LISTEN_FDS is not a positive count. */
long daemon_listen_fds(void);
/* uv_close callback that frees handle->data (the struct holding the handle). */
void free_handle_data(uv_handle_t *h);

/* ==== Dispatch (dispatch.c) ==== */
/* Handle one whole message received on c (its zone valid during the call). */
void dispatch_message(struct conn *c, const msgpack_object *o, msgpack_zone *z);
/* Answer a finished generate/chat/tokenize/... request and free it. */
void dispatch_finish(struct daemon *d, struct req *r);
/* r waited for its model's load: r->model is set (with a reference); go on. */
void dispatch_model_ready(struct daemon *d, struct req *r);
/* Stream one token to r's client. */
void dispatch_token(struct daemon *d, struct req *r, const struct event *ev);
/* Tokenize/detokenize/show: true (busy answered) when DAEMON_JOBS_MAX are in flight. */
bool dispatch_jobs_full(struct conn *c, uint32_t msgid);

#ifdef __cplusplus
}
#endif
#endif /* BN_DAEMON_H */
