/* client/ctl_status.c — the daemon-wide commands: status, metrics (Prometheus text,
 * or JSON samples parsed from it), stop and version. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"

enum { OPT_GRACE = 1, OPT_NO_WAIT };

const struct ctl_opt ctl_status_opts[] = {{NULL, 0, false, 0, NULL, NULL}};
const struct ctl_opt ctl_metrics_opts[] = {{NULL, 0, false, 0, NULL, NULL}};
const struct ctl_opt ctl_version_opts[] = {{NULL, 0, false, 0, NULL, NULL}};
const struct ctl_opt ctl_stop_opts[] = {
    {"grace", 0, true, OPT_GRACE, "DURATION", "time in-flight work gets before it is cancelled [daemon's]"},
    {"no-wait", 0, false, OPT_NO_WAIT, NULL, "return once the daemon accepted the request"},
    {NULL, 0, false, 0, NULL, NULL},
};

#define STOP_WAIT_EXTRA_S 10.0  /* stop: wait this long beyond the grace period */
#define STOP_POLL_NS 20000000L  /* stop: check every 20 ms whether the daemon is gone */
#define PROM_LABELS_MAX 64      /* labels of one sample */

/* Commands without positionals: parse options; -1 after --help. */
static int no_args(struct ctl *g, int argc, char **argv, int (*opt)(struct ctl *, int, const char *, void *),
                   void *state)
{
    struct ctl_parser p;
    ctl_parser_init(&p, argc, argv);
    const char *v;
    int o;
    while ((o = ctl_next(g, &p, &v)) != CTL_OPT_END) {
        if (o == CTL_OPT_BAD)
            return CTL_EXIT_USAGE;
        if (o == CTL_OPT_HELP) {
            ctl_print_help(g->out, g->cmd);
            return -1;
        }
        if (o == CTL_OPT_POS)
            return ctl_usage_error(g, "takes no arguments, got '%s'", v);
        if (opt && opt(g, o, v, state) < 0)
            return CTL_EXIT_USAGE;
    }
    return CTL_EXIT_OK;
}

/* ---- status ---- */

int ctl_cmd_status(struct ctl *g, int argc, char **argv)
{
    int rc = no_args(g, argc, argv, NULL, NULL);
    if (rc == CTL_EXIT_OK)
        rc = ctl_connect(g);
    if (rc)
        return rc < 0 ? CTL_EXIT_OK : rc;
    struct bnc_status_result s;
    struct bnc_error err;
    if (bnc_status(g->conn, &s, &err) < 0)
        return ctl_fail_bnc(g, &err);
    const struct bnc_server_info *si = bnc_server_info(g->conn);
    int64_t pid = g->peer_pid ? g->peer_pid : si->pid;
    if (g->json) {
        struct ctl_json j;
        ctl_json_init(&j, g->out, true);
        ctl_json_begin_object(&j);
        ctl_json_key(&j, "server");
        ctl_json_string(&j, si->server);
        ctl_json_key(&j, "protocol");
        ctl_json_int(&j, si->version);
        ctl_json_key(&j, "pid");
        ctl_json_int(&j, pid);
        ctl_json_key(&j, "socket");
        ctl_json_string(&j, g->socket_buf);
        const struct {
            const char *k;
            int64_t v;
        } ints[] = {
            {"active_sequences", s.active_sequences}, {"queued", s.queued},     {"kv_bytes", s.kv_bytes},
            {"models", s.models},                     {"resident_bytes", s.resident_bytes},
            {"parallel", s.parallel},                 {"max_queue", s.max_queue}, {"clients", s.clients},
        };
        for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
            ctl_json_key(&j, ints[i].k);
            ctl_json_int(&j, ints[i].v);
        }
        ctl_json_key(&j, "uptime_seconds");
        ctl_json_number(&j, s.uptime_seconds);
        ctl_json_key(&j, "capabilities");
        ctl_json_begin_array(&j);
        for (size_t i = 0; i < si->n_capabilities; i++)
            ctl_json_string(&j, si->capabilities[i]);
        ctl_json_end_array(&j);
        ctl_json_end_object(&j);
        ctl_json_finish(&j);
    } else {
        char up[24], kv[24], res[24];
        fprintf(g->out, "%s (protocol %lld, pid %lld) on %s, up %s\n", si->server, (long long)si->version,
                (long long)pid, g->socket_buf, ctl_fmt_duration(s.uptime_seconds, up, sizeof(up)));
        fprintf(g->out, "  %-18s%lld of %lld slots\n", "sequences", (long long)s.active_sequences,
                (long long)s.parallel);
        fprintf(g->out, "  %-18s%lld (limit %lld)\n", "queued", (long long)s.queued, (long long)s.max_queue);
        fprintf(g->out, "  %-18s%lld (%s resident)\n", "models", (long long)s.models,
                ctl_fmt_bytes(s.resident_bytes, res, sizeof(res)));
        fprintf(g->out, "  %-18s%s\n", "KV cache", ctl_fmt_bytes(s.kv_bytes, kv, sizeof(kv)));
        fprintf(g->out, "  %-18s%lld\n", "clients", (long long)s.clients);
        if (g->verbose) {
            fprintf(g->out, "  %-18s", "capabilities");
            for (size_t i = 0; i < si->n_capabilities; i++)
                fprintf(g->out, "%s%s", i ? ", " : "", si->capabilities[i]);
            fputc('\n', g->out);
        }
    }
    bnc_result_free(&s);
    return CTL_EXIT_OK;
}

/* ---- metrics ---- */

static bool name_start(char c)
{
    return isalpha((unsigned char)c) || c == '_' || c == ':';
}

static bool name_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == ':';
}

/* Unescape a label value of the exposition format (\\, \", \n) into out (at least
 * the input's length + 1 bytes).  *pp points after the opening quote and is left
 * after the closing one.  -1 when the quote never closes. */
static int label_value(const char **pp, const char *end, char *out, size_t *out_len)
{
    const char *p = *pp;
    size_t n = 0;
    while (p < end && *p != '"') {
        if (*p == '\\' && p + 1 < end) {
            p++;
            out[n++] = *p == 'n' ? '\n' : *p;
        } else {
            out[n++] = *p;
        }
        p++;
    }
    if (p >= end)
        return -1;
    *pp = p + 1;
    *out_len = n;
    return 0;
}

int ctl_prom_sample_json(struct ctl_json *j, const char *line, size_t len, const char *type, const char *help)
{
    const char *p = line, *end = line + len;
    if (p == end || !name_start(*p))
        return -1;
    const char *name = p;
    while (p < end && name_char(*p))
        p++;
    size_t name_len = (size_t)(p - name);
    /* Labels: parsed fully before anything is written, so a bad line writes nothing. */
    struct {
        const char *k;
        size_t kn;
        char *v;
        size_t vn;
    } labels[PROM_LABELS_MAX];
    size_t nl = 0;
    char *vbuf = malloc(len + 1);
    if (!vbuf)
        return -1;
    size_t vused = 0;
    int rc = -1;
    if (p < end && *p == '{') {
        p++;
        for (;;) {
            while (p < end && *p == ' ')
                p++;
            if (p < end && *p == '}') {
                p++;
                break;
            }
            if (p == end || !name_start(*p) || nl == PROM_LABELS_MAX)
                goto out;
            labels[nl].k = p;
            while (p < end && name_char(*p))
                p++;
            labels[nl].kn = (size_t)(p - labels[nl].k);
            if (p + 1 >= end || p[0] != '=' || p[1] != '"')
                goto out;
            p += 2;
            labels[nl].v = vbuf + vused;
            if (label_value(&p, end, labels[nl].v, &labels[nl].vn) < 0)
                goto out;
            vused += labels[nl].vn;
            nl++;
            while (p < end && *p == ' ')
                p++;
            if (p < end && *p == ',')
                p++;
        }
    }
    if (p == end || (*p != ' ' && *p != '\t'))
        goto out;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    char num[64];
    size_t k = 0;
    while (p < end && *p != ' ' && *p != '\t' && k + 1 < sizeof(num))
        num[k++] = *p++;
    num[k] = 0;
    if (k == 0)
        goto out;
    double value = 0;
    bool special = false;
    if (!strcmp(num, "+Inf") || !strcmp(num, "Inf") || !strcmp(num, "-Inf") || !strcmp(num, "NaN")) {
        special = true;
    } else {
        char *e;
        errno = 0;
        value = strtod(num, &e);
        if (*e || errno)
            goto out;
    }
    ctl_json_begin_object(j);
    ctl_json_key(j, "name");
    ctl_json_string_n(j, name, name_len);
    ctl_json_key(j, "labels");
    ctl_json_begin_object(j);
    for (size_t i = 0; i < nl; i++) {
        char key[256];
        snprintf(key, sizeof(key), "%.*s", (int)labels[i].kn, labels[i].k);
        ctl_json_key(j, key);
        ctl_json_string_n(j, labels[i].v, labels[i].vn);
    }
    ctl_json_end_object(j);
    ctl_json_key(j, "value");
    if (special)
        ctl_json_string(j, num); /* JSON has no infinities or NaN */
    else
        ctl_json_number(j, value);
    if (type) {
        ctl_json_key(j, "type");
        ctl_json_string(j, type);
    }
    if (help) {
        ctl_json_key(j, "help");
        ctl_json_string(j, help);
    }
    ctl_json_end_object(j);
    rc = 0;
out:
    free(vbuf);
    return rc;
}

/* The metric family a sample belongs to: its name, or without the _bucket/_sum/
 * _count/_total suffix that histograms, summaries and counters add. */
static bool family_matches(const char *family, const char *sample, size_t sample_len)
{
    size_t fl = strlen(family);
    if (sample_len < fl || strncmp(family, sample, fl) != 0)
        return false;
    const char *rest = sample + fl;
    size_t rl = sample_len - fl;
    static const char *const sfx[] = {"", "_bucket", "_sum", "_count", "_total", "_created"};
    for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++)
        if (strlen(sfx[i]) == rl && strncmp(rest, sfx[i], rl) == 0)
            return true;
    return false;
}

static int metrics_json(struct ctl *g, const char *text)
{
    struct ctl_json j;
    ctl_json_init(&j, g->out, true);
    ctl_json_begin_array(&j);
    char family[256] = "", type[64] = "", help[1024] = "";
    int bad = 0;
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len >= 7 && (strncmp(p, "# HELP ", 7) == 0 || strncmp(p, "# TYPE ", 7) == 0)) {
            bool is_help = p[2] == 'H';
            const char *n = p + 7, *e = p + len;
            const char *sp = memchr(n, ' ', (size_t)(e - n));
            size_t fl = sp ? (size_t)(sp - n) : (size_t)(e - n);
            char fam[256];
            snprintf(fam, sizeof(fam), "%.*s", (int)fl, n);
            if (strcmp(fam, family) != 0) {
                snprintf(family, sizeof(family), "%s", fam);
                type[0] = help[0] = 0;
            }
            const char *val = sp ? sp + 1 : e;
            if (is_help)
                snprintf(help, sizeof(help), "%.*s", (int)(e - val), val);
            else
                snprintf(type, sizeof(type), "%.*s", (int)(e - val), val);
        } else if (len && p[0] != '#') {
            size_t nlen = 0;
            while (nlen < len && name_char(p[nlen]))
                nlen++;
            bool ours = family[0] && family_matches(family, p, nlen);
            if (ctl_prom_sample_json(&j, p, len, ours && type[0] ? type : NULL, ours && help[0] ? help : NULL) < 0)
                bad++;
        }
        p += len + (nl ? 1 : 0);
    }
    ctl_json_end_array(&j);
    ctl_json_finish(&j);
    if (bad)
        fprintf(g->err, "bitnetctl metrics: %d line%s of the daemon's metrics could not be parsed\n", bad,
                bad == 1 ? "" : "s");
    return CTL_EXIT_OK;
}

int ctl_cmd_metrics(struct ctl *g, int argc, char **argv)
{
    int rc = no_args(g, argc, argv, NULL, NULL);
    if (rc == CTL_EXIT_OK)
        rc = ctl_connect(g);
    if (rc)
        return rc < 0 ? CTL_EXIT_OK : rc;
    struct bnc_text_result t;
    struct bnc_error err;
    if (bnc_metrics(g->conn, &t, &err) < 0)
        return ctl_fail_bnc(g, &err);
    if (g->json)
        rc = metrics_json(g, t.text);
    else
        fputs(t.text, g->out);
    bnc_result_free(&t);
    return rc;
}

/* ---- stop ---- */

struct stop_state {
    double grace; /* < 0: the daemon's */
    bool no_wait;
};

static int stop_opt(struct ctl *g, int id, const char *v, void *state)
{
    struct stop_state *s = state;
    if (id == OPT_GRACE)
        return ctl_parse_duration_flag(g, "--grace", v, 0, CTL_GRACE_MAX, &s->grace);
    if (id == OPT_NO_WAIT)
        s->no_wait = true;
    return 0;
}

/* The daemon still exists: signal 0 reaches it and /proc does not show it dead
 * (a zombie waiting for its parent to reap it has exited all the same). */
static bool process_alive(pid_t pid)
{
    if (kill(pid, 0) < 0 && errno != EPERM)
        return false;
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return true; /* no /proc: signal 0 is all there is */
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    /* "pid (comm) S ...": the state follows the last ')' (comm may hold spaces). */
    const char *rp = strrchr(buf, ')');
    if (!rp || rp[1] != ' ')
        return true;
    return rp[2] != 'Z' && rp[2] != 'X';
}

int ctl_cmd_stop(struct ctl *g, int argc, char **argv)
{
    struct stop_state s = {.grace = -1, .no_wait = false};
    int rc = no_args(g, argc, argv, stop_opt, &s);
    if (rc == CTL_EXIT_OK)
        rc = ctl_connect(g);
    if (rc)
        return rc < 0 ? CTL_EXIT_OK : rc;
    pid_t pid = g->peer_pid;
    struct bnc_error err;
    if (bnc_shutdown(g->conn, s.grace, &err) < 0)
        return ctl_fail_bnc(g, &err);
    bnc_close(g->conn);
    g->conn = NULL;
    if (s.no_wait || pid <= 0) {
        if (!g->json)
            fprintf(g->out, "bitnetd is stopping\n");
        return CTL_EXIT_OK;
    }
    /* The daemon's default grace is not known here: wait for the largest one it
     * accepts unless --grace or --timeout says otherwise. */
    double limit = (s.grace >= 0 ? s.grace : CTL_GRACE_MAX) + STOP_WAIT_EXTRA_S;
    if (g->timeout_ms > 0 && g->timeout_ms / 1000.0 < limit)
        limit = g->timeout_ms / 1000.0;
    double t0 = ctl_now();
    ctl_sigint_arm(NULL);
    while (process_alive(pid)) {
        if (ctl_interrupted) {
            ctl_sigint_disarm();
            return ctl_fail(g, CTL_EXIT_INTERRUPTED, "interrupted; bitnetd (pid %d) is still stopping", (int)pid);
        }
        if (ctl_now() - t0 > limit) {
            ctl_sigint_disarm();
            return ctl_fail(g, CTL_EXIT_ERROR, "bitnetd (pid %d) is still running %.0f s after the shutdown request",
                            (int)pid, limit);
        }
        struct timespec ts = {0, STOP_POLL_NS};
        nanosleep(&ts, NULL);
    }
    ctl_sigint_disarm();
    if (g->json) {
        struct ctl_json j;
        ctl_json_init(&j, g->out, true);
        ctl_json_begin_object(&j);
        ctl_json_key(&j, "stopped");
        ctl_json_bool(&j, true);
        ctl_json_key(&j, "pid");
        ctl_json_int(&j, pid);
        ctl_json_key(&j, "seconds");
        ctl_json_number(&j, ctl_now() - t0);
        ctl_json_end_object(&j);
        ctl_json_finish(&j);
    } else {
        fprintf(g->out, "bitnetd (pid %d) stopped\n", (int)pid);
    }
    return CTL_EXIT_OK;
}

/* ---- version ---- */

int ctl_cmd_version(struct ctl *g, int argc, char **argv)
{
    int rc = no_args(g, argc, argv, NULL, NULL);
    if (rc)
        return rc < 0 ? CTL_EXIT_OK : rc;
    /* The daemon's version is a bonus: not running is reported, not an error. */
    FILE *saved = g->err;
    FILE *devnull = fopen("/dev/null", "w");
    if (devnull)
        g->err = devnull;
    int crc = ctl_connect(g);
    g->err = saved;
    if (devnull)
        fclose(devnull);
    const struct bnc_server_info *si = crc == CTL_EXIT_OK ? bnc_server_info(g->conn) : NULL;
    if (g->json) {
        struct ctl_json j;
        ctl_json_init(&j, g->out, true);
        ctl_json_begin_object(&j);
        ctl_json_key(&j, "bitnetctl");
        ctl_json_string(&j, PACKAGE_VERSION);
        ctl_json_key(&j, "protocol");
        ctl_json_int(&j, BNC_PROTOCOL_VERSION);
        ctl_json_key(&j, "socket");
        ctl_json_string(&j, g->socket_buf);
        ctl_json_key(&j, "server");
        ctl_json_string(&j, si ? si->server : NULL);
        ctl_json_key(&j, "server_protocol");
        if (si)
            ctl_json_int(&j, si->version);
        else
            ctl_json_null(&j);
        ctl_json_end_object(&j);
        ctl_json_finish(&j);
    } else {
        fprintf(g->out, "bitnetctl %s (protocol %d)\n", PACKAGE_VERSION, BNC_PROTOCOL_VERSION);
        if (si)
            fprintf(g->out, "%s (protocol %lld, pid %lld) on %s\n", si->server, (long long)si->version,
                    (long long)(g->peer_pid ? g->peer_pid : si->pid), g->socket_buf);
        else
            fprintf(g->out, "bitnetd: not reachable on %s\n", g->socket_buf);
    }
    return CTL_EXIT_OK;
}
