/*
 * render_bench: C-side cost of producing the GET /v1/items/{id} body.
 *
 *   A  codec_item_render() from the six text columns (current code)
 *   B  json-c: build a json_object tree from the same columns (data through
 *      json_tokener_parse) and serialise it with JSON_C_TO_STRING_PLAIN
 *   C  PostgreSQL rendered the document (json_build_object(...)::text): C only
 *      validates it with codec_json_valid(doc, len, true) and copies it
 *
 * Every variant appends into one reused struct buf, as the server does with
 * its response buffer, and fails the run if its output is not valid JSON.
 *
 * Usage:
 *   render_bench [--fixtures DIR] time  [REPS]        ns/op, median of REPS runs
 *   render_bench [--fixtures DIR] count VARIANT SIZE ITERS
 *                 (for callgrind --toggle-collect=loop_VARIANT)
 *   render_bench [--fixtures DIR] show                print the three outputs
 *
 * Fixtures: DIR/typical.txt and DIR/large.txt, 7 lines each: id, name,
 * data::text, version, created_at, updated_at (exactly the ITEM_COLS text of
 * src/db_pool.c) and the json_build_object document, as dumped from a real
 * PostgreSQL by run.sh. Without --fixtures, built-in copies of the same
 * shapes are used (typical only is exact; large is generated here).
 */
#include "ringlet/buf.h"
#include "ringlet/codec.h"

#include <json-c/json.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct fixture {
    const char *label;
    struct codec_item_row row;
    const char *doc; /* option C: PostgreSQL's json_build_object text */
    size_t doc_len;
};

static struct fixture fx[2];

/* ---- the three variants ---- */

static int render_a(struct buf *out, const struct fixture *f)
{
    return codec_item_render(out, &f->row);
}

static int render_b(struct buf *out, const struct fixture *f)
{
    const struct codec_item_row *r = &f->row;
    /* Give json-c its best case: constant keys, known to be new. */
    const unsigned opts = JSON_C_OBJECT_ADD_KEY_IS_NEW | JSON_C_OBJECT_KEY_IS_CONSTANT;
    struct json_object *o = json_object_new_object();
    if (!o)
        return -1;
    struct json_object *data = json_tokener_parse(r->data); /* libpq values are NUL-terminated */
    if (!data || !json_object_is_type(data, json_type_object)) {
        json_object_put(data);
        json_object_put(o);
        return -1;
    }
    json_object_object_add_ex(o, "id", json_object_new_int64(strtoll(r->id, NULL, 10)), opts);
    json_object_object_add_ex(o, "name", json_object_new_string_len(r->name, (int)r->name_len),
                              opts);
    json_object_object_add_ex(o, "data", data, opts);
    json_object_object_add_ex(o, "version", json_object_new_int((int)strtol(r->version, NULL, 10)),
                              opts);
    json_object_object_add_ex(
        o, "created_at", json_object_new_string_len(r->created_at, (int)r->created_at_len), opts);
    json_object_object_add_ex(
        o, "updated_at", json_object_new_string_len(r->updated_at, (int)r->updated_at_len), opts);
    size_t len;
    const char *s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &len);
    int rc = s ? buf_append(out, s, len) : -1;
    json_object_put(o);
    return rc;
}

static int render_c(struct buf *out, const struct fixture *f)
{
    if (!codec_json_valid(f->doc, f->doc_len, true))
        return -1;
    return buf_append(out, f->doc, f->doc_len);
}

typedef int (*render_fn)(struct buf *, const struct fixture *);

/* One loop per variant, not inlined, so callgrind can toggle on each by name. */
#define LOOP(V, FN)                                                                               \
    __attribute__((noinline)) int loop_##V(struct buf *b, const struct fixture *f, long n);        \
    __attribute__((noinline)) int loop_##V(struct buf *b, const struct fixture *f, long n)         \
    {                                                                                              \
        int bad = 0;                                                                               \
        for (long i = 0; i < n; i++) {                                                             \
            buf_reset(b);                                                                          \
            bad |= FN(b, f);                                                                       \
            __asm__ volatile("" : : "r"(b->data) : "memory");                                      \
        }                                                                                          \
        return bad;                                                                                \
    }
LOOP(A, render_a)
LOOP(B, render_b)
LOOP(C, render_c)

typedef int (*loop_fn)(struct buf *, const struct fixture *, long);
static const struct {
    char name;
    loop_fn loop;
    render_fn one;
} variants[] = {{'A', loop_A, render_a}, {'B', loop_B, render_b}, {'C', loop_C, render_c}};

/* ---- fixtures ---- */

static char *xstrdup(const char *s)
{
    char *p = strdup(s);
    if (!p) {
        perror("strdup");
        exit(1);
    }
    return p;
}

static void set_fixture(struct fixture *f, const char *label, char *const v[7])
{
    f->label = label;
    f->row = (struct codec_item_row){
        .id = v[0], .id_len = strlen(v[0]),
        .name = v[1], .name_len = strlen(v[1]),
        .data = v[2], .data_len = strlen(v[2]),
        .version = v[3], .version_len = strlen(v[3]),
        .created_at = v[4], .created_at_len = strlen(v[4]),
        .updated_at = v[5], .updated_at_len = strlen(v[5]),
    };
    f->doc = v[6];
    f->doc_len = strlen(v[6]);
}

static void load_fixture(struct fixture *f, const char *dir, const char *label)
{
    char path[4096], *v[7];
    snprintf(path, sizeof(path), "%s/%s.txt", dir, label);
    FILE *fp = fopen(path, "r");
    if (!fp) {
        perror(path);
        exit(1);
    }
    for (int i = 0; i < 7; i++) {
        char *line = NULL;
        size_t cap = 0;
        ssize_t n = getline(&line, &cap, fp);
        if (n <= 0) {
            fprintf(stderr, "%s: expected 7 lines\n", path);
            exit(1);
        }
        if (line[n - 1] == '\n')
            line[n - 1] = '\0';
        v[i] = line;
    }
    fclose(fp);
    set_fixture(f, label, v);
}

/* Built-in fixtures in PostgreSQL's own output format (jsonb sorts keys by length). */
static void builtin_fixtures(void)
{
    static const char ts_c[] = "2026-11-27T00:05:36.123456Z", ts_u[] = "2026-11-27T00:18:06.654321Z";
    char *t[7] = {xstrdup("4242"), xstrdup("Widget 042"),
                  xstrdup("{\"tags\": [\"a\", \"b\"], \"color\": \"red\"}"), xstrdup("3"),
                  xstrdup(ts_c), xstrdup(ts_u), NULL};
    char doc[16384];
    snprintf(doc, sizeof(doc),
             "{\"id\" : %s, \"name\" : \"%s\", \"data\" : %s, \"version\" : %s, "
             "\"created_at\" : \"%s\", \"updated_at\" : \"%s\"}",
             t[0], t[1], t[2], t[3], t[4], t[5]);
    t[6] = xstrdup(doc);
    set_fixture(&fx[0], "typical", t);

    char data[8192];
    size_t n = (size_t)snprintf(data, sizeof(data), "{\"tags\": [\"a\", \"b\"], \"color\": \"red\", \"lines\": [");
    for (int i = 1; i <= 40; i++)
        n += (size_t)snprintf(data + n, sizeof(data) - n,
                              "%s{\"qty\": %d, \"sku\": \"SKU-%05d\", \"note\": \"lorem ipsum dolor sit "
                              "amet, caf\xc3\xa9\", \"price\": %d.25}",
                              i > 1 ? ", " : "", i, i, i * 3);
    snprintf(data + n, sizeof(data) - n, "]}");
    char *l[7] = {xstrdup("4242"), xstrdup("Widget 042"), xstrdup(data), xstrdup("3"),
                  xstrdup(ts_c), xstrdup(ts_u), NULL};
    snprintf(doc, sizeof(doc),
             "{\"id\" : %s, \"name\" : \"%s\", \"data\" : %s, \"version\" : %s, "
             "\"created_at\" : \"%s\", \"updated_at\" : \"%s\"}",
             l[0], l[1], l[2], l[3], l[4], l[5]);
    l[6] = xstrdup(doc);
    set_fixture(&fx[1], "large", l);
}

/* ---- driver ---- */

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void check_outputs(void)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    for (int f = 0; f < 2; f++)
        for (size_t v = 0; v < 3; v++) {
            buf_reset(&b);
            if (variants[v].one(&b, &fx[f]) || !codec_json_valid(b.data, b.len, true)) {
                fprintf(stderr, "variant %c failed on %s\n", variants[v].name, fx[f].label);
                exit(1);
            }
        }
    buf_fini(&b);
}

static void show(void)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    for (int f = 0; f < 2; f++)
        for (size_t v = 0; v < 3; v++) {
            buf_reset(&b);
            variants[v].one(&b, &fx[f]);
            printf("%s %c (%zu bytes): %.*s\n", fx[f].label, variants[v].name, b.len,
                   (int)(b.len > 300 ? 300 : b.len), b.data);
        }
    buf_fini(&b);
}

static void time_all(int reps)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    printf("size     variant  bytes_in  bytes_out  ns/op_median  ns/op_min  ns/op_max  reps\n");
    for (int f = 0; f < 2; f++)
        for (size_t v = 0; v < 3; v++) {
            /* Calibrate to ~50 ms a repetition. */
            long n = 1000;
            for (;;) {
                double t0 = now_ns();
                variants[v].loop(&b, &fx[f], n);
                double dt = now_ns() - t0;
                if (dt > 20e6)
                    break;
                n *= 4;
            }
            n = n * 5 / 2;
            double ns[64];
            for (int r = 0; r < reps; r++) {
                double t0 = now_ns();
                if (variants[v].loop(&b, &fx[f], n)) {
                    fprintf(stderr, "render failed\n");
                    exit(1);
                }
                ns[r] = (now_ns() - t0) / (double)n;
            }
            qsort(ns, (size_t)reps, sizeof(double), cmp_double);
            buf_reset(&b);
            variants[v].one(&b, &fx[f]);
            size_t in = variants[v].name == 'C'
                            ? fx[f].doc_len
                            : fx[f].row.id_len + fx[f].row.name_len + fx[f].row.data_len +
                                  fx[f].row.version_len + fx[f].row.created_at_len +
                                  fx[f].row.updated_at_len;
            printf("%-8s %-8c %8zu  %9zu  %12.1f  %9.1f  %9.1f  %4d\n", fx[f].label,
                   variants[v].name, in, b.len, ns[reps / 2], ns[0], ns[reps - 1], reps);
            fflush(stdout);
        }
    buf_fini(&b);
}

int main(int argc, char **argv)
{
    int a = 1;
    if (argc > 2 && strcmp(argv[1], "--fixtures") == 0) {
        load_fixture(&fx[0], argv[2], "typical");
        load_fixture(&fx[1], argv[2], "large");
        a = 3;
    } else {
        builtin_fixtures();
    }
    check_outputs();
    if (argc > a && strcmp(argv[a], "show") == 0) {
        show();
        return 0;
    }
    if (argc > a && strcmp(argv[a], "time") == 0) {
        int reps = argc > a + 1 ? atoi(argv[a + 1]) : 9;
        if (reps < 1 || reps > 64)
            reps = 9;
        time_all(reps);
        return 0;
    }
    if (argc > a + 3 && strcmp(argv[a], "count") == 0) {
        char v = argv[a + 1][0];
        int f = strcmp(argv[a + 2], "large") == 0;
        long n = atol(argv[a + 3]);
        struct buf b;
        buf_init(&b, 1 << 20);
        for (size_t i = 0; i < 3; i++)
            if (variants[i].name == v) {
                /* One warm-up call outside the counted loop (first allocation). */
                variants[i].one(&b, &fx[f]);
                int rc = variants[i].loop(&b, &fx[f], n);
                buf_fini(&b);
                return rc ? 1 : 0;
            }
        return 2;
    }
    fprintf(stderr,
            "usage: %s [--fixtures DIR] time [REPS] | count A|B|C typical|large ITERS | show\n",
            argv[0]);
    return 2;
}
