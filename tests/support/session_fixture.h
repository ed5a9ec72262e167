/*
 * session_fixture: one HTTP session driven like conn drives it, with a fake
 * transport (responses collected in `outbuf`) and the fake database, for the
 * Criterion tests of the session engine and the handlers. Include it once
 * per test file, after defining FIXTURE_MAX_HEADER_BYTES if the default
 * does not suit; it defines the file's fixture state and helpers (static).
 */
#ifndef RINGLET_TEST_SESSION_FIXTURE_H
#define RINGLET_TEST_SESSION_FIXTURE_H

#include <criterion/criterion.h>
#include <string.h>

#include "fake_db.h"
#include "ringlet/http.h"
#include "ringlet/metrics.h"

#ifndef FIXTURE_MAX_HEADER_BYTES
#define FIXTURE_MAX_HEADER_BYTES 1024
#endif
#define FIXTURE_MAX_BODY_BYTES 256

static struct fake_db fdb;
static struct http_env env;
static struct http_session sess;
static char outbuf[1 << 16];
static size_t outlen;

/* Take everything the session wants to send, as a socket that always has room. */
static void pump(void)
{
    const char *p;
    size_t n;
    while ((n = http_session_output(&sess, &p)) > 0) {
        cr_assert_lt(outlen + n, sizeof(outbuf));
        memcpy(outbuf + outlen, p, n);
        outlen += n;
        outbuf[outlen] = '\0';
        http_session_sent(&sess, n);
    }
}

static void on_update(struct http_session *s)
{
    (void)s;
    pump();
}

static const struct http_hooks fixture_hooks = {.update = on_update};

static void setup(void)
{
    metrics_init();
    fake_db_init(&fdb);
    memset(&env, 0, sizeof(env));
    env.max_header_bytes = FIXTURE_MAX_HEADER_BYTES;
    env.max_body_bytes = FIXTURE_MAX_BODY_BYTES;
    env.db = &fdb.db;
    http_env_init(&env);
    http_session_init(&sess, &env, &fixture_hooks, NULL);
    outlen = 0;
    outbuf[0] = '\0';
}

static void teardown(void)
{
    http_session_fini(&sess);
}

static void feed(const char *s)
{
    http_session_feed(&sess, s, strlen(s));
    pump();
}

#endif
