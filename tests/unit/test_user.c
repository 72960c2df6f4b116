/* test_user.c: field checks, canonical keys and role sets of the user model. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <string.h>

#include "user.h"

/* A literal with its length, so that embedded NULs are kept. */
#define LIT(s) s, sizeof(s) - 1

#define C16 "abcdefghijklmnop"
#define C32 C16 C16
#define C64 C32 C32
#define C128 C64 C64

/*
 * Parameters hold arrays, not pointers: Criterion runs each test in a
 * fresh process of the (PIE) binary, where the parent's pointers into
 * static storage need not be valid.
 */
struct field_case {
	char s[300];
	size_t len;
	enum user_err want;
};

static void
check(enum user_err (*fn)(const char *, size_t), const struct field_case *c)
{
	enum user_err got = fn(c->s, c->len);

	cr_assert(eq(int, (int)got, (int)c->want),
	    "\"%.*s\" (%zu bytes): got %d, want %d", (int)c->len, c->s,
	    c->len, (int)got, (int)c->want);
}

/* Usernames: ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$ */

ParameterizedTestParameters(user, check_name)
{
	static struct field_case cases[] = {
		{ LIT("a"), USER_OK },
		{ LIT("Z"), USER_OK },
		{ LIT("7"), USER_OK },
		{ LIT("Alice"), USER_OK },
		{ LIT("alice.l_x-9"), USER_OK },
		{ LIT("a..b"), USER_OK },
		{ LIT("a."), USER_OK },
		{ LIT("a-"), USER_OK },
		{ LIT("a_"), USER_OK },
		{ LIT("0.0"), USER_OK },
		{ LIT(C64), USER_OK }, /* at the limit */
		{ LIT(C64 "a"), USER_TOO_LONG }, /* one past */
		{ LIT(C64 "/"), USER_TOO_LONG },
		{ LIT(""), USER_EMPTY },
		{ LIT("."), USER_BAD_CHAR },
		{ LIT(".."), USER_BAD_CHAR },
		{ LIT(".a"), USER_BAD_CHAR },
		{ LIT("-a"), USER_BAD_CHAR },
		{ LIT("_a"), USER_BAD_CHAR },
		{ LIT(" a"), USER_BAD_CHAR },
		{ LIT("a "), USER_BAD_CHAR },
		{ LIT("a b"), USER_BAD_CHAR },
		{ LIT("a/b"), USER_BAD_CHAR },
		{ LIT("/"), USER_BAD_CHAR },
		{ LIT("a\\b"), USER_BAD_CHAR },
		{ LIT("%2e"), USER_BAD_CHAR },
		{ LIT("a%2e"), USER_BAD_CHAR },
		{ LIT("a@b"), USER_BAD_CHAR },
		{ LIT("a+b"), USER_BAD_CHAR },
		{ LIT("a:b"), USER_BAD_CHAR },
		{ LIT("a?b"), USER_BAD_CHAR },
		{ LIT("a#b"), USER_BAD_CHAR },
		{ LIT("a~b"), USER_BAD_CHAR },
		{ LIT("a\"b"), USER_BAD_CHAR },
		{ LIT("\xc3\xa9"), USER_BAD_CHAR }, /* UTF-8 */
		{ LIT("a\xc3\xa9"), USER_BAD_CHAR },
		{ LIT("\xef\xbd\x81"), USER_BAD_CHAR }, /* fullwidth a */
		{ LIT("a\0"), USER_BAD_CHAR },
		{ LIT("a\0b"), USER_BAD_CHAR },
		{ LIT("\0"), USER_BAD_CHAR },
		{ LIT("a\r"), USER_BAD_CHAR },
		{ LIT("a\n"), USER_BAD_CHAR },
		{ LIT("a\r\nb"), USER_BAD_CHAR },
		{ LIT("a\tb"), USER_BAD_CHAR },
		{ LIT("a\x7f"), USER_BAD_CHAR },
		{ LIT("a\xff"), USER_BAD_CHAR },
	};

	return cr_make_param_array(struct field_case, cases,
	    sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct field_case *c, user, check_name)
{
	check(user_check_name, c);
}

Test(user, check_name_reads_only_len_bytes)
{
	cr_assert(eq(int, user_check_name("ab/", 2), USER_OK));
	cr_assert(eq(int, user_check_name("ab", 0), USER_EMPTY));
	cr_assert(eq(int, user_check_name(NULL, 0), USER_EMPTY));
}

/* Emails */

ParameterizedTestParameters(user, check_email)
{
	static struct field_case cases[] = {
		{ LIT("a@b"), USER_OK },
		{ LIT("alice@example.org"), USER_OK },
		{ LIT("Alice.L+tag@Example.ORG"), USER_OK },
		{ LIT("j\xc3\xb6rg@b\xc3\xbc" "cher.example"), USER_OK },
		{ LIT("\"quoted\"@x"), USER_OK },
		/* 254 bytes at the limit, 255 one past */
		{ LIT(C128 C64 C32 C16 "abcdefghijkl@x"), USER_OK },
		{ LIT(C128 C64 C32 C16 "abcdefghijklm@x"), USER_TOO_LONG },
		{ LIT(""), USER_EMPTY },
		{ LIT("ab"), USER_BAD_FORMAT },
		{ LIT("a@b@c"), USER_BAD_FORMAT },
		{ LIT("@b"), USER_BAD_FORMAT },
		{ LIT("a@"), USER_BAD_FORMAT },
		{ LIT("@"), USER_BAD_FORMAT },
		{ LIT("@@"), USER_BAD_FORMAT },
		{ LIT("a b@c"), USER_BAD_CHAR },
		{ LIT(" a@b"), USER_BAD_CHAR },
		{ LIT("a@b "), USER_BAD_CHAR },
		{ LIT("a@b\n"), USER_BAD_CHAR },
		{ LIT("a@b\r\nBcc: x@y"), USER_BAD_CHAR },
		{ LIT("a\t@b"), USER_BAD_CHAR },
		{ LIT("a\0@b"), USER_BAD_CHAR },
		{ LIT("a@b\0"), USER_BAD_CHAR },
		{ LIT("a\x1f@b"), USER_BAD_CHAR },
		{ LIT("a\x7f@b"), USER_BAD_CHAR },
	};

	return cr_make_param_array(struct field_case, cases,
	    sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct field_case *c, user, check_email)
{
	check(user_check_email, c);
}

Test(user, email_limit_cases_have_the_sizes_they_claim)
{
	cr_assert(eq(sz, strlen(C128 C64 C32 C16 "abcdefghijkl@x"),
	    USER_EMAIL_MAX));
	cr_assert(eq(int, USER_EMAIL_MAX, 254));
}

/* Display names */

ParameterizedTestParameters(user, check_display_name)
{
	static struct field_case cases[] = {
		{ LIT("Alice L."), USER_OK },
		{ LIT("J\xc3\xb6rg M\xc3\xbcller"), USER_OK },
		{ LIT("\xe6\x97\xa5\xe6\x9c\xac"), USER_OK }, /* CJK */
		{ LIT("\xf0\x9f\x98\x80"), USER_OK }, /* emoji */
		{ LIT("\xf4\x8f\xbf\xbf"), USER_OK }, /* U+10FFFF */
		{ LIT("\xef\xbf\xbd"), USER_OK }, /* U+FFFD */
		{ LIT("\xed\x9f\xbf"), USER_OK }, /* U+D7FF */
		{ LIT("\xee\x80\x80"), USER_OK }, /* U+E000 */
		{ LIT("\xc2\x85"), USER_OK }, /* C1: not a control here */
		{ LIT(" "), USER_OK },
		{ LIT("a/b <c> & \"d\""), USER_OK },
		{ LIT(C128), USER_OK }, /* at the limit */
		{ LIT(C64 C32 C16 "abcdefghijklmn\xc3\xa9"), USER_OK },
		{ LIT(C128 "a"), USER_TOO_LONG }, /* one past */
		{ LIT(C64 C32 C16 "abcdefghijklmno\xc3\xa9"), USER_TOO_LONG },
		{ LIT(""), USER_EMPTY },
		{ LIT("a\tb"), USER_BAD_CHAR },
		{ LIT("a\nb"), USER_BAD_CHAR },
		{ LIT("a\rb"), USER_BAD_CHAR },
		{ LIT("a\0b"), USER_BAD_CHAR },
		{ LIT("\x1f"), USER_BAD_CHAR },
		{ LIT("\x7f"), USER_BAD_CHAR },
		{ LIT("\x1b[31m"), USER_BAD_CHAR },
		{ LIT("\xff"), USER_BAD_FORMAT },
		{ LIT("\xfe"), USER_BAD_FORMAT },
		{ LIT("\x80"), USER_BAD_FORMAT }, /* lone cont. */
		{ LIT("a\xbf"), USER_BAD_FORMAT },
		{ LIT("\xc3"), USER_BAD_FORMAT }, /* truncated */
		{ LIT("\xe2\x82"), USER_BAD_FORMAT },
		{ LIT("\xf0\x9f\x98"), USER_BAD_FORMAT },
		{ LIT("\xc3\x28"), USER_BAD_FORMAT },
		{ LIT("\xc0\xaf"), USER_BAD_FORMAT }, /* overlong */
		{ LIT("\xc1\xbf"), USER_BAD_FORMAT },
		{ LIT("\xe0\x80\xaf"), USER_BAD_FORMAT },
		{ LIT("\xe0\x9f\xbf"), USER_BAD_FORMAT },
		{ LIT("\xf0\x80\x80\xaf"), USER_BAD_FORMAT },
		{ LIT("\xf0\x8f\xbf\xbf"), USER_BAD_FORMAT },
		{ LIT("\xed\xa0\x80"), USER_BAD_FORMAT }, /* U+D800 */
		{ LIT("\xed\xbf\xbf"), USER_BAD_FORMAT }, /* U+DFFF */
		{ LIT("\xed\xa0\xbd\xed\xb8\x80"), USER_BAD_FORMAT }, /* CESU */
		{ LIT("\xf4\x90\x80\x80"), USER_BAD_FORMAT }, /* >10FFFF */
		{ LIT("\xf5\x80\x80\x80"), USER_BAD_FORMAT },
		{ LIT("\xf8\x88\x80\x80\x80"), USER_BAD_FORMAT },
	};

	return cr_make_param_array(struct field_case, cases,
	    sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct field_case *c, user, check_display_name)
{
	check(user_check_display_name, c);
}

/* Roles: ^[a-z][a-z0-9_-]{0,31}$ */

ParameterizedTestParameters(user, check_role)
{
	static struct field_case cases[] = {
		{ LIT("admin"), USER_OK },
		{ LIT("a"), USER_OK },
		{ LIT("a-b_c9"), USER_OK },
		{ LIT("a-"), USER_OK },
		{ LIT(C32), USER_OK }, /* at the limit */
		{ LIT(C32 "a"), USER_TOO_LONG }, /* one past */
		{ LIT(""), USER_EMPTY },
		{ LIT("Admin"), USER_BAD_CHAR },
		{ LIT("adMin"), USER_BAD_CHAR },
		{ LIT("1admin"), USER_BAD_CHAR },
		{ LIT("-a"), USER_BAD_CHAR },
		{ LIT("_a"), USER_BAD_CHAR },
		{ LIT("a.b"), USER_BAD_CHAR },
		{ LIT("a b"), USER_BAD_CHAR },
		{ LIT("a/b"), USER_BAD_CHAR },
		{ LIT("\xc3\xa9"), USER_BAD_CHAR },
		{ LIT("a\0"), USER_BAD_CHAR },
		{ LIT("a\n"), USER_BAD_CHAR },
	};

	return cr_make_param_array(struct field_case, cases,
	    sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct field_case *c, user, check_role)
{
	check(user_check_role, c);
}

Test(user, limits_match_the_contract)
{
	cr_assert(eq(int, USER_NAME_MAX, 64));
	cr_assert(eq(int, USER_EMAIL_MAX, 254));
	cr_assert(eq(int, USER_DISPLAY_NAME_MAX, 128));
	cr_assert(eq(int, USER_ROLES_MAX, 16));
	cr_assert(eq(int, USER_ROLE_MAX, 32));
	cr_assert(eq(sz, strlen(C64), USER_NAME_MAX));
	cr_assert(eq(sz, strlen(C128), USER_DISPLAY_NAME_MAX));
	cr_assert(eq(sz, strlen(C32), USER_ROLE_MAX));
}

Test(user, err_str_covers_every_code)
{
	int e;
	const char *s;

	for (e = 0; e < USER_ERR__MAX; e++) {
		s = user_err_str((enum user_err)e);
		cr_assert(not(eq(ptr, (void *)s, NULL)));
		cr_assert(gt(sz, strlen(s), 0));
		cr_assert(s[0] >= 'a' && s[0] <= 'z', "%s", s);
	}
	cr_assert(not(eq(ptr, (void *)user_err_str(USER_ERR__MAX), NULL)));
	cr_assert(not(eq(ptr, (void *)user_err_str((enum user_err)-1), NULL)));
}

/* Canonical keys */

Test(user, canonical_lowercases_ascii_only)
{
	char key[USER_NAME_MAX + 1];

	user_canonical("Alice", key);
	cr_assert(eq(str, key, "alice"));
	user_canonical("ALICE.B_C-9", key);
	cr_assert(eq(str, key, "alice.b_c-9"));
	user_canonical("alice", key);
	cr_assert(eq(str, key, "alice"));
	user_canonical("AZaz09@[`{", key);
	cr_assert(eq(str, key, "azaz09@[`{"));
	/* Non-ASCII bytes pass unchanged (user_check_name rejects them). */
	user_canonical("\xc3\x89", key);
	cr_assert(eq(str, key, "\xc3\x89"));
}

Test(user, canonical_at_and_past_the_limit)
{
	char key[USER_NAME_MAX + 1];
	char name[USER_NAME_MAX + 2];

	memset(name, 'Q', USER_NAME_MAX);
	name[USER_NAME_MAX] = '\0';
	user_canonical(name, key);
	cr_assert(eq(sz, strlen(key), USER_NAME_MAX));
	cr_assert(eq(chr, key[0], 'q'));
	cr_assert(eq(chr, key[USER_NAME_MAX - 1], 'q'));

	name[USER_NAME_MAX] = 'Q';
	name[USER_NAME_MAX + 1] = '\0';
	user_canonical(name, key);
	cr_assert(eq(sz, strlen(key), USER_NAME_MAX), "truncated");
}

/* Roles as a set */

static void
set_roles(struct user *u, const char *const *roles, size_t n)
{
	size_t i;

	memset(u->roles, 0, sizeof(u->roles));
	for (i = 0; i < n; i++)
		strcpy(u->roles[i], roles[i]);
	u->nroles = n;
}

Test(user, sort_roles_sorts_by_bytes)
{
	static const char *const r[] = { "user", "admin", "ops", "a-b", "a_b",
	    "a" };
	struct user u;

	memset(&u, 0, sizeof(u));
	set_roles(&u, r, 6);
	cr_assert(eq(int, user_sort_roles(&u), USER_OK));
	cr_assert(eq(str, u.roles[0], "a"));
	cr_assert(eq(str, u.roles[1], "a-b"));
	cr_assert(eq(str, u.roles[2], "a_b"));
	cr_assert(eq(str, u.roles[3], "admin"));
	cr_assert(eq(str, u.roles[4], "ops"));
	cr_assert(eq(str, u.roles[5], "user"));
	cr_assert(eq(sz, u.nroles, 6));
}

Test(user, sort_roles_finds_duplicates_and_still_sorts)
{
	static const char *const r[] = { "b", "a", "c", "a" };
	struct user u;

	memset(&u, 0, sizeof(u));
	set_roles(&u, r, 4);
	cr_assert(eq(int, user_sort_roles(&u), USER_DUPLICATE));
	cr_assert(eq(str, u.roles[0], "a"));
	cr_assert(eq(str, u.roles[1], "a"));
	cr_assert(eq(str, u.roles[2], "b"));
	cr_assert(eq(str, u.roles[3], "c"));
}

Test(user, sort_roles_empty_one_and_full)
{
	struct user u;
	size_t i;

	memset(&u, 0, sizeof(u));
	cr_assert(eq(int, user_sort_roles(&u), USER_OK));
	strcpy(u.roles[0], "x");
	u.nroles = 1;
	cr_assert(eq(int, user_sort_roles(&u), USER_OK));
	/* at the limit */
	for (i = 0; i < USER_ROLES_MAX; i++)
		snprintf(u.roles[i], sizeof(u.roles[i]), "r%02zu",
		    USER_ROLES_MAX - i);
	u.nroles = USER_ROLES_MAX;
	cr_assert(eq(int, user_sort_roles(&u), USER_OK));
	cr_assert(eq(str, u.roles[0], "r01"));
	cr_assert(eq(str, u.roles[USER_ROLES_MAX - 1], "r16"));
	/* one past: the struct cannot hold it, so it is refused untouched */
	u.nroles = USER_ROLES_MAX + 1;
	cr_assert(eq(int, user_sort_roles(&u), USER_TOO_MANY));
}

Test(user, has_role_is_exact)
{
	static const char *const r[] = { "admin", "ops" };
	struct user u;

	memset(&u, 0, sizeof(u));
	cr_assert(not(user_has_role(&u, "admin")));
	set_roles(&u, r, 2);
	cr_assert(user_has_role(&u, "admin"));
	cr_assert(user_has_role(&u, "ops"));
	cr_assert(not(user_has_role(&u, "Admin")));
	cr_assert(not(user_has_role(&u, "adm")));
	cr_assert(not(user_has_role(&u, "admins")));
	cr_assert(not(user_has_role(&u, "")));
}

static struct user
base_user(void)
{
	static const char *const r[] = { "admin", "ops" };
	struct user u;

	memset(&u, 0, sizeof(u));
	strcpy(u.username, "Alice");
	strcpy(u.email, "alice@example.org");
	strcpy(u.display_name, "Alice L.");
	set_roles(&u, r, 2);
	u.version = 5;
	u.created_at = 100;
	u.updated_at = 200;
	return u;
}

Test(user, same_writable_ignores_version_and_times)
{
	struct user a = base_user(), b = base_user();

	cr_assert(user_same_writable(&a, &b));
	b.version = 6;
	b.created_at = 1;
	b.updated_at = 2;
	cr_assert(user_same_writable(&a, &b));
}

Test(user, same_writable_sees_every_writable_change)
{
	struct user a = base_user(), b;

	b = base_user();
	strcpy(b.username, "alice");	/* a case change is a change */
	cr_assert(not(user_same_writable(&a, &b)));
	b = base_user();
	strcpy(b.email, "Alice@example.org");
	cr_assert(not(user_same_writable(&a, &b)));
	b = base_user();
	b.email[0] = '\0';
	cr_assert(not(user_same_writable(&a, &b)));
	b = base_user();
	strcpy(b.display_name, "Alice L");
	cr_assert(not(user_same_writable(&a, &b)));
	b = base_user();
	b.display_name[0] = '\0';
	cr_assert(not(user_same_writable(&a, &b)));
	b = base_user();
	b.nroles = 1;
	cr_assert(not(user_same_writable(&a, &b)));
	b = base_user();
	strcpy(b.roles[1], "opz");
	cr_assert(not(user_same_writable(&a, &b)));
	b = base_user();
	b.nroles = 0;
	a.nroles = 0;
	cr_assert(user_same_writable(&a, &b));
}
