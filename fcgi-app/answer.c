/* answer.c: the answers of the /users handlers, as HTTP responses. */
#include "answer.h"

#include <stdio.h>
#include <string.h>

#include "jsonio.h"
#include "log.h"
#include "precond.h"

/* Room for base_path + "users/" + a canonical name. */
#define USER_URI_SIZE (CONFIG_BASE_PATH_MAX + USER_NAME_MAX + 8)

void
answer_problem(struct users_ctx *ctx, const struct http_request *req,
    struct http_response *resp, enum problem_slug slug, const char *detail)
{
	problem_answer(resp, slug, ctx->cfg->base_path, req->request_id,
	    detail);
}

void
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

void
answer_unavailable(struct users_ctx *ctx, const struct http_request *req,
    struct http_response *resp, const char *detail)
{
	answer_problem(ctx, req, resp, PROBLEM_REGISTRY_UNAVAILABLE, detail);
	http_add_header(resp, "Retry-After", "%d", USERS_RETRY_AFTER);
}

void
answer_registry_error(struct users_ctx *ctx, const struct http_request *req,
    struct http_response *resp, enum reg_err rc)
{
	log_error("registry error '%s' in request %s: %s",
	    registry_err_str(rc), req->request_id, registry_errmsg(ctx->reg));
	http_response_release(resp);
	if (rc == REG_BUSY)
		answer_unavailable(ctx, req, resp,
		    "the registry is busy; retry later");
	else if (rc == REG_UNAVAILABLE)
		answer_unavailable(ctx, req, resp,
		    "the registry is unavailable; retry later");
	else
		answer_problem(ctx, req, resp, PROBLEM_INTERNAL_ERROR,
		    "the request could not be completed");
}

void
answer_unauthenticated(struct users_ctx *ctx, const struct http_request *req,
    struct http_response *resp)
{
	answer_problem(ctx, req, resp, PROBLEM_UNAUTHENTICATED,
	    "this request needs an authenticated user");
	/* RFC 9110 11.6.1: a 401 names a scheme; the front server's. */
	http_add_header(resp, "WWW-Authenticate", "Basic realm=\"userreg\"");
}

/* Writes base + "users/" + canonical key of name into buf. */
static void
user_uri(struct users_ctx *ctx, const char *name, char *buf, size_t size)
{
	char key[USER_NAME_MAX + 1];

	const char *parts[3];
	size_t i, len, o = 0;

	user_canonical(name, key);
	parts[0] = ctx->cfg->base_path;
	parts[1] = "users/";
	parts[2] = key;
	/* As snprintf() would, cut to size, without its cost on every read. */
	for (i = 0; i < 3 && size > 0; i++) {
		len = strlen(parts[i]);
		if (len > size - 1 - o)
			len = size - 1 - o;
		memcpy(buf + o, parts[i], len);
		o += len;
	}
	if (size > 0)
		buf[o] = '\0';
}

void
answer_user_headers(struct users_ctx *ctx, struct http_response *resp,
    const struct user *u, int created)
{
	char uri[USER_URI_SIZE];
	char etag[PRECOND_ETAG_SIZE];

	user_uri(ctx, u->username, uri, sizeof(uri));
	http_add_header(resp, "ETag", "%s", precond_etag(u->version, etag));
	http_add_header(resp, "Content-Location", "%s", uri);
	if (created)
		http_add_header(resp, "Location", "%s", uri);
}

void
answer_user(struct users_ctx *ctx, struct http_response *resp, int status,
    const struct user *u)
{
	size_t len;
	char *text = jsonio_user_text(u, &len);

	if (text == NULL) {
		http_set_body(resp, 500, NULL, NULL, 0);
		return;
	}
	http_set_body(resp, status, MEDIA_JSON, text, len);
	answer_user_headers(ctx, resp, u, status == 201);
}

static struct json_object *
version_string(int64_t v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%lld", (long long)v);
	return json_object_new_string(buf);
}

void
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

void
answer_exists(struct users_ctx *ctx, const struct http_request *req,
    struct http_response *resp, const struct user *existing)
{
	char uri[USER_URI_SIZE];
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

void
answer_email_taken(struct users_ctx *ctx, const struct http_request *req,
    struct http_response *resp)
{
	answer_problem_ext(ctx, req, resp, PROBLEM_EMAIL_TAKEN,
	    "another user already has this email address (compared "
	    "case-insensitively)", "pointer", json_object_new_string("/email"));
}

void
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

void
answer_bad_header(struct users_ctx *ctx, const struct http_request *req,
    struct http_response *resp, const char *header, const char *detail)
{
	answer_problem_ext(ctx, req, resp, PROBLEM_INVALID_HEADER, detail,
	    "header", json_object_new_string(header));
}

int
answer_body_parse_error(struct users_ctx *ctx, const struct http_request *req,
    struct http_response *resp, const struct body *b)
{
	enum problem_slug slug;
	struct json_object *p;

	if (req->body_state == HTTP_BODY_TRUNCATED) {
		answer_problem(ctx, req, resp, PROBLEM_MALFORMED_JSON,
		    "the body ended before Content-Length bytes");
		return -1;
	}
	switch (b->parse) {
	case JSONIO_OK:
		return 0;
	case JSONIO_NOT_OBJECT:
		slug = PROBLEM_NOT_AN_OBJECT;
		break;
	case JSONIO_DUPLICATE:
		slug = PROBLEM_DUPLICATE_MEMBER;
		break;
	case JSONIO_NOMEM:
		answer_problem(ctx, req, resp, PROBLEM_INTERNAL_ERROR, NULL);
		return -1;
	default:
		slug = PROBLEM_MALFORMED_JSON;
		break;
	}
	p = problem_new(slug, ctx->cfg->base_path, req->request_id,
	    b->perr.detail[0] != '\0' ? b->perr.detail : NULL);
	if (p != NULL && b->perr.has_offset)
		json_object_object_add(p, "offset",
		    json_object_new_int64((int64_t)b->perr.offset));
	problem_send(resp, slug, p);
	return -1;
}

int
answer_body_errors(struct users_ctx *ctx, const struct http_request *req,
    struct http_response *resp, struct body *b)
{
	enum problem_slug slug;
	const char *detail;
	struct json_object *p;

	if (b->errors == NULL)
		return 0;
	if (b->n_invalid > 0) {
		slug = PROBLEM_VALIDATION_FAILED;
		detail = "one or more members are invalid; see errors";
	} else if (b->n_unknown > 0) {
		slug = PROBLEM_UNKNOWN_MEMBER;
		detail = "the body names members a user does not have; "
		    "see errors";
	} else {
		slug = PROBLEM_NAME_MISMATCH;
		detail = "the username in the body does not match the URL";
	}
	p = problem_new(slug, ctx->cfg->base_path, req->request_id, detail);
	if (p != NULL) {
		json_object_object_add(p, "errors", b->errors);
		b->errors = NULL;
	}
	problem_send(resp, slug, p);
	return -1;
}
