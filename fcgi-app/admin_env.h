/* admin_env.h: what every command of the userreg admin tool runs with. */
#ifndef USERREG_ADMIN_ENV_H
#define USERREG_ADMIN_ENV_H

#include <stdio.h>

#include "config.h"
#include "registry.h"

/*
 * The tool's exit statuses (docs/man/userreg.1, "EXIT STATUS"). They
 * follow the answer the API would give to the same request, so a script
 * can tell a conflict from a stale version from a missing user.
 */
enum admin_exit {
	ADMIN_EXIT_OK = 0,
	ADMIN_EXIT_FAILURE = 1,		/* registry unavailable, I/O, check */
	ADMIN_EXIT_USAGE = 2,		/* bad command line or values (400, 422) */
	ADMIN_EXIT_CONFLICT = 3,	/* 409: exists, email, stale, last admin */
	ADMIN_EXIT_STALE = 4,		/* 412: --if-version is not current */
	ADMIN_EXIT_NOT_FOUND = 5	/* 404: no such user */
};

/*
 * One run of the tool: the configuration (access treated as open: whoever
 * runs the tool holds the registry file itself), the open registry, and
 * the streams results and reports go to. Commands borrow it.
 */
struct admin_env {
	struct config cfg;
	struct registry *reg;
	FILE *out;		/* results: representations, exports */
	FILE *err;		/* reports: problems, bad lines, failures */
};

/*
 * Reports the registry failure rc of what ("list", "commit") on env->err
 * as "userreg: WHAT: PHRASE (BACKEND REASON)" and returns
 * ADMIN_EXIT_FAILURE.
 */
int admin_registry_failed(struct admin_env *env, const char *what,
    enum reg_err rc);

/*
 * Writes the representation of u (the bytes the API sends) and a newline
 * to f. Returns 0, or -1 when out of memory or the write failed.
 */
int admin_print_user(FILE *f, const struct user *u);

/*
 * Writes "userreg: " and the formatted message and a newline to env->err.
 * Returns status, so a command can end with return admin_say(...).
 */
int admin_say(struct admin_env *env, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
