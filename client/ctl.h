/* client/ctl.h — bitnetctl's insides, shared by its files and its tests (not installed).
 *
 * bitnetctl is a thin command line over libbitnet-client (bitnet_client.h): it never
 * links the engine.  Every command is a function `int cmd(struct ctl *g, int argc,
 * char **argv)` that reads its own argv (argv[0] is the command name), writes to
 * g->out / g->err and returns the process exit code (enum ctl_exit), so tests call
 * commands in-process with memory streams.
 */
#ifndef BITNET_CTL_H
#define BITNET_CTL_H

#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "bitnet_client.h"

/* Exit codes scripts can rely on (documented in bitnetctl.1 and `bitnetctl help`). */
enum ctl_exit {
    CTL_EXIT_OK = 0,
    CTL_EXIT_ERROR = 1,       /* an error from the daemon (generic) or a local failure */
    CTL_EXIT_USAGE = 2,       /* bad command line */
    CTL_EXIT_CONNECT = 3,     /* cannot connect: the daemon is not running */
    CTL_EXIT_NOT_FOUND = 4,   /* model not found / not loaded */
    CTL_EXIT_BUSY = 5,        /* all sequence slots and the queue are full */
    CTL_EXIT_PERMISSION = 6,  /* admin verb refused, or the socket is not ours to open */
    CTL_EXIT_INTERRUPTED = 130, /* Ctrl-C */
};

/* Limits from docs/PROTOCOL.md "Shared limits", checked before a request is sent so
 * that the error names the flag rather than a protocol field. */
#define CTL_TEXT_MAX 1048576       /* bytes of a prompt / tokenize text */
#define CTL_TOKENS_MAX 262144      /* token ids in one request */
#define CTL_STOP_MAX 16            /* --stop strings */
#define CTL_STOP_LEN_MAX 256       /* bytes of one --stop string */
#define CTL_GEN_TOKENS_MAX 1048576 /* -n */
#define CTL_CTX_MAX 1048576        /* --ctx */
#define CTL_THREADS_MAX 1024       /* --threads */
#define CTL_KEEP_ALIVE_MAX 1e9     /* |--keep-alive| in seconds */
#define CTL_GRACE_MAX 3600.0       /* stop --grace, seconds */
#define CTL_NAME_MAX 256           /* bytes of a model name or session id */
#define CTL_PATH_MAX 4096          /* bytes of a model path */
#define CTL_SOCKET_PATH_MAX 108    /* sizeof(sockaddr_un.sun_path) */

/* ---- the invocation ---- */
struct ctl_command;

struct ctl {
    FILE *in, *out, *err;
    bool in_tty, out_tty, err_tty;     /* isatty() of the three streams */
    const struct ctl_command *cmd;     /* command being run (for messages and help) */
    const char *socket_path;           /* --socket; NULL: bnc_default_socket_path() */
    char socket_buf[CTL_SOCKET_PATH_MAX]; /* the path actually used (for messages) */
    int timeout_ms;                    /* --timeout; -1: none */
    bool json;                         /* --json */
    bool verbose;                      /* -v */
    struct bnc_conn *conn;             /* after ctl_connect; closed by ctl_main */
    pid_t peer_pid;                    /* the daemon's pid seen from here (SO_PEERCRED) */
    bool load_refused;                 /* ctl_ensure_loaded could not load (see below) */
    struct bnc_error load_error;       /* ... and why */
};

/* Run bitnetctl with argv (argv[0] = program name); returns the exit code.  in/out/err
 * are used for every read and write; whether they are terminals is asked with isatty
 * on their file descriptors (memory streams are not). */
int ctl_main(int argc, char **argv, FILE *in, FILE *out, FILE *err);

/* ---- the command table ---- */

/* An option of a command.  id > 0 identifies it to the command; ids below 0 are the
 * parser's (CTL_OPT_*). */
struct ctl_opt {
    const char *name;    /* long name without "--" */
    char short_name;     /* 0: none */
    bool has_value;
    int id;
    const char *metavar; /* shown in help for options with a value */
    const char *help;
};

struct ctl_command {
    const char *name;
    const char *args;     /* synopsis after the name, e.g. "MODEL [PROMPT]" */
    const char *summary;  /* one line */
    const char *details;  /* paragraphs shown by --help (may be NULL) */
    const struct ctl_opt *opts; /* terminated by an entry with name NULL */
    int (*fn)(struct ctl *g, int argc, char **argv);
};
extern const struct ctl_command ctl_commands[];
extern const size_t ctl_n_commands;
const struct ctl_command *ctl_command_find(const char *name);
/* Print the help of cmd (NULL: the overview) to f. */
void ctl_print_help(FILE *f, const struct ctl_command *cmd);

/* The commands (one per function, in the files named after them). */
int ctl_cmd_run(struct ctl *g, int argc, char **argv);     /* ctl_run.c */
int ctl_cmd_chat(struct ctl *g, int argc, char **argv);
int ctl_cmd_load(struct ctl *g, int argc, char **argv);    /* ctl_models.c */
int ctl_cmd_unload(struct ctl *g, int argc, char **argv);
int ctl_cmd_ps(struct ctl *g, int argc, char **argv);
int ctl_cmd_list(struct ctl *g, int argc, char **argv);
int ctl_cmd_show(struct ctl *g, int argc, char **argv);
int ctl_cmd_tokenize(struct ctl *g, int argc, char **argv); /* ctl_tokenize.c */
int ctl_cmd_status(struct ctl *g, int argc, char **argv);  /* ctl_status.c */
int ctl_cmd_metrics(struct ctl *g, int argc, char **argv);
int ctl_cmd_stop(struct ctl *g, int argc, char **argv);
int ctl_cmd_version(struct ctl *g, int argc, char **argv);
int ctl_cmd_bench(struct ctl *g, int argc, char **argv);   /* ctl_bench.c */
int ctl_cmd_serve(struct ctl *g, int argc, char **argv);   /* ctl_serve.c */
int ctl_cmd_help(struct ctl *g, int argc, char **argv);    /* ctl_main.c */

extern const struct ctl_opt ctl_run_opts[], ctl_chat_opts[], ctl_load_opts[], ctl_unload_opts[],
    ctl_ps_opts[], ctl_list_opts[], ctl_show_opts[], ctl_tokenize_opts[], ctl_status_opts[],
    ctl_metrics_opts[], ctl_stop_opts[], ctl_version_opts[], ctl_bench_opts[], ctl_serve_opts[],
    ctl_help_opts[];
/* Options every command takes (--socket, --timeout, --json, -v, --help). */
extern const struct ctl_opt ctl_global_opts[];

/* ---- argument parsing (ctl_args.c) ---- */
enum {
    CTL_OPT_END = -1,  /* no more arguments */
    CTL_OPT_POS = -2,  /* a positional argument in *val */
    CTL_OPT_BAD = -3,  /* a usage error, already printed: return CTL_EXIT_USAGE */
    CTL_OPT_HELP = -4, /* --help / -h */
};
struct ctl_parser {
    int argc;
    char **argv;
    int i;              /* next argv index */
    bool only_pos;      /* after "--" */
    const char *shorts; /* rest of a cluster of short flags ("-vq") */
};
/* Start after argv[0] (the command name). */
void ctl_parser_init(struct ctl_parser *p, int argc, char **argv);
/* Next option of g->cmd (or a global one, which is applied to g and skipped).
 * Returns an option id with *val its value (NULL for flags), CTL_OPT_POS with the
 * argument in *val, CTL_OPT_HELP, CTL_OPT_END, or CTL_OPT_BAD after printing why. */
int ctl_next(struct ctl *g, struct ctl_parser *p, const char **val);

/* Print "bitnetctl CMD: MESSAGE" and the "see --help" hint to g->err; returns
 * CTL_EXIT_USAGE. */
int ctl_usage_error(struct ctl *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Print "bitnetctl CMD: MESSAGE" to g->err; returns code. */
int ctl_fail(struct ctl *g, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Report a libbitnet-client error and return the exit code for it (see ctl_exit_code). */
int ctl_fail_bnc(struct ctl *g, const struct bnc_error *e);
/* Exit code for a libbitnet-client error code. */
int ctl_exit_code(int bnc_code);

/* Value parsers: 0 on success; -1 after printing a usage error that names the flag
 * and the allowed range, e.g. "bitnetctl run: --top-p must be in (0, 1], got 1.5".
 * lo_open / hi_open make that end of the range exclusive. */
int ctl_parse_int(struct ctl *g, const char *flag, const char *s, int64_t lo, int64_t hi, int64_t *out);
int ctl_parse_real(struct ctl *g, const char *flag, const char *s, double lo, bool lo_open, double hi,
                   bool hi_open, double *out);
/* Durations: "300" (seconds), "250ms", "30s", "5m", "1h", "2d", combinations ("1h30m"),
 * a leading '-' (negative), "never"/"forever" (= -1).  Returns 0 and seconds in *out,
 * or -1 for text that is none of these (nothing printed). */
int ctl_parse_duration(const char *s, double *out);
/* ctl_parse_duration with a usage error naming flag; also checks [lo, hi]. */
int ctl_parse_duration_flag(struct ctl *g, const char *flag, const char *s, double lo, double hi,
                            double *out);

/* ---- connecting and shared helpers (ctl_conn.c) ---- */
/* Connect to the daemon (g->socket_path or the default) and say hello.  Returns 0, or
 * an exit code after printing why (CTL_EXIT_CONNECT with "bitnetd is not running on
 * SOCKET; start it with ..." when nothing listens there). */
int ctl_connect(struct ctl *g);
/* The message printed when nothing listens on path. */
void ctl_not_running_message(char *buf, size_t size, const char *path);

/* Ctrl-C: while armed, SIGINT sets ctl_interrupted and cancels the call in progress
 * on conn (bnc_cancel is async-signal-safe). */
extern volatile sig_atomic_t ctl_interrupted;
void ctl_sigint_arm(struct bnc_conn *conn);
void ctl_sigint_disarm(void);

/* A model argument as sent to the daemon: a path that exists here (it contains '/'
 * or ends in ".gguf") becomes absolute (the daemon accepts only absolute paths);
 * anything else is passed as is. */
const char *ctl_model_arg(const char *arg, char *buf, size_t size);
/* The progress bar label for loading model (a path shows its file name only). */
void ctl_load_label(char *buf, size_t size, const char *model);
/* Find a resident model by name or (absolute) path; copies its name into name.
 * Returns 1 found, 0 not resident, or an exit code (> 1) after printing an error. */
int ctl_find_resident(struct ctl *g, const char *model, char *name, size_t size, int64_t *ctx);

/* Options of an implicit load (run, chat, bench). */
struct ctl_load_opts {
    int64_t ctx;
    int32_t threads;
    bool has_keep_alive;
    double keep_alive;
    bool any; /* one of them was given on the command line */
};
/* Make model resident when it is not (loading it with a progress bar on a terminal
 * when the peer may load) and copy the name to use in requests into name.  *ctx gets
 * the loaded context length (0 when unknown).  Returns 0 or an exit code after
 * printing an error. */
int ctl_ensure_loaded(struct ctl *g, const char *model, const struct ctl_load_opts *lo, char *name,
                      size_t size, int64_t *ctx);

/* Report the error of a request on a model from ctl_ensure_loaded: when the model
 * was not loaded because loading it was refused, that refusal is the error to show. */
int ctl_fail_model_request(struct ctl *g, const struct bnc_error *e);

/* Whole stream into a NUL-terminated malloc'ed buffer of at most max bytes.  Returns
 * NULL (errno EFBIG when larger, or the read error); caller frees. */
char *ctl_read_all(FILE *f, size_t max, size_t *len);

/* ---- output (ctl_output.c) ---- */

/* Human sizes in decimal units, like ollama: "512 B", "664 KB", "1.2 GB". */
const char *ctl_fmt_bytes(int64_t bytes, char *buf, size_t size);
/* Short durations: "850ms", "4.2s", "42s", "4m12s", "3h05m", "2d4h"; negative: "forever". */
const char *ctl_fmt_duration(double seconds, char *buf, size_t size);
/* Relative times: "3 minutes ago" / "4 minutes from now", "less than a second",
 * "about a minute", "2 hours", "3 days". */
const char *ctl_fmt_relative(double seconds, bool future, char *buf, size_t size);
/* Large counts: "2.4B", "135M", "12K", "999". */
const char *ctl_fmt_count(int64_t n, char *buf, size_t size);

/* JSON writer (RFC 8259): strings escaped so any bytes give valid JSON. */
#define CTL_JSON_DEPTH_MAX 32
struct ctl_json {
    FILE *f;
    bool pretty;         /* newlines and 2-space indentation */
    int depth;
    bool has_items[CTL_JSON_DEPTH_MAX];
    bool after_key;
};
void ctl_json_init(struct ctl_json *j, FILE *f, bool pretty);
void ctl_json_begin_object(struct ctl_json *j);
void ctl_json_end_object(struct ctl_json *j);
void ctl_json_begin_array(struct ctl_json *j);
void ctl_json_end_array(struct ctl_json *j);
void ctl_json_key(struct ctl_json *j, const char *key);
void ctl_json_string(struct ctl_json *j, const char *s); /* NULL: null */
void ctl_json_string_n(struct ctl_json *j, const char *s, size_t n);
void ctl_json_int(struct ctl_json *j, int64_t v);
void ctl_json_number(struct ctl_json *j, double v); /* non-finite: null */
void ctl_json_bool(struct ctl_json *j, bool v);
void ctl_json_null(struct ctl_json *j);
/* Ends the document with a newline. */
void ctl_json_finish(struct ctl_json *j);
/* Write s (n bytes) as a quoted JSON string: '"', '\\' and control characters are
 * escaped, U+2028/U+2029 too (JavaScript), and each byte that is not part of valid
 * UTF-8 (overlong forms, surrogates, > U+10FFFF, truncated sequences) becomes
 * \ufffd. */
void ctl_json_write_string(FILE *f, const char *s, size_t n);

/* Aligned text table like `ollama ps`: an upper-case header row, columns padded to
 * their widest cell (in characters, not bytes) and 4 spaces apart. */
struct ctl_table {
    size_t ncols, nrows; /* rows including the header */
    char **cells;        /* row-major, owned */
    size_t cap;
};
/* 0, or -1 out of memory. */
int ctl_table_init(struct ctl_table *t, size_t ncols, const char *const *headers);
/* Add a row of t->ncols cells (copied).  0, or -1 out of memory. */
int ctl_table_add(struct ctl_table *t, const char *const *cells);
void ctl_table_print(const struct ctl_table *t, FILE *f);
void ctl_table_free(struct ctl_table *t);
/* Display width of UTF-8 text (code points; control bytes count 0). */
size_t ctl_text_width(const char *s);

/* ---- load progress bar (ctl_progress.c) ---- */
struct ctl_progress {
    FILE *f;
    char label[96];
    double t0, last_draw; /* monotonic seconds */
    bool drawn;
};
void ctl_progress_start(struct ctl_progress *p, FILE *f, const char *label);
/* Redraw (at most every CTL_PROGRESS_REDRAW_S, and always at done == total). */
void ctl_progress_update(struct ctl_progress *p, int64_t done, int64_t total);
/* Erase the bar. */
void ctl_progress_finish(struct ctl_progress *p);
/* The bar as text for a terminal `width` columns wide, e.g.
 * "loading tiny  45% [=========>          ] 540 MB/1.2 GB 1.1 GB/s".  rate < 0: not
 * known yet. */
void ctl_progress_render(char *buf, size_t size, const char *label, int64_t done, int64_t total,
                         double rate_bytes_per_s, int width);
double ctl_now(void); /* CLOCK_MONOTONIC seconds */

/* ---- serve (ctl_serve.c) ---- */
/* Find the bitnetd to run for `bitnetctl serve`: beside self_exe (the bitnetctl
 * binary; a libtool ".libs" folder is looked through), then ../daemon/bitnetd (the
 * build tree), then $PATH.  Writes the path to buf; 0 found, -1 not. */
int ctl_find_bitnetd(const char *self_exe, char *buf, size_t size);

/* ---- Prometheus text parsing for `metrics --json` (ctl_status.c) ---- */
/* Parse one sample line `name{label="v",...} value [timestamp]` (comments and blank
 * lines are not samples).  Writes the JSON object for it to j; returns 0, or -1 when
 * the line is not a valid sample. */
int ctl_prom_sample_json(struct ctl_json *j, const char *line, size_t len, const char *type,
                         const char *help);

#endif /* BITNET_CTL_H */
