/* tests/test_daemon_metrics.c — bitnetd's metrics outside the socket: GET /metrics on a
 * loopback port (and the refusal of a non-loopback address), and the OTLP/HTTP JSON
 * push, received by a tiny HTTP server in the test. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon_harness.h"

ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
    (void)set;
    dh_model_setup();
}
ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
    (void)stats;
    dh_model_cleanup();
}

static struct dh D;
static void fini(void)
{
    dh_cleanup(&D);
}

/* The port bitnetd logged for its metrics listener. */
static int logged_port(void)
{
    FILE *f = fopen(D.log, "r");
    cr_assert(f);
    char line[1024];
    int port = -1;
    while (fgets(line, sizeof(line), f)) {
        char *p = strstr(line, "(port ");
        if (strstr(line, "metrics on") && p)
            port = atoi(p + 6);
    }
    fclose(f);
    return port;
}

/* One HTTP exchange with 127.0.0.1:port; the whole answer in buf. */
static size_t http_get(int port, const char *request, char *buf, size_t len)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(write(fd, request, strlen(request)), (ssize_t)strlen(request));
    size_t got = 0;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, DH_TIMEOUT_MS) <= 0)
            break;
        ssize_t n = read(fd, buf + got, len - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    buf[got] = 0;
    close(fd);
    return got;
}

Test(metrics, http_endpoint, .fini = fini)
{
    if (!dh_model_path())
        cr_skip_test("%s", dh_model_why());
    const char *args[] = {"--metrics-listen", "127.0.0.1:0", NULL};
    cr_assert_eq(dh_start(&D, NULL, args), 0);
    int port = logged_port();
    cr_assert_gt(port, 0);
    struct tc c;
    cr_assert_eq(tc_connect(&c, D.sock), 0);
    cr_assert_eq(tc_load_tiny(&c, NULL, 0, false), 0);
    struct bn_rpc_generate_params gp;
    struct bn_rpc_generate_result gr;
    struct bn_rpc_error e;
    int32_t p[] = {5, 6, 7};
    tc_gen_tokens(&gp, p, 3, 5, false);
    cr_assert_eq(tc_call(&c, BN_RPC_GENERATE, &gp, &gr, &e), 0);
    static char buf[1 << 16];
    http_get(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", buf, sizeof(buf));
    cr_assert(strncmp(buf, "HTTP/1.1 200 OK\r\n", 17) == 0, "%.200s", buf);
    cr_assert(strstr(buf, "Content-Type: text/plain; version=0.0.4"), "%.300s", buf);
    cr_assert(strstr(buf, "bitnetd_requests_total{method=\"generate\"} 1"), "%s", buf);
    cr_assert(strstr(buf, "bitnetd_resident_models 1"), "%s", buf);
    char want[96];
    snprintf(want, sizeof(want), "bitnetd_generated_tokens_total %lld", (long long)gr.stats.generated_tokens);
    cr_assert(strstr(buf, want), "%s in %s", want, buf);
    http_get(port, "GET /other HTTP/1.1\r\n\r\n", buf, sizeof(buf));
    cr_assert(strncmp(buf, "HTTP/1.1 404", 12) == 0, "%.100s", buf);
    http_get(port, "POST /metrics HTTP/1.1\r\n\r\n", buf, sizeof(buf));
    cr_assert(strncmp(buf, "HTTP/1.1 405", 12) == 0, "%.100s", buf);
    http_get(port, "garbage\r\n\r\n", buf, sizeof(buf));
    cr_assert(strncmp(buf, "HTTP/1.1 400", 12) == 0, "%.100s", buf);
    /* hello announces it */
    struct bn_rpc_hello_params hp = {.version = 1};
    struct bn_rpc_hello_result hr;
    cr_assert_eq(tc_call(&c, BN_RPC_HELLO, &hp, &hr, &e), 0);
    bool has = false;
    for (size_t i = 0; i < hr.n_capabilities; i++)
        has |= strcmp(hr.capabilities[i], "metrics-http") == 0;
    cr_assert(has);
    tc_close(&c);
    cr_assert_eq(dh_stop(&D), 0);
}

Test(metrics, non_loopback_refused, .fini = fini)
{
    if (!dh_model_path())
        cr_skip_test("%s", dh_model_why());
    const char *args[] = {"--metrics-listen", "0.0.0.0:0", NULL};
    cr_assert_neq(dh_start(&D, NULL, args), 0, "bitnetd must refuse a non-loopback metrics address");
    cr_assert(dh_log_has(&D, "not a loopback address"));
}

/* ---- a tiny OTLP receiver ---- */
struct receiver {
    int fd;
    int port;
    pthread_t th;
    pthread_mutex_t mu;
    char head[4096];
    char *body;
    size_t body_len;
    int posts;
};

static void *receiver_main(void *arg)
{
    struct receiver *r = arg;
    for (;;) {
        int c = accept(r->fd, NULL, NULL);
        if (c < 0)
            return NULL;
        char buf[1 << 16];
        size_t got = 0;
        char *hend = NULL;
        size_t want = 0;
        for (;;) {
            ssize_t n = read(c, buf + got, sizeof(buf) - 1 - got);
            if (n <= 0)
                break;
            got += (size_t)n;
            buf[got] = 0;
            if (!hend && (hend = strstr(buf, "\r\n\r\n"))) {
                char *cl = strcasestr(buf, "Content-Length:");
                want = (size_t)(hend + 4 - buf) + (cl ? (size_t)atol(cl + 15) : 0);
            }
            if (hend && got >= want)
                break;
        }
        const char *ok = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        if (write(c, ok, strlen(ok)) < 0) {
        }
        close(c);
        if (!hend)
            continue;
        pthread_mutex_lock(&r->mu);
        size_t hl = (size_t)(hend - buf);
        memcpy(r->head, buf, hl < sizeof(r->head) - 1 ? hl : sizeof(r->head) - 1);
        r->head[hl < sizeof(r->head) - 1 ? hl : sizeof(r->head) - 1] = 0;
        free(r->body);
        r->body_len = got - hl - 4;
        r->body = malloc(r->body_len + 1);
        memcpy(r->body, hend + 4, r->body_len);
        r->body[r->body_len] = 0;
        r->posts++;
        pthread_mutex_unlock(&r->mu);
    }
}

/* The OTLP data point value of metric `name` (first point with label value lv). */
static json_t *find_point(json_t *root, const char *name, const char *lv)
{
    json_t *metrics = json_object_get(
        json_array_get(json_object_get(json_array_get(json_object_get(root, "resourceMetrics"), 0), "scopeMetrics"),
                       0),
        "metrics");
    size_t i;
    json_t *m;
    json_array_foreach(metrics, i, m)
    {
        if (strcmp(json_string_value(json_object_get(m, "name")), name) != 0)
            continue;
        json_t *data = json_object_get(m, "sum") ? json_object_get(m, "sum") : json_object_get(m, "gauge");
        size_t k;
        json_t *dp;
        json_array_foreach(json_object_get(data, "dataPoints"), k, dp)
        {
            if (!lv)
                return dp;
            json_t *attrs = json_object_get(dp, "attributes");
            const char *v = json_string_value(json_object_get(json_object_get(json_array_get(attrs, 0), "value"),
                                                              "stringValue"));
            if (v && strcmp(v, lv) == 0)
                return dp;
        }
    }
    return NULL;
}

Test(metrics, otlp_push, .fini = fini)
{
    if (!dh_model_path())
        cr_skip_test("%s", dh_model_why());
    static struct receiver r;
    pthread_mutex_init(&r.mu, NULL);
    r.fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(r.fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(listen(r.fd, 8), 0);
    socklen_t sl = sizeof(sa);
    getsockname(r.fd, (struct sockaddr *)&sa, &sl);
    r.port = ntohs(sa.sin_port);
    pthread_create(&r.th, NULL, receiver_main, &r);

    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/metrics", r.port);
    const char *args[] = {"--otlp-endpoint", url, "--otlp-interval", "100ms", NULL};
    cr_assert_eq(dh_start(&D, NULL, args), 0);
    struct tc c;
    cr_assert_eq(tc_connect(&c, D.sock), 0);
    struct bn_rpc_error e;
    for (int i = 0; i < 3; i++)
        cr_assert_eq(tc_call(&c, BN_RPC_PING, NULL, NULL, &e), 0);
    tc_close(&c);
    /* Stop: the final push carries the final values. */
    cr_assert_eq(dh_stop(&D), 0);
    pthread_mutex_lock(&r.mu);
    cr_assert_gt(r.posts, 0, "nothing arrived");
    cr_assert(strncmp(r.head, "POST /v1/metrics HTTP/1.1", 25) == 0, "%s", r.head);
    cr_assert(strcasestr(r.head, "Content-Type: application/json"), "%s", r.head);
    json_error_t je;
    json_t *root = json_loads(r.body, 0, &je);
    cr_assert(root, "not JSON: %s: %.200s", je.text, r.body);
    pthread_mutex_unlock(&r.mu);
    json_t *attrs = json_object_get(json_object_get(json_array_get(json_object_get(root, "resourceMetrics"), 0),
                                                    "resource"),
                                    "attributes");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(json_array_get(attrs, 0), "value"),
                                                       "stringValue")),
                     "bitnetd");
    json_t *dp = find_point(root, "bitnetd.requests", "ping");
    cr_assert(dp, "no bitnetd.requests{method=ping} point");
    cr_assert_str_eq(json_string_value(json_object_get(dp, "asInt")), "3");
    cr_assert(json_object_get(dp, "startTimeUnixNano") && json_object_get(dp, "timeUnixNano"));
    dp = find_point(root, "bitnetd.uptime_seconds", NULL);
    cr_assert(dp && json_is_real(json_object_get(dp, "asDouble")));
    json_decref(root);
    shutdown(r.fd, SHUT_RDWR);
    close(r.fd);
    pthread_join(r.th, NULL);
    free(r.body);
}

Test(metrics, otlp_unreachable_does_not_hurt, .fini = fini)
{
    if (!dh_model_path())
        cr_skip_test("%s", dh_model_why());
    /* A port nobody listens on (bound then closed). */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    socklen_t sl = sizeof(sa);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    close(fd);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", ntohs(sa.sin_port));
    const char *args[] = {"--otlp-endpoint", url, "--otlp-interval", "50ms", NULL};
    cr_assert_eq(dh_start(&D, NULL, args), 0);
    struct tc c;
    cr_assert_eq(tc_connect(&c, D.sock), 0);
    cr_assert_eq(tc_load_tiny(&c, NULL, 0, false), 0);
    struct bn_rpc_generate_params gp;
    struct bn_rpc_generate_result gr;
    struct bn_rpc_error e;
    int32_t p[] = {5, 6, 7};
    tc_gen_tokens(&gp, p, 3, 5, false);
    cr_assert_eq(tc_call(&c, BN_RPC_GENERATE, &gp, &gr, &e), 0);
    tc_close(&c);
    cr_assert_eq(dh_stop(&D), 0);
    cr_assert(dh_log_has(&D, "otlp: push failed"));
}
