/* config.c: userreg.conf, "key = value" lines checked against a table. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum config_type { CT_PATH, CT_LOCATION, CT_BASE_PATH, CT_INT, CT_ENUM };

struct config_key {
	const char *name;
	enum config_type type;
	size_t offset;		/* of the field in struct config */
	long long min, max;	/* CT_INT bounds */
	const char *const *words;	/* CT_ENUM values by enum value */
};

static const char *const access_words[] = { "open", "self", NULL };
static const char *const signup_words[] = { "open", "admin", NULL };
static const char *const bool_words[] = { "off", "on", NULL };
static const char *const log_words[] = {
	"error", "warn", "info", "debug", NULL
};

#define OFF(f) offsetof(struct config, f)
static const struct config_key keys[] = {
	{ "registry", CT_LOCATION, OFF(registry), 0, 0, NULL },
	{ "log_file", CT_PATH, OFF(log_file), 0, 0, NULL },
	{ "base_path", CT_BASE_PATH, OFF(base_path), 0, 0, NULL },
	{ "access", CT_ENUM, OFF(access), 0, 0, access_words },
	{ "signup", CT_ENUM, OFF(signup), 0, 0, signup_words },
	{ "require_preconditions", CT_ENUM, OFF(require_preconditions), 0, 0,
	    bool_words },
	{ "max_body", CT_INT, OFF(max_body), 1, CONFIG_BODY_MAX, NULL },
	{ "max_depth", CT_INT, OFF(max_depth), 1, 64, NULL },
	{ "busy_timeout_ms", CT_INT, OFF(busy_timeout_ms), 0, 600000, NULL },
	{ "idempotency_ttl", CT_INT, OFF(idempotency_ttl), 1,
	    366LL * 24 * 3600, NULL },
	{ "log_level", CT_ENUM, OFF(log_level), 0, 0, log_words },
	{ "metrics", CT_ENUM, OFF(metrics), 0, 0, bool_words },
	{ "group_commit", CT_ENUM, OFF(group_commit), 0, 0, bool_words },
};
#undef OFF

void
config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->registry, sizeof(cfg->registry), "%s/users.db",
	    USERREG_STATE_DIR);
	strcpy(cfg->base_path, "/");
	cfg->access = CONFIG_ACCESS_OPEN;
	cfg->signup = CONFIG_SIGNUP_OPEN;
	cfg->require_preconditions = 1;
	cfg->max_body = 65536;
	cfg->max_depth = 8;
	cfg->busy_timeout_ms = 5000;
	cfg->idempotency_ttl = 24 * 3600;
	cfg->log_level = CONFIG_LOG_INFO;
	cfg->metrics = 1;
	cfg->group_commit = 1;
}

/* Digits only, within [min, max]: no sign, no spaces, no suffix. */
static int
parse_int(const char *s, long long min, long long max, long long *out)
{
	long long v = 0;

	if (*s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		if (v > (max - (*s - '0')) / 10)
			return -1;
		v = v * 10 + (*s - '0');
	}
	if (v < min)
		return -1;
	*out = v;
	return 0;
}

/*
 * A base path is emitted in Location headers and problem types, so it is
 * held to plain URI path characters with no empty, "." or ".." segments.
 */
static int
set_base_path(char *dst, const char *v)
{
	size_t len = strlen(v), i;
	const char *seg;

	if (v[0] != '/' || len + 2 > CONFIG_BASE_PATH_MAX)
		return -1;
	for (i = 0; i < len; i++) {
		char c = v[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr("-._~/", c) != NULL))
			return -1;
	}
	for (seg = v + 1; *seg != '\0';) {
		size_t n = strcspn(seg, "/");
		if ((n == 0 && seg[n] == '/') || (n == 1 && seg[0] == '.') ||
		    (n == 2 && seg[0] == '.' && seg[1] == '.'))
			return -1;
		seg += n + (seg[n] == '/');
	}
	memcpy(dst, v, len + 1);
	if (dst[len - 1] != '/')
		memcpy(dst + len, "/", 2);
	return 0;
}

int
config_set(struct config *cfg, const char *key, const char *value,
    char *err, size_t errlen)
{
	const struct config_key *k = NULL;
	char *field;
	long long n;
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strcmp(keys[i].name, key) == 0)
			k = &keys[i];
	if (k == NULL) {
		snprintf(err, errlen, "unknown key '%s'", key);
		return -1;
	}
	field = (char *)cfg + k->offset;
	switch (k->type) {
	case CT_PATH:
	case CT_LOCATION:
		if (value[0] == '\0' || strlen(value) >= CONFIG_PATH_MAX)
			goto bad;
		strcpy(field, value);
		return 0;
	case CT_BASE_PATH:
		if (set_base_path(field, value) != 0)
			goto bad;
		return 0;
	case CT_INT:
		if (parse_int(value, k->min, k->max, &n) != 0) {
			snprintf(err, errlen, "'%s' wants a whole number "
			    "from %lld to %lld", key, k->min, k->max);
			return -1;
		}
		if (k->offset == offsetof(struct config, max_body))
			cfg->max_body = (size_t)n;
		else if (k->offset == offsetof(struct config, idempotency_ttl))
			cfg->idempotency_ttl = n;
		else
			*(int *)(void *)field = (int)n;
		return 0;
	case CT_ENUM:
		for (i = 0; k->words[i] != NULL; i++)
			if (strcmp(k->words[i], value) == 0) {
				*(int *)(void *)field = (int)i;
				return 0;
			}
		goto bad;
	}
bad:
	snprintf(err, errlen, "bad value for '%s'", key);
	return -1;
}

/* Trims spaces and tabs at both ends, in place. */
static char *
trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' ||
	    end[-1] == '\r' || end[-1] == '\n'))
		*--end = '\0';
	return s;
}

int
config_is_postgresql(const char *registry)
{
	return strncmp(registry, "postgresql://", 13) == 0 ||
	    strncmp(registry, "postgres://", 11) == 0;
}

/* Returns 1 when key's value names a file: a path, not a URI. */
static int
names_file(const char *key, const char *value)
{
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strcmp(keys[i].name, key) == 0)
			return keys[i].type == CT_PATH ||
			    (keys[i].type == CT_LOCATION &&
			    !config_is_postgresql(value));
	return 0;
}

/*
 * Writes into dir (CONFIG_PATH_MAX bytes) the absolute directory of the
 * file at path. Returns 0, or -1 with errno set.
 */
static int
file_dir(const char *path, char dir[CONFIG_PATH_MAX])
{
	char copy[CONFIG_PATH_MAX], real[PATH_MAX], *slash;

	if (snprintf(copy, sizeof(copy), "%s", path) >= (int)sizeof(copy)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((slash = strrchr(copy, '/')) == NULL)
		strcpy(copy, ".");
	else if (slash == copy)
		copy[1] = '\0';
	else
		*slash = '\0';
	if (realpath(copy, real) == NULL)
		return -1;
	if (snprintf(dir, CONFIG_PATH_MAX, "%s", real) >= CONFIG_PATH_MAX) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* Sets key from a file line, a relative path taken from dir. */
static int
set_from_file(struct config *cfg, const char *dir, const char *key,
    const char *value, char *err, size_t errlen)
{
	char joined[CONFIG_PATH_MAX + 1];

	if (value[0] == '/' || value[0] == '\0' || !names_file(key, value))
		return config_set(cfg, key, value, err, errlen);
	if (snprintf(joined, sizeof(joined), "%s/%s", strcmp(dir, "/") == 0 ?
	    "" : dir, value) >= CONFIG_PATH_MAX) {
		snprintf(err, errlen, "'%s' is too long once taken from the "
		    "config file's directory", key);
		return -1;
	}
	return config_set(cfg, key, joined, err, errlen);
}

int
config_load(struct config *cfg, const char *path, char *err, size_t errlen)
{
	char why[256], dir[CONFIG_PATH_MAX];
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	FILE *f;
	int lineno = 0, rc = -1;

	if ((f = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (file_dir(path, dir) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		fclose(f);
		return -1;
	}
	while ((n = getline(&line, &cap, f)) >= 0) {
		char *s, *eq;

		lineno++;
		if (n >= CONFIG_LINE_MAX) {
			snprintf(err, errlen, "%s:%d: line too long", path,
			    lineno);
			goto out;
		}
		/* A NUL would cut the value short unseen. */
		if (strlen(line) != (size_t)n) {
			snprintf(err, errlen, "%s:%d: NUL byte in line", path,
			    lineno);
			goto out;
		}
		s = trim(line);
		if (*s == '\0' || *s == '#')
			continue;
		if ((eq = strchr(s, '=')) == NULL) {
			snprintf(err, errlen, "%s:%d: expected key = value",
			    path, lineno);
			goto out;
		}
		*eq = '\0';
		if (set_from_file(cfg, dir, trim(s), trim(eq + 1), why,
		    sizeof(why)) != 0) {
			snprintf(err, errlen, "%s:%d: %s", path, lineno, why);
			goto out;
		}
	}
	if (ferror(f)) {
		snprintf(err, errlen, "%s: read error", path);
		goto out;
	}
	rc = 0;
out:
	free(line);
	fclose(f);
	return rc;
}
