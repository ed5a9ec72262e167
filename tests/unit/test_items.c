/*
 * Unit tests of the item handlers' preconditions (If-Match, If-None-Match)
 * and of how a value the database refuses is answered, through a session
 * with a fake transport and the fake database.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#define FIXTURE_MAX_HEADER_BYTES 4096
#include "../support/session_fixture.h"

static void reset_output(void)
{
    outlen = 0;
    outbuf[0] = '\0';
}

static bool status_is(int status)
{
    char want[16];
    snprintf(want, sizeof(want), "HTTP/1.1 %d ", status);
    return strncmp(outbuf, want, strlen(want)) == 0;
}

/* Item 7 at version 3. */
static const char *const item_row[] = {
    "7", "widget", "{\"a\": 1}", "3", "2026-11-26T15:00:00.123456Z", "2026-11-26T15:00:01.000000Z",
};

TestSuite(items, .init = setup, .fini = teardown);

/* GET /v1/items/7 with extra header lines `hdrs`, answered with item_row. */
static void get_with(const char *method, const char *hdrs)
{
    char req[1024];
    reset_output();
    snprintf(req, sizeof(req), "%s /v1/items/7 HTTP/1.1\r\nHost: x\r\n%s\r\n", method, hdrs);
    feed(req);
    cr_assert_eq(fdb.npending, 1, "%s", outbuf);
    fake_db_complete(&fdb, DB_OK, 1, 6, item_row);
}

Test(items, get_if_match_is_evaluated)
{
    static const struct {
        const char *hdrs;
        int status;
    } cases[] = {
        {"If-Match: \"3\"\r\n", 200},
        {"If-Match: \"1\", \"3\"\r\n", 200},
        {"If-Match: \"1\"\r\nIf-Match: \"3\"\r\n", 200}, /* several lines */
        {"If-Match: *\r\n", 200},
        {"If-Match: \"2\"\r\n", 412},
        {"If-Match: W/\"3\"\r\n", 412}, /* strong comparison */
        {"If-Match: \"03\"\r\n", 412},
        {"If-Match: \"x\"\r\n", 412},
        {"If-Match: \"3\"\r\nIf-None-Match: W/\"3\"\r\n", 304},
        {"If-Match: \"2\"\r\nIf-None-Match: \"3\"\r\n", 412}, /* If-Match first */
        {"If-Match: *\r\nIf-None-Match: \"4\"\r\n", 200},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        get_with("GET", cases[i].hdrs);
        cr_assert(status_is(cases[i].status), "%s: %s", cases[i].hdrs, outbuf);
        if (cases[i].status == 412)
            cr_assert(strstr(outbuf, "application/problem+json"), "%s", outbuf);
        if (cases[i].status == 200)
            cr_assert(strstr(outbuf, "\"name\":\"widget\""), "%s", outbuf);
    }
}

Test(items, head_if_match_412_has_no_body)
{
    get_with("HEAD", "If-Match: \"9\"\r\n");
    cr_assert(status_is(412), "%s", outbuf);
    size_t len = strlen(outbuf);
    cr_assert(len >= 4 && strcmp(outbuf + len - 4, "\r\n\r\n") == 0, "%s", outbuf);
}

Test(items, get_if_match_absent_item_is_404)
{
    feed("GET /v1/items/7 HTTP/1.1\r\nHost: x\r\nIf-Match: *\r\n\r\n");
    fake_db_complete(&fdb, DB_OK, 0, 6, NULL);
    cr_assert(status_is(404), "%s", outbuf);
}

Test(items, put_passes_if_none_match_versions)
{
    feed("PUT /v1/items/5 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
         "If-None-Match: W/\"2\", \"x\"\r\nIf-None-Match: \"4\", \"2\"\r\n"
         "Content-Length: 12\r\n\r\n{\"name\":\"a\"}");
    cr_assert_eq(fdb.npending, 1, "%s", outbuf);
    struct db_req *q = fdb.pending[0];
    cr_assert_eq(q->stmt, DB_STMT_ITEM_UPDATE);
    cr_assert_eq(q->nparams, 6);
    cr_assert_null(q->params[3]);
    cr_assert_str_eq(q->params[4], "{2,4}"); /* weak comparison, duplicates dropped */
    cr_assert_str_eq(q->params[5], "f");
    static const char *const match[] = {"match", NULL, NULL, NULL, NULL, NULL, NULL};
    fake_db_complete(&fdb, DB_OK, 1, 7, match);
    cr_assert(status_is(412), "%s", outbuf);
    cr_assert(strstr(outbuf, "If-None-Match"), "%s", outbuf);
}

Test(items, put_if_none_match_star_and_if_match)
{
    feed("PUT /v1/items/5 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
         "If-Match: \"3\", W/\"4\"\r\nIf-None-Match: *\r\n"
         "Content-Length: 12\r\n\r\n{\"name\":\"a\"}");
    cr_assert_eq(fdb.npending, 1, "%s", outbuf);
    struct db_req *q = fdb.pending[0];
    cr_assert_str_eq(q->params[3], "{3}");
    cr_assert_null(q->params[4]);
    cr_assert_str_eq(q->params[5], "t");
}

Test(items, put_without_preconditions)
{
    feed("PUT /v1/items/5 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
         "Content-Length: 12\r\n\r\n{\"name\":\"a\"}");
    struct db_req *q = fdb.pending[0];
    cr_assert_null(q->params[3]);
    cr_assert_null(q->params[4]);
    cr_assert_str_eq(q->params[5], "f");
}

Test(items, delete_passes_preconditions)
{
    feed("DELETE /v1/items/5 HTTP/1.1\r\nHost: x\r\nIf-Match: *\r\n"
         "If-None-Match: \"x\"\r\n\r\n");
    cr_assert_eq(fdb.npending, 1, "%s", outbuf);
    struct db_req *q = fdb.pending[0];
    cr_assert_eq(q->stmt, DB_STMT_ITEM_DELETE);
    cr_assert_eq(q->nparams, 4);
    cr_assert_null(q->params[1]);
    cr_assert_str_eq(q->params[2], "{}"); /* a list naming no version of ours */
    cr_assert_str_eq(q->params[3], "f");
    static const char *const match[] = {"match", NULL};
    fake_db_complete(&fdb, DB_OK, 1, 2, match);
    cr_assert(status_is(412), "%s", outbuf);
}

Test(items, too_many_tags_is_400_without_database)
{
    char req[2048];
    int off = snprintf(req, sizeof(req),
                       "DELETE /v1/items/5 HTTP/1.1\r\nHost: x\r\n"
                       "If-None-Match: ");
    for (int i = 1; i <= 33; i++)
        off += snprintf(req + off, sizeof(req) - (size_t)off, "%s\"%d\"", i > 1 ? ", " : "", i);
    snprintf(req + off, sizeof(req) - (size_t)off, "\r\n\r\n");
    feed(req);
    cr_assert(status_is(400), "%s", outbuf);
    cr_assert_eq(fdb.submitted, 0);
}

Test(items, thirty_two_tags_and_repeats_are_fine)
{
    char req[2048];
    int off = snprintf(req, sizeof(req),
                       "DELETE /v1/items/5 HTTP/1.1\r\nHost: x\r\n"
                       "If-Match: ");
    for (int i = 0; i < 40; i++)
        off += snprintf(req + off, sizeof(req) - (size_t)off, "%s\"%d\"", i ? ", " : "",
                        2147483616 + i % 32);
    snprintf(req + off, sizeof(req) - (size_t)off, "\r\n\r\n");
    feed(req);
    cr_assert_eq(fdb.npending, 1, "%s", outbuf);
    const char *v = fdb.pending[0]->params[1];
    cr_assert(v && strncmp(v, "{2147483616,2147483617,", 23) == 0, "%s", v);
    cr_assert(strstr(v, ",2147483647}"), "%s", v);
}

Test(items, list_preconditions)
{
    feed("GET /v1/items HTTP/1.1\r\nHost: x\r\nIf-Match: \"1\"\r\n\r\n");
    cr_assert(status_is(412), "%s", outbuf);
    cr_assert_eq(fdb.submitted, 0);

    reset_output();
    feed("GET /v1/items HTTP/1.1\r\nHost: x\r\nIf-None-Match: *\r\n\r\n");
    cr_assert(status_is(304), "%s", outbuf);
    cr_assert_null(strstr(outbuf, "ETag"));
    cr_assert_eq(fdb.submitted, 0);

    reset_output();
    feed("GET /v1/items?limit=x HTTP/1.1\r\nHost: x\r\nIf-Match: \"1\"\r\n\r\n");
    cr_assert(status_is(400), "%s", outbuf); /* a bad query comes first */

    reset_output();
    feed("GET /v1/items HTTP/1.1\r\nHost: x\r\nIf-Match: *\r\nIf-None-Match: \"1\"\r\n\r\n");
    cr_assert_eq(fdb.npending, 1, "%s", outbuf);
    fake_db_complete(&fdb, DB_OK, 0, 7, NULL);
    cr_assert(status_is(200), "%s", outbuf);
}

Test(items, refused_value_is_400)
{
    static const struct {
        const char *sqlstate;
        const char *detail;
    } cases[] = {
        {"22003", "data holds a number that cannot be stored (numeric out of range"},
        {"22P02", "the request body holds a value that cannot be stored"},
        {NULL, "the request body holds a value that cannot be stored"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        reset_output();
        feed("POST /v1/items HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             "Content-Length: 12\r\n\r\n{\"name\":\"a\"}");
        cr_assert_eq(fdb.npending, 1, "%s", outbuf);
        fdb.sqlstate = cases[i].sqlstate;
        fake_db_complete(&fdb, DB_INVALID, 0, 0, NULL);
        cr_assert(status_is(400), "%s", outbuf);
        cr_assert(strstr(outbuf, "application/problem+json"), "%s", outbuf);
        cr_assert(strstr(outbuf, cases[i].detail), "%s", outbuf);
    }
    /* a server error stays a 500 */
    reset_output();
    feed("PUT /v1/items/5 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
         "Content-Length: 12\r\n\r\n{\"name\":\"a\"}");
    fdb.sqlstate = "XX000";
    fake_db_complete(&fdb, DB_ERROR, 0, 0, NULL);
    cr_assert(status_is(500), "%s", outbuf);
}
