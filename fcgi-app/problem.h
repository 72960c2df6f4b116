/* problem.h: the catalogue of problem types and their problem+json bodies. */
#ifndef USERREG_PROBLEM_H
#define USERREG_PROBLEM_H

#include <json-c/json.h>

#include "http.h"

/* Every problem the service answers with (API.md, "Errors"). */
enum problem_slug {
	PROBLEM_USER_EXISTS = 0,
	PROBLEM_EMAIL_TAKEN,
	PROBLEM_STALE_VERSION,
	PROBLEM_BUSINESS_RULE,
	PROBLEM_PRECONDITION_FAILED,
	PROBLEM_PRECONDITION_REQUIRED,
	PROBLEM_MALFORMED_JSON,
	PROBLEM_NOT_AN_OBJECT,
	PROBLEM_DUPLICATE_MEMBER,
	PROBLEM_INVALID_QUERY,
	PROBLEM_INVALID_HEADER,
	PROBLEM_INCONSISTENT_PRECONDITION,
	PROBLEM_VALIDATION_FAILED,
	PROBLEM_UNKNOWN_MEMBER,
	PROBLEM_NAME_MISMATCH,
	PROBLEM_IDEM_REUSED,
	PROBLEM_USER_NOT_FOUND,
	PROBLEM_NOT_FOUND,
	PROBLEM_METHOD_NOT_ALLOWED,
	PROBLEM_UNSUPPORTED_MEDIA_TYPE,
	PROBLEM_PAYLOAD_TOO_LARGE,
	PROBLEM_FORBIDDEN,
	PROBLEM_UNAUTHENTICATED,
	PROBLEM_REGISTRY_UNAVAILABLE,
	PROBLEM_INTERNAL_ERROR,
	PROBLEM__MAX
};

/* Returns the slug text ("user-exists"). */
const char *problem_slug_str(enum problem_slug slug);

/* Returns the HTTP status of slug (409). */
int problem_status(enum problem_slug slug);

/*
 * Returns a new problem object: type (base_path + "problems/" + slug),
 * title, status, detail, instance ("urn:uuid:" + request_id), error and
 * resolution, in that order. Callers add extensions, then pass it to
 * problem_send(). NULL when out of memory.
 */
struct json_object *problem_new(enum problem_slug slug, const char *base_path,
    const char *request_id, const char *detail);

/*
 * Makes resp the problem+json answer for p (consumed), with status from
 * its slug. On failure resp is a bare 500.
 */
void problem_send(struct http_response *resp, enum problem_slug slug,
    struct json_object *p);

/* problem_new() and problem_send() with no extension: the common case. */
void problem_answer(struct http_response *resp, enum problem_slug slug,
    const char *base_path, const char *request_id, const char *detail);

#endif
