/* admin_copy.h: backup and migrate, whole copies of a registry. */
#ifndef USERREG_ADMIN_COPY_H
#define USERREG_ADMIN_COPY_H

#include "admin_args.h"
#include "admin_env.h"

/*
 * `userreg backup FILE`: registry_backup() of env->reg into the new
 * SQLite file FILE (refused when it exists): one consistent snapshot
 * taken while the pool goes on writing, itself a registry any command
 * can open. Returns the exit status.
 */
int admin_backup(struct admin_env *env, const struct admin_args *a);

/*
 * `userreg migrate FROM TO`: copies the registry at FROM into the empty
 * registry at TO, versions kept. Returns the exit status.
 */
int admin_migrate(struct admin_env *env, const struct admin_args *a);

#endif
