/* tests/test_daemon_config.c — bitnetd's configuration: the config file parser (strict,
 * line-numbered errors), the environment and the flags, their order, and the checks
 * across keys.  No daemon is started. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"

static struct daemon_config C;

static void setup(void)
{
    config_defaults(&C);
    unsetenv("BITNETD_CONFIG");
    unsetenv("BITNETD_MAX_QUEUE");
    unsetenv("BITNETD_PARALLEL");
    bn_log_set_level(BN_LOG_ERROR);
}
static void teardown(void)
{
    config_free(&C);
}

static int parse(const char *text, struct bn_err *err)
{
    return config_parse_text(&C, text, strlen(text), "t.conf", err);
}

TestSuite(config, .init = setup, .fini = teardown);

Test(config, file_values_and_models)
{
    struct bn_err err = {{0}};
    const char *text = "# comment\n"
                       "; another\n"
                       "parallel = 8\r\n"
                       "max-queue=3\n"
                       "keep_alive = 10m\n"
                       "shutdown_grace = 250ms\n"
                       "mem_limit = 2G\n"
                       "allow_client_paths = yes\n"
                       "log_level = debug\n"
                       "socket = \"/run/x y.sock\"\n"
                       "\n"
                       "[models]\n"
                       "bitnet-2b = /models/2b.gguf\n"
                       "tiny:q = /models/tiny.gguf\n"
                       "[daemon]\n"
                       "sessions = 0\n";
    cr_assert_eq(parse(text, &err), 0, "%s", err.msg);
    cr_assert_eq(C.parallel, 8);
    cr_assert_eq(C.max_queue, 3);
    cr_assert_float_eq(C.keep_alive, 600.0, 1e-9);
    cr_assert_float_eq(C.shutdown_grace, 0.25, 1e-9);
    cr_assert_eq(C.mem_limit, 2ull << 30);
    cr_assert(C.allow_client_paths);
    cr_assert_eq(C.log_level, BN_LOG_DEBUG);
    cr_assert_str_eq(C.socket_path, "/run/x y.sock");
    cr_assert_eq(C.sessions, 0);
    cr_assert_eq(C.n_models, 2);
    cr_assert_str_eq(config_model_path(&C, "bitnet-2b"), "/models/2b.gguf");
    cr_assert_str_eq(config_model_path(&C, "tiny:q"), "/models/tiny.gguf");
    cr_assert_null(config_model_path(&C, "other"));
}

static void expect_error(const char *text, const char *part)
{
    struct daemon_config c;
    config_defaults(&c);
    struct bn_err err = {{0}};
    cr_assert_lt(config_parse_text(&c, text, strlen(text), "t.conf", &err), 0, "accepted: %s", text);
    cr_assert(strstr(err.msg, part), "'%s' not in: %s", part, err.msg);
    config_free(&c);
}

Test(config, strict_errors_name_the_line)
{
    expect_error("parallel = 4\nfrobs = 1\n", "t.conf:2: unknown key 'frobs'");
    expect_error("parallel = 4\nparallel = 5\n", "t.conf:2: 'parallel' is already set on line 1");
    expect_error("parallel = four\n", "t.conf:1: parallel: 'four' is not an integer");
    expect_error("parallel = 0\n", "out of range 1..256");
    expect_error("parallel = 999\n", "out of range 1..256");
    expect_error("max_queue = -1\n", "out of range");
    expect_error("keep_alive = soon\n", "is not a duration");
    expect_error("shutdown_grace = -1\n", "out of range");
    expect_error("mem_limit = lots\n", "is not a size");
    expect_error("mlock = maybe\n", "is not a boolean");
    expect_error("log_level = loud\n", "is not a log level");
    expect_error("[weird]\n", "t.conf:1: unknown section [weird]");
    expect_error("[models\n", "section header");
    expect_error("just words\n", "t.conf:1: expected 'key = value'");
    expect_error("= 5\n", "missing key");
    expect_error("[models]\na = /x.gguf\na = /y.gguf\n", "t.conf:3: model 'a' is listed twice");
    expect_error("[models]\nbad name = /x.gguf\n", "model name 'bad name'");
    expect_error("[models]\n.hidden = /x.gguf\n", "model name '.hidden'");
    expect_error("[models]\nempty =\n", "empty path");
    char *longline = malloc(DAEMON_CONFIG_LINE_MAX + 100);
    memset(longline, 'a', DAEMON_CONFIG_LINE_MAX + 50);
    strcpy(longline + DAEMON_CONFIG_LINE_MAX + 50, " = 1\n");
    expect_error(longline, "line is longer than");
    free(longline);
}

Test(config, nul_byte_is_refused)
{
    static const char text[] = "parallel = 4\nmax_queue = 1\0junk\n";
    struct bn_err err = {{0}};
    cr_assert_lt(config_parse_text(&C, text, sizeof(text) - 1, "t.conf", &err), 0);
    cr_assert(strstr(err.msg, "t.conf:2") && strstr(err.msg, "NUL"), "%s", err.msg);
}

Test(config, durations_and_sizes)
{
    double d;
    cr_assert_eq(config_parse_duration("300", &d), 0);
    cr_assert_float_eq(d, 300, 1e-9);
    cr_assert_eq(config_parse_duration("1.5s", &d), 0);
    cr_assert_float_eq(d, 1.5, 1e-9);
    cr_assert_eq(config_parse_duration("250ms", &d), 0);
    cr_assert_float_eq(d, 0.25, 1e-9);
    cr_assert_eq(config_parse_duration("5m", &d), 0);
    cr_assert_float_eq(d, 300, 1e-9);
    cr_assert_eq(config_parse_duration("2h", &d), 0);
    cr_assert_float_eq(d, 7200, 1e-9);
    cr_assert_eq(config_parse_duration("-1", &d), 0);
    cr_assert_float_eq(d, -1, 1e-9);
    cr_assert_eq(config_parse_duration("never", &d), 0);
    cr_assert_lt(d, 0);
    cr_assert_lt(config_parse_duration("", &d), 0);
    cr_assert_lt(config_parse_duration("5 parsecs", &d), 0);
    cr_assert_lt(config_parse_duration("nan", &d), 0);
    uint64_t s;
    cr_assert_eq(config_parse_size("1048576", &s), 0);
    cr_assert_eq(s, 1048576);
    cr_assert_eq(config_parse_size("512K", &s), 0);
    cr_assert_eq(s, 512 * 1024);
    cr_assert_eq(config_parse_size("16MiB", &s), 0);
    cr_assert_eq(s, 16u << 20);
    cr_assert_eq(config_parse_size("8G", &s), 0);
    cr_assert_eq(s, 8ull << 30);
    cr_assert_lt(config_parse_size("-5", &s), 0);
    cr_assert_lt(config_parse_size("5X", &s), 0);
}

static char tmpconf[256];

static void write_conf(const char *text)
{
    snprintf(tmpconf, sizeof(tmpconf), "/tmp/bitnetd-conf-XXXXXX");
    int fd = mkstemp(tmpconf);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

Test(config, file_env_flags_order)
{
    write_conf("parallel = 2\nmax_queue = 7\nkeep_alive = 1m\n[models]\na = /a.gguf\n");
    setenv("BITNETD_MAX_QUEUE", "9", 1);
    setenv("BITNETD_PARALLEL", "3", 1);
    char *argv[] = {"bitnetd", "--config", tmpconf, "--parallel=5", "--socket", "/tmp/x.sock", "--model",
                    "b=/b.gguf", "--allow-client-paths", "--no-mlock", NULL};
    struct config_args a = {10, argv};
    struct daemon_config c;
    bool exit_now;
    struct bn_err err = {{0}};
    cr_assert_eq(config_load(&c, &a, &exit_now, &err), 0, "%s", err.msg);
    cr_assert(!exit_now);
    cr_assert_eq(c.parallel, 5, "flag over env over file");
    cr_assert_eq(c.max_queue, 9, "env over file");
    cr_assert_float_eq(c.keep_alive, 60, 1e-9);
    cr_assert(c.allow_client_paths);
    cr_assert(!c.mlock);
    cr_assert_str_eq(c.socket_path, "/tmp/x.sock");
    cr_assert_str_eq(config_model_path(&c, "a"), "/a.gguf");
    cr_assert_str_eq(config_model_path(&c, "b"), "/b.gguf");
    cr_assert_str_eq(c.config_path, tmpconf);
    config_free(&c);
    unlink(tmpconf);
}

static void expect_load_error(char **argv, int argc, const char *part)
{
    struct config_args a = {argc, argv};
    struct daemon_config c;
    bool exit_now;
    struct bn_err err = {{0}};
    cr_assert_lt(config_load(&c, &a, &exit_now, &err), 0, "accepted");
    cr_assert(strstr(err.msg, part), "'%s' not in: %s", part, err.msg);
}

Test(config, bad_flags_env_and_cross_checks)
{
    char *a1[] = {"bitnetd", "--frob", NULL};
    expect_load_error(a1, 2, "unknown flag '--frob'");
    char *a2[] = {"bitnetd", "--parallel", NULL};
    expect_load_error(a2, 2, "needs a value");
    char *a3[] = {"bitnetd", "stray", NULL};
    expect_load_error(a3, 2, "unexpected argument 'stray'");
    char *a4[] = {"bitnetd", "--socket", "/tmp/x", "--config", "/nonexistent/bitnetd.conf", NULL};
    expect_load_error(a4, 5, "/nonexistent/bitnetd.conf: cannot open");
    char *a5[] = {"bitnetd", "--socket", "/tmp/x", "--otlp-endpoint", "https://collector:4318", NULL};
    expect_load_error(a5, 5, "only http://");
    char *a6[] = {"bitnetd", "--socket", "/tmp/x", "--load-method", "carrier-pigeon", NULL};
    expect_load_error(a6, 5, "load_method");
    char longsock[300];
    memset(longsock, 'a', sizeof(longsock) - 1);
    longsock[0] = '/';
    longsock[sizeof(longsock) - 1] = 0;
    char *a7[] = {"bitnetd", "--socket", longsock, NULL};
    expect_load_error(a7, 3, "longer than");
    char *a8[] = {"bitnetd", "--socket", "/tmp/x", "--model", "noequals", NULL};
    expect_load_error(a8, 5, "NAME=PATH");
    char *a9[] = {"bitnetd", "--socket", "/tmp/x", "--metrics-listen", "9464", NULL};
    expect_load_error(a9, 5, "HOST:PORT");
    setenv("BITNETD_PARALLEL", "many", 1);
    char *a10[] = {"bitnetd", "--socket", "/tmp/x", NULL};
    expect_load_error(a10, 3, "environment BITNETD_PARALLEL");
    unsetenv("BITNETD_PARALLEL");
    setenv("BITNETD_FROB", "1", 1);
    expect_load_error(a10, 3, "BITNETD_FROB: unknown variable");
    unsetenv("BITNETD_FROB");
}

Test(config, reload_reports_changes)
{
    struct daemon_config a, b;
    config_defaults(&a);
    config_defaults(&b);
    struct bn_err err = {{0}};
    const char *ta = "max_queue = 4\n[models]\nx = /x.gguf\n";
    cr_assert_eq(config_parse_text(&a, ta, strlen(ta), "a", &err), 0, "%s", err.msg);
    const char *tb = "max_queue = 8\nparallel = 2\n[models]\ny = /y.gguf\n";
    cr_assert_eq(config_parse_text(&b, tb, strlen(tb), "b", &err), 0, "%s", err.msg);
    /* max_queue, parallel, model x removed, model y added */
    cr_assert_eq(config_log_changes(&a, &b), 4);
    config_keep_restart_keys(&b, &a);
    cr_assert_eq(b.parallel, a.parallel, "parallel needs a restart: the running value stays");
    cr_assert_eq(b.max_queue, 8);
    config_free(&a);
    config_free(&b);
}

Test(config, socket_default_from_xdg)
{
    setenv("XDG_RUNTIME_DIR", "/run/user/4242", 1);
    char *argv[] = {"bitnetd", NULL};
    struct config_args a = {1, argv};
    struct daemon_config c;
    bool exit_now;
    struct bn_err err = {{0}};
    cr_assert_eq(config_load(&c, &a, &exit_now, &err), 0, "%s", err.msg);
    cr_assert_str_eq(c.socket_path, "/run/user/4242/bitnetd.sock");
    config_free(&c);
    unsetenv("XDG_RUNTIME_DIR");
    if (geteuid() == 0) {
        cr_assert_eq(config_load(&c, &a, &exit_now, &err), 0, "%s", err.msg);
        cr_assert_str_eq(c.socket_path, DAEMON_DEFAULT_SOCKET_SYSTEM);
        config_free(&c);
    }
}
