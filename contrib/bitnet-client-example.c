/* contrib/bitnet-client-example.c — the smallest useful libbitnet-client program:
 * connect to bitnetd, print what hello said, stream one generation to stdout and the
 * stats to stderr.  Ctrl-C cancels the generation (bnc_cancel from a signal handler).
 *
 *   bitnet-client-example [--socket PATH] [-n N] MODEL PROMPT
 *
 * Build against an installed library:
 *   cc bitnet-client-example.c $(pkg-config --cflags --libs bitnet-client)
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitnet_client.h"

static struct bnc_conn *g_conn; /* for the SIGINT handler */

static void on_sigint(int sig)
{
    (void)sig;
    bnc_cancel(g_conn); /* async-signal-safe */
}

static int print_token(void *user, const char *text, size_t len, int32_t token)
{
    (void)user;
    (void)token;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return 0; /* non-zero would cancel */
}

static int usage(const char *argv0)
{
    fprintf(stderr, "usage: %s [--socket PATH] [-n MAX_TOKENS] MODEL PROMPT\n", argv0);
    return 2;
}

int main(int argc, char **argv)
{
    struct bnc_options opt;
    bnc_options_init(&opt);
    opt.client_name = "bitnet-client-example";
    int max_tokens = 128;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc)
            opt.socket_path = argv[++i];
        else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
            max_tokens = atoi(argv[++i]);
        else
            return usage(argv[0]);
    }
    if (argc - i != 2)
        return usage(argv[0]);

    struct bnc_error err;
    if (bnc_connect(&g_conn, &opt, &err)) {
        fprintf(stderr, "error: %s (%s)\n", err.message, bnc_code_name(err.code));
        return 1;
    }
    const struct bnc_server_info *info = bnc_server_info(g_conn);
    fprintf(stderr, "connected to %s (protocol %lld, pid %lld)\n", info->server,
            (long long)info->version, (long long)info->pid);
    signal(SIGINT, on_sigint);

    struct bnc_generate_params p;
    bnc_generate_params_init(&p);
    p.model = argv[i];
    p.prompt = argv[i + 1];
    p.max_tokens = max_tokens;
    struct bnc_generate_result res;
    int rc = bnc_generate(g_conn, &p, print_token, NULL, &res, &err);
    if (rc == 0) {
        printf("\n");
        fprintf(stderr, "%lld prompt tokens, %lld generated, %.1f tok/s, stop: %s\n",
                (long long)res.stats.prompt_tokens, (long long)res.stats.generated_tokens,
                res.stats.decode_tokens_per_s, bnc_stop_reason_name(res.stats.stop_reason));
        bnc_result_free(&res);
    } else {
        fprintf(stderr, "error: %s (%s)\n", err.message, bnc_code_name(err.code));
    }
    bnc_close(g_conn);
    return rc == 0 ? 0 : 1;
}
