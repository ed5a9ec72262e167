/*
 * fake_db: see fake_db.h.
 */
#include "fake_db.h"

#include <errno.h>
#include <string.h>

struct fake_result {
    int ncols;
    const char *const *cells;
};

static const char *fake_value(const struct db_result *r, int row, int col, int *len)
{
    const struct fake_result *fr = r->impl;
    if (!fr || row < 0 || row >= r->nrows || col < 0 || col >= r->ncols) {
        *len = 0;
        return NULL;
    }
    const char *v = fr->cells[row * fr->ncols + col];
    *len = v ? (int)strlen(v) : 0;
    return v;
}

static int fake_submit(void *self, struct db_req *req)
{
    struct fake_db *f = self;
    if (!f->ready)
        return -ENOTCONN;
    if (f->submit_rc)
        return f->submit_rc;
    if (f->npending == FAKE_DB_MAX)
        return -EAGAIN;
    f->pending[f->npending++] = req;
    f->submitted++;
    return 0;
}

static void fake_cancel(void *self, struct db_req *req)
{
    struct fake_db *f = self;
    for (int i = 0; i < f->npending; i++) {
        if (f->pending[i] == req) {
            memmove(&f->pending[i], &f->pending[i + 1],
                    sizeof(f->pending[0]) * (size_t)(f->npending - i - 1));
            f->npending--;
            f->cancelled++;
            return;
        }
    }
}

static bool fake_ready(const void *self)
{
    const struct fake_db *f = self;
    return f->ready;
}

static void fake_counts(const void *self, unsigned out[M_POOL__COUNT])
{
    const struct fake_db *f = self;
    memset(out, 0, sizeof(unsigned) * M_POOL__COUNT);
    out[f->ready ? M_POOL_IDLE : M_POOL_BROKEN] = 1;
}

static const struct db_ops fake_ops = {
    .submit = fake_submit,
    .cancel = fake_cancel,
    .ready = fake_ready,
    .counts = fake_counts,
};

void fake_db_init(struct fake_db *f)
{
    memset(f, 0, sizeof(*f));
    f->db.ops = &fake_ops;
    f->db.self = f;
    f->ready = true;
}

bool fake_db_complete(struct fake_db *f, enum db_status status, int nrows, int ncols,
                      const char *const *cells)
{
    if (!f->npending)
        return false;
    struct db_req *req = f->pending[0];
    memmove(&f->pending[0], &f->pending[1], sizeof(f->pending[0]) * (size_t)(f->npending - 1));
    f->npending--;
    struct fake_result fr = {.ncols = ncols, .cells = cells};
    struct db_result r = {.status = status,
                          .nrows = status == DB_OK ? nrows : 0,
                          .ncols = status == DB_OK ? ncols : 0,
                          .impl = &fr,
                          .sqlstate = status == DB_OK ? NULL : f->sqlstate,
                          .value = fake_value};
    req->cb(req, &r);
    return true;
}
