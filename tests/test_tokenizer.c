/* tests/test_tokenizer.c — byte-level BPE tokenizer: the Llama-3 reference cases
 * (encode-cases.jsonl, llama.cpp's llama-bpe.inp/.out), round trips, special tokens,
 * invalid UTF-8, long inputs, the streaming decoder, the 1003-token ref vocabulary,
 * BPE rules on a hand-made vocabulary, bad vocabularies, and threads. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "bitnet.h"
#include "tokenizer_fixture.h"
#include "tokenizer_internal.h"

/* ---------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------ */

static void encode(const struct bn_vocab *v, const char *s, size_t n, bool special, struct bn_tokens *t)
{
    struct bn_err err = { { 0 } };
    t->n = 0;
    cr_assert(bn_tokenize(v, s, n, false, special, t, &err) == 0, "%s", err.msg);
}

/* decode(ids) == s[0..n) (specials rendered). */
static void assert_roundtrip(const struct bn_vocab *v, const struct bn_tokens *t, const char *s, size_t n)
{
    struct bn_err err = { { 0 } };
    struct bn_bytes b = { 0 };
    cr_assert(bn_detokenize(v, t->ids, t->n, true, &b, &err) == 0, "%s", err.msg);
    cr_assert(b.len == n && (n == 0 || memcmp(b.data, s, n) == 0), "decode(encode(text)) differs for \"%.*s\" (%zu vs %zu bytes)",
              (int)(n > 80 ? 80 : n), s, b.len, n);
    bn_bytes_free(&b);
}

static void format_ids(const struct bn_tokens *t, char *buf, size_t cap)
{
    size_t o = 0;
    buf[0] = 0;
    for (size_t i = 0; i < t->n && o + 16 < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, " %d", t->ids[i]);
}

/* ---------------------------------------------------------------------------
 * Reference cases with the full Llama-3 vocabulary
 * ------------------------------------------------------------------------ */

static void check_encode_cases_jsonl(const struct bn_vocab *v)
{
    char *path = fx_data_path("llama3/encode-cases.jsonl");
    FILE *f = fopen(path, "r");
    cr_assert(f);
    char *line = NULL;
    size_t cap = 0;
    int n_cases = 0;
    struct bn_tokens t = { 0 };
    while (getline(&line, &cap, f) > 0) {
        json_error_t je;
        json_t *j = json_loads(line, 0, &je);
        cr_assert(j, "%s line %d: %s", path, n_cases + 1, je.text);
        json_t *text = json_object_get(j, "text"), *ids = json_object_get(j, "ids");
        cr_assert(json_is_string(text) && json_is_array(ids));
        const char *s = json_string_value(text);
        size_t n = json_string_length(text);
        encode(v, s, n, true, &t);
        bool same = t.n == json_array_size(ids);
        for (size_t i = 0; same && i < t.n; i++)
            same = t.ids[i] == json_integer_value(json_array_get(ids, i));
        char got[4096];
        format_ids(&t, got, sizeof got);
        cr_expect(same, "case %d \"%.*s\": got%s", n_cases + 1, (int)(n > 60 ? 60 : n), s, got);
        assert_roundtrip(v, &t, s, n);
        json_decref(j);
        n_cases++;
    }
    cr_assert_geq(n_cases, 248, "only %d cases in %s", n_cases, path);
    fprintf(stderr, "encode-cases.jsonl: %d cases checked\n", n_cases);
    bn_tokens_free(&t);
    free(line);
    fclose(f);
    free(path);
}

/* llama.cpp's format: every input is followed by a line "__ggml_vocab_test__", so an
 * input is the text between "\n__ggml_vocab_test__\n" separators (the newline that
 * ends the input's last line belongs to the separator; an empty input is an empty
 * line).  The .out file has one line per input: the ids, each preceded by a space. */
static void check_llama_bpe_inp_out(const struct bn_vocab *v)
{
    char *pin = fx_data_path("llama3/llama-bpe.inp"), *pout = fx_data_path("llama3/llama-bpe.out");
    size_t nin, nout;
    char *in = fx_slurp(pin, &nin), *out = fx_slurp(pout, &nout);
    const char *sep = "\n__ggml_vocab_test__\n";
    char *p = in, *o = out;
    int n_cases = 0;
    struct bn_tokens t = { 0 };
    for (char *end; (end = strstr(p, sep)); p = end + strlen(sep)) {
        char *eol = strchr(o, '\n');
        cr_assert(eol, "%s has fewer lines than %s has inputs", pout, pin);
        *eol = 0;
        encode(v, p, (size_t)(end - p), true, &t);
        char got[16384];
        format_ids(&t, got, sizeof got);
        cr_expect_str_eq(got, o, "case %d \"%.*s\"", n_cases + 1, (int)(end - p > 60 ? 60 : end - p), p);
        assert_roundtrip(v, &t, p, (size_t)(end - p));
        o = eol + 1;
        n_cases++;
    }
    cr_assert_eq(*p, 0, "text after the last separator in %s", pin);
    cr_assert_eq(*o, 0, "%s has more lines than %s has inputs", pout, pin);
    cr_assert_eq(n_cases, 46);
    fprintf(stderr, "llama-bpe.inp/.out: %d cases checked\n", n_cases);
    bn_tokens_free(&t);
    free(in);
    free(out);
    free(pin);
    free(pout);
}

/* Specials, metadata, empty / invalid / long inputs and out-of-range ids share one
 * load of the full vocabulary. */
static void check_specials_and_edges(const struct bn_vocab *v)
{
    struct bn_err err = { { 0 } };
    struct bn_tokens t = { 0 };
    struct bn_bytes b = { 0 };

    cr_assert_eq(bn_vocab_bos(v), 128000);
    cr_assert_eq(bn_vocab_eos(v), 128001);
    cr_assert_eq(bn_vocab_eot(v), 128009);
    cr_assert(bn_vocab_add_bos(v));
    cr_assert(bn_vocab_is_eog(v, 128001) && bn_vocab_is_eog(v, 128009));
    cr_assert(!bn_vocab_is_eog(v, 128000) && !bn_vocab_is_eog(v, 13) && !bn_vocab_is_eog(v, -1));
    cr_assert_eq(bn_vocab_find(v, "<|eot_id|>", 10), 128009);
    cr_assert_eq(bn_vocab_find(v, "Ġthe", strlen("Ġthe")), 279);
    struct bn_str the = bn_vocab_token_bytes(v, 279);
    cr_assert(the.len == 4 && memcmp(the.ptr, " the", 4) == 0);

    /* Every special token, alone and between text. */
    int n_special = 0;
    for (int32_t id = 0; id < bn_vocab_n_tokens(v); id++) {
        if (!bn_vocab_is_control(v, id))
            continue;
        n_special++;
        struct bn_str s = bn_vocab_token_text(v, id);
        encode(v, s.ptr, s.len, true, &t);
        cr_assert(t.n == 1 && t.ids[0] == id, "special %d \"%s\" -> %zu ids", id, s.ptr, t.n);
        assert_roundtrip(v, &t, s.ptr, s.len);
        /* Without special parsing it is plain text: no control id comes out. */
        encode(v, s.ptr, s.len, false, &t);
        cr_assert_gt(t.n, 1);
        for (size_t i = 0; i < t.n; i++)
            cr_assert(!bn_vocab_is_control(v, t.ids[i]));
        assert_roundtrip(v, &t, s.ptr, s.len);
        /* Hidden unless asked for. */
        b.len = 0;
        cr_assert(bn_detokenize(v, &id, 1, false, &b, &err) == 0);
        cr_assert_eq(b.len, 0);
    }
    cr_assert_eq(n_special, 256);
    const char *mixed = "a<|eot_id|><|begin_of_text|>b <|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id";
    encode(v, mixed, strlen(mixed), true, &t);
    /* a <|eot_id|> <|begin_of_text|> b ' ' <|start_header_id|> user <|end_header_id|> \n\n hi, then the
     * unterminated "<|eot_id" as plain text. */
    int32_t want[] = { 64, 128009, 128000, 65, 220, 128006, 882, 128007, 271, 6151 };
    cr_assert_gt(t.n, 10);
    for (size_t i = 0; i < 10; i++)
        cr_assert_eq(t.ids[i], want[i], "position %zu: %d", i, t.ids[i]);
    for (size_t i = 10; i < t.n; i++)
        cr_assert(!bn_vocab_is_control(v, t.ids[i]));
    assert_roundtrip(v, &t, mixed, strlen(mixed));

    /* add_bos, empty input. */
    encode(v, "", 0, true, &t);
    cr_assert_eq(t.n, 0);
    t.n = 0;
    cr_assert(bn_tokenize(v, NULL, 0, true, true, &t, &err) == 0);
    cr_assert(t.n == 1 && t.ids[0] == 128000);
    t.n = 0;
    cr_assert(bn_tokenize(v, "Hello world", 11, true, false, &t, &err) == 0);
    cr_assert(t.n == 3 && t.ids[0] == 128000 && t.ids[1] == 9906 && t.ids[2] == 1917);
    /* Appends: a second call adds after what is there. */
    cr_assert(bn_tokenize(v, " world", 6, false, false, &t, &err) == 0);
    cr_assert(t.n == 4 && t.ids[3] == 1917);

    /* Invalid UTF-8: never rejected, always round-trips, valid parts tokenized as usual. */
    static const struct {
        const char *s;
        size_t n;
    } bad[] = {
        { "\xff", 1 },
        { "\x80\x80", 2 },
        { "abc\xe2\x82", 5 },         /* truncated 3-byte sequence at the end */
        { "\xe2\x82 abc", 6 },        /* ... at the start */
        { "\xc0\xaf", 2 },            /* overlong '/' */
        { "\xed\xa0\x80 x", 5 },      /* UTF-16 surrogate */
        { "\xf4\x90\x80\x80", 4 },    /* above U+10FFFF */
        { "Hello \xf0\x9f\x98 world", 15 },
        { "a\0b\0\0c", 6 },           /* NUL bytes are ordinary bytes */
        { "\xfe\xff\xfe\xff  \xc3", 7 },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        encode(v, bad[i].s, bad[i].n, true, &t);
        cr_assert_gt(t.n, 0);
        assert_roundtrip(v, &t, bad[i].s, bad[i].n);
    }
    /* "Hello world" inside invalid bytes still gives the words' usual ids. */
    encode(v, "\xffHello world\xff", 13, true, &t);
    cr_assert(t.n >= 3 && t.ids[1] == 9906 && t.ids[2] == 1917);

    /* Long inputs: 1 MiB of mixed text, and one 256 KiB piece (a single "word"). */
    size_t big = 1u << 20;
    char *s = malloc(big);
    const char *unit = "The quick brown fox — 12345 jumps! 🦊\n\t  ";
    for (size_t i = 0; i < big; i++)
        s[i] = unit[i % strlen(unit)];
    encode(v, s, big, true, &t);
    assert_roundtrip(v, &t, s, big);
    memset(s, 'a', 1u << 18);
    encode(v, s, 1u << 18, true, &t);
    assert_roundtrip(v, &t, s, 1u << 18);
    memset(s, ' ', 1u << 18);
    encode(v, s, 1u << 18, true, &t);
    assert_roundtrip(v, &t, s, 1u << 18);
    free(s);
    cr_assert(bn_tokenize(v, "x", (size_t)BN_TOKENIZE_MAX_BYTES + 1, false, false, &t, &err) == -1);
    cr_assert(strstr(err.msg, "BN_TOKENIZE_MAX_BYTES"), "%s", err.msg);

    /* Out-of-range ids. */
    int32_t ids[] = { 9906, 128256 };
    b.len = 0;
    cr_assert(bn_detokenize(v, ids, 2, true, &b, &err) == -1);
    cr_assert(strstr(err.msg, "128256") && strstr(err.msg, "out of range"), "%s", err.msg);
    cr_assert(strstr(err.msg, "position 1"), "%s", err.msg);
    cr_assert(b.len == 5 && memcmp(b.data, "Hello", 5) == 0);
    int32_t neg = -1;
    cr_assert(bn_detokenize(v, &neg, 1, true, &b, &err) == -1);
    struct bn_detok d;
    bn_detok_init(&d, false);
    cr_assert(bn_detok_push(&d, v, 200000, &b, &err) == -1);
    cr_assert(strstr(err.msg, "200000"), "%s", err.msg);
    cr_assert(bn_vocab_token_text(v, -5).ptr == NULL && bn_vocab_token_bytes(v, 128256).ptr == NULL);
    cr_assert_eq(bn_vocab_token_type(v, 1 << 30), BN_TOKEN_UNDEFINED);

    bn_tokens_free(&t);
    bn_bytes_free(&b);
}

/* Streaming: token by token, the pieces concatenate to the full decoding, and for
 * valid UTF-8 text every piece handed out is itself valid UTF-8. */
static void check_streaming_decoder(const struct bn_vocab *v)
{
    char *path = fx_data_path("llama3/encode-cases.jsonl");
    FILE *f = fopen(path, "r");
    cr_assert(f);
    char *line = NULL;
    size_t cap = 0;
    struct bn_tokens t = { 0 };
    struct bn_err err = { { 0 } };
    int split_chars = 0;
    while (getline(&line, &cap, f) > 0) {
        json_t *j = json_loads(line, 0, NULL);
        json_t *text = json_object_get(j, "text");
        const char *s = json_string_value(text);
        size_t n = json_string_length(text);
        encode(v, s, n, true, &t);
        struct bn_detok d;
        bn_detok_init(&d, true);
        struct bn_bytes all = { 0 }, piece = { 0 };
        for (size_t i = 0; i < t.n; i++) {
            piece.len = 0;
            cr_assert(bn_detok_push(&d, v, t.ids[i], &piece, &err) == 0, "%s", err.msg);
            cr_assert_eq(bn_utf8_valid_prefix((const uint8_t *)piece.data, piece.len), piece.len,
                         "a piece of \"%s\" ends inside a character", s);
            if (d.n_held)
                split_chars++;
            bn_bytes_append(&all, piece.data, piece.len, NULL);
        }
        cr_assert_eq(d.n_held, 0);
        bn_detok_flush(&d, &all, NULL);
        cr_assert(all.len == n && (n == 0 || memcmp(all.data, s, n) == 0));
        bn_bytes_free(&all);
        bn_bytes_free(&piece);
        json_decref(j);
    }
    cr_assert_gt(split_chars, 0, "no case had a character split across tokens");
    /* Flush hands out an unfinished sequence as is. */
    struct bn_detok d;
    bn_detok_init(&d, false);
    struct bn_bytes b = { 0 };
    encode(v, "\xe2\x82", 2, false, &t);
    for (size_t i = 0; i < t.n; i++)
        cr_assert(bn_detok_push(&d, v, t.ids[i], &b, &err) == 0);
    cr_assert_eq(b.len, 0);
    bn_detok_flush(&d, &b, NULL);
    cr_assert(b.len == 2 && memcmp(b.data, "\xe2\x82", 2) == 0);
    bn_bytes_free(&b);
    bn_tokens_free(&t);
    free(line);
    fclose(f);
    free(path);
}

/* One load of the full vocabulary (a GGUF from bitnet-mkmodel when it is built, else
 * tokenizer.json) serves all the checks above. */
Test(tokenizer, llama3_vocabulary)
{
    struct bn_vocab *v = fx_full_vocab();
    check_encode_cases_jsonl(v);
    check_llama_bpe_inp_out(v);
    check_specials_and_edges(v);
    check_streaming_decoder(v);
    bn_vocab_free(v);
}

/* ---------------------------------------------------------------------------
 * Threads: one vocabulary, many tokenizing threads, same results.
 * ------------------------------------------------------------------------ */
#define N_THREADS 4
struct thread_job {
    const struct bn_vocab *v;
    const char *text;
    size_t len;
    struct bn_tokens out;
    int rc;
};

static void *thread_main(void *arg)
{
    struct thread_job *j = arg;
    for (int rep = 0; rep < 20 && j->rc == 0; rep++) {
        j->out.n = 0;
        j->rc = bn_tokenize(j->v, j->text, j->len, false, true, &j->out, NULL);
    }
    return NULL;
}

Test(tokenizer, threads_share_one_vocab)
{
    char *path = fx_data_path("ref/tinyA-i2s.gguf");
    struct bn_vocab *v = fx_gguf_vocab(path);
    size_t n;
    char *pin = fx_data_path("llama3/llama-bpe.inp");
    char *text = fx_slurp(pin, &n);
    struct bn_tokens ref = { 0 };
    encode(v, text, n, true, &ref);
    pthread_t th[N_THREADS];
    struct thread_job jobs[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        jobs[i] = (struct thread_job){ v, text, n, { 0 }, 0 };
        cr_assert(pthread_create(&th[i], NULL, thread_main, &jobs[i]) == 0);
    }
    for (int i = 0; i < N_THREADS; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(jobs[i].rc, 0);
        cr_assert(jobs[i].out.n == ref.n && memcmp(jobs[i].out.ids, ref.ids, ref.n * sizeof *ref.ids) == 0);
        bn_tokens_free(&jobs[i].out);
    }
    bn_tokens_free(&ref);
    free(text);
    free(pin);
    free(path);
    bn_vocab_free(v);
}

/* ---------------------------------------------------------------------------
 * The 1003-token ref vocabulary (pre = llama-bpe, no eot key).
 * ------------------------------------------------------------------------ */
Test(tokenizer, ref_tiny_vocab)
{
    char *path = fx_data_path("ref/tinyA-i2s.gguf");
    struct bn_vocab *v = fx_gguf_vocab(path);
    cr_assert_eq(bn_vocab_n_tokens(v), 1003);
    cr_assert_eq(bn_vocab_bos(v), 1000);
    cr_assert_eq(bn_vocab_eos(v), 1001);
    cr_assert_eq(bn_vocab_eot(v), 1002, "<|eot_id|> is found by its text");
    cr_assert(bn_vocab_add_bos(v));
    cr_assert(bn_vocab_is_eog(v, 1001) && bn_vocab_is_eog(v, 1002) && !bn_vocab_is_eog(v, 1000));

    /* Every reference text tokenizes, round-trips, and stays inside the 1003 ids;
     * where the full vocabulary's ids are all below 1000 the small one agrees (its
     * merges are exactly the Llama-3 merges among those tokens). */
    char *cases = fx_data_path("llama3/encode-cases.jsonl");
    FILE *f = fopen(cases, "r");
    cr_assert(f);
    char *line = NULL;
    size_t cap = 0;
    struct bn_tokens t = { 0 };
    int agree = 0;
    while (getline(&line, &cap, f) > 0) {
        json_t *j = json_loads(line, 0, NULL);
        json_t *text = json_object_get(j, "text"), *ids = json_object_get(j, "ids");
        const char *s = json_string_value(text);
        size_t n = json_string_length(text);
        encode(v, s, n, true, &t);
        for (size_t i = 0; i < t.n; i++)
            cr_assert(t.ids[i] >= 0 && t.ids[i] < 1003);
        assert_roundtrip(v, &t, s, n);
        bool small = true;
        for (size_t i = 0; i < json_array_size(ids); i++)
            small = small && json_integer_value(json_array_get(ids, i)) < 1000;
        if (small && json_array_size(ids) > 0) {
            cr_assert_eq(t.n, json_array_size(ids), "\"%s\"", s);
            for (size_t i = 0; i < t.n; i++)
                cr_assert_eq(t.ids[i], json_integer_value(json_array_get(ids, i)), "\"%s\"", s);
            agree++;
        }
        json_decref(j);
    }
    cr_assert_gt(agree, 0);
    const char *sp = "<|begin_of_text|>the<|eot_id|>";
    encode(v, sp, strlen(sp), true, &t);
    cr_assert(t.n >= 3 && t.ids[0] == 1000 && t.ids[t.n - 1] == 1002);
    assert_roundtrip(v, &t, sp, strlen(sp));
    bn_tokens_free(&t);
    free(line);
    fclose(f);
    free(cases);
    free(path);
    bn_vocab_free(v);
}

/* ---------------------------------------------------------------------------
 * Hand-made vocabularies: BPE rules and load errors.
 * ------------------------------------------------------------------------ */

/* GPT-2 byte-level character of byte b, UTF-8 encoded into out (NUL-terminated). */
static void byte_char(unsigned b, char out[4])
{
    unsigned cp = b, extra = 0;
    bool self = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    if (!self) {
        for (unsigned x = 0; x < b; x++)
            if (!((x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE)))
                extra++;
        cp = 256 + extra;
    }
    size_t n = bn_utf8_encode(cp, (uint8_t *)out);
    out[n] = 0;
}

#define MAX_SYN 300
struct synth {
    char text[MAX_SYN][32];
    struct bn_str tokens[MAX_SYN];
    int32_t types[MAX_SYN];
    struct bn_str merges[16];
    struct bn_vocab_spec spec;
};

/* 256 byte tokens, then `extra` (NORMAL, byte-level text), then <|end|> (CONTROL). */
static void synth_init(struct synth *s, const char *const *extra, size_t n_extra, const char *const *merges,
                       size_t n_merges)
{
    memset(s, 0, sizeof *s);
    size_t n = 0;
    for (unsigned b = 0; b < 256; b++)
        byte_char(b, s->text[n++]);
    for (size_t i = 0; i < n_extra; i++)
        snprintf(s->text[n++], 32, "%s", extra[i]);
    snprintf(s->text[n++], 32, "<|end|>");
    for (size_t i = 0; i < n; i++) {
        s->tokens[i] = (struct bn_str){ s->text[i], strlen(s->text[i]) };
        s->types[i] = BN_TOKEN_NORMAL;
    }
    s->types[n - 1] = BN_TOKEN_CONTROL;
    for (size_t i = 0; i < n_merges; i++)
        s->merges[i] = (struct bn_str){ merges[i], strlen(merges[i]) };
    s->spec = (struct bn_vocab_spec){ .label = "synthetic", .tokens = s->tokens, .types = s->types, .n_tokens = n,
                                      .merges = s->merges, .n_merges = n_merges, .pre = { "llama-bpe", 9 },
                                      .bos_id = -1, .eos_id = (int64_t)n - 1, .eot_id = -1, .add_bos = false };
}

static void expect_pieces(const struct bn_vocab *v, const char *text, const char *const *want, size_t n_want)
{
    struct bn_tokens t = { 0 };
    encode(v, text, strlen(text), true, &t);
    cr_assert_eq(t.n, n_want, "\"%s\": %zu tokens, want %zu", text, t.n, n_want);
    for (size_t i = 0; i < n_want; i++) {
        struct bn_str s = bn_vocab_token_bytes(v, t.ids[i]);
        cr_assert(s.len == strlen(want[i]) && memcmp(s.ptr, want[i], s.len) == 0, "\"%s\" token %zu is \"%s\"",
                  text, i, s.ptr);
    }
    bn_tokens_free(&t);
}

Test(tokenizer, bpe_rank_order_and_ties)
{
    struct synth s;
    struct bn_vocab *v;
    struct bn_err err = { { 0 } };

    const char *extra1[] = { "ab", "bc", "aa", "abd" };
    const char *merges1[] = { "a b", "b c", "a a" };
    synth_init(&s, extra1, 4, merges1, 3);
    cr_assert(bn_vocab_from_arrays(&v, &s.spec, &err) == 0, "%s", err.msg);
    expect_pieces(v, "abc", (const char *[]){ "ab", "c" }, 2);       /* "a b" ranks before "b c" */
    expect_pieces(v, "aaa", (const char *[]){ "aa", "a" }, 2);       /* equal ranks: leftmost first */
    expect_pieces(v, "aaaa", (const char *[]){ "aa", "aa" }, 2);
    expect_pieces(v, "abd", (const char *[]){ "abd" }, 1);           /* ignore_merges: a token is whole */
    expect_pieces(v, "abdx", (const char *[]){ "ab", "d", "x" }, 3); /* no merge makes "abd" */
    expect_pieces(v, "x<|end|>ab", (const char *[]){ "x", "<|end|>", "ab" }, 3);
    cr_assert(bn_vocab_is_eog(v, 260));
    bn_vocab_free(v);

    const char *merges2[] = { "b c", "a b", "a a" };
    synth_init(&s, extra1, 4, merges2, 3);
    cr_assert(bn_vocab_from_arrays(&v, &s.spec, &err) == 0, "%s", err.msg);
    expect_pieces(v, "abc", (const char *[]){ "a", "bc" }, 2);
    bn_vocab_free(v);
}

static void expect_load_error(struct synth *s, const char *needle)
{
    struct bn_vocab *v = (struct bn_vocab *)1;
    struct bn_err err = { { 0 } };
    cr_assert(bn_vocab_from_arrays(&v, &s->spec, &err) == -1, "loaded although \"%s\" was expected", needle);
    cr_assert_null(v);
    cr_assert(strstr(err.msg, needle), "error \"%s\" lacks \"%s\"", err.msg, needle);
    cr_assert(strstr(err.msg, "synthetic"), "error \"%s\" does not name the vocabulary", err.msg);
}

Test(tokenizer, bad_vocabularies)
{
    struct synth s;
    const char *extra[] = { "ab" };
    const char *ok_merge[] = { "a b" };

    synth_init(&s, extra, 1, ok_merge, 1);
    s.spec.pre = (struct bn_str){ "qwen2", 5 };
    expect_load_error(&s, "\"qwen2\"");
    s.spec.pre = (struct bn_str){ NULL, 0 };
    expect_load_error(&s, "tokenizer.ggml.pre is absent");

    synth_init(&s, extra, 1, (const char *[]){ "a zz" }, 1);
    expect_load_error(&s, "\"zz\" is not a token");
    synth_init(&s, extra, 1, (const char *[]){ "ab" }, 1);
    expect_load_error(&s, "is not \"left right\"");
    synth_init(&s, extra, 1, (const char *[]){ "b a" }, 1); /* result "ba" is no token */
    expect_load_error(&s, "\"ba\" is not a token");

    synth_init(&s, (const char *[]){ "a b" }, 1, NULL, 0); /* a literal space: not byte-level */
    expect_load_error(&s, "not GPT-2 byte-level");
    synth_init(&s, extra, 1, ok_merge, 1);
    s.types[256 + 1] = 9;
    expect_load_error(&s, "token_type 9");
    synth_init(&s, extra, 1, ok_merge, 1);
    s.spec.bos_id = 5000;
    expect_load_error(&s, "bos_token_id = 5000 is out of range");
    synth_init(&s, extra, 1, ok_merge, 1);
    s.types['q'] = BN_TOKEN_CONTROL; /* byte 'q' no longer has a regular token */
    expect_load_error(&s, "byte 0x71");
    synth_init(&s, extra, 1, ok_merge, 1);
    s.spec.n_tokens = 0;
    expect_load_error(&s, "entries");
    synth_init(&s, extra, 1, ok_merge, 1);
    char longtok[BN_VOCAB_MAX_TOKEN_BYTES + 2];
    memset(longtok, 'a', sizeof longtok - 1);
    longtok[sizeof longtok - 1] = 0;
    s.tokens[256] = (struct bn_str){ longtok, strlen(longtok) };
    expect_load_error(&s, "BN_VOCAB_MAX_TOKEN_BYTES");
}

/* The GGUF loader: keys, types and the model name are checked. */
static struct bn_vocab *vocab_from_writer(struct bn_gguf_writer *w, struct bn_err *err, int *rc)
{
    char dir[] = "/tmp/bn-tok-XXXXXX";
    cr_assert(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof path, "%s/v.gguf", dir);
    cr_assert(bn_gguf_writer_write(w, path, err) == 0, "%s", err->msg);
    struct bn_mapped_file m;
    struct bn_gguf *g;
    struct bn_vocab *v = NULL;
    cr_assert(bn_map_file(path, &m, err) == 0, "%s", err->msg);
    cr_assert(bn_gguf_open(&g, m.base, m.size, path, 0, err) == 0, "%s", err->msg);
    *rc = bn_vocab_from_gguf(&v, g, err);
    bn_gguf_close(g);
    bn_unmap_file(&m);
    unlink(path);
    rmdir(dir);
    return v;
}

static struct bn_gguf_writer *writer_with_vocab(const char *model, bool types_ok)
{
    struct bn_gguf_writer *w = bn_gguf_writer_new();
    cr_assert(w);
    const char *tokens[258];
    char text[258][8];
    for (unsigned b = 0; b < 256; b++) {
        byte_char(b, text[b]);
        tokens[b] = text[b];
    }
    tokens[256] = "ab";
    tokens[257] = "<|eot_id|>";
    int32_t types[258];
    for (int i = 0; i < 258; i++)
        types[i] = BN_TOKEN_NORMAL;
    types[257] = BN_TOKEN_CONTROL;
    const char *merges[] = { "a b" };
    cr_assert(bn_gguf_set_str(w, "tokenizer.ggml.model", model) == 0);
    cr_assert(bn_gguf_set_str(w, "tokenizer.ggml.pre", "llama-bpe") == 0);
    cr_assert(bn_gguf_set_arr_str(w, "tokenizer.ggml.tokens", tokens, 258) == 0);
    if (types_ok)
        cr_assert(bn_gguf_set_arr(w, "tokenizer.ggml.token_type", BN_GGUF_INT32, types, 258) == 0);
    else
        cr_assert(bn_gguf_set_arr(w, "tokenizer.ggml.token_type", BN_GGUF_INT32, types, 100) == 0);
    cr_assert(bn_gguf_set_arr_str(w, "tokenizer.ggml.merges", merges, 1) == 0);
    cr_assert(bn_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", 257) == 0);
    cr_assert(bn_gguf_set_bool(w, "tokenizer.ggml.add_bos_token", false) == 0);
    return w;
}

Test(tokenizer, gguf_loader)
{
    struct bn_err err = { { 0 } };
    int rc;
    struct bn_gguf_writer *w = writer_with_vocab("gpt2", true);
    struct bn_vocab *v = vocab_from_writer(w, &err, &rc);
    cr_assert_eq(rc, 0, "%s", err.msg);
    cr_assert_eq(bn_vocab_n_tokens(v), 258);
    cr_assert_eq(bn_vocab_bos(v), -1);
    cr_assert_eq(bn_vocab_eos(v), 257);
    cr_assert_eq(bn_vocab_eot(v), 257);
    cr_assert(!bn_vocab_add_bos(v));
    expect_pieces(v, "ab<|eot_id|>", (const char *[]){ "ab", "<|eot_id|>" }, 2);
    bn_vocab_free(v);
    bn_gguf_writer_free(w);

    w = writer_with_vocab("llama", true);
    v = vocab_from_writer(w, &err, &rc);
    cr_assert(rc == -1 && !v);
    cr_assert(strstr(err.msg, "tokenizer.ggml.model = \"llama\""), "%s", err.msg);
    bn_gguf_writer_free(w);

    w = writer_with_vocab("gpt2", false);
    v = vocab_from_writer(w, &err, &rc);
    cr_assert(rc == -1 && !v);
    cr_assert(strstr(err.msg, "token_type has 100 entries"), "%s", err.msg);
    bn_gguf_writer_free(w);

    w = bn_gguf_writer_new();
    cr_assert(bn_gguf_set_u32(w, "general.alignment", 32) == 0);
    v = vocab_from_writer(w, &err, &rc);
    cr_assert(rc == -1 && !v);
    cr_assert(strstr(err.msg, "tokenizer.ggml.model is missing"), "%s", err.msg);
    bn_gguf_writer_free(w);
}
