/*
 * Unit tests of the router's pure parts: target matching, {id} and the list
 * query, and the methods each route allows.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <llhttp.h>
#include <string.h>

#include "ringlet/router.h"

static struct router_match match(const char *target)
{
    struct router_match m;
    router_match(target, strlen(target), &m);
    return m;
}

Test(router, matches_the_five_routes)
{
    cr_assert_eq(match("/v1/items").route, M_ROUTE_ITEMS);
    cr_assert_eq(match("/v1/items?limit=5").route, M_ROUTE_ITEMS);
    cr_assert_eq(match("/v1/items/42").route, M_ROUTE_ITEM);
    cr_assert_eq(match("/healthz").route, M_ROUTE_HEALTHZ);
    cr_assert_eq(match("/readyz").route, M_ROUTE_READYZ);
    cr_assert_eq(match("/metrics").route, M_ROUTE_METRICS);
}

Test(router, unknown_paths_are_unmatched)
{
    const char *paths[] = {"/",         "/v1",       "/v1/item",          "/v1/itemsx",
                           "/healthz/", "/V1/items", "/v1/items/1/extra", "/v1/items/1/",
                           "*",         "",          "http://host"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        cr_assert_eq(match(paths[i]).route, M_ROUTE_UNMATCHED, "%s", paths[i]);
}

Test(router, item_id_segment_and_query_point_into_the_target)
{
    const char *t = "/v1/items/0042?x=1";
    struct router_match m = match(t);
    cr_assert_eq(m.route, M_ROUTE_ITEM);
    cr_assert_eq(m.id, t + 10);
    cr_assert_eq(m.id_len, 4);
    cr_assert_eq(m.query, t + 15);
    cr_assert_eq(m.query_len, 3);
    /* an empty id is still the item route: the handler answers 400 */
    m = match("/v1/items/");
    cr_assert_eq(m.route, M_ROUTE_ITEM);
    cr_assert_eq(m.id_len, 0);
}

Test(router, absolute_form_is_routed_by_its_path)
{
    cr_assert_eq(match("http://example.com/healthz").route, M_ROUTE_HEALTHZ);
    struct router_match m = match("https://h:8080/v1/items/7?limit=1");
    cr_assert_eq(m.route, M_ROUTE_ITEM);
    cr_assert_eq(m.id_len, 1);
    cr_assert_eq(m.query_len, 7);
}

Test(router, ids)
{
    int64_t id = 0;
    cr_assert_eq(router_parse_id("1", 1, &id), 0);
    cr_assert_eq(id, 1);
    cr_assert_eq(router_parse_id("9223372036854775807", 19, &id), 0);
    cr_assert_eq(id, INT64_MAX);
    cr_assert_eq(router_parse_id("007", 3, &id), 0);
    cr_assert_eq(id, 7);
    /* as many leading zeros as the target limit allows: still decimal */
    const char *z = "000000000000000000000000000009223372036854775807";
    cr_assert_eq(router_parse_id(z, strlen(z), &id), 0);
    cr_assert_eq(id, INT64_MAX);
    const char *bad[] = {"",
                         "0",
                         "000",
                         "-1",
                         "+1",
                         "1a",
                         " 1",
                         "9223372036854775808",
                         "99999999999999999999",
                         "0000000000000000000000000009223372036854775808",
                         "%31",
                         "1.0"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(router_parse_id(bad[i], strlen(bad[i]), &id), -EINVAL, "%s", bad[i]);
}

static int list(const char *q, unsigned *limit, int64_t *after)
{
    char detail[128];
    return router_parse_list_query(q, q ? strlen(q) : 0, limit, after, detail, sizeof(detail));
}

Test(router, list_query_defaults_and_values)
{
    unsigned limit;
    int64_t after;
    cr_assert_eq(list(NULL, &limit, &after), 0);
    cr_assert_eq(limit, 50);
    cr_assert_eq(after, 0);
    cr_assert_eq(list("limit=1000&after=12", &limit, &after), 0);
    cr_assert_eq(limit, 1000);
    cr_assert_eq(after, 12);
    cr_assert_eq(list("after=0&&limit=1&", &limit, &after), 0);
    cr_assert_eq(limit, 1);
    cr_assert_eq(after, 0);
}

Test(router, list_query_rejections_name_the_parameter)
{
    const char *bad[] = {"limit=0",         "limit=1001",
                         "limit=",          "limit",
                         "limit=+5",        "limit=-1",
                         "limit=5&limit=6", "after=-1",
                         "after=",          "after=9223372036854775808",
                         "lmit=5",          "=5",
                         "limit=%35",       "after=1&after=2"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        unsigned limit;
        int64_t after;
        char detail[128] = "";
        cr_assert_eq(
            router_parse_list_query(bad[i], strlen(bad[i]), &limit, &after, detail, sizeof(detail)),
            -EINVAL, "%s", bad[i]);
        cr_assert(strstr(detail, "limit") || strstr(detail, "after") || strstr(detail, "unknown"),
                  "%s: %s", bad[i], detail);
    }
}

Test(router, allowed_methods)
{
    cr_assert(router_method_allowed(M_ROUTE_ITEMS, HTTP_POST));
    cr_assert(router_method_allowed(M_ROUTE_ITEMS, HTTP_HEAD));
    cr_assert_not(router_method_allowed(M_ROUTE_ITEMS, HTTP_PUT));
    cr_assert(router_method_allowed(M_ROUTE_ITEM, HTTP_DELETE));
    cr_assert_not(router_method_allowed(M_ROUTE_ITEM, HTTP_POST));
    cr_assert_not(router_method_allowed(M_ROUTE_HEALTHZ, HTTP_POST));
    cr_assert_not(router_method_allowed(M_ROUTE_UNMATCHED, HTTP_GET));
    cr_assert_str_eq(router_allow(M_ROUTE_ITEMS), "GET, HEAD, POST");
    cr_assert_str_eq(router_allow(M_ROUTE_ITEM), "GET, HEAD, PUT, DELETE");
    cr_assert_str_eq(router_allow(M_ROUTE_METRICS), "GET, HEAD");
    cr_assert_null(router_allow(M_ROUTE_UNMATCHED));
}
