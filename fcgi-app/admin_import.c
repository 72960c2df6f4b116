/* admin_import.c: import, a file of users loaded all or nothing. */
#include "admin_import.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "admin_keys.h"
#include "jsonio.h"
#include "registry.h"

/* Marks out bad, saying why. Returns -1. */
static int
bad(struct admin_line *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
bad(struct admin_line *out, const char *fmt, ...)
{
	va_list ap;

	out->kind = ADMIN_LINE_BAD;
	va_start(ap, fmt);
	vsnprintf(out->why, sizeof(out->why), fmt, ap);
	va_end(ap);
	return -1;
}

/* Reads n digits at s; -1 if one is not a digit. */
static int
digits(const char *s, int n)
{
	int v = 0, i;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = y / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

int
admin_import_time(const char *s, size_t len, int64_t *t)
{
	static const int mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30,
	    31, 30, 31 };
	int y, mo, d, h, mi, se, leap, last;

	if (len != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' ||
	    s[13] != ':' || s[16] != ':' || s[19] != 'Z')
		return -1;
	y = digits(s, 4);
	mo = digits(s + 5, 2);
	d = digits(s + 8, 2);
	h = digits(s + 11, 2);
	mi = digits(s + 14, 2);
	se = digits(s + 17, 2);
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 ||
	    mi < 0 || mi > 59 || se < 0 || se > 59)
		return -1;
	leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	last = mdays[mo - 1] + (mo == 2 && leap);
	if (d > last)
		return -1;
	*t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
	return 0;
}

/* {"userreg_export":1,"revision":N} and nothing else. */
static int
parse_header(struct json_object *o, struct admin_line *out)
{
	struct json_object *fmt = NULL, *rev = NULL;

	json_object_object_foreach(o, key, v) {
		if (strcmp(key, "userreg_export") == 0)
			fmt = v;
		else if (strcmp(key, "revision") == 0)
			rev = v;
		else
			return bad(out, "export header: unknown member '%.64s'",
			    key);
	}
	if (!json_object_is_type(fmt, json_type_int) ||
	    json_object_get_int64(fmt) != 1)
		return bad(out, "export header: userreg_export must be 1 "
		    "(the only format there is)");
	if (!json_object_is_type(rev, json_type_int) ||
	    json_object_get_int64(rev) < 0 ||
	    json_object_get_int64(rev) == INT64_MAX)
		return bad(out, "export header: revision must be a "
		    "non-negative integer");
	out->kind = ADMIN_LINE_HEADER;
	out->revision = json_object_get_int64(rev);
	return 0;
}

/* An optional text member: a string that check() accepts, or null. */
static int
read_text(struct json_object *v, const char *key, char *dst, size_t size,
    enum user_err (*check)(const char *, size_t), struct admin_line *out)
{
	const char *s;
	size_t len;
	enum user_err e;

	if (json_object_is_type(v, json_type_null))
		return 0;
	if (!jsonio_string(v, &s, &len)) {
		bad(out, "%s must be a string (or null)", key);
		return -1;
	}
	if ((e = check(s, len)) != USER_OK || len >= size) {
		bad(out, "%s: %s", key, user_err_str(e));
		return -1;
	}
	memcpy(dst, s, len + 1);
	return 0;
}

static int
read_roles(struct json_object *v, struct user *u, struct admin_line *out)
{
	const char *s;
	size_t i, n, len;
	enum user_err e;

	if (!json_object_is_type(v, json_type_array)) {
		bad(out, "roles must be an array of role names");
		return -1;
	}
	if ((n = json_object_array_length(v)) > USER_ROLES_MAX) {
		bad(out, "roles: at most %d roles", USER_ROLES_MAX);
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (!jsonio_string(json_object_array_get_idx(v, i), &s,
		    &len)) {
			bad(out, "roles/%zu must be a string", i);
			return -1;
		}
		if ((e = user_check_role(s, len)) != USER_OK) {
			bad(out, "roles/%zu: %s", i, user_err_str(e));
			return -1;
		}
		memcpy(u->roles[u->nroles++], s, len + 1);
	}
	if (user_sort_roles(u) != USER_OK) {
		bad(out, "roles: a role is named twice");
		return -1;
	}
	return 0;
}

/* A member holding a version or a time: a string parse() accepts. */
static int
read_number(struct json_object *v, const char *key, int64_t *dst,
    int (*parse)(const char *, size_t, int64_t *), const char *what,
    struct admin_line *out)
{
	const char *s;
	size_t len;

	if (!jsonio_string(v, &s, &len) || parse(s, len, dst) != 0) {
		bad(out, "%s must be %s", key, what);
		return -1;
	}
	return 0;
}

/* The members of a representation; see admin_import_parse(). */
static int
parse_user(struct json_object *o, struct admin_line *out)
{
	enum { M_NAME = 1, M_VERSION = 2, M_CREATED = 4, M_UPDATED = 8 };
	static const char time_form[] = "a time as YYYY-MM-DDTHH:MM:SSZ";
	struct user *u = &out->u;
	const char *s;
	size_t len;
	enum user_err e;
	unsigned seen = 0;

	json_object_object_foreach(o, key, v) {
		if (strcmp(key, "username") == 0) {
			if (!jsonio_string(v, &s, &len))
				return bad(out, "username must be a string");
			if ((e = user_check_name(s, len)) != USER_OK)
				return bad(out, "username: %s",
				    user_err_str(e));
			memcpy(u->username, s, len + 1);
			seen |= M_NAME;
		} else if (strcmp(key, "email") == 0) {
			if (read_text(v, key, u->email, sizeof(u->email),
			    user_check_email, out) != 0)
				return -1;
		} else if (strcmp(key, "display_name") == 0) {
			if (read_text(v, key, u->display_name,
			    sizeof(u->display_name), user_check_display_name,
			    out) != 0)
				return -1;
		} else if (strcmp(key, "roles") == 0) {
			if (read_roles(v, u, out) != 0)
				return -1;
		} else if (strcmp(key, "version") == 0) {
			if (read_number(v, key, &u->version, user_parse_version,
			    "a positive decimal number in a string", out) != 0)
				return -1;
			seen |= M_VERSION;
		} else if (strcmp(key, "created_at") == 0) {
			if (read_number(v, key, &u->created_at,
			    admin_import_time, time_form, out) != 0)
				return -1;
			seen |= M_CREATED;
		} else if (strcmp(key, "updated_at") == 0) {
			if (read_number(v, key, &u->updated_at,
			    admin_import_time, time_form, out) != 0)
				return -1;
			seen |= M_UPDATED;
		} else {
			return bad(out, "unknown member '%.64s'", key);
		}
	}
	if (!(seen & M_NAME))
		return bad(out, "no username");
	if (!(seen & M_VERSION))
		return bad(out, "no version");
	if ((seen & (M_CREATED | M_UPDATED)) != (M_CREATED | M_UPDATED))
		return bad(out, "no %s", !(seen & M_CREATED) ? "created_at" :
		    "updated_at");
	if (u->created_at > u->updated_at)
		return bad(out, "created_at is after updated_at");
	out->kind = ADMIN_LINE_USER;
	return 0;
}

void
admin_import_parse(const char *line, size_t len, struct admin_line *out)
{
	struct json_object *o = NULL, *v;
	struct jsonio_error err;
	size_t i;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < len && (line[i] == ' ' || line[i] == '\t' ||
	    line[i] == '\r'); i++)
		;
	if (i == len) {
		out->kind = ADMIN_LINE_BLANK;
		return;
	}
	if (jsonio_parse_object(line, len, JSONIO_DEPTH_MAX, &o, &err) !=
	    JSONIO_OK) {
		if (err.has_offset)
			bad(out, "not a JSON object (at byte %zu): %s",
			    err.offset + 1, err.detail);
		else
			bad(out, "not a JSON object: %s", err.detail);
		return;
	}
	if (json_object_object_get_ex(o, "userreg_export", &v))
		parse_header(o, out);
	else
		parse_user(o, out);
	json_object_put(o);
}

/* One import under way. */
struct import {
	struct admin_env *env;
	const char *file;		/* as reports name it */
	struct admin_keys names, emails;
	int64_t revision;		/* the header's, -1 without one */
	int64_t top;			/* highest version seen */
	unsigned long line, first_line;	/* first non-blank line */
	unsigned long users, invalid, conflicts;
	int fatal;			/* the registry or memory failed */
};

static void
report(struct import *im, int conflict, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
report(struct import *im, int conflict, const char *fmt, ...)
{
	va_list ap;

	fprintf(im->env->err, "%s:%lu: ", im->file, im->line);
	va_start(ap, fmt);
	vfprintf(im->env->err, fmt, ap);
	va_end(ap);
	fputc('\n', im->env->err);
	if (conflict)
		im->conflicts++;
	else
		im->invalid++;
}

/* Checks a user line against the file so far and loads it. */
static void
take_user(struct import *im, const struct user *u)
{
	char key[USER_EMAIL_MAX + 1];
	unsigned long first = 0;
	enum reg_err rc;
	int dup = 0, r;

	admin_keys_canonical(u->username, key, sizeof(key));
	if ((r = admin_keys_add(&im->names, key, im->line, &first)) < 0)
		goto nomem;
	if (r == 1) {
		report(im, 1, "username '%s' is also on line %lu",
		    u->username, first);
		dup = 1;
	}
	if (u->email[0] != '\0') {
		admin_keys_canonical(u->email, key, sizeof(key));
		if ((r = admin_keys_add(&im->emails, key, im->line,
		    &first)) < 0)
			goto nomem;
		if (r == 1) {
			report(im, 1, "email '%s' is also on line %lu",
			    u->email, first);
			dup = 1;
		}
	}
	if (im->revision >= 0 && u->version > im->revision) {
		report(im, 0, "version %lld is above the export's revision "
		    "%lld", (long long)u->version, (long long)im->revision);
		return;
	}
	if (u->version > im->top)
		im->top = u->version;
	if (dup)
		return;
	switch ((rc = registry_load(im->env->reg, u))) {
	case REG_OK:
		im->users++;
		break;
	case REG_EXISTS:
		report(im, 1, "username '%s' is taken in the registry",
		    u->username);
		break;
	case REG_EMAIL_TAKEN:
		report(im, 1, "email '%s' is taken in the registry",
		    u->email);
		break;
	default:
		admin_registry_failed(im->env, "import", rc);
		im->fatal = 1;
		break;
	}
	return;
nomem:
	admin_say(im->env, ADMIN_EXIT_FAILURE, "import: out of memory");
	im->fatal = 1;
}

static void
take_line(struct import *im, const char *text, size_t len)
{
	struct admin_line l;

	if (len > ADMIN_IMPORT_LINE_MAX) {
		if (im->first_line == 0)
			im->first_line = im->line;
		report(im, 0, "longer than %d bytes", ADMIN_IMPORT_LINE_MAX);
		return;
	}
	admin_import_parse(text, len, &l);
	if (l.kind == ADMIN_LINE_BLANK)
		return;
	if (im->first_line == 0)
		im->first_line = im->line;
	switch (l.kind) {
	case ADMIN_LINE_HEADER:
		if (im->line != im->first_line)
			report(im, 0, "the export header must be the first "
			    "line");
		else
			im->revision = l.revision;
		break;
	case ADMIN_LINE_USER:
		take_user(im, &l.u);
		break;
	default:
		report(im, 0, "%s", l.why);
		break;
	}
}

/* Reads every line of f into the transaction open on env->reg. */
static int
read_lines(struct import *im, FILE *f)
{
	char *buf = NULL;
	size_t size = 0;
	ssize_t n;

	errno = 0;
	while (!im->fatal && (n = getline(&buf, &size, f)) >= 0) {
		im->line++;
		if (n > 0 && buf[n - 1] == '\n')
			buf[--n] = '\0';
		take_line(im, buf, (size_t)n);
		errno = 0;
	}
	free(buf);
	if (!im->fatal && ferror(f)) {
		admin_say(im->env, ADMIN_EXIT_FAILURE, "import: cannot read "
		    "'%s': %s", im->file, strerror(errno));
		im->fatal = 1;
	}
	return im->fatal ? -1 : 0;
}

int
admin_import(struct admin_env *env, const struct admin_args *a)
{
	const char *path = a->pos[0];
	struct import im;
	enum reg_err rc;
	int64_t target;
	FILE *f;
	int status = ADMIN_EXIT_FAILURE;

	memset(&im, 0, sizeof(im));
	im.env = env;
	im.file = strcmp(path, "-") == 0 ? "stdin" : path;
	im.revision = -1;
	admin_keys_init(&im.names);
	admin_keys_init(&im.emails);
	if ((f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r")) == NULL)
		return admin_say(env, ADMIN_EXIT_FAILURE, "import: cannot "
		    "open '%s': %s", path, strerror(errno));
	/* One transaction: every user or none, under the write lock. */
	if ((rc = registry_begin(env->reg)) != REG_OK) {
		admin_registry_failed(env, "import", rc);
		goto out;
	}
	if (read_lines(&im, f) != 0)
		goto out;
	if (im.invalid > 0 || im.conflicts > 0) {
		admin_say(env, 0, "import: '%s' refused: %lu bad line%s; "
		    "nothing imported", im.file, im.invalid + im.conflicts,
		    im.invalid + im.conflicts == 1 ? "" : "s");
		status = im.invalid > 0 ? ADMIN_EXIT_USAGE :
		    ADMIN_EXIT_CONFLICT;
		goto out;
	}
	/* No version of the file, nor one it names, may be issued again. */
	target = im.revision > im.top ? im.revision : im.top;
	if ((rc = registry_raise_revision(env->reg, target)) != REG_OK ||
	    (rc = registry_commit(env->reg)) != REG_OK) {
		admin_registry_failed(env, "import", rc);
		goto out;
	}
	if ((rc = registry_revision(env->reg, &target)) != REG_OK)
		target = -1;
	fprintf(env->out, "imported %lu user%s from '%s'; revision %lld\n",
	    im.users, im.users == 1 ? "" : "s", im.file, (long long)target);
	status = ADMIN_EXIT_OK;
out:
	registry_rollback(env->reg);
	if (f != stdin)
		fclose(f);
	admin_keys_release(&im.names);
	admin_keys_release(&im.emails);
	return status;
}
