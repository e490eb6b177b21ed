/* engine/tokenizer_internal.h — what vocab.c, tokenizer.c and tokenizer_decode.c
 * share: the layout of struct bn_vocab and the UTF-8 helpers of utf8.c.  Not part
 * of the engine's public API (that is engine/bitnet.h). */
#ifndef BN_TOKENIZER_INTERNAL_H
#define BN_TOKENIZER_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "bitnet.h"

/* Llama-3 split regex (REFERENCE §6), verbatim from the model's tokenizer.json. */
#define BN_LLAMA3_SPLIT_REGEX                                                              \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}|"              \
    " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

#define BN_VOCAB_MAX_EOG 8 /* distinct end-of-generation ids kept */

/* One rank-ordered merge "left right" -> result, keyed by the ids of both parts. */
struct bn_merge_slot {
    uint64_t key; /* (uint64_t)left << 32 | right; BN_MERGE_EMPTY for a free slot */
    int32_t rank; /* position in tokenizer.ggml.merges: lower merges first */
    int32_t result;
};
#define BN_MERGE_EMPTY UINT64_MAX

/* One slot of a string index: the hash is kept so that probing past other strings
 * rarely needs to read them. */
struct bn_index_slot {
    int32_t id; /* -1: empty */
    uint32_t hash;
};

struct bn_vocab {
    char *label;
    int32_t n_tokens;
    uint8_t *types; /* [n_tokens] enum bn_token_type */

    /* Stored texts (as in the GGUF) and the bytes each token stands for, both as one
     * blob with n_tokens + 1 offsets; each entry is followed by a NUL. */
    char *text;
    uint32_t *text_off;
    char *bytes;
    uint32_t *bytes_off;

    /* Open-addressing hash indexes (power-of-two sizes, id -1 = empty slot):
     * text_index over every token's stored text, bytes_index over the bytes of the
     * tokens BPE can produce (everything but CONTROL / USER_DEFINED / UNKNOWN /
     * UNUSED), used for whole-piece lookups (ignore_merges) and byte tokens. */
    struct bn_index_slot *text_index;
    uint32_t text_mask;
    struct bn_index_slot *bytes_index;
    uint32_t bytes_mask;
    int32_t byte_token[256]; /* id of the token for each single byte */

    struct bn_merge_slot *merges;
    uint64_t merge_mask;
    size_t n_merges;

    /* Tokens matched as whole strings before splitting (CONTROL and USER_DEFINED),
     * grouped by first byte, longest first inside a group: ids special[first[b] ..
     * first[b + 1]) start with byte b. */
    int32_t *special;
    uint32_t special_first[257];

    int32_t bos, eos, eot;
    bool add_bos;
    bool ignore_merges; /* a piece that is itself a token is emitted whole */
    int32_t eog[BN_VOCAB_MAX_EOG];
    int n_eog;

    pcre2_code *split_re; /* compiled with UTF|UCP, JIT when available; read-only */
};

/* ---- utf8.c ---- */
/* Length of the UTF-8 sequence starting at s[0..n) if it is complete and valid
 * (no overlongs, surrogates or code points above U+10FFFF), else 0. */
size_t bn_utf8_valid_seq(const uint8_t *s, size_t n);
/* Length of the longest prefix of s[0..n) that is valid UTF-8. */
size_t bn_utf8_valid_prefix(const uint8_t *s, size_t n);
/* Number of trailing bytes of s[0..n) that are the valid beginning of a sequence
 * still missing bytes (0..3): what a streaming decoder must hold back. */
size_t bn_utf8_incomplete_tail(const uint8_t *s, size_t n);
/* Decode one valid sequence at s (length from bn_utf8_valid_seq). */
uint32_t bn_utf8_decode(const uint8_t *s, size_t seq_len);
/* Encode cp (< 0x110000, not a surrogate) into out[4]; returns its length. */
size_t bn_utf8_encode(uint32_t cp, uint8_t *out);

/* ---- vocab.c ---- */
/* FNV-1a over bytes: the hash of both string indexes. */
uint64_t bn_vocab_hash(const void *p, size_t n);
/* Id whose bytes (what it stands for) are exactly p[0..n), among the tokens BPE can
 * produce; -1 when none. */
int32_t bn_vocab_find_bytes(const struct bn_vocab *v, const void *p, size_t n);
/* The merge of (left, right) or NULL. */
const struct bn_merge_slot *bn_vocab_find_merge(const struct bn_vocab *v, int32_t left,
                                                int32_t right);

#endif /* BN_TOKENIZER_INTERNAL_H */
