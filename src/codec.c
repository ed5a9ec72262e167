/*
 * codec: JSON in and out of the service (see include/ringlet/codec.h).
 *
 * Request bodies go through two parsers. First our own strict RFC 8259 scanner
 * (the same one behind codec_json_valid), because json-c 0.16 is lenient even
 * with JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8: it accepts NaN,
 * Infinity, "1.", raw tabs in strings, overlong and surrogate UTF-8 bytes,
 * turns lone \uD800 escapes into U+FFFD, truncates object keys at \u0000 and
 * clamps integers beyond int64/uint64 to the limit. The scanner rejects all
 * of that, notes where top-level members start and end, and counts \u0000
 * escapes. Then json-c builds the tree that the field rules are checked on.
 *
 * The "data" text handed to the database is the client's own text of the
 * data value with insignificant whitespace removed, not json-c's
 * re-serialisation, so numbers json-c cannot represent (big integers) reach
 * jsonb unchanged. It lives in a heap copy owned by the json-c root (userdata).
 *
 * Output is written straight into a struct buf: every render function first
 * computes the exact size, reserves once, then writes, so a failure never
 * leaves partial output behind and no per-byte appends happen.
 *
 * This module does not know about HTTP statuses beyond printing the number it
 * is given in a problem document.
 */
#include "ringlet/codec.h"

#include "ringlet/buf.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

/* ---- UTF-8 ---- */

/* Length of the well-formed UTF-8 sequence at p (n > 0 bytes left), or 0. */
static size_t utf8_seq_len(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    unsigned char lo = 0x80, hi = 0xBF;
    size_t len;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* UTF-16 surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* > U+10FFFF */
    } else {
        return 0; /* continuation byte, C0/C1 overlong lead, F5..FF */
    }
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    return len;
}

bool codec_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    while (i < len) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t n = utf8_seq_len(p + i, len - i);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

/* ---- strict JSON scanner ---- */

enum scan_err {
    SCAN_OK = 0,
    SCAN_SYNTAX,    /* grammar violation, including trailing bytes */
    SCAN_DEPTH,     /* nesting deeper than CODEC_MAX_DEPTH */
    SCAN_UTF8,      /* ill-formed UTF-8 inside a string */
    SCAN_SURROGATE, /* \u escape that is a lone or misordered surrogate */
    SCAN_EMPTY,     /* nothing but whitespace */
};

struct scan {
    const unsigned char *p;
    size_t len;
    size_t pos; /* next byte; the error position after a failure */
    enum scan_err err;
    size_t nuls; /* \u0000 escapes seen so far, keys included */
    bool track;  /* record the members of a top-level object */
    /* Filled when `track` and the top-level value is an object: */
    size_t members;    /* members as written, duplicates counted */
    size_t name_seen;  /* members whose key decodes to "name" */
    size_t data_seen;  /* members whose key decodes to "data" */
    bool key_nul;      /* some top-level key contains \u0000 */
    size_t data_start; /* raw span of the last "data" value */
    size_t data_end;
    bool data_nul; /* that value contains \u0000 in a key or string */
};

static bool scan_fail(struct scan *s, enum scan_err err)
{
    s->err = err;
    return false;
}

static void scan_ws(struct scan *s)
{
    while (s->pos < s->len) {
        unsigned char c = s->p[s->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        s->pos++;
    }
}

static int hex_val(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Four hex digits at p[0..4) (caller checked the bounds), or -1. */
static long hex4(const unsigned char *p)
{
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hex_val(p[i]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

/* s->pos is at the opening quote; leaves s->pos after the closing quote. */
static bool scan_string(struct scan *s)
{
    const unsigned char *p = s->p;
    size_t len = s->len;
    size_t i = s->pos + 1;

    for (;;) {
        /* Fast path over plain printable ASCII. */
        while (i < len && p[i] >= 0x20 && p[i] < 0x80 && p[i] != '"' && p[i] != '\\')
            i++;
        if (i >= len) {
            s->pos = i;
            return scan_fail(s, SCAN_SYNTAX);
        }
        unsigned char c = p[i];
        if (c == '"') {
            s->pos = i + 1;
            return true;
        }
        if (c < 0x20) {
            s->pos = i;
            return scan_fail(s, SCAN_SYNTAX);
        }
        if (c >= 0x80) {
            size_t n = utf8_seq_len(p + i, len - i);
            if (n == 0) {
                s->pos = i;
                return scan_fail(s, SCAN_UTF8);
            }
            i += n;
            continue;
        }
        /* Backslash escape. */
        s->pos = i;
        if (i + 1 >= len)
            return scan_fail(s, SCAN_SYNTAX);
        switch (p[i + 1]) {
        case '"':
        case '\\':
        case '/':
        case 'b':
        case 'f':
        case 'n':
        case 'r':
        case 't':
            i += 2;
            continue;
        case 'u':
            break;
        default:
            return scan_fail(s, SCAN_SYNTAX);
        }
        if (len - i < 6)
            return scan_fail(s, SCAN_SYNTAX);
        long cp = hex4(p + i + 2);
        if (cp < 0)
            return scan_fail(s, SCAN_SYNTAX);
        if (cp >= 0xDC00 && cp <= 0xDFFF)
            return scan_fail(s, SCAN_SURROGATE); /* low half without a high half */
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            /* A high half must be followed at once by an escaped low half. */
            if (len - i < 12 || p[i + 6] != '\\' || p[i + 7] != 'u')
                return scan_fail(s, SCAN_SURROGATE);
            long lo = hex4(p + i + 8);
            if (lo < 0xDC00 || lo > 0xDFFF) {
                if (lo < 0)
                    s->pos = i + 6;
                return scan_fail(s, lo < 0 ? SCAN_SYNTAX : SCAN_SURROGATE);
            }
            i += 12;
            continue;
        }
        if (cp == 0)
            s->nuls++;
        i += 6;
    }
}

static bool scan_digits(struct scan *s)
{
    size_t start = s->pos;
    while (s->pos < s->len && s->p[s->pos] >= '0' && s->p[s->pos] <= '9')
        s->pos++;
    return s->pos > start ? true : scan_fail(s, SCAN_SYNTAX);
}

/* number = [ "-" ] ( "0" / [1-9] *DIGIT ) [ "." 1*DIGIT ] [ ("e"/"E") [+-] 1*DIGIT ] */
static bool scan_number(struct scan *s)
{
    if (s->p[s->pos] == '-')
        s->pos++;
    if (s->pos >= s->len)
        return scan_fail(s, SCAN_SYNTAX);
    if (s->p[s->pos] == '0')
        s->pos++; /* a digit after a leading 0 is caught by the caller as trailing bytes */
    else if (!scan_digits(s))
        return false;
    if (s->pos < s->len && s->p[s->pos] == '.') {
        s->pos++;
        if (!scan_digits(s))
            return false;
    }
    if (s->pos < s->len && (s->p[s->pos] == 'e' || s->p[s->pos] == 'E')) {
        s->pos++;
        if (s->pos < s->len && (s->p[s->pos] == '+' || s->p[s->pos] == '-'))
            s->pos++;
        if (!scan_digits(s))
            return false;
    }
    return true;
}

static bool scan_literal(struct scan *s, const char *lit, size_t n)
{
    if (s->len - s->pos < n || memcmp(s->p + s->pos, lit, n) != 0)
        return scan_fail(s, SCAN_SYNTAX);
    s->pos += n;
    return true;
}

/*
 * True when the raw (still escaped, validated) key text equals the ASCII
 * literal `lit` once decoded: {"n\u0061me":..} is a "name" member.
 */
static bool raw_key_eq(const unsigned char *k, size_t n, const char *lit)
{
    size_t i = 0;

    for (; *lit; lit++) {
        if (i >= n)
            return false;
        long cp = k[i];
        if (k[i] == '\\') {
            if (i + 1 >= n)
                return false;
            switch (k[i + 1]) {
            case 'b':
                cp = '\b';
                break;
            case 'f':
                cp = '\f';
                break;
            case 'n':
                cp = '\n';
                break;
            case 'r':
                cp = '\r';
                break;
            case 't':
                cp = '\t';
                break;
            case 'u':
                if (n - i < 6)
                    return false;
                cp = hex4(k + i + 2);
                i += 4;
                break;
            default: /* \" \\ \/ */
                cp = k[i + 1];
                break;
            }
            i += 2;
        } else {
            i++;
        }
        if (cp != (unsigned char)*lit)
            return false;
    }
    return i == n;
}

static bool scan_value(struct scan *s, unsigned depth);

static bool scan_object(struct scan *s, unsigned depth)
{
    bool top = s->track && depth == 1;

    s->pos++; /* '{' */
    scan_ws(s);
    if (s->pos < s->len && s->p[s->pos] == '}') {
        s->pos++;
        return true;
    }
    for (;;) {
        if (s->pos >= s->len || s->p[s->pos] != '"')
            return scan_fail(s, SCAN_SYNTAX);
        size_t key_start = s->pos + 1, nuls = s->nuls;
        if (!scan_string(s))
            return false;
        size_t key_end = s->pos - 1;
        bool key_nul = s->nuls != nuls;
        scan_ws(s);
        if (s->pos >= s->len || s->p[s->pos] != ':')
            return scan_fail(s, SCAN_SYNTAX);
        s->pos++;
        scan_ws(s);
        size_t val_start = s->pos;
        nuls = s->nuls;
        if (!scan_value(s, depth))
            return false;
        if (top) {
            const unsigned char *k = s->p + key_start;
            size_t kn = key_end - key_start;
            s->members++;
            s->key_nul |= key_nul;
            if (raw_key_eq(k, kn, "name")) {
                s->name_seen++;
            } else if (raw_key_eq(k, kn, "data")) {
                s->data_seen++;
                s->data_start = val_start;
                s->data_end = s->pos;
                s->data_nul = s->nuls != nuls;
            }
        }
        scan_ws(s);
        if (s->pos >= s->len)
            return scan_fail(s, SCAN_SYNTAX);
        if (s->p[s->pos] == '}') {
            s->pos++;
            return true;
        }
        if (s->p[s->pos] != ',')
            return scan_fail(s, SCAN_SYNTAX);
        s->pos++;
        scan_ws(s);
    }
}

static bool scan_array(struct scan *s, unsigned depth)
{
    s->pos++; /* '[' */
    scan_ws(s);
    if (s->pos < s->len && s->p[s->pos] == ']') {
        s->pos++;
        return true;
    }
    for (;;) {
        if (!scan_value(s, depth))
            return false;
        scan_ws(s);
        if (s->pos >= s->len)
            return scan_fail(s, SCAN_SYNTAX);
        if (s->p[s->pos] == ']') {
            s->pos++;
            return true;
        }
        if (s->p[s->pos] != ',')
            return scan_fail(s, SCAN_SYNTAX);
        s->pos++;
        scan_ws(s);
    }
}

/*
 * One value at s->pos (no leading whitespace). `depth` is the number of
 * objects/arrays around it; recursion is bounded by CODEC_MAX_DEPTH.
 */
static bool scan_value(struct scan *s, unsigned depth)
{
    if (s->pos >= s->len)
        return scan_fail(s, SCAN_SYNTAX);
    switch (s->p[s->pos]) {
    case '{':
    case '[':
        if (depth >= CODEC_MAX_DEPTH)
            return scan_fail(s, SCAN_DEPTH);
        return s->p[s->pos] == '{' ? scan_object(s, depth + 1) : scan_array(s, depth + 1);
    case '"':
        return scan_string(s);
    case 't':
        return scan_literal(s, "true", 4);
    case 'f':
        return scan_literal(s, "false", 5);
    case 'n':
        return scan_literal(s, "null", 4);
    default:
        if (s->p[s->pos] == '-' || (s->p[s->pos] >= '0' && s->p[s->pos] <= '9'))
            return scan_number(s);
        return scan_fail(s, SCAN_SYNTAX);
    }
}

/* Whole document: ws value ws, nothing else; `depth` levels already around it. */
static bool scan_document_at(struct scan *s, unsigned depth)
{
    scan_ws(s);
    if (s->pos >= s->len)
        return scan_fail(s, SCAN_EMPTY);
    if (!scan_value(s, depth))
        return false;
    scan_ws(s);
    if (s->pos != s->len)
        return scan_fail(s, SCAN_SYNTAX);
    return true;
}

static bool scan_document(struct scan *s)
{
    return scan_document_at(s, 0);
}

static void scan_init(struct scan *s, const char *p, size_t len, bool track)
{
    memset(s, 0, sizeof(*s));
    s->p = (const unsigned char *)p;
    s->len = len;
    s->track = track;
}

/* codec_json_valid for a value that will sit `depth` levels deep in a document. */
static bool json_valid_at(const char *s, size_t len, bool object_only, unsigned depth)
{
    struct scan sc;

    if (!s)
        return false;
    scan_init(&sc, s, len, false);
    if (!scan_document_at(&sc, depth))
        return false;
    if (object_only) {
        size_t i = 0;
        while (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')
            i++;
        return s[i] == '{';
    }
    return true;
}

bool codec_json_valid(const char *s, size_t len, bool object_only)
{
    return json_valid_at(s, len, object_only, 0);
}

/* ---- request bodies ---- */

#define DETAIL_ECHO_MAX 64 /* bytes of client input ever copied into a detail */

static int fail(char *detail, size_t detail_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *detail, size_t detail_len, const char *fmt, ...)
{
    if (detail && detail_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(detail, detail_len, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

/* Bytes of `s` to echo: at most DETAIL_ECHO_MAX, not splitting a UTF-8 sequence. */
static int echo_len(const char *s, size_t len)
{
    if (len <= DETAIL_ECHO_MAX)
        return (int)len;
    size_t cut = DETAIL_ECHO_MAX;
    while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
        cut--;
    return (int)cut;
}

static int scan_detail(const struct scan *s, char *detail, size_t detail_len)
{
    switch (s->err) {
    case SCAN_EMPTY:
        return fail(detail, detail_len, "malformed JSON: empty body");
    case SCAN_DEPTH:
        return fail(detail, detail_len, "malformed JSON at byte %zu: nested deeper than %d levels",
                    s->pos, CODEC_MAX_DEPTH);
    case SCAN_UTF8:
        return fail(detail, detail_len, "malformed JSON at byte %zu: invalid UTF-8", s->pos);
    case SCAN_SURROGATE:
        return fail(detail, detail_len, "malformed JSON at byte %zu: unpaired surrogate escape",
                    s->pos);
    default:
        return fail(detail, detail_len, "malformed JSON at byte %zu", s->pos);
    }
}

/* JSON whitespace outside strings dropped; `src` is known-valid JSON. */
static size_t json_compact(char *dst, const char *src, size_t len)
{
    size_t o = 0;
    bool in_str = false;

    for (size_t i = 0; i < len; i++) {
        char c = src[i];
        if (in_str) {
            dst[o++] = c;
            if (c == '\\')
                dst[o++] = src[++i]; /* escaped byte; a valid escape never ends the input */
            else if (c == '"')
                in_str = false;
        } else if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            dst[o++] = c;
            if (c == '"')
                in_str = true;
        }
    }
    return o;
}

static void free_userdata(struct json_object *jso, void *userdata)
{
    (void)jso;
    free(userdata);
}

/* Code points in valid UTF-8: every byte that is not a continuation byte. */
static size_t utf8_count(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

/*
 * Duplicate members: json-c keeps the last value of a repeated key silently,
 * so the scanner counts "name" and "data" members itself (keys compared after
 * unescaping) and a repeat is a 400. Inside "data" repeats are left alone:
 * PostgreSQL jsonb keeps the last one too.
 */
int codec_item_parse(const char *body, size_t len, struct codec_item_input *in, char *detail,
                     size_t detail_len)
{
    static const char name_rule[] = "field \"name\" must be a string of 1 to 200 characters";
    struct scan sc;
    int rc;

    if (detail && detail_len)
        detail[0] = '\0';
    memset(in, 0, sizeof(*in));
    if (!body)
        len = 0;
    if (len > INT_MAX - 1) /* json-c takes an int length */
        return fail(detail, detail_len, "request body too large");

    scan_init(&sc, body ? body : "", len, true);
    if (!scan_document(&sc))
        return scan_detail(&sc, detail, detail_len);
    {
        size_t i = 0;
        while (body[i] == ' ' || body[i] == '\t' || body[i] == '\n' || body[i] == '\r')
            i++;
        if (body[i] != '{')
            return fail(detail, detail_len, "request body must be a JSON object");
    }

    struct json_tokener *tok = json_tokener_new_ex(CODEC_MAX_DEPTH);
    if (!tok)
        return -ENOMEM;
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    struct json_object *root = json_tokener_parse_ex(tok, body, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (!root || jerr != json_tokener_success) {
        /* Not expected after our scanner accepted it; be safe either way. */
        json_object_put(root);
        return fail(detail, detail_len, "malformed JSON at byte %zu", end);
    }
    if (!json_object_is_type(root, json_type_object)) {
        rc = fail(detail, detail_len, "request body must be a JSON object");
        goto out_put_root;
    }

    /* json-c cut such keys at the NUL, so test before looking at key names. */
    if (sc.key_nul) {
        rc = fail(detail, detail_len, "field names must not contain \\u0000");
        goto out_put_root;
    }
    json_object_object_foreach(root, key, val)
    {
        (void)val;
        if (strcmp(key, "name") != 0 && strcmp(key, "data") != 0) {
            size_t kl = strlen(key);
            int el = echo_len(key, kl);
            rc = fail(detail, detail_len, "unknown field \"%.*s%s\"", el, key,
                      (size_t)el < kl ? "..." : "");
            goto out_put_root;
        }
    }
    if (sc.name_seen > 1 || sc.data_seen > 1 ||
        sc.members != (size_t)json_object_object_length(root)) {
        rc = fail(detail, detail_len, "duplicate field \"%s\"", sc.data_seen > 1 ? "data" : "name");
        goto out_put_root;
    }

    struct json_object *name = NULL, *data = NULL;
    if (!json_object_object_get_ex(root, "name", &name)) {
        rc = fail(detail, detail_len, "missing field \"name\"");
        goto out_put_root;
    }
    if (!json_object_is_type(name, json_type_string)) {
        rc = fail(detail, detail_len, "%s", name_rule);
        goto out_put_root;
    }
    const char *nm = json_object_get_string(name);
    size_t nl = (size_t)json_object_get_string_len(name);
    if (memchr(nm, '\0', nl)) {
        rc = fail(detail, detail_len, "field \"name\" must not contain \\u0000");
        goto out_put_root;
    }
    /* Always true after the scanner; cheap insurance before counting. */
    if (!codec_utf8_valid(nm, nl)) {
        rc = fail(detail, detail_len, "field \"name\" must be valid UTF-8");
        goto out_put_root;
    }
    size_t chars = utf8_count(nm, nl);
    if (chars < 1 || chars > CODEC_NAME_MAX_CHARS) {
        rc = fail(detail, detail_len, "%s", name_rule);
        goto out_put_root;
    }

    if (json_object_object_get_ex(root, "data", &data)) {
        if (!json_object_is_type(data, json_type_object)) {
            rc = fail(detail, detail_len, "field \"data\" must be an object");
            goto out_put_root;
        }
        /*
         * The scanner counted every \u0000 escape, in keys too (json-c would
         * have cut a key at it, so walking the tree could not see those).
         */
        if (sc.data_nul) {
            rc = fail(detail, detail_len, "field \"data\" must not contain \\u0000");
            goto out_put_root;
        }
        size_t raw = sc.data_end - sc.data_start;
        char *txt = malloc(raw + 1);
        if (!txt) {
            rc = -ENOMEM;
            goto out_put_root;
        }
        in->data_len = json_compact(txt, body + sc.data_start, raw);
        txt[in->data_len] = '\0';
        json_object_set_userdata(root, txt, free_userdata);
        in->data = txt;
    } else {
        in->data = "{}";
        in->data_len = 2;
    }

    in->root = root;
    in->name = nm;
    in->name_len = nl;
    return 0;

out_put_root:
    json_object_put(root);
    memset(in, 0, sizeof(*in));
    return rc;
}

void codec_item_input_fini(struct codec_item_input *in)
{
    if (!in)
        return;
    json_object_put(in->root); /* also frees the data text (userdata) */
    memset(in, 0, sizeof(*in));
}

/* ---- output ---- */

/* Escape sequence for an ASCII byte, or NULL when it is copied as is. */
static const char *ascii_escape(unsigned char c)
{
    static const char *const ctl[0x20] = {
        "\\u0000", "\\u0001", "\\u0002", "\\u0003", "\\u0004", "\\u0005", "\\u0006", "\\u0007",
        "\\b",     "\\t",     "\\n",     "\\u000b", "\\f",     "\\r",     "\\u000e", "\\u000f",
        "\\u0010", "\\u0011", "\\u0012", "\\u0013", "\\u0014", "\\u0015", "\\u0016", "\\u0017",
        "\\u0018", "\\u0019", "\\u001a", "\\u001b", "\\u001c", "\\u001d", "\\u001e", "\\u001f",
    };
    if (c < 0x20)
        return ctl[c];
    if (c == '"')
        return "\\\"";
    if (c == '\\')
        return "\\\\";
    return NULL;
}

static const char replacement[] = "\xEF\xBF\xBD"; /* U+FFFD */

/*
 * Exact size of `s` as a JSON string literal including the quotes, or
 * SIZE_MAX if that does not fit in a size_t (caller treats it as too big).
 */
static size_t string_out_len(const unsigned char *s, size_t len)
{
    size_t out = 2;
    size_t i = 0;

    while (i < len) {
        size_t add, step;
        if (s[i] < 0x80) {
            const char *e = ascii_escape(s[i]);
            add = e ? strlen(e) : 1;
            step = 1;
        } else {
            step = utf8_seq_len(s + i, len - i);
            add = step ? step : sizeof(replacement) - 1;
            if (!step)
                step = 1;
        }
        if (out > SIZE_MAX - add)
            return SIZE_MAX;
        out += add;
        i += step;
    }
    return out;
}

/* Writes exactly string_out_len(s, len) bytes at dst; returns that count. */
static size_t string_write(char *dst, const unsigned char *s, size_t len)
{
    char *o = dst;
    size_t i = 0;

    *o++ = '"';
    while (i < len) {
        size_t run = i;
        while (run < len && s[run] >= 0x20 && s[run] < 0x80 && s[run] != '"' && s[run] != '\\')
            run++;
        memcpy(o, s + i, run - i);
        o += run - i;
        i = run;
        if (i >= len)
            break;
        if (s[i] < 0x80) {
            const char *e = ascii_escape(s[i]);
            size_t el = strlen(e);
            memcpy(o, e, el);
            o += el;
            i++;
            continue;
        }
        size_t n = utf8_seq_len(s + i, len - i);
        if (n) {
            memcpy(o, s + i, n);
            o += n;
            i += n;
        } else {
            memcpy(o, replacement, sizeof(replacement) - 1);
            o += sizeof(replacement) - 1;
            i++;
        }
    }
    *o++ = '"';
    return (size_t)(o - dst);
}

int codec_string_render(struct buf *out, const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)(s ? s : "");
    if (!s)
        len = 0;
    size_t need = string_out_len(u, len);
    if (need == SIZE_MAX)
        return -E2BIG;
    int rc = buf_reserve(out, need);
    if (rc)
        return rc;
    out->len += string_write(out->data + out->len, u, len);
    return 0;
}

static char *put(char *o, const char *s, size_t n)
{
    memcpy(o, s, n);
    return o + n;
}

#define PUT_LIT(o, lit) put((o), (lit), sizeof(lit) - 1)

int codec_problem_render(struct buf *out, int status, const char *title, const char *detail)
{
    static const char p1[] = "{\"type\":\"about:blank\",\"title\":";
    static const char p2[] = ",\"status\":";
    static const char p3[] = ",\"detail\":";
    char st[16];
    const unsigned char *t = (const unsigned char *)(title ? title : "");
    size_t tl = strlen((const char *)t);
    const unsigned char *d = (const unsigned char *)detail;
    size_t dl = d ? strlen(detail) : 0;

    int sl = snprintf(st, sizeof(st), "%d", status);
    size_t t_out = string_out_len(t, tl);
    size_t d_out = d ? string_out_len(d, dl) : 0;
    if (t_out == SIZE_MAX || d_out == SIZE_MAX || t_out > SIZE_MAX / 4 || d_out > SIZE_MAX / 4)
        return -E2BIG;
    size_t need = sizeof(p1) - 1 + t_out + sizeof(p2) - 1 + (size_t)sl + 1;
    if (d)
        need += sizeof(p3) - 1 + d_out;
    int rc = buf_reserve(out, need);
    if (rc)
        return rc;

    char *o = out->data + out->len;
    o = PUT_LIT(o, p1);
    o += string_write(o, t, tl);
    o = PUT_LIT(o, p2);
    o = put(o, st, (size_t)sl);
    if (d) { /* a NULL detail leaves the member out (it is optional in RFC 9457) */
        o = PUT_LIT(o, p3);
        o += string_write(o, d, dl);
    }
    *o++ = '}';
    out->len = (size_t)(o - out->data);
    return 0;
}

/* Plain decimal, no sign, no leading zero (except "0" itself), value <= max. */
static bool decimal_valid(const char *s, size_t len, uint64_t max)
{
    uint64_t v = 0;

    if (!s || len == 0 || len > 20 || (len > 1 && s[0] == '0'))
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (max - d) / 10)
            return false;
        v = v * 10 + d;
    }
    return true;
}

#define TS_LEN 27 /* YYYY-MM-DDTHH:MM:SS.ffffffZ */

static bool timestamp_valid(const char *s, size_t len)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.ddddddZ";

    if (!s || len != TS_LEN)
        return false;
    for (size_t i = 0; i < TS_LEN; i++) {
        if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i])
            return false;
    }
    return true;
}

int codec_item_render(struct buf *out, const struct codec_item_row *r)
{
    static const char k_id[] = "{\"id\":";
    static const char k_name[] = ",\"name\":";
    static const char k_data[] = ",\"data\":";
    static const char k_ver[] = ",\"version\":";
    static const char k_cr[] = ",\"created_at\":\"";
    static const char k_up[] = "\",\"updated_at\":\"";
    static const char k_end[] = "\"}";

    if (!r || r->id_len == 0 || r->id[0] == '0' || r->id_len > 19 ||
        !decimal_valid(r->id, r->id_len, INT64_MAX))
        return -EINVAL;
    if (!decimal_valid(r->version, r->version_len, INT32_MAX))
        return -EINVAL;
    if (!r->name || !codec_utf8_valid(r->name, r->name_len))
        return -EINVAL;
    /* "data" sits one level deep in the item: the whole must stay within the limit */
    if (!r->data || !json_valid_at(r->data, r->data_len, true, 1))
        return -EINVAL;
    if (!timestamp_valid(r->created_at, r->created_at_len) ||
        !timestamp_valid(r->updated_at, r->updated_at_len))
        return -EINVAL;

    const unsigned char *nm = (const unsigned char *)r->name;
    size_t name_out = string_out_len(nm, r->name_len);
    size_t fixed = sizeof(k_id) + sizeof(k_name) + sizeof(k_data) + sizeof(k_ver) + sizeof(k_cr) +
                   sizeof(k_up) + sizeof(k_end) - 7 + r->id_len + r->version_len + 2 * TS_LEN;
    if (name_out == SIZE_MAX || r->data_len > SIZE_MAX - fixed ||
        name_out > SIZE_MAX - fixed - r->data_len)
        return -E2BIG;
    int rc = buf_reserve(out, fixed + r->data_len + name_out);
    if (rc)
        return rc;

    char *o = out->data + out->len;
    o = PUT_LIT(o, k_id);
    o = put(o, r->id, r->id_len);
    o = PUT_LIT(o, k_name);
    o += string_write(o, nm, r->name_len);
    o = PUT_LIT(o, k_data);
    o = put(o, r->data, r->data_len);
    o = PUT_LIT(o, k_ver);
    o = put(o, r->version, r->version_len);
    o = PUT_LIT(o, k_cr);
    o = put(o, r->created_at, TS_LEN);
    o = PUT_LIT(o, k_up);
    o = put(o, r->updated_at, TS_LEN);
    o = PUT_LIT(o, k_end);
    out->len = (size_t)(o - out->data);
    return 0;
}
