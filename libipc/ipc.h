/* libipc/ipc.h — bitnetd's wire protocol (msgpack-RPC codec, framing) and the
 * format of shared-memory model segments.  The only header of libipc/; depends on
 * msgpack-c and libc, never on the engine.
 */
#ifndef BN_IPC_H
#define BN_IPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ==== Protocol: messages, framing, error codes (libipc/proto*.c) ==== */
/* The wire protocol is specified for client authors in docs/PROTOCOL.md; this section
 * is its C form, used by both bitnetd and libbitnet-client.
 *
 *   request       [0, msgid, method, params]       params: a map (named fields)
 *   response      [1, msgid, error, result]        error nil + result map, or
 *                                                  error {code, message} + result nil
 *   notification  [2, method, params]              server -> client: "token", "progress"
 *
 * Every message is one msgpack array on a Unix stream socket, back to back, no length
 * prefix; the receiver finds message boundaries with a streaming parser under hard
 * limits (struct bn_rpc_framer).  Prefix: bn_rpc_. */
#include <msgpack.h>

#define BN_RPC_VERSION 1 /* protocol version spoken by this build (hello) */

/* Limits.  Each is enforced by the decoder and named in its error message. */
#define BN_RPC_MAX_FRAME_DEFAULT (16u << 20) /* bytes in one message (configurable) */
#define BN_RPC_MAX_ELEMENTS_DEFAULT (1u << 20) /* msgpack values in one message (configurable):
                                                * bounds the parser's memory (~24 B each) */
#define BN_RPC_MAX_DEPTH_DEFAULT 16     /* nested arrays/maps in one message (configurable) */
#define BN_RPC_MAX_DEPTH_LIMIT 32       /* msgpack-c's own parser stack: the config ceiling */
#define BN_RPC_NAME_MAX 256             /* bytes: model names, session ids, client names */
#define BN_RPC_PATH_MAX 4096            /* bytes: file paths */
#define BN_RPC_TEXT_MAX (1u << 20)      /* bytes: a prompt, one chat message, text to tokenize */
#define BN_RPC_OUTPUT_MAX 0xffffffffu   /* bytes: generated/returned text (the frame cap governs) */
#define BN_RPC_TOKENS_MAX 262144        /* token ids in one array */
#define BN_RPC_STOP_MAX 16              /* stop strings */
#define BN_RPC_STOP_LEN_MAX 256         /* bytes in one stop string */
#define BN_RPC_MESSAGES_MAX 4096        /* chat messages */
#define BN_RPC_GEN_TOKENS_MAX 1048576   /* max_tokens upper bound */
#define BN_RPC_CTX_MAX 1048576          /* context length in tokens */
#define BN_RPC_THREADS_MAX 1024
#define BN_RPC_LIST_MAX 65536           /* entries in a list/ps/show array or map */
#define BN_RPC_META_VALUE_MAX 65536     /* bytes in one show metadata value */
#define BN_RPC_ERROR_MESSAGE_MAX 512    /* bytes in an error message, incl. NUL; longer
                                         * messages received are truncated */

/* Error codes: one enum, one table (bn_rpc_code_name / bn_rpc_code_message).  The
 * JSON-RPC range -327xx/-326xx is used for protocol errors, -320xx for bitnetd's
 * application errors.  The codes from BN_RPC_E_CONNECT to BN_RPC_E_NOMEM (-31999..-31995)
 * never travel on the wire: the client library produces them locally. */
enum bn_rpc_code {
    BN_RPC_OK = 0,
    BN_RPC_E_PARSE = -32700,           /* framing: not msgpack-RPC bytes; connection closed */
    BN_RPC_E_INVALID_REQUEST = -32600, /* a message of the wrong shape */
    BN_RPC_E_METHOD_NOT_FOUND = -32601,
    BN_RPC_E_INVALID_PARAMS = -32602,
    BN_RPC_E_INTERNAL = -32603,
    BN_RPC_E_MODEL_NOT_FOUND = -32001,  /* no such file or configured model */
    BN_RPC_E_MODEL_NOT_LOADED = -32002, /* the model is not resident */
    BN_RPC_E_BUSY = -32003,             /* sequence queue full */
    BN_RPC_E_CANCELLED = -32004,        /* cancelled before it produced a result */
    BN_RPC_E_SHUTTING_DOWN = -32005,
    BN_RPC_E_PERMISSION_DENIED = -32006, /* admin verb from a non-admin peer */
    BN_RPC_E_LOAD_FAILED = -32007,       /* not a usable model file, or out of memory */
    BN_RPC_E_CONTEXT_OVERFLOW = -32008,  /* prompt does not fit the context */
    BN_RPC_E_MESSAGE_TOO_LARGE = -32009, /* framing: over a size limit; connection closed */
    BN_RPC_E_UNSUPPORTED_VERSION = -32010,
    /* local to the client library */
    BN_RPC_E_CONNECT = -31999,  /* cannot connect to the socket */
    BN_RPC_E_IO = -31998,       /* read/write failed or the server closed the connection */
    BN_RPC_E_TIMEOUT = -31997,  /* no complete answer within the call's timeout */
    BN_RPC_E_PROTOCOL = -31996, /* the server sent something this client cannot decode */
    BN_RPC_E_NOMEM = -31995,
};
/* "invalid_params" etc. (stable identifiers for scripts); "unknown" for other codes. */
const char *bn_rpc_code_name(int code);
/* Default one-line message, e.g. "invalid params". */
const char *bn_rpc_code_message(int code);
/* True for codes after which the connection is closed (framing errors). */
bool bn_rpc_code_is_fatal(int code);

struct bn_rpc_error {
    int code; /* enum bn_rpc_code, or any int32 received from a peer */
    char message[BN_RPC_ERROR_MESSAGE_MAX];
};
/* Fill err (if non-NULL) with code and a printf message; returns -1. */
int bn_rpc_errf(struct bn_rpc_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- Methods and their typed params/results ----
 * Structs are plain C.  Strings are NUL-terminated UTF-8 (no NUL bytes inside);
 * arrays are pointer + count.  After decoding, every pointer points into the
 * msgpack_zone given to the decoder (nothing to free one by one).  Encoding reads
 * the struct and never keeps it.
 *
 *   method       params struct                 result struct
 *   hello        bn_rpc_hello_params           bn_rpc_hello_result
 *   ping         bn_rpc_empty                  bn_rpc_empty
 *   load         bn_rpc_load_params            bn_rpc_load_result
 *   unload       bn_rpc_unload_params          bn_rpc_unload_result
 *   list         bn_rpc_empty                  bn_rpc_list_result
 *   ps           bn_rpc_empty                  bn_rpc_ps_result
 *   show         bn_rpc_show_params            bn_rpc_show_result
 *   generate     bn_rpc_generate_params        bn_rpc_generate_result
 *   chat         bn_rpc_chat_params            bn_rpc_generate_result
 *   tokenize     bn_rpc_tokenize_params        bn_rpc_tokenize_result
 *   detokenize   bn_rpc_detokenize_params      bn_rpc_detokenize_result
 *   cancel       bn_rpc_cancel_params          bn_rpc_cancel_result
 *   status       bn_rpc_empty                  bn_rpc_status_result
 *   metrics      bn_rpc_empty                  bn_rpc_metrics_result
 *   shutdown     bn_rpc_shutdown_params        bn_rpc_empty
 *   notification "token"    bn_rpc_token_note
 *   notification "progress" bn_rpc_progress_note */
enum bn_rpc_method {
    BN_RPC_HELLO,
    BN_RPC_PING,
    BN_RPC_LOAD,
    BN_RPC_UNLOAD,
    BN_RPC_LIST,
    BN_RPC_PS,
    BN_RPC_SHOW,
    BN_RPC_GENERATE,
    BN_RPC_CHAT,
    BN_RPC_TOKENIZE,
    BN_RPC_DETOKENIZE,
    BN_RPC_CANCEL,
    BN_RPC_STATUS,
    BN_RPC_METRICS,
    BN_RPC_SHUTDOWN,
    BN_RPC_METHOD_COUNT
};
enum bn_rpc_note { BN_RPC_NOTE_TOKEN, BN_RPC_NOTE_PROGRESS, BN_RPC_NOTE_COUNT };

const char *bn_rpc_method_name(enum bn_rpc_method m); /* "generate"; NULL if out of range */
/* BN_RPC_METHOD_COUNT when `name` (len bytes, not NUL-terminated) is unknown. */
enum bn_rpc_method bn_rpc_method_lookup(const char *name, size_t len);
const char *bn_rpc_note_name(enum bn_rpc_note n);
enum bn_rpc_note bn_rpc_note_lookup(const char *name, size_t len);
/* Admin verbs (load, unload, shutdown): the daemon checks the peer's credentials. */
bool bn_rpc_method_is_admin(enum bn_rpc_method m);

struct bn_rpc_empty {
    char unused; /* methods without params/result fields: an empty map on the wire */
};

struct bn_rpc_hello_params {
    int64_t version;    /* required: highest protocol version the client speaks, >= 1 */
    const char *client; /* optional: client name/version for the server's log */
};
struct bn_rpc_hello_result {
    int64_t version;            /* version the server will speak: min(client's, server's) */
    const char *server;         /* "bitnetd 0.1.0" */
    const char **capabilities;  /* e.g. "stream", "chat-session", "cancel", "progress" */
    size_t n_capabilities;
    int64_t max_message_bytes;  /* the server's frame cap */
    int64_t pid;                /* the daemon's process id */
};

struct bn_rpc_load_params {
    const char *model;   /* required: a .gguf path or a configured model name */
    const char *name;    /* optional: register under this name (default: configured name
                          * or the file's base name without .gguf) */
    int64_t ctx;         /* context length in tokens; 0 (default): the model's trained one */
    int32_t threads;     /* engine threads; 0 (default): the daemon's setting */
    bool has_keep_alive; /* keep_alive given (else the daemon's default, 300 s) */
    double keep_alive;   /* seconds idle before unload; 0: at once; < 0: never */
    bool progress;       /* send "progress" notifications while loading (default false) */
};
enum bn_rpc_loaded_by {
    BN_RPC_LOADED_BY_IO_URING, /* "io_uring" */
    BN_RPC_LOADED_BY_PREAD,    /* "pread" */
    BN_RPC_LOADED_BY_REATTACH, /* "reattach": an existing shared-memory segment */
    BN_RPC_LOADED_BY_COUNT
};
struct bn_rpc_load_result {
    const char *name;
    const char *path;
    int64_t bytes;                   /* resident bytes (weights) */
    enum bn_rpc_loaded_by loaded_by;
    double load_seconds;
    bool already_loaded;             /* it was resident: nothing was read */
};

struct bn_rpc_unload_params {
    const char *name; /* required */
};
struct bn_rpc_unload_result {
    const char *name;
    int64_t bytes; /* resident bytes released (0 while other clients still use it) */
};

struct bn_rpc_model_entry { /* one configured or discovered model (list) */
    const char *name;
    const char *path;
    int64_t bytes; /* file size */
    bool loaded;
};
struct bn_rpc_list_result {
    const struct bn_rpc_model_entry *models;
    size_t n_models;
};

struct bn_rpc_model_status { /* one resident model (ps) */
    const char *name;
    const char *path;
    int64_t bytes;
    enum bn_rpc_loaded_by loaded_by;
    double load_seconds;
    double idle_seconds; /* since the last sequence finished; 0 while in use */
    int64_t clients;     /* connections with a sequence on this model */
    int64_t ctx;         /* context length it was loaded with */
    double keep_alive;   /* seconds; < 0: never unloaded */
};
struct bn_rpc_ps_result {
    const struct bn_rpc_model_status *models;
    size_t n_models;
};

struct bn_rpc_show_params {
    const char *model; /* required: loaded name, configured name, or path */
    int64_t ctx;       /* context length for the memory estimate; 0: trained context */
};
struct bn_rpc_tensor_format {
    const char *type; /* "I2_S", "F32", ... */
    int64_t tensors;
    int64_t bytes;
};
struct bn_rpc_kv {
    const char *key;
    const char *value; /* scalar metadata rendered as text; arrays as "[N items]" */
};
struct bn_rpc_show_result {
    const char *name;
    const char *path;
    const char *architecture; /* general.architecture, e.g. "bitnet-b1.58" */
    int64_t file_bytes;
    int64_t n_params;
    int64_t n_layers, n_embd, n_heads, n_kv_heads, n_vocab;
    int64_t ctx_train; /* trained context length */
    int64_t ctx;       /* context length used for kv_bytes */
    int64_t weights_bytes; /* resident weight bytes after packing */
    int64_t kv_bytes;      /* KV cache bytes for one sequence at ctx */
    const struct bn_rpc_tensor_format *formats;
    size_t n_formats;
    const struct bn_rpc_kv *metadata; /* a map on the wire */
    size_t n_metadata;
};

/* Sampler options ("options" map of generate/chat).  Defaults in brackets. */
struct bn_rpc_sampler {
    double temperature;       /* [0, 100]; 0 = greedy [0.8] */
    int32_t top_k;            /* [0, 1000000]; 0 = off [40] */
    double top_p;             /* (0, 1]; 1 = off [0.95] */
    double min_p;             /* [0, 1]; 0 = off [0.05] */
    double repeat_penalty;    /* (0, 10]; 1 = off [1.0] */
    int32_t repeat_last_n;    /* [-1, BN_RPC_TOKENS_MAX]; -1 = whole context, 0 = off [64] */
    double presence_penalty;  /* [-2, 2] [0] */
    double frequency_penalty; /* [-2, 2] [0] */
    int64_t seed;             /* [-1, 2^63-1]; -1 = random [-1] */
};

struct bn_rpc_generate_params {
    const char *model;        /* required */
    const char *prompt;       /* exactly one of prompt / tokens */
    const int32_t *tokens;    /* prompt as token ids, used as is (no template, no BOS) */
    size_t n_tokens;
    const char *system;       /* optional system turn (template mode only) */
    bool raw;                 /* true: prompt as is (BOS added); false (default): the
                               * model's chat format as one user turn */
    struct bn_rpc_sampler options;
    const char *const *stop;  /* stop strings: generation ends before the first match */
    size_t n_stop;
    int32_t max_tokens;       /* [0, BN_RPC_GEN_TOKENS_MAX]; 0 (default): until the end
                               * of sequence or a full context */
    bool stream;              /* send "token" notifications (default false) */
};

enum bn_rpc_role { BN_RPC_ROLE_SYSTEM, BN_RPC_ROLE_USER, BN_RPC_ROLE_ASSISTANT, BN_RPC_ROLE_COUNT };
struct bn_rpc_chat_message {
    enum bn_rpc_role role; /* "system" | "user" | "assistant" */
    const char *content;
};
struct bn_rpc_chat_params {
    const char *model;                         /* required */
    const struct bn_rpc_chat_message *messages; /* required, 1..BN_RPC_MESSAGES_MAX: the
                                                 * whole conversation, oldest first */
    size_t n_messages;
    const char *session; /* optional: keep this conversation's KV cache between calls */
    struct bn_rpc_sampler options;
    const char *const *stop;
    size_t n_stop;
    int32_t max_tokens;
    bool stream;
};

enum bn_rpc_stop_reason {
    BN_RPC_STOP_EOS,       /* "eos": the model ended its turn */
    BN_RPC_STOP_STOP,      /* "stop": a stop string matched */
    BN_RPC_STOP_LENGTH,    /* "length": max_tokens reached */
    BN_RPC_STOP_CONTEXT,   /* "context": the context is full */
    BN_RPC_STOP_CANCELLED, /* "cancelled": cancel request or client gone */
    BN_RPC_STOP_COUNT
};
struct bn_rpc_gen_stats {
    int64_t prompt_tokens;    /* tokens in the formatted prompt */
    int64_t cached_tokens;    /* of those, reused from the session's KV cache */
    int64_t generated_tokens;
    double queue_seconds;     /* waiting for a free sequence slot */
    double prefill_seconds;
    double decode_seconds;
    double prefill_tokens_per_s; /* (prompt_tokens - cached_tokens) / prefill_seconds */
    double decode_tokens_per_s;  /* generated_tokens / decode_seconds */
    enum bn_rpc_stop_reason stop_reason;
};
struct bn_rpc_generate_result { /* generate and chat */
    const char *text;    /* the whole generated text (also when streamed) */
    struct bn_rpc_gen_stats stats;
    const char *session; /* chat with a session: its id; else NULL (absent) */
};

struct bn_rpc_tokenize_params {
    const char *model; /* required */
    const char *text;  /* required */
    bool add_special;   /* add BOS (default true) */
    bool parse_special; /* "<|eot_id|>" etc. in text become special tokens (default false) */
};
struct bn_rpc_tokenize_result {
    const int32_t *tokens;
    size_t n_tokens;
};
struct bn_rpc_detokenize_params {
    const char *model;     /* required */
    const int32_t *tokens; /* required, 0..BN_RPC_TOKENS_MAX ids */
    size_t n_tokens;
};
struct bn_rpc_detokenize_result {
    const char *text; /* invalid UTF-8 from byte tokens is replaced by U+FFFD */
};

struct bn_rpc_cancel_params {
    uint32_t msgid; /* required: a request in flight on this connection */
};
struct bn_rpc_cancel_result {
    bool cancelled; /* false: no such request in flight (already answered) */
};

struct bn_rpc_status_result {
    int64_t active_sequences;
    int64_t queued;
    int64_t kv_bytes;       /* KV cache bytes in use */
    int64_t models;         /* resident models */
    int64_t resident_bytes; /* weight bytes of resident models */
    int64_t parallel;       /* sequence slots (--parallel) */
    int64_t max_queue;
    int64_t clients;        /* open connections */
    double uptime_seconds;
};
struct bn_rpc_metrics_result {
    const char *text; /* Prometheus text exposition format 0.0.4 */
};
struct bn_rpc_shutdown_params {
    bool has_grace_seconds;
    double grace_seconds; /* [0, 3600]: time to finish in-flight work (default: daemon's) */
};

struct bn_rpc_token_note { /* ["token", {...}]: one sampled token of a streamed request */
    uint32_t msgid;   /* the generate/chat request */
    const char *text; /* UTF-8 text completed by this token; "" while a multi-byte
                       * character is still incomplete */
    int32_t token;    /* the token id */
};
struct bn_rpc_progress_note { /* ["progress", {...}]: load progress */
    uint32_t msgid;
    int64_t done;  /* bytes read so far */
    int64_t total; /* bytes to read */
};

/* Names of enum values as on the wire ("io_uring", "user", "eos"); NULL if out of range. */
const char *bn_rpc_loaded_by_name(enum bn_rpc_loaded_by v);
const char *bn_rpc_role_name(enum bn_rpc_role v);
const char *bn_rpc_stop_reason_name(enum bn_rpc_stop_reason v);

/* ---- Schemas: one table per struct drives encode, decode and defaults ----
 * (libipc/proto_schema.c, tables in libipc/proto_methods.c) */
enum bn_rpc_ftype {
    BN_RPC_T_BOOL,   /* bool */
    BN_RPC_T_I32,    /* int32_t; msgpack integer only */
    BN_RPC_T_I64,    /* int64_t */
    BN_RPC_T_U32,    /* uint32_t */
    BN_RPC_T_NUM,    /* double; msgpack integer or float, finite */
    BN_RPC_T_STR,    /* const char *, UTF-8 */
    BN_RPC_T_ENUM,   /* enum stored as int; a string from `names` on the wire */
    BN_RPC_T_STRS,   /* const char **, count at aux_off (size_t) */
    BN_RPC_T_I32S,   /* const int32_t *, count at aux_off */
    BN_RPC_T_OBJ,    /* nested struct (sub) stored inline at off */
    BN_RPC_T_OBJS,   /* array of sub structs: pointer at off, count at aux_off */
    BN_RPC_T_STRMAP, /* map string -> string: const struct bn_rpc_kv *, count at aux_off */
};
enum {
    BN_RPC_F_REQUIRED = 1u << 0,
    BN_RPC_F_HAS = 1u << 1,     /* presence flag (bool) at aux_off, for scalars */
    BN_RPC_F_LO_OPEN = 1u << 2, /* range (lo, ...] instead of [lo, ...] */
};
struct bn_rpc_schema;
struct bn_rpc_field {
    const char *name;
    enum bn_rpc_ftype type;
    unsigned flags;
    size_t off;     /* offsetof the value (arrays: the pointer) */
    size_t aux_off; /* offsetof the count (arrays) or presence flag (BN_RPC_F_HAS) */
    double lo, hi;  /* numbers/ints: value range; STR: length in bytes; arrays: count */
    double elo, ehi; /* array elements: I32S value range, STRS/STRMAP length range */
    double def;     /* default of BOOL/ints/NUM/ENUM (the enum index) */
    const char *const *names; /* ENUM value names, n_names of them */
    size_t n_names;
    const struct bn_rpc_schema *sub; /* OBJ/OBJS */
};
struct bn_rpc_schema {
    const char *name; /* "generate params" */
    size_t size;      /* sizeof the struct */
    const struct bn_rpc_field *fields;
    size_t n_fields;
    /* Rules across fields (e.g. exactly one of prompt/tokens): 0, or -1 with msg. */
    int (*check)(const void *value, char *msg, size_t msg_size);
};
const struct bn_rpc_schema *bn_rpc_params_schema(enum bn_rpc_method m);
const struct bn_rpc_schema *bn_rpc_result_schema(enum bn_rpc_method m);
const struct bn_rpc_schema *bn_rpc_note_schema(enum bn_rpc_note n);

/* Set every field of *value (s->size bytes) to its default (pointers NULL). */
void bn_rpc_init(const struct bn_rpc_schema *s, void *value);
/* Append *value as a msgpack map.  Optional fields at their default (or unset HAS,
 * NULL strings) are left out.  Returns 0, or -1 if the packer's writer failed. */
int bn_rpc_encode(msgpack_packer *pk, const struct bn_rpc_schema *s, const void *value);
/* Decode map `o` into *value.  Strings and arrays are copied into zone `z` (the
 * caller keeps z alive as long as *value is used).  `where` starts every error
 * message, e.g. "generate: params".  Flags: */
enum {
    BN_RPC_DEC_STRICT = 1u << 0, /* unknown or duplicate fields are errors (requests);
                                  * without it they are skipped (results, notifications) */
};
int bn_rpc_decode(const msgpack_object *o, const struct bn_rpc_schema *s, void *value,
                  msgpack_zone *z, unsigned flags, const char *where, struct bn_rpc_error *err);

/* ---- Envelope ---- */
enum bn_rpc_kind { BN_RPC_REQUEST = 0, BN_RPC_RESPONSE = 1, BN_RPC_NOTIFY = 2 };
struct bn_rpc_msg {
    enum bn_rpc_kind kind;
    bool has_msgid;        /* false only for responses with a nil msgid */
    uint32_t msgid;
    enum bn_rpc_method method; /* requests: BN_RPC_METHOD_COUNT when unknown */
    enum bn_rpc_note note;     /* notifications: BN_RPC_NOTE_COUNT when unknown */
    const char *name;          /* method/notification name as received (not NUL-terminated) */
    uint32_t name_len;
    const msgpack_object *params; /* request/notification: the params map */
    const msgpack_object *error;  /* response: the error map, or NULL when nil */
    const msgpack_object *result; /* response: the result (nil when error is set) */
};
/* Split a message into its parts; pointers point into o.  An unknown method is not an
 * error here (method == BN_RPC_METHOD_COUNT).  Returns 0, or -1 with err
 * (BN_RPC_E_INVALID_REQUEST); then m->has_msgid tells whether the msgid could be read
 * so the error can be answered to it. */
int bn_rpc_parse(const msgpack_object *o, struct bn_rpc_msg *m, struct bn_rpc_error *err);
/* Decode a request's params (strict) for m->method: BN_RPC_E_METHOD_NOT_FOUND for an
 * unknown method, BN_RPC_E_INVALID_PARAMS naming the field otherwise. */
int bn_rpc_decode_params(const struct bn_rpc_msg *m, void *params, msgpack_zone *z,
                         struct bn_rpc_error *err);
/* Decode a response (lenient) for method `m`: 0 with *result filled; -1 with err set to
 * the server's {code, message} when the response carries an error, or to
 * BN_RPC_E_PROTOCOL when it cannot be decoded. */
int bn_rpc_decode_response(const struct bn_rpc_msg *msg, enum bn_rpc_method m, void *result,
                           msgpack_zone *z, struct bn_rpc_error *err);
/* Decode a notification's params (lenient); BN_RPC_E_PROTOCOL on error. */
int bn_rpc_decode_note(const struct bn_rpc_msg *m, void *params, msgpack_zone *z,
                       struct bn_rpc_error *err);

/* Encoders append one whole message to the packer; 0, or -1 if its writer failed.
 * params/result NULL encodes an empty map. */
int bn_rpc_encode_request(msgpack_packer *pk, uint32_t msgid, enum bn_rpc_method m,
                          const void *params);
int bn_rpc_encode_result(msgpack_packer *pk, uint32_t msgid, enum bn_rpc_method m,
                         const void *result);
/* msgid NULL: nil (an error not tied to a request, e.g. framing).  message NULL: the
 * code's default message.  Truncated to BN_RPC_ERROR_MESSAGE_MAX - 1 bytes. */
int bn_rpc_encode_error(msgpack_packer *pk, const uint32_t *msgid, int code, const char *message);
int bn_rpc_encode_note(msgpack_packer *pk, enum bn_rpc_note n, const void *params);

/* ---- Framing: msgpack-c's streaming unpacker behind a bounds-checking scanner ----
 * Bytes read from the socket go into the framer's buffer; bn_rpc_framer_next() hands
 * out whole messages.  Before msgpack-c parses (and allocates for) a message, a scanner
 * walks its headers and rejects, as soon as the bytes show it: a first byte that does
 * not start an array, the never-used byte 0xc1, a message (or declared string or
 * container size) over max_frame_bytes, more than max_elements values, nesting deeper
 * than max_depth.  The scanner keeps its place between reads, so a message arriving
 * one byte at a time costs O(size).  No heap allocation per message in steady state.
 * One framer per connection; not thread-safe. */
struct bn_rpc_framer_limits {
    size_t max_frame_bytes; /* default BN_RPC_MAX_FRAME_DEFAULT */
    uint32_t max_elements;  /* default BN_RPC_MAX_ELEMENTS_DEFAULT */
    uint32_t max_depth;     /* default BN_RPC_MAX_DEPTH_DEFAULT, at most BN_RPC_MAX_DEPTH_LIMIT */
};
void bn_rpc_framer_limits_default(struct bn_rpc_framer_limits *lim);

struct bn_rpc_framer { /* fields are private */
    msgpack_unpacker up;
    struct bn_rpc_framer_limits lim;
    size_t scanned;   /* bytes of the pending message scanned so far (from up.off) */
    uint64_t skip;    /* payload bytes still to step over */
    uint64_t values;  /* values declared so far in the pending message */
    uint32_t depth;   /* open containers */
    uint32_t left[BN_RPC_MAX_DEPTH_LIMIT]; /* values still to come in each open container */
    bool holding;     /* a message was handed out and is not released yet */
    struct bn_rpc_error failed; /* sticky framing error (code 0: none) */
};
/* lim NULL: defaults.  Returns 0, or -1 (out of memory, or max_depth over the limit). */
int bn_rpc_framer_init(struct bn_rpc_framer *f, const struct bn_rpc_framer_limits *lim);
void bn_rpc_framer_destroy(struct bn_rpc_framer *f);
/* A buffer of at least `want` bytes to read into (*cap set to its size); NULL when out
 * of memory.  Then report how many bytes were written with bn_rpc_framer_consumed(). */
char *bn_rpc_framer_buffer(struct bn_rpc_framer *f, size_t want, size_t *cap);
void bn_rpc_framer_consumed(struct bn_rpc_framer *f, size_t n);
/* Copy n bytes in (buffer + memcpy + consumed).  0, or -1 when out of memory. */
int bn_rpc_framer_feed(struct bn_rpc_framer *f, const void *data, size_t n);
/* 1: *out is the next message; it and the zone's contents (bn_rpc_framer_zone) stay
 * valid until the next call of any bn_rpc_framer_* function on f.  0: more bytes
 * needed.  -1: framing error in err (BN_RPC_E_PARSE or BN_RPC_E_MESSAGE_TOO_LARGE);
 * the error is sticky: answer it (msgid nil) and close the connection. */
int bn_rpc_framer_next(struct bn_rpc_framer *f, msgpack_object *out, struct bn_rpc_error *err);
/* The zone holding the last message: decode its params into it (no malloc). */
msgpack_zone *bn_rpc_framer_zone(struct bn_rpc_framer *f);
/* Bytes received but not yet handed out as messages. */
size_t bn_rpc_framer_pending(const struct bn_rpc_framer *f);

/* Text checks used by the decoder: valid UTF-8 (no overlongs, surrogates or code
 * points past U+10FFFF) without NUL bytes. */
bool bn_rpc_utf8_valid(const char *s, size_t n);


/* ==== Shared-memory model segments (libipc/segment*.c) ====
 *
 * A segment holds one model laid out for one kernel path, in a shared-memory object
 * the daemon fills once and a restarted daemon maps again in milliseconds.  The code
 * here works on (fd, base, size) whatever gave the fd: shm_open (the default), a file
 * in a folder (a private tmpfs in tests), or later a memfd kept by systemd's fdstore.
 *
 *   offset 0             struct bn_seg_header (BN_SEG_HEADER_BYTES reserved)
 *   meta_offset          copy of the model file's bytes [0, meta_bytes): GGUF header,
 *                        metadata and tensor infos (the engine opens it HEADER_ONLY)
 *   dir_offset           n_tensors x struct bn_seg_tensor (the tensor directory)
 *   data_offset          tensor data, BN_SEG_DATA_ALIGN-aligned; every tensor starts
 *                        on a BN_SEG_TENSOR_ALIGN boundary, in directory order
 *   total_bytes          end of the object (= its st_size)
 *
 * Integers are in host byte order: a segment never leaves the machine that wrote it.
 * A writer fills header, metadata copy and directory with state LOADING, writes the
 * tensor data, then calls bn_seg_publish(), which stores the header hash and then
 * the state READY with release ordering: a reader that sees READY sees everything.
 * A writer holds an exclusive flock() on the object while it is LOADING and a shared
 * one while it uses it, so another process can tell a live load from a dead one.
 *
 * Errors: functions that can fail take (char *err, size_t err_len) (err may be NULL)
 * and write one sentence naming the object, the field and the limit.
 */
#define BN_SEG_MAGIC "BNSEGMT1"            /* 8 bytes, no NUL */
#define BN_SEG_VERSION 1u
#define BN_SEG_HEADER_BYTES 8192u          /* room reserved for struct bn_seg_header */
#define BN_SEG_TENSOR_ALIGN 64u            /* every tensor's first byte (a cache line) */
#define BN_SEG_DATA_ALIGN (2u << 20)       /* data area start and total size: 2 MiB huge page */
#define BN_SEG_PATH_MAX 4096u              /* source path incl. NUL (PATH_MAX) */
#define BN_SEG_TENSOR_NAME_MAX 64u         /* tensor name incl. NUL (GGUF's limit) */
#define BN_SEG_INSTANCE_MAX 32u            /* daemon instance name, excl. NUL */
#define BN_SEG_OBJ_NAME_MAX 64u            /* object name "bitnetd-<instance>-<16 hex>" incl. NUL */
#define BN_SEG_OBJ_PREFIX "bitnetd-"
#define BN_SEG_METHOD_MAX 16u              /* "io_uring", "pread", "mmap" incl. NUL */
#define BN_SEG_MAX_TENSORS (1u << 20)      /* sanity bound on n_tensors when validating */

enum bn_seg_state {
    BN_SEG_STATE_LOADING = 1, /* being written (or the writer died: incomplete) */
    BN_SEG_STATE_READY = 2,   /* complete; only read from now on */
};

/* One tensor of the directory: where its bytes are and in which layout. */
struct bn_seg_tensor {
    char name[BN_SEG_TENSOR_NAME_MAX]; /* NUL-terminated */
    uint32_t src_type;    /* type id in the file (enum bn_type of simd.h) */
    uint32_t dst_type;    /* layout in the segment (== src_type: copied as is) */
    int64_t rows, cols;   /* rows = ne[1]*ne[2]*ne[3], cols = ne[0] */
    uint64_t offset;      /* from the segment start; BN_SEG_TENSOR_ALIGN-aligned */
    uint64_t bytes;       /* bytes in dst_type */
    uint64_t src_offset;  /* absolute offset in the model file */
    uint64_t src_bytes;   /* bytes in the file */
    uint64_t reserved;    /* zero */
};

struct bn_seg_header {
    char magic[8];          /* BN_SEG_MAGIC */
    uint32_t version;       /* BN_SEG_VERSION */
    uint32_t header_bytes;  /* sizeof(struct bn_seg_header) of the writer */
    uint32_t state;         /* enum bn_seg_state; READY is written last */
    /* Layout key: opaque values chosen by the writer (the daemon stores the engine's
     * pack-plan layout id, kernel path and ternary layout preference); a reader with
     * another key must not use the data. */
    uint32_t layout_id;
    uint32_t layout_path;
    uint32_t layout_prefer;
    uint64_t total_bytes;   /* must equal the object's size */
    uint64_t meta_offset;   /* copy of the file's first meta_bytes bytes */
    uint64_t meta_bytes;
    uint64_t meta_hash;     /* bn_seg_hash64(file bytes [0, meta_bytes), 0) */
    uint64_t dir_offset;
    uint64_t n_tensors;
    uint64_t data_offset;
    uint64_t data_bytes;    /* total_bytes - data_offset */
    /* Identity of the source file when the segment was written (stat). */
    uint64_t src_size;      /* bytes */
    uint64_t src_dev;
    uint64_t src_ino;
    int64_t src_mtime_ns;   /* st_mtim in ns since the epoch */
    int64_t created_ns;     /* CLOCK_REALTIME ns when the writer started */
    int64_t ready_ns;       /* CLOCK_REALTIME ns when it was published */
    uint64_t load_ns;       /* how long the writer took to fill it */
    int32_t writer_pid;
    uint32_t reserved0;
    char load_method[BN_SEG_METHOD_MAX]; /* how the data was read: "io_uring", "pread", "mmap" */
    uint64_t header_hash;   /* bn_seg_header_hash(): this struct + directory */
    uint64_t reserved[8];   /* zero */
    char src_path[BN_SEG_PATH_MAX]; /* canonical path of the model file, NUL-terminated */
};

/* 64-bit hash of n bytes (four multiply-rotate lanes over 8-byte words; about 10 GB/s).
 * Not cryptographic: it detects accidental change, torn writes and stale copies. */
uint64_t bn_seg_hash64(const void *data, size_t n, uint64_t seed);

/* Where the segments of one daemon instance live. */
struct bn_seg_store {
    char dir[BN_SEG_PATH_MAX];                /* "": POSIX shared memory; else a folder */
    char instance[BN_SEG_INSTANCE_MAX + 1];
    int dirfd;                                /* open folder (scans; folder backend: *at calls) */
};
/* dir NULL or "": POSIX shared memory (shm_open, listed in /dev/shm).  Otherwise
 * segments are files in that folder (mode 0600), mapped the same way.  instance:
 * 1..BN_SEG_INSTANCE_MAX of [A-Za-z0-9_.].  Returns 0 or -1 (err filled).  Close with
 * bn_seg_store_close. */
int bn_seg_store_open(struct bn_seg_store *st, const char *dir, const char *instance,
                      char *err, size_t err_len);
void bn_seg_store_close(struct bn_seg_store *st);
/* The object name for a 64-bit model key: "bitnetd-<instance>-<16 lowercase hex>"
 * (out: BN_SEG_OBJ_NAME_MAX bytes).  Names are never taken from client text. */
void bn_seg_store_name(const struct bn_seg_store *st, uint64_t key, char *out);
/* True when name has exactly the form bn_seg_store_name gives for this instance. */
bool bn_seg_store_owns_name(const struct bn_seg_store *st, const char *name);
/* Calls fn(ctx, name) for each object of this instance, in directory order.  Returns
 * the number found, or -1 (err filled) when the folder cannot be read. */
int bn_seg_store_scan(const struct bn_seg_store *st, void (*fn)(void *ctx, const char *name),
                      void *ctx, char *err, size_t err_len);
/* Human-readable place of an object ("/dev/shm/NAME" or "DIR/NAME") for messages. */
void bn_seg_store_describe(const struct bn_seg_store *st, const char *name, char *out,
                           size_t out_len);

/* A mapped segment.  Owns fd and the mapping; bn_seg_close releases both. */
struct bn_seg {
    int fd;
    uint8_t *base;
    uint64_t size;
    bool writable;
    char name[BN_SEG_OBJ_NAME_MAX]; /* object name in its store; "" for a bare fd */
};

/* Flags of bn_seg_create and bn_seg_reserve. */
enum {
    BN_SEG_HUGEPAGE = 1u << 0,   /* madvise(MADV_HUGEPAGE) before the pages are allocated
                                  * (see also bn_seg_collapse) */
    BN_SEG_POPULATE = 1u << 1,   /* map every page now (the caller is about to write all) */
    BN_SEG_NO_RESERVE = 1u << 2, /* create and map only: the caller reserves the pages
                                  * with bn_seg_reserve (e.g. on another thread while the
                                  * kernel starts filling the segment) */
};
/* Create object `name` exclusively (mode 0600), reserve `size` bytes with
 * posix_fallocate (so a full /dev/shm fails here, not with SIGBUS later; unless
 * BN_SEG_NO_RESERVE), map it read-write and take an exclusive lock.  On failure nothing is left behind (the
 * object is unlinked if it was made) and errno tells why: EEXIST (an object of that
 * name exists: see bn_seg_open), ENOSPC (no room), others.  Returns 0 or -1. */
int bn_seg_create(const struct bn_seg_store *st, const char *name, uint64_t size,
                  unsigned flags, struct bn_seg *out, char *err, size_t err_len);
/* Reserve (posix_fallocate) and, with BN_SEG_POPULATE, fault in bytes [off, off+len)
 * of a segment made with BN_SEG_NO_RESERVE.  Until a page is reserved, a store to it
 * from user space may raise SIGBUS on a full tmpfs (kernel writes such as read(2)
 * into it fail with EFAULT instead): write only reserved ranges, or fault a range in
 * first with bn_seg_prefault.  ENOSPC gets the same message as bn_seg_create; the
 * caller removes the object.  Returns 0 or -1 (errno set). */
int bn_seg_reserve(const struct bn_seg *s, uint64_t off, uint64_t len, unsigned flags,
                   char *err, size_t err_len);
/* Put the whole 2 MiB pieces of bytes [off, off+len) of a segment on huge pages
 * (MADV_COLLAPSE, Linux 6.1), whatever the tmpfs's huge= option or shmem_enabled
 * (short of "deny"): the pages stay huge in the object, so every later mapping of it
 * (reattach) gets them too.  Call before filling the range: pieces not yet allocated
 * cost no copy.  Returns 0, or -1 with errno (EINVAL: kernel too old or mapping not
 * aligned; EAGAIN/ENOMEM: no free huge page now; ENOSPC) — the segment is then
 * partly on 4 KiB pages, which costs speed only. */
int bn_seg_collapse(const struct bn_seg *s, uint64_t off, uint64_t len);
/* Allocate and map the pages under [p, p+len) of a segment's mapping for writing,
 * so that a full tmpfs shows as ENOSPC here instead of SIGBUS on the first store.
 * Cheap on pages already there.  Returns 0 or -1 (errno ENOSPC or other). */
int bn_seg_prefault(const struct bn_seg *s, void *p, uint64_t len, char *err, size_t err_len);
/* Bytes an unprivileged user may still allocate in the store's filesystem. */
int bn_seg_store_free_bytes(const struct bn_seg_store *st, uint64_t *out, char *err,
                            size_t err_len);
/* Open and map an existing object read-write.  Refuses (errno EPERM) an object that
 * is not a regular file owned by this user with mode 0600 -- such an object is never
 * written or unlinked.  Does not validate the contents (bn_seg_check) and takes no
 * lock.  Returns 0 or -1. */
int bn_seg_open(const struct bn_seg_store *st, const char *name, struct bn_seg *out,
                char *err, size_t err_len);
/* Map a segment from any fd (e.g. a memfd); on success out owns fd. */
int bn_seg_map_fd(int fd, bool writable, const char *label, struct bn_seg *out, char *err,
                  size_t err_len);
/* Unmap and close; the object itself stays (unlink it with bn_seg_unlink). */
void bn_seg_close(struct bn_seg *s);
/* Remove the object's name.  Mappings stay valid until closed.  ENOENT is success. */
int bn_seg_unlink(const struct bn_seg_store *st, const char *name, char *err, size_t err_len);
/* flock the object: exclusive or shared, without waiting.  0, or -1 with errno
 * EWOULDBLOCK when another open description holds a conflicting lock. */
int bn_seg_lock(const struct bn_seg *s, bool exclusive);

/* Header view (the segment must be at least BN_SEG_HEADER_BYTES). */
static inline struct bn_seg_header *bn_seg_hdr(const struct bn_seg *s)
{
    return (struct bn_seg_header *)(void *)s->base;
}
static inline struct bn_seg_tensor *bn_seg_dir(const struct bn_seg *s)
{
    return (struct bn_seg_tensor *)(void *)(s->base + bn_seg_hdr(s)->dir_offset);
}

/* Hash of the header (with state and header_hash taken as zero) and the directory. */
uint64_t bn_seg_header_hash(const struct bn_seg_header *h, const struct bn_seg_tensor *dir);

/* Outcome of bn_seg_check, from best to worst. */
enum bn_seg_status {
    BN_SEG_OK = 0,          /* ready, header and directory consistent */
    BN_SEG_INCOMPLETE,      /* state LOADING: a writer is at work or died */
    BN_SEG_CORRUPT,         /* bad sizes/offsets, header or metadata hash mismatch */
    BN_SEG_OTHER_VERSION,   /* a bitnetd segment of another format version */
    BN_SEG_FOREIGN,         /* no bitnetd magic: not ours, never touch */
};
/* Validate a mapped segment's structure without reading tensor data: magic, version,
 * sizes against s->size, offsets, alignment and overlap of the directory entries,
 * state, header hash and metadata-copy hash.  `why` gets the reason when not OK. */
enum bn_seg_status bn_seg_check(const struct bn_seg *s, char *why, size_t why_len);
const char *bn_seg_status_name(enum bn_seg_status st); /* "ok", "incomplete", ... */

/* Publish a fully written segment: stamps ready_ns, stores header_hash, then state
 * READY with a release store. */
void bn_seg_publish(struct bn_seg *s);

#ifdef __cplusplus
}
#endif
#endif /* BN_IPC_H */
