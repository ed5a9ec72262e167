/*
 * http: the protocol engine of one client connection, free of sockets.
 *
 * A session takes the bytes a client sends, in whatever pieces they arrive
 * (http_session_feed), parses them with llhttp, hands each complete request
 * to the router, and builds the responses into an output buffer that its
 * transport drains (http_session_output / http_session_sent). It never does
 * I/O itself; the only thing it calls outward besides handlers is the
 * transport's `update` hook, when a response becomes ready asynchronously
 * (after a database answer). So the same code runs under io_uring in the
 * service and under a fuzzer or unit test with a fake transport.
 *
 * Requests on one connection are handled one at a time: when a request is
 * complete the parser pauses, bytes that arrive meanwhile (pipelined
 * requests) are stashed, and parsing resumes when the response has been
 * sent. That answers pipelined requests in order with bounded memory.
 */
#ifndef RINGLET_HTTP_H
#define RINGLET_HTTP_H

#include <llhttp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ringlet/buf.h"
#include "ringlet/codec.h"
#include "ringlet/db.h"
#include "ringlet/metrics.h"

struct http_session;
struct metrics_snapshot;

/* What every session shares: limits, the database, the server's state. */
struct http_env {
    size_t max_header_bytes;
    size_t max_body_bytes;
    struct db *db;
    size_t body_budget; /* bytes of request bodies buffered at once, all connections (0: no cap) */
    size_t body_bytes;  /* currently buffered */
    bool draining;      /* SIGTERM seen: /readyz says 503 */
    /* Fill the values /metrics samples from outside the registry. */
    void (*snapshot)(void *ctx, struct metrics_snapshot *snap);
    void *snapshot_ctx;
    llhttp_settings_t settings; /* set by http_env_init */
};

/* Transport hooks. */
struct http_hooks {
    /* Something changed outside a transport call (a response became ready). */
    void (*update)(struct http_session *s);
};

enum http_phase {
    HS_IDLE,     /* between requests, no partial request buffered */
    HS_HEAD,     /* receiving a request head */
    HS_BODY,     /* receiving a request body */
    HS_HANDLING, /* request complete, waiting for its handler (the database) */
    HS_WRITING,  /* response being sent */
    HS_CLOSED,   /* the connection must be closed once output is sent */
};

enum http_hdr {
    HDR_OTHER,
    HDR_HOST,
    HDR_CONTENT_TYPE,
    HDR_IF_MATCH,
    HDR_IF_NONE_MATCH,
    HDR_EXPECT,
    HDR_TRANSFER_ENCODING
};

/* One request. Lives inside the session; reset at every message start. */
struct http_request {
    uint8_t method; /* llhttp_method_t */
    uint8_t http_major, http_minor;
    bool keep_alive;      /* llhttp_should_keep_alive at headers complete */
    bool expect_continue; /* Expect: 100-continue */
    bool te_unsupported;  /* a transfer coding other than chunked (501) */
    bool has_body;        /* Content-Length > 0 or chunked */
    bool host_invalid;    /* a Host value with a byte no host[:port] has */
    unsigned host_count;
    enum { CT_NONE, CT_JSON, CT_OTHER } ctype;
    unsigned ctype_count;
    struct buf target;        /* request-target as sent */
    struct buf if_match;      /* joined values, ", " between repeats */
    struct buf if_none_match; /* idem */
    struct buf body;          /* decoded body (chunked framing removed) */
    size_t head_bytes;        /* header section size so far, for the 431 limit */
    char hname[24];           /* the header name being received (interesting ones are short) */
    size_t hname_len;
    char hval[64];   /* start of a Content-Type or Expect value */
    size_t hval_len; /* full length seen (may exceed sizeof(hval)) */
    enum http_hdr cur_hdr;
    uint64_t start_ns; /* first byte of the request, for the duration histogram */

    /* filled by the router and the handlers */
    enum metrics_method m_method;
    enum metrics_route m_route;
    int64_t id; /* item routes */
    struct codec_item_input input;
    bool input_live;
    char p_id[24], p_extra[24], p_versions[400]; /* database parameters as text */
    char p_nomatch[400];                         /* If-None-Match versions, idem */
    struct db_req db;
    bool db_pending; /* submitted, callback not yet run */
    bool head_only;  /* HEAD: send headers, not the body */
};

struct http_session {
    llhttp_t parser;
    struct http_env *env;
    const struct http_hooks *hooks;
    void *owner; /* the transport's object */
    enum http_phase phase;
    struct http_request req;
    struct buf stash; /* received but unparsed (pipelined) bytes */
    struct buf out;   /* response bytes; [out_off, out.len) not yet sent */
    size_t out_off;
    size_t resp_base; /* where the response being built starts in `out` */
    bool resp_begun;  /* http_resp_begin called for the current response */
    int err_status;   /* status chosen by a parser callback before failing */
    const char *err_detail;
    bool close_after;     /* close once the current response is sent */
    bool drain;           /* server draining: close after the next response */
    size_t continue_left; /* bytes of an interim 100 Continue still to send */
    bool in_transport;    /* inside feed/sent: don't call hooks->update */
    bool message_done;    /* the current request's last byte was parsed */
};

/* Fill the llhttp callback table. */
void http_env_init(struct http_env *env);

void http_session_init(struct http_session *s, struct http_env *env, const struct http_hooks *h,
                       void *owner);
/* Release everything; cancels a database request still in flight. */
void http_session_fini(struct http_session *s);

/*
 * Bytes from the client. They are parsed now, or stashed while a request is
 * being handled (at most max_header_bytes + 64 KiB stashed: beyond that the
 * session stops the connection with a close).
 */
void http_session_feed(struct http_session *s, const char *data, size_t len);

/*
 * Answer a connection we will not serve (over the connection limit) with one
 * problem response and `Connection: close`, before reading anything.
 */
void http_session_refuse(struct http_session *s, int status, const char *detail, int retry_after);

/* The client closed its side (or the socket failed): stop; output is dropped. */
void http_session_eof(struct http_session *s);

/* The phase's timer fired (header, body, idle or write timeout). */
void http_session_timeout(struct http_session *s);

/*
 * Close after the next response (it carries `Connection: close`). An idle
 * session stays open: its transport decides how long to wait for a last
 * request (see conn_drain).
 */
void http_session_drain(struct http_session *s);

/*
 * Bytes waiting to be sent (0: none). The memory stays valid and unchanged
 * until http_session_sent() or http_session_fini().
 */
size_t http_session_output(const struct http_session *s, const char **p);

/* `n` bytes of the output were sent. May parse stashed requests. */
void http_session_sent(struct http_session *s, size_t n);

/* Nothing left to send and the connection should be closed. */
static inline bool http_session_done(const struct http_session *s)
{
    return s->phase == HS_CLOSED && s->out_off == s->out.len && !s->continue_left;
}

/* ---- response writer, for handlers ---- */

/* Extra response headers; zero values mean "absent". */
struct http_resp {
    const char *content_type;
    int64_t etag_version; /* ETag: "N" when > 0 */
    int64_t location_id;  /* Location: /v1/items/N when > 0 */
    const char *allow;    /* 405 */
    int retry_after;      /* seconds, 503 */
};

/* Start a response body; append the body to the returned buffer. */
struct buf *http_resp_begin(struct http_session *s);

/*
 * Finish the response started with http_resp_begin (or with no body when it
 * was not called) and queue it. Adds Date, Content-Length (not for 1xx, 204,
 * 304), Connection when needed. Records metrics. Exactly once per request.
 */
void http_resp_finish(struct http_session *s, int status, const struct http_resp *h);

/* A complete problem+json response. `detail` is escaped; NULL for none. */
void http_resp_problem(struct http_session *s, int status, const char *detail,
                       const struct http_resp *h);

/* Standard reason phrase ("Not Found"); "Unknown" for codes we never send. */
const char *http_reason(int status);

/* IMF-fixdate for now, cached per second: "Thu, 26 Nov 2026 15:00:00 GMT". */
const char *http_date_now(void);

#endif
