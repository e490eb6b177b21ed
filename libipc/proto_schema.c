/* libipc/proto_schema.c — the schema-driven codec: one walker over the field tables
 * of libipc/proto_methods.c encodes, decodes (validating every field) and fills
 * defaults, so that every method's params and results follow one set of rules. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ipc.h"

#define FIELD_PTR(base, off) ((void *)((char *)(base) + (off)))
#define FIELD_CPTR(base, off) ((const void *)((const char *)(base) + (off)))
#define PATH_MAX_CHARS 160 /* "generate: params.options.top_p" and the like */

/* ---- defaults ---- */

void bn_rpc_init(const struct bn_rpc_schema *s, void *value)
{
    memset(value, 0, s->size);
    for (size_t i = 0; i < s->n_fields; i++) {
        const struct bn_rpc_field *f = &s->fields[i];
        void *p = FIELD_PTR(value, f->off);
        switch (f->type) {
        case BN_RPC_T_BOOL: *(bool *)p = f->def != 0; break;
        case BN_RPC_T_I32: *(int32_t *)p = (int32_t)f->def; break;
        case BN_RPC_T_I64: *(int64_t *)p = (int64_t)f->def; break;
        case BN_RPC_T_U32: *(uint32_t *)p = (uint32_t)f->def; break;
        case BN_RPC_T_NUM: *(double *)p = f->def; break;
        case BN_RPC_T_ENUM: *(int *)p = (int)f->def; break;
        case BN_RPC_T_OBJ: bn_rpc_init(f->sub, p); break;
        default: break; /* strings and arrays: NULL / 0 from memset */
        }
    }
}

/* ---- encoding ---- */

static size_t count_of(const void *value, const struct bn_rpc_field *f)
{
    return *(const size_t *)FIELD_CPTR(value, f->aux_off);
}

static bool obj_has_content(const struct bn_rpc_schema *s, const void *value);

/* Whether an optional field differs from "absent". */
static bool field_present(const struct bn_rpc_field *f, const void *value)
{
    const void *p = FIELD_CPTR(value, f->off);
    if (f->flags & BN_RPC_F_HAS)
        return *(const bool *)FIELD_CPTR(value, f->aux_off);
    switch (f->type) {
    case BN_RPC_T_BOOL: return *(const bool *)p != (f->def != 0);
    case BN_RPC_T_I32: return *(const int32_t *)p != (int32_t)f->def;
    case BN_RPC_T_I64: return *(const int64_t *)p != (int64_t)f->def;
    case BN_RPC_T_U32: return *(const uint32_t *)p != (uint32_t)f->def;
    case BN_RPC_T_NUM: return *(const double *)p != f->def;
    case BN_RPC_T_ENUM: return *(const int *)p != (int)f->def;
    case BN_RPC_T_STR: return *(const char *const *)p != NULL;
    case BN_RPC_T_OBJ: return obj_has_content(f->sub, p);
    default: return count_of(value, f) > 0;
    }
}

static bool obj_has_content(const struct bn_rpc_schema *s, const void *value)
{
    for (size_t i = 0; i < s->n_fields; i++)
        if ((s->fields[i].flags & BN_RPC_F_REQUIRED) || field_present(&s->fields[i], value))
            return true;
    return false;
}

static int pack_cstr(msgpack_packer *pk, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (msgpack_pack_str(pk, n))
        return -1;
    return n ? msgpack_pack_str_body(pk, s, n) : 0;
}

static int encode_field(msgpack_packer *pk, const struct bn_rpc_field *f, const void *value)
{
    const void *p = FIELD_CPTR(value, f->off);
    switch (f->type) {
    case BN_RPC_T_BOOL:
        return *(const bool *)p ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    case BN_RPC_T_I32: return msgpack_pack_int64(pk, *(const int32_t *)p);
    case BN_RPC_T_I64: return msgpack_pack_int64(pk, *(const int64_t *)p);
    case BN_RPC_T_U32: return msgpack_pack_uint32(pk, *(const uint32_t *)p);
    case BN_RPC_T_NUM: return msgpack_pack_double(pk, *(const double *)p);
    case BN_RPC_T_STR: return pack_cstr(pk, *(const char *const *)p);
    case BN_RPC_T_ENUM: {
        int v = *(const int *)p;
        return pack_cstr(pk, v >= 0 && (size_t)v < f->n_names ? f->names[v] : "");
    }
    case BN_RPC_T_STRS: {
        const char *const *a = *(const char *const *const *)p;
        size_t n = a ? count_of(value, f) : 0;
        if (msgpack_pack_array(pk, n))
            return -1;
        for (size_t i = 0; i < n; i++)
            if (pack_cstr(pk, a[i]))
                return -1;
        return 0;
    }
    case BN_RPC_T_I32S: {
        const int32_t *a = *(const int32_t *const *)p;
        size_t n = a ? count_of(value, f) : 0;
        if (msgpack_pack_array(pk, n))
            return -1;
        for (size_t i = 0; i < n; i++)
            if (msgpack_pack_int64(pk, a[i]))
                return -1;
        return 0;
    }
    case BN_RPC_T_OBJ: return bn_rpc_encode(pk, f->sub, p);
    case BN_RPC_T_OBJS: {
        const char *a = *(const char *const *)p;
        size_t n = a ? count_of(value, f) : 0;
        if (msgpack_pack_array(pk, n))
            return -1;
        for (size_t i = 0; i < n; i++)
            if (bn_rpc_encode(pk, f->sub, a + i * f->sub->size))
                return -1;
        return 0;
    }
    case BN_RPC_T_STRMAP: {
        const struct bn_rpc_kv *a = *(const struct bn_rpc_kv *const *)p;
        size_t n = a ? count_of(value, f) : 0;
        if (msgpack_pack_map(pk, n))
            return -1;
        for (size_t i = 0; i < n; i++)
            if (pack_cstr(pk, a[i].key) || pack_cstr(pk, a[i].value))
                return -1;
        return 0;
    }
    }
    return -1;
}

int bn_rpc_encode(msgpack_packer *pk, const struct bn_rpc_schema *s, const void *value)
{
    if (!value) /* NULL: no fields set, i.e. an empty map */
        return msgpack_pack_map(pk, 0);
    size_t n = 0;
    for (size_t i = 0; i < s->n_fields; i++)
        if ((s->fields[i].flags & BN_RPC_F_REQUIRED) || field_present(&s->fields[i], value))
            n++;
    if (msgpack_pack_map(pk, n))
        return -1;
    for (size_t i = 0; i < s->n_fields; i++) {
        const struct bn_rpc_field *f = &s->fields[i];
        if (!(f->flags & BN_RPC_F_REQUIRED) && !field_present(f, value))
            continue;
        if (pack_cstr(pk, f->name) || encode_field(pk, f, value))
            return -1;
    }
    return 0;
}

/* ---- decoding ---- */

struct dec {
    msgpack_zone *z;
    unsigned flags;
    struct bn_rpc_error *err;
    char path[PATH_MAX_CHARS]; /* where the value being decoded sits */
    size_t path_len;
};

static const char *type_name(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: return "nil";
    case MSGPACK_OBJECT_BOOLEAN: return "boolean";
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return "integer";
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: return "float";
    case MSGPACK_OBJECT_STR: return "string";
    case MSGPACK_OBJECT_BIN: return "binary";
    case MSGPACK_OBJECT_ARRAY: return "array";
    case MSGPACK_OBJECT_MAP: return "map";
    case MSGPACK_OBJECT_EXT: return "ext";
    }
    return "unknown type";
}

/* Integral values print without exponent ("1000000", not "1e+06"). */
static const char *fmt_num(double v, char *buf, size_t n)
{
    if (v == floor(v) && fabs(v) < 1e19)
        snprintf(buf, n, "%.0f", v);
    else
        snprintf(buf, n, "%g", v);
    return buf;
}

static size_t path_set_len(struct dec *d, size_t old, int k)
{
    if (k > 0)
        d->path_len = old + (size_t)k < sizeof d->path ? old + (size_t)k : sizeof d->path - 1;
    return old;
}

/* Append ".name" to the path; returns the length to restore. */
static size_t path_push_name(struct dec *d, const char *name)
{
    size_t old = d->path_len;
    return path_set_len(d, old, snprintf(d->path + old, sizeof d->path - old, ".%s", name));
}

/* Append "[i]" to the path. */
static size_t path_push_index(struct dec *d, size_t i)
{
    size_t old = d->path_len;
    return path_set_len(d, old, snprintf(d->path + old, sizeof d->path - old, "[%zu]", i));
}

static void path_pop(struct dec *d, size_t old)
{
    d->path_len = old;
    d->path[old] = '\0';
}

static int fail_type(struct dec *d, const char *expect, const msgpack_object *o)
{
    return bn_rpc_errf(d->err, BN_RPC_E_INVALID_PARAMS, "%s must be %s, got %s", d->path,
                       expect, type_name(o));
}

/* "an integer in [0, 1000000]" / "a number in (0, 1]" */
static const char *range_text(const struct bn_rpc_field *f, const char *what, char *buf, size_t n)
{
    char lo[32], hi[32];
    snprintf(buf, n, "%s in %c%s, %s]", what, (f->flags & BN_RPC_F_LO_OPEN) ? '(' : '[',
             fmt_num(f->lo, lo, sizeof lo), fmt_num(f->hi, hi, sizeof hi));
    return buf;
}

static void *zalloc(struct dec *d, size_t bytes)
{
    void *p = msgpack_zone_malloc(d->z, bytes ? bytes : 1);
    if (!p)
        bn_rpc_errf(d->err, BN_RPC_E_INTERNAL, "%s: out of memory decoding %zu bytes", d->path,
                    bytes);
    return p;
}

/* A string within [lo, hi] bytes of valid UTF-8, copied with a NUL into the zone. */
static int dec_str(struct dec *d, const msgpack_object *o, double lo, double hi, const char **out)
{
    char expect[96];
    char a[32], b[32];
    if (lo > 0)
        snprintf(expect, sizeof expect, "a UTF-8 string of %s to %s bytes", fmt_num(lo, a, sizeof a),
                 fmt_num(hi, b, sizeof b));
    else
        snprintf(expect, sizeof expect, "a UTF-8 string of at most %s bytes",
                 fmt_num(hi, b, sizeof b));
    if (o->type != MSGPACK_OBJECT_STR)
        return fail_type(d, expect, o);
    size_t n = o->via.str.size;
    if ((double)n < lo || (double)n > hi)
        return bn_rpc_errf(d->err, BN_RPC_E_INVALID_PARAMS, "%s must be %s, got %zu bytes", d->path,
                           expect, n);
    if (!bn_rpc_utf8_valid(o->via.str.ptr, n))
        return bn_rpc_errf(d->err, BN_RPC_E_INVALID_PARAMS,
                           "%s must be valid UTF-8 without NUL bytes", d->path);
    char *s = zalloc(d, n + 1);
    if (!s)
        return -1;
    memcpy(s, o->via.str.ptr, n);
    s[n] = '\0';
    *out = s;
    return 0;
}

/* An integer within [lo, hi] (LO_OPEN honoured). */
static int dec_int(struct dec *d, const struct bn_rpc_field *f, const msgpack_object *o,
                   double lo, double hi, int64_t *out)
{
    char expect[96];
    struct bn_rpc_field r = *f;
    r.lo = lo;
    r.hi = hi;
    range_text(&r, "an integer", expect, sizeof expect);
    int64_t v;
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (o->via.u64 > (uint64_t)INT64_MAX)
            return bn_rpc_errf(d->err, BN_RPC_E_INVALID_PARAMS, "%s must be %s, got %" PRIu64,
                               d->path, expect, o->via.u64);
        v = (int64_t)o->via.u64;
    } else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        v = o->via.i64;
    } else {
        return fail_type(d, expect, o);
    }
    double dv = (double)v;
    bool low = (f->flags & BN_RPC_F_LO_OPEN) ? !(dv > lo) : !(dv >= lo);
    if (low || dv > hi)
        return bn_rpc_errf(d->err, BN_RPC_E_INVALID_PARAMS, "%s must be %s, got %" PRId64, d->path,
                           expect, v);
    *out = v;
    return 0;
}

static int dec_num(struct dec *d, const struct bn_rpc_field *f, const msgpack_object *o, double *out)
{
    char expect[96];
    range_text(f, "a number", expect, sizeof expect);
    double v;
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        v = (double)o->via.u64;
    else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        v = (double)o->via.i64;
    else if (o->type == MSGPACK_OBJECT_FLOAT32 || o->type == MSGPACK_OBJECT_FLOAT64)
        v = o->via.f64;
    else
        return fail_type(d, expect, o);
    bool low = (f->flags & BN_RPC_F_LO_OPEN) ? !(v > f->lo) : !(v >= f->lo);
    if (low || !(v <= f->hi)) { /* NaN fails both */
        char got[32];
        return bn_rpc_errf(d->err, BN_RPC_E_INVALID_PARAMS, "%s must be %s, got %s", d->path,
                           expect, fmt_num(v, got, sizeof got));
    }
    *out = v;
    return 0;
}

static int dec_enum(struct dec *d, const struct bn_rpc_field *f, const msgpack_object *o, int *out)
{
    char expect[160];
    size_t k = (size_t)snprintf(expect, sizeof expect, "one of");
    for (size_t i = 0; i < f->n_names && k < sizeof expect; i++)
        k += (size_t)snprintf(expect + k, sizeof expect - k, "%s \"%s\"", i ? "," : "", f->names[i]);
    if (o->type != MSGPACK_OBJECT_STR)
        return fail_type(d, expect, o);
    for (size_t i = 0; i < f->n_names; i++) {
        size_t n = strlen(f->names[i]);
        if (o->via.str.size == n && memcmp(o->via.str.ptr, f->names[i], n) == 0) {
            *out = (int)i;
            return 0;
        }
    }
    /* Quote at most 32 bytes of what was sent, printable ASCII only. */
    char got[40];
    size_t n = o->via.str.size < 32 ? o->via.str.size : 32;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)o->via.str.ptr[i];
        got[i] = (c >= 0x20 && c < 0x7f && c != '"') ? (char)c : '?';
    }
    got[n] = '\0';
    return bn_rpc_errf(d->err, BN_RPC_E_INVALID_PARAMS, "%s must be %s, got \"%s%s\"", d->path,
                       expect, got, o->via.str.size > 32 ? "..." : "");
}

static int dec_count(struct dec *d, const struct bn_rpc_field *f, const msgpack_object *o,
                     const char *what, msgpack_object_type want)
{
    char expect[96], a[32], b[32];
    if (f->lo > 0)
        snprintf(expect, sizeof expect, "%s of %s to %s %s", want == MSGPACK_OBJECT_MAP ? "a map" : "an array",
                 fmt_num(f->lo, a, sizeof a), fmt_num(f->hi, b, sizeof b), what);
    else
        snprintf(expect, sizeof expect, "%s of at most %s %s",
                 want == MSGPACK_OBJECT_MAP ? "a map" : "an array", fmt_num(f->hi, b, sizeof b), what);
    if (o->type != want)
        return fail_type(d, expect, o);
    size_t n = want == MSGPACK_OBJECT_MAP ? o->via.map.size : o->via.array.size;
    if ((double)n < f->lo || (double)n > f->hi)
        return bn_rpc_errf(d->err, BN_RPC_E_INVALID_PARAMS, "%s must be %s, got %zu", d->path,
                           expect, n);
    return 0;
}

static int dec_map(struct dec *d, const msgpack_object *o, const struct bn_rpc_schema *s, void *value);

static int dec_field(struct dec *d, const struct bn_rpc_field *f, const msgpack_object *o, void *value)
{
    void *p = FIELD_PTR(value, f->off);
    switch (f->type) {
    case BN_RPC_T_BOOL:
        if (o->type != MSGPACK_OBJECT_BOOLEAN)
            return fail_type(d, "a boolean", o);
        *(bool *)p = o->via.boolean;
        return 0;
    case BN_RPC_T_I32:
    case BN_RPC_T_I64:
    case BN_RPC_T_U32: {
        int64_t v;
        if (dec_int(d, f, o, f->lo, f->hi, &v))
            return -1;
        if (f->type == BN_RPC_T_I32)
            *(int32_t *)p = (int32_t)v;
        else if (f->type == BN_RPC_T_U32)
            *(uint32_t *)p = (uint32_t)v;
        else
            *(int64_t *)p = v;
        return 0;
    }
    case BN_RPC_T_NUM: return dec_num(d, f, o, (double *)p);
    case BN_RPC_T_STR: return dec_str(d, o, f->lo, f->hi, (const char **)p);
    case BN_RPC_T_ENUM: return dec_enum(d, f, o, (int *)p);
    case BN_RPC_T_OBJ:
        bn_rpc_init(f->sub, p);
        return dec_map(d, o, f->sub, p);
    case BN_RPC_T_STRS: {
        if (dec_count(d, f, o, "strings", MSGPACK_OBJECT_ARRAY))
            return -1;
        size_t n = o->via.array.size;
        const char **a = zalloc(d, n * sizeof *a);
        if (!a)
            return -1;
        for (size_t i = 0; i < n; i++) {
            size_t old = path_push_index(d, i);
            if (dec_str(d, &o->via.array.ptr[i], f->elo, f->ehi, &a[i]))
                return -1;
            path_pop(d, old);
        }
        *(const char ***)p = a;
        *(size_t *)FIELD_PTR(value, f->aux_off) = n;
        return 0;
    }
    case BN_RPC_T_I32S: {
        if (dec_count(d, f, o, "integers", MSGPACK_OBJECT_ARRAY))
            return -1;
        size_t n = o->via.array.size;
        int32_t *a = zalloc(d, n * sizeof *a);
        if (!a)
            return -1;
        for (size_t i = 0; i < n; i++) {
            const msgpack_object *e = &o->via.array.ptr[i];
            /* fast path: in-range non-negative ids need no message building */
            if (e->type == MSGPACK_OBJECT_POSITIVE_INTEGER && (double)e->via.u64 >= f->elo &&
                (double)e->via.u64 <= f->ehi) {
                a[i] = (int32_t)e->via.u64;
                continue;
            }
            size_t old = path_push_index(d, i);
            int64_t v;
            struct bn_rpc_field plain = *f;
            plain.flags &= ~(unsigned)BN_RPC_F_LO_OPEN;
            if (dec_int(d, &plain, e, f->elo, f->ehi, &v))
                return -1;
            a[i] = (int32_t)v;
            path_pop(d, old);
        }
        *(const int32_t **)p = a;
        *(size_t *)FIELD_PTR(value, f->aux_off) = n;
        return 0;
    }
    case BN_RPC_T_OBJS: {
        if (dec_count(d, f, o, "maps", MSGPACK_OBJECT_ARRAY))
            return -1;
        size_t n = o->via.array.size;
        char *a = zalloc(d, n * f->sub->size);
        if (!a)
            return -1;
        for (size_t i = 0; i < n; i++) {
            size_t old = path_push_index(d, i);
            bn_rpc_init(f->sub, a + i * f->sub->size);
            if (dec_map(d, &o->via.array.ptr[i], f->sub, a + i * f->sub->size))
                return -1;
            path_pop(d, old);
        }
        *(void **)p = a;
        *(size_t *)FIELD_PTR(value, f->aux_off) = n;
        return 0;
    }
    case BN_RPC_T_STRMAP: {
        if (dec_count(d, f, o, "string pairs", MSGPACK_OBJECT_MAP))
            return -1;
        size_t n = o->via.map.size;
        struct bn_rpc_kv *a = zalloc(d, n * sizeof *a);
        if (!a)
            return -1;
        for (size_t i = 0; i < n; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            size_t old = path_push_index(d, i);
            if (dec_str(d, &kv->key, 0, BN_RPC_NAME_MAX, &a[i].key) ||
                dec_str(d, &kv->val, f->elo, f->ehi, &a[i].value))
                return -1;
            path_pop(d, old);
        }
        *(struct bn_rpc_kv **)p = a;
        *(size_t *)FIELD_PTR(value, f->aux_off) = n;
        return 0;
    }
    }
    return bn_rpc_errf(d->err, BN_RPC_E_INTERNAL, "%s: bad schema", d->path);
}

static int dec_map(struct dec *d, const msgpack_object *o, const struct bn_rpc_schema *s, void *value)
{
    if (o->type != MSGPACK_OBJECT_MAP)
        return fail_type(d, "a map", o);
    uint64_t seen = 0; /* schemas have at most 64 fields (checked in the tables' test) */
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key;
        if (k->type != MSGPACK_OBJECT_STR)
            return bn_rpc_errf(d->err, BN_RPC_E_INVALID_PARAMS, "%s keys must be strings, got %s",
                               d->path, type_name(k));
        size_t j;
        for (j = 0; j < s->n_fields; j++) {
            const char *name = s->fields[j].name;
            size_t n = strlen(name);
            if (k->via.str.size == n && memcmp(k->via.str.ptr, name, n) == 0)
                break;
        }
        if (j == s->n_fields) {
            if (!(d->flags & BN_RPC_DEC_STRICT))
                continue;
            char got[40];
            size_t n = k->via.str.size < 32 ? k->via.str.size : 32;
            for (size_t c = 0; c < n; c++) {
                unsigned char ch = (unsigned char)k->via.str.ptr[c];
                got[c] = (ch >= 0x20 && ch < 0x7f && ch != '"') ? (char)ch : '?';
            }
            got[n] = '\0';
            return bn_rpc_errf(d->err, BN_RPC_E_INVALID_PARAMS, "%s has an unknown field \"%s%s\"",
                               d->path, got, k->via.str.size > 32 ? "..." : "");
        }
        const struct bn_rpc_field *f = &s->fields[j];
        size_t old = path_push_name(d, f->name);
        if (seen & (1ull << j)) {
            if (d->flags & BN_RPC_DEC_STRICT)
                return bn_rpc_errf(d->err, BN_RPC_E_INVALID_PARAMS, "%s appears twice", d->path);
        }
        seen |= 1ull << j;
        if (dec_field(d, f, &o->via.map.ptr[i].val, value))
            return -1;
        if (f->flags & BN_RPC_F_HAS)
            *(bool *)FIELD_PTR(value, f->aux_off) = true;
        path_pop(d, old);
    }
    for (size_t j = 0; j < s->n_fields; j++) {
        if ((s->fields[j].flags & BN_RPC_F_REQUIRED) && !(seen & (1ull << j)))
            return bn_rpc_errf(d->err, BN_RPC_E_INVALID_PARAMS, "%s.%s is required", d->path,
                               s->fields[j].name);
    }
    if (s->check) {
        char msg[BN_RPC_ERROR_MESSAGE_MAX - PATH_MAX_CHARS - 8];
        if (s->check(value, msg, sizeof msg))
            return bn_rpc_errf(d->err, BN_RPC_E_INVALID_PARAMS, "%s: %s", d->path, msg);
    }
    return 0;
}

int bn_rpc_decode(const msgpack_object *o, const struct bn_rpc_schema *s, void *value,
                  msgpack_zone *z, unsigned flags, const char *where, struct bn_rpc_error *err)
{
    struct dec d = {.z = z, .flags = flags, .err = err};
    snprintf(d.path, sizeof d.path, "%s", where ? where : s->name);
    d.path_len = strlen(d.path);
    bn_rpc_init(s, value);
    return dec_map(&d, o, s, value);
}
