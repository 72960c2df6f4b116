/*
 * test_sqlite_readcache.c: users kept while a SQLite database is
 * unchanged. Two handles on one WAL file stand for two processes: the
 * cache reads through a, b commits.
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "sqlite_readcache.h"
#include "support.h"

static char dir[64], path[128];
static sqlite3 *a, *b;
static struct sqlite_readcache *cache;

static void
exec_ok(sqlite3 *db, const char *sql)
{
	char *err = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &err);

	cr_assert(eq(int, rc, SQLITE_OK), "%s: %s", sql, err ? err : "");
}

static sqlite3 *
open_db(const char *mode)
{
	sqlite3 *db = NULL;
	char sql[96];

	cr_assert(eq(int, sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE, NULL), SQLITE_OK));
	snprintf(sql, sizeof(sql), "PRAGMA journal_mode = %s", mode);
	exec_ok(db, sql);
	exec_ok(db, "CREATE TABLE IF NOT EXISTS t(v); SELECT count(*) FROM t");
	return db;
}

static void
setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/test_readcache.XXXXXX");
	cr_assert(not(eq(ptr, mkdtemp(dir), NULL)));
	snprintf(path, sizeof(path), "%s/t.db", dir);
	a = open_db("WAL");
	b = open_db("WAL");
	cr_assert(not(eq(ptr, cache = sqlite_readcache_new(), NULL)));
}

static void
teardown(void)
{
	sqlite_readcache_free(cache);
	sqlite3_close(a);
	sqlite3_close(b);
	support_remove_dir(dir);
}

TestSuite(sqlite_readcache, .init = setup, .fini = teardown);

static struct user
user_of(const char *name, int64_t version)
{
	struct user u;

	memset(&u, 0, sizeof(u));
	snprintf(u.username, sizeof(u.username), "%s", name);
	u.version = version;
	return u;
}

/* A miss read "from the database" and kept: what sq_get() does. */
static void
read_and_keep(sqlite3 *db, const char *key, int64_t version)
{
	struct user got, u = user_of(key, version);

	cr_assert(eq(int, sqlite_readcache_get(cache, db, key, &got), 0));
	sqlite_readcache_put(cache, db, key, &u);
}

static void
assert_hit(sqlite3 *db, const char *key, int64_t version)
{
	unsigned long hits = sqlite_readcache_hits();
	struct user got;

	cr_assert(eq(int, sqlite_readcache_get(cache, db, key, &got), 1),
	    "%s is kept", key);
	cr_assert(eq(str, got.username, (char *)key));
	cr_assert(eq(i64, got.version, version));
	cr_assert(eq(u64, sqlite_readcache_hits(), hits + 1));
}

static void
assert_miss(sqlite3 *db, const char *key)
{
	struct user got;

	cr_assert(eq(int, sqlite_readcache_get(cache, db, key, &got), 0),
	    "%s is not kept", key);
}

Test(sqlite_readcache, answers_while_nothing_was_committed)
{
	read_and_keep(a, "alice", 3);
	read_and_keep(a, "bob", 4);
	assert_hit(a, "alice", 3);
	assert_hit(a, "bob", 4);
	assert_hit(a, "alice", 3);
	assert_miss(a, "carol");
	/* b only reads: nothing changes. */
	exec_ok(b, "SELECT count(*) FROM t");
	assert_hit(a, "bob", 4);
}

Test(sqlite_readcache, a_commit_by_any_handle_makes_every_user_stale)
{
	read_and_keep(a, "alice", 3);
	read_and_keep(a, "bob", 4);
	exec_ok(b, "INSERT INTO t VALUES (1)");
	assert_miss(a, "alice");
	assert_miss(a, "bob");
	read_and_keep(a, "alice", 5);
	assert_hit(a, "alice", 5);
	exec_ok(a, "INSERT INTO t VALUES (2)");
	assert_miss(a, "alice");
}

Test(sqlite_readcache, keeps_nothing_read_across_a_commit)
{
	struct user got, u = user_of("alice", 3);

	cr_assert(eq(int, sqlite_readcache_get(cache, a, "alice", &got), 0));
	exec_ok(b, "INSERT INTO t VALUES (1)");
	/* What was read may be from before that commit. */
	sqlite_readcache_put(cache, a, "alice", &u);
	assert_miss(a, "alice");
}

Test(sqlite_readcache, keeps_nothing_without_a_miss_before)
{
	struct user u = user_of("alice", 3);

	sqlite_readcache_put(cache, a, "alice", &u);
	assert_miss(a, "alice");
	/* One miss arms one put: the second after it keeps nothing. */
	sqlite_readcache_put(cache, a, "alice", &u);
	sqlite_readcache_put(cache, a, "bob", &u);
	assert_hit(a, "alice", 3);
	assert_miss(a, "bob");
}

Test(sqlite_readcache, a_checkpoint_that_restarts_the_log_counts_as_a_change)
{
	exec_ok(b, "INSERT INTO t VALUES (1)");
	read_and_keep(a, "alice", 3);
	exec_ok(b, "PRAGMA wal_checkpoint(TRUNCATE)");
	exec_ok(b, "INSERT INTO t VALUES (2)");
	assert_miss(a, "alice");
}

Test(sqlite_readcache, a_header_being_rewritten_is_not_trusted)
{
	char shm[160];
	struct stat sb;
	unsigned char *p;
	int fd;

	read_and_keep(a, "alice", 3);
	snprintf(shm, sizeof(shm), "%s-shm", path);
	cr_assert(eq(int, (fd = open(shm, O_RDWR)) >= 0, 1));
	cr_assert(eq(int, fstat(fd, &sb), 0));
	p = mmap(NULL, (size_t)sb.st_size, PROT_READ | PROT_WRITE, MAP_SHARED,
	    fd, 0);
	cr_assert(not(eq(ptr, p, MAP_FAILED)));
	/* A writer half way: the second copy's change counter moved on. */
	p[48 + 8] ^= 1;
	assert_miss(a, "alice");
	read_and_keep(a, "alice", 9);
	p[48 + 8] ^= 1;
	/* Whole again, and what it said before: the first value stands. */
	assert_hit(a, "alice", 3);
	munmap(p, (size_t)sb.st_size);
	close(fd);
}

Test(sqlite_readcache, forget_drops_every_user)
{
	read_and_keep(a, "alice", 3);
	sqlite_readcache_forget(cache);
	assert_miss(a, "alice");
}

Test(sqlite_readcache, a_handle_keeps_its_own_users)
{
	read_and_keep(a, "alice", 3);
	/* Another handle: the cache follows it and starts afresh. */
	assert_miss(b, "alice");
	read_and_keep(b, "alice", 4);
	assert_hit(b, "alice", 4);
}

Test(sqlite_readcache, never_caches_a_database_out_of_wal_mode)
{
	char shm[160];
	sqlite3 *r;

	sqlite3_close(a);
	sqlite3_close(b);
	a = b = NULL;
	support_remove_dir(dir);
	snprintf(dir, sizeof(dir), "/tmp/test_readcache.XXXXXX");
	cr_assert(not(eq(ptr, mkdtemp(dir), NULL)));
	snprintf(path, sizeof(path), "%s/t.db", dir);
	r = open_db("DELETE");
	read_and_keep(r, "alice", 3);
	assert_miss(r, "alice");
	snprintf(shm, sizeof(shm), "%s-shm", path);
	cr_assert(not(eq(int, access(shm, F_OK), 0)), "no -shm was made");
	sqlite3_close(r);
}
