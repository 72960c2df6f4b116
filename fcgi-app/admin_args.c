/* admin_args.c: the admin tool's command line: commands, options, help. */
#include "admin_args.h"

#include <stdarg.h>
#include <string.h>

#include "user.h"

/* Every option, as a bit of the masks below. */
enum opt {
	OPT_CONFIG = 1 << 0,
	OPT_REGISTRY = 1 << 1,
	OPT_HELP = 1 << 2,
	OPT_VERSION = 1 << 3,
	OPT_EMAIL = 1 << 4,
	OPT_DISPLAY_NAME = 1 << 5,
	OPT_ROLE = 1 << 6,
	OPT_NO_EMAIL = 1 << 7,
	OPT_NO_DISPLAY_NAME = 1 << 8,
	OPT_ROLES = 1 << 9,
	OPT_IF_VERSION = 1 << 10,
	OPT_PREFIX = 1 << 11
};

#define OPT_GLOBAL (OPT_CONFIG | OPT_REGISTRY | OPT_HELP)

struct opt_def {
	const char *name;	/* long name, without "--" */
	char shortname;		/* 0 for none */
	int value;		/* takes a value */
	enum opt bit;
};

static const struct opt_def opts[] = {
	{ "config", 'c', 1, OPT_CONFIG },
	{ "registry", 'r', 1, OPT_REGISTRY },
	{ "help", 'h', 0, OPT_HELP },
	{ "version", 0, 0, OPT_VERSION },
	{ "email", 0, 1, OPT_EMAIL },
	{ "display-name", 0, 1, OPT_DISPLAY_NAME },
	{ "role", 0, 1, OPT_ROLE },
	{ "no-email", 0, 0, OPT_NO_EMAIL },
	{ "no-display-name", 0, 0, OPT_NO_DISPLAY_NAME },
	{ "roles", 0, 1, OPT_ROLES },
	{ "if-version", 0, 1, OPT_IF_VERSION },
	{ "prefix", 0, 1, OPT_PREFIX },
};

#define NOPTS (sizeof(opts) / sizeof(opts[0]))

/* One command: its arguments, options and help. */
struct cmd_def {
	const char *name;
	size_t min_pos, max_pos;
	unsigned names;		/* bit i: argument i is a username */
	unsigned options;	/* beyond OPT_GLOBAL */
	const char *synopsis;
	const char *help;
};

static const struct cmd_def cmds[ADMIN_CMD__MAX] = {
	[ADMIN_CMD_INIT] = { "init", 0, 0, 0, 0,
	    "init",
	    "Creates the registry (file and schema) if it does not exist yet.\n"
	    "It is the only command that creates one: every other command\n"
	    "fails on a missing registry.\n" },
	[ADMIN_CMD_ADD] = { "add", 1, 1, 1,
	    OPT_EMAIL | OPT_DISPLAY_NAME | OPT_ROLE,
	    "add NAME [--email E] [--display-name D] [--role R]...",
	    "Creates the user NAME as POST /users would, with the same checks,\n"
	    "and prints its representation.\n"
	    "  --email E          the user's email address\n"
	    "  --display-name D   the user's display name\n"
	    "  --role R           a role to hold; repeat for more\n" },
	[ADMIN_CMD_SHOW] = { "show", 1, 1, 1, 0,
	    "show NAME",
	    "Prints the representation of the user NAME (any case).\n" },
	[ADMIN_CMD_LIST] = { "list", 0, 1, 0, OPT_PREFIX,
	    "list [--prefix P]",
	    "Prints every user, one representation a line, in canonical\n"
	    "order, all from one read snapshot of the registry.\n"
	    "  --prefix P         only users whose name starts with P (any\n"
	    "                     case); a bare P is taken the same way\n" },
	[ADMIN_CMD_SET] = { "set", 1, 1, 1,
	    OPT_EMAIL | OPT_NO_EMAIL | OPT_DISPLAY_NAME |
	    OPT_NO_DISPLAY_NAME | OPT_ROLES | OPT_IF_VERSION,
	    "set NAME [--email E | --no-email]\n"
	    "      [--display-name D | --no-display-name] [--roles R,R...]\n"
	    "      [--if-version V]",
	    "Changes members of the user NAME as PATCH /users/NAME would and\n"
	    "prints the result. Without --if-version it reads the user's\n"
	    "version and tries again (a few times) when another write wins.\n"
	    "  --email E, --no-email             set or remove the email\n"
	    "  --display-name D, --no-display-name\n"
	    "                                    set or remove the display name\n"
	    "  --roles R,R...     the roles to hold from now on (\"\" for none)\n"
	    "  --if-version V     only if the user's version is still V\n" },
	[ADMIN_CMD_DELETE] = { "delete", 1, 1, 1, OPT_IF_VERSION,
	    "delete NAME [--if-version V]",
	    "Deletes the user NAME as DELETE /users/NAME would (never the last\n"
	    "admin).\n"
	    "  --if-version V     only if the user's version is still V\n" },
	[ADMIN_CMD_GRANT] = { "grant", 2, 2, 1, OPT_IF_VERSION,
	    "grant NAME ROLE [--if-version V]",
	    "Adds ROLE to the roles of the user NAME (a PATCH of its roles)\n"
	    "and prints the result; holding it already changes nothing.\n"
	    "  --if-version V     only if the user's version is still V\n" },
	[ADMIN_CMD_REVOKE] = { "revoke", 2, 2, 1, OPT_IF_VERSION,
	    "revoke NAME ROLE [--if-version V]",
	    "Removes ROLE from the roles of the user NAME and prints the\n"
	    "result; never from the last admin.\n"
	    "  --if-version V     only if the user's version is still V\n" },
	[ADMIN_CMD_EXPORT] = { "export", 0, 1, 0, 0,
	    "export [FILE]",
	    "Writes the registry as JSON lines: first\n"
	    "{\"userreg_export\":1,\"revision\":N}, then one representation\n"
	    "a line, as the API gives it, all from one read snapshot. To\n"
	    "standard output without FILE (or with -); FILE is replaced only\n"
	    "once the export is complete.\n" },
	[ADMIN_CMD_IMPORT] = { "import", 1, 1, 0, 0,
	    "import FILE",
	    "Loads the users of FILE (an export, or representations one a\n"
	    "line; - for standard input) with their versions and timestamps,\n"
	    "all or nothing: any invalid line, or a name or email taken twice\n"
	    "in the file or already in the registry, refuses the whole file,\n"
	    "reporting every bad line as FILE:LINE: why. The revision counter\n"
	    "is raised to the export's revision (or the highest version), so\n"
	    "no version is ever issued twice.\n" },
	[ADMIN_CMD_CHECK] = { "check", 0, 0, 0, 0,
	    "check",
	    "Checks the registry: the backend's integrity check, unique\n"
	    "names and emails, valid users, no version above the revision\n"
	    "counter, the users count, well-formed idempotency records.\n"
	    "Reports every fault and exits 1 if there is one.\n" },
	[ADMIN_CMD_BACKUP] = { "backup", 1, 1, 0, 0,
	    "backup FILE",
	    "Writes a consistent copy of the registry to the new SQLite file\n"
	    "FILE while workers go on writing.\n" },
	[ADMIN_CMD_MIGRATE] = { "migrate", 2, 2, 0, 0,
	    "migrate FROM TO",
	    "Copies the registry at FROM into the empty registry at TO, each\n"
	    "a SQLite path or a postgresql:// URI (make TO with\n"
	    "'userreg -r TO init'): every user with its version and\n"
	    "timestamps, the idempotency records not expired, the revision\n"
	    "counter. All or nothing; a TO that is not empty is refused.\n" },
};

static const char global_help[] =
    "Global options (anywhere on the line):\n"
    "  -c FILE, --config FILE      the config file (else USERREG_CONF)\n"
    "  -r LOCATION, --registry LOCATION\n"
    "                              this registry instead of the config's\n"
    "  -h, --help                  help of the command, or this text\n"
    "  --version                   the version\n";

const char *
admin_cmd_name(enum admin_cmd cmd)
{
	return cmd > ADMIN_CMD_NONE && cmd < ADMIN_CMD__MAX ?
	    cmds[cmd].name : "";
}

static int
say(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
say(char *err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, ADMIN_ARGS_ERROR_SIZE, fmt, ap);
	va_end(ap);
	return -1;
}

static enum admin_cmd
cmd_of(const char *name)
{
	int i;

	for (i = ADMIN_CMD_NONE + 1; i < ADMIN_CMD__MAX; i++)
		if (strcmp(cmds[i].name, name) == 0)
			return (enum admin_cmd)i;
	return ADMIN_CMD_NONE;
}

/* Stores the value of option d (text from the command line) into a. */
static int
store(struct admin_args *a, const struct opt_def *d, const char *value,
    unsigned *seen, char *err)
{
	if ((*seen & d->bit) && d->bit != OPT_ROLE)
		return say(err, "--%s given twice", d->name);
	*seen |= d->bit;
	switch (d->bit) {
	case OPT_CONFIG: a->conf = value; break;
	case OPT_REGISTRY: a->registry = value; break;
	case OPT_HELP: a->help = 1; break;
	case OPT_VERSION: a->version = 1; break;
	case OPT_EMAIL: a->email = value; break;
	case OPT_DISPLAY_NAME: a->display_name = value; break;
	case OPT_NO_EMAIL: a->no_email = 1; break;
	case OPT_NO_DISPLAY_NAME: a->no_display_name = 1; break;
	case OPT_ROLES: a->roles = value; break;
	case OPT_PREFIX: a->prefix = value; break;
	case OPT_ROLE:
		if (a->nrole >= ADMIN_ARGS_ROLES_MAX)
			return say(err, "more than %d --role options",
			    ADMIN_ARGS_ROLES_MAX);
		a->role[a->nrole++] = value;
		break;
	case OPT_IF_VERSION:
		if (user_parse_version(value, strlen(value),
		    &a->if_version) != 0)
			return say(err, "--if-version '%.64s' is not a "
			    "version (a positive decimal number)", value);
		break;
	}
	return 0;
}

/*
 * Reads the option at argv[*i] (a long "--name[=value]" or a short
 * "-x[value]"), taking its value from the next argument when needed.
 */
static int
option(int argc, char **argv, int *i, struct admin_args *a, unsigned *seen,
    char *err)
{
	const char *arg = argv[*i], *value = NULL, *eq;
	const struct opt_def *d = NULL;
	size_t k, len;

	if (arg[1] == '-') {
		eq = strchr(arg + 2, '=');
		len = eq != NULL ? (size_t)(eq - arg - 2) : strlen(arg + 2);
		for (k = 0; k < NOPTS && d == NULL; k++)
			if (strlen(opts[k].name) == len &&
			    strncmp(opts[k].name, arg + 2, len) == 0)
				d = &opts[k];
		if (d == NULL)
			return say(err, "unknown option '%.64s'", arg);
		if (eq != NULL && !d->value)
			return say(err, "--%s takes no value", d->name);
		if (eq != NULL)
			value = eq + 1;
	} else {
		for (k = 0; k < NOPTS && d == NULL; k++)
			if (opts[k].shortname == arg[1])
				d = &opts[k];
		if (d == NULL)
			return say(err, "unknown option '%.64s'", arg);
		if (arg[2] != '\0' && !d->value)
			return say(err, "unknown option '%.64s'", arg);
		if (arg[2] != '\0')
			value = arg + 2;
	}
	if (d->value && value == NULL) {
		if (*i + 1 >= argc)
			return say(err, "%s needs a value", arg);
		value = argv[++*i];
	}
	return store(a, d, value, seen, err);
}

/* What only the command can tell: its options, arguments and names. */
static int
check_command(struct admin_args *a, unsigned seen, char *err)
{
	const struct cmd_def *c = &cmds[a->cmd];
	size_t k;

	for (k = 0; k < NOPTS; k++)
		if ((seen & opts[k].bit) &&
		    !(opts[k].bit & (OPT_GLOBAL | c->options)))
			return say(err, "%s takes no --%s", c->name,
			    opts[k].name);
	if (a->npos < c->min_pos || a->npos > c->max_pos)
		return say(err, "%s: %s arguments; usage: userreg %s",
		    c->name, a->npos < c->min_pos ? "missing" : "too many",
		    c->synopsis);
	for (k = 0; k < a->npos; k++)
		if ((c->names & (1u << k)) &&
		    user_check_name(a->pos[k], strlen(a->pos[k])) != USER_OK)
			return say(err, "'%.64s' is not a valid username "
			    "(1-64 of A-Z a-z 0-9 . _ -, starting with a "
			    "letter or digit)", a->pos[k]);
	if (a->email != NULL && a->no_email)
		return say(err, "--email and --no-email exclude each other");
	if (a->display_name != NULL && a->no_display_name)
		return say(err, "--display-name and --no-display-name "
		    "exclude each other");
	if (a->cmd == ADMIN_CMD_SET && a->email == NULL && !a->no_email &&
	    a->display_name == NULL && !a->no_display_name && a->roles == NULL)
		return say(err, "set needs --email, --no-email, "
		    "--display-name, --no-display-name or --roles");
	if (a->cmd == ADMIN_CMD_LIST && a->npos == 1) {
		if (a->prefix != NULL)
			return say(err, "list takes --prefix or a bare "
			    "prefix, not both");
		a->prefix = a->pos[0];
		a->npos = 0;
	}
	if (a->prefix != NULL && strlen(a->prefix) > USER_NAME_MAX)
		return say(err, "--prefix is longer than %d characters",
		    USER_NAME_MAX);
	return 0;
}

int
admin_args_parse(int argc, char **argv, struct admin_args *a,
    char err[ADMIN_ARGS_ERROR_SIZE])
{
	char scratch[ADMIN_ARGS_ERROR_SIZE];
	const char *badcmd = NULL;
	unsigned seen = 0;
	int i, options = 1, rc = 0;

	memset(a, 0, sizeof(*a));
	err[0] = '\0';
	for (i = 1; i < argc; i++) {
		const char *arg = argv[i];

		if (options && strcmp(arg, "--") == 0) {
			options = 0;
		} else if (options && arg[0] == '-' && arg[1] != '\0') {
			/* The first fault is the one reported. */
			if (option(argc, argv, &i, a, &seen,
			    rc == 0 ? err : scratch) != 0)
				rc = -1;
		} else if (a->cmd == ADMIN_CMD_NONE && badcmd == NULL) {
			if ((a->cmd = cmd_of(arg)) == ADMIN_CMD_NONE)
				badcmd = arg;
		} else if (a->npos < sizeof(a->pos) / sizeof(a->pos[0])) {
			a->pos[a->npos++] = arg;
		} else {
			a->npos++;	/* counted: "too many arguments" */
		}
	}
	if (a->help)
		return 0;
	if (rc != 0)
		return rc;
	if (badcmd != NULL)
		return say(err, "unknown command '%.64s'", badcmd);
	if (a->cmd == ADMIN_CMD_NONE) {
		if (a->version && !(seen & ~(unsigned)(OPT_VERSION |
		    OPT_CONFIG | OPT_REGISTRY)))
			return 0;
		return say(err, "no command given");
	}
	if (a->version)
		return say(err, "--version takes no command");
	return check_command(a, seen, err);
}

void
admin_usage(FILE *f)
{
	int i;

	fputs("usage: userreg [-c FILE] [-r LOCATION] COMMAND [ARGS]\n\n"
	    "Commands:\n", f);
	for (i = ADMIN_CMD_NONE + 1; i < ADMIN_CMD__MAX; i++)
		fprintf(f, "  %s\n", cmds[i].synopsis);
	fputs("\n", f);
	fputs(global_help, f);
	fputs("\nExit status: 0 done; 1 failure (registry unavailable, "
	    "check found faults);\n"
	    "2 usage or invalid values; 3 conflict (409); 4 stale "
	    "--if-version (412);\n"
	    "5 no such user (404). 'userreg COMMAND --help' tells more; "
	    "see userreg(1).\n", f);
}

void
admin_help(FILE *f, enum admin_cmd cmd)
{
	if (cmd <= ADMIN_CMD_NONE || cmd >= ADMIN_CMD__MAX) {
		admin_usage(f);
		return;
	}
	fprintf(f, "usage: userreg %s\n\n%s\n%s", cmds[cmd].synopsis,
	    cmds[cmd].help, global_help);
}
