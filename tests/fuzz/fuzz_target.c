/*
 * fuzz_target: the pure parsers of the request-target and the configuration.
 *
 * byte 0 picks the environment variable(s) cfg_load sees and how; the whole
 * input is also used as a request-target, an {id}, a list query, a listen
 * address and a DATABASE_URL to redact.
 *
 * router_match: every pointer it returns lies inside the target, the query
 * runs to the end of it, an item route has an id segment without '/' or '?'.
 * router_parse_id: success means only digits, value 1..INT64_MAX.
 * router_parse_list_query: success means limit 1..1000, after >= 0, and the
 * query holds nothing but limit/after; failure leaves a NUL-terminated detail.
 * cfg_parse_listen / cfg_load: success implies every value in its documented
 * range; failure names the variable or flag; cfg_fini always.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_common.h"
#include "ringlet/cfg.h"
#include "ringlet/router.h"

static const char *const vars[] = {
    "RINGLET_LISTEN",
    "DATABASE_URL",
    "RINGLET_DB_CONNECTIONS",
    "RINGLET_MAX_CONNECTIONS",
    "RINGLET_MAX_BODY_BYTES",
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
};
#define NVARS (sizeof(vars) / sizeof(vars[0]))

/* Up to two variables set at once: names and values. */
static const char *env_name[2];
static const char *env_value[2];

static const char *fake_getenv(const char *name)
{
    for (int i = 0; i < 2; i++)
        if (env_name[i] && strcmp(name, env_name[i]) == 0)
            return env_value[i];
    return NULL;
}

static void check_listen(const char *text)
{
    struct sockaddr_storage ss;
    socklen_t len = 0;
    if (cfg_parse_listen(text, &ss, &len) != 0)
        return;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;
        FUZZ_CHECK(len == sizeof(*s4), "v4 length %u", (unsigned)len);
        FUZZ_CHECK(ntohs(s4->sin_port) >= 1, "port 0 accepted: %s", text);
    } else {
        FUZZ_CHECK(ss.ss_family == AF_INET6, "family %d", ss.ss_family);
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;
        FUZZ_CHECK(len == sizeof(*s6), "v6 length %u", (unsigned)len);
        FUZZ_CHECK(ntohs(s6->sin6_port) >= 1, "port 0 accepted: %s", text);
        FUZZ_CHECK(text[0] == '[', "v6 without brackets: %s", text);
    }
    FUZZ_CHECK(strchr(text, ':') != NULL, "no port separator: %s", text);
}

static void check_cfg(const struct cfg *c)
{
    FUZZ_CHECK(c->db_connections >= 1 && c->db_connections <= 1000, "db_connections %u",
               c->db_connections);
    FUZZ_CHECK(c->max_connections >= 1 && c->max_connections <= 1000000, "max_connections");
    FUZZ_CHECK(c->max_body_bytes <= (1u << 30), "max_body_bytes %zu", c->max_body_bytes);
    FUZZ_CHECK(c->max_header_bytes >= 1024 && c->max_header_bytes <= (1u << 20),
               "max_header_bytes %zu", c->max_header_bytes);
    FUZZ_CHECK(c->request_timeout_ms >= 1 && c->request_timeout_ms <= 3600000, "request_timeout");
    FUZZ_CHECK(c->idle_timeout_ms >= 1 && c->idle_timeout_ms <= 86400000, "idle_timeout");
    FUZZ_CHECK(c->header_timeout_ms >= 1 && c->header_timeout_ms <= 3600000, "header_timeout");
    FUZZ_CHECK(c->shutdown_grace_ms <= 3600000, "grace");
    FUZZ_CHECK(c->drain_delay_ms <= 3600000, "drain delay");
    FUZZ_CHECK(c->max_queued >= 1 && c->max_queued <= 1000000, "max_queued %u", c->max_queued);
    FUZZ_CHECK(c->log_format == CFG_LOG_JSON || c->log_format == CFG_LOG_TEXT, "log_format");
    FUZZ_CHECK(c->log_level >= CFG_LOG_DEBUG && c->log_level <= CFG_LOG_ERROR, "log_level");
    FUZZ_CHECK(c->io_uring == CFG_IO_URING_AUTO || c->io_uring == CFG_IO_URING_COMPAT, "io_uring");
    FUZZ_CHECK(memchr(c->listen, '\0', sizeof(c->listen)) != NULL, "listen not terminated");
    struct sockaddr_storage ss;
    socklen_t len;
    FUZZ_CHECK(cfg_parse_listen(c->listen, &ss, &len) == 0 && len == c->listen_addrlen &&
                   memcmp(&ss, &c->listen_addr, len) == 0,
               "listen \"%s\" does not match its parsed address", c->listen);
    FUZZ_CHECK(!c->database_url || c->database_url[0], "empty DATABASE_URL kept");
}

static void check_router(const char *t, size_t n)
{
    struct router_match m;
    router_match(t, n, &m);
    FUZZ_CHECK(m.route >= 0 && m.route < M_ROUTE__COUNT, "route %d", m.route);
    if (m.query) {
        FUZZ_CHECK(m.query > t && m.query <= t + n && m.query[-1] == '?', "query pointer");
        FUZZ_CHECK(m.query + m.query_len == t + n, "query does not end the target");
    } else {
        FUZZ_CHECK(m.query_len == 0, "query length without query");
    }
    if (m.route == M_ROUTE_ITEM) {
        FUZZ_CHECK(m.id && m.id >= t && m.id + m.id_len <= t + n, "id out of the target");
        FUZZ_CHECK(!memchr(m.id, '?', m.id_len), "id holds the query");
        FUZZ_CHECK(m.id[-1] == '/', "id not after a slash");
        int64_t id;
        if (router_parse_id(m.id, m.id_len, &id) == 0)
            FUZZ_CHECK(id > 0 && !memchr(m.id, '/', m.id_len), "id %lld", (long long)id);
    } else {
        FUZZ_CHECK(m.id == NULL && m.id_len == 0, "id on a non-item route");
    }
    if (m.route != M_ROUTE_UNMATCHED)
        FUZZ_CHECK(router_allow(m.route) != NULL, "no Allow for a route");

    /* The parsers on their own. */
    int64_t id = -1;
    if (router_parse_id(t, n, &id) == 0) {
        /* any number of leading zeros; at most 19 significant digits */
        size_t lead = 0;
        while (lead < n && t[lead] == '0')
            lead++;
        FUZZ_CHECK(id > 0 && n - lead >= 1 && n - lead <= 19, "id %lld from %zu bytes",
                   (long long)id, n);
        int64_t v = 0;
        for (size_t i = 0; i < n; i++) {
            FUZZ_CHECK(t[i] >= '0' && t[i] <= '9', "non-digit accepted in an id");
            v = v * 10 + (t[i] - '0'); /* no overflow: accepted means <= INT64_MAX */
        }
        FUZZ_CHECK(v == id, "id value");
    }
    unsigned limit = 0;
    int64_t after = -1;
    char detail[128];
    memset(detail, 'x', sizeof(detail));
    const char *q = m.query ? m.query : t;
    size_t ql = m.query ? m.query_len : n;
    if (router_parse_list_query(q, ql, &limit, &after, detail, sizeof(detail)) == 0) {
        FUZZ_CHECK(limit >= 1 && limit <= 1000, "limit %u", limit);
        FUZZ_CHECK(after >= 0, "after %lld", (long long)after);
        FUZZ_CHECK(!memchr(q, '+', ql) && !memchr(q, '-', ql), "a sign was accepted");
    } else {
        FUZZ_CHECK(memchr(detail, '\0', sizeof(detail)) && detail[0], "no detail");
    }
    /* NULL query means defaults. */
    FUZZ_CHECK(router_parse_list_query(NULL, 0, &limit, &after, detail, sizeof(detail)) == 0 &&
                   limit == 50 && after == 0,
               "defaults");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    check_router((const char *)data, size);
    if (size < 1)
        return 0;

    /* NUL-terminated views for the C-string APIs. */
    char text[4097];
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    check_listen(text);

    char red[256];
    size_t rlen = (size_t)data[0] % sizeof(red);
    memset(red, 'Z', sizeof(red));
    cfg_redact_url(text, red, rlen);
    if (rlen)
        FUZZ_CHECK(memchr(red, '\0', rlen) != NULL, "redacted url not terminated in %zu", rlen);

    /* cfg_load: byte 0 picks variable(s); "\n" in the value separates a second one. */
    uint8_t sel = data[0];
    char *second = memchr(text, '\n', strlen(text));
    env_name[0] = vars[sel % NVARS];
    env_value[0] = text;
    env_name[1] = NULL;
    env_value[1] = NULL;
    if (second && (sel & 0x80)) {
        *second = '\0';
        env_name[1] = vars[(sel >> 2) % NVARS];
        env_value[1] = second + 1;
    }
    struct cfg c;
    char err[256];
    int rc;
    if (sel & 0x40) {
        /* the same value as a command-line flag: --max-body-bytes=VALUE */
        char flag[4200], lower[64];
        const char *v = env_name[0];
        const char *base = strncmp(v, "RINGLET_", 8) == 0 ? v + 8 : v;
        size_t i = 0;
        for (; base[i] && i < sizeof(lower) - 1; i++)
            lower[i] = base[i] == '_' ? '-' : (char)(base[i] | 0x20);
        lower[i] = '\0';
        snprintf(flag, sizeof(flag), "--%s=%s", lower, env_value[0]);
        char *argv[] = {"ringlet", (sel & 0x20) ? "serve" : "migrate", flag, NULL};
        env_name[0] = NULL;
        rc = cfg_load(&c, 3, argv, fake_getenv, err, sizeof(err));
    } else {
        char *argv[] = {"ringlet", NULL};
        rc = cfg_load(&c, 1, argv, fake_getenv, err, sizeof(err));
    }
    if (rc == 0) {
        check_cfg(&c);
    } else {
        FUZZ_CHECK(rc == -EINVAL || rc == -ENOMEM, "rc %d", rc);
        FUZZ_CHECK(memchr(err, '\0', sizeof(err)) && err[0], "no error message");
        FUZZ_CHECK(strstr(err, "RINGLET_") || strstr(err, "DATABASE_URL") || strstr(err, "--"),
                   "error names no variable or flag: %s", err);
    }
    cfg_fini(&c);
    return 0;
}
