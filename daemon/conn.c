/* daemon/conn.c — one client connection: bytes in through libipc's framer (hard size,
 * element and depth limits before msgpack-c allocates), whole messages out through a
 * per-connection buffer that is written once per loop turn, and backpressure: a client
 * that does not read its answers has its requests and its token streams paused.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"

#define READ_MIN 4096 /* bytes of room asked of the framer per read; a read takes all the
                       * room its buffer has (64 KiB at first).  Asking for a full 64 KiB
                       * would make msgpack-c double every new connection's buffer to
                       * 128 KiB (an mmap, half of it copied: ~67 KB resident per idle
                       * connection) */

struct write_req {
    uv_write_t w;
    struct conn *c;
    char *base; /* owned (a released sbuffer) */
    size_t len; /* bytes handed to libuv */
};

static void conn_process(struct conn *c);
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);
static void set_congested(struct conn *c, bool on);

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = h->data;
    size_t cap = 0;
    char *p = bn_rpc_framer_buffer(&c->framer, READ_MIN, &cap);
    buf->base = p;
    buf->len = p ? cap : 0; /* 0: libuv reports UV_ENOBUFS to on_read */
}

static void set_reading(struct conn *c, bool on)
{
    if (c->closing || c->reading == on)
        return;
    c->reading = on;
    if (on)
        uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
    else
        uv_read_stop((uv_stream_t *)&c->pipe);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    if (n < 0) {
        if (n != UV_EOF)
            bn_log(BN_LOG_DEBUG, "connection %llu: read: %s", (unsigned long long)c->id, uv_strerror((int)n));
        if (n == UV_ENOBUFS)
            bn_log(BN_LOG_ERROR, "connection %llu: out of memory for its input; closing it",
                   (unsigned long long)c->id);
        conn_close(c);
        return;
    }
    if (n == 0)
        return;
    bn_rpc_framer_consumed(&c->framer, (size_t)n);
    conn_process(c);
}

/* Hand out every whole message buffered so far (stops when the connection is paused). */
static void conn_process(struct conn *c)
{
    c->refs++; /* a handler may close the connection */
    while (c->reading && !c->closing && !c->close_after_flush) {
        /* Answers are piling up unread (one read can hold thousands of small requests
         * with large answers, e.g. metrics): take no more requests until they drain. */
        if (c->out.size + c->write_queued >= DAEMON_WRITE_HIGH_WATER) {
            set_congested(c, true);
            break;
        }
        msgpack_object o;
        struct bn_rpc_error e;
        int r = bn_rpc_framer_next(&c->framer, &o, &e);
        if (r == 0)
            break;
        if (r < 0) {
            bn_log(BN_LOG_INFO, "connection %llu (pid %d): %s; closing it", (unsigned long long)c->id,
                   (int)c->peer_pid, e.message);
            metrics_count_error(&c->d->metrics, e.code);
            conn_send_error(c, NULL, e.code, "%s", e.message);
            c->close_after_flush = true;
            set_reading(c, false);
            break;
        }
        dispatch_message(c, &o, bn_rpc_framer_zone(&c->framer));
    }
    conn_unref(c);
}

void conn_start(struct daemon *d, struct conn *c)
{
    struct bn_rpc_framer_limits lim;
    bn_rpc_framer_limits_default(&lim);
    lim.max_frame_bytes = (size_t)d->cfg.max_message_bytes;
    if (bn_rpc_framer_init(&c->framer, &lim) < 0) {
        bn_log(BN_LOG_ERROR, "out of memory for a connection's framer");
        uv_close((uv_handle_t *)&c->pipe, free_handle_data);
        return;
    }
    msgpack_sbuffer_init(&c->out);
    msgpack_packer_init(&c->pk, &c->out, msgpack_sbuffer_write);
    c->refs = 1;
    c->id = ++d->next_conn_id;
    c->next = d->conns;
    if (d->conns)
        d->conns->prev = c;
    d->conns = c;
    d->n_conns++;
    atomic_fetch_add(&d->metrics.connections_total, 1);
    atomic_store(&d->metrics.connections, (int64_t)d->n_conns);
    bn_log(BN_LOG_DEBUG, "connection %llu from pid %d uid %d%s", (unsigned long long)c->id, (int)c->peer_pid,
           (int)c->peer_uid, c->admin ? " (admin)" : "");
    c->reading = true;
    uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
}

static void on_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    c->handle_closed = true;
    conn_unref(c);
}

void conn_close(struct conn *c)
{
    if (c->closing)
        return;
    struct daemon *d = c->d;
    /* Engine steps done before the cancel flags below are set (for the log). */
    unsigned long long step = (unsigned long long)atomic_load(&d->metrics.steps);
    c->closing = true;
    c->reading = false;
    bool any = false;
    for (struct req *r = c->reqs; r; r = r->conn_next) {
        int zero = 0;
        atomic_compare_exchange_strong(&r->cancel, &zero, BN_RPC_E_CANCELLED);
        atomic_store(&r->paused, false);
        any = true;
    }
    if (any && d->sched)
        sched_wake(d->sched);
    if (c->prev)
        c->prev->next = c->next;
    else
        d->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    d->n_conns--;
    atomic_store(&d->metrics.connections, (int64_t)d->n_conns);
    bn_log(BN_LOG_DEBUG, "connection %llu closed (%u request%s in flight cancelled; engine step %llu)",
           (unsigned long long)c->id, c->n_reqs, c->n_reqs == 1 ? "" : "s", step);
    uv_close((uv_handle_t *)&c->pipe, on_closed);
    if (d->stopped && d->n_conns == 0)
        daemon_close_loop_handles(d);
}

void conn_unref(struct conn *c)
{
    if (--c->refs > 0)
        return;
    bn_rpc_framer_destroy(&c->framer);
    msgpack_sbuffer_destroy(&c->out);
    free(c);
}

/* ---- output ---- */

static void mark_dirty(struct conn *c)
{
    if (c->dirty)
        return;
    c->dirty = true;
    c->refs++; /* held by the dirty list */
    c->dirty_next = c->d->dirty;
    c->d->dirty = c;
}

/* After an encoder call: a failed write (out of memory) leaves half a message; the
 * connection cannot continue. */
static void after_encode(struct conn *c, size_t before, int rc)
{
    if (rc < 0) {
        c->out.size = before;
        bn_log(BN_LOG_ERROR, "connection %llu: out of memory encoding an answer; closing it",
               (unsigned long long)c->id);
        conn_close(c);
        return;
    }
    mark_dirty(c);
}

void conn_send_result(struct conn *c, uint32_t msgid, enum bn_rpc_method m, const void *result)
{
    if (c->closing)
        return;
    size_t before = c->out.size;
    after_encode(c, before, bn_rpc_encode_result(&c->pk, msgid, m, result));
}

void conn_send_error(struct conn *c, const uint32_t *msgid, int code, const char *fmt, ...)
{
    if (c->closing)
        return;
    char msg[BN_RPC_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    size_t before = c->out.size;
    after_encode(c, before, bn_rpc_encode_error(&c->pk, msgid, code, msg));
}

void conn_send_note(struct conn *c, enum bn_rpc_note n, const void *params)
{
    if (c->closing)
        return;
    size_t before = c->out.size;
    after_encode(c, before, bn_rpc_encode_note(&c->pk, n, params));
}

static void set_congested(struct conn *c, bool on)
{
    if (c->congested == on)
        return;
    c->congested = on;
    for (struct req *r = c->reqs; r; r = r->conn_next)
        atomic_store(&r->paused, on);
    if (on) {
        bn_log(BN_LOG_DEBUG, "connection %llu: %zu bytes unread by the client; pausing it",
               (unsigned long long)c->id, c->write_queued);
        set_reading(c, false);
    } else {
        if (c->d->sched)
            sched_wake(c->d->sched);
        if (!c->close_after_flush && !c->closing) {
            set_reading(c, true);
            conn_process(c); /* messages that arrived before the pause */
        }
    }
}

static void on_write(uv_write_t *w, int status)
{
    struct write_req *wr = (struct write_req *)w;
    struct conn *c = wr->c;
    c->write_queued -= wr->len;
    free(wr->base);
    free(wr);
    if (status < 0 && status != UV_ECANCELED) {
        bn_log(BN_LOG_DEBUG, "connection %llu: write: %s", (unsigned long long)c->id, uv_strerror(status));
        conn_close(c);
    } else if (!c->closing) {
        if (c->congested && c->write_queued < DAEMON_WRITE_LOW_WATER)
            set_congested(c, false);
        if (c->close_after_flush && c->write_queued == 0 && c->out.size == 0)
            conn_close(c);
    }
    conn_unref(c);
}

static void conn_flush(struct conn *c)
{
    if (c->closing) {
        c->out.size = 0;
        return;
    }
    size_t off = 0;
    if (c->out.size && c->write_queued == 0) {
        /* Most answers are small: try to write now and skip libuv's write queue. */
        uv_buf_t b = uv_buf_init(c->out.data, (unsigned)c->out.size);
        int r = uv_try_write((uv_stream_t *)&c->pipe, &b, 1);
        if (r > 0)
            off = (size_t)r;
        else if (r < 0 && r != UV_EAGAIN && r != UV_ENOSYS) {
            bn_log(BN_LOG_DEBUG, "connection %llu: write: %s", (unsigned long long)c->id, uv_strerror(r));
            conn_close(c);
            return;
        }
    }
    if (off < c->out.size) {
        struct write_req *wr = malloc(sizeof(*wr));
        if (!wr) {
            bn_log(BN_LOG_ERROR, "connection %llu: out of memory queuing a write; closing it",
                   (unsigned long long)c->id);
            conn_close(c);
            return;
        }
        size_t size = c->out.size;
        wr->c = c;
        wr->base = msgpack_sbuffer_release(&c->out);
        wr->len = size - off;
        uv_buf_t b = uv_buf_init(wr->base + off, (unsigned)wr->len);
        c->refs++;
        int r = uv_write(&wr->w, (uv_stream_t *)&c->pipe, &b, 1, on_write);
        if (r < 0) {
            free(wr->base);
            free(wr);
            c->refs--;
            conn_close(c);
            return;
        }
        c->write_queued += wr->len;
        if (c->write_queued > DAEMON_WRITE_HIGH_WATER)
            set_congested(c, true);
    } else {
        c->out.size = 0;
    }
    if (c->close_after_flush && c->write_queued == 0 && c->out.size == 0)
        conn_close(c);
    else if (c->congested && !c->closing && c->write_queued < DAEMON_WRITE_LOW_WATER)
        set_congested(c, false); /* paused by conn_process, and the socket took it all */
}

void conn_flush_all(struct daemon *d)
{
    while (d->dirty) {
        struct conn *c = d->dirty;
        d->dirty = c->dirty_next;
        c->dirty_next = NULL;
        c->dirty = false;
        conn_flush(c);
        conn_unref(c);
    }
}

/* ---- requests in flight ---- */

void conn_add_req(struct conn *c, struct req *r)
{
    r->conn = c;
    c->refs++;
    r->conn_prev = NULL;
    r->conn_next = c->reqs;
    if (c->reqs)
        c->reqs->conn_prev = r;
    c->reqs = r;
    c->n_reqs++;
    atomic_store(&r->paused, c->congested);
}

void conn_remove_req(struct conn *c, struct req *r)
{
    if (r->conn_prev)
        r->conn_prev->conn_next = r->conn_next;
    else
        c->reqs = r->conn_next;
    if (r->conn_next)
        r->conn_next->conn_prev = r->conn_prev;
    r->conn_prev = r->conn_next = NULL;
    c->n_reqs--;
    r->conn = NULL;
    conn_unref(c);
}

struct req *conn_find_req(struct conn *c, uint32_t msgid)
{
    for (struct req *r = c->reqs; r; r = r->conn_next)
        if (r->msgid == msgid)
            return r;
    return NULL;
}
