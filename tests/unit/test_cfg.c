/*
 * Unit tests for cfg: defaults, every variable's valid and invalid values
 * (the error names the variable or flag), flags over environment, commands,
 * listen-address parsing and DATABASE_URL redaction. The environment is a
 * fake table passed through cfg_getenv_fn, never the process's own.
 */
#include "ringlet/cfg.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

/* The fake environment: NULL-terminated name/value pairs set by each test. */
static const char *const *fake_env;

static const char *fake_getenv(const char *name)
{
    for (const char *const *p = fake_env; p && p[0]; p += 2)
        if (strcmp(p[0], name) == 0)
            return p[1];
    return NULL;
}

static char err[256];

/* cfg_load with an argv given as a NULL-terminated list after the program name. */
static int load_env_args(struct cfg *c, const char *const *env, const char *const *args)
{
    char *argv[32] = {"ringlet"};
    int argc = 1;
    for (; args && args[argc - 1]; argc++)
        argv[argc] = (char *)args[argc - 1];
    fake_env = env;
    memset(err, 0, sizeof(err));
    return cfg_load(c, argc, argv, fake_getenv, err, sizeof(err));
}

/* One environment variable, no flags. */
static int load1(struct cfg *c, const char *name, const char *value)
{
    const char *env[] = {name, value, NULL};
    return load_env_args(c, env, NULL);
}

Test(cfg, defaults)
{
    struct cfg c;
    cr_assert_eq(load_env_args(&c, NULL, NULL), 0);
    cr_assert_eq(c.command, CFG_CMD_SERVE);
    cr_assert_str_eq(c.listen, "0.0.0.0:8080");
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&c.listen_addr;
    cr_assert_eq(sin->sin_family, AF_INET);
    cr_assert_eq(ntohs(sin->sin_port), 8080);
    cr_assert_eq(sin->sin_addr.s_addr, htonl(INADDR_ANY));
    cr_assert_eq(c.listen_addrlen, sizeof(struct sockaddr_in));
    cr_assert_null(c.database_url);
    cr_assert_eq(c.db_connections, 4);
    cr_assert_eq(c.max_connections, 10000);
    cr_assert_eq(c.max_body_bytes, 1048576);
    cr_assert_eq(c.max_header_bytes, 16384);
    cr_assert_eq(c.request_timeout_ms, 5000);
    cr_assert_eq(c.idle_timeout_ms, 60000);
    cr_assert_eq(c.header_timeout_ms, 10000);
    cr_assert_eq(c.shutdown_grace_ms, 20000);
    cr_assert_eq(c.drain_delay_ms, 5000);
    cr_assert_eq(c.max_queued, 64 * 4, "0 resolves to 64 x db_connections");
    cr_assert_eq(c.log_format, CFG_LOG_JSON);
    cr_assert_eq(c.log_level, CFG_LOG_INFO);
    cr_assert_eq(c.reuse_port, false);
    cr_assert_eq(c.migrate_on_start, false);
    cr_assert_eq(c.io_uring, CFG_IO_URING_AUTO);
    cfg_fini(&c);
}

/* Integer settings: name, field reader, lowest and highest accepted value. */
struct int_case {
    const char *env;
    const char *flag;
    unsigned long long lo, hi;
};

static unsigned long long field_of(const struct cfg *c, const char *env)
{
    if (!strcmp(env, "RINGLET_DB_CONNECTIONS"))
        return c->db_connections;
    if (!strcmp(env, "RINGLET_MAX_CONNECTIONS"))
        return c->max_connections;
    if (!strcmp(env, "RINGLET_MAX_BODY_BYTES"))
        return c->max_body_bytes;
    if (!strcmp(env, "RINGLET_MAX_HEADER_BYTES"))
        return c->max_header_bytes;
    if (!strcmp(env, "RINGLET_REQUEST_TIMEOUT_MS"))
        return c->request_timeout_ms;
    if (!strcmp(env, "RINGLET_IDLE_TIMEOUT_MS"))
        return c->idle_timeout_ms;
    if (!strcmp(env, "RINGLET_HEADER_TIMEOUT_MS"))
        return c->header_timeout_ms;
    if (!strcmp(env, "RINGLET_SHUTDOWN_GRACE_MS"))
        return c->shutdown_grace_ms;
    if (!strcmp(env, "RINGLET_DRAIN_DELAY_MS"))
        return c->drain_delay_ms;
    if (!strcmp(env, "RINGLET_MAX_QUEUED"))
        return c->max_queued;
    cr_assert_fail("unknown variable %s", env);
    return 0;
}

static const struct int_case int_cases[] = {
    {"RINGLET_DB_CONNECTIONS", "--db-connections", 1, 1000},
    {"RINGLET_MAX_CONNECTIONS", "--max-connections", 1, 1000000},
    {"RINGLET_MAX_BODY_BYTES", "--max-body-bytes", 0, 1073741824ULL},
    {"RINGLET_MAX_HEADER_BYTES", "--max-header-bytes", 1024, 1048576},
    {"RINGLET_REQUEST_TIMEOUT_MS", "--request-timeout-ms", 1, 3600000},
    {"RINGLET_IDLE_TIMEOUT_MS", "--idle-timeout-ms", 1, 86400000},
    {"RINGLET_HEADER_TIMEOUT_MS", "--header-timeout-ms", 1, 3600000},
    {"RINGLET_SHUTDOWN_GRACE_MS", "--shutdown-grace-ms", 0, 3600000},
    {"RINGLET_DRAIN_DELAY_MS", "--drain-delay-ms", 0, 3600000},
    {"RINGLET_MAX_QUEUED", "--max-queued", 0, 1000000}, /* 0 is replaced, see below */
};

Test(cfg, integers_valid_bounds)
{
    for (size_t i = 0; i < sizeof(int_cases) / sizeof(int_cases[0]); i++) {
        const struct int_case *t = &int_cases[i];
        char v[32];
        struct cfg c;
        snprintf(v, sizeof(v), "%llu", t->lo);
        cr_assert_eq(load1(&c, t->env, v), 0, "%s=%s: %s", t->env, v, err);
        if (strcmp(t->env, "RINGLET_MAX_QUEUED") == 0)
            cr_assert_eq(c.max_queued, 64 * c.db_connections);
        else
            cr_assert_eq(field_of(&c, t->env), t->lo, "%s=%s", t->env, v);
        cfg_fini(&c);
        snprintf(v, sizeof(v), "%llu", t->hi);
        cr_assert_eq(load1(&c, t->env, v), 0, "%s=%s: %s", t->env, v, err);
        cr_assert_eq(field_of(&c, t->env), t->hi, "%s=%s", t->env, v);
        cfg_fini(&c);
    }
}

Test(cfg, integers_invalid_name_the_variable)
{
    static const char *const bad[] = {
        "abc", "-1", "+5", " 5", "5 ", "0x10", "1e3", "5.0", "99999999999999999999999"};
    for (size_t i = 0; i < sizeof(int_cases) / sizeof(int_cases[0]); i++) {
        const struct int_case *t = &int_cases[i];
        char v[32], range[64];
        struct cfg c;
        snprintf(range, sizeof(range), "%llu..%llu", t->lo, t->hi);
        for (size_t j = 0; j < sizeof(bad) / sizeof(bad[0]); j++) {
            cr_assert_eq(load1(&c, t->env, bad[j]), -EINVAL, "%s=%s accepted", t->env, bad[j]);
            cr_assert(strstr(err, t->env) == err, "message names the variable: %s", err);
            cr_assert_not_null(strstr(err, range), "message gives the range %s: %s", range, err);
            cr_assert_null(strchr(err, '\n'), "one line: %s", err);
            cfg_fini(&c);
        }
        /* just outside the range */
        snprintf(v, sizeof(v), "%llu", t->hi + 1);
        cr_assert_eq(load1(&c, t->env, v), -EINVAL, "%s=%s accepted", t->env, v);
        cr_assert(strstr(err, t->env) == err, "%s", err);
        cfg_fini(&c);
        if (t->lo > 0) {
            snprintf(v, sizeof(v), "%llu", t->lo - 1);
            cr_assert_eq(load1(&c, t->env, v), -EINVAL, "%s=%s accepted", t->env, v);
            cr_assert(strstr(err, t->env) == err, "%s", err);
            cfg_fini(&c);
        }
    }
}

Test(cfg, error_message_format)
{
    struct cfg c;
    cr_assert_eq(load1(&c, "RINGLET_DB_CONNECTIONS", "abc"), -EINVAL);
    cr_assert_str_eq(err, "RINGLET_DB_CONNECTIONS: \"abc\" is not an integer in 1..1000");
    cfg_fini(&c);
    /* control characters in the value do not break the line */
    cr_assert_eq(load1(&c, "RINGLET_DB_CONNECTIONS", "1\n2"), -EINVAL);
    cr_assert_null(strchr(err, '\n'), "%s", err);
    cfg_fini(&c);
}

Test(cfg, max_queued_zero_derives_from_pool)
{
    const char *env[] = {"RINGLET_MAX_QUEUED", "0", "RINGLET_DB_CONNECTIONS", "10", NULL};
    struct cfg c;
    cr_assert_eq(load_env_args(&c, env, NULL), 0, "%s", err);
    cr_assert_eq(c.max_queued, 640);
    cfg_fini(&c);
}

Test(cfg, leading_zeros_are_digits)
{
    struct cfg c;
    cr_assert_eq(load1(&c, "RINGLET_DB_CONNECTIONS", "007"), 0, "%s", err);
    cr_assert_eq(c.db_connections, 7);
    cfg_fini(&c);
}

Test(cfg, empty_env_is_unset)
{
    struct cfg c;
    cr_assert_eq(load1(&c, "RINGLET_DB_CONNECTIONS", ""), 0, "%s", err);
    cr_assert_eq(c.db_connections, 4);
    cfg_fini(&c);
}

Test(cfg, booleans)
{
    static const char *const yes[] = {"1", "true", "TRUE", "Yes", "yes"};
    static const char *const no[] = {"0", "false", "False", "NO", "no"};
    static const char *const vars[] = {"RINGLET_REUSE_PORT", "RINGLET_MIGRATE"};
    for (size_t v = 0; v < 2; v++) {
        for (size_t i = 0; i < 5; i++) {
            struct cfg c;
            cr_assert_eq(load1(&c, vars[v], yes[i]), 0, "%s", err);
            cr_assert(v == 0 ? c.reuse_port : c.migrate_on_start, "%s=%s", vars[v], yes[i]);
            cfg_fini(&c);
            cr_assert_eq(load1(&c, vars[v], no[i]), 0, "%s", err);
            cr_assert(!(v == 0 ? c.reuse_port : c.migrate_on_start), "%s=%s", vars[v], no[i]);
            cfg_fini(&c);
        }
        struct cfg c;
        cr_assert_eq(load1(&c, vars[v], "maybe"), -EINVAL);
        cr_assert(strstr(err, vars[v]) == err, "%s", err);
        cr_assert_not_null(strstr(err, "true"), "%s", err);
        cfg_fini(&c);
        cr_assert_eq(load1(&c, vars[v], "2"), -EINVAL);
        cfg_fini(&c);
    }
}

Test(cfg, enums)
{
    struct cfg c;
    cr_assert_eq(load1(&c, "RINGLET_LOG_FORMAT", "text"), 0);
    cr_assert_eq(c.log_format, CFG_LOG_TEXT);
    cfg_fini(&c);
    cr_assert_eq(load1(&c, "RINGLET_LOG_FORMAT", "json"), 0);
    cr_assert_eq(c.log_format, CFG_LOG_JSON);
    cfg_fini(&c);
    cr_assert_eq(load1(&c, "RINGLET_LOG_FORMAT", "xml"), -EINVAL);
    cr_assert_str_eq(err, "RINGLET_LOG_FORMAT: \"xml\" is not one of json, text");
    cfg_fini(&c);

    static const char *const levels[] = {"debug", "info", "warn", "error"};
    static const enum cfg_log_level want[] = {CFG_LOG_DEBUG, CFG_LOG_INFO, CFG_LOG_WARN,
                                              CFG_LOG_ERROR};
    for (size_t i = 0; i < 4; i++) {
        cr_assert_eq(load1(&c, "RINGLET_LOG_LEVEL", levels[i]), 0);
        cr_assert_eq(c.log_level, want[i]);
        cfg_fini(&c);
    }
    cr_assert_eq(load1(&c, "RINGLET_LOG_LEVEL", "verbose"), -EINVAL);
    cr_assert(strstr(err, "RINGLET_LOG_LEVEL") == err, "%s", err);
    cr_assert_not_null(strstr(err, "debug, info, warn, error"), "%s", err);
    cfg_fini(&c);

    cr_assert_eq(load1(&c, "RINGLET_IO_URING", "compat"), 0);
    cr_assert_eq(c.io_uring, CFG_IO_URING_COMPAT);
    cfg_fini(&c);
    cr_assert_eq(load1(&c, "RINGLET_IO_URING", "off"), -EINVAL);
    cr_assert(strstr(err, "RINGLET_IO_URING") == err, "%s", err);
    cr_assert_not_null(strstr(err, "auto, compat"), "%s", err);
    cfg_fini(&c);
}

Test(cfg, listen_env)
{
    struct cfg c;
    cr_assert_eq(load1(&c, "RINGLET_LISTEN", "127.0.0.1:9000"), 0, "%s", err);
    cr_assert_str_eq(c.listen, "127.0.0.1:9000");
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&c.listen_addr;
    cr_assert_eq(ntohs(sin->sin_port), 9000);
    cr_assert_eq(sin->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
    cfg_fini(&c);

    cr_assert_eq(load1(&c, "RINGLET_LISTEN", "localhost:9000"), -EINVAL);
    cr_assert(strstr(err, "RINGLET_LISTEN") == err, "%s", err);
    cr_assert_not_null(strstr(err, "1..65535"), "%s", err);
    cfg_fini(&c);
}

Test(cfg, database_url)
{
    struct cfg c;
    cr_assert_eq(load1(&c, "DATABASE_URL", "postgres://u:p@db/app"), 0);
    cr_assert_str_eq(c.database_url, "postgres://u:p@db/app");
    cfg_fini(&c);
    cr_assert_null(c.database_url);

    const char *env[] = {"DATABASE_URL", "host=a", NULL};
    const char *args[] = {"--database-url", "host=b", NULL};
    cr_assert_eq(load_env_args(&c, env, args), 0);
    cr_assert_str_eq(c.database_url, "host=b");
    cfg_fini(&c);
}

Test(cfg, flag_overrides_env)
{
    const char *env[] = {"RINGLET_DB_CONNECTIONS",
                         "8",
                         "RINGLET_LOG_FORMAT",
                         "json",
                         "RINGLET_LISTEN",
                         "127.0.0.1:1",
                         NULL};
    const char *args[] = {
        "--db-connections=16", "--log-format", "text", "--listen", "[::1]:8443", NULL};
    struct cfg c;
    cr_assert_eq(load_env_args(&c, env, args), 0, "%s", err);
    cr_assert_eq(c.db_connections, 16);
    cr_assert_eq(c.log_format, CFG_LOG_TEXT);
    cr_assert_str_eq(c.listen, "[::1]:8443");
    cr_assert_eq(c.listen_addr.ss_family, AF_INET6);
    cfg_fini(&c);
}

Test(cfg, every_flag_exists)
{
    static const char *const args[] = {"--listen=:1",
                                       "--database-url=x=y",
                                       "--db-connections=2",
                                       "--max-connections=3",
                                       "--max-body-bytes=4",
                                       "--max-header-bytes=2048",
                                       "--request-timeout-ms=6",
                                       "--idle-timeout-ms=7",
                                       "--header-timeout-ms=8",
                                       "--shutdown-grace-ms=9",
                                       "--drain-delay-ms=10",
                                       "--max-queued=11",
                                       "--log-format=text",
                                       "--log-level=debug",
                                       "--reuse-port=yes",
                                       "--migrate=true",
                                       "--io-uring=compat",
                                       NULL};
    struct cfg c;
    cr_assert_eq(load_env_args(&c, NULL, args), 0, "%s", err);
    cr_assert_eq(c.db_connections, 2);
    cr_assert_eq(c.max_connections, 3);
    cr_assert_eq(c.max_body_bytes, 4);
    cr_assert_eq(c.max_header_bytes, 2048);
    cr_assert_eq(c.request_timeout_ms, 6);
    cr_assert_eq(c.idle_timeout_ms, 7);
    cr_assert_eq(c.header_timeout_ms, 8);
    cr_assert_eq(c.shutdown_grace_ms, 9);
    cr_assert_eq(c.drain_delay_ms, 10);
    cr_assert_eq(c.max_queued, 11);
    cr_assert_eq(c.log_level, CFG_LOG_DEBUG);
    cr_assert(c.reuse_port);
    cr_assert(c.migrate_on_start);
    cr_assert_eq(c.io_uring, CFG_IO_URING_COMPAT);
    cr_assert_str_eq(c.database_url, "x=y");
    cfg_fini(&c);
}

Test(cfg, bad_flag_value_names_the_flag)
{
    const char *env[] = {"RINGLET_DB_CONNECTIONS", "8", NULL};
    const char *args[] = {"--db-connections", "0", NULL};
    struct cfg c;
    cr_assert_eq(load_env_args(&c, env, args), -EINVAL);
    cr_assert_str_eq(err, "--db-connections: \"0\" is not an integer in 1..1000");
    cfg_fini(&c);
}

Test(cfg, bare_boolean_flag)
{
    const char *args[] = {"--reuse-port", NULL};
    struct cfg c;
    cr_assert_eq(load_env_args(&c, NULL, args), 0, "%s", err);
    cr_assert(c.reuse_port);
    cfg_fini(&c);
    const char *args2[] = {"--reuse-port", "no", "migrate", NULL};
    cr_assert_eq(load_env_args(&c, NULL, args2), 0, "%s", err);
    cr_assert(!c.reuse_port);
    cr_assert_eq(c.command, CFG_CMD_MIGRATE);
    cfg_fini(&c);
}

Test(cfg, unknown_and_incomplete_flags)
{
    struct cfg c;
    const char *a1[] = {"--bogus=1", NULL};
    cr_assert_eq(load_env_args(&c, NULL, a1), -EINVAL);
    cr_assert_not_null(strstr(err, "--bogus"), "%s", err);
    cr_assert_null(strstr(err, "=1"), "%s", err);
    cfg_fini(&c);

    const char *a2[] = {"--listen", NULL};
    cr_assert_eq(load_env_args(&c, NULL, a2), -EINVAL);
    cr_assert(strstr(err, "--listen") == err, "%s", err);
    cr_assert_not_null(strstr(err, "missing"), "%s", err);
    cfg_fini(&c);

    const char *a3[] = {"--db-connections=", NULL};
    cr_assert_eq(load_env_args(&c, NULL, a3), -EINVAL);
    cr_assert(strstr(err, "--db-connections") == err, "%s", err);
    cfg_fini(&c);

    const char *a4[] = {"-x", NULL};
    cr_assert_eq(load_env_args(&c, NULL, a4), -EINVAL);
    cr_assert_not_null(strstr(err, "\"-x\""), "%s", err);
    cfg_fini(&c);

    const char *a5[] = {"serve", "extra", NULL};
    cr_assert_eq(load_env_args(&c, NULL, a5), -EINVAL);
    cr_assert_not_null(strstr(err, "extra"), "%s", err);
    cfg_fini(&c);

    /* the flag named after the variable, not the variable itself */
    const char *a6[] = {"--RINGLET_LISTEN=:80", NULL};
    cr_assert_eq(load_env_args(&c, NULL, a6), -EINVAL);
    cfg_fini(&c);
}

Test(cfg, commands)
{
    static const struct {
        const char *arg;
        enum cfg_command cmd;
    } cases[] = {{"serve", CFG_CMD_SERVE},       {"migrate", CFG_CMD_MIGRATE},
                 {"help", CFG_CMD_HELP},         {"--help", CFG_CMD_HELP},
                 {"-h", CFG_CMD_HELP},           {"version", CFG_CMD_VERSION},
                 {"--version", CFG_CMD_VERSION}, {"-V", CFG_CMD_VERSION}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *args[] = {cases[i].arg, NULL};
        struct cfg c;
        cr_assert_eq(load_env_args(&c, NULL, args), 0, "%s: %s", cases[i].arg, err);
        cr_assert_eq(c.command, cases[i].cmd, "%s", cases[i].arg);
        cfg_fini(&c);
    }
}

Test(cfg, help_and_version_ignore_bad_environment)
{
    const char *env[] = {"RINGLET_DB_CONNECTIONS", "lots", NULL};
    const char *args[] = {"--help", NULL};
    struct cfg c;
    cr_assert_eq(load_env_args(&c, env, args), 0, "%s", err);
    cr_assert_eq(c.command, CFG_CMD_HELP);
    cfg_fini(&c);
    const char *args2[] = {"version", NULL};
    cr_assert_eq(load_env_args(&c, env, args2), 0, "%s", err);
    cr_assert_eq(c.command, CFG_CMD_VERSION);
    cfg_fini(&c);
    /* serving with it is an error */
    cr_assert_eq(load_env_args(&c, env, NULL), -EINVAL);
    cfg_fini(&c);
}

Test(cfg, help_lists_every_variable)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cr_assert_not_null(f);
    cfg_print_help(f);
    fclose(f);
    static const char *const must[] = {"RINGLET_LISTEN",
                                       "--listen",
                                       "0.0.0.0:8080",
                                       "DATABASE_URL",
                                       "--database-url",
                                       "RINGLET_DB_CONNECTIONS",
                                       "--db-connections",
                                       "RINGLET_MAX_CONNECTIONS",
                                       "10000",
                                       "RINGLET_MAX_BODY_BYTES",
                                       "1048576",
                                       "RINGLET_MAX_HEADER_BYTES",
                                       "RINGLET_REQUEST_TIMEOUT_MS",
                                       "RINGLET_IDLE_TIMEOUT_MS",
                                       "RINGLET_HEADER_TIMEOUT_MS",
                                       "RINGLET_SHUTDOWN_GRACE_MS",
                                       "RINGLET_DRAIN_DELAY_MS",
                                       "RINGLET_MAX_QUEUED",
                                       "RINGLET_LOG_FORMAT",
                                       "RINGLET_LOG_LEVEL",
                                       "RINGLET_REUSE_PORT",
                                       "RINGLET_MIGRATE",
                                       "RINGLET_IO_URING",
                                       "migrate",
                                       "--version"};
    for (size_t i = 0; i < sizeof(must) / sizeof(must[0]); i++)
        cr_assert_not_null(strstr(text, must[i]), "help lacks %s", must[i]);
    free(text);
}

/* listen parsing */

static int listen4(const char *text, const char *want_ip, unsigned want_port)
{
    struct sockaddr_storage ss;
    socklen_t len = 0;
    int rc = cfg_parse_listen(text, &ss, &len);
    if (rc)
        return rc;
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;
    char ip[INET_ADDRSTRLEN];
    cr_assert_eq(ss.ss_family, AF_INET, "%s", text);
    cr_assert_eq(len, sizeof(*sin));
    inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
    cr_assert_str_eq(ip, want_ip, "%s", text);
    cr_assert_eq(ntohs(sin->sin_port), want_port, "%s", text);
    return 0;
}

Test(cfg, listen_ipv4)
{
    cr_assert_eq(listen4("0.0.0.0:8080", "0.0.0.0", 8080), 0);
    cr_assert_eq(listen4("192.168.1.20:1", "192.168.1.20", 1), 0);
    cr_assert_eq(listen4("127.0.0.1:65535", "127.0.0.1", 65535), 0);
    cr_assert_eq(listen4(":9090", "0.0.0.0", 9090), 0);
    cr_assert_eq(listen4("*:9090", "0.0.0.0", 9090), 0);
}

Test(cfg, listen_ipv6)
{
    struct sockaddr_storage ss;
    socklen_t len = 0;
    char ip[INET6_ADDRSTRLEN];
    cr_assert_eq(cfg_parse_listen("[::1]:8443", &ss, &len), 0);
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;
    cr_assert_eq(ss.ss_family, AF_INET6);
    cr_assert_eq(len, sizeof(*s6));
    cr_assert_eq(ntohs(s6->sin6_port), 8443);
    inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
    cr_assert_str_eq(ip, "::1");

    cr_assert_eq(cfg_parse_listen("[::]:80", &ss, &len), 0);
    cr_assert(IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)&ss)->sin6_addr));
    cr_assert_eq(cfg_parse_listen("[2001:db8::1]:8080", &ss, &len), 0);
    cr_assert_eq(cfg_parse_listen("[::ffff:10.0.0.1]:8080", &ss, &len), 0);
}

Test(cfg, listen_invalid)
{
    static const char *const bad[] = {"",
                                      "8080",
                                      "0.0.0.0",
                                      "0.0.0.0:",
                                      "0.0.0.0:0",
                                      "0.0.0.0:65536",
                                      "0.0.0.0:-1",
                                      "0.0.0.0:+80",
                                      "0.0.0.0:80a",
                                      "0.0.0.0: 80",
                                      "0.0.0.0:0x50",
                                      "0.0.0.0:000080",
                                      "1.2.3:80",
                                      "256.0.0.1:80",
                                      "localhost:80",
                                      "::1:80",
                                      "[::1]",
                                      "[::1]80",
                                      "[::1]:",
                                      "[]:80",
                                      "[::1:80",
                                      "[1.2.3.4]:80",
                                      "[::1]:99999",
                                      "a.b.c.d:80",
                                      "1.2.3.4:80:80",
                                      ":",
                                      "*:",
                                      "**:80",
                                      " 1.2.3.4:80"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct sockaddr_storage ss;
        socklen_t len = 0;
        cr_assert_eq(cfg_parse_listen(bad[i], &ss, &len), -EINVAL, "\"%s\" accepted", bad[i]);
    }
}

/* redaction */

static const char *redact(const char *url)
{
    static char out[256];
    cfg_redact_url(url, out, sizeof(out));
    return out;
}

Test(cfg, redact_uri)
{
    cr_assert_str_eq(redact("postgres://alice:s3cret@db.example:5432/app"),
                     "postgres://alice:***@db.example:5432/app");
    cr_assert_str_eq(redact("postgresql://alice:s3cret@db/app?sslmode=require"),
                     "postgresql://alice:***@db/app?sslmode=require");
    cr_assert_str_eq(redact("postgres://alice@db/app"), "postgres://alice@db/app");
    cr_assert_str_eq(redact("postgres://db/app"), "postgres://db/app");
    cr_assert_str_eq(redact("postgres:///app?host=/run/postgresql"),
                     "postgres:///app?host=/run/postgresql");
    /* a password with unencoded '@' and '/' is still hidden */
    cr_assert_str_eq(redact("postgres://alice:p@ss/w@db/app"), "postgres://alice:***@db/app");
    cr_assert_str_eq(redact("postgres://alice:p?ss@db/app"), "postgres://alice:***@db/app");
    cr_assert_str_eq(redact("postgres://alice:p?ss@db/app?password=x"),
                     "postgres://alice:***@db/app?password=***");
    cr_assert_str_eq(redact("postgres://db:5432/app?x=a@b"), "postgres://db:5432/app?x=a@b");
    /* password as a query parameter */
    cr_assert_str_eq(redact("postgresql://db/app?user=a&password=hunter2&sslmode=disable"),
                     "postgresql://db/app?user=a&password=***&sslmode=disable");
    /* an '@' in the query is not userinfo */
    cr_assert_str_eq(redact("postgres://db/app?application_name=a@b"),
                     "postgres://db/app?application_name=a@b");
}

Test(cfg, redact_keywords)
{
    cr_assert_str_eq(redact("host=db user=alice password=secret dbname=app"),
                     "host=db user=alice password=*** dbname=app");
    cr_assert_str_eq(redact("host=db password='se cret' dbname=app"),
                     "host=db password=*** dbname=app");
    cr_assert_str_eq(redact("password = 'it\\'s' host=db"), "password = *** host=db");
    cr_assert_str_eq(redact("host=db PASSWORD=x"), "host=db PASSWORD=***");
    cr_assert_str_eq(redact("host=db options='-c password=x'"), "host=db options='-c password=x'");
    cr_assert_str_eq(redact("app"), "app");
    /* unparseable: hide the rest rather than risk it */
    cr_assert_str_eq(redact("host=db password='unterminated"), "host=db password=***");
    cr_assert_null(strstr(redact("host=db garbage password=x"), "x"));
}

Test(cfg, redact_bounds)
{
    char out[16];
    memset(out, 'Z', sizeof(out));
    cfg_redact_url("postgres://alice:secret@db/app", out, sizeof(out));
    cr_assert_eq(strlen(out), sizeof(out) - 1);
    cr_assert_null(strstr(out, "secret"));
    char one[1] = {'Z'};
    cfg_redact_url("host=x", one, sizeof(one));
    cr_assert_eq(one[0], '\0');
    char nul[8];
    cfg_redact_url(NULL, nul, sizeof(nul));
    cr_assert_str_eq(nul, "");
}
