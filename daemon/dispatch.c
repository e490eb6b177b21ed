/* daemon/dispatch.c — one handler per protocol method.  Every message is decoded by
 * libipc's schema tables (types, ranges, required fields); the handlers here add what
 * needs the daemon's state: admin rights, resident models, queue room, token ids
 * against the vocabulary.  Handlers never block: tokenizing, loading and generating
 * run on other threads and answer through dispatch_finish.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"

union rpc_params {
    struct bn_rpc_empty empty;
    struct bn_rpc_hello_params hello;
    struct bn_rpc_load_params load;
    struct bn_rpc_unload_params unload;
    struct bn_rpc_show_params show;
    struct bn_rpc_generate_params generate;
    struct bn_rpc_chat_params chat;
    struct bn_rpc_tokenize_params tokenize;
    struct bn_rpc_detokenize_params detokenize;
    struct bn_rpc_cancel_params cancel;
    struct bn_rpc_shutdown_params shutdown;
};

static const char *const capabilities[] = {
    "stream",       /* token notifications (generate/chat stream: true) */
    "chat-session", /* chat session ids keep their KV cache */
    "cancel",       /* cancel {msgid} */
    "progress",     /* load progress notifications */
    "tokens",       /* generate with a prompt given as token ids */
    "metrics",      /* Prometheus text through the metrics method */
    "metrics-http", /* GET /metrics is served (keep last: dropped when off) */
};

/* Every error answer goes through here so that it is counted. */
static void reply_error(struct conn *c, const uint32_t *msgid, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void reply_error(struct conn *c, const uint32_t *msgid, int code, const char *fmt, ...)
{
    char msg[BN_RPC_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    metrics_count_error(&c->d->metrics, code);
    conn_send_error(c, msgid, code, "%s", msg);
}

static char *dupn(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

void req_free(struct req *r)
{
    if (!r || atomic_fetch_sub(&r->refs, 1) > 1)
        return;
    free(r->prompt);
    free(r->system);
    for (size_t i = 0; i < r->n_msgs; i++) {
        free(r->msgs[i].role);
        free(r->msgs[i].content);
    }
    free(r->msgs);
    free(r->session);
    for (size_t i = 0; i < r->n_stop; i++)
        free(r->stop[i]);
    free(r->stop);
    bn_tokens_free(&r->tokens);
    bn_bytes_free(&r->text);
    bn_bytes_free(&r->out_text);
    free(r);
}

void req_fail(struct req *r, int code, const char *fmt, ...)
{
    r->err_code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err_msg, sizeof(r->err_msg), fmt, ap);
    va_end(ap);
}

void req_done(struct daemon *d, struct req *r)
{
    if (r->conn)
        conn_remove_req(r->conn, r);
    req_free(r);
    daemon_maybe_finish(d);
}

struct req *req_new(struct conn *c, uint32_t msgid, enum bn_rpc_method m)
{
    struct req *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    atomic_init(&r->refs, 1);
    r->d = c->d;
    r->msgid = msgid;
    r->method = m;
    r->conn_id = c->id;
    r->uid = c->peer_uid;
    r->work.data = r;
    conn_add_req(c, r);
    return r;
}

/* The model a generate/chat/tokenize names, ready, with a reference taken. */
static struct dmodel *model_for(struct conn *c, uint32_t msgid, const char *name)
{
    struct dmodel *m = models_find(c->d, name);
    if (!m || m->state != DMODEL_READY) {
        reply_error(c, &msgid, BN_RPC_E_MODEL_NOT_LOADED, "model '%s' is %s: load it first (bitnetctl load %s)",
                    name, m ? "still loading" : "not loaded", name);
        return NULL;
    }
    return m;
}

/* ---- small methods ---- */

static void on_hello(struct conn *c, uint32_t msgid, const struct bn_rpc_hello_params *p)
{
    if (p->client)
        snprintf(c->client_name, sizeof(c->client_name), "%s", p->client);
    struct bn_rpc_hello_result res = {
        .version = p->version < BN_RPC_VERSION ? p->version : BN_RPC_VERSION,
        .server = BITNETD_VERSION_STRING,
        .capabilities = (const char **)capabilities,
        .n_capabilities = sizeof(capabilities) / sizeof(capabilities[0]),
        .max_message_bytes = (int64_t)c->d->cfg.max_message_bytes,
        .pid = (int64_t)getpid(),
    };
    if (!c->d->http)
        res.n_capabilities--; /* "metrics-http" is last */
    bn_log(BN_LOG_DEBUG, "connection %llu: hello from '%s' (protocol %lld)", (unsigned long long)c->id,
           c->client_name, (long long)p->version);
    c->hello_done = true;
    conn_send_result(c, msgid, BN_RPC_HELLO, &res);
}

static void on_status(struct conn *c, uint32_t msgid)
{
    struct daemon *d = c->d;
    uint64_t bytes = 0;
    size_t models = models_count_resident(d, &bytes);
    int64_t active = atomic_load(&d->metrics.active_sequences);
    int64_t queued = (int64_t)d->gen_inflight - active;
    struct bn_rpc_status_result res = {
        .active_sequences = active,
        .queued = queued > 0 ? queued : 0,
        .kv_bytes = atomic_load(&d->metrics.kv_bytes),
        .models = (int64_t)models,
        .resident_bytes = (int64_t)bytes,
        .parallel = d->cfg.parallel,
        .max_queue = d->cfg.max_queue,
        .clients = d->n_conns,
        .uptime_seconds = daemon_now() - d->metrics.start_mono,
    };
    conn_send_result(c, msgid, BN_RPC_STATUS, &res);
}

static void on_metrics(struct conn *c, uint32_t msgid)
{
    char *text = NULL;
    size_t len = 0;
    if (metrics_render_prometheus(&c->d->metrics, &text, &len) < 0) {
        reply_error(c, &msgid, BN_RPC_E_INTERNAL, "out of memory rendering the metrics");
        return;
    }
    struct bn_rpc_metrics_result res = {.text = text};
    conn_send_result(c, msgid, BN_RPC_METRICS, &res);
    free(text);
}

static void on_cancel(struct conn *c, uint32_t msgid, const struct bn_rpc_cancel_params *p)
{
    struct req *r = conn_find_req(c, p->msgid);
    struct bn_rpc_cancel_result res = {.cancelled = false};
    if (r) {
        int zero = 0;
        res.cancelled = atomic_compare_exchange_strong(&r->cancel, &zero, BN_RPC_E_CANCELLED) ||
                        atomic_load(&r->cancel) == BN_RPC_E_CANCELLED;
        if (c->d->sched)
            sched_wake(c->d->sched);
        bn_log(BN_LOG_DEBUG, "connection %llu: cancel of request %u", (unsigned long long)c->id, p->msgid);
    }
    conn_send_result(c, msgid, BN_RPC_CANCEL, &res);
}

static void on_shutdown(struct conn *c, uint32_t msgid, const struct bn_rpc_shutdown_params *p)
{
    struct daemon *d = c->d;
    double grace = p->has_grace_seconds ? p->grace_seconds : d->cfg.shutdown_grace;
    bn_log(BN_LOG_INFO, "shutdown requested by pid %d uid %d", (int)c->peer_pid, (int)c->peer_uid);
    conn_send_result(c, msgid, BN_RPC_SHUTDOWN, NULL);
    daemon_shutdown(d, grace);
}

/* ---- tokenize / detokenize (worker pool) ---- */

bool dispatch_jobs_full(struct conn *c, uint32_t msgid)
{
    if (c->d->jobs_inflight < DAEMON_JOBS_MAX)
        return false;
    reply_error(c, &msgid, BN_RPC_E_BUSY,
                "busy: %d tokenize/detokenize/show requests are being answered (the limit); retry later",
                DAEMON_JOBS_MAX);
    return true;
}

static void tokenize_work(uv_work_t *w)
{
    struct req *r = w->data;
    struct bn_err err = {{0}};
    struct dmodel *m = r->model;
    if (bn_tokenize(m->vocab, r->prompt, r->prompt_len, r->add_special, r->parse_special, &r->tokens, &err) < 0)
        req_fail(r, BN_RPC_E_INVALID_PARAMS, "tokenize: %s", err.msg);
    else if (r->tokens.n > BN_RPC_TOKENS_MAX)
        req_fail(r, BN_RPC_E_INVALID_PARAMS, "tokenize: the text gives %zu tokens; at most %d can be returned",
                 r->tokens.n, BN_RPC_TOKENS_MAX);
}

static void detokenize_work(uv_work_t *w)
{
    struct req *r = w->data;
    struct bn_err err = {{0}};
    struct bn_bytes raw = {0};
    if (bn_detokenize(r->model->vocab, r->tokens.ids, r->tokens.n, false, &raw, &err) < 0)
        req_fail(r, BN_RPC_E_INVALID_PARAMS, "detokenize: %s", err.msg);
    else if (utf8_sanitize(raw.data, raw.len, &r->out_text) < 0)
        req_fail(r, BN_RPC_E_INTERNAL, "detokenize: out of memory");
    bn_bytes_free(&raw);
}

static void work_done(uv_work_t *w, int status)
{
    struct req *r = w->data;
    r->d->work_inflight--;
    r->d->jobs_inflight--;
    dispatch_finish(r->d, r);
}

/* 0, or -1 with r failed (invalid params) when an id is past m's vocabulary. */
static int check_ids(struct req *r, const struct dmodel *m, const int32_t *ids, size_t n, const char *field)
{
    int32_t nv = bn_vocab_n_tokens(m->vocab);
    int32_t nm = m->info ? m->info->n_vocab : nv;
    if (nm < nv)
        nv = nm;
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= nv) {
            req_fail(r, BN_RPC_E_INVALID_PARAMS, "%s[%zu]: token id %d is not below the vocabulary size %d of '%s'",
                     field, i, ids[i], nv, m->name);
            return -1;
        }
    return 0;
}

static void on_tokenize(struct conn *c, uint32_t msgid, enum bn_rpc_method meth, const union rpc_params *p)
{
    struct daemon *d = c->d;
    struct dmodel *m = model_for(c, msgid, meth == BN_RPC_TOKENIZE ? p->tokenize.model : p->detokenize.model);
    if (!m)
        return;
    if (dispatch_jobs_full(c, msgid))
        return;
    struct req *r = req_new(c, msgid, meth);
    if (!r) {
        reply_error(c, &msgid, BN_RPC_E_INTERNAL, "out of memory");
        return;
    }
    r->model = m;
    models_ref(m);
    if (meth == BN_RPC_DETOKENIZE && check_ids(r, m, p->detokenize.tokens, p->detokenize.n_tokens, "tokens") < 0) {
        dispatch_finish(d, r);
        return;
    }
    bool ok = true;
    if (meth == BN_RPC_TOKENIZE) {
        r->prompt_len = strlen(p->tokenize.text);
        r->prompt = dupn(p->tokenize.text, r->prompt_len);
        r->add_special = p->tokenize.add_special;
        r->parse_special = p->tokenize.parse_special;
        ok = r->prompt != NULL;
    } else {
        for (size_t i = 0; ok && i < p->detokenize.n_tokens; i++)
            ok = bn_tokens_push(&r->tokens, p->detokenize.tokens[i], NULL) == 0;
    }
    if (!ok) {
        req_fail(r, BN_RPC_E_INTERNAL, "out of memory");
        dispatch_finish(d, r);
        return;
    }
    d->work_inflight++;
    d->jobs_inflight++;
    uv_queue_work(&d->loop, &r->work, meth == BN_RPC_TOKENIZE ? tokenize_work : detokenize_work, work_done);
}

/* ---- generate / chat ---- */

static void prepare_work(uv_work_t *w)
{
    struct req *r = w->data;
    struct dmodel *m = r->model;
    struct bn_err err = {{0}};
    if (atomic_load(&r->cancel))
        return;
    int rc = 0;
    if (r->method == BN_RPC_CHAT || (r->prompt && !r->raw && m->chat != BN_CHAT_NONE)) {
        size_t n = r->method == BN_RPC_CHAT ? r->n_msgs : (r->system ? 2 : 1);
        struct bn_chat_msg *cm = calloc(n, sizeof(*cm));
        if (!cm) {
            req_fail(r, BN_RPC_E_INTERNAL, "out of memory");
            return;
        }
        if (r->method == BN_RPC_CHAT) {
            for (size_t i = 0; i < n; i++)
                cm[i] = (struct bn_chat_msg){r->msgs[i].role, r->msgs[i].content, r->msgs[i].content_len};
        } else {
            size_t i = 0;
            if (r->system)
                cm[i++] = (struct bn_chat_msg){"system", r->system, strlen(r->system)};
            cm[i] = (struct bn_chat_msg){"user", r->prompt, r->prompt_len};
        }
        rc = bn_chat_tokenize(m->vocab, m->chat, cm, n, 0, true, &r->tokens, &err);
        free(cm);
    } else if (r->prompt) {
        /* Raw text (or a model without a chat format): as is, BOS first, special
         * token texts honoured since the caller wrote the whole prompt. */
        rc = bn_tokenize(m->vocab, r->prompt, r->prompt_len, bn_vocab_add_bos(m->vocab), true, &r->tokens, &err);
    }
    if (rc < 0) {
        req_fail(r, BN_RPC_E_INVALID_PARAMS, "%s: %s", r->method == BN_RPC_CHAT ? "messages" : "prompt", err.msg);
        return;
    }
    if (r->tokens.n == 0)
        req_fail(r, BN_RPC_E_INVALID_PARAMS, "the prompt is empty (no tokens to start from)");
    else if ((int64_t)r->tokens.n > m->n_ctx)
        req_fail(r, BN_RPC_E_CONTEXT_OVERFLOW,
                 "the prompt is %zu tokens; model '%s' was loaded with a context of %lld (load it with a larger ctx)",
                 r->tokens.n, m->name, (long long)m->n_ctx);
}

static void prepare_done(uv_work_t *w, int status)
{
    struct req *r = w->data;
    struct daemon *d = r->d;
    d->work_inflight--;
    int cancel = atomic_load(&r->cancel);
    if (!r->err_code && cancel == BN_RPC_E_CANCELLED)
        req_fail(r, BN_RPC_E_CANCELLED, "cancelled before it started");
    if (r->err_code || cancel || !d->sched) {
        dispatch_finish(d, r);
        return;
    }
    sched_submit(d->sched, r);
}

static int copy_stops(struct req *r, const char *const *stop, size_t n)
{
    if (!n)
        return 0;
    r->stop = calloc(n, sizeof(*r->stop));
    if (!r->stop)
        return -1;
    for (size_t i = 0; i < n; i++) {
        r->stop[i] = strdup(stop[i]);
        if (!r->stop[i])
            return -1;
        r->n_stop++;
    }
    return 0;
}

static void on_generate(struct conn *c, uint32_t msgid, enum bn_rpc_method meth, const union rpc_params *p)
{
    struct daemon *d = c->d;
    const char *model = meth == BN_RPC_CHAT ? p->chat.model : p->generate.model;
    const struct bn_rpc_sampler *so = meth == BN_RPC_CHAT ? &p->chat.options : &p->generate.options;
    unsigned limit = (unsigned)d->cfg.parallel + (unsigned)d->cfg.max_queue;
    if (d->gen_inflight >= limit) {
        reply_error(c, &msgid, BN_RPC_E_BUSY,
                    "busy: %d sequences running and %u waiting (max_queue = %d); retry later",
                    d->cfg.parallel, d->gen_inflight - (unsigned)d->cfg.parallel, d->cfg.max_queue);
        return;
    }
    struct bn_rpc_error e;
    struct bn_sampler_params sp;
    if (sched_sampler_from_rpc(so, &sp, &e) < 0) {
        reply_error(c, &msgid, e.code, "%s", e.message);
        return;
    }
    if (meth == BN_RPC_CHAT && p->chat.session && d->cfg.sessions == 0) {
        reply_error(c, &msgid, BN_RPC_E_INVALID_PARAMS, "chat sessions are disabled (sessions = 0)");
        return;
    }
    struct req *r = req_new(c, msgid, meth);
    if (!r) {
        reply_error(c, &msgid, BN_RPC_E_INTERNAL, "out of memory");
        return;
    }
    d->gen_inflight++;
    r->sampler = sp;
    bool ok = true;
    if (meth == BN_RPC_GENERATE) {
        const struct bn_rpc_generate_params *g = &p->generate;
        r->stream = g->stream;
        r->max_tokens = g->max_tokens;
        r->raw = g->raw;
        ok = copy_stops(r, g->stop, g->n_stop) == 0;
        if (ok && g->prompt) {
            r->prompt_len = strlen(g->prompt);
            ok = (r->prompt = dupn(g->prompt, r->prompt_len)) != NULL;
        }
        if (ok && g->system)
            ok = (r->system = strdup(g->system)) != NULL;
        for (size_t i = 0; ok && i < g->n_tokens; i++)
            ok = bn_tokens_push(&r->tokens, g->tokens[i], NULL) == 0;
    } else {
        const struct bn_rpc_chat_params *ch = &p->chat;
        r->stream = ch->stream;
        r->max_tokens = ch->max_tokens;
        ok = copy_stops(r, ch->stop, ch->n_stop) == 0;
        if (ok && ch->session)
            ok = (r->session = strdup(ch->session)) != NULL;
        if (ok)
            ok = (r->msgs = calloc(ch->n_messages, sizeof(*r->msgs))) != NULL;
        for (size_t i = 0; ok && i < ch->n_messages; i++) {
            struct gen_msg *gm = &r->msgs[i];
            gm->content_len = strlen(ch->messages[i].content);
            gm->role = strdup(bn_rpc_role_name(ch->messages[i].role));
            gm->content = dupn(ch->messages[i].content, gm->content_len);
            r->n_msgs++;
            ok = gm->role && gm->content;
        }
    }
    if (!ok) {
        req_fail(r, BN_RPC_E_INTERNAL, "out of memory");
        dispatch_finish(d, r);
        return;
    }
    int st = models_acquire(d, r, model, &e);
    if (st < 0) {
        req_fail(r, e.code, "%s", e.message);
        dispatch_finish(d, r);
    } else if (st == 1) {
        dispatch_model_ready(d, r);
    } /* else: it waits for the model's load */
}

void dispatch_model_ready(struct daemon *d, struct req *r)
{
    struct dmodel *m = r->model;
    if (atomic_load(&r->cancel) == BN_RPC_E_CANCELLED)
        req_fail(r, BN_RPC_E_CANCELLED, "cancelled before it started");
    else if (d->shutting_down && atomic_load(&r->cancel))
        req_fail(r, BN_RPC_E_SHUTTING_DOWN, "bitnetd is shutting down");
    else if (r->method == BN_RPC_CHAT && m->chat == BN_CHAT_NONE)
        req_fail(r, BN_RPC_E_INVALID_PARAMS, "model '%s' has no known chat format: use generate with raw true",
                 m->name);
    else if (r->tokens.n && check_ids(r, m, r->tokens.ids, r->tokens.n, "tokens") == 0 &&
             (int64_t)r->tokens.n > m->n_ctx)
        req_fail(r, BN_RPC_E_CONTEXT_OVERFLOW, "the prompt is %zu tokens; model '%s' was loaded with a context of %lld",
                 r->tokens.n, m->name, (long long)m->n_ctx);
    if (r->err_code || !d->sched) {
        dispatch_finish(d, r);
        return;
    }
    if (r->tokens.n) { /* ids given: nothing to prepare */
        sched_submit(d->sched, r);
        return;
    }
    d->work_inflight++;
    uv_queue_work(&d->loop, &r->work, prepare_work, prepare_done);
}

/* ---- the entry point ---- */

void dispatch_message(struct conn *c, const msgpack_object *o, msgpack_zone *z)
{
    struct daemon *d = c->d;
    struct bn_rpc_msg m;
    struct bn_rpc_error e;
    if (bn_rpc_parse(o, &m, &e) < 0) {
        reply_error(c, m.has_msgid ? &m.msgid : NULL, e.code, "%s", e.message);
        return;
    }
    if (m.kind != BN_RPC_REQUEST) {
        reply_error(c, NULL, BN_RPC_E_INVALID_REQUEST,
                    "bitnetd accepts only requests [0, msgid, method, params] from clients");
        return;
    }
    uint32_t id = m.msgid;
    atomic_fetch_add(&d->metrics.requests[m.method < BN_RPC_METHOD_COUNT ? m.method : BN_RPC_METHOD_COUNT], 1);
    if (m.method >= BN_RPC_METHOD_COUNT) {
        reply_error(c, &id, BN_RPC_E_METHOD_NOT_FOUND, "unknown method '%.*s' (see docs/PROTOCOL.md)",
                    (int)(m.name_len > 64 ? 64 : m.name_len), m.name ? m.name : "");
        return;
    }
    if (!c->hello_done && m.method != BN_RPC_HELLO) {
        reply_error(c, &id, BN_RPC_E_INVALID_REQUEST, "send hello first: it must be the first request on a connection");
        return;
    }
    if (bn_rpc_method_is_admin(m.method) && !c->admin) {
        reply_error(c, &id, BN_RPC_E_PERMISSION_DENIED,
                    "'%s' is an admin verb: only uid %d, root%s may use it (you are uid %d)",
                    bn_rpc_method_name(m.method), (int)d->uid,
                    d->has_admin_gid ? " or the admin group" : "", (int)c->peer_uid);
        return;
    }
    if (c->n_reqs >= DAEMON_CONN_INFLIGHT_MAX && m.method != BN_RPC_CANCEL) {
        reply_error(c, &id, BN_RPC_E_BUSY, "this connection already has %d requests in flight (the limit)",
                    DAEMON_CONN_INFLIGHT_MAX);
        return;
    }
    union rpc_params p;
    if (bn_rpc_decode_params(&m, &p, z, &e) < 0) {
        reply_error(c, &id, e.code, "%s", e.message);
        return;
    }
    if (d->shutting_down) {
        switch (m.method) {
        case BN_RPC_HELLO: case BN_RPC_PING: case BN_RPC_STATUS: case BN_RPC_METRICS:
        case BN_RPC_PS: case BN_RPC_LIST: case BN_RPC_CANCEL: case BN_RPC_SHUTDOWN:
            break;
        default:
            reply_error(c, &id, BN_RPC_E_SHUTTING_DOWN, "bitnetd is shutting down");
            return;
        }
    }
    switch (m.method) {
    case BN_RPC_HELLO: on_hello(c, id, &p.hello); break;
    case BN_RPC_PING: conn_send_result(c, id, BN_RPC_PING, NULL); break;
    case BN_RPC_STATUS: on_status(c, id); break;
    case BN_RPC_METRICS: on_metrics(c, id); break;
    case BN_RPC_CANCEL: on_cancel(c, id, &p.cancel); break;
    case BN_RPC_SHUTDOWN: on_shutdown(c, id, &p.shutdown); break;
    case BN_RPC_LOAD: models_load(d, c, id, &p.load); break;
    case BN_RPC_UNLOAD: models_unload(d, c, id, &p.unload); break;
    case BN_RPC_LIST: models_list(d, c, id); break;
    case BN_RPC_PS: models_ps(d, c, id); break;
    case BN_RPC_SHOW: models_show(d, c, id, &p.show); break;
    case BN_RPC_GENERATE:
    case BN_RPC_CHAT: on_generate(c, id, m.method, &p); break;
    case BN_RPC_TOKENIZE:
    case BN_RPC_DETOKENIZE: on_tokenize(c, id, m.method, &p); break;
    case BN_RPC_METHOD_COUNT: break;
    }
}

/* ---- answers from other threads ---- */

void dispatch_token(struct daemon *d, struct req *r, const struct event *ev)
{
    struct conn *c = r->conn;
    if (!c || c->closing || !r->stream)
        return;
    struct bn_bytes clean = {0};
    if (utf8_sanitize(ev->text, ev->text_len, &clean) < 0) {
        conn_close(c);
        return;
    }
    struct bn_rpc_token_note note = {.msgid = r->msgid, .text = clean.data ? clean.data : "", .token = ev->token};
    conn_send_note(c, BN_RPC_NOTE_TOKEN, &note);
    bn_bytes_free(&clean);
}

void dispatch_finish(struct daemon *d, struct req *r)
{
    struct conn *c = r->conn;
    bool gen = r->method == BN_RPC_GENERATE || r->method == BN_RPC_CHAT;
    int cancel = atomic_load(&r->cancel);
    if (!r->err_code && cancel == BN_RPC_E_SHUTTING_DOWN)
        req_fail(r, BN_RPC_E_SHUTTING_DOWN, "bitnetd is shutting down: the request was ended after %lld token%s",
                 (long long)r->stats.generated_tokens, r->stats.generated_tokens == 1 ? "" : "s");
    if (!r->err_code && cancel && !gen)
        req_fail(r, BN_RPC_E_CANCELLED, "cancelled");
    if (c && !c->closing) {
        if (r->err_code) {
            reply_error(c, &r->msgid, r->err_code, "%s", r->err_msg);
        } else if (gen) {
            struct bn_bytes clean = {0};
            if (utf8_sanitize(r->text.data, r->text.len, &clean) < 0) {
                reply_error(c, &r->msgid, BN_RPC_E_INTERNAL, "out of memory");
            } else {
                struct bn_rpc_generate_result res = {
                    .text = clean.data ? clean.data : "", .stats = r->stats, .session = r->session};
                conn_send_result(c, r->msgid, r->method, &res);
            }
            bn_bytes_free(&clean);
        } else if (r->method == BN_RPC_TOKENIZE) {
            struct bn_rpc_tokenize_result res = {.tokens = r->tokens.ids, .n_tokens = r->tokens.n};
            conn_send_result(c, r->msgid, r->method, &res);
        } else if (r->method == BN_RPC_DETOKENIZE) {
            struct bn_rpc_detokenize_result res = {.text = r->out_text.data ? r->out_text.data : ""};
            conn_send_result(c, r->msgid, r->method, &res);
        }
    } else if (r->err_code) {
        metrics_count_error(&d->metrics, r->err_code);
    }
    if (gen) {
        d->gen_inflight--;
        atomic_fetch_add(&d->metrics.generations, 1);
        if (!r->err_code && r->stats.stop_reason == BN_RPC_STOP_CANCELLED)
            atomic_fetch_add(&d->metrics.cancelled, 1);
    }
    if (r->model)
        models_unref(r->model);
    r->model = NULL;
    req_done(d, r);
}
