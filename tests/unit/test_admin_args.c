/* test_admin_args.c: the admin tool's command line, help and usage. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <criterion/parameterized.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_args.h"

/*
 * Parameters hold arrays, not pointers: Criterion runs each test in a
 * fresh process, where the parent's pointers need not be valid.
 */

#define ARGS_MAX 10
#define ARG_SIZE 80

/* A command line: words after argv[0], "" ending it; E is an empty word. */
struct line {
	char w[ARGS_MAX][ARG_SIZE];
};

#define E "\x1f"

static char *argv_store[ARGS_MAX + 2];

/* Parses the words of l as userreg's arguments; argv lives on. */
static int
parse_line(const struct line *l, struct admin_args *a, char *err)
{
	int argc = 1, i;

	argv_store[0] = "userreg";
	for (i = 0; i < ARGS_MAX && l->w[i][0] != '\0'; i++)
		argv_store[argc++] = strcmp(l->w[i], E) == 0 ? "" :
		    (char *)l->w[i];
	argv_store[argc] = NULL;
	return admin_args_parse(argc, argv_store, a, err);
}

/* Parses the NULL-terminated words given (string literals). */
static int
parse_words(struct admin_args *a, char *err, ...)
{
	const char *w;
	va_list ap;
	int argc = 1;

	argv_store[0] = "userreg";
	va_start(ap, err);
	while ((w = va_arg(ap, const char *)) != NULL && argc <= ARGS_MAX)
		argv_store[argc++] = (char *)w;
	va_end(ap);
	argv_store[argc] = NULL;
	return admin_args_parse(argc, argv_store, a, err);
}

/* ---- refused command lines ----------------------------------------------- */

struct bad_case {
	struct line l;
	char why[64];		/* a part of the message */
};

ParameterizedTestParameters(admin_args, refuses)
{
	static struct bad_case cases[] = {
		{ { { "" } }, "no command given" },
		{ { { "bogus" } }, "unknown command 'bogus'" },
		{ { { "-c", "x.conf" } }, "no command given" },
		{ { { "-c" } }, "-c needs a value" },
		{ { { "list", "--config" } }, "--config needs a value" },
		{ { { "add" } }, "missing arguments" },
		{ { { "add", "a", "b" } }, "too many arguments" },
		{ { { "grant", "bob" } }, "missing arguments" },
		{ { { "revoke", "bob", "ops", "x" } }, "too many arguments" },
		{ { { "init", "x" } }, "too many arguments" },
		{ { { "check", "x" } }, "too many arguments" },
		{ { { "backup" } }, "missing arguments" },
		{ { { "migrate", "a" } }, "missing arguments" },
		{ { { "import" } }, "missing arguments" },
		{ { { "export", "a", "b" } }, "too many arguments" },
		{ { { "show", "bad name" } }, "not a valid username" },
		{ { { "show", "-" } }, "not a valid username" },
		{ { { "add", ".dot" } }, "not a valid username" },
		{ { { "delete", E } }, "not a valid username" },
		{ { { "grant", "a/b", "ops" } }, "not a valid username" },
		{ { { "show", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		    "aaaaaaaa" } }, "not a valid username" },
		{ { { "list", "--email", "x" } }, "list takes no --email" },
		{ { { "show", "bob", "--if-version", "3" } },
		    "show takes no --if-version" },
		{ { { "add", "bob", "--roles", "a" } }, "add takes no --roles" },
		{ { { "set", "bob", "--role", "a" } }, "set takes no --role" },
		{ { { "add", "bob", "--no-email" } }, "add takes no --no-email" },
		{ { { "set", "bob" } }, "set needs --email" },
		{ { { "set", "bob", "--if-version", "3" } }, "set needs --email" },
		{ { { "set", "bob", "--email", "x", "--no-email" } },
		    "exclude each other" },
		{ { { "set", "bob", "--no-display-name", "--display-name=x" } },
		    "exclude each other" },
		{ { { "set", "bob", "--no-email=x" } }, "takes no value" },
		{ { { "delete", "bob", "--if-version", "0" } }, "not a version" },
		{ { { "delete", "bob", "--if-version", "01" } }, "not a version" },
		{ { { "delete", "bob", "--if-version", "-5" } }, "not a version" },
		{ { { "delete", "bob", "--if-version", E } }, "not a version" },
		{ { { "delete", "bob", "--if-version", "\"5\"" } },
		    "not a version" },
		{ { { "delete", "bob", "--if-version", "9223372036854775808" } },
		    "not a version" },
		{ { { "delete", "bob", "--if-version=1e3" } }, "not a version" },
		{ { { "add", "bob", "--email" } }, "--email needs a value" },
		{ { { "add", "bob", "--email", "a", "--email", "b" } },
		    "--email given twice" },
		{ { { "-c", "a", "list", "-c", "b" } }, "--config given twice" },
		{ { { "show", "bob", "--frob" } }, "unknown option '--frob'" },
		{ { { "show", "bob", "--emails=x" } }, "unknown option" },
		{ { { "show", "bob", "-x" } }, "unknown option '-x'" },
		{ { { "show", "bob", "-hx" } }, "unknown option '-hx'" },
		{ { { "list", "a", "--prefix", "b" } }, "not both" },
		{ { { "list", "--prefix", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		    "aaaaaaaaaaaaaaaaaaaaaaaaaaa" } }, "longer than 64" },
		{ { { "--version", "list" } }, "--version takes no command" },
		{ { { "list", "--version" } }, "--version takes no command" },
		{ { { "--frob", "bogus" } }, "unknown option '--frob'" },
	};

	return cr_make_param_array(struct bad_case, cases,
	    sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct bad_case *c, admin_args, refuses)
{
	struct admin_args a;
	char err[ADMIN_ARGS_ERROR_SIZE];

	cr_assert(eq(int, parse_line(&c->l, &a, err), -1));
	cr_assert(not(eq(ptr, strstr(err, c->why), NULL)),
	    "message '%s' lacks '%s'", err, c->why);
	cr_assert(eq(int, a.help, 0));
}

/* ---- accepted command lines ---------------------------------------------- */

Test(admin_args, global_options_stand_anywhere)
{
	struct admin_args a;
	char err[ADMIN_ARGS_ERROR_SIZE];

	cr_assert(eq(int, parse_words(&a, err, "-c", "f.conf", "list", NULL),
	    0), "%s", err);
	cr_assert(eq(int, a.cmd, ADMIN_CMD_LIST));
	cr_assert(eq(str, (char *)a.conf, "f.conf"));
	cr_assert(eq(int, parse_words(&a, err, "list", "-c", "f.conf", NULL),
	    0), "%s", err);
	cr_assert(eq(str, (char *)a.conf, "f.conf"));
	cr_assert(eq(int, parse_words(&a, err, "list", "--config=g.conf",
	    NULL), 0), "%s", err);
	cr_assert(eq(str, (char *)a.conf, "g.conf"));
	cr_assert(eq(int, parse_words(&a, err, "-ch.conf", "list", "-r",
	    "x.db", NULL), 0), "%s", err);
	cr_assert(eq(str, (char *)a.conf, "h.conf"));
	cr_assert(eq(str, (char *)a.registry, "x.db"));
	cr_assert(eq(int, parse_words(&a, err, "grant", "-c", "f", "bob",
	    "--registry", "r.db", "ops", NULL), 0), "%s", err);
	cr_assert(eq(int, a.cmd, ADMIN_CMD_GRANT));
	cr_assert(eq(sz, a.npos, 2));
	cr_assert(eq(str, (char *)a.pos[0], "bob"));
	cr_assert(eq(str, (char *)a.pos[1], "ops"));
	cr_assert(eq(str, (char *)a.registry, "r.db"));
}

Test(admin_args, add_collects_every_option)
{
	struct admin_args a;
	char err[ADMIN_ARGS_ERROR_SIZE];

	cr_assert(eq(int, parse_words(&a, err, "--role", "ops", "add", "Bob",
	    "--email=b@example.org", "--role=dev", "--display-name", "Bob B",
	    NULL), 0), "%s", err);
	cr_assert(eq(int, a.cmd, ADMIN_CMD_ADD));
	cr_assert(eq(str, (char *)a.pos[0], "Bob"));
	cr_assert(eq(str, (char *)a.email, "b@example.org"));
	cr_assert(eq(str, (char *)a.display_name, "Bob B"));
	cr_assert(eq(sz, a.nrole, 2));
	cr_assert(eq(str, (char *)a.role[0], "ops"));
	cr_assert(eq(str, (char *)a.role[1], "dev"));
}

Test(admin_args, role_is_bounded)
{
	struct admin_args a;
	char err[ADMIN_ARGS_ERROR_SIZE];
	static char *argv[3 + 2 * ADMIN_ARGS_ROLES_MAX + 2];
	int argc = 0, i;

	argv[argc++] = "userreg";
	argv[argc++] = "add";
	argv[argc++] = "bob";
	for (i = 0; i < ADMIN_ARGS_ROLES_MAX; i++) {
		argv[argc++] = "--role";
		argv[argc++] = "r";
	}
	cr_assert(eq(int, admin_args_parse(argc, argv, &a, err), 0), "%s",
	    err);
	cr_assert(eq(sz, a.nrole, ADMIN_ARGS_ROLES_MAX));
	argv[argc++] = "--role=r";
	cr_assert(eq(int, admin_args_parse(argc, argv, &a, err), -1));
	cr_assert(not(eq(ptr, strstr(err, "--role"), NULL)), "%s", err);
}

Test(admin_args, set_takes_removals_and_versions)
{
	struct admin_args a;
	char err[ADMIN_ARGS_ERROR_SIZE];

	cr_assert(eq(int, parse_words(&a, err, "set", "bob", "--no-email",
	    "--no-display-name", "--roles", "", "--if-version", "42", NULL), 0),
	    "%s", err);
	cr_assert(eq(int, a.no_email, 1));
	cr_assert(eq(int, a.no_display_name, 1));
	cr_assert(eq(str, (char *)a.roles, ""));
	cr_assert(eq(i64, a.if_version, 42));
	cr_assert(eq(int, parse_words(&a, err, "delete", "bob",
	    "--if-version=9223372036854775807", NULL), 0), "%s", err);
	cr_assert(eq(i64, a.if_version, INT64_MAX));
}

Test(admin_args, double_dash_ends_options)
{
	struct admin_args a;
	char err[ADMIN_ARGS_ERROR_SIZE];

	cr_assert(eq(int, parse_words(&a, err, "import", "--", "--odd-name",
	    NULL), 0), "%s", err);
	cr_assert(eq(int, a.cmd, ADMIN_CMD_IMPORT));
	cr_assert(eq(str, (char *)a.pos[0], "--odd-name"));
	/* A lone "-" is an argument: standard input or output. */
	cr_assert(eq(int, parse_words(&a, err, "export", "-", NULL), 0), "%s",
	    err);
	cr_assert(eq(str, (char *)a.pos[0], "-"));
}

Test(admin_args, list_takes_a_bare_prefix)
{
	struct admin_args a;
	char err[ADMIN_ARGS_ERROR_SIZE];

	cr_assert(eq(int, parse_words(&a, err, "list", "Al", NULL), 0), "%s",
	    err);
	cr_assert(eq(str, (char *)a.prefix, "Al"));
	cr_assert(eq(sz, a.npos, 0));
	cr_assert(eq(int, parse_words(&a, err, "list", "--prefix", "b",
	    NULL), 0), "%s", err);
	cr_assert(eq(str, (char *)a.prefix, "b"));
}

Test(admin_args, help_wins_over_everything_else)
{
	struct admin_args a;
	char err[ADMIN_ARGS_ERROR_SIZE];

	cr_assert(eq(int, parse_words(&a, err, "add", "--help", NULL), 0));
	cr_assert(eq(int, a.help, 1));
	cr_assert(eq(int, a.cmd, ADMIN_CMD_ADD));
	cr_assert(eq(int, parse_words(&a, err, "-h", "set", "bob", "--frob",
	    NULL), 0));
	cr_assert(eq(int, a.help, 1));
	cr_assert(eq(int, a.cmd, ADMIN_CMD_SET));
	cr_assert(eq(int, parse_words(&a, err, "--help", NULL), 0));
	cr_assert(eq(int, a.cmd, ADMIN_CMD_NONE));
}

Test(admin_args, version_alone)
{
	struct admin_args a;
	char err[ADMIN_ARGS_ERROR_SIZE];

	cr_assert(eq(int, parse_words(&a, err, "--version", NULL), 0), "%s",
	    err);
	cr_assert(eq(int, a.version, 1));
	cr_assert(eq(int, a.cmd, ADMIN_CMD_NONE));
}

/* ---- help and usage ------------------------------------------------------ */

static char *
captured(void (*fn)(FILE *, enum admin_cmd), enum admin_cmd cmd)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	cr_assert(not(eq(ptr, f, NULL)));
	fn(f, cmd);
	cr_assert(eq(int, fclose(f), 0));
	return buf;
}

Test(admin_args, every_command_has_help_and_a_usage_line)
{
	char want[64], *usage, *help;
	int i;

	usage = captured(admin_help, ADMIN_CMD_NONE);
	for (i = ADMIN_CMD_NONE + 1; i < ADMIN_CMD__MAX; i++) {
		const char *name = admin_cmd_name((enum admin_cmd)i);

		cr_assert(gt(sz, strlen(name), 0));
		snprintf(want, sizeof(want), "\n  %s", name);
		cr_assert(not(eq(ptr, strstr(usage, want), NULL)),
		    "usage lacks %s", name);
		help = captured(admin_help, (enum admin_cmd)i);
		snprintf(want, sizeof(want), "usage: userreg %s", name);
		cr_assert(eq(int, strncmp(help, want, strlen(want)), 0),
		    "help of %s: %s", name, help);
		cr_assert(not(eq(ptr, strstr(help, "--config"), NULL)));
		free(help);
	}
	cr_assert(not(eq(ptr, strstr(usage, "Exit status"), NULL)));
	free(usage);
}

Test(admin_args, command_names_round_trip)
{
	struct admin_args a;
	char err[ADMIN_ARGS_ERROR_SIZE];
	int i;

	cr_assert(eq(str, (char *)admin_cmd_name(ADMIN_CMD_NONE), ""));
	cr_assert(eq(str, (char *)admin_cmd_name(ADMIN_CMD__MAX), ""));
	for (i = ADMIN_CMD_NONE + 1; i < ADMIN_CMD__MAX; i++) {
		parse_words(&a, err, admin_cmd_name((enum admin_cmd)i),
		    "--help", NULL);
		cr_assert(eq(int, a.cmd, i));
	}
}
