/* engine/tokenizer.c — text -> token ids (REFERENCE §6).
 *
 *   1. special tokens: leftmost-longest match of CONTROL texts (when asked) and
 *      USER_DEFINED texts (always); they become their ids, the text between them is
 *      tokenized as below;
 *   2. pre-tokenizer: maximal runs of valid UTF-8 are cut into pieces by the Llama-3
 *      split regex (PCRE2, UTF + UCP); each maximal run of invalid bytes is one piece
 *      (so no input is rejected and decoding gives the input back byte for byte);
 *   3. BPE per piece: a piece that is itself a token is emitted whole (ignore_merges);
 *      otherwise start from single-byte tokens and repeatedly apply the lowest-rank
 *      merge among adjacent pairs (leftmost first on equal ranks), using a linked list
 *      of symbols and a binary heap of candidate pairs: O(n log n) in the piece length,
 *      so a megabyte-long piece is no problem.
 *
 * All scratch memory belongs to the call: one vocabulary serves any number of threads.
 */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

/* A candidate merge of the symbols at pos and next[pos], valid while both still hold
 * the ids it was made from (symbols only ever grow, so an id never comes back). */
struct pair {
    int32_t rank;
    int32_t pos;
    int32_t left, right;
};

struct scratch {
    int32_t *id, *prev, *next; /* [cap] symbol list of the current piece; id -1 = merged away */
    size_t cap;
    struct pair *heap; /* [3 * cap] min-heap on (rank, pos) */
    size_t heap_n;
    pcre2_match_data *md;
};

static void scratch_free(struct scratch *sc)
{
    free(sc->id);
    free(sc->prev);
    free(sc->next);
    free(sc->heap);
    if (sc->md)
        pcre2_match_data_free(sc->md);
}

static bool pair_less(const struct pair *a, const struct pair *b)
{
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static void heap_push(struct scratch *sc, struct pair p)
{
    size_t i = sc->heap_n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!pair_less(&p, &sc->heap[parent]))
            break;
        sc->heap[i] = sc->heap[parent];
        i = parent;
    }
    sc->heap[i] = p;
}

static struct pair heap_pop(struct scratch *sc)
{
    struct pair top = sc->heap[0];
    struct pair last = sc->heap[--sc->heap_n];
    size_t i = 0, n = sc->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && pair_less(&sc->heap[c + 1], &sc->heap[c]))
            c++;
        if (!pair_less(&sc->heap[c], &last))
            break;
        sc->heap[i] = sc->heap[c];
        i = c;
    }
    if (n)
        sc->heap[i] = last;
    return top;
}

static int scratch_reserve(struct scratch *sc, size_t n, struct bn_err *err)
{
    if (n <= sc->cap)
        return 0;
    size_t cap = sc->cap ? sc->cap : 64;
    while (cap < n)
        cap *= 2;
    int32_t *id = realloc(sc->id, cap * sizeof *id);
    if (id)
        sc->id = id;
    int32_t *prev = realloc(sc->prev, cap * sizeof *prev);
    if (prev)
        sc->prev = prev;
    int32_t *next = realloc(sc->next, cap * sizeof *next);
    if (next)
        sc->next = next;
    /* Every merge pushes at most 2 pairs, plus n - 1 initial ones: < 3n. */
    struct pair *heap = realloc(sc->heap, 3 * cap * sizeof *heap);
    if (heap)
        sc->heap = heap;
    if (!id || !prev || !next || !heap)
        return bn_errf(err, "tokenize: out of memory for a piece of %zu bytes", n);
    sc->cap = cap;
    return 0;
}

static void push_pair(const struct bn_vocab *v, struct scratch *sc, int32_t pos)
{
    if (pos < 0)
        return;
    int32_t r = sc->next[pos];
    if (r < 0)
        return;
    const struct bn_merge_slot *m = bn_vocab_find_merge(v, sc->id[pos], sc->id[r]);
    if (m)
        heap_push(sc, (struct pair){ m->rank, pos, sc->id[pos], sc->id[r] });
}

/* BPE-encode one piece p[0..n) (n >= 1) and append its ids. */
static int bpe_piece(const struct bn_vocab *v, struct scratch *sc, const uint8_t *p, size_t n,
                     struct bn_tokens *out, struct bn_err *err)
{
    if (n == 1)
        return bn_tokens_push(out, v->byte_token[p[0]], err);
    if (v->ignore_merges) {
        int32_t whole = bn_vocab_find_bytes(v, p, n);
        if (whole >= 0)
            return bn_tokens_push(out, whole, err);
    }
    if (scratch_reserve(sc, n, err))
        return -1;
    for (size_t i = 0; i < n; i++) {
        sc->id[i] = v->byte_token[p[i]];
        sc->prev[i] = (int32_t)i - 1;
        sc->next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    sc->heap_n = 0;
    for (size_t i = 0; i + 1 < n; i++)
        push_pair(v, sc, (int32_t)i);
    while (sc->heap_n) {
        struct pair pr = heap_pop(sc);
        int32_t r = sc->next[pr.pos];
        if (sc->id[pr.pos] != pr.left || r < 0 || sc->id[r] != pr.right)
            continue; /* stale: one side was merged since this pair was pushed */
        sc->id[pr.pos] = bn_vocab_find_merge(v, pr.left, pr.right)->result;
        sc->id[r] = -1;
        sc->next[pr.pos] = sc->next[r];
        if (sc->next[r] >= 0)
            sc->prev[sc->next[r]] = pr.pos;
        push_pair(v, sc, sc->prev[pr.pos]);
        push_pair(v, sc, pr.pos);
    }
    for (int32_t i = 0; i >= 0; i = sc->next[i])
        if (bn_tokens_push(out, sc->id[i], err))
            return -1;
    return 0;
}

/* Split valid UTF-8 s[0..n) with the regex and BPE each piece.  Text between matches
 * (the Llama-3 regex leaves none, but a piece is a piece) is BPE'd as well. */
static int split_valid(const struct bn_vocab *v, struct scratch *sc, const uint8_t *s, size_t n,
                       struct bn_tokens *out, struct bn_err *err)
{
    size_t off = 0;
    while (off < n) {
        int rc = pcre2_match(v->split_re, s, n, off, PCRE2_NO_UTF_CHECK, sc->md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH)
            return bpe_piece(v, sc, s + off, n - off, out, err);
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return bn_errf(err, "%s: tokenize: the split regex failed at byte %zu: %s", v->label, off,
                           (const char *)msg);
        }
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(sc->md);
        size_t ms = ov[0], me = ov[1];
        if (ms > off && bpe_piece(v, sc, s + off, ms - off, out, err))
            return -1;
        if (me == ms) /* an empty match would not advance: take one character */
            me = ms + bn_utf8_valid_seq(s + ms, n - ms);
        if (bpe_piece(v, sc, s + ms, me - ms, out, err))
            return -1;
        off = me;
    }
    return 0;
}

/* Tokenize text without special tokens: valid runs through the regex, each run of
 * invalid bytes as one piece. */
static int tokenize_plain(const struct bn_vocab *v, struct scratch *sc, const uint8_t *s, size_t n,
                          struct bn_tokens *out, struct bn_err *err)
{
    size_t i = 0;
    while (i < n) {
        size_t valid = bn_utf8_valid_prefix(s + i, n - i);
        if (valid) {
            if (split_valid(v, sc, s + i, valid, out, err))
                return -1;
            i += valid;
            continue;
        }
        size_t j = i + 1;
        while (j < n && bn_utf8_valid_seq(s + j, n - j) == 0)
            j++;
        if (bpe_piece(v, sc, s + i, j - i, out, err))
            return -1;
        i = j;
    }
    return 0;
}

/* The special token starting at s[0..n), longest first; -1 when none. */
static int32_t match_special(const struct bn_vocab *v, const uint8_t *s, size_t n, bool parse_special,
                             size_t *len)
{
    for (uint32_t k = v->special_first[s[0]]; k < v->special_first[s[0] + 1]; k++) {
        int32_t id = v->special[k];
        if (v->types[id] == BN_TOKEN_CONTROL && !parse_special)
            continue;
        size_t tl = v->text_off[id + 1] - v->text_off[id] - 1;
        if (tl <= n && memcmp(v->text + v->text_off[id], s, tl) == 0) {
            *len = tl;
            return id;
        }
    }
    return -1;
}

int bn_tokenize(const struct bn_vocab *v, const char *text, size_t len, bool add_bos, bool parse_special,
                struct bn_tokens *out, struct bn_err *err)
{
    if (len > BN_TOKENIZE_MAX_BYTES)
        return bn_errf(err, "%s: tokenize: the text is %zu bytes (limit BN_TOKENIZE_MAX_BYTES = %u)", v->label,
                       len, BN_TOKENIZE_MAX_BYTES);
    if (!text && len)
        return bn_errf(err, "%s: tokenize: NULL text of %zu bytes", v->label, len);
    size_t n0 = out->n;
    struct scratch sc = { 0 };
    int rc = -1;
    if (add_bos && v->bos >= 0 && bn_tokens_push(out, v->bos, err))
        goto done;
    sc.md = pcre2_match_data_create_from_pattern(v->split_re, NULL);
    if (!sc.md) {
        bn_errf(err, "%s: tokenize: out of memory", v->label);
        goto done;
    }
    /* (NULL, 0) is a valid empty text (e.g. an empty bn_bytes); "" keeps the pointer
     * arithmetic below defined (NULL + 0 is undefined behaviour in C). */
    const uint8_t *s = (const uint8_t *)(text ? text : "");
    size_t seg = 0; /* start of the text not yet tokenized */
    bool any_special = v->special_first[256] > 0;
    for (size_t i = 0; any_special && i < len;) {
        size_t sl;
        int32_t id = v->special_first[s[i] + 1] > v->special_first[s[i]]
                         ? match_special(v, s + i, len - i, parse_special, &sl)
                         : -1;
        if (id < 0) {
            i++;
            continue;
        }
        if (tokenize_plain(v, &sc, s + seg, i - seg, out, err) || bn_tokens_push(out, id, err))
            goto done;
        i += sl;
        seg = i;
    }
    if (tokenize_plain(v, &sc, s + seg, len - seg, out, err))
        goto done;
    rc = 0;
done:
    scratch_free(&sc);
    if (rc)
        out->n = n0;
    return rc;
}
