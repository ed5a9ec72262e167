/*
 * items: the /v1/items resource: list, get, create, replace, delete.
 *
 * Each handler checks what it can without the database (id, media type,
 * body, conditional headers), fills the request's db_req with text
 * parameters that live in the request itself, submits it, and answers from
 * the database callback. Item JSON is rendered in C from the row's text
 * columns (codec_item_render): see docs/design.md for why not json-c or
 * PostgreSQL's json_build_object.
 */
#include <errno.h>
#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ringlet/codec.h"
#include "ringlet/db.h"
#include "ringlet/handlers.h"
#include "ringlet/http.h"
#include "ringlet/router.h"

/* 400 details for a value PostgreSQL refuses (numeric's limits are its own). */
#define DETAIL_NUMERIC                                                                             \
    "data holds a number that cannot be stored (numeric out of range: at most 131072 digits "      \
    "before the decimal point and 16383 after it)"
#define DETAIL_UNSTORABLE "the request body holds a value that cannot be stored"

#define MAX_TAGS 32 /* distinct versions one If-Match / If-None-Match may name on PUT, DELETE */

static struct http_session *owner_of(struct db_req *req)
{
    return ring_container_of(req, struct http_session, req.db);
}

/* The single place mapping a database outcome to an HTTP answer. */
static bool answer_db_failure(struct http_session *s, const struct db_result *res)
{
    struct http_resp h = {0};
    switch (res->status) {
    case DB_OK:
        return false;
    case DB_UNAVAILABLE:
        h.retry_after = 1;
        http_resp_problem(s, 503, "the database is unavailable; retry later", &h);
        return true;
    case DB_TIMEOUT:
        http_resp_problem(s, 504, "the database did not answer within the request deadline", NULL);
        return true;
    case DB_INVALID:
        /* Valid JSON the database cannot store; the detail names the kind
         * of value, never the server's message (nor the database). */
        http_resp_problem(s, 400,
                          res->sqlstate && strcmp(res->sqlstate, "22003") == 0 ? DETAIL_NUMERIC
                                                                               : DETAIL_UNSTORABLE,
                          NULL);
        return true;
    case DB_ERROR:
    default:
        http_resp_problem(s, 500, "the request could not be completed", NULL);
        return true;
    }
}

static void submit(struct http_session *s, enum db_stmt stmt, bool idempotent, db_cb cb)
{
    struct db_req *q = &s->req.db;
    q->stmt = stmt;
    q->idempotent = idempotent;
    q->cb = cb;
    int rc = db_submit(s->env->db, q);
    if (rc == 0) {
        s->req.db_pending = true;
        return;
    }
    struct http_resp h = {.retry_after = 1};
    http_resp_problem(s, 503,
                      rc == -EAGAIN ? "too many requests are waiting for the database"
                                    : "the database is unavailable; retry later",
                      &h);
}

/* Item row at `row`, columns starting at `col0`, as codec input. */
static void row_of(const struct db_result *res, int row, int col0, struct codec_item_row *out)
{
    int len;
    out->id = db_value(res, row, col0 + DB_COL_ID, &len);
    out->id_len = (size_t)len;
    out->name = db_value(res, row, col0 + DB_COL_NAME, &len);
    out->name_len = (size_t)len;
    out->data = db_value(res, row, col0 + DB_COL_DATA, &len);
    out->data_len = (size_t)len;
    out->version = db_value(res, row, col0 + DB_COL_VERSION, &len);
    out->version_len = (size_t)len;
    out->created_at = db_value(res, row, col0 + DB_COL_CREATED_AT, &len);
    out->created_at_len = (size_t)len;
    out->updated_at = db_value(res, row, col0 + DB_COL_UPDATED_AT, &len);
    out->updated_at_len = (size_t)len;
}

static bool row_complete(const struct codec_item_row *r)
{
    return r->id && r->name && r->data && r->version && r->created_at && r->updated_at;
}

/* Canonical decimal (no sign, no leading zero): ETags compare as strings,
 * so "02" must not match version 2. -1 when not canonical. */
static int64_t parse_i64(const char *s, size_t n)
{
    int64_t v = 0;
    if (!s || !n || n > 19 || (n > 1 && s[0] == '0'))
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        int d = s[i] - '0';
        if (v > (INT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    return v;
}

/* Render one item and answer `status` with its ETag (and Location). */
static void answer_item(struct http_session *s, const struct db_result *res, int row, int col0,
                        int status, bool location)
{
    struct codec_item_row ir;
    if (res->ncols < col0 + DB_ITEM_NCOLS) {
        http_resp_problem(s, 500, "the request could not be completed", NULL);
        return;
    }
    row_of(res, row, col0, &ir);
    int64_t version = row_complete(&ir) ? parse_i64(ir.version, ir.version_len) : -1;
    struct buf *b = http_resp_begin(s);
    size_t mark = b->len;
    if (version < 0 || codec_item_render(b, &ir)) {
        b->len = mark;
        http_resp_problem(s, 500, "the request could not be completed", NULL);
        return;
    }
    struct http_resp h = {.content_type = "application/json", .etag_version = version};
    if (location)
        h.location_id = parse_i64(ir.id, ir.id_len);
    http_resp_finish(s, status, &h);
}

/* ---- conditional requests (RFC 9110 13.1, 13.2) ---- */

enum tag_kind {
    TAG_END,     /* no more members */
    TAG_STAR,    /* "*" */
    TAG_VERSION, /* "N" or W/"N" with N a possible version (1..INT32_MAX, canonical) */
    TAG_OTHER,   /* anything else: a tag that is not ours, or garbage; it never matches */
};

/* The next member of an If-Match / If-None-Match list at *pp (advanced). */
static enum tag_kind next_tag(const char **pp, const char *end, bool *weak, int64_t *version)
{
    const char *p = *pp;
    while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
        p++;
    if (p == end) {
        *pp = p;
        return TAG_END;
    }
    if (*p == '*') {
        *pp = p + 1;
        return TAG_STAR;
    }
    *weak = false;
    if (end - p >= 2 && p[0] == 'W' && p[1] == '/') {
        *weak = true;
        p += 2;
    }
    if (p < end && *p == '"') {
        const char *q = memchr(p + 1, '"', (size_t)(end - p - 1));
        if (!q) {
            *pp = end; /* unterminated: nothing after it can be read */
            return TAG_END;
        }
        *version = parse_i64(p + 1, (size_t)(q - p - 1));
        *pp = q + 1;
        return *version > 0 && *version <= INT32_MAX ? TAG_VERSION : TAG_OTHER;
    }
    while (p < end && *p != ',')
        p++;
    *pp = p;
    return TAG_OTHER;
}

/*
 * Does the list `h` match an existing item at `version`? "*" matches any
 * existing item; `strong` (If-Match) makes weak tags never match, otherwise
 * (If-None-Match) "N" and W/"N" both match version N. Tags that cannot be
 * ours simply never match; with `version` 0 (no entity-tag) only "*" does.
 */
static bool tags_match(const struct buf *h, int64_t version, bool strong)
{
    const char *p = h->data, *end = h->data + h->len;
    bool weak = false;
    int64_t v = 0;
    for (;;) {
        switch (next_tag(&p, end, &weak, &v)) {
        case TAG_END:
            return false;
        case TAG_STAR:
            return true;
        case TAG_VERSION:
            if (v == version && !(strong && weak))
                return true;
            break;
        case TAG_OTHER:
            break;
        }
    }
}

/*
 * The versions the list `h` names (weak tags skipped when `strong`) as an
 * int[] parameter "{1,2}" in `out`, or *star for "*". The condition is
 * evaluated by the statement, so it needs every version: -1 when the list
 * names more than MAX_TAGS distinct ones.
 */
#define TAGS_PARAM_BYTES (MAX_TAGS * 11 + 3) /* "{" 32 x "2147483647," "}" NUL */
_Static_assert(sizeof(((struct http_request *)0)->p_versions) >= TAGS_PARAM_BYTES &&
                   sizeof(((struct http_request *)0)->p_nomatch) >= TAGS_PARAM_BYTES,
               "the If-Match / If-None-Match parameter buffers are too small");

static int tags_param(const struct buf *h, bool strong, char *out, bool *star, int *len)
{
    int64_t v[MAX_TAGS];
    int count = 0;
    const char *p = h->data, *end = h->data + h->len;
    bool weak = false, done = false;
    int64_t ver = 0;
    *star = false;
    while (!done) {
        switch (next_tag(&p, end, &weak, &ver)) {
        case TAG_END:
            done = true;
            break;
        case TAG_STAR:
            *star = true;
            return 0;
        case TAG_VERSION: {
            if (strong && weak)
                break;
            bool seen = false;
            for (int i = 0; i < count && !seen; i++)
                seen = v[i] == ver;
            if (seen)
                break;
            if (count == MAX_TAGS)
                return -1;
            v[count++] = ver;
            break;
        }
        case TAG_OTHER:
            break;
        }
    }
    size_t off = 0;
    out[off++] = '{';
    for (int i = 0; i < count; i++)
        off += (size_t)snprintf(out + off, TAGS_PARAM_BYTES - off, "%s%lld", i ? "," : "",
                                (long long)v[i]);
    out[off++] = '}';
    out[off] = '\0';
    *len = (int)off;
    return 0;
}

/*
 * The DB_COND_PARAMS parameters of update and delete from `first` on: the
 * If-Match versions (NULL when absent or "*"), the If-None-Match versions
 * (NULL when absent or "*") and whether If-None-Match is "*". False when
 * answered already (400: a list too long to evaluate).
 */
static bool cond_params(struct http_session *s, int first)
{
    struct http_request *r = &s->req;
    struct db_req *q = &r->db;
    bool star;
    int len = 0;
    q->params[first] = NULL;
    q->lengths[first] = 0;
    if (r->if_match.len) {
        if (tags_param(&r->if_match, true, r->p_versions, &star, &len)) {
            http_resp_problem(s, 400, "If-Match names more than 32 entity-tags", NULL);
            return false;
        }
        if (!star) {
            q->params[first] = r->p_versions;
            q->lengths[first] = len;
        }
    }
    star = false;
    q->params[first + 1] = NULL;
    q->lengths[first + 1] = 0;
    if (r->if_none_match.len) {
        if (tags_param(&r->if_none_match, false, r->p_nomatch, &star, &len)) {
            http_resp_problem(s, 400, "If-None-Match names more than 32 entity-tags", NULL);
            return false;
        }
        if (!star) {
            q->params[first + 1] = r->p_nomatch;
            q->lengths[first + 1] = len;
        }
    }
    q->params[first + 2] = star ? "t" : "f";
    q->lengths[first + 2] = 1;
    return true;
}

static void set_id_param(struct http_session *s, int idx)
{
    struct http_request *r = &s->req;
    int n = snprintf(r->p_id, sizeof(r->p_id), "%lld", (long long)r->id);
    r->db.params[idx] = r->p_id;
    r->db.lengths[idx] = n;
}

/* ---- GET /v1/items/{id} ---- */

static void get_done(struct db_req *req, const struct db_result *res)
{
    struct http_session *s = owner_of(req);
    s->req.db_pending = false;
    if (answer_db_failure(s, res))
        return;
    if (res->nrows == 0) {
        char detail[64];
        snprintf(detail, sizeof(detail), "item %lld does not exist", (long long)s->req.id);
        http_resp_problem(s, 404, detail, NULL);
        return;
    }
    /* RFC 9110 13.2.2: If-Match first, then If-None-Match. */
    struct http_request *r = &s->req;
    if (r->if_match.len || r->if_none_match.len) {
        int len;
        const char *vs =
            res->ncols > DB_COL_VERSION ? db_value(res, 0, DB_COL_VERSION, &len) : NULL;
        int64_t version = vs ? parse_i64(vs, (size_t)len) : -1;
        if (version <= 0) {
            http_resp_problem(s, 500, "the request could not be completed", NULL);
            return;
        }
        if (r->if_match.len && !tags_match(&r->if_match, version, true)) {
            http_resp_problem(s, 412, "If-Match does not match the item's current version", NULL);
            return;
        }
        if (r->if_none_match.len && tags_match(&r->if_none_match, version, false)) {
            struct http_resp h = {.etag_version = version};
            http_resp_finish(s, 304, &h);
            return;
        }
    }
    answer_item(s, res, 0, 0, 200, false);
}

void items_get(struct http_session *s)
{
    struct db_req *q = &s->req.db;
    q->nparams = 1;
    set_id_param(s, 0);
    submit(s, DB_STMT_ITEM_GET, true, get_done);
}

/* ---- GET /v1/items ---- */

static void list_done(struct db_req *req, const struct db_result *res)
{
    struct http_session *s = owner_of(req);
    s->req.db_pending = false;
    if (answer_db_failure(s, res))
        return;
    if (res->ncols < DB_ITEM_NCOLS && res->nrows) {
        http_resp_problem(s, 500, "the request could not be completed", NULL);
        return;
    }
    unsigned limit = (unsigned)atoi(s->req.p_extra);
    struct buf *b = http_resp_begin(s);
    size_t mark = b->len;
    int rc = buf_append_str(b, "{\"items\":[");
    const char *last_id = NULL;
    int last_len = 0;
    for (int i = 0; rc == 0 && i < res->nrows; i++) {
        struct codec_item_row ir;
        row_of(res, i, 0, &ir);
        if (!row_complete(&ir)) {
            rc = -EINVAL;
            break;
        }
        if (i)
            rc = buf_append(b, ",", 1);
        if (rc == 0)
            rc = codec_item_render(b, &ir);
        last_id = ir.id;
        last_len = (int)ir.id_len;
    }
    /* A page cut short by DB_LIST_PAGE_BYTES still points to what follows. */
    int plen = 0;
    const char *page = res->nrows ? db_value(res, 0, DB_COL_PAGE_ROWS, &plen) : NULL;
    int64_t page_rows = page ? parse_i64(page, (size_t)plen) : 0;
    bool more = (unsigned)res->nrows >= limit || page_rows > res->nrows;
    if (rc == 0) {
        rc = buf_append_str(b, "],\"next_after\":");
        if (rc == 0 && last_id && more)
            rc = buf_append(b, last_id, (size_t)last_len);
        else if (rc == 0)
            rc = buf_append_str(b, "null");
        if (rc == 0)
            rc = buf_append(b, "}", 1);
    }
    if (rc) {
        b->len = mark;
        http_resp_problem(s, 500, "the request could not be completed", NULL);
        return;
    }
    struct http_resp h = {.content_type = "application/json"};
    http_resp_finish(s, 200, &h);
}

void items_list(struct http_session *s, const char *query, size_t query_len)
{
    struct http_request *r = &s->req;
    unsigned limit;
    int64_t after;
    char detail[128];
    if (router_parse_list_query(query, query_len, &limit, &after, detail, sizeof(detail))) {
        http_resp_problem(s, 400, detail, NULL);
        return;
    }
    /* Preconditions (RFC 9110 13.1.1, 13.1.2, 13.2.2): the list always has
     * a current representation but no entity-tag, so If-Match is true only
     * as "*", and If-None-Match is false only as "*" (304, without ETag). */
    if (r->if_match.len && !tags_match(&r->if_match, 0, true)) {
        http_resp_problem(s, 412, "If-Match cannot match: the item list has no entity-tag", NULL);
        return;
    }
    if (r->if_none_match.len && tags_match(&r->if_none_match, 0, false)) {
        http_resp_finish(s, 304, NULL);
        return;
    }
    struct db_req *q = &r->db;
    q->nparams = 2;
    int n = snprintf(r->p_id, sizeof(r->p_id), "%lld", (long long)after);
    q->params[0] = r->p_id;
    q->lengths[0] = n;
    n = snprintf(r->p_extra, sizeof(r->p_extra), "%u", limit);
    q->params[1] = r->p_extra;
    q->lengths[1] = n;
    submit(s, DB_STMT_ITEM_LIST, true, list_done);
}

/* ---- bodies ---- */

/* Validate media type and body into r->input. False when answered already. */
static bool read_body(struct http_session *s)
{
    struct http_request *r = &s->req;
    if (r->has_body && r->ctype != CT_JSON) {
        http_resp_problem(s, 415, "the request body must be application/json", NULL);
        return false;
    }
    if (r->body.len == 0) {
        http_resp_problem(s, 400, "the request body must be a JSON object with a \"name\"", NULL);
        return false;
    }
    char detail[160];
    int rc = codec_item_parse(r->body.data, r->body.len, &r->input, detail, sizeof(detail));
    if (rc == -ENOMEM) {
        http_resp_problem(s, 500, "the request could not be completed", NULL);
        return false;
    }
    if (rc) {
        http_resp_problem(s, 400, detail, NULL);
        return false;
    }
    r->input_live = true;
    return true;
}

/* ---- POST /v1/items ---- */

static void create_done(struct db_req *req, const struct db_result *res)
{
    struct http_session *s = owner_of(req);
    s->req.db_pending = false;
    if (answer_db_failure(s, res))
        return;
    if (res->nrows != 1) {
        http_resp_problem(s, 500, "the request could not be completed", NULL);
        return;
    }
    answer_item(s, res, 0, 0, 201, true);
}

void items_create(struct http_session *s)
{
    if (!read_body(s))
        return;
    struct http_request *r = &s->req;
    struct db_req *q = &r->db;
    q->nparams = 2;
    q->params[0] = r->input.name;
    q->lengths[0] = (int)r->input.name_len;
    q->params[1] = r->input.data;
    q->lengths[1] = (int)r->input.data_len;
    submit(s, DB_STMT_ITEM_INSERT, false, create_done);
}

/* ---- PUT and DELETE: one status row ---- */

/* "ok", "absent", "mismatch" or "match" from the status column; false when answered. */
static bool status_row(struct http_session *s, const struct db_result *res, bool *ok)
{
    int len = 0;
    const char *st =
        res->nrows == 1 && res->ncols >= 1 ? db_value(res, 0, DB_STATUS_COL, &len) : NULL;
    if (st && len == 2 && memcmp(st, "ok", 2) == 0) {
        *ok = true;
        return true;
    }
    *ok = false;
    if (st && len == 6 && memcmp(st, "absent", 6) == 0) {
        char detail[64];
        snprintf(detail, sizeof(detail), "item %lld does not exist", (long long)s->req.id);
        http_resp_problem(s, 404, detail, NULL);
    } else if (st && len == 8 && memcmp(st, "mismatch", 8) == 0) {
        http_resp_problem(s, 412, "If-Match does not match the item's current version", NULL);
    } else if (st && len == 5 && memcmp(st, "match", 5) == 0) {
        http_resp_problem(s, 412, "If-None-Match matches the item's current version", NULL);
    } else {
        http_resp_problem(s, 500, "the request could not be completed", NULL);
    }
    return false;
}

static void update_done(struct db_req *req, const struct db_result *res)
{
    struct http_session *s = owner_of(req);
    s->req.db_pending = false;
    bool ok;
    if (answer_db_failure(s, res) || !status_row(s, res, &ok))
        return;
    answer_item(s, res, 0, 1, 200, false);
}

void items_update(struct http_session *s)
{
    if (!read_body(s))
        return;
    struct http_request *r = &s->req;
    struct db_req *q = &r->db;
    if (!cond_params(s, 3))
        return;
    q->nparams = 3 + DB_COND_PARAMS;
    set_id_param(s, 0);
    q->params[1] = r->input.name;
    q->lengths[1] = (int)r->input.name_len;
    q->params[2] = r->input.data;
    q->lengths[2] = (int)r->input.data_len;
    submit(s, DB_STMT_ITEM_UPDATE, false, update_done);
}

static void delete_done(struct db_req *req, const struct db_result *res)
{
    struct http_session *s = owner_of(req);
    s->req.db_pending = false;
    bool ok;
    if (answer_db_failure(s, res) || !status_row(s, res, &ok))
        return;
    http_resp_finish(s, 204, NULL);
}

void items_delete(struct http_session *s)
{
    struct http_request *r = &s->req;
    struct db_req *q = &r->db;
    if (!cond_params(s, 1))
        return;
    q->nparams = 1 + DB_COND_PARAMS;
    set_id_param(s, 0);
    submit(s, DB_STMT_ITEM_DELETE, false, delete_done);
}
