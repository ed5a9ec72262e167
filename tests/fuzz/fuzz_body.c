/*
 * fuzz_body: codec_item_parse (request bodies of POST and PUT) on arbitrary
 * bytes, plus codec_json_valid against json-c.
 *
 * On success: name is valid UTF-8, 1..200 code points, no NUL, equal to what
 * json-c decoded; data is a compact JSON object (codec_json_valid with
 * object_only, no whitespace outside strings, no \u0000 escape) that json-c
 * reads back equal to the body's "data" member; the body itself is a valid
 * JSON object. On failure the detail is a NUL-terminated, valid UTF-8 string.
 * codec_item_input_fini frees everything (ASan's leak check).
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_common.h"
#include "ringlet/codec.h"

/* True when the JSON text has a \u0000 escape (inside a string). */
static bool has_nul_escape(const char *s, size_t n)
{
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        if (!in_str) {
            if (s[i] == '"')
                in_str = true;
            continue;
        }
        if (s[i] == '"') {
            in_str = false;
        } else if (s[i] == '\\') {
            if (i + 5 < n && s[i + 1] == 'u' && memcmp(s + i + 2, "0000", 4) == 0)
                return true;
            i++; /* skip the escaped byte */
        }
    }
    return false;
}

/* Whitespace outside strings. */
static bool has_outer_ws(const char *s, size_t n)
{
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            return true;
        }
    }
    return false;
}

static size_t code_points(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

static struct json_object *jparse(const char *s, size_t n, bool *whole)
{
    struct json_tokener *tok = json_tokener_new_ex(CODEC_MAX_DEPTH + 2);
    FUZZ_CHECK(tok, "out of memory");
    struct json_object *o = json_tokener_parse_ex(tok, s, (int)n);
    if (!o && json_tokener_get_error(tok) == json_tokener_continue)
        o = json_tokener_parse_ex(tok, "", 1); /* a top-level number needs a terminator */
    *whole =
        json_tokener_get_error(tok) == json_tokener_success && json_tokener_get_parse_end(tok) <= n;
    json_tokener_free(tok);
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    struct codec_item_input in;
    char detail[160];

    bool valid_any = codec_json_valid(body, size, false);
    bool valid_obj = codec_json_valid(body, size, true);
    FUZZ_CHECK(!valid_obj || valid_any, "object_only accepted what the plain check refused");
    if (valid_any) {
        /* Our strict scanner accepts only what json-c (more lenient) reads too. */
        bool whole;
        struct json_object *o = jparse(body, size, &whole);
        FUZZ_CHECK(whole, "codec_json_valid accepted what json-c cannot parse: %.*s",
                   (int)(size > 200 ? 200 : size), body);
        json_object_put(o);
    }

    int rc = codec_item_parse(body, size, &in, detail, sizeof(detail));
    if (rc != 0) {
        FUZZ_CHECK(rc == -EINVAL || rc == -ENOMEM, "rc %d", rc);
        FUZZ_CHECK(memchr(detail, '\0', sizeof(detail)) != NULL, "detail not terminated");
        FUZZ_CHECK(rc != -EINVAL || detail[0], "a 400 without a detail");
        FUZZ_CHECK(codec_utf8_valid(detail, strlen(detail)), "detail is not UTF-8: %s", detail);
        FUZZ_CHECK(in.root == NULL, "failure left a json-c root behind");
        return 0;
    }
    FUZZ_CHECK(valid_obj, "accepted a body that is not a valid JSON object");
    FUZZ_CHECK(in.root && in.name && in.data, "missing output");
    FUZZ_CHECK(codec_utf8_valid(in.name, in.name_len), "name not UTF-8");
    FUZZ_CHECK(memchr(in.name, '\0', in.name_len) == NULL, "name has NUL");
    size_t cps = code_points(in.name, in.name_len);
    FUZZ_CHECK(cps >= 1 && cps <= CODEC_NAME_MAX_CHARS, "name has %zu code points", cps);
    FUZZ_CHECK(strlen(in.data) == in.data_len, "data text length or NUL");
    FUZZ_CHECK(codec_json_valid(in.data, in.data_len, true), "data not a JSON object: %s", in.data);
    FUZZ_CHECK(!has_nul_escape(in.data, in.data_len), "data has \\u0000: %s", in.data);
    FUZZ_CHECK(!has_outer_ws(in.data, in.data_len), "data not compact: %s", in.data);

    /* Only "name" and "data" at the top. */
    struct json_object *nm = NULL, *dt = NULL;
    FUZZ_CHECK(json_object_object_get_ex(in.root, "name", &nm), "no name in root");
    int members = json_object_object_length(in.root);
    bool has_data = json_object_object_get_ex(in.root, "data", &dt);
    FUZZ_CHECK(members == 1 + (int)has_data, "%d top-level members", members);
    FUZZ_CHECK((size_t)json_object_get_string_len(nm) == in.name_len &&
                   memcmp(json_object_get_string(nm), in.name, in.name_len) == 0,
               "name differs from json-c's");

    /* The data text handed to the database means what the client sent. */
    bool whole;
    struct json_object *re = jparse(in.data, in.data_len, &whole);
    FUZZ_CHECK(re && whole && json_object_is_type(re, json_type_object), "data unreadable");
    if (has_data)
        FUZZ_CHECK(json_object_equal(re, dt), "data text differs from the body's data: %s",
                   in.data);
    else
        FUZZ_CHECK(strcmp(in.data, "{}") == 0, "absent data is not {}");
    json_object_put(re);

    codec_item_input_fini(&in);
    FUZZ_CHECK(in.root == NULL, "fini left the root");
    return 0;
}
