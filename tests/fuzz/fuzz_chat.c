/* tests/fuzz/fuzz_chat.c — the chat-format renderer on arbitrary conversations
 * (engine/chat.c).
 *
 * Input: messages separated by NUL bytes; each is "role\ncontent" (no '\n': role
 * "user" and the whole message as content), at most MAX_MSGS of them.  The role is
 * whatever bytes come before the '\n', so bad roles are fuzzed too.  Each
 * conversation is rendered in both formats (bitnet, llama3) as text and as tokens
 * (the Llama-3 vocabulary), and the first two messages also go through
 * bn_chat_format_detect as (architecture, template).
 *
 * Properties checked (bitnet.h promises them):
 *   - bn_chat_render and bn_chat_tokenize accept and refuse the same conversations;
 *   - rendering [0, k) without the generation prompt then [k, n) with it gives the
 *     same text, and the same tokens, as [0, n) at once (1 <= k <= n, from the input);
 *   - the tokens decode (special tokens rendered) to exactly the rendered text:
 *     content is tokenized as plain text, so it can never turn into a special token;
 *   - a failed call leaves its output as it was.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

#define MAX_MSGS 64

static const struct bn_vocab *vocab;

static int chat_init(char *why, size_t why_len)
{
    return (vocab = fuzz_vocab_full(why, why_len)) ? 0 : -1;
}

static bool same(const void *a, size_t na, const void *b, size_t nb)
{
    return na == nb && (na == 0 || memcmp(a, b, na) == 0);
}

static void check_format(enum bn_chat_format f, const struct bn_chat_msg *msgs, size_t n, size_t k)
{
    const char *fname = bn_chat_format_name(f);
    struct bn_err err = { { 0 } };
    struct bn_bytes text = { 0 };
    struct bn_tokens toks = { 0 };
    /* a failed call must leave what was already in the output */
    bn_bytes_append(&text, "x", 1, &err);
    bn_tokens_push(&toks, 7, &err);
    int rr = bn_chat_render(f, msgs, n, 0, true, &text, &err);
    int rt = bn_chat_tokenize(vocab, f, msgs, n, 0, true, &toks, &err);
    if ((rr == 0) != (rt == 0))
        fuzz_fail("chat %s: render %s but tokenize %s (%s)", fname, rr ? "fails" : "succeeds",
                  rt ? "fails" : "succeeds", err.msg);
    if (rr) {
        if (text.len != 1 || toks.n != 1 || text.data[1] != 0)
            fuzz_fail("chat %s: a failed call changed its output", fname);
        goto done;
    }
    /* decode(tokens) == text */
    struct bn_bytes dec = { 0 };
    if (bn_detokenize(vocab, toks.ids + 1, toks.n - 1, true, &dec, &err))
        fuzz_fail("chat %s: detokenize failed: %s", fname, err.msg);
    if (!same(dec.data, dec.len, text.data + 1, text.len - 1)) {
        fuzz_dump("rendered", text.data + 1, text.len - 1);
        fuzz_dump("decoded tokens", dec.data, dec.len);
        fuzz_fail("chat %s: the tokens do not decode to the rendered text", fname);
    }
    bn_bytes_free(&dec);

    /* [0, k) then [k, n) == [0, n) */
    struct bn_bytes t2 = { 0 };
    struct bn_tokens k2 = { 0 };
    if (bn_chat_render(f, msgs, k, 0, false, &t2, &err) || bn_chat_render(f, msgs, n, k, true, &t2, &err) ||
        bn_chat_tokenize(vocab, f, msgs, k, 0, false, &k2, &err) ||
        bn_chat_tokenize(vocab, f, msgs, n, k, true, &k2, &err))
        fuzz_fail("chat %s: rendering in two parts (at %zu of %zu) fails: %s", fname, k, n, err.msg);
    if (!same(t2.data, t2.len, text.data + 1, text.len - 1)) {
        fuzz_dump("at once", text.data + 1, text.len - 1);
        fuzz_dump("in two parts", t2.data, t2.len);
        fuzz_fail("chat %s: rendering [0,%zu) + [%zu,%zu) differs from [0,%zu)", fname, k, k, n, n);
    }
    if (!same(k2.ids, k2.n * sizeof *k2.ids, toks.ids + 1, (toks.n - 1) * sizeof *toks.ids))
        fuzz_fail("chat %s: tokenizing [0,%zu) + [%zu,%zu) differs from [0,%zu)", fname, k, k, n, n);
    bn_bytes_free(&t2);
    bn_tokens_free(&k2);
done:
    bn_bytes_free(&text);
    bn_tokens_free(&toks);
}

static int chat_one(const uint8_t *data, size_t size)
{
    /* a private NUL-terminated copy: roles are C strings cut out of it */
    char *buf = malloc(size + 1);
    if (!buf)
        fuzz_fail("chat: out of memory");
    memcpy(buf, data, size);
    buf[size] = 0;
    struct bn_chat_msg msgs[MAX_MSGS];
    size_t n = 0;
    for (size_t pos = 0; pos <= size && n < MAX_MSGS;) {
        char *rec = buf + pos;
        size_t len = strlen(rec); /* up to the next NUL (a separator) */
        char *nl = memchr(rec, '\n', len);
        if (nl) {
            *nl = 0;
            msgs[n] = (struct bn_chat_msg){ rec, nl + 1, len - (size_t)(nl + 1 - rec) };
        } else {
            msgs[n] = (struct bn_chat_msg){ "user", rec, len };
        }
        n++;
        pos += len + 1;
    }
    /* the split point k in 1..n (k = 0 would render <|begin_of_text|> twice: from == 0
     * means "a new conversation"); from the input, so the fuzzer can steer it */
    size_t k = 1 + (size ? (size_t)(data[0] ^ size) % n : 0);
    check_format(BN_CHAT_BITNET, msgs, n, k);
    check_format(BN_CHAT_LLAMA3, msgs, n, k);
    if (n >= 2) {
        struct bn_str arch = { msgs[0].content, msgs[0].content_len };
        struct bn_str tmpl = { msgs[1].content, msgs[1].content_len };
        bn_chat_format_detect(arch, tmpl);
    }
    free(buf);
    return 0;
}

const struct fuzz_target fuzz_target_chat = { "chat", chat_init, chat_one, NULL };
