/* engine/gguf.c — GGUF v2/v3 reader over a memory region, without copying.
 *
 * File layout (all little-endian):
 *   magic u32 "GGUF", version u32, n_tensors u64, n_kv u64
 *   n_kv x   { key: string, type u32, value }
 *   n_tensors x { name: string, n_dims u32, ne u64[n_dims], type u32, offset u64 }
 *   zero padding to `general.alignment` (default 32), then the data section;
 *   each tensor's offset is relative to the data section and aligned.
 *   string = len u64 + bytes (no NUL); array = elem type u32 + n u64 + elements.
 *
 * Every read goes through a cursor that checks the remaining bytes first, so a
 * truncated or hostile file ends in an error message, never in a read past the
 * region.  Counts are compared with the smallest possible encoding of what they
 * count before anything is allocated for them.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitnet.h"
#include "gguf_raw.h"

/* Smallest encodings, used to reject absurd counts before allocating. */
#define MIN_KV_BYTES (8 + 1 + 4 + 1)          /* key len, 1-byte key, type, u8 value */
#define MIN_TENSOR_INFO_BYTES (8 + 4 + 8 + 4 + 8) /* name len, n_dims, one ne, type, offset */
#define MIN_STRING_BYTES 8                    /* length field of an empty string */
#define MIN_ARRAY_BYTES (4 + 8)               /* element type + count of an empty array */
#define HEADER_BYTES (4 + 4 + 8 + 8)
/* The GGUF spec limits keys to 65535 bytes. */
#define MAX_KEY_BYTES 65535u
/* bitnet.cpp's fork uses these ids for layouts tied to a model shape. */
#define GGUF_ID_I8_S 37
#define GGUF_ID_TL1 38
#define GGUF_ID_TL2 39

/* One array: a top-level ARRAY value or an element of one. */
struct arr_node {
    enum bn_gguf_vtype type; /* element type */
    uint64_t n;
    const uint8_t *data; /* first element */
    uint64_t slot0;      /* STRING/ARRAY elements: first of n entries in g->slots */
};

struct gguf_kv {
    struct bn_str key;
    enum bn_gguf_vtype type;
    const uint8_t *val; /* value bytes, after the type field */
    uint64_t val_bytes;
    uint64_t node;      /* ARRAY: index in g->nodes */
};

/* Open-addressing hash index from a name to an entry number. */
struct name_index {
    int64_t *slot; /* -1 = empty */
    uint64_t mask; /* capacity - 1, capacity a power of two >= 2n */
};

struct bn_gguf {
    const uint8_t *base;
    uint64_t size;
    char *label;
    unsigned flags;
    uint32_t version;
    uint64_t alignment;
    uint64_t data_offset;

    struct gguf_kv *kv;
    int64_t n_kv;
    struct bn_gguf_tensor *tensors;
    int64_t n_tensors;
    struct name_index kv_index, tensor_index;

    /* Element index of arrays with variable-size elements, for O(1) access:
     * slots[node.slot0 + i] = for STRING arrays the region offset of element i's
     * length field, for ARRAY arrays the node index of element i.  Bounded by the
     * region: every such element takes at least 8 bytes of it. */
    struct arr_node *nodes;
    uint64_t n_nodes, cap_nodes;
    uint64_t *slots;
    uint64_t n_slots, cap_slots;
};

/* ------------------------------------------------------------------------------
 * Value types
 * --------------------------------------------------------------------------- */
static const struct {
    const char *name;
    uint8_t size;
} vtypes[] = {
    [BN_GGUF_UINT8] = {"u8", 1},     [BN_GGUF_INT8] = {"i8", 1},
    [BN_GGUF_UINT16] = {"u16", 2},   [BN_GGUF_INT16] = {"i16", 2},
    [BN_GGUF_UINT32] = {"u32", 4},   [BN_GGUF_INT32] = {"i32", 4},
    [BN_GGUF_FLOAT32] = {"f32", 4},  [BN_GGUF_BOOL] = {"bool", 1},
    [BN_GGUF_STRING] = {"string", 0}, [BN_GGUF_ARRAY] = {"array", 0},
    [BN_GGUF_UINT64] = {"u64", 8},   [BN_GGUF_INT64] = {"i64", 8},
    [BN_GGUF_FLOAT64] = {"f64", 8},
};
#define N_VTYPES (sizeof vtypes / sizeof vtypes[0])

size_t bn_gguf_vtype_size(uint32_t type) { return type < N_VTYPES ? vtypes[type].size : 0; }
const char *bn_gguf_vtype_name(uint32_t type)
{
    return type < N_VTYPES ? vtypes[type].name : "unknown";
}
static bool vtype_is_int(enum bn_gguf_vtype t)
{
    switch (t) {
    case BN_GGUF_UINT8: case BN_GGUF_INT8: case BN_GGUF_UINT16: case BN_GGUF_INT16:
    case BN_GGUF_UINT32: case BN_GGUF_INT32: case BN_GGUF_UINT64: case BN_GGUF_INT64:
        return true;
    default:
        return false;
    }
}

static uint64_t rd_u64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}
static uint32_t rd_u32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* An integer element of type t at p: either negative (*neg, value in *iv) or not
 * (value in *uv). */
static void rd_int(enum bn_gguf_vtype t, const uint8_t *p, bool *neg, int64_t *iv, uint64_t *uv)
{
    int64_t s = 0;
    *neg = false;
    *uv = 0;
    switch (t) {
    case BN_GGUF_UINT8: *uv = p[0]; return;
    case BN_GGUF_UINT16: { uint16_t v; memcpy(&v, p, 2); *uv = v; return; }
    case BN_GGUF_UINT32: { uint32_t v; memcpy(&v, p, 4); *uv = v; return; }
    case BN_GGUF_UINT64: *uv = rd_u64(p); return;
    case BN_GGUF_INT8: { int8_t v; memcpy(&v, p, 1); s = v; break; }
    case BN_GGUF_INT16: { int16_t v; memcpy(&v, p, 2); s = v; break; }
    case BN_GGUF_INT32: { int32_t v; memcpy(&v, p, 4); s = v; break; }
    case BN_GGUF_INT64: { int64_t v; memcpy(&v, p, 8); s = v; break; }
    default: return;
    }
    if (s < 0) {
        *neg = true;
        *iv = s;
    } else {
        *uv = (uint64_t)s;
    }
}

/* "N bytes", or "N bytes (M MB)" from 1 MiB on. */
static const char *human_bytes(char *buf, size_t len, uint64_t v)
{
    if (v < (1u << 20))
        snprintf(buf, len, "%" PRIu64 " bytes", v);
    else
        snprintf(buf, len, "%" PRIu64 " bytes (%.0f MB)", v, (double)v / (1 << 20));
    return buf;
}

/* ------------------------------------------------------------------------------
 * Cursor with "where am I" state for error messages
 * --------------------------------------------------------------------------- */
#define MAX_PATH_DEPTH (BN_GGUF_MAX_ARRAY_DEPTH + 1)

struct cursor {
    struct bn_gguf *g;
    uint64_t pos;
    struct bn_err *err;
    /* where: "header", key #item 'name', tensor #item 'name'; plus array indices */
    const char *section;
    int64_t item;
    struct bn_str name;
    int depth;
    uint64_t path[MAX_PATH_DEPTH];
};

/* "key #3 'general.name' element [5][2]" into buf. */
static const char *where(const struct cursor *c, char *buf, size_t len)
{
    int n;
    if (c->item < 0)
        n = snprintf(buf, len, "%s", c->section);
    else if (c->name.ptr)
        n = snprintf(buf, len, "%s #%" PRId64 " '%.*s'", c->section, c->item,
                     (int)(c->name.len > 80 ? 80 : c->name.len), c->name.ptr);
    else
        n = snprintf(buf, len, "%s #%" PRId64, c->section, c->item);
    if (c->depth > 0 && n > 0 && (size_t)n < len) {
        n += snprintf(buf + n, len - (size_t)n, " element ");
        for (int d = 0; d < c->depth && n > 0 && (size_t)n < len; d++)
            n += snprintf(buf + n, len - (size_t)n, "[%" PRIu64 "]", c->path[d]);
    }
    return buf;
}

/* Error at the cursor: "<label>: <where>: <message>". */
__attribute__((format(printf, 2, 3))) static int cur_err(struct cursor *c, const char *fmt, ...)
{
    char w[200], m[BN_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    return bn_errf(c->err, "%s: %s: %s", c->g->label, where(c, w, sizeof w), m);
}

static uint64_t remaining(const struct cursor *c) { return c->g->size - c->pos; }

/* Check that `n` bytes of `field` are there. */
static int need(struct cursor *c, uint64_t n, const char *field)
{
    if (n <= remaining(c))
        return 0;
    return cur_err(c, "%s at offset %" PRIu64 " needs %" PRIu64 " bytes but only %" PRIu64
                      " remain (file truncated or corrupt)",
                   field, c->pos, n, remaining(c));
}

static int take_u32(struct cursor *c, const char *field, uint32_t *v)
{
    if (need(c, 4, field))
        return -1;
    *v = rd_u32(c->g->base + c->pos);
    c->pos += 4;
    return 0;
}
static int take_u64(struct cursor *c, const char *field, uint64_t *v)
{
    if (need(c, 8, field))
        return -1;
    *v = rd_u64(c->g->base + c->pos);
    c->pos += 8;
    return 0;
}
/* A string whose length must be <= max_len. */
static int take_str(struct cursor *c, const char *field, uint64_t max_len, struct bn_str *s)
{
    uint64_t len;
    uint64_t at = c->pos;
    if (take_u64(c, field, &len))
        return -1;
    if (len > max_len) {
        c->pos = at;
        return cur_err(c, "%s at offset %" PRIu64 " is %" PRIu64 " bytes long; the limit is %" PRIu64,
                       field, at, len, max_len);
    }
    if (len > remaining(c)) {
        c->pos = at;
        return cur_err(c, "%s at offset %" PRIu64 " says %" PRIu64 " bytes but only %" PRIu64
                          " remain after its length field (file truncated or corrupt)",
                       field, at, len, remaining(c) - 8);
    }
    s->ptr = (const char *)c->g->base + c->pos;
    s->len = len;
    c->pos += len;
    return 0;
}

/* A count of elements each taking at least min_bytes: reject it before allocating
 * if the rest of the region cannot hold that many. */
static int check_count(struct cursor *c, uint64_t n, uint64_t min_bytes, const char *what,
                       uint64_t at)
{
    uint64_t need_bytes;
    if (!__builtin_mul_overflow(n, min_bytes, &need_bytes) && need_bytes <= remaining(c))
        return 0;
    return cur_err(c, "%s at offset %" PRIu64 " is %" PRIu64 ", but the %" PRIu64
                      " bytes left can hold at most %" PRIu64 " (file truncated or corrupt)",
                   what, at, n, remaining(c), remaining(c) / min_bytes);
}

/* ------------------------------------------------------------------------------
 * Array index pools
 * --------------------------------------------------------------------------- */
static int grow(void **p, uint64_t *cap, uint64_t need_n, size_t elem)
{
    if (need_n <= *cap)
        return 0;
    uint64_t c = *cap ? *cap : 16;
    while (c < need_n)
        c *= 2; /* need_n is bounded by the region size, so this cannot overflow */
    size_t bytes;
    if (__builtin_mul_overflow((size_t)c, elem, &bytes))
        return -1;
    void *q = realloc(*p, bytes);
    if (!q)
        return -1;
    *p = q;
    *cap = c;
    return 0;
}

static int new_node(struct cursor *c, uint64_t *idx)
{
    struct bn_gguf *g = c->g;
    if (grow((void **)&g->nodes, &g->cap_nodes, g->n_nodes + 1, sizeof *g->nodes))
        return cur_err(c, "out of memory indexing arrays");
    *idx = g->n_nodes++;
    return 0;
}

static int new_slots(struct cursor *c, uint64_t n, uint64_t *first)
{
    struct bn_gguf *g = c->g;
    if (grow((void **)&g->slots, &g->cap_slots, g->n_slots + n, sizeof *g->slots))
        return cur_err(c, "out of memory indexing %" PRIu64 " array elements", n);
    *first = g->n_slots;
    g->n_slots += n;
    return 0;
}

/* ------------------------------------------------------------------------------
 * Values
 * --------------------------------------------------------------------------- */
static int parse_array(struct cursor *c, int depth, uint64_t *node_out);

/* Skip over one value of type t (already validated), indexing arrays. */
static int parse_value(struct cursor *c, enum bn_gguf_vtype t, int depth, uint64_t *node_out)
{
    if (t == BN_GGUF_STRING) {
        struct bn_str s;
        return take_str(c, "string", UINT64_MAX, &s);
    }
    if (t == BN_GGUF_ARRAY)
        return parse_array(c, depth, node_out);
    if (need(c, vtypes[t].size, vtypes[t].name))
        return -1;
    c->pos += vtypes[t].size;
    return 0;
}

static int take_vtype(struct cursor *c, const char *field, enum bn_gguf_vtype *t)
{
    uint64_t at = c->pos;
    uint32_t v;
    if (take_u32(c, field, &v))
        return -1;
    if (v >= N_VTYPES) {
        c->pos = at;
        return cur_err(c, "%s at offset %" PRIu64 " is %" PRIu32 ", not a GGUF value type (0..%zu)",
                       field, at, v, N_VTYPES - 1);
    }
    *t = (enum bn_gguf_vtype)v;
    return 0;
}

static int parse_array(struct cursor *c, int depth, uint64_t *node_out)
{
    if (depth >= BN_GGUF_MAX_ARRAY_DEPTH)
        return cur_err(c, "arrays nested deeper than %d levels at offset %" PRIu64,
                       BN_GGUF_MAX_ARRAY_DEPTH, c->pos);
    enum bn_gguf_vtype et;
    uint64_t n, at, idx = 0;
    if (take_vtype(c, "array element type", &et))
        return -1;
    at = c->pos;
    if (take_u64(c, "array length", &n))
        return -1;
    if (new_node(c, &idx))
        return -1;
    struct arr_node node = {.type = et, .n = n, .data = c->g->base + c->pos, .slot0 = 0};

    if (et != BN_GGUF_STRING && et != BN_GGUF_ARRAY) {
        uint64_t bytes;
        if (__builtin_mul_overflow(n, (uint64_t)vtypes[et].size, &bytes) || bytes > remaining(c))
            return cur_err(c, "array length at offset %" PRIu64 " is %" PRIu64 " %s elements"
                              " but only %" PRIu64 " bytes remain (file truncated or corrupt)",
                           at, n, vtypes[et].name, remaining(c));
        c->pos += bytes;
    } else {
        uint64_t min = et == BN_GGUF_STRING ? MIN_STRING_BYTES : MIN_ARRAY_BYTES;
        if (check_count(c, n, min, et == BN_GGUF_STRING ? "string array length" : "array-of-arrays length", at))
            return -1;
        if (new_slots(c, n, &node.slot0))
            return -1;
        c->path[c->depth++] = 0;
        for (uint64_t i = 0; i < n; i++) {
            c->path[c->depth - 1] = i;
            if (et == BN_GGUF_STRING) {
                uint64_t off = c->pos, len;
                /* inlined take_str: this loop runs 400k times for a Llama-3 vocab */
                if (remaining(c) >= 8 && (len = rd_u64(c->g->base + off)) <= remaining(c) - 8) {
                    c->pos += 8 + len;
                } else {
                    struct bn_str s;
                    if (take_str(c, "string", UINT64_MAX, &s))
                        return -1;
                }
                c->g->slots[node.slot0 + i] = off;
            } else {
                uint64_t child;
                if (parse_array(c, depth + 1, &child))
                    return -1;
                c->g->slots[node.slot0 + i] = child;
            }
        }
        c->depth--;
    }
    c->g->nodes[idx] = node;
    *node_out = idx;
    return 0;
}

/* ------------------------------------------------------------------------------
 * Name index (FNV-1a)
 * --------------------------------------------------------------------------- */
static uint64_t hash_name(const char *p, uint64_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (uint64_t i = 0; i < n; i++) {
        h ^= (uint8_t)p[i];
        h *= 1099511628211ull;
    }
    return h;
}

static int index_init(struct name_index *ix, int64_t n)
{
    uint64_t cap = 16;
    while (cap < 2 * (uint64_t)n)
        cap *= 2;
    ix->slot = malloc(cap * sizeof *ix->slot);
    if (!ix->slot)
        return -1;
    memset(ix->slot, 0xff, cap * sizeof *ix->slot); /* all -1 */
    ix->mask = cap - 1;
    return 0;
}

/* Entry number whose name(i) equals (p, n), or -1; when `insert` is given and the
 * name is absent, stores it. */
typedef struct bn_str (*name_of_fn)(const struct bn_gguf *g, int64_t i);
static int64_t index_find(const struct name_index *ix, const struct bn_gguf *g, name_of_fn name_of,
                          const char *p, uint64_t n, int64_t insert)
{
    if (!ix->slot)
        return -1;
    for (uint64_t h = hash_name(p, n) & ix->mask;; h = (h + 1) & ix->mask) {
        int64_t e = ix->slot[h];
        if (e < 0) {
            if (insert >= 0)
                ix->slot[h] = insert;
            return -1;
        }
        struct bn_str s = name_of(g, e);
        if (s.len == n && memcmp(s.ptr, p, n) == 0)
            return e;
    }
}

static struct bn_str kv_name(const struct bn_gguf *g, int64_t i) { return g->kv[i].key; }
static struct bn_str tensor_name(const struct bn_gguf *g, int64_t i) { return g->tensors[i].name; }

/* ------------------------------------------------------------------------------
 * Header, keys, tensor infos
 * --------------------------------------------------------------------------- */
static int parse_header(struct cursor *c, uint64_t *n_tensors, uint64_t *n_kv)
{
    struct bn_gguf *g = c->g;
    uint32_t version;
    if (g->size < 4 || rd_u32(g->base) != BN_GGUF_MAGIC) {
        char shown[17] = "";
        for (uint64_t i = 0; i < 4 && i < g->size; i++) {
            uint8_t b = g->base[i];
            if (b >= 0x20 && b < 0x7f)
                snprintf(shown + strlen(shown), 5, "%c", b);
            else
                snprintf(shown + strlen(shown), 5, "\\x%02x", b);
        }
        return bn_errf(c->err, "%s: not a GGUF file: it starts with '%s' (%" PRIu64
                               " bytes), not 'GGUF'",
                       g->label, shown, g->size < 4 ? g->size : 4);
    }
    c->pos = 4;
    if (take_u32(c, "version", &version))
        return -1;
    if (version == 1)
        return bn_errf(c->err, "%s: GGUF version 1 (32-bit counts) is not supported; convert the "
                               "file to GGUF v3 with a current llama.cpp or gguf-py",
                       g->label);
    if ((version & 0xffff) == 0 && version != 0)
        return bn_errf(c->err, "%s: GGUF version field 0x%08" PRIx32 " looks like a big-endian file, "
                               "which bitnetd does not read; convert it to little-endian",
                       g->label, version);
    if (version != 2 && version != 3)
        return bn_errf(c->err, "%s: unsupported GGUF version %" PRIu32 " (bitnetd reads versions 2 and 3)",
                       g->label, version);
    g->version = version;
    uint64_t at_t = c->pos;
    if (take_u64(c, "tensor count", n_tensors))
        return -1;
    uint64_t at_kv = c->pos;
    if (take_u64(c, "key count", n_kv))
        return -1;
    if (check_count(c, *n_kv, MIN_KV_BYTES, "key count", at_kv) ||
        check_count(c, *n_tensors, MIN_TENSOR_INFO_BYTES, "tensor count", at_t))
        return -1;
    return 0;
}

static int parse_kvs(struct cursor *c, uint64_t n_kv)
{
    struct bn_gguf *g = c->g;
    c->section = "key";
    g->kv = calloc(n_kv ? n_kv : 1, sizeof *g->kv);
    if (!g->kv || index_init(&g->kv_index, (int64_t)n_kv))
        return bn_errf(c->err, "%s: out of memory for %" PRIu64 " keys", g->label, n_kv);
    for (uint64_t i = 0; i < n_kv; i++) {
        struct gguf_kv *kv = &g->kv[i];
        c->item = (int64_t)i;
        c->name.ptr = NULL;
        uint64_t at = c->pos;
        if (take_str(c, "key name", MAX_KEY_BYTES, &kv->key))
            return -1;
        if (kv->key.len == 0)
            return cur_err(c, "empty key name at offset %" PRIu64, at);
        c->name = kv->key;
        int64_t dup = index_find(&g->kv_index, g, kv_name, kv->key.ptr, kv->key.len, (int64_t)i);
        if (dup >= 0)
            return cur_err(c, "duplicate key (also key #%" PRId64 ")", dup);
        if (take_vtype(c, "value type", &kv->type))
            return -1;
        kv->val = g->base + c->pos;
        if (parse_value(c, kv->type, 0, &kv->node))
            return -1;
        kv->val_bytes = (uint64_t)(g->base + c->pos - kv->val);
        g->n_kv = (int64_t)i + 1;
    }
    c->name.ptr = NULL;
    return 0;
}

static int read_alignment(struct cursor *c)
{
    struct bn_gguf *g = c->g;
    g->alignment = BN_GGUF_DEFAULT_ALIGNMENT;
    int64_t i = bn_gguf_find_key(g, "general.alignment");
    if (i < 0)
        return 0;
    const struct gguf_kv *kv = &g->kv[i];
    if (kv->type != BN_GGUF_UINT32)
        return bn_errf(c->err, "%s: key 'general.alignment' has type %s; GGUF requires u32",
                       g->label, vtypes[kv->type].name);
    uint32_t a = rd_u32(kv->val);
    if (a == 0 || (a & (a - 1)) != 0)
        return bn_errf(c->err, "%s: key 'general.alignment' is %" PRIu32
                               "; it must be a non-zero power of two",
                       g->label, a);
    g->alignment = a;
    return 0;
}

static int parse_tensor_info(struct cursor *c, int64_t i)
{
    struct bn_gguf *g = c->g;
    struct bn_gguf_tensor *t = &g->tensors[i];
    c->item = i;
    c->name.ptr = NULL;
    if (take_str(c, "tensor name", BN_GGUF_MAX_NAME - 1, &t->name))
        return -1;
    c->name = t->name;
    int64_t dup = index_find(&g->tensor_index, g, tensor_name, t->name.ptr, t->name.len, i);
    if (dup >= 0)
        return cur_err(c, "duplicate tensor name (also tensor #%" PRId64 ")", dup);

    uint64_t at = c->pos;
    if (take_u32(c, "n_dims", &t->n_dims))
        return -1;
    if (t->n_dims < 1 || t->n_dims > BN_GGUF_MAX_DIMS)
        return cur_err(c, "n_dims at offset %" PRIu64 " is %" PRIu32 "; it must be 1..%d", at,
                       t->n_dims, BN_GGUF_MAX_DIMS);
    for (int d = 0; d < BN_GGUF_MAX_DIMS; d++)
        t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        uint64_t v;
        at = c->pos;
        if (take_u64(c, "dimension", &v))
            return -1;
        if (v == 0 || v > (uint64_t)INT64_MAX)
            return cur_err(c, "dimension ne[%" PRIu32 "] at offset %" PRIu64 " is %" PRId64
                              "; dimensions must be >= 1",
                           d, at, (int64_t)v);
        t->ne[d] = (int64_t)v;
    }
    int64_t rows, n;
    if (__builtin_mul_overflow(t->ne[1], t->ne[2], &rows) ||
        __builtin_mul_overflow(rows, t->ne[3], &rows) || __builtin_mul_overflow(rows, t->ne[0], &n))
        return cur_err(c, "shape [%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64
                          "] has more than 2^63 elements",
                       t->ne[0], t->ne[1], t->ne[2], t->ne[3]);

    uint32_t type_id;
    at = c->pos;
    if (take_u32(c, "type", &type_id))
        return -1;
    const struct bn_type_traits *tr = bn_type_from_gguf(type_id);
    if (type_id == GGUF_ID_I8_S || type_id == GGUF_ID_TL1 || type_id == GGUF_ID_TL2)
        return cur_err(c, "type %" PRIu32 " (%s): bitnet.cpp I8_S/TL1/TL2 layouts are shape-specific "
                          "and not supported; convert the model to I2_S",
                       type_id, type_id == GGUF_ID_I8_S ? "I8_S" : type_id == GGUF_ID_TL1 ? "TL1" : "TL2");
    if (!tr)
        return cur_err(c, "type id %" PRIu32 " at offset %" PRIu64 " is not a tensor type bitnetd knows",
                       type_id, at);
    t->type = (enum bn_type)type_id;
    if (!bn_tensor_bytes(t->type, rows, t->ne[0], &t->bytes) && t->ne[0] % tr->block_elems == 0)
        return cur_err(c, "shape [%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64
                          "] of type %s is too large (its byte size overflows)",
                       t->ne[0], t->ne[1], t->ne[2], t->ne[3], tr->name);
    if (!bn_tensor_bytes(t->type, rows, t->ne[0], &t->bytes))
        return cur_err(c, "shape [%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64
                          "] is not valid for type %s (ne[0] must be a multiple of %" PRId64 ")",
                       t->ne[0], t->ne[1], t->ne[2], t->ne[3], tr->name, tr->block_elems);

    at = c->pos;
    if (take_u64(c, "data offset", &t->offset))
        return -1;
    if (t->offset % g->alignment != 0)
        return cur_err(c, "data offset %" PRIu64 " (at offset %" PRIu64 ") is not a multiple of "
                          "the alignment %" PRIu64,
                       t->offset, at, g->alignment);
    g->n_tensors = i + 1;
    return 0;
}

static int cmp_by_offset(const void *a, const void *b, void *ctx)
{
    const struct bn_gguf_tensor *t = ctx;
    uint64_t x = t[*(const int64_t *)a].offset, y = t[*(const int64_t *)b].offset;
    return x < y ? -1 : x > y;
}

/* Data bounds and overlaps, once the data section offset is known. */
static int check_tensor_data(struct cursor *c)
{
    struct bn_gguf *g = c->g;
    char b1[64], b2[64];
    for (int64_t i = 0; i < g->n_tensors; i++) {
        struct bn_gguf_tensor *t = &g->tensors[i];
        uint64_t start, end;
        if (__builtin_add_overflow(g->data_offset, t->offset, &start) ||
            __builtin_add_overflow(start, t->bytes, &end))
            return bn_errf(c->err, "%s: tensor '%.*s' data offset %" PRIu64 " + %" PRIu64
                                   " bytes overflows",
                           g->label, (int)t->name.len, t->name.ptr, t->offset, t->bytes);
        if (g->flags & BN_GGUF_HEADER_ONLY) {
            t->data = NULL;
            continue;
        }
        if (end > g->size)
            return bn_errf(c->err, "%s: tensor '%.*s' data ends at %s, past the end of the file (%s)",
                           g->label, (int)t->name.len, t->name.ptr, human_bytes(b1, sizeof b1, end),
                           human_bytes(b2, sizeof b2, g->size));
        t->data = g->base + start;
    }
    if (g->n_tensors < 2)
        return 0;
    int64_t *order = malloc((size_t)g->n_tensors * sizeof *order);
    if (!order)
        return bn_errf(c->err, "%s: out of memory", g->label);
    for (int64_t i = 0; i < g->n_tensors; i++)
        order[i] = i;
    qsort_r(order, (size_t)g->n_tensors, sizeof *order, cmp_by_offset, g->tensors);
    for (int64_t k = 0; k + 1 < g->n_tensors; k++) {
        const struct bn_gguf_tensor *a = &g->tensors[order[k]], *b = &g->tensors[order[k + 1]];
        if (a->offset + a->bytes > b->offset) {
            bn_errf(c->err, "%s: tensors '%.*s' (data offset %" PRIu64 ", %" PRIu64
                            " bytes) and '%.*s' (data offset %" PRIu64 ") overlap",
                    g->label, (int)a->name.len, a->name.ptr, a->offset, a->bytes,
                    (int)b->name.len, b->name.ptr, b->offset);
            free(order);
            return -1;
        }
    }
    free(order);
    return 0;
}

int bn_gguf_open(struct bn_gguf **out, const void *base, uint64_t size, const char *label,
                 unsigned flags, struct bn_err *err)
{
    *out = NULL;
    if (!label)
        label = "(gguf)";
    struct bn_gguf *g = calloc(1, sizeof *g);
    if (!g || !(g->label = strdup(label))) {
        free(g);
        return bn_errf(err, "%s: out of memory", label);
    }
    g->base = base;
    g->size = base ? size : 0;
    g->flags = flags;
    struct cursor c = {.g = g, .err = err, .section = "header", .item = -1};

    uint64_t n_tensors, n_kv;
    if (parse_header(&c, &n_tensors, &n_kv) || parse_kvs(&c, n_kv) || read_alignment(&c))
        goto fail;

    c.section = "tensor";
    g->tensors = calloc(n_tensors ? n_tensors : 1, sizeof *g->tensors);
    if (!g->tensors || index_init(&g->tensor_index, (int64_t)n_tensors)) {
        bn_errf(err, "%s: out of memory for %" PRIu64 " tensors", label, n_tensors);
        goto fail;
    }
    for (uint64_t i = 0; i < n_tensors; i++)
        if (parse_tensor_info(&c, (int64_t)i))
            goto fail;

    uint64_t a = g->alignment;
    if (__builtin_add_overflow(c.pos, a - 1, &g->data_offset)) {
        bn_errf(err, "%s: data section offset overflows", label);
        goto fail;
    }
    g->data_offset -= g->data_offset % a;
    if (check_tensor_data(&c))
        goto fail;
    *out = g;
    return 0;
fail:
    bn_gguf_close(g);
    return -1;
}

void bn_gguf_close(struct bn_gguf *g)
{
    if (!g)
        return;
    free(g->kv);
    free(g->tensors);
    free(g->kv_index.slot);
    free(g->tensor_index.slot);
    free(g->nodes);
    free(g->slots);
    free(g->label);
    free(g);
}

uint32_t bn_gguf_version(const struct bn_gguf *g) { return g->version; }
uint64_t bn_gguf_alignment(const struct bn_gguf *g) { return g->alignment; }
uint64_t bn_gguf_data_offset(const struct bn_gguf *g) { return g->data_offset; }
const char *bn_gguf_label(const struct bn_gguf *g) { return g->label; }

/* ------------------------------------------------------------------------------
 * Metadata access
 * --------------------------------------------------------------------------- */
int64_t bn_gguf_n_kv(const struct bn_gguf *g) { return g->n_kv; }

int64_t bn_gguf_find_key(const struct bn_gguf *g, const char *key)
{
    return index_find(&g->kv_index, g, kv_name, key, strlen(key), -1);
}

struct bn_str bn_gguf_key(const struct bn_gguf *g, int64_t i)
{
    if (i < 0 || i >= g->n_kv)
        return (struct bn_str){NULL, 0};
    return g->kv[i].key;
}

enum bn_gguf_vtype bn_gguf_kv_type(const struct bn_gguf *g, int64_t i)
{
    return (i < 0 || i >= g->n_kv) ? (enum bn_gguf_vtype)-1 : g->kv[i].type;
}

bool bn_gguf_kv_raw(const struct bn_gguf *g, int64_t i, enum bn_gguf_vtype *type,
                    const void **bytes, uint64_t *n_bytes)
{
    if (i < 0 || i >= g->n_kv)
        return false;
    *type = g->kv[i].type;
    *bytes = g->kv[i].val;
    *n_bytes = g->kv[i].val_bytes;
    return true;
}

/* The key's entry, or -1 with "missing" in err. */
static const struct gguf_kv *lookup(const struct bn_gguf *g, const char *key, struct bn_err *err)
{
    int64_t i = bn_gguf_find_key(g, key);
    if (i < 0) {
        bn_errf(err, "%s: key '%s' is missing", g->label, key);
        return NULL;
    }
    return &g->kv[i];
}

static int wrong_type(const struct bn_gguf *g, const struct gguf_kv *kv, const char *want,
                      struct bn_err *err)
{
    return bn_errf(err, "%s: key '%.*s' has type %s; expected %s", g->label, (int)kv->key.len,
                   kv->key.ptr, vtypes[kv->type].name, want);
}

/* Integer value of a key: negative in *iv or non-negative in *uv. */
static int get_int(const struct bn_gguf *g, const char *key, bool *neg, int64_t *iv, uint64_t *uv,
                   struct bn_err *err, const struct gguf_kv **kv_out)
{
    const struct gguf_kv *kv = lookup(g, key, err);
    if (!kv)
        return -1;
    if (!vtype_is_int(kv->type))
        return wrong_type(g, kv, "an integer", err);
    rd_int(kv->type, kv->val, neg, iv, uv);
    *kv_out = kv;
    return 0;
}

int bn_gguf_get_u64(const struct bn_gguf *g, const char *key, uint64_t *out, struct bn_err *err)
{
    bool neg;
    int64_t iv;
    uint64_t uv;
    const struct gguf_kv *kv;
    if (get_int(g, key, &neg, &iv, &uv, err, &kv))
        return -1;
    if (neg)
        return bn_errf(err, "%s: key '%s' is %" PRId64 "; it must not be negative", g->label, key, iv);
    *out = uv;
    return 0;
}

int bn_gguf_get_i64(const struct bn_gguf *g, const char *key, int64_t *out, struct bn_err *err)
{
    bool neg;
    int64_t iv;
    uint64_t uv;
    const struct gguf_kv *kv;
    if (get_int(g, key, &neg, &iv, &uv, err, &kv))
        return -1;
    if (!neg && uv > (uint64_t)INT64_MAX)
        return bn_errf(err, "%s: key '%s' is %" PRIu64 ", more than the limit %" PRId64, g->label,
                       key, uv, INT64_MAX);
    *out = neg ? iv : (int64_t)uv;
    return 0;
}

int bn_gguf_get_u32(const struct bn_gguf *g, const char *key, uint32_t *out, struct bn_err *err)
{
    uint64_t v;
    if (bn_gguf_get_u64(g, key, &v, err))
        return -1;
    if (v > UINT32_MAX)
        return bn_errf(err, "%s: key '%s' is %" PRIu64 ", more than the limit %" PRIu32, g->label,
                       key, v, UINT32_MAX);
    *out = (uint32_t)v;
    return 0;
}

int bn_gguf_get_f32(const struct bn_gguf *g, const char *key, float *out, struct bn_err *err)
{
    const struct gguf_kv *kv = lookup(g, key, err);
    if (!kv)
        return -1;
    if (kv->type == BN_GGUF_FLOAT32) {
        memcpy(out, kv->val, 4);
    } else if (kv->type == BN_GGUF_FLOAT64) {
        double d;
        memcpy(&d, kv->val, 8);
        *out = (float)d;
    } else {
        return wrong_type(g, kv, "f32 or f64", err);
    }
    return 0;
}

int bn_gguf_get_bool(const struct bn_gguf *g, const char *key, bool *out, struct bn_err *err)
{
    const struct gguf_kv *kv = lookup(g, key, err);
    if (!kv)
        return -1;
    if (kv->type != BN_GGUF_BOOL)
        return wrong_type(g, kv, "bool", err);
    *out = kv->val[0] != 0;
    return 0;
}

int bn_gguf_get_str(const struct bn_gguf *g, const char *key, struct bn_str *out, struct bn_err *err)
{
    const struct gguf_kv *kv = lookup(g, key, err);
    if (!kv)
        return -1;
    if (kv->type != BN_GGUF_STRING)
        return wrong_type(g, kv, "string", err);
    out->len = rd_u64(kv->val);
    out->ptr = (const char *)kv->val + 8;
    return 0;
}

static void arr_from_node(const struct bn_gguf *g, int64_t kv, uint64_t node, struct bn_gguf_arr *out)
{
    const struct arr_node *nd = &g->nodes[node];
    out->type = nd->type;
    out->n = nd->n;
    out->data = nd->data;
    out->g = g;
    out->kv = kv;
    out->sub = node;
}

int bn_gguf_get_arr(const struct bn_gguf *g, const char *key, struct bn_gguf_arr *out, struct bn_err *err)
{
    const struct gguf_kv *kv = lookup(g, key, err);
    if (!kv)
        return -1;
    if (kv->type != BN_GGUF_ARRAY)
        return wrong_type(g, kv, "array", err);
    arr_from_node(g, kv - g->kv, kv->node, out);
    return 0;
}

struct bn_str bn_gguf_arr_str(const struct bn_gguf_arr *a, uint64_t i)
{
    if (a->type != BN_GGUF_STRING || i >= a->n)
        return (struct bn_str){NULL, 0};
    const struct bn_gguf *g = a->g;
    const uint8_t *p = g->base + g->slots[g->nodes[a->sub].slot0 + i];
    return (struct bn_str){(const char *)p + 8, rd_u64(p)};
}

int64_t bn_gguf_arr_int(const struct bn_gguf_arr *a, uint64_t i)
{
    if (i >= a->n || !(vtype_is_int(a->type) || a->type == BN_GGUF_BOOL))
        return 0;
    const uint8_t *p = (const uint8_t *)a->data + i * vtypes[a->type].size;
    if (a->type == BN_GGUF_BOOL)
        return p[0] != 0;
    bool neg;
    int64_t iv;
    uint64_t uv;
    rd_int(a->type, p, &neg, &iv, &uv);
    return neg ? iv : (int64_t)uv;
}

double bn_gguf_arr_float(const struct bn_gguf_arr *a, uint64_t i)
{
    if (i >= a->n)
        return 0.0;
    const uint8_t *p = (const uint8_t *)a->data;
    if (a->type == BN_GGUF_FLOAT32) {
        float f;
        memcpy(&f, p + 4 * i, 4);
        return f;
    }
    if (a->type == BN_GGUF_FLOAT64) {
        double d;
        memcpy(&d, p + 8 * i, 8);
        return d;
    }
    return 0.0;
}

int bn_gguf_arr_sub(const struct bn_gguf_arr *a, uint64_t i, struct bn_gguf_arr *out)
{
    if (a->type != BN_GGUF_ARRAY || i >= a->n)
        return -1;
    const struct bn_gguf *g = a->g;
    arr_from_node(g, a->kv, g->slots[g->nodes[a->sub].slot0 + i], out);
    return 0;
}

/* ------------------------------------------------------------------------------
 * Tensors
 * --------------------------------------------------------------------------- */
int64_t bn_gguf_n_tensors(const struct bn_gguf *g) { return g->n_tensors; }

const struct bn_gguf_tensor *bn_gguf_tensor(const struct bn_gguf *g, int64_t i)
{
    return (i < 0 || i >= g->n_tensors) ? NULL : &g->tensors[i];
}

const struct bn_gguf_tensor *bn_gguf_find_tensor(const struct bn_gguf *g, const char *name)
{
    int64_t i = index_find(&g->tensor_index, g, tensor_name, name, strlen(name), -1);
    return i < 0 ? NULL : &g->tensors[i];
}
