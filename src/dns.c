/*
 * dns: resolv.conf and hosts text, search-list expansion, and DNS messages
 * (see include/ringlet/dns.h). Everything works on the caller's buffers.
 *
 * The configuration parsers follow glibc (resolv/res_init.c, nss_files):
 * a keyword must start the line and be followed by a blank, '#' or ';'
 * first on a line makes it a comment, malformed values are skipped. Unlike
 * glibc, '\r' counts as a blank (files written on Windows), and a '#' or
 * ';' token ends a search line (glibc would keep "#" as a domain).
 *
 * Answers are untrusted. Names are decoded into a bounded buffer (255
 * bytes of wire form); a compression pointer must point strictly before
 * the start of the label run it ends (the name's start, or the previous
 * pointer's target), so offsets strictly decrease and no loop is
 * possible, and DNS_MAX_HOPS bounds the work anyway. Every length is
 * checked against the message before it is read.
 */
#include "ringlet/dns.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#define DNS_PORT     53
#define DNS_HDR      12
#define DNS_WIRE_MAX 255 /* RFC 1035 3.1: a name in wire form, root label included */
#define DNS_CLASS_IN 1
#define DNS_FLAG_QR  0x8000
#define DNS_FLAG_TC  0x0200
#define DNS_FLAG_RD  0x0100
#define DNS_RCODE_NX 3

/* ---- text helpers ---- */

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

static char ascii_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* ASCII case-insensitive equality of two byte strings (no locale). */
static bool ascii_eq(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen)
        return false;
    for (size_t i = 0; i < alen; i++)
        if (ascii_lower(a[i]) != ascii_lower(b[i]))
            return false;
    return true;
}

/* The next blank-separated token of [*p, end), or false when none is left. */
static bool next_token(const char **p, const char *end, const char **tok, size_t *tlen)
{
    const char *s = *p;
    while (s < end && is_blank(*s))
        s++;
    const char *t = s;
    while (t < end && !is_blank(*t))
        t++;
    *p = t;
    *tok = s;
    *tlen = (size_t)(t - s);
    return t > s;
}

/* The line starts with `kw` followed by a blank (glibc's MATCH), *rest after it. */
static bool line_keyword(const char *line, const char *end, const char *kw, const char **rest)
{
    size_t n = strlen(kw);
    if ((size_t)(end - line) <= n || memcmp(line, kw, n) != 0 || !is_blank(line[n]))
        return false;
    *rest = line + n;
    return true;
}

/*
 * Copy a token into a NUL-terminated buffer of `cap` bytes; false if it does
 * not fit or holds a NUL byte ("10.0.0.1\0junk" must not read as 10.0.0.1).
 */
static bool token_cstr(char *dst, size_t cap, const char *tok, size_t tlen)
{
    if (tlen >= cap || memchr(tok, '\0', tlen))
        return false;
    memcpy(dst, tok, tlen);
    dst[tlen] = '\0';
    return true;
}

/*
 * Leading decimal digits of [s, s+n) (glibc uses atoi), saturating at
 * `cap`; false when there is no digit at all, which glibc would read as 0
 * but we treat as a malformed value and ignore.
 */
static bool leading_uint(const char *s, size_t n, unsigned cap, unsigned *out)
{
    size_t i = 0;
    unsigned v = 0;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        v = v * 10 + (unsigned)(s[i] - '0');
        if (v > cap)
            v = cap; /* keeps v small, so the next step cannot overflow */
    }
    if (i == 0)
        return false;
    *out = v;
    return true;
}

/* ---- resolv.conf ---- */

static void conf_nameserver(struct dns_conf *c, const char *p, const char *end)
{
    const char *tok;
    size_t tlen;
    char addr[INET6_ADDRSTRLEN + 16];

    /* glibc ignores whatever follows the address on the line */
    if (c->nservers >= DNS_MAX_SERVERS || !next_token(&p, end, &tok, &tlen) ||
        !token_cstr(addr, sizeof(addr), tok, tlen))
        return;
    struct sockaddr_storage *ss = &c->servers[c->nservers];
    memset(ss, 0, sizeof(*ss));

    /* inet_aton on a blank-free token is glibc's __inet_aton_exact */
    struct in_addr a4;
    if (inet_aton(addr, &a4)) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(DNS_PORT);
        s4->sin_addr = a4;
        c->nservers++;
        return;
    }

    /* IPv6, maybe with a %scope. A numeric scope is taken as the interface
     * index; a scope naming an interface would need if_nametoindex (a
     * syscall), so such a server is skipped rather than kept unusable. */
    uint32_t scope = 0;
    char *pct = strchr(addr, '%');
    if (pct) {
        unsigned long v = 0;
        const char *d = pct + 1;
        if (!*d)
            return;
        for (; *d; d++) {
            if (*d < '0' || *d > '9')
                return;
            v = v * 10 + (unsigned long)(*d - '0');
            if (v > UINT32_MAX)
                return;
        }
        scope = (uint32_t)v;
        *pct = '\0';
    }
    struct in6_addr a6;
    if (inet_pton(AF_INET6, addr, &a6) != 1)
        return;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(DNS_PORT);
    s6->sin6_addr = a6;
    s6->sin6_scope_id = scope;
    c->nservers++;
}

/*
 * A search or domain line: the list becomes the line's usable domains
 * (trailing dots stripped, valid names of at most DNS_MAX_NAME), possibly
 * none ("search ." turns the search list off, as in glibc). A line with no
 * token at all is ignored, as glibc does. `domain` keeps only its first.
 */
static void conf_search(struct dns_conf *c, const char *p, const char *end, bool domain)
{
    const char *tok;
    size_t tlen;
    const char *peek = p;
    if (!next_token(&peek, end, &tok, &tlen))
        return;
    c->nsearch = 0;
    memset(c->search, 0, sizeof(c->search));
    while (next_token(&p, end, &tok, &tlen)) {
        if (tok[0] == '#' || tok[0] == ';')
            break;
        while (tlen > 0 && tok[tlen - 1] == '.')
            tlen--;
        char name[DNS_MAX_NAME + 1];
        if (c->nsearch < DNS_MAX_SEARCH && tlen > 0 && token_cstr(name, sizeof(name), tok, tlen) &&
            dns_name_valid(name)) {
            memcpy(c->search[c->nsearch], name, tlen + 1);
            c->nsearch++;
        }
        if (domain)
            break;
    }
}

static void conf_options(struct dns_conf *c, const char *p, const char *end)
{
    const char *tok;
    size_t tlen;
    unsigned v;

    while (next_token(&p, end, &tok, &tlen)) {
        if (tlen > 6 && memcmp(tok, "ndots:", 6) == 0) {
            if (leading_uint(tok + 6, tlen - 6, 15, &v))
                c->ndots = v;
        } else if (tlen > 8 && memcmp(tok, "timeout:", 8) == 0) {
            if (leading_uint(tok + 8, tlen - 8, 30, &v))
                c->timeout_ms = (v ? v : 1) * 1000;
        } else if (tlen > 9 && memcmp(tok, "attempts:", 9) == 0) {
            if (leading_uint(tok + 9, tlen - 9, 5, &v))
                c->attempts = v ? v : 1;
        }
    }
}

void dns_conf_parse(struct dns_conf *out, const char *text, size_t len)
{
    memset(out, 0, sizeof(*out));
    out->ndots = 1;
    out->timeout_ms = 5000;
    out->attempts = 2;

    const char *p = text, *end = text ? text + len : text;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *line = p, *rest;
        p = nl ? nl + 1 : end;

        if (line == le || line[0] == '#' || line[0] == ';')
            continue;
        if (line_keyword(line, le, "nameserver", &rest))
            conf_nameserver(out, rest, le);
        else if (line_keyword(line, le, "search", &rest))
            conf_search(out, rest, le, false);
        else if (line_keyword(line, le, "domain", &rest))
            conf_search(out, rest, le, true);
        else if (line_keyword(line, le, "options", &rest))
            conf_options(out, rest, le);
    }
}

/* ---- /etc/hosts ---- */

static bool addr_seen(const struct dns_addr *out, unsigned n, const struct dns_addr *a)
{
    for (unsigned i = 0; i < n; i++)
        if (out[i].family == a->family &&
            (a->family == AF_INET ? memcmp(&out[i].u.v4, &a->u.v4, sizeof(a->u.v4))
                                  : memcmp(&out[i].u.v6, &a->u.v6, sizeof(a->u.v6))) == 0)
            return true;
    return false;
}

/* One pass over the text keeping the addresses of `family` that name `name`. */
static unsigned hosts_pass(const char *text, size_t len, const char *name, size_t nlen, int family,
                           struct dns_addr *out, unsigned n, unsigned max)
{
    const char *p = text, *end = text + len;
    while (p < end && n < max) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *line = p;
        p = nl ? nl + 1 : end;

        const char *hash = memchr(line, '#', (size_t)(le - line));
        if (hash)
            le = hash;
        const char *tok;
        size_t tlen;
        char addr[INET6_ADDRSTRLEN];
        if (!next_token(&line, le, &tok, &tlen) || !token_cstr(addr, sizeof(addr), tok, tlen))
            continue;
        struct dns_addr a;
        memset(&a, 0, sizeof(a));
        if (inet_aton(addr, &a.u.v4))
            a.family = AF_INET;
        else if (inet_pton(AF_INET6, addr, &a.u.v6) == 1)
            a.family = AF_INET6;
        else
            continue; /* malformed (or scoped) address: skip the line */
        if (a.family != family)
            continue;
        while (next_token(&line, le, &tok, &tlen)) {
            if (ascii_eq(tok, tlen, name, nlen)) {
                if (!addr_seen(out, n, &a))
                    out[n++] = a;
                break;
            }
        }
    }
    return n;
}

unsigned dns_hosts_lookup(const char *text, size_t len, const char *name, struct dns_addr *out,
                          unsigned max)
{
    if (!text || !name || max == 0)
        return 0;
    /* "db." is the fully qualified "db": match it against "db" in the file */
    size_t nlen = strnlen(name, DNS_MAX_NAME + 2);
    if (nlen > 0 && name[nlen - 1] == '.')
        nlen--;
    if (nlen == 0 || nlen > DNS_MAX_NAME)
        return 0;
    unsigned n = hosts_pass(text, len, name, nlen, AF_INET, out, 0, max);
    return hosts_pass(text, len, name, nlen, AF_INET6, out, n, max);
}

/* ---- names ---- */

static bool host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

bool dns_name_valid(const char *name)
{
    if (!name)
        return false;
    size_t len = strnlen(name, DNS_MAX_NAME + 2);
    if (len > 0 && name[len - 1] == '.')
        len--;
    if (len == 0 || len > DNS_MAX_NAME)
        return false;
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        if (name[i] == '.') {
            if (label == 0)
                return false;
            label = 0;
        } else if (!host_char(name[i]) || ++label > 63) {
            return false;
        }
    }
    return label > 0; /* "a.b.." ends in an empty label even without its final dot */
}

/* Append `a` or "a.b" to the candidates unless too long or already there. */
static unsigned add_candidate(char out[DNS_MAX_CANDIDATES][DNS_MAX_NAME + 1], unsigned n,
                              const char *a, size_t alen, const char *b, size_t blen)
{
    size_t total = alen + (blen ? 1 + blen : 0);
    if (n >= DNS_MAX_CANDIDATES || alen == 0 || total > DNS_MAX_NAME)
        return n;
    char buf[DNS_MAX_NAME + 1];
    memcpy(buf, a, alen);
    if (blen) {
        buf[alen] = '.';
        memcpy(buf + alen + 1, b, blen);
    }
    buf[total] = '\0';
    for (unsigned i = 0; i < n; i++)
        if (ascii_eq(out[i], strlen(out[i]), buf, total))
            return n;
    memcpy(out[n], buf, total + 1);
    return n + 1;
}

static unsigned add_searched(const struct dns_conf *conf, const char *name, size_t nlen,
                             char out[DNS_MAX_CANDIDATES][DNS_MAX_NAME + 1], unsigned n)
{
    unsigned ns = conf->nsearch < DNS_MAX_SEARCH ? conf->nsearch : DNS_MAX_SEARCH;
    for (unsigned i = 0; i < ns; i++) {
        /* the array may come from elsewhere than dns_conf_parse: bound and trim it */
        size_t slen = strnlen(conf->search[i], DNS_MAX_NAME + 1);
        while (slen > 0 && conf->search[i][slen - 1] == '.')
            slen--;
        if (slen > 0)
            n = add_candidate(out, n, name, nlen, conf->search[i], slen);
    }
    return n;
}

unsigned dns_candidates(const struct dns_conf *conf, const char *name,
                        char out[DNS_MAX_CANDIDATES][DNS_MAX_NAME + 1])
{
    if (!name)
        return 0;
    size_t nlen = strnlen(name, DNS_MAX_NAME + 2);
    if (nlen == 0 || nlen > DNS_MAX_NAME + 1)
        return 0; /* every candidate would be too long */
    if (name[nlen - 1] == '.')
        return add_candidate(out, 0, name, nlen - 1, NULL, 0);
    unsigned dots = 0;
    for (size_t i = 0; i < nlen; i++)
        dots += name[i] == '.';
    unsigned n = 0;
    if (dots >= conf->ndots) {
        n = add_candidate(out, n, name, nlen, NULL, 0);
        n = add_searched(conf, name, nlen, out, n);
    } else {
        n = add_searched(conf, name, nlen, out, n);
        n = add_candidate(out, n, name, nlen, NULL, 0);
    }
    return n;
}

/* ---- messages ---- */

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

/* `name` in wire form into `out` (DNS_WIRE_MAX bytes): its length, 0 if not valid. */
static size_t name_to_wire(const char *name, uint8_t *out)
{
    if (!dns_name_valid(name))
        return 0;
    size_t w = 0;
    const char *p = name;
    while (*p) {
        size_t l = strcspn(p, ".");
        out[w++] = (uint8_t)l;
        memcpy(out + w, p, l);
        w += l;
        p += l;
        if (*p == '.')
            p++;
    }
    out[w++] = 0;
    return w;
}

/* Two wire-form names, ASCII case-insensitively (length bytes are < 64: unaffected). */
static bool wire_eq(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    return ascii_eq((const char *)a, alen, (const char *)b, blen);
}

/*
 * Decode the (possibly compressed) name at `off` of the message into `wire`
 * (DNS_WIRE_MAX bytes, uncompressed); *next is the offset just after the
 * name where it sits. False for anything out of bounds, a label type other
 * than 00 or 11, a name over 255 bytes, a pointer not strictly before the
 * label run it ends, or more than DNS_MAX_HOPS pointers.
 */
static bool read_name(const uint8_t *msg, size_t len, size_t off, uint8_t *wire, size_t *wlen,
                      size_t *next)
{
    size_t pos = off, run = off, w = 0;
    unsigned hops = 0;
    bool jumped = false;

    for (;;) {
        if (pos >= len)
            return false;
        uint8_t c = msg[pos];
        if ((c & 0xC0) == 0xC0) {
            if (len - pos < 2)
                return false;
            size_t to = (size_t)(c & 0x3F) << 8 | msg[pos + 1];
            if (to >= run || ++hops > DNS_MAX_HOPS)
                return false;
            if (!jumped)
                *next = pos + 2;
            jumped = true;
            pos = run = to;
            continue;
        }
        if (c & 0xC0)
            return false; /* 01 and 10: extended label types, obsolete */
        if (c == 0) {
            wire[w++] = 0;
            if (!jumped)
                *next = pos + 1;
            *wlen = w;
            return true;
        }
        /* room for this label and the root label after it */
        if (w + 1 + c + 1 > DNS_WIRE_MAX || len - pos - 1 < c)
            return false;
        memcpy(wire + w, msg + pos, 1 + (size_t)c);
        w += 1 + (size_t)c;
        pos += 1 + (size_t)c;
    }
}

size_t dns_build_query(uint8_t *out, uint16_t id, const char *name, uint16_t qtype)
{
    size_t wl = name_to_wire(name, out + DNS_HDR);
    if (wl == 0)
        return 0;
    put16(out, id);
    put16(out + 2, DNS_FLAG_RD);
    put16(out + 4, 1); /* qdcount */
    put16(out + 6, 0);
    put16(out + 8, 0);
    put16(out + 10, 0);
    put16(out + DNS_HDR + wl, qtype);
    put16(out + DNS_HDR + wl + 2, DNS_CLASS_IN);
    return DNS_HDR + wl + 4;
}

enum dns_result dns_parse_answer(const uint8_t *msg, size_t len, uint16_t id, const char *name,
                                 uint16_t qtype, struct dns_addr *out, unsigned max, unsigned *n,
                                 uint32_t *ttl_s)
{
    uint8_t qname[DNS_WIRE_MAX], owner[DNS_WIRE_MAX], target[DNS_WIRE_MAX];
    size_t qlen, olen, tlen, off;

    *n = 0;
    *ttl_s = 0;
    if (len < DNS_HDR)
        return DNS_MALFORMED;
    uint16_t flags = get16(msg + 2);
    if (get16(msg) != id || !(flags & DNS_FLAG_QR) || ((flags >> 11) & 0xF) != 0)
        return DNS_MISMATCH;
    qlen = name_to_wire(name, qname);
    if (qlen == 0)
        return DNS_MISMATCH; /* we cannot have asked that */
    unsigned rcode = flags & 0xF;
    uint16_t qdcount = get16(msg + 4), ancount = get16(msg + 6);

    /* Some servers answer FORMERR, REFUSED or SERVFAIL without echoing the
     * question. Like glibc (for FORMERR) take it as this server failing:
     * the worst a forger gains is that we move on to the next server.
     * NXDOMAIN and answers must echo the question. */
    if (qdcount == 0 && rcode != 0 && rcode != DNS_RCODE_NX)
        return DNS_SERVFAIL;
    if (qdcount != 1)
        return DNS_MISMATCH;
    if (!read_name(msg, len, DNS_HDR, owner, &olen, &off) || len - off < 4)
        return DNS_MALFORMED;
    if (!wire_eq(owner, olen, qname, qlen) || get16(msg + off) != qtype ||
        get16(msg + off + 2) != DNS_CLASS_IN)
        return DNS_MISMATCH;
    off += 4;
    if (rcode == DNS_RCODE_NX)
        return DNS_NXDOMAIN;
    if (rcode != 0)
        return DNS_SERVFAIL;

    size_t want = qtype == DNS_TYPE_A ? 4 : qtype == DNS_TYPE_AAAA ? 16 : 0;
    int family = qtype == DNS_TYPE_A ? AF_INET : AF_INET6;
    bool broken = false;
    uint32_t ttl_min = UINT32_MAX;
    memcpy(target, qname, qlen);
    tlen = qlen;

    for (unsigned i = 0; i < ancount; i++) {
        if (!read_name(msg, len, off, owner, &olen, &off) || len - off < 10) {
            broken = true;
            break;
        }
        uint16_t type = get16(msg + off), cls = get16(msg + off + 2);
        uint32_t ttl = get32(msg + off + 4);
        size_t rdlen = get16(msg + off + 8);
        off += 10;
        if (rdlen > len - off) {
            broken = true;
            break;
        }
        size_t rdata = off;
        off += rdlen;
        if (cls != DNS_CLASS_IN || !wire_eq(owner, olen, target, tlen))
            continue;
        if (type == DNS_TYPE_CNAME) {
            /* the chain moves on: later records are about the alias's target */
            size_t end;
            if (!read_name(msg, len, rdata, target, &tlen, &end) || end > rdata + rdlen) {
                broken = true;
                break;
            }
        } else if (type == qtype && want && rdlen == want && *n < max) {
            /* an A of 5 bytes (say) is skipped as glibc does, not an error */
            struct dns_addr *a = &out[*n];
            memset(a, 0, sizeof(*a));
            a->family = family;
            memcpy(family == AF_INET ? (void *)&a->u.v4 : (void *)&a->u.v6, msg + rdata, want);
            (*n)++;
            /* RFC 2181 8: a TTL with the top bit set means zero */
            if (ttl > INT32_MAX)
                ttl = 0;
            if (ttl < ttl_min)
                ttl_min = ttl;
        }
    }

    bool tc = flags & DNS_FLAG_TC;
    if (broken && !tc) {
        *n = 0;
        return DNS_MALFORMED;
    }
    /* Truncated: keep what arrived whole; nothing at all means the server
     * could not say (the answer did not fit), not that there is no data. */
    if (*n > 0) {
        *ttl_s = ttl_min;
        return DNS_OK;
    }
    return tc ? DNS_SERVFAIL : DNS_NODATA;
}
