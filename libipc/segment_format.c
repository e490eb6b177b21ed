/* libipc/segment_format.c — the segment header: hashing, validation, publishing.
 *
 * Validation reads the header, the metadata copy and the directory only: tensor data
 * pages are never touched, so checking a 1.2 GB segment costs what hashing a few MB
 * of metadata costs.
 */
#include "ipc.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

_Static_assert(sizeof(struct bn_seg_header) <= BN_SEG_HEADER_BYTES,
               "struct bn_seg_header must fit in BN_SEG_HEADER_BYTES");
_Static_assert(sizeof(struct bn_seg_tensor) == 128, "directory entries are 128 bytes");
_Static_assert(sizeof(BN_SEG_MAGIC) - 1 == 8, "BN_SEG_MAGIC is 8 bytes");

#define HEADER_HASH_SEED 0x6269746e65746468ull /* "bitnetdh": keeps the two hashes apart */

static enum bn_seg_status status_why(enum bn_seg_status st, char *why, size_t why_len,
                                     const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static enum bn_seg_status status_why(enum bn_seg_status st, char *why, size_t why_len,
                                     const char *fmt, ...)
{
    if (why && why_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, why_len, fmt, ap);
        va_end(ap);
    }
    return st;
}

const char *bn_seg_status_name(enum bn_seg_status st)
{
    switch (st) {
    case BN_SEG_OK: return "ok";
    case BN_SEG_INCOMPLETE: return "incomplete";
    case BN_SEG_CORRUPT: return "corrupt";
    case BN_SEG_OTHER_VERSION: return "other-version";
    case BN_SEG_FOREIGN: return "foreign";
    }
    return "unknown";
}

uint64_t bn_seg_header_hash(const struct bn_seg_header *h, const struct bn_seg_tensor *dir)
{
    /* Hash a copy with the two fields that change after hashing zeroed: the state
     * (written last) and the hash itself. */
    struct bn_seg_header tmp;
    memcpy(&tmp, h, sizeof tmp);
    tmp.state = 0;
    tmp.header_hash = 0;
    uint64_t hh = bn_seg_hash64(&tmp, sizeof tmp, HEADER_HASH_SEED);
    return bn_seg_hash64(dir, (size_t)h->n_tensors * sizeof *dir, hh);
}

static bool all_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return false;
    return true;
}

/* a + b <= limit without overflow */
static bool fits(uint64_t a, uint64_t b, uint64_t limit)
{
    return a <= limit && b <= limit - a;
}

enum bn_seg_status bn_seg_check(const struct bn_seg *s, char *why, size_t why_len)
{
    const char *label = s->name[0] ? s->name : "(fd)";
    if (why && why_len)
        why[0] = '\0';
    if (s->size == 0 || !s->base)
        return status_why(BN_SEG_INCOMPLETE, why, why_len,
                          "segment %s is empty: its writer stopped before the header", label);
    if (s->size < sizeof(((struct bn_seg_header *)0)->magic))
        return status_why(BN_SEG_FOREIGN, why, why_len,
                          "object %s has %llu bytes, too few for a segment magic", label,
                          (unsigned long long)s->size);
    const struct bn_seg_header *h = (const struct bn_seg_header *)(const void *)s->base;
    if (memcmp(h->magic, BN_SEG_MAGIC, sizeof h->magic) != 0) {
        /* A segment whose header was never written is all zeros (posix_fallocate). */
        if (all_zero(h->magic, sizeof h->magic))
            return status_why(BN_SEG_INCOMPLETE, why, why_len,
                              "segment %s has no header yet: its writer stopped early", label);
        return status_why(BN_SEG_FOREIGN, why, why_len,
                          "object %s does not start with the bitnetd segment magic", label);
    }
    if (s->size < BN_SEG_HEADER_BYTES)
        return status_why(BN_SEG_CORRUPT, why, why_len,
                          "segment %s is truncated: %llu bytes, less than its %u-byte header",
                          label, (unsigned long long)s->size, BN_SEG_HEADER_BYTES);
    if (h->version != BN_SEG_VERSION)
        return status_why(BN_SEG_OTHER_VERSION, why, why_len,
                          "segment %s has format version %u; this build reads version %u",
                          label, h->version, BN_SEG_VERSION);
    if (h->header_bytes != sizeof(struct bn_seg_header))
        return status_why(BN_SEG_CORRUPT, why, why_len,
                          "segment %s: header_bytes %u, expected %zu", label, h->header_bytes,
                          sizeof(struct bn_seg_header));
    if (h->total_bytes != s->size)
        return status_why(BN_SEG_CORRUPT, why, why_len,
                          "segment %s is truncated or resized: header says %llu bytes, the "
                          "object has %llu",
                          label, (unsigned long long)h->total_bytes, (unsigned long long)s->size);
    uint32_t state = __atomic_load_n(&h->state, __ATOMIC_ACQUIRE);
    if (state == BN_SEG_STATE_LOADING)
        return status_why(BN_SEG_INCOMPLETE, why, why_len,
                          "segment %s is still in state loading: its writer is at work or "
                          "was stopped half-way",
                          label);
    if (state != BN_SEG_STATE_READY)
        return status_why(BN_SEG_CORRUPT, why, why_len, "segment %s: unknown state %u", label,
                          state);

    /* Regions: header | meta | directory | data, in that order, inside the object. */
    uint64_t total = h->total_bytes;
    if (h->meta_offset < BN_SEG_HEADER_BYTES || !fits(h->meta_offset, h->meta_bytes, total) ||
        h->meta_bytes == 0)
        return status_why(BN_SEG_CORRUPT, why, why_len,
                          "segment %s: metadata copy [%llu, +%llu) is outside the object", label,
                          (unsigned long long)h->meta_offset, (unsigned long long)h->meta_bytes);
    if (h->n_tensors == 0 || h->n_tensors > BN_SEG_MAX_TENSORS)
        return status_why(BN_SEG_CORRUPT, why, why_len,
                          "segment %s: n_tensors %llu is outside 1..%u", label,
                          (unsigned long long)h->n_tensors, BN_SEG_MAX_TENSORS);
    uint64_t dir_bytes = h->n_tensors * sizeof(struct bn_seg_tensor);
    if (h->dir_offset % 8 != 0 || h->dir_offset < h->meta_offset + h->meta_bytes ||
        !fits(h->dir_offset, dir_bytes, total))
        return status_why(BN_SEG_CORRUPT, why, why_len,
                          "segment %s: tensor directory at %llu (%llu bytes) is misplaced", label,
                          (unsigned long long)h->dir_offset, (unsigned long long)dir_bytes);
    if (h->data_offset % BN_SEG_DATA_ALIGN != 0 || h->data_offset < h->dir_offset + dir_bytes ||
        h->data_offset > total || h->data_bytes != total - h->data_offset)
        return status_why(BN_SEG_CORRUPT, why, why_len,
                          "segment %s: data area at %llu (%llu bytes) is misplaced", label,
                          (unsigned long long)h->data_offset, (unsigned long long)h->data_bytes);
    if (memchr(h->src_path, '\0', sizeof h->src_path) == NULL || h->src_path[0] != '/')
        return status_why(BN_SEG_CORRUPT, why, why_len,
                          "segment %s: source path is not an absolute NUL-terminated path", label);
    if (memchr(h->load_method, '\0', sizeof h->load_method) == NULL)
        return status_why(BN_SEG_CORRUPT, why, why_len,
                          "segment %s: load method is not NUL-terminated", label);

    const struct bn_seg_tensor *dir = (const struct bn_seg_tensor *)(const void *)(s->base +
                                                                                   h->dir_offset);
    uint64_t want = bn_seg_header_hash(h, dir);
    if (want != h->header_hash)
        return status_why(BN_SEG_CORRUPT, why, why_len,
                          "segment %s: header hash mismatch (stored %016llx, computed %016llx): "
                          "the header or directory was changed after it was written",
                          label, (unsigned long long)h->header_hash, (unsigned long long)want);
    uint64_t mh = bn_seg_hash64(s->base + h->meta_offset, (size_t)h->meta_bytes, 0);
    if (mh != h->meta_hash)
        return status_why(BN_SEG_CORRUPT, why, why_len,
                          "segment %s: metadata copy hash mismatch (stored %016llx, computed "
                          "%016llx)",
                          label, (unsigned long long)h->meta_hash, (unsigned long long)mh);

    uint64_t prev_end = h->data_offset;
    for (uint64_t i = 0; i < h->n_tensors; i++) {
        const struct bn_seg_tensor *t = &dir[i];
        if (memchr(t->name, '\0', sizeof t->name) == NULL)
            return status_why(BN_SEG_CORRUPT, why, why_len,
                              "segment %s: tensor %llu: name is not NUL-terminated", label,
                              (unsigned long long)i);
        if (t->offset % BN_SEG_TENSOR_ALIGN != 0 || t->offset < prev_end || t->bytes == 0 ||
            !fits(t->offset, t->bytes, total))
            return status_why(BN_SEG_CORRUPT, why, why_len,
                              "segment %s: tensor %llu '%s' at [%llu, +%llu) is misaligned, "
                              "overlaps its predecessor or leaves the object",
                              label, (unsigned long long)i, t->name,
                              (unsigned long long)t->offset, (unsigned long long)t->bytes);
        if (t->rows <= 0 || t->cols <= 0)
            return status_why(BN_SEG_CORRUPT, why, why_len,
                              "segment %s: tensor '%s' has shape %lld x %lld", label, t->name,
                              (long long)t->rows, (long long)t->cols);
        prev_end = t->offset + t->bytes;
    }
    return BN_SEG_OK;
}

void bn_seg_publish(struct bn_seg *s)
{
    struct bn_seg_header *h = bn_seg_hdr(s);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    h->ready_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    h->header_hash = bn_seg_header_hash(h, bn_seg_dir(s));
    /* Everything above (and all tensor data) becomes visible before READY. */
    __atomic_store_n(&h->state, (uint32_t)BN_SEG_STATE_READY, __ATOMIC_RELEASE);
}
