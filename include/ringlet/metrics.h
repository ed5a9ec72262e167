/*
 * metrics: the service's counters, gauges and histograms, and their
 * rendering in the Prometheus text exposition format 0.0.4.
 *
 * Every series is a fixed slot in a static table indexed by small enums, so
 * recording is an array increment (no allocation, no hashing, no locking:
 * ringlet has one thread). Labels come only from these enums, never from
 * request input, so the number of series is bounded.
 */
#ifndef RINGLET_METRICS_H
#define RINGLET_METRICS_H

#include <stdint.h>

struct buf;

enum metrics_method {
    M_METHOD_GET,
    M_METHOD_HEAD,
    M_METHOD_POST,
    M_METHOD_PUT,
    M_METHOD_DELETE,
    M_METHOD_OTHER,
    M_METHOD__COUNT
};

enum metrics_route {
    M_ROUTE_ITEMS,     /* "/v1/items" */
    M_ROUTE_ITEM,      /* "/v1/items/{id}" */
    M_ROUTE_HEALTHZ,   /* "/healthz" */
    M_ROUTE_READYZ,    /* "/readyz" */
    M_ROUTE_METRICS,   /* "/metrics" */
    M_ROUTE_UNMATCHED, /* "unmatched": no route (404) or not parsed (400, 408, 431...) */
    M_ROUTE__COUNT
};

enum metrics_stmt {
    M_STMT_ITEM_GET,
    M_STMT_ITEM_LIST,
    M_STMT_ITEM_INSERT,
    M_STMT_ITEM_UPDATE,
    M_STMT_ITEM_DELETE,
    M_STMT__COUNT
};

enum metrics_outcome {
    M_OUTCOME_OK,          /* the statement ran (whatever rows it returned) */
    M_OUTCOME_ERROR,       /* the server reported an error */
    M_OUTCOME_TIMEOUT,     /* request deadline passed or statement_timeout fired */
    M_OUTCOME_UNAVAILABLE, /* no usable connection / connection lost with it in flight */
    M_OUTCOME__COUNT
};

enum metrics_pool_state {
    M_POOL_IDLE,
    M_POOL_BUSY,
    M_POOL_CONNECTING,
    M_POOL_BROKEN,
    M_POOL__COUNT
};

/* Values the registry does not own, sampled when /metrics is rendered. */
struct metrics_snapshot {
    unsigned pool[M_POOL__COUNT];  /* db_pool_connections{state} */
    const char *io_uring_features; /* label value of ringlet_io_uring_features{features=...} */
    unsigned long long client_connections; /* ringlet_client_connections gauge */
};

/* Reset every series to zero and remember the process start time. */
void metrics_init(void);

/* http_requests_total and http_request_duration_seconds for one answered request. */
void metrics_observe_request(enum metrics_method m, enum metrics_route r, int status,
                             double seconds);

/* http_requests_in_flight += delta. */
void metrics_in_flight_add(int delta);

/* db_queries_total{statement,outcome} += 1. */
void metrics_count_query(enum metrics_stmt s, enum metrics_outcome o);

/* Map a request method string to its label slot ("GET" -> M_METHOD_GET...). */
enum metrics_method metrics_method_from(const char *method, unsigned len);

/*
 * Render all series, then the process_* metrics read from /proc/self
 * (cpu seconds, resident memory, open fds, start time). Returns 0 or the
 * buf_* error. Output ends with a newline and is valid 0.0.4 text format:
 * each family has # HELP and # TYPE lines, histogram buckets are cumulative
 * with le="+Inf", _sum and _count.
 */
int metrics_render(struct buf *out, const struct metrics_snapshot *snap);

#endif
