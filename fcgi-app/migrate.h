/* migrate.h: copying a whole registry from one backend to another. */
#ifndef USERREG_MIGRATE_H
#define USERREG_MIGRATE_H

#include <stdint.h>

#include "registry.h"

/*
 * `userreg migrate FROM TO` moves a registry between backends (SQLite to
 * PostgreSQL when a deployment grows to several hosts, and back) through
 * the registry interface alone, so any pair of backends works.
 */

/* Outcome of migrate_registry(); zero is success. */
enum migrate_err {
	MIGRATE_OK = 0,
	MIGRATE_SAME,		/* from and to are one handle */
	MIGRATE_NOT_EMPTY,	/* the target is not a fresh registry */
	MIGRATE_SOURCE,		/* reading the source failed */
	MIGRATE_TARGET,		/* writing the target failed */
	MIGRATE_MISMATCH,	/* the copy does not hold what the source did */
	MIGRATE_ERR__MAX
};

/* What a migration did, or why it did nothing. */
struct migrate_report {
	int64_t users;			/* users copied */
	int64_t records;		/* idempotency records copied */
	int64_t revision;		/* the target's revision at the end */
	enum reg_err reg;		/* the registry error behind a failure */
	char why[REG_ERRMSG_SIZE];	/* the failure in words, for the admin */
};

/* Returns a short lowercase phrase for err, for messages. */
const char *migrate_err_str(enum migrate_err err);

/*
 * Copies the registry from into the registry to: every user exactly as
 * stored (versions and timestamps kept), every idempotency record that
 * has not expired at now (unix seconds; expiry kept), and the revision
 * counter, raised to the source's so no version is ever handed out twice.
 * from is read in one read transaction (one committed state; its writers
 * carry on), to is written in one write transaction: all or nothing.
 *
 * to must be fresh: no user, no idempotency record, revision 0
 * (MIGRATE_NOT_EMPTY otherwise, nothing written). Neither handle may be
 * inside a transaction. Returns MIGRATE_OK with rep filled, or the
 * failure with rep->reg and rep->why saying what the registry answered;
 * on any failure to is left as it was.
 */
enum migrate_err migrate_registry(struct registry *from, struct registry *to,
    int64_t now, struct migrate_report *rep);

#endif
