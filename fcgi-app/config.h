/* config.h: userreg.conf, "key = value" lines checked against a table. */
#ifndef USERREG_CONFIG_H
#define USERREG_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define CONFIG_PATH_MAX 4096		/* bytes of the registry path */
#define CONFIG_BASE_PATH_MAX 256	/* bytes of base_path */
#define CONFIG_LINE_MAX 4096		/* bytes of one config line */
#define CONFIG_BODY_MAX (16 * 1024 * 1024)	/* highest max_body */

/*
 * Where the registry lives when no config names it; the build sets it
 * from its state directory (LOCALSTATEDIR/lib/userreg).
 */
#ifndef USERREG_STATE_DIR
#define USERREG_STATE_DIR "/var/lib/userreg"
#endif

enum config_access {
	CONFIG_ACCESS_OPEN = 0,	/* anyone may do anything */
	CONFIG_ACCESS_SELF	/* users edit themselves; admins edit anyone */
};

enum config_signup {
	CONFIG_SIGNUP_OPEN = 0,	/* anyone may POST /users */
	CONFIG_SIGNUP_ADMIN	/* only admins may */
};

enum config_log {
	CONFIG_LOG_ERROR = 0,
	CONFIG_LOG_WARN,
	CONFIG_LOG_INFO,
	CONFIG_LOG_DEBUG
};

struct config {
	char registry[CONFIG_PATH_MAX];		/* a path or a postgresql:// URI */
	char log_file[CONFIG_PATH_MAX];		/* "" for stderr */
	char base_path[CONFIG_BASE_PATH_MAX];	/* starts and ends with '/' */
	enum config_access access;
	enum config_signup signup;
	int require_preconditions;
	size_t max_body;
	int max_depth;
	int busy_timeout_ms;
	int64_t idempotency_ttl;		/* seconds */
	enum config_log log_level;
	int metrics;				/* serve GET /metrics */
	int group_commit;			/* a pool runs a writer */
};

/*
 * Returns 1 when a registry value names a PostgreSQL database (a libpq
 * URI: postgresql:// or postgres://), 0 when it is a SQLite file's path,
 * whatever else it holds.
 */
int config_is_postgresql(const char *registry);

/* Fills cfg with every key's default: the service runs without a file. */
void config_defaults(struct config *cfg);

/*
 * Reads path over cfg (which holds defaults or earlier values). Unknown
 * keys, bad values and values out of bounds are errors. A relative path
 * in a path key (registry, log_file) is taken from the directory of the
 * file, made absolute, so every process reading the file, whatever its
 * working directory, names the same files. Returns 0 on success; on
 * failure returns -1 and writes "FILE:LINE: why" into err.
 */
int config_load(struct config *cfg, const char *path, char *err,
    size_t errlen);

/*
 * Sets one key from its text value, as a config line would. Returns 0,
 * or -1 with the reason in err.
 */
int config_set(struct config *cfg, const char *key, const char *value,
    char *err, size_t errlen);

#endif
