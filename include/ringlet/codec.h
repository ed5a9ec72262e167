/*
 * codec: JSON in and out of the service, and nothing else.
 *
 * In: request bodies are parsed with json-c and validated exactly as the
 * contract says (see codec_item_parse). Out: response JSON is written
 * straight into a struct buf from the text columns PostgreSQL returns; those
 * columns are untrusted, so every value is checked before it is copied (a
 * value that does not have the expected shape makes rendering fail, and the
 * caller answers 500 rather than emitting broken JSON).
 */
#ifndef RINGLET_CODEC_H
#define RINGLET_CODEC_H

#include <stdbool.h>
#include <stddef.h>

struct buf;
struct json_object;

#define CODEC_NAME_MAX_CHARS 200
#define CODEC_MAX_DEPTH      64 /* nesting limit for request and database JSON */

/* A validated POST/PUT body. Strings point into memory owned by `root`. */
struct codec_item_input {
    struct json_object *root; /* owned; released by codec_item_input_fini */
    const char *name;         /* UTF-8, no NUL, 1..200 code points */
    size_t name_len;
    const char *data; /* compact JSON text of the "data" object, "{}" when absent */
    size_t data_len;
};

/*
 * Parse and validate an item body: one JSON object (strict RFC 8259, valid
 * UTF-8, whitespace allowed around it, nothing after it) with a required
 * string "name" (1..200 Unicode characters, no NUL) and an optional object
 * "data" (no \u0000 in any key or string inside it; null is not an object).
 * Any other top-level field, including id/version/created_at/updated_at, is
 * rejected. Returns 0, or -EINVAL with a short human detail for a 400
 * (e.g. "field \"name\" must be a string"); never echoes more than 64 bytes
 * of input into the detail. -ENOMEM on allocation failure.
 * `in` needs codec_item_input_fini() only when 0 was returned.
 */
int codec_item_parse(const char *body, size_t len, struct codec_item_input *in, char *detail,
                     size_t detail_len);
void codec_item_input_fini(struct codec_item_input *in);

/* One row as text columns from PostgreSQL (not NUL-terminated necessarily). */
struct codec_item_row {
    const char *id; /* decimal int64 > 0 */
    size_t id_len;
    const char *name; /* any text; must be valid UTF-8 */
    size_t name_len;
    const char *data; /* jsonb text output; must be a valid JSON object */
    size_t data_len;
    const char *version; /* decimal integer */
    size_t version_len;
    const char *created_at; /* "YYYY-MM-DDTHH:MM:SS.ffffffZ" */
    size_t created_at_len;
    const char *updated_at;
    size_t updated_at_len;
};

/*
 * Append the item as JSON: {"id":..,"name":..,"data":..,"version":..,
 * "created_at":..,"updated_at":..}. Validates every column first (digits,
 * UTF-8, JSON object, timestamp shape); on any violation returns -EINVAL and
 * leaves `out` as it was. Else 0 or the buf_* error.
 */
int codec_item_render(struct buf *out, const struct codec_item_row *row);

/*
 * Append an RFC 9457 problem document:
 * {"type":"about:blank","title":TITLE,"status":N,"detail":DETAIL}
 * with DETAIL escaped (invalid UTF-8 replaced by U+FFFD). 0 or buf_* error.
 */
int codec_problem_render(struct buf *out, int status, const char *title, const char *detail);

/* Append `s` as a JSON string literal with quotes; invalid UTF-8 -> U+FFFD. */
int codec_string_render(struct buf *out, const char *s, size_t len);

/*
 * Strict, allocation-free RFC 8259 validator for one JSON value (whitespace
 * around it allowed). Rejects invalid UTF-8, lone surrogate escapes, nesting
 * deeper than CODEC_MAX_DEPTH. When `object_only`, the value must be an
 * object.
 */
bool codec_json_valid(const char *s, size_t len, bool object_only);

/* True when s[0..len) is well-formed UTF-8 (no overlongs, no surrogates). */
bool codec_utf8_valid(const char *s, size_t len);

#endif
