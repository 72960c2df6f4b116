/* admin_copy.h: backup and migrate, whole copies of a registry. */
#ifndef USERREG_ADMIN_COPY_H
#define USERREG_ADMIN_COPY_H

#include "admin_args.h"
#include "admin_env.h"
#include "migrate.h"

/*
 * `userreg backup FILE`: registry_backup() of env->reg into the new
 * SQLite file FILE (refused when it exists): one consistent snapshot
 * taken while the pool goes on writing, itself a registry any command
 * can open. Returns the exit status.
 */
int admin_backup(struct admin_env *env, const struct admin_args *a);

/*
 * Returns the exit status for the outcome err of migrate_registry():
 * ADMIN_EXIT_OK, ADMIN_EXIT_CONFLICT for a target that is not empty,
 * ADMIN_EXIT_USAGE for one registry named twice, ADMIN_EXIT_FAILURE
 * otherwise.
 */
int admin_migrate_exit(enum migrate_err err);

/*
 * `userreg migrate FROM TO`: opens the registries at FROM and TO (each a
 * SQLite path or a postgresql:// URI; neither is created: TO is made
 * with `userreg -r TO init`) and copies FROM into TO with
 * migrate_registry(): users as stored, unexpired idempotency records, the
 * revision counter; all or nothing, and only into an empty TO. env->reg
 * is not used. Prints what was copied on env->out. Returns the exit
 * status.
 */
int admin_migrate(struct admin_env *env, const struct admin_args *a);

#endif
