/* admin_check.c: check, the registry's integrity and invariants. */
#include "admin_check.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_keys.h"
#include "http.h"

static int
fault(char *why, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
fault(char *why, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, ADMIN_CHECK_WHY_SIZE, fmt, ap);
	va_end(ap);
	return -1;
}

int
admin_check_user(const struct user *u, int64_t revision, char *why)
{
	enum user_err e;
	size_t i;

	if ((e = user_check_name(u->username, strlen(u->username))) !=
	    USER_OK)
		return fault(why, "username: %s", user_err_str(e));
	if (u->email[0] != '\0' &&
	    (e = user_check_email(u->email, strlen(u->email))) != USER_OK)
		return fault(why, "email: %s", user_err_str(e));
	if (u->display_name[0] != '\0' &&
	    (e = user_check_display_name(u->display_name,
	    strlen(u->display_name))) != USER_OK)
		return fault(why, "display_name: %s", user_err_str(e));
	if (u->nroles > USER_ROLES_MAX)
		return fault(why, "more than %d roles", USER_ROLES_MAX);
	for (i = 0; i < u->nroles; i++) {
		if ((e = user_check_role(u->roles[i], strlen(u->roles[i]))) !=
		    USER_OK)
			return fault(why, "role %zu: %s", i, user_err_str(e));
		if (i > 0 && strcmp(u->roles[i - 1], u->roles[i]) >= 0)
			return fault(why, "roles not sorted and distinct");
	}
	if (u->version < 1)
		return fault(why, "version %lld is not positive",
		    (long long)u->version);
	if (u->version > revision)
		return fault(why, "version %lld is above the revision counter "
		    "%lld", (long long)u->version, (long long)revision);
	if (u->created_at < 0 || u->created_at > u->updated_at)
		return fault(why, "created_at %lld is negative or after "
		    "updated_at %lld", (long long)u->created_at,
		    (long long)u->updated_at);
	return 0;
}

/* Is s a SHA-256 in lowercase hex, as sha256_hex() writes it? */
static int
is_sha256_hex(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return i == 64;
}

int
admin_check_idem(const char *scope, const char *key,
    const struct reg_idem *rec, char *why)
{
	struct http_response resp;
	size_t i, len = strlen(key);
	int rc;

	if (scope[0] != '\0' && !is_sha256_hex(scope))
		return fault(why, "scope is neither empty nor a SHA-256");
	if (len == 0 || len > REG_IDEM_KEY_MAX)
		return fault(why, "key of %zu bytes", len);
	for (i = 0; i < len; i++)
		if (key[i] < 0x21 || key[i] > 0x7e)
			return fault(why, "key holds byte 0x%02x",
			    (unsigned char)key[i]);
	if (!is_sha256_hex(rec->fingerprint))
		return fault(why, "fingerprint is not a SHA-256");
	if (rec->status < 200 || rec->status > 499)
		return fault(why, "status %d is not a final answer that is "
		    "kept", rec->status);
	if (rec->expires_at < 0)
		return fault(why, "expires_at %lld is negative",
		    (long long)rec->expires_at);
	http_response_init(&resp);
	rc = http_response_decode(rec->response, rec->response_len,
	    rec->status, &resp);
	http_response_release(&resp);
	if (rc != 0)
		return fault(why, "stored answer is malformed");
	return 0;
}

/* One check under way. */
struct check {
	struct admin_env *env;
	struct admin_keys names, emails;
	int64_t revision, count, listed, records;
	unsigned long faults;
	int nomem;
};

static void
report(struct check *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
report(struct check *c, const char *fmt, ...)
{
	va_list ap;

	fputs("userreg: check: ", c->env->err);
	va_start(ap, fmt);
	vfprintf(c->env->err, fmt, ap);
	va_end(ap);
	fputc('\n', c->env->err);
	c->faults++;
}

/* A name or email held twice: the UNIQUE indexes should make it never. */
static void
once(struct check *c, struct admin_keys *keys, const char *what,
    const char *value)
{
	char key[USER_EMAIL_MAX + 1];
	unsigned long first;
	int r;

	admin_keys_canonical(value, key, sizeof(key));
	if ((r = admin_keys_add(keys, key, (unsigned long)c->listed,
	    &first)) < 0)
		c->nomem = 1;
	else if (r == 1)
		report(c, "%s '%s' is held by users %lu and %lld (in "
		    "canonical order)", what, value, first,
		    (long long)c->listed);
}

static void
check_one(struct check *c, const struct user *u)
{
	char why[ADMIN_CHECK_WHY_SIZE];

	c->listed++;
	if (admin_check_user(u, c->revision, why) != 0)
		report(c, "user '%s': %s", u->username, why);
	once(c, &c->names, "username", u->username);
	if (u->email[0] != '\0')
		once(c, &c->emails, "email", u->email);
}

static enum reg_err
check_users(struct check *c)
{
	char after[USER_NAME_MAX + 1] = "";
	struct user *page;
	enum reg_err rc = REG_OK;
	size_t n, i;
	int more = 1;

	if ((page = calloc(REG_LIST_MAX, sizeof(*page))) == NULL)
		return REG_ERROR;
	while (more && !c->nomem) {
		rc = registry_list(c->env->reg, after, NULL, REG_LIST_MAX, page,
		    &n, &more);
		if (rc != REG_OK || n == 0)
			break;
		for (i = 0; i < n; i++)
			check_one(c, &page[i]);
		user_canonical(page[n - 1].username, after);
	}
	free(page);
	return rc;
}

static int
check_record(void *arg, const char *scope, const char *key,
    const struct reg_idem *rec)
{
	struct check *c = arg;
	char why[ADMIN_CHECK_WHY_SIZE];

	c->records++;
	if (admin_check_idem(scope, key, rec, why) != 0)
		report(c, "idempotency record %lld (key '%.64s'): %s",
		    (long long)c->records, key, why);
	return 0;
}

int
admin_check(struct admin_env *env, const struct admin_args *a)
{
	struct check c;
	enum reg_err rc;
	int status = ADMIN_EXIT_FAILURE;

	(void)a;
	memset(&c, 0, sizeof(c));
	c.env = env;
	admin_keys_init(&c.names);
	admin_keys_init(&c.emails);
	if ((rc = registry_integrity(env->reg)) == REG_ERROR)
		report(&c, "integrity: %s", registry_errmsg(env->reg));
	else if (rc != REG_OK)
		return admin_registry_failed(env, "check", rc);
	/* One snapshot: the counter, the count and the users agree. */
	if ((rc = registry_begin_read(env->reg)) != REG_OK ||
	    (rc = registry_revision(env->reg, &c.revision)) != REG_OK ||
	    (rc = registry_count(env->reg, &c.count)) != REG_OK ||
	    (rc = check_users(&c)) != REG_OK ||
	    (rc = registry_idem_scan(env->reg, check_record, &c)) != REG_OK) {
		admin_registry_failed(env, "check", rc);
		goto out;
	}
	if (c.nomem) {
		admin_say(env, 0, "check: out of memory");
		goto out;
	}
	if (c.listed != c.count)
		report(&c, "the users count says %lld, %lld users are listed",
		    (long long)c.count, (long long)c.listed);
	if (c.faults > 0) {
		admin_say(env, 0, "check: %lu fault%s found", c.faults,
		    c.faults == 1 ? "" : "s");
		goto out;
	}
	fprintf(env->out, "ok: %lld users, revision %lld, %lld idempotency "
	    "records\n", (long long)c.listed, (long long)c.revision,
	    (long long)c.records);
	status = ADMIN_EXIT_OK;
out:
	registry_rollback(env->reg);
	admin_keys_release(&c.names);
	admin_keys_release(&c.emails);
	return status;
}
