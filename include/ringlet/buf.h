/*
 * buf: a growable byte buffer with a hard upper bound.
 *
 * Every buffer in ringlet that grows with input has an owner and a bound: the
 * owner embeds a struct buf and calls buf_fini() when done; `max` is the most
 * the buffer may ever hold, so a hostile peer can make it grow only that far.
 * Appending past `max` fails with -E2BIG and leaves the contents unchanged.
 */
#ifndef RINGLET_BUF_H
#define RINGLET_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
    char *data; /* heap storage, NULL until first use */
    size_t len; /* bytes in use */
    size_t cap; /* bytes allocated */
    size_t max; /* never grow beyond this many bytes */
};

/* Prepare an empty buffer that will never hold more than `max` bytes. */
void buf_init(struct buf *b, size_t max);

/* Free the storage; the buffer is empty and reusable afterwards. */
void buf_fini(struct buf *b);

/* Forget the contents but keep the storage for reuse. */
static inline void buf_reset(struct buf *b)
{
    b->len = 0;
}

/* Make room for `extra` more bytes. 0, -ENOMEM, or -E2BIG beyond `max`. */
int buf_reserve(struct buf *b, size_t extra);

/* Append bytes. 0, -ENOMEM or -E2BIG (contents unchanged on failure). */
int buf_append(struct buf *b, const void *p, size_t n);

static inline int buf_append_str(struct buf *b, const char *s);

/* Append formatted text. 0, -ENOMEM or -E2BIG. */
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* Drop the first `n` bytes (n <= len), moving the rest to the front. */
void buf_consume(struct buf *b, size_t n);

#include <string.h>
static inline int buf_append_str(struct buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

#endif
