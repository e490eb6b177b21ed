/* tests/fuzz/gen_seeds.c — writes the generated part of the fuzz seed corpora.
 *
 *   gen-seeds OUTDIR [DATADIR]
 *
 * OUTDIR/TARGET/ must exist for each target.  Written:
 *   ipc/        one request of every method with every field set to a valid value
 *               (from the schema tables), one result of every method, an error
 *               response, both notifications, and all requests back to back;
 *   gguf/       small GGUF files from the engine's writer (every value type, every
 *               tensor format, a byte-level vocabulary with chat tokens, another
 *               alignment), one with nested arrays built by hand (the writer cannot),
 *               and with DATADIR the first 64 KB of each reference model;
 *   stop/       control byte + stop strings + text combinations;
 *   tokenizer/  with DATADIR, the texts of llama3/llama-bpe.inp and of
 *               llama3/encode-cases.jsonl.
 * Hand-written seeds live in tests/fuzz/corpus/ (`make fuzz-seeds` copies both).
 */
#include <dirent.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitnet.h"
#include "ipc.h"

#define REF_PREFIX_BYTES (64u << 10) /* bytes of each reference model kept as a seed */

static const char *outdir;
static int n_written;

__attribute__((format(printf, 1, 2))) static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("gen-seeds: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void path_of(char *buf, size_t len, const char *target, const char *name)
{
    snprintf(buf, len, "%s/%s/%s", outdir, target, name);
}

static void put_file(const char *target, const char *name, const void *data, size_t n)
{
    char path[4096];
    path_of(path, sizeof path, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0)
        die("cannot write %s", path);
    n_written++;
}

/* ---------------------------------------------------------------------------
 * ipc: values filled from the schema tables
 * ------------------------------------------------------------------------ */
#define FIELD(base, off) ((void *)((char *)(base) + (off)))

static const char *const sample_strings[] = { "tinyA", "h\xc3\xa9llo w\xc3\xb6rld", "/models/x.gguf", "</s>" };

/* A string of length within [lo, hi]. */
static const char *pick_str(msgpack_zone *z, double lo, double hi, int salt)
{
    const char *s = sample_strings[salt % 4];
    size_t n = strlen(s);
    if ((double)n >= lo && (double)n <= hi)
        return s;
    size_t len = (size_t)lo;
    char *p = msgpack_zone_malloc(z, len + 1);
    memset(p, 'a' + salt % 26, len);
    p[len] = 0;
    return p;
}

static double pick_int(const struct bn_rpc_field *f)
{
    double v = f->lo + 1 <= f->hi ? f->lo + 1 : f->lo;
    if (v == f->def && f->lo + 2 <= f->hi)
        v = f->lo + 2;
    return v;
}

static void fill(const struct bn_rpc_schema *s, void *v, msgpack_zone *z, int salt);

static void fill_field(const struct bn_rpc_field *f, void *v, msgpack_zone *z, int salt)
{
    void *p = FIELD(v, f->off);
    if (f->flags & BN_RPC_F_HAS)
        *(bool *)FIELD(v, f->aux_off) = true;
    switch (f->type) {
    case BN_RPC_T_BOOL: *(bool *)p = f->def == 0; break;
    case BN_RPC_T_I32: *(int32_t *)p = (int32_t)pick_int(f); break;
    case BN_RPC_T_I64: *(int64_t *)p = (int64_t)pick_int(f); break;
    case BN_RPC_T_U32: *(uint32_t *)p = (uint32_t)pick_int(f); break;
    case BN_RPC_T_NUM: *(double *)p = f->lo + (f->hi - f->lo) * 0.25; break;
    case BN_RPC_T_STR: *(const char **)p = pick_str(z, f->lo, f->hi, salt); break;
    case BN_RPC_T_ENUM: *(int *)p = (int)(((size_t)f->def + 1) % f->n_names); break;
    case BN_RPC_T_STRS: {
        const char **a = msgpack_zone_malloc(z, 2 * sizeof *a);
        a[0] = pick_str(z, f->elo, f->ehi, salt + 1);
        a[1] = pick_str(z, f->elo, f->ehi, salt + 3);
        *(const char ***)p = a;
        *(size_t *)FIELD(v, f->aux_off) = f->hi >= 2 ? 2 : (size_t)f->hi;
        break;
    }
    case BN_RPC_T_I32S: {
        int32_t *a = msgpack_zone_malloc(z, 3 * sizeof *a);
        a[0] = 128000, a[1] = 9906, a[2] = 1917;
        *(int32_t **)p = a;
        *(size_t *)FIELD(v, f->aux_off) = 3;
        break;
    }
    case BN_RPC_T_OBJ: fill(f->sub, p, z, salt + 1); break;
    case BN_RPC_T_OBJS: {
        char *a = msgpack_zone_malloc(z, 2 * f->sub->size);
        fill(f->sub, a, z, salt + 1);
        fill(f->sub, a + f->sub->size, z, salt + 2);
        *(void **)p = a;
        *(size_t *)FIELD(v, f->aux_off) = 2;
        break;
    }
    case BN_RPC_T_STRMAP: {
        struct bn_rpc_kv *a = msgpack_zone_malloc(z, 2 * sizeof *a);
        a[0] = (struct bn_rpc_kv){ "general.architecture", "bitnet-b1.58" };
        a[1] = (struct bn_rpc_kv){ "tokenizer.ggml.tokens", "[128256 items]" };
        *(struct bn_rpc_kv **)p = a;
        *(size_t *)FIELD(v, f->aux_off) = 2;
        break;
    }
    }
}

static void fill(const struct bn_rpc_schema *s, void *v, msgpack_zone *z, int salt)
{
    bn_rpc_init(s, v);
    for (size_t i = 0; i < s->n_fields; i++)
        fill_field(&s->fields[i], v, z, salt + (int)i);
}

/* Check that the message decodes (a seed the decoder refuses is a poor seed). */
static void check_decodes(const msgpack_sbuffer *sb, size_t start, enum bn_rpc_method m, bool request)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    if (msgpack_unpack_next(&u, sb->data + start, sb->size - start, &off) != MSGPACK_UNPACK_SUCCESS)
        die("ipc: a seed does not unpack");
    struct bn_rpc_msg msg;
    struct bn_rpc_error err;
    unsigned char value[1024];
    msgpack_zone z;
    msgpack_zone_init(&z, 1024);
    int rc = bn_rpc_parse(&u.data, &msg, &err);
    if (rc == 0)
        rc = request ? bn_rpc_decode_params(&msg, value, &z, &err) : bn_rpc_decode_response(&msg, m, value, &z, &err);
    if (rc)
        die("ipc: the %s seed of %s does not decode: %s", request ? "request" : "result", bn_rpc_method_name(m),
            err.message);
    msgpack_zone_destroy(&z);
    msgpack_unpacked_destroy(&u);
}

static void gen_ipc(void)
{
    msgpack_sbuffer all;
    msgpack_sbuffer_init(&all);
    msgpack_packer all_pk;
    msgpack_packer_init(&all_pk, &all, msgpack_sbuffer_write);
    for (int m = 0; m < BN_RPC_METHOD_COUNT; m++) {
        const struct bn_rpc_schema *ps = bn_rpc_params_schema((enum bn_rpc_method)m);
        const struct bn_rpc_schema *rs = bn_rpc_result_schema((enum bn_rpc_method)m);
        for (int variant = 0; variant < (m == BN_RPC_GENERATE ? 2 : 1); variant++) {
            msgpack_zone z;
            msgpack_zone_init(&z, 4096);
            unsigned char params[1024];
            fill(ps, params, &z, m);
            if (m == BN_RPC_GENERATE) { /* exactly one of prompt / tokens; system with a prompt only */
                struct bn_rpc_generate_params *g = (void *)params;
                g->raw = false;
                if (variant == 0) {
                    g->tokens = NULL;
                    g->n_tokens = 0;
                } else {
                    g->prompt = NULL;
                    g->system = NULL;
                }
            }
            msgpack_sbuffer sb;
            msgpack_sbuffer_init(&sb);
            msgpack_packer pk;
            msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
            if (bn_rpc_encode_request(&pk, 100 + (uint32_t)m, (enum bn_rpc_method)m, params) ||
                bn_rpc_encode_request(&all_pk, 100 + (uint32_t)m, (enum bn_rpc_method)m, params))
                die("ipc: encoding a %s request failed", bn_rpc_method_name((enum bn_rpc_method)m));
            check_decodes(&sb, 0, (enum bn_rpc_method)m, true);
            char name[64];
            snprintf(name, sizeof name, "req-%s%s", bn_rpc_method_name((enum bn_rpc_method)m),
                     variant ? "-tokens" : "");
            put_file("ipc", name, sb.data, sb.size);
            msgpack_sbuffer_destroy(&sb);
            msgpack_zone_destroy(&z);
        }
        /* the result */
        msgpack_zone z;
        msgpack_zone_init(&z, 4096);
        unsigned char result[1024];
        fill(rs, result, &z, m + 7);
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        if (bn_rpc_encode_result(&pk, 100 + (uint32_t)m, (enum bn_rpc_method)m, result))
            die("ipc: encoding a %s result failed", bn_rpc_method_name((enum bn_rpc_method)m));
        check_decodes(&sb, 0, (enum bn_rpc_method)m, false);
        char name[64];
        snprintf(name, sizeof name, "res-%s", bn_rpc_method_name((enum bn_rpc_method)m));
        put_file("ipc", name, sb.data, sb.size);
        msgpack_sbuffer_destroy(&sb);
        msgpack_zone_destroy(&z);
    }
    put_file("ipc", "stream-all-requests", all.data, all.size);
    msgpack_sbuffer_destroy(&all);

    /* an error response, and one without msgid (a framing error answer) */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    uint32_t id = 7;
    bn_rpc_encode_error(&pk, &id, BN_RPC_E_INVALID_PARAMS, "generate: params.options.top_p must be a number in (0, 1]");
    bn_rpc_encode_error(&pk, NULL, BN_RPC_E_MESSAGE_TOO_LARGE, NULL);
    put_file("ipc", "res-errors", sb.data, sb.size);
    msgpack_sbuffer_clear(&sb);

    /* notifications */
    struct bn_rpc_token_note tn = { 101, "h\xc3\xa9", 1234 };
    struct bn_rpc_progress_note pn = { 102, 1 << 20, 1 << 30 };
    if (bn_rpc_encode_note(&pk, BN_RPC_NOTE_TOKEN, &tn) || bn_rpc_encode_note(&pk, BN_RPC_NOTE_PROGRESS, &pn))
        die("ipc: encoding notifications failed");
    put_file("ipc", "notes", sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
}

/* ---------------------------------------------------------------------------
 * gguf
 * ------------------------------------------------------------------------ */
static void write_gguf(struct bn_gguf_writer *w, const char *name)
{
    char path[4096];
    struct bn_err err;
    path_of(path, sizeof path, "gguf", name);
    if (bn_gguf_writer_write(w, path, &err))
        die("gguf: %s", err.msg);
    bn_gguf_writer_free(w);
    n_written++;
}

/* Tensor data: a deterministic byte pattern (any bytes are a valid F16/I2_S/... blob). */
static uint8_t pattern[1 << 14];

static void add_tensor(struct bn_gguf_writer *w, const char *name, enum bn_type type, uint32_t n_dims, int64_t ne0,
                       int64_t ne1)
{
    int64_t ne[2] = { ne0, ne1 };
    uint64_t bytes;
    if (!bn_tensor_bytes(type, n_dims > 1 ? ne1 : 1, ne0, &bytes) || bytes > sizeof pattern)
        die("gguf: tensor %s does not fit the pattern buffer", name);
    bn_gguf_add_tensor_data(w, name, type, n_dims, ne, pattern);
}

static void gguf_every_type(void)
{
    struct bn_gguf_writer *w = bn_gguf_writer_new();
    bn_gguf_set_str(w, "general.architecture", "bitnet-b1.58");
    bn_gguf_set_str(w, "general.name", "fuzz seed");
    bn_gguf_set_u32(w, "bitnet-b1.58.block_count", 1);
    bn_gguf_set_i32(w, "test.i32", -5);
    bn_gguf_set_u64(w, "test.u64", 1ull << 40);
    bn_gguf_set_f32(w, "test.f32", 1e-5f);
    bn_gguf_set_bool(w, "test.bool", true);
    static const uint8_t u8s[] = { 1, 2, 255 };
    static const int16_t i16s[] = { -1, 300 };
    static const double f64s[] = { 0.5, -2.25 };
    static const int64_t i64s[] = { -1, 1ll << 50 };
    static const float f32s[] = { 1.0f, -0.0f, 3.5f };
    static const uint8_t bools[] = { 0, 1 };
    bn_gguf_set_arr(w, "test.arr.u8", BN_GGUF_UINT8, u8s, 3);
    bn_gguf_set_arr(w, "test.arr.i16", BN_GGUF_INT16, i16s, 2);
    bn_gguf_set_arr(w, "test.arr.f64", BN_GGUF_FLOAT64, f64s, 2);
    bn_gguf_set_arr(w, "test.arr.i64", BN_GGUF_INT64, i64s, 2);
    bn_gguf_set_arr(w, "test.arr.f32", BN_GGUF_FLOAT32, f32s, 3);
    bn_gguf_set_arr(w, "test.arr.bool", BN_GGUF_BOOL, bools, 2);
    bn_gguf_set_arr(w, "test.arr.empty", BN_GGUF_UINT32, NULL, 0);
    static const char *const strs[] = { "a", "", "h\xc3\xa9llo" };
    bn_gguf_set_arr_str(w, "test.arr.str", strs, 3);
    add_tensor(w, "t.f32", BN_TYPE_F32, 1, 8, 1);
    add_tensor(w, "t.f16", BN_TYPE_F16, 2, 16, 2);
    add_tensor(w, "t.bf16", BN_TYPE_BF16, 1, 16, 1);
    add_tensor(w, "t.q8_0", BN_TYPE_Q8_0, 2, 32, 2);
    add_tensor(w, "t.q6_k", BN_TYPE_Q6_K, 1, 256, 1);
    add_tensor(w, "t.i2_s", BN_TYPE_I2_S, 2, 128, 2);
    add_tensor(w, "t.tq2_0", BN_TYPE_TQ2_0, 2, 256, 2);
    add_tensor(w, "t.tq1_0", BN_TYPE_TQ1_0, 1, 256, 1);
    write_gguf(w, "every-type.gguf");

    w = bn_gguf_writer_new();
    bn_gguf_writer_set_alignment(w, 64);
    bn_gguf_set_str(w, "general.architecture", "bitnet-25");
    add_tensor(w, "a", BN_TYPE_F32, 1, 4, 1);
    add_tensor(w, "b", BN_TYPE_F16, 2, 8, 3);
    write_gguf(w, "align64.gguf");

    w = bn_gguf_writer_new();
    write_gguf(w, "empty.gguf");
}

/* GPT-2's byte-to-unicode map: the stored text of each single-byte token. */
static void byte_token(unsigned b, char out[3])
{
    unsigned cp;
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) {
        cp = b;
    } else {
        unsigned k = 0; /* rank among the bytes not mapped to themselves */
        for (unsigned c = 0; c < b; c++)
            if (!((c >= 33 && c <= 126) || (c >= 161 && c <= 172) || (c >= 174 && c <= 255)))
                k++;
        cp = 256 + k;
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = 0;
    } else {
        out[0] = (char)(0xc0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3f));
        out[2] = 0;
    }
}

static void gguf_vocab(void)
{
    static char bytes[256][3];
    const char *tokens[256 + 8];
    int32_t types[256 + 8];
    size_t n = 0;
    for (unsigned b = 0; b < 256; b++) {
        byte_token(b, bytes[b]);
        tokens[n] = bytes[b];
        types[n++] = BN_TOKEN_NORMAL;
    }
    static const char *const merged[] = { "Ġt", "he", "Ġthe" };
    for (size_t i = 0; i < 3; i++) {
        tokens[n] = merged[i];
        types[n++] = BN_TOKEN_NORMAL;
    }
    static const char *const control[] = { "<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<|start_header_id|>",
                                            "<|end_header_id|>" };
    int32_t bos = (int32_t)n;
    for (size_t i = 0; i < 5; i++) {
        tokens[n] = control[i];
        types[n++] = BN_TOKEN_CONTROL;
    }
    static const char *const merges[] = { "Ġ t", "h e", "Ġt he" };
    struct bn_gguf_writer *w = bn_gguf_writer_new();
    bn_gguf_set_str(w, "general.architecture", "llama");
    bn_gguf_set_str(w, "tokenizer.ggml.model", "gpt2");
    bn_gguf_set_str(w, "tokenizer.ggml.pre", "llama-bpe");
    bn_gguf_set_arr_str(w, "tokenizer.ggml.tokens", tokens, n);
    bn_gguf_set_arr(w, "tokenizer.ggml.token_type", BN_GGUF_INT32, types, n);
    bn_gguf_set_arr_str(w, "tokenizer.ggml.merges", merges, 3);
    bn_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)bos);
    bn_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)bos + 1);
    bn_gguf_set_u32(w, "tokenizer.ggml.eot_token_id", (uint32_t)bos + 2);
    bn_gguf_set_bool(w, "tokenizer.ggml.add_bos_token", true);
    bn_gguf_set_str(w, "tokenizer.chat_template", "{{ '<|start_header_id|>' + role + '<|end_header_id|>' }}");
    write_gguf(w, "byte-vocab.gguf");
}

/* Arrays of arrays, GGUF v2, by hand. */
struct raw {
    uint8_t b[512];
    size_t n;
};
static void raw_put(struct raw *r, const void *p, size_t n)
{
    if (r->n + n > sizeof r->b)
        die("gguf: raw seed buffer too small");
    memcpy(r->b + r->n, p, n);
    r->n += n;
}
static void raw_u32(struct raw *r, uint32_t v) { raw_put(r, &v, 4); }
static void raw_u64(struct raw *r, uint64_t v) { raw_put(r, &v, 8); }
static void raw_str(struct raw *r, const char *s)
{
    raw_u64(r, strlen(s));
    raw_put(r, s, strlen(s));
}

static void gguf_nested(void)
{
    struct raw r = { .n = 0 };
    raw_u32(&r, BN_GGUF_MAGIC);
    raw_u32(&r, 2);
    raw_u64(&r, 1); /* tensors */
    raw_u64(&r, 2); /* keys */
    raw_str(&r, "test.nested");
    raw_u32(&r, BN_GGUF_ARRAY);
    raw_u32(&r, BN_GGUF_ARRAY); /* element type */
    raw_u64(&r, 2);
    raw_u32(&r, BN_GGUF_STRING); /* [0]: two strings */
    raw_u64(&r, 2);
    raw_str(&r, "x");
    raw_str(&r, "yz");
    raw_u32(&r, BN_GGUF_ARRAY); /* [1]: one array of one u16 */
    raw_u64(&r, 1);
    raw_u32(&r, BN_GGUF_UINT16);
    raw_u64(&r, 1);
    raw_put(&r, "\x34\x12", 2);
    raw_str(&r, "general.alignment");
    raw_u32(&r, BN_GGUF_UINT32);
    raw_u32(&r, 16);
    raw_str(&r, "w");
    raw_u32(&r, 1);
    raw_u64(&r, 4);
    raw_u32(&r, BN_TYPE_F32);
    raw_u64(&r, 0);
    while (r.n % 16)
        raw_put(&r, "", 1);
    raw_put(&r, pattern, 16);
    put_file("gguf", "nested-v2.gguf", r.b, r.n);
}

static void gguf_ref(const char *data)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/ref", data);
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    static uint8_t buf[REF_PREFIX_BYTES];
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 5, ".gguf") != 0)
            continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        if (!f)
            die("cannot read %s", path);
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        char name[512];
        snprintf(name, sizeof name, "ref-%.*s-64k.gguf", (int)(len - 5), e->d_name);
        put_file("gguf", name, buf, n);
    }
    closedir(d);
}

/* ---------------------------------------------------------------------------
 * stop: control byte (bits 0-3 count, bit 4 render_special, bits 5-7 max_tokens),
 * NUL-ended stop strings, then the text / token bytes
 * ------------------------------------------------------------------------ */
static void stop_seed(const char *name, uint8_t ctl, const char *const *stops, size_t n, const char *text, size_t len)
{
    uint8_t buf[1024];
    size_t k = 0;
    buf[k++] = ctl;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(stops[i]) + 1;
        memcpy(buf + k, stops[i], l);
        k += l;
    }
    memcpy(buf + k, text, len);
    put_file("stop", name, buf, k + len);
}

static void gen_stop(void)
{
    static const char *const a[] = { "</s>", "\nUser:" };
    static const char *const b[] = { "aab", "ab", "b" };
    static const char *const c[] = { "\xe2\x82\xac" };
    static const char text1[] = "Sure!\nUser: hi</s> tail";
    static const char text2[] = "aaaabaab";
    static const char text3[] = "price: 5\xe2\x82\xac only";
    stop_seed("two-strings", 2, a, 2, text1, sizeof text1 - 1);
    stop_seed("overlapping", 3, b, 3, text2, sizeof text2 - 1);
    stop_seed("utf8", 1 | 0x10, c, 1, text3, sizeof text3 - 1);
    stop_seed("budget", 1 | (3 << 5), c, 1, text3, sizeof text3 - 1);
    /* token ids (3 bytes each): "Hello" 9906, " world" 1917, <|eot_id|> 128009 */
    static const uint8_t ids[] = { 0xb2, 0x26, 0x00, 0x7d, 0x07, 0x00, 0x09, 0xf4, 0x01 };
    static const char *const d[] = { "world" };
    stop_seed("tokens-eot", 1, d, 1, (const char *)ids, sizeof ids);
    stop_seed("tokens-none", 0, NULL, 0, (const char *)ids, sizeof ids);
}

/* ---------------------------------------------------------------------------
 * tokenizer: the test texts of the shared data
 * ------------------------------------------------------------------------ */
static void gen_tokenizer(const char *data)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/llama3/llama-bpe.inp", data);
    FILE *f = fopen(path, "rb");
    if (f) {
        static char buf[1 << 16];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = 0;
        static const char sep[] = "\n__ggml_vocab_test__\n";
        char *p = buf;
        for (int i = 0; *p; i++) {
            char *q = strstr(p, sep);
            size_t len = q ? (size_t)(q - p) : strlen(p);
            char name[64];
            snprintf(name, sizeof name, "llama-bpe-%03d", i);
            put_file("tokenizer", name, p, len);
            if (!q)
                break;
            p = q + sizeof sep - 1;
        }
    }
    snprintf(path, sizeof path, "%s/llama3/encode-cases.jsonl", data);
    f = fopen(path, "rb");
    if (f) {
        char line[1 << 16];
        for (int i = 0; fgets(line, sizeof line, f); i++) {
            json_error_t jerr;
            json_t *o = json_loads(line, 0, &jerr);
            json_t *t = json_object_get(o, "text");
            if (json_is_string(t)) {
                char name[64];
                snprintf(name, sizeof name, "encode-case-%03d", i);
                put_file("tokenizer", name, json_string_value(t), json_string_length(t));
            }
            json_decref(o);
        }
        fclose(f);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: gen-seeds OUTDIR [DATADIR]\n");
        return 2;
    }
    outdir = argv[1];
    const char *data = argc == 3 && *argv[2] ? argv[2] : NULL;
    for (size_t i = 0; i < sizeof pattern; i++)
        pattern[i] = (uint8_t)(i * 37 + (i >> 8));
    gen_ipc();
    gguf_every_type();
    gguf_vocab();
    gguf_nested();
    gen_stop();
    if (data) {
        gguf_ref(data);
        gen_tokenizer(data);
    }
    printf("gen-seeds: %d files written under %s%s\n", n_written, outdir,
           data ? "" : " (no test data folder: reference models and tokenizer texts skipped)");
    return 0;
}
