/* daemon/scheduler.c — the engine thread: continuous batching of every client's
 * sequences.
 *
 * Each step builds, per model, one batch: one decode entry for every sequence that is
 * generating, plus prompt tokens of sequences still prefilling, at most prefill_chunk
 * of them per step (taken round-robin), so a long prompt is spread over several steps
 * and never stalls the others.  One bn_decode then streams each weight matrix once for
 * all of them.  After the step every sequence that got logits samples its next token,
 * which goes back to the loop as an EV_TOKEN event.  Requests wait in a FIFO queue for
 * one of `parallel` slots; cancel flags are looked at before every step, so a cancelled
 * or disconnected request stops within one step and frees its slot and KV memory.
 *
 * Chat sessions keep their sequence (and its KV cache) between requests: the next
 * turn's prompt is compared with the tokens the cache holds and only the part after
 * the common prefix is evaluated.  At most `sessions` per model; the least recently
 * used idle one is evicted for a new one.  A session belongs to the uid that made it:
 * the same id from another user is another session, since `cached_tokens` would
 * otherwise tell a stranger how much of a conversation it guessed right.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"

#define TPS_WINDOW_SECONDS 1.0 /* decode tokens/s gauge: averaged over this window */

struct session {
    struct session *next;
    char id[BN_RPC_NAME_MAX + 1];
    uid_t uid;             /* owner: the peer uid of the request that made it */
    int32_t seq;           /* slot in the model's context */
    struct bn_tokens hist; /* tokens whose K/V the slot holds, in position order */
    uint64_t stamp;        /* LRU: larger is more recent */
    bool busy;             /* a request is using it */
};

/* An admitted request (engine thread only). */
struct seq {
    struct req *r;
    struct dmodel *m;
    int32_t id;             /* sequence slot */
    struct session *sess;   /* NULL: a slot of its own, freed at the end */
    int64_t n_prompt;       /* prompt tokens */
    int64_t n_done;         /* prompt tokens in the cache (cached + evaluated) */
    int64_t n_past;         /* positions in the cache */
    int32_t next;           /* decoding: the sampled token to feed next */
    bool decoding;
    bool finished;
    int64_t chunk;          /* prompt tokens in the current batch */
    int64_t logit_at;       /* batch entry whose logits it samples from, or -1 */
    bool in_batch;
    struct bn_sampler *smp;
    struct bn_stopper *stop;
};

struct scheduler {
    struct daemon *d;
    pthread_t th;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* under mu */
    bool stop;
    bool kicked;
    struct req *q_head, *q_tail;
    size_t n_queued;
    /* engine thread (copied at start: the engine thread never reads d->cfg, which a
     * SIGHUP replaces on the loop) */
    int parallel;
    int64_t prefill_chunk;
    int sessions;           /* per model */
    struct seq **act;
    size_t n_act;
    struct bn_batch batch;
    size_t rr;              /* round-robin start among prefilling sequences */
    struct bn_bytes out;    /* scratch: text of one token */
    double tps_start;
    uint64_t tps_tokens;
};

int32_t sched_ctx_slots(const struct daemon *d)
{
    return (int32_t)(d->cfg.parallel + d->cfg.sessions);
}

int64_t sched_ctx_batch(const struct daemon *d)
{
    return (int64_t)d->cfg.parallel + d->cfg.prefill_chunk;
}

static uint64_t random_seed(void)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != (ssize_t)sizeof(v)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        v = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 32);
    }
    return v;
}

int sched_sampler_from_rpc(const struct bn_rpc_sampler *o, struct bn_sampler_params *p,
                           struct bn_rpc_error *err)
{
    bn_sampler_params_default(p);
    p->temperature = (float)o->temperature;
    p->top_k = o->top_k;
    p->top_p = (float)o->top_p;
    p->min_p = (float)o->min_p;
    p->repeat_penalty = (float)o->repeat_penalty;
    p->presence_penalty = (float)o->presence_penalty;
    p->frequency_penalty = (float)o->frequency_penalty;
    p->penalty_last_n = o->repeat_last_n < 0 || o->repeat_last_n > BN_SAMPLER_MAX_PENALTY_WINDOW
                            ? BN_SAMPLER_MAX_PENALTY_WINDOW
                            : o->repeat_last_n;
    p->seed = o->seed < 0 ? random_seed() : (uint64_t)o->seed;
    struct bn_err e = {{0}};
    if (bn_sampler_params_check(p, &e) < 0)
        return bn_rpc_errf(err, BN_RPC_E_INVALID_PARAMS, "options: %s", e.msg);
    return 0;
}

/* ---- KV accounting ---- */

static void kv_update(struct daemon *d, struct dmodel *m)
{
    int64_t now = (int64_t)bn_ctx_kv_bytes(m->ctx);
    atomic_fetch_add(&d->metrics.kv_bytes, now - m->kv_reported);
    m->kv_reported = now;
}

/* ---- sessions (engine thread, or the loop once the model has no request) ---- */

static struct session *session_find(struct dmodel *m, const char *id, uid_t uid)
{
    for (struct session *s = m->sessions; s; s = s->next)
        if (s->uid == uid && strcmp(s->id, id) == 0)
            return s;
    return NULL;
}

static void session_remove(struct daemon *d, struct dmodel *m, struct session *s)
{
    for (struct session **pp = &m->sessions; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    bn_seq_free(m->ctx, s->seq);
    bn_tokens_free(&s->hist);
    free(s);
    m->n_sessions--;
    atomic_fetch_sub(&d->metrics.sessions, 1);
}

/* A session for id: existing, or new (evicting the least recently used idle one when
 * the model has `sessions` already).  NULL with err set. */
static struct session *session_get(struct scheduler *s, struct dmodel *m, const char *id, struct req *r)
{
    struct session *x = session_find(m, id, r->uid);
    if (x) {
        if (x->busy) {
            req_fail(r, BN_RPC_E_BUSY, "session '%s' is in use by another request", id);
            return NULL;
        }
        return x;
    }
    if (m->n_sessions >= (size_t)s->sessions) {
        struct session *lru = NULL;
        for (struct session *k = m->sessions; k; k = k->next)
            if (!k->busy && (!lru || k->stamp < lru->stamp))
                lru = k;
        if (!lru) {
            req_fail(r, BN_RPC_E_BUSY, "all %d chat sessions of model '%s' are in use", s->sessions, m->name);
            return NULL;
        }
        bn_log(BN_LOG_DEBUG, "model %s: session '%s' evicted (least recently used)", m->name, lru->id);
        session_remove(s->d, m, lru);
    }
    x = calloc(1, sizeof(*x));
    struct bn_err err = {{0}};
    if (!x || bn_seq_new(m->ctx, &x->seq, &err) < 0) {
        free(x);
        req_fail(r, BN_RPC_E_INTERNAL, "no sequence slot for session '%s': %s", id, x ? err.msg : "out of memory");
        return NULL;
    }
    snprintf(x->id, sizeof(x->id), "%s", id);
    x->uid = r->uid;
    x->next = m->sessions;
    m->sessions = x;
    m->n_sessions++;
    atomic_fetch_add(&s->d->metrics.sessions, 1);
    return x;
}

void sched_drop_sessions(struct scheduler *s, struct dmodel *m)
{
    while (m->sessions)
        session_remove(s->d, m, m->sessions);
    /* The context is freed right after: take its KV bytes out of the gauge. */
    atomic_fetch_sub(&s->d->metrics.kv_bytes, m->kv_reported);
    m->kv_reported = 0;
}

/* ---- finishing ---- */

static void post_done(struct scheduler *s, struct req *r)
{
    struct event *ev = event_new(EV_DONE, r, NULL, 0);
    if (!ev) {
        bn_log(BN_LOG_ERROR, "out of memory posting a finished request");
        abort(); /* the request could never be answered nor freed */
    }
    daemon_post(s->d, ev);
}

static void post_token(struct scheduler *s, struct req *r, int32_t tok, const char *text, size_t len)
{
    struct event *ev = event_new(EV_TOKEN, r, text, len);
    if (!ev)
        return; /* the whole text still arrives in the final answer */
    ev->token = tok;
    daemon_post(s->d, ev);
}

/* A queued request that never got a slot. */
static void finish_unadmitted(struct scheduler *s, struct req *r)
{
    if (!r->err_code && atomic_load(&r->cancel) == BN_RPC_E_CANCELLED)
        req_fail(r, BN_RPC_E_CANCELLED, "cancelled while waiting in the queue");
    r->stats.prompt_tokens = (int64_t)r->tokens.n;
    r->stats.queue_seconds = daemon_now() - r->t_submit;
    post_done(s, r);
}

static void seq_finish(struct scheduler *s, struct seq *q, enum bn_rpc_stop_reason why)
{
    struct req *r = q->r;
    struct dmodel *m = q->m;
    /* Text the stopper still holds back (a possible stop-string prefix) is dropped on
     * cancel: the result's text stays exactly what was streamed. */
    double now = daemon_now();
    struct bn_rpc_gen_stats *st = &r->stats;
    st->stop_reason = why;
    if (r->t_first > 0) {
        st->prefill_seconds = r->t_first - r->t_admit;
        st->decode_seconds = now - r->t_first;
    } else {
        st->prefill_seconds = now - r->t_admit;
    }
    int64_t evaluated = q->n_done - st->cached_tokens;
    st->prefill_tokens_per_s = st->prefill_seconds > 0 ? (double)evaluated / st->prefill_seconds : 0;
    st->decode_tokens_per_s = st->decode_seconds > 0 ? (double)st->generated_tokens / st->decode_seconds : 0;
    if (q->sess) {
        q->sess->busy = false;
        q->sess->stamp = ++m->session_clock;
    } else {
        bn_seq_free(m->ctx, q->id);
    }
    kv_update(s->d, m);
    bn_sampler_free(q->smp);
    bn_stopper_free(q->stop);
    q->smp = NULL;
    q->stop = NULL;
    q->finished = true;
    atomic_fetch_sub(&s->d->metrics.active_sequences, 1);
    /* EV_DONE is posted by compact(), after the step: once the loop has it, the model
     * may be freed, and this step may still touch the model's context. */
}

static void seq_fail(struct scheduler *s, struct seq *q, int code, const char *msg)
{
    req_fail(q->r, code, "%s", msg);
    seq_finish(s, q, BN_RPC_STOP_CANCELLED);
}

/* ---- admission ---- */

static int64_t common_prefix(const struct bn_tokens *a, const struct bn_tokens *b)
{
    size_t n = a->n < b->n ? a->n : b->n, i = 0;
    while (i < n && a->ids[i] == b->ids[i])
        i++;
    return (int64_t)i;
}

static void admit(struct scheduler *s, struct req *r)
{
    struct dmodel *m = r->model;
    struct bn_err err = {{0}};
    r->t_admit = daemon_now();
    r->stats.queue_seconds = r->t_admit - r->t_submit;
    r->stats.prompt_tokens = (int64_t)r->tokens.n;
    if (atomic_load(&r->cancel)) {
        finish_unadmitted(s, r);
        return;
    }
    struct seq *q = calloc(1, sizeof(*q));
    if (!q) {
        req_fail(r, BN_RPC_E_INTERNAL, "out of memory");
        finish_unadmitted(s, r);
        return;
    }
    q->r = r;
    q->m = m;
    q->n_prompt = (int64_t)r->tokens.n;
    q->logit_at = -1;
    if (r->session) {
        q->sess = session_get(s, m, r->session, r);
        if (!q->sess) {
            free(q);
            finish_unadmitted(s, r);
            return;
        }
        /* Reuse the cached prefix; at least the last prompt token is evaluated again
         * so that there are logits to sample from. */
        int64_t p = common_prefix(&q->sess->hist, &r->tokens);
        if (p >= q->n_prompt)
            p = q->n_prompt - 1;
        if (bn_seq_truncate(m->ctx, q->sess->seq, p, &err) < 0) {
            req_fail(r, BN_RPC_E_INTERNAL, "session '%s': %s", r->session, err.msg);
            free(q);
            finish_unadmitted(s, r);
            return;
        }
        q->sess->hist.n = (size_t)p;
        q->sess->busy = true;
        q->id = q->sess->seq;
        q->n_done = q->n_past = p;
        r->stats.cached_tokens = p;
        atomic_fetch_add(&s->d->metrics.tokens_cached, (uint64_t)p);
    } else if (bn_seq_new(m->ctx, &q->id, &err) < 0) {
        req_fail(r, BN_RPC_E_INTERNAL, "no free sequence slot: %s", err.msg);
        free(q);
        finish_unadmitted(s, r);
        return;
    }
    q->smp = bn_sampler_new(&r->sampler, m->info->n_vocab, &err);
    if (q->smp)
        q->stop = bn_stopper_new(m->vocab, (const char *const *)r->stop, r->n_stop, r->max_tokens, false, &err);
    if (!q->smp || !q->stop) {
        s->act[s->n_act++] = q;
        atomic_fetch_add(&s->d->metrics.active_sequences, 1);
        seq_fail(s, q, BN_RPC_E_INVALID_PARAMS, err.msg);
        return;
    }
    /* Penalties look at the prompt too. */
    int64_t from = q->n_prompt - r->sampler.penalty_last_n;
    for (int64_t i = from > 0 ? from : 0; i < q->n_prompt; i++)
        bn_sampler_accept(q->smp, r->tokens.ids[i]);
    s->act[s->n_act++] = q;
    atomic_fetch_add(&s->d->metrics.active_sequences, 1);
}

/* ---- one step ---- */

static enum bn_rpc_stop_reason stop_reason_of(int why)
{
    switch (why) {
    case BN_STOP_EOG: return BN_RPC_STOP_EOS;
    case BN_STOP_STRING: return BN_RPC_STOP_STOP;
    default: return BN_RPC_STOP_LENGTH;
    }
}

static void sample(struct scheduler *s, struct seq *q, const float *logits)
{
    struct req *r = q->r;
    struct bn_err err = {{0}};
    int32_t tok = bn_sampler_sample(q->smp, logits, &err);
    if (tok < 0) {
        seq_fail(s, q, BN_RPC_E_INTERNAL, err.msg);
        return;
    }
    if (r->t_first <= 0)
        r->t_first = daemon_now();
    bn_sampler_accept(q->smp, tok);
    r->stats.generated_tokens++;
    atomic_fetch_add(&s->d->metrics.tokens_generated, 1);
    s->tps_tokens++;
    s->out.len = 0;
    int why = bn_stopper_push(q->stop, tok, &s->out, &err);
    if (why < 0) {
        seq_fail(s, q, BN_RPC_E_INTERNAL, err.msg);
        return;
    }
    bool full = why == BN_STOP_NONE && q->n_past >= bn_ctx_n_ctx(q->m->ctx);
    if (full)
        bn_stopper_finish(q->stop, &s->out, NULL);
    if (bn_bytes_append(&r->text, s->out.data ? s->out.data : "", s->out.len, &err) < 0) {
        seq_fail(s, q, BN_RPC_E_INTERNAL, err.msg);
        return;
    }
    if (r->stream && (s->out.len > 0 || why == BN_STOP_NONE))
        post_token(s, r, tok, s->out.data ? s->out.data : "", s->out.len);
    if (why != BN_STOP_NONE)
        seq_finish(s, q, stop_reason_of(why));
    else if (full)
        seq_finish(s, q, BN_RPC_STOP_CONTEXT);
    else {
        q->next = tok;
        q->decoding = true;
    }
}

static void step_model(struct scheduler *s, struct dmodel *m)
{
    struct bn_batch *b = &s->batch;
    struct bn_err err = {{0}};
    bn_batch_clear(b);
    for (size_t i = 0; i < s->n_act; i++) {
        struct seq *q = s->act[i];
        q->in_batch = false;
        q->chunk = 0;
        q->logit_at = -1;
        if (q->m != m || q->finished || !q->decoding || atomic_load(&q->r->paused))
            continue;
        q->logit_at = b->n;
        bn_batch_add(b, q->next, q->id, q->n_past, true, NULL);
        q->in_batch = true;
    }
    int64_t budget = s->prefill_chunk;
    if (budget > b->cap - b->n)
        budget = b->cap - b->n;
    for (size_t k = 0; k < s->n_act && budget > 0; k++) {
        struct seq *q = s->act[(s->rr + k) % s->n_act];
        if (q->m != m || q->finished || q->decoding || atomic_load(&q->r->paused))
            continue;
        int64_t n = q->n_prompt - q->n_done;
        if (n > budget)
            n = budget;
        for (int64_t j = 0; j < n; j++) {
            int64_t t = q->n_done + j;
            bool last = t == q->n_prompt - 1;
            if (last)
                q->logit_at = b->n;
            bn_batch_add(b, q->r->tokens.ids[t], q->id, q->n_past + j, last, NULL);
        }
        q->chunk = n;
        q->in_batch = n > 0;
        budget -= n;
    }
    if (b->n == 0)
        return;
    double t0 = daemon_now();
    int rc = bn_decode(m->ctx, b, &err);
    double dt = daemon_now() - t0;
    atomic_fetch_add(&s->d->metrics.steps, 1);
    atomic_fetch_add(&s->d->metrics.step_ns_total, (uint64_t)(dt * 1e9));
    for (size_t i = 0; i < s->n_act; i++) {
        struct seq *q = s->act[i];
        if (!q->in_batch || q->finished)
            continue;
        q->in_batch = false;
        if (rc < 0) {
            char msg[BN_ERR_MSG_MAX + 16];
            snprintf(msg, sizeof(msg), "engine: %s", err.msg);
            seq_fail(s, q, BN_RPC_E_INTERNAL, msg);
            continue;
        }
        if (q->chunk) {
            if (q->sess)
                for (int64_t j = 0; j < q->chunk; j++)
                    bn_tokens_push(&q->sess->hist, q->r->tokens.ids[q->n_done + j], NULL);
            q->n_done += q->chunk;
            q->n_past += q->chunk;
            atomic_fetch_add(&s->d->metrics.tokens_prompt, (uint64_t)q->chunk);
        } else {
            if (q->sess)
                bn_tokens_push(&q->sess->hist, q->next, NULL);
            q->n_past++;
        }
        if (q->logit_at >= 0) {
            const float *logits = bn_ctx_logits(m->ctx, q->logit_at);
            if (!logits)
                seq_fail(s, q, BN_RPC_E_INTERNAL, "engine: no logits for a sequence that asked for them");
            else
                sample(s, q, logits);
        }
    }
    kv_update(s->d, m);
}

static void step(struct scheduler *s)
{
    struct dmodel *done[DAEMON_PARALLEL_MAX];
    size_t n_done = 0;
    for (size_t i = 0; i < s->n_act; i++) {
        struct dmodel *m = s->act[i]->m;
        if (s->act[i]->finished || atomic_load(&s->act[i]->r->paused))
            continue;
        bool seen = false;
        for (size_t k = 0; k < n_done && !seen; k++)
            seen = done[k] == m;
        if (seen)
            continue;
        done[n_done++] = m;
        step_model(s, m);
    }
    s->rr++;
}

/* Drop finished sequences from the active list and hand their requests back to the
 * loop.  Called between steps only, when nothing touches a model any more. */
static void compact(struct scheduler *s)
{
    size_t k = 0;
    for (size_t i = 0; i < s->n_act; i++) {
        if (s->act[i]->finished) {
            post_done(s, s->act[i]->r);
            free(s->act[i]);
        } else {
            s->act[k++] = s->act[i];
        }
    }
    s->n_act = k;
}

static bool runnable(const struct scheduler *s)
{
    for (size_t i = 0; i < s->n_act; i++)
        if (!atomic_load(&s->act[i]->r->paused))
            return true;
    return false;
}

static void tps_update(struct scheduler *s, bool idle)
{
    double now = daemon_now();
    if (idle) {
        metrics_set_decode_tps(&s->d->metrics, 0);
        s->tps_start = now;
        s->tps_tokens = 0;
        return;
    }
    if (now - s->tps_start >= TPS_WINDOW_SECONDS) {
        metrics_set_decode_tps(&s->d->metrics, (double)s->tps_tokens / (now - s->tps_start));
        s->tps_start = now;
        s->tps_tokens = 0;
    }
}

static void *engine_main(void *arg)
{
    struct scheduler *s = arg;
    struct req *adm[DAEMON_PARALLEL_MAX];
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->stop && !s->kicked && !(s->n_queued && s->n_act < (size_t)s->parallel) && !runnable(s)) {
            if (s->n_act == 0)
                tps_update(s, true);
            pthread_cond_wait(&s->cv, &s->mu);
        }
        bool kicked = s->kicked;
        s->kicked = false;
        if (s->stop && s->n_act == 0 && s->n_queued == 0)
            break;
        /* Admit into free slots, FIFO; drop cancelled requests still waiting. */
        size_t n_adm = 0;
        struct req *dead = NULL;
        if (kicked) {
            for (struct req **pp = &s->q_head; *pp;) {
                struct req *r = *pp;
                if (atomic_load(&r->cancel)) {
                    *pp = r->link;
                    if (s->q_tail == r)
                        s->q_tail = NULL;
                    r->link = dead;
                    dead = r;
                    s->n_queued--;
                } else {
                    pp = &r->link;
                }
            }
            if (!s->q_head)
                s->q_tail = NULL;
            else if (!s->q_tail)
                for (struct req *r = s->q_head; r; r = r->link)
                    s->q_tail = r;
        }
        while (s->q_head && s->n_act + n_adm < (size_t)s->parallel) {
            struct req *r = s->q_head;
            s->q_head = r->link;
            if (!s->q_head)
                s->q_tail = NULL;
            r->link = NULL;
            adm[n_adm++] = r;
            s->n_queued--;
        }
        atomic_store(&s->d->metrics.queued, (int64_t)s->n_queued);
        pthread_mutex_unlock(&s->mu);

        for (struct req *r = dead, *next; r; r = next) {
            next = r->link;
            finish_unadmitted(s, r);
        }
        for (size_t i = 0; i < n_adm; i++)
            admit(s, adm[i]);
        for (size_t i = 0; i < s->n_act; i++) {
            struct seq *q = s->act[i];
            int cancel = q->finished ? 0 : atomic_load(&q->r->cancel);
            if (!cancel)
                continue;
            /* The step count lets a test check that a cancel or a disconnect ends the
             * sequence within one step of it (conn_close logs the count too). */
            bn_log(BN_LOG_DEBUG,
                   "connection %llu request %u: sequence %d ended (%s) after %lld generated tokens, "
                   "at engine step %llu",
                   (unsigned long long)q->r->conn_id, q->r->msgid, (int)q->id,
                   cancel == BN_RPC_E_SHUTTING_DOWN ? "shutting down" : "cancelled",
                   (long long)q->r->stats.generated_tokens,
                   (unsigned long long)atomic_load(&s->d->metrics.steps));
            seq_finish(s, q, BN_RPC_STOP_CANCELLED);
        }
        compact(s);
        step(s);
        compact(s);
        tps_update(s, s->n_act == 0);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- loop-side API ---- */

int sched_start(struct scheduler **out, struct daemon *d, int parallel, int prefill_chunk, struct bn_err *err)
{
    struct scheduler *s = calloc(1, sizeof(*s));
    if (!s)
        return bn_errf(err, "out of memory starting the scheduler");
    s->d = d;
    s->parallel = parallel;
    s->prefill_chunk = prefill_chunk;
    s->sessions = d->cfg.sessions;
    s->act = calloc((size_t)parallel, sizeof(*s->act));
    if (!s->act || bn_batch_init(&s->batch, (int64_t)parallel + prefill_chunk, err) < 0) {
        free(s->act);
        free(s);
        return err && err->msg[0] ? -1 : bn_errf(err, "out of memory starting the scheduler");
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->tps_start = daemon_now();
    /* The engine thread takes no signals: the loop handles them. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(&s->th, NULL, engine_main, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        bn_batch_free(&s->batch);
        free(s->act);
        free(s);
        return bn_errf(err, "cannot start the engine thread: %s", strerror(rc));
    }
    s->started = true;
    *out = s;
    return 0;
}

void sched_submit(struct scheduler *s, struct req *r)
{
    r->t_submit = daemon_now();
    r->in_scheduler = true;
    r->link = NULL;
    pthread_mutex_lock(&s->mu);
    if (s->q_tail)
        s->q_tail->link = r;
    else
        s->q_head = r;
    s->q_tail = r;
    s->n_queued++;
    atomic_store(&s->d->metrics.queued, (int64_t)s->n_queued);
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void sched_wake(struct scheduler *s)
{
    pthread_mutex_lock(&s->mu);
    s->kicked = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void sched_stop(struct scheduler *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (s->started)
        pthread_join(s->th, NULL);
    for (size_t i = 0; i < s->n_act; i++)
        free(s->act[i]);
    free(s->act);
    bn_batch_free(&s->batch);
    bn_bytes_free(&s->out);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}
