/* admin_args.h: the admin tool's command line: commands, options, help. */
#ifndef USERREG_ADMIN_ARGS_H
#define USERREG_ADMIN_ARGS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/*
 * userreg [GLOBAL OPTIONS] COMMAND [ARGS] [OPTIONS]: options may stand
 * anywhere, before or after the command and between its arguments
 * ("userreg list -c FILE" is "userreg -c FILE list"); "--" ends them.
 * Long options take their value as "--opt VALUE" or "--opt=VALUE", the
 * short ones (-c, -r) as "-c VALUE" or "-cVALUE".
 */

/* Most --role options one add takes (the API then allows 16). */
#define ADMIN_ARGS_ROLES_MAX 32
/* Room for a usage error message. */
#define ADMIN_ARGS_ERROR_SIZE 256

enum admin_cmd {
	ADMIN_CMD_NONE = 0,	/* no command: only --help or --version */
	ADMIN_CMD_INIT,
	ADMIN_CMD_ADD,
	ADMIN_CMD_SHOW,
	ADMIN_CMD_LIST,
	ADMIN_CMD_SET,
	ADMIN_CMD_DELETE,
	ADMIN_CMD_GRANT,
	ADMIN_CMD_REVOKE,
	ADMIN_CMD_EXPORT,
	ADMIN_CMD_IMPORT,
	ADMIN_CMD_CHECK,
	ADMIN_CMD_BACKUP,
	ADMIN_CMD_MIGRATE,
	ADMIN_CMD__MAX
};

/*
 * What a command line asks for. Strings are borrowed from argv. An
 * option not given is NULL (or 0).
 */
struct admin_args {
	enum admin_cmd cmd;
	int help;			/* --help, -h */
	int version;			/* --version */
	const char *conf;		/* -c, --config */
	const char *registry;		/* -r, --registry: overrides the file's */
	const char *pos[2];		/* the command's arguments */
	size_t npos;
	const char *email;		/* --email */
	const char *display_name;	/* --display-name */
	int no_email;			/* --no-email */
	int no_display_name;		/* --no-display-name */
	const char *roles;		/* --roles R,R... ("" for none) */
	const char *role[ADMIN_ARGS_ROLES_MAX];	/* --role, in order */
	size_t nrole;
	int64_t if_version;		/* --if-version; 0 when not given */
	const char *prefix;		/* --prefix, or list's bare PREFIX */
};

/* Returns the name of cmd ("add"), or "" for ADMIN_CMD_NONE. */
const char *admin_cmd_name(enum admin_cmd cmd);

/*
 * Parses argv[1..argc-1] into a (zeroed first). With --help anywhere it
 * returns 0 with a->help set and a->cmd the command named, if any, and
 * checks nothing else. Otherwise it checks everything that can be
 * checked without the registry: a known command, options it accepts
 * (each given once, --role excepted; --email with --no-email and the
 * like refused), the number of arguments, usernames against the
 * username pattern, --if-version as a positive decimal number, and set
 * naming at least one change. Returns 0, or -1 with a one-line reason
 * in err (ADMIN_ARGS_ERROR_SIZE bytes), a->cmd being the command when it
 * was recognized.
 */
int admin_args_parse(int argc, char **argv, struct admin_args *a,
    char err[ADMIN_ARGS_ERROR_SIZE]);

/* Writes the tool's usage: commands, global options, exit statuses. */
void admin_usage(FILE *f);

/*
 * Writes the help of cmd (synopsis, what it does, its options); for
 * ADMIN_CMD_NONE the usage.
 */
void admin_help(FILE *f, enum admin_cmd cmd);

#endif
