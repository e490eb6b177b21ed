/* tests/fuzz/fuzz_tokenizer.c — the tokenizer on arbitrary bytes (engine/tokenizer*.c,
 * vocab.c, utf8.c).
 *
 * The input is text (any bytes).  It is tokenized with the 128256-token Llama-3
 * vocabulary and with the reference models' 1003-token one, with and without
 * special-token parsing, with and without BOS.
 *
 * Properties checked (bitnet.h promises them):
 *   - bn_tokenize accepts any bytes;
 *   - decode(encode(x)) == x: bn_detokenize of the ids (after the BOS, special tokens
 *     rendered exactly when they were parsed) gives back the input byte for byte;
 *   - the streaming detokenizer (bn_detok_push per id, then bn_detok_flush) gives the
 *     same bytes, and after no push does its output end inside a UTF-8 sequence that
 *     the input completes later (it holds such bytes back);
 *   - without special-token parsing no CONTROL token comes out; with add_bos the
 *     first id is the BOS;
 *   - every id is in range; bn_vocab_find of the input, when it finds a token, finds
 *     one whose text is the input.
 */
#include <stdio.h>
#include <string.h>

#include "fuzz.h"
#include "tokenizer_internal.h"

static const struct bn_vocab *vocabs[2];

static int tokenizer_init(char *why, size_t why_len)
{
    if (!(vocabs[0] = fuzz_vocab_full(why, why_len)) || !(vocabs[1] = fuzz_vocab_small(why, why_len)))
        return -1;
    return 0;
}

static void check_roundtrip(const struct bn_vocab *v, const uint8_t *data, size_t size, bool add_bos,
                            bool parse_special)
{
    struct bn_tokens t = { 0 };
    struct bn_err err = { { 0 } };
    int32_t n_vocab = bn_vocab_n_tokens(v);
    if (bn_tokenize(v, (const char *)data, size, add_bos, parse_special, &t, &err)) {
        fuzz_dump("input", data, size);
        fuzz_fail("tokenizer (%d tokens): bn_tokenize refused %zu bytes: %s", n_vocab, size, err.msg);
    }
    size_t skip = 0;
    if (add_bos && bn_vocab_bos(v) >= 0) {
        if (t.n == 0 || t.ids[0] != bn_vocab_bos(v))
            fuzz_fail("tokenizer (%d tokens): add_bos but the first id is not the BOS", n_vocab);
        skip = 1;
    }
    for (size_t i = 0; i < t.n; i++) {
        if (t.ids[i] < 0 || t.ids[i] >= n_vocab)
            fuzz_fail("tokenizer (%d tokens): id %d at %zu is out of range", n_vocab, t.ids[i], i);
        if (!parse_special && i >= skip && bn_vocab_is_control(v, t.ids[i])) {
            fuzz_dump("input", data, size);
            fuzz_fail("tokenizer (%d tokens): control token %d at %zu without special-token parsing", n_vocab,
                      t.ids[i], i);
        }
    }
    struct bn_bytes out = { 0 };
    const int32_t *ids = t.n > skip ? t.ids + skip : NULL; /* t.ids is NULL for an empty input */
    if (bn_detokenize(v, ids, t.n - skip, parse_special, &out, &err))
        fuzz_fail("tokenizer (%d tokens): detokenize failed: %s", n_vocab, err.msg);
    if (out.len != size || (size && memcmp(out.data, data, size) != 0)) {
        fuzz_dump("input", data, size);
        fuzz_dump("decoded", out.data, out.len);
        fuzz_fail("tokenizer (%d tokens, parse_special %d, add_bos %d): decode(encode(x)) != x", n_vocab,
                  parse_special, add_bos);
    }
    /* the streaming detokenizer; inside[i]: byte i continues a valid multi-byte
     * sequence of the input, so the output must never stop just before it */
    bool *inside = calloc(size + 1, sizeof *inside);
    if (!inside)
        fuzz_fail("tokenizer: out of memory");
    for (size_t i = 0; i < size;) {
        size_t l = bn_utf8_valid_seq(data + i, size - i);
        for (size_t j = 1; j < l; j++)
            inside[i + j] = true;
        i += l ? l : 1;
    }
    struct bn_detok d;
    bn_detok_init(&d, parse_special);
    out.len = 0;
    for (size_t i = skip; i < t.n; i++) {
        if (bn_detok_push(&d, v, t.ids[i], &out, &err))
            fuzz_fail("tokenizer (%d tokens): bn_detok_push(%d) failed: %s", n_vocab, t.ids[i], err.msg);
        if (out.len <= size && inside[out.len]) {
            fuzz_dump("input", data, size);
            fuzz_fail("tokenizer (%d tokens): after token %zu the streamed text (%zu bytes) ends inside a UTF-8 "
                      "sequence",
                      n_vocab, i, out.len);
        }
    }
    free(inside);
    if (bn_detok_flush(&d, &out, &err))
        fuzz_fail("tokenizer: bn_detok_flush failed: %s", err.msg);
    if (out.len != size || (size && memcmp(out.data, data, size) != 0)) {
        fuzz_dump("input", data, size);
        fuzz_dump("streamed", out.data, out.len);
        fuzz_fail("tokenizer (%d tokens): the streaming detokenizer gives other bytes than the input", n_vocab);
    }
    bn_bytes_free(&out);
    bn_tokens_free(&t);
}

static int tokenizer_one(const uint8_t *data, size_t size)
{
    for (size_t k = 0; k < 2; k++) {
        const struct bn_vocab *v = vocabs[k];
        check_roundtrip(v, data, size, false, false);
        check_roundtrip(v, data, size, false, true);
        check_roundtrip(v, data, size, true, false);
        int32_t id = bn_vocab_find(v, (const char *)data, size);
        if (id >= 0) {
            struct bn_str s = bn_vocab_token_text(v, id);
            if (s.len != size || memcmp(s.ptr, data, size) != 0)
                fuzz_fail("tokenizer: bn_vocab_find found token %d whose text is not the input", id);
        }
    }
    return 0;
}

const struct fuzz_target fuzz_target_tokenizer = { "tokenizer", tokenizer_init, tokenizer_one, NULL };
