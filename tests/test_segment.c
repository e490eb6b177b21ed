/* tests/test_segment.c — libipc's shared-memory segment format and store: hashing,
 * naming, create/open/lock/unlink on both backends, validation of every kind of
 * damage, ENOSPC, and objects that are not ours. */
#include <sys/file.h>
#include <sys/mman.h>

#include "ipc.h"
#include "test_registry_util.h"

#define SEG_BYTES (4u << 20) /* a small segment: header, meta, dir, data area */
#define META_BYTES 1000u
#define N_TENSORS 3u

static char tmp[TU_DIR];
static void setup(void)
{
    tu_mkdtemp(tmp, sizeof tmp);
}
static void teardown(void)
{
    tu_rmtree(tmp);
}

/* A complete, published segment with N_TENSORS small tensors. */
static void make_segment(struct bn_seg_store *st, const char *name, struct bn_seg *s)
{
    char err[512];
    cr_assert_eq(bn_seg_create(st, name, SEG_BYTES, 0, s, err, sizeof err), 0, "%s", err);
    struct bn_seg_header *h = bn_seg_hdr(s);
    memcpy(h->magic, BN_SEG_MAGIC, 8);
    h->version = BN_SEG_VERSION;
    h->header_bytes = sizeof *h;
    h->state = BN_SEG_STATE_LOADING;
    h->layout_id = 0x10203;
    h->total_bytes = SEG_BYTES;
    h->meta_offset = BN_SEG_HEADER_BYTES;
    h->meta_bytes = META_BYTES;
    for (unsigned i = 0; i < META_BYTES; i++)
        s->base[h->meta_offset + i] = (uint8_t)(i * 7 + 1);
    h->meta_hash = bn_seg_hash64(s->base + h->meta_offset, META_BYTES, 0);
    h->dir_offset = BN_SEG_HEADER_BYTES + 1024;
    h->n_tensors = N_TENSORS;
    h->data_offset = BN_SEG_DATA_ALIGN;
    h->data_bytes = SEG_BYTES - BN_SEG_DATA_ALIGN;
    snprintf(h->src_path, sizeof h->src_path, "/models/test.gguf");
    snprintf(h->load_method, sizeof h->load_method, "pread");
    struct bn_seg_tensor *dir = bn_seg_dir(s);
    for (unsigned i = 0; i < N_TENSORS; i++) {
        snprintf(dir[i].name, sizeof dir[i].name, "blk.%u.weight", i);
        dir[i].rows = 4;
        dir[i].cols = 64;
        dir[i].offset = BN_SEG_DATA_ALIGN + i * 4096u;
        dir[i].bytes = 1024;
    }
    bn_seg_publish(s);
}

static void store_dir(struct bn_seg_store *st, const char *instance)
{
    char err[512];
    cr_assert_eq(bn_seg_store_open(st, tmp, instance, err, sizeof err), 0, "%s", err);
}

Test(hash, deterministic_and_sensitive, .init = setup, .fini = teardown)
{
    uint8_t buf[1000];
    for (unsigned i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)(i * 131 + 17);
    uint64_t h = bn_seg_hash64(buf, sizeof buf, 0);
    cr_assert_eq(h, bn_seg_hash64(buf, sizeof buf, 0));
    cr_assert_neq(h, bn_seg_hash64(buf, sizeof buf, 1), "the seed changes the hash");
    cr_assert_neq(h, bn_seg_hash64(buf, sizeof buf - 1, 0), "the length changes the hash");
    /* Every single-bit flip at every position changes the hash. */
    for (unsigned i = 0; i < sizeof buf; i++)
        for (unsigned b = 0; b < 8; b++) {
            buf[i] ^= (uint8_t)(1u << b);
            cr_assert_neq(bn_seg_hash64(buf, sizeof buf, 0), h, "flip of bit %u of byte %u", b, i);
            buf[i] ^= (uint8_t)(1u << b);
        }
    /* Short inputs use the tail paths: all lengths 0..40 give distinct hashes. */
    uint64_t seen[41];
    for (unsigned n = 0; n <= 40; n++) {
        seen[n] = bn_seg_hash64(buf, n, 0);
        for (unsigned k = 0; k < n; k++)
            cr_assert_neq(seen[k], seen[n], "lengths %u and %u collide", k, n);
    }
    /* Unaligned input hashes like aligned input. */
    uint8_t *copy = malloc(sizeof buf + 1);
    memcpy(copy + 1, buf, sizeof buf);
    cr_assert_eq(bn_seg_hash64(copy + 1, sizeof buf, 0), h);
    free(copy);
}

Test(store, instance_names, .init = setup, .fini = teardown)
{
    struct bn_seg_store st;
    char err[512];
    cr_assert_eq(bn_seg_store_open(&st, tmp, "", err, sizeof err), -1);
    cr_assert(strstr(err, "1 to 32"), "%s", err);
    cr_assert_eq(bn_seg_store_open(&st, tmp, "a/b", err, sizeof err), -1);
    cr_assert(strstr(err, "'/'"), "%s", err);
    cr_assert_eq(bn_seg_store_open(&st, tmp, "a-b", err, sizeof err), -1, "'-' separates the key");
    cr_assert_eq(bn_seg_store_open(&st, tmp, "0123456789012345678901234567890123", err, sizeof err), -1);
    cr_assert_eq(bn_seg_store_open(&st, "/nonexistent/folder", "x", err, sizeof err), -1);
    cr_assert(strstr(err, "/nonexistent/folder"), "%s", err);

    store_dir(&st, "main.1");
    char name[BN_SEG_OBJ_NAME_MAX];
    bn_seg_store_name(&st, 0x0123456789abcdefull, name);
    cr_assert_str_eq(name, "bitnetd-main.1-0123456789abcdef");
    cr_assert(bn_seg_store_owns_name(&st, name));
    cr_assert_not(bn_seg_store_owns_name(&st, "bitnetd-main.1-0123456789abcde"));
    cr_assert_not(bn_seg_store_owns_name(&st, "bitnetd-main.1-0123456789abcdef0"));
    cr_assert_not(bn_seg_store_owns_name(&st, "bitnetd-main.1-0123456789ABCDEF"));
    cr_assert_not(bn_seg_store_owns_name(&st, "bitnetd-main-0123456789abcdef"));
    cr_assert_not(bn_seg_store_owns_name(&st, "bitnetd-main.1.x-0123456789abcdef"));
    cr_assert_not(bn_seg_store_owns_name(&st, "other-main.1-0123456789abcdef"));
    bn_seg_store_close(&st);
}

static int scan_count;
static void count_name(void *ctx, const char *name)
{
    (void)ctx;
    (void)name;
    scan_count++;
}

Test(store, create_check_reopen, .init = setup, .fini = teardown)
{
    struct bn_seg_store st;
    store_dir(&st, "t");
    char name[BN_SEG_OBJ_NAME_MAX], err[512], path[TU_PATH];
    bn_seg_store_name(&st, 42, name);
    struct bn_seg s;
    make_segment(&st, name, &s);
    cr_assert_eq(bn_seg_check(&s, err, sizeof err), BN_SEG_OK, "%s", err);

    snprintf(path, sizeof path, "%s/%s", tmp, name);
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0);
    cr_assert_eq(sb.st_mode & 07777, 0600, "segments are mode 0600");
    cr_assert_eq((uint64_t)sb.st_size, SEG_BYTES);
    /* posix_fallocate reserved every block up front. */
    cr_assert_geq((uint64_t)sb.st_blocks * 512, SEG_BYTES);

    /* Another open description cannot take the lock the writer holds... */
    struct bn_seg o;
    cr_assert_eq(bn_seg_open(&st, name, &o, err, sizeof err), 0, "%s", err);
    cr_assert_eq(bn_seg_lock(&o, true), -1);
    cr_assert_eq(errno, EWOULDBLOCK);
    cr_assert_eq(bn_seg_check(&o, err, sizeof err), BN_SEG_OK, "%s", err);
    cr_assert_str_eq(bn_seg_hdr(&o)->src_path, "/models/test.gguf");
    bn_seg_close(&s);
    /* ...until the writer is gone. */
    cr_assert_eq(bn_seg_lock(&o, true), 0);

    /* A second create of the same name fails with EEXIST and leaves it intact. */
    cr_assert_eq(bn_seg_create(&st, name, SEG_BYTES, 0, &s, err, sizeof err), -1);
    cr_assert_eq(errno, EEXIST);
    cr_assert_eq(bn_seg_check(&o, err, sizeof err), BN_SEG_OK, "%s", err);

    /* Scan finds ours only. */
    tu_write_file(strcat(strcpy(path, tmp), "/unrelated"), "x", 1, 0600);
    scan_count = 0;
    cr_assert_eq(bn_seg_store_scan(&st, count_name, NULL, err, sizeof err), 1);
    cr_assert_eq(scan_count, 1);

    cr_assert_eq(bn_seg_unlink(&st, name, err, sizeof err), 0);
    cr_assert_eq(bn_seg_unlink(&st, name, err, sizeof err), 0, "ENOENT is success");
    cr_assert_eq(bn_seg_check(&o, err, sizeof err), BN_SEG_OK, "mappings outlive the name");
    bn_seg_close(&o);
    cr_assert_eq(bn_seg_open(&st, name, &o, err, sizeof err), -1);
    cr_assert_eq(errno, ENOENT);
    bn_seg_store_close(&st);
}

/* Damage a published segment with `damage`, reopen it and expect `want`. */
static void expect_status(void (*damage)(struct bn_seg *s, const char *path),
                          enum bn_seg_status want, const char *why_part)
{
    struct bn_seg_store st;
    store_dir(&st, "t");
    char name[BN_SEG_OBJ_NAME_MAX], err[512], path[TU_PATH];
    bn_seg_store_name(&st, 7, name);
    snprintf(path, sizeof path, "%s/%s", tmp, name);
    struct bn_seg s;
    make_segment(&st, name, &s);
    damage(&s, path);
    bn_seg_close(&s);
    cr_assert_eq(bn_seg_open(&st, name, &s, err, sizeof err), 0, "%s", err);
    enum bn_seg_status got = bn_seg_check(&s, err, sizeof err);
    cr_assert_eq(got, want, "status %s, want %s: %s", bn_seg_status_name(got),
                 bn_seg_status_name(want), err);
    cr_assert(strstr(err, why_part), "reason '%s' should mention '%s'", err, why_part);
    cr_assert(strstr(err, name), "reason '%s' should name the segment", err);
    bn_seg_close(&s);
    cr_assert_eq(bn_seg_unlink(&st, name, err, sizeof err), 0, "%s", err);
    bn_seg_store_close(&st);
}

static void flip_path_byte(struct bn_seg *s, const char *p)
{
    (void)p;
    bn_seg_hdr(s)->src_path[3] ^= 1;
}
static void flip_layout(struct bn_seg *s, const char *p)
{
    (void)p;
    bn_seg_hdr(s)->layout_id++;
}
static void flip_dir_byte(struct bn_seg *s, const char *p)
{
    (void)p;
    bn_seg_dir(s)[1].name[0] ^= 0x20;
}
static void flip_meta_byte(struct bn_seg *s, const char *p)
{
    (void)p;
    s->base[bn_seg_hdr(s)->meta_offset + 500] ^= 0x80;
}
static void set_loading(struct bn_seg *s, const char *p)
{
    (void)p;
    bn_seg_hdr(s)->state = BN_SEG_STATE_LOADING;
}
static void truncate_half(struct bn_seg *s, const char *p)
{
    (void)s;
    cr_assert_eq(truncate(p, SEG_BYTES / 2), 0);
}
static void truncate_tiny(struct bn_seg *s, const char *p)
{
    (void)s;
    cr_assert_eq(truncate(p, 100), 0);
}
static void zero_all(struct bn_seg *s, const char *p)
{
    (void)p;
    memset(s->base, 0, BN_SEG_HEADER_BYTES);
}
static void foreign_bytes(struct bn_seg *s, const char *p)
{
    (void)p;
    memcpy(s->base, "\x7f" "ELF\2\1\1\0", 8);
}
static void other_version(struct bn_seg *s, const char *p)
{
    (void)p;
    bn_seg_hdr(s)->version = BN_SEG_VERSION + 1;
}
/* Overlapping tensors with a consistent hash: only the directory check catches it. */
static void overlap_rehashed(struct bn_seg *s, const char *p)
{
    (void)p;
    bn_seg_dir(s)[1].offset = bn_seg_dir(s)[0].offset + 512;
    bn_seg_hdr(s)->header_hash = bn_seg_header_hash(bn_seg_hdr(s), bn_seg_dir(s));
}
static void tensor_outside_rehashed(struct bn_seg *s, const char *p)
{
    (void)p;
    bn_seg_dir(s)[2].bytes = SEG_BYTES;
    bn_seg_hdr(s)->header_hash = bn_seg_header_hash(bn_seg_hdr(s), bn_seg_dir(s));
}
static void misaligned_rehashed(struct bn_seg *s, const char *p)
{
    (void)p;
    bn_seg_dir(s)[2].offset += 32;
    bn_seg_hdr(s)->header_hash = bn_seg_header_hash(bn_seg_hdr(s), bn_seg_dir(s));
}
static void meta_outside_rehashed(struct bn_seg *s, const char *p)
{
    (void)p;
    bn_seg_hdr(s)->meta_bytes = SEG_BYTES;
    bn_seg_hdr(s)->header_hash = bn_seg_header_hash(bn_seg_hdr(s), bn_seg_dir(s));
}
static void huge_count_rehashed(struct bn_seg *s, const char *p)
{
    (void)p;
    bn_seg_hdr(s)->n_tensors = 1ull << 40;
}

Test(check, tampered_header_byte, .init = setup, .fini = teardown)
{
    expect_status(flip_path_byte, BN_SEG_CORRUPT, "header hash mismatch");
    expect_status(flip_layout, BN_SEG_CORRUPT, "header hash mismatch");
    expect_status(flip_dir_byte, BN_SEG_CORRUPT, "header hash mismatch");
}
Test(check, tampered_metadata_copy, .init = setup, .fini = teardown)
{
    expect_status(flip_meta_byte, BN_SEG_CORRUPT, "metadata copy hash");
}
Test(check, incomplete, .init = setup, .fini = teardown)
{
    expect_status(set_loading, BN_SEG_INCOMPLETE, "loading");
    expect_status(zero_all, BN_SEG_INCOMPLETE, "no header");
}
Test(check, truncated, .init = setup, .fini = teardown)
{
    expect_status(truncate_half, BN_SEG_CORRUPT, "truncated");
    expect_status(truncate_tiny, BN_SEG_CORRUPT, "truncated");
}
Test(check, foreign_and_other_version, .init = setup, .fini = teardown)
{
    expect_status(foreign_bytes, BN_SEG_FOREIGN, "magic");
    expect_status(other_version, BN_SEG_OTHER_VERSION, "version");
}
Test(check, bad_directory_even_with_valid_hash, .init = setup, .fini = teardown)
{
    expect_status(overlap_rehashed, BN_SEG_CORRUPT, "overlaps");
    expect_status(tensor_outside_rehashed, BN_SEG_CORRUPT, "leaves the object");
    expect_status(misaligned_rehashed, BN_SEG_CORRUPT, "misaligned");
    expect_status(meta_outside_rehashed, BN_SEG_CORRUPT, "outside the object");
    expect_status(huge_count_rehashed, BN_SEG_CORRUPT, "n_tensors");
}

Test(check, empty_object_is_incomplete, .init = setup, .fini = teardown)
{
    struct bn_seg_store st;
    store_dir(&st, "t");
    char name[BN_SEG_OBJ_NAME_MAX], err[512], path[TU_PATH];
    bn_seg_store_name(&st, 9, name);
    snprintf(path, sizeof path, "%s/%s", tmp, name);
    tu_write_file(path, "", 0, 0600);
    struct bn_seg s;
    cr_assert_eq(bn_seg_open(&st, name, &s, err, sizeof err), 0, "%s", err);
    cr_assert_eq(bn_seg_check(&s, err, sizeof err), BN_SEG_INCOMPLETE, "%s", err);
    bn_seg_close(&s);
    bn_seg_store_close(&st);
}

Test(store, refuses_objects_not_ours, .init = setup, .fini = teardown)
{
    struct bn_seg_store st;
    store_dir(&st, "t");
    char name[BN_SEG_OBJ_NAME_MAX], err[512], path[TU_PATH];
    bn_seg_store_name(&st, 5, name);
    snprintf(path, sizeof path, "%s/%s", tmp, name);
    tu_write_file(path, "someone else's data", 19, 0644);
    struct bn_seg s;
    cr_assert_eq(bn_seg_open(&st, name, &s, err, sizeof err), -1);
    cr_assert_eq(errno, EPERM);
    cr_assert(strstr(err, "mode 0644") && strstr(err, "left alone"), "%s", err);
    if (geteuid() == 0) {
        chmod(path, 0600);
        cr_assert_eq(chown(path, 65534, 65534), 0);
        cr_assert_eq(bn_seg_open(&st, name, &s, err, sizeof err), -1);
        cr_assert(strstr(err, "owner uid 65534"), "%s", err);
    }
    /* A symlink planted under our name is not followed. */
    unlink(path);
    cr_assert_eq(symlink("/etc/passwd", path), 0);
    cr_assert_eq(bn_seg_open(&st, name, &s, err, sizeof err), -1);
    cr_assert_eq(bn_seg_create(&st, name, SEG_BYTES, 0, &s, err, sizeof err), -1);
    cr_assert_eq(errno, EEXIST);
    struct stat sb;
    cr_assert_eq(lstat(path, &sb), 0, "the foreign object is untouched");
    cr_assert(S_ISLNK(sb.st_mode));
    bn_seg_store_close(&st);
}

Test(store, map_fd_of_a_memfd, .init = setup, .fini = teardown)
{
    /* The systemd fdstore path: a memfd holding a segment maps like any other. */
    int fd = memfd_create("bitnetd-test", MFD_CLOEXEC);
    cr_assert(fd >= 0);
    cr_assert_eq(ftruncate(fd, SEG_BYTES), 0);
    struct bn_seg s;
    char err[512];
    cr_assert_eq(bn_seg_map_fd(fd, true, "memfd", &s, err, sizeof err), 0, "%s", err);
    cr_assert_eq(s.size, SEG_BYTES);
    cr_assert_eq(bn_seg_check(&s, err, sizeof err), BN_SEG_INCOMPLETE, "all zero: not yet written");
    bn_seg_close(&s);
}

/* In the private 1 MiB tmpfs at mnt: runs in a child, reports by return value. */
static int enospc_scenario(const char *mnt, char *msg, size_t cap)
{
    struct bn_seg_store st;
    char err[512], name[BN_SEG_OBJ_NAME_MAX];
    if (bn_seg_store_open(&st, mnt, "t", err, sizeof err) != 0)
        return snprintf(msg, cap, "store: %s", err), 1;
    bn_seg_store_name(&st, 1, name);
    struct bn_seg s;
    unsigned flags[] = {0, BN_SEG_HUGEPAGE | BN_SEG_POPULATE}; /* fallocate first; fault first */
    for (int k = 0; k < 2; k++) {
        if (bn_seg_create(&st, name, 8u << 20, flags[k], &s, err, sizeof err) != -1)
            return snprintf(msg, cap, "flags %u: an 8 MiB segment fit in 1 MiB", flags[k]), 1;
        if (errno != ENOSPC)
            return snprintf(msg, cap, "flags %u: errno %d (%s), want ENOSPC", flags[k], errno,
                            strerror(errno)), 1;
        if (!strstr(err, "not enough shared memory") || !strstr(err, name))
            return snprintf(msg, cap, "unclear message: %s", err), 1;
        if (tu_count_entries(mnt) != 0)
            return snprintf(msg, cap, "flags %u: a half segment was left behind", flags[k]), 1;
    }
    /* Created unreserved, the space runs out when reserving or prefaulting, with
     * ENOSPC and no SIGBUS. */
    uint64_t free_bytes = 0;
    if (bn_seg_store_free_bytes(&st, &free_bytes, err, sizeof err) != 0 || free_bytes > (1u << 20))
        return snprintf(msg, cap, "free bytes %llu of a 1 MiB tmpfs (%s)",
                        (unsigned long long)free_bytes, err), 1;
    if (bn_seg_create(&st, name, 8u << 20, BN_SEG_NO_RESERVE, &s, err, sizeof err) != 0)
        return snprintf(msg, cap, "unreserved create: %s", err), 1;
    err[0] = '\0';
    if (bn_seg_prefault(&s, s.base + 4096, 4u << 20, err, sizeof err) != -1 || errno != ENOSPC ||
        !strstr(err, "not enough shared memory"))
        return snprintf(msg, cap, "prefault past the space: errno %d, '%s'", errno, err), 1;
    err[0] = '\0';
    if (bn_seg_reserve(&s, 0, 8u << 20, BN_SEG_POPULATE, err, sizeof err) != -1 || errno != ENOSPC ||
        !strstr(err, "not enough shared memory"))
        return snprintf(msg, cap, "reserve past the space: errno %d, '%s'", errno, err), 1;
    if (bn_seg_reserve(&s, 100, 4096, 0, err, sizeof err) != -1 || errno != EINVAL)
        return snprintf(msg, cap, "an unaligned reserve was accepted"), 1;
    bn_seg_close(&s);
    bn_seg_unlink(&st, name, err, sizeof err);
    if (tu_count_entries(mnt) != 0)
        return snprintf(msg, cap, "the unreserved segment was not removed"), 1;
    /* A segment that fits still works there. */
    if (bn_seg_create(&st, name, 512u << 10, 0, &s, err, sizeof err) != 0)
        return snprintf(msg, cap, "512 KiB: %s", err), 1;
    bn_seg_close(&s);
    bn_seg_unlink(&st, name, err, sizeof err);
    bn_seg_store_close(&st);
    return 0;
}

Test(store, enospc_leaves_nothing, .init = setup, .fini = teardown, .timeout = 30)
{
    char mnt[TU_PATH], msg[1024];
    snprintf(mnt, sizeof mnt, "%s/tmpfs", tmp);
    cr_assert_eq(mkdir(mnt, 0700), 0);
    int rc = tu_with_private_tmpfs(mnt, 1u << 20, enospc_scenario, msg, sizeof msg);
    if (rc == TU_NO_TMPFS)
        cr_skip_test("cannot mount a private 1 MiB tmpfs (%s): neither root nor unprivileged "
                     "user namespaces are available, so ENOSPC cannot be simulated honestly",
                     msg);
    cr_assert_eq(rc, 0, "%s", msg);
}

Test(store, posix_shm_backend, .init = setup, .fini = teardown)
{
    struct bn_seg_store st;
    char err[512], name[BN_SEG_OBJ_NAME_MAX], inst[32], path[TU_PATH];
    snprintf(inst, sizeof inst, "test%ld", (long)getpid());
    cr_assert_eq(bn_seg_store_open(&st, NULL, inst, err, sizeof err), 0, "%s", err);
    bn_seg_store_name(&st, 0xabc, name);
    struct bn_seg s;
    make_segment(&st, name, &s);
    snprintf(path, sizeof path, "/dev/shm/%s", name);
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0, "POSIX shm objects live in /dev/shm");
    cr_assert_eq(sb.st_mode & 07777, 0600);
    char where[TU_PATH];
    bn_seg_store_describe(&st, name, where, sizeof where);
    cr_assert_str_eq(where, path);
    scan_count = 0;
    cr_assert_eq(bn_seg_store_scan(&st, count_name, NULL, err, sizeof err), 1);
    struct bn_seg o;
    cr_assert_eq(bn_seg_open(&st, name, &o, err, sizeof err), 0, "%s", err);
    cr_assert_eq(bn_seg_check(&o, err, sizeof err), BN_SEG_OK, "%s", err);
    bn_seg_close(&o);
    bn_seg_close(&s);
    cr_assert_eq(bn_seg_unlink(&st, name, err, sizeof err), 0);
    cr_assert_neq(stat(path, &sb), 0);
    bn_seg_store_close(&st);
}

/* kB of ShmemPmdMapped in /proc/self/smaps for the mapping that starts at p. */
static long pmd_mapped_kb(const void *p)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    cr_assert(f);
    char line[512], start[32];
    snprintf(start, sizeof start, "%lx-", (unsigned long)(uintptr_t)p);
    long kb = -1;
    bool in = false;
    while (fgets(line, sizeof line, f)) {
        if (strchr(line, '-') && strncmp(line, start, strlen(start)) == 0)
            in = true;
        else if (in && sscanf(line, "ShmemPmdMapped: %ld kB", &kb) == 1)
            break;
    }
    fclose(f);
    return kb;
}

Test(store, huge_pages_by_collapse, .init = setup, .fini = teardown)
{
    /* Mappings are 2 MiB-aligned; bn_seg_collapse puts the data area on huge pages
     * (or says why not), the data written after it reads back, and a second mapping
     * of the object (a reattach) maps the huge pages whole. */
    struct bn_seg_store st;
    char err[512], name[BN_SEG_OBJ_NAME_MAX], inst[32];
    snprintf(inst, sizeof inst, "test%ld", (long)getpid());
    cr_assert_eq(bn_seg_store_open(&st, NULL, inst, err, sizeof err), 0, "%s", err);
    bn_seg_store_name(&st, 0xdef, name);
    const uint64_t size = 4 * BN_SEG_DATA_ALIGN;
    struct bn_seg s;
    cr_assert_eq(bn_seg_create(&st, name, size, BN_SEG_NO_RESERVE, &s, err, sizeof err), 0, "%s",
                 err);
    cr_assert_eq((uintptr_t)s.base % BN_SEG_DATA_ALIGN, 0, "mapping at a 2 MiB boundary");
    int rc = bn_seg_collapse(&s, BN_SEG_DATA_ALIGN, size - BN_SEG_DATA_ALIGN);
    int e = errno;
    if (rc != 0)
        cr_assert(e == EINVAL || e == EAGAIN || e == ENOMEM || e == EBUSY,
                  "collapse refused with an undocumented errno %d (%s)", e, strerror(e));
    cr_assert_eq(bn_seg_reserve(&s, 0, size, BN_SEG_POPULATE, err, sizeof err), 0, "%s", err);
    for (uint64_t i = BN_SEG_DATA_ALIGN; i < size; i += 4096)
        s.base[i] = (uint8_t)(i >> 12);
    struct bn_seg o;
    cr_assert_eq(bn_seg_open(&st, name, &o, err, sizeof err), 0, "%s", err);
    cr_assert_eq((uintptr_t)o.base % BN_SEG_DATA_ALIGN, 0);
    for (uint64_t i = BN_SEG_DATA_ALIGN; i < size; i += 4096)
        cr_assert_eq(o.base[i], (uint8_t)(i >> 12), "byte %llu", (unsigned long long)i);
    if (rc == 0) {
        long kb = pmd_mapped_kb(o.base);
        cr_assert_geq(kb, (long)((size - BN_SEG_DATA_ALIGN) >> 10),
                      "the collapsed 6 MiB map as huge pages in a second mapping (%ld kB)", kb);
    } else {
        cr_log_info("MADV_COLLAPSE refused here (%s): 4 KiB pages", strerror(e));
    }
    bn_seg_close(&o);
    bn_seg_close(&s);
    cr_assert_eq(bn_seg_unlink(&st, name, err, sizeof err), 0);
    bn_seg_store_close(&st);
}
