/*
 * metrics: fixed static tables of counters, gauges and histograms, rendered
 * in the Prometheus text exposition format 0.0.4 (see include/ringlet/metrics.h).
 *
 * Recording is an array increment. http_requests_total keeps one slot per
 * status in a fixed list (the statuses ringlet sends plus common ones); any
 * other code is counted under its class's generic code (100, 200, 300, 400,
 * 500), so the table stays a few kilobytes. Series that are zero are left out
 * of the request counter and histogram (they would be method x route x status
 * noise), but every db_queries_total and db_pool_connections series is always
 * present so dashboards have something to plot from the first scrape.
 * process_* values are read from /proc at render time; this module does no
 * other I/O and never allocates except through the caller's buf.
 */
#include "ringlet/metrics.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "ringlet/buf.h"

#ifndef RINGLET_VERSION
#define RINGLET_VERSION "dev"
#endif

/* Sorted: the slot of a status is its index here (binary search). */
static const short statuses[] = {100, 101, 200, 201, 204, 206, 300, 301, 302, 304, 400,
                                 401, 403, 404, 405, 408, 409, 411, 412, 413, 414, 415,
                                 417, 422, 429, 431, 500, 501, 502, 503, 504, 505};
#define NSTATUS (sizeof(statuses) / sizeof(statuses[0]))

/* Upper bounds in seconds; the label strings are written as Prometheus shows them. */
static const double bucket_le[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                   0.1,    0.25,  0.5,    1,     2.5,  5,     10};
static const char *const bucket_label[] = {"0.0005", "0.001", "0.0025", "0.005", "0.01",
                                           "0.025",  "0.05",  "0.1",    "0.25",  "0.5",
                                           "1",      "2.5",   "5",      "10"};
#define NBUCKET (sizeof(bucket_le) / sizeof(bucket_le[0]))

static const char *const method_names[M_METHOD__COUNT] = {"GET", "HEAD",   "POST",
                                                          "PUT", "DELETE", "OTHER"};
static const char *const route_names[M_ROUTE__COUNT] = {"/v1/items", "/v1/items/{id}", "/healthz",
                                                        "/readyz",   "/metrics",       "unmatched"};
static const char *const stmt_names[M_STMT__COUNT] = {"item_get", "item_list", "item_insert",
                                                      "item_update", "item_delete"};
static const char *const outcome_names[M_OUTCOME__COUNT] = {"ok", "error", "timeout",
                                                            "unavailable"};
static const char *const pool_names[M_POOL__COUNT] = {"idle", "busy", "connecting", "broken"};

struct histogram {
    uint64_t bucket[NBUCKET + 1]; /* per bucket, not cumulative; the last is +Inf */
    double sum;
    uint64_t count;
};

static struct {
    uint64_t requests[M_METHOD__COUNT][M_ROUTE__COUNT][NSTATUS];
    struct histogram duration[M_METHOD__COUNT][M_ROUTE__COUNT];
    int64_t in_flight;
    uint64_t queries[M_STMT__COUNT][M_OUTCOME__COUNT];
    double start_time; /* process start, seconds since the epoch */
} reg;

/* Process start from /proc/self/stat starttime + /proc/stat btime, 0 if unknown. */
static double proc_start_time(void)
{
    char buf[1024];
    unsigned long long start_ticks = 0, btime = 0;
    long hz = sysconf(_SC_CLK_TCK);
    FILE *f = fopen("/proc/self/stat", "re");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* comm may hold spaces and ')': fields start after the last ')' */
    char *p = strrchr(buf, ')');
    if (!p || hz <= 0)
        return 0;
    p++;
    /* starttime is field 22; field 3 (state) is the first one after ')' */
    for (int field = 3; field < 22; field++) {
        p = strchr(p + 1, ' ');
        if (!p)
            return 0;
    }
    start_ticks = strtoull(p + 1, NULL, 10);

    f = fopen("/proc/stat", "re");
    if (!f)
        return 0;
    char line[256];
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "btime %llu", &btime) == 1)
            break;
    fclose(f);
    if (!btime)
        return 0;
    return (double)btime + (double)start_ticks / (double)hz;
}

void metrics_init(void)
{
    memset(&reg, 0, sizeof(reg));
    reg.start_time = proc_start_time();
    if (reg.start_time <= 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        reg.start_time = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    }
}

static unsigned status_slot(int status)
{
    if (status < 100 || status > 599)
        status = 500; /* not an HTTP status: count it as a server error */
    for (int pass = 0; pass < 2; pass++) {
        unsigned lo = 0, hi = NSTATUS;
        while (lo < hi) {
            unsigned mid = (lo + hi) / 2;
            if (statuses[mid] == status)
                return mid;
            if (statuses[mid] < status)
                lo = mid + 1;
            else
                hi = mid;
        }
        status = status / 100 * 100; /* the class's generic code is always listed */
    }
    return 0;
}

void metrics_observe_request(enum metrics_method m, enum metrics_route r, int status,
                             double seconds)
{
    if ((unsigned)m >= M_METHOD__COUNT)
        m = M_METHOD_OTHER;
    if ((unsigned)r >= M_ROUTE__COUNT)
        r = M_ROUTE_UNMATCHED;
    reg.requests[m][r][status_slot(status)]++;

    if (!(seconds >= 0)) /* negative or NaN: a clock step, count it as instant */
        seconds = 0;
    struct histogram *h = &reg.duration[m][r];
    unsigned b = 0;
    while (b < NBUCKET && seconds > bucket_le[b])
        b++;
    h->bucket[b]++;
    h->sum += seconds;
    h->count++;
}

void metrics_in_flight_add(int delta)
{
    reg.in_flight += delta;
}

void metrics_count_query(enum metrics_stmt s, enum metrics_outcome o)
{
    if ((unsigned)s >= M_STMT__COUNT || (unsigned)o >= M_OUTCOME__COUNT)
        return;
    reg.queries[s][o]++;
}

enum metrics_method metrics_method_from(const char *method, unsigned len)
{
    if (!method)
        return M_METHOD_OTHER;
    for (int i = 0; i < M_METHOD_OTHER; i++)
        if (strlen(method_names[i]) == len && memcmp(method_names[i], method, len) == 0)
            return (enum metrics_method)i;
    return M_METHOD_OTHER;
}

/* The first buf error sticks; later writes are skipped. */
struct out {
    struct buf *b;
    int rc;
};

static void outf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void outf(struct out *o, const char *fmt, ...)
{
    if (o->rc)
        return;
    va_list ap;
    va_start(ap, fmt);
    o->rc = buf_vprintf(o->b, fmt, ap);
    va_end(ap);
}

static void out_str(struct out *o, const char *s, size_t n)
{
    if (!o->rc)
        o->rc = buf_append(o->b, s, n);
}

/* A label value with \\, \" and \n escaped, as 0.0.4 requires. */
static void out_label(struct out *o, const char *v)
{
    const char *run = v;
    for (; *v; v++) {
        const char *esc = *v == '\\' ? "\\\\" : *v == '"' ? "\\\"" : *v == '\n' ? "\\n" : NULL;
        if (!esc)
            continue;
        out_str(o, run, (size_t)(v - run));
        out_str(o, esc, 2);
        run = v + 1;
    }
    out_str(o, run, (size_t)(v - run));
}

/* Go's strconv style: shortest form that reads back, +Inf/-Inf/NaN. */
static void out_double(struct out *o, double d)
{
    char tmp[40];
    if (isnan(d)) {
        outf(o, "NaN");
        return;
    }
    if (isinf(d)) {
        outf(o, "%s", d > 0 ? "+Inf" : "-Inf");
        return;
    }
    snprintf(tmp, sizeof(tmp), "%.15g", d);
    if (strtod(tmp, NULL) != d)
        snprintf(tmp, sizeof(tmp), "%.17g", d);
    outf(o, "%s", tmp);
}

static void family(struct out *o, const char *name, const char *type, const char *help)
{
    outf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void render_requests(struct out *o)
{
    family(o, "http_requests_total", "counter",
           "HTTP requests answered, by method, route and status.");
    for (int m = 0; m < M_METHOD__COUNT; m++)
        for (int r = 0; r < M_ROUTE__COUNT; r++)
            for (unsigned s = 0; s < NSTATUS; s++) {
                uint64_t v = reg.requests[m][r][s];
                if (!v)
                    continue;
                outf(o, "http_requests_total{method=\"%s\",route=\"%s\",status=\"%d\"} %llu\n",
                     method_names[m], route_names[r], statuses[s], (unsigned long long)v);
            }

    family(o, "http_request_duration_seconds", "histogram",
           "HTTP request latency in seconds, by method and route.");
    for (int m = 0; m < M_METHOD__COUNT; m++)
        for (int r = 0; r < M_ROUTE__COUNT; r++) {
            const struct histogram *h = &reg.duration[m][r];
            if (!h->count)
                continue;
            uint64_t cum = 0;
            for (unsigned b = 0; b <= NBUCKET; b++) {
                cum += h->bucket[b];
                outf(o,
                     "http_request_duration_seconds_bucket{method=\"%s\",route=\"%s\",le=\"%s\"} "
                     "%llu\n",
                     method_names[m], route_names[r], b < NBUCKET ? bucket_label[b] : "+Inf",
                     (unsigned long long)cum);
            }
            outf(o, "http_request_duration_seconds_sum{method=\"%s\",route=\"%s\"} ",
                 method_names[m], route_names[r]);
            out_double(o, h->sum);
            outf(o, "\nhttp_request_duration_seconds_count{method=\"%s\",route=\"%s\"} %llu\n",
                 method_names[m], route_names[r], (unsigned long long)h->count);
        }

    family(o, "http_requests_in_flight", "gauge", "HTTP requests received and not yet answered.");
    outf(o, "http_requests_in_flight %lld\n", (long long)reg.in_flight);
}

static void render_db(struct out *o, const struct metrics_snapshot *snap)
{
    family(o, "db_pool_connections", "gauge", "Database connections in the pool, by state.");
    for (int s = 0; s < M_POOL__COUNT; s++)
        outf(o, "db_pool_connections{state=\"%s\"} %u\n", pool_names[s], snap ? snap->pool[s] : 0);

    family(o, "db_queries_total", "counter", "Database statements run, by statement and outcome.");
    for (int s = 0; s < M_STMT__COUNT; s++)
        for (int c = 0; c < M_OUTCOME__COUNT; c++)
            outf(o, "db_queries_total{statement=\"%s\",outcome=\"%s\"} %llu\n", stmt_names[s],
                 outcome_names[c], (unsigned long long)reg.queries[s][c]);
}

static void render_ringlet(struct out *o, const struct metrics_snapshot *snap)
{
    family(o, "ringlet_client_connections", "gauge", "Client connections currently open.");
    outf(o, "ringlet_client_connections %llu\n", snap ? snap->client_connections : 0ULL);

    family(o, "ringlet_io_uring_features", "gauge",
           "io_uring features in use (always 1; the features label lists them).");
    if (snap && snap->io_uring_features) {
        outf(o, "ringlet_io_uring_features{features=\"");
        out_label(o, snap->io_uring_features);
        outf(o, "\"} 1\n");
    }

    family(o, "ringlet_build_info", "gauge", "Build information (always 1).");
    outf(o, "ringlet_build_info{version=\"");
    out_label(o, RINGLET_VERSION);
    outf(o, "\"} 1\n");
}

/* Resident set size in bytes from /proc/self/statm, -1 when unreadable. */
static long long resident_bytes(void)
{
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    unsigned long long size, rss;
    if (sscanf(buf, "%llu %llu", &size, &rss) != 2)
        return -1;
    return (long long)rss * sysconf(_SC_PAGESIZE);
}

/* Open descriptors, not counting the one used to list them; -1 when unknown. */
static long long open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    long long n = 0;
    if (!d)
        return -1;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n > 0 ? n - 1 : 0;
}

static void render_process(struct out *o)
{
    struct rusage ru;
    long long v;

    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                     (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
        family(o, "process_cpu_seconds_total", "counter",
               "Total user and system CPU time spent in seconds.");
        outf(o, "process_cpu_seconds_total ");
        out_double(o, cpu);
        outf(o, "\n");
    }
    if ((v = resident_bytes()) >= 0) {
        family(o, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
        outf(o, "process_resident_memory_bytes %lld\n", v);
    }
    if ((v = open_fds()) >= 0) {
        family(o, "process_open_fds", "gauge", "Number of open file descriptors.");
        outf(o, "process_open_fds %lld\n", v);
    }
    family(o, "process_start_time_seconds", "gauge",
           "Start time of the process since unix epoch in seconds.");
    outf(o, "process_start_time_seconds ");
    out_double(o, reg.start_time);
    outf(o, "\n");
}

int metrics_render(struct buf *out, const struct metrics_snapshot *snap)
{
    struct out o = {out, 0};
    render_requests(&o);
    render_db(&o, snap);
    render_ringlet(&o, snap);
    render_process(&o);
    return o.rc;
}
