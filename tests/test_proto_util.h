/* tests/test_proto_util.h — schema-driven helpers for the protocol tests: fill any
 * params/result struct with valid non-default values, compare two structs field by
 * field, and turn a struct into a msgpack object that tests can then break. */
#ifndef TEST_PROTO_UTIL_H
#define TEST_PROTO_UTIL_H

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ipc.h"

#define TPU static __attribute__((unused)) /* not every test uses every helper */
#define FPTR(base, off) ((void *)((char *)(base) + (off)))
#define FCPTR(base, off) ((const void *)((const char *)(base) + (off)))

TPU bool in_range(const struct bn_rpc_field *f, double v)
{
    bool low = (f->flags & BN_RPC_F_LO_OPEN) ? v > f->lo : v >= f->lo;
    return low && v <= f->hi;
}

/* A valid value of an integer field that differs from its default. */
TPU double pick_int(const struct bn_rpc_field *f)
{
    double c[] = {f->lo + 2, f->lo + 1, f->hi, floor((f->lo + f->hi) / 2)};
    for (size_t i = 0; i < 4; i++)
        if (in_range(f, c[i]) && c[i] != f->def)
            return c[i];
    return f->lo;
}

TPU double pick_num(const struct bn_rpc_field *f)
{
    double v = f->lo + (f->hi - f->lo) * 0.375;
    if (v == f->def)
        v = f->lo + (f->hi - f->lo) * 0.625;
    return v;
}

/* A UTF-8 string of a length within [lo, hi]: "héllo wörld" cut to fit. */
TPU const char *pick_str(msgpack_zone *z, double lo, double hi, int salt)
{
    static const char base[] = "h\xc3\xa9llo w\xc3\xb6rld 0123456789";
    size_t n = hi >= 14 ? 14 : (size_t)hi;
    if ((double)n < lo)
        n = (size_t)lo;
    char *s = msgpack_zone_malloc(z, n + 1);
    for (size_t i = 0; i < n; i++)
        s[i] = n < 14 ? (char)('a' + (i + (size_t)salt) % 26) : base[i];
    if (n >= 14)
        s[13] = (char)('0' + salt % 10);
    s[n] = '\0';
    return s;
}

TPU void fill_value(const struct bn_rpc_schema *s, void *v, msgpack_zone *z, int salt);

TPU void fill_field(const struct bn_rpc_field *f, void *v, msgpack_zone *z, int salt)
{
    void *p = FPTR(v, f->off);
    if (f->flags & BN_RPC_F_HAS)
        *(bool *)FPTR(v, f->aux_off) = true;
    switch (f->type) {
    case BN_RPC_T_BOOL: *(bool *)p = !(f->def != 0); break;
    case BN_RPC_T_I32: *(int32_t *)p = (int32_t)pick_int(f); break;
    case BN_RPC_T_I64: *(int64_t *)p = (int64_t)pick_int(f); break;
    case BN_RPC_T_U32: *(uint32_t *)p = (uint32_t)pick_int(f); break;
    case BN_RPC_T_NUM: *(double *)p = pick_num(f); break;
    case BN_RPC_T_STR: *(const char **)p = pick_str(z, f->lo, f->hi, salt); break;
    case BN_RPC_T_ENUM: *(int *)p = ((int)f->def + 1) % (int)f->n_names; break;
    case BN_RPC_T_STRS: {
        size_t n = f->hi >= 2 ? 2 : (size_t)f->hi;
        const char **a = msgpack_zone_malloc(z, (n + 1) * sizeof *a);
        for (size_t i = 0; i < n; i++)
            a[i] = pick_str(z, f->elo, f->ehi, salt + (int)i + 1);
        *(const char ***)p = a;
        *(size_t *)FPTR(v, f->aux_off) = n;
        break;
    }
    case BN_RPC_T_I32S: {
        int32_t *a = msgpack_zone_malloc(z, 3 * sizeof *a);
        a[0] = (int32_t)f->elo;
        a[1] = (int32_t)f->elo + 7 + salt;
        a[2] = (int32_t)f->ehi;
        *(int32_t **)p = a;
        *(size_t *)FPTR(v, f->aux_off) = 3;
        break;
    }
    case BN_RPC_T_OBJ: fill_value(f->sub, p, z, salt + 3); break;
    case BN_RPC_T_OBJS: {
        size_t n = 2;
        char *a = msgpack_zone_malloc(z, n * f->sub->size);
        for (size_t i = 0; i < n; i++)
            fill_value(f->sub, a + i * f->sub->size, z, salt + 5 + (int)i);
        *(void **)p = a;
        *(size_t *)FPTR(v, f->aux_off) = n;
        break;
    }
    case BN_RPC_T_STRMAP: {
        struct bn_rpc_kv *a = msgpack_zone_malloc(z, 2 * sizeof *a);
        a[0] = (struct bn_rpc_kv){"general.architecture", "bitnet-b1.58"};
        a[1] = (struct bn_rpc_kv){"general.name", pick_str(z, 0, 100, salt)};
        *(struct bn_rpc_kv **)p = a;
        *(size_t *)FPTR(v, f->aux_off) = 2;
        break;
    }
    }
}

TPU void fill_value(const struct bn_rpc_schema *s, void *v, msgpack_zone *z, int salt)
{
    bn_rpc_init(s, v);
    for (size_t i = 0; i < s->n_fields; i++)
        fill_field(&s->fields[i], v, z, salt + (int)i);
    /* Rules across fields: generate takes a text prompt or token ids, not both, and
     * system goes with a text prompt in template mode. */
    if (s == bn_rpc_params_schema(BN_RPC_GENERATE)) {
        struct bn_rpc_generate_params *g = v;
        if (salt & 1) { /* odd salt: the token-id variant (raw stays true) */
            g->prompt = NULL;
            g->system = NULL;
        } else {
            g->tokens = NULL;
            g->n_tokens = 0;
            g->raw = false;
        }
    }
}

TPU void expect_equal(const struct bn_rpc_schema *s, const void *a, const void *b, const char *path);

TPU void expect_field_equal(const struct bn_rpc_field *f, const void *a, const void *b, const char *path)
{
    char sub[256];
    snprintf(sub, sizeof sub, "%s.%s", path, f->name);
    const void *pa = FCPTR(a, f->off), *pb = FCPTR(b, f->off);
    if (f->flags & BN_RPC_F_HAS)
        cr_expect_eq(*(const bool *)FCPTR(a, f->aux_off), *(const bool *)FCPTR(b, f->aux_off),
                     "%s: presence differs", sub);
    switch (f->type) {
    case BN_RPC_T_BOOL: cr_expect_eq(*(const bool *)pa, *(const bool *)pb, "%s", sub); break;
    case BN_RPC_T_I32: cr_expect_eq(*(const int32_t *)pa, *(const int32_t *)pb, "%s", sub); break;
    case BN_RPC_T_I64: cr_expect_eq(*(const int64_t *)pa, *(const int64_t *)pb, "%s", sub); break;
    case BN_RPC_T_U32: cr_expect_eq(*(const uint32_t *)pa, *(const uint32_t *)pb, "%s", sub); break;
    case BN_RPC_T_NUM: cr_expect_eq(*(const double *)pa, *(const double *)pb, "%s", sub); break;
    case BN_RPC_T_ENUM: cr_expect_eq(*(const int *)pa, *(const int *)pb, "%s", sub); break;
    case BN_RPC_T_STR: {
        const char *x = *(const char *const *)pa, *y = *(const char *const *)pb;
        cr_expect((x == NULL) == (y == NULL), "%s: NULL vs non-NULL", sub);
        if (x && y)
            cr_expect_str_eq(x, y, "%s", sub);
        break;
    }
    case BN_RPC_T_STRS: {
        size_t n = *(const size_t *)FCPTR(a, f->aux_off);
        cr_expect_eq(n, *(const size_t *)FCPTR(b, f->aux_off), "%s count", sub);
        const char *const *x = *(const char *const *const *)pa, *const *y = *(const char *const *const *)pb;
        for (size_t i = 0; i < n && x && y; i++)
            cr_expect_str_eq(x[i], y[i], "%s[%zu]", sub, i);
        break;
    }
    case BN_RPC_T_I32S: {
        size_t n = *(const size_t *)FCPTR(a, f->aux_off);
        cr_expect_eq(n, *(const size_t *)FCPTR(b, f->aux_off), "%s count", sub);
        const int32_t *x = *(const int32_t *const *)pa, *y = *(const int32_t *const *)pb;
        for (size_t i = 0; i < n && x && y; i++)
            cr_expect_eq(x[i], y[i], "%s[%zu]", sub, i);
        break;
    }
    case BN_RPC_T_OBJ: expect_equal(f->sub, pa, pb, sub); break;
    case BN_RPC_T_OBJS: {
        size_t n = *(const size_t *)FCPTR(a, f->aux_off);
        cr_expect_eq(n, *(const size_t *)FCPTR(b, f->aux_off), "%s count", sub);
        const char *x = *(const char *const *)pa, *y = *(const char *const *)pb;
        for (size_t i = 0; i < n && x && y; i++) {
            char el[280];
            snprintf(el, sizeof el, "%s[%zu]", sub, i);
            expect_equal(f->sub, x + i * f->sub->size, y + i * f->sub->size, el);
        }
        break;
    }
    case BN_RPC_T_STRMAP: {
        size_t n = *(const size_t *)FCPTR(a, f->aux_off);
        cr_expect_eq(n, *(const size_t *)FCPTR(b, f->aux_off), "%s count", sub);
        const struct bn_rpc_kv *x = *(const struct bn_rpc_kv *const *)pa, *y = *(const struct bn_rpc_kv *const *)pb;
        for (size_t i = 0; i < n && x && y; i++) {
            cr_expect_str_eq(x[i].key, y[i].key, "%s[%zu].key", sub, i);
            cr_expect_str_eq(x[i].value, y[i].value, "%s[%zu].value", sub, i);
        }
        break;
    }
    }
}

TPU void expect_equal(const struct bn_rpc_schema *s, const void *a, const void *b, const char *path)
{
    for (size_t i = 0; i < s->n_fields; i++)
        expect_field_equal(&s->fields[i], a, b, path);
}

/* Encode *v and parse it back as a msgpack object living in z. */
TPU msgpack_object to_object(const struct bn_rpc_schema *s, const void *v, msgpack_zone *z)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    cr_assert_eq(bn_rpc_encode(&pk, s, v), 0, "%s: encode failed", s->name);
    /* copy the bytes into the zone: objects refer to them */
    char *bytes = msgpack_zone_malloc(z, sb.size);
    memcpy(bytes, sb.data, sb.size);
    size_t off = 0;
    msgpack_object o;
    cr_assert_eq(msgpack_unpack(bytes, sb.size, &off, z, &o), MSGPACK_UNPACK_SUCCESS);
    msgpack_sbuffer_destroy(&sb);
    return o;
}

/* The value of key `name` in map o, or NULL. */
TPU msgpack_object *map_get(msgpack_object *o, const char *name)
{
    if (o->type != MSGPACK_OBJECT_MAP)
        return NULL;
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        msgpack_object *k = &o->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen(name) &&
            memcmp(k->via.str.ptr, name, k->via.str.size) == 0)
            return &o->via.map.ptr[i].val;
    }
    return NULL;
}

/* Remove key `name` from map o (order kept).  True if it was there. */
TPU bool map_remove(msgpack_object *o, const char *name)
{
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        msgpack_object *k = &o->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen(name) &&
            memcmp(k->via.str.ptr, name, k->via.str.size) == 0) {
            memmove(&o->via.map.ptr[i], &o->via.map.ptr[i + 1],
                    (o->via.map.size - i - 1) * sizeof o->via.map.ptr[0]);
            o->via.map.size--;
            return true;
        }
    }
    return false;
}

TPU msgpack_object mk_nil(void) { return (msgpack_object){.type = MSGPACK_OBJECT_NIL}; }
TPU msgpack_object mk_bool(bool b) { return (msgpack_object){.type = MSGPACK_OBJECT_BOOLEAN, .via.boolean = b}; }
TPU msgpack_object mk_uint(uint64_t u) { return (msgpack_object){.type = MSGPACK_OBJECT_POSITIVE_INTEGER, .via.u64 = u}; }
TPU msgpack_object mk_int(int64_t i)
{
    return i >= 0 ? mk_uint((uint64_t)i) : (msgpack_object){.type = MSGPACK_OBJECT_NEGATIVE_INTEGER, .via.i64 = i};
}
TPU msgpack_object mk_float(double d) { return (msgpack_object){.type = MSGPACK_OBJECT_FLOAT64, .via.f64 = d}; }
TPU msgpack_object mk_str(const char *s, size_t n)
{
    return (msgpack_object){.type = MSGPACK_OBJECT_STR, .via.str = {.size = (uint32_t)n, .ptr = s}};
}
TPU msgpack_object mk_cstr(const char *s) { return mk_str(s, strlen(s)); }
TPU msgpack_object mk_bin(void)
{
    return (msgpack_object){.type = MSGPACK_OBJECT_BIN, .via.bin = {.size = 2, .ptr = "ab"}};
}
TPU msgpack_object mk_array(msgpack_object *items, uint32_t n)
{
    return (msgpack_object){.type = MSGPACK_OBJECT_ARRAY, .via.array = {.size = n, .ptr = items}};
}
TPU msgpack_object mk_map(msgpack_object_kv *kv, uint32_t n)
{
    return (msgpack_object){.type = MSGPACK_OBJECT_MAP, .via.map = {.size = n, .ptr = kv}};
}

#endif
