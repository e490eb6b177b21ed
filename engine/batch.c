/* engine/batch.c — batches, and bn_decode: check a whole batch, reserve its KV
 * memory, then run the forward pass (fast or reference). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"

int bn_batch_init(struct bn_batch *b, int64_t cap, struct bn_err *err)
{
    memset(b, 0, sizeof *b);
    if (cap <= 0 || cap > BN_CTX_MAX_BATCH)
        return bn_errf(err, "batch capacity %" PRId64 " is not in 1..%d", cap, BN_CTX_MAX_BATCH);
    b->token = malloc((size_t)cap * sizeof *b->token);
    b->seq = malloc((size_t)cap * sizeof *b->seq);
    b->pos = malloc((size_t)cap * sizeof *b->pos);
    b->logits = malloc((size_t)cap * sizeof *b->logits);
    if (!b->token || !b->seq || !b->pos || !b->logits) {
        bn_batch_free(b);
        return bn_errf(err, "out of memory for a batch of %" PRId64 " entries", cap);
    }
    b->cap = cap;
    return 0;
}

void bn_batch_free(struct bn_batch *b)
{
    if (!b)
        return;
    free(b->token);
    free(b->seq);
    free(b->pos);
    free(b->logits);
    memset(b, 0, sizeof *b);
}

void bn_batch_clear(struct bn_batch *b) { b->n = 0; }

int bn_batch_add(struct bn_batch *b, int32_t token, int32_t seq, int64_t pos, bool want_logits,
                 struct bn_err *err)
{
    if (b->n >= b->cap)
        return bn_errf(err, "the batch is full (%" PRId64 " entries)", b->cap);
    b->token[b->n] = token;
    b->seq[b->n] = seq;
    b->pos[b->n] = pos;
    b->logits[b->n] = want_logits;
    b->n++;
    return 0;
}

/* Check every entry; fill c->seq_next (length after the batch) and c->out_row. */
static int check_batch(struct bn_ctx *c, const struct bn_batch *b, int64_t *n_out, struct bn_err *err)
{
    const struct bn_model_info *in = &c->model->info;
    if (b->n <= 0)
        return bn_errf(err, "the batch is empty");
    if (b->n > c->n_batch)
        return bn_errf(err, "the batch has %" PRId64 " entries; this context takes at most %" PRId64
                       " per call (n_batch)", b->n, c->n_batch);
    for (int32_t s = 0; s < c->n_seq_max; s++)
        c->seq_next[s] = c->seqs[s].n;
    *n_out = 0;
    for (int64_t i = 0; i < b->n; i++) {
        int32_t s = b->seq[i];
        if (b->token[i] < 0 || b->token[i] >= in->n_vocab)
            return bn_errf(err, "batch entry %" PRId64 ": token id %" PRId32
                           " is out of range (the vocabulary has %" PRId32 " tokens)",
                           i, b->token[i], in->n_vocab);
        if (s < 0 || s >= c->n_seq_max)
            return bn_errf(err, "batch entry %" PRId64 ": sequence %" PRId32 " does not exist "
                           "(this context has %" PRId32 ", n_seq_max)", i, s, c->n_seq_max);
        if (!c->seqs[s].open)
            return bn_errf(err, "batch entry %" PRId64 ": sequence %" PRId32 " is not open", i, s);
        if (b->pos[i] != c->seq_next[s])
            return bn_errf(err, "batch entry %" PRId64 ": position %" PRId64 " for sequence %" PRId32
                           ", expected %" PRId64 " (a sequence's entries continue its cache in "
                           "order)", i, b->pos[i], s, c->seq_next[s]);
        if (b->pos[i] >= c->n_ctx)
            return bn_errf(err, "batch entry %" PRId64 ": sequence %" PRId32 " would reach position %"
                           PRId64 ", beyond the context of %" PRId64 " positions (n_ctx): the "
                           "prompt and the tokens already cached must fit in n_ctx",
                           i, s, b->pos[i], c->n_ctx);
        c->seq_next[s]++;
        c->out_row[i] = b->logits[i] ? (*n_out)++ : -1;
    }
    return 0;
}

int bn_decode(struct bn_ctx *c, const struct bn_batch *b, struct bn_err *err)
{
    int64_t n_out = 0;
    c->last_n = 0; /* logits of the previous call are gone from here on */
    if (check_batch(c, b, &n_out, err))
        return -1;
    for (int32_t s = 0; s < c->n_seq_max; s++)
        if (c->seq_next[s] > c->seqs[s].n && bn_kv_reserve(c, s, c->seq_next[s], err))
            return -1;
    int64_t n_vocab = c->model->info.n_vocab;
    if (n_out > c->logits_cap) {
        free(c->logits);
        c->logits = NULL;
        c->logits_cap = 0;
        void *p = NULL;
        if (posix_memalign(&p, 64, (size_t)n_out * (size_t)n_vocab * sizeof(float)) != 0)
            return bn_errf(err, "out of memory for the logits of %" PRId64 " tokens", n_out);
        c->logits = p;
        c->logits_cap = n_out;
    }
    if (c->model->params.reference)
        bn_forward_ref(c, b);
    else
        bn_forward_fast(c, b);
    for (int32_t s = 0; s < c->n_seq_max; s++)
        c->seqs[s].n = c->seq_next[s];
    c->n_out = n_out;
    c->last_n = b->n;
    return 0;
}

const float *bn_ctx_logits(const struct bn_ctx *c, int64_t i)
{
    if (i < 0 || i >= c->last_n || c->out_row[i] < 0)
        return NULL;
    return c->logits + (size_t)c->out_row[i] * (size_t)c->model->info.n_vocab;
}
