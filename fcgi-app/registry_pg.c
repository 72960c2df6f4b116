/* registry_pg.c: the registry in PostgreSQL, for several web hosts. */
#include "registry_impl.h"

#include <stdio.h>

struct registry *
registry_pg_open(const char *uri, int busy_timeout_ms, unsigned flags,
    enum reg_err *err, char *errmsg)
{
	(void)uri;
	(void)busy_timeout_ms;
	(void)flags;
	if (errmsg != NULL)
		snprintf(errmsg, REG_ERRMSG_SIZE, "this build has no "
		    "PostgreSQL backend");
	*err = REG_ERROR;
	return NULL;
}
