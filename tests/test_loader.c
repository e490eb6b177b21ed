/* tests/test_loader.c — the loader: io_uring (buffered and O_DIRECT), pread and mmap
 * produce the same bytes as packing straight from the file; repacking through
 * staging buffers; the pread fallback; progress; a file that shrinks mid-load;
 * option checks; the segment layout's guarantees. */
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <liburing.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

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
static void setup(void)
{
    tu_mkdtemp(tmp, sizeof tmp);
}
static void teardown(void)
{
    tu_rmtree(tmp);
}

/* A model opened for a test: file, plan, expected bytes of every tensor, and a
 * destination laid out like a segment's data area. */
struct fixture {
    char path[TU_PATH];
    int fd;
    uint64_t size;
    struct bn_mapped_file map;
    struct bn_gguf *g;
    struct bn_pack_plan plan;
    uint8_t **want;   /* plan.n expected tensors */
    uint8_t *area;    /* destination area (mmap) */
    size_t area_bytes;
    uint64_t *offsets;
    void **dst;
};

static void fixture_open(struct fixture *f, const char *path, enum bn_type prefer)
{
    memset(f, 0, sizeof *f);
    snprintf(f->path, sizeof f->path, "%s", path);
    struct bn_err err = {{0}};
    cr_assert_eq(bn_map_file(path, &f->map, &err), 0, "%s", err.msg);
    cr_assert_eq(bn_gguf_open(&f->g, f->map.base, f->map.size, path, 0, &err), 0, "%s", err.msg);
    cr_assert_eq(bn_pack_plan_make(&f->plan, f->g, bn_path_default(), prefer, &err), 0, "%s", err.msg);
    f->fd = open(path, O_RDONLY);
    cr_assert(f->fd >= 0);
    f->size = f->map.size;
    f->want = calloc(f->plan.n, sizeof *f->want);
    for (size_t i = 0; i < f->plan.n; i++) {
        const struct bn_pack_entry *e = &f->plan.entries[i];
        f->want[i] = malloc(e->dst_bytes);
        cr_assert_eq(bn_pack_tensor(&f->plan, e, (const uint8_t *)f->map.base + e->src_offset,
                                    f->want[i], &err),
                     0, "%s", err.msg);
    }
    /* Same geometry as a segment: the first tensor LOAD_DIO_SLACK after a page. */
    f->offsets = calloc(f->plan.n, sizeof *f->offsets);
    f->dst = calloc(f->plan.n, sizeof *f->dst);
    uint64_t end;
    cr_assert_eq(load_layout(&f->plan, 2 * LOAD_DIO_SLACK, f->offsets, &end), 0);
    f->area_bytes = (size_t)end;
    f->area = mmap(NULL, f->area_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(f->area, MAP_FAILED);
    for (size_t i = 0; i < f->plan.n; i++)
        f->dst[i] = f->area + f->offsets[i];
}

static void fixture_clear(struct fixture *f)
{
    memset(f->area, 0xA5, f->area_bytes);
}

static void fixture_close(struct fixture *f)
{
    for (size_t i = 0; i < f->plan.n; i++)
        free(f->want[i]);
    free(f->want);
    free(f->offsets);
    free(f->dst);
    munmap(f->area, f->area_bytes);
    bn_pack_plan_free(&f->plan);
    bn_gguf_close(f->g);
    bn_unmap_file(&f->map);
    close(f->fd);
}

static void expect_bytes(const struct fixture *f, const char *what)
{
    for (size_t i = 0; i < f->plan.n; i++)
        cr_assert(memcmp(f->dst[i], f->want[i], f->plan.entries[i].dst_bytes) == 0,
                  "%s: %s: tensor '%s' differs from packing the file directly", f->path, what,
                  f->plan.entries[i].name);
}

static struct load_job job_of(const struct fixture *f)
{
    struct load_job job = {
        .fd = f->fd,
        .path = f->path,
        .file_size = f->size,
        .plan = &f->plan,
        .dst = f->dst,
        .dst_laid_out = true,
    };
    return job;
}

/* Whether O_DIRECT should work on this file (the kernel reports an alignment). */
static bool dio_expected(const char *path)
{
    struct statx sx;
    return statx(AT_FDCWD, path, 0, STATX_DIOALIGN, &sx) == 0 && (sx.stx_mask & STATX_DIOALIGN) &&
           sx.stx_dio_mem_align && sx.stx_dio_offset_align && sx.stx_dio_offset_align <= 4096;
}

static void run_all_methods(const char *path, enum bn_type prefer)
{
    struct fixture f;
    fixture_open(&f, path, prefer);
    struct load_job job = job_of(&f);
    struct {
        enum load_method method;
        enum load_direct direct;
        unsigned qd;
        uint64_t chunk;
        uint64_t staging;
        unsigned pack_threads; /* ~0u: the default (online CPUs) */
    } runs[] = {
        {LOAD_IO_URING, LOAD_DIRECT_OFF, 8, 1u << 20, LOAD_STAGING_DEFAULT, ~0u},
        {LOAD_IO_URING, LOAD_DIRECT_ON, 8, 1u << 20, LOAD_STAGING_DEFAULT, ~0u},
        /* many small reads, one staged tensor at a time, three pack threads */
        {LOAD_IO_URING, LOAD_DIRECT_ON, 3, 4096, 4096, 3},
        {LOAD_IO_URING, LOAD_DIRECT_ON, 2, 8192, 4096, 0}, /* packed between reads */
        {LOAD_IO_URING, LOAD_DIRECT_OFF, 1, 12288, 4096, 0},
        {LOAD_PREAD, LOAD_DIRECT_OFF, 1, 8192, LOAD_STAGING_DEFAULT, ~0u},
        {LOAD_PREAD, LOAD_DIRECT_OFF, 1, 1u << 20, 4096, 0},
        {LOAD_MMAP, LOAD_DIRECT_OFF, 1, 1u << 20, LOAD_STAGING_DEFAULT, ~0u},
    };
    for (size_t k = 0; k < sizeof runs / sizeof runs[0]; k++) {
        struct load_opts o;
        load_opts_default(&o);
        o.method = runs[k].method;
        o.direct = runs[k].direct;
        o.queue_depth = runs[k].qd;
        o.chunk_bytes = runs[k].chunk;
        o.staging_bytes = runs[k].staging;
        if (runs[k].pack_threads != ~0u)
            o.pack_threads = runs[k].pack_threads;
        fixture_clear(&f);
        struct load_report rep;
        struct bn_err err = {{0}};
        cr_assert_eq(load_run(&job, &o, &rep, &err), 0, "run %zu: %s", k, err.msg);
        enum load_method want = runs[k].method == LOAD_IO_URING ? uring_or_fallback() : runs[k].method;
        cr_assert_eq(rep.method, want, "run %zu ran %s", k, load_method_name(rep.method));
        if (runs[k].direct == LOAD_DIRECT_ON && want == LOAD_IO_URING && dio_expected(path))
            cr_assert(rep.direct_io, "run %zu: O_DIRECT should have been used on %s", k, path);
        if (runs[k].direct == LOAD_DIRECT_OFF)
            cr_assert_not(rep.direct_io);
        cr_assert_geq(rep.bytes_read, 1);
        char what[64];
        snprintf(what, sizeof what, "run %zu (%s, qd %u, chunk %llu, pack threads %u)", k,
                 load_method_name(rep.method), runs[k].qd, (unsigned long long)runs[k].chunk,
                 o.pack_threads);
        expect_bytes(&f, what);
    }
    fixture_close(&f);
}

Test(loader, methods_give_identical_bytes, .init = setup, .fini = teardown, .timeout = 60)
{
    const char *models[] = {"tinyA-i2s.gguf", "tinyB-i2s-embq6k.gguf", "tinyB-tq2_0.gguf",
                            "tinyB-tq1_0.gguf"};
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        char path[TU_PATH];
        tu_ref_model(path, sizeof path, models[i]);
        run_all_methods(path, BN_TYPE_COUNT);
    }
}

Test(loader, repack_through_staging, .init = setup, .fini = teardown, .timeout = 60)
{
    char path[TU_PATH];
    tu_ref_model(path, sizeof path, "tinyB-i2s.gguf");
    /* Force a table-lookup layout so that ternary matrices are repacked. */
    enum bn_type layouts[] = {BN_TYPE_TL2, BN_TYPE_TL1};
    for (size_t k = 0; k < 2; k++) {
        struct bn_mapped_file map;
        struct bn_gguf *g;
        struct bn_pack_plan plan;
        struct bn_err err = {{0}};
        cr_assert_eq(bn_map_file(path, &map, &err), 0, "%s", err.msg);
        cr_assert_eq(bn_gguf_open(&g, map.base, map.size, path, 0, &err), 0, "%s", err.msg);
        int rc = bn_pack_plan_make(&plan, g, bn_path_default(), layouts[k], &err);
        size_t repacked = 0;
        if (rc == 0) {
            for (size_t i = 0; i < plan.n; i++)
                repacked += plan.entries[i].dst_type != plan.entries[i].src_type;
            bn_pack_plan_free(&plan);
        }
        bn_gguf_close(g);
        bn_unmap_file(&map);
        if (rc == 0 && repacked > 0) {
            run_all_methods(path, layouts[k]);
            return;
        }
    }
    cr_skip_test("the %s kernels repack no tensor of tinyB-i2s (no TL1/TL2 layout yet): staging "
                 "is exercised once the engine offers one",
                 bn_path_name(bn_path_default()));
}

Test(loader, pread_fallback_when_io_uring_disabled, .init = setup, .fini = teardown)
{
    char path[TU_PATH];
    tu_ref_model(path, sizeof path, "tinyA-i2s.gguf");
    struct fixture f;
    fixture_open(&f, path, BN_TYPE_COUNT);
    struct load_job job = job_of(&f);
    struct load_opts o;
    load_opts_default(&o);
    tu_log_capture();
    setenv("BITNET_NO_IO_URING", "1", 1);
    fixture_clear(&f);
    struct load_report rep;
    struct bn_err err = {{0}};
    cr_assert_eq(load_run(&job, &o, &rep, &err), 0, "%s", err.msg);
    unsetenv("BITNET_NO_IO_URING");
    cr_assert_eq(rep.method, LOAD_PREAD);
    cr_assert(strstr(tu_log_buf, "BITNET_NO_IO_URING=1") && strstr(tu_log_buf, "pread"),
              "the fallback is announced: %s", tu_log_buf);
    expect_bytes(&f, "pread fallback");
    fixture_close(&f);
}

Test(loader, pread_fallback_when_the_kernel_refuses_io_uring, .init = setup, .fini = teardown)
{
    char path[TU_PATH];
    tu_ref_model(path, sizeof path, "tinyA-i2s.gguf");
    struct fixture f;
    fixture_open(&f, path, BN_TYPE_COUNT);
    /* What a container's seccomp profile does: io_uring_setup fails with EPERM.  The
     * filter binds this test's process only (Criterion runs each test in its own). */
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof code / sizeof code[0], .filter = code};
    unsetenv("BITNET_NO_IO_URING"); /* the kernel's refusal is what is tested */
    cr_assert_eq(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
        cr_skip_test("cannot install a seccomp filter here (%s)", strerror(errno));
    struct load_job job = job_of(&f);
    struct load_opts o;
    load_opts_default(&o);
    tu_log_capture();
    fixture_clear(&f);
    struct load_report rep;
    struct bn_err err = {{0}};
    cr_assert_eq(load_run(&job, &o, &rep, &err), 0, "%s", err.msg);
    cr_assert_eq(rep.method, LOAD_PREAD);
    cr_assert(strstr(tu_log_buf, "io_uring is unavailable") &&
                  strstr(tu_log_buf, "Operation not permitted") && strstr(tu_log_buf, "pread"),
              "the fallback is announced: %s", tu_log_buf);
    expect_bytes(&f, "pread after io_uring_setup refused");
    fixture_close(&f);
}

static int prepare_calls;
static int fail_third_prepare(void *ctx, void *dst, uint64_t bytes, struct bn_err *err)
{
    (void)ctx;
    (void)dst;
    (void)bytes;
    if (__atomic_add_fetch(&prepare_calls, 1, __ATOMIC_SEQ_CST) == 3)
        return bn_errf(err, "prepare refused (test)");
    return 0;
}

Test(loader, failing_prepare_dst_fails_the_load, .init = setup, .fini = teardown)
{
    /* The registry prefaults before each user-space store; its failure (a full
     * tmpfs) must end the load with that error on every path that stores. */
    char path[TU_PATH];
    tu_ref_model(path, sizeof path, "tinyB-i2s.gguf");
    struct fixture f;
    fixture_open(&f, path, BN_TYPE_COUNT);
    struct {
        enum load_method method;
        enum load_direct direct;
        unsigned pack_threads;
    } runs[] = {
        {LOAD_MMAP, LOAD_DIRECT_OFF, 0},
        {LOAD_IO_URING, LOAD_DIRECT_ON, 2}, /* bounce/repack buffers, packed on threads */
        {LOAD_IO_URING, LOAD_DIRECT_ON, 0}, /* ... packed between reads */
        {LOAD_PREAD, LOAD_DIRECT_OFF, 2},
    };
    int checked = 0;
    for (size_t k = 0; k < sizeof runs / sizeof runs[0]; k++) {
        struct load_job job = job_of(&f);
        job.prepare_dst = fail_third_prepare;
        struct load_opts o;
        load_opts_default(&o);
        o.method = runs[k].method;
        o.direct = runs[k].direct;
        o.pack_threads = runs[k].pack_threads;
        o.chunk_bytes = 65536;
        prepare_calls = 0;
        struct load_report rep;
        struct bn_err err = {{0}};
        int rc = load_run(&job, &o, &rep, &err);
        if (prepare_calls < 3) {
            /* Nothing was stored from user space often enough (no repack, no bounce). */
            cr_assert_eq(rc, 0, "run %zu: %s", k, err.msg);
            continue;
        }
        cr_assert_eq(rc, -1, "run %zu: the refusal must fail the load", k);
        cr_assert(strstr(err.msg, "prepare refused"), "run %zu: %s", k, err.msg);
        checked++;
    }
    cr_assert_geq(checked, 1, "at least the mmap path stores from user space");
    fixture_close(&f);
}

static uint64_t last_done, last_total, n_calls;
static bool went_back;
static void track_progress(void *ctx, uint64_t done, uint64_t total)
{
    (void)ctx;
    if (done < last_done || done > total)
        went_back = true;
    last_done = done;
    last_total = total;
    n_calls++;
}

Test(loader, progress_is_monotonic_and_complete, .init = setup, .fini = teardown)
{
    char path[TU_PATH];
    tu_ref_model(path, sizeof path, "tinyA-i2s.gguf");
    struct fixture f;
    fixture_open(&f, path, BN_TYPE_COUNT);
    uint64_t total = 0;
    for (size_t i = 0; i < f.plan.n; i++)
        total += f.plan.entries[i].src_bytes;
    enum load_method methods[] = {LOAD_IO_URING, LOAD_PREAD, LOAD_MMAP};
    for (size_t k = 0; k < 3; k++) {
        struct load_job job = job_of(&f);
        job.progress = track_progress;
        struct load_opts o;
        load_opts_default(&o);
        o.method = methods[k];
        o.chunk_bytes = 16384;
        last_done = last_total = n_calls = 0;
        went_back = false;
        struct load_report rep;
        struct bn_err err = {{0}};
        cr_assert_eq(load_run(&job, &o, &rep, &err), 0, "%s", err.msg);
        cr_assert_not(went_back, "%s: progress went backwards or past the total",
                      load_method_name(methods[k]));
        cr_assert_eq(last_total, total);
        cr_assert_eq(last_done, total, "%s: progress ends at the total", load_method_name(methods[k]));
        cr_assert_gt(n_calls, f.size / 16384 / 2, "%s: one call per chunk", load_method_name(methods[k]));
    }
    fixture_close(&f);
}

static char shrink_path[TU_PATH];
static uint64_t shrink_to;
static void shrink_midway(void *ctx, uint64_t done, uint64_t total)
{
    (void)ctx;
    if (shrink_to && done * 3 >= total) {
        cr_assert_eq(truncate(shrink_path, (off_t)shrink_to), 0);
        shrink_to = 0;
    }
}

Test(loader, file_shrinking_mid_load_is_an_error, .init = setup, .fini = teardown)
{
    char ref[TU_PATH];
    tu_ref_model(ref, sizeof ref, "tinyA-i2s.gguf");
    snprintf(shrink_path, sizeof shrink_path, "%s/model.gguf", tmp);
    enum load_method methods[] = {LOAD_IO_URING, LOAD_PREAD};
    for (size_t k = 0; k < 2; k++) {
        tu_copy_file(ref, shrink_path);
        struct fixture f;
        fixture_open(&f, shrink_path, BN_TYPE_COUNT);
        bn_unmap_file(&f.map); /* the truncation must not SIGBUS the fixture */
        f.map.base = NULL;
        struct load_job job = job_of(&f);
        job.progress = shrink_midway;
        shrink_to = f.size / 2;
        struct load_opts o;
        load_opts_default(&o);
        o.method = methods[k];
        o.queue_depth = 2;
        o.chunk_bytes = 4096;
        o.direct = LOAD_DIRECT_OFF;
        struct load_report rep;
        struct bn_err err = {{0}};
        cr_assert_eq(load_run(&job, &o, &rep, &err), -1, "%s: a shrinking file must fail",
                     load_method_name(methods[k]));
        cr_assert(strstr(err.msg, "shrank") && strstr(err.msg, shrink_path), "%s", err.msg);
        fixture_close(&f);
    }
}

Test(loader, options_are_checked, .init = setup, .fini = teardown)
{
    struct load_opts o;
    struct bn_err err = {{0}};
    load_opts_default(&o);
    cr_assert_eq(load_opts_check(&o, &err), 0);
    o.queue_depth = 0;
    cr_assert_eq(load_opts_check(&o, &err), -1);
    cr_assert(strstr(err.msg, "queue depth 0"), "%s", err.msg);
    o.queue_depth = LOAD_QUEUE_DEPTH_MAX + 1;
    cr_assert_eq(load_opts_check(&o, &err), -1);
    load_opts_default(&o);
    o.chunk_bytes = 1000;
    cr_assert_eq(load_opts_check(&o, &err), -1);
    cr_assert(strstr(err.msg, "chunk size 1000"), "%s", err.msg);
    o.chunk_bytes = (uint64_t)LOAD_CHUNK_MAX * 2;
    cr_assert_eq(load_opts_check(&o, &err), -1);
    enum load_method m;
    cr_assert(load_method_parse("io_uring", &m) && m == LOAD_IO_URING);
    cr_assert(load_method_parse("pread", &m) && m == LOAD_PREAD);
    cr_assert_not(load_method_parse("read", &m));
}

Test(loader, layout_guarantees, .init = setup, .fini = teardown)
{
    char path[TU_PATH];
    tu_ref_model(path, sizeof path, "tinyB-i2s.gguf");
    struct fixture f;
    fixture_open(&f, path, BN_TYPE_COUNT);
    uint64_t prev_end = 2 * LOAD_DIO_SLACK - LOAD_DIO_SLACK;
    size_t congruent = 0;
    for (size_t i = 0; i < f.plan.n; i++) {
        const struct bn_pack_entry *e = &f.plan.entries[i];
        uint64_t off = f.offsets[i];
        cr_assert_eq(off % BN_SEG_TENSOR_ALIGN, 0, "tensor '%s' is cache-line aligned", e->name);
        cr_assert_geq(off, prev_end + LOAD_DIO_SLACK, "tensor '%s' keeps its slack", e->name);
        if (e->dst_type == e->src_type && e->src_offset % BN_SEG_TENSOR_ALIGN == 0) {
            cr_assert_eq(off % 4096, e->src_offset % 4096, "tensor '%s' is page-congruent", e->name);
            congruent++;
        }
        prev_end = off + e->dst_bytes;
    }
    cr_assert_gt(congruent, 0);
    fixture_close(&f);
}
