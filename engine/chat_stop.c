/* engine/chat_stop.c — when to stop generating: end-of-generation tokens, stop
 * strings on the decoded text, a token budget.
 *
 * The stop-string matcher runs one Knuth-Morris-Pratt automaton per stop string over
 * the bytes as they arrive, so a stop string split across any number of tokens is
 * found, and the text is scanned once.  The longest partial match of any automaton
 * says how many trailing bytes might still become a stop string: those are held back,
 * everything before them is final and emitted.
 */
#include <stdlib.h>
#include <string.h>

#include "bitnet.h"

struct stop_string {
    char *s;
    size_t len;
    size_t *fail; /* [len] KMP failure function: longest proper border of s[0..i] */
    size_t state; /* bytes of s matched at the end of the text so far */
};

struct bn_stop_matcher {
    struct stop_string st[BN_STOP_MAX_STRINGS];
    size_t n;
    struct bn_bytes hold; /* text not yet emitted: a possible start of a stop string */
    bool matched;
};

void bn_stop_matcher_free(struct bn_stop_matcher *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++) {
        free(m->st[i].s);
        free(m->st[i].fail);
    }
    bn_bytes_free(&m->hold);
    free(m);
}

struct bn_stop_matcher *bn_stop_matcher_new(const char *const *stops, size_t n_stops, struct bn_err *err)
{
    if (n_stops > BN_STOP_MAX_STRINGS) {
        bn_errf(err, "stop strings: %zu given (limit BN_STOP_MAX_STRINGS = %d)", n_stops, BN_STOP_MAX_STRINGS);
        return NULL;
    }
    for (size_t i = 0; i < n_stops; i++) {
        size_t len = stops[i] ? strnlen(stops[i], BN_STOP_MAX_STRING_BYTES + 1) : 0;
        if (len == 0 || len > BN_STOP_MAX_STRING_BYTES) {
            bn_errf(err, "stop string %zu: must be 1 to %d bytes (BN_STOP_MAX_STRING_BYTES)", i,
                    BN_STOP_MAX_STRING_BYTES);
            return NULL;
        }
    }
    struct bn_stop_matcher *m = calloc(1, sizeof *m);
    if (!m) {
        bn_errf(err, "stop strings: out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n_stops; i++) {
        struct stop_string *st = &m->st[m->n++];
        st->len = strlen(stops[i]);
        st->s = strdup(stops[i]);
        st->fail = malloc(st->len * sizeof *st->fail);
        if (!st->s || !st->fail) {
            bn_stop_matcher_free(m);
            bn_errf(err, "stop strings: out of memory");
            return NULL;
        }
        st->fail[0] = 0;
        for (size_t q = 1, k = 0; q < st->len; q++) {
            while (k > 0 && st->s[q] != st->s[k])
                k = st->fail[k - 1];
            if (st->s[q] == st->s[k])
                k++;
            st->fail[q] = k;
        }
    }
    return m;
}

/* Advance automaton st by byte c; true when the whole stop string has matched. */
static bool kmp_step(struct stop_string *st, char c)
{
    size_t k = st->state;
    while (k > 0 && st->s[k] != c)
        k = st->fail[k - 1];
    if (st->s[k] == c)
        k++;
    if (k == st->len) {
        st->state = st->fail[k - 1];
        return true;
    }
    st->state = k;
    return false;
}

/* Emit hold[0..n) and keep the rest. */
static int emit(struct bn_stop_matcher *m, size_t n, struct bn_bytes *out, struct bn_err *err)
{
    if (n && bn_bytes_append(out, m->hold.data, n, err))
        return -1;
    memmove(m->hold.data, m->hold.data + n, m->hold.len - n);
    m->hold.len -= n;
    m->hold.data[m->hold.len] = 0;
    return 0;
}

int bn_stop_matcher_feed(struct bn_stop_matcher *m, const char *text, size_t len, struct bn_bytes *out,
                         bool *matched, struct bn_err *err)
{
    *matched = m->matched;
    if (m->matched || len == 0)
        return 0;
    size_t start = m->hold.len;
    if (bn_bytes_append(&m->hold, text, len, err))
        return -1;
    for (size_t i = start; i < m->hold.len; i++) {
        for (size_t j = 0; j < m->n; j++) {
            if (!kmp_step(&m->st[j], m->hold.data[i]))
                continue;
            /* Earliest-ending match wins: emit what precedes it, drop the rest. */
            size_t match_start = i + 1 - m->st[j].len;
            if (emit(m, match_start, out, err))
                return -1;
            m->hold.len = 0;
            m->hold.data[0] = 0;
            m->matched = *matched = true;
            return 0;
        }
    }
    size_t partial = 0;
    for (size_t j = 0; j < m->n; j++)
        if (m->st[j].state > partial)
            partial = m->st[j].state;
    return emit(m, m->hold.len - partial, out, err);
}

int bn_stop_matcher_flush(struct bn_stop_matcher *m, struct bn_bytes *out, struct bn_err *err)
{
    for (size_t j = 0; j < m->n; j++)
        m->st[j].state = 0;
    if (m->matched || m->hold.len == 0)
        return 0;
    return emit(m, m->hold.len, out, err);
}

struct bn_stopper {
    const struct bn_vocab *v;
    struct bn_stop_matcher *m;
    struct bn_detok d;
    int64_t max_tokens, n_tokens;
    struct bn_bytes piece; /* the current token's complete text */
    int reason;            /* once stopped, the reason; BN_STOP_NONE while running */
};

struct bn_stopper *bn_stopper_new(const struct bn_vocab *v, const char *const *stops, size_t n_stops,
                                  int64_t max_tokens, bool render_special, struct bn_err *err)
{
    struct bn_stopper *s = calloc(1, sizeof *s);
    if (!s) {
        bn_errf(err, "stopper: out of memory");
        return NULL;
    }
    s->v = v;
    s->max_tokens = max_tokens;
    bn_detok_init(&s->d, render_special);
    if (!(s->m = bn_stop_matcher_new(stops, n_stops, err))) {
        free(s);
        return NULL;
    }
    return s;
}

void bn_stopper_free(struct bn_stopper *s)
{
    if (!s)
        return;
    bn_stop_matcher_free(s->m);
    bn_bytes_free(&s->piece);
    free(s);
}

/* Flush the detokenizer's unfinished bytes through the matcher, then the matcher's
 * held text.  Returns BN_STOP_STRING if the flushed bytes completed a stop string,
 * `reason` otherwise, -1 on error. */
static int flush_all(struct bn_stopper *s, int reason, struct bn_bytes *out, struct bn_err *err)
{
    bool matched;
    s->piece.len = 0;
    if (bn_detok_flush(&s->d, &s->piece, err) ||
        bn_stop_matcher_feed(s->m, s->piece.data, s->piece.len, out, &matched, err) ||
        bn_stop_matcher_flush(s->m, out, err))
        return -1;
    s->reason = matched ? BN_STOP_STRING : reason;
    return s->reason;
}

int bn_stopper_push(struct bn_stopper *s, int32_t id, struct bn_bytes *out, struct bn_err *err)
{
    if (s->reason != BN_STOP_NONE)
        return s->reason;
    if (id < 0 || id >= bn_vocab_n_tokens(s->v))
        return bn_errf(err, "stopper: token id %d is out of range (the vocabulary has %d tokens)", id,
                       bn_vocab_n_tokens(s->v));
    s->n_tokens++;
    if (bn_vocab_is_eog(s->v, id))
        return flush_all(s, BN_STOP_EOG, out, err);
    bool matched;
    s->piece.len = 0;
    if (bn_detok_push(&s->d, s->v, id, &s->piece, err) ||
        bn_stop_matcher_feed(s->m, s->piece.data, s->piece.len, out, &matched, err))
        return -1;
    if (matched)
        return s->reason = BN_STOP_STRING;
    if (s->max_tokens > 0 && s->n_tokens >= s->max_tokens)
        return flush_all(s, BN_STOP_MAX_TOKENS, out, err);
    return BN_STOP_NONE;
}

int bn_stopper_finish(struct bn_stopper *s, struct bn_bytes *out, struct bn_err *err)
{
    if (s->reason != BN_STOP_NONE)
        return 0;
    return flush_all(s, BN_STOP_NONE, out, err) < 0 ? -1 : 0;
}
