/*
 * conn: one client socket driven by the ring (see include/ringlet/conn.h).
 */
#include "ringlet/conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ringlet/log.h"
#include "ringlet/server.h"

#define LINGER_MS     2000 /* how long a closing socket waits for the client's FIN */
#define DRAIN_IDLE_MS 1000 /* when draining, how long an idle connection may still send */

static void recv_cb(struct ring_op *op, int res, uint32_t flags);
static void send_cb(struct ring_op *op, int res, uint32_t flags);
static void close_cb(struct ring_op *op, int res, uint32_t flags);
static void cancel_cb(struct ring_op *op, int res, uint32_t flags);
static void timer_cb(struct ring_timer *t);

static void session_update(struct http_session *s)
{
    conn_update(s->owner);
}

static const struct http_hooks hooks = {.update = session_update};

struct conn *conn_create(struct server *srv, int fd, bool refuse)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return NULL;
    }
    c->srv = srv;
    c->fd = fd;
    c->recv_op.cb = recv_cb;
    c->send_op.cb = send_cb;
    c->close_op.cb = close_cb;
    c->cancel_op.cb = cancel_cb;
    c->timer.cb = timer_cb;
    http_session_init(&c->http, &srv->env, &hooks, c);
    /* Until its first byte, a new connection gets the header timeout. */
    c->timer_phase = HS_IDLE;
    ring_timer_arm(&srv->ring, &srv->header_timers, &c->timer, srv->cfg->header_timeout_ms);
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->nconns++;
    if (srv->draining)
        http_session_drain(&c->http); /* one request, then Connection: close */
    if (refuse) {
        c->refusing = true;
        srv->nrefusing++;
        http_session_refuse(&c->http, 503, "too many client connections", 1);
    }
    conn_update(c);
    return c;
}

static void post_recv(struct conn *c)
{
    struct server *srv = c->srv;
    if (!srv->multishot_recv && !c->rbuf) {
        c->rbuf = malloc(RING_BUF_SIZE); /* kept for the connection's life */
        if (!c->rbuf) {
            conn_close(c);
            return;
        }
    }
    struct io_uring_sqe *sqe = ring_get_sqe(&srv->ring, &c->recv_op);
    if (srv->multishot_recv) {
        io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = RING_BUF_GROUP;
    } else {
        io_uring_prep_recv(sqe, c->fd, c->rbuf, RING_BUF_SIZE, 0);
    }
    c->recv_armed = true;
    c->ops++;
}

static void post_send(struct conn *c, const char *p, size_t n)
{
    struct io_uring_sqe *sqe = ring_get_sqe(&c->srv->ring, &c->send_op);
    io_uring_prep_send(sqe, c->fd, p, n, MSG_NOSIGNAL);
    c->send_armed = true;
    c->ops++;
}

static void arm_timer(struct conn *c)
{
    struct server *srv = c->srv;
    enum http_phase ph = c->http.phase;
    if (ph == c->timer_phase)
        return;
    c->timer_phase = ph;
    switch (ph) {
    case HS_IDLE:
        ring_timer_arm(&srv->ring, c->http.drain ? &srv->misc_timers : &srv->idle_timers, &c->timer,
                       c->http.drain && srv->cfg->idle_timeout_ms > DRAIN_IDLE_MS
                           ? DRAIN_IDLE_MS
                           : srv->cfg->idle_timeout_ms);
        break;
    case HS_HEAD:
    case HS_BODY:
        ring_timer_arm(&srv->ring, &srv->header_timers, &c->timer, srv->cfg->header_timeout_ms);
        break;
    case HS_WRITING:
        /* a client that stops reading its response is dropped after this */
        ring_timer_arm(&srv->ring, &srv->idle_timers, &c->timer, srv->cfg->idle_timeout_ms);
        break;
    case HS_HANDLING: /* the database deadline bounds this phase */
    case HS_CLOSED:
        ring_timer_disarm(&c->timer);
        break;
    }
}

void conn_update(struct conn *c)
{
    if (c->closing)
        return;
    if (c->lingering) {
        if (!c->recv_armed)
            post_recv(c);
        return;
    }
    const char *p;
    size_t n = http_session_output(&c->http, &p);
    if (n && !c->send_armed)
        post_send(c, p, n);
    if (http_session_done(&c->http)) {
        if (c->send_armed)
            return;
        /* Half-close and wait briefly for the client's FIN, so a response
         * followed by close is not destroyed by a reset while the client
         * is still sending (RFC 9112 9.6). */
        shutdown(c->fd, SHUT_WR);
        c->lingering = true;
        ring_timer_arm(&c->srv->ring, &c->srv->idle_timers, &c->timer, LINGER_MS);
        c->timer_phase = HS_CLOSED;
        if (!c->recv_armed)
            post_recv(c);
        return;
    }
    if (!c->recv_armed)
        post_recv(c);
    arm_timer(c);
}

static void free_conn(struct conn *c)
{
    server__conn_gone(c->srv, c);
    http_session_fini(&c->http);
    free(c->rbuf);
    free(c);
}

/* Once closing and idle in the kernel: close the socket, then free. */
static void maybe_finish(struct conn *c)
{
    if (c->closing && c->ops == 0) {
        if (c->fd >= 0) {
            struct io_uring_sqe *sqe = ring_get_sqe(&c->srv->ring, &c->close_op);
            io_uring_prep_close(sqe, c->fd);
            c->fd = -1;
            c->ops++;
            return;
        }
        free_conn(c);
    }
}

static void op_done(struct conn *c)
{
    c->ops--;
    maybe_finish(c);
}

void conn_drain(struct conn *c)
{
    if (c->closing)
        return;
    http_session_drain(&c->http);
    if (c->http.phase == HS_IDLE)
        c->timer_phase = HS_CLOSED; /* re-arm: the idle wait is now short */
    conn_update(c);
}

bool conn_reap_if_gone(struct conn *c)
{
    if (c->closing || c->lingering || c->fd < 0)
        return false;
    /* A non-blocking peek: 0 at EOF, the pending error after a reset,
     * EAGAIN while the client is there and silent. Never blocks. */
    char byte;
    ssize_t n = recv(c->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)))
        return false;
    conn_close(c);
    return true;
}

void conn_close(struct conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    ring_timer_disarm(&c->timer);
    http_session_eof(&c->http); /* cancels a database request in flight */
    if (c->recv_armed) {
        struct io_uring_sqe *sqe = ring_get_sqe(&c->srv->ring, &c->cancel_op);
        io_uring_prep_cancel(sqe, &c->recv_op, 0);
        c->ops++;
    }
    if (c->send_armed) {
        struct io_uring_sqe *sqe = ring_get_sqe(&c->srv->ring, &c->cancel_op);
        io_uring_prep_cancel(sqe, &c->send_op, 0);
        c->ops++;
    }
    maybe_finish(c);
}

static void cancel_cb(struct ring_op *op, int res, uint32_t flags)
{
    (void)res;
    (void)flags;
    op_done(ring_container_of(op, struct conn, cancel_op));
}

static void close_cb(struct ring_op *op, int res, uint32_t flags)
{
    (void)res;
    (void)flags;
    struct conn *c = ring_container_of(op, struct conn, close_op);
    c->ops--;
    if (c->ops == 0)
        free_conn(c);
}

static void recv_cb(struct ring_op *op, int res, uint32_t flags)
{
    struct conn *c = ring_container_of(op, struct conn, recv_op);
    struct server *srv = c->srv;
    bool more = (flags & IORING_CQE_F_MORE) != 0;
    const char *data = NULL;
    int bid = -1;
    if (flags & IORING_CQE_F_BUFFER) {
        bid = (int)(flags >> IORING_CQE_BUFFER_SHIFT);
        data = ring_buf_addr(&srv->ring, (unsigned)bid);
    } else {
        data = c->rbuf;
    }
    if (!more) {
        c->recv_armed = false;
        c->ops--;
    }
    if (res > 0 && !c->closing && !c->lingering) {
        http_session_feed(&c->http, data, (size_t)res);
    }
    if (bid >= 0)
        ring_buf_recycle(&srv->ring, (unsigned)bid);

    if (c->closing) {
        maybe_finish(c);
        return;
    }
    if (res == 0 || (res < 0 && res != -ENOBUFS && res != -EINVAL && res != -ECANCELED)) {
        conn_close(c); /* EOF or a socket error */
        return;
    }
    if (res == -EINVAL && srv->multishot_recv) {
        /* The kernel predates multishot receive (6.0): use single receives. */
        srv->multishot_recv = false;
        log_warn("multishot receive unavailable; using single receives");
    }
    conn_update(c); /* lingering: discards and keeps reading until EOF */
}

static void send_cb(struct ring_op *op, int res, uint32_t flags)
{
    (void)flags;
    struct conn *c = ring_container_of(op, struct conn, send_op);
    c->send_armed = false;
    c->ops--;
    if (c->closing) {
        maybe_finish(c);
        return;
    }
    if (res < 0) {
        conn_close(c); /* EPIPE, ECONNRESET: the client is gone */
        return;
    }
    http_session_sent(&c->http, (size_t)res);
    conn_update(c);
}

static void timer_cb(struct ring_timer *t)
{
    struct conn *c = ring_container_of(t, struct conn, timer);
    c->timer_phase = HS_CLOSED;
    if (c->lingering) {
        conn_close(c);
        return;
    }
    http_session_timeout(&c->http);
    conn_update(c);
}
