/*
 * db_pool: the PostgreSQL connection pool behind `struct db`.
 *
 * A fixed number of libpq connections, each non-blocking from its first byte
 * (PQconnectStartParams / PQconnectPoll), in pipeline mode with the service's
 * statements prepared once per connection. Socket readiness comes from poll
 * requests on the service's ring: read readiness is always armed while a
 * connection is up (so a server restart is noticed at once, even when idle),
 * write readiness only while PQflush reports unsent output.
 *
 * Requests go to the ready connection with the fewest in flight, up to a
 * pipeline depth; beyond that they wait in one bounded FIFO; beyond that,
 * submit fails with -EAGAIN (503). Each request has a deadline timer; the
 * server side is bounded too, by statement_timeout set on every connection.
 * A connection that breaks is torn down and reconnected with capped
 * exponential backoff and jitter; reads in flight on it are sent again
 * elsewhere (a bounded number of times, within their deadline); writes that
 * got no answer fail with DB_UNAVAILABLE because whether they committed is
 * unknown.
 */
#ifndef RINGLET_DB_POOL_H
#define RINGLET_DB_POOL_H

#include "ringlet/db.h"
#include "ringlet/ring.h"

struct db_pool;

struct db_pool_config {
    const char *conninfo;        /* libpq URI or keyword string; NULL for libpq defaults */
    unsigned size;               /* connections */
    unsigned request_timeout_ms; /* per-request deadline and statement_timeout */
    unsigned max_queued;         /* requests waiting for a connection */
    unsigned max_depth;          /* requests in flight per connection */
};

/* Create the pool and start connecting (nothing blocks). NULL on ENOMEM. */
struct db_pool *db_pool_create(struct ring *r, const struct db_pool_config *cfg);

/* Close every connection (PQfinish) and free. Pending callbacks never run. */
void db_pool_destroy(struct db_pool *p);

/* The handler-facing interface of this pool. */
struct db *db_pool_db(struct db_pool *p);

/* Requests queued or in flight. */
unsigned db_pool_outstanding(const struct db_pool *p);

#endif
