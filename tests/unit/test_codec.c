/*
 * Unit tests for the codec: request body parsing and validation, item and
 * problem rendering (output parsed back with json-c), the strict JSON
 * validator and the UTF-8 validator.
 */
#include "ringlet/codec.h"

#include "ringlet/buf.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

/* ---- helpers ---- */

static char detail[256];

static int parse(const char *body, struct codec_item_input *in)
{
    memset(detail, 'X', sizeof(detail));
    detail[sizeof(detail) - 1] = '\0';
    return codec_item_parse(body, strlen(body), in, detail, sizeof(detail));
}

/* Expect -EINVAL and exactly `want` as the detail. */
static void expect_reject(const char *body, const char *want)
{
    struct codec_item_input in;
    int rc = parse(body, &in);
    cr_assert_eq(rc, -EINVAL, "body %s: rc %d, want -EINVAL", body, rc);
    cr_assert_str_eq(detail, want, "body %s", body);
}

/* Expect -EINVAL and a detail starting with `prefix`. */
static void expect_reject_prefix(const char *body, size_t len, const char *prefix)
{
    struct codec_item_input in;
    memset(detail, 0, sizeof(detail));
    int rc = codec_item_parse(body, len, &in, detail, sizeof(detail));
    cr_assert_eq(rc, -EINVAL, "rc %d, want -EINVAL", rc);
    cr_assert_eq(strncmp(detail, prefix, strlen(prefix)), 0, "detail \"%s\", want prefix \"%s\"",
                 detail, prefix);
}

/* Nested arrays: `depth` '[' then `depth` ']'. Caller frees. */
static char *nest(size_t depth, const char *prefix, const char *suffix)
{
    size_t pl = strlen(prefix), sl = strlen(suffix);
    char *s = malloc(pl + 2 * depth + sl + 1);
    cr_assert_not_null(s);
    memcpy(s, prefix, pl);
    memset(s + pl, '[', depth);
    memset(s + pl + depth, ']', depth);
    memcpy(s + pl + 2 * depth, suffix, sl + 1);
    return s;
}

/* "é" (2 bytes) repeated n times. */
static char *multibyte_name(size_t n)
{
    char *s = malloc(2 * n + 1);
    cr_assert_not_null(s);
    for (size_t i = 0; i < n; i++) {
        s[2 * i] = (char)0xC3;
        s[2 * i + 1] = (char)0xA9;
    }
    s[2 * n] = '\0';
    return s;
}

/* ---- codec_item_parse: accepted bodies ---- */

Test(item_parse, round_trip)
{
    struct codec_item_input in;
    const char *body = " \n{ \"name\" : \"widget\", \"data\" : {\"color\": \"red\", \"tags\": "
                       "[\"a\", \"b\"], \"n\": 1.50, \"big\": 123456789012345678901234567890, "
                       "\"s\": \"a b\\\"c\", \"u\": \"\\u00e9/\\/\"} }\r\n\t";
    cr_assert_eq(parse(body, &in), 0, "detail: %s", detail);
    cr_assert_not_null(in.root);
    cr_assert_eq(in.name_len, 6);
    cr_assert_eq(memcmp(in.name, "widget", 6), 0);
    const char *want = "{\"color\":\"red\",\"tags\":[\"a\",\"b\"],\"n\":1.50,"
                       "\"big\":123456789012345678901234567890,\"s\":\"a b\\\"c\","
                       "\"u\":\"\\u00e9/\\/\"}";
    cr_assert_eq(in.data_len, strlen(want));
    cr_assert_str_eq(in.data, want);
    cr_assert(codec_json_valid(in.data, in.data_len, true));

    /* The data text means the same as the input's data value. */
    struct json_object *d = json_tokener_parse(in.data);
    cr_assert_not_null(d);
    struct json_object *v;
    cr_assert(json_object_object_get_ex(d, "color", &v));
    cr_assert_str_eq(json_object_get_string(v), "red");
    cr_assert(json_object_object_get_ex(d, "u", &v));
    cr_assert_str_eq(json_object_get_string(v), "\xC3\xA9//");
    json_object_put(d);
    codec_item_input_fini(&in);
    cr_assert_null(in.root);
}

Test(item_parse, data_absent_is_empty_object)
{
    struct codec_item_input in;
    cr_assert_eq(parse("{\"name\":\"x\"}", &in), 0);
    cr_assert_eq(in.data_len, 2);
    cr_assert_eq(memcmp(in.data, "{}", 2), 0);
    cr_assert_eq(in.name_len, 1);
    codec_item_input_fini(&in);
}

Test(item_parse, escaped_keys_and_name)
{
    struct codec_item_input in;
    /* Keys written with escapes are still the known fields. */
    cr_assert_eq(parse("{\"n\\u0061me\":\"caf\\u00e9 \\ud83d\\ude00\",\"\\u0064ata\":{}}", &in), 0,
                 "detail: %s", detail);
    cr_assert_eq(in.name_len, 10);
    cr_assert_eq(memcmp(in.name, "caf\xC3\xA9 \xF0\x9F\x98\x80", 10), 0);
    cr_assert_str_eq(in.data, "{}");
    codec_item_input_fini(&in);
}

Test(item_parse, body_not_nul_terminated)
{
    struct codec_item_input in;
    const char body[] = "{\"name\":\"abc\"}GARBAGE";
    cr_assert_eq(codec_item_parse(body, 14, &in, detail, sizeof(detail)), 0, "%s", detail);
    cr_assert_eq(in.name_len, 3);
    codec_item_input_fini(&in);
}

Test(item_parse, deep_data_within_limit)
{
    struct codec_item_input in;
    /* root object (1) + data object (2) + 62 arrays = 64 levels. */
    char *body = nest(62, "{\"name\":\"n\",\"data\":{\"a\":", "}}");
    cr_assert_eq(parse(body, &in), 0, "detail: %s", detail);
    codec_item_input_fini(&in);
    free(body);
}

/* ---- codec_item_parse: rejections ---- */

Test(item_parse, malformed)
{
    expect_reject("", "malformed JSON: empty body");
    expect_reject(" \r\n\t", "malformed JSON: empty body");
    expect_reject("{\"name\":\"x\"", "malformed JSON at byte 11");
    expect_reject("{\"name\":\"x\",}", "malformed JSON at byte 12");
    expect_reject("{\"name\":'x'}", "malformed JSON at byte 8");
    expect_reject("{name:\"x\"}", "malformed JSON at byte 1");
    expect_reject("{\"name\":\"x\",\"data\":{\"a\":NaN}}", "malformed JSON at byte 24");
    expect_reject("{\"name\":\"x\",\"data\":{\"a\":1.}}", "malformed JSON at byte 26");
    expect_reject("{\"name\":\"x\",\"data\":{\"a\":01}}", "malformed JSON at byte 25");
    expect_reject("{\"name\":\"a\tb\"}", "malformed JSON at byte 10");
    struct codec_item_input in;
    cr_assert_eq(codec_item_parse(NULL, 0, &in, detail, sizeof(detail)), -EINVAL);
}

Test(item_parse, trailing_garbage)
{
    expect_reject("{\"name\":\"x\"} x", "malformed JSON at byte 13");
    expect_reject("{\"name\":\"x\"}{}", "malformed JSON at byte 12");
    expect_reject_prefix("{\"name\":\"x\"}\0", 13, "malformed JSON at byte 12");
}

Test(item_parse, not_an_object)
{
    expect_reject("[]", "request body must be a JSON object");
    expect_reject("\"name\"", "request body must be a JSON object");
    expect_reject("42", "request body must be a JSON object");
    expect_reject("null", "request body must be a JSON object");
}

Test(item_parse, unknown_fields)
{
    expect_reject("{\"name\":\"x\",\"colour\":\"red\"}", "unknown field \"colour\"");
    expect_reject("{\"id\":1,\"name\":\"x\"}", "unknown field \"id\"");
    expect_reject("{\"name\":\"x\",\"version\":1}", "unknown field \"version\"");
    expect_reject("{\"name\":\"x\",\"created_at\":\"\"}", "unknown field \"created_at\"");
    expect_reject("{\"name\":\"x\",\"updated_at\":\"\"}", "unknown field \"updated_at\"");
    expect_reject("{\"Name\":\"x\"}", "unknown field \"Name\"");
    expect_reject("{\"name\":\"x\",\"\":1}", "unknown field \"\"");
    /* The detail never echoes more than 64 bytes of the key. */
    char body[300], want[120];
    char key[101];
    memset(key, 'k', 100);
    key[100] = '\0';
    snprintf(body, sizeof(body), "{\"name\":\"x\",\"%s\":1}", key);
    snprintf(want, sizeof(want), "unknown field \"%.64s...\"", key);
    expect_reject(body, want);
    /* ... and does not split a UTF-8 character doing so. */
    char *mb = multibyte_name(40); /* 80 bytes */
    snprintf(body, sizeof(body), "{\"%s\":1}", mb);
    snprintf(want, sizeof(want), "unknown field \"%.64s...\"", mb);
    expect_reject(body, want);
    free(mb);
}

Test(item_parse, nul_in_top_level_key)
{
    /* json-c would cut this key to "name"; it must not pass as the name. */
    expect_reject("{\"name\\u0000x\":\"y\"}", "field names must not contain \\u0000");
    expect_reject("{\"name\":\"y\",\"\\u0000\":1}", "field names must not contain \\u0000");
}

Test(item_parse, duplicates)
{
    expect_reject("{\"name\":\"a\",\"name\":\"b\"}", "duplicate field \"name\"");
    expect_reject("{\"name\":\"a\",\"n\\u0061me\":\"b\"}", "duplicate field \"name\"");
    expect_reject("{\"name\":\"a\",\"data\":{},\"data\":{\"x\":1}}", "duplicate field \"data\"");
    /* Duplicates inside data are jsonb's business (last one wins there too). */
    struct codec_item_input in;
    cr_assert_eq(parse("{\"name\":\"a\",\"data\":{\"k\":1,\"k\":2}}", &in), 0);
    codec_item_input_fini(&in);
}

Test(item_parse, name_rules)
{
    const char *rule = "field \"name\" must be a string of 1 to 200 characters";
    expect_reject("{}", "missing field \"name\"");
    expect_reject("{\"data\":{}}", "missing field \"name\"");
    expect_reject("{\"name\":1}", rule);
    expect_reject("{\"name\":null}", rule);
    expect_reject("{\"name\":true}", rule);
    expect_reject("{\"name\":[\"x\"]}", rule);
    expect_reject("{\"name\":{}}", rule);
    expect_reject("{\"name\":\"\"}", rule);
    expect_reject("{\"name\":\"\\u0000\"}", "field \"name\" must not contain \\u0000");
    expect_reject("{\"name\":\"ab\\u0000cd\"}", "field \"name\" must not contain \\u0000");
}

Test(item_parse, name_length_counts_code_points)
{
    struct codec_item_input in;
    char body[4096];
    char *n200 = multibyte_name(200); /* 400 bytes, 200 characters */
    snprintf(body, sizeof(body), "{\"name\":\"%s\"}", n200);
    cr_assert_eq(parse(body, &in), 0, "detail: %s", detail);
    cr_assert_eq(in.name_len, 400);
    codec_item_input_fini(&in);
    free(n200);

    char *n201 = multibyte_name(201);
    snprintf(body, sizeof(body), "{\"name\":\"%s\"}", n201);
    expect_reject(body, "field \"name\" must be a string of 1 to 200 characters");
    free(n201);

    /* 4-byte characters written as surrogate pair escapes count once each. */
    char *p = body;
    p += sprintf(p, "{\"name\":\"");
    for (int i = 0; i < 200; i++)
        p += sprintf(p, "\\ud83d\\ude00");
    sprintf(p, "\"}");
    cr_assert_eq(parse(body, &in), 0, "detail: %s", detail);
    cr_assert_eq(in.name_len, 800);
    codec_item_input_fini(&in);

    /* One ASCII character is enough. */
    cr_assert_eq(parse("{\"name\":\" \"}", &in), 0);
    codec_item_input_fini(&in);
}

Test(item_parse, data_rules)
{
    const char *rule = "field \"data\" must be an object";
    expect_reject("{\"name\":\"x\",\"data\":null}", rule);
    expect_reject("{\"name\":\"x\",\"data\":[]}", rule);
    expect_reject("{\"name\":\"x\",\"data\":\"{}\"}", rule);
    expect_reject("{\"name\":\"x\",\"data\":1}", rule);
    expect_reject("{\"name\":\"x\",\"data\":false}", rule);
}

Test(item_parse, nul_inside_data)
{
    const char *rule = "field \"data\" must not contain \\u0000";
    expect_reject("{\"name\":\"x\",\"data\":{\"a\":\"\\u0000\"}}", rule);
    expect_reject("{\"name\":\"x\",\"data\":{\"a\":\"left\\u0000right\"}}", rule);
    expect_reject("{\"name\":\"x\",\"data\":{\"a\\u0000b\":1}}", rule);
    expect_reject("{\"name\":\"x\",\"data\":{\"\\u0000\":1}}", rule);
    expect_reject("{\"name\":\"x\",\"data\":{\"a\":[1,[2,[3,{\"b\":[\"\\u0000\"]}]]]}}", rule);
    expect_reject("{\"name\":\"x\",\"data\":{\"a\":[{\"deep\\u0000\":true}]}}", rule);
    expect_reject("{\"data\":{\"a\":\"\\u0000\"},\"name\":\"x\"}", rule);
    /* Not a NUL: an escaped backslash followed by "u0000". */
    struct codec_item_input in;
    cr_assert_eq(parse("{\"name\":\"x\",\"data\":{\"a\":\"\\\\u0000\"}}", &in), 0, "%s", detail);
    cr_assert_str_eq(in.data, "{\"a\":\"\\\\u0000\"}");
    codec_item_input_fini(&in);
    /* Other control escapes are fine. */
    cr_assert_eq(parse("{\"name\":\"x\",\"data\":{\"a\":\"\\u0001\\n\"}}", &in), 0, "%s", detail);
    codec_item_input_fini(&in);
}

Test(item_parse, depth_limit)
{
    /* 1 (root) + 1 (data) + 63 arrays = 65 levels: too deep. */
    char *body = nest(63, "{\"name\":\"n\",\"data\":{\"a\":", "}}");
    expect_reject_prefix(body, strlen(body), "malformed JSON at byte 86: nested deeper than 64");
    free(body);
    body = nest(100000, "", "");
    expect_reject_prefix(body, strlen(body), "malformed JSON at byte 64: nested deeper than 64");
    free(body);
}

Test(item_parse, invalid_utf8)
{
    expect_reject("{\"name\":\"\xC3\"}", "malformed JSON at byte 9: invalid UTF-8");
    expect_reject("{\"name\":\"\xC0\xAF\"}", "malformed JSON at byte 9: invalid UTF-8");
    expect_reject("{\"name\":\"\xED\xA0\x80\"}", "malformed JSON at byte 9: invalid UTF-8");
    expect_reject("{\"name\":\"\xF4\x90\x80\x80\"}", "malformed JSON at byte 9: invalid UTF-8");
    expect_reject("{\"name\":\"x\",\"data\":{\"\xFF\":1}}",
                  "malformed JSON at byte 21: invalid UTF-8");
    /* Raw non-ASCII outside strings is a syntax error. */
    expect_reject("\xEF\xBB\xBF{\"name\":\"x\"}", "malformed JSON at byte 0");
}

Test(item_parse, lone_surrogates)
{
    /* json-c turns these into U+FFFD silently; we refuse them. */
    const char *want = "malformed JSON at byte 9: unpaired surrogate escape";
    expect_reject("{\"name\":\"\\ud800\"}", want);
    expect_reject("{\"name\":\"\\udc00\"}", want);
    expect_reject("{\"name\":\"\\ud800x\"}", want);
    expect_reject("{\"name\":\"\\ud800\\u0041\"}", want);
    expect_reject("{\"name\":\"\\ude00\\ud83d\"}", want);
    expect_reject("{\"name\":\"x\",\"data\":{\"\\udbff\":1}}",
                  "malformed JSON at byte 21: unpaired surrogate escape");
}

/* ---- codec_item_render ---- */

static struct codec_item_row good_row(void)
{
    static const char data[] = "{\"tags\": [\"a\", \"b\"], \"color\": \"red\"}";
    struct codec_item_row r = {
        .id = "42",
        .id_len = 2,
        .name = "wid\"get\\\n\x01\xE2\x80\xA8\xC3\xA9",
        .name_len = 15,
        .data = data,
        .data_len = sizeof(data) - 1,
        .version = "7",
        .version_len = 1,
        .created_at = "2026-11-26T15:00:00.123456Z",
        .created_at_len = 27,
        .updated_at = "2026-11-27T16:01:02.000001Z",
        .updated_at_len = 27,
    };
    return r;
}

Test(item_render, exact_output_and_parse_back)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    cr_assert_eq(buf_append_str(&b, "pre"), 0);
    struct codec_item_row r = good_row();
    cr_assert_eq(codec_item_render(&b, &r), 0);
    const char *want = "pre{\"id\":42,\"name\":\"wid\\\"get\\\\\\n\\u0001\xE2\x80\xA8\xC3\xA9\","
                       "\"data\":{\"tags\": [\"a\", \"b\"], \"color\": \"red\"},\"version\":7,"
                       "\"created_at\":\"2026-11-26T15:00:00.123456Z\","
                       "\"updated_at\":\"2026-11-27T16:01:02.000001Z\"}";
    cr_assert_eq(b.len, strlen(want));
    cr_assert_eq(memcmp(b.data, want, b.len), 0, "got %.*s", (int)b.len, b.data);

    /* b.data is not NUL terminated: parse a copy. */
    char *copy = strndup(b.data + 3, b.len - 3);
    struct json_object *o = json_tokener_parse(copy);
    cr_assert_not_null(o);
    struct json_object *v;
    cr_assert(json_object_object_get_ex(o, "id", &v));
    cr_assert_eq(json_object_get_int64(v), 42);
    cr_assert(json_object_object_get_ex(o, "name", &v));
    cr_assert_eq(json_object_get_string_len(v), 15);
    cr_assert_eq(memcmp(json_object_get_string(v), r.name, 15), 0);
    cr_assert(json_object_object_get_ex(o, "data", &v));
    cr_assert(json_object_is_type(v, json_type_object));
    struct json_object *c;
    cr_assert(json_object_object_get_ex(v, "color", &c));
    cr_assert_str_eq(json_object_get_string(c), "red");
    cr_assert(json_object_object_get_ex(v, "tags", &c));
    cr_assert_eq(json_object_array_length(c), 2);
    cr_assert(json_object_object_get_ex(o, "version", &v));
    cr_assert_eq(json_object_get_int(v), 7);
    cr_assert(json_object_object_get_ex(o, "created_at", &v));
    cr_assert_str_eq(json_object_get_string(v), "2026-11-26T15:00:00.123456Z");
    cr_assert(json_object_object_get_ex(o, "updated_at", &v));
    cr_assert_str_eq(json_object_get_string(v), "2026-11-27T16:01:02.000001Z");
    cr_assert_eq(json_object_object_length(o), 6);
    json_object_put(o);
    free(copy);
    buf_fini(&b);
}

Test(item_render, limits_accepted)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    struct codec_item_row r = good_row();
    r.id = "9223372036854775807";
    r.id_len = 19;
    r.version = "2147483647";
    r.version_len = 10;
    r.name = "";
    r.name_len = 0;
    r.data = "{}";
    r.data_len = 2;
    cr_assert_eq(codec_item_render(&b, &r), 0);
    r.version = "0";
    r.version_len = 1;
    r.id = "1";
    r.id_len = 1;
    cr_assert_eq(codec_item_render(&b, &r), 0);
    buf_fini(&b);
}

/* Render must fail with -EINVAL and leave the buffer exactly as it was. */
static void expect_render_reject(struct codec_item_row r, const char *what)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    cr_assert_eq(buf_append_str(&b, "keep"), 0);
    int rc = codec_item_render(&b, &r);
    cr_assert_eq(rc, -EINVAL, "%s: rc %d", what, rc);
    cr_assert_eq(b.len, 4, "%s: len %zu", what, b.len);
    cr_assert_eq(memcmp(b.data, "keep", 4), 0);
    buf_fini(&b);
}

#define SET(field, str)                                                                            \
    do {                                                                                           \
        r = good_row();                                                                            \
        r.field = (str);                                                                           \
        r.field##_len = sizeof(str) - 1;                                                           \
        expect_render_reject(r, #field " " str);                                                   \
    } while (0)

Test(item_render, rejects_bad_columns)
{
    struct codec_item_row r;
    SET(id, "");
    SET(id, "0");
    SET(id, "01");
    SET(id, "-1");
    SET(id, "+1");
    SET(id, "1a");
    SET(id, " 1");
    SET(id, "9223372036854775808");
    SET(id, "18446744073709551616");
    SET(id, "12345678901234567890");
    SET(id, "1.0");
    SET(version, "");
    SET(version, "00");
    SET(version, "01");
    SET(version, "-1");
    SET(version, "2147483648");
    SET(version, "1e3");
    SET(name, "\xC3");
    SET(name, "\xC0\xAF");
    SET(name, "\xED\xA0\x80");
    SET(name, "\xF4\x90\x80\x80");
    SET(name, "ok\xFF");
    SET(data, "");
    SET(data, "[]");
    SET(data, "null");
    SET(data, "\"{}\"");
    SET(data, "{");
    SET(data, "{\"a\":1}x");
    SET(data, "{\"a\":\"\\ud800\"}");
    SET(data, "{\"a\":NaN}");
    SET(data, "{\"a\":\"\xFF\"}");
    SET(created_at, "");
    SET(created_at, "2026-11-26 15:00:00.123456Z");
    SET(created_at, "2026-11-26T15:00:00.123456+00");
    SET(created_at, "2026-11-26T15:00:00.12345Z");
    SET(created_at, "2026-11-26T15:00:00.1234567Z");
    SET(created_at, "2026-11-26T15:00:00Z");
    SET(created_at, "2026-11-26T15:00:00.123456Z ");
    SET(created_at, "2026-1a-26T15:00:00.123456Z");
    SET(updated_at, "12026-11-26T15:00:00.12345Z");
    SET(updated_at, "2026-11-26T15:00:00.123456z");

    r = good_row();
    r.id = NULL;
    r.id_len = 0;
    expect_render_reject(r, "NULL id");
    r = good_row();
    r.data = NULL;
    r.data_len = 0;
    expect_render_reject(r, "NULL data");
    /* The lengths are honoured: a NUL inside the column is not a terminator. */
    r = good_row();
    r.id = "42\0";
    r.id_len = 3;
    expect_render_reject(r, "id with NUL");
}

Test(item_render, buffer_bound_leaves_buffer_unchanged)
{
    struct buf b;
    buf_init(&b, 64);
    cr_assert_eq(buf_append_str(&b, "keep"), 0);
    struct codec_item_row r = good_row();
    cr_assert_eq(codec_item_render(&b, &r), -E2BIG);
    cr_assert_eq(b.len, 4);
    buf_fini(&b);
}

/* ---- codec_string_render ---- */

static void expect_string(const char *in, size_t len, const char *want)
{
    struct buf b;
    buf_init(&b, 1 << 16);
    cr_assert_eq(codec_string_render(&b, in, len), 0);
    cr_assert_eq(b.len, strlen(want), "got %.*s want %s", (int)b.len, b.data, want);
    cr_assert_eq(memcmp(b.data, want, b.len), 0, "got %.*s want %s", (int)b.len, b.data, want);
    buf_fini(&b);
}

Test(string_render, escapes)
{
    expect_string("", 0, "\"\"");
    expect_string("plain text", 10, "\"plain text\"");
    expect_string("q\"b\\s/", 6, "\"q\\\"b\\\\s/\"");
    expect_string("\b\f\n\r\t", 5, "\"\\b\\f\\n\\r\\t\"");
    expect_string("\x01\x1f\x0b", 3, "\"\\u0001\\u001f\\u000b\"");
    expect_string("a\0b", 3, "\"a\\u0000b\"");
    expect_string("\x7f", 1, "\"\x7f\"");
    expect_string("\xE2\x80\xA8\xE2\x80\xA9", 6, "\"\xE2\x80\xA8\xE2\x80\xA9\"");
    expect_string("\xF0\x9F\x98\x80", 4, "\"\xF0\x9F\x98\x80\"");
    /* Invalid UTF-8: each bad byte becomes U+FFFD. */
    expect_string("a\xFFz", 3, "\"a\xEF\xBF\xBDz\"");
    expect_string("\xC3", 1, "\"\xEF\xBF\xBD\"");
    expect_string("\xED\xA0\x80", 3, "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"");
    expect_string("\xC0\xAF", 2, "\"\xEF\xBF\xBD\xEF\xBF\xBD\"");
}

Test(string_render, output_is_valid_json)
{
    unsigned char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    struct buf b;
    buf_init(&b, 1 << 16);
    cr_assert_eq(codec_string_render(&b, (const char *)all, sizeof(all)), 0);
    cr_assert(codec_json_valid(b.data, b.len, false));
    cr_assert(codec_utf8_valid(b.data, b.len));
    buf_fini(&b);
}

/* ---- codec_problem_render ---- */

Test(problem_render, exact_and_escaped)
{
    struct buf b;
    buf_init(&b, 4096);
    cr_assert_eq(codec_problem_render(&b, 404, "Not Found", "item 42 does not exist"), 0);
    const char *want = "{\"type\":\"about:blank\",\"title\":\"Not Found\",\"status\":404,"
                       "\"detail\":\"item 42 does not exist\"}";
    cr_assert_eq(b.len, strlen(want));
    cr_assert_eq(memcmp(b.data, want, b.len), 0);

    buf_reset(&b);
    cr_assert_eq(
        codec_problem_render(&b, 400, "Bad Request", "unknown field \"a\\b\"\n\x01 \xFF end"), 0);
    want = "{\"type\":\"about:blank\",\"title\":\"Bad Request\",\"status\":400,"
           "\"detail\":\"unknown field \\\"a\\\\b\\\"\\n\\u0001 \xEF\xBF\xBD end\"}";
    cr_assert_eq(b.len, strlen(want), "got %.*s", (int)b.len, b.data);
    cr_assert_eq(memcmp(b.data, want, b.len), 0, "got %.*s", (int)b.len, b.data);

    char *copy = strndup(b.data, b.len);
    struct json_object *o = json_tokener_parse(copy);
    cr_assert_not_null(o);
    struct json_object *v;
    cr_assert(json_object_object_get_ex(o, "status", &v));
    cr_assert_eq(json_object_get_int(v), 400);
    cr_assert(json_object_object_get_ex(o, "detail", &v));
    cr_assert_str_eq(json_object_get_string(v), "unknown field \"a\\b\"\n\x01 \xEF\xBF\xBD end");
    json_object_put(o);
    free(copy);
    buf_fini(&b);
}

Test(problem_render, bound_leaves_buffer_unchanged)
{
    struct buf b;
    buf_init(&b, 40);
    cr_assert_eq(buf_append_str(&b, "x"), 0);
    cr_assert_eq(codec_problem_render(&b, 500, "Internal Server Error", "boom"), -E2BIG);
    cr_assert_eq(b.len, 1);
    buf_fini(&b);
}

/* ---- codec_json_valid ---- */

struct jcase {
    const char *s;
    bool ok;
};

static const struct jcase json_cases[] = {
    /* numbers */
    {"0", true},
    {"-0", true},
    {"1e5", true},
    {"1E+5", true},
    {"1e-5", true},
    {"-1.25e-10", true},
    {"0.5", true},
    {"123456789012345678901234567890", true},
    {"01", false},
    {"-01", false},
    {"1.", false},
    {".5", false},
    {"+1", false},
    {"-", false},
    {"1e", false},
    {"1e+", false},
    {"1.e5", false},
    {"0x10", false},
    {"NaN", false},
    {"Infinity", false},
    {"-Infinity", false},
    {"1 2", false},
    /* literals */
    {"true", true},
    {"false", true},
    {"null", true},
    {"tru", false},
    {"True", false},
    {"nulll", false},
    {"nul", false},
    /* strings */
    {"\"\"", true},
    {"\"abc\"", true},
    {"\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\"", true},
    {"\"\\u0000\"", true},
    {"\"\\u00e9\\u00E9\"", true},
    {"\"\\ud83d\\ude00\"", true},
    {"\"\\uD83D\\uDE00\"", true},
    {"\"\\ud800\"", false},
    {"\"\\udc00\"", false},
    {"\"\\ud800\\ud800\"", false},
    {"\"\\ude00\\ud83d\"", false},
    {"\"\\ud800\\n\"", false},
    {"\"\\ud800\\u00\"", false},
    {"\"\\u12\"", false},
    {"\"\\u12g4\"", false},
    {"\"\\x41\"", false},
    {"\"\\a\"", false},
    {"\"\\'\"", false},
    {"\"abc", false},
    {"\"\\\"", false},
    {"'abc'", false},
    {"\"\t\"", false},
    {"\"\n\"", false},
    {"\"\x1f\"", false},
    {"\"\x7f\"", true},
    {"\"\xC3\xA9\"", true},
    {"\"\xE2\x82\xAC\"", true},
    {"\"\xF0\x9F\x98\x80\"", true},
    {"\"\xF4\x8F\xBF\xBF\"", true},
    {"\"\xC3\"", false},
    {"\"\xC0\xAF\"", false},
    {"\"\xE0\x80\xAF\"", false},
    {"\"\xED\xA0\x80\"", false},
    {"\"\xF4\x90\x80\x80\"", false},
    {"\"\xF5\x80\x80\x80\"", false},
    {"\"\x80\"", false},
    {"\"\xE2\x82\"", false},
    /* structure */
    {"{}", true},
    {"[]", true},
    {" \t\r\n{ } \t\r\n", true},
    {"{\"a\":1,\"b\":[1,2,{\"c\":null}]}", true},
    {"{\"a\" : 1 , \"b\" : [ ] }", true},
    {"[1,]", false},
    {"[,1]", false},
    {"{\"a\":1,}", false},
    {"{,}", false},
    {"{\"a\"}", false},
    {"{\"a\":}", false},
    {"{\"a\" 1}", false},
    {"{a:1}", false},
    {"{1:1}", false},
    {"[1 2]", false},
    {"[", false},
    {"]", false},
    {"{", false},
    {"{}}", false},
    {"{}{}", false},
    {"[]x", false},
    {"", false},
    {"   ", false},
    {"\v{}", false},
    {"\xEF\xBB\xBF{}", false},
    {"/* c */{}", false},
    {"{\"a\":1}//", false},
};

Test(json_valid, table)
{
    size_t n = sizeof(json_cases) / sizeof(json_cases[0]);
    cr_assert_geq(n, 40);
    for (size_t i = 0; i < n; i++) {
        bool got = codec_json_valid(json_cases[i].s, strlen(json_cases[i].s), false);
        cr_expect_eq(got, json_cases[i].ok, "case %zu: %s: got %d", i, json_cases[i].s, got);
    }
}

Test(json_valid, object_only)
{
    cr_assert(codec_json_valid("{}", 2, true));
    cr_assert(codec_json_valid("  {\"a\":[]}  ", 12, true));
    cr_assert_not(codec_json_valid("[]", 2, true));
    cr_assert_not(codec_json_valid("1", 1, true));
    cr_assert_not(codec_json_valid("\"{}\"", 4, true));
    cr_assert_not(codec_json_valid("null", 4, true));
    cr_assert_not(codec_json_valid(NULL, 0, true));
}

Test(json_valid, length_is_honoured)
{
    /* No reading past len, and a NUL within len is not a terminator. */
    cr_assert(codec_json_valid("{}XYZ", 2, true));
    cr_assert_not(codec_json_valid("{}\0", 3, true));
    cr_assert_not(codec_json_valid("\"a\0\"", 4, false));
    cr_assert_not(codec_json_valid("true", 3, false));
    cr_assert_not(codec_json_valid("\"\\u00e9\"", 6, false));
    char *heap = malloc(3);
    memcpy(heap, "-12", 3);
    cr_assert(codec_json_valid(heap, 3, false));
    cr_assert_not(codec_json_valid(heap, 1, false));
    free(heap);
}

Test(json_valid, depth)
{
    char *s = nest(64, "", "");
    cr_assert(codec_json_valid(s, strlen(s), false));
    free(s);
    s = nest(65, "", "");
    cr_assert_not(codec_json_valid(s, strlen(s), false));
    free(s);
    s = nest(63, "{\"a\":", "}");
    cr_assert(codec_json_valid(s, strlen(s), true));
    free(s);
    s = nest(64, "{\"a\":", "}");
    cr_assert_not(codec_json_valid(s, strlen(s), true));
    free(s);
    s = nest(1000000, "", "");
    cr_assert_not(codec_json_valid(s, strlen(s), false));
    free(s);
    /* Deep but unterminated. */
    s = nest(64, "", "");
    cr_assert_not(codec_json_valid(s, 64 + 10, false));
    free(s);
}

Test(json_valid, agrees_with_json_c_on_valid_input)
{
    /* Everything we accept, json-c parses too (it is the more lenient one). */
    size_t n = sizeof(json_cases) / sizeof(json_cases[0]);
    for (size_t i = 0; i < n; i++) {
        if (!json_cases[i].ok || json_cases[i].s[0] != '{')
            continue;
        struct json_object *o = json_tokener_parse(json_cases[i].s);
        cr_expect_not_null(o, "%s", json_cases[i].s);
        json_object_put(o);
    }
}

/* ---- codec_utf8_valid ---- */

Test(utf8_valid, cases)
{
    cr_assert(codec_utf8_valid("", 0));
    cr_assert(codec_utf8_valid("ascii", 5));
    cr_assert(codec_utf8_valid("a\0b", 3));
    cr_assert(codec_utf8_valid("\xC2\x80", 2));
    cr_assert(codec_utf8_valid("\xDF\xBF", 2));
    cr_assert(codec_utf8_valid("\xE0\xA0\x80", 3));
    cr_assert(codec_utf8_valid("\xED\x9F\xBF", 3)); /* U+D7FF */
    cr_assert(codec_utf8_valid("\xEE\x80\x80", 3)); /* U+E000 */
    cr_assert(codec_utf8_valid("\xEF\xBF\xBF", 3)); /* U+FFFF */
    cr_assert(codec_utf8_valid("\xF0\x90\x80\x80", 4));
    cr_assert(codec_utf8_valid("\xF4\x8F\xBF\xBF", 4)); /* U+10FFFF */

    cr_assert_not(codec_utf8_valid("\x80", 1));
    cr_assert_not(codec_utf8_valid("\xBF", 1));
    cr_assert_not(codec_utf8_valid("\xC0\x80", 2)); /* overlong NUL */
    cr_assert_not(codec_utf8_valid("\xC1\xBF", 2));
    cr_assert_not(codec_utf8_valid("\xE0\x9F\xBF", 3));     /* overlong */
    cr_assert_not(codec_utf8_valid("\xED\xA0\x80", 3));     /* U+D800 */
    cr_assert_not(codec_utf8_valid("\xED\xBF\xBF", 3));     /* U+DFFF */
    cr_assert_not(codec_utf8_valid("\xF0\x8F\xBF\xBF", 4)); /* overlong */
    cr_assert_not(codec_utf8_valid("\xF4\x90\x80\x80", 4)); /* U+110000 */
    cr_assert_not(codec_utf8_valid("\xF5\x80\x80\x80", 4));
    cr_assert_not(codec_utf8_valid("\xFF", 1));
    cr_assert_not(codec_utf8_valid("\xC3", 1));         /* truncated */
    cr_assert_not(codec_utf8_valid("\xE2\x82", 2));     /* truncated */
    cr_assert_not(codec_utf8_valid("\xF0\x9F\x98", 3)); /* truncated */
    cr_assert_not(codec_utf8_valid("\xE2\x28\xA1", 3)); /* bad continuation */
    cr_assert_not(codec_utf8_valid("\xC3\xA9\xC3", 3)); /* truncated at the end */
    /* Length is honoured: the valid prefix of a longer buffer. */
    cr_assert(codec_utf8_valid("ab\xC3\xA9", 2));
}
