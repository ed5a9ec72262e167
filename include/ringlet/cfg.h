/*
 * cfg: the service's configuration, read once at start-up from the
 * environment and the command line (a flag wins over its variable).
 *
 * This module only parses and validates; it does no I/O besides reading the
 * environment through the callback it is given, so it is unit-testable and
 * fuzzable. A bad value is reported with the name of the variable or flag
 * that carried it; main() turns that into exit status 2.
 */
#ifndef RINGLET_CFG_H
#define RINGLET_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

enum cfg_command {
    CFG_CMD_SERVE,   /* default */
    CFG_CMD_MIGRATE, /* create or upgrade the schema, then exit */
    CFG_CMD_HELP,    /* --help / -h / help */
    CFG_CMD_VERSION, /* --version / -V / version */
};

enum cfg_log_format { CFG_LOG_JSON, CFG_LOG_TEXT };
enum cfg_log_level { CFG_LOG_DEBUG, CFG_LOG_INFO, CFG_LOG_WARN, CFG_LOG_ERROR };
enum cfg_io_uring { CFG_IO_URING_AUTO, CFG_IO_URING_COMPAT };

struct cfg {
    enum cfg_command command;
    char listen[96];                     /* RINGLET_LISTEN as given, e.g. "0.0.0.0:8080" */
    struct sockaddr_storage listen_addr; /* parsed numeric address */
    socklen_t listen_addrlen;
    char *database_url;          /* DATABASE_URL, heap copy or NULL: libpq defaults */
    unsigned db_connections;     /* RINGLET_DB_CONNECTIONS 1..1000, default 4 */
    unsigned max_connections;    /* RINGLET_MAX_CONNECTIONS 1..1000000, default 10000 */
    size_t max_body_bytes;       /* RINGLET_MAX_BODY_BYTES 0..1 GiB, default 1048576 */
    size_t max_header_bytes;     /* RINGLET_MAX_HEADER_BYTES 1024..1 MiB, default 16384 */
    unsigned request_timeout_ms; /* RINGLET_REQUEST_TIMEOUT_MS 1..3600000, default 5000 */
    unsigned idle_timeout_ms;    /* RINGLET_IDLE_TIMEOUT_MS 1..86400000, default 60000 */
    unsigned header_timeout_ms;  /* RINGLET_HEADER_TIMEOUT_MS 1..3600000, default 10000 */
    unsigned shutdown_grace_ms;  /* RINGLET_SHUTDOWN_GRACE_MS 0..3600000, default 20000 */
    unsigned drain_delay_ms;     /* RINGLET_DRAIN_DELAY_MS 0..3600000, default 5000 */
    unsigned max_queued; /* RINGLET_MAX_QUEUED 0..1000000, default 0 = 64 x db_connections */
    enum cfg_log_format log_format; /* RINGLET_LOG_FORMAT json|text, default json */
    enum cfg_log_level log_level;   /* RINGLET_LOG_LEVEL debug|info|warn|error, default info */
    bool reuse_port;                /* RINGLET_REUSE_PORT 0|1 (also true/false), default 0 */
    bool migrate_on_start;          /* RINGLET_MIGRATE 0|1, default 0: serve runs migrate first */
    enum cfg_io_uring io_uring;     /* RINGLET_IO_URING auto|compat, default auto */
};

/* Looks up one environment variable; returns NULL when unset. */
typedef const char *(*cfg_getenv_fn)(const char *name);

/*
 * Fill `c` from defaults, then the environment (through `getenv_fn`), then
 * argv (argv[0] is the program name; an optional first word "serve",
 * "migrate", "help" or "version" selects the command; flags are
 * "--listen=ADDR" or "--listen ADDR" style, one per variable, named after the
 * variable without the RINGLET_ prefix, lower case, '_' as '-', e.g.
 * --db-connections, --database-url, --max-body-bytes).
 * Returns 0, or -EINVAL with a one-line message in `err` that names the
 * variable or flag and the accepted range, e.g.
 * "RINGLET_DB_CONNECTIONS: \"abc\" is not an integer in 1..1000".
 * On failure `c` must still be passed to cfg_fini().
 */
int cfg_load(struct cfg *c, int argc, char *const argv[], cfg_getenv_fn getenv_fn, char *err,
             size_t errlen);

/* Free what cfg_load allocated. */
void cfg_fini(struct cfg *c);

/* Write the --help text (every variable, its flag, default and meaning). */
void cfg_print_help(FILE *out);

/*
 * Parse "host:port", "[v6]:port" or ":port" (all interfaces) into a numeric
 * socket address. No name resolution. 0 or -EINVAL.
 */
int cfg_parse_listen(const char *text, struct sockaddr_storage *addr, socklen_t *len);

/*
 * DATABASE_URL with any password replaced by "***" (URI userinfo password or
 * a "password=" keyword), for logs. Writes at most `len` bytes incl. NUL.
 */
void cfg_redact_url(const char *url, char *out, size_t len);

#endif
