/*
 * db: what request handlers may ask of the database, and the libpq pool that
 * answers it.
 *
 * Handlers see only `struct db` (an interface: submit, cancel, ready) and
 * `struct db_result`; they never touch libpq. The real implementation is the
 * pool in db_pool.c: a fixed set of non-blocking libpq connections in pipeline
 * mode with prepared statements, whose sockets are polled through the ring.
 * Tests and fuzzers plug in a fake behind the same interface.
 *
 * Ownership: a `struct db_req` is embedded in its owner (the HTTP request)
 * and must stay valid, with its parameters, until its callback has run or
 * db_cancel() has returned. The `struct db_result` passed to the callback is
 * valid only during the callback; the pool owns and frees the PGresult.
 */
#ifndef RINGLET_DB_H
#define RINGLET_DB_H

#include <stdbool.h>
#include <stdint.h>

#include "ringlet/metrics.h"
#include "ringlet/ring.h"

/* The prepared statements; their SQL lives in db_pool.c. */
enum db_stmt {
    DB_STMT_ITEM_GET,    /* $1 id                          -> 0 or 1 item row */
    DB_STMT_ITEM_LIST,   /* $1 after, $2 limit -> item rows by id, + page_rows */
    DB_STMT_ITEM_INSERT, /* $1 name, $2 data               -> the new item row */
    /* $1 id, $2 name, $3 data, then the preconditions (DB_COND_PARAMS) -> status row */
    DB_STMT_ITEM_UPDATE,
    DB_STMT_ITEM_DELETE, /* $1 id, then the preconditions (DB_COND_PARAMS) -> status row */
    DB_STMT__COUNT
};

enum db_status {
    DB_OK,          /* the statement ran; rows are in the result */
    DB_UNAVAILABLE, /* no usable connection, or it broke with the request in flight */
    DB_TIMEOUT,     /* the request deadline passed (or statement_timeout fired) */
    DB_ERROR,       /* the server reported an error (logged by the pool) */
    DB_INVALID,     /* a write statement refused a value of the client's (a data exception,
                     * e.g. a number jsonb cannot hold): the request's fault, not the
                     * database's; `sqlstate` says which */
};

/*
 * The preconditions of update and delete, three parameters in this order
 * (from $4 for update, from $2 for delete), evaluated in the statement
 * itself so that the check and the write are atomic:
 *   If-Match versions      int[] "{1,2}", or NULL: no If-Match, or "*"
 *   If-None-Match versions int[] "{1,2}", or NULL: no list
 *   If-None-Match "*"      bool "t" / "f"
 */
#define DB_COND_PARAMS 3

/* Column order of every item row the statements return. */
enum db_item_col {
    DB_COL_ID,
    DB_COL_NAME,
    DB_COL_DATA,
    DB_COL_VERSION,
    DB_COL_CREATED_AT,
    DB_COL_UPDATED_AT,
    DB_ITEM_NCOLS
};

/*
 * A list page ends early once its rows hold this many bytes of name and data
 * text; the extra column DB_COL_PAGE_ROWS of every list row tells how many
 * rows the page would have had without that bound.
 */
#define DB_LIST_PAGE_BYTES (8u << 20)
#define DB_COL_PAGE_ROWS   DB_ITEM_NCOLS

/*
 * Update and delete return exactly one row whose first column is "ok",
 * "absent", "mismatch" (If-Match is false) or "match" (If-None-Match is
 * false); for "ok" the item columns follow (update) or the deleted id
 * (delete), shifted by one.
 */
#define DB_STATUS_COL 0

struct db_result {
    enum db_status status;
    int nrows;
    int ncols;
    const void *impl;     /* the implementation's result (a PGresult for the pool) */
    const char *sqlstate; /* DB_ERROR, DB_INVALID: the server's SQLSTATE when known, else NULL */
    /* Column text and length; NULL for SQL NULL. */
    const char *(*value)(const struct db_result *r, int row, int col, int *len);
};

static inline const char *db_value(const struct db_result *r, int row, int col, int *len)
{
    return r->value(r, row, col, len);
}

struct db_req;
typedef void (*db_cb)(struct db_req *req, const struct db_result *res);

#define DB_MAX_PARAMS 6

struct db_req {
    /* set by the caller before db_submit */
    enum db_stmt stmt;
    int nparams;
    const char *params[DB_MAX_PARAMS]; /* text format; NULL is SQL NULL */
    int lengths[DB_MAX_PARAMS];
    bool idempotent; /* a read: may be sent again if its connection breaks */
    db_cb cb;
    /* private to the implementation */
    struct db_req *q_next, *q_prev; /* waiting queue */
    void *impl;                     /* the implementation holding it */
    void *slot;                     /* where it is in flight, NULL when queued */
    struct ring_timer deadline;
    uint8_t retries;
};

struct db_ops {
    /*
     * Start `req`. Returns 0 (the callback will run exactly once, later, never
     * from inside db_submit), -EAGAIN when the wait queue is full, or
     * -ENOTCONN when no connection is usable; on error the callback never runs.
     */
    int (*submit)(void *self, struct db_req *req);
    /* Forget `req`: its callback will not run. Harmless if it already ran. */
    void (*cancel)(void *self, struct db_req *req);
    /* At least one connection is usable. */
    bool (*ready)(const void *self);
    /* Connection counts by state, for /metrics. */
    void (*counts)(const void *self, unsigned out[M_POOL__COUNT]);
};

struct db {
    const struct db_ops *ops;
    void *self;
};

static inline int db_submit(struct db *db, struct db_req *req)
{
    return db->ops->submit(db->self, req);
}
static inline void db_cancel(struct db *db, struct db_req *req)
{
    db->ops->cancel(db->self, req);
}
static inline bool db_ready(const struct db *db)
{
    return db->ops->ready(db->self);
}

/* The statement's metrics label. */
enum metrics_stmt db_stmt_metric(enum db_stmt s);

#endif
