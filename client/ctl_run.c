/* client/ctl_run.c — `bitnetctl run` and `bitnetctl chat`: one prompt streamed to
 * stdout with its statistics on stderr, or an interactive conversation whose KV cache
 * the daemon keeps in a chat session.  The sampler flags are those of
 * bench/bitnet-generate, checked against the protocol's ranges before anything is
 * sent. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "ctl.h"

#define CHAT_PROMPT ">>> "
#define CHAT_CONTINUE "... "
#define CHAT_MESSAGES_MAX 4096 /* the protocol's MESSAGES_MAX */

enum {
    OPT_N = 1,
    OPT_TEMP,
    OPT_TOPK,
    OPT_TOPP,
    OPT_MINP,
    OPT_REPEAT_PENALTY,
    OPT_REPEAT_LAST_N,
    OPT_PRESENCE,
    OPT_FREQUENCY,
    OPT_SEED,
    OPT_STOP,
    OPT_SYSTEM,
    OPT_RAW,
    OPT_SESSION,
    OPT_CTX,
    OPT_THREADS,
    OPT_KEEP_ALIVE,
    OPT_QUIET,
};

#define SAMPLER_OPTS                                                                                        \
    {"max-tokens", 'n', true, OPT_N, "N", "tokens to generate; 0: until the model ends its turn [0]"},      \
        {"n-predict", 0, true, OPT_N, "N", NULL},                                                           \
        {"temperature", 0, true, OPT_TEMP, "T", "sampling temperature in [0, 100]; 0: greedy [0.8]"},       \
        {"temp", 0, true, OPT_TEMP, "T", NULL},                                                             \
        {"top-k", 0, true, OPT_TOPK, "K", "keep the K most likely tokens; 0: off [40]"},                    \
        {"top-p", 0, true, OPT_TOPP, "P", "nucleus sampling, in (0, 1]; 1: off [0.95]"},                    \
        {"min-p", 0, true, OPT_MINP, "P", "drop tokens below P times the best one, in [0, 1] [0.05]"},      \
        {"repeat-penalty", 0, true, OPT_REPEAT_PENALTY, "R", "penalty for repeated tokens, in (0, 10] [1]"}, \
        {"repeat-last-n", 0, true, OPT_REPEAT_LAST_N, "N", "tokens the penalties look back over; -1: all [64]"}, \
        {"presence-penalty", 0, true, OPT_PRESENCE, "X", "in [-2, 2] [0]"},                                 \
        {"frequency-penalty", 0, true, OPT_FREQUENCY, "X", "in [-2, 2] [0]"},                               \
        {"seed", 0, true, OPT_SEED, "S", "random seed; -1: random [-1]"},                                   \
        {"stop", 0, true, OPT_STOP, "TEXT", "end before TEXT (repeatable, at most 16)"},                    \
        {"system", 0, true, OPT_SYSTEM, "TEXT", "system message"},                                          \
        {"ctx", 0, true, OPT_CTX, "N", "context length if the model gets loaded; 0: trained"},               \
        {"threads", 0, true, OPT_THREADS, "N", "engine threads if the model gets loaded; 0: daemon's"},      \
        {"keep-alive", 0, true, OPT_KEEP_ALIVE, "DURATION", "keep the model loaded this long when idle"},    \
        {"quiet", 'q', false, OPT_QUIET, NULL, "no statistics on stderr"}

const struct ctl_opt ctl_run_opts[] = {
    SAMPLER_OPTS,
    {"raw", 0, false, OPT_RAW, NULL, "complete PROMPT as is, without the chat format"},
    {"session", 0, true, OPT_SESSION, "ID", "chat session id, without PROMPT (default: a new one)"},
    {NULL, 0, false, 0, NULL, NULL},
};
const struct ctl_opt ctl_chat_opts[] = {
    SAMPLER_OPTS,
    {"session", 0, true, OPT_SESSION, "ID", "chat session id (default: a new random one)"},
    {NULL, 0, false, 0, NULL, NULL},
};

struct run_opts {
    struct bnc_sampler s;
    int32_t max_tokens;
    const char *stops[CTL_STOP_MAX];
    size_t n_stop;
    const char *system;
    bool raw;
    const char *session;
    bool quiet;
    struct ctl_load_opts lo;
};

/* Apply one option to ro.  0 done, -1 usage error printed. */
static int run_opt(struct ctl *g, int id, const char *v, struct run_opts *ro)
{
    int64_t i;
    double d;
    switch (id) {
    case OPT_N:
        if (ctl_parse_int(g, "-n", v, 0, CTL_GEN_TOKENS_MAX, &i) < 0)
            return -1;
        ro->max_tokens = (int32_t)i;
        return 0;
    case OPT_TEMP:
        if (ctl_parse_real(g, "--temperature", v, 0, false, 100, false, &ro->s.temperature) < 0)
            return -1;
        return 0;
    case OPT_TOPK:
        if (ctl_parse_int(g, "--top-k", v, 0, 1000000, &i) < 0)
            return -1;
        ro->s.top_k = (int32_t)i;
        return 0;
    case OPT_TOPP: return ctl_parse_real(g, "--top-p", v, 0, true, 1, false, &ro->s.top_p);
    case OPT_MINP: return ctl_parse_real(g, "--min-p", v, 0, false, 1, false, &ro->s.min_p);
    case OPT_REPEAT_PENALTY: return ctl_parse_real(g, "--repeat-penalty", v, 0, true, 10, false, &ro->s.repeat_penalty);
    case OPT_REPEAT_LAST_N:
        if (ctl_parse_int(g, "--repeat-last-n", v, -1, CTL_TOKENS_MAX, &i) < 0)
            return -1;
        ro->s.repeat_last_n = (int32_t)i;
        return 0;
    case OPT_PRESENCE: return ctl_parse_real(g, "--presence-penalty", v, -2, false, 2, false, &ro->s.presence_penalty);
    case OPT_FREQUENCY:
        return ctl_parse_real(g, "--frequency-penalty", v, -2, false, 2, false, &ro->s.frequency_penalty);
    case OPT_SEED:
        if (ctl_parse_int(g, "--seed", v, -1, INT64_MAX, &i) < 0)
            return -1;
        ro->s.seed = i;
        return 0;
    case OPT_STOP:
        if (ro->n_stop == CTL_STOP_MAX) {
            ctl_usage_error(g, "--stop may be given at most %d times", CTL_STOP_MAX);
            return -1;
        }
        if (!*v || strlen(v) > CTL_STOP_LEN_MAX) {
            ctl_usage_error(g, "--stop must be 1 to %d bytes, got %zu", CTL_STOP_LEN_MAX, strlen(v));
            return -1;
        }
        ro->stops[ro->n_stop++] = v;
        return 0;
    case OPT_SYSTEM:
        if (strlen(v) > CTL_TEXT_MAX) {
            ctl_usage_error(g, "--system is longer than %d bytes", CTL_TEXT_MAX);
            return -1;
        }
        ro->system = v;
        return 0;
    case OPT_RAW: ro->raw = true; return 0;
    case OPT_SESSION:
        if (!*v || strlen(v) > CTL_NAME_MAX) {
            ctl_usage_error(g, "--session must be 1 to %d bytes, got %zu", CTL_NAME_MAX, strlen(v));
            return -1;
        }
        ro->session = v;
        return 0;
    case OPT_CTX:
        if (ctl_parse_int(g, "--ctx", v, 0, CTL_CTX_MAX, &ro->lo.ctx) < 0)
            return -1;
        ro->lo.any = true;
        return 0;
    case OPT_THREADS:
        if (ctl_parse_int(g, "--threads", v, 0, CTL_THREADS_MAX, &i) < 0)
            return -1;
        ro->lo.threads = (int32_t)i;
        ro->lo.any = true;
        return 0;
    case OPT_KEEP_ALIVE:
        if (ctl_parse_duration_flag(g, "--keep-alive", v, -CTL_KEEP_ALIVE_MAX, CTL_KEEP_ALIVE_MAX, &d) < 0)
            return -1;
        ro->lo.has_keep_alive = true;
        ro->lo.keep_alive = d;
        ro->lo.any = true;
        return 0;
    case OPT_QUIET: ro->quiet = true; return 0;
    }
    return 0;
}

/* ---- output ---- */

struct stream {
    struct ctl *g;
    bool wrote;
    char last;       /* last byte written */
    bool out_failed; /* stdout closed or full: the generation is cancelled */
    int out_errno;   /* why */
};

static int on_token(void *user, const char *text, size_t len, int32_t token)
{
    (void)token;
    struct stream *st = user;
    if (len) {
        if (fwrite(text, 1, len, st->g->out) != len && !st->out_failed) {
            st->out_failed = true;
            st->out_errno = errno;
        }
        st->wrote = true;
        st->last = text[len - 1];
    }
    if (fflush(st->g->out) != 0 && !st->out_failed) {
        st->out_failed = true;
        st->out_errno = errno;
    }
    return st->out_failed || ctl_interrupted ? 1 : 0;
}

static void print_stats(struct ctl *g, const struct bnc_generate_stats *s)
{
    fprintf(g->err, "%lld prompt tokens", (long long)s->prompt_tokens);
    if (s->cached_tokens)
        fprintf(g->err, " (%lld cached)", (long long)s->cached_tokens);
    if (s->prompt_tokens > s->cached_tokens)
        fprintf(g->err, ", %.1f tok/s", s->prefill_tokens_per_s);
    fprintf(g->err, "; %lld generated", (long long)s->generated_tokens);
    if (s->generated_tokens)
        fprintf(g->err, ", %.1f tok/s", s->decode_tokens_per_s);
    fprintf(g->err, "; stop: %s", bnc_stop_reason_name(s->stop_reason));
    if (g->verbose) {
        char q[24], p[24], d[24];
        fprintf(g->err, "; queue %s, prefill %s, decode %s", ctl_fmt_duration(s->queue_seconds, q, sizeof(q)),
                ctl_fmt_duration(s->prefill_seconds, p, sizeof(p)), ctl_fmt_duration(s->decode_seconds, d, sizeof(d)));
    }
    fputc('\n', g->err);
}

static void result_json(struct ctl *g, const char *model, const struct bnc_generate_result *r, bool pretty)
{
    struct ctl_json j;
    ctl_json_init(&j, g->out, pretty);
    ctl_json_begin_object(&j);
    ctl_json_key(&j, "model");
    ctl_json_string(&j, model);
    ctl_json_key(&j, "text");
    ctl_json_string(&j, r->text);
    if (r->session) {
        ctl_json_key(&j, "session");
        ctl_json_string(&j, r->session);
    }
    const struct bnc_generate_stats *s = &r->stats;
    ctl_json_key(&j, "stats");
    ctl_json_begin_object(&j);
    ctl_json_key(&j, "prompt_tokens");
    ctl_json_int(&j, s->prompt_tokens);
    ctl_json_key(&j, "cached_tokens");
    ctl_json_int(&j, s->cached_tokens);
    ctl_json_key(&j, "generated_tokens");
    ctl_json_int(&j, s->generated_tokens);
    ctl_json_key(&j, "queue_seconds");
    ctl_json_number(&j, s->queue_seconds);
    ctl_json_key(&j, "prefill_seconds");
    ctl_json_number(&j, s->prefill_seconds);
    ctl_json_key(&j, "decode_seconds");
    ctl_json_number(&j, s->decode_seconds);
    ctl_json_key(&j, "prefill_tokens_per_s");
    ctl_json_number(&j, s->prefill_tokens_per_s);
    ctl_json_key(&j, "decode_tokens_per_s");
    ctl_json_number(&j, s->decode_tokens_per_s);
    ctl_json_key(&j, "stop_reason");
    ctl_json_string(&j, bnc_stop_reason_name(s->stop_reason));
    ctl_json_end_object(&j);
    ctl_json_end_object(&j);
    ctl_json_finish(&j);
}

/* After a streamed reply: end the line on a terminal, and always in a chat (one
 * reply per line); a single prompt's text reaches a script exactly. */
static void end_line(struct ctl *g, const struct stream *st, bool always)
{
    if (st->wrote && st->last != '\n' && (g->out_tty || always))
        fputc('\n', g->out);
    fflush(g->out);
}

/* ---- one prompt ---- */

static int run_once(struct ctl *g, const char *model, const char *prompt, const struct run_opts *ro)
{
    struct bnc_generate_params p;
    bnc_generate_params_init(&p);
    p.model = model;
    p.prompt = prompt;
    p.system = ro->system;
    p.raw = ro->raw;
    p.options = ro->s;
    p.stop = ro->stops;
    p.n_stop = ro->n_stop;
    p.max_tokens = ro->max_tokens;
    struct stream st = {.g = g};
    struct bnc_generate_result res;
    struct bnc_error err;
    ctl_sigint_arm(g->conn);
    int rc = bnc_generate(g->conn, &p, g->json ? NULL : on_token, &st, &res, &err);
    ctl_sigint_disarm();
    if (rc < 0)
        return ctl_fail_model_request(g, &err);
    if (g->json)
        result_json(g, model, &res, true);
    else
        end_line(g, &st, false);
    if (!ro->quiet && !g->json)
        print_stats(g, &res.stats);
    int code = CTL_EXIT_OK;
    if (st.out_failed)
        code = ctl_fail(g, CTL_EXIT_ERROR, "writing to stdout failed (%s); the generation was cancelled",
                        strerror(st.out_errno ? st.out_errno : EIO));
    else if (ctl_interrupted)
        code = CTL_EXIT_INTERRUPTED;
    bnc_result_free(&res);
    return code;
}

/* ---- chat ---- */

struct history {
    struct bnc_chat_message *m;
    size_t n, cap;
};

static int history_push(struct history *h, enum bnc_role role, const char *text)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 16;
        struct bnc_chat_message *m = realloc(h->m, cap * sizeof(*m));
        if (!m)
            return -1;
        h->m = m;
        h->cap = cap;
    }
    char *c = strdup(text);
    if (!c)
        return -1;
    h->m[h->n].role = role;
    h->m[h->n].content = c;
    h->n++;
    return 0;
}

static void history_pop(struct history *h)
{
    if (h->n)
        free((char *)h->m[--h->n].content);
}

/* Keep the system message; drop the oldest turn so the next fits MESSAGES_MAX. */
static void history_trim(struct history *h)
{
    size_t first = h->n && h->m[0].role == BNC_ROLE_SYSTEM ? 1 : 0;
    while (h->n + 1 > CHAT_MESSAGES_MAX && h->n > first) {
        free((char *)h->m[first].content);
        memmove(h->m + first, h->m + first + 1, (h->n - first - 1) * sizeof(*h->m));
        h->n--;
    }
}

static void history_clear(struct history *h, bool keep_system)
{
    size_t keep = keep_system && h->n && h->m[0].role == BNC_ROLE_SYSTEM ? 1 : 0;
    while (h->n > keep)
        history_pop(h);
    if (!keep_system) {
        free(h->m);
        memset(h, 0, sizeof(*h));
    }
}

static void new_session_id(char *buf, size_t size)
{
    uint32_t r[2] = {0, 0};
    if (getrandom(r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r)) {
        r[0] = (uint32_t)getpid() ^ (uint32_t)(ctl_now() * 1e6);
        r[1] = (uint32_t)(ctl_now() * 1e9);
    }
    snprintf(buf, size, "bitnetctl-%08x%08x", r[0], r[1]);
}

/* Read one message (lines ending in '\' continue).  Returns 1 with *msg (malloc'ed),
 * 0 at end of input, -1 when interrupted or on a read error. */
static int read_message(struct ctl *g, char **msg)
{
    char *acc = NULL;
    size_t acc_len = 0;
    bool prompt = g->in_tty;
    const char *ps = CHAT_PROMPT;
    for (;;) {
        if (prompt) {
            fputs(ps, g->out);
            fflush(g->out);
        }
        char *line = NULL;
        size_t cap = 0;
        errno = 0;
        ssize_t n = getline(&line, &cap, g->in);
        if (n < 0) {
            free(line);
            bool intr = ctl_interrupted || errno == EINTR;
            clearerr(g->in);
            if (intr || acc == NULL) {
                free(acc);
                return intr ? -1 : 0;
            }
            *msg = acc; /* input ended after a continuation: send what there is */
            return 1;
        }
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = 0;
        bool more = n > 0 && line[n - 1] == '\\';
        if (more)
            line[--n] = 0;
        char *na = realloc(acc, acc_len + (size_t)n + 2);
        if (!na) {
            free(line);
            free(acc);
            return -1;
        }
        acc = na;
        memcpy(acc + acc_len, line, (size_t)n);
        acc_len += (size_t)n;
        if (more)
            acc[acc_len++] = '\n';
        acc[acc_len] = 0;
        free(line);
        if (!more) {
            *msg = acc;
            return 1;
        }
        ps = CHAT_CONTINUE;
    }
}

static void chat_help(struct ctl *g)
{
    fprintf(g->out, "Commands:\n"
                    "  /bye, /exit   leave (Ctrl-D too)\n"
                    "  /clear        forget the conversation and start a new session\n"
                    "  /help         this list\n"
                    "A line ending in '\\' continues on the next line.  Ctrl-C stops a reply.\n");
}

static int chat_loop(struct ctl *g, const char *model, const struct run_opts *ro)
{
    struct history h = {0};
    char session[CTL_NAME_MAX + 1];
    if (ro->session)
        snprintf(session, sizeof(session), "%s", ro->session);
    else
        new_session_id(session, sizeof(session));
    if (ro->system && history_push(&h, BNC_ROLE_SYSTEM, ro->system) < 0)
        return ctl_fail(g, CTL_EXIT_ERROR, "out of memory");
    if (g->in_tty && !ro->quiet)
        fprintf(g->err, "Chatting with %s: /help for commands, /bye or Ctrl-D to leave.\n", model);
    int code = CTL_EXIT_OK;
    ctl_sigint_arm(g->conn);
    for (;;) {
        ctl_interrupted = 0;
        char *msg;
        int r = read_message(g, &msg);
        if (r == 0) {
            if (g->in_tty)
                fputc('\n', g->out);
            break;
        }
        if (r < 0) {
            if (ctl_interrupted) {
                fputc('\n', g->out);
                code = CTL_EXIT_INTERRUPTED;
            } else {
                code = ctl_fail(g, CTL_EXIT_ERROR, "reading stdin: %s", strerror(errno ? errno : EIO));
            }
            break;
        }
        if (!*msg) {
            free(msg);
            continue;
        }
        if (msg[0] == '/' && !strchr(msg, '\n')) {
            if (!strcmp(msg, "/bye") || !strcmp(msg, "/exit") || !strcmp(msg, "/quit")) {
                free(msg);
                break;
            }
            if (!strcmp(msg, "/clear")) {
                history_clear(&h, true);
                if (!ro->session)
                    new_session_id(session, sizeof(session));
                fprintf(g->err, "Cleared the conversation.\n");
            } else if (!strcmp(msg, "/help") || !strcmp(msg, "/?")) {
                chat_help(g);
            } else {
                fprintf(g->err, "Unknown command '%s': /help lists them.\n", msg);
            }
            free(msg);
            continue;
        }
        if (strlen(msg) > CTL_TEXT_MAX) {
            fprintf(g->err, "bitnetctl %s: the message is longer than %d bytes; not sent\n", g->cmd->name,
                    CTL_TEXT_MAX);
            free(msg);
            continue;
        }
        history_trim(&h);
        int pushed = history_push(&h, BNC_ROLE_USER, msg);
        free(msg);
        if (pushed < 0) {
            code = ctl_fail(g, CTL_EXIT_ERROR, "out of memory");
            break;
        }
        struct bnc_chat_params p;
        bnc_chat_params_init(&p);
        p.model = model;
        p.messages = h.m;
        p.n_messages = h.n;
        p.session = session;
        p.options = ro->s;
        p.stop = ro->stops;
        p.n_stop = ro->n_stop;
        p.max_tokens = ro->max_tokens;
        struct stream st = {.g = g};
        struct bnc_generate_result res;
        struct bnc_error err;
        int rc = bnc_chat(g->conn, &p, g->json ? NULL : on_token, &st, &res, &err);
        if (rc < 0) {
            history_pop(&h);
            if (ctl_interrupted && err.code == BNC_E_CANCELLED) {
                fputc('\n', g->out);
                continue;
            }
            int c = ctl_fail_model_request(g, &err);
            /* A terminal user may go on (e.g. after "busy"); a script stops with the code. */
            if (!g->in_tty || err.code == BNC_E_IO || err.code == BNC_E_PROTOCOL) {
                code = c;
                break;
            }
            continue;
        }
        if (g->json)
            result_json(g, model, &res, false);
        else
            end_line(g, &st, true);
        if (g->verbose)
            print_stats(g, &res.stats);
        bool cancelled = res.stats.stop_reason == BNC_STOP_CANCELLED;
        if (cancelled || st.out_failed)
            history_pop(&h); /* a cut-off turn is not part of the conversation */
        else if (history_push(&h, BNC_ROLE_ASSISTANT, res.text) < 0)
            code = ctl_fail(g, CTL_EXIT_ERROR, "out of memory");
        bnc_result_free(&res);
        if (st.out_failed) {
            code = ctl_fail(g, CTL_EXIT_ERROR, "writing to stdout failed; the reply was cancelled");
            break;
        }
        if (code != CTL_EXIT_OK)
            break;
        if (cancelled && !g->in_tty) {
            code = CTL_EXIT_INTERRUPTED;
            break;
        }
    }
    ctl_sigint_disarm();
    history_clear(&h, false);
    return code;
}

/* ---- the commands ---- */

static int run_common(struct ctl *g, int argc, char **argv, bool chat_cmd)
{
    struct run_opts ro;
    memset(&ro, 0, sizeof(ro));
    struct bnc_generate_params defaults;
    bnc_generate_params_init(&defaults);
    ro.s = defaults.options;
    ro.max_tokens = 0;
    struct ctl_parser p;
    ctl_parser_init(&p, argc, argv);
    const char *v;
    const char *model = NULL;
    char **words = calloc((size_t)argc + 1, sizeof(*words));
    if (!words)
        return ctl_fail(g, CTL_EXIT_ERROR, "out of memory");
    size_t n_words = 0;
    int o, code = CTL_EXIT_OK;
    while ((o = ctl_next(g, &p, &v)) != CTL_OPT_END) {
        if (o == CTL_OPT_BAD) {
            code = CTL_EXIT_USAGE;
            goto out;
        }
        if (o == CTL_OPT_HELP) {
            ctl_print_help(g->out, g->cmd);
            goto out;
        }
        if (o == CTL_OPT_POS) {
            if (!model)
                model = v;
            else
                words[n_words++] = (char *)v;
            continue;
        }
        if (run_opt(g, o, v, &ro) < 0) {
            code = CTL_EXIT_USAGE;
            goto out;
        }
    }
    if (!model) {
        code = ctl_usage_error(g, "missing MODEL");
        goto out;
    }
    if (!*model || strlen(model) > CTL_PATH_MAX) {
        code = ctl_usage_error(g, "MODEL must be 1 to %d bytes", CTL_PATH_MAX);
        goto out;
    }
    if (chat_cmd && n_words) {
        code = ctl_usage_error(g, "takes no PROMPT (got '%s'); use bitnetctl run MODEL PROMPT", words[0]);
        goto out;
    }
    bool from_stdin = n_words == 1 && strcmp(words[0], "-") == 0;
    bool interactive = chat_cmd || (n_words == 0 && g->in_tty);
    if (n_words == 0 && !interactive)
        from_stdin = true;
    if (interactive && ro.raw) {
        code = ctl_usage_error(g, "--raw applies to a single prompt, not to a chat");
        goto out;
    }
    if (!interactive && ro.session) {
        code = ctl_usage_error(g, "--session applies to a chat (run MODEL without PROMPT), not to a single prompt");
        goto out;
    }
    char *prompt = NULL;
    if (!interactive) {
        size_t len = 0;
        if (from_stdin) {
            prompt = ctl_read_all(g->in, CTL_TEXT_MAX, &len);
            if (!prompt) {
                code = errno == EFBIG ? ctl_usage_error(g, "the prompt on stdin is longer than %d bytes", CTL_TEXT_MAX)
                                      : ctl_fail(g, CTL_EXIT_ERROR, "reading the prompt from stdin: %s", strerror(errno));
                goto out;
            }
            if (memchr(prompt, 0, len)) {
                free(prompt);
                code = ctl_usage_error(g, "the prompt on stdin contains a NUL byte");
                goto out;
            }
            while (len && (prompt[len - 1] == '\n' || prompt[len - 1] == '\r'))
                prompt[--len] = 0;
        } else {
            for (size_t i = 0; i < n_words; i++)
                len += strlen(words[i]) + 1;
            if (len > CTL_TEXT_MAX + 1) {
                code = ctl_usage_error(g, "PROMPT is longer than %d bytes", CTL_TEXT_MAX);
                goto out;
            }
            prompt = malloc(len + 1);
            if (!prompt) {
                code = ctl_fail(g, CTL_EXIT_ERROR, "out of memory");
                goto out;
            }
            prompt[0] = 0;
            for (size_t i = 0; i < n_words; i++) {
                if (i)
                    strcat(prompt, " ");
                strcat(prompt, words[i]);
            }
            len = strlen(prompt);
        }
        if (len == 0) {
            free(prompt);
            code = ctl_usage_error(g, "the prompt is empty");
            goto out;
        }
    }
    code = ctl_connect(g);
    if (code == CTL_EXIT_OK) {
        char name[CTL_PATH_MAX + 1];
        int64_t ctx;
        code = ctl_ensure_loaded(g, model, &ro.lo, name, sizeof(name), &ctx);
        if (code == CTL_EXIT_OK)
            code = interactive ? chat_loop(g, name, &ro) : run_once(g, name, prompt, &ro);
    }
    free(prompt);
out:
    free(words);
    return code;
}

int ctl_cmd_run(struct ctl *g, int argc, char **argv)
{
    return run_common(g, argc, argv, false);
}

int ctl_cmd_chat(struct ctl *g, int argc, char **argv)
{
    return run_common(g, argc, argv, true);
}
