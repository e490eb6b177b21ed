/* client/ctl_conn.c — what bitnetctl's commands share about the daemon: connecting
 * (with a clear "not running" message), turning library errors into exit codes,
 * Ctrl-C, naming a model (path or name) and loading it on demand. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl.h"

#define CTL_CLIENT_NAME "bitnetctl " PACKAGE_VERSION
#define CTL_READ_CHUNK 65536 /* bytes read from stdin at a time */

/* ---- errors ---- */

int ctl_exit_code(int code)
{
    switch (code) {
    case BNC_OK: return CTL_EXIT_OK;
    case BNC_E_CONNECT: return CTL_EXIT_CONNECT;
    case BNC_E_MODEL_NOT_FOUND:
    case BNC_E_MODEL_NOT_LOADED: return CTL_EXIT_NOT_FOUND;
    case BNC_E_BUSY: return CTL_EXIT_BUSY;
    case BNC_E_PERMISSION_DENIED: return CTL_EXIT_PERMISSION;
    case BNC_E_CANCELLED: return ctl_interrupted ? CTL_EXIT_INTERRUPTED : CTL_EXIT_ERROR;
    default: return CTL_EXIT_ERROR;
    }
}

int ctl_fail_bnc(struct ctl *g, const struct bnc_error *e)
{
    if (ctl_interrupted && (e->code == BNC_E_CANCELLED || e->code == BNC_E_IO))
        return ctl_fail(g, CTL_EXIT_INTERRUPTED, "interrupted");
    if (g->verbose)
        return ctl_fail(g, ctl_exit_code(e->code), "%s [%s %d]", e->message, bnc_code_name(e->code), e->code);
    return ctl_fail(g, ctl_exit_code(e->code), "%s", e->message);
}

/* ---- connecting ---- */

void ctl_not_running_message(char *buf, size_t size, const char *path)
{
    snprintf(buf, size,
             "bitnetd is not running on %s; start it with `bitnetctl serve` or `systemctl start bitnetd`", path);
}

int ctl_connect(struct ctl *g)
{
    if (g->conn)
        return 0;
    if (g->socket_path) {
        snprintf(g->socket_buf, sizeof(g->socket_buf), "%s", g->socket_path);
    } else if (bnc_default_socket_path(g->socket_buf, sizeof(g->socket_buf)) < 0) {
        return ctl_fail(g, CTL_EXIT_USAGE,
                        "the default socket path ($%s or $XDG_RUNTIME_DIR/bitnetd.sock) is longer than %d bytes; "
                        "use --socket",
                        BNC_SOCKET_ENV, CTL_SOCKET_PATH_MAX - 1);
    }
    const char *path = g->socket_buf;
    /* The connect is done here rather than by bnc_connect so that its errno tells
     * "nothing listens" (exit 3) from "not allowed" (exit 6). */
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return ctl_fail(g, CTL_EXIT_ERROR, "socket: %s", strerror(errno));
    while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        if (errno == EINTR)
            continue;
        int e = errno;
        close(fd);
        if (e == EACCES || e == EPERM)
            return ctl_fail(g, CTL_EXIT_PERMISSION,
                            "permission denied on %s: the daemon's socket is open to its owner and "
                            "socket_group only (see bitnetd.conf)",
                            path);
        if (e == ENOENT || e == ECONNREFUSED || e == ENOTDIR) {
            char msg[CTL_SOCKET_PATH_MAX + 160];
            ctl_not_running_message(msg, sizeof(msg), path);
            return ctl_fail(g, CTL_EXIT_CONNECT, "%s", msg);
        }
        return ctl_fail(g, CTL_EXIT_CONNECT, "cannot connect to bitnetd on %s: %s", path, strerror(e));
    }
    struct ucred cred;
    socklen_t cl = sizeof(cred);
    g->peer_pid = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0 ? cred.pid : 0;
    struct bnc_options opt;
    bnc_options_init(&opt);
    opt.socket_path = path;
    opt.client_name = CTL_CLIENT_NAME;
    opt.timeout_ms = g->timeout_ms;
    if (g->timeout_ms > 0)
        opt.connect_timeout_ms = g->timeout_ms;
    struct bnc_error err;
    if (bnc_connect_fd(&g->conn, fd, &opt, &err) < 0) {
        g->conn = NULL;
        return ctl_fail_bnc(g, &err);
    }
    if (g->verbose) {
        const struct bnc_server_info *si = bnc_server_info(g->conn);
        fprintf(g->err, "bitnetctl: connected to %s (protocol %lld, pid %lld) on %s\n", si->server,
                (long long)si->version, (long long)(g->peer_pid ? g->peer_pid : si->pid), path);
    }
    return 0;
}

/* ---- Ctrl-C ---- */

volatile sig_atomic_t ctl_interrupted;
static struct bnc_conn *volatile sig_conn;
static struct sigaction old_int;
static bool armed;

static void on_sigint(int sig)
{
    (void)sig;
    ctl_interrupted = 1;
    struct bnc_conn *c = sig_conn;
    if (c)
        bnc_cancel(c); /* async-signal-safe per bitnet_client.h */
}

void ctl_sigint_arm(struct bnc_conn *conn)
{
    sig_conn = conn;
    if (armed)
        return;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: a blocked read of stdin returns EINTR */
    if (sigaction(SIGINT, &sa, &old_int) == 0)
        armed = true;
}

void ctl_sigint_disarm(void)
{
    sig_conn = NULL;
    if (armed) {
        sigaction(SIGINT, &old_int, NULL);
        armed = false;
    }
}

/* ---- models ---- */

static bool looks_like_path(const char *s)
{
    size_t n = strlen(s);
    return strchr(s, '/') || (n > 5 && strcmp(s + n - 5, ".gguf") == 0);
}

const char *ctl_model_arg(const char *arg, char *buf, size_t size)
{
    if (!looks_like_path(arg))
        return arg;
    char abs[PATH_MAX];
    if (!realpath(arg, abs) || strlen(abs) >= size)
        return arg; /* not a file here: the daemon decides (a name, or its own path) */
    memcpy(buf, abs, strlen(abs) + 1);
    return buf;
}

void ctl_load_label(char *buf, size_t size, const char *model)
{
    const char *slash = strrchr(model, '/');
    snprintf(buf, size, "loading %.60s", slash && slash[1] ? slash + 1 : model);
}

int ctl_find_resident(struct ctl *g, const char *model, char *name, size_t size, int64_t *ctx)
{
    struct bnc_ps_result ps;
    struct bnc_error err;
    if (bnc_ps(g->conn, &ps, &err) < 0)
        return ctl_fail_bnc(g, &err);
    int found = 0;
    for (size_t i = 0; i < ps.n_models && !found; i++) {
        const struct bnc_model_status *m = &ps.models[i];
        if (strcmp(m->name, model) == 0 || strcmp(m->path, model) == 0) {
            snprintf(name, size, "%s", m->name);
            if (ctx)
                *ctx = m->ctx;
            found = 1;
        }
    }
    bnc_result_free(&ps);
    return found;
}

static int on_progress(void *user, int64_t done, int64_t total)
{
    ctl_progress_update(user, done, total);
    return ctl_interrupted ? 1 : 0;
}

int ctl_ensure_loaded(struct ctl *g, const char *model_in, const struct ctl_load_opts *lo, char *name,
                      size_t size, int64_t *ctx)
{
    char buf[CTL_PATH_MAX];
    const char *model = ctl_model_arg(model_in, buf, sizeof(buf));
    *ctx = 0;
    if (!lo->any) {
        int r = ctl_find_resident(g, model, name, size, ctx);
        if (r == 1)
            return 0;
        if (r != 0)
            return r;
    }
    struct bnc_load_params p;
    bnc_load_params_init(&p);
    p.model = model;
    p.ctx = lo->ctx;
    p.threads = lo->threads;
    p.has_keep_alive = lo->has_keep_alive;
    p.keep_alive = lo->keep_alive;
    struct ctl_progress bar;
    char label[CTL_NAME_MAX + 16];
    ctl_load_label(label, sizeof(label), model_in);
    ctl_progress_start(&bar, g->err_tty && !g->json ? g->err : NULL, label);
    struct bnc_load_result res;
    struct bnc_error err;
    ctl_sigint_arm(g->conn);
    int rc = bnc_load(g->conn, &p, bar.f ? on_progress : NULL, &bar, &res, &err);
    ctl_sigint_disarm();
    ctl_progress_finish(&bar);
    if (rc < 0) {
        if (err.code == BNC_E_PERMISSION_DENIED && !lo->any) {
            /* Not allowed to load: the model may still be resident under this name
             * (checked above by path), so let the request itself say what is wrong. */
            snprintf(name, size, "%s", model);
            g->load_refused = true;
            g->load_error = err;
            if (g->verbose)
                fprintf(g->err, "bitnetctl %s: cannot load %s (%s); trying it as a loaded model name\n",
                        g->cmd->name, model, err.message);
            return 0;
        }
        return ctl_fail_bnc(g, &err);
    }
    snprintf(name, size, "%s", res.name);
    if (g->verbose && !res.already_loaded) {
        char b[24], d[24];
        fprintf(g->err, "bitnetctl %s: loaded %s (%s by %s in %s)\n", g->cmd->name, res.name,
                ctl_fmt_bytes(res.bytes, b, sizeof(b)), res.loaded_by, ctl_fmt_duration(res.load_seconds, d, sizeof(d)));
    }
    bnc_result_free(&res);
    /* The context length the model was loaded with, for callers that check fit. */
    int r = ctl_find_resident(g, name, name, size, ctx);
    return r > 1 ? r : 0;
}

int ctl_fail_model_request(struct ctl *g, const struct bnc_error *e)
{
    if (e->code == BNC_E_MODEL_NOT_LOADED && g->load_refused)
        return ctl_fail_bnc(g, &g->load_error);
    return ctl_fail_bnc(g, e);
}

/* ---- input ---- */

char *ctl_read_all(FILE *f, size_t max, size_t *len)
{
    size_t cap = CTL_READ_CHUNK, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf)
        return NULL;
    for (;;) {
        if (n == cap) {
            if (cap > max) {
                free(buf);
                errno = EFBIG;
                return NULL;
            }
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb) {
                free(buf);
                return NULL;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) {
                int e = errno ? errno : EIO;
                free(buf);
                errno = e;
                return NULL;
            }
            break;
        }
    }
    if (n > max) {
        free(buf);
        errno = EFBIG;
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}
