/*
 * resolve: host name lookups on the ring (see include/ringlet/resolve.h).
 *
 * One question is in flight at a time: a UDP socket connected to one
 * nameserver, a send and a receive on the ring, and a timer. When the
 * question is settled (an answer, a failure, a timeout), the next step is
 * recorded in `next` and taken once the ring has returned every operation of
 * the old socket, so a late completion can never be mistaken for an answer
 * to the next question.
 */
#include "ringlet/resolve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RESOLV_CONF_PATH "/etc/resolv.conf"
#define HOSTS_PATH       "/etc/hosts"
#define RESOLV_CONF_MAX  (64 * 1024)   /* bytes of resolv.conf read */
#define HOSTS_MAX        (1024 * 1024) /* bytes of /etc/hosts read */
/* One question waits at most this long, even where resolv.conf allows more
 * (glibc's default is 5 s): a lookup is bounded as a whole by the caller's
 * deadline, and a dead first nameserver must leave time for the others. */
#define TRY_TIMEOUT_CAP_MS 2000

enum next_step {
    NEXT_NONE,
    NEXT_SERVER,    /* this server failed or timed out: the next one (or round) */
    NEXT_TYPE,      /* the name has no A record: ask for AAAA */
    NEXT_CANDIDATE, /* the name does not exist: the next search-list name */
    NEXT_DONE,      /* addresses found (in r->addrs, r->naddrs) */
    NEXT_FAIL,      /* give up with r->err */
};

static void try_start(struct resolver *r);

static int read_file(const char *path, size_t max, char **out, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    /* Sized by the file (hosts files are usually a few hundred bytes), at
     * least a page for files that report no size, never beyond `max`. */
    struct stat st;
    size_t want = fstat(fd, &st) == 0 && st.st_size > 0 ? (size_t)st.st_size : 4096;
    if (want > max)
        want = max;
    max = want;
    char *b = malloc(max);
    if (!b) {
        close(fd);
        return -ENOMEM;
    }
    size_t n = 0;
    while (n < max) {
        ssize_t k = read(fd, b + n, max - n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        n += (size_t)k;
    }
    close(fd);
    *out = b;
    *len = n;
    return 0;
}

static const char *path_of(const char *test_var, const char *dflt)
{
    const char *v = getenv(test_var); /* test suites point these at their own files */
    return v && *v ? v : dflt;
}

static uint16_t next_id(struct resolver *r)
{
    /* xorshift32, seeded from getrandom(): ids an off-path attacker cannot
     * guess from the previous ones (the kernel also picks a random port). */
    r->rng ^= r->rng << 13;
    r->rng ^= r->rng >> 17;
    r->rng ^= r->rng << 5;
    return (uint16_t)(r->rng >> 8);
}

static void send_cb(struct ring_op *op, int res, uint32_t flags);
static void recv_cb(struct ring_op *op, int res, uint32_t flags);
static void cancel_cb(struct ring_op *op, int res, uint32_t flags);
static void try_timer_cb(struct ring_timer *t);
static void deadline_cb(struct ring_timer *t);

void resolver_init(struct resolver *r, struct ring *ring, resolve_cb cb, void *ctx)
{
    memset(r, 0, sizeof(*r));
    r->ring = ring;
    r->cb = cb;
    r->ctx = ctx;
    r->fd = -1;
    r->send_op.cb = send_cb;
    r->recv_op.cb = recv_cb;
    r->cancel_op.cb = cancel_cb;
    r->try_timer.cb = try_timer_cb;
    r->deadline.cb = deadline_cb;
    ring_timer_list_add(ring, &r->timers);
    if (getrandom(&r->rng, sizeof(r->rng), GRND_NONBLOCK) != (ssize_t)sizeof(r->rng))
        r->rng = (uint32_t)time(NULL) ^ (uint32_t)getpid() << 16;
    if (!r->rng)
        r->rng = 0x9e3779b9u;
}

/* Settle the current question: record what comes next and stop the
 * question's operations; the step runs once none is left in the ring. */
static void settle(struct resolver *r, enum next_step next)
{
    if (r->next == NEXT_FAIL || r->next == NEXT_DONE)
        return; /* the lookup's end is decided already */
    r->next = next;
    ring_timer_disarm(&r->try_timer);
    if (r->recv_armed) {
        struct io_uring_sqe *sqe = ring_get_sqe(r->ring, &r->cancel_op);
        io_uring_prep_cancel(sqe, &r->recv_op, 0);
        r->ops++;
        r->recv_armed = false; /* its completion is expected, and ignored */
    }
}

static void finish(struct resolver *r, const char *err)
{
    ring_timer_disarm(&r->try_timer);
    ring_timer_disarm(&r->deadline);
    r->busy = false;
    r->next = NEXT_NONE;
    unsigned n = err ? 0 : r->naddrs;
    r->cb(r, err, r->addrs, n, r->ttl_s);
}

/* Take the recorded step, once the old question's operations are back. */
static void step(struct resolver *r)
{
    if (r->ops || r->next == NEXT_NONE)
        return;
    if (r->fd >= 0) {
        close(r->fd); /* a UDP socket with nothing in flight: returns at once */
        r->fd = -1;
    }
    if (!r->busy) {
        r->next = NEXT_NONE; /* cancelled: no call back */
        return;
    }
    unsigned nservers = r->conf.nservers ? r->conf.nservers : 1;
    switch (r->next) {
    case NEXT_SERVER:
        if (++r->server < nservers)
            break;
        r->server = 0;
        if (++r->attempt < r->conf.attempts)
            break;
        r->servfail = true; /* every server failed for this name: try the next name */
        /* fall through */
    case NEXT_CANDIDATE:
        r->qtype = DNS_TYPE_A;
        r->server = r->attempt = 0;
        if (++r->ci >= r->ncand) {
            finish(r, r->servfail ? "the DNS servers did not answer (timeout or SERVFAIL)"
                                  : "no such host (NXDOMAIN)");
            return;
        }
        break;
    case NEXT_TYPE:
        r->qtype = DNS_TYPE_AAAA;
        r->server = r->attempt = 0;
        break;
    case NEXT_DONE:
        finish(r, NULL);
        return;
    case NEXT_FAIL:
        finish(r, r->err);
        return;
    case NEXT_NONE:
        return;
    }
    r->next = NEXT_NONE;
    try_start(r);
}

static void op_back(struct resolver *r)
{
    r->ops--;
    step(r);
}

static void default_server(struct sockaddr_storage *ss)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    memset(ss, 0, sizeof(*ss));
    sin->sin_family = AF_INET;
    sin->sin_port = htons(53);
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
}

static void post_recv(struct resolver *r)
{
    struct io_uring_sqe *sqe = ring_get_sqe(r->ring, &r->recv_op);
    io_uring_prep_recv(sqe, r->fd, r->answer, sizeof(r->answer), 0);
    r->recv_armed = true;
    r->ops++;
}

/* Ask the current candidate name, type and server. */
static void try_start(struct resolver *r)
{
    struct sockaddr_storage ss;
    if (r->conf.nservers)
        ss = r->conf.servers[r->server];
    else
        default_server(&ss);
    socklen_t sl =
        ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    /* resolv.conf has no port syntax; the test suite runs its DNS server on
     * an unprivileged one */
    const char *tport = getenv("RINGLET_TEST_DNS_PORT");
    if (tport && *tport) {
        uint16_t port = htons((uint16_t)strtoul(tport, NULL, 10));
        if (ss.ss_family == AF_INET6)
            ((struct sockaddr_in6 *)&ss)->sin6_port = port;
        else
            ((struct sockaddr_in *)&ss)->sin_port = port;
    }
    r->fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    /* connect() on UDP only sets the peer (no packet): the kernel then drops
     * datagrams from anyone else, and reports ICMP errors to us. */
    if (r->fd < 0 || connect(r->fd, (struct sockaddr *)&ss, sl)) {
        r->next = NEXT_SERVER;
        r->servfail = true;
        /* nothing in flight: take the step from a timer, not recursively */
        ring_timer_arm(r->ring, &r->timers, &r->try_timer, 0);
        return;
    }
    r->id = next_id(r);
    r->qlen = dns_build_query(r->query, r->id, r->cand[r->ci], r->qtype);
    struct io_uring_sqe *sqe = ring_get_sqe(r->ring, &r->send_op);
    io_uring_prep_send(sqe, r->fd, r->query, r->qlen, 0);
    r->ops++;
    post_recv(r);
    unsigned t = r->conf.timeout_ms < TRY_TIMEOUT_CAP_MS ? r->conf.timeout_ms : TRY_TIMEOUT_CAP_MS;
    ring_timer_arm(r->ring, &r->timers, &r->try_timer, t);
}

static void send_cb(struct ring_op *op, int res, uint32_t flags)
{
    (void)flags;
    struct resolver *r = ring_container_of(op, struct resolver, send_op);
    if (res < 0 && r->busy && r->next == NEXT_NONE) {
        r->servfail = true;
        settle(r, NEXT_SERVER); /* unreachable network, ... */
    }
    op_back(r);
}

static void cancel_cb(struct ring_op *op, int res, uint32_t flags)
{
    (void)res;
    (void)flags;
    op_back(ring_container_of(op, struct resolver, cancel_op));
}

static void recv_cb(struct ring_op *op, int res, uint32_t flags)
{
    (void)flags;
    struct resolver *r = ring_container_of(op, struct resolver, recv_op);
    if (!r->recv_armed || !r->busy || r->next != NEXT_NONE) {
        op_back(r); /* the question is settled already: this is its echo */
        return;
    }
    r->recv_armed = false;
    if (res < 0) {
        r->servfail = true; /* ECONNREFUSED (nothing listens there), ... */
        settle(r, NEXT_SERVER);
        op_back(r);
        return;
    }
    unsigned n = 0;
    uint32_t ttl = 0;
    enum dns_result dr = dns_parse_answer(r->answer, (size_t)res, r->id, r->cand[r->ci], r->qtype,
                                          r->addrs, DNS_MAX_ADDRS, &n, &ttl);
    switch (dr) {
    case DNS_OK:
        r->naddrs = n;
        r->ttl_s = ttl;
        settle(r, NEXT_DONE);
        break;
    case DNS_NODATA:
        settle(r, r->qtype == DNS_TYPE_A ? NEXT_TYPE : NEXT_CANDIDATE);
        break;
    case DNS_NXDOMAIN:
        settle(r, NEXT_CANDIDATE);
        break;
    case DNS_SERVFAIL:
    case DNS_MALFORMED:
        r->servfail = true;
        settle(r, NEXT_SERVER);
        break;
    case DNS_MISMATCH:
        post_recv(r); /* not ours (a late answer to an old id): keep waiting */
        break;
    }
    op_back(r);
}

static void try_timer_cb(struct ring_timer *t)
{
    struct resolver *r = ring_container_of(t, struct resolver, try_timer);
    if (r->next != NEXT_NONE) {
        step(r); /* a step scheduled with nothing in flight */
        return;
    }
    r->servfail = true;
    settle(r, NEXT_SERVER);
    step(r);
}

static void deadline_cb(struct ring_timer *t)
{
    struct resolver *r = ring_container_of(t, struct resolver, deadline);
    snprintf(r->err, sizeof(r->err), "the DNS lookup timed out");
    settle(r, NEXT_FAIL);
    step(r);
}

int resolve_start(struct resolver *r, const char *name, unsigned deadline_ms)
{
    if (r->busy || r->ops)
        return -EBUSY;
    if (!dns_name_valid(name))
        return -EINVAL;
    r->busy = true;
    r->next = NEXT_NONE;
    r->naddrs = 0;
    r->ttl_s = 0;
    r->servfail = false;
    r->err[0] = '\0';
    ring_timer_arm(r->ring, &r->timers, &r->deadline, deadline_ms);

    char *text = NULL;
    size_t len = 0;
    /* /etc/hosts first, as nsswitch's usual "files dns" */
    if (read_file(path_of("RINGLET_TEST_HOSTS", HOSTS_PATH), HOSTS_MAX, &text, &len) == 0) {
        r->naddrs = dns_hosts_lookup(text, len, name, r->addrs, DNS_MAX_ADDRS);
        free(text);
        if (r->naddrs) {
            r->next = NEXT_DONE; /* answered from the timer, not from here */
            ring_timer_arm(r->ring, &r->timers, &r->try_timer, 0);
            return 0;
        }
    }
    text = NULL;
    len = 0;
    read_file(path_of("RINGLET_TEST_RESOLV_CONF", RESOLV_CONF_PATH), RESOLV_CONF_MAX, &text, &len);
    dns_conf_parse(&r->conf, text ? text : "", len);
    free(text);
    r->ncand = dns_candidates(&r->conf, name, r->cand);
    if (r->ncand == 0) {
        snprintf(r->err, sizeof(r->err), "the host name is too long to look up");
        r->next = NEXT_FAIL;
        ring_timer_arm(r->ring, &r->timers, &r->try_timer, 0);
        return 0;
    }
    r->ci = 0;
    r->qtype = DNS_TYPE_A;
    r->server = r->attempt = 0;
    try_start(r);
    return 0;
}

void resolve_cancel(struct resolver *r)
{
    if (!r->busy)
        return;
    r->busy = false;
    ring_timer_disarm(&r->deadline);
    ring_timer_disarm(&r->try_timer);
    if (r->next == NEXT_NONE)
        r->next = NEXT_FAIL; /* any step: step() sees !busy and only cleans up */
    if (r->recv_armed) {
        struct io_uring_sqe *sqe = ring_get_sqe(r->ring, &r->cancel_op);
        io_uring_prep_cancel(sqe, &r->recv_op, 0);
        r->ops++;
        r->recv_armed = false;
    }
    step(r);
}
