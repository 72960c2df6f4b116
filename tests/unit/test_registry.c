/*
 * test_registry.c: the SQLite user registry, one temp directory per test:
 * the contract of registry_contract.h, and what is SQLite's own (files
 * moved, replaced or damaged, WAL and journal modes, schema upgrades,
 * lock waits, backups).
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "registry.h"
#include "support.h"

/* Short enough that every path below fits its buffer. */
#define DIR_LEN 64
#define PATH_LEN 512

static char tmpdir[DIR_LEN];
static char dbpath[PATH_LEN];

/* What registry_contract.h asks of this suite. */
#define CONTRACT_SUITE registry
#define CONTRACT_BACKEND "sqlite"
#define SQL_REPEAT(c, n) "printf('%.*c', " #n ", '" c "')"
#define SQL_TEXT_WITH_NUL "'a' || char(0) || 'b'"
static struct registry *open_fixture(int busy_ms, unsigned flags);
static void raw_exec(const char *sql);
static int64_t raw_int(const char *sql);
static const char *raw_text(const char *sql);

#include "registry_contract.h"

/* Opens (creating when missing) the registry at path. */
static struct registry *
open_at(const char *path, int busy_ms)
{
	return open_reg(path, busy_ms, REG_OPEN_CREATE);
}

static struct registry *
open_fixture(int busy_ms, unsigned flags)
{
	return open_reg(dbpath, busy_ms, flags);
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

/* Runs sql on a plain SQLite connection of its own to the file at path. */
static void
raw_exec_at(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	char *msg = NULL;
	int rc;

	cr_assert(eq(int, sqlite3_open(path, &db), SQLITE_OK));
	sqlite3_busy_timeout(db, 2000);
	rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
	cr_assert(eq(int, rc, SQLITE_OK), "%s: %s", sql, msg ? msg : "");
	sqlite3_free(msg);
	sqlite3_close(db);
}

static void
raw_exec(const char *sql)
{
	raw_exec_at(dbpath, sql);
}

/* The first column of the first row of sql, as text, into buf. */
static void
raw_text_at(const char *path, const char *sql, char *buf, size_t size)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	const unsigned char *t;

	cr_assert(eq(int, sqlite3_open(path, &db), SQLITE_OK));
	sqlite3_busy_timeout(db, 2000);
	cr_assert(eq(int, sqlite3_prepare_v2(db, sql, -1, &st, NULL),
	    SQLITE_OK), "%s: %s", sql, sqlite3_errmsg(db));
	cr_assert(eq(int, sqlite3_step(st), SQLITE_ROW), "%s", sql);
	t = sqlite3_column_text(st, 0);
	snprintf(buf, size, "%s", t != NULL ? (const char *)t : "");
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static const char *
raw_text(const char *sql)
{
	static char buf[1024];

	raw_text_at(dbpath, sql, buf, sizeof(buf));
	return buf;
}

static int64_t
raw_int_at(const char *path, const char *sql)
{
	char buf[32];

	raw_text_at(path, sql, buf, sizeof(buf));
	return strtoll(buf, NULL, 10);
}

static int64_t
raw_int(const char *sql)
{
	return raw_int_at(dbpath, sql);
}

/*
 * Opens a plain connection to path that holds the write lock (begin is
 * "BEGIN IMMEDIATE" or "BEGIN EXCLUSIVE") until raw_unlock().
 */
static sqlite3 *
raw_lock(const char *path, const char *begin)
{
	sqlite3 *db = NULL;

	cr_assert(eq(int, sqlite3_open(path, &db), SQLITE_OK));
	cr_assert(eq(int, sqlite3_exec(db, begin, NULL, NULL, NULL),
	    SQLITE_OK), "%s: %s", begin, sqlite3_errmsg(db));
	return db;
}

static void
raw_unlock(sqlite3 *db)
{
	cr_assert(eq(int, sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL),
	    SQLITE_OK));
	sqlite3_close(db);
}

/* Opening */

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
	cr_assert(eq(i64, raw_int("PRAGMA user_version"), 3));
}

Test(registry, open_in_missing_directory_is_unavailable)
{
	char path[PATH_LEN];
	enum reg_err err = REG_OK;

	snprintf(path, sizeof(path), "%s/missing/users.db", tmpdir);
	cr_assert(eq(ptr, registry_open(path, 50, REG_OPEN_CREATE, &err,
	    NULL), NULL));
	cr_assert(eq(int, err, REG_UNAVAILABLE));
}

Test(registry, open_of_a_file_that_is_not_a_database_is_unavailable)
{
	char path[PATH_LEN], why[REG_ERRMSG_SIZE];
	enum reg_err err = REG_OK;
	FILE *f;

	snprintf(path, sizeof(path), "%s/junk.db", tmpdir);
	cr_assert(not(eq(ptr, f = fopen(path, "w"), NULL)));
	for (int i = 0; i < 512; i++)
		fputs("this is not a database ", f);
	fclose(f);
	/* A damaged file is down until restored: 503, not a bug of ours. */
	cr_assert(eq(ptr, registry_open(path, 50, 0, &err, why), NULL));
	cr_assert(eq(int, err, REG_UNAVAILABLE));
	cr_assert(not(eq(str, why, "")));
	cr_assert(eq(ptr, registry_open(path, 50, REG_OPEN_CREATE, &err,
	    NULL), NULL));
	cr_assert(eq(int, err, REG_UNAVAILABLE));
	/* err and errmsg may be NULL. */
	cr_assert(eq(ptr, registry_open(path, 50, 0, NULL, NULL), NULL));
}

Test(registry, open_rejects_unknown_schema_version)
{
	enum reg_err err = REG_OK;

	registry_close(reg);
	reg = NULL;
	raw_exec("PRAGMA user_version = 4");
	cr_assert(eq(ptr, registry_open(dbpath, 50, 0, &err, NULL), NULL));
	cr_assert(eq(int, err, REG_ERROR));
	cr_assert(eq(ptr, registry_open(dbpath, 50, REG_OPEN_CREATE, &err,
	    NULL), NULL));
	cr_assert(eq(int, err, REG_ERROR));
}

/* Transactions */

Test(registry, begin_reports_busy_after_timeout_while_another_writes)
{
	struct registry *other;
	int64_t t0;
	struct user got;
	long long ms;

	cr_assert(eq(int, add("alice", "", ""), REG_OK));
	other = open_at(dbpath, 50);
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	t0 = support_mono_ms();
	cr_assert(eq(int, registry_begin(other), REG_BUSY));
	ms = support_mono_ms() - t0;
	cr_assert(ge(llong, ms, 40), "waited %lld ms", ms);
	cr_assert(lt(llong, ms, 2000), "waited %lld ms", ms);
	/* Readers are not blocked by the writer (WAL). */
	cr_assert(eq(int, registry_get(other, "alice", &got), REG_OK));
	cr_assert(eq(int, registry_ping(other), REG_OK));
	cr_assert(eq(int, registry_idem_get(other, "", "k", "f", 1000,
	    &(struct reg_idem){ 0 }), REG_NOT_FOUND));
	registry_rollback(reg);
	cr_assert(eq(int, registry_begin(other), REG_OK));
	registry_rollback(other);
	registry_close(other);
}

/* List */

Test(registry, list_orders_by_canonical_key_bytes)
{
	list_in_key_byte_order();
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

/* Several processes */

Test(registry, concurrent_processes_insert_same_name_once)
{
	char path[PATH_LEN];

	/* No SQLite handle may cross fork(): children open their own. */
	registry_close(reg);
	reg = NULL;
	/* A brand-new file: the children also race to create the schema. */
	snprintf(path, sizeof(path), "%s/race.db", tmpdir);
	race_to_insert_one_name(path);
}

/* Idempotency records */

Test(registry, idem_stored_response_replays_with_its_bytes)
{
	idem_replay_keeps_its_bytes();
}

Test(registry, idem_put_needs_a_write_transaction)
{
	idem_put_outside_a_write_is_refused();
}

/* Opening without creating, and older schemas */

/* tmpdir + "/" + name into buf (PATH_LEN bytes); returns buf. */
static char *
path_in(char *buf, const char *name)
{
	snprintf(buf, PATH_LEN, "%s/%s", tmpdir, name);
	return buf;
}

static int
exists(const char *path)
{
	return access(path, F_OK) == 0;
}

Test(registry, backend_is_sqlite)
{
	cr_assert(eq(str, (char *)registry_backend(reg), "sqlite"));
}

Test(registry, open_without_create_of_a_missing_file_is_unavailable)
{
	char path[PATH_LEN], side[PATH_LEN], why[REG_ERRMSG_SIZE];
	enum reg_err err = REG_OK;

	path_in(path, "absent.db");
	cr_assert(eq(ptr, registry_open(path, 50, 0, &err, why), NULL));
	cr_assert(eq(int, err, REG_UNAVAILABLE));
	cr_assert(not(eq(ptr, strstr(why, path), NULL)), "%s", why);
	/* Nothing was created: no file, no log beside it. */
	cr_assert(not(exists(path)));
	cr_assert(not(exists(path_in(side, "absent.db-wal"))));
	cr_assert(not(exists(path_in(side, "absent.db-shm"))));
}

Test(registry, open_without_create_of_an_empty_file_is_unavailable)
{
	char path[PATH_LEN], why[REG_ERRMSG_SIZE];
	enum reg_err err = REG_OK;
	struct stat sb;
	FILE *f;

	path_in(path, "empty.db");
	cr_assert(not(eq(ptr, f = fopen(path, "w"), NULL)));
	fclose(f);
	cr_assert(eq(ptr, registry_open(path, 50, 0, &err, why), NULL));
	cr_assert(eq(int, err, REG_UNAVAILABLE));
	cr_assert(not(eq(str, why, "")));
	/* Still empty: no schema was written into it. */
	cr_assert(eq(int, stat(path, &sb), 0));
	cr_assert(eq(llong, (long long)sb.st_size, 0));
}

Test(registry, open_with_create_gives_an_empty_file_its_schema)
{
	char path[PATH_LEN];
	struct registry *r;
	FILE *f;

	path_in(path, "empty.db");
	cr_assert(not(eq(ptr, f = fopen(path, "w"), NULL)));
	fclose(f);
	r = open_at(path, 50);
	cr_assert(eq(int, registry_ping(r), REG_OK));
	registry_close(r);
	cr_assert(eq(i64, raw_int_at(path, "PRAGMA user_version"), 3));
}

/* A registry at path switched to a rollback journal, as a copy may be. */
static void
make_rollback_journal_copy(const char *path)
{
	struct registry *r = open_at(path, 2000);
	struct user u;

	mkuser(&u, "alice", "", "", "");
	cr_assert(eq(int, registry_begin(r), REG_OK));
	cr_assert(eq(int, registry_insert(r, &u), REG_OK));
	cr_assert(eq(int, registry_commit(r), REG_OK));
	registry_close(r);
	raw_exec_at(path, "PRAGMA journal_mode = DELETE");
}

Test(registry, open_without_create_of_a_rollback_journal_copy_is_unavailable)
{
	char path[PATH_LEN], why[REG_ERRMSG_SIZE], mode[16];
	enum reg_err err = REG_OK;

	make_rollback_journal_copy(path_in(path, "copy.db"));
	cr_assert(eq(ptr, registry_open(path, 50, 0, &err, why), NULL));
	cr_assert(eq(int, err, REG_UNAVAILABLE));
	cr_assert(not(eq(ptr, strstr(why, "WAL"), NULL)), "%s", why);
	raw_text_at(path, "PRAGMA journal_mode", mode, sizeof(mode));
	cr_assert(eq(str, mode, "delete"), "the file was changed");
}

Test(registry, open_with_create_switches_a_rollback_journal_copy_to_wal)
{
	char path[PATH_LEN], mode[16];
	struct registry *r;
	struct user got;

	make_rollback_journal_copy(path_in(path, "copy.db"));
	r = open_at(path, 2000);
	cr_assert(eq(int, registry_get(r, "alice", &got), REG_OK));
	registry_close(r);
	raw_text_at(path, "PRAGMA journal_mode", mode, sizeof(mode));
	cr_assert(eq(str, mode, "wal"));
}

Test(registry, create_beside_the_log_of_a_deleted_file_is_refused)
{
	char path[PATH_LEN], wal[PATH_LEN], why[REG_ERRMSG_SIZE];
	enum reg_err err = REG_OK;
	struct registry *r;
	FILE *f;

	/* A log without its file would be replayed into a new one. */
	path_in(path, "lost.db");
	cr_assert(not(eq(ptr, f = fopen(path_in(wal, "lost.db-wal"), "w"),
	    NULL)));
	fputs("frames of a file that is gone", f);
	fclose(f);
	cr_assert(eq(ptr, registry_open(path, 50, REG_OPEN_CREATE, &err, why),
	    NULL));
	cr_assert(eq(int, err, REG_ERROR));
	cr_assert(not(eq(ptr, strstr(why, wal), NULL)), "%s", why);
	cr_assert(not(exists(path)), "a registry was created");
	/* An empty log holds nothing to replay. */
	cr_assert(not(eq(ptr, f = fopen(wal, "w"), NULL)));
	fclose(f);
	r = open_at(path, 50);
	registry_close(r);
}

Test(registry, open_of_a_current_registry_takes_no_write_lock)
{
	struct registry *r;
	int64_t t0;
	struct user got;
	sqlite3 *lock;
	long long ms;

	cr_assert(eq(int, add("alice", "", ""), REG_OK));
	lock = raw_lock(dbpath, "BEGIN IMMEDIATE");
	t0 = support_mono_ms();
	/* Waiting for the lock would fail after 3 s; the open must not. */
	r = open_reg(dbpath, 3000, 0);
	ms = support_mono_ms() - t0;
	cr_assert(lt(llong, ms, 1000), "open waited %lld ms", ms);
	cr_assert(eq(int, registry_get(r, "alice", &got), REG_OK));
	registry_close(r);
	raw_unlock(lock);
}

/* The version 1 schema, as registries were written before version 2. */
static const char schema_v1[] =
	"CREATE TABLE meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL);"
	"INSERT INTO meta (k, v) VALUES ('revision', 0);"
	"CREATE TABLE users ("
	" key TEXT PRIMARY KEY, username TEXT NOT NULL, email TEXT,"
	" email_key TEXT UNIQUE, display_name TEXT, roles TEXT NOT NULL,"
	" admin INTEGER NOT NULL, version INTEGER NOT NULL,"
	" created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL"
	") WITHOUT ROWID;"
	"CREATE INDEX users_admin ON users (key) WHERE admin = 1;"
	"CREATE TABLE idempotency ("
	" scope TEXT NOT NULL, key TEXT NOT NULL,"
	" fingerprint TEXT NOT NULL, state INTEGER NOT NULL,"
	" status INTEGER, response BLOB, claimed_at INTEGER NOT NULL,"
	" expires_at INTEGER NOT NULL, PRIMARY KEY (scope, key)"
	") WITHOUT ROWID;"
	"CREATE INDEX idempotency_expires ON idempotency (expires_at);"
	"PRAGMA user_version = 1;";

/*
 * A version 1 registry at path: alice (admin) and bob, revision 3, one
 * done idempotency record ("done") and one still in flight ("flying").
 */
static void
write_v1_registry(const char *path)
{
	raw_exec_at(path, "PRAGMA journal_mode = WAL");
	raw_exec_at(path, schema_v1);
	raw_exec_at(path,
	    "UPDATE meta SET v = 3 WHERE k = 'revision';"
	    "INSERT INTO users VALUES ('alice', 'Alice', 'a@example.org',"
	    " 'a@example.org', 'Alice L.', 'admin', 1, 1, 1000, 1000);"
	    "INSERT INTO users VALUES ('bob', 'bob', NULL, NULL, NULL, '',"
	    " 0, 3, 1100, 1200);"
	    "INSERT INTO idempotency VALUES ('', 'done', 'fp', 1, 201,"
	    " 'answer', 1000, 4000000000);"
	    "INSERT INTO idempotency VALUES ('', 'flying', 'fp', 0, NULL,"
	    " NULL, 1000, 4000000000);");
}

Test(registry, version_1_file_is_upgraded_keeping_users_and_answers)
{
	char path[PATH_LEN];
	struct registry *r;
	struct reg_idem rec;
	struct user got;
	int64_t v;

	path_in(path, "v1.db");
	write_v1_registry(path);
	r = open_reg(path, 2000, 0);
	cr_assert(eq(i64, raw_int_at(path, "PRAGMA user_version"), 3));
	cr_assert(eq(int, registry_get(r, "ALICE", &got), REG_OK));
	cr_assert(eq(str, got.username, "Alice"));
	cr_assert(eq(str, got.email, "a@example.org"));
	cr_assert(eq(str, got.display_name, "Alice L."));
	cr_assert(eq(sz, got.nroles, 1));
	cr_assert(eq(i64, got.version, 1));
	cr_assert(eq(int, registry_get(r, "bob", &got), REG_OK));
	cr_assert(eq(i64, got.version, 3));
	cr_assert(eq(i64, got.created_at, 1100));
	cr_assert(eq(i64, got.updated_at, 1200));
	cr_assert(eq(int, registry_revision(r, &v), REG_OK));
	cr_assert(eq(i64, v, 3));
	cr_assert(eq(int, registry_count(r, &v), REG_OK));
	cr_assert(eq(i64, v, 2));
	/* Done answers stay; claims in flight never outlive their request. */
	cr_assert(eq(int, registry_idem_get(r, "", "done", "fp", 2000, &rec),
	    REG_IDEM_DONE));
	cr_assert(eq(int, rec.status, 201));
	cr_assert(eq(sz, rec.response_len, 6));
	cr_assert(eq(int, memcmp(rec.response, "answer", 6), 0));
	registry_idem_release(&rec);
	cr_assert(eq(int, registry_idem_get(r, "", "flying", "fp", 2000,
	    &rec), REG_NOT_FOUND));
	cr_assert(eq(i64, raw_int_at(path,
	    "SELECT count(*) FROM idempotency"), 1));
	registry_close(r);
}

Test(registry, upgraded_file_counts_users_and_is_not_upgraded_again)
{
	char path[PATH_LEN];
	struct registry *r;
	struct user u;
	int64_t n;

	path_in(path, "v1.db");
	write_v1_registry(path);
	r = open_reg(path, 2000, 0);
	mkuser(&u, "carol", "", "", "");
	cr_assert(eq(int, registry_begin(r), REG_OK));
	cr_assert(eq(int, registry_insert(r, &u), REG_OK));
	cr_assert(eq(int, registry_commit(r), REG_OK));
	cr_assert(eq(i64, u.version, 4));
	cr_assert(eq(int, registry_count(r, &n), REG_OK));
	cr_assert(eq(i64, n, 3));
	registry_close(r);
	/* A second open finds version 2 and leaves the data alone. */
	r = open_reg(path, 2000, 0);
	cr_assert(eq(int, registry_count(r, &n), REG_OK));
	cr_assert(eq(i64, n, 3));
	cr_assert(eq(int, registry_get(r, "carol", &u), REG_OK));
	registry_close(r);
	cr_assert(eq(i64, raw_int_at(path,
	    "SELECT count(*) FROM meta WHERE k = 'users'"), 1));
}

/* A file replaced or deleted under the handle */

/* Makes a registry at path holding the one user name, closed again. */
static void
make_registry_with(const char *path, const char *name)
{
	struct registry *r = open_at(path, 2000);
	struct user u;

	mkuser(&u, name, "", "", "");
	cr_assert(eq(int, registry_begin(r), REG_OK));
	cr_assert(eq(int, registry_insert(r, &u), REG_OK));
	cr_assert(eq(int, registry_commit(r), REG_OK));
	registry_close(r);
}

/* Swaps the fixture's handle for one opened with flags. */
static void
reopen_with(unsigned flags)
{
	registry_close(reg);
	reg = open_reg(dbpath, 2000, flags);
}

Test(registry, refresh_of_an_unchanged_file_is_ok)
{
	cr_assert(eq(int, add("alice", "", ""), REG_OK));
	cr_assert(eq(int, registry_refresh(reg), REG_OK));
	cr_assert(eq(int, registry_moved(reg), 0));
	cr_assert(eq(i64, revision(), 1));
}

Test(registry, refresh_after_delete_is_unavailable_under_no_reopen)
{
	struct user got;

	reopen_with(REG_OPEN_NO_REOPEN);
	cr_assert(eq(int, add("alice", "", ""), REG_OK));
	cr_assert(eq(int, unlink(dbpath), 0));
	cr_assert(eq(int, registry_refresh(reg), REG_UNAVAILABLE));
	cr_assert(eq(int, registry_moved(reg), 1));
	cr_assert(not(eq(ptr, strstr(registry_errmsg(reg), "deleted"), NULL)),
	    "%s", registry_errmsg(reg));
	/* The handle refuses everything until a refresh succeeds. */
	cr_assert(eq(int, registry_get(reg, "alice", &got), REG_UNAVAILABLE));
	cr_assert(eq(int, registry_ping(reg), REG_UNAVAILABLE));
	cr_assert(eq(int, registry_begin(reg), REG_UNAVAILABLE));
	cr_assert(eq(int, registry_refresh(reg), REG_UNAVAILABLE));
	cr_assert(not(exists(dbpath)), "a refresh created a registry");
}

Test(registry, refresh_after_replace_is_unavailable_under_no_reopen)
{
	char other[PATH_LEN];
	struct user got;

	reopen_with(REG_OPEN_NO_REOPEN);
	cr_assert(eq(int, add("alice", "", ""), REG_OK));
	make_registry_with(path_in(other, "restored.db"), "bob");
	cr_assert(eq(int, rename(other, dbpath), 0));
	cr_assert(eq(int, registry_refresh(reg), REG_UNAVAILABLE));
	cr_assert(eq(int, registry_moved(reg), 1));
	cr_assert(eq(int, registry_get(reg, "bob", &got), REG_UNAVAILABLE));
	cr_assert(eq(int, registry_get(reg, "alice", &got), REG_UNAVAILABLE));
}

/*
 * A handle closed on a replaced file leaves that file's log (-wal) at the
 * path; the reopen in sq_refresh() read it as the new file's log, so the
 * old file's pages showed through.
 */
Test(registry, refresh_after_replace_reopens_the_new_file)
{
	char other[PATH_LEN];
	struct user got;

	reopen_with(0);
	cr_assert(eq(int, add("alice", "", ""), REG_OK));
	make_registry_with(path_in(other, "restored.db"), "bob");
	cr_assert(eq(int, rename(other, dbpath), 0));
	cr_assert(eq(int, registry_refresh(reg), REG_OK), "%s",
	    registry_errmsg(reg));
	cr_assert(eq(int, registry_moved(reg), 1));
	cr_assert(eq(int, registry_get(reg, "bob", &got), REG_OK));
	cr_assert(eq(int, registry_get(reg, "alice", &got), REG_NOT_FOUND));
	cr_assert(eq(i64, revision(), 1));
	/* Writes land in the new file. */
	cr_assert(eq(int, add("carol", "", ""), REG_OK));
	cr_assert(eq(i64, raw_int("SELECT count(*) FROM users"), 2));
}

/*
 * A handle closed on a deleted file leaves that file's log (-wal) at the
 * path; the reopen in sq_refresh() read it as the new file's log, so the
 * old file's pages showed through.
 */
Test(registry, refresh_after_delete_reopens_once_a_file_is_back)
{
	char other[PATH_LEN];
	struct user got;

	reopen_with(0);
	cr_assert(eq(int, add("alice", "", ""), REG_OK));
	cr_assert(eq(int, unlink(dbpath), 0));
	/* Never creates the registry it lost. */
	cr_assert(eq(int, registry_refresh(reg), REG_UNAVAILABLE));
	cr_assert(not(exists(dbpath)));
	cr_assert(eq(int, registry_get(reg, "alice", &got), REG_UNAVAILABLE));
	make_registry_with(path_in(other, "restored.db"), "bob");
	cr_assert(eq(int, rename(other, dbpath), 0));
	cr_assert(eq(int, registry_refresh(reg), REG_OK), "%s",
	    registry_errmsg(reg));
	cr_assert(eq(int, registry_get(reg, "bob", &got), REG_OK));
}

Test(registry, commit_into_a_replaced_file_is_unavailable_never_ok)
{
	char other[PATH_LEN];
	struct registry *r;
	struct user u;

	make_registry_with(path_in(other, "restored.db"), "bob");
	mkuser(&u, "alice", "", "", "");
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	cr_assert(eq(int, registry_insert(reg, &u), REG_OK));
	cr_assert(eq(int, rename(other, dbpath), 0));
	cr_assert(eq(int, registry_commit(reg), REG_UNAVAILABLE));
	cr_assert(eq(int, registry_in_transaction(reg), 0));
	cr_assert(eq(int, registry_moved(reg), 1));
	/*
	 * SQLite leaves a moved file's log at the path; the pool removes it
	 * before any process opens the new file. Then look at the new one.
	 */
	registry_close(reg);
	reg = NULL;
	unlink(path_in(other, "users.db-wal"));
	unlink(path_in(other, "users.db-shm"));
	r = open_reg(dbpath, 2000, 0);
	cr_assert(eq(int, registry_get(r, "alice", &u), REG_NOT_FOUND));
	cr_assert(eq(int, registry_get(r, "bob", &u), REG_OK));
	registry_close(r);
}

/* Integrity, backup, damage */

Test(registry, integrity_check_names_the_complaint_on_a_damaged_registry)
{
	cr_assert(eq(int, add("root", "", "admin"), REG_OK));
	cr_assert(eq(int, add("bob", "", ""), REG_OK));
	registry_close(reg);
	reg = NULL;
	/* The admin index now claims to hold the non-admins. */
	raw_exec("PRAGMA writable_schema = ON;"
	    "UPDATE sqlite_schema SET sql = 'CREATE INDEX users_admin ON"
	    " users (key) WHERE admin = 0' WHERE name = 'users_admin';"
	    "PRAGMA writable_schema = OFF;");
	reg = open_reg(dbpath, 2000, 0);
	cr_assert(eq(int, registry_integrity(reg), REG_ERROR));
	cr_assert(not(eq(ptr, strstr(registry_errmsg(reg), "integrity"),
	    NULL)), "%s", registry_errmsg(reg));
	cr_assert(not(eq(ptr, strstr(registry_errmsg(reg), "users_admin"),
	    NULL)), "%s", registry_errmsg(reg));
}

Test(registry, corrupt_page_is_unavailable)
{
	char junk[65536];
	struct user got;
	int64_t root, size;
	int fd;

	cr_assert(eq(int, add("alice", "", ""), REG_OK));
	registry_close(reg);
	reg = NULL;
	root = raw_int("SELECT rootpage FROM sqlite_schema WHERE name = "
	    "'users'");
	size = raw_int("PRAGMA page_size");
	cr_assert(gt(i64, root, 1));
	cr_assert(le(i64, size, (int64_t)sizeof(junk)));
	memset(junk, 0xff, sizeof(junk));
	cr_assert(ge(int, fd = open(dbpath, O_WRONLY), 0));
	cr_assert(eq(llong, (long long)pwrite(fd, junk, (size_t)size,
	    (off_t)((root - 1) * size)), (long long)size));
	close(fd);
	reg = open_reg(dbpath, 2000, 0);
	cr_assert(eq(int, registry_get(reg, "alice", &got), REG_UNAVAILABLE),
	    "%s", registry_errmsg(reg));
}

Test(registry, backup_is_a_consistent_copy_that_opens_as_a_registry)
{
	char dest[PATH_LEN], mode[16];
	struct registry *other, *copy;
	struct user u;
	int64_t v;

	cr_assert(eq(int, add("alice", "a@example.org", "admin"), REG_OK));
	cr_assert(eq(int, add("bob", "", ""), REG_OK));
	/* A write in progress elsewhere neither blocks nor enters it. */
	other = open_reg(dbpath, 2000, 0);
	mkuser(&u, "carol", "", "", "");
	cr_assert(eq(int, registry_begin(other), REG_OK));
	cr_assert(eq(int, registry_insert(other, &u), REG_OK));
	cr_assert(eq(int, registry_backup(reg, path_in(dest, "copy.db")),
	    REG_OK), "%s", registry_errmsg(reg));
	registry_rollback(other);
	registry_close(other);
	copy = open_reg(dest, 2000, 0);
	cr_assert(eq(int, registry_get(copy, "alice", &u), REG_OK));
	cr_assert(eq(str, u.email, "a@example.org"));
	cr_assert(eq(i64, u.version, 1));
	cr_assert(eq(int, registry_get(copy, "bob", &u), REG_OK));
	cr_assert(eq(int, registry_get(copy, "carol", &u), REG_NOT_FOUND));
	cr_assert(eq(int, registry_revision(copy, &v), REG_OK));
	cr_assert(eq(i64, v, 2));
	cr_assert(eq(int, registry_count(copy, &v), REG_OK));
	cr_assert(eq(i64, v, 2));
	cr_assert(eq(int, registry_integrity(copy), REG_OK));
	registry_close(copy);
	raw_text_at(dest, "PRAGMA journal_mode", mode, sizeof(mode));
	cr_assert(eq(str, mode, "wal"));
}

Test(registry, backup_refuses_an_existing_destination)
{
	char dest[PATH_LEN], buf[8] = "";
	FILE *f;

	cr_assert(eq(int, add("alice", "", ""), REG_OK));
	cr_assert(not(eq(ptr, f = fopen(path_in(dest, "copy.db"), "w"),
	    NULL)));
	fputs("keep", f);
	fclose(f);
	cr_assert(eq(int, registry_backup(reg, dest), REG_ERROR));
	cr_assert(not(eq(ptr, f = fopen(dest, "r"), NULL)));
	cr_assert(not(eq(ptr, fgets(buf, sizeof(buf), f), NULL)));
	fclose(f);
	cr_assert(eq(str, buf, "keep"));
	cr_assert(eq(int, registry_backup(reg, ""), REG_ERROR));
}

/* Lock waits */

/* Opens reg again with busy_ms and has another connection take the lock. */
static sqlite3 *
reopen_under_lock(int busy_ms)
{
	double seconds = -1;
	uint64_t waits = 99;

	registry_close(reg);
	reg = open_reg(dbpath, busy_ms, 0);
	registry_lock_waits(reg, &seconds, &waits);
	cr_assert(eq(u64, waits, 0));
	cr_assert(eq(dbl, seconds, 0.0));
	return raw_lock(dbpath, "BEGIN IMMEDIATE");
}

/* Milliseconds begin(reg) took to answer want. */
static long long
timed_begin(enum reg_err (*begin)(struct registry *), enum reg_err want)
{
	int64_t t0 = support_mono_ms();

	cr_assert(eq(int, begin(reg), want));
	return support_mono_ms() - t0;
}

Test(registry, busy_wait_honours_busy_timeout_and_is_counted)
{
	double seconds = -1;
	uint64_t waits = 99;
	sqlite3 *lock;
	long long ms;

	lock = reopen_under_lock(200);
	ms = timed_begin(registry_begin, REG_BUSY);
	cr_assert(ge(llong, ms, 200), "gave up after %lld ms", ms);
	cr_assert(lt(llong, ms, 2000), "waited %lld ms", ms);
	registry_lock_waits(reg, &seconds, &waits);
	cr_assert(eq(u64, waits, 1));
	cr_assert(gt(dbl, seconds, 0.05), "counted %f s", seconds);
	cr_assert(le(dbl, seconds, 2.0), "counted %f s", seconds);
	raw_unlock(lock);
	/* A begin that finds the lock free waits for nothing. */
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	registry_rollback(reg);
	registry_lock_waits(reg, &seconds, &waits);
	cr_assert(eq(u64, waits, 1));
	registry_lock_waits(NULL, &seconds, &waits);
	cr_assert(eq(u64, waits, 0));
}

Test(registry, try_begin_gives_up_at_once_while_another_writes)
{
	struct user u, got;
	double seconds = -1;
	uint64_t waits = 99;
	sqlite3 *lock;
	long long ms;

	lock = reopen_under_lock(300);
	ms = timed_begin(registry_try_begin, REG_BUSY);
	/* Well under busy_timeout: no retry was slept. */
	cr_assert(lt(llong, ms, 150), "gave up after %lld ms", ms);
	registry_lock_waits(reg, &seconds, &waits);
	cr_assert(eq(u64, waits, 0));
	/* The handle keeps waiting as configured afterwards. */
	ms = timed_begin(registry_begin, REG_BUSY);
	cr_assert(ge(llong, ms, 300), "gave up after %lld ms", ms);
	raw_unlock(lock);
	/* Free, it is a write transaction like registry_begin()'s. */
	mkuser(&u, "alice", "", "", "");
	cr_assert(eq(int, registry_try_begin(reg), REG_OK));
	cr_assert(eq(int, registry_insert(reg, &u), REG_OK));
	cr_assert(eq(int, registry_commit(reg), REG_OK));
	cr_assert(eq(int, registry_get(reg, "alice", &got), REG_OK));
}

/* Bytes of the registry's main file (not its log). */
static off_t
db_file_size(void)
{
	struct stat st;

	cr_assert(eq(int, stat(dbpath, &st), 0));
	return st.st_size;
}

/* Adds about pages pages of log, from a connection that never checkpoints. */
static void
pad_log(int pages)
{
	char sql[256];

	snprintf(sql, sizeof(sql), "PRAGMA wal_autocheckpoint = 0;"
	    "CREATE TABLE IF NOT EXISTS pad (b BLOB);"
	    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
	    " WHERE i < %d) INSERT INTO pad SELECT randomblob(3500) FROM n;",
	    pages);
	raw_exec(sql);
}

Test(registry, maintain_checkpoints_only_a_log_of_4000_pages_or_more)
{
	off_t before;

	registry_close(reg);
	reg = open_reg(dbpath, 2000, REG_OPEN_NO_AUTOCHECKPOINT);
	cr_assert(eq(int, registry_maintain(reg), REG_OK));
	before = db_file_size();
	/* 2000 pages: a checkpoint would copy them into the file. */
	pad_log(2000);
	cr_assert(eq(int, add("alice", "", ""), REG_OK));
	cr_assert(eq(int, registry_maintain(reg), REG_OK));
	cr_assert(eq(i64, (int64_t)db_file_size(), (int64_t)before));
	pad_log(2100);
	cr_assert(eq(int, add("bob", "", ""), REG_OK));
	cr_assert(eq(int, registry_maintain(reg), REG_OK));
	cr_assert(gt(i64, (int64_t)db_file_size(),
	    (int64_t)before + 4000 * 4096), "%lld bytes",
	    (long long)db_file_size());
}

Test(registry, version_2_file_loses_its_count_triggers_and_keeps_its_count)
{
	struct user u;

	mkuser(&u, "ann", "", "", "");
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	cr_assert(eq(int, registry_insert(reg, &u), REG_OK));
	cr_assert(eq(int, registry_commit(reg), REG_OK));
	registry_close(reg);
	reg = NULL;
	/* What version 2 had: a trigger per insert and per delete. */
	raw_exec("CREATE TRIGGER users_counted_in AFTER INSERT ON users BEGIN"
	    " UPDATE meta SET v = v + 1 WHERE k = 'users'; END;"
	    "CREATE TRIGGER users_counted_out AFTER DELETE ON users BEGIN"
	    " UPDATE meta SET v = v - 1 WHERE k = 'users'; END;"
	    "PRAGMA user_version = 2");
	reg = open_at(dbpath, 2000);
	cr_assert(eq(i64, raw_int("PRAGMA user_version"), 3));
	cr_assert(eq(i64, raw_int("SELECT count(*) FROM sqlite_master WHERE"
	    " type = 'trigger'"), 0));
	mkuser(&u, "bea", "", "", "");
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	cr_assert(eq(int, registry_insert(reg, &u), REG_OK));
	cr_assert(eq(int, registry_commit(reg), REG_OK));
	/* Counted once, not twice. */
	cr_assert(eq(i64, count(), 2));
}
