/* router.h: the route table: 404, 405 + Allow, OPTIONS, then a handler. */
#ifndef USERREG_ROUTER_H
#define USERREG_ROUTER_H

#include "http.h"
#include "users.h"

/* Longest raw path the router looks at; longer paths are 404. */
#define ROUTER_PATH_MAX 1024

/*
 * Answers req into resp: strips the configured base path, matches
 * "users", "users/{username}" and "healthz" (the username percent-decoded
 * and checked against the username pattern), answers unknown paths 404,
 * OPTIONS 204 and unlisted methods 405, each with Allow, and hands every
 * other request to its handler.
 */
void router_dispatch(struct users_ctx *ctx, const struct http_request *req,
    struct http_response *resp);

#endif
