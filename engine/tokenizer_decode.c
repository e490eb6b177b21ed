/* engine/tokenizer_decode.c — token ids -> bytes, all at once or streamed one token
 * at a time without ever cutting a UTF-8 sequence in two. */
#include <string.h>

#include "tokenizer_internal.h"

/* The bytes id renders as: CONTROL / UNKNOWN / UNUSED tokens only when asked. */
static int token_piece(const struct bn_vocab *v, int32_t id, bool render_special, struct bn_str *piece,
                       struct bn_err *err)
{
    if (id < 0 || id >= v->n_tokens)
        return bn_errf(err, "%s: token id %d is out of range (the vocabulary has %d tokens)", v->label, id,
                       v->n_tokens);
    uint8_t t = v->types[id];
    bool hidden = t == BN_TOKEN_CONTROL || t == BN_TOKEN_UNKNOWN || t == BN_TOKEN_UNUSED;
    if (hidden && !render_special)
        *piece = (struct bn_str){ "", 0 };
    else
        *piece = bn_vocab_token_bytes(v, id);
    return 0;
}

int bn_detokenize(const struct bn_vocab *v, const int32_t *ids, size_t n, bool render_special,
                  struct bn_bytes *out, struct bn_err *err)
{
    for (size_t i = 0; i < n; i++) {
        struct bn_str piece = { 0 };
        if (token_piece(v, ids[i], render_special, &piece, err))
            return bn_errf(err, "detokenize: position %zu: %s", i, err ? err->msg : "");
        if (bn_bytes_append(out, piece.ptr, piece.len, err))
            return -1;
    }
    return 0;
}

void bn_detok_init(struct bn_detok *d, bool render_special)
{
    memset(d, 0, sizeof *d);
    d->render_special = render_special;
}

int bn_detok_push(struct bn_detok *d, const struct bn_vocab *v, int32_t id, struct bn_bytes *out,
                  struct bn_err *err)
{
    struct bn_str piece = { 0 };
    if (token_piece(v, id, d->render_special, &piece, err))
        return -1;
    if (piece.len == 0)
        return 0;
    const uint8_t *p = (const uint8_t *)piece.ptr;
    /* Held bytes + this piece; only the last <= 3 bytes can be an unfinished
     * sequence, so look at held + the first few bytes of the piece and at the end. */
    uint8_t head[8];
    size_t nh = d->n_held, take = piece.len < 4 ? piece.len : 4;
    memcpy(head, d->held, nh);
    memcpy(head + nh, p, take);
    if (piece.len <= 4) {
        /* Everything fits in head: cut the unfinished tail off it. */
        size_t total = nh + take, keep = bn_utf8_incomplete_tail(head, total);
        if (bn_bytes_append(out, head, total - keep, err))
            return -1;
        memcpy(d->held, head + total - keep, keep);
        d->n_held = (uint8_t)keep;
        return 0;
    }
    size_t keep = bn_utf8_incomplete_tail(p, piece.len);
    if (bn_bytes_append(out, d->held, nh, err) || bn_bytes_append(out, p, piece.len - keep, err))
        return -1;
    memcpy(d->held, p + piece.len - keep, keep);
    d->n_held = (uint8_t)keep;
    return 0;
}

int bn_detok_flush(struct bn_detok *d, struct bn_bytes *out, struct bn_err *err)
{
    int rc = bn_bytes_append(out, d->held, d->n_held, err);
    d->n_held = 0;
    return rc;
}
