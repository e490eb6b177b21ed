/* bitnet_client.h — libbitnet-client: talk to bitnetd (the BitNet b1.58 inference
 * daemon) over its Unix socket.  The only header an application includes; link with
 * `pkg-config --libs bitnet-client`.  The wire protocol is in docs/PROTOCOL.md.
 *
 * Conventions
 *  - Every function that can fail returns 0 on success or -1 with *err (if err is
 *    non-NULL) set to a code and a one-line message.  Codes are the protocol's error
 *    codes (server errors, e.g. BNC_E_MODEL_NOT_FOUND) plus local ones (BNC_E_CONNECT,
 *    BNC_E_IO, BNC_E_TIMEOUT, BNC_E_PROTOCOL, BNC_E_NOMEM).
 *  - Memory: params are read during the call only; the library keeps no pointer to
 *    them.  Every *_result struct starts with a `struct bnc_mem mem` that owns all the
 *    memory its pointers point to: release it with bnc_result_free(&result) (also
 *    safe on a zeroed or failed result).  Strings are NUL-terminated UTF-8.
 *  - Threads: a connection may be shared by threads; its calls are serialized by a
 *    mutex (one call in flight per connection; open one connection per thread to run
 *    calls in parallel).  bnc_cancel() is the exception: it never blocks and may be
 *    called from any thread (or a signal handler) while another thread is in a call.
 *    bnc_close() must not race with any other function on the same connection.
 *  - Timeouts: each call waits at most the connection's timeout (bnc_set_timeout;
 *    default: no limit) for its whole answer, using poll().  On timeout the request is
 *    cancelled on the server and the call fails with BNC_E_TIMEOUT; the connection
 *    stays usable (a late answer is discarded).  Before its first sleep in poll() a
 *    call looks for the answer without sleeping for up to 50 µs (a wake-up costs more
 *    than bitnetd takes to answer a ping): at most 50 µs of CPU per call.
 *  - Symbols are prefixed bnc_ / BNC_.
 */
#ifndef BITNET_CLIENT_H
#define BITNET_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BNC_PROTOCOL_VERSION 1
#define BNC_ERROR_MAX 512 /* bytes of an error message, incl. NUL */
#define BNC_DEFAULT_SOCKET "/run/bitnetd/bitnetd.sock"
#define BNC_SOCKET_ENV "BITNET_SOCKET"
#define BNC_CONNECT_TIMEOUT_MS 5000 /* default for connect + hello */

/* Error codes (same numbers as docs/PROTOCOL.md "Error codes"). */
enum bnc_code {
    BNC_OK = 0,
    BNC_E_PARSE = -32700,
    BNC_E_INVALID_REQUEST = -32600,
    BNC_E_METHOD_NOT_FOUND = -32601,
    BNC_E_INVALID_PARAMS = -32602,
    BNC_E_INTERNAL = -32603,
    BNC_E_MODEL_NOT_FOUND = -32001,
    BNC_E_MODEL_NOT_LOADED = -32002,
    BNC_E_BUSY = -32003,
    BNC_E_CANCELLED = -32004,
    BNC_E_SHUTTING_DOWN = -32005,
    BNC_E_PERMISSION_DENIED = -32006,
    BNC_E_LOAD_FAILED = -32007,
    BNC_E_CONTEXT_OVERFLOW = -32008,
    BNC_E_MESSAGE_TOO_LARGE = -32009,
    BNC_E_UNSUPPORTED_VERSION = -32010,
    BNC_E_CONNECT = -31999,  /* local: cannot connect */
    BNC_E_IO = -31998,       /* local: connection lost or closed after a fatal error */
    BNC_E_TIMEOUT = -31997,  /* local: the call's timeout passed */
    BNC_E_PROTOCOL = -31996, /* local: undecodable message from the server */
    BNC_E_NOMEM = -31995,    /* local */
};
struct bnc_error {
    int code; /* enum bnc_code (or another code a newer server sent) */
    char message[BNC_ERROR_MAX];
};
/* Stable identifier of a code, e.g. "model_not_found"; "unknown" otherwise.
 * Static storage: never freed. */
const char *bnc_code_name(int code);

/* Owner of a result's memory (first member of every *_result struct). */
struct bnc_mem {
    void *zone; /* private */
};
/* Release everything a result points to; `result` is a pointer to any *_result
 * struct.  Sets it up to be freed again harmlessly.  NULL is fine. */
void bnc_result_free(void *result);

/* ---- Connections ---- */
struct bnc_conn;

struct bnc_options {
    const char *socket_path;  /* NULL: bnc_default_socket_path() */
    int connect_timeout_ms;   /* connect + hello; < 0: no limit [BNC_CONNECT_TIMEOUT_MS] */
    int timeout_ms;           /* per call; < 0: no limit [-1] */
    const char *client_name;  /* sent in hello for the server's log [NULL] */
    size_t max_message_bytes; /* largest message accepted from the server; 0: 16 MiB */
};
void bnc_options_init(struct bnc_options *opt);

/* The socket path used when none is given: $BITNET_SOCKET, else
 * $XDG_RUNTIME_DIR/bitnetd.sock, else /run/bitnetd/bitnetd.sock.  Writes it to buf
 * (NUL-terminated); returns its length, or -1 when it does not fit in size bytes. */
int bnc_default_socket_path(char *buf, size_t size);

/* Connect and say hello.  opt NULL: defaults.  On success *out is owned by the
 * caller: bnc_close() it. */
int bnc_connect(struct bnc_conn **out, const struct bnc_options *opt, struct bnc_error *err);
/* Same over an already connected stream socket (e.g. socket activation, tests).  The
 * connection owns fd from this call on, also when it fails (fd is closed then). */
int bnc_connect_fd(struct bnc_conn **out, int fd, const struct bnc_options *opt,
                   struct bnc_error *err);
/* Close the socket and free the connection.  NULL is fine. */
void bnc_close(struct bnc_conn *c);
/* Timeout of the calls that follow, in ms; < 0: no limit. */
void bnc_set_timeout(struct bnc_conn *c, int timeout_ms);

/* What the server said in hello.  Owned by the connection, valid until bnc_close. */
struct bnc_server_info {
    int64_t version;
    const char *server;
    const char *const *capabilities;
    size_t n_capabilities;
    int64_t max_message_bytes;
    int64_t pid;
};
const struct bnc_server_info *bnc_server_info(const struct bnc_conn *c);
bool bnc_server_has(const struct bnc_conn *c, const char *capability);

/* Cancel the call in progress on c (from any thread; async-signal-safe): the client
 * sends the server a cancel for it and the call returns as the server answers — a
 * generation with stop_reason BNC_STOP_CANCELLED, other calls with BNC_E_CANCELLED.
 * No effect when no call is in progress.  Never fails. */
void bnc_cancel(struct bnc_conn *c);

/* ---- Methods ---- */

int bnc_ping(struct bnc_conn *c, struct bnc_error *err);

/* load: progress is called with (done, total) bytes while the model loads (NULL: no
 * progress notifications); returning non-zero from it cancels the load. */
typedef int (*bnc_progress_fn)(void *user, int64_t done, int64_t total);
struct bnc_load_params {
    const char *model;   /* required: .gguf path or configured name */
    const char *name;    /* NULL: default name */
    int64_t ctx;         /* 0: the model's trained context */
    int32_t threads;     /* 0: the daemon's setting */
    bool has_keep_alive; /* false: the daemon's default keep-alive */
    double keep_alive;   /* seconds; 0: unload when idle; < 0: never */
};
void bnc_load_params_init(struct bnc_load_params *p);
struct bnc_load_result {
    struct bnc_mem mem;
    const char *name;
    const char *path;
    int64_t bytes;
    const char *loaded_by; /* "io_uring" | "pread" | "reattach" */
    double load_seconds;
    bool already_loaded;
};
int bnc_load(struct bnc_conn *c, const struct bnc_load_params *p, bnc_progress_fn progress,
             void *user, struct bnc_load_result *out, struct bnc_error *err);

struct bnc_unload_result {
    struct bnc_mem mem;
    const char *name;
    int64_t bytes;
};
/* out may be NULL. */
int bnc_unload(struct bnc_conn *c, const char *name, struct bnc_unload_result *out,
               struct bnc_error *err);

struct bnc_model_entry {
    const char *name;
    const char *path;
    int64_t bytes;
    bool loaded;
};
struct bnc_list_result {
    struct bnc_mem mem;
    const struct bnc_model_entry *models;
    size_t n_models;
};
int bnc_list(struct bnc_conn *c, struct bnc_list_result *out, struct bnc_error *err);

struct bnc_model_status {
    const char *name;
    const char *path;
    int64_t bytes;
    const char *loaded_by; /* "io_uring" | "pread" | "reattach" */
    double load_seconds;
    double idle_seconds;
    int64_t clients;
    int64_t ctx;
    double keep_alive; /* seconds; < 0: never */
};
struct bnc_ps_result {
    struct bnc_mem mem;
    const struct bnc_model_status *models;
    size_t n_models;
};
int bnc_ps(struct bnc_conn *c, struct bnc_ps_result *out, struct bnc_error *err);

struct bnc_tensor_format {
    const char *type;
    int64_t tensors;
    int64_t bytes;
};
struct bnc_kv {
    const char *key;
    const char *value;
};
struct bnc_show_result {
    struct bnc_mem mem;
    const char *name, *path, *architecture;
    int64_t file_bytes, n_params;
    int64_t n_layers, n_embd, n_heads, n_kv_heads, n_vocab;
    int64_t ctx_train, ctx;
    int64_t weights_bytes, kv_bytes; /* memory a load takes: weights + KV cache at ctx */
    const struct bnc_tensor_format *formats;
    size_t n_formats;
    const struct bnc_kv *metadata;
    size_t n_metadata;
};
/* ctx: context length for the KV estimate; 0: trained context. */
int bnc_show(struct bnc_conn *c, const char *model, int64_t ctx, struct bnc_show_result *out,
             struct bnc_error *err);

/* Sampler options; bnc_*_params_init sets the defaults given here. */
struct bnc_sampler {
    double temperature;       /* [0, 100]; 0 = greedy [0.8] */
    int32_t top_k;            /* [0, 1000000]; 0 = off [40] */
    double top_p;             /* (0, 1] [0.95] */
    double min_p;             /* [0, 1] [0.05] */
    double repeat_penalty;    /* (0, 10] [1.0] */
    int32_t repeat_last_n;    /* -1 = whole context [64] */
    double presence_penalty;  /* [-2, 2] [0] */
    double frequency_penalty; /* [-2, 2] [0] */
    int64_t seed;             /* -1 = random [-1] */
};

/* Streaming: called once per generated token, in order, on the calling thread.
 * text (len bytes, NUL-terminated, UTF-8, may be "") is valid during the call only.
 * Return non-zero to cancel the generation: the callback is not called again and the
 * call returns normally with stop_reason BNC_STOP_CANCELLED and the text so far. */
typedef int (*bnc_token_fn)(void *user, const char *text, size_t len, int32_t token);

struct bnc_generate_params {
    const char *model;     /* required */
    const char *prompt;    /* exactly one of prompt / tokens */
    const int32_t *tokens;
    size_t n_tokens;
    const char *system;    /* optional system turn (template mode) */
    bool raw;              /* prompt without the model's chat format */
    struct bnc_sampler options;
    const char *const *stop;
    size_t n_stop;
    int32_t max_tokens;    /* 0: until end of sequence or full context */
};
void bnc_generate_params_init(struct bnc_generate_params *p);

enum bnc_role { BNC_ROLE_SYSTEM, BNC_ROLE_USER, BNC_ROLE_ASSISTANT };
struct bnc_chat_message {
    enum bnc_role role;
    const char *content;
};
struct bnc_chat_params {
    const char *model;                          /* required */
    const struct bnc_chat_message *messages;    /* whole conversation, >= 1 */
    size_t n_messages;
    const char *session; /* NULL, or an id whose KV cache the server keeps between calls */
    struct bnc_sampler options;
    const char *const *stop;
    size_t n_stop;
    int32_t max_tokens;
};
void bnc_chat_params_init(struct bnc_chat_params *p);

enum bnc_stop_reason {
    BNC_STOP_EOS,
    BNC_STOP_STOP,
    BNC_STOP_LENGTH,
    BNC_STOP_CONTEXT,
    BNC_STOP_CANCELLED,
};
/* "eos", "stop", "length", "context", "cancelled"; static storage. */
const char *bnc_stop_reason_name(enum bnc_stop_reason r);
struct bnc_generate_stats {
    int64_t prompt_tokens, cached_tokens, generated_tokens;
    double queue_seconds, prefill_seconds, decode_seconds;
    double prefill_tokens_per_s, decode_tokens_per_s;
    enum bnc_stop_reason stop_reason;
};
struct bnc_generate_result {
    struct bnc_mem mem;
    const char *text; /* the whole generated text */
    struct bnc_generate_stats stats;
    const char *session; /* chat with a session; else NULL */
};
/* on_token NULL: not streamed (one answer at the end). */
int bnc_generate(struct bnc_conn *c, const struct bnc_generate_params *p, bnc_token_fn on_token,
                 void *user, struct bnc_generate_result *out, struct bnc_error *err);
int bnc_chat(struct bnc_conn *c, const struct bnc_chat_params *p, bnc_token_fn on_token,
             void *user, struct bnc_generate_result *out, struct bnc_error *err);

struct bnc_tokens_result {
    struct bnc_mem mem;
    const int32_t *tokens;
    size_t n_tokens;
};
int bnc_tokenize(struct bnc_conn *c, const char *model, const char *text, bool add_special,
                 bool parse_special, struct bnc_tokens_result *out, struct bnc_error *err);

struct bnc_text_result {
    struct bnc_mem mem;
    const char *text;
};
int bnc_detokenize(struct bnc_conn *c, const char *model, const int32_t *tokens, size_t n_tokens,
                   struct bnc_text_result *out, struct bnc_error *err);

struct bnc_status_result {
    struct bnc_mem mem;
    int64_t active_sequences, queued, kv_bytes, models, resident_bytes;
    int64_t parallel, max_queue, clients;
    double uptime_seconds;
};
int bnc_status(struct bnc_conn *c, struct bnc_status_result *out, struct bnc_error *err);

/* Prometheus text exposition of the daemon's metrics. */
int bnc_metrics(struct bnc_conn *c, struct bnc_text_result *out, struct bnc_error *err);

/* Ask the daemon to exit (admin).  grace_seconds < 0: the daemon's default. */
int bnc_shutdown(struct bnc_conn *c, double grace_seconds, struct bnc_error *err);

#ifdef __cplusplus
}
#endif
#endif /* BITNET_CLIENT_H */
