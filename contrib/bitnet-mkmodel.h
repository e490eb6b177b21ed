/* contrib/bitnet-mkmodel.h — shared by the files of bitnet-mkmodel only. */
#ifndef BN_MKMODEL_H
#define BN_MKMODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bitnet.h"

/* Token types as llama.cpp numbers them (tokenizer.ggml.token_type). */
#define MK_TOKEN_NORMAL 1
#define MK_TOKEN_UNUSED 5
#define MK_TOKEN_CONTROL 3

/* Ids are int32 in GGUF token arrays; anything near this is not a real vocabulary. */
#define MK_MAX_VOCAB (1 << 24)
/* The Llama-3 vocabulary of BitNet b1.58 2B-4T: its GGUF carries no
 * tokenizer.ggml.pre key (REFERENCE §1), every other vocabulary gets "llama-bpe". */
#define MK_LLAMA3_VOCAB 128256

/* A vocabulary to write: either owned arrays (built-in or tokenizer.json), or the
 * tokenizer.* keys of another GGUF copied verbatim. */
struct mk_vocab {
    char **tokens;   /* [n] NUL-terminated texts, owned */
    int32_t *types;  /* [n] MK_TOKEN_* */
    size_t n;
    char **merges;   /* [n_merges] "left right", rank order, owned */
    size_t n_merges;
    int64_t bos, eos;
    char *chat_template; /* NULL when none */

    /* --vocab FILE.gguf: the keys come from here (tokens etc. above unused) */
    struct bn_mapped_file src_map;
    struct bn_gguf *src;
};

/* The small built-in byte-level vocabulary: the 256 GPT-2 byte tokens, merges
 * learned by BPE from a built-in text, and the Llama-3 special tokens. */
int mk_vocab_builtin(struct mk_vocab *v, struct bn_err *err);
/* A Hugging Face tokenizer.json (BPE); tokenizer_config.json beside it, when
 * present, gives the chat template. */
int mk_vocab_from_json(struct mk_vocab *v, const char *path, struct bn_err *err);
/* The tokenizer.* keys of another GGUF file. */
int mk_vocab_from_gguf(struct mk_vocab *v, const char *path, struct bn_err *err);
/* --vocab FILE: a GGUF (by its magic) or a tokenizer.json. */
int mk_vocab_load(struct mk_vocab *v, const char *path, struct bn_err *err);
/* Write the tokenizer.* keys. */
void mk_vocab_set_keys(struct bn_gguf_writer *w, const struct mk_vocab *v);
void mk_vocab_free(struct mk_vocab *v);

#endif
