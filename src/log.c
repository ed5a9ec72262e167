/*
 * log: one record a line on stderr, JSON (default) or human-readable text
 * (see include/ringlet/log.h).
 *
 * A record is built in a fixed stack buffer and handed to the kernel with a
 * single write(2), so records from one process never interleave and logging
 * never allocates. A record that would not fit is cut at a character
 * boundary, the cut string is closed, and a `"truncated":true` field (text:
 * `truncated=true`) ends it, so every line stays valid JSON. Strings are
 * escaped: control characters as \u00XX, bytes that are not UTF-8 as U+FFFD.
 * This module does not rotate, buffer or ship logs; that is the platform's job.
 */
#include "ringlet/log.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RECORD_MAX   8192 /* bytes a record may take, newline included */
#define TAIL_RESERVE 32   /* kept free for a closing quote and the truncation marker */

static int out_fd = STDERR_FILENO;
static enum cfg_log_format format = CFG_LOG_JSON;
static enum cfg_log_level min_level = CFG_LOG_INFO;

void log_init(enum cfg_log_format fmt, enum cfg_log_level level)
{
    format = fmt == CFG_LOG_TEXT ? CFG_LOG_TEXT : CFG_LOG_JSON;
    min_level = level;
}

void log_set_fd(int fd)
{
    out_fd = fd < 0 ? STDERR_FILENO : fd;
}

bool log_enabled(enum cfg_log_level level)
{
    return level >= min_level;
}

/* A record under construction. Once `full`, nothing more but the tail is added. */
struct rec {
    char buf[RECORD_MAX];
    size_t len;
    bool full;
};

/* Append all of `p` or nothing; running out of room marks the record full. */
static bool raw(struct rec *r, const char *p, size_t n)
{
    if (r->full || n > RECORD_MAX - TAIL_RESERVE - r->len) {
        r->full = true;
        return false;
    }
    memcpy(r->buf + r->len, p, n);
    r->len += n;
    return true;
}

/* Append into the reserve: only for closing quotes and the final tail. */
static void tail(struct rec *r, const char *p, size_t n)
{
    if (n > RECORD_MAX - r->len)
        n = RECORD_MAX - r->len;
    memcpy(r->buf + r->len, p, n);
    r->len += n;
}

/* Length of the valid UTF-8 sequence at `s`, 0 if it is not one. */
static size_t utf8_len(const unsigned char *s)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    if (c < 0xC2)
        return 0; /* continuation byte or overlong 2-byte lead */
    if (c < 0xE0)
        return (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c < 0xF0) {
        if ((s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
            return 0;
        if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] > 0x9F))
            return 0; /* overlong, or a UTF-16 surrogate */
        return 3;
    }
    if (c < 0xF5) {
        if ((s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
            return 0;
        if ((c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] > 0x8F))
            return 0; /* overlong, or beyond U+10FFFF */
        return 4;
    }
    return 0;
}

enum esc { ESC_JSON, ESC_TEXT_BARE, ESC_TEXT_QUOTED };

/*
 * Append `s` escaped, one character at a time so a cut never splits an
 * escape or a UTF-8 sequence. Returns false when it did not all fit.
 */
static bool put_escaped(struct rec *r, const char *s, enum esc mode)
{
    const unsigned char *p = (const unsigned char *)s;
    char tmp[8];
    while (*p) {
        const char *out = tmp;
        size_t n, adv = 1;
        unsigned char c = *p;
        if (c >= 0x80) {
            adv = utf8_len(p);
            if (adv) {
                out = (const char *)p;
                n = adv;
            } else {
                adv = 1;
                out = mode == ESC_JSON ? "\\ufffd" : "\xef\xbf\xbd";
                n = strlen(out);
            }
        } else if ((c == '"' || c == '\\') && mode != ESC_TEXT_BARE) {
            tmp[0] = '\\';
            tmp[1] = (char)c;
            n = 2;
        } else if (c == '\n' || c == '\t' || c == '\r') {
            tmp[0] = '\\';
            tmp[1] = c == '\n' ? 'n' : c == '\t' ? 't' : 'r';
            n = 2;
        } else if (c < 0x20 || c == 0x7f) {
            n = (size_t)snprintf(tmp, sizeof(tmp), "\\u%04x", c);
        } else {
            tmp[0] = (char)c;
            n = 1;
        }
        if (!raw(r, out, n))
            return false;
        p += adv;
    }
    return true;
}

/*
 * A JSON string. A value may be cut (`may_cut`): it is closed and the record
 * marked full. A key may not: false, and the caller drops the whole field.
 */
static bool json_string(struct rec *r, const char *s, bool may_cut)
{
    if (!raw(r, "\"", 1))
        return false;
    if (put_escaped(r, s, ESC_JSON) && raw(r, "\"", 1))
        return true;
    if (!may_cut)
        return false;
    tail(r, "\"", 1);
    return true;
}

static bool needs_quotes(const char *s)
{
    if (!*s)
        return true;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f)
            return true;
    }
    return false;
}

/* A text value, quoted when needed. False only when none of it fitted. */
static bool text_value(struct rec *r, const char *s)
{
    size_t mark = r->len;
    if (!s)
        return raw(r, "-", 1);
    if (!needs_quotes(s))
        return put_escaped(r, s, ESC_TEXT_BARE) || r->len > mark;
    if (!raw(r, "\"", 1))
        return false;
    if (!(put_escaped(r, s, ESC_TEXT_QUOTED) && raw(r, "\"", 1)))
        tail(r, "\"", 1);
    return true;
}

/* A double as the shortest of %.15g / %.17g that reads back exactly. */
static size_t fmt_double(char *out, size_t len, double d, bool json)
{
    if (!isfinite(d))
        return (size_t)snprintf(out, len, "%s",
                                json       ? "null"
                                : isnan(d) ? "NaN"
                                : d > 0    ? "+Inf"
                                           : "-Inf");
    int n = snprintf(out, len, "%.15g", d);
    if (strtod(out, NULL) != d)
        n = snprintf(out, len, "%.17g", d);
    return (size_t)n;
}

/* Everything but strings, formatted into `tmp`. */
static size_t scalar(const struct log_field *f, char *tmp, size_t len, bool json)
{
    switch (f->type) {
    case LOG_T_INT:
        return (size_t)snprintf(tmp, len, "%lld", f->v.i);
    case LOG_T_UINT:
        return (size_t)snprintf(tmp, len, "%llu", f->v.u);
    case LOG_T_DBL:
        return fmt_double(tmp, len, f->v.d, json);
    case LOG_T_BOOL:
        return (size_t)snprintf(tmp, len, "%s", f->v.b ? "true" : "false");
    default:
        return (size_t)snprintf(tmp, len, "%s", json ? "null" : "-");
    }
}

static void json_field(struct rec *r, const struct log_field *f)
{
    size_t mark = r->len;
    char tmp[64];
    bool ok = raw(r, ",", 1) && json_string(r, f->key ? f->key : "", false) && raw(r, ":", 1);
    if (ok) {
        if (f->type == LOG_T_STR && f->v.s)
            ok = json_string(r, f->v.s, true);
        else
            ok = raw(r, tmp, scalar(f, tmp, sizeof(tmp), true));
    }
    if (!ok) {
        r->len = mark; /* drop the half-written field */
        r->full = true;
    }
}

static void text_field(struct rec *r, const struct log_field *f)
{
    size_t mark = r->len;
    char tmp[64];
    bool ok =
        raw(r, " ", 1) && put_escaped(r, f->key ? f->key : "", ESC_TEXT_BARE) && raw(r, "=", 1);
    if (ok) {
        if (f->type == LOG_T_STR)
            ok = text_value(r, f->v.s);
        else
            ok = raw(r, tmp, scalar(f, tmp, sizeof(tmp), false));
    }
    if (!ok) {
        r->len = mark; /* drop the half-written field */
        r->full = true;
    }
}

static size_t timestamp(char *out, size_t len)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    return (size_t)snprintf(out, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
                            tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                            ts.tv_nsec / 1000000);
}

static void emit(const struct rec *r)
{
    size_t off = 0;
    while (off < r->len) {
        ssize_t n = write(out_fd, r->buf + off, r->len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* nowhere to report a failure to log */
        off += (size_t)n;
    }
}

void log_write(enum cfg_log_level level, const char *msg, const struct log_field *fields)
{
    static const char *const json_names[] = {"debug", "info", "warn", "error"};
    static const char *const text_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
    struct rec r;
    char ts[96];             /* 24 bytes in practice; sized for any int fields */
    int saved_errno = errno; /* callers may log between a failure and its errno check */

    if (!log_enabled(level))
        return;
    if ((unsigned)level > CFG_LOG_ERROR)
        level = CFG_LOG_ERROR;
    r.len = 0;
    r.full = false;
    timestamp(ts, sizeof(ts));
    if (!msg)
        msg = "";

    if (format == CFG_LOG_JSON) {
        raw(&r, "{\"ts\":\"", 7);
        raw(&r, ts, strlen(ts));
        raw(&r, "\",\"level\":\"", 11);
        raw(&r, json_names[level], strlen(json_names[level]));
        raw(&r, "\",\"msg\":", 8);
        json_string(&r, msg, true);
        for (const struct log_field *f = fields; f && f->type != LOG_T_END && !r.full; f++)
            json_field(&r, f);
        if (r.full)
            tail(&r, ",\"truncated\":true}\n", 19);
        else
            tail(&r, "}\n", 2);
    } else {
        raw(&r, ts, strlen(ts));
        raw(&r, " ", 1);
        raw(&r, text_names[level], strlen(text_names[level]));
        raw(&r, " ", 1);
        put_escaped(&r, msg, ESC_TEXT_BARE);
        for (const struct log_field *f = fields; f && f->type != LOG_T_END && !r.full; f++)
            text_field(&r, f);
        if (r.full)
            tail(&r, " truncated=true\n", 16);
        else
            tail(&r, "\n", 1);
    }
    emit(&r);
    errno = saved_errno;
}
