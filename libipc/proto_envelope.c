/* libipc/proto_envelope.c — the msgpack-RPC envelope: splitting a received message
 * into type/msgid/method/params (or error/result), and writing whole messages. */
#include <inttypes.h>
#include <string.h>

#include "ipc.h"

#define METHOD_NAME_MAX 64 /* bytes in a method name; longer is an invalid request */

static const char *kind_text(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: return "nil";
    case MSGPACK_OBJECT_BOOLEAN: return "a boolean";
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return "an integer";
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: return "a float";
    case MSGPACK_OBJECT_STR: return "a string";
    case MSGPACK_OBJECT_BIN: return "binary";
    case MSGPACK_OBJECT_ARRAY: return "an array";
    case MSGPACK_OBJECT_MAP: return "a map";
    case MSGPACK_OBJECT_EXT: return "an ext value";
    }
    return "an unknown type";
}

static bool is_u32(const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= UINT32_MAX;
}

int bn_rpc_parse(const msgpack_object *o, struct bn_rpc_msg *m, struct bn_rpc_error *err)
{
    memset(m, 0, sizeof *m);
    m->method = BN_RPC_METHOD_COUNT;
    m->note = BN_RPC_NOTE_COUNT;
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size == 0)
        return bn_rpc_errf(err, BN_RPC_E_INVALID_REQUEST,
                           "a message must be an array [type, ...], got %s%s", kind_text(o),
                           o->type == MSGPACK_OBJECT_ARRAY ? " (empty)" : "");
    const msgpack_object *a = o->via.array.ptr;
    uint32_t n = o->via.array.size;
    if (a[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER || a[0].via.u64 > BN_RPC_NOTIFY)
        return bn_rpc_errf(err, BN_RPC_E_INVALID_REQUEST,
                           "message type must be 0 (request), 1 (response) or 2 (notification)");
    m->kind = (enum bn_rpc_kind)a[0].via.u64;

    if (m->kind == BN_RPC_NOTIFY) {
        if (n != 3)
            return bn_rpc_errf(err, BN_RPC_E_INVALID_REQUEST,
                               "a notification must have 3 elements [2, method, params], got %" PRIu32, n);
        if (a[1].type != MSGPACK_OBJECT_STR || a[1].via.str.size > METHOD_NAME_MAX)
            return bn_rpc_errf(err, BN_RPC_E_INVALID_REQUEST,
                               "notification method must be a string of at most %d bytes", METHOD_NAME_MAX);
        if (a[2].type != MSGPACK_OBJECT_MAP)
            return bn_rpc_errf(err, BN_RPC_E_INVALID_REQUEST, "notification params must be a map, got %s",
                               kind_text(&a[2]));
        m->name = a[1].via.str.ptr;
        m->name_len = a[1].via.str.size;
        m->note = bn_rpc_note_lookup(m->name, m->name_len);
        m->params = &a[2];
        return 0;
    }

    /* Requests and responses: read the msgid first so that a malformed message can
     * still be answered to it. */
    if (n >= 2 && is_u32(&a[1])) {
        m->has_msgid = true;
        m->msgid = (uint32_t)a[1].via.u64;
    }
    if (m->kind == BN_RPC_REQUEST) {
        if (n != 4)
            return bn_rpc_errf(err, BN_RPC_E_INVALID_REQUEST,
                               "a request must have 4 elements [0, msgid, method, params], got %" PRIu32, n);
        if (!m->has_msgid)
            return bn_rpc_errf(err, BN_RPC_E_INVALID_REQUEST,
                               "request msgid must be an integer in [0, 4294967295], got %s",
                               kind_text(&a[1]));
        if (a[2].type != MSGPACK_OBJECT_STR || a[2].via.str.size > METHOD_NAME_MAX)
            return bn_rpc_errf(err, BN_RPC_E_INVALID_REQUEST,
                               "request method must be a string of at most %d bytes, got %s",
                               METHOD_NAME_MAX, kind_text(&a[2]));
        m->name = a[2].via.str.ptr;
        m->name_len = a[2].via.str.size;
        m->method = bn_rpc_method_lookup(m->name, m->name_len);
        if (a[3].type != MSGPACK_OBJECT_MAP)
            return bn_rpc_errf(err, BN_RPC_E_INVALID_REQUEST,
                               "request params must be a map (use {} for none), got %s", kind_text(&a[3]));
        m->params = &a[3];
        return 0;
    }

    /* response */
    if (n != 4)
        return bn_rpc_errf(err, BN_RPC_E_INVALID_REQUEST,
                           "a response must have 4 elements [1, msgid, error, result], got %" PRIu32, n);
    if (!m->has_msgid && a[1].type != MSGPACK_OBJECT_NIL)
        return bn_rpc_errf(err, BN_RPC_E_INVALID_REQUEST,
                           "response msgid must be nil or an integer in [0, 4294967295], got %s",
                           kind_text(&a[1]));
    if (a[2].type != MSGPACK_OBJECT_NIL && a[2].type != MSGPACK_OBJECT_MAP)
        return bn_rpc_errf(err, BN_RPC_E_INVALID_REQUEST, "response error must be nil or a map, got %s",
                           kind_text(&a[2]));
    m->error = a[2].type == MSGPACK_OBJECT_MAP ? &a[2] : NULL;
    m->result = &a[3];
    return 0;
}

int bn_rpc_decode_params(const struct bn_rpc_msg *m, void *params, msgpack_zone *z,
                         struct bn_rpc_error *err)
{
    if (m->kind != BN_RPC_REQUEST || !m->params)
        return bn_rpc_errf(err, BN_RPC_E_INVALID_REQUEST, "not a request");
    if (m->method == BN_RPC_METHOD_COUNT) {
        char name[METHOD_NAME_MAX + 1];
        size_t n = m->name_len;
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)m->name[i];
            name[i] = (c >= 0x20 && c < 0x7f && c != '"') ? (char)c : '?';
        }
        name[n] = '\0';
        return bn_rpc_errf(err, BN_RPC_E_METHOD_NOT_FOUND,
                           "unknown method \"%s\" (see docs/PROTOCOL.md for the list)", name);
    }
    char where[METHOD_NAME_MAX + 16];
    snprintf(where, sizeof where, "%s: params", bn_rpc_method_name(m->method));
    return bn_rpc_decode(m->params, bn_rpc_params_schema(m->method), params, z, BN_RPC_DEC_STRICT,
                         where, err);
}

/* The {code, message} map of an error response, leniently: unknown keys skipped. */
static int decode_error_object(const msgpack_object *e, struct bn_rpc_error *err)
{
    bool have_code = false, have_message = false;
    int64_t code = 0;
    for (uint32_t i = 0; i < e->via.map.size; i++) {
        const msgpack_object *k = &e->via.map.ptr[i].key, *v = &e->via.map.ptr[i].val;
        if (k->type != MSGPACK_OBJECT_STR)
            continue;
        if (k->via.str.size == 4 && memcmp(k->via.str.ptr, "code", 4) == 0) {
            if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
                code = v->via.i64;
            else if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER && v->via.u64 <= INT32_MAX)
                code = (int64_t)v->via.u64;
            else
                break;
            if (code < INT32_MIN)
                break;
            have_code = true;
        } else if (k->via.str.size == 7 && memcmp(k->via.str.ptr, "message", 7) == 0) {
            if (v->type != MSGPACK_OBJECT_STR)
                break;
            /* Truncate long messages; replace bytes that are not printable UTF-8
             * lead/continuation material conservatively (control characters). */
            size_t n = v->via.str.size;
            if (n > sizeof err->message - 1)
                n = sizeof err->message - 1;
            for (size_t c = 0; c < n; c++) {
                unsigned char ch = (unsigned char)v->via.str.ptr[c];
                err->message[c] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
            }
            err->message[n] = '\0';
            have_message = true;
        }
    }
    if (!have_code || !have_message)
        return bn_rpc_errf(err, BN_RPC_E_PROTOCOL,
                           "the server sent an error without an integer code and a string message");
    err->code = (int)code;
    return -1;
}

int bn_rpc_decode_response(const struct bn_rpc_msg *msg, enum bn_rpc_method m, void *result,
                           msgpack_zone *z, struct bn_rpc_error *err)
{
    if (msg->kind != BN_RPC_RESPONSE)
        return bn_rpc_errf(err, BN_RPC_E_PROTOCOL, "expected a response");
    if (msg->error) {
        struct bn_rpc_error tmp;
        decode_error_object(msg->error, &tmp);
        if (err)
            *err = tmp;
        return -1;
    }
    char where[METHOD_NAME_MAX + 16];
    snprintf(where, sizeof where, "%s: result", bn_rpc_method_name(m));
    if (bn_rpc_decode(msg->result, bn_rpc_result_schema(m), result, z, 0, where, err)) {
        if (err)
            err->code = BN_RPC_E_PROTOCOL;
        return -1;
    }
    return 0;
}

int bn_rpc_decode_note(const struct bn_rpc_msg *m, void *params, msgpack_zone *z,
                       struct bn_rpc_error *err)
{
    if (m->kind != BN_RPC_NOTIFY || m->note == BN_RPC_NOTE_COUNT)
        return bn_rpc_errf(err, BN_RPC_E_PROTOCOL, "not a known notification");
    char where[METHOD_NAME_MAX + 16];
    snprintf(where, sizeof where, "%s: params", bn_rpc_note_name(m->note));
    if (bn_rpc_decode(m->params, bn_rpc_note_schema(m->note), params, z, 0, where, err)) {
        if (err)
            err->code = BN_RPC_E_PROTOCOL;
        return -1;
    }
    return 0;
}

/* ---- encoders ---- */

static int pack_name(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    return msgpack_pack_str(pk, n) || msgpack_pack_str_body(pk, s, n) ? -1 : 0;
}

int bn_rpc_encode_request(msgpack_packer *pk, uint32_t msgid, enum bn_rpc_method m,
                          const void *params)
{
    const char *name = bn_rpc_method_name(m);
    if (!name)
        return -1;
    if (msgpack_pack_array(pk, 4) || msgpack_pack_uint8(pk, BN_RPC_REQUEST) ||
        msgpack_pack_uint32(pk, msgid) || pack_name(pk, name))
        return -1;
    return bn_rpc_encode(pk, bn_rpc_params_schema(m), params);
}

int bn_rpc_encode_result(msgpack_packer *pk, uint32_t msgid, enum bn_rpc_method m,
                         const void *result)
{
    const struct bn_rpc_schema *s = bn_rpc_result_schema(m);
    if (!s)
        return -1;
    if (msgpack_pack_array(pk, 4) || msgpack_pack_uint8(pk, BN_RPC_RESPONSE) ||
        msgpack_pack_uint32(pk, msgid) || msgpack_pack_nil(pk))
        return -1;
    return bn_rpc_encode(pk, s, result);
}

int bn_rpc_encode_error(msgpack_packer *pk, const uint32_t *msgid, int code, const char *message)
{
    if (!message)
        message = bn_rpc_code_message(code);
    size_t full = strlen(message), n = full;
    if (n > BN_RPC_ERROR_MESSAGE_MAX - 1)
        n = BN_RPC_ERROR_MESSAGE_MAX - 1;
    /* Never cut a UTF-8 sequence in half. */
    while (n > 0 && n < full && ((unsigned char)message[n] & 0xc0) == 0x80)
        n--;
    if (msgpack_pack_array(pk, 4) || msgpack_pack_uint8(pk, BN_RPC_RESPONSE))
        return -1;
    if (msgid ? msgpack_pack_uint32(pk, *msgid) : msgpack_pack_nil(pk))
        return -1;
    if (msgpack_pack_map(pk, 2) || pack_name(pk, "code") || msgpack_pack_int32(pk, code) ||
        pack_name(pk, "message") || msgpack_pack_str(pk, n) || msgpack_pack_str_body(pk, message, n))
        return -1;
    return msgpack_pack_nil(pk);
}

int bn_rpc_encode_note(msgpack_packer *pk, enum bn_rpc_note n, const void *params)
{
    const char *name = bn_rpc_note_name(n);
    if (!name)
        return -1;
    if (msgpack_pack_array(pk, 3) || msgpack_pack_uint8(pk, BN_RPC_NOTIFY) || pack_name(pk, name))
        return -1;
    return bn_rpc_encode(pk, bn_rpc_note_schema(n), params);
}
