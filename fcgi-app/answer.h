/* answer.h: the answers of the /users handlers, as HTTP responses. */
#ifndef USERREG_ANSWER_H
#define USERREG_ANSWER_H

#include "body.h"
#include "http.h"
#include "problem.h"
#include "registry.h"
#include "user.h"
#include "users.h"

/*
 * Every answer a handler gives goes through here, so each problem's
 * extensions are built in one place. Each function fills resp (as
 * initialized, or released) and never fails loudly: out of memory leaves
 * a bare 500, which the worker turns into a problem body.
 */

#define MEDIA_JSON "application/json"
#define MEDIA_MERGE_PATCH "application/merge-patch+json"

/* A problem with no extension. */
void answer_problem(struct users_ctx *ctx, const struct http_request *req,
    struct http_response *resp, enum problem_slug slug, const char *detail);

/* A problem with one extension member (pointer, rule, header...). */
void answer_problem_ext(struct users_ctx *ctx, const struct http_request *req,
    struct http_response *resp, enum problem_slug slug, const char *detail,
    const char *key, struct json_object *value);

/*
 * A registry failure rc, logged with the backend's reason: 503
 * registry-unavailable with Retry-After when a retry can help (lock wait,
 * disk full, read-only, moved, down), 500 internal-error otherwise.
 * Nothing internal reaches the client.
 */
void answer_registry_error(struct users_ctx *ctx,
    const struct http_request *req, struct http_response *resp,
    enum reg_err rc);

/* 503 registry-unavailable with Retry-After, for reasons of our own. */
void answer_unavailable(struct users_ctx *ctx, const struct http_request *req,
    struct http_response *resp, const char *detail);

/* 401 unauthenticated with a WWW-Authenticate challenge. */
void answer_unauthenticated(struct users_ctx *ctx,
    const struct http_request *req, struct http_response *resp);

/* status with the representation of u as the body, ETag and Locations. */
void answer_user(struct users_ctx *ctx, struct http_response *resp,
    int status, const struct user *u);

/* Adds ETag and Content-Location for u (and Location when created). */
void answer_user_headers(struct users_ctx *ctx, struct http_response *resp,
    const struct user *u, int created);

/*
 * 412 precondition-failed or 409 stale-version, carrying the current
 * representation (cur, or NULL when the user is gone) so the client can
 * merge without another GET.
 */
void answer_with_current(struct users_ctx *ctx,
    const struct http_request *req, struct http_response *resp,
    enum problem_slug slug, const char *detail, const struct user *cur);

/* 409 user-exists: where the existing user is and its version. */
void answer_exists(struct users_ctx *ctx, const struct http_request *req,
    struct http_response *resp, const struct user *existing);

/* 409 email-taken, pointing at /email and naming no other user. */
void answer_email_taken(struct users_ctx *ctx,
    const struct http_request *req, struct http_response *resp);

/* 409 business-rule-violation last-admin, pointing at pointer. */
void answer_last_admin(struct users_ctx *ctx, const struct http_request *req,
    struct http_response *resp, const char *pointer);

/* 400 invalid-header naming header. */
void answer_bad_header(struct users_ctx *ctx, const struct http_request *req,
    struct http_response *resp, const char *header, const char *detail);

/*
 * Step 8: when the body did not parse (or arrived truncated), answers
 * 400 malformed-json, not-an-object or duplicate-member (with offset
 * where known) and returns -1; otherwise returns 0.
 */
int answer_body_parse_error(struct users_ctx *ctx,
    const struct http_request *req, struct http_response *resp,
    const struct body *b);

/*
 * Step 9: when members failed, answers 422 with errors[] (validation-
 * failed, else unknown-member, else name-mismatch) and returns -1;
 * otherwise returns 0. Moves b->errors into the answer.
 */
int answer_body_errors(struct users_ctx *ctx, const struct http_request *req,
    struct http_response *resp, struct body *b);

#endif
