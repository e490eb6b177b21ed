/* bench/bitnet-tokenize — tokenize / detokenize JSON lines with a model's vocabulary,
 * for comparing against other tokenizers and for measuring the tokenizer's speed.
 *
 *   bitnet-tokenize -m MODEL --jsonl FILE            {"text": "..."} -> {"ids": [...]}
 *   bitnet-tokenize -m MODEL --jsonl FILE --decode   {"ids": [...]}  -> {"text": "..."}
 *
 * FILE "-" is standard input; results go to standard output, one line per input line
 * (blank lines are skipped).  No BOS is added.  Special-token texts in the input are
 * parsed as special tokens (and special tokens are rendered as text when decoding)
 * unless --no-special.  --stats prints the vocabulary load time and the tokenizer's
 * throughput (MB/s of text, time inside bn_tokenize / bn_detokenize only) on stderr.
 * Decoded bytes that are not valid UTF-8 (JSON cannot carry them) are written as
 * U+FFFD, and counted on stderr. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bitnet.h"
#include "tokenizer_internal.h" /* bn_utf8_valid_seq */

static void usage(FILE *f)
{
    fprintf(f, "usage: bitnet-tokenize -m MODEL --jsonl FILE [--decode] [--no-special] [--stats]\n"
               "  encode: lines {\"text\": STRING} -> {\"ids\": [INT, ...]} (no BOS)\n"
               "  decode: lines {\"ids\": [INT, ...]} -> {\"text\": STRING}\n"
               "  FILE - reads standard input; output goes to standard output\n");
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Replace every byte that does not start a valid UTF-8 sequence by U+FFFD; returns
 * how many were replaced. */
static size_t to_valid_utf8(const struct bn_bytes *in, struct bn_bytes *out)
{
    size_t replaced = 0;
    out->len = 0;
    for (size_t i = 0; i < in->len;) {
        size_t n = bn_utf8_valid_seq((const uint8_t *)in->data + i, in->len - i);
        if (n) {
            bn_bytes_append(out, in->data + i, n, NULL);
            i += n;
        } else {
            bn_bytes_append(out, "\xef\xbf\xbd", 3, NULL);
            replaced++;
            i++;
        }
    }
    bn_bytes_append(out, "", 0, NULL); /* data non-NULL even when empty */
    return replaced;
}

struct stats {
    size_t lines, bytes, tokens, replaced;
    double seconds;
};

static int encode_line(const struct bn_vocab *v, json_t *j, bool special, struct bn_tokens *t, struct stats *st,
                       const char *where, struct bn_err *err)
{
    json_t *text = json_object_get(j, "text");
    if (!json_is_string(text))
        return bn_errf(err, "%s: no \"text\" string", where);
    t->n = 0;
    double t0 = now_s();
    if (bn_tokenize(v, json_string_value(text), json_string_length(text), false, special, t, err))
        return bn_errf(err, "%s: %s", where, err->msg);
    st->seconds += now_s() - t0;
    st->bytes += json_string_length(text);
    st->tokens += t->n;
    json_t *ids = json_array();
    for (size_t i = 0; i < t->n; i++)
        json_array_append_new(ids, json_integer(t->ids[i]));
    json_t *o = json_pack("{s:o}", "ids", ids);
    json_dumpf(o, stdout, JSON_COMPACT);
    json_decref(o);
    return 0;
}

static int decode_line(const struct bn_vocab *v, json_t *j, bool special, struct bn_tokens *t, struct stats *st,
                       const char *where, struct bn_err *err)
{
    json_t *ids = json_object_get(j, "ids");
    if (!json_is_array(ids))
        return bn_errf(err, "%s: no \"ids\" array", where);
    t->n = 0;
    for (size_t i = 0; i < json_array_size(ids); i++) {
        json_t *x = json_array_get(ids, i);
        json_int_t id = json_integer_value(x);
        if (!json_is_integer(x) || id < INT32_MIN || id > INT32_MAX)
            return bn_errf(err, "%s: ids[%zu] is not a 32-bit integer", where, i);
        if (bn_tokens_push(t, (int32_t)id, err))
            return -1;
    }
    struct bn_bytes raw = { 0 }, text = { 0 };
    double t0 = now_s();
    int rc = bn_detokenize(v, t->ids, t->n, special, &raw, err);
    st->seconds += now_s() - t0;
    if (rc == 0) {
        st->tokens += t->n;
        st->bytes += raw.len;
        st->replaced += to_valid_utf8(&raw, &text);
        json_t *o = json_pack("{s:s%}", "text", text.data, text.len);
        json_dumpf(o, stdout, JSON_COMPACT);
        json_decref(o);
    } else {
        bn_errf(err, "%s: %s", where, err->msg);
    }
    bn_bytes_free(&raw);
    bn_bytes_free(&text);
    return rc;
}

int main(int argc, char **argv)
{
    const char *model = NULL, *jsonl = NULL;
    bool decode = false, special = true, stats = false;
    static const struct option opts[] = {
        { "model", required_argument, 0, 'm' }, { "jsonl", required_argument, 0, 'j' },
        { "decode", no_argument, 0, 'd' },      { "no-special", no_argument, 0, 'n' },
        { "stats", no_argument, 0, 's' },       { "help", no_argument, 0, 'h' },
        { 0, 0, 0, 0 },
    };
    for (int c; (c = getopt_long(argc, argv, "m:h", opts, NULL)) != -1;) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'j': jsonl = optarg; break;
        case 'd': decode = true; break;
        case 'n': special = false; break;
        case 's': stats = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!model || !jsonl || optind != argc) {
        usage(stderr);
        return 2;
    }

    struct bn_err err = { { 0 } };
    struct bn_mapped_file m;
    struct bn_gguf *g = NULL;
    struct bn_vocab *v = NULL;
    double t0 = now_s();
    if (bn_map_file(model, &m, &err) || bn_gguf_open(&g, m.base, m.size, model, 0, &err) ||
        bn_vocab_from_gguf(&v, g, &err)) {
        fprintf(stderr, "bitnet-tokenize: %s\n", err.msg);
        return 1;
    }
    double load_s = now_s() - t0;
    bn_gguf_close(g);
    bn_unmap_file(&m);

    FILE *in = strcmp(jsonl, "-") == 0 ? stdin : fopen(jsonl, "r");
    if (!in) {
        fprintf(stderr, "bitnet-tokenize: cannot open %s: %s\n", jsonl, strerror(errno));
        bn_vocab_free(v);
        return 1;
    }
    const char *name = in == stdin ? "<stdin>" : jsonl;
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    struct bn_tokens t = { 0 };
    struct stats st = { 0 };
    int rc = 0;
    for (ssize_t len; rc == 0 && (len = getline(&line, &cap, in)) > 0;) {
        lineno++;
        if (strspn(line, " \t\r\n") == (size_t)len)
            continue;
        char where[256];
        snprintf(where, sizeof where, "%s:%zu", name, lineno);
        json_error_t je;
        json_t *j = json_loadb(line, (size_t)len, JSON_ALLOW_NUL, &je);
        if (!j) {
            bn_errf(&err, "%s: not JSON: %s", where, je.text);
            rc = -1;
            break;
        }
        rc = decode ? decode_line(v, j, special, &t, &st, where, &err) : encode_line(v, j, special, &t, &st, where, &err);
        json_decref(j);
        if (rc == 0) {
            fputc('\n', stdout);
            st.lines++;
        }
    }
    if (rc)
        fprintf(stderr, "bitnet-tokenize: %s\n", err.msg);
    if (ferror(in)) {
        fprintf(stderr, "bitnet-tokenize: reading %s: %s\n", name, strerror(errno));
        rc = -1;
    }
    if (st.replaced)
        fprintf(stderr, "bitnet-tokenize: %zu decoded bytes were not valid UTF-8 and were written as U+FFFD\n",
                st.replaced);
    if (stats)
        fprintf(stderr,
                "vocabulary: %d tokens, loaded in %.3f s\n"
                "%s: %zu lines, %zu bytes of text, %zu tokens, %.4f s in the %s: %.2f MB/s, %.0f tokens/s\n",
                bn_vocab_n_tokens(v), load_s, decode ? "decode" : "encode", st.lines, st.bytes, st.tokens,
                st.seconds, decode ? "detokenizer" : "tokenizer", st.seconds > 0 ? st.bytes / st.seconds / 1e6 : 0.0,
                st.seconds > 0 ? st.tokens / st.seconds : 0.0);
    free(line);
    if (in != stdin)
        fclose(in);
    bn_tokens_free(&t);
    bn_vocab_free(v);
    return rc ? 1 : 0;
}
