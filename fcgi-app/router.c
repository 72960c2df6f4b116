/* router.c: the route table: 404, 405 + Allow, OPTIONS, then a handler. */
#include "router.h"

#include <string.h>

#include "problem.h"
#include "user.h"

typedef void handler_fn(struct users_ctx *, const struct http_request *,
    const char *, struct http_response *);

enum route {
	ROUTE_USERS = 0,
	ROUTE_USER,
	ROUTE_HEALTHZ,
	ROUTE_METRICS,
	ROUTE__MAX
};

static const char *const allow[ROUTE__MAX] = {
	[ROUTE_USERS] = "GET, HEAD, POST, OPTIONS",
	[ROUTE_USER] = "GET, HEAD, PUT, PATCH, DELETE, OPTIONS",
	[ROUTE_HEALTHZ] = "GET, HEAD, OPTIONS",
	[ROUTE_METRICS] = "GET, HEAD, OPTIONS",
};

static const struct {
	enum route route;
	const char *method;
	handler_fn *fn;
} table[] = {
	{ ROUTE_USERS, "GET", users_list },
	{ ROUTE_USERS, "HEAD", users_list },
	{ ROUTE_USERS, "POST", users_create },
	{ ROUTE_USER, "GET", users_get },
	{ ROUTE_USER, "HEAD", users_get },
	{ ROUTE_USER, "PUT", users_put },
	{ ROUTE_USER, "PATCH", users_patch },
	{ ROUTE_USER, "DELETE", users_delete },
	{ ROUTE_HEALTHZ, "GET", users_healthz },
	{ ROUTE_HEALTHZ, "HEAD", users_healthz },
	{ ROUTE_METRICS, "GET", users_metrics },
	{ ROUTE_METRICS, "HEAD", users_metrics },
};

/*
 * Matches path below the base path; for ROUTE_USER decodes the name into
 * name (USER_NAME_MAX + 1 bytes). Returns the route or ROUTE__MAX (also
 * for /metrics while metrics = off).
 */
static enum route
match(const struct config *cfg, const char *path, char *name)
{
	const char *base = cfg->base_path;
	size_t blen = strlen(base), n;
	char raw[3 * USER_NAME_MAX + 1], decoded[3 * USER_NAME_MAX + 1];
	long dlen;

	if (strlen(path) > ROUTER_PATH_MAX || strncmp(path, base, blen) != 0)
		return ROUTE__MAX;
	path += blen;
	if (strcmp(path, "users") == 0)
		return ROUTE_USERS;
	if (strcmp(path, "healthz") == 0)
		return ROUTE_HEALTHZ;
	if (strcmp(path, "metrics") == 0)
		return cfg->metrics ? ROUTE_METRICS : ROUTE__MAX;
	if (strncmp(path, "users/", 6) != 0)
		return ROUTE__MAX;
	path += 6;
	n = strlen(path);
	if (n == 0 || n >= sizeof(raw) || strchr(path, '/') != NULL)
		return ROUTE__MAX;
	memcpy(raw, path, n + 1);
	/* Decoding may yield '/', '.' or NUL; the pattern check refuses all. */
	if ((dlen = http_percent_decode(raw, n, decoded, 0)) < 0 ||
	    user_check_name(decoded, (size_t)dlen) != USER_OK)
		return ROUTE__MAX;
	memcpy(name, decoded, (size_t)dlen + 1);
	return ROUTE_USER;
}

void
router_dispatch(struct users_ctx *ctx, const struct http_request *req,
    struct http_response *resp)
{
	char name[USER_NAME_MAX + 1];
	const char *base = ctx->cfg->base_path;
	enum route r;
	size_t i;

	if ((r = match(ctx->cfg, req->path, name)) == ROUTE__MAX) {
		problem_answer(resp, PROBLEM_NOT_FOUND, base, req->request_id,
		    "no resource at this path");
		return;
	}
	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (table[i].route == r &&
		    strcmp(table[i].method, req->method) == 0) {
			table[i].fn(ctx, req, r == ROUTE_USER ? name : NULL,
			    resp);
			return;
		}
	if (strcmp(req->method, "OPTIONS") == 0) {
		resp->status = 204;
		http_add_header(resp, "Allow", "%s", allow[r]);
		if (r == ROUTE_USER)
			http_add_header(resp, "Accept-Patch",
			    "application/merge-patch+json");
		return;
	}
	problem_answer(resp, PROBLEM_METHOD_NOT_ALLOWED, base,
	    req->request_id, "the method is not allowed on this resource");
	http_add_header(resp, "Allow", "%s", allow[r]);
}
