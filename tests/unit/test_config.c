/* test_config.c: userreg.conf keys, defaults, bounds and line syntax. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <criterion/parameterized.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

/*
 * Parameters hold arrays, not pointers: Criterion runs each test in a
 * fresh process, where the parent's pointers need not be valid.
 */

static char tmpdir[64];
static char confpath[128];

static void
setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_config.XXXXXX");
	cr_assert(not(eq(ptr, mkdtemp(tmpdir), NULL)));
	snprintf(confpath, sizeof(confpath), "%s/userreg.conf", tmpdir);
}

static void
teardown(void)
{
	unlink(confpath);
	rmdir(tmpdir);
}

TestSuite(config, .init = setup, .fini = teardown);

/* Writes len bytes of text to the fixture's config file. */
static void
write_conf_len(const char *text, size_t len)
{
	FILE *f = fopen(confpath, "w");

	cr_assert(not(eq(ptr, f, NULL)));
	cr_assert(eq(sz, fwrite(text, 1, len, f), len));
	cr_assert(eq(int, fclose(f), 0));
}

static void
write_conf(const char *text)
{
	write_conf_len(text, strlen(text));
}

/* Loads the fixture's file over defaults; returns config_load()'s result. */
static int
load(struct config *cfg, char *err, size_t errlen)
{
	config_defaults(cfg);
	err[0] = '\0';
	return config_load(cfg, confpath, err, errlen);
}

/* ---- defaults ---------------------------------------------------------- */

Test(config, defaults_match_the_contract)
{
	struct config cfg;

	memset(&cfg, 0xa5, sizeof(cfg));
	config_defaults(&cfg);
	cr_assert(eq(str, cfg.registry, USERREG_STATE_DIR "/users.db"));
	/* Never relative to wherever a command happens to run. */
	cr_assert(eq(chr, cfg.registry[0], '/'));
	cr_assert(eq(str, cfg.log_file, ""));
	cr_assert(eq(str, cfg.base_path, "/"));
	cr_assert(eq(int, (int)cfg.access, (int)CONFIG_ACCESS_OPEN));
	cr_assert(eq(int, (int)cfg.signup, (int)CONFIG_SIGNUP_OPEN));
	cr_assert(eq(int, cfg.require_preconditions, 1));
	cr_assert(eq(sz, cfg.max_body, 65536));
	cr_assert(eq(int, cfg.max_depth, 8));
	cr_assert(eq(int, cfg.busy_timeout_ms, 5000));
	cr_assert(eq(i64, cfg.idempotency_ttl, 24 * 3600));
	cr_assert(eq(int, (int)cfg.log_level, (int)CONFIG_LOG_INFO));
	cr_assert(eq(int, cfg.metrics, 1));
	cr_assert(eq(int, cfg.group_commit, 1));
}

Test(config, limits_have_their_documented_values)
{
	cr_assert(eq(int, CONFIG_PATH_MAX, 4096));
	cr_assert(eq(int, CONFIG_BASE_PATH_MAX, 256));
	cr_assert(eq(int, CONFIG_LINE_MAX, 4096));
	cr_assert(eq(int, CONFIG_BODY_MAX, 16 * 1024 * 1024));
}

Test(config, empty_file_keeps_defaults)
{
	struct config cfg, def;
	char err[256];

	write_conf("");
	cr_assert(eq(int, load(&cfg, err, sizeof(err)), 0), "%s", err);
	config_defaults(&def);
	cr_assert(eq(int, memcmp(&cfg, &def, sizeof(cfg)), 0));
}

/* ---- every key, accepted values ----------------------------------------- */

/* What the field reads after a value is set; the key names the field. */
struct good_case {
	char key[32];
	char value[64];
	long long want;		/* for numbers and enums */
	char want_str[64];	/* for registry and base_path */
};

static long long
field_value(const struct config *cfg, const char *key)
{
	if (strcmp(key, "access") == 0)
		return cfg->access;
	if (strcmp(key, "signup") == 0)
		return cfg->signup;
	if (strcmp(key, "require_preconditions") == 0)
		return cfg->require_preconditions;
	if (strcmp(key, "max_body") == 0)
		return (long long)cfg->max_body;
	if (strcmp(key, "max_depth") == 0)
		return cfg->max_depth;
	if (strcmp(key, "busy_timeout_ms") == 0)
		return cfg->busy_timeout_ms;
	if (strcmp(key, "idempotency_ttl") == 0)
		return cfg->idempotency_ttl;
	if (strcmp(key, "log_level") == 0)
		return cfg->log_level;
	if (strcmp(key, "metrics") == 0)
		return cfg->metrics;
	if (strcmp(key, "group_commit") == 0)
		return cfg->group_commit;
	cr_assert(0, "no numeric field for key %s", key);
	return -1;
}

static const char *
field_str(const struct config *cfg, const char *key)
{
	if (strcmp(key, "registry") == 0)
		return cfg->registry;
	if (strcmp(key, "base_path") == 0)
		return cfg->base_path;
	if (strcmp(key, "log_file") == 0)
		return cfg->log_file;
	return NULL;
}

ParameterizedTestParameters(config, set_accepts)
{
	static struct good_case cases[] = {
		{ "registry", "/var/lib/userreg/users.db", 0,
		    "/var/lib/userreg/users.db" },
		{ "registry", "users.db", 0, "users.db" },
		{ "registry", "postgresql://u@db.example.org/reg", 0,
		    "postgresql://u@db.example.org/reg" },
		{ "log_file", "/var/log/userreg.log", 0,
		    "/var/log/userreg.log" },
		{ "log_file", "userreg.log", 0, "userreg.log" },
		{ "base_path", "/", 0, "/" },
		{ "base_path", "/api", 0, "/api/" },
		{ "base_path", "/api/", 0, "/api/" },
		{ "base_path", "/a/b", 0, "/a/b/" },
		{ "base_path", "/v1.0/x_y-z~", 0, "/v1.0/x_y-z~/" },
		{ "base_path", "/...", 0, "/.../" },
		{ "base_path", "/.well", 0, "/.well/" },
		{ "access", "open", CONFIG_ACCESS_OPEN, "" },
		{ "access", "self", CONFIG_ACCESS_SELF, "" },
		{ "signup", "open", CONFIG_SIGNUP_OPEN, "" },
		{ "signup", "admin", CONFIG_SIGNUP_ADMIN, "" },
		{ "require_preconditions", "on", 1, "" },
		{ "require_preconditions", "off", 0, "" },
		{ "max_body", "1", 1, "" },
		{ "max_body", "65536", 65536, "" },
		{ "max_body", "16777216", 16777216, "" },
		{ "max_body", "007", 7, "" },
		{ "max_depth", "1", 1, "" },
		{ "max_depth", "64", 64, "" },
		{ "busy_timeout_ms", "0", 0, "" },
		{ "busy_timeout_ms", "600000", 600000, "" },
		{ "idempotency_ttl", "1", 1, "" },
		{ "idempotency_ttl", "31622400", 31622400, "" },
		{ "log_level", "error", CONFIG_LOG_ERROR, "" },
		{ "log_level", "warn", CONFIG_LOG_WARN, "" },
		{ "log_level", "info", CONFIG_LOG_INFO, "" },
		{ "log_level", "debug", CONFIG_LOG_DEBUG, "" },
		{ "metrics", "off", 0, "" },
		{ "metrics", "on", 1, "" },
		{ "group_commit", "off", 0, "" },
		{ "group_commit", "on", 1, "" },
	};

	return cr_make_param_array(struct good_case, cases,
	    sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct good_case *c, config, set_accepts)
{
	struct config cfg;
	char err[256] = "";
	const char *s;

	config_defaults(&cfg);
	/* Start from a value no case wants, so the write is visible. */
	cfg.max_depth = 33;
	cfg.busy_timeout_ms = 33;
	cfg.max_body = 33;
	cfg.idempotency_ttl = 33;
	cfg.metrics = 33;
	cfg.group_commit = 33;
	cr_assert(eq(int, config_set(&cfg, c->key, c->value, err,
	    sizeof(err)), 0), "%s = [%s]: %s", c->key, c->value, err);
	if ((s = field_str(&cfg, c->key)) != NULL)
		cr_assert(eq(str, (char *)s, c->want_str), "%s = [%s]",
		    c->key, c->value);
	else
		cr_assert(eq(i64, field_value(&cfg, c->key), c->want),
		    "%s = [%s]", c->key, c->value);
}

Test(config, every_key_is_read_from_a_file)
{
	struct config cfg;
	char err[256];

	write_conf(
	    "registry = /srv/reg/users.db\n"
	    "base_path = /api\n"
	    "access = self\n"
	    "signup = admin\n"
	    "require_preconditions = off\n"
	    "max_body = 1024\n"
	    "max_depth = 4\n"
	    "busy_timeout_ms = 250\n"
	    "idempotency_ttl = 600\n"
	    "log_level = debug\n"
	    "log_file = /var/log/userreg.log\n"
	    "metrics = off\n"
	    "group_commit = off\n");
	cr_assert(eq(int, load(&cfg, err, sizeof(err)), 0), "%s", err);
	cr_assert(eq(str, cfg.registry, "/srv/reg/users.db"));
	cr_assert(eq(str, cfg.base_path, "/api/"));
	cr_assert(eq(int, (int)cfg.access, (int)CONFIG_ACCESS_SELF));
	cr_assert(eq(int, (int)cfg.signup, (int)CONFIG_SIGNUP_ADMIN));
	cr_assert(eq(int, cfg.require_preconditions, 0));
	cr_assert(eq(sz, cfg.max_body, 1024));
	cr_assert(eq(int, cfg.max_depth, 4));
	cr_assert(eq(int, cfg.busy_timeout_ms, 250));
	cr_assert(eq(i64, cfg.idempotency_ttl, 600));
	cr_assert(eq(int, (int)cfg.log_level, (int)CONFIG_LOG_DEBUG));
	cr_assert(eq(str, cfg.log_file, "/var/log/userreg.log"));
	cr_assert(eq(int, cfg.metrics, 0));
	cr_assert(eq(int, cfg.group_commit, 0));
}

Test(config, a_later_line_overrides_an_earlier_one)
{
	struct config cfg;
	char err[256];

	write_conf("max_depth = 4\nmax_depth = 5\n");
	cr_assert(eq(int, load(&cfg, err, sizeof(err)), 0), "%s", err);
	cr_assert(eq(int, cfg.max_depth, 5));
}

Test(config, load_applies_over_values_already_set)
{
	struct config cfg;
	char err[256] = "";

	config_defaults(&cfg);
	cr_assert(eq(int, config_set(&cfg, "max_depth", "3", err,
	    sizeof(err)), 0));
	write_conf("access = self\n");
	cr_assert(eq(int, config_load(&cfg, confpath, err, sizeof(err)), 0),
	    "%s", err);
	cr_assert(eq(int, cfg.max_depth, 3));
	cr_assert(eq(int, (int)cfg.access, (int)CONFIG_ACCESS_SELF));
}

/* ---- refused values ---------------------------------------------------- */

struct bad_case {
	char key[32];
	char value[64];
};

ParameterizedTestParameters(config, set_refuses)
{
	static struct bad_case cases[] = {
		/* numbers: digits only, within bounds */
		{ "max_body", "" },
		{ "max_body", "0" },
		{ "max_body", "-1" },
		{ "max_body", "+5" },
		{ "max_body", "1e3" },
		{ "max_body", " 5" },
		{ "max_body", "5 " },
		{ "max_body", "5k" },
		{ "max_body", "0x10" },
		{ "max_body", "1.5" },
		{ "max_body", "16777217" },
		{ "max_body", "99999999999999999999" },
		{ "max_body", "18446744073709551616" },
		{ "max_body", "9223372036854775808" },
		{ "max_depth", "0" },
		{ "max_depth", "65" },
		{ "max_depth", "-1" },
		{ "max_depth", "4294967304" },	/* 2^32 + 8: no int wrap */
		{ "busy_timeout_ms", "600001" },
		{ "busy_timeout_ms", "-1" },
		{ "busy_timeout_ms", "1e3" },
		{ "busy_timeout_ms", "99999999999999999999" },
		{ "idempotency_ttl", "0" },
		{ "idempotency_ttl", "31622401" },
		{ "idempotency_ttl", "-1" },
		{ "idempotency_ttl", " 5" },
		{ "idempotency_ttl", "99999999999999999999" },
		/* words: exact, lowercase */
		{ "access", "" },
		{ "access", "Open" },
		{ "access", "closed" },
		{ "access", "self " },
		{ "access", "0" },
		{ "signup", "" },
		{ "signup", "closed" },
		{ "signup", "ADMIN" },
		{ "require_preconditions", "" },
		{ "require_preconditions", "true" },
		{ "require_preconditions", "1" },
		{ "require_preconditions", "yes" },
		{ "require_preconditions", "On" },
		{ "log_level", "" },
		{ "log_level", "trace" },
		{ "log_level", "warning" },
		{ "log_level", "INFO" },
		{ "metrics", "" },
		{ "metrics", "yes" },
		{ "metrics", "1" },
		{ "metrics", "ON" },
		{ "metrics", "on " },
		{ "group_commit", "" },
		{ "group_commit", "true" },
		{ "group_commit", "0" },
		{ "group_commit", "Off" },
		/* paths */
		{ "registry", "" },
		{ "log_file", "" },
		{ "base_path", "" },
		{ "base_path", "api/" },
		{ "base_path", "api" },
		{ "base_path", "//" },
		{ "base_path", "/a//b" },
		{ "base_path", "/a//" },
		{ "base_path", "/a/../b" },
		{ "base_path", "/.." },
		{ "base_path", "/../" },
		{ "base_path", "/a/.." },
		{ "base_path", "/." },
		{ "base_path", "/a/./b" },
		{ "base_path", "/a b" },
		{ "base_path", "/a\r\n" },
		{ "base_path", "/a\nX-Evil: 1" },
		{ "base_path", "/a\tb" },
		{ "base_path", "/a?b" },
		{ "base_path", "/a#b" },
		{ "base_path", "/a%20b" },
		{ "base_path", "/a\"b" },
		{ "base_path", "/a<b>" },
		{ "base_path", "/a\\b" },
		{ "base_path", "/caf\xc3\xa9" },
		{ "base_path", "http://x/" },
	};

	return cr_make_param_array(struct bad_case, cases,
	    sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct bad_case *c, config, set_refuses)
{
	struct config cfg, before;
	char err[256] = "";

	config_defaults(&cfg);
	before = cfg;
	cr_assert(eq(int, config_set(&cfg, c->key, c->value, err,
	    sizeof(err)), -1), "%s = [%s] accepted", c->key, c->value);
	cr_assert(not(eq(str, err, "")), "no reason for %s", c->key);
	cr_assert(not(eq(ptr, strstr(err, c->key), NULL)),
	    "reason [%s] does not name the key", err);
	/* A refused value leaves the configuration as it was. */
	cr_assert(eq(int, memcmp(&cfg, &before, sizeof(cfg)), 0),
	    "%s = [%s] changed the config", c->key, c->value);
}

Test(config, unknown_key_is_refused_by_name)
{
	struct config cfg, before;
	char err[256] = "";

	config_defaults(&cfg);
	before = cfg;
	cr_assert(eq(int, config_set(&cfg, "max_bodies", "5", err,
	    sizeof(err)), -1));
	cr_assert(eq(str, err, "unknown key 'max_bodies'"));
	cr_assert(eq(int, config_set(&cfg, "Access", "open", err,
	    sizeof(err)), -1));
	cr_assert(eq(int, config_set(&cfg, "", "open", err,
	    sizeof(err)), -1));
	cr_assert(eq(int, memcmp(&cfg, &before, sizeof(cfg)), 0));
}

Test(config, number_errors_name_the_bounds)
{
	struct config cfg;
	char err[256] = "";

	config_defaults(&cfg);
	cr_assert(eq(int, config_set(&cfg, "max_depth", "65", err,
	    sizeof(err)), -1));
	cr_assert(eq(str, err, "'max_depth' wants a whole number from 1 "
	    "to 64"));
}

Test(config, base_path_length_is_bounded)
{
	struct config cfg;
	char err[256] = "", v[CONFIG_BASE_PATH_MAX + 8];

	config_defaults(&cfg);
	/* "/" + 253 letters: 254 bytes, 255 with the added '/', fits. */
	memset(v, 'a', sizeof(v));
	v[0] = '/';
	v[CONFIG_BASE_PATH_MAX - 2] = '\0';
	cr_assert(eq(int, config_set(&cfg, "base_path", v, err,
	    sizeof(err)), 0), "%s", err);
	cr_assert(eq(sz, strlen(cfg.base_path), CONFIG_BASE_PATH_MAX - 1));
	cr_assert(eq(chr, cfg.base_path[CONFIG_BASE_PATH_MAX - 2], '/'));
	/* One more byte no longer fits with its slash and NUL. */
	config_defaults(&cfg);
	memset(v, 'a', sizeof(v));
	v[0] = '/';
	v[CONFIG_BASE_PATH_MAX - 1] = '\0';
	cr_assert(eq(int, config_set(&cfg, "base_path", v, err,
	    sizeof(err)), -1));
	cr_assert(eq(str, cfg.base_path, "/"));
}

Test(config, registry_path_length_is_bounded)
{
	struct config cfg;
	char err[256] = "";
	char *v = malloc(CONFIG_PATH_MAX + 1);

	cr_assert(not(eq(ptr, v, NULL)));
	config_defaults(&cfg);
	memset(v, 'r', CONFIG_PATH_MAX);
	v[CONFIG_PATH_MAX - 1] = '\0';
	cr_assert(eq(int, config_set(&cfg, "registry", v, err,
	    sizeof(err)), 0), "%s", err);
	cr_assert(eq(sz, strlen(cfg.registry), CONFIG_PATH_MAX - 1));
	config_defaults(&cfg);
	v[CONFIG_PATH_MAX - 1] = 'r';
	v[CONFIG_PATH_MAX] = '\0';
	cr_assert(eq(int, config_set(&cfg, "registry", v, err,
	    sizeof(err)), -1));
	cr_assert(eq(str, cfg.registry, USERREG_STATE_DIR "/users.db"));
	free(v);
}

/* ---- file syntax ------------------------------------------------------- */

Test(config, comments_blank_lines_and_spacing_are_accepted)
{
	struct config cfg;
	char err[256];

	write_conf(
	    "# userreg.conf\n"
	    "\n"
	    "   \n"
	    "\t\n"
	    "   # an indented comment = with an equals sign\n"
	    "#access = nonsense\n"
	    "access=self\n"
	    "  max_depth   =   12  \n"
	    "\tsignup\t=\tadmin\t\n"
	    "log_level = warn\r\n"
	    "base_path = /api\r\n"
	    "busy_timeout_ms = 7");	/* last line without newline */
	cr_assert(eq(int, load(&cfg, err, sizeof(err)), 0), "%s", err);
	cr_assert(eq(int, (int)cfg.access, (int)CONFIG_ACCESS_SELF));
	cr_assert(eq(int, cfg.max_depth, 12));
	cr_assert(eq(int, (int)cfg.signup, (int)CONFIG_SIGNUP_ADMIN));
	cr_assert(eq(int, (int)cfg.log_level, (int)CONFIG_LOG_WARN));
	cr_assert(eq(str, cfg.base_path, "/api/"));
	cr_assert(eq(int, cfg.busy_timeout_ms, 7));
}

Test(config, value_keeps_inner_spaces_and_equals_signs)
{
	struct config cfg;
	char err[256];

	write_conf("registry =  /srv/my dir/a=b.db  \n");
	cr_assert(eq(int, load(&cfg, err, sizeof(err)), 0), "%s", err);
	cr_assert(eq(str, cfg.registry, "/srv/my dir/a=b.db"));
}

struct file_error_case {
	char text[96];
	char want[96];		/* the error after "PATH:" */
};

ParameterizedTestParameters(config, load_refuses)
{
	static struct file_error_case cases[] = {
		{ "access self\n", "1: expected key = value" },
		{ "# ok\n\nmax_depth\n", "3: expected key = value" },
		{ "access = open\nno equals sign here\n",
		    "2: expected key = value" },
		{ "colour = blue\n", "1: unknown key 'colour'" },
		{ "= open\n", "1: unknown key ''" },
		{ "access = maybe\n", "1: bad value for 'access'" },
		{ "access =\n", "1: bad value for 'access'" },
		{ "max_body = -1\n", "1: 'max_body' wants a whole number "
		    "from 1 to 16777216" },
		{ "max_body = 1e3\n", "1: 'max_body' wants a whole number "
		    "from 1 to 16777216" },
		{ "max_body = 99999999999999999999\n", "1: 'max_body' wants "
		    "a whole number from 1 to 16777216" },
		{ "\n\nbase_path = api/\n", "3: bad value for 'base_path'" },
		{ "base_path = /a//b\n", "1: bad value for 'base_path'" },
		{ "base_path = /a/../b\n", "1: bad value for 'base_path'" },
		{ "base_path = /a b\n", "1: bad value for 'base_path'" },
		{ "access = open # trailing comment\n",
		    "1: bad value for 'access'" },
	};

	return cr_make_param_array(struct file_error_case, cases,
	    sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct file_error_case *c, config, load_refuses)
{
	struct config cfg;
	char err[512], want[512];

	write_conf(c->text);
	cr_assert(eq(int, load(&cfg, err, sizeof(err)), -1), "[%s] accepted",
	    c->text);
	snprintf(want, sizeof(want), "%s:%s", confpath, c->want);
	cr_assert(eq(str, err, want));
}

Test(config, missing_file_is_an_error_naming_it)
{
	struct config cfg;
	char err[512] = "", path[256];

	snprintf(path, sizeof(path), "%s/nope.conf", tmpdir);
	config_defaults(&cfg);
	cr_assert(eq(int, config_load(&cfg, path, err, sizeof(err)), -1));
	cr_assert(eq(int, strncmp(err, path, strlen(path)), 0), "%s", err);
}

/* A line of n bytes (newline included): a comment filled with 'x'. */
static char *
comment_line(size_t n)
{
	char *s = malloc(n + 1);

	cr_assert(not(eq(ptr, s, NULL)));
	memset(s, 'x', n);
	s[0] = '#';
	s[n - 1] = '\n';
	s[n] = '\0';
	return s;
}

Test(config, line_within_the_limit_is_read)
{
	struct config cfg;
	char err[512];
	char *line = comment_line(CONFIG_LINE_MAX - 1);
	char *text = malloc(CONFIG_LINE_MAX + 64);

	cr_assert(not(eq(ptr, text, NULL)));
	snprintf(text, CONFIG_LINE_MAX + 64, "%smax_depth = 9\n", line);
	write_conf(text);
	cr_assert(eq(int, load(&cfg, err, sizeof(err)), 0), "%s", err);
	cr_assert(eq(int, cfg.max_depth, 9));
	free(line);
	free(text);
}

Test(config, line_too_long_is_refused_not_split)
{
	struct config cfg;
	char err[512], want[512];
	/* Split at the buffer size, the tail would read "max_depth = 9". */
	char *text = malloc(2 * CONFIG_LINE_MAX);
	size_t n;

	cr_assert(not(eq(ptr, text, NULL)));
	memset(text, ' ', 2 * CONFIG_LINE_MAX);
	memcpy(text, "#", 1);
	n = CONFIG_LINE_MAX - 1;
	memcpy(text + n, "max_depth = 9\n", 14);
	n += 14;
	write_conf_len(text, n);
	cr_assert(eq(int, load(&cfg, err, sizeof(err)), -1));
	snprintf(want, sizeof(want), "%s:1: line too long", confpath);
	cr_assert(eq(str, err, want));
	cr_assert(eq(int, cfg.max_depth, 8));
	free(text);
}

Test(config, line_too_long_reports_its_line_number)
{
	struct config cfg;
	char err[512], want[512];
	char *line = comment_line(CONFIG_LINE_MAX + 100);
	char *text = malloc(CONFIG_LINE_MAX + 200);

	cr_assert(not(eq(ptr, text, NULL)));
	snprintf(text, CONFIG_LINE_MAX + 200, "access = self\n\n%s", line);
	write_conf(text);
	cr_assert(eq(int, load(&cfg, err, sizeof(err)), -1));
	snprintf(want, sizeof(want), "%s:3: line too long", confpath);
	cr_assert(eq(str, err, want));
	free(line);
	free(text);
}

/* ---- paths in a file are taken from the file's directory ---------------- */

/* The fixture's directory as the file's readers see it (no symlinks). */
static void
real_tmpdir(char buf[PATH_MAX])
{
	cr_assert(not(eq(ptr, realpath(tmpdir, buf), NULL)));
}

Test(config, relative_registry_is_taken_from_the_files_directory)
{
	struct config cfg;
	char err[512], dir[PATH_MAX], want[PATH_MAX + 64];

	real_tmpdir(dir);
	write_conf("registry = users.db\n");
	cr_assert(eq(int, load(&cfg, err, sizeof(err)), 0), "%s", err);
	snprintf(want, sizeof(want), "%s/users.db", dir);
	cr_assert(eq(str, cfg.registry, want));
	write_conf("registry = var/my dir/a=b.db\n");
	cr_assert(eq(int, load(&cfg, err, sizeof(err)), 0), "%s", err);
	snprintf(want, sizeof(want), "%s/var/my dir/a=b.db", dir);
	cr_assert(eq(str, cfg.registry, want));
}

Test(config, relative_log_file_is_taken_from_the_files_directory)
{
	struct config cfg;
	char err[512], dir[PATH_MAX], want[PATH_MAX + 64];

	real_tmpdir(dir);
	write_conf("log_file = log/userreg.log\n");
	cr_assert(eq(int, load(&cfg, err, sizeof(err)), 0), "%s", err);
	snprintf(want, sizeof(want), "%s/log/userreg.log", dir);
	cr_assert(eq(str, cfg.log_file, want));
}

Test(config, config_named_by_a_relative_path_still_gives_absolute_paths)
{
	struct config cfg;
	char err[512], dir[PATH_MAX], want[PATH_MAX + 64], cwd[PATH_MAX], rel[128];

	real_tmpdir(dir);
	write_conf("registry = users.db\nlog_file = u.log\n");
	cr_assert(not(eq(ptr, getcwd(cwd, sizeof(cwd)), NULL)));
	/* From the file's own directory, and from its parent. */
	cr_assert(eq(int, chdir(tmpdir), 0));
	config_defaults(&cfg);
	cr_assert(eq(int, config_load(&cfg, "userreg.conf", err, sizeof(err)),
	    0), "%s", err);
	snprintf(want, sizeof(want), "%s/users.db", dir);
	cr_assert(eq(str, cfg.registry, want));
	snprintf(want, sizeof(want), "%s/u.log", dir);
	cr_assert(eq(str, cfg.log_file, want));
	cr_assert(eq(int, chdir(".."), 0));
	config_defaults(&cfg);
	snprintf(rel, sizeof(rel), "%s/userreg.conf", strrchr(tmpdir, '/') + 1);
	cr_assert(eq(int, config_load(&cfg, rel, err, sizeof(err)), 0), "%s",
	    err);
	snprintf(want, sizeof(want), "%s/users.db", dir);
	cr_assert(eq(str, cfg.registry, want));
	cr_assert(eq(int, chdir(cwd), 0));
}

Test(config, absolute_paths_in_a_file_are_kept)
{
	struct config cfg;
	char err[512];

	write_conf("registry = /srv/userreg/users.db\n"
	    "log_file = /var/log/userreg.log\n");
	cr_assert(eq(int, load(&cfg, err, sizeof(err)), 0), "%s", err);
	cr_assert(eq(str, cfg.registry, "/srv/userreg/users.db"));
	cr_assert(eq(str, cfg.log_file, "/var/log/userreg.log"));
}

Test(config, postgresql_registry_in_a_file_is_kept_as_it_is)
{
	struct config cfg;
	char err[512];

	write_conf("registry = postgresql://userreg@db.example.org/reg\n");
	cr_assert(eq(int, load(&cfg, err, sizeof(err)), 0), "%s", err);
	cr_assert(eq(str, cfg.registry,
	    "postgresql://userreg@db.example.org/reg"));
	write_conf("registry = postgres:///reg?host=/run/postgresql\n");
	cr_assert(eq(int, load(&cfg, err, sizeof(err)), 0), "%s", err);
	cr_assert(eq(str, cfg.registry, "postgres:///reg?host=/run/postgresql"));
}

Test(config, relative_path_too_long_once_taken_from_the_directory)
{
	struct config cfg;
	char err[512], want[512];
	char *text = malloc(CONFIG_PATH_MAX + 64);
	size_t n;

	cr_assert(not(eq(ptr, text, NULL)));
	/*
	 * 4080 bytes fit a path and the line; the directory in front makes
	 * them more than CONFIG_PATH_MAX.
	 */
	n = (size_t)snprintf(text, CONFIG_PATH_MAX + 64, "registry = ");
	memset(text + n, 'r', 4080);
	n += 4080;
	memcpy(text + n, "\n", 2);
	write_conf_len(text, n + 1);
	cr_assert(eq(int, load(&cfg, err, sizeof(err)), -1));
	snprintf(want, sizeof(want), "%s:1: 'registry' is too long once taken "
	    "from the config file's directory", confpath);
	cr_assert(eq(str, err, want));
	cr_assert(eq(str, cfg.registry, USERREG_STATE_DIR "/users.db"));
	free(text);
}
