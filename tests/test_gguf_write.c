/* tests/test_gguf_write.c — GGUF writer: round trips through the reader, alignment,
 * copying values and whole files, and every error path. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bitnet.h"
#include "test_gguf_build.h"

static char tmpdir[512];

static void make_tmpdir(void)
{
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/bn-gguf-write-XXXXXX", t && *t ? t : "/tmp");
    cr_assert(mkdtemp(tmpdir), "mkdtemp %s", tmpdir);
}

static void remove_tmpdir(void)
{
    DIR *d = opendir(tmpdir);
    if (!d)
        return;
    struct dirent *e;
    char p[1024];
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
            unlink(p);
        }
    }
    closedir(d);
    rmdir(tmpdir);
}

TestSuite(gguf_write, .init = make_tmpdir, .fini = remove_tmpdir);

static const char *tmp_path(const char *name)
{
    static char p[1024];
    snprintf(p, sizeof p, "%s/%s", tmpdir, name);
    return p;
}

struct opened {
    struct bn_mapped_file m;
    struct bn_gguf *g;
};

static void open_file(struct opened *o, const char *path)
{
    struct bn_err err;
    cr_assert_eq(bn_map_file(path, &o->m, &err), 0, "%s", err.msg);
    cr_assert_eq(bn_gguf_open(&o->g, o->m.base, o->m.size, path, 0, &err), 0, "%s", err.msg);
}

static void close_file(struct opened *o)
{
    bn_gguf_close(o->g);
    bn_unmap_file(&o->m);
}

/* Fill callback: value i of a float tensor is i * step, quantized by the traits. */
struct ramp {
    enum bn_type type;
    int64_t rows, cols;
    float step;
    int calls;
};
static int fill_ramp(void *ctx, void *dst, uint64_t bytes, struct bn_err *err)
{
    struct ramp *r = ctx;
    r->calls++;
    int64_t n = r->rows * r->cols;
    float *src = malloc((size_t)n * sizeof *src);
    cr_assert(src);
    for (int64_t i = 0; i < n; i++)
        src[i] = (float)i * r->step;
    size_t got = bn_type_traits(r->type)->quantize(src, dst, r->rows, r->cols);
    free(src);
    if (got != bytes)
        return bn_errf(err, "quantized %zu bytes, expected %llu", got, (unsigned long long)bytes);
    return 0;
}

static int fill_fails(void *ctx, void *dst, uint64_t bytes, struct bn_err *err)
{
    (void)ctx;
    (void)dst;
    (void)bytes;
    return bn_errf(err, "generator ran out of ideas");
}

static bool str_is(struct bn_str s, const char *want)
{
    return s.ptr && s.len == strlen(want) && memcmp(s.ptr, want, s.len) == 0;
}

Test(gguf_write, round_trip_every_type)
{
    struct bn_gguf_writer *w = bn_gguf_writer_new();
    cr_assert(w);
    cr_assert_eq(bn_gguf_set_str(w, "general.architecture", "bitnet-b1.58"), 0);
    cr_assert_eq(bn_gguf_set_u32(w, "s.u32", 4000000000u), 0);
    cr_assert_eq(bn_gguf_set_i32(w, "s.i32", -7), 0);
    cr_assert_eq(bn_gguf_set_u64(w, "s.u64", UINT64_MAX), 0);
    cr_assert_eq(bn_gguf_set_f32(w, "s.f32", 1e-5f), 0);
    cr_assert_eq(bn_gguf_set_bool(w, "s.bool", true), 0);
    cr_assert_eq(bn_gguf_set_str(w, "s.empty", ""), 0);
    const uint8_t u8s[] = {0, 255};
    const int8_t i8s[] = {-128, 127};
    const uint16_t u16s[] = {65535};
    const int16_t i16s[] = {-32768, 1};
    const uint32_t u32s[] = {1, 2, 3};
    const int32_t i32s[] = {-1, 5};
    const float f32s[] = {0.25f, -3.0f};
    const uint8_t bools[] = {1, 0, 1};
    const uint64_t u64s[] = {1ull << 40};
    const int64_t i64s[] = {INT64_MIN, INT64_MAX};
    const double f64s[] = {1.0 / 3.0};
    bn_gguf_set_arr(w, "a.u8", BN_GGUF_UINT8, u8s, 2);
    bn_gguf_set_arr(w, "a.i8", BN_GGUF_INT8, i8s, 2);
    bn_gguf_set_arr(w, "a.u16", BN_GGUF_UINT16, u16s, 1);
    bn_gguf_set_arr(w, "a.i16", BN_GGUF_INT16, i16s, 2);
    bn_gguf_set_arr(w, "a.u32", BN_GGUF_UINT32, u32s, 3);
    bn_gguf_set_arr(w, "a.i32", BN_GGUF_INT32, i32s, 2);
    bn_gguf_set_arr(w, "a.f32", BN_GGUF_FLOAT32, f32s, 2);
    bn_gguf_set_arr(w, "a.bool", BN_GGUF_BOOL, bools, 3);
    bn_gguf_set_arr(w, "a.u64", BN_GGUF_UINT64, u64s, 1);
    bn_gguf_set_arr(w, "a.i64", BN_GGUF_INT64, i64s, 2);
    bn_gguf_set_arr(w, "a.f64", BN_GGUF_FLOAT64, f64s, 1);
    bn_gguf_set_arr(w, "a.empty", BN_GGUF_INT32, NULL, 0);
    const char *strs[] = {"Ġthe", "", "<|eot_id|>"};
    bn_gguf_set_arr_str(w, "a.str", strs, 3);
    bn_gguf_set_arr_str(w, "a.str_empty", NULL, 0);

    /* tensors: from memory and from callbacks, several formats */
    float vec[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    struct ramp r16 = {BN_TYPE_F16, 3, 16, 0.5f, 0};
    struct ramp rq8 = {BN_TYPE_Q8_0, 2, 64, 0.01f, 0};
    cr_assert_eq(bn_gguf_add_tensor_data(w, "vec", BN_TYPE_F32, 1, (int64_t[]){8}, vec), 0);
    cr_assert_eq(bn_gguf_add_tensor(w, "h16", BN_TYPE_F16, 2, (int64_t[]){16, 3}, fill_ramp, &r16), 0);
    cr_assert_eq(bn_gguf_add_tensor(w, "q8", BN_TYPE_Q8_0, 3, (int64_t[]){64, 1, 2}, fill_ramp, &rq8), 0);
    /* I2_S: exact ternary values {-s, 0, s} pack exactly */
    float tern[128 * 2];
    for (int i = 0; i < 256; i++)
        tern[i] = (float)((i % 3) - 1) * 0.375f;
    uint8_t i2s[128 * 2 / 4 + 32];
    cr_assert_eq(bn_type_traits(BN_TYPE_I2_S)->quantize(tern, i2s, 2, 128), sizeof i2s);
    cr_assert_eq(bn_gguf_add_tensor_data(w, "tern", BN_TYPE_I2_S, 2, (int64_t[]){128, 2}, i2s), 0);

    struct bn_err err;
    const char *path = tmp_path("rt.gguf");
    cr_assert_eq(bn_gguf_writer_write(w, path, &err), 0, "%s", err.msg);
    cr_assert_eq(r16.calls, 1);
    cr_assert_eq(rq8.calls, 1);
    bn_gguf_writer_free(w);
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    cr_assert_neq(access(tmp, F_OK), 0, "PATH.tmp left behind");

    struct opened o;
    open_file(&o, path);
    const struct bn_gguf *g = o.g;
    cr_assert_eq(bn_gguf_version(g), 3);
    cr_assert_eq(bn_gguf_alignment(g), 32);
    cr_assert_eq(bn_gguf_find_key(g, "general.alignment"), -1, "default alignment is not written");
    /* insertion order */
    const char *order[] = {"general.architecture", "s.u32", "s.i32", "s.u64", "s.f32", "s.bool",
                           "s.empty", "a.u8", "a.i8", "a.u16", "a.i16", "a.u32", "a.i32", "a.f32",
                           "a.bool", "a.u64", "a.i64", "a.f64", "a.empty", "a.str", "a.str_empty"};
    cr_assert_eq(bn_gguf_n_kv(g), (int64_t)(sizeof order / sizeof order[0]));
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        cr_assert(str_is(bn_gguf_key(g, (int64_t)i), order[i]), "key %zu", i);

    uint32_t u32;
    int64_t i64;
    uint64_t u64;
    float f;
    bool bo;
    struct bn_str s;
    cr_assert(bn_gguf_get_u32(g, "s.u32", &u32, &err) == 0 && u32 == 4000000000u);
    cr_assert(bn_gguf_get_i64(g, "s.i32", &i64, &err) == 0 && i64 == -7);
    cr_assert_eq(bn_gguf_kv_type(g, bn_gguf_find_key(g, "s.i32")), BN_GGUF_INT32);
    cr_assert(bn_gguf_get_u64(g, "s.u64", &u64, &err) == 0 && u64 == UINT64_MAX);
    cr_assert(bn_gguf_get_f32(g, "s.f32", &f, &err) == 0 && f == 1e-5f);
    cr_assert(bn_gguf_get_bool(g, "s.bool", &bo, &err) == 0 && bo);
    cr_assert(bn_gguf_get_str(g, "s.empty", &s, &err) == 0 && s.len == 0);

    struct bn_gguf_arr a;
    cr_assert(bn_gguf_get_arr(g, "a.u8", &a, &err) == 0 && a.type == BN_GGUF_UINT8 && a.n == 2);
    cr_assert(bn_gguf_arr_int(&a, 1) == 255);
    cr_assert(bn_gguf_get_arr(g, "a.i8", &a, &err) == 0 && bn_gguf_arr_int(&a, 0) == -128);
    cr_assert(bn_gguf_get_arr(g, "a.u16", &a, &err) == 0 && bn_gguf_arr_int(&a, 0) == 65535);
    cr_assert(bn_gguf_get_arr(g, "a.i16", &a, &err) == 0 && bn_gguf_arr_int(&a, 0) == -32768);
    cr_assert(bn_gguf_get_arr(g, "a.u32", &a, &err) == 0 && a.n == 3 && bn_gguf_arr_int(&a, 2) == 3);
    cr_assert(bn_gguf_get_arr(g, "a.i32", &a, &err) == 0 && bn_gguf_arr_int(&a, 0) == -1);
    cr_assert(bn_gguf_get_arr(g, "a.f32", &a, &err) == 0 && bn_gguf_arr_float(&a, 1) == -3.0);
    cr_assert(bn_gguf_get_arr(g, "a.bool", &a, &err) == 0 && a.type == BN_GGUF_BOOL);
    cr_assert(bn_gguf_arr_int(&a, 0) == 1 && bn_gguf_arr_int(&a, 1) == 0);
    cr_assert(bn_gguf_get_arr(g, "a.u64", &a, &err) == 0 && bn_gguf_arr_int(&a, 0) == 1ll << 40);
    cr_assert(bn_gguf_get_arr(g, "a.i64", &a, &err) == 0 && bn_gguf_arr_int(&a, 0) == INT64_MIN);
    cr_assert(bn_gguf_arr_int(&a, 1) == INT64_MAX);
    cr_assert(bn_gguf_get_arr(g, "a.f64", &a, &err) == 0 && bn_gguf_arr_float(&a, 0) == 1.0 / 3.0);
    cr_assert(bn_gguf_get_arr(g, "a.empty", &a, &err) == 0 && a.n == 0 && a.type == BN_GGUF_INT32);
    cr_assert(bn_gguf_get_arr(g, "a.str", &a, &err) == 0 && a.n == 3);
    for (int i = 0; i < 3; i++)
        cr_assert(str_is(bn_gguf_arr_str(&a, (uint64_t)i), strs[i]));
    cr_assert(bn_gguf_get_arr(g, "a.str_empty", &a, &err) == 0 && a.n == 0 && a.type == BN_GGUF_STRING);

    /* tensors: order, shapes, offsets aligned, bytes as written */
    cr_assert_eq(bn_gguf_n_tensors(g), 4);
    const char *tnames[] = {"vec", "h16", "q8", "tern"};
    for (int i = 0; i < 4; i++) {
        const struct bn_gguf_tensor *t = bn_gguf_tensor(g, i);
        cr_assert(str_is(t->name, tnames[i]));
        cr_assert_eq(t->offset % 32, 0);
    }
    const struct bn_gguf_tensor *t = bn_gguf_find_tensor(g, "vec");
    cr_assert(t->type == BN_TYPE_F32 && t->n_dims == 1 && memcmp(t->data, vec, sizeof vec) == 0);
    t = bn_gguf_find_tensor(g, "h16");
    cr_assert(t->type == BN_TYPE_F16 && t->n_dims == 2 && t->ne[0] == 16 && t->ne[1] == 3);
    for (int i = 0; i < 48; i++)
        cr_assert_eq(bn_f16_to_f32(((const uint16_t *)t->data)[i]), (float)i * 0.5f);
    t = bn_gguf_find_tensor(g, "q8");
    cr_assert(t->type == BN_TYPE_Q8_0 && t->n_dims == 3 && t->ne[2] == 2 && t->bytes == 4 * 34);
    float back[128];
    bn_type_traits(BN_TYPE_Q8_0)->row_to_float(t->data, back, 128, 1.0f);
    for (int i = 0; i < 128; i++)
        cr_assert_float_eq(back[i], (float)i * 0.01f, 0.01f);
    t = bn_gguf_find_tensor(g, "tern");
    cr_assert(t->type == BN_TYPE_I2_S && t->bytes == sizeof i2s && memcmp(t->data, i2s, sizeof i2s) == 0);
    cr_assert_eq(bn_tensor_scale(t->type, t->data, 2, 128), 0.375f);
    close_file(&o);
}

/* Copy every value of a hand-built file (all scalar types, nested arrays) and its
 * tensors with bn_gguf_set_from / add_tensor_data: the written file is the same
 * bytes (both use v3, alignment 32, tensors packed in order). */
Test(gguf_write, copy_is_byte_identical)
{
    struct gb b = {0};
    gb_header(&b, 3, 2, 16);
    gb_str(&b, "u8"); gb_u32(&b, BN_GGUF_UINT8); gb_u8(&b, 7);
    gb_str(&b, "i8"); gb_u32(&b, BN_GGUF_INT8); gb_u8(&b, 0x80);
    gb_str(&b, "u16"); gb_u32(&b, BN_GGUF_UINT16); gb_u16(&b, 513);
    gb_str(&b, "i16"); gb_u32(&b, BN_GGUF_INT16); gb_u16(&b, 0xffff);
    gb_kv_u32(&b, "u32", 9);
    gb_str(&b, "i32"); gb_u32(&b, BN_GGUF_INT32); gb_u32(&b, 0xfffffffe);
    gb_str(&b, "f32"); gb_u32(&b, BN_GGUF_FLOAT32); gb_f32(&b, 2.5f);
    gb_str(&b, "bool"); gb_u32(&b, BN_GGUF_BOOL); gb_u8(&b, 0);
    gb_kv_str(&b, "str", "");
    gb_str(&b, "u64"); gb_u32(&b, BN_GGUF_UINT64); gb_u64(&b, 1ull << 50);
    gb_str(&b, "i64"); gb_u32(&b, BN_GGUF_INT64); gb_u64(&b, (uint64_t)-3);
    gb_str(&b, "f64"); gb_u32(&b, BN_GGUF_FLOAT64); gb_f64(&b, -0.125);
    /* [["p", ""], [[1.5]]] */
    gb_str(&b, "nest"); gb_u32(&b, BN_GGUF_ARRAY); gb_u32(&b, BN_GGUF_ARRAY); gb_u64(&b, 2);
    gb_u32(&b, BN_GGUF_STRING); gb_u64(&b, 2); gb_str(&b, "p"); gb_str(&b, "");
    gb_u32(&b, BN_GGUF_ARRAY); gb_u64(&b, 1); gb_u32(&b, BN_GGUF_FLOAT32); gb_u64(&b, 1); gb_f32(&b, 1.5f);
    gb_str(&b, "empty"); gb_u32(&b, BN_GGUF_ARRAY); gb_u32(&b, BN_GGUF_ARRAY); gb_u64(&b, 0);
    gb_str(&b, "strs"); gb_u32(&b, BN_GGUF_ARRAY); gb_u32(&b, BN_GGUF_STRING); gb_u64(&b, 2);
    gb_str(&b, "Ġa"); gb_str(&b, "b c");
    gb_kv_str(&b, "general.name", "copy me");
    gb_tensor(&b, "x", 1, (uint64_t[]){40}, BN_TYPE_F32, 0);    /* 160 bytes */
    gb_tensor(&b, "y", 2, (uint64_t[]){32, 2}, BN_TYPE_Q8_0, 160); /* 68 bytes */
    gb_pad(&b, 32);
    for (int i = 0; i < 40; i++)
        gb_f32(&b, (float)i - 20.0f);
    for (int i = 0; i < 68; i++)
        gb_u8(&b, (uint8_t)(i * 37));
    gb_pad(&b, 32); /* the writer pads after every tensor, like ggml */

    struct bn_gguf *src;
    void *copy;
    struct bn_err err;
    cr_assert_eq(gb_open(&b, &src, &copy, 0, &err), 0, "%s", err.msg);
    struct bn_gguf_writer *w = bn_gguf_writer_new();
    for (int64_t i = 0; i < bn_gguf_n_kv(src); i++)
        cr_assert_eq(bn_gguf_set_from(w, src, i), 0);
    for (int64_t i = 0; i < bn_gguf_n_tensors(src); i++) {
        const struct bn_gguf_tensor *t = bn_gguf_tensor(src, i);
        char name[BN_GGUF_MAX_NAME];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        cr_assert_eq(bn_gguf_add_tensor_data(w, name, t->type, t->n_dims, t->ne, t->data), 0);
    }
    const char *path = tmp_path("copy.gguf");
    cr_assert_eq(bn_gguf_writer_write(w, path, &err), 0, "%s", err.msg);
    bn_gguf_writer_free(w);
    bn_gguf_close(src);
    free(copy);

    struct bn_mapped_file m;
    cr_assert_eq(bn_map_file(path, &m, &err), 0, "%s", err.msg);
    cr_assert_eq(m.size, b.n);
    cr_assert_eq(memcmp(m.base, b.p, b.n), 0, "copied file differs from its source");
    bn_unmap_file(&m);
    gb_free(&b);
}

Test(gguf_write, alignment_64_and_replace_keeps_position)
{
    struct bn_gguf_writer *w = bn_gguf_writer_new();
    bn_gguf_set_str(w, "first", "a");
    bn_gguf_set_u32(w, "second", 1);
    bn_gguf_writer_set_alignment(w, 64);
    bn_gguf_set_str(w, "first", "replaced"); /* keeps position 0 */
    bn_gguf_set_u64(w, "second", 2);         /* may change type too */
    float v[3] = {1, 2, 3};
    bn_gguf_add_tensor_data(w, "a", BN_TYPE_F32, 1, (int64_t[]){3}, v);
    bn_gguf_add_tensor_data(w, "b", BN_TYPE_F32, 1, (int64_t[]){3}, v);
    struct bn_err err;
    const char *path = tmp_path("a64.gguf");
    cr_assert_eq(bn_gguf_writer_write(w, path, &err), 0, "%s", err.msg);
    /* the writer may be written again */
    cr_assert_eq(bn_gguf_writer_write(w, tmp_path("again.gguf"), &err), 0, "%s", err.msg);
    bn_gguf_writer_free(w);

    struct opened o;
    open_file(&o, path);
    cr_assert_eq(bn_gguf_alignment(o.g), 64);
    cr_assert_eq(bn_gguf_n_kv(o.g), 3);
    cr_assert(str_is(bn_gguf_key(o.g, 0), "first"));
    cr_assert(str_is(bn_gguf_key(o.g, 1), "second"));
    cr_assert(str_is(bn_gguf_key(o.g, 2), "general.alignment"));
    struct bn_str s;
    cr_assert(bn_gguf_get_str(o.g, "first", &s, &err) == 0 && str_is(s, "replaced"));
    cr_assert_eq(bn_gguf_kv_type(o.g, 1), BN_GGUF_UINT64);
    cr_assert_eq(bn_gguf_data_offset(o.g) % 64, 0);
    cr_assert_eq(bn_gguf_tensor(o.g, 1)->offset, 64);
    cr_assert_eq(o.m.size, bn_gguf_data_offset(o.g) + 128);
    close_file(&o);
}

/* Writer misuse: the first error is kept and reported by the write, and no file
 * (nor PATH.tmp) is left behind. */
static void expect_write_error(struct bn_gguf_writer *w, const char *want)
{
    struct bn_err err;
    const char *path = tmp_path("bad.gguf");
    cr_assert_eq(bn_gguf_writer_write(w, path, &err), -1, "wrote a bad file (want '%s')", want);
    cr_assert(strstr(err.msg, want), "error '%s' lacks '%s'", err.msg, want);
    cr_assert(strstr(err.msg, path), "error '%s' does not name the file", err.msg);
    cr_assert_neq(access(path, F_OK), 0);
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    cr_assert_neq(access(tmp, F_OK), 0, "%s left behind", tmp);
    bn_gguf_writer_free(w);
}

Test(gguf_write, errors)
{
    struct bn_gguf_writer *w;
    float v[256] = {0};

    w = bn_gguf_writer_new();
    bn_gguf_writer_set_alignment(w, 3);
    expect_write_error(w, "alignment 3 is not a non-zero power of two");

    w = bn_gguf_writer_new();
    bn_gguf_writer_set_alignment(w, 0);
    expect_write_error(w, "alignment 0");

    w = bn_gguf_writer_new();
    bn_gguf_set_u32(w, "general.alignment", 48); /* set directly: checked at write */
    expect_write_error(w, "'general.alignment' is 48");

    w = bn_gguf_writer_new();
    cr_assert_eq(bn_gguf_add_tensor_data(w, "t", BN_TYPE_F32, 1, (int64_t[]){4}, v), 0);
    cr_assert_eq(bn_gguf_add_tensor_data(w, "t", BN_TYPE_F32, 1, (int64_t[]){4}, v), -1);
    bn_gguf_add_tensor_data(w, "u", BN_TYPE_F32, 0, (int64_t[]){4}, v); /* later errors: first kept */
    expect_write_error(w, "tensor 't' added twice");

    w = bn_gguf_writer_new();
    char name[80];
    memset(name, 'x', 64);
    name[64] = '\0';
    cr_assert_eq(bn_gguf_add_tensor_data(w, name, BN_TYPE_F32, 1, (int64_t[]){4}, v), -1);
    expect_write_error(w, "a tensor name must be 1..63 bytes");

    w = bn_gguf_writer_new();
    cr_assert_eq(bn_gguf_add_tensor_data(w, "q", BN_TYPE_Q8_0, 1, (int64_t[]){33}, v), -1);
    expect_write_error(w, "tensor 'q': shape [33, 1] is not valid for type Q8_0");

    w = bn_gguf_writer_new();
    cr_assert_eq(bn_gguf_add_tensor_data(w, "z", BN_TYPE_F32, 2, (int64_t[]){4, 0}, v), -1);
    expect_write_error(w, "ne[1] = 0 must be >= 1");

    w = bn_gguf_writer_new();
    cr_assert_eq(bn_gguf_add_tensor_data(w, "d", BN_TYPE_F32, 5, (int64_t[]){1, 1, 1, 1, 1}, v), -1);
    expect_write_error(w, "n_dims 5 must be 1..4");

    w = bn_gguf_writer_new();
    cr_assert_eq(bn_gguf_add_tensor_data(w, "l", BN_TYPE_TL1, 1, (int64_t[]){256}, v), -1);
    expect_write_error(w, "cannot be stored in a GGUF file");

    w = bn_gguf_writer_new();
    cr_assert_eq(bn_gguf_set_u32(w, "", 1), -1);
    expect_write_error(w, "a key must be 1..65535 bytes");

    w = bn_gguf_writer_new();
    cr_assert_eq(bn_gguf_set_arr(w, "k", BN_GGUF_STRING, v, 1), -1);
    expect_write_error(w, "bn_gguf_set_arr takes fixed-size elements, not string");

    w = bn_gguf_writer_new();
    bn_gguf_add_tensor_data(w, "ok", BN_TYPE_F32, 1, (int64_t[]){4}, v);
    cr_assert_eq(bn_gguf_add_tensor(w, "gen", BN_TYPE_F32, 1, (int64_t[]){4}, fill_fails, NULL), 0);
    expect_write_error(w, "tensor 'gen': generator ran out of ideas");

    /* a folder that does not exist */
    w = bn_gguf_writer_new();
    struct bn_err err;
    cr_assert_eq(bn_gguf_writer_write(w, "/nonexistent-dir/x.gguf", &err), -1);
    cr_assert(strstr(err.msg, "/nonexistent-dir/x.gguf.tmp: cannot create"), "%s", err.msg);
    bn_gguf_writer_free(w);
}

/* The reference fixture copied key by key and tensor by tensor is the same file. */
Test(gguf_write, fixture_copy_is_byte_identical)
{
    const char *data = getenv("BITNET_TEST_DATA");
    char src_path[1024];
    snprintf(src_path, sizeof src_path, "%s/ref/tinyA-i2s.gguf", data ? data : "");
    if (!data || !*data || access(src_path, R_OK) != 0)
        cr_skip_test("the reference GGUF files (../shared/data/ref) are absent; configure "
                     "--with-test-data=DIR to run this test");
    struct opened o;
    open_file(&o, src_path);
    struct bn_gguf_writer *w = bn_gguf_writer_new();
    for (int64_t i = 0; i < bn_gguf_n_kv(o.g); i++)
        bn_gguf_set_from(w, o.g, i);
    for (int64_t i = 0; i < bn_gguf_n_tensors(o.g); i++) {
        const struct bn_gguf_tensor *t = bn_gguf_tensor(o.g, i);
        char name[BN_GGUF_MAX_NAME];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        bn_gguf_add_tensor_data(w, name, t->type, t->n_dims, t->ne, t->data);
    }
    struct bn_err err;
    const char *path = tmp_path("tinyA-copy.gguf");
    cr_assert_eq(bn_gguf_writer_write(w, path, &err), 0, "%s", err.msg);
    bn_gguf_writer_free(w);
    struct bn_mapped_file m;
    cr_assert_eq(bn_map_file(path, &m, &err), 0, "%s", err.msg);
    cr_assert_eq(m.size, o.m.size);
    cr_assert_eq(memcmp(m.base, o.m.base, m.size), 0);
    bn_unmap_file(&m);
    close_file(&o);
}
