/*
 * dns: the pure parts of ringlet's stub resolver (no sockets, no ring).
 *
 * libpq resolves a host name with a blocking getaddrinfo() inside
 * PQconnectStart; ringlet resolves the name itself on the ring (see
 * include/ringlet/resolve.h) and hands libpq the address as `hostaddr`.
 * This module holds what that needs and what can be tested alone: reading
 * resolv.conf and hosts text, expanding a name with the search list, and
 * building and parsing DNS messages (RFC 1035). Every answer from the
 * network is untrusted: parsing is bounded, follows compression pointers
 * only backwards and at most DNS_MAX_HOPS times, and never reads outside
 * the message.
 */
#ifndef RINGLET_DNS_H
#define RINGLET_DNS_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DNS_MAX_NAME       253 /* presentation form, without the final dot */
#define DNS_MAX_SERVERS    3   /* as glibc: MAXNS */
#define DNS_MAX_SEARCH     6   /* search domains kept */
#define DNS_MAX_ADDRS      8   /* addresses kept from one answer */
#define DNS_MAX_HOPS       32  /* compression pointers followed per name */
#define DNS_MAX_CANDIDATES (DNS_MAX_SEARCH + 1)
#define DNS_QUERY_MAX      (12 + DNS_MAX_NAME + 2 + 4) /* header, name, type, class */
#define DNS_TYPE_A         1
#define DNS_TYPE_CNAME     5
#define DNS_TYPE_AAAA      28

/* What /etc/resolv.conf says, with glibc's defaults where it is silent. */
struct dns_conf {
    struct sockaddr_storage servers[DNS_MAX_SERVERS]; /* port 53 */
    unsigned nservers;                                /* 0: use 127.0.0.1 as glibc does */
    char search[DNS_MAX_SEARCH][DNS_MAX_NAME + 1];
    unsigned nsearch;
    unsigned ndots;      /* options ndots:N, default 1, at most 15 */
    unsigned timeout_ms; /* options timeout:N (seconds), default 5 s, at most 30 s */
    unsigned attempts;   /* options attempts:N, default 2, from 1 to 5 */
};

/* One resolved address, in network order. */
struct dns_addr {
    int family; /* AF_INET or AF_INET6 */
    union {
        struct in_addr v4;
        struct in6_addr v6;
    } u;
};

/*
 * Parse resolv.conf text (`len` bytes, need not be NUL-terminated) into
 * `out`. Unknown lines and malformed values are ignored, as glibc does:
 * `nameserver` (IPv4 or IPv6 literal, at most DNS_MAX_SERVERS), `search`
 * and `domain` (the last such line wins; `domain` is a one-entry search
 * list), `options ndots: timeout: attempts:`. Never fails.
 */
void dns_conf_parse(struct dns_conf *out, const char *text, size_t len);

/*
 * Look `name` up in hosts-file text (/etc/hosts format: address, then names;
 * `#` starts a comment; case-insensitive). Fills up to `max` addresses of
 * the lines that name it, in file order, IPv4 before IPv6; returns how many.
 */
unsigned dns_hosts_lookup(const char *text, size_t len, const char *name, struct dns_addr *out,
                          unsigned max);

/*
 * The names to query for `name`, in order (resolv.conf(5)): a name ending in
 * a dot is tried alone (without the dot); one with at least `ndots` dots is
 * tried as is, then with each search domain; one with fewer, with each
 * search domain first, then as is. Candidates longer than DNS_MAX_NAME are
 * skipped. Returns how many were written to `out`.
 */
unsigned dns_candidates(const struct dns_conf *conf, const char *name,
                        char out[DNS_MAX_CANDIDATES][DNS_MAX_NAME + 1]);

/* True when `name` is a host name we can query: labels of 1-63 letters,
 * digits, '-' or '_', at most DNS_MAX_NAME in all, an optional final dot. */
bool dns_name_valid(const char *name);

/*
 * Build a standard query (RD set) for `name` and `qtype` with `id` into
 * `out` (DNS_QUERY_MAX bytes). Returns its length, or 0 if the name is not
 * valid.
 */
size_t dns_build_query(uint8_t *out, uint16_t id, const char *name, uint16_t qtype);

enum dns_result {
    DNS_OK,       /* addresses found */
    DNS_NODATA,   /* the name exists, no record of this type */
    DNS_NXDOMAIN, /* the name does not exist */
    DNS_SERVFAIL, /* the server could not answer (SERVFAIL, REFUSED, ...): try the next */
    DNS_MISMATCH, /* not an answer to our query (id, flags, question): ignore it */
    DNS_MALFORMED /* truncated, bad pointers, ...: treat as a failed server */
};

/*
 * Parse `msg` as the answer to the query (`id`, `name`, `qtype`): check the
 * header and the echoed question, then collect the records of type `qtype`
 * owned by `name` or by a name it is a CNAME of (a chain in the answer
 * section, followed in order). Up to `max` addresses go to `out`, their count
 * to *n, the smallest TTL among them to *ttl_s. *n and *ttl_s are 0 unless
 * DNS_OK; out[0..max) may be written whatever the result.
 */
enum dns_result dns_parse_answer(const uint8_t *msg, size_t len, uint16_t id, const char *name,
                                 uint16_t qtype, struct dns_addr *out, unsigned max, unsigned *n,
                                 uint32_t *ttl_s);

#endif
