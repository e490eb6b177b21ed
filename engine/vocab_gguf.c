/* engine/vocab_gguf.c — a vocabulary from the tokenizer.ggml.* keys of a GGUF file:
 * gathers the arrays into a struct bn_vocab_spec and hands it to
 * bn_vocab_from_arrays (vocab.c), which checks and copies everything. */
#include <stdlib.h>
#include <string.h>

#include "bitnet.h"

static bool str_eq(struct bn_str s, const char *lit)
{
    return s.len == strlen(lit) && memcmp(s.ptr, lit, s.len) == 0;
}

/* An optional integer key: *out keeps its default when the key is absent. */
static int opt_i64(const struct bn_gguf *g, const char *key, int64_t *out, struct bn_err *err)
{
    if (bn_gguf_find_key(g, key) < 0)
        return 0;
    return bn_gguf_get_i64(g, key, out, err);
}

static int get_array(const struct bn_gguf *g, const char *key, bool required, bool strings,
                     struct bn_gguf_arr *a, bool *present, struct bn_err *err)
{
    const char *label = bn_gguf_label(g);
    *present = bn_gguf_find_key(g, key) >= 0;
    if (!*present)
        return required ? bn_errf(err, "%s: the key %s is missing: the file carries no usable tokenizer", label, key)
                        : 0;
    if (bn_gguf_get_arr(g, key, a, err))
        return -1;
    if (strings && a->type != BN_GGUF_STRING)
        return bn_errf(err, "%s: %s is an array of type %d, not of strings", label, key, (int)a->type);
    return 0;
}

static bool is_integer_type(enum bn_gguf_vtype t)
{
    return t == BN_GGUF_UINT8 || t == BN_GGUF_INT8 || t == BN_GGUF_UINT16 || t == BN_GGUF_INT16 ||
           t == BN_GGUF_UINT32 || t == BN_GGUF_INT32 || t == BN_GGUF_UINT64 || t == BN_GGUF_INT64;
}

int bn_vocab_from_gguf(struct bn_vocab **out, const struct bn_gguf *g, struct bn_err *err)
{
    *out = NULL;
    const char *label = bn_gguf_label(g);
    struct bn_str model;
    if (bn_gguf_find_key(g, "tokenizer.ggml.model") < 0)
        return bn_errf(err, "%s: the key tokenizer.ggml.model is missing: the file carries no tokenizer", label);
    if (bn_gguf_get_str(g, "tokenizer.ggml.model", &model, err))
        return -1;
    if (!str_eq(model, "gpt2"))
        return bn_errf(err, "%s: tokenizer.ggml.model = \"%.*s\" is not supported: bitnetd reads \"gpt2\" "
                            "(byte-level BPE) vocabularies only",
                       label, model.len > 64 ? 64 : (int)model.len, model.ptr);

    struct bn_gguf_arr tokens, types, merges;
    bool has_tokens, has_types, has_merges;
    if (get_array(g, "tokenizer.ggml.tokens", true, true, &tokens, &has_tokens, err) ||
        get_array(g, "tokenizer.ggml.merges", true, true, &merges, &has_merges, err) ||
        get_array(g, "tokenizer.ggml.token_type", false, false, &types, &has_types, err))
        return -1;
    if (tokens.n == 0 || tokens.n > BN_VOCAB_MAX_TOKENS)
        return bn_errf(err, "%s: tokenizer.ggml.tokens has %llu entries (accepted: 1 .. %d)", label,
                       (unsigned long long)tokens.n, BN_VOCAB_MAX_TOKENS);
    if (merges.n > BN_VOCAB_MAX_MERGES)
        return bn_errf(err, "%s: tokenizer.ggml.merges has %llu entries (limit BN_VOCAB_MAX_MERGES = %d)", label,
                       (unsigned long long)merges.n, BN_VOCAB_MAX_MERGES);
    if (has_types && !is_integer_type(types.type))
        return bn_errf(err, "%s: tokenizer.ggml.token_type is an array of type %d, not of integers", label,
                       (int)types.type);
    if (has_types && types.n != tokens.n)
        return bn_errf(err, "%s: tokenizer.ggml.token_type has %llu entries but tokenizer.ggml.tokens has %llu",
                       label, (unsigned long long)types.n, (unsigned long long)tokens.n);

    struct bn_vocab_spec spec = {
        .label = label,
        .n_tokens = (size_t)tokens.n,
        .n_merges = (size_t)merges.n,
        .bos_id = -1,
        .eos_id = -1,
        .eot_id = -1,
        .add_bos = true, /* llama.cpp's default for the Llama-3 pre-tokenizer */
    };
    struct bn_str *tok = malloc(spec.n_tokens * sizeof *tok);
    struct bn_str *mer = malloc((spec.n_merges ? spec.n_merges : 1) * sizeof *mer);
    int32_t *typ = has_types ? malloc(spec.n_tokens * sizeof *typ) : NULL;
    int rc = -1;
    if (!tok || !mer || (has_types && !typ)) {
        bn_errf(err, "%s: out of memory for %zu tokens", label, spec.n_tokens);
        goto done;
    }
    for (size_t i = 0; i < spec.n_tokens; i++) {
        tok[i] = bn_gguf_arr_str(&tokens, i);
        if (typ) {
            int64_t t = bn_gguf_arr_int(&types, i);
            typ[i] = t < INT32_MIN || t > INT32_MAX ? -1 : (int32_t)t; /* out of range: rejected later */
        }
    }
    for (size_t i = 0; i < spec.n_merges; i++)
        mer[i] = bn_gguf_arr_str(&merges, i);
    spec.tokens = tok;
    spec.types = typ;
    spec.merges = mer;

    if (bn_gguf_find_key(g, "tokenizer.ggml.pre") >= 0 && bn_gguf_get_str(g, "tokenizer.ggml.pre", &spec.pre, err))
        goto done;
    if (opt_i64(g, "tokenizer.ggml.bos_token_id", &spec.bos_id, err) ||
        opt_i64(g, "tokenizer.ggml.eos_token_id", &spec.eos_id, err) ||
        opt_i64(g, "tokenizer.ggml.eot_token_id", &spec.eot_id, err))
        goto done;
    if (bn_gguf_find_key(g, "tokenizer.ggml.add_bos_token") >= 0 &&
        bn_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &spec.add_bos, err))
        goto done;
    rc = bn_vocab_from_arrays(out, &spec, err);
done:
    free(tok);
    free(mer);
    free(typ);
    return rc;
}
