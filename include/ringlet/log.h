/*
 * log: structured logging to stderr, one record a line.
 *
 * JSON format (default): {"ts":"2026-11-26T15:00:00.123Z","level":"info",
 * "msg":"...","key":value,...}; text format: "ts level msg key=value ...".
 * Logging is for events, never per request on the hot path (except at
 * debug level, which is checked with log_enabled() first).
 * Each record is written with a single write(2) so lines never interleave.
 */
#ifndef RINGLET_LOG_H
#define RINGLET_LOG_H

#include <stdbool.h>

#include "ringlet/cfg.h"

enum log_field_type { LOG_T_END, LOG_T_STR, LOG_T_INT, LOG_T_UINT, LOG_T_DBL, LOG_T_BOOL };

struct log_field {
    const char *key;
    enum log_field_type type;
    union {
        const char *s;
        long long i;
        unsigned long long u;
        double d;
        bool b;
    } v;
};

#define LOG_STR(k, x) ((struct log_field){.key = (k), .type = LOG_T_STR, .v.s = (x)})
#define LOG_INT(k, x) ((struct log_field){.key = (k), .type = LOG_T_INT, .v.i = (long long)(x)})
#define LOG_UINT(k, x)                                                                             \
    ((struct log_field){.key = (k), .type = LOG_T_UINT, .v.u = (unsigned long long)(x)})
#define LOG_DBL(k, x)  ((struct log_field){.key = (k), .type = LOG_T_DBL, .v.d = (double)(x)})
#define LOG_BOOL(k, x) ((struct log_field){.key = (k), .type = LOG_T_BOOL, .v.b = (x)})

/* Set format and minimum level; before the first call: json, info. */
void log_init(enum cfg_log_format format, enum cfg_log_level level);

/*
 * Send records to `fd` instead of stderr (2), e.g. a pipe in unit tests. The
 * descriptor stays the caller's: log never closes it. A negative fd restores
 * stderr.
 */
void log_set_fd(int fd);

/* True when records at `level` are written. */
bool log_enabled(enum cfg_log_level level);

/*
 * Write one record. `fields` ends with an entry of type LOG_T_END. String
 * values are escaped (JSON) or quoted when they contain spaces (text); NULL
 * strings are written as null / "-".
 */
void log_write(enum cfg_log_level level, const char *msg, const struct log_field *fields);

#define LOG__W(lvl, msg, ...)                                                                      \
    log_write((lvl), (msg), (const struct log_field[]){__VA_ARGS__ __VA_OPT__(, ){0}})
#define log_debug(msg, ...)                                                                        \
    do {                                                                                           \
        if (log_enabled(CFG_LOG_DEBUG))                                                            \
            LOG__W(CFG_LOG_DEBUG, msg, __VA_ARGS__);                                               \
    } while (0)
#define log_info(msg, ...)  LOG__W(CFG_LOG_INFO, msg, __VA_ARGS__)
#define log_warn(msg, ...)  LOG__W(CFG_LOG_WARN, msg, __VA_ARGS__)
#define log_error(msg, ...) LOG__W(CFG_LOG_ERROR, msg, __VA_ARGS__)

#endif
