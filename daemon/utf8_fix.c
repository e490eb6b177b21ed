/* daemon/utf8_fix.c — make engine text safe for the wire: protocol strings are valid
 * UTF-8 without NUL bytes, but a model may emit byte tokens that never complete a
 * character. */
#include "config.h"

#include "daemon.h"

static const char replacement[3] = {(char)0xef, (char)0xbf, (char)0xbd}; /* U+FFFD */

/* Length of the valid sequence at s (n bytes left), or 0 when s[0] starts none. */
static size_t seq_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c >= 0x01 && c <= 0x7f)
        return 1;
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c == 0xe0) {
        len = 3;
        lo = 0xa0; /* no overlongs */
    } else if ((c >= 0xe1 && c <= 0xec) || c == 0xee || c == 0xef)
        len = 3;
    else if (c == 0xed) {
        len = 3;
        hi = 0x9f; /* no surrogates */
    } else if (c == 0xf0) {
        len = 4;
        lo = 0x90;
    } else if (c >= 0xf1 && c <= 0xf3)
        len = 4;
    else if (c == 0xf4) {
        len = 4;
        hi = 0x8f; /* <= U+10FFFF */
    } else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return len;
}

int utf8_sanitize(const char *s, size_t n, struct bn_bytes *out)
{
    if (n == 0)
        return bn_bytes_append(out, "", 0, NULL);
    if (bn_rpc_utf8_valid(s, n))
        return bn_bytes_append(out, s, n, NULL);
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, run = 0; /* run: start of the valid bytes not yet appended */
    while (i < n) {
        size_t l = seq_len(p + i, n - i);
        if (l) {
            i += l;
            continue;
        }
        if (bn_bytes_append(out, s + run, i - run, NULL) < 0 ||
            bn_bytes_append(out, replacement, sizeof(replacement), NULL) < 0)
            return -1;
        i++;
        run = i;
    }
    return bn_bytes_append(out, s + run, n - run, NULL);
}
