/*
 * db_pool: libpq connections driven by the ring (see include/ringlet/db_pool.h).
 *
 * Pipeline bookkeeping. Reads sent in one turn of the loop share one Sync:
 * the server then answers the whole group with one flush, and we send it
 * with one send(2), which is what lets a small pool keep up with many
 * clients. A read whose group was aborted by another read's error (the
 * server skips the rest of a group) is sent again. Writes are never
 * grouped: a write is preceded and followed by a Sync, so it is its own
 * transaction and nothing else can abort it or be aborted by it.
 * For each query libpq returns its result and a NULL; the last query of a
 * group is followed by a PGRES_PIPELINE_SYNC result. `struct pending.phase`
 * walks those steps so results are matched to requests strictly in order.
 */
#include "ringlet/db_pool.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ringlet/log.h"
#include "ringlet/resolve.h"

#define BACKOFF_BASE_MS     50
#define BACKOFF_CAP_MS      1000
#define CONNECT_TIMEOUT_MS  5000
#define RESOLVE_DEADLINE_MS 10000 /* one DNS lookup of the host, all names and servers */
#define ADDR_TTL_MIN_S      1     /* an answer is reused for its TTL, within these bounds */
#define ADDR_TTL_MAX_S      300
#define WATCHDOG_GRACE_MS   2000 /* beyond statement_timeout, before a silent server is dropped */
#define INIT_ENTRIES        (1 + DB_STMT__COUNT)
#define LIST_PAGE_BYTES_SQL "8388608" /* DB_LIST_PAGE_BYTES as SQL text */
#define GROUP_MAX           32        /* reads sharing one Sync */
/* A request that certainly did not run (its group aborted, or the server
 * answered it with a connection-class error such as 57P01 from
 * pg_terminate_backend: the statement was rolled back), or a read whose
 * connection broke, is sent again on whichever connection is ready, up to
 * this many times within its deadline: when backends die one after another
 * (a failover, pg_terminate_backend of all of them) one retry can land on
 * the next one to die. A write whose connection broke without an answer is
 * never resent: it may have committed. */
#define RETRIES 5

/* Item columns, in enum db_item_col order. */
#define ITEM_COLS                                                                                  \
    "id, name, data::text, version, "                                                              \
    "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), "                \
    "to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

/* The preconditions of update and delete (db.h, DB_COND_PARAMS): `im` the
 * If-Match versions, `inm` the If-None-Match versions, `star` If-None-Match "*". */
#define COND_WHERE(im, inm, star)                                                                  \
    "AND (" im "::int[] IS NULL OR version = ANY(" im "::int[])) "                                 \
    "AND NOT " star "::bool AND (" inm "::int[] IS NULL OR version <> ALL(" inm "::int[]))"
/* The status word when nothing was written, from `cur.version` (NULL: absent). */
#define COND_STATUS(im, inm, star)                                                                 \
    "CASE WHEN cur.version IS NULL THEN 'absent' "                                                 \
    "WHEN " im "::int[] IS NOT NULL AND cur.version <> ALL(" im "::int[]) THEN 'mismatch' "        \
    "WHEN " star "::bool OR cur.version = ANY(" inm "::int[]) THEN 'match' "                       \
    "WHEN " im "::int[] IS NOT NULL THEN 'mismatch' "                                              \
    "WHEN " inm "::int[] IS NOT NULL THEN 'match' ELSE 'absent' END"
/* One row: the version of item $1 in the statement's snapshot, NULL when absent. */
#define COND_CURRENT       "(SELECT (SELECT version FROM items WHERE id = $1) AS version) cur"
#define UPDATE_COND_WHERE  COND_WHERE("$4", "$5", "$6")
#define UPDATE_COND_STATUS COND_STATUS("$4", "$5", "$6")
#define DELETE_COND_WHERE  COND_WHERE("$2", "$3", "$4")
#define DELETE_COND_STATUS COND_STATUS("$2", "$3", "$4")

static const struct {
    const char *name;
    const char *sql;
    int nparams;
} stmts[DB_STMT__COUNT] = {
    [DB_STMT_ITEM_GET] = {"ringlet_item_get", "SELECT " ITEM_COLS " FROM items WHERE id = $1", 1},
    /* A page stops early once its rows hold DB_LIST_PAGE_BYTES of name and
     * data text (at least one row is always returned): without that bound, a
     * page of 1,000 items of 1 MiB each would be a 1 GiB result in our
     * memory. The last column counts the rows the page would have had without
     * the bound, so the handler can tell a short page from a truncated one. */
    [DB_STMT_ITEM_LIST] = {"ringlet_item_list",
                           "SELECT " ITEM_COLS ", page_rows FROM ("
                           "SELECT p.*, count(*) OVER () AS page_rows, "
                           "sum(octet_length(p.name) + octet_length(p.data::text)) "
                           "OVER (ORDER BY p.id) AS upto, "
                           "octet_length(p.name) + octet_length(p.data::text) AS here "
                           "FROM (SELECT * FROM items WHERE id > $1 ORDER BY id LIMIT $2) p"
                           ") items WHERE upto - here < " LIST_PAGE_BYTES_SQL " ORDER BY id",
                           2},
    [DB_STMT_ITEM_INSERT] = {"ringlet_item_insert",
                             "INSERT INTO items (name, data) VALUES ($1, $2::jsonb) "
                             "RETURNING " ITEM_COLS,
                             2},
    /* One round trip answers ok / absent / mismatch / match, with the
     * preconditions (db.h, DB_COND_PARAMS) checked in the write's own WHERE:
     * If-Match (strong: `version` is among $4, or $4 is NULL), then
     * If-None-Match (weak: not "*", and `version` is not among $5). Under
     * READ COMMITTED a concurrent writer makes UPDATE re-check `version` on
     * the new row, so of N updates with the same If-Match exactly one wins.
     * When nothing was written, the current row tells why, in RFC 9110
     * 13.2.2 order; a row that passes both now was changed or deleted by a
     * concurrent writer after our snapshot: 412 when a precondition was
     * given, else 404. */
    [DB_STMT_ITEM_UPDATE] = {"ringlet_item_update",
                             "WITH upd AS (UPDATE items SET name = $2, data = $3::jsonb, "
                             "version = version + 1, updated_at = now() "
                             "WHERE id = $1 " UPDATE_COND_WHERE " RETURNING " ITEM_COLS ") "
                             "SELECT 'ok', upd.* FROM upd "
                             "UNION ALL SELECT " UPDATE_COND_STATUS ", "
                             "NULL::bigint, NULL, NULL, NULL::int, NULL, NULL "
                             "FROM " COND_CURRENT " WHERE NOT EXISTS (SELECT 1 FROM upd)",
                             6},
    [DB_STMT_ITEM_DELETE] = {"ringlet_item_delete",
                             "WITH del AS (DELETE FROM items "
                             "WHERE id = $1 " DELETE_COND_WHERE " RETURNING id) "
                             "SELECT 'ok', del.id FROM del "
                             "UNION ALL SELECT " DELETE_COND_STATUS ", NULL::bigint "
                             "FROM " COND_CURRENT " WHERE NOT EXISTS (SELECT 1 FROM del)",
                             4},
};

enum pc_state {
    PC_BROKEN,     /* no connection; waiting for the retry timer */
    PC_RESOLVING,  /* waiting for the pool's DNS lookup of the host */
    PC_CONNECTING, /* PQconnectPoll in progress */
    PC_INIT,       /* connected; SET and PREPAREs in flight */
    PC_READY,      /* serving */
    PC_CLOSING,    /* waiting for its polls to be cancelled before PQfinish */
};

struct pending {
    struct db_req *req; /* NULL once abandoned (deadline, cancel) or internal */
    uint8_t phase;      /* 0: want result, 1: want NULL, 2: want SYNC */
    uint8_t stmt;
    bool internal;   /* set-up command of PC_INIT */
    bool sync_after; /* a Sync follows this query */
    PGresult *held;  /* a write's result, delivered once its Sync confirms the commit */
};

struct pconn {
    struct db_pool *pool;
    unsigned index;
    PGconn *pg;
    enum pc_state state;
    struct ring_op rpoll, wpoll, rm_op;
    bool rpoll_armed, wpoll_armed;
    int rpoll_fd, wpoll_fd;
    PostgresPollingStatusType want; /* during PC_CONNECTING */
    struct pending *q;              /* ring of in-flight entries */
    unsigned q_head, q_count, q_cap;
    unsigned unsynced;       /* queries sent since the last Sync */
    unsigned attempts;       /* consecutive failures, for backoff */
    struct ring_timer timer; /* retry (BROKEN), connect timeout (CONNECTING), watchdog */
    bool reset_soon;         /* broken while we could not handle it: see pool->defer */
};

struct db_pool {
    struct db db;
    struct ring *ring;
    struct db_pool_config cfg;
    char *conninfo;
    /* The host name we look up ourselves (NULL when libpq needs no lookup:
     * an IP, a socket directory, hostaddr given, several hosts), and the
     * addresses of the last answer, until `addrs_until_ns`. */
    char *dns_host;
    struct resolver resolver;
    struct dns_addr addrs[DNS_MAX_ADDRS];
    unsigned naddrs;
    uint64_t addrs_until_ns;
    char statement_timeout_sql[64];
    struct pconn *conns;
    unsigned ready_count;
    struct db_req *wait_head, *wait_tail; /* FIFO of requests not yet sent */
    unsigned wait_len;
    unsigned inflight;                /* entries with a live req on connections */
    struct ring_timer_list deadlines; /* request deadlines: one duration, O(1) */
    struct ring_timer_list conn_timers;
    struct ring_timer defer; /* runs deferred resets outside submit() */
    bool groups_open;        /* some connection has unsynced reads */
    /* The last ready connection broke and no reconnect attempt has failed
     * yet (a killed backend, not a dead server): requests wait for the
     * reconnect, bounded by their deadline, instead of failing at once. */
    bool recovering;
    uint32_t rng;
};

static void pconn_drive(struct pconn *c);
static void pconn_broken(struct pconn *c, const char *why);
static void pool_dispatch(struct db_pool *p);

enum metrics_stmt db_stmt_metric(enum db_stmt s)
{
    static const enum metrics_stmt map[DB_STMT__COUNT] = {
        [DB_STMT_ITEM_GET] = M_STMT_ITEM_GET,       [DB_STMT_ITEM_LIST] = M_STMT_ITEM_LIST,
        [DB_STMT_ITEM_INSERT] = M_STMT_ITEM_INSERT, [DB_STMT_ITEM_UPDATE] = M_STMT_ITEM_UPDATE,
        [DB_STMT_ITEM_DELETE] = M_STMT_ITEM_DELETE,
    };
    return map[s];
}

/* ---- results seen by handlers ---- */

static const char *pg_value(const struct db_result *r, int row, int col, int *len)
{
    const PGresult *res = r->impl;
    if (!res || row < 0 || row >= r->nrows || col < 0 || col >= r->ncols ||
        PQgetisnull(res, row, col)) {
        *len = 0;
        return NULL;
    }
    *len = PQgetlength(res, row, col);
    return PQgetvalue(res, row, col);
}

static void complete(struct db_pool *p, struct db_req *req, enum db_status st, const PGresult *res)
{
    static const enum metrics_outcome outcome[] = {
        [DB_OK] = M_OUTCOME_OK,
        [DB_UNAVAILABLE] = M_OUTCOME_UNAVAILABLE,
        [DB_TIMEOUT] = M_OUTCOME_TIMEOUT,
        [DB_ERROR] = M_OUTCOME_ERROR,
        /* the statement ran and refused the client's value: not a failure
         * of the database (metrics.c has no label for it) */
        [DB_INVALID] = M_OUTCOME_OK,
    };
    (void)p;
    ring_timer_disarm(&req->deadline);
    req->slot = NULL;
    struct db_result r = {.status = st, .impl = res, .value = pg_value};
    if (res && st == DB_OK) {
        r.nrows = PQntuples(res);
        r.ncols = PQnfields(res);
    } else if (res) {
        r.sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    }
    metrics_count_query(db_stmt_metric(req->stmt), outcome[st]);
    req->cb(req, &r);
}

/* ---- the wait queue ---- */

static void wait_push(struct db_pool *p, struct db_req *req, bool front)
{
    req->slot = NULL;
    req->q_next = req->q_prev = NULL;
    if (!p->wait_head) {
        p->wait_head = p->wait_tail = req;
    } else if (front) {
        req->q_next = p->wait_head;
        p->wait_head->q_prev = req;
        p->wait_head = req;
    } else {
        req->q_prev = p->wait_tail;
        p->wait_tail->q_next = req;
        p->wait_tail = req;
    }
    p->wait_len++;
}

static bool wait_contains(struct db_pool *p, struct db_req *req)
{
    return req->q_prev || req->q_next || p->wait_head == req;
}

static void wait_remove(struct db_pool *p, struct db_req *req)
{
    if (req->q_prev)
        req->q_prev->q_next = req->q_next;
    else
        p->wait_head = req->q_next;
    if (req->q_next)
        req->q_next->q_prev = req->q_prev;
    else
        p->wait_tail = req->q_prev;
    req->q_next = req->q_prev = NULL;
    p->wait_len--;
}

/* ---- polls ---- */

static void arm_poll(struct pconn *c, bool write)
{
    struct db_pool *p = c->pool;
    struct ring_op *op = write ? &c->wpoll : &c->rpoll;
    bool *armed = write ? &c->wpoll_armed : &c->rpoll_armed;
    int *armed_fd = write ? &c->wpoll_fd : &c->rpoll_fd;
    int fd = PQsocket(c->pg);
    if (fd < 0)
        return;
    if (*armed) {
        if (*armed_fd != fd) {
            /* libpq moved to a new socket (next host, SSL fallback): drop the
             * stale poll; its completion re-drives us. */
            struct io_uring_sqe *sqe = ring_get_sqe(p->ring, &c->rm_op);
            io_uring_prep_poll_remove(sqe, (uint64_t)(uintptr_t)op);
        }
        return;
    }
    struct io_uring_sqe *sqe = ring_get_sqe(p->ring, op);
    io_uring_prep_poll_add(sqe, fd, write ? POLLOUT : POLLIN);
    *armed = true;
    *armed_fd = fd;
}

static void cancel_poll(struct pconn *c, struct ring_op *op, bool armed)
{
    if (!armed)
        return;
    struct io_uring_sqe *sqe = ring_get_sqe(c->pool->ring, &c->rm_op);
    io_uring_prep_poll_remove(sqe, (uint64_t)(uintptr_t)op);
}

static void rm_cb(struct ring_op *op, int res, uint32_t flags)
{
    (void)op;
    (void)res;
    (void)flags;
}

/* Flush libpq's output; arm write readiness while some remains. */
static void flush_out(struct pconn *c)
{
    int rc = PQflush(c->pg);
    if (rc < 0)
        pconn_broken(c, PQerrorMessage(c->pg));
    else if (rc == 1)
        arm_poll(c, true);
}

/* ---- connection life cycle ---- */

static unsigned backoff_ms(struct pconn *c)
{
    struct db_pool *p = c->pool;
    unsigned shift = c->attempts < 10 ? c->attempts : 10;
    unsigned d = BACKOFF_BASE_MS << shift;
    if (d > BACKOFF_CAP_MS)
        d = BACKOFF_CAP_MS;
    /* "equal jitter": half fixed, half random, so pods do not reconnect in lockstep */
    p->rng = p->rng * 1103515245u + 12345u;
    return d / 2 + (p->rng >> 8) % (d / 2 + 1);
}

static void finish_teardown(struct pconn *c)
{
    if (c->pg) {
        PQfinish(c->pg);
        c->pg = NULL;
    }
    c->state = PC_BROKEN;
    ring_timer_arm(c->pool->ring, &c->pool->conn_timers, &c->timer, backoff_ms(c));
}

static void teardown(struct pconn *c)
{
    if (c->state == PC_READY)
        if (--c->pool->ready_count == 0)
            c->pool->recovering = true;
    c->state = PC_CLOSING;
    ring_timer_disarm(&c->timer);
    cancel_poll(c, &c->rpoll, c->rpoll_armed);
    cancel_poll(c, &c->wpoll, c->wpoll_armed);
    if (!c->rpoll_armed && !c->wpoll_armed)
        finish_teardown(c);
}

static struct pending *q_at(struct pconn *c, unsigned i)
{
    return &c->q[(c->q_head + i) % c->q_cap];
}

static void q_pop(struct pconn *c)
{
    c->q_head = (c->q_head + 1) % c->q_cap;
    c->q_count--;
}

/*
 * The connection failed. Requests in flight on it: reads go back to the
 * front of the queue once (another connection may serve them), writes fail
 * with DB_UNAVAILABLE (they may or may not have committed).
 */
static void pconn_broken(struct pconn *c, const char *why)
{
    struct db_pool *p = c->pool;
    if (c->state == PC_CLOSING || c->state == PC_BROKEN)
        return;
    char msg[256];
    snprintf(msg, sizeof(msg), "%s", why && *why ? why : "connection lost");
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        msg[--n] = '\0';
    bool was_up = c->state == PC_READY || c->state == PC_INIT;
    if (!was_up && p->recovering) {
        /* A reconnect failed. Once no other attempt is under way, the server
         * is really away: stop holding requests for it. */
        bool trying = false;
        for (unsigned i = 0; i < p->cfg.size; i++)
            if (&p->conns[i] != c &&
                (p->conns[i].state == PC_RESOLVING || p->conns[i].state == PC_CONNECTING ||
                 p->conns[i].state == PC_INIT))
                trying = true;
        p->recovering = trying;
    }
    if (was_up || c->attempts == 0)
        log_warn("database connection failed", LOG_UINT("conn", c->index), LOG_STR("error", msg),
                 LOG_UINT("in_flight", c->q_count));
    c->attempts++;
    teardown(c);

    /* Detach everything first: callbacks may submit again. */
    struct db_req *fail[64];
    unsigned nfail = 0;
    for (int i = (int)c->q_count - 1; i >= 0; i--) {
        struct pending *e = q_at(c, (unsigned)i);
        struct db_req *req = e->req;
        if (e->held) {
            PQclear(e->held); /* no Sync came: whether it committed is unknown */
            e->held = NULL;
        }
        if (!req)
            continue;
        p->inflight--;
        e->req = NULL;
        if (req->idempotent && req->retries < RETRIES) {
            req->retries++;
            wait_push(p, req, true);
        } else if (nfail < sizeof(fail) / sizeof(fail[0])) {
            fail[nfail++] = req;
        } else {
            wait_push(p, req, true); /* cannot happen with max_depth <= 64 */
        }
    }
    c->q_head = c->q_count = 0;
    c->unsynced = 0;
    for (unsigned i = 0; i < nfail; i++)
        complete(p, fail[i], DB_UNAVAILABLE, NULL);
    pool_dispatch(p);
}

static void start_connect(struct pconn *c)
{
    struct db_pool *p = c->pool;
    /* For a looked-up name: host=NAME,NAME,... hostaddr=A1,A2,... so libpq
     * tries every address in turn, as it would after its own getaddrinfo();
     * each connection starts at a different one to spread the pool. */
    char hosts[DNS_MAX_ADDRS * (DNS_MAX_NAME + 2)] = "";
    char addrs[DNS_MAX_ADDRS * (INET6_ADDRSTRLEN + 1)] = "";
    if (p->dns_host) {
        if (!p->naddrs || ring_clock_ns() >= p->addrs_until_ns) {
            /* Look the name up on the ring; every connection that needs it
             * waits for the same lookup (see resolved()). */
            c->state = PC_RESOLVING;
            if (p->resolver.busy)
                return;
            int rc = resolve_start(&p->resolver, p->dns_host, RESOLVE_DEADLINE_MS);
            if (rc) {
                c->state = PC_CONNECTING;
                pconn_broken(c, rc == -EBUSY ? "the previous DNS lookup is still closing"
                                             : "the database host name cannot be looked up");
            }
            return;
        }
        size_t hl = 0, al = 0;
        for (unsigned k = 0; k < p->naddrs; k++) {
            const struct dns_addr *a = &p->addrs[(c->index + k) % p->naddrs];
            char one[INET6_ADDRSTRLEN];
            if (!inet_ntop(a->family, &a->u, one, sizeof(one)))
                continue;
            hl += (size_t)snprintf(hosts + hl, sizeof(hosts) - hl, "%s%s", hl ? "," : "",
                                   p->dns_host);
            al += (size_t)snprintf(addrs + al, sizeof(addrs) - al, "%s%s", al ? "," : "", one);
        }
    }
    const char *keys[] = {"dbname", "fallback_application_name", addrs[0] ? "host" : NULL,
                          "hostaddr", NULL};
    const char *vals[] = {p->conninfo ? p->conninfo : "", "ringlet", hosts, addrs, NULL};
    c->q_head = c->q_count = 0;
    c->pg = PQconnectStartParams(keys, vals, 1);
    if (!c->pg) {
        c->state = PC_CONNECTING;
        pconn_broken(c, "out of memory");
        return;
    }
    c->state = PC_CONNECTING;
    if (PQstatus(c->pg) == CONNECTION_BAD) {
        pconn_broken(c, PQerrorMessage(c->pg));
        return;
    }
    c->want = PGRES_POLLING_WRITING;
    ring_timer_arm(p->ring, &p->conn_timers, &c->timer, CONNECT_TIMEOUT_MS);
    arm_poll(c, true);
}

/* The pool's lookup of its host ended: connect, or fail, whoever waited. */
static void resolved(struct resolver *r, const char *err, const struct dns_addr *addrs, unsigned n,
                     uint32_t ttl_s)
{
    struct db_pool *p = r->ctx;
    if (err) {
        char msg[256];
        snprintf(msg, sizeof(msg), "cannot resolve the database host %s: %s", p->dns_host, err);
        for (unsigned i = 0; i < p->cfg.size; i++) {
            struct pconn *c = &p->conns[i];
            if (c->state == PC_RESOLVING) {
                c->state = PC_CONNECTING;
                pconn_broken(c, msg);
            }
        }
        return;
    }
    uint32_t ttl = ttl_s < ADDR_TTL_MIN_S   ? ADDR_TTL_MIN_S
                   : ttl_s > ADDR_TTL_MAX_S ? ADDR_TTL_MAX_S
                                            : ttl_s;
    memcpy(p->addrs, addrs, n * sizeof(*addrs));
    p->naddrs = n;
    p->addrs_until_ns = ring_clock_ns() + (uint64_t)ttl * 1000000000ull;
    char first[INET6_ADDRSTRLEN] = "";
    inet_ntop(addrs[0].family, &addrs[0].u, first, sizeof(first));
    log_debug("database host resolved", LOG_STR("host", p->dns_host), LOG_STR("address", first),
              LOG_UINT("addresses", n), LOG_UINT("ttl_s", ttl));
    for (unsigned i = 0; i < p->cfg.size; i++)
        if (p->conns[i].state == PC_RESOLVING)
            start_connect(&p->conns[i]);
}

/*
 * Which host name, if any, libpq would look up with getaddrinfo(): the
 * `host` of the connection string (or PGHOST) when it is a single DNS
 * name and no `hostaddr` (or PGHOSTADDR) is given. NULL otherwise: an IP
 * address, a socket directory, several hosts (libpq then resolves them
 * itself, the documented exception), or a string libpq will reject anyway.
 */
static char *lookup_name(const char *conninfo)
{
    const char *host = NULL, *hostaddr = NULL;
    PQconninfoOption *opts = NULL;
    if (conninfo && *conninfo) {
        char *err = NULL;
        opts = PQconninfoParse(conninfo, &err);
        PQfreemem(err);
        if (!opts)
            return NULL;
        for (PQconninfoOption *o = opts; o->keyword; o++) {
            if (o->val && *o->val && strcmp(o->keyword, "host") == 0)
                host = o->val;
            else if (o->val && *o->val && strcmp(o->keyword, "hostaddr") == 0)
                hostaddr = o->val;
        }
    }
    if (!host)
        host = getenv("PGHOST");
    if (!hostaddr)
        hostaddr = getenv("PGHOSTADDR");
    char *name = NULL;
    unsigned char tmp[sizeof(struct in6_addr)];
    if (host && *host && !(hostaddr && *hostaddr) && host[0] != '/' && host[0] != '@' &&
        !strchr(host, ',') && inet_pton(AF_INET, host, tmp) != 1 &&
        inet_pton(AF_INET6, host, tmp) != 1 && dns_name_valid(host))
        name = strdup(host);
    PQconninfoFree(opts);
    return name;
}

static void notice_cb(void *arg, const PGresult *res)
{
    (void)arg;
    log_debug("database notice", LOG_STR("message", PQresultErrorMessage(res)));
}

/* Connected: pipeline mode, statement_timeout, the prepared statements. */
static void on_connected(struct pconn *c)
{
    struct db_pool *p = c->pool;
    ring_timer_disarm(&c->timer);
    PQsetNoticeReceiver(c->pg, notice_cb, NULL);
    if (PQsetnonblocking(c->pg, 1) || !PQenterPipelineMode(c->pg)) {
        pconn_broken(c, PQerrorMessage(c->pg));
        return;
    }
    c->state = PC_INIT;
    c->q_head = c->q_count = 0;
    c->unsynced = 0;
    int ok = PQsendQueryParams(c->pg, p->statement_timeout_sql, 0, NULL, NULL, NULL, NULL, 0) &&
             PQpipelineSync(c->pg);
    for (int i = 0; ok && i < DB_STMT__COUNT; i++)
        ok = PQsendPrepare(c->pg, stmts[i].name, stmts[i].sql, stmts[i].nparams, NULL) &&
             PQpipelineSync(c->pg);
    if (!ok) {
        pconn_broken(c, PQerrorMessage(c->pg));
        return;
    }
    for (int i = 0; i < INIT_ENTRIES; i++)
        *q_at(c, c->q_count++) = (struct pending){.internal = true, .sync_after = true};
    ring_timer_arm(p->ring, &p->conn_timers, &c->timer, CONNECT_TIMEOUT_MS);
    arm_poll(c, false);
    flush_out(c);
}

static void on_init_done(struct pconn *c)
{
    struct db_pool *p = c->pool;
    ring_timer_disarm(&c->timer);
    c->state = PC_READY;
    p->ready_count++;
    p->recovering = false;
    if (c->attempts)
        log_info("database connection restored", LOG_UINT("conn", c->index),
                 LOG_UINT("attempts", c->attempts));
    else
        log_info("database connection ready", LOG_UINT("conn", c->index));
    c->attempts = 0;
    pool_dispatch(p);
}

static enum db_status classify(const PGresult *res)
{
    switch (PQresultStatus(res)) {
    case PGRES_TUPLES_OK:
    case PGRES_COMMAND_OK:
        return DB_OK;
    default:
        break;
    }
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (state && strcmp(state, "57014") == 0)
        return DB_TIMEOUT; /* query_canceled: statement_timeout */
    if (state && (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0))
        return DB_UNAVAILABLE; /* connection exception, admin shutdown */
    return DB_ERROR;
}

/*
 * An error of a statement that stores the client's name and data, which only
 * those values can cause: a data exception (class 22: 22003 a number jsonb
 * cannot hold, 22P02, 22P05, 22021...) or 54000 (a value over a size limit).
 * Every other parameter of these statements is ours, and checked. Like any
 * statement error it ends the write's own transaction and nothing else (a
 * write has a Sync before and after it), so the connection stays usable.
 */
static bool client_value_error(enum db_stmt stmt, const PGresult *res)
{
    if (stmt != DB_STMT_ITEM_INSERT && stmt != DB_STMT_ITEM_UPDATE)
        return false;
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    return state && (strncmp(state, "22", 2) == 0 || strcmp(state, "54000") == 0);
}

static void deliver(struct pconn *c, struct pending *e, const PGresult *res)
{
    struct db_pool *p = c->pool;
    enum db_status st = classify(res);
    if (e->internal) {
        if (st != DB_OK) {
            const char *msg = PQresultErrorMessage(res);
            log_error("database set-up failed (has `ringlet migrate` run?)",
                      LOG_UINT("conn", c->index), LOG_STR("error", msg));
        }
        return;
    }
    struct db_req *req = e->req;
    if (!req)
        return; /* abandoned: the client got its answer already */
    e->req = NULL;
    p->inflight--;
    if ((PQresultStatus(res) == PGRES_PIPELINE_ABORTED || st == DB_UNAVAILABLE) &&
        req->retries < RETRIES) {
        /* It did not run (see RETRIES): run it elsewhere. */
        req->retries++;
        wait_push(p, req, true);
        return;
    }
    if (st == DB_ERROR && client_value_error(req->stmt, res)) {
        st = DB_INVALID; /* the client's fault: a 400, never retried */
        log_debug("statement refused a client value", LOG_STR("statement", stmts[req->stmt].name),
                  LOG_STR("sqlstate", PQresultErrorField(res, PG_DIAG_SQLSTATE)));
    }
    if (st == DB_ERROR)
        log_warn("statement failed", LOG_STR("statement", stmts[req->stmt].name),
                 LOG_STR("sqlstate", PQresultErrorField(res, PG_DIAG_SQLSTATE)),
                 LOG_STR("error", PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)));
    complete(p, req, st, res);
}

/* Read and match every result libpq can give without blocking. */
static void read_results(struct pconn *c)
{
    struct db_pool *p = c->pool;
    if (!PQconsumeInput(c->pg)) {
        pconn_broken(c, PQerrorMessage(c->pg));
        return;
    }
    bool progress = false;
    bool init_failed = false;
    while (c->q_count && !PQisBusy(c->pg)) {
        struct pending *e = q_at(c, 0);
        PGresult *res = PQgetResult(c->pg);
        if (e->phase == 0) {
            if (!res)
                break; /* cannot happen when not busy; never spin */
            if (PQresultStatus(res) == PGRES_PIPELINE_SYNC) {
                /* no result before the sync: treat as a failure of the entry */
                PQclear(res);
                e->phase = 2;
                continue;
            }
            if (e->internal && classify(res) != DB_OK)
                init_failed = true;
            if (e->req && !e->req->idempotent && classify(res) == DB_OK) {
                /* A write's implicit transaction commits at its Sync: answer
                 * only when the Sync confirms it (a commit can still fail). */
                e->held = res;
            } else {
                deliver(c, e, res);
                PQclear(res);
            }
            e->phase = 1;
        } else if (e->phase == 1) {
            if (res) {
                PQclear(res); /* a second result for one statement: ignore */
                continue;
            }
            if (e->sync_after) {
                e->phase = 2;
            } else {
                q_pop(c);
                progress = true;
            }
        } else {
            if (!res)
                break;
            ExecStatusType st = PQresultStatus(res);
            if (st != PGRES_PIPELINE_SYNC) {
                if (e->held) {
                    /* the commit failed: that error is the answer */
                    PQclear(e->held);
                    e->held = res;
                } else {
                    PQclear(res);
                }
                continue;
            }
            PQclear(res);
            if (e->held) {
                deliver(c, e, e->held);
                PQclear(e->held);
                e->held = NULL;
            }
            if (e->req) {
                /* the sync came without a result: the server lost it */
                struct db_req *req = e->req;
                e->req = NULL;
                p->inflight--;
                complete(p, req, DB_ERROR, NULL);
            }
            q_pop(c);
            progress = true;
        }
        if (c->state != PC_INIT && c->state != PC_READY)
            return; /* a callback or error tore the connection down */
    }
    if (init_failed) {
        pconn_broken(c, "set-up statements failed");
        return;
    }
    if (c->state == PC_INIT && c->q_count == 0) {
        on_init_done(c);
        return;
    }
    if (c->state == PC_READY) {
        if (c->q_count == 0)
            ring_timer_disarm(&c->timer);
        else if (progress)
            ring_timer_arm(p->ring, &p->conn_timers, &c->timer,
                           p->cfg.request_timeout_ms + WATCHDOG_GRACE_MS);
        if (progress)
            pool_dispatch(p);
    }
}

static void pconn_drive(struct pconn *c)
{
    switch (c->state) {
    case PC_CONNECTING:
        for (;;) {
            c->want = PQconnectPoll(c->pg);
            if (c->want == PGRES_POLLING_OK) {
                on_connected(c);
                return;
            }
            if (c->want == PGRES_POLLING_FAILED) {
                pconn_broken(c, PQerrorMessage(c->pg));
                return;
            }
            if (c->want == PGRES_POLLING_READING) {
                arm_poll(c, false);
                return;
            }
            if (c->want == PGRES_POLLING_WRITING) {
                arm_poll(c, true);
                return;
            }
            /* PGRES_POLLING_ACTIVE (old libpq): call again */
        }
    case PC_INIT:
    case PC_READY:
        read_results(c);
        if (c->state == PC_INIT || c->state == PC_READY) {
            arm_poll(c, false);
            flush_out(c);
        }
        return;
    default:
        return;
    }
}

static void poll_done(struct pconn *c, bool write, int res)
{
    if (write)
        c->wpoll_armed = false;
    else
        c->rpoll_armed = false;
    if (c->state == PC_CLOSING) {
        if (!c->rpoll_armed && !c->wpoll_armed)
            finish_teardown(c);
        return;
    }
    if (res == -ECANCELED) {
        /* a stale poll on a socket libpq replaced: re-arm on the current one */
        if (c->state == PC_CONNECTING)
            arm_poll(c, c->want == PGRES_POLLING_WRITING);
        else if (c->state == PC_INIT || c->state == PC_READY)
            arm_poll(c, false);
        return;
    }
    if (c->state == PC_CONNECTING) {
        /* only the readiness PQconnectPoll asked for advances it */
        if ((c->want == PGRES_POLLING_WRITING) == write)
            pconn_drive(c);
        return;
    }
    if (write && (c->state == PC_INIT || c->state == PC_READY)) {
        flush_out(c);
        if (c->state == PC_INIT || c->state == PC_READY)
            read_results(c); /* flushing may have read input too */
        return;
    }
    pconn_drive(c);
}

static void rpoll_cb(struct ring_op *op, int res, uint32_t flags)
{
    (void)flags;
    poll_done(ring_container_of(op, struct pconn, rpoll), false, res);
}

static void wpoll_cb(struct ring_op *op, int res, uint32_t flags)
{
    (void)flags;
    poll_done(ring_container_of(op, struct pconn, wpoll), true, res);
}

static void conn_timer_cb(struct ring_timer *t)
{
    struct pconn *c = ring_container_of(t, struct pconn, timer);
    switch (c->state) {
    case PC_BROKEN:
        start_connect(c);
        break;
    case PC_CONNECTING:
    case PC_INIT:
        pconn_broken(c, "timed out connecting to the database");
        break;
    case PC_READY:
        /* no result for longer than statement_timeout allows: the server or
         * the network is gone without closing the socket */
        pconn_broken(c, "no answer from the database within the deadline");
        break;
    default:
        break;
    }
}

/* ---- dispatch ---- */

static struct pconn *pick(struct db_pool *p)
{
    struct pconn *best = NULL;
    for (unsigned i = 0; i < p->cfg.size; i++) {
        struct pconn *c = &p->conns[i];
        if (c->state != PC_READY || c->reset_soon || c->q_count >= p->cfg.max_depth)
            continue;
        if (!best || c->q_count < best->q_count)
            best = c;
    }
    return best;
}

static void schedule_reset(struct pconn *c)
{
    c->reset_soon = true; /* handled from the deferred timer, not from submit() */
    ring_timer_arm(c->pool->ring, &c->pool->conn_timers, &c->pool->defer, 0);
}

/* End the open group of queries with a Sync (which also flushes). */
static bool close_group(struct pconn *c)
{
    if (!c->unsynced)
        return true;
    if (!PQpipelineSync(c->pg)) {
        schedule_reset(c);
        return false;
    }
    q_at(c, c->q_count - 1)->sync_after = true;
    c->unsynced = 0;
    return true;
}

/*
 * Send `req` on `c`. False when it was not sent (the caller keeps it); once
 * it is in the connection's queue, a later failure is the connection's to
 * handle (see pconn_broken).
 */
static bool send_on(struct pconn *c, struct db_req *req)
{
    struct db_pool *p = c->pool;
    bool write = !req->idempotent;
    if (write && !close_group(c))
        return false;
    if (!PQsendQueryPrepared(c->pg, stmts[req->stmt].name, req->nparams, req->params, req->lengths,
                             NULL, 0)) {
        schedule_reset(c);
        return false;
    }
    struct pending *e = q_at(c, c->q_count++);
    *e = (struct pending){.req = req, .stmt = (uint8_t)req->stmt};
    req->slot = e;
    p->inflight++;
    c->unsynced++;
    if (c->q_count == 1)
        ring_timer_arm(p->ring, &p->conn_timers, &c->timer,
                       p->cfg.request_timeout_ms + WATCHDOG_GRACE_MS);
    if (write || c->unsynced >= GROUP_MAX)
        close_group(c);
    else
        p->groups_open = true; /* closed by pool_flush before the loop waits */
    return true;
}

/* Before the loop sleeps: close every open group and push it out. */
static void pool_flush(void *ctx)
{
    struct db_pool *p = ctx;
    if (!p->groups_open)
        return;
    p->groups_open = false;
    for (unsigned i = 0; i < p->cfg.size; i++) {
        struct pconn *c = &p->conns[i];
        if (c->state == PC_READY && !c->reset_soon && c->unsynced && close_group(c))
            flush_out(c);
    }
}

static void pool_dispatch(struct db_pool *p)
{
    bool sent_any = false;
    while (p->wait_head) {
        struct pconn *c = pick(p);
        if (!c)
            break;
        struct db_req *req = p->wait_head;
        wait_remove(p, req);
        if (!send_on(c, req)) {
            wait_push(p, req, true);
            continue;
        }
        sent_any = true;
    }
    if (sent_any) /* a write's Sync flushed; push out what remains of it */
        for (unsigned i = 0; i < p->cfg.size; i++)
            if (p->conns[i].state == PC_READY && !p->conns[i].reset_soon && !p->conns[i].unsynced)
                flush_out(&p->conns[i]);
    /* With no connection left to wait for, waiting is pointless. */
    if (p->ready_count == 0 && !p->recovering) {
        while (p->wait_head) {
            struct db_req *req = p->wait_head;
            wait_remove(p, req);
            complete(p, req, DB_UNAVAILABLE, NULL);
        }
    }
}

static void defer_cb(struct ring_timer *t)
{
    struct db_pool *p = ring_container_of(t, struct db_pool, defer);
    for (unsigned i = 0; i < p->cfg.size; i++) {
        struct pconn *c = &p->conns[i];
        if (c->reset_soon) {
            c->reset_soon = false;
            pconn_broken(c, c->pg ? PQerrorMessage(c->pg) : "send failed");
        }
    }
    pool_dispatch(p);
}

static void deadline_cb(struct ring_timer *t)
{
    struct db_req *req = ring_container_of(t, struct db_req, deadline);
    struct db_pool *p = req->impl;
    if (req->slot) {
        struct pending *e = req->slot;
        e->req = NULL; /* the result, when it comes, is dropped */
        p->inflight--;
    } else if (wait_contains(p, req)) {
        wait_remove(p, req);
    }
    complete(p, req, DB_TIMEOUT, NULL);
}

/* ---- the db interface ---- */

static int pool_submit(void *self, struct db_req *req)
{
    struct db_pool *p = self;
    if (p->ready_count == 0 && !p->recovering)
        return -ENOTCONN;
    struct pconn *c = p->wait_head ? NULL : pick(p);
    if (!c && p->wait_len >= p->cfg.max_queued)
        return -EAGAIN;
    req->impl = p;
    req->retries = 0;
    req->q_next = req->q_prev = NULL;
    req->slot = NULL;
    req->deadline.cb = deadline_cb;
    ring_timer_arm(p->ring, &p->deadlines, &req->deadline, p->cfg.request_timeout_ms);
    if (c && send_on(c, req))
        return 0; /* sent now; pushed out before the loop sleeps */
    wait_push(p, req, false);
    return 0;
}

static void pool_cancel(void *self, struct db_req *req)
{
    struct db_pool *p = self;
    ring_timer_disarm(&req->deadline);
    if (req->slot) {
        struct pending *e = req->slot;
        e->req = NULL;
        req->slot = NULL;
        p->inflight--;
    } else if (wait_contains(p, req)) {
        wait_remove(p, req);
    }
}

static bool pool_ready(const void *self)
{
    const struct db_pool *p = self;
    return p->ready_count > 0;
}

static void pool_counts(const void *self, unsigned out[M_POOL__COUNT])
{
    const struct db_pool *p = self;
    memset(out, 0, sizeof(unsigned) * M_POOL__COUNT);
    for (unsigned i = 0; i < p->cfg.size; i++) {
        const struct pconn *c = &p->conns[i];
        switch (c->state) {
        case PC_READY:
            out[c->q_count ? M_POOL_BUSY : M_POOL_IDLE]++;
            break;
        case PC_RESOLVING:
        case PC_CONNECTING:
        case PC_INIT:
            out[M_POOL_CONNECTING]++;
            break;
        default:
            out[M_POOL_BROKEN]++;
            break;
        }
    }
}

static const struct db_ops pool_ops = {
    .submit = pool_submit,
    .cancel = pool_cancel,
    .ready = pool_ready,
    .counts = pool_counts,
};

struct db_pool *db_pool_create(struct ring *r, const struct db_pool_config *cfg)
{
    struct db_pool *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->ring = r;
    p->cfg = *cfg;
    if (p->cfg.max_depth == 0 || p->cfg.max_depth > 64)
        p->cfg.max_depth = 64;
    p->conninfo = cfg->conninfo ? strdup(cfg->conninfo) : NULL;
    p->dns_host = lookup_name(cfg->conninfo);
    resolver_init(&p->resolver, r, resolved, p);
    p->conns = calloc(cfg->size, sizeof(*p->conns));
    if (!p->conns || (cfg->conninfo && !p->conninfo)) {
        free(p->dns_host);
        free(p->conninfo);
        free(p->conns);
        free(p);
        return NULL;
    }
    p->db.ops = &pool_ops;
    p->db.self = p;
    p->rng = (uint32_t)ring_clock_ns();
    snprintf(p->statement_timeout_sql, sizeof(p->statement_timeout_sql),
             "SET statement_timeout = %u", cfg->request_timeout_ms);
    ring_timer_list_add(r, &p->deadlines);
    ring_set_before_wait(r, pool_flush, p);
    ring_timer_list_add(r, &p->conn_timers);
    p->defer.cb = defer_cb;
    for (unsigned i = 0; i < cfg->size; i++) {
        struct pconn *c = &p->conns[i];
        c->pool = p;
        c->index = i;
        c->rpoll.cb = rpoll_cb;
        c->wpoll.cb = wpoll_cb;
        c->rm_op.cb = rm_cb;
        c->timer.cb = conn_timer_cb;
        c->q_cap = p->cfg.max_depth + INIT_ENTRIES;
        c->q = calloc(c->q_cap, sizeof(*c->q));
        if (!c->q) {
            db_pool_destroy(p);
            return NULL;
        }
        c->state = PC_BROKEN;
    }
    for (unsigned i = 0; i < cfg->size; i++)
        start_connect(&p->conns[i]);
    return p;
}

void db_pool_destroy(struct db_pool *p)
{
    if (!p)
        return;
    for (unsigned i = 0; i < p->cfg.size; i++) {
        struct pconn *c = &p->conns[i];
        ring_timer_disarm(&c->timer);
        for (unsigned k = 0; c->q && k < c->q_count; k++)
            PQclear(q_at(c, k)->held);
        if (c->pg)
            PQfinish(c->pg);
        free(c->q);
    }
    while (p->wait_head) {
        struct db_req *req = p->wait_head;
        wait_remove(p, req);
        ring_timer_disarm(&req->deadline);
    }
    ring_timer_disarm(&p->defer);
    resolve_cancel(&p->resolver);
    if (p->resolver.fd >= 0)
        close(p->resolver.fd); /* exit path: the ring is not run again */
    free(p->conns);
    free(p->dns_host);
    free(p->conninfo);
    free(p);
}

struct db *db_pool_db(struct db_pool *p)
{
    return &p->db;
}

unsigned db_pool_outstanding(const struct db_pool *p)
{
    return p->wait_len + p->inflight;
}
