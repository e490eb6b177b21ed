/* tests/test_client.c — libbitnet-client against a peer thread that speaks the
 * protocol over a socketpair (or a Unix socket) with libipc's codec: handshake,
 * every method's conversions, streaming callbacks, cancel (callback, other thread),
 * timeouts, error mapping, broken connections.  The peer is a protocol endpoint for
 * the test, not a daemon: end-to-end tests against bitnetd live with the daemon. */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "bitnet_client.h"
#include "ipc.h"

#define SCRATCH 4096 /* bytes: room for any params struct */

struct peer {
    int fd;
    struct bn_rpc_framer fr;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    pthread_t th;
    void (*script)(struct peer *);
    char failure[512];           /* first problem the peer saw (asserted by the test) */
    int64_t hello_version;       /* what the peer answers hello with */
    int64_t max_message;
    struct bn_rpc_msg m;         /* last received */
    _Alignas(16) char params[SCRATCH];
    uint32_t seen_cancel_target; /* msgid named by the last cancel received */
    sem_t token_sent;            /* scripts that coordinate with the test */
};

static void peer_fail(struct peer *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void peer_fail(struct peer *p, const char *fmt, ...)
{
    if (p->failure[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->failure, sizeof p->failure, fmt, ap);
    va_end(ap);
}

/* Next request into p->m / p->params.  False on EOF or error. */
static bool peer_recv(struct peer *p)
{
    for (;;) {
        msgpack_object o;
        struct bn_rpc_error err;
        int r = bn_rpc_framer_next(&p->fr, &o, &err);
        if (r < 0) {
            peer_fail(p, "framing: %s", err.message);
            return false;
        }
        if (r == 1) {
            if (bn_rpc_parse(&o, &p->m, &err)) {
                peer_fail(p, "envelope: %s", err.message);
                return false;
            }
            if (bn_rpc_decode_params(&p->m, p->params, bn_rpc_framer_zone(&p->fr), &err)) {
                peer_fail(p, "params: %s", err.message);
                return false;
            }
            if (p->m.method == BN_RPC_CANCEL)
                p->seen_cancel_target = ((struct bn_rpc_cancel_params *)p->params)->msgid;
            return true;
        }
        size_t cap;
        char *buf = bn_rpc_framer_buffer(&p->fr, 4096, &cap);
        ssize_t n = read(p->fd, buf, cap);
        if (n <= 0)
            return false;
        bn_rpc_framer_consumed(&p->fr, (size_t)n);
    }
}

static bool peer_expect(struct peer *p, enum bn_rpc_method m)
{
    if (!peer_recv(p)) {
        peer_fail(p, "expected %s, got end of stream", bn_rpc_method_name(m));
        return false;
    }
    if (p->m.method != m) {
        peer_fail(p, "expected %s, got %s", bn_rpc_method_name(m), bn_rpc_method_name(p->m.method));
        return false;
    }
    return true;
}

static void peer_flush(struct peer *p)
{
    size_t done = 0;
    while (done < p->sb.size) {
        ssize_t w = send(p->fd, p->sb.data + done, p->sb.size - done, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        done += (size_t)w;
    }
    msgpack_sbuffer_clear(&p->sb);
}

static void peer_result(struct peer *p, uint32_t msgid, enum bn_rpc_method m, const void *r)
{
    bn_rpc_encode_result(&p->pk, msgid, m, r);
    peer_flush(p);
}

static void peer_error(struct peer *p, const uint32_t *msgid, int code, const char *msg)
{
    bn_rpc_encode_error(&p->pk, msgid, code, msg);
    peer_flush(p);
}

static void peer_token(struct peer *p, uint32_t msgid, const char *text, int32_t id)
{
    struct bn_rpc_token_note t = {.msgid = msgid, .text = text, .token = id};
    bn_rpc_encode_note(&p->pk, BN_RPC_NOTE_TOKEN, &t);
    peer_flush(p);
}

static const char *caps[] = {"stream", "cancel", "chat-session", "progress"};

static bool peer_hello(struct peer *p)
{
    if (!peer_expect(p, BN_RPC_HELLO))
        return false;
    const struct bn_rpc_hello_params *h = (const void *)p->params;
    if (h->version != BN_RPC_VERSION)
        peer_fail(p, "hello version %lld", (long long)h->version);
    struct bn_rpc_hello_result r = {.version = p->hello_version,
                                    .server = "test-peer 1",
                                    .capabilities = caps,
                                    .n_capabilities = 4,
                                    .max_message_bytes = p->max_message,
                                    .pid = 4242};
    peer_result(p, p->m.msgid, BN_RPC_HELLO, &r);
    return true;
}

static void *peer_main(void *arg)
{
    struct peer *p = arg;
    p->script(p);
    return NULL;
}

static struct bnc_conn *conn;
static struct peer peer;

/* Start the peer thread with `script` and connect the client to it. */
static void start(void (*script)(struct peer *))
{
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    memset(&peer, 0, sizeof peer);
    peer.fd = sv[1];
    peer.script = script;
    peer.hello_version = BN_RPC_VERSION;
    peer.max_message = BN_RPC_MAX_FRAME_DEFAULT;
    sem_init(&peer.token_sent, 0, 0);
    cr_assert_eq(bn_rpc_framer_init(&peer.fr, NULL), 0);
    msgpack_sbuffer_init(&peer.sb);
    msgpack_packer_init(&peer.pk, &peer.sb, msgpack_sbuffer_write);
    cr_assert_eq(pthread_create(&peer.th, NULL, peer_main, &peer), 0);
    struct bnc_options opt;
    bnc_options_init(&opt);
    opt.client_name = "test_client";
    struct bnc_error err = {0};
    conn = NULL;
    int rc = bnc_connect_fd(&conn, sv[0], &opt, &err);
    if (peer.hello_version == BN_RPC_VERSION)
        cr_assert_eq(rc, 0, "connect: %s", err.message);
}

/* Close the client, wait for the peer, and report what it saw. */
static void finish(void)
{
    bnc_close(conn);
    conn = NULL;
    pthread_join(peer.th, NULL);
    close(peer.fd);
    bn_rpc_framer_destroy(&peer.fr);
    msgpack_sbuffer_destroy(&peer.sb);
    sem_destroy(&peer.token_sent);
    cr_expect_eq(peer.failure[0], '\0', "peer: %s", peer.failure);
}

/* ---- handshake and ping ---- */

static void script_ping(struct peer *p)
{
    if (!peer_hello(p))
        return;
    for (int i = 0; i < 3; i++) {
        if (!peer_expect(p, BN_RPC_PING))
            return;
        peer_result(p, p->m.msgid, BN_RPC_PING, NULL);
    }
}

Test(client, hello_and_ping, .timeout = 20)
{
    start(script_ping);
    const struct bnc_server_info *info = bnc_server_info(conn);
    cr_expect_eq(info->version, 1);
    cr_expect_str_eq(info->server, "test-peer 1");
    cr_expect_eq(info->pid, 4242);
    cr_expect_eq(info->n_capabilities, 4);
    cr_expect(bnc_server_has(conn, "chat-session"));
    cr_expect(!bnc_server_has(conn, "teleport"));
    struct bnc_error err;
    for (int i = 0; i < 3; i++)
        cr_expect_eq(bnc_ping(conn, &err), 0, "%s", err.message);
    finish();
}

static void script_old_server(struct peer *p)
{
    peer_hello(p);
}

Test(client, version_mismatch, .timeout = 20)
{
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    memset(&peer, 0, sizeof peer);
    peer.fd = sv[1];
    peer.script = script_old_server;
    peer.hello_version = 2;
    bn_rpc_framer_init(&peer.fr, NULL);
    msgpack_sbuffer_init(&peer.sb);
    msgpack_packer_init(&peer.pk, &peer.sb, msgpack_sbuffer_write);
    sem_init(&peer.token_sent, 0, 0);
    pthread_create(&peer.th, NULL, peer_main, &peer);
    struct bnc_error err;
    cr_expect_eq(bnc_connect_fd(&conn, sv[0], NULL, &err), -1);
    cr_expect_eq(err.code, BNC_E_UNSUPPORTED_VERSION);
    cr_expect_not_null(strstr(err.message, "protocol version 2"), "%s", err.message);
    cr_expect_null(conn);
    finish();
}

static void script_hello_refused(struct peer *p)
{
    if (peer_expect(p, BN_RPC_HELLO))
        peer_error(p, &p->m.msgid, BN_RPC_E_SHUTTING_DOWN, "bitnetd is shutting down");
}

Test(client, hello_refused, .timeout = 20)
{
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    memset(&peer, 0, sizeof peer);
    peer.fd = sv[1];
    peer.script = script_hello_refused;
    peer.hello_version = 0; /* start() would assert success: set up by hand */
    bn_rpc_framer_init(&peer.fr, NULL);
    msgpack_sbuffer_init(&peer.sb);
    msgpack_packer_init(&peer.pk, &peer.sb, msgpack_sbuffer_write);
    sem_init(&peer.token_sent, 0, 0);
    pthread_create(&peer.th, NULL, peer_main, &peer);
    struct bnc_error err;
    cr_expect_eq(bnc_connect_fd(&conn, sv[0], NULL, &err), -1);
    cr_expect_eq(err.code, BNC_E_SHUTTING_DOWN);
    cr_expect_str_eq(err.message, "bitnetd is shutting down");
    finish();
}

/* ---- streaming ---- */

struct collect {
    char text[256];
    int32_t ids[32];
    int n;
    int stop_at; /* return 1 on this token (1-based); 0: never */
    sem_t *notify; /* posted on the first token */
};

static int on_token(void *user, const char *text, size_t len, int32_t token)
{
    struct collect *c = user;
    cr_assert_eq(strlen(text), len);
    strncat(c->text, text, sizeof c->text - strlen(c->text) - 1);
    c->ids[c->n++] = token;
    if (c->n == 1 && c->notify)
        sem_post(c->notify);
    return c->stop_at && c->n >= c->stop_at;
}

static void script_stream(struct peer *p)
{
    if (!peer_hello(p) || !peer_expect(p, BN_RPC_GENERATE))
        return;
    const struct bn_rpc_generate_params *g = (const void *)p->params;
    if (strcmp(g->model, "2b4t") || strcmp(g->prompt, "Hi") || !g->stream || g->max_tokens != 8 ||
        g->options.top_k != 5 || g->options.temperature != 0 || g->n_stop != 1 || strcmp(g->stop[0], "\n"))
        peer_fail(p, "generate params not as sent");
    uint32_t id = p->m.msgid;
    peer_token(p, id + 100, "stale", 9); /* another request's token: not ours */
    peer_token(p, id, "He", 1);
    peer_token(p, id, "llo", 2);
    peer_token(p, id, "", 3); /* half a character so far */
    peer_token(p, id, " w\xc3\xb6rld", 4);
    struct bn_rpc_cancel_result stale = {.cancelled = false};
    peer_result(p, id + 100, BN_RPC_CANCEL, &stale); /* another request's answer */
    struct bn_rpc_generate_result r = {.text = "Hello w\xc3\xb6rld",
                                       .stats = {.prompt_tokens = 3,
                                                 .generated_tokens = 4,
                                                 .prefill_seconds = 0.01,
                                                 .decode_seconds = 0.1,
                                                 .decode_tokens_per_s = 40,
                                                 .stop_reason = BN_RPC_STOP_LENGTH}};
    peer_result(p, id, BN_RPC_GENERATE, &r);
}

Test(client, streaming_generate, .timeout = 20)
{
    start(script_stream);
    struct bnc_generate_params p;
    bnc_generate_params_init(&p);
    cr_expect_eq(p.options.top_p, 0.95, "defaults come from the protocol");
    p.model = "2b4t";
    p.prompt = "Hi";
    p.max_tokens = 8;
    p.options.top_k = 5;
    p.options.temperature = 0;
    const char *stop[] = {"\n"};
    p.stop = stop;
    p.n_stop = 1;
    struct collect c = {0};
    struct bnc_generate_result r;
    struct bnc_error err;
    cr_assert_eq(bnc_generate(conn, &p, on_token, &c, &r, &err), 0, "%s", err.message);
    cr_expect_eq(c.n, 4);
    cr_expect_str_eq(c.text, "Hello w\xc3\xb6rld");
    cr_expect_eq(c.ids[0], 1);
    cr_expect_eq(c.ids[3], 4);
    cr_expect_str_eq(r.text, "Hello w\xc3\xb6rld");
    cr_expect_eq(r.stats.generated_tokens, 4);
    cr_expect_eq(r.stats.stop_reason, BNC_STOP_LENGTH);
    cr_expect_str_eq(bnc_stop_reason_name(r.stats.stop_reason), "length");
    cr_expect_null(r.session);
    bnc_result_free(&r);
    bnc_result_free(&r); /* twice is harmless */
    finish();
}

static void script_cancel(struct peer *p)
{
    if (!peer_hello(p) || !peer_expect(p, BN_RPC_GENERATE))
        return;
    uint32_t id = p->m.msgid;
    for (int i = 0; i < 3; i++)
        peer_token(p, id, "tok ", 10 + i);
    sem_post(&p->token_sent);
    /* wait for the client's cancel of this request */
    if (!peer_expect(p, BN_RPC_CANCEL))
        return;
    if (p->seen_cancel_target != id)
        peer_fail(p, "cancel names msgid %u, not %u", p->seen_cancel_target, id);
    struct bn_rpc_cancel_result cr = {.cancelled = true};
    peer_result(p, p->m.msgid, BN_RPC_CANCEL, &cr);
    peer_token(p, id, "late ", 20); /* sent before the server saw the cancel */
    struct bn_rpc_generate_result r = {.text = "tok tok tok late ",
                                       .stats = {.generated_tokens = 4, .stop_reason = BN_RPC_STOP_CANCELLED}};
    peer_result(p, id, BN_RPC_GENERATE, &r);
    if (!peer_expect(p, BN_RPC_PING)) /* the connection goes on */
        return;
    peer_result(p, p->m.msgid, BN_RPC_PING, NULL);
}

Test(client, callback_cancels, .timeout = 20)
{
    start(script_cancel);
    struct bnc_generate_params p;
    bnc_generate_params_init(&p);
    p.model = "m";
    p.prompt = "x";
    struct collect c = {.stop_at = 2};
    struct bnc_generate_result r;
    struct bnc_error err;
    cr_assert_eq(bnc_generate(conn, &p, on_token, &c, &r, &err), 0, "%s", err.message);
    cr_expect_eq(c.n, 2, "no callback after it asked to stop");
    cr_expect_eq(r.stats.stop_reason, BNC_STOP_CANCELLED);
    cr_expect_str_eq(r.text, "tok tok tok late ");
    bnc_result_free(&r);
    cr_expect_eq(bnc_ping(conn, &err), 0, "%s", err.message);
    finish();
}

static void *cancel_later(void *arg)
{
    sem_t *s = arg;
    sem_wait(s);
    bnc_cancel(conn);
    return NULL;
}

Test(client, cancel_from_another_thread, .timeout = 20)
{
    start(script_cancel);
    sem_t first;
    sem_init(&first, 0, 0);
    pthread_t th;
    pthread_create(&th, NULL, cancel_later, &first);
    struct bnc_generate_params p;
    bnc_generate_params_init(&p);
    p.model = "m";
    p.prompt = "x";
    struct collect c = {.notify = &first};
    struct bnc_generate_result r;
    struct bnc_error err;
    cr_assert_eq(bnc_generate(conn, &p, on_token, &c, &r, &err), 0, "%s", err.message);
    pthread_join(th, NULL);
    cr_expect_eq(c.n, 4, "tokens keep coming until the server stops");
    cr_expect_eq(r.stats.stop_reason, BNC_STOP_CANCELLED);
    bnc_result_free(&r);
    cr_expect_eq(bnc_ping(conn, &err), 0, "%s", err.message);
    sem_destroy(&first);
    finish();
}

Test(client, cancel_without_a_call_is_harmless, .timeout = 20)
{
    start(script_ping);
    bnc_cancel(conn);
    bnc_cancel(NULL);
    struct bnc_error err;
    for (int i = 0; i < 3; i++)
        cr_expect_eq(bnc_ping(conn, &err), 0, "%s", err.message);
    finish();
}

/* ---- timeouts and errors ---- */

static void script_timeout(struct peer *p)
{
    if (!peer_hello(p) || !peer_expect(p, BN_RPC_PING))
        return;
    uint32_t late = p->m.msgid;
    /* no answer: the client times out and cancels */
    if (!peer_expect(p, BN_RPC_CANCEL))
        return;
    if (p->seen_cancel_target != late)
        peer_fail(p, "cancel names %u, not %u", p->seen_cancel_target, late);
    peer_result(p, late, BN_RPC_PING, NULL); /* the late answer: must be discarded */
    if (!peer_expect(p, BN_RPC_PING))
        return;
    peer_result(p, p->m.msgid, BN_RPC_PING, NULL);
}

Test(client, timeout_cancels_and_connection_survives, .timeout = 20)
{
    start(script_timeout);
    bnc_set_timeout(conn, 50);
    struct bnc_error err;
    cr_expect_eq(bnc_ping(conn, &err), -1);
    cr_expect_eq(err.code, BNC_E_TIMEOUT);
    cr_expect_not_null(strstr(err.message, "ping"), "%s", err.message);
    bnc_set_timeout(conn, -1);
    cr_expect_eq(bnc_ping(conn, &err), 0, "%s", err.message);
    finish();
}

static void script_errors(struct peer *p)
{
    if (!peer_hello(p))
        return;
    if (!peer_expect(p, BN_RPC_GENERATE))
        return;
    peer_error(p, &p->m.msgid, BN_RPC_E_MODEL_NOT_FOUND, "model \"nope\" not found: load it first");
    if (!peer_expect(p, BN_RPC_GENERATE))
        return;
    peer_error(p, &p->m.msgid, BN_RPC_E_BUSY, NULL);
    if (!peer_expect(p, BN_RPC_LOAD))
        return;
    peer_error(p, &p->m.msgid, -1234, "a code from a newer server");
    if (!peer_expect(p, BN_RPC_PING))
        return;
    peer_result(p, p->m.msgid, BN_RPC_PING, NULL);
}

Test(client, server_errors_map_to_codes, .timeout = 20)
{
    start(script_errors);
    struct bnc_generate_params p;
    bnc_generate_params_init(&p);
    p.model = "nope";
    p.prompt = "x";
    struct bnc_generate_result r;
    struct bnc_error err;
    cr_expect_eq(bnc_generate(conn, &p, NULL, NULL, &r, &err), -1);
    cr_expect_eq(err.code, BNC_E_MODEL_NOT_FOUND);
    cr_expect_str_eq(err.message, "model \"nope\" not found: load it first");
    cr_expect_str_eq(bnc_code_name(err.code), "model_not_found");
    bnc_result_free(&r); /* a failed result is zeroed: freeing is harmless */
    cr_expect_eq(bnc_generate(conn, &p, NULL, NULL, &r, &err), -1);
    cr_expect_eq(err.code, BNC_E_BUSY);
    struct bnc_load_params lp;
    bnc_load_params_init(&lp);
    lp.model = "/x.gguf";
    struct bnc_load_result lr;
    cr_expect_eq(bnc_load(conn, &lp, NULL, NULL, &lr, &err), -1);
    cr_expect_eq(err.code, -1234);
    cr_expect_eq(bnc_ping(conn, &err), 0, "errors are not fatal: %s", err.message);
    finish();
}

static void script_close(struct peer *p)
{
    if (peer_hello(p) && peer_expect(p, BN_RPC_PING))
        shutdown(p->fd, SHUT_RDWR);
}

Test(client, server_closes, .timeout = 20)
{
    start(script_close);
    struct bnc_error err;
    cr_expect_eq(bnc_ping(conn, &err), -1);
    cr_expect_eq(err.code, BNC_E_IO);
    cr_expect_not_null(strstr(err.message, "closed"), "%s", err.message);
    cr_expect_eq(bnc_ping(conn, &err), -1);
    cr_expect_eq(err.code, BNC_E_IO, "a broken connection stays broken");
    finish();
}

static void script_garbage(struct peer *p)
{
    if (peer_hello(p) && peer_expect(p, BN_RPC_PING)) {
        ssize_t w = write(p->fd, "HTTP/1.1 400 Bad Request\r\n", 26);
        (void)w;
    }
}

Test(client, server_sends_garbage, .timeout = 20)
{
    start(script_garbage);
    struct bnc_error err;
    cr_expect_eq(bnc_ping(conn, &err), -1);
    cr_expect_eq(err.code, BNC_E_PROTOCOL);
    cr_expect_not_null(strstr(err.message, "must start with a msgpack array"), "%s", err.message);
    finish();
}

static void script_framing_error(struct peer *p)
{
    if (peer_hello(p) && peer_expect(p, BN_RPC_PING))
        peer_error(p, NULL, BN_RPC_E_MESSAGE_TOO_LARGE, "message too large: over the limit of 16777216");
}

Test(client, framing_error_from_server_is_fatal, .timeout = 20)
{
    start(script_framing_error);
    struct bnc_error err;
    cr_expect_eq(bnc_ping(conn, &err), -1);
    cr_expect_eq(err.code, BNC_E_MESSAGE_TOO_LARGE);
    cr_expect_eq(bnc_ping(conn, &err), -1);
    cr_expect_eq(err.code, BNC_E_MESSAGE_TOO_LARGE);
    finish();
}

static void script_small_server(struct peer *p)
{
    p->max_message = 1000;
    if (!peer_hello(p) || !peer_expect(p, BN_RPC_PING)) /* the big generate never arrives */
        return;
    peer_result(p, p->m.msgid, BN_RPC_PING, NULL);
}

Test(client, request_over_the_server_cap_is_refused_locally, .timeout = 20)
{
    start(script_small_server);
    char prompt[2000];
    memset(prompt, 'a', sizeof prompt - 1);
    prompt[sizeof prompt - 1] = '\0';
    struct bnc_generate_params p;
    bnc_generate_params_init(&p);
    p.model = "m";
    p.prompt = prompt;
    struct bnc_generate_result r;
    struct bnc_error err;
    cr_expect_eq(bnc_generate(conn, &p, NULL, NULL, &r, &err), -1);
    cr_expect_eq(err.code, BNC_E_MESSAGE_TOO_LARGE);
    cr_expect_not_null(strstr(err.message, "limit of 1000 bytes"), "%s", err.message);
    cr_expect_eq(bnc_ping(conn, &err), 0, "%s", err.message);
    finish();
}

/* ---- every other method: conversions both ways ---- */

static void script_methods(struct peer *p)
{
    if (!peer_hello(p))
        return;
    /* load with progress */
    if (!peer_expect(p, BN_RPC_LOAD))
        return;
    const struct bn_rpc_load_params *lp = (const void *)p->params;
    if (strcmp(lp->model, "/m/2b4t.gguf") || strcmp(lp->name, "2b4t") || lp->ctx != 2048 || !lp->progress ||
        !lp->has_keep_alive || lp->keep_alive != -1)
        peer_fail(p, "load params not as sent");
    uint32_t id = p->m.msgid;
    for (int i = 1; i <= 2; i++) {
        struct bn_rpc_progress_note n = {.msgid = id, .done = i * 500, .total = 1000};
        bn_rpc_encode_note(&p->pk, BN_RPC_NOTE_PROGRESS, &n);
        peer_flush(p);
    }
    struct bn_rpc_load_result lr = {.name = "2b4t", .path = "/m/2b4t.gguf", .bytes = 1000,
                                    .loaded_by = BN_RPC_LOADED_BY_IO_URING, .load_seconds = 0.5};
    peer_result(p, id, BN_RPC_LOAD, &lr);
    /* ps */
    if (!peer_expect(p, BN_RPC_PS))
        return;
    struct bn_rpc_model_status ms[2] = {
        {.name = "a", .path = "/a", .bytes = 1, .loaded_by = BN_RPC_LOADED_BY_REATTACH, .clients = 2, .keep_alive = -1},
        {.name = "b", .path = "/b", .bytes = 2, .loaded_by = BN_RPC_LOADED_BY_PREAD, .idle_seconds = 3, .ctx = 4096}};
    struct bn_rpc_ps_result pr = {.models = ms, .n_models = 2};
    peer_result(p, p->m.msgid, BN_RPC_PS, &pr);
    /* list */
    if (!peer_expect(p, BN_RPC_LIST))
        return;
    struct bn_rpc_model_entry me[1] = {{.name = "2b4t", .path = "/m/2b4t.gguf", .bytes = 7, .loaded = true}};
    struct bn_rpc_list_result li = {.models = me, .n_models = 1};
    peer_result(p, p->m.msgid, BN_RPC_LIST, &li);
    /* show */
    if (!peer_expect(p, BN_RPC_SHOW))
        return;
    const struct bn_rpc_show_params *sp = (const void *)p->params;
    if (strcmp(sp->model, "2b4t") || sp->ctx != 4096)
        peer_fail(p, "show params not as sent");
    struct bn_rpc_tensor_format tf[1] = {{.type = "I2_S", .tensors = 210, .bytes = 500}};
    struct bn_rpc_kv kv[1] = {{"general.architecture", "bitnet-b1.58"}};
    struct bn_rpc_show_result sr = {.name = "2b4t", .path = "/m", .architecture = "bitnet-b1.58",
                                    .n_layers = 30, .ctx = 4096, .kv_bytes = 123, .weights_bytes = 456,
                                    .formats = tf, .n_formats = 1, .metadata = kv, .n_metadata = 1};
    peer_result(p, p->m.msgid, BN_RPC_SHOW, &sr);
    /* chat */
    if (!peer_expect(p, BN_RPC_CHAT))
        return;
    const struct bn_rpc_chat_params *cp = (const void *)p->params;
    if (cp->n_messages != 2 || cp->messages[0].role != BN_RPC_ROLE_SYSTEM ||
        cp->messages[1].role != BN_RPC_ROLE_USER || strcmp(cp->messages[1].content, "hi") ||
        strcmp(cp->session, "s1") || cp->stream)
        peer_fail(p, "chat params not as sent");
    struct bn_rpc_generate_result gr = {.text = "hello", .session = "s1",
                                        .stats = {.prompt_tokens = 20, .cached_tokens = 15, .stop_reason = BN_RPC_STOP_EOS}};
    peer_result(p, p->m.msgid, BN_RPC_CHAT, &gr);
    /* tokenize / detokenize */
    if (!peer_expect(p, BN_RPC_TOKENIZE))
        return;
    const struct bn_rpc_tokenize_params *tp = (const void *)p->params;
    if (strcmp(tp->text, "hi") || tp->add_special || !tp->parse_special)
        peer_fail(p, "tokenize params not as sent");
    static const int32_t ids[] = {128000, 6151};
    struct bn_rpc_tokenize_result tr = {.tokens = ids, .n_tokens = 2};
    peer_result(p, p->m.msgid, BN_RPC_TOKENIZE, &tr);
    if (!peer_expect(p, BN_RPC_DETOKENIZE))
        return;
    const struct bn_rpc_detokenize_params *dp = (const void *)p->params;
    if (dp->n_tokens != 2 || dp->tokens[1] != 6151)
        peer_fail(p, "detokenize params not as sent");
    struct bn_rpc_detokenize_result dr = {.text = "hi"};
    peer_result(p, p->m.msgid, BN_RPC_DETOKENIZE, &dr);
    /* status, metrics, unload, shutdown */
    if (!peer_expect(p, BN_RPC_STATUS))
        return;
    struct bn_rpc_status_result st = {.active_sequences = 3, .queued = 1, .kv_bytes = 99, .models = 2,
                                      .parallel = 4, .max_queue = 16, .clients = 5, .uptime_seconds = 12.5};
    peer_result(p, p->m.msgid, BN_RPC_STATUS, &st);
    if (!peer_expect(p, BN_RPC_METRICS))
        return;
    struct bn_rpc_metrics_result mr = {.text = "# TYPE bitnetd_requests_total counter\nbitnetd_requests_total 7\n"};
    peer_result(p, p->m.msgid, BN_RPC_METRICS, &mr);
    if (!peer_expect(p, BN_RPC_UNLOAD))
        return;
    if (strcmp(((const struct bn_rpc_unload_params *)(const void *)p->params)->name, "2b4t"))
        peer_fail(p, "unload name");
    struct bn_rpc_unload_result ur = {.name = "2b4t", .bytes = 1000};
    peer_result(p, p->m.msgid, BN_RPC_UNLOAD, &ur);
    if (!peer_expect(p, BN_RPC_SHUTDOWN))
        return;
    const struct bn_rpc_shutdown_params *sd = (const void *)p->params;
    if (!sd->has_grace_seconds || sd->grace_seconds != 5)
        peer_fail(p, "shutdown grace");
    peer_result(p, p->m.msgid, BN_RPC_SHUTDOWN, NULL);
    if (!peer_expect(p, BN_RPC_SHUTDOWN))
        return;
    if (((const struct bn_rpc_shutdown_params *)(const void *)p->params)->has_grace_seconds)
        peer_fail(p, "shutdown without grace sent one");
    peer_result(p, p->m.msgid, BN_RPC_SHUTDOWN, NULL);
}

static int progress_calls;
static int on_progress(void *user, int64_t done, int64_t total)
{
    (void)user;
    progress_calls++;
    cr_expect_eq(done, progress_calls * 500);
    cr_expect_eq(total, 1000);
    return 0;
}

Test(client, every_method, .timeout = 20)
{
    start(script_methods);
    struct bnc_error err;

    struct bnc_load_params lp;
    bnc_load_params_init(&lp);
    lp.model = "/m/2b4t.gguf";
    lp.name = "2b4t";
    lp.ctx = 2048;
    lp.has_keep_alive = true;
    lp.keep_alive = -1;
    struct bnc_load_result lr;
    cr_assert_eq(bnc_load(conn, &lp, on_progress, NULL, &lr, &err), 0, "%s", err.message);
    cr_expect_eq(progress_calls, 2);
    cr_expect_str_eq(lr.loaded_by, "io_uring");
    cr_expect_eq(lr.bytes, 1000);
    bnc_result_free(&lr);

    struct bnc_ps_result pr;
    cr_assert_eq(bnc_ps(conn, &pr, &err), 0, "%s", err.message);
    cr_assert_eq(pr.n_models, 2);
    cr_expect_str_eq(pr.models[0].loaded_by, "reattach");
    cr_expect_eq(pr.models[0].clients, 2);
    cr_expect_eq(pr.models[0].keep_alive, -1);
    cr_expect_str_eq(pr.models[1].name, "b");
    cr_expect_str_eq(pr.models[1].loaded_by, "pread");
    cr_expect_eq(pr.models[1].idle_seconds, 3);
    cr_expect_eq(pr.models[1].ctx, 4096);
    bnc_result_free(&pr);

    struct bnc_list_result li;
    cr_assert_eq(bnc_list(conn, &li, &err), 0, "%s", err.message);
    cr_assert_eq(li.n_models, 1);
    cr_expect(li.models[0].loaded);
    cr_expect_eq(li.models[0].bytes, 7);
    bnc_result_free(&li);

    struct bnc_show_result sr;
    cr_assert_eq(bnc_show(conn, "2b4t", 4096, &sr, &err), 0, "%s", err.message);
    cr_expect_eq(sr.n_layers, 30);
    cr_expect_eq(sr.kv_bytes, 123);
    cr_expect_eq(sr.weights_bytes, 456);
    cr_assert_eq(sr.n_formats, 1);
    cr_expect_str_eq(sr.formats[0].type, "I2_S");
    cr_assert_eq(sr.n_metadata, 1);
    cr_expect_str_eq(sr.metadata[0].value, "bitnet-b1.58");
    bnc_result_free(&sr);

    struct bnc_chat_params cp;
    bnc_chat_params_init(&cp);
    struct bnc_chat_message msgs[] = {{BNC_ROLE_SYSTEM, "be brief"}, {BNC_ROLE_USER, "hi"}};
    cp.model = "2b4t";
    cp.messages = msgs;
    cp.n_messages = 2;
    cp.session = "s1";
    struct bnc_generate_result gr;
    cr_assert_eq(bnc_chat(conn, &cp, NULL, NULL, &gr, &err), 0, "%s", err.message);
    cr_expect_str_eq(gr.text, "hello");
    cr_expect_str_eq(gr.session, "s1");
    cr_expect_eq(gr.stats.cached_tokens, 15);
    cr_expect_eq(gr.stats.stop_reason, BNC_STOP_EOS);
    bnc_result_free(&gr);

    struct bnc_tokens_result tr;
    cr_assert_eq(bnc_tokenize(conn, "2b4t", "hi", false, true, &tr, &err), 0, "%s", err.message);
    cr_assert_eq(tr.n_tokens, 2);
    cr_expect_eq(tr.tokens[0], 128000);
    struct bnc_text_result dr;
    cr_assert_eq(bnc_detokenize(conn, "2b4t", tr.tokens, tr.n_tokens, &dr, &err), 0, "%s", err.message);
    cr_expect_str_eq(dr.text, "hi");
    bnc_result_free(&tr);
    bnc_result_free(&dr);

    struct bnc_status_result st;
    cr_assert_eq(bnc_status(conn, &st, &err), 0, "%s", err.message);
    cr_expect_eq(st.active_sequences, 3);
    cr_expect_eq(st.queued, 1);
    cr_expect_eq(st.kv_bytes, 99);
    cr_expect_eq(st.models, 2);
    cr_expect_eq(st.uptime_seconds, 12.5);
    bnc_result_free(&st);

    struct bnc_text_result mr;
    cr_assert_eq(bnc_metrics(conn, &mr, &err), 0, "%s", err.message);
    cr_expect_not_null(strstr(mr.text, "bitnetd_requests_total 7"));
    bnc_result_free(&mr);

    struct bnc_unload_result ur;
    cr_assert_eq(bnc_unload(conn, "2b4t", &ur, &err), 0, "%s", err.message);
    cr_expect_eq(ur.bytes, 1000);
    bnc_result_free(&ur);
    cr_expect_eq(bnc_shutdown(conn, 5, &err), 0, "%s", err.message);
    cr_expect_eq(bnc_shutdown(conn, -1, &err), 0, "%s", err.message);
    finish();
}

/* ---- socket paths and connect ---- */

Test(client, default_socket_path)
{
    char buf[128];
    setenv("BITNET_SOCKET", "/tmp/x.sock", 1);
    cr_expect_eq(bnc_default_socket_path(buf, sizeof buf), 11);
    cr_expect_str_eq(buf, "/tmp/x.sock");
    unsetenv("BITNET_SOCKET");
    setenv("XDG_RUNTIME_DIR", "/run/user/1000", 1);
    bnc_default_socket_path(buf, sizeof buf);
    cr_expect_str_eq(buf, "/run/user/1000/bitnetd.sock");
    unsetenv("XDG_RUNTIME_DIR");
    bnc_default_socket_path(buf, sizeof buf);
    cr_expect_str_eq(buf, "/run/bitnetd/bitnetd.sock");
    cr_expect_eq(bnc_default_socket_path(buf, 5), -1);
}

Test(client, connect_failures)
{
    struct bnc_options opt;
    bnc_options_init(&opt);
    opt.socket_path = "/nonexistent-dir/bitnetd.sock";
    struct bnc_error err;
    struct bnc_conn *c;
    cr_expect_eq(bnc_connect(&c, &opt, &err), -1);
    cr_expect_eq(err.code, BNC_E_CONNECT);
    cr_expect_not_null(strstr(err.message, "/nonexistent-dir/bitnetd.sock"), "%s", err.message);
    cr_expect_not_null(strstr(err.message, "is bitnetd running?"), "%s", err.message);
    char longpath[300];
    memset(longpath, 'a', sizeof longpath - 1);
    longpath[sizeof longpath - 1] = '\0';
    opt.socket_path = longpath;
    cr_expect_eq(bnc_connect(&c, &opt, &err), -1);
    cr_expect_not_null(strstr(err.message, "longer than"), "%s", err.message);
}

static int listen_fd;
static void script_accept_then_ping(struct peer *p)
{
    p->fd = accept(listen_fd, NULL, NULL);
    if (p->fd < 0) {
        peer_fail(p, "accept: %s", strerror(errno));
        return;
    }
    script_ping(p);
}

Test(client, connect_by_path, .timeout = 20)
{
    /* $TMPDIR when short enough for sun_path (108 bytes), else /tmp */
    const char *tmp = getenv("TMPDIR");
    char tmpl[64];
    if (!tmp || !*tmp || strlen(tmp) > 40)
        tmp = "/tmp";
    snprintf(tmpl, sizeof tmpl, "%s/bnc-test-XXXXXX", tmp);
    char *d = mkdtemp(tmpl);
    cr_assert_not_null(d);
    char path[96];
    snprintf(path, sizeof path, "%s/bitnetd.sock", d);
    listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    cr_assert_eq(bind(listen_fd, (struct sockaddr *)&sa, sizeof sa), 0);
    cr_assert_eq(listen(listen_fd, 4), 0);

    memset(&peer, 0, sizeof peer);
    peer.script = script_accept_then_ping;
    peer.hello_version = BN_RPC_VERSION;
    peer.max_message = BN_RPC_MAX_FRAME_DEFAULT;
    sem_init(&peer.token_sent, 0, 0);
    bn_rpc_framer_init(&peer.fr, NULL);
    msgpack_sbuffer_init(&peer.sb);
    msgpack_packer_init(&peer.pk, &peer.sb, msgpack_sbuffer_write);
    pthread_create(&peer.th, NULL, peer_main, &peer);

    setenv("BITNET_SOCKET", path, 1); /* the default path: no socket_path option */
    struct bnc_error err;
    cr_assert_eq(bnc_connect(&conn, NULL, &err), 0, "%s", err.message);
    cr_expect_eq(bnc_ping(conn, &err), 0, "%s", err.message);
    cr_expect_eq(bnc_ping(conn, &err), 0, "%s", err.message);
    cr_expect_eq(bnc_ping(conn, &err), 0, "%s", err.message);
    finish();
    close(listen_fd);
    unlink(path);
    rmdir(d);
}
