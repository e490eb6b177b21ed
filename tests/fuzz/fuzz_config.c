/* tests/fuzz/fuzz_config.c — bitnetd's config file parser on arbitrary text
 * (daemon/config.c: config_parse_text, config_finish, the reload helpers).
 *
 * The input is a config file.  It is parsed over the defaults; when accepted,
 * config_finish resolves and checks it, config_log_changes compares it with the
 * defaults (log lines go to a sink) and config_keep_restart_keys copies the restart-only
 * keys back, as a SIGHUP reload does.  The first line also goes through the value
 * parsers (durations, sizes) on its own.
 *
 * Properties checked:
 *   - a refused file gives a message naming the file ("fuzz.conf:LINE: ...");
 *   - an accepted file gives values inside each key's documented range and model
 *     names that daemon_model_name_valid accepts, each listed once;
 *   - the reload helpers leave two configs that free cleanly (ASan: no double free).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "fuzz.h"

static void log_sink(void *ctx, enum bn_log_level level, const char *msg)
{
    (void)ctx;
    (void)level;
    if (strlen(msg) >= BN_LOG_LINE_MAX)
        fuzz_fail("config: a log line of %zu bytes (limit BN_LOG_LINE_MAX = %d)", strlen(msg), BN_LOG_LINE_MAX);
}

static int config_init(char *why, size_t why_len)
{
    (void)why;
    (void)why_len;
    bn_log_set_sink(log_sink, NULL);
    return 0;
}

#define IN(v, lo, hi) ((v) >= (lo) && (v) <= (hi))

static void check_ranges(const struct daemon_config *c)
{
    if (!IN(c->parallel, 1, DAEMON_PARALLEL_MAX) || !IN(c->max_queue, 0, DAEMON_MAX_QUEUE_MAX) ||
        !IN(c->prefill_chunk, 1, DAEMON_PREFILL_CHUNK_MAX) || !IN(c->sessions, 0, DAEMON_SESSIONS_MAX) ||
        !IN(c->threads, 0, BN_RPC_THREADS_MAX) || !IN(c->ctx, 0, BN_RPC_CTX_MAX) ||
        !IN(c->keep_alive, -1e9, 1e9) || !IN(c->shutdown_grace, 0, DAEMON_GRACE_MAX) ||
        !IN(c->max_connections, 1, DAEMON_MAX_CONNECTIONS_MAX) ||
        !IN(c->otlp_interval, DAEMON_OTLP_INTERVAL_MIN, 86400) || !IN(c->max_message_bytes, 1024, 1u << 30) ||
        !IN((int)c->log_level, BN_LOG_ERROR, BN_LOG_DEBUG))
        fuzz_fail("config: an accepted file gave a value out of its range (parallel %d, max_queue %d, "
                  "prefill_chunk %d, sessions %d, threads %d, ctx %lld, keep_alive %g, grace %g, "
                  "max_connections %d, otlp_interval %g, max_message_bytes %llu)",
                  c->parallel, c->max_queue, c->prefill_chunk, c->sessions, c->threads, (long long)c->ctx,
                  c->keep_alive, c->shutdown_grace, c->max_connections, c->otlp_interval,
                  (unsigned long long)c->max_message_bytes);
    if (c->n_models > DAEMON_MODELS_MAX)
        fuzz_fail("config: %zu models accepted (limit %d)", c->n_models, DAEMON_MODELS_MAX);
    for (size_t i = 0; i < c->n_models; i++) {
        if (!daemon_model_name_valid(c->models[i].name) || !c->models[i].path || !*c->models[i].path)
            fuzz_fail("config: model #%zu '%s' accepted with an invalid name or empty path", i, c->models[i].name);
        for (size_t j = 0; j < i; j++)
            if (strcmp(c->models[i].name, c->models[j].name) == 0)
                fuzz_fail("config: model '%s' listed twice", c->models[i].name);
    }
}

static int config_one(const uint8_t *data, size_t size)
{
    struct daemon_config c, d;
    struct bn_err err = { { 0 } };
    config_defaults(&c);
    if (config_parse_text(&c, (const char *)data, size, "fuzz.conf", &err)) {
        if (strncmp(err.msg, "fuzz.conf", 9) != 0)
            fuzz_fail("config: a refused file gave the message '%s', which does not name the file", err.msg);
    } else {
        check_ranges(&c);
        config_defaults(&d);
        if (config_finish(&c, &err) == 0)
            check_ranges(&c);
        config_log_changes(&d, &c);
        config_keep_restart_keys(&c, &d);
        config_log_changes(&c, &d);
        config_free(&d);
    }
    config_free(&c);

    /* the value parsers on the first line */
    const uint8_t *nl = memchr(data, '\n', size);
    size_t n = nl ? (size_t)(nl - data) : size;
    char *line = malloc(n + 1);
    if (!line)
        fuzz_fail("config: out of memory");
    memcpy(line, data, n);
    line[n] = 0;
    double secs;
    uint64_t bytes;
    config_parse_duration(line, &secs);
    config_parse_size(line, &bytes);
    free(line);
    return 0;
}

const struct fuzz_target fuzz_target_config = { "config", config_init, config_one, NULL };
