/* client/conn.c — libbitnet-client connections: socket path, connect + hello, the
 * poll()-driven request/answer loop with timeouts, streaming callbacks and cancel. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "conn_internal.h"

_Static_assert(BNC_ERROR_MAX == BN_RPC_ERROR_MESSAGE_MAX, "one message size");
_Static_assert(BNC_PROTOCOL_VERSION == BN_RPC_VERSION, "one protocol version");
/* The public codes are the protocol's codes, one for one. */
#define SAME_CODE(x) _Static_assert((int)BNC_E_##x == (int)BN_RPC_E_##x, "BNC_E_" #x)
SAME_CODE(PARSE);
SAME_CODE(INVALID_REQUEST);
SAME_CODE(METHOD_NOT_FOUND);
SAME_CODE(INVALID_PARAMS);
SAME_CODE(INTERNAL);
SAME_CODE(MODEL_NOT_FOUND);
SAME_CODE(MODEL_NOT_LOADED);
SAME_CODE(BUSY);
SAME_CODE(CANCELLED);
SAME_CODE(SHUTTING_DOWN);
SAME_CODE(PERMISSION_DENIED);
SAME_CODE(LOAD_FAILED);
SAME_CODE(CONTEXT_OVERFLOW);
SAME_CODE(MESSAGE_TOO_LARGE);
SAME_CODE(UNSUPPORTED_VERSION);
SAME_CODE(CONNECT);
SAME_CODE(IO);
SAME_CODE(TIMEOUT);
SAME_CODE(PROTOCOL);
SAME_CODE(NOMEM);

int bnc_set_error(struct bnc_error *err, int code, const char *message)
{
    if (err) {
        err->code = code;
        snprintf(err->message, sizeof err->message, "%s", message);
    }
    return -1;
}

int bnc_errorf(struct bnc_error *err, int code, const char *fmt, ...)
{
    if (!err)
        return -1;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return -1;
}

const char *bnc_code_name(int code)
{
    return bn_rpc_code_name(code);
}

void bnc_options_init(struct bnc_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->connect_timeout_ms = BNC_CONNECT_TIMEOUT_MS;
    opt->timeout_ms = -1;
}

int bnc_default_socket_path(char *buf, size_t size)
{
    const char *env = getenv(BNC_SOCKET_ENV);
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    int n;
    if (env && *env)
        n = snprintf(buf, size, "%s", env);
    else if (xdg && *xdg)
        n = snprintf(buf, size, "%s/bitnetd.sock", xdg);
    else
        n = snprintf(buf, size, "%s", BNC_DEFAULT_SOCKET);
    return n < 0 || (size_t)n >= size ? -1 : n;
}

/* ---- time ---- */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t now_ms(void) { return now_ns() / 1000000; }

/* poll() that first polls without sleeping for up to BNC_SPIN_NS (spin: once per
 * call, cleared here). */
static int poll_spin(struct pollfd *p, nfds_t n, int timeout_ms, bool *spin)
{
    if (*spin && timeout_ms != 0) {
        *spin = false;
        int64_t end = now_ns() + BNC_SPIN_NS;
        do {
            int r = poll(p, n, 0);
            if (r != 0)
                return r;
        } while (now_ns() < end);
    }
    return poll(p, n, timeout_ms);
}

/* Deadline from a timeout (< 0: none, INT64_MAX). */
static int64_t deadline_after(int timeout_ms)
{
    return timeout_ms < 0 ? INT64_MAX : now_ms() + timeout_ms;
}

/* poll() timeout until the deadline: -1 for none, 0 when passed. */
static int remaining_ms(int64_t deadline)
{
    if (deadline == INT64_MAX)
        return -1;
    int64_t left = deadline - now_ms();
    return left <= 0 ? 0 : left > INT32_MAX ? INT32_MAX : (int)left;
}

/* ---- the connection ---- */

static int mark_broken(struct bnc_conn *c, struct bnc_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int mark_broken(struct bnc_conn *c, struct bnc_error *err, int code, const char *fmt, ...)
{
    c->broken = true;
    c->broken_err.code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->broken_err.message, sizeof c->broken_err.message, fmt, ap);
    va_end(ap);
    if (err)
        *err = c->broken_err;
    return -1;
}

/* Write all of buf before the deadline. */
static int send_all(struct bnc_conn *c, const char *buf, size_t n, int64_t deadline,
                    struct bnc_error *err)
{
    size_t done = 0;
    while (done < n) {
        ssize_t w = send(c->fd, buf + done, n - done, MSG_NOSIGNAL);
        if (w > 0) {
            done += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int left = remaining_ms(deadline);
            if (left == 0) {
                if (done > 0) /* half a message on the wire: the stream cannot be resumed */
                    return mark_broken(c, err, BNC_E_TIMEOUT,
                                       "timed out sending a request to bitnetd (connection closed)");
                return bnc_errorf(err, BNC_E_TIMEOUT, "timed out sending a request to bitnetd");
            }
            struct pollfd p = {.fd = c->fd, .events = POLLOUT};
            if (poll(&p, 1, left) < 0 && errno != EINTR)
                return mark_broken(c, err, BNC_E_IO, "poll on the bitnetd socket failed: %s",
                                   strerror(errno));
            continue;
        }
        return mark_broken(c, err, BNC_E_IO, "sending to bitnetd failed: %s",
                           w == 0 ? "nothing written" : strerror(errno));
    }
    return 0;
}

/* Encode one request into c->sb and send it. */
static int send_request(struct bnc_conn *c, uint32_t msgid, enum bn_rpc_method m, const void *params,
                        int64_t deadline, struct bnc_error *err)
{
    msgpack_sbuffer_clear(&c->sb);
    if (bn_rpc_encode_request(&c->pk, msgid, m, params))
        return bnc_errorf(err, BNC_E_NOMEM, "out of memory encoding a %s request", bn_rpc_method_name(m));
    if (c->server_max_message && c->sb.size > c->server_max_message)
        return bnc_errorf(err, BNC_E_MESSAGE_TOO_LARGE,
                          "%s request of %zu bytes is over the server's limit of %zu bytes",
                          bn_rpc_method_name(m), c->sb.size, c->server_max_message);
    return send_all(c, c->sb.data, c->sb.size, deadline, err);
}

/* Ask the server to cancel request `target` (best effort: its answer is discarded
 * as a stale response). */
static int send_cancel(struct bnc_conn *c, uint32_t target, int64_t deadline, struct bnc_error *err)
{
    struct bn_rpc_cancel_params p = {.msgid = target};
    return send_request(c, c->next_msgid++, BN_RPC_CANCEL, &p, deadline, err);
}

static void drain_wake(struct bnc_conn *c)
{
    uint64_t v;
    while (read(c->wake_fd, &v, sizeof v) > 0) {
    }
}

void bnc_cancel(struct bnc_conn *c)
{
    if (!c || !atomic_load(&c->in_call))
        return;
    atomic_store(&c->cancel_requested, true);
    uint64_t one = 1;
    ssize_t r = write(c->wake_fd, &one, sizeof one);
    (void)r; /* a full eventfd counter still wakes the poller */
}

/* State of one call while its messages arrive. */
struct call_state {
    struct bnc_call *k;
    uint32_t msgid;
    bool cancel_sent;
    bool callback_stopped; /* the callback asked to stop: it is not called again */
    bool done;
    int rc;
};

/* Handle one message from the server.  0 to go on (st->done when the answer came),
 * -1 on a fatal error (err set, connection broken). */
static int handle_message(struct bnc_conn *c, struct call_state *st, const msgpack_object *o,
                          int64_t deadline, struct bnc_error *err)
{
    struct bn_rpc_msg m;
    struct bn_rpc_error pe;
    if (bn_rpc_parse(o, &m, &pe))
        return mark_broken(c, err, BNC_E_PROTOCOL, "bad message from bitnetd: %s", pe.message);
    struct bnc_call *k = st->k;
    if (m.kind == BN_RPC_RESPONSE) {
        if (!m.has_msgid) { /* an error not tied to a request (framing) */
            if (bn_rpc_decode_response(&m, k->method, k->result, k->zone, &pe) == 0)
                return mark_broken(c, err, BNC_E_PROTOCOL, "bitnetd sent a result without a msgid");
            if (bn_rpc_code_is_fatal(pe.code))
                return mark_broken(c, err, pe.code, "%s", pe.message);
            bnc_set_error(err, pe.code, pe.message);
            st->done = true;
            st->rc = -1;
            return 0;
        }
        if (m.msgid != st->msgid)
            return 0; /* answer to a cancel, or to a call that timed out */
        if (bn_rpc_decode_response(&m, k->method, k->result, k->zone, &pe)) {
            if (pe.code == BN_RPC_E_PROTOCOL)
                return mark_broken(c, err, pe.code, "%s", pe.message);
            bnc_set_error(err, pe.code, pe.message);
            st->rc = -1;
        } else {
            st->rc = 0;
        }
        st->done = true;
        return 0;
    }
    if (m.kind != BN_RPC_NOTIFY || m.note == BN_RPC_NOTE_COUNT)
        return 0; /* requests from the server and unknown notifications: ignored */
    msgpack_zone *z = bn_rpc_framer_zone(&c->fr);
    int stop = 0;
    if (m.note == BN_RPC_NOTE_TOKEN) {
        struct bn_rpc_token_note t;
        if (bn_rpc_decode_note(&m, &t, z, &pe))
            return mark_broken(c, err, BNC_E_PROTOCOL, "%s", pe.message);
        if (t.msgid != st->msgid || !k->on_token || st->callback_stopped)
            return 0;
        stop = k->on_token(k->user, t.text, strlen(t.text), t.token);
    } else if (m.note == BN_RPC_NOTE_PROGRESS) {
        struct bn_rpc_progress_note p;
        if (bn_rpc_decode_note(&m, &p, z, &pe))
            return mark_broken(c, err, BNC_E_PROTOCOL, "%s", pe.message);
        if (p.msgid != st->msgid || !k->on_progress || st->callback_stopped)
            return 0;
        stop = k->on_progress(k->user, p.done, p.total);
    }
    if (stop)
        st->callback_stopped = true;
    if (stop && !st->cancel_sent) {
        st->cancel_sent = true;
        if (send_cancel(c, st->msgid, deadline, err))
            return c->broken ? -1 : 0;
    }
    return 0;
}

int bnc_call_run(struct bnc_conn *c, struct bnc_call *k, struct bnc_error *err)
{
    pthread_mutex_lock(&c->mu);
    int rc = -1;
    if (c->broken) {
        if (err)
            *err = c->broken_err;
        goto out;
    }
    /* A cancel aimed at an earlier call may have left the eventfd readable: that only
     * costs one spurious wake-up below, cheaper than a read() on every call. */
    atomic_store(&c->cancel_requested, false);
    atomic_store(&c->in_call, true);

    int64_t deadline = deadline_after(c->timeout_ms);
    struct call_state st = {.k = k, .msgid = c->next_msgid++};
    bool spin = true; /* once per call: not between streamed tokens, which are ms apart
                       * and whose spinning would take a core from the engine */
    if (send_request(c, st.msgid, k->method, k->params, deadline, err))
        goto out_call;

    for (;;) {
        msgpack_object o;
        struct bn_rpc_error fe;
        int r;
        while ((r = bn_rpc_framer_next(&c->fr, &o, &fe)) == 1) {
            if (handle_message(c, &st, &o, deadline, err))
                goto out_call;
            if (st.done) {
                rc = st.rc;
                goto out_call;
            }
        }
        if (r < 0) {
            mark_broken(c, err, BNC_E_PROTOCOL, "bad bytes from bitnetd: %s", fe.message);
            goto out_call;
        }
        int left = remaining_ms(deadline);
        if (left == 0) {
            if (!st.cancel_sent) {
                struct bnc_error ignored;
                send_cancel(c, st.msgid, deadline_after(BNC_CANCEL_GRACE_MS), &ignored);
            }
            if (!c->broken)
                bnc_errorf(err, BNC_E_TIMEOUT, "no answer to %s from bitnetd within %d ms",
                           bn_rpc_method_name(k->method), c->timeout_ms);
            else if (err)
                *err = c->broken_err;
            goto out_call;
        }
        struct pollfd p[2] = {{.fd = c->fd, .events = POLLIN}, {.fd = c->wake_fd, .events = POLLIN}};
        int n = poll_spin(p, 2, left, &spin);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            mark_broken(c, err, BNC_E_IO, "poll on the bitnetd socket failed: %s", strerror(errno));
            goto out_call;
        }
        if (p[1].revents & POLLIN) {
            drain_wake(c);
            if (atomic_load(&c->cancel_requested) && !st.cancel_sent) {
                st.cancel_sent = true;
                if (send_cancel(c, st.msgid, deadline, err) && c->broken)
                    goto out_call;
            }
        }
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            size_t cap;
            char *buf = bn_rpc_framer_buffer(&c->fr, BNC_READ_CHUNK, &cap);
            if (!buf) {
                bnc_errorf(err, BNC_E_NOMEM, "out of memory reading from bitnetd");
                goto out_call;
            }
            ssize_t got = read(c->fd, buf, cap);
            if (got > 0) {
                bn_rpc_framer_consumed(&c->fr, (size_t)got);
            } else if (got == 0) {
                mark_broken(c, err, BNC_E_IO, "bitnetd closed the connection");
                goto out_call;
            } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                mark_broken(c, err, BNC_E_IO, "reading from bitnetd failed: %s", strerror(errno));
                goto out_call;
            }
        }
    }
out_call:
    atomic_store(&c->in_call, false);
out:
    pthread_mutex_unlock(&c->mu);
    return rc;
}

/* ---- connect / close ---- */

static int say_hello(struct bnc_conn *c, const struct bnc_options *opt, struct bnc_error *err)
{
    c->info_zone = msgpack_zone_new(MSGPACK_ZONE_CHUNK_SIZE);
    if (!c->info_zone)
        return bnc_errorf(err, BNC_E_NOMEM, "out of memory");
    struct bn_rpc_hello_params hp = {.version = BN_RPC_VERSION, .client = opt->client_name};
    struct bn_rpc_hello_result hr;
    struct bnc_call k = {.method = BN_RPC_HELLO, .params = &hp, .result = &hr, .zone = c->info_zone};
    c->timeout_ms = opt->connect_timeout_ms;
    if (bnc_call_run(c, &k, err))
        return -1;
    c->timeout_ms = opt->timeout_ms;
    if (hr.version != BN_RPC_VERSION)
        return bnc_errorf(err, BNC_E_UNSUPPORTED_VERSION,
                          "bitnetd speaks protocol version %lld, this client speaks %d",
                          (long long)hr.version, BN_RPC_VERSION);
    c->info.version = hr.version;
    c->info.server = hr.server;
    c->info.capabilities = hr.capabilities;
    c->info.n_capabilities = hr.n_capabilities;
    c->info.max_message_bytes = hr.max_message_bytes;
    c->info.pid = hr.pid;
    c->server_max_message = hr.max_message_bytes > 0 ? (size_t)hr.max_message_bytes : 0;
    return 0;
}

int bnc_connect_fd(struct bnc_conn **out, int fd, const struct bnc_options *opt, struct bnc_error *err)
{
    *out = NULL;
    struct bnc_options defaults;
    if (!opt) {
        bnc_options_init(&defaults);
        opt = &defaults;
    }
    struct bnc_conn *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return bnc_errorf(err, BNC_E_NOMEM, "out of memory");
    }
    c->fd = fd;
    c->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    pthread_mutex_init(&c->mu, NULL);
    atomic_init(&c->cancel_requested, false);
    atomic_init(&c->in_call, false);
    c->next_msgid = 1;
    msgpack_sbuffer_init(&c->sb);
    msgpack_packer_init(&c->pk, &c->sb, msgpack_sbuffer_write);
    struct bn_rpc_framer_limits lim;
    bn_rpc_framer_limits_default(&lim);
    if (opt->max_message_bytes)
        lim.max_frame_bytes = opt->max_message_bytes;
    bool framer_ok = bn_rpc_framer_init(&c->fr, &lim) == 0;
    if (c->wake_fd < 0 || !framer_ok) {
        if (!framer_ok)
            memset(&c->fr, 0, sizeof c->fr);
        bnc_close(c);
        return bnc_errorf(err, BNC_E_NOMEM, "cannot set up a connection: %s",
                          framer_ok ? strerror(errno) : "out of memory");
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        bnc_close(c);
        return bnc_errorf(err, BNC_E_CONNECT, "fd %d is not a usable socket: %s", fd, strerror(errno));
    }
    if (say_hello(c, opt, err)) {
        bnc_close(c);
        return -1;
    }
    *out = c;
    return 0;
}

int bnc_connect(struct bnc_conn **out, const struct bnc_options *opt, struct bnc_error *err)
{
    *out = NULL;
    struct bnc_options defaults;
    if (!opt) {
        bnc_options_init(&defaults);
        opt = &defaults;
    }
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    char path[sizeof sa.sun_path];
    if (opt->socket_path) {
        if (strlen(opt->socket_path) >= sizeof path)
            return bnc_errorf(err, BNC_E_CONNECT, "socket path %.64s... is longer than %zu bytes",
                              opt->socket_path, sizeof path - 1);
        strcpy(path, opt->socket_path);
    } else if (bnc_default_socket_path(path, sizeof path) < 0) {
        return bnc_errorf(err, BNC_E_CONNECT,
                          "the default socket path ($%s or $XDG_RUNTIME_DIR) is longer than %zu bytes",
                          BNC_SOCKET_ENV, sizeof path - 1);
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return bnc_errorf(err, BNC_E_CONNECT, "socket: %s", strerror(errno));
    /* A Unix-socket connect completes or fails at once (EAGAIN only when the
     * listener's backlog is full), so it is done blocking. */
    while (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        if (errno == EINTR)
            continue;
        int e = errno;
        close(fd);
        return bnc_errorf(err, BNC_E_CONNECT, "cannot connect to bitnetd at %s: %s%s", path, strerror(e),
                          e == ENOENT || e == ECONNREFUSED ? " (is bitnetd running? start it with "
                                                             "`bitnetctl serve`, or set $BITNET_SOCKET)"
                                                           : "");
    }
    return bnc_connect_fd(out, fd, opt, err);
}

void bnc_close(struct bnc_conn *c)
{
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd);
    if (c->wake_fd >= 0)
        close(c->wake_fd);
    if (c->fr.up.buffer)
        bn_rpc_framer_destroy(&c->fr);
    msgpack_sbuffer_destroy(&c->sb);
    if (c->info_zone)
        msgpack_zone_free(c->info_zone);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

void bnc_set_timeout(struct bnc_conn *c, int timeout_ms)
{
    pthread_mutex_lock(&c->mu);
    c->timeout_ms = timeout_ms;
    pthread_mutex_unlock(&c->mu);
}

const struct bnc_server_info *bnc_server_info(const struct bnc_conn *c)
{
    return &c->info;
}

bool bnc_server_has(const struct bnc_conn *c, const char *capability)
{
    for (size_t i = 0; i < c->info.n_capabilities; i++)
        if (strcmp(c->info.capabilities[i], capability) == 0)
            return true;
    return false;
}
