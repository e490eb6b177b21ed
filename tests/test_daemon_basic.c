/* tests/test_daemon_basic.c — a real bitnetd on a temporary socket with a tiny model:
 * handshake, status, load -> generate (streamed and not) -> unload, list/ps/show,
 * tokenize/detokenize, two clients streaming at once against the engine alone,
 * keep-alive unload, load progress. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

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

static void start(const char *conf)
{
    if (!dh_model_path())
        cr_skip_test("%s", dh_model_why());
    cr_assert_eq(dh_start(&D, conf, NULL), 0, "bitnetd did not start");
}
static void fini(void)
{
    dh_cleanup(&D);
}

static const int32_t PROMPT[] = {1, 17, 42, 99, 5, 200, 3};
#define N_PROMPT (sizeof(PROMPT) / sizeof(PROMPT[0]))

Test(daemon, hello_ping_status_metrics, .fini = fini)
{
    start(NULL);
    struct tc c;
    cr_assert_eq(tc_open(&c, D.sock), 0);
    struct bn_rpc_error e;
    /* Anything before hello is refused, the connection stays. */
    cr_assert_lt(tc_call(&c, BN_RPC_PING, NULL, NULL, &e), 0);
    cr_assert_eq(e.code, BN_RPC_E_INVALID_REQUEST, "%d %s", e.code, e.message);
    struct bn_rpc_hello_params hp = {.version = 7, .client = "criterion"};
    struct bn_rpc_hello_result hr;
    cr_assert_eq(tc_call(&c, BN_RPC_HELLO, &hp, &hr, &e), 0, "%s", e.message);
    cr_assert_eq(hr.version, 1);
    cr_assert_eq(hr.max_message_bytes, BN_RPC_MAX_FRAME_DEFAULT);
    cr_assert_eq(hr.pid, D.pid);
    bool stream = false;
    for (size_t i = 0; i < hr.n_capabilities; i++)
        stream |= strcmp(hr.capabilities[i], "stream") == 0;
    cr_assert(stream);
    cr_assert_eq(tc_call(&c, BN_RPC_PING, NULL, NULL, &e), 0);
    struct bn_rpc_status_result st;
    cr_assert_eq(tc_status(&c, &st), 0);
    cr_assert_eq(st.active_sequences, 0);
    cr_assert_eq(st.models, 0);
    cr_assert_eq(st.parallel, 4);
    cr_assert_eq(st.clients, 1);
    struct bn_rpc_metrics_result mr;
    cr_assert_eq(tc_call(&c, BN_RPC_METRICS, NULL, &mr, &e), 0);
    cr_assert(strstr(mr.text, "# TYPE bitnetd_requests_total counter"), "%s", mr.text);
    cr_assert(strstr(mr.text, "bitnetd_requests_total{method=\"ping\"} 2"), "%s", mr.text); /* refused + answered */
    cr_assert(strstr(mr.text, "bitnetd_errors_total{code=\"invalid_request\"} 1"), "%s", mr.text);
    tc_close(&c);
    cr_assert_eq(dh_stop(&D), 0);
}

Test(daemon, load_generate_unload, .fini = fini)
{
    start(NULL);
    struct tc c;
    cr_assert_eq(tc_connect(&c, D.sock), 0);
    struct bn_rpc_error e;
    struct bn_rpc_load_params lp;
    bn_rpc_init(bn_rpc_params_schema(BN_RPC_LOAD), &lp);
    lp.model = "tiny";
    lp.progress = true;
    struct bn_rpc_load_result lr;
    cr_assert_eq(tc_call(&c, BN_RPC_LOAD, &lp, &lr, &e), 0, "%d %s", e.code, e.message);
    cr_assert_str_eq(lr.name, "tiny");
    cr_assert_gt(lr.bytes, 0);
    cr_assert(!lr.already_loaded);
    cr_assert_gt(c.n_progress, 0, "progress notifications were asked for");
    /* Loading again answers at once. */
    cr_assert_eq(tc_call(&c, BN_RPC_LOAD, &lp, &lr, &e), 0);
    cr_assert(lr.already_loaded);

    /* The engine alone, greedy. */
    int32_t want[16];
    size_t n_want;
    cr_assert_eq(engine_greedy(dh_model_path(), PROMPT, N_PROMPT, 16, want, &n_want), 0);

    struct bn_rpc_generate_params gp;
    struct bn_rpc_generate_result gr;
    tc_gen_tokens(&gp, PROMPT, N_PROMPT, 16, false);
    cr_assert_eq(tc_call(&c, BN_RPC_GENERATE, &gp, &gr, &e), 0, "%d %s", e.code, e.message);
    cr_assert_eq(gr.stats.prompt_tokens, (int64_t)N_PROMPT);
    cr_assert_leq(gr.stats.generated_tokens, 16);
    cr_assert_eq(c.n_tokens, 0, "not streamed");

    tc_gen_tokens(&gp, PROMPT, N_PROMPT, 16, true);
    uint32_t id = tc_send(&c, BN_RPC_GENERATE, &gp);
    struct bn_rpc_generate_result gs;
    cr_assert_eq(tc_wait(&c, id, BN_RPC_GENERATE, &gs, &e), 0, "%d %s", e.code, e.message);
    cr_assert_str_eq(gs.text, gr.text, "streamed and not streamed give the same greedy text");
    cr_assert_eq(gs.stats.generated_tokens, gr.stats.generated_tokens);
    size_t n = tc_count_tokens(&c, id);
    cr_assert_eq((int64_t)n, gs.stats.generated_tokens - (gs.stats.stop_reason == BN_RPC_STOP_EOS),
                 "one note per token (the end-of-turn token has no text)");
    /* Same ids as the engine alone, and the notes' text adds up to the result. */
    char joined[4096] = "";
    for (size_t i = 0, k = 0; i < c.n_tokens; i++) {
        if (c.tokens[i].msgid != id)
            continue;
        cr_assert_eq(c.tokens[i].token, want[k], "token %zu: daemon %d, engine %d", k, c.tokens[i].token, want[k]);
        k++;
        strncat(joined, c.tokens[i].text, sizeof(joined) - strlen(joined) - 1);
    }
    cr_assert_str_eq(joined, gs.text);
    if (gs.stats.stop_reason == BN_RPC_STOP_LENGTH)
        cr_assert_eq(gs.stats.generated_tokens, 16);

    /* A text prompt through the chat format. */
    bn_rpc_init(bn_rpc_params_schema(BN_RPC_GENERATE), &gp);
    gp.model = "tiny";
    gp.prompt = "hello there";
    gp.max_tokens = 4;
    gp.options.seed = 7;
    cr_assert_eq(tc_call(&c, BN_RPC_GENERATE, &gp, &gr, &e), 0, "%d %s", e.code, e.message);
    cr_assert_gt(gr.stats.prompt_tokens, 2);
    gp.raw = true;
    cr_assert_eq(tc_call(&c, BN_RPC_GENERATE, &gp, &gr, &e), 0, "%d %s", e.code, e.message);

    struct bn_rpc_unload_params up = {.name = "tiny"};
    struct bn_rpc_unload_result ur;
    cr_assert_eq(tc_call(&c, BN_RPC_UNLOAD, &up, &ur, &e), 0, "%d %s", e.code, e.message);
    cr_assert_eq(ur.bytes, lr.bytes);
    struct bn_rpc_status_result st;
    cr_assert_eq(tc_status(&c, &st), 0);
    cr_assert_eq(st.models, 0);
    cr_assert_eq(st.kv_bytes, 0);
    /* A configured model is loaded on demand by a generate. */
    cr_assert_eq(tc_call(&c, BN_RPC_GENERATE, &gp, &gr, &e), 0, "%d %s", e.code, e.message);
    cr_assert(dh_log_has(&D, "on demand"));
    cr_assert_eq(tc_status(&c, &st), 0);
    cr_assert_eq(st.models, 1);
    tc_close(&c);
    cr_assert_eq(dh_stop(&D), 0);
}

/* head_q8 = true: loads requantize the F16 head; the tokens are those of the engine
 * alone with bn_model_params.head_q8. */
Test(daemon, head_q8_setting, .fini = fini)
{
    start("head_q8 = true\n");
    struct tc c;
    cr_assert_eq(tc_connect(&c, D.sock), 0);
    struct bn_rpc_error e;
    int32_t want[16];
    size_t n_want;
    cr_assert_eq(engine_greedy_head(dh_model_path(), true, PROMPT, N_PROMPT, 16, want, &n_want), 0);
    struct bn_rpc_generate_params gp;
    tc_gen_tokens(&gp, PROMPT, N_PROMPT, 16, true);
    uint32_t id = tc_send(&c, BN_RPC_GENERATE, &gp);
    struct bn_rpc_generate_result gs;
    cr_assert_eq(tc_wait(&c, id, BN_RPC_GENERATE, &gs, &e), 0, "%d %s", e.code, e.message);
    cr_assert(dh_log_has(&D, "head requantized from F16 to Q8_0"), "the load says what it did");
    for (size_t i = 0, k = 0; i < c.n_tokens; i++) {
        if (c.tokens[i].msgid != id)
            continue;
        cr_assert_lt(k, n_want);
        cr_assert_eq(c.tokens[i].token, want[k], "token %zu: daemon %d, engine %d", k, c.tokens[i].token, want[k]);
        k++;
    }
    tc_close(&c);
    cr_assert_eq(dh_stop(&D), 0);
}

Test(daemon, no_load_on_demand, .fini = fini)
{
    start("load_on_demand = false\n");
    struct tc c;
    cr_assert_eq(tc_connect(&c, D.sock), 0);
    struct bn_rpc_generate_params gp;
    struct bn_rpc_generate_result gr;
    struct bn_rpc_error e;
    tc_gen_tokens(&gp, PROMPT, N_PROMPT, 4, false);
    cr_assert_lt(tc_call(&c, BN_RPC_GENERATE, &gp, &gr, &e), 0);
    cr_assert_eq(e.code, BN_RPC_E_MODEL_NOT_LOADED, "%d %s", e.code, e.message);
    /* Many generations waiting for one on-demand load, with the option on again. */
    cr_assert_eq(dh_write_conf(&D, "load_on_demand = true\n"), 0);
    kill(D.pid, SIGHUP);
    for (int i = 0; i < 4000 && !dh_log_has(&D, "config reloaded"); i++)
        sleep_ms(2);
    uint32_t ids[6];
    for (int i = 0; i < 6; i++)
        ids[i] = tc_send(&c, BN_RPC_GENERATE, &gp);
    for (int i = 0; i < 6; i++)
        cr_assert_eq(tc_wait(&c, ids[i], BN_RPC_GENERATE, &gr, &e), 0, "%d %s", e.code, e.message);
    struct bn_rpc_metrics_result mr;
    cr_assert_eq(tc_call(&c, BN_RPC_METRICS, NULL, &mr, &e), 0);
    cr_assert(strstr(mr.text, "bitnetd_model_loads_total 1"), "one load for all of them: %s", mr.text);
    tc_close(&c);
    cr_assert_eq(dh_stop(&D), 0);
}

Test(daemon, list_ps_show_tokenize, .fini = fini)
{
    start(NULL);
    struct tc c;
    cr_assert_eq(tc_connect(&c, D.sock), 0);
    struct bn_rpc_error e;
    struct bn_rpc_list_result ls;
    cr_assert_eq(tc_call(&c, BN_RPC_LIST, NULL, &ls, &e), 0);
    cr_assert_eq(ls.n_models, 1);
    cr_assert_str_eq(ls.models[0].name, "tiny");
    cr_assert(!ls.models[0].loaded);
    cr_assert_gt(ls.models[0].bytes, 0);

    /* show works before a load (from the file) and after (from the model). */
    struct bn_rpc_show_params sp = {.model = "tiny", .ctx = 128};
    struct bn_rpc_show_result s1, s2;
    cr_assert_eq(tc_call(&c, BN_RPC_SHOW, &sp, &s1, &e), 0, "%d %s", e.code, e.message);
    cr_assert_gt(s1.n_layers, 0);
    cr_assert_eq(s1.ctx, 128);
    cr_assert_gt(s1.kv_bytes, 0);
    cr_assert_gt(s1.weights_bytes, 0);
    cr_assert_gt(s1.n_formats, 0);
    cr_assert_gt(s1.n_metadata, 0);
    cr_assert(strncmp(s1.architecture, "bitnet", 6) == 0, "%s", s1.architecture);
    cr_assert_eq(tc_load_tiny(&c, NULL, 0, false), 0);
    cr_assert_eq(tc_call(&c, BN_RPC_SHOW, &sp, &s2, &e), 0, "%d %s", e.code, e.message);
    cr_assert_eq(s2.kv_bytes, s1.kv_bytes, "the estimate matches the engine's KV size");
    cr_assert_eq(s2.n_layers, s1.n_layers);
    cr_assert_eq(s2.n_vocab, s1.n_vocab);
    cr_assert_eq(s2.weights_bytes, s1.weights_bytes);

    struct bn_rpc_ps_result ps;
    cr_assert_eq(tc_call(&c, BN_RPC_PS, NULL, &ps, &e), 0);
    cr_assert_eq(ps.n_models, 1);
    cr_assert_str_eq(ps.models[0].name, "tiny");
    cr_assert_eq(ps.models[0].keep_alive, 300);
    cr_assert_eq(ps.models[0].clients, 0);

    struct bn_rpc_tokenize_params tp;
    bn_rpc_init(bn_rpc_params_schema(BN_RPC_TOKENIZE), &tp);
    tp.model = "tiny";
    tp.text = "the cat sat";
    struct bn_rpc_tokenize_result tr;
    cr_assert_eq(tc_call(&c, BN_RPC_TOKENIZE, &tp, &tr, &e), 0, "%d %s", e.code, e.message);
    cr_assert_gt(tr.n_tokens, 1);
    struct bn_rpc_detokenize_params dp = {.model = "tiny", .tokens = tr.tokens + 1, .n_tokens = tr.n_tokens - 1};
    struct bn_rpc_detokenize_result dr;
    cr_assert_eq(tc_call(&c, BN_RPC_DETOKENIZE, &dp, &dr, &e), 0, "%d %s", e.code, e.message);
    cr_assert_str_eq(dr.text, "the cat sat");
    tp.add_special = false;
    struct bn_rpc_tokenize_result tr2;
    cr_assert_eq(tc_call(&c, BN_RPC_TOKENIZE, &tp, &tr2, &e), 0);
    cr_assert_eq(tr2.n_tokens, tr.n_tokens - 1, "add_special false: no BOS");
    int32_t bad[] = {1, 2, 1000000};
    dp.tokens = bad;
    dp.n_tokens = 3;
    cr_assert_lt(tc_call(&c, BN_RPC_DETOKENIZE, &dp, &dr, &e), 0);
    cr_assert_eq(e.code, BN_RPC_E_INVALID_PARAMS);
    cr_assert(strstr(e.message, "tokens[2]"), "%s", e.message);
    tc_close(&c);
    cr_assert_eq(dh_stop(&D), 0);
}

Test(daemon, two_clients_stream_their_own_tokens, .fini = fini)
{
    start(NULL);
    struct tc a, b;
    cr_assert_eq(tc_connect(&a, D.sock), 0);
    cr_assert_eq(tc_connect(&b, D.sock), 0);
    cr_assert_eq(tc_load_tiny(&a, NULL, 0, false), 0);
    static const int32_t PB[] = {9, 8, 7, 300, 301, 2};
    int32_t wa[24], wb[24];
    size_t na, nb;
    cr_assert_eq(engine_greedy(dh_model_path(), PROMPT, N_PROMPT, 24, wa, &na), 0);
    cr_assert_eq(engine_greedy(dh_model_path(), PB, 6, 24, wb, &nb), 0);
    struct bn_rpc_generate_params ga, gb;
    tc_gen_tokens(&ga, PROMPT, N_PROMPT, 24, true);
    tc_gen_tokens(&gb, PB, 6, 24, true);
    uint32_t ia = tc_send(&a, BN_RPC_GENERATE, &ga);
    uint32_t ib = tc_send(&b, BN_RPC_GENERATE, &gb);
    struct bn_rpc_generate_result ra, rb;
    struct bn_rpc_error e;
    cr_assert_eq(tc_wait(&a, ia, BN_RPC_GENERATE, &ra, &e), 0, "%s", e.message);
    cr_assert_eq(tc_wait(&b, ib, BN_RPC_GENERATE, &rb, &e), 0, "%s", e.message);
    size_t k = 0;
    for (size_t i = 0; i < a.n_tokens; i++, k++)
        cr_assert_eq(a.tokens[i].token, wa[k], "client A token %zu", k);
    k = 0;
    for (size_t i = 0; i < b.n_tokens; i++, k++)
        cr_assert_eq(b.tokens[i].token, wb[k], "client B token %zu", k);
    cr_assert_gt(a.n_tokens, 0);
    cr_assert_gt(b.n_tokens, 0);
    tc_close(&a);
    tc_close(&b);
    cr_assert_eq(dh_stop(&D), 0);
}

Test(daemon, keep_alive_unloads_idle_model, .fini = fini)
{
    start(NULL);
    struct tc c;
    cr_assert_eq(tc_connect(&c, D.sock), 0);
    cr_assert_eq(tc_load_tiny(&c, NULL, 0.05, true), 0);
    struct bn_rpc_error e;
    struct bn_rpc_ps_result ps;
    for (int i = 0; i < 2000; i++) {
        cr_assert_eq(tc_call(&c, BN_RPC_PS, NULL, &ps, &e), 0);
        if (ps.n_models == 0)
            break;
        sleep_ms(5);
    }
    cr_assert_eq(ps.n_models, 0, "the model was unloaded after its keep-alive");
    cr_assert(dh_log_has(&D, "keep-alive"));
    /* Negative: never. */
    cr_assert_eq(tc_load_tiny(&c, NULL, -1, true), 0);
    struct bn_rpc_generate_params gp;
    struct bn_rpc_generate_result gr;
    tc_gen_tokens(&gp, PROMPT, N_PROMPT, 2, false);
    cr_assert_eq(tc_call(&c, BN_RPC_GENERATE, &gp, &gr, &e), 0);
    sleep_ms(100);
    cr_assert_eq(tc_call(&c, BN_RPC_PS, NULL, &ps, &e), 0);
    cr_assert_eq(ps.n_models, 1);
    cr_assert_lt(ps.models[0].keep_alive, 0);
    tc_close(&c);
    cr_assert_eq(dh_stop(&D), 0);
}
