/* users.c: the /users handlers: order of checks, validation, HTTP answers. */
#include "users.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "body.h"
#include "idem.h"
#include "jsonio.h"
#include "log.h"
#include "precond.h"
#include "problem.h"
#include "user.h"

#define MEDIA_JSON "application/json"
#define MEDIA_MERGE_PATCH "application/merge-patch+json"
#define MEDIA_PROBLEM "application/problem+json"

/* The authenticated principal of a request under access = self. */
struct principal {
	const char *name;		/* REMOTE_USER, NULL when none */
	int known;			/* has a user record */
	struct user rec;
};

/* ---- small answers ---------------------------------------------------- */

static void
answer_problem(struct users_ctx *ctx, const struct http_request *req,
    struct http_response *resp, enum problem_slug slug, const char *detail)
{
	problem_answer(resp, slug, ctx->cfg->base_path, req->request_id,
	    detail);
}

void
users_registry_error(struct users_ctx *ctx, const struct http_request *req,
    struct http_response *resp, enum reg_err rc)
{
	char detail[128];

	log_error("registry error '%s' in request %s: %s",
	    registry_err_str(rc), req->request_id, registry_errmsg(ctx->reg));
	if (rc == REG_BUSY || rc == REG_UNAVAILABLE) {
		snprintf(detail, sizeof(detail), "the registry is %s; retry "
		    "later", rc == REG_BUSY ? "busy" : "unavailable");
		answer_problem(ctx, req, resp, PROBLEM_REGISTRY_UNAVAILABLE,
		    detail);
		http_add_header(resp, "Retry-After", "%d", USERS_RETRY_AFTER);
		return;
	}
	answer_problem(ctx, req, resp, PROBLEM_INTERNAL_ERROR,
	    "the request could not be completed");
}

/* Writes base + "users/" + canonical key of name into buf. */
static void
user_uri(struct users_ctx *ctx, const char *name, char *buf, size_t size)
{
	char key[USER_NAME_MAX + 1];

	user_canonical(name, key);
	snprintf(buf, size, "%susers/%s", ctx->cfg->base_path, key);
}

/* Adds ETag and Content-Location for u (and Location when created). */
static void
add_user_headers(struct users_ctx *ctx, struct http_response *resp,
    const struct user *u, int created)
{
	char uri[CONFIG_BASE_PATH_MAX + USER_NAME_MAX + 8];
	char etag[PRECOND_ETAG_SIZE];

	user_uri(ctx, u->username, uri, sizeof(uri));
	http_add_header(resp, "ETag", "%s", precond_etag(u->version, etag));
	http_add_header(resp, "Content-Location", "%s", uri);
	if (created)
		http_add_header(resp, "Location", "%s", uri);
}

/* Answers status with the representation of u as the body. */
static void
answer_user(struct users_ctx *ctx, struct http_response *resp, int status,
    const struct user *u)
{
	struct json_object *o = jsonio_user(u);

	if (o == NULL || http_set_json(resp, status, MEDIA_JSON, o) != 0) {
		json_object_put(o);
		resp->status = 500;
		return;
	}
	json_object_put(o);
	add_user_headers(ctx, resp, u, status == 201);
}

static struct json_object *
version_string(int64_t v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%lld", (long long)v);
	return json_object_new_string(buf);
}

/*
 * 412 precondition-failed or 409 stale-version, carrying the current
 * representation so the client can merge without another GET.
 */
static void
answer_with_current(struct users_ctx *ctx, const struct http_request *req,
    struct http_response *resp, enum problem_slug slug, const char *detail,
    const struct user *cur)
{
	struct json_object *p = problem_new(slug, ctx->cfg->base_path,
	    req->request_id, detail);

	if (p != NULL && cur != NULL) {
		json_object_object_add(p, "current_version",
		    version_string(cur->version));
		json_object_object_add(p, "current", jsonio_user(cur));
	} else if (p != NULL && slug == PROBLEM_STALE_VERSION) {
		/* The user is gone: say so rather than leave members out. */
		json_object_object_add(p, "current_version", NULL);
		json_object_object_add(p, "current", NULL);
	}
	problem_send(resp, slug, p);
}

/* 409 user-exists: where the existing user is and its version. */
static void
answer_exists(struct users_ctx *ctx, const struct http_request *req,
    struct http_response *resp, const struct user *existing)
{
	char uri[CONFIG_BASE_PATH_MAX + USER_NAME_MAX + 8];
	struct json_object *p = problem_new(PROBLEM_USER_EXISTS,
	    ctx->cfg->base_path, req->request_id,
	    "a user with this username (compared case-insensitively) "
	    "already exists");

	if (p != NULL) {
		user_uri(ctx, existing->username, uri, sizeof(uri));
		json_object_object_add(p, "existing",
		    json_object_new_string(uri));
		json_object_object_add(p, "existing_version",
		    version_string(existing->version));
		json_object_object_add(p, "pointer",
		    json_object_new_string("/username"));
	}
	problem_send(resp, PROBLEM_USER_EXISTS, p);
}

/* A problem with one extension member (pointer, rule, header...). */
static void
answer_problem_ext(struct users_ctx *ctx, const struct http_request *req,
    struct http_response *resp, enum problem_slug slug, const char *detail,
    const char *key, struct json_object *value)
{
	struct json_object *p = problem_new(slug, ctx->cfg->base_path,
	    req->request_id, detail);

	if (p != NULL)
		json_object_object_add(p, key, value);
	else
		json_object_put(value);
	problem_send(resp, slug, p);
}

static void
answer_email_taken(struct users_ctx *ctx, const struct http_request *req,
    struct http_response *resp)
{
	answer_problem_ext(ctx, req, resp, PROBLEM_EMAIL_TAKEN,
	    "another user already has this email address (compared "
	    "case-insensitively)", "pointer", json_object_new_string("/email"));
}

static void
answer_last_admin(struct users_ctx *ctx, const struct http_request *req,
    struct http_response *resp, const char *pointer)
{
	struct json_object *p = problem_new(PROBLEM_BUSINESS_RULE,
	    ctx->cfg->base_path, req->request_id,
	    "the registry must keep at least one user with the role "
	    "'admin'; grant it to another user first");

	if (p != NULL) {
		json_object_object_add(p, "rule",
		    json_object_new_string("last-admin"));
		json_object_object_add(p, "pointer",
		    json_object_new_string(pointer));
	}
	problem_send(resp, PROBLEM_BUSINESS_RULE, p);
}

/* ---- step 2: access control ------------------------------------------- */

void
users_unauthenticated(struct users_ctx *ctx, const struct http_request *req,
    struct http_response *resp)
{
	problem_answer(resp, PROBLEM_UNAUTHENTICATED, ctx->cfg->base_path,
	    req->request_id, "this request needs an authenticated user");
	/* RFC 9110 11.6.1: a 401 names a scheme; the front server's. */
	http_add_header(resp, "WWW-Authenticate", "Basic realm=\"userreg\"");
}

/*
 * Loads the principal of req. Returns REG_OK (also when the principal has
 * no user record) or a registry error.
 */
static enum reg_err
load_principal(struct users_ctx *ctx, const struct http_request *req,
    struct principal *pr)
{
	enum reg_err rc;

	memset(pr, 0, sizeof(*pr));
	if (req->remote_user == NULL || req->remote_user[0] == '\0')
		return REG_OK;
	pr->name = req->remote_user;
	if (user_check_name(pr->name, strlen(pr->name)) != USER_OK)
		return REG_OK;
	rc = registry_get(ctx->reg, pr->name, &pr->rec);
	if (rc == REG_OK)
		pr->known = 1;
	return rc == REG_NOT_FOUND ? REG_OK : rc;
}

static int
principal_is_admin(const struct principal *pr)
{
	return pr->known && user_has_role(&pr->rec, "admin");
}

static int
principal_is(const struct principal *pr, const char *name)
{
	return pr->known && strcasecmp(pr->rec.username, name) == 0;
}

enum access_op { ACCESS_READ, ACCESS_CREATE, ACCESS_WRITE };

/*
 * RFC 3875 REMOTE_USER under access = self: reads need a principal,
 * sign-up is open unless signup = admin, writes to a user need that user
 * or an admin. Returns 0 when allowed; otherwise answers 401/403 (or a
 * registry error) into resp and returns -1.
 */
static int
check_access(struct users_ctx *ctx, const struct http_request *req,
    struct http_response *resp, enum access_op op, const char *target,
    struct principal *pr)
{
	enum reg_err rc;

	memset(pr, 0, sizeof(*pr));
	if (ctx->cfg->access == CONFIG_ACCESS_OPEN)
		return 0;
	if ((rc = load_principal(ctx, req, pr)) != REG_OK) {
		users_registry_error(ctx, req, resp, rc);
		return -1;
	}
	if (op == ACCESS_CREATE && ctx->cfg->signup == CONFIG_SIGNUP_OPEN)
		return 0;
	if (pr->name == NULL) {
		users_unauthenticated(ctx, req, resp);
		return -1;
	}
	if (op == ACCESS_READ || principal_is_admin(pr) ||
	    (op == ACCESS_WRITE && principal_is(pr, target)))
		return 0;
	answer_problem(ctx, req, resp, PROBLEM_FORBIDDEN,
	    op == ACCESS_CREATE ? "only admins may create users" :
	    "only the user itself or an admin may change this user");
	return -1;
}

/*
 * A principal may not hand out roles it does not hold: to itself at all,
 * and, unless it is an admin, to anyone. before is the target's current
 * state or NULL. Returns 0 when allowed, else answers 403 and returns -1.
 */
static int
check_grant(struct users_ctx *ctx, const struct http_request *req,
    struct http_response *resp, const struct principal *pr,
    const struct user *before, const struct user *after)
{
	size_t i;
	int self;

	if (ctx->cfg->access == CONFIG_ACCESS_OPEN)
		return 0;
	self = pr->name != NULL &&
	    strcasecmp(pr->name, after->username) == 0;
	for (i = 0; i < after->nroles; i++) {
		const char *role = after->roles[i];
		if (before != NULL && user_has_role(before, role))
			continue;	/* held already: not a grant */
		if (!self && (principal_is_admin(pr) ||
		    (pr->known && user_has_role(&pr->rec, role))))
			continue;
		answer_problem_ext(ctx, req, resp, PROBLEM_FORBIDDEN,
		    self ? "a user cannot grant itself roles it does not hold" :
		    "only admins may grant roles they do not hold", "pointer",
		    json_object_new_string("/roles"));
		return -1;
	}
	return 0;
}

/* ---- step 3: headers -------------------------------------------------- */

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

static void
answer_bad_header(struct users_ctx *ctx, const struct http_request *req,
    struct http_response *resp, const char *header, const char *detail)
{
	answer_problem_ext(ctx, req, resp, PROBLEM_INVALID_HEADER, detail,
	    "header", json_object_new_string(header));
}

/*
 * Step 3 of the order of checks: Content-Type (415; want NULL for methods
 * without a body), the body's size (413), then If-Match, If-None-Match
 * and (on POST) Idempotency-Key syntax (400). Returns 0 when all pass.
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

/* ---- the handlers ----------------------------------------------------- */

void
users_healthz(struct users_ctx *ctx, const struct http_request *req,
    const char *name, struct http_response *resp)
{
	struct json_object *o;
	enum reg_err rc;

	(void)name;
	if ((rc = registry_ping(ctx->reg)) != REG_OK) {
		users_registry_error(ctx, req, resp, rc);
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "status", json_object_new_string("ok"));
	http_set_json(resp, 200, MEDIA_JSON, o);
	json_object_put(o);
	http_add_header(resp, "Cache-Control", "no-store");
}

void
users_get(struct users_ctx *ctx, const struct http_request *req,
    const char *name, struct http_response *resp)
{
	struct principal pr;
	struct user u;
	enum reg_err rc;

	if (check_access(ctx, req, resp, ACCESS_READ, name, &pr) != 0 ||
	    check_headers(ctx, req, resp, NULL, 0) != 0)
		return;
	if ((rc = registry_get(ctx->reg, name, &u)) == REG_NOT_FOUND) {
		answer_problem(ctx, req, resp, PROBLEM_USER_NOT_FOUND,
		    "no user has this username");
		return;
	}
	if (rc != REG_OK) {
		users_registry_error(ctx, req, resp, rc);
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
		add_user_headers(ctx, resp, &u, 0);
		http_add_header(resp, "Cache-Control", "private, no-cache");
		return;
	case PRECOND_PROCEED:
		break;
	}
	answer_user(ctx, resp, 200, &u);
	http_add_header(resp, "Cache-Control", "private, no-cache");
}

/*
 * Steps 10-11 of POST inside the registry's write lock: 409 for a taken
 * name or email, else the insert. Leaves the transaction open.
 */
static enum reg_err
create_locked(struct users_ctx *ctx, const struct http_request *req,
    struct http_response *resp, struct user *u)
{
	struct user existing;
	enum reg_err rc;

	rc = registry_get(ctx->reg, u->username, &existing);
	if (rc == REG_OK) {
		answer_exists(ctx, req, resp, &existing);
		return REG_OK;
	}
	if (rc != REG_NOT_FOUND)
		return rc;
	switch ((rc = registry_insert(ctx->reg, u))) {
	case REG_OK:
		answer_user(ctx, resp, 201, u);
		return REG_OK;
	case REG_EMAIL_TAKEN:
		answer_email_taken(ctx, req, resp);
		return REG_OK;
	case REG_EXISTS:	/* cannot happen under the lock; still a 409 */
		if (registry_get(ctx->reg, u->username, &existing) == REG_OK)
			answer_exists(ctx, req, resp, &existing);
		else
			answer_problem(ctx, req, resp, PROBLEM_USER_EXISTS,
			    NULL);
		return REG_OK;
	default:
		return rc;
	}
}

void
users_create(struct users_ctx *ctx, const struct http_request *req,
    const char *name, struct http_response *resp)
{
	struct principal pr;
	struct idem idem;
	struct body b;
	enum reg_err rc;

	(void)name;
	memset(&b, 0, sizeof(b));
	if (check_access(ctx, req, resp, ACCESS_CREATE, NULL, &pr) != 0 ||
	    check_headers(ctx, req, resp, MEDIA_JSON, 1) != 0)
		return;
	/* Step 4: a key seen before answers here, before anything runs. */
	if (idem_begin(&idem, ctx, req, resp) != IDEM_PROCEED)
		return;
	body_read(ctx, req, BODY_FOR_POST, NULL, &b);
	if (body_answer_parse_error(ctx, req, resp, &b) != 0 ||
	    body_answer_errors(ctx, req, resp, &b) != 0 ||
	    check_grant(ctx, req, resp, &pr, NULL, &b.u) != 0)
		goto out;
	if ((rc = registry_begin(ctx->reg)) != REG_OK) {
		users_registry_error(ctx, req, resp, rc);
		goto out;
	}
	/* The key's answer commits with the user it created, or not at all. */
	if ((rc = create_locked(ctx, req, resp, &b.u)) != REG_OK ||
	    (rc = idem_store_locked(&idem, ctx, resp)) != REG_OK ||
	    (rc = registry_commit(ctx->reg)) != REG_OK) {
		registry_rollback(ctx->reg);
		http_response_release(resp);
		users_registry_error(ctx, req, resp, rc);
		goto out;
	}
	idem.stored = idem.claimed;
out:
	idem_finish(&idem, ctx, req, resp);
	body_release(&b);
}

/* What a write on /users/{username} is: PUT, PATCH or DELETE. */
enum write_kind { WRITE_PUT, WRITE_PATCH, WRITE_DELETE };

/* Applies a merge patch b onto cur, giving next (RFC 7396). */
static void
merge_patch(const struct user *cur, const struct body *b, struct user *next)
{
	*next = *cur;
	if (b->present & BODY_USERNAME)
		memcpy(next->username, b->u.username, sizeof(next->username));
	if (b->present & BODY_EMAIL)
		memcpy(next->email, b->u.email, sizeof(next->email));
	if (b->present & BODY_DISPLAY_NAME)
		memcpy(next->display_name, b->u.display_name,
		    sizeof(next->display_name));
	if (b->present & BODY_ROLES) {
		memcpy(next->roles, b->u.roles, sizeof(next->roles));
		next->nroles = b->u.nroles;
	}
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
 * Steps 2 (again, under the lock), 5-10 and the write itself, for PUT,
 * PATCH and DELETE, all inside one registry transaction: the state every
 * check sees is the state the write replaces, so a race lost between check
 * and commit is answered exactly like the check (412, 409), never as a
 * silent overwrite. Answers into resp; returns a registry error only when
 * nothing was answered.
 */
static enum reg_err
write_locked(struct users_ctx *ctx, const struct http_request *req,
    struct http_response *resp, enum write_kind kind, const char *name,
    struct body *b)
{
	struct principal pr;
	struct user cur, next;
	int exists, precond;
	enum reg_err rc;

	if (check_access(ctx, req, resp, ACCESS_WRITE, name, &pr) != 0)
		return REG_OK;
	rc = registry_get(ctx->reg, name, &cur);
	if (rc != REG_OK && rc != REG_NOT_FOUND)
		return rc;
	exists = rc == REG_OK;

	/* Step 5: PUT may create; the others need a user. */
	if (!exists && kind != WRITE_PUT) {
		answer_problem(ctx, req, resp, PROBLEM_USER_NOT_FOUND,
		    "no user has this username");
		return REG_OK;
	}
	/* Step 6: without a header, the body is read for its version. */
	precond = has_precondition(req, kind, b);
	if (!precond && ctx->cfg->require_preconditions) {
		if (kind != WRITE_DELETE &&
		    body_answer_parse_error(ctx, req, resp, b) != 0)
			return REG_OK;
		answer_problem_ext(ctx, req, resp,
		    PROBLEM_PRECONDITION_REQUIRED, kind == WRITE_DELETE ?
		    "send If-Match with the ETag of the user you read" :
		    "send If-Match with the ETag of the user you read, the "
		    "version member in the body, or If-None-Match: * to "
		    "create", "accepted", accepted_preconditions());
		return REG_OK;
	}
	/* Step 7: RFC 9110 13.2.2. */
	if (precond_evaluate(req->if_match, req->if_none_match, 0,
	    exists ? cur.version : 0) != PRECOND_PROCEED) {
		answer_with_current(ctx, req, resp,
		    PROBLEM_PRECONDITION_FAILED, !exists ?
		    "If-Match cannot match: the user does not exist" :
		    req->if_match != NULL &&
		    !precond_if_match(req->if_match, cur.version) ?
		    "If-Match does not match the current version" :
		    "If-None-Match matches: the user exists",
		    exists ? &cur : NULL);
		return REG_OK;
	}
	if (kind != WRITE_DELETE) {
		/* Steps 8 and 9. */
		if (body_answer_parse_error(ctx, req, resp, b) != 0)
			return REG_OK;
		if ((b->present & BODY_VERSION) && b->version > 0 &&
		    req->if_match != NULL && !precond_is_star(req->if_match) &&
		    !precond_if_match(req->if_match, b->version)) {
			answer_problem(ctx, req, resp,
			    PROBLEM_INCONSISTENT_PRECONDITION,
			    "If-Match and the body's version name different "
			    "versions");
			return REG_OK;
		}
		if (body_answer_errors(ctx, req, resp, b) != 0)
			return REG_OK;
		if (kind == WRITE_PATCH) {
			merge_patch(&cur, b, &next);
		} else {
			next = b->u;
			next.version = exists ? cur.version : 0;
		}
		if (check_grant(ctx, req, resp, &pr, exists ? &cur : NULL,
		    &next) != 0)
			return REG_OK;
	}
	/* Step 10: a body version is a compare-and-swap token. */
	if ((b->present & BODY_VERSION) && kind != WRITE_DELETE &&
	    (!exists || cur.version != b->version)) {
		answer_with_current(ctx, req, resp, PROBLEM_STALE_VERSION,
		    exists ? "the version in the body is not the current one" :
		    "the user no longer exists", exists ? &cur : NULL);
		return REG_OK;
	}

	if (kind == WRITE_DELETE) {
		rc = registry_delete(ctx->reg, &cur);
		if (rc == REG_OK)
			resp->status = 204;
	} else if (!exists) {
		rc = registry_insert(ctx->reg, &next);
		if (rc == REG_OK)
			answer_user(ctx, resp, 201, &next);
	} else if (user_same_writable(&cur, &next)) {
		/* No effective change: same ETag, no new version. */
		answer_user(ctx, resp, 200, &cur);
		return REG_OK;
	} else {
		rc = registry_update(ctx->reg, &cur, &next);
		if (rc == REG_OK)
			answer_user(ctx, resp, 200, &next);
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
		if (registry_get(ctx->reg, name, &cur) == REG_OK)
			answer_exists(ctx, req, resp, &cur);
		return REG_OK;
	default:
		return rc;
	}
}

static void
write_user(struct users_ctx *ctx, const struct http_request *req,
    const char *name, struct http_response *resp, enum write_kind kind)
{
	static const char *const media[] = {
		[WRITE_PUT] = MEDIA_JSON,
		[WRITE_PATCH] = MEDIA_MERGE_PATCH,
		[WRITE_DELETE] = NULL,
	};
	struct principal pr;
	struct body b;
	enum reg_err rc;

	memset(&b, 0, sizeof(b));
	/*
	 * Step 2 comes before step 3's header checks, so access is checked
	 * here; write_locked() checks it again under the lock, where a role
	 * revoked meanwhile counts.
	 */
	if (check_access(ctx, req, resp, ACCESS_WRITE, name, &pr) != 0 ||
	    check_headers(ctx, req, resp, media[kind], 0) != 0)
		return;
	/* Parsing needs no lock; its verdict is answered in step order. */
	if (kind != WRITE_DELETE)
		body_read(ctx, req, kind == WRITE_PUT ? BODY_FOR_PUT :
		    BODY_FOR_PATCH, name, &b);
	if ((rc = registry_begin(ctx->reg)) != REG_OK) {
		users_registry_error(ctx, req, resp, rc);
		goto out;
	}
	rc = write_locked(ctx, req, resp, kind, name, &b);
	if (rc == REG_OK && resp->status < 300)
		rc = registry_commit(ctx->reg);
	else
		registry_rollback(ctx->reg);
	if (rc != REG_OK) {
		registry_rollback(ctx->reg);
		http_response_release(resp);
		users_registry_error(ctx, req, resp, rc);
	}
out:
	body_release(&b);
}

void
users_put(struct users_ctx *ctx, const struct http_request *req,
    const char *name, struct http_response *resp)
{
	write_user(ctx, req, name, resp, WRITE_PUT);
}

void
users_patch(struct users_ctx *ctx, const struct http_request *req,
    const char *name, struct http_response *resp)
{
	write_user(ctx, req, name, resp, WRITE_PATCH);
}

void
users_delete(struct users_ctx *ctx, const struct http_request *req,
    const char *name, struct http_response *resp)
{
	write_user(ctx, req, name, resp, WRITE_DELETE);
}
