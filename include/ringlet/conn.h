/*
 * conn: one client socket on the ring.
 *
 * Moves bytes between the socket and the connection's http_session: receives
 * (multishot into the ring's provided buffers, or single receives into a
 * buffer of its own on older kernels), sends what the session produced
 * (resuming after short writes), arms the timer that matches the session's
 * phase, and closes. Closing is a state: the struct is freed only once no
 * operation of it is in flight in the kernel.
 */
#ifndef RINGLET_CONN_H
#define RINGLET_CONN_H

#include <stdbool.h>

#include "ringlet/http.h"
#include "ringlet/ring.h"

struct server;

struct conn {
    struct server *srv;
    int fd;
    struct ring_op recv_op, send_op, close_op, cancel_op;
    unsigned ops;                /* operations in flight in the kernel */
    bool recv_armed;             /* a receive is posted (multishot or single) */
    bool send_armed;             /* a send is posted */
    bool closing;                /* no new operations; freed when ops reaches 0 */
    bool lingering;              /* our side is shut down; discarding input until EOF */
    bool refusing;               /* over the connection limit: answering 503, then closing */
    enum http_phase timer_phase; /* the phase the armed timer belongs to */
    struct ring_timer timer;
    char *rbuf;               /* single-receive buffer (compat path only) */
    struct conn *prev, *next; /* the server's list, for draining */
    struct http_session http;
};

/*
 * Take over an accepted socket and start receiving. With `refuse`, answer
 * 503 at once and close (gracefully, reading until the client's FIN).
 * NULL on ENOMEM (fd closed).
 */
struct conn *conn_create(struct server *srv, int fd, bool refuse);

/* Re-evaluate after any event: send, receive, arm the timer, or close. */
void conn_update(struct conn *c);

/*
 * The listener is closing: the next response says `Connection: close`, and
 * an idle connection gets DRAIN_IDLE_MS to send a last request (one may
 * already be on its way: closing at once would lose it), then it is closed.
 */
void conn_drain(struct conn *c);

/*
 * Ask the socket itself whether the client is gone (EOF or reset) and close
 * the connection if so; true when it was closed. For the shutdown sweep:
 * the ring normally reports this, but Linux 6.18's multishot receive can
 * miss a reset that races its first completion (docs/kernels.md), leaving
 * a connection waiting for bytes that will never come.
 */
bool conn_reap_if_gone(struct conn *c);

/* Begin closing (idempotent). */
void conn_close(struct conn *c);

#endif
