/* engine/mapfile.c — map a whole file read-only. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bitnet.h"

int bn_map_file(const char *path, struct bn_mapped_file *out, struct bn_err *err)
{
    out->base = NULL;
    out->size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return bn_errf(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return bn_errf(err, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return bn_errf(err, "%s: not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return bn_errf(err, "%s: the file is empty", path);
    }
    if ((uint64_t)st.st_size > (uint64_t)SIZE_MAX) {
        close(fd);
        return bn_errf(err, "%s: %lld bytes do not fit in this process's address space", path,
                       (long long)st.st_size);
    }
    void *base = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd); /* the mapping keeps the file open */
    if (base == MAP_FAILED)
        return bn_errf(err, "%s: cannot map %lld bytes: %s", path, (long long)st.st_size,
                       strerror(e));
    out->base = base;
    out->size = (uint64_t)st.st_size;
    return 0;
}

void bn_unmap_file(struct bn_mapped_file *m)
{
    if (m && m->base) {
        munmap(m->base, (size_t)m->size);
        m->base = NULL;
        m->size = 0;
    }
}
