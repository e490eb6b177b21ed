/* daemon/metrics_http.c — GET /metrics for Prometheus scrapers: a minimal HTTP/1.1
 * responder on the libuv loop.  It reads one request head (bounded), answers it and
 * closes the connection; slow or silent clients are dropped after a timeout.  It binds
 * a loopback address unless the config explicitly allows another one.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"

#define HTTP_HEAD_MAX 8192          /* bytes of a request head */
#define HTTP_TIMEOUT_MS 10000       /* a client must send its request within this */
#define HTTP_CLIENTS_MAX 64         /* scrapers connected at once */

struct metrics_http {
    uv_tcp_t server;
    uv_loop_t *loop;
    const struct metrics *m;
    int port;
    unsigned clients;
    bool closing;
    bool server_closed;
};

struct http_client {
    uv_tcp_t tcp;
    uv_timer_t timer;
    struct metrics_http *h;
    char head[HTTP_HEAD_MAX];
    size_t len;
    bool answered;
    int open_handles;
};

struct http_write {
    uv_write_t w;
    char *body;
};

static void maybe_free(struct metrics_http *h)
{
    if (h->server_closed && h->clients == 0)
        free(h);
}

static void client_handle_closed(uv_handle_t *hd)
{
    struct http_client *c = hd->data;
    if (--c->open_handles == 0) {
        struct metrics_http *h = c->h;
        h->clients--;
        free(c);
        maybe_free(h);
    }
}

static void client_close(struct http_client *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, client_handle_closed);
    if (!uv_is_closing((uv_handle_t *)&c->timer))
        uv_close((uv_handle_t *)&c->timer, client_handle_closed);
}

static void on_written(uv_write_t *w, int status)
{
    struct http_write *hw = (struct http_write *)w;
    struct http_client *c = w->data;
    free(hw->body);
    free(hw);
    client_close(c);
}

static void respond(struct http_client *c, int status, const char *reason, const char *ctype, const char *body,
                    size_t body_len)
{
    c->answered = true;
    uv_read_stop((uv_stream_t *)&c->tcp);
    char head[256];
    int hl = snprintf(head, sizeof(head),
                      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                      status, reason, ctype, body_len);
    struct http_write *hw = malloc(sizeof(*hw));
    char *all = malloc((size_t)hl + body_len);
    if (!hw || !all) {
        free(hw);
        free(all);
        client_close(c);
        return;
    }
    memcpy(all, head, (size_t)hl);
    memcpy(all + hl, body, body_len);
    hw->body = all;
    hw->w.data = c;
    uv_buf_t b = uv_buf_init(all, (unsigned)((size_t)hl + body_len));
    if (uv_write(&hw->w, (uv_stream_t *)&c->tcp, &b, 1, on_written) < 0) {
        free(all);
        free(hw);
        client_close(c);
    }
}

static void respond_text(struct http_client *c, int status, const char *reason, const char *text)
{
    respond(c, status, reason, "text/plain; charset=utf-8", text, strlen(text));
}

static void handle_request(struct http_client *c)
{
    /* Request line: METHOD SP TARGET SP HTTP/1.x */
    char *eol = memchr(c->head, '\r', c->len);
    if (!eol) {
        respond_text(c, 400, "Bad Request", "bad request line\n");
        return;
    }
    *eol = 0;
    char method[16], target[1024], version[16];
    if (sscanf(c->head, "%15s %1023s %15s", method, target, version) != 3 || strncmp(version, "HTTP/1.", 7) != 0) {
        respond_text(c, 400, "Bad Request", "bad request line\n");
        return;
    }
    char *q = strchr(target, '?');
    if (q)
        *q = 0;
    if (strcmp(target, "/metrics") != 0) {
        respond_text(c, 404, "Not Found", "only /metrics is served here\n");
        return;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        respond_text(c, 405, "Method Not Allowed", "use GET\n");
        return;
    }
    char *text = NULL;
    size_t len = 0;
    if (metrics_render_prometheus(c->h->m, &text, &len) < 0) {
        respond_text(c, 500, "Internal Server Error", "out of memory\n");
        return;
    }
    respond(c, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", text,
            strcmp(method, "HEAD") == 0 ? 0 : len);
    free(text);
}

static void on_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *buf)
{
    struct http_client *c = hd->data;
    buf->base = c->head + c->len;
    buf->len = sizeof(c->head) - 1 - c->len;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct http_client *c = s->data;
    if (c->answered)
        return;
    if (n < 0) {
        client_close(c);
        return;
    }
    c->len += (size_t)n;
    c->head[c->len] = 0;
    if (strstr(c->head, "\r\n\r\n") || strstr(c->head, "\n\n")) {
        uv_timer_stop(&c->timer);
        handle_request(c);
    } else if (c->len >= sizeof(c->head) - 1) {
        respond_text(c, 431, "Request Header Fields Too Large", "request head too large\n");
    }
}

static void on_timeout(uv_timer_t *t)
{
    client_close(t->data);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct metrics_http *h = server->data;
    if (status < 0)
        return;
    struct http_client *c = calloc(1, sizeof(*c));
    if (!c)
        return;
    c->h = h;
    uv_tcp_init(h->loop, &c->tcp);
    uv_timer_init(h->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->open_handles = 2;
    h->clients++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0 || h->clients > HTTP_CLIENTS_MAX) {
        client_close(c);
        return;
    }
    uv_timer_start(&c->timer, on_timeout, HTTP_TIMEOUT_MS, 0);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static bool is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6)
        return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
    return false;
}

int metrics_http_start(struct metrics_http **out, uv_loop_t *loop, const struct metrics *m, const char *listen,
                       bool allow_remote, struct bn_err *err)
{
    /* HOST:PORT, HOST may be [v6]. */
    char host[256];
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen || (size_t)(colon - listen) >= sizeof(host))
        return bn_errf(err, "metrics_listen: '%s' is not HOST:PORT", listen);
    size_t hl = (size_t)(colon - listen);
    memcpy(host, listen, hl);
    host[hl] = 0;
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = 0;
    }
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535)
        return bn_errf(err, "metrics_listen: port '%s' is not 0..65535", colon + 1);
    struct sockaddr_storage ss;
    if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)&ss) != 0)
        return bn_errf(err, "metrics_listen: '%s' is not a numeric IPv4 or IPv6 address", host);
    if (!allow_remote && !is_loopback((struct sockaddr *)&ss))
        return bn_errf(err, "metrics_listen: %s is not a loopback address; set metrics_allow_remote = true "
                            "to serve metrics beyond this machine",
                       host);
    struct metrics_http *h = calloc(1, sizeof(*h));
    if (!h)
        return bn_errf(err, "out of memory");
    h->loop = loop;
    h->m = m;
    uv_tcp_init(loop, &h->server);
    h->server.data = h;
    int r = uv_tcp_bind(&h->server, (struct sockaddr *)&ss, 0);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&h->server, 16, on_connection);
    if (r < 0) {
        uv_close((uv_handle_t *)&h->server, free_handle_data);
        return bn_errf(err, "metrics_listen %s: %s", listen, uv_strerror(r));
    }
    struct sockaddr_storage bound;
    int bl = sizeof(bound);
    if (uv_tcp_getsockname(&h->server, (struct sockaddr *)&bound, &bl) == 0)
        h->port = ntohs(bound.ss_family == AF_INET ? ((struct sockaddr_in *)&bound)->sin_port
                                                   : ((struct sockaddr_in6 *)&bound)->sin6_port);
    *out = h;
    return 0;
}

int metrics_http_port(const struct metrics_http *h)
{
    return h->port;
}

static void on_server_closed(uv_handle_t *hd)
{
    struct metrics_http *h = hd->data;
    h->server_closed = true;
    maybe_free(h);
}

void metrics_http_close(struct metrics_http *h)
{
    if (!h || h->closing)
        return;
    h->closing = true;
    /* Clients still being answered finish on their own; h goes with the last one. */
    uv_close((uv_handle_t *)&h->server, on_server_closed);
}
