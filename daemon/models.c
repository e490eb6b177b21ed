/* daemon/models.c — the models this daemon serves, by name.  A load makes the file
 * resident through the registry (a shared-memory segment, filled with io_uring or
 * reattached), opens the engine model on it, builds the vocabulary and one engine
 * context with a sequence slot per parallel request and per chat session.  Idle
 * models unload after their keep-alive.  Loading and `show` of a file run on libuv's
 * worker pool; everything else here runs on the loop.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "daemon.h"

/* What a load worker needs (copied on the loop: the worker never reads d->cfg) and
 * what it produces. */
struct load_task {
    struct dmodel *m;    /* the LOADING placeholder; show: NULL */
    char *path;
    int64_t ctx;         /* requested context (0: the model's) */
    int threads;
    bool head_q8;        /* bn_model_params.head_q8 */
    int32_t slots;       /* sequences in the context */
    int64_t batch;       /* entries per bn_decode */
    /* results */
    int err_code;
    struct bn_err err;
    struct resident *res;
    struct bn_model *model;
    struct bn_vocab *vocab;
    struct bn_ctx *bctx;
    enum bn_rpc_loaded_by by;
    double seconds;
    /* show */
    msgpack_zone *zone;
    struct bn_rpc_show_result show;
};

static double now_mono(void) { return daemon_now(); }

struct dmodel *models_find(struct daemon *d, const char *name)
{
    for (struct dmodel *m = d->models; m; m = m->next)
        if (strcmp(m->name, name) == 0)
            return m;
    return NULL;
}

static void list_remove(struct daemon *d, struct dmodel *m)
{
    for (struct dmodel **pp = &d->models; *pp; pp = &(*pp)->next)
        if (*pp == m) {
            *pp = m->next;
            m->next = NULL;
            return;
        }
}

static void free_model_mem(struct dmodel *m)
{
    free(m->path);
    free(m);
}

static void on_timer_closed(uv_handle_t *h)
{
    free_model_mem(h->data);
}

/* Release the engine objects; unlink: drop the registry reference too (the segment
 * goes when nobody else uses it).  At shutdown the segment is kept for a restart. */
static void model_release(struct daemon *d, struct dmodel *m, bool unlink)
{
    if (m->state == DMODEL_LOADING)
        return;
    if (d->sched)
        sched_drop_sessions(d->sched, m);
    bn_ctx_free(m->ctx);
    bn_vocab_free(m->vocab);
    bn_model_free(m->model);
    m->ctx = NULL;
    m->vocab = NULL;
    m->model = NULL;
    m->info = NULL;
    if (m->res && unlink)
        registry_unload(d->reg, m->res);
    m->res = NULL;
    atomic_fetch_sub(&d->metrics.models_resident, 1);
    atomic_fetch_sub(&d->metrics.resident_bytes, (int64_t)m->bytes);
}

static void model_destroy(struct dmodel *m)
{
    if (m->timer_open) {
        m->timer_open = false;
        uv_timer_stop(&m->keep_timer);
        uv_close((uv_handle_t *)&m->keep_timer, on_timer_closed);
    } else {
        free_model_mem(m);
    }
}

static void model_retire(struct daemon *d, struct dmodel *m, const char *why)
{
    list_remove(d, m);
    m->state = DMODEL_RETIRING;
    if (m->refs > 0) {
        bn_log(BN_LOG_INFO, "model %s: %s; it goes when its %u request%s finish", m->name, why, m->refs,
               m->refs == 1 ? "" : "s");
        return;
    }
    bn_log(BN_LOG_INFO, "model %s: %s", m->name, why);
    atomic_fetch_add(&d->metrics.unloads, 1);
    model_release(d, m, true);
    model_destroy(m);
}

static void on_keep_alive(uv_timer_t *t)
{
    struct dmodel *m = t->data;
    if (m->refs > 0 || m->state != DMODEL_READY)
        return;
    char why[96];
    snprintf(why, sizeof(why), "unloaded after %.3g s idle (keep-alive)", m->keep_alive);
    atomic_fetch_add(&m->d->metrics.keepalive_unloads, 1);
    model_retire(m->d, m, why);
}

static void arm_keep_alive(struct dmodel *m)
{
    m->idle_since = now_mono();
    if (!m->timer_open || m->keep_alive < 0)
        return;
    uv_timer_start(&m->keep_timer, on_keep_alive, (uint64_t)(m->keep_alive * 1000.0 + 0.5), 0);
}

void models_ref(struct dmodel *m)
{
    if (m->refs++ == 0 && m->timer_open)
        uv_timer_stop(&m->keep_timer);
}

void models_unref(struct dmodel *m)
{
    if (--m->refs > 0)
        return;
    if (m->state == DMODEL_RETIRING) {
        struct daemon *d = m->d;
        bn_log(BN_LOG_INFO, "model %s: last request finished; unloaded", m->name);
        atomic_fetch_add(&d->metrics.unloads, 1);
        model_release(d, m, true);
        model_destroy(m);
        return;
    }
    if (m->state == DMODEL_READY)
        arm_keep_alive(m);
}

size_t models_count_resident(struct daemon *d, uint64_t *bytes)
{
    size_t n = 0;
    uint64_t b = 0;
    for (struct dmodel *m = d->models; m; m = m->next)
        if (m->state == DMODEL_READY) {
            n++;
            b += m->bytes;
        }
    if (bytes)
        *bytes = b;
    return n;
}

void models_close_all(struct daemon *d)
{
    while (d->models) {
        struct dmodel *m = d->models;
        d->models = m->next;
        model_release(d, m, false);
        model_destroy(m);
    }
}

/* ---- names and paths ---- */

/* Default name of a model loaded by path: the file's base name without .gguf, with
 * characters outside the name alphabet replaced. */
static void name_from_path(const char *path, char *out, size_t len)
{
    char tmp[BN_RPC_PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s", path);
    const char *b = basename(tmp);
    size_t n = strlen(b);
    if (n > 5 && strcmp(b + n - 5, ".gguf") == 0)
        n -= 5;
    if (n > DAEMON_MODEL_NAME_MAX)
        n = DAEMON_MODEL_NAME_MAX;
    if (n >= len)
        n = len - 1;
    for (size_t i = 0; i < n; i++) {
        char ch = b[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                  ch == '.' || ch == '_' || ch == '-' || ch == ':';
        out[i] = ok ? ch : '_';
    }
    out[n] = 0;
    if (n == 0 || out[0] == '.' || out[0] == '-')
        snprintf(out, len, "model");
}

int models_resolve(struct daemon *d, const char *arg, const char *want_name, bool for_load, char *name,
                   size_t name_len, char **path, struct bn_rpc_error *err)
{
    *path = NULL;
    const char *cp = config_model_path(&d->cfg, arg);
    if (cp) {
        snprintf(name, name_len, "%s", want_name ? want_name : arg);
        *path = strdup(cp);
    } else if (strchr(arg, '/') || (strlen(arg) > 5 && strcmp(arg + strlen(arg) - 5, ".gguf") == 0)) {
        if (!d->cfg.allow_client_paths)
            return bn_rpc_errf(err, BN_RPC_E_PERMISSION_DENIED,
                               "model '%s': loading by path is disabled (allow_client_paths = false); "
                               "use a name from the [models] section of the config",
                               arg);
        if (arg[0] != '/')
            return bn_rpc_errf(err, BN_RPC_E_INVALID_PARAMS, "model path '%s' must be absolute", arg);
        if (want_name)
            snprintf(name, name_len, "%s", want_name);
        else
            name_from_path(arg, name, name_len);
        *path = strdup(arg);
    } else {
        return bn_rpc_errf(err, BN_RPC_E_MODEL_NOT_FOUND,
                           "no model named '%s' in the config's [models] section (bitnetctl list shows them)%s",
                           arg, d->cfg.allow_client_paths ? "; or give an absolute .gguf path" : "");
    }
    if (!*path)
        return bn_rpc_errf(err, BN_RPC_E_INTERNAL, "out of memory");
    if (for_load && !daemon_model_name_valid(name)) {
        free(*path);
        *path = NULL;
        return bn_rpc_errf(err, BN_RPC_E_INVALID_PARAMS,
                           "name '%s' must be 1..%d characters of [A-Za-z0-9._:-], not starting with '.' or '-'",
                           name, DAEMON_MODEL_NAME_MAX);
    }
    return 0;
}

/* ---- load ---- */

static enum bn_rpc_loaded_by loaded_by_of(const char *method)
{
    if (strcmp(method, "reattach") == 0)
        return BN_RPC_LOADED_BY_REATTACH;
    if (strcmp(method, "io_uring") == 0)
        return BN_RPC_LOADED_BY_IO_URING;
    return BN_RPC_LOADED_BY_PREAD;
}

static void load_progress(void *ctx, uint64_t done, uint64_t total)
{
    struct req *r = ctx;
    if (!r->progress)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
    if (done < total && now - r->last_progress_ns < DAEMON_PROGRESS_MIN_NS)
        return;
    r->last_progress_ns = now;
    struct event *ev = event_new(EV_PROGRESS, r, NULL, 0);
    if (!ev)
        return;
    ev->done = (int64_t)done;
    ev->total = (int64_t)total;
    atomic_fetch_add(&r->refs, 1); /* released by models_on_progress */
    daemon_post(r->d, ev);
}

void models_on_progress(struct daemon *d, struct req *r, int64_t done, int64_t total)
{
    struct conn *c = r->conn;
    if (c && !c->closing) {
        struct bn_rpc_progress_note note = {.msgid = r->msgid, .done = done, .total = total};
        conn_send_note(c, BN_RPC_NOTE_PROGRESS, &note);
    }
    req_free(r);
}

static void load_work(uv_work_t *w)
{
    struct req *r = w->data;
    struct load_task *t = r->load;
    struct stat st;
    if (stat(t->path, &st) < 0) {
        t->err_code = errno == ENOENT ? BN_RPC_E_MODEL_NOT_FOUND : BN_RPC_E_LOAD_FAILED;
        bn_errf(&t->err, "%s: %s", t->path, strerror(errno));
        return;
    }
    double t0 = daemon_now();
    if (registry_load(r->d->reg, t->path, load_progress, r, &t->res, &t->err) < 0) {
        t->err_code = BN_RPC_E_LOAD_FAILED;
        return;
    }
    struct resident_info ri;
    resident_describe(t->res, &ri);
    t->by = loaded_by_of(ri.method);
    struct bn_model_params mp;
    bn_model_params_default(&mp);
    mp.n_threads = t->threads;
    mp.head_q8 = t->head_q8;
    if (bn_model_open(resident_source(t->res), &mp, &t->model, &t->err) < 0)
        goto fail;
    const struct bn_model_info *info = bn_model_get_info(t->model);
    if (bn_vocab_from_gguf(&t->vocab, bn_model_gguf(t->model), &t->err) < 0)
        goto fail;
    struct bn_ctx_params cp;
    bn_ctx_params_default(&cp);
    cp.n_ctx = t->ctx > 0 ? t->ctx : info->n_ctx_train;
    cp.n_seq_max = t->slots;
    cp.n_batch = t->batch;
    cp.n_threads = t->threads;
    if (bn_ctx_new(t->model, &cp, &t->bctx, &t->err) < 0)
        goto fail;
    t->seconds = daemon_now() - t0;
    if (t->by == BN_RPC_LOADED_BY_REATTACH || ri.load_seconds <= 0)
        t->seconds = t->by == BN_RPC_LOADED_BY_REATTACH ? ri.load_seconds : t->seconds;
    return;
fail:
    t->err_code = BN_RPC_E_LOAD_FAILED;
    bn_ctx_free(t->bctx);
    bn_vocab_free(t->vocab);
    bn_model_free(t->model);
    t->bctx = NULL;
    t->vocab = NULL;
    t->model = NULL;
    registry_unload(r->d->reg, t->res);
    t->res = NULL;
}

static void send_load_result(struct req *r, const struct dmodel *m, bool already)
{
    struct conn *c = r->conn;
    if (!c || c->closing)
        return;
    struct bn_rpc_load_result res = {
        .name = m->name,
        .path = m->path,
        .bytes = (int64_t)m->bytes,
        .loaded_by = m->loaded_by,
        .load_seconds = m->load_seconds,
        .already_loaded = already,
    };
    conn_send_result(c, r->msgid, BN_RPC_LOAD, &res);
}

static void send_error(struct daemon *d, struct req *r, int code, const char *msg)
{
    metrics_count_error(&d->metrics, code);
    if (r->conn && !r->conn->closing)
        conn_send_error(r->conn, &r->msgid, code, "%s", msg);
}

static void task_free(struct load_task *t)
{
    if (!t)
        return;
    free(t->path);
    if (t->zone)
        msgpack_zone_free(t->zone);
    free(t);
}

static void load_done(uv_work_t *w, int status)
{
    struct req *r = w->data;
    struct daemon *d = r->d;
    struct load_task *t = r->load;
    struct dmodel *m = t->m;
    d->work_inflight--;
    int cancel = atomic_load(&r->cancel);
    for (struct req *q = m->waiters; q && cancel; q = q->link)
        if (!atomic_load(&q->cancel))
            cancel = 0; /* another client still wants it */
    if (!t->err_code && cancel) {
        /* The client gave up (or we are stopping): do not keep a model nobody asked
         * for any more. */
        bn_ctx_free(t->bctx);
        bn_vocab_free(t->vocab);
        bn_model_free(t->model);
        registry_unload(d->reg, t->res);
        t->err_code = cancel;
        bn_errf(&t->err, "%s", cancel == BN_RPC_E_SHUTTING_DOWN ? "bitnetd is shutting down" : "load cancelled");
    }
    struct req *waiters = m->waiters;
    m->waiters = NULL;
    if (t->err_code) {
        atomic_fetch_add(&d->metrics.load_failures, 1);
        bn_log(BN_LOG_WARN, "load of %s (%s) failed: %s", m->name, t->path, t->err.msg);
        list_remove(d, m);
        send_error(d, r, t->err_code, t->err.msg);
        for (struct req *q = waiters, *next; q; q = next) {
            next = q->link;
            q->link = NULL;
            if (q->method == BN_RPC_LOAD) {
                send_error(d, q, t->err_code, t->err.msg);
                req_done(d, q);
            } else { /* a generation that waited for an on-demand load */
                req_fail(q, t->err_code, "loading model '%s': %s", m->name, t->err.msg);
                dispatch_finish(d, q);
            }
        }
        free_model_mem(m);
    } else {
        m->res = t->res;
        m->model = t->model;
        m->vocab = t->vocab;
        m->ctx = t->bctx;
        m->info = bn_model_get_info(m->model);
        m->n_ctx = bn_ctx_n_ctx(m->ctx);
        m->chat = bn_chat_format_from_gguf(bn_model_gguf(m->model));
        m->loaded_by = t->by;
        m->load_seconds = t->seconds;
        struct resident_info ri;
        resident_describe(m->res, &ri);
        m->bytes = ri.bytes;
        m->state = DMODEL_READY;
        uv_timer_init(&d->loop, &m->keep_timer);
        m->keep_timer.data = m;
        m->timer_open = true;
        atomic_fetch_add(&d->metrics.loads, 1);
        atomic_fetch_add(&d->metrics.load_ns_total, (uint64_t)(t->seconds * 1e9));
        atomic_store(&d->metrics.last_load_ns, (uint64_t)(t->seconds * 1e9));
        atomic_fetch_add(&d->metrics.models_resident, 1);
        atomic_fetch_add(&d->metrics.resident_bytes, (int64_t)m->bytes);
        bn_log(BN_LOG_INFO, "model %s loaded from %s: %.1f MiB by %s in %.3f s, context %lld, chat format %s",
               m->name, ri.path, (double)m->bytes / 1048576.0, bn_rpc_loaded_by_name(m->loaded_by),
               m->load_seconds, (long long)m->n_ctx, bn_chat_format_name(m->chat));
        if (m->info->head_layout != m->info->head_type)
            bn_log(BN_LOG_INFO, "model %s: head requantized from %s to %s (head_q8)", m->name,
                   bn_type_name(m->info->head_type), bn_type_name(m->info->head_layout));
        send_load_result(r, m, false);
        arm_keep_alive(m);
        for (struct req *q = waiters, *next; q; q = next) {
            next = q->link;
            q->link = NULL;
            if (q->method == BN_RPC_LOAD) {
                send_load_result(q, m, true);
                req_done(d, q);
            } else {
                q->model = m;
                models_ref(m);
                dispatch_model_ready(d, q);
            }
        }
    }
    r->load = NULL;
    task_free(t);
    req_done(d, r);
}

/* Start loading `path` as `name` on the worker pool, for load request r (a client's,
 * or an internal one for an on-demand load).  Takes path.  0, or -1 (out of memory:
 * r is answered and done). */
static int start_load(struct daemon *d, struct req *r, const char *name, char *path, int64_t ctx, int threads,
                      double keep_alive)
{
    struct dmodel *m = calloc(1, sizeof(*m));
    struct load_task *t = calloc(1, sizeof(*t));
    char *tpath = strdup(path);
    if (!m || !t || !tpath) {
        free(m);
        free(t);
        free(tpath);
        free(path);
        send_error(d, r, BN_RPC_E_INTERNAL, "out of memory");
        req_done(d, r);
        return -1;
    }
    m->d = d;
    snprintf(m->name, sizeof(m->name), "%s", name);
    m->path = path;
    m->state = DMODEL_LOADING;
    m->keep_alive = keep_alive;
    m->threads = threads;
    m->next = d->models;
    d->models = m;
    t->m = m;
    t->path = tpath;
    t->ctx = ctx;
    t->threads = threads;
    t->head_q8 = d->cfg.head_q8;
    t->slots = sched_ctx_slots(d);
    t->batch = sched_ctx_batch(d);
    r->load = t;
    d->work_inflight++;
    uv_queue_work(&d->loop, &r->work, load_work, load_done);
    return 0;
}

void models_load(struct daemon *d, struct conn *c, uint32_t msgid, const struct bn_rpc_load_params *p)
{
    char name[DAEMON_MODEL_NAME_MAX + 1];
    char *path = NULL;
    struct bn_rpc_error e;
    if (models_resolve(d, p->model, p->name, true, name, sizeof(name), &path, &e) < 0) {
        metrics_count_error(&d->metrics, e.code);
        conn_send_error(c, &msgid, e.code, "%s", e.message);
        return;
    }
    struct dmodel *m = models_find(d, name);
    if (m && strcmp(m->path, path) != 0) {
        metrics_count_error(&d->metrics, BN_RPC_E_INVALID_PARAMS);
        conn_send_error(c, &msgid, BN_RPC_E_INVALID_PARAMS,
                        "a model named '%s' is already loaded from %s: unload it first or choose another name",
                        name, m->path);
        free(path);
        return;
    }
    struct req *r = req_new(c, msgid, BN_RPC_LOAD);
    if (!r) {
        free(path);
        metrics_count_error(&d->metrics, BN_RPC_E_INTERNAL);
        conn_send_error(c, &msgid, BN_RPC_E_INTERNAL, "out of memory");
        return;
    }
    r->progress = p->progress;
    if (m && m->state == DMODEL_READY) {
        if (p->has_keep_alive) {
            m->keep_alive = p->keep_alive;
            if (m->refs == 0)
                arm_keep_alive(m);
        }
        send_load_result(r, m, true);
        free(path);
        req_done(d, r);
        return;
    }
    if (m) { /* being loaded: answer with it */
        r->link = m->waiters;
        m->waiters = r;
        free(path);
        return;
    }
    bn_log(BN_LOG_INFO, "loading model %s from %s (requested by pid %d)", name, path, (int)c->peer_pid);
    start_load(d, r, name, path, p->ctx ? p->ctx : d->cfg.ctx, p->threads ? p->threads : d->cfg.threads,
               p->has_keep_alive ? p->keep_alive : d->cfg.keep_alive);
}

int models_acquire(struct daemon *d, struct req *r, const char *name, struct bn_rpc_error *err)
{
    struct dmodel *m = models_find(d, name);
    if (m && m->state == DMODEL_READY) {
        r->model = m;
        models_ref(m);
        return 1;
    }
    if (m) { /* loading: wait for it */
        r->link = m->waiters;
        m->waiters = r;
        return 0;
    }
    const char *cp = config_model_path(&d->cfg, name);
    if (!cp || !d->cfg.load_on_demand)
        return bn_rpc_errf(err, BN_RPC_E_MODEL_NOT_LOADED, "model '%s' is not loaded: load it first (bitnetctl load %s)",
                           name, name);
    struct req *lr = calloc(1, sizeof(*lr));
    char *path = strdup(cp);
    if (!lr || !path) {
        free(lr);
        free(path);
        return bn_rpc_errf(err, BN_RPC_E_INTERNAL, "out of memory");
    }
    atomic_init(&lr->refs, 1);
    lr->d = d;
    lr->method = BN_RPC_LOAD;
    lr->work.data = lr;
    bn_log(BN_LOG_INFO, "loading model %s from %s on demand (a %s from pid %d)", name, path,
           bn_rpc_method_name(r->method), r->conn ? (int)r->conn->peer_pid : 0);
    if (start_load(d, lr, name, path, d->cfg.ctx, d->cfg.threads, d->cfg.keep_alive) < 0)
        return bn_rpc_errf(err, BN_RPC_E_INTERNAL, "out of memory");
    m = models_find(d, name);
    r->link = m->waiters;
    m->waiters = r;
    return 0;
}

void models_unload(struct daemon *d, struct conn *c, uint32_t msgid, const struct bn_rpc_unload_params *p)
{
    struct dmodel *m = models_find(d, p->name);
    if (!m || m->state != DMODEL_READY) {
        metrics_count_error(&d->metrics, BN_RPC_E_MODEL_NOT_LOADED);
        conn_send_error(c, &msgid, BN_RPC_E_MODEL_NOT_LOADED, "model '%s' is %s", p->name,
                        m ? "still loading: unload it when the load finishes" : "not loaded");
        return;
    }
    struct resident_info ri;
    resident_describe(m->res, &ri);
    struct bn_rpc_unload_result res = {
        .name = p->name,
        .bytes = m->refs == 0 && ri.refs <= 1 ? (int64_t)m->bytes : 0,
    };
    conn_send_result(c, msgid, BN_RPC_UNLOAD, &res);
    char why[96];
    snprintf(why, sizeof(why), "unloaded at the request of pid %d", (int)c->peer_pid);
    model_retire(d, m, why);
}

/* ---- ps / list ---- */

void models_ps(struct daemon *d, struct conn *c, uint32_t msgid)
{
    size_t n = models_count_resident(d, NULL);
    struct bn_rpc_model_status *st = calloc(n ? n : 1, sizeof(*st));
    if (!st) {
        conn_send_error(c, &msgid, BN_RPC_E_INTERNAL, "out of memory");
        return;
    }
    size_t i = 0;
    double now = now_mono();
    for (struct dmodel *m = d->models; m; m = m->next) {
        if (m->state != DMODEL_READY)
            continue;
        int64_t clients = 0;
        for (struct conn *k = d->conns; k; k = k->next)
            for (struct req *r = k->reqs; r; r = r->conn_next)
                if (r->model == m) {
                    clients++;
                    break;
                }
        st[i++] = (struct bn_rpc_model_status){
            .name = m->name,
            .path = m->path,
            .bytes = (int64_t)m->bytes,
            .loaded_by = m->loaded_by,
            .load_seconds = m->load_seconds,
            .idle_seconds = m->refs ? 0 : now - m->idle_since,
            .clients = clients,
            .ctx = m->n_ctx,
            .keep_alive = m->keep_alive,
        };
    }
    struct bn_rpc_ps_result res = {.models = st, .n_models = i};
    conn_send_result(c, msgid, BN_RPC_PS, &res);
    free(st);
}

void models_list(struct daemon *d, struct conn *c, uint32_t msgid)
{
    size_t cap = d->cfg.n_models;
    for (struct dmodel *m = d->models; m; m = m->next)
        cap++;
    struct bn_rpc_model_entry *e = calloc(cap ? cap : 1, sizeof(*e));
    if (!e) {
        conn_send_error(c, &msgid, BN_RPC_E_INTERNAL, "out of memory");
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < d->cfg.n_models; i++) {
        const struct model_conf *mc = &d->cfg.models[i];
        struct stat st;
        struct dmodel *m = models_find(d, mc->name);
        e[n++] = (struct bn_rpc_model_entry){
            .name = mc->name,
            .path = mc->path,
            .bytes = stat(mc->path, &st) == 0 ? (int64_t)st.st_size : 0,
            .loaded = m && m->state == DMODEL_READY,
        };
    }
    /* Models loaded by path (not in the config) are listed too. */
    for (struct dmodel *m = d->models; m; m = m->next) {
        if (m->state != DMODEL_READY || config_model_path(&d->cfg, m->name))
            continue;
        struct stat st;
        e[n++] = (struct bn_rpc_model_entry){
            .name = m->name, .path = m->path,
            .bytes = stat(m->path, &st) == 0 ? (int64_t)st.st_size : 0, .loaded = true};
    }
    struct bn_rpc_list_result res = {.models = e, .n_models = n};
    conn_send_result(c, msgid, BN_RPC_LIST, &res);
    free(e);
}

/* ---- show ---- */

static char *zdup(msgpack_zone *z, const char *s, size_t n)
{
    /* Protocol strings: valid UTF-8, no NUL, at most BN_RPC_META_VALUE_MAX - 1 bytes. */
    if (n > BN_RPC_META_VALUE_MAX - 4)
        n = BN_RPC_META_VALUE_MAX - 4;
    struct bn_bytes b = {0};
    if (utf8_sanitize(s, n, &b) < 0)
        return NULL;
    size_t len = b.len < BN_RPC_META_VALUE_MAX - 1 ? b.len : BN_RPC_META_VALUE_MAX - 1;
    char *p = msgpack_zone_malloc(z, len + 1);
    if (p) {
        memcpy(p, b.data, len);
        p[len] = 0;
    }
    bn_bytes_free(&b);
    return p;
}

static int64_t arch_int(const struct bn_gguf *g, const char *arch, const char *key)
{
    char k[160];
    snprintf(k, sizeof(k), "%s.%s", arch, key);
    int64_t v = 0;
    if (bn_gguf_find_key(g, k) < 0 || bn_gguf_get_i64(g, k, &v, NULL) < 0)
        return 0;
    return v;
}

static const char *gguf_vtype_name(enum bn_gguf_vtype t)
{
    static const char *const names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool",
                                        "string", "array", "u64", "i64", "f64"};
    return (unsigned)t < sizeof(names) / sizeof(names[0]) ? names[t] : "?";
}

/* Fill t->show from metadata g (and the plan, and the model when resident). */
static int show_fill(struct load_task *t, const char *name, const char *path, const struct bn_gguf *g,
                     const struct bn_pack_plan *plan, const struct dmodel *m, int64_t ctx)
{
    msgpack_zone *z = t->zone;
    struct bn_rpc_show_result *s = &t->show;
    memset(s, 0, sizeof(*s));
    s->name = zdup(z, name, strlen(name));
    s->path = zdup(z, path, strlen(path));
    struct bn_str arch = {0};
    char archbuf[BN_MODEL_ARCH_MAX + 1] = "";
    if (bn_gguf_get_str(g, "general.architecture", &arch, NULL) == 0)
        snprintf(archbuf, sizeof(archbuf), "%.*s", (int)(arch.len < BN_MODEL_ARCH_MAX ? arch.len : BN_MODEL_ARCH_MAX),
                 arch.ptr);
    s->architecture = zdup(z, archbuf, strlen(archbuf));
    struct stat st;
    s->file_bytes = stat(path, &st) == 0 ? (int64_t)st.st_size : 0;
    if (m) {
        const struct bn_model_info *in = m->info;
        s->n_params = (int64_t)in->n_params;
        s->n_layers = in->n_layer;
        s->n_embd = in->n_embd;
        s->n_heads = in->n_head;
        s->n_kv_heads = in->n_head_kv;
        s->n_vocab = in->n_vocab;
        s->ctx_train = in->n_ctx_train;
        s->ctx = ctx > 0 ? ctx : m->n_ctx;
        s->weights_bytes = (int64_t)in->weight_bytes;
        s->kv_bytes = (int64_t)bn_model_kv_bytes(m->model, s->ctx);
    } else {
        s->n_layers = arch_int(g, archbuf, "block_count");
        s->n_embd = arch_int(g, archbuf, "embedding_length");
        s->n_heads = arch_int(g, archbuf, "attention.head_count");
        s->n_kv_heads = arch_int(g, archbuf, "attention.head_count_kv");
        if (!s->n_kv_heads)
            s->n_kv_heads = s->n_heads;
        s->n_vocab = arch_int(g, archbuf, "vocab_size");
        struct bn_gguf_arr toks;
        if (!s->n_vocab && bn_gguf_find_key(g, "tokenizer.ggml.tokens") >= 0 &&
            bn_gguf_get_arr(g, "tokenizer.ggml.tokens", &toks, NULL) == 0)
            s->n_vocab = (int64_t)toks.n;
        s->ctx_train = arch_int(g, archbuf, "context_length");
        s->ctx = ctx > 0 ? ctx : s->ctx_train;
        uint64_t params = 0, wbytes = 0;
        for (size_t i = 0; plan && i < plan->n; i++) {
            params += (uint64_t)(plan->entries[i].rows * plan->entries[i].cols);
            wbytes += plan->entries[i].dst_bytes;
        }
        s->n_params = (int64_t)params;
        s->weights_bytes = (int64_t)wbytes;
        /* K and V of every layer in F16, whole BN_KV_CHUNK_TOKENS chunks (the
         * engine's bn_model_kv_bytes rule). */
        int64_t head_dim = s->n_heads ? s->n_embd / s->n_heads : 0;
        int64_t pos = (s->ctx + BN_KV_CHUNK_TOKENS - 1) / BN_KV_CHUNK_TOKENS * BN_KV_CHUNK_TOKENS;
        s->kv_bytes = s->n_layers * 2 * s->n_kv_heads * head_dim * pos * 2;
    }
    /* formats: tensors and bytes per file type */
    int64_t nt = bn_gguf_n_tensors(g);
    struct bn_rpc_tensor_format *f = msgpack_zone_malloc(z, sizeof(*f) * 64);
    size_t nf = 0;
    for (int64_t i = 0; f && i < nt; i++) {
        const struct bn_gguf_tensor *ti = bn_gguf_tensor(g, i);
        const char *tn = bn_type_name(ti->type);
        size_t k = 0;
        while (k < nf && strcmp(f[k].type, tn) != 0)
            k++;
        if (k == nf) {
            if (nf == 64)
                continue;
            f[nf++] = (struct bn_rpc_tensor_format){.type = tn};
        }
        f[k].tensors++;
        f[k].bytes += (int64_t)ti->bytes;
    }
    s->formats = f;
    s->n_formats = f ? nf : 0;
    /* metadata: scalars as text, arrays as "[N TYPE items]" */
    int64_t nk = bn_gguf_n_kv(g);
    if (nk > BN_RPC_LIST_MAX)
        nk = BN_RPC_LIST_MAX;
    struct bn_rpc_kv *kv = msgpack_zone_malloc(z, sizeof(*kv) * (size_t)(nk > 0 ? nk : 1));
    size_t n = 0;
    for (int64_t i = 0; kv && i < nk; i++) {
        struct bn_str key = bn_gguf_key(g, i);
        char k[256];
        if (key.len >= sizeof(k))
            continue;
        memcpy(k, key.ptr, key.len);
        k[key.len] = 0;
        char val[256];
        const char *v = val;
        size_t vl;
        enum bn_gguf_vtype vt = bn_gguf_kv_type(g, i);
        struct bn_str sv;
        struct bn_gguf_arr arr;
        switch (vt) {
        case BN_GGUF_STRING:
            if (bn_gguf_get_str(g, k, &sv, NULL) < 0)
                continue;
            v = sv.ptr;
            vl = sv.len;
            break;
        case BN_GGUF_ARRAY:
            if (bn_gguf_get_arr(g, k, &arr, NULL) < 0)
                continue;
            vl = (size_t)snprintf(val, sizeof(val), "[%" PRIu64 " %s items]", arr.n, gguf_vtype_name(arr.type));
            break;
        case BN_GGUF_FLOAT32:
        case BN_GGUF_FLOAT64: {
            float fv = 0;
            bn_gguf_get_f32(g, k, &fv, NULL);
            vl = (size_t)snprintf(val, sizeof(val), "%g", (double)fv);
            break;
        }
        case BN_GGUF_BOOL: {
            bool bv = false;
            bn_gguf_get_bool(g, k, &bv, NULL);
            vl = (size_t)snprintf(val, sizeof(val), "%s", bv ? "true" : "false");
            break;
        }
        case BN_GGUF_UINT64: {
            uint64_t uv = 0;
            bn_gguf_get_u64(g, k, &uv, NULL);
            vl = (size_t)snprintf(val, sizeof(val), "%" PRIu64, uv);
            break;
        }
        default: {
            int64_t iv = 0;
            bn_gguf_get_i64(g, k, &iv, NULL);
            vl = (size_t)snprintf(val, sizeof(val), "%" PRId64, iv);
            break;
        }
        }
        kv[n].key = zdup(z, k, key.len);
        kv[n].value = zdup(z, v, vl);
        if (!kv[n].key || !kv[n].value)
            return -1;
        n++;
    }
    s->metadata = kv;
    s->n_metadata = kv ? n : 0;
    return s->name && s->path && s->architecture && f && kv ? 0 : -1;
}

static void show_work(uv_work_t *w)
{
    struct req *r = w->data;
    struct load_task *t = r->load;
    struct bn_mapped_file mf = {0};
    struct bn_gguf *g = NULL;
    struct bn_pack_plan plan = {0};
    if (bn_map_file(t->path, &mf, &t->err) < 0) {
        t->err_code = errno == ENOENT ? BN_RPC_E_MODEL_NOT_FOUND : BN_RPC_E_LOAD_FAILED;
        return;
    }
    if (bn_gguf_open(&g, mf.base, mf.size, t->path, 0, &t->err) < 0 ||
        bn_pack_plan_make(&plan, g, bn_path_default(), BN_TYPE_COUNT, &t->err) < 0) {
        t->err_code = BN_RPC_E_LOAD_FAILED;
    } else if (show_fill(t, r->session ? r->session : "", t->path, g, &plan, NULL, t->ctx) < 0) {
        t->err_code = BN_RPC_E_INTERNAL;
        bn_errf(&t->err, "out of memory describing %s", t->path);
    }
    bn_pack_plan_free(&plan);
    bn_gguf_close(g);
    bn_unmap_file(&mf);
}

static void show_done(uv_work_t *w, int status)
{
    struct req *r = w->data;
    struct daemon *d = r->d;
    struct load_task *t = r->load;
    d->work_inflight--;
    d->jobs_inflight--;
    if (t->err_code)
        send_error(d, r, t->err_code, t->err.msg);
    else if (r->conn && !r->conn->closing)
        conn_send_result(r->conn, r->msgid, BN_RPC_SHOW, &t->show);
    r->load = NULL;
    task_free(t);
    req_done(d, r);
}

void models_show(struct daemon *d, struct conn *c, uint32_t msgid, const struct bn_rpc_show_params *p)
{
    struct load_task *t = calloc(1, sizeof(*t));
    if (!t || !(t->zone = msgpack_zone_new(8192))) {
        free(t);
        conn_send_error(c, &msgid, BN_RPC_E_INTERNAL, "out of memory");
        return;
    }
    t->ctx = p->ctx;
    struct dmodel *m = models_find(d, p->model);
    if (m && m->state == DMODEL_READY) {
        const struct bn_model_source *src = resident_source(m->res);
        if (show_fill(t, m->name, m->path, bn_model_gguf(m->model), src->plan, m, p->ctx) < 0)
            conn_send_error(c, &msgid, BN_RPC_E_INTERNAL, "out of memory describing %s", m->name);
        else
            conn_send_result(c, msgid, BN_RPC_SHOW, &t->show);
        task_free(t);
        return;
    }
    char name[DAEMON_MODEL_NAME_MAX + 1];
    struct bn_rpc_error e;
    if (models_resolve(d, p->model, NULL, false, name, sizeof(name), &t->path, &e) < 0) {
        metrics_count_error(&d->metrics, e.code);
        conn_send_error(c, &msgid, e.code, "%s", e.message);
        task_free(t);
        return;
    }
    /* A path (not a configured name) makes the daemon open a file of the client's
     * choosing with the daemon's rights: only peers who may load by path may do it,
     * else any user of the socket could probe files the daemon can read. */
    if (!config_model_path(&d->cfg, p->model) && !c->admin) {
        metrics_count_error(&d->metrics, BN_RPC_E_PERMISSION_DENIED);
        conn_send_error(c, &msgid, BN_RPC_E_PERMISSION_DENIED,
                        "show: model '%s': describing a file by path is for admin peers (you are uid %d); "
                        "use a name from the config's [models] section",
                        p->model, (int)c->peer_uid);
        task_free(t);
        return;
    }
    if (dispatch_jobs_full(c, msgid)) {
        task_free(t);
        return;
    }
    struct req *r = req_new(c, msgid, BN_RPC_SHOW);
    if (!r || !(r->session = strdup(name))) {
        conn_send_error(c, &msgid, BN_RPC_E_INTERNAL, "out of memory");
        task_free(t);
        if (r)
            req_done(d, r);
        return;
    }
    r->load = t;
    d->work_inflight++;
    d->jobs_inflight++;
    uv_queue_work(&d->loop, &r->work, show_work, show_done);
}
