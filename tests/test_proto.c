/* tests/test_proto.c — the protocol codec: round trips of every method's params and
 * results, and bad input in every field of every method (wrong msgpack types,
 * missing fields, unknown fields, out-of-range values, over-long strings/arrays,
 * invalid UTF-8), the envelope, error codes. */
#include <stdlib.h>

#include "test_proto_util.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define BYTES(lit) lit, sizeof(lit) - 1 /* a byte-string literal and its length */
#define SCRATCH 4096 /* bytes: larger than any params/result struct */

static msgpack_zone *zone;
static void setup(void) { zone = msgpack_zone_new(MSGPACK_ZONE_CHUNK_SIZE); }
static void teardown(void) { msgpack_zone_free(zone); }

/* Every schema reachable from a method or notification. */
static size_t all_schemas(const struct bn_rpc_schema **out)
{
    size_t n = 0;
    for (int m = 0; m < BN_RPC_METHOD_COUNT; m++) {
        out[n++] = bn_rpc_params_schema((enum bn_rpc_method)m);
        out[n++] = bn_rpc_result_schema((enum bn_rpc_method)m);
    }
    for (int k = 0; k < BN_RPC_NOTE_COUNT; k++)
        out[n++] = bn_rpc_note_schema((enum bn_rpc_note)k);
    return n;
}

Test(proto_tables, every_method_has_schemas_and_names)
{
    for (int m = 0; m < BN_RPC_METHOD_COUNT; m++) {
        const char *name = bn_rpc_method_name((enum bn_rpc_method)m);
        cr_assert_not_null(name);
        cr_expect_eq(bn_rpc_method_lookup(name, strlen(name)), (enum bn_rpc_method)m);
        cr_expect_not_null(bn_rpc_params_schema((enum bn_rpc_method)m), "%s", name);
        cr_expect_not_null(bn_rpc_result_schema((enum bn_rpc_method)m), "%s", name);
    }
    cr_expect_eq(bn_rpc_method_lookup("generat", 7), BN_RPC_METHOD_COUNT);
    cr_expect_eq(bn_rpc_method_lookup("generatex", 9), BN_RPC_METHOD_COUNT);
    cr_expect_null(bn_rpc_method_name(BN_RPC_METHOD_COUNT));
    cr_expect_eq(bn_rpc_note_lookup("token", 5), BN_RPC_NOTE_TOKEN);
    cr_expect_eq(bn_rpc_note_lookup("progress", 8), BN_RPC_NOTE_PROGRESS);
    cr_expect(bn_rpc_method_is_admin(BN_RPC_LOAD) && bn_rpc_method_is_admin(BN_RPC_UNLOAD) &&
              bn_rpc_method_is_admin(BN_RPC_SHUTDOWN));
    cr_expect(!bn_rpc_method_is_admin(BN_RPC_GENERATE) && !bn_rpc_method_is_admin(BN_RPC_PS));
    /* the brief's minimum method set */
    const char *need[] = {"hello", "ping", "load", "unload", "list", "ps", "show", "generate", "chat",
                          "tokenize", "detokenize", "cancel", "status", "metrics", "shutdown"};
    for (size_t i = 0; i < NELEM(need); i++)
        cr_expect_neq(bn_rpc_method_lookup(need[i], strlen(need[i])), BN_RPC_METHOD_COUNT, "%s", need[i]);
}

Test(proto_tables, schemas_are_well_formed)
{
    const struct bn_rpc_schema *s[64];
    size_t n = all_schemas(s);
    for (size_t i = 0; i < n; i++) {
        cr_assert_leq(s[i]->n_fields, 64, "%s: the decoder tracks at most 64 fields", s[i]->name);
        cr_assert_leq(s[i]->size, SCRATCH, "%s", s[i]->name);
        for (size_t a = 0; a < s[i]->n_fields; a++) {
            const struct bn_rpc_field *f = &s[i]->fields[a];
            cr_expect(f->lo <= f->hi || f->type == BN_RPC_T_BOOL || f->type == BN_RPC_T_OBJ ||
                          f->type == BN_RPC_T_ENUM,
                      "%s.%s: empty range", s[i]->name, f->name);
            if (!(f->flags & BN_RPC_F_REQUIRED) &&
                (f->type == BN_RPC_T_I32 || f->type == BN_RPC_T_I64 || f->type == BN_RPC_T_NUM) &&
                !(f->flags & BN_RPC_F_HAS))
                cr_expect(in_range(f, f->def), "%s.%s: default outside its range", s[i]->name, f->name);
            for (size_t b = a + 1; b < s[i]->n_fields; b++)
                cr_expect_str_neq(f->name, s[i]->fields[b].name, "%s: duplicate field", s[i]->name);
        }
    }
}

/* ---- round trips ---- */

static void round_trip(const struct bn_rpc_schema *s, const void *in, unsigned flags)
{
    _Alignas(16) char out[SCRATCH];
    msgpack_object o = to_object(s, in, zone);
    struct bn_rpc_error err = {0};
    int rc = bn_rpc_decode(&o, s, out, zone, flags, "t", &err);
    cr_assert_eq(rc, 0, "%s: %s", s->name, err.message);
    expect_equal(s, in, out, s->name);
}

Test(proto_codec, round_trip_every_method_filled, .init = setup, .fini = teardown)
{
    const struct bn_rpc_schema *s[64];
    size_t n = all_schemas(s);
    for (size_t i = 0; i < n; i++) {
        _Alignas(16) char v[SCRATCH];
        fill_value(s[i], v, zone, (int)i);
        round_trip(s[i], v, BN_RPC_DEC_STRICT);
        round_trip(s[i], v, 0);
    }
}

Test(proto_codec, round_trip_every_method_defaults, .init = setup, .fini = teardown)
{
    /* Defaults plus required fields only: optional fields are left out on the wire
     * and come back as their defaults. */
    const struct bn_rpc_schema *s[64];
    size_t n = all_schemas(s);
    for (size_t i = 0; i < n; i++) {
        _Alignas(16) char v[SCRATCH];
        bn_rpc_init(s[i], v);
        for (size_t f = 0; f < s[i]->n_fields; f++)
            if (s[i]->fields[f].flags & BN_RPC_F_REQUIRED)
                fill_field(&s[i]->fields[f], v, zone, 1);
        if (s[i] == bn_rpc_params_schema(BN_RPC_GENERATE))
            ((struct bn_rpc_generate_params *)v)->prompt = "";
        round_trip(s[i], v, BN_RPC_DEC_STRICT);
    }
}

Test(proto_codec, generate_wire_form, .init = setup, .fini = teardown)
{
    struct bn_rpc_generate_params p;
    bn_rpc_init(bn_rpc_params_schema(BN_RPC_GENERATE), &p);
    cr_expect_eq(p.options.temperature, 0.8);
    cr_expect_eq(p.options.top_k, 40);
    cr_expect_eq(p.options.top_p, 0.95);
    cr_expect_eq(p.options.seed, -1);
    cr_expect_eq(p.options.repeat_last_n, 64);
    cr_expect_eq(p.max_tokens, 0);
    p.model = "2b4t";
    p.prompt = "Hello";
    msgpack_object o = to_object(bn_rpc_params_schema(BN_RPC_GENERATE), &p, zone);
    /* only what differs from the defaults travels */
    cr_assert_eq(o.via.map.size, 2);
    cr_expect_not_null(map_get(&o, "model"));
    cr_expect_not_null(map_get(&o, "prompt"));

    p.options.top_p = 0.5;
    p.stream = true;
    static const int32_t ids[] = {1, 2, 3};
    const char *stops[] = {"\n\n", "User:"};
    p.prompt = NULL;
    p.tokens = ids;
    p.n_tokens = 3;
    p.stop = stops;
    p.n_stop = 2;
    p.max_tokens = 64;
    o = to_object(bn_rpc_params_schema(BN_RPC_GENERATE), &p, zone);
    msgpack_object *opt = map_get(&o, "options");
    cr_assert_not_null(opt);
    cr_expect_eq(opt->via.map.size, 1, "only top_p differs from the defaults");
    struct bn_rpc_generate_params back;
    struct bn_rpc_error err;
    cr_assert_eq(bn_rpc_decode(&o, bn_rpc_params_schema(BN_RPC_GENERATE), &back, zone, BN_RPC_DEC_STRICT,
                               "generate: params", &err), 0, "%s", err.message);
    cr_expect_null(back.prompt);
    cr_assert_eq(back.n_tokens, 3);
    cr_expect_eq(back.tokens[2], 3);
    cr_expect_eq(back.options.top_p, 0.5);
    cr_expect_eq(back.options.top_k, 40);
    cr_expect_str_eq(back.stop[1], "User:");
    cr_expect(back.stream);
    cr_expect_eq(back.max_tokens, 64);
}

Test(proto_codec, integers_accepted_for_numbers, .init = setup, .fini = teardown)
{
    msgpack_object_kv kv[] = {{mk_cstr("temperature"), mk_int(1)}, {mk_cstr("top_p"), mk_uint(1)}};
    msgpack_object o = mk_map(kv, 2);
    struct bn_rpc_sampler s;
    struct bn_rpc_error err;
    const struct bn_rpc_schema *gs = bn_rpc_params_schema(BN_RPC_GENERATE);
    const struct bn_rpc_schema *ss = NULL;
    for (size_t i = 0; i < gs->n_fields; i++)
        if (gs->fields[i].type == BN_RPC_T_OBJ)
            ss = gs->fields[i].sub;
    cr_assert_not_null(ss);
    cr_assert_eq(bn_rpc_decode(&o, ss, &s, zone, BN_RPC_DEC_STRICT, "o", &err), 0, "%s", err.message);
    cr_expect_eq(s.temperature, 1.0);
    cr_expect_eq(s.top_p, 1.0);
}

/* ---- bad input, table-driven over every field of every schema ---- */

struct wrong {
    msgpack_object v;
    const char *got; /* type name the message must say */
};

static size_t wrong_values(enum bn_rpc_ftype t, struct wrong *w)
{
    static msgpack_object empty[1];
    static msgpack_object_kv emptykv[1];
    size_t n = 0;
    w[n++] = (struct wrong){mk_nil(), "nil"};
    if (t != BN_RPC_T_BOOL)
        w[n++] = (struct wrong){mk_bool(true), "boolean"};
    if (t != BN_RPC_T_I32 && t != BN_RPC_T_I64 && t != BN_RPC_T_U32 && t != BN_RPC_T_NUM)
        w[n++] = (struct wrong){mk_int(5), "integer"};
    if (t != BN_RPC_T_NUM)
        w[n++] = (struct wrong){mk_float(1.5), "float"};
    if (t != BN_RPC_T_STR && t != BN_RPC_T_ENUM)
        w[n++] = (struct wrong){mk_cstr("1"), "string"};
    w[n++] = (struct wrong){mk_bin(), "binary"};
    if (t != BN_RPC_T_STRS && t != BN_RPC_T_I32S && t != BN_RPC_T_OBJS)
        w[n++] = (struct wrong){mk_array(empty, 0), "array"};
    if (t != BN_RPC_T_OBJ && t != BN_RPC_T_STRMAP)
        w[n++] = (struct wrong){mk_map(emptykv, 0), "map"};
    return n;
}

/* Decode o (strict) and expect an invalid-params error whose message holds each of
 * the given fragments. */
static void expect_reject(const struct bn_rpc_schema *s, const msgpack_object *o, const char *frag1,
                          const char *frag2)
{
    _Alignas(16) char out[SCRATCH];
    struct bn_rpc_error err = {0};
    int rc = bn_rpc_decode(o, s, out, zone, BN_RPC_DEC_STRICT, "W", &err);
    cr_assert_eq(rc, -1, "%s: accepted a bad value (%s %s)", s->name, frag1, frag2 ? frag2 : "");
    cr_expect_eq(err.code, BN_RPC_E_INVALID_PARAMS, "%s: code %d", s->name, err.code);
    cr_expect_not_null(strstr(err.message, frag1), "%s: message \"%s\" lacks \"%s\"", s->name, err.message,
                       frag1);
    if (frag2)
        cr_expect_not_null(strstr(err.message, frag2), "%s: message \"%s\" lacks \"%s\"", s->name,
                           err.message, frag2);
}

/* Visit every field, also inside nested maps (options, stats) and the first element
 * of arrays of maps (messages, models, formats): fn(root, o, parent map, field, path). */
typedef void (*field_fn)(const struct bn_rpc_schema *root, msgpack_object *whole, msgpack_object *parent,
                         const struct bn_rpc_field *f, const char *path);

static void each_field(const struct bn_rpc_schema *root, int salt, field_fn fn)
{
    for (size_t i = 0; i < root->n_fields; i++) {
        const struct bn_rpc_field *f = &root->fields[i];
        char path[128];
        /* a fresh valid object per case: cases mutate it */
        _Alignas(16) char v[SCRATCH];
        fill_value(root, v, zone, salt);
        msgpack_object o = to_object(root, v, zone);
        if (!map_get(&o, f->name)) { /* generate: prompt and tokens exclude each other */
            salt ^= 1;
            fill_value(root, v, zone, salt);
            o = to_object(root, v, zone);
        }
        snprintf(path, sizeof path, "W.%s", f->name);
        fn(root, &o, &o, f, path);
        if (f->type == BN_RPC_T_OBJ || f->type == BN_RPC_T_OBJS) {
            for (size_t j = 0; j < f->sub->n_fields; j++) {
                const struct bn_rpc_field *g = &f->sub->fields[j];
                fill_value(root, v, zone, salt);
                o = to_object(root, v, zone);
                msgpack_object *inner = map_get(&o, f->name);
                cr_assert_not_null(inner);
                if (f->type == BN_RPC_T_OBJS) {
                    inner = &inner->via.array.ptr[0];
                    snprintf(path, sizeof path, "W.%s[0].%s", f->name, g->name);
                } else {
                    snprintf(path, sizeof path, "W.%s.%s", f->name, g->name);
                }
                fn(root, &o, inner, g, path);
            }
        }
    }
}

static void wrong_type_case(const struct bn_rpc_schema *root, msgpack_object *whole, msgpack_object *parent,
                            const struct bn_rpc_field *f, const char *path)
{
    msgpack_object *slot = map_get(parent, f->name);
    cr_assert_not_null(slot, "%s: filled value lacks %s", root->name, path);
    msgpack_object keep = *slot;
    struct wrong w[10];
    size_t n = wrong_values(f->type, w);
    for (size_t i = 0; i < n; i++) {
        *slot = w[i].v;
        char got[32];
        snprintf(got, sizeof got, "got %s", w[i].got);
        expect_reject(root, whole, path, got);
    }
    *slot = keep;
}

Test(proto_bad, wrong_type_in_every_field, .init = setup, .fini = teardown)
{
    const struct bn_rpc_schema *s[64];
    size_t n = all_schemas(s);
    for (size_t i = 0; i < n; i++)
        each_field(s[i], (int)i, wrong_type_case);
}

static void missing_case(const struct bn_rpc_schema *root, msgpack_object *whole, msgpack_object *parent,
                         const struct bn_rpc_field *f, const char *path)
{
    if (!(f->flags & BN_RPC_F_REQUIRED))
        return;
    cr_assert(map_remove(parent, f->name));
    char frag[160];
    snprintf(frag, sizeof frag, "%s is required", path);
    expect_reject(root, whole, frag, NULL);
}

Test(proto_bad, missing_required_field, .init = setup, .fini = teardown)
{
    const struct bn_rpc_schema *s[64];
    size_t n = all_schemas(s);
    size_t required = 0;
    for (size_t i = 0; i < n; i++) {
        each_field(s[i], (int)i, missing_case);
        for (size_t f = 0; f < s[i]->n_fields; f++)
            required += (s[i]->fields[f].flags & BN_RPC_F_REQUIRED) != 0;
    }
    cr_expect_gt(required, 40);
}

static void range_case(const struct bn_rpc_schema *root, msgpack_object *whole, msgpack_object *parent,
                       const struct bn_rpc_field *f, const char *path)
{
    msgpack_object *slot = map_get(parent, f->name);
    cr_assert_not_null(slot);
    msgpack_object keep = *slot;
    bool is_int = f->type == BN_RPC_T_I32 || f->type == BN_RPC_T_I64 || f->type == BN_RPC_T_U32;
    if (is_int || f->type == BN_RPC_T_NUM) {
        double below = (f->flags & BN_RPC_F_LO_OPEN) ? f->lo : f->lo - 1;
        double above = f->hi >= 1e15 ? f->hi * 2 : f->hi + 1; /* hi + 1 == hi past 2^53 */
        if (below > -9e18) {
            *slot = is_int ? mk_int((int64_t)below) : mk_float(below);
            expect_reject(root, whole, path, "must be");
        }
        if (above < 9e18) {
            *slot = is_int ? mk_int((int64_t)above) : mk_float(above);
            expect_reject(root, whole, path, "must be");
        }
        if (is_int) {
            *slot = mk_uint(UINT64_MAX); /* past int64 */
            expect_reject(root, whole, path, "must be");
            *slot = mk_int(INT64_MIN);
            expect_reject(root, whole, path, "must be");
        } else {
            *slot = mk_float(NAN);
            expect_reject(root, whole, path, "must be");
            *slot = mk_float(INFINITY);
            expect_reject(root, whole, path, "must be");
            *slot = mk_float(-INFINITY);
            expect_reject(root, whole, path, "must be");
        }
    } else if (f->type == BN_RPC_T_STR && f->hi <= BN_RPC_TEXT_MAX) {
        size_t n = (size_t)f->hi + 1;
        char *big = msgpack_zone_malloc(zone, n);
        memset(big, 'a', n);
        *slot = mk_str(big, n);
        expect_reject(root, whole, path, "bytes");
        if (f->lo > 0) {
            *slot = mk_cstr("");
            expect_reject(root, whole, path, "got 0 bytes");
        }
    } else if (f->type == BN_RPC_T_STR || f->type == BN_RPC_T_ENUM) {
        /* unbounded output text: only the content checks below apply */
    }
    if (f->type == BN_RPC_T_STR) {
        *slot = mk_str("ab\xff", 3);
        expect_reject(root, whole, path, "valid UTF-8");
        *slot = mk_str("a\0b", 3);
        expect_reject(root, whole, path, "valid UTF-8");
        *slot = mk_str("\xed\xa0\x80", 3); /* a surrogate */
        expect_reject(root, whole, path, "valid UTF-8");
        *slot = mk_str("\xc0\xaf", 2); /* overlong '/' */
        expect_reject(root, whole, path, "valid UTF-8");
    }
    if (f->type == BN_RPC_T_ENUM) {
        *slot = mk_cstr("robot");
        expect_reject(root, whole, path, "got \"robot\"");
    }
    if ((f->type == BN_RPC_T_STRS || f->type == BN_RPC_T_I32S || f->type == BN_RPC_T_OBJS) && f->hi < 1e6) {
        uint32_t n = (uint32_t)f->hi + 1;
        msgpack_object *items = msgpack_zone_malloc(zone, n * sizeof *items);
        for (uint32_t i = 0; i < n; i++)
            items[i] = mk_nil();
        *slot = mk_array(items, n);
        expect_reject(root, whole, path, "got");
        if (f->lo > 0) {
            *slot = mk_array(items, 0);
            expect_reject(root, whole, path, "got 0");
        }
    }
    if (f->type == BN_RPC_T_I32S) {
        msgpack_object items[] = {mk_int(1), mk_int(-1)};
        *slot = mk_array(items, 2);
        char frag[160];
        snprintf(frag, sizeof frag, "%s[1] must be an integer", path);
        expect_reject(root, whole, frag, "got -1");
        items[1] = mk_uint(1ull << 31);
        expect_reject(root, whole, frag, "got 2147483648");
    }
    if (f->type == BN_RPC_T_STRS) {
        msgpack_object items[] = {mk_cstr("ok"), mk_int(3)};
        *slot = mk_array(items, 2);
        char frag[160];
        snprintf(frag, sizeof frag, "%s[1] must be a UTF-8 string", path);
        expect_reject(root, whole, frag, "got integer");
        if (f->elo > 0) {
            items[1] = mk_cstr("");
            expect_reject(root, whole, frag, "got 0 bytes");
        }
    }
    if (f->type == BN_RPC_T_STRMAP) {
        msgpack_object_kv kv[] = {{mk_int(1), mk_cstr("v")}};
        *slot = mk_map(kv, 1);
        expect_reject(root, whole, path, "got integer");
    }
    *slot = keep;
}

Test(proto_bad, out_of_range_every_field, .init = setup, .fini = teardown)
{
    const struct bn_rpc_schema *s[64];
    size_t n = all_schemas(s);
    for (size_t i = 0; i < n; i++)
        each_field(s[i], (int)i, range_case);
}

static void unknown_case(const struct bn_rpc_schema *root, msgpack_object *whole, msgpack_object *parent,
                         const struct bn_rpc_field *f, const char *path)
{
    if (parent != whole || f != &root->fields[0])
        return; /* once per schema */
    /* add a key by overwriting the first key's name */
    msgpack_object keep = parent->via.map.ptr[0].key;
    parent->via.map.ptr[0].key = mk_cstr("temprature");
    expect_reject(root, whole, "unknown field \"temprature\"", NULL);
    /* lenient decoding (results) skips it; the now-missing field may be required */
    _Alignas(16) char out[SCRATCH];
    struct bn_rpc_error err;
    int rc = bn_rpc_decode(whole, root, out, zone, 0, "W", &err);
    if (rc)
        cr_expect_not_null(strstr(err.message, "is required"), "%s: %s", root->name, err.message);
    parent->via.map.ptr[0].key = keep;
    /* duplicate key */
    if (parent->via.map.size >= 2) {
        msgpack_object k2 = parent->via.map.ptr[1].key;
        msgpack_object v2 = parent->via.map.ptr[1].val;
        parent->via.map.ptr[1].key = parent->via.map.ptr[0].key;
        parent->via.map.ptr[1].val = parent->via.map.ptr[0].val;
        expect_reject(root, whole, "appears twice", NULL);
        parent->via.map.ptr[1].key = k2;
        parent->via.map.ptr[1].val = v2;
    }
    /* non-string key */
    parent->via.map.ptr[0].key = mk_int(7);
    expect_reject(root, whole, "keys must be strings", NULL);
    parent->via.map.ptr[0].key = keep;
    (void)path;
}

Test(proto_bad, unknown_duplicate_and_non_string_keys, .init = setup, .fini = teardown)
{
    const struct bn_rpc_schema *s[64];
    size_t n = all_schemas(s);
    for (size_t i = 0; i < n; i++)
        if (s[i]->n_fields > 0)
            each_field(s[i], (int)i, unknown_case);
}

Test(proto_bad, params_not_a_map, .init = setup, .fini = teardown)
{
    const struct bn_rpc_schema *s[64];
    size_t n = all_schemas(s);
    msgpack_object arr = mk_array(NULL, 0);
    for (size_t i = 0; i < n; i++)
        expect_reject(s[i], &arr, "W must be a map", "got array");
}

/* The messages users see, word for word. */
static void expect_generate_error(msgpack_object_kv *kv, uint32_t n, const char *message)
{
    msgpack_object p = mk_map(kv, n);
    struct bn_rpc_msg m = {.kind = BN_RPC_REQUEST, .method = BN_RPC_GENERATE, .params = &p};
    struct bn_rpc_generate_params out;
    struct bn_rpc_error err;
    cr_assert_eq(bn_rpc_decode_params(&m, &out, zone, &err), -1, "accepted: %s", message);
    cr_expect_eq(err.code, BN_RPC_E_INVALID_PARAMS);
    cr_expect_str_eq(err.message, message);
}

Test(proto_bad, generate_messages, .init = setup, .fini = teardown)
{
    msgpack_object_kv opt_kv[] = {{mk_cstr("top_p"), mk_cstr("high")}};
    msgpack_object_kv kv[] = {{mk_cstr("model"), mk_cstr("2b4t")},
                              {mk_cstr("prompt"), mk_cstr("hi")},
                              {mk_cstr("options"), mk_map(opt_kv, 1)}};
    expect_generate_error(kv, 3, "generate: params.options.top_p must be a number in (0, 1], got string");
    opt_kv[0] = (msgpack_object_kv){mk_cstr("top_p"), mk_float(0)};
    expect_generate_error(kv, 3, "generate: params.options.top_p must be a number in (0, 1], got 0");
    opt_kv[0] = (msgpack_object_kv){mk_cstr("temperature"), mk_float(-0.5)};
    expect_generate_error(kv, 3, "generate: params.options.temperature must be a number in [0, 100], got -0.5");
    opt_kv[0] = (msgpack_object_kv){mk_cstr("seed"), mk_int(-2)};
    expect_generate_error(kv, 3,
                          "generate: params.options.seed must be an integer in [-1, 9223372036854775808], got -2");
    opt_kv[0] = (msgpack_object_kv){mk_cstr("repeat_penalty"), mk_float(1e300)};
    expect_generate_error(kv, 3, "generate: params.options.repeat_penalty must be a number in (0, 10], got 1e+300");
    opt_kv[0] = (msgpack_object_kv){mk_cstr("top_k"), mk_float(40)};
    expect_generate_error(kv, 3, "generate: params.options.top_k must be an integer in [0, 1000000], got float");

    kv[2] = (msgpack_object_kv){mk_cstr("max_tokens"), mk_uint(1ull << 40)};
    expect_generate_error(kv, 3, "generate: params.max_tokens must be an integer in [0, 1048576], got 1099511627776");
    kv[2] = (msgpack_object_kv){mk_cstr("max_tokens"), mk_int(-1)};
    expect_generate_error(kv, 3, "generate: params.max_tokens must be an integer in [0, 1048576], got -1");
    kv[2] = (msgpack_object_kv){mk_cstr("stream"), mk_cstr("yes")};
    expect_generate_error(kv, 3, "generate: params.stream must be a boolean, got string");

    msgpack_object ids[] = {mk_int(1)};
    kv[2] = (msgpack_object_kv){mk_cstr("tokens"), mk_array(ids, 1)};
    expect_generate_error(kv, 3, "generate: params: give exactly one of prompt (text) and tokens (ids)");
    expect_generate_error(kv, 1, "generate: params: give exactly one of prompt (text) and tokens (ids)");
    kv[2] = (msgpack_object_kv){mk_cstr("system"), mk_cstr("be brief")};
    msgpack_object_kv kv4[] = {kv[0], kv[1], kv[2], {mk_cstr("raw"), mk_bool(true)}};
    expect_generate_error(kv4, 4, "generate: params: system is used only with a text prompt and raw false");
    kv[1] = (msgpack_object_kv){mk_cstr("promt"), mk_cstr("hi")};
    expect_generate_error(kv, 2, "generate: params has an unknown field \"promt\"");
    msgpack_object_kv only_prompt[] = {{mk_cstr("prompt"), mk_cstr("hi")}};
    expect_generate_error(only_prompt, 1, "generate: params.model is required");
}

Test(proto_bad, chat_messages, .init = setup, .fini = teardown)
{
    msgpack_object_kv m0[] = {{mk_cstr("role"), mk_cstr("robot")}, {mk_cstr("content"), mk_cstr("hi")}};
    msgpack_object msgs[] = {mk_map(m0, 2)};
    msgpack_object_kv kv[] = {{mk_cstr("model"), mk_cstr("m")}, {mk_cstr("messages"), mk_array(msgs, 1)}};
    msgpack_object p = mk_map(kv, 2);
    struct bn_rpc_msg m = {.kind = BN_RPC_REQUEST, .method = BN_RPC_CHAT, .params = &p};
    struct bn_rpc_chat_params out;
    struct bn_rpc_error err;
    cr_assert_eq(bn_rpc_decode_params(&m, &out, zone, &err), -1);
    cr_expect_str_eq(err.message, "chat: params.messages[0].role must be one of \"system\", \"user\", "
                                  "\"assistant\", got \"robot\"");
    m0[0].val = mk_cstr("user");
    cr_assert_eq(bn_rpc_decode_params(&m, &out, zone, &err), 0, "%s", err.message);
    cr_expect_eq(out.messages[0].role, BN_RPC_ROLE_USER);
    cr_expect_str_eq(out.messages[0].content, "hi");
    kv[1].val = mk_array(msgs, 0);
    cr_assert_eq(bn_rpc_decode_params(&m, &out, zone, &err), -1);
    cr_expect_str_eq(err.message, "chat: params.messages must be an array of 1 to 4096 maps, got 0");
}

/* ---- envelope ---- */

static msgpack_object parse_bytes(const char *bytes, size_t n)
{
    char *copy = msgpack_zone_malloc(zone, n);
    memcpy(copy, bytes, n);
    size_t off = 0;
    msgpack_object o;
    cr_assert_eq(msgpack_unpack(copy, n, &off, zone, &o), MSGPACK_UNPACK_SUCCESS);
    return o;
}

Test(proto_envelope, encode_and_parse_every_kind, .init = setup, .fini = teardown)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    struct bn_rpc_msg m;
    struct bn_rpc_error err;

    struct bn_rpc_cancel_params cp = {.msgid = 41};
    cr_assert_eq(bn_rpc_encode_request(&pk, 42, BN_RPC_CANCEL, &cp), 0);
    msgpack_object o = parse_bytes(sb.data, sb.size);
    cr_assert_eq(bn_rpc_parse(&o, &m, &err), 0, "%s", err.message);
    cr_expect_eq(m.kind, BN_RPC_REQUEST);
    cr_expect(m.has_msgid);
    cr_expect_eq(m.msgid, 42);
    cr_expect_eq(m.method, BN_RPC_CANCEL);
    struct bn_rpc_cancel_params cp2;
    cr_assert_eq(bn_rpc_decode_params(&m, &cp2, zone, &err), 0, "%s", err.message);
    cr_expect_eq(cp2.msgid, 41);

    msgpack_sbuffer_clear(&sb);
    cr_assert_eq(bn_rpc_encode_request(&pk, 7, BN_RPC_PING, NULL), 0);
    o = parse_bytes(sb.data, sb.size);
    cr_assert_eq(bn_rpc_parse(&o, &m, &err), 0);
    cr_expect_eq(m.method, BN_RPC_PING);
    cr_expect_eq(m.params->type, MSGPACK_OBJECT_MAP);
    cr_expect_eq(m.params->via.map.size, 0);

    msgpack_sbuffer_clear(&sb);
    struct bn_rpc_cancel_result cr = {.cancelled = true};
    cr_assert_eq(bn_rpc_encode_result(&pk, 42, BN_RPC_CANCEL, &cr), 0);
    o = parse_bytes(sb.data, sb.size);
    cr_assert_eq(bn_rpc_parse(&o, &m, &err), 0);
    cr_expect_eq(m.kind, BN_RPC_RESPONSE);
    cr_expect_null(m.error);
    struct bn_rpc_cancel_result cr2;
    cr_assert_eq(bn_rpc_decode_response(&m, BN_RPC_CANCEL, &cr2, zone, &err), 0, "%s", err.message);
    cr_expect(cr2.cancelled);

    msgpack_sbuffer_clear(&sb);
    uint32_t id = 9;
    cr_assert_eq(bn_rpc_encode_error(&pk, &id, BN_RPC_E_MODEL_NOT_FOUND, "model \"x\" not found"), 0);
    o = parse_bytes(sb.data, sb.size);
    cr_assert_eq(bn_rpc_parse(&o, &m, &err), 0);
    cr_expect_not_null(m.error);
    cr_expect_eq(m.msgid, 9);
    cr_assert_eq(bn_rpc_decode_response(&m, BN_RPC_LOAD, &cr2, zone, &err), -1);
    cr_expect_eq(err.code, BN_RPC_E_MODEL_NOT_FOUND);
    cr_expect_str_eq(err.message, "model \"x\" not found");

    msgpack_sbuffer_clear(&sb);
    cr_assert_eq(bn_rpc_encode_error(&pk, NULL, BN_RPC_E_PARSE, NULL), 0);
    o = parse_bytes(sb.data, sb.size);
    cr_assert_eq(bn_rpc_parse(&o, &m, &err), 0);
    cr_expect(!m.has_msgid);
    cr_assert_eq(bn_rpc_decode_response(&m, BN_RPC_PING, &cr2, zone, &err), -1);
    cr_expect_eq(err.code, BN_RPC_E_PARSE);
    cr_expect_str_eq(err.message, bn_rpc_code_message(BN_RPC_E_PARSE));

    msgpack_sbuffer_clear(&sb);
    struct bn_rpc_token_note t = {.msgid = 42, .text = "h\xc3\xa9", .token = 1234};
    cr_assert_eq(bn_rpc_encode_note(&pk, BN_RPC_NOTE_TOKEN, &t), 0);
    o = parse_bytes(sb.data, sb.size);
    cr_assert_eq(bn_rpc_parse(&o, &m, &err), 0);
    cr_expect_eq(m.kind, BN_RPC_NOTIFY);
    cr_expect_eq(m.note, BN_RPC_NOTE_TOKEN);
    struct bn_rpc_token_note t2;
    cr_assert_eq(bn_rpc_decode_note(&m, &t2, zone, &err), 0, "%s", err.message);
    cr_expect_eq(t2.msgid, 42);
    cr_expect_str_eq(t2.text, "h\xc3\xa9");
    cr_expect_eq(t2.token, 1234);

    /* long error messages are cut on a character boundary */
    msgpack_sbuffer_clear(&sb);
    char longmsg[2000];
    for (size_t i = 0; i + 2 < sizeof longmsg; i += 2)
        memcpy(longmsg + i, "\xc3\xa9", 2);
    longmsg[sizeof longmsg - 2] = '\0';
    cr_assert_eq(bn_rpc_encode_error(&pk, &id, BN_RPC_E_INTERNAL, longmsg), 0);
    o = parse_bytes(sb.data, sb.size);
    cr_assert_eq(bn_rpc_parse(&o, &m, &err), 0);
    msgpack_object *msg = map_get((msgpack_object *)m.error, "message");
    cr_assert_not_null(msg);
    cr_expect_lt(msg->via.str.size, BN_RPC_ERROR_MESSAGE_MAX);
    cr_expect(bn_rpc_utf8_valid(msg->via.str.ptr, msg->via.str.size));
    msgpack_sbuffer_destroy(&sb);
}

struct bad_envelope {
    const char *bytes;
    size_t n;
    const char *fragment;
    bool has_msgid;
};

Test(proto_envelope, malformed_messages, .init = setup, .fini = teardown)
{
    static const struct bad_envelope cases[] = {
        {"\x90", 1, "must be an array [type, ...], got an array (empty)", false},
        {"\x91\x03", 2, "message type must be 0", false},
        {"\x91\xff", 2, "message type must be 0", false},
        {"\x93\x00\x05\xa4ping", 8, "a request must have 4 elements", true},             /* missing params */
        {"\x94\x00\xff\xa4ping\x80", 9, "request msgid must be an integer", false},       /* msgid -1 */
        {"\x94\x00\xcf\x00\x00\x00\x01\x00\x00\x00\x00\xa4ping\x80", 17, "request msgid", false}, /* 2^32 */
        {"\x94\x00\x05\x07\x80", 5, "request method must be a string", true},
        {"\x94\x00\x05\xa4ping\x90", 9, "request params must be a map", true},
        {"\x94\x00\x05\xa4ping\xc0", 9, "request params must be a map", true},
        {"\x94\x01\x05\x07\xc0", 5, "response error must be nil or a map", true},
        {"\x94\x01\xa1x\xc0\xc0", 6, "response msgid must be nil or an integer", false},
        {"\x92\x02\xa5token", 8, "a notification must have 3 elements", false},
        {"\x93\x02\xa5token\x90", 9, "notification params must be a map", false},
    };
    for (size_t i = 0; i < NELEM(cases); i++) {
        msgpack_object o = parse_bytes(cases[i].bytes, cases[i].n);
        struct bn_rpc_msg m;
        struct bn_rpc_error err = {0};
        cr_assert_eq(bn_rpc_parse(&o, &m, &err), -1, "case %zu accepted", i);
        cr_expect_eq(err.code, BN_RPC_E_INVALID_REQUEST, "case %zu", i);
        cr_expect_not_null(strstr(err.message, cases[i].fragment), "case %zu: %s", i, err.message);
        cr_expect_eq(m.has_msgid, cases[i].has_msgid, "case %zu", i);
        if (cases[i].has_msgid)
            cr_expect_eq(m.msgid, 5, "case %zu", i);
    }
    /* a non-array top level */
    msgpack_object o = mk_int(3);
    struct bn_rpc_msg m;
    struct bn_rpc_error err;
    cr_expect_eq(bn_rpc_parse(&o, &m, &err), -1);
}

Test(proto_envelope, unknown_method, .init = setup, .fini = teardown)
{
    msgpack_object o = parse_bytes(BYTES("\x94\x00\x05\xa5" "frobs\x80"));
    struct bn_rpc_msg m;
    struct bn_rpc_error err;
    cr_assert_eq(bn_rpc_parse(&o, &m, &err), 0);
    cr_expect_eq(m.method, BN_RPC_METHOD_COUNT);
    char buf[16];
    cr_assert_eq(bn_rpc_decode_params(&m, buf, zone, &err), -1);
    cr_expect_eq(err.code, BN_RPC_E_METHOD_NOT_FOUND);
    cr_expect_not_null(strstr(err.message, "unknown method \"frobs\""), "%s", err.message);
}

Test(proto_envelope, bad_result_is_a_protocol_error, .init = setup, .fini = teardown)
{
    /* [1, 5, nil, {"cancelled": "yes"}] */
    msgpack_object o = parse_bytes(BYTES("\x94\x01\x05\xc0\x81\xa9" "cancelled\xa3yes"));
    struct bn_rpc_msg m;
    struct bn_rpc_error err;
    cr_assert_eq(bn_rpc_parse(&o, &m, &err), 0);
    struct bn_rpc_cancel_result r;
    cr_assert_eq(bn_rpc_decode_response(&m, BN_RPC_CANCEL, &r, zone, &err), -1);
    cr_expect_eq(err.code, BN_RPC_E_PROTOCOL);
    cr_expect_str_eq(err.message, "cancel: result.cancelled must be a boolean, got string");
    /* an error object without a code */
    o = parse_bytes(BYTES("\x94\x01\x05\x81\xa7message\xa1x\xc0"));
    cr_assert_eq(bn_rpc_parse(&o, &m, &err), 0);
    cr_assert_eq(bn_rpc_decode_response(&m, BN_RPC_CANCEL, &r, zone, &err), -1);
    cr_expect_eq(err.code, BN_RPC_E_PROTOCOL);
}

/* ---- codes, UTF-8 ---- */

Test(proto_codes, table)
{
    cr_expect_str_eq(bn_rpc_code_name(BN_RPC_E_INVALID_PARAMS), "invalid_params");
    cr_expect_str_eq(bn_rpc_code_name(BN_RPC_E_BUSY), "busy");
    cr_expect_str_eq(bn_rpc_code_name(12345), "unknown");
    cr_expect(bn_rpc_code_is_fatal(BN_RPC_E_PARSE));
    cr_expect(bn_rpc_code_is_fatal(BN_RPC_E_MESSAGE_TOO_LARGE));
    cr_expect(!bn_rpc_code_is_fatal(BN_RPC_E_INVALID_PARAMS));
    const int codes[] = {BN_RPC_E_PARSE, BN_RPC_E_INVALID_REQUEST, BN_RPC_E_METHOD_NOT_FOUND,
                         BN_RPC_E_INVALID_PARAMS, BN_RPC_E_INTERNAL, BN_RPC_E_MODEL_NOT_FOUND,
                         BN_RPC_E_MODEL_NOT_LOADED, BN_RPC_E_BUSY, BN_RPC_E_CANCELLED,
                         BN_RPC_E_SHUTTING_DOWN, BN_RPC_E_PERMISSION_DENIED, BN_RPC_E_LOAD_FAILED,
                         BN_RPC_E_CONTEXT_OVERFLOW, BN_RPC_E_MESSAGE_TOO_LARGE,
                         BN_RPC_E_UNSUPPORTED_VERSION, BN_RPC_E_CONNECT, BN_RPC_E_IO, BN_RPC_E_TIMEOUT,
                         BN_RPC_E_PROTOCOL, BN_RPC_E_NOMEM};
    for (size_t i = 0; i < NELEM(codes); i++) {
        cr_expect_str_neq(bn_rpc_code_name(codes[i]), "unknown", "code %d", codes[i]);
        for (size_t j = i + 1; j < NELEM(codes); j++)
            cr_expect_neq(codes[i], codes[j]);
    }
}

Test(proto_utf8, validator)
{
    cr_expect(bn_rpc_utf8_valid("", 0));
    cr_expect(bn_rpc_utf8_valid("plain ascii text that is long enough for the fast path", 53));
    cr_expect(bn_rpc_utf8_valid("h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 12));
    cr_expect(bn_rpc_utf8_valid("\xf4\x8f\xbf\xbf", 4)); /* U+10FFFF */
    cr_expect(!bn_rpc_utf8_valid("\xf4\x90\x80\x80", 4)); /* past U+10FFFF */
    cr_expect(!bn_rpc_utf8_valid("\xe0\x80\x80", 3));     /* overlong */
    cr_expect(!bn_rpc_utf8_valid("\xed\xbf\xbf", 3));     /* surrogate */
    cr_expect(!bn_rpc_utf8_valid("\xc3", 1));             /* truncated */
    cr_expect(!bn_rpc_utf8_valid("abcdefgh\x80", 9));     /* stray continuation */
    cr_expect(!bn_rpc_utf8_valid("abcdefghij\0k", 12));   /* NUL after the fast path */
    cr_expect(!bn_rpc_utf8_valid("\xff", 1));
    cr_expect(!bn_rpc_utf8_valid("\xc3\x28", 2));
}

/* ---- docs/PROTOCOL.md describes what the code does ---- */

static char *read_doc(void)
{
    const char *src = getenv("BITNET_SRC_DIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/docs/PROTOCOL.md", src && *src ? src : ".");
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    static char buf[1 << 18];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static void expect_doc_has(const char *doc, const char *what, const char *where)
{
    cr_expect_not_null(strstr(doc, what), "docs/PROTOCOL.md does not mention %s (%s)", what, where);
}

Test(proto_doc, every_method_field_and_code_is_documented)
{
    const char *doc = read_doc();
    if (!doc)
        cr_skip_test("docs/PROTOCOL.md not found: run through `make check` (it sets BITNET_SRC_DIR)");
    char buf[128];
    for (int m = 0; m < BN_RPC_METHOD_COUNT; m++) {
        snprintf(buf, sizeof buf, "### %s", bn_rpc_method_name((enum bn_rpc_method)m));
        expect_doc_has(doc, buf, "method heading");
    }
    for (int k = 0; k < BN_RPC_NOTE_COUNT; k++) {
        snprintf(buf, sizeof buf, "`%s`", bn_rpc_note_name((enum bn_rpc_note)k));
        expect_doc_has(doc, buf, "notification");
    }
    const struct bn_rpc_schema *s[64];
    size_t n = all_schemas(s);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < s[i]->n_fields; j++) {
            const struct bn_rpc_field *f = &s[i]->fields[j];
            expect_doc_has(doc, f->name, s[i]->name);
            for (size_t e = 0; e < f->n_names; e++) {
                snprintf(buf, sizeof buf, "\"%s\"", f->names[e]);
                expect_doc_has(doc, buf, f->name);
            }
            if (f->type == BN_RPC_T_OBJ || f->type == BN_RPC_T_OBJS)
                for (size_t g = 0; g < f->sub->n_fields; g++)
                    expect_doc_has(doc, f->sub->fields[g].name, f->sub->name);
        }
    }
    const int codes[] = {BN_RPC_E_PARSE, BN_RPC_E_INVALID_REQUEST, BN_RPC_E_METHOD_NOT_FOUND,
                         BN_RPC_E_INVALID_PARAMS, BN_RPC_E_INTERNAL, BN_RPC_E_MODEL_NOT_FOUND,
                         BN_RPC_E_MODEL_NOT_LOADED, BN_RPC_E_BUSY, BN_RPC_E_CANCELLED,
                         BN_RPC_E_SHUTTING_DOWN, BN_RPC_E_PERMISSION_DENIED, BN_RPC_E_LOAD_FAILED,
                         BN_RPC_E_CONTEXT_OVERFLOW, BN_RPC_E_MESSAGE_TOO_LARGE,
                         BN_RPC_E_UNSUPPORTED_VERSION};
    for (size_t i = 0; i < NELEM(codes); i++) {
        snprintf(buf, sizeof buf, "| %d | %s |", codes[i], bn_rpc_code_name(codes[i]));
        expect_doc_has(doc, buf, "error code table");
    }
    snprintf(buf, sizeof buf, "%u", BN_RPC_MAX_FRAME_DEFAULT);
    expect_doc_has(doc, buf, "frame cap");
    snprintf(buf, sizeof buf, "%u", BN_RPC_MAX_ELEMENTS_DEFAULT);
    expect_doc_has(doc, buf, "value cap");
    snprintf(buf, sizeof buf, "%d", BN_RPC_TOKENS_MAX);
    expect_doc_has(doc, buf, "TOKENS_MAX");
    snprintf(buf, sizeof buf, "%d", BN_RPC_GEN_TOKENS_MAX);
    expect_doc_has(doc, buf, "GEN_TOKENS_MAX");
}
