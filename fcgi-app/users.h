/* users.h: the /users handlers: steps 1-3, reads, and where writes run. */
#ifndef USERREG_USERS_H
#define USERREG_USERS_H

#include "config.h"
#include "http.h"
#include "registry.h"

/* Retry-After for 503 answers (seconds). */
#define USERS_RETRY_AFTER 1
/* Items per list page: default and most. */
#define USERS_LIST_DEFAULT 50
#define USERS_LIST_MAX REG_LIST_MAX
/* Longest prefix query parameter accepted (bytes, decoded). */
#define USERS_PREFIX_MAX USER_NAME_MAX

struct writer_client;

/* What every handler works with; owned by the process's main loop. */
struct users_ctx {
	const struct config *cfg;
	struct registry *reg;
	/*
	 * The group-commit writer of a pool, or NULL: writes then run in a
	 * transaction of this process's own.
	 */
	struct writer_client *writer;
	/*
	 * The request being answered, as the worker's loop names it to the
	 * writer's client, or NULL: with it, a write is handed to the writer
	 * and its answer comes later (resp->deferred); without it, the
	 * handler waits for the writer's answer.
	 */
	void *pending_tag;
};

/*
 * Each handler answers one routed request into resp (initialized by the
 * caller). name is the decoded, pattern-checked {username} of the path, or
 * NULL on collection routes. Handlers never exit; registry failures become
 * 503 or 500 problems.
 */
void users_list(struct users_ctx *ctx, const struct http_request *req,
    const char *name, struct http_response *resp);
void users_create(struct users_ctx *ctx, const struct http_request *req,
    const char *name, struct http_response *resp);
void users_get(struct users_ctx *ctx, const struct http_request *req,
    const char *name, struct http_response *resp);
void users_put(struct users_ctx *ctx, const struct http_request *req,
    const char *name, struct http_response *resp);
void users_patch(struct users_ctx *ctx, const struct http_request *req,
    const char *name, struct http_response *resp);
void users_delete(struct users_ctx *ctx, const struct http_request *req,
    const char *name, struct http_response *resp);
void users_healthz(struct users_ctx *ctx, const struct http_request *req,
    const char *name, struct http_response *resp);
/* The pool's metrics (Prometheus text), with users total and revision. */
void users_metrics(struct users_ctx *ctx, const struct http_request *req,
    const char *name, struct http_response *resp);

#endif
