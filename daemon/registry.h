/* daemon/registry.h — model residency: the loader that fills a shared-memory segment
 * from a GGUF file (daemon/loader.c) and the registry of resident models
 * (daemon/registry*.c).  Internal to bitnetd: the server, tests and bench-load
 * include it; clients never do.
 *
 * Errors: functions that can fail take a `struct bn_err *` (may be NULL) and fill it
 * with one sentence naming the file, the field or the limit.  Decisions a user may
 * want to know about (fallbacks, discarded segments, refused mlock) are logged with
 * bn_log (daemon/log.h).
 */
#ifndef BN_DAEMON_REGISTRY_H
#define BN_DAEMON_REGISTRY_H

#include <stdbool.h>
#include <stdint.h>

#include "bitnet.h"
#include "ipc.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ==== Loader: model file -> tensors in their final place (daemon/loader.c) ==== */

enum load_method {
    LOAD_IO_URING = 0, /* several reads in flight; falls back to LOAD_PREAD when the
                        * kernel refuses io_uring or BITNET_NO_IO_URING=1 */
    LOAD_PREAD = 1,    /* one pread at a time */
    LOAD_MMAP = 2,     /* map the file and copy: a baseline for bench-load.  A file
                        * truncated under it raises SIGBUS, so the daemon never uses it */
};
enum load_direct {
    LOAD_DIRECT_AUTO = 0, /* O_DIRECT when less than LOAD_CACHED_FOR_BUFFERED of the
                           * file is in the page cache (cold: it also keeps the model
                           * from sitting in RAM twice, page cache + segment), buffered
                           * otherwise (warm: copying from the cache beats the disk) */
    LOAD_DIRECT_ON = 1,   /* O_DIRECT whenever the filesystem allows it */
    LOAD_DIRECT_OFF = 2,  /* always through the page cache */
};

#define LOAD_QUEUE_DEPTH_DEFAULT 16u
#define LOAD_QUEUE_DEPTH_MAX 256u           /* io_uring submission queue entries */
#define LOAD_CHUNK_DEFAULT (1u << 20)       /* bytes per read */
#define LOAD_CHUNK_MIN 4096u                /* and chunk sizes are multiples of it */
#define LOAD_CHUNK_MAX (64u << 20)
#define LOAD_STAGING_DEFAULT (64u << 20)    /* bytes of repack buffers in use at once */
#define LOAD_DIO_SLACK 4096u                /* free bytes around each tensor of a
                                             * segment, so that O_DIRECT may read whole
                                             * blocks straight into place */
#define LOAD_CACHED_FOR_BUFFERED 0.5        /* AUTO: page-cache fraction that means warm */
#define LOAD_PACK_THREADS_MAX 16u

/* bytes done so far out of total (sum of the tensors' file bytes); called on the
 * loading thread after each completed read. */
typedef void (*load_progress_fn)(void *ctx, uint64_t done, uint64_t total);

struct load_opts {
    enum load_method method;
    unsigned queue_depth;    /* io_uring reads in flight, 1..LOAD_QUEUE_DEPTH_MAX */
    uint64_t chunk_bytes;    /* bytes per read, LOAD_CHUNK_MIN..LOAD_CHUNK_MAX, multiple of 4096 */
    enum load_direct direct;
    uint64_t staging_bytes;  /* soft cap on repack staging memory (one tensor may exceed it) */
    bool async_workers;      /* io_uring, buffered reads: IOSQE_ASYNC, so page-cache copies
                              * run on kernel worker threads in parallel instead of one at a
                              * time in the submitter (default true: 2-3x faster warm loads) */
    unsigned pack_threads;   /* threads that repack staged tensors while reads go on
                              * (default: online CPUs, <= LOAD_PACK_THREADS_MAX); 0: the
                              * loading thread packs between reads */
};
void load_opts_default(struct load_opts *o);
/* 0, or -1 naming the out-of-range field. */
int load_opts_check(const struct load_opts *o, struct bn_err *err);
const char *load_method_name(enum load_method m); /* "io_uring", "pread", "mmap" */
bool load_method_parse(const char *name, enum load_method *out);

struct load_job {
    int fd;                          /* the model file, open read-only (not owned) */
    const char *path;                /* for messages */
    uint64_t file_size;              /* bytes, from fstat before loading */
    const struct bn_pack_plan *plan; /* what to read and how to lay it out */
    void *const *dst;                /* plan->n destinations of entries[i].dst_bytes bytes */
    bool dst_laid_out;               /* dst follows load_layout (LOAD_DIO_SLACK around each
                                      * tensor): O_DIRECT may read straight into place */
    load_progress_fn progress;       /* may be NULL */
    void *progress_ctx;
    /* Called before the loader stores a tensor's bytes into dst from user space
     * (copies out of staging buffers, repacks, mmap copies), on whichever thread does
     * it; -1 (err filled) fails the load.  The registry faults the range in there, so
     * that a full tmpfs is an error rather than SIGBUS.  NULL: nothing to do.  Reads
     * by the kernel straight into dst need no such step (they fail with EFAULT). */
    int (*prepare_dst)(void *ctx, void *dst, uint64_t bytes, struct bn_err *err);
    void *prepare_ctx;
};
struct load_report {
    enum load_method method; /* what ran (io_uring may have fallen back to pread) */
    bool direct_io;          /* some reads used O_DIRECT */
    double cached_fraction;  /* of the tensor bytes in the page cache before (-1: not measured) */
    uint64_t bytes_read;     /* from the file, O_DIRECT block rounding included */
    double seconds;
};
/* Fill every dst[i] with plan->entries[i] in its dst_type: read the file bytes and,
 * when the layout differs, repack them with bn_pack_tensor (on pack threads) as soon
 * as the tensor's last read completes.  A read that hits the end of the file early fails (the file
 * shrank).  Returns 0 or -1 (err filled; dst contents are then undefined). */
int load_run(const struct load_job *job, const struct load_opts *opts, struct load_report *rep,
             struct bn_err *err);

/* Place the plan's tensors from `data_offset` on (BN_SEG_TENSOR_ALIGN-aligned, in plan
 * order, LOAD_DIO_SLACK bytes apart, and tensors kept as stored at the same offset
 * modulo 4096 as in the file, so that O_DIRECT can read them in place).  Writes
 * plan->n offsets and the end of the last tensor's slack.  -1 on size overflow. */
int load_layout(const struct bn_pack_plan *plan, uint64_t data_offset, uint64_t *offsets,
                uint64_t *end);

/* ==== Registry of resident models (daemon/registry*.c) ====
 *
 * One shared-memory segment per (model file, kernel layout); loads of the same file
 * share it (reference count); the last unload unlinks it.  registry_open finds the
 * segments a previous daemon of the same instance left, keeps the ones that are
 * complete and still match their file and this build's layout (without touching their
 * tensor pages), and discards the rest.  Thread-safe: loads may run on worker threads;
 * a second load of a file being loaded waits for the first.
 */
struct registry_config {
    const char *instance;        /* daemon instance name ([A-Za-z0-9_.], <= 32 chars) */
    const char *shm_dir;         /* NULL: POSIX shared memory; else a folder for the segments */
    uint64_t mem_limit;          /* bytes of segments the registry may hold; 0: no limit */
    enum bn_path path;           /* BN_PATH_COUNT: bn_path_default() */
    enum bn_type prefer_ternary; /* BN_TYPE_COUNT: fastest on the path */
    bool mlock;                  /* lock segments in RAM as pages are touched */
    bool huge_pages;             /* ask for transparent huge pages on new segments */
    struct load_opts load;
};
void registry_config_default(struct registry_config *c);

struct registry;
struct resident; /* one model resident in a segment */

struct resident_info {
    const char *path;        /* canonical model path */
    const char *segment;     /* object name, e.g. "bitnetd-main-0123456789abcdef" */
    uint64_t bytes;          /* segment size */
    unsigned refs;           /* loads not yet unloaded */
    const char *method;      /* how its data came: "io_uring", "pread", "mmap", "reattach" */
    double load_seconds;     /* of that load or reattach, from the first byte to ready */
    bool direct_io;          /* the load used O_DIRECT */
};

/* Open the registry: scan the store and reattach/discard (each decision logged).
 * On success *out is owned by the caller (registry_close). */
int registry_open(struct registry **out, const struct registry_config *cfg, struct bn_err *err);
/* Unmap everything and free the registry.  Segments stay for the next start.  No
 * load may be running, and every resident handle (and any engine model using its
 * memory) becomes invalid. */
void registry_close(struct registry *r);

/* Make the model at `path` resident and take a reference.  Reuses a segment of the
 * same file and layout (reattached or loaded before), else loads one.  progress may
 * be NULL.  On success *out stays valid until registry_unload (or registry_close).
 * Errors: bad path (missing, unreadable, directory, FIFO, not GGUF), file changed
 * while loading, mem_limit exceeded, shared memory full, name taken by a foreign
 * object.  Nothing is left behind on failure. */
int registry_load(struct registry *r, const char *path, load_progress_fn progress,
                  void *progress_ctx, struct resident **out, struct bn_err *err);
/* Drop one reference; the last one unmaps and unlinks the segment (every pointer
 * into it, e.g. an engine model opened from resident_source, must be gone). */
void registry_unload(struct registry *r, struct resident *m);
/* Unlink reattached segments nobody has loaded since registry_open; returns how many. */
int registry_discard_unused(struct registry *r);
/* Bytes of all segments the registry holds (mem_limit accounting). */
uint64_t registry_used_bytes(struct registry *r);
/* Up to cap residents (fields valid until the next registry call that changes the
 * set); returns how many there are. */
size_t registry_list(struct registry *r, struct resident_info *out, size_t cap);

/* What the engine opens a model from: metadata (HEADER_ONLY over the segment's copy),
 * the pack plan and one pointer per plan entry into the segment.  Owned by m. */
const struct bn_model_source *resident_source(const struct resident *m);
void resident_describe(const struct resident *m, struct resident_info *out);
/* The mapped segment (read-only use). */
const struct bn_seg *resident_segment(const struct resident *m);

#ifdef __cplusplus
}
#endif
#endif /* BN_DAEMON_REGISTRY_H */
