/* libipc/segment_hash.c — the 64-bit hash that guards segment headers, metadata
 * copies and model identities.
 *
 * Four independent lanes each absorb one 8-byte word of every 32-byte stripe
 * (multiply, rotate, multiply), so the loop has four dependency chains and runs near
 * memory speed; the tail and the length are folded in at the end and the result is
 * avalanched so that any changed input bit flips about half of the output bits.  It
 * checks for accidental change (a torn write, a stale copy, a flipped byte); it is
 * not meant to resist an adversary, who could simply write a matching header.
 */
#include "ipc.h"

#include <string.h>

/* Odd 64-bit constants with well-mixed bits (golden-ratio and prime derived). */
#define K1 0x9E3779B185EBCA87ull
#define K2 0xC2B2AE3D27D4EB4Full
#define K3 0x165667B19E3779F9ull
#define K4 0x85EBCA77C2B2AE63ull
#define K5 0x27D4EB2F165667C5ull

static inline uint64_t rotl64(uint64_t x, unsigned r)
{
    return (x << r) | (x >> (64 - r));
}

static inline uint64_t load64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v); /* unaligned-safe; little-endian hosts only matter here */
    return v;
}

static inline uint64_t lane_step(uint64_t acc, uint64_t word)
{
    acc += word * K2;
    acc = rotl64(acc, 31);
    return acc * K1;
}

static inline uint64_t fold_lane(uint64_t h, uint64_t lane)
{
    h ^= lane_step(0, lane);
    return h * K1 + K4;
}

uint64_t bn_seg_hash64(const void *data, size_t n, uint64_t seed)
{
    const unsigned char *p = data;
    const unsigned char *end = p + n;
    uint64_t h;

    if (n >= 32) {
        uint64_t a = seed + K1 + K2, b = seed + K2, c = seed, d = seed - K1;
        const unsigned char *stop = end - 32;
        do {
            a = lane_step(a, load64(p));
            b = lane_step(b, load64(p + 8));
            c = lane_step(c, load64(p + 16));
            d = lane_step(d, load64(p + 24));
            p += 32;
        } while (p <= stop);
        h = rotl64(a, 1) + rotl64(b, 7) + rotl64(c, 12) + rotl64(d, 18);
        h = fold_lane(h, a);
        h = fold_lane(h, b);
        h = fold_lane(h, c);
        h = fold_lane(h, d);
    } else {
        h = seed + K5;
    }
    h += (uint64_t)n;

    while (end - p >= 8) {
        h ^= lane_step(0, load64(p));
        h = rotl64(h, 27) * K1 + K4;
        p += 8;
    }
    if (end - p >= 4) {
        uint32_t w;
        memcpy(&w, p, sizeof w);
        h ^= (uint64_t)w * K1;
        h = rotl64(h, 23) * K2 + K3;
        p += 4;
    }
    while (p < end) {
        h ^= (uint64_t)*p * K5;
        h = rotl64(h, 11) * K1;
        p++;
    }

    /* Final avalanche: xor-shift-multiply rounds. */
    h ^= h >> 33;
    h *= K2;
    h ^= h >> 29;
    h *= K3;
    h ^= h >> 32;
    return h;
}
