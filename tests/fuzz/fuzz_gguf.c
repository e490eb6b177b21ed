/* tests/fuzz/fuzz_gguf.c — the GGUF reader on arbitrary bytes.
 *
 * The input is a GGUF file.  It is opened twice (whole, and BN_GGUF_HEADER_ONLY as
 * the daemon does for a segment's metadata copy); after a successful open every
 * accessor is walked: keys by index and by name with every typed getter, arrays
 * element by element (nested ones through bn_gguf_arr_sub), every tensor's info and
 * the first and last byte of its data, the first row dequantized.  Then what reads
 * GGUF metadata in the engine runs on it: the vocabulary loader, the chat-format
 * detection and the pack plan.
 *
 * Properties checked (fuzz_fail when broken):
 *   - a failed open leaves *out NULL and an error message;
 *   - keys and tensors are found by name at their own index (names without NUL);
 *   - tensor infos are sane (n_dims 1..4, dims >= 1, bytes = bn_tensor_bytes) and, when
 *     opened whole, their data lies inside the input;
 *   - writer round trip: a file the reader accepts, copied key by key (set_from) and
 *     tensor by tensor into the GGUF writer, reads back with the same keys (type and
 *     value bytes) and the same tensors (name, type, shape, data).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "gguf_raw.h"

/* The writer round trip is quadratic in keys/tensors (its duplicate checks): keep
 * per-input time bounded. */
#define ROUNDTRIP_MAX_ITEMS 256
/* The writer pads the header to the alignment even without tensors: a valid file
 * with general.alignment = 2^31 would make a 2 GB copy. */
#define ROUNDTRIP_MAX_ALIGNMENT (1u << 20)
#define DEQUANT_MAX_COLS 65536 /* first-row dequantization: floats per row */

static char tmp_dir[4096];
static char tmp_path[4200];

static int gguf_init(char *why, size_t why_len)
{
    /* tmpfs when there is one: the round trip writes a file per accepted input */
    const char *bases[] = { "/dev/shm", getenv("TMPDIR"), "/tmp" };
    for (size_t i = 0; i < sizeof bases / sizeof bases[0]; i++) {
        if (!bases[i] || !*bases[i])
            continue;
        snprintf(tmp_dir, sizeof tmp_dir, "%s/bn-fuzz-gguf-XXXXXX", bases[i]);
        if (mkdtemp(tmp_dir)) {
            snprintf(tmp_path, sizeof tmp_path, "%s/roundtrip.gguf", tmp_dir);
            return 0;
        }
    }
    snprintf(why, why_len, "cannot create a temporary folder for the writer round trip: %s", strerror(errno));
    tmp_dir[0] = 0;
    return -1;
}

static void gguf_fini(void)
{
    if (!tmp_dir[0])
        return;
    unlink(tmp_path);
    rmdir(tmp_dir);
    tmp_dir[0] = 0;
}

/* Read every byte of s (ASan reports it if s is not inside the input). */
static uint64_t touch(const void *p, uint64_t n)
{
    const volatile uint8_t *q = p;
    uint64_t h = 0;
    for (uint64_t i = 0; i < n; i++)
        h = h * 31 + q[i];
    return h;
}

/* s as a NUL-terminated string in buf, or false when it holds a NUL byte or does not fit. */
static bool cstr(struct bn_str s, char *buf, size_t len)
{
    if (s.len >= len || (s.len && memchr(s.ptr, 0, s.len)))
        return false;
    memcpy(buf, s.ptr, s.len);
    buf[s.len] = 0;
    return true;
}

static uint64_t walk_arr(const struct bn_gguf_arr *a, int depth)
{
    uint64_t h = a->n;
    if (depth > BN_GGUF_MAX_ARRAY_DEPTH)
        fuzz_fail("gguf: arrays nested %d deep were accepted (limit BN_GGUF_MAX_ARRAY_DEPTH = %d)", depth,
                  BN_GGUF_MAX_ARRAY_DEPTH);
    for (uint64_t i = 0; i < a->n; i++) {
        switch (a->type) {
        case BN_GGUF_STRING: {
            struct bn_str s = bn_gguf_arr_str(a, i);
            if (!s.ptr)
                fuzz_fail("gguf: string element %llu of %llu is NULL", (unsigned long long)i,
                          (unsigned long long)a->n);
            h += touch(s.ptr, s.len);
            break;
        }
        case BN_GGUF_ARRAY: {
            struct bn_gguf_arr sub;
            if (bn_gguf_arr_sub(a, i, &sub))
                fuzz_fail("gguf: array element %llu of %llu cannot be opened", (unsigned long long)i,
                          (unsigned long long)a->n);
            h += walk_arr(&sub, depth + 1);
            break;
        }
        case BN_GGUF_FLOAT32:
        case BN_GGUF_FLOAT64: {
            double d = bn_gguf_arr_float(a, i);
            h += touch(&d, sizeof d);
            break;
        }
        default:
            h += (uint64_t)bn_gguf_arr_int(a, i);
            break;
        }
    }
    /* out-of-range and wrong-type accesses answer "nothing", never read */
    struct bn_gguf_arr sub;
    if (bn_gguf_arr_str(a, a->n).ptr || bn_gguf_arr_int(a, a->n) != 0 || bn_gguf_arr_float(a, a->n) != 0.0 ||
        bn_gguf_arr_sub(a, a->n, &sub) == 0)
        fuzz_fail("gguf: an array element past the end (index %llu) was returned", (unsigned long long)a->n);
    return h;
}

static void walk_keys(const struct bn_gguf *g)
{
    int64_t n = bn_gguf_n_kv(g);
    static char key[65536 + 1];
    for (int64_t i = 0; i < n; i++) {
        struct bn_str k = bn_gguf_key(g, i);
        if (!k.ptr || k.len == 0)
            fuzz_fail("gguf: key #%lld has no name", (long long)i);
        touch(k.ptr, k.len);
        enum bn_gguf_vtype t = bn_gguf_kv_type(g, i);
        if ((unsigned)t > BN_GGUF_FLOAT64)
            fuzz_fail("gguf: key #%lld has type %d", (long long)i, (int)t);
        if (!cstr(k, key, sizeof key))
            continue; /* a NUL inside: not reachable by name */
        if (bn_gguf_find_key(g, key) != i)
            fuzz_fail("gguf: key #%lld '%.80s' is found at %lld", (long long)i, key,
                      (long long)bn_gguf_find_key(g, key));
        struct bn_err err;
        uint64_t u64;
        int64_t i64;
        uint32_t u32;
        float f32;
        bool b;
        struct bn_str s;
        struct bn_gguf_arr a;
        bn_gguf_get_u64(g, key, &u64, &err);
        bn_gguf_get_i64(g, key, &i64, &err);
        bn_gguf_get_u32(g, key, &u32, &err);
        bn_gguf_get_f32(g, key, &f32, &err);
        bn_gguf_get_bool(g, key, &b, &err);
        if (bn_gguf_get_str(g, key, &s, &err) == 0)
            touch(s.ptr, s.len);
        else if (t == BN_GGUF_STRING)
            fuzz_fail("gguf: string key '%.80s' cannot be read: %s", key, err.msg);
        if (bn_gguf_get_arr(g, key, &a, &err) == 0)
            walk_arr(&a, 1);
        else if (t == BN_GGUF_ARRAY)
            fuzz_fail("gguf: array key '%.80s' cannot be read: %s", key, err.msg);
    }
    if (bn_gguf_key(g, n).ptr || bn_gguf_key(g, -1).ptr)
        fuzz_fail("gguf: a key index out of range gave a name");
}

static void walk_tensors(const struct bn_gguf *g, bool header_only, uint64_t size)
{
    int64_t n = bn_gguf_n_tensors(g);
    char name[BN_GGUF_MAX_NAME];
    for (int64_t i = 0; i < n; i++) {
        const struct bn_gguf_tensor *t = bn_gguf_tensor(g, i);
        if (!t)
            fuzz_fail("gguf: tensor #%lld is NULL", (long long)i);
        touch(t->name.ptr, t->name.len);
        if (t->name.len >= BN_GGUF_MAX_NAME || t->n_dims < 1 || t->n_dims > BN_GGUF_MAX_DIMS)
            fuzz_fail("gguf: tensor #%lld: name of %llu bytes, n_dims %u accepted", (long long)i,
                      (unsigned long long)t->name.len, t->n_dims);
        int64_t rows = 1;
        for (int d = 0; d < BN_GGUF_MAX_DIMS; d++) {
            if (t->ne[d] < 1 || (d >= (int)t->n_dims && t->ne[d] != 1))
                fuzz_fail("gguf: tensor #%lld: ne[%d] = %lld", (long long)i, d, (long long)t->ne[d]);
            if (d > 0 && __builtin_mul_overflow(rows, t->ne[d], &rows))
                fuzz_fail("gguf: tensor #%lld: rows overflow", (long long)i);
        }
        uint64_t bytes = 0;
        if (!bn_tensor_bytes(t->type, rows, t->ne[0], &bytes) || bytes != t->bytes)
            fuzz_fail("gguf: tensor #%lld: %llu bytes, the traits say %llu", (long long)i,
                      (unsigned long long)t->bytes, (unsigned long long)bytes);
        if (cstr(t->name, name, sizeof name) && bn_gguf_find_tensor(g, name) != t)
            fuzz_fail("gguf: tensor #%lld '%s' is not found by name", (long long)i, name);
        if (header_only) {
            if (t->data)
                fuzz_fail("gguf: header-only open gave tensor #%lld a data pointer", (long long)i);
            continue;
        }
        if (!t->data || t->offset + bn_gguf_data_offset(g) + t->bytes > size)
            fuzz_fail("gguf: tensor #%lld data (offset %llu, %llu bytes) is not inside the %llu-byte input",
                      (long long)i, (unsigned long long)t->offset, (unsigned long long)t->bytes,
                      (unsigned long long)size);
        if (t->bytes) {
            touch(t->data, 1);
            touch((const uint8_t *)t->data + t->bytes - 1, 1);
        }
        /* the first row through the format's decoder (simd/ traits) */
        const struct bn_type_traits *tr = bn_type_traits(t->type);
        if (tr && tr->row_to_float && t->ne[0] <= DEQUANT_MAX_COLS) {
            float *row = malloc((size_t)t->ne[0] * sizeof *row);
            if (!row)
                fuzz_fail("gguf: out of memory");
            tr->row_to_float(t->data, row, t->ne[0], bn_tensor_scale(t->type, t->data, rows, t->ne[0]));
            touch(row, (uint64_t)t->ne[0] * sizeof *row);
            free(row);
        }
    }
    if (bn_gguf_tensor(g, n) || bn_gguf_tensor(g, -1))
        fuzz_fail("gguf: a tensor index out of range gave a tensor");
}

/* What reads GGUF metadata in the engine. */
static void consumers(const struct bn_gguf *g, bool header_only)
{
    struct bn_err err;
    struct bn_vocab *v = NULL;
    if (bn_vocab_from_gguf(&v, g, &err) == 0) {
        struct bn_tokens t = { 0 };
        static const char text[] = "Hello world <|eot_id|> 123";
        if (bn_tokenize(v, text, sizeof text - 1, true, true, &t, &err))
            fuzz_fail("gguf: a vocabulary that loaded cannot tokenize: %s", err.msg);
        bn_tokens_free(&t);
        bn_vocab_free(v);
    } else if (v) {
        fuzz_fail("gguf: bn_vocab_from_gguf failed but returned a vocabulary");
    }
    bn_chat_format_from_gguf(g);
    if (header_only) { /* the daemon plans a segment from a header-only copy */
        struct bn_pack_plan plan;
        if (bn_pack_plan_make(&plan, g, BN_PATH_SCALAR, BN_TYPE_COUNT, &err) == 0)
            bn_pack_plan_free(&plan);
    }
}

static bool same_bytes(const void *a, uint64_t na, const void *b, uint64_t nb)
{
    return na == nb && (na == 0 || memcmp(a, b, na) == 0);
}

/* Copy g through the writer and read the file back. */
static void writer_roundtrip(const struct bn_gguf *g)
{
    int64_t nk = bn_gguf_n_kv(g), nt = bn_gguf_n_tensors(g);
    if (nk > ROUNDTRIP_MAX_ITEMS || nt > ROUNDTRIP_MAX_ITEMS || !tmp_dir[0])
        return;
    char name[BN_GGUF_MAX_NAME];
    static char key[65536 + 1];
    if (bn_gguf_alignment(g) > ROUNDTRIP_MAX_ALIGNMENT)
        return;
    for (int64_t i = 0; i < nk; i++)
        if (!cstr(bn_gguf_key(g, i), key, sizeof key))
            return; /* the writer takes C strings: a key with a NUL cannot be copied */
    for (int64_t i = 0; i < nt; i++)
        if (!cstr(bn_gguf_tensor(g, i)->name, name, sizeof name))
            return;

    struct bn_gguf_writer *w = bn_gguf_writer_new();
    if (!w)
        fuzz_fail("gguf: out of memory");
    for (int64_t i = 0; i < nk; i++)
        bn_gguf_set_from(w, g, i);
    for (int64_t i = 0; i < nt; i++) {
        const struct bn_gguf_tensor *t = bn_gguf_tensor(g, i);
        cstr(t->name, name, sizeof name);
        bn_gguf_add_tensor_data(w, name, t->type, t->n_dims, t->ne, t->data);
    }
    struct bn_err err;
    if (bn_gguf_writer_write(w, tmp_path, &err))
        fuzz_fail("gguf: the writer refuses a file the reader accepted: %s", err.msg);
    bn_gguf_writer_free(w);

    struct bn_mapped_file m;
    struct bn_gguf *r = NULL;
    if (bn_map_file(tmp_path, &m, &err))
        fuzz_fail("gguf: %s", err.msg);
    if (bn_gguf_open(&r, m.base, m.size, "roundtrip", 0, &err))
        fuzz_fail("gguf: the writer's copy does not read back: %s", err.msg);
    if (bn_gguf_n_kv(r) != nk || bn_gguf_n_tensors(r) != nt)
        fuzz_fail("gguf: round trip: %lld keys / %lld tensors became %lld / %lld", (long long)nk, (long long)nt,
                  (long long)bn_gguf_n_kv(r), (long long)bn_gguf_n_tensors(r));
    for (int64_t i = 0; i < nk; i++) {
        enum bn_gguf_vtype ta, tb;
        const void *va, *vb;
        uint64_t la, lb;
        struct bn_str ka = bn_gguf_key(g, i), kb = bn_gguf_key(r, i);
        if (!bn_gguf_kv_raw(g, i, &ta, &va, &la) || !bn_gguf_kv_raw(r, i, &tb, &vb, &lb) ||
            !same_bytes(ka.ptr, ka.len, kb.ptr, kb.len) || ta != tb || !same_bytes(va, la, vb, lb))
            fuzz_fail("gguf: round trip: key #%lld '%.*s' changed", (long long)i, (int)(ka.len > 80 ? 80 : ka.len),
                      ka.ptr);
    }
    for (int64_t i = 0; i < nt; i++) {
        const struct bn_gguf_tensor *a = bn_gguf_tensor(g, i), *b = bn_gguf_tensor(r, i);
        if (!same_bytes(a->name.ptr, a->name.len, b->name.ptr, b->name.len) || a->type != b->type ||
            a->n_dims != b->n_dims || memcmp(a->ne, b->ne, sizeof a->ne) != 0 ||
            !same_bytes(a->data, a->bytes, b->data, b->bytes))
            fuzz_fail("gguf: round trip: tensor #%lld '%.*s' changed", (long long)i, (int)a->name.len, a->name.ptr);
    }
    bn_gguf_close(r);
    bn_unmap_file(&m);
    unlink(tmp_path);
}

static int gguf_one(const uint8_t *data, size_t size)
{
    static const unsigned flag_sets[] = { 0, BN_GGUF_HEADER_ONLY };
    for (size_t k = 0; k < 2; k++) {
        unsigned flags = flag_sets[k];
        struct bn_gguf *g = (struct bn_gguf *)1; /* must be reset to NULL on failure */
        struct bn_err err = { { 0 } };
        if (bn_gguf_open(&g, data, size, "fuzz.gguf", flags, &err)) {
            if (g)
                fuzz_fail("gguf: a failed open left *out set");
            if (!err.msg[0] || strnlen(err.msg, sizeof err.msg) == sizeof err.msg)
                fuzz_fail("gguf: a failed open gave no error message");
            continue;
        }
        if (bn_gguf_version(g) != 2 && bn_gguf_version(g) != 3)
            fuzz_fail("gguf: version %u accepted", bn_gguf_version(g));
        uint64_t a = bn_gguf_alignment(g);
        if (a == 0 || (a & (a - 1)) || bn_gguf_data_offset(g) % a)
            fuzz_fail("gguf: alignment %llu, data offset %llu", (unsigned long long)a,
                      (unsigned long long)bn_gguf_data_offset(g));
        walk_keys(g);
        walk_tensors(g, flags & BN_GGUF_HEADER_ONLY, size);
        consumers(g, flags & BN_GGUF_HEADER_ONLY);
        if (!(flags & BN_GGUF_HEADER_ONLY))
            writer_roundtrip(g);
        bn_gguf_close(g);
    }
    return 0;
}

const struct fuzz_target fuzz_target_gguf = { "gguf", gguf_init, gguf_one, gguf_fini };
