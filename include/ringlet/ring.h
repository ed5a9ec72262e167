/*
 * ring: the event loop. One io_uring, one thread.
 *
 * Owns the io_uring instance, the provided-buffer ring that multishot receives
 * draw from, the timer lists and the loop itself. Every asynchronous operation
 * is a `struct ring_op` embedded in the object that owns it (a connection, a
 * database connection, the listener); its address is the SQE's user_data, and
 * its callback runs when a CQE for it arrives. The loop never wakes on its own:
 * it sleeps in io_uring_enter until a completion arrives or the earliest timer
 * is due, and with no timers armed it sleeps indefinitely.
 *
 * This module knows nothing about HTTP or PostgreSQL.
 */
#ifndef RINGLET_RING_H
#define RINGLET_RING_H

#include <liburing.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ringlet/cfg.h"

struct ring_op;

/*
 * Completion callback. `res` is cqe->res, `flags` is cqe->flags
 * (IORING_CQE_F_MORE tells that a multishot request stays armed,
 * IORING_CQE_F_BUFFER that a provided buffer was used).
 */
typedef void (*ring_cb)(struct ring_op *op, int res, uint32_t flags);

struct ring_op {
    ring_cb cb;
};

#define ring_container_of(ptr, type, member)                                                       \
    ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* A timer: an intrusive node kept in one deadline-ordered list. */
struct ring_timer {
    struct ring_timer *prev, *next;
    struct ring_timer_list *list; /* NULL while not armed */
    uint64_t deadline_ns;         /* CLOCK_MONOTONIC */
    void (*cb)(struct ring_timer *t);
};

/*
 * A list of timers ordered by deadline. Insertion walks from the tail, so a
 * list whose timers all share one duration (header timeout, idle timeout...)
 * costs O(1) per insertion.
 */
struct ring_timer_list {
    struct ring_timer *head, *tail;
    struct ring_timer_list *next_list; /* the ring's chain of lists */
};

/* What the kernel offered and what was chosen, decided once at ring_init. */
struct ring_features {
    bool multishot_accept; /* Linux 5.19 */
    bool multishot_recv;   /* Linux 6.0, with a provided-buffer ring (5.19) */
    bool single_issuer;    /* IORING_SETUP_SINGLE_ISSUER, 6.0 */
    bool defer_taskrun;    /* IORING_SETUP_DEFER_TASKRUN, 6.1 */
    bool coop_taskrun;     /* IORING_SETUP_COOP_TASKRUN, 5.19 */
    bool ext_arg;          /* IORING_FEAT_EXT_ARG, 5.11 */
    char summary[160];     /* e.g. "multishot_accept,multishot_recv,defer_taskrun" */
};

#define RING_BUF_SIZE  4096 /* bytes per provided receive buffer */
#define RING_BUF_COUNT 512  /* provided receive buffers (power of two) */
#define RING_BUF_GROUP 1    /* buffer group id of the receive buffers */

struct ring {
    struct io_uring uring;
    struct ring_features feat;
    struct io_uring_buf_ring *bufs; /* NULL when multishot receive is off */
    char *buf_mem;                  /* RING_BUF_COUNT * RING_BUF_SIZE bytes */
    size_t bufs_map_len;
    struct ring_timer_list *lists; /* every registered timer list */
    /* The armed IORING_OP_TIMEOUT alternates between two ops, so removing
     * the old one can never hit its replacement (same user_data). */
    struct ring_op timeout_op[2];
    unsigned timeout_idx; /* which of timeout_op is (or was last) armed */
    struct ring_op timeout_rm_op;
    struct __kernel_timespec timeout_ts[2];
    uint64_t armed_deadline_ns;     /* 0: no timeout armed */
    uint64_t now_ns;                /* CLOCK_MONOTONIC at the last wake-up */
    void (*before_wait)(void *ctx); /* runs after each batch, before sleeping */
    void *before_wait_ctx;
    bool stop;
};

/*
 * Set up the ring: try set-up flags newest first, register the provided
 * buffer ring, decide the feature set (`mode` COMPAT forces the oldest paths).
 * Returns 0, or -errno with a message for the operator in `err` that names
 * the cause and the fix when io_uring itself is unavailable.
 */
int ring_init(struct ring *r, unsigned entries, enum cfg_io_uring mode, char *err, size_t errlen);
void ring_fini(struct ring *r);

/* An SQE, submitting pending ones first when the queue is full. Never NULL. */
struct io_uring_sqe *ring_get_sqe(struct ring *r, struct ring_op *op);

/* Run until ring_stop(). Returns 0 or the -errno that ended the loop. */
int ring_run(struct ring *r);
static inline void ring_stop(struct ring *r)
{
    r->stop = true;
}

/*
 * Run `fn` once per turn of the loop, after completions and timers, before
 * the loop submits and sleeps: where work batched during the turn is pushed
 * out (the database pool closes its groups of queries there).
 */
static inline void ring_set_before_wait(struct ring *r, void (*fn)(void *ctx), void *ctx)
{
    r->before_wait = fn;
    r->before_wait_ctx = ctx;
}

/* CLOCK_MONOTONIC in nanoseconds, read now. */
uint64_t ring_clock_ns(void);

/* Register a timer list with the loop (lists live as long as the ring). */
void ring_timer_list_add(struct ring *r, struct ring_timer_list *l);

/* (Re)arm `t` in `l` to fire `ms` milliseconds after the loop's current time. */
void ring_timer_arm(struct ring *r, struct ring_timer_list *l, struct ring_timer *t, uint64_t ms);
/* Disarm; harmless when not armed. */
void ring_timer_disarm(struct ring_timer *t);
static inline bool ring_timer_armed(const struct ring_timer *t)
{
    return t->list != NULL;
}

/* Address of provided buffer `bid`, and its return to the kernel. */
static inline char *ring_buf_addr(struct ring *r, unsigned bid)
{
    return r->buf_mem + (size_t)bid * RING_BUF_SIZE;
}
void ring_buf_recycle(struct ring *r, unsigned bid);

#endif
