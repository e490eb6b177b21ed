/* tests/fuzz/fuzz_stop.c — stop conditions on arbitrary text and token streams
 * (engine/chat_stop.c).
 *
 * Input: one control byte, then the stop strings, each ended by a NUL, then the rest:
 *   control bits 0-3: number of stop strings (0..15); bit 4: render_special for the
 *   stopper; bits 5-7: the stopper's max_tokens (0 = no budget).
 *   A stop string that is empty or over BN_STOP_MAX_STRING_BYTES must be refused.
 * The rest is used twice:
 *   1. as text, fed to bn_stop_matcher in pieces of 1..32 bytes (sizes from a
 *      generator seeded by the input), then flushed;
 *   2. as token ids (3 bytes each, little-endian, modulo the vocabulary size) pushed
 *      through bn_stopper with the Llama-3 vocabulary until it says stop (or
 *      bn_stopper_finish at the end).
 *
 * Both are compared with a plain reference: the text up to the end of generation,
 * cut before the earliest-ending occurrence of any stop string.  The matcher is also
 * checked after every piece: what it has emitted is a prefix of the final answer,
 * and what it holds back is exactly the longest end of the text that is a proper
 * beginning of some stop string.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

#define PIECE_MAX 32   /* bytes per matcher feed */
#define ID_BYTES 3     /* input bytes per token id */

static const struct bn_vocab *vocab;

static int stop_init(char *why, size_t why_len)
{
    return (vocab = fuzz_vocab_full(why, why_len)) ? 0 : -1;
}

struct stops {
    const char *s[16];
    size_t len[16];
    size_t n;
    bool valid; /* what bn_stop_matcher_new must accept */
};

/* Reference cut: *cut = bytes kept before the earliest-ending match (any of the stop
 * strings ending there is acceptable); returns false when nothing matches. */
static bool ref_match(const struct stops *st, const uint8_t *t, size_t n, size_t *cut_lo, size_t *cut_hi)
{
    for (size_t e = 1; e <= n; e++) {
        bool hit = false;
        for (size_t j = 0; j < st->n; j++) {
            size_t l = st->len[j];
            if (l <= e && memcmp(t + e - l, st->s[j], l) == 0) {
                size_t c = e - l;
                if (!hit || c < *cut_lo)
                    *cut_lo = c;
                if (!hit || c > *cut_hi)
                    *cut_hi = c;
                hit = true;
            }
        }
        if (hit)
            return true;
    }
    return false;
}

/* Longest end of t[0..n) that is a proper beginning of some stop string. */
static size_t ref_partial(const struct stops *st, const uint8_t *t, size_t n)
{
    size_t best = 0;
    for (size_t j = 0; j < st->n; j++)
        for (size_t k = st->len[j] - 1; k > best; k--)
            if (k <= n && memcmp(t + n - k, st->s[j], k) == 0) {
                best = k;
                break;
            }
    return best;
}

static void check_matcher(const struct stops *st, const uint8_t *text, size_t n, uint64_t seed)
{
    struct bn_err err = { { 0 } };
    struct bn_stop_matcher *m = bn_stop_matcher_new(st->s, st->n, &err);
    if ((m != NULL) != st->valid)
        fuzz_fail("stop: bn_stop_matcher_new %s a set it should %s (%s)", m ? "accepted" : "refused",
                  st->valid ? "accept" : "refuse", err.msg);
    if (!m) {
        if (!err.msg[0])
            fuzz_fail("stop: refused without a message");
        return;
    }
    size_t lo = 0, hi = 0;
    bool want_match = ref_match(st, text, n, &lo, &hi);
    struct bn_bytes out = { 0 };
    bool matched = false;
    uint64_t rng = seed;
    size_t pos = 0;
    while (pos < n) {
        size_t k = 1 + (size_t)(fuzz_mix(&rng) % PIECE_MAX);
        if (k > n - pos)
            k = n - pos;
        size_t before = out.len;
        bool was = matched;
        if (bn_stop_matcher_feed(m, (const char *)text + pos, k, &out, &matched, &err))
            fuzz_fail("stop: feed failed: %s", err.msg);
        pos += k;
        if (was && (out.len != before || !matched))
            fuzz_fail("stop: a feed after the match changed the output or the match");
        if (!matched) {
            /* held back = exactly what could still become a stop string */
            size_t held = pos - out.len, want_held = ref_partial(st, text, pos);
            if (out.len > pos || held != want_held || (out.len && memcmp(out.data, text, out.len) != 0)) {
                fuzz_dump("text so far", text, pos);
                fuzz_fail("stop: after %zu bytes the matcher holds %zu bytes back, expected %zu", pos, held,
                          want_held);
            }
        }
    }
    if (bn_stop_matcher_flush(m, &out, &err))
        fuzz_fail("stop: flush failed: %s", err.msg);
    if (matched != want_match || (matched ? out.len < lo || out.len > hi : out.len != n) ||
        (out.len && memcmp(out.data, text, out.len) != 0)) {
        fuzz_dump("text", text, n);
        fuzz_dump("emitted", out.data, out.len);
        fuzz_fail("stop: matched %d (expected %d), emitted %zu bytes (expected %zu..%zu)", matched, want_match,
                  out.len, want_match ? lo : n, want_match ? hi : n);
    }
    bn_bytes_free(&out);
    bn_stop_matcher_free(m);
}

static void check_stopper(const struct stops *st, const uint8_t *data, size_t n, bool render_special,
                          int64_t max_tokens)
{
    if (!st->valid)
        return;
    struct bn_err err = { { 0 } };
    int32_t n_vocab = bn_vocab_n_tokens(vocab);
    size_t n_ids = n / ID_BYTES;
    int32_t *ids = malloc((n_ids ? n_ids : 1) * sizeof *ids);
    if (!ids)
        fuzz_fail("stop: out of memory");
    for (size_t i = 0; i < n_ids; i++) {
        const uint8_t *p = data + i * ID_BYTES;
        ids[i] = (int32_t)((p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16) % (uint32_t)n_vocab);
    }
    /* reference: the text up to the end of generation */
    struct bn_bytes ref = { 0 };
    int ref_reason = BN_STOP_NONE;
    for (size_t i = 0; i < n_ids; i++) {
        if (bn_vocab_is_eog(vocab, ids[i])) {
            ref_reason = BN_STOP_EOG;
            break;
        }
        if (bn_detokenize(vocab, &ids[i], 1, render_special, &ref, &err))
            fuzz_fail("stop: detokenize failed: %s", err.msg);
        if (max_tokens > 0 && (int64_t)i + 1 >= max_tokens) {
            ref_reason = BN_STOP_MAX_TOKENS;
            break;
        }
    }
    size_t lo = 0, hi = 0;
    if (ref_match(st, (const uint8_t *)ref.data, ref.len, &lo, &hi))
        ref_reason = BN_STOP_STRING;
    else
        lo = hi = ref.len;

    struct bn_stopper *s = bn_stopper_new(vocab, st->s, st->n, max_tokens, render_special, &err);
    if (!s)
        fuzz_fail("stop: bn_stopper_new refused valid stop strings: %s", err.msg);
    struct bn_bytes out = { 0 };
    int reason = BN_STOP_NONE;
    for (size_t i = 0; i < n_ids && reason == BN_STOP_NONE; i++) {
        reason = bn_stopper_push(s, ids[i], &out, &err);
        if (reason < 0)
            fuzz_fail("stop: bn_stopper_push(%d) failed: %s", ids[i], err.msg);
    }
    /* Pushed everything without a stop: finish flushes the held text, which may still
     * complete a stop string (the reason is then not returned, only the cut shows). */
    bool finished = reason == BN_STOP_NONE;
    if (finished && bn_stopper_finish(s, &out, &err))
        fuzz_fail("stop: bn_stopper_finish failed: %s", err.msg);
    bool reason_ok = finished ? ref_reason == BN_STOP_NONE || ref_reason == BN_STOP_STRING : reason == ref_reason;
    if (!reason_ok || out.len < lo || out.len > hi || (out.len && memcmp(out.data, ref.data, out.len) != 0)) {
        fuzz_dump("reference text", ref.data, ref.len);
        fuzz_dump("stopper output", out.data, out.len);
        fuzz_fail("stop: stopper reason %d (expected %d), %zu bytes (expected %zu..%zu), render_special %d, "
                  "max_tokens %lld",
                  reason, ref_reason, out.len, lo, hi, render_special, (long long)max_tokens);
    }
    bn_bytes_free(&out);
    bn_bytes_free(&ref);
    bn_stopper_free(s);
    free(ids);
}

static int stop_one(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    uint8_t ctl = data[0];
    struct stops st = { .n = ctl & 0x0f, .valid = true };
    size_t pos = 1;
    for (size_t j = 0; j < st.n; j++) {
        const uint8_t *nul = pos < size ? memchr(data + pos, 0, size - pos) : NULL;
        if (!nul) { /* the input ended: this and the remaining strings are empty */
            st.s[j] = "";
            st.len[j] = 0;
            st.valid = false;
            continue;
        }
        st.s[j] = (const char *)data + pos;
        st.len[j] = (size_t)(nul - (data + pos));
        if (st.len[j] == 0 || st.len[j] > BN_STOP_MAX_STRING_BYTES)
            st.valid = false;
        pos += st.len[j] + 1;
    }
    const uint8_t *text = data + (pos < size ? pos : size);
    size_t n = pos < size ? size - pos : 0;
    check_matcher(&st, text, n, size * 131 + ctl);
    check_stopper(&st, text, n, ctl & 0x10, (ctl >> 5) & 7);
    return 0;
}

const struct fuzz_target fuzz_target_stop = { "stop", stop_init, stop_one, NULL };
