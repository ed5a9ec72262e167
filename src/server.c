/*
 * server: `ringlet serve`: listener, accept loop, signals, shutdown.
 *
 * Shutdown (SIGTERM or SIGINT): /readyz turns 503 at once; the listener keeps
 * accepting for RINGLET_DRAIN_DELAY_MS so load balancers can take the
 * endpoint out; then it stops accepting, idle keep-alive connections are
 * closed, busy ones finish their request and get `Connection: close`; the
 * process exits 0 when the last connection is gone, or 1 when
 * RINGLET_SHUTDOWN_GRACE_MS (counted from the signal) runs out first. A
 * second signal exits at once with status 1.
 */
#include "ringlet/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ringlet/conn.h"
#include "ringlet/db_pool.h"
#include "ringlet/log.h"
#include "ringlet/metrics.h"

#define RING_ENTRIES      1024
#define ACCEPT_RETRY_MS   100 /* pause after EMFILE/ENFILE instead of spinning */
#define DB_QUEUE_PER_CONN 64
#define BODY_BUDGET_MIN   (64u << 20) /* request bodies buffered at once, all clients */

/* Connections over the limit still answered with a 503 instead of closed. */
#define MAX_REFUSING 64

/* While draining, how often connections still receiving a request are
 * checked for a client that is gone without the ring saying so. */
#define DRAIN_PROBE_MS 250

static void post_accept(struct server *srv);

static int open_listener(const struct cfg *cfg)
{
    int fd = socket(cfg->listen_addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (cfg->reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one))) {
        int e = errno;
        close(fd);
        return -e;
    }
    if (bind(fd, (const struct sockaddr *)&cfg->listen_addr, cfg->listen_addrlen) ||
        listen(fd, 4096)) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

/* ---- accept ---- */

static void ignore_cb(struct ring_op *op, int res, uint32_t flags)
{
    (void)op;
    (void)res;
    (void)flags;
}

/* Over RINGLET_MAX_CONNECTIONS: a 503 and a graceful close, for up to
 * MAX_REFUSING at a time; beyond even that, a plain close. */
static void refuse_client(struct server *srv, int fd)
{
    if (srv->nrefusing < MAX_REFUSING) {
        conn_create(srv, fd, true);
        return;
    }
    struct io_uring_sqe *sqe = ring_get_sqe(&srv->ring, &srv->close_op);
    io_uring_prep_close(sqe, fd);
}

static void accept_retry_cb(struct ring_timer *t)
{
    struct server *srv = ring_container_of(t, struct server, accept_retry_timer);
    if (srv->accepting && !srv->accept_armed)
        post_accept(srv);
}

static void accept_cb(struct ring_op *op, int res, uint32_t flags)
{
    struct server *srv = ring_container_of(op, struct server, accept_op);
    if (!(flags & IORING_CQE_F_MORE))
        srv->accept_armed = false;
    if (res >= 0) {
        if (!srv->accepting) {
            close(res);
        } else if (srv->nconns - srv->nrefusing >= srv->cfg->max_connections) {
            refuse_client(srv, res);
        } else {
            int one = 1;
            setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            conn_create(srv, res, false);
        }
    } else if (res == -EMFILE || res == -ENFILE || res == -ENOMEM || res == -ENOBUFS) {
        static uint64_t last_log;
        if (srv->ring.now_ns - last_log > 10000000000ull) {
            log_warn("accept failed; pausing accept", LOG_STR("error", strerror(-res)),
                     LOG_UINT("connections", srv->nconns));
            last_log = srv->ring.now_ns;
        }
        if (srv->accept_armed) {
            /* multishot still armed: cancel it so we really pause */
            struct io_uring_sqe *sqe = ring_get_sqe(&srv->ring, &srv->accept_cancel_op);
            io_uring_prep_cancel(sqe, &srv->accept_op, 0);
        }
        ring_timer_arm(&srv->ring, &srv->misc_timers, &srv->accept_retry_timer, ACCEPT_RETRY_MS);
        return;
    } else if (res == -EINVAL && srv->ring.feat.multishot_accept) {
        srv->ring.feat.multishot_accept = false; /* kernel older than 5.19 */
    } else if (res == -ECANCELED) {
        return; /* paused or stopping; whoever cancelled re-arms if needed */
    }
    if (srv->accepting && !srv->accept_armed && !ring_timer_armed(&srv->accept_retry_timer))
        post_accept(srv);
}

static void post_accept(struct server *srv)
{
    struct io_uring_sqe *sqe = ring_get_sqe(&srv->ring, &srv->accept_op);
    if (srv->ring.feat.multishot_accept)
        io_uring_prep_multishot_accept(sqe, srv->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    else
        io_uring_prep_accept(sqe, srv->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    srv->accept_armed = true;
}

/* Stop accepting and close the listener. Connections already queued in the
 * backlog are accepted first: with SO_REUSEPORT, closing a listener resets
 * whatever sits in its queue, which would fail requests during a handover. */
static void stop_listening(struct server *srv)
{
    if (!srv->accepting)
        return;
    srv->accepting = false;
    ring_timer_disarm(&srv->accept_retry_timer);
    if (srv->accept_armed) {
        struct io_uring_sqe *sqe = ring_get_sqe(&srv->ring, &srv->accept_cancel_op);
        io_uring_prep_cancel(sqe, &srv->accept_op, 0);
    }
    int fl = fcntl(srv->listen_fd, F_GETFL);
    fcntl(srv->listen_fd, F_SETFL, fl | O_NONBLOCK);
    for (;;) {
        int fd = accept4(srv->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            break;
        if (srv->nconns - srv->nrefusing >= srv->cfg->max_connections) {
            refuse_client(srv, fd);
            continue;
        }
        struct conn *c = conn_create(srv, fd, false);
        if (c)
            conn_drain(c);
    }
    /* shutdown() unhashes the socket from the SO_REUSEPORT group now; a
     * plain close() would leave it listening until the kernel tears down
     * the ring's reference, possibly after exit, and connections routed to
     * it meanwhile would be reset. */
    shutdown(srv->listen_fd, SHUT_RDWR);
    close(srv->listen_fd);
    srv->listen_fd = -1;
}

/* ---- shutdown ---- */

static void maybe_exit(struct server *srv)
{
    if (srv->closing_listener && srv->nconns == 0)
        ring_stop(&srv->ring);
}

void server__conn_gone(struct server *srv, struct conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->nconns--;
    if (c->refusing)
        srv->nrefusing--;
    maybe_exit(srv);
}

/*
 * While draining, a connection that is still receiving a request holds up
 * the exit. The ring reports a client's EOF or reset, except in one race:
 * Linux 6.18's multishot receive can miss a reset that arrives while its
 * first completion is posted (reproduced by tests/kernel/mshot_rst_race.c;
 * docs/kernels.md), so the connection would wait for its header timeout and
 * the process exit 1 at the grace limit. Ask those sockets directly, a few
 * times a second and only while draining: nothing runs at idle.
 */
static void probe_cb(struct ring_timer *t)
{
    struct server *srv = ring_container_of(t, struct server, probe_timer);
    bool receiving = false;
    for (struct conn *c = srv->conns, *next; c; c = next) {
        next = c->next;
        if (c->http.phase != HS_HEAD && c->http.phase != HS_BODY)
            continue;
        if (!conn_reap_if_gone(c))
            receiving = true;
    }
    if (receiving)
        ring_timer_arm(&srv->ring, &srv->misc_timers, &srv->probe_timer, DRAIN_PROBE_MS);
}

static void drain_cb(struct ring_timer *t)
{
    struct server *srv = ring_container_of(t, struct server, drain_timer);
    log_info("drain delay over; closing the listener", LOG_UINT("connections", srv->nconns));
    srv->closing_listener = true;
    stop_listening(srv);
    for (struct conn *c = srv->conns, *next; c; c = next) {
        next = c->next;
        conn_drain(c);
    }
    probe_cb(&srv->probe_timer);
    maybe_exit(srv);
}

static void grace_cb(struct ring_timer *t)
{
    struct server *srv = ring_container_of(t, struct server, grace_timer);
    /* Say what is being cut, by phase, so an operator (or a test) can tell
     * slow clients from stuck requests. */
    unsigned by_phase[HS_CLOSED + 1] = {0}, closing = 0;
    for (struct conn *c = srv->conns; c; c = c->next) {
        by_phase[c->http.phase]++;
        closing += c->closing || c->lingering;
    }
    log_error("shutdown grace time over; cutting connections", LOG_UINT("connections", srv->nconns),
              LOG_UINT("requests_in_progress", srv->nconns - by_phase[HS_IDLE] - closing),
              LOG_UINT("receiving", by_phase[HS_HEAD] + by_phase[HS_BODY]),
              LOG_UINT("waiting_for_database", by_phase[HS_HANDLING]),
              LOG_UINT("sending", by_phase[HS_WRITING]), LOG_UINT("idle", by_phase[HS_IDLE]),
              LOG_UINT("closing", closing), LOG_UINT("grace_ms", srv->cfg->shutdown_grace_ms));
    srv->exit_code = 1;
    ring_stop(&srv->ring);
}

static void post_signal_read(struct server *srv)
{
    struct io_uring_sqe *sqe = ring_get_sqe(&srv->ring, &srv->sig_op);
    io_uring_prep_read(sqe, srv->sig_fd, &srv->siginfo, sizeof(srv->siginfo), 0);
}

static void signal_cb(struct ring_op *op, int res, uint32_t flags)
{
    (void)flags;
    struct server *srv = ring_container_of(op, struct server, sig_op);
    if (res != (int)sizeof(srv->siginfo)) {
        post_signal_read(srv);
        return;
    }
    const char *name = srv->siginfo.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM";
    long long from = (long long)srv->siginfo.ssi_pid; /* who sent it, for the log */
    if (srv->draining) {
        log_warn("second signal; exiting now", LOG_STR("signal", name), LOG_INT("from_pid", from),
                 LOG_UINT("connections", srv->nconns));
        srv->exit_code = 1;
        ring_stop(&srv->ring);
        return;
    }
    srv->draining = true;
    srv->env.draining = true;
    /* From now on every response says Connection: close, so keep-alive
     * clients move to other endpoints (or, with SO_REUSEPORT, to the new
     * process) while we still accept. */
    for (struct conn *c = srv->conns; c; c = c->next)
        http_session_drain(&c->http);
    log_info("shutting down: readiness off, draining", LOG_STR("signal", name),
             LOG_INT("from_pid", from), LOG_UINT("drain_delay_ms", srv->cfg->drain_delay_ms),
             LOG_UINT("grace_ms", srv->cfg->shutdown_grace_ms),
             LOG_UINT("connections", srv->nconns));
    ring_timer_arm(&srv->ring, &srv->misc_timers, &srv->grace_timer, srv->cfg->shutdown_grace_ms);
    if (srv->cfg->drain_delay_ms < srv->cfg->shutdown_grace_ms)
        ring_timer_arm(&srv->ring, &srv->misc_timers, &srv->drain_timer, srv->cfg->drain_delay_ms);
    post_signal_read(srv);
}

/* ---- metrics sampling ---- */

static void snapshot(void *ctx, struct metrics_snapshot *snap)
{
    struct server *srv = ctx;
    srv->env.db->ops->counts(srv->env.db->self, snap->pool);
    snap->io_uring_features = srv->ring.feat.summary;
    snap->client_connections = srv->nconns;
}

/* ---- set-up ---- */

/* Room for every client plus the pool and a margin, if the hard limit allows. */
static void raise_fd_limit(const struct cfg *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl))
        return;
    rlim_t want = (rlim_t)cfg->max_connections + cfg->db_connections + 64;
    if (rl.rlim_cur >= want)
        return;
    rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < want)
        log_warn("open file limit is below RINGLET_MAX_CONNECTIONS; accept will pause at the limit",
                 LOG_UINT("nofile", rl.rlim_cur),
                 LOG_UINT("max_connections", cfg->max_connections));
}

static int setup_signals(struct server *srv)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    if (sigprocmask(SIG_BLOCK, &set, NULL))
        return -errno;
    signal(SIGPIPE, SIG_IGN);
    srv->sig_fd = signalfd(-1, &set, SFD_CLOEXEC);
    return srv->sig_fd < 0 ? -errno : 0;
}

int server_run(const struct cfg *cfg)
{
    static struct server srv_storage; /* one per process; static keeps it off the stack */
    struct server *srv = &srv_storage;
    memset(srv, 0, sizeof(*srv));
    srv->cfg = cfg;
    srv->listen_fd = -1;
    srv->sig_fd = -1;

    char err[512];
    int rc = ring_init(&srv->ring, RING_ENTRIES, cfg->io_uring, err, sizeof(err));
    if (rc) {
        log_error(err);
        return 1;
    }
    srv->multishot_recv = srv->ring.feat.multishot_recv;
    srv->accept_op.cb = accept_cb;
    srv->accept_cancel_op.cb = ignore_cb;
    srv->close_op.cb = ignore_cb;
    srv->sig_op.cb = signal_cb;
    srv->drain_timer.cb = drain_cb;
    srv->grace_timer.cb = grace_cb;
    srv->probe_timer.cb = probe_cb;
    srv->accept_retry_timer.cb = accept_retry_cb;
    ring_timer_list_add(&srv->ring, &srv->header_timers);
    ring_timer_list_add(&srv->ring, &srv->idle_timers);
    ring_timer_list_add(&srv->ring, &srv->misc_timers);

    raise_fd_limit(cfg);
    rc = setup_signals(srv);
    if (rc) {
        log_error("signal set-up failed", LOG_STR("error", strerror(-rc)));
        ring_fini(&srv->ring);
        return 1;
    }
    srv->listen_fd = open_listener(cfg);
    if (srv->listen_fd < 0) {
        log_error("cannot listen", LOG_STR("listen", cfg->listen),
                  LOG_STR("error", strerror(-srv->listen_fd)));
        close(srv->sig_fd);
        ring_fini(&srv->ring);
        return 1;
    }

    struct db_pool_config pc = {
        .conninfo = cfg->database_url,
        .size = cfg->db_connections,
        .request_timeout_ms = cfg->request_timeout_ms,
        .max_queued = cfg->max_queued ? cfg->max_queued : DB_QUEUE_PER_CONN * cfg->db_connections,
        .max_depth = 64,
    };
    srv->pool = db_pool_create(&srv->ring, &pc);
    if (!srv->pool) {
        log_error("out of memory creating the database pool");
        close(srv->listen_fd);
        close(srv->sig_fd);
        ring_fini(&srv->ring);
        return 1;
    }
    srv->env.max_header_bytes = cfg->max_header_bytes;
    srv->env.max_body_bytes = cfg->max_body_bytes;
    srv->env.body_budget =
        BODY_BUDGET_MIN > 4 * cfg->max_body_bytes ? BODY_BUDGET_MIN : 4 * cfg->max_body_bytes;
    srv->env.db = db_pool_db(srv->pool);
    srv->env.snapshot = snapshot;
    srv->env.snapshot_ctx = srv;
    http_env_init(&srv->env);

    srv->accepting = true;
    post_accept(srv);
    post_signal_read(srv);
    log_info("listening", LOG_STR("listen", cfg->listen),
             LOG_STR("io_uring", srv->ring.feat.summary), LOG_INT("pid", getpid()));

    rc = ring_run(&srv->ring);
    if (rc) {
        log_error("event loop failed", LOG_STR("error", strerror(-rc)));
        srv->exit_code = 1;
    }
    if (srv->exit_code == 0)
        log_info("shutdown complete");

    /* Exit path: the kernel reclaims sockets; free what sanitizers track. */
    for (struct conn *c = srv->conns, *next; c; c = next) {
        next = c->next;
        http_session_fini(&c->http);
        if (c->fd >= 0)
            close(c->fd);
        free(c->rbuf);
        free(c);
    }
    db_pool_destroy(srv->pool);
    if (srv->listen_fd >= 0)
        close(srv->listen_fd);
    close(srv->sig_fd);
    ring_fini(&srv->ring);
    return srv->exit_code;
}
