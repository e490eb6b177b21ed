/* engine/gguf_write.c — GGUF v3 writer.
 *
 * Keys and tensor infos are serialized into one header buffer (the Llama-3
 * tokenizer makes that ~8 MB); tensor bytes are then produced one tensor at a time
 * into a reused buffer (or written straight from the caller's memory), so a model
 * never sits in memory twice.  The file is written to PATH.tmp and renamed over
 * PATH only once complete.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bitnet.h"
#include "gguf_raw.h"

#define MAX_KEY_BYTES 65535u /* GGUF spec */
#define ALIGNMENT_KEY "general.alignment"

struct wkv {
    char *key;
    enum bn_gguf_vtype type;
    uint8_t *val; /* serialized value, after the type field */
    uint64_t val_bytes;
};

struct wtensor {
    char name[BN_GGUF_MAX_NAME];
    enum bn_type type;
    uint32_t n_dims;
    int64_t ne[BN_GGUF_MAX_DIMS];
    uint64_t bytes;
    uint64_t offset; /* in the data section, set at write time */
    bn_tensor_fill_fn fill;
    void *ctx;
    const void *data; /* when not filled by a callback */
};

struct bn_gguf_writer {
    struct wkv *kv;
    size_t n_kv, cap_kv;
    struct wtensor *t;
    size_t n_t, cap_t;
    bool fsync;
    /* first failure of a set/add call, reported again by bn_gguf_writer_write */
    bool failed;
    char first_error[BN_ERR_MSG_MAX];
};

__attribute__((format(printf, 2, 3))) static int fail(struct bn_gguf_writer *w, const char *fmt, ...)
{
    if (!w->failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(w->first_error, sizeof w->first_error, fmt, ap);
        va_end(ap);
        w->failed = true;
    }
    return -1;
}

struct bn_gguf_writer *bn_gguf_writer_new(void) { return calloc(1, sizeof(struct bn_gguf_writer)); }

void bn_gguf_writer_free(struct bn_gguf_writer *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        free(w->kv[i].val);
    }
    free(w->kv);
    free(w->t);
    free(w);
}

void bn_gguf_writer_set_fsync(struct bn_gguf_writer *w, bool on) { w->fsync = on; }

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap * 2 : 16;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q)
        return -1;
    *p = q;
    *cap = c;
    return 0;
}

/* Take ownership of val (val_bytes serialized bytes) as the value of key; replaces
 * an existing value in place. */
static int put(struct bn_gguf_writer *w, const char *key, enum bn_gguf_vtype type, uint8_t *val,
               uint64_t val_bytes)
{
    if (!val) {
        return fail(w, "key '%s': out of memory", key ? key : "(null)");
    }
    if (!key || !key[0] || strlen(key) > MAX_KEY_BYTES) {
        free(val);
        return fail(w, "key '%.80s': a key must be 1..%u bytes", key ? key : "(null)", MAX_KEY_BYTES);
    }
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kv[i].key, key) == 0) {
            free(w->kv[i].val);
            w->kv[i].type = type;
            w->kv[i].val = val;
            w->kv[i].val_bytes = val_bytes;
            return 0;
        }
    }
    char *k = strdup(key);
    if (!k || grow((void **)&w->kv, &w->cap_kv, w->n_kv + 1, sizeof *w->kv)) {
        free(k);
        free(val);
        return fail(w, "key '%s': out of memory", key);
    }
    w->kv[w->n_kv++] = (struct wkv){.key = k, .type = type, .val = val, .val_bytes = val_bytes};
    return 0;
}

static int put_scalar(struct bn_gguf_writer *w, const char *key, enum bn_gguf_vtype type,
                      const void *v, size_t size)
{
    uint8_t *b = malloc(size);
    if (b)
        memcpy(b, v, size);
    return put(w, key, type, b, size);
}

int bn_gguf_set_u32(struct bn_gguf_writer *w, const char *key, uint32_t v)
{
    return put_scalar(w, key, BN_GGUF_UINT32, &v, 4);
}
int bn_gguf_set_i32(struct bn_gguf_writer *w, const char *key, int32_t v)
{
    return put_scalar(w, key, BN_GGUF_INT32, &v, 4);
}
int bn_gguf_set_u64(struct bn_gguf_writer *w, const char *key, uint64_t v)
{
    return put_scalar(w, key, BN_GGUF_UINT64, &v, 8);
}
int bn_gguf_set_f32(struct bn_gguf_writer *w, const char *key, float v)
{
    return put_scalar(w, key, BN_GGUF_FLOAT32, &v, 4);
}
int bn_gguf_set_bool(struct bn_gguf_writer *w, const char *key, bool v)
{
    uint8_t b = v ? 1 : 0;
    return put_scalar(w, key, BN_GGUF_BOOL, &b, 1);
}

int bn_gguf_set_str(struct bn_gguf_writer *w, const char *key, const char *v)
{
    if (!v)
        return fail(w, "key '%s': NULL string", key ? key : "(null)");
    uint64_t len = strlen(v);
    uint8_t *b = malloc(8 + len);
    if (b) {
        memcpy(b, &len, 8);
        memcpy(b + 8, v, len);
    }
    return put(w, key, BN_GGUF_STRING, b, 8 + len);
}

void bn_gguf_writer_set_alignment(struct bn_gguf_writer *w, uint32_t alignment)
{
    if (alignment == 0 || (alignment & (alignment - 1)) != 0)
        fail(w, "alignment %" PRIu32 " is not a non-zero power of two", alignment);
    else
        bn_gguf_set_u32(w, ALIGNMENT_KEY, alignment);
}

int bn_gguf_set_arr(struct bn_gguf_writer *w, const char *key, enum bn_gguf_vtype type,
                    const void *data, uint64_t n)
{
    size_t es = bn_gguf_vtype_size(type);
    if (es == 0)
        return fail(w, "key '%s': bn_gguf_set_arr takes fixed-size elements, not %s", key ? key : "(null)",
                    bn_gguf_vtype_name(type));
    uint64_t bytes, total;
    if (__builtin_mul_overflow(n, (uint64_t)es, &bytes) || __builtin_add_overflow(bytes, 12, &total) ||
        total > SIZE_MAX)
        return fail(w, "key '%s': array of %" PRIu64 " elements is too large", key ? key : "(null)", n);
    if (n > 0 && !data)
        return fail(w, "key '%s': NULL array data", key ? key : "(null)");
    uint8_t *b = malloc(total);
    if (b) {
        uint32_t t = (uint32_t)type;
        memcpy(b, &t, 4);
        memcpy(b + 4, &n, 8);
        if (bytes)
            memcpy(b + 12, data, bytes);
    }
    return put(w, key, BN_GGUF_ARRAY, b, total);
}

int bn_gguf_set_arr_str(struct bn_gguf_writer *w, const char *key, const char *const *v, uint64_t n)
{
    uint64_t total = 12;
    for (uint64_t i = 0; i < n; i++) {
        if (!v[i])
            return fail(w, "key '%s': string %" PRIu64 " is NULL", key ? key : "(null)", i);
        total += 8 + strlen(v[i]);
    }
    uint8_t *b = total <= SIZE_MAX ? malloc(total) : NULL;
    if (b) {
        uint32_t t = BN_GGUF_STRING;
        memcpy(b, &t, 4);
        memcpy(b + 4, &n, 8);
        uint8_t *p = b + 12;
        for (uint64_t i = 0; i < n; i++) {
            uint64_t len = strlen(v[i]);
            memcpy(p, &len, 8);
            memcpy(p + 8, v[i], len);
            p += 8 + len;
        }
    }
    return put(w, key, BN_GGUF_ARRAY, b, total);
}

int bn_gguf_set_from(struct bn_gguf_writer *w, const struct bn_gguf *src, int64_t kv)
{
    enum bn_gguf_vtype type;
    const void *bytes;
    uint64_t n;
    if (!bn_gguf_kv_raw(src, kv, &type, &bytes, &n))
        return fail(w, "%s: no key #%" PRId64 " to copy", bn_gguf_label(src), kv);
    struct bn_str k = bn_gguf_key(src, kv);
    char *key = strndup(k.ptr, k.len);
    uint8_t *b = n <= SIZE_MAX ? malloc(n ? n : 1) : NULL;
    if (b)
        memcpy(b, bytes, n);
    if (!key) {
        free(b);
        return fail(w, "%s: out of memory copying key #%" PRId64, bn_gguf_label(src), kv);
    }
    int rc = put(w, key, type, b, n);
    free(key);
    return rc;
}

static int add_tensor(struct bn_gguf_writer *w, const char *name, enum bn_type type, uint32_t n_dims,
                      const int64_t *ne, bn_tensor_fill_fn fill, void *ctx, const void *data)
{
    if (!name || !name[0] || strlen(name) >= BN_GGUF_MAX_NAME)
        return fail(w, "tensor '%.80s': a tensor name must be 1..%d bytes", name ? name : "(null)",
                    BN_GGUF_MAX_NAME - 1);
    const struct bn_type_traits *tr = bn_type_traits(type);
    if (!tr || tr->gguf_id < 0 || tr->gguf_id != (int)type)
        return fail(w, "tensor '%s': type %d (%s) cannot be stored in a GGUF file", name, (int)type,
                    bn_type_name(type));
    if (n_dims < 1 || n_dims > BN_GGUF_MAX_DIMS)
        return fail(w, "tensor '%s': n_dims %" PRIu32 " must be 1..%d", name, n_dims, BN_GGUF_MAX_DIMS);
    struct wtensor t = {.type = type, .n_dims = n_dims, .fill = fill, .ctx = ctx, .data = data};
    memcpy(t.name, name, strlen(name) + 1);
    int64_t rows = 1;
    for (int d = 0; d < BN_GGUF_MAX_DIMS; d++) {
        t.ne[d] = (uint32_t)d < n_dims ? ne[d] : 1;
        if (t.ne[d] < 1)
            return fail(w, "tensor '%s': ne[%d] = %" PRId64 " must be >= 1", name, d, t.ne[d]);
        if (d > 0 && __builtin_mul_overflow(rows, t.ne[d], &rows))
            return fail(w, "tensor '%s': too many elements", name);
    }
    if (!bn_tensor_bytes(type, rows, t.ne[0], &t.bytes))
        return fail(w, "tensor '%s': shape [%" PRId64 ", %" PRId64 "] is not valid for type %s "
                       "(ne[0] must be a multiple of %" PRId64 ")",
                    name, t.ne[0], rows, tr->name, tr->block_elems);
    for (size_t i = 0; i < w->n_t; i++)
        if (strcmp(w->t[i].name, name) == 0)
            return fail(w, "tensor '%s' added twice", name);
    if (grow((void **)&w->t, &w->cap_t, w->n_t + 1, sizeof *w->t))
        return fail(w, "tensor '%s': out of memory", name);
    w->t[w->n_t++] = t;
    return 0;
}

int bn_gguf_add_tensor(struct bn_gguf_writer *w, const char *name, enum bn_type type, uint32_t n_dims,
                       const int64_t *ne, bn_tensor_fill_fn fill, void *ctx)
{
    if (!fill)
        return fail(w, "tensor '%s': NULL fill callback", name ? name : "(null)");
    return add_tensor(w, name, type, n_dims, ne, fill, ctx, NULL);
}

int bn_gguf_add_tensor_data(struct bn_gguf_writer *w, const char *name, enum bn_type type,
                            uint32_t n_dims, const int64_t *ne, const void *data)
{
    if (!data)
        return fail(w, "tensor '%s': NULL data", name ? name : "(null)");
    return add_tensor(w, name, type, n_dims, ne, NULL, NULL, data);
}

/* ------------------------------------------------------------------------------
 * Writing
 * --------------------------------------------------------------------------- */
struct buf {
    uint8_t *p;
    size_t n, cap;
    bool oom;
};

static void put_bytes(struct buf *b, const void *v, size_t n)
{
    if (b->oom)
        return;
    if (grow((void **)&b->p, &b->cap, b->n + n, 1)) {
        b->oom = true;
        return;
    }
    memcpy(b->p + b->n, v, n);
    b->n += n;
}
static void put_u32(struct buf *b, uint32_t v) { put_bytes(b, &v, 4); }
static void put_u64(struct buf *b, uint64_t v) { put_bytes(b, &v, 8); }
static void put_str(struct buf *b, const char *s)
{
    uint64_t len = strlen(s);
    put_u64(b, len);
    put_bytes(b, s, len);
}

static uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

static int write_all(int fd, const void *p, uint64_t n, const char *path, struct bn_err *err)
{
    const uint8_t *q = p;
    while (n > 0) {
        size_t chunk = n > (1u << 30) ? (1u << 30) : (size_t)n;
        ssize_t k = write(fd, q, chunk);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return bn_errf(err, "%s: write failed: %s", path, strerror(errno));
        }
        q += k;
        n -= (uint64_t)k;
    }
    return 0;
}

static int write_padding(int fd, uint64_t pos, uint64_t alignment, const char *path, struct bn_err *err)
{
    static const uint8_t zeros[4096];
    uint64_t pad = align_up(pos, alignment) - pos;
    while (pad > 0) {
        uint64_t k = pad < sizeof zeros ? pad : sizeof zeros;
        if (write_all(fd, zeros, k, path, err))
            return -1;
        pad -= k;
    }
    return 0;
}

/* The alignment the file will have: general.alignment if set, else the default. */
static int writer_alignment(const struct bn_gguf_writer *w, uint64_t *out, struct bn_err *err,
                            const char *path)
{
    *out = BN_GGUF_DEFAULT_ALIGNMENT;
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kv[i].key, ALIGNMENT_KEY) != 0)
            continue;
        uint32_t a;
        if (w->kv[i].type != BN_GGUF_UINT32)
            return bn_errf(err, "%s: key '%s' must be u32, not %s", path, ALIGNMENT_KEY,
                           bn_gguf_vtype_name(w->kv[i].type));
        memcpy(&a, w->kv[i].val, 4);
        if (a == 0 || (a & (a - 1)) != 0)
            return bn_errf(err, "%s: key '%s' is %" PRIu32 "; it must be a non-zero power of two",
                           path, ALIGNMENT_KEY, a);
        *out = a;
    }
    return 0;
}

static int write_body(struct bn_gguf_writer *w, int fd, const char *tmp, struct bn_err *err)
{
    uint64_t alignment;
    if (writer_alignment(w, &alignment, err, tmp))
        return -1;

    struct buf h = {0};
    put_u32(&h, BN_GGUF_MAGIC);
    put_u32(&h, 3);
    put_u64(&h, w->n_t);
    put_u64(&h, w->n_kv);
    for (size_t i = 0; i < w->n_kv; i++) {
        put_str(&h, w->kv[i].key);
        put_u32(&h, (uint32_t)w->kv[i].type);
        put_bytes(&h, w->kv[i].val, w->kv[i].val_bytes);
    }
    uint64_t offset = 0, max_fill = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        struct wtensor *t = &w->t[i];
        t->offset = offset;
        offset = align_up(offset + t->bytes, alignment);
        if (t->fill && t->bytes > max_fill)
            max_fill = t->bytes;
        put_str(&h, t->name);
        put_u32(&h, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++)
            put_u64(&h, (uint64_t)t->ne[d]);
        put_u32(&h, (uint32_t)t->type);
        put_u64(&h, t->offset);
    }
    if (h.oom) {
        free(h.p);
        return bn_errf(err, "%s: out of memory for the %zu-byte header", tmp, h.cap);
    }
    int rc = write_all(fd, h.p, h.n, tmp, err);
    if (rc == 0)
        rc = write_padding(fd, h.n, alignment, tmp, err);
    free(h.p);
    if (rc)
        return -1;

    /* One buffer, the size of the largest filled tensor, reused for every tensor. */
    uint8_t *buf = NULL;
    if (max_fill > 0 && (max_fill > SIZE_MAX || !(buf = malloc((size_t)max_fill))))
        return bn_errf(err, "%s: out of memory for a %" PRIu64 "-byte tensor buffer", tmp, max_fill);
    for (size_t i = 0; i < w->n_t && rc == 0; i++) {
        struct wtensor *t = &w->t[i];
        const void *src = t->data;
        if (t->fill) {
            if (err)
                err->msg[0] = '\0';
            if (t->fill(t->ctx, buf, t->bytes, err)) {
                rc = bn_errf(err, "%s: tensor '%s': %s", tmp, t->name,
                             err && err->msg[0] ? err->msg : "the fill callback failed");
                break;
            }
            src = buf;
        }
        rc = write_all(fd, src, t->bytes, tmp, err);
        if (rc == 0)
            rc = write_padding(fd, t->offset + t->bytes, alignment, tmp, err);
    }
    free(buf);
    return rc;
}

static void fsync_parent(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return;
    int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    free(copy);
}

int bn_gguf_writer_write(struct bn_gguf_writer *w, const char *path, struct bn_err *err)
{
    if (w->failed)
        return bn_errf(err, "%s: not written: %s", path, w->first_error);
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 5);
    if (!tmp)
        return bn_errf(err, "%s: out of memory", path);
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);

    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        bn_errf(err, "%s: cannot create: %s", tmp, strerror(errno));
        free(tmp);
        return -1;
    }
    int rc = write_body(w, fd, tmp, err);
    if (rc == 0 && w->fsync && fsync(fd) != 0)
        rc = bn_errf(err, "%s: fsync failed: %s", tmp, strerror(errno));
    if (close(fd) != 0 && rc == 0)
        rc = bn_errf(err, "%s: close failed: %s", tmp, strerror(errno));
    if (rc == 0 && rename(tmp, path) != 0)
        rc = bn_errf(err, "%s: cannot rename %s to it: %s", path, tmp, strerror(errno));
    if (rc == 0 && w->fsync)
        fsync_parent(path); /* make the rename durable; best effort */
    if (rc != 0)
        unlink(tmp);
    free(tmp);
    return rc;
}
