/*
 * Unit tests of the HTTP session engine and the router, driven like the
 * service drives them but with a fake transport and a fake database.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "../support/session_fixture.h"

/* Number of responses in the output (status lines). */
static int count_responses(void)
{
    int n = 0;
    for (const char *p = outbuf; (p = strstr(p, "HTTP/1.1 ")); p++)
        n++;
    return n;
}

static const char *const item_row[] = {
    "7", "widget", "{\"a\": 1}", "3", "2026-11-26T15:00:00.123456Z", "2026-11-26T15:00:01.000000Z",
};

TestSuite(http, .init = setup, .fini = teardown);

Test(http, healthz_answers_with_length_date_and_type)
{
    feed("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    cr_assert(strncmp(outbuf, "HTTP/1.1 200 OK\r\n", 17) == 0, "%s", outbuf);
    cr_assert(strstr(outbuf, "\r\nContent-Length: 15\r\n"));
    cr_assert(strstr(outbuf, "\r\nContent-Type: application/json\r\n"));
    cr_assert(strstr(outbuf, "\r\nDate: "));
    cr_assert(strstr(outbuf, "\r\n\r\n{\"status\":\"ok\"}"));
    cr_assert_eq(sess.phase, HS_IDLE);
}

Test(http, pipelined_requests_answered_in_order)
{
    feed("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
         "GET /v1/items HTTP/1.1\r\nHost: x\r\n\r\n");
    cr_assert_eq(count_responses(), 2, "%s", outbuf);
    char *second = strstr(outbuf + 1, "HTTP/1.1 ");
    cr_assert(strncmp(second, "HTTP/1.1 404 ", 13) == 0);
    /* the third waits for the database, in order */
    cr_assert_eq(fdb.npending, 1);
    fake_db_complete(&fdb, DB_OK, 0, 6, NULL);
    cr_assert_eq(count_responses(), 3);
    cr_assert(strstr(outbuf, "{\"items\":[],\"next_after\":null}"));
}

Test(http, one_byte_at_a_time)
{
    const char *req = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    for (size_t i = 0; req[i]; i++) {
        http_session_feed(&sess, req + i, 1);
        pump();
    }
    cr_assert_eq(count_responses(), 1);
    cr_assert(strncmp(outbuf, "HTTP/1.1 200 ", 13) == 0);
}

Test(http, post_creates_with_location_and_etag)
{
    const char *body = "{\"name\":\"widget\",\"data\":{\"a\":1}}";
    char req[256];
    snprintf(req, sizeof(req),
             "POST /v1/items HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             "Content-Length: %zu\r\n\r\n%s",
             strlen(body), body);
    feed(req);
    cr_assert_eq(fdb.npending, 1);
    struct db_req *q = fdb.pending[0];
    cr_assert_eq(q->stmt, DB_STMT_ITEM_INSERT);
    cr_assert_eq(q->nparams, 2);
    cr_assert(strncmp(q->params[0], "widget", (size_t)q->lengths[0]) == 0);
    cr_assert_eq(q->idempotent, false);
    fake_db_complete(&fdb, DB_OK, 1, 6, item_row);
    cr_assert(strncmp(outbuf, "HTTP/1.1 201 Created\r\n", 22) == 0, "%s", outbuf);
    cr_assert(strstr(outbuf, "\r\nLocation: /v1/items/7\r\n"));
    cr_assert(strstr(outbuf, "\r\nETag: \"3\"\r\n"));
    cr_assert(strstr(outbuf, "\"name\":\"widget\""));
}

Test(http, chunked_body_is_decoded)
{
    feed("POST /v1/items HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
         "Transfer-Encoding: chunked\r\n\r\n5\r\n{\"nam\r\n");
    feed("9\r\ne\":\"abc\"}\r\n0\r\n\r\n");
    cr_assert_eq(fdb.npending, 1, "%s", outbuf);
    cr_assert(strncmp(fdb.pending[0]->params[0], "abc", 3) == 0);
}

Test(http, expect_continue_then_body)
{
    feed("POST /v1/items HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
         "Expect: 100-continue\r\nContent-Length: 12\r\n\r\n");
    cr_assert_str_eq(outbuf, "HTTP/1.1 100 Continue\r\n\r\n");
    feed("{\"name\":\"a\"}");
    cr_assert_eq(fdb.npending, 1);
}

Test(http, expect_continue_refused_when_media_type_wrong)
{
    feed("POST /v1/items HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
         "Expect: 100-continue\r\nContent-Length: 12\r\n\r\n");
    cr_assert(strncmp(outbuf, "HTTP/1.1 415 ", 13) == 0, "%s", outbuf);
    cr_assert_null(strstr(outbuf, "100 Continue"));
    cr_assert(http_session_done(&sess));
}

Test(http, missing_host_is_400)
{
    feed("GET /healthz HTTP/1.1\r\n\r\n");
    cr_assert(strncmp(outbuf, "HTTP/1.1 400 ", 13) == 0, "%s", outbuf);
    cr_assert(strstr(outbuf, "application/problem+json"));
}

Test(http, http10_without_host_is_fine_and_closes)
{
    feed("GET /healthz HTTP/1.0\r\n\r\n");
    cr_assert(strncmp(outbuf, "HTTP/1.1 200 ", 13) == 0, "%s", outbuf);
    cr_assert(strstr(outbuf, "Connection: close"));
    cr_assert(http_session_done(&sess));
}

Test(http, http10_keep_alive)
{
    feed("GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    cr_assert(strstr(outbuf, "Connection: keep-alive"), "%s", outbuf);
    cr_assert_not(http_session_done(&sess));
}

Test(http, header_section_too_large_is_431)
{
    char req[4096];
    int n = snprintf(req, sizeof(req), "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(req + n, 'a', 2000);
    strcpy(req + n + 2000, "\r\n\r\n");
    feed(req);
    cr_assert(strncmp(outbuf, "HTTP/1.1 431 ", 13) == 0, "%s", outbuf);
    cr_assert(http_session_done(&sess));
}

Test(http, body_too_large_is_413_before_reading)
{
    feed("POST /v1/items HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
         "Content-Length: 100000\r\n\r\n");
    cr_assert(strncmp(outbuf, "HTTP/1.1 413 ", 13) == 0, "%s", outbuf);
}

Test(http, chunked_body_too_large_is_413)
{
    feed("POST /v1/items HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
         "Transfer-Encoding: chunked\r\n\r\n200\r\n");
    char chunk[513];
    memset(chunk, 'a', 512);
    chunk[512] = '\0';
    feed(chunk);
    cr_assert(strncmp(outbuf, "HTTP/1.1 413 ", 13) == 0, "%s", outbuf);
}

Test(http, bodies_beyond_the_global_budget_get_503)
{
    env.body_budget = 8;
    feed("POST /v1/items HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
         "Content-Length: 12\r\n\r\n{\"name\":\"a\"}");
    cr_assert(strncmp(outbuf, "HTTP/1.1 503 ", 13) == 0, "%s", outbuf);
    cr_assert(strstr(outbuf, "Retry-After: 1"));
    http_session_fini(&sess);
    cr_assert_eq(env.body_bytes, 0);
    http_session_init(&sess, &env, &fixture_hooks, NULL);
}

Test(http, body_bytes_are_returned_to_the_budget)
{
    feed("POST /v1/items HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
         "Content-Length: 12\r\n\r\n{\"name\":\"a\"}");
    cr_assert_eq(env.body_bytes, 12);
    fake_db_complete(&fdb, DB_UNAVAILABLE, 0, 0, NULL);
    cr_assert_eq(env.body_bytes, 0);
}

Test(http, method_not_allowed_lists_allow)
{
    feed("DELETE /v1/items HTTP/1.1\r\nHost: x\r\n\r\n");
    cr_assert(strncmp(outbuf, "HTTP/1.1 405 ", 13) == 0, "%s", outbuf);
    cr_assert(strstr(outbuf, "\r\nAllow: GET, HEAD, POST\r\n"));
}

Test(http, head_keeps_length_drops_body)
{
    feed("HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    cr_assert(strstr(outbuf, "Content-Length: 15\r\n"), "%s", outbuf);
    size_t len = strlen(outbuf);
    cr_assert(len >= 4 && strcmp(outbuf + len - 4, "\r\n\r\n") == 0, "%s", outbuf);
}

Test(http, if_none_match_gives_304_without_body)
{
    feed("GET /v1/items/7 HTTP/1.1\r\nHost: x\r\nIf-None-Match: W/\"3\"\r\n\r\n");
    cr_assert_eq(fdb.npending, 1);
    fake_db_complete(&fdb, DB_OK, 1, 6, item_row);
    cr_assert(strncmp(outbuf, "HTTP/1.1 304 ", 13) == 0, "%s", outbuf);
    cr_assert(strstr(outbuf, "ETag: \"3\""));
    cr_assert_null(strstr(outbuf, "Content-Length"));
}

Test(http, bad_ids_are_400_not_404)
{
    const char *ids[] = {"0", "-1", "+1", "1a", "", "9223372036854775808", "%31"};
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        outlen = 0;
        char req[128];
        snprintf(req, sizeof(req), "GET /v1/items/%s HTTP/1.1\r\nHost: x\r\n\r\n", ids[i]);
        feed(req);
        cr_assert(strncmp(outbuf, "HTTP/1.1 400 ", 13) == 0, "id %s: %s", ids[i], outbuf);
    }
    cr_assert_eq(fdb.submitted, 0);
}

Test(http, deeper_item_paths_are_404)
{
    feed("GET /v1/items/1/extra HTTP/1.1\r\nHost: x\r\n\r\n");
    cr_assert(strncmp(outbuf, "HTTP/1.1 404 ", 13) == 0, "%s", outbuf);
}

Test(http, versions_other_than_1x_are_refused)
{
    feed("GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n");
    cr_assert(strncmp(outbuf, "HTTP/1.1 505 ", 13) == 0, "%s", outbuf);
}

Test(http, minor_versions_beyond_1_1_are_505)
{
    feed("GET /healthz HTTP/1.2\r\nHost: x\r\n\r\n");
    cr_assert(strncmp(outbuf, "HTTP/1.1 505 ", 13) == 0, "%s", outbuf);
    cr_assert(http_session_done(&sess));
}

Test(http, unknown_methods_are_501)
{
    /* well-formed tokens we do not implement, including a lower-case "get":
     * methods are case-sensitive (RFC 9110 9.1) */
    const char *reqs[] = {
        "FOO /v1/items HTTP/1.1\r\nHost: x\r\n\r\n", "BREW /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        "get /healthz HTTP/1.1\r\nHost: x\r\n\r\n", "PUX /v1/items/1 HTTP/1.1\r\nHost: x\r\n\r\n"};
    for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
        teardown();
        setup();
        feed(reqs[i]);
        cr_assert(strncmp(outbuf, "HTTP/1.1 501 Not Implemented\r\n", 30) == 0, "%s: %s", reqs[i],
                  outbuf);
        cr_assert(strstr(outbuf, "application/problem+json"), "%s", outbuf);
        cr_assert(http_session_done(&sess));
    }
}

Test(http, a_method_that_is_not_a_token_is_400)
{
    feed("G@T /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    cr_assert(strncmp(outbuf, "HTTP/1.1 400 ", 13) == 0, "%s", outbuf);
}

Test(http, invalid_host_values_are_400)
{
    const char *hosts[] = {"a b", "x/y", "a@b", "a?b", "exa\x01mple"};
    for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
        teardown();
        setup();
        char req[256];
        snprintf(req, sizeof(req), "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", hosts[i]);
        feed(req);
        cr_assert(strncmp(outbuf, "HTTP/1.1 400 ", 13) == 0, "Host %s: %s", hosts[i], outbuf);
    }
    const char *good[] = {"example.com", "example.com:8080", "[::1]:80", "10.0.0.1", ""};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        teardown();
        setup();
        char req[256];
        snprintf(req, sizeof(req), "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", good[i]);
        feed(req);
        cr_assert(strncmp(outbuf, "HTTP/1.1 200 ", 13) == 0, "Host %s: %s", good[i], outbuf);
    }
}

Test(http, a_target_over_the_limit_is_414)
{
    char req[4096];
    int n = snprintf(req, sizeof(req), "GET /healthz?");
    memset(req + n, 'a', 2000);
    strcpy(req + n + 2000, " HTTP/1.1\r\nHost: x\r\n\r\n");
    feed(req);
    cr_assert(strncmp(outbuf, "HTTP/1.1 414 URI Too Long\r\n", 27) == 0, "%s", outbuf);
    cr_assert(http_session_done(&sess));
}

Test(http, transfer_codings_other_than_chunked_are_501)
{
    const char *tes[] = {"gzip, chunked", "compress,chunked", "gzip", "identity",
                         "chunked;foo=bar, x"};
    for (size_t i = 0; i < sizeof(tes) / sizeof(tes[0]); i++) {
        teardown();
        setup();
        char req[256];
        snprintf(req, sizeof(req),
                 "POST /v1/items HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 "Transfer-Encoding: %s\r\n\r\nc\r\n{\"name\":\"a\"}\r\n0\r\n\r\n",
                 tes[i]);
        feed(req);
        cr_assert(strncmp(outbuf, "HTTP/1.1 501 ", 13) == 0, "TE %s: %s", tes[i], outbuf);
        cr_assert(http_session_done(&sess));
        cr_assert_eq(fdb.submitted, 0);
    }
}

Test(http, transfer_encoding_in_http10_is_400)
{
    feed("POST /v1/items HTTP/1.0\r\nContent-Type: application/json\r\n"
         "Transfer-Encoding: chunked\r\n\r\nc\r\n{\"name\":\"a\"}\r\n0\r\n\r\n");
    cr_assert(strncmp(outbuf, "HTTP/1.1 400 ", 13) == 0, "%s", outbuf);
    cr_assert(http_session_done(&sess));
    cr_assert_eq(fdb.submitted, 0);
}

Test(http, expect_continue_refused_for_bad_id)
{
    feed("PUT /v1/items/abc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
         "Expect: 100-continue\r\nContent-Length: 12\r\n\r\n");
    cr_assert(strncmp(outbuf, "HTTP/1.1 400 ", 13) == 0, "%s", outbuf);
}

Test(http, database_unavailable_is_503_with_retry_after)
{
    fdb.ready = false;
    feed("GET /v1/items/1 HTTP/1.1\r\nHost: x\r\n\r\n");
    cr_assert(strncmp(outbuf, "HTTP/1.1 503 ", 13) == 0, "%s", outbuf);
    cr_assert(strstr(outbuf, "Retry-After: "));
}

Test(http, database_timeout_is_504)
{
    feed("GET /v1/items/1 HTTP/1.1\r\nHost: x\r\n\r\n");
    fake_db_complete(&fdb, DB_TIMEOUT, 0, 0, NULL);
    cr_assert(strncmp(outbuf, "HTTP/1.1 504 ", 13) == 0, "%s", outbuf);
}

Test(http, garbage_row_from_database_is_500_without_internals)
{
    static const char *const bad[] = {"7", "w", "{not json", "3", "x", "y"};
    feed("GET /v1/items/7 HTTP/1.1\r\nHost: x\r\n\r\n");
    fake_db_complete(&fdb, DB_OK, 1, 6, bad);
    cr_assert(strncmp(outbuf, "HTTP/1.1 500 ", 13) == 0, "%s", outbuf);
    cr_assert_null(strstr(outbuf, "not json"));
}

Test(http, partial_head_times_out_with_408)
{
    feed("GET /healthz HTTP/1.1\r\nHo");
    http_session_timeout(&sess);
    pump();
    cr_assert(strncmp(outbuf, "HTTP/1.1 408 ", 13) == 0, "%s", outbuf);
    cr_assert(http_session_done(&sess));
}

Test(http, client_gone_cancels_database_request)
{
    feed("GET /v1/items/1 HTTP/1.1\r\nHost: x\r\n\r\n");
    cr_assert_eq(fdb.npending, 1);
    http_session_eof(&sess);
    cr_assert_eq(fdb.npending, 0);
    cr_assert_eq(fdb.cancelled, 1);
}

Test(http, put_if_match_passes_versions)
{
    feed("PUT /v1/items/5 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
         "If-Match: \"2\", W/\"9\", \"4\"\r\nContent-Length: 12\r\n\r\n{\"name\":\"a\"}");
    cr_assert_eq(fdb.npending, 1, "%s", outbuf);
    struct db_req *q = fdb.pending[0];
    cr_assert_eq(q->stmt, DB_STMT_ITEM_UPDATE);
    cr_assert_str_eq(q->params[0], "5");
    cr_assert_str_eq(q->params[3], "{2,4}");
    static const char *const mismatch[] = {"mismatch", NULL, NULL, NULL, NULL, NULL, NULL};
    fake_db_complete(&fdb, DB_OK, 1, 7, mismatch);
    cr_assert(strncmp(outbuf, "HTTP/1.1 412 ", 13) == 0, "%s", outbuf);
}

Test(http, delete_without_if_match_passes_null)
{
    feed("DELETE /v1/items/5 HTTP/1.1\r\nHost: x\r\n\r\n");
    cr_assert_eq(fdb.npending, 1);
    cr_assert_null(fdb.pending[0]->params[1]);
    static const char *const ok[] = {"ok", "5"};
    fake_db_complete(&fdb, DB_OK, 1, 2, ok);
    cr_assert(strncmp(outbuf, "HTTP/1.1 204 ", 13) == 0, "%s", outbuf);
    cr_assert_null(strstr(outbuf, "Content-Length"));
}

Test(http, absolute_form_target)
{
    feed("GET http://example.com/healthz HTTP/1.1\r\nHost: example.com\r\n\r\n");
    cr_assert(strncmp(outbuf, "HTTP/1.1 200 ", 13) == 0, "%s", outbuf);
}

Test(http, unsupported_media_type)
{
    feed("POST /v1/items HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
         "Content-Length: 2\r\n\r\n{}");
    cr_assert(strncmp(outbuf, "HTTP/1.1 415 ", 13) == 0, "%s", outbuf);
    cr_assert_not(http_session_done(&sess)); /* body was read: keep-alive */
}

Test(http, charset_parameter_is_accepted)
{
    feed("POST /v1/items HTTP/1.1\r\nHost: x\r\nContent-Type: Application/JSON; charset=utf-8\r\n"
         "Content-Length: 12\r\n\r\n{\"name\":\"a\"}");
    cr_assert_eq(fdb.npending, 1, "%s", outbuf);
}

Test(http, drain_closes_after_next_response)
{
    http_session_drain(&sess);
    cr_assert_not(http_session_done(&sess)); /* idle: the transport decides */
    feed("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    cr_assert(strstr(outbuf, "Connection: close\r\n"), "%s", outbuf);
    cr_assert(http_session_done(&sess));
}

Test(http, garbage_is_400_then_close)
{
    feed("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03");
    cr_assert(strncmp(outbuf, "HTTP/1.1 400 ", 13) == 0, "%s", outbuf);
    cr_assert(http_session_done(&sess));
}
