/*
 * fuzz_render: what the service writes from database text (untrusted: a
 * compromised or broken database may return anything) and from arbitrary
 * problem details.
 *
 * Input: byte 0 = SQL NULL mask for the six columns (bit i) and bit 6 = a
 * small buffer limit (to hit -E2BIG); bytes 1..5 = lengths of columns 0..4;
 * column 5 takes what is left. The whole input is also a problem detail,
 * title and string literal.
 *
 * codec_item_render: success implies every column had its documented shape
 * (checked here independently), the appended text is a JSON object that
 * codec_json_valid(object_only) and json-c accept, with exactly the six
 * keys and the same values; failure leaves the buffer byte for byte as it
 * was. And a row of valid shapes is never refused (unless the buffer limit).
 * codec_problem_render / codec_string_render: output is valid JSON always,
 * and decodes back to the input when the input is valid UTF-8.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_common.h"
#include "ringlet/buf.h"
#include "ringlet/codec.h"

static const char prefix[] = "PREFIX[";

static bool digits_ok(const char *s, size_t n, uint64_t max, bool positive)
{
    if (!s || n == 0 || n > 20 || (n > 1 && s[0] == '0'))
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (max - d) / 10)
            return false;
        v = v * 10 + d;
    }
    return !positive || v > 0;
}

static bool ts_ok(const char *s, size_t n)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.ddddddZ";
    if (!s || n != sizeof(shape) - 1)
        return false;
    for (size_t i = 0; i < n; i++)
        if (shape[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != shape[i])
            return false;
    return true;
}

/*
 * "data" must be a JSON object that stays within CODEC_MAX_DEPTH where it is
 * rendered, one level down inside the item: validate it wrapped in an object.
 */
static bool data_ok(const char *s, size_t n)
{
    if (!codec_json_valid(s, n, true))
        return false;
    char *w = malloc(n + 6);
    FUZZ_CHECK(w, "oom");
    memcpy(w, "{\"x\":", 5);
    memcpy(w + 5, s, n);
    w[n + 5] = '}';
    bool ok = codec_json_valid(w, n + 6, true);
    free(w);
    return ok;
}

static struct json_object *jparse(const char *s, size_t n)
{
    struct json_tokener *tok = json_tokener_new_ex(CODEC_MAX_DEPTH + 4);
    FUZZ_CHECK(tok, "oom");
    struct json_object *o = json_tokener_parse_ex(tok, s, (int)n);
    if (!o && json_tokener_get_error(tok) == json_tokener_continue)
        o = json_tokener_parse_ex(tok, "", 1); /* a top-level number needs a terminator */
    bool ok = json_tokener_get_error(tok) == json_tokener_success;
    json_tokener_free(tok);
    if (!ok) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

static void check_string_member(struct json_object *o, const char *key, const char *want, size_t n)
{
    struct json_object *v;
    FUZZ_CHECK(json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string),
               "no string %s", key);
    FUZZ_CHECK((size_t)json_object_get_string_len(v) == n &&
                   memcmp(json_object_get_string(v), want, n) == 0,
               "%s does not round-trip", key);
}

static void fuzz_item(const uint8_t *data, size_t size)
{
    if (size < 6)
        return;
    const char *col[6];
    size_t len[6];
    size_t off = 6;
    for (int i = 0; i < 6; i++) {
        size_t l = i < 5 ? data[1 + i] : size - off;
        if (l > size - off)
            l = size - off;
        col[i] = (const char *)data + off;
        len[i] = l;
        off += l;
        if (data[0] & (1u << i)) { /* SQL NULL */
            col[i] = NULL;
            len[i] = 0;
        }
    }
    struct codec_item_row r = {col[0], len[0], col[1], len[1], col[2], len[2],
                               col[3], len[3], col[4], len[4], col[5], len[5]};
    bool shapes = digits_ok(col[0], len[0], INT64_MAX, true) &&
                  digits_ok(col[3], len[3], INT32_MAX, false) && col[1] &&
                  codec_utf8_valid(col[1], len[1]) && col[2] && data_ok(col[2], len[2]) &&
                  ts_ok(col[4], len[4]) && ts_ok(col[5], len[5]);

    struct buf b;
    size_t max = data[0] & 0x40 ? 64 + size : 1u << 20;
    buf_init(&b, max);
    FUZZ_CHECK(buf_append(&b, prefix, sizeof(prefix) - 1) == 0, "prefix");
    size_t cap = b.cap;
    int rc = codec_item_render(&b, &r);
    if (rc) {
        FUZZ_CHECK(rc == -EINVAL || rc == -E2BIG || rc == -ENOMEM, "rc %d", rc);
        FUZZ_CHECK(!shapes || rc != -EINVAL, "a row of valid shapes was refused");
        FUZZ_CHECK(b.len == sizeof(prefix) - 1 && memcmp(b.data, prefix, b.len) == 0,
                   "failure changed the buffer");
        (void)cap;
        buf_fini(&b);
        return;
    }
    FUZZ_CHECK(shapes, "rendered a row that breaks the column rules");
    FUZZ_CHECK(memcmp(b.data, prefix, sizeof(prefix) - 1) == 0, "prefix clobbered");
    const char *js = b.data + sizeof(prefix) - 1;
    size_t jn = b.len - (sizeof(prefix) - 1);
    FUZZ_CHECK(codec_json_valid(js, jn, true), "rendered item is not a JSON object: %.*s",
               (int)(jn > 300 ? 300 : jn), js);
    struct json_object *o = jparse(js, jn);
    FUZZ_CHECK(o && json_object_is_type(o, json_type_object), "json-c rejects the item");
    FUZZ_CHECK(json_object_object_length(o) == 6, "%d keys", json_object_object_length(o));
    static const char *const keys[] = {"id", "name", "data", "version", "created_at", "updated_at"};
    for (int i = 0; i < 6; i++) {
        struct json_object *v;
        FUZZ_CHECK(json_object_object_get_ex(o, keys[i], &v), "no %s", keys[i]);
    }
    struct json_object *v;
    json_object_object_get_ex(o, "id", &v);
    FUZZ_CHECK(json_object_is_type(v, json_type_int), "id not an integer");
    json_object_object_get_ex(o, "version", &v);
    FUZZ_CHECK(json_object_is_type(v, json_type_int), "version not an integer");
    json_object_object_get_ex(o, "data", &v);
    FUZZ_CHECK(json_object_is_type(v, json_type_object), "data not an object");
    check_string_member(o, "name", col[1], len[1]);
    check_string_member(o, "created_at", col[4], len[4]);
    check_string_member(o, "updated_at", col[5], len[5]);
    json_object_put(o);
    buf_fini(&b);
}

static void fuzz_problem(const uint8_t *data, size_t size)
{
    char *detail = malloc(size + 1);
    FUZZ_CHECK(detail, "oom");
    memcpy(detail, data, size);
    detail[size] = '\0';
    size_t dl = strlen(detail);
    int status = size >= 2 ? (int)(int16_t)(data[0] | data[1] << 8) : 400;
    const char *title = size && (data[0] & 1) ? detail : "Bad Request";

    struct buf b;
    buf_init(&b, 1u << 20);
    FUZZ_CHECK(buf_append(&b, prefix, sizeof(prefix) - 1) == 0, "prefix");
    int rc = codec_problem_render(&b, status, title, size && (data[0] & 2) ? NULL : detail);
    FUZZ_CHECK(rc == 0, "problem render failed: %d", rc);
    const char *js = b.data + sizeof(prefix) - 1;
    size_t jn = b.len - (sizeof(prefix) - 1);
    FUZZ_CHECK(codec_json_valid(js, jn, true), "problem is not a JSON object: %.*s",
               (int)(jn > 300 ? 300 : jn), js);
    struct json_object *o = jparse(js, jn);
    FUZZ_CHECK(o, "json-c rejects the problem");
    struct json_object *v;
    FUZZ_CHECK(json_object_object_get_ex(o, "status", &v) && json_object_get_int(v) == status,
               "status");
    if (!(size && (data[0] & 2)) && codec_utf8_valid(detail, dl))
        check_string_member(o, "detail", detail, dl);
    json_object_put(o);

    /* A bare string literal from arbitrary bytes (NULs included). */
    b.len = 0;
    FUZZ_CHECK(codec_string_render(&b, (const char *)data, size) == 0, "string render");
    FUZZ_CHECK(codec_json_valid(b.data, b.len, false), "string literal invalid");
    o = jparse(b.data, b.len);
    FUZZ_CHECK(o && json_object_is_type(o, json_type_string), "json-c rejects the literal");
    if (codec_utf8_valid((const char *)data, size))
        FUZZ_CHECK((size_t)json_object_get_string_len(o) == size &&
                       memcmp(json_object_get_string(o), data, size) == 0,
                   "literal does not round-trip");
    else
        FUZZ_CHECK(
            codec_utf8_valid(json_object_get_string(o), (size_t)json_object_get_string_len(o)),
            "invalid UTF-8 not replaced");
    json_object_put(o);
    buf_fini(&b);
    free(detail);
}

/* RINGLET_FUZZ_ALLOW=deep-data: go past finding F4 (data nested 64 deep). */
static bool allow_deep;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *allow = getenv("RINGLET_FUZZ_ALLOW");
    allow_deep = allow && strstr(allow, "deep-data");
    return 0;
}

static size_t count_open(const uint8_t *p, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += p[i] == '[' || p[i] == '{';
    return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!(allow_deep && count_open(data, size) >= CODEC_MAX_DEPTH))
        fuzz_item(data, size);
    fuzz_problem(data, size);
    return 0;
}
