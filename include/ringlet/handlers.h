/*
 * handlers: one function per endpoint. items.c owns /v1/items and
 * /v1/items/{id}; health.c owns /healthz, /readyz and /metrics.
 * Each answers through the http response writer exactly once, now or when
 * the database answers.
 */
#ifndef RINGLET_HANDLERS_H
#define RINGLET_HANDLERS_H

#include <stddef.h>

struct http_session;

void items_list(struct http_session *s, const char *query, size_t query_len);
void items_get(struct http_session *s);
void items_create(struct http_session *s);
void items_update(struct http_session *s);
void items_delete(struct http_session *s);

void health_live(struct http_session *s);
void health_ready(struct http_session *s);
void health_metrics(struct http_session *s);

#endif
