/* simd/cpu.c — CPU feature detection and the choice of kernel path. */
#include <cpuid.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simd.h"

static const char *const path_names[BN_PATH_COUNT] = {"scalar", "avx2", "avx512"};

/* XCR0 bits the OS must enable for the register state we use. */
#define XCR0_SSE_AVX 0x6u      /* XMM | YMM */
#define XCR0_AVX512 0xe0u      /* opmask | ZMM_Hi256 | Hi16_ZMM */

static unsigned long long xgetbv0(void)
{
    unsigned eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}

static bool detect(enum bn_path path)
{
    if (path == BN_PATH_SCALAR)
        return true;
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return false;
    bool osxsave = c & bit_OSXSAVE, fma = c & bit_FMA, f16c = c & bit_F16C, avx = c & bit_AVX;
    if (!osxsave || !avx)
        return false;
    unsigned long long xcr0 = xgetbv0();
    if ((xcr0 & XCR0_SSE_AVX) != XCR0_SSE_AVX)
        return false;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
        return false;
    bool avx2 = b & bit_AVX2;
    if (path == BN_PATH_AVX2)
        return avx2 && fma && f16c;
    bool avx512 = (b & bit_AVX512F) && (b & bit_AVX512BW) && (b & bit_AVX512VL) &&
                  (b & bit_AVX512DQ) && (c & bit_AVX512VNNI);
    return path == BN_PATH_AVX512 && avx2 && fma && f16c && avx512 &&
           (xcr0 & XCR0_AVX512) == XCR0_AVX512;
#else
    return false;
#endif
}

bool bn_path_supported(enum bn_path path)
{
    static _Atomic int cache[BN_PATH_COUNT]; /* 0 unknown, 1 yes, 2 no (any thread may fill it) */
    if ((unsigned)path >= BN_PATH_COUNT)
        return false;
    int v = atomic_load_explicit(&cache[path], memory_order_relaxed);
    if (!v) {
        v = detect(path) ? 1 : 2;
        atomic_store_explicit(&cache[path], v, memory_order_relaxed);
    }
    return v == 1;
}

const char *bn_path_name(enum bn_path path)
{
    return (unsigned)path < BN_PATH_COUNT ? path_names[path] : "unknown";
}

bool bn_path_parse(const char *name, enum bn_path *out)
{
    for (int p = 0; p < BN_PATH_COUNT; p++)
        if (name && strcmp(name, path_names[p]) == 0) {
            *out = (enum bn_path)p;
            return true;
        }
    return false;
}

static enum bn_path best_supported(enum bn_path limit)
{
    for (int p = (int)limit; p > BN_PATH_SCALAR; p--)
        if (bn_path_supported((enum bn_path)p))
            return (enum bn_path)p;
    return BN_PATH_SCALAR;
}

enum bn_path bn_path_default(void)
{
    static _Atomic int chosen = -1; /* threads racing here all compute the same value */
    int c = atomic_load_explicit(&chosen, memory_order_relaxed);
    if (c >= 0)
        return (enum bn_path)c;
    enum bn_path p = best_supported(BN_PATH_AVX512);
    const char *env = getenv("BITNET_KERNEL");
    if (env && *env) {
        enum bn_path want;
        if (!bn_path_parse(env, &want)) {
            fprintf(stderr, "bitnet: BITNET_KERNEL=%s is not one of scalar, avx2, avx512; using %s\n",
                    env, path_names[p]);
        } else if (!bn_path_supported(want)) {
            p = best_supported(want);
            fprintf(stderr, "bitnet: BITNET_KERNEL=%s is not supported by this CPU; using %s\n", env,
                    path_names[p]);
        } else {
            p = want;
        }
    }
    atomic_store_explicit(&chosen, (int)p, memory_order_relaxed);
    return p;
}
