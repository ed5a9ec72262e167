/*
 * Unit tests for log: records go to a pipe (log_set_fd), and each JSON record
 * is parsed back with json-c to check it is one valid object a line, with
 * escaping of quotes, control characters and invalid UTF-8, level filtering,
 * truncation of huge records, and the text format.
 */
#include "ringlet/log.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int pipe_fds[2];

static void setup(void)
{
    cr_assert_eq(pipe2(pipe_fds, O_NONBLOCK), 0);
    fcntl(pipe_fds[1], F_SETPIPE_SZ, 1 << 20);
    log_set_fd(pipe_fds[1]);
    log_init(CFG_LOG_JSON, CFG_LOG_INFO);
}

static void teardown(void)
{
    log_set_fd(-1);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
}

/* Everything written so far (caller frees). */
static char *drain(void)
{
    static char buf[1 << 20];
    ssize_t n = read(pipe_fds[0], buf, sizeof(buf) - 1);
    if (n < 0)
        n = 0;
    buf[n] = '\0';
    return strdup(buf);
}

/* The single JSON record written since the last drain, parsed. */
static json_object *one_record(char **raw_out)
{
    char *raw = drain();
    size_t len = strlen(raw);
    cr_assert(len > 0, "nothing written");
    cr_assert_eq(raw[len - 1], '\n', "record ends with a newline");
    cr_assert_eq(strchr(raw, '\n'), raw + len - 1, "exactly one line: %s", raw);
    json_tokener *tok = json_tokener_new();
    json_object *o = json_tokener_parse_ex(tok, raw, (int)len - 1);
    enum json_tokener_error e = json_tokener_get_error(tok);
    cr_assert_eq(e, json_tokener_success, "invalid JSON (%s): %s", json_tokener_error_desc(e), raw);
    cr_assert_eq(json_tokener_get_parse_end(tok), len - 1, "trailing bytes: %s", raw);
    json_tokener_free(tok);
    cr_assert(json_object_is_type(o, json_type_object));
    if (raw_out)
        *raw_out = raw;
    else
        free(raw);
    return o;
}

static const char *get_str(json_object *o, const char *key)
{
    json_object *v;
    cr_assert(json_object_object_get_ex(o, key, &v), "no key %s", key);
    return json_object_get_string(v);
}

TestSuite(log, .init = setup, .fini = teardown);

Test(log, json_basic_fields)
{
    log_info("server started", LOG_STR("listen", "0.0.0.0:8080"), LOG_INT("neg", -42),
             LOG_UINT("big", 18446744073709551615ULL), LOG_DBL("ratio", 0.25), LOG_BOOL("ok", true),
             LOG_BOOL("bad", false), LOG_STR("none", NULL));
    char *raw;
    json_object *o = one_record(&raw);
    cr_assert_str_eq(get_str(o, "level"), "info");
    cr_assert_str_eq(get_str(o, "msg"), "server started");
    cr_assert_str_eq(get_str(o, "listen"), "0.0.0.0:8080");

    /* the first keys are ts, level, msg in that order */
    cr_assert_eq(strncmp(raw, "{\"ts\":\"", 7), 0, "%s", raw);
    cr_assert_not_null(strstr(raw, "\",\"level\":\"info\",\"msg\":\"server started\""), "%s", raw);
    const char *ts = get_str(o, "ts");
    cr_assert_eq(strlen(ts), 24, "ts %s", ts);
    cr_assert(ts[4] == '-' && ts[7] == '-' && ts[10] == 'T' && ts[13] == ':' && ts[16] == ':' &&
                  ts[19] == '.' && ts[23] == 'Z',
              "ts %s", ts);

    json_object *v;
    cr_assert(json_object_object_get_ex(o, "neg", &v));
    cr_assert(json_object_is_type(v, json_type_int));
    cr_assert_eq(json_object_get_int64(v), -42);
    cr_assert_not_null(strstr(raw, "\"big\":18446744073709551615"), "%s", raw);
    cr_assert(json_object_object_get_ex(o, "ratio", &v));
    cr_assert(json_object_is_type(v, json_type_double));
    cr_assert_float_eq(json_object_get_double(v), 0.25, 1e-12);
    cr_assert_not_null(strstr(raw, "\"ratio\":0.25,"), "shortest form: %s", raw);
    cr_assert(json_object_object_get_ex(o, "ok", &v));
    cr_assert(json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v));
    cr_assert(json_object_object_get_ex(o, "bad", &v));
    cr_assert(json_object_is_type(v, json_type_boolean) && !json_object_get_boolean(v));
    cr_assert(json_object_object_get_ex(o, "none", &v));
    cr_assert_null(v, "NULL string is null");
    cr_assert_null(strstr(raw, "truncated"));
    json_object_put(o);
    free(raw);
}

Test(log, json_no_fields)
{
    log_warn("plain");
    json_object *o = one_record(NULL);
    cr_assert_str_eq(get_str(o, "level"), "warn");
    cr_assert_eq(json_object_object_length(o), 3);
    json_object_put(o);
    log_error("plain");
    o = one_record(NULL);
    cr_assert_str_eq(get_str(o, "level"), "error");
    json_object_put(o);
}

Test(log, json_escaping)
{
    const char *nasty = "q\"b\\s/\n\r\t\b\f\x01\x1f\x7f end";
    log_info("m\"sg\n", LOG_STR("v", nasty));
    char *raw;
    json_object *o = one_record(&raw);
    cr_assert_str_eq(get_str(o, "msg"), "m\"sg\n");
    cr_assert_str_eq(get_str(o, "v"), nasty, "round trip");
    cr_assert_not_null(strstr(raw, "\\u0001"), "%s", raw);
    cr_assert_not_null(strstr(raw, "\\u001f"), "%s", raw);
    cr_assert_not_null(strstr(raw, "\\u007f"), "%s", raw);
    cr_assert_not_null(strstr(raw, "\\n"), "%s", raw);
    json_object_put(o);
    free(raw);
}

Test(log, json_utf8)
{
    /* valid multi-byte text passes through; invalid bytes become U+FFFD */
    log_info("ok", LOG_STR("good", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
             LOG_STR("bad", "a\xff"
                            "b\xc3"
                            "c\xed\xa0\x80"
                            "d\xc0\xaf"
                            "e\xf4\x90\x80\x80"),
             LOG_STR("cut", "x\xe2\x82"));
    char *raw;
    json_object *o = one_record(&raw);
    cr_assert_str_eq(get_str(o, "good"), "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    const char *bad = get_str(o, "bad");
    cr_assert_str_eq(bad,
                     "a\xef\xbf\xbd"
                     "b\xef\xbf\xbd"
                     "c\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                     "d\xef\xbf\xbd\xef\xbf\xbd"
                     "e\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd",
                     "%s", raw);
    cr_assert_str_eq(get_str(o, "cut"), "x\xef\xbf\xbd\xef\xbf\xbd");
    for (const unsigned char *p = (const unsigned char *)raw; *p; p++)
        cr_assert(*p != 0xff && *p != 0xc0, "raw invalid byte in output");
    json_object_put(o);
    free(raw);
}

Test(log, json_special_doubles)
{
    log_info("d", LOG_DBL("nan", NAN), LOG_DBL("inf", INFINITY), LOG_DBL("tenth", 0.1),
             LOG_DBL("third", 1.0 / 3));
    json_object *o = one_record(NULL);
    json_object *v;
    cr_assert(json_object_object_get_ex(o, "nan", &v));
    cr_assert_null(v);
    cr_assert(json_object_object_get_ex(o, "inf", &v));
    cr_assert_null(v);
    cr_assert(json_object_object_get_ex(o, "third", &v));
    cr_assert_eq(json_object_get_double(v), 1.0 / 3, "doubles round-trip");
    json_object_put(o);
}

Test(log, level_filter)
{
    cr_assert(!log_enabled(CFG_LOG_DEBUG));
    cr_assert(log_enabled(CFG_LOG_INFO));
    log_debug("hidden", LOG_INT("x", 1));
    char *raw = drain();
    cr_assert_str_eq(raw, "");
    free(raw);

    log_init(CFG_LOG_JSON, CFG_LOG_ERROR);
    log_warn("hidden too");
    raw = drain();
    cr_assert_str_eq(raw, "");
    free(raw);

    log_init(CFG_LOG_JSON, CFG_LOG_DEBUG);
    cr_assert(log_enabled(CFG_LOG_DEBUG));
    log_debug("shown", LOG_INT("x", 1));
    json_object *o = one_record(NULL);
    cr_assert_str_eq(get_str(o, "level"), "debug");
    json_object_put(o);
}

Test(log, huge_record_is_truncated_but_valid)
{
    size_t n = 100000;
    char *big = malloc(n + 1);
    /* a mix of plain, escaped and multi-byte characters so the cut can land anywhere */
    for (size_t i = 0; i < n; i++)
        big[i] = "ab\"\n\x01"[i % 5];
    memcpy(big + 5000, "\xe2\x82\xac\xe2\x82\xac", 6);
    big[n] = '\0';
    for (size_t shift = 0; shift < 12; shift++) {
        log_info("big", LOG_STR("pad", big + 4990 + shift), LOG_STR("v", big), LOG_INT("after", 1));
        char *raw;
        json_object *o = one_record(&raw);
        cr_assert(strlen(raw) <= 8192, "bounded: %zu", strlen(raw));
        json_object *t;
        cr_assert(json_object_object_get_ex(o, "truncated", &t), "%s", raw + strlen(raw) - 40);
        cr_assert(json_object_get_boolean(t));
        cr_assert_str_eq(get_str(o, "msg"), "big");
        json_object_put(o);
        free(raw);
    }
    /* a huge message */
    log_info(big, LOG_INT("after", 1));
    json_object *o = one_record(NULL);
    cr_assert(json_object_object_get_ex(o, "truncated", NULL));
    json_object_put(o);
    free(big);
}

Test(log, many_fields_truncate_on_field_boundary)
{
    struct log_field f[800];
    char keys[799][16];
    for (int i = 0; i < 799; i++) {
        snprintf(keys[i], sizeof(keys[i]), "key%d", i);
        f[i] = LOG_UINT(keys[i], 1234567890123ULL);
    }
    f[799] = (struct log_field){0};
    log_write(CFG_LOG_INFO, "fields", f);
    json_object *o = one_record(NULL);
    cr_assert(json_object_object_get_ex(o, "truncated", NULL));
    cr_assert(json_object_object_get_ex(o, "key0", NULL));
    cr_assert(!json_object_object_get_ex(o, "key798", NULL));
    json_object_put(o);
}

Test(log, preserves_errno)
{
    errno = EAGAIN;
    log_info("x");
    cr_assert_eq(errno, EAGAIN);
    char *raw = drain();
    free(raw);
}

Test(log, text_format)
{
    log_init(CFG_LOG_TEXT, CFG_LOG_INFO);
    log_info("listening", LOG_STR("addr", "0.0.0.0:8080"), LOG_STR("note", "two words"),
             LOG_STR("q", "say \"hi\""), LOG_STR("empty", ""), LOG_STR("nil", NULL),
             LOG_INT("n", -3), LOG_BOOL("b", true), LOG_DBL("d", 1.5));
    char *raw = drain();
    /* "2026-11-26T15:00:00.123Z INFO listening ..." */
    cr_assert(strlen(raw) > 25);
    cr_assert_eq(raw[23], 'Z', "%s", raw);
    cr_assert_str_eq(raw + 24,
                     " INFO listening addr=0.0.0.0:8080 note=\"two words\" q=\"say \\\"hi\\\"\" "
                     "empty=\"\" nil=- n=-3 b=true d=1.5\n");
    free(raw);

    log_warn("multi\nline", LOG_STR("v", "a\nb"));
    raw = drain();
    cr_assert_eq(strchr(raw, '\n'), raw + strlen(raw) - 1, "one line: %s", raw);
    cr_assert_not_null(strstr(raw, " WARN multi\\nline v=\"a\\nb\"\n"), "%s", raw);
    free(raw);
}

Test(log, text_truncation)
{
    log_init(CFG_LOG_TEXT, CFG_LOG_INFO);
    size_t n = 50000;
    char *big = malloc(n + 1);
    memset(big, 'x', n);
    big[100] = ' ';
    big[n] = '\0';
    log_info("big", LOG_STR("v", big));
    char *raw = drain();
    size_t len = strlen(raw);
    cr_assert(len <= 8192);
    cr_assert_eq(strchr(raw, '\n'), raw + len - 1);
    cr_assert_not_null(strstr(raw, "x\" truncated=true\n"), "%s", raw + len - 40);
    free(raw);
    free(big);
}
