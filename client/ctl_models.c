/* client/ctl_models.c — the model commands: load, unload, ps, list, show. */
#include "config.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

enum { OPT_NAME = 1, OPT_CTX, OPT_THREADS, OPT_KEEP_ALIVE, OPT_QUIET };

const struct ctl_opt ctl_load_opts[] = {
    {"name", 0, true, OPT_NAME, "NAME", "register the model under NAME (default: configured or file name)"},
    {"ctx", 0, true, OPT_CTX, "N", "context length in tokens; 0: the model's trained context [0]"},
    {"threads", 0, true, OPT_THREADS, "N", "engine threads; 0: the daemon's setting [0]"},
    {"keep-alive", 0, true, OPT_KEEP_ALIVE, "DURATION",
     "unload after being idle this long: 30s, 5m, 1h; 0: at once; -1: never [daemon's, 5m]"},
    {NULL, 0, false, 0, NULL, NULL},
};
const struct ctl_opt ctl_unload_opts[] = {{NULL, 0, false, 0, NULL, NULL}};
const struct ctl_opt ctl_ps_opts[] = {
    {"quiet", 'q', false, OPT_QUIET, NULL, "names only, one per line"},
    {NULL, 0, false, 0, NULL, NULL},
};
const struct ctl_opt ctl_list_opts[] = {
    {"quiet", 'q', false, OPT_QUIET, NULL, "names only, one per line"},
    {NULL, 0, false, 0, NULL, NULL},
};
const struct ctl_opt ctl_show_opts[] = {
    {"ctx", 0, true, OPT_CTX, "N", "context length for the KV cache estimate; 0: trained [0]"},
    {NULL, 0, false, 0, NULL, NULL},
};

/* Positional arguments of a command with no-value options handled by `opt`.
 * Returns CTL_EXIT_OK with pos filled, -1 when --help was printed (exit 0), or an
 * exit code. */
typedef int (*opt_fn)(struct ctl *g, int id, const char *val, void *state);
static int parse_args(struct ctl *g, int argc, char **argv, const char **pos, size_t max_pos, size_t min_pos,
                      size_t *n_pos, opt_fn opt, void *state)
{
    struct ctl_parser p;
    ctl_parser_init(&p, argc, argv);
    const char *v;
    int o;
    *n_pos = 0;
    while ((o = ctl_next(g, &p, &v)) != CTL_OPT_END) {
        if (o == CTL_OPT_BAD)
            return CTL_EXIT_USAGE;
        if (o == CTL_OPT_HELP) {
            ctl_print_help(g->out, g->cmd);
            return -1;
        }
        if (o == CTL_OPT_POS) {
            if (*n_pos == max_pos)
                return ctl_usage_error(g, "unexpected argument '%s'", v);
            pos[(*n_pos)++] = v;
            continue;
        }
        if (opt && opt(g, o, v, state) < 0)
            return CTL_EXIT_USAGE;
    }
    if (*n_pos < min_pos)
        return ctl_usage_error(g, "missing %s", g->cmd->args);
    return CTL_EXIT_OK;
}

#define DONE(rc) ((rc) < 0 ? CTL_EXIT_OK : (rc))

static int quiet_opt(struct ctl *g, int id, const char *val, void *state)
{
    (void)g;
    (void)val;
    if (id == OPT_QUIET)
        *(bool *)state = true;
    return 0;
}

/* ---- load ---- */

struct load_state {
    struct bnc_load_params p;
};

static int load_opt(struct ctl *g, int id, const char *v, void *state)
{
    struct load_state *s = state;
    int64_t i;
    switch (id) {
    case OPT_NAME:
        if (!*v || strlen(v) > CTL_NAME_MAX) {
            ctl_usage_error(g, "--name must be 1 to %d bytes, got %zu", CTL_NAME_MAX, strlen(v));
            return -1;
        }
        s->p.name = v;
        return 0;
    case OPT_CTX: return ctl_parse_int(g, "--ctx", v, 0, CTL_CTX_MAX, &s->p.ctx);
    case OPT_THREADS:
        if (ctl_parse_int(g, "--threads", v, 0, CTL_THREADS_MAX, &i) < 0)
            return -1;
        s->p.threads = (int32_t)i;
        return 0;
    case OPT_KEEP_ALIVE:
        if (ctl_parse_duration_flag(g, "--keep-alive", v, -CTL_KEEP_ALIVE_MAX, CTL_KEEP_ALIVE_MAX, &s->p.keep_alive) < 0)
            return -1;
        s->p.has_keep_alive = true;
        return 0;
    }
    return 0;
}

static int load_progress(void *user, int64_t done, int64_t total)
{
    ctl_progress_update(user, done, total);
    return ctl_interrupted ? 1 : 0;
}

int ctl_cmd_load(struct ctl *g, int argc, char **argv)
{
    struct load_state s;
    bnc_load_params_init(&s.p);
    const char *pos[1];
    size_t n;
    int rc = parse_args(g, argc, argv, pos, 1, 1, &n, load_opt, &s);
    if (rc)
        return DONE(rc);
    if (!*pos[0] || strlen(pos[0]) > CTL_PATH_MAX)
        return ctl_usage_error(g, "PATH|NAME must be 1 to %d bytes", CTL_PATH_MAX);
    char buf[CTL_PATH_MAX];
    s.p.model = ctl_model_arg(pos[0], buf, sizeof(buf));
    if ((rc = ctl_connect(g)))
        return rc;
    struct ctl_progress bar;
    char label[CTL_NAME_MAX + 16];
    ctl_load_label(label, sizeof(label), s.p.name ? s.p.name : pos[0]);
    ctl_progress_start(&bar, g->err_tty && !g->json ? g->err : NULL, label);
    struct bnc_load_result r;
    struct bnc_error err;
    ctl_sigint_arm(g->conn);
    int lr = bnc_load(g->conn, &s.p, bar.f ? load_progress : NULL, &bar, &r, &err);
    ctl_sigint_disarm();
    ctl_progress_finish(&bar);
    if (lr < 0)
        return ctl_fail_bnc(g, &err);
    if (g->json) {
        struct ctl_json j;
        ctl_json_init(&j, g->out, true);
        ctl_json_begin_object(&j);
        ctl_json_key(&j, "name");
        ctl_json_string(&j, r.name);
        ctl_json_key(&j, "path");
        ctl_json_string(&j, r.path);
        ctl_json_key(&j, "bytes");
        ctl_json_int(&j, r.bytes);
        ctl_json_key(&j, "loaded_by");
        ctl_json_string(&j, r.loaded_by);
        ctl_json_key(&j, "load_seconds");
        ctl_json_number(&j, r.load_seconds);
        ctl_json_key(&j, "already_loaded");
        ctl_json_bool(&j, r.already_loaded);
        ctl_json_end_object(&j);
        ctl_json_finish(&j);
    } else if (r.already_loaded) {
        fprintf(g->out, "%s is already loaded (%s)\n", r.name, r.path);
    } else {
        char b[24], d[24];
        fprintf(g->out, "loaded %s: %s by %s in %s\n", r.name, ctl_fmt_bytes(r.bytes, b, sizeof(b)), r.loaded_by,
                ctl_fmt_duration(r.load_seconds, d, sizeof(d)));
    }
    bnc_result_free(&r);
    return CTL_EXIT_OK;
}

/* ---- unload ---- */

int ctl_cmd_unload(struct ctl *g, int argc, char **argv)
{
    const char **pos = calloc((size_t)argc + 1, sizeof(*pos));
    if (!pos)
        return ctl_fail(g, CTL_EXIT_ERROR, "out of memory");
    size_t n;
    int rc = parse_args(g, argc, argv, pos, (size_t)argc, 1, &n, NULL, NULL);
    if (rc == CTL_EXIT_OK)
        rc = ctl_connect(g);
    if (rc) {
        free(pos);
        return DONE(rc);
    }
    struct ctl_json j;
    if (g->json) {
        ctl_json_init(&j, g->out, true);
        ctl_json_begin_array(&j);
    }
    int code = CTL_EXIT_OK;
    for (size_t i = 0; i < n; i++) {
        struct bnc_unload_result r;
        struct bnc_error err;
        if (bnc_unload(g->conn, pos[i], &r, &err) < 0) {
            int c = ctl_fail_bnc(g, &err);
            if (code == CTL_EXIT_OK)
                code = c;
            if (err.code == BNC_E_IO)
                break;
            continue;
        }
        char b[24];
        if (g->json) {
            ctl_json_begin_object(&j);
            ctl_json_key(&j, "name");
            ctl_json_string(&j, r.name);
            ctl_json_key(&j, "bytes");
            ctl_json_int(&j, r.bytes);
            ctl_json_end_object(&j);
        } else if (r.bytes > 0) {
            fprintf(g->out, "unloaded %s (%s freed)\n", r.name, ctl_fmt_bytes(r.bytes, b, sizeof(b)));
        } else {
            fprintf(g->out, "%s unloads when its running sequences finish\n", r.name);
        }
        bnc_result_free(&r);
    }
    if (g->json) {
        ctl_json_end_array(&j);
        ctl_json_finish(&j);
    }
    free(pos);
    return code;
}

/* ---- ps ---- */

static void ps_until(const struct bnc_model_status *m, char *buf, size_t size)
{
    if (m->clients > 0)
        snprintf(buf, size, "in use");
    else if (m->keep_alive < 0)
        snprintf(buf, size, "forever");
    else if (m->keep_alive - m->idle_seconds <= 0)
        snprintf(buf, size, "stopping...");
    else
        ctl_fmt_relative(m->keep_alive - m->idle_seconds, true, buf, size);
}

int ctl_cmd_ps(struct ctl *g, int argc, char **argv)
{
    bool quiet = false;
    size_t n;
    int rc = parse_args(g, argc, argv, NULL, 0, 0, &n, quiet_opt, &quiet);
    if (rc == CTL_EXIT_OK)
        rc = ctl_connect(g);
    if (rc)
        return DONE(rc);
    struct bnc_ps_result ps;
    struct bnc_error err;
    if (bnc_ps(g->conn, &ps, &err) < 0)
        return ctl_fail_bnc(g, &err);
    if (g->json) {
        struct ctl_json j;
        ctl_json_init(&j, g->out, true);
        ctl_json_begin_array(&j);
        for (size_t i = 0; i < ps.n_models; i++) {
            const struct bnc_model_status *m = &ps.models[i];
            ctl_json_begin_object(&j);
            ctl_json_key(&j, "name");
            ctl_json_string(&j, m->name);
            ctl_json_key(&j, "path");
            ctl_json_string(&j, m->path);
            ctl_json_key(&j, "bytes");
            ctl_json_int(&j, m->bytes);
            ctl_json_key(&j, "loaded_by");
            ctl_json_string(&j, m->loaded_by);
            ctl_json_key(&j, "load_seconds");
            ctl_json_number(&j, m->load_seconds);
            ctl_json_key(&j, "idle_seconds");
            ctl_json_number(&j, m->idle_seconds);
            ctl_json_key(&j, "clients");
            ctl_json_int(&j, m->clients);
            ctl_json_key(&j, "ctx");
            ctl_json_int(&j, m->ctx);
            ctl_json_key(&j, "keep_alive");
            ctl_json_number(&j, m->keep_alive);
            ctl_json_end_object(&j);
        }
        ctl_json_end_array(&j);
        ctl_json_finish(&j);
    } else if (quiet) {
        for (size_t i = 0; i < ps.n_models; i++)
            fprintf(g->out, "%s\n", ps.models[i].name);
    } else {
        static const char *const head[] = {"NAME", "SIZE", "LOADED BY", "LOAD TIME", "CTX", "CLIENTS", "UNTIL"};
        struct ctl_table t;
        if (ctl_table_init(&t, 7, head) < 0) {
            bnc_result_free(&ps);
            return ctl_fail(g, CTL_EXIT_ERROR, "out of memory");
        }
        for (size_t i = 0; i < ps.n_models; i++) {
            const struct bnc_model_status *m = &ps.models[i];
            char size[24], lt[24], ctx[24], cl[24], until[64];
            ctl_fmt_bytes(m->bytes, size, sizeof(size));
            ctl_fmt_duration(m->load_seconds, lt, sizeof(lt));
            snprintf(ctx, sizeof(ctx), "%" PRId64, m->ctx);
            snprintf(cl, sizeof(cl), "%" PRId64, m->clients);
            ps_until(m, until, sizeof(until));
            const char *row[] = {m->name, size, m->loaded_by, lt, ctx, cl, until};
            ctl_table_add(&t, row);
        }
        ctl_table_print(&t, g->out);
        ctl_table_free(&t);
    }
    bnc_result_free(&ps);
    return CTL_EXIT_OK;
}

/* ---- list ---- */

int ctl_cmd_list(struct ctl *g, int argc, char **argv)
{
    bool quiet = false;
    size_t n;
    int rc = parse_args(g, argc, argv, NULL, 0, 0, &n, quiet_opt, &quiet);
    if (rc == CTL_EXIT_OK)
        rc = ctl_connect(g);
    if (rc)
        return DONE(rc);
    struct bnc_list_result l;
    struct bnc_error err;
    if (bnc_list(g->conn, &l, &err) < 0)
        return ctl_fail_bnc(g, &err);
    if (g->json) {
        struct ctl_json j;
        ctl_json_init(&j, g->out, true);
        ctl_json_begin_array(&j);
        for (size_t i = 0; i < l.n_models; i++) {
            ctl_json_begin_object(&j);
            ctl_json_key(&j, "name");
            ctl_json_string(&j, l.models[i].name);
            ctl_json_key(&j, "path");
            ctl_json_string(&j, l.models[i].path);
            ctl_json_key(&j, "bytes");
            ctl_json_int(&j, l.models[i].bytes);
            ctl_json_key(&j, "loaded");
            ctl_json_bool(&j, l.models[i].loaded);
            ctl_json_end_object(&j);
        }
        ctl_json_end_array(&j);
        ctl_json_finish(&j);
    } else if (quiet) {
        for (size_t i = 0; i < l.n_models; i++)
            fprintf(g->out, "%s\n", l.models[i].name);
    } else {
        static const char *const head[] = {"NAME", "SIZE", "LOADED", "PATH"};
        struct ctl_table t;
        if (ctl_table_init(&t, 4, head) < 0) {
            bnc_result_free(&l);
            return ctl_fail(g, CTL_EXIT_ERROR, "out of memory");
        }
        for (size_t i = 0; i < l.n_models; i++) {
            char size[24];
            const char *row[] = {l.models[i].name, ctl_fmt_bytes(l.models[i].bytes, size, sizeof(size)),
                                 l.models[i].loaded ? "yes" : "no", l.models[i].path};
            ctl_table_add(&t, row);
        }
        ctl_table_print(&t, g->out);
        ctl_table_free(&t);
    }
    bnc_result_free(&l);
    return CTL_EXIT_OK;
}

/* ---- show ---- */

static int show_opt(struct ctl *g, int id, const char *v, void *state)
{
    if (id == OPT_CTX)
        return ctl_parse_int(g, "--ctx", v, 0, CTL_CTX_MAX, state);
    return 0;
}

static void show_json(struct ctl *g, const struct bnc_show_result *s)
{
    struct ctl_json j;
    ctl_json_init(&j, g->out, true);
    ctl_json_begin_object(&j);
    const struct {
        const char *k;
        const char *v;
    } strs[] = {{"name", s->name}, {"path", s->path}, {"architecture", s->architecture}};
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        ctl_json_key(&j, strs[i].k);
        ctl_json_string(&j, strs[i].v);
    }
    const struct {
        const char *k;
        int64_t v;
    } ints[] = {
        {"file_bytes", s->file_bytes}, {"n_params", s->n_params},   {"n_layers", s->n_layers},
        {"n_embd", s->n_embd},         {"n_heads", s->n_heads},     {"n_kv_heads", s->n_kv_heads},
        {"n_vocab", s->n_vocab},       {"ctx_train", s->ctx_train}, {"ctx", s->ctx},
        {"weights_bytes", s->weights_bytes}, {"kv_bytes", s->kv_bytes},
    };
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        ctl_json_key(&j, ints[i].k);
        ctl_json_int(&j, ints[i].v);
    }
    ctl_json_key(&j, "formats");
    ctl_json_begin_array(&j);
    for (size_t i = 0; i < s->n_formats; i++) {
        ctl_json_begin_object(&j);
        ctl_json_key(&j, "type");
        ctl_json_string(&j, s->formats[i].type);
        ctl_json_key(&j, "tensors");
        ctl_json_int(&j, s->formats[i].tensors);
        ctl_json_key(&j, "bytes");
        ctl_json_int(&j, s->formats[i].bytes);
        ctl_json_end_object(&j);
    }
    ctl_json_end_array(&j);
    ctl_json_key(&j, "metadata");
    ctl_json_begin_object(&j);
    for (size_t i = 0; i < s->n_metadata; i++) {
        ctl_json_key(&j, s->metadata[i].key);
        ctl_json_string(&j, s->metadata[i].value);
    }
    ctl_json_end_object(&j);
    ctl_json_end_object(&j);
    ctl_json_finish(&j);
}

static void show_human(struct ctl *g, const struct bnc_show_result *s)
{
    FILE *f = g->out;
    char a[24], b[24], c[24];
    fprintf(f, "  Model\n");
    fprintf(f, "    %-18s%s\n", "name", s->name);
    fprintf(f, "    %-18s%s\n", "path", s->path);
    fprintf(f, "    %-18s%s\n", "architecture", s->architecture);
    fprintf(f, "    %-18s%s\n", "parameters", ctl_fmt_count(s->n_params, a, sizeof(a)));
    fprintf(f, "    %-18s%s\n", "file size", ctl_fmt_bytes(s->file_bytes, a, sizeof(a)));
    fprintf(f, "    %-18s%" PRId64 "\n", "context length", s->ctx_train);
    fprintf(f, "    %-18s%" PRId64 "\n", "embedding length", s->n_embd);
    fprintf(f, "    %-18s%" PRId64 "\n", "layers", s->n_layers);
    fprintf(f, "    %-18s%" PRId64 " (%" PRId64 " KV)\n", "attention heads", s->n_heads, s->n_kv_heads);
    fprintf(f, "    %-18s%" PRId64 "\n", "vocabulary", s->n_vocab);
    fprintf(f, "\n  Memory (context %" PRId64 ")\n", s->ctx);
    fprintf(f, "    %-18s%s\n", "weights", ctl_fmt_bytes(s->weights_bytes, a, sizeof(a)));
    fprintf(f, "    %-18s%s per sequence\n", "KV cache", ctl_fmt_bytes(s->kv_bytes, b, sizeof(b)));
    fprintf(f, "    %-18s%s\n", "total", ctl_fmt_bytes(s->weights_bytes + s->kv_bytes, c, sizeof(c)));
    if (s->n_formats) {
        fprintf(f, "\n  Tensor formats\n");
        for (size_t i = 0; i < s->n_formats; i++)
            fprintf(f, "    %-18s%" PRId64 " tensors, %s\n", s->formats[i].type, s->formats[i].tensors,
                    ctl_fmt_bytes(s->formats[i].bytes, a, sizeof(a)));
    }
    if (g->verbose && s->n_metadata) {
        size_t w = 0;
        for (size_t i = 0; i < s->n_metadata; i++)
            if (strlen(s->metadata[i].key) > w)
                w = strlen(s->metadata[i].key);
        fprintf(f, "\n  Metadata\n");
        for (size_t i = 0; i < s->n_metadata; i++)
            fprintf(f, "    %-*s  %s\n", (int)w, s->metadata[i].key, s->metadata[i].value);
    } else if (s->n_metadata) {
        fprintf(f, "\n  Metadata: %zu keys (-v lists them)\n", s->n_metadata);
    }
}

int ctl_cmd_show(struct ctl *g, int argc, char **argv)
{
    int64_t ctx = 0;
    const char *pos[1];
    size_t n;
    int rc = parse_args(g, argc, argv, pos, 1, 1, &n, show_opt, &ctx);
    if (rc)
        return DONE(rc);
    if (!*pos[0] || strlen(pos[0]) > CTL_PATH_MAX)
        return ctl_usage_error(g, "NAME|PATH must be 1 to %d bytes", CTL_PATH_MAX);
    char buf[CTL_PATH_MAX];
    const char *model = ctl_model_arg(pos[0], buf, sizeof(buf));
    if ((rc = ctl_connect(g)))
        return rc;
    struct bnc_show_result s;
    struct bnc_error err;
    if (bnc_show(g->conn, model, ctx, &s, &err) < 0)
        return ctl_fail_bnc(g, &err);
    if (g->json)
        show_json(g, &s);
    else
        show_human(g, &s);
    bnc_result_free(&s);
    return CTL_EXIT_OK;
}
