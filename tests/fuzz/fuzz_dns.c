/*
 * fuzz_dns: the stub resolver's parsers (include/ringlet/dns.h), which read
 * answers from the network and the system's resolv.conf and hosts files.
 *
 * Input: byte 0 = control: bit 0 asks AAAA instead of A, bits 1-4 pick max
 * (0..DNS_MAX_ADDRS), bit 7 expects id 0x1234 instead of the message's own
 * (so that most inputs pass the id check); the rest is a DNS answer to
 * "db.example.com". The whole input is also resolv.conf text and hosts
 * text, and its first line a name to expand and look up.
 *
 * dns_parse_answer: *n <= max, nothing written past max (past *n when
 * DNS_OK), *n and *ttl_s zero unless DNS_OK, DNS_OK means *n > 0 addresses
 * of the family asked for, only from a response (QR) with our id and rcode
 * 0; a larger max keeps the same first addresses; the name's case and a
 * final dot do not matter.
 * dns_conf_parse: every field within its documented range, servers on port
 * 53, search domains valid names without a final dot.
 * dns_hosts_lookup: at most max, IPv4 before IPv6.
 * dns_candidates: at most DNS_MAX_CANDIDATES, no duplicates, each at most
 * DNS_MAX_NAME and starting with the name; valid names give valid ones.
 * dns_build_query: fails exactly for invalid names; the query with QR set
 * parses as an empty answer (DNS_NODATA) to itself.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "fuzz_common.h"
#include "ringlet/dns.h"

#define QNAME "db.example.com"

static void check_answer(const uint8_t *msg, size_t len, uint16_t id, uint16_t qtype, unsigned max)
{
    struct dns_addr out[DNS_MAX_ADDRS + 1], all[DNS_MAX_ADDRS + 1];
    unsigned n = 1234, n2 = 1234;
    uint32_t ttl = 1234, ttl2 = 1234;

    memset(out, 0x5A, sizeof(out));
    enum dns_result r = dns_parse_answer(msg, len, id, QNAME, qtype, out, max, &n, &ttl);
    FUZZ_CHECK(r >= DNS_OK && r <= DNS_MALFORMED, "result %d", r);
    FUZZ_CHECK(n <= max, "n %u > max %u", n, max);
    /* out[n..max) is scratch for a failed parse (dns.h), nothing past max is touched */
    for (unsigned i = r == DNS_OK ? n : max; i <= DNS_MAX_ADDRS; i++) {
        const uint8_t *p = (const uint8_t *)&out[i];
        for (size_t k = 0; k < sizeof(out[i]); k++)
            FUZZ_CHECK(p[k] == 0x5A, "address %u written past n %u (max %u)", i, n, max);
    }
    if (r != DNS_OK) {
        FUZZ_CHECK(n == 0 && ttl == 0, "result %d with n %u ttl %u", r, n, (unsigned)ttl);
    } else {
        FUZZ_CHECK(n > 0, "DNS_OK without addresses");
        FUZZ_CHECK(len >= 12 && (msg[0] << 8 | msg[1]) == id && (msg[2] & 0x80) &&
                       (msg[3] & 0x0F) == 0,
                   "DNS_OK from a message that is not our answer");
        FUZZ_CHECK(ttl <= INT32_MAX, "ttl %u", (unsigned)ttl);
    }
    for (unsigned i = 0; i < n; i++)
        FUZZ_CHECK(out[i].family == (qtype == DNS_TYPE_A ? AF_INET : AF_INET6),
                   "family %d for qtype %u", out[i].family, qtype);

    /* a larger max: the same outcome, the same first addresses */
    memset(all, 0x5A, sizeof(all));
    enum dns_result r2 =
        dns_parse_answer(msg, len, id, QNAME, qtype, all, DNS_MAX_ADDRS, &n2, &ttl2);
    if (max > 0)
        FUZZ_CHECK(r2 == r, "result %d with max %u, %d with max %d", r, max, r2, DNS_MAX_ADDRS);
    FUZZ_CHECK(n2 >= n && (n == 0 || memcmp(out, all, n * sizeof(out[0])) == 0),
               "max changed the addresses");
    if (r == DNS_OK)
        FUZZ_CHECK(n2 == n ? ttl2 == ttl : ttl2 <= ttl, "ttl %u of %u, ttl %u of %u", (unsigned)ttl,
                   n, (unsigned)ttl2, n2);

    /* the name's case and final dot do not matter */
    unsigned n3;
    uint32_t ttl3;
    enum dns_result r3 =
        dns_parse_answer(msg, len, id, "DB.Example.COM.", qtype, all, DNS_MAX_ADDRS, &n3, &ttl3);
    FUZZ_CHECK(r3 == r2 && n3 == n2 && ttl3 == ttl2, "case or final dot changed the result");
}

static void check_conf(const struct dns_conf *c)
{
    FUZZ_CHECK(c->nservers <= DNS_MAX_SERVERS, "nservers %u", c->nservers);
    for (unsigned i = 0; i < c->nservers; i++) {
        const struct sockaddr_storage *ss = &c->servers[i];
        if (ss->ss_family == AF_INET)
            FUZZ_CHECK(((const struct sockaddr_in *)ss)->sin_port == htons(53), "v4 port");
        else
            FUZZ_CHECK(ss->ss_family == AF_INET6 &&
                           ((const struct sockaddr_in6 *)ss)->sin6_port == htons(53),
                       "server %u family %d", i, ss->ss_family);
    }
    FUZZ_CHECK(c->nsearch <= DNS_MAX_SEARCH, "nsearch %u", c->nsearch);
    for (unsigned i = 0; i < c->nsearch; i++) {
        const char *s = c->search[i];
        size_t l = strnlen(s, sizeof(c->search[i]));
        FUZZ_CHECK(l > 0 && l <= DNS_MAX_NAME, "search %u length %zu", i, l);
        FUZZ_CHECK(s[l - 1] != '.' && dns_name_valid(s), "search domain \"%s\"", s);
    }
    FUZZ_CHECK(c->ndots <= 15, "ndots %u", c->ndots);
    FUZZ_CHECK(c->timeout_ms >= 1000 && c->timeout_ms <= 30000 && c->timeout_ms % 1000 == 0,
               "timeout %u", c->timeout_ms);
    FUZZ_CHECK(c->attempts >= 1 && c->attempts <= 5, "attempts %u", c->attempts);
}

static void check_hosts(const char *text, size_t len, const char *name, unsigned max)
{
    struct dns_addr out[DNS_MAX_ADDRS + 1];
    memset(out, 0x5A, sizeof(out));
    unsigned n = dns_hosts_lookup(text, len, name, out, max);
    FUZZ_CHECK(n <= max, "hosts: n %u > max %u", n, max);
    bool v6 = false;
    for (unsigned i = 0; i < n; i++) {
        FUZZ_CHECK(out[i].family == AF_INET || out[i].family == AF_INET6, "hosts family");
        FUZZ_CHECK(!(v6 && out[i].family == AF_INET), "hosts: IPv4 after IPv6");
        v6 = out[i].family == AF_INET6;
    }
    FUZZ_CHECK(((const uint8_t *)&out[n])[0] == 0x5A, "hosts: written past n");
}

static void check_candidates(const struct dns_conf *c, const char *name)
{
    char out[DNS_MAX_CANDIDATES][DNS_MAX_NAME + 1];
    unsigned n = dns_candidates(c, name, out);
    FUZZ_CHECK(n <= DNS_MAX_CANDIDATES, "candidates %u", n);
    size_t nlen = strlen(name);
    if (nlen && name[nlen - 1] == '.')
        nlen--;
    for (unsigned i = 0; i < n; i++) {
        size_t l = strnlen(out[i], DNS_MAX_NAME + 1);
        FUZZ_CHECK(l > 0 && l <= DNS_MAX_NAME, "candidate %u length %zu", i, l);
        FUZZ_CHECK(l >= nlen && memcmp(out[i], name, nlen) == 0 &&
                       (l == nlen || out[i][nlen] == '.'),
                   "candidate \"%s\" of \"%s\"", out[i], name);
        for (unsigned j = 0; j < i; j++)
            FUZZ_CHECK(strcasecmp(out[i], out[j]) != 0, "duplicate candidate \"%s\"", out[i]);
        if (dns_name_valid(name))
            FUZZ_CHECK(dns_name_valid(out[i]), "invalid candidate \"%s\"", out[i]);
    }
    if (dns_name_valid(name))
        FUZZ_CHECK(n > 0 || nlen > DNS_MAX_NAME, "no candidate for a valid name");
}

static void check_query(const char *name)
{
    uint8_t q[DNS_QUERY_MAX + 16];
    memset(q, 0x5A, sizeof(q));
    size_t len = dns_build_query(q, 0xABCD, name, DNS_TYPE_AAAA);
    FUZZ_CHECK((len != 0) == dns_name_valid(name), "build %zu for \"%s\"", len, name);
    for (size_t i = DNS_QUERY_MAX; i < sizeof(q); i++)
        FUZZ_CHECK(q[i] == 0x5A, "query written past DNS_QUERY_MAX");
    if (!len)
        return;
    FUZZ_CHECK(len <= DNS_QUERY_MAX, "query length %zu", len);
    q[2] |= 0x80; /* QR: the empty answer to itself */
    struct dns_addr out[1];
    unsigned n;
    uint32_t ttl;
    enum dns_result r = dns_parse_answer(q, len, 0xABCD, name, DNS_TYPE_AAAA, out, 1, &n, &ttl);
    FUZZ_CHECK(r == DNS_NODATA, "own query as answer: %d", r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;

    /* The whole input as configuration text. */
    const char *text = (const char *)data;
    struct dns_conf c;
    dns_conf_parse(&c, text, size);
    check_conf(&c);

    /* Its first line (or the first search domain) as a name. */
    char name[DNS_MAX_NAME + 8];
    const uint8_t *nl = memchr(data, '\n', size);
    size_t nlen = nl ? (size_t)(nl - data) : size;
    if (nlen >= sizeof(name))
        nlen = sizeof(name) - 1;
    memcpy(name, data, nlen);
    name[nlen] = '\0';
    check_candidates(&c, name);
    check_query(name);
    unsigned hmax = size ? data[0] % (DNS_MAX_ADDRS + 1) : DNS_MAX_ADDRS;
    check_hosts(text, size, name, hmax);
    check_hosts(text, size, "db", hmax);
    check_hosts(text, size, "localhost", DNS_MAX_ADDRS);
    if (c.nsearch) {
        check_candidates(&c, c.search[0]);
        check_hosts(text, size, c.search[0], DNS_MAX_ADDRS);
    }

    /* The rest as an answer. */
    if (size < 1)
        return 0;
    uint8_t ctl = data[0];
    const uint8_t *msg = data + 1;
    size_t len = size - 1;
    uint16_t qtype = (ctl & 1) ? DNS_TYPE_AAAA : DNS_TYPE_A;
    unsigned max = ((unsigned)ctl >> 1 & 0xF) % (DNS_MAX_ADDRS + 1);
    uint16_t id = 0x1234;
    if (!(ctl & 0x80) && len >= 2)
        id = (uint16_t)(msg[0] << 8 | msg[1]);
    check_answer(msg, len, id, qtype, max);
    return 0;
}
