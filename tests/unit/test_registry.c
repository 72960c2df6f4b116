/* test_registry.c: the SQLite user registry, one temp directory per test. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "registry.h"
#include "support.h"

/* Short enough that every path below fits its buffer. */
#define DIR_LEN 64
#define PATH_LEN 512

static char tmpdir[DIR_LEN];
static char dbpath[PATH_LEN];
static struct registry *reg;

static struct registry *
open_at(const char *path, int busy_ms)
{
	struct registry *r;
	enum reg_err err = REG_ERR__MAX;

	r = registry_open(path, busy_ms, &err);
	cr_assert(not(eq(ptr, r, NULL)), "open %s: %s", path,
	    registry_err_str(err));
	cr_assert(eq(int, err, REG_OK));
	return r;
}

static void
setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_registry.XXXXXX");
	cr_assert(not(eq(ptr, mkdtemp(tmpdir), NULL)));
	snprintf(dbpath, sizeof(dbpath), "%s/users.db", tmpdir);
	reg = open_at(dbpath, 2000);
}

static void
teardown(void)
{
	registry_close(reg);
	reg = NULL;
	support_remove_dir(tmpdir);
}

TestSuite(registry, .init = setup, .fini = teardown);

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

/* Inserts one user in its own transaction; returns the insert's result. */
static enum reg_err
add(const char *name, const char *email, const char *roles)
{
	struct user u;
	enum reg_err rc;

	mkuser(&u, name, email, "", roles);
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	rc = registry_insert(reg, &u);
	if (rc == REG_OK)
		cr_assert(eq(int, registry_commit(reg), REG_OK));
	else
		registry_rollback(reg);
	return rc;
}

static int64_t
revision(void)
{
	int64_t v = -1;

	cr_assert(eq(int, registry_revision(reg, &v), REG_OK));
	return v;
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

/* Runs sql on a second, plain SQLite connection to the same file. */
static void
raw_exec(const char *sql)
{
	sqlite3 *db = NULL;
	char *msg = NULL;
	int rc;

	cr_assert(eq(int, sqlite3_open(dbpath, &db), SQLITE_OK));
	sqlite3_busy_timeout(db, 2000);
	rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
	cr_assert(eq(int, rc, SQLITE_OK), "%s: %s", sql, msg ? msg : "");
	sqlite3_free(msg);
	sqlite3_close(db);
}

static int64_t
raw_int(const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int64_t v;

	cr_assert(eq(int, sqlite3_open(dbpath, &db), SQLITE_OK));
	cr_assert(eq(int, sqlite3_prepare_v2(db, sql, -1, &st, NULL),
	    SQLITE_OK));
	cr_assert(eq(int, sqlite3_step(st), SQLITE_ROW));
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static long long
ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (long long)(t1.tv_sec - t0->tv_sec) * 1000 +
	    (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Opening */

Test(registry, new_registry_starts_at_revision_zero)
{
	cr_assert(eq(i64, revision(), 0));
	cr_assert(eq(int, registry_ping(reg), REG_OK));
}

Test(registry, open_uses_write_ahead_log)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;

	cr_assert(eq(int, sqlite3_open(dbpath, &db), SQLITE_OK));
	cr_assert(eq(int, sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1,
	    &st, NULL), SQLITE_OK));
	cr_assert(eq(int, sqlite3_step(st), SQLITE_ROW));
	cr_assert(eq(str, (char *)sqlite3_column_text(st, 0), "wal"));
	sqlite3_finalize(st);
	sqlite3_close(db);
	cr_assert(eq(i64, raw_int("PRAGMA user_version"), 1));
}

Test(registry, open_in_missing_directory_is_unavailable)
{
	char path[PATH_LEN];
	enum reg_err err = REG_OK;

	snprintf(path, sizeof(path), "%s/missing/users.db", tmpdir);
	cr_assert(eq(ptr, registry_open(path, 50, &err), NULL));
	cr_assert(eq(int, err, REG_UNAVAILABLE));
}

Test(registry, open_rejects_file_that_is_not_a_database)
{
	char path[PATH_LEN];
	enum reg_err err = REG_OK;
	FILE *f;

	snprintf(path, sizeof(path), "%s/junk.db", tmpdir);
	cr_assert(not(eq(ptr, f = fopen(path, "w"), NULL)));
	for (int i = 0; i < 512; i++)
		fputs("this is not a database ", f);
	fclose(f);
	cr_assert(eq(ptr, registry_open(path, 50, &err), NULL));
	cr_assert(eq(int, err, REG_ERROR));
	/* err may be NULL. */
	cr_assert(eq(ptr, registry_open(path, 50, NULL), NULL));
}

Test(registry, open_rejects_unknown_schema_version)
{
	enum reg_err err = REG_OK;

	registry_close(reg);
	reg = NULL;
	raw_exec("PRAGMA user_version = 2");
	cr_assert(eq(ptr, registry_open(dbpath, 50, &err), NULL));
	cr_assert(eq(int, err, REG_ERROR));
}

Test(registry, reopen_keeps_users_and_revision)
{
	struct user u;

	cr_assert(eq(int, add("alice", "", ""), REG_OK));
	registry_close(reg);
	reg = open_at(dbpath, 2000);
	cr_assert(eq(int, registry_get(reg, "alice", &u), REG_OK));
	cr_assert(eq(i64, revision(), 1));
}

Test(registry, close_accepts_null)
{
	registry_close(NULL);
}

/* Insert and get */

Test(registry, insert_get_round_trip_keeps_every_field)
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
}

Test(registry, insert_get_round_trip_without_optional_fields)
{
	struct user got;

	cr_assert(eq(int, add("bob", "", ""), REG_OK));
	memset(&got, 'x', sizeof(got));
	cr_assert(eq(int, registry_get(reg, "bob", &got), REG_OK));
	cr_assert(eq(str, got.email, ""));
	cr_assert(eq(str, got.display_name, ""));
	cr_assert(eq(sz, got.nroles, 0));
}

Test(registry, insert_get_round_trip_at_field_limits)
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

Test(registry, get_finds_user_in_any_case)
{
	struct user got;

	cr_assert(eq(int, add("Alice", "", ""), REG_OK));
	cr_assert(eq(int, registry_get(reg, "ALICE", &got), REG_OK));
	cr_assert(eq(str, got.username, "Alice"));
	cr_assert(eq(int, registry_get(reg, "alice", &got), REG_OK));
	cr_assert(eq(int, registry_get(reg, "aLiCe", &got), REG_OK));
}

Test(registry, get_missing_user_is_not_found)
{
	struct user got;

	cr_assert(eq(int, registry_get(reg, "nobody", &got), REG_NOT_FOUND));
	cr_assert(eq(int, registry_get(reg, "", &got), REG_NOT_FOUND));
}

Test(registry, get_overlong_name_is_not_found_not_truncated)
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

Test(registry, insert_rejects_duplicate_in_other_case)
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

Test(registry, insert_rejects_taken_email_in_other_case)
{
	struct user got, u;

	cr_assert(eq(int, add("alice", "Alice@Example.org", ""), REG_OK));
	/* As the handlers do: the failed insert's transaction commits. */
	mkuser(&u, "bob", "aLICE@example.ORG", "", "");
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	cr_assert(eq(int, registry_insert(reg, &u), REG_EMAIL_TAKEN));
	cr_assert(eq(int, registry_commit(reg), REG_OK));
	cr_assert(eq(int, registry_get(reg, "bob", &got), REG_NOT_FOUND));
	cr_assert(eq(i64, revision(), 1));
	cr_assert(eq(int, add("bob", "bob@example.org", ""), REG_OK));
}

Test(registry, insert_with_name_and_email_taken_reports_name)
{
	cr_assert(eq(int, add("alice", "a@example.org", ""), REG_OK));
	cr_assert(eq(int, add("Alice", "A@example.org", ""), REG_EXISTS));
}

Test(registry, insert_allows_many_users_without_email)
{
	cr_assert(eq(int, add("alice", "", ""), REG_OK));
	cr_assert(eq(int, add("bob", "", ""), REG_OK));
	cr_assert(eq(int, add("carol", "", ""), REG_OK));
	cr_assert(eq(i64, revision(), 3));
}

Test(registry, insert_outside_transaction_is_misuse)
{
	struct user u;

	mkuser(&u, "alice", "", "", "");
	cr_assert(eq(int, registry_insert(reg, &u), REG_ERROR));
	cr_assert(eq(i64, revision(), 0));
	cr_assert(not(eq(str, (char *)registry_errmsg(reg), "no error")));
}

Test(registry, insert_rejects_user_that_would_not_read_back)
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

Test(registry, stored_row_over_limits_reads_as_error)
{
	struct user got, list[4];
	size_t n;
	int more;

	cr_assert(eq(int, add("alice", "", ""), REG_OK));
	raw_exec("UPDATE users SET display_name = printf('%.*c', 129, 'x')");
	cr_assert(eq(int, registry_get(reg, "alice", &got), REG_ERROR));
	cr_assert(eq(int, registry_list(reg, NULL, NULL, 4, list, &n, &more),
	    REG_ERROR));
	cr_assert(eq(sz, n, 0));
	raw_exec("UPDATE users SET display_name = printf('%.*c', 128, 'x')");
	cr_assert(eq(int, registry_get(reg, "alice", &got), REG_OK));
	/* One role more than USER_ROLES_MAX. */
	raw_exec("UPDATE users SET roles = 'a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,"
	    "q'");
	cr_assert(eq(int, registry_get(reg, "alice", &got), REG_ERROR));
	raw_exec("UPDATE users SET roles = 'a,,b'");
	cr_assert(eq(int, registry_get(reg, "alice", &got), REG_ERROR));
	raw_exec("UPDATE users SET roles = printf('%.*c', 33, 'r')");
	cr_assert(eq(int, registry_get(reg, "alice", &got), REG_ERROR));
	raw_exec("UPDATE users SET roles = 'ops'");
	cr_assert(eq(int, registry_get(reg, "alice", &got), REG_OK));
	/* An embedded NUL would silently shorten the field. */
	raw_exec("UPDATE users SET email = 'a' || char(0) || 'b'");
	cr_assert(eq(int, registry_get(reg, "alice", &got), REG_ERROR));
	raw_exec("UPDATE users SET email = NULL, username = ''");
	cr_assert(eq(int, registry_get(reg, "alice", &got), REG_ERROR));
}

/* Transactions */

Test(registry, rollback_leaves_nothing)
{
	struct user u, got;

	mkuser(&u, "alice", "a@example.org", "", "admin");
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	cr_assert(eq(int, registry_insert(reg, &u), REG_OK));
	cr_assert(eq(int, registry_get(reg, "alice", &got), REG_OK));
	registry_rollback(reg);
	cr_assert(eq(int, registry_get(reg, "alice", &got), REG_NOT_FOUND));
	cr_assert(eq(i64, revision(), 0));
	/* The name and email are free again. */
	cr_assert(eq(int, add("Alice", "A@example.org", ""), REG_OK));
	cr_assert(eq(i64, revision(), 1));
}

Test(registry, begin_does_not_nest)
{
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	cr_assert(eq(int, registry_begin(reg), REG_ERROR));
	cr_assert(eq(int, registry_commit(reg), REG_OK));
}

Test(registry, commit_without_transaction_is_misuse)
{
	cr_assert(eq(int, registry_commit(reg), REG_ERROR));
	registry_rollback(reg);
	registry_rollback(NULL);
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	registry_rollback(reg);
}

Test(registry, begin_reports_busy_after_timeout_while_another_writes)
{
	struct registry *other;
	struct timespec t0;
	struct user got;
	long long ms;

	cr_assert(eq(int, add("alice", "", ""), REG_OK));
	other = open_at(dbpath, 50);
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cr_assert(eq(int, registry_begin(other), REG_BUSY));
	ms = ms_since(&t0);
	cr_assert(ge(llong, ms, 40), "waited %lld ms", ms);
	cr_assert(lt(llong, ms, 2000), "waited %lld ms", ms);
	/* Readers are not blocked by the writer (WAL). */
	cr_assert(eq(int, registry_get(other, "alice", &got), REG_OK));
	cr_assert(eq(int, registry_ping(other), REG_OK));
	cr_assert(eq(int, registry_idem_claim(other, "", "k", "f", 1000,
	    100, 10, &(struct reg_idem){ 0 }), REG_BUSY));
	registry_rollback(reg);
	cr_assert(eq(int, registry_begin(other), REG_OK));
	registry_rollback(other);
	registry_close(other);
}

/* Update */

Test(registry, update_advances_version_and_keeps_created_at)
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

Test(registry, update_can_clear_optional_fields_and_change_case)
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
	cr_assert(eq(int, add("bob", "", ""), REG_OK));
}

Test(registry, update_keeps_own_email_in_other_case)
{
	struct user cur, next;

	cr_assert(eq(int, add("alice", "a@example.org", ""), REG_OK));
	cr_assert(eq(int, registry_get(reg, "alice", &cur), REG_OK));
	mkuser(&next, "alice", "A@EXAMPLE.org", "Alice", "");
	cr_assert(eq(int, update(&cur, &next), REG_OK));
}

Test(registry, update_rejects_email_of_another_user)
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

Test(registry, update_with_stale_version_is_not_found)
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

Test(registry, update_of_deleted_user_is_not_found)
{
	struct user cur, next;

	cr_assert(eq(int, add("alice", "", ""), REG_OK));
	cr_assert(eq(int, registry_get(reg, "alice", &cur), REG_OK));
	cr_assert(eq(int, delete(&cur), REG_OK));
	mkuser(&next, "alice", "", "", "");
	cr_assert(eq(int, update(&cur, &next), REG_NOT_FOUND));
	cr_assert(eq(i64, revision(), 2));
}

Test(registry, update_cannot_rename)
{
	struct user cur, next;

	cr_assert(eq(int, add("alice", "", ""), REG_OK));
	cr_assert(eq(int, registry_get(reg, "alice", &cur), REG_OK));
	mkuser(&next, "alicia", "", "", "");
	cr_assert(eq(int, update(&cur, &next), REG_ERROR));
	cr_assert(eq(int, registry_get(reg, "alicia", &next), REG_NOT_FOUND));
}

Test(registry, update_outside_transaction_is_misuse)
{
	struct user cur, next;

	cr_assert(eq(int, add("alice", "", ""), REG_OK));
	cr_assert(eq(int, registry_get(reg, "alice", &cur), REG_OK));
	mkuser(&next, "alice", "", "X", "");
	cr_assert(eq(int, registry_update(reg, &cur, &next), REG_ERROR));
	cr_assert(eq(i64, revision(), 1));
}

/* Delete and versions */

Test(registry, delete_then_get_is_not_found)
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

Test(registry, delete_with_stale_version_is_not_found)
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

Test(registry, delete_outside_transaction_is_misuse)
{
	struct user cur;

	cr_assert(eq(int, add("alice", "", ""), REG_OK));
	cr_assert(eq(int, registry_get(reg, "alice", &cur), REG_OK));
	cr_assert(eq(int, registry_delete(reg, &cur), REG_ERROR));
	cr_assert(eq(int, registry_get(reg, "alice", &cur), REG_OK));
}

Test(registry, recreate_after_delete_gets_larger_version)
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

Test(registry, versions_strictly_increase_across_writes)
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

Test(registry, update_refuses_to_remove_last_admin)
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

Test(registry, delete_refuses_last_admin)
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

Test(registry, admin_can_go_while_another_admin_remains)
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

Test(registry, registry_without_admin_lets_anyone_change)
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

Test(registry, last_admin_rule_sees_admin_made_in_same_transaction)
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

Test(registry, list_orders_by_canonical_key_bytes)
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
}

Test(registry, list_pages_with_after_and_more)
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

Test(registry, list_more_is_clear_when_page_is_exactly_full)
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

Test(registry, list_filters_by_literal_prefix)
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

Test(registry, list_of_empty_registry_is_empty)
{
	struct user out[1];
	size_t n = 5;
	int more = 5;

	cr_assert(eq(int, registry_list(reg, NULL, NULL, 1, out, &n, &more),
	    REG_OK));
	cr_assert(eq(sz, n, 0));
	cr_assert(eq(int, more, 0));
}

Test(registry, list_limit_must_be_within_bounds)
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

/* Several processes */

/*
 * A child's exit status: base + enum reg_err of the step that ended it.
 * Away from 1, which valgrind --error-exitcode uses.
 */
#define CHILD_INSERT 10
#define CHILD_COMMIT 30
#define CHILD_BEGIN 50
#define CHILD_OPEN 70

Test(registry, concurrent_processes_insert_same_name_once)
{
	static const char *const names[8] = {
		"racer", "RACER", "Racer", "rAcer", "raCer", "racEr", "raceR",
		"RaCeR"
	};
	char path[PATH_LEN];
	struct registry *r;
	struct user out[8];
	pid_t pids[8];
	int gate[2], status, ok = 0, exists = 0, more;
	size_t i, n;
	int64_t v;

	/* No SQLite handle may cross fork(): children open their own. */
	registry_close(reg);
	reg = NULL;
	/* A brand-new file: the children also race to create the schema. */
	snprintf(path, sizeof(path), "%s/race.db", tmpdir);
	cr_assert(eq(int, pipe(gate), 0));
	for (i = 0; i < 8; i++) {
		pids[i] = fork();
		cr_assert(ge(int, pids[i], 0));
		if (pids[i] == 0) {
			struct user u;
			enum reg_err rc, err;
			char c;

			close(gate[1]);
			/* Blocks until the parent closes the gate. */
			if (read(gate[0], &c, 1) == -1)
				_exit(99);
			if ((r = registry_open(path, 10000, &err)) == NULL)
				_exit(CHILD_OPEN + (int)err);
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
	r = open_at(path, 2000);
	cr_assert(eq(int, registry_list(r, NULL, NULL, 8, out, &n, &more),
	    REG_OK));
	cr_assert(eq(sz, n, 1));
	cr_assert(eq(int, registry_revision(r, &v), REG_OK));
	cr_assert(eq(i64, v, 1));
	registry_close(r);
}

/* Idempotency records */

static enum reg_err
claim(const char *key, const char *fp, int64_t now, struct reg_idem *rec)
{
	return registry_idem_claim(reg, "scope", key, fp, now, 100, 10, rec);
}

static void
store(const char *key, int64_t claimed_at, int status, const char *resp,
    size_t len)
{
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	cr_assert(eq(int, registry_idem_store(reg, "scope", key, claimed_at,
	    status, resp, len), REG_OK));
	cr_assert(eq(int, registry_commit(reg), REG_OK));
}

Test(registry, idem_claim_then_in_flight)
{
	struct reg_idem rec;

	cr_assert(eq(int, claim("k1", "fp", 1000, &rec), REG_OK));
	cr_assert(eq(ptr, rec.response, NULL));
	cr_assert(eq(int, claim("k1", "fp", 1001, &rec), REG_IDEM_IN_FLIGHT));
	cr_assert(eq(int, claim("k1", "other", 1001, &rec),
	    REG_IDEM_MISMATCH));
	/* The claim leaves no transaction open. */
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	registry_rollback(reg);
}

Test(registry, idem_stored_response_replays)
{
	static const char body[] = "{\"a\":1}\0tail";
	struct reg_idem rec;

	cr_assert(eq(int, claim("k1", "fp", 1000, &rec), REG_OK));
	store("k1", 1000, 201, body, sizeof(body) - 1);
	cr_assert(eq(int, claim("k1", "fp", 1050, &rec), REG_IDEM_DONE));
	cr_assert(eq(int, rec.status, 201));
	cr_assert(eq(sz, rec.response_len, sizeof(body) - 1));
	cr_assert(eq(int, memcmp(rec.response, body, sizeof(body) - 1), 0));
	registry_idem_release(&rec);
	cr_assert(eq(ptr, rec.response, NULL));
	registry_idem_release(&rec);
	cr_assert(eq(int, claim("k1", "other", 1050, &rec),
	    REG_IDEM_MISMATCH));
	cr_assert(eq(ptr, rec.response, NULL));
}

Test(registry, idem_empty_response_replays_empty)
{
	struct reg_idem rec;

	cr_assert(eq(int, claim("k1", "fp", 1000, &rec), REG_OK));
	store("k1", 1000, 204, NULL, 0);
	cr_assert(eq(int, claim("k1", "fp", 1000, &rec), REG_IDEM_DONE));
	cr_assert(eq(int, rec.status, 204));
	cr_assert(eq(sz, rec.response_len, 0));
	cr_assert(not(eq(ptr, rec.response, NULL)));
	registry_idem_release(&rec);
}

Test(registry, idem_store_goes_with_its_transaction)
{
	struct reg_idem rec;
	struct user u;

	cr_assert(eq(int, claim("k1", "fp", 1000, &rec), REG_OK));
	mkuser(&u, "alice", "", "", "");
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	cr_assert(eq(int, registry_insert(reg, &u), REG_OK));
	cr_assert(eq(int, registry_idem_store(reg, "scope", "k1", 1000, 201, "x",
	    1),
	    REG_OK));
	registry_rollback(reg);
	cr_assert(eq(int, claim("k1", "fp", 1001, &rec), REG_IDEM_IN_FLIGHT));
}

Test(registry, idem_store_needs_a_live_claim_and_a_transaction)
{
	struct reg_idem rec;

	cr_assert(eq(int, registry_begin(reg), REG_OK));
	cr_assert(eq(int, registry_idem_store(reg, "scope", "nope", 1000, 201, "x",
	    1), REG_NOT_FOUND));
	registry_rollback(reg);
	cr_assert(eq(int, claim("k1", "fp", 1000, &rec), REG_OK));
	cr_assert(eq(int, registry_idem_store(reg, "scope", "k1", 1000, 201, "x",
	    1),
	    REG_ERROR));
	store("k1", 1000, 201, "x", 1);
	/* Stored once: a second store finds no claim in flight. */
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	cr_assert(eq(int, registry_idem_store(reg, "scope", "k1", 1000, 500, "y",
	    1),
	    REG_NOT_FOUND));
	registry_rollback(reg);
	cr_assert(eq(int, claim("k1", "fp", 1000, &rec), REG_IDEM_DONE));
	cr_assert(eq(int, rec.status, 201));
	registry_idem_release(&rec);
}

Test(registry, idem_expired_record_is_claimed_afresh)
{
	struct reg_idem rec;

	cr_assert(eq(int, claim("k1", "fp", 1000, &rec), REG_OK));
	store("k1", 1000, 201, "x", 1);
	/* Expires at 1000 + 100; expired strictly after. */
	cr_assert(eq(int, claim("k1", "other", 1100, &rec),
	    REG_IDEM_MISMATCH));
	cr_assert(eq(int, claim("k1", "other", 1101, &rec), REG_OK));
	cr_assert(eq(int, claim("k1", "other", 1102, &rec),
	    REG_IDEM_IN_FLIGHT));
}

Test(registry, idem_claim_purges_expired_records_in_batches)
{
	struct reg_idem rec;
	char key[16];
	int i;

	for (i = 0; i < 70; i++) {
		snprintf(key, sizeof(key), "old%d", i);
		cr_assert(eq(int, claim(key, "fp", 1000, &rec), REG_OK));
	}
	cr_assert(eq(i64, raw_int("SELECT count(*) FROM idempotency"), 70));
	cr_assert(eq(int, claim("new1", "fp", 5000, &rec), REG_OK));
	cr_assert(eq(i64, raw_int("SELECT count(*) FROM idempotency"),
	    70 - REG_IDEM_PURGE_BATCH + 1));
	cr_assert(eq(int, claim("new2", "fp", 5000, &rec), REG_OK));
	cr_assert(eq(i64, raw_int("SELECT count(*) FROM idempotency"), 2));
}

Test(registry, idem_expired_record_beyond_purge_batch_reads_as_expired)
{
	struct reg_idem rec;
	char key[16];
	int i;

	/* A full batch that expires first, by time and by key. */
	for (i = 0; i < REG_IDEM_PURGE_BATCH; i++) {
		snprintf(key, sizeof(key), "old%02d", i);
		cr_assert(eq(int, claim(key, "fp", 1000, &rec), REG_OK));
	}
	cr_assert(eq(int, claim("zz", "fp", 1050, &rec), REG_OK));
	store("zz", 1050, 201, "x", 1);
	/* The purge stops before zz, which must still read as gone. */
	cr_assert(eq(int, claim("zz", "other", 5000, &rec), REG_OK));
	cr_assert(eq(i64, raw_int("SELECT count(*) FROM idempotency"), 1));
	cr_assert(eq(int, claim("zz", "other", 5001, &rec),
	    REG_IDEM_IN_FLIGHT));
}

Test(registry, idem_abandoned_lease_is_reclaimed)
{
	struct reg_idem rec;

	cr_assert(eq(int, claim("k1", "fp", 1000, &rec), REG_OK));
	/* Lease 10 s: still held at 1010, abandoned after. */
	cr_assert(eq(int, claim("k1", "fp", 1010, &rec), REG_IDEM_IN_FLIGHT));
	cr_assert(eq(int, claim("k1", "other", 1011, &rec), REG_OK));
	cr_assert(eq(int, claim("k1", "fp", 1012, &rec), REG_IDEM_MISMATCH));
	cr_assert(eq(int, claim("k1", "other", 1012, &rec),
	    REG_IDEM_IN_FLIGHT));
}

Test(registry, idem_done_record_outlives_its_lease)
{
	struct reg_idem rec;

	cr_assert(eq(int, claim("k1", "fp", 1000, &rec), REG_OK));
	store("k1", 1000, 200, "x", 1);
	cr_assert(eq(int, claim("k1", "fp", 1099, &rec), REG_IDEM_DONE));
	registry_idem_release(&rec);
}

Test(registry, idem_abandon_frees_the_key)
{
	struct reg_idem rec;

	cr_assert(eq(int, claim("k1", "fp", 1000, &rec), REG_OK));
	cr_assert(eq(int, registry_idem_abandon(reg, "scope", "k1", 1000), REG_OK));
	cr_assert(eq(int, claim("k1", "other", 1001, &rec), REG_OK));
	/* Nothing to drop is fine. */
	cr_assert(eq(int, registry_idem_abandon(reg, "scope", "none", 1000),
	    REG_OK));
	/* A stored response is not dropped. */
	store("k1", 1001, 201, "x", 1);
	cr_assert(eq(int, registry_idem_abandon(reg, "scope", "k1", 1001), REG_OK));
	cr_assert(eq(int, claim("k1", "other", 1002, &rec), REG_IDEM_DONE));
	registry_idem_release(&rec);
}

Test(registry, idem_claim_and_abandon_refuse_an_open_transaction)
{
	struct reg_idem rec;
	struct user u;

	cr_assert(eq(int, registry_begin(reg), REG_OK));
	mkuser(&u, "alice", "", "", "");
	cr_assert(eq(int, registry_insert(reg, &u), REG_OK));
	cr_assert(eq(int, claim("k1", "fp", 1000, &rec), REG_ERROR));
	cr_assert(eq(int, registry_idem_abandon(reg, "scope", "k1", 1000),
	    REG_ERROR));
	/* The caller's transaction is untouched. */
	cr_assert(eq(int, registry_commit(reg), REG_OK));
	cr_assert(eq(int, registry_get(reg, "alice", &u), REG_OK));
	cr_assert(eq(i64, raw_int("SELECT count(*) FROM idempotency"), 0));
}

Test(registry, idem_keys_are_scoped)
{
	struct reg_idem rec;

	cr_assert(eq(int, registry_idem_claim(reg, "alice", "k", "fp", 1000,
	    100, 10, &rec), REG_OK));
	cr_assert(eq(int, registry_idem_claim(reg, "bob", "k", "other", 1000,
	    100, 10, &rec), REG_OK));
	cr_assert(eq(int, registry_idem_claim(reg, "", "k", "fp", 1000,
	    100, 10, &rec), REG_OK));
}

Test(registry, idem_limits)
{
	char key[REG_IDEM_KEY_MAX + 2], scope[REG_IDEM_SCOPE_MAX + 2];
	char fp[REG_IDEM_FINGERPRINT_MAX + 2];
	struct reg_idem rec;

	memset(key, 'k', sizeof(key) - 1);
	key[REG_IDEM_KEY_MAX] = '\0';
	memset(scope, 's', sizeof(scope) - 1);
	scope[REG_IDEM_SCOPE_MAX] = '\0';
	memset(fp, 'f', sizeof(fp) - 1);
	fp[REG_IDEM_FINGERPRINT_MAX] = '\0';
	cr_assert(eq(int, registry_idem_claim(reg, scope, key, fp, 1000, 100,
	    10, &rec), REG_OK));
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	cr_assert(eq(int, registry_idem_store(reg, scope, key, 1000, 201, "x", 1),
	    REG_OK));
	cr_assert(eq(int, registry_commit(reg), REG_OK));
	key[REG_IDEM_KEY_MAX] = 'k';
	key[REG_IDEM_KEY_MAX + 1] = '\0';
	cr_assert(eq(int, registry_idem_claim(reg, "s", key, "f", 1000, 100,
	    10, &rec), REG_ERROR));
	cr_assert(eq(int, registry_idem_abandon(reg, "s", key, 1000), REG_ERROR));
	scope[REG_IDEM_SCOPE_MAX] = 's';
	scope[REG_IDEM_SCOPE_MAX + 1] = '\0';
	cr_assert(eq(int, registry_idem_claim(reg, scope, "k", "f", 1000, 100,
	    10, &rec), REG_ERROR));
	fp[REG_IDEM_FINGERPRINT_MAX] = 'f';
	fp[REG_IDEM_FINGERPRINT_MAX + 1] = '\0';
	cr_assert(eq(int, registry_idem_claim(reg, "s", "k", fp, 1000, 100,
	    10, &rec), REG_ERROR));
	cr_assert(eq(int, registry_idem_claim(reg, "s", "", "f", 1000, 100,
	    10, &rec), REG_ERROR));
	cr_assert(eq(int, registry_idem_claim(reg, "s", "k", "", 1000, 100,
	    10, &rec), REG_ERROR));
	cr_assert(eq(int, registry_idem_claim(reg, "s", "k", "f", 1000,
	    INT64_MAX, 10, &rec), REG_ERROR));
	cr_assert(eq(int, registry_idem_claim(reg, "s", "k", "f", 1000, -1,
	    10, &rec), REG_ERROR));
}

/* Error texts */

Test(registry, every_error_has_a_distinct_text)
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

/*
 * A list page is one indexed range scan whatever the registry's size:
 * SQLite's plan for the page query (the shape of ST_LIST in registry.c)
 * searches the primary key on both bounds, with no full scan and no sort.
 */
Test(registry, list_page_is_one_range_search_of_the_primary_key)
{
	char plan[1024] = "";
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	size_t used = 0;

	cr_assert(eq(int, sqlite3_open(dbpath, &db), SQLITE_OK));
	cr_assert(eq(int, sqlite3_prepare_v2(db, "EXPLAIN QUERY PLAN "
	    "SELECT username FROM users WHERE key > ?1 AND key >= ?2 AND "
	    "key < ?2 || char(127) ORDER BY key LIMIT ?3", -1, &st, NULL),
	    SQLITE_OK));
	while (sqlite3_step(st) == SQLITE_ROW)
		used += (size_t)snprintf(plan + used, sizeof(plan) - used,
		    "%s;", (const char *)sqlite3_column_text(st, 3));
	sqlite3_finalize(st);
	sqlite3_close(db);
	cr_assert(not(eq(ptr, strstr(plan, "SEARCH users USING PRIMARY KEY"),
	    NULL)), "plan: %s", plan);
	cr_assert(eq(ptr, strstr(plan, "SCAN"), NULL), "plan: %s", plan);
	cr_assert(eq(ptr, strstr(plan, "TEMP B-TREE"), NULL), "plan: %s",
	    plan);
}

/*
 * A request whose claim was taken over (its lease ran out) can neither
 * store an answer under the new claim nor drop it: the claim is named by
 * the time it was made.
 */
Test(registry, idem_claim_taken_over_is_not_touched_by_its_old_owner)
{
	struct reg_idem rec;

	cr_assert(eq(int, claim("k1", "fp", 1000, &rec), REG_OK));
	cr_assert(eq(int, claim("k1", "fp", 1011, &rec), REG_OK));
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	cr_assert(eq(int, registry_idem_store(reg, "scope", "k1", 1000, 201,
	    "old", 3), REG_NOT_FOUND));
	registry_rollback(reg);
	cr_assert(eq(int, registry_idem_abandon(reg, "scope", "k1", 1000),
	    REG_OK));
	cr_assert(eq(int, claim("k1", "fp", 1012, &rec), REG_IDEM_IN_FLIGHT));
	store("k1", 1011, 201, "new", 3);
	cr_assert(eq(int, claim("k1", "fp", 1013, &rec), REG_IDEM_DONE));
	cr_assert(eq(int, memcmp(rec.response, "new", 3), 0));
	registry_idem_release(&rec);
}
