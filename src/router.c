/*
 * router: maps a request to its handler, and answers 404 and 405 itself.
 *
 * The route table is five fixed paths; matching is a handful of memcmp calls,
 * no allocation. Also owns the parsers for "{id}" and the list query.
 */
#include "ringlet/router.h"

#include <errno.h>
#include <llhttp.h>
#include <stdio.h>
#include <string.h>

#include "ringlet/handlers.h"
#include "ringlet/http.h"

#define ITEMS_PREFIX "/v1/items/"

static bool path_is(const char *p, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    return n == l && memcmp(p, lit, l) == 0;
}

void router_match(const char *target, size_t len, struct router_match *m)
{
    memset(m, 0, sizeof(*m));
    m->route = M_ROUTE_UNMATCHED;
    const char *p = target, *end = target + len;

    /* absolute-form: scheme "://" authority, then the path (RFC 9112 3.2.2) */
    if (len && p[0] != '/') {
        const char *sep = NULL;
        for (const char *q = p; q + 2 < end; q++) {
            if (q[0] == ':' && q[1] == '/' && q[2] == '/') {
                sep = q;
                break;
            }
            if (q[0] == '/' || q[0] == '?')
                break;
        }
        if (!sep)
            return;
        p = sep + 3;
        while (p < end && *p != '/' && *p != '?')
            p++;
        if (p == end || *p == '?') {
            /* "http://host" or "http://host?q": the path is "/" */
            return;
        }
    }
    const char *q = memchr(p, '?', (size_t)(end - p));
    size_t plen = q ? (size_t)(q - p) : (size_t)(end - p);
    if (q) {
        m->query = q + 1;
        m->query_len = (size_t)(end - q - 1);
    }
    if (path_is(p, plen, "/v1/items"))
        m->route = M_ROUTE_ITEMS;
    else if (plen >= sizeof(ITEMS_PREFIX) - 1 &&
             memcmp(p, ITEMS_PREFIX, sizeof(ITEMS_PREFIX) - 1) == 0 &&
             !memchr(p + sizeof(ITEMS_PREFIX) - 1, '/', plen - (sizeof(ITEMS_PREFIX) - 1))) {
        /* one segment after the prefix is an {id}, valid or not (400 if not);
         * deeper paths are unknown (404) */
        m->route = M_ROUTE_ITEM;
        m->id = p + sizeof(ITEMS_PREFIX) - 1;
        m->id_len = plen - (sizeof(ITEMS_PREFIX) - 1);
    } else if (path_is(p, plen, "/healthz"))
        m->route = M_ROUTE_HEALTHZ;
    else if (path_is(p, plen, "/readyz"))
        m->route = M_ROUTE_READYZ;
    else if (path_is(p, plen, "/metrics"))
        m->route = M_ROUTE_METRICS;
}

const char *router_allow(enum metrics_route r)
{
    switch (r) {
    case M_ROUTE_ITEMS:
        return "GET, HEAD, POST";
    case M_ROUTE_ITEM:
        return "GET, HEAD, PUT, DELETE";
    case M_ROUTE_HEALTHZ:
    case M_ROUTE_READYZ:
    case M_ROUTE_METRICS:
        return "GET, HEAD";
    default:
        return NULL;
    }
}

bool router_method_allowed(enum metrics_route r, int method)
{
    if (method == HTTP_GET || method == HTTP_HEAD)
        return r != M_ROUTE_UNMATCHED;
    switch (r) {
    case M_ROUTE_ITEMS:
        return method == HTTP_POST;
    case M_ROUTE_ITEM:
        return method == HTTP_PUT || method == HTTP_DELETE;
    default:
        return false;
    }
}

/* Decimal digits up to `max`. Leading zeros are allowed in any number
 * (007 is 7, as is 0000000000000000000000007): the overflow check bounds the
 * value, the request-target limit bounds the loop. */
static int parse_digits(const char *s, size_t len, uint64_t max, uint64_t *out)
{
    if (len == 0)
        return -EINVAL;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (max - d) / 10)
            return -EINVAL;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int router_parse_id(const char *s, size_t len, int64_t *id)
{
    uint64_t v;
    if (parse_digits(s, len, INT64_MAX, &v) || v == 0)
        return -EINVAL;
    *id = (int64_t)v;
    return 0;
}

int router_parse_list_query(const char *q, size_t len, unsigned *limit, int64_t *after,
                            char *detail, size_t detail_len)
{
    bool have_limit = false, have_after = false;
    *limit = 50;
    *after = 0;
    const char *p = q, *end = q ? q + len : q;
    while (p && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pend = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pend - p));
        size_t klen = eq ? (size_t)(eq - p) : (size_t)(pend - p);
        const char *v = eq ? eq + 1 : pend;
        size_t vlen = (size_t)(pend - v);
        uint64_t n;
        if (klen == 5 && memcmp(p, "limit", 5) == 0) {
            if (have_limit) {
                snprintf(detail, detail_len, "query parameter \"limit\" is repeated");
                return -EINVAL;
            }
            have_limit = true;
            if (!eq || parse_digits(v, vlen, 1000, &n) || n < 1) {
                snprintf(detail, detail_len,
                         "query parameter \"limit\" must be an integer from 1 to 1000");
                return -EINVAL;
            }
            *limit = (unsigned)n;
        } else if (klen == 5 && memcmp(p, "after", 5) == 0) {
            if (have_after) {
                snprintf(detail, detail_len, "query parameter \"after\" is repeated");
                return -EINVAL;
            }
            have_after = true;
            if (!eq || parse_digits(v, vlen, INT64_MAX, &n)) {
                snprintf(detail, detail_len,
                         "query parameter \"after\" must be a non-negative 64-bit integer");
                return -EINVAL;
            }
            *after = (int64_t)n;
        } else if (klen || eq) {
            snprintf(detail, detail_len,
                     "unknown query parameter (only \"limit\" and \"after\" are accepted)");
            return -EINVAL;
        }
        p = amp ? amp + 1 : end;
    }
    return 0;
}

/* Route of the current request; fills the metrics labels. */
static void route_of(struct http_session *s, struct router_match *m)
{
    router_match(s->req.target.data, s->req.target.len, m);
    s->req.m_route = m->route;
}

int router_precheck(struct http_session *s)
{
    struct router_match m;
    route_of(s, &m);
    if (m.route == M_ROUTE_UNMATCHED)
        return 404;
    if (!router_method_allowed(m.route, s->req.method))
        return 405;
    int64_t id;
    if (m.route == M_ROUTE_ITEM && router_parse_id(m.id, m.id_len, &id))
        return 400;
    if ((s->req.method == HTTP_POST || s->req.method == HTTP_PUT) && s->req.ctype != CT_JSON)
        return 415;
    return 0;
}

void router_dispatch(struct http_session *s)
{
    struct router_match m;
    route_of(s, &m);
    int method = s->req.method;
    s->req.head_only = method == HTTP_HEAD; /* errors too: a HEAD answer has no body */
    if (m.route == M_ROUTE_UNMATCHED) {
        http_resp_problem(s, 404, "no resource at this path", NULL);
        return;
    }
    if (!router_method_allowed(m.route, method)) {
        struct http_resp h = {.allow = router_allow(m.route)};
        http_resp_problem(s, 405, "method not allowed on this resource", &h);
        return;
    }
    switch (m.route) {
    case M_ROUTE_ITEMS:
        if (method == HTTP_POST)
            items_create(s);
        else
            items_list(s, m.query, m.query_len);
        return;
    case M_ROUTE_ITEM:
        if (router_parse_id(m.id, m.id_len, &s->req.id)) {
            http_resp_problem(s, 400, "the item id must be a decimal integer from 1 to 2^63-1",
                              NULL);
            return;
        }
        if (method == HTTP_PUT)
            items_update(s);
        else if (method == HTTP_DELETE)
            items_delete(s);
        else
            items_get(s);
        return;
    case M_ROUTE_HEALTHZ:
        health_live(s);
        return;
    case M_ROUTE_READYZ:
        health_ready(s);
        return;
    case M_ROUTE_METRICS:
        health_metrics(s);
        return;
    default:
        http_resp_problem(s, 404, "no resource at this path", NULL);
        return;
    }
}
