/* libipc/segment_store.c — where segments live and how they are created, opened,
 * mapped, locked and removed.
 *
 * Two backends behind one interface: POSIX shared memory (shm_open; on Linux the
 * objects are files of the tmpfs at /dev/shm) and a plain folder (any tmpfs or disk
 * folder; tests point it at a small private tmpfs to exercise ENOSPC).  Everything
 * after obtaining the fd is common, so a memfd can join later through bn_seg_map_fd.
 */
#include "ipc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

/* The folder glibc's shm_open uses on Linux; only listed (scan), never written by
 * path. */
#define SHM_FOLDER "/dev/shm"
#define SEG_KEY_HEX 16 /* hex digits of the model key in an object name */
#define SEG_HUGE_PAGE (2u << 20) /* x86-64 PMD huge page: the alignment of every mapping */
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25 /* Linux 6.1; older kernels answer EINVAL */
#endif

static int seg_errf(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int seg_errf(char *err, size_t err_len, const char *fmt, ...)
{
    if (err && err_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_len, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static bool is_posix_shm(const struct bn_seg_store *st)
{
    return st->dir[0] == '\0';
}

static bool instance_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.';
}

int bn_seg_store_open(struct bn_seg_store *st, const char *dir, const char *instance,
                      char *err, size_t err_len)
{
    memset(st, 0, sizeof *st);
    st->dirfd = -1;
    size_t n = instance ? strlen(instance) : 0;
    if (n == 0 || n > BN_SEG_INSTANCE_MAX)
        return seg_errf(err, err_len,
                        "instance name '%s' must have 1 to %u characters of [A-Za-z0-9_.]",
                        instance ? instance : "", BN_SEG_INSTANCE_MAX);
    for (size_t i = 0; i < n; i++)
        if (!instance_char_ok(instance[i]))
            return seg_errf(err, err_len,
                            "instance name '%s': character '%c' is not one of [A-Za-z0-9_.]",
                            instance, instance[i]);
    memcpy(st->instance, instance, n + 1);

    const char *folder = SHM_FOLDER;
    if (dir && dir[0]) {
        if (strlen(dir) >= sizeof st->dir)
            return seg_errf(err, err_len, "segment folder path is longer than %u bytes",
                            BN_SEG_PATH_MAX - 1);
        strcpy(st->dir, dir);
        folder = dir;
    }
    st->dirfd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (st->dirfd < 0)
        return seg_errf(err, err_len, "cannot open segment folder %s: %s", folder,
                        strerror(errno));
    return 0;
}

void bn_seg_store_close(struct bn_seg_store *st)
{
    if (st->dirfd >= 0)
        close(st->dirfd);
    st->dirfd = -1;
}

void bn_seg_store_name(const struct bn_seg_store *st, uint64_t key, char *out)
{
    snprintf(out, BN_SEG_OBJ_NAME_MAX, BN_SEG_OBJ_PREFIX "%s-%016llx", st->instance,
             (unsigned long long)key);
}

bool bn_seg_store_owns_name(const struct bn_seg_store *st, const char *name)
{
    size_t plen = strlen(BN_SEG_OBJ_PREFIX), ilen = strlen(st->instance);
    if (strncmp(name, BN_SEG_OBJ_PREFIX, plen) != 0)
        return false;
    name += plen;
    if (strncmp(name, st->instance, ilen) != 0 || name[ilen] != '-')
        return false;
    name += ilen + 1;
    for (int i = 0; i < SEG_KEY_HEX; i++)
        if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
            return false;
    return name[SEG_KEY_HEX] == '\0';
}

void bn_seg_store_describe(const struct bn_seg_store *st, const char *name, char *out,
                           size_t out_len)
{
    snprintf(out, out_len, "%s/%s", is_posix_shm(st) ? SHM_FOLDER : st->dir, name);
}

int bn_seg_store_scan(const struct bn_seg_store *st, void (*fn)(void *ctx, const char *name),
                      void *ctx, char *err, size_t err_len)
{
    char where[BN_SEG_PATH_MAX];
    snprintf(where, sizeof where, "%s", is_posix_shm(st) ? SHM_FOLDER : st->dir);
    int fd = dup(st->dirfd);
    if (fd < 0)
        return seg_errf(err, err_len, "cannot list %s: %s", where, strerror(errno));
    DIR *d = fdopendir(fd);
    if (!d) {
        int e = errno;
        close(fd);
        return seg_errf(err, err_len, "cannot list %s: %s", where, strerror(e));
    }
    rewinddir(d);
    /* Collect first so that fn may unlink objects while we iterate. */
    char(*names)[BN_SEG_OBJ_NAME_MAX] = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *de;
    errno = 0;
    while ((de = readdir(d)) != NULL) {
        if (!bn_seg_store_owns_name(st, de->d_name))
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            void *p = realloc(names, ncap * sizeof *names);
            if (!p) {
                rc = seg_errf(err, err_len, "out of memory listing %s", where);
                break;
            }
            names = p;
            cap = ncap;
        }
        /* owns_name bounds the length: prefix + instance + '-' + 16 hex < the max */
        memcpy(names[n++], de->d_name, strlen(de->d_name) + 1);
    }
    if (rc == 0 && errno != 0)
        rc = seg_errf(err, err_len, "cannot list %s: %s", where, strerror(errno));
    closedir(d);
    if (rc == 0)
        for (size_t i = 0; i < n; i++)
            fn(ctx, names[i]);
    free(names);
    return rc == 0 ? (int)n : -1;
}

/* Open object `name` of the store with open(2) flags. */
static int store_open_fd(const struct bn_seg_store *st, const char *name, int flags)
{
    flags |= O_CLOEXEC | O_NOFOLLOW;
    if (is_posix_shm(st)) {
        char shm_name[BN_SEG_OBJ_NAME_MAX + 1];
        snprintf(shm_name, sizeof shm_name, "/%s", name);
        return shm_open(shm_name, flags, 0600);
    }
    return openat(st->dirfd, name, flags, 0600);
}

static int store_unlink(const struct bn_seg_store *st, const char *name)
{
    if (is_posix_shm(st)) {
        char shm_name[BN_SEG_OBJ_NAME_MAX + 1];
        snprintf(shm_name, sizeof shm_name, "/%s", name);
        return shm_unlink(shm_name);
    }
    return unlinkat(st->dirfd, name, 0);
}

/* Map `size` bytes of fd shared at a 2 MiB-aligned address, so that every 2 MiB of
 * the object that the kernel holds as one huge page (see bn_seg_collapse) can be
 * mapped by one page-table entry: one TLB entry instead of 512 for the weights decode
 * streams.  Falls back to wherever mmap puts it. */
static void *map_aligned(int fd, size_t size, int prot)
{
    size_t len = (size + 4095) & ~(size_t)4095, span = len + SEG_HUGE_PAGE;
    uint8_t *r = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (r == MAP_FAILED)
        return mmap(NULL, size, prot, MAP_SHARED, fd, 0);
    uint8_t *a = (uint8_t *)(((uintptr_t)r + SEG_HUGE_PAGE - 1) & ~(uintptr_t)(SEG_HUGE_PAGE - 1));
    void *p = mmap(a, size, prot, MAP_SHARED | MAP_FIXED, fd, 0);
    if (p == MAP_FAILED) {
        int e = errno;
        munmap(r, span);
        errno = e;
        return MAP_FAILED;
    }
    if (a > r)
        munmap(r, (size_t)(a - r));
    if (r + span > a + len)
        munmap(a + len, (size_t)(r + span - (a + len)));
    return p;
}

int bn_seg_map_fd(int fd, bool writable, const char *label, struct bn_seg *out, char *err,
                  size_t err_len)
{
    memset(out, 0, sizeof *out);
    out->fd = -1;
    struct stat sb;
    if (fstat(fd, &sb) != 0)
        return seg_errf(err, err_len, "segment %s: fstat failed: %s", label, strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return seg_errf(err, err_len, "segment %s is not a regular shared-memory object", label);
    /* A zero-length object cannot be mapped; it is still a valid (empty) segment for
     * bn_seg_check, which reports it as incomplete. */
    void *base = NULL;
    if (sb.st_size > 0) {
        base = map_aligned(fd, (size_t)sb.st_size, PROT_READ | (writable ? PROT_WRITE : 0));
        if (base == MAP_FAILED)
            return seg_errf(err, err_len, "segment %s: cannot map %lld bytes: %s", label,
                            (long long)sb.st_size, strerror(errno));
    }
    out->fd = fd;
    out->base = base;
    out->size = (uint64_t)sb.st_size;
    out->writable = writable;
    return 0;
}

/* Reserve bytes [off, off+len) (page-aligned off) of a mapped object: returns 0 or
 * an errno value, and the step that failed. */
static int reserve_range(int fd, uint8_t *base, uint64_t off, uint64_t len, unsigned flags,
                         const char **step)
{
    /* Huge pages: a tmpfs mounted huge=always/within_size gives them to fallocate by
     * itself; with shmem_enabled=advise only faults through a MADV_HUGEPAGE mapping
     * get them (fallocate has no mapping), so then fault every page in first.  A
     * fault on a full tmpfs makes MADV_POPULATE_WRITE fail (EFAULT), not SIGBUS; the
     * fallocate below then reports the ENOSPC.  Refusals only cost speed: the caller
     * logs what the kernel allows. */
    bool populated = false;
    if (flags & BN_SEG_HUGEPAGE) {
        (void)madvise(base + off, (size_t)len, MADV_HUGEPAGE);
        if (flags & BN_SEG_POPULATE)
            populated = madvise(base + off, (size_t)len, MADV_POPULATE_WRITE) == 0;
    }
    /* Reserve every page now: on a full tmpfs this fails with ENOSPC here instead of
     * a writer dying of SIGBUS half-way. */
    int e = posix_fallocate(fd, (off_t)off, (off_t)len);
    if (e != 0) {
        *step = "posix_fallocate";
        return e;
    }
    /* Zero-fill and map the pages now, in one call, rather than one fault at a time
     * while writing. */
    if ((flags & BN_SEG_POPULATE) && !populated)
        (void)madvise(base + off, (size_t)len, MADV_POPULATE_WRITE);
    return 0;
}

static int space_error(char *err, size_t err_len, const char *what, uint64_t bytes,
                       const char *step, const char *folder)
{
    return seg_errf(err, err_len,
                    "not enough shared memory for segment %s: %llu bytes (%.1f MiB) do not fit "
                    "(%s: no space left); free space in %s or unload a model",
                    what, (unsigned long long)bytes, (double)bytes / (1 << 20), step, folder);
}

int bn_seg_create(const struct bn_seg_store *st, const char *name, uint64_t size,
                  unsigned flags, struct bn_seg *out, char *err, size_t err_len)
{
    char where[BN_SEG_PATH_MAX + BN_SEG_OBJ_NAME_MAX];
    bn_seg_store_describe(st, name, where, sizeof where);
    memset(out, 0, sizeof *out);
    out->fd = -1;
    if (size == 0 || size > (uint64_t)INT64_MAX || size != (uint64_t)(size_t)size) {
        errno = EINVAL;
        return seg_errf(err, err_len, "segment %s: size %llu bytes is out of range", where,
                        (unsigned long long)size);
    }

    int fd = store_open_fd(st, name, O_RDWR | O_CREAT | O_EXCL);
    if (fd < 0) {
        int e = errno;
        seg_errf(err, err_len, "cannot create segment %s: %s", where, strerror(e));
        errno = e;
        return -1;
    }
    int e = 0;
    const char *step = "";
    void *base = MAP_FAILED;
    /* Mode exactly 0600 whatever the umask; lock before anything else can look. */
    if (fchmod(fd, 0600) != 0) {
        e = errno, step = "fchmod";
        goto fail;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        e = errno, step = "flock";
        goto fail;
    }
    if (ftruncate(fd, (off_t)size) != 0) {
        e = errno, step = "ftruncate";
        goto fail;
    }
    base = map_aligned(fd, (size_t)size, PROT_READ | PROT_WRITE);
    if (base == MAP_FAILED) {
        e = errno, step = "mmap";
        goto fail;
    }
    if (!(flags & BN_SEG_NO_RESERVE) && (e = reserve_range(fd, base, 0, size, flags, &step)) != 0)
        goto fail;

    out->fd = fd;
    out->base = base;
    out->size = size;
    out->writable = true;
    snprintf(out->name, sizeof out->name, "%s", name);
    return 0;

fail:
    if (base != MAP_FAILED)
        munmap(base, (size_t)size);
    store_unlink(st, name);
    close(fd);
    if (e == ENOSPC)
        space_error(err, err_len, where, size, step, is_posix_shm(st) ? SHM_FOLDER : st->dir);
    else
        seg_errf(err, err_len, "cannot create segment %s of %llu bytes: %s failed: %s", where,
                 (unsigned long long)size, step, strerror(e));
    errno = e;
    return -1;
}

int bn_seg_reserve(const struct bn_seg *s, uint64_t off, uint64_t len, unsigned flags,
                   char *err, size_t err_len)
{
    if (off % 4096 != 0 || off > s->size || len > s->size - off) {
        errno = EINVAL;
        return seg_errf(err, err_len, "segment %s: reserve [%llu, +%llu) is not a page-aligned "
                                      "range of its %llu bytes",
                        s->name, (unsigned long long)off, (unsigned long long)len,
                        (unsigned long long)s->size);
    }
    if (len == 0)
        return 0;
    const char *step = "";
    int e = reserve_range(s->fd, s->base, off, len, flags, &step);
    if (e == 0)
        return 0;
    if (e == ENOSPC)
        space_error(err, err_len, s->name, s->size, step, "its folder");
    else
        seg_errf(err, err_len, "cannot reserve %llu bytes of segment %s: %s failed: %s",
                 (unsigned long long)len, s->name, step, strerror(e));
    errno = e;
    return -1;
}

int bn_seg_collapse(const struct bn_seg *s, uint64_t off, uint64_t len)
{
    uint64_t a = (off + SEG_HUGE_PAGE - 1) / SEG_HUGE_PAGE * SEG_HUGE_PAGE;
    uint64_t end = off > s->size || len > s->size - off ? s->size : off + len;
    uint64_t b = end / SEG_HUGE_PAGE * SEG_HUGE_PAGE;
    if ((uintptr_t)s->base % SEG_HUGE_PAGE != 0 || b <= a) {
        errno = EINVAL;
        return -1;
    }
    /* One 4 KiB page per 2 MiB first: MADV_COLLAPSE then allocates each huge page
     * zero-filled around it instead of copying 512 small pages.  fallocate reports a
     * full tmpfs as ENOSPC (a store would raise SIGBUS). */
    for (uint64_t o = a; o < b; o += SEG_HUGE_PAGE) {
        int e = posix_fallocate(s->fd, (off_t)o, 4096);
        if (e != 0) {
            errno = e;
            return -1;
        }
    }
    return madvise(s->base + a, (size_t)(b - a), MADV_COLLAPSE);
}

int bn_seg_prefault(const struct bn_seg *s, void *p, uint64_t len, char *err, size_t err_len)
{
    uintptr_t a = (uintptr_t)p, b = a + len;
    a -= a % 4096;
    b += (4096 - b % 4096) % 4096;
    if (a < (uintptr_t)s->base || b > (uintptr_t)s->base + s->size) {
        errno = EINVAL;
        return seg_errf(err, err_len, "segment %s: prefault range lies outside the mapping", s->name);
    }
    if (len == 0 || madvise((void *)a, b - a, MADV_POPULATE_WRITE) == 0)
        return 0;
    int e = errno;
    /* EFAULT: the fault would have raised SIGBUS, which for tmpfs means no space. */
    if (e == EFAULT) {
        space_error(err, err_len, s->name, s->size, "page fault", "its folder");
        errno = ENOSPC;
        return -1;
    }
    seg_errf(err, err_len, "cannot fault in %llu bytes of segment %s: %s",
             (unsigned long long)(b - a), s->name, strerror(e));
    errno = e;
    return -1;
}

int bn_seg_store_free_bytes(const struct bn_seg_store *st, uint64_t *out, char *err,
                            size_t err_len)
{
    struct statvfs sv;
    if (fstatvfs(st->dirfd, &sv) != 0)
        return seg_errf(err, err_len, "cannot read the free space of %s: %s",
                        is_posix_shm(st) ? SHM_FOLDER : st->dir, strerror(errno));
    *out = (uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize;
    return 0;
}

int bn_seg_open(const struct bn_seg_store *st, const char *name, struct bn_seg *out,
                char *err, size_t err_len)
{
    char where[BN_SEG_PATH_MAX + BN_SEG_OBJ_NAME_MAX];
    bn_seg_store_describe(st, name, where, sizeof where);
    memset(out, 0, sizeof *out);
    out->fd = -1;
    int fd = store_open_fd(st, name, O_RDWR);
    if (fd < 0) {
        int e = errno;
        seg_errf(err, err_len, "cannot open segment %s: %s", where, strerror(e));
        errno = e;
        return -1;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        seg_errf(err, err_len, "segment %s: fstat failed: %s", where, strerror(e));
        errno = e;
        return -1;
    }
    if (!S_ISREG(sb.st_mode) || sb.st_uid != geteuid() || (sb.st_mode & 07777) != 0600) {
        close(fd);
        seg_errf(err, err_len,
                 "%s is not a bitnetd segment of this user (owner uid %u, mode %04o; expected "
                 "a regular object of uid %u with mode 0600): it is left alone",
                 where, (unsigned)sb.st_uid, (unsigned)(sb.st_mode & 07777), (unsigned)geteuid());
        errno = EPERM;
        return -1;
    }
    if (bn_seg_map_fd(fd, true, where, out, err, err_len) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    snprintf(out->name, sizeof out->name, "%s", name);
    return 0;
}

void bn_seg_close(struct bn_seg *s)
{
    if (s->base && s->size)
        munmap(s->base, (size_t)s->size);
    if (s->fd >= 0)
        close(s->fd); /* also drops our flock */
    s->base = NULL;
    s->size = 0;
    s->fd = -1;
}

int bn_seg_unlink(const struct bn_seg_store *st, const char *name, char *err, size_t err_len)
{
    if (store_unlink(st, name) == 0 || errno == ENOENT)
        return 0;
    char where[BN_SEG_PATH_MAX + BN_SEG_OBJ_NAME_MAX];
    bn_seg_store_describe(st, name, where, sizeof where);
    return seg_errf(err, err_len, "cannot remove segment %s: %s", where, strerror(errno));
}

int bn_seg_lock(const struct bn_seg *s, bool exclusive)
{
    int rc;
    do
        rc = flock(s->fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB);
    while (rc != 0 && errno == EINTR);
    return rc;
}
