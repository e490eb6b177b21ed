/* tests/test_fuzz_regress.c — replays the fuzz corpora through the fuzz targets.
 *
 * For each target (tests/fuzz/fuzz_*.c) every file of tests/fuzz/corpus/TARGET/ (the
 * checked-in seeds) and tests/fuzz/regressions/TARGET/ (minimized inputs that once
 * crashed or broke a property) is run through the target's own entry point, built
 * here with gcc, so each bug the fuzzers found stays fixed.  A broken property aborts
 * (the test fails with the target's message on stderr); with --enable-sanitizers
 * ASan/UBSan check the same runs.  See docs/FUZZING.md.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Run every regular file of $BITNET_SRC_DIR/tests/fuzz/KIND/TARGET through t, in name
 * order; returns how many. */
static size_t replay_dir(const struct fuzz_target *t, const char *kind)
{
    const char *src = getenv("BITNET_SRC_DIR");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests/fuzz/%s/%s", src, kind, t->name);
    DIR *d = opendir(dir);
    if (!d)
        return 0; /* no saved inputs of this kind yet */
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || strcmp(e->d_name, "README.md") == 0)
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            names = realloc(names, cap * sizeof *names);
            cr_assert(names);
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof *names, cmp_names);
    size_t ran = 0;
    for (size_t i = 0; i < n; i++) {
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
            free(names[i]);
            continue;
        }
        /* an exact-size heap copy, so a sanitizer build catches reads past the input */
        size_t len = (size_t)st.st_size;
        uint8_t *buf = malloc(len ? len : 1);
        FILE *f = fopen(path, "rb");
        bool ok = buf && f && fread(buf, 1, len, f) == len;
        if (f)
            fclose(f);
        if (!ok) {
            if (t->fini)
                t->fini();
            cr_assert_fail("cannot read %s", path);
        }
        fprintf(stderr, "fuzz-%s: %s/%s/%s (%zu bytes)\n", t->name, kind, t->name, names[i], len);
        t->one(buf, len);
        free(buf);
        free(names[i]);
        ran++;
    }
    free(names);
    return ran;
}

static void replay(const struct fuzz_target *t)
{
    /* checked before init: a failed assertion would skip fini (temporary folders) */
    const char *src = getenv("BITNET_SRC_DIR");
    cr_assert(src && *src, "BITNET_SRC_DIR is not set (run through make check)");
    char why[1024] = "";
    if (t->init && t->init(why, sizeof why))
        cr_skip_test("fuzz target %s cannot start: %s", t->name, why);
    size_t seeds = replay_dir(t, "corpus");
    size_t crashes = replay_dir(t, "regressions");
    if (t->fini)
        t->fini();
    cr_log_info("fuzz-%s: %zu seeds and %zu saved crash inputs replayed", t->name, seeds, crashes);
    cr_assert(seeds > 0, "tests/fuzz/corpus/%s/ holds no seed", t->name);
}

Test(fuzz_regress, gguf) { replay(&fuzz_target_gguf); }
Test(fuzz_regress, ipc) { replay(&fuzz_target_ipc); }
Test(fuzz_regress, tokenizer) { replay(&fuzz_target_tokenizer); }
Test(fuzz_regress, chat) { replay(&fuzz_target_chat); }
Test(fuzz_regress, stop) { replay(&fuzz_target_stop); }
Test(fuzz_regress, config) { replay(&fuzz_target_config); }
