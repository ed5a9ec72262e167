/*
 * ring: io_uring set-up, SQE allocation, CQE dispatch and timers.
 *
 * Timers never cost a wake-up of their own: at most one IORING_OP_TIMEOUT is
 * armed, for the earliest deadline over all timer lists, and it is removed
 * when the lists empty, so an idle process with no clients sleeps in
 * io_uring_enter with nothing that can wake it but a real event.
 */
#include "ringlet/ring.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define CQE_BATCH 256

static void noop_cb(struct ring_op *op, int res, uint32_t flags)
{
    (void)op;
    (void)res;
    (void)flags;
}

static struct ring_op noop_op = {.cb = noop_cb};

uint64_t ring_clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void timeout_fired(struct ring *r, unsigned idx, int res)
{
    /* -ETIME: it fired; -ECANCELED: we removed it (a newer one may be armed
     * in the other slot). Only the current slot firing disarms. */
    if (res == -ETIME && idx == r->timeout_idx)
        r->armed_deadline_ns = 0;
}

static void timeout0_cb(struct ring_op *op, int res, uint32_t flags)
{
    (void)flags;
    timeout_fired(ring_container_of(op, struct ring, timeout_op[0]), 0, res);
}

static void timeout1_cb(struct ring_op *op, int res, uint32_t flags)
{
    (void)flags;
    timeout_fired(ring_container_of(op, struct ring, timeout_op[1]), 1, res);
}

/* Describe why io_uring_setup failed and what to change. */
static void explain_setup_failure(int rc, char *err, size_t errlen)
{
    switch (rc) {
    case -ENOSYS:
        snprintf(err, errlen,
                 "io_uring is unavailable (io_uring_setup: ENOSYS): the kernel is older than "
                 "5.1 or built without CONFIG_IO_URING, or a seccomp profile blocks the "
                 "io_uring syscalls (Docker 25+, containerd 2.0 and podman default profiles "
                 "do). Fix: run on Linux 5.10 or newer and allow io_uring_setup, "
                 "io_uring_enter and io_uring_register (use the seccomp profile shipped as "
                 "manifests/seccomp/ringlet.json)");
        break;
    case -EPERM:
        snprintf(err, errlen,
                 "io_uring is not permitted (io_uring_setup: EPERM): the sysctl "
                 "kernel.io_uring_disabled is 2 (or 1 and this process is not in "
                 "kernel.io_uring_group), or a seccomp profile denies io_uring_setup. Fix: "
                 "sysctl -w kernel.io_uring_disabled=0 on the node, or run with the seccomp "
                 "profile manifests/seccomp/ringlet.json");
        break;
    case -ENOMEM:
        snprintf(err, errlen,
                 "io_uring_setup failed: ENOMEM (locked memory limit too low for the ring; "
                 "raise RLIMIT_MEMLOCK, or use Linux 5.12+ where rings are memcg-accounted)");
        break;
    default:
        snprintf(err, errlen, "io_uring_setup failed: %s", strerror(-rc));
        break;
    }
}

/* Test hook: RINGLET_TEST_IO_URING_FAIL=ENOSYS|EPERM makes set-up fail as the
 * kernel would, so the operator message is tested without a special kernel. */
static int injected_setup_failure(void)
{
    const char *v = getenv("RINGLET_TEST_IO_URING_FAIL");
    if (!v)
        return 0;
    if (strcmp(v, "ENOSYS") == 0)
        return -ENOSYS;
    if (strcmp(v, "EPERM") == 0)
        return -EPERM;
    return 0;
}

static int setup_ring(struct ring *r, unsigned entries, enum cfg_io_uring mode)
{
    /* Newest first; -EINVAL means "flag unknown to this kernel": try the
     * next. SINGLE_ISSUER (6.0) lets the kernel skip locking for a ring only
     * this thread submits to; COOP_TASKRUN (5.19) avoids interrupting the
     * thread to run completion work; plain set-up works on 5.10.
     * DEFER_TASKRUN (6.1) is deliberately not used: measured on GET at 64
     * connections it was 7% slower than COOP_TASKRUN (49.1k vs 52.8k req/s,
     * wrk, same run; docs/design.md), since it postpones all completion work
     * to the next wait, including the send completions we act on at once. */
    static const struct {
        unsigned flags;
        bool single_issuer, defer, coop;
    } tries[] = {
        {IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN, true,
         false, true},
        {IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN, false, false, true},
        {0, false, false, false},
    };
    size_t first = mode == CFG_IO_URING_COMPAT ? sizeof(tries) / sizeof(tries[0]) - 1 : 0;
    int rc = -EINVAL;
    for (size_t i = first; i < sizeof(tries) / sizeof(tries[0]); i++) {
        struct io_uring_params p;
        memset(&p, 0, sizeof(p));
        p.flags = tries[i].flags;
        /* Room for bursts of completions without overflowing the CQ. */
        p.flags |= IORING_SETUP_CQSIZE;
        p.cq_entries = entries * 4;
        rc = io_uring_queue_init_params(entries, &r->uring, &p);
        if (rc == 0) {
            r->feat.single_issuer = tries[i].single_issuer;
            r->feat.defer_taskrun = tries[i].defer;
            r->feat.coop_taskrun = tries[i].coop;
            r->feat.ext_arg = (p.features & IORING_FEAT_EXT_ARG) != 0;
            return 0;
        }
        if (rc != -EINVAL)
            return rc;
    }
    return rc;
}

/* The opcodes every path needs; all exist since Linux 5.6. */
static int check_opcodes(struct ring *r, char *err, size_t errlen)
{
    static const struct {
        int op;
        const char *name;
    } need[] = {
        {IORING_OP_ACCEPT, "ACCEPT"},
        {IORING_OP_RECV, "RECV"},
        {IORING_OP_SEND, "SEND"},
        {IORING_OP_POLL_ADD, "POLL_ADD"},
        {IORING_OP_POLL_REMOVE, "POLL_REMOVE"},
        {IORING_OP_TIMEOUT, "TIMEOUT"},
        {IORING_OP_TIMEOUT_REMOVE, "TIMEOUT_REMOVE"},
        {IORING_OP_READ, "READ"},
        {IORING_OP_CLOSE, "CLOSE"},
        {IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL"},
    };
    struct io_uring_probe *probe = io_uring_get_probe_ring(&r->uring);
    if (!probe) {
        snprintf(err, errlen,
                 "io_uring probe failed: the kernel is older than 5.6; ringlet "
                 "needs Linux 5.10 or newer");
        return -ENOSYS;
    }
    for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
        if (!io_uring_opcode_supported(probe, need[i].op)) {
            snprintf(err, errlen,
                     "io_uring lacks IORING_OP_%s: the kernel is too old; ringlet needs "
                     "Linux 5.10 or newer",
                     need[i].name);
            io_uring_free_probe(probe);
            return -ENOSYS;
        }
    }
    io_uring_free_probe(probe);
    return 0;
}

/*
 * Provided buffers: the kernel picks a buffer only when data arrives, so an
 * idle connection holds no receive memory at all (1,000 idle keep-alive
 * clients cost their struct conn, not 1,000 buffers). The buffers are
 * recycled as soon as the parser has consumed them, so RING_BUF_COUNT bounds
 * memory, not connections. The memory is mmap'ed: pages the kernel never
 * writes to are never resident.
 */
static int setup_buf_ring(struct ring *r)
{
    size_t ring_len = RING_BUF_COUNT * sizeof(struct io_uring_buf);
    void *ring_mem =
        mmap(NULL, ring_len, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (ring_mem == MAP_FAILED)
        return -ENOMEM;
    struct io_uring_buf_reg reg = {
        .ring_addr = (uintptr_t)ring_mem,
        .ring_entries = RING_BUF_COUNT,
        .bgid = RING_BUF_GROUP,
    };
    int rc = io_uring_register_buf_ring(&r->uring, &reg, 0);
    if (rc) {
        munmap(ring_mem, ring_len);
        return rc; /* -EINVAL before 5.19 */
    }
    size_t mem_len = (size_t)RING_BUF_COUNT * RING_BUF_SIZE;
    void *mem = mmap(NULL, mem_len, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (mem == MAP_FAILED) {
        io_uring_unregister_buf_ring(&r->uring, RING_BUF_GROUP);
        munmap(ring_mem, ring_len);
        return -ENOMEM;
    }
    r->bufs = ring_mem;
    r->bufs_map_len = ring_len;
    r->buf_mem = mem;
    io_uring_buf_ring_init(r->bufs);
    int mask = io_uring_buf_ring_mask(RING_BUF_COUNT);
    for (unsigned i = 0; i < RING_BUF_COUNT; i++)
        io_uring_buf_ring_add(r->bufs, ring_buf_addr(r, i), RING_BUF_SIZE, (unsigned short)i, mask,
                              (int)i);
    io_uring_buf_ring_advance(r->bufs, RING_BUF_COUNT);
    return 0;
}

void ring_buf_recycle(struct ring *r, unsigned bid)
{
    io_uring_buf_ring_add(r->bufs, ring_buf_addr(r, bid), RING_BUF_SIZE, (unsigned short)bid,
                          io_uring_buf_ring_mask(RING_BUF_COUNT), 0);
    io_uring_buf_ring_advance(r->bufs, 1);
}

static void summarize(struct ring_features *f)
{
    snprintf(f->summary, sizeof(f->summary), "%s%s%s%s%s%s",
             f->multishot_accept ? "multishot_accept," : "single_accept,",
             f->multishot_recv ? "multishot_recv," : "single_recv,",
             f->single_issuer ? "single_issuer," : "", f->defer_taskrun ? "defer_taskrun," : "",
             f->coop_taskrun ? "coop_taskrun," : "", f->ext_arg ? "ext_arg," : "");
    size_t n = strlen(f->summary);
    if (n && f->summary[n - 1] == ',')
        f->summary[n - 1] = '\0';
}

int ring_init(struct ring *r, unsigned entries, enum cfg_io_uring mode, char *err, size_t errlen)
{
    memset(r, 0, sizeof(*r));
    r->timeout_op[0].cb = timeout0_cb;
    r->timeout_op[1].cb = timeout1_cb;
    r->timeout_rm_op.cb = noop_cb;

    int rc = injected_setup_failure();
    if (!rc)
        rc = setup_ring(r, entries, mode);
    if (rc) {
        explain_setup_failure(rc, err, errlen);
        return rc;
    }
    rc = check_opcodes(r, err, errlen);
    if (rc) {
        io_uring_queue_exit(&r->uring);
        return rc;
    }
    if (mode != CFG_IO_URING_COMPAT && setup_buf_ring(r) == 0) {
        /* Provided-buffer rings and multishot accept both arrived in 5.19;
         * multishot receive in 6.0 (conn falls back at run time if the
         * kernel answers -EINVAL). */
        r->feat.multishot_accept = true;
        r->feat.multishot_recv = true;
    }
    summarize(&r->feat);
    r->now_ns = ring_clock_ns();
    return 0;
}

void ring_fini(struct ring *r)
{
    if (r->bufs) {
        io_uring_unregister_buf_ring(&r->uring, RING_BUF_GROUP);
        munmap(r->bufs, r->bufs_map_len);
        munmap(r->buf_mem, (size_t)RING_BUF_COUNT * RING_BUF_SIZE);
        r->bufs = NULL;
    }
    io_uring_queue_exit(&r->uring);
}

struct io_uring_sqe *ring_get_sqe(struct ring *r, struct ring_op *op)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&r->uring);
    while (!sqe) {
        /* SQ full: hand what we have to the kernel and try again. */
        int rc = io_uring_submit(&r->uring);
        if (rc < 0 && rc != -EAGAIN && rc != -EBUSY && rc != -EINTR) {
            fprintf(stderr, "ringlet: io_uring_submit: %s\n", strerror(-rc));
            abort();
        }
        sqe = io_uring_get_sqe(&r->uring);
    }
    io_uring_sqe_set_data(sqe, op ? op : &noop_op);
    return sqe;
}

void ring_timer_list_add(struct ring *r, struct ring_timer_list *l)
{
    l->head = l->tail = NULL;
    l->next_list = r->lists;
    r->lists = l;
}

void ring_timer_disarm(struct ring_timer *t)
{
    struct ring_timer_list *l = t->list;
    if (!l)
        return;
    if (t->prev)
        t->prev->next = t->next;
    else
        l->head = t->next;
    if (t->next)
        t->next->prev = t->prev;
    else
        l->tail = t->prev;
    t->prev = t->next = NULL;
    t->list = NULL;
}

void ring_timer_arm(struct ring *r, struct ring_timer_list *l, struct ring_timer *t, uint64_t ms)
{
    ring_timer_disarm(t);
    t->deadline_ns = r->now_ns + ms * 1000000ull;
    struct ring_timer *at = l->tail;
    while (at && at->deadline_ns > t->deadline_ns)
        at = at->prev;
    /* insert after `at` (or at the head) */
    t->prev = at;
    t->next = at ? at->next : l->head;
    if (t->next)
        t->next->prev = t;
    else
        l->tail = t;
    if (at)
        at->next = t;
    else
        l->head = t;
    t->list = l;
}

static uint64_t earliest_deadline(struct ring *r)
{
    uint64_t best = 0;
    for (struct ring_timer_list *l = r->lists; l; l = l->next_list)
        if (l->head && (!best || l->head->deadline_ns < best))
            best = l->head->deadline_ns;
    return best;
}

static void update_timeout(struct ring *r)
{
    uint64_t next = earliest_deadline(r);
    if (next && r->armed_deadline_ns && next >= r->armed_deadline_ns)
        return; /* the armed one fires first; we re-evaluate then */
    if (!next && !r->armed_deadline_ns)
        return;
    if (r->armed_deadline_ns) {
        struct io_uring_sqe *sqe = ring_get_sqe(r, &r->timeout_rm_op);
        io_uring_prep_timeout_remove(sqe, (uint64_t)(uintptr_t)&r->timeout_op[r->timeout_idx], 0);
        r->armed_deadline_ns = 0;
    }
    if (next) {
        unsigned i = r->timeout_idx ^= 1;
        r->timeout_ts[i].tv_sec = (long long)(next / 1000000000ull);
        r->timeout_ts[i].tv_nsec = (long long)(next % 1000000000ull);
        struct io_uring_sqe *sqe = ring_get_sqe(r, &r->timeout_op[i]);
        io_uring_prep_timeout(sqe, &r->timeout_ts[i], 0, IORING_TIMEOUT_ABS);
        r->armed_deadline_ns = next;
    }
}

static void expire_timers(struct ring *r)
{
    for (struct ring_timer_list *l = r->lists; l; l = l->next_list) {
        while (l->head && l->head->deadline_ns <= r->now_ns) {
            struct ring_timer *t = l->head;
            ring_timer_disarm(t);
            t->cb(t);
        }
    }
}

int ring_run(struct ring *r)
{
    struct {
        uint64_t data;
        int res;
        uint32_t flags;
    } batch[CQE_BATCH];

    while (!r->stop) {
        if (r->before_wait)
            r->before_wait(r->before_wait_ctx);
        update_timeout(r);
        int rc = io_uring_submit_and_wait(&r->uring, 1);
        if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY && rc != -ETIME)
            return rc;
        r->now_ns = ring_clock_ns();
        for (;;) {
            unsigned n = 0, head;
            struct io_uring_cqe *cqe;
            io_uring_for_each_cqe(&r->uring, head, cqe)
            {
                batch[n].data = cqe->user_data;
                batch[n].res = cqe->res;
                batch[n].flags = cqe->flags;
                if (++n == CQE_BATCH)
                    break;
            }
            if (!n)
                break;
            io_uring_cq_advance(&r->uring, n);
            for (unsigned i = 0; i < n; i++) {
                struct ring_op *op = (struct ring_op *)(uintptr_t)batch[i].data;
                if (op)
                    op->cb(op, batch[i].res, batch[i].flags);
            }
            if (n < CQE_BATCH)
                break;
        }
        expire_timers(r);
    }
    return 0;
}
