/*
 * Unit tests for metrics: the rendered text is parsed line by line and checked
 * against the 0.0.4 format (# HELP then # TYPE before each family's samples,
 * each family once), counters counting, histograms cumulative with
 * le="+Inf" == _count, label escaping, status folding, and the process_*
 * metrics being present and plausible.
 */
#include "ringlet/metrics.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ringlet/buf.h"

static char *rendered;

static const char *render(const struct metrics_snapshot *snap)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    cr_assert_eq(metrics_render(&b, snap), 0);
    cr_assert(b.len > 0);
    cr_assert_eq(b.data[b.len - 1], '\n', "ends with a newline");
    free(rendered);
    rendered = strndup(b.data, b.len);
    buf_fini(&b);
    return rendered;
}

static void setup(void)
{
    metrics_init();
}

static void teardown(void)
{
    free(rendered);
    rendered = NULL;
}

TestSuite(metrics, .init = setup, .fini = teardown);

/* The value of the sample whose line starts with `series` + ' ', or -1 when absent. */
static double sample(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; *p;) {
        const char *eol = strchr(p, '\n');
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
        p = eol ? eol + 1 : p + strlen(p);
    }
    return -1;
}

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/*
 * Walk every line: comments are "# HELP name text" immediately followed by
 * "# TYPE name type"; each sample belongs to the family announced last
 * (histograms: name_bucket/_sum/_count); no family appears twice; each value
 * is a number. Returns the number of families.
 */
static int check_format(const char *text)
{
    char *copy = strdup(text);
    char family[128] = "", type[32] = "";
    char seen[64][128];
    int nfam = 0;
    bool expect_type = false;
    char *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (expect_type) {
            char want[160];
            snprintf(want, sizeof(want), "# TYPE %s ", family);
            cr_assert(has_prefix(line, want), "TYPE must follow HELP for %s: %s", family, line);
            snprintf(type, sizeof(type), "%s", line + strlen(want));
            cr_assert(!strcmp(type, "counter") || !strcmp(type, "gauge") ||
                          !strcmp(type, "histogram"),
                      "type %s", type);
            expect_type = false;
            continue;
        }
        if (has_prefix(line, "# HELP ")) {
            const char *name = line + 7;
            size_t n = strcspn(name, " ");
            cr_assert(n > 0 && n < sizeof(family));
            cr_assert(name[n] == ' ' && name[n + 1], "HELP has text: %s", line);
            snprintf(family, sizeof(family), "%.*s", (int)n, name);
            for (int i = 0; i < nfam; i++)
                cr_assert_str_neq(seen[i], family, "family %s twice", family);
            cr_assert(nfam < 64);
            snprintf(seen[nfam++], sizeof(seen[0]), "%s", family);
            expect_type = true;
            continue;
        }
        cr_assert_neq(line[0], '#', "stray comment: %s", line);
        cr_assert_neq(family[0], '\0', "sample before any HELP: %s", line);
        size_t n = strcspn(line, "{ ");
        char name[160];
        snprintf(name, sizeof(name), "%.*s", (int)n, line);
        if (!strcmp(type, "histogram")) {
            char b[160], s[160], c[160];
            snprintf(b, sizeof(b), "%s_bucket", family);
            snprintf(s, sizeof(s), "%s_sum", family);
            snprintf(c, sizeof(c), "%s_count", family);
            cr_assert(!strcmp(name, b) || !strcmp(name, s) || !strcmp(name, c), "%s in %s", line,
                      family);
        } else {
            cr_assert_str_eq(name, family, "sample %s outside its family", line);
        }
        if (type[0] == 'c')
            cr_assert(strlen(family) > 6 && !strcmp(family + strlen(family) - 6, "_total"),
                      "counter %s ends in _total", family);
        const char *value = line + n;
        if (*value == '{') {
            /* skip the label set, honouring escapes inside quoted values */
            bool quoted = false;
            for (value++; *value && (quoted || *value != '}'); value++) {
                if (quoted && *value == '\\')
                    value++;
                else if (*value == '"')
                    quoted = !quoted;
            }
            cr_assert_eq(*value, '}', "label set closed: %s", line);
            value++;
        }
        cr_assert_eq(*value, ' ', "space before value: %s", line);
        char *end;
        strtod(value + 1, &end);
        cr_assert(end != value + 1 && *end == '\0', "numeric value: %s", line);
    }
    cr_assert(!expect_type, "HELP without TYPE at the end");
    free(copy);
    return nfam;
}

Test(metrics, empty_render_is_valid_and_complete)
{
    const char *t = render(&(struct metrics_snapshot){0});
    int nfam = check_format(t);
    cr_assert_eq(nfam, 12, "%s", t);
    static const char *const families[] = {
        "http_requests_total",       "http_request_duration_seconds",
        "http_requests_in_flight",   "db_pool_connections",
        "db_queries_total",          "ringlet_client_connections",
        "ringlet_io_uring_features", "ringlet_build_info",
        "process_cpu_seconds_total", "process_resident_memory_bytes",
        "process_open_fds",          "process_start_time_seconds"};
    for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
        char help[128];
        snprintf(help, sizeof(help), "# HELP %s ", families[i]);
        cr_assert_not_null(strstr(t, help), "missing %s", families[i]);
    }
    cr_assert_null(strstr(t, "http_requests_total{"), "no zero request series");
    cr_assert_null(strstr(t, "http_request_duration_seconds_bucket"), "no unobserved histogram");
    cr_assert_eq(sample(t, "http_requests_in_flight"), 0);
    cr_assert(has_prefix(strstr(t, "ringlet_build_info{version=\""), "ringlet_build_info"));
}

Test(metrics, db_series_always_present)
{
    struct metrics_snapshot snap = {.pool = {3, 1, 0, 2}};
    metrics_count_query(M_STMT_ITEM_INSERT, M_OUTCOME_TIMEOUT);
    metrics_count_query(M_STMT_ITEM_INSERT, M_OUTCOME_TIMEOUT);
    metrics_count_query(M_STMT__COUNT, M_OUTCOME_OK); /* out of range: ignored */
    const char *t = render(&snap);
    check_format(t);
    cr_assert_eq(sample(t, "db_pool_connections{state=\"idle\"}"), 3);
    cr_assert_eq(sample(t, "db_pool_connections{state=\"busy\"}"), 1);
    cr_assert_eq(sample(t, "db_pool_connections{state=\"connecting\"}"), 0);
    cr_assert_eq(sample(t, "db_pool_connections{state=\"broken\"}"), 2);
    static const char *const stmts[] = {"item_get", "item_list", "item_insert", "item_update",
                                        "item_delete"};
    static const char *const outcomes[] = {"ok", "error", "timeout", "unavailable"};
    for (int s = 0; s < 5; s++)
        for (int o = 0; o < 4; o++) {
            char series[128];
            snprintf(series, sizeof(series), "db_queries_total{statement=\"%s\",outcome=\"%s\"}",
                     stmts[s], outcomes[o]);
            double want = s == 2 && o == 2 ? 2 : 0;
            cr_assert_eq(sample(t, series), want, "%s", series);
        }
}

Test(metrics, request_counter_increments)
{
    const char *series =
        "http_requests_total{method=\"GET\",route=\"/v1/items/{id}\",status=\"200\"}";
    metrics_observe_request(M_METHOD_GET, M_ROUTE_ITEM, 200, 0.001);
    const char *t = render(NULL);
    check_format(t);
    cr_assert_eq(sample(t, series), 1);
    metrics_observe_request(M_METHOD_GET, M_ROUTE_ITEM, 200, 0.001);
    metrics_observe_request(M_METHOD_GET, M_ROUTE_ITEM, 404, 0.001);
    metrics_observe_request(M_METHOD_POST, M_ROUTE_ITEMS, 201, 0.01);
    t = render(NULL);
    check_format(t);
    cr_assert_eq(sample(t, series), 2);
    cr_assert_eq(
        sample(t, "http_requests_total{method=\"GET\",route=\"/v1/items/{id}\",status=\"404\"}"),
        1);
    cr_assert_eq(
        sample(t, "http_requests_total{method=\"POST\",route=\"/v1/items\",status=\"201\"}"), 1);
    cr_assert_eq(
        sample(t, "http_requests_total{method=\"PUT\",route=\"/v1/items\",status=\"201\"}"), -1);
}

Test(metrics, status_folding)
{
    int in[] = {101, 206, 302, 418, 299, 399, 599, 700, 42, 431, 504, 150};
    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++)
        metrics_observe_request(M_METHOD_OTHER, M_ROUTE_UNMATCHED, in[i], 0);
    const char *t = render(NULL);
    check_format(t);
    char series[128];
    struct {
        int status;
        double count;
    } want[] = {{101, 1}, {206, 1}, {302, 1}, {400, 1}, {200, 1},  {300, 1},
                {500, 3}, {431, 1}, {504, 1}, {100, 1}, {418, -1}, {599, -1}};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        snprintf(series, sizeof(series),
                 "http_requests_total{method=\"OTHER\",route=\"unmatched\",status=\"%d\"}",
                 want[i].status);
        cr_assert_eq(sample(t, series), want[i].count, "%s", series);
    }
}

Test(metrics, every_contract_status_has_its_own_series)
{
    static const int contract[] = {200, 201, 204, 304, 400, 404, 405, 408,
                                   412, 413, 415, 431, 500, 503, 504};
    for (size_t i = 0; i < sizeof(contract) / sizeof(contract[0]); i++)
        metrics_observe_request(M_METHOD_GET, M_ROUTE_HEALTHZ, contract[i], 0);
    const char *t = render(NULL);
    for (size_t i = 0; i < sizeof(contract) / sizeof(contract[0]); i++) {
        char series[128];
        snprintf(series, sizeof(series),
                 "http_requests_total{method=\"GET\",route=\"/healthz\",status=\"%d\"}",
                 contract[i]);
        cr_assert_eq(sample(t, series), 1, "%s", series);
    }
}

Test(metrics, histogram_cumulative)
{
    static const double obs[] = {0.0001, 0.0005, 0.0007, 0.003, 0.04, 0.3, 0.3, 2, 9, 11, 100};
    double sum = 0;
    for (size_t i = 0; i < sizeof(obs) / sizeof(obs[0]); i++) {
        metrics_observe_request(M_METHOD_PUT, M_ROUTE_ITEM, 200, obs[i]);
        sum += obs[i];
    }
    metrics_observe_request(M_METHOD_DELETE, M_ROUTE_ITEM, 204, -1); /* clock step: 0 */
    const char *t = render(NULL);
    check_format(t);

    static const char *const le[] = {"0.0005", "0.001", "0.0025", "0.005", "0.01",
                                     "0.025",  "0.05",  "0.1",    "0.25",  "0.5",
                                     "1",      "2.5",   "5",      "10",    "+Inf"};
    static const double want[] = {2, 3, 3, 4, 4, 4, 5, 5, 5, 7, 7, 8, 8, 9, 11};
    const char *prev_line = NULL;
    double prev = 0;
    for (size_t i = 0; i < 15; i++) {
        char series[160];
        snprintf(series, sizeof(series),
                 "http_request_duration_seconds_bucket{method=\"PUT\",route=\"/v1/items/{id}\","
                 "le=\"%s\"}",
                 le[i]);
        double v = sample(t, series);
        cr_assert_eq(v, want[i], "%s = %g", series, v);
        cr_assert(v >= prev, "cumulative");
        prev = v;
        /* buckets appear in increasing le order */
        const char *line = strstr(t, series);
        cr_assert(!prev_line || line > prev_line);
        prev_line = line;
    }
    double count = sample(t, "http_request_duration_seconds_count{method=\"PUT\",route=\"/v1/"
                             "items/{id}\"}");
    cr_assert_eq(count, 11);
    cr_assert_eq(prev, count, "+Inf == _count");
    double got_sum =
        sample(t, "http_request_duration_seconds_sum{method=\"PUT\",route=\"/v1/items/{id}\"}");
    cr_assert_float_eq(got_sum, sum, 1e-9);

    cr_assert_eq(sample(t, "http_request_duration_seconds_bucket{method=\"DELETE\",route=\"/v1/"
                           "items/{id}\",le=\"0.0005\"}"),
                 1);
    cr_assert_eq(sample(t, "http_request_duration_seconds_sum{method=\"DELETE\",route=\"/v1/"
                           "items/{id}\"}"),
                 0);
    /* unobserved combinations are not rendered */
    cr_assert_null(strstr(t, "http_request_duration_seconds_count{method=\"GET\""));
}

Test(metrics, bucket_bounds_are_inclusive)
{
    metrics_observe_request(M_METHOD_HEAD, M_ROUTE_READYZ, 200, 0.1);
    const char *t = render(NULL);
    cr_assert_eq(sample(t, "http_request_duration_seconds_bucket{method=\"HEAD\",route=\"/readyz\","
                           "le=\"0.1\"}"),
                 1);
    cr_assert_eq(sample(t, "http_request_duration_seconds_bucket{method=\"HEAD\",route=\"/readyz\","
                           "le=\"0.05\"}"),
                 0);
}

Test(metrics, in_flight_gauge)
{
    metrics_in_flight_add(1);
    metrics_in_flight_add(1);
    metrics_in_flight_add(1);
    metrics_in_flight_add(-1);
    const char *t = render(NULL);
    cr_assert_eq(sample(t, "http_requests_in_flight"), 2);
    metrics_init();
    t = render(NULL);
    cr_assert_eq(sample(t, "http_requests_in_flight"), 0, "init resets");
}

Test(metrics, label_escaping)
{
    struct metrics_snapshot snap = {.io_uring_features = "a\"b\\c\nd multishot",
                                    .client_connections = 17};
    const char *t = render(&snap);
    check_format(t);
    cr_assert_not_null(
        strstr(t, "ringlet_io_uring_features{features=\"a\\\"b\\\\c\\nd multishot\"} 1\n"), "%s",
        t);
    cr_assert_eq(sample(t, "ringlet_client_connections"), 17);
}

Test(metrics, process_metrics_plausible)
{
    const char *t = render(NULL);
    cr_assert(sample(t, "process_cpu_seconds_total") >= 0);
    cr_assert(sample(t, "process_resident_memory_bytes") > 1024 * 1024);
    cr_assert(sample(t, "process_open_fds") >= 3);
    double start = sample(t, "process_start_time_seconds");
    double now = (double)time(NULL);
    cr_assert(start > now - 3600 && start <= now + 1, "start %f now %f", start, now);
}

Test(metrics, method_from)
{
    cr_assert_eq(metrics_method_from("GET", 3), M_METHOD_GET);
    cr_assert_eq(metrics_method_from("HEAD", 4), M_METHOD_HEAD);
    cr_assert_eq(metrics_method_from("POST", 4), M_METHOD_POST);
    cr_assert_eq(metrics_method_from("PUT", 3), M_METHOD_PUT);
    cr_assert_eq(metrics_method_from("DELETE", 6), M_METHOD_DELETE);
    cr_assert_eq(metrics_method_from("PATCH", 5), M_METHOD_OTHER);
    cr_assert_eq(metrics_method_from("get", 3), M_METHOD_OTHER, "methods are case-sensitive");
    cr_assert_eq(metrics_method_from("GETX", 3), M_METHOD_GET, "length is honoured");
    cr_assert_eq(metrics_method_from("GET", 2), M_METHOD_OTHER);
    cr_assert_eq(metrics_method_from(NULL, 0), M_METHOD_OTHER);
}

Test(metrics, bounded_buffer_error)
{
    struct buf b;
    buf_init(&b, 256);
    metrics_observe_request(M_METHOD_GET, M_ROUTE_ITEMS, 200, 0.01);
    cr_assert_eq(metrics_render(&b, NULL), -E2BIG);
    buf_fini(&b);
}
