/* user.h: the user model: fields, their limits and validation rules. */
#ifndef USERREG_USER_H
#define USERREG_USER_H

#include <stddef.h>
#include <stdint.h>

/* Limits from the contract (API.md, "Resource"); each has a unit test. */
#define USER_NAME_MAX 64		/* bytes of a username */
#define USER_EMAIL_MAX 254		/* bytes of an email address */
#define USER_DISPLAY_NAME_MAX 128	/* bytes of a display name */
#define USER_ROLES_MAX 16		/* roles a user may hold */
#define USER_ROLE_MAX 32		/* bytes of one role name */

/*
 * One user as stored. Strings are NUL-terminated; an empty email or
 * display_name means "unset" (neither may be empty when set). Roles are
 * kept sorted by byte order and distinct.
 */
struct user {
	char username[USER_NAME_MAX + 1];	/* case as created */
	char email[USER_EMAIL_MAX + 1];
	char display_name[USER_DISPLAY_NAME_MAX + 1];
	char roles[USER_ROLES_MAX][USER_ROLE_MAX + 1];
	size_t nroles;
	int64_t version;	/* registry revision at the last write */
	int64_t created_at;	/* unix seconds, UTC */
	int64_t updated_at;
};

/* Outcome of a field check; zero is valid. */
enum user_err {
	USER_OK = 0,
	USER_EMPTY,		/* required but empty */
	USER_TOO_LONG,		/* over the field's byte limit */
	USER_BAD_CHAR,		/* a character the field does not allow */
	USER_BAD_FORMAT,	/* e.g. an email without exactly one '@' */
	USER_TOO_MANY,		/* more than USER_ROLES_MAX roles */
	USER_DUPLICATE,		/* a role named twice */
	USER_ERR__MAX
};

/* Returns a short lowercase phrase describing err, for problem details. */
const char *user_err_str(enum user_err err);

/*
 * Checks a username of len bytes against ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$.
 * Embedded NULs count as bad characters.
 */
enum user_err user_check_name(const char *name, size_t len);

/*
 * Checks an email: 1..USER_EMAIL_MAX bytes, exactly one '@' with a
 * non-empty part on each side, no control characters (U+0000-U+001F,
 * U+007F) and no spaces. The caller has already ensured valid UTF-8.
 */
enum user_err user_check_email(const char *email, size_t len);

/*
 * Checks a display name: 1..USER_DISPLAY_NAME_MAX bytes of valid UTF-8
 * without control characters (U+0000-U+001F, U+007F).
 */
enum user_err user_check_display_name(const char *name, size_t len);

/*
 * Returns the length of the well-formed UTF-8 sequence at s (n bytes
 * available), or 0 when there is none: RFC 3629 section 4, so no overlong
 * forms, no surrogates and nothing over U+10FFFF.
 */
size_t user_utf8_len(const unsigned char *s, size_t n);

/* Checks one role name against ^[a-z][a-z0-9_-]{0,31}$. */
enum user_err user_check_role(const char *role, size_t len);

/*
 * Writes the canonical key of name (ASCII-lowercased) into key, which has
 * room for USER_NAME_MAX + 1 bytes. name must already pass
 * user_check_name(); longer input is truncated.
 */
void user_canonical(const char *name, char key[USER_NAME_MAX + 1]);

/*
 * Sorts u->roles by byte order. Returns USER_DUPLICATE when a role
 * appears twice (the array is sorted either way), USER_OK otherwise.
 */
enum user_err user_sort_roles(struct user *u);

/*
 * Reads a version as the representation carries it: len bytes of a
 * decimal integer from 1 to INT64_MAX, no sign, no leading zero. Returns
 * 0 with the value in *out, or -1.
 */
int user_parse_version(const char *s, size_t len, int64_t *out);

/* Returns 1 if u holds role, 0 otherwise. */
int user_has_role(const struct user *u, const char *role);

/*
 * Returns 1 when every writable member (username with its case, email,
 * display_name, roles) of a equals that of b, 0 otherwise. version and
 * timestamps are ignored: an update that leaves this true changes nothing.
 */
int user_same_writable(const struct user *a, const struct user *b);

#endif
