/*
 * Unit tests for dns: resolv.conf and hosts parsing, search-list candidates,
 * name validity, the query bytes, and answer parsing on hand-built messages
 * (valid, refused, forged, truncated at every length, with pointer loops).
 */
#include "ringlet/dns.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- resolv.conf ---- */

static struct dns_conf conf(const char *text)
{
    struct dns_conf c;
    memset(&c, 0xA5, sizeof(c)); /* everything must be set by the parser */
    dns_conf_parse(&c, text, strlen(text));
    return c;
}

static void assert_v4(const struct sockaddr_storage *ss, const char *addr)
{
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
    struct in_addr a;
    cr_assert_eq(inet_pton(AF_INET, addr, &a), 1);
    cr_assert_eq(s4->sin_family, AF_INET, "%s", addr);
    cr_assert_eq(s4->sin_port, htons(53), "%s", addr);
    cr_assert_eq(s4->sin_addr.s_addr, a.s_addr, "%s", addr);
}

static void assert_v6(const struct sockaddr_storage *ss, const char *addr, uint32_t scope)
{
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
    struct in6_addr a;
    cr_assert_eq(inet_pton(AF_INET6, addr, &a), 1);
    cr_assert_eq(s6->sin6_family, AF_INET6, "%s", addr);
    cr_assert_eq(s6->sin6_port, htons(53), "%s", addr);
    cr_assert_eq(memcmp(&s6->sin6_addr, &a, sizeof(a)), 0, "%s", addr);
    cr_assert_eq(s6->sin6_scope_id, scope, "%s", addr);
}

Test(dns_conf, defaults)
{
    const char *texts[] = {"", "\n\n", "# nothing\n", "options\n", "search\n", "nameserver\n"};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        struct dns_conf c = conf(texts[i]);
        cr_assert_eq(c.nservers, 0, "%s", texts[i]);
        cr_assert_eq(c.nsearch, 0, "%s", texts[i]);
        cr_assert_eq(c.ndots, 1);
        cr_assert_eq(c.timeout_ms, 5000);
        cr_assert_eq(c.attempts, 2);
    }
    struct dns_conf c;
    dns_conf_parse(&c, NULL, 0);
    cr_assert_eq(c.nservers, 0);
    cr_assert_eq(c.ndots, 1);
}

Test(dns_conf, nameservers_v4_v6_and_scope)
{
    struct dns_conf c = conf("nameserver 10.0.0.1\n"
                             "nameserver\t2001:db8::53   # trailing words are ignored\n"
                             "nameserver fe80::1%3\n");
    cr_assert_eq(c.nservers, 3);
    assert_v4(&c.servers[0], "10.0.0.1");
    assert_v6(&c.servers[1], "2001:db8::53", 0);
    assert_v6(&c.servers[2], "fe80::1", 3);
}

Test(dns_conf, at_most_three_nameservers_and_bad_ones_skipped)
{
    struct dns_conf c = conf("nameserver bogus\n"
                             "nameserver 1.2.3.4.5\n"
                             "nameserver fe80::1%eth0\n" /* named scope: skipped */
                             "nameserver fe80::1%\n"
                             "nameserver 2001:db8::zz\n"
                             " nameserver 9.9.9.9\n" /* glibc: keyword must start the line */
                             "nameservers 9.9.9.8\n"
                             "nameserver 1.1.1.1\n"
                             "nameserver 2.2.2.2\n"
                             "nameserver ::1\n"
                             "nameserver 4.4.4.4\n");
    cr_assert_eq(c.nservers, 3);
    assert_v4(&c.servers[0], "1.1.1.1");
    assert_v4(&c.servers[1], "2.2.2.2");
    assert_v6(&c.servers[2], "::1", 0);
}

Test(dns_conf, search_and_domain_last_wins)
{
    struct dns_conf c = conf("search a.example b.example\ndomain c.example\n");
    cr_assert_eq(c.nsearch, 1);
    cr_assert_str_eq(c.search[0], "c.example");

    c = conf("domain c.example extra.example\nsearch a.example. b.example..\n");
    cr_assert_eq(c.nsearch, 2);
    cr_assert_str_eq(c.search[0], "a.example");
    cr_assert_str_eq(c.search[1], "b.example");

    /* an empty search line is ignored; "search ." turns the list off */
    c = conf("search a.example\nsearch   \n");
    cr_assert_eq(c.nsearch, 1);
    c = conf("search a.example\nsearch .\n");
    cr_assert_eq(c.nsearch, 0);

    /* at most DNS_MAX_SEARCH kept; bad and over-long names skipped; a comment ends the line */
    char text[1024], longname[300];
    memset(longname, 'a', sizeof(longname));
    for (int i = 60; i < 290; i += 61)
        longname[i] = '.';
    longname[sizeof(longname) - 1] = '\0'; /* 299 characters, labels of 60 */
    snprintf(text, sizeof(text), "search %s bad..name l_a-b.x %s 1 2 3 4 5 6 7\n", longname, "a.b");
    c = conf(text);
    cr_assert_eq(c.nsearch, DNS_MAX_SEARCH);
    const char *want[] = {"l_a-b.x", "a.b", "1", "2", "3", "4"};
    for (unsigned i = 0; i < DNS_MAX_SEARCH; i++)
        cr_assert_str_eq(c.search[i], want[i]);
    c = conf("search x.example # y.example\n");
    cr_assert_eq(c.nsearch, 1);
    cr_assert_str_eq(c.search[0], "x.example");
}

Test(dns_conf, options_and_caps)
{
    struct dns_conf c = conf("options ndots:5 timeout:2 attempts:3 rotate edns0\n");
    cr_assert_eq(c.ndots, 5);
    cr_assert_eq(c.timeout_ms, 2000);
    cr_assert_eq(c.attempts, 3);

    c = conf("options ndots:99 timeout:100\noptions attempts:9\n");
    cr_assert_eq(c.ndots, 15);
    cr_assert_eq(c.timeout_ms, 30000);
    cr_assert_eq(c.attempts, 5);

    c = conf("options ndots:0 timeout:0 attempts:0\n");
    cr_assert_eq(c.ndots, 0);
    cr_assert_eq(c.timeout_ms, 1000);
    cr_assert_eq(c.attempts, 1);

    /* no digits: ignored; leading digits: taken, as atoi does */
    c = conf("options ndots:x timeout: attempts:-1 ndots:\noptions timeout:3s\n");
    cr_assert_eq(c.ndots, 1);
    cr_assert_eq(c.timeout_ms, 3000);
    cr_assert_eq(c.attempts, 2);

    c = conf("options ndots:99999999999999999999999\n");
    cr_assert_eq(c.ndots, 15);
}

Test(dns_conf, comments_crlf_garbage_and_no_final_newline)
{
    struct dns_conf c = conf("# nameserver 8.8.8.8\r\n"
                             "; nameserver 8.8.4.4\r\n"
                             "\x01\xff garbage line\r\n"
                             "nameserver 2001:db8::1\r\n"
                             "search a.example b.example\r\n"
                             "options ndots:2\r\n"
                             "nameserver 10.9.8.7");
    cr_assert_eq(c.nservers, 2);
    assert_v6(&c.servers[0], "2001:db8::1", 0);
    assert_v4(&c.servers[1], "10.9.8.7");
    cr_assert_eq(c.nsearch, 2);
    cr_assert_str_eq(c.search[1], "b.example");
    cr_assert_eq(c.ndots, 2);
}

Test(dns_conf, length_bounds_the_text)
{
    const char text[] = "nameserver 10.0.0.1\nnameserver 10.0.0.2";
    struct dns_conf c;
    /* cut inside the second address: "10.0." is a valid inet_aton form, "10.0.0.2" is not read */
    dns_conf_parse(&c, text, strlen("nameserver 10.0.0.1\nnameserver 10.0.0"));
    cr_assert_eq(c.nservers, 2);
    assert_v4(&c.servers[1], "10.0.0.0");
    dns_conf_parse(&c, text, strlen("nameserver 10.0.0.1\nnameserver"));
    cr_assert_eq(c.nservers, 1);
}

Test(dns_conf, nul_bytes_do_not_cut_tokens)
{
    /* found by fuzz_dns: "a.\0x" was read as the C string "a." */
    const char text[] = "nameserver 10.0.0.1\0junk\nsearch a.\0x b.example\n";
    struct dns_conf c;
    dns_conf_parse(&c, text, sizeof(text) - 1);
    cr_assert_eq(c.nservers, 0);
    cr_assert_eq(c.nsearch, 1);
    cr_assert_str_eq(c.search[0], "b.example");
}

/* ---- hosts ---- */

static const char hosts[] = "# comment 10.9.9.9 db\n"
                            "::1 localhost ip6-localhost\n"
                            "127.0.0.1\tlocalhost\n"
                            "10.0.0.1 DB.example.com db # primary\n"
                            "2001:db8::5 db\r\n"
                            "10.0.0.2 other   db\n"
                            "bogus db\n"
                            "10.0.0.300 db\n"
                            "fe80::1%eth0 db\n"
                            "10.0.0.1 db\n"
                            "10.0.0.3 dbx\n"
                            "10.0.0.4 xdb";

static unsigned lookup(const char *name, struct dns_addr *out, unsigned max)
{
    return dns_hosts_lookup(hosts, strlen(hosts), name, out, max);
}

static void assert_addr(const struct dns_addr *a, const char *text)
{
    char buf[INET6_ADDRSTRLEN];
    cr_assert_not_null(inet_ntop(a->family, &a->u, buf, sizeof(buf)));
    cr_assert_str_eq(buf, text);
}

Test(dns_hosts, aliases_case_and_v4_before_v6)
{
    struct dns_addr out[DNS_MAX_ADDRS];
    cr_assert_eq(lookup("db", out, DNS_MAX_ADDRS), 3);
    assert_addr(&out[0], "10.0.0.1");
    assert_addr(&out[1], "10.0.0.2");
    assert_addr(&out[2], "2001:db8::5");
    cr_assert_eq(out[2].family, AF_INET6);

    cr_assert_eq(lookup("db.EXAMPLE.com", out, DNS_MAX_ADDRS), 1);
    assert_addr(&out[0], "10.0.0.1");
    cr_assert_eq(lookup("DB.", out, DNS_MAX_ADDRS), 3, "a final dot is the same name");

    cr_assert_eq(lookup("localhost", out, DNS_MAX_ADDRS), 2);
    assert_addr(&out[0], "127.0.0.1");
    assert_addr(&out[1], "::1");
    cr_assert_eq(lookup("ip6-localhost", out, DNS_MAX_ADDRS), 1);
    assert_addr(&out[0], "::1");
}

Test(dns_hosts, comments_max_and_misses)
{
    struct dns_addr out[DNS_MAX_ADDRS];
    cr_assert_eq(lookup("primary", out, DNS_MAX_ADDRS), 0);
    cr_assert_eq(lookup("comment", out, DNS_MAX_ADDRS), 0);
    cr_assert_eq(lookup("bogus", out, DNS_MAX_ADDRS), 0);
    cr_assert_eq(lookup("d", out, DNS_MAX_ADDRS), 0);
    cr_assert_eq(lookup("", out, DNS_MAX_ADDRS), 0);
    cr_assert_eq(lookup(".", out, DNS_MAX_ADDRS), 0);
    cr_assert_eq(lookup("xdb", out, DNS_MAX_ADDRS), 1, "last line without a newline");
    cr_assert_eq(lookup("db", out, 0), 0);
    memset(out, 0, sizeof(out));
    cr_assert_eq(lookup("db", out, 2), 2);
    assert_addr(&out[1], "10.0.0.2");
    cr_assert_eq(out[2].family, 0, "nothing written past max");
    cr_assert_eq(lookup("localhost", out, 1), 1);
    assert_addr(&out[0], "127.0.0.1");
    /* the length bounds the text */
    cr_assert_eq(dns_hosts_lookup(hosts, strlen(hosts) - 1, "xdb", out, 1), 0);
}

/* ---- candidates ---- */

static struct dns_conf k8s(unsigned ndots)
{
    struct dns_conf c =
        conf("search ns.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n");
    c.ndots = ndots;
    return c;
}

static void assert_candidates(const struct dns_conf *c, const char *name, const char *const *want,
                              unsigned nwant)
{
    char out[DNS_MAX_CANDIDATES][DNS_MAX_NAME + 1];
    unsigned n = dns_candidates(c, name, out);
    cr_assert_eq(n, nwant, "%s: %u candidates", name, n);
    for (unsigned i = 0; i < n; i++)
        cr_assert_str_eq(out[i], want[i], "%s: candidate %u", name, i);
}

Test(dns_candidates, ndots_5_k8s)
{
    struct dns_conf c = k8s(5);
    const char *pg[] = {"postgres.ns.svc.cluster.local", "postgres.svc.cluster.local",
                        "postgres.cluster.local", "postgres"};
    assert_candidates(&c, "postgres", pg, 4);
    const char *ext[] = {"db.example.com.ns.svc.cluster.local", "db.example.com.svc.cluster.local",
                         "db.example.com.cluster.local", "db.example.com"};
    assert_candidates(&c, "db.example.com", ext, 4);
    const char *fqdn[] = {"db.example.com"};
    assert_candidates(&c, "db.example.com.", fqdn, 1);
    const char *deep[] = {"a.b.c.d.e.f", "a.b.c.d.e.f.ns.svc.cluster.local",
                          "a.b.c.d.e.f.svc.cluster.local", "a.b.c.d.e.f.cluster.local"};
    assert_candidates(&c, "a.b.c.d.e.f", deep, 4);
}

Test(dns_candidates, ndots_1)
{
    struct dns_conf c = k8s(1);
    const char *ext[] = {"db.example.com", "db.example.com.ns.svc.cluster.local",
                         "db.example.com.svc.cluster.local", "db.example.com.cluster.local"};
    assert_candidates(&c, "db.example.com", ext, 4);
    const char *pg[] = {"pg.ns.svc.cluster.local", "pg.svc.cluster.local", "pg.cluster.local",
                        "pg"};
    assert_candidates(&c, "pg", pg, 4);
    c.ndots = 0;
    const char *pg0[] = {"pg", "pg.ns.svc.cluster.local", "pg.svc.cluster.local",
                         "pg.cluster.local"};
    assert_candidates(&c, "pg", pg0, 4);
    c.nsearch = 0;
    const char *alone[] = {"pg"};
    assert_candidates(&c, "pg", alone, 1);
}

Test(dns_candidates, over_long_skipped_and_no_duplicates)
{
    struct dns_conf c = k8s(5);
    /* 235 characters: +".ns.svc.cluster.local" is 256 (skipped), the others fit */
    char name[DNS_MAX_NAME + 3];
    memset(name, 'a', 235);
    name[235] = '\0';
    for (int i = 50; i < 235; i += 51)
        name[i] = '.';
    char out[DNS_MAX_CANDIDATES][DNS_MAX_NAME + 1];
    cr_assert_eq(dns_candidates(&c, name, out), 3);
    cr_assert_eq(strlen(out[0]), 253);
    cr_assert_str_eq(out[0] + 235, ".svc.cluster.local");
    cr_assert_str_eq(out[1] + 235, ".cluster.local");
    cr_assert_str_eq(out[2], name);

    /* 253 is the limit; 254 (or 255 with the dot) gives nothing */
    memset(name, 'a', DNS_MAX_NAME + 2);
    for (int i = 50; i < DNS_MAX_NAME + 2; i += 51)
        name[i] = '.';
    name[DNS_MAX_NAME] = '.';
    name[DNS_MAX_NAME + 1] = '\0';
    cr_assert_eq(dns_candidates(&c, name, out), 1);
    cr_assert_eq(strlen(out[0]), DNS_MAX_NAME);
    name[DNS_MAX_NAME] = 'a';
    cr_assert_eq(dns_candidates(&c, name, out), 0);
    name[DNS_MAX_NAME + 1] = '.';
    name[DNS_MAX_NAME + 2] = '\0';
    cr_assert_eq(dns_candidates(&c, name, out), 0);

    c = conf("search a.example A.EXAMPLE. a.example x\n");
    const char *want[] = {"pg.a.example", "pg.x", "pg"};
    assert_candidates(&c, "pg", want, 3);
    /* enough dots: as is first, the duplicate search domains still dropped */
    c.ndots = 1;
    const char *want2[] = {"pg.x", "pg.x.a.example", "pg.x.x"};
    assert_candidates(&c, "pg.x", want2, 3);
    cr_assert_eq(dns_candidates(&c, "", out), 0);
    cr_assert_eq(dns_candidates(&c, ".", out), 0);
}

/* ---- names ---- */

Test(dns_name, valid_and_invalid)
{
    char l63[80], l64[80], n253[300], n254[300];
    memset(l63, 'a', 63);
    l63[63] = '\0';
    memset(l64, 'b', 64);
    l64[64] = '\0';
    memset(n253, 'c', 253);
    for (int i = 63; i < 253; i += 64)
        n253[i] = '.';
    n253[253] = '\0';
    memcpy(n254, n253, 253);
    n254[253] = 'd';
    n254[254] = '\0';

    const char *good[] = {"a", "db.example.com", "db.example.com.", "a_b-c.x", "0", l63, n253,
                          "-x"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        cr_assert(dns_name_valid(good[i]), "%s", good[i]);
    char n253dot[300];
    memcpy(n253dot, n253, 253);
    memcpy(n253dot + 253, ".", 2);
    cr_assert(dns_name_valid(n253dot));

    const char *bad[] = {"",      ".",        "..",  "a..b", ".a", "a b", "a/b",
                         "a.b..", "\xc3\xa9", "a:b", "a\tb", l64,  n254,  "a.b\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_not(dns_name_valid(bad[i]), "%s", bad[i]);
    cr_assert_not(dns_name_valid(NULL));
}

/* ---- queries ---- */

Test(dns_query, db_example_com_a_bytes)
{
    static const uint8_t want[] = {
        0x12, 0x34,                                     /* id */
        0x01, 0x00,                                     /* RD */
        0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* qd 1, an ns ar 0 */
        2,    'd',  'b',  7,    'e',  'x',  'a',  'm',  'p',
        'l',  'e',  3,    'c',  'o',  'm',  0,    0x00, 0x01, /* A */
        0x00, 0x01,                                           /* IN */
    };
    uint8_t q[DNS_QUERY_MAX];
    cr_assert_eq(dns_build_query(q, 0x1234, "db.example.com", DNS_TYPE_A), sizeof(want));
    cr_assert_arr_eq(q, want, sizeof(want));
    memset(q, 0, sizeof(q));
    cr_assert_eq(dns_build_query(q, 0x1234, "db.example.com.", DNS_TYPE_A), sizeof(want));
    cr_assert_arr_eq(q, want, sizeof(want));
    cr_assert_eq(dns_build_query(q, 0x1234, "db.example.com", DNS_TYPE_AAAA), sizeof(want));
    cr_assert_eq(q[sizeof(want) - 3], 28);
}

Test(dns_query, invalid_names_and_the_longest)
{
    uint8_t q[DNS_QUERY_MAX];
    cr_assert_eq(dns_build_query(q, 1, "", DNS_TYPE_A), 0);
    cr_assert_eq(dns_build_query(q, 1, "a..b", DNS_TYPE_A), 0);
    cr_assert_eq(dns_build_query(q, 1, "a b", DNS_TYPE_A), 0);
    char n253[260];
    memset(n253, 'x', 253);
    for (int i = 63; i < 253; i += 64)
        n253[i] = '.';
    n253[253] = '\0';
    cr_assert_eq(dns_build_query(q, 1, n253, DNS_TYPE_A), DNS_QUERY_MAX);
}

/* ---- answers ---- */

struct msg {
    uint8_t b[1024];
    size_t len;
};

static void put8(struct msg *m, unsigned v)
{
    cr_assert_lt(m->len, sizeof(m->b));
    m->b[m->len++] = (uint8_t)v;
}

static void put16(struct msg *m, unsigned v)
{
    put8(m, v >> 8);
    put8(m, v & 0xff);
}

static void put32(struct msg *m, uint32_t v)
{
    put16(m, v >> 16);
    put16(m, v & 0xffff);
}

/* Labels of `name` (no root label): a name then ends with labels_end or ptr. */
static void labels(struct msg *m, const char *name)
{
    while (*name) {
        size_t l = strcspn(name, ".");
        put8(m, (unsigned)l);
        for (size_t i = 0; i < l; i++)
            put8(m, (uint8_t)name[i]);
        name += l;
        if (*name == '.')
            name++;
    }
}

static void name(struct msg *m, const char *s)
{
    labels(m, s);
    put8(m, 0);
}

static void ptr(struct msg *m, size_t off)
{
    put16(m, 0xC000 | (unsigned)off);
}

#define ID    0xBEEF
#define QNAME "db.example.com"
#define QOFF  12 /* where the question's name starts */

static void header(struct msg *m, unsigned id, unsigned flags, unsigned qd, unsigned an)
{
    m->len = 0;
    put16(m, id);
    put16(m, flags);
    put16(m, qd);
    put16(m, an);
    put16(m, 0);
    put16(m, 0);
}

/* A standard answer header (QR RD RA, rcode) and the question for QNAME. */
static void start(struct msg *m, unsigned rcode, unsigned an, unsigned qtype)
{
    header(m, ID, 0x8180 | rcode, 1, an);
    name(m, QNAME);
    put16(m, qtype);
    put16(m, 1);
}

/* Type, class IN, TTL and rdlength of a record whose owner was just written. */
static void rr(struct msg *m, unsigned type, uint32_t t, unsigned rdlen)
{
    put16(m, type);
    put16(m, 1);
    put32(m, t);
    put16(m, rdlen);
}

static void a_rr(struct msg *m, uint32_t t, const char *v4)
{
    struct in_addr a;
    cr_assert_eq(inet_pton(AF_INET, v4, &a), 1);
    rr(m, DNS_TYPE_A, t, 4);
    memcpy(m->b + m->len, &a, 4);
    m->len += 4;
}

static void aaaa_rr(struct msg *m, uint32_t t, const char *v6)
{
    struct in6_addr a;
    cr_assert_eq(inet_pton(AF_INET6, v6, &a), 1);
    rr(m, DNS_TYPE_AAAA, t, 16);
    memcpy(m->b + m->len, &a, 16);
    m->len += 16;
}

static struct dns_addr addrs[DNS_MAX_ADDRS];
static unsigned got_n;
static uint32_t got_ttl;

static enum dns_result parse_as(const struct msg *m, uint16_t id, const char *qname, uint16_t qtype,
                                unsigned max)
{
    got_n = 99;
    got_ttl = 99;
    memset(addrs, 0, sizeof(addrs));
    return dns_parse_answer(m->b, m->len, id, qname, qtype, addrs, max, &got_n, &got_ttl);
}

static enum dns_result parse(const struct msg *m, uint16_t qtype)
{
    return parse_as(m, ID, QNAME, qtype, DNS_MAX_ADDRS);
}

Test(dns_answer, simple_a)
{
    struct msg m;
    start(&m, 0, 1, DNS_TYPE_A);
    ptr(&m, QOFF);
    a_rr(&m, 300, "10.0.0.1");
    cr_assert_eq(parse(&m, DNS_TYPE_A), DNS_OK);
    cr_assert_eq(got_n, 1);
    cr_assert_eq(got_ttl, 300);
    cr_assert_eq(addrs[0].family, AF_INET);
    assert_addr(&addrs[0], "10.0.0.1");
    /* the question is matched without regard to case, ours or theirs */
    cr_assert_eq(parse_as(&m, ID, "DB.Example.COM.", DNS_TYPE_A, DNS_MAX_ADDRS), DNS_OK);
}

Test(dns_answer, aaaa)
{
    struct msg m;
    start(&m, 0, 2, DNS_TYPE_AAAA);
    name(&m, "DB.EXAMPLE.COM");
    aaaa_rr(&m, 60, "2001:db8::7");
    ptr(&m, QOFF);
    a_rr(&m, 60, "10.0.0.1"); /* not the type asked for: ignored */
    cr_assert_eq(parse(&m, DNS_TYPE_AAAA), DNS_OK);
    cr_assert_eq(got_n, 1);
    cr_assert_eq(addrs[0].family, AF_INET6);
    assert_addr(&addrs[0], "2001:db8::7");
}

Test(dns_answer, two_a_min_ttl_and_top_bit_ttl)
{
    struct msg m;
    start(&m, 0, 2, DNS_TYPE_A);
    ptr(&m, QOFF);
    a_rr(&m, 300, "10.0.0.1");
    ptr(&m, QOFF);
    a_rr(&m, 60, "10.0.0.2");
    cr_assert_eq(parse(&m, DNS_TYPE_A), DNS_OK);
    cr_assert_eq(got_n, 2);
    cr_assert_eq(got_ttl, 60);
    assert_addr(&addrs[1], "10.0.0.2");

    start(&m, 0, 2, DNS_TYPE_A);
    ptr(&m, QOFF);
    a_rr(&m, 0x80000000u, "10.0.0.1"); /* RFC 2181: means 0 */
    ptr(&m, QOFF);
    a_rr(&m, 60, "10.0.0.2");
    cr_assert_eq(parse(&m, DNS_TYPE_A), DNS_OK);
    cr_assert_eq(got_ttl, 0);
}

/* db.example.com CNAME pg.example.com CNAME primary.internal A 10.1.2.3, plus noise. */
static void cname_chain(struct msg *m)
{
    start(m, 0, 5, DNS_TYPE_A);
    name(m, "other.example.com"); /* another name's A: ignored */
    a_rr(m, 5, "9.9.9.9");
    ptr(m, QOFF);
    rr(m, DNS_TYPE_CNAME, 600, 5);
    size_t pg = m->len;
    labels(m, "pg");
    ptr(m, QOFF + 3); /* "example.com" of the question */
    ptr(m, pg);
    rr(m, DNS_TYPE_CNAME, 120, 18);
    size_t primary = m->len;
    name(m, "primary.internal");
    ptr(m, QOFF); /* the original name again: no longer the target */
    a_rr(m, 7, "10.6.6.6");
    ptr(m, primary);
    a_rr(m, 30, "10.1.2.3");
}

Test(dns_answer, cname_chain_with_pointers)
{
    struct msg m;
    cname_chain(&m);
    cr_assert_eq(parse(&m, DNS_TYPE_A), DNS_OK);
    cr_assert_eq(got_n, 1);
    assert_addr(&addrs[0], "10.1.2.3");
    cr_assert_eq(got_ttl, 30);
}

Test(dns_answer, other_names_only_is_nodata)
{
    struct msg m;
    start(&m, 0, 2, DNS_TYPE_A);
    name(&m, "other.example.com");
    a_rr(&m, 5, "9.9.9.9");
    name(&m, "example.com");
    a_rr(&m, 5, "9.9.9.8");
    cr_assert_eq(parse(&m, DNS_TYPE_A), DNS_NODATA);
    cr_assert_eq(got_n, 0);
    cr_assert_eq(got_ttl, 0);
    start(&m, 0, 0, DNS_TYPE_A);
    cr_assert_eq(parse(&m, DNS_TYPE_A), DNS_NODATA);
    cr_assert_eq(got_n, 0);
}

Test(dns_answer, rcodes)
{
    struct msg m;
    start(&m, 3, 0, DNS_TYPE_A);
    cr_assert_eq(parse(&m, DNS_TYPE_A), DNS_NXDOMAIN);
    cr_assert_eq(got_n, 0);
    cr_assert_eq(got_ttl, 0);
    const unsigned fail[] = {1, 2, 4, 5, 9, 15};
    for (size_t i = 0; i < sizeof(fail) / sizeof(fail[0]); i++) {
        start(&m, fail[i], 0, DNS_TYPE_A);
        cr_assert_eq(parse(&m, DNS_TYPE_A), DNS_SERVFAIL, "rcode %u", fail[i]);
        cr_assert_eq(got_n, 0);
        /* without the question (some servers do that): still this server failing */
        header(&m, ID, 0x8180 | fail[i], 0, 0);
        cr_assert_eq(parse(&m, DNS_TYPE_A), DNS_SERVFAIL, "rcode %u, no question", fail[i]);
    }
    /* NXDOMAIN and NOERROR must echo the question */
    header(&m, ID, 0x8183, 0, 0);
    cr_assert_eq(parse(&m, DNS_TYPE_A), DNS_MISMATCH);
    header(&m, ID, 0x8180, 0, 0);
    cr_assert_eq(parse(&m, DNS_TYPE_A), DNS_MISMATCH);
    /* REFUSED for another question is not about ours */
    header(&m, ID, 0x8185, 1, 0);
    name(&m, "evil.example");
    put16(&m, DNS_TYPE_A);
    put16(&m, 1);
    cr_assert_eq(parse(&m, DNS_TYPE_A), DNS_MISMATCH);
}

Test(dns_answer, mismatches)
{
    struct msg m;
    start(&m, 0, 1, DNS_TYPE_A);
    ptr(&m, QOFF);
    a_rr(&m, 300, "10.0.0.1");
    cr_assert_eq(parse_as(&m, ID + 1, QNAME, DNS_TYPE_A, DNS_MAX_ADDRS), DNS_MISMATCH);
    cr_assert_eq(parse_as(&m, ID, "db.example.org", DNS_TYPE_A, DNS_MAX_ADDRS), DNS_MISMATCH);
    cr_assert_eq(parse_as(&m, ID, "example.com", DNS_TYPE_A, DNS_MAX_ADDRS), DNS_MISMATCH);
    cr_assert_eq(parse_as(&m, ID, "a..b", DNS_TYPE_A, DNS_MAX_ADDRS), DNS_MISMATCH);
    cr_assert_eq(parse(&m, DNS_TYPE_AAAA), DNS_MISMATCH);
    cr_assert_eq(got_n, 0);
    cr_assert_eq(got_ttl, 0);

    struct msg c = m;
    c.b[2] &= 0x7f; /* QR = 0: a query, not an answer */
    cr_assert_eq(parse(&c, DNS_TYPE_A), DNS_MISMATCH);
    c = m;
    c.b[2] |= 0x10; /* opcode 2 */
    cr_assert_eq(parse(&c, DNS_TYPE_A), DNS_MISMATCH);
    c = m;
    c.b[5] = 2; /* qdcount 2 */
    cr_assert_eq(parse(&c, DNS_TYPE_A), DNS_MISMATCH);
    c = m;
    c.b[QOFF + 16 + 3] = 3; /* class CH */
    cr_assert_eq(parse(&c, DNS_TYPE_A), DNS_MISMATCH);
    c = m;
    c.b[QOFF + 1] = 'x'; /* "xb.example.com" */
    cr_assert_eq(parse(&c, DNS_TYPE_A), DNS_MISMATCH);
}

/* Every prefix of a valid, untruncated answer is rejected, never accepted. */
static void all_prefixes(const struct msg *full, uint16_t qtype)
{
    cr_assert_eq(parse(full, qtype), DNS_OK);
    for (size_t len = 0; len < full->len; len++) {
        /* a copy of exactly `len` bytes, so ASan sees any read past it */
        uint8_t *b = malloc(len ? len : 1);
        cr_assert_not_null(b);
        memcpy(b, full->b, len);
        got_n = 99;
        got_ttl = 99;
        enum dns_result r =
            dns_parse_answer(b, len, ID, QNAME, qtype, addrs, DNS_MAX_ADDRS, &got_n, &got_ttl);
        free(b);
        cr_assert(r == DNS_MALFORMED || r == DNS_MISMATCH, "prefix %zu: %d", len, r);
        cr_assert_eq(got_n, 0, "prefix %zu", len);
        cr_assert_eq(got_ttl, 0, "prefix %zu", len);
    }
}

Test(dns_answer, every_truncation_is_rejected)
{
    struct msg m;
    start(&m, 0, 2, DNS_TYPE_A);
    ptr(&m, QOFF);
    a_rr(&m, 300, "10.0.0.1");
    name(&m, QNAME);
    a_rr(&m, 300, "10.0.0.2");
    all_prefixes(&m, DNS_TYPE_A);
    cname_chain(&m);
    all_prefixes(&m, DNS_TYPE_A);
    start(&m, 0, 1, DNS_TYPE_AAAA);
    ptr(&m, QOFF);
    aaaa_rr(&m, 1, "::1");
    all_prefixes(&m, DNS_TYPE_AAAA);
}

Test(dns_answer, tc_bit_uses_what_parses)
{
    struct msg m;
    start(&m, 0, 3, DNS_TYPE_A);
    m.b[2] |= 0x02; /* TC */
    ptr(&m, QOFF);
    a_rr(&m, 300, "10.0.0.1");
    ptr(&m, QOFF);
    a_rr(&m, 200, "10.0.0.2");
    size_t two = m.len;
    ptr(&m, QOFF);
    a_rr(&m, 100, "10.0.0.3");
    cr_assert_eq(parse(&m, DNS_TYPE_A), DNS_OK);
    cr_assert_eq(got_n, 3);
    m.len -= 2; /* the third record cut */
    cr_assert_eq(parse(&m, DNS_TYPE_A), DNS_OK);
    cr_assert_eq(got_n, 2);
    cr_assert_eq(got_ttl, 200);
    m.len = two - 3; /* the second record cut too */
    cr_assert_eq(parse(&m, DNS_TYPE_A), DNS_OK);
    cr_assert_eq(got_n, 1);
    m.len = QOFF + 16 + 4 + 1; /* nothing whole */
    cr_assert_eq(parse(&m, DNS_TYPE_A), DNS_SERVFAIL);
    cr_assert_eq(got_n, 0);
    cr_assert_eq(got_ttl, 0);
    m.len = QOFF + 16 + 4; /* the usual truncated answer: no records at all */
    cr_assert_eq(parse(&m, DNS_TYPE_A), DNS_SERVFAIL);
}

Test(dns_answer, pointer_loops_and_forward_pointers)
{
    struct msg m;
    /* an owner that points to itself */
    start(&m, 0, 1, DNS_TYPE_A);
    ptr(&m, m.len);
    a_rr(&m, 1, "10.0.0.1");
    cr_assert_eq(parse(&m, DNS_TYPE_A), DNS_MALFORMED);
    cr_assert_eq(got_n, 0);

    /* a forward pointer (to the next record's owner) */
    start(&m, 0, 2, DNS_TYPE_A);
    ptr(&m, m.len + 2 + 14);
    a_rr(&m, 1, "10.0.0.1");
    name(&m, QNAME);
    a_rr(&m, 1, "10.0.0.2");
    cr_assert_eq(parse(&m, DNS_TYPE_A), DNS_MALFORMED);

    /* a label then a pointer back to that label: backwards, but a loop */
    start(&m, 0, 1, DNS_TYPE_A);
    size_t at = m.len;
    labels(&m, "x");
    ptr(&m, at);
    a_rr(&m, 1, "10.0.0.1");
    cr_assert_eq(parse(&m, DNS_TYPE_A), DNS_MALFORMED);

    /* the question itself pointing to itself */
    header(&m, ID, 0x8180, 1, 0);
    ptr(&m, QOFF);
    put16(&m, DNS_TYPE_A);
    put16(&m, 1);
    cr_assert_eq(parse(&m, DNS_TYPE_A), DNS_MALFORMED);

    /* label types 01 and 10 */
    start(&m, 0, 1, DNS_TYPE_A);
    put8(&m, 0x40);
    put8(&m, 0);
    a_rr(&m, 1, "10.0.0.1");
    cr_assert_eq(parse(&m, DNS_TYPE_A), DNS_MALFORMED);
    m.b[QOFF + 16 + 4] = 0x80;
    cr_assert_eq(parse(&m, DNS_TYPE_A), DNS_MALFORMED);
}

/* A record owned by a name reached through `hops` backward pointers. */
static void hop_chain(struct msg *m, unsigned hops)
{
    start(m, 0, 2, DNS_TYPE_A);
    put8(m, 0); /* owner: the root */
    rr(m, 16 /* TXT */, 1, 1 + 2 * (hops - 1));
    size_t prev = m->len;
    put8(m, 0); /* the root name the chain ends at */
    for (unsigned i = 1; i < hops; i++) {
        size_t here = m->len;
        ptr(m, prev);
        prev = here;
    }
    ptr(m, prev);
    a_rr(m, 1, "10.0.0.1");
}

Test(dns_answer, at_most_max_hops)
{
    struct msg m;
    hop_chain(&m, DNS_MAX_HOPS);
    cr_assert_eq(parse(&m, DNS_TYPE_A), DNS_NODATA);
    hop_chain(&m, DNS_MAX_HOPS + 1);
    cr_assert_eq(parse(&m, DNS_TYPE_A), DNS_MALFORMED);
}

Test(dns_answer, name_over_255_bytes)
{
    struct msg m;
    /* 4 labels of 63: 4 * 64 + 1 = 257 bytes of wire form */
    start(&m, 0, 1, DNS_TYPE_A);
    for (int l = 0; l < 4; l++) {
        put8(&m, 63);
        for (int i = 0; i < 63; i++)
            put8(&m, 'a');
    }
    put8(&m, 0);
    a_rr(&m, 1, "10.0.0.1");
    cr_assert_eq(parse(&m, DNS_TYPE_A), DNS_MALFORMED);
}

Test(dns_answer, rdlength_beyond_the_end)
{
    struct msg m;
    start(&m, 0, 1, DNS_TYPE_A);
    ptr(&m, QOFF);
    a_rr(&m, 1, "10.0.0.1");
    m.b[m.len - 5] = 5; /* rdlength 5 with 4 bytes left */
    cr_assert_eq(parse(&m, DNS_TYPE_A), DNS_MALFORMED);
    cr_assert_eq(got_n, 0);

    /* a CNAME whose name runs past its rdlength */
    start(&m, 0, 1, DNS_TYPE_A);
    ptr(&m, QOFF);
    rr(&m, DNS_TYPE_CNAME, 1, 3);
    name(&m, "abcd.example");
    cr_assert_eq(parse(&m, DNS_TYPE_A), DNS_MALFORMED);
}

Test(dns_answer, a_with_rdlength_5_is_ignored)
{
    /* As glibc does: a record of the wrong size is skipped, not an error. */
    struct msg m;
    start(&m, 0, 2, DNS_TYPE_A);
    ptr(&m, QOFF);
    rr(&m, DNS_TYPE_A, 1, 5);
    put32(&m, 0x0a000009);
    put8(&m, 9);
    ptr(&m, QOFF);
    a_rr(&m, 50, "10.0.0.1");
    cr_assert_eq(parse(&m, DNS_TYPE_A), DNS_OK);
    cr_assert_eq(got_n, 1);
    assert_addr(&addrs[0], "10.0.0.1");
    cr_assert_eq(got_ttl, 50);
    m.b[7] = 1; /* only the bad one */
    cr_assert_eq(parse(&m, DNS_TYPE_A), DNS_NODATA);
    /* an AAAA of 4 bytes likewise */
    start(&m, 0, 1, DNS_TYPE_AAAA);
    ptr(&m, QOFF);
    rr(&m, DNS_TYPE_AAAA, 1, 4);
    put32(&m, 1);
    cr_assert_eq(parse(&m, DNS_TYPE_AAAA), DNS_NODATA);
}

Test(dns_answer, max_limits_and_min_ttl_of_the_kept)
{
    struct msg m;
    start(&m, 0, 5, DNS_TYPE_A);
    const char *v[] = {"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"};
    const uint32_t ttls[] = {90, 80, 10, 5, 1};
    for (int i = 0; i < 5; i++) {
        ptr(&m, QOFF);
        a_rr(&m, ttls[i], v[i]);
    }
    cr_assert_eq(parse_as(&m, ID, QNAME, DNS_TYPE_A, 2), DNS_OK);
    cr_assert_eq(got_n, 2);
    assert_addr(&addrs[1], "10.0.0.2");
    cr_assert_eq(addrs[2].family, 0, "nothing written past max");
    cr_assert_eq(got_ttl, 80);
    cr_assert_eq(parse_as(&m, ID, QNAME, DNS_TYPE_A, DNS_MAX_ADDRS), DNS_OK);
    cr_assert_eq(got_n, 5);
    cr_assert_eq(got_ttl, 1);
}

Test(dns_answer, short_and_class_other_than_in)
{
    struct msg m;
    m.len = 11;
    memset(m.b, 0, sizeof(m.b));
    cr_assert_eq(parse(&m, DNS_TYPE_A), DNS_MALFORMED);
    cr_assert_eq(got_n, 0);
    cr_assert_eq(got_ttl, 0);
    start(&m, 0, 1, DNS_TYPE_A);
    ptr(&m, QOFF);
    a_rr(&m, 1, "10.0.0.1");
    m.b[m.len - 4 - 2 - 4 - 1] = 3; /* class CH */
    cr_assert_eq(parse(&m, DNS_TYPE_A), DNS_NODATA);
}
