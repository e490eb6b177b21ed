/* daemon/log.c — bn_log: leveled log lines to stderr or a caller's sink. */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static int log_max = -1; /* -1: not read from BITNET_LOG yet */
static bn_log_sink_fn log_sink;
static void *log_sink_ctx;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

const char *bn_log_level_name(enum bn_log_level level)
{
    if ((unsigned)level < sizeof level_names / sizeof level_names[0])
        return level_names[level];
    return "log";
}

/* With log_mu held. */
static int max_level(void)
{
    if (log_max < 0) {
        log_max = BN_LOG_INFO;
        const char *env = getenv("BITNET_LOG");
        if (env)
            for (int i = 0; i <= BN_LOG_DEBUG; i++)
                if (strcasecmp(env, level_names[i]) == 0)
                    log_max = i;
    }
    return log_max;
}

void bn_log_set_level(enum bn_log_level max)
{
    pthread_mutex_lock(&log_mu);
    log_max = (int)max;
    pthread_mutex_unlock(&log_mu);
}

void bn_log_set_sink(bn_log_sink_fn fn, void *ctx)
{
    pthread_mutex_lock(&log_mu);
    log_sink = fn;
    log_sink_ctx = ctx;
    pthread_mutex_unlock(&log_mu);
}

void bn_log(enum bn_log_level level, const char *fmt, ...)
{
    char msg[BN_LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* Messages may quote strings a client sent (its name, a session id): a control
     * character there must not start a forged line of its own in the log. */
    for (char *p = msg; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';

    pthread_mutex_lock(&log_mu);
    if ((int)level <= max_level()) {
        if (log_sink) {
            log_sink(log_sink_ctx, level, msg);
        } else {
            char line[BN_LOG_LINE_MAX + 64];
            int n = snprintf(line, sizeof line, "bitnetd[%ld]: %s: %s\n", (long)getpid(),
                             bn_log_level_name(level), msg);
            if (n > (int)sizeof line - 1) {
                n = (int)sizeof line - 1;
                line[n - 1] = '\n';
            }
            /* One write per line: lines of concurrent threads/processes stay whole. */
            ssize_t w = write(STDERR_FILENO, line, (size_t)n);
            (void)w;
        }
    }
    pthread_mutex_unlock(&log_mu);
}
