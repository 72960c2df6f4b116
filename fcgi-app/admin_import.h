/* admin_import.h: import, a file of users loaded all or nothing. */
#ifndef USERREG_ADMIN_IMPORT_H
#define USERREG_ADMIN_IMPORT_H

#include <stddef.h>
#include <stdint.h>

#include "admin_args.h"
#include "admin_env.h"
#include "user.h"

/*
 * An import reads what admin_export.h writes, or a file of bare
 * representations (one a line, as a generator might write them): every
 * line is checked as the API checks a user, versions and timestamps
 * included, and every bad line is reported before anything is kept.
 */

/* Longest line read, newline excluded; a longer one is a bad line. */
#define ADMIN_IMPORT_LINE_MAX 65536
/* Room for why a line is bad. */
#define ADMIN_IMPORT_WHY_SIZE 192

/* What one line of an import file is. */
enum admin_line_kind {
	ADMIN_LINE_BLANK = 0,	/* nothing but white space: skipped */
	ADMIN_LINE_USER,	/* a representation */
	ADMIN_LINE_HEADER,	/* {"userreg_export":1,"revision":N} */
	ADMIN_LINE_BAD
};

/* One line, parsed. */
struct admin_line {
	enum admin_line_kind kind;
	struct user u;		/* ADMIN_LINE_USER: roles sorted */
	int64_t revision;	/* ADMIN_LINE_HEADER */
	char why[ADMIN_IMPORT_WHY_SIZE];	/* ADMIN_LINE_BAD */
};

/*
 * Parses the time t as the representation writes it,
 * "YYYY-MM-DDTHH:MM:SSZ" (UTC, years 1970-9999, no leap second), into
 * unix seconds. Returns 0, or -1 for anything else.
 */
int admin_import_time(const char *s, size_t len, int64_t *t);

/*
 * Parses one line of len bytes (line[len] must be '\0'; no newline) into
 * out: strict JSON (as jsonio.h parses bodies), then either the export
 * header, or a user: username, version (a decimal string) and the two
 * times required, email, display_name (each a string or null) and roles
 * optional, no other member, each value valid as API.md says, created_at
 * not after updated_at. A bad line says why in out->why.
 */
void admin_import_parse(const char *line, size_t len, struct admin_line *out);

/*
 * `userreg import FILE`: loads every user of FILE (- for standard input)
 * with registry_load() in one write transaction, then raises the
 * revision counter to the header's revision or the highest version,
 * whichever is higher, and commits. Any bad line, a username or email
 * (compared case-insensitively) twice in the file, one taken in the
 * registry, or a version above the header's revision refuses the whole
 * file: every bad line is reported as FILE:LINE: why on env->err and
 * nothing is written. Returns ADMIN_EXIT_OK; ADMIN_EXIT_USAGE when a line
 * is invalid; ADMIN_EXIT_CONFLICT when every bad line is a name or email
 * taken twice; ADMIN_EXIT_FAILURE when the file or the registry fails.
 */
int admin_import(struct admin_env *env, const struct admin_args *a);

#endif
