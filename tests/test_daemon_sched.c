/* tests/test_daemon_sched.c — bitnetd's scheduler and lifecycle, each against a real
 * daemon: cancel and disconnect free the slot and its KV memory, busy past the queue,
 * chat sessions reuse their cache, SIGTERM with a stream in flight, socket
 * activation, admin verbs refused for another uid.
 *
 * "Long" requests are long prompts (several thousand tokens, evaluated at most
 * prefill_chunk tokens per step over many steps): they are certainly still running
 * when the test acts, without any sleep or timing assumption.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static struct dh D;
static char EXTRA[256]; /* a test's own temp folder, removed by fini even on failure */

static void start(const char *conf)
{
    if (!dh_model_path())
        cr_skip_test("%s", dh_model_why());
    cr_assert_eq(dh_start(&D, conf, NULL), 0, "bitnetd did not start");
}
static void fini(void)
{
    dh_cleanup(&D);
    if (EXTRA[0])
        rm_rf(EXTRA);
}

#define LONG_CTX 16384
#define LONG_PROMPT 16000 /* tokens: ~63 steps of prefill at 256 per step */
static int32_t long_prompt[LONG_PROMPT];

static void load_long(struct tc *c)
{
    struct bn_rpc_load_params lp;
    bn_rpc_init(bn_rpc_params_schema(BN_RPC_LOAD), &lp);
    lp.model = "tiny";
    lp.ctx = LONG_CTX;
    struct bn_rpc_load_result lr;
    struct bn_rpc_error e;
    cr_assert_eq(tc_call(c, BN_RPC_LOAD, &lp, &lr, &e), 0, "%d %s", e.code, e.message);
    for (int i = 0; i < LONG_PROMPT; i++)
        long_prompt[i] = 1 + (i * 7919) % 500;
}

/* A generate that will still be prefilling for many steps. */
static uint32_t send_long(struct tc *c, bool stream)
{
    struct bn_rpc_generate_params gp;
    tc_gen_tokens(&gp, long_prompt, LONG_PROMPT, 1, stream);
    return tc_send(c, BN_RPC_GENERATE, &gp);
}

static void wait_active(struct tc *c, int64_t active, int64_t queued)
{
    struct bn_rpc_status_result st;
    for (int i = 0; i < 4000; i++) {
        cr_assert_eq(tc_status(c, &st), 0);
        if (st.active_sequences == active && st.queued == queued)
            return;
        sleep_ms(2);
    }
    cr_assert_fail("status never showed %lld active, %lld queued (last %lld, %lld)", (long long)active,
                   (long long)queued, (long long)st.active_sequences, (long long)st.queued);
}

Test(sched, cancel_frees_slot_and_kv, .fini = fini)
{
    start(NULL);
    struct tc c;
    cr_assert_eq(tc_connect(&c, D.sock), 0);
    load_long(&c);
    uint32_t id = send_long(&c, true);
    wait_active(&c, 1, 0);
    struct bn_rpc_status_result st;
    cr_assert_eq(tc_status(&c, &st), 0);
    struct bn_rpc_cancel_params cp = {.msgid = id};
    struct bn_rpc_cancel_result cr;
    struct bn_rpc_error e;
    cr_assert_eq(tc_call(&c, BN_RPC_CANCEL, &cp, &cr, &e), 0);
    cr_assert(cr.cancelled);
    struct bn_rpc_generate_result gr;
    cr_assert_eq(tc_wait(&c, id, BN_RPC_GENERATE, &gr, &e), 0, "%d %s", e.code, e.message);
    cr_assert_eq(gr.stats.stop_reason, BN_RPC_STOP_CANCELLED);
    cr_assert_eq(gr.stats.generated_tokens, 0, "it stopped during the prefill, not after");
    cr_assert_eq(tc_status(&c, &st), 0);
    cr_assert_eq(st.active_sequences, 0);
    cr_assert_eq(st.kv_bytes, 0, "the sequence's KV memory was returned");
    /* Cancel of a request that is not in flight. */
    cp.msgid = 12345;
    cr_assert_eq(tc_call(&c, BN_RPC_CANCEL, &cp, &cr, &e), 0);
    cr_assert(!cr.cancelled);
    tc_close(&c);
    cr_assert_eq(dh_stop(&D), 0);
}

Test(sched, disconnect_frees_slot, .fini = fini)
{
    start(NULL);
    struct tc a, b;
    cr_assert_eq(tc_connect(&a, D.sock), 0);
    cr_assert_eq(tc_connect(&b, D.sock), 0);
    load_long(&b);
    send_long(&a, true);
    wait_active(&b, 1, 0);
    tc_close(&a); /* gone without a word */
    struct bn_rpc_status_result st;
    for (int i = 0; i < 4000; i++) {
        cr_assert_eq(tc_status(&b, &st), 0);
        if (st.active_sequences == 0 && st.kv_bytes == 0 && st.clients == 1)
            break;
        sleep_ms(2);
    }
    cr_assert_eq(st.active_sequences, 0);
    cr_assert_eq(st.kv_bytes, 0);
    /* b still works. */
    struct bn_rpc_generate_params gp;
    struct bn_rpc_generate_result gr;
    struct bn_rpc_error e;
    int32_t p[] = {5, 6, 7};
    tc_gen_tokens(&gp, p, 3, 3, false);
    cr_assert_eq(tc_call(&b, BN_RPC_GENERATE, &gp, &gr, &e), 0, "%s", e.message);
    tc_close(&b);
    cr_assert_eq(dh_stop(&D), 0);
}

Test(sched, busy_past_the_queue, .fini = fini)
{
    start("parallel = 1\nmax_queue = 1\n");
    struct tc a, b, c;
    cr_assert_eq(tc_connect(&a, D.sock), 0);
    cr_assert_eq(tc_connect(&b, D.sock), 0);
    cr_assert_eq(tc_connect(&c, D.sock), 0);
    load_long(&c);
    uint32_t ia = send_long(&a, false);
    wait_active(&c, 1, 0);
    uint32_t ib = send_long(&b, false);
    wait_active(&c, 1, 1);
    struct bn_rpc_generate_params gp;
    struct bn_rpc_generate_result gr;
    struct bn_rpc_error e;
    int32_t p[] = {5, 6, 7};
    tc_gen_tokens(&gp, p, 3, 3, false);
    cr_assert_lt(tc_call(&c, BN_RPC_GENERATE, &gp, &gr, &e), 0);
    cr_assert_eq(e.code, BN_RPC_E_BUSY, "%d %s", e.code, e.message);
    cr_assert(strstr(e.message, "max_queue"), "%s", e.message);
    /* The queued one is cancelled with an error, the running one with a result. */
    struct bn_rpc_cancel_params cp = {.msgid = ib};
    struct bn_rpc_cancel_result cr;
    cr_assert_eq(tc_call(&b, BN_RPC_CANCEL, &cp, &cr, &e), 0);
    cr_assert_lt(tc_wait(&b, ib, BN_RPC_GENERATE, &gr, &e), 0);
    cr_assert_eq(e.code, BN_RPC_E_CANCELLED, "%d %s", e.code, e.message);
    cp.msgid = ia;
    cr_assert_eq(tc_call(&a, BN_RPC_CANCEL, &cp, &cr, &e), 0);
    cr_assert_eq(tc_wait(&a, ia, BN_RPC_GENERATE, &gr, &e), 0, "%d %s", e.code, e.message);
    cr_assert_eq(gr.stats.stop_reason, BN_RPC_STOP_CANCELLED);
    /* Room again. */
    cr_assert_eq(tc_call(&c, BN_RPC_GENERATE, &gp, &gr, &e), 0, "%d %s", e.code, e.message);
    tc_close(&a);
    tc_close(&b);
    tc_close(&c);
    cr_assert_eq(dh_stop(&D), 0);
}

static int chat(struct tc *c, const char *session, const struct bn_rpc_chat_message *m, size_t n,
                struct bn_rpc_generate_result *r)
{
    struct bn_rpc_chat_params cp;
    bn_rpc_init(bn_rpc_params_schema(BN_RPC_CHAT), &cp);
    cp.model = "tiny";
    cp.messages = m;
    cp.n_messages = n;
    cp.session = session;
    cp.max_tokens = 6;
    cp.options.temperature = 0;
    struct bn_rpc_error e;
    int rc = tc_call(c, BN_RPC_CHAT, &cp, r, &e);
    if (rc < 0)
        fprintf(stderr, "chat: %d %s\n", e.code, e.message);
    return rc;
}

Test(sched, chat_session_reuses_its_cache, .fini = fini)
{
    start("sessions = 1\n");
    struct tc c;
    cr_assert_eq(tc_connect(&c, D.sock), 0);
    cr_assert_eq(tc_load_tiny(&c, NULL, 0, false), 0);
    struct bn_rpc_chat_message m[4] = {
        {BN_RPC_ROLE_SYSTEM, "be brief"},
        {BN_RPC_ROLE_USER, "the cat sat on the mat"},
    };
    struct bn_rpc_generate_result r1, r2, r3, r4;
    cr_assert_eq(chat(&c, "s1", m, 2, &r1), 0);
    cr_assert_eq(r1.stats.cached_tokens, 0);
    cr_assert_str_eq(r1.session, "s1");
    m[2] = (struct bn_rpc_chat_message){BN_RPC_ROLE_ASSISTANT, r1.text};
    m[3] = (struct bn_rpc_chat_message){BN_RPC_ROLE_USER, "and then?"};
    cr_assert_eq(chat(&c, "s1", m, 4, &r2), 0);
    cr_assert_geq(r2.stats.cached_tokens, r1.stats.prompt_tokens,
                  "the whole first prompt came from the cache (%lld cached, first prompt %lld)",
                  (long long)r2.stats.cached_tokens, (long long)r1.stats.prompt_tokens);
    cr_assert_lt(r2.stats.prompt_tokens - r2.stats.cached_tokens, r2.stats.prompt_tokens - r1.stats.prompt_tokens + 1,
                 "only the new turn was prefilled");
    /* The same conversation without the session: a full prefill, the same answer. */
    cr_assert_eq(chat(&c, NULL, m, 4, &r3), 0);
    cr_assert_eq(r3.stats.cached_tokens, 0);
    cr_assert_str_eq(r3.text, r2.text, "the cache does not change the answer");
    /* sessions = 1: a second session evicts the first, which then starts over. */
    cr_assert_eq(chat(&c, "s2", m, 2, &r4), 0);
    cr_assert_eq(chat(&c, "s1", m, 4, &r4), 0);
    cr_assert_eq(r4.stats.cached_tokens, 0, "s1 was evicted by s2");
    cr_assert_str_eq(r4.text, r2.text);
    struct bn_rpc_metrics_result mr;
    struct bn_rpc_error e;
    cr_assert_eq(tc_call(&c, BN_RPC_METRICS, NULL, &mr, &e), 0);
    cr_assert(strstr(mr.text, "bitnetd_chat_sessions 1"), "%s", mr.text);
    tc_close(&c);
    cr_assert_eq(dh_stop(&D), 0);
}

Test(sched, sigterm_with_stream_in_flight, .fini = fini)
{
    start("shutdown_grace = 200ms\n");
    struct tc c, idle;
    cr_assert_eq(tc_connect(&c, D.sock), 0);
    cr_assert_eq(tc_connect(&idle, D.sock), 0);
    load_long(&c);
    uint32_t id = send_long(&c, true);
    wait_active(&c, 1, 0);
    kill(D.pid, SIGTERM);
    struct bn_rpc_generate_result gr;
    struct bn_rpc_error e;
    cr_assert_lt(tc_wait(&c, id, BN_RPC_GENERATE, &gr, &e), 0);
    cr_assert_eq(e.code, BN_RPC_E_SHUTTING_DOWN, "%d %s", e.code, e.message);
    cr_assert(tc_wait_closed(&c, DH_TIMEOUT_MS));
    cr_assert(tc_wait_closed(&idle, DH_TIMEOUT_MS));
    cr_assert_eq(dh_wait(&D, DH_TIMEOUT_MS), 0, "exit 0 after the grace period");
    cr_assert(dh_log_has(&D, "grace period over"));
    struct stat st;
    cr_assert_lt(stat(D.sock, &st), 0, "the socket file is removed");
    tc_close(&c);
    tc_close(&idle);
}

Test(sched, sigterm_lets_short_work_finish, .fini = fini)
{
    start("shutdown_grace = 30s\n");
    struct tc c;
    cr_assert_eq(tc_connect(&c, D.sock), 0);
    cr_assert_eq(tc_load_tiny(&c, NULL, 0, false), 0);
    struct bn_rpc_generate_params gp;
    int32_t p[] = {5, 6, 7};
    tc_gen_tokens(&gp, p, 3, 8, true);
    uint32_t id = tc_send(&c, BN_RPC_GENERATE, &gp);
    kill(D.pid, SIGTERM);
    struct bn_rpc_generate_result gr;
    struct bn_rpc_error e;
    int rc = tc_wait(&c, id, BN_RPC_GENERATE, &gr, &e);
    /* Either it was in before the signal (a full result) or it came after the
     * listener closed its door (shutting down); never a cut stream. */
    if (rc < 0)
        cr_assert_eq(e.code, BN_RPC_E_SHUTTING_DOWN, "%d %s", e.code, e.message);
    else
        cr_assert_neq(gr.stats.stop_reason, BN_RPC_STOP_CANCELLED);
    cr_assert_eq(dh_wait(&D, DH_TIMEOUT_MS), 0);
    tc_close(&c);
}

Test(sched, shutdown_method_and_second_daemon_refused, .fini = fini)
{
    start(NULL);
    /* A second daemon on the same socket refuses to start. */
    struct dh other;
    memset(&other, 0, sizeof(other));
    {
        const char *build = getenv("BITNET_BUILD_DIR");
        char bin[600];
        snprintf(bin, sizeof(bin), "%s/daemon/bitnetd", build);
        pid_t pid = fork();
        if (pid == 0) {
            int null = open("/dev/null", 1);
            dup2(null, 2);
            execl(bin, bin, "--socket", D.sock, "--shm-dir", D.dir, (char *)NULL);
            _exit(127);
        }
        int st;
        waitpid(pid, &st, 0);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1, "the second daemon exits 1");
    }
    struct tc c;
    cr_assert_eq(tc_connect(&c, D.sock), 0, "the first daemon still serves");
    struct bn_rpc_shutdown_params sp = {.has_grace_seconds = true, .grace_seconds = 1};
    struct bn_rpc_error e;
    cr_assert_eq(tc_call(&c, BN_RPC_SHUTDOWN, &sp, NULL, &e), 0, "%d %s", e.code, e.message);
    cr_assert(tc_wait_closed(&c, DH_TIMEOUT_MS));
    cr_assert_eq(dh_wait(&D, DH_TIMEOUT_MS), 0);
    tc_close(&c);
}

Test(sched, socket_activation, .fini = fini)
{
    if (!dh_model_path())
        cr_skip_test("%s", dh_model_why());
    cr_assert_eq(dh_start_activated(&D, NULL, NULL), 0);
    cr_assert(dh_log_has(&D, "listening on an activated socket"));
    struct tc c;
    cr_assert_eq(tc_connect(&c, D.sock), 0);
    struct bn_rpc_error e;
    cr_assert_eq(tc_call(&c, BN_RPC_PING, NULL, NULL, &e), 0);
    cr_assert_eq(tc_load_tiny(&c, NULL, 0, false), 0);
    tc_close(&c);
    cr_assert_eq(dh_stop(&D), 0);
    struct stat st;
    cr_assert_eq(stat(D.sock, &st), 0, "an inherited socket is not bitnetd's to remove");
}

/* In a child running as nobody: connect, hello, then try an admin verb.  Exit code:
 * 0 = refused with permission_denied as expected, 10 + step otherwise. */
static int as_nobody(const char *sock, bool expect_admin)
{
    if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
        return 2;
    struct tc c;
    if (tc_connect(&c, sock) < 0)
        return 11;
    struct bn_rpc_error e;
    if (tc_call(&c, BN_RPC_PING, NULL, NULL, &e) < 0)
        return 12;
    struct bn_rpc_status_result st;
    if (tc_status(&c, &st) < 0)
        return 13;
    struct bn_rpc_unload_params up = {.name = "tiny"};
    int rc = tc_call(&c, BN_RPC_UNLOAD, &up, NULL, &e);
    if (expect_admin)
        return rc == 0 ? 0 : 14;
    if (rc == 0 || e.code != BN_RPC_E_PERMISSION_DENIED)
        return 15;
    struct bn_rpc_shutdown_params sp = {0};
    if (tc_call(&c, BN_RPC_SHUTDOWN, &sp, NULL, &e) == 0 || e.code != BN_RPC_E_PERMISSION_DENIED)
        return 16;
    struct bn_rpc_load_params lp;
    bn_rpc_init(bn_rpc_params_schema(BN_RPC_LOAD), &lp);
    lp.model = "tiny";
    if (tc_call(&c, BN_RPC_LOAD, &lp, NULL, &e) == 0 || e.code != BN_RPC_E_PERMISSION_DENIED)
        return 17;
    tc_close(&c);
    return 0;
}

static int run_as_nobody(const char *sock, bool expect_admin)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0)
        _exit(as_nobody(sock, expect_admin));
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 100;
}

Test(sched, admin_verbs_refused_for_another_uid, .fini = fini)
{
    if (geteuid() != 0)
        cr_skip_test("needs root to run a client as another uid (nobody)");
    start("socket_group = 65534\n");
    chmod(D.dir, 0711); /* let nobody reach the socket inside the test folder */
    struct tc c;
    cr_assert_eq(tc_connect(&c, D.sock), 0);
    cr_assert_eq(tc_load_tiny(&c, NULL, 0, false), 0);
    cr_assert_eq(run_as_nobody(D.sock, false), 0, "see as_nobody() for the step that failed");
    struct bn_rpc_ps_result ps;
    struct bn_rpc_error e;
    cr_assert_eq(tc_call(&c, BN_RPC_PS, NULL, &ps, &e), 0);
    cr_assert_eq(ps.n_models, 1, "the refused unload did nothing");
    tc_close(&c);
    cr_assert_eq(dh_stop(&D), 0);
}

Test(sched, admin_group_members_may_administer, .fini = fini)
{
    if (geteuid() != 0)
        cr_skip_test("needs root to run a client as another uid (nobody)");
    start("socket_group = 65534\nadmin_group = 65534\n");
    chmod(D.dir, 0711);
    struct tc c;
    cr_assert_eq(tc_connect(&c, D.sock), 0);
    cr_assert_eq(tc_load_tiny(&c, NULL, 0, false), 0);
    cr_assert_eq(run_as_nobody(D.sock, true), 0, "see as_nobody() for the step that failed");
    tc_close(&c);
    cr_assert_eq(dh_stop(&D), 0);
}

Test(sched, sighup_reloads_the_config, .fini = fini)
{
    start("max_queue = 3\n");
    struct tc c;
    cr_assert_eq(tc_connect(&c, D.sock), 0);
    struct bn_rpc_status_result st;
    cr_assert_eq(tc_status(&c, &st), 0);
    cr_assert_eq(st.max_queue, 3);
    cr_assert_eq(dh_write_conf(&D, "max_queue = 5\nparallel = 9\n"), 0);
    kill(D.pid, SIGHUP);
    for (int i = 0; i < 4000 && st.max_queue != 5; i++) {
        sleep_ms(2);
        cr_assert_eq(tc_status(&c, &st), 0);
    }
    cr_assert_eq(st.max_queue, 5, "reloaded");
    cr_assert_eq(st.parallel, 4, "parallel needs a restart");
    cr_assert(dh_log_has(&D, "parallel: 4 -> 9 takes effect only after a restart"));
    /* A bad config keeps the current one. */
    cr_assert_eq(dh_write_conf(&D, "max_queue = lots\n"), 0);
    kill(D.pid, SIGHUP);
    for (int i = 0; i < 4000 && !dh_log_has(&D, "config reload failed"); i++)
        sleep_ms(2);
    cr_assert(dh_log_has(&D, "bitnetd.conf:2: max_queue: 'lots' is not an integer"));
    cr_assert_eq(tc_status(&c, &st), 0);
    cr_assert_eq(st.max_queue, 5);
    tc_close(&c);
    cr_assert_eq(dh_stop(&D), 0);
}

Test(sched, sd_notify_ready_and_stopping, .fini = fini)
{
    if (!dh_model_path())
        cr_skip_test("%s", dh_model_why());
    char path[300];
    cr_assert_eq(make_tmpdir(EXTRA, sizeof(EXTRA), "bitnetd-notify"), 0);
    snprintf(path, sizeof(path), "%s/notify", EXTRA);
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, path, strlen(path) + 1);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    dh_notify_socket = path;
    int rc = dh_start(&D, NULL, NULL);
    dh_notify_socket = NULL;
    cr_assert_eq(rc, 0);
    char msg[512];
    struct pollfd p = {.fd = fd, .events = POLLIN};
    cr_assert_eq(poll(&p, 1, DH_TIMEOUT_MS), 1);
    ssize_t n = recv(fd, msg, sizeof(msg) - 1, 0);
    cr_assert_gt(n, 0);
    msg[n] = 0;
    cr_assert(strstr(msg, "READY=1"), "%s", msg);
    char pid[32];
    snprintf(pid, sizeof(pid), "MAINPID=%d", (int)D.pid);
    cr_assert(strstr(msg, pid), "%s", msg);
    kill(D.pid, SIGTERM);
    cr_assert_eq(poll(&p, 1, DH_TIMEOUT_MS), 1);
    n = recv(fd, msg, sizeof(msg) - 1, 0);
    cr_assert_gt(n, 0);
    msg[n] = 0;
    cr_assert(strstr(msg, "STOPPING=1"), "%s", msg);
    cr_assert_eq(dh_wait(&D, DH_TIMEOUT_MS), 0);
    close(fd);
}

Test(sched, stale_socket_replaced_foreign_file_kept, .fini = fini)
{
    if (!dh_model_path())
        cr_skip_test("%s", dh_model_why());
    char sock[300];
    cr_assert_eq(make_tmpdir(EXTRA, sizeof(EXTRA), "bitnetd-stale"), 0);
    snprintf(sock, sizeof(sock), "%s/s.sock", EXTRA);
    /* A socket file nobody listens on: what a crashed daemon leaves. */
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, sock, strlen(sock) + 1);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(fd);
    const char *args[] = {"--socket", sock, NULL};
    cr_assert_eq(dh_start(&D, NULL, args), 0);
    for (int i = 0; i < 4000 && !dh_log_has(&D, "listening on"); i++)
        sleep_ms(2);
    cr_assert(dh_log_has(&D, "removed stale socket"));
    struct tc c;
    cr_assert_eq(tc_connect(&c, sock), 0);
    tc_close(&c);
    cr_assert_eq(dh_stop(&D), 0);
    dh_cleanup(&D);
    /* A regular file at the socket path is never removed. */
    FILE *f = fopen(sock, "w");
    fputs("precious", f);
    fclose(f);
    cr_assert_neq(dh_start(&D, NULL, args), 0);
    cr_assert(dh_log_has(&D, "exists and is not a socket"));
    struct stat st;
    cr_assert_eq(stat(sock, &st), 0);
    cr_assert_eq(st.st_size, 8);
}

Test(sched, restart_after_sigkill_reattaches, .fini = fini)
{
    if (!dh_model_path())
        cr_skip_test("%s", dh_model_why());
    cr_assert_eq(make_tmpdir(EXTRA, sizeof(EXTRA), "bitnetd-shm"), 0);
    const char *args[] = {"--shm-dir", EXTRA, NULL};
    cr_assert_eq(dh_start(&D, NULL, args), 0);
    struct tc c;
    cr_assert_eq(tc_connect(&c, D.sock), 0);
    struct bn_rpc_load_params lp;
    bn_rpc_init(bn_rpc_params_schema(BN_RPC_LOAD), &lp);
    lp.model = "tiny";
    struct bn_rpc_load_result lr;
    struct bn_rpc_error e;
    cr_assert_eq(tc_call(&c, BN_RPC_LOAD, &lp, &lr, &e), 0, "%d %s", e.code, e.message);
    cr_assert_neq(lr.loaded_by, BN_RPC_LOADED_BY_REATTACH);
    int32_t p[] = {5, 6, 7, 8};
    struct bn_rpc_generate_params gp;
    struct bn_rpc_generate_result g1, g2;
    tc_gen_tokens(&gp, p, 4, 8, false);
    cr_assert_eq(tc_call(&c, BN_RPC_GENERATE, &gp, &g1, &e), 0);
    char *text1 = strdup(g1.text); /* the client's zone goes with tc_close */
    tc_close(&c);
    kill(D.pid, SIGKILL);
    dh_wait(&D, DH_TIMEOUT_MS);
    dh_cleanup(&D);
    cr_assert_eq(dh_start(&D, NULL, args), 0);
    cr_assert_eq(tc_connect(&c, D.sock), 0);
    cr_assert_eq(tc_call(&c, BN_RPC_LOAD, &lp, &lr, &e), 0, "%d %s", e.code, e.message);
    cr_assert_eq(lr.loaded_by, BN_RPC_LOADED_BY_REATTACH, "the segment the killed daemon filled is mapped again");
    cr_assert_eq(tc_call(&c, BN_RPC_GENERATE, &gp, &g2, &e), 0);
    cr_assert_str_eq(g2.text, text1, "same greedy output from the reattached model");
    free(text1);
    struct bn_rpc_ps_result ps;
    cr_assert_eq(tc_call(&c, BN_RPC_PS, NULL, &ps, &e), 0);
    cr_assert_eq(ps.models[0].loaded_by, BN_RPC_LOADED_BY_REATTACH);
    tc_close(&c);
    cr_assert_eq(dh_stop(&D), 0);
}

Test(sched, long_prompt_does_not_stall_others, .fini = fini)
{
    start(NULL);
    struct tc a, b;
    cr_assert_eq(tc_connect(&a, D.sock), 0);
    cr_assert_eq(tc_connect(&b, D.sock), 0);
    load_long(&a);
    uint32_t ia = send_long(&a, false); /* ~63 steps of prefill at 256 tokens per step */
    wait_active(&b, 1, 0);
    struct bn_rpc_generate_params gp;
    struct bn_rpc_generate_result gr;
    struct bn_rpc_error e;
    int32_t p[] = {5, 6, 7};
    tc_gen_tokens(&gp, p, 3, 8, false);
    cr_assert_eq(tc_call(&b, BN_RPC_GENERATE, &gp, &gr, &e), 0, "%d %s", e.code, e.message);
    /* b got all its tokens while a's prompt is still being evaluated. */
    struct bn_rpc_status_result st;
    cr_assert_eq(tc_status(&b, &st), 0);
    cr_assert_eq(st.active_sequences, 1, "the long prompt is still in its prefill");
    struct bn_rpc_cancel_params cp = {.msgid = ia};
    cr_assert_eq(tc_call(&a, BN_RPC_CANCEL, &cp, NULL, &e), 0);
    cr_assert_eq(tc_wait(&a, ia, BN_RPC_GENERATE, &gr, &e), 0);
    tc_close(&a);
    tc_close(&b);
    cr_assert_eq(dh_stop(&D), 0);
}

/* ---- many clients at once: mixed requests, some cancelled, some walking away ---- */
#define MIX_CLIENTS 8
#define MIX_ROUNDS 12

struct mixer {
    pthread_t th;
    int id;
    int failures;
    char why[700];
};

static void *mixer_main(void *arg)
{
    struct mixer *x = arg;
    struct tc c;
    if (tc_connect(&c, D.sock) < 0) {
        x->failures++;
        snprintf(x->why, sizeof(x->why), "connect");
        return NULL;
    }
    struct bn_rpc_error e;
    for (int r = 0; r < MIX_ROUNDS; r++) {
        int kind = (x->id + r) % 6;
        int32_t p[] = {1 + x->id, 2 + r, 3, 4};
        struct bn_rpc_generate_params gp;
        struct bn_rpc_generate_result gr;
        tc_gen_tokens(&gp, p, 4, 6 + r % 5, kind == 1);
        int rc = 0;
        if (kind == 0 || kind == 1) {
            rc = tc_call(&c, BN_RPC_GENERATE, &gp, &gr, &e);
        } else if (kind == 2) {
            struct bn_rpc_chat_message m[] = {{BN_RPC_ROLE_USER, "hi there"}};
            struct bn_rpc_chat_params cp;
            bn_rpc_init(bn_rpc_params_schema(BN_RPC_CHAT), &cp);
            cp.model = "tiny";
            cp.messages = m;
            cp.n_messages = 1;
            cp.max_tokens = 4;
            char sess[32];
            snprintf(sess, sizeof(sess), "mix-%d", x->id);
            cp.session = sess;
            rc = tc_call(&c, BN_RPC_CHAT, &cp, &gr, &e);
        } else if (kind == 3) {
            struct bn_rpc_tokenize_params tp;
            bn_rpc_init(bn_rpc_params_schema(BN_RPC_TOKENIZE), &tp);
            tp.model = "tiny";
            tp.text = "some text to split";
            rc = tc_call(&c, BN_RPC_TOKENIZE, &tp, NULL, &e);
            if (rc == 0)
                rc = tc_call(&c, BN_RPC_PS, NULL, NULL, &e);
        } else if (kind == 4) {
            /* start one and cancel it at once: a result (cancelled or finished) or
             * a cancelled-while-queued error, never anything else */
            gp.max_tokens = 200;
            gp.stream = true;
            uint32_t id = tc_send(&c, BN_RPC_GENERATE, &gp);
            struct bn_rpc_cancel_params cp = {.msgid = id};
            tc_send(&c, BN_RPC_CANCEL, &cp);
            rc = tc_wait(&c, id, BN_RPC_GENERATE, &gr, &e);
            if (rc < 0 && e.code == BN_RPC_E_CANCELLED)
                rc = 0;
        } else {
            /* walk away in the middle of a stream */
            gp.max_tokens = 200;
            gp.stream = true;
            tc_send(&c, BN_RPC_GENERATE, &gp);
            tc_close(&c);
            if (tc_connect(&c, D.sock) < 0) {
                x->failures++;
                snprintf(x->why, sizeof(x->why), "reconnect");
                return NULL;
            }
        }
        if (rc < 0 && e.code != BN_RPC_E_BUSY) {
            x->failures++;
            snprintf(x->why, sizeof(x->why), "round %d kind %d: %d %s", r, kind, e.code, e.message);
        }
    }
    tc_close(&c);
    return NULL;
}

Test(sched, many_clients_mixed_requests, .fini = fini)
{
    start("parallel = 4\nmax_queue = 64\nsessions = 4\n");
    struct tc c;
    cr_assert_eq(tc_connect(&c, D.sock), 0);
    cr_assert_eq(tc_load_tiny(&c, NULL, 0, false), 0);
    struct mixer x[MIX_CLIENTS];
    for (int i = 0; i < MIX_CLIENTS; i++) {
        x[i] = (struct mixer){.id = i};
        pthread_create(&x[i].th, NULL, mixer_main, &x[i]);
    }
    for (int i = 0; i < MIX_CLIENTS; i++) {
        pthread_join(x[i].th, NULL);
        cr_expect_eq(x[i].failures, 0, "client %d: %s", i, x[i].why);
    }
    cr_assert_eq(tc_wait_idle(&c, DH_TIMEOUT_MS), 0);
    struct bn_rpc_status_result st;
    for (int i = 0; i < 4000; i++) {
        cr_assert_eq(tc_status(&c, &st), 0);
        if (st.clients == 1)
            break;
        sleep_ms(2);
    }
    cr_assert_eq(st.clients, 1, "every other connection is gone");
    cr_assert_eq(st.active_sequences, 0);
    cr_assert_eq(st.queued, 0);
    tc_close(&c);
    cr_assert_eq(dh_stop(&D), 0, "clean exit after the storm");
}
