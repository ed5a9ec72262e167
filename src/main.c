/*
 * main: read the configuration, then run one command (serve, migrate, help,
 * version). Wiring only: every job lives in its own module.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "ringlet/cfg.h"
#include "ringlet/log.h"
#include "ringlet/metrics.h"
#include "ringlet/migrate.h"
#include "ringlet/server.h"

static const char *env_lookup(const char *name)
{
    return getenv(name);
}

static void log_config(const struct cfg *c)
{
    char url[512];
    cfg_redact_url(c->database_url ? c->database_url : "", url, sizeof(url));
    log_info("configuration", LOG_STR("listen", c->listen), LOG_STR("database_url", url),
             LOG_UINT("db_connections", c->db_connections),
             LOG_UINT("max_connections", c->max_connections),
             LOG_UINT("max_body_bytes", c->max_body_bytes),
             LOG_UINT("max_header_bytes", c->max_header_bytes),
             LOG_UINT("request_timeout_ms", c->request_timeout_ms),
             LOG_UINT("idle_timeout_ms", c->idle_timeout_ms),
             LOG_UINT("header_timeout_ms", c->header_timeout_ms),
             LOG_UINT("shutdown_grace_ms", c->shutdown_grace_ms),
             LOG_UINT("drain_delay_ms", c->drain_delay_ms), LOG_UINT("max_queued", c->max_queued),
             LOG_BOOL("reuse_port", c->reuse_port), LOG_BOOL("migrate", c->migrate_on_start),
             LOG_STR("io_uring", c->io_uring == CFG_IO_URING_COMPAT ? "compat" : "auto"),
             LOG_STR("version", RINGLET_VERSION));
}

/* SIGTERM/SIGINT are read from a signalfd by the server. Block them first
 * thing, so a signal that arrives during start-up (or a blocking
 * migration) waits for the loop instead of killing the process. */
static void block_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, NULL);
}

int main(int argc, char **argv)
{
    struct cfg cfg;
    char err[512];
    if (cfg_load(&cfg, argc, argv, env_lookup, err, sizeof(err))) {
        fprintf(stderr, "ringlet: configuration error: %s\n(see ringlet --help)\n", err);
        cfg_fini(&cfg);
        return 2;
    }
    int rc = 0;
    switch (cfg.command) {
    case CFG_CMD_HELP:
        cfg_print_help(stdout);
        break;
    case CFG_CMD_VERSION:
        printf("ringlet %s\n", RINGLET_VERSION);
        break;
    case CFG_CMD_MIGRATE:
        log_init(cfg.log_format, cfg.log_level);
        rc = migrate_run(cfg.database_url) ? 1 : 0;
        break;
    case CFG_CMD_SERVE:
        block_signals();
        log_init(cfg.log_format, cfg.log_level);
        metrics_init();
        log_config(&cfg);
        if (cfg.migrate_on_start && migrate_run(cfg.database_url)) {
            rc = 1;
            break;
        }
        rc = server_run(&cfg);
        break;
    }
    cfg_fini(&cfg);
    return rc;
}
