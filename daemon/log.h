/* daemon/log.h — bitnetd's one logging call.
 *
 * Lines go to stderr as "bitnetd[PID]: LEVEL: message" (one write per line, so lines
 * from threads do not interleave), or to a sink installed by the caller (tests use it
 * to check that a fallback was announced).  BITNET_LOG=error|warn|info|debug sets the
 * most verbose level shown (default info).
 */
#ifndef BN_DAEMON_LOG_H
#define BN_DAEMON_LOG_H

#ifdef __cplusplus
extern "C" {
#endif

enum bn_log_level {
    BN_LOG_ERROR = 0,
    BN_LOG_WARN = 1,
    BN_LOG_INFO = 2,
    BN_LOG_DEBUG = 3,
};

#define BN_LOG_LINE_MAX 1024 /* bytes of one formatted line; longer lines are cut */

void bn_log(enum bn_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "error", "warn", "info", "debug". */
const char *bn_log_level_name(enum bn_log_level level);
/* Most verbose level shown; overrides BITNET_LOG. */
void bn_log_set_level(enum bn_log_level max);
/* Receive every shown line (without the "bitnetd[PID]: LEVEL: " prefix and newline)
 * instead of stderr; fn NULL restores stderr.  The sink is called from whichever
 * thread logs, one call at a time. */
typedef void (*bn_log_sink_fn)(void *ctx, enum bn_log_level level, const char *msg);
void bn_log_set_sink(bn_log_sink_fn fn, void *ctx);

#ifdef __cplusplus
}
#endif
#endif /* BN_DAEMON_LOG_H */
