/* tests/fuzz/fuzz_ipc.c — the wire protocol on arbitrary bytes: framing, envelope,
 * and every method's params/result decoder (libipc/framing.c, proto_*.c).
 *
 * The input is what a client could write to the socket.  It goes through:
 *   A. a framer with the default limits, all bytes at once; each message is split by
 *      bn_rpc_parse, and requests through bn_rpc_decode_params for their method,
 *      responses through bn_rpc_decode_response and notifications through
 *      bn_rpc_decode_note; every map in the message (params/result) is also decoded
 *      with every schema, strict and lenient, so all schemas see every input;
 *   B. the same limits, the bytes fed in pieces of 1..64 (sizes from a generator seeded
 *      by the input length) with bn_rpc_framer_next after each piece;
 *   C. a framer with small limits (512 bytes, 64 values, depth 4), all bytes at once.
 *
 * Properties checked:
 *   - A and B hand out the same messages (re-packed byte for byte) and end in the same
 *     state (need more / the same error code): the framer keeps its place between
 *     reads;
 *   - C refuses a message exactly when it breaks a limit: it hands out the same
 *     messages as A up to the first one over 512 bytes, 64 values or 4 levels of
 *     nesting (measured on A's copy), and fails there (or earlier, if A failed);
 *   - errors carry the documented codes (framing: parse / message too large;
 *     envelope: invalid request; params: invalid params / method not found);
 *   - decode -> encode -> decode -> encode gives the same bytes twice and the second
 *     decode succeeds: whatever the decoder accepts, the encoder writes in a form the
 *     decoder accepts again, without drift.
 */
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "ipc.h"

#define VALUE_MAX 1024      /* bytes: larger than any params/result struct */
#define CHUNK_MAX 64        /* bytes per piece in run B */
#define SMALL_FRAME 512     /* run C limits */
#define SMALL_ELEMENTS 64
#define SMALL_DEPTH 4

/* One message handed out: where its re-packed copy is in the trace, and its size
 * on the wire, values and nesting (for run C). */
struct msg_info {
    size_t packed_off, packed_len;
    size_t wire_bytes, values, depth;
};

struct trace {
    msgpack_sbuffer buf; /* every message handed out, re-packed, back to back */
    struct msg_info *msgs;
    size_t n_msgs, cap_msgs;
    int end_code; /* 0: the framer wants more bytes; else the sticky error's code */
};

static void measure(const msgpack_object *o, size_t depth, size_t *values, size_t *max_depth);

static void trace_add(struct trace *t, const msgpack_object *o, size_t wire_bytes)
{
    if (t->n_msgs == t->cap_msgs) {
        t->cap_msgs = t->cap_msgs ? 2 * t->cap_msgs : 16;
        t->msgs = realloc(t->msgs, t->cap_msgs * sizeof *t->msgs);
        if (!t->msgs)
            fuzz_fail("ipc: out of memory");
    }
    struct msg_info *mi = &t->msgs[t->n_msgs++];
    mi->packed_off = t->buf.size;
    mi->wire_bytes = wire_bytes;
    mi->values = mi->depth = 0;
    measure(o, 0, &mi->values, &mi->depth);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &t->buf, msgpack_sbuffer_write);
    if (msgpack_pack_object(&pk, *o))
        fuzz_fail("ipc: re-packing a message failed");
    mi->packed_len = t->buf.size - mi->packed_off;
}

static void trace_free(struct trace *t)
{
    msgpack_sbuffer_destroy(&t->buf);
    free(t->msgs);
}

static void check_framing_error(const struct bn_rpc_error *err)
{
    if (err->code != BN_RPC_E_PARSE && err->code != BN_RPC_E_MESSAGE_TOO_LARGE)
        fuzz_fail("ipc: framing error with code %d (%s): %s", err->code, bn_rpc_code_name(err->code), err->message);
    if (!err->message[0] || strnlen(err->message, sizeof err->message) == sizeof err->message)
        fuzz_fail("ipc: framing error without a message");
    if (!bn_rpc_code_is_fatal(err->code))
        fuzz_fail("ipc: framing error code %d is not fatal", err->code);
}

/* Values and depth of o (depth 1 = a scalar or an empty container). */
static void measure(const msgpack_object *o, size_t depth, size_t *values, size_t *max_depth)
{
    (*values)++;
    if (depth > *max_depth)
        *max_depth = depth;
    if (o->type == MSGPACK_OBJECT_ARRAY) {
        for (uint32_t i = 0; i < o->via.array.size; i++)
            measure(&o->via.array.ptr[i], depth + 1, values, max_depth);
    } else if (o->type == MSGPACK_OBJECT_MAP) {
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            measure(&o->via.map.ptr[i].key, depth + 1, values, max_depth);
            measure(&o->via.map.ptr[i].val, depth + 1, values, max_depth);
        }
    }
}

static void pack_value(msgpack_sbuffer *sb, const struct bn_rpc_schema *s, const void *v)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    if (bn_rpc_encode(&pk, s, v))
        fuzz_fail("ipc: %s: encoding a decoded value failed", s->name);
}

/* Decode o with schema s; when it is accepted, check the encode/decode round trip. */
static void decode_roundtrip(const msgpack_object *o, const struct bn_rpc_schema *s, unsigned flags)
{
    if (!s)
        return;
    if (s->size > VALUE_MAX)
        fuzz_fail("ipc: %s is %zu bytes; raise VALUE_MAX", s->name, s->size);
    alignas(max_align_t) unsigned char v1[VALUE_MAX], v2[VALUE_MAX];
    msgpack_zone z1, z2;
    msgpack_zone_init(&z1, 2048);
    msgpack_zone_init(&z2, 2048);
    struct bn_rpc_error err = { 0 };
    if (bn_rpc_decode(o, s, v1, &z1, flags, NULL, &err)) {
        if (err.code != BN_RPC_E_INVALID_PARAMS || !err.message[0])
            fuzz_fail("ipc: %s: decode failed with code %d: '%s'", s->name, err.code, err.message);
        msgpack_zone_destroy(&z1);
        msgpack_zone_destroy(&z2);
        return;
    }
    msgpack_sbuffer e1, e2;
    msgpack_sbuffer_init(&e1);
    msgpack_sbuffer_init(&e2);
    pack_value(&e1, s, v1);

    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    if (msgpack_unpack_next(&u, e1.data, e1.size, &off) != MSGPACK_UNPACK_SUCCESS || off != e1.size)
        fuzz_fail("ipc: %s: the encoder wrote bytes msgpack-c cannot read back", s->name);
    if (bn_rpc_decode(&u.data, s, v2, &z2, flags, NULL, &err)) {
        fuzz_dump("first encoding", e1.data, e1.size);
        fuzz_fail("ipc: %s: the decoder rejects what the encoder wrote from a decoded value: %s", s->name,
                  err.message);
    }
    pack_value(&e2, s, v2);
    if (e1.size != e2.size || memcmp(e1.data, e2.data, e1.size) != 0) {
        fuzz_dump("first encoding", e1.data, e1.size);
        fuzz_dump("second encoding", e2.data, e2.size);
        fuzz_fail("ipc: %s: encode(decode(x)) is not stable", s->name);
    }
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&e1);
    msgpack_sbuffer_destroy(&e2);
    msgpack_zone_destroy(&z1);
    msgpack_zone_destroy(&z2);
}

/* Every schema, strict and lenient, on one value. */
static void all_schemas(const msgpack_object *o)
{
    static const unsigned flag_sets[] = { BN_RPC_DEC_STRICT, 0 };
    for (size_t k = 0; k < 2; k++) {
        for (int m = 0; m < BN_RPC_METHOD_COUNT; m++) {
            decode_roundtrip(o, bn_rpc_params_schema((enum bn_rpc_method)m), flag_sets[k]);
            decode_roundtrip(o, bn_rpc_result_schema((enum bn_rpc_method)m), flag_sets[k]);
        }
        for (int n = 0; n < BN_RPC_NOTE_COUNT; n++)
            decode_roundtrip(o, bn_rpc_note_schema((enum bn_rpc_note)n), flag_sets[k]);
    }
}

/* A message as the daemon (requests) and the client library (responses,
 * notifications) take it apart. */
static void dispatch(const msgpack_object *o)
{
    struct bn_rpc_msg m;
    struct bn_rpc_error err = { 0 };
    if (bn_rpc_parse(o, &m, &err)) {
        if (err.code != BN_RPC_E_INVALID_REQUEST || !err.message[0])
            fuzz_fail("ipc: envelope error with code %d: '%s'", err.code, err.message);
        return;
    }
    alignas(max_align_t) unsigned char v[VALUE_MAX];
    msgpack_zone z;
    msgpack_zone_init(&z, 2048);
    switch (m.kind) {
    case BN_RPC_REQUEST:
        if (bn_rpc_decode_params(&m, v, &z, &err)) {
            int want = m.method == BN_RPC_METHOD_COUNT ? BN_RPC_E_METHOD_NOT_FOUND : BN_RPC_E_INVALID_PARAMS;
            if (err.code != want || !err.message[0])
                fuzz_fail("ipc: request '%.*s': code %d, expected %d: '%s'", (int)m.name_len, m.name, err.code,
                          want, err.message);
        }
        all_schemas(m.params);
        break;
    case BN_RPC_RESPONSE:
        for (int i = 0; i < BN_RPC_METHOD_COUNT; i++) {
            if (bn_rpc_decode_response(&m, (enum bn_rpc_method)i, v, &z, &err) == 0)
                continue;
            if (!m.error && err.code != BN_RPC_E_PROTOCOL)
                fuzz_fail("ipc: response without error decoded to code %d: '%s'", err.code, err.message);
            if (strnlen(err.message, sizeof err.message) == sizeof err.message)
                fuzz_fail("ipc: response error message is not terminated");
        }
        all_schemas(m.result);
        break;
    case BN_RPC_NOTIFY:
        if (bn_rpc_decode_note(&m, v, &z, &err) && err.code != BN_RPC_E_PROTOCOL)
            fuzz_fail("ipc: notification decoded to code %d", err.code);
        all_schemas(m.params);
        break;
    }
    msgpack_zone_destroy(&z);
}

/* Runs A and C: everything at once (A also dispatches each message). */
static void run_whole(const uint8_t *data, size_t size, const struct bn_rpc_framer_limits *lim, bool dispatch_msgs,
                      struct trace *t)
{
    struct bn_rpc_framer f;
    if (bn_rpc_framer_init(&f, lim) || bn_rpc_framer_feed(&f, data, size))
        fuzz_fail("ipc: framer setup failed");
    size_t pending = size;
    for (;;) {
        msgpack_object o;
        struct bn_rpc_error err = { 0 };
        int r = bn_rpc_framer_next(&f, &o, &err);
        if (r == 0)
            break;
        if (r < 0) {
            check_framing_error(&err);
            t->end_code = err.code;
            break;
        }
        size_t left = bn_rpc_framer_pending(&f);
        trace_add(t, &o, pending - left);
        pending = left;
        if (dispatch_msgs)
            dispatch(&o);
    }
    bn_rpc_framer_destroy(&f);
}

/* Run B: in pieces, reading messages as soon as they can be complete. */
static void run_pieces(const uint8_t *data, size_t size, struct trace *t)
{
    struct bn_rpc_framer f;
    if (bn_rpc_framer_init(&f, NULL))
        fuzz_fail("ipc: framer setup failed");
    uint64_t rng = size;
    size_t pos = 0;
    for (;;) {
        if (pos < size) {
            size_t want = 1 + (size_t)(fuzz_mix(&rng) % CHUNK_MAX), cap = 0;
            if (want > size - pos)
                want = size - pos;
            /* the zero-copy path the daemon uses: buffer, read into it, consumed */
            char *buf = bn_rpc_framer_buffer(&f, want, &cap);
            if (!buf || cap < want)
                fuzz_fail("ipc: framer buffer of %zu bytes refused", want);
            memcpy(buf, data + pos, want);
            bn_rpc_framer_consumed(&f, want);
            pos += want;
        }
        bool progress = false;
        for (;;) {
            msgpack_object o;
            struct bn_rpc_error err = { 0 };
            int r = bn_rpc_framer_next(&f, &o, &err);
            if (r == 0)
                break;
            if (r < 0) {
                check_framing_error(&err);
                t->end_code = err.code;
                bn_rpc_framer_destroy(&f);
                return;
            }
            trace_add(t, &o, 0);
            progress = true;
        }
        if (pos == size && !progress)
            break;
    }
    bn_rpc_framer_destroy(&f);
}

static bool same_msg(const struct trace *a, size_t i, const struct trace *b, size_t j)
{
    const struct msg_info *x = &a->msgs[i], *y = &b->msgs[j];
    return x->packed_len == y->packed_len &&
           memcmp(a->buf.data + x->packed_off, b->buf.data + y->packed_off, x->packed_len) == 0;
}

static int ipc_one(const uint8_t *data, size_t size)
{
    struct trace a = { .n_msgs = 0 }, b = { .n_msgs = 0 }, c = { .n_msgs = 0 };
    msgpack_sbuffer_init(&a.buf);
    msgpack_sbuffer_init(&b.buf);
    msgpack_sbuffer_init(&c.buf);
    run_whole(data, size, NULL, true, &a);
    run_pieces(data, size, &b);
    if (a.n_msgs != b.n_msgs || a.end_code != b.end_code || a.buf.size != b.buf.size ||
        (a.buf.size && memcmp(a.buf.data, b.buf.data, a.buf.size) != 0))
        fuzz_fail("ipc: whole input gave %zu messages ending in %d; in pieces %zu messages ending in %d%s",
                  a.n_msgs, a.end_code, b.n_msgs, b.end_code,
                  a.n_msgs == b.n_msgs && a.end_code == b.end_code ? " (with different contents)" : "");

    /* C: the same messages as A up to the first one over a small limit */
    struct bn_rpc_framer_limits small = { SMALL_FRAME, SMALL_ELEMENTS, SMALL_DEPTH };
    run_whole(data, size, &small, false, &c);
    size_t k = 0; /* A's first message over a small limit, or a.n_msgs */
    while (k < a.n_msgs && a.msgs[k].wire_bytes <= SMALL_FRAME && a.msgs[k].values <= SMALL_ELEMENTS &&
           a.msgs[k].depth <= SMALL_DEPTH)
        k++;
    for (size_t i = 0; i < c.n_msgs; i++)
        if (i >= k || !same_msg(&a, i, &c, i))
            fuzz_fail("ipc: with small limits message %zu (%zu bytes, %zu values, depth %zu) %s", i,
                      i < a.n_msgs ? a.msgs[i].wire_bytes : 0, i < a.n_msgs ? a.msgs[i].values : 0,
                      i < a.n_msgs ? a.msgs[i].depth : 0, i >= k ? "passed limits it breaks" : "differs");
    if (c.n_msgs < k) {
        fuzz_dump("message", a.buf.data + a.msgs[c.n_msgs].packed_off, a.msgs[c.n_msgs].packed_len);
        fuzz_fail("ipc: with small limits (%d bytes, %d values, depth %d) message %zu was refused (code %d) "
                  "though it has %zu bytes, %zu values, depth %zu",
                  SMALL_FRAME, SMALL_ELEMENTS, SMALL_DEPTH, c.n_msgs, c.end_code, a.msgs[c.n_msgs].wire_bytes,
                  a.msgs[c.n_msgs].values, a.msgs[c.n_msgs].depth);
    }
    if (k < a.n_msgs && c.end_code == 0)
        fuzz_fail("ipc: with small limits message %zu (%zu bytes, %zu values, depth %zu) was not refused", k,
                  a.msgs[k].wire_bytes, a.msgs[k].values, a.msgs[k].depth);
    trace_free(&a);
    trace_free(&b);
    trace_free(&c);
    return 0;
}

const struct fuzz_target fuzz_target_ipc = { "ipc", NULL, ipc_one, NULL };
