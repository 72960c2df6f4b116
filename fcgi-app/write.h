/* write.h: one write (POST, PUT, PATCH, DELETE) applied to a transaction. */
#ifndef USERREG_WRITE_H
#define USERREG_WRITE_H

#include "http.h"
#include "registry.h"
#include "users.h"

/*
 * The order of checks from step 2 on (API.md, "Order of checks") runs
 * here and nowhere else, whichever process holds the transaction: a
 * worker in its own transaction (plain CGI, spawn-fcgi, PostgreSQL), the
 * group-commit writer inside one savepoint of its batch, or the admin
 * tool. Every answer it gives reflects the one state the transaction
 * sees, so a race lost between check and commit is answered exactly like
 * the check (412, 409), never as a silent overwrite.
 */

/* What a write is. */
enum write_kind {
	WRITE_CREATE = 0,	/* POST /users */
	WRITE_PUT,
	WRITE_PATCH,
	WRITE_DELETE,
	WRITE__MAX
};

/* Returns "POST", "PUT", "PATCH" or "DELETE" for kind. */
const char *write_method(enum write_kind kind);

/*
 * Applies the write kind on the user name (the decoded, pattern-checked
 * {username} of the path; ignored for WRITE_CREATE) asked by req, inside
 * the transaction open on ctx->reg, and answers it into resp
 * (initialized): the write's own success (201, 200, 204), or a 4xx
 * problem, or a replayed idempotent answer. Steps 1 and 3 (route,
 * headers) are the caller's.
 *
 * dry: the transaction is a read snapshot. Everything that answers
 * without writing (304-free refusals: 401, 403, 404, 409 user-exists,
 * 412, 428, 400, 422, a replay, a change that changes nothing) is
 * answered as above; a request that would write sets *needs_write to 1
 * instead, leaving resp empty, so the caller runs it again under the
 * write lock.
 *
 * Returns REG_OK when resp holds the answer (or *needs_write is set), or
 * the registry error that stopped it (resp then holds nothing final and
 * the caller answers 503 or 500 and must not commit). Never commits.
 */
enum reg_err write_apply(struct users_ctx *ctx, enum write_kind kind,
    const char *name, const struct http_request *req,
    struct http_response *resp, int dry, int *needs_write);

/*
 * Runs write_apply() in a write transaction of ctx->reg of its own and
 * commits what it answered below 500; a failed commit or a registry
 * error becomes 503 (or 500). For processes without a group-commit
 * writer: plain CGI, a lone worker, PostgreSQL, the admin tool.
 */
void write_run_locally(struct users_ctx *ctx, enum write_kind kind,
    const char *name, const struct http_request *req,
    struct http_response *resp);

/*
 * write_run_locally() if the write lock is free now: returns 0 with resp
 * answered, or -1 with nothing done when another process holds the lock
 * (the caller sends the write elsewhere: to the pool's writer).
 */
int write_try_locally(struct users_ctx *ctx, enum write_kind kind,
    const char *name, const struct http_request *req,
    struct http_response *resp);

#endif
