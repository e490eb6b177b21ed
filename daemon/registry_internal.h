/* daemon/registry_internal.h — shared between daemon/registry.c (the registry) and
 * daemon/registry_segment.c (model files and the segments made from them).  Not
 * used outside the registry. */
#ifndef BN_DAEMON_REGISTRY_INTERNAL_H
#define BN_DAEMON_REGISTRY_INTERNAL_H

#include <sys/stat.h>

#include "registry.h"

#define REGISTRY_META_FIRST_READ (1u << 20) /* bytes read first to parse the GGUF header */
#define REGISTRY_META_MAX (128u << 20)      /* GGUF header+metadata+tensor infos limit */

/* A model file opened for loading: identity, the GGUF header region and the plan. */
struct model_file {
    char path[BN_SEG_PATH_MAX]; /* canonical (realpath) */
    int fd;                     /* O_RDONLY; -1 when closed */
    struct stat st;             /* at open */
    uint8_t *meta;              /* file bytes [0, meta_read) (owned) */
    uint64_t meta_read;
    uint64_t meta_bytes;        /* start of the GGUF data section */
    uint64_t meta_hash;         /* bn_seg_hash64(meta, meta_bytes, 0) */
    struct bn_gguf *g;          /* HEADER_ONLY over meta (owned) */
    struct bn_pack_plan plan;   /* owned */
};
/* Open, check (regular file, GGUF, tensors inside the file) and plan a model file.
 * Never blocks on a FIFO.  On failure everything is released. */
int model_file_open(struct model_file *mf, const char *path, enum bn_path kpath,
                    enum bn_type prefer, struct bn_err *err);
void model_file_close(struct model_file *mf);
/* The 64-bit key that names the segment of (file identity, layout). */
uint64_t model_key(uint64_t dev, uint64_t ino, uint64_t size, int64_t mtime_ns,
                   uint32_t layout_id, uint32_t kpath, uint32_t prefer, const char *path);
uint64_t model_file_key(const struct model_file *mf, enum bn_path kpath, enum bn_type prefer);
int64_t stat_mtime_ns(const struct stat *st);

/* Where the parts of a model's segment go. */
struct seg_layout {
    uint64_t meta_offset, dir_offset, data_offset, total;
    uint64_t *offsets; /* plan.n tensor offsets (owned) */
};
int seg_layout_make(struct seg_layout *lay, const struct model_file *mf, struct bn_err *err);
void seg_layout_free(struct seg_layout *lay);
/* Header (state LOADING), metadata copy and directory of a fresh segment. */
void seg_write_front(struct bn_seg *s, const struct model_file *mf, const struct seg_layout *lay,
                     enum bn_path kpath, enum bn_type prefer);

/* A ready segment as the engine sees it. */
struct seg_view {
    struct bn_gguf *meta;        /* HEADER_ONLY over the segment's copy */
    struct bn_pack_plan plan;
    const void **data;           /* plan.n pointers into the segment */
    struct bn_model_source source;
};
/* Build the view of a structurally valid segment, checking first that it was made for
 * this kernel path and preference, then that its directory is exactly what this
 * build's plan makes of the metadata (layout id, types, sizes).  0 or -1 (err says
 * what differs). */
int seg_view_open(struct seg_view *v, const struct bn_seg *s, enum bn_path kpath,
                  enum bn_type prefer, struct bn_err *err);
void seg_view_close(struct seg_view *v);
/* A structurally valid segment still matches its model file: file present with the
 * same identity, name matching the identity, and the file's header bytes hashing to
 * meta_hash.  0 or -1 (err says what changed). */
int seg_check_source(const struct bn_seg *s, const struct bn_seg_store *st, struct bn_err *err);

#endif /* BN_DAEMON_REGISTRY_INTERNAL_H */
