/*
 * Regression tests for what fuzzing found (issue 6, docs/security.md
 * "Findings"), and for the tricky streams the fuzz seeds are built on:
 * pipelined + chunked + 100-continue in one stream, split at every byte.
 *
 * Responses are checked with the fuzzers' own checker (tests/fuzz/
 * http_check.h, header-only) and driven like test_http.c drives a session:
 * a fake transport and the fake database of tests/support.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "../fuzz/http_check.h"
#include "../support/fake_db.h"
#include "ringlet/buf.h"
#include "ringlet/codec.h"
#include "ringlet/http.h"
#include "ringlet/metrics.h"

static struct fake_db fdb;
static struct http_env env;
static struct http_session sess;
static struct http_check chk;
static llhttp_settings_t orig;
static char outbuf[1 << 17];
static size_t outlen;
static unsigned completes;

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

/* llhttp refuses bytes after a "Connection: close" message without beginning
 * one (HPE_CLOSED_CONNECTION); the session's 400 answers them: count it. */
static bool closed_conn_counted;

static void after_call(void)
{
    if (!closed_conn_counted && llhttp_get_errno(&sess.parser) == HPE_CLOSED_CONNECTION) {
        closed_conn_counted = true;
        hc_request_begin(&chk);
    }
}

static void pump(void)
{
    const char *p;
    size_t n;
    while ((n = http_session_output(&sess, &p)) > 0) {
        cr_assert_lt(outlen + n, sizeof(outbuf));
        memcpy(outbuf + outlen, p, n);
        outlen += n;
        outbuf[outlen] = '\0';
        cr_assert(hc_feed(&chk, p, n), "%s\n--- output:\n%s", chk.err, outbuf);
        http_session_sent(&sess, n);
        after_call();
    }
}

static void on_update(struct http_session *s)
{
    (void)s;
}

static const struct http_hooks hooks = {.update = on_update};

static void start(size_t max_header, size_t max_body, const char *input)
{
    metrics_init();
    fake_db_init(&fdb);
    memset(&env, 0, sizeof(env));
    env.max_header_bytes = max_header;
    env.max_body_bytes = max_body;
    env.db = &fdb.db;
    http_env_init(&env);
    orig = env.settings;
    env.settings.on_message_begin = wrap_begin;
    env.settings.on_method_complete = wrap_method_complete;
    env.settings.on_headers_complete = wrap_headers_complete;
    env.settings.on_message_complete = wrap_complete;
    hc_init(&chk, input, input ? strlen(input) : 0);
    completes = 0;
    closed_conn_counted = false;
    http_session_init(&sess, &env, &hooks, NULL);
    outlen = 0;
    outbuf[0] = '\0';
}

static void setup(void)
{
    start(1024, 256, NULL);
}

static void teardown(void)
{
    http_session_fini(&sess);
    cr_assert_eq(fdb.npending, 0);
    hc_fini(&chk);
}

static void feedn(const char *s, size_t n)
{
    http_session_feed(&sess, s, n);
    after_call();
    pump();
}

static void feed(const char *s)
{
    feedn(s, strlen(s));
}

#define TS1 "2026-11-26T15:00:00.123456Z"
static const char *const item_row[] = {"7", "widget", "{\"a\": 1}", "3", TS1, TS1};

/* Answer whatever is pending with a good row for its statement. */
static void answer_all(void)
{
    while (fdb.npending) {
        enum db_stmt st = fdb.pending[0]->stmt;
        const char *cells[7] = {"ok", "7", "widget", "{\"a\": 1}", "3", TS1, TS1};
        if (st == DB_STMT_ITEM_UPDATE)
            fake_db_complete(&fdb, DB_OK, 1, 7, cells);
        else if (st == DB_STMT_ITEM_DELETE)
            fake_db_complete(&fdb, DB_OK, 1, 2, cells);
        else
            fake_db_complete(&fdb, DB_OK, 1, 6, item_row);
        pump();
    }
}

static void assert_clean_end(void)
{
    cr_assert(hc_end(&chk, false), "%s\n--- output:\n%s", chk.err, outbuf);
    cr_assert_leq(completes, chk.finals, "%u complete requests, %u answers\n%s", completes,
                  chk.finals, outbuf);
}

TestSuite(fuzz_regressions, .init = setup, .fini = teardown);

/*
 * F1: http_session_output() computes NULL + 0 (s->out.data + s->out_off)
 * when nothing was ever written or shrink() freed the buffer: undefined
 * behaviour, reported by clang's UBSan ("applying zero offset to null
 * pointer", src/http.c http_session_output). This test only fails under
 * clang -fsanitize=undefined (the fuzz build); it documents the case.
 */
Test(fuzz_regressions, output_of_a_fresh_session_is_empty)
{
    const char *p = NULL;
    cr_assert_eq(http_session_output(&sess, &p), 0);
}

/*
 * F2: a response to HEAD must not carry a body (RFC 9110 9.3.2), but errors
 * produced before the router sets head_only (404 for an unknown path, and
 * every rejection: 400, 408, 413, 431...) are written with their problem
 * body. On a keep-alive connection the client reads that body as the start
 * of the next response.
 */
Test(fuzz_regressions, head_to_unknown_path_has_no_body)
{
    feed("HEAD /nope HTTP/1.1\r\nHost: x\r\n\r\n");
    cr_assert(strncmp(outbuf, "HTTP/1.1 404 ", 13) == 0, "%s", outbuf);
    cr_assert(outlen >= 4 && strcmp(outbuf + outlen - 4, "\r\n\r\n") == 0,
              "a body follows the HEAD response:\n%s", outbuf);
    assert_clean_end();
}

Test(fuzz_regressions, head_rejected_has_no_body)
{
    feed("HEAD /healthz HTTP/1.1\r\n\r\n"); /* no Host: 400 */
    cr_assert(strncmp(outbuf, "HTTP/1.1 400 ", 13) == 0, "%s", outbuf);
    cr_assert(outlen >= 4 && strcmp(outbuf + outlen - 4, "\r\n\r\n") == 0,
              "a body follows the HEAD response:\n%s", outbuf);
}

/*
 * F3: after a request with "Connection: Upgrade" + "Upgrade: ...", llhttp
 * reports HPE_PAUSED_UPGRADE on the next llhttp_execute (after the pause of
 * on_message_complete was resumed). parse() then sees the stale
 * s->message_done (set by the previous request and never cleared by
 * request_reset) and dispatches again: a second final response (404 for an
 * empty target) for a request that was never sent.
 */
Test(fuzz_regressions, upgrade_request_gets_exactly_one_response)
{
    feed("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
         "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    cr_assert(strncmp(outbuf, "HTTP/1.1 200 ", 13) == 0, "%s", outbuf);
    cr_assert_null(strstr(outbuf, "HTTP/1.1 404"), "an answer to no request:\n%s", outbuf);
    cr_assert_leq(chk.finals, chk.begun);
}

Test(fuzz_regressions, upgrade_request_then_later_bytes)
{
    feed("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n");
    cr_assert(strncmp(outbuf, "HTTP/1.1 200 ", 13) == 0, "%s", outbuf);
    feed("PRI * HTTP/2.0\r\n\r\n");
    cr_assert_null(strstr(outbuf, "HTTP/1.1 404"), "an answer to no request:\n%s", outbuf);
}

/*
 * F4: codec_item_render accepts a "data" column nested CODEC_MAX_DEPTH (64)
 * deep, since it validates the column as a document of its own; inside the
 * item it sits one level deeper, so the rendered item is 65 deep and
 * codec_json_valid (and any client with the same limit) rejects it.
 */
Test(fuzz_regressions, rendered_item_with_deep_data_stays_valid)
{
    char data[160];
    size_t o = 0;
    o += (size_t)sprintf(data + o, "{\"a\":");
    for (int i = 0; i < CODEC_MAX_DEPTH - 1; i++)
        data[o++] = '[';
    for (int i = 0; i < CODEC_MAX_DEPTH - 1; i++)
        data[o++] = ']';
    data[o++] = '}';
    data[o] = '\0';
    cr_assert(codec_json_valid(data, o, true)); /* 64 deep: valid on its own */
    struct codec_item_row r = {"1", 1, "x", 1, data, o, "1", 1, TS1, 27, TS1, 27};
    struct buf b;
    buf_init(&b, 1 << 20);
    int rc = codec_item_render(&b, &r);
    bool valid = rc != 0 || codec_json_valid(b.data, b.len, true);
    buf_fini(&b);
    cr_assert(valid, "rendered an item 65 deep, not valid JSON by our own limit");
}

/*
 * F5: items.c parse_i64 refuses more than 18 digits, so an item whose id has
 * 19 digits (10^18 .. 2^63-1, all valid bigint ids) is created with a 201
 * that has no Location header.
 */
Test(fuzz_regressions, created_item_with_19_digit_id_has_location)
{
    const char *body = "{\"name\":\"a\"}";
    char req[256];
    snprintf(req, sizeof(req),
             "POST /v1/items HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             "Content-Length: %zu\r\n\r\n%s",
             strlen(body), body);
    feed(req);
    cr_assert_eq(fdb.npending, 1);
    static const char *const row[] = {"9223372036854775807", "a", "{}", "1", TS1, TS1};
    fake_db_complete(&fdb, DB_OK, 1, 6, row);
    pump();
    cr_assert(strncmp(outbuf, "HTTP/1.1 201 ", 13) == 0, "%s", outbuf);
    cr_assert(strstr(outbuf, "\r\nLocation: /v1/items/9223372036854775807\r\n"), "%s", outbuf);
}

/*
 * F6: a request with Expect: 100-continue that router_precheck refuses is
 * rejected with fail(s, status, NULL): the 405 has no Allow header (RFC 9110
 * 15.5.6 requires it) and none of the 404/405/415 problem documents has a
 * "detail".
 */
Test(fuzz_regressions, expect_continue_405_has_allow_and_detail)
{
    feed("DELETE /v1/items HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
         "Content-Length: 2\r\n\r\n");
    cr_assert(strncmp(outbuf, "HTTP/1.1 405 ", 13) == 0, "%s", outbuf);
    cr_assert(strstr(outbuf, "\r\nAllow: GET, HEAD, POST\r\n"), "%s", outbuf);
    cr_assert(strstr(outbuf, "\"detail\":"), "%s", outbuf);
}

Test(fuzz_regressions, expect_continue_415_has_detail)
{
    feed("POST /v1/items HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
         "Expect: 100-continue\r\nContent-Length: 12\r\n\r\n");
    cr_assert(strncmp(outbuf, "HTTP/1.1 415 ", 13) == 0, "%s", outbuf);
    cr_assert(strstr(outbuf, "\"detail\":"), "%s", outbuf);
}

/* ---- the seeds' tricky stream, split at every byte ---- */

static const char pipeline[] =
    "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    "POST /v1/items HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    "Transfer-Encoding: chunked\r\n\r\n"
    "5\r\n{\"nam\r\n9;ext=1\r\ne\":\"abc\"}\r\n0\r\n\r\n"
    "PUT /v1/items/7 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    "Expect: 100-continue\r\nIf-Match: \"3\"\r\nContent-Length: 12\r\n\r\n{\"name\":\"b\"}"
    "DELETE /v1/items/7 HTTP/1.1\r\nHost: x\r\n\r\n"
    "GET /v1/items/7 HTTP/1.1\r\nHost: x\r\nIf-None-Match: W/\"3\"\r\n\r\n"
    "GET /v1/items?limit=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

static void check_pipeline_output(void)
{
    assert_clean_end();
    cr_assert_eq(chk.finals, 6, "%u answers:\n%s", chk.finals, outbuf);
    cr_assert(http_session_done(&sess), "not closed after Connection: close");
    const char *statuses[] = {"200", "201", "200", "204", "304", "200"};
    const char *p = outbuf;
    for (int i = 0; i < 6; i++) {
        p = strstr(p, "HTTP/1.1 ");
        cr_assert(p);
        if (strncmp(p, "HTTP/1.1 100 ", 13) == 0) {
            p += 9;
            i--;
            continue;
        }
        cr_assert(strncmp(p + 9, statuses[i], 3) == 0, "response %d: %.40s", i, p);
        p += 9;
    }
}

Test(fuzz_regressions, pipelined_chunked_continue_split_at_every_byte)
{
    size_t n = strlen(pipeline);
    for (size_t cut = 0; cut <= n; cut++) {
        http_session_fini(&sess);
        hc_fini(&chk);
        start(1024, 256, pipeline);
        feedn(pipeline, cut);
        answer_all();
        feedn(pipeline + cut, n - cut);
        answer_all();
        check_pipeline_output();
    }
}

Test(fuzz_regressions, pipelined_chunked_continue_byte_by_byte)
{
    size_t n = strlen(pipeline);
    hc_init(&chk, pipeline, n);
    for (size_t i = 0; i < n; i++) {
        feedn(pipeline + i, 1);
        answer_all();
    }
    check_pipeline_output();
}

/*
 * Not a bug, but a trap for a checker: llhttp honours "Connection: close" in
 * a chunked trailer and refuses what follows (HPE_CLOSED_CONNECTION) without
 * beginning a message; the session answers that with one 400 and closes.
 */
Test(fuzz_regressions, data_after_close_in_trailer_gets_one_400)
{
    feed("POST /v1/items HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
         "Transfer-Encoding: chunked\r\n\r\n5\r\n{\"nam\r\n7\r\ne\":\"a\"}\r\n"
         "0\r\nConnection: close\r\n\r\n"
         "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    answer_all();
    int n = 0;
    for (const char *p = outbuf; (p = strstr(p, "HTTP/1.1 ")); p++)
        n++;
    cr_assert_leq(n, 3, "%s", outbuf);
    cr_assert(strncmp(outbuf, "HTTP/1.1 201 ", 13) == 0, "%s", outbuf);
    cr_assert(http_session_done(&sess) || sess.phase != HS_CLOSED);
}

/* Database answers that must become a 500 with no trace of the data. */
Test(fuzz_regressions, hostile_rows_become_500_without_data)
{
    static const char *const bad[][6] = {
        {"7", "\xff", "{}", "3", TS1, TS1},
        {"7", "x", "{\"a\":\"\\ud800\"}", "3", TS1, TS1},
        {"7", "x", "[]", "3", TS1, TS1},
        {"0", "x", "{}", "3", TS1, TS1},
        {"7", "x", "{}", "3", "2026-11-26 15:00:00+00", TS1},
        {"7", "SQL\"}", "{}", "-1", TS1, TS1},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        http_session_fini(&sess);
        hc_fini(&chk);
        start(1024, 256, NULL);
        feed("GET /v1/items/7 HTTP/1.1\r\nHost: x\r\n\r\n");
        fake_db_complete(&fdb, DB_OK, 1, 6, bad[i]);
        pump();
        cr_assert(strncmp(outbuf, "HTTP/1.1 500 ", 13) == 0, "row %zu: %s", i, outbuf);
        assert_clean_end();
    }
}
