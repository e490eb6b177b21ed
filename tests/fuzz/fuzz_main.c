/* tests/fuzz/fuzz_main.c — libFuzzer's two hooks for one target, chosen at compile
 * time: -DFUZZ_TARGET=fuzz_target_gguf (see tests/fuzz/Makemodule.am). */
#include <stdio.h>
#include <stdlib.h>

#include "fuzz.h"

#ifndef FUZZ_TARGET
#error "compile with -DFUZZ_TARGET=fuzz_target_<name>"
#endif

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fini(void)
{
    if (FUZZ_TARGET.fini)
        FUZZ_TARGET.fini();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char why[1024] = "";
    if (FUZZ_TARGET.init && FUZZ_TARGET.init(why, sizeof why)) {
        fprintf(stderr, "fuzz-%s: cannot start: %s\n", FUZZ_TARGET.name, why);
        exit(2);
    }
    atexit(fini);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return FUZZ_TARGET.one(data, size);
}
