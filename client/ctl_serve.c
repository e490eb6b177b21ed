/* client/ctl_serve.c — `bitnetctl serve`: replace this process with bitnetd in the
 * foreground, so that a terminal, a supervisor or a test sees the daemon itself
 * (its pid, its signals, its exit status). */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl.h"

const struct ctl_opt ctl_serve_opts[] = {{NULL, 0, false, 0, NULL, NULL}};

#define BITNETD_NAME "bitnetd"

static bool is_executable_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* dir of path into out (without the trailing '/'); "." when path has none. */
static void dir_of(const char *path, char *out, size_t size)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(out, size, ".");
    else if (slash == path)
        snprintf(out, size, "/");
    else
        snprintf(out, size, "%.*s", (int)(slash - path), path);
}

int ctl_find_bitnetd(const char *self_exe, char *buf, size_t size)
{
    if (self_exe && *self_exe) {
        char dir[PATH_MAX];
        dir_of(self_exe, dir, sizeof(dir));
        /* libtool keeps the real binary in .libs/ beside its wrapper script */
        size_t dl = strlen(dir);
        if (dl >= 5 && strcmp(dir + dl - 5, ".libs") == 0 && (dl == 5 || dir[dl - 6] == '/')) {
            char up[PATH_MAX];
            snprintf(up, sizeof(up), "%s", dir);
            dir_of(up, dir, sizeof(dir));
        }
        static const char *const rel[] = {
            "/" BITNETD_NAME,                /* installed: same bin/ folder */
            "/../daemon/" BITNETD_NAME,      /* build tree: client/ beside daemon/ */
            "/../sbin/" BITNETD_NAME,        /* installed with bitnetd in sbin/ */
        };
        for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
            char cand[PATH_MAX + 32];
            snprintf(cand, sizeof(cand), "%s%s", dir, rel[i]);
            if (is_executable_file(cand) && strlen(cand) < size) {
                memcpy(buf, cand, strlen(cand) + 1);
                return 0;
            }
        }
    }
    const char *path = getenv("PATH");
    if (!path || !*path)
        return -1;
    for (const char *p = path;;) {
        const char *colon = strchr(p, ':');
        size_t len = colon ? (size_t)(colon - p) : strlen(p);
        char cand[PATH_MAX + 32];
        /* An empty PATH entry means the current folder. */
        snprintf(cand, sizeof(cand), "%.*s/%s", (int)(len ? len : 1), len ? p : ".", BITNETD_NAME);
        if (is_executable_file(cand) && strlen(cand) < size) {
            memcpy(buf, cand, strlen(cand) + 1);
            return 0;
        }
        if (!colon)
            return -1;
        p = colon + 1;
    }
}

int ctl_cmd_serve(struct ctl *g, int argc, char **argv)
{
    /* Everything after "serve" is bitnetd's, except a help request before "--". */
    bool has_socket = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            ctl_print_help(g->out, g->cmd);
            return CTL_EXIT_OK;
        }
    }
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--socket") == 0 || strncmp(argv[i], "--socket=", 9) == 0)
            has_socket = true;
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    self[n > 0 ? n : 0] = 0;
    char bin[PATH_MAX];
    if (ctl_find_bitnetd(self, bin, sizeof(bin)) < 0)
        return ctl_fail(g, CTL_EXIT_ERROR,
                        "bitnetd was not found beside bitnetctl (%s), in the build tree or on $PATH; "
                        "install bitnetd or add its folder to $PATH",
                        self[0] ? self : "unknown");
    char **nargv = calloc((size_t)argc + 4, sizeof(*nargv));
    if (!nargv)
        return ctl_fail(g, CTL_EXIT_ERROR, "out of memory");
    int k = 0;
    nargv[k++] = bin;
    const char *sock = g->socket_path ? g->socket_path : getenv(BNC_SOCKET_ENV);
    if (!has_socket && sock && *sock) {
        nargv[k++] = "--socket";
        nargv[k++] = (char *)sock;
    }
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--") != 0)
            nargv[k++] = argv[i];
    nargv[k] = NULL;
    if (g->verbose) {
        fprintf(g->err, "bitnetctl serve: exec");
        for (int i = 0; i < k; i++)
            fprintf(g->err, " %s", nargv[i]);
        fputc('\n', g->err);
    }
    fflush(g->out);
    fflush(g->err);
    signal(SIGPIPE, SIG_DFL); /* main() ignores it; bitnetd starts with the default */
    execv(bin, nargv);
    int e = errno;
    free(nargv);
    return ctl_fail(g, CTL_EXIT_ERROR, "cannot run %s: %s", bin, strerror(e));
}
