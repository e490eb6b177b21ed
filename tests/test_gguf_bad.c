/* tests/test_gguf_bad.c — the GGUF reader on bad input: every case must give a
 * one-line error naming the problem, never a crash or a read past the region
 * (run under --enable-sanitizers to see the latter). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "bitnet.h"
#include "test_gguf_build.h"

/* Open b and expect failure with every `want` substring in the message. */
static void expect_fail(const struct gb *b, unsigned flags, const char *want1, const char *want2)
{
    struct bn_gguf *g = NULL;
    void *copy;
    struct bn_err err;
    int rc = gb_open(b, &g, &copy, flags, &err);
    if (rc == 0) {
        bn_gguf_close(g);
        free(copy);
    }
    cr_assert_eq(rc, -1, "opened a bad file (expected an error with '%s')", want1);
    cr_assert_null(g);
    cr_assert(strncmp(err.msg, "t.gguf: ", 8) == 0, "error does not start with the label: %s", err.msg);
    cr_assert(strchr(err.msg, '\n') == NULL, "multi-line error: %s", err.msg);
    cr_assert(strstr(err.msg, want1), "error '%s' lacks '%s'", err.msg, want1);
    if (want2)
        cr_assert(strstr(err.msg, want2), "error '%s' lacks '%s'", err.msg, want2);
}

static void expect_ok(const struct gb *b)
{
    struct bn_gguf *g;
    void *copy;
    struct bn_err err;
    cr_assert_eq(gb_open(b, &g, &copy, 0, &err), 0, "%s", err.msg);
    bn_gguf_close(g);
    free(copy);
}

/* A small valid file: keys of each kind (string array, nested array), two tensors,
 * the last one ending the file exactly. */
static void build_small(struct gb *b)
{
    gb_header(b, 3, 2, 4);
    gb_kv_str(b, "general.architecture", "bitnet-b1.58");
    gb_kv_u32(b, "general.alignment", 32);
    gb_str(b, "tok"); gb_u32(b, BN_GGUF_ARRAY); gb_u32(b, BN_GGUF_STRING); gb_u64(b, 3);
    gb_str(b, "a"); gb_str(b, ""); gb_str(b, "xyz");
    gb_str(b, "nest"); gb_u32(b, BN_GGUF_ARRAY); gb_u32(b, BN_GGUF_ARRAY); gb_u64(b, 2);
    gb_u32(b, BN_GGUF_UINT16); gb_u64(b, 2); gb_u16(b, 1); gb_u16(b, 2);
    gb_u32(b, BN_GGUF_STRING); gb_u64(b, 1); gb_str(b, "q");
    gb_tensor(b, "a", 1, (uint64_t[]){8}, BN_TYPE_F32, 0);
    gb_tensor(b, "b", 2, (uint64_t[]){128, 2}, BN_TYPE_I2_S, 32);
    gb_pad(b, 32);
    gb_zeros(b, 32);         /* a: 8 floats */
    gb_zeros(b, 128 * 2 / 4 + 32); /* b: I2_S n/4 + 32 */
}

Test(gguf_bad, small_file_is_valid) {
    struct gb b = {0};
    build_small(&b);
    expect_ok(&b);
    gb_free(&b);
}

Test(gguf_bad, every_truncation)
{
    struct gb b = {0};
    build_small(&b);
    size_t full = b.n;
    for (size_t cut = 0; cut < full; cut++) {
        struct gb p = {0};
        gb_bytes(&p, b.p, cut);
        struct bn_gguf *g = NULL;
        void *copy;
        struct bn_err err;
        int rc = gb_open(&p, &g, &copy, 0, &err);
        cr_assert_eq(rc, -1, "a %zu-byte prefix of a %zu-byte file opened", cut, full);
        cr_assert(err.msg[0] != '\0', "no message at cut %zu", cut);
        cr_assert(strncmp(err.msg, "t.gguf: ", 8) == 0, "cut %zu: %s", cut, err.msg);
        gb_free(&p);
    }
    gb_free(&b);
}

Test(gguf_bad, truncation_messages)
{
    struct gb b = {0};
    build_small(&b);
    struct gb p = {0};
    gb_bytes(&p, b.p, 10);
    expect_fail(&p, 0, "header: tensor count at offset 8 needs 8 bytes but only 2 remain", NULL);
    gb_free(&p);
    gb_bytes(&p, b.p, b.n - 1);
    expect_fail(&p, 0, "tensor 'b' data ends at", "past the end of the file");
    gb_free(&p);
    gb_free(&b);
}

Test(gguf_bad, wrong_magic)
{
    struct gb b = {0};
    build_small(&b);
    memcpy(b.p, "GGML", 4);
    expect_fail(&b, 0, "not a GGUF file", "'GGML'");
    b.p[0] = 0x89;
    expect_fail(&b, 0, "\\x89", NULL);
    b.n = 2;
    expect_fail(&b, 0, "not a GGUF file", NULL);
    gb_free(&b);
}

Test(gguf_bad, versions)
{
    struct gb b = {0};
    build_small(&b);
    uint32_t v = 4;
    memcpy(b.p + 4, &v, 4);
    expect_fail(&b, 0, "unsupported GGUF version 4", "2 and 3");
    v = 1;
    memcpy(b.p + 4, &v, 4);
    expect_fail(&b, 0, "version 1", "not supported");
    v = 0x03000000; /* v3 written big-endian */
    memcpy(b.p + 4, &v, 4);
    expect_fail(&b, 0, "big-endian", NULL);
    v = 0;
    memcpy(b.p + 4, &v, 4);
    expect_fail(&b, 0, "unsupported GGUF version 0", NULL);
    gb_free(&b);
}

Test(gguf_bad, absurd_counts)
{
    struct gb b = {0};
    gb_header(&b, 3, 1ull << 40, 0);
    gb_zeros(&b, 100);
    expect_fail(&b, 0, "tensor count at offset 8 is 1099511627776", "can hold at most 3");
    gb_free(&b);
    gb_header(&b, 3, 0, 1ull << 40);
    gb_zeros(&b, 100);
    expect_fail(&b, 0, "key count at offset 16 is 1099511627776", NULL);
    gb_free(&b);
    gb_header(&b, 3, UINT64_MAX, UINT64_MAX);
    expect_fail(&b, 0, "count", NULL);
    gb_free(&b);
}

Test(gguf_bad, string_length_past_end)
{
    struct gb b = {0};
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "k");
    gb_u32(&b, BN_GGUF_STRING);
    gb_u64(&b, 1000); /* says 1000 bytes */
    gb_bytes(&b, "short", 5);
    expect_fail(&b, 0, "key #0 'k': string at offset 37 says 1000 bytes but only 5 remain", NULL);
    gb_free(&b);
    /* a key name whose length is past the end, and one over the GGUF key limit */
    gb_header(&b, 3, 0, 1);
    gb_u64(&b, UINT64_MAX);
    gb_zeros(&b, 20);
    expect_fail(&b, 0, "key #0: key name at offset 24", "limit is 65535");
    gb_free(&b);
    gb_header(&b, 3, 0, 1);
    gb_u64(&b, 30);
    gb_zeros(&b, 20);
    expect_fail(&b, 0, "key name at offset 24 says 30 bytes", NULL);
    gb_free(&b);
    /* string element of an array */
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "toks");
    gb_u32(&b, BN_GGUF_ARRAY);
    gb_u32(&b, BN_GGUF_STRING);
    gb_u64(&b, 2);
    gb_str(&b, "ok");
    gb_u64(&b, 1ull << 62);
    gb_zeros(&b, 16);
    expect_fail(&b, 0, "key #0 'toks' element [1]: string at offset", "says 4611686018427387904 bytes");
    gb_free(&b);
}

Test(gguf_bad, array_lengths_past_end)
{
    struct gb b = {0};
    /* fixed-size elements */
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "arr");
    gb_u32(&b, BN_GGUF_ARRAY);
    gb_u32(&b, BN_GGUF_UINT32);
    gb_u64(&b, 1ull << 62); /* x4 bytes overflows 64 bits */
    gb_zeros(&b, 16);
    expect_fail(&b, 0, "key #0 'arr': array length at offset", "u32 elements");
    gb_free(&b);
    /* string array count */
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "arr");
    gb_u32(&b, BN_GGUF_ARRAY);
    gb_u32(&b, BN_GGUF_STRING);
    gb_u64(&b, 1ull << 40);
    gb_zeros(&b, 16);
    expect_fail(&b, 0, "string array length", "can hold at most 2");
    gb_free(&b);
    /* nested: the inner array's length is past the end */
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "nest");
    gb_u32(&b, BN_GGUF_ARRAY);
    gb_u32(&b, BN_GGUF_ARRAY);
    gb_u64(&b, 2);
    gb_u32(&b, BN_GGUF_INT8);
    gb_u64(&b, 1);
    gb_u8(&b, 5);
    gb_u32(&b, BN_GGUF_INT64);
    gb_u64(&b, 1000);
    gb_zeros(&b, 24);
    expect_fail(&b, 0, "key #0 'nest' element [1]: array length", "1000 i64 elements");
    gb_free(&b);
    /* nested: outer count larger than the region can hold */
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "nest");
    gb_u32(&b, BN_GGUF_ARRAY);
    gb_u32(&b, BN_GGUF_ARRAY);
    gb_u64(&b, 1ull << 40);
    gb_zeros(&b, 24);
    expect_fail(&b, 0, "array-of-arrays length", NULL);
    gb_free(&b);
}

Test(gguf_bad, array_nesting_depth)
{
    struct gb b = {0};
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "deep");
    gb_u32(&b, BN_GGUF_ARRAY);
    for (int d = 0; d < BN_GGUF_MAX_ARRAY_DEPTH + 5; d++) {
        gb_u32(&b, BN_GGUF_ARRAY);
        gb_u64(&b, 1);
    }
    gb_u32(&b, BN_GGUF_UINT8);
    gb_u64(&b, 0);
    expect_fail(&b, 0, "nested deeper than", NULL);
    gb_free(&b);
    /* exactly the limit is fine */
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "deep");
    gb_u32(&b, BN_GGUF_ARRAY);
    for (int d = 0; d < BN_GGUF_MAX_ARRAY_DEPTH - 1; d++) {
        gb_u32(&b, BN_GGUF_ARRAY);
        gb_u64(&b, 1);
    }
    gb_u32(&b, BN_GGUF_UINT8);
    gb_u64(&b, 0);
    expect_ok(&b);
    gb_free(&b);
}

Test(gguf_bad, unknown_value_type)
{
    struct gb b = {0};
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "k");
    gb_u32(&b, 13);
    gb_u32(&b, 0);
    expect_fail(&b, 0, "key #0 'k': value type at offset 33 is 13, not a GGUF value type", NULL);
    gb_free(&b);
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "k");
    gb_u32(&b, BN_GGUF_ARRAY);
    gb_u32(&b, 99);
    gb_u64(&b, 0);
    expect_fail(&b, 0, "array element type", "is 99");
    gb_free(&b);
}

Test(gguf_bad, duplicate_and_empty_keys)
{
    struct gb b = {0};
    gb_header(&b, 3, 0, 3);
    gb_kv_u32(&b, "a", 1);
    gb_kv_u32(&b, "b", 2);
    gb_kv_str(&b, "a", "x");
    expect_fail(&b, 0, "key #2 'a': duplicate key (also key #0)", NULL);
    gb_free(&b);
    gb_header(&b, 3, 0, 1);
    gb_kv_u32(&b, "", 1);
    expect_fail(&b, 0, "empty key name", NULL);
    gb_free(&b);
}

/* One tensor info with the given fields, then enough zero data. */
static void build_one_tensor(struct gb *b, const char *name, uint32_t n_dims, const uint64_t *ne,
                             uint32_t type, uint64_t offset, size_t data_bytes)
{
    gb_header(b, 3, 1, 0);
    gb_tensor(b, name, n_dims, ne, type, offset);
    gb_pad(b, 32);
    gb_zeros(b, data_bytes);
}

Test(gguf_bad, tensor_dims)
{
    struct gb b = {0};
    build_one_tensor(&b, "t", 0, NULL, BN_TYPE_F32, 0, 64);
    expect_fail(&b, 0, "tensor #0 't': n_dims at offset 33 is 0; it must be 1..4", NULL);
    gb_free(&b);
    build_one_tensor(&b, "t", 5, (uint64_t[]){1, 1, 1, 1, 1}, BN_TYPE_F32, 0, 64);
    expect_fail(&b, 0, "n_dims at offset 33 is 5", NULL);
    gb_free(&b);
    build_one_tensor(&b, "t", 2, (uint64_t[]){4, 1ull << 63}, BN_TYPE_F32, 0, 64);
    expect_fail(&b, 0, "ne[1] at offset 45 is -9223372036854775808", ">= 1");
    gb_free(&b);
    build_one_tensor(&b, "t", 2, (uint64_t[]){4, 0}, BN_TYPE_F32, 0, 64);
    expect_fail(&b, 0, "ne[1] at offset 45 is 0", NULL);
    gb_free(&b);
    build_one_tensor(&b, "t", 4, (uint64_t[]){1ull << 20, 1ull << 20, 1ull << 20, 1ull << 10},
                     BN_TYPE_F32, 0, 64);
    expect_fail(&b, 0, "more than 2^63 elements", NULL);
    gb_free(&b);
    /* element count fits in int64 but the byte size does not */
    build_one_tensor(&b, "t", 2, (uint64_t[]){1ull << 31, 1ull << 31}, BN_TYPE_F32, 0, 64);
    expect_fail(&b, 0, "shape [2147483648, 2147483648, 1, 1] of type F32 is too large", NULL);
    gb_free(&b);
}

Test(gguf_bad, tensor_types)
{
    struct gb b = {0};
    build_one_tensor(&b, "w", 1, (uint64_t[]){256}, 99, 0, 1024);
    expect_fail(&b, 0, "tensor #0 'w': type id 99", "not a tensor type bitnetd knows");
    gb_free(&b);
    for (uint32_t id = 37; id <= 39; id++) {
        build_one_tensor(&b, "w", 1, (uint64_t[]){256}, id, 0, 1024);
        expect_fail(&b, 0, "bitnet.cpp I8_S/TL1/TL2 layouts are shape-specific and not supported; "
                           "convert the model to I2_S", NULL);
        gb_free(&b);
    }
    build_one_tensor(&b, "w", 1, (uint64_t[]){BN_TYPE_COUNT}, BN_TYPE_I8_ACT, 0, 1024);
    expect_fail(&b, 0, "type id 64", NULL);
    gb_free(&b);
    /* Q8_0 rows must be multiples of 32; I2_S of 128 */
    build_one_tensor(&b, "w", 1, (uint64_t[]){33}, BN_TYPE_Q8_0, 0, 1024);
    expect_fail(&b, 0, "shape [33, 1, 1, 1] is not valid for type Q8_0", "multiple of 32");
    gb_free(&b);
    build_one_tensor(&b, "w", 2, (uint64_t[]){64, 2}, BN_TYPE_I2_S, 0, 1024);
    expect_fail(&b, 0, "not valid for type I2_S", "multiple of 128");
    gb_free(&b);
}

Test(gguf_bad, tensor_names)
{
    struct gb b = {0};
    char name[BN_GGUF_MAX_NAME + 1];
    memset(name, 'n', BN_GGUF_MAX_NAME);
    name[BN_GGUF_MAX_NAME] = '\0'; /* 64 bytes: one too many */
    build_one_tensor(&b, name, 1, (uint64_t[]){8}, BN_TYPE_F32, 0, 32);
    expect_fail(&b, 0, "tensor #0: tensor name at offset 24 is 64 bytes long; the limit is 63", NULL);
    gb_free(&b);
    name[BN_GGUF_MAX_NAME - 1] = '\0'; /* 63 bytes: fine */
    build_one_tensor(&b, name, 1, (uint64_t[]){8}, BN_TYPE_F32, 0, 32);
    expect_ok(&b);
    gb_free(&b);

    gb_header(&b, 3, 2, 0);
    gb_tensor(&b, "same", 1, (uint64_t[]){8}, BN_TYPE_F32, 0);
    gb_tensor(&b, "same", 1, (uint64_t[]){8}, BN_TYPE_F32, 32);
    gb_pad(&b, 32);
    gb_zeros(&b, 64);
    expect_fail(&b, 0, "tensor #1 'same': duplicate tensor name (also tensor #0)", NULL);
    gb_free(&b);
}

Test(gguf_bad, tensor_data_placement)
{
    struct gb b = {0};
    /* data past the end (by one byte) */
    build_one_tensor(&b, "w", 1, (uint64_t[]){8}, BN_TYPE_F32, 0, 31);
    expect_fail(&b, 0, "tensor 'w' data ends at 96 bytes, past the end of the file (95 bytes)", NULL);
    /* ...but fine with BN_GGUF_HEADER_ONLY */
    {
        struct bn_gguf *g;
        void *copy;
        struct bn_err err;
        cr_assert_eq(gb_open(&b, &g, &copy, BN_GGUF_HEADER_ONLY, &err), 0, "%s", err.msg);
        bn_gguf_close(g);
        free(copy);
    }
    gb_free(&b);
    /* offset so large that offset + size overflows */
    build_one_tensor(&b, "w", 1, (uint64_t[]){8}, BN_TYPE_F32, UINT64_MAX - 31, 32);
    expect_fail(&b, 0, "overflows", NULL);
    gb_free(&b);
    /* misaligned */
    build_one_tensor(&b, "w", 1, (uint64_t[]){8}, BN_TYPE_F32, 16, 64);
    expect_fail(&b, 0, "tensor #0 'w': data offset 16", "not a multiple of the alignment 32");
    gb_free(&b);
    /* overlapping (listed out of order) */
    gb_header(&b, 3, 3, 0);
    gb_tensor(&b, "c", 1, (uint64_t[]){8}, BN_TYPE_F32, 128);
    gb_tensor(&b, "a", 1, (uint64_t[]){16}, BN_TYPE_F32, 0); /* 64 bytes: 0..64 */
    gb_tensor(&b, "b", 1, (uint64_t[]){8}, BN_TYPE_F32, 32); /* 32..64 */
    gb_pad(&b, 32);
    gb_zeros(&b, 160);
    expect_fail(&b, 0, "tensors 'a' (data offset 0, 64 bytes) and 'b' (data offset 32) overlap", NULL);
    expect_fail(&b, BN_GGUF_HEADER_ONLY, "overlap", NULL);
    gb_free(&b);
    /* adjacent tensors in any order are fine */
    gb_header(&b, 3, 2, 0);
    gb_tensor(&b, "b", 1, (uint64_t[]){8}, BN_TYPE_F32, 32);
    gb_tensor(&b, "a", 1, (uint64_t[]){8}, BN_TYPE_F32, 0);
    gb_pad(&b, 32);
    gb_zeros(&b, 64);
    expect_ok(&b);
    gb_free(&b);
}

Test(gguf_bad, alignment_values)
{
    uint32_t bad[] = {0, 3, 48};
    for (size_t i = 0; i < 3; i++) {
        struct gb b = {0};
        gb_header(&b, 3, 0, 1);
        gb_kv_u32(&b, "general.alignment", bad[i]);
        char want[96];
        snprintf(want, sizeof want, "key 'general.alignment' is %u; it must be a non-zero power of two",
                 bad[i]);
        expect_fail(&b, 0, want, NULL);
        gb_free(&b);
    }
    struct gb b = {0};
    gb_header(&b, 3, 0, 1);
    gb_kv_str(&b, "general.alignment", "32");
    expect_fail(&b, 0, "'general.alignment' has type string; GGUF requires u32", NULL);
    gb_free(&b);
}

/* Every single-byte corruption of the small file: any outcome but a crash or an
 * out-of-bounds read (the sanitizer build checks the latter). */
Test(gguf_bad, every_byte_flipped)
{
    struct gb b = {0};
    build_small(&b);
    uint8_t flips[] = {0x01, 0x80, 0xff};
    for (size_t i = 0; i < b.n; i++) {
        for (size_t f = 0; f < sizeof flips; f++) {
            struct gb p = {0};
            gb_bytes(&p, b.p, b.n);
            p.p[i] ^= flips[f];
            struct bn_gguf *g;
            void *copy;
            struct bn_err err;
            if (gb_open(&p, &g, &copy, 0, &err) == 0) {
                /* still a valid file: walk all of it */
                for (int64_t k = 0; k < bn_gguf_n_kv(g); k++)
                    (void)bn_gguf_key(g, k);
                bn_gguf_close(g);
                free(copy);
            } else {
                cr_assert(err.msg[0] != '\0');
            }
            gb_free(&p);
        }
    }
    gb_free(&b);
}
