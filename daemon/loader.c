/* daemon/loader.c — read a GGUF file's tensors into their final place (a segment),
 * repacking those whose in-memory layout differs from the file's.
 *
 * io_uring keeps queue_depth reads of chunk_bytes in flight, in file order.  A tensor
 * kept as stored is read straight to its place; a tensor to repack is read into a
 * staging buffer and packed by bn_pack_tensor when its last read completes, while the
 * other reads are still in flight.  Cold files are read with O_DIRECT (whole aligned
 * blocks: the layout leaves LOAD_DIO_SLACK bytes around each tensor so the extra
 * bytes land in padding); warm files through the page cache, which is then faster.
 */
#include "registry.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define PAGE 4096u          /* bytes; O_DIRECT buffers and congruence are in pages */
#define DIO_ALIGN_MAX 4096u /* larger filesystem alignment: no O_DIRECT */

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t align_down(uint64_t x, uint64_t a)
{
    return x - x % a;
}

static uint64_t align_up(uint64_t x, uint64_t a)
{
    return x + (a - x % a) % a;
}

void load_opts_default(struct load_opts *o)
{
    memset(o, 0, sizeof *o);
    o->method = LOAD_IO_URING;
    o->queue_depth = LOAD_QUEUE_DEPTH_DEFAULT;
    o->chunk_bytes = LOAD_CHUNK_DEFAULT;
    o->direct = LOAD_DIRECT_AUTO;
    o->staging_bytes = LOAD_STAGING_DEFAULT;
    o->async_workers = true;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    o->pack_threads = cpus < 1 ? 1 : cpus > LOAD_PACK_THREADS_MAX ? LOAD_PACK_THREADS_MAX : (unsigned)cpus;
}

int load_opts_check(const struct load_opts *o, struct bn_err *err)
{
    if (o->method > LOAD_MMAP)
        return bn_errf(err, "load method %d is not io_uring, pread or mmap", (int)o->method);
    if (o->queue_depth < 1 || o->queue_depth > LOAD_QUEUE_DEPTH_MAX)
        return bn_errf(err, "load queue depth %u is outside 1..%u", o->queue_depth,
                       LOAD_QUEUE_DEPTH_MAX);
    if (o->chunk_bytes < LOAD_CHUNK_MIN || o->chunk_bytes > LOAD_CHUNK_MAX ||
        o->chunk_bytes % LOAD_CHUNK_MIN != 0)
        return bn_errf(err, "load chunk size %llu bytes must be a multiple of %u between %u and %u",
                       (unsigned long long)o->chunk_bytes, LOAD_CHUNK_MIN, LOAD_CHUNK_MIN,
                       LOAD_CHUNK_MAX);
    if (o->pack_threads > LOAD_PACK_THREADS_MAX)
        return bn_errf(err, "load pack threads %u is more than %u", o->pack_threads,
                       LOAD_PACK_THREADS_MAX);
    if (o->direct > LOAD_DIRECT_OFF)
        return bn_errf(err, "load direct-I/O mode %d is not auto, on or off", (int)o->direct);
    return 0;
}

const char *load_method_name(enum load_method m)
{
    switch (m) {
    case LOAD_IO_URING: return "io_uring";
    case LOAD_PREAD: return "pread";
    case LOAD_MMAP: return "mmap";
    }
    return "unknown";
}

bool load_method_parse(const char *name, enum load_method *out)
{
    for (int m = LOAD_IO_URING; m <= LOAD_MMAP; m++)
        if (strcmp(name, load_method_name((enum load_method)m)) == 0) {
            *out = (enum load_method)m;
            return true;
        }
    return false;
}

int load_layout(const struct bn_pack_plan *plan, uint64_t data_offset, uint64_t *offsets,
                uint64_t *end)
{
    uint64_t cur = data_offset;
    for (size_t i = 0; i < plan->n; i++) {
        const struct bn_pack_entry *e = &plan->entries[i];
        uint64_t off = align_up(cur, BN_SEG_TENSOR_ALIGN);
        /* Kept as stored and cache-line aligned in the file: same offset modulo a page
         * as in the file, so an O_DIRECT read of whole blocks lands in place. */
        if (e->dst_type == e->src_type && e->src_offset % BN_SEG_TENSOR_ALIGN == 0)
            off += (e->src_offset - off % PAGE + PAGE) % PAGE;
        offsets[i] = off;
        if (__builtin_add_overflow(off, e->dst_bytes, &cur) ||
            __builtin_add_overflow(cur, (uint64_t)LOAD_DIO_SLACK, &cur))
            return -1;
    }
    *end = cur;
    return 0;
}

/* ---- shared state of one load ---------------------------------------------- */

struct item {
    const struct bn_pack_entry *e;
    uint8_t *dst;
    uint64_t src_start, src_end; /* needed file bytes */
    uint64_t rd_start, rd_end;   /* file bytes read (block-rounded under O_DIRECT) */
    uint8_t *mem;                /* memory for file offset rd_start */
    uint8_t *stage;              /* staging buffer (owned) or NULL */
    uint64_t stage_bytes;
    uint64_t next;               /* next file offset to submit */
    int inflight;
    bool direct;
};

struct packer;

struct load {
    const struct load_job *job;
    const struct load_opts *opts;
    struct bn_err *err;
    struct item *items;          /* in file order */
    size_t n;
    uint64_t total, done;        /* progress: needed bytes */
    uint64_t bytes_read;
    int dfd;                     /* O_DIRECT descriptor or -1 */
    uint32_t dio_mem_align, dio_off_align;
    uint64_t staging_in_use;     /* guarded by packer->mu when there are pack threads */
    struct packer *packer;       /* pack threads, or NULL: pack on the loading thread */
    uint64_t direct_reads;       /* O_DIRECT reads that completed */
    bool dio_refused;            /* an O_DIRECT read failed with EINVAL: buffered from now on */
    bool failed;
};

static int cmp_item_offset(const void *a, const void *b)
{
    const struct item *x = a, *y = b;
    return x->src_start < y->src_start ? -1 : x->src_start > y->src_start;
}

static void progress(struct load *L, uint64_t bytes)
{
    L->done += bytes;
    if (L->job->progress)
        L->job->progress(L->job->progress_ctx, L->done, L->total);
}

static int items_init(struct load *L)
{
    const struct load_job *job = L->job;
    L->n = job->plan->n;
    L->items = calloc(L->n ? L->n : 1, sizeof *L->items);
    if (!L->items)
        return bn_errf(L->err, "%s: out of memory for %zu tensors", job->path, L->n);
    for (size_t i = 0; i < L->n; i++) {
        const struct bn_pack_entry *e = &job->plan->entries[i];
        struct item *it = &L->items[i];
        it->e = e;
        it->dst = job->dst[i];
        it->src_start = e->src_offset;
        if (__builtin_add_overflow(e->src_offset, e->src_bytes, &it->src_end) ||
            it->src_end > job->file_size)
            return bn_errf(L->err,
                           "%s: tensor '%s' data [%llu, +%llu) lies past the end of the file "
                           "(%llu bytes): the file is truncated",
                           job->path, e->name, (unsigned long long)e->src_offset,
                           (unsigned long long)e->src_bytes, (unsigned long long)job->file_size);
        if (e->dst_type == e->src_type && e->dst_bytes != e->src_bytes)
            return bn_errf(L->err, "%s: tensor '%s' is kept as stored but its sizes differ (%llu vs %llu bytes)",
                           job->path, e->name, (unsigned long long)e->src_bytes,
                           (unsigned long long)e->dst_bytes);
        L->total += e->src_bytes;
    }
    qsort(L->items, L->n, sizeof *L->items, cmp_item_offset);
    return 0;
}

static void items_free(struct load *L)
{
    for (size_t i = 0; i < L->n; i++)
        free(L->items[i].stage);
    free(L->items);
    L->items = NULL;
}

/* Produce a staged tensor's final bytes (copy or repack); 0 or -1 with err. */
static int pack_now(const struct load *L, const struct item *it, struct bn_err *err)
{
    const struct load_job *job = L->job;
    if (job->prepare_dst && job->prepare_dst(job->prepare_ctx, it->dst, it->e->dst_bytes, err))
        return -1;
    const uint8_t *src = it->stage + (it->src_start - it->rd_start);
    if (it->e->dst_type == it->e->src_type) {
        memcpy(it->dst, src, it->e->src_bytes);
        return 0;
    }
    return bn_pack_tensor(L->job->plan, it->e, src, it->dst, err);
}

/* ---- pack threads ----------------------------------------------------------------
 * Repacking costs CPU; done on the loading thread it would stop new reads from being
 * submitted, so staged tensors go to a queue that pack threads drain while the
 * reads go on.  Staging memory is freed by whoever packs. */

struct packer {
    struct load *L;
    pthread_mutex_t mu;
    pthread_cond_t work;   /* queue not empty, or stop */
    pthread_cond_t done;   /* a pack finished */
    struct item **queue;   /* ring of L->n entries */
    size_t head, count;
    unsigned busy;         /* queued + being packed */
    bool stop;             /* no more items will come */
    bool abort;            /* the load failed: free, do not pack */
    bool failed;
    struct bn_err err;     /* first pack error */
    pthread_t threads[LOAD_PACK_THREADS_MAX];
    unsigned n_threads;
};

static void *pack_thread(void *arg)
{
    struct packer *P = arg;
    for (;;) {
        pthread_mutex_lock(&P->mu);
        while (P->count == 0 && !P->stop)
            pthread_cond_wait(&P->work, &P->mu);
        if (P->count == 0) {
            pthread_mutex_unlock(&P->mu);
            return NULL;
        }
        struct item *it = P->queue[P->head];
        P->head = (P->head + 1) % P->L->n;
        P->count--;
        bool skip = P->abort || P->failed;
        pthread_mutex_unlock(&P->mu);

        struct bn_err e = {{0}};
        int rc = skip ? 0 : pack_now(P->L, it, &e);
        free(it->stage);
        it->stage = NULL;

        pthread_mutex_lock(&P->mu);
        P->L->staging_in_use -= it->stage_bytes;
        P->busy--;
        if (rc != 0 && !P->failed) {
            P->failed = true;
            P->err = e;
        }
        pthread_cond_broadcast(&P->done);
        pthread_mutex_unlock(&P->mu);
    }
}

/* Start pack threads when the load will stage tensors; on failure packing stays on
 * the loading thread. */
static void packer_start(struct load *L)
{
    unsigned n = L->opts->pack_threads;
    bool staged = L->dfd >= 0;
    for (size_t i = 0; i < L->n && !staged; i++)
        staged = L->items[i].e->dst_type != L->items[i].e->src_type;
    if (n == 0 || !staged)
        return;
    struct packer *P = calloc(1, sizeof *P);
    if (!P || !(P->queue = calloc(L->n, sizeof *P->queue))) {
        free(P);
        return;
    }
    P->L = L;
    pthread_mutex_init(&P->mu, NULL);
    pthread_cond_init(&P->work, NULL);
    pthread_cond_init(&P->done, NULL);
    for (unsigned i = 0; i < n && i < LOAD_PACK_THREADS_MAX; i++) {
        if (pthread_create(&P->threads[i], NULL, pack_thread, P) != 0)
            break;
        P->n_threads++;
    }
    if (P->n_threads == 0) {
        pthread_cond_destroy(&P->done);
        pthread_cond_destroy(&P->work);
        pthread_mutex_destroy(&P->mu);
        free(P->queue);
        free(P);
        return;
    }
    L->packer = P;
}

/* Wait for every queued pack, stop the threads; -1 (err filled) if a pack failed. */
static int packer_finish(struct load *L, bool abort)
{
    struct packer *P = L->packer;
    if (!P)
        return 0;
    pthread_mutex_lock(&P->mu);
    P->stop = true;
    P->abort = P->abort || abort;
    pthread_cond_broadcast(&P->work);
    pthread_mutex_unlock(&P->mu);
    for (unsigned i = 0; i < P->n_threads; i++)
        pthread_join(P->threads[i], NULL);
    int rc = 0;
    if (P->failed && !abort) {
        *L->err = P->err;
        rc = -1;
    }
    pthread_cond_destroy(&P->done);
    pthread_cond_destroy(&P->work);
    pthread_mutex_destroy(&P->mu);
    free(P->queue);
    free(P);
    L->packer = NULL;
    return rc;
}

/* A pack thread failed (its error is reported by packer_finish). */
static bool packer_failed(struct load *L)
{
    struct packer *P = L->packer;
    if (!P)
        return false;
    pthread_mutex_lock(&P->mu);
    bool f = P->failed;
    pthread_mutex_unlock(&P->mu);
    return f;
}

/* Block until some pack finishes; false when none is pending. */
static bool packer_wait_one(struct load *L)
{
    struct packer *P = L->packer;
    if (!P)
        return false;
    pthread_mutex_lock(&P->mu);
    bool pending = P->busy > 0;
    if (pending)
        pthread_cond_wait(&P->done, &P->mu);
    pthread_mutex_unlock(&P->mu);
    return pending;
}

static void staging_add(struct load *L, uint64_t bytes)
{
    if (L->packer)
        pthread_mutex_lock(&L->packer->mu);
    L->staging_in_use += bytes;
    if (L->packer)
        pthread_mutex_unlock(&L->packer->mu);
}

/* Every read of an item completed: hand its staging buffer to a pack thread, or
 * pack it here. */
static int item_finish(struct load *L, struct item *it)
{
    if (!it->stage)
        return 0;
    struct packer *P = L->packer;
    if (P) {
        pthread_mutex_lock(&P->mu);
        P->queue[(P->head + P->count) % L->n] = it;
        P->count++;
        P->busy++;
        pthread_cond_signal(&P->work);
        pthread_mutex_unlock(&P->mu);
        return 0;
    }
    int rc = pack_now(L, it, L->err);
    free(it->stage);
    it->stage = NULL;
    L->staging_in_use -= it->stage_bytes;
    return rc;
}

/* Fraction of the tensor bytes already in the page cache (mincore on a mapping that
 * is never touched), or -1 when it cannot be measured. */
static double cached_fraction(const struct load *L)
{
    if (L->n == 0 || L->job->file_size == 0)
        return -1;
    uint64_t lo = align_down(L->items[0].src_start, PAGE);
    uint64_t hi = 0;
    for (size_t i = 0; i < L->n; i++)
        if (L->items[i].src_end > hi)
            hi = L->items[i].src_end;
    if (hi <= lo)
        return -1;
    void *map = mmap(NULL, (size_t)L->job->file_size, PROT_READ, MAP_SHARED, L->job->fd, 0);
    if (map == MAP_FAILED)
        return -1;
    size_t pages = (size_t)((align_up(hi, PAGE) - lo) / PAGE);
    unsigned char *vec = malloc(pages);
    double frac = -1;
    if (vec && mincore((uint8_t *)map + lo, (size_t)(hi - lo), vec) == 0) {
        size_t in = 0;
        for (size_t p = 0; p < pages; p++)
            in += vec[p] & 1;
        frac = (double)in / (double)pages;
    }
    free(vec);
    munmap(map, (size_t)L->job->file_size);
    return frac;
}

/* Open an O_DIRECT descriptor of the same file and learn its alignment needs.
 * Leaves L->dfd = -1 when the filesystem does not allow it. */
static void open_direct(struct load *L)
{
    L->dfd = -1;
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", L->job->fd);
    int dfd = open(proc, O_RDONLY | O_DIRECT | O_CLOEXEC);
    if (dfd < 0 && errno == ENOENT) /* no /proc: the path, checked to be the same file below */
        dfd = open(L->job->path, O_RDONLY | O_DIRECT | O_CLOEXEC | O_NONBLOCK);
    if (dfd < 0) {
        bn_log(BN_LOG_DEBUG, "%s: O_DIRECT not available (%s): reading through the page cache",
               L->job->path, strerror(errno));
        return;
    }
    struct stat a, b;
    if (fstat(L->job->fd, &a) != 0 || fstat(dfd, &b) != 0 || a.st_dev != b.st_dev ||
        a.st_ino != b.st_ino) {
        close(dfd);
        return;
    }
    uint32_t mem = PAGE, off = PAGE; /* when the kernel cannot say: one page is safe */
    struct statx sx;
    if (statx(dfd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 && (sx.stx_mask & STATX_DIOALIGN)) {
        if (sx.stx_dio_mem_align == 0 || sx.stx_dio_offset_align == 0) {
            bn_log(BN_LOG_DEBUG, "%s: the filesystem does not support O_DIRECT", L->job->path);
            close(dfd);
            return;
        }
        mem = sx.stx_dio_mem_align;
        off = sx.stx_dio_offset_align;
    }
    if (mem > DIO_ALIGN_MAX || off > DIO_ALIGN_MAX || off > LOAD_DIO_SLACK ||
        (mem & (mem - 1)) || (off & (off - 1))) {
        bn_log(BN_LOG_DEBUG, "%s: O_DIRECT alignment %u/%u bytes is too coarse: buffered reads",
               L->job->path, mem, off);
        close(dfd);
        return;
    }
    L->dfd = dfd;
    L->dio_mem_align = mem;
    L->dio_off_align = off;
}

/* Where an item's reads land: file range and whether a staging buffer is needed. */
static bool item_place(const struct load *L, struct item *it)
{
    bool repack = it->e->dst_type != it->e->src_type;
    it->direct = L->dfd >= 0 && !L->dio_refused;
    if (it->direct) {
        it->rd_start = align_down(it->src_start, L->dio_off_align);
        it->rd_end = align_up(it->src_end, L->dio_off_align);
    } else {
        it->rd_start = it->src_start;
        it->rd_end = it->src_end;
    }
    if (repack || !it->direct)
        return repack;
    /* Straight into place only when the extra head/tail bytes of whole blocks fall in
     * the layout's slack and the address is aligned as O_DIRECT wants; otherwise a
     * page-aligned staging buffer and one memcpy. */
    uint64_t head = it->src_start - it->rd_start, tail = it->rd_end - it->src_end;
    uintptr_t at = (uintptr_t)(it->dst - head);
    return !(L->job->dst_laid_out && head <= LOAD_DIO_SLACK && tail <= LOAD_DIO_SLACK &&
             at % L->dio_mem_align == 0);
}

/* Start an item: place it and allocate its staging buffer if it needs one. */
static int item_start(struct load *L, struct item *it)
{
    if (item_place(L, it)) {
        uint64_t bytes = align_up(it->rd_end - it->rd_start, PAGE);
        it->stage = aligned_alloc(PAGE, (size_t)bytes);
        if (!it->stage)
            return bn_errf(L->err, "%s: out of memory for a %llu-byte staging buffer (tensor '%s')",
                           L->job->path, (unsigned long long)bytes, it->e->name);
        it->stage_bytes = bytes;
        staging_add(L, bytes);
        it->mem = it->stage;
    } else {
        it->mem = it->dst - (it->src_start - it->rd_start);
    }
    it->next = it->rd_start;
    return 0;
}

/* Staging memory allows starting item `it` now (a lone item always may). */
static bool staging_allows(struct load *L, const struct item *it)
{
    struct item probe = *it;
    if (!item_place(L, &probe))
        return true;
    uint64_t need = align_up(probe.rd_end - probe.rd_start, PAGE);
    if (L->packer)
        pthread_mutex_lock(&L->packer->mu);
    bool ok = L->staging_in_use == 0 || L->staging_in_use + need <= L->opts->staging_bytes;
    if (L->packer)
        pthread_mutex_unlock(&L->packer->mu);
    return ok;
}

static int read_error(struct load *L, uint64_t off, uint64_t len, int e)
{
    return bn_errf(L->err, "%s: read of %llu bytes at offset %llu failed: %s", L->job->path,
                   (unsigned long long)len, (unsigned long long)off, strerror(e));
}

static int eof_error(struct load *L, uint64_t off)
{
    return bn_errf(L->err,
                   "%s: unexpected end of file at offset %llu (the file had %llu bytes when "
                   "loading started): it shrank while loading",
                   L->job->path, (unsigned long long)off, (unsigned long long)L->job->file_size);
}

/* Needed bytes (inside [src_start, src_end)) of the file range [off, off+len). */
static uint64_t needed_in(const struct item *it, uint64_t off, uint64_t len)
{
    uint64_t a = off > it->src_start ? off : it->src_start;
    uint64_t b = off + len < it->src_end ? off + len : it->src_end;
    return b > a ? b - a : 0;
}

/* ---- pread ------------------------------------------------------------------- */

static int run_pread(struct load *L)
{
    for (size_t i = 0; i < L->n; i++) {
        struct item *it = &L->items[i];
        while (!staging_allows(L, it) && packer_wait_one(L))
            ;
        if (packer_failed(L))
            return -1;
        if (item_start(L, it))
            return -1;
        uint8_t *mem = it->mem;
        for (uint64_t off = it->rd_start; off < it->rd_end;) {
            uint64_t len = it->rd_end - off;
            if (len > L->opts->chunk_bytes)
                len = L->opts->chunk_bytes;
            ssize_t got = pread(L->job->fd, mem + (off - it->rd_start), (size_t)len, (off_t)off);
            if (got < 0) {
                if (errno == EINTR)
                    continue;
                return read_error(L, off, len, errno);
            }
            if (got == 0)
                return eof_error(L, off);
            L->bytes_read += (uint64_t)got;
            progress(L, (uint64_t)got);
            off += (uint64_t)got;
        }
        if (item_finish(L, it))
            return -1;
    }
    return 0;
}

/* ---- mmap + copy --------------------------------------------------------------- */

static int run_mmap(struct load *L)
{
    size_t size = (size_t)L->job->file_size;
    uint8_t *map = mmap(NULL, size, PROT_READ, MAP_SHARED, L->job->fd, 0);
    if (map == MAP_FAILED)
        return bn_errf(L->err, "%s: cannot map %zu bytes: %s", L->job->path, size, strerror(errno));
    (void)madvise(map, size, MADV_SEQUENTIAL);
    int rc = 0;
    const struct load_job *job = L->job;
    for (size_t i = 0; i < L->n && rc == 0; i++) {
        struct item *it = &L->items[i];
        const uint8_t *src = map + it->src_start;
        if (job->prepare_dst &&
            (rc = job->prepare_dst(job->prepare_ctx, it->dst, it->e->dst_bytes, L->err)) != 0)
            break;
        if (it->e->dst_type == it->e->src_type) {
            for (uint64_t o = 0; o < it->e->src_bytes; o += L->opts->chunk_bytes) {
                uint64_t len = it->e->src_bytes - o;
                if (len > L->opts->chunk_bytes)
                    len = L->opts->chunk_bytes;
                memcpy(it->dst + o, src + o, (size_t)len);
                progress(L, len);
            }
        } else {
            rc = bn_pack_tensor(L->job->plan, it->e, src, it->dst, L->err);
            progress(L, it->e->src_bytes);
        }
        L->bytes_read += it->e->src_bytes;
    }
    munmap(map, size);
    return rc;
}

/* ---- io_uring ------------------------------------------------------------------ */

struct rd {
    struct item *it;
    uint64_t off;  /* file offset */
    uint8_t *mem;
    uint32_t len;
    uint64_t need; /* needed bytes this read delivers */
    bool direct;
    bool busy;
};

struct uring_load {
    struct load *L;
    struct io_uring ring;
    struct rd *rds;
    unsigned n_rd;
    unsigned inflight;  /* reads prepared and not completed */
    unsigned queued;    /* of those, not yet accepted by the kernel */
    size_t next_item;   /* first item not started */
    size_t first_open;  /* first item that may still have reads to submit */
};

static void rd_prep(struct uring_load *U, struct rd *r)
{
    struct load *L = U->L;
    /* The ring has one entry per read slot and only prepared reads use entries, so
     * io_uring_get_sqe cannot come back empty. */
    struct io_uring_sqe *sqe = io_uring_get_sqe(&U->ring);
    if (L->dio_refused)
        r->direct = false;
    io_uring_prep_read(sqe, r->direct ? L->dfd : L->job->fd, r->mem, r->len, r->off);
    /* Page-cache reads would otherwise run inline in io_uring_enter, one copy at a
     * time on this thread; O_DIRECT reads are asynchronous by themselves. */
    if (L->opts->async_workers && !r->direct)
        io_uring_sqe_set_flags(sqe, IOSQE_ASYNC);
    io_uring_sqe_set_data(sqe, r);
    r->busy = true;
    r->it->inflight++;
    U->inflight++;
    U->queued++;
}

/* Prepare reads until queue_depth are in flight or nothing more may start. */
static int uring_fill(struct uring_load *U)
{
    struct load *L = U->L;
    while (U->inflight < U->n_rd) {
        /* Oldest started item with reads left (items start in file order). */
        struct item *it = NULL;
        while (U->first_open < U->next_item) {
            struct item *c = &L->items[U->first_open];
            if (c->next < c->rd_end) {
                it = c;
                break;
            }
            U->first_open++;
        }
        if (!it) {
            if (U->next_item == L->n || !staging_allows(L, &L->items[U->next_item]))
                break;
            struct item *c = &L->items[U->next_item++];
            if (item_start(L, c))
                return -1;
            if (c->next == c->rd_end && item_finish(L, c)) /* nothing to read */
                return -1;
            continue;
        }
        struct rd *r = U->rds;
        while (r->busy)
            r++; /* inflight < n_rd: a free slot exists */
        uint64_t len = it->rd_end - it->next;
        if (len > L->opts->chunk_bytes)
            len = L->opts->chunk_bytes;
        r->it = it;
        r->off = it->next;
        r->mem = it->mem + (it->next - it->rd_start);
        r->len = (uint32_t)len;
        r->need = needed_in(it, r->off, len);
        r->direct = it->direct;
        it->next += len;
        rd_prep(U, r);
    }
    return 0;
}

/* Handle one completion; may queue a retry of the same read. */
static int uring_complete(struct uring_load *U, struct rd *r, int res)
{
    struct load *L = U->L;
    struct item *it = r->it;
    r->busy = false;
    it->inflight--;
    U->inflight--;
    if (L->failed)
        return 0;
    if (res < 0) {
        if (res == -EAGAIN || res == -EINTR) {
            rd_prep(U, r);
            return 0;
        }
        if (r->direct && (res == -EINVAL || res == -EOPNOTSUPP)) {
            if (!L->dio_refused)
                bn_log(BN_LOG_INFO, "%s: O_DIRECT read refused (%s): reading through the page cache",
                       L->job->path, strerror(-res));
            L->dio_refused = true;
            rd_prep(U, r);
            return 0;
        }
        return read_error(L, r->off, r->len, -res);
    }
    uint64_t got = (uint64_t)res;
    L->bytes_read += got;
    uint64_t need_end = r->off + r->len < it->src_end ? r->off + r->len : it->src_end;
    if (got < r->len && r->off + got < need_end) {
        if (got == 0)
            return eof_error(L, r->off);
        /* Short read before the needed end: read the rest through the page cache (the
         * remainder may no longer be block-aligned). */
        r->off += got;
        r->mem += got;
        r->len -= (uint32_t)got;
        r->direct = false;
        rd_prep(U, r);
        return 0;
    }
    if (r->direct)
        L->direct_reads++;
    progress(L, r->need);
    if (it->inflight == 0 && it->next == it->rd_end)
        return item_finish(L, it);
    return 0;
}

static void pause_briefly(void)
{
    struct timespec ts = {0, 1000000}; /* 1 ms: the kernel is short of resources */
    nanosleep(&ts, NULL);
}

static int run_uring(struct load *L, bool *unavailable)
{
    struct uring_load U;
    memset(&U, 0, sizeof U);
    U.L = L;
    U.n_rd = L->opts->queue_depth;
    *unavailable = false;
    int rc = io_uring_queue_init(U.n_rd, &U.ring, 0);
    if (rc < 0) {
        *unavailable = true;
        bn_log(BN_LOG_WARN, "io_uring is unavailable (io_uring_setup: %s): loading %s with pread",
               strerror(-rc), L->job->path);
        return 0;
    }
    U.rds = calloc(U.n_rd, sizeof *U.rds);
    if (!U.rds) {
        io_uring_queue_exit(&U.ring);
        return bn_errf(L->err, "%s: out of memory for %u reads", L->job->path, U.n_rd);
    }
    for (;;) {
        if (!L->failed && (packer_failed(L) || uring_fill(&U) != 0))
            L->failed = true;
        if (L->failed) {
            /* The kernel writes into our buffers until its reads end: wait for the
             * accepted ones; the never-submitted ones die with the ring. */
            if (U.inflight - U.queued == 0)
                break;
            struct io_uring_cqe *cqe;
            rc = io_uring_wait_cqe(&U.ring, &cqe);
            if (rc < 0 && rc != -EINTR && rc != -EAGAIN)
                pause_briefly();
        } else {
            if (U.inflight == 0) {
                if (U.next_item == L->n)
                    break;
                /* Staging is full of tensors waiting to be packed. */
                if (packer_wait_one(L))
                    continue;
                /* Cannot happen (a lone item always may start); never spin. */
                bn_errf(L->err, "%s: loader stalled with %zu tensors left", L->job->path,
                        L->n - U.next_item);
                L->failed = true;
                break;
            }
            rc = io_uring_submit_and_wait(&U.ring, 1);
            if (rc >= 0) {
                U.queued -= (unsigned)rc < U.queued ? (unsigned)rc : U.queued;
            } else if (rc == -EAGAIN || rc == -ENOMEM || rc == -EBUSY) {
                pause_briefly();
            } else if (rc != -EINTR) {
                bn_errf(L->err, "%s: io_uring_submit failed: %s", L->job->path, strerror(-rc));
                L->failed = true;
            }
        }
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&U.ring, head, cqe) {
            if (uring_complete(&U, io_uring_cqe_get_data(cqe), cqe->res) != 0)
                L->failed = true;
            seen++;
        }
        io_uring_cq_advance(&U.ring, seen);
    }
    io_uring_queue_exit(&U.ring);
    free(U.rds);
    return L->failed ? -1 : 0;
}

int load_run(const struct load_job *job, const struct load_opts *opts, struct load_report *rep,
             struct bn_err *err)
{
    double t0 = now_seconds();
    memset(rep, 0, sizeof *rep);
    rep->cached_fraction = -1;
    if (load_opts_check(opts, err))
        return -1;
    struct load L;
    memset(&L, 0, sizeof L);
    L.job = job;
    L.opts = opts;
    L.err = err;
    L.dfd = -1;
    if (items_init(&L)) {
        items_free(&L);
        return -1;
    }

    enum load_method method = opts->method;
    if (method == LOAD_IO_URING) {
        const char *env = getenv("BITNET_NO_IO_URING");
        if (env && strcmp(env, "1") == 0) {
            bn_log(BN_LOG_WARN, "io_uring disabled by BITNET_NO_IO_URING=1: loading %s with pread",
                   job->path);
            method = LOAD_PREAD;
        }
    }
    if (method == LOAD_IO_URING && opts->direct != LOAD_DIRECT_OFF) {
        bool want = opts->direct == LOAD_DIRECT_ON;
        if (opts->direct == LOAD_DIRECT_AUTO) {
            rep->cached_fraction = cached_fraction(&L);
            want = rep->cached_fraction >= 0 && rep->cached_fraction < LOAD_CACHED_FOR_BUFFERED;
        }
        if (want)
            open_direct(&L);
    }

    if (method != LOAD_MMAP)
        packer_start(&L);
    int rc = 0;
    if (method == LOAD_IO_URING) {
        bool unavailable;
        rc = run_uring(&L, &unavailable);
        if (unavailable)
            method = LOAD_PREAD;
    }
    if (method != LOAD_IO_URING && L.dfd >= 0) {
        close(L.dfd); /* pread and mmap read through the page cache */
        L.dfd = -1;
    }
    if (method == LOAD_PREAD)
        rc = run_pread(&L);
    else if (method == LOAD_MMAP)
        rc = run_mmap(&L);
    /* A pack thread's failure is the load's error; after our own, packs are moot. */
    bool own_failure = rc != 0 && !packer_failed(&L);
    int prc = packer_finish(&L, own_failure);
    if (rc == 0)
        rc = prc;

    rep->method = method;
    rep->direct_io = L.direct_reads > 0;
    rep->bytes_read = L.bytes_read;
    if (L.dfd >= 0)
        close(L.dfd);
    items_free(&L);
    rep->seconds = now_seconds() - t0;
    return rc;
}
