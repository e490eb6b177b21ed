/* client/ctl_args.c — bitnetctl's command-line parsing: one option parser shared by
 * every command (long options with "=VALUE" or a separate value, short options and
 * clusters, "--", global options anywhere), the usage-error messages, and the value
 * parsers (integers, reals with open/closed ranges, durations). */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

enum { GOPT_SOCKET = 1, GOPT_TIMEOUT, GOPT_JSON, GOPT_VERBOSE, GOPT_HELP };

const struct ctl_opt ctl_global_opts[] = {
    {"socket", 0, true, GOPT_SOCKET, "PATH",
     "the daemon's socket [$BITNET_SOCKET, else\n$XDG_RUNTIME_DIR/bitnetd.sock, else /run/bitnetd/bitnetd.sock]"},
    {"timeout", 0, true, GOPT_TIMEOUT, "DURATION", "give up on a call after DURATION (e.g. 30s; 0: never)"},
    {"json", 0, false, GOPT_JSON, NULL, "machine-readable output"},
    {"verbose", 'v', false, GOPT_VERBOSE, NULL, "more detail (error codes, connection, timings)"},
    {"help", 'h', false, GOPT_HELP, NULL, "show this help"},
    {NULL, 0, false, 0, NULL, NULL},
};

#define TIMEOUT_MAX_S 86400.0 /* --timeout: a day; longer is "no limit" (0) */

static const char *cmd_name(const struct ctl *g)
{
    return g->cmd ? g->cmd->name : NULL;
}

static void vreport(struct ctl *g, const char *fmt, va_list ap)
{
    const char *c = cmd_name(g);
    fprintf(g->err, "bitnetctl%s%s: ", c ? " " : "", c ? c : "");
    vfprintf(g->err, fmt, ap);
    fputc('\n', g->err);
}

int ctl_usage_error(struct ctl *g, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(g, fmt, ap);
    va_end(ap);
    const char *c = cmd_name(g);
    fprintf(g->err, "Try 'bitnetctl %s%s--help' for more information.\n", c ? c : "", c ? " " : "");
    return CTL_EXIT_USAGE;
}

int ctl_fail(struct ctl *g, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(g, fmt, ap);
    va_end(ap);
    return code;
}

void ctl_parser_init(struct ctl_parser *p, int argc, char **argv)
{
    memset(p, 0, sizeof(*p));
    p->argc = argc;
    p->argv = argv;
    p->i = 1;
}

static const struct ctl_opt *find_long(const struct ctl_opt *opts, const char *name, size_t len)
{
    for (const struct ctl_opt *o = opts; o && o->name; o++)
        if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
            return o;
    return NULL;
}

static const struct ctl_opt *find_short(const struct ctl_opt *opts, char c)
{
    for (const struct ctl_opt *o = opts; o && o->name; o++)
        if (o->short_name == c)
            return o;
    return NULL;
}

/* Apply a global option to g.  Returns 0 to go on, CTL_OPT_HELP or CTL_OPT_BAD. */
static int apply_global(struct ctl *g, const struct ctl_opt *o, const char *val)
{
    switch (o->id) {
    case GOPT_SOCKET:
        if (!*val)
            return ctl_usage_error(g, "--socket needs a path, got an empty string"), CTL_OPT_BAD;
        if (strlen(val) >= CTL_SOCKET_PATH_MAX)
            return ctl_usage_error(g, "--socket: the path is %zu bytes; a Unix socket path has at most %d",
                                   strlen(val), CTL_SOCKET_PATH_MAX - 1),
                   CTL_OPT_BAD;
        g->socket_path = val;
        return 0;
    case GOPT_TIMEOUT: {
        double s;
        if (ctl_parse_duration_flag(g, "--timeout", val, 0, TIMEOUT_MAX_S, &s) < 0)
            return CTL_OPT_BAD;
        /* Whole milliseconds, at least 1 for any positive duration. */
        g->timeout_ms = s == 0 ? -1 : (int)ceil(s * 1000.0);
        return 0;
    }
    case GOPT_JSON: g->json = true; return 0;
    case GOPT_VERBOSE: g->verbose = true; return 0;
    case GOPT_HELP: return CTL_OPT_HELP;
    }
    return 0;
}

/* Resolve option o found in argv; *val gets its value (from inline or the next
 * argument).  Returns the id to give the caller, 0 when it was a global option that
 * is handled, or CTL_OPT_BAD / CTL_OPT_HELP. */
static int take(struct ctl *g, struct ctl_parser *p, const struct ctl_opt *o, bool global, const char *shown,
                const char *inline_val, const char **val)
{
    *val = NULL;
    if (o->has_value) {
        if (inline_val) {
            *val = inline_val;
        } else if (p->i < p->argc) {
            *val = p->argv[p->i++];
        } else {
            ctl_usage_error(g, "%s needs a value (%s)", shown, o->metavar ? o->metavar : "VALUE");
            return CTL_OPT_BAD;
        }
    } else if (inline_val) {
        ctl_usage_error(g, "%s takes no value, got '%s'", shown, inline_val);
        return CTL_OPT_BAD;
    }
    if (global)
        return apply_global(g, o, *val);
    return o->id;
}

int ctl_next(struct ctl *g, struct ctl_parser *p, const char **val)
{
    const struct ctl_opt *cmd_opts = g->cmd ? g->cmd->opts : NULL;
    for (;;) {
        *val = NULL;
        if (p->shorts && *p->shorts) {
            char c = *p->shorts++;
            char shown[3] = {'-', c, 0};
            const struct ctl_opt *o = find_short(cmd_opts, c);
            bool global = false;
            if (!o) {
                o = find_short(ctl_global_opts, c);
                global = o != NULL;
            }
            if (!o)
                return ctl_usage_error(g, "unknown option '-%c'", c), CTL_OPT_BAD;
            const char *inline_val = NULL;
            if (o->has_value && *p->shorts) { /* "-n5" */
                inline_val = p->shorts;
                p->shorts = NULL;
            }
            int r = take(g, p, o, global, shown, inline_val, val);
            if (r == 0)
                continue;
            return r;
        }
        p->shorts = NULL;
        if (p->i >= p->argc)
            return CTL_OPT_END;
        const char *a = p->argv[p->i++];
        if (p->only_pos || a[0] != '-' || a[1] == 0) { /* "-" alone means stdin */
            *val = a;
            return CTL_OPT_POS;
        }
        if (a[1] == '-') {
            if (a[2] == 0) {
                p->only_pos = true;
                continue;
            }
            const char *name = a + 2;
            const char *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            const struct ctl_opt *o = find_long(cmd_opts, name, len);
            bool global = false;
            if (!o) {
                o = find_long(ctl_global_opts, name, len);
                global = o != NULL;
            }
            if (!o)
                return ctl_usage_error(g, "unknown option '--%.*s'", (int)len, name), CTL_OPT_BAD;
            char shown[80];
            snprintf(shown, sizeof(shown), "--%s", o->name);
            int r = take(g, p, o, global, shown, eq ? eq + 1 : NULL, val);
            if (r == 0)
                continue;
            return r;
        }
        /* A negative number where a positional is expected ("-1") is not an option. */
        if (isdigit((unsigned char)a[1]) && !find_short(cmd_opts, a[1])) {
            *val = a;
            return CTL_OPT_POS;
        }
        p->shorts = a + 1;
    }
}

/* ---- values ---- */

int ctl_parse_int(struct ctl *g, const char *flag, const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    while (*end == ' ')
        end++;
    if (end == s || *end || errno || v < lo || v > hi) {
        ctl_usage_error(g, "%s must be an integer in [%lld, %lld], got '%s'", flag, (long long)lo,
                        (long long)hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

int ctl_parse_real(struct ctl *g, const char *flag, const char *s, double lo, bool lo_open, double hi,
                   bool hi_open, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    while (*end == ' ')
        end++;
    bool is_num = end != s && !*end && !errno && isfinite(v);
    bool in_range = is_num && (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
    if (!in_range) {
        ctl_usage_error(g, "%s must be %s %c%g, %g%c, got %s%s%s", flag, is_num ? "in" : "a number in",
                        lo_open ? '(' : '[', lo, hi, hi_open ? ')' : ']', is_num ? "" : "'", s,
                        is_num ? "" : "'");
        return -1;
    }
    *out = v;
    return 0;
}

/* Seconds in one unit of a duration; 0 when u (n bytes) is not a unit. */
static double unit_seconds(const char *u, size_t n)
{
    static const struct {
        const char *name;
        double s;
    } units[] = {
        {"ms", 1e-3}, {"s", 1}, {"sec", 1}, {"m", 60}, {"min", 60}, {"h", 3600}, {"d", 86400},
    };
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strlen(units[i].name) == n && strncmp(units[i].name, u, n) == 0)
            return units[i].s;
    return 0;
}

int ctl_parse_duration(const char *s, double *out)
{
    if (strcmp(s, "never") == 0 || strcmp(s, "forever") == 0) {
        *out = -1;
        return 0;
    }
    const char *p = s;
    double sign = 1;
    if (*p == '-' || *p == '+') {
        sign = *p == '-' ? -1 : 1;
        p++;
    }
    if (!*p)
        return -1;
    double total = 0;
    bool any_unit = false;
    while (*p) {
        if (!isdigit((unsigned char)*p) && *p != '.')
            return -1; /* no sign or exponent inside; "inf"/"nan" are not durations */
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno || !isfinite(v))
            return -1;
        for (const char *q = p; q < end; q++)
            if (!isdigit((unsigned char)*q) && *q != '.')
                return -1; /* "1e3" */
        p = end;
        const char *u = p;
        while (isalpha((unsigned char)*p))
            p++;
        if (p == u) {
            if (*p || any_unit)
                return -1; /* a bare number must be the whole duration: "300" */
            total += v;
            break;
        }
        double us = unit_seconds(u, (size_t)(p - u));
        if (us == 0)
            return -1;
        any_unit = true;
        total += v * us;
    }
    if (!isfinite(total))
        return -1;
    *out = sign * total;
    return 0;
}

int ctl_parse_duration_flag(struct ctl *g, const char *flag, const char *s, double lo, double hi,
                            double *out)
{
    double v;
    if (ctl_parse_duration(s, &v) < 0) {
        ctl_usage_error(g, "%s must be a duration such as 30s, 5m, 1h, 1h30m, 0 or -1, got '%s'", flag, s);
        return -1;
    }
    if (v < lo || v > hi) {
        ctl_usage_error(g, "%s must be between %gs and %gs, got '%s'", flag, lo, hi, s);
        return -1;
    }
    *out = v;
    return 0;
}
