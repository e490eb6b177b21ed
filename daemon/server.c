/* daemon/server.c — the libuv loop around struct daemon: the listening Unix socket
 * (bound here or inherited through socket activation), accept with SO_PEERCRED,
 * signals (SIGTERM/SIGINT: graceful stop, SIGHUP: reload), sd_notify, the event queue
 * other threads use to reach the loop, and the shutdown sequence.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <pwd.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"

#define SD_LISTEN_FDS_START 3 /* systemd passes sockets from fd 3 on */
#define GROUPS_MAX 1024       /* supplementary groups looked at for admin_group */

double daemon_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void free_handle_data(uv_handle_t *h)
{
    free(h->data);
}

/* ---- sd_notify: one datagram to $NOTIFY_SOCKET (no libsystemd) ---- */
int daemon_sd_notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !*path)
        return 0;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t n = strlen(path);
    if (n >= sizeof(sa.sun_path) || (path[0] != '/' && path[0] != '@')) {
        bn_log(BN_LOG_WARN, "NOTIFY_SOCKET '%s' is not an absolute or abstract socket path", path);
        return -1;
    }
    memcpy(sa.sun_path, path, n);
    if (path[0] == '@')
        sa.sun_path[0] = 0; /* abstract namespace */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    ssize_t r = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa,
                       (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n));
    int e = errno;
    close(fd);
    if (r < 0) {
        bn_log(BN_LOG_WARN, "sd_notify to %s failed: %s", path, strerror(e));
        return -1;
    }
    return 0;
}

/* ---- events from other threads ---- */
struct event *event_new(enum event_kind kind, struct req *r, const char *text, size_t len)
{
    struct event *ev = malloc(sizeof(*ev) + len);
    if (!ev)
        return NULL;
    memset(ev, 0, sizeof(*ev));
    ev->kind = kind;
    ev->req = r;
    ev->text_len = (uint32_t)len;
    if (len)
        memcpy(ev->text, text, len);
    return ev;
}

void daemon_post(struct daemon *d, struct event *ev)
{
    pthread_mutex_lock(&d->ev_lock);
    if (d->ev_tail)
        d->ev_tail->next = ev;
    else
        d->ev_head = ev;
    d->ev_tail = ev;
    pthread_mutex_unlock(&d->ev_lock);
    uv_async_send(&d->wake);
}

static void on_wake(uv_async_t *a)
{
    struct daemon *d = a->data;
    pthread_mutex_lock(&d->ev_lock);
    struct event *ev = d->ev_head;
    d->ev_head = d->ev_tail = NULL;
    pthread_mutex_unlock(&d->ev_lock);
    while (ev) {
        struct event *next = ev->next;
        switch (ev->kind) {
        case EV_TOKEN: dispatch_token(d, ev->req, ev); break;
        case EV_DONE: dispatch_finish(d, ev->req); break;
        case EV_PROGRESS: models_on_progress(d, ev->req, ev->done, ev->total); break;
        }
        free(ev);
        ev = next;
    }
}

static void on_check(uv_check_t *h)
{
    conn_flush_all(h->data);
}

/* ---- credentials ---- */
static int group_lookup(const char *name, gid_t *out, struct bn_err *err)
{
    struct group gr, *res = NULL;
    char buf[16384];
    int e = getgrnam_r(name, &gr, buf, sizeof(buf), &res);
    if (!res) {
        char *end;
        long v = strtol(name, &end, 10);
        if (*name && !*end && v >= 0) {
            *out = (gid_t)v;
            return 0;
        }
        return bn_errf(err, "group '%s' does not exist%s%s", name, e ? ": " : "", e ? strerror(e) : "");
    }
    *out = gr.gr_gid;
    return 0;
}

bool daemon_peer_is_admin(const struct daemon *d, uid_t uid, gid_t gid)
{
    if (uid == 0 || uid == d->uid)
        return true;
    if (!d->has_admin_gid)
        return false;
    if (gid == d->admin_gid)
        return true;
    /* Supplementary groups of the peer's user (SO_PEERCRED carries only the primary). */
    struct passwd pw, *res = NULL;
    char buf[16384];
    if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) != 0 || !res)
        return false;
    gid_t groups[GROUPS_MAX];
    int n = GROUPS_MAX;
    if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &n) < 0)
        n = GROUPS_MAX;
    for (int i = 0; i < n; i++)
        if (groups[i] == d->admin_gid)
            return true;
    return false;
}

/* admin_group of config c into (*has, *gid). */
static int resolve_admin_group(const struct daemon_config *c, bool *has, gid_t *gid, struct bn_err *err)
{
    *has = false;
    if (c->admin_group) {
        if (group_lookup(c->admin_group, gid, err) < 0)
            return -1;
        *has = true;
    }
    return 0;
}

/* ---- listening socket ---- */
static int lock_fd = -1; /* flock on SOCKET.lock: one daemon per socket path */

static int socket_take_path(const char *path, struct bn_err *err)
{
    char lock_path[sizeof(((struct sockaddr_un *)0)->sun_path) + 8];
    snprintf(lock_path, sizeof(lock_path), "%s.lock", path);
    int lfd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (lfd < 0)
        return bn_errf(err, "%s: cannot create the lock file: %s", lock_path, strerror(errno));
    if (flock(lfd, LOCK_EX | LOCK_NB) < 0) {
        close(lfd);
        return bn_errf(err, "%s: another bitnetd holds this socket's lock (is one already running?)", path);
    }
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            close(lfd);
            return bn_errf(err, "%s exists and is not a socket: remove it or choose another --socket", path);
        }
        /* A socket file: live if something accepts a connection on it. */
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        int r = fd >= 0 ? connect(fd, (struct sockaddr *)&sa, sizeof(sa)) : -1;
        int e = errno;
        if (fd >= 0)
            close(fd);
        if (r == 0) {
            close(lfd);
            return bn_errf(err, "%s: another daemon is already serving this socket", path);
        }
        if (e != ECONNREFUSED && e != ENOENT) {
            close(lfd);
            return bn_errf(err, "%s: cannot tell whether the existing socket is live: %s", path, strerror(e));
        }
        if (unlink(path) < 0 && errno != ENOENT) {
            close(lfd);
            return bn_errf(err, "%s: cannot remove the stale socket: %s", path, strerror(errno));
        }
        bn_log(BN_LOG_INFO, "removed stale socket %s", path);
    }
    lock_fd = lfd;
    return 0;
}

static int socket_bind(struct daemon *d, struct bn_err *err)
{
    const char *path = d->cfg.socket_path;
    char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
    snprintf(dir, sizeof(dir), "%s", path);
    char *dn = dirname(dir);
    struct stat st;
    if (stat(dn, &st) < 0) {
        if (errno != ENOENT || mkdir(dn, 0755) < 0)
            return bn_errf(err, "%s: the socket's folder cannot be created: %s", dn, strerror(errno));
        bn_log(BN_LOG_INFO, "created folder %s for the socket", dn);
    }
    if (socket_take_path(path, err) < 0)
        return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return bn_errf(err, "socket(): %s", strerror(errno));
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    /* Bind under a tight umask so the socket is never briefly open to others. */
    mode_t old = umask(0177);
    int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    int e = errno;
    umask(old);
    if (r < 0) {
        close(fd);
        return bn_errf(err, "%s: bind: %s", path, strerror(e));
    }
    mode_t mode = 0600;
    if (d->has_socket_gid) {
        if (chown(path, (uid_t)-1, d->socket_gid) < 0) {
            e = errno;
            unlink(path);
            close(fd);
            return bn_errf(err, "%s: cannot give the socket to group %s: %s", path, d->cfg.socket_group, strerror(e));
        }
        mode = 0660;
    }
    if (chmod(path, mode) < 0 || listen(fd, DAEMON_SOCKET_BACKLOG) < 0) {
        e = errno;
        unlink(path);
        close(fd);
        return bn_errf(err, "%s: %s", path, strerror(e));
    }
    d->owns_socket_file = true;
    return fd;
}

long daemon_listen_fds(void)
{
    const char *pid_s = getenv("LISTEN_PID"), *fds_s = getenv("LISTEN_FDS");
    if (!pid_s || !fds_s)
        return 0;
    char *end;
    long pid = strtol(pid_s, &end, 10);
    if (*end || pid != (long)getpid())
        return 0; /* meant for another process */
    long n = strtol(fds_s, &end, 10);
    return *end || n < 1 ? -1 : n;
}

/* $LISTEN_FDS socket activation: the first passed fd must be a listening Unix stream
 * socket.  Returns the fd, 0 when not activated, -1 on error. */
static int socket_from_activation(struct bn_err *err)
{
    long n = daemon_listen_fds();
    if (n == 0)
        return 0;
    char fds_s[32];
    snprintf(fds_s, sizeof(fds_s), "%.31s", getenv("LISTEN_FDS"));
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    if (n < 0)
        return bn_errf(err, "LISTEN_FDS='%s' is not a positive count", fds_s);
    int fd = SD_LISTEN_FDS_START;
    int type = 0, acc = 0;
    socklen_t tl = sizeof(type), al = sizeof(acc);
    struct sockaddr_un sa;
    socklen_t sl = sizeof(sa);
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 || type != SOCK_STREAM ||
        getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al) < 0 || !acc ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) < 0 || sa.sun_family != AF_UNIX)
        return bn_errf(err, "socket activation: fd %d is not a listening Unix stream socket", fd);
    if (n > 1)
        bn_log(BN_LOG_WARN, "socket activation passed %ld sockets; bitnetd uses only the first", n);
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

static void on_connection(uv_stream_t *server, int status)
{
    struct daemon *d = server->data;
    if (status < 0) {
        bn_log(BN_LOG_WARN, "accept: %s", uv_strerror(status));
        return;
    }
    struct conn *c = calloc(1, sizeof(*c));
    if (!c) {
        bn_log(BN_LOG_ERROR, "out of memory accepting a connection");
        return;
    }
    uv_pipe_init(&d->loop, &c->pipe, 0);
    c->pipe.data = c;
    c->d = d;
    if (uv_accept(server, (uv_stream_t *)&c->pipe) < 0) {
        uv_close((uv_handle_t *)&c->pipe, free_handle_data);
        return;
    }
    uv_os_fd_t fd;
    struct ucred cred;
    socklen_t cl = sizeof(cred);
    if (uv_fileno((uv_handle_t *)&c->pipe, &fd) < 0 ||
        getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0) {
        bn_log(BN_LOG_WARN, "connection without peer credentials refused: %s", strerror(errno));
        uv_close((uv_handle_t *)&c->pipe, free_handle_data);
        return;
    }
    c->peer_pid = cred.pid;
    c->peer_uid = cred.uid;
    c->peer_gid = cred.gid;
    c->admin = daemon_peer_is_admin(d, cred.uid, cred.gid);
    conn_start(d, c);
    if (d->n_conns > (unsigned)d->cfg.max_connections) {
        conn_send_error(c, NULL, BN_RPC_E_BUSY, "too many connections (max_connections = %d)",
                        d->cfg.max_connections);
        c->close_after_flush = true;
    }
}

static int listener_open(struct daemon *d, struct bn_err *err)
{
    int fd = socket_from_activation(err);
    if (fd < 0)
        return -1;
    if (fd > 0) {
        d->activated = true;
    } else {
        fd = socket_bind(d, err);
        if (fd < 0)
            return -1;
    }
    uv_pipe_init(&d->loop, &d->listener, 0);
    d->listener.data = d;
    int r = uv_pipe_open(&d->listener, fd);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&d->listener, DAEMON_SOCKET_BACKLOG, on_connection);
    if (r < 0) {
        uv_close((uv_handle_t *)&d->listener, NULL);
        return bn_errf(err, "listen on %s: %s", d->activated ? "the activated socket" : d->cfg.socket_path,
                       uv_strerror(r));
    }
    d->listening = true;
    return 0;
}

static void listener_close(struct daemon *d)
{
    if (!d->listening)
        return;
    d->listening = false;
    uv_close((uv_handle_t *)&d->listener, NULL);
    if (d->owns_socket_file) {
        unlink(d->cfg.socket_path);
        d->owns_socket_file = false;
    }
}

/* Room for max_connections clients plus the daemon's own files: the soft
 * RLIMIT_NOFILE is often 1024 (systemd's default too), which would make accept()
 * fail with EMFILE long before max_connections.  Raised towards the hard limit. */
static void raise_nofile(const struct daemon *d)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t want = (rlim_t)d->cfg.max_connections + DAEMON_FD_RESERVE;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        rlim_t was = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            rl.rlim_cur = was;
        else
            bn_log(BN_LOG_DEBUG, "RLIMIT_NOFILE raised from %llu to %llu", (unsigned long long)was,
                   (unsigned long long)rl.rlim_cur);
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want)
        bn_log(BN_LOG_WARN,
               "only %llu open files allowed (RLIMIT_NOFILE hard limit): about %llu client connections, "
               "fewer than max_connections = %d; raise the limit (LimitNOFILE= in the unit, ulimit -n)",
               (unsigned long long)rl.rlim_cur,
               (unsigned long long)(rl.rlim_cur > DAEMON_FD_RESERVE ? rl.rlim_cur - DAEMON_FD_RESERVE : 0),
               d->cfg.max_connections);
}

/* ---- reload and shutdown ---- */
static void daemon_reload(struct daemon *d)
{
    struct daemon_config next;
    struct bn_err err = {{0}};
    bool exit_now = false;
    if (config_load(&next, &d->args, &exit_now, &err) < 0) {
        bn_log(BN_LOG_ERROR, "config reload failed, keeping the current config: %s", err.msg);
        return;
    }
    bool has_admin = false;
    gid_t admin_gid = 0;
    if (resolve_admin_group(&next, &has_admin, &admin_gid, &err) < 0) {
        bn_log(BN_LOG_ERROR, "config reload failed, keeping the current config: %s", err.msg);
        config_free(&next);
        return;
    }
    int n = config_log_changes(&d->cfg, &next);
    config_keep_restart_keys(&next, &d->cfg);
    d->has_admin_gid = has_admin;
    d->admin_gid = admin_gid;
    config_free(&d->cfg);
    d->cfg = next;
    bn_log_set_level(d->cfg.log_level);
    raise_nofile(d); /* max_connections may have grown */
    bn_log(BN_LOG_INFO, "config reloaded from %s (%d change%s)", d->cfg.config_path ? d->cfg.config_path : "flags and environment",
           n, n == 1 ? "" : "s");
}

static void cancel_everything(struct daemon *d, int code)
{
    bool any = false;
    for (struct conn *c = d->conns; c; c = c->next)
        for (struct req *r = c->reqs; r; r = r->conn_next) {
            int zero = 0;
            atomic_compare_exchange_strong(&r->cancel, &zero, code);
            any = true;
        }
    if (any && d->sched)
        sched_wake(d->sched);
}

static void on_grace(uv_timer_t *t)
{
    struct daemon *d = t->data;
    if (d->gen_inflight || d->work_inflight)
        bn_log(BN_LOG_WARN, "shutdown grace period over: ending %u request%s in flight", d->gen_inflight,
               d->gen_inflight == 1 ? "" : "s");
    d->grace_expired = true;
    cancel_everything(d, BN_RPC_E_SHUTTING_DOWN);
    daemon_maybe_finish(d);
}

static void close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

void daemon_close_loop_handles(struct daemon *d)
{
    close_handle((uv_handle_t *)&d->wake);
    close_handle((uv_handle_t *)&d->flush_check);
    close_handle((uv_handle_t *)&d->grace_timer);
    close_handle((uv_handle_t *)&d->unclaimed_timer);
}

/* Answers were flushed but some clients do not read them: close them anyway. */
static void on_linger(uv_timer_t *t)
{
    struct daemon *d = t->data;
    if (d->n_conns)
        bn_log(BN_LOG_WARN, "closing %u connection%s whose clients did not read their last answers", d->n_conns,
               d->n_conns == 1 ? "" : "s");
    while (d->conns)
        conn_close(d->conns);
    daemon_close_loop_handles(d);
}

void daemon_maybe_finish(struct daemon *d)
{
    if (!d->shutting_down || d->stopped || d->gen_inflight || d->work_inflight)
        return;
    d->stopped = true;
    bn_log(BN_LOG_INFO, "all work finished; closing %u connection%s", d->n_conns, d->n_conns == 1 ? "" : "s");
    for (struct conn *c = d->conns, *next; c; c = next) {
        next = c->next;
        c->close_after_flush = true;
        if (!c->dirty && c->write_queued == 0 && c->out.size == 0)
            conn_close(c);
    }
    conn_flush_all(d);
    models_close_all(d);
    if (d->sched) {
        sched_stop(d->sched);
        d->sched = NULL;
    }
    if (d->http) {
        metrics_http_close(d->http);
        d->http = NULL;
    }
    close_handle((uv_handle_t *)&d->sig_term);
    close_handle((uv_handle_t *)&d->sig_int);
    close_handle((uv_handle_t *)&d->sig_hup);
    /* wake, flush_check and the timer close with the last connection (conn_close). */
    if (d->n_conns == 0)
        daemon_close_loop_handles(d);
    else
        uv_timer_start(&d->grace_timer, on_linger, DAEMON_LINGER_MS, 0);
}

void daemon_shutdown(struct daemon *d, double grace)
{
    if (d->shutting_down)
        return;
    d->shutting_down = true;
    daemon_sd_notify("STOPPING=1");
    bn_log(BN_LOG_INFO, "shutting down: %u request%s in flight, grace %.3g s", d->gen_inflight,
           d->gen_inflight == 1 ? "" : "s", grace);
    listener_close(d);
    if (d->gen_inflight || d->work_inflight) {
        if (grace <= 0)
            on_grace(&d->grace_timer);
        else
            uv_timer_start(&d->grace_timer, on_grace, (uint64_t)(grace * 1000.0 + 0.5), 0);
    }
    daemon_maybe_finish(d);
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct daemon *d = s->data;
    if (signum == SIGHUP) {
        bn_log(BN_LOG_INFO, "SIGHUP: reloading the config");
        daemon_reload(d);
        return;
    }
    if (d->shutting_down) {
        bn_log(BN_LOG_WARN, "%s again: ending all work now", strsignal(signum));
        on_grace(&d->grace_timer);
        return;
    }
    bn_log(BN_LOG_INFO, "%s received", strsignal(signum));
    daemon_shutdown(d, d->cfg.shutdown_grace);
}

/* ---- run ---- */

/* Segments an earlier run left (reattached at start) that no load claimed within
 * keep_alive seconds go, as an idle model would: else a model nobody uses any more
 * would stay in shared memory for good once the daemon restarted. */
static void on_unclaimed(uv_timer_t *t)
{
    struct daemon *d = t->data;
    int n = registry_discard_unused(d->reg);
    if (n)
        bn_log(BN_LOG_INFO, "discarded %d segment%s of an earlier run that no load claimed within keep_alive (%.3g s)",
               n, n == 1 ? "" : "s", d->cfg.keep_alive);
}

static int registry_start(struct daemon *d, struct bn_err *err)
{
    struct registry_config rc;
    registry_config_default(&rc);
    rc.instance = d->cfg.instance;
    rc.shm_dir = d->cfg.shm_dir;
    rc.mem_limit = d->cfg.mem_limit;
    rc.mlock = d->cfg.mlock;
    rc.huge_pages = d->cfg.huge_pages;
    enum load_method lm = LOAD_IO_URING;
    load_method_parse(d->cfg.load_method, &lm);
    rc.load.method = lm;
    return registry_open(&d->reg, &rc, err);
}

int daemon_run(struct daemon_config *cfg, const struct config_args *args)
{
    struct daemon *d = calloc(1, sizeof(*d));
    if (!d) {
        bn_log(BN_LOG_ERROR, "out of memory");
        config_free(cfg);
        return 1;
    }
    d->cfg = *cfg;
    memset(cfg, 0, sizeof(*cfg));
    d->args = *args;
    d->uid = geteuid();
    bn_log_set_level(d->cfg.log_level);
    signal(SIGPIPE, SIG_IGN);
    metrics_init(&d->metrics);
    struct bn_err err = {{0}};
    int rc = 1;

    if (resolve_admin_group(&d->cfg, &d->has_admin_gid, &d->admin_gid, &err) < 0)
        goto fail_early;
    if (d->cfg.socket_group) {
        if (group_lookup(d->cfg.socket_group, &d->socket_gid, &err) < 0)
            goto fail_early;
        d->has_socket_gid = true;
    }
    pthread_mutex_init(&d->ev_lock, NULL);
    uv_loop_init(&d->loop);
    uv_async_init(&d->loop, &d->wake, on_wake);
    d->wake.data = d;
    uv_check_init(&d->loop, &d->flush_check);
    d->flush_check.data = d;
    uv_check_start(&d->flush_check, on_check);
    uv_timer_init(&d->loop, &d->grace_timer);
    d->grace_timer.data = d;
    uv_timer_init(&d->loop, &d->unclaimed_timer);
    d->unclaimed_timer.data = d;
    uv_signal_init(&d->loop, &d->sig_term);
    uv_signal_init(&d->loop, &d->sig_int);
    uv_signal_init(&d->loop, &d->sig_hup);
    d->sig_term.data = d->sig_int.data = d->sig_hup.data = d;

    raise_nofile(d);
    if (listener_open(d, &err) < 0)
        goto fail;
    if (registry_start(d, &err) < 0)
        goto fail;
    if (registry_list(d->reg, NULL, 0) > 0 && d->cfg.keep_alive >= 0)
        uv_timer_start(&d->unclaimed_timer, on_unclaimed, (uint64_t)(d->cfg.keep_alive * 1000.0 + 0.5), 0);
    if (sched_start(&d->sched, d, d->cfg.parallel, d->cfg.prefill_chunk, &err) < 0)
        goto fail;
    if (d->cfg.metrics_listen &&
        metrics_http_start(&d->http, &d->loop, &d->metrics, d->cfg.metrics_listen,
                           d->cfg.metrics_allow_remote, &err) < 0)
        goto fail;
    if (d->cfg.otlp_endpoint &&
        otlp_start(&d->otlp, &d->metrics, d->cfg.otlp_endpoint, d->cfg.otlp_interval, &err) < 0)
        goto fail;
    uv_signal_start(&d->sig_term, on_signal, SIGTERM);
    uv_signal_start(&d->sig_int, on_signal, SIGINT);
    uv_signal_start(&d->sig_hup, on_signal, SIGHUP);

    if (d->http)
        bn_log(BN_LOG_INFO, "metrics on http://%s/metrics (port %d)", d->cfg.metrics_listen,
               metrics_http_port(d->http));
    bn_log(BN_LOG_INFO, "%s listening on %s%s (parallel %d, queue %d, %zu configured model%s)",
           BITNETD_VERSION_STRING, d->activated ? "an activated socket" : d->cfg.socket_path,
           d->has_socket_gid ? " (group access)" : "", d->cfg.parallel, d->cfg.max_queue,
           d->cfg.n_models, d->cfg.n_models == 1 ? "" : "s");
    {
        char st[128];
        snprintf(st, sizeof(st), "READY=1\nSTATUS=listening\nMAINPID=%d", (int)getpid());
        daemon_sd_notify(st);
    }
    uv_run(&d->loop, UV_RUN_DEFAULT);
    rc = d->exit_code;
    goto done;

fail:
    bn_log(BN_LOG_ERROR, "%s", err.msg);
    rc = 1;
    listener_close(d);
    if (d->sched)
        sched_stop(d->sched);
    d->sched = NULL;
    if (d->http)
        metrics_http_close(d->http);
    d->http = NULL;
    close_handle((uv_handle_t *)&d->wake);
    close_handle((uv_handle_t *)&d->flush_check);
    close_handle((uv_handle_t *)&d->grace_timer);
    close_handle((uv_handle_t *)&d->unclaimed_timer);
    close_handle((uv_handle_t *)&d->sig_term);
    close_handle((uv_handle_t *)&d->sig_int);
    close_handle((uv_handle_t *)&d->sig_hup);
    uv_run(&d->loop, UV_RUN_DEFAULT);
done:
    if (d->otlp)
        otlp_stop(d->otlp);
    if (d->reg)
        registry_close(d->reg);
    if (uv_loop_close(&d->loop) != 0)
        bn_log(BN_LOG_DEBUG, "loop closed with handles still open");
    pthread_mutex_destroy(&d->ev_lock);
    if (lock_fd >= 0) {
        close(lock_fd);
        lock_fd = -1;
    }
    config_free(&d->cfg);
    free(d);
    if (rc == 0)
        bn_log(BN_LOG_INFO, "stopped");
    return rc;
fail_early:
    bn_log(BN_LOG_ERROR, "%s", err.msg);
    config_free(&d->cfg);
    free(d);
    return 1;
}
