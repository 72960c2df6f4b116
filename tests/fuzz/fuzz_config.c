/*
 * fuzz_config.c: libFuzzer harness for the config parser. The input is
 * written as a config file into a fresh directory and read with
 * config_load() over the defaults: it either succeeds with every field
 * within its bounds, or fails with a "FILE:..." message. The input split
 * at its first NUL byte is also handed to config_set() as key and value.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* s is a NUL-terminated string within its field of size n. */
static size_t
field_len(const char *s, size_t n)
{
	size_t len = strnlen(s, n);

	if (len == n)
		abort();
	return len;
}

/* The rules set_base_path() enforces, checked on what it stored. */
static void
check_base_path(const char *b)
{
	size_t len = field_len(b, CONFIG_BASE_PATH_MAX), i, n;
	const char *seg;

	if (len == 0 || b[0] != '/' || b[len - 1] != '/')
		abort();
	for (i = 0; i < len; i++) {
		char c = b[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr("-._~/", c) != NULL))
			abort();
	}
	/* Segments between the slashes: none empty, ".", "..". */
	for (seg = b + 1; *seg != '\0'; seg += n + 1) {
		n = strcspn(seg, "/");
		if (n == 0 || (n == 1 && seg[0] == '.') ||
		    (n == 2 && seg[0] == '.' && seg[1] == '.'))
			abort();
	}
}

/*
 * Every field of cfg within its bounds. from_file: the paths went
 * through config_load(), which makes a relative file path absolute.
 */
static void
check_config(const struct config *cfg, int from_file)
{
	size_t len;

	/*
	 * From a file the registry is an absolute path or a URI that
	 * registry_open() takes for PostgreSQL: anything else opens as a
	 * SQLite file, and a relative one would depend on the working
	 * directory.
	 */
	len = field_len(cfg->registry, sizeof(cfg->registry));
	if (len == 0 || (from_file && cfg->registry[0] != '/' &&
	    strncmp(cfg->registry, "postgresql://", 13) != 0 &&
	    strncmp(cfg->registry, "postgres://", 11) != 0))
		abort();
	len = field_len(cfg->log_file, sizeof(cfg->log_file));
	if (from_file && len > 0 && cfg->log_file[0] != '/')
		abort();
	check_base_path(cfg->base_path);
	if ((cfg->access != CONFIG_ACCESS_OPEN &&
	    cfg->access != CONFIG_ACCESS_SELF) ||
	    (cfg->signup != CONFIG_SIGNUP_OPEN &&
	    cfg->signup != CONFIG_SIGNUP_ADMIN) ||
	    (cfg->require_preconditions != 0 &&
	    cfg->require_preconditions != 1) ||
	    (cfg->metrics != 0 && cfg->metrics != 1) ||
	    (cfg->group_commit != 0 && cfg->group_commit != 1) ||
	    cfg->log_level < CONFIG_LOG_ERROR ||
	    cfg->log_level > CONFIG_LOG_DEBUG)
		abort();
	if (cfg->max_body < 1 || cfg->max_body > CONFIG_BODY_MAX ||
	    cfg->max_depth < 1 || cfg->max_depth > 64 ||
	    cfg->busy_timeout_ms < 0 || cfg->busy_timeout_ms > 600000 ||
	    cfg->idempotency_ttl < 1 ||
	    cfg->idempotency_ttl > 366LL * 24 * 3600)
		abort();
}

/* A failure says why: a non-empty message, starting with prefix. */
static void
check_error(const char *err, size_t errlen, const char *prefix)
{
	size_t len = field_len(err, errlen);

	if (len == 0 || strncmp(err, prefix, strlen(prefix)) != 0)
		abort();
}

/*
 * Reads the input as a config file, in a directory of its own that is
 * gone again before any check can stop the run.
 */
static void
fuzz_load(const uint8_t *data, size_t size)
{
	char dir[] = "/tmp/userreg-fuzz-config-XXXXXX";
	char path[sizeof(dir) + 16], prefix[sizeof(path) + 1];
	char err[512], err2[512];
	struct config cfg, again;
	int rc, rc2 = 0;
	FILE *f;

	if (mkdtemp(dir) == NULL)
		abort();
	snprintf(path, sizeof(path), "%s/userreg.conf", dir);
	if ((f = fopen(path, "w")) == NULL)
		abort();
	if (fwrite(data, 1, size, f) != size || fclose(f) != 0)
		abort();
	config_defaults(&cfg);
	memset(err, 0, sizeof(err));
	if ((rc = config_load(&cfg, path, err, sizeof(err))) == 0) {
		again = cfg;
		rc2 = config_load(&again, path, err2, sizeof(err2));
	}
	unlink(path);
	rmdir(dir);

	if (rc != 0) {
		snprintf(prefix, sizeof(prefix), "%s:", path);
		check_error(err, sizeof(err), prefix);
		return;
	}
	check_config(&cfg, 1);
	/* Every key sets its value outright: a second read changes nothing. */
	if (rc2 != 0 || memcmp(&cfg, &again, sizeof(cfg)) != 0)
		abort();
}

static void
fuzz_set(const uint8_t *data, size_t size)
{
	struct config cfg;
	char err[256], *copy;
	const char *key, *value;
	size_t klen;

	if ((copy = malloc(size + 2)) == NULL)
		return;
	memcpy(copy, data, size);
	copy[size] = copy[size + 1] = '\0';
	key = copy;
	klen = strlen(key);
	value = klen < size ? copy + klen + 1 : copy + size + 1;
	config_defaults(&cfg);
	memset(err, 0, sizeof(err));
	if (config_set(&cfg, key, value, err, sizeof(err)) != 0)
		check_error(err, sizeof(err), "");
	else
		check_config(&cfg, 0);
	free(copy);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_load(data, size);
	fuzz_set(data, size);
	return 0;
}
