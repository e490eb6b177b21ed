/* engine/chat.c — rendering a conversation in the model's chat format (REFERENCE §7),
 * as text or directly as token ids.
 *
 * Both renderers walk the same template (render()) and differ only in where the
 * pieces go: as text, special tokens are written as their text; as tokens, special
 * tokens become their ids and everything between two specials (template text and
 * message content together, as the training tokenizer saw it) is tokenized with
 * special-token parsing OFF, so a message can never inject <|eot_id|> or a header.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "bitnet.h"

#define BOT "<|begin_of_text|>"
#define EOT "<|eot_id|>"
#define SHI "<|start_header_id|>"
#define EHI "<|end_header_id|>"

const char *bn_chat_format_name(enum bn_chat_format f)
{
    switch (f) {
    case BN_CHAT_BITNET:
        return "bitnet";
    case BN_CHAT_LLAMA3:
        return "llama3";
    default:
        return "none";
    }
}

static bool str_is(struct bn_str s, const char *lit)
{
    return s.ptr && s.len == strlen(lit) && memcmp(s.ptr, lit, s.len) == 0;
}

static bool str_contains(struct bn_str s, const char *lit)
{
    return s.ptr && memmem(s.ptr, s.len, lit, strlen(lit)) != NULL;
}

enum bn_chat_format bn_chat_format_detect(struct bn_str arch, struct bn_str chat_template)
{
    /* The 2B-4T model: its embedded template (Human:/BITNETAssistant:) is known to be
     * wrong, so the arch decides before the template is looked at. */
    if (str_is(arch, "bitnet-b1.58") || str_is(arch, "bitnet-25"))
        return BN_CHAT_BITNET;
    if (str_contains(chat_template, SHI))
        return BN_CHAT_LLAMA3;
    if (arch.ptr && arch.len >= 6 && memcmp(arch.ptr, "bitnet", 6) == 0)
        return BN_CHAT_BITNET;
    return BN_CHAT_NONE;
}

enum bn_chat_format bn_chat_format_from_gguf(const struct bn_gguf *g)
{
    struct bn_str arch = { NULL, 0 }, tmpl = { NULL, 0 };
    if (bn_gguf_find_key(g, "general.architecture") >= 0 && bn_gguf_get_str(g, "general.architecture", &arch, NULL))
        arch = (struct bn_str){ NULL, 0 };
    if (bn_gguf_find_key(g, "tokenizer.chat_template") >= 0 &&
        bn_gguf_get_str(g, "tokenizer.chat_template", &tmpl, NULL))
        tmpl = (struct bn_str){ NULL, 0 };
    return bn_chat_format_detect(arch, tmpl);
}

/* Where rendered pieces go. */
struct sink {
    int (*text)(struct sink *k, const char *s, size_t n, struct bn_err *err);
    int (*special)(struct sink *k, const char *name, struct bn_err *err);
};

struct text_sink {
    struct sink base;
    struct bn_bytes *out;
};

static int text_text(struct sink *k, const char *s, size_t n, struct bn_err *err)
{
    return bn_bytes_append(((struct text_sink *)k)->out, s, n, err);
}

static int text_special(struct sink *k, const char *name, struct bn_err *err)
{
    return bn_bytes_append(((struct text_sink *)k)->out, name, strlen(name), err);
}

struct token_sink {
    struct sink base;
    const struct bn_vocab *v;
    struct bn_tokens *out;
    struct bn_bytes pending; /* plain text since the last special token */
};

static int token_flush(struct token_sink *t, struct bn_err *err)
{
    int rc = bn_tokenize(t->v, t->pending.data, t->pending.len, false, false, t->out, err);
    t->pending.len = 0;
    return rc;
}

static int token_text(struct sink *k, const char *s, size_t n, struct bn_err *err)
{
    return bn_bytes_append(&((struct token_sink *)k)->pending, s, n, err);
}

static int token_special(struct sink *k, const char *name, struct bn_err *err)
{
    struct token_sink *t = (struct token_sink *)k;
    int32_t id = bn_vocab_find(t->v, name, strlen(name));
    if (id < 0 || !bn_vocab_is_control(t->v, id))
        return bn_errf(err, "chat: the vocabulary has no control token %s, which this chat format needs", name);
    if (token_flush(t, err))
        return -1;
    return bn_tokens_push(t->out, id, err);
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Validate a role; *canon gets the capitalised (BITNET) or lower-case (LLAMA3) name of
 * the three standard roles, or the role as given (LLAMA3 only). */
static int role_name(enum bn_chat_format f, const char *role, size_t index, char canon[BN_CHAT_MAX_ROLE + 1],
                     struct bn_err *err)
{
    static const char *const known[][2] = { { "system", "System" }, { "user", "User" }, { "assistant", "Assistant" } };
    size_t len = role ? strnlen(role, BN_CHAT_MAX_ROLE + 1) : 0;
    if (len == 0 || len > BN_CHAT_MAX_ROLE)
        return bn_errf(err, "chat: message %zu: the role must be 1 to %d bytes (BN_CHAT_MAX_ROLE)", index,
                       BN_CHAT_MAX_ROLE);
    for (size_t i = 0; i < 3; i++)
        if (strcasecmp(role, known[i][0]) == 0) {
            strcpy(canon, known[i][f == BN_CHAT_BITNET ? 1 : 0]);
            return 0;
        }
    if (f == BN_CHAT_BITNET)
        return bn_errf(err, "chat: message %zu: role \"%s\" is not system, user or assistant (the bitnet format has no other roles)",
                       index, role);
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)role[i]) && role[i] != '_' && role[i] != '-')
            return bn_errf(err, "chat: message %zu: role \"%s\" may hold only letters, digits, '_' and '-'", index,
                           role);
    memcpy(canon, role, len + 1);
    return 0;
}

static int render(enum bn_chat_format f, const struct bn_chat_msg *msgs, size_t n, size_t from, bool gen,
                  struct sink *k, struct bn_err *err)
{
    if (f != BN_CHAT_BITNET && f != BN_CHAT_LLAMA3)
        return bn_errf(err, "chat: this model has no known chat format: pass a raw prompt instead");
    if (from > n)
        return bn_errf(err, "chat: render from message %zu of %zu", from, n);
    if (from == 0 && k->special(k, BOT, err))
        return -1;
    for (size_t i = from; i < n; i++) {
        char role[BN_CHAT_MAX_ROLE + 1];
        if (role_name(f, msgs[i].role, i, role, err))
            return -1;
        const char *c = msgs[i].content ? msgs[i].content : "";
        size_t len = msgs[i].content ? msgs[i].content_len : 0;
        if (f == BN_CHAT_BITNET) {
            if (k->text(k, role, strlen(role), err) || k->text(k, ": ", 2, err) || k->text(k, c, len, err) ||
                k->special(k, EOT, err))
                return -1;
        } else {
            while (len && is_space(*c)) { /* the Llama-3 template's `| trim` */
                c++;
                len--;
            }
            while (len && is_space(c[len - 1]))
                len--;
            if (k->special(k, SHI, err) || k->text(k, role, strlen(role), err) || k->special(k, EHI, err) ||
                k->text(k, "\n\n", 2, err) || k->text(k, c, len, err) || k->special(k, EOT, err))
                return -1;
        }
    }
    if (gen) {
        if (f == BN_CHAT_BITNET)
            return k->text(k, "Assistant: ", 11, err);
        if (k->special(k, SHI, err) || k->text(k, "assistant", 9, err) || k->special(k, EHI, err) ||
            k->text(k, "\n\n", 2, err))
            return -1;
    }
    return 0;
}

int bn_chat_render(enum bn_chat_format f, const struct bn_chat_msg *msgs, size_t n, size_t from,
                   bool add_generation_prompt, struct bn_bytes *out, struct bn_err *err)
{
    size_t len0 = out->len;
    struct text_sink k = { { text_text, text_special }, out };
    if (render(f, msgs, n, from, add_generation_prompt, &k.base, err)) {
        out->len = len0;
        if (out->data)
            out->data[len0] = 0;
        return -1;
    }
    return 0;
}

int bn_chat_tokenize(const struct bn_vocab *v, enum bn_chat_format f, const struct bn_chat_msg *msgs, size_t n,
                     size_t from, bool add_generation_prompt, struct bn_tokens *out, struct bn_err *err)
{
    size_t n0 = out->n;
    struct token_sink k = { { token_text, token_special }, v, out, { 0 } };
    int rc = render(f, msgs, n, from, add_generation_prompt, &k.base, err);
    if (rc == 0)
        rc = token_flush(&k, err);
    bn_bytes_free(&k.pending);
    if (rc)
        out->n = n0;
    return rc;
}
