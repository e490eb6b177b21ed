/* tests/test_fault_shm.c — faults around resident models (shared-memory segments
 * and the model files behind them), each against a real bitnetd:
 *   - bitnetd SIGKILLed with two models resident: the restarted daemon maps both
 *     segments again (loaded_by "reattach", the same objects, no file read) and gives
 *     the same greedy output as before and as the engine alone;
 *   - a segment damaged between runs (metadata copy, tensor directory, a writer that
 *     never finished, a truncated object): detected at start, discarded, and the
 *     model read from its file again with the same output;
 *   - the model file truncated or replaced while the daemon serves it: the resident
 *     copy keeps serving; loading the changed file reports the problem, naming it;
 *   - shared memory full during a load (a small private tmpfs as shm_dir, in a mount
 *     namespace of this test process only): a clear error, nothing half-made left,
 *     and the same load succeeds once there is room;
 *   - a segment of an earlier run that no load claims goes after keep_alive.
 *
 * Every test makes its own small models with bitnet-mkmodel (two seeds: different
 * weights, different outputs) in a folder of its own, which it may damage.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
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
static char EXTRA[DH_PATH_MAX]; /* the test's models (and mount point) */
static char MOUNTED[DH_PATH_MAX + 16]; /* a private tmpfs to unmount before removal */
#define MODEL_PATH_MAX (DH_PATH_MAX + 64) /* EXTRA/NAME.gguf */

static void fini(void)
{
    dh_cleanup(&D);
    if (MOUNTED[0]) {
        umount2(MOUNTED, MNT_DETACH);
        MOUNTED[0] = 0;
    }
    if (EXTRA[0]) {
        rm_rf(EXTRA);
        EXTRA[0] = 0;
    }
}

/* EXTRA/NAME.gguf: a tiny model with this seed.  Skips when bitnet-mkmodel is not built. */
static void make_model(char *out, size_t cap, const char *name, int seed)
{
    const char *build = getenv("BITNET_BUILD_DIR");
    char mk[DH_PATH_MAX], seed_s[16];
    snprintf(mk, sizeof(mk), "%s/contrib/bitnet-mkmodel", build && *build ? build : ".");
    if (access(mk, X_OK) != 0)
        cr_skip_test("contrib/bitnet-mkmodel is not built (make): these tests make models of their own");
    if (!EXTRA[0])
        cr_assert_eq(make_tmpdir(EXTRA, sizeof(EXTRA), "bitnetd-fault"), 0);
    snprintf(out, cap, "%s/%s.gguf", EXTRA, name);
    snprintf(seed_s, sizeof(seed_s), "%d", seed);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execl(mk, mk, "--preset", "tiny", "--seed", seed_s, "--threads", "1", "--out", out, (char *)NULL);
        _exit(127);
    }
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "bitnet-mkmodel --seed %d failed", seed);
}

static const int32_t PROMPT[] = {5, 6, 7, 8};
#define N_PROMPT 4
#define N_GEN 16

struct output {
    char text[4096];
    int32_t ids[N_GEN];
    size_t n;
};

/* Greedy stream of N_GEN tokens from model `name`. */
static void generate(struct tc *c, const char *name, struct output *out)
{
    struct bn_rpc_generate_params gp;
    tc_gen_tokens(&gp, PROMPT, N_PROMPT, N_GEN, true);
    gp.model = name;
    struct bn_rpc_generate_result gr;
    struct bn_rpc_error e;
    size_t first = c->n_tokens;
    uint32_t id = tc_send(c, BN_RPC_GENERATE, &gp);
    cr_assert_eq(tc_wait(c, id, BN_RPC_GENERATE, &gr, &e), 0, "generate from %s: %d %s", name, e.code, e.message);
    snprintf(out->text, sizeof(out->text), "%s", gr.text);
    out->n = 0;
    for (size_t i = first; i < c->n_tokens; i++)
        if (c->tokens[i].msgid == id && out->n < N_GEN)
            out->ids[out->n++] = c->tokens[i].token;
    cr_assert_gt(out->n, 0);
}

static void expect_same(const struct output *a, const struct output *b, const char *what)
{
    cr_assert_str_eq(a->text, b->text, "%s: text differs", what);
    cr_assert_eq(a->n, b->n, "%s: %zu tokens, then %zu", what, a->n, b->n);
    for (size_t i = 0; i < a->n; i++)
        cr_assert_eq(a->ids[i], b->ids[i], "%s: token %zu", what, i);
}

/* The output must also be the engine's own greedy continuation of PROMPT. */
static void expect_engine(const char *model_path, const struct output *o)
{
    int32_t want[N_GEN];
    size_t n = 0;
    cr_assert_eq(engine_greedy(model_path, PROMPT, N_PROMPT, N_GEN, want, &n), 0);
    for (size_t i = 0; i < o->n; i++)
        cr_assert_eq(o->ids[i], want[i], "token %zu: daemon %d, engine %d", i, o->ids[i], want[i]);
}

static int load(struct tc *c, const char *model, const char *name, struct bn_rpc_load_result *lr,
                struct bn_rpc_error *e)
{
    struct bn_rpc_load_params lp;
    bn_rpc_init(bn_rpc_params_schema(BN_RPC_LOAD), &lp);
    lp.model = model;
    lp.name = name;
    return tc_call(c, BN_RPC_LOAD, &lp, lr, e);
}

static enum bn_rpc_loaded_by load_ok(struct tc *c, const char *model, const char *name)
{
    struct bn_rpc_load_result lr;
    struct bn_rpc_error e;
    cr_assert_eq(load(c, model, name, &lr, &e), 0, "load %s: %d %s", model, e.code, e.message);
    return lr.loaded_by;
}

static void shm_dir(char *out, size_t cap)
{
    snprintf(out, cap, "%s/shm", D.dir);
}

/* The one segment in the daemon's shm folder: its path (and inode). */
static void the_segment(char *path, size_t cap, ino_t *ino)
{
    char dir[DH_PATH_MAX + 16];
    shm_dir(dir, sizeof(dir));
    cr_assert_eq(dh_count_entries(dir), 1, "one segment in %s", dir);
    DIR *d = opendir(dir);
    struct dirent *de;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.')
            break;
    cr_assert_not_null(de);
    snprintf(path, cap, "%s/%s", dir, de->d_name);
    closedir(d);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    if (ino)
        *ino = st.st_ino;
}

static void sigkill_daemon(void)
{
    cr_assert_eq(kill(D.pid, SIGKILL), 0);
    cr_assert_eq(dh_wait(&D, DH_TIMEOUT_MS), 128 + SIGKILL);
}

/* ---- bitnetd SIGKILLed with two models resident ---- */

Test(fault, sigkill_with_two_models_reattaches_both, .fini = fini, .timeout = 120)
{
    char a[MODEL_PATH_MAX], b[MODEL_PATH_MAX], conf[2 * MODEL_PATH_MAX + 64];
    make_model(a, sizeof(a), "a", 1);
    make_model(b, sizeof(b), "b", 2);
    snprintf(conf, sizeof(conf), "[models]\nA = %s\nB = %s\n", a, b);
    cr_assert_eq(dh_start(&D, conf, NULL), 0);
    struct tc c;
    cr_assert_eq(tc_connect(&c, D.sock), 0);
    cr_assert_neq(load_ok(&c, "A", NULL), BN_RPC_LOADED_BY_REATTACH);
    cr_assert_neq(load_ok(&c, "B", NULL), BN_RPC_LOADED_BY_REATTACH);
    struct output a1, b1, a2, b2;
    generate(&c, "A", &a1);
    generate(&c, "B", &b1);
    expect_engine(a, &a1);
    expect_engine(b, &b1);
    cr_assert(strcmp(a1.text, b1.text) != 0 || a1.ids[0] != b1.ids[0], "two different models");
    tc_close(&c);
    char dir[DH_PATH_MAX + 16];
    shm_dir(dir, sizeof(dir));
    cr_assert_eq(dh_count_entries(dir), 2, "one segment per model");

    sigkill_daemon();
    cr_assert_eq(dh_restart(&D, conf, NULL), 0);
    cr_assert_eq(dh_log_count(&D, "reattached segment"), 2, "both segments adopted at start");
    cr_assert_eq(tc_connect(&c, D.sock), 0);
    cr_assert_eq(load_ok(&c, "A", NULL), BN_RPC_LOADED_BY_REATTACH, "A mapped again, not read from its file");
    cr_assert_eq(load_ok(&c, "B", NULL), BN_RPC_LOADED_BY_REATTACH, "B mapped again, not read from its file");
    struct bn_rpc_ps_result ps;
    struct bn_rpc_error e;
    cr_assert_eq(tc_call(&c, BN_RPC_PS, NULL, &ps, &e), 0);
    cr_assert_eq(ps.n_models, 2);
    for (size_t i = 0; i < ps.n_models; i++)
        cr_assert_eq(ps.models[i].loaded_by, BN_RPC_LOADED_BY_REATTACH, "ps: %s loaded by %s", ps.models[i].name,
                     bn_rpc_loaded_by_name(ps.models[i].loaded_by));
    cr_assert_eq(dh_count_entries(dir), 2, "the same two segments, no new ones");
    cr_assert(!dh_log_has(&D, "discarding segment"));
    generate(&c, "A", &a2);
    generate(&c, "B", &b2);
    expect_same(&a1, &a2, "A after the restart");
    expect_same(&b1, &b2, "B after the restart");
    tc_close(&c);
    cr_assert_eq(dh_stop(&D), 0);
}

/* ---- a segment damaged between runs ---- */

enum damage { DAMAGE_META, DAMAGE_DIRECTORY, DAMAGE_UNFINISHED, DAMAGE_TRUNCATED, DAMAGE_COUNT };

static const char *const damage_name[] = {"metadata copy", "tensor directory", "unfinished writer", "truncated"};
/* What the daemon's log says about each. */
static const char *const damage_found[] = {"metadata copy hash mismatch", "header hash mismatch",
                                           "still in state loading", "truncated or resized"};

static void damage_segment(const char *path, enum damage how)
{
    int fd = open(path, O_RDWR);
    cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
    struct bn_seg_header h;
    cr_assert_eq(pread(fd, &h, sizeof(h), 0), (ssize_t)sizeof(h));
    off_t at = 0;
    switch (how) {
    case DAMAGE_META: at = (off_t)(h.meta_offset + h.meta_bytes / 2); break;
    case DAMAGE_DIRECTORY: at = (off_t)(h.dir_offset + 2); break; /* a tensor name */
    case DAMAGE_UNFINISHED: {
        uint32_t loading = BN_SEG_STATE_LOADING;
        cr_assert_eq(pwrite(fd, &loading, sizeof(loading), offsetof(struct bn_seg_header, state)),
                     (ssize_t)sizeof(loading));
        break;
    }
    case DAMAGE_TRUNCATED: cr_assert_eq(ftruncate(fd, (off_t)(h.total_bytes - 4096)), 0); break;
    case DAMAGE_COUNT: break;
    }
    if (at) {
        unsigned char byte;
        cr_assert_eq(pread(fd, &byte, 1, at), 1);
        byte ^= 0x5a;
        cr_assert_eq(pwrite(fd, &byte, 1, at), 1);
    }
    close(fd);
}

Test(fault, damaged_segment_is_discarded_and_reloaded, .fini = fini, .timeout = 120)
{
    char a[MODEL_PATH_MAX], conf[MODEL_PATH_MAX + 32];
    make_model(a, sizeof(a), "a", 1);
    snprintf(conf, sizeof(conf), "[models]\nA = %s\n", a);
    cr_assert_eq(dh_start(&D, conf, NULL), 0);
    struct tc c;
    cr_assert_eq(tc_connect(&c, D.sock), 0);
    load_ok(&c, "A", NULL);
    struct output first;
    generate(&c, "A", &first);
    expect_engine(a, &first);
    tc_close(&c);
    for (int how = 0; how < DAMAGE_COUNT; how++) {
        cr_assert_eq(dh_stop(&D), 0);
        char seg[2 * DH_PATH_MAX];
        the_segment(seg, sizeof(seg), NULL);
        damage_segment(seg, (enum damage)how);
        int discards = dh_log_count(&D, "discarding segment");
        cr_assert_eq(dh_restart(&D, conf, NULL), 0);
        cr_assert_eq(dh_log_count(&D, "discarding segment"), discards + 1, "%s: not discarded at start",
                     damage_name[how]);
        cr_assert(dh_log_has(&D, damage_found[how]), "%s: the log does not say '%s'", damage_name[how],
                  damage_found[how]);
        cr_assert_eq(tc_connect(&c, D.sock), 0);
        enum bn_rpc_loaded_by by = load_ok(&c, "A", NULL);
        cr_assert_neq(by, BN_RPC_LOADED_BY_REATTACH, "%s: the damaged segment was used", damage_name[how]);
        struct output again;
        generate(&c, "A", &again);
        expect_same(&first, &again, damage_name[how]);
        tc_close(&c);
        the_segment(seg, sizeof(seg), NULL); /* the new one took the damaged one's place */
    }
    cr_assert_eq(dh_stop(&D), 0);
}

/* ---- the model file changes under a running daemon ---- */

Test(fault, model_file_truncated_or_replaced_while_serving, .fini = fini, .timeout = 120)
{
    char a[MODEL_PATH_MAX], b[MODEL_PATH_MAX], conf[MODEL_PATH_MAX + 64];
    make_model(a, sizeof(a), "a", 1);
    make_model(b, sizeof(b), "b", 2);
    snprintf(conf, sizeof(conf), "allow_client_paths = true\n[models]\nA = %s\n", a);
    cr_assert_eq(dh_start(&D, conf, NULL), 0);
    struct tc c;
    cr_assert_eq(tc_connect(&c, D.sock), 0);
    load_ok(&c, "A", NULL);
    struct output before, now;
    generate(&c, "A", &before);
    expect_engine(a, &before);

    /* Truncated in place: A keeps serving from its segment. */
    struct stat st;
    cr_assert_eq(stat(a, &st), 0);
    cr_assert_eq(truncate(a, st.st_size / 2), 0);
    generate(&c, "A", &now);
    expect_same(&before, &now, "A after its file was truncated");
    /* Loading the truncated file reports it, naming the file. */
    struct bn_rpc_load_result lr;
    struct bn_rpc_error e;
    cr_assert_lt(load(&c, a, "again", &lr, &e), 0, "the truncated file loaded");
    cr_assert_eq(e.code, BN_RPC_E_LOAD_FAILED, "%d %s", e.code, e.message);
    cr_assert(strstr(e.message, a), "the error names the file: %s", e.message);
    cr_assert(!strchr(e.message, '\n'), "one line: %s", e.message);
    cr_assert(strstr(e.message, "truncated") || strstr(e.message, "past the end") || strstr(e.message, "shorter") ||
                  strstr(e.message, "end of the file"),
              "the error says the file is cut short: %s", e.message);
    struct bn_rpc_status_result sst;
    cr_assert_eq(tc_status(&c, &sst), 0);
    cr_assert_eq(sst.models, 1, "the failed load left nothing resident");

    /* Replaced (a new file renamed over it, as package updates do): A keeps serving
     * the old weights; a load of the path now gets the new ones. */
    char tmp[MODEL_PATH_MAX + 8];
    snprintf(tmp, sizeof(tmp), "%s.new", a);
    cr_assert_eq(rename(b, tmp), 0);
    cr_assert_eq(rename(tmp, a), 0);
    generate(&c, "A", &now);
    expect_same(&before, &now, "A after its file was replaced");
    cr_assert_neq(load_ok(&c, a, "fresh"), BN_RPC_LOADED_BY_REATTACH);
    struct output fresh;
    generate(&c, "fresh", &fresh);
    expect_engine(a, &fresh); /* the new content of the path */
    tc_close(&c);

    /* After a crash, A's old segment no longer matches its file: discarded at start,
     * and A comes from the new file (the segment "fresh" made of it). */
    sigkill_daemon();
    cr_assert_eq(dh_restart(&D, conf, NULL), 0);
    cr_assert(dh_log_has(&D, "changed since segment"), "the stale segment is recognised");
    cr_assert_eq(tc_connect(&c, D.sock), 0);
    cr_assert_eq(load_ok(&c, "A", NULL), BN_RPC_LOADED_BY_REATTACH);
    generate(&c, "A", &now);
    expect_same(&fresh, &now, "A after the restart");
    tc_close(&c);
    char dir[DH_PATH_MAX + 16];
    shm_dir(dir, sizeof(dir));
    cr_assert_eq(dh_count_entries(dir), 1, "only the current segment is left");
    cr_assert_eq(dh_stop(&D), 0);
}

/* ---- shared memory full during a load ---- */

/* Mount a tmpfs of `bytes` at dir in a mount namespace of this test process only (the
 * daemon it starts inherits it; the real /dev/shm is never touched).  False when this
 * process may not (not root). */
static bool private_tmpfs(const char *dir, unsigned long long bytes)
{
    if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        return false;
    char opts[64];
    snprintf(opts, sizeof(opts), "size=%llu,mode=0700", bytes);
    return mount("tmpfs", dir, "tmpfs", 0, opts) == 0;
}

struct loader {
    struct tc c;
    uint32_t id;
    const char *name;
};

Test(fault, shm_full_during_load, .fini = fini, .timeout = 120)
{
    if (geteuid() != 0)
        cr_skip_test("needs root for a private mount namespace (a small tmpfs standing in for a full /dev/shm)");
    char a[MODEL_PATH_MAX], b[MODEL_PATH_MAX], conf[2 * MODEL_PATH_MAX + 64];
    make_model(a, sizeof(a), "a", 1);
    make_model(b, sizeof(b), "b", 2);
    snprintf(MOUNTED, sizeof(MOUNTED), "%s/shm", EXTRA);
    cr_assert_eq(mkdir(MOUNTED, 0700), 0);
    if (!private_tmpfs(MOUNTED, 64ull << 20)) {
        int err = errno;
        MOUNTED[0] = 0;
        cr_skip_test("cannot mount a private tmpfs: %s", strerror(err));
    }
    snprintf(conf, sizeof(conf), "[models]\nA = %s\nB = %s\n", a, b);
    const char *args[] = {"--shm-dir", MOUNTED, NULL};
    cr_assert_eq(dh_start(&D, conf, args), 0);
    /* How large a segment is (the two models have the same shape), then shrink the
     * tmpfs to room for one and a half. */
    struct tc probe;
    cr_assert_eq(tc_connect(&probe, D.sock), 0);
    load_ok(&probe, "A", NULL);
    struct bn_rpc_status_result sst;
    cr_assert_eq(tc_status(&probe, &sst), 0);
    unsigned long long seg_bytes = (unsigned long long)sst.resident_bytes;
    struct bn_rpc_unload_params unl = {.name = "A"};
    struct bn_rpc_error ue;
    cr_assert_eq(tc_call(&probe, BN_RPC_UNLOAD, &unl, NULL, &ue), 0, "%d %s", ue.code, ue.message);
    tc_close(&probe);
    cr_assert_eq(dh_count_entries(MOUNTED), 0);
    char opts[64];
    snprintf(opts, sizeof(opts), "size=%llu", seg_bytes + seg_bytes / 2);
    cr_assert_eq(mount(NULL, MOUNTED, NULL, MS_REMOUNT, opts), 0, "remount: %s", strerror(errno));

    /* Both loads at once: both may pass the free-space check before either writes,
     * so the one that loses finds the tmpfs full half-way through its fill. */
    struct loader l[2] = {{.name = "A"}, {.name = "B"}};
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(tc_connect(&l[i].c, D.sock), 0);
        struct bn_rpc_load_params lp;
        bn_rpc_init(bn_rpc_params_schema(BN_RPC_LOAD), &lp);
        lp.model = l[i].name;
        l[i].id = tc_send(&l[i].c, BN_RPC_LOAD, &lp);
    }
    int ok = -1, failed = -1;
    for (int i = 0; i < 2; i++) {
        struct bn_rpc_load_result lr;
        struct bn_rpc_error e;
        if (tc_wait(&l[i].c, l[i].id, BN_RPC_LOAD, &lr, &e) == 0) {
            ok = i;
            continue;
        }
        failed = i;
        fprintf(stderr, "load of %s: %s\n", l[i].name, e.message);
        cr_assert_eq(e.code, BN_RPC_E_LOAD_FAILED, "%d %s", e.code, e.message);
        cr_assert(strstr(e.message, "shared memory") || strstr(e.message, "no space"),
                  "the error says shared memory is full: %s", e.message);
        cr_assert(strstr(e.message, "unload a model"), "and what to do: %s", e.message);
    }
    cr_assert(ok >= 0 && failed >= 0, "exactly one of two loads fits (ok %d, failed %d)", ok, failed);
    cr_assert_eq(dh_count_entries(MOUNTED), 1, "nothing of the failed load is left in the tmpfs");
    cr_assert_eq(tc_status(&l[ok].c, &sst), 0);
    cr_assert_eq(sst.models, 1);
    struct output o;
    generate(&l[ok].c, l[ok].name, &o);
    expect_engine(ok == 0 ? a : b, &o);

    /* Room again: the model that did not fit loads now. */
    struct bn_rpc_unload_params up = {.name = l[ok].name};
    struct bn_rpc_error e;
    cr_assert_eq(tc_call(&l[ok].c, BN_RPC_UNLOAD, &up, NULL, &e), 0, "%d %s", e.code, e.message);
    cr_assert_eq(dh_count_entries(MOUNTED), 0);
    load_ok(&l[failed].c, l[failed].name, NULL);
    generate(&l[failed].c, l[failed].name, &o);
    expect_engine(failed == 0 ? a : b, &o);
    cr_assert_eq(dh_count_entries(MOUNTED), 1);
    for (int i = 0; i < 2; i++)
        tc_close(&l[i].c);
    cr_assert_eq(dh_stop(&D), 0);
}

/* ---- segments of an earlier run that nobody loads again ---- */

Test(fault, unclaimed_segments_go_after_keep_alive, .fini = fini, .timeout = 60)
{
    char a[MODEL_PATH_MAX], conf[MODEL_PATH_MAX + 64];
    make_model(a, sizeof(a), "a", 1);
    snprintf(conf, sizeof(conf), "keep_alive = 200ms\n[models]\nA = %s\n", a);
    cr_assert_eq(dh_start(&D, conf, NULL), 0);
    struct tc c;
    cr_assert_eq(tc_connect(&c, D.sock), 0);
    struct bn_rpc_load_params lp;
    bn_rpc_init(bn_rpc_params_schema(BN_RPC_LOAD), &lp);
    lp.model = "A";
    lp.has_keep_alive = true;
    lp.keep_alive = -1; /* this run keeps it: only the restart's timer may drop it */
    struct bn_rpc_error e;
    cr_assert_eq(tc_call(&c, BN_RPC_LOAD, &lp, NULL, &e), 0, "%d %s", e.code, e.message);
    tc_close(&c);
    sigkill_daemon();
    cr_assert_eq(dh_restart(&D, conf, NULL), 0);
    cr_assert(dh_log_has(&D, "reattached segment"));
    for (int i = 0; i < DH_TIMEOUT_MS / 5 && !dh_log_has(&D, "no load claimed"); i++)
        sleep_ms(5);
    cr_assert(dh_log_has(&D, "discarded 1 segment of an earlier run"), "the unclaimed segment stayed");
    char dir[DH_PATH_MAX + 16];
    shm_dir(dir, sizeof(dir));
    cr_assert_eq(dh_count_entries(dir), 0, "nothing left in shared memory");
    cr_assert_eq(tc_connect(&c, D.sock), 0);
    cr_assert_neq(load_ok(&c, "A", NULL), BN_RPC_LOADED_BY_REATTACH, "read from its file again");
    tc_close(&c);
    cr_assert_eq(dh_stop(&D), 0);
}
