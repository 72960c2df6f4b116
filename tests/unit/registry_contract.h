/*
 * registry_contract.h: the registry contract of registry.h, tested the
 * same way on every backend. test_registry.c (SQLite) and
 * tests/unit-pg/test_registry_pg.c (PostgreSQL) each include it once, so
 * every test here runs on both. It also holds what their own tests
 * share: the fixture's handle reg, helpers, and the bodies of the few
 * tests the two suites name differently. Not a header of declarations:
 * it defines tests.
 *
 * The including file defines, before the #include:
 *   CONTRACT_SUITE     the Criterion suite of the tests; its .init makes
 *                      an empty registry and opens reg on it, its .fini
 *                      closes reg and removes the registry
 *   CONTRACT_BACKEND   what registry_backend() names
 *   SQL_REPEAT(c, n)   an SQL expression: the string literal c, n times
 *   SQL_TEXT_WITH_NUL  only where a text column can hold a NUL: an SQL
 *                      text value with one inside
 * and declares these, defined anywhere in it:
 *   open_fixture(busy_ms, flags)
 *                      opens another handle on the fixture's registry
 *   raw_exec(sql), raw_int(sql), raw_text(sql)
 *                      run sql on a connection of the suite's own, past
 *                      the registry; the last two return the first
 *                      column of its one row (raw_text's in a buffer
 *                      that the next call reuses)
 * The SQL here is what both backends' schemas and dialects share.
 */
#ifndef USERREG_TEST_REGISTRY_CONTRACT_H
#define USERREG_TEST_REGISTRY_CONTRACT_H

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "registry.h"

#if !defined(CONTRACT_SUITE) || !defined(CONTRACT_BACKEND) || \
    !defined(SQL_REPEAT)
#error "define CONTRACT_SUITE, CONTRACT_BACKEND and SQL_REPEAT first"
#endif

/* The fixture's handle. */
static struct registry *reg;

/* Opens the registry at where with flags; the test fails if it cannot. */
static struct registry *
open_reg(const char *where, int busy_ms, unsigned flags)
{
	char why[REG_ERRMSG_SIZE];
	enum reg_err err = REG_ERR__MAX;
	struct registry *r;

	r = registry_open(where, busy_ms, flags, &err, why);
	cr_assert(not(eq(ptr, r, NULL)), "open %s: %s: %s", where,
	    registry_err_str(err), why);
	cr_assert(eq(int, err, REG_OK));
	return r;
}

/* Fills u; roles is a sorted comma-separated list ("" for none). */
static void
mkuser(struct user *u, const char *name, const char *email,
    const char *display, const char *roles)
{
	const char *p, *end;
	size_t len;

	memset(u, 0, sizeof(*u));
	snprintf(u->username, sizeof(u->username), "%s", name);
	snprintf(u->email, sizeof(u->email), "%s", email);
	snprintf(u->display_name, sizeof(u->display_name), "%s", display);
	for (p = roles; *p != '\0'; p = *end == ',' ? end + 1 : end) {
		end = strchr(p, ',');
		if (end == NULL)
			end = p + strlen(p);
		len = (size_t)(end - p);
		memcpy(u->roles[u->nroles], p, len);
		u->roles[u->nroles][len] = '\0';
		u->nroles++;
	}
}

/* Inserts one user in its own transaction of r; the insert's result. */
static enum reg_err
add_to(struct registry *r, const char *name, const char *email,
    const char *roles)
{
	struct user u;
	enum reg_err rc;

	mkuser(&u, name, email, "", roles);
	cr_assert(eq(int, registry_begin(r), REG_OK), "%s",
	    registry_errmsg(r));
	rc = registry_insert(r, &u);
	if (rc == REG_OK)
		cr_assert(eq(int, registry_commit(r), REG_OK), "%s",
		    registry_errmsg(r));
	else
		registry_rollback(r);
	return rc;
}

static enum reg_err
add(const char *name, const char *email, const char *roles)
{
	return add_to(reg, name, email, roles);
}

static int64_t
revision(void)
{
	int64_t v = -1;

	cr_assert(eq(int, registry_revision(reg, &v), REG_OK), "%s",
	    registry_errmsg(reg));
	return v;
}

static int64_t
count(void)
{
	int64_t n = -1;

	cr_assert(eq(int, registry_count(reg, &n), REG_OK));
	return n;
}

static enum reg_err
update(const struct user *cur, struct user *next)
{
	enum reg_err rc;

	cr_assert(eq(int, registry_begin(reg), REG_OK));
	rc = registry_update(reg, cur, next);
	if (rc == REG_OK)
		cr_assert(eq(int, registry_commit(reg), REG_OK));
	else
		registry_rollback(reg);
	return rc;
}

static enum reg_err
delete(const struct user *cur)
{
	enum reg_err rc;

	cr_assert(eq(int, registry_begin(reg), REG_OK));
	rc = registry_delete(reg, cur);
	if (rc == REG_OK)
		cr_assert(eq(int, registry_commit(reg), REG_OK));
	else
		registry_rollback(reg);
	return rc;
}

/* Inserts the users names[0..n) in one transaction. */
static void
add_many(const char *const *names, size_t n)
{
	struct user u;
	size_t i;

	cr_assert(eq(int, registry_begin(reg), REG_OK));
	for (i = 0; i < n; i++) {
		mkuser(&u, names[i], "", "", "");
		cr_assert(eq(int, registry_insert(reg, &u), REG_OK), "%s",
		    names[i]);
	}
	cr_assert(eq(int, registry_commit(reg), REG_OK));
}

/* Stores a record of key in scope "scope", in a write of its own. */
static void
idem_put(const char *key, const char *fp, int status, const char *resp,
    size_t len, int64_t now, int64_t ttl)
{
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	cr_assert(eq(int, registry_idem_put(reg, "scope", key, fp, status,
	    resp, len, now, ttl), REG_OK), "%s", registry_errmsg(reg));
	cr_assert(eq(int, registry_commit(reg), REG_OK));
}

static enum reg_err
idem_get(const char *key, const char *fp, int64_t now, struct reg_idem *rec)
{
	return registry_idem_get(reg, "scope", key, fp, now, rec);
}

static int64_t
idem_rows(void)
{
	return raw_int("SELECT count(*) FROM idempotency");
}

/* Opening */

Test(CONTRACT_SUITE, new_registry_starts_at_revision_zero)
{
	cr_assert(eq(i64, revision(), 0));
	cr_assert(eq(i64, count(), 0));
	cr_assert(eq(int, registry_ping(reg), REG_OK));
	cr_assert(eq(str, (char *)registry_backend(reg), CONTRACT_BACKEND));
	cr_assert(eq(int, registry_moved(reg), 0));
	cr_assert(eq(int, registry_maintain(reg), REG_OK));
	cr_assert(eq(int, registry_refresh(reg), REG_OK));
}

Test(CONTRACT_SUITE, reopen_keeps_users_and_revision)
{
	struct user u;

	cr_assert(eq(int, add("alice", "", ""), REG_OK));
	registry_close(reg);
	reg = open_fixture(2000, 0);
	cr_assert(eq(int, registry_get(reg, "alice", &u), REG_OK));
	cr_assert(eq(i64, revision(), 1));
}

Test(CONTRACT_SUITE, close_accepts_null)
{
	registry_close(NULL);
}

Test(CONTRACT_SUITE, open_with_zero_busy_timeout_still_works)
{
	struct registry *r = open_fixture(0, 0);

	cr_assert(eq(int, add_to(r, "alice", "", ""), REG_OK));
	registry_close(r);
	cr_assert(eq(i64, revision(), 1));
}

/* Insert and get */

Test(CONTRACT_SUITE, insert_get_round_trip_keeps_every_field)
{
	struct user u, got;
	time_t t0, t1;

	mkuser(&u, "Alice.L-1_x", "Alice@Example.ORG", "Alice L\xc3\xa9vy",
	    "admin,ops");
	t0 = time(NULL);
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	cr_assert(eq(int, registry_insert(reg, &u), REG_OK));
	cr_assert(eq(int, registry_commit(reg), REG_OK));
	t1 = time(NULL);
	cr_assert(eq(i64, u.version, 1));
	cr_assert(ge(i64, u.created_at, (int64_t)t0));
	cr_assert(le(i64, u.created_at, (int64_t)t1));
	cr_assert(eq(i64, u.updated_at, u.created_at));

	cr_assert(eq(int, registry_get(reg, "alice.l-1_x", &got), REG_OK));
	cr_assert(eq(str, got.username, "Alice.L-1_x"));
	cr_assert(eq(str, got.email, "Alice@Example.ORG"));
	cr_assert(eq(str, got.display_name, "Alice L\xc3\xa9vy"));
	cr_assert(eq(sz, got.nroles, 2));
	cr_assert(eq(str, got.roles[0], "admin"));
	cr_assert(eq(str, got.roles[1], "ops"));
	cr_assert(eq(i64, got.version, u.version));
	cr_assert(eq(i64, got.created_at, u.created_at));
	cr_assert(eq(i64, got.updated_at, u.updated_at));
	cr_assert(eq(i64, revision(), 1));
	/* The columns as stored: canonical keys beside the given case. */
	cr_assert(eq(str, (char *)raw_text("SELECT key || ' ' || email_key || "
	    "' ' || CASE WHEN admin THEN 'admin' ELSE 'not admin' END "
	    "FROM users"), "alice.l-1_x alice@example.org admin"));
}

Test(CONTRACT_SUITE, insert_get_round_trip_without_optional_fields)
{
	struct user got;

	cr_assert(eq(int, add("bob", "", ""), REG_OK));
	memset(&got, 'x', sizeof(got));
	cr_assert(eq(int, registry_get(reg, "bob", &got), REG_OK));
	cr_assert(eq(str, got.email, ""));
	cr_assert(eq(str, got.display_name, ""));
	cr_assert(eq(sz, got.nroles, 0));
	/* Unset is NULL, so many users may have no email. */
	cr_assert(eq(i64, raw_int("SELECT count(*) FROM users WHERE "
	    "email IS NULL AND email_key IS NULL AND display_name IS NULL"),
	    1));
}

Test(CONTRACT_SUITE, insert_get_round_trip_at_field_limits)
{
	struct user u, got;
	size_t i;

	memset(&u, 0, sizeof(u));
	memset(u.username, 'n', USER_NAME_MAX);
	memset(u.email, 'e', USER_EMAIL_MAX);
	u.email[10] = '@';
	memset(u.display_name, 'd', USER_DISPLAY_NAME_MAX);
	for (i = 0; i < USER_ROLES_MAX; i++) {
		memset(u.roles[i], 'r', USER_ROLE_MAX);
		u.roles[i][USER_ROLE_MAX - 1] = (char)('a' + i);
	}
	u.nroles = USER_ROLES_MAX;
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	cr_assert(eq(int, registry_insert(reg, &u), REG_OK));
	cr_assert(eq(int, registry_commit(reg), REG_OK));
	cr_assert(eq(int, registry_get(reg, u.username, &got), REG_OK));
	cr_assert(eq(str, got.username, u.username));
	cr_assert(eq(str, got.email, u.email));
	cr_assert(eq(str, got.display_name, u.display_name));
	cr_assert(eq(sz, got.nroles, USER_ROLES_MAX));
	for (i = 0; i < USER_ROLES_MAX; i++)
		cr_assert(eq(str, got.roles[i], u.roles[i]));
}

Test(CONTRACT_SUITE, get_finds_user_in_any_case)
{
	struct user got;

	cr_assert(eq(int, add("Alice", "", ""), REG_OK));
	cr_assert(eq(int, registry_get(reg, "ALICE", &got), REG_OK));
	cr_assert(eq(str, got.username, "Alice"));
	cr_assert(eq(int, registry_get(reg, "alice", &got), REG_OK));
	cr_assert(eq(int, registry_get(reg, "aLiCe", &got), REG_OK));
}

Test(CONTRACT_SUITE, get_missing_user_is_not_found)
{
	struct user got;

	cr_assert(eq(int, registry_get(reg, "nobody", &got), REG_NOT_FOUND));
	cr_assert(eq(int, registry_get(reg, "", &got), REG_NOT_FOUND));
}

Test(CONTRACT_SUITE, get_overlong_name_is_not_found_not_truncated)
{
	char name[USER_NAME_MAX + 2];
	struct user got;

	memset(name, 'a', USER_NAME_MAX);
	name[USER_NAME_MAX] = '\0';
	cr_assert(eq(int, add(name, "", ""), REG_OK));
	cr_assert(eq(int, registry_get(reg, name, &got), REG_OK));
	name[USER_NAME_MAX] = 'a';
	name[USER_NAME_MAX + 1] = '\0';
	cr_assert(eq(int, registry_get(reg, name, &got), REG_NOT_FOUND));
}

Test(CONTRACT_SUITE, insert_rejects_duplicate_in_other_case)
{
	struct user u, got;

	cr_assert(eq(int, add("alice", "a@example.org", ""), REG_OK));
	mkuser(&u, "ALICE", "other@example.org", "Other", "admin");
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	cr_assert(eq(int, registry_insert(reg, &u), REG_EXISTS));
	/* Nothing written, and the transaction is still usable. */
	cr_assert(eq(i64, revision(), 1));
	cr_assert(eq(i64, u.version, 0));
	mkuser(&u, "bob", "", "", "");
	cr_assert(eq(int, registry_insert(reg, &u), REG_OK));
	cr_assert(eq(int, registry_commit(reg), REG_OK));
	cr_assert(eq(i64, u.version, 2));
	cr_assert(eq(i64, revision(), 2));
	cr_assert(eq(int, registry_get(reg, "alice", &got), REG_OK));
	cr_assert(eq(str, got.username, "alice"));
	cr_assert(eq(str, got.email, "a@example.org"));
	cr_assert(eq(sz, got.nroles, 0));
	cr_assert(eq(i64, got.version, 1));
}

Test(CONTRACT_SUITE, insert_rejects_taken_email_in_other_case)
{
	struct user got, u;

	cr_assert(eq(int, add("alice", "Alice@Example.org", ""), REG_OK));
	/* As the handlers do: the failed insert's transaction commits. */
	mkuser(&u, "bob", "aLICE@example.ORG", "", "");
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	cr_assert(eq(int, registry_insert(reg, &u), REG_EMAIL_TAKEN));
	cr_assert(eq(int, registry_commit(reg), REG_OK), "%s",
	    registry_errmsg(reg));
	cr_assert(eq(int, registry_get(reg, "bob", &got), REG_NOT_FOUND));
	cr_assert(eq(i64, revision(), 1));
	cr_assert(eq(int, add("bob", "bob@example.org", ""), REG_OK));
}

Test(CONTRACT_SUITE, insert_with_name_and_email_taken_reports_name)
{
	cr_assert(eq(int, add("alice", "a@example.org", ""), REG_OK));
	cr_assert(eq(int, add("Alice", "A@example.org", ""), REG_EXISTS));
}

Test(CONTRACT_SUITE, insert_allows_many_users_without_email)
{
	cr_assert(eq(int, add("alice", "", ""), REG_OK));
	cr_assert(eq(int, add("bob", "", ""), REG_OK));
	cr_assert(eq(int, add("carol", "", ""), REG_OK));
	cr_assert(eq(i64, revision(), 3));
}

Test(CONTRACT_SUITE, insert_outside_transaction_is_misuse)
{
	struct user u;

	mkuser(&u, "alice", "", "", "");
	cr_assert(eq(int, registry_insert(reg, &u), REG_ERROR));
	cr_assert(eq(i64, revision(), 0));
	cr_assert(not(eq(str, (char *)registry_errmsg(reg), "no error")));
}

Test(CONTRACT_SUITE, insert_rejects_user_that_would_not_read_back)
{
	struct user u;

	cr_assert(eq(int, registry_begin(reg), REG_OK));
	mkuser(&u, "alice", "", "", "a,b");
	strcpy(u.roles[0], "a,b");
	u.nroles = 1;
	cr_assert(eq(int, registry_insert(reg, &u), REG_ERROR));
	mkuser(&u, "alice", "", "", "");
	u.nroles = USER_ROLES_MAX + 1;
	cr_assert(eq(int, registry_insert(reg, &u), REG_ERROR));
	mkuser(&u, "alice", "", "", "");
	memset(u.display_name, 'x', sizeof(u.display_name));
	cr_assert(eq(int, registry_insert(reg, &u), REG_ERROR));
	mkuser(&u, "", "", "", "");
	cr_assert(eq(int, registry_insert(reg, &u), REG_ERROR));
	registry_rollback(reg);
	cr_assert(eq(i64, revision(), 0));
}

Test(CONTRACT_SUITE, stored_row_over_limits_reads_as_error)
{
	struct user got, list[4];
	size_t n;
	int more;

	cr_assert(eq(int, add("alice", "", ""), REG_OK));
	raw_exec("UPDATE users SET display_name = " SQL_REPEAT("x", 129));
	cr_assert(eq(int, registry_get(reg, "alice", &got), REG_ERROR));
	cr_assert(eq(int, registry_list(reg, NULL, NULL, 4, list, &n, &more),
	    REG_ERROR));
	cr_assert(eq(sz, n, 0));
	raw_exec("UPDATE users SET display_name = " SQL_REPEAT("x", 128));
	cr_assert(eq(int, registry_get(reg, "alice", &got), REG_OK));
	/* One role more than USER_ROLES_MAX. */
	raw_exec("UPDATE users SET roles = 'a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,"
	    "q'");
	cr_assert(eq(int, registry_get(reg, "alice", &got), REG_ERROR));
	raw_exec("UPDATE users SET roles = 'a,,b'");
	cr_assert(eq(int, registry_get(reg, "alice", &got), REG_ERROR));
	raw_exec("UPDATE users SET roles = " SQL_REPEAT("r", 33));
	cr_assert(eq(int, registry_get(reg, "alice", &got), REG_ERROR));
	raw_exec("UPDATE users SET roles = 'ops'");
	cr_assert(eq(int, registry_get(reg, "alice", &got), REG_OK));
	raw_exec("UPDATE users SET email = " SQL_REPEAT("e", 255));
	cr_assert(eq(int, registry_get(reg, "alice", &got), REG_ERROR));
#ifdef SQL_TEXT_WITH_NUL
	/* An embedded NUL would silently shorten the field. */
	raw_exec("UPDATE users SET email = " SQL_TEXT_WITH_NUL);
	cr_assert(eq(int, registry_get(reg, "alice", &got), REG_ERROR));
#endif
	raw_exec("UPDATE users SET email = NULL, username = ''");
	cr_assert(eq(int, registry_get(reg, "alice", &got), REG_ERROR));
}

/* Transactions */

Test(CONTRACT_SUITE, rollback_leaves_nothing)
{
	struct user u, got;

	mkuser(&u, "alice", "a@example.org", "", "admin");
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	cr_assert(eq(int, registry_insert(reg, &u), REG_OK));
	cr_assert(eq(int, registry_get(reg, "alice", &got), REG_OK));
	registry_rollback(reg);
	cr_assert(eq(int, registry_get(reg, "alice", &got), REG_NOT_FOUND));
	cr_assert(eq(i64, revision(), 0));
	cr_assert(eq(i64, count(), 0));
	/* The name and email are free again. */
	cr_assert(eq(int, add("Alice", "A@example.org", ""), REG_OK));
	cr_assert(eq(i64, revision(), 1));
}

Test(CONTRACT_SUITE, begin_does_not_nest)
{
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	cr_assert(eq(int, registry_begin(reg), REG_ERROR));
	cr_assert(eq(int, registry_in_transaction(reg), 1));
	cr_assert(eq(int, registry_commit(reg), REG_OK));
	cr_assert(eq(int, registry_in_transaction(reg), 0));
}

Test(CONTRACT_SUITE, commit_without_transaction_is_misuse)
{
	cr_assert(eq(int, registry_commit(reg), REG_ERROR));
	registry_rollback(reg);
	registry_rollback(NULL);
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	registry_rollback(reg);
}

Test(CONTRACT_SUITE, refresh_inside_a_transaction_is_misuse)
{
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	cr_assert(eq(int, registry_refresh(reg), REG_ERROR));
	cr_assert(eq(int, registry_in_transaction(reg), 1));
	registry_rollback(reg);
}

/* Read snapshots and savepoints */

Test(CONTRACT_SUITE, read_snapshot_does_not_see_a_commit_made_meanwhile)
{
	struct registry *other;
	struct user u, got;
	int64_t n;

	cr_assert(eq(int, add("alice", "", ""), REG_OK));
	other = open_fixture(2000, 0);
	cr_assert(eq(int, registry_begin_read(reg), REG_OK));
	cr_assert(eq(int, registry_in_transaction(reg), 1));
	cr_assert(eq(i64, revision(), 1));
	/* A reader holds no lock: the other handle writes and commits. */
	mkuser(&u, "bob", "", "", "");
	cr_assert(eq(int, registry_begin(other), REG_OK));
	cr_assert(eq(int, registry_insert(other, &u), REG_OK));
	cr_assert(eq(int, registry_commit(other), REG_OK));
	cr_assert(eq(int, registry_get(reg, "bob", &got), REG_NOT_FOUND));
	cr_assert(eq(i64, revision(), 1));
	cr_assert(eq(int, registry_count(reg, &n), REG_OK));
	cr_assert(eq(i64, n, 1));
	registry_rollback(reg);
	cr_assert(eq(int, registry_get(reg, "bob", &got), REG_OK));
	cr_assert(eq(i64, revision(), 2));
	registry_close(other);
}

Test(CONTRACT_SUITE, read_snapshot_refuses_writes)
{
	struct user cur, u;
	int64_t n;

	cr_assert(eq(int, add("alice", "", ""), REG_OK));
	cr_assert(eq(int, registry_get(reg, "alice", &cur), REG_OK));
	cr_assert(eq(int, registry_begin_read(reg), REG_OK));
	mkuser(&u, "carol", "", "", "");
	cr_assert(eq(int, registry_insert(reg, &u), REG_ERROR));
	mkuser(&u, "alice", "", "X", "");
	cr_assert(eq(int, registry_update(reg, &cur, &u), REG_ERROR));
	cr_assert(eq(int, registry_delete(reg, &cur), REG_ERROR));
	u.version = 9;
	cr_assert(eq(int, registry_load(reg, &u), REG_ERROR));
	cr_assert(eq(int, registry_raise_revision(reg, 50), REG_ERROR));
	cr_assert(eq(int, registry_savepoint(reg), REG_ERROR));
	/* Nor does it nest with a write transaction. */
	cr_assert(eq(int, registry_begin(reg), REG_ERROR));
	registry_rollback(reg);
	cr_assert(eq(i64, revision(), 1));
	cr_assert(eq(int, registry_count(reg, &n), REG_OK));
	cr_assert(eq(i64, n, 1));
	cr_assert(eq(int, registry_get(reg, "alice", &u), REG_OK));
	cr_assert(eq(str, u.display_name, ""));
}

Test(CONTRACT_SUITE, read_transaction_sees_one_snapshot)
{
	struct registry *other = open_fixture(2000, 0);
	struct user got, u;

	cr_assert(eq(int, add("alice", "", ""), REG_OK));
	cr_assert(eq(int, registry_begin_read(reg), REG_OK));
	cr_assert(eq(int, registry_get(reg, "alice", &got), REG_OK));
	cr_assert(eq(int, add_to(other, "bob", "", ""), REG_OK));
	cr_assert(eq(int, registry_get(reg, "bob", &got), REG_NOT_FOUND));
	cr_assert(eq(i64, revision(), 1));
	/* Writes are refused in a read transaction. */
	mkuser(&u, "carol", "", "", "");
	cr_assert(eq(int, registry_insert(reg, &u), REG_ERROR));
	cr_assert(eq(int, registry_commit(reg), REG_OK));
	cr_assert(eq(int, registry_get(reg, "bob", &got), REG_OK));
	cr_assert(eq(i64, revision(), 2));
	registry_close(other);
}

Test(CONTRACT_SUITE, savepoint_kept_keeps_its_writes)
{
	struct user u;

	mkuser(&u, "alice", "", "", "");
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	cr_assert(eq(int, registry_savepoint(reg), REG_OK));
	cr_assert(eq(int, registry_insert(reg, &u), REG_OK));
	cr_assert(eq(int, registry_savepoint_end(reg, 1), REG_OK));
	cr_assert(eq(int, registry_in_transaction(reg), 1));
	cr_assert(eq(int, registry_commit(reg), REG_OK));
	cr_assert(eq(int, registry_get(reg, "alice", &u), REG_OK));
	cr_assert(eq(i64, revision(), 1));
}

Test(CONTRACT_SUITE, savepoint_undone_drops_only_its_writes)
{
	struct user u;

	cr_assert(eq(int, registry_begin(reg), REG_OK));
	mkuser(&u, "alice", "", "", "");
	cr_assert(eq(int, registry_insert(reg, &u), REG_OK));
	cr_assert(eq(int, registry_savepoint(reg), REG_OK));
	mkuser(&u, "bob", "", "", "");
	cr_assert(eq(int, registry_insert(reg, &u), REG_OK));
	cr_assert(eq(int, registry_savepoint_end(reg, 0), REG_OK));
	cr_assert(eq(int, registry_in_transaction(reg), 1));
	cr_assert(eq(int, registry_get(reg, "bob", &u), REG_NOT_FOUND));
	cr_assert(eq(int, registry_commit(reg), REG_OK));
	cr_assert(eq(int, registry_get(reg, "alice", &u), REG_OK));
	cr_assert(eq(int, registry_get(reg, "bob", &u), REG_NOT_FOUND));
	/* bob's revision went with him. */
	cr_assert(eq(i64, revision(), 1));
}

Test(CONTRACT_SUITE, savepoints_nest_under_the_per_write_savepoint)
{
	struct user u;

	cr_assert(eq(int, registry_begin(reg), REG_OK));
	cr_assert(eq(int, registry_savepoint(reg), REG_OK));
	mkuser(&u, "alice", "", "", "");
	cr_assert(eq(int, registry_insert(reg, &u), REG_OK));
	cr_assert(eq(int, registry_savepoint(reg), REG_OK));
	mkuser(&u, "bob", "", "", "");
	cr_assert(eq(int, registry_insert(reg, &u), REG_OK));
	/* A refused write undoes its own savepoint, not the caller's. */
	mkuser(&u, "BOB", "", "", "");
	cr_assert(eq(int, registry_insert(reg, &u), REG_EXISTS));
	cr_assert(eq(int, registry_get(reg, "bob", &u), REG_OK));
	cr_assert(eq(int, registry_savepoint_end(reg, 0), REG_OK));
	cr_assert(eq(int, registry_get(reg, "bob", &u), REG_NOT_FOUND));
	cr_assert(eq(int, registry_get(reg, "alice", &u), REG_OK));
	mkuser(&u, "carol", "", "", "");
	cr_assert(eq(int, registry_insert(reg, &u), REG_OK));
	cr_assert(eq(int, registry_savepoint_end(reg, 1), REG_OK));
	cr_assert(eq(int, registry_commit(reg), REG_OK));
	cr_assert(eq(int, registry_get(reg, "alice", &u), REG_OK));
	cr_assert(eq(i64, u.version, 1));
	cr_assert(eq(int, registry_get(reg, "carol", &u), REG_OK));
	cr_assert(eq(i64, u.version, 2));
	cr_assert(eq(int, registry_get(reg, "bob", &u), REG_NOT_FOUND));
	cr_assert(eq(i64, revision(), 2));
}

Test(CONTRACT_SUITE, savepoint_outside_a_write_transaction_is_misuse)
{
	cr_assert(eq(int, registry_savepoint(reg), REG_ERROR));
	cr_assert(eq(int, registry_savepoint_end(reg, 1), REG_ERROR));
	cr_assert(eq(int, registry_savepoint_end(reg, 0), REG_ERROR));
	cr_assert(eq(int, registry_in_transaction(reg), 0));
}

Test(CONTRACT_SUITE, savepoint_end_undoes_or_keeps)
{
	struct user u, got;

	cr_assert(eq(int, registry_begin(reg), REG_OK));
	cr_assert(eq(int, registry_savepoint(reg), REG_OK));
	mkuser(&u, "alice", "", "", "");
	cr_assert(eq(int, registry_insert(reg, &u), REG_OK));
	cr_assert(eq(int, registry_savepoint_end(reg, 0), REG_OK));
	cr_assert(eq(int, registry_get(reg, "alice", &got), REG_NOT_FOUND));
	cr_assert(eq(int, registry_savepoint(reg), REG_OK));
	mkuser(&u, "bob", "", "", "");
	cr_assert(eq(int, registry_insert(reg, &u), REG_OK));
	cr_assert(eq(int, registry_savepoint_end(reg, 1), REG_OK));
	cr_assert(eq(int, registry_commit(reg), REG_OK));
	cr_assert(eq(int, registry_get(reg, "alice", &got), REG_NOT_FOUND));
	cr_assert(eq(int, registry_get(reg, "bob", &got), REG_OK));
	cr_assert(eq(i64, got.version, 1));
	cr_assert(eq(i64, revision(), 1));
	/* Outside a write transaction there is nothing to save. */
	cr_assert(eq(int, registry_savepoint(reg), REG_ERROR));
}

/* Update */

Test(CONTRACT_SUITE, update_advances_version_and_keeps_created_at)
{
	struct user cur, next, got;
	time_t t0;

	cr_assert(eq(int, add("alice", "a@example.org", ""), REG_OK));
	cr_assert(eq(int, add("bob", "", ""), REG_OK));
	raw_exec("UPDATE users SET created_at = 1000, updated_at = 1000");
	cr_assert(eq(int, registry_get(reg, "alice", &cur), REG_OK));
	cr_assert(eq(i64, cur.created_at, 1000));
	mkuser(&next, "alice", "new@example.org", "Alice", "ops");
	t0 = time(NULL);
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	cr_assert(eq(int, registry_get(reg, "alice", &cur), REG_OK));
	cr_assert(eq(int, registry_update(reg, &cur, &next), REG_OK));
	cr_assert(eq(int, registry_commit(reg), REG_OK));
	cr_assert(eq(i64, next.version, 3));
	cr_assert(gt(i64, next.version, cur.version));
	cr_assert(eq(i64, next.created_at, 1000));
	cr_assert(ge(i64, next.updated_at, (int64_t)t0));
	cr_assert(eq(i64, revision(), 3));
	cr_assert(eq(int, registry_get(reg, "ALICE", &got), REG_OK));
	cr_assert(eq(str, got.email, "new@example.org"));
	cr_assert(eq(str, got.display_name, "Alice"));
	cr_assert(eq(sz, got.nroles, 1));
	cr_assert(eq(str, got.roles[0], "ops"));
	cr_assert(eq(i64, got.version, 3));
	cr_assert(eq(i64, got.created_at, 1000));
	cr_assert(eq(i64, got.updated_at, next.updated_at));
	/* The old email is free again. */
	cr_assert(eq(int, add("carol", "A@example.org", ""), REG_OK));
}

Test(CONTRACT_SUITE, update_can_clear_optional_fields_and_change_case)
{
	struct user cur, next, got;

	cr_assert(eq(int, add("alice", "a@example.org", "ops"), REG_OK));
	cr_assert(eq(int, registry_get(reg, "alice", &cur), REG_OK));
	mkuser(&next, "ALICE", "", "", "");
	cr_assert(eq(int, update(&cur, &next), REG_OK));
	cr_assert(eq(int, registry_get(reg, "alice", &got), REG_OK));
	cr_assert(eq(str, got.username, "ALICE"));
	cr_assert(eq(str, got.email, ""));
	cr_assert(eq(sz, got.nroles, 0));
	/* The cleared email is free again. */
	cr_assert(eq(int, add("bob", "a@example.org", ""), REG_OK));
}

Test(CONTRACT_SUITE, update_keeps_own_email_in_other_case)
{
	struct user cur, next;

	cr_assert(eq(int, add("alice", "a@example.org", ""), REG_OK));
	cr_assert(eq(int, registry_get(reg, "alice", &cur), REG_OK));
	mkuser(&next, "alice", "A@EXAMPLE.org", "Alice", "");
	cr_assert(eq(int, update(&cur, &next), REG_OK));
}

Test(CONTRACT_SUITE, update_rejects_email_of_another_user)
{
	struct user cur, next, got;

	cr_assert(eq(int, add("alice", "a@example.org", ""), REG_OK));
	cr_assert(eq(int, add("bob", "b@example.org", ""), REG_OK));
	cr_assert(eq(int, registry_get(reg, "bob", &cur), REG_OK));
	mkuser(&next, "bob", "A@Example.org", "Bob", "");
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	cr_assert(eq(int, registry_update(reg, &cur, &next), REG_EMAIL_TAKEN));
	cr_assert(eq(i64, revision(), 2));
	cr_assert(eq(int, registry_commit(reg), REG_OK));
	cr_assert(eq(i64, revision(), 2));
	cr_assert(eq(int, registry_get(reg, "bob", &got), REG_OK));
	cr_assert(eq(str, got.email, "b@example.org"));
	cr_assert(eq(str, got.display_name, ""));
	cr_assert(eq(i64, got.version, 2));
}

Test(CONTRACT_SUITE, update_with_stale_version_is_not_found)
{
	struct user stale, cur, next, got;

	cr_assert(eq(int, add("alice", "", ""), REG_OK));
	cr_assert(eq(int, registry_get(reg, "alice", &stale), REG_OK));
	mkuser(&next, "alice", "", "First", "");
	cr_assert(eq(int, update(&stale, &next), REG_OK));
	mkuser(&next, "alice", "", "Second", "");
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	cr_assert(eq(int, registry_update(reg, &stale, &next), REG_NOT_FOUND));
	cr_assert(eq(int, registry_commit(reg), REG_OK));
	cr_assert(eq(i64, revision(), 2));
	cr_assert(eq(int, registry_get(reg, "alice", &cur), REG_OK));
	cr_assert(eq(str, cur.display_name, "First"));
	cr_assert(eq(int, update(&cur, &next), REG_OK));
	cr_assert(eq(int, registry_get(reg, "alice", &got), REG_OK));
	cr_assert(eq(str, got.display_name, "Second"));
}

Test(CONTRACT_SUITE, update_of_deleted_user_is_not_found)
{
	struct user cur, next;

	cr_assert(eq(int, add("alice", "", ""), REG_OK));
	cr_assert(eq(int, registry_get(reg, "alice", &cur), REG_OK));
	cr_assert(eq(int, delete(&cur), REG_OK));
	mkuser(&next, "alice", "", "", "");
	cr_assert(eq(int, update(&cur, &next), REG_NOT_FOUND));
	cr_assert(eq(i64, revision(), 2));
}

Test(CONTRACT_SUITE, update_cannot_rename)
{
	struct user cur, next;

	cr_assert(eq(int, add("alice", "", ""), REG_OK));
	cr_assert(eq(int, registry_get(reg, "alice", &cur), REG_OK));
	mkuser(&next, "alicia", "", "", "");
	cr_assert(eq(int, update(&cur, &next), REG_ERROR));
	cr_assert(eq(int, registry_get(reg, "alicia", &next), REG_NOT_FOUND));
}

Test(CONTRACT_SUITE, update_outside_transaction_is_misuse)
{
	struct user cur, next;

	cr_assert(eq(int, add("alice", "", ""), REG_OK));
	cr_assert(eq(int, registry_get(reg, "alice", &cur), REG_OK));
	mkuser(&next, "alice", "", "X", "");
	cr_assert(eq(int, registry_update(reg, &cur, &next), REG_ERROR));
	cr_assert(eq(i64, revision(), 1));
}

/* Delete and versions */

Test(CONTRACT_SUITE, delete_then_get_is_not_found)
{
	struct user cur;

	cr_assert(eq(int, add("alice", "a@example.org", ""), REG_OK));
	cr_assert(eq(int, registry_get(reg, "alice", &cur), REG_OK));
	cr_assert(eq(int, delete(&cur), REG_OK));
	cr_assert(eq(int, registry_get(reg, "alice", &cur), REG_NOT_FOUND));
	cr_assert(eq(i64, revision(), 2));
	/* A retried delete finds nothing and writes nothing. */
	cr_assert(eq(int, delete(&cur), REG_NOT_FOUND));
	cr_assert(eq(i64, revision(), 2));
	/* The email is free again. */
	cr_assert(eq(int, add("bob", "A@example.org", ""), REG_OK));
}

Test(CONTRACT_SUITE, delete_with_stale_version_is_not_found)
{
	struct user stale, next;

	cr_assert(eq(int, add("alice", "", ""), REG_OK));
	cr_assert(eq(int, registry_get(reg, "alice", &stale), REG_OK));
	mkuser(&next, "alice", "", "X", "");
	cr_assert(eq(int, update(&stale, &next), REG_OK));
	cr_assert(eq(int, delete(&stale), REG_NOT_FOUND));
	cr_assert(eq(int, registry_get(reg, "alice", &next), REG_OK));
	cr_assert(eq(i64, revision(), 2));
}

Test(CONTRACT_SUITE, delete_outside_transaction_is_misuse)
{
	struct user cur;

	cr_assert(eq(int, add("alice", "", ""), REG_OK));
	cr_assert(eq(int, registry_get(reg, "alice", &cur), REG_OK));
	cr_assert(eq(int, registry_delete(reg, &cur), REG_ERROR));
	cr_assert(eq(int, registry_get(reg, "alice", &cur), REG_OK));
}

Test(CONTRACT_SUITE, recreate_after_delete_gets_larger_version)
{
	struct user cur, next, u;
	int64_t highest;

	cr_assert(eq(int, add("alice", "", ""), REG_OK));
	cr_assert(eq(int, add("bob", "", ""), REG_OK));
	cr_assert(eq(int, registry_get(reg, "alice", &cur), REG_OK));
	mkuser(&next, "alice", "", "X", "");
	cr_assert(eq(int, update(&cur, &next), REG_OK));
	highest = next.version;
	cr_assert(eq(int, delete(&next), REG_OK));
	cr_assert(eq(i64, revision(), highest + 1));
	mkuser(&u, "ALICE", "", "", "");
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	cr_assert(eq(int, registry_insert(reg, &u), REG_OK));
	cr_assert(eq(int, registry_commit(reg), REG_OK));
	cr_assert(gt(i64, u.version, highest + 1));
	cr_assert(eq(i64, u.version, revision()));
}

Test(CONTRACT_SUITE, versions_strictly_increase_across_writes)
{
	struct user a, b, next;

	cr_assert(eq(int, add("a", "", ""), REG_OK));
	cr_assert(eq(int, add("b", "", ""), REG_OK));
	cr_assert(eq(int, registry_get(reg, "a", &a), REG_OK));
	cr_assert(eq(int, registry_get(reg, "b", &b), REG_OK));
	cr_assert(eq(i64, a.version, 1));
	cr_assert(eq(i64, b.version, 2));
	mkuser(&next, "a", "", "A", "");
	cr_assert(eq(int, update(&a, &next), REG_OK));
	cr_assert(eq(i64, next.version, 3));
	cr_assert(eq(int, delete(&b), REG_OK));
	cr_assert(eq(i64, revision(), 4));
	cr_assert(eq(int, registry_get(reg, "a", &a), REG_OK));
	cr_assert(eq(i64, a.version, 3));
}

/* The last-admin rule */

Test(CONTRACT_SUITE, update_refuses_to_remove_last_admin)
{
	struct user cur, next, got;

	cr_assert(eq(int, add("root", "", "admin,ops"), REG_OK));
	cr_assert(eq(int, add("bob", "", "ops"), REG_OK));
	cr_assert(eq(int, registry_get(reg, "root", &cur), REG_OK));
	mkuser(&next, "root", "", "Root", "ops");
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	cr_assert(eq(int, registry_update(reg, &cur, &next), REG_LAST_ADMIN));
	cr_assert(eq(i64, revision(), 2));
	cr_assert(eq(int, registry_commit(reg), REG_OK));
	cr_assert(eq(int, registry_get(reg, "root", &got), REG_OK));
	cr_assert(eq(sz, got.nroles, 2));
	cr_assert(eq(str, got.roles[0], "admin"));
	cr_assert(eq(str, got.display_name, ""));
	cr_assert(eq(i64, got.version, 1));
	/* Keeping admin while changing the rest is fine. */
	mkuser(&next, "root", "", "Root", "admin");
	cr_assert(eq(int, update(&cur, &next), REG_OK));
}

Test(CONTRACT_SUITE, delete_refuses_last_admin)
{
	struct user cur;

	cr_assert(eq(int, add("root", "", "admin"), REG_OK));
	cr_assert(eq(int, add("bob", "", ""), REG_OK));
	cr_assert(eq(int, registry_get(reg, "root", &cur), REG_OK));
	cr_assert(eq(int, delete(&cur), REG_LAST_ADMIN));
	cr_assert(eq(int, registry_get(reg, "root", &cur), REG_OK));
	cr_assert(eq(i64, revision(), 2));
	/* Non-admins can still go. */
	cr_assert(eq(int, registry_get(reg, "bob", &cur), REG_OK));
	cr_assert(eq(int, delete(&cur), REG_OK));
}

Test(CONTRACT_SUITE, admin_can_go_while_another_admin_remains)
{
	struct user a, b, next;

	cr_assert(eq(int, add("a", "", "admin"), REG_OK));
	cr_assert(eq(int, add("b", "", "admin"), REG_OK));
	cr_assert(eq(int, registry_get(reg, "a", &a), REG_OK));
	mkuser(&next, "a", "", "", "");
	cr_assert(eq(int, update(&a, &next), REG_OK));
	/* b is now the last admin. */
	cr_assert(eq(int, registry_get(reg, "b", &b), REG_OK));
	cr_assert(eq(int, delete(&b), REG_LAST_ADMIN));
	mkuser(&next, "b", "", "", "");
	cr_assert(eq(int, update(&b, &next), REG_LAST_ADMIN));
	/* Make a admin again, then b may go. */
	cr_assert(eq(int, registry_get(reg, "a", &a), REG_OK));
	mkuser(&next, "a", "", "", "admin");
	cr_assert(eq(int, update(&a, &next), REG_OK));
	cr_assert(eq(int, delete(&b), REG_OK));
}

Test(CONTRACT_SUITE, registry_without_admin_lets_anyone_change)
{
	struct user cur, next;

	cr_assert(eq(int, add("alice", "", "ops"), REG_OK));
	cr_assert(eq(int, add("bob", "", ""), REG_OK));
	cr_assert(eq(int, registry_get(reg, "alice", &cur), REG_OK));
	mkuser(&next, "alice", "", "", "");
	cr_assert(eq(int, update(&cur, &next), REG_OK));
	cr_assert(eq(int, delete(&next), REG_OK));
	cr_assert(eq(int, registry_get(reg, "bob", &cur), REG_OK));
	cr_assert(eq(int, delete(&cur), REG_OK));
	cr_assert(eq(i64, revision(), 5));
}

Test(CONTRACT_SUITE, last_admin_rule_sees_admin_made_in_same_transaction)
{
	struct user root, u;

	cr_assert(eq(int, add("root", "", "admin"), REG_OK));
	cr_assert(eq(int, registry_get(reg, "root", &root), REG_OK));
	mkuser(&u, "deputy", "", "", "admin");
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	cr_assert(eq(int, registry_insert(reg, &u), REG_OK));
	cr_assert(eq(int, registry_delete(reg, &root), REG_OK));
	cr_assert(eq(int, registry_delete(reg, &u), REG_LAST_ADMIN));
	cr_assert(eq(int, registry_commit(reg), REG_OK));
	cr_assert(eq(int, registry_get(reg, "deputy", &u), REG_OK));
}

/* List */

/*
 * Lists come in the byte order of the canonical keys, pages by a cursor
 * too. Both suites run it, under names of their own.
 */
static void
list_in_key_byte_order(void)
{
	static const char *const names[] = {
		"ab", "a_b", "A0", "a.b", "a-b", "Bob", "9z", "a"
	};
	static const char *const want[] = {
		"9z", "a", "a-b", "a.b", "A0", "a_b", "ab", "Bob"
	};
	struct user out[REG_LIST_MAX];
	size_t i, n = 99;
	int more = 9;

	add_many(names, 8);
	cr_assert(eq(int, registry_list(reg, NULL, NULL, 10, out, &n, &more),
	    REG_OK));
	cr_assert(eq(sz, n, 8));
	cr_assert(eq(int, more, 0));
	for (i = 0; i < n; i++)
		cr_assert(eq(str, out[i].username, (char *)want[i]));
	cr_assert(eq(i64, out[0].version, 7));
	/* Paging by a cursor between keys keeps byte order too. */
	cr_assert(eq(int, registry_list(reg, "a-b", NULL, 2, out, &n, &more),
	    REG_OK));
	cr_assert(eq(sz, n, 2));
	cr_assert(eq(str, out[0].username, "a.b"));
	cr_assert(eq(str, out[1].username, "A0"));
	cr_assert(eq(int, more, 1));
}

Test(CONTRACT_SUITE, list_pages_with_after_and_more)
{
	static const char *const names[] = { "e", "d", "c", "b", "a" };
	struct user out[2];
	size_t n;
	int more;

	add_many(names, 5);
	cr_assert(eq(int, registry_list(reg, "", "", 2, out, &n, &more),
	    REG_OK));
	cr_assert(eq(sz, n, 2));
	cr_assert(eq(int, more, 1));
	cr_assert(eq(str, out[0].username, "a"));
	cr_assert(eq(str, out[1].username, "b"));
	cr_assert(eq(int, registry_list(reg, "b", NULL, 2, out, &n, &more),
	    REG_OK));
	cr_assert(eq(sz, n, 2));
	cr_assert(eq(int, more, 1));
	cr_assert(eq(str, out[0].username, "c"));
	cr_assert(eq(str, out[1].username, "d"));
	cr_assert(eq(int, registry_list(reg, "d", NULL, 2, out, &n, &more),
	    REG_OK));
	cr_assert(eq(sz, n, 1));
	cr_assert(eq(int, more, 0));
	cr_assert(eq(str, out[0].username, "e"));
	/* A cursor between keys, and one past the end. */
	cr_assert(eq(int, registry_list(reg, "bb", NULL, 2, out, &n, &more),
	    REG_OK));
	cr_assert(eq(str, out[0].username, "c"));
	cr_assert(eq(int, registry_list(reg, "e", NULL, 2, out, &n, &more),
	    REG_OK));
	cr_assert(eq(sz, n, 0));
	cr_assert(eq(int, more, 0));
}

Test(CONTRACT_SUITE, list_more_is_clear_when_page_is_exactly_full)
{
	static const char *const names[] = { "a", "b", "c" };
	struct user out[3];
	size_t n;
	int more;

	add_many(names, 3);
	cr_assert(eq(int, registry_list(reg, NULL, NULL, 3, out, &n, &more),
	    REG_OK));
	cr_assert(eq(sz, n, 3));
	cr_assert(eq(int, more, 0));
	cr_assert(eq(int, registry_list(reg, NULL, NULL, 2, out, &n, &more),
	    REG_OK));
	cr_assert(eq(sz, n, 2));
	cr_assert(eq(int, more, 1));
}

Test(CONTRACT_SUITE, list_filters_by_literal_prefix)
{
	static const char *const names[] = {
		"al", "Alice", "alicia", "Alfred", "bob", "ak", "am", "al_x"
	};
	struct user out[10];
	size_t n;
	int more;

	add_many(names, 8);
	cr_assert(eq(int, registry_list(reg, NULL, "ali", 10, out, &n, &more),
	    REG_OK));
	cr_assert(eq(sz, n, 2));
	cr_assert(eq(str, out[0].username, "Alice"));
	cr_assert(eq(str, out[1].username, "alicia"));
	cr_assert(eq(int, registry_list(reg, NULL, "al", 10, out, &n, &more),
	    REG_OK));
	cr_assert(eq(sz, n, 5));
	cr_assert(eq(str, out[0].username, "al"));
	cr_assert(eq(str, out[1].username, "al_x"));
	cr_assert(eq(str, out[2].username, "Alfred"));
	cr_assert(eq(str, out[4].username, "alicia"));
	/* Paging within a prefix. */
	cr_assert(eq(int, registry_list(reg, NULL, "al", 2, out, &n, &more),
	    REG_OK));
	cr_assert(eq(sz, n, 2));
	cr_assert(eq(int, more, 1));
	cr_assert(eq(int, registry_list(reg, "alfred", "al", 2, out, &n,
	    &more), REG_OK));
	cr_assert(eq(sz, n, 2));
	cr_assert(eq(int, more, 0));
	cr_assert(eq(str, out[0].username, "Alice"));
	/* A cursor before the prefix range starts at the prefix. */
	cr_assert(eq(int, registry_list(reg, "a", "b", 2, out, &n, &more),
	    REG_OK));
	cr_assert(eq(sz, n, 1));
	cr_assert(eq(str, out[0].username, "bob"));
	/* Literal: no wildcards, and the prefix is not lowercased here. */
	cr_assert(eq(int, registry_list(reg, NULL, "a%", 10, out, &n, &more),
	    REG_OK));
	cr_assert(eq(sz, n, 0));
	cr_assert(eq(int, registry_list(reg, NULL, "a_", 10, out, &n, &more),
	    REG_OK));
	cr_assert(eq(sz, n, 0));
	cr_assert(eq(int, registry_list(reg, NULL, "Al", 10, out, &n, &more),
	    REG_OK));
	cr_assert(eq(sz, n, 0));
	cr_assert(eq(int, registry_list(reg, NULL, "bob", 10, out, &n, &more),
	    REG_OK));
	cr_assert(eq(sz, n, 1));
	cr_assert(eq(int, registry_list(reg, NULL, "zz", 10, out, &n, &more),
	    REG_OK));
	cr_assert(eq(sz, n, 0));
	cr_assert(eq(int, more, 0));
}

Test(CONTRACT_SUITE, list_of_empty_registry_is_empty)
{
	struct user out[1];
	size_t n = 5;
	int more = 5;

	cr_assert(eq(int, registry_list(reg, NULL, NULL, 1, out, &n, &more),
	    REG_OK));
	cr_assert(eq(sz, n, 0));
	cr_assert(eq(int, more, 0));
}

Test(CONTRACT_SUITE, list_limit_must_be_within_bounds)
{
	static struct user out[REG_LIST_MAX + 1];
	char names[REG_LIST_MAX + 1][8];
	const char *ptrs[REG_LIST_MAX + 1];
	size_t i, n;
	int more;

	for (i = 0; i < REG_LIST_MAX + 1; i++) {
		snprintf(names[i], sizeof(names[i]), "u%03zu", i);
		ptrs[i] = names[i];
	}
	add_many(ptrs, REG_LIST_MAX + 1);
	cr_assert(eq(int, registry_list(reg, NULL, NULL, 0, out, &n, &more),
	    REG_ERROR));
	cr_assert(eq(int, registry_list(reg, NULL, NULL, REG_LIST_MAX + 1,
	    out, &n, &more), REG_ERROR));
	cr_assert(eq(int, registry_list(reg, NULL, NULL, REG_LIST_MAX, out,
	    &n, &more), REG_OK));
	cr_assert(eq(sz, n, REG_LIST_MAX));
	cr_assert(eq(int, more, 1));
	cr_assert(eq(str, out[REG_LIST_MAX - 1].username, "u199"));
	cr_assert(eq(int, registry_list(reg, "u199", NULL, REG_LIST_MAX, out,
	    &n, &more), REG_OK));
	cr_assert(eq(sz, n, 1));
	cr_assert(eq(int, more, 0));
}

/* Count, load, revision */

Test(CONTRACT_SUITE, count_follows_inserts_and_deletes)
{
	struct user cur, u;

	cr_assert(eq(i64, count(), 0));
	cr_assert(eq(int, add("alice", "", ""), REG_OK));
	cr_assert(eq(int, add("bob", "", ""), REG_OK));
	cr_assert(eq(i64, count(), 2));
	cr_assert(eq(int, registry_get(reg, "alice", &cur), REG_OK));
	cr_assert(eq(int, delete(&cur), REG_OK));
	cr_assert(eq(i64, count(), 1));
	/* A refused or rolled back insert counts nothing. */
	cr_assert(eq(int, add("BOB", "", ""), REG_EXISTS));
	mkuser(&u, "carol", "", "", "");
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	cr_assert(eq(int, registry_insert(reg, &u), REG_OK));
	cr_assert(eq(i64, count(), 2));
	registry_rollback(reg);
	cr_assert(eq(i64, count(), 1));
}

Test(CONTRACT_SUITE, users_count_follows_inserts_deletes_and_rollbacks)
{
	struct user cur, u;

	cr_assert(eq(int, add("a", "", ""), REG_OK));
	cr_assert(eq(int, add("b", "", ""), REG_OK));
	cr_assert(eq(int, add("A", "", ""), REG_EXISTS));
	cr_assert(eq(i64, count(), 2));
	cr_assert(eq(int, registry_get(reg, "a", &cur), REG_OK));
	cr_assert(eq(int, delete(&cur), REG_OK));
	cr_assert(eq(i64, count(), 1));
	mkuser(&u, "c", "", "", "");
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	cr_assert(eq(int, registry_insert(reg, &u), REG_OK));
	registry_rollback(reg);
	cr_assert(eq(i64, count(), 1));
	cr_assert(eq(i64, raw_int("SELECT count(*) FROM users"), 1));
}

Test(CONTRACT_SUITE, count_moves_with_the_commit_and_its_savepoints)
{
	struct user u;
	int64_t n = -1;

	cr_assert(eq(int, registry_begin(reg), REG_OK));
	mkuser(&u, "x", "", "", "");
	cr_assert(eq(int, registry_insert(reg, &u), REG_OK));
	/* Inside the write, with its own inserts; outside, not yet. */
	cr_assert(eq(int, registry_count(reg, &n), REG_OK));
	cr_assert(eq(i64, n, 1));
	cr_assert(eq(i64, raw_int("SELECT v FROM meta WHERE k = 'users'"), 0));
	cr_assert(eq(int, registry_savepoint(reg), REG_OK));
	mkuser(&u, "y", "", "", "");
	cr_assert(eq(int, registry_insert(reg, &u), REG_OK));
	cr_assert(eq(int, registry_savepoint_end(reg, 0), REG_OK));
	cr_assert(eq(int, registry_commit(reg), REG_OK));
	cr_assert(eq(i64, count(), 1));
	cr_assert(eq(i64, raw_int("SELECT count(*) FROM users"), 1));
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	cr_assert(eq(int, registry_get(reg, "x", &u), REG_OK));
	cr_assert(eq(int, registry_delete(reg, &u), REG_OK));
	registry_rollback(reg);
	cr_assert(eq(i64, count(), 1));
}

Test(CONTRACT_SUITE, users_count_moves_with_the_commit_and_savepoints)
{
	struct user u;
	int64_t n = -1;

	cr_assert(eq(int, add("alice", "", ""), REG_OK));
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	mkuser(&u, "bob", "", "", "");
	cr_assert(eq(int, registry_insert(reg, &u), REG_OK));
	/* Seen inside the write, not outside it yet. */
	cr_assert(eq(int, registry_count(reg, &n), REG_OK));
	cr_assert(eq(i64, n, 2));
	cr_assert(eq(int, registry_savepoint(reg), REG_OK));
	mkuser(&u, "carol", "", "", "");
	cr_assert(eq(int, registry_insert(reg, &u), REG_OK));
	cr_assert(eq(int, registry_savepoint_end(reg, 0), REG_OK));
	cr_assert(eq(int, registry_count(reg, &n), REG_OK));
	cr_assert(eq(i64, n, 2));
	cr_assert(eq(int, registry_commit(reg), REG_OK));
	cr_assert(eq(int, registry_count(reg, &n), REG_OK));
	cr_assert(eq(i64, n, 2));
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	cr_assert(eq(int, registry_get(reg, "bob", &u), REG_OK));
	cr_assert(eq(int, registry_delete(reg, &u), REG_OK));
	registry_rollback(reg);
	cr_assert(eq(int, registry_count(reg, &n), REG_OK));
	cr_assert(eq(i64, n, 2));
	cr_assert(eq(int, registry_integrity(reg), REG_OK));
}

Test(CONTRACT_SUITE, revision_is_stored_once_by_the_commit)
{
	struct user u;
	int64_t v = -1;

	cr_assert(eq(int, registry_begin(reg), REG_OK));
	mkuser(&u, "a", "", "", "");
	cr_assert(eq(int, registry_insert(reg, &u), REG_OK));
	mkuser(&u, "b", "", "", "");
	cr_assert(eq(int, registry_insert(reg, &u), REG_OK));
	cr_assert(eq(int, registry_revision(reg, &v), REG_OK));
	cr_assert(eq(i64, v, 2));
	/* An undone write gives its version back. */
	cr_assert(eq(int, registry_savepoint(reg), REG_OK));
	mkuser(&u, "c", "", "", "");
	cr_assert(eq(int, registry_insert(reg, &u), REG_OK));
	cr_assert(eq(i64, u.version, 3));
	cr_assert(eq(int, registry_savepoint_end(reg, 0), REG_OK));
	cr_assert(eq(int, registry_revision(reg, &v), REG_OK));
	cr_assert(eq(i64, v, 2));
	cr_assert(eq(int, registry_commit(reg), REG_OK));
	cr_assert(eq(i64, revision(), 2));
	cr_assert(eq(i64, raw_int("SELECT v FROM meta WHERE k = 'revision'"),
	    2));
	/* A rolled-back write stores nothing. */
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	mkuser(&u, "d", "", "", "");
	cr_assert(eq(int, registry_insert(reg, &u), REG_OK));
	registry_rollback(reg);
	cr_assert(eq(i64, revision(), 2));
}

Test(CONTRACT_SUITE, load_keeps_version_and_timestamps_without_a_new_revision)
{
	struct user u, got;

	mkuser(&u, "Carol", "c@example.org", "Carol C.", "ops");
	u.version = 41;
	u.created_at = 1000;
	u.updated_at = 2000;
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	cr_assert(eq(int, registry_load(reg, &u), REG_OK));
	cr_assert(eq(int, registry_commit(reg), REG_OK));
	cr_assert(eq(i64, revision(), 0));
	cr_assert(eq(i64, count(), 1));
	cr_assert(eq(int, registry_get(reg, "carol", &got), REG_OK));
	cr_assert(eq(str, got.username, "Carol"));
	cr_assert(eq(str, got.email, "c@example.org"));
	cr_assert(eq(str, got.display_name, "Carol C."));
	cr_assert(eq(str, got.roles[0], "ops"));
	cr_assert(eq(i64, got.version, 41));
	cr_assert(eq(i64, got.created_at, 1000));
	cr_assert(eq(i64, got.updated_at, 2000));
}

Test(CONTRACT_SUITE, load_refuses_taken_names_and_emails_and_malformed_users)
{
	struct user u;

	cr_assert(eq(int, add("alice", "a@example.org", ""), REG_OK));
	mkuser(&u, "ALICE", "", "", "");
	u.version = 5;
	u.created_at = u.updated_at = 10;
	cr_assert(eq(int, registry_load(reg, &u), REG_ERROR));
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	cr_assert(eq(int, registry_load(reg, &u), REG_EXISTS));
	mkuser(&u, "bob", "A@example.org", "", "");
	u.version = 5;
	u.created_at = u.updated_at = 10;
	cr_assert(eq(int, registry_load(reg, &u), REG_EMAIL_TAKEN));
	mkuser(&u, "bob", "", "", "");
	u.created_at = u.updated_at = 10;
	u.version = 0;
	cr_assert(eq(int, registry_load(reg, &u), REG_ERROR));
	u.version = 5;
	u.updated_at = 9;
	cr_assert(eq(int, registry_load(reg, &u), REG_ERROR));
	u.created_at = -1;
	cr_assert(eq(int, registry_load(reg, &u), REG_ERROR));
	cr_assert(eq(int, registry_commit(reg), REG_OK));
	cr_assert(eq(i64, count(), 1));
	cr_assert(eq(int, registry_get(reg, "bob", &u), REG_NOT_FOUND));
}

Test(CONTRACT_SUITE, raise_revision_raises_and_never_lowers)
{
	struct user u;

	cr_assert(eq(int, registry_raise_revision(reg, 50), REG_ERROR));
	cr_assert(eq(i64, revision(), 0));
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	cr_assert(eq(int, registry_raise_revision(reg, 50), REG_OK));
	cr_assert(eq(int, registry_commit(reg), REG_OK));
	cr_assert(eq(i64, revision(), 50));
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	cr_assert(eq(int, registry_raise_revision(reg, 10), REG_OK));
	cr_assert(eq(int, registry_commit(reg), REG_OK));
	cr_assert(eq(i64, revision(), 50));
	/* The next write goes on from there. */
	mkuser(&u, "alice", "", "", "");
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	cr_assert(eq(int, registry_insert(reg, &u), REG_OK));
	cr_assert(eq(int, registry_commit(reg), REG_OK));
	cr_assert(eq(i64, u.version, 51));
}

/* Idempotency records */

Test(CONTRACT_SUITE, idem_unknown_key_is_not_found)
{
	struct reg_idem rec;

	cr_assert(eq(int, idem_get("k1", "fp", 1000, &rec), REG_NOT_FOUND));
	cr_assert(eq(ptr, rec.response, NULL));
	/* A lookup writes nothing and leaves no transaction open. */
	cr_assert(eq(int, registry_in_transaction(reg), 0));
	cr_assert(eq(i64, idem_rows(), 0));
}

/*
 * A stored answer replays byte for byte, a NUL and a high byte inside
 * and a NUL after it; another body's fingerprint finds a mismatch. Both
 * suites run it, under names of their own.
 */
static void
idem_replay_keeps_its_bytes(void)
{
	static const char body[] = "{\"a\":1}\0tail\xff";
	struct reg_idem rec;

	idem_put("k1", "fp", 201, body, sizeof(body) - 1, 1000, 100);
	cr_assert(eq(int, idem_get("k1", "fp", 1050, &rec), REG_IDEM_DONE));
	cr_assert(eq(int, rec.status, 201));
	cr_assert(eq(sz, rec.response_len, sizeof(body) - 1));
	cr_assert(eq(int, memcmp(rec.response, body, sizeof(body) - 1), 0));
	cr_assert(eq(chr, rec.response[rec.response_len], '\0'));
	cr_assert(eq(str, rec.fingerprint, "fp"));
	cr_assert(eq(i64, rec.expires_at, 1100));
	registry_idem_release(&rec);
	cr_assert(eq(ptr, rec.response, NULL));
	/* Releasing twice, or NULL, is harmless. */
	registry_idem_release(&rec);
	registry_idem_release(NULL);
	cr_assert(eq(int, idem_get("k1", "other", 1050, &rec),
	    REG_IDEM_MISMATCH));
	cr_assert(eq(ptr, rec.response, NULL));
}

Test(CONTRACT_SUITE, idem_other_fingerprint_is_a_mismatch)
{
	struct reg_idem rec;

	idem_put("k1", "fp", 201, "x", 1, 1000, 100);
	cr_assert(eq(int, idem_get("k1", "other", 1050, &rec),
	    REG_IDEM_MISMATCH));
	cr_assert(eq(ptr, rec.response, NULL));
	/* The record stays the answer of the body it answered. */
	cr_assert(eq(int, idem_get("k1", "fp", 1050, &rec), REG_IDEM_DONE));
	registry_idem_release(&rec);
}

Test(CONTRACT_SUITE, idem_empty_response_replays_empty)
{
	struct reg_idem rec;

	idem_put("k1", "fp", 204, NULL, 0, 1000, 100);
	cr_assert(eq(int, idem_get("k1", "fp", 1000, &rec), REG_IDEM_DONE));
	cr_assert(eq(int, rec.status, 204));
	cr_assert(eq(sz, rec.response_len, 0));
	cr_assert(not(eq(ptr, rec.response, NULL)));
	cr_assert(eq(chr, rec.response[0], '\0'));
	registry_idem_release(&rec);
}

/* Larger than libpq's output buffer: sent in pieces, never blocking. */
Test(CONTRACT_SUITE, idem_large_response_round_trips)
{
	enum { LEN = 256 * 1024 };
	struct reg_idem rec;
	char *big = malloc(LEN);
	size_t i;

	cr_assert(not(eq(ptr, big, NULL)));
	for (i = 0; i < LEN; i++)
		big[i] = (char)(i * 7 + i / 256);
	idem_put("big", "fp", 200, big, LEN, 1000, 100);
	cr_assert(eq(int, idem_get("big", "fp", 1000, &rec), REG_IDEM_DONE));
	cr_assert(eq(sz, rec.response_len, LEN));
	cr_assert(eq(int, memcmp(rec.response, big, LEN), 0));
	registry_idem_release(&rec);
	free(big);
}

Test(CONTRACT_SUITE, idem_record_commits_with_its_transaction)
{
	struct registry *other;
	struct reg_idem rec;
	struct user u;

	mkuser(&u, "alice", "", "", "");
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	cr_assert(eq(int, registry_insert(reg, &u), REG_OK));
	cr_assert(eq(int, registry_idem_put(reg, "scope", "k1", "fp", 201,
	    "x", 1, 1000, 100), REG_OK));
	/* Inside its transaction the record already answers. */
	cr_assert(eq(int, idem_get("k1", "fp", 1000, &rec), REG_IDEM_DONE));
	registry_idem_release(&rec);
	cr_assert(eq(int, registry_commit(reg), REG_OK));
	other = open_fixture(2000, 0);
	cr_assert(eq(int, registry_get(other, "alice", &u), REG_OK));
	cr_assert(eq(int, registry_idem_get(other, "scope", "k1", "fp", 1000,
	    &rec), REG_IDEM_DONE));
	cr_assert(eq(int, rec.status, 201));
	registry_idem_release(&rec);
	registry_close(other);
}

Test(CONTRACT_SUITE, idem_record_rolled_back_with_its_transaction)
{
	struct reg_idem rec;
	struct user u;

	mkuser(&u, "alice", "", "", "");
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	cr_assert(eq(int, registry_insert(reg, &u), REG_OK));
	cr_assert(eq(int, registry_idem_put(reg, "scope", "k1", "fp", 201,
	    "x", 1, 1000, 100), REG_OK));
	registry_rollback(reg);
	cr_assert(eq(int, registry_get(reg, "alice", &u), REG_NOT_FOUND));
	cr_assert(eq(int, idem_get("k1", "fp", 1000, &rec), REG_NOT_FOUND));
	cr_assert(eq(i64, idem_rows(), 0));
	cr_assert(eq(i64, revision(), 0));
}

/*
 * The record is written in the transaction of the write it answers: no
 * other connection sees it before the commit, and a rollback takes both.
 */
Test(CONTRACT_SUITE, idem_record_is_written_in_the_writes_transaction)
{
	struct registry *other = open_fixture(2000, 0);
	struct reg_idem rec;
	struct user u;

	mkuser(&u, "alice", "", "", "");
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	cr_assert(eq(int, registry_idem_get(reg, "scope", "k1", "fp", 1000,
	    &rec), REG_NOT_FOUND));
	cr_assert(eq(int, registry_insert(reg, &u), REG_OK));
	cr_assert(eq(int, registry_idem_put(reg, "scope", "k1", "fp", 201,
	    "created", 7, 1000, 100), REG_OK));
	/* Inside, the record is there already. */
	cr_assert(eq(int, registry_idem_get(reg, "scope", "k1", "fp", 1000,
	    &rec), REG_IDEM_DONE));
	registry_idem_release(&rec);
	cr_assert(eq(int, registry_idem_get(other, "scope", "k1", "fp", 1000,
	    &rec), REG_NOT_FOUND));
	registry_rollback(reg);
	cr_assert(eq(int, registry_idem_get(reg, "scope", "k1", "fp", 1000,
	    &rec), REG_NOT_FOUND));
	cr_assert(eq(int, registry_get(reg, "alice", &u), REG_NOT_FOUND));
	/* Committed, both are there for everyone. */
	mkuser(&u, "alice", "", "", "");
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	cr_assert(eq(int, registry_insert(reg, &u), REG_OK));
	cr_assert(eq(int, registry_idem_put(reg, "scope", "k1", "fp", 201,
	    "created", 7, 1000, 100), REG_OK));
	cr_assert(eq(int, registry_commit(reg), REG_OK));
	cr_assert(eq(int, registry_idem_get(other, "scope", "k1", "fp", 1000,
	    &rec), REG_IDEM_DONE));
	cr_assert(eq(int, memcmp(rec.response, "created", 7), 0));
	registry_idem_release(&rec);
	cr_assert(eq(int, registry_get(other, "alice", &u), REG_OK));
	registry_close(other);
}

/*
 * A record is stored in a write transaction only: neither outside one
 * nor in a read. Both suites run it, under names of their own.
 */
static void
idem_put_outside_a_write_is_refused(void)
{
	struct reg_idem rec;

	cr_assert(eq(int, registry_idem_put(reg, "scope", "k1", "fp", 201,
	    "x", 1, 1000, 100), REG_ERROR));
	cr_assert(eq(int, registry_begin_read(reg), REG_OK));
	cr_assert(eq(int, registry_idem_put(reg, "scope", "k1", "fp", 201,
	    "x", 1, 1000, 100), REG_ERROR));
	registry_rollback(reg);
	cr_assert(eq(i64, idem_rows(), 0));
	cr_assert(eq(int, idem_get("k1", "fp", 1000, &rec), REG_NOT_FOUND));
}

Test(CONTRACT_SUITE, idem_record_expires_after_its_ttl)
{
	struct reg_idem rec;

	idem_put("k1", "fp", 201, "x", 1, 1000, 100);
	/* Expires at 1000 + 100; gone strictly after. */
	cr_assert(eq(int, idem_get("k1", "fp", 1100, &rec), REG_IDEM_DONE));
	registry_idem_release(&rec);
	cr_assert(eq(int, idem_get("k1", "fp", 1101, &rec), REG_NOT_FOUND));
	/* An expired record answers no body at all, not even a mismatch. */
	cr_assert(eq(int, idem_get("k1", "other", 1101, &rec),
	    REG_NOT_FOUND));
}

Test(CONTRACT_SUITE, idem_expired_record_is_replaced_by_a_new_one)
{
	struct reg_idem rec;

	idem_put("k1", "fp", 201, "old", 3, 1000, 100);
	idem_put("k1", "fp2", 409, "new", 3, 2000, 100);
	cr_assert(eq(int, idem_get("k1", "fp2", 2000, &rec), REG_IDEM_DONE));
	cr_assert(eq(int, rec.status, 409));
	cr_assert(eq(int, memcmp(rec.response, "new", 3), 0));
	registry_idem_release(&rec);
	cr_assert(eq(int, idem_get("k1", "fp", 2000, &rec),
	    REG_IDEM_MISMATCH));
	cr_assert(eq(i64, idem_rows(), 1));
}

Test(CONTRACT_SUITE, idem_expired_record_reads_as_gone_and_is_replaced)
{
	struct reg_idem rec;

	idem_put("k1", "fp", 201, "x", 1, 1000, 100);
	/* Expires at 1000 + 100; gone strictly after. */
	cr_assert(eq(int, idem_get("k1", "fp", 1100, &rec), REG_IDEM_DONE));
	registry_idem_release(&rec);
	cr_assert(eq(int, idem_get("k1", "fp", 1101, &rec), REG_NOT_FOUND));
	idem_put("k1", "other", 422, "y", 1, 1101, 100);
	cr_assert(eq(int, idem_get("k1", "other", 1101, &rec), REG_IDEM_DONE));
	cr_assert(eq(int, rec.status, 422));
	cr_assert(eq(int, rec.response[0], 'y'));
	registry_idem_release(&rec);
	cr_assert(eq(i64, idem_rows(), 1));
}

Test(CONTRACT_SUITE, idem_put_purges_expired_records_in_batches)
{
	char key[16];
	int i;

	cr_assert(eq(int, REG_IDEM_PURGE_BATCH, 64));
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	for (i = 0; i < 70; i++) {
		snprintf(key, sizeof(key), "old%d", i);
		cr_assert(eq(int, registry_idem_put(reg, "scope", key, "fp",
		    201, "x", 1, 1000, 10), REG_OK));
	}
	cr_assert(eq(int, registry_commit(reg), REG_OK));
	cr_assert(eq(i64, idem_rows(), 70));
	idem_put("new1", "fp", 201, "x", 1, 5000, 10);
	cr_assert(eq(i64, idem_rows(), 70 - REG_IDEM_PURGE_BATCH + 1));
	idem_put("new2", "fp", 201, "x", 1, 5000, 10);
	cr_assert(eq(i64, idem_rows(), 2));
}

Test(CONTRACT_SUITE, idem_expired_record_beyond_purge_batch_reads_as_expired)
{
	struct reg_idem rec;
	char key[16];
	int i;

	/* A full batch that expires first, then zz. */
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	for (i = 0; i < REG_IDEM_PURGE_BATCH; i++) {
		snprintf(key, sizeof(key), "old%02d", i);
		cr_assert(eq(int, registry_idem_put(reg, "scope", key, "fp",
		    201, "x", 1, 1000, 10), REG_OK));
	}
	cr_assert(eq(int, registry_idem_put(reg, "scope", "zz", "fp", 201,
	    "x", 1, 1000, 50), REG_OK));
	cr_assert(eq(int, registry_commit(reg), REG_OK));
	/* The purge stops before zz, which must still read as gone. */
	idem_put("new", "fp", 201, "x", 1, 5000, 10);
	cr_assert(eq(i64, idem_rows(), 2));
	cr_assert(eq(int, idem_get("zz", "fp", 5000, &rec), REG_NOT_FOUND));
}

Test(CONTRACT_SUITE, idem_keys_are_scoped)
{
	struct reg_idem rec;

	cr_assert(eq(int, registry_begin(reg), REG_OK));
	cr_assert(eq(int, registry_idem_put(reg, "alice", "k", "fp-a", 201,
	    "a", 1, 1000, 100), REG_OK));
	cr_assert(eq(int, registry_idem_put(reg, "bob", "k", "fp-b", 409,
	    "b", 1, 1000, 100), REG_OK));
	cr_assert(eq(int, registry_idem_put(reg, "", "k", "fp-g", 201,
	    "g", 1, 1000, 100), REG_OK));
	cr_assert(eq(int, registry_commit(reg), REG_OK));
	cr_assert(eq(i64, idem_rows(), 3));
	cr_assert(eq(int, registry_idem_get(reg, "alice", "k", "fp-a", 1000,
	    &rec), REG_IDEM_DONE));
	cr_assert(eq(chr, rec.response[0], 'a'));
	registry_idem_release(&rec);
	cr_assert(eq(int, registry_idem_get(reg, "bob", "k", "fp-a", 1000,
	    &rec), REG_IDEM_MISMATCH));
	cr_assert(eq(int, registry_idem_get(reg, "carol", "k", "fp-a", 1000,
	    &rec), REG_NOT_FOUND));
	cr_assert(eq(int, registry_idem_get(reg, "", "k", "fp-g", 1000,
	    &rec), REG_IDEM_DONE));
	cr_assert(eq(chr, rec.response[0], 'g'));
	registry_idem_release(&rec);
}

Test(CONTRACT_SUITE, idem_limits)
{
	char key[REG_IDEM_KEY_MAX + 2], scope[REG_IDEM_SCOPE_MAX + 2];
	char fp[REG_IDEM_FINGERPRINT_MAX + 2];
	struct reg_idem rec;

	cr_assert(eq(int, REG_IDEM_SCOPE_MAX, 255));
	cr_assert(eq(int, REG_IDEM_FINGERPRINT_MAX, 64));
	memset(key, 'k', sizeof(key) - 1);
	key[REG_IDEM_KEY_MAX] = '\0';
	memset(scope, 's', sizeof(scope) - 1);
	scope[REG_IDEM_SCOPE_MAX] = '\0';
	memset(fp, 'f', sizeof(fp) - 1);
	fp[REG_IDEM_FINGERPRINT_MAX] = '\0';
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	/* Every limit reached exactly. */
	cr_assert(eq(int, registry_idem_put(reg, scope, key, fp, 599, "x", 1,
	    1000, 100), REG_OK));
	cr_assert(eq(int, registry_idem_get(reg, scope, key, fp, 1000, &rec),
	    REG_IDEM_DONE));
	registry_idem_release(&rec);
	cr_assert(eq(int, registry_idem_put(reg, "s", "k", "f", 100, "x", 1,
	    1000, 0), REG_OK));
	cr_assert(eq(int, registry_idem_put(reg, "s", "k2", "f", 201, "x", 1,
	    0, INT64_MAX), REG_OK));
	cr_assert(eq(int, registry_commit(reg), REG_OK));
	/* Stored as given: it reads back once committed. */
	cr_assert(eq(int, registry_idem_get(reg, scope, key, fp, 1000, &rec),
	    REG_IDEM_DONE));
	cr_assert(eq(int, rec.status, 599));
	registry_idem_release(&rec);
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	/* One past each. */
	key[REG_IDEM_KEY_MAX] = 'k';
	key[REG_IDEM_KEY_MAX + 1] = '\0';
	cr_assert(eq(int, registry_idem_put(reg, "s", key, "f", 201, "x", 1,
	    1000, 100), REG_ERROR));
	cr_assert(eq(int, registry_idem_get(reg, "s", key, "f", 1000, &rec),
	    REG_ERROR));
	scope[REG_IDEM_SCOPE_MAX] = 's';
	scope[REG_IDEM_SCOPE_MAX + 1] = '\0';
	cr_assert(eq(int, registry_idem_put(reg, scope, "k", "f", 201, "x", 1,
	    1000, 100), REG_ERROR));
	cr_assert(eq(int, registry_idem_get(reg, scope, "k", "f", 1000, &rec),
	    REG_ERROR));
	fp[REG_IDEM_FINGERPRINT_MAX] = 'f';
	fp[REG_IDEM_FINGERPRINT_MAX + 1] = '\0';
	cr_assert(eq(int, registry_idem_put(reg, "s", "k", fp, 201, "x", 1,
	    1000, 100), REG_ERROR));
	cr_assert(eq(int, registry_idem_get(reg, "s", "k", fp, 1000, &rec),
	    REG_ERROR));
	/* Empty key or fingerprint, statuses outside HTTP's, bad times. */
	cr_assert(eq(int, registry_idem_put(reg, "s", "", "f", 201, "x", 1,
	    1000, 100), REG_ERROR));
	cr_assert(eq(int, registry_idem_get(reg, "s", "", "f", 1000, &rec),
	    REG_ERROR));
	cr_assert(eq(int, registry_idem_put(reg, "s", "k", "", 201, "x", 1,
	    1000, 100), REG_ERROR));
	cr_assert(eq(int, registry_idem_get(reg, "s", "k", "", 1000, &rec),
	    REG_ERROR));
	cr_assert(eq(int, registry_idem_put(reg, "s", "k", "f", 99, "x", 1,
	    1000, 100), REG_ERROR));
	cr_assert(eq(int, registry_idem_put(reg, "s", "k", "f", 600, "x", 1,
	    1000, 100), REG_ERROR));
	cr_assert(eq(int, registry_idem_put(reg, "s", "k", "f", 201, "x", 1,
	    1000, INT64_MAX), REG_ERROR));
	cr_assert(eq(int, registry_idem_put(reg, "s", "k", "f", 201, "x", 1,
	    1000, -1), REG_ERROR));
	cr_assert(eq(int, registry_idem_put(reg, "s", "k", "f", 201, "x", 1,
	    -1, 100), REG_ERROR));
	cr_assert(eq(int, registry_idem_get(reg, "s", "k", "f", -1, &rec),
	    REG_ERROR));
	cr_assert(eq(int, registry_idem_put(reg, "s", "k", "f", 201, NULL, 1,
	    1000, 100), REG_ERROR));
	/* The refusals wrote nothing: "s"/"k" is still the 100 stored above. */
	cr_assert(eq(int, registry_idem_get(reg, "s", "k", "f", 1000, &rec),
	    REG_IDEM_DONE));
	cr_assert(eq(int, rec.status, 100));
	registry_idem_release(&rec);
	registry_rollback(reg);
}

/* What registry_idem_scan() handed the callback. */
struct scan_seen {
	int n;
	int stop_at;		/* refuse the record of this index, or -1 */
	char names[8][32];	/* "scope/key" */
	int status[8];
	int64_t expires_at[8];
};

static int
scan_fn(void *arg, const char *scope, const char *key,
    const struct reg_idem *rec)
{
	struct scan_seen *s = arg;

	if (s->n < 8) {
		snprintf(s->names[s->n], sizeof(s->names[s->n]), "%s/%s", scope,
		    key);
		s->status[s->n] = rec->status;
		s->expires_at[s->n] = rec->expires_at;
	}
	return s->n++ == s->stop_at;
}

Test(CONTRACT_SUITE, idem_scan_visits_every_record_expired_or_not)
{
	struct scan_seen s = { .stop_at = -1 };

	cr_assert(eq(int, registry_begin(reg), REG_OK));
	cr_assert(eq(int, registry_idem_put(reg, "", "k1", "fp", 409, "y", 1,
	    (int64_t)time(NULL), 100), REG_OK));
	cr_assert(eq(int, registry_commit(reg), REG_OK));
	/* Stored "at 1000", so its own purge spares k1; long expired now. */
	idem_put("k2", "fp", 201, "x", 1, 1000, 10);
	cr_assert(eq(int, registry_idem_scan(reg, scan_fn, &s), REG_OK));
	cr_assert(eq(int, s.n, 2));
	cr_assert(eq(str, s.names[0], "/k1"));
	cr_assert(eq(int, s.status[0], 409));
	cr_assert(eq(str, s.names[1], "scope/k2"));
	cr_assert(eq(int, s.status[1], 201));
	cr_assert(eq(i64, s.expires_at[1], 1010));
}

Test(CONTRACT_SUITE, idem_scan_stops_when_the_callback_refuses)
{
	struct scan_seen s = { .stop_at = 1 };

	cr_assert(eq(int, registry_begin(reg), REG_OK));
	cr_assert(eq(int, registry_idem_put(reg, "s", "a", "fp", 201, "x", 1,
	    1000, 100), REG_OK));
	cr_assert(eq(int, registry_idem_put(reg, "s", "b", "fp", 201, "x", 1,
	    1000, 100), REG_OK));
	cr_assert(eq(int, registry_idem_put(reg, "s", "c", "fp", 201, "x", 1,
	    1000, 100), REG_OK));
	cr_assert(eq(int, registry_commit(reg), REG_OK));
	cr_assert(eq(int, registry_idem_scan(reg, scan_fn, &s), REG_ERROR));
	cr_assert(eq(int, s.n, 2));
	cr_assert(eq(str, s.names[1], "s/b"));
}

/* registry_idem_scan() callback: counts, checks order and contents. */
struct scan_order {
	int n;
	int stop_at;
	char last[64];
};

static int
scan_in_order(void *arg, const char *scope, const char *key,
    const struct reg_idem *rec)
{
	struct scan_order *s = arg;
	char id[64];

	snprintf(id, sizeof(id), "%s/%s", scope, key);
	cr_assert(gt(int, strcmp(id, s->last), 0), "%s after %s", id,
	    s->last);
	snprintf(s->last, sizeof(s->last), "%s", id);
	cr_assert(eq(sz, rec->response_len, strlen(key)));
	cr_assert(eq(int, memcmp(rec->response, key, rec->response_len), 0));
	cr_assert(eq(str, (char *)rec->fingerprint, "fp"));
	return ++s->n == s->stop_at;
}

Test(CONTRACT_SUITE, idem_scan_visits_every_record_in_order)
{
	struct scan_order seen = { 0, -1, "" };
	char key[32];
	int i;

	cr_assert(eq(int, registry_begin(reg), REG_OK));
	/* More than one batch of the scan, expired ones included. */
	for (i = 0; i < 250; i++) {
		snprintf(key, sizeof(key), "k%03d", i);
		cr_assert(eq(int, registry_idem_put(reg, i % 2 ? "a" : "b",
		    key, "fp", 201, key, strlen(key), 1000,
		    i % 3 ? 100 : 0), REG_OK));
	}
	cr_assert(eq(int, registry_commit(reg), REG_OK));
	cr_assert(eq(int, registry_idem_scan(reg, scan_in_order, &seen),
	    REG_OK));
	cr_assert(eq(int, seen.n, 250));
	memset(&seen, 0, sizeof(seen));
	seen.stop_at = 120;
	cr_assert(eq(int, registry_idem_scan(reg, scan_in_order, &seen),
	    REG_ERROR));
	cr_assert(eq(int, seen.n, 120));
}

/* Several processes */

/*
 * A child's exit status: base + enum reg_err of the step that ended it.
 * Away from 1, which valgrind --error-exitcode uses.
 */
#define CHILD_INSERT 10
#define CHILD_COMMIT 30
#define CHILD_BEGIN 50
#define CHILD_OPEN 70

/*
 * Eight processes open the registry at where at once, creating it, and
 * each inserts the same name in a case of its own: one insert wins, the
 * seven others find the name taken. The caller has no handle open: none
 * may cross fork(). Both suites run it, under names of their own.
 */
static void
race_to_insert_one_name(const char *where)
{
	static const char *const names[8] = {
		"racer", "RACER", "Racer", "rAcer", "raCer", "racEr", "raceR",
		"RaCeR"
	};
	struct registry *r;
	struct user out[8];
	pid_t pids[8];
	int gate[2], status, ok = 0, exists = 0, more;
	size_t i, n;
	int64_t v;

	cr_assert(eq(int, pipe(gate), 0));
	for (i = 0; i < 8; i++) {
		pids[i] = fork();
		cr_assert(ge(int, pids[i], 0));
		if (pids[i] == 0) {
			char c, why[REG_ERRMSG_SIZE];
			enum reg_err rc, err;
			struct user u;

			close(gate[1]);
			/* Blocks until the parent closes the gate. */
			if (read(gate[0], &c, 1) == -1)
				_exit(99);
			if ((r = registry_open(where, 10000, REG_OPEN_CREATE,
			    &err, why)) == NULL) {
				fprintf(stderr, "child %zu: %s\n", i, why);
				_exit(CHILD_OPEN + (int)err);
			}
			mkuser(&u, names[i], "", "", "");
			if ((rc = registry_begin(r)) != REG_OK)
				_exit(CHILD_BEGIN + (int)rc);
			if ((rc = registry_insert(r, &u)) != REG_OK)
				registry_rollback(r);
			else if ((rc = registry_commit(r)) != REG_OK)
				rc += CHILD_COMMIT - CHILD_INSERT;
			registry_close(r);
			_exit(CHILD_INSERT + (int)rc);
		}
	}
	close(gate[0]);
	close(gate[1]);
	for (i = 0; i < 8; i++) {
		cr_assert(eq(int, waitpid(pids[i], &status, 0), pids[i]));
		cr_assert(eq(int, WIFEXITED(status), 1));
		if (WEXITSTATUS(status) == CHILD_INSERT + REG_OK)
			ok++;
		else if (WEXITSTATUS(status) == CHILD_INSERT + REG_EXISTS)
			exists++;
		else
			cr_fail("child %zu exited %d", i, WEXITSTATUS(status));
	}
	cr_assert(eq(int, ok, 1));
	cr_assert(eq(int, exists, 7));
	r = open_reg(where, 2000, 0);
	cr_assert(eq(int, registry_list(r, NULL, NULL, 8, out, &n, &more),
	    REG_OK));
	cr_assert(eq(sz, n, 1));
	cr_assert(eq(int, registry_revision(r, &v), REG_OK));
	cr_assert(eq(i64, v, 1));
	cr_assert(eq(int, registry_count(r, &v), REG_OK));
	cr_assert(eq(i64, v, 1));
	registry_close(r);
}

/* Integrity */

Test(CONTRACT_SUITE, integrity_check_passes_on_a_good_registry)
{
	cr_assert(eq(int, add("root", "r@example.org", "admin"), REG_OK));
	cr_assert(eq(int, add("bob", "", ""), REG_OK));
	cr_assert(eq(int, registry_integrity(reg), REG_OK), "%s",
	    registry_errmsg(reg));
}

/* Error texts */

Test(CONTRACT_SUITE, every_error_has_a_distinct_text)
{
	int i, j;

	for (i = 0; i < REG_ERR__MAX; i++) {
		cr_assert(not(eq(ptr, (void *)registry_err_str(i), NULL)));
		for (j = 0; j < i; j++)
			cr_assert(not(eq(str, (char *)registry_err_str(i),
			    (char *)registry_err_str(j))));
	}
	cr_assert(not(eq(ptr, (void *)registry_err_str(REG_ERR__MAX), NULL)));
	cr_assert(not(eq(ptr, (void *)registry_err_str(-1), NULL)));
	cr_assert(eq(str, (char *)registry_errmsg(NULL), "no registry"));
}

#endif
