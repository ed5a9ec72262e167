/*
 * loadgen: a small HTTP/1.1 load generator for perf/bench.
 *
 * One thread, epoll, plain non-blocking sockets, N keep-alive connections, at
 * most one request in flight per connection (no pipelining).
 *
 * Open loop (--rate R > 0): request k has an intended send time t0 + k/R. It is
 * sent at that time on an idle connection, or as soon as one becomes idle if
 * all are busy. Its latency is measured from the intended send time, not from
 * the moment it could be written, so a slow server cannot slow the generator
 * down and hide its own queueing (no coordinated omission, as in wrk2).
 *
 * Closed loop (--rate 0): every connection sends its next request as soon as
 * the previous answer arrives; latency is measured from the write. With
 * --once every id of --ids is used exactly once (DELETE over distinct ids) and
 * the run ends early when they are exhausted.
 *
 * The path may contain {id}, replaced per request by an id from --ids LO-HI,
 * in order (--id-order seq) or uniformly at random (--id-order random).
 *
 * Latencies go to a histogram of 10 us buckets. A failed request (connection
 * error, reset before the answer, timeout, or a status outside 2xx) counts in
 * the quantiles as if it had taken the --timeout, so errors cannot improve a
 * tail. Output: one JSON object on stdout (or --out FILE) with counters,
 * nearest-rank quantiles (upper edge of the 10 us bucket), and the sparse
 * 10 us histogram of the measured window.
 *
 * Build: cc -O2 -Wall -Wextra -Werror -o loadgen loadgen.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUCKET_NS    10000LL                     /* 10 us */
#define HIST_BUCKETS (60LL * 1000000000LL / BUCKET_NS) /* up to 60 s */
#define RBUF_INIT    16384
#define MAX_HEADERS  16

enum conn_state { C_CONNECTING, C_IDLE, C_BUSY, C_DEAD };

struct conn {
    int fd;
    enum conn_state state;
    bool reused;          /* has completed at least one exchange */
    char *wbuf;           /* current request */
    size_t wlen, woff;
    char *rbuf;           /* response bytes received so far */
    size_t rlen, rcap;
    int64_t start_ns;     /* latency origin: intended (open) or write time (closed) */
    int64_t sent_ns;      /* actual write time, for the timeout */
    bool counted;         /* inside the measured window */
    bool in_idle;         /* on the free list (maybe stale: check state) */
    bool retry;           /* reconnecting to resend the request in wbuf */
    uint32_t gen;         /* socket generation: drops stale epoll events */
    int idle_next;        /* free-list link */
};

struct opts {
    const char *url, *method, *body, *ctype, *out, *label;
    const char *headers[MAX_HEADERS];
    int nheaders;
    int conns;
    double rate, duration, warmup, timeout;
    int64_t id_lo, id_hi;
    bool id_random, once;
};

static struct opts o = {
    .method = "GET", .ctype = "application/json", .conns = 200,
    .duration = 10, .timeout = 10, .id_lo = 1, .id_hi = 1,
};

/* target */
static struct sockaddr_storage addr;
static socklen_t addrlen;
static char host_hdr[300];
static char path_pre[2048], path_suf[2048];
static bool path_has_id;
static bool is_head;

/* state */
static struct conn *conns;
static int epfd;
static int idle_head = -1;
static int64_t t0, t_warm, t_end;
static uint64_t next_k;          /* open loop: next request number */
static uint64_t id_counter;
static uint64_t rng = 0x9E3779B97F4A7C15ULL;
static bool ids_exhausted;

/* results */
static uint32_t *hist;
static uint64_t n_sent, n_recorded, n_ok, n_fail;
static uint64_t n_win, n_win_ok; /* closed loop: answered inside the window */
static uint64_t e_connect, e_reset, e_timeout, e_parse, e_status;
static uint64_t n_retried;
static bool idempotent;
static uint64_t status_count[600];
static int64_t lat_max_ns, lat_sum_ok_ns;
static uint64_t max_backlog;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *msg)
{
    fprintf(stderr, "loadgen: %s\n", msg);
    exit(2);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: loadgen --url http://HOST:PORT/path[{id}] [options]\n"
            "  -m, --method M        GET, HEAD, POST, PUT, DELETE (default GET)\n"
            "  -d, --body S          request body (sent with Content-Type, -T)\n"
            "  -T, --content-type S  default application/json\n"
            "  -H, --header 'K: V'   extra header (repeatable)\n"
            "  -c, --conns N         connections (default 200)\n"
            "  -r, --rate R          open loop at R requests/s; 0 = closed loop (default 0)\n"
            "  -z, --duration S      seconds, including warm-up (default 10)\n"
            "  -w, --warmup S        seconds not recorded at the start (default 0)\n"
            "  -t, --timeout S       per-request timeout (default 10)\n"
            "  -i, --ids LO-HI       id range for {id} (default 1-1)\n"
            "      --id-order seq|random\n"
            "      --once            each id once; stop when exhausted (closed loop)\n"
            "  -o, --out FILE        JSON output (default stdout)\n"
            "  -l, --label S         label copied into the JSON\n");
    exit(2);
}

static void parse_url(const char *url)
{
    if (strncmp(url, "http://", 7) != 0)
        die("only http:// URLs are supported");
    const char *h = url + 7;
    const char *slash = strchr(h, '/');
    size_t hl = slash ? (size_t)(slash - h) : strlen(h);
    if (hl == 0 || hl >= sizeof(host_hdr))
        die("bad host in URL");
    memcpy(host_hdr, h, hl);
    host_hdr[hl] = 0;
    const char *path = slash ? slash : "/";
    const char *ph = strstr(path, "{id}");
    if (ph) {
        path_has_id = true;
        snprintf(path_pre, sizeof(path_pre), "%.*s", (int)(ph - path), path);
        snprintf(path_suf, sizeof(path_suf), "%s", ph + 4);
    } else {
        snprintf(path_pre, sizeof(path_pre), "%s", path);
    }

    char host[300], port[16] = "80";
    if (host_hdr[0] == '[') {
        const char *rb = strchr(host_hdr, ']');
        if (!rb)
            die("bad IPv6 host");
        snprintf(host, sizeof(host), "%.*s", (int)(rb - host_hdr - 1), host_hdr + 1);
        if (rb[1] == ':')
            snprintf(port, sizeof(port), "%s", rb + 2);
    } else {
        const char *colon = strrchr(host_hdr, ':');
        if (colon) {
            snprintf(host, sizeof(host), "%.*s", (int)(colon - host_hdr), host_hdr);
            snprintf(port, sizeof(port), "%s", colon + 1);
        } else {
            snprintf(host, sizeof(host), "%s", host_hdr);
        }
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "loadgen: %s: %s\n", host, gai_strerror(rc));
        exit(2);
    }
    memcpy(&addr, res->ai_addr, res->ai_addrlen);
    addrlen = res->ai_addrlen;
    freeaddrinfo(res);
}

/* ------------------------------------------------------------------ recording */

static void record(int64_t lat_ns, bool ok)
{
    if (!ok) {
        int64_t t = (int64_t)(o.timeout * 1e9);
        if (lat_ns < t)
            lat_ns = t;
    }
    int64_t b = lat_ns / BUCKET_NS;
    if (b >= HIST_BUCKETS)
        b = HIST_BUCKETS - 1;
    if (b < 0)
        b = 0;
    hist[b]++;
    n_recorded++;
    if (ok) {
        n_ok++;
        lat_sum_ok_ns += lat_ns;
    } else {
        n_fail++;
    }
    if (lat_ns > lat_max_ns)
        lat_max_ns = lat_ns;
}

/* ------------------------------------------------------------------ connections */

static void conn_push_idle(int i)
{
    conns[i].state = C_IDLE;
    if (conns[i].in_idle)
        return;
    conns[i].in_idle = true;
    conns[i].idle_next = idle_head;
    idle_head = i;
}

/* An idle connection, or -1. Entries whose connection died meanwhile are dropped. */
static int conn_pop_idle(void)
{
    while (idle_head >= 0) {
        int i = idle_head;
        idle_head = conns[i].idle_next;
        conns[i].in_idle = false;
        if (conns[i].state == C_IDLE)
            return i;
    }
    return -1;
}

static bool have_idle(void)
{
    while (idle_head >= 0 && conns[idle_head].state != C_IDLE) {
        conns[idle_head].in_idle = false;
        idle_head = conns[idle_head].idle_next;
    }
    return idle_head >= 0;
}

static void conn_open(int i)
{
    struct conn *c = &conns[i];
    c->fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        perror("loadgen: socket");
        exit(2);
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->state = C_CONNECTING;
    c->reused = false;
    c->rlen = 0;
    c->sent_ns = now_ns(); /* connect deadline */
    int rc = connect(c->fd, (struct sockaddr *)&addr, addrlen);
    if (rc < 0 && errno != EINPROGRESS) {
        e_connect++;
        close(c->fd);
        c->fd = -1;
        c->state = C_DEAD;
        return;
    }
    c->gen++;
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP,
                             .data.u64 = (uint64_t)c->gen << 32 | (uint32_t)i};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        perror("loadgen: epoll_ctl");
        exit(2);
    }
}

/* Close a connection; the request in flight on it fails, except in one case:
 * a reused keep-alive connection that the server closed before sending a byte
 * of the answer (it was closing the idle connection as the request went out).
 * An idempotent request (RFC 9110 9.2.2) is then sent again once on a new
 * connection, as HTTP clients do; its latency still runs from the first
 * attempt. The loop reopens dead connections. */
static void conn_fail(int i, uint64_t *counter, bool may_retry)
{
    struct conn *c = &conns[i];
    bool had_req = c->state == C_BUSY || c->retry;
    bool retry = may_retry && c->state == C_BUSY && c->reused && c->rlen == 0 && idempotent &&
                 !c->retry;
    if (c->fd >= 0) {
        epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    if (retry) {
        n_retried++;
        c->retry = true;
        conn_open(i);
        if (c->state == C_CONNECTING)
            return;
        counter = &e_connect;
    }
    if (had_req) {
        /* a request failed: counted only when it is inside the measured window */
        if (c->counted) {
            (*counter)++;
            record(now_ns() - c->start_ns, false);
        }
    } else if (c->state == C_CONNECTING) {
        (*counter)++; /* a connection failed, no request on it */
    }
    c->retry = false;
    c->state = C_DEAD;
}

static void conn_flush(int i);

/* The connection is up: idle, or resend the request it was reopened for. */
static void conn_connected(int i);

static int64_t next_id(void)
{
    uint64_t span = (uint64_t)(o.id_hi - o.id_lo + 1);
    if (o.id_random) {
        rng ^= rng >> 12;
        rng ^= rng << 25;
        rng ^= rng >> 27;
        return o.id_lo + (int64_t)((rng * 0x2545F4914F6CDD1DULL) % span);
    }
    uint64_t k = id_counter++;
    if (o.once && k + 1 >= span)
        ids_exhausted = true;
    return o.id_lo + (int64_t)(k % span);
}

static void conn_want_write(int i, bool on)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | (on ? EPOLLOUT : 0),
                             .data.u64 = (uint64_t)conns[i].gen << 32 | (uint32_t)i};
    epoll_ctl(epfd, EPOLL_CTL_MOD, conns[i].fd, &ev);
}

static void conn_flush(int i)
{
    struct conn *c = &conns[i];
    while (c->woff < c->wlen) {
        ssize_t n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
        if (n > 0) {
            c->woff += (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            conn_want_write(i, true);
            return;
        }
        if (n < 0 && errno == EINTR)
            continue;
        conn_fail(i, &e_reset, true);
        return;
    }
}

static size_t body_len;
static size_t wbuf_cap;

static void conn_connected(int i)
{
    struct conn *c = &conns[i];
    conn_want_write(i, false);
    if (!c->retry) {
        conn_push_idle(i);
        return;
    }
    c->retry = false;
    c->state = C_BUSY;
    c->woff = 0;
    c->rlen = 0;
    c->sent_ns = now_ns();
    conn_flush(i);
}

static void conn_send(int i, int64_t origin_ns, bool counted)
{
    struct conn *c = &conns[i];
    char idbuf[32] = "";
    if (path_has_id)
        snprintf(idbuf, sizeof(idbuf), "%" PRId64, next_id());
    int n = snprintf(c->wbuf, wbuf_cap, "%s %s%s%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: ringlet-loadgen\r\n",
                     o.method, path_pre, idbuf, path_suf, host_hdr);
    for (int h = 0; h < o.nheaders; h++)
        n += snprintf(c->wbuf + n, wbuf_cap - (size_t)n, "%s\r\n", o.headers[h]);
    if (o.body)
        n += snprintf(c->wbuf + n, wbuf_cap - (size_t)n, "Content-Type: %s\r\nContent-Length: %zu\r\n\r\n",
                      o.ctype, body_len);
    else
        n += snprintf(c->wbuf + n, wbuf_cap - (size_t)n, "\r\n");
    if (o.body) {
        memcpy(c->wbuf + n, o.body, body_len);
        n += (int)body_len;
    }
    c->wlen = (size_t)n;
    c->woff = 0;
    c->rlen = 0;
    c->state = C_BUSY;
    c->sent_ns = now_ns();
    c->start_ns = origin_ns ? origin_ns : c->sent_ns;
    c->counted = counted;
    n_sent++;
    conn_flush(i);
}

/* Parse a complete response in c->rbuf. Returns 1 complete, 0 need more, -1 bad.
 * Sets *status and *close_after. */
static int parse_response(struct conn *c, int *status, bool *close_after, bool eof)
{
    char *buf = c->rbuf;
    size_t len = c->rlen;
    char *hend = memmem(buf, len, "\r\n\r\n", 4);
    if (!hend)
        return len > 65536 ? -1 : 0;
    size_t hlen = (size_t)(hend - buf) + 4;
    if (len < 12 || memcmp(buf, "HTTP/1.", 7) != 0)
        return -1;
    int st = atoi(buf + 9);
    if (st < 100 || st > 599)
        return -1;
    if (st >= 100 && st < 200) { /* interim response: drop it and go on */
        memmove(buf, buf + hlen, len - hlen);
        c->rlen -= hlen;
        return parse_response(c, status, close_after, eof);
    }
    long long clen = -1;
    bool chunked = false, conn_close = buf[7] == '0';
    char *line = memchr(buf, '\n', hlen) + 1;
    while (line < hend) {
        char *eol = memchr(line, '\n', (size_t)(hend + 2 - line));
        if (!eol)
            break;
        size_t ll = (size_t)(eol - line);
        if (ll > 15 && strncasecmp(line, "content-length:", 15) == 0)
            clen = atoll(line + 15);
        else if (ll > 18 && strncasecmp(line, "transfer-encoding:", 18) == 0)
            chunked = memmem(line, ll, "chunked", 7) != NULL;
        else if (ll > 11 && strncasecmp(line, "connection:", 11) == 0) {
            if (memmem(line, ll, "close", 5))
                conn_close = true;
            else if (memmem(line, ll, "keep-alive", 10))
                conn_close = false;
        }
        line = eol + 1;
    }
    *status = st;
    *close_after = conn_close;
    if (is_head || st == 204 || st == 304)
        return 1;
    size_t blen = len - hlen;
    if (chunked) {
        size_t p = hlen;
        for (;;) {
            char *crlf = memmem(buf + p, len - p, "\r\n", 2);
            if (!crlf)
                return 0;
            unsigned long sz = strtoul(buf + p, NULL, 16);
            p = (size_t)(crlf - buf) + 2;
            if (sz == 0) {
                /* trailers end with an empty line */
                for (;;) {
                    char *e = memmem(buf + p, len - p, "\r\n", 2);
                    if (!e)
                        return 0;
                    if (e == buf + p)
                        return 1;
                    p = (size_t)(e - buf) + 2;
                }
            }
            if (len - p < sz + 2)
                return 0;
            p += sz + 2;
        }
    }
    if (clen >= 0)
        return blen >= (size_t)clen ? 1 : 0;
    /* no length: the body runs to the close */
    *close_after = true;
    return eof ? 1 : 0;
}

static void conn_readable(int i, uint64_t *done_out)
{
    struct conn *c = &conns[i];
    bool eof = false;
    for (;;) {
        if (c->rcap - c->rlen < 4096) {
            c->rcap *= 2;
            c->rbuf = realloc(c->rbuf, c->rcap);
            if (!c->rbuf)
                die("out of memory");
        }
        ssize_t n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
        if (n > 0) {
            c->rlen += (size_t)n;
            continue;
        }
        if (n == 0) {
            eof = true;
            break;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            break;
        if (errno == EINTR)
            continue;
        conn_fail(i, &e_reset, true);
        return;
    }
    if (c->state != C_BUSY) {
        /* unsolicited bytes or close on an idle connection (server idle close) */
        if (eof || c->rlen)
            conn_fail(i, &e_reset, true); /* not busy: no request fails, nothing counted */
        return;
    }
    int status = 0;
    bool close_after = false;
    int rc = c->rlen ? parse_response(c, &status, &close_after, eof) : 0;
    if (rc == 0) {
        if (eof)
            conn_fail(i, &e_reset, true);
        return;
    }
    if (rc < 0) {
        conn_fail(i, &e_parse, false);
        return;
    }
    int64_t t = now_ns();
    bool ok = status >= 200 && status < 300;
    if (status > 0 && status < 600)
        status_count[status]++;
    if (!ok)
        e_status++;
    if (c->counted) {
        record(t - c->start_ns, ok);
        if (t <= t_end) {
            n_win++;
            n_win_ok += ok;
        }
    }
    (*done_out)++;
    c->reused = true;
    c->rlen = 0;
    if (close_after || eof) {
        epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
        c->state = C_DEAD;
        return;
    }
    conn_push_idle(i);
}

/* ------------------------------------------------------------------ output */

static double bucket_ms(int64_t b)
{
    return (double)((b + 1) * BUCKET_NS) / 1e6;
}

static double quantile_ms(double q)
{
    if (n_recorded == 0)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)n_recorded + 0.999999999);
    if (rank < 1)
        rank = 1;
    uint64_t acc = 0;
    for (int64_t b = 0; b < HIST_BUCKETS; b++) {
        acc += hist[b];
        if (acc >= rank) {
            double v = bucket_ms(b);
            double mx = (double)lat_max_ns / 1e6;
            return v > mx ? mx : v;
        }
    }
    return (double)lat_max_ns / 1e6;
}

static void write_json(FILE *f, double window_s, double elapsed_s)
{
    fprintf(f, "{\"tool\":\"loadgen\",\"label\":\"%s\",\"method\":\"%s\",\"url\":\"%s\",",
            o.label ? o.label : "", o.method, o.url);
    fprintf(f, "\"mode\":\"%s\",\"target_rate\":%.3f,\"conns\":%d,", o.rate > 0 ? "open" : "closed",
            o.rate, o.conns);
    fprintf(f, "\"duration_s\":%.3f,\"warmup_s\":%.3f,\"window_s\":%.6f,\"elapsed_s\":%.6f,", o.duration,
            o.warmup, window_s, elapsed_s);
    fprintf(f, "\"timeout_s\":%.3f,\"ids_exhausted\":%s,\"max_backlog\":%" PRIu64 ",", o.timeout,
            ids_exhausted ? "true" : "false", max_backlog);
    fprintf(f, "\"retried\":%" PRIu64 ",", n_retried);
    fprintf(f, "\"sent\":%" PRIu64 ",\"recorded\":%" PRIu64 ",\"ok\":%" PRIu64 ",\"failed\":%" PRIu64 ",",
            n_sent, n_recorded, n_ok, n_fail);
    fprintf(f,
            "\"errors\":{\"connect\":%" PRIu64 ",\"reset\":%" PRIu64 ",\"timeout\":%" PRIu64
            ",\"parse\":%" PRIu64 ",\"status\":%" PRIu64 "},",
            e_connect, e_reset, e_timeout, e_parse, e_status);
    fprintf(f, "\"status\":{");
    bool first = true;
    for (int s = 0; s < 600; s++) {
        if (status_count[s]) {
            fprintf(f, "%s\"%d\":%" PRIu64, first ? "" : ",", s, status_count[s]);
            first = false;
        }
    }
    fprintf(f, "},");
    uint64_t n_rate = o.rate > 0 ? n_recorded : n_win, n_rate_ok = o.rate > 0 ? n_ok : n_win_ok;
    fprintf(f, "\"rate\":%.3f,\"ok_rate\":%.3f,", window_s > 0 ? (double)n_rate / window_s : 0,
            window_s > 0 ? (double)n_rate_ok / window_s : 0);
    fprintf(f,
            "\"latency_ms\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f,"
            "\"mean_ok\":%.3f},",
            quantile_ms(0.50), quantile_ms(0.90), quantile_ms(0.99), quantile_ms(0.999),
            (double)lat_max_ns / 1e6, n_ok ? (double)lat_sum_ok_ns / (double)n_ok / 1e6 : 0.0);
    fprintf(f, "\"hist_10us\":[");
    first = true;
    for (int64_t b = 0; b < HIST_BUCKETS; b++) {
        if (hist[b]) {
            fprintf(f, "%s[%" PRId64 ",%u]", first ? "" : ",", b, hist[b]);
            first = false;
        }
    }
    fprintf(f, "]}\n");
}

/* ------------------------------------------------------------------ main loop */

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"url", required_argument, 0, 'u'},     {"method", required_argument, 0, 'm'},
        {"body", required_argument, 0, 'd'},    {"content-type", required_argument, 0, 'T'},
        {"header", required_argument, 0, 'H'},  {"conns", required_argument, 0, 'c'},
        {"rate", required_argument, 0, 'r'},    {"duration", required_argument, 0, 'z'},
        {"warmup", required_argument, 0, 'w'},  {"timeout", required_argument, 0, 't'},
        {"ids", required_argument, 0, 'i'},     {"id-order", required_argument, 0, 'O'},
        {"once", no_argument, 0, '1'},          {"out", required_argument, 0, 'o'},
        {"label", required_argument, 0, 'l'},   {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "u:m:d:T:H:c:r:z:w:t:i:o:l:h", lo, NULL)) != -1) {
        switch (ch) {
        case 'u': o.url = optarg; break;
        case 'm': o.method = optarg; break;
        case 'd': o.body = optarg; break;
        case 'T': o.ctype = optarg; break;
        case 'H':
            if (o.nheaders == MAX_HEADERS)
                die("too many headers");
            o.headers[o.nheaders++] = optarg;
            break;
        case 'c': o.conns = atoi(optarg); break;
        case 'r': o.rate = atof(optarg); break;
        case 'z': o.duration = atof(optarg); break;
        case 'w': o.warmup = atof(optarg); break;
        case 't': o.timeout = atof(optarg); break;
        case 'i':
            if (sscanf(optarg, "%" SCNd64 "-%" SCNd64, &o.id_lo, &o.id_hi) != 2 || o.id_lo > o.id_hi)
                die("--ids wants LO-HI");
            break;
        case 'O':
            if (strcmp(optarg, "random") == 0)
                o.id_random = true;
            else if (strcmp(optarg, "seq") != 0)
                die("--id-order is seq or random");
            break;
        case '1': o.once = true; break;
        case 'o': o.out = optarg; break;
        case 'l': o.label = optarg; break;
        default: usage();
        }
    }
    if (!o.url || optind != argc)
        usage();
    if (o.conns < 1 || o.conns > 100000 || o.duration <= 0 || o.warmup < 0 ||
        o.warmup >= o.duration || o.timeout <= 0 || o.rate < 0)
        die("bad numeric option");
    if (o.once && o.rate > 0)
        die("--once is for closed loop only");
    is_head = strcmp(o.method, "HEAD") == 0;
    idempotent = strcmp(o.method, "POST") != 0 && strcmp(o.method, "PATCH") != 0;
    parse_url(o.url);
    body_len = o.body ? strlen(o.body) : 0;
    wbuf_cap = 4096 + sizeof(path_pre) + sizeof(path_suf) + body_len;
    for (int h = 0; h < o.nheaders; h++)
        wbuf_cap += strlen(o.headers[h]) + 2;

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)o.conns + 64) {
        rl.rlim_cur = rl.rlim_max < (rlim_t)o.conns + 64 ? rl.rlim_max : (rlim_t)o.conns + 64;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    hist = calloc((size_t)HIST_BUCKETS, sizeof(*hist));
    conns = calloc((size_t)o.conns, sizeof(*conns));
    if (!hist || !conns)
        die("out of memory");
    epfd = epoll_create1(EPOLL_CLOEXEC);
    for (int i = 0; i < o.conns; i++) {
        conns[i].wbuf = malloc(wbuf_cap);
        conns[i].rcap = RBUF_INIT;
        conns[i].rbuf = malloc(RBUF_INIT);
        if (!conns[i].wbuf || !conns[i].rbuf)
            die("out of memory");
        conn_open(i);
    }

    /* Wait (up to 5 s) for the connections before the clock starts. */
    struct epoll_event evs[512];
    int64_t deadline = now_ns() + 5000000000LL;
    int pending = o.conns;
    while (pending > 0 && now_ns() < deadline && !interrupted) {
        int n = epoll_wait(epfd, evs, 512, 100);
        for (int k = 0; k < n; k++) {
            int i = (int)(uint32_t)evs[k].data.u64;
            struct conn *c = &conns[i];
            if (c->state != C_CONNECTING || (uint32_t)(evs[k].data.u64 >> 32) != c->gen)
                continue;
            int err = 0;
            socklen_t el = sizeof(err);
            getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
            if (err || (evs[k].events & (EPOLLERR | EPOLLHUP))) {
                conn_fail(i, &e_connect, false);
            } else {
                conn_connected(i);
            }
            pending--;
        }
    }

    t0 = now_ns();
    t_warm = t0 + (int64_t)(o.warmup * 1e9);
    t_end = t0 + (int64_t)(o.duration * 1e9);
    int64_t drain_deadline = t_end + (int64_t)(o.timeout * 1e9) + 1000000000LL;
    int64_t timeout_ns = (int64_t)(o.timeout * 1e9);
    double interval_ns = o.rate > 0 ? 1e9 / o.rate : 0;
    int64_t last_reconnect_scan = 0;
    uint64_t done = 0;

    for (;;) {
        int64_t t = now_ns();
        if (interrupted)
            break;

        /* Send what is due. */
        if (o.rate > 0) {
            for (;;) {
                int64_t intended = t0 + (int64_t)((double)next_k * interval_ns);
                if (intended > t || intended >= t_end)
                    break;
                int i = conn_pop_idle();
                if (i < 0) {
                    int64_t upto = t < t_end ? t : t_end;
                    uint64_t backlog = (uint64_t)((double)(upto - intended) / interval_ns) + 1;
                    if (backlog > max_backlog)
                        max_backlog = backlog;
                    break;
                }
                conn_send(i, intended, intended >= t_warm);
                next_k++;
            }
        } else if (t < t_end && !ids_exhausted) {
            int i;
            while (!ids_exhausted && (i = conn_pop_idle()) >= 0)
                conn_send(i, 0, t >= t_warm);
        }

        /* Done? */
        bool sending_over = o.rate > 0
                                ? t0 + (int64_t)((double)next_k * interval_ns) >= t_end
                                : (t >= t_end || ids_exhausted);
        int busy = 0;
        for (int i = 0; i < o.conns; i++)
            busy += conns[i].state == C_BUSY || conns[i].retry;
        if (sending_over && busy == 0)
            break;
        if (t >= drain_deadline)
            break;

        /* Timeouts and reconnects, every 10 ms. */
        if (t - last_reconnect_scan > 10000000LL) {
            last_reconnect_scan = t;
            for (int i = 0; i < o.conns; i++) {
                struct conn *c = &conns[i];
                if ((c->state == C_BUSY || c->state == C_CONNECTING) && t - c->sent_ns > timeout_ns)
                    conn_fail(i, &e_timeout, false);
                if (c->state == C_DEAD && !sending_over)
                    conn_open(i);
            }
        }

        /* Wait for I/O or the next intended send. */
        int64_t wait_ns = 10000000LL;
        if (o.rate > 0 && !sending_over && have_idle()) {
            int64_t intended = t0 + (int64_t)((double)next_k * interval_ns);
            wait_ns = intended - now_ns();
            if (wait_ns < 0)
                wait_ns = 0;
            if (wait_ns > 10000000LL)
                wait_ns = 10000000LL;
        }
        struct timespec ts = {.tv_sec = 0, .tv_nsec = wait_ns};
        int n = epoll_pwait2(epfd, evs, 512, &ts, NULL);
        if (n < 0 && errno == ENOSYS) {
            n = epoll_wait(epfd, evs, 512, (int)(wait_ns / 1000000));
        }
        for (int k = 0; k < n; k++) {
            int i = (int)(uint32_t)evs[k].data.u64;
            struct conn *c = &conns[i];
            uint32_t e = evs[k].events;
            if (c->state == C_DEAD || (uint32_t)(evs[k].data.u64 >> 32) != c->gen)
                continue;
            if (c->state == C_CONNECTING) {
                int err = 0;
                socklen_t el = sizeof(err);
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
                if (err || (e & (EPOLLERR | EPOLLHUP))) {
                    conn_fail(i, &e_connect, false);
                } else if (e & EPOLLOUT) {
                    conn_connected(i);
                }
                continue;
            }
            if ((e & EPOLLOUT) && c->state == C_BUSY) {
                conn_flush(i);
                if (c->state == C_BUSY && c->woff == c->wlen)
                    conn_want_write(i, false);
            }
            if (c->state != C_DEAD && (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
                conn_readable(i, &done);
        }
    }

    /* Whatever is still unanswered or unsent at the end is a failure. */
    int64_t t_stop = now_ns();
    for (int i = 0; i < o.conns; i++)
        if (conns[i].state == C_BUSY || conns[i].retry)
            conn_fail(i, &e_timeout, false);
    if (o.rate > 0) {
        while (t0 + (int64_t)((double)next_k * interval_ns) < t_end) {
            int64_t intended = t0 + (int64_t)((double)next_k * interval_ns);
            if (intended >= t_warm) {
                record(t_stop - intended, false);
                e_timeout++;
            }
            next_k++;
        }
    }

    double window_s, elapsed_s = (double)(t_stop - t0) / 1e9;
    if (o.rate > 0)
        window_s = o.duration - o.warmup;
    else {
        int64_t stop = t_stop < t_end ? t_stop : t_end;
        window_s = (double)(stop - t_warm) / 1e9;
    }
    FILE *f = stdout;
    if (o.out && !(f = fopen(o.out, "w"))) {
        perror(o.out);
        return 2;
    }
    write_json(f, window_s, elapsed_s);
    if (f != stdout)
        fclose(f);
    return interrupted ? 1 : 0;
}
