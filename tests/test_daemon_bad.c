/* tests/test_daemon_bad.c — bad input against a real bitnetd while another client keeps
 * streaming: garbage bytes, frames over the cap, wrong msgpack types in every field
 * of every method (driven by libipc's schema tables), unknown methods, missing
 * params, huge max_tokens, absurd sampler values, loads of files that are not
 * models.  Each gets a protocol error (framing errors: then the connection closes)
 * and the streaming client gets exactly what the engine alone computes. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon_harness.h"

ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
    (void)set;
    dh_model_setup();
}
ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
    (void)stats;
    dh_model_cleanup();
}

static struct dh D;
static void fini(void)
{
    dh_cleanup(&D);
}

#define CAP 65536 /* max_message_bytes of the daemon under test */

static void start(void)
{
    if (!dh_model_path())
        cr_skip_test("%s", dh_model_why());
    cr_assert_eq(dh_start(&D, "max_message_bytes = 64K\nallow_client_paths = true\n", NULL), 0);
}

/* ---- the witness: a client streaming a long greedy generation meanwhile ---- */
static const int32_t WP[] = {3, 1, 4, 1, 5, 9, 2, 6};
#define WN 100

struct witness {
    struct tc c;
    uint32_t id;
};

static void witness_start(struct witness *w)
{
    cr_assert_eq(tc_connect(&w->c, D.sock), 0);
    cr_assert_eq(tc_load_tiny(&w->c, NULL, 0, false), 0);
    struct bn_rpc_generate_params gp;
    tc_gen_tokens(&gp, WP, 8, WN, true);
    w->id = tc_send(&w->c, BN_RPC_GENERATE, &gp);
}

static void witness_check(struct witness *w)
{
    struct bn_rpc_generate_result r;
    struct bn_rpc_error e;
    cr_assert_eq(tc_wait(&w->c, w->id, BN_RPC_GENERATE, &r, &e), 0, "witness: %d %s", e.code, e.message);
    int32_t want[WN];
    size_t n;
    cr_assert_eq(engine_greedy(dh_model_path(), WP, 8, WN, want, &n), 0);
    size_t k = 0;
    for (size_t i = 0; i < w->c.n_tokens; i++)
        if (w->c.tokens[i].msgid == w->id) {
            cr_assert_eq(w->c.tokens[i].token, want[k], "witness token %zu", k);
            k++;
        }
    cr_assert_gt(k, 0);
    tc_close(&w->c);
}

/* ---- raw requests ---- */

struct raw {
    msgpack_sbuffer sb;
    msgpack_packer pk;
};
static void raw_init(struct raw *r)
{
    msgpack_sbuffer_init(&r->sb);
    msgpack_packer_init(&r->pk, &r->sb, msgpack_sbuffer_write);
}
static void pack_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}
static void raw_head(struct raw *r, uint32_t id, const char *method)
{
    msgpack_pack_array(&r->pk, 4);
    msgpack_pack_uint8(&r->pk, 0);
    msgpack_pack_uint32(&r->pk, id);
    pack_str(&r->pk, method);
}

/* A valid value for field f (required fields around the one under test). */
static void pack_valid(msgpack_packer *pk, const struct bn_rpc_field *f);
static void pack_valid_obj(msgpack_packer *pk, const struct bn_rpc_schema *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n_fields; i++)
        n += (s->fields[i].flags & BN_RPC_F_REQUIRED) != 0;
    msgpack_pack_map(pk, n);
    for (size_t i = 0; i < s->n_fields; i++)
        if (s->fields[i].flags & BN_RPC_F_REQUIRED) {
            pack_str(pk, s->fields[i].name);
            pack_valid(pk, &s->fields[i]);
        }
}
static void pack_valid(msgpack_packer *pk, const struct bn_rpc_field *f)
{
    switch (f->type) {
    case BN_RPC_T_BOOL: msgpack_pack_true(pk); break;
    case BN_RPC_T_I32:
    case BN_RPC_T_I64:
    case BN_RPC_T_U32: msgpack_pack_int64(pk, f->lo > 1 ? (int64_t)f->lo : (f->hi >= 1 ? 1 : (int64_t)f->lo)); break;
    case BN_RPC_T_NUM: msgpack_pack_double(pk, f->hi >= 1 && f->lo < 1 ? 1.0 : f->lo); break;
    case BN_RPC_T_STR: pack_str(pk, "tiny"); break;
    case BN_RPC_T_ENUM: pack_str(pk, f->names[f->n_names > 1 ? 1 : 0]); break;
    case BN_RPC_T_STRS: msgpack_pack_array(pk, 1); pack_str(pk, "x"); break;
    case BN_RPC_T_I32S: msgpack_pack_array(pk, 1); msgpack_pack_int32(pk, 1); break;
    case BN_RPC_T_OBJ: pack_valid_obj(pk, f->sub); break;
    case BN_RPC_T_OBJS: msgpack_pack_array(pk, 1); pack_valid_obj(pk, f->sub); break;
    case BN_RPC_T_STRMAP: msgpack_pack_map(pk, 1); pack_str(pk, "a"); pack_str(pk, "b"); break;
    }
}
/* A value of the wrong msgpack type for f. */
static void pack_wrong(msgpack_packer *pk, const struct bn_rpc_field *f, int variant)
{
    switch (f->type) {
    case BN_RPC_T_STR:
    case BN_RPC_T_ENUM:
        if (variant) { /* bin is not str */
            msgpack_pack_bin(pk, 3);
            msgpack_pack_bin_body(pk, "abc", 3);
        } else {
            msgpack_pack_int(pk, 5);
        }
        break;
    case BN_RPC_T_BOOL:
        if (variant)
            msgpack_pack_nil(pk);
        else
            msgpack_pack_int(pk, 1); /* 1 is not true */
        break;
    case BN_RPC_T_I32:
    case BN_RPC_T_I64:
    case BN_RPC_T_U32:
        if (variant)
            msgpack_pack_double(pk, 1.5);
        else
            pack_str(pk, "7");
        break;
    case BN_RPC_T_NUM:
        if (variant)
            msgpack_pack_double(pk, NAN);
        else
            pack_str(pk, "1.0");
        break;
    default: /* arrays and maps: the other container, or a string */
        if (!variant)
            pack_str(pk, "x");
        else if (f->type == BN_RPC_T_OBJ || f->type == BN_RPC_T_STRMAP)
            msgpack_pack_array(pk, 0);
        else
            msgpack_pack_map(pk, 0);
        break;
    }
}

/* Send method m with every required field valid and field `bad` (or sub-field `sub`
 * of the OBJ field `bad`) of the wrong type; expect invalid_params naming it. */
static void expect_wrong_type(struct tc *c, enum bn_rpc_method m, size_t bad, const struct bn_rpc_field *sub,
                              int variant)
{
    const struct bn_rpc_schema *s = bn_rpc_params_schema(m);
    const struct bn_rpc_field *bf = &s->fields[bad];
    struct raw r;
    raw_init(&r);
    uint32_t id = 100000 + (uint32_t)m * 100 + (uint32_t)bad * 2 + (uint32_t)variant;
    raw_head(&r, id, bn_rpc_method_name(m));
    size_t n = 0;
    for (size_t i = 0; i < s->n_fields; i++)
        n += i == bad || (s->fields[i].flags & BN_RPC_F_REQUIRED);
    msgpack_pack_map(&r.pk, n);
    for (size_t i = 0; i < s->n_fields; i++) {
        if (i != bad && !(s->fields[i].flags & BN_RPC_F_REQUIRED))
            continue;
        pack_str(&r.pk, s->fields[i].name);
        if (i != bad)
            pack_valid(&r.pk, &s->fields[i]);
        else if (!sub)
            pack_wrong(&r.pk, bf, variant);
        else {
            msgpack_pack_map(&r.pk, 1);
            pack_str(&r.pk, sub->name);
            pack_wrong(&r.pk, sub, variant);
        }
    }
    cr_assert_eq(tc_send_raw(c, r.sb.data, r.sb.size), 0);
    msgpack_sbuffer_destroy(&r.sb);
    struct bn_rpc_error e;
    cr_assert_lt(tc_wait(c, id, m, NULL, &e), 0, "%s.%s%s%s accepted a wrong type", bn_rpc_method_name(m),
                 bf->name, sub ? "." : "", sub ? sub->name : "");
    cr_assert_eq(e.code, BN_RPC_E_INVALID_PARAMS, "%s.%s: %d %s", bn_rpc_method_name(m), bf->name, e.code, e.message);
    cr_assert(strstr(e.message, sub ? sub->name : bf->name), "the message names the field: %s", e.message);
}

Test(bad, wrong_types_in_every_field, .fini = fini)
{
    start();
    struct witness w;
    witness_start(&w);
    struct tc c;
    cr_assert_eq(tc_connect(&c, D.sock), 0);
    int checked = 0;
    for (int m = 0; m < BN_RPC_METHOD_COUNT; m++) {
        const struct bn_rpc_schema *s = bn_rpc_params_schema((enum bn_rpc_method)m);
        for (size_t i = 0; i < s->n_fields; i++)
            for (int v = 0; v < 2; v++) {
                expect_wrong_type(&c, (enum bn_rpc_method)m, i, NULL, v);
                checked++;
                if (s->fields[i].type == BN_RPC_T_OBJ)
                    for (size_t j = 0; j < s->fields[i].sub->n_fields; j++)
                        expect_wrong_type(&c, (enum bn_rpc_method)m, i, &s->fields[i].sub->fields[j], v);
            }
    }
    cr_assert_gt(checked, 40);
    struct bn_rpc_error e;
    cr_assert_eq(tc_call(&c, BN_RPC_PING, NULL, NULL, &e), 0, "the connection survived them all");
    tc_close(&c);
    witness_check(&w);
    cr_assert_eq(dh_stop(&D), 0);
}

static void expect_framing_error(const uint8_t *bytes, size_t n, int code)
{
    struct tc c;
    cr_assert_eq(tc_connect(&c, D.sock), 0);
    cr_assert_eq(tc_send_raw(&c, bytes, n), 0);
    struct bn_rpc_error e;
    cr_assert_eq(tc_wait_nil(&c, &e), -1);
    cr_assert_eq(e.code, code, "%d %s", e.code, e.message);
    cr_assert(tc_wait_closed(&c, DH_TIMEOUT_MS), "a framing error closes the connection");
    tc_close(&c);
}

Test(bad, framing_errors_close_only_that_connection, .fini = fini)
{
    start();
    struct witness w;
    witness_start(&w);
    static const uint8_t c1[] = {0xc1, 0x00};
    expect_framing_error(c1, sizeof(c1), BN_RPC_E_PARSE);
    static const uint8_t notarray[] = {0x05};
    expect_framing_error(notarray, sizeof(notarray), BN_RPC_E_PARSE);
    static const uint8_t garbage[] = "GET / HTTP/1.1\r\n\r\n";
    expect_framing_error(garbage, sizeof(garbage) - 1, BN_RPC_E_PARSE);
    static const uint8_t huge_array[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    expect_framing_error(huge_array, sizeof(huge_array), BN_RPC_E_MESSAGE_TOO_LARGE);
    static const uint8_t huge_str[] = {0x94, 0x00, 0x01, 0xdb, 0x7f, 0xff, 0xff, 0xff};
    expect_framing_error(huge_str, sizeof(huge_str), BN_RPC_E_MESSAGE_TOO_LARGE);
    uint8_t deep[40];
    memset(deep, 0x91, sizeof(deep));
    expect_framing_error(deep, sizeof(deep), BN_RPC_E_PARSE);
    /* A whole request over the cap: a prompt of 100 kB (cap 64 KiB). */
    {
        struct raw r;
        raw_init(&r);
        raw_head(&r, 1, "generate");
        msgpack_pack_map(&r.pk, 2);
        pack_str(&r.pk, "model");
        pack_str(&r.pk, "tiny");
        pack_str(&r.pk, "prompt");
        char *big = malloc(100000);
        memset(big, 'a', 99999);
        big[99999] = 0;
        pack_str(&r.pk, big);
        free(big);
        expect_framing_error((const uint8_t *)r.sb.data, r.sb.size, BN_RPC_E_MESSAGE_TOO_LARGE);
        msgpack_sbuffer_destroy(&r.sb);
    }
    witness_check(&w);
    cr_assert_eq(dh_stop(&D), 0);
}

Test(bad, malformed_requests_keep_the_connection, .fini = fini)
{
    start();
    struct witness w;
    witness_start(&w);
    struct tc c;
    cr_assert_eq(tc_connect(&c, D.sock), 0);
    struct bn_rpc_error e;
    struct raw r;
    /* missing params: [0, 7, "ping"] is answered to msgid 7 */
    raw_init(&r);
    msgpack_pack_array(&r.pk, 3);
    msgpack_pack_uint8(&r.pk, 0);
    msgpack_pack_uint32(&r.pk, 7);
    pack_str(&r.pk, "ping");
    tc_send_raw(&c, r.sb.data, r.sb.size);
    cr_assert_lt(tc_wait(&c, 7, BN_RPC_PING, NULL, &e), 0);
    cr_assert_eq(e.code, BN_RPC_E_INVALID_REQUEST, "%d %s", e.code, e.message);
    /* params not a map */
    r.sb.size = 0;
    raw_head(&r, 8, "ping");
    msgpack_pack_array(&r.pk, 0);
    tc_send_raw(&c, r.sb.data, r.sb.size);
    cr_assert_lt(tc_wait(&c, 8, BN_RPC_PING, NULL, &e), 0);
    cr_assert_eq(e.code, BN_RPC_E_INVALID_REQUEST);
    /* unknown method */
    r.sb.size = 0;
    raw_head(&r, 9, "frobnicate");
    msgpack_pack_map(&r.pk, 0);
    tc_send_raw(&c, r.sb.data, r.sb.size);
    cr_assert_lt(tc_wait(&c, 9, BN_RPC_PING, NULL, &e), 0);
    cr_assert_eq(e.code, BN_RPC_E_METHOD_NOT_FOUND);
    cr_assert(strstr(e.message, "frobnicate"), "%s", e.message);
    /* a notification from the client: nil-msgid invalid_request */
    r.sb.size = 0;
    msgpack_pack_array(&r.pk, 3);
    msgpack_pack_uint8(&r.pk, 2);
    pack_str(&r.pk, "token");
    msgpack_pack_map(&r.pk, 0);
    tc_send_raw(&c, r.sb.data, r.sb.size);
    cr_assert_eq(tc_wait_nil(&c, &e), -1);
    cr_assert_eq(e.code, BN_RPC_E_INVALID_REQUEST);
    /* missing required field, unknown field, invalid UTF-8 */
    r.sb.size = 0;
    raw_head(&r, 10, "generate");
    msgpack_pack_map(&r.pk, 1);
    pack_str(&r.pk, "prompt");
    pack_str(&r.pk, "hi");
    tc_send_raw(&c, r.sb.data, r.sb.size);
    cr_assert_lt(tc_wait(&c, 10, BN_RPC_GENERATE, NULL, &e), 0);
    cr_assert_eq(e.code, BN_RPC_E_INVALID_PARAMS);
    cr_assert(strstr(e.message, "model"), "%s", e.message);
    r.sb.size = 0;
    raw_head(&r, 11, "generate");
    msgpack_pack_map(&r.pk, 2);
    pack_str(&r.pk, "model");
    pack_str(&r.pk, "tiny");
    pack_str(&r.pk, "prompt");
    msgpack_pack_str(&r.pk, 3);
    msgpack_pack_str_body(&r.pk, "a\xff" "b", 3);
    tc_send_raw(&c, r.sb.data, r.sb.size);
    cr_assert_lt(tc_wait(&c, 11, BN_RPC_GENERATE, NULL, &e), 0);
    cr_assert_eq(e.code, BN_RPC_E_INVALID_PARAMS, "%d %s", e.code, e.message);
    msgpack_sbuffer_destroy(&r.sb);
    cr_assert_eq(tc_call(&c, BN_RPC_PING, NULL, NULL, &e), 0);
    tc_close(&c);
    witness_check(&w);
    cr_assert_eq(dh_stop(&D), 0);
}

Test(bad, absurd_values, .fini = fini)
{
    start();
    struct witness w;
    witness_start(&w);
    struct tc c;
    cr_assert_eq(tc_connect(&c, D.sock), 0);
    struct bn_rpc_error e;
    struct bn_rpc_generate_params gp;
    struct bn_rpc_generate_result gr;
    int32_t p[] = {5, 6, 7};
    /* Out-of-range sampler values: each refused, naming the field. */
    static const char *const fields[] = {"temperature", "top_k", "top_p", "min_p", "repeat_penalty", "seed"};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        tc_gen_tokens(&gp, p, 3, 3, false);
        switch (i) {
        case 0: gp.options.temperature = -1; break;
        case 1: gp.options.top_k = -5; break;
        case 2: gp.options.top_p = 0; break;
        case 3: gp.options.min_p = 2; break;
        case 4: gp.options.repeat_penalty = 1e9; break;
        case 5: gp.options.seed = -2; break;
        }
        cr_assert_lt(tc_call(&c, BN_RPC_GENERATE, &gp, &gr, &e), 0, "%s accepted", fields[i]);
        cr_assert_eq(e.code, BN_RPC_E_INVALID_PARAMS);
        cr_assert(strstr(e.message, fields[i]), "%s", e.message);
    }
    /* max_tokens past the protocol's bound: refused. */
    tc_gen_tokens(&gp, p, 3, 3, false);
    gp.max_tokens = BN_RPC_GEN_TOKENS_MAX + 1;
    cr_assert_lt(tc_call(&c, BN_RPC_GENERATE, &gp, &gr, &e), 0);
    cr_assert_eq(e.code, BN_RPC_E_INVALID_PARAMS);
    /* Huge but legal max_tokens: clamped by the context, and the result says so. */
    gp.max_tokens = BN_RPC_GEN_TOKENS_MAX;
    cr_assert_eq(tc_call(&c, BN_RPC_GENERATE, &gp, &gr, &e), 0, "%d %s", e.code, e.message);
    cr_assert(gr.stats.stop_reason == BN_RPC_STOP_CONTEXT || gr.stats.stop_reason == BN_RPC_STOP_EOS);
    cr_assert_leq(gr.stats.generated_tokens + 3, 257);
    /* A prompt longer than the context. */
    int32_t longp[300];
    for (int i = 0; i < 300; i++)
        longp[i] = 1 + i % 100;
    tc_gen_tokens(&gp, longp, 300, 3, false);
    cr_assert_lt(tc_call(&c, BN_RPC_GENERATE, &gp, &gr, &e), 0);
    cr_assert_eq(e.code, BN_RPC_E_CONTEXT_OVERFLOW, "%d %s", e.code, e.message);
    /* Token ids past the vocabulary. */
    int32_t badids[] = {1, 2, 99999999};
    tc_gen_tokens(&gp, badids, 3, 3, false);
    cr_assert_lt(tc_call(&c, BN_RPC_GENERATE, &gp, &gr, &e), 0);
    cr_assert_eq(e.code, BN_RPC_E_INVALID_PARAMS);
    cr_assert(strstr(e.message, "tokens[2]"), "%s", e.message);
    /* Both prompt and tokens; neither. */
    tc_gen_tokens(&gp, p, 3, 3, false);
    gp.prompt = "x";
    cr_assert_lt(tc_call(&c, BN_RPC_GENERATE, &gp, &gr, &e), 0);
    cr_assert_eq(e.code, BN_RPC_E_INVALID_PARAMS);
    /* Models that are not loaded or not known. */
    tc_gen_tokens(&gp, p, 3, 3, false);
    gp.model = "nope";
    cr_assert_lt(tc_call(&c, BN_RPC_GENERATE, &gp, &gr, &e), 0);
    cr_assert_eq(e.code, BN_RPC_E_MODEL_NOT_LOADED);
    struct bn_rpc_unload_params up = {.name = "nope"};
    cr_assert_lt(tc_call(&c, BN_RPC_UNLOAD, &up, NULL, &e), 0);
    cr_assert_eq(e.code, BN_RPC_E_MODEL_NOT_LOADED);
    tc_close(&c);
    witness_check(&w);
    cr_assert_eq(dh_stop(&D), 0);
}

static void expect_load_error(struct tc *c, const char *model, int code)
{
    struct bn_rpc_load_params lp;
    bn_rpc_init(bn_rpc_params_schema(BN_RPC_LOAD), &lp);
    lp.model = model;
    struct bn_rpc_error e;
    cr_assert_lt(tc_call(c, BN_RPC_LOAD, &lp, NULL, &e), 0, "load of %s succeeded", model);
    cr_assert_eq(e.code, code, "%s: %d %s", model, e.code, e.message);
}

Test(bad, loads_of_files_that_are_not_models, .fini = fini)
{
    start();
    struct witness w;
    witness_start(&w);
    struct tc c;
    cr_assert_eq(tc_connect(&c, D.sock), 0);
    char junk[DH_PATH_MAX + 32], fifo[DH_PATH_MAX + 32], trunc[DH_PATH_MAX + 32];
    snprintf(junk, sizeof(junk), "%s/junk.gguf", D.dir);
    snprintf(fifo, sizeof(fifo), "%s/fifo.gguf", D.dir);
    snprintf(trunc, sizeof(trunc), "%s/trunc.gguf", D.dir);
    FILE *f = fopen(junk, "w");
    for (int i = 0; i < 5000; i++)
        fputs("not a model ", f);
    fclose(f);
    /* the first 1000 bytes of a real model: a header whose tensors are missing */
    FILE *src = fopen(dh_model_path(), "rb");
    char head[1000];
    size_t got = fread(head, 1, sizeof(head), src);
    fclose(src);
    f = fopen(trunc, "wb");
    fwrite(head, 1, got, f);
    fclose(f);
    mkfifo(fifo, 0600);
    expect_load_error(&c, junk, BN_RPC_E_LOAD_FAILED);
    expect_load_error(&c, trunc, BN_RPC_E_LOAD_FAILED);
    expect_load_error(&c, fifo, BN_RPC_E_LOAD_FAILED);
    expect_load_error(&c, D.dir, BN_RPC_E_LOAD_FAILED);
    expect_load_error(&c, "/nonexistent/model.gguf", BN_RPC_E_MODEL_NOT_FOUND);
    expect_load_error(&c, "relative/model.gguf", BN_RPC_E_INVALID_PARAMS);
    expect_load_error(&c, "unknown-name", BN_RPC_E_MODEL_NOT_FOUND);
    /* show of the junk file: load_failed, not a crash */
    struct bn_rpc_show_params sp = {.model = junk};
    struct bn_rpc_error e;
    cr_assert_lt(tc_call(&c, BN_RPC_SHOW, &sp, NULL, &e), 0);
    cr_assert_eq(e.code, BN_RPC_E_LOAD_FAILED, "%d %s", e.code, e.message);
    /* A real model by path (allowed here) under its own name. */
    struct bn_rpc_load_params lp;
    bn_rpc_init(bn_rpc_params_schema(BN_RPC_LOAD), &lp);
    lp.model = dh_model_path();
    lp.name = "bypath";
    struct bn_rpc_load_result lr;
    cr_assert_eq(tc_call(&c, BN_RPC_LOAD, &lp, &lr, &e), 0, "%d %s", e.code, e.message);
    cr_assert_str_eq(lr.name, "bypath");
    lp.name = "bad name!";
    cr_assert_lt(tc_call(&c, BN_RPC_LOAD, &lp, &lr, &e), 0);
    cr_assert_eq(e.code, BN_RPC_E_INVALID_PARAMS);
    struct bn_rpc_status_result st;
    cr_assert_eq(tc_status(&c, &st), 0);
    cr_assert_eq(st.models, 2, "tiny and bypath; the failed loads left nothing");
    tc_close(&c);
    witness_check(&w);
    cr_assert_eq(dh_stop(&D), 0);
}

Test(bad, client_paths_refused_by_default, .fini = fini)
{
    if (!dh_model_path())
        cr_skip_test("%s", dh_model_why());
    cr_assert_eq(dh_start(&D, NULL, NULL), 0);
    struct tc c;
    cr_assert_eq(tc_connect(&c, D.sock), 0);
    expect_load_error(&c, dh_model_path(), BN_RPC_E_PERMISSION_DENIED);
    struct bn_rpc_show_params sp = {.model = dh_model_path()};
    struct bn_rpc_error e;
    cr_assert_lt(tc_call(&c, BN_RPC_SHOW, &sp, NULL, &e), 0);
    cr_assert_eq(e.code, BN_RPC_E_PERMISSION_DENIED);
    tc_close(&c);
    cr_assert_eq(dh_stop(&D), 0);
}
