/*
 * test_sqlite_walbuf.c: the VFS that writes a commit's log in one go.
 * Each test is a fresh process (Criterion forks), with a scratch
 * directory of its own; what the VFS wrote is read back through SQLite's
 * default VFS, as another process would.
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <sqlite3.h>

#include "sqlite_walbuf.h"
#include "support.h"

static char dir[64], path[128];

static void
setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/test_walbuf.XXXXXX");
	cr_assert(not(eq(ptr, mkdtemp(dir), NULL)));
	snprintf(path, sizeof(path), "%s/t.db", dir);
	cr_assert(eq(int, sqlite_walbuf_register(), SQLITE_OK));
}

static void
teardown(void)
{
	support_remove_dir(dir);
}

TestSuite(sqlite_walbuf, .init = setup, .fini = teardown);

/* A handle on path through vfs (NULL: the default), in WAL, FULL. */
static sqlite3 *
open_db(const char *vfs)
{
	sqlite3 *db = NULL;

	cr_assert(eq(int, sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE, vfs), SQLITE_OK));
	cr_assert(eq(int, sqlite3_exec(db, "PRAGMA journal_mode = WAL; "
	    "PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 0",
	    NULL, NULL, NULL), SQLITE_OK));
	return db;
}

static void
exec_ok(sqlite3 *db, const char *sql)
{
	char *err = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &err);

	cr_assert(eq(int, rc, SQLITE_OK), "%s: %s", sql, err ? err : "");
}

/* Inserts rows rows of bytes bytes each (random, so pages differ). */
static int
insert_rows(sqlite3 *db, int rows, int bytes)
{
	char sql[128];

	snprintf(sql, sizeof(sql), "WITH RECURSIVE n(i) AS (SELECT 1 UNION "
	    "ALL SELECT i + 1 FROM n WHERE i < %d) INSERT INTO t(v) SELECT "
	    "randomblob(%d) FROM n", rows, bytes);
	return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

/* One transaction inserting rows rows of bytes bytes; must commit. */
static void
commit_rows(sqlite3 *db, int rows, int bytes)
{
	exec_ok(db, "BEGIN");
	cr_assert(eq(int, insert_rows(db, rows, bytes), SQLITE_OK));
	exec_ok(db, "COMMIT");
}

static sqlite3_int64
one_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	sqlite3_int64 v;

	cr_assert(eq(int, sqlite3_prepare_v2(db, sql, -1, &st, NULL),
	    SQLITE_OK));
	cr_assert(eq(int, sqlite3_step(st), SQLITE_ROW));
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static void
assert_intact(sqlite3 *db)
{
	sqlite3_stmt *st;

	cr_assert(eq(int, sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1,
	    &st, NULL), SQLITE_OK));
	cr_assert(eq(int, sqlite3_step(st), SQLITE_ROW));
	cr_assert(eq(str, (char *)sqlite3_column_text(st, 0), "ok"));
	sqlite3_finalize(st);
}

/* A handle of the default VFS, as another process, finds rows intact. */
static void
assert_seen_elsewhere(sqlite3_int64 rows)
{
	sqlite3 *other = open_db(NULL);

	cr_assert(eq(i64, one_int(other, "SELECT count(*) FROM t"), rows));
	assert_intact(other);
	sqlite3_close(other);
}

Test(sqlite_walbuf, a_commit_of_many_pages_is_a_few_writes_others_read)
{
	sqlite3 *db = open_db(SQLITE_WALBUF_VFS);
	unsigned long before;

	exec_ok(db, "CREATE TABLE t(v BLOB)");
	before = sqlite_walbuf_writes();
	/* About 40 pages: 80 frame headers and pages without the VFS. */
	commit_rows(db, 40, 3000);
	cr_assert(le(ulong, sqlite_walbuf_writes() - before, 4),
	    "%lu writes for one commit", sqlite_walbuf_writes() - before);
	assert_seen_elsewhere(40);
	sqlite3_close(db);
}

Test(sqlite_walbuf, commits_beyond_what_one_write_takes_are_whole)
{
	sqlite3 *db = open_db(SQLITE_WALBUF_VFS);
	int i;

	exec_ok(db, "CREATE TABLE t(v BLOB)");
	/* 200 KiB, then 3 MiB: past one write of the default VFS (128 KiB)
	 * and past what the VFS gathers (1 MiB). */
	for (i = 0; i < 2; i++)
		commit_rows(db, i == 0 ? 50 : 750, 4000);
	cr_assert(eq(i64, one_int(db, "SELECT sum(length(v)) FROM t"),
	    800 * 4000));
	sqlite3_close(db);
	assert_seen_elsewhere(800);
}

Test(sqlite_walbuf, a_rolled_back_spill_then_a_commit_leaves_only_the_commit)
{
	sqlite3 *db = open_db(SQLITE_WALBUF_VFS);

	exec_ok(db, "CREATE TABLE t(v BLOB); PRAGMA cache_size = 10");
	/* A small cache spills the transaction's pages into the log. */
	exec_ok(db, "BEGIN");
	cr_assert(eq(int, insert_rows(db, 300, 3000), SQLITE_OK));
	exec_ok(db, "ROLLBACK");
	commit_rows(db, 7, 100);
	assert_seen_elsewhere(7);
	/* And the checkpoint copies what was committed, nothing else. */
	exec_ok(db, "PRAGMA wal_checkpoint(TRUNCATE)");
	sqlite3_close(db);
	assert_seen_elsewhere(7);
}

Test(sqlite_walbuf, a_write_refused_fails_its_commit_and_the_next_succeeds)
{
	sqlite3 *db = open_db(SQLITE_WALBUF_VFS);
	struct rlimit lim;
	int rc;

	exec_ok(db, "CREATE TABLE t(v BLOB)");
	commit_rows(db, 5, 100);
	/* Files may not grow: the log's growth is refused (EFBIG). */
	signal(SIGXFSZ, SIG_IGN);
	cr_assert(eq(int, getrlimit(RLIMIT_FSIZE, &lim), 0));
	lim.rlim_cur = 64 * 1024;
	cr_assert(eq(int, setrlimit(RLIMIT_FSIZE, &lim), 0));
	exec_ok(db, "BEGIN");
	rc = insert_rows(db, 100, 3000);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	cr_assert(ne(int, rc, SQLITE_OK), "a commit past the limit succeeded");
	if (!sqlite3_get_autocommit(db))
		exec_ok(db, "ROLLBACK");
	lim.rlim_cur = lim.rlim_max;
	cr_assert(eq(int, setrlimit(RLIMIT_FSIZE, &lim), 0));
	commit_rows(db, 3, 100);
	assert_seen_elsewhere(8);
	sqlite3_close(db);
}
