/*
 * resolve: host name lookups on the ring, for the database pool.
 *
 * libpq resolves a host name with getaddrinfo() inside PQconnectStart, which
 * blocks the thread for as long as DNS takes (seconds when the cluster DNS
 * is down). The pool instead asks this resolver and gives libpq the answer
 * as `hostaddr` (keeping `host` for TLS). Like glibc's stub resolver it
 * reads /etc/hosts, then asks the nameservers of /etc/resolv.conf over UDP,
 * name by name along the search list (ndots, timeout, attempts), A first,
 * then AAAA; unlike it, every wait is a ring operation or a ring timer, and
 * the whole lookup is bounded by a deadline. The parsing is in dns.h.
 *
 * One lookup at a time per resolver; the result comes through the callback,
 * never from inside resolve_start().
 */
#ifndef RINGLET_RESOLVE_H
#define RINGLET_RESOLVE_H

#include <stdbool.h>
#include <stdint.h>

#include "ringlet/dns.h"
#include "ringlet/ring.h"

#define RESOLVE_ANSWER_MAX 1232 /* the largest UDP answer we read (EDNS's safe size) */

struct resolver;

/*
 * A lookup ended. `err` is 0 with `n` >= 1 addresses (and the smallest TTL of
 * the answer, 0 for /etc/hosts), or a message saying why it failed (static
 * text or the resolver's own buffer, valid during the call).
 */
typedef void (*resolve_cb)(struct resolver *r, const char *err, const struct dns_addr *addrs,
                           unsigned n, uint32_t ttl_s);

struct resolver {
    struct ring *ring;
    struct ring_timer_list timers;
    resolve_cb cb;
    void *ctx; /* the owner's */
    bool busy;

    /* the lookup in progress */
    struct dns_conf conf;
    char cand[DNS_MAX_CANDIDATES][DNS_MAX_NAME + 1];
    unsigned ncand, ci; /* candidates, the one being asked */
    uint16_t qtype, id; /* the question in flight */
    unsigned server;    /* index into conf.servers (or the default) */
    unsigned attempt;   /* rounds over the servers so far */
    bool servfail;      /* some server failed: say so if nothing is found */
    int next;           /* the step once the question's operations are back */
    int fd;             /* UDP socket of the question in flight, -1 when none */
    unsigned ops;       /* ring operations in flight */
    bool recv_armed;    /* the question's receive is in flight and wanted */
    struct ring_op send_op, recv_op, cancel_op, close_op;
    struct ring_timer try_timer; /* this question on this server */
    struct ring_timer deadline;  /* the whole lookup */
    uint32_t rng;
    uint8_t query[DNS_QUERY_MAX];
    size_t qlen;
    uint8_t answer[RESOLVE_ANSWER_MAX];
    struct dns_addr addrs[DNS_MAX_ADDRS];
    unsigned naddrs;
    uint32_t ttl_s; /* the smallest TTL of the answer */
    char err[160];
};

/* Prepare a resolver on `ring` (nothing is opened until a lookup). */
void resolver_init(struct resolver *r, struct ring *ring, resolve_cb cb, void *ctx);

/*
 * Start looking up `name` (a valid host name, see dns_name_valid), giving up
 * after `deadline_ms`. -EBUSY when a lookup is in progress, -EINVAL for a
 * name that cannot be looked up. The files are read here (local, small).
 */
int resolve_start(struct resolver *r, const char *name, unsigned deadline_ms);

/*
 * Stop a lookup in progress without calling back. Its receive is cancelled
 * on the ring and its socket closed once that is back; until then
 * resolve_start() answers -EBUSY. On the exit path, where the ring does not
 * run again, the owner closes `fd` itself if it is still open.
 */
void resolve_cancel(struct resolver *r);

#endif
