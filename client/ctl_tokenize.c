/* client/ctl_tokenize.c — `bitnetctl tokenize`: text to token ids with the model's
 * tokenizer in the daemon, or ids back to text with --decode. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

enum { OPT_DECODE = 1, OPT_NO_BOS, OPT_SPECIAL };

const struct ctl_opt ctl_tokenize_opts[] = {
    {"decode", 'd', false, OPT_DECODE, NULL, "TEXT is token ids: print their text"},
    {"no-bos", 0, false, OPT_NO_BOS, NULL, "do not prepend the BOS token"},
    {"special", 0, false, OPT_SPECIAL, NULL, "read special-token text such as <|eot_id|> as that token"},
    {NULL, 0, false, 0, NULL, NULL},
};

/* Parse ids separated by spaces, tabs, newlines or commas.  Returns the count, or -1
 * after a usage error. */
static ssize_t parse_ids(struct ctl *g, const char *text, int32_t *ids, size_t max)
{
    size_t n = 0;
    const char *p = text;
    for (;;) {
        while (*p && (isspace((unsigned char)*p) || *p == ','))
            p++;
        if (!*p)
            break;
        const char *s = p;
        while (*p && !isspace((unsigned char)*p) && *p != ',')
            p++;
        char tok[32];
        size_t len = (size_t)(p - s);
        snprintf(tok, sizeof(tok), "%.*s", (int)(len < sizeof(tok) ? len : sizeof(tok) - 1), s);
        char *end;
        errno = 0;
        long long v = strtoll(tok, &end, 10);
        if (len >= sizeof(tok) || end == tok || *end || errno || v < 0 || v > INT32_MAX) {
            ctl_usage_error(g, "--decode: '%.*s' is not a token id (an integer in [0, 2147483647])",
                            (int)(len > 40 ? 40 : len), s);
            return -1;
        }
        if (n == max) {
            ctl_usage_error(g, "--decode: more than %zu token ids", max);
            return -1;
        }
        ids[n++] = (int32_t)v;
    }
    return (ssize_t)n;
}

/* Text of each token, one detokenize call per token (for -v).  Returns 0 or -1 with
 * err set; texts[i] are malloc'ed. */
static int token_texts(struct ctl *g, const char *model, const int32_t *ids, size_t n, char **texts,
                       struct bnc_error *err)
{
    for (size_t i = 0; i < n; i++) {
        struct bnc_text_result t;
        if (bnc_detokenize(g->conn, model, &ids[i], 1, &t, err) < 0)
            return -1;
        texts[i] = strdup(t.text);
        bnc_result_free(&t);
        if (!texts[i]) {
            snprintf(err->message, sizeof(err->message), "out of memory");
            err->code = BNC_E_NOMEM;
            return -1;
        }
    }
    return 0;
}

/* Print ids (and with -v each one's text) as a line, a table or JSON. */
static int print_tokens(struct ctl *g, const char *model, const int32_t *ids, size_t n)
{
    char **texts = NULL;
    if (g->verbose) {
        texts = calloc(n ? n : 1, sizeof(*texts));
        if (!texts)
            return ctl_fail(g, CTL_EXIT_ERROR, "out of memory");
        struct bnc_error err;
        if (token_texts(g, model, ids, n, texts, &err) < 0) {
            for (size_t i = 0; i < n; i++)
                free(texts[i]);
            free(texts);
            return ctl_fail_bnc(g, &err);
        }
    }
    if (g->json) {
        struct ctl_json j;
        ctl_json_init(&j, g->out, true);
        ctl_json_begin_object(&j);
        ctl_json_key(&j, "model");
        ctl_json_string(&j, model);
        ctl_json_key(&j, "count");
        ctl_json_int(&j, (int64_t)n);
        ctl_json_key(&j, "tokens");
        /* One line for the ids, however many. */
        bool pretty = j.pretty;
        j.pretty = false;
        ctl_json_begin_array(&j);
        for (size_t i = 0; i < n; i++)
            ctl_json_int(&j, ids[i]);
        ctl_json_end_array(&j);
        j.pretty = pretty;
        if (texts) {
            ctl_json_key(&j, "pieces");
            ctl_json_begin_array(&j);
            for (size_t i = 0; i < n; i++)
                ctl_json_string(&j, texts[i]);
            ctl_json_end_array(&j);
        }
        ctl_json_end_object(&j);
        ctl_json_finish(&j);
    } else if (texts) {
        static const char *const head[] = {"ID", "TEXT"};
        struct ctl_table t;
        if (ctl_table_init(&t, 2, head) == 0) {
            for (size_t i = 0; i < n; i++) {
                /* Quoted and escaped: spaces and newlines in a piece stay visible. */
                char *q = NULL;
                size_t ql = 0;
                FILE *m = open_memstream(&q, &ql);
                if (m) {
                    ctl_json_write_string(m, texts[i], strlen(texts[i]));
                    fclose(m);
                }
                char id[16];
                snprintf(id, sizeof(id), "%" PRId32, ids[i]);
                const char *row[] = {id, q ? q : ""};
                ctl_table_add(&t, row);
                free(q);
            }
            ctl_table_print(&t, g->out);
            ctl_table_free(&t);
        }
    } else {
        for (size_t i = 0; i < n; i++)
            fprintf(g->out, "%s%" PRId32, i ? " " : "", ids[i]);
        fputc('\n', g->out);
    }
    if (texts) {
        for (size_t i = 0; i < n; i++)
            free(texts[i]);
        free(texts);
    }
    return CTL_EXIT_OK;
}

int ctl_cmd_tokenize(struct ctl *g, int argc, char **argv)
{
    bool decode = false, add_bos = true, special = false;
    const char *model = NULL;
    const char **words = calloc((size_t)argc + 1, sizeof(*words));
    if (!words)
        return ctl_fail(g, CTL_EXIT_ERROR, "out of memory");
    size_t n_words = 0;
    struct ctl_parser p;
    ctl_parser_init(&p, argc, argv);
    const char *v;
    int o, code = CTL_EXIT_OK;
    char *text = NULL;
    int32_t *ids = NULL;
    while ((o = ctl_next(g, &p, &v)) != CTL_OPT_END) {
        switch (o) {
        case CTL_OPT_BAD: code = CTL_EXIT_USAGE; goto out;
        case CTL_OPT_HELP: ctl_print_help(g->out, g->cmd); goto out;
        case CTL_OPT_POS:
            if (!model)
                model = v;
            else
                words[n_words++] = v;
            break;
        case OPT_DECODE: decode = true; break;
        case OPT_NO_BOS: add_bos = false; break;
        case OPT_SPECIAL: special = true; break;
        }
    }
    if (!model || n_words == 0) {
        code = ctl_usage_error(g, "missing %s", model ? "TEXT" : "MODEL and TEXT");
        goto out;
    }
    size_t len = 0;
    if (n_words == 1 && strcmp(words[0], "-") == 0) {
        text = ctl_read_all(g->in, CTL_TEXT_MAX, &len);
        if (!text) {
            code = errno == EFBIG ? ctl_usage_error(g, "the text on stdin is longer than %d bytes", CTL_TEXT_MAX)
                                  : ctl_fail(g, CTL_EXIT_ERROR, "reading stdin: %s", strerror(errno));
            goto out;
        }
        if (memchr(text, 0, len)) {
            code = ctl_usage_error(g, "the text on stdin contains a NUL byte");
            goto out;
        }
    } else {
        for (size_t i = 0; i < n_words; i++)
            len += strlen(words[i]) + 1;
        if (len > CTL_TEXT_MAX + 1) {
            code = ctl_usage_error(g, "TEXT is longer than %d bytes", CTL_TEXT_MAX);
            goto out;
        }
        text = malloc(len + 1);
        if (!text) {
            code = ctl_fail(g, CTL_EXIT_ERROR, "out of memory");
            goto out;
        }
        text[0] = 0;
        for (size_t i = 0; i < n_words; i++) {
            if (i)
                strcat(text, " ");
            strcat(text, words[i]);
        }
    }
    size_t n_ids = 0;
    if (decode) {
        ids = malloc(CTL_TOKENS_MAX * sizeof(*ids));
        if (!ids) {
            code = ctl_fail(g, CTL_EXIT_ERROR, "out of memory");
            goto out;
        }
        ssize_t r = parse_ids(g, text, ids, CTL_TOKENS_MAX);
        if (r < 0) {
            code = CTL_EXIT_USAGE;
            goto out;
        }
        if (r == 0) {
            code = ctl_usage_error(g, "--decode: no token ids in TEXT");
            goto out;
        }
        n_ids = (size_t)r;
    }
    if ((code = ctl_connect(g)))
        goto out;
    char name[CTL_PATH_MAX + 1];
    char pbuf[CTL_PATH_MAX];
    const char *marg = ctl_model_arg(model, pbuf, sizeof(pbuf));
    int fr = ctl_find_resident(g, marg, name, sizeof(name), NULL);
    if (fr > 1) {
        code = fr;
        goto out;
    }
    if (fr == 0)
        snprintf(name, sizeof(name), "%s", marg); /* let the daemon say it is not loaded */
    struct bnc_error err;
    if (decode) {
        struct bnc_text_result t;
        if (bnc_detokenize(g->conn, name, ids, n_ids, &t, &err) < 0) {
            code = ctl_fail_bnc(g, &err);
            goto out;
        }
        if (g->json) {
            struct ctl_json j;
            ctl_json_init(&j, g->out, true);
            ctl_json_begin_object(&j);
            ctl_json_key(&j, "model");
            ctl_json_string(&j, name);
            ctl_json_key(&j, "text");
            ctl_json_string(&j, t.text);
            ctl_json_end_object(&j);
            ctl_json_finish(&j);
        } else {
            fputs(t.text, g->out);
            if (g->out_tty)
                fputc('\n', g->out);
        }
        bnc_result_free(&t);
    } else {
        struct bnc_tokens_result t;
        if (bnc_tokenize(g->conn, name, text, add_bos, special, &t, &err) < 0) {
            code = ctl_fail_bnc(g, &err);
            goto out;
        }
        code = print_tokens(g, name, t.tokens, t.n_tokens);
        bnc_result_free(&t);
    }
out:
    free(ids);
    free(text);
    free(words);
    return code;
}
