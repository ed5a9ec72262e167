/*
 * fake_db: an in-memory stand-in behind `struct db`, for unit tests and
 * fuzzers only (never the service). Submitted requests wait until the test
 * completes them with canned rows or a failure status.
 */
#ifndef RINGLET_FAKE_DB_H
#define RINGLET_FAKE_DB_H

#include "ringlet/db.h"

#define FAKE_DB_MAX 16

struct fake_db {
    struct db db;
    bool ready;
    int submit_rc; /* what submit returns (0 accepts) */
    struct db_req *pending[FAKE_DB_MAX];
    int npending;
    int submitted;        /* total accepted */
    int cancelled;        /* total cancel calls on pending requests */
    const char *sqlstate; /* given with every completion that is not DB_OK */
};

void fake_db_init(struct fake_db *f);

/*
 * Complete the oldest pending request with `status` and rows given as
 * column strings (row-major, `ncols` per row; NULL is SQL NULL).
 * Returns false when nothing is pending.
 */
bool fake_db_complete(struct fake_db *f, enum db_status status, int nrows, int ncols,
                      const char *const *cells);

#endif
