/* daemon/main.c — bitnetd: read the configuration (flags, BITNETD_* environment,
 * config file) and run the daemon until SIGTERM/SIGINT or a shutdown request. */
#include "config.h"

#include <stdio.h>

#include "daemon.h"

int main(int argc, char **argv)
{
    struct config_args args = {argc, argv};
    struct daemon_config cfg;
    struct bn_err err = {{0}};
    bool exit_now = false;
    if (config_load(&cfg, &args, &exit_now, &err) < 0) {
        bn_log(BN_LOG_ERROR, "%s", err.msg);
        return 2; /* configuration error: distinct from a runtime failure (1) */
    }
    if (exit_now) {
        config_free(&cfg);
        return 0;
    }
    if (cfg.check_only) {
        printf("bitnetd: configuration OK: socket %s, %zu model%s, parallel %d, config file %s\n", cfg.socket_path,
               cfg.n_models, cfg.n_models == 1 ? "" : "s", cfg.parallel, cfg.config_path ? cfg.config_path : "(none)");
        config_free(&cfg);
        return 0;
    }
    return daemon_run(&cfg, &args);
}
