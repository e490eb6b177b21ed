/* daemon/registry.c — the registry of resident models: reattach at start, load,
 * share, unload, account.
 *
 * Locking: one mutex guards the list, reference counts and the byte count; loads run
 * without it (a resident in state LOADING reserves its bytes and its name, and a
 * second load of the same model waits on the condition variable).  Across
 * processes, flock on each segment tells a live writer or user from a dead one.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "registry_internal.h"

#define MIB (1024.0 * 1024.0)
#define SHMEM_THP_SETTING "/sys/kernel/mm/transparent_hugepage/shmem_enabled"

enum resident_state { RES_LOADING, RES_READY };

struct resident {
    struct resident *next;
    char name[BN_SEG_OBJ_NAME_MAX];
    char path[BN_SEG_PATH_MAX];
    uint64_t bytes;            /* segment size (reserved while loading) */
    unsigned refs;
    enum resident_state state;
    struct bn_seg seg;
    struct seg_view view;
    char method[BN_SEG_METHOD_MAX];
    double seconds;
    bool direct_io;
    /* Loading, under the registry mutex: the free-space check of another load must
     * count what this one was promised but has not taken yet (else two loads that
     * each fit alone both pass the check and both fail half-way). */
    bool reserving;            /* passed its free-space check, fill not finished */
    int reserve_fd;            /* its object once created (-1: not yet): allocated
                                * bytes are st_blocks of it */
};

struct registry {
    struct registry_config cfg;
    char instance[BN_SEG_INSTANCE_MAX + 1];
    char shm_dir[BN_SEG_PATH_MAX];
    struct bn_seg_store store;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct resident *list;
    uint64_t used; /* bytes of all residents */
};

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void registry_config_default(struct registry_config *c)
{
    memset(c, 0, sizeof *c);
    c->instance = "default";
    c->shm_dir = NULL;
    c->mem_limit = 0;
    c->path = BN_PATH_COUNT;
    c->prefer_ternary = BN_TYPE_COUNT;
    load_opts_default(&c->load);
}

static struct resident *find_locked(struct registry *r, const char *name)
{
    for (struct resident *m = r->list; m; m = m->next)
        if (strcmp(m->name, name) == 0)
            return m;
    return NULL;
}

static void unlink_locked(struct registry *r, struct resident *m)
{
    for (struct resident **pp = &r->list; *pp; pp = &(*pp)->next)
        if (*pp == m) {
            *pp = m->next;
            r->used -= m->bytes;
            return;
        }
}

static void resident_free(struct resident *m)
{
    seg_view_close(&m->view);
    bn_seg_close(&m->seg);
    free(m);
}

/* Optional residency settings on a mapped segment, each refusal logged. */
static void apply_mlock(struct registry *r, struct resident *m)
{
    if (!r->cfg.mlock)
        return;
    /* MLOCK_ONFAULT: lock pages as they are touched, so reattaching does not fault
     * in the whole model. */
    if (mlock2(m->seg.base, (size_t)m->seg.size, MLOCK_ONFAULT) != 0)
        bn_log(BN_LOG_WARN,
               "mlock of segment %s (%.1f MiB) refused: %s; raise RLIMIT_MEMLOCK (ulimit -l) or "
               "grant CAP_IPC_LOCK, else its pages may be swapped out",
               m->name, (double)m->seg.size / MIB, strerror(errno));
}

/* Segments get huge pages through bn_seg_collapse whatever shmem_enabled says,
 * except "deny", which forbids them. */
static void log_thp_setting(void)
{
    FILE *f = fopen(SHMEM_THP_SETTING, "r");
    char line[256] = "";
    if (!f)
        return;
    if (!fgets(line, sizeof line, f))
        line[0] = '\0';
    fclose(f);
    if (strstr(line, "[deny]"))
        bn_log(BN_LOG_INFO, "huge pages for segments: %s is [deny], so model memory gets 4 KiB "
                            "pages (decoding is slower)",
               SHMEM_THP_SETTING);
}

/* A segment found at start: adopt it when it is complete and current, discard it
 * when it is ours but stale or broken, leave it alone otherwise. */
static void scan_one(void *ctx, const char *name)
{
    struct registry *r = ctx;
    double t0 = now_seconds();
    char msg[BN_ERR_MSG_MAX];
    char where[BN_SEG_PATH_MAX + BN_SEG_OBJ_NAME_MAX];
    bn_seg_store_describe(&r->store, name, where, sizeof where);
    struct resident *m = calloc(1, sizeof *m);
    if (!m) {
        bn_log(BN_LOG_ERROR, "out of memory reattaching %s", where);
        return;
    }
    if (bn_seg_open(&r->store, name, &m->seg, msg, sizeof msg) != 0) {
        bn_log(BN_LOG_WARN, "%s", msg);
        free(m);
        return;
    }
    if (bn_seg_lock(&m->seg, true) != 0) {
        bn_log(BN_LOG_WARN, "segment %s is in use by another process (another bitnetd with instance "
                            "'%s'?): left alone",
               where, r->instance);
        bn_seg_close(&m->seg);
        free(m);
        return;
    }
    enum bn_seg_status st = bn_seg_check(&m->seg, msg, sizeof msg);
    if (st == BN_SEG_FOREIGN) {
        bn_log(BN_LOG_WARN, "%s: left alone", msg);
        bn_seg_close(&m->seg);
        free(m);
        return;
    }
    struct bn_err e = {{0}};
    if (st != BN_SEG_OK)
        snprintf(e.msg, sizeof e.msg, "%s", msg);
    else if (seg_view_open(&m->view, &m->seg, r->cfg.path, r->cfg.prefer_ternary, &e) == 0 &&
             seg_check_source(&m->seg, &r->store, &e) == 0)
        e.msg[0] = '\0';
    if (e.msg[0]) {
        bn_log(BN_LOG_WARN, "discarding segment %s (%s): %s", where, bn_seg_status_name(st), e.msg);
        if (bn_seg_unlink(&r->store, name, msg, sizeof msg) != 0)
            bn_log(BN_LOG_WARN, "%s", msg);
        seg_view_close(&m->view);
        bn_seg_close(&m->seg);
        free(m);
        return;
    }
    (void)bn_seg_lock(&m->seg, false); /* from writer to user */
    const struct bn_seg_header *h = bn_seg_hdr(&m->seg);
    snprintf(m->name, sizeof m->name, "%s", name);
    snprintf(m->path, sizeof m->path, "%s", h->src_path);
    snprintf(m->method, sizeof m->method, "reattach");
    m->bytes = m->seg.size;
    m->state = RES_READY;
    m->refs = 0;
    apply_mlock(r, m);
    m->seconds = now_seconds() - t0;
    m->next = r->list;
    r->list = m;
    r->used += m->bytes;
    bn_log(BN_LOG_INFO, "reattached segment %s: %s, %.1f MiB, in %.1f ms", where, m->path,
           (double)m->bytes / MIB, m->seconds * 1e3);
}

int registry_open(struct registry **out, const struct registry_config *cfg, struct bn_err *err)
{
    *out = NULL;
    struct registry *r = calloc(1, sizeof *r);
    if (!r)
        return bn_errf(err, "out of memory for the model registry");
    r->cfg = *cfg;
    snprintf(r->instance, sizeof r->instance, "%s", cfg->instance ? cfg->instance : "");
    r->cfg.instance = r->instance;
    if (cfg->shm_dir) {
        snprintf(r->shm_dir, sizeof r->shm_dir, "%s", cfg->shm_dir);
        r->cfg.shm_dir = r->shm_dir;
    }
    if (r->cfg.path == BN_PATH_COUNT)
        r->cfg.path = bn_path_default();
    if (!bn_path_supported(r->cfg.path)) {
        free(r);
        return bn_errf(err, "registry: the %s kernels are not supported on this CPU",
                       bn_path_name(cfg->path));
    }
    if (load_opts_check(&r->cfg.load, err)) {
        free(r);
        return -1;
    }
    char msg[BN_ERR_MSG_MAX];
    if (bn_seg_store_open(&r->store, r->cfg.shm_dir, r->instance, msg, sizeof msg) != 0) {
        free(r);
        return bn_errf(err, "registry: %s", msg);
    }
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    if (r->cfg.huge_pages)
        log_thp_setting();
    if (bn_seg_store_scan(&r->store, scan_one, r, msg, sizeof msg) < 0)
        bn_log(BN_LOG_WARN, "registry: %s: starting without reattaching", msg);
    *out = r;
    return 0;
}

void registry_close(struct registry *r)
{
    if (!r)
        return;
    struct resident *m = r->list;
    while (m) {
        struct resident *next = m->next;
        resident_free(m);
        m = next;
    }
    bn_seg_store_close(&r->store);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

/* An object named like our segment exists that the registry does not hold (made by
 * another process, or foreign).  Adopt it if it is a complete current segment,
 * remove it if it is ours but stale; refuse anything else.  Returns 1 when adopted
 * (m->seg and m->view set), 0 when removed (create again), -1 on error. */
static int adopt_existing(struct registry *r, struct resident *m, struct bn_err *err)
{
    char msg[BN_ERR_MSG_MAX];
    char where[BN_SEG_PATH_MAX + BN_SEG_OBJ_NAME_MAX];
    bn_seg_store_describe(&r->store, m->name, where, sizeof where);
    if (bn_seg_open(&r->store, m->name, &m->seg, msg, sizeof msg) != 0) {
        if (errno == ENOENT)
            return 0; /* gone meanwhile */
        return bn_errf(err, "segment name collision: %s; remove it or choose another instance name",
                       msg);
    }
    if (bn_seg_lock(&m->seg, true) != 0) {
        bn_seg_close(&m->seg);
        return bn_errf(err, "segment %s is being written or used by another process (another "
                            "bitnetd with instance '%s'?); not touching it",
                       where, r->instance);
    }
    enum bn_seg_status st = bn_seg_check(&m->seg, msg, sizeof msg);
    if (st == BN_SEG_FOREIGN) {
        bn_seg_close(&m->seg);
        return bn_errf(err, "segment name collision: %s exists and is not a bitnetd segment (%s); "
                            "remove it or choose another instance name",
                       where, msg);
    }
    struct bn_err e = {{0}};
    if (st == BN_SEG_OK &&
        seg_view_open(&m->view, &m->seg, r->cfg.path, r->cfg.prefer_ternary, &e) == 0 &&
        seg_check_source(&m->seg, &r->store, &e) == 0) {
        (void)bn_seg_lock(&m->seg, false);
        return 1;
    }
    bn_log(BN_LOG_WARN, "discarding segment %s (%s): %s", where, bn_seg_status_name(st),
           st == BN_SEG_OK ? e.msg : msg);
    int rc = bn_seg_unlink(&r->store, m->name, msg, sizeof msg);
    seg_view_close(&m->view);
    bn_seg_close(&m->seg);
    if (rc != 0)
        return bn_errf(err, "%s", msg);
    return 0;
}

/* Reservation of a segment's data area on its own thread: posix_fallocate and
 * populate cost about 1 s of CPU per GB with 4 KiB pages, which would otherwise come
 * before the first read.  Kernel reads into pages not yet reserved allocate them (or
 * fail with EFAULT on a full tmpfs); user-space stores go through prefault_dst. */
struct reservation {
    const struct bn_seg *seg;
    uint64_t off, len;
    unsigned flags;
    int rc;
    double seconds;
    char msg[BN_ERR_MSG_MAX];
    pthread_t thread;
    bool running;
};

static void *reserve_main(void *arg)
{
    struct reservation *rv = arg;
    double t0 = now_seconds();
    rv->rc = bn_seg_reserve(rv->seg, rv->off, rv->len, rv->flags, rv->msg, sizeof rv->msg);
    rv->seconds = now_seconds() - t0;
    return NULL;
}

/* The loader's prepare_dst: fault the pages in, so a full tmpfs is ENOSPC, not SIGBUS. */
static int prefault_dst(void *ctx, void *dst, uint64_t bytes, struct bn_err *err)
{
    const struct bn_seg *seg = ctx;
    char msg[BN_ERR_MSG_MAX];
    if (bn_seg_prefault(seg, dst, bytes, msg, sizeof msg) != 0)
        return bn_errf(err, "%s", msg);
    return 0;
}

/* Bytes promised to other loads in progress and not yet allocated to them. */
static uint64_t promised_locked(struct registry *r, const struct resident *self)
{
    uint64_t sum = 0;
    for (struct resident *m = r->list; m; m = m->next) {
        if (m == self || !m->reserving)
            continue;
        uint64_t have = 0;
        struct stat sb;
        if (m->reserve_fd >= 0 && fstat(m->reserve_fd, &sb) == 0)
            have = (uint64_t)sb.st_blocks * 512u;
        if (have < m->bytes)
            sum += m->bytes - have;
    }
    return sum;
}

static void set_reserve_fd(struct registry *r, struct resident *m, int fd)
{
    pthread_mutex_lock(&r->mu);
    m->reserve_fd = fd;
    pthread_mutex_unlock(&r->mu);
}

/* Create, fill and publish the segment of m from mf. */
static int fill_segment(struct registry *r, struct resident *m, struct model_file *mf,
                        const struct seg_layout *lay, load_progress_fn progress, void *ctx,
                        struct bn_err *err)
{
    char msg[BN_ERR_MSG_MAX];
    char where[BN_SEG_PATH_MAX + BN_SEG_OBJ_NAME_MAX];
    bn_seg_store_describe(&r->store, m->name, where, sizeof where);
    unsigned flags = BN_SEG_POPULATE | (r->cfg.huge_pages ? BN_SEG_HUGEPAGE : 0);
    double t0 = now_seconds();

    /* Fail fast, before creating anything, when the space is plainly not there.  The
     * check and the promise it makes are one step under the mutex, and what other
     * loads were promised first counts as taken (measured before the free space, so
     * that an allocation in between only makes the check stricter). */
    pthread_mutex_lock(&r->mu);
    uint64_t promised = promised_locked(r, m);
    uint64_t free_bytes;
    if (bn_seg_store_free_bytes(&r->store, &free_bytes, msg, sizeof msg) == 0 &&
        (free_bytes < promised || free_bytes - promised < lay->total)) {
        pthread_mutex_unlock(&r->mu);
        uint64_t avail = free_bytes > promised ? free_bytes - promised : 0;
        char also[96] = "";
        if (promised)
            snprintf(also, sizeof also, " (%.1f MiB more is promised to loads in progress)",
                     (double)promised / MIB);
        return bn_errf(err, "not enough shared memory for segment %s: %llu bytes (%.1f MiB) needed, "
                            "%llu (%.1f MiB) free%s; free space there or unload a model",
                       where, (unsigned long long)lay->total, (double)lay->total / MIB,
                       (unsigned long long)avail, (double)avail / MIB, also);
    }
    m->reserving = true;
    m->reserve_fd = -1;
    pthread_mutex_unlock(&r->mu);

    for (int attempt = 0;; attempt++) {
        if (bn_seg_create(&r->store, m->name, lay->total, flags | BN_SEG_NO_RESERVE, &m->seg, msg,
                          sizeof msg) == 0) {
            set_reserve_fd(r, m, m->seg.fd);
            break;
        }
        if (errno != EEXIST || attempt > 0)
            return bn_errf(err, "%s", msg);
        int a = adopt_existing(r, m, err);
        if (a < 0)
            return -1;
        if (a == 1) {
            snprintf(m->method, sizeof m->method, "reattach");
            return 0;
        }
    }

    /* The front (header, metadata copy, directory) now; the data area on a thread,
     * unless this kernel cannot prefault (MADV_POPULATE_WRITE, Linux 5.14), in which
     * case everything is reserved before the first store. */
    struct reservation rv = {.seg = &m->seg, .off = lay->data_offset,
                             .len = lay->total - lay->data_offset, .flags = flags};
    bool background = bn_seg_prefault(&m->seg, m->seg.base, 1, msg, sizeof msg) == 0 ||
                      errno != EINVAL;
    if (bn_seg_reserve(&m->seg, 0, background ? lay->data_offset : lay->total, flags, msg,
                       sizeof msg) != 0) {
        bn_errf(err, "%s", msg);
        goto fail;
    }
    /* Huge pages for the data area before anything is read into it (no copying). */
    double t_huge = now_seconds();
    if (r->cfg.huge_pages && bn_seg_collapse(&m->seg, lay->data_offset,
                                             lay->total - lay->data_offset) != 0 &&
        errno != ENOSPC) /* ENOSPC: the reservation reports it */
        bn_log(BN_LOG_INFO, "%s: no huge pages for the model memory (%s): 4 KiB pages, decoding "
                            "reads the weights about 10%% slower",
               m->name, strerror(errno));
    t_huge = now_seconds() - t_huge;
    if (background)
        rv.running = pthread_create(&rv.thread, NULL, reserve_main, &rv) == 0;
    if (background && !rv.running) {
        reserve_main(&rv);
        if (rv.rc != 0) {
            bn_errf(err, "%s", rv.msg);
            goto fail;
        }
    }
    double t_create = now_seconds();
    seg_write_front(&m->seg, mf, lay, r->cfg.path, r->cfg.prefer_ternary);

    void **dst = malloc(mf->plan.n * sizeof *dst);
    int rc = -1;
    struct load_report rep;
    memset(&rep, 0, sizeof rep);
    if (!dst) {
        bn_errf(err, "out of memory for %zu tensor pointers", mf->plan.n);
    } else {
        for (size_t i = 0; i < mf->plan.n; i++)
            dst[i] = m->seg.base + lay->offsets[i];
        struct load_job job = {
            .fd = mf->fd,
            .path = mf->path,
            .file_size = (uint64_t)mf->st.st_size,
            .plan = &mf->plan,
            .dst = dst,
            .dst_laid_out = true,
            .progress = progress,
            .progress_ctx = ctx,
            .prepare_dst = background ? prefault_dst : NULL,
            .prepare_ctx = &m->seg,
        };
        rc = load_run(&job, &r->cfg.load, &rep, err);
        free(dst);
    }
    /* The reservation thread uses the mapping and the fd: always wait for it. */
    if (rv.running) {
        pthread_join(rv.thread, NULL);
        rv.running = false;
    }
    if (rv.rc != 0) {
        bn_errf(err, "%s", rv.msg); /* the cause of any EFAULT the reads saw */
        goto fail;
    }
    if (rc != 0)
        goto fail;

    /* The identity we hashed into the name must still hold after the last read. */
    struct stat after;
    if (fstat(mf->fd, &after) != 0 || after.st_size != mf->st.st_size ||
        stat_mtime_ns(&after) != stat_mtime_ns(&mf->st)) {
        bn_errf(err, "model file %s changed while loading (size %lld -> %lld bytes): not using it; "
                     "load it again once it is complete",
                mf->path, (long long)mf->st.st_size, (long long)after.st_size);
        goto fail;
    }
    struct bn_seg_header *h = bn_seg_hdr(&m->seg);
    h->load_ns = (uint64_t)(rep.seconds * 1e9);
    snprintf(h->load_method, sizeof h->load_method, "%s", load_method_name(rep.method));
    bn_seg_publish(&m->seg);
    (void)bn_seg_lock(&m->seg, false);
    if (seg_view_open(&m->view, &m->seg, r->cfg.path, r->cfg.prefer_ternary, err) != 0)
        goto fail;
    snprintf(m->method, sizeof m->method, "%s", load_method_name(rep.method));
    m->direct_io = rep.direct_io;
    bn_log(BN_LOG_DEBUG, "%s: segment created in %.3f s (huge pages %.3f s); data area reserved "
                         "in %.3f s%s; tensors read in %.3f s (%.0f%% cached before, %llu bytes "
                         "read); published in %.3f s",
           m->name, t_create - t0, t_huge, rv.seconds, background ? " alongside the reads" : "",
           rep.seconds, rep.cached_fraction * 100, (unsigned long long)rep.bytes_read,
           now_seconds() - t_create - rep.seconds);
    return 0;

fail:
    if (rv.running)
        pthread_join(rv.thread, NULL);
    set_reserve_fd(r, m, -1); /* before the fd is closed and its number reused */
    if (bn_seg_unlink(&r->store, m->name, msg, sizeof msg) != 0)
        bn_log(BN_LOG_WARN, "%s", msg);
    bn_seg_close(&m->seg);
    return -1;
}

int registry_load(struct registry *r, const char *path, load_progress_fn progress,
                  void *progress_ctx, struct resident **out, struct bn_err *err)
{
    *out = NULL;
    double t0 = now_seconds();
    struct model_file mf;
    if (model_file_open(&mf, path, r->cfg.path, r->cfg.prefer_ternary, err) != 0)
        return -1;
    char name[BN_SEG_OBJ_NAME_MAX];
    bn_seg_store_name(&r->store, model_file_key(&mf, r->cfg.path, r->cfg.prefer_ternary), name);

    struct seg_layout lay;
    if (seg_layout_make(&lay, &mf, err) != 0) {
        model_file_close(&mf);
        return -1;
    }

    pthread_mutex_lock(&r->mu);
    struct resident *m;
    while ((m = find_locked(r, name)) != NULL && m->state == RES_LOADING)
        pthread_cond_wait(&r->cv, &r->mu);
    if (m) {
        m->refs++;
        pthread_mutex_unlock(&r->mu);
        seg_layout_free(&lay);
        model_file_close(&mf);
        bn_log(BN_LOG_INFO, "model %s: using resident segment %s (%u references)", m->path, m->name,
               m->refs);
        *out = m;
        return 0;
    }
    if (r->cfg.mem_limit && r->used + lay.total > r->cfg.mem_limit) {
        uint64_t used = r->used;
        pthread_mutex_unlock(&r->mu);
        bn_errf(err, "loading %s needs %.1f MiB of shared memory, but the registry already holds "
                     "%.1f MiB of its %.1f MiB limit (mem_limit): unload a model or raise the limit",
                mf.path, (double)lay.total / MIB, (double)used / MIB,
                (double)r->cfg.mem_limit / MIB);
        seg_layout_free(&lay);
        model_file_close(&mf);
        return -1;
    }
    m = calloc(1, sizeof *m);
    if (!m) {
        pthread_mutex_unlock(&r->mu);
        seg_layout_free(&lay);
        model_file_close(&mf);
        return bn_errf(err, "out of memory");
    }
    m->seg.fd = -1;
    m->reserve_fd = -1;
    snprintf(m->name, sizeof m->name, "%s", name);
    snprintf(m->path, sizeof m->path, "%s", mf.path);
    m->bytes = lay.total;
    m->state = RES_LOADING;
    m->next = r->list;
    r->list = m;
    r->used += m->bytes;
    pthread_mutex_unlock(&r->mu);

    int rc = fill_segment(r, m, &mf, &lay, progress, progress_ctx, err);
    seg_layout_free(&lay);
    model_file_close(&mf);

    pthread_mutex_lock(&r->mu);
    m->reserving = false;
    m->reserve_fd = -1;
    if (rc != 0) {
        unlink_locked(r, m);
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
        free(m);
        return -1;
    }
    r->used += m->seg.size - m->bytes; /* an adopted object may differ in size */
    m->bytes = m->seg.size;
    m->refs = 1;
    m->seconds = now_seconds() - t0;
    m->state = RES_READY;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    apply_mlock(r, m);
    char where[BN_SEG_PATH_MAX + BN_SEG_OBJ_NAME_MAX];
    bn_seg_store_describe(&r->store, m->name, where, sizeof where);
    bn_log(BN_LOG_INFO, "loaded %s into %s: %.1f MiB in %.3f s (%.2f GB/s, %s%s)", m->path, where,
           (double)m->bytes / MIB, m->seconds, (double)m->bytes / 1e9 / (m->seconds > 0 ? m->seconds : 1e-9),
           m->method, m->direct_io ? ", O_DIRECT" : "");
    *out = m;
    return 0;
}

void registry_unload(struct registry *r, struct resident *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&r->mu);
    if (m->refs == 0) {
        /* Not a handle from registry_load (or unloaded once too often): keep it. */
        pthread_mutex_unlock(&r->mu);
        bn_log(BN_LOG_ERROR, "unload of %s (segment %s) without a matching load: ignored", m->path,
               m->name);
        return;
    }
    m->refs--;
    bool last = m->refs == 0;
    if (last)
        unlink_locked(r, m);
    pthread_mutex_unlock(&r->mu);
    if (!last)
        return;
    char msg[BN_ERR_MSG_MAX];
    if (bn_seg_unlink(&r->store, m->name, msg, sizeof msg) != 0)
        bn_log(BN_LOG_WARN, "%s", msg);
    bn_log(BN_LOG_INFO, "unloaded %s (segment %s, %.1f MiB freed)", m->path, m->name,
           (double)m->bytes / MIB);
    resident_free(m);
}

int registry_discard_unused(struct registry *r)
{
    struct resident *drop = NULL;
    pthread_mutex_lock(&r->mu);
    for (struct resident **pp = &r->list; *pp;) {
        struct resident *m = *pp;
        if (m->state == RES_READY && m->refs == 0) {
            *pp = m->next;
            r->used -= m->bytes;
            m->next = drop;
            drop = m;
        } else {
            pp = &m->next;
        }
    }
    pthread_mutex_unlock(&r->mu);
    int n = 0;
    char msg[BN_ERR_MSG_MAX];
    while (drop) {
        struct resident *m = drop;
        drop = m->next;
        if (bn_seg_unlink(&r->store, m->name, msg, sizeof msg) != 0)
            bn_log(BN_LOG_WARN, "%s", msg);
        bn_log(BN_LOG_INFO, "discarded unused segment %s (%s, %.1f MiB)", m->name, m->path,
               (double)m->bytes / MIB);
        resident_free(m);
        n++;
    }
    return n;
}

uint64_t registry_used_bytes(struct registry *r)
{
    pthread_mutex_lock(&r->mu);
    uint64_t used = r->used;
    pthread_mutex_unlock(&r->mu);
    return used;
}

void resident_describe(const struct resident *m, struct resident_info *out)
{
    out->path = m->path;
    out->segment = m->name;
    out->bytes = m->bytes;
    out->refs = m->refs;
    out->method = m->method;
    out->load_seconds = m->seconds;
    out->direct_io = m->direct_io;
}

size_t registry_list(struct registry *r, struct resident_info *out, size_t cap)
{
    size_t n = 0;
    pthread_mutex_lock(&r->mu);
    for (struct resident *m = r->list; m; m = m->next) {
        if (m->state != RES_READY)
            continue;
        if (n < cap)
            resident_describe(m, &out[n]);
        n++;
    }
    pthread_mutex_unlock(&r->mu);
    return n;
}

const struct bn_model_source *resident_source(const struct resident *m)
{
    return &m->view.source;
}

const struct bn_seg *resident_segment(const struct resident *m)
{
    return &m->seg;
}
