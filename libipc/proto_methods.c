/* libipc/proto_methods.c — the protocol's methods: names, and one schema table per
 * params/result struct (field name on the wire = C member name, type, required or
 * default, range).  docs/PROTOCOL.md describes the same tables for client authors;
 * adding a field is adding a row here and a line there. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "ipc.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define REQ BN_RPC_F_REQUIRED
#define BIG 4611686018427387904.0 /* 2^62: byte and token counters */
#define SECONDS_MAX 1e12

/* Field rows.  S = struct, F = member (and wire name). */
#define BOOLF(S, F, fl, d) {.name = #F, .type = BN_RPC_T_BOOL, .flags = (fl), .off = offsetof(S, F), .def = (d)}
#define INTF(S, F, T, fl, l, h, d) \
    {.name = #F, .type = (T), .flags = (fl), .off = offsetof(S, F), .lo = (l), .hi = (h), .def = (d)}
#define NUMF(S, F, fl, l, h, d) \
    {.name = #F, .type = BN_RPC_T_NUM, .flags = (fl), .off = offsetof(S, F), .lo = (l), .hi = (h), .def = (d)}
#define HASNUMF(S, F, l, h) \
    {.name = #F, .type = BN_RPC_T_NUM, .flags = BN_RPC_F_HAS, .off = offsetof(S, F), \
     .aux_off = offsetof(S, has_##F), .lo = (l), .hi = (h)}
#define STRF(S, F, fl, l, h) {.name = #F, .type = BN_RPC_T_STR, .flags = (fl), .off = offsetof(S, F), .lo = (l), .hi = (h)}
#define ENUMF(S, F, fl, tbl, d) \
    {.name = #F, .type = BN_RPC_T_ENUM, .flags = (fl), .off = offsetof(S, F), .names = (tbl), \
     .n_names = NELEM(tbl), .def = (d)}
#define STRSF(S, F, fl, l, h, el, eh) \
    {.name = #F, .type = BN_RPC_T_STRS, .flags = (fl), .off = offsetof(S, F), .aux_off = offsetof(S, n_##F), \
     .lo = (l), .hi = (h), .elo = (el), .ehi = (eh)}
#define I32SF(S, F, fl, l, h, el, eh) \
    {.name = #F, .type = BN_RPC_T_I32S, .flags = (fl), .off = offsetof(S, F), .aux_off = offsetof(S, n_##F), \
     .lo = (l), .hi = (h), .elo = (el), .ehi = (eh)}
#define OBJF(S, F, fl, sch) {.name = #F, .type = BN_RPC_T_OBJ, .flags = (fl), .off = offsetof(S, F), .sub = &(sch)}
#define OBJSF(S, F, fl, l, h, sch) \
    {.name = #F, .type = BN_RPC_T_OBJS, .flags = (fl), .off = offsetof(S, F), .aux_off = offsetof(S, n_##F), \
     .lo = (l), .hi = (h), .sub = &(sch)}
#define STRMAPF(S, F, fl, h, eh) \
    {.name = #F, .type = BN_RPC_T_STRMAP, .flags = (fl), .off = offsetof(S, F), .aux_off = offsetof(S, n_##F), \
     .hi = (h), .ehi = (eh)}
#define SCHEMA(var, label, S, rows, chk) \
    static const struct bn_rpc_schema var = {label, sizeof(S), rows, NELEM(rows), chk}

_Static_assert(sizeof(enum bn_rpc_role) == sizeof(int), "enums are stored as int");
_Static_assert(sizeof(enum bn_rpc_loaded_by) == sizeof(int), "enums are stored as int");
_Static_assert(sizeof(enum bn_rpc_stop_reason) == sizeof(int), "enums are stored as int");

/* ---- enum names (wire strings), index = enum value ---- */
static const char *const loaded_by_names[] = {"io_uring", "pread", "reattach"};
static const char *const role_names[] = {"system", "user", "assistant"};
static const char *const stop_reason_names[] = {"eos", "stop", "length", "context", "cancelled"};
_Static_assert(NELEM(loaded_by_names) == BN_RPC_LOADED_BY_COUNT, "one name per value");
_Static_assert(NELEM(role_names) == BN_RPC_ROLE_COUNT, "one name per value");
_Static_assert(NELEM(stop_reason_names) == BN_RPC_STOP_COUNT, "one name per value");

const char *bn_rpc_loaded_by_name(enum bn_rpc_loaded_by v)
{
    return (unsigned)v < BN_RPC_LOADED_BY_COUNT ? loaded_by_names[v] : NULL;
}
const char *bn_rpc_role_name(enum bn_rpc_role v)
{
    return (unsigned)v < BN_RPC_ROLE_COUNT ? role_names[v] : NULL;
}
const char *bn_rpc_stop_reason_name(enum bn_rpc_stop_reason v)
{
    return (unsigned)v < BN_RPC_STOP_COUNT ? stop_reason_names[v] : NULL;
}

/* ---- empty ---- */
static const struct bn_rpc_schema empty_schema = {"empty", sizeof(struct bn_rpc_empty), NULL, 0, NULL};

/* ---- hello ---- */
static const struct bn_rpc_field hello_params_f[] = {
    INTF(struct bn_rpc_hello_params, version, BN_RPC_T_I64, REQ, 1, 1000000, 0),
    STRF(struct bn_rpc_hello_params, client, 0, 0, BN_RPC_NAME_MAX),
};
SCHEMA(hello_params_s, "hello params", struct bn_rpc_hello_params, hello_params_f, NULL);
static const struct bn_rpc_field hello_result_f[] = {
    INTF(struct bn_rpc_hello_result, version, BN_RPC_T_I64, REQ, 1, 1000000, 0),
    STRF(struct bn_rpc_hello_result, server, REQ, 0, BN_RPC_NAME_MAX),
    STRSF(struct bn_rpc_hello_result, capabilities, REQ, 0, 256, 1, BN_RPC_NAME_MAX),
    INTF(struct bn_rpc_hello_result, max_message_bytes, BN_RPC_T_I64, REQ, 0, BIG, 0),
    INTF(struct bn_rpc_hello_result, pid, BN_RPC_T_I64, REQ, 0, 2147483647.0, 0),
};
SCHEMA(hello_result_s, "hello result", struct bn_rpc_hello_result, hello_result_f, NULL);

/* ---- load / unload ---- */
static const struct bn_rpc_field load_params_f[] = {
    STRF(struct bn_rpc_load_params, model, REQ, 1, BN_RPC_PATH_MAX),
    STRF(struct bn_rpc_load_params, name, 0, 1, BN_RPC_NAME_MAX),
    INTF(struct bn_rpc_load_params, ctx, BN_RPC_T_I64, 0, 0, BN_RPC_CTX_MAX, 0),
    INTF(struct bn_rpc_load_params, threads, BN_RPC_T_I32, 0, 0, BN_RPC_THREADS_MAX, 0),
    HASNUMF(struct bn_rpc_load_params, keep_alive, -1e9, 1e9),
    BOOLF(struct bn_rpc_load_params, progress, 0, 0),
};
SCHEMA(load_params_s, "load params", struct bn_rpc_load_params, load_params_f, NULL);
static const struct bn_rpc_field load_result_f[] = {
    STRF(struct bn_rpc_load_result, name, REQ, 0, BN_RPC_NAME_MAX),
    STRF(struct bn_rpc_load_result, path, REQ, 0, BN_RPC_PATH_MAX),
    INTF(struct bn_rpc_load_result, bytes, BN_RPC_T_I64, REQ, 0, BIG, 0),
    ENUMF(struct bn_rpc_load_result, loaded_by, REQ, loaded_by_names, 0),
    NUMF(struct bn_rpc_load_result, load_seconds, REQ, 0, SECONDS_MAX, 0),
    BOOLF(struct bn_rpc_load_result, already_loaded, REQ, 0),
};
SCHEMA(load_result_s, "load result", struct bn_rpc_load_result, load_result_f, NULL);

static const struct bn_rpc_field unload_params_f[] = {
    STRF(struct bn_rpc_unload_params, name, REQ, 1, BN_RPC_NAME_MAX),
};
SCHEMA(unload_params_s, "unload params", struct bn_rpc_unload_params, unload_params_f, NULL);
static const struct bn_rpc_field unload_result_f[] = {
    STRF(struct bn_rpc_unload_result, name, REQ, 0, BN_RPC_NAME_MAX),
    INTF(struct bn_rpc_unload_result, bytes, BN_RPC_T_I64, REQ, 0, BIG, 0),
};
SCHEMA(unload_result_s, "unload result", struct bn_rpc_unload_result, unload_result_f, NULL);

/* ---- list / ps ---- */
static const struct bn_rpc_field model_entry_f[] = {
    STRF(struct bn_rpc_model_entry, name, REQ, 0, BN_RPC_NAME_MAX),
    STRF(struct bn_rpc_model_entry, path, REQ, 0, BN_RPC_PATH_MAX),
    INTF(struct bn_rpc_model_entry, bytes, BN_RPC_T_I64, REQ, 0, BIG, 0),
    BOOLF(struct bn_rpc_model_entry, loaded, REQ, 0),
};
SCHEMA(model_entry_s, "model entry", struct bn_rpc_model_entry, model_entry_f, NULL);
static const struct bn_rpc_field list_result_f[] = {
    OBJSF(struct bn_rpc_list_result, models, REQ, 0, BN_RPC_LIST_MAX, model_entry_s),
};
SCHEMA(list_result_s, "list result", struct bn_rpc_list_result, list_result_f, NULL);

static const struct bn_rpc_field model_status_f[] = {
    STRF(struct bn_rpc_model_status, name, REQ, 0, BN_RPC_NAME_MAX),
    STRF(struct bn_rpc_model_status, path, REQ, 0, BN_RPC_PATH_MAX),
    INTF(struct bn_rpc_model_status, bytes, BN_RPC_T_I64, REQ, 0, BIG, 0),
    ENUMF(struct bn_rpc_model_status, loaded_by, REQ, loaded_by_names, 0),
    NUMF(struct bn_rpc_model_status, load_seconds, REQ, 0, SECONDS_MAX, 0),
    NUMF(struct bn_rpc_model_status, idle_seconds, REQ, 0, SECONDS_MAX, 0),
    INTF(struct bn_rpc_model_status, clients, BN_RPC_T_I64, REQ, 0, BIG, 0),
    INTF(struct bn_rpc_model_status, ctx, BN_RPC_T_I64, REQ, 0, BN_RPC_CTX_MAX, 0),
    NUMF(struct bn_rpc_model_status, keep_alive, REQ, -1e9, 1e9, 0),
};
SCHEMA(model_status_s, "model status", struct bn_rpc_model_status, model_status_f, NULL);
static const struct bn_rpc_field ps_result_f[] = {
    OBJSF(struct bn_rpc_ps_result, models, REQ, 0, BN_RPC_LIST_MAX, model_status_s),
};
SCHEMA(ps_result_s, "ps result", struct bn_rpc_ps_result, ps_result_f, NULL);

/* ---- show ---- */
static const struct bn_rpc_field show_params_f[] = {
    STRF(struct bn_rpc_show_params, model, REQ, 1, BN_RPC_PATH_MAX),
    INTF(struct bn_rpc_show_params, ctx, BN_RPC_T_I64, 0, 0, BN_RPC_CTX_MAX, 0),
};
SCHEMA(show_params_s, "show params", struct bn_rpc_show_params, show_params_f, NULL);
static const struct bn_rpc_field tensor_format_f[] = {
    STRF(struct bn_rpc_tensor_format, type, REQ, 1, 64),
    INTF(struct bn_rpc_tensor_format, tensors, BN_RPC_T_I64, REQ, 0, BIG, 0),
    INTF(struct bn_rpc_tensor_format, bytes, BN_RPC_T_I64, REQ, 0, BIG, 0),
};
SCHEMA(tensor_format_s, "tensor format", struct bn_rpc_tensor_format, tensor_format_f, NULL);
#define SHOW_INT(F) INTF(struct bn_rpc_show_result, F, BN_RPC_T_I64, REQ, 0, BIG, 0)
static const struct bn_rpc_field show_result_f[] = {
    STRF(struct bn_rpc_show_result, name, REQ, 0, BN_RPC_NAME_MAX),
    STRF(struct bn_rpc_show_result, path, REQ, 0, BN_RPC_PATH_MAX),
    STRF(struct bn_rpc_show_result, architecture, REQ, 0, BN_RPC_NAME_MAX),
    SHOW_INT(file_bytes),
    SHOW_INT(n_params),
    SHOW_INT(n_layers),
    SHOW_INT(n_embd),
    SHOW_INT(n_heads),
    SHOW_INT(n_kv_heads),
    SHOW_INT(n_vocab),
    SHOW_INT(ctx_train),
    SHOW_INT(ctx),
    SHOW_INT(weights_bytes),
    SHOW_INT(kv_bytes),
    OBJSF(struct bn_rpc_show_result, formats, REQ, 0, 256, tensor_format_s),
    STRMAPF(struct bn_rpc_show_result, metadata, REQ, BN_RPC_LIST_MAX, BN_RPC_META_VALUE_MAX),
};
SCHEMA(show_result_s, "show result", struct bn_rpc_show_result, show_result_f, NULL);

/* ---- generate / chat ---- */
static const struct bn_rpc_field sampler_f[] = {
    NUMF(struct bn_rpc_sampler, temperature, 0, 0, 100, 0.8),
    INTF(struct bn_rpc_sampler, top_k, BN_RPC_T_I32, 0, 0, 1000000, 40),
    NUMF(struct bn_rpc_sampler, top_p, BN_RPC_F_LO_OPEN, 0, 1, 0.95),
    NUMF(struct bn_rpc_sampler, min_p, 0, 0, 1, 0.05),
    NUMF(struct bn_rpc_sampler, repeat_penalty, BN_RPC_F_LO_OPEN, 0, 10, 1.0),
    INTF(struct bn_rpc_sampler, repeat_last_n, BN_RPC_T_I32, 0, -1, BN_RPC_TOKENS_MAX, 64),
    NUMF(struct bn_rpc_sampler, presence_penalty, 0, -2, 2, 0),
    NUMF(struct bn_rpc_sampler, frequency_penalty, 0, -2, 2, 0),
    INTF(struct bn_rpc_sampler, seed, BN_RPC_T_I64, 0, -1, 9223372036854775807.0, -1),
};
SCHEMA(sampler_s, "options", struct bn_rpc_sampler, sampler_f, NULL);

static int generate_check(const void *value, char *msg, size_t n)
{
    const struct bn_rpc_generate_params *p = value;
    if ((p->prompt != NULL) == (p->tokens != NULL)) {
        snprintf(msg, n, "give exactly one of prompt (text) and tokens (ids)");
        return -1;
    }
    if (p->system && (p->tokens || p->raw)) {
        snprintf(msg, n, "system is used only with a text prompt and raw false");
        return -1;
    }
    return 0;
}
static const struct bn_rpc_field generate_params_f[] = {
    STRF(struct bn_rpc_generate_params, model, REQ, 1, BN_RPC_PATH_MAX),
    STRF(struct bn_rpc_generate_params, prompt, 0, 0, BN_RPC_TEXT_MAX),
    I32SF(struct bn_rpc_generate_params, tokens, 0, 1, BN_RPC_TOKENS_MAX, 0, 2147483647.0),
    STRF(struct bn_rpc_generate_params, system, 0, 0, BN_RPC_TEXT_MAX),
    BOOLF(struct bn_rpc_generate_params, raw, 0, 0),
    OBJF(struct bn_rpc_generate_params, options, 0, sampler_s),
    STRSF(struct bn_rpc_generate_params, stop, 0, 0, BN_RPC_STOP_MAX, 1, BN_RPC_STOP_LEN_MAX),
    INTF(struct bn_rpc_generate_params, max_tokens, BN_RPC_T_I32, 0, 0, BN_RPC_GEN_TOKENS_MAX, 0),
    BOOLF(struct bn_rpc_generate_params, stream, 0, 0),
};
SCHEMA(generate_params_s, "generate params", struct bn_rpc_generate_params, generate_params_f,
       generate_check);

static const struct bn_rpc_field chat_message_f[] = {
    ENUMF(struct bn_rpc_chat_message, role, REQ, role_names, 0),
    STRF(struct bn_rpc_chat_message, content, REQ, 0, BN_RPC_TEXT_MAX),
};
SCHEMA(chat_message_s, "chat message", struct bn_rpc_chat_message, chat_message_f, NULL);
static const struct bn_rpc_field chat_params_f[] = {
    STRF(struct bn_rpc_chat_params, model, REQ, 1, BN_RPC_PATH_MAX),
    OBJSF(struct bn_rpc_chat_params, messages, REQ, 1, BN_RPC_MESSAGES_MAX, chat_message_s),
    STRF(struct bn_rpc_chat_params, session, 0, 1, BN_RPC_NAME_MAX),
    OBJF(struct bn_rpc_chat_params, options, 0, sampler_s),
    STRSF(struct bn_rpc_chat_params, stop, 0, 0, BN_RPC_STOP_MAX, 1, BN_RPC_STOP_LEN_MAX),
    INTF(struct bn_rpc_chat_params, max_tokens, BN_RPC_T_I32, 0, 0, BN_RPC_GEN_TOKENS_MAX, 0),
    BOOLF(struct bn_rpc_chat_params, stream, 0, 0),
};
SCHEMA(chat_params_s, "chat params", struct bn_rpc_chat_params, chat_params_f, NULL);

static const struct bn_rpc_field gen_stats_f[] = {
    INTF(struct bn_rpc_gen_stats, prompt_tokens, BN_RPC_T_I64, REQ, 0, BIG, 0),
    INTF(struct bn_rpc_gen_stats, cached_tokens, BN_RPC_T_I64, REQ, 0, BIG, 0),
    INTF(struct bn_rpc_gen_stats, generated_tokens, BN_RPC_T_I64, REQ, 0, BIG, 0),
    NUMF(struct bn_rpc_gen_stats, queue_seconds, REQ, 0, SECONDS_MAX, 0),
    NUMF(struct bn_rpc_gen_stats, prefill_seconds, REQ, 0, SECONDS_MAX, 0),
    NUMF(struct bn_rpc_gen_stats, decode_seconds, REQ, 0, SECONDS_MAX, 0),
    NUMF(struct bn_rpc_gen_stats, prefill_tokens_per_s, REQ, 0, 1e15, 0),
    NUMF(struct bn_rpc_gen_stats, decode_tokens_per_s, REQ, 0, 1e15, 0),
    ENUMF(struct bn_rpc_gen_stats, stop_reason, REQ, stop_reason_names, 0),
};
SCHEMA(gen_stats_s, "stats", struct bn_rpc_gen_stats, gen_stats_f, NULL);
static const struct bn_rpc_field generate_result_f[] = {
    STRF(struct bn_rpc_generate_result, text, REQ, 0, BN_RPC_OUTPUT_MAX),
    OBJF(struct bn_rpc_generate_result, stats, REQ, gen_stats_s),
    STRF(struct bn_rpc_generate_result, session, 0, 1, BN_RPC_NAME_MAX),
};
SCHEMA(generate_result_s, "generate result", struct bn_rpc_generate_result, generate_result_f, NULL);

/* ---- tokenize / detokenize ---- */
static const struct bn_rpc_field tokenize_params_f[] = {
    STRF(struct bn_rpc_tokenize_params, model, REQ, 1, BN_RPC_PATH_MAX),
    STRF(struct bn_rpc_tokenize_params, text, REQ, 0, BN_RPC_TEXT_MAX),
    BOOLF(struct bn_rpc_tokenize_params, add_special, 0, 1),
    BOOLF(struct bn_rpc_tokenize_params, parse_special, 0, 0),
};
SCHEMA(tokenize_params_s, "tokenize params", struct bn_rpc_tokenize_params, tokenize_params_f, NULL);
static const struct bn_rpc_field tokenize_result_f[] = {
    I32SF(struct bn_rpc_tokenize_result, tokens, REQ, 0, BN_RPC_TOKENS_MAX, 0, 2147483647.0),
};
SCHEMA(tokenize_result_s, "tokenize result", struct bn_rpc_tokenize_result, tokenize_result_f, NULL);
static const struct bn_rpc_field detokenize_params_f[] = {
    STRF(struct bn_rpc_detokenize_params, model, REQ, 1, BN_RPC_PATH_MAX),
    I32SF(struct bn_rpc_detokenize_params, tokens, REQ, 0, BN_RPC_TOKENS_MAX, 0, 2147483647.0),
};
SCHEMA(detokenize_params_s, "detokenize params", struct bn_rpc_detokenize_params,
       detokenize_params_f, NULL);
static const struct bn_rpc_field detokenize_result_f[] = {
    STRF(struct bn_rpc_detokenize_result, text, REQ, 0, BN_RPC_OUTPUT_MAX),
};
SCHEMA(detokenize_result_s, "detokenize result", struct bn_rpc_detokenize_result,
       detokenize_result_f, NULL);

/* ---- cancel / status / metrics / shutdown ---- */
static const struct bn_rpc_field cancel_params_f[] = {
    INTF(struct bn_rpc_cancel_params, msgid, BN_RPC_T_U32, REQ, 0, 4294967295.0, 0),
};
SCHEMA(cancel_params_s, "cancel params", struct bn_rpc_cancel_params, cancel_params_f, NULL);
static const struct bn_rpc_field cancel_result_f[] = {
    BOOLF(struct bn_rpc_cancel_result, cancelled, REQ, 0),
};
SCHEMA(cancel_result_s, "cancel result", struct bn_rpc_cancel_result, cancel_result_f, NULL);

#define STATUS_INT(F) INTF(struct bn_rpc_status_result, F, BN_RPC_T_I64, REQ, 0, BIG, 0)
static const struct bn_rpc_field status_result_f[] = {
    STATUS_INT(active_sequences),
    STATUS_INT(queued),
    STATUS_INT(kv_bytes),
    STATUS_INT(models),
    STATUS_INT(resident_bytes),
    STATUS_INT(parallel),
    STATUS_INT(max_queue),
    STATUS_INT(clients),
    NUMF(struct bn_rpc_status_result, uptime_seconds, REQ, 0, SECONDS_MAX, 0),
};
SCHEMA(status_result_s, "status result", struct bn_rpc_status_result, status_result_f, NULL);
static const struct bn_rpc_field metrics_result_f[] = {
    STRF(struct bn_rpc_metrics_result, text, REQ, 0, BN_RPC_OUTPUT_MAX),
};
SCHEMA(metrics_result_s, "metrics result", struct bn_rpc_metrics_result, metrics_result_f, NULL);
static const struct bn_rpc_field shutdown_params_f[] = {
    HASNUMF(struct bn_rpc_shutdown_params, grace_seconds, 0, 3600),
};
SCHEMA(shutdown_params_s, "shutdown params", struct bn_rpc_shutdown_params, shutdown_params_f, NULL);

/* ---- notifications ---- */
static const struct bn_rpc_field token_note_f[] = {
    INTF(struct bn_rpc_token_note, msgid, BN_RPC_T_U32, REQ, 0, 4294967295.0, 0),
    STRF(struct bn_rpc_token_note, text, REQ, 0, BN_RPC_OUTPUT_MAX),
    INTF(struct bn_rpc_token_note, token, BN_RPC_T_I32, REQ, 0, 2147483647.0, 0),
};
SCHEMA(token_note_s, "token params", struct bn_rpc_token_note, token_note_f, NULL);
static const struct bn_rpc_field progress_note_f[] = {
    INTF(struct bn_rpc_progress_note, msgid, BN_RPC_T_U32, REQ, 0, 4294967295.0, 0),
    INTF(struct bn_rpc_progress_note, done, BN_RPC_T_I64, REQ, 0, BIG, 0),
    INTF(struct bn_rpc_progress_note, total, BN_RPC_T_I64, REQ, 0, BIG, 0),
};
SCHEMA(progress_note_s, "progress params", struct bn_rpc_progress_note, progress_note_f, NULL);

/* ---- the method table ---- */
struct method_row {
    const char *name;
    const struct bn_rpc_schema *params, *result;
    bool admin;
};
static const struct method_row methods[BN_RPC_METHOD_COUNT] = {
    [BN_RPC_HELLO] = {"hello", &hello_params_s, &hello_result_s, false},
    [BN_RPC_PING] = {"ping", &empty_schema, &empty_schema, false},
    [BN_RPC_LOAD] = {"load", &load_params_s, &load_result_s, true},
    [BN_RPC_UNLOAD] = {"unload", &unload_params_s, &unload_result_s, true},
    [BN_RPC_LIST] = {"list", &empty_schema, &list_result_s, false},
    [BN_RPC_PS] = {"ps", &empty_schema, &ps_result_s, false},
    [BN_RPC_SHOW] = {"show", &show_params_s, &show_result_s, false},
    [BN_RPC_GENERATE] = {"generate", &generate_params_s, &generate_result_s, false},
    [BN_RPC_CHAT] = {"chat", &chat_params_s, &generate_result_s, false},
    [BN_RPC_TOKENIZE] = {"tokenize", &tokenize_params_s, &tokenize_result_s, false},
    [BN_RPC_DETOKENIZE] = {"detokenize", &detokenize_params_s, &detokenize_result_s, false},
    [BN_RPC_CANCEL] = {"cancel", &cancel_params_s, &cancel_result_s, false},
    [BN_RPC_STATUS] = {"status", &empty_schema, &status_result_s, false},
    [BN_RPC_METRICS] = {"metrics", &empty_schema, &metrics_result_s, false},
    [BN_RPC_SHUTDOWN] = {"shutdown", &shutdown_params_s, &empty_schema, true},
};
static const struct {
    const char *name;
    const struct bn_rpc_schema *params;
} notes[BN_RPC_NOTE_COUNT] = {
    [BN_RPC_NOTE_TOKEN] = {"token", &token_note_s},
    [BN_RPC_NOTE_PROGRESS] = {"progress", &progress_note_s},
};

const char *bn_rpc_method_name(enum bn_rpc_method m)
{
    return (unsigned)m < BN_RPC_METHOD_COUNT ? methods[m].name : NULL;
}

enum bn_rpc_method bn_rpc_method_lookup(const char *name, size_t len)
{
    for (int m = 0; m < BN_RPC_METHOD_COUNT; m++)
        if (strlen(methods[m].name) == len && memcmp(methods[m].name, name, len) == 0)
            return (enum bn_rpc_method)m;
    return BN_RPC_METHOD_COUNT;
}

bool bn_rpc_method_is_admin(enum bn_rpc_method m)
{
    return (unsigned)m < BN_RPC_METHOD_COUNT && methods[m].admin;
}

const char *bn_rpc_note_name(enum bn_rpc_note n)
{
    return (unsigned)n < BN_RPC_NOTE_COUNT ? notes[n].name : NULL;
}

enum bn_rpc_note bn_rpc_note_lookup(const char *name, size_t len)
{
    for (int n = 0; n < BN_RPC_NOTE_COUNT; n++)
        if (strlen(notes[n].name) == len && memcmp(notes[n].name, name, len) == 0)
            return (enum bn_rpc_note)n;
    return BN_RPC_NOTE_COUNT;
}

const struct bn_rpc_schema *bn_rpc_params_schema(enum bn_rpc_method m)
{
    return (unsigned)m < BN_RPC_METHOD_COUNT ? methods[m].params : NULL;
}

const struct bn_rpc_schema *bn_rpc_result_schema(enum bn_rpc_method m)
{
    return (unsigned)m < BN_RPC_METHOD_COUNT ? methods[m].result : NULL;
}

const struct bn_rpc_schema *bn_rpc_note_schema(enum bn_rpc_note n)
{
    return (unsigned)n < BN_RPC_NOTE_COUNT ? notes[n].params : NULL;
}
