/* daemon/registry_segment.c — model files and the segments made from them: opening and
 * checking a model file, naming its segment, laying the segment out, writing its
 * front (header, metadata copy, directory), and checking a segment found at start
 * against its file and this build's layout.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "registry_internal.h"

static uint64_t align_up(uint64_t x, uint64_t a)
{
    return x + (a - x % a) % a;
}

int64_t stat_mtime_ns(const struct stat *st)
{
    return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

/* pread exactly n bytes; 0, or -1 with errno (0 when the file ended early). */
static int pread_full(int fd, void *buf, uint64_t n, uint64_t off)
{
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t got = pread(fd, p, (size_t)n, (off_t)off);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (got == 0) {
            errno = 0;
            return -1;
        }
        p += got;
        off += (uint64_t)got;
        n -= (uint64_t)got;
    }
    return 0;
}

static const char *file_kind(mode_t m)
{
    if (S_ISDIR(m))
        return "a directory";
    if (S_ISFIFO(m))
        return "a FIFO (named pipe)";
    if (S_ISSOCK(m))
        return "a socket";
    if (S_ISCHR(m))
        return "a character device";
    if (S_ISBLK(m))
        return "a block device";
    return "not a regular file";
}

void model_file_close(struct model_file *mf)
{
    if (mf->fd >= 0)
        close(mf->fd);
    mf->fd = -1;
    bn_pack_plan_free(&mf->plan);
    bn_gguf_close(mf->g);
    mf->g = NULL;
    free(mf->meta);
    mf->meta = NULL;
}

/* Read the GGUF header region: start with REGISTRY_META_FIRST_READ bytes and grow
 * until the header, metadata and tensor infos parse (HEADER_ONLY). */
static int read_meta(struct model_file *mf, struct bn_err *err)
{
    uint64_t size = (uint64_t)mf->st.st_size;
    uint64_t n = size < REGISTRY_META_FIRST_READ ? size : REGISTRY_META_FIRST_READ;
    for (;;) {
        uint8_t *p = realloc(mf->meta, (size_t)n);
        if (!p)
            return bn_errf(err, "%s: out of memory reading %llu header bytes", mf->path,
                           (unsigned long long)n);
        mf->meta = p;
        if (pread_full(mf->fd, mf->meta + mf->meta_read, n - mf->meta_read, mf->meta_read) != 0)
            return errno ? bn_errf(err, "cannot read model file %s: %s", mf->path, strerror(errno))
                         : bn_errf(err, "model file %s shrank while its header was read", mf->path);
        mf->meta_read = n;
        if (n >= 4 && memcmp(mf->meta, "GGUF", 4) != 0)
            return bn_errf(err, "%s is not a GGUF file: it starts with bytes %02x %02x %02x %02x, not \"GGUF\"",
                           mf->path, mf->meta[0], mf->meta[1], mf->meta[2], mf->meta[3]);
        struct bn_err perr = {{0}};
        if (bn_gguf_open(&mf->g, mf->meta, n, mf->path, BN_GGUF_HEADER_ONLY, &perr) == 0)
            return 0;
        if (n == size)
            return bn_errf(err, "%s", perr.msg);
        if (n >= REGISTRY_META_MAX)
            return bn_errf(err, "%s: the GGUF header, metadata and tensor table do not parse within "
                                "the first %u MiB (limit REGISTRY_META_MAX): %s",
                           mf->path, REGISTRY_META_MAX >> 20, perr.msg);
        n = n * 4 < size ? n * 4 : size;
        if (n > REGISTRY_META_MAX)
            n = REGISTRY_META_MAX;
    }
}

int model_file_open(struct model_file *mf, const char *path, enum bn_path kpath,
                    enum bn_type prefer, struct bn_err *err)
{
    memset(mf, 0, sizeof *mf);
    mf->fd = -1;
    if (!path || !path[0])
        return bn_errf(err, "no model path given");
    char canon[PATH_MAX];
    if (!realpath(path, canon)) {
        int e = errno;
        if (e == ENOENT)
            return bn_errf(err, "model file %s does not exist", path);
        if (e == EACCES)
            return bn_errf(err, "model file %s: permission denied on a folder of its path", path);
        return bn_errf(err, "model file %s: %s", path, strerror(e));
    }
    if (strlen(canon) >= sizeof mf->path)
        return bn_errf(err, "model path %s is longer than %u bytes", canon, BN_SEG_PATH_MAX - 1);
    strcpy(mf->path, canon);

    /* O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then rejects it. */
    mf->fd = open(canon, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (mf->fd < 0) {
        int e = errno;
        struct stat sb;
        if (e == ENXIO && stat(canon, &sb) == 0)
            return bn_errf(err, "model file %s is %s, not a GGUF file", canon, file_kind(sb.st_mode));
        if (e == EACCES)
            return bn_errf(err, "cannot read model file %s: permission denied", canon);
        return bn_errf(err, "cannot open model file %s: %s", canon, strerror(e));
    }
    if (fstat(mf->fd, &mf->st) != 0) {
        int e = errno;
        model_file_close(mf);
        return bn_errf(err, "model file %s: fstat failed: %s", canon, strerror(e));
    }
    if (!S_ISREG(mf->st.st_mode)) {
        mode_t m = mf->st.st_mode;
        model_file_close(mf);
        return bn_errf(err, "model file %s is %s, not a GGUF file", canon, file_kind(m));
    }
    /* Back to blocking reads: a regular file ignores O_NONBLOCK, but be explicit. */
    int fl = fcntl(mf->fd, F_GETFL);
    if (fl >= 0)
        (void)fcntl(mf->fd, F_SETFL, fl & ~O_NONBLOCK);
    if (mf->st.st_size == 0) {
        model_file_close(mf);
        return bn_errf(err, "model file %s is empty", canon);
    }

    if (read_meta(mf, err) != 0)
        goto fail;
    mf->meta_bytes = bn_gguf_data_offset(mf->g);
    uint64_t size = (uint64_t)mf->st.st_size;
    if (mf->meta_bytes > size) {
        bn_errf(err, "%s: the data section would start at byte %llu, past the end of the file (%llu bytes)",
                canon, (unsigned long long)mf->meta_bytes, (unsigned long long)size);
        goto fail;
    }
    if (mf->meta_bytes > mf->meta_read) {
        /* Only the alignment padding after the tensor table is missing. */
        uint8_t *p = realloc(mf->meta, (size_t)mf->meta_bytes);
        if (!p) {
            bn_errf(err, "%s: out of memory", canon);
            goto fail;
        }
        /* The parsed reader points into the old buffer: reparse after growing. */
        bn_gguf_close(mf->g);
        mf->g = NULL;
        mf->meta = p;
        if (pread_full(mf->fd, p + mf->meta_read, mf->meta_bytes - mf->meta_read, mf->meta_read)) {
            bn_errf(err, "cannot read model file %s: %s", canon, errno ? strerror(errno) : "it shrank");
            goto fail;
        }
        mf->meta_read = mf->meta_bytes;
        if (bn_gguf_open(&mf->g, mf->meta, mf->meta_read, canon, BN_GGUF_HEADER_ONLY, err))
            goto fail;
    }
    mf->meta_hash = bn_seg_hash64(mf->meta, (size_t)mf->meta_bytes, 0);

    if (bn_pack_plan_make(&mf->plan, mf->g, kpath, prefer, err))
        goto fail;
    if (mf->plan.n == 0) {
        bn_errf(err, "%s: the model has no tensors", canon);
        goto fail;
    }
    for (size_t i = 0; i < mf->plan.n; i++) {
        const struct bn_pack_entry *e = &mf->plan.entries[i];
        uint64_t end;
        if (__builtin_add_overflow(e->src_offset, e->src_bytes, &end) || end > size) {
            bn_errf(err, "%s: tensor '%s' data [%llu, +%llu) lies past the end of the file (%llu bytes): "
                         "the file is truncated",
                    canon, e->name, (unsigned long long)e->src_offset,
                    (unsigned long long)e->src_bytes, (unsigned long long)size);
            goto fail;
        }
    }
    return 0;
fail:
    model_file_close(mf);
    return -1;
}

uint64_t model_key(uint64_t dev, uint64_t ino, uint64_t size, int64_t mtime_ns,
                   uint32_t layout_id, uint32_t kpath, uint32_t prefer, const char *path)
{
    struct {
        uint64_t dev, ino, size;
        int64_t mtime_ns;
        uint32_t layout_id, kpath, prefer, pad;
    } id = {dev, ino, size, mtime_ns, layout_id, kpath, prefer, 0};
    return bn_seg_hash64(path, strlen(path), bn_seg_hash64(&id, sizeof id, 0));
}

uint64_t model_file_key(const struct model_file *mf, enum bn_path kpath, enum bn_type prefer)
{
    return model_key((uint64_t)mf->st.st_dev, (uint64_t)mf->st.st_ino, (uint64_t)mf->st.st_size,
                     stat_mtime_ns(&mf->st), mf->plan.layout_id, (uint32_t)kpath, (uint32_t)prefer,
                     mf->path);
}

int seg_layout_make(struct seg_layout *lay, const struct model_file *mf, struct bn_err *err)
{
    memset(lay, 0, sizeof *lay);
    size_t n = mf->plan.n;
    lay->offsets = calloc(n, sizeof *lay->offsets);
    if (!lay->offsets)
        return bn_errf(err, "%s: out of memory laying out %zu tensors", mf->path, n);
    lay->meta_offset = BN_SEG_HEADER_BYTES;
    lay->dir_offset = align_up(lay->meta_offset + mf->meta_bytes, BN_SEG_TENSOR_ALIGN);
    uint64_t dir_end = lay->dir_offset + (uint64_t)n * sizeof(struct bn_seg_tensor);
    /* Slack before the first tensor too: O_DIRECT may write a block head there. */
    lay->data_offset = align_up(dir_end + LOAD_DIO_SLACK, BN_SEG_DATA_ALIGN);
    uint64_t end;
    if (load_layout(&mf->plan, lay->data_offset, lay->offsets, &end) != 0 ||
        end > UINT64_MAX - BN_SEG_DATA_ALIGN) {
        seg_layout_free(lay);
        return bn_errf(err, "%s: segment size overflows", mf->path);
    }
    lay->total = align_up(end, BN_SEG_DATA_ALIGN);
    return 0;
}

void seg_layout_free(struct seg_layout *lay)
{
    free(lay->offsets);
    lay->offsets = NULL;
}

void seg_write_front(struct bn_seg *s, const struct model_file *mf, const struct seg_layout *lay,
                     enum bn_path kpath, enum bn_type prefer)
{
    struct bn_seg_header *h = bn_seg_hdr(s);
    memset(h, 0, sizeof *h);
    memcpy(h->magic, BN_SEG_MAGIC, sizeof h->magic);
    h->version = BN_SEG_VERSION;
    h->header_bytes = sizeof *h;
    h->state = BN_SEG_STATE_LOADING;
    h->layout_id = mf->plan.layout_id;
    h->layout_path = (uint32_t)kpath;
    h->layout_prefer = (uint32_t)prefer;
    h->total_bytes = lay->total;
    h->meta_offset = lay->meta_offset;
    h->meta_bytes = mf->meta_bytes;
    h->meta_hash = mf->meta_hash;
    h->dir_offset = lay->dir_offset;
    h->n_tensors = mf->plan.n;
    h->data_offset = lay->data_offset;
    h->data_bytes = lay->total - lay->data_offset;
    h->src_size = (uint64_t)mf->st.st_size;
    h->src_dev = (uint64_t)mf->st.st_dev;
    h->src_ino = (uint64_t)mf->st.st_ino;
    h->src_mtime_ns = stat_mtime_ns(&mf->st);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    h->created_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    h->writer_pid = (int32_t)getpid();
    snprintf(h->src_path, sizeof h->src_path, "%s", mf->path);

    memcpy(s->base + lay->meta_offset, mf->meta, (size_t)mf->meta_bytes);
    struct bn_seg_tensor *dir = bn_seg_dir(s);
    for (size_t i = 0; i < mf->plan.n; i++) {
        const struct bn_pack_entry *e = &mf->plan.entries[i];
        struct bn_seg_tensor *t = &dir[i];
        memset(t, 0, sizeof *t);
        snprintf(t->name, sizeof t->name, "%s", e->name);
        t->src_type = (uint32_t)e->src_type;
        t->dst_type = (uint32_t)e->dst_type;
        t->rows = e->rows;
        t->cols = e->cols;
        t->offset = lay->offsets[i];
        t->bytes = e->dst_bytes;
        t->src_offset = e->src_offset;
        t->src_bytes = e->src_bytes;
    }
}

void seg_view_close(struct seg_view *v)
{
    free(v->data);
    bn_pack_plan_free(&v->plan);
    bn_gguf_close(v->meta);
    memset(v, 0, sizeof *v);
}

int seg_view_open(struct seg_view *v, const struct bn_seg *s, enum bn_path kpath,
                  enum bn_type prefer, struct bn_err *err)
{
    memset(v, 0, sizeof *v);
    const struct bn_seg_header *h = bn_seg_hdr(s);
    const struct bn_seg_tensor *dir = bn_seg_dir(s);
    if (h->layout_path != (uint32_t)kpath)
        return bn_errf(err, "segment %s is laid out for the %s kernels; this daemon uses %s",
                       s->name, bn_path_name((enum bn_path)h->layout_path), bn_path_name(kpath));
    if (h->layout_prefer != (uint32_t)prefer)
        return bn_errf(err, "segment %s was made with ternary layout preference %s; this daemon uses %s",
                       s->name,
                       h->layout_prefer == BN_TYPE_COUNT ? "fastest"
                                                         : bn_type_name((enum bn_type)h->layout_prefer),
                       prefer == BN_TYPE_COUNT ? "fastest" : bn_type_name(prefer));
    if (bn_gguf_open(&v->meta, s->base + h->meta_offset, h->meta_bytes, h->src_path,
                     BN_GGUF_HEADER_ONLY, err))
        goto fail;
    if (bn_pack_plan_make(&v->plan, v->meta, kpath, prefer, err))
        goto fail;
    if (v->plan.layout_id != h->layout_id) {
        bn_errf(err, "segment %s was laid out with layout id %08x (another build or kernel path); "
                     "this build uses %08x",
                s->name, h->layout_id, v->plan.layout_id);
        goto fail;
    }
    if (v->plan.n != h->n_tensors) {
        bn_errf(err, "segment %s lists %llu tensors; its metadata has %zu", s->name,
                (unsigned long long)h->n_tensors, v->plan.n);
        goto fail;
    }
    v->data = calloc(v->plan.n, sizeof *v->data);
    if (!v->data) {
        bn_errf(err, "out of memory for %zu tensor pointers", v->plan.n);
        goto fail;
    }
    for (size_t i = 0; i < v->plan.n; i++) {
        const struct bn_pack_entry *e = &v->plan.entries[i];
        const struct bn_seg_tensor *t = &dir[i];
        if (strcmp(e->name, t->name) != 0 || t->src_type != (uint32_t)e->src_type ||
            t->dst_type != (uint32_t)e->dst_type || t->rows != e->rows || t->cols != e->cols ||
            t->bytes != e->dst_bytes || t->src_offset != e->src_offset ||
            t->src_bytes != e->src_bytes) {
            bn_errf(err, "segment %s: directory entry %zu ('%s', %s, %llu bytes) differs from what "
                         "this build makes of tensor '%s' (%s, %llu bytes)",
                    s->name, i, t->name, bn_type_name((enum bn_type)t->dst_type),
                    (unsigned long long)t->bytes, e->name, bn_type_name(e->dst_type),
                    (unsigned long long)e->dst_bytes);
            goto fail;
        }
        v->data[i] = s->base + t->offset;
    }
    v->source.meta = v->meta;
    v->source.plan = &v->plan;
    v->source.data = v->data;
    return 0;
fail:
    seg_view_close(v);
    return -1;
}

int seg_check_source(const struct bn_seg *s, const struct bn_seg_store *st, struct bn_err *err)
{
    const struct bn_seg_header *h = bn_seg_hdr(s);
    struct stat sb;
    if (stat(h->src_path, &sb) != 0)
        return bn_errf(err, "the model file of segment %s, %s, is gone (%s)", s->name, h->src_path,
                       strerror(errno));
    if ((uint64_t)sb.st_dev != h->src_dev || (uint64_t)sb.st_ino != h->src_ino ||
        (uint64_t)sb.st_size != h->src_size || stat_mtime_ns(&sb) != h->src_mtime_ns)
        return bn_errf(err, "the model file %s changed since segment %s was written (size %llu -> %llu "
                            "bytes, mtime %lld -> %lld ns, inode %llu -> %llu)",
                       h->src_path, s->name, (unsigned long long)h->src_size,
                       (unsigned long long)sb.st_size, (long long)h->src_mtime_ns,
                       (long long)stat_mtime_ns(&sb), (unsigned long long)h->src_ino,
                       (unsigned long long)sb.st_ino);
    char want[BN_SEG_OBJ_NAME_MAX];
    bn_seg_store_name(st, model_key(h->src_dev, h->src_ino, h->src_size, h->src_mtime_ns,
                                    h->layout_id, h->layout_path, h->layout_prefer, h->src_path),
                      want);
    if (s->name[0] && strcmp(want, s->name) != 0)
        return bn_errf(err, "segment %s describes a model whose segment would be named %s", s->name,
                       want);
    if (h->meta_bytes > h->src_size)
        return bn_errf(err, "segment %s: metadata copy (%llu bytes) is larger than its file", s->name,
                       (unsigned long long)h->meta_bytes);

    /* The file's header region must still hash as the copy does: the cheap part of
     * the file (a few MB), never its tensor data. */
    int fd = open(h->src_path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return bn_errf(err, "cannot read %s to check segment %s: %s", h->src_path, s->name,
                       strerror(errno));
    uint8_t *buf = malloc((size_t)h->meta_bytes);
    int rc = 0;
    if (!buf)
        rc = bn_errf(err, "out of memory checking segment %s", s->name);
    else if (pread_full(fd, buf, h->meta_bytes, 0) != 0)
        rc = bn_errf(err, "cannot read the header of %s to check segment %s: %s", h->src_path,
                     s->name, errno ? strerror(errno) : "the file is shorter");
    else if (bn_seg_hash64(buf, (size_t)h->meta_bytes, 0) != h->meta_hash)
        rc = bn_errf(err, "the header bytes of %s no longer match segment %s (checksum differs)",
                     h->src_path, s->name);
    free(buf);
    close(fd);
    return rc;
}
