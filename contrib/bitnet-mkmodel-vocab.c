/* contrib/bitnet-mkmodel-vocab.c — vocabularies for bitnet-mkmodel: a built-in
 * byte-level BPE vocabulary, a Hugging Face tokenizer.json, or another GGUF. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bitnet-mkmodel.h"

/* Merges learned for the built-in vocabulary (fewer if the text runs out of pairs
 * seen at least twice). */
#define BUILTIN_MAX_MERGES 400
#define PAIR_TABLE_BITS 14 /* 16384 slots; the text has a few thousand distinct pairs */

/* Llama-3's special tokens that chat formats use, in its id order. */
static const char *const builtin_specials[] = {
    "<|begin_of_text|>", "<|end_of_text|>",  "<|start_header_id|>", "<|end_header_id|>",
    "<|eom_id|>",        "<|eot_id|>",       "<|python_tag|>",      "<|finetune_right_pad_id|>",
};

/* Text the built-in merges are learned from (written for this tool). */
static const char builtin_text[] =
    "The morning was quiet, and the river moved slowly past the old stone bridge. "
    "A woman walked along the bank with her dog, stopping now and then to look at the water. "
    "In the town, the shops were opening one by one: the baker first, then the small store "
    "that sold paper, pens and maps. People talked about the weather, about the price of bread, "
    "and about the new school that was being built near the station. "
    "When the train arrived at nine, the platform filled with students and workers. "
    "Some of them read the news on their phones; others looked out of the window at the hills. "
    "The teacher said that the first lesson would be about numbers: 1, 2, 3, 10, 42, 100 and 2024. "
    "She wrote on the board that a good answer is simple, clear and true. "
    "Later in the day, the wind turned cold and the sky became grey. "
    "The farmers brought their animals back to the barns, and the children ran home for dinner. "
    "There was soup, fresh bread, cheese and apples on the table. "
    "After dinner, the family sat together and talked about their plans for the summer. "
    "They wanted to travel to the sea, to swim in the morning and to walk in the evening. "
    "The father said the car needed new tires before such a long trip. "
    "The mother thought the train would be better, because it is faster and you can read. "
    "In the end they agreed to take the train and to rent bicycles at the coast. "
    "The computer in the corner was still running a program that counted words in books. "
    "It printed the results to a file: the most common words were the, and, of, to and in. "
    "Learning a language means learning its sounds, its words and the way they are put together. "
    "A model that reads text one token at a time can still learn how sentences are built. "
    "This is the reason why simple tools are useful: they let people see what the machine sees. "
    "Write the code, test the code, and then write it again when you understand the problem better. "
    "What is the question? Where is the answer? Who will find it, and when will they share it? "
    "Please send me the report by Friday; I will read it over the weekend and reply on Monday. "
    "The library opens at eight o'clock and closes at six, except on Sunday when it is closed. "
    "Everything that is worth doing is worth doing well, and slowly, and with care. "
    "Every spring the garden comes back: first the green leaves, then the yellow and white flowers. "
    "Their neighbours planted tomatoes, beans and potatoes, and they shared the harvest in autumn. "
    "The doctor told the patient to drink more water, to sleep eight hours and to walk every day. "
    "Scientists measure the temperature of the ocean to understand how the climate is changing. "
    "The museum shows paintings, photographs and machines from the history of the city. "
    "On the radio, a singer talked about her new songs and the concerts she will give this year. "
    "The engineer checked the bridge, the road and the tunnel, and wrote a careful report. "
    "Good questions often matter more than quick answers; careful thinking takes time. "
    "The market sells fruit, vegetables, fish, meat, flowers and cheap clothes every Saturday. "
    "Students learn mathematics, history, languages, music, science and sport at the school. "
    "The government announced that the new hospital would open next month with three hundred beds. ";

/* ------------------------------------------------------------------------------
 * GPT-2 byte-to-unicode map: printable bytes keep their code point, the others go
 * to 256 + n in byte order, so every token is printable text.
 * --------------------------------------------------------------------------- */
static bool byte_is_printable(int b)
{
    return (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
}

/* Code point of byte b, and the bytes in GPT-2's token order (printable first). */
static void byte_map(uint32_t cp[256], int order[256])
{
    int n = 0, k = 0;
    for (int b = 0; b < 256; b++)
        if (byte_is_printable(b)) {
            cp[b] = (uint32_t)b;
            order[k++] = b;
        }
    for (int b = 0; b < 256; b++)
        if (!byte_is_printable(b)) {
            cp[b] = 256u + (uint32_t)n++;
            order[k++] = b;
        }
}

static size_t utf8_put(char *out, uint32_t c)
{
    if (c < 0x80) {
        out[0] = (char)c;
        return 1;
    }
    /* code points here are < 0x800 (at most 256 + 68) */
    out[0] = (char)(0xc0 | (c >> 6));
    out[1] = (char)(0x80 | (c & 0x3f));
    return 2;
}

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    if (!d) {
        fprintf(stderr, "bitnet-mkmodel: out of memory\n");
        exit(1);
    }
    return d;
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p) {
        fprintf(stderr, "bitnet-mkmodel: out of memory\n");
        exit(1);
    }
    return p;
}

static char *concat(const char *a, const char *b, const char *sep)
{
    size_t la = strlen(a), lb = strlen(b), ls = strlen(sep);
    char *s = xcalloc(la + ls + lb + 1, 1);
    memcpy(s, a, la);
    memcpy(s + la, sep, ls);
    memcpy(s + la + ls, b, lb);
    return s;
}

/* ------------------------------------------------------------------------------
 * Built-in vocabulary: BPE learned on builtin_text
 * --------------------------------------------------------------------------- */
struct word {
    int *sym; /* token ids */
    int n;
    int count;
};

struct pair_slot {
    uint64_t key; /* left << 32 | right, 0 = empty (pairs of token 0 with 0 never matter) */
    int count;
};

/* Split the text like a GPT-2 pre-tokenizer would, roughly: an optional leading
 * space plus a run of letters, a run of digits, or one other byte. */
static int split_words(const int id_of_byte[256], struct word **out)
{
    const unsigned char *t = (const unsigned char *)builtin_text;
    size_t len = strlen(builtin_text);
    struct word *w = xcalloc(len, sizeof *w);
    int nw = 0;
    for (size_t i = 0; i < len;) {
        size_t start = i;
        if (t[i] == ' ' && i + 1 < len && t[i + 1] != ' ')
            i++;
        if ((t[i] | 0x20) >= 'a' && (t[i] | 0x20) <= 'z') {
            while (i < len && ((t[i] | 0x20) >= 'a' && (t[i] | 0x20) <= 'z'))
                i++;
        } else if (t[i] >= '0' && t[i] <= '9') {
            while (i < len && t[i] >= '0' && t[i] <= '9')
                i++;
        } else {
            i++;
        }
        /* the same word again: count it */
        int n = (int)(i - start), k;
        for (k = 0; k < nw; k++) {
            if (w[k].n != n)
                continue;
            int j = 0;
            while (j < n && w[k].sym[j] == id_of_byte[t[start + (size_t)j]])
                j++;
            if (j == n)
                break;
        }
        if (k < nw) {
            w[k].count++;
            continue;
        }
        w[nw].sym = xcalloc((size_t)n, sizeof(int));
        for (int j = 0; j < n; j++)
            w[nw].sym[j] = id_of_byte[t[start + (size_t)j]];
        w[nw].n = n;
        w[nw].count = 1;
        nw++;
    }
    *out = w;
    return nw;
}

int mk_vocab_builtin(struct mk_vocab *v, struct bn_err *err)
{
    (void)err;
    memset(v, 0, sizeof *v);
    uint32_t cp[256];
    int order[256], id_of_byte[256];
    byte_map(cp, order);

    size_t n_special = sizeof builtin_specials / sizeof builtin_specials[0];
    size_t cap = 256 + BUILTIN_MAX_MERGES + n_special;
    v->tokens = xcalloc(cap, sizeof *v->tokens);
    v->types = xcalloc(cap, sizeof *v->types);
    v->merges = xcalloc(BUILTIN_MAX_MERGES, sizeof *v->merges);
    for (int k = 0; k < 256; k++) {
        char s[3] = {0};
        utf8_put(s, cp[order[k]]);
        v->tokens[k] = xstrdup(s);
        v->types[k] = MK_TOKEN_NORMAL;
        id_of_byte[order[k]] = k;
    }
    v->n = 256;

    struct word *words;
    int nw = split_words(id_of_byte, &words);
    struct pair_slot *table = xcalloc((size_t)1 << PAIR_TABLE_BITS, sizeof *table);
    uint64_t mask = ((uint64_t)1 << PAIR_TABLE_BITS) - 1;
    while (v->n_merges < BUILTIN_MAX_MERGES) {
        /* count adjacent pairs, weighted by word frequency */
        memset(table, 0, ((size_t)1 << PAIR_TABLE_BITS) * sizeof *table);
        for (int k = 0; k < nw; k++)
            for (int j = 0; j + 1 < words[k].n; j++) {
                uint64_t key = (uint64_t)words[k].sym[j] << 32 | (uint64_t)words[k].sym[j + 1];
                uint64_t h = (key * 0x9e3779b97f4a7c15ull) >> (64 - PAIR_TABLE_BITS);
                while (table[h].key && table[h].key != key)
                    h = (h + 1) & mask;
                table[h].key = key;
                table[h].count += words[k].count;
            }
        /* the most frequent pair; ties go to the smaller (left, right) text */
        int best = -1;
        for (size_t s = 0; s <= mask; s++) {
            if (!table[s].key)
                continue;
            if (best < 0 || table[s].count > table[best].count)
                best = (int)s;
            else if (table[s].count == table[best].count) {
                uint64_t a = table[s].key, b = table[best].key;
                int c = strcmp(v->tokens[a >> 32], v->tokens[b >> 32]);
                if (c == 0)
                    c = strcmp(v->tokens[a & 0xffffffff], v->tokens[b & 0xffffffff]);
                if (c < 0)
                    best = (int)s;
            }
        }
        if (best < 0 || table[best].count < 2)
            break;
        int left = (int)(table[best].key >> 32), right = (int)(table[best].key & 0xffffffff);
        int id = (int)v->n;
        v->tokens[v->n] = concat(v->tokens[left], v->tokens[right], "");
        v->types[v->n++] = MK_TOKEN_NORMAL;
        v->merges[v->n_merges++] = concat(v->tokens[left], v->tokens[right], " ");
        for (int k = 0; k < nw; k++) {
            int o = 0;
            for (int j = 0; j < words[k].n; j++) {
                if (j + 1 < words[k].n && words[k].sym[j] == left && words[k].sym[j + 1] == right) {
                    words[k].sym[o++] = id;
                    j++;
                } else {
                    words[k].sym[o++] = words[k].sym[j];
                }
            }
            words[k].n = o;
        }
    }
    free(table);
    for (int k = 0; k < nw; k++)
        free(words[k].sym);
    free(words);

    for (size_t k = 0; k < n_special; k++) {
        v->tokens[v->n] = xstrdup(builtin_specials[k]);
        v->types[v->n++] = MK_TOKEN_CONTROL;
    }
    v->bos = (int64_t)(v->n - n_special);     /* <|begin_of_text|> */
    v->eos = (int64_t)(v->n - n_special + 1); /* <|end_of_text|> */
    return 0;
}

/* ------------------------------------------------------------------------------
 * tokenizer.json
 * --------------------------------------------------------------------------- */
static int64_t find_token(const struct mk_vocab *v, const char *text)
{
    for (size_t i = v->n; i-- > 0;) /* specials sit at the end */
        if (v->tokens[i] && strcmp(v->tokens[i], text) == 0)
            return (int64_t)i;
    return -1;
}

/* tokenizer_config.json beside tokenizer.json: chat template and BOS/EOS texts. */
static void read_config(struct mk_vocab *v, const char *tok_path, char **bos_text, char **eos_text)
{
    const char *slash = strrchr(tok_path, '/');
    size_t dir_len = slash ? (size_t)(slash - tok_path + 1) : 0;
    char *cfg_path = xcalloc(dir_len + 32, 1);
    memcpy(cfg_path, tok_path, dir_len);
    strcpy(cfg_path + dir_len, "tokenizer_config.json");
    json_error_t jerr;
    /* INT_AS_REAL: model_max_length is often 1e30 written as an integer */
    json_t *cfg = json_load_file(cfg_path, JSON_DECODE_INT_AS_REAL, &jerr);
    if (!cfg) {
        if (access(cfg_path, F_OK) == 0) /* optional, but say why it was not used */
            fprintf(stderr, "bitnet-mkmodel: warning: %s: line %d: %s (no chat template)\n", cfg_path,
                    jerr.line, jerr.text);
        free(cfg_path);
        return;
    }
    free(cfg_path);
    json_t *tpl = json_object_get(cfg, "chat_template");
    if (json_is_string(tpl))
        v->chat_template = xstrdup(json_string_value(tpl));
    const char *names[2] = {"bos_token", "eos_token"};
    char **outs[2] = {bos_text, eos_text};
    for (int k = 0; k < 2; k++) {
        json_t *t = json_object_get(cfg, names[k]);
        if (json_is_object(t))
            t = json_object_get(t, "content");
        if (json_is_string(t))
            *outs[k] = xstrdup(json_string_value(t));
    }
    json_decref(cfg);
}

int mk_vocab_from_json(struct mk_vocab *v, const char *path, struct bn_err *err)
{
    memset(v, 0, sizeof *v);
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root)
        return bn_errf(err, "%s: line %d: %s", path, jerr.line, jerr.text);
    int rc = -1;
    json_t *model = json_object_get(root, "model");
    json_t *vocab = json_object_get(model, "vocab");
    json_t *merges = json_object_get(model, "merges");
    json_t *added = json_object_get(root, "added_tokens");
    json_t *type = json_object_get(model, "type");
    if (!json_is_object(model) || !json_is_object(vocab) || !json_is_array(merges)) {
        bn_errf(err, "%s: not a BPE tokenizer.json (needs model.vocab and model.merges)", path);
        goto out;
    }
    if (type && (!json_is_string(type) || strcmp(json_string_value(type), "BPE") != 0)) {
        bn_errf(err, "%s: model.type is %s; only BPE tokenizers are supported", path,
                json_is_string(type) ? json_string_value(type) : "not a string");
        goto out;
    }
    if (added && !json_is_array(added)) {
        bn_errf(err, "%s: added_tokens is not an array", path);
        goto out;
    }

    /* vocabulary size = largest id + 1 over model.vocab and added_tokens */
    json_int_t max_id = -1;
    const char *text;
    json_t *val;
    json_object_foreach(vocab, text, val) {
        if (!json_is_integer(val) || json_integer_value(val) < 0 ||
            json_integer_value(val) >= MK_MAX_VOCAB) {
            bn_errf(err, "%s: model.vocab['%s'] is not a token id in 0..%d", path, text, MK_MAX_VOCAB - 1);
            goto out;
        }
        if (json_integer_value(val) > max_id)
            max_id = json_integer_value(val);
    }
    size_t i;
    json_array_foreach(added, i, val) {
        json_t *id = json_object_get(val, "id"), *content = json_object_get(val, "content");
        if (!json_is_integer(id) || json_integer_value(id) < 0 || json_integer_value(id) >= MK_MAX_VOCAB ||
            !json_is_string(content)) {
            bn_errf(err, "%s: added_tokens[%zu] needs an id in 0..%d and a content string", path, i,
                    MK_MAX_VOCAB - 1);
            goto out;
        }
        if (json_integer_value(id) > max_id)
            max_id = json_integer_value(id);
    }
    if (max_id < 0) {
        bn_errf(err, "%s: model.vocab is empty", path);
        goto out;
    }
    v->n = (size_t)max_id + 1;
    v->tokens = xcalloc(v->n, sizeof *v->tokens);
    v->types = xcalloc(v->n, sizeof *v->types);
    json_object_foreach(vocab, text, val) {
        size_t id = (size_t)json_integer_value(val);
        if (v->tokens[id]) {
            bn_errf(err, "%s: token id %zu is used by both '%s' and '%s'", path, id, v->tokens[id], text);
            goto out;
        }
        v->tokens[id] = xstrdup(text);
        v->types[id] = MK_TOKEN_NORMAL;
    }
    json_array_foreach(added, i, val) {
        size_t id = (size_t)json_integer_value(json_object_get(val, "id"));
        const char *content = json_string_value(json_object_get(val, "content"));
        if (v->tokens[id] && strcmp(v->tokens[id], content) != 0) {
            bn_errf(err, "%s: added_tokens[%zu] gives id %zu the text '%s', but model.vocab has '%s'",
                    path, i, id, content, v->tokens[id]);
            goto out;
        }
        if (!v->tokens[id])
            v->tokens[id] = xstrdup(content);
        v->types[id] = json_is_true(json_object_get(val, "special")) ? MK_TOKEN_CONTROL : MK_TOKEN_NORMAL;
    }
    /* ids nobody uses: placeholders, as llama.cpp's converter writes them */
    for (size_t id = 0; id < v->n; id++) {
        if (!v->tokens[id]) {
            char pad[32];
            snprintf(pad, sizeof pad, "[PAD%zu]", id);
            v->tokens[id] = xstrdup(pad);
            v->types[id] = MK_TOKEN_UNUSED;
        }
    }

    /* merges: "a b" strings or [a, b] pairs */
    v->merges = xcalloc(json_array_size(merges), sizeof *v->merges);
    json_array_foreach(merges, i, val) {
        if (json_is_string(val)) {
            v->merges[i] = xstrdup(json_string_value(val));
        } else if (json_is_array(val) && json_array_size(val) == 2 &&
                   json_is_string(json_array_get(val, 0)) && json_is_string(json_array_get(val, 1))) {
            v->merges[i] = concat(json_string_value(json_array_get(val, 0)),
                                  json_string_value(json_array_get(val, 1)), " ");
        } else {
            bn_errf(err, "%s: model.merges[%zu] is neither \"a b\" nor [\"a\", \"b\"]", path, i);
            goto out;
        }
        v->n_merges = i + 1;
    }

    char *bos_text = NULL, *eos_text = NULL;
    read_config(v, path, &bos_text, &eos_text);
    v->bos = find_token(v, bos_text ? bos_text : "<|begin_of_text|>");
    v->eos = find_token(v, eos_text ? eos_text : "<|end_of_text|>");
    free(bos_text);
    free(eos_text);
    if (v->bos < 0 || v->eos < 0) {
        bn_errf(err, "%s: cannot find the %s token (looked for the tokenizer_config.json bos_token/"
                     "eos_token, then <|begin_of_text|> / <|end_of_text|>)",
                path, v->bos < 0 ? "BOS" : "EOS");
        goto out;
    }
    rc = 0;
out:
    json_decref(root);
    if (rc)
        mk_vocab_free(v);
    return rc;
}

/* ------------------------------------------------------------------------------
 * Another GGUF's tokenizer
 * --------------------------------------------------------------------------- */
int mk_vocab_from_gguf(struct mk_vocab *v, const char *path, struct bn_err *err)
{
    memset(v, 0, sizeof *v);
    if (bn_map_file(path, &v->src_map, err))
        return -1;
    if (bn_gguf_open(&v->src, v->src_map.base, v->src_map.size, path, BN_GGUF_HEADER_ONLY, err)) {
        bn_unmap_file(&v->src_map);
        return -1;
    }
    struct bn_gguf_arr tokens;
    if (bn_gguf_get_arr(v->src, "tokenizer.ggml.tokens", &tokens, err)) {
        mk_vocab_free(v);
        return -1;
    }
    if (tokens.type != BN_GGUF_STRING) {
        bn_errf(err, "%s: tokenizer.ggml.tokens is not an array of strings", path);
        mk_vocab_free(v);
        return -1;
    }
    if (tokens.n == 0 || tokens.n >= MK_MAX_VOCAB) {
        bn_errf(err, "%s: tokenizer.ggml.tokens has %llu tokens; 1..%d are supported", path,
                (unsigned long long)tokens.n, MK_MAX_VOCAB - 1);
        mk_vocab_free(v);
        return -1;
    }
    v->n = (size_t)tokens.n;
    return 0;
}

int mk_vocab_load(struct mk_vocab *v, const char *path, struct bn_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return bn_errf(err, "%s: cannot open: %s", path, strerror(errno));
    char magic[4] = {0};
    size_t got = fread(magic, 1, 4, f);
    fclose(f);
    if (got == 4 && memcmp(magic, "GGUF", 4) == 0)
        return mk_vocab_from_gguf(v, path, err);
    return mk_vocab_from_json(v, path, err);
}

void mk_vocab_set_keys(struct bn_gguf_writer *w, const struct mk_vocab *v)
{
    if (v->src) {
        for (int64_t i = 0; i < bn_gguf_n_kv(v->src); i++) {
            struct bn_str k = bn_gguf_key(v->src, i);
            if (k.len > 10 && memcmp(k.ptr, "tokenizer.", 10) == 0)
                bn_gguf_set_from(w, v->src, i);
        }
        return;
    }
    bn_gguf_set_str(w, "tokenizer.ggml.model", "gpt2");
    if (v->n != MK_LLAMA3_VOCAB)
        bn_gguf_set_str(w, "tokenizer.ggml.pre", "llama-bpe");
    bn_gguf_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v->tokens, v->n);
    bn_gguf_set_arr(w, "tokenizer.ggml.token_type", BN_GGUF_INT32, v->types, v->n);
    bn_gguf_set_arr_str(w, "tokenizer.ggml.merges", (const char *const *)v->merges, v->n_merges);
    bn_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)v->bos);
    bn_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)v->eos);
    bn_gguf_set_bool(w, "tokenizer.ggml.add_bos_token", true);
    if (v->chat_template)
        bn_gguf_set_str(w, "tokenizer.chat_template", v->chat_template);
}

void mk_vocab_free(struct mk_vocab *v)
{
    for (size_t i = 0; v->tokens && i < v->n; i++)
        free(v->tokens[i]);
    for (size_t i = 0; v->merges && i < v->n_merges; i++)
        free(v->merges[i]);
    free(v->tokens);
    free(v->types);
    free(v->merges);
    free(v->chat_template);
    bn_gguf_close(v->src);
    bn_unmap_file(&v->src_map);
    memset(v, 0, sizeof *v);
}
