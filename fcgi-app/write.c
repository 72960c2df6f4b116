/* write.c: one write (POST, PUT, PATCH, DELETE) applied to a transaction. */
#include "write.h"

#include <string.h>

#include "access.h"
#include "answer.h"
#include "body.h"
#include "idem.h"
#include "precond.h"

const char *
write_method(enum write_kind kind)
{
	static const char *const names[WRITE__MAX] = {
		[WRITE_CREATE] = "POST",
		[WRITE_PUT] = "PUT",
		[WRITE_PATCH] = "PATCH",
		[WRITE_DELETE] = "DELETE",
	};

	return (unsigned)kind < WRITE__MAX ? names[kind] : "?";
}

/*
 * Steps 8-11 of POST: 400/422 for the body, 403 for roles not the
 * principal's to give, 409 for a taken name or email, else the insert.
 */
static enum reg_err
create(struct users_ctx *ctx, const struct http_request *req,
    struct http_response *resp, const struct principal *pr, int dry,
    int *needs_write)
{
	struct user existing;
	struct body b;
	enum reg_err rc = REG_OK;

	body_read(req, ctx->cfg->max_depth, BODY_FOR_POST, NULL, &b);
	if (answer_body_parse_error(ctx, req, resp, &b) != 0 ||
	    answer_body_errors(ctx, req, resp, &b) != 0 ||
	    access_check_grant(ctx, req, resp, pr, NULL, &b.u) != 0)
		goto out;
	rc = registry_get(ctx->reg, b.u.username, &existing);
	if (rc == REG_OK) {
		answer_exists(ctx, req, resp, &existing);
		goto out;
	}
	if (rc != REG_NOT_FOUND)
		goto out;
	rc = REG_OK;
	if (dry) {
		*needs_write = 1;
		goto out;
	}
	switch ((rc = registry_insert(ctx->reg, &b.u))) {
	case REG_OK:
		answer_user(ctx, resp, 201, &b.u);
		break;
	case REG_EMAIL_TAKEN:
		answer_email_taken(ctx, req, resp);
		rc = REG_OK;
		break;
	case REG_EXISTS:	/* cannot happen under the lock; still a 409 */
		if ((rc = registry_get(ctx->reg, b.u.username, &existing)) ==
		    REG_OK)
			answer_exists(ctx, req, resp, &existing);
		break;
	default:
		break;
	}
out:
	body_release(&b);
	return rc;
}

/* POST /users: step 2 again, step 4 (the key), then create(). */
static enum reg_err
apply_create(struct users_ctx *ctx, const struct http_request *req,
    struct http_response *resp, int dry, int *needs_write)
{
	struct principal pr;
	struct idem idem;
	enum reg_err rc;

	if (access_check(ctx, req, resp, ACCESS_CREATE, NULL, &pr) != 0)
		return REG_OK;
	/* Step 4: a key seen before answers here, before anything runs. */
	idem_init(&idem, ctx->cfg, req);
	if (idem.active) {
		switch ((rc = idem_lookup(&idem, ctx->reg, resp))) {
		case REG_IDEM_DONE:
			return REG_OK;
		case REG_IDEM_MISMATCH:
			answer_problem(ctx, req, resp, PROBLEM_IDEM_REUSED,
			    "this Idempotency-Key was used with a different "
			    "request body; use a new key");
			return REG_OK;
		case REG_NOT_FOUND:
			break;
		default:
			return rc;
		}
		/* Whatever the answer, it is stored: that is a write. */
		if (dry) {
			*needs_write = 1;
			return REG_OK;
		}
	}
	if ((rc = create(ctx, req, resp, &pr, dry, needs_write)) != REG_OK)
		return rc;
	/* The key's answer commits with the user it created, or not at all. */
	return dry ? REG_OK : idem_store(&idem, ctx->reg,
	    ctx->cfg->idempotency_ttl, resp);
}

/* The "accepted" member of 428: what would have satisfied step 6. */
static struct json_object *
accepted_preconditions(void)
{
	struct json_object *a = json_object_new_array();

	json_object_array_add(a, json_object_new_string("If-Match"));
	json_object_array_add(a, json_object_new_string("If-None-Match: *"));
	return a;
}

/* Has the request any precondition that satisfies step 6? */
static int
has_precondition(const struct http_request *req, enum write_kind kind,
    const struct body *b)
{
	if (req->if_match != NULL)
		return 1;
	if (kind == WRITE_PUT && req->if_none_match != NULL &&
	    precond_is_star(req->if_none_match))
		return 1;
	return kind != WRITE_DELETE && (b->present & BODY_VERSION);
}

/*
 * Steps 5-7 of PUT, PATCH and DELETE on cur (exists: 0 when missing):
 * 404, 428 and 412. Returns 0 to go on, -1 when resp holds the answer.
 */
static int
check_target(struct users_ctx *ctx, const struct http_request *req,
    struct http_response *resp, enum write_kind kind, int exists,
    const struct user *cur, const struct body *b)
{
	/* Step 5: PUT may create; the others need a user. */
	if (!exists && kind != WRITE_PUT) {
		answer_problem(ctx, req, resp, PROBLEM_USER_NOT_FOUND,
		    "no user has this username");
		return -1;
	}
	/* Step 6: without a header, the body is read for its version. */
	if (!has_precondition(req, kind, b) &&
	    ctx->cfg->require_preconditions) {
		if (kind != WRITE_DELETE &&
		    answer_body_parse_error(ctx, req, resp, b) != 0)
			return -1;
		answer_problem_ext(ctx, req, resp,
		    PROBLEM_PRECONDITION_REQUIRED, kind == WRITE_DELETE ?
		    "send If-Match with the ETag of the user you read" :
		    "send If-Match with the ETag of the user you read, the "
		    "version member in the body, or If-None-Match: * to "
		    "create", "accepted", accepted_preconditions());
		return -1;
	}
	/* Step 7: RFC 9110 13.2.2. */
	if (precond_evaluate(req->if_match, req->if_none_match, 0,
	    exists ? cur->version : 0) != PRECOND_PROCEED) {
		answer_with_current(ctx, req, resp,
		    PROBLEM_PRECONDITION_FAILED, !exists ?
		    "If-Match cannot match: the user does not exist" :
		    req->if_match != NULL &&
		    !precond_if_match(req->if_match, cur->version) ?
		    "If-Match does not match the current version" :
		    "If-None-Match matches: the user exists",
		    exists ? cur : NULL);
		return -1;
	}
	return 0;
}

/*
 * Steps 8-10 of PUT and PATCH: the body (400, 422), If-Match against the
 * body's version (400), roles (403), the body's version (409), giving the
 * user to store in next. Returns 0 to go on, -1 when resp holds the
 * answer.
 */
static int
check_body(struct users_ctx *ctx, const struct http_request *req,
    struct http_response *resp, enum write_kind kind, int exists,
    const struct user *cur, struct body *b, const struct principal *pr,
    struct user *next)
{
	if (answer_body_parse_error(ctx, req, resp, b) != 0)
		return -1;
	if ((b->present & BODY_VERSION) && b->version > 0 &&
	    req->if_match != NULL && !precond_is_star(req->if_match) &&
	    !precond_if_match(req->if_match, b->version)) {
		answer_problem(ctx, req, resp,
		    PROBLEM_INCONSISTENT_PRECONDITION, "If-Match and the "
		    "body's version name different versions");
		return -1;
	}
	if (answer_body_errors(ctx, req, resp, b) != 0)
		return -1;
	if (kind == WRITE_PATCH) {
		body_merge_patch(cur, b, next);
	} else {
		*next = b->u;
		next->version = exists ? cur->version : 0;
	}
	if (access_check_grant(ctx, req, resp, pr, exists ? cur : NULL,
	    next) != 0)
		return -1;
	/* Step 10: a body version is a compare-and-swap token. */
	if ((b->present & BODY_VERSION) &&
	    (!exists || cur->version != b->version)) {
		answer_with_current(ctx, req, resp, PROBLEM_STALE_VERSION,
		    exists ? "the version in the body is not the current one" :
		    "the user no longer exists", exists ? cur : NULL);
		return -1;
	}
	return 0;
}

/* Step 11 for PUT, PATCH and DELETE: the write itself, answered. */
static enum reg_err
store(struct users_ctx *ctx, const struct http_request *req,
    struct http_response *resp, enum write_kind kind, const char *name,
    int exists, const struct user *cur, struct user *next)
{
	struct user now;
	enum reg_err rc;

	if (kind == WRITE_DELETE) {
		if ((rc = registry_delete(ctx->reg, cur)) == REG_OK)
			resp->status = 204;
	} else if (!exists) {
		if ((rc = registry_insert(ctx->reg, next)) == REG_OK)
			answer_user(ctx, resp, 201, next);
	} else {
		if ((rc = registry_update(ctx->reg, cur, next)) == REG_OK)
			answer_user(ctx, resp, 200, next);
	}
	switch (rc) {
	case REG_EMAIL_TAKEN:
		answer_email_taken(ctx, req, resp);
		return REG_OK;
	case REG_LAST_ADMIN:
		answer_last_admin(ctx, req, resp,
		    kind == WRITE_DELETE ? "" : "/roles");
		return REG_OK;
	case REG_EXISTS:
		if ((rc = registry_get(ctx->reg, name, &now)) == REG_OK)
			answer_exists(ctx, req, resp, &now);
		return rc;
	default:
		return rc;
	}
}

/* PUT, PATCH and DELETE: steps 2 (again) and 5-11. */
static enum reg_err
apply_change(struct users_ctx *ctx, enum write_kind kind, const char *name,
    const struct http_request *req, struct http_response *resp, int dry,
    int *needs_write)
{
	struct principal pr;
	struct user cur, next;
	struct body b;
	enum reg_err rc;
	int exists;

	memset(&b, 0, sizeof(b));
	memset(&cur, 0, sizeof(cur));
	memset(&next, 0, sizeof(next));
	/* Under the lock a role revoked meanwhile counts. */
	if (access_check(ctx, req, resp, ACCESS_WRITE, name, &pr) != 0)
		return REG_OK;
	if (kind != WRITE_DELETE)
		body_read(req, ctx->cfg->max_depth, kind == WRITE_PUT ?
		    BODY_FOR_PUT : BODY_FOR_PATCH, name, &b);
	rc = registry_get(ctx->reg, name, &cur);
	if (rc != REG_OK && rc != REG_NOT_FOUND)
		goto out;
	exists = rc == REG_OK;
	rc = REG_OK;
	if (check_target(ctx, req, resp, kind, exists, &cur, &b) != 0)
		goto out;
	if (kind != WRITE_DELETE) {
		if (check_body(ctx, req, resp, kind, exists, &cur, &b, &pr,
		    &next) != 0)
			goto out;
		if (exists && user_same_writable(&cur, &next)) {
			/* No effective change: same ETag, no new version. */
			answer_user(ctx, resp, 200, &cur);
			goto out;
		}
	}
	if (dry)
		*needs_write = 1;
	else
		rc = store(ctx, req, resp, kind, name, exists, &cur, &next);
out:
	body_release(&b);
	return rc;
}

enum reg_err
write_apply(struct users_ctx *ctx, enum write_kind kind, const char *name,
    const struct http_request *req, struct http_response *resp, int dry,
    int *needs_write)
{
	*needs_write = 0;
	if (kind == WRITE_CREATE)
		return apply_create(ctx, req, resp, dry, needs_write);
	if ((unsigned)kind >= WRITE__MAX || name == NULL)
		return REG_ERROR;
	return apply_change(ctx, kind, name, req, resp, dry, needs_write);
}

/*
 * Applies the write in a transaction of its own and commits it, or
 * answers why not; without wait, returns -1 having done nothing when the
 * write lock is taken.
 */
static int
run_in_own_transaction(struct users_ctx *ctx, enum write_kind kind,
    const char *name, const struct http_request *req,
    struct http_response *resp, int wait)
{
	enum reg_err rc;
	int needs_write;

	rc = wait ? registry_begin(ctx->reg) : registry_try_begin(ctx->reg);
	if (rc == REG_BUSY && !wait)
		return -1;
	if (rc == REG_OK) {
		rc = write_apply(ctx, kind, name, req, resp, 0, &needs_write);
		if (rc == REG_OK && resp->status < 500)
			rc = registry_commit(ctx->reg);
		else
			registry_rollback(ctx->reg);
	}
	if (rc != REG_OK)
		answer_registry_error(ctx, req, resp, rc);
	return 0;
}

void
write_run_locally(struct users_ctx *ctx, enum write_kind kind,
    const char *name, const struct http_request *req,
    struct http_response *resp)
{
	(void)run_in_own_transaction(ctx, kind, name, req, resp, 1);
}

int
write_try_locally(struct users_ctx *ctx, enum write_kind kind,
    const char *name, const struct http_request *req,
    struct http_response *resp)
{
	return run_in_own_transaction(ctx, kind, name, req, resp, 0);
}
