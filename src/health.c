/*
 * health: /healthz (the loop answers), /readyz (a database connection is
 * usable and we are not draining) and /metrics. None of them touches the
 * database: readiness reads the pool's state, which the pool keeps current.
 */
#include <llhttp.h>

#include "ringlet/handlers.h"
#include "ringlet/http.h"
#include "ringlet/metrics.h"

static void answer_json(struct http_session *s, int status, const char *body,
                        const struct http_resp *extra)
{
    struct http_resp h = extra ? *extra : (struct http_resp){0};
    h.content_type = "application/json";
    struct buf *b = http_resp_begin(s);
    size_t mark = b->len;
    if (buf_append_str(b, body))
        b->len = mark;
    http_resp_finish(s, status, &h);
}

void health_live(struct http_session *s)
{
    answer_json(s, 200, "{\"status\":\"ok\"}", NULL);
}

void health_ready(struct http_session *s)
{
    if (s->env->draining) {
        struct http_resp h = {.retry_after = 5};
        http_resp_problem(s, 503, "shutting down", &h);
        return;
    }
    if (!db_ready(s->env->db)) {
        struct http_resp h = {.retry_after = 1};
        http_resp_problem(s, 503, "no database connection is usable", &h);
        return;
    }
    answer_json(s, 200, "{\"status\":\"ready\"}", NULL);
}

void health_metrics(struct http_session *s)
{
    struct metrics_snapshot snap = {0};
    if (s->env->snapshot)
        s->env->snapshot(s->env->snapshot_ctx, &snap);
    struct buf *b = http_resp_begin(s);
    size_t mark = b->len;
    if (metrics_render(b, &snap)) {
        b->len = mark;
        http_resp_problem(s, 500, "the metrics could not be rendered", NULL);
        return;
    }
    struct http_resp h = {.content_type = "text/plain; version=0.0.4; charset=utf-8"};
    http_resp_finish(s, 200, &h);
}
