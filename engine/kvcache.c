/* engine/kvcache.c — per-sequence KV caches in lazily allocated chunks, and the
 * sequence operations (open, clear, truncate, free).
 *
 * A sequence's cache is a table of chunks of c->kv_chunk positions; a chunk holds K
 * and V of every layer for its positions (layout in model_internal.h).  Chunks are
 * allocated when a batch first reaches them and freed when the sequence is cleared
 * or truncated below them, so memory follows the tokens actually held. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"

#define KV_ALIGN 64 /* bytes */

void *bn_kv_at(const struct bn_ctx *c, int32_t s, int64_t l, int kv, int64_t g, int64_t pos)
{
    const struct bn_model_info *in = &c->model->info;
    uint8_t *chunk = c->seqs[s].chunks[pos / c->kv_chunk];
    int64_t j = pos % c->kv_chunk;
    int64_t idx = (((l * 2 + kv) * in->n_head_kv + g) * c->kv_chunk + j) * in->head_dim;
    return chunk + (size_t)idx * c->kv_elem;
}

void bn_kv_store(const struct bn_ctx *c, void *dst, const float *src, int64_t n)
{
    if (c->kv_type == BN_TYPE_F32)
        memcpy(dst, src, (size_t)n * sizeof(float));
    else
        bn_f32_to_f16_row(src, dst, n);
}

void bn_kv_load(const struct bn_ctx *c, float *dst, const void *src, int64_t n)
{
    if (c->kv_type == BN_TYPE_F32)
        memcpy(dst, src, (size_t)n * sizeof(float));
    else
        bn_f16_to_f32_row(src, dst, n);
}

int bn_kv_reserve(struct bn_ctx *c, int32_t s, int64_t n_pos, struct bn_err *err)
{
    struct bn_kv_seq *q = &c->seqs[s];
    for (int64_t k = 0; k * c->kv_chunk < n_pos; k++) {
        if (q->chunks[k])
            continue;
        void *p = NULL;
        if (posix_memalign(&p, KV_ALIGN, (size_t)c->chunk_bytes) != 0)
            return bn_errf(err, "out of memory for the KV cache of sequence %" PRId32 " (%" PRIu64
                           " more bytes for positions %" PRId64 "..%" PRId64 ")", s,
                           c->chunk_bytes, k * c->kv_chunk, (k + 1) * c->kv_chunk - 1);
        q->chunks[k] = p;
        c->kv_allocated += c->chunk_bytes;
    }
    return 0;
}

/* Free the chunks that hold no position below n. */
static void kv_release_from(struct bn_ctx *c, int32_t s, int64_t n)
{
    struct bn_kv_seq *q = &c->seqs[s];
    for (int64_t k = (n + c->kv_chunk - 1) / c->kv_chunk; k < c->n_chunks; k++) {
        if (q->chunks[k]) {
            free(q->chunks[k]);
            q->chunks[k] = NULL;
            c->kv_allocated -= c->chunk_bytes;
        }
    }
}

void bn_kv_free_all(struct bn_ctx *c)
{
    for (int32_t s = 0; s < c->n_seq_max; s++) {
        if (!c->seqs[s].chunks)
            continue;
        kv_release_from(c, s, 0);
        free(c->seqs[s].chunks);
        c->seqs[s].chunks = NULL;
    }
}

static int check_open(const struct bn_ctx *c, int32_t seq, struct bn_err *err)
{
    if (seq < 0 || seq >= c->n_seq_max)
        return bn_errf(err, "sequence %" PRId32 " does not exist (this context has %" PRId32
                       " sequences, n_seq_max)", seq, c->n_seq_max);
    if (!c->seqs[seq].open)
        return bn_errf(err, "sequence %" PRId32 " is not open (bn_seq_new)", seq);
    return 0;
}

int bn_seq_new(struct bn_ctx *c, int32_t *seq, struct bn_err *err)
{
    for (int32_t s = 0; s < c->n_seq_max; s++) {
        if (!c->seqs[s].open) {
            c->seqs[s].open = true;
            c->seqs[s].n = 0;
            *seq = s;
            return 0;
        }
    }
    return bn_errf(err, "all %" PRId32 " sequences of the context are open (n_seq_max)",
                   c->n_seq_max);
}

void bn_seq_free(struct bn_ctx *c, int32_t seq)
{
    if (seq < 0 || seq >= c->n_seq_max || !c->seqs[seq].open)
        return;
    kv_release_from(c, seq, 0);
    c->seqs[seq].open = false;
    c->seqs[seq].n = 0;
}

int bn_seq_clear(struct bn_ctx *c, int32_t seq, struct bn_err *err)
{
    if (check_open(c, seq, err))
        return -1;
    kv_release_from(c, seq, 0);
    c->seqs[seq].n = 0;
    return 0;
}

int bn_seq_truncate(struct bn_ctx *c, int32_t seq, int64_t n_tokens, struct bn_err *err)
{
    if (check_open(c, seq, err))
        return -1;
    if (n_tokens < 0 || n_tokens > c->seqs[seq].n)
        return bn_errf(err, "cannot truncate sequence %" PRId32 " to %" PRId64
                       " tokens: it holds %" PRId64, seq, n_tokens, c->seqs[seq].n);
    kv_release_from(c, seq, n_tokens);
    c->seqs[seq].n = n_tokens;
    return 0;
}

int64_t bn_seq_len(const struct bn_ctx *c, int32_t seq)
{
    if (seq < 0 || seq >= c->n_seq_max || !c->seqs[seq].open)
        return -1;
    return c->seqs[seq].n;
}

uint64_t bn_ctx_kv_bytes(const struct bn_ctx *c) { return c->kv_allocated; }
