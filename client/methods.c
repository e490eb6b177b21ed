/* client/methods.c — one function per protocol method: public params -> the
 * protocol's structs (libipc codec) -> one call -> results copied into the public
 * structs.  A result's strings and arrays live in one msgpack zone owned by its
 * `mem` member. */
#include <stdlib.h>
#include <string.h>

#include "conn_internal.h"

_Static_assert((int)BNC_ROLE_ASSISTANT == (int)BN_RPC_ROLE_ASSISTANT && (int)BNC_ROLE_USER == (int)BN_RPC_ROLE_USER,
               "role values match the protocol's");
_Static_assert((int)BNC_STOP_CANCELLED == (int)BN_RPC_STOP_CANCELLED && (int)BNC_STOP_EOS == (int)BN_RPC_STOP_EOS,
               "stop reasons match the protocol's");

void bnc_result_free(void *result)
{
    struct bnc_mem *m = result; /* every *_result struct starts with its bnc_mem */
    if (m && m->zone) {
        msgpack_zone_free(m->zone);
        m->zone = NULL;
    }
}

const char *bnc_stop_reason_name(enum bnc_stop_reason r)
{
    const char *s = bn_rpc_stop_reason_name((enum bn_rpc_stop_reason)r);
    return s ? s : "unknown";
}

/* Run method m; on success the decoded protocol result lives in a new zone handed
 * to *mem.  mem NULL: results without pointers (decoded in a scratch zone). */
static int run(struct bnc_conn *c, enum bn_rpc_method m, const void *params, void *rpc_result,
               struct bnc_mem *mem, bnc_token_fn on_token, bnc_progress_fn on_progress, void *user,
               struct bnc_error *err)
{
    if (!c)
        return bnc_errorf(err, BNC_E_IO, "no connection (NULL)");
    msgpack_zone *z = msgpack_zone_new(MSGPACK_ZONE_CHUNK_SIZE);
    if (!z)
        return bnc_errorf(err, BNC_E_NOMEM, "out of memory");
    struct bnc_call k = {.method = m,
                         .params = params,
                         .result = rpc_result,
                         .zone = z,
                         .on_token = on_token,
                         .on_progress = on_progress,
                         .user = user};
    if (bnc_call_run(c, &k, err)) {
        msgpack_zone_free(z);
        return -1;
    }
    if (mem)
        mem->zone = z;
    else
        msgpack_zone_free(z);
    return 0;
}

static void *zone_array(struct bnc_mem *mem, size_t n, size_t size)
{
    return msgpack_zone_malloc(mem->zone, n ? n * size : 1);
}

static int nomem(struct bnc_mem *mem, struct bnc_error *err)
{
    bnc_result_free(mem);
    return bnc_errorf(err, BNC_E_NOMEM, "out of memory");
}

int bnc_ping(struct bnc_conn *c, struct bnc_error *err)
{
    struct bn_rpc_empty r;
    /* No zone: an empty result allocates nothing, keeping the ping path malloc-free
     * apart from the call itself. */
    if (!c)
        return bnc_errorf(err, BNC_E_IO, "no connection (NULL)");
    struct bnc_call k = {.method = BN_RPC_PING, .result = &r};
    return bnc_call_run(c, &k, err);
}

void bnc_load_params_init(struct bnc_load_params *p)
{
    memset(p, 0, sizeof *p);
}

int bnc_load(struct bnc_conn *c, const struct bnc_load_params *p, bnc_progress_fn progress,
             void *user, struct bnc_load_result *out, struct bnc_error *err)
{
    memset(out, 0, sizeof *out);
    struct bn_rpc_load_params rp = {.model = p->model,
                                    .name = p->name,
                                    .ctx = p->ctx,
                                    .threads = p->threads,
                                    .has_keep_alive = p->has_keep_alive,
                                    .keep_alive = p->keep_alive,
                                    .progress = progress != NULL};
    struct bn_rpc_load_result r;
    if (run(c, BN_RPC_LOAD, &rp, &r, &out->mem, NULL, progress, user, err))
        return -1;
    out->name = r.name;
    out->path = r.path;
    out->bytes = r.bytes;
    out->loaded_by = bn_rpc_loaded_by_name(r.loaded_by);
    out->load_seconds = r.load_seconds;
    out->already_loaded = r.already_loaded;
    return 0;
}

int bnc_unload(struct bnc_conn *c, const char *name, struct bnc_unload_result *out,
               struct bnc_error *err)
{
    struct bnc_unload_result tmp;
    if (!out)
        out = &tmp;
    memset(out, 0, sizeof *out);
    struct bn_rpc_unload_params rp = {.name = name};
    struct bn_rpc_unload_result r;
    if (run(c, BN_RPC_UNLOAD, &rp, &r, &out->mem, NULL, NULL, NULL, err))
        return -1;
    out->name = r.name;
    out->bytes = r.bytes;
    if (out == &tmp)
        bnc_result_free(&tmp);
    return 0;
}

int bnc_list(struct bnc_conn *c, struct bnc_list_result *out, struct bnc_error *err)
{
    memset(out, 0, sizeof *out);
    struct bn_rpc_list_result r;
    if (run(c, BN_RPC_LIST, NULL, &r, &out->mem, NULL, NULL, NULL, err))
        return -1;
    struct bnc_model_entry *a = zone_array(&out->mem, r.n_models, sizeof *a);
    if (!a)
        return nomem(&out->mem, err);
    for (size_t i = 0; i < r.n_models; i++) {
        const struct bn_rpc_model_entry *e = &r.models[i];
        a[i] = (struct bnc_model_entry){e->name, e->path, e->bytes, e->loaded};
    }
    out->models = a;
    out->n_models = r.n_models;
    return 0;
}

int bnc_ps(struct bnc_conn *c, struct bnc_ps_result *out, struct bnc_error *err)
{
    memset(out, 0, sizeof *out);
    struct bn_rpc_ps_result r;
    if (run(c, BN_RPC_PS, NULL, &r, &out->mem, NULL, NULL, NULL, err))
        return -1;
    struct bnc_model_status *a = zone_array(&out->mem, r.n_models, sizeof *a);
    if (!a)
        return nomem(&out->mem, err);
    for (size_t i = 0; i < r.n_models; i++) {
        const struct bn_rpc_model_status *e = &r.models[i];
        a[i] = (struct bnc_model_status){.name = e->name,
                                         .path = e->path,
                                         .bytes = e->bytes,
                                         .loaded_by = bn_rpc_loaded_by_name(e->loaded_by),
                                         .load_seconds = e->load_seconds,
                                         .idle_seconds = e->idle_seconds,
                                         .clients = e->clients,
                                         .ctx = e->ctx,
                                         .keep_alive = e->keep_alive};
    }
    out->models = a;
    out->n_models = r.n_models;
    return 0;
}

int bnc_show(struct bnc_conn *c, const char *model, int64_t ctx, struct bnc_show_result *out,
             struct bnc_error *err)
{
    memset(out, 0, sizeof *out);
    struct bn_rpc_show_params rp = {.model = model, .ctx = ctx};
    struct bn_rpc_show_result r;
    if (run(c, BN_RPC_SHOW, &rp, &r, &out->mem, NULL, NULL, NULL, err))
        return -1;
    struct bnc_tensor_format *f = zone_array(&out->mem, r.n_formats, sizeof *f);
    struct bnc_kv *kv = zone_array(&out->mem, r.n_metadata, sizeof *kv);
    if (!f || !kv)
        return nomem(&out->mem, err);
    for (size_t i = 0; i < r.n_formats; i++)
        f[i] = (struct bnc_tensor_format){r.formats[i].type, r.formats[i].tensors, r.formats[i].bytes};
    for (size_t i = 0; i < r.n_metadata; i++)
        kv[i] = (struct bnc_kv){r.metadata[i].key, r.metadata[i].value};
    out->name = r.name;
    out->path = r.path;
    out->architecture = r.architecture;
    out->file_bytes = r.file_bytes;
    out->n_params = r.n_params;
    out->n_layers = r.n_layers;
    out->n_embd = r.n_embd;
    out->n_heads = r.n_heads;
    out->n_kv_heads = r.n_kv_heads;
    out->n_vocab = r.n_vocab;
    out->ctx_train = r.ctx_train;
    out->ctx = r.ctx;
    out->weights_bytes = r.weights_bytes;
    out->kv_bytes = r.kv_bytes;
    out->formats = f;
    out->n_formats = r.n_formats;
    out->metadata = kv;
    out->n_metadata = r.n_metadata;
    return 0;
}

/* ---- generation ---- */

static void sampler_to_rpc(const struct bnc_sampler *s, struct bn_rpc_sampler *o)
{
    *o = (struct bn_rpc_sampler){.temperature = s->temperature,
                                 .top_k = s->top_k,
                                 .top_p = s->top_p,
                                 .min_p = s->min_p,
                                 .repeat_penalty = s->repeat_penalty,
                                 .repeat_last_n = s->repeat_last_n,
                                 .presence_penalty = s->presence_penalty,
                                 .frequency_penalty = s->frequency_penalty,
                                 .seed = s->seed};
}

/* The protocol's defaults are the single source of the sampler's defaults. */
static void sampler_defaults(struct bnc_sampler *s)
{
    struct bn_rpc_generate_params rp;
    bn_rpc_init(bn_rpc_params_schema(BN_RPC_GENERATE), &rp);
    const struct bn_rpc_sampler *o = &rp.options;
    *s = (struct bnc_sampler){.temperature = o->temperature,
                              .top_k = o->top_k,
                              .top_p = o->top_p,
                              .min_p = o->min_p,
                              .repeat_penalty = o->repeat_penalty,
                              .repeat_last_n = o->repeat_last_n,
                              .presence_penalty = o->presence_penalty,
                              .frequency_penalty = o->frequency_penalty,
                              .seed = o->seed};
}

void bnc_generate_params_init(struct bnc_generate_params *p)
{
    memset(p, 0, sizeof *p);
    sampler_defaults(&p->options);
}

void bnc_chat_params_init(struct bnc_chat_params *p)
{
    memset(p, 0, sizeof *p);
    sampler_defaults(&p->options);
}

static void generate_result_from_rpc(const struct bn_rpc_generate_result *r, struct bnc_generate_result *out)
{
    out->text = r->text;
    out->session = r->session;
    out->stats = (struct bnc_generate_stats){.prompt_tokens = r->stats.prompt_tokens,
                                             .cached_tokens = r->stats.cached_tokens,
                                             .generated_tokens = r->stats.generated_tokens,
                                             .queue_seconds = r->stats.queue_seconds,
                                             .prefill_seconds = r->stats.prefill_seconds,
                                             .decode_seconds = r->stats.decode_seconds,
                                             .prefill_tokens_per_s = r->stats.prefill_tokens_per_s,
                                             .decode_tokens_per_s = r->stats.decode_tokens_per_s,
                                             .stop_reason = (enum bnc_stop_reason)r->stats.stop_reason};
}

int bnc_generate(struct bnc_conn *c, const struct bnc_generate_params *p, bnc_token_fn on_token,
                 void *user, struct bnc_generate_result *out, struct bnc_error *err)
{
    memset(out, 0, sizeof *out);
    struct bn_rpc_generate_params rp = {.model = p->model,
                                        .prompt = p->prompt,
                                        .tokens = p->tokens,
                                        .n_tokens = p->n_tokens,
                                        .system = p->system,
                                        .raw = p->raw,
                                        .stop = p->stop,
                                        .n_stop = p->n_stop,
                                        .max_tokens = p->max_tokens,
                                        .stream = on_token != NULL};
    sampler_to_rpc(&p->options, &rp.options);
    struct bn_rpc_generate_result r;
    if (run(c, BN_RPC_GENERATE, &rp, &r, &out->mem, on_token, NULL, user, err))
        return -1;
    generate_result_from_rpc(&r, out);
    return 0;
}

int bnc_chat(struct bnc_conn *c, const struct bnc_chat_params *p, bnc_token_fn on_token, void *user,
             struct bnc_generate_result *out, struct bnc_error *err)
{
    memset(out, 0, sizeof *out);
    struct bn_rpc_chat_message *msgs = malloc((p->n_messages ? p->n_messages : 1) * sizeof *msgs);
    if (!msgs)
        return bnc_errorf(err, BNC_E_NOMEM, "out of memory");
    for (size_t i = 0; i < p->n_messages; i++)
        msgs[i] = (struct bn_rpc_chat_message){(enum bn_rpc_role)p->messages[i].role,
                                               p->messages[i].content};
    struct bn_rpc_chat_params rp = {.model = p->model,
                                    .messages = msgs,
                                    .n_messages = p->n_messages,
                                    .session = p->session,
                                    .stop = p->stop,
                                    .n_stop = p->n_stop,
                                    .max_tokens = p->max_tokens,
                                    .stream = on_token != NULL};
    sampler_to_rpc(&p->options, &rp.options);
    struct bn_rpc_generate_result r;
    int rc = run(c, BN_RPC_CHAT, &rp, &r, &out->mem, on_token, NULL, user, err);
    free(msgs);
    if (rc)
        return -1;
    generate_result_from_rpc(&r, out);
    return 0;
}

/* ---- tokens, status, metrics, shutdown ---- */

int bnc_tokenize(struct bnc_conn *c, const char *model, const char *text, bool add_special,
                 bool parse_special, struct bnc_tokens_result *out, struct bnc_error *err)
{
    memset(out, 0, sizeof *out);
    struct bn_rpc_tokenize_params rp = {.model = model,
                                        .text = text,
                                        .add_special = add_special,
                                        .parse_special = parse_special};
    struct bn_rpc_tokenize_result r;
    if (run(c, BN_RPC_TOKENIZE, &rp, &r, &out->mem, NULL, NULL, NULL, err))
        return -1;
    out->tokens = r.tokens;
    out->n_tokens = r.n_tokens;
    return 0;
}

int bnc_detokenize(struct bnc_conn *c, const char *model, const int32_t *tokens, size_t n_tokens,
                   struct bnc_text_result *out, struct bnc_error *err)
{
    memset(out, 0, sizeof *out);
    struct bn_rpc_detokenize_params rp = {.model = model, .tokens = tokens, .n_tokens = n_tokens};
    struct bn_rpc_detokenize_result r;
    if (run(c, BN_RPC_DETOKENIZE, &rp, &r, &out->mem, NULL, NULL, NULL, err))
        return -1;
    out->text = r.text;
    return 0;
}

int bnc_status(struct bnc_conn *c, struct bnc_status_result *out, struct bnc_error *err)
{
    memset(out, 0, sizeof *out);
    struct bn_rpc_status_result r;
    if (run(c, BN_RPC_STATUS, NULL, &r, NULL, NULL, NULL, NULL, err))
        return -1;
    out->active_sequences = r.active_sequences;
    out->queued = r.queued;
    out->kv_bytes = r.kv_bytes;
    out->models = r.models;
    out->resident_bytes = r.resident_bytes;
    out->parallel = r.parallel;
    out->max_queue = r.max_queue;
    out->clients = r.clients;
    out->uptime_seconds = r.uptime_seconds;
    return 0;
}

int bnc_metrics(struct bnc_conn *c, struct bnc_text_result *out, struct bnc_error *err)
{
    memset(out, 0, sizeof *out);
    struct bn_rpc_metrics_result r;
    if (run(c, BN_RPC_METRICS, NULL, &r, &out->mem, NULL, NULL, NULL, err))
        return -1;
    out->text = r.text;
    return 0;
}

int bnc_shutdown(struct bnc_conn *c, double grace_seconds, struct bnc_error *err)
{
    struct bn_rpc_shutdown_params rp = {.has_grace_seconds = grace_seconds >= 0,
                                        .grace_seconds = grace_seconds};
    struct bn_rpc_empty r;
    return run(c, BN_RPC_SHUTDOWN, &rp, &r, NULL, NULL, NULL, NULL, err);
}
