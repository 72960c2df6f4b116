/* users.c: the /users handlers: steps 1-3, reads, and where writes run. */
#include "users.h"

#include <string.h>

#include "access.h"
#include "answer.h"
#include "idem.h"
#include "log.h"
#include "metrics.h"
#include "precond.h"
#include "userlist.h"
#include "version.h"
#include "writer.h"
#include "write.h"

/* Media types match on type/subtype, case-insensitively (RFC 9110 8.3.1). */
static int
media_is(const char *ct, const char *want)
{
	size_t n = strlen(want);

	if (ct == NULL)
		return 0;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	if (strncasecmp(ct, want, n) != 0)
		return 0;
	ct += n;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	return *ct == '\0' || *ct == ';';
}

/*
 * Step 3 of the order of checks: Content-Type (415; want NULL for methods
 * without a body), the body's size (413), a body cut short of its
 * Content-Length (400, answered before step 4 so it never reaches an
 * idempotency record), then If-Match, If-None-Match and (on POST)
 * Idempotency-Key syntax (400). Returns 0 when all pass.
 */
static int
check_headers(struct users_ctx *ctx, const struct http_request *req,
    struct http_response *resp, const char *want, int idem)
{
	if (want != NULL && !media_is(req->content_type, want)) {
		answer_problem(ctx, req, resp, PROBLEM_UNSUPPORTED_MEDIA_TYPE,
		    strcmp(want, MEDIA_JSON) == 0 ?
		    "the body must be application/json" :
		    "the body must be application/merge-patch+json");
		if (strcmp(want, MEDIA_MERGE_PATCH) == 0)
			http_add_header(resp, "Accept-Patch", "%s", want);
		else
			http_add_header(resp, "Accept", "%s", want);
		return -1;
	}
	if (req->body_state == HTTP_BODY_TOO_LARGE) {
		answer_problem_ext(ctx, req, resp, PROBLEM_PAYLOAD_TOO_LARGE,
		    "the request body is larger than the service accepts",
		    "max_bytes", json_object_new_int64(
		    (int64_t)ctx->cfg->max_body));
		return -1;
	}
	if (req->body_state == HTTP_BODY_BAD_LENGTH) {
		answer_bad_header(ctx, req, resp, "Content-Length",
		    "Content-Length must be a decimal number");
		return -1;
	}
	if (want != NULL && req->body_state == HTTP_BODY_TRUNCATED) {
		answer_problem(ctx, req, resp, PROBLEM_MALFORMED_JSON,
		    "the body ended before Content-Length bytes");
		return -1;
	}
	if (req->if_match != NULL && !precond_valid(req->if_match)) {
		answer_bad_header(ctx, req, resp, "If-Match",
		    "If-Match must be \"*\" or a list of entity-tags");
		return -1;
	}
	if (req->if_none_match != NULL && !precond_valid(req->if_none_match)) {
		answer_bad_header(ctx, req, resp, "If-None-Match",
		    "If-None-Match must be \"*\" or a list of entity-tags");
		return -1;
	}
	if (idem && req->idempotency_key != NULL &&
	    !idem_key_valid(req->idempotency_key)) {
		answer_bad_header(ctx, req, resp, "Idempotency-Key",
		    "Idempotency-Key must be 1-255 visible ASCII characters, "
		    "bare or in double quotes");
		return -1;
	}
	return 0;
}

void
users_healthz(struct users_ctx *ctx, const struct http_request *req,
    const char *name, struct http_response *resp)
{
	struct json_object *o;
	enum reg_err rc;

	(void)name;
	if ((rc = registry_ping(ctx->reg)) != REG_OK) {
		/* Whatever the fault, the registry does not answer: 503. */
		log_error("health check failed in request %s: %s: %s",
		    req->request_id, registry_err_str(rc),
		    registry_errmsg(ctx->reg));
		answer_unavailable(ctx, req, resp, "the registry does not "
		    "answer; retry later");
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "status", json_object_new_string("ok"));
	http_set_json(resp, 200, MEDIA_JSON, o);
	json_object_put(o);
	http_add_header(resp, "Cache-Control", "no-store");
}

void
users_metrics(struct users_ctx *ctx, const struct http_request *req,
    const char *name, struct http_response *resp)
{
	struct metrics_gauges g = { -1, -1, USERREG_VERSION };
	char *text;
	size_t len;

	(void)name;
	/* A registry that does not answer leaves its gauges out. */
	if (ctx->reg == NULL || registry_count(ctx->reg, &g.users) != REG_OK)
		g.users = -1;
	if (ctx->reg == NULL ||
	    registry_revision(ctx->reg, &g.revision) != REG_OK)
		g.revision = -1;
	if ((text = metrics_render(&g, &len)) == NULL) {
		answer_problem(ctx, req, resp, PROBLEM_INTERNAL_ERROR, NULL);
		return;
	}
	http_set_body(resp, 200, METRICS_CONTENT_TYPE, text, len);
	http_add_header(resp, "Cache-Control", "no-store");
}

void
users_list(struct users_ctx *ctx, const struct http_request *req,
    const char *name, struct http_response *resp)
{
	struct principal pr;

	(void)name;
	if (access_check(ctx, req, resp, ACCESS_READ, NULL, &pr) != 0 ||
	    check_headers(ctx, req, resp, NULL, 0) != 0)
		return;
	userlist_page(ctx, req, resp);
}

void
users_get(struct users_ctx *ctx, const struct http_request *req,
    const char *name, struct http_response *resp)
{
	struct principal pr;
	struct user u;
	enum reg_err rc;

	if (access_check(ctx, req, resp, ACCESS_READ, name, &pr) != 0 ||
	    check_headers(ctx, req, resp, NULL, 0) != 0)
		return;
	if ((rc = registry_get(ctx->reg, name, &u)) == REG_NOT_FOUND) {
		answer_problem(ctx, req, resp, PROBLEM_USER_NOT_FOUND,
		    "no user has this username");
		return;
	}
	if (rc != REG_OK) {
		answer_registry_error(ctx, req, resp, rc);
		return;
	}
	switch (precond_evaluate(req->if_match, req->if_none_match, 1,
	    u.version)) {
	case PRECOND_FAILED:
		answer_with_current(ctx, req, resp,
		    PROBLEM_PRECONDITION_FAILED,
		    "If-Match does not match the current version", &u);
		return;
	case PRECOND_NOT_MODIFIED:
		resp->status = 304;
		answer_user_headers(ctx, resp, &u, 0);
		http_add_header(resp, "Cache-Control", "private, no-cache");
		return;
	case PRECOND_PROCEED:
		break;
	}
	answer_user(ctx, resp, 200, &u);
	http_add_header(resp, "Cache-Control", "private, no-cache");
}

/*
 * A pool's worker holding the only request in the pool commits a write
 * itself: the writer would have no batch to share its sync with, and the
 * hand-off there and back (two idle processes woken) costs more than the
 * transaction. Whenever another request is in flight, the writer batches.
 */
static int
pool_idle(const struct users_ctx *ctx)
{
	return ctx->writer != NULL && metrics_pool_in_flight() <= 1;
}

/*
 * Runs a write whose steps 1-3 passed. Alone in the pool, in a
 * transaction of its own when the write lock is free. Otherwise first
 * against a read snapshot, without the write lock: whatever it answers
 * without writing (409 user-exists, 412, 404, 422, a replay...) was true
 * in one committed, durable state and is final. Only a write that would
 * change something goes on, to the pool's writer or into a transaction
 * of our own, where every check runs again under the lock.
 */
static void
run_write(struct users_ctx *ctx, enum write_kind kind, const char *name,
    const struct http_request *req, struct http_response *resp)
{
	enum reg_err rc;
	int needs_write = 0;

	if (pool_idle(ctx) && write_try_locally(ctx, kind, name, req,
	    resp) == 0)
		return;
	if ((rc = registry_begin_read(ctx->reg)) == REG_OK) {
		rc = write_apply(ctx, kind, name, req, resp, 1, &needs_write);
		registry_rollback(ctx->reg);
	}
	if (rc != REG_OK) {
		answer_registry_error(ctx, req, resp, rc);
		return;
	}
	if (!needs_write)
		return;
	http_response_release(resp);
	if (ctx->writer == NULL)
		write_run_locally(ctx, kind, name, req, resp);
	else if (ctx->pending_tag == NULL)
		writer_call(ctx->writer, ctx, kind, name, req, resp);
	else if (writer_submit(ctx->writer, ctx->pending_tag, kind, name,
	    req) == 0)
		resp->deferred = 1;	/* the worker's loop answers it later */
	else
		answer_unavailable(ctx, req, resp, "the registry's writer "
		    "cannot be reached; retry later");
}

void
users_create(struct users_ctx *ctx, const struct http_request *req,
    const char *name, struct http_response *resp)
{
	struct principal pr;

	(void)name;
	if (access_check(ctx, req, resp, ACCESS_CREATE, NULL, &pr) != 0 ||
	    check_headers(ctx, req, resp, MEDIA_JSON, 1) != 0)
		return;
	run_write(ctx, WRITE_CREATE, NULL, req, resp);
}

/* PUT, PATCH and DELETE: steps 2 and 3 here, the rest in write.c. */
static void
change_user(struct users_ctx *ctx, const struct http_request *req,
    const char *name, struct http_response *resp, enum write_kind kind)
{
	static const char *const media[WRITE__MAX] = {
		[WRITE_PUT] = MEDIA_JSON,
		[WRITE_PATCH] = MEDIA_MERGE_PATCH,
		[WRITE_DELETE] = NULL,
	};
	struct principal pr;

	if (access_check(ctx, req, resp, ACCESS_WRITE, name, &pr) != 0 ||
	    check_headers(ctx, req, resp, media[kind], 0) != 0)
		return;
	run_write(ctx, kind, name, req, resp);
}

void
users_put(struct users_ctx *ctx, const struct http_request *req,
    const char *name, struct http_response *resp)
{
	change_user(ctx, req, name, resp, WRITE_PUT);
}

void
users_patch(struct users_ctx *ctx, const struct http_request *req,
    const char *name, struct http_response *resp)
{
	change_user(ctx, req, name, resp, WRITE_PATCH);
}

void
users_delete(struct users_ctx *ctx, const struct http_request *req,
    const char *name, struct http_response *resp)
{
	change_user(ctx, req, name, resp, WRITE_DELETE);
}
