/* engine/vocab.c — building a byte-level BPE vocabulary (struct bn_vocab) from token
 * texts, types and merges, and the read-only queries on it.
 *
 * The BPE of tokenizer.c works on token ids, never on strings: every merge
 * "left right" is resolved once here to (left id, right id) -> (rank, result id),
 * and every NORMAL token's GPT-2 byte-level text ("Ġthe") is turned back into the
 * bytes it stands for (" the"), so that tokenizing needs no byte-to-unicode mapping.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

/* GPT-2's byte-to-unicode map: bytes 0x21..0x7E, 0xA1..0xAC and 0xAE..0xFF stand for
 * the code point of the same value; the other 68 bytes (controls, space, DEL, 0x80..
 * 0xA0, soft hyphen) for U+0100 + their order among those 68.  So every mapped code
 * point is below U+0100 + 68. */
#define BYTE_MAP_CODEPOINTS (256 + 68)

static bool byte_maps_to_itself(unsigned b)
{
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

/* cp_to_byte[cp] = the byte code point cp stands for, -1 when cp is not a mapped
 * code point. */
static void byte_map_reverse(int16_t cp_to_byte[BYTE_MAP_CODEPOINTS])
{
    for (int i = 0; i < BYTE_MAP_CODEPOINTS; i++)
        cp_to_byte[i] = -1;
    unsigned extra = 0;
    for (unsigned b = 0; b < 256; b++) {
        if (byte_maps_to_itself(b))
            cp_to_byte[b] = (int16_t)b;
        else
            cp_to_byte[256 + extra++] = (int16_t)b;
    }
}

/* Decode a byte-level text into the bytes it stands for; false if some character is
 * not a mapped code point.  dst has room for n bytes (a decoded text is never longer
 * than its encoding). */
static bool byte_level_decode(const int16_t *cp_to_byte, const uint8_t *s, size_t n, uint8_t *dst,
                              size_t *dst_len)
{
    size_t i = 0, o = 0;
    while (i < n) {
        size_t len = bn_utf8_valid_seq(s + i, n - i);
        if (len == 0)
            return false;
        uint32_t cp = bn_utf8_decode(s + i, len);
        if (cp >= BYTE_MAP_CODEPOINTS || cp_to_byte[cp] < 0)
            return false;
        dst[o++] = (uint8_t)cp_to_byte[cp];
        i += len;
    }
    *dst_len = o;
    return true;
}

uint64_t bn_vocab_hash(const void *p, size_t n)
{
    const uint8_t *s = p;
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a 64 */
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static uint64_t next_pow2(uint64_t x)
{
    uint64_t p = 16;
    while (p < x)
        p <<= 1;
    return p;
}

/* Tokens whose bytes BPE may produce (and that whole-piece lookups may return). */
static bool type_is_mergeable(uint8_t t)
{
    return t == BN_TOKEN_NORMAL || t == BN_TOKEN_BYTE || t == BN_TOKEN_UNDEFINED;
}

/* Tokens matched as whole strings in the input before splitting. */
static bool type_is_special(uint8_t t)
{
    return t == BN_TOKEN_CONTROL || t == BN_TOKEN_USER_DEFINED;
}

static struct bn_str entry(const char *blob, const uint32_t *off, int32_t id)
{
    return (struct bn_str){ blob + off[id], off[id + 1] - off[id] - 1 }; /* minus the NUL */
}

/* Find s[0..n) in an index over blob/off; -1 when absent. */
static int32_t index_find(const struct bn_index_slot *index, uint32_t mask, const char *blob,
                          const uint32_t *off, const void *s, size_t n)
{
    uint32_t h = (uint32_t)bn_vocab_hash(s, n);
    for (uint32_t i = h & mask;; i = (i + 1) & mask) {
        int32_t id = index[i].id;
        if (id < 0)
            return -1;
        if (index[i].hash != h)
            continue;
        struct bn_str e = entry(blob, off, id);
        if (e.len == n && memcmp(e.ptr, s, n) == 0)
            return id;
    }
}

/* Insert id under its entry unless an equal entry is there already (the lower id,
 * inserted first, wins). */
static void index_insert(struct bn_index_slot *index, uint32_t mask, const char *blob, const uint32_t *off,
                         int32_t id)
{
    struct bn_str e = entry(blob, off, id);
    uint32_t h = (uint32_t)bn_vocab_hash(e.ptr, e.len);
    for (uint32_t i = h & mask;; i = (i + 1) & mask) {
        int32_t other = index[i].id;
        if (other < 0) {
            index[i] = (struct bn_index_slot){ id, h };
            return;
        }
        if (index[i].hash != h)
            continue;
        struct bn_str o = entry(blob, off, other);
        if (o.len == e.len && memcmp(o.ptr, e.ptr, e.len) == 0)
            return;
    }
}

static uint64_t merge_hash(uint64_t key)
{
    key ^= key >> 31;
    key *= 0x9e3779b97f4a7c15ull;
    return key ^ (key >> 29);
}

const struct bn_merge_slot *bn_vocab_find_merge(const struct bn_vocab *v, int32_t left, int32_t right)
{
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    uint64_t i = merge_hash(key) & v->merge_mask;
    for (;;) {
        const struct bn_merge_slot *s = &v->merges[i];
        if (s->key == key)
            return s;
        if (s->key == BN_MERGE_EMPTY)
            return NULL;
        i = (i + 1) & v->merge_mask;
    }
}

int32_t bn_vocab_find_bytes(const struct bn_vocab *v, const void *p, size_t n)
{
    return index_find(v->bytes_index, v->bytes_mask, v->bytes, v->bytes_off, p, n);
}

int32_t bn_vocab_find(const struct bn_vocab *v, const char *s, size_t len)
{
    if (!v || (!s && len))
        return -1;
    return index_find(v->text_index, v->text_mask, v->text, v->text_off, s, len);
}

void bn_vocab_free(struct bn_vocab *v)
{
    if (!v)
        return;
    free(v->label);
    free(v->types);
    free(v->text);
    free(v->text_off);
    free(v->bytes);
    free(v->bytes_off);
    free(v->text_index);
    free(v->bytes_index);
    free(v->merges);
    free(v->special);
    if (v->split_re)
        pcre2_code_free(v->split_re);
    free(v);
}

/* Pre-tokenizer names that mean the Llama-3 split regex (llama.cpp's names). */
static const char *const llama3_pre_names[] = { "llama-bpe", "llama3", "llama-v3" };
#define LLAMA3_N_VOCAB 128256 /* Llama-3 / 2B-4T: 128000 BPE tokens + 256 special */

static int check_pre(const struct bn_vocab_spec *spec, const char *label, struct bn_err *err)
{
    if (!spec->pre.ptr) {
        if (spec->n_tokens == LLAMA3_N_VOCAB)
            return 0; /* the 2B-4T file has no pre key: treated as llama-bpe (REFERENCE §6) */
        return bn_errf(err,
                       "%s: tokenizer.ggml.pre is absent and the vocabulary has %zu tokens (not %d): "
                       "cannot tell which pre-tokenizer it needs; only the Llama-3 one "
                       "(tokenizer.ggml.pre = \"llama-bpe\") is supported",
                       label, spec->n_tokens, LLAMA3_N_VOCAB);
    }
    for (size_t i = 0; i < sizeof llama3_pre_names / sizeof *llama3_pre_names; i++)
        if (spec->pre.len == strlen(llama3_pre_names[i]) &&
            memcmp(spec->pre.ptr, llama3_pre_names[i], spec->pre.len) == 0)
            return 0;
    int shown = spec->pre.len > 64 ? 64 : (int)spec->pre.len;
    return bn_errf(err,
                   "%s: tokenizer.ggml.pre = \"%.*s\" is not supported: bitnetd implements the "
                   "Llama-3 pre-tokenizer only (\"llama-bpe\", \"llama3\", \"llama-v3\")",
                   label, shown, spec->pre.ptr);
}

/* Copy the texts, compute each token's bytes, check types and lengths. */
static int load_tokens(struct bn_vocab *v, const struct bn_vocab_spec *spec, struct bn_err *err)
{
    size_t n = spec->n_tokens;
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        struct bn_str t = spec->tokens[i];
        if (t.len > BN_VOCAB_MAX_TOKEN_BYTES)
            return bn_errf(err, "%s: token %zu is %llu bytes long (limit BN_VOCAB_MAX_TOKEN_BYTES = %d)",
                           v->label, i, (unsigned long long)t.len, BN_VOCAB_MAX_TOKEN_BYTES);
        if (t.len && !t.ptr)
            return bn_errf(err, "%s: token %zu has no text", v->label, i);
        total += t.len + 1;
    }
    if (total >= UINT32_MAX)
        return bn_errf(err, "%s: the token texts take %llu bytes (limit 4 GiB)", v->label,
                       (unsigned long long)total);

    v->types = malloc(n);
    v->text = malloc(total);
    v->bytes = malloc(total);
    v->text_off = malloc((n + 1) * sizeof *v->text_off);
    v->bytes_off = malloc((n + 1) * sizeof *v->bytes_off);
    if (!v->types || !v->text || !v->bytes || !v->text_off || !v->bytes_off)
        return bn_errf(err, "%s: out of memory for %zu tokens", v->label, n);

    int16_t cp_to_byte[BYTE_MAP_CODEPOINTS];
    byte_map_reverse(cp_to_byte);
    uint32_t to = 0, bo = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t type = spec->types ? spec->types[i] : BN_TOKEN_NORMAL;
        if (type < BN_TOKEN_UNDEFINED || type > BN_TOKEN_BYTE)
            return bn_errf(err, "%s: token %zu has tokenizer.ggml.token_type %d (known types are 0..6)",
                           v->label, i, type);
        v->types[i] = (uint8_t)type;
        struct bn_str t = spec->tokens[i];
        v->text_off[i] = to;
        if (t.len)
            memcpy(v->text + to, t.ptr, t.len);
        to += (uint32_t)t.len;
        v->text[to++] = 0;

        v->bytes_off[i] = bo;
        size_t blen = 0;
        bool decoded = false;
        if (type_is_mergeable((uint8_t)type))
            decoded = byte_level_decode(cp_to_byte, (const uint8_t *)t.ptr, t.len,
                                        (uint8_t *)v->bytes + bo, &blen);
        if (!decoded) {
            if (type == BN_TOKEN_NORMAL) {
                int shown = t.len > 64 ? 64 : (int)t.len;
                return bn_errf(err,
                               "%s: NORMAL token %zu \"%.*s\" is not GPT-2 byte-level text "
                               "(a gpt2 vocabulary maps every byte to one of 256 characters)",
                               v->label, i, shown, t.ptr);
            }
            /* Other types stand for their literal text. */
            if (t.len)
                memcpy(v->bytes + bo, t.ptr, t.len);
            blen = t.len;
            if (type_is_mergeable((uint8_t)type))
                v->types[i] = BN_TOKEN_UNUSED; /* keep it out of the BPE index */
        }
        bo += (uint32_t)blen;
        v->bytes[bo++] = 0;
    }
    v->text_off[n] = to;
    v->bytes_off[n] = bo;
    return 0;
}

static int build_indexes(struct bn_vocab *v, struct bn_err *err)
{
    uint64_t size = next_pow2((uint64_t)v->n_tokens * 2);
    v->text_index = malloc(size * sizeof *v->text_index);
    v->bytes_index = malloc(size * sizeof *v->bytes_index);
    if (!v->text_index || !v->bytes_index)
        return bn_errf(err, "%s: out of memory for the token index", v->label);
    for (uint64_t i = 0; i < size; i++)
        v->text_index[i] = v->bytes_index[i] = (struct bn_index_slot){ -1, 0 };
    v->text_mask = v->bytes_mask = (uint32_t)(size - 1);
    for (int32_t id = 0; id < v->n_tokens; id++) {
        if (v->text_off[id + 1] - v->text_off[id] > 1)
            index_insert(v->text_index, v->text_mask, v->text, v->text_off, id);
        if (type_is_mergeable(v->types[id]) && v->bytes_off[id + 1] - v->bytes_off[id] > 1)
            index_insert(v->bytes_index, v->bytes_mask, v->bytes, v->bytes_off, id);
    }
    for (unsigned b = 0; b < 256; b++) {
        uint8_t byte = (uint8_t)b;
        v->byte_token[b] = bn_vocab_find_bytes(v, &byte, 1);
        if (v->byte_token[b] < 0)
            return bn_errf(err,
                           "%s: no token stands for the byte 0x%02x; a byte-level BPE vocabulary "
                           "needs all 256 single-byte tokens",
                           v->label, b);
    }
    return 0;
}

static int lookup_merge_part(const struct bn_vocab *v, size_t rank, struct bn_str m, const char *part,
                             size_t len, int32_t *id, struct bn_err *err)
{
    *id = bn_vocab_find(v, part, len);
    if (*id < 0 || !type_is_mergeable(v->types[*id])) {
        int shown = m.len > 64 ? 64 : (int)m.len;
        int pshown = len > 64 ? 64 : (int)len;
        return bn_errf(err, "%s: tokenizer.ggml.merges[%zu] \"%.*s\": \"%.*s\" is not a %stoken", v->label,
                       rank, shown, m.ptr, pshown, part, *id < 0 ? "" : "regular ");
    }
    return 0;
}

static int build_merges(struct bn_vocab *v, const struct bn_vocab_spec *spec, struct bn_err *err)
{
    if (spec->n_merges > BN_VOCAB_MAX_MERGES)
        return bn_errf(err, "%s: %zu merges (limit BN_VOCAB_MAX_MERGES = %d)", v->label, spec->n_merges,
                       BN_VOCAB_MAX_MERGES);
    uint64_t size = next_pow2((uint64_t)spec->n_merges * 2);
    v->merges = malloc(size * sizeof *v->merges);
    if (!v->merges)
        return bn_errf(err, "%s: out of memory for %zu merges", v->label, spec->n_merges);
    for (uint64_t i = 0; i < size; i++)
        v->merges[i].key = BN_MERGE_EMPTY;
    v->merge_mask = size - 1;
    v->n_merges = spec->n_merges;

    char joined[2 * BN_VOCAB_MAX_TOKEN_BYTES];
    for (size_t r = 0; r < spec->n_merges; r++) {
        struct bn_str m = spec->merges[r];
        /* "left right": parts are byte-level text, which never holds a space (the
         * space byte maps to 'Ġ'), so the separator is the first space after the
         * first character. */
        const char *sp = m.len > 1 && m.ptr ? memchr(m.ptr + 1, ' ', m.len - 1) : NULL;
        if (!sp) {
            int shown = m.len > 64 ? 64 : (int)m.len;
            return bn_errf(err, "%s: tokenizer.ggml.merges[%zu] \"%.*s\" is not \"left right\"", v->label, r,
                           shown, m.ptr ? m.ptr : "");
        }
        size_t llen = (size_t)(sp - m.ptr), rlen = m.len - llen - 1;
        int32_t left, right, result;
        if (lookup_merge_part(v, r, m, m.ptr, llen, &left, err) ||
            lookup_merge_part(v, r, m, sp + 1, rlen, &right, err))
            return -1;
        memcpy(joined, m.ptr, llen); /* both parts are tokens, so each fits */
        memcpy(joined + llen, sp + 1, rlen);
        if (lookup_merge_part(v, r, m, joined, llen + rlen, &result, err))
            return -1;
        uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
        uint64_t i = merge_hash(key) & v->merge_mask;
        while (v->merges[i].key != BN_MERGE_EMPTY && v->merges[i].key != key)
            i = (i + 1) & v->merge_mask;
        if (v->merges[i].key == key)
            continue; /* a repeated pair keeps its first (lowest) rank */
        v->merges[i] = (struct bn_merge_slot){ key, (int32_t)r, result };
    }
    return 0;
}

/* Specials sorted by first byte, then longest first (so the first match found at a
 * position is the longest), then lowest id. */
struct special_key {
    uint8_t first;
    uint32_t len;
    int32_t id;
};

static int cmp_special(const void *a, const void *b)
{
    const struct special_key *x = a, *y = b;
    if (x->first != y->first)
        return x->first < y->first ? -1 : 1;
    if (x->len != y->len)
        return x->len > y->len ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int build_specials(struct bn_vocab *v, struct bn_err *err)
{
    size_t n = 0;
    for (int32_t id = 0; id < v->n_tokens; id++)
        if (type_is_special(v->types[id]) && v->text_off[id + 1] - v->text_off[id] > 1)
            n++;
    struct special_key *keys = malloc((n ? n : 1) * sizeof *keys);
    v->special = malloc((n ? n : 1) * sizeof *v->special);
    if (!keys || !v->special) {
        free(keys);
        return bn_errf(err, "%s: out of memory", v->label);
    }
    n = 0;
    for (int32_t id = 0; id < v->n_tokens; id++)
        if (type_is_special(v->types[id]) && v->text_off[id + 1] - v->text_off[id] > 1)
            keys[n++] = (struct special_key){ (uint8_t)v->text[v->text_off[id]],
                                              v->text_off[id + 1] - v->text_off[id], id };
    qsort(keys, n, sizeof *keys, cmp_special);
    memset(v->special_first, 0, sizeof v->special_first);
    for (size_t i = 0; i < n; i++) {
        v->special[i] = keys[i].id;
        v->special_first[keys[i].first + 1]++;
    }
    for (int b = 0; b < 256; b++)
        v->special_first[b + 1] += v->special_first[b];
    free(keys);
    return 0;
}

static int check_id(const struct bn_vocab *v, const char *key, int64_t id, int32_t *out, struct bn_err *err)
{
    if (id < 0) {
        *out = -1;
        return 0;
    }
    if (id >= v->n_tokens)
        return bn_errf(err, "%s: %s = %lld is out of range (the vocabulary has %d tokens)", v->label, key,
                       (long long)id, v->n_tokens);
    *out = (int32_t)id;
    return 0;
}

static void add_eog(struct bn_vocab *v, int32_t id)
{
    if (id < 0 || v->n_eog >= BN_VOCAB_MAX_EOG)
        return;
    for (int i = 0; i < v->n_eog; i++)
        if (v->eog[i] == id)
            return;
    v->eog[v->n_eog++] = id;
}

static int32_t find_control(const struct bn_vocab *v, const char *text)
{
    int32_t id = bn_vocab_find(v, text, strlen(text));
    return id >= 0 && v->types[id] == BN_TOKEN_CONTROL ? id : -1;
}

static int compile_split_regex(struct bn_vocab *v, struct bn_err *err)
{
    int code;
    PCRE2_SIZE offset;
    v->split_re = pcre2_compile((PCRE2_SPTR)BN_LLAMA3_SPLIT_REGEX, PCRE2_ZERO_TERMINATED,
                                PCRE2_UTF | PCRE2_UCP, &code, &offset, NULL);
    if (!v->split_re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        return bn_errf(err, "%s: the Llama-3 split regex does not compile at offset %zu: %s", v->label,
                       (size_t)offset, (const char *)msg);
    }
    /* JIT makes splitting several times faster; without it (no JIT support in this
     * libpcre2 build) the interpreter gives the same pieces. */
    (void)pcre2_jit_compile(v->split_re, PCRE2_JIT_COMPLETE);
    return 0;
}

int bn_vocab_from_arrays(struct bn_vocab **out, const struct bn_vocab_spec *spec, struct bn_err *err)
{
    *out = NULL;
    const char *label = spec->label ? spec->label : "vocabulary";
    if (spec->n_tokens == 0 || spec->n_tokens > BN_VOCAB_MAX_TOKENS)
        return bn_errf(err, "%s: tokenizer.ggml.tokens has %zu entries (accepted: 1 .. %d)", label,
                       spec->n_tokens, BN_VOCAB_MAX_TOKENS);
    if (spec->n_merges && !spec->merges)
        return bn_errf(err, "%s: %zu merges announced but none given", label, spec->n_merges);
    if (check_pre(spec, label, err))
        return -1;

    struct bn_vocab *v = calloc(1, sizeof *v);
    if (!v || !(v->label = strdup(label))) {
        free(v);
        return bn_errf(err, "%s: out of memory", label);
    }
    v->n_tokens = (int32_t)spec->n_tokens;
    v->ignore_merges = true; /* Llama-3 (tokenizer.json "ignore_merges": true) */
    if (load_tokens(v, spec, err) || build_indexes(v, err) || build_merges(v, spec, err) ||
        build_specials(v, err) || check_id(v, "tokenizer.ggml.bos_token_id", spec->bos_id, &v->bos, err) ||
        check_id(v, "tokenizer.ggml.eos_token_id", spec->eos_id, &v->eos, err) ||
        check_id(v, "tokenizer.ggml.eot_token_id", spec->eot_id, &v->eot, err) ||
        compile_split_regex(v, err)) {
        bn_vocab_free(v);
        return -1;
    }
    if (v->eot < 0)
        v->eot = find_control(v, "<|eot_id|>");
    v->add_bos = spec->add_bos;
    add_eog(v, v->eos);
    add_eog(v, v->eot);
    add_eog(v, find_control(v, "<|end_of_text|>"));
    add_eog(v, find_control(v, "<|endoftext|>"));
    *out = v;
    return 0;
}

int32_t bn_vocab_n_tokens(const struct bn_vocab *v) { return v->n_tokens; }
int32_t bn_vocab_bos(const struct bn_vocab *v) { return v->bos; }
int32_t bn_vocab_eos(const struct bn_vocab *v) { return v->eos; }
int32_t bn_vocab_eot(const struct bn_vocab *v) { return v->eot; }
bool bn_vocab_add_bos(const struct bn_vocab *v) { return v->add_bos; }

bool bn_vocab_is_eog(const struct bn_vocab *v, int32_t id)
{
    for (int i = 0; i < v->n_eog; i++)
        if (v->eog[i] == id)
            return true;
    return false;
}

enum bn_token_type bn_vocab_token_type(const struct bn_vocab *v, int32_t id)
{
    if (id < 0 || id >= v->n_tokens)
        return BN_TOKEN_UNDEFINED;
    return (enum bn_token_type)v->types[id];
}

bool bn_vocab_is_control(const struct bn_vocab *v, int32_t id)
{
    return id >= 0 && id < v->n_tokens && v->types[id] == BN_TOKEN_CONTROL;
}

struct bn_str bn_vocab_token_text(const struct bn_vocab *v, int32_t id)
{
    if (id < 0 || id >= v->n_tokens)
        return (struct bn_str){ NULL, 0 };
    return entry(v->text, v->text_off, id);
}

struct bn_str bn_vocab_token_bytes(const struct bn_vocab *v, int32_t id)
{
    if (id < 0 || id >= v->n_tokens)
        return (struct bn_str){ NULL, 0 };
    return entry(v->bytes, v->bytes_off, id);
}
