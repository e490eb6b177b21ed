/* daemon/config.c — bitnetd's configuration.  One table of keys drives the config file
 * (`key = value` lines, a [models] section of `name = path`), the BITNETD_* environment
 * variables and the --flags, so every setting has the same name and the same checks in
 * all three.  Later sources win: defaults < file < environment < flags.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

enum ckind {
    K_STR,      /* char *; "" means unset (NULL) */
    K_INT,      /* int in [lo, hi] */
    K_I64,      /* int64_t in [lo, hi] */
    K_BOOL,     /* true/false/yes/no/on/off/1/0 */
    K_DURATION, /* double seconds in [lo, hi] */
    K_SIZE,     /* uint64_t bytes in [lo, hi] */
    K_LEVEL,    /* enum bn_log_level by name */
};

struct ckey {
    const char *name;  /* file key; flag is --name with '-' for '_'; env BITNETD_NAME */
    enum ckind kind;
    size_t off;
    double lo, hi;
    bool reload;       /* SIGHUP applies it; else it needs a restart */
    const char *metavar;
    const char *help;
};

#define OFF(f) offsetof(struct daemon_config, f)
static const struct ckey keys[] = {
    {"socket", K_STR, OFF(socket_path), 0, 0, false, "PATH",
     "Unix socket (default $XDG_RUNTIME_DIR/bitnetd.sock, or " DAEMON_DEFAULT_SOCKET_SYSTEM " as root)"},
    {"socket_group", K_STR, OFF(socket_group), 0, 0, false, "GROUP",
     "group that may connect (socket mode 0660); default: owner only (0600)"},
    {"admin_group", K_STR, OFF(admin_group), 0, 0, true, "GROUP",
     "members may load/unload/shutdown (besides the daemon's user and root)"},
    {"log_level", K_LEVEL, OFF(log_level), 0, 0, true, "LEVEL", "error, warn, info (default) or debug"},
    {"parallel", K_INT, OFF(parallel), 1, DAEMON_PARALLEL_MAX, false, "N",
     "sequences generated together (default 4)"},
    {"max_queue", K_INT, OFF(max_queue), 0, DAEMON_MAX_QUEUE_MAX, true, "N",
     "requests waiting for a sequence before 'busy' (default 64)"},
    {"prefill_chunk", K_INT, OFF(prefill_chunk), 1, DAEMON_PREFILL_CHUNK_MAX, false, "N",
     "prompt tokens evaluated per step, all sequences together (default 256)"},
    {"sessions", K_INT, OFF(sessions), 0, DAEMON_SESSIONS_MAX, false, "N",
     "chat sessions whose KV cache is kept, per model (default 16)"},
    {"threads", K_INT, OFF(threads), 0, BN_RPC_THREADS_MAX, true, "N",
     "engine threads per model (default 0: one per core)"},
    {"head_q8", K_BOOL, OFF(head_q8), 0, 0, true, NULL,
     "requantize an F16 LM head to 8 bits at load: faster decode, private memory (default false)"},
    {"ctx", K_I64, OFF(ctx), 0, BN_RPC_CTX_MAX, true, "N",
     "context length of a load (default 0: the model's trained context)"},
    {"keep_alive", K_DURATION, OFF(keep_alive), -1e9, 1e9, true, "DURATION",
     "idle time before a model unloads (default 5m; 0: at once; negative: never)"},
    {"shutdown_grace", K_DURATION, OFF(shutdown_grace), 0, DAEMON_GRACE_MAX, true, "DURATION",
     "time to finish in-flight work on SIGTERM (default 10s)"},
    {"allow_client_paths", K_BOOL, OFF(allow_client_paths), 0, 0, true, NULL,
     "let clients load any .gguf path (default: only [models] names)"},
    {"load_on_demand", K_BOOL, OFF(load_on_demand), 0, 0, true, NULL,
     "generate/chat of a configured model that is not loaded loads it (default true)"},
    {"max_message_bytes", K_SIZE, OFF(max_message_bytes), 1024, 1u << 30, true, "SIZE",
     "largest request accepted (default 16M)"},
    {"max_connections", K_INT, OFF(max_connections), 1, DAEMON_MAX_CONNECTIONS_MAX, true, "N",
     "open client connections (default 4096)"},
    {"metrics_listen", K_STR, OFF(metrics_listen), 0, 0, false, "HOST:PORT",
     "serve GET /metrics over HTTP (loopback only unless metrics_allow_remote)"},
    {"metrics_allow_remote", K_BOOL, OFF(metrics_allow_remote), 0, 0, false, NULL,
     "allow a non-loopback metrics_listen address"},
    {"otlp_endpoint", K_STR, OFF(otlp_endpoint), 0, 0, false, "URL",
     "push metrics as OTLP/HTTP JSON to this http:// URL"},
    {"otlp_interval", K_DURATION, OFF(otlp_interval), DAEMON_OTLP_INTERVAL_MIN, 86400, false, "DURATION",
     "time between OTLP pushes (default 60s)"},
    {"instance", K_STR, OFF(instance), 0, 0, false, "NAME",
     "name of this daemon's shared-memory segments (default main)"},
    {"shm_dir", K_STR, OFF(shm_dir), 0, 0, false, "DIR",
     "keep model segments as files in DIR instead of POSIX shared memory"},
    {"mem_limit", K_SIZE, OFF(mem_limit), 0, 1e18, false, "SIZE",
     "bytes of resident models (default 0: no limit)"},
    {"load_method", K_STR, OFF(load_method), 0, 0, false, "METHOD", "io_uring (default) or pread"},
    {"mlock", K_BOOL, OFF(mlock), 0, 0, false, NULL, "lock model segments in RAM"},
    {"huge_pages", K_BOOL, OFF(huge_pages), 0, 0, false, NULL,
     "put model memory on huge pages (default true)"},
};

static const struct ckey *key_find(const char *name, size_t len)
{
    for (size_t i = 0; i < NELEM(keys); i++)
        if (strlen(keys[i].name) == len && memcmp(keys[i].name, name, len) == 0)
            return &keys[i];
    return NULL;
}

static char *xstrdup(const char *s)
{
    char *p = strdup(s);
    if (!p) {
        bn_log(BN_LOG_ERROR, "out of memory");
        abort(); /* config strings are tiny: failing here means the process is lost */
    }
    return p;
}

void config_defaults(struct daemon_config *c)
{
    memset(c, 0, sizeof(*c));
    c->log_level = BN_LOG_INFO;
    c->parallel = DAEMON_PARALLEL_DEFAULT;
    c->max_queue = DAEMON_MAX_QUEUE_DEFAULT;
    c->prefill_chunk = DAEMON_PREFILL_CHUNK_DEFAULT;
    c->sessions = DAEMON_SESSIONS_DEFAULT;
    c->keep_alive = DAEMON_KEEP_ALIVE_DEFAULT;
    c->load_on_demand = true;
    c->huge_pages = true;
    c->shutdown_grace = DAEMON_GRACE_DEFAULT;
    c->max_message_bytes = BN_RPC_MAX_FRAME_DEFAULT;
    c->max_connections = DAEMON_MAX_CONNECTIONS_DEFAULT;
    c->otlp_interval = DAEMON_OTLP_INTERVAL_DEFAULT;
    c->instance = xstrdup(DAEMON_INSTANCE_DEFAULT);
    c->load_method = xstrdup("io_uring");
}

void config_free(struct daemon_config *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < NELEM(keys); i++)
        if (keys[i].kind == K_STR) {
            char **p = (char **)((char *)c + keys[i].off);
            free(*p);
        }
    for (size_t i = 0; i < c->n_models; i++) {
        free(c->models[i].name);
        free(c->models[i].path);
    }
    free(c->models);
    free(c->config_path);
    memset(c, 0, sizeof(*c));
}

/* ---- value parsers ---- */

int config_parse_duration(const char *s, double *out)
{
    if (strcmp(s, "never") == 0 || strcmp(s, "forever") == 0) {
        *out = -1;
        return 0;
    }
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || !isfinite(v))
        return -1;
    while (*end == ' ')
        end++;
    double mul = 1;
    if (*end == 0 || strcmp(end, "s") == 0)
        mul = 1;
    else if (strcmp(end, "ms") == 0)
        mul = 1e-3;
    else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0)
        mul = 60;
    else if (strcmp(end, "h") == 0)
        mul = 3600;
    else
        return -1;
    *out = v * mul;
    return 0;
}

int config_parse_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (*s == '-')
        return -1;
    double v = strtod(s, &end);
    if (end == s || errno || !isfinite(v) || v < 0)
        return -1;
    double mul = 1;
    switch (toupper((unsigned char)*end)) {
    case 0: break;
    case 'K': mul = 1024.0; end++; break;
    case 'M': mul = 1024.0 * 1024; end++; break;
    case 'G': mul = 1024.0 * 1024 * 1024; end++; break;
    case 'T': mul = 1024.0 * 1024 * 1024 * 1024; end++; break;
    case 'B': break;
    default: return -1;
    }
    if (*end == 'i' && mul > 1)
        end++;
    if (*end == 'B' || *end == 'b')
        end++;
    if (*end)
        return -1;
    double b = v * mul;
    if (b > 1.8e19)
        return -1;
    *out = (uint64_t)b;
    return 0;
}

static int parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < NELEM(yes); i++)
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
    for (size_t i = 0; i < NELEM(no); i++)
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    return -1;
}

static int parse_level(const char *s, enum bn_log_level *out)
{
    for (int l = BN_LOG_ERROR; l <= BN_LOG_DEBUG; l++)
        if (strcasecmp(s, bn_log_level_name((enum bn_log_level)l)) == 0) {
            *out = (enum bn_log_level)l;
            return 0;
        }
    if (strcasecmp(s, "warning") == 0) {
        *out = BN_LOG_WARN;
        return 0;
    }
    return -1;
}

/* Set key k of c from text v; `where` starts the error ("bitnetd.conf:12"). */
static int key_set(struct daemon_config *c, const struct ckey *k, const char *v, const char *where,
                   struct bn_err *err)
{
    void *p = (char *)c + k->off;
    switch (k->kind) {
    case K_STR: {
        char **sp = p;
        if (strlen(v) > 4095)
            return bn_errf(err, "%s: %s: value is longer than 4095 bytes", where, k->name);
        free(*sp);
        *sp = *v ? xstrdup(v) : NULL;
        return 0;
    }
    case K_INT:
    case K_I64: {
        char *end;
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (end == v || *end || errno)
            return bn_errf(err, "%s: %s: '%s' is not an integer", where, k->name, v);
        if (x < k->lo || x > k->hi)
            return bn_errf(err, "%s: %s: %lld is out of range %.0f..%.0f", where, k->name, x, k->lo, k->hi);
        if (k->kind == K_INT)
            *(int *)p = (int)x;
        else
            *(int64_t *)p = x;
        return 0;
    }
    case K_BOOL:
        if (parse_bool(v, (bool *)p) < 0)
            return bn_errf(err, "%s: %s: '%s' is not a boolean (true/false, yes/no, on/off, 1/0)",
                           where, k->name, v);
        return 0;
    case K_DURATION: {
        double x;
        if (config_parse_duration(v, &x) < 0)
            return bn_errf(err, "%s: %s: '%s' is not a duration (e.g. 300, 250ms, 10s, 5m, 1h, never)",
                           where, k->name, v);
        if (x < k->lo || x > k->hi)
            return bn_errf(err, "%s: %s: %g s is out of range %g..%g s", where, k->name, x, k->lo, k->hi);
        *(double *)p = x;
        return 0;
    }
    case K_SIZE: {
        uint64_t x;
        if (config_parse_size(v, &x) < 0)
            return bn_errf(err, "%s: %s: '%s' is not a size (e.g. 1048576, 512K, 16M, 8G)", where, k->name, v);
        if ((double)x < k->lo || (double)x > k->hi)
            return bn_errf(err, "%s: %s: %llu bytes is out of range %.0f..%.0f", where, k->name,
                           (unsigned long long)x, k->lo, k->hi);
        *(uint64_t *)p = x;
        return 0;
    }
    case K_LEVEL:
        if (parse_level(v, (enum bn_log_level *)p) < 0)
            return bn_errf(err, "%s: %s: '%s' is not a log level (error, warn, info, debug)", where, k->name, v);
        return 0;
    }
    return bn_errf(err, "%s: %s: unhandled key kind", where, k->name);
}

bool daemon_model_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > DAEMON_MODEL_NAME_MAX || name[0] == '.' || name[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (!isalnum(ch) && ch != '.' && ch != '_' && ch != '-' && ch != ':')
            return false;
    }
    return true;
}

static int model_add(struct daemon_config *c, const char *name, const char *path, const char *where,
                     struct bn_err *err)
{
    if (!daemon_model_name_valid(name))
        return bn_errf(err, "%s: model name '%s' must be 1..%d characters of [A-Za-z0-9._:-], not starting with '.' or '-'",
                       where, name, DAEMON_MODEL_NAME_MAX);
    if (!*path)
        return bn_errf(err, "%s: model '%s' has an empty path", where, name);
    if (strlen(path) >= BN_RPC_PATH_MAX)
        return bn_errf(err, "%s: model '%s': path is longer than %d bytes", where, name, BN_RPC_PATH_MAX - 1);
    for (size_t i = 0; i < c->n_models; i++)
        if (strcmp(c->models[i].name, name) == 0) {
            /* A later source (env/flag) replaces; within one file it is a mistake. */
            free(c->models[i].path);
            c->models[i].path = xstrdup(path);
            return 1;
        }
    if (c->n_models >= DAEMON_MODELS_MAX)
        return bn_errf(err, "%s: more than %d models configured", where, DAEMON_MODELS_MAX);
    struct model_conf *m = realloc(c->models, (c->n_models + 1) * sizeof(*m));
    if (!m)
        return bn_errf(err, "%s: out of memory", where);
    c->models = m;
    m[c->n_models].name = xstrdup(name);
    m[c->n_models].path = xstrdup(path);
    c->n_models++;
    return 0;
}

const char *config_model_path(const struct daemon_config *c, const char *name)
{
    for (size_t i = 0; i < c->n_models; i++)
        if (strcmp(c->models[i].name, name) == 0)
            return c->models[i].path;
    return NULL;
}

/* ---- config file ---- */

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        *--e = 0;
    return s;
}

int config_parse_text(struct daemon_config *c, const char *text, size_t len, const char *label,
                      struct bn_err *err)
{
    enum { SEC_DAEMON, SEC_MODELS } sec = SEC_DAEMON;
    int seen_line[NELEM(keys)] = {0};
    char where[300];
    char *line = malloc(DAEMON_CONFIG_LINE_MAX + 1);
    if (!line)
        return bn_errf(err, "%s: out of memory", label);
    size_t pos = 0;
    int lineno = 0, rc = 0;
    while (pos < len) {
        lineno++;
        snprintf(where, sizeof(where), "%s:%d", label, lineno);
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
        if (n > DAEMON_CONFIG_LINE_MAX) {
            rc = bn_errf(err, "%s: line is longer than %d bytes", where, DAEMON_CONFIG_LINE_MAX);
            break;
        }
        if (memchr(text + pos, 0, n)) {
            rc = bn_errf(err, "%s: line contains a NUL byte (not a text file?)", where);
            break;
        }
        memcpy(line, text + pos, n);
        line[n] = 0;
        pos += n + (nl ? 1 : 0);
        if (n && line[n - 1] == '\r')
            line[n - 1] = 0;
        char *s = trim(line);
        if (!*s || *s == '#' || *s == ';')
            continue;
        if (*s == '[') {
            char *e = strchr(s, ']');
            if (!e || *trim(e + 1)) {
                rc = bn_errf(err, "%s: a section header is '[name]' alone on its line", where);
                break;
            }
            *e = 0;
            char *name = trim(s + 1);
            if (strcmp(name, "models") == 0)
                sec = SEC_MODELS;
            else if (strcmp(name, "daemon") == 0 || strcmp(name, "bitnetd") == 0)
                sec = SEC_DAEMON;
            else {
                rc = bn_errf(err, "%s: unknown section [%s] (known: [daemon], [models])", where, name);
                break;
            }
            continue;
        }
        char *eq = strchr(s, '=');
        if (!eq) {
            rc = bn_errf(err, "%s: expected 'key = value', '[section]' or a '#' comment", where);
            break;
        }
        *eq = 0;
        char *key = trim(s), *val = trim(eq + 1);
        size_t vl = strlen(val);
        if (vl >= 2 && val[0] == '"' && val[vl - 1] == '"') {
            val[vl - 1] = 0;
            val++;
        }
        if (!*key) {
            rc = bn_errf(err, "%s: missing key before '='", where);
            break;
        }
        if (sec == SEC_MODELS) {
            int r = model_add(c, key, val, where, err);
            if (r < 0) {
                rc = -1;
                break;
            }
            if (r == 1) {
                rc = bn_errf(err, "%s: model '%s' is listed twice", where, key);
                break;
            }
            continue;
        }
        for (char *q = key; *q; q++)
            if (*q == '-')
                *q = '_';
        const struct ckey *k = key_find(key, strlen(key));
        if (!k) {
            rc = bn_errf(err, "%s: unknown key '%s' (bitnetd --help lists them)", where, key);
            break;
        }
        size_t ki = (size_t)(k - keys);
        if (seen_line[ki]) {
            rc = bn_errf(err, "%s: '%s' is already set on line %d", where, key, seen_line[ki]);
            break;
        }
        seen_line[ki] = lineno;
        if (key_set(c, k, val, where, err) < 0) {
            rc = -1;
            break;
        }
    }
    free(line);
    return rc;
}

static int config_read_file(struct daemon_config *c, const char *path, struct bn_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return bn_errf(err, "%s: cannot open the config file: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return bn_errf(err, "%s: the config file is not a regular file", path);
    }
    if ((uint64_t)st.st_size > DAEMON_CONFIG_FILE_MAX) {
        close(fd);
        return bn_errf(err, "%s: the config file is larger than %u bytes", path, DAEMON_CONFIG_FILE_MAX);
    }
    char *buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        close(fd);
        return bn_errf(err, "%s: out of memory", path);
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    int rc = config_parse_text(c, buf, got, path, err);
    free(buf);
    return rc;
}

/* ---- environment and flags ---- */

static int config_apply_env(struct daemon_config *c, struct bn_err *err)
{
    extern char **environ;
    for (char **e = environ; e && *e; e++) {
        if (strncmp(*e, "BITNETD_", 8) != 0)
            continue;
        const char *eq = strchr(*e, '=');
        if (!eq)
            continue;
        char name[128];
        size_t n = (size_t)(eq - (*e + 8));
        if (n >= sizeof(name))
            return bn_errf(err, "environment: %.40s...: unknown variable", *e);
        for (size_t i = 0; i < n; i++)
            name[i] = (char)tolower((unsigned char)(*e)[8 + i]);
        name[n] = 0;
        if (strcmp(name, "config") == 0)
            continue; /* read before the file */
        const struct ckey *k = key_find(name, n);
        char where[160];
        snprintf(where, sizeof(where), "environment BITNETD_%.*s", (int)n, *e + 8);
        if (!k)
            return bn_errf(err, "%s: unknown variable (bitnetd --help lists the keys)", where);
        if (key_set(c, k, eq + 1, where, err) < 0)
            return -1;
    }
    return 0;
}

/* Returns the key for a flag "--max-queue" (NULL if it is not one). */
static const struct ckey *flag_key(const char *flag, size_t len)
{
    char name[64];
    if (len >= sizeof(name))
        return NULL;
    for (size_t i = 0; i < len; i++)
        name[i] = flag[i] == '-' ? '_' : flag[i];
    return key_find(name, len);
}

enum { FLAGS_SCAN_CONFIG, FLAGS_APPLY };

/* Walk argv.  FLAGS_SCAN_CONFIG only picks --config; FLAGS_APPLY applies the rest. */
static int config_apply_flags(struct daemon_config *c, const struct config_args *a, int pass,
                              char **config_path, bool *exit_now, struct bn_err *err)
{
    for (int i = 1; i < a->argc; i++) {
        const char *arg = a->argv[i];
        if (strncmp(arg, "--", 2) != 0)
            return bn_errf(err, "unexpected argument '%s' (bitnetd takes only --flags; see --help)", arg);
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const char *val = eq ? eq + 1 : NULL;
        bool negated = false;
        const struct ckey *k = NULL;
        bool is_config = nlen == 6 && strncmp(name, "config", 6) == 0;
        bool is_model = nlen == 5 && strncmp(name, "model", 5) == 0;
        bool is_help = nlen == 4 && strncmp(name, "help", 4) == 0;
        bool is_version = nlen == 7 && strncmp(name, "version", 7) == 0;
        bool is_check = nlen == 12 && strncmp(name, "check-config", 12) == 0;
        if (!is_config && !is_model && !is_help && !is_version && !is_check) {
            k = flag_key(name, nlen);
            if (!k && nlen > 3 && strncmp(name, "no-", 3) == 0) {
                k = flag_key(name + 3, nlen - 3);
                if (!k || k->kind != K_BOOL)
                    k = NULL;
                else
                    negated = true;
            }
            if (!k)
                return bn_errf(err, "unknown flag '--%.*s' (see bitnetd --help)", (int)nlen, name);
        }
        bool takes_value = is_config || is_model || (k && k->kind != K_BOOL);
        if (takes_value && !val) {
            if (i + 1 >= a->argc)
                return bn_errf(err, "flag '%s' needs a value", arg);
            val = a->argv[++i];
        }
        if (pass == FLAGS_SCAN_CONFIG) {
            if (is_config) {
                free(*config_path);
                *config_path = xstrdup(val);
            }
            continue;
        }
        if (is_help) {
            config_usage(stdout);
            *exit_now = true;
            return 0;
        }
        if (is_version) {
            printf("%s\n", BITNETD_VERSION_STRING);
            *exit_now = true;
            return 0;
        }
        if (is_check) {
            c->check_only = true; /* main reports once everything is parsed and checked */
            continue;
        }
        if (is_config)
            continue;
        char where[96];
        snprintf(where, sizeof(where), "flag --%.*s", (int)nlen, name);
        if (is_model) {
            const char *sep = strchr(val, '=');
            if (!sep)
                return bn_errf(err, "%s: expected NAME=PATH, got '%s'", where, val);
            char mname[DAEMON_MODEL_NAME_MAX + 2];
            size_t ml = (size_t)(sep - val);
            if (ml >= sizeof(mname))
                ml = sizeof(mname) - 1;
            memcpy(mname, val, ml);
            mname[ml] = 0;
            if (model_add(c, mname, sep + 1, where, err) < 0)
                return -1;
            continue;
        }
        if (k->kind == K_BOOL && !val)
            val = negated ? "false" : "true";
        else if (negated)
            return bn_errf(err, "%s: --no-%s takes no value", where, k->name);
        if (key_set(c, k, val, where, err) < 0)
            return -1;
    }
    return 0;
}

/* Under socket activation the path of the passed socket (fd 3), so that no
 * --socket is needed there; false otherwise. */
static bool activated_socket_path(char *buf, size_t size)
{
    if (daemon_listen_fds() < 1)
        return false;
    struct sockaddr_un sa;
    socklen_t sl = sizeof(sa);
    memset(&sa, 0, sizeof(sa));
    if (getsockname(3, (struct sockaddr *)&sa, &sl) < 0 || sa.sun_family != AF_UNIX || !sa.sun_path[0])
        return false; /* server.c reports what is wrong with the fd */
    snprintf(buf, size, "%.*s", (int)sizeof(sa.sun_path), sa.sun_path);
    return true;
}

int config_finish(struct daemon_config *c, struct bn_err *err)
{
    char act[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
    if (!c->socket_path && activated_socket_path(act, sizeof(act)))
        c->socket_path = xstrdup(act);
    if (!c->socket_path) {
        const char *xdg = getenv("XDG_RUNTIME_DIR");
        if (xdg && *xdg) {
            char buf[4200];
            snprintf(buf, sizeof(buf), "%s/bitnetd.sock", xdg);
            c->socket_path = xstrdup(buf);
        } else if (geteuid() == 0) {
            c->socket_path = xstrdup(DAEMON_DEFAULT_SOCKET_SYSTEM);
        } else {
            return bn_errf(err, "no socket path: XDG_RUNTIME_DIR is not set and bitnetd is not root; "
                                "pass --socket PATH");
        }
    }
    if (strlen(c->socket_path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return bn_errf(err, "socket: '%s' is longer than the %zu bytes a Unix socket path may have",
                       c->socket_path, sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
    enum load_method lm;
    if (!c->load_method || !load_method_parse(c->load_method, &lm) || lm == LOAD_MMAP)
        return bn_errf(err, "load_method: '%s' is not io_uring or pread", c->load_method ? c->load_method : "");
    if (c->instance) {
        size_t n = strlen(c->instance);
        bool ok = n >= 1 && n <= BN_SEG_INSTANCE_MAX;
        for (size_t i = 0; ok && i < n; i++) {
            unsigned char ch = (unsigned char)c->instance[i];
            ok = isalnum(ch) || ch == '_' || ch == '.';
        }
        if (!ok)
            return bn_errf(err, "instance: '%s' must be 1..%u characters of [A-Za-z0-9_.]", c->instance,
                           BN_SEG_INSTANCE_MAX);
    } else {
        c->instance = xstrdup(DAEMON_INSTANCE_DEFAULT);
    }
    if (c->metrics_listen && !strchr(c->metrics_listen, ':'))
        return bn_errf(err, "metrics_listen: '%s' is not HOST:PORT (e.g. 127.0.0.1:9464)", c->metrics_listen);
    if (c->otlp_endpoint) {
        char host[256], path[1024];
        int port;
        if (otlp_parse_url(c->otlp_endpoint, host, sizeof(host), &port, path, sizeof(path), err) < 0)
            return -1;
    }
    if (c->max_message_bytes < 1024)
        c->max_message_bytes = 1024;
    return 0;
}

int config_load(struct daemon_config *out, const struct config_args *args, bool *exit_now,
                struct bn_err *err)
{
    struct daemon_config c;
    config_defaults(&c);
    *exit_now = false;
    char *cfg_path = NULL;
    if (config_apply_flags(&c, args, FLAGS_SCAN_CONFIG, &cfg_path, exit_now, err) < 0)
        goto fail;
    bool explicit_path = cfg_path != NULL;
    if (!cfg_path) {
        const char *e = getenv("BITNETD_CONFIG");
        if (e && *e) {
            cfg_path = xstrdup(e);
            explicit_path = true;
        }
    }
    if (!cfg_path && access(DAEMON_DEFAULT_CONFIG, F_OK) == 0)
        cfg_path = xstrdup(DAEMON_DEFAULT_CONFIG);
    if (cfg_path) {
        if (config_read_file(&c, cfg_path, err) < 0) {
            (void)explicit_path;
            goto fail;
        }
        c.config_path = cfg_path;
        cfg_path = NULL;
    }
    if (config_apply_env(&c, err) < 0)
        goto fail;
    if (config_apply_flags(&c, args, FLAGS_APPLY, NULL, exit_now, err) < 0)
        goto fail;
    if (config_finish(&c, err) < 0)
        goto fail;
    *out = c;
    return 0;
fail:
    free(cfg_path);
    config_free(&c);
    memset(out, 0, sizeof(*out));
    return -1;
}

/* ---- reload ---- */

static void key_format(const struct daemon_config *c, const struct ckey *k, char *buf, size_t n)
{
    const void *p = (const char *)c + k->off;
    switch (k->kind) {
    case K_STR: snprintf(buf, n, "%s", *(char *const *)p ? *(char *const *)p : "(unset)"); break;
    case K_INT: snprintf(buf, n, "%d", *(const int *)p); break;
    case K_I64: snprintf(buf, n, "%lld", (long long)*(const int64_t *)p); break;
    case K_BOOL: snprintf(buf, n, "%s", *(const bool *)p ? "true" : "false"); break;
    case K_DURATION: snprintf(buf, n, "%gs", *(const double *)p); break;
    case K_SIZE: snprintf(buf, n, "%llu", (unsigned long long)*(const uint64_t *)p); break;
    case K_LEVEL: snprintf(buf, n, "%s", bn_log_level_name(*(const enum bn_log_level *)p)); break;
    }
}

int config_log_changes(const struct daemon_config *cur, const struct daemon_config *next)
{
    int changes = 0;
    char a[512], b[512];
    for (size_t i = 0; i < NELEM(keys); i++) {
        key_format(cur, &keys[i], a, sizeof(a));
        key_format(next, &keys[i], b, sizeof(b));
        if (strcmp(a, b) == 0)
            continue;
        changes++;
        if (keys[i].reload)
            bn_log(BN_LOG_INFO, "config: %s: %s -> %s", keys[i].name, a, b);
        else
            bn_log(BN_LOG_WARN, "config: %s: %s -> %s takes effect only after a restart", keys[i].name, a, b);
    }
    for (size_t i = 0; i < next->n_models; i++) {
        const char *old = config_model_path(cur, next->models[i].name);
        if (!old) {
            bn_log(BN_LOG_INFO, "config: model %s added (%s)", next->models[i].name, next->models[i].path);
            changes++;
        } else if (strcmp(old, next->models[i].path) != 0) {
            bn_log(BN_LOG_INFO, "config: model %s: %s -> %s (a resident copy stays until unloaded)",
                   next->models[i].name, old, next->models[i].path);
            changes++;
        }
    }
    for (size_t i = 0; i < cur->n_models; i++)
        if (!config_model_path(next, cur->models[i].name)) {
            bn_log(BN_LOG_INFO, "config: model %s removed (a resident copy stays until unloaded)",
                   cur->models[i].name);
            changes++;
        }
    return changes;
}

void config_keep_restart_keys(struct daemon_config *next, const struct daemon_config *cur)
{
    for (size_t i = 0; i < NELEM(keys); i++) {
        if (keys[i].reload)
            continue;
        void *dst = (char *)next + keys[i].off;
        const void *src = (const char *)cur + keys[i].off;
        switch (keys[i].kind) {
        case K_STR: {
            char **d = dst;
            free(*d);
            *d = *(char *const *)src ? xstrdup(*(char *const *)src) : NULL;
            break;
        }
        case K_INT: *(int *)dst = *(const int *)src; break;
        case K_I64: *(int64_t *)dst = *(const int64_t *)src; break;
        case K_BOOL: *(bool *)dst = *(const bool *)src; break;
        case K_DURATION: *(double *)dst = *(const double *)src; break;
        case K_SIZE: *(uint64_t *)dst = *(const uint64_t *)src; break;
        case K_LEVEL: *(enum bn_log_level *)dst = *(const enum bn_log_level *)src; break;
        }
    }
}

void config_usage(FILE *out)
{
    fprintf(out,
            "usage: bitnetd [--flag VALUE]...\n"
            "Serve BitNet b1.58 models on a Unix socket (msgpack-RPC, see docs/PROTOCOL.md).\n\n"
            "Every setting is a --flag, a key of the config file (key = value) and an environment\n"
            "variable BITNETD_KEY; flags win over the environment, which wins over the file.\n\n"
            "  --config FILE              config file (default " DAEMON_DEFAULT_CONFIG " when it exists;\n"
            "                             env BITNETD_CONFIG).  Its [models] section maps names to paths.\n"
            "  --model NAME=PATH          add a model name (like a [models] line); may repeat\n"
            "  --check-config             parse and check the configuration, then exit\n"
            "  --help, --version\n");
    for (size_t i = 0; i < NELEM(keys); i++) {
        char flag[96];
        snprintf(flag, sizeof(flag), "--%s%s%s", keys[i].name, keys[i].metavar ? " " : "",
                 keys[i].metavar ? keys[i].metavar : "");
        for (char *p = flag + 2; *p && *p != ' '; p++)
            if (*p == '_')
                *p = '-';
        fprintf(out, "  %-26s %s%s\n", flag, keys[i].help, keys[i].reload ? "" : " [restart]");
    }
    fprintf(out, "\nSignals: SIGTERM/SIGINT stop gracefully, SIGHUP reloads the config ([restart] keys\n"
                 "need a restart).  Durations: 300, 250ms, 10s, 5m, 1h, never.  Sizes: 512K, 16M, 8G.\n");
}
