/* engine/tokenizer_buf.c — the growable arrays the tokenizer, detokenizer, chat
 * renderer and stop matcher append to (struct bn_tokens, struct bn_bytes). */
#include <stdlib.h>
#include <string.h>

#include "bitnet.h"

void bn_tokens_free(struct bn_tokens *t)
{
    free(t->ids);
    *t = (struct bn_tokens){ 0 };
}

int bn_tokens_push(struct bn_tokens *t, int32_t id, struct bn_err *err)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        int32_t *ids = realloc(t->ids, cap * sizeof *ids);
        if (!ids)
            return bn_errf(err, "out of memory for %zu token ids", cap);
        t->ids = ids;
        t->cap = cap;
    }
    t->ids[t->n++] = id;
    return 0;
}

void bn_bytes_free(struct bn_bytes *b)
{
    free(b->data);
    *b = (struct bn_bytes){ 0 };
}

int bn_bytes_append(struct bn_bytes *b, const void *p, size_t n, struct bn_err *err)
{
    if (n > SIZE_MAX / 2 - b->len)
        return bn_errf(err, "a text of %zu + %zu bytes is too long", b->len, n);
    if (b->len + n + 1 > b->cap) { /* + 1: the NUL kept after the bytes */
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *data = realloc(b->data, cap);
        if (!data)
            return bn_errf(err, "out of memory for a text of %zu bytes", cap);
        b->data = data;
        b->cap = cap;
    }
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return 0;
}
