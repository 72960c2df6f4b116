/* migrate.c: copying a whole registry from one backend to another. */
#include "migrate.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const err_str[MIGRATE_ERR__MAX] = {
	[MIGRATE_OK] = "success",
	[MIGRATE_SAME] = "source and target are the same registry",
	[MIGRATE_NOT_EMPTY] = "target registry is not empty",
	[MIGRATE_SOURCE] = "cannot read the source registry",
	[MIGRATE_TARGET] = "cannot write the target registry",
	[MIGRATE_MISMATCH] = "the copy does not match the source",
};

const char *
migrate_err_str(enum migrate_err err)
{
	if ((unsigned)err >= MIGRATE_ERR__MAX)
		return "unknown migration error";
	return err_str[err];
}

/* Records why in rep; returns err. */
static enum migrate_err
failed(struct migrate_report *rep, enum migrate_err err, enum reg_err reg,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static enum migrate_err
failed(struct migrate_report *rep, enum migrate_err err, enum reg_err reg,
    const char *fmt, ...)
{
	va_list ap;

	rep->reg = reg;
	va_start(ap, fmt);
	vsnprintf(rep->why, sizeof(rep->why), fmt, ap);
	va_end(ap);
	return err;
}

/* A registry call on side (from or to) failed with rc. */
static enum migrate_err
side_failed(struct migrate_report *rep, enum migrate_err err,
    struct registry *side, const char *what, enum reg_err rc)
{
	return failed(rep, err, rc, "%s: %s (%s)", what, registry_err_str(rc),
	    registry_errmsg(side));
}

/* registry_idem_scan() callbacks share this. */
struct idem_copy {
	struct registry *to;
	int64_t now;
	int64_t copied;
	int seen;		/* the target holds a record */
	enum reg_err rc;	/* the target's answer to a store */
};

static int
idem_seen(void *arg, const char *scope, const char *key,
    const struct reg_idem *rec)
{
	(void)scope;
	(void)key;
	(void)rec;
	((struct idem_copy *)arg)->seen = 1;
	return 1;
}

/*
 * Stores one record in the target. registry_idem_put() takes a time and
 * a lifetime: "now" 0 and a lifetime of the stored expiry reproduce the
 * expiry exactly (and its purge of records expired before 0 finds none).
 */
static int
idem_copy_one(void *arg, const char *scope, const char *key,
    const struct reg_idem *rec)
{
	struct idem_copy *c = arg;

	if (rec->expires_at < c->now)
		return 0;
	c->rc = registry_idem_put(c->to, scope, key, rec->fingerprint,
	    rec->status, rec->response, rec->response_len, 0,
	    rec->expires_at);
	if (c->rc != REG_OK)
		return 1;
	c->copied++;
	return 0;
}

/* Inside to's write transaction: MIGRATE_OK when to is fresh. */
static enum migrate_err
target_fresh(struct registry *to, struct migrate_report *rep)
{
	struct idem_copy probe = { 0 };
	int64_t users = 0, revision = 0;
	enum reg_err rc;

	if ((rc = registry_count(to, &users)) != REG_OK)
		return side_failed(rep, MIGRATE_TARGET, to, "count", rc);
	if ((rc = registry_revision(to, &revision)) != REG_OK)
		return side_failed(rep, MIGRATE_TARGET, to, "revision", rc);
	rc = registry_idem_scan(to, idem_seen, &probe);
	if (rc != REG_OK && !probe.seen)
		return side_failed(rep, MIGRATE_TARGET, to, "idempotency "
		    "records", rc);
	if (users != 0 || revision != 0 || probe.seen)
		return failed(rep, MIGRATE_NOT_EMPTY, REG_OK, "the target holds "
		    "%lld users at revision %lld%s; migrate only into a new "
		    "registry", (long long)users, (long long)revision,
		    probe.seen ? " and idempotency records" : "");
	return MIGRATE_OK;
}

/* Copies the users page by page; the highest version in *top. */
static enum migrate_err
copy_users(struct registry *from, struct registry *to,
    struct migrate_report *rep, int64_t *top)
{
	char after[USER_NAME_MAX + 1] = "";
	struct user *page;
	enum migrate_err merr = MIGRATE_OK;
	enum reg_err rc;
	size_t i, n;
	int more;

	if ((page = calloc(REG_LIST_MAX, sizeof(*page))) == NULL)
		return failed(rep, MIGRATE_TARGET, REG_ERROR, "out of memory");
	do {
		if ((rc = registry_list(from, after, NULL, REG_LIST_MAX, page,
		    &n, &more)) != REG_OK) {
			merr = side_failed(rep, MIGRATE_SOURCE, from, "list",
			    rc);
			goto out;
		}
		for (i = 0; i < n; i++) {
			if ((rc = registry_load(to, &page[i])) != REG_OK) {
				merr = side_failed(rep, MIGRATE_TARGET, to,
				    page[i].username, rc);
				goto out;
			}
			if (page[i].version > *top)
				*top = page[i].version;
			rep->users++;
		}
		if (n > 0)
			user_canonical(page[n - 1].username, after);
	} while (more && n > 0);
out:
	free(page);
	return merr;
}

/* Both transactions open: the copy itself, checked. */
static enum migrate_err
copy_all(struct registry *from, struct registry *to, int64_t now,
    struct migrate_report *rep)
{
	struct idem_copy c = { 0 };
	int64_t top = 0, revision = 0, src_users = 0, dst_users = 0;
	enum migrate_err merr;
	enum reg_err rc;

	if ((merr = target_fresh(to, rep)) != MIGRATE_OK ||
	    (merr = copy_users(from, to, rep, &top)) != MIGRATE_OK)
		return merr;
	c.to = to;
	c.now = now;
	c.rc = REG_OK;
	if ((rc = registry_idem_scan(from, idem_copy_one, &c)) != REG_OK)
		return c.rc != REG_OK ?
		    side_failed(rep, MIGRATE_TARGET, to, "idempotency record",
		    c.rc) : side_failed(rep, MIGRATE_SOURCE, from,
		    "idempotency records", rc);
	rep->records = c.copied;
	if ((rc = registry_revision(from, &revision)) != REG_OK)
		return side_failed(rep, MIGRATE_SOURCE, from, "revision", rc);
	/* A sound source has no version above its revision; never trust. */
	if (top > revision)
		revision = top;
	if ((rc = registry_raise_revision(to, revision)) != REG_OK)
		return side_failed(rep, MIGRATE_TARGET, to, "revision", rc);
	rep->revision = revision;
	if ((rc = registry_count(from, &src_users)) != REG_OK)
		return side_failed(rep, MIGRATE_SOURCE, from, "count", rc);
	if ((rc = registry_count(to, &dst_users)) != REG_OK)
		return side_failed(rep, MIGRATE_TARGET, to, "count", rc);
	if (src_users != rep->users || dst_users != rep->users)
		return failed(rep, MIGRATE_MISMATCH, REG_OK, "the source counts "
		    "%lld users, %lld were listed and the target holds %lld",
		    (long long)src_users, (long long)rep->users,
		    (long long)dst_users);
	return MIGRATE_OK;
}

enum migrate_err
migrate_registry(struct registry *from, struct registry *to, int64_t now,
    struct migrate_report *rep)
{
	enum migrate_err merr;
	enum reg_err rc;

	memset(rep, 0, sizeof(*rep));
	if (from == to)
		return failed(rep, MIGRATE_SAME, REG_OK, "the source and the "
		    "target are one registry handle");
	if (registry_in_transaction(from) || registry_in_transaction(to))
		return failed(rep, MIGRATE_SOURCE, REG_ERROR, "a transaction "
		    "is already open");
	if ((rc = registry_begin_read(from)) != REG_OK)
		return side_failed(rep, MIGRATE_SOURCE, from, "begin", rc);
	if ((rc = registry_begin(to)) != REG_OK) {
		registry_rollback(from);
		return side_failed(rep, MIGRATE_TARGET, to, "begin", rc);
	}
	if ((merr = copy_all(from, to, now, rep)) == MIGRATE_OK &&
	    (rc = registry_commit(to)) != REG_OK)
		merr = side_failed(rep, MIGRATE_TARGET, to, "commit", rc);
	if (merr != MIGRATE_OK) {
		registry_rollback(to);
		rep->users = rep->records = rep->revision = 0;
	}
	registry_rollback(from);
	return merr;
}
