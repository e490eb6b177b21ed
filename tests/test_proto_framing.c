/* tests/test_proto_framing.c — message boundaries on a byte stream: reassembly of
 * messages split at every byte, and framing errors (garbage, over the size cap,
 * absurd declared counts, deep nesting) raised from the first bytes that show them. */
#include "test_proto_util.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* Three messages: a generate request with a >64 KiB prompt (buffer growth, strings
 * referenced from the buffer), a ping, a token notification. */
static size_t make_stream(msgpack_sbuffer *sb, size_t *ends)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    static char prompt[70000];
    for (size_t i = 0; i < sizeof prompt - 1; i++)
        prompt[i] = (char)('a' + i % 26);
    struct bn_rpc_generate_params g;
    bn_rpc_init(bn_rpc_params_schema(BN_RPC_GENERATE), &g);
    g.model = "2b4t";
    g.prompt = prompt;
    g.stream = true;
    cr_assert_eq(bn_rpc_encode_request(&pk, 1, BN_RPC_GENERATE, &g), 0);
    ends[0] = sb->size;
    cr_assert_eq(bn_rpc_encode_request(&pk, 2, BN_RPC_PING, NULL), 0);
    ends[1] = sb->size;
    struct bn_rpc_token_note t = {.msgid = 1, .text = "word", .token = 42};
    cr_assert_eq(bn_rpc_encode_note(&pk, BN_RPC_NOTE_TOKEN, &t), 0);
    ends[2] = sb->size;
    return 3;
}

/* Pull every complete message; check each against the original bytes. */
static size_t drain(struct bn_rpc_framer *f, const char *all, const size_t *ends, size_t got)
{
    msgpack_object o;
    struct bn_rpc_error err;
    int r;
    while ((r = bn_rpc_framer_next(f, &o, &err)) == 1) {
        size_t start = got ? ends[got - 1] : 0;
        msgpack_zone *z = msgpack_zone_new(1024);
        msgpack_object want;
        size_t off = 0;
        cr_assert_eq(msgpack_unpack(all + start, ends[got] - start, &off, z, &want), MSGPACK_UNPACK_SUCCESS);
        cr_assert(msgpack_object_equal(o, want), "message %zu differs", got);
        msgpack_zone_free(z);
        got++;
    }
    cr_assert_eq(r, 0, "framing error on a valid stream: %s", err.message);
    return got;
}

Test(framing, whole_stream_at_once)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    size_t ends[3];
    size_t n = make_stream(&sb, ends);
    struct bn_rpc_framer f;
    cr_assert_eq(bn_rpc_framer_init(&f, NULL), 0);
    cr_assert_eq(bn_rpc_framer_feed(&f, sb.data, sb.size), 0);
    cr_expect_eq(drain(&f, sb.data, ends, 0), n);
    cr_expect_eq(bn_rpc_framer_pending(&f), 0);
    bn_rpc_framer_destroy(&f);
    msgpack_sbuffer_destroy(&sb);
}

Test(framing, split_at_every_byte_boundary)
{
    /* The small messages split at every offset; the whole stream split at offsets
     * around the big message's header and its end. */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    size_t ends[3];
    size_t n = make_stream(&sb, ends);
    for (size_t cut = 0; cut <= sb.size; cut++) {
        bool interesting = cut < 64 || (cut > ends[0] - 64 && cut < ends[0] + 64) || cut > sb.size - 64 ||
                           cut % 4099 == 0;
        if (!interesting)
            continue;
        struct bn_rpc_framer f;
        cr_assert_eq(bn_rpc_framer_init(&f, NULL), 0);
        cr_assert_eq(bn_rpc_framer_feed(&f, sb.data, cut), 0);
        size_t got = drain(&f, sb.data, ends, 0);
        cr_assert_eq(bn_rpc_framer_feed(&f, sb.data + cut, sb.size - cut), 0);
        got = drain(&f, sb.data, ends, got);
        cr_assert_eq(got, n, "cut at %zu", cut);
        bn_rpc_framer_destroy(&f);
    }
    msgpack_sbuffer_destroy(&sb);
}

Test(framing, one_byte_at_a_time)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    size_t ends[3];
    size_t n = make_stream(&sb, ends);
    struct bn_rpc_framer f;
    cr_assert_eq(bn_rpc_framer_init(&f, NULL), 0);
    size_t got = 0;
    for (size_t i = 0; i < sb.size; i++) {
        /* into the framer's own buffer, as a socket read would */
        size_t cap;
        char *buf = bn_rpc_framer_buffer(&f, 1, &cap);
        cr_assert_not_null(buf);
        cr_assert_geq(cap, 1);
        buf[0] = sb.data[i];
        bn_rpc_framer_consumed(&f, 1);
        got = drain(&f, sb.data, ends, got);
        if (i + 1 < ends[0])
            cr_assert_eq(got, 0);
    }
    cr_expect_eq(got, n);
    bn_rpc_framer_destroy(&f);
    msgpack_sbuffer_destroy(&sb);
}

Test(framing, every_split_of_small_messages)
{
    /* Every method's filled params, each cut at every byte into two feeds. */
    msgpack_zone *z = msgpack_zone_new(MSGPACK_ZONE_CHUNK_SIZE);
    for (int m = 0; m < BN_RPC_METHOD_COUNT; m++) {
        _Alignas(16) char v[4096];
        fill_value(bn_rpc_params_schema((enum bn_rpc_method)m), v, z, m);
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        cr_assert_eq(bn_rpc_encode_request(&pk, (uint32_t)m, (enum bn_rpc_method)m, v), 0);
        size_t ends[1] = {sb.size};
        for (size_t cut = 0; cut <= sb.size; cut++) {
            struct bn_rpc_framer f;
            cr_assert_eq(bn_rpc_framer_init(&f, NULL), 0);
            bn_rpc_framer_feed(&f, sb.data, cut);
            size_t got = drain(&f, sb.data, ends, 0);
            cr_assert_eq(got, cut == sb.size ? 1u : 0u, "%s cut at %zu", bn_rpc_method_name(m), cut);
            bn_rpc_framer_feed(&f, sb.data + cut, sb.size - cut);
            got = drain(&f, sb.data, ends, got);
            cr_assert_eq(got, 1u);
            /* and the decoded message is the request we sent */
            bn_rpc_framer_feed(&f, sb.data, sb.size);
            msgpack_object o;
            struct bn_rpc_error err;
            cr_assert_eq(bn_rpc_framer_next(&f, &o, &err), 1);
            struct bn_rpc_msg msg;
            cr_assert_eq(bn_rpc_parse(&o, &msg, &err), 0);
            _Alignas(16) char back[4096];
            cr_assert_eq(bn_rpc_decode_params(&msg, back, bn_rpc_framer_zone(&f), &err), 0, "%s", err.message);
            bn_rpc_framer_destroy(&f);
        }
        msgpack_sbuffer_destroy(&sb);
    }
    msgpack_zone_free(z);
}

/* Feed bytes; expect a framing error with `code` whose message holds `frag`. */
static void expect_framing_error(const struct bn_rpc_framer_limits *lim, const void *bytes, size_t n, int code,
                                 const char *frag)
{
    struct bn_rpc_framer f;
    cr_assert_eq(bn_rpc_framer_init(&f, lim), 0);
    cr_assert_eq(bn_rpc_framer_feed(&f, bytes, n), 0);
    msgpack_object o;
    struct bn_rpc_error err = {0};
    cr_assert_eq(bn_rpc_framer_next(&f, &o, &err), -1, "accepted: %s", frag);
    cr_expect_eq(err.code, code, "%s: code %d (%s)", frag, err.code, err.message);
    cr_expect_not_null(strstr(err.message, frag), "\"%s\" lacks \"%s\"", err.message, frag);
    cr_expect(bn_rpc_code_is_fatal(err.code));
    /* sticky: more (valid) bytes do not revive the connection */
    bn_rpc_framer_feed(&f, "\x94\x00\x01\xa4ping\x80", 9);
    cr_expect_eq(bn_rpc_framer_next(&f, &o, &err), -1);
    bn_rpc_framer_destroy(&f);
}

Test(framing, garbage_bytes)
{
    expect_framing_error(NULL, "GET / HTTP/1.1\r\n\r\n", 18, BN_RPC_E_PARSE, "must start with a msgpack array");
    expect_framing_error(NULL, "\x01\x02", 2, BN_RPC_E_PARSE, "must start with a msgpack array");
    expect_framing_error(NULL, "\xc1", 1, BN_RPC_E_PARSE, "byte 0xc1");
    expect_framing_error(NULL, "\x92\x01\xc1", 3, BN_RPC_E_PARSE, "byte 0xc1 at offset 2");
    expect_framing_error(NULL, "\x80", 1, BN_RPC_E_PARSE, "must start with a msgpack array"); /* a map */
    /* a valid message, then garbage: the first still comes out */
    struct bn_rpc_framer f;
    cr_assert_eq(bn_rpc_framer_init(&f, NULL), 0);
    bn_rpc_framer_feed(&f, "\x94\x00\x01\xa4ping\x80" "garbage", 16);
    msgpack_object o;
    struct bn_rpc_error err;
    cr_expect_eq(bn_rpc_framer_next(&f, &o, &err), 1);
    cr_expect_eq(bn_rpc_framer_next(&f, &o, &err), -1);
    cr_expect_eq(err.code, BN_RPC_E_PARSE);
    bn_rpc_framer_destroy(&f);
}

Test(framing, random_garbage_never_crashes)
{
    /* Deterministic pseudo-random bytes: any outcome but a crash or an endless loop. */
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int round = 0; round < 2000; round++) {
        unsigned char buf[64];
        buf[0] = 0x90 | (round & 0x0f); /* start as an array so the scanner goes deeper */
        for (size_t i = 1; i < sizeof buf; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            buf[i] = (unsigned char)x;
        }
        struct bn_rpc_framer_limits lim;
        bn_rpc_framer_limits_default(&lim);
        lim.max_frame_bytes = 4096;
        struct bn_rpc_framer f;
        cr_assert_eq(bn_rpc_framer_init(&f, &lim), 0);
        bn_rpc_framer_feed(&f, buf, sizeof buf);
        msgpack_object o;
        struct bn_rpc_error err;
        int r, count = 0;
        while ((r = bn_rpc_framer_next(&f, &o, &err)) == 1) {
            struct bn_rpc_msg m;
            if (bn_rpc_parse(&o, &m, &err) == 0 && m.kind == BN_RPC_REQUEST) {
                _Alignas(16) char params[4096];
                bn_rpc_decode_params(&m, params, bn_rpc_framer_zone(&f), &err);
            }
            cr_assert_lt(++count, 64);
        }
        bn_rpc_framer_destroy(&f);
    }
}

Test(framing, over_the_size_cap)
{
    struct bn_rpc_framer_limits lim;
    bn_rpc_framer_limits_default(&lim);
    lim.max_frame_bytes = 1024;
    /* a string declaring 100 MB: refused after its 5-byte header, nothing buffered */
    expect_framing_error(NULL, "\x94\x00\x01\xa4ping\x81\xa1p\xdb\x06\x40\x00\x00", 16,
                         BN_RPC_E_MESSAGE_TOO_LARGE, "over the limit of 16777216");
    /* exactly at the cap passes, one byte more fails */
    unsigned char msg[1100];
    for (size_t total = 1023; total <= 1025; total++) {
        /* [ "xxxx...." ] with str16: 1 + 3 + len bytes */
        size_t len = total - 4;
        msg[0] = 0x91;
        msg[1] = 0xda;
        msg[2] = (unsigned char)(len >> 8);
        msg[3] = (unsigned char)len;
        memset(msg + 4, 'x', len);
        struct bn_rpc_framer f;
        cr_assert_eq(bn_rpc_framer_init(&f, &lim), 0);
        bn_rpc_framer_feed(&f, msg, total);
        msgpack_object o;
        struct bn_rpc_error err;
        int r = bn_rpc_framer_next(&f, &o, &err);
        if (total <= 1024)
            cr_expect_eq(r, 1, "%zu bytes: %s", total, err.message);
        else
            cr_expect(r == -1 && err.code == BN_RPC_E_MESSAGE_TOO_LARGE, "%zu bytes accepted", total);
        bn_rpc_framer_destroy(&f);
    }
    /* many small values adding up past the cap, fed in pieces */
    struct bn_rpc_framer f;
    cr_assert_eq(bn_rpc_framer_init(&f, &lim), 0);
    bn_rpc_framer_feed(&f, "\xdc\x10\x00", 3); /* array of 4096 */
    msgpack_object o;
    struct bn_rpc_error err;
    cr_expect_eq(bn_rpc_framer_next(&f, &o, &err), -1, "4096 values cannot fit in 1024 bytes");
    cr_expect_eq(err.code, BN_RPC_E_MESSAGE_TOO_LARGE);
    bn_rpc_framer_destroy(&f);
    cr_assert_eq(bn_rpc_framer_init(&f, &lim), 0);
    bn_rpc_framer_feed(&f, "\xdc\x01\x00", 3); /* array of 256 strings of 8 bytes: 2307 bytes */
    int r = 0;
    for (int i = 0; i < 256 && r == 0; i++) {
        bn_rpc_framer_feed(&f, "\xa8" "abcdefgh", 9);
        r = bn_rpc_framer_next(&f, &o, &err);
    }
    cr_expect_eq(r, -1);
    cr_expect_eq(err.code, BN_RPC_E_MESSAGE_TOO_LARGE);
    bn_rpc_framer_destroy(&f);
}

Test(framing, huge_declared_counts)
{
    /* 5 bytes claiming 2^32-1 elements must never reach msgpack-c's allocator */
    expect_framing_error(NULL, "\xdd\xff\xff\xff\xff", 5, BN_RPC_E_MESSAGE_TOO_LARGE, "declares at least");
    expect_framing_error(NULL, "\x91\xdf\xff\xff\xff\xff", 6, BN_RPC_E_MESSAGE_TOO_LARGE, "declares at least");
    expect_framing_error(NULL, "\x91\xc6\xff\xff\xff\xff", 6, BN_RPC_E_MESSAGE_TOO_LARGE, "declares at least");
    expect_framing_error(NULL, "\x91\xc9\xff\xff\xff\xff\x01", 7, BN_RPC_E_MESSAGE_TOO_LARGE, "declares at least");
    /* under the byte cap but over the value cap */
    struct bn_rpc_framer_limits lim;
    bn_rpc_framer_limits_default(&lim);
    lim.max_elements = 1000;
    unsigned char msg[3 + 2000];
    msg[0] = 0xdc;
    msg[1] = 2000 >> 8;
    msg[2] = 2000 & 0xff;
    memset(msg + 3, 0xc0, 2000);
    expect_framing_error(&lim, msg, sizeof msg, BN_RPC_E_MESSAGE_TOO_LARGE, "more than 1000 values");
}

Test(framing, deep_nesting)
{
    unsigned char deep[40];
    memset(deep, 0x91, sizeof deep); /* [[[[...]]]] */
    struct bn_rpc_framer f;
    msgpack_object o;
    struct bn_rpc_error err;
    /* 16 levels (the default) pass */
    cr_assert_eq(bn_rpc_framer_init(&f, NULL), 0);
    bn_rpc_framer_feed(&f, deep, 15);
    bn_rpc_framer_feed(&f, "\x90", 1);
    cr_expect_eq(bn_rpc_framer_next(&f, &o, &err), 1, "%s", err.message);
    bn_rpc_framer_destroy(&f);
    /* 17 fail at the 17th opening byte */
    expect_framing_error(NULL, deep, 17, BN_RPC_E_PARSE, "nested deeper than 16 levels");
    /* maps too */
    unsigned char maps[40];
    maps[0] = 0x91;
    for (size_t i = 1; i + 1 < sizeof maps; i += 2)
        maps[i] = 0x81, maps[i + 1] = 0xc0; /* {nil: {nil: ...}} */
    expect_framing_error(NULL, maps, sizeof maps, BN_RPC_E_PARSE, "nested deeper");
    /* the limit is configurable up to msgpack-c's own stack */
    struct bn_rpc_framer_limits lim;
    bn_rpc_framer_limits_default(&lim);
    lim.max_depth = BN_RPC_MAX_DEPTH_LIMIT + 1;
    cr_expect_eq(bn_rpc_framer_init(&f, &lim), -1);
    lim.max_depth = BN_RPC_MAX_DEPTH_LIMIT;
    cr_assert_eq(bn_rpc_framer_init(&f, &lim), 0);
    bn_rpc_framer_feed(&f, deep, 31);
    bn_rpc_framer_feed(&f, "\x90", 1);
    cr_expect_eq(bn_rpc_framer_next(&f, &o, &err), 1, "%s", err.message);
    bn_rpc_framer_destroy(&f);
}

Test(framing, truncated_message_waits)
{
    struct bn_rpc_framer f;
    cr_assert_eq(bn_rpc_framer_init(&f, NULL), 0);
    bn_rpc_framer_feed(&f, "\x94\x00\x01\xa4pi", 6);
    msgpack_object o;
    struct bn_rpc_error err;
    cr_expect_eq(bn_rpc_framer_next(&f, &o, &err), 0);
    cr_expect_eq(bn_rpc_framer_next(&f, &o, &err), 0, "asking again changes nothing");
    cr_expect_eq(bn_rpc_framer_pending(&f), 6);
    bn_rpc_framer_feed(&f, "ng\x80", 3);
    cr_expect_eq(bn_rpc_framer_next(&f, &o, &err), 1);
    cr_expect_eq(bn_rpc_framer_pending(&f), 0);
    bn_rpc_framer_destroy(&f);
}

Test(framing, many_messages_reuse_the_buffer)
{
    /* 100k pings through one framer: the buffer rewinds instead of growing. */
    struct bn_rpc_framer f;
    cr_assert_eq(bn_rpc_framer_init(&f, NULL), 0);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    size_t cap0 = f.up.used + f.up.free;
    for (uint32_t i = 0; i < 100000; i++) {
        msgpack_sbuffer_clear(&sb);
        bn_rpc_encode_request(&pk, i, BN_RPC_PING, NULL);
        bn_rpc_framer_feed(&f, sb.data, sb.size);
        msgpack_object o;
        struct bn_rpc_error err;
        cr_assert_eq(bn_rpc_framer_next(&f, &o, &err), 1);
        struct bn_rpc_msg m;
        cr_assert_eq(bn_rpc_parse(&o, &m, &err), 0);
        cr_assert_eq(m.msgid, i);
    }
    cr_expect_eq(f.up.used + f.up.free, cap0, "the buffer did not grow");
    msgpack_sbuffer_destroy(&sb);
    bn_rpc_framer_destroy(&f);
}
