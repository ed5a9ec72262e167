/*
 * server: wires the modules together for `ringlet serve`: the listening
 * socket and its accept loop, signals, the client connection set, the
 * database pool, and the shutdown sequence (drain, grace, exit code).
 */
#ifndef RINGLET_SERVER_H
#define RINGLET_SERVER_H

#include <signal.h>
#include <stdbool.h>
#include <sys/signalfd.h>

#include "ringlet/cfg.h"
#include "ringlet/http.h"
#include "ringlet/ring.h"

struct conn;
struct db_pool;

struct server {
    const struct cfg *cfg;
    struct ring ring;
    struct http_env env;
    struct db_pool *pool;
    int listen_fd;
    struct ring_op accept_op, accept_cancel_op, sig_op;
    struct ring_op close_op; /* fire-and-forget closes of sockets we will not serve */
    bool accept_armed;
    bool accepting;      /* false once draining has stopped the listener */
    bool multishot_recv; /* may turn false at run time if the kernel refuses it */
    int sig_fd;
    struct signalfd_siginfo siginfo;
    unsigned nconns;    /* client connections, refusing ones included */
    unsigned nrefusing; /* connections being answered 503 (over the limit) */
    struct conn *conns;
    struct ring_timer_list header_timers; /* header and body timeouts */
    struct ring_timer_list idle_timers;   /* keep-alive idle and write timeouts */
    struct ring_timer_list misc_timers;   /* drain, grace, probe, accept retry */
    struct ring_timer drain_timer, grace_timer, probe_timer, accept_retry_timer;
    bool draining;         /* SIGTERM seen */
    bool closing_listener; /* drain delay over: no more accepts */
    int exit_code;
};

/* Run `ringlet serve` until shutdown. Returns the process exit status. */
int server_run(const struct cfg *cfg);

/* A connection finished closing (called by conn). */
void server__conn_gone(struct server *srv, struct conn *c);

#endif
