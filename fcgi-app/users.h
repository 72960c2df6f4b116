/* users.h: the /users handlers: order of checks, validation, HTTP answers. */
#ifndef USERREG_USERS_H
#define USERREG_USERS_H

#include "config.h"
#include "http.h"
#include "registry.h"

/*
 * Idempotency claims older than this plus three lock waits are taken as
 * abandoned by a process that died (seconds).
 */
#define USERS_IDEM_LEASE 60
/* Retry-After for 503 and idempotency-key-in-use (seconds). */
#define USERS_RETRY_AFTER 1
/* Items per list page: default and most. */
#define USERS_LIST_DEFAULT 50
#define USERS_LIST_MAX REG_LIST_MAX
/* Longest prefix query parameter accepted (bytes, decoded). */
#define USERS_PREFIX_MAX USER_NAME_MAX

/* What every handler works with; owned by the worker's main loop. */
struct users_ctx {
	const struct config *cfg;
	struct registry *reg;
};

/*
 * Answers a registry failure rc and logs it: 503 registry-unavailable with
 * Retry-After when a retry can help (lock wait, disk full, read-only), 500
 * internal-error otherwise. Nothing internal reaches the client.
 */
void users_registry_error(struct users_ctx *ctx,
    const struct http_request *req, struct http_response *resp,
    enum reg_err rc);

/*
 * Answers 401 unauthenticated with a WWW-Authenticate challenge, for a
 * request without REMOTE_USER where access = self needs one.
 */
void users_unauthenticated(struct users_ctx *ctx,
    const struct http_request *req, struct http_response *resp);

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

#endif
