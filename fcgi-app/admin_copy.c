/* admin_copy.c: backup and migrate, whole copies of a registry. */
#include "admin_copy.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "registry.h"

int
admin_backup(struct admin_env *env, const struct admin_args *a)
{
	enum reg_err rc;

	if ((rc = registry_backup(env->reg, a->pos[0])) != REG_OK)
		return admin_registry_failed(env, "backup", rc);
	return ADMIN_EXIT_OK;
}

int
admin_migrate_exit(enum migrate_err err)
{
	switch (err) {
	case MIGRATE_OK:
		return ADMIN_EXIT_OK;
	case MIGRATE_NOT_EMPTY:
		return ADMIN_EXIT_CONFLICT;
	case MIGRATE_SAME:
		return ADMIN_EXIT_USAGE;
	default:
		return ADMIN_EXIT_FAILURE;
	}
}

/* Do two locations name one SQLite file (by its resolved path)? */
static int
same_file(const char *a, const char *b)
{
	char ra[PATH_MAX], rb[PATH_MAX];

	if (strcmp(a, b) == 0)
		return 1;
	return realpath(a, ra) != NULL && realpath(b, rb) != NULL &&
	    strcmp(ra, rb) == 0;
}

static struct registry *
open_side(struct admin_env *env, const char *location, const char *side)
{
	char why[REG_ERRMSG_SIZE] = "";
	struct registry *reg;
	enum reg_err rc;

	reg = registry_open(location, env->cfg.busy_timeout_ms, 0, &rc, why);
	if (reg == NULL)
		admin_say(env, ADMIN_EXIT_FAILURE, "migrate: cannot open the %s "
		    "registry: %s%s", side, why[0] != '\0' ? why :
		    registry_err_str(rc), strcmp(side, "target") == 0 ?
		    " (userreg -r TO init creates one)" : "");
	return reg;
}

int
admin_migrate(struct admin_env *env, const struct admin_args *a)
{
	struct registry *from = NULL, *to = NULL;
	struct migrate_report rep;
	enum migrate_err err;
	int status = ADMIN_EXIT_FAILURE;

	if (same_file(a->pos[0], a->pos[1]))
		return admin_say(env, ADMIN_EXIT_USAGE, "migrate: FROM and TO "
		    "name the same registry");
	if ((from = open_side(env, a->pos[0], "source")) == NULL ||
	    (to = open_side(env, a->pos[1], "target")) == NULL)
		goto out;
	memset(&rep, 0, sizeof(rep));
	err = migrate_registry(from, to, (int64_t)time(NULL), &rep);
	status = admin_migrate_exit(err);
	if (err != MIGRATE_OK) {
		admin_say(env, status, "migrate: %s%s%s", migrate_err_str(err),
		    rep.why[0] != '\0' ? ": " : "", rep.why);
		goto out;
	}
	fprintf(env->out, "migrated %lld user%s and %lld idempotency "
	    "record%s; revision %lld\n", (long long)rep.users,
	    rep.users == 1 ? "" : "s", (long long)rep.records,
	    rep.records == 1 ? "" : "s", (long long)rep.revision);
out:
	registry_close(from);
	registry_close(to);
	return status;
}
