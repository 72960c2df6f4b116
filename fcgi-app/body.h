/* body.h: a /users request body read against the user model (steps 8, 9). */
#ifndef USERREG_BODY_H
#define USERREG_BODY_H

#include <stdint.h>

#include <json-c/json.h>

#include "http.h"
#include "jsonio.h"
#include "user.h"

/* Entries in a 422's errors[] at most; the counts stay exact. */
#define BODY_ERRORS_MAX 32

/* Body members, as bits of struct body's present and nulled. */
enum body_member {
	BODY_USERNAME = 1 << 0,
	BODY_EMAIL = 1 << 1,
	BODY_DISPLAY_NAME = 1 << 2,
	BODY_ROLES = 1 << 3,
	BODY_VERSION = 1 << 4
};

/* Which request the body belongs to: what it must and may carry. */
enum body_mode { BODY_FOR_POST, BODY_FOR_PUT, BODY_FOR_PATCH };

/* A request body read against the user model. */
struct body {
	enum jsonio_err parse;		/* JSONIO_OK once parsed */
	struct jsonio_error perr;
	unsigned present;		/* members named, null or not */
	unsigned nulled;		/* members given as null */
	struct user u;			/* the non-null members' values */
	int64_t version;		/* when BODY_VERSION is valid */
	struct json_object *errors;	/* [{pointer, detail}], or NULL */
	int n_invalid, n_unknown, n_mismatch;
};

/*
 * Parses req's body (JSON nested at most max_depth deep) and reads its
 * members for mode into b. A body that does not parse keeps its verdict
 * in b->parse (400 at step 8); member errors collect in b->errors (422 at
 * step 9). url_name is the decoded {username} of the path, or NULL.
 * Release b with body_release().
 */
void body_read(const struct http_request *req, int max_depth,
    enum body_mode mode, const char *url_name, struct body *b);

/* Frees what b owns. */
void body_release(struct body *b);

/*
 * RFC 7396 merge patch: next is cur with every member the patch b names
 * (BODY_USERNAME ... BODY_ROLES in b->present) replaced by b's value; a
 * member given as null is removed (its value in b is empty).
 */
void body_merge_patch(const struct user *cur, const struct body *b,
    struct user *next);

#endif
