/* test_admin_commands.c: the admin tool's commands against a registry. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <criterion/parameterized.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "admin_args.h"
#include "admin_check.h"
#include "admin_copy.h"
#include "admin_env.h"
#include "admin_export.h"
#include "admin_import.h"
#include "admin_write.h"
#include "support.h"

/*
 * Each test gets a fresh registry in a scratch directory and an env
 * whose streams are memory, so what a command prints can be read back.
 */

static char tmpdir[64];
static struct admin_env env;
static char *out_buf, *err_buf;
static size_t out_len, err_len;

static void
streams_open(void)
{
	env.out = open_memstream(&out_buf, &out_len);
	env.err = open_memstream(&err_buf, &err_len);
	cr_assert(not(eq(ptr, env.out, NULL)));
	cr_assert(not(eq(ptr, env.err, NULL)));
}

static void
streams_close(void)
{
	fclose(env.out);
	fclose(env.err);
	free(out_buf);
	free(err_buf);
	out_buf = err_buf = NULL;
}

/* Empties both streams. */
static void
streams_reset(void)
{
	streams_close();
	streams_open();
}

static const char *
out_text(void)
{
	fflush(env.out);
	return out_buf != NULL ? out_buf : "";
}

static const char *
err_text(void)
{
	fflush(env.err);
	return err_buf != NULL ? err_buf : "";
}

static void
setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_admin.XXXXXX");
	cr_assert(not(eq(ptr, mkdtemp(tmpdir), NULL)));
	memset(&env, 0, sizeof(env));
	config_defaults(&env.cfg);
	snprintf(env.cfg.registry, sizeof(env.cfg.registry), "%s/users.db",
	    tmpdir);
	env.reg = registry_open(env.cfg.registry, 2000, REG_OPEN_CREATE, NULL,
	    NULL);
	cr_assert(not(eq(ptr, env.reg, NULL)));
	streams_open();
}

static void
teardown(void)
{
	registry_close(env.reg);
	streams_close();
	support_remove_dir(tmpdir);
}

TestSuite(admin_commands, .init = setup, .fini = teardown);

/* Runs the command line given (NULL-terminated words); returns its exit. */
static int
run(const char *word, ...)
{
	static char *argv[24];
	struct admin_args a;
	char err[ADMIN_ARGS_ERROR_SIZE];
	va_list ap;
	int argc = 0;

	argv[argc++] = "userreg";
	va_start(ap, word);
	for (; word != NULL && argc < 23; word = va_arg(ap, const char *))
		argv[argc++] = (char *)word;
	va_end(ap);
	argv[argc] = NULL;
	cr_assert(eq(int, admin_args_parse(argc, argv, &a, err), 0), "%s",
	    err);
	switch (a.cmd) {
	case ADMIN_CMD_ADD: case ADMIN_CMD_SET: case ADMIN_CMD_DELETE:
	case ADMIN_CMD_GRANT: case ADMIN_CMD_REVOKE:
		return admin_write(&env, &a);
	case ADMIN_CMD_LIST:
		return admin_list(&env, &a);
	case ADMIN_CMD_EXPORT:
		return admin_export(&env, &a);
	case ADMIN_CMD_IMPORT:
		return admin_import(&env, &a);
	case ADMIN_CMD_CHECK:
		return admin_check(&env, &a);
	case ADMIN_CMD_BACKUP:
		return admin_backup(&env, &a);
	case ADMIN_CMD_MIGRATE:
		return admin_migrate(&env, &a);
	default:
		cr_assert(0, "no such command in this suite");
		return -1;
	}
}

static int64_t
revision(void)
{
	int64_t v = -1;

	cr_assert(eq(int, registry_revision(env.reg, &v), REG_OK));
	return v;
}

static int64_t
count(void)
{
	int64_t v = -1;

	cr_assert(eq(int, registry_count(env.reg, &v), REG_OK));
	return v;
}

static void
has(const char *text, const char *want)
{
	cr_assert(not(eq(ptr, strstr(text, want), NULL)), "'%s' lacks '%s'",
	    text, want);
}

/* A path in the scratch directory. */
static const char *
scratch(const char *name)
{
	static char path[2][128];
	static int n;

	n = !n;
	snprintf(path[n], sizeof(path[n]), "%s/%s", tmpdir, name);
	return path[n];
}

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	cr_assert(not(eq(ptr, f, NULL)));
	cr_assert(not(eq(int, fputs(text, f), EOF)));
	cr_assert(eq(int, fclose(f), 0));
}

/* Runs sql on a plain SQLite connection to the registry file. */
static void
raw_exec(const char *sql)
{
	sqlite3 *db = NULL;
	char *msg = NULL;

	cr_assert(eq(int, sqlite3_open(env.cfg.registry, &db), SQLITE_OK));
	cr_assert(eq(int, sqlite3_exec(db, sql, NULL, NULL, &msg), SQLITE_OK),
	    "%s: %s", sql, msg != NULL ? msg : "");
	sqlite3_close(db);
}

/* ---- exit statuses and bodies -------------------------------------------- */

struct exit_case {
	int status, exit;
};

ParameterizedTestParameters(admin_commands, exit_follows_the_answer)
{
	static struct exit_case cases[] = {
		{ 200, ADMIN_EXIT_OK }, { 201, ADMIN_EXIT_OK },
		{ 204, ADMIN_EXIT_OK }, { 409, ADMIN_EXIT_CONFLICT },
		{ 412, ADMIN_EXIT_STALE }, { 404, ADMIN_EXIT_NOT_FOUND },
		{ 400, ADMIN_EXIT_USAGE }, { 413, ADMIN_EXIT_USAGE },
		{ 415, ADMIN_EXIT_USAGE }, { 422, ADMIN_EXIT_USAGE },
		{ 428, ADMIN_EXIT_USAGE }, { 401, ADMIN_EXIT_FAILURE },
		{ 403, ADMIN_EXIT_FAILURE }, { 500, ADMIN_EXIT_FAILURE },
		{ 503, ADMIN_EXIT_FAILURE }, { 0, ADMIN_EXIT_FAILURE },
	};

	return cr_make_param_array(struct exit_case, cases,
	    sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct exit_case *c, admin_commands,
    exit_follows_the_answer)
{
	cr_assert(eq(int, admin_write_exit(c->status), c->exit));
}

static char *
body_of(const char *word, ...)
{
	static char *argv[16];
	struct admin_args a;
	struct user cur;
	char err[ADMIN_ARGS_ERROR_SIZE];
	va_list ap;
	int argc = 0;

	argv[argc++] = "userreg";
	va_start(ap, word);
	for (; word != NULL && argc < 15; word = va_arg(ap, const char *))
		argv[argc++] = (char *)word;
	va_end(ap);
	cr_assert(eq(int, admin_args_parse(argc, argv, &a, err), 0), "%s",
	    err);
	memset(&cur, 0, sizeof(cur));
	snprintf(cur.roles[0], sizeof(cur.roles[0]), "admin");
	snprintf(cur.roles[1], sizeof(cur.roles[1]), "ops");
	cur.nroles = 2;
	return admin_write_body(&a, &cur);
}

Test(admin_commands, bodies_are_the_api_requests)
{
	static const struct {
		const char *argv[12];
		const char *body;
	} cases[] = {
		{ { "add", "Bob", NULL }, "{\"username\":\"Bob\"}" },
		{ { "add", "bob", "--role", "x", "--email", "b@e.org",
		    "--display-name", "B \"q\"", "--role", "a", NULL },
		  "{\"username\":\"bob\",\"email\":\"b@e.org\","
		  "\"display_name\":\"B \\\"q\\\"\",\"roles\":[\"x\",\"a\"]}" },
		{ { "set", "bob", "--no-email", "--display-name", "D", NULL },
		  "{\"email\":null,\"display_name\":\"D\"}" },
		{ { "set", "bob", "--roles", "", NULL }, "{\"roles\":[]}" },
		{ { "set", "bob", "--roles", "a,b,,c", NULL },
		  "{\"roles\":[\"a\",\"b\",\"\",\"c\"]}" },
		{ { "set", "bob", "--no-display-name", "--email=e@x.y", NULL },
		  "{\"email\":\"e@x.y\",\"display_name\":null}" },
		{ { "grant", "bob", "dev", NULL },
		  "{\"roles\":[\"admin\",\"ops\",\"dev\"]}" },
		{ { "grant", "bob", "ops", NULL },
		  "{\"roles\":[\"admin\",\"ops\"]}" },
		{ { "revoke", "bob", "admin", NULL }, "{\"roles\":[\"ops\"]}" },
		{ { "revoke", "bob", "dev", NULL },
		  "{\"roles\":[\"admin\",\"ops\"]}" },
	};
	size_t i;
	char *s;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *const *w = cases[i].argv;
		s = body_of(w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7],
		    w[8], w[9], w[10], NULL);
		cr_assert(not(eq(ptr, s, NULL)));
		cr_assert(eq(str, s, (char *)cases[i].body), "case %zu", i);
		free(s);
	}
}

/* ---- writes -------------------------------------------------------------- */

Test(admin_commands, add_answers_like_post)
{
	cr_assert(eq(int, run("add", "Alice", "--email", "A@example.org",
	    "--role", "admin", NULL), ADMIN_EXIT_OK), "%s", err_text());
	has(out_text(), "{\"username\":\"Alice\",\"email\":\"A@example.org\","
	    "\"roles\":[\"admin\"],\"version\":\"1\"");
	cr_assert(eq(i64, revision(), 1));
	streams_reset();
	cr_assert(eq(int, run("add", "alice", NULL), ADMIN_EXIT_CONFLICT));
	has(err_text(), "userreg: add alice: 409 user-exists");
	has(err_text(), "\"existing\":\"/users/alice\"");
	streams_reset();
	cr_assert(eq(int, run("add", "bob", "--email", "a@EXAMPLE.org", NULL),
	    ADMIN_EXIT_CONFLICT));
	has(err_text(), "409 email-taken");
	streams_reset();
	cr_assert(eq(int, run("add", "bob", "--email", "no-at", NULL),
	    ADMIN_EXIT_USAGE));
	has(err_text(), "422 validation-failed");
	has(err_text(), "\"pointer\":\"/email\"");
	streams_reset();
	cr_assert(eq(int, run("add", "bob", "--role", "Bad", NULL),
	    ADMIN_EXIT_USAGE));
	cr_assert(eq(str, (char *)out_text(), ""));
	/* Nothing refused was written. */
	cr_assert(eq(i64, revision(), 1));
	cr_assert(eq(i64, count(), 1));
}

Test(admin_commands, grant_and_revoke_keep_the_last_admin)
{
	cr_assert(eq(int, run("add", "root", "--role", "admin", NULL), 0));
	cr_assert(eq(int, run("add", "bob", NULL), 0));
	streams_reset();
	cr_assert(eq(int, run("grant", "bob", "ops", NULL), 0), "%s",
	    err_text());
	has(out_text(), "\"roles\":[\"ops\"],\"version\":\"3\"");
	/* Holding it already changes nothing: same version. */
	streams_reset();
	cr_assert(eq(int, run("grant", "BOB", "ops", NULL), 0));
	has(out_text(), "\"version\":\"3\"");
	cr_assert(eq(i64, revision(), 3));
	streams_reset();
	cr_assert(eq(int, run("revoke", "root", "admin", NULL),
	    ADMIN_EXIT_CONFLICT));
	has(err_text(), "409 business-rule-violation");
	has(err_text(), "\"rule\":\"last-admin\"");
	cr_assert(eq(int, run("grant", "bob", "admin", NULL), 0));
	cr_assert(eq(int, run("revoke", "root", "admin", NULL), 0));
	streams_reset();
	cr_assert(eq(int, run("grant", "ghost", "ops", NULL),
	    ADMIN_EXIT_NOT_FOUND));
	has(err_text(), "404 user-not-found");
	cr_assert(eq(int, run("grant", "bob", "Not-A-Role", NULL),
	    ADMIN_EXIT_USAGE));
	cr_assert(eq(i64, revision(), 5));
}

Test(admin_commands, if_version_is_if_match)
{
	cr_assert(eq(int, run("add", "bob", NULL), 0));
	cr_assert(eq(int, run("add", "carol", NULL), 0));
	streams_reset();
	cr_assert(eq(int, run("set", "bob", "--display-name", "B",
	    "--if-version", "2", NULL), ADMIN_EXIT_STALE));
	has(err_text(), "412 precondition-failed");
	has(err_text(), "\"current_version\":\"1\"");
	cr_assert(eq(i64, revision(), 2));
	cr_assert(eq(int, run("delete", "bob", "--if-version", "2", NULL),
	    ADMIN_EXIT_STALE));
	cr_assert(eq(int, run("revoke", "bob", "x", "--if-version", "9",
	    NULL), ADMIN_EXIT_STALE));
	streams_reset();
	cr_assert(eq(int, run("set", "bob", "--display-name", "B",
	    "--if-version", "1", NULL), 0), "%s", err_text());
	has(out_text(), "\"display_name\":\"B\",\"roles\":[],\"version\":\"3\"");
	cr_assert(eq(int, run("set", "bob", "--no-display-name",
	    "--email", "b@example.org", NULL), 0));
	cr_assert(eq(int, run("set", "carol", "--email", "B@example.org",
	    NULL), ADMIN_EXIT_CONFLICT));
	cr_assert(eq(int, run("delete", "bob", "--if-version", "4", NULL), 0));
	cr_assert(eq(i64, revision(), 5));
	cr_assert(eq(i64, count(), 1));
}

Test(admin_commands, delete_reads_the_version_itself)
{
	cr_assert(eq(int, run("delete", "ghost", NULL), ADMIN_EXIT_NOT_FOUND));
	cr_assert(eq(int, run("add", "bob", NULL), 0));
	cr_assert(eq(int, run("set", "bob", "--email", "b@example.org", NULL),
	    0));
	streams_reset();
	cr_assert(eq(int, run("delete", "BOB", NULL), 0), "%s", err_text());
	cr_assert(eq(str, (char *)out_text(), ""));
	cr_assert(eq(i64, count(), 0));
	cr_assert(eq(i64, revision(), 3));
	cr_assert(eq(int, run("delete", "bob", NULL), ADMIN_EXIT_NOT_FOUND));
}

/* ---- export and import --------------------------------------------------- */

static char *
read_all(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	cr_assert(not(eq(ptr, f, NULL)), "%s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)n + 1);
	cr_assert(eq(sz, fread(buf, 1, (size_t)n, f), (size_t)n));
	fclose(f);
	return buf;
}

/* Makes the registry a fresh one at name in the scratch directory. */
static void
switch_registry(const char *name)
{
	registry_close(env.reg);
	snprintf(env.cfg.registry, sizeof(env.cfg.registry), "%s",
	    scratch(name));
	env.reg = registry_open(env.cfg.registry, 2000, REG_OPEN_CREATE, NULL,
	    NULL);
	cr_assert(not(eq(ptr, env.reg, NULL)));
}

Test(admin_commands, export_imports_whole_with_its_revision)
{
	char *first, *second;

	cr_assert(eq(int, run("add", "root", "--role", "admin", "--email",
	    "r@example.org", NULL), 0));
	cr_assert(eq(int, run("add", "Zed", "--display-name", "Zoë", NULL),
	    0));
	cr_assert(eq(int, run("add", "gone", NULL), 0));
	cr_assert(eq(int, run("delete", "gone", NULL), 0));
	cr_assert(eq(i64, revision(), 4));
	cr_assert(eq(int, run("export", scratch("dump.jsonl"), NULL), 0),
	    "%s", err_text());
	first = read_all(scratch("dump.jsonl"));
	cr_assert(eq(int, strncmp(first,
	    "{\"userreg_export\":1,\"revision\":4}\n{\"username\":\"root\"",
	    50), 0), "%s", first);
	switch_registry("copy.db");
	streams_reset();
	cr_assert(eq(int, run("import", scratch("dump.jsonl"), NULL), 0), "%s",
	    err_text());
	has(out_text(), "imported 2 users");
	/* The deleted user's version 3 and the delete's 4 stay used. */
	cr_assert(eq(i64, revision(), 4));
	cr_assert(eq(int, run("export", scratch("again.jsonl"), NULL), 0));
	second = read_all(scratch("again.jsonl"));
	cr_assert(eq(str, second, first));
	streams_reset();
	cr_assert(eq(int, run("check", NULL), 0), "%s", err_text());
	has(out_text(), "ok: 2 users, revision 4");
	/* The next write gets a version never issued before. */
	streams_reset();
	cr_assert(eq(int, run("add", "new", NULL), 0));
	has(out_text(), "\"version\":\"5\"");
	free(first);
	free(second);
}

Test(admin_commands, list_and_export_to_stdout)
{
	cr_assert(eq(int, run("add", "alice", NULL), 0));
	cr_assert(eq(int, run("add", "Alex", NULL), 0));
	cr_assert(eq(int, run("add", "bob", NULL), 0));
	streams_reset();
	cr_assert(eq(int, run("list", "--prefix", "AL", NULL), 0));
	cr_assert(eq(int, strncmp(out_text(), "{\"username\":\"Alex\"", 18), 0),
	    "%s", out_text());
	has(out_text(), "}\n{\"username\":\"alice\"");
	cr_assert(eq(ptr, strstr(out_text(), "bob"), NULL));
	streams_reset();
	cr_assert(eq(int, run("export", NULL), 0));
	cr_assert(eq(int, strncmp(out_text(),
	    "{\"userreg_export\":1,\"revision\":3}\n", 34), 0), "%s",
	    out_text());
	has(out_text(), "\"username\":\"bob\"");
}

Test(admin_commands, bare_representations_raise_to_the_highest_version)
{
	write_file(scratch("gen.jsonl"),
	    "{\"username\":\"a\",\"roles\":[\"admin\"],\"version\":\"17\","
	    "\"created_at\":\"2026-01-01T00:00:00Z\","
	    "\"updated_at\":\"2026-01-02T00:00:00Z\"}\n"
	    "\n"
	    "{\"username\":\"b\",\"version\":\"40\","
	    "\"created_at\":\"2026-01-01T00:00:00Z\","
	    "\"updated_at\":\"2026-01-01T00:00:00Z\"}\r\n");
	cr_assert(eq(int, run("import", scratch("gen.jsonl"), NULL), 0), "%s",
	    err_text());
	cr_assert(eq(i64, revision(), 40));
	streams_reset();
	cr_assert(eq(int, run("list", NULL), 0));
	has(out_text(), "{\"username\":\"a\",\"roles\":[\"admin\"],"
	    "\"version\":\"17\",\"created_at\":\"2026-01-01T00:00:00Z\","
	    "\"updated_at\":\"2026-01-02T00:00:00Z\"}\n");
}

Test(admin_commands, import_never_lowers_the_revision)
{
	int i;

	for (i = 0; i < 3; i++)
		cr_assert(eq(int, run("add", i == 0 ? "x" : i == 1 ? "y" : "z",
		    NULL), 0));
	write_file(scratch("old.jsonl"),
	    "{\"userreg_export\":1,\"revision\":2}\n"
	    "{\"username\":\"b\",\"version\":\"1\","
	    "\"created_at\":\"2026-01-01T00:00:00Z\","
	    "\"updated_at\":\"2026-01-01T00:00:00Z\"}\n");
	cr_assert(eq(int, run("import", scratch("old.jsonl"), NULL), 0), "%s",
	    err_text());
	cr_assert(eq(i64, revision(), 3));
	cr_assert(eq(i64, count(), 4));
}

Test(admin_commands, import_refuses_the_whole_file_naming_every_bad_line)
{
	const char *path = scratch("bad.jsonl");
	char want[160];

	cr_assert(eq(int, run("add", "taken", "--email", "t@example.org",
	    NULL), 0));
	write_file(path,
	    "{\"userreg_export\":1,\"revision\":50}\n"
	    "{\"username\":\"ok1\",\"version\":\"2\",\"created_at\":"
	    "\"2026-01-01T00:00:00Z\",\"updated_at\":\"2026-01-01T00:00:00Z\"}\n"
	    "{\"username\":\"OK1\",\"version\":\"3\",\"created_at\":"
	    "\"2026-01-01T00:00:00Z\",\"updated_at\":\"2026-01-01T00:00:00Z\"}\n"
	    "{\"username\":\"taken\",\"version\":\"4\",\"created_at\":"
	    "\"2026-01-01T00:00:00Z\",\"updated_at\":\"2026-01-01T00:00:00Z\"}\n"
	    "{\"username\":\"e1\",\"email\":\"T@example.org\",\"version\":\"5\","
	    "\"created_at\":\"2026-01-01T00:00:00Z\","
	    "\"updated_at\":\"2026-01-01T00:00:00Z\"}\n"
	    "{\"username\":\"hi\",\"version\":\"51\",\"created_at\":"
	    "\"2026-01-01T00:00:00Z\",\"updated_at\":\"2026-01-01T00:00:00Z\"}\n"
	    "garbage\n"
	    "{\"userreg_export\":1,\"revision\":50}\n"
	    "{\"username\":\"ok2\",\"version\":\"6\",\"created_at\":"
	    "\"2026-01-01T00:00:00Z\",\"updated_at\":\"2026-01-01T00:00:00Z\"}\n");
	cr_assert(eq(int, run("import", path, NULL), ADMIN_EXIT_USAGE));
	snprintf(want, sizeof(want), "%s:3: username 'OK1' is also on line 2",
	    path);
	has(err_text(), want);
	snprintf(want, sizeof(want), "%s:4: username 'taken' is taken in the "
	    "registry", path);
	has(err_text(), want);
	snprintf(want, sizeof(want), "%s:5: email 'T@example.org' is taken in "
	    "the registry", path);
	has(err_text(), want);
	snprintf(want, sizeof(want), "%s:6: version 51 is above the export's "
	    "revision 50", path);
	has(err_text(), want);
	snprintf(want, sizeof(want), "%s:7: not a JSON object", path);
	has(err_text(), want);
	snprintf(want, sizeof(want), "%s:8: the export header must be the "
	    "first line", path);
	has(err_text(), want);
	cr_assert(eq(ptr, strstr(err_text(), ":2:"), NULL));
	cr_assert(eq(ptr, strstr(err_text(), ":9:"), NULL));
	has(err_text(), "refused: 6 bad lines; nothing imported");
	/* Nothing of it was kept, the revision included. */
	cr_assert(eq(i64, count(), 1));
	cr_assert(eq(i64, revision(), 1));
}

Test(admin_commands, import_of_conflicts_only_is_a_conflict)
{
	cr_assert(eq(int, run("add", "taken", NULL), 0));
	write_file(scratch("dup.jsonl"),
	    "{\"username\":\"Taken\",\"version\":\"4\",\"created_at\":"
	    "\"2026-01-01T00:00:00Z\",\"updated_at\":\"2026-01-01T00:00:00Z\"}\n");
	cr_assert(eq(int, run("import", scratch("dup.jsonl"), NULL),
	    ADMIN_EXIT_CONFLICT));
	cr_assert(eq(i64, revision(), 1));
	cr_assert(eq(int, run("import", scratch("missing.jsonl"), NULL),
	    ADMIN_EXIT_FAILURE));
	has(err_text(), "cannot open");
}

/* A line of ADMIN_IMPORT_LINE_MAX bytes (white space after the object). */
static void
write_padded(FILE *f, const char *json, size_t len)
{
	size_t n = strlen(json);

	cr_assert(le(sz, n, len));
	fputs(json, f);
	for (; n < len; n++)
		fputc(' ', f);
	fputc('\n', f);
}

Test(admin_commands, import_line_limit_is_inclusive)
{
	static const char a[] = "{\"username\":\"a\",\"version\":\"1\","
	    "\"created_at\":\"2026-01-01T00:00:00Z\","
	    "\"updated_at\":\"2026-01-01T00:00:00Z\"}";
	static const char b[] = "{\"username\":\"b\",\"version\":\"2\","
	    "\"created_at\":\"2026-01-01T00:00:00Z\","
	    "\"updated_at\":\"2026-01-01T00:00:00Z\"}";
	char want[160];
	FILE *f;

	f = fopen(scratch("long.jsonl"), "w");
	cr_assert(not(eq(ptr, f, NULL)));
	write_padded(f, a, ADMIN_IMPORT_LINE_MAX);
	write_padded(f, b, ADMIN_IMPORT_LINE_MAX + 1);
	cr_assert(eq(int, fclose(f), 0));
	cr_assert(eq(int, run("import", scratch("long.jsonl"), NULL),
	    ADMIN_EXIT_USAGE));
	snprintf(want, sizeof(want), "%s:2: longer than %d bytes",
	    scratch("long.jsonl"), ADMIN_IMPORT_LINE_MAX);
	has(err_text(), want);
	cr_assert(eq(ptr, strstr(err_text(), ":1:"), NULL), "%s", err_text());
	cr_assert(eq(i64, count(), 0));
	/* The longest line alone goes in. */
	f = fopen(scratch("long.jsonl"), "w");
	cr_assert(not(eq(ptr, f, NULL)));
	write_padded(f, a, ADMIN_IMPORT_LINE_MAX);
	cr_assert(eq(int, fclose(f), 0));
	streams_reset();
	cr_assert(eq(int, run("import", scratch("long.jsonl"), NULL), 0), "%s",
	    err_text());
	cr_assert(eq(i64, count(), 1));
}

/* ---- check and backup ---------------------------------------------------- */

static void
three_users(void)
{
	cr_assert(eq(int, run("add", "root", "--role", "admin", "--email",
	    "root@example.org", NULL), 0));
	cr_assert(eq(int, run("add", "bob", "--email", "bob@example.org",
	    NULL), 0));
	cr_assert(eq(int, run("add", "carol", NULL), 0));
	streams_reset();
}

Test(admin_commands, check_passes_a_sound_registry)
{
	three_users();
	raw_exec("INSERT INTO idempotency VALUES ('', 'k1', "
	    "'0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',"
	    " 201, CAST('Content-Type: application/json' || char(10) || char(10)"
	    " || '{}' AS BLOB), 99999999999)");
	cr_assert(eq(int, run("check", NULL), 0), "%s", err_text());
	cr_assert(eq(str, (char *)out_text(),
	    "ok: 3 users, revision 3, 1 idempotency records\n"));
}

struct tamper_case {
	char sql[200];
	char why[64];
};

ParameterizedTestParameters(admin_commands, check_finds)
{
	static struct tamper_case cases[] = {
		{ "UPDATE users SET version = 9 WHERE key = 'bob'",
		  "user 'bob': version 9 is above the revision counter 3" },
		{ "UPDATE meta SET v = 1 WHERE k = 'revision'",
		  "above the revision counter 1" },
		{ "UPDATE meta SET v = 7 WHERE k = 'users'",
		  "the users count says 7, 3 users are listed" },
		{ "UPDATE users SET roles = 'ops,admin' WHERE key = 'root'",
		  "user 'root': roles not sorted" },
		{ "UPDATE users SET email = 'x y' WHERE key = 'bob'",
		  "user 'bob': email" },
		{ "UPDATE users SET created_at = updated_at + 5 WHERE key = "
		  "'carol'", "user 'carol': created_at" },
		{ "INSERT INTO idempotency VALUES ('', 'k2', 'abc', 201,"
		  " CAST('x' AS BLOB), 1)", "key 'k2'): fingerprint" },
		{ "INSERT INTO idempotency VALUES ('', 'k3', "
		  "'0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab"
		  "cdef', 201, CAST('no newline' AS BLOB), 1)",
		  "key 'k3'): stored answer is malformed" },
	};

	return cr_make_param_array(struct tamper_case, cases,
	    sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct tamper_case *c, admin_commands, check_finds)
{
	three_users();
	raw_exec(c->sql);
	cr_assert(eq(int, run("check", NULL), ADMIN_EXIT_FAILURE));
	has(err_text(), c->why);
	has(err_text(), "fault");
	cr_assert(eq(str, (char *)out_text(), ""));
}

Test(admin_commands, check_finds_an_email_held_twice)
{
	three_users();
	/* The UNIQUE index is on the email's key: a row whose key is not
	 * its email's slips past it. */
	raw_exec("UPDATE users SET email = 'BOB@example.org' WHERE key = "
	    "'carol'");
	cr_assert(eq(int, run("check", NULL), ADMIN_EXIT_FAILURE));
	has(err_text(), "email 'BOB@example.org' is held by users");
}

Test(admin_commands, backup_is_a_registry_check_accepts)
{
	const char *copy = scratch("backup.db");

	three_users();
	cr_assert(eq(int, run("backup", copy, NULL), 0), "%s", err_text());
	cr_assert(eq(int, run("backup", copy, NULL), ADMIN_EXIT_FAILURE));
	has(err_text(), "exists");
	cr_assert(eq(int, run("delete", "carol", NULL), 0));
	registry_close(env.reg);
	snprintf(env.cfg.registry, sizeof(env.cfg.registry), "%s", copy);
	env.reg = registry_open(copy, 2000, 0, NULL, NULL);
	cr_assert(not(eq(ptr, env.reg, NULL)));
	streams_reset();
	cr_assert(eq(int, run("check", NULL), 0), "%s", err_text());
	cr_assert(eq(str, (char *)out_text(),
	    "ok: 3 users, revision 3, 0 idempotency records\n"));
}

/* ---- migrate ------------------------------------------------------------- */

Test(admin_commands, migrate_exit_statuses)
{
	cr_assert(eq(int, admin_migrate_exit(MIGRATE_OK), ADMIN_EXIT_OK));
	cr_assert(eq(int, admin_migrate_exit(MIGRATE_NOT_EMPTY),
	    ADMIN_EXIT_CONFLICT));
	cr_assert(eq(int, admin_migrate_exit(MIGRATE_SAME), ADMIN_EXIT_USAGE));
	cr_assert(eq(int, admin_migrate_exit(MIGRATE_SOURCE),
	    ADMIN_EXIT_FAILURE));
	cr_assert(eq(int, admin_migrate_exit(MIGRATE_TARGET),
	    ADMIN_EXIT_FAILURE));
	cr_assert(eq(int, admin_migrate_exit(MIGRATE_MISMATCH),
	    ADMIN_EXIT_FAILURE));
}

static void
make_registry(const char *path)
{
	struct registry *r = registry_open(path, 2000, REG_OPEN_CREATE, NULL,
	    NULL);

	cr_assert(not(eq(ptr, r, NULL)), "%s", path);
	registry_close(r);
}

Test(admin_commands, migrate_copies_into_an_empty_registry_only)
{
	char from[CONFIG_PATH_MAX], to[128], *want, *got;

	three_users();
	cr_assert(eq(int, run("delete", "carol", NULL), 0));
	raw_exec("INSERT INTO idempotency VALUES ('', 'k1', "
	    "'0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',"
	    " 201, CAST('Content-Type: application/json' || char(10) || char(10)"
	    " || '{}' AS BLOB), 99999999999)");
	snprintf(from, sizeof(from), "%s", env.cfg.registry);
	snprintf(to, sizeof(to), "%s", scratch("to.db"));
	/* TO must exist: migrate creates nothing. */
	streams_reset();
	cr_assert(eq(int, run("migrate", from, to, NULL), ADMIN_EXIT_FAILURE));
	has(err_text(), "cannot open the target registry");
	cr_assert(not(eq(int, access(to, F_OK), 0)));
	make_registry(to);
	streams_reset();
	cr_assert(eq(int, run("migrate", from, to, NULL), 0), "%s",
	    err_text());
	cr_assert(eq(str, (char *)out_text(), "migrated 2 users and 1 "
	    "idempotency record; revision 4\n"));
	cr_assert(eq(int, run("export", scratch("from.jsonl"), NULL), 0));
	want = read_all(scratch("from.jsonl"));
	/* Into a target that holds something: refused, left as it was. */
	streams_reset();
	cr_assert(eq(int, run("migrate", from, to, NULL), ADMIN_EXIT_CONFLICT));
	has(err_text(), "not empty");
	cr_assert(eq(int, run("migrate", from, from, NULL), ADMIN_EXIT_USAGE));
	registry_close(env.reg);
	snprintf(env.cfg.registry, sizeof(env.cfg.registry), "%s", to);
	env.reg = registry_open(to, 2000, 0, NULL, NULL);
	cr_assert(not(eq(ptr, env.reg, NULL)));
	streams_reset();
	cr_assert(eq(int, run("check", NULL), 0), "%s", err_text());
	cr_assert(eq(str, (char *)out_text(),
	    "ok: 2 users, revision 4, 1 idempotency records\n"));
	cr_assert(eq(int, run("export", scratch("to.jsonl"), NULL), 0));
	got = read_all(scratch("to.jsonl"));
	cr_assert(eq(str, got, want));
	free(want);
	free(got);
}
