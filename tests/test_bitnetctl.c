/* tests/test_bitnetctl.c — bitnetctl: argument parsing and usage errors (exit 2 with
 * the message), --help of every command, durations, human sizes and times, JSON
 * escaping of odd strings, tables, the progress bar, Prometheus lines, finding
 * bitnetd for `serve`, "not running" (exit 3), and an end-to-end run against a real
 * bitnetd started with `bitnetctl serve` on a temporary socket (skipped, saying why,
 * when bitnetd or bitnet-mkmodel is not built).  Commands run in-process through
 * ctl_main() with memory streams, so their exit codes and output are checked
 * directly. */
#include "config.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"

#define ARGV_MAX 64
#define WAIT_MS 30000 /* any wait for the daemon; a hang fails instead of blocking */
#define TPATH 512

/* ---- running a command in-process ---- */

struct cap {
    int rc;
    char *out, *err;
};

static void cap_free(struct cap *c)
{
    free(c->out);
    free(c->err);
    memset(c, 0, sizeof(*c));
}

/* Run bitnetctl with the NULL-terminated arguments, stdin = `in` (NULL: empty). */
static int run_in(struct cap *c, const char *in, ...)
{
    char *argv[ARGV_MAX];
    int argc = 0;
    argv[argc++] = "bitnetctl";
    va_list ap;
    va_start(ap, in);
    const char *a;
    while ((a = va_arg(ap, const char *)) && argc < ARGV_MAX - 1)
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;
    size_t on = 0, en = 0;
    c->out = c->err = NULL;
    FILE *out = open_memstream(&c->out, &on);
    FILE *err = open_memstream(&c->err, &en);
    FILE *fin = in && *in ? fmemopen((void *)in, strlen(in), "r") : fopen("/dev/null", "r");
    cr_assert(out && err && fin);
    c->rc = ctl_main(argc, argv, fin, out, err);
    fclose(fin);
    fclose(out);
    fclose(err);
    return c->rc;
}
#define RUN(c, ...) run_in((c), NULL, __VA_ARGS__, (const char *)NULL)
#define RUN_IN(c, in, ...) run_in((c), (in), __VA_ARGS__, (const char *)NULL)

/* A socket path where nothing listens, so a command that wrongly connects fails
 * with 3, not 2. */
#define NOSOCK "/nonexistent-bitnetctl-test/s.sock"

static void expect_usage(const char *want, ...)
{
    char *argv[ARGV_MAX];
    int argc = 0;
    argv[argc++] = "bitnetctl";
    argv[argc++] = "--socket";
    argv[argc++] = NOSOCK;
    va_list ap;
    va_start(ap, want);
    const char *a;
    while ((a = va_arg(ap, const char *)) && argc < ARGV_MAX - 1)
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;
    struct cap c = {0};
    size_t on = 0, en = 0;
    FILE *out = open_memstream(&c.out, &on), *err = open_memstream(&c.err, &en);
    FILE *in = fopen("/dev/null", "r");
    c.rc = ctl_main(argc, argv, in, out, err);
    fclose(in);
    fclose(out);
    fclose(err);
    cr_expect_eq(c.rc, CTL_EXIT_USAGE, "%s %s: exit %d, want 2; stderr: %s", argv[3], argc > 4 ? argv[4] : "", c.rc,
                 c.err);
    cr_expect(strstr(c.err, want), "stderr lacks \"%s\":\n%s", want, c.err);
    cap_free(&c);
}
#define USAGE(want, ...) expect_usage((want), __VA_ARGS__, (const char *)NULL)

/* ---- usage errors ---- */

Test(usage, no_command_and_unknown_command)
{
    struct cap c;
    cr_expect_eq(RUN(&c, "--json"), CTL_EXIT_USAGE);
    cr_expect(strstr(c.err, "missing COMMAND"), "%s", c.err);
    cap_free(&c);
    USAGE("bitnetctl: unknown command 'frob'", "frob");
    USAGE("unknown command 'frob'", "help", "frob");
    USAGE("bitnetctl: unknown option '--frob'", "--frob", "ps");
}

Test(usage, sampler_flags)
{
    USAGE("bitnetctl run: --top-p must be in (0, 1], got 1.5", "run", "m", "x", "--top-p", "1.5");
    USAGE("bitnetctl run: --top-p must be in (0, 1], got 0", "run", "m", "x", "--top-p=0");
    USAGE("bitnetctl run: --temperature must be in [0, 100], got 101", "run", "m", "x", "--temperature", "101");
    USAGE("bitnetctl run: --temperature must be a number in [0, 100], got 'hot'", "run", "m", "x", "--temp", "hot");
    USAGE("bitnetctl run: --min-p must be in [0, 1], got 2", "run", "m", "x", "--min-p", "2");
    USAGE("bitnetctl run: --repeat-penalty must be in (0, 10], got 0", "run", "m", "x", "--repeat-penalty", "0");
    USAGE("bitnetctl run: --top-k must be an integer in [0, 1000000], got '-1'", "run", "m", "x", "--top-k", "-1");
    USAGE("bitnetctl run: -n must be an integer in [0, 1048576], got 'abc'", "run", "m", "x", "-n", "abc");
    USAGE("bitnetctl run: -n must be an integer in [0, 1048576], got '2000000'", "run", "m", "x", "-n2000000");
    USAGE("bitnetctl run: --seed must be an integer in [-1, 9223372036854775807], got '-2'", "run", "m", "x",
          "--seed", "-2");
    USAGE("bitnetctl run: --stop must be 1 to 256 bytes, got 0", "run", "m", "x", "--stop", "");
    USAGE("bitnetctl run: --seed needs a value (S)", "run", "m", "x", "--seed");
    USAGE("bitnetctl chat: --presence-penalty must be in [-2, 2], got 3", "chat", "m", "--presence-penalty", "3");
    USAGE("bitnetctl run: --keep-alive must be a duration", "run", "m", "x", "--keep-alive", "soon");
    USAGE("bitnetctl run: unknown option '--promt'", "run", "m", "--promt", "x");
    USAGE("bitnetctl run: unknown option '-z'", "run", "m", "-z");
    USAGE("bitnetctl run: --raw takes no value, got '1'", "run", "m", "x", "--raw=1");
}

Test(usage, stop_strings_limit)
{
    char *argv[64];
    int argc = 0;
    argv[argc++] = "bitnetctl";
    argv[argc++] = "--socket";
    argv[argc++] = NOSOCK;
    argv[argc++] = "run";
    argv[argc++] = "m";
    argv[argc++] = "x";
    for (int i = 0; i < CTL_STOP_MAX + 1; i++) {
        argv[argc++] = "--stop";
        argv[argc++] = "END";
    }
    argv[argc] = NULL;
    struct cap c = {0};
    size_t on, en;
    FILE *out = open_memstream(&c.out, &on), *err = open_memstream(&c.err, &en), *in = fopen("/dev/null", "r");
    c.rc = ctl_main(argc, argv, in, out, err);
    fclose(in);
    fclose(out);
    fclose(err);
    cr_expect_eq(c.rc, CTL_EXIT_USAGE);
    cr_expect(strstr(c.err, "--stop may be given at most 16 times"), "%s", c.err);
    cap_free(&c);
}

Test(usage, arguments)
{
    USAGE("bitnetctl run: missing MODEL", "run");
    USAGE("bitnetctl chat: takes no PROMPT (got 'hello')", "chat", "m", "hello");
    USAGE("bitnetctl chat: unknown option '--raw'", "chat", "m", "--raw");
    USAGE("bitnetctl run: --session applies to a chat", "run", "m", "hi", "--session", "s1");
    USAGE("bitnetctl load: missing PATH|NAME", "load");
    USAGE("bitnetctl load: unexpected argument 'b'", "load", "a", "b");
    USAGE("bitnetctl load: --ctx must be an integer in [0, 1048576], got '-1'", "load", "a", "--ctx", "-1");
    USAGE("bitnetctl load: --threads must be an integer in [0, 1024], got '2000'", "load", "a", "--threads", "2000");
    USAGE("bitnetctl load: --keep-alive must be a duration such as 30s, 5m, 1h, 1h30m, 0 or -1, got '5x'", "load",
          "a", "--keep-alive", "5x");
    USAGE("bitnetctl load: --name must be 1 to 256 bytes, got 0", "load", "a", "--name", "");
    USAGE("bitnetctl unload: missing NAME...", "unload");
    USAGE("bitnetctl ps: unexpected argument 'x'", "ps", "x");
    USAGE("bitnetctl status: takes no arguments, got 'x'", "status", "x");
    USAGE("bitnetctl stop: --grace must be between 0s and 3600s, got '2h'", "stop", "--grace", "2h");
    USAGE("bitnetctl show: missing NAME|PATH", "show");
    USAGE("bitnetctl tokenize: missing TEXT", "tokenize", "m");
    USAGE("bitnetctl tokenize: --decode: 'x1' is not a token id", "tokenize", "m", "--decode", "1 2 x1");
    USAGE("bitnetctl tokenize: --decode: '-3' is not a token id", "tokenize", "m", "-d", "--", "-3");
    USAGE("bitnetctl bench: -r must be an integer in [1, 100], got '0'", "bench", "m", "-r", "0");
    USAGE("bitnetctl bench: missing MODEL", "bench");
    USAGE("bitnetctl ps: --timeout must be a duration", "ps", "--timeout", "later");
    USAGE("bitnetctl ps: --json takes no value, got 'yes'", "ps", "--json=yes");
    USAGE("bitnetctl help: takes one command name, got 'ps' too", "help", "run", "ps");
}

Test(usage, socket_path_too_long)
{
    char path[300];
    memset(path, 'a', sizeof(path) - 1);
    path[0] = '/';
    path[sizeof(path) - 1] = 0;
    struct cap c;
    cr_expect_eq(RUN(&c, "--socket", path, "ps"), CTL_EXIT_USAGE);
    cr_expect(strstr(c.err, "a Unix socket path has at most 107"), "%s", c.err);
    cap_free(&c);
}

Test(usage, prompt_from_stdin_checks)
{
    struct cap c;
    cr_expect_eq(RUN_IN(&c, "\n\n", "--socket", NOSOCK, "run", "m"), CTL_EXIT_USAGE);
    cr_expect(strstr(c.err, "bitnetctl run: the prompt is empty"), "%s", c.err);
    cap_free(&c);
    /* A prompt that is fine reaches the connection step: exit 3, not 2. */
    cr_expect_eq(RUN_IN(&c, "hello\n", "--socket", NOSOCK, "run", "m", "-"), CTL_EXIT_CONNECT);
    cap_free(&c);
}

Test(usage, exit_codes_of_daemon_errors)
{
    cr_expect_eq(ctl_exit_code(BNC_OK), 0);
    cr_expect_eq(ctl_exit_code(BNC_E_CONNECT), 3);
    cr_expect_eq(ctl_exit_code(BNC_E_MODEL_NOT_FOUND), 4);
    cr_expect_eq(ctl_exit_code(BNC_E_MODEL_NOT_LOADED), 4);
    cr_expect_eq(ctl_exit_code(BNC_E_BUSY), 5);
    cr_expect_eq(ctl_exit_code(BNC_E_PERMISSION_DENIED), 6);
    cr_expect_eq(ctl_exit_code(BNC_E_CANCELLED), 1, "cancelled without Ctrl-C is an error");
    cr_expect_eq(ctl_exit_code(BNC_E_INVALID_PARAMS), 1);
    cr_expect_eq(ctl_exit_code(BNC_E_TIMEOUT), 1);
    cr_expect_eq(ctl_exit_code(-1234), 1, "unknown codes are generic errors");
    ctl_interrupted = 1;
    cr_expect_eq(ctl_exit_code(BNC_E_CANCELLED), 130);
    ctl_interrupted = 0;
}

/* ---- help ---- */

Test(help, every_command)
{
    for (size_t i = 0; i < ctl_n_commands; i++) {
        const char *name = ctl_commands[i].name;
        char want[64];
        snprintf(want, sizeof(want), "usage: bitnetctl %s", name);
        struct cap a, b, h;
        cr_expect_eq(RUN(&a, "--socket", NOSOCK, name, "--help"), CTL_EXIT_OK, "%s --help: %s", name, a.err);
        cr_expect(strncmp(a.out, want, strlen(want)) == 0, "%s --help starts with: %.60s", name, a.out);
        cr_expect(strstr(a.out, "Exit status:") && strstr(a.out, "130  interrupted"), "%s --help: no exit codes",
                  name);
        cr_expect_eq(RUN(&b, "help", name), CTL_EXIT_OK);
        cr_expect_str_eq(a.out, b.out, "help %s differs from %s --help", name, name);
        cr_expect_eq(RUN(&h, name, "-h"), CTL_EXIT_OK);
        cr_expect_str_eq(a.out, h.out);
        cr_expect_str_eq(a.err, "");
        cap_free(&a);
        cap_free(&b);
        cap_free(&h);
    }
    struct cap c;
    cr_expect_eq(RUN(&c, "--help"), CTL_EXIT_OK);
    for (size_t i = 0; i < ctl_n_commands; i++)
        cr_expect(strstr(c.out, ctl_commands[i].name), "overview lacks %s", ctl_commands[i].name);
    cr_expect(strstr(c.out, "3    cannot connect"));
    cap_free(&c);
    cr_expect_eq(RUN(&c, "help"), CTL_EXIT_OK);
    cr_expect(strstr(c.out, "usage: bitnetctl [--socket PATH]"));
    cap_free(&c);
}

Test(help, run_lists_sampler_flags)
{
    struct cap c;
    RUN(&c, "run", "--help");
    const char *flags[] = {"-n, --max-tokens N", "--temperature T", "--top-k K", "--top-p P", "--min-p P",
                           "--repeat-penalty R", "--seed S", "--stop TEXT", "--raw"};
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
        cr_expect(strstr(c.out, flags[i]), "run --help lacks %s", flags[i]);
    cap_free(&c);
}

/* ---- durations ---- */

Test(duration, accepted)
{
    static const struct {
        const char *s;
        double v;
    } ok[] = {
        {"0", 0},       {"300", 300},      {"30s", 30},     {"5m", 300},      {"1h", 3600},
        {"-1", -1},     {"-1s", -1},       {"1h30m", 5400}, {"250ms", 0.25},  {"1.5h", 5400},
        {"never", -1},  {"forever", -1},   {"2d", 172800},  {"-5m", -300},    {"+10s", 10},
        {"1m30s", 90},  {"10min", 600},    {".5s", 0.5},    {"1h0m0s", 3600}, {"0s", 0},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        double v = 12345;
        cr_expect_eq(ctl_parse_duration(ok[i].s, &v), 0, "'%s' rejected", ok[i].s);
        cr_expect(fabs(v - ok[i].v) < 1e-9, "'%s' = %g, want %g", ok[i].s, v, ok[i].v);
    }
}

Test(duration, rejected)
{
    static const char *const bad[] = {"",    "m",   "5x",  "5m5", "abc", "1e3", "--1", "inf",  "nan",
                                      "5 m", "-",   "+",   ".",   "5mm", "1h-", "s5",  "0x10", "1,5h"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        double v;
        cr_expect_eq(ctl_parse_duration(bad[i], &v), -1, "'%s' accepted", bad[i]);
    }
}

/* ---- human formatting ---- */

Test(format, bytes)
{
    static const struct {
        int64_t b;
        const char *s;
    } t[] = {
        {0, "0 B"},          {999, "999 B"},         {1000, "1.0 KB"},         {1500, "1.5 KB"},
        {664288, "664 KB"},  {999499, "999 KB"},     {999500, "1.0 MB"},       {4194304, "4.2 MB"},
        {125829120, "126 MB"}, {1187801280, "1.2 GB"}, {9950000000, "10 GB"}, {-1, "-"},
        {INT64_MAX, "9.2 EB"},
    };
    char buf[32];
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        cr_expect_str_eq(ctl_fmt_bytes(t[i].b, buf, sizeof(buf)), t[i].s, "%lld", (long long)t[i].b);
}

Test(format, durations)
{
    static const struct {
        double s;
        const char *txt;
    } t[] = {
        {0, "0ms"},       {0.0004, "0ms"}, {0.41, "410ms"},   {0.9996, "1.0s"},    {4.2, "4.2s"},
        {9.96, "10s"},    {42, "42s"},     {252, "4m12s"},    {3600, "1h00m"},     {3 * 3600 + 5 * 60, "3h05m"},
        {2 * 86400 + 4 * 3600, "2d4h"},    {-1, "forever"},   {INFINITY, "forever"},
    };
    char buf[32];
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        cr_expect_str_eq(ctl_fmt_duration(t[i].s, buf, sizeof(buf)), t[i].txt, "%g", t[i].s);
}

Test(format, relative_times)
{
    char buf[64];
    cr_expect_str_eq(ctl_fmt_relative(0.5, false, buf, sizeof(buf)), "less than a second ago");
    cr_expect_str_eq(ctl_fmt_relative(1, false, buf, sizeof(buf)), "1 second ago");
    cr_expect_str_eq(ctl_fmt_relative(42, false, buf, sizeof(buf)), "42 seconds ago");
    cr_expect_str_eq(ctl_fmt_relative(90, false, buf, sizeof(buf)), "about a minute ago");
    cr_expect_str_eq(ctl_fmt_relative(180, false, buf, sizeof(buf)), "3 minutes ago");
    cr_expect_str_eq(ctl_fmt_relative(299, true, buf, sizeof(buf)), "4 minutes from now");
    cr_expect_str_eq(ctl_fmt_relative(5400, false, buf, sizeof(buf)), "about an hour ago");
    cr_expect_str_eq(ctl_fmt_relative(5 * 3600, true, buf, sizeof(buf)), "5 hours from now");
    cr_expect_str_eq(ctl_fmt_relative(3 * 86400, false, buf, sizeof(buf)), "3 days ago");
}

Test(format, counts)
{
    char buf[32];
    cr_expect_str_eq(ctl_fmt_count(2412820480, buf, sizeof(buf)), "2.4B");
    cr_expect_str_eq(ctl_fmt_count(1525504, buf, sizeof(buf)), "1.5M");
    cr_expect_str_eq(ctl_fmt_count(135000000, buf, sizeof(buf)), "135M");
    cr_expect_str_eq(ctl_fmt_count(999, buf, sizeof(buf)), "999");
    cr_expect_str_eq(ctl_fmt_count(999999, buf, sizeof(buf)), "1.0M");
}

Test(format, table_aligns_by_characters)
{
    static const char *const head[] = {"NAME", "SIZE", "UNTIL"};
    struct ctl_table t;
    cr_assert_eq(ctl_table_init(&t, 3, head), 0);
    const char *r1[] = {"tiny", "664 KB", "forever"};
    const char *r2[] = {"modèle-é", "1.2 GB", "4 minutes from now"};
    cr_assert_eq(ctl_table_add(&t, r1), 0);
    cr_assert_eq(ctl_table_add(&t, r2), 0);
    char *s = NULL;
    size_t n;
    FILE *f = open_memstream(&s, &n);
    ctl_table_print(&t, f);
    fclose(f);
    cr_expect_str_eq(s, "NAME        SIZE      UNTIL\n"
                        "tiny        664 KB    forever\n"
                        "modèle-é    1.2 GB    4 minutes from now\n");
    free(s);
    ctl_table_free(&t);
}

Test(format, progress_bar)
{
    char buf[256];
    ctl_progress_render(buf, sizeof(buf), "loading tiny", 450, 1000, -1, 80);
    cr_expect(strncmp(buf, "loading tiny  45% [", 19) == 0, "%s", buf);
    cr_expect(strstr(buf, "] 450 B/1.0 KB"), "%s", buf);
    cr_expect_leq(ctl_text_width(buf), 79);
    ctl_progress_render(buf, sizeof(buf), "loading tiny", 2000, 1000, 1.5e9, 80);
    cr_expect(strstr(buf, "100% [====") && strstr(buf, "====] 1.0 KB/1.0 KB 1.5 GB/s"), "%s", buf);
    cr_expect(!strchr(buf, '>') && !strstr(buf, "= "), "a full bar: %s", buf);
    /* Too narrow for a bar: the text alone. */
    ctl_progress_render(buf, sizeof(buf), "loading tiny", 500, 1000, -1, 20);
    cr_expect_str_eq(buf, "loading tiny  50% 500 B/1.0 KB");
    ctl_progress_render(buf, sizeof(buf), "x", 0, 0, -1, 80);
    cr_expect(strncmp(buf, "x   0% [>", 9) == 0, "%s", buf);
}

/* ---- JSON ---- */

static char *json_text(const char *s, size_t n)
{
    char *buf = NULL;
    size_t len;
    FILE *f = open_memstream(&buf, &len);
    ctl_json_write_string(f, s, n);
    fclose(f);
    return buf;
}

/* The JSON text of s parses (jansson) back to `want` (want_len bytes). */
static void expect_roundtrip(const char *s, size_t n, const char *want, size_t want_len)
{
    char *t = json_text(s, n);
    json_error_t e;
    json_t *v = json_loads(t, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    cr_assert(v, "not valid JSON: %s (%s)", t, e.text);
    cr_expect(json_is_string(v));
    cr_expect_eq(json_string_length(v), want_len, "%s", t);
    cr_expect(memcmp(json_string_value(v), want, want_len) == 0, "%s", t);
    json_decref(v);
    free(t);
}
#define RT(s, want) expect_roundtrip((s), sizeof(s) - 1, (want), sizeof(want) - 1)

Test(json, escaping)
{
    char *t = json_text("a\"b\\c/d\n\t\r\b\f", 12);
    cr_expect_str_eq(t, "\"a\\\"b\\\\c/d\\n\\t\\r\\b\\f\"");
    free(t);
    t = json_text("\x01\x1f\x7f", 3);
    cr_expect_str_eq(t, "\"\\u0001\\u001f\\u007f\"");
    free(t);
    t = json_text("a\0b", 3);
    cr_expect_str_eq(t, "\"a\\u0000b\"");
    free(t);
    t = json_text("\xe2\x80\xa8|\xe2\x80\xa9", 7); /* U+2028, U+2029: valid JSON, not JavaScript */
    cr_expect_str_eq(t, "\"\\u2028|\\u2029\"");
    free(t);
    RT("plain", "plain");
    RT("a\"b\\c", "a\"b\\c");
    RT("ctl\x01\x02\x1b[0m", "ctl\x01\x02\x1b[0m");
    RT("nul\0inside", "nul\0inside");
    RT("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
}

Test(json, invalid_utf8_becomes_replacement_characters)
{
    /* U+FFFD is EF BF BD. */
    RT("\xff", "\xef\xbf\xbd");
    RT("a\x80z", "a\xef\xbf\xbdz");                        /* lone continuation byte */
    RT("\xc0\x80", "\xef\xbf\xbd\xef\xbf\xbd");           /* overlong NUL */
    RT("\xe0\x80\xaf", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"); /* overlong '/' */
    RT("\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"); /* surrogate U+D800 */
    RT("\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"); /* > U+10FFFF */
    RT("ok\xe2\x82", "ok\xef\xbf\xbd\xef\xbf\xbd");       /* truncated at the end */
    RT("\xf5\xff", "\xef\xbf\xbd\xef\xbf\xbd");
}

Test(json, documents_parse)
{
    for (int pretty = 0; pretty <= 1; pretty++) {
        char *buf = NULL;
        size_t len;
        FILE *f = open_memstream(&buf, &len);
        struct ctl_json j;
        ctl_json_init(&j, f, pretty);
        ctl_json_begin_object(&j);
        ctl_json_key(&j, "we\"ird\nkey\xff");
        ctl_json_string(&j, "v");
        ctl_json_key(&j, "n");
        ctl_json_number(&j, 0.1);
        ctl_json_key(&j, "nan");
        ctl_json_number(&j, NAN);
        ctl_json_key(&j, "big");
        ctl_json_int(&j, INT64_MAX);
        ctl_json_key(&j, "null");
        ctl_json_string(&j, NULL);
        ctl_json_key(&j, "list");
        ctl_json_begin_array(&j);
        ctl_json_bool(&j, true);
        ctl_json_begin_object(&j);
        ctl_json_end_object(&j);
        ctl_json_begin_array(&j);
        ctl_json_end_array(&j);
        ctl_json_int(&j, -3);
        ctl_json_end_array(&j);
        ctl_json_end_object(&j);
        ctl_json_finish(&j);
        fclose(f);
        json_error_t e;
        json_t *v = json_loads(buf, 0, &e);
        cr_assert(v, "pretty=%d: %s\n%s", pretty, e.text, buf);
        cr_expect_str_eq(json_string_value(json_object_get(v, "we\"ird\nkey\xef\xbf\xbd")), "v");
        cr_expect_eq(json_real_value(json_object_get(v, "n")), 0.1);
        cr_expect(json_is_null(json_object_get(v, "nan")));
        cr_expect_eq(json_integer_value(json_object_get(v, "big")), INT64_MAX);
        cr_expect(json_is_null(json_object_get(v, "null")));
        json_t *l = json_object_get(v, "list");
        cr_expect_eq(json_array_size(l), 4);
        cr_expect_eq(json_integer_value(json_array_get(l, 3)), -3);
        json_decref(v);
        free(buf);
    }
}

Test(json, prometheus_samples)
{
    char *buf = NULL;
    size_t len;
    FILE *f = open_memstream(&buf, &len);
    struct ctl_json j;
    ctl_json_init(&j, f, false);
    ctl_json_begin_array(&j);
    const char l1[] = "bitnetd_requests_total{method=\"a\\\"b\",code=\"x\\\\y\\nz\"} 12.5";
    const char l2[] = "bitnetd_up 1 1700000000000";
    const char l3[] = "bitnetd_lat_bucket{le=\"+Inf\"} +Inf";
    cr_expect_eq(ctl_prom_sample_json(&j, l1, strlen(l1), "counter", "Requests."), 0);
    cr_expect_eq(ctl_prom_sample_json(&j, l2, strlen(l2), NULL, NULL), 0);
    cr_expect_eq(ctl_prom_sample_json(&j, l3, strlen(l3), "histogram", NULL), 0);
    static const char *const bad[] = {"x{", "1abc 3", "x 1e", "x{a=\"b} 1", "x{a=b} 1", "x", "x{a=\"1\"}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_expect_eq(ctl_prom_sample_json(&j, bad[i], strlen(bad[i]), NULL, NULL), -1, "accepted '%s'", bad[i]);
    ctl_json_end_array(&j);
    ctl_json_finish(&j);
    fclose(f);
    json_error_t e;
    json_t *v = json_loads(buf, 0, &e);
    cr_assert(v, "%s\n%s", e.text, buf);
    cr_assert_eq(json_array_size(v), 3, "%s", buf);
    json_t *s = json_array_get(v, 0);
    cr_expect_str_eq(json_string_value(json_object_get(s, "name")), "bitnetd_requests_total");
    json_t *lab = json_object_get(s, "labels");
    cr_expect_str_eq(json_string_value(json_object_get(lab, "method")), "a\"b");
    cr_expect_str_eq(json_string_value(json_object_get(lab, "code")), "x\\y\nz");
    cr_expect_eq(json_real_value(json_object_get(s, "value")), 12.5);
    cr_expect_str_eq(json_string_value(json_object_get(s, "type")), "counter");
    cr_expect_eq(json_integer_value(json_object_get(json_array_get(v, 1), "value")), 1);
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(v, 2), "value")), "+Inf");
    json_decref(v);
    free(buf);
}

/* ---- temp folders ---- */

static void make_tmp(char *out, size_t n, const char *tag)
{
    const char *base = getenv("TMPDIR");
    snprintf(out, n, "%s/%s-XXXXXX", base && *base ? base : "/tmp", tag);
    cr_assert(mkdtemp(out), "mkdtemp %s: %s", out, strerror(errno));
}

static void rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char sub[TPATH * 2];
            snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
            rm_rf(sub);
        }
        if (d)
            closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static void touch_exec(const char *path, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    cr_assert(fd >= 0, "%s: %s", path, strerror(errno));
    close(fd);
    chmod(path, mode);
}

/* ---- finding bitnetd for serve ---- */

Test(serve, finds_bitnetd)
{
    char d[TPATH], p[TPATH * 2], q[TPATH * 2], found[TPATH * 2];
    make_tmp(d, sizeof(d), "bitnetctl-find");
    /* Installed layout: bin/bitnetctl beside bin/bitnetd. */
    snprintf(p, sizeof(p), "%s/bin", d);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/bin/bitnetd", d);
    touch_exec(p, 0755);
    snprintf(q, sizeof(q), "%s/bin/bitnetctl", d);
    setenv("PATH", "", 1);
    cr_expect_eq(ctl_find_bitnetd(q, found, sizeof(found)), 0);
    cr_expect_str_eq(found, p);
    /* Build tree through libtool: client/.libs/lt-bitnetctl finds daemon/bitnetd. */
    snprintf(p, sizeof(p), "%s/client", d);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/client/.libs", d);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/daemon", d);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/daemon/bitnetd", d);
    touch_exec(p, 0755);
    snprintf(q, sizeof(q), "%s/client/.libs/lt-bitnetctl", d);
    cr_expect_eq(ctl_find_bitnetd(q, found, sizeof(found)), 0);
    snprintf(p, sizeof(p), "%s/client/../daemon/bitnetd", d);
    cr_expect_str_eq(found, p);
    /* Not executable: not taken; then $PATH is searched. */
    snprintf(p, sizeof(p), "%s/o", d);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/o/other", d);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/o/other/bitnetd", d);
    touch_exec(p, 0644);
    snprintf(q, sizeof(q), "%s/o/other/bitnetctl", d);
    cr_expect_eq(ctl_find_bitnetd(q, found, sizeof(found)), -1);
    snprintf(p, sizeof(p), "/nonexistent:%s/bin", d);
    setenv("PATH", p, 1);
    cr_expect_eq(ctl_find_bitnetd(q, found, sizeof(found)), 0);
    snprintf(p, sizeof(p), "%s/bin/bitnetd", d);
    cr_expect_str_eq(found, p);
    rm_rf(d);
}

/* ---- no daemon ---- */

Test(connect, not_running_exit_3)
{
    char d[TPATH], sock[TPATH + 16], want[TPATH + 200];
    make_tmp(d, sizeof(d), "bitnetctl-nod");
    snprintf(sock, sizeof(sock), "%s/none.sock", d);
    static const char *const cmds[] = {"ps", "list", "status", "metrics", "stop"};
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        struct cap c;
        cr_expect_eq(RUN(&c, "--socket", sock, cmds[i]), CTL_EXIT_CONNECT, "%s", cmds[i]);
        snprintf(want, sizeof(want),
                 "bitnetctl %s: bitnetd is not running on %s; start it with `bitnetctl serve` or "
                 "`systemctl start bitnetd`\n",
                 cmds[i], sock);
        cr_expect_str_eq(c.err, want);
        cr_expect_str_eq(c.out, "");
        cap_free(&c);
    }
    /* A socket file nobody listens on (a crashed daemon's leftover): ECONNREFUSED. */
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%.*s", (int)sizeof(sa.sun_path) - 1, sock);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(fd);
    struct cap c;
    cr_expect_eq(RUN(&c, "--socket", sock, "run", "m", "hello"), CTL_EXIT_CONNECT);
    cr_expect(strstr(c.err, "bitnetd is not running on"), "%s", c.err);
    cap_free(&c);
    /* $BITNET_SOCKET is the default socket. */
    setenv("BITNET_SOCKET", sock, 1);
    cr_expect_eq(RUN(&c, "ps"), CTL_EXIT_CONNECT);
    cr_expect(strstr(c.err, sock), "%s", c.err);
    cap_free(&c);
    /* version reports the daemon as unreachable without failing. */
    cr_expect_eq(RUN(&c, "version"), CTL_EXIT_OK);
    cr_expect(strstr(c.out, "bitnetctl " PACKAGE_VERSION) && strstr(c.out, "not reachable"), "%s", c.out);
    cap_free(&c);
    cr_expect_eq(RUN(&c, "--json", "version"), CTL_EXIT_OK);
    json_t *v = json_loads(c.out, 0, NULL);
    cr_expect(v && json_is_null(json_object_get(v, "server")), "%s", c.out);
    json_decref(v);
    cap_free(&c);
    rm_rf(d);
}

/* ---- the example configuration matches bitnetd's keys ---- */

/* In a child about to run bitnetd: settings from the environment (BITNETD_*) would
 * change the daemon under test. */
static void clear_bitnetd_env(void)
{
    extern char **environ;
    for (char **e = environ; *e;) {
        if (strncmp(*e, "BITNETD_", 8) == 0) {
            char name[128];
            snprintf(name, sizeof(name), "%.*s", (int)strcspn(*e, "="), *e);
            unsetenv(name);
        } else {
            e++;
        }
    }
}

static int run_status(char *const argv[], const char *log)
{
    pid_t pid = fork();
    if (pid == 0) {
        clear_bitnetd_env();
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) < 0)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void dump_file(const char *path);

Test(conf, example_has_only_valid_keys)
{
    const char *build = getenv("BITNET_BUILD_DIR"), *src = getenv("BITNET_SRC_DIR");
    if (!build || !*build || !src || !*src)
        cr_skip_test("BITNET_BUILD_DIR / BITNET_SRC_DIR are not set (run through `make check`)");
    char daemon[TPATH], example[TPATH], d[TPATH], all[TPATH + 16], sock[TPATH + 16], log[TPATH + 16];
    snprintf(daemon, sizeof(daemon), "%s/daemon/bitnetd", build);
    snprintf(example, sizeof(example), "%s/contrib/bitnetd.conf.example", src);
    if (access(daemon, X_OK) != 0)
        cr_skip_test("%s is not built: cannot check the example configuration against it", daemon);
    make_tmp(d, sizeof(d), "bitnetctl-conf");
    snprintf(all, sizeof(all), "%s/all.conf", d);
    snprintf(sock, sizeof(sock), "%s/s.sock", d);
    snprintf(log, sizeof(log), "%s/log", d);
    /* As shipped (everything commented out), and with every "#key = value" line
     * enabled: the groups are left out, they need to exist on this machine. */
    char *as_is[] = {daemon, "--config", example, "--socket", sock, "--check-config", NULL};
    int rc = run_status(as_is, log);
    if (rc != 0)
        dump_file(log);
    cr_expect_eq(rc, 0, "bitnetd --check-config rejects %s as shipped", example);
    FILE *in = fopen(example, "r"), *out = fopen(all, "w");
    cr_assert(in && out);
    char line[1024];
    int enabled = 0;
    while (fgets(line, sizeof(line), in)) {
        size_t k = 1;
        while (line[k] == '_' || (line[k] >= 'a' && line[k] <= 'z'))
            k++;
        bool key_line = line[0] == '#' && k > 1 && strncmp(line + k, " = ", 3) == 0;
        if (key_line && strncmp(line, "#socket_group", 13) != 0 && strncmp(line, "#admin_group", 12) != 0) {
            fputs(line + 1, out);
            enabled++;
        } else {
            fputs(line, out);
        }
    }
    fclose(in);
    fclose(out);
    cr_expect_geq(enabled, 20, "the example documents the keys (%d enabled)", enabled);
    char *every[] = {daemon, "--config", all, "--socket", sock, "--check-config", NULL};
    rc = run_status(every, log);
    if (rc != 0)
        dump_file(log);
    cr_expect_eq(rc, 0, "bitnetd --check-config rejects the example with every key enabled");
    rm_rf(d);
}

/* ---- end to end ---- */

static char e2e_dir[TPATH];
static pid_t e2e_pid = -1;

static void e2e_teardown(void)
{
    if (e2e_pid > 0) {
        kill(e2e_pid, SIGKILL);
        waitpid(e2e_pid, NULL, 0);
        e2e_pid = -1;
    }
    if (e2e_dir[0])
        rm_rf(e2e_dir);
}

static int run_quiet(char *const argv[])
{
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) < 0)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void dump_file(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[1024];
    fprintf(stderr, "---- %s ----\n", path);
    while (f && fgets(line, sizeof(line), f))
        fputs(line, stderr);
    if (f)
        fclose(f);
}

static bool can_connect(const char *sock)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%.*s", (int)sizeof(sa.sun_path) - 1, sock);
    bool ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return ok;
}

/* The syscall a process is blocked in: true when it reads fd 0 (Linux /proc). */
static bool blocked_reading_stdin(pid_t pid)
{
    char path[64], buf[256];
    snprintf(path, sizeof(path), "/proc/%d/syscall", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    bool yes = fgets(buf, sizeof(buf), f) && strncmp(buf, "0 0x0 ", 6) == 0; /* read(0, ...) */
    fclose(f);
    return yes;
}

static json_t *parse_out(const struct cap *c)
{
    json_error_t e;
    json_t *v = json_loads(c->out, 0, &e);
    cr_assert(v, "not JSON (%s): %s", e.text, c->out);
    return v;
}

Test(e2e, serve_load_run_ps_stop, .fini = e2e_teardown, .timeout = 180)
{
    const char *build = getenv("BITNET_BUILD_DIR");
    if (!build || !*build)
        cr_skip_test("BITNET_BUILD_DIR is not set (run through `make check`): no bitnetd to test against");
    char ctl[TPATH], daemon[TPATH], mk[TPATH];
    snprintf(ctl, sizeof(ctl), "%s/client/bitnetctl", build);
    snprintf(daemon, sizeof(daemon), "%s/daemon/bitnetd", build);
    snprintf(mk, sizeof(mk), "%s/contrib/bitnet-mkmodel", build);
    if (access(daemon, X_OK) != 0)
        cr_skip_test("%s is not built: the end-to-end test needs bitnetd (make daemon/bitnetd)", daemon);
    if (access(mk, X_OK) != 0)
        cr_skip_test("%s is not built: the end-to-end test makes its model with it", mk);
    cr_assert_eq(access(ctl, X_OK), 0, "%s is not built", ctl);

    make_tmp(e2e_dir, sizeof(e2e_dir), "bitnetctl-e2e");
    char model[TPATH + 16], sock[TPATH + 16], shm[TPATH + 16], log[TPATH + 16];
    snprintf(model, sizeof(model), "%s/tiny.gguf", e2e_dir);
    snprintf(sock, sizeof(sock), "%s/s.sock", e2e_dir);
    snprintf(shm, sizeof(shm), "%s/shm", e2e_dir);
    snprintf(log, sizeof(log), "%s/bitnetd.log", e2e_dir);
    char conf[TPATH + 16];
    snprintf(conf, sizeof(conf), "%s/bitnetd.conf", e2e_dir); /* empty: not /etc/bitnetd.conf */
    FILE *cf = fopen(conf, "w");
    cr_assert(cf);
    fclose(cf);
    mkdir(shm, 0700);
    char *mk_argv[] = {mk, "--preset", "tiny", "--out", model, NULL};
    if (run_quiet(mk_argv) != 0)
        cr_skip_test("%s --preset tiny failed: no model for the end-to-end test", mk);

    /* bitnetd through `bitnetctl serve` (exec: the child's pid is bitnetd's). */
    pid_t parent = getpid();
    e2e_pid = fork();
    cr_assert(e2e_pid >= 0);
    if (e2e_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a crashed test */
        if (getppid() != parent)
            _exit(1);
        int lf = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        dup2(lf, 1);
        dup2(lf, 2);
        unsetenv("NOTIFY_SOCKET");
        unsetenv("LISTEN_FDS");
        unsetenv("LISTEN_PID");
        clear_bitnetd_env();
        execl(ctl, ctl, "--socket", sock, "serve", "--config", conf, "--shm-dir", shm, "--allow-client-paths",
              "--keep-alive", "-1", "--log-level", "debug", (char *)NULL);
        _exit(127);
    }
    int64_t deadline = now_ms() + WAIT_MS;
    bool up = false;
    while (!up && now_ms() < deadline) {
        int st;
        if (waitpid(e2e_pid, &st, WNOHANG) == e2e_pid) {
            e2e_pid = -1;
            dump_file(log);
            cr_skip_test("bitnetd exited at start (status %d): it is being written; see the log above",
                         WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
        }
        up = can_connect(sock);
        if (!up)
            sleep_ms(10);
    }
    if (!up) {
        dump_file(log);
        cr_assert_fail("bitnetd did not listen on %s within %d ms", sock, WAIT_MS);
    }

    struct cap c;
    /* load by (relative-free) path under a name */
    cr_expect_eq(RUN(&c, "--socket", sock, "load", model, "--name", "tiny"), CTL_EXIT_OK, "%s", c.err);
    cr_expect(strncmp(c.out, "loaded tiny: ", 13) == 0, "%s", c.out);
    cap_free(&c);
    cr_expect_eq(RUN(&c, "--socket", sock, "load", model, "--name", "tiny"), CTL_EXIT_OK, "%s", c.err);
    cr_expect(strstr(c.out, "tiny is already loaded"), "%s", c.out);
    cap_free(&c);

    /* run --raw, greedy: text on stdout, stats on stderr, the same text twice */
    cr_expect_eq(RUN(&c, "--socket", sock, "run", "tiny", "--raw", "-n", "8", "--temperature", "0", "the"),
                 CTL_EXIT_OK, "%s", c.err);
    char *text1 = strdup(c.out);
    cr_expect_gt(strlen(text1), 0, "run printed no text; stderr: %s", c.err);
    cr_expect(strstr(c.err, "8 generated") && strstr(c.err, "stop: length"), "stats: %s", c.err);
    cap_free(&c);
    cr_expect_eq(RUN(&c, "--socket", sock, "run", "tiny", "--raw", "-n", "8", "--temperature", "0", "-q", "the"),
                 CTL_EXIT_OK);
    cr_expect_str_eq(c.out, text1);
    cr_expect_str_eq(c.err, "", "-q prints no stats");
    cap_free(&c);
    /* the prompt from stdin, and --json with the same text */
    cr_expect_eq(RUN_IN(&c, "the\n", "--socket", sock, "--json", "run", "tiny", "--raw", "-n", "8", "--temp", "0"),
                 CTL_EXIT_OK, "%s", c.err);
    json_t *v = parse_out(&c);
    cr_expect_str_eq(json_string_value(json_object_get(v, "text")), text1);
    json_t *st = json_object_get(v, "stats");
    cr_expect_eq(json_integer_value(json_object_get(st, "generated_tokens")), 8);
    cr_expect_str_eq(json_string_value(json_object_get(st, "stop_reason")), "length");
    json_decref(v);
    cap_free(&c);
    free(text1);
    /* a model given by its path resolves to the loaded name */
    cr_expect_eq(RUN(&c, "--socket", sock, "run", model, "-n", "2", "-q", "hi"), CTL_EXIT_OK, "%s", c.err);
    cap_free(&c);

    /* ps --json: a list with the documented fields */
    cr_expect_eq(RUN(&c, "--socket", sock, "ps", "--json"), CTL_EXIT_OK, "%s", c.err);
    v = parse_out(&c);
    cr_assert(json_is_array(v) && json_array_size(v) == 1, "%s", c.out);
    json_t *m = json_array_get(v, 0);
    cr_expect_str_eq(json_string_value(json_object_get(m, "name")), "tiny");
    cr_expect_str_eq(json_string_value(json_object_get(m, "path")), model);
    cr_expect(json_is_integer(json_object_get(m, "bytes")) && json_integer_value(json_object_get(m, "bytes")) > 0);
    const char *lb = json_string_value(json_object_get(m, "loaded_by"));
    cr_expect(lb && (!strcmp(lb, "io_uring") || !strcmp(lb, "pread") || !strcmp(lb, "reattach")), "%s", c.out);
    cr_expect(json_is_number(json_object_get(m, "load_seconds")));
    cr_expect(json_is_number(json_object_get(m, "idle_seconds")));
    cr_expect(json_is_integer(json_object_get(m, "clients")));
    json_decref(v);
    cap_free(&c);
    cr_expect_eq(RUN(&c, "--socket", sock, "ps"), CTL_EXIT_OK);
    cr_expect(strncmp(c.out, "NAME    SIZE", 12) == 0 && strstr(c.out, "\ntiny    ") && strstr(c.out, "forever"),
              "%s", c.out);
    cap_free(&c);
    cr_expect_eq(RUN(&c, "--socket", sock, "ps", "-q"), CTL_EXIT_OK);
    cr_expect_str_eq(c.out, "tiny\n");
    cap_free(&c);

    /* status, list, show, tokenize, metrics in JSON */
    cr_expect_eq(RUN(&c, "--socket", sock, "status", "--json"), CTL_EXIT_OK, "%s", c.err);
    v = parse_out(&c);
    static const char *const sk[] = {"active_sequences", "queued", "kv_bytes", "models", "parallel", "clients"};
    for (size_t i = 0; i < sizeof(sk) / sizeof(sk[0]); i++)
        cr_expect(json_is_integer(json_object_get(v, sk[i])), "status lacks %s: %s", sk[i], c.out);
    cr_expect_eq(json_integer_value(json_object_get(v, "models")), 1);
    cr_expect_eq(json_integer_value(json_object_get(v, "pid")), e2e_pid);
    json_decref(v);
    cap_free(&c);
    cr_expect_eq(RUN(&c, "--socket", sock, "list", "--json"), CTL_EXIT_OK, "%s", c.err);
    v = parse_out(&c);
    cr_expect(json_is_array(v), "%s", c.out);
    json_decref(v);
    cap_free(&c);
    cr_expect_eq(RUN(&c, "--socket", sock, "show", "tiny", "--json"), CTL_EXIT_OK, "%s", c.err);
    v = parse_out(&c);
    cr_expect_eq(json_integer_value(json_object_get(v, "n_layers")), 2);
    cr_expect_gt(json_array_size(json_object_get(v, "formats")), 0);
    cr_expect(json_is_object(json_object_get(v, "metadata")));
    json_decref(v);
    cap_free(&c);
    cr_expect_eq(RUN(&c, "--socket", sock, "show", model), CTL_EXIT_OK, "%s", c.err);
    cr_expect(strstr(c.out, "architecture") && strstr(c.out, "KV cache"), "%s", c.out);
    cap_free(&c);
    cr_expect_eq(RUN(&c, "--socket", sock, "--json", "tokenize", "tiny", "Hello world"), CTL_EXIT_OK, "%s", c.err);
    v = parse_out(&c);
    json_t *toks = json_object_get(v, "tokens");
    cr_assert_gt(json_array_size(toks), 1, "%s", c.out);
    /* decode the ids after BOS back to the text */
    char ids[1024] = "";
    for (size_t i = 1; i < json_array_size(toks); i++) {
        char one[24];
        snprintf(one, sizeof(one), "%s%lld", i > 1 ? "," : "", (long long)json_integer_value(json_array_get(toks, i)));
        strcat(ids, one);
    }
    json_decref(v);
    cap_free(&c);
    cr_expect_eq(RUN(&c, "--socket", sock, "tokenize", "--decode", "tiny", ids), CTL_EXIT_OK, "%s", c.err);
    cr_expect_str_eq(c.out, "Hello world");
    cap_free(&c);
    cr_expect_eq(RUN(&c, "--socket", sock, "metrics", "--json"), CTL_EXIT_OK, "%s", c.err);
    v = parse_out(&c);
    cr_expect_gt(json_array_size(v), 0);
    json_t *s0 = json_array_get(v, 0);
    cr_expect(json_is_string(json_object_get(s0, "name")) && json_object_get(s0, "value"), "%s", c.out);
    json_decref(v);
    cr_expect_str_eq(c.err, "", "every metrics line parses");
    cap_free(&c);

    /* chat from a script: one reply line per message, history kept */
    cr_expect_eq(RUN_IN(&c, "hello\nand again\n/bye\nnot sent\n", "--socket", sock, "chat", "tiny", "-n", "4",
                        "--temperature", "0", "-v"),
                 CTL_EXIT_OK, "%s", c.err);
    int lines = 0;
    for (const char *p = c.out; *p; p++)
        lines += *p == '\n';
    cr_expect_eq(lines, 2, "two replies: %s", c.out);
    cr_expect(strstr(c.err, "cached"), "the second turn reuses the session's cache: %s", c.err);
    cap_free(&c);

    /* errors with their exit codes */
    cr_expect_eq(RUN(&c, "--socket", sock, "unload", "nosuch"), CTL_EXIT_NOT_FOUND, "%s", c.err);
    cr_expect(strncmp(c.err, "bitnetctl unload: ", 18) == 0, "%s", c.err);
    cap_free(&c);
    cr_expect_eq(RUN(&c, "--socket", sock, "run", "nosuch", "hello"), CTL_EXIT_NOT_FOUND, "%s", c.err);
    cap_free(&c);

    /* bench through the daemon */
    cr_expect_eq(RUN(&c, "--socket", sock, "--json", "bench", "tiny", "-p", "8", "-n", "4", "-r", "1"), CTL_EXIT_OK,
                 "%s", c.err);
    v = parse_out(&c);
    cr_expect_geq(json_array_size(v), 2, "%s", c.out);
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(v, 0), "test")), "pp8");
    cr_expect(json_is_number(json_object_get(json_array_get(v, 1), "tokens_per_s")));
    json_decref(v);
    cap_free(&c);

    /* Ctrl-C at the chat prompt: exit 130.  The child is known to wait for input
     * when /proc says it is blocked in read(0, ...). */
    int in_pipe[2];
    cr_assert_eq(pipe(in_pipe), 0);
    pid_t chat = fork();
    cr_assert(chat >= 0);
    if (chat == 0) {
        dup2(in_pipe[0], 0);
        close(in_pipe[1]);
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execl(ctl, ctl, "--socket", sock, "chat", "tiny", (char *)NULL);
        _exit(127);
    }
    close(in_pipe[0]);
    deadline = now_ms() + WAIT_MS;
    while (!blocked_reading_stdin(chat) && now_ms() < deadline)
        sleep_ms(5);
    /* The libtool wrapper execs the real binary: the pid stays the chat's. */
    cr_expect(blocked_reading_stdin(chat), "bitnetctl chat never waited for input");
    kill(chat, SIGINT);
    int cst = 0;
    waitpid(chat, &cst, 0);
    close(in_pipe[1]);
    cr_expect(WIFEXITED(cst) && WEXITSTATUS(cst) == CTL_EXIT_INTERRUPTED, "chat after Ctrl-C: status 0x%x", cst);

    /* unload, then stop: the daemon exits 0 */
    cr_expect_eq(RUN(&c, "--socket", sock, "unload", "tiny"), CTL_EXIT_OK, "%s", c.err);
    cap_free(&c);
    cr_expect_eq(RUN(&c, "--socket", sock, "stop", "--grace", "5s"), CTL_EXIT_OK, "%s", c.err);
    char want[64];
    snprintf(want, sizeof(want), "bitnetd (pid %d) stopped\n", (int)e2e_pid);
    cr_expect_str_eq(c.out, want);
    cap_free(&c);
    int dst = 0;
    cr_expect_eq(waitpid(e2e_pid, &dst, 0), e2e_pid);
    e2e_pid = -1;
    cr_expect(WIFEXITED(dst) && WEXITSTATUS(dst) == 0, "bitnetd exit status 0x%x", dst);
    cr_expect_eq(RUN(&c, "--socket", sock, "status"), CTL_EXIT_CONNECT);
    cap_free(&c);
}
