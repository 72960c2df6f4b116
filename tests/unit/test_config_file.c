/* test_config_file.c: config files as config_load() reads them, byte by byte. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "support.h"

static char dir[64];
static char path[128];

static void
setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/test_config_file.XXXXXX");
	cr_assert(not(eq(ptr, mkdtemp(dir), NULL)));
	snprintf(path, sizeof(path), "%s/userreg.conf", dir);
}

static void
teardown(void)
{
	support_remove_dir(dir);
}

TestSuite(config_file, .init = setup, .fini = teardown);

/* Writes len bytes of text as the config file. */
static void
write_bytes(const char *text, size_t len)
{
	FILE *f = fopen(path, "wb");

	cr_assert(not(eq(ptr, f, NULL)));
	cr_assert(eq(sz, fwrite(text, 1, len, f), len));
	cr_assert(eq(int, fclose(f), 0));
}

Test(config_file, nul_byte_in_a_line_is_an_error_not_a_shorter_value)
{
	static const char text[] = "registry = /srv/a\0/b\n";
	struct config cfg;
	char err[512];

	write_bytes(text, sizeof(text) - 1);
	config_defaults(&cfg);
	cr_assert(eq(int, config_load(&cfg, path, err, sizeof(err)), -1));
	cr_assert(not(eq(ptr, strstr(err, ":1: NUL byte"), NULL)), "%s", err);
}

Test(config_file, nul_byte_on_a_last_line_without_newline_is_an_error)
{
	static const char text[] = "max_depth = 8\nregistry = /srv/a\0/b";
	struct config cfg;
	char err[512];

	write_bytes(text, sizeof(text) - 1);
	config_defaults(&cfg);
	cr_assert(eq(int, config_load(&cfg, path, err, sizeof(err)), -1));
	cr_assert(not(eq(ptr, strstr(err, ":2: NUL byte"), NULL)), "%s", err);
}

Test(config_file, relative_registry_holding_a_scheme_is_still_a_relative_file)
{
	struct config cfg;
	char err[512], want[256];

	write_bytes("registry = data://users.db\n", 27);
	config_defaults(&cfg);
	cr_assert(eq(int, config_load(&cfg, path, err, sizeof(err)), 0), "%s",
	    err);
	/* Taken from the file's directory, whatever the working directory. */
	snprintf(want, sizeof(want), "%s/data://users.db", dir);
	cr_assert(eq(str, cfg.registry, want));
}

Test(config_file, postgresql_uris_are_left_as_they_are)
{
	static const char *const uris[] = {
		"postgresql://u@127.0.0.1/db", "postgres:///db?host=/run/pg",
	};
	struct config cfg;
	char line[128], err[512];
	size_t i;

	for (i = 0; i < sizeof(uris) / sizeof(uris[0]); i++) {
		snprintf(line, sizeof(line), "registry = %s\n", uris[i]);
		write_bytes(line, strlen(line));
		config_defaults(&cfg);
		cr_assert(eq(int, config_load(&cfg, path, err, sizeof(err)), 0),
		    "%s", err);
		cr_assert(eq(str, cfg.registry, (char *)uris[i]));
		cr_assert(eq(int, config_is_postgresql(cfg.registry), 1));
	}
	cr_assert(eq(int, config_is_postgresql("sqlite://x"), 0));
	cr_assert(eq(int, config_is_postgresql("/srv/postgresql://x"), 0));
}

Test(config_file, an_overlong_line_is_an_error)
{
	struct config cfg;
	char *text, err[512];
	size_t n = CONFIG_LINE_MAX + 10;

	cr_assert(not(eq(ptr, (text = malloc(n)), NULL)));
	memset(text, '#', n);
	text[n - 1] = '\n';
	write_bytes(text, n);
	free(text);
	config_defaults(&cfg);
	cr_assert(eq(int, config_load(&cfg, path, err, sizeof(err)), -1));
	cr_assert(not(eq(ptr, strstr(err, ":1: line too long"), NULL)), "%s",
	    err);
}
