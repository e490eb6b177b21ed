/* libipc/framing.c — message boundaries on a byte stream.  msgpack-c's streaming
 * unpacker owns the buffer and parses; in front of it a scanner walks msgpack headers
 * (without building anything) so that limits are enforced from the first bytes of a
 * message and msgpack-c only ever parses complete messages that passed them.  This
 * matters because msgpack-c allocates an array's or map's elements as soon as it
 * reads the count: 5 bytes claiming 2^32 elements must never reach it. */
#include <string.h>

#include "ipc.h"

#define FRAMER_INIT_BUFFER (64u << 10) /* bytes; grows to the largest message pending */
#define FRAMER_SHRINK_ABOVE (1u << 20) /* bytes: a buffer this large goes back to
                                        * FRAMER_INIT_BUFFER once no message is pending,
                                        * so an idle connection that once sent a 16 MiB
                                        * request does not keep 16 MiB */

void bn_rpc_framer_limits_default(struct bn_rpc_framer_limits *lim)
{
    lim->max_frame_bytes = BN_RPC_MAX_FRAME_DEFAULT;
    lim->max_elements = BN_RPC_MAX_ELEMENTS_DEFAULT;
    lim->max_depth = BN_RPC_MAX_DEPTH_DEFAULT;
}

static void scan_reset(struct bn_rpc_framer *f)
{
    f->scanned = 0;
    f->skip = 0;
    f->values = 0;
    f->depth = 0;
}

int bn_rpc_framer_init(struct bn_rpc_framer *f, const struct bn_rpc_framer_limits *lim)
{
    memset(f, 0, sizeof *f);
    if (lim)
        f->lim = *lim;
    else
        bn_rpc_framer_limits_default(&f->lim);
    if (f->lim.max_depth == 0 || f->lim.max_depth > BN_RPC_MAX_DEPTH_LIMIT ||
        f->lim.max_frame_bytes == 0 || f->lim.max_elements == 0)
        return -1;
    if (!msgpack_unpacker_init(&f->up, FRAMER_INIT_BUFFER))
        return -1;
    scan_reset(f);
    return 0;
}

void bn_rpc_framer_destroy(struct bn_rpc_framer *f)
{
    if (f->up.buffer)
        msgpack_unpacker_destroy(&f->up);
    memset(f, 0, sizeof *f);
}

/* Drop the message handed out last: its objects live in the unpacker's zone, and its
 * strings may point into the buffer (msgpack-c's "referenced" state).  Flushing then
 * clearing the zone releases both without freeing the zone's first chunk, so the next
 * message allocates nothing. */
static void release(struct bn_rpc_framer *f)
{
    if (!f->holding)
        return;
    msgpack_unpacker_flush_zone(&f->up);
    msgpack_unpacker_reset_zone(&f->up);
    msgpack_unpacker_reset(&f->up);
    f->holding = false;
}

/* msgpack-c's buffer only ever grows; start a fresh unpacker when nothing is pending
 * in a large one.  (The unpacker cannot be copied: its parser points into it.) */
static int shrink(struct bn_rpc_framer *f)
{
    if (f->up.used + f->up.free <= FRAMER_SHRINK_ABOVE || f->scanned || bn_rpc_framer_pending(f))
        return 0;
    msgpack_unpacker_destroy(&f->up);
    if (!msgpack_unpacker_init(&f->up, FRAMER_INIT_BUFFER)) {
        memset(&f->up, 0, sizeof f->up);
        bn_rpc_errf(&f->failed, BN_RPC_E_INTERNAL, "out of memory for a message buffer");
        return -1;
    }
    return 0;
}

char *bn_rpc_framer_buffer(struct bn_rpc_framer *f, size_t want, size_t *cap)
{
    release(f);
    if (!f->up.buffer || shrink(f) < 0)
        return NULL;
    if (want == 0)
        want = 1;
    if (!msgpack_unpacker_reserve_buffer(&f->up, want))
        return NULL;
    if (cap)
        *cap = msgpack_unpacker_buffer_capacity(&f->up);
    return msgpack_unpacker_buffer(&f->up);
}

void bn_rpc_framer_consumed(struct bn_rpc_framer *f, size_t n)
{
    msgpack_unpacker_buffer_consumed(&f->up, n);
}

int bn_rpc_framer_feed(struct bn_rpc_framer *f, const void *data, size_t n)
{
    if (n == 0)
        return 0;
    char *buf = bn_rpc_framer_buffer(f, n, NULL);
    if (!buf)
        return -1;
    memcpy(buf, data, n);
    bn_rpc_framer_consumed(f, n);
    return 0;
}

size_t bn_rpc_framer_pending(const struct bn_rpc_framer *f)
{
    return f->up.used - f->up.off;
}

msgpack_zone *bn_rpc_framer_zone(struct bn_rpc_framer *f)
{
    return f->up.z;
}

static int fail(struct bn_rpc_framer *f, struct bn_rpc_error *err, int code, const char *fmt,
                unsigned long long a, unsigned long long b)
{
    bn_rpc_errf(&f->failed, code, fmt, a, b);
    if (err)
        *err = f->failed;
    return -1;
}

static uint64_t be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* One value finished: pop every container it completes.  True when the whole
 * message is complete. */
static bool value_done(struct bn_rpc_framer *f)
{
    while (f->depth > 0) {
        if (--f->left[f->depth - 1] > 0)
            return false;
        f->depth--;
    }
    return true;
}

/* Bytes a header needs beyond its first byte, before anything can be said about the
 * value (length fields, scalar payloads). */
static int header_extra(uint8_t b)
{
    if (b <= 0xbf || b >= 0xe0) /* fixint, fixmap, fixarray, fixstr, negative fixint */
        return 0;
    switch (b) {
    case 0xc0: case 0xc2: case 0xc3: return 0;          /* nil, false, true */
    case 0xc4: case 0xd9: return 1;                     /* bin8, str8: 1-byte length */
    case 0xc5: case 0xda: case 0xdc: case 0xde: return 2;/* bin16 str16 array16 map16 */
    case 0xc6: case 0xdb: case 0xdd: case 0xdf: return 4;/* bin32 str32 array32 map32 */
    case 0xc7: return 2;                                 /* ext8: length + type */
    case 0xc8: return 3;                                 /* ext16 */
    case 0xc9: return 5;                                 /* ext32 */
    case 0xca: return 4;                                 /* float32 */
    case 0xcb: return 8;                                 /* float64 */
    case 0xcc: case 0xd0: return 1;
    case 0xcd: case 0xd1: return 2;
    case 0xce: case 0xd2: return 4;
    case 0xcf: case 0xd3: return 8;
    case 0xd4: return 2;  /* fixext1: type + 1 byte */
    case 0xd5: return 3;  /* fixext2 */
    case 0xd6: return 5;  /* fixext4 */
    case 0xd7: return 9;  /* fixext8 */
    case 0xd8: return 17; /* fixext16 */
    default: return -1;   /* 0xc1: never used */
    }
}

static bool is_array_head(uint8_t b)
{
    return (b >= 0x90 && b <= 0x9f) || b == 0xdc || b == 0xdd;
}

/* Advance over the buffered bytes of the pending message.  1: complete (f->scanned
 * is its size), 0: need more bytes, -1: limit broken. */
static int scan(struct bn_rpc_framer *f, struct bn_rpc_error *err)
{
    const uint8_t *p = (const uint8_t *)f->up.buffer + f->up.off;
    size_t avail = f->up.used - f->up.off;
    const size_t cap = f->lim.max_frame_bytes;
    for (;;) {
        if (f->skip > 0) { /* inside a string/binary/ext payload */
            size_t have = avail - f->scanned;
            size_t take = f->skip < have ? (size_t)f->skip : have;
            f->scanned += take;
            f->skip -= take;
            if (f->skip > 0)
                return 0;
            if (value_done(f))
                return 1;
            continue;
        }
        if (f->scanned >= avail)
            return 0;
        uint8_t b = p[f->scanned];
        int extra = header_extra(b);
        if (extra < 0)
            return fail(f, err, BN_RPC_E_PARSE,
                        "parse error: byte 0x%llx at offset %llu of a message is not msgpack", b,
                        f->scanned);
        if (f->scanned == 0 && !is_array_head(b))
            return fail(f, err, BN_RPC_E_PARSE,
                        "parse error: a message must start with a msgpack array, got byte 0x%llx",
                        b, 0);
        if (f->scanned + 1 + (size_t)extra > avail)
            return 0;
        const uint8_t *h = p + f->scanned + 1;
        uint64_t payload = 0, children = 0;
        bool container = false;
        if (b >= 0xa0 && b <= 0xbf) {
            payload = b & 0x1f;
        } else if (b >= 0x90 && b <= 0x9f) {
            container = true, children = b & 0x0f;
        } else if (b >= 0x80 && b <= 0x8f) {
            container = true, children = 2u * (b & 0x0f);
        } else {
            switch (b) {
            case 0xc4: case 0xd9: payload = h[0]; break;
            case 0xc5: case 0xda: payload = be(h, 2); break;
            case 0xc6: case 0xdb: payload = be(h, 4); break;
            case 0xc7: payload = h[0]; break;
            case 0xc8: payload = be(h, 2); break;
            case 0xc9: payload = be(h, 4); break;
            case 0xdc: container = true, children = be(h, 2); break;
            case 0xdd: container = true, children = be(h, 4); break;
            case 0xde: container = true, children = 2 * be(h, 2); break;
            case 0xdf: container = true, children = 2 * be(h, 4); break;
            default: break; /* scalars: the header is the whole value */
            }
        }
        bool top = f->scanned == 0; /* this header starts the message itself */
        f->scanned += 1 + (size_t)extra;
        /* Every value takes at least one byte, so a declared size past the cap is
         * known to be too large before its bytes arrive. */
        if (f->scanned + payload + children > cap)
            return fail(f, err, BN_RPC_E_MESSAGE_TOO_LARGE,
                        "message too large: it declares at least %llu bytes, over the limit of %llu",
                        (unsigned long long)(f->scanned + payload + children),
                        (unsigned long long)cap);
        /* Each value counts once: the message's own at its first byte, every other one
         * when the container holding it declares it (so a too-long array is refused at
         * its header, before its elements arrive). */
        f->values += (top ? 1u : 0u) + (container ? children : 0);
        if (f->values > f->lim.max_elements)
            return fail(f, err, BN_RPC_E_MESSAGE_TOO_LARGE,
                        "message too large: more than %llu values (at least %llu)",
                        f->lim.max_elements, (unsigned long long)f->values);
        if (container) {
            if (children == 0) {
                if (value_done(f))
                    return 1;
                continue;
            }
            if (f->depth >= f->lim.max_depth)
                return fail(f, err, BN_RPC_E_PARSE,
                            "parse error: arrays/maps nested deeper than %llu levels",
                            f->lim.max_depth, 0);
            f->left[f->depth++] = (uint32_t)(children > UINT32_MAX ? UINT32_MAX : children);
            continue;
        }
        if (payload > 0) {
            f->skip = payload;
            continue;
        }
        if (value_done(f))
            return 1;
    }
}

int bn_rpc_framer_next(struct bn_rpc_framer *f, msgpack_object *out, struct bn_rpc_error *err)
{
    release(f);
    if (f->failed.code) {
        if (err)
            *err = f->failed;
        return -1;
    }
    int r = scan(f, err);
    if (r <= 0)
        return r;
    /* A complete message that passed the limits: msgpack-c parses exactly it. */
    size_t size = f->scanned;
    size_t off = f->up.off;
    int e = msgpack_unpacker_execute(&f->up);
    if (e <= 0 || f->up.off - off != size) {
        msgpack_unpacker_reset(&f->up);
        return fail(f, err, e == MSGPACK_UNPACK_NOMEM_ERROR ? BN_RPC_E_INTERNAL : BN_RPC_E_PARSE,
                    "parse error: msgpack-c rejected a %llu-byte message (status %llu)", size,
                    (unsigned long long)(e < 0 ? -e : e));
    }
    *out = msgpack_unpacker_data(&f->up);
    f->holding = true;
    scan_reset(f);
    return 1;
}
