/* tests/fuzz/fuzz.h — the fuzz targets and what they share.
 *
 * A target is a function over arbitrary bytes that drives the real code (nothing
 * mocked) and checks properties of what it gets back.  The same functions run under
 * libFuzzer (tests/fuzz/fuzz_main.c, built by `make fuzz` with clang and
 * -fsanitize=fuzzer,address,undefined) and in `make check` (tests/test_fuzz_regress.c,
 * gcc), which replays the seed corpus and every saved crash file: an input that once
 * broke something keeps being run through exactly the code that found it.
 *
 * A property that does not hold ends in fuzz_fail(): a message on stderr and abort(),
 * which libFuzzer records as a crash (and Criterion as a failed test).
 */
#ifndef BN_FUZZ_H
#define BN_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bitnet.h"

struct fuzz_target {
    const char *name; /* "gguf": binary fuzz-gguf, folders corpus/gguf, regressions/gguf */
    /* Once per process, before the first input: 0, or -1 with `why` filled (e.g. the
     * test data is absent).  NULL: nothing to prepare. */
    int (*init)(char *why, size_t why_len);
    /* One input; always returns 0 (libFuzzer's convention). */
    int (*one)(const uint8_t *data, size_t size);
    /* Release what init made (temporary folders); NULL: nothing. */
    void (*fini)(void);
};

extern const struct fuzz_target fuzz_target_gguf;      /* fuzz_gguf.c: GGUF reader, writer round trip, vocab */
extern const struct fuzz_target fuzz_target_ipc;       /* fuzz_ipc.c: framing, envelope, every schema */
extern const struct fuzz_target fuzz_target_tokenizer; /* fuzz_tokenizer.c: encode/decode round trip */
extern const struct fuzz_target fuzz_target_chat;      /* fuzz_chat.c: chat render/tokenize */
extern const struct fuzz_target fuzz_target_stop;      /* fuzz_stop.c: stop-string matcher, stopper */
extern const struct fuzz_target fuzz_target_config;    /* fuzz_config.c: bitnetd's config parser */

/* Print "fuzz: <message>" to stderr and abort(). */
_Noreturn void fuzz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print up to 64 bytes of data as a C string literal (after a fuzz_fail message). */
void fuzz_dump(const char *what, const void *data, size_t n);

/* The test data folder: $BITNET_TEST_DATA, else the one configure found
 * (BN_FUZZ_DATA_DIR), else NULL. */
const char *fuzz_data_dir(void);
/* The 128256-token Llama-3 vocabulary (from $data/llama3/tokenizer.json) and the
 * 1003-token one of the reference models ($data/ref/tinyA-i2s.gguf), each loaded once
 * and kept for the life of the process (never freed: every input uses them).  NULL
 * with `why` filled when the data is absent or does not load. */
const struct bn_vocab *fuzz_vocab_full(char *why, size_t why_len);
const struct bn_vocab *fuzz_vocab_small(char *why, size_t why_len);

/* A small deterministic generator (splitmix64) for choices derived from the input,
 * e.g. how to cut it into chunks. */
static inline uint64_t fuzz_mix(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

#endif /* BN_FUZZ_H */
