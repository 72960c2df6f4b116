/* access.h: step 2, who may do what under access = self (RFC 3875). */
#ifndef USERREG_ACCESS_H
#define USERREG_ACCESS_H

#include "http.h"
#include "user.h"
#include "users.h"

/* The authenticated principal of a request under access = self. */
struct principal {
	const char *name;		/* REMOTE_USER, NULL when none */
	int known;			/* has a user record */
	struct user rec;
};

/* What a request wants to do. */
enum access_op { ACCESS_READ, ACCESS_CREATE, ACCESS_WRITE };

/*
 * REMOTE_USER under access = self: reads need a principal, sign-up is
 * open unless signup = admin, writes to the user target need that user or
 * an admin. Returns 0 when allowed (pr filled); otherwise answers 401/403
 * (or the registry error) into resp and returns -1.
 */
int access_check(struct users_ctx *ctx, const struct http_request *req,
    struct http_response *resp, enum access_op op, const char *target,
    struct principal *pr);

/*
 * A principal may not hand out roles it does not hold: to itself at all,
 * and, unless it is an admin, to anyone. before is the target's current
 * state or NULL. Returns 0 when allowed, else answers 403 and returns -1.
 */
int access_check_grant(struct users_ctx *ctx, const struct http_request *req,
    struct http_response *resp, const struct principal *pr,
    const struct user *before, const struct user *after);

#endif
