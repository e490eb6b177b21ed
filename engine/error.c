/* engine/error.c — the engine's one error type: a sentence in a fixed buffer. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "bitnet.h"

int bn_errf(struct bn_err *err, const char *fmt, ...)
{
    if (!err)
        return -1;
    /* Format into a local buffer first so that a caller may prefix an existing
     * message: bn_errf(err, "%s: %s", path, err->msg). */
    char buf[BN_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    memcpy(err->msg, buf, sizeof buf);
    return -1;
}
