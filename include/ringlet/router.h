/*
 * router: request-target and method to handler; 404 and 405 with Allow.
 *
 * Also the small pure parsers the routes need (item id, list query), so they
 * can be unit-tested and fuzzed on their own.
 */
#ifndef RINGLET_ROUTER_H
#define RINGLET_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ringlet/metrics.h"

struct http_session;

struct router_match {
    enum metrics_route route; /* M_ROUTE_UNMATCHED when no route */
    const char *id;           /* item routes: the {id} segment, unvalidated */
    size_t id_len;
    const char *query; /* after '?', NULL when absent */
    size_t query_len;
};

/*
 * Match a request-target (origin-form "/path?q" or absolute-form
 * "http://host/path?q"). Pure: points into `target`.
 */
void router_match(const char *target, size_t len, struct router_match *m);

/* The methods a route allows, as an Allow header value. */
const char *router_allow(enum metrics_route r);

/* True when `method` (an llhttp_method_t) is allowed on the route. */
bool router_method_allowed(enum metrics_route r, int method);

/* "{id}": decimal digits only, int64, > 0. 0 or -EINVAL. */
int router_parse_id(const char *s, size_t len, int64_t *id);

/*
 * List query: "limit=N&after=ID", each optional, plain decimal digits,
 * limit 1..1000 (default 50), after >= 0 (default 0); an empty value, a sign,
 * a repeated or an unknown parameter is an error. 0 or -EINVAL with a detail.
 */
int router_parse_list_query(const char *q, size_t len, unsigned *limit, int64_t *after,
                            char *detail, size_t detail_len);

/*
 * Before reading a body announced with Expect: 100-continue: the status the
 * request will get anyway (404, 405, 415), or 0 when the body should be read.
 */
int router_precheck(struct http_session *s);

/* Dispatch a complete request to its handler (which answers, now or later). */
void router_dispatch(struct http_session *s);

#endif
