/* daemon/metrics.c — bitnetd's counters and gauges.  Every value is an atomic that
 * the loop, the engine thread and the OTLP thread may read at any time; a snapshot is
 * a flat list of samples that the Prometheus text renderer (here) and the OTLP JSON
 * renderer (otlp.c's push, rendered here too) walk the same way.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "daemon.h"

static const int err_codes[METRIC_ERR_COUNT] = {
    [METRIC_ERR_PARSE] = BN_RPC_E_PARSE,
    [METRIC_ERR_INVALID_REQUEST] = BN_RPC_E_INVALID_REQUEST,
    [METRIC_ERR_METHOD_NOT_FOUND] = BN_RPC_E_METHOD_NOT_FOUND,
    [METRIC_ERR_INVALID_PARAMS] = BN_RPC_E_INVALID_PARAMS,
    [METRIC_ERR_INTERNAL] = BN_RPC_E_INTERNAL,
    [METRIC_ERR_MODEL_NOT_FOUND] = BN_RPC_E_MODEL_NOT_FOUND,
    [METRIC_ERR_MODEL_NOT_LOADED] = BN_RPC_E_MODEL_NOT_LOADED,
    [METRIC_ERR_BUSY] = BN_RPC_E_BUSY,
    [METRIC_ERR_CANCELLED] = BN_RPC_E_CANCELLED,
    [METRIC_ERR_SHUTTING_DOWN] = BN_RPC_E_SHUTTING_DOWN,
    [METRIC_ERR_PERMISSION_DENIED] = BN_RPC_E_PERMISSION_DENIED,
    [METRIC_ERR_LOAD_FAILED] = BN_RPC_E_LOAD_FAILED,
    [METRIC_ERR_CONTEXT_OVERFLOW] = BN_RPC_E_CONTEXT_OVERFLOW,
    [METRIC_ERR_MESSAGE_TOO_LARGE] = BN_RPC_E_MESSAGE_TOO_LARGE,
    [METRIC_ERR_UNSUPPORTED_VERSION] = BN_RPC_E_UNSUPPORTED_VERSION,
    [METRIC_ERR_OTHER] = 0,
};

void metrics_init(struct metrics *m)
{
    memset(m, 0, sizeof(*m));
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    m->start_time = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
    m->start_mono = daemon_now();
}

void metrics_count_error(struct metrics *m, int code)
{
    int i = METRIC_ERR_OTHER;
    for (int k = 0; k < METRIC_ERR_OTHER; k++)
        if (err_codes[k] == code)
            i = k;
    atomic_fetch_add(&m->errors[i], 1);
}

void metrics_set_decode_tps(struct metrics *m, double tps)
{
    uint64_t bits;
    memcpy(&bits, &tps, sizeof(bits));
    atomic_store(&m->decode_tps_bits, bits);
}

static double decode_tps(const struct metrics *m)
{
    uint64_t bits = atomic_load(&m->decode_tps_bits);
    double v;
    memcpy(&v, &bits, sizeof(v));
    return v;
}

/* ---- snapshot ---- */

static void add_i(struct metric_sample *out, size_t *n, const char *name, const char *help, const char *unit,
                  enum metric_kind kind, const char *label, const char *lv, int64_t v)
{
    if (*n >= METRICS_SAMPLES_MAX)
        return;
    out[(*n)++] = (struct metric_sample){name, help, unit, kind, label, lv, true, v, (double)v};
}

static void add_d(struct metric_sample *out, size_t *n, const char *name, const char *help, const char *unit,
                  enum metric_kind kind, double v)
{
    if (*n >= METRICS_SAMPLES_MAX)
        return;
    out[(*n)++] = (struct metric_sample){name, help, unit, kind, NULL, NULL, false, (int64_t)v, v};
}

size_t metrics_snapshot(const struct metrics *m, struct metric_sample *out)
{
    size_t n = 0;
    for (int i = 0; i <= BN_RPC_METHOD_COUNT; i++) {
        uint64_t v = atomic_load(&m->requests[i]);
        const char *name = i < BN_RPC_METHOD_COUNT ? bn_rpc_method_name((enum bn_rpc_method)i) : "unknown";
        add_i(out, &n, "bitnetd_requests", "Requests received, by method.", "{request}", METRIC_COUNTER,
              "method", name, (int64_t)v);
    }
    for (int i = 0; i < METRIC_ERR_COUNT; i++) {
        const char *name = i == METRIC_ERR_OTHER ? "other" : bn_rpc_code_name(err_codes[i]);
        add_i(out, &n, "bitnetd_errors", "Error answers, by error code name.", "{error}", METRIC_COUNTER, "code",
              name, (int64_t)atomic_load(&m->errors[i]));
    }
    add_i(out, &n, "bitnetd_prompt_tokens", "Prompt tokens evaluated (prefill).", "{token}", METRIC_COUNTER, NULL,
          NULL, (int64_t)atomic_load(&m->tokens_prompt));
    add_i(out, &n, "bitnetd_cached_prompt_tokens", "Prompt tokens reused from a chat session's KV cache.",
          "{token}", METRIC_COUNTER, NULL, NULL, (int64_t)atomic_load(&m->tokens_cached));
    add_i(out, &n, "bitnetd_generated_tokens", "Tokens generated.", "{token}", METRIC_COUNTER, NULL, NULL,
          (int64_t)atomic_load(&m->tokens_generated));
    add_i(out, &n, "bitnetd_generations", "Generate and chat requests finished.", "{request}", METRIC_COUNTER, NULL,
          NULL, (int64_t)atomic_load(&m->generations));
    add_i(out, &n, "bitnetd_generations_cancelled", "Generations ended by cancel or a client that went away.",
          "{request}", METRIC_COUNTER, NULL, NULL, (int64_t)atomic_load(&m->cancelled));
    add_i(out, &n, "bitnetd_connections", "Client connections accepted.", "{connection}", METRIC_COUNTER, NULL, NULL,
          (int64_t)atomic_load(&m->connections_total));
    add_i(out, &n, "bitnetd_model_loads", "Models made resident (read or reattached).", "{load}", METRIC_COUNTER,
          NULL, NULL, (int64_t)atomic_load(&m->loads));
    add_i(out, &n, "bitnetd_model_load_failures", "Loads that failed.", "{load}", METRIC_COUNTER, NULL, NULL,
          (int64_t)atomic_load(&m->load_failures));
    add_d(out, &n, "bitnetd_model_load_seconds", "Time spent loading models.", "s", METRIC_COUNTER,
          (double)atomic_load(&m->load_ns_total) * 1e-9);
    add_i(out, &n, "bitnetd_model_unloads", "Models unloaded (by request or keep-alive).", "{unload}",
          METRIC_COUNTER, NULL, NULL, (int64_t)atomic_load(&m->unloads));
    add_i(out, &n, "bitnetd_model_keepalive_unloads", "Models unloaded because their keep-alive ran out.",
          "{unload}", METRIC_COUNTER, NULL, NULL, (int64_t)atomic_load(&m->keepalive_unloads));
    add_i(out, &n, "bitnetd_engine_steps", "Engine steps (batched forward passes).", "{step}", METRIC_COUNTER, NULL,
          NULL, (int64_t)atomic_load(&m->steps));
    add_d(out, &n, "bitnetd_engine_step_seconds", "Time spent in engine steps.", "s", METRIC_COUNTER,
          (double)atomic_load(&m->step_ns_total) * 1e-9);
    /* gauges */
    add_i(out, &n, "bitnetd_open_connections", "Client connections open now.", "{connection}", METRIC_GAUGE, NULL,
          NULL, atomic_load(&m->connections));
    add_i(out, &n, "bitnetd_active_sequences", "Sequences being generated now.", "{sequence}", METRIC_GAUGE, NULL,
          NULL, atomic_load(&m->active_sequences));
    add_i(out, &n, "bitnetd_queue_depth", "Requests waiting for a sequence slot.", "{request}", METRIC_GAUGE, NULL,
          NULL, atomic_load(&m->queued));
    add_i(out, &n, "bitnetd_kv_cache_bytes", "KV cache memory allocated.", "By", METRIC_GAUGE, NULL, NULL,
          atomic_load(&m->kv_bytes));
    add_i(out, &n, "bitnetd_resident_models", "Models resident.", "{model}", METRIC_GAUGE, NULL, NULL,
          atomic_load(&m->models_resident));
    add_i(out, &n, "bitnetd_resident_bytes", "Bytes of resident model segments.", "By", METRIC_GAUGE, NULL, NULL,
          atomic_load(&m->resident_bytes));
    add_i(out, &n, "bitnetd_chat_sessions", "Chat sessions holding a KV cache.", "{session}", METRIC_GAUGE, NULL,
          NULL, atomic_load(&m->sessions));
    add_d(out, &n, "bitnetd_decode_tokens_per_second", "Tokens generated per second, all sequences, last second.",
          "{token}/s", METRIC_GAUGE, decode_tps(m));
    add_d(out, &n, "bitnetd_last_load_seconds", "Duration of the last model load.", "s", METRIC_GAUGE,
          (double)atomic_load(&m->last_load_ns) * 1e-9);
    add_d(out, &n, "bitnetd_uptime_seconds", "Seconds since bitnetd started.", "s", METRIC_GAUGE,
          daemon_now() - m->start_mono);
    return n;
}

/* ---- Prometheus text format 0.0.4 ---- */

struct strbuf {
    char *p;
    size_t len, cap;
    bool oom;
};

static void sb_printf(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct strbuf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)n;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

int metrics_render_prometheus(const struct metrics *m, char **out, size_t *len)
{
    struct metric_sample s[METRICS_SAMPLES_MAX];
    size_t n = metrics_snapshot(m, s);
    struct strbuf b = {.p = malloc(8192), .cap = 8192};
    if (!b.p)
        return -1;
    b.p[0] = 0;
    for (size_t i = 0; i < n; i++) {
        bool counter = s[i].kind == METRIC_COUNTER;
        if (i == 0 || strcmp(s[i].name, s[i - 1].name) != 0) {
            sb_printf(&b, "# HELP %s%s %s\n", s[i].name, counter ? "_total" : "", s[i].help);
            sb_printf(&b, "# TYPE %s%s %s\n", s[i].name, counter ? "_total" : "", counter ? "counter" : "gauge");
        }
        sb_printf(&b, "%s%s", s[i].name, counter ? "_total" : "");
        if (s[i].label)
            sb_printf(&b, "{%s=\"%s\"}", s[i].label, s[i].label_value); /* values are [a-z_] names */
        if (s[i].is_int)
            sb_printf(&b, " %" PRId64 "\n", s[i].i);
        else
            sb_printf(&b, " %.9g\n", s[i].d);
    }
    if (b.oom) {
        free(b.p);
        return -1;
    }
    *out = b.p;
    *len = b.len;
    return 0;
}

/* ---- OTLP/HTTP JSON (opentelemetry-proto ExportMetricsServiceRequest) ---- */

static json_t *attr_str(const char *key, const char *value)
{
    return json_pack("{s:s, s:{s:s}}", "key", key, "value", "stringValue", value);
}

int metrics_render_otlp(const struct metrics *m, char **out, size_t *len)
{
    struct metric_sample s[METRICS_SAMPLES_MAX];
    size_t n = metrics_snapshot(m, s);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char now_ns[32], start_ns[32];
    snprintf(now_ns, sizeof(now_ns), "%" PRIu64, (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec);
    snprintf(start_ns, sizeof(start_ns), "%" PRIu64, (uint64_t)(m->start_time * 1e9));
    json_t *metrics = json_array();
    json_t *cur = NULL, *points = NULL;
    for (size_t i = 0; metrics && i < n; i++) {
        bool counter = s[i].kind == METRIC_COUNTER;
        if (!cur || strcmp(s[i].name, s[i - 1].name) != 0) {
            /* OTLP names use dots; the Prometheus exporter side maps them back. */
            char name[128];
            snprintf(name, sizeof(name), "%s", s[i].name);
            for (char *p = name; *p; p++)
                if (*p == '_' && p == name + 7)
                    *p = '.';
            points = json_array();
            json_t *data = counter ? json_pack("{s:o, s:i, s:b}", "dataPoints", points, "aggregationTemporality", 2,
                                               "isMonotonic", 1)
                                   : json_pack("{s:o}", "dataPoints", points);
            cur = json_pack("{s:s, s:s, s:s, s:o}", "name", name, "description", s[i].help, "unit", s[i].unit,
                            counter ? "sum" : "gauge", data);
            json_array_append_new(metrics, cur);
        }
        json_t *dp = json_object();
        if (s[i].label)
            json_object_set_new(dp, "attributes", json_pack("[o]", attr_str(s[i].label, s[i].label_value)));
        if (counter)
            json_object_set_new(dp, "startTimeUnixNano", json_string(start_ns));
        json_object_set_new(dp, "timeUnixNano", json_string(now_ns));
        if (s[i].is_int) {
            char v[32];
            snprintf(v, sizeof(v), "%" PRId64, s[i].i); /* int64 is a JSON string in OTLP */
            json_object_set_new(dp, "asInt", json_string(v));
        } else {
            json_object_set_new(dp, "asDouble", json_real(s[i].d));
        }
        json_array_append_new(points, dp);
    }
    json_t *root = json_pack(
        "{s:[{s:{s:[o, o]}, s:[{s:{s:s, s:s}, s:o}]}]}", "resourceMetrics", "resource", "attributes",
        attr_str("service.name", "bitnetd"), attr_str("service.version", PACKAGE_VERSION), "scopeMetrics", "scope",
        "name", "bitnetd", "version", PACKAGE_VERSION, "metrics", metrics);
    if (!root)
        return -1;
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (!text)
        return -1;
    *out = text;
    *len = strlen(text);
    return 0;
}
