/* admin_copy.c: backup and migrate, whole copies of a registry. */
#include "admin_copy.h"

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
admin_migrate(struct admin_env *env, const struct admin_args *a)
{
	(void)a;
	/* The copy between backends (migrate.h) is not in this build yet. */
	return admin_say(env, ADMIN_EXIT_FAILURE, "migrate: not available "
	    "in this build");
}
