/* problem.c: the catalogue of problem types and their problem+json bodies. */
#include "problem.h"

#include "metrics.h"

#include <stdio.h>
#include <string.h>

/* What a client can do about a problem (API.md): */
#define R_REFETCH "refetch-and-retry"
#define R_RETRY "retry-after"
#define R_NONE "none"
#define R_CHANGE "change-request"

struct problem_type {
	const char *slug;
	int status;
	const char *title;
	const char *error;	/* short message; kept for older clients */
	const char *resolution;
};

static const struct problem_type types[PROBLEM__MAX] = {
	[PROBLEM_USER_EXISTS] = { "user-exists", 409,
	    "User already exists", "User already exists.", R_CHANGE },
	[PROBLEM_EMAIL_TAKEN] = { "email-taken", 409,
	    "Email address already in use", "Email already in use.",
	    R_CHANGE },
	[PROBLEM_STALE_VERSION] = { "stale-version", 409,
	    "Version is stale", "Version is stale.", R_REFETCH },
	[PROBLEM_BUSINESS_RULE] = { "business-rule-violation", 409,
	    "Business rule violated", "Business rule violated.", R_CHANGE },
	[PROBLEM_PRECONDITION_FAILED] = { "precondition-failed", 412,
	    "Precondition failed", "Precondition failed.", R_REFETCH },
	[PROBLEM_PRECONDITION_REQUIRED] = { "precondition-required", 428,
	    "Precondition required", "Precondition required.", R_CHANGE },
	[PROBLEM_MALFORMED_JSON] = { "malformed-json", 400,
	    "Malformed JSON", "Malformed JSON.", R_CHANGE },
	[PROBLEM_NOT_AN_OBJECT] = { "not-an-object", 400,
	    "Body is not a JSON object", "Body must be a JSON object.",
	    R_CHANGE },
	[PROBLEM_DUPLICATE_MEMBER] = { "duplicate-member", 400,
	    "Duplicate member", "Duplicate member in JSON object.",
	    R_CHANGE },
	[PROBLEM_INVALID_QUERY] = { "invalid-query-parameter", 400,
	    "Invalid query parameter", "Invalid query parameter.", R_CHANGE },
	[PROBLEM_INVALID_HEADER] = { "invalid-header", 400,
	    "Invalid header", "Invalid header.", R_CHANGE },
	[PROBLEM_INCONSISTENT_PRECONDITION] = { "inconsistent-precondition",
	    400, "Inconsistent precondition",
	    "If-Match and body version disagree.", R_CHANGE },
	[PROBLEM_VALIDATION_FAILED] = { "validation-failed", 422,
	    "Validation failed", "Validation failed.", R_CHANGE },
	[PROBLEM_UNKNOWN_MEMBER] = { "unknown-member", 422,
	    "Unknown member", "Unknown member.", R_CHANGE },
	[PROBLEM_NAME_MISMATCH] = { "name-mismatch", 422,
	    "Username does not match the URL",
	    "Username does not match the URL.", R_CHANGE },
	[PROBLEM_IDEM_REUSED] = { "idempotency-key-reused", 422,
	    "Idempotency key reused", "Idempotency key reused.", R_CHANGE },
	[PROBLEM_USER_NOT_FOUND] = { "user-not-found", 404,
	    "User not found", "User not found.", R_NONE },
	[PROBLEM_NOT_FOUND] = { "not-found", 404,
	    "Not found", "Not found.", R_NONE },
	[PROBLEM_METHOD_NOT_ALLOWED] = { "method-not-allowed", 405,
	    "Method not allowed", "Method not allowed.", R_NONE },
	[PROBLEM_UNSUPPORTED_MEDIA_TYPE] = { "unsupported-media-type", 415,
	    "Unsupported media type", "Unsupported media type.", R_CHANGE },
	[PROBLEM_PAYLOAD_TOO_LARGE] = { "payload-too-large", 413,
	    "Payload too large", "Payload too large.", R_CHANGE },
	[PROBLEM_FORBIDDEN] = { "forbidden", 403,
	    "Forbidden", "Forbidden.", R_CHANGE },
	[PROBLEM_UNAUTHENTICATED] = { "unauthenticated", 401,
	    "Authentication required", "Authentication required.", R_CHANGE },
	[PROBLEM_REGISTRY_UNAVAILABLE] = { "registry-unavailable", 503,
	    "Registry unavailable", "Registry unavailable.", R_RETRY },
	[PROBLEM_INTERNAL_ERROR] = { "internal-error", 500,
	    "Internal error", "Internal error.", R_NONE },
};

const char *
problem_slug_str(enum problem_slug slug)
{
	return types[slug].slug;
}

int
problem_status(enum problem_slug slug)
{
	return types[slug].status;
}

struct json_object *
problem_new(enum problem_slug slug, const char *base_path,
    const char *request_id, const char *detail)
{
	const struct problem_type *t = &types[slug];
	struct json_object *p;
	char buf[512];

	if ((p = json_object_new_object()) == NULL)
		return NULL;
	snprintf(buf, sizeof(buf), "%sproblems/%s", base_path, t->slug);
	json_object_object_add(p, "type", json_object_new_string(buf));
	json_object_object_add(p, "title", json_object_new_string(t->title));
	json_object_object_add(p, "status", json_object_new_int(t->status));
	json_object_object_add(p, "detail", json_object_new_string(
	    detail != NULL ? detail : t->title));
	snprintf(buf, sizeof(buf), "urn:uuid:%s", request_id);
	json_object_object_add(p, "instance", json_object_new_string(buf));
	json_object_object_add(p, "error", json_object_new_string(t->error));
	json_object_object_add(p, "resolution",
	    json_object_new_string(t->resolution));
	return p;
}

void
problem_send(struct http_response *resp, enum problem_slug slug,
    struct json_object *p)
{
	if (p == NULL) {
		resp->status = 500;
		return;
	}
	metrics_problem(types[slug].slug);
	http_set_json(resp, types[slug].status, "application/problem+json", p);
	json_object_put(p);
}

void
problem_answer(struct http_response *resp, enum problem_slug slug,
    const char *base_path, const char *request_id, const char *detail)
{
	problem_send(resp, slug,
	    problem_new(slug, base_path, request_id, detail));
}
