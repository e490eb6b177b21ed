/* tests/test_gguf_build.h — builds GGUF bytes by hand for the reader tests, so that
 * every field (including wrong ones) can be set independently of the writer. */
#ifndef BN_TEST_GGUF_BUILD_H
#define BN_TEST_GGUF_BUILD_H

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bitnet.h"

struct gb {
    uint8_t *p;
    size_t n, cap;
};

static inline void gb_bytes(struct gb *b, const void *v, size_t n)
{
    if (b->n + n > b->cap) {
        size_t c = b->cap ? b->cap : 256;
        while (c < b->n + n)
            c *= 2;
        b->p = realloc(b->p, c);
        cr_assert(b->p);
        b->cap = c;
    }
    if (n)
        memcpy(b->p + b->n, v, n);
    b->n += n;
}
static inline void gb_u8(struct gb *b, uint8_t v) { gb_bytes(b, &v, 1); }
static inline void gb_u16(struct gb *b, uint16_t v) { gb_bytes(b, &v, 2); }
static inline void gb_u32(struct gb *b, uint32_t v) { gb_bytes(b, &v, 4); }
static inline void gb_u64(struct gb *b, uint64_t v) { gb_bytes(b, &v, 8); }
static inline void gb_f32(struct gb *b, float v) { gb_bytes(b, &v, 4); }
static inline void gb_f64(struct gb *b, double v) { gb_bytes(b, &v, 8); }
static inline void gb_str(struct gb *b, const char *s)
{
    gb_u64(b, strlen(s));
    gb_bytes(b, s, strlen(s));
}
static inline void gb_zeros(struct gb *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        gb_u8(b, 0);
}
static inline void gb_pad(struct gb *b, size_t align)
{
    while (b->n % align)
        gb_u8(b, 0);
}
static inline void gb_header(struct gb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
    gb_u32(b, BN_GGUF_MAGIC);
    gb_u32(b, version);
    gb_u64(b, n_tensors);
    gb_u64(b, n_kv);
}
static inline void gb_kv_u32(struct gb *b, const char *key, uint32_t v)
{
    gb_str(b, key);
    gb_u32(b, BN_GGUF_UINT32);
    gb_u32(b, v);
}
static inline void gb_kv_str(struct gb *b, const char *key, const char *v)
{
    gb_str(b, key);
    gb_u32(b, BN_GGUF_STRING);
    gb_str(b, v);
}
/* Tensor info with up to 4 dims. */
static inline void gb_tensor(struct gb *b, const char *name, uint32_t n_dims, const uint64_t *ne,
                             uint32_t type, uint64_t offset)
{
    gb_str(b, name);
    gb_u32(b, n_dims);
    for (uint32_t d = 0; d < n_dims; d++)
        gb_u64(b, ne[d]);
    gb_u32(b, type);
    gb_u64(b, offset);
}
static inline void gb_free(struct gb *b)
{
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}

/* Open exactly b's bytes from a heap copy of that size (so that AddressSanitizer
 * sees any read past the end).  Returns bn_gguf_open's result; on success *g must
 * be closed and *copy freed by the caller. */
static inline int gb_open(const struct gb *b, struct bn_gguf **g, void **copy, unsigned flags,
                          struct bn_err *err)
{
    *copy = malloc(b->n ? b->n : 1);
    cr_assert(*copy);
    if (b->n)
        memcpy(*copy, b->p, b->n);
    err->msg[0] = '\0';
    int rc = bn_gguf_open(g, *copy, b->n, "t.gguf", flags, err);
    if (rc != 0) {
        free(*copy);
        *copy = NULL;
    }
    return rc;
}

#endif
