/* tests/tokenizer_json.h — test-only: a struct bn_vocab built from a Hugging Face
 * tokenizer.json (the Llama-3 one in $BITNET_TEST_DATA/llama3/), through the same
 * bn_vocab_from_arrays the GGUF loader uses.  Lets the tokenizer tests run when no
 * GGUF with the full vocabulary is at hand.
 *
 * Mapping (what llama.cpp's converter does): model.vocab -> NORMAL tokens;
 * added_tokens -> CONTROL when "special", USER_DEFINED otherwise; merges (strings
 * "a b" or pairs ["a", "b"]) in file order; the Split pre-tokenizer's regex must be
 * the Llama-3 one (then pre = "llama-bpe"); bos/eos = <|begin_of_text|> /
 * <|end_of_text|>. */
#ifndef BN_TEST_TOKENIZER_JSON_H
#define BN_TEST_TOKENIZER_JSON_H

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitnet.h"
#include "tokenizer_internal.h"

/* The regex of the first Split pre-tokenizer, or NULL. */
static inline const char *tj_split_regex(json_t *root)
{
    json_t *pre = json_object_get(root, "pre_tokenizer");
    json_t *list = json_object_get(pre, "pretokenizers");
    if (!json_is_array(list))
        list = NULL;
    size_t n = list ? json_array_size(list) : 1;
    for (size_t i = 0; i < n; i++) {
        json_t *p = list ? json_array_get(list, i) : pre;
        const char *type = json_string_value(json_object_get(p, "type"));
        if (type && strcmp(type, "Split") == 0)
            return json_string_value(json_object_get(json_object_get(p, "pattern"), "Regex"));
    }
    return NULL;
}

static inline int tj_fail(struct bn_err *err, const char *path, const char *what)
{
    return bn_errf(err, "%s: %s", path, what);
}

/* Load path into *out; -1 with err on any problem. */
static inline int vocab_from_tokenizer_json(struct bn_vocab **out, const char *path, struct bn_err *err)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root)
        return bn_errf(err, "%s:%d: %s", path, jerr.line, jerr.text);
    int rc = -1;
    struct bn_str *tokens = NULL, *merges = NULL;
    int32_t *types = NULL;
    char **merge_buf = NULL;
    size_t n_merges = 0;

    json_t *model = json_object_get(root, "model");
    json_t *vocab = json_object_get(model, "vocab");
    json_t *jmerges = json_object_get(model, "merges");
    json_t *added = json_object_get(root, "added_tokens");
    const char *re = tj_split_regex(root);
    if (!json_is_object(vocab) || !json_is_array(jmerges)) {
        tj_fail(err, path, "no model.vocab object / model.merges array");
        goto done;
    }
    if (!re || strcmp(re, BN_LLAMA3_SPLIT_REGEX) != 0) {
        tj_fail(err, path, "the Split pre-tokenizer regex is not the Llama-3 one");
        goto done;
    }
    /* n_tokens = highest id + 1 over vocab and added tokens. */
    size_t n = 0;
    const char *key;
    json_t *val;
    json_object_foreach(vocab, key, val)
    {
        json_int_t id = json_integer_value(val);
        if (id < 0 || id >= BN_VOCAB_MAX_TOKENS) {
            tj_fail(err, path, "a vocab id is out of range");
            goto done;
        }
        if ((size_t)id + 1 > n)
            n = (size_t)id + 1;
    }
    for (size_t i = 0; i < json_array_size(added); i++) {
        json_int_t id = json_integer_value(json_object_get(json_array_get(added, i), "id"));
        if (id < 0 || id >= BN_VOCAB_MAX_TOKENS) {
            tj_fail(err, path, "an added token id is out of range");
            goto done;
        }
        if ((size_t)id + 1 > n)
            n = (size_t)id + 1;
    }
    tokens = calloc(n, sizeof *tokens);
    types = calloc(n, sizeof *types);
    if (!tokens || !types) {
        tj_fail(err, path, "out of memory");
        goto done;
    }
    json_object_foreach(vocab, key, val)
    {
        size_t id = (size_t)json_integer_value(val);
        tokens[id] = (struct bn_str){ key, strlen(key) };
        types[id] = BN_TOKEN_NORMAL;
    }
    int32_t bos = -1, eos = -1;
    for (size_t i = 0; i < json_array_size(added); i++) {
        json_t *a = json_array_get(added, i);
        size_t id = (size_t)json_integer_value(json_object_get(a, "id"));
        const char *content = json_string_value(json_object_get(a, "content"));
        if (!content) {
            tj_fail(err, path, "an added token has no content");
            goto done;
        }
        tokens[id] = (struct bn_str){ content, strlen(content) };
        types[id] = json_is_true(json_object_get(a, "special")) ? BN_TOKEN_CONTROL : BN_TOKEN_USER_DEFINED;
        if (strcmp(content, "<|begin_of_text|>") == 0)
            bos = (int32_t)id;
        if (strcmp(content, "<|end_of_text|>") == 0)
            eos = (int32_t)id;
    }
    for (size_t i = 0; i < n; i++)
        if (!tokens[i].ptr) {
            tj_fail(err, path, "the token ids have a gap");
            goto done;
        }

    n_merges = json_array_size(jmerges);
    merges = calloc(n_merges ? n_merges : 1, sizeof *merges);
    merge_buf = calloc(n_merges ? n_merges : 1, sizeof *merge_buf);
    if (!merges || !merge_buf) {
        tj_fail(err, path, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n_merges; i++) {
        json_t *m = json_array_get(jmerges, i);
        if (json_is_string(m)) {
            merges[i] = (struct bn_str){ json_string_value(m), json_string_length(m) };
        } else if (json_is_array(m) && json_array_size(m) == 2) {
            const char *a = json_string_value(json_array_get(m, 0));
            const char *b = json_string_value(json_array_get(m, 1));
            if (!a || !b || asprintf(&merge_buf[i], "%s %s", a, b) < 0) {
                tj_fail(err, path, "a merge is not a pair of strings");
                goto done;
            }
            merges[i] = (struct bn_str){ merge_buf[i], strlen(merge_buf[i]) };
        } else {
            tj_fail(err, path, "a merge is neither \"a b\" nor [\"a\", \"b\"]");
            goto done;
        }
    }
    struct bn_vocab_spec spec = {
        .label = path,
        .tokens = tokens,
        .types = types,
        .n_tokens = n,
        .merges = merges,
        .n_merges = n_merges,
        .pre = { "llama-bpe", 9 },
        .bos_id = bos,
        .eos_id = eos,
        .eot_id = -1,
        .add_bos = true,
    };
    rc = bn_vocab_from_arrays(out, &spec, err);
done:
    if (merge_buf)
        for (size_t i = 0; i < n_merges; i++)
            free(merge_buf[i]);
    free(merge_buf);
    free(merges);
    free(tokens);
    free(types);
    json_decref(root);
    return rc;
}

#endif /* BN_TEST_TOKENIZER_JSON_H */
