/* tests/fuzz/fuzz_common.c — what the fuzz targets share: failing loudly, finding the
 * test data, and the two vocabularies (loaded once per process). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "tokenizer_json.h"

void fuzz_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("fuzz: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fflush(stderr);
    abort();
}

void fuzz_dump(const char *what, const void *data, size_t n)
{
    const unsigned char *p = data;
    size_t show = n < 64 ? n : 64;
    fprintf(stderr, "  %s (%zu bytes): \"", what, n);
    for (size_t i = 0; i < show; i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"' && p[i] != '\\')
            fputc(p[i], stderr);
        else
            fprintf(stderr, "\\x%02x", p[i]);
    }
    fprintf(stderr, "\"%s\n", show < n ? "..." : "");
}

const char *fuzz_data_dir(void)
{
    const char *d = getenv("BITNET_TEST_DATA");
    if (d && *d)
        return d;
#ifdef BN_FUZZ_DATA_DIR
    if (*BN_FUZZ_DATA_DIR)
        return BN_FUZZ_DATA_DIR;
#endif
    return NULL;
}

/* $data/rel into buf, or -1 with why filled when the data folder or file is absent. */
static int data_file(const char *rel, char *buf, size_t len, char *why, size_t why_len)
{
    const char *dir = fuzz_data_dir();
    if (!dir) {
        snprintf(why, why_len, "no test data folder: set BITNET_TEST_DATA to the shared/data folder "
                               "(or configure --with-test-data) to fuzz with the real vocabularies");
        return -1;
    }
    snprintf(buf, len, "%s/%s", dir, rel);
    if (access(buf, R_OK) != 0) {
        snprintf(why, why_len, "test data %s is absent (see shared/data/README.md for where it comes from)", buf);
        return -1;
    }
    return 0;
}

const struct bn_vocab *fuzz_vocab_full(char *why, size_t why_len)
{
    static struct bn_vocab *v;
    if (v)
        return v;
    char path[4096];
    if (data_file("llama3/tokenizer.json", path, sizeof path, why, why_len))
        return NULL;
    struct bn_err err = { { 0 } };
    if (vocab_from_tokenizer_json(&v, path, &err)) {
        snprintf(why, why_len, "%s", err.msg);
        return NULL;
    }
    return v;
}

const struct bn_vocab *fuzz_vocab_small(char *why, size_t why_len)
{
    static struct bn_vocab *v;
    if (v)
        return v;
    char path[4096];
    if (data_file("ref/tinyA-i2s.gguf", path, sizeof path, why, why_len))
        return NULL;
    struct bn_err err = { { 0 } };
    struct bn_mapped_file m;
    struct bn_gguf *g = NULL;
    if (bn_map_file(path, &m, &err)) {
        snprintf(why, why_len, "%s", err.msg);
        return NULL;
    }
    if (bn_gguf_open(&g, m.base, m.size, path, 0, &err) || bn_vocab_from_gguf(&v, g, &err))
        snprintf(why, why_len, "%s", err.msg);
    bn_gguf_close(g);
    bn_unmap_file(&m);
    return v;
}
