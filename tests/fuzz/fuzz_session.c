/*
 * fuzz_session: the whole request path of one client connection, without
 * sockets: bytes -> http_session (llhttp, router, handlers, codec) -> fake
 * database -> response bytes, checked by tests/fuzz/http_check.h.
 *
 * Input layout (see corpus/fuzz_session/ and make_seeds.py):
 *   byte 0      mode flags
 *                 bit 0  manual send: output leaves only through SEND/PUMP ops
 *                 bit 1  the update hook drains output itself (like test_http)
 *                 bits 2-3 limits: 0 default (16 KiB head, 1 MiB body),
 *                        1 = 1 KiB/256 B, 2 = 2 KiB/0 B, 3 = 1 KiB/4 KiB
 *                 bit 4  database not ready at start
 *                 bit 5  server draining (/readyz 503)
 *                 bit 6  db submit fails with -EAGAIN at start
 *                 bit 7  a tiny global body budget (env.body_budget = 300 bytes)
 *   byte 1      K, the number of control bytes that follow
 *   K bytes     control ops, one byte each (low 3 bits op, high 5 bits arg):
 *                 0 FEED arg+1 bytes         1 FEED (arg+1)*64 bytes
 *                 2 FEED all the rest        3 DB answer with outcome `arg`
 *                 4 SEND arg+1 output bytes  5 TIMEOUT
 *                 6 arg 0: EOF, 1: DRAIN, 2: db down, 3: db up,
 *                   4: submit -EAGAIN, 5: submit ok, else PUMP
 *                 7 PUMP all output
 *   the rest    what the client sends
 * Inputs shorter than 2 bytes are all client bytes with default settings.
 * When the ops run out, the loop feeds everything, answers every database
 * request with a good row, and drains all output, until nothing moves.
 *
 * Invariants beyond http_check: the update hook is never called from inside
 * a transport call and is called after every database answer; after eof or
 * a closing timeout the session never produces output again; at rest (no
 * client bytes, no database work, output drained) the session is not stuck
 * in HANDLING/WRITING, holds no stashed bytes while waiting for input, and
 * every request llhttp completed got its final response; a Connection:
 * close response leaves the session done; after http_session_fini nothing
 * is pending in the database, nothing is charged to the global body budget
 * and ASan's leak check finds nothing.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/http_check.h"
#include "ringlet/http.h"
#include "ringlet/metrics.h"
#include "support/fake_db.h"

static struct fake_db fdb;
static struct http_env env;
static struct http_session sess;
static struct http_check chk;
static llhttp_settings_t orig;

static bool in_call;        /* inside one of our calls into the session */
static bool updated;        /* the update hook ran */
static bool pump_in_update; /* mode bit 1 */
static bool cut;            /* the connection was dropped: output may be partial */
static unsigned completes;  /* requests llhttp completed */

/* Everything the session sent, printed on a violation when RINGLET_FUZZ_DEBUG is set. */
static char transcript[1 << 16];
static size_t transcript_len;
static bool debug;

#define die(...)                                                                                   \
    do {                                                                                           \
        fprintf(stderr, "fuzz_session invariant: " __VA_ARGS__);                                   \
        fprintf(stderr, "\n");                                                                     \
        if (debug)                                                                                 \
            fprintf(stderr, "--- output so far (%zu bytes):\n%.*s\n---\n", transcript_len,         \
                    (int)transcript_len, transcript);                                              \
        abort();                                                                                   \
    } while (0)

/* ---- llhttp callbacks wrapped to see the requests ---- */

static int wrap_begin(llhttp_t *p)
{
    hc_request_begin(&chk);
    return orig.on_message_begin(p);
}

static int wrap_method_complete(llhttp_t *p)
{
    hc_request_method(&chk, llhttp_get_method(p) == HTTP_HEAD);
    return orig.on_method_complete ? orig.on_method_complete(p) : 0;
}

static int wrap_headers_complete(llhttp_t *p)
{
    hc_request_headers(&chk, llhttp_get_method(p) == HTTP_HEAD);
    return orig.on_headers_complete(p);
}

static int wrap_complete(llhttp_t *p)
{
    completes++;
    return orig.on_message_complete(p);
}

/*
 * Bytes after a message whose trailer (or header) said "Connection: close"
 * are refused by llhttp itself (HPE_CLOSED_CONNECTION) without an
 * on_message_begin; the session answers them with a 400. That answers what
 * the client sent as a request, so count it as one begun.
 */
static bool closed_conn_counted;

static void after_call(void)
{
    if (!closed_conn_counted && llhttp_get_errno(&sess.parser) == HPE_CLOSED_CONNECTION) {
        closed_conn_counted = true;
        hc_request_begin(&chk);
    }
}

/* ---- transport ---- */

static void check_ok(void)
{
    if (chk.err[0])
        die("%s", chk.err);
}

/* Send at most `max` output bytes; returns how many. */
static size_t send_some(size_t max)
{
    const char *p;
    size_t n = http_session_output(&sess, &p);
    if (n == 0)
        return 0;
    if (cut)
        die("output after the connection was dropped");
    if (n > max)
        n = max;
    if (debug) {
        size_t k =
            n < sizeof(transcript) - transcript_len ? n : sizeof(transcript) - transcript_len;
        memcpy(transcript + transcript_len, p, k);
        transcript_len += k;
    }
    if (!hc_feed(&chk, p, n))
        check_ok();
    bool saved = in_call;
    in_call = true;
    http_session_sent(&sess, n);
    in_call = saved;
    after_call();
    return n;
}

static size_t pump_all(void)
{
    size_t total = 0, n;
    while ((n = send_some(SIZE_MAX)) > 0)
        total += n;
    return total;
}

static void on_update(struct http_session *s)
{
    if (s != &sess)
        die("update for a foreign session");
    if (in_call)
        die("update hook called from inside a transport call");
    updated = true;
    if (pump_in_update)
        pump_all();
}

static const struct http_hooks hooks = {.update = on_update};

static void feed(const uint8_t *p, size_t n)
{
    in_call = true;
    http_session_feed(&sess, (const char *)p, n);
    in_call = false;
    after_call();
}

/* ---- the database's answers ---- */

#define TS1 "2026-11-26T15:00:00.123456Z"
#define TS2 "2026-11-26T15:00:01.000000Z"

static const char *const good_rows[][DB_ITEM_NCOLS] = {
    {"7", "widget", "{\"a\": 1}", "3", TS1, TS2},
    {"9223372036854775807",
     "\xc3\xbc"
     "n"
     "\xc3\xaf"
     "c"
     "\xc3\xb8"
     "d"
     "\xc3\xa9 \"q\" \\ \x01 \xf0\x9f\x98\x80",
     "{\"k\": [1, 2.5e3, {\"x\": null}], \"s\": \"\\u00e9\\ud83d\\ude00\", \"t\": true}",
     "2147483647", TS1, TS2},
    {"1", "x", "{}", "1", TS1, TS1},
    {"42", "a\tb\nc", "{\"n\": {\"n\": {\"n\": []}}}", "0", TS2, TS2},
};
#define NGOOD (sizeof(good_rows) / sizeof(good_rows[0]))

/* Column values that must be refused before rendering (500, no data). */
static const char *const bad_values[DB_ITEM_NCOLS][6] = {
    {"0", "abc", "", "-1", "9223372036854775808", "01"},                           /* id */
    {"\xff", "\xc0\x80", "\xed\xa0\x80", "a\xe2\x82", "\xf4\x90\x80\x80", NULL},   /* name */
    {"[]", "{", "null", "{\"a\":1} x", "{\"a\":\"\\ud800\"}", "{\"a\":NaN}"},      /* data */
    {"-1", "x", "", "2147483648", "1.5", NULL},                                    /* version */
    {"2026-11-26 15:00:00+00", "", "2026-11-26T15:00:00Z", TS1 "x", "yyyy", NULL}, /* created */
    {"2026-11-26T15:00:00.12345Z", NULL, "infinity", "", "2026-13-26T15:00:00.123456", "0"},
};

static void complete(enum db_status st, int nrows, int ncols, const char *const *cells)
{
    updated = false;
    in_call = false;
    if (!fake_db_complete(&fdb, st, nrows, ncols, cells))
        die("no pending request to complete");
    if (!updated)
        die("a database answer produced no update call");
}

/* Answer the oldest pending request; `outcome` picks what the database says. */
static void db_answer(unsigned outcome)
{
    if (!fdb.npending)
        return;
    enum db_stmt stmt = fdb.pending[0]->stmt;
    const char *cells[8 * 7];
    unsigned kind = outcome % 12, sel = outcome / 12;

    switch (kind) {
    case 3:
        complete(DB_UNAVAILABLE, 0, 0, NULL);
        return;
    case 4:
        complete(DB_TIMEOUT, 0, 0, NULL);
        return;
    case 5: /* a server error, or a client value it refused (22003 or another) */
        fdb.sqlstate = sel % 3 == 1 ? "22003" : sel % 3 == 2 ? "22P02" : NULL;
        complete(sel % 3 ? DB_INVALID : DB_ERROR, 0, 0, NULL);
        return;
    case 1: /* absent */
    case 2: /* mismatch (If-Match) or match (If-None-Match) */
        if (stmt == DB_STMT_ITEM_UPDATE || stmt == DB_STMT_ITEM_DELETE) {
            int ncols = stmt == DB_STMT_ITEM_UPDATE ? 1 + DB_ITEM_NCOLS : 2;
            cells[0] = kind == 1 ? "absent" : sel % 2 ? "match" : "mismatch";
            for (int i = 1; i < ncols; i++)
                cells[i] = NULL;
            complete(DB_OK, 1, ncols, cells);
        } else {
            complete(DB_OK, 0, DB_ITEM_NCOLS, NULL);
        }
        return;
    case 6:
    case 7:
    case 8: { /* one bad column in an otherwise good row */
        unsigned col = (sel + kind) % DB_ITEM_NCOLS;
        const char *row[DB_ITEM_NCOLS];
        memcpy(row, good_rows[0], sizeof(row));
        row[col] = bad_values[col][sel % 6];
        if (stmt == DB_STMT_ITEM_UPDATE) {
            cells[0] = "ok";
            memcpy(cells + 1, row, sizeof(row));
            complete(DB_OK, 1, 1 + DB_ITEM_NCOLS, cells);
        } else if (stmt == DB_STMT_ITEM_DELETE) {
            cells[0] = "ok";
            cells[1] = row[0];
            complete(DB_OK, 1, 2, cells);
        } else if (stmt == DB_STMT_ITEM_LIST) {
            memcpy(cells, good_rows[2], sizeof(row));
            memcpy(cells + DB_ITEM_NCOLS, row, sizeof(row));
            complete(DB_OK, 2, DB_ITEM_NCOLS, cells);
        } else {
            complete(DB_OK, 1, DB_ITEM_NCOLS, row);
        }
        return;
    }
    case 9: { /* wrong shape: too few columns, odd status words, extra rows */
        static const char *const status_words[] = {"weird", "OK", "ok ", "", NULL, "absentx"};
        switch (sel % 4) {
        case 0:
            complete(DB_OK, 1, 3, good_rows[0]);
            return;
        case 1:
            cells[0] = status_words[sel / 4 % 6];
            memcpy(cells + 1, good_rows[0], sizeof(good_rows[0]));
            complete(DB_OK, 1, 1 + DB_ITEM_NCOLS, cells);
            return;
        case 2:
            memcpy(cells, good_rows[0], sizeof(good_rows[0]));
            memcpy(cells + DB_ITEM_NCOLS, good_rows[1], sizeof(good_rows[1]));
            complete(DB_OK, 2, DB_ITEM_NCOLS, cells);
            return;
        default:
            complete(DB_OK, 1, 0, NULL);
            return;
        }
    }
    default: /* 0, 10, 11: a good answer; sel picks the row or the page size */
        break;
    }
    const char *const *row = good_rows[(kind == 0 ? 0 : 1 + sel) % NGOOD];
    switch (stmt) {
    case DB_STMT_ITEM_UPDATE:
        cells[0] = "ok";
        memcpy(cells + 1, row, sizeof(good_rows[0]));
        complete(DB_OK, 1, 1 + DB_ITEM_NCOLS, cells);
        return;
    case DB_STMT_ITEM_DELETE:
        cells[0] = "ok";
        cells[1] = row[0];
        complete(DB_OK, 1, 2, cells);
        return;
    case DB_STMT_ITEM_LIST: {
        /* 0..7 rows; a full page when `limit` is small gives next_after */
        int nrows = kind == 0 ? 1 : (int)((sel * 3 + kind) % 8);
        for (int i = 0; i < nrows; i++)
            memcpy(cells + i * DB_ITEM_NCOLS, good_rows[(size_t)i % NGOOD], sizeof(good_rows[0]));
        complete(DB_OK, nrows, DB_ITEM_NCOLS, cells);
        return;
    }
    default:
        complete(DB_OK, 1, DB_ITEM_NCOLS, row);
        return;
    }
}

/* ---- one input ---- */

/*
 * RINGLET_FUZZ_ALLOW=head-body,upgrade,big-id lets exploratory runs go past
 * known findings (F2, F3, F5 in docs/security.md); CI runs strict.
 */
static bool allow_head_body, allow_upgrade, allow_big_id;

static bool has_ci(const uint8_t *p, size_t n, const char *needle)
{
    size_t l = strlen(needle);
    for (size_t i = 0; i + l <= n; i++)
        if (strncasecmp((const char *)p + i, needle, l) == 0)
            return true;
    return false;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *allow = getenv("RINGLET_FUZZ_ALLOW");
    debug = getenv("RINGLET_FUZZ_DEBUG") != NULL;
    allow_head_body = allow && strstr(allow, "head-body");
    allow_upgrade = allow && strstr(allow, "upgrade");
    allow_big_id = allow && strstr(allow, "big-id");
    metrics_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t mode = 0;
    const uint8_t *ops = NULL, *in = data;
    size_t nops = 0, inlen = size;
    if (size >= 2) {
        mode = data[0];
        nops = data[1];
        if (nops > size - 2)
            nops = size - 2;
        ops = data + 2;
        in = ops + nops;
        inlen = size - 2 - nops;
    }
    if (allow_upgrade && has_ci(in, inlen, "upgrade"))
        return 0; /* F3 */
    bool manual = mode & 1;
    pump_in_update = (mode & 2) != 0;
    static const size_t heads[4] = {16384, 1024, 2048, 1024};
    static const size_t bodies[4] = {1048576, 256, 0, 4096};

    fake_db_init(&fdb);
    fdb.ready = !(mode & 16);
    fdb.submit_rc = mode & 64 ? -EAGAIN : 0;
    memset(&env, 0, sizeof(env));
    env.max_header_bytes = heads[(mode >> 2) & 3];
    env.max_body_bytes = bodies[(mode >> 2) & 3];
    env.db = &fdb.db;
    env.draining = (mode & 32) != 0;
    env.body_budget = mode & 128 ? 300 : 0;
    http_env_init(&env);
    orig = env.settings;
    env.settings.on_message_begin = wrap_begin;
    env.settings.on_method_complete = wrap_method_complete;
    env.settings.on_headers_complete = wrap_headers_complete;
    env.settings.on_message_complete = wrap_complete;
    hc_init(&chk, (const char *)in, inlen);
    chk.allow_head_body = allow_head_body;
    chk.allow_no_location = allow_big_id;
    completes = 0;
    closed_conn_counted = false;
    transcript_len = 0;
    cut = false;
    in_call = false;
    http_session_init(&sess, &env, &hooks, NULL);

    size_t pos = 0; /* client bytes fed so far */
    for (size_t i = 0; i < nops; i++) {
        uint8_t c = ops[i];
        unsigned arg = c >> 3;
        size_t n;
        switch (c & 7) {
        case 0:
        case 1:
        case 2:
            n = (c & 7) == 0 ? arg + 1 : (c & 7) == 1 ? (arg + 1) * 64 : inlen - pos;
            if (n > inlen - pos)
                n = inlen - pos;
            if (n) {
                feed(in + pos, n);
                pos += n;
            }
            break;
        case 3:
            db_answer(arg);
            break;
        case 4:
            send_some(arg + 1);
            break;
        case 5: {
            enum http_phase ph = sess.phase;
            in_call = true;
            http_session_timeout(&sess);
            in_call = false;
            if (ph != HS_HEAD && ph != HS_BODY)
                cut = true;
            if (fdb.npending && sess.phase == HS_CLOSED)
                die("closed by a timeout with a database request still pending");
            break;
        }
        case 6:
            switch (arg) {
            case 0:
                in_call = true;
                http_session_eof(&sess);
                in_call = false;
                cut = true;
                if (fdb.npending)
                    die("eof left a database request pending");
                break;
            case 1:
                in_call = true;
                http_session_drain(&sess);
                in_call = false;
                break;
            case 2:
                fdb.ready = false;
                break;
            case 3:
                fdb.ready = true;
                break;
            case 4:
                fdb.submit_rc = -EAGAIN;
                break;
            case 5:
                fdb.submit_rc = 0;
                break;
            default:
                pump_all();
                break;
            }
            break;
        case 7:
            pump_all();
            break;
        }
        if (!manual)
            pump_all();
        check_ok();
    }

    /* Run to rest: feed the rest, answer everything well, drain. */
    fdb.ready = true;
    fdb.submit_rc = 0;
    for (int iter = 0; iter < 100000; iter++) {
        bool progress = pump_all() > 0;
        if (fdb.npending) {
            db_answer(0);
            progress = true;
        }
        if (pos < inlen && sess.phase != HS_CLOSED) {
            feed(in + pos, inlen - pos);
            pos = inlen;
            progress = true;
        }
        if (!progress)
            break;
        check_ok();
    }
    check_ok();
    if (!hc_end(&chk, cut))
        die("%s", chk.err);

    if (!cut) {
        switch (sess.phase) {
        case HS_HANDLING:
            die("stuck in HANDLING with no database work pending");
        case HS_WRITING:
            die("stuck in WRITING with all output sent");
        case HS_CLOSED:
            if (!http_session_done(&sess))
                die("closed but not done");
            break;
        default:
            if (sess.stash.len)
                die("%zu stashed bytes while waiting for input (phase %d)", sess.stash.len,
                    (int)sess.phase);
            break;
        }
        if (chk.closed && sess.phase != HS_CLOSED)
            die("sent Connection: close but the session stays open");
        if (completes > chk.finals)
            die("%u complete request(s) but %u final response(s)", completes, chk.finals);
    }
    if (completes > chk.begun)
        die("more requests completed than begun");

    http_session_fini(&sess);
    if (fdb.npending)
        die("a database request is still pending after fini");
    if (env.body_bytes)
        die("%zu body bytes still charged to the global budget after fini", env.body_bytes);
    hc_fini(&chk);
    return 0;
}
