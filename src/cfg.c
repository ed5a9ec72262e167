/*
 * cfg: defaults, then environment variables, then command-line flags, into
 * one struct cfg (see include/ringlet/cfg.h).
 *
 * One table describes every setting: its variable, its flag (derived from the
 * variable name), default, accepted values and meaning, so that parsing,
 * error messages and --help cannot drift apart. An empty environment value
 * counts as unset (container tooling often sets empty variables); an empty
 * flag value is an error. Flags are checked for spelling before the
 * environment is read, and `help`/`version` succeed whatever the environment
 * holds. This file does no I/O except cfg_print_help(); it never resolves a
 * host name.
 */
#include "ringlet/cfg.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum kind {
    K_LISTEN, /* address:port, parsed into listen_addr */
    K_URL,    /* free-form string, heap copy (libpq validates it) */
    K_UINT,   /* unsigned, range-checked */
    K_SIZE,   /* size_t, range-checked */
    K_BOOL,   /* 0/1/true/false/yes/no */
    K_ENUM,   /* one of a fixed list of words */
};

struct setting {
    const char *env;  /* environment variable */
    const char *flag; /* long flag, "--" + lower-case name without RINGLET_ */
    enum kind kind;
    size_t off;                /* offset of the field in struct cfg */
    unsigned long long lo, hi; /* K_UINT / K_SIZE range */
    const char *const *words;  /* K_ENUM: accepted words, index = enum value */
    const char *def;           /* default, as shown by --help */
    const char *meaning;       /* one line for --help */
};

static const char *const log_formats[] = {"json", "text", NULL};
static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};
static const char *const io_uring_modes[] = {"auto", "compat", NULL};

#define OFF(f) offsetof(struct cfg, f)
#define GiB    (1024ULL * 1024 * 1024)
#define MiB    (1024ULL * 1024)

static const struct setting settings[] = {
    {"RINGLET_LISTEN", "--listen", K_LISTEN, OFF(listen), 0, 0, NULL, "0.0.0.0:8080",
     "address and port to listen on: a.b.c.d:port, [v6]:port, :port or *:port"},
    {"DATABASE_URL", "--database-url", K_URL, OFF(database_url), 0, 0, NULL,
     "empty: libpq defaults",
     "libpq connection string or postgres:// URI; PG* variables also work"},
    {"RINGLET_DB_CONNECTIONS", "--db-connections", K_UINT, OFF(db_connections), 1, 1000, NULL, "4",
     "size of the database connection pool (1..1000)"},
    {"RINGLET_MAX_CONNECTIONS", "--max-connections", K_UINT, OFF(max_connections), 1, 1000000, NULL,
     "10000", "client connections held at once; more are refused (1..1000000)"},
    {"RINGLET_MAX_BODY_BYTES", "--max-body-bytes", K_SIZE, OFF(max_body_bytes), 0, GiB, NULL,
     "1048576", "request body limit in bytes, larger bodies get 413 (0..1073741824)"},
    {"RINGLET_MAX_HEADER_BYTES", "--max-header-bytes", K_SIZE, OFF(max_header_bytes), 1024, MiB,
     NULL, "16384", "request header section limit in bytes, beyond it 431 (1024..1048576)"},
    {"RINGLET_REQUEST_TIMEOUT_MS", "--request-timeout-ms", K_UINT, OFF(request_timeout_ms), 1,
     3600000, NULL, "5000", "deadline for a request's database work, then 504 (1..3600000)"},
    {"RINGLET_IDLE_TIMEOUT_MS", "--idle-timeout-ms", K_UINT, OFF(idle_timeout_ms), 1, 86400000,
     NULL, "60000", "idle keep-alive connections are closed after this (1..86400000)"},
    {"RINGLET_HEADER_TIMEOUT_MS", "--header-timeout-ms", K_UINT, OFF(header_timeout_ms), 1, 3600000,
     NULL, "10000", "time to receive a full request head, then 408 (1..3600000)"},
    {"RINGLET_SHUTDOWN_GRACE_MS", "--shutdown-grace-ms", K_UINT, OFF(shutdown_grace_ms), 0, 3600000,
     NULL, "20000", "drain time after SIGTERM/SIGINT before exiting (0..3600000)"},
    {"RINGLET_DRAIN_DELAY_MS", "--drain-delay-ms", K_UINT, OFF(drain_delay_ms), 0, 3600000, NULL,
     "5000", "after SIGTERM, keep accepting this long with /readyz 503 (0..3600000)"},
    {"RINGLET_MAX_QUEUED", "--max-queued", K_UINT, OFF(max_queued), 0, 1000000, NULL,
     "0 = 64 x db-connections", "requests waiting for a database connection, then 503"},
    {"RINGLET_LOG_FORMAT", "--log-format", K_ENUM, OFF(log_format), 0, 0, log_formats, "json",
     "log format on stderr: json or text"},
    {"RINGLET_LOG_LEVEL", "--log-level", K_ENUM, OFF(log_level), 0, 0, log_levels, "info",
     "minimum log level: debug, info, warn or error"},
    {"RINGLET_REUSE_PORT", "--reuse-port", K_BOOL, OFF(reuse_port), 0, 0, NULL, "0",
     "set SO_REUSEPORT on the listener (0/1, true/false, yes/no)"},
    {"RINGLET_MIGRATE", "--migrate", K_BOOL, OFF(migrate_on_start), 0, 0, NULL, "0",
     "run the schema migration before serving (0/1, true/false, yes/no)"},
    {"RINGLET_IO_URING", "--io-uring", K_ENUM, OFF(io_uring), 0, 0, io_uring_modes, "auto",
     "auto, or compat to avoid newer io_uring set-up flags"},
};

#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

/* Printable excerpt of a user value for an error message: one line, bounded. */
static void quote_value(const char *v, char *out, size_t len)
{
    size_t o = 0, i = 0;
    if (len == 0)
        return;
    for (; v[i] && o + 5 < len && i < 48; i++) {
        unsigned char ch = (unsigned char)v[i];
        if (ch < 0x20 || ch == 0x7f || ch == '"' || ch == '\\')
            o += (size_t)snprintf(out + o, len - o, "\\x%02x", ch);
        else
            out[o++] = (char)ch;
    }
    if (v[i] && o + 4 < len) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Plain decimal digits only: no sign, space, prefix or overflow. */
static bool parse_digits(const char *s, unsigned long long max, unsigned long long *out)
{
    unsigned long long v = 0;
    if (!*s)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        unsigned d = (unsigned)(*s - '0');
        if (v > (max - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

static bool parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"1", "true", "yes"};
    static const char *const no[] = {"0", "false", "no"};
    for (size_t i = 0; i < 3; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

/* Apply one value to its field. `who` is the variable or flag named in errors. */
static int apply(struct cfg *c, const struct setting *st, const char *v, const char *who, char *err,
                 size_t errlen)
{
    char q[256];
    char *field = (char *)c + st->off;
    quote_value(v, q, sizeof(q));

    switch (st->kind) {
    case K_LISTEN: {
        struct sockaddr_storage ss;
        socklen_t len;
        if (strlen(v) >= sizeof(c->listen) || cfg_parse_listen(v, &ss, &len) != 0) {
            set_err(err, errlen,
                    "%s: \"%s\" is not a numeric address:port (e.g. 0.0.0.0:8080, "
                    "[::]:8080, :8080; port 1..65535)",
                    who, q);
            return -EINVAL;
        }
        strcpy(c->listen, v); /* length checked above */
        c->listen_addr = ss;
        c->listen_addrlen = len;
        return 0;
    }
    case K_URL: {
        char *dup = NULL;
        if (*v) {
            dup = strdup(v);
            if (!dup) {
                set_err(err, errlen, "%s: out of memory", who);
                return -ENOMEM;
            }
        }
        free(c->database_url);
        c->database_url = dup;
        return 0;
    }
    case K_UINT:
    case K_SIZE: {
        unsigned long long n;
        if (!parse_digits(v, st->hi, &n) || n < st->lo) {
            set_err(err, errlen, "%s: \"%s\" is not an integer in %llu..%llu", who, q, st->lo,
                    st->hi);
            return -EINVAL;
        }
        if (st->kind == K_UINT)
            *(unsigned *)(void *)field = (unsigned)n;
        else
            *(size_t *)(void *)field = (size_t)n;
        return 0;
    }
    case K_BOOL: {
        bool b;
        if (!parse_bool(v, &b)) {
            set_err(err, errlen, "%s: \"%s\" is not a boolean (0, 1, true, false, yes, no)", who,
                    q);
            return -EINVAL;
        }
        *(bool *)(void *)field = b;
        return 0;
    }
    case K_ENUM: {
        char list[128] = "";
        size_t o = 0;
        for (int i = 0; st->words[i]; i++) {
            if (strcasecmp(v, st->words[i]) == 0) {
                /* every enum field here is a plain C enum starting at 0 */
                *(int *)(void *)field = i;
                return 0;
            }
            o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s", i ? ", " : "", st->words[i]);
        }
        set_err(err, errlen, "%s: \"%s\" is not one of %s", who, q, list);
        return -EINVAL;
    }
    }
    return -EINVAL;
}

static void set_defaults(struct cfg *c)
{
    memset(c, 0, sizeof(*c));
    c->command = CFG_CMD_SERVE;
    strcpy(c->listen, "0.0.0.0:8080");
    cfg_parse_listen(c->listen, &c->listen_addr, &c->listen_addrlen);
    c->database_url = NULL;
    c->db_connections = 4;
    c->max_connections = 10000;
    c->max_body_bytes = 1048576;
    c->max_header_bytes = 16384;
    c->request_timeout_ms = 5000;
    c->idle_timeout_ms = 60000;
    c->header_timeout_ms = 10000;
    c->shutdown_grace_ms = 20000;
    c->drain_delay_ms = 5000;
    c->max_queued = 0;
    c->log_format = CFG_LOG_JSON;
    c->log_level = CFG_LOG_INFO;
    c->reuse_port = false;
    c->migrate_on_start = false;
    c->io_uring = CFG_IO_URING_AUTO;
}

static const struct setting *find_flag(const char *name, size_t n)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (strlen(settings[i].flag) == n && memcmp(settings[i].flag, name, n) == 0)
            return &settings[i];
    return NULL;
}

static bool command_word(const char *a, enum cfg_command *cmd)
{
    static const struct {
        const char *word;
        enum cfg_command cmd;
    } words[] = {{"serve", CFG_CMD_SERVE},
                 {"migrate", CFG_CMD_MIGRATE},
                 {"help", CFG_CMD_HELP},
                 {"version", CFG_CMD_VERSION}};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (strcmp(a, words[i].word) == 0) {
            *cmd = words[i].cmd;
            return true;
        }
    }
    return false;
}

/*
 * First pass over argv: the command, and each setting's last flag value
 * (left in `vals`), so spelling errors are found before values are judged.
 */
static int scan_args(struct cfg *c, int argc, char *const argv[], const char *vals[], char *err,
                     size_t errlen)
{
    bool have_cmd = false, want_help = false, want_version = false;
    char q[256];

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            want_help = true;
            continue;
        }
        if (strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0) {
            want_version = true;
            continue;
        }
        if (a[0] != '-') {
            enum cfg_command cmd;
            quote_value(a, q, sizeof(q));
            if (have_cmd || !command_word(a, &cmd)) {
                set_err(err, errlen,
                        "unexpected argument \"%s\" (commands: serve, migrate, help, version; "
                        "see --help)",
                        q);
                return -EINVAL;
            }
            have_cmd = true;
            c->command = cmd;
            continue;
        }
        const char *eq = strchr(a, '=');
        size_t n = eq ? (size_t)(eq - a) : strlen(a);
        const struct setting *st = a[1] == '-' ? find_flag(a, n) : NULL;
        if (!st) {
            char name[80];
            snprintf(name, sizeof(name), "%.*s", (int)(n < 64 ? n : 64), a);
            quote_value(name, q, sizeof(q));
            set_err(err, errlen, "unknown flag \"%s\" (see --help)", q);
            return -EINVAL;
        }
        const char *v;
        bool b;
        if (eq) {
            v = eq + 1;
        } else if (st->kind == K_BOOL) {
            /* a bare boolean flag means true; "--reuse-port no" is accepted too */
            if (i + 1 < argc && parse_bool(argv[i + 1], &b))
                v = argv[++i];
            else
                v = "1";
        } else if (i + 1 < argc) {
            v = argv[++i];
        } else {
            set_err(err, errlen, "%s: missing value (see --help)", st->flag);
            return -EINVAL;
        }
        if (!*v) {
            set_err(err, errlen, "%s: empty value (see --help)", st->flag);
            return -EINVAL;
        }
        vals[st - settings] = v;
    }
    if (want_help)
        c->command = CFG_CMD_HELP;
    else if (want_version)
        c->command = CFG_CMD_VERSION;
    return 0;
}

int cfg_load(struct cfg *c, int argc, char *const argv[], cfg_getenv_fn getenv_fn, char *err,
             size_t errlen)
{
    const char *vals[NSETTINGS] = {0};
    int rc;

    set_defaults(c);
    if (err && errlen)
        err[0] = '\0';
    rc = scan_args(c, argc, argv, vals, err, errlen);
    if (rc)
        return rc;
    if (c->command == CFG_CMD_HELP || c->command == CFG_CMD_VERSION)
        return 0;

    for (size_t i = 0; i < NSETTINGS; i++) {
        const struct setting *st = &settings[i];
        const char *v = getenv_fn ? getenv_fn(st->env) : NULL;
        if (v && *v) {
            rc = apply(c, st, v, st->env, err, errlen);
            if (rc)
                return rc;
        }
        if (vals[i]) {
            rc = apply(c, st, vals[i], st->flag, err, errlen);
            if (rc)
                return rc;
        }
    }
    if (c->max_queued == 0)
        c->max_queued = 64 * c->db_connections;
    return 0;
}

void cfg_fini(struct cfg *c)
{
    free(c->database_url);
    c->database_url = NULL;
}

void cfg_print_help(FILE *out)
{
    fprintf(out, "usage: ringlet [serve|migrate|help|version] [--flag=VALUE | --flag VALUE]...\n"
                 "\n"
                 "commands:\n"
                 "  serve      serve HTTP (the default)\n"
                 "  migrate    create or upgrade the database schema, then exit\n"
                 "  help       this text (also --help, -h)\n"
                 "  version    print the version (also --version, -V)\n"
                 "\n"
                 "settings: each environment variable has a flag of the same meaning; a flag\n"
                 "wins over its variable, an empty variable counts as unset. Integers are\n"
                 "plain decimal digits; a boolean flag alone (--reuse-port) means 1. A bad\n"
                 "value stops start-up with exit status 2.\n");
    for (size_t i = 0; i < NSETTINGS; i++) {
        const struct setting *st = &settings[i];
        fprintf(out, "\n  %s, %s (default %s)\n      %s\n", st->flag, st->env, st->def,
                st->meaning);
    }
    fprintf(out, "\nlibpq's own PG* environment variables (PGHOST, PGPASSWORD...) also apply.\n");
}

/* The port after the host: 1..65535, digits only. */
static bool parse_port(const char *s, in_port_t *port)
{
    unsigned long long v;
    if (strlen(s) > 5 || !parse_digits(s, 65535, &v) || v == 0)
        return false;
    *port = htons((uint16_t)v);
    return true;
}

int cfg_parse_listen(const char *text, struct sockaddr_storage *addr, socklen_t *len)
{
    char host[INET6_ADDRSTRLEN + 2];
    const char *colon, *port_s;
    in_port_t port;

    if (!text || !addr || !len)
        return -EINVAL;
    memset(addr, 0, sizeof(*addr));
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':')
            return -EINVAL;
        size_t n = (size_t)(close - text - 1);
        if (n == 0 || n >= sizeof(host))
            return -EINVAL;
        memcpy(host, text + 1, n);
        host[n] = '\0';
        port_s = close + 2;
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)addr;
        if (!parse_port(port_s, &port) || inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
            return -EINVAL;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = port;
        *len = sizeof(*s6);
        return 0;
    }
    colon = strrchr(text, ':');
    if (!colon)
        return -EINVAL;
    size_t n = (size_t)(colon - text);
    if (n >= sizeof(host))
        return -EINVAL;
    memcpy(host, text, n);
    host[n] = '\0';
    port_s = colon + 1;
    struct sockaddr_in *s4 = (struct sockaddr_in *)addr;
    if (!parse_port(port_s, &port))
        return -EINVAL;
    if (n == 0 || strcmp(host, "*") == 0)
        s4->sin_addr.s_addr = htonl(INADDR_ANY);
    else if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
        return -EINVAL; /* also an unbracketed IPv6 address or a host name */
    s4->sin_family = AF_INET;
    s4->sin_port = port;
    *len = sizeof(*s4);
    return 0;
}

/* Bounded output that always stays NUL-terminated; excess is dropped. */
struct sink {
    char *p;
    size_t len, cap;
};

static void put(struct sink *s, const char *p, size_t n)
{
    if (s->cap == 0)
        return;
    size_t room = s->cap - 1 - s->len;
    if (n > room)
        n = room;
    memcpy(s->p + s->len, p, n);
    s->len += n;
    s->p[s->len] = '\0';
}

static bool has_prefix_ci(const char *s, const char *prefix)
{
    return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

/* URI query part: "password=..." parameters get "***". `q` points after '?'. */
static void redact_query(struct sink *s, const char *q)
{
    while (*q) {
        size_t n = strcspn(q, "&");
        const char *eq = memchr(q, '=', n);
        if (eq && (size_t)(eq - q) == 8 && strncasecmp(q, "password", 8) == 0) {
            put(s, q, 9);
            put(s, "***", 3);
        } else {
            put(s, q, n);
        }
        q += n;
        if (*q == '&')
            put(s, q++, 1);
    }
}

static void redact_uri(struct sink *s, const char *url)
{
    const char *rest = strstr(url, "://") + 3;
    put(s, url, (size_t)(rest - url));

    /*
     * Err on the side of hiding: a password with an unencoded '@', '/' or '?'
     * must not leak, so the userinfo ends at the last '@' before the query.
     * Failing that, at the last '@' at all, if nothing before it looks like a
     * path (then the password itself held the '?').
     */
    size_t qpos = strcspn(rest, "?");
    const char *at = NULL;
    bool in_query = false;
    for (const char *p = rest; *p; p++) {
        if (*p == '@') {
            at = p;
            in_query = (size_t)(p - rest) > qpos;
        }
        if ((size_t)(p - rest) >= qpos && at && !in_query)
            break;
    }
    if (at) {
        size_t info_len = (size_t)(at - rest);
        const char *colon = memchr(rest, ':', info_len);
        size_t user_len = colon ? (size_t)(colon - rest) : info_len;
        bool is_userinfo =
            !memchr(rest, '/', in_query ? info_len : user_len) && !memchr(rest, '?', user_len);
        if (is_userinfo) {
            put(s, rest, user_len);
            if (colon)
                put(s, ":***", 4);
            rest = at; /* copy from the '@' on */
        }
    }
    const char *qm = strchr(rest, '?');
    if (!qm) {
        put(s, rest, strlen(rest));
        return;
    }
    put(s, rest, (size_t)(qm - rest) + 1);
    redact_query(s, qm + 1);
}

/*
 * Keyword form as libpq parses it: key [ws] = [ws] value, the value either
 * single-quoted (backslash escapes) or a run of non-space characters. If the
 * string stops parsing, the rest is hidden rather than risk showing a secret.
 */
static void redact_keywords(struct sink *s, const char *p)
{
    while (*p) {
        const char *start = p;
        while (isspace((unsigned char)*p))
            p++;
        const char *key = p;
        while (*p && *p != '=' && !isspace((unsigned char)*p))
            p++;
        size_t key_len = (size_t)(p - key);
        while (isspace((unsigned char)*p))
            p++;
        if (key_len == 0 || *p != '=') {
            if (key_len == 0 && !*p) {
                put(s, start, (size_t)(p - start)); /* trailing spaces */
                return;
            }
            put(s, "***", 3);
            return;
        }
        p++;
        while (isspace((unsigned char)*p))
            p++;
        const char *val = p;
        if (*p == '\'') {
            for (p++; *p && *p != '\''; p++)
                if (*p == '\\' && p[1])
                    p++;
            if (*p != '\'') {
                put(s, start, (size_t)(val - start));
                put(s, "***", 3);
                return;
            }
            p++;
        } else {
            for (; *p && !isspace((unsigned char)*p); p++)
                if (*p == '\\' && p[1])
                    p++;
        }
        bool secret = key_len == 8 && strncasecmp(key, "password", 8) == 0;
        put(s, start, (size_t)(val - start));
        if (secret)
            put(s, "***", 3);
        else
            put(s, val, (size_t)(p - val));
    }
}

void cfg_redact_url(const char *url, char *out, size_t len)
{
    struct sink s = {out, 0, len};
    if (len == 0)
        return;
    out[0] = '\0';
    if (!url)
        return;
    if (has_prefix_ci(url, "postgres://") || has_prefix_ci(url, "postgresql://"))
        redact_uri(&s, url);
    else if (strchr(url, '='))
        redact_keywords(&s, url);
    else
        put(&s, url, strlen(url)); /* a bare database name holds no secret */
}
