/* tests/test_security.c — the checks behind docs/SECURITY.md, against a real bitnetd
 * (and libipc's framer):
 *   - the socket is 0600 (0660 and the configured group with socket_group) and its
 *     lock file 0600; another user cannot connect to a 0600 socket;
 *   - segments are 0600 files of the daemon's user, named bitnetd-INSTANCE-<16 hex>
 *     whatever path or name a client gave, in a shm_dir and in POSIX shared memory;
 *   - a model path from a client is never opened unless allow_client_paths is set
 *     (inotify watches the file), and then only for admin peers;
 *   - SO_PEERCRED decides: a client running as another uid (nobody) may generate,
 *     tokenize and look, but not load/unload/shutdown, show a file by path, cancel
 *     another connection's request or reach another user's chat session;
 *   - strings a client sends (its name, a session id) cannot forge lines in the log;
 *   - client values cannot make the daemon hold unbounded memory: answers to a flood
 *     of requests the client does not read, connections past max_connections (and
 *     RLIMIT_NOFILE raised for them), the message buffer of a connection that once
 *     sent a large request.
 * Tests that switch uid or mount a private tmpfs need root and skip otherwise.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <regex.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
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

#define NOBODY 65534 /* uid and gid of nobody / nogroup */
#define WRITE_HIGH_WATER (4u << 20) /* daemon.h DAEMON_WRITE_HIGH_WATER: answers queued to a
                                     * client that does not read before bitnetd stops
                                     * taking its requests */

static struct dh D;
static char EXTRA[DH_PATH_MAX];
static bool SHM_MOUNTED; /* a private tmpfs over /dev/shm (this test process only) */

static void fini(void)
{
    dh_cleanup(&D);
    if (SHM_MOUNTED) {
        umount2("/dev/shm", MNT_DETACH);
        SHM_MOUNTED = false;
    }
    if (EXTRA[0]) {
        rm_rf(EXTRA);
        EXTRA[0] = 0;
    }
}

static void start(const char *conf, const char *const *args)
{
    if (!dh_model_path())
        cr_skip_test("%s", dh_model_why());
    cr_assert_eq(dh_start(&D, conf, args), 0, "bitnetd did not start");
}

static void need_root(const char *why)
{
    if (geteuid() != 0)
        cr_skip_test("needs root %s", why);
}

/* Run fn in a child as nobody; returns its exit code (0: fine) with its message. */
typedef int (*as_fn)(void *arg, char *msg, size_t cap);
static int as_nobody(as_fn fn, void *arg, char *msg, size_t cap)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        char m[1024] = "";
        int rc;
        if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0) {
            snprintf(m, sizeof(m), "cannot become nobody: %s", strerror(errno));
            rc = 99;
        } else {
            rc = fn(arg, m, sizeof(m));
        }
        (void)!write(fds[1], m, strlen(m));
        _exit(rc);
    }
    close(fds[1]);
    size_t got = 0;
    ssize_t n;
    while (got + 1 < cap && (n = read(fds[0], msg + got, cap - 1 - got)) > 0)
        got += (size_t)n;
    msg[got] = 0;
    close(fds[0]);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st);
}

#define FAIL(code, ...) return (snprintf(msg, cap, __VA_ARGS__), (code))

/* ---- socket and lock file ---- */

static int nobody_connects(void *arg, char *msg, size_t cap)
{
    const char *sock = arg;
    struct tc c;
    if (tc_open(&c, sock) == 0) {
        tc_close(&c);
        FAIL(1, "nobody connected to %s", sock);
    }
    if (errno != EACCES)
        FAIL(2, "connect failed with %s, not EACCES", strerror(errno));
    return 0;
}

static void expect_mode(const char *path, mode_t type, mode_t mode, gid_t *gid)
{
    struct stat st;
    cr_assert_eq(lstat(path, &st), 0, "%s: %s", path, strerror(errno));
    cr_assert_eq(st.st_mode & S_IFMT, type, "%s: wrong file type", path);
    cr_assert_eq(st.st_mode & 07777, mode, "%s: mode %04o, want %04o", path, (unsigned)(st.st_mode & 07777),
                 (unsigned)mode);
    cr_assert_eq(st.st_uid, geteuid(), "%s: owner %u", path, (unsigned)st.st_uid);
    if (gid)
        *gid = st.st_gid;
}

Test(security, socket_and_lock_file_modes, .fini = fini)
{
    start(NULL, NULL);
    char lock[DH_PATH_MAX + 32];
    snprintf(lock, sizeof(lock), "%s.lock", D.sock);
    expect_mode(D.sock, S_IFSOCK, 0600, NULL);
    expect_mode(lock, S_IFREG, 0600, NULL);
    if (geteuid() == 0) {
        chmod(D.dir, 0711); /* nobody may reach the socket; its own mode must stop it */
        char msg[1024];
        cr_assert_eq(as_nobody(nobody_connects, D.sock, msg, sizeof(msg)), 0, "%s", msg);
    }
    cr_assert_eq(dh_stop(&D), 0);
    dh_cleanup(&D);

    /* socket_group: 0660 and that group (nogroup as root, else our own group). */
    gid_t want = geteuid() == 0 ? NOBODY : getgid();
    char conf[64];
    snprintf(conf, sizeof(conf), "socket_group = %u\n", (unsigned)want);
    start(conf, NULL);
    snprintf(lock, sizeof(lock), "%s.lock", D.sock); /* the new daemon's folder */
    gid_t got;
    expect_mode(D.sock, S_IFSOCK, 0660, &got);
    cr_assert_eq(got, want, "socket group %u, want %u", (unsigned)got, (unsigned)want);
    expect_mode(lock, S_IFREG, 0600, NULL);
    cr_assert(dh_log_has(&D, "(group access)"));
    cr_assert_eq(dh_stop(&D), 0);
}

/* ---- segments ---- */

static void copy_file(const char *from, const char *to)
{
    int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert(in >= 0 && out >= 0, "copy %s -> %s: %s", from, to, strerror(errno));
    char buf[65536];
    ssize_t n;
    while ((n = read(in, buf, sizeof(buf))) > 0)
        cr_assert_eq(write(out, buf, (size_t)n), n);
    close(in);
    close(out);
}

/* Every entry of dir named bitnetd-INSTANCE-<16 hex>, a 0600 regular file of ours;
 * returns how many there are. */
static int check_segments(const char *dir, const char *instance)
{
    char pattern[128];
    snprintf(pattern, sizeof(pattern), "^bitnetd-%s-[0-9a-f]{16}$", instance);
    regex_t re;
    cr_assert_eq(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "%s: %s", dir, strerror(errno));
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        cr_assert_eq(regexec(&re, e->d_name, 0, NULL, 0), 0, "%s/%s is not named like a segment", dir, e->d_name);
        char path[2 * DH_PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        expect_mode(path, S_IFREG, 0600, NULL);
        n++;
    }
    closedir(d);
    regfree(&re);
    return n;
}

static int nobody_opens(void *arg, char *msg, size_t cap)
{
    const char *path = arg;
    int fd = open(path, O_RDONLY);
    if (fd >= 0)
        FAIL(1, "nobody opened %s", path);
    if (errno != EACCES)
        FAIL(2, "open failed with %s, not EACCES", strerror(errno));
    return 0;
}

static int load_path(struct tc *c, const char *model, const char *name, struct bn_rpc_load_result *lr,
                     struct bn_rpc_error *e)
{
    struct bn_rpc_load_params lp;
    bn_rpc_init(bn_rpc_params_schema(BN_RPC_LOAD), &lp);
    lp.model = model;
    lp.name = name;
    return tc_call(c, BN_RPC_LOAD, &lp, lr, e);
}

/* A copy of the test model under a file name full of shell and path characters. */
static void odd_copy(char *out, size_t cap)
{
    cr_assert_eq(make_tmpdir(EXTRA, sizeof(EXTRA), "bitnetd-sec"), 0);
    snprintf(out, cap, "%s/odd name;$(id) `x` 'q'..bitnetd-main-0000.gguf", EXTRA);
    copy_file(dh_model_path(), out);
}

Test(security, segments_private_and_named_by_hash, .fini = fini)
{
    if (!dh_model_path())
        cr_skip_test("%s", dh_model_why());
    char odd[DH_PATH_MAX + 128];
    odd_copy(odd, sizeof(odd));
    const char *args[] = {"--instance", "sec.t1", NULL};
    start("allow_client_paths = true\n", args);
    struct tc c;
    cr_assert_eq(tc_connect(&c, D.sock), 0);
    cr_assert_eq(tc_load_tiny(&c, NULL, 0, false), 0);
    struct bn_rpc_load_result lr;
    struct bn_rpc_error e;
    cr_assert_eq(load_path(&c, odd, NULL, &lr, &e), 0, "%d %s", e.code, e.message);
    /* The default name is made of the file name, cut to the name alphabet. */
    for (const char *p = lr.name; *p; p++)
        cr_assert(strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-", *p),
                  "model name '%s' has '%c'", lr.name, *p);
    /* A name given by the client is checked, never used as a path. */
    cr_assert_lt(load_path(&c, odd, "../../etc/passwd", &lr, &e), 0);
    cr_assert_eq(e.code, BN_RPC_E_INVALID_PARAMS, "%d %s", e.code, e.message);
    cr_assert_lt(load_path(&c, "relative/model.gguf", NULL, &lr, &e), 0);
    cr_assert_eq(e.code, BN_RPC_E_INVALID_PARAMS, "%d %s", e.code, e.message);
    cr_assert(strstr(e.message, "absolute"), "%s", e.message);
    tc_close(&c);
    char shm[DH_PATH_MAX + 16];
    snprintf(shm, sizeof(shm), "%s/shm", D.dir);
    cr_assert_eq(check_segments(shm, "sec.t1"), 2, "one segment per file");
    if (geteuid() == 0) {
        chmod(D.dir, 0711);
        chmod(shm, 0711);
        DIR *d = opendir(shm);
        struct dirent *de;
        while ((de = readdir(d)) && de->d_name[0] == '.')
            ;
        char seg[2 * DH_PATH_MAX];
        snprintf(seg, sizeof(seg), "%s/%s", shm, de->d_name);
        closedir(d);
        char msg[1024];
        cr_assert_eq(as_nobody(nobody_opens, seg, msg, sizeof(msg)), 0, "%s", msg);
    }
    cr_assert_eq(dh_stop(&D), 0);
}

Test(security, posix_shm_segments_private, .fini = fini)
{
    need_root("to put a private tmpfs over /dev/shm (the real one is never touched)");
    if (!dh_model_path())
        cr_skip_test("%s", dh_model_why());
    if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("tmpfs", "/dev/shm", "tmpfs", 0, "size=64m,mode=1777") != 0)
        cr_skip_test("cannot mount a private /dev/shm: %s", strerror(errno));
    SHM_MOUNTED = true;
    const char *args[] = {"--shm-dir", "", "--instance", "sec.t2", NULL}; /* "": POSIX shm */
    start(NULL, args);
    struct tc c;
    cr_assert_eq(tc_connect(&c, D.sock), 0);
    cr_assert_eq(tc_load_tiny(&c, NULL, 0, false), 0);
    cr_assert_eq(check_segments("/dev/shm", "sec.t2"), 1);
    struct bn_rpc_unload_params up = {.name = "tiny"};
    struct bn_rpc_error e;
    cr_assert_eq(tc_call(&c, BN_RPC_UNLOAD, &up, NULL, &e), 0, "%d %s", e.code, e.message);
    cr_assert_eq(check_segments("/dev/shm", "sec.t2"), 0, "unload removes the segment");
    tc_close(&c);
    cr_assert_eq(dh_stop(&D), 0);
}

/* ---- client paths ---- */

/* Opens of the watched file seen so far. */
static int opens_seen(int ifd)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    int n = 0;
    ssize_t len;
    while ((len = read(ifd, buf, sizeof(buf))) > 0)
        for (char *p = buf; p < buf + len;) {
            const struct inotify_event *ev = (const struct inotify_event *)(void *)p;
            n += (ev->mask & (IN_OPEN | IN_ACCESS)) != 0;
            p += sizeof(*ev) + ev->len;
        }
    return n;
}

Test(security, client_paths_never_opened_unless_allowed, .fini = fini)
{
    if (!dh_model_path())
        cr_skip_test("%s", dh_model_why());
    cr_assert_eq(make_tmpdir(EXTRA, sizeof(EXTRA), "bitnetd-sec"), 0);
    char path[DH_PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/watched.gguf", EXTRA);
    copy_file(dh_model_path(), path);
    start(NULL, NULL); /* allow_client_paths defaults to false */
    int ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    cr_assert_geq(ifd, 0);
    cr_assert_geq(inotify_add_watch(ifd, path, IN_OPEN | IN_ACCESS), 0);
    struct tc c;
    cr_assert_eq(tc_connect(&c, D.sock), 0); /* as the daemon's own user: an admin */
    cr_assert_eq(tc_load_tiny(&c, NULL, 0, false), 0);
    struct bn_rpc_error e;
    struct bn_rpc_load_result lr;
    cr_assert_lt(load_path(&c, path, NULL, &lr, &e), 0);
    cr_assert_eq(e.code, BN_RPC_E_PERMISSION_DENIED, "%d %s", e.code, e.message);
    cr_assert(strstr(e.message, "allow_client_paths"), "%s", e.message);
    struct bn_rpc_show_params sp = {.model = path};
    cr_assert_lt(tc_call(&c, BN_RPC_SHOW, &sp, NULL, &e), 0);
    cr_assert_eq(e.code, BN_RPC_E_PERMISSION_DENIED, "%d %s", e.code, e.message);
    /* Methods that take a model name treat a path as a name nobody loaded. */
    int32_t ids[] = {5, 6, 7};
    struct bn_rpc_generate_params gp;
    tc_gen_tokens(&gp, ids, 3, 2, false);
    gp.model = path;
    cr_assert_lt(tc_call(&c, BN_RPC_GENERATE, &gp, NULL, &e), 0);
    cr_assert_eq(e.code, BN_RPC_E_MODEL_NOT_LOADED, "%d %s", e.code, e.message);
    struct bn_rpc_chat_message m[] = {{BN_RPC_ROLE_USER, "hi"}};
    struct bn_rpc_chat_params cp;
    bn_rpc_init(bn_rpc_params_schema(BN_RPC_CHAT), &cp);
    cp.model = path;
    cp.messages = m;
    cp.n_messages = 1;
    cr_assert_lt(tc_call(&c, BN_RPC_CHAT, &cp, NULL, &e), 0);
    cr_assert_eq(e.code, BN_RPC_E_MODEL_NOT_LOADED, "%d %s", e.code, e.message);
    struct bn_rpc_tokenize_params tp;
    bn_rpc_init(bn_rpc_params_schema(BN_RPC_TOKENIZE), &tp);
    tp.model = path;
    tp.text = "x";
    cr_assert_lt(tc_call(&c, BN_RPC_TOKENIZE, &tp, NULL, &e), 0);
    cr_assert_eq(e.code, BN_RPC_E_MODEL_NOT_LOADED, "%d %s", e.code, e.message);
    cr_assert_eq(opens_seen(ifd), 0, "bitnetd opened %s although client paths are not allowed", path);

    /* Allowed (SIGHUP applies it): now an admin's show opens it — the watch works. */
    cr_assert_eq(dh_write_conf(&D, "allow_client_paths = true\n"), 0);
    int reloads = dh_log_count(&D, "config reloaded");
    kill(D.pid, SIGHUP);
    for (int i = 0; i < DH_TIMEOUT_MS / 5 && dh_log_count(&D, "config reloaded") == reloads; i++)
        sleep_ms(5);
    struct bn_rpc_show_result sr;
    cr_assert_eq(tc_call(&c, BN_RPC_SHOW, &sp, &sr, &e), 0, "%d %s", e.code, e.message);
    cr_assert_gt(opens_seen(ifd), 0, "the inotify watch sees the daemon's opens");
    close(ifd);
    tc_close(&c);
    cr_assert_eq(dh_stop(&D), 0);
}

/* ---- another user on a shared socket ---- */

#define LONG_CTX 4096
#define LONG_PROMPT 4000 /* tokens: still being evaluated for many steps (the owner
                          * cancels it at the end) */
#define SESSION "shared-id"

struct stranger {
    const char *sock;
    const char *model_path;
    uint32_t victim_msgid; /* a request in flight on the owner's connection */
};

static int chat_cached(struct tc *c, int64_t *cached, struct bn_rpc_error *e)
{
    struct bn_rpc_chat_message m[] = {{BN_RPC_ROLE_USER, "tell me a secret"}};
    struct bn_rpc_chat_params cp;
    bn_rpc_init(bn_rpc_params_schema(BN_RPC_CHAT), &cp);
    cp.model = "tiny";
    cp.messages = m;
    cp.n_messages = 1;
    cp.session = SESSION;
    cp.max_tokens = 4;
    cp.options.temperature = 0;
    struct bn_rpc_generate_result gr;
    if (tc_call(c, BN_RPC_CHAT, &cp, &gr, e) < 0)
        return -1;
    *cached = gr.stats.cached_tokens;
    return 0;
}

static int stranger_main(void *arg, char *msg, size_t cap)
{
    const struct stranger *s = arg;
    struct tc c;
    if (tc_connect(&c, s->sock) < 0)
        FAIL(1, "connect: %s", strerror(errno));
    struct bn_rpc_error e;
    /* Allowed: look, generate, tokenize, show by configured name. */
    struct bn_rpc_status_result st;
    if (tc_status(&c, &st) < 0)
        FAIL(2, "status failed");
    if (st.active_sequences != 1)
        FAIL(3, "the owner's long request is not running (%lld active)", (long long)st.active_sequences);
    struct bn_rpc_ps_result ps;
    if (tc_call(&c, BN_RPC_PS, NULL, &ps, &e) < 0 || ps.n_models != 1)
        FAIL(4, "ps: %s", e.message);
    int32_t ids[] = {5, 6, 7};
    struct bn_rpc_generate_params gp;
    tc_gen_tokens(&gp, ids, 3, 3, false);
    if (tc_call(&c, BN_RPC_GENERATE, &gp, NULL, &e) < 0)
        FAIL(5, "generate: %d %s", e.code, e.message);
    struct bn_rpc_tokenize_params tp;
    bn_rpc_init(bn_rpc_params_schema(BN_RPC_TOKENIZE), &tp);
    tp.model = "tiny";
    tp.text = "some words";
    if (tc_call(&c, BN_RPC_TOKENIZE, &tp, NULL, &e) < 0)
        FAIL(6, "tokenize: %d %s", e.code, e.message);
    struct bn_rpc_show_params sp = {.model = "tiny"};
    if (tc_call(&c, BN_RPC_SHOW, &sp, NULL, &e) < 0)
        FAIL(7, "show tiny: %d %s", e.code, e.message);
    /* Refused: a file by path (even with allow_client_paths), admin verbs. */
    sp.model = s->model_path;
    if (tc_call(&c, BN_RPC_SHOW, &sp, NULL, &e) == 0 || e.code != BN_RPC_E_PERMISSION_DENIED)
        FAIL(8, "show by path: %d %s", e.code, e.message);
    struct bn_rpc_load_params lp;
    bn_rpc_init(bn_rpc_params_schema(BN_RPC_LOAD), &lp);
    lp.model = s->model_path;
    if (tc_call(&c, BN_RPC_LOAD, &lp, NULL, &e) == 0 || e.code != BN_RPC_E_PERMISSION_DENIED)
        FAIL(9, "load: %d %s", e.code, e.message);
    struct bn_rpc_unload_params up = {.name = "tiny"};
    if (tc_call(&c, BN_RPC_UNLOAD, &up, NULL, &e) == 0 || e.code != BN_RPC_E_PERMISSION_DENIED)
        FAIL(10, "unload: %d %s", e.code, e.message);
    struct bn_rpc_shutdown_params shp = {0};
    if (tc_call(&c, BN_RPC_SHUTDOWN, &shp, NULL, &e) == 0 || e.code != BN_RPC_E_PERMISSION_DENIED)
        FAIL(11, "shutdown: %d %s", e.code, e.message);
    /* Another connection's request cannot be cancelled: msgids are per connection. */
    struct bn_rpc_cancel_params cp = {.msgid = s->victim_msgid};
    struct bn_rpc_cancel_result cr;
    if (tc_call(&c, BN_RPC_CANCEL, &cp, &cr, &e) < 0 || cr.cancelled)
        FAIL(12, "cancel of the owner's request: %s", cr.cancelled ? "cancelled!" : e.message);
    if (tc_status(&c, &st) < 0 || st.active_sequences != 1)
        FAIL(13, "the owner's request stopped after the stranger's cancel");
    /* The owner's chat session is not ours: same id, nothing cached for us... */
    int64_t cached = -1;
    if (chat_cached(&c, &cached, &e) < 0)
        FAIL(16, "chat: %d %s", e.code, e.message);
    if (cached != 0)
        FAIL(14, "the stranger reused %lld tokens of the owner's session", (long long)cached);
    /* ...and the same id gives us a session of our own. */
    if (chat_cached(&c, &cached, &e) < 0 || cached <= 0)
        FAIL(15, "the stranger's own session: %lld cached", (long long)cached);
    tc_close(&c);
    return 0;
}

Test(security, another_uid_may_use_but_not_administer, .fini = fini, .timeout = 120)
{
    need_root("to run a client as another uid (nobody)");
    start("socket_group = 65534\nallow_client_paths = true\n", NULL);
    chmod(D.dir, 0711);
    struct tc c;
    cr_assert_eq(tc_connect(&c, D.sock), 0);
    struct bn_rpc_load_params lp;
    bn_rpc_init(bn_rpc_params_schema(BN_RPC_LOAD), &lp);
    lp.model = "tiny";
    lp.ctx = LONG_CTX;
    struct bn_rpc_error e;
    cr_assert_eq(tc_call(&c, BN_RPC_LOAD, &lp, NULL, &e), 0, "%d %s", e.code, e.message);
    int64_t cached = -1;
    cr_assert_eq(chat_cached(&c, &cached, &e), 0, "%d %s", e.code, e.message);
    cr_assert_eq(chat_cached(&c, &cached, &e), 0);
    cr_assert_gt(cached, 0, "the owner's second turn reuses its session");
    static int32_t prompt[LONG_PROMPT];
    for (int i = 0; i < LONG_PROMPT; i++)
        prompt[i] = 1 + (i * 7919) % 500;
    struct bn_rpc_generate_params gp;
    tc_gen_tokens(&gp, prompt, LONG_PROMPT, 1, false);
    uint32_t victim = tc_send(&c, BN_RPC_GENERATE, &gp);
    struct bn_rpc_status_result st;
    for (int i = 0; i < DH_TIMEOUT_MS / 2; i++) {
        cr_assert_eq(tc_status(&c, &st), 0);
        if (st.active_sequences == 1)
            break;
        sleep_ms(2);
    }
    struct stranger s = {.sock = D.sock, .model_path = dh_model_path(), .victim_msgid = victim};
    char msg[1024];
    cr_assert_eq(as_nobody(stranger_main, &s, msg, sizeof(msg)), 0, "%s", msg);
    /* Its owner can cancel it, the stranger could not (it may have ended meanwhile). */
    struct bn_rpc_cancel_params cp = {.msgid = victim};
    cr_assert_eq(tc_call(&c, BN_RPC_CANCEL, &cp, NULL, &e), 0);
    struct bn_rpc_generate_result gr;
    cr_assert_eq(tc_wait(&c, victim, BN_RPC_GENERATE, &gr, &e), 0, "%d %s", e.code, e.message);
    cr_assert(gr.stats.stop_reason == BN_RPC_STOP_CANCELLED || gr.stats.stop_reason == BN_RPC_STOP_LENGTH);
    cr_assert_eq(chat_cached(&c, &cached, &e), 0);
    cr_assert_gt(cached, 0, "the owner's session is still its own");
    struct bn_rpc_ps_result ps;
    cr_assert_eq(tc_call(&c, BN_RPC_PS, NULL, &ps, &e), 0);
    cr_assert_eq(ps.n_models, 1, "the refused load and unload did nothing");
    tc_close(&c);
    cr_assert_eq(dh_stop(&D), 0);
}

/* ---- the log ---- */

Test(security, client_strings_cannot_forge_log_lines, .fini = fini)
{
    start(NULL, NULL); /* the harness runs bitnetd with --log-level debug */
    struct tc c;
    cr_assert_eq(tc_open(&c, D.sock), 0);
    struct bn_rpc_hello_params hp = {.version = 1, .client = "evil\nbitnetd[1]: error: forged line\r"};
    struct bn_rpc_hello_result hr;
    struct bn_rpc_error e;
    cr_assert_eq(tc_call(&c, BN_RPC_HELLO, &hp, &hr, &e), 0, "%d %s", e.code, e.message);
    cr_assert_eq(tc_load_tiny(&c, NULL, 0, false), 0);
    struct bn_rpc_chat_message m[] = {{BN_RPC_ROLE_USER, "hi"}};
    struct bn_rpc_chat_params cp;
    bn_rpc_init(bn_rpc_params_schema(BN_RPC_CHAT), &cp);
    cp.model = "tiny";
    cp.messages = m;
    cp.n_messages = 1;
    cp.max_tokens = 1;
    cr_assert_eq(tc_call(&c, BN_RPC_CHAT, &cp, NULL, &e), 0, "%d %s", e.code, e.message);
    tc_close(&c);
    cr_assert_eq(dh_stop(&D), 0);
    cr_assert(dh_log_has(&D, "hello from 'evil?bitnetd[1]: error: forged line?'"), "the name is logged, defused");
    FILE *f = fopen(D.log, "r");
    cr_assert_not_null(f);
    char line[4096];
    while (fgets(line, sizeof(line), f))
        cr_assert(strncmp(line, "bitnetd[1]:", 11) != 0, "a client forged a log line: %s", line);
    fclose(f);
}

/* ---- memory a client can make the daemon hold ---- */

static long long metric(struct tc *c, const char *line_start)
{
    struct bn_rpc_metrics_result mr;
    struct bn_rpc_error e;
    cr_assert_eq(tc_call(c, BN_RPC_METRICS, NULL, &mr, &e), 0);
    const char *p = strstr(mr.text, line_start);
    cr_assert_not_null(p, "no '%s' in the metrics", line_start);
    return strtoll(p + strlen(line_start), NULL, 10);
}

#define FLOOD 3000 /* metrics requests (~6 KB answers each: ~18 MB if all were answered) */

Test(security, unread_answers_stop_the_reading, .fini = fini, .timeout = 60)
{
    start(NULL, NULL);
    struct tc obs, flood;
    cr_assert_eq(tc_connect(&obs, D.sock), 0);
    cr_assert_eq(tc_connect(&flood, D.sock), 0);
    const char *key = "bitnetd_requests_total{method=\"metrics\"} ";
    long long before = metric(&obs, key);
    struct bn_rpc_metrics_result mr;
    struct bn_rpc_error e;
    cr_assert_eq(tc_call(&flood, BN_RPC_METRICS, NULL, &mr, &e), 0);
    size_t answer = strlen(mr.text);
    /* One burst of requests (~90 KB: the socket buffer takes it all), never read. */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    for (uint32_t i = 0; i < FLOOD; i++)
        bn_rpc_encode_request(&pk, 1000 + i, BN_RPC_METRICS, NULL);
    cr_assert_eq(tc_send_raw(&flood, sb.data, sb.size), 0);
    msgpack_sbuffer_destroy(&sb);
    /* Let the daemon go as far as it will (until two looks 100 ms apart agree).  Each
     * look is a metrics request of its own, counted in what it reads. */
    long long looks = 1, seen = -1, now = metric(&obs, key);
    for (int i = 0; i < 300 && now - seen > 1; i++, looks++) {
        seen = now;
        sleep_ms(100);
        now = metric(&obs, key);
    }
    long long handled = now - before - looks - 1; /* and flood's first request */
    cr_log_info("%lld of %d unread requests handled (answers of %zu bytes)", handled, FLOOD, answer);
    cr_assert_lt(handled, FLOOD / 2, "the daemon kept answering a client that reads nothing (%lld answers queued)",
                 handled);
    cr_assert_lt((double)handled * (double)answer, 3.0 * WRITE_HIGH_WATER,
                 "answers held for the client stay near the high-water mark");
    /* Reading resumes it: every request gets its answer, in order. */
    for (uint32_t i = 0; i < FLOOD; i++) {
        struct bn_rpc_metrics_result r;
        cr_assert_eq(tc_wait(&flood, 1000 + i, BN_RPC_METRICS, &r, &e), 0, "answer %u: %d %s", i, e.code, e.message);
    }
    tc_close(&flood);
    tc_close(&obs);
    cr_assert_eq(dh_stop(&D), 0);
}

#define MAX_CONN 300
#define LOW_NOFILE 128 /* the soft limit bitnetd starts with here */

Test(security, connections_bounded_and_fds_returned, .fini = fini, .timeout = 60)
{
    /* The daemon inherits a low soft RLIMIT_NOFILE and must raise it itself to serve
     * max_connections; past max_connections a client gets busy and is closed. */
    struct rlimit old, low;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
    if (old.rlim_max != RLIM_INFINITY && old.rlim_max < MAX_CONN + 100)
        cr_skip_test("the hard RLIMIT_NOFILE (%llu) is too low for this test", (unsigned long long)old.rlim_max);
    low = old;
    low.rlim_cur = LOW_NOFILE;
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
    char conf[64];
    snprintf(conf, sizeof(conf), "max_connections = %d\n", MAX_CONN);
    if (!dh_model_path())
        cr_skip_test("%s", dh_model_why());
    int rc = dh_start(&D, conf, NULL);
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
    cr_assert_eq(rc, 0);
    cr_assert(dh_log_has(&D, "RLIMIT_NOFILE raised from 128"), "bitnetd raised its own file limit");
    static struct tc c[MAX_CONN + 1];
    cr_assert_eq(tc_connect(&c[0], D.sock), 0);
    int base = dh_count_fds(D.pid);
    cr_assert_gt(base, 0);
    for (int i = 1; i < MAX_CONN; i++)
        cr_assert_eq(tc_connect(&c[i], D.sock), 0, "connection %d of %d", i + 1, MAX_CONN);
    struct bn_rpc_status_result st;
    cr_assert_eq(tc_status(&c[MAX_CONN - 1], &st), 0);
    cr_assert_eq(st.clients, MAX_CONN);
    /* One too many. */
    cr_assert_eq(tc_open(&c[MAX_CONN], D.sock), 0);
    struct bn_rpc_error e;
    cr_assert_lt(tc_wait_nil(&c[MAX_CONN], &e), 0);
    cr_assert_eq(e.code, BN_RPC_E_BUSY, "%d %s", e.code, e.message);
    cr_assert(strstr(e.message, "max_connections"), "%s", e.message);
    cr_assert(tc_wait_closed(&c[MAX_CONN], DH_TIMEOUT_MS));
    tc_close(&c[MAX_CONN]);
    for (int i = 1; i < MAX_CONN; i++)
        tc_close(&c[i]);
    for (int i = 0; i < DH_TIMEOUT_MS / 5; i++) {
        cr_assert_eq(tc_status(&c[0], &st), 0);
        if (st.clients == 1 && dh_count_fds(D.pid) == base)
            break;
        sleep_ms(5);
    }
    cr_assert_eq(st.clients, 1);
    cr_assert_eq(dh_count_fds(D.pid), base, "every connection's descriptor was closed");
    tc_close(&c[0]);
    cr_assert_eq(dh_stop(&D), 0);
}

/* libipc's framer: a connection that once sent a large message does not keep a buffer
 * of that size while idle. */
Test(security, message_buffer_shrinks_when_idle)
{
    struct bn_rpc_framer f;
    cr_assert_eq(bn_rpc_framer_init(&f, NULL), 0);
    size_t big = 8u << 20;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_str_with_body(&pk, "ping", 4);
    char *blob = calloc(1, big);
    msgpack_pack_bin_with_body(&pk, blob, big);
    free(blob);
    cr_assert_eq(bn_rpc_framer_feed(&f, sb.data, sb.size), 0);
    msgpack_sbuffer_destroy(&sb);
    msgpack_object o;
    struct bn_rpc_error e;
    cr_assert_eq(bn_rpc_framer_next(&f, &o, &e), 1);
    cr_assert_eq(bn_rpc_framer_next(&f, &o, &e), 0, "nothing more pending");
    size_t cap = 0;
    cr_assert_not_null(bn_rpc_framer_buffer(&f, 4096, &cap));
    cr_assert_lt(cap, 1u << 20, "the idle buffer is back to its small size (%zu bytes free)", cap);
    /* And it still frames. */
    static const unsigned char ping[] = {0x94, 0x00, 0x02, 0xa4, 'p', 'i', 'n', 'g', 0x80};
    cr_assert_eq(bn_rpc_framer_feed(&f, ping, sizeof(ping)), 0);
    cr_assert_eq(bn_rpc_framer_next(&f, &o, &e), 1);
    bn_rpc_framer_destroy(&f);
}
