/*
 * http: llhttp glue, the request struct and the response writer.
 *
 * See include/ringlet/http.h for the model. Memory per connection is bounded
 * by the configured limits: the request-target and header values we keep are
 * capped by max_header_bytes, the body by max_body_bytes, the stash of
 * pipelined bytes by max_header_bytes + STASH_SLACK.
 */
#include "ringlet/http.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "ringlet/router.h"

#define HEAD_RESERVE 512         /* room kept before a body for its header lines */
#define STASH_SLACK  (64 * 1024) /* pipelined bytes kept beyond one header section */
#define KEEP_CAP     (16 * 1024) /* buffers larger than this are freed between requests */
#define OUT_MAX      (64u << 20) /* largest response we build */

static const char continue_line[] = "HTTP/1.1 100 Continue\r\n\r\n";

static inline struct http_session *sess(llhttp_t *p)
{
    return p->data;
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- parser callbacks ---- */

static int fail(struct http_session *s, int status, const char *detail)
{
    s->err_status = status;
    s->err_detail = detail;
    return -1;
}

static int count_head(struct http_session *s, size_t n)
{
    s->req.head_bytes += n;
    if (s->req.head_bytes > s->env->max_header_bytes)
        return fail(s, 431, "the request header section is larger than the limit");
    return 0;
}

static void shrink(struct buf *b)
{
    if (b->cap > KEEP_CAP)
        buf_fini(b);
    else
        buf_reset(b);
}

static void request_reset(struct http_session *s)
{
    struct http_request *r = &s->req;
    if (r->input_live) {
        codec_item_input_fini(&r->input);
        r->input_live = false;
    }
    shrink(&r->target);
    shrink(&r->if_match);
    shrink(&r->if_none_match);
    s->env->body_bytes -= r->body.len;
    shrink(&r->body);
    r->method = 0;
    r->http_major = r->http_minor = 0;
    r->keep_alive = false;
    r->expect_continue = false;
    r->te_unsupported = false;
    r->has_body = false;
    r->host_invalid = false;
    r->host_count = 0;
    r->ctype = CT_NONE;
    r->ctype_count = 0;
    r->head_bytes = 0;
    r->hname_len = 0;
    r->hval_len = 0;
    r->cur_hdr = HDR_OTHER;
    r->m_method = M_METHOD_OTHER;
    r->m_route = M_ROUTE_UNMATCHED;
    r->id = 0;
    r->db_pending = false;
    r->head_only = false;
    s->message_done = false;
}

static int on_message_begin(llhttp_t *p)
{
    struct http_session *s = sess(p);
    request_reset(s);
    s->req.start_ns = mono_ns();
    s->phase = HS_HEAD;
    s->continue_left = 0;
    s->message_done = false;
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    struct http_session *s = sess(p);
    /* A target that alone overruns the header limit is "URI Too Long"
     * (RFC 9112 3), not a header section too large. */
    s->req.head_bytes += len;
    if (s->req.head_bytes > s->env->max_header_bytes || buf_append(&s->req.target, at, len))
        return fail(s, 414, "the request target is longer than the header size limit");
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    struct http_session *s = sess(p);
    struct http_request *r = &s->req;
    if (count_head(s, len))
        return -1;
    /* Names we care about are short; longer ones are only counted. */
    if (r->hname_len + len < sizeof(r->hname))
        memcpy(r->hname + r->hname_len, at, len);
    r->hname_len += len;
    return 0;
}

static enum http_hdr classify(const struct http_request *r)
{
    static const struct {
        const char *name;
        size_t len;
        enum http_hdr h;
    } known[] = {
        {"host", 4, HDR_HOST},         {"content-type", 12, HDR_CONTENT_TYPE},
        {"if-match", 8, HDR_IF_MATCH}, {"if-none-match", 13, HDR_IF_NONE_MATCH},
        {"expect", 6, HDR_EXPECT},     {"transfer-encoding", 17, HDR_TRANSFER_ENCODING},
    };
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (r->hname_len == known[i].len && strncasecmp(r->hname, known[i].name, known[i].len) == 0)
            return known[i].h;
    return HDR_OTHER;
}

static int on_header_field_complete(llhttp_t *p)
{
    struct http_session *s = sess(p);
    struct http_request *r = &s->req;
    if (count_head(s, 4)) /* ": " and CRLF */
        return -1;
    r->cur_hdr = classify(r);
    r->hname_len = 0;
    switch (r->cur_hdr) {
    case HDR_HOST:
        r->host_count++;
        break;
    case HDR_CONTENT_TYPE:
        r->ctype_count++;
        /* value collected in `body` is wrong; use hname scratch: see value cb */
        break;
    case HDR_IF_MATCH:
        if (r->if_match.len && buf_append(&r->if_match, ", ", 2))
            return fail(s, 431, "the request header section is larger than the limit");
        break;
    case HDR_IF_NONE_MATCH:
        if (r->if_none_match.len && buf_append(&r->if_none_match, ", ", 2))
            return fail(s, 431, "the request header section is larger than the limit");
        break;
    default:
        break;
    }
    return 0;
}

/* Bytes of a Host value: uri-host [ ":" port ] (RFC 3986 reg-name,
 * IP-literal, IPv4address), so unreserved, pct-encoded, sub-delims, ':',
 * '[' and ']'. Blanks around the value never reach us (llhttp trims them). */
static bool host_char(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("-._~%!$&'()*+,;=:[]", c) != NULL;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    struct http_session *s = sess(p);
    struct http_request *r = &s->req;
    if (count_head(s, len))
        return -1;
    struct buf *dst = NULL;
    switch (r->cur_hdr) {
    case HDR_IF_MATCH:
        dst = &r->if_match;
        break;
    case HDR_IF_NONE_MATCH:
        dst = &r->if_none_match;
        break;
    case HDR_HOST:
        /* every byte of Host is checked as it arrives (RFC 9112 3.2) */
        for (size_t i = 0; i < len; i++)
            if (!host_char((unsigned char)at[i]))
                r->host_invalid = true;
        return 0;
    case HDR_CONTENT_TYPE:
    case HDR_EXPECT:
    case HDR_TRANSFER_ENCODING:
        /* only the start of these values matters: keep up to sizeof(hval) */
        if (r->hval_len < sizeof(r->hval)) {
            size_t n = len < sizeof(r->hval) - r->hval_len ? len : sizeof(r->hval) - r->hval_len;
            memcpy(r->hval + r->hval_len, at, n);
        }
        r->hval_len += len;
        return 0;
    default:
        return 0;
    }
    if (buf_append(dst, at, len))
        return fail(s, 431, "the request header section is larger than the limit");
    return 0;
}

/* Case-insensitive compare of a trimmed token with a lower-case literal. */
static bool token_is(const char *v, size_t n, const char *lit)
{
    while (n && (*v == ' ' || *v == '\t'))
        v++, n--;
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    return n == strlen(lit) && strncasecmp(v, lit, n) == 0;
}

static int on_header_value_complete(llhttp_t *p)
{
    struct http_session *s = sess(p);
    struct http_request *r = &s->req;
    size_t kept = r->hval_len < sizeof(r->hval) ? r->hval_len : sizeof(r->hval);
    if (r->cur_hdr == HDR_CONTENT_TYPE) {
        /* the media type before any parameters: "application/json; charset=utf-8" */
        const char *semi = memchr(r->hval, ';', kept);
        bool whole = semi || r->hval_len <= sizeof(r->hval);
        size_t n = semi ? (size_t)(semi - r->hval) : kept;
        r->ctype = whole && token_is(r->hval, n, "application/json") ? CT_JSON : CT_OTHER;
    } else if (r->cur_hdr == HDR_TRANSFER_ENCODING) {
        /* Only chunked is implemented: any other coding, before it or
         * alone, is 501 (RFC 9112 6.1), never a body decoded wrongly. */
        if (r->hval_len > sizeof(r->hval)) {
            r->te_unsupported = true;
        } else {
            const char *v = r->hval, *end = r->hval + kept;
            for (;;) {
                const char *comma = memchr(v, ',', (size_t)(end - v));
                const char *stop = comma ? comma : end;
                const char *semi = memchr(v, ';', (size_t)(stop - v));
                size_t n = (size_t)((semi ? semi : stop) - v);
                if (!token_is(v, n, "chunked") && !token_is(v, n, ""))
                    r->te_unsupported = true;
                if (!comma)
                    break;
                v = comma + 1;
            }
        }
    } else if (r->cur_hdr == HDR_EXPECT) {
        /* other expectations are ignored (RFC 9110 10.1.1 allows it) */
        if (r->hval_len <= sizeof(r->hval) && token_is(r->hval, kept, "100-continue"))
            r->expect_continue = true;
    }
    r->hval_len = 0;
    r->hname_len = 0;
    r->cur_hdr = HDR_OTHER;
    return 0;
}

/* The metrics label of a parsed method: a switch, not a string compare,
 * since it runs for every request. */
static enum metrics_method metrics_method_of(uint8_t method)
{
    switch (method) {
    case HTTP_GET:
        return M_METHOD_GET;
    case HTTP_HEAD:
        return M_METHOD_HEAD;
    case HTTP_POST:
        return M_METHOD_POST;
    case HTTP_PUT:
        return M_METHOD_PUT;
    case HTTP_DELETE:
        return M_METHOD_DELETE;
    default:
        return M_METHOD_OTHER;
    }
}

static int on_headers_complete(llhttp_t *p)
{
    struct http_session *s = sess(p);
    struct http_request *r = &s->req;
    r->method = llhttp_get_method(p);
    r->http_major = llhttp_get_http_major(p);
    r->http_minor = llhttp_get_http_minor(p);
    r->keep_alive = llhttp_should_keep_alive(p);
    r->m_method = metrics_method_of(r->method);
    r->has_body = (p->flags & F_CHUNKED) || ((p->flags & F_CONTENT_LENGTH) && p->content_length);
    if (r->ctype_count > 1)
        r->ctype = CT_OTHER;

    if (r->http_major != 1)
        return r->http_major == 0 ? fail(s, 400, "the request line lacks an HTTP version")
                                  : fail(s, 505, "only HTTP/1.0 and HTTP/1.1 are supported");
    if (r->method == HTTP_CONNECT)
        return fail(s, 400, "CONNECT is not supported");
    if (r->host_count > 1 || (r->host_count == 0 && r->http_major == 1 && r->http_minor >= 1))
        return fail(s, 400, "an HTTP/1.1 request needs exactly one Host header");
    if (r->host_invalid)
        return fail(s, 400, "the Host header is not a valid host and port");
    if (r->te_unsupported)
        return fail(s, 501, "only the chunked transfer coding is implemented");
    /* RFC 9112 6.1: Transfer-Encoding in an HTTP/1.0 message means faulty
     * framing, whatever it says (a 1.0 peer may not know chunked). */
    if (r->http_minor == 0 && (p->flags & (F_TRANSFER_ENCODING | F_CHUNKED)))
        return fail(s, 400, "Transfer-Encoding is not defined in HTTP/1.0");
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > s->env->max_body_bytes)
        return fail(s, 413, "the request body is larger than the limit");

    s->phase = r->has_body ? HS_BODY : HS_HEAD;
    if (r->expect_continue && r->has_body && r->http_minor >= 1) {
        int status = router_precheck(s);
        if (status)
            return fail(s, status,
                        status == 404   ? "no resource at this path"
                        : status == 405 ? "method not allowed on this resource"
                        : status == 400 ? "the item id must be a decimal integer from 1 to 2^63-1"
                                        : "the request body must be application/json");
        /* Sent from static memory: `out` may be reallocated while it is in
         * flight, if the final answer is built before it completes. */
        s->continue_left = sizeof(continue_line) - 1;
    }
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    struct http_session *s = sess(p);
    struct http_env *env = s->env;
    if (s->req.body.len + len > env->max_body_bytes)
        return fail(s, 413, "the request body is larger than the limit");
    /* Bodies are buffered whole: bound their sum over all connections, so
     * many slow uploads cannot exhaust memory. */
    if (env->body_budget && env->body_bytes + len > env->body_budget)
        return fail(s, 503, "too many request bodies are being received; retry later");
    int rc = buf_append(&s->req.body, at, len);
    if (rc == -E2BIG)
        return fail(s, 413, "the request body is larger than the limit");
    if (rc)
        return fail(s, 500, NULL);
    env->body_bytes += len;
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    struct http_session *s = sess(p);
    s->message_done = true;
    if (p->upgrade)
        s->close_after = true; /* we never switch protocols: what follows is not ours */
    return HPE_PAUSED;         /* one request at a time; resumed once answered */
}

void http_env_init(struct http_env *env)
{
    llhttp_settings_init(&env->settings);
    env->settings.on_message_begin = on_message_begin;
    env->settings.on_url = on_url;
    env->settings.on_header_field = on_header_field;
    env->settings.on_header_field_complete = on_header_field_complete;
    env->settings.on_header_value = on_header_value;
    env->settings.on_header_value_complete = on_header_value_complete;
    env->settings.on_headers_complete = on_headers_complete;
    env->settings.on_body = on_body;
    env->settings.on_message_complete = on_message_complete;
}

/* ---- session ---- */

void http_session_init(struct http_session *s, struct http_env *env, const struct http_hooks *h,
                       void *owner)
{
    memset(s, 0, sizeof(*s));
    s->env = env;
    s->hooks = h;
    s->owner = owner;
    llhttp_init(&s->parser, HTTP_REQUEST, &env->settings);
    s->parser.data = s;
    s->phase = HS_IDLE;
    buf_init(&s->req.target, env->max_header_bytes);
    buf_init(&s->req.if_match, env->max_header_bytes);
    buf_init(&s->req.if_none_match, env->max_header_bytes);
    buf_init(&s->req.body, env->max_body_bytes);
    buf_init(&s->stash, env->max_header_bytes + STASH_SLACK);
    buf_init(&s->out, OUT_MAX);
}

static void cancel_db(struct http_session *s)
{
    if (s->req.db_pending) {
        db_cancel(s->env->db, &s->req.db);
        s->req.db_pending = false;
        metrics_in_flight_add(-1);
    }
}

void http_session_fini(struct http_session *s)
{
    cancel_db(s);
    request_reset(s);
    buf_fini(&s->req.target);
    buf_fini(&s->req.if_match);
    buf_fini(&s->req.if_none_match);
    buf_fini(&s->req.body);
    buf_fini(&s->stash);
    buf_fini(&s->out);
}

static void dispatch(struct http_session *s)
{
    s->phase = HS_HANDLING;
    metrics_in_flight_add(1);
    router_dispatch(s);
}

/* Answer a request that cannot be read (or will not be), then close. */
static void reject(struct http_session *s, int status, const char *detail)
{
    struct http_resp h = {0};
    s->close_after = true;
    if (status == 503)
        h.retry_after = 1;
    if (status == 405)
        h.allow = router_allow(s->req.m_route); /* Expect: 100-continue precheck */
    else if (status != 404 && status != 415 && !(status == 400 && s->req.m_route == M_ROUTE_ITEM))
        s->req.m_route = M_ROUTE_UNMATCHED;
    /* a HEAD request never gets a body, even an error's */
    s->req.head_only = s->req.head_bytes > 0 && s->parser.method == HTTP_HEAD;
    s->phase = HS_HANDLING;
    metrics_in_flight_add(1);
    http_resp_problem(s, status, detail, &h);
}

/* RFC 9110 5.6.2 tchar */
static bool tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* llhttp stopped inside the method at `pos`: is the rest of it a token
 * followed by a space, that is a method we simply do not know? */
static bool unknown_method(const char *pos, const char *end)
{
    if (!pos || pos >= end || !tchar((unsigned char)*pos))
        return false;
    while (pos < end && tchar((unsigned char)*pos))
        pos++;
    return pos < end && *pos == ' ';
}

/* llhttp rejected the version near `pos`: is it a well-formed
 * "HTTP/d.d" ending the request line (505), not garbage (400)? */
static bool version_we_lack(const char *pos, const char *begin, const char *end)
{
    if (!pos || pos < begin || pos > end)
        return false;
    for (int back = 0; back <= 8 && pos - back >= begin; back++) {
        const char *v = pos - back;
        if (end - v >= 10 && memcmp(v, "HTTP/", 5) == 0)
            return v[5] >= '0' && v[5] <= '9' && v[6] == '.' && v[7] >= '0' && v[7] <= '9' &&
                   v[8] == '\r' && v[9] == '\n';
    }
    return false;
}

static void parse(struct http_session *s, const char *data, size_t len)
{
    enum llhttp_errno e = llhttp_execute(&s->parser, data, len);
    if (e == HPE_OK)
        return;
    if (e == HPE_PAUSED || e == HPE_PAUSED_UPGRADE) {
        const char *pos = llhttp_get_error_pos(&s->parser);
        size_t used = pos ? (size_t)(pos - data) : len;
        if (e == HPE_PAUSED_UPGRADE) {
            /* We never switch protocols: answer this request, then close,
             * since what follows is not HTTP/1.1 any more. Reported again
             * after the answer: then there is nothing left to answer. */
            s->close_after = true;
            if (!s->message_done) {
                s->phase = HS_CLOSED;
                return;
            }
        } else if (used < len && buf_append(&s->stash, data + used, len - used)) {
            s->close_after = true; /* cannot keep it all: finish this one and close */
        }
        if (s->message_done)
            dispatch(s);
        return;
    }
    int status = s->err_status ? s->err_status : 400;
    const char *detail = s->err_detail;
    if (!s->err_status) {
        switch (e) {
        case HPE_INVALID_METHOD:
            /* A well-formed method we do not know is 501 (RFC 9110 9.1);
             * bytes that are no method at all are malformed. */
            if (unknown_method(llhttp_get_error_pos(&s->parser), data + len)) {
                status = 501;
                detail = "the request method is not implemented";
            } else {
                detail = "the request method is not valid";
            }
            break;
        case HPE_INVALID_VERSION:
            if (version_we_lack(llhttp_get_error_pos(&s->parser), data, data + len)) {
                status = 505;
                detail = "only HTTP/1.0 and HTTP/1.1 are supported";
            } else {
                detail = "the HTTP version is not valid";
            }
            break;
        case HPE_INVALID_TRANSFER_ENCODING:
            if (s->req.te_unsupported) {
                status = 501;
                detail = "only the chunked transfer coding is implemented";
                break;
            }
            detail = "the message framing (Transfer-Encoding, Content-Length) is not valid";
            break;
        case HPE_UNEXPECTED_CONTENT_LENGTH:
            detail = "the message framing (Transfer-Encoding, Content-Length) is not valid";
            break;
        case HPE_INVALID_CHUNK_SIZE:
            detail = "the chunked body is malformed";
            break;
        default:
            detail = "the request is not valid HTTP/1.1";
            break;
        }
    }
    reject(s, status, detail);
}

void http_session_feed(struct http_session *s, const char *data, size_t len)
{
    if (s->phase == HS_CLOSED || len == 0)
        return;
    s->in_transport = true;
    if (s->phase == HS_HANDLING || s->phase == HS_WRITING) {
        /* Pipelined bytes while a request is answered: keep them, bounded. */
        if (!s->close_after && buf_append(&s->stash, data, len))
            s->close_after = true;
    } else {
        parse(s, data, len);
    }
    s->in_transport = false;
}

void http_session_refuse(struct http_session *s, int status, const char *detail, int retry_after)
{
    struct http_resp h = {.retry_after = retry_after};
    s->in_transport = true;
    s->close_after = true;
    s->req.keep_alive = false;
    s->req.start_ns = mono_ns();
    s->phase = HS_HANDLING;
    metrics_in_flight_add(1);
    http_resp_problem(s, status, detail, &h);
    s->in_transport = false;
}

void http_session_eof(struct http_session *s)
{
    cancel_db(s);
    s->phase = HS_CLOSED;
    s->out_off = s->out.len;
    s->continue_left = 0;
}

void http_session_timeout(struct http_session *s)
{
    s->in_transport = true;
    switch (s->phase) {
    case HS_HEAD:
    case HS_BODY:
        reject(s, 408, "the request was not received in time");
        break;
    case HS_IDLE:
    case HS_WRITING:
    case HS_HANDLING:
    case HS_CLOSED:
        cancel_db(s);
        s->phase = HS_CLOSED;
        s->out_off = s->out.len;
        s->continue_left = 0;
        break;
    }
    s->in_transport = false;
}

void http_session_drain(struct http_session *s)
{
    s->drain = true;
}

static void request_done(struct http_session *s)
{
    request_reset(s);
    /* Only a response that said `Connection: close` ends the connection: a
     * drain that began while it was being sent applies to the next one. */
    if (s->close_after) {
        s->phase = HS_CLOSED;
        return;
    }
    s->phase = HS_IDLE;
    llhttp_resume(&s->parser);
    if (!s->stash.len)
        return;
    /* Parse what was stashed; leftovers of it are stashed again. */
    struct buf cur = s->stash;
    buf_init(&s->stash, cur.max);
    parse(s, cur.data, cur.len);
    if (s->stash.len == 0 && s->stash.data == NULL) {
        s->stash = cur; /* keep the storage */
        buf_reset(&s->stash);
    } else {
        buf_fini(&cur);
    }
}

size_t http_session_output(const struct http_session *s, const char **p)
{
    static const char nothing[1];
    if (s->continue_left) {
        *p = continue_line + (sizeof(continue_line) - 1 - s->continue_left);
        return s->continue_left;
    }
    if (!s->out.data) {
        *p = nothing;
        return 0;
    }
    *p = s->out.data + s->out_off;
    return s->out.len - s->out_off;
}

void http_session_sent(struct http_session *s, size_t n)
{
    if (s->continue_left) {
        s->continue_left -= n < s->continue_left ? n : s->continue_left;
        return;
    }
    s->out_off += n;
    if (s->out_off < s->out.len)
        return;
    s->out_off = 0;
    shrink(&s->out);
    if (s->phase != HS_WRITING)
        return; /* an interim 100 Continue went out */
    s->in_transport = true;
    request_done(s);
    s->in_transport = false;
}

/* ---- response writer ---- */

const char *http_reason(int status)
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
    case 415:
        return "Unsupported Media Type";
    case 431:
        return "Request Header Fields Too Large";
    case 414:
        return "URI Too Long";
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
        return "Unknown";
    }
}

const char *http_date_now(void)
{
    static char cached[40];
    static time_t cached_at = -1;
    time_t now = time(NULL);
    if (now != cached_at) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(cached, sizeof(cached), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        cached_at = now;
    }
    return cached;
}

/* Head writers: the caller guarantees room (HEAD_RESERVE bounds every head). */
static char *put_mem(char *w, const char *p, size_t n)
{
    memcpy(w, p, n);
    return w + n;
}

static char *put_str(char *w, const char *str)
{
    return put_mem(w, str, strlen(str));
}

#define put_lit(w, lit) put_mem((w), (lit), sizeof(lit) - 1)

static char *put_u64(char *w, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *w++ = tmp[--n];
    return w;
}

/* "Name: value\r\n" */
#define put_hdr_str(w, name, v) put_lit(put_str(put_lit((w), name ": "), (v)), "\r\n")
#define put_hdr_u64(w, name, v) put_lit(put_u64(put_lit((w), name ": "), (v)), "\r\n")

struct buf *http_resp_begin(struct http_session *s)
{
    /* Starting over (a handler turning its answer into an error) drops what
     * the first attempt wrote. */
    if (s->resp_begun)
        s->out.len = s->resp_base;
    else
        s->resp_base = s->out.len;
    s->resp_begun = true;
    if (buf_reserve(&s->out, HEAD_RESERVE + 256) == 0)
        s->out.len += HEAD_RESERVE;
    return &s->out;
}

void http_resp_finish(struct http_session *s, int status, const struct http_resp *h)
{
    static const struct http_resp none;
    struct http_request *r = &s->req;
    if (!h)
        h = &none;
    if (s->phase != HS_HANDLING)
        return; /* answered already, or the connection is gone */
    if (!s->resp_begun)
        http_resp_begin(s);
    s->resp_begun = false;
    if (s->out.len < s->resp_base + HEAD_RESERVE) {
        s->phase = HS_CLOSED; /* out of memory: nothing sensible to send */
        s->out_off = s->out.len;
        metrics_in_flight_add(-1);
        if (!s->in_transport && s->hooks && s->hooks->update)
            s->hooks->update(s);
        return;
    }
    size_t body_at = s->resp_base + HEAD_RESERVE;
    size_t body_len = s->out.len - body_at;
    bool bodiless = status == 204 || status == 304 || status < 200;
    if (bodiless)
        body_len = 0;
    if (r->http_major == 0)
        r->keep_alive = false;
    if (!r->keep_alive || s->drain)
        s->close_after = true;

    /* Written by hand, not with snprintf: this runs for every response and
     * the format calls were ~7% of a GET's CPU (docs/profiling.md). Every
     * field is bounded, so the head always fits HEAD_RESERVE. */
    char head[HEAD_RESERVE];
    char *w = head;
    w = put_lit(w, "HTTP/1.1 ");
    w = put_u64(w, (uint64_t)status);
    w = put_lit(w, " ");
    w = put_str(w, http_reason(status));
    w = put_lit(w, "\r\n");
    w = put_hdr_str(w, "Date", http_date_now());
    if (!bodiless) {
        w = put_hdr_u64(w, "Content-Length", body_len);
        if (h->content_type)
            w = put_hdr_str(w, "Content-Type", h->content_type);
    }
    if (h->etag_version > 0)
        w = put_lit(put_u64(put_lit(w, "ETag: \""), (uint64_t)h->etag_version), "\"\r\n");
    if (h->location_id > 0)
        w = put_lit(put_u64(put_lit(w, "Location: /v1/items/"), (uint64_t)h->location_id), "\r\n");
    if (h->allow)
        w = put_hdr_str(w, "Allow", h->allow);
    if (h->retry_after > 0)
        w = put_hdr_u64(w, "Retry-After", (uint64_t)h->retry_after);
    if (s->close_after)
        w = put_lit(w, "Connection: close\r\n");
    else if (r->http_minor == 0)
        w = put_lit(w, "Connection: keep-alive\r\n");
    w = put_lit(w, "\r\n");
    size_t n = (size_t)(w - head);

    size_t head_at = body_at - n;
    memcpy(s->out.data + head_at, head, n);
    if (bodiless || r->head_only)
        s->out.len = body_at; /* HEAD keeps the GET's Content-Length, drops the body */
    /* One response at a time: nothing unsent precedes it (an interim 100
     * Continue goes out from static memory), so sending starts at the head
     * and the unused front of the reserve is simply skipped. */
    s->out_off = head_at;

    metrics_observe_request(r->m_method, r->m_route, status,
                            (double)(mono_ns() - r->start_ns) / 1e9);
    metrics_in_flight_add(-1);
    s->phase = HS_WRITING;
    if (!s->in_transport && s->hooks && s->hooks->update)
        s->hooks->update(s);
}

void http_resp_problem(struct http_session *s, int status, const char *detail,
                       const struct http_resp *h)
{
    struct http_resp hr = h ? *h : (struct http_resp){0};
    hr.content_type = "application/problem+json";
    struct buf *b = http_resp_begin(s);
    size_t mark = b->len;
    if (codec_problem_render(b, status, http_reason(status), detail))
        b->len = mark;
    http_resp_finish(s, status, &hr);
}
