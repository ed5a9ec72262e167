/*
 * http_check: an independent checker of what a ringlet http_session writes
 * to its client, shared by fuzz_session and the regression tests in
 * tests/unit/test_fuzz_regressions.c (which #include this header: it is
 * header-only on purpose, every function static).
 *
 * The checker is fed the output byte stream in whatever pieces the transport
 * drains, plus what it must know about the requests (their methods, in order,
 * as llhttp saw them), and verifies that the stream is a sequence of
 * well-formed HTTP/1.1 responses that keep the contract of docs/../api.md:
 *
 *  - status line "HTTP/1.1 NNN Reason" with a known reason phrase;
 *  - header lines "token: value" without control characters;
 *  - 100 Continue only as "HTTP/1.1 100 Continue\r\n\r\n", at most once per
 *    request, never after that request's final response;
 *  - 1xx/204/304: no Content-Length, no body; every other final response has
 *    exactly one Content-Length and exactly that many body bytes, except a
 *    response to HEAD, which has no body at all (RFC 9110 9.3.2);
 *  - Date on every final response, Content-Type whenever Content-Length > 0;
 *  - never more final responses than requests begun, nothing after a
 *    "Connection: close" response;
 *  - 4xx/5xx: application/problem+json whose body is valid JSON with string
 *    type/title/detail and integer status equal to the status line; 405 has
 *    Allow, 503 Retry-After, 201 Location;
 *  - application/json bodies pass codec_json_valid;
 *  - no body contains internal text ("SQL", "PQ", "ringlet_", "llhttp",
 *    "HPE_") unless the client itself sent that text (details may echo up to
 *    64 bytes of a field name); /metrics (text/plain) is exempt.
 *
 * Violations are reported as a message (never abort here): the fuzzer aborts
 * on it, Criterion asserts on it.
 */
#ifndef RINGLET_FUZZ_HTTP_CHECK_H
#define RINGLET_FUZZ_HTTP_CHECK_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <json-c/json.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ringlet/codec.h"

#define HC_MAX_REQS 4096

struct hc_req {
    bool head;        /* method HEAD and the headers are complete */
    bool head_method; /* llhttp parsed the method HEAD (the request may still fail) */
    bool headers;     /* headers completed */
    unsigned interim; /* 100 Continue responses seen */
};

struct http_check {
    /* unconsumed output */
    char *buf;
    size_t len, cap;
    /* what the client sent, for the internal-text rule */
    const char *input;
    size_t input_len;
    /* requests as llhttp began them, in order */
    struct hc_req reqs[HC_MAX_REQS];
    unsigned begun;
    unsigned finals;   /* final responses seen */
    unsigned interims; /* 100 Continue seen */
    bool closed;       /* a Connection: close response was seen */
    /*
     * Tolerate finding F2 (docs/security.md): error responses to HEAD that
     * carry a body. Only for long exploratory runs that must not stop at a
     * known bug (RINGLET_FUZZ_ALLOW=head-body); strict by default.
     */
    bool allow_head_body;
    bool allow_no_location; /* F5: 201 without Location for ids of 19 digits */
    bool at_end;            /* no more output will come */
    unsigned tolerated;     /* responses that needed the tolerance */
    char err[512];          /* first violation; "" when none */
};

static void hc_init(struct http_check *c, const char *input, size_t input_len)
{
    memset(c, 0, sizeof(*c));
    c->input = input;
    c->input_len = input_len;
}

static void hc_fini(struct http_check *c)
{
    free(c->buf);
    c->buf = NULL;
    c->len = c->cap = 0;
}

static bool hc_fail(struct http_check *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static bool hc_fail(struct http_check *c, const char *fmt, ...)
{
    if (!c->err[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err, sizeof(c->err), fmt, ap);
        va_end(ap);
    }
    return false;
}

/* llhttp began a request (on_message_begin). */
static void hc_request_begin(struct http_check *c)
{
    if (c->begun < HC_MAX_REQS)
        memset(&c->reqs[c->begun], 0, sizeof(c->reqs[0]));
    c->begun++;
}

/* llhttp parsed the current request's method; `head` for HEAD. */
static void hc_request_method(struct http_check *c, bool head)
{
    if (c->begun && c->begun <= HC_MAX_REQS)
        c->reqs[c->begun - 1].head_method = head;
}

/* The current request's headers are complete; `head` for method HEAD. */
static void hc_request_headers(struct http_check *c, bool head)
{
    if (c->begun && c->begun <= HC_MAX_REQS) {
        c->reqs[c->begun - 1].headers = true;
        c->reqs[c->begun - 1].head = head;
    }
}

static bool hc_is_tchar(unsigned char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

static const char *hc_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return NULL;
    }
}

static bool hc_has(const char *hay, size_t n, const char *needle)
{
    return memmem(hay, n, needle, strlen(needle)) != NULL;
}

/* The problem document rules for a 4xx/5xx body. */
static bool hc_check_problem(struct http_check *c, int status, const char *body, size_t n)
{
    if (!codec_json_valid(body, n, true))
        return hc_fail(c, "%d: problem body is not a valid JSON object: %.*s", status,
                       (int)(n > 200 ? 200 : n), body);
    struct json_tokener *tok = json_tokener_new();
    if (!tok)
        return true; /* out of memory in the checker: nothing to judge */
    struct json_object *o = json_tokener_parse_ex(tok, body, (int)n);
    json_tokener_free(tok);
    if (!o)
        return hc_fail(c, "%d: json-c rejects the problem body", status);
    struct json_object *v;
    bool ok = true;
    static const char *const strs[] = {"type", "title", "detail"};
    for (size_t i = 0; ok && i < 3; i++)
        if (!json_object_object_get_ex(o, strs[i], &v) || !json_object_is_type(v, json_type_string))
            ok = hc_fail(c, "%d: problem body lacks a string \"%s\": %.*s", status, strs[i],
                         (int)(n > 200 ? 200 : n), body);
    if (ok && (!json_object_object_get_ex(o, "status", &v) ||
               !json_object_is_type(v, json_type_int) || json_object_get_int(v) != status))
        ok = hc_fail(c, "%d: problem \"status\" does not equal the status line", status);
    if (ok && json_object_object_get_ex(o, "title", &v) &&
        strcmp(json_object_get_string(v), hc_reason(status)) != 0)
        ok = hc_fail(c, "%d: problem \"title\" is not the reason phrase", status);
    json_object_put(o);
    return ok;
}

/*
 * Parse one response at c->buf. Returns its total size, 0 when incomplete,
 * or (size_t)-1 on a violation (c->err set).
 */
static size_t hc_one(struct http_check *c)
{
    const char *b = c->buf;
    size_t n = c->len;
    const char *end = memmem(b, n, "\r\n\r\n", 4);
    if (!end) {
        if (n > 8192) {
            hc_fail(c, "no end of header section within 8 KiB");
            return (size_t)-1;
        }
        return 0;
    }
    size_t head_len = (size_t)(end - b) + 4;
    if (c->closed) {
        hc_fail(c, "a response after a Connection: close response");
        return (size_t)-1;
    }
    /* status line */
    if (head_len < 17 || memcmp(b, "HTTP/1.1 ", 9) != 0 || b[9] < '1' || b[9] > '5' ||
        b[10] < '0' || b[10] > '9' || b[11] < '0' || b[11] > '9' || b[12] != ' ') {
        hc_fail(c, "bad status line: %.*s", (int)(head_len > 60 ? 60 : head_len), b);
        return (size_t)-1;
    }
    int status = (b[9] - '0') * 100 + (b[10] - '0') * 10 + (b[11] - '0');
    const char *eol = memmem(b, head_len, "\r\n", 2);
    const char *reason = hc_reason(status);
    if (!reason || (size_t)(eol - (b + 13)) != strlen(reason) ||
        memcmp(b + 13, reason, strlen(reason)) != 0) {
        hc_fail(c, "unexpected status or reason: %.*s", (int)(eol - b), b);
        return (size_t)-1;
    }

    if (status < 200) {
        if (status != 100 || head_len != sizeof("HTTP/1.1 100 Continue\r\n\r\n") - 1) {
            hc_fail(c, "interim response other than a bare 100 Continue");
            return (size_t)-1;
        }
        unsigned idx = c->finals;
        if (idx >= c->begun) {
            hc_fail(c, "100 Continue with no request begun");
            return (size_t)-1;
        }
        if (idx < HC_MAX_REQS) {
            if (!c->reqs[idx].headers) {
                hc_fail(c, "100 Continue before the request's headers were complete");
                return (size_t)-1;
            }
            if (++c->reqs[idx].interim > 1) {
                hc_fail(c, "two 100 Continue for one request");
                return (size_t)-1;
            }
        }
        c->interims++;
        return head_len;
    }

    /* headers */
    int cl_count = 0;
    long long cl = -1;
    bool date = false, allow = false, retry = false, location = false, close = false;
    char ctype[128] = "";
    const char *p = eol + 2;
    while (p < end + 2) {
        const char *le = memmem(p, (size_t)(end + 2 - p), "\r\n", 2);
        const char *colon = memchr(p, ':', (size_t)(le - p));
        if (!colon || colon == p || colon[1] != ' ') {
            hc_fail(c, "%d: malformed header line: %.*s", status, (int)(le - p), p);
            return (size_t)-1;
        }
        for (const char *q = p; q < colon; q++)
            if (!hc_is_tchar((unsigned char)*q)) {
                hc_fail(c, "%d: bad header name: %.*s", status, (int)(le - p), p);
                return (size_t)-1;
            }
        const char *v = colon + 2;
        size_t vl = (size_t)(le - v);
        for (size_t i = 0; i < vl; i++) {
            unsigned char ch = (unsigned char)v[i];
            if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
                hc_fail(c, "%d: control byte in a header value", status);
                return (size_t)-1;
            }
        }
        size_t nl = (size_t)(colon - p);
#define HC_NAME(lit) (nl == sizeof(lit) - 1 && strncasecmp(p, lit, nl) == 0)
        if (HC_NAME("content-length")) {
            cl_count++;
            cl = 0;
            if (vl == 0 || vl > 12) {
                hc_fail(c, "%d: bad Content-Length", status);
                return (size_t)-1;
            }
            for (size_t i = 0; i < vl; i++) {
                if (v[i] < '0' || v[i] > '9') {
                    hc_fail(c, "%d: bad Content-Length", status);
                    return (size_t)-1;
                }
                cl = cl * 10 + (v[i] - '0');
            }
        } else if (HC_NAME("date")) {
            date = vl == 29 && memcmp(v + 25, " GMT", 4) == 0;
        } else if (HC_NAME("content-type")) {
            snprintf(ctype, sizeof(ctype), "%.*s", (int)vl, v);
        } else if (HC_NAME("allow")) {
            allow = vl > 0;
        } else if (HC_NAME("retry-after")) {
            retry = vl > 0;
        } else if (HC_NAME("location")) {
            location = vl > 10 && memcmp(v, "/v1/items/", 10) == 0;
        } else if (HC_NAME("connection")) {
            if (vl == 5 && strncasecmp(v, "close", 5) == 0)
                close = true;
        }
#undef HC_NAME
        p = le + 2;
    }

    unsigned idx = c->finals;
    if (idx >= c->begun) {
        hc_fail(c, "%d: final response #%u but only %u request(s) begun", status, idx + 1,
                c->begun);
        return (size_t)-1;
    }
    bool head = idx < HC_MAX_REQS && c->reqs[idx].head;
    bool bodiless = status == 204 || status == 304;
    if (bodiless && cl_count) {
        hc_fail(c, "%d with a Content-Length", status);
        return (size_t)-1;
    }
    if (!bodiless && cl_count != 1) {
        hc_fail(c, "%d: %d Content-Length headers", status, cl_count);
        return (size_t)-1;
    }
    if (!date) {
        hc_fail(c, "%d: no (well-formed) Date", status);
        return (size_t)-1;
    }
    if (cl > 0 && !ctype[0]) {
        hc_fail(c, "%d: a body without Content-Type", status);
        return (size_t)-1;
    }
    if (status == 405 && !allow) {
        hc_fail(c, "405 without Allow");
        return (size_t)-1;
    }
    if (status == 503 && !retry) {
        hc_fail(c, "503 without Retry-After");
        return (size_t)-1;
    }
    if (status == 201 && !location && !c->allow_no_location) {
        hc_fail(c, "201 without Location");
        return (size_t)-1;
    }
    size_t body_len = bodiless || head ? 0 : (size_t)cl;
    /*
     * A HEAD request that failed before its headers were complete: whether
     * the server knew the method is its business; accept both forms.
     */
    bool ambiguous = idx < HC_MAX_REQS && c->reqs[idx].head_method && !head;
    if (ambiguous && !bodiless && cl > 0) {
        body_len = 0;
        if (n == head_len && !c->at_end)
            return 0; /* cannot tell yet whether a body follows */
        if (n > head_len && b[head_len] == '{')
            body_len = (size_t)cl;
    }
    if (head && c->allow_head_body && status >= 400 && cl > 0) {
        if (n == head_len && !c->at_end)
            return 0; /* cannot tell yet whether a body follows */
        if (n > head_len && b[head_len] == '{') {
            body_len = (size_t)cl;
            c->tolerated++;
        }
    }
    if (n - head_len < body_len)
        return 0; /* wait for the rest of the body */
    const char *body = b + head_len;

    bool no_body = head || (ambiguous && body_len == 0);
    if (status >= 400 && !no_body) {
        if (strcmp(ctype, "application/problem+json") != 0) {
            hc_fail(c, "%d: Content-Type is \"%s\", not application/problem+json", status, ctype);
            return (size_t)-1;
        }
        if (!hc_check_problem(c, status, body, body_len))
            return (size_t)-1;
    } else if (!no_body && body_len && strncmp(ctype, "application/json", 16) == 0) {
        if (!codec_json_valid(body, body_len, true)) {
            hc_fail(c, "%d: application/json body is not a valid JSON object", status);
            return (size_t)-1;
        }
    }
    if (strncmp(ctype, "text/plain", 10) != 0) {
        static const char *const internal[] = {"SQL",  "PQ",    "ringlet_", "llhttp",
                                               "HPE_", "pgsql", "postgres"};
        for (size_t i = 0; i < sizeof(internal) / sizeof(internal[0]); i++)
            if (hc_has(body, body_len, internal[i]) &&
                !(c->input && hc_has(c->input, c->input_len, internal[i]))) {
                hc_fail(c, "%d: body leaks internal text \"%s\": %.*s", status, internal[i],
                        (int)(body_len > 200 ? 200 : body_len), body);
                return (size_t)-1;
            }
    }
    c->finals++;
    if (close)
        c->closed = true;
    return head_len + body_len;
}

/* More output bytes. False on a violation (see c->err). */
static bool hc_feed(struct http_check *c, const char *p, size_t n)
{
    if (c->err[0])
        return false;
    if (n == 0 && !c->at_end)
        return true;
    if (c->len + n > c->cap) {
        size_t cap = c->cap ? c->cap : 4096;
        while (cap < c->len + n)
            cap *= 2;
        char *nb = realloc(c->buf, cap);
        if (!nb)
            abort();
        c->buf = nb;
        c->cap = cap;
    }
    if (n)
        memcpy(c->buf + c->len, p, n);
    c->len += n;
    while (c->len) {
        size_t used = hc_one(c);
        if (used == (size_t)-1)
            return false;
        if (used == 0)
            return true;
        memmove(c->buf, c->buf + used, c->len - used);
        c->len -= used;
    }
    return true;
}

/* End of the stream: `cut` when the connection was dropped (partial output ok). */
static bool hc_end(struct http_check *c, bool cut)
{
    if (c->err[0])
        return false;
    c->at_end = true;
    if (!cut && !hc_feed(c, "", 0))
        return false;
    if (c->len && !cut)
        return hc_fail(c, "%zu trailing bytes that are not a complete response: %.*s", c->len,
                       (int)(c->len > 80 ? 80 : c->len), c->buf);
    return true;
}

#endif
