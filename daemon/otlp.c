/* daemon/otlp.c — push the metrics to an OpenTelemetry collector as OTLP/HTTP JSON
 * (POST /v1/metrics) every interval, from a thread of its own with its own socket:
 * a slow or dead collector never delays the loop or inference.  Plain http:// only.
 */
#include "config.h"

#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"

#define OTLP_IO_TIMEOUT_S 5          /* connect, send and receive, each */
#define OTLP_DEFAULT_PATH "/v1/metrics"
#define OTLP_RESPONSE_MAX 4096       /* bytes of the answer read (status line is enough) */

struct otlp {
    const struct metrics *m;
    char host[256];
    char port[8];
    char path[1024];
    double interval;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    bool failing;     /* last push failed: log only changes */
    uint64_t pushes;
};

int otlp_parse_url(const char *url, char *host, size_t host_len, int *port, char *path, size_t path_len,
                   struct bn_err *err)
{
    if (strncmp(url, "https://", 8) == 0)
        return bn_errf(err, "otlp_endpoint: '%s': only http:// is supported (use a local collector for TLS)", url);
    if (strncmp(url, "http://", 7) != 0)
        return bn_errf(err, "otlp_endpoint: '%s' does not start with http://", url);
    const char *h = url + 7;
    const char *slash = strchr(h, '/');
    size_t auth_len = slash ? (size_t)(slash - h) : strlen(h);
    const char *hp_end = h + auth_len;
    const char *colon = NULL;
    const char *hs = h, *he;
    if (*h == '[') {
        const char *rb = memchr(h, ']', auth_len);
        if (!rb)
            return bn_errf(err, "otlp_endpoint: '%s': unterminated [IPv6] host", url);
        hs = h + 1;
        he = rb;
        if (rb + 1 < hp_end) {
            if (rb[1] != ':')
                return bn_errf(err, "otlp_endpoint: '%s': expected ':' after ]", url);
            colon = rb + 1;
        }
    } else {
        colon = memchr(h, ':', auth_len);
        he = colon ? colon : hp_end;
    }
    size_t hl = (size_t)(he - hs);
    if (hl == 0 || hl >= host_len)
        return bn_errf(err, "otlp_endpoint: '%s': bad host", url);
    memcpy(host, hs, hl);
    host[hl] = 0;
    *port = 80;
    if (colon) {
        char pb[8];
        size_t pl = (size_t)(hp_end - colon - 1);
        if (pl == 0 || pl >= sizeof(pb))
            return bn_errf(err, "otlp_endpoint: '%s': bad port", url);
        memcpy(pb, colon + 1, pl);
        pb[pl] = 0;
        char *end;
        long p = strtol(pb, &end, 10);
        if (*end || p < 1 || p > 65535)
            return bn_errf(err, "otlp_endpoint: '%s': port is not 1..65535", url);
        *port = (int)p;
    }
    const char *pth = slash ? slash : OTLP_DEFAULT_PATH;
    if (strcmp(pth, "/") == 0)
        pth = OTLP_DEFAULT_PATH;
    if (strlen(pth) >= path_len)
        return bn_errf(err, "otlp_endpoint: '%s': path too long", url);
    for (const char *p = pth; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return bn_errf(err, "otlp_endpoint: '%s': the path contains a space or control character", url);
    snprintf(path, path_len, "%s", pth);
    return 0;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* One POST; returns the HTTP status, or -1 with why filled. */
static int otlp_post(struct otlp *o, const char *body, size_t len, char *why, size_t why_len)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    int e = getaddrinfo(o->host, o->port, &hints, &ai);
    if (e) {
        snprintf(why, why_len, "cannot resolve %s: %s", o->host, gai_strerror(e));
        return -1;
    }
    int fd = -1, status = -1;
    struct timeval tv = {.tv_sec = OTLP_IO_TIMEOUT_S};
    for (struct addrinfo *a = ai; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0)
            continue;
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
            break;
        snprintf(why, why_len, "connect to %s:%s: %s", o->host, o->port, strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    if (fd < 0)
        return -1;
    char head[1600];
    int hl = snprintf(head, sizeof(head),
                      "POST %s HTTP/1.1\r\nHost: %s:%s\r\nUser-Agent: bitnetd/" PACKAGE_VERSION
                      "\r\nContent-Type: application/json\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                      o->path, o->host, o->port, len);
    if (send_all(fd, head, (size_t)hl) < 0 || send_all(fd, body, len) < 0) {
        snprintf(why, why_len, "send to %s:%s: %s", o->host, o->port, strerror(errno));
        close(fd);
        return -1;
    }
    char resp[OTLP_RESPONSE_MAX];
    size_t got = 0;
    while (got < sizeof(resp) - 1) {
        ssize_t r = recv(fd, resp + got, sizeof(resp) - 1 - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
        resp[got] = 0;
        if (strstr(resp, "\r\n"))
            break;
    }
    resp[got] = 0;
    close(fd);
    if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1) {
        snprintf(why, why_len, "no HTTP answer from %s:%s", o->host, o->port);
        return -1;
    }
    if (status < 200 || status > 299)
        snprintf(why, why_len, "%s:%s%s answered HTTP %d", o->host, o->port, o->path, status);
    return status;
}

static void otlp_push(struct otlp *o)
{
    char *body = NULL;
    size_t len = 0;
    if (metrics_render_otlp(o->m, &body, &len) < 0) {
        bn_log(BN_LOG_WARN, "otlp: out of memory rendering the metrics");
        return;
    }
    char why[2048] = "";
    int st = otlp_post(o, body, len, why, sizeof(why));
    free(body);
    bool ok = st >= 200 && st <= 299;
    if (!ok && !o->failing)
        bn_log(BN_LOG_WARN, "otlp: push failed: %s (retrying every %.3g s)", why, o->interval);
    else if (ok && o->failing)
        bn_log(BN_LOG_INFO, "otlp: pushes to %s:%s%s work again", o->host, o->port, o->path);
    else if (ok)
        bn_log(BN_LOG_DEBUG, "otlp: pushed %zu bytes of metrics", len);
    o->failing = !ok;
    o->pushes++;
}

static void *otlp_main(void *arg)
{
    struct otlp *o = arg;
    pthread_mutex_lock(&o->mu);
    while (!o->stop) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        double t = (double)until.tv_nsec * 1e-9 + o->interval;
        until.tv_sec += (time_t)t;
        until.tv_nsec = (long)((t - (double)(time_t)t) * 1e9);
        int rc = 0;
        while (!o->stop && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&o->cv, &o->mu, &until);
        if (o->stop)
            break;
        pthread_mutex_unlock(&o->mu);
        otlp_push(o);
        pthread_mutex_lock(&o->mu);
    }
    pthread_mutex_unlock(&o->mu);
    otlp_push(o); /* the final values */
    return NULL;
}

int otlp_start(struct otlp **out, const struct metrics *m, const char *endpoint, double interval,
               struct bn_err *err)
{
    struct otlp *o = calloc(1, sizeof(*o));
    if (!o)
        return bn_errf(err, "out of memory");
    int port;
    if (otlp_parse_url(endpoint, o->host, sizeof(o->host), &port, o->path, sizeof(o->path), err) < 0) {
        free(o);
        return -1;
    }
    snprintf(o->port, sizeof(o->port), "%d", port);
    o->m = m;
    o->interval = interval;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&o->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&o->mu, NULL);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(&o->th, NULL, otlp_main, o);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        pthread_cond_destroy(&o->cv);
        pthread_mutex_destroy(&o->mu);
        free(o);
        return bn_errf(err, "otlp: cannot start its thread: %s", strerror(rc));
    }
    bn_log(BN_LOG_INFO, "otlp: pushing metrics to http://%s:%s%s every %.3g s", o->host, o->port, o->path, interval);
    *out = o;
    return 0;
}

void otlp_stop(struct otlp *o)
{
    if (!o)
        return;
    pthread_mutex_lock(&o->mu);
    o->stop = true;
    pthread_cond_signal(&o->cv);
    pthread_mutex_unlock(&o->mu);
    pthread_join(o->th, NULL);
    pthread_cond_destroy(&o->cv);
    pthread_mutex_destroy(&o->mu);
    free(o);
}
