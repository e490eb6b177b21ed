/* tests/test_registry_util.h — helpers shared by the residency tests (segment,
 * loader, registry): temporary folders, test models, log capture, a private tmpfs.
 * Header-only: each test program includes it once. */
#ifndef BN_TEST_REGISTRY_UTIL_H
#define BN_TEST_REGISTRY_UTIL_H

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define TU_PATH 4096 /* composed paths */
#define TU_DIR 1024  /* temporary folders, so that folder + name fits TU_PATH */

/* A fresh private folder under $TMPDIR (or /tmp); removed by tu_rmtree. */
static inline void tu_mkdtemp(char *out, size_t cap)
{
    const char *base = getenv("TMPDIR");
    if (!base || !base[0])
        base = "/tmp";
    snprintf(out, cap, "%s/bitnet-shm-test.XXXXXX", base);
    cr_assert_not_null(mkdtemp(out), "mkdtemp in %s: %s", base, strerror(errno));
}

static inline void tu_rmtree(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) != 0)
        return;
    if (S_ISDIR(sb.st_mode)) {
        DIR *d = opendir(path);
        if (d) {
            struct dirent *de;
            while ((de = readdir(d)) != NULL) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                    continue;
                char sub[TU_PATH];
                if (snprintf(sub, sizeof sub, "%s/%s", path, de->d_name) < (int)sizeof sub)
                    tu_rmtree(sub);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

/* Number of entries (besides . and ..) in a folder; -1 if it cannot be read. */
static inline int tu_count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

/* $BITNET_TEST_DATA/ref/NAME, or skip the test saying how to get the data. */
static inline void tu_ref_model(char *out, size_t cap, const char *name)
{
    const char *data = getenv("BITNET_TEST_DATA");
    if (data && data[0]) {
        snprintf(out, cap, "%s/ref/%s", data, name);
        if (access(out, R_OK) == 0)
            return;
    }
    cr_skip_test("test model ref/%s is absent: BITNET_TEST_DATA (%s) must point at the shared "
                 "data folder (configure --with-test-data=DIR)",
                 name, data ? data : "unset");
}

static inline void tu_copy_file(const char *from, const char *to)
{
    int in = open(from, O_RDONLY);
    cr_assert(in >= 0, "open %s: %s", from, strerror(errno));
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert(out >= 0, "create %s: %s", to, strerror(errno));
    char buf[1 << 16];
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0)
        cr_assert_eq(write(out, buf, (size_t)n), n);
    close(in);
    close(out);
}

static inline void tu_write_file(const char *path, const void *data, size_t n, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    cr_assert(fd >= 0, "create %s: %s", path, strerror(errno));
    cr_assert_eq(write(fd, data, n), (ssize_t)n);
    fchmod(fd, mode);
    close(fd);
}

/* Read a whole file (malloc'd, caller frees). */
static inline void *tu_read_file(const char *path, size_t *n)
{
    int fd = open(path, O_RDONLY);
    cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
    struct stat sb;
    fstat(fd, &sb);
    void *buf = malloc((size_t)sb.st_size + 1);
    cr_assert_not_null(buf);
    size_t got = 0;
    while (got < (size_t)sb.st_size) {
        ssize_t r = pread(fd, (char *)buf + got, (size_t)sb.st_size - got, (off_t)got);
        cr_assert(r > 0);
        got += (size_t)r;
    }
    close(fd);
    *n = got;
    return buf;
}

/* Mount a tmpfs of `bytes` at dir in a private mount namespace of this process (the
 * mount vanishes with the process; /dev/shm is never touched).  As root a new mount
 * namespace suffices; otherwise an unprivileged user namespace is tried, which needs
 * a single-threaded caller (see tu_with_private_tmpfs).  Returns false (errno set)
 * when neither is permitted. */
static inline bool tu_private_tmpfs(const char *dir, unsigned long bytes)
{
    if (unshare(CLONE_NEWNS) != 0) {
        uid_t uid = getuid();
        gid_t gid = getgid();
        if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0)
            return false;
        char map[64];
        int fd = open("/proc/self/setgroups", O_WRONLY);
        if (fd >= 0) {
            (void)!write(fd, "deny", 4);
            close(fd);
        }
        snprintf(map, sizeof map, "0 %u 1", (unsigned)uid);
        fd = open("/proc/self/uid_map", O_WRONLY);
        if (fd < 0 || write(fd, map, strlen(map)) < 0)
            return false;
        close(fd);
        snprintf(map, sizeof map, "0 %u 1", (unsigned)gid);
        fd = open("/proc/self/gid_map", O_WRONLY);
        if (fd < 0 || write(fd, map, strlen(map)) < 0)
            return false;
        close(fd);
    }
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        return false;
    char opts[64];
    snprintf(opts, sizeof opts, "size=%lu,mode=0700", bytes);
    return mount("tmpfs", dir, "tmpfs", 0, opts) == 0;
}

/* Run fn in a forked child (single-threaded, as user namespaces require) that has a
 * private tmpfs of `bytes` mounted at dir.  fn returns 0 on success or writes why
 * it failed into msg.  Returns fn's result, or TU_NO_TMPFS (msg says why) when no
 * private mount is possible here. */
#define TU_NO_TMPFS 77
typedef int (*tu_tmpfs_fn)(const char *dir, char *msg, size_t cap);
static inline int tu_with_private_tmpfs(const char *dir, unsigned long bytes, tu_tmpfs_fn fn,
                                        char *msg, size_t cap)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        char m[1024] = "";
        int rc;
        if (!tu_private_tmpfs(dir, bytes)) {
            snprintf(m, sizeof m, "%s", strerror(errno));
            rc = TU_NO_TMPFS;
        } else {
            rc = fn(dir, m, sizeof m);
        }
        (void)!write(fds[1], m, strlen(m));
        _exit(rc);
    }
    close(fds[1]);
    size_t got = 0;
    ssize_t n;
    while (got + 1 < cap && (n = read(fds[0], msg + got, cap - 1 - got)) > 0)
        got += (size_t)n;
    msg[got] = '\0';
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    cr_assert(WIFEXITED(status), "the tmpfs child died (signal %d)", WTERMSIG(status));
    return WEXITSTATUS(status);
}

/* Log capture: every bn_log line is appended (newline-separated) to tu_log_buf. */
#ifdef BN_DAEMON_LOG_H
static char tu_log_buf[1 << 16];
static void tu_log_sink(void *ctx, enum bn_log_level level, const char *msg)
{
    (void)ctx;
    size_t used = strlen(tu_log_buf);
    snprintf(tu_log_buf + used, sizeof tu_log_buf - used, "%s: %s\n", bn_log_level_name(level), msg);
}
static inline void tu_log_capture(void)
{
    tu_log_buf[0] = '\0';
    bn_log_set_level(BN_LOG_DEBUG);
    bn_log_set_sink(tu_log_sink, NULL);
}
#endif

#endif /* BN_TEST_REGISTRY_UTIL_H */
