/* simd/mem.c — memory for the weight matrices the kernels stream. */
#include <sys/mman.h>

#include "internal.h"

#define BN_HUGE_PAGE (2u << 20) /* x86-64 transparent huge page */

void *bn_weights_alloc(size_t bytes)
{
    if (bytes == 0)
        return NULL;
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
#ifdef MADV_HUGEPAGE
    if (bytes >= BN_HUGE_PAGE)
        madvise(p, bytes, MADV_HUGEPAGE); /* advice only: fine if the OS says no */
#endif
    return p;
}

void bn_weights_free(void *p, size_t bytes)
{
    if (p)
        munmap(p, bytes);
}
