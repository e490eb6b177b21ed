/* tests/test_gguf.c — GGUF reader: every value type, nested arrays, lookups, v2,
 * alignment, header-only regions, and the reference fixture files. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bitnet.h"
#include "test_gguf_build.h"

/* Every scalar type, arrays of each fixed type, strings, empty values and nested
 * arrays; two tensors (F32 [4], F16 [8, 2]) whose data is 0, 1, 2, ... */
static void build_rich(struct gb *b, uint32_t version, uint32_t alignment)
{
    int n_kv = 22 + (alignment ? 1 : 0);
    gb_header(b, version, 2, (uint64_t)n_kv);
    if (alignment)
        gb_kv_u32(b, "general.alignment", alignment);
    gb_str(b, "t.u8"); gb_u32(b, BN_GGUF_UINT8); gb_u8(b, 200);
    gb_str(b, "t.i8"); gb_u32(b, BN_GGUF_INT8); gb_u8(b, (uint8_t)-100);
    gb_str(b, "t.u16"); gb_u32(b, BN_GGUF_UINT16); gb_u16(b, 60000);
    gb_str(b, "t.i16"); gb_u32(b, BN_GGUF_INT16); gb_u16(b, (uint16_t)-30000);
    gb_kv_u32(b, "t.u32", 4000000000u);
    gb_str(b, "t.i32"); gb_u32(b, BN_GGUF_INT32); gb_u32(b, (uint32_t)-2000000000);
    gb_str(b, "t.f32"); gb_u32(b, BN_GGUF_FLOAT32); gb_f32(b, 1e-5f);
    gb_str(b, "t.bool"); gb_u32(b, BN_GGUF_BOOL); gb_u8(b, 1);
    gb_kv_str(b, "t.str", "héllo");
    gb_kv_str(b, "t.empty_str", "");
    gb_str(b, "t.u64"); gb_u32(b, BN_GGUF_UINT64); gb_u64(b, 0xfedcba9876543210ull);
    gb_str(b, "t.i64"); gb_u32(b, BN_GGUF_INT64); gb_u64(b, (uint64_t)INT64_MIN);
    gb_str(b, "t.f64"); gb_u32(b, BN_GGUF_FLOAT64); gb_f64(b, 500000.25);
    /* arrays */
    gb_str(b, "a.i32"); gb_u32(b, BN_GGUF_ARRAY); gb_u32(b, BN_GGUF_INT32); gb_u64(b, 3);
    gb_u32(b, 1); gb_u32(b, (uint32_t)-2); gb_u32(b, 3);
    gb_str(b, "a.f32"); gb_u32(b, BN_GGUF_ARRAY); gb_u32(b, BN_GGUF_FLOAT32); gb_u64(b, 2);
    gb_f32(b, 0.5f); gb_f32(b, -1.5f);
    gb_str(b, "a.bool"); gb_u32(b, BN_GGUF_ARRAY); gb_u32(b, BN_GGUF_BOOL); gb_u64(b, 2);
    gb_u8(b, 0); gb_u8(b, 1);
    gb_str(b, "a.u16"); gb_u32(b, BN_GGUF_ARRAY); gb_u32(b, BN_GGUF_UINT16); gb_u64(b, 1);
    gb_u16(b, 65535);
    gb_str(b, "a.str"); gb_u32(b, BN_GGUF_ARRAY); gb_u32(b, BN_GGUF_STRING); gb_u64(b, 3);
    gb_str(b, "a"); gb_str(b, ""); gb_str(b, "Ġ Ġ");
    gb_str(b, "a.empty"); gb_u32(b, BN_GGUF_ARRAY); gb_u32(b, BN_GGUF_UINT8); gb_u64(b, 0);
    /* [[1, 2], [], [3]] as i64 */
    gb_str(b, "a.nested"); gb_u32(b, BN_GGUF_ARRAY); gb_u32(b, BN_GGUF_ARRAY); gb_u64(b, 3);
    gb_u32(b, BN_GGUF_INT64); gb_u64(b, 2); gb_u64(b, 1); gb_u64(b, 2);
    gb_u32(b, BN_GGUF_INT64); gb_u64(b, 0);
    gb_u32(b, BN_GGUF_INT64); gb_u64(b, 1); gb_u64(b, 3);
    /* [[["x"], []], [["y", "zz"]]]: strings two levels down */
    gb_str(b, "a.deep"); gb_u32(b, BN_GGUF_ARRAY); gb_u32(b, BN_GGUF_ARRAY); gb_u64(b, 2);
    gb_u32(b, BN_GGUF_ARRAY); gb_u64(b, 2);
    gb_u32(b, BN_GGUF_STRING); gb_u64(b, 1); gb_str(b, "x");
    gb_u32(b, BN_GGUF_STRING); gb_u64(b, 0);
    gb_u32(b, BN_GGUF_ARRAY); gb_u64(b, 1);
    gb_u32(b, BN_GGUF_STRING); gb_u64(b, 2); gb_str(b, "y"); gb_str(b, "zz");
    gb_str(b, "a.empty_nested"); gb_u32(b, BN_GGUF_ARRAY); gb_u32(b, BN_GGUF_ARRAY); gb_u64(b, 0);

    uint32_t a = alignment ? alignment : 32;
    gb_tensor(b, "vec", 1, (uint64_t[]){4}, BN_TYPE_F32, 0);
    gb_tensor(b, "mat", 2, (uint64_t[]){8, 2}, BN_TYPE_F16, a); /* vec's 16 bytes, padded */
    gb_pad(b, a);
    for (int i = 0; i < 4; i++)
        gb_f32(b, (float)i);
    gb_pad(b, a);
    for (int i = 0; i < 16; i++)
        gb_u16(b, bn_f32_to_f16((float)i));
}

static void check_rich(const struct bn_gguf *g)
{
    struct bn_err err;
    uint64_t u64;
    int64_t i64;
    uint32_t u32;
    float f;
    bool bo;
    struct bn_str s;

    cr_assert_eq(bn_gguf_get_u32(g, "t.u8", &u32, &err), 0);
    cr_assert_eq(u32, 200);
    cr_assert_eq(bn_gguf_get_i64(g, "t.i8", &i64, &err), 0);
    cr_assert_eq(i64, -100);
    cr_assert_eq(bn_gguf_get_u64(g, "t.u16", &u64, &err), 0);
    cr_assert_eq(u64, 60000);
    cr_assert_eq(bn_gguf_get_i64(g, "t.i16", &i64, &err), 0);
    cr_assert_eq(i64, -30000);
    cr_assert_eq(bn_gguf_get_u32(g, "t.u32", &u32, &err), 0);
    cr_assert_eq(u32, 4000000000u);
    cr_assert_eq(bn_gguf_get_i64(g, "t.i32", &i64, &err), 0);
    cr_assert_eq(i64, -2000000000);
    cr_assert_eq(bn_gguf_get_f32(g, "t.f32", &f, &err), 0);
    cr_assert_eq(f, 1e-5f);
    cr_assert_eq(bn_gguf_get_bool(g, "t.bool", &bo, &err), 0);
    cr_assert(bo);
    cr_assert_eq(bn_gguf_get_str(g, "t.str", &s, &err), 0);
    cr_assert_eq(s.len, strlen("héllo"));
    cr_assert_eq(memcmp(s.ptr, "héllo", s.len), 0);
    cr_assert_eq(bn_gguf_get_str(g, "t.empty_str", &s, &err), 0);
    cr_assert_eq(s.len, 0);
    cr_assert_eq(bn_gguf_get_u64(g, "t.u64", &u64, &err), 0);
    cr_assert_eq(u64, 0xfedcba9876543210ull);
    cr_assert_eq(bn_gguf_get_i64(g, "t.i64", &i64, &err), 0);
    cr_assert_eq(i64, INT64_MIN);
    cr_assert_eq(bn_gguf_get_f32(g, "t.f64", &f, &err), 0);
    cr_assert_eq(f, 500000.25f);

    struct bn_gguf_arr a, sub, sub2;
    cr_assert_eq(bn_gguf_get_arr(g, "a.i32", &a, &err), 0);
    cr_assert_eq(a.type, BN_GGUF_INT32);
    cr_assert_eq(a.n, 3);
    cr_assert_eq(bn_gguf_arr_int(&a, 0), 1);
    cr_assert_eq(bn_gguf_arr_int(&a, 1), -2);
    cr_assert_eq(bn_gguf_arr_int(&a, 2), 3);
    cr_assert_eq(bn_gguf_arr_int(&a, 3), 0, "index past the end gives 0");
    cr_assert_eq(bn_gguf_get_arr(g, "a.f32", &a, &err), 0);
    cr_assert_eq(bn_gguf_arr_float(&a, 0), 0.5);
    cr_assert_eq(bn_gguf_arr_float(&a, 1), -1.5);
    cr_assert_eq(bn_gguf_get_arr(g, "a.bool", &a, &err), 0);
    cr_assert_eq(bn_gguf_arr_int(&a, 0), 0);
    cr_assert_eq(bn_gguf_arr_int(&a, 1), 1);
    cr_assert_eq(bn_gguf_get_arr(g, "a.u16", &a, &err), 0);
    cr_assert_eq(bn_gguf_arr_int(&a, 0), 65535);
    cr_assert_eq(bn_gguf_get_arr(g, "a.str", &a, &err), 0);
    cr_assert_eq(a.type, BN_GGUF_STRING);
    cr_assert_eq(a.n, 3);
    s = bn_gguf_arr_str(&a, 0);
    cr_assert(s.len == 1 && s.ptr[0] == 'a');
    s = bn_gguf_arr_str(&a, 1);
    cr_assert(s.len == 0 && s.ptr != NULL);
    s = bn_gguf_arr_str(&a, 2);
    cr_assert(s.len == strlen("Ġ Ġ") && memcmp(s.ptr, "Ġ Ġ", s.len) == 0);
    cr_assert_null(bn_gguf_arr_str(&a, 3).ptr);
    cr_assert_eq(bn_gguf_arr_int(&a, 0), 0, "wrong element type gives 0");
    cr_assert_eq(bn_gguf_get_arr(g, "a.empty", &a, &err), 0);
    cr_assert_eq(a.n, 0);
    cr_assert_eq(a.type, BN_GGUF_UINT8);

    cr_assert_eq(bn_gguf_get_arr(g, "a.nested", &a, &err), 0);
    cr_assert_eq(a.type, BN_GGUF_ARRAY);
    cr_assert_eq(a.n, 3);
    cr_assert_eq(bn_gguf_arr_sub(&a, 0, &sub), 0);
    cr_assert(sub.type == BN_GGUF_INT64 && sub.n == 2);
    cr_assert(bn_gguf_arr_int(&sub, 0) == 1 && bn_gguf_arr_int(&sub, 1) == 2);
    cr_assert_eq(bn_gguf_arr_sub(&a, 1, &sub), 0);
    cr_assert(sub.type == BN_GGUF_INT64 && sub.n == 0);
    cr_assert_eq(bn_gguf_arr_sub(&a, 2, &sub), 0);
    cr_assert(sub.n == 1 && bn_gguf_arr_int(&sub, 0) == 3);
    cr_assert_eq(bn_gguf_arr_sub(&a, 3, &sub), -1);
    cr_assert_eq(bn_gguf_arr_sub(&sub, 0, &sub2), -1, "not an array of arrays");

    cr_assert_eq(bn_gguf_get_arr(g, "a.deep", &a, &err), 0);
    cr_assert_eq(bn_gguf_arr_sub(&a, 0, &sub), 0);
    cr_assert(sub.type == BN_GGUF_ARRAY && sub.n == 2);
    cr_assert_eq(bn_gguf_arr_sub(&sub, 0, &sub2), 0);
    cr_assert(sub2.type == BN_GGUF_STRING && sub2.n == 1);
    s = bn_gguf_arr_str(&sub2, 0);
    cr_assert(s.len == 1 && s.ptr[0] == 'x');
    cr_assert_eq(bn_gguf_arr_sub(&sub, 1, &sub2), 0);
    cr_assert(sub2.type == BN_GGUF_STRING && sub2.n == 0);
    cr_assert_eq(bn_gguf_arr_sub(&a, 1, &sub), 0);
    cr_assert_eq(bn_gguf_arr_sub(&sub, 0, &sub2), 0);
    cr_assert_eq(sub2.n, 2);
    s = bn_gguf_arr_str(&sub2, 1);
    cr_assert(s.len == 2 && memcmp(s.ptr, "zz", 2) == 0);
    cr_assert_eq(bn_gguf_get_arr(g, "a.empty_nested", &a, &err), 0);
    cr_assert(a.type == BN_GGUF_ARRAY && a.n == 0);

    cr_assert_eq(bn_gguf_n_tensors(g), 2);
    const struct bn_gguf_tensor *v = bn_gguf_tensor(g, 0), *m = bn_gguf_tensor(g, 1);
    cr_assert(v->name.len == 3 && memcmp(v->name.ptr, "vec", 3) == 0);
    cr_assert(v->n_dims == 1 && v->ne[0] == 4 && v->ne[1] == 1 && v->ne[3] == 1);
    cr_assert(v->type == BN_TYPE_F32 && v->bytes == 16);
    cr_assert(m->n_dims == 2 && m->ne[0] == 8 && m->ne[1] == 2);
    cr_assert(m->type == BN_TYPE_F16 && m->bytes == 32);
    cr_assert_eq(bn_gguf_find_tensor(g, "mat"), m);
    cr_assert_eq(bn_gguf_find_tensor(g, "vec"), v);
    cr_assert_null(bn_gguf_find_tensor(g, "ve"));
    cr_assert_null(bn_gguf_tensor(g, 2));
    for (int i = 0; i < 4; i++)
        cr_assert_eq(((const float *)v->data)[i], (float)i);
    for (int i = 0; i < 16; i++)
        cr_assert_eq(bn_f16_to_f32(((const uint16_t *)m->data)[i]), (float)i);
}

Test(gguf, every_value_type_v3)
{
    struct gb b = {0};
    build_rich(&b, 3, 0);
    struct bn_gguf *g;
    void *copy;
    struct bn_err err;
    cr_assert_eq(gb_open(&b, &g, &copy, 0, &err), 0, "%s", err.msg);
    cr_assert_eq(bn_gguf_version(g), 3);
    cr_assert_eq(bn_gguf_alignment(g), 32);
    cr_assert_eq(bn_gguf_data_offset(g) % 32, 0);
    cr_assert_str_eq(bn_gguf_label(g), "t.gguf");
    check_rich(g);
    bn_gguf_close(g);
    free(copy);
    gb_free(&b);
}

Test(gguf, version_2)
{
    struct gb b = {0};
    build_rich(&b, 2, 0);
    struct bn_gguf *g;
    void *copy;
    struct bn_err err;
    cr_assert_eq(gb_open(&b, &g, &copy, 0, &err), 0, "%s", err.msg);
    cr_assert_eq(bn_gguf_version(g), 2);
    check_rich(g);
    bn_gguf_close(g);
    free(copy);
    gb_free(&b);
}

Test(gguf, alignment_64)
{
    struct gb b = {0};
    build_rich(&b, 3, 64);
    struct bn_gguf *g;
    void *copy;
    struct bn_err err;
    cr_assert_eq(gb_open(&b, &g, &copy, 0, &err), 0, "%s", err.msg);
    cr_assert_eq(bn_gguf_alignment(g), 64);
    cr_assert_eq(bn_gguf_data_offset(g) % 64, 0);
    cr_assert_eq(bn_gguf_tensor(g, 1)->offset, 64);
    cr_assert_eq((const uint8_t *)bn_gguf_tensor(g, 0)->data - (const uint8_t *)copy,
                 (ptrdiff_t)bn_gguf_data_offset(g));
    check_rich(g);
    bn_gguf_close(g);
    free(copy);
    gb_free(&b);
}

Test(gguf, header_only_region)
{
    struct gb b = {0};
    build_rich(&b, 3, 0);
    struct bn_gguf *g;
    void *copy;
    struct bn_err err;
    cr_assert_eq(gb_open(&b, &g, &copy, 0, &err), 0, "%s", err.msg);
    uint64_t data_off = bn_gguf_data_offset(g);
    bn_gguf_close(g);
    free(copy);

    /* Without the data section: fails normally, opens with BN_GGUF_HEADER_ONLY. */
    b.n = (size_t)data_off;
    cr_assert_neq(gb_open(&b, &g, &copy, 0, &err), 0);
    cr_assert(strstr(err.msg, "past the end of the file"), "%s", err.msg);
    cr_assert_eq(gb_open(&b, &g, &copy, BN_GGUF_HEADER_ONLY, &err), 0, "%s", err.msg);
    cr_assert_null(bn_gguf_tensor(g, 0)->data);
    cr_assert_eq(bn_gguf_tensor(g, 1)->bytes, 32);
    cr_assert_eq(bn_gguf_n_kv(g), 22);
    bn_gguf_close(g);
    free(copy);
    gb_free(&b);
}

Test(gguf, key_lookup_and_getter_errors)
{
    struct gb b = {0};
    build_rich(&b, 3, 0);
    struct bn_gguf *g;
    void *copy;
    struct bn_err err;
    cr_assert_eq(gb_open(&b, &g, &copy, 0, &err), 0, "%s", err.msg);
    cr_assert_eq(bn_gguf_n_kv(g), 22);
    int64_t i = bn_gguf_find_key(g, "t.str");
    cr_assert_eq(i, 8);
    struct bn_str k = bn_gguf_key(g, i);
    cr_assert(k.len == 5 && memcmp(k.ptr, "t.str", 5) == 0);
    cr_assert_eq(bn_gguf_kv_type(g, i), BN_GGUF_STRING);
    cr_assert_eq(bn_gguf_find_key(g, "t.st"), -1);
    cr_assert_eq(bn_gguf_find_key(g, "t.strx"), -1);
    cr_assert_null(bn_gguf_key(g, 22).ptr);

    uint32_t u32;
    uint64_t u64;
    int64_t i64;
    float f;
    bool bo;
    struct bn_str s;
    struct bn_gguf_arr a;
    cr_assert_eq(bn_gguf_get_u32(g, "nope", &u32, &err), -1);
    cr_assert(strstr(err.msg, "t.gguf: key 'nope' is missing"), "%s", err.msg);
    cr_assert_eq(bn_gguf_get_u32(g, "nope", &u32, NULL), -1);
    cr_assert_eq(bn_gguf_get_u32(g, "t.i8", &u32, &err), -1);
    cr_assert(strstr(err.msg, "-100") && strstr(err.msg, "negative"), "%s", err.msg);
    cr_assert_eq(bn_gguf_get_u32(g, "t.u64", &u32, &err), -1);
    cr_assert(strstr(err.msg, "t.u64"), "%s", err.msg);
    cr_assert_eq(bn_gguf_get_i64(g, "t.u64", &i64, &err), -1);
    cr_assert_eq(bn_gguf_get_u64(g, "t.u64", &u64, &err), 0);
    cr_assert_eq(bn_gguf_get_u32(g, "t.str", &u32, &err), -1);
    cr_assert(strstr(err.msg, "key 't.str' has type string; expected an integer"), "%s", err.msg);
    cr_assert_eq(bn_gguf_get_f32(g, "t.u32", &f, &err), -1);
    cr_assert_eq(bn_gguf_get_bool(g, "t.u8", &bo, &err), -1);
    cr_assert_eq(bn_gguf_get_str(g, "t.bool", &s, &err), -1);
    cr_assert_eq(bn_gguf_get_arr(g, "t.str", &a, &err), -1);
    cr_assert(strstr(err.msg, "expected array"), "%s", err.msg);
    cr_assert_eq(bn_gguf_get_u64(g, "a.i32", &u64, &err), -1);
    bn_gguf_close(g);
    free(copy);
    gb_free(&b);
}

/* Many keys and a large string array: hash lookup of each key, O(1) access of
 * each string. */
Test(gguf, many_keys_and_strings)
{
    enum { N_KEYS = 3000, N_STR = 50000 };
    struct gb b = {0};
    gb_header(&b, 3, 0, N_KEYS + 1);
    char key[64], str[64];
    for (int i = 0; i < N_KEYS; i++) {
        snprintf(key, sizeof key, "k.%d", i);
        gb_kv_u32(&b, key, (uint32_t)i * 7u);
    }
    gb_str(&b, "tokens");
    gb_u32(&b, BN_GGUF_ARRAY);
    gb_u32(&b, BN_GGUF_STRING);
    gb_u64(&b, N_STR);
    for (int i = 0; i < N_STR; i++) {
        snprintf(str, sizeof str, "tok%d", i);
        gb_str(&b, str);
    }
    struct bn_gguf *g;
    void *copy;
    struct bn_err err;
    cr_assert_eq(gb_open(&b, &g, &copy, 0, &err), 0, "%s", err.msg);
    for (int i = N_KEYS - 1; i >= 0; i--) {
        snprintf(key, sizeof key, "k.%d", i);
        uint32_t v;
        cr_assert_eq(bn_gguf_find_key(g, key), i);
        cr_assert_eq(bn_gguf_get_u32(g, key, &v, &err), 0);
        cr_assert_eq(v, (uint32_t)i * 7u);
    }
    struct bn_gguf_arr a;
    cr_assert_eq(bn_gguf_get_arr(g, "tokens", &a, &err), 0);
    cr_assert_eq(a.n, N_STR);
    cr_assert_eq(a.kv, N_KEYS);
    for (int i = N_STR - 1; i >= 0; i -= 7) {
        snprintf(str, sizeof str, "tok%d", i);
        struct bn_str s = bn_gguf_arr_str(&a, (uint64_t)i);
        cr_assert(s.len == strlen(str) && memcmp(s.ptr, str, s.len) == 0);
    }
    cr_assert_eq(bn_gguf_n_tensors(g), 0);
    bn_gguf_close(g);
    free(copy);
    gb_free(&b);
}

Test(gguf, map_file_errors)
{
    struct bn_mapped_file m;
    struct bn_err err;
    cr_assert_eq(bn_map_file("/nonexistent/x.gguf", &m, &err), -1);
    cr_assert(strstr(err.msg, "/nonexistent/x.gguf: cannot open"), "%s", err.msg);
    cr_assert_eq(bn_map_file("/", &m, &err), -1);
    cr_assert(strstr(err.msg, "not a regular file"), "%s", err.msg);
    const char *tmp = getenv("TMPDIR");
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/bn-gguf-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    cr_assert(mkdtemp(dir), "mkdtemp %s", dir);
    snprintf(path, sizeof path, "%s/empty.gguf", dir);
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    fclose(f);
    cr_assert_eq(bn_map_file(path, &m, &err), -1);
    cr_assert(strstr(err.msg, "empty"), "%s", err.msg);
    f = fopen(path, "wb");
    fputs("GGUF", f);
    fclose(f);
    cr_assert_eq(bn_map_file(path, &m, &err), 0, "%s", err.msg);
    cr_assert_eq(m.size, 4);
    cr_assert_eq(memcmp(m.base, "GGUF", 4), 0);
    bn_unmap_file(&m);
    cr_assert_null(m.base);
    bn_unmap_file(&m); /* twice is harmless */
    unlink(path);
    rmdir(dir);
}

/* ------------------------------------------------------------------------------
 * Reference fixtures (../shared/data/ref, README there)
 * --------------------------------------------------------------------------- */
struct fixture_shape {
    const char *file;
    const char *arch;
    uint32_t layers, hidden, ffn, heads, kv_heads, ctx;
    float theta;
    enum bn_type ternary, embd;
};

static const struct fixture_shape fixtures[] = {
    {"tinyA-i2s.gguf", "bitnet-25", 2, 256, 640, 4, 2, 256, 10000.f, BN_TYPE_I2_S, BN_TYPE_F16},
    {"tinyA-i2s.bitnet-b1.58.gguf", "bitnet-b1.58", 2, 256, 640, 4, 2, 256, 10000.f, BN_TYPE_I2_S, BN_TYPE_F16},
    {"tinyB-i2s.gguf", "bitnet-25", 4, 512, 1536, 4, 1, 512, 500000.f, BN_TYPE_I2_S, BN_TYPE_F16},
    {"tinyB-i2s.bitnet-b1.58.gguf", "bitnet-b1.58", 4, 512, 1536, 4, 1, 512, 500000.f, BN_TYPE_I2_S, BN_TYPE_F16},
    {"tinyB-i2s-embq6k.gguf", "bitnet-25", 4, 512, 1536, 4, 1, 512, 500000.f, BN_TYPE_I2_S, BN_TYPE_Q6_K},
    {"tinyB-i2s-embq6k.bitnet-b1.58.gguf", "bitnet-b1.58", 4, 512, 1536, 4, 1, 512, 500000.f, BN_TYPE_I2_S, BN_TYPE_Q6_K},
    {"tinyB-tq1_0.gguf", "bitnet-25", 4, 512, 1536, 4, 1, 512, 500000.f, BN_TYPE_TQ1_0, BN_TYPE_F16},
    {"tinyB-tq2_0.gguf", "bitnet-25", 4, 512, 1536, 4, 1, 512, 500000.f, BN_TYPE_TQ2_0, BN_TYPE_F16},
};

static void expect_u32(const struct bn_gguf *g, const char *arch, const char *suffix, uint32_t want)
{
    char key[128];
    struct bn_err err;
    uint32_t v;
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    cr_assert_eq(bn_gguf_get_u32(g, key, &v, &err), 0, "%s", err.msg);
    cr_assert_eq(v, want, "%s: %s = %u, want %u", bn_gguf_label(g), key, v, want);
}

static void expect_tensor(const struct bn_gguf *g, const char *name, enum bn_type type, int64_t ne0,
                          int64_t ne1)
{
    const struct bn_gguf_tensor *t = bn_gguf_find_tensor(g, name);
    cr_assert_not_null(t, "%s: no tensor %s", bn_gguf_label(g), name);
    cr_assert_eq(t->type, type, "%s: %s has type %s", bn_gguf_label(g), name, bn_type_name(t->type));
    cr_assert_eq(t->n_dims, ne1 ? 2u : 1u, "%s: %s", bn_gguf_label(g), name);
    cr_assert(t->ne[0] == ne0 && t->ne[1] == (ne1 ? ne1 : 1), "%s: %s is [%lld, %lld]",
              bn_gguf_label(g), name, (long long)t->ne[0], (long long)t->ne[1]);
    cr_assert_not_null(t->data);
}

Test(gguf, reference_fixtures)
{
    const char *data = getenv("BITNET_TEST_DATA");
    char path[1024];
    if (!data || !*data) {
        cr_skip_test("BITNET_TEST_DATA is not set: the reference GGUF files (../shared/data/ref) "
                     "are absent; configure --with-test-data=DIR to run this test");
    }
    snprintf(path, sizeof path, "%s/ref/%s", data, fixtures[0].file);
    if (access(path, R_OK) != 0)
        cr_skip_test("%s is absent: the reference GGUF files are not in the test data folder", path);

    for (size_t f = 0; f < sizeof fixtures / sizeof fixtures[0]; f++) {
        const struct fixture_shape *fx = &fixtures[f];
        snprintf(path, sizeof path, "%s/ref/%s", data, fx->file);
        struct bn_mapped_file m;
        struct bn_gguf *g;
        struct bn_err err;
        cr_assert_eq(bn_map_file(path, &m, &err), 0, "%s", err.msg);
        cr_assert_eq(bn_gguf_open(&g, m.base, m.size, path, 0, &err), 0, "%s", err.msg);
        cr_assert_eq(bn_gguf_version(g), 3);

        struct bn_str s;
        cr_assert_eq(bn_gguf_get_str(g, "general.architecture", &s, &err), 0, "%s", err.msg);
        cr_assert(s.len == strlen(fx->arch) && memcmp(s.ptr, fx->arch, s.len) == 0, "%s", path);
        const char *a = fx->arch;
        expect_u32(g, a, "vocab_size", 1003);
        expect_u32(g, a, "context_length", fx->ctx);
        expect_u32(g, a, "embedding_length", fx->hidden);
        expect_u32(g, a, "block_count", fx->layers);
        expect_u32(g, a, "feed_forward_length", fx->ffn);
        expect_u32(g, a, "attention.head_count", fx->heads);
        expect_u32(g, a, "attention.head_count_kv", fx->kv_heads);
        expect_u32(g, a, "rope.dimension_count", fx->hidden / fx->heads);
        char key[128];
        float eps, theta;
        snprintf(key, sizeof key, "%s.attention.layer_norm_rms_epsilon", a);
        cr_assert_eq(bn_gguf_get_f32(g, key, &eps, &err), 0, "%s", err.msg);
        cr_assert_float_eq(eps, 1e-5f, 1e-12f);
        snprintf(key, sizeof key, "%s.rope.freq_base", a);
        cr_assert_eq(bn_gguf_get_f32(g, key, &theta, &err), 0, "%s", err.msg);
        cr_assert_eq(theta, fx->theta);

        cr_assert_eq(bn_gguf_get_str(g, "tokenizer.ggml.model", &s, &err), 0, "%s", err.msg);
        cr_assert(s.len == 4 && memcmp(s.ptr, "gpt2", 4) == 0);
        cr_assert_eq(bn_gguf_get_str(g, "tokenizer.ggml.pre", &s, &err), 0, "%s", err.msg);
        cr_assert(s.len == 9 && memcmp(s.ptr, "llama-bpe", 9) == 0);
        struct bn_gguf_arr tok, types, merges;
        cr_assert_eq(bn_gguf_get_arr(g, "tokenizer.ggml.tokens", &tok, &err), 0, "%s", err.msg);
        cr_assert(tok.type == BN_GGUF_STRING && tok.n == 1003);
        s = bn_gguf_arr_str(&tok, 1000);
        cr_assert(s.len == 17 && memcmp(s.ptr, "<|begin_of_text|>", 17) == 0);
        s = bn_gguf_arr_str(&tok, 1002);
        cr_assert(s.len == 10 && memcmp(s.ptr, "<|eot_id|>", 10) == 0);
        cr_assert_eq(bn_gguf_get_arr(g, "tokenizer.ggml.token_type", &types, &err), 0, "%s", err.msg);
        cr_assert_eq(types.n, 1003);
        cr_assert_eq(bn_gguf_arr_int(&types, 5), 1);
        cr_assert_eq(bn_gguf_arr_int(&types, 1001), 3);
        cr_assert_eq(bn_gguf_get_arr(g, "tokenizer.ggml.merges", &merges, &err), 0, "%s", err.msg);
        cr_assert(merges.type == BN_GGUF_STRING && merges.n == 1044);
        uint32_t v;
        cr_assert_eq(bn_gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &v, &err), 0);
        cr_assert_eq(v, 1000);
        cr_assert_eq(bn_gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &v, &err), 0);
        cr_assert_eq(v, 1001);
        bool add_bos;
        cr_assert_eq(bn_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &add_bos, &err), 0);
        cr_assert(add_bos);

        /* 11 tensors per layer + token_embd + output_norm, no output.weight (tied). */
        cr_assert_eq(bn_gguf_n_tensors(g), 11 * (int64_t)fx->layers + 2, "%s", path);
        int64_t h = fx->hidden, ff = fx->ffn, kv = (int64_t)fx->hidden / fx->heads * fx->kv_heads;
        expect_tensor(g, "token_embd.weight", fx->embd, h, 1003);
        expect_tensor(g, "output_norm.weight", BN_TYPE_F32, h, 0);
        cr_assert_null(bn_gguf_find_tensor(g, "output.weight"));
        for (uint32_t l = 0; l < fx->layers; l++) {
            char n[BN_GGUF_MAX_NAME];
#define T(suffix, type, a0, a1)                                         \
    do {                                                                \
        snprintf(n, sizeof n, "blk.%u.%s.weight", l, suffix);           \
        expect_tensor(g, n, type, a0, a1);                              \
    } while (0)
            T("attn_norm", BN_TYPE_F32, h, 0);
            T("attn_q", fx->ternary, h, h);
            T("attn_k", fx->ternary, h, kv);
            T("attn_v", fx->ternary, h, kv);
            T("attn_output", fx->ternary, h, h);
            T("attn_sub_norm", BN_TYPE_F32, h, 0);
            T("ffn_norm", BN_TYPE_F32, h, 0);
            T("ffn_gate", fx->ternary, h, ff);
            T("ffn_up", fx->ternary, h, ff);
            T("ffn_down", fx->ternary, ff, h);
            T("ffn_sub_norm", BN_TYPE_F32, ff, 0);
#undef T
        }
        /* I2_S: n/4 + 32 bytes and a positive per-tensor scale in the tail. */
        const struct bn_gguf_tensor *q = bn_gguf_find_tensor(g, "blk.0.attn_q.weight");
        if (fx->ternary == BN_TYPE_I2_S) {
            cr_assert_eq(q->bytes, (uint64_t)(h * h / 4 + 32));
            float sc = bn_tensor_scale(q->type, q->data, q->ne[1], q->ne[0]);
            cr_assert(sc > 0 && isfinite(sc), "scale %g", sc);
        }
        /* The data section ends at the end of the file (after the last tensor). */
        const struct bn_gguf_tensor *last = bn_gguf_tensor(g, bn_gguf_n_tensors(g) - 1);
        cr_assert_leq(bn_gguf_data_offset(g) + last->offset + last->bytes, m.size);
        bn_gguf_close(g);
        bn_unmap_file(&m);
    }
}
