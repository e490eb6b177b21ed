/* tests/daemon_harness.c — see daemon_harness.h. */
#include "daemon_harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ENV_MODEL "DH_TEST_MODEL" /* not BITNETD_*: bitnetd would reject it */
#define ENV_MODEL_DIR "DH_TEST_MODEL_DIR"
#define ENV_MODEL_WHY "DH_TEST_MODEL_WHY"

void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int make_tmpdir(char *out, size_t len, const char *tag)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    snprintf(out, len, "%s/%s-XXXXXX", base, tag);
    return mkdtemp(out) ? 0 : -1;
}

void rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (d) {
            struct dirent *e;
            while ((e = readdir(d))) {
                if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                    continue;
                char sub[DH_PATH_MAX * 2];
                snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
                rm_rf(sub);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

/* ---- the model ---- */

static int run_wait(char *const argv[])
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) {
            dup2(null, 1);
            dup2(null, 2);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    int st;
    if (waitpid(pid, &st, 0) < 0)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void dh_model_setup(void)
{
    const char *build = getenv("BITNET_BUILD_DIR");
    const char *data = getenv("BITNET_TEST_DATA");
    char dir[DH_PATH_MAX], mk[DH_PATH_MAX], out[DH_PATH_MAX + 16];
    if (build && *build) {
        snprintf(mk, sizeof(mk), "%s/contrib/bitnet-mkmodel", build);
        if (access(mk, X_OK) == 0 && make_tmpdir(dir, sizeof(dir), "bitnetd-model") == 0) {
            snprintf(out, sizeof(out), "%s/tiny.gguf", dir);
            char *argv[] = {mk, "--preset", "tiny", "--out", out, NULL}; /* stdout+stderr: quiet */
            if (run_wait(argv) == 0) {
                setenv(ENV_MODEL, out, 1);
                setenv(ENV_MODEL_DIR, dir, 1);
                return;
            }
            rm_rf(dir);
        }
    }
    if (data && *data) {
        snprintf(out, sizeof(out), "%s/ref/tinyA-i2s.gguf", data);
        if (access(out, R_OK) == 0) {
            setenv(ENV_MODEL, out, 1);
            return;
        }
    }
    setenv(ENV_MODEL_WHY,
           "no tiny model: build contrib/bitnet-mkmodel (make) or provide the test data "
           "(BITNET_TEST_DATA with ref/tinyA-i2s.gguf)",
           1);
}

void dh_model_cleanup(void)
{
    const char *dir = getenv(ENV_MODEL_DIR);
    if (dir && *dir)
        rm_rf(dir);
}

const char *dh_model_path(void)
{
    const char *p = getenv(ENV_MODEL);
    return p && *p ? p : NULL;
}

const char *dh_model_why(void)
{
    const char *w = getenv(ENV_MODEL_WHY);
    return w ? w : "no tiny model (dh_model_setup did not run)";
}

/* ---- the daemon ---- */

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f);
}

const char *dh_notify_socket;

int dh_write_conf(const struct dh *h, const char *conf)
{
    char cfg[DH_PATH_MAX + 32], text[8192];
    snprintf(cfg, sizeof(cfg), "%s/bitnetd.conf", h->dir);
    const char *model = dh_model_path();
    snprintf(text, sizeof(text), "# written by the test harness\n%s\n[models]\ntiny = %s\n", conf ? conf : "",
             model ? model : "/nonexistent.gguf");
    return write_file(cfg, text);
}

static int try_connect(const char *sock)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (fd < 0)
        return -1;
    if (strlen(sock) >= sizeof(sa.sun_path)) {
        close(fd);
        return -1;
    }
    memcpy(sa.sun_path, sock, strlen(sock) + 1);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* reuse: start again in h's folder (same socket, segments and log), after the
 * previous daemon there exited or was killed. */
static int dh_spawn(struct dh *h, const char *conf, const char *const *args, bool activated, bool reuse)
{
    if (reuse) {
        if (!h->dir[0] || h->pid > 0)
            return -1;
    } else {
        memset(h, 0, sizeof(*h));
        if (make_tmpdir(h->dir, sizeof(h->dir), "bitnetd-test") < 0)
            return -1;
    }
    h->pid = -1;
    char cfg[DH_PATH_MAX + 32], shm[DH_PATH_MAX + 32], bin[DH_PATH_MAX];
    snprintf(h->sock, sizeof(h->sock), "%s/s.sock", h->dir);
    int listen_fd = -1;
    if (activated) { /* what systemd does for a .socket unit: bind and listen first */
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(h->sock) >= sizeof(sa.sun_path))
            return -1;
        memcpy(sa.sun_path, h->sock, strlen(h->sock) + 1);
        listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(listen_fd, 16) < 0)
            return -1;
    }
    snprintf(h->log, sizeof(h->log), "%s/bitnetd.log", h->dir);
    snprintf(cfg, sizeof(cfg), "%s/bitnetd.conf", h->dir);
    snprintf(shm, sizeof(shm), "%s/shm", h->dir);
    mkdir(shm, 0700);
    if (dh_write_conf(h, conf) < 0)
        return -1;
    const char *build = getenv("BITNET_BUILD_DIR");
    snprintf(bin, sizeof(bin), "%s/daemon/bitnetd", build && *build ? build : ".");
    const char *argv[64];
    int n = 0;
    argv[n++] = bin;
    argv[n++] = "--config";
    argv[n++] = cfg;
    bool own_socket = false; /* the test passes --socket PATH itself */
    for (int i = 0; args && args[i]; i++)
        if (strcmp(args[i], "--socket") == 0 && args[i + 1]) {
            snprintf(h->sock, sizeof(h->sock), "%s", args[i + 1]);
            own_socket = true;
        }
    if (listen_fd < 0 && !own_socket) {
        argv[n++] = "--socket";
        argv[n++] = h->sock;
    }
    argv[n++] = "--shm-dir";
    argv[n++] = shm;
    argv[n++] = "--log-level";
    argv[n++] = "debug";
    for (int i = 0; args && args[i] && n < 62; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    /* On a restart the log already says "listening on" once per earlier start. */
    int listening_before = dh_log_count(h, "listening on");
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a crashed test */
        if (getppid() != parent)
            _exit(1);
        int lf = open(h->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (lf >= 0) {
            dup2(lf, 1);
            dup2(lf, 2);
        }
        if (dh_notify_socket)
            setenv("NOTIFY_SOCKET", dh_notify_socket, 1);
        else
            unsetenv("NOTIFY_SOCKET");
        unsetenv("LISTEN_FDS");
        unsetenv("LISTEN_PID");
        if (listen_fd >= 0) {
            if (listen_fd != 3) {
                dup2(listen_fd, 3);
                close(listen_fd);
            }
            fcntl(3, F_SETFD, 0);
            char pidbuf[32];
            snprintf(pidbuf, sizeof(pidbuf), "%d", (int)getpid());
            setenv("LISTEN_FDS", "1", 1);
            setenv("LISTEN_PID", pidbuf, 1);
            /* the socket comes from the fd: no --socket nor XDG_RUNTIME_DIR needed */
            unsetenv("XDG_RUNTIME_DIR");
        }
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    h->pid = pid;
    if (listen_fd >= 0)
        close(listen_fd);
    int64_t deadline = now_ms() + DH_TIMEOUT_MS;
    while (now_ms() < deadline) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            h->pid = -1;
            h->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            fprintf(stderr, "bitnetd exited at start (status %d)\n", h->status);
            dh_dump_log(h);
            return -1;
        }
        if (dh_log_count(h, "listening on") > listening_before) {
            int fd = try_connect(h->sock);
            if (fd >= 0) {
                close(fd);
                return 0;
            }
        }
        sleep_ms(5);
    }
    fprintf(stderr, "bitnetd did not come up in %d ms\n", DH_TIMEOUT_MS);
    dh_dump_log(h);
    return -1;
}

int dh_start(struct dh *h, const char *conf, const char *const *args)
{
    return dh_spawn(h, conf, args, false, false);
}

int dh_start_activated(struct dh *h, const char *conf, const char *const *args)
{
    return dh_spawn(h, conf, args, true, false);
}

int dh_restart(struct dh *h, const char *conf, const char *const *args)
{
    return dh_spawn(h, conf, args, false, true);
}

int dh_wait(struct dh *h, int timeout_ms)
{
    if (h->pid <= 0)
        return h->status;
    int64_t deadline = now_ms() + timeout_ms;
    while (now_ms() < deadline) {
        int st;
        pid_t r = waitpid(h->pid, &st, WNOHANG);
        if (r == h->pid) {
            h->pid = -1;
            h->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            return h->status;
        }
        sleep_ms(5);
    }
    return -1;
}

int dh_stop(struct dh *h)
{
    if (h->pid <= 0)
        return h->status;
    kill(h->pid, SIGTERM);
    return dh_wait(h, DH_TIMEOUT_MS);
}

void dh_cleanup(struct dh *h)
{
    if (h->pid > 0) {
        /* SIGTERM first, so that a sanitized daemon runs its exit-time leak check
         * (a report fails the test through tests/sanitizer-check.sh). */
        kill(h->pid, SIGTERM);
        if (dh_wait(h, DH_CLEANUP_TERM_MS) < 0 && h->pid > 0) {
            kill(h->pid, SIGKILL);
            waitpid(h->pid, NULL, 0);
            h->pid = -1;
        }
    }
    if (h->dir[0]) {
        if (dh_log_has(h, "Sanitizer") || dh_log_has(h, "runtime error:"))
            dh_dump_log(h); /* sanitizer reports of the daemon would go with the folder */
        rm_rf(h->dir);
        h->dir[0] = 0;
    }
}

void dh_dump_log(const struct dh *h)
{
    FILE *f = fopen(h->log, "r");
    if (!f)
        return;
    char line[2048];
    fprintf(stderr, "---- %s ----\n", h->log);
    while (fgets(line, sizeof(line), f))
        fputs(line, stderr);
    fprintf(stderr, "---- end ----\n");
    fclose(f);
}

int dh_log_count(const struct dh *h, const char *s)
{
    FILE *f = fopen(h->log, "r");
    if (!f)
        return 0;
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof(line), f))
        n += strstr(line, s) != NULL;
    fclose(f);
    return n;
}

bool dh_log_has(const struct dh *h, const char *s)
{
    FILE *f = fopen(h->log, "r");
    if (!f)
        return false;
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f))
        found = strstr(line, s) != NULL;
    fclose(f);
    return found;
}

/* ---- the client ---- */

struct tc_stash {
    struct tc_stash *next;
    bool has_msgid;
    uint32_t msgid;
    size_t len;
    char data[];
};

int tc_open(struct tc *c, const char *sock)
{
    memset(c, 0, sizeof(*c));
    c->fd = try_connect(sock);
    if (c->fd < 0)
        return -1;
    struct bn_rpc_framer_limits lim;
    bn_rpc_framer_limits_default(&lim);
    lim.max_frame_bytes = 256u << 20;
    bn_rpc_framer_init(&c->fr, &lim);
    msgpack_sbuffer_init(&c->sb);
    msgpack_packer_init(&c->pk, &c->sb, msgpack_sbuffer_write);
    c->zone = msgpack_zone_new(65536);
    c->next_id = 1;
    return 0;
}

int tc_connect(struct tc *c, const char *sock)
{
    if (tc_open(c, sock) < 0)
        return -1;
    struct bn_rpc_hello_params hp = {.version = 1, .client = "test"};
    struct bn_rpc_hello_result hr;
    struct bn_rpc_error e;
    if (tc_call(c, BN_RPC_HELLO, &hp, &hr, &e) < 0) {
        fprintf(stderr, "hello failed: %d %s\n", e.code, e.message);
        tc_close(c);
        return -1;
    }
    return 0;
}

void tc_close(struct tc *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    bn_rpc_framer_destroy(&c->fr);
    msgpack_sbuffer_destroy(&c->sb);
    if (c->zone)
        msgpack_zone_free(c->zone);
    c->zone = NULL;
    free(c->tokens);
    c->tokens = NULL;
    while (c->stash) {
        struct tc_stash *s = c->stash;
        c->stash = s->next;
        free(s);
    }
}

int tc_send_raw(struct tc *c, const void *p, size_t n)
{
    const char *b = p;
    while (n) {
        ssize_t w = send(c->fd, b, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

uint32_t tc_send(struct tc *c, enum bn_rpc_method m, const void *params)
{
    uint32_t id = c->next_id++;
    c->sb.size = 0;
    bn_rpc_encode_request(&c->pk, id, m, params);
    tc_send_raw(c, c->sb.data, c->sb.size);
    return id;
}

static void record_note(struct tc *c, const struct bn_rpc_msg *m)
{
    struct bn_rpc_error e;
    if (m->note == BN_RPC_NOTE_TOKEN) {
        struct bn_rpc_token_note n;
        if (bn_rpc_decode_note(m, &n, c->zone, &e) < 0)
            return;
        if (c->n_tokens == c->cap_tokens) {
            c->cap_tokens = c->cap_tokens ? c->cap_tokens * 2 : 64;
            c->tokens = realloc(c->tokens, c->cap_tokens * sizeof(*c->tokens));
        }
        struct tc_token *t = &c->tokens[c->n_tokens++];
        t->msgid = n.msgid;
        t->token = n.token;
        t->text_len = strlen(n.text);
        snprintf(t->text, sizeof(t->text), "%s", n.text);
    } else if (m->note == BN_RPC_NOTE_PROGRESS) {
        c->n_progress++;
    }
}

/* Read one message within timeout: 1 with *o (valid until the next read), 0 on
 * timeout, -1 on EOF/error. */
static int read_message(struct tc *c, msgpack_object *o, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        struct bn_rpc_error e;
        int r = bn_rpc_framer_next(&c->fr, o, &e);
        if (r == 1)
            return 1;
        if (r < 0)
            return -1;
        int left = (int)(deadline - now_ms());
        if (left <= 0)
            return 0;
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        int pr = poll(&pfd, 1, left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr == 0)
            return 0;
        size_t cap;
        char *buf = bn_rpc_framer_buffer(&c->fr, 65536, &cap);
        ssize_t n = recv(c->fd, buf, cap, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            c->closed_by_server = true;
            return -1;
        }
        bn_rpc_framer_consumed(&c->fr, (size_t)n);
    }
}

static void stash_object(struct tc *c, const struct bn_rpc_msg *m, const msgpack_object *o)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_object(&pk, *o);
    struct tc_stash *s = malloc(sizeof(*s) + sb.size);
    s->has_msgid = m->has_msgid;
    s->msgid = m->msgid;
    s->len = sb.size;
    memcpy(s->data, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    s->next = NULL;
    struct tc_stash **pp = &c->stash;
    while (*pp)
        pp = &(*pp)->next;
    *pp = s;
}

/* Decode a response object for (has_msgid, msgid). */
static int decode_response(struct tc *c, const msgpack_object *o, enum bn_rpc_method m, void *result,
                           struct bn_rpc_error *err)
{
    struct bn_rpc_msg msg;
    if (bn_rpc_parse(o, &msg, err) < 0)
        return -1;
    return bn_rpc_decode_response(&msg, m, result, c->zone, err);
}

static int from_stash(struct tc *c, bool want_nil, uint32_t msgid, enum bn_rpc_method m, void *result,
                      struct bn_rpc_error *err, int *rc)
{
    for (struct tc_stash **pp = &c->stash; *pp; pp = &(*pp)->next) {
        struct tc_stash *s = *pp;
        if (want_nil ? s->has_msgid : (!s->has_msgid || s->msgid != msgid))
            continue;
        msgpack_unpacked up;
        msgpack_unpacked_init(&up);
        size_t off = 0;
        msgpack_unpack_next(&up, s->data, s->len, &off);
        *rc = decode_response(c, &up.data, m, result, err);
        msgpack_unpacked_destroy(&up);
        *pp = s->next;
        free(s);
        return 1;
    }
    return 0;
}

static int tc_wait_any(struct tc *c, bool want_nil, uint32_t msgid, enum bn_rpc_method m, void *result,
                       struct bn_rpc_error *err)
{
    int rc;
    if (from_stash(c, want_nil, msgid, m, result, err, &rc))
        return rc;
    int64_t deadline = now_ms() + DH_TIMEOUT_MS;
    for (;;) {
        msgpack_object o;
        int r = read_message(c, &o, (int)(deadline - now_ms()));
        if (r <= 0) {
            bn_rpc_errf(err, r == 0 ? BN_RPC_E_TIMEOUT : BN_RPC_E_IO,
                        r == 0 ? "no answer within %d ms" : "connection closed (waited %d ms at most)", DH_TIMEOUT_MS);
            return -1;
        }
        struct bn_rpc_msg msg;
        struct bn_rpc_error pe;
        if (bn_rpc_parse(&o, &msg, &pe) < 0) {
            *err = pe;
            return -1;
        }
        if (msg.kind == BN_RPC_NOTIFY) {
            record_note(c, &msg);
            continue;
        }
        if (want_nil ? !msg.has_msgid : (msg.has_msgid && msg.msgid == msgid))
            return decode_response(c, &o, m, result, err);
        if (!want_nil && !msg.has_msgid) {
            /* A framing error for the whole connection. */
            decode_response(c, &o, BN_RPC_PING, result, err);
            return -1;
        }
        stash_object(c, &msg, &o);
    }
}

int tc_wait(struct tc *c, uint32_t msgid, enum bn_rpc_method m, void *result, struct bn_rpc_error *err)
{
    union {
        struct bn_rpc_empty e;
        struct bn_rpc_show_result s;
        struct bn_rpc_generate_result g;
        struct bn_rpc_status_result st;
        struct bn_rpc_load_result l;
    } scratch;
    return tc_wait_any(c, false, msgid, m, result ? result : &scratch, err);
}

int tc_wait_nil(struct tc *c, struct bn_rpc_error *err)
{
    struct bn_rpc_empty e;
    return tc_wait_any(c, true, 0, BN_RPC_PING, &e, err);
}

int tc_call(struct tc *c, enum bn_rpc_method m, const void *params, void *result, struct bn_rpc_error *err)
{
    uint32_t id = tc_send(c, m, params);
    return tc_wait(c, id, m, result, err);
}

size_t tc_count_tokens(const struct tc *c, uint32_t msgid)
{
    size_t n = 0;
    for (size_t i = 0; i < c->n_tokens; i++)
        n += c->tokens[i].msgid == msgid;
    return n;
}

int tc_wait_tokens(struct tc *c, uint32_t msgid, size_t n)
{
    int64_t deadline = now_ms() + DH_TIMEOUT_MS;
    while (tc_count_tokens(c, msgid) < n) {
        msgpack_object o;
        int r = read_message(c, &o, (int)(deadline - now_ms()));
        if (r <= 0)
            return -1;
        struct bn_rpc_msg msg;
        struct bn_rpc_error pe;
        if (bn_rpc_parse(&o, &msg, &pe) < 0)
            return -1;
        if (msg.kind == BN_RPC_NOTIFY)
            record_note(c, &msg);
        else
            stash_object(c, &msg, &o);
    }
    return 0;
}

bool tc_wait_closed(struct tc *c, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        msgpack_object o;
        int r = read_message(c, &o, (int)(deadline - now_ms()));
        if (r < 0)
            return true;
        if (r == 0)
            return false;
    }
}

/* ---- helpers ---- */

void tc_gen_tokens(struct bn_rpc_generate_params *p, const int32_t *ids, size_t n, int32_t max_tokens, bool stream)
{
    bn_rpc_init(bn_rpc_params_schema(BN_RPC_GENERATE), p);
    p->model = "tiny";
    p->tokens = ids;
    p->n_tokens = n;
    p->max_tokens = max_tokens;
    p->stream = stream;
    p->options.temperature = 0;
}

int tc_load_tiny(struct tc *c, const char *extra_name, double keep_alive, bool has_keep_alive)
{
    struct bn_rpc_load_params lp;
    bn_rpc_init(bn_rpc_params_schema(BN_RPC_LOAD), &lp);
    lp.model = "tiny";
    lp.name = extra_name;
    lp.has_keep_alive = has_keep_alive;
    lp.keep_alive = keep_alive;
    struct bn_rpc_load_result lr;
    struct bn_rpc_error e;
    if (tc_call(c, BN_RPC_LOAD, &lp, &lr, &e) < 0) {
        fprintf(stderr, "load failed: %d %s\n", e.code, e.message);
        return -1;
    }
    return 0;
}

int tc_status(struct tc *c, struct bn_rpc_status_result *st)
{
    struct bn_rpc_error e;
    return tc_call(c, BN_RPC_STATUS, NULL, st, &e);
}

int tc_wait_idle(struct tc *c, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    while (now_ms() < deadline) {
        struct bn_rpc_status_result st;
        if (tc_status(c, &st) < 0)
            return -1;
        if (st.active_sequences == 0 && st.queued == 0)
            return 0;
        sleep_ms(5);
    }
    return -1;
}

int engine_greedy(const char *model, const int32_t *prompt, size_t n_prompt, size_t n_gen, int32_t *out,
                  size_t *n_out)
{
    return engine_greedy_head(model, false, prompt, n_prompt, n_gen, out, n_out);
}

int engine_greedy_head(const char *model, bool head_q8, const int32_t *prompt, size_t n_prompt,
                       size_t n_gen, int32_t *out, size_t *n_out)
{
    struct bn_err err = {{0}};
    struct bn_model *m = NULL;
    struct bn_ctx *ctx = NULL;
    struct bn_batch b = {0};
    struct bn_sampler *smp = NULL;
    struct bn_model_params mp;
    bn_model_params_default(&mp);
    mp.n_threads = 1;
    mp.head_q8 = head_q8;
    int rc = -1;
    *n_out = 0;
    if (bn_model_load_file(model, &mp, &m, &err) < 0 || bn_ctx_new(m, NULL, &ctx, &err) < 0 ||
        bn_batch_init(&b, (int64_t)n_prompt + 1, &err) < 0)
        goto done;
    struct bn_sampler_params sp;
    bn_sampler_params_default(&sp);
    sp.temperature = 0;
    smp = bn_sampler_new(&sp, bn_model_get_info(m)->n_vocab, &err);
    int32_t seq;
    if (!smp || bn_seq_new(ctx, &seq, &err) < 0)
        goto done;
    for (size_t i = 0; i < n_prompt; i++)
        bn_batch_add(&b, prompt[i], seq, (int64_t)i, i + 1 == n_prompt, NULL);
    int64_t pos = (int64_t)n_prompt;
    for (size_t g = 0; g < n_gen; g++) {
        if (bn_decode(ctx, &b, &err) < 0)
            goto done;
        int32_t t = bn_sampler_sample(smp, bn_ctx_logits(ctx, b.n - 1), &err);
        if (t < 0)
            goto done;
        out[(*n_out)++] = t;
        bn_batch_clear(&b);
        if (pos >= bn_ctx_n_ctx(ctx))
            break;
        bn_batch_add(&b, t, seq, pos++, true, NULL);
    }
    rc = 0;
done:
    if (rc < 0)
        fprintf(stderr, "engine_greedy: %s\n", err.msg);
    bn_sampler_free(smp);
    bn_batch_free(&b);
    bn_ctx_free(ctx);
    bn_model_free(m);
    return rc;
}

/* ---- process figures ---- */

int dh_count_fds(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    return dh_count_entries(path);
}

long dh_rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long kib = -1;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kib = strtol(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return kib;
}

int dh_count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}
