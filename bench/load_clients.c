/* bench/load_clients.c — see load_clients.h. */
#include "config.h"

#include "load_clients.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "bitnet_client.h"
#include "ipc.h"

#define CALL_TIMEOUT_MS 60000   /* any one call: a hang becomes a reported problem */
#define REF_TOKENS 12           /* greedy tokens of a reference generation */
#define STREAM_TOKENS 10
#define CHAT_TOKENS 6
#define CANCEL_TOKENS 200       /* long enough that the cancel comes first */
#define DISCONNECT_TOKENS 200
#define PROBE_TOKENS 4
#define QUIET_POLL_MS 5

static const char *const PROMPTS[] = {
    "The capital of France is",
    "Once upon a time, in a small village by the sea,",
    "def fibonacci(n):",
    "In 1969, the first people to walk on the Moon",
};
#define N_PROMPTS (sizeof(PROMPTS) / sizeof(PROMPTS[0]))

static const char *const TEXTS[] = {
    "Hello, world!",
    "some text to split into tokens, with numbers 12345 and punctuation...",
    "\xc3\xbc" "n" "\xc3\xaf" "c" "\xc3\xb6" "d" "\xc3\xa9 \xe2\x9c\x93 and an emoji \xf0\x9f\x99\x82",
    "   spaces\tand\nnewlines  ",
};
#define N_TEXTS (sizeof(TEXTS) / sizeof(TEXTS[0]))

/* Share of each kind in the mix, in percent (sums to 100). */
static const int MIX[LC_KINDS] = {
    [LC_GENERATE] = 25, [LC_STREAM] = 15, [LC_CHAT] = 15, [LC_TOKENIZE] = 15,
    [LC_PS] = 10,       [LC_CANCEL] = 10, [LC_DISCONNECT] = 10,
};

const char *lc_kind_name(enum lc_kind k)
{
    static const char *const names[LC_KINDS] = {"generate", "stream", "chat", "tokenize", "ps/status",
                                                "cancel", "disconnect"};
    return (unsigned)k < LC_KINDS ? names[k] : "?";
}

struct lc_refs {
    char *text[N_PROMPTS];     /* greedy REF_TOKENS tokens of each prompt (raw) */
    int32_t *ids[N_TEXTS];     /* tokenization of each text (BOS added) */
    size_t n_ids[N_TEXTS];
    int64_t n_vocab;
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static bool utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int n = *p < 0x80 ? 0 : (*p & 0xe0) == 0xc0 ? 1 : (*p & 0xf0) == 0xe0 ? 2 : (*p & 0xf8) == 0xf0 ? 3 : -1;
        if (n < 0 || (n == 1 && *p < 0xc2))
            return false;
        p++;
        for (int i = 0; i < n; i++, p++)
            if ((*p & 0xc0) != 0x80)
                return false;
    }
    return true;
}

static int connect_bnc(struct bnc_conn **c, const char *socket, const char *name, char *why)
{
    struct bnc_options o;
    bnc_options_init(&o);
    o.socket_path = socket;
    o.client_name = name;
    o.timeout_ms = CALL_TIMEOUT_MS;
    o.connect_timeout_ms = CALL_TIMEOUT_MS;
    struct bnc_error e;
    if (bnc_connect(c, &o, &e) < 0) {
        if (why)
            snprintf(why, LC_PROBLEM_MAX, "connect to %.200s: %.280s", socket, e.message);
        return -1;
    }
    return 0;
}

static void greedy_params(struct bnc_generate_params *p, const char *model, const char *prompt, int32_t max)
{
    bnc_generate_params_init(p);
    p->model = model;
    p->prompt = prompt;
    p->raw = true;
    p->max_tokens = max;
    p->options.temperature = 0;
}

/* ---- references ---- */

void lc_refs_free(struct lc_refs *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < N_PROMPTS; i++)
        free(r->text[i]);
    for (size_t i = 0; i < N_TEXTS; i++)
        free(r->ids[i]);
    free(r);
}

int lc_refs_make(struct lc_refs **out, const char *socket, const char *model, char *why)
{
    *out = NULL;
    struct lc_refs *r = calloc(1, sizeof(*r));
    struct bnc_conn *c = NULL;
    if (!r || connect_bnc(&c, socket, "load-clients refs", why) < 0) {
        free(r);
        return -1;
    }
    struct bnc_error e;
    struct bnc_show_result sh = {0};
    int rc = -1;
    if (bnc_show(c, model, 0, &sh, &e) < 0) {
        snprintf(why, LC_PROBLEM_MAX, "show %.200s: %.280s", model, e.message);
        goto done;
    }
    r->n_vocab = sh.n_vocab;
    bnc_result_free(&sh);
    for (size_t i = 0; i < N_PROMPTS; i++) {
        struct bnc_generate_params p;
        greedy_params(&p, model, PROMPTS[i], REF_TOKENS);
        struct bnc_generate_result g = {0};
        if (bnc_generate(c, &p, NULL, NULL, &g, &e) < 0) {
            snprintf(why, LC_PROBLEM_MAX, "reference generation %zu: %.400s", i, e.message);
            goto done;
        }
        r->text[i] = strdup(g.text);
        bnc_result_free(&g);
    }
    for (size_t i = 0; i < N_TEXTS; i++) {
        struct bnc_tokens_result t = {0};
        if (bnc_tokenize(c, model, TEXTS[i], true, false, &t, &e) < 0) {
            snprintf(why, LC_PROBLEM_MAX, "reference tokenization %zu: %.400s", i, e.message);
            goto done;
        }
        r->ids[i] = malloc((t.n_tokens ? t.n_tokens : 1) * sizeof(int32_t));
        if (r->ids[i])
            memcpy(r->ids[i], t.tokens, t.n_tokens * sizeof(int32_t));
        r->n_ids[i] = t.n_tokens;
        bnc_result_free(&t);
    }
    rc = 0;
done:
    bnc_close(c);
    if (rc < 0)
        lc_refs_free(r);
    else
        *out = r;
    return rc;
}

/* ---- one client ---- */

struct client {
    pthread_t th;
    int id;
    const struct lc_config *cfg;
    const struct lc_refs *refs;
    uint64_t rng;
    double *lat[LC_KINDS];     /* ms of each request, by kind */
    size_t n_lat[LC_KINDS];
    uint64_t problems[LC_KINDS];
    uint64_t cancelled;
    char problem[LC_PROBLEM_MAX]; /* its first */
};

static void problem(struct client *cl, enum lc_kind k, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void problem(struct client *cl, enum lc_kind k, const char *fmt, ...)
{
    cl->problems[k]++;
    if (cl->problem[0])
        return;
    int n = snprintf(cl->problem, sizeof(cl->problem), "client %d, %s: ", cl->id, lc_kind_name(k));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cl->problem + n, sizeof(cl->problem) - (size_t)n, fmt, ap);
    va_end(ap);
}

/* Streamed pieces, concatenated. */
struct pieces {
    char *buf;
    size_t len, cap;
    size_t n;
    int stop_after; /* > 0: ask to cancel once this many arrived */
    bool bad_utf8;
};

static int on_piece(void *user, const char *text, size_t len, int32_t token)
{
    (void)token;
    struct pieces *p = user;
    if (!utf8_valid(text))
        p->bad_utf8 = true;
    if (p->len + len + 1 > p->cap) {
        size_t cap = (p->len + len + 1) * 2;
        char *b = realloc(p->buf, cap);
        if (!b)
            return 1;
        p->buf = b;
        p->cap = cap;
    }
    memcpy(p->buf + p->len, text, len);
    p->len += len;
    p->buf[p->len] = 0;
    p->n++;
    return p->stop_after > 0 && p->n >= (size_t)p->stop_after;
}

/* The common checks of a generate/chat answer. */
static bool check_gen(struct client *cl, enum lc_kind k, const struct bnc_generate_result *g, int32_t max_tokens,
                      bool may_cancel)
{
    const struct bnc_generate_stats *s = &g->stats;
    if (!g->text || !utf8_valid(g->text)) {
        problem(cl, k, "the text is missing or not UTF-8");
        return false;
    }
    if (s->prompt_tokens <= 0 || s->generated_tokens < 0 || s->generated_tokens > max_tokens ||
        s->cached_tokens < 0 || s->cached_tokens > s->prompt_tokens || s->queue_seconds < 0 ||
        s->prefill_seconds < 0 || s->decode_seconds < 0) {
        problem(cl, k, "stats out of range: prompt %lld cached %lld generated %lld (max %d)",
                (long long)s->prompt_tokens, (long long)s->cached_tokens, (long long)s->generated_tokens,
                max_tokens);
        return false;
    }
    if (s->stop_reason == BNC_STOP_CANCELLED && !may_cancel) {
        problem(cl, k, "cancelled although nobody cancelled it");
        return false;
    }
    if (s->stop_reason == BNC_STOP_LENGTH && s->generated_tokens != max_tokens) {
        problem(cl, k, "stop_reason length after %lld of %d tokens", (long long)s->generated_tokens, max_tokens);
        return false;
    }
    return true;
}

static void do_generate(struct client *cl, struct bnc_conn *c)
{
    size_t i = splitmix(&cl->rng) % N_PROMPTS;
    struct bnc_generate_params p;
    greedy_params(&p, cl->cfg->model, PROMPTS[i], REF_TOKENS);
    struct bnc_generate_result g = {0};
    struct bnc_error e;
    if (bnc_generate(c, &p, NULL, NULL, &g, &e) < 0)
        problem(cl, LC_GENERATE, "%s (%s)", e.message, bnc_code_name(e.code));
    else if (check_gen(cl, LC_GENERATE, &g, REF_TOKENS, false) && strcmp(g.text, cl->refs->text[i]) != 0)
        problem(cl, LC_GENERATE, "prompt %zu: greedy text differs from the reference taken alone", i);
    bnc_result_free(&g);
}

static void do_stream(struct client *cl, struct bnc_conn *c)
{
    size_t i = splitmix(&cl->rng) % N_PROMPTS;
    struct bnc_generate_params p;
    greedy_params(&p, cl->cfg->model, PROMPTS[i], STREAM_TOKENS);
    p.options.temperature = 0.8;
    p.options.seed = (int64_t)(splitmix(&cl->rng) >> 1);
    struct pieces pc = {0};
    struct bnc_generate_result g = {0};
    struct bnc_error e;
    if (bnc_generate(c, &p, on_piece, &pc, &g, &e) < 0)
        problem(cl, LC_STREAM, "%s (%s)", e.message, bnc_code_name(e.code));
    else if (check_gen(cl, LC_STREAM, &g, STREAM_TOKENS, false)) {
        if (pc.bad_utf8)
            problem(cl, LC_STREAM, "a streamed piece is not UTF-8");
        else if (strcmp(pc.buf ? pc.buf : "", g.text) != 0)
            problem(cl, LC_STREAM, "the streamed pieces do not add up to the text");
        else if ((int64_t)pc.n < g.stats.generated_tokens - 1 || (int64_t)pc.n > g.stats.generated_tokens)
            problem(cl, LC_STREAM, "%zu pieces for %lld tokens", pc.n, (long long)g.stats.generated_tokens);
    }
    free(pc.buf);
    bnc_result_free(&g);
}

static void do_chat(struct client *cl, struct bnc_conn *c)
{
    char session[64], user[96];
    snprintf(session, sizeof(session), "lc-%d-%llu", cl->id, (unsigned long long)(cl->cfg->seed % 1000000));
    snprintf(user, sizeof(user), "Hello from client %d. %s", cl->id, PROMPTS[splitmix(&cl->rng) % N_PROMPTS]);
    struct bnc_chat_message m[] = {{BNC_ROLE_SYSTEM, "Be brief."}, {BNC_ROLE_USER, user}};
    struct bnc_chat_params p;
    bnc_chat_params_init(&p);
    p.model = cl->cfg->model;
    p.messages = m;
    p.n_messages = 2;
    p.session = session;
    p.max_tokens = CHAT_TOKENS;
    p.options.temperature = 0;
    struct bnc_generate_result g = {0};
    struct bnc_error e;
    if (bnc_chat(c, &p, NULL, NULL, &g, &e) < 0)
        problem(cl, LC_CHAT, "%s (%s)", e.message, bnc_code_name(e.code));
    else if (check_gen(cl, LC_CHAT, &g, CHAT_TOKENS, false) && (!g.session || strcmp(g.session, session) != 0))
        problem(cl, LC_CHAT, "session '%s' answered as '%s'", session, g.session ? g.session : "(none)");
    bnc_result_free(&g);
}

static void do_tokenize(struct client *cl, struct bnc_conn *c)
{
    size_t i = splitmix(&cl->rng) % N_TEXTS;
    struct bnc_tokens_result t = {0};
    struct bnc_error e;
    if (bnc_tokenize(c, cl->cfg->model, TEXTS[i], true, false, &t, &e) < 0) {
        problem(cl, LC_TOKENIZE, "%s (%s)", e.message, bnc_code_name(e.code));
    } else if (t.n_tokens != cl->refs->n_ids[i] ||
               memcmp(t.tokens, cl->refs->ids[i], t.n_tokens * sizeof(int32_t)) != 0) {
        problem(cl, LC_TOKENIZE, "text %zu: %zu ids, not the reference's %zu", i, t.n_tokens, cl->refs->n_ids[i]);
    } else {
        for (size_t k = 0; k < t.n_tokens; k++)
            if (t.tokens[k] < 0 || t.tokens[k] >= cl->refs->n_vocab) {
                problem(cl, LC_TOKENIZE, "id %d outside the vocabulary", t.tokens[k]);
                break;
            }
    }
    bnc_result_free(&t);
}

static void do_ps(struct client *cl, struct bnc_conn *c)
{
    struct bnc_error e;
    if (splitmix(&cl->rng) & 1) {
        struct bnc_ps_result ps = {0};
        if (bnc_ps(c, &ps, &e) < 0) {
            problem(cl, LC_PS, "ps: %s (%s)", e.message, bnc_code_name(e.code));
        } else {
            bool found = false;
            for (size_t i = 0; i < ps.n_models; i++) {
                const struct bnc_model_status *m = &ps.models[i];
                if (strcmp(m->name, cl->cfg->model) != 0)
                    continue;
                found = true;
                if (m->bytes <= 0 || m->ctx <= 0 || m->clients < 0 || m->idle_seconds < 0 || !m->loaded_by ||
                    (strcmp(m->loaded_by, "io_uring") && strcmp(m->loaded_by, "pread") &&
                     strcmp(m->loaded_by, "reattach")))
                    problem(cl, LC_PS, "ps entry of %s out of range", m->name);
            }
            if (!found)
                problem(cl, LC_PS, "ps does not list %s", cl->cfg->model);
        }
        bnc_result_free(&ps);
    } else {
        struct bnc_status_result st = {0};
        if (bnc_status(c, &st, &e) < 0)
            problem(cl, LC_PS, "status: %s (%s)", e.message, bnc_code_name(e.code));
        else if (st.active_sequences < 0 || st.queued < 0 || st.kv_bytes < 0 || st.models < 1 ||
                 st.active_sequences > st.parallel || st.clients < 1)
            problem(cl, LC_PS, "status out of range: %lld active, %lld queued, %lld models",
                    (long long)st.active_sequences, (long long)st.queued, (long long)st.models);
        bnc_result_free(&st);
    }
}

static void do_cancel(struct client *cl, struct bnc_conn *c)
{
    struct bnc_generate_params p;
    greedy_params(&p, cl->cfg->model, PROMPTS[splitmix(&cl->rng) % N_PROMPTS], CANCEL_TOKENS);
    struct pieces pc = {.stop_after = 1};
    struct bnc_generate_result g = {0};
    struct bnc_error e;
    if (bnc_generate(c, &p, on_piece, &pc, &g, &e) < 0) {
        problem(cl, LC_CANCEL, "%s (%s)", e.message, bnc_code_name(e.code));
    } else if (check_gen(cl, LC_CANCEL, &g, CANCEL_TOKENS, true)) {
        if (g.stats.stop_reason == BNC_STOP_CANCELLED)
            cl->cancelled++;
        if (g.stats.generated_tokens < 1)
            problem(cl, LC_CANCEL, "cancelled after a token, yet %lld generated", (long long)g.stats.generated_tokens);
    }
    free(pc.buf);
    bnc_result_free(&g);
}

/* A raw connection: hello and a streamed generation in one write, then gone as soon
 * as the first token note (or the answer) arrives. */
static void do_disconnect(struct client *cl)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", cl->cfg->socket);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        problem(cl, LC_DISCONNECT, "connect: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return;
    }
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    struct bn_rpc_hello_params hp = {.version = 1, .client = "load-clients walkaway"};
    struct bn_rpc_generate_params gp;
    bn_rpc_init(bn_rpc_params_schema(BN_RPC_GENERATE), &gp);
    gp.model = cl->cfg->model;
    gp.prompt = PROMPTS[splitmix(&cl->rng) % N_PROMPTS];
    gp.raw = true;
    gp.max_tokens = DISCONNECT_TOKENS;
    gp.stream = true;
    gp.options.temperature = 0;
    bool ok = bn_rpc_encode_request(&pk, 1, BN_RPC_HELLO, &hp) == 0 &&
              bn_rpc_encode_request(&pk, 2, BN_RPC_GENERATE, &gp) == 0 &&
              send(fd, sb.data, sb.size, MSG_NOSIGNAL) == (ssize_t)sb.size;
    msgpack_sbuffer_destroy(&sb);
    if (!ok) {
        problem(cl, LC_DISCONNECT, "send: %s", strerror(errno));
        close(fd);
        return;
    }
    struct bn_rpc_framer fr;
    if (bn_rpc_framer_init(&fr, NULL) < 0) {
        problem(cl, LC_DISCONNECT, "out of memory");
        close(fd);
        return;
    }
    bool hello_ok = false, done = false;
    double deadline = now_ms() + CALL_TIMEOUT_MS;
    while (!done) {
        msgpack_object o;
        struct bn_rpc_error e;
        int r = bn_rpc_framer_next(&fr, &o, &e);
        if (r < 0) {
            problem(cl, LC_DISCONNECT, "undecodable message: %s", e.message);
            break;
        }
        if (r == 1) {
            struct bn_rpc_msg m;
            if (bn_rpc_parse(&o, &m, &e) < 0) {
                problem(cl, LC_DISCONNECT, "not a msgpack-RPC message: %s", e.message);
                break;
            }
            if (m.kind == BN_RPC_RESPONSE && m.has_msgid && m.msgid == 1) {
                hello_ok = m.error == NULL || m.error->type == MSGPACK_OBJECT_NIL;
                if (!hello_ok) {
                    problem(cl, LC_DISCONNECT, "hello refused");
                    break;
                }
            } else if (m.kind == BN_RPC_NOTIFY || (m.kind == BN_RPC_RESPONSE && m.has_msgid && m.msgid == 2)) {
                done = true; /* a token (or the whole answer): walk away now */
                if (m.kind == BN_RPC_RESPONSE && m.error && m.error->type != MSGPACK_OBJECT_NIL)
                    problem(cl, LC_DISCONNECT, "the generation failed");
            }
            continue;
        }
        int left = (int)(deadline - now_ms());
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&pfd, 1, left) <= 0) {
            problem(cl, LC_DISCONNECT, "no token within %d ms", CALL_TIMEOUT_MS);
            break;
        }
        size_t cap;
        char *buf = bn_rpc_framer_buffer(&fr, 65536, &cap);
        ssize_t n = buf ? recv(fd, buf, cap, 0) : -1;
        if (n <= 0) {
            problem(cl, LC_DISCONNECT, "the daemon closed the connection first");
            break;
        }
        bn_rpc_framer_consumed(&fr, (size_t)n);
    }
    bn_rpc_framer_destroy(&fr);
    close(fd);
}

static int pick_kind(struct client *cl)
{
    int x = (int)(splitmix(&cl->rng) % 100);
    for (int k = 0; k < LC_KINDS; k++) {
        if (x < MIX[k])
            return k;
        x -= MIX[k];
    }
    return LC_PS;
}

static void *client_main(void *arg)
{
    struct client *cl = arg;
    char name[48], why[LC_PROBLEM_MAX];
    snprintf(name, sizeof(name), "load-client %d", cl->id);
    struct bnc_conn *c = NULL;
    if (connect_bnc(&c, cl->cfg->socket, name, why) < 0) {
        problem(cl, LC_PS, "%s", why);
        return NULL;
    }
    for (int r = 0; r < cl->cfg->requests; r++) {
        int k = pick_kind(cl);
        double t0 = now_ms();
        switch (k) {
        case LC_GENERATE: do_generate(cl, c); break;
        case LC_STREAM: do_stream(cl, c); break;
        case LC_CHAT: do_chat(cl, c); break;
        case LC_TOKENIZE: do_tokenize(cl, c); break;
        case LC_PS: do_ps(cl, c); break;
        case LC_CANCEL: do_cancel(cl, c); break;
        case LC_DISCONNECT: do_disconnect(cl); break;
        }
        cl->lat[k][cl->n_lat[k]++] = now_ms() - t0;
    }
    bnc_close(c);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array. */
static double pct(const double *v, size_t n, double p)
{
    if (!n)
        return 0;
    size_t i = (size_t)(p / 100.0 * (double)n + 0.5);
    if (i > 0)
        i--;
    return v[i < n ? i : n - 1];
}

int lc_run(const struct lc_config *cfg, const struct lc_refs *refs, struct lc_report *rep)
{
    memset(rep, 0, sizeof(*rep));
    if (cfg->clients < 1 || cfg->clients > LC_CLIENTS_MAX || cfg->requests < 1 || !refs) {
        snprintf(rep->first_problem, sizeof(rep->first_problem), "clients must be 1..%d and requests >= 1",
                 LC_CLIENTS_MAX);
        return -1;
    }
    struct client *cl = calloc((size_t)cfg->clients, sizeof(*cl));
    if (!cl)
        return -1;
    int rc = 0;
    for (int i = 0; i < cfg->clients && rc == 0; i++) {
        cl[i].id = i;
        cl[i].cfg = cfg;
        cl[i].refs = refs;
        cl[i].rng = cfg->seed * 1000003u + (uint64_t)i;
        for (int k = 0; k < LC_KINDS; k++)
            if (!(cl[i].lat[k] = malloc((size_t)cfg->requests * sizeof(double))))
                rc = -1;
    }
    double t0 = now_ms();
    int started = 0;
    for (; rc == 0 && started < cfg->clients; started++)
        if (pthread_create(&cl[started].th, NULL, client_main, &cl[started]) != 0) {
            snprintf(rep->first_problem, sizeof(rep->first_problem), "cannot start client thread %d", started);
            rc = -1;
            break;
        }
    for (int i = 0; i < started; i++)
        pthread_join(cl[i].th, NULL);
    rep->seconds = (now_ms() - t0) / 1e3;

    size_t total = (size_t)cfg->clients * (size_t)cfg->requests;
    double *all = malloc((total ? total : 1) * sizeof(double));
    double *one = malloc((size_t)(total ? total : 1) * sizeof(double));
    size_t n_all = 0;
    for (int k = 0; k < LC_KINDS && all && one; k++) {
        size_t n = 0;
        for (int i = 0; i < cfg->clients; i++) {
            memcpy(one + n, cl[i].lat[k], cl[i].n_lat[k] * sizeof(double));
            n += cl[i].n_lat[k];
            rep->kind[k].problems += cl[i].problems[k];
        }
        memcpy(all + n_all, one, n * sizeof(double));
        n_all += n;
        qsort(one, n, sizeof(double), cmp_double);
        rep->kind[k].n = n;
        rep->kind[k].p50_ms = pct(one, n, 50);
        rep->kind[k].p99_ms = pct(one, n, 99);
        rep->kind[k].max_ms = n ? one[n - 1] : 0;
        rep->problems += rep->kind[k].problems;
    }
    if (all) {
        qsort(all, n_all, sizeof(double), cmp_double);
        rep->p50_ms = pct(all, n_all, 50);
        rep->p99_ms = pct(all, n_all, 99);
    }
    rep->requests = n_all;
    for (int i = 0; i < cfg->clients; i++) {
        rep->cancelled += cl[i].cancelled;
        if (!rep->first_problem[0] && cl[i].problem[0])
            snprintf(rep->first_problem, sizeof(rep->first_problem), "%s", cl[i].problem);
        for (int k = 0; k < LC_KINDS; k++)
            free(cl[i].lat[k]);
    }
    free(all);
    free(one);
    free(cl);
    return rc;
}

/* ---- a working client, idle connections ---- */

int lc_probe(const char *socket, const char *model, int n, double *p50_ms, double *p99_ms, char *why)
{
    struct bnc_conn *c = NULL;
    if (n < 1 || connect_bnc(&c, socket, "load-clients probe", why) < 0)
        return -1;
    double *lat = malloc((size_t)n * sizeof(double));
    int rc = lat ? 0 : -1;
    for (int i = 0; rc == 0 && i < n; i++) {
        struct bnc_error e;
        double t0 = now_ms();
        if (i % 3 == 0) {
            struct bnc_tokens_result t = {0};
            rc = bnc_tokenize(c, model, TEXTS[i % N_TEXTS], true, false, &t, &e);
            bnc_result_free(&t);
        } else if (i % 3 == 1) {
            struct bnc_generate_params p;
            greedy_params(&p, model, PROMPTS[i % N_PROMPTS], PROBE_TOKENS);
            struct bnc_generate_result g = {0};
            rc = bnc_generate(c, &p, NULL, NULL, &g, &e);
            bnc_result_free(&g);
        } else {
            rc = bnc_ping(c, &e);
        }
        if (rc < 0)
            snprintf(why, LC_PROBLEM_MAX, "probe request %d: %.400s", i, e.message);
        lat[i] = now_ms() - t0;
    }
    if (rc == 0) {
        qsort(lat, (size_t)n, sizeof(double), cmp_double);
        *p50_ms = pct(lat, (size_t)n, 50);
        *p99_ms = pct(lat, (size_t)n, 99);
    }
    free(lat);
    bnc_close(c);
    return rc;
}

void lc_idle_close(int *fds, int n)
{
    for (int i = 0; fds && i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(fds);
}

int lc_idle_open(const char *sock_path, int n, int **out, char *why)
{
    *out = NULL;
    int *fds = malloc((size_t)(n > 0 ? n : 1) * sizeof(int));
    if (!fds)
        return -1;
    for (int i = 0; i < n; i++)
        fds[i] = -1;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    struct bn_rpc_hello_params hp = {.version = 1, .client = "load-clients idle"};
    bn_rpc_encode_request(&pk, 1, BN_RPC_HELLO, &hp);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
    int rc = 0;
    /* All connect and say hello first, then every answer is read: the daemon serves
     * them while the others connect. */
    for (int i = 0; rc == 0 && i < n; i++) {
        fds[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fds[i] < 0 || connect(fds[i], (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
            send(fds[i], sb.data, sb.size, MSG_NOSIGNAL) != (ssize_t)sb.size) {
            snprintf(why, LC_PROBLEM_MAX, "idle connection %d of %d: %s", i + 1, n, strerror(errno));
            rc = -1;
        }
    }
    for (int i = 0; rc == 0 && i < n; i++) {
        struct pollfd pfd = {.fd = fds[i], .events = POLLIN};
        char buf[512];
        ssize_t got = poll(&pfd, 1, CALL_TIMEOUT_MS) == 1 ? recv(fds[i], buf, sizeof(buf), 0) : -1;
        /* An answer to msgid 1 without an error: [1, 1, nil, {...}] = 0x94 0x01 0x01 0xc0 */
        if (got < 4 || (unsigned char)buf[0] != 0x94 || buf[1] != 1 || buf[2] != 1 || (unsigned char)buf[3] != 0xc0) {
            snprintf(why, LC_PROBLEM_MAX, "idle connection %d of %d: no hello answer", i + 1, n);
            rc = -1;
        }
    }
    msgpack_sbuffer_destroy(&sb);
    if (rc < 0) {
        lc_idle_close(fds, n);
        return -1;
    }
    *out = fds;
    return 0;
}

struct bnc_conn *lc_connect(const char *socket, const char *name, char *why)
{
    struct bnc_conn *c = NULL;
    return connect_bnc(&c, socket, name, why) < 0 ? NULL : c;
}

int lc_wait_quiet(struct bnc_conn *c, int64_t others, int timeout_ms)
{
    double deadline = now_ms() + timeout_ms;
    int rc = -1;
    while (now_ms() < deadline) {
        struct bnc_status_result st = {0};
        struct bnc_error e;
        if (bnc_status(c, &st, &e) < 0)
            break;
        bool quiet = st.active_sequences == 0 && st.queued == 0 && st.clients == others + 1;
        bnc_result_free(&st);
        if (quiet) {
            rc = 0;
            break;
        }
        struct timespec ts = {0, QUIET_POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
    return rc;
}

pid_t lc_daemon_pid(const char *socket)
{
    struct bnc_conn *c = NULL;
    if (connect_bnc(&c, socket, "load-clients pid", NULL) < 0)
        return -1;
    pid_t pid = (pid_t)bnc_server_info(c)->pid;
    bnc_close(c);
    return pid;
}

long lc_rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long kib = -1;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kib = strtol(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return kib;
}

int lc_fd_count(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

int lc_raise_nofile(int n)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -1;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur >= (rlim_t)n)
        return 0;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < (rlim_t)n)
        return -1;
    rl.rlim_cur = (rlim_t)n;
    return setrlimit(RLIMIT_NOFILE, &rl);
}
