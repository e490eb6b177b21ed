/* tests/tokenizer_fixture.h — vocabularies for the tokenizer / chat tests.
 *
 * full_vocab(): the 128256-token Llama-3 vocabulary.  From a GGUF written by
 * $BITNET_BUILD_DIR/contrib/bitnet-mkmodel (--preset tiny --vocab tokenizer.json)
 * when that tool is built, else straight from $BITNET_TEST_DATA/llama3/tokenizer.json
 * (tests/tokenizer_json.h).  The test log says which path was used.
 * gguf_vocab(): any GGUF file's vocabulary (e.g. the 1003-token ref models). */
#ifndef BN_TEST_TOKENIZER_FIXTURE_H
#define BN_TEST_TOKENIZER_FIXTURE_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bitnet.h"
#include "tokenizer_json.h"

/* $BITNET_TEST_DATA/rel, or skip the test when the data folder is absent. */
static inline char *fx_data_path(const char *rel)
{
    const char *dir = getenv("BITNET_TEST_DATA");
    char *p = NULL;
    if (dir && *dir)
        cr_assert(asprintf(&p, "%s/%s", dir, rel) > 0);
    if (!p || access(p, R_OK) != 0) {
        free(p);
        cr_skip_test("test data %s is absent: set BITNET_TEST_DATA (configure --with-test-data) to the "
                     "shared/data folder; see its README.md for where the files come from",
                     rel);
    }
    return p;
}

static inline char *fx_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert(f, "cannot open %s", path);
    cr_assert(fseek(f, 0, SEEK_END) == 0);
    long n = ftell(f);
    cr_assert(n >= 0);
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    cr_assert(buf);
    cr_assert(fread(buf, 1, (size_t)n, f) == (size_t)n);
    buf[n] = 0;
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static inline struct bn_vocab *fx_gguf_vocab(const char *path)
{
    struct bn_err err = { { 0 } };
    struct bn_mapped_file m;
    struct bn_gguf *g;
    struct bn_vocab *v;
    cr_assert(bn_map_file(path, &m, &err) == 0, "%s", err.msg);
    cr_assert(bn_gguf_open(&g, m.base, m.size, path, 0, &err) == 0, "%s", err.msg);
    cr_assert(bn_vocab_from_gguf(&v, g, &err) == 0, "%s", err.msg);
    bn_gguf_close(g);
    bn_unmap_file(&m);
    return v;
}

/* Run argv, wait, true on exit status 0. */
static inline bool fx_run(char *const argv[])
{
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        execv(argv[0], argv);
        _exit(127);
    }
    int status;
    cr_assert(waitpid(pid, &status, 0) == pid);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static inline struct bn_vocab *fx_full_vocab(void)
{
    char *json = fx_data_path("llama3/tokenizer.json");
    const char *build = getenv("BITNET_BUILD_DIR");
    char *tool = NULL;
    struct bn_vocab *v = NULL;
    if (build && *build && asprintf(&tool, "%s/contrib/bitnet-mkmodel", build) > 0 && access(tool, X_OK) == 0) {
        const char *tmp = getenv("TMPDIR");
        char *tdir = NULL;
        cr_assert(asprintf(&tdir, "%s/bn-tok-XXXXXX", tmp && *tmp ? tmp : "/tmp") > 0);
        cr_assert(mkdtemp(tdir), "mkdtemp %s failed", tdir);
        char *out = NULL;
        cr_assert(asprintf(&out, "%s/vocab.gguf", tdir) > 0);
        char *argv[] = { tool, "--preset", "tiny", "--vocab", json, "--out", out, NULL };
        cr_assert(fx_run(argv), "%s --preset tiny --vocab %s --out %s failed", tool, json, out);
        v = fx_gguf_vocab(out);
        unlink(out);
        rmdir(tdir);
        free(out);
        free(tdir);
        fprintf(stderr, "full vocabulary: GGUF written by contrib/bitnet-mkmodel from %s\n", json);
    } else {
        struct bn_err err = { { 0 } };
        cr_assert(vocab_from_tokenizer_json(&v, json, &err) == 0, "%s", err.msg);
        fprintf(stderr, "full vocabulary: %s (contrib/bitnet-mkmodel is not built)\n", json);
    }
    free(tool);
    free(json);
    cr_assert_eq(bn_vocab_n_tokens(v), 128256);
    return v;
}

#endif /* BN_TEST_TOKENIZER_FIXTURE_H */
