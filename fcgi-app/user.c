/* user.c: the user model: field checks, canonical keys, role sets. */
#include <stdlib.h>
#include <string.h>

#include "user.h"

static const char *const user_err_strs[USER_ERR__MAX] = {
	[USER_OK] = "is valid",
	[USER_EMPTY] = "must not be empty",
	[USER_TOO_LONG] = "is too long",
	[USER_BAD_CHAR] = "contains a character that is not allowed",
	[USER_BAD_FORMAT] = "is not well-formed",
	[USER_TOO_MANY] = "has too many entries",
	[USER_DUPLICATE] = "names the same entry twice",
};

/* Character classes in ASCII only: <ctype.h> would depend on the locale. */
static int
is_lower(unsigned char c)
{
	return c >= 'a' && c <= 'z';
}

static int
is_upper(unsigned char c)
{
	return c >= 'A' && c <= 'Z';
}

static int
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static int
is_alnum(unsigned char c)
{
	return is_lower(c) || is_upper(c) || is_digit(c);
}

/* Control characters as the contract defines them: U+0000-U+001F, U+007F. */
static int
is_control(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

/*
 * Returns the length of the well-formed UTF-8 sequence at s (at most n
 * bytes available), or 0 if it is not one. RFC 3629 section 4: no
 * overlong forms, no surrogates (U+D800-U+DFFF), nothing over U+10FFFF.
 */
size_t
user_utf8_len(const unsigned char *s, size_t n)
{
	size_t len = 0;
	unsigned char lo = 0x80, hi = 0xbf;
	size_t i;

	if (n == 0)
		goto out;
	if (s[0] < 0x80) {
		len = 1;
		goto out;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		if (s[0] == 0xe0)
			lo = 0xa0;	/* overlong below U+0800 */
		else if (s[0] == 0xed)
			hi = 0x9f;	/* surrogates */
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		if (s[0] == 0xf0)
			lo = 0x90;	/* overlong below U+10000 */
		else if (s[0] == 0xf4)
			hi = 0x8f;	/* over U+10FFFF */
	} else
		goto out;	/* continuation byte, C0, C1, F5-FF */
	if (n < len) {
		len = 0;
		goto out;
	}
	if (s[1] < lo || s[1] > hi) {
		len = 0;
		goto out;
	}
	for (i = 2; i < len; i++) {
		if (s[i] < 0x80 || s[i] > 0xbf) {
			len = 0;
			goto out;
		}
	}
out:
	return len;
}

const char *
user_err_str(enum user_err err)
{
	const char *s = "is invalid";

	if ((unsigned)err < USER_ERR__MAX && user_err_strs[err] != NULL)
		s = user_err_strs[err];
	return s;
}

enum user_err
user_check_name(const char *name, size_t len)
{
	enum user_err rc = USER_OK;
	const unsigned char *s = (const unsigned char *)name;
	size_t i;

	if (name == NULL || len == 0) {
		rc = USER_EMPTY;
		goto out;
	}
	if (len > USER_NAME_MAX) {
		rc = USER_TOO_LONG;
		goto out;
	}
	if (!is_alnum(s[0])) {
		rc = USER_BAD_CHAR;
		goto out;
	}
	for (i = 1; i < len; i++) {
		if (!is_alnum(s[i]) && s[i] != '.' && s[i] != '_' &&
		    s[i] != '-') {
			rc = USER_BAD_CHAR;
			goto out;
		}
	}
out:
	return rc;
}

enum user_err
user_check_email(const char *email, size_t len)
{
	enum user_err rc = USER_OK;
	const unsigned char *s = (const unsigned char *)email;
	size_t i, ats = 0, at = 0;

	if (email == NULL || len == 0) {
		rc = USER_EMPTY;
		goto out;
	}
	if (len > USER_EMAIL_MAX) {
		rc = USER_TOO_LONG;
		goto out;
	}
	for (i = 0; i < len; i++) {
		if (is_control(s[i]) || s[i] == ' ') {
			rc = USER_BAD_CHAR;
			goto out;
		}
		if (s[i] == '@') {
			ats++;
			at = i;
		}
	}
	if (ats != 1 || at == 0 || at == len - 1)
		rc = USER_BAD_FORMAT;
out:
	return rc;
}

enum user_err
user_check_display_name(const char *name, size_t len)
{
	enum user_err rc = USER_OK;
	const unsigned char *s = (const unsigned char *)name;
	size_t i, n;

	if (name == NULL || len == 0) {
		rc = USER_EMPTY;
		goto out;
	}
	if (len > USER_DISPLAY_NAME_MAX) {
		rc = USER_TOO_LONG;
		goto out;
	}
	for (i = 0; i < len; i += n) {
		n = user_utf8_len(s + i, len - i);
		if (n == 0) {
			rc = USER_BAD_FORMAT;
			goto out;
		}
		if (n == 1 && is_control(s[i])) {
			rc = USER_BAD_CHAR;
			goto out;
		}
	}
out:
	return rc;
}

enum user_err
user_check_role(const char *role, size_t len)
{
	enum user_err rc = USER_OK;
	const unsigned char *s = (const unsigned char *)role;
	size_t i;

	if (role == NULL || len == 0) {
		rc = USER_EMPTY;
		goto out;
	}
	if (len > USER_ROLE_MAX) {
		rc = USER_TOO_LONG;
		goto out;
	}
	if (!is_lower(s[0])) {
		rc = USER_BAD_CHAR;
		goto out;
	}
	for (i = 1; i < len; i++) {
		if (!is_lower(s[i]) && !is_digit(s[i]) && s[i] != '_' &&
		    s[i] != '-') {
			rc = USER_BAD_CHAR;
			goto out;
		}
	}
out:
	return rc;
}

void
user_canonical(const char *name, char key[USER_NAME_MAX + 1])
{
	size_t i;
	unsigned char c;

	for (i = 0; i < USER_NAME_MAX && name[i] != '\0'; i++) {
		c = (unsigned char)name[i];
		/* ASCII only: the key must not depend on the locale. */
		key[i] = (char)(is_upper(c) ? c - 'A' + 'a' : c);
	}
	key[i] = '\0';
}

static int
role_cmp(const void *a, const void *b)
{
	return strncmp(a, b, USER_ROLE_MAX + 1);
}

enum user_err
user_sort_roles(struct user *u)
{
	enum user_err rc = USER_OK;
	size_t i;

	if (u->nroles > USER_ROLES_MAX) {
		rc = USER_TOO_MANY;
		goto out;
	}
	if (u->nroles > 1)
		qsort(u->roles, u->nroles, sizeof(u->roles[0]), role_cmp);
	for (i = 1; i < u->nroles; i++) {
		if (role_cmp(u->roles[i - 1], u->roles[i]) == 0) {
			rc = USER_DUPLICATE;
			goto out;
		}
	}
out:
	return rc;
}

int
user_has_role(const struct user *u, const char *role)
{
	int found = 0;
	size_t i, n;

	n = u->nroles > USER_ROLES_MAX ? USER_ROLES_MAX : u->nroles;
	for (i = 0; i < n && !found; i++)
		found = strncmp(u->roles[i], role, USER_ROLE_MAX + 1) == 0;
	return found;
}

int
user_same_writable(const struct user *a, const struct user *b)
{
	int same = 0;
	size_t i;

	/* Case-sensitive: a change of case in the username is a change. */
	if (strncmp(a->username, b->username, sizeof(a->username)) != 0 ||
	    strncmp(a->email, b->email, sizeof(a->email)) != 0 ||
	    strncmp(a->display_name, b->display_name,
	    sizeof(a->display_name)) != 0 ||
	    a->nroles != b->nroles || a->nroles > USER_ROLES_MAX)
		goto out;
	for (i = 0; i < a->nroles; i++) {
		if (strncmp(a->roles[i], b->roles[i], sizeof(a->roles[i])) != 0)
			goto out;
	}
	same = 1;
out:
	return same;
}

int
user_parse_version(const char *s, size_t len, int64_t *out)
{
	int64_t v = 0;
	size_t i;

	if (len == 0 || len > 19 || s[0] == '0')
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9' ||
		    v > (INT64_MAX - (s[i] - '0')) / 10)
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}
