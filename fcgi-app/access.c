/* access.c: step 2, who may do what under access = self (RFC 3875). */
#include "access.h"

#include <string.h>
#include <strings.h>

#include "answer.h"

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

int
access_check(struct users_ctx *ctx, const struct http_request *req,
    struct http_response *resp, enum access_op op, const char *target,
    struct principal *pr)
{
	enum reg_err rc;

	memset(pr, 0, sizeof(*pr));
	if (ctx->cfg->access == CONFIG_ACCESS_OPEN)
		return 0;
	if ((rc = load_principal(ctx, req, pr)) != REG_OK) {
		answer_registry_error(ctx, req, resp, rc);
		return -1;
	}
	if (op == ACCESS_CREATE && ctx->cfg->signup == CONFIG_SIGNUP_OPEN)
		return 0;
	if (pr->name == NULL) {
		answer_unauthenticated(ctx, req, resp);
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

int
access_check_grant(struct users_ctx *ctx, const struct http_request *req,
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
