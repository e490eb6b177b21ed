/* engine/utf8.c — UTF-8 validation, decoding and encoding (RFC 3629: no overlong
 * forms, no surrogates U+D800..DFFF, nothing above U+10FFFF), as the tokenizer and
 * the streaming detokenizer need it. */
#include "tokenizer_internal.h"

/* Sequence length announced by a lead byte, 0 for bytes that cannot start one
 * (continuation bytes 80..BF, C0/C1 which only start overlongs, F5..FF). */
static size_t lead_len(uint8_t b)
{
    if (b < 0x80)
        return 1;
    if (b >= 0xC2 && b <= 0xDF)
        return 2;
    if (b >= 0xE0 && b <= 0xEF)
        return 3;
    if (b >= 0xF0 && b <= 0xF4)
        return 4;
    return 0;
}

/* The range the second byte must fall in after lead byte b (the first continuation
 * byte carries the overlong / surrogate / > U+10FFFF restrictions). */
static void second_range(uint8_t b, uint8_t *lo, uint8_t *hi)
{
    *lo = 0x80;
    *hi = 0xBF;
    if (b == 0xE0)
        *lo = 0xA0; /* below: overlong 3-byte forms */
    else if (b == 0xED)
        *hi = 0x9F; /* above: surrogates */
    else if (b == 0xF0)
        *lo = 0x90; /* below: overlong 4-byte forms */
    else if (b == 0xF4)
        *hi = 0x8F; /* above: beyond U+10FFFF */
}

/* Are s[1..k) valid continuation bytes of a sequence whose lead byte is s[0]? */
static bool continuation_ok(const uint8_t *s, size_t k)
{
    if (k >= 2) {
        uint8_t lo, hi;
        second_range(s[0], &lo, &hi);
        if (s[1] < lo || s[1] > hi)
            return false;
    }
    for (size_t i = 2; i < k; i++)
        if ((s[i] & 0xC0) != 0x80)
            return false;
    return true;
}

size_t bn_utf8_valid_seq(const uint8_t *s, size_t n)
{
    if (n == 0)
        return 0;
    size_t len = lead_len(s[0]);
    if (len == 0 || len > n || !continuation_ok(s, len))
        return 0;
    return len;
}

size_t bn_utf8_valid_prefix(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        /* ASCII fast path: 8 bytes at a time while none has the top bit set. */
        while (i + 8 <= n) {
            uint64_t w;
            __builtin_memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080ull)
                break;
            i += 8;
        }
        if (i >= n)
            break;
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t len = bn_utf8_valid_seq(s + i, n - i);
        if (len == 0)
            break;
        i += len;
    }
    return i;
}

size_t bn_utf8_incomplete_tail(const uint8_t *s, size_t n)
{
    /* The lead byte of an unfinished sequence is among the last 3 bytes (a 4-byte
     * sequence missing at least one byte). */
    for (size_t k = 1; k <= 3 && k <= n; k++) {
        uint8_t b = s[n - k];
        if ((b & 0xC0) == 0x80)
            continue; /* continuation byte: the lead is further back */
        size_t len = lead_len(b);
        return (len > k && continuation_ok(s + n - k, k)) ? k : 0;
    }
    return 0;
}

uint32_t bn_utf8_decode(const uint8_t *s, size_t seq_len)
{
    switch (seq_len) {
    case 1:
        return s[0];
    case 2:
        return (uint32_t)(s[0] & 0x1F) << 6 | (s[1] & 0x3F);
    case 3:
        return (uint32_t)(s[0] & 0x0F) << 12 | (uint32_t)(s[1] & 0x3F) << 6 | (s[2] & 0x3F);
    default:
        return (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3F) << 12 |
               (uint32_t)(s[2] & 0x3F) << 6 | (s[3] & 0x3F);
    }
}

size_t bn_utf8_encode(uint32_t cp, uint8_t *out)
{
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xC0 | cp >> 6);
        out[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xE0 | cp >> 12);
        out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | cp >> 18);
    out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}
