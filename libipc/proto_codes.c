/* libipc/proto_codes.c — the protocol's error codes: one table of names and default
 * messages (docs/PROTOCOL.md "Error codes" mirrors it), and the error filler. */
#include <stdarg.h>
#include <stdio.h>

#include "ipc.h"

struct code_row {
    int code;
    const char *name;    /* stable identifier for scripts and logs */
    const char *message; /* default one-line message */
    bool fatal;          /* the connection is closed after it */
};

static const struct code_row code_table[] = {
    {BN_RPC_OK, "ok", "success", false},
    {BN_RPC_E_PARSE, "parse_error", "parse error: the bytes are not a msgpack-RPC message", true},
    {BN_RPC_E_INVALID_REQUEST, "invalid_request", "invalid request", false},
    {BN_RPC_E_METHOD_NOT_FOUND, "method_not_found", "method not found", false},
    {BN_RPC_E_INVALID_PARAMS, "invalid_params", "invalid params", false},
    {BN_RPC_E_INTERNAL, "internal_error", "internal error", false},
    {BN_RPC_E_MODEL_NOT_FOUND, "model_not_found", "model not found", false},
    {BN_RPC_E_MODEL_NOT_LOADED, "model_not_loaded", "model not loaded", false},
    {BN_RPC_E_BUSY, "busy", "server busy: the request queue is full", false},
    {BN_RPC_E_CANCELLED, "cancelled", "cancelled", false},
    {BN_RPC_E_SHUTTING_DOWN, "shutting_down", "the server is shutting down", false},
    {BN_RPC_E_PERMISSION_DENIED, "permission_denied", "permission denied", false},
    {BN_RPC_E_LOAD_FAILED, "load_failed", "load failed", false},
    {BN_RPC_E_CONTEXT_OVERFLOW, "context_overflow", "the prompt does not fit the context", false},
    {BN_RPC_E_MESSAGE_TOO_LARGE, "message_too_large", "message too large", true},
    {BN_RPC_E_UNSUPPORTED_VERSION, "unsupported_version", "unsupported protocol version", false},
    {BN_RPC_E_CONNECT, "connect_failed", "cannot connect to bitnetd", true},
    {BN_RPC_E_IO, "io_error", "connection to bitnetd lost", true},
    {BN_RPC_E_TIMEOUT, "timeout", "timed out waiting for bitnetd", false},
    {BN_RPC_E_PROTOCOL, "protocol_error", "bad message from the server", true},
    {BN_RPC_E_NOMEM, "out_of_memory", "out of memory", false},
};

static const struct code_row *code_find(int code)
{
    for (size_t i = 0; i < sizeof code_table / sizeof code_table[0]; i++)
        if (code_table[i].code == code)
            return &code_table[i];
    return NULL;
}

const char *bn_rpc_code_name(int code)
{
    const struct code_row *r = code_find(code);
    return r ? r->name : "unknown";
}

const char *bn_rpc_code_message(int code)
{
    const struct code_row *r = code_find(code);
    return r ? r->message : "unknown error";
}

bool bn_rpc_code_is_fatal(int code)
{
    const struct code_row *r = code_find(code);
    return r && r->fatal;
}

int bn_rpc_errf(struct bn_rpc_error *err, int code, const char *fmt, ...)
{
    if (!err)
        return -1;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return -1;
}
