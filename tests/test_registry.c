/* tests/test_registry.c — the registry of resident models: load into a segment,
 * share, unload, reattach after a restart, discard what is stale (tampered header,
 * truncated segment, changed file, other layout, killed load), memory limit, and
 * every kind of bad input without leaving anything behind. */
#include <liburing.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/time.h>

#include "log.h"
#include "registry.h"
#include "test_registry_util.h"


/* The method a LOAD_IO_URING load really uses here: pread when the kernel (or a
 * seccomp filter, as in many containers) refuses io_uring or BITNET_NO_IO_URING=1. */
static enum load_method uring_or_fallback(void)
{
    const char *env = getenv("BITNET_NO_IO_URING");
    if (env && strcmp(env, "1") == 0)
        return LOAD_PREAD;
    struct io_uring ring;
    if (io_uring_queue_init(2, &ring, 0) < 0)
        return LOAD_PREAD;
    io_uring_queue_exit(&ring);
    return LOAD_IO_URING;
}

static char tmp[TU_DIR];
static char shm[TU_PATH];   /* the registry's segment folder */
static char model[TU_PATH]; /* a private copy of tinyA */

static void setup(void)
{
    tu_mkdtemp(tmp, sizeof tmp);
    snprintf(shm, sizeof shm, "%s/shm", tmp);
    cr_assert_eq(mkdir(shm, 0700), 0);
    snprintf(model, sizeof model, "%s/tinyA.gguf", tmp);
    tu_log_capture();
}
static void teardown(void)
{
    tu_rmtree(tmp);
    /* POSIX shm objects of this process's test instance, if a test failed early. */
    char prefix[64];
    snprintf(prefix, sizeof prefix, "bitnetd-test%ld-", (long)getpid());
    DIR *d = opendir("/dev/shm");
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strncmp(de->d_name, prefix, strlen(prefix)) == 0) {
            char path[TU_PATH];
            snprintf(path, sizeof path, "/dev/shm/%s", de->d_name);
            unlink(path);
        }
    closedir(d);
}

static void need_model(void)
{
    char ref[TU_PATH];
    tu_ref_model(ref, sizeof ref, "tinyA-i2s.gguf");
    tu_copy_file(ref, model);
}

static void config(struct registry_config *c)
{
    registry_config_default(c);
    c->instance = "test";
    c->shm_dir = shm;
}

static struct registry *open_reg(const struct registry_config *c)
{
    struct registry *r;
    struct bn_err err = {{0}};
    cr_assert_eq(registry_open(&r, c, &err), 0, "%s", err.msg);
    return r;
}

static struct resident *load_ok(struct registry *r, const char *path)
{
    struct resident *m;
    struct bn_err err = {{0}};
    cr_assert_eq(registry_load(r, path, NULL, NULL, &m, &err), 0, "%s", err.msg);
    return m;
}

static void load_fails(struct registry *r, const char *path, const char *part1, const char *part2)
{
    struct resident *m = NULL;
    struct bn_err err = {{0}};
    cr_assert_eq(registry_load(r, path, NULL, NULL, &m, &err), -1, "loading %s should fail", path);
    cr_assert_null(m);
    cr_assert(strstr(err.msg, part1), "error '%s' should mention '%s'", err.msg, part1);
    if (part2)
        cr_assert(strstr(err.msg, part2), "error '%s' should mention '%s'", err.msg, part2);
    cr_assert_eq(registry_used_bytes(r), 0, "nothing reserved after a failed load");
    cr_assert_eq(tu_count_entries(shm), 0, "nothing left in the segment folder");
}

/* Every tensor of the resident equals packing the file directly. */
static void expect_model_bytes(const struct resident *m, const char *path)
{
    const struct bn_model_source *src = resident_source(m);
    cr_assert_not_null(src->meta);
    cr_assert_not_null(src->plan);
    struct bn_mapped_file map;
    struct bn_err err = {{0}};
    cr_assert_eq(bn_map_file(path, &map, &err), 0, "%s", err.msg);
    for (size_t i = 0; i < src->plan->n; i++) {
        const struct bn_pack_entry *e = &src->plan->entries[i];
        uint8_t *want = malloc(e->dst_bytes);
        cr_assert_eq(bn_pack_tensor(src->plan, e, (const uint8_t *)map.base + e->src_offset, want, &err), 0);
        cr_assert(memcmp(src->data[i], want, e->dst_bytes) == 0, "tensor '%s' differs", e->name);
        cr_assert_eq((uintptr_t)src->data[i] % BN_SEG_TENSOR_ALIGN, 0);
        free(want);
    }
    /* The metadata the engine opens is the file's, read from the segment's copy. */
    cr_assert_eq(bn_gguf_n_tensors(src->meta), (int64_t)src->plan->n);
    bn_unmap_file(&map);
}

static void segment_file(const struct resident *m, char *out, size_t cap)
{
    struct resident_info info;
    resident_describe(m, &info);
    cr_assert_lt(snprintf(out, cap, "%s/%s", shm, info.segment), (int)cap);
}

Test(registry, load_creates_a_ready_segment, .init = setup, .fini = teardown)
{
    need_model();
    struct registry_config c;
    config(&c);
    struct registry *r = open_reg(&c);
    struct resident *m = load_ok(r, model);
    struct resident_info info;
    resident_describe(m, &info);
    cr_assert_str_eq(info.method, load_method_name(uring_or_fallback()));
    cr_assert_eq(info.refs, 1);
    cr_assert_str_eq(info.path, model);
    cr_assert(strncmp(info.segment, "bitnetd-test-", 13) == 0, "%s", info.segment);
    cr_assert_eq(info.bytes % BN_SEG_DATA_ALIGN, 0);
    cr_assert_eq(registry_used_bytes(r), info.bytes);

    char path[TU_PATH];
    segment_file(m, path, sizeof path);
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0);
    cr_assert_eq(sb.st_mode & 07777, 0600);
    cr_assert_eq((uint64_t)sb.st_size, info.bytes);
    char why[512];
    cr_assert_eq(bn_seg_check(resident_segment(m), why, sizeof why), BN_SEG_OK, "%s", why);
    cr_assert_str_eq(bn_seg_hdr(resident_segment(m))->load_method, info.method);
    expect_model_bytes(m, model);

    registry_unload(r, m);
    cr_assert_neq(stat(path, &sb), 0, "unload unlinks the segment");
    cr_assert_eq(registry_used_bytes(r), 0);
    registry_close(r);
}

Test(registry, two_loads_share_one_segment, .init = setup, .fini = teardown)
{
    need_model();
    char link[TU_PATH];
    snprintf(link, sizeof link, "%s/alias.gguf", tmp);
    cr_assert_eq(symlink(model, link), 0);
    struct registry_config c;
    config(&c);
    struct registry *r = open_reg(&c);
    struct resident *a = load_ok(r, model);
    uint64_t used = registry_used_bytes(r);
    struct resident *b = load_ok(r, link); /* another spelling of the same file */
    cr_assert_eq(a, b, "the same resident");
    cr_assert_eq(registry_used_bytes(r), used, "counted once");
    cr_assert_eq(tu_count_entries(shm), 1);
    struct resident_info info;
    resident_describe(a, &info);
    cr_assert_eq(info.refs, 2);
    registry_unload(r, a);
    cr_assert_eq(tu_count_entries(shm), 1, "still used once");
    resident_describe(b, &info);
    cr_assert_eq(info.refs, 1);
    expect_model_bytes(b, model);
    registry_unload(r, b);
    cr_assert_eq(tu_count_entries(shm), 0);
    registry_close(r);
}

struct thread_load {
    struct registry *r;
    struct resident *m;
    int rc;
    struct bn_err err;
};
static void *thread_load_fn(void *arg)
{
    struct thread_load *t = arg;
    t->rc = registry_load(t->r, model, NULL, NULL, &t->m, &t->err);
    return NULL;
}

Test(registry, concurrent_loads_share_one_segment, .init = setup, .fini = teardown)
{
    need_model();
    struct registry_config c;
    config(&c);
    c.load.chunk_bytes = 4096; /* slow enough that the loads overlap */
    c.load.queue_depth = 1;
    struct registry *r = open_reg(&c);
    struct thread_load t[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        memset(&t[i], 0, sizeof t[i]);
        t[i].r = r;
        cr_assert_eq(pthread_create(&th[i], NULL, thread_load_fn, &t[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(t[i].rc, 0, "%s", t[i].err.msg);
        cr_assert_eq(t[i].m, t[0].m);
    }
    cr_assert_eq(tu_count_entries(shm), 1);
    struct resident_info info;
    resident_describe(t[0].m, &info);
    cr_assert_eq(info.refs, 4);
    for (int i = 0; i < 4; i++)
        registry_unload(r, t[i].m);
    cr_assert_eq(tu_count_entries(shm), 0);
    registry_close(r);
}

Test(registry, restart_reattaches, .init = setup, .fini = teardown)
{
    need_model();
    struct registry_config c;
    config(&c);
    struct registry *r = open_reg(&c);
    struct resident *m = load_ok(r, model);
    char name[BN_SEG_OBJ_NAME_MAX];
    struct resident_info info;
    resident_describe(m, &info);
    snprintf(name, sizeof name, "%s", info.segment);
    uint64_t bytes = info.bytes;
    registry_close(r); /* a daemon restart: the segment stays */
    cr_assert_eq(tu_count_entries(shm), 1);

    tu_log_buf[0] = '\0';
    r = open_reg(&c);
    cr_assert(strstr(tu_log_buf, "reattached segment"), "%s", tu_log_buf);
    cr_assert_eq(registry_used_bytes(r), bytes, "reattached segments count");
    struct resident_info list[4];
    cr_assert_eq(registry_list(r, list, 4), 1);
    cr_assert_eq(list[0].refs, 0);
    cr_assert_str_eq(list[0].method, "reattach");
    m = load_ok(r, model);
    resident_describe(m, &info);
    cr_assert_str_eq(info.segment, name);
    cr_assert_str_eq(info.method, "reattach");
    cr_assert_eq(info.refs, 1);
    expect_model_bytes(m, model);
    registry_unload(r, m);
    cr_assert_eq(tu_count_entries(shm), 0);
    registry_close(r);
}

Test(registry, discard_unused_after_restart, .init = setup, .fini = teardown)
{
    need_model();
    struct registry_config c;
    config(&c);
    struct registry *r = open_reg(&c);
    load_ok(r, model);
    registry_close(r);
    r = open_reg(&c);
    cr_assert_eq(registry_discard_unused(r), 1);
    cr_assert_eq(tu_count_entries(shm), 0);
    cr_assert_eq(registry_used_bytes(r), 0);
    registry_close(r);
}

/* Load, close, damage the segment or the file with `damage`, reopen: the segment is
 * discarded with a log line mentioning `why`, and loading again makes a new one. */
static void expect_discard(void (*damage)(const char *seg_path), const char *why,
                           const struct registry_config *reopen_cfg)
{
    need_model();
    struct registry_config c;
    config(&c);
    struct registry *r = open_reg(&c);
    struct resident *m = load_ok(r, model);
    char seg[TU_PATH];
    segment_file(m, seg, sizeof seg);
    registry_close(r);
    damage(seg);
    tu_log_buf[0] = '\0';
    r = open_reg(reopen_cfg ? reopen_cfg : &c);
    cr_assert(strstr(tu_log_buf, "discarding segment") && strstr(tu_log_buf, why),
              "log should say the segment was discarded because of '%s':\n%s", why, tu_log_buf);
    cr_assert_eq(tu_count_entries(shm), 0, "the stale segment is removed");
    cr_assert_eq(registry_used_bytes(r), 0);
    m = load_ok(r, model);
    struct resident_info info;
    resident_describe(m, &info);
    cr_assert_str_neq(info.method, "reattach", "reloaded from the file");
    expect_model_bytes(m, model);
    registry_unload(r, m);
    registry_close(r);
}

static void patch_segment(const char *seg, uint64_t off, uint8_t xor_mask)
{
    int fd = open(seg, O_RDWR);
    cr_assert(fd >= 0);
    uint8_t b;
    cr_assert_eq(pread(fd, &b, 1, (off_t)off), 1);
    b ^= xor_mask;
    cr_assert_eq(pwrite(fd, &b, 1, (off_t)off), 1);
    close(fd);
}

static void tamper_header_byte(const char *seg)
{
    patch_segment(seg, offsetof(struct bn_seg_header, src_size), 0x01);
}
static void truncate_segment(const char *seg)
{
    struct stat sb;
    stat(seg, &sb);
    cr_assert_eq(truncate(seg, sb.st_size / 2), 0);
}
static void touch_model(const char *seg)
{
    (void)seg;
    struct timespec t[2] = {{0, UTIME_OMIT}, {1000000000, 0}};
    cr_assert_eq(utimensat(AT_FDCWD, model, t, 0), 0);
}
static void grow_model(const char *seg)
{
    (void)seg;
    int fd = open(model, O_WRONLY | O_APPEND);
    cr_assert_eq(write(fd, "x", 1), 1);
    close(fd);
}
static void remove_model(const char *seg)
{
    (void)seg;
    unlink(model);
}
/* Change a metadata byte but keep size and mtime: only the checksum can tell. */
static void edit_model_header_keep_stat(const char *seg)
{
    (void)seg;
    struct stat sb;
    stat(model, &sb);
    /* Flip the case of the first character of the general.name value: key string,
     * then u32 value type and u64 string length. */
    size_t n;
    char *body = tu_read_file(model, &n);
    const char *key = memmem(body, n, "general.name", 12);
    cr_assert_not_null(key);
    off_t at = (off_t)(key - body) + 12 + 4 + 8;
    free(body);
    int fd = open(model, O_RDWR);
    uint8_t b;
    cr_assert_eq(pread(fd, &b, 1, at), 1);
    b ^= 0x20;
    cr_assert_eq(pwrite(fd, &b, 1, at), 1);
    close(fd);
    struct timespec t[2] = {sb.st_atim, sb.st_mtim};
    cr_assert_eq(utimensat(AT_FDCWD, model, t, 0), 0);
}
/* Another build's layout: a different layout id with a consistent header hash. */
static void other_layout_id(const char *seg)
{
    int fd = open(seg, O_RDWR);
    struct stat sb;
    fstat(fd, &sb);
    uint8_t *p = mmap(NULL, (size_t)sb.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    struct bn_seg_header *h = (struct bn_seg_header *)(void *)p;
    h->layout_id ^= 0x00ff0000u;
    h->header_hash = bn_seg_header_hash(h, (struct bn_seg_tensor *)(void *)(p + h->dir_offset));
    munmap(p, (size_t)sb.st_size);
    close(fd);
}

Test(reattach, tampered_header_byte_is_discarded, .init = setup, .fini = teardown)
{
    expect_discard(tamper_header_byte, "header hash mismatch", NULL);
}
Test(reattach, truncated_segment_is_discarded, .init = setup, .fini = teardown)
{
    expect_discard(truncate_segment, "truncated", NULL);
}
Test(reattach, changed_source_file_is_discarded, .init = setup, .fini = teardown)
{
    expect_discard(touch_model, "changed since", NULL);
}
Test(reattach, grown_source_file_is_discarded, .init = setup, .fini = teardown)
{
    expect_discard(grow_model, "changed since", NULL);
}
Test(reattach, missing_source_file_is_discarded, .init = setup, .fini = teardown)
{
    need_model();
    struct registry_config c;
    config(&c);
    struct registry *r = open_reg(&c);
    load_ok(r, model);
    registry_close(r);
    remove_model(NULL);
    tu_log_buf[0] = '\0';
    r = open_reg(&c);
    cr_assert(strstr(tu_log_buf, "is gone"), "%s", tu_log_buf);
    cr_assert_eq(tu_count_entries(shm), 0);
    registry_close(r);
}
Test(reattach, same_stat_other_header_bytes_is_discarded, .init = setup, .fini = teardown)
{
    expect_discard(edit_model_header_keep_stat, "checksum differs", NULL);
}
Test(reattach, wrong_layout_id_is_discarded, .init = setup, .fini = teardown)
{
    expect_discard(other_layout_id, "layout id", NULL);
}
static void no_damage(const char *seg)
{
    (void)seg;
}
Test(reattach, other_kernel_path_is_discarded, .init = setup, .fini = teardown)
{
    struct registry_config c;
    config(&c);
    enum bn_path other = bn_path_default() == BN_PATH_SCALAR ? BN_PATH_AVX2 : BN_PATH_SCALAR;
    if (!bn_path_supported(other))
        cr_skip_test("this CPU supports only the %s kernels: no other layout to reattach with",
                     bn_path_name(bn_path_default()));
    c.path = other;
    expect_discard(no_damage, "kernels; this daemon uses", &c);
}

/* A child process loads slowly and stops at half; the test kills it there. */
static int half_fd = -1;
static void signal_half(void *ctx, uint64_t done, uint64_t total)
{
    (void)ctx;
    if (half_fd >= 0 && done * 2 >= total) {
        (void)!write(half_fd, "h", 1);
        half_fd = -1;
        for (;;)
            pause(); /* wait for SIGKILL */
    }
}

Test(reattach, load_killed_half_way_is_incomplete, .init = setup, .fini = teardown, .timeout = 60)
{
    need_model();
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        half_fd = fds[1];
        struct registry_config c;
        config(&c);
        c.load.chunk_bytes = 4096;
        c.load.queue_depth = 1;
        struct registry *r;
        struct resident *m;
        struct bn_err err;
        if (registry_open(&r, &c, &err) != 0 ||
            registry_load(r, model, signal_half, NULL, &m, &err) != 0)
            _exit(2);
        _exit(3); /* finished without stopping: the parent reports it */
    }
    close(fds[1]);
    char b = 0;
    cr_assert_eq(read(fds[0], &b, 1), 1, "the child reached half of the load");
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    close(fds[0]);
    cr_assert_eq(tu_count_entries(shm), 1, "the half segment is there");

    struct registry_config c;
    config(&c);
    tu_log_buf[0] = '\0';
    struct registry *r = open_reg(&c);
    cr_assert(strstr(tu_log_buf, "discarding segment") && strstr(tu_log_buf, "(incomplete)") &&
                  strstr(tu_log_buf, "state loading"),
              "%s", tu_log_buf);
    cr_assert_eq(tu_count_entries(shm), 0);
    struct resident *m = load_ok(r, model);
    expect_model_bytes(m, model);
    registry_unload(r, m);
    registry_close(r);
}

Test(reattach, live_writer_is_left_alone, .init = setup, .fini = teardown, .timeout = 60)
{
    /* A segment another live process is loading is neither adopted nor removed. */
    need_model();
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        half_fd = fds[1];
        struct registry_config c;
        config(&c);
        c.load.chunk_bytes = 4096;
        c.load.queue_depth = 1;
        struct registry *r;
        struct resident *m;
        struct bn_err err;
        if (registry_open(&r, &c, &err) == 0)
            registry_load(r, model, signal_half, NULL, &m, &err);
        _exit(2);
    }
    close(fds[1]);
    char b;
    cr_assert_eq(read(fds[0], &b, 1), 1);
    struct registry_config c;
    config(&c);
    tu_log_buf[0] = '\0';
    struct registry *r = open_reg(&c);
    bool left_alone = strstr(tu_log_buf, "in use by another process") != NULL;
    int entries = tu_count_entries(shm);
    registry_close(r);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    close(fds[0]);
    cr_assert(left_alone, "%s", tu_log_buf);
    cr_assert_eq(entries, 1);
}

Test(limits, memory_limit_refuses_a_load, .init = setup, .fini = teardown)
{
    need_model();
    struct registry_config c;
    config(&c);
    c.mem_limit = 1u << 20;
    struct registry *r = open_reg(&c);
    load_fails(r, model, "mem_limit", "1.0 MiB limit");
    registry_close(r);

    /* One model fits, a second (different) one does not. */
    char other[TU_PATH], ref[TU_PATH];
    tu_ref_model(ref, sizeof ref, "tinyB-i2s.gguf");
    snprintf(other, sizeof other, "%s/tinyB.gguf", tmp);
    tu_copy_file(ref, other);
    config(&c);
    r = open_reg(&c);
    struct resident *m = load_ok(r, model);
    uint64_t one = registry_used_bytes(r);
    registry_unload(r, m);
    registry_close(r);
    c.mem_limit = one + (one / 2);
    r = open_reg(&c);
    m = load_ok(r, model);
    struct resident *m2;
    struct bn_err err = {{0}};
    cr_assert_eq(registry_load(r, other, NULL, NULL, &m2, &err), -1);
    cr_assert(strstr(err.msg, "already holds") && strstr(err.msg, other), "%s", err.msg);
    cr_assert_eq(registry_used_bytes(r), one);
    cr_assert_eq(tu_count_entries(shm), 1);
    registry_unload(r, m);
    registry_close(r);
}

/* Load tinyA into a registry whose segment folder is a full tmpfs (in a child). */
static int full_shm_scenario(const char *dir, char *msg, size_t cap)
{
    struct registry_config c;
    config(&c);
    c.shm_dir = dir;
    struct registry *r;
    struct resident *m;
    struct bn_err err = {{0}};
    if (registry_open(&r, &c, &err) != 0)
        return snprintf(msg, cap, "open: %s", err.msg), 1;
    if (registry_load(r, model, NULL, NULL, &m, &err) == 0)
        return snprintf(msg, cap, "the model fit in 1 MiB"), 1;
    if (!strstr(err.msg, "not enough shared memory") || !strstr(err.msg, "unload a model"))
        return snprintf(msg, cap, "unclear message: %s", err.msg), 1;
    if (registry_used_bytes(r) != 0 || tu_count_entries(dir) != 0)
        return snprintf(msg, cap, "something was left behind"), 1;
    registry_close(r);
    return 0;
}

Test(limits, shared_memory_full, .init = setup, .fini = teardown, .timeout = 30)
{
    need_model();
    char msg[1024];
    int rc = tu_with_private_tmpfs(shm, 1u << 20, full_shm_scenario, msg, sizeof msg);
    if (rc == TU_NO_TMPFS)
        cr_skip_test("cannot mount a private tmpfs (%s): no root and no user namespaces, so a "
                     "full /dev/shm cannot be simulated without touching the real one", msg);
    cr_assert_eq(rc, 0, "%s", msg);
}

Test(bad_input, missing_directory_fifo_empty, .init = setup, .fini = teardown, .timeout = 20)
{
    struct registry_config c;
    config(&c);
    struct registry *r = open_reg(&c);
    char p[TU_PATH];
    snprintf(p, sizeof p, "%s/nope.gguf", tmp);
    load_fails(r, p, "does not exist", p);
    load_fails(r, "", "no model path", NULL);
    load_fails(r, tmp, "is a directory", NULL);
    snprintf(p, sizeof p, "%s/fifo.gguf", tmp);
    cr_assert_eq(mkfifo(p, 0600), 0);
    load_fails(r, p, "FIFO", "not a GGUF file"); /* must not block waiting for a writer */
    snprintf(p, sizeof p, "%s/empty.gguf", tmp);
    tu_write_file(p, "", 0, 0644);
    load_fails(r, p, "is empty", NULL);
    snprintf(p, sizeof p, "%s/text.gguf", tmp);
    tu_write_file(p, "hello, this is not a model\n", 27, 0644);
    load_fails(r, p, "not a GGUF file", "68 65 6c 6c");
    load_fails(r, "/dev/null", "character device", NULL);
    registry_close(r);
}

Test(bad_input, truncated_gguf, .init = setup, .fini = teardown)
{
    need_model();
    struct stat sb;
    stat(model, &sb);
    struct registry_config c;
    config(&c);
    struct registry *r = open_reg(&c);
    cr_assert_eq(truncate(model, sb.st_size - 1000), 0);
    load_fails(r, model, "past the end of the file", "truncated");
    cr_assert_eq(truncate(model, 200), 0); /* inside the metadata */
    load_fails(r, model, model, NULL);
    registry_close(r);
}

Test(bad_input, unreadable_file, .init = setup, .fini = teardown, .timeout = 20)
{
    need_model();
    chmod(model, 0600);
    if (geteuid() != 0) {
        chmod(model, 0000);
        struct registry_config c;
        config(&c);
        struct registry *r = open_reg(&c);
        load_fails(r, model, "permission denied", model);
        registry_close(r);
        return;
    }
    /* Root reads anything: check as an unprivileged user in a child. */
    cr_assert_eq(chmod(tmp, 0711), 0);
    cr_assert_eq(chmod(shm, 0777), 0);
    pid_t pid = fork();
    if (pid == 0) {
        if (setgid(65534) != 0 || setuid(65534) != 0)
            _exit(10);
        struct registry_config c;
        config(&c);
        struct registry *r;
        struct resident *m;
        struct bn_err err = {{0}};
        if (registry_open(&r, &c, &err) != 0)
            _exit(11);
        if (registry_load(r, model, NULL, NULL, &m, &err) == 0)
            _exit(12);
        if (!strstr(err.msg, "permission denied") || !strstr(err.msg, model))
            _exit(13);
        _exit(tu_count_entries(shm) == 0 ? 0 : 14);
    }
    int status;
    waitpid(pid, &status, 0);
    cr_assert(WIFEXITED(status), "child died");
    cr_assert_eq(WEXITSTATUS(status), 0, "child check %d failed (10 setuid, 11 open, 12 loaded, "
                                         "13 message, 14 leftovers)", WEXITSTATUS(status));
}

static char grow_path[TU_PATH];
static bool grew;
static void grow_midway(void *ctx, uint64_t done, uint64_t total)
{
    (void)ctx;
    if (!grew && done * 2 >= total) {
        int fd = open(grow_path, O_WRONLY | O_APPEND);
        (void)!write(fd, "more", 4);
        close(fd);
        grew = true;
    }
}

Test(bad_input, file_changing_size_while_loading, .init = setup, .fini = teardown)
{
    need_model();
    snprintf(grow_path, sizeof grow_path, "%s", model);
    grew = false;
    struct registry_config c;
    config(&c);
    c.load.chunk_bytes = 4096;
    struct registry *r = open_reg(&c);
    struct resident *m = NULL;
    struct bn_err err = {{0}};
    cr_assert_eq(registry_load(r, model, grow_midway, NULL, &m, &err), -1);
    cr_assert(grew);
    cr_assert(strstr(err.msg, "changed while loading") && strstr(err.msg, model), "%s", err.msg);
    cr_assert_eq(tu_count_entries(shm), 0);
    cr_assert_eq(registry_used_bytes(r), 0);
    registry_close(r);
}

Test(bad_input, name_collision_with_a_foreign_object, .init = setup, .fini = teardown)
{
    need_model();
    struct registry_config c;
    config(&c);
    struct registry *r = open_reg(&c);
    struct resident *m = load_ok(r, model);
    char seg[TU_PATH];
    segment_file(m, seg, sizeof seg);
    registry_unload(r, m);

    /* Someone else's object under the exact name the model's segment takes. */
    tu_write_file(seg, "not a segment, do not clobber", 29, 0600);
    struct resident *x = NULL;
    struct bn_err err = {{0}};
    cr_assert_eq(registry_load(r, model, NULL, NULL, &x, &err), -1);
    cr_assert(strstr(err.msg, "collision") && strstr(err.msg, "not a bitnetd segment"), "%s", err.msg);
    size_t n;
    char *body = tu_read_file(seg, &n);
    cr_assert(n == 29 && memcmp(body, "not a segment", 13) == 0, "the foreign object is intact");
    free(body);
    cr_assert_eq(registry_used_bytes(r), 0);

    /* Same with an object of another mode: refused without reading it. */
    chmod(seg, 0644);
    cr_assert_eq(registry_load(r, model, NULL, NULL, &x, &err), -1);
    cr_assert(strstr(err.msg, "collision") && strstr(err.msg, "mode 0644"), "%s", err.msg);
    registry_close(r);

    /* At start the foreign object is reported and left alone. */
    chmod(seg, 0600);
    tu_log_buf[0] = '\0';
    r = open_reg(&c);
    cr_assert(strstr(tu_log_buf, "left alone"), "%s", tu_log_buf);
    struct stat sb;
    cr_assert_eq(stat(seg, &sb), 0);
    registry_close(r);
}

Test(registry, posix_shm_end_to_end, .init = setup, .fini = teardown)
{
    need_model();
    struct registry_config c;
    registry_config_default(&c);
    char inst[32];
    snprintf(inst, sizeof inst, "test%ld", (long)getpid());
    c.instance = inst;
    c.mlock = true;
    c.huge_pages = true;
    struct registry *r = open_reg(&c);
    struct resident *m = load_ok(r, model);
    struct resident_info info;
    resident_describe(m, &info);
    char path[TU_PATH];
    snprintf(path, sizeof path, "/dev/shm/%s", info.segment);
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0, "the segment is a POSIX shm object");
    registry_close(r);
    r = open_reg(&c);
    m = load_ok(r, model);
    resident_describe(m, &info);
    cr_assert_str_eq(info.method, "reattach");
    expect_model_bytes(m, model);
    registry_unload(r, m);
    cr_assert_neq(stat(path, &sb), 0);
    registry_close(r);
}

/* Models written by bitnet-mkmodel (every ternary format and embedding type) load
 * into segments equal to packing the file, reattach, and unload cleanly. */
Test(registry, mkmodel_models, .init = setup, .fini = teardown, .timeout = 120)
{
    const char *build = getenv("BITNET_BUILD_DIR");
    char tool[TU_PATH];
    snprintf(tool, sizeof tool, "%s/contrib/bitnet-mkmodel", build ? build : ".");
    if (!build || access(tool, X_OK) != 0)
        cr_skip_test("%s is not built (BITNET_BUILD_DIR=%s): run make first", tool,
                     build ? build : "unset");
    const char *variants[][2] = {{"i2_s", "f16"}, {"tq2_0", "q6_k"}, {"tq1_0", "q8_0"}};
    for (size_t v = 0; v < 3; v++) {
        char out[TU_PATH];
        snprintf(out, sizeof out, "%s/mk-%s-%s.gguf", tmp, variants[v][0], variants[v][1]);
        pid_t pid = fork();
        if (pid == 0) {
            int devnull = open("/dev/null", O_WRONLY);
            dup2(devnull, 1);
            dup2(devnull, 2);
            execl(tool, tool, "--preset", "small", "--weights", variants[v][0], "--embd",
                  variants[v][1], "--seed", "7", "--out", out, (char *)NULL);
            _exit(127);
        }
        int status;
        waitpid(pid, &status, 0);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "bitnet-mkmodel %s/%s failed",
                  variants[v][0], variants[v][1]);
        struct registry_config c;
        config(&c);
        c.load.chunk_bytes = 65536;
        struct registry *r = open_reg(&c);
        struct resident *m = load_ok(r, out);
        expect_model_bytes(m, out);
        registry_close(r);
        r = open_reg(&c);
        m = load_ok(r, out);
        struct resident_info info;
        resident_describe(m, &info);
        cr_assert_str_eq(info.method, "reattach");
        expect_model_bytes(m, out);
        registry_unload(r, m);
        cr_assert_eq(tu_count_entries(shm), 0);
        registry_close(r);
    }
}
