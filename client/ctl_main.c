/* client/ctl_main.c — bitnetctl's command table, help texts and dispatch: global
 * options before the command, then the command's own function. */
#include "config.h"

#include <ctype.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"

#define HELP_OPT_COLUMN 30 /* help: where option descriptions start */

static const char exit_codes_text[] =
    "Exit status:\n"
    "  0    success\n"
    "  1    an error reported by the daemon (or another failure)\n"
    "  2    usage error (bad command, option or value)\n"
    "  3    cannot connect: bitnetd is not running on the socket\n"
    "  4    model not found or not loaded\n"
    "  5    busy: every sequence slot and the queue are taken; retry later\n"
    "  6    permission denied (admin command, or the socket's permissions)\n"
    "  130  interrupted (Ctrl-C)\n";

const struct ctl_opt ctl_help_opts[] = {{NULL, 0, false, 0, NULL, NULL}};

const struct ctl_command ctl_commands[] = {
    {"serve", "[BITNETD-FLAG]...", "run bitnetd in the foreground",
     "Runs bitnetd (found beside bitnetctl, in the build tree, or on $PATH) with the given\n"
     "flags, replacing this process.  `bitnetctl --socket PATH serve` and $BITNET_SOCKET give\n"
     "bitnetd that socket unless a --socket flag follows `serve`.  Every flag after `serve`\n"
     "goes to bitnetd as is (`bitnetctl serve -- --help` or `bitnetd --help` lists them).",
     ctl_serve_opts, ctl_cmd_serve},
    {"run", "MODEL [PROMPT]", "generate text from a prompt, or chat",
     "Streams the generated text alone on stdout and statistics on stderr.  The prompt is\n"
     "put in the model's chat format as one user turn unless --raw.  PROMPT \"-\" reads the\n"
     "prompt from stdin, as does a missing PROMPT when stdin is not a terminal; with no\n"
     "PROMPT on a terminal, run starts an interactive chat (see `bitnetctl chat`).\n"
     "MODEL is a loaded model's name, a configured name or a .gguf path; a model that is\n"
     "not loaded is loaded first (with a progress bar on a terminal) when you may load.\n"
     "Ctrl-C stops the generation and exits with status 130.",
     ctl_run_opts, ctl_cmd_run},
    {"chat", "MODEL", "interactive chat (run without a prompt)",
     "Reads one message per line from stdin (a line ending in '\\' continues on the next)\n"
     "and streams each reply.  The conversation is kept: the daemon reuses its KV cache\n"
     "through a chat session, so each turn only processes the new text.  Commands:\n"
     "/bye (or Ctrl-D) ends, /clear starts a new conversation, /help lists them.\n"
     "Ctrl-C stops a reply; at an empty prompt it exits with status 130.",
     ctl_chat_opts, ctl_cmd_chat},
    {"load", "PATH|NAME", "load a model into memory (admin)",
     "PATH is a .gguf file (made absolute here; the daemon must allow client paths) or\n"
     "NAME a model of the daemon's [models] configuration.  Shows a progress bar on a\n"
     "terminal.  Loading a resident model returns at once (and updates --keep-alive).",
     ctl_load_opts, ctl_cmd_load},
    {"unload", "NAME...", "drop resident models (admin)",
     "A model still generating is dropped when its running sequences finish.", ctl_unload_opts,
     ctl_cmd_unload},
    {"ps", "", "list resident models",
     "Columns: name, resident size, how the weights got into memory (io_uring, pread, or\n"
     "reattach: an existing shared-memory segment mapped again), load time, context\n"
     "length, clients using it, and when it unloads.",
     ctl_ps_opts, ctl_cmd_ps},
    {"list", "", "list the models the daemon knows (configuration and resident)", NULL, ctl_list_opts,
     ctl_cmd_list},
    {"show", "NAME|PATH", "model metadata and the memory a load takes",
     "Architecture, shape, tensor formats, and the memory a load would take: weights plus\n"
     "the KV cache of one sequence at --ctx (default: the trained context).  -v lists the\n"
     "GGUF metadata too.",
     ctl_show_opts, ctl_cmd_show},
    {"tokenize", "MODEL TEXT", "text to token ids (or ids to text with --decode)",
     "TEXT \"-\" reads stdin.  With --decode, TEXT is token ids separated by spaces or commas.\n"
     "-v shows each token's text.",
     ctl_tokenize_opts, ctl_cmd_tokenize},
    {"status", "", "daemon status: sequences, queue, memory, clients", NULL, ctl_status_opts, ctl_cmd_status},
    {"metrics", "", "the daemon's metrics (Prometheus text format)",
     "--json gives one object per sample: name, labels, value, type and help.", ctl_metrics_opts,
     ctl_cmd_metrics},
    {"stop", "", "shut the daemon down (admin)",
     "In-flight work gets --grace to finish (default: the daemon's shutdown_grace).  Waits\n"
     "until the daemon has exited unless --no-wait.",
     ctl_stop_opts, ctl_cmd_stop},
    {"bench", "MODEL", "tokens/s through the daemon: prompt processing and generation",
     "Runs a warm-up and then -r repetitions of a greedy generation of -n tokens after a\n"
     "prompt of -p tokens, and prints the median, min and max of: prompt processing (pp)\n"
     "and generation (tg) speed as measured by the daemon, and generation speed as seen\n"
     "by this client through the socket (tg-client).",
     ctl_bench_opts, ctl_cmd_bench},
    {"version", "", "versions of bitnetctl and of the running daemon", NULL, ctl_version_opts,
     ctl_cmd_version},
    {"help", "[COMMAND]", "show help for a command", NULL, ctl_help_opts, ctl_cmd_help},
};
const size_t ctl_n_commands = sizeof(ctl_commands) / sizeof(ctl_commands[0]);

const struct ctl_command *ctl_command_find(const char *name)
{
    for (size_t i = 0; i < ctl_n_commands; i++)
        if (strcmp(ctl_commands[i].name, name) == 0)
            return &ctl_commands[i];
    return NULL;
}

static void print_opts(FILE *f, const struct ctl_opt *opts)
{
    for (const struct ctl_opt *o = opts; o && o->name; o++) {
        if (!o->help)
            continue; /* an alias of the option before it */
        char left[96];
        int n;
        if (o->short_name)
            n = snprintf(left, sizeof(left), "  -%c, --%s%s%s", o->short_name, o->name, o->has_value ? " " : "",
                         o->has_value ? o->metavar : "");
        else
            n = snprintf(left, sizeof(left), "      --%s%s%s", o->name, o->has_value ? " " : "",
                         o->has_value ? o->metavar : "");
        if (n >= HELP_OPT_COLUMN - 1)
            fprintf(f, "%s\n%*s", left, HELP_OPT_COLUMN, "");
        else
            fprintf(f, "%-*s", HELP_OPT_COLUMN, left);
        for (const char *h = o->help; *h; h++) { /* continuation lines line up */
            fputc(*h, f);
            if (*h == '\n')
                fprintf(f, "%*s", HELP_OPT_COLUMN, "");
        }
        fputc('\n', f);
    }
}

void ctl_print_help(FILE *f, const struct ctl_command *cmd)
{
    if (!cmd) {
        fprintf(f, "usage: bitnetctl [--socket PATH] [--timeout DURATION] [--json] [-v] COMMAND [ARGS]\n\n"
                   "Control bitnetd, the BitNet b1.58 inference daemon.\n\nCommands:\n");
        for (size_t i = 0; i < ctl_n_commands; i++)
            fprintf(f, "  %-10s%s\n", ctl_commands[i].name, ctl_commands[i].summary);
        fprintf(f, "\nGlobal options (before or after the command):\n");
        print_opts(f, ctl_global_opts);
        fprintf(f, "\n'bitnetctl help COMMAND' or 'bitnetctl COMMAND --help' describes a command.\n\n%s",
                exit_codes_text);
        return;
    }
    /* Summaries start lower-case for the command list; capitalized here. */
    fprintf(f, "usage: bitnetctl %s%s%s\n\n%c%s.\n", cmd->name, cmd->args[0] ? " " : "", cmd->args,
            toupper((unsigned char)cmd->summary[0]), cmd->summary + 1);
    if (cmd->details)
        fprintf(f, "\n%s\n", cmd->details);
    if (cmd->opts && cmd->opts[0].name) {
        fprintf(f, "\nOptions:\n");
        print_opts(f, cmd->opts);
    }
    fprintf(f, "\nGlobal options:\n");
    print_opts(f, ctl_global_opts);
    fprintf(f, "\n%s", exit_codes_text);
}

int ctl_cmd_help(struct ctl *g, int argc, char **argv)
{
    struct ctl_parser p;
    ctl_parser_init(&p, argc, argv);
    const char *v, *topic = NULL;
    int o;
    while ((o = ctl_next(g, &p, &v)) != CTL_OPT_END) {
        if (o == CTL_OPT_BAD)
            return CTL_EXIT_USAGE;
        if (o == CTL_OPT_HELP) {
            ctl_print_help(g->out, g->cmd);
            return CTL_EXIT_OK;
        }
        if (o == CTL_OPT_POS) {
            if (topic)
                return ctl_usage_error(g, "takes one command name, got '%s' too", v);
            topic = v;
        }
    }
    if (!topic) {
        ctl_print_help(g->out, NULL);
        return CTL_EXIT_OK;
    }
    const struct ctl_command *c = ctl_command_find(topic);
    if (!c)
        return ctl_usage_error(g, "unknown command '%s'", topic);
    ctl_print_help(g->out, c);
    return CTL_EXIT_OK;
}

static bool stream_is_tty(FILE *f)
{
    int fd = fileno(f);
    return fd >= 0 && isatty(fd);
}

int ctl_main(int argc, char **argv, FILE *in, FILE *out, FILE *err)
{
    struct ctl g;
    memset(&g, 0, sizeof(g));
    g.in = in;
    g.out = out;
    g.err = err;
    g.in_tty = stream_is_tty(in);
    g.out_tty = stream_is_tty(out);
    g.err_tty = stream_is_tty(err);
    g.timeout_ms = -1;
    ctl_interrupted = 0;

    /* Global options before the command: parsed with no command set, so that only
     * they are known; the first positional is the command. */
    struct ctl_parser p;
    ctl_parser_init(&p, argc, argv);
    const char *v, *name = NULL;
    int o;
    while (!name) {
        if (p.i < argc && strcmp(argv[p.i], "--version") == 0) { /* the usual spelling */
            name = "version";
            p.i++;
            break;
        }
        if ((o = ctl_next(&g, &p, &v)) == CTL_OPT_END)
            break;
        if (o == CTL_OPT_BAD)
            return CTL_EXIT_USAGE;
        if (o == CTL_OPT_HELP) {
            ctl_print_help(g.out, NULL);
            return CTL_EXIT_OK;
        }
        if (o == CTL_OPT_POS)
            name = v;
    }
    if (!name) {
        ctl_print_help(g.err, NULL);
        fprintf(g.err, "\nbitnetctl: missing COMMAND\n");
        return CTL_EXIT_USAGE;
    }
    const struct ctl_command *cmd = ctl_command_find(name);
    if (!cmd)
        return ctl_usage_error(&g, "unknown command '%s' (commands: see bitnetctl help)", name);
    g.cmd = cmd;
    /* The command sees argv from its own name on. */
    int cargc = argc - (p.i - 1);
    char **cargv = argv + (p.i - 1);
    int rc = cmd->fn(&g, cargc, cargv);
    ctl_sigint_disarm();
    if (g.conn) {
        bnc_close(g.conn);
        g.conn = NULL;
    }
    fflush(g.out);
    if (ferror(g.out) && rc == CTL_EXIT_OK) {
        fprintf(g.err, "bitnetctl %s: writing the output failed\n", cmd->name);
        rc = CTL_EXIT_ERROR;
    }
    return rc;
}
