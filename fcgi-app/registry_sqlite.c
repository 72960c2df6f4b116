/* registry_sqlite.c: the registry in one SQLite file (WAL, BEGIN IMMEDIATE). */
#include "registry_impl.h"

#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "sqlite_readcache.h"
#include "sqlite_walbuf.h"

/* PRAGMA user_version of the schema below. */
#define SQ_SCHEMA_VERSION 3

/*
 * PRAGMA synchronous of every handle. FULL: a commit returns once its log
 * frames are fsynced, and readers see nothing before that. Building with
 * -DUSERREG_SYNCHRONOUS=OFF exists only to show that the power-loss
 * harness catches a registry that acknowledges unsynced writes.
 */
#ifndef USERREG_SYNCHRONOUS
#define USERREG_SYNCHRONOUS FULL
#endif
#define SQ_STR(x) #x
#define SQ_XSTR(x) SQ_STR(x)

/* Pause between attempts to switch a brand-new file to WAL. */
#define SQ_WAL_RETRY_NS (5 * 1000 * 1000L)
/* Busy handler: first and longest sleep while another process writes. */
#define SQ_BUSY_SLEEP_MIN_US 50
#define SQ_BUSY_SLEEP_MAX_US 2000
/*
 * Log pages after which registry_maintain() checkpoints (16 MiB of log
 * at 4 KiB pages). The writer checkpoints between batches, so the copy
 * and the database file's fsync stall every write queued meanwhile; at
 * SQLite's usual 1000 pages that cost a 32-connection create load 5% of
 * its throughput, and beyond 4000 little more was gained.
 */
#define SQ_CHECKPOINT_PAGES 4000

/*
 * The canonical key (ASCII-lowercased name) is the primary key; email_key
 * (lowercased email) is UNIQUE and NULL when unset, so any number of users
 * may have no email. roles is sorted and comma-joined (role names cannot
 * hold a comma); admin mirrors "admin" in roles for the partial index.
 * meta holds the revision counter and the number of users, both written
 * once by each commit (registry_impl.h, struct reg_meta).
 */
#define SQ_IDEM_TABLE(name) \
	"CREATE TABLE " name " (" \
	" scope TEXT NOT NULL," \
	" key TEXT NOT NULL," \
	" fingerprint TEXT NOT NULL," \
	" status INTEGER NOT NULL," \
	" response BLOB NOT NULL," \
	" expires_at INTEGER NOT NULL," \
	" PRIMARY KEY (scope, key)" \
	") WITHOUT ROWID;"

static const char schema_sql[] =
	"CREATE TABLE meta ("
	" k TEXT PRIMARY KEY,"
	" v INTEGER NOT NULL);"
	"INSERT INTO meta (k, v) VALUES ('revision', 0), ('users', 0);"
	"CREATE TABLE users ("
	" key TEXT PRIMARY KEY,"
	" username TEXT NOT NULL,"
	" email TEXT,"
	" email_key TEXT UNIQUE,"
	" display_name TEXT,"
	" roles TEXT NOT NULL,"
	" admin INTEGER NOT NULL,"
	" version INTEGER NOT NULL,"
	" created_at INTEGER NOT NULL,"
	" updated_at INTEGER NOT NULL"
	") WITHOUT ROWID;"
	"CREATE INDEX users_admin ON users (key) WHERE admin = 1;"
	SQ_IDEM_TABLE("idempotency")
	"CREATE INDEX idempotency_expires ON idempotency (expires_at);"
	"PRAGMA user_version = 3;";

/*
 * Version 1 kept in-flight claims in the idempotency table and had no
 * users count; a claim never outlives its request, so those rows go.
 */
static const char upgrade_1_sql[] =
	SQ_IDEM_TABLE("idempotency_v2")
	"INSERT INTO idempotency_v2 SELECT scope, key, fingerprint, status,"
	" response, expires_at FROM idempotency WHERE state = 1;"
	"DROP TABLE idempotency;"
	"ALTER TABLE idempotency_v2 RENAME TO idempotency;"
	"CREATE INDEX idempotency_expires ON idempotency (expires_at);"
	"INSERT INTO meta (k, v) SELECT 'users', count(*) FROM users;"
	"PRAGMA user_version = 3;";

/* Version 2 counted users with triggers, one update a row: they go. */
static const char upgrade_2_sql[] =
	"DROP TRIGGER IF EXISTS users_counted_in;"
	"DROP TRIGGER IF EXISTS users_counted_out;"
	"PRAGMA user_version = 3;";

/* Prepared on first use, reset after every use. */
enum stmt {
	ST_BEGIN_WRITE,
	ST_BEGIN_READ,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_SAVEPOINT,
	ST_RELEASE,
	ST_ROLLBACK_TO,
	ST_REVISION,
	ST_SET_REVISION,
	ST_ADD_USERS,
	ST_COUNT,
	ST_GET,
	ST_INSERT,
	ST_UPDATE,
	ST_DELETE,
	ST_OTHER_ADMIN,
	ST_LIST,
	ST_IDEM_GET,
	ST_IDEM_PUT,
	ST_IDEM_PURGE,
	ST_IDEM_SCAN,
	ST__MAX
};

/* The columns row_read() reads, in its order. */
#define USER_COLUMNS \
	"username, email, display_name, roles, version, created_at, updated_at"

static const char *const stmt_sql[ST__MAX] = {
	[ST_BEGIN_WRITE] = "BEGIN IMMEDIATE",
	[ST_BEGIN_READ] = "BEGIN DEFERRED",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	/* Savepoints nest under one name: each statement takes the last. */
	[ST_SAVEPOINT] = "SAVEPOINT reg_sp",
	[ST_RELEASE] = "RELEASE reg_sp",
	[ST_ROLLBACK_TO] = "ROLLBACK TO reg_sp",
	[ST_REVISION] = "SELECT v FROM meta WHERE k = 'revision'",
	[ST_SET_REVISION] = "UPDATE meta SET v = ?1 WHERE k = 'revision'",
	[ST_ADD_USERS] = "UPDATE meta SET v = v + ?1 WHERE k = 'users'",
	[ST_COUNT] = "SELECT v FROM meta WHERE k = 'users'",
	[ST_GET] = "SELECT " USER_COLUMNS " FROM users WHERE key = ?1",
	[ST_INSERT] = "INSERT INTO users (key, username, email, email_key,"
	    " display_name, roles, admin, version, created_at, updated_at)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
	[ST_UPDATE] = "UPDATE users SET username = ?2, email = ?3,"
	    " email_key = ?4, display_name = ?5, roles = ?6, admin = ?7,"
	    " version = ?8, updated_at = ?10"
	    " WHERE key = ?1 AND version = ?11 RETURNING created_at",
	[ST_DELETE] = "DELETE FROM users WHERE key = ?1 AND version = ?2"
	    " RETURNING admin",
	/* Walks the partial index users_admin. */
	[ST_OTHER_ADMIN] = "SELECT 1 FROM users WHERE admin = 1 AND key <> ?1"
	    " LIMIT 1",
	/* Keys are ASCII below 0x7f, so prefix || char(127) bounds them. */
	[ST_LIST] = "SELECT " USER_COLUMNS " FROM users"
	    " WHERE key > ?1 AND key >= ?2 AND key < ?2 || char(127)"
	    " ORDER BY key LIMIT ?3",
	[ST_IDEM_GET] = "SELECT fingerprint, status, response, expires_at"
	    " FROM idempotency WHERE scope = ?1 AND key = ?2"
	    " AND expires_at >= ?3",
	[ST_IDEM_PUT] = "INSERT OR REPLACE INTO idempotency (scope, key,"
	    " fingerprint, status, response, expires_at)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[ST_IDEM_PURGE] = "DELETE FROM idempotency WHERE (scope, key) IN"
	    " (SELECT scope, key FROM idempotency WHERE expires_at < ?1"
	    " LIMIT ?2)",
	[ST_IDEM_SCAN] = "SELECT scope, key, fingerprint, status, response,"
	    " expires_at FROM idempotency ORDER BY scope, key",
};

/* A file by device and inode, as open_db() found it (known != 0). */
struct file_id {
	dev_t dev;
	ino_t ino;
	int known;
};

/* The log and its index beside the registry file, as SQLite names them. */
static const char *const side_suffix[2] = { "-wal", "-shm" };

struct sqreg {
	struct registry base;
	const char *path;		/* base.location */
	sqlite3 *db;			/* NULL while the file is unreachable */
	sqlite3_stmt *st[ST__MAX];
	int moved;			/* a refresh found the file replaced */
	enum reg_err prepare_err;	/* why the last stmt() failed */
	int wal_pages;			/* log size after the last commit */
	struct timespec busy_start;	/* of the lock wait under way */
	struct file_id side[2];		/* the -wal and -shm it opened */
	struct sqlite_readcache *cache;	/* of reads outside transactions */
};

static const struct registry_ops sqlite_ops;

static struct sqreg *
sq(struct registry *reg)
{
	return (struct sqreg *)(void *)reg;
}

/* Maps a SQLite result code to the registry's error domain. */
static enum reg_err
map_rc(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		return REG_OK;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
	case SQLITE_PROTOCOL:	/* WAL lock race lost repeatedly */
		return REG_BUSY;
	case SQLITE_FULL:
	case SQLITE_READONLY:
	case SQLITE_IOERR:
	case SQLITE_CANTOPEN:
	case SQLITE_PERM:
	/* A damaged file is down until it is restored, not a bug of ours. */
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return REG_UNAVAILABLE;
	default:
		return REG_ERROR;
	}
}

/* Keeps SQLite's message for rc (it changes with the next call). */
static enum reg_err
fail(struct sqreg *r, int rc)
{
	const char *msg = NULL;
	enum reg_err err;

	if (r->db != NULL &&
	    (sqlite3_errcode(r->db) & 0xff) == (rc & 0xff))
		msg = sqlite3_errmsg(r->db);
	if (msg == NULL)
		msg = sqlite3_errstr(rc);
	err = map_rc(rc);
	return reg_fail_msg(&r->base, err == REG_OK ? REG_ERROR : err,
	    "%s (code %d)", msg, rc);
}

/* The handle lost its file: every call refuses until a refresh. */
static enum reg_err
down(struct sqreg *r)
{
	return reg_fail_msg(&r->base, REG_UNAVAILABLE, "registry file '%s' "
	    "is not open (deleted, replaced or unreadable)", r->path);
}

/* Returns statement id, preparing it on first use; NULL on failure. */
static sqlite3_stmt *
stmt(struct sqreg *r, enum stmt id)
{
	int src;

	if (r->st[id] != NULL)
		return r->st[id];
	if (r->db == NULL)
		return NULL;
	src = sqlite3_prepare_v3(r->db, stmt_sql[id], -1,
	    SQLITE_PREPARE_PERSISTENT, &r->st[id], NULL);
	if (src != SQLITE_OK) {
		r->prepare_err = fail(r, src);
		r->st[id] = NULL;
	}
	return r->st[id];
}

/* The error of a statement stmt() could not give. */
static enum reg_err
no_stmt(struct sqreg *r)
{
	return r->db == NULL ? down(r) : r->prepare_err;
}

/* Makes st ready for its next use and drops its bound strings. */
static void
done(struct sqreg *r, enum stmt id)
{
	if (r->st[id] != NULL) {
		sqlite3_reset(r->st[id]);
		sqlite3_clear_bindings(r->st[id]);
	}
}

/* Runs a statement that yields no row; returns REG_OK or the error. */
static enum reg_err
run(struct sqreg *r, enum stmt id)
{
	sqlite3_stmt *st = stmt(r, id);
	enum reg_err rc = REG_OK;
	int src;

	if (st == NULL)
		return no_stmt(r);
	if ((src = sqlite3_step(st)) != SQLITE_DONE && src != SQLITE_ROW)
		rc = fail(r, src);
	done(r, id);
	return rc;
}

static int
bind_text(sqlite3_stmt *st, int i, const char *s, int empty_null)
{
	size_t len = strlen(s);

	if (len == 0 && empty_null)
		return sqlite3_bind_null(st, i);
	if (len > INT_MAX)
		return SQLITE_TOOBIG;
	return sqlite3_bind_text(st, i, s, (int)len, SQLITE_STATIC);
}

/* Runs a statement yielding one integer (*v); REG_NOT_FOUND for none. */
static enum reg_err
one_int(struct sqreg *r, enum stmt id, int64_t *v)
{
	sqlite3_stmt *st = stmt(r, id);
	enum reg_err rc;
	int src;

	if (st == NULL)
		return no_stmt(r);
	src = sqlite3_step(st);
	if (src == SQLITE_ROW) {
		*v = sqlite3_column_int64(st, 0);
		rc = REG_OK;
	} else if (src == SQLITE_DONE) {
		rc = reg_fail_msg(&r->base, REG_ERROR, "meta row missing");
	} else {
		rc = fail(r, src);
	}
	done(r, id);
	return rc;
}

/*
 * Waits for another process's lock in short steps (the default handler
 * sleeps a whole millisecond and more between tries, which serializes
 * writers badly), up to busy_timeout_ms in all.
 */
static int
busy_wait(void *arg, int attempt)
{
	struct sqreg *r = arg;
	struct timespec now, pause;
	long long waited_us;
	long us;

	if (r->base.no_wait)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (attempt == 0) {
		r->busy_start = now;
		r->base.lock_waits++;
	}
	waited_us = (long long)(now.tv_sec - r->busy_start.tv_sec) * 1000000 +
	    (now.tv_nsec - r->busy_start.tv_nsec) / 1000;
	if (waited_us >= (long long)r->base.busy_timeout_ms * 1000)
		return 0;
	us = SQ_BUSY_SLEEP_MIN_US << (attempt < 6 ? attempt : 6);
	if (us > SQ_BUSY_SLEEP_MAX_US)
		us = SQ_BUSY_SLEEP_MAX_US;
	pause.tv_sec = 0;
	pause.tv_nsec = us * 1000L;
	nanosleep(&pause, NULL);
	r->base.lock_wait_seconds += (double)us / 1e6;
	return 1;
}

/* Remembers the log's size after each commit, for registry_maintain(). */
static int
wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
	(void)db;
	(void)name;
	((struct sqreg *)arg)->wal_pages = pages;
	return SQLITE_OK;
}

/* Sleeps SQ_WAL_RETRY_NS; returns 0 while deadline_ms is not passed. */
static int
retry_wait(const struct timespec *start, int deadline_ms)
{
	struct timespec now, pause = { 0, SQ_WAL_RETRY_NS };
	long long ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (long long)(now.tv_sec - start->tv_sec) * 1000 +
	    (now.tv_nsec - start->tv_nsec) / 1000000;
	if (ms >= deadline_ms)
		return -1;
	nanosleep(&pause, NULL);
	return 0;
}

/* Runs a one-row PRAGMA (text result in buf) with busy retries. */
static enum reg_err
pragma_text(struct sqreg *r, const char *sql, char *buf, size_t size,
    int retry_busy)
{
	struct timespec start;
	sqlite3_stmt *st = NULL;
	const unsigned char *t;
	enum reg_err rc;
	int src;

	clock_gettime(CLOCK_MONOTONIC, &start);
	if ((src = sqlite3_prepare_v2(r->db, sql, -1, &st, NULL)) !=
	    SQLITE_OK) {
		rc = fail(r, src);
		goto out;
	}
	for (;;) {
		if ((src = sqlite3_step(st)) == SQLITE_ROW)
			break;
		sqlite3_reset(st);
		if (!retry_busy || map_rc(src) != REG_BUSY ||
		    retry_wait(&start, r->base.busy_timeout_ms) == -1) {
			rc = fail(r, src);
			goto out;
		}
	}
	t = sqlite3_column_text(st, 0);
	snprintf(buf, size, "%s", t != NULL ? (const char *)t : "");
	rc = REG_OK;
out:
	sqlite3_finalize(st);
	return rc;
}

/*
 * Brings the schema from version from to the current one with sql (several
 * statements) in one write transaction.
 */
static enum reg_err
schema_write(struct sqreg *r, int from, const char *sql)
{
	char v[16];
	enum reg_err rc;
	int src;

	if ((src = sqlite3_exec(r->db, "BEGIN IMMEDIATE", NULL, NULL,
	    NULL)) != SQLITE_OK)
		return fail(r, src);
	/* Another process may have done it meanwhile. */
	if ((rc = pragma_text(r, "PRAGMA user_version", v, sizeof(v), 0)) !=
	    REG_OK)
		goto out;
	if (atoi(v) == SQ_SCHEMA_VERSION) {
		rc = REG_OK;
		goto out;
	}
	if (atoi(v) != from) {
		rc = reg_fail_msg(&r->base, REG_ERROR, "registry '%s' changed "
		    "schema version under us (%s)", r->path, v);
		goto out;
	}
	if ((src = sqlite3_exec(r->db, sql, NULL, NULL, NULL)) != SQLITE_OK ||
	    (src = sqlite3_exec(r->db, "COMMIT", NULL, NULL, NULL)) !=
	    SQLITE_OK) {
		rc = fail(r, src);
		goto out;
	}
	rc = REG_OK;
out:
	if (!sqlite3_get_autocommit(r->db))
		sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

/*
 * Switches the file to WAL; the switch needs an exclusive lock, so racing
 * openers retry until busy_timeout_ms.
 */
static enum reg_err
use_wal(struct sqreg *r)
{
	char mode[16];
	enum reg_err rc;

	if ((rc = pragma_text(r, "PRAGMA journal_mode = WAL", mode,
	    sizeof(mode), 1)) != REG_OK)
		return rc;
	if (strcmp(mode, "wal") != 0)
		return reg_fail_msg(&r->base, REG_ERROR,
		    "cannot use a write-ahead log");
	return REG_OK;
}

/*
 * Checks the schema with reads only; creates it (CREATE) or upgrades an
 * older one under the write lock. A current registry is opened without
 * ever taking the write lock, so a CGI request never queues behind
 * writers just to open it.
 */
static enum reg_err
schema_ready(struct sqreg *r, unsigned flags)
{
	char mode[16], v[16];
	enum reg_err rc;
	int version;

	if ((rc = pragma_text(r, "PRAGMA user_version", v, sizeof(v), 1)) !=
	    REG_OK)
		return rc;
	version = atoi(v);
	if (version >= 1 && version <= SQ_SCHEMA_VERSION) {
		/* Set once by whoever created it; reading it locks nothing. */
		if ((rc = pragma_text(r, "PRAGMA journal_mode", mode,
		    sizeof(mode), 1)) != REG_OK)
			return rc;
		/* A copy restored from elsewhere may use a rollback journal. */
		if (strcmp(mode, "wal") != 0 && !(flags & REG_OPEN_CREATE))
			return reg_fail_msg(&r->base, REG_UNAVAILABLE, "registry "
			    "'%s' is not in WAL mode (journal_mode %s): start "
			    "the service or run `userreg init` once", r->path,
			    mode);
		if (strcmp(mode, "wal") != 0 && (rc = use_wal(r)) != REG_OK)
			return rc;
		if (version == 1)
			return schema_write(r, 1, upgrade_1_sql);
		if (version == 2)
			return schema_write(r, 2, upgrade_2_sql);
		return REG_OK;
	}
	if (version != 0)
		return reg_fail_msg(&r->base, REG_ERROR, "registry '%s' has "
		    "schema version %d, this program knows %d", r->path,
		    version, SQ_SCHEMA_VERSION);
	if (!(flags & REG_OPEN_CREATE))
		return reg_fail_msg(&r->base, REG_UNAVAILABLE, "registry '%s' "
		    "is empty: create it with `userreg init`", r->path);
	if ((rc = use_wal(r)) != REG_OK)
		return rc;
	return schema_write(r, 0, schema_sql);
}

/* Stats the registry's log (i 0) or index (i 1) into name and sb. */
static int
side_stat(const struct sqreg *r, size_t i, char name[CONFIG_PATH_MAX + 8],
    struct stat *sb)
{
	if (snprintf(name, CONFIG_PATH_MAX + 8, "%s%s", r->path,
	    side_suffix[i]) >= CONFIG_PATH_MAX + 8)
		return -1;
	return stat(name, sb);
}

static void
note_side_files(struct sqreg *r)
{
	char name[CONFIG_PATH_MAX + 8];
	struct stat sb;
	size_t i;

	for (i = 0; i < 2; i++) {
		r->side[i].known = side_stat(r, i, name, &sb) == 0;
		r->side[i].dev = r->side[i].known ? sb.st_dev : 0;
		r->side[i].ino = r->side[i].known ? sb.st_ino : 0;
	}
}

/*
 * After the registry file moved, this handle's log and index are still at
 * the path: SQLite neither checkpoints nor removes them for a moved file.
 * They are the old file's, and a reopen would read them as the new file's,
 * so they go. A log another process made for the new file stays.
 */
static void
drop_own_side_files(struct sqreg *r)
{
	char name[CONFIG_PATH_MAX + 8];
	struct stat sb;
	size_t i;

	for (i = 0; i < 2; i++) {
		if (r->side[i].known && side_stat(r, i, name, &sb) == 0 &&
		    sb.st_dev == r->side[i].dev && sb.st_ino == r->side[i].ino)
			unlink(name);
		r->side[i].known = 0;
	}
}

static void
close_db(struct sqreg *r)
{
	size_t i;

	for (i = 0; i < ST__MAX; i++) {
		sqlite3_finalize(r->st[i]);
		r->st[i] = NULL;
	}
	/* Its slots and its view of the -shm go with the handle. */
	sqlite_readcache_forget(r->cache);
	/* Rolls back an open transaction. */
	sqlite3_close_v2(r->db);
	r->db = NULL;
}

/*
 * Before creating a registry: a log (-wal) left by a registry file that
 * was deleted would be replayed into the new one. Refuses to create then.
 */
static enum reg_err
no_orphan_log(struct sqreg *r)
{
	char wal[CONFIG_PATH_MAX + 8];
	struct stat sb;

	if (stat(r->path, &sb) == 0 && sb.st_size > 0)
		return REG_OK;
	if (snprintf(wal, sizeof(wal), "%s-wal", r->path) >= (int)sizeof(wal) ||
	    stat(wal, &sb) != 0 || sb.st_size == 0)
		return REG_OK;
	return reg_fail_msg(&r->base, REG_ERROR, "registry '%s' is missing "
	    "but its log '%s' is there: restore the registry file, or remove "
	    "the log to start a new one", r->path, wal);
}

/*
 * The VFS of every handle: the one that writes a commit's log in one go
 * (sqlite_walbuf.h), which needs every commit to sync its log; NULL, the
 * default, should it not register.
 */
static const char *
log_vfs(void)
{
	static int configured;

	/*
	 * Before SQLite initializes (registering the VFS does): memory
	 * statistics nobody reads would take a global mutex on every
	 * allocation, a dozen times per read.
	 */
	if (!configured) {
		(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
		configured = 1;
	}
	if (strcmp(SQ_XSTR(USERREG_SYNCHRONOUS), "FULL") != 0 ||
	    sqlite_walbuf_register() != SQLITE_OK)
		return NULL;
	return SQLITE_WALBUF_VFS;
}

/* Opens r->path; on failure r->db stays NULL and errmsg says why. */
static enum reg_err
open_db(struct sqreg *r, unsigned flags)
{
	struct stat sb;
	enum reg_err rc;
	int src, oflags;
	char sync[32];

	oflags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
	if (flags & REG_OPEN_CREATE) {
		if ((rc = no_orphan_log(r)) != REG_OK)
			return rc;
		oflags |= SQLITE_OPEN_CREATE;
	} else if (stat(r->path, &sb) != 0)
		/* SQLite would say "unable to open": say what happened. */
		return reg_fail_msg(&r->base, REG_UNAVAILABLE, "registry '%s': "
		    "%s", r->path, strerror(errno));
	/* Each worker is single-threaded: no SQLite mutexes. */
	src = sqlite3_open_v2(r->path, &r->db, oflags, log_vfs());
	if (src != SQLITE_OK) {
		rc = r->db != NULL ? fail(r, src) :
		    reg_fail_msg(&r->base, REG_ERROR, "out of memory");
		goto out;
	}
	/*
	 * SQLite quietly falls back to read-only on a file it cannot write;
	 * such a handle would create -wal and -shm files with the file's
	 * read-only mode and leave them, failing every writer even after the
	 * mode is put back. Refuse it before it reads anything.
	 */
	if (sqlite3_db_readonly(r->db, "main") == 1) {
		rc = reg_fail_msg(&r->base, REG_UNAVAILABLE, "registry '%s' is "
		    "not writable by this process", r->path);
		goto out;
	}
	sqlite3_extended_result_codes(r->db, 1);
	sqlite3_busy_handler(r->db, busy_wait, r);
	if ((rc = schema_ready(r, flags)) != REG_OK)
		goto out;
	snprintf(sync, sizeof(sync), "PRAGMA synchronous = %s",
	    SQ_XSTR(USERREG_SYNCHRONOUS));
	if ((src = sqlite3_exec(r->db, sync, NULL, NULL, NULL)) !=
	    SQLITE_OK) {
		rc = fail(r, src);
		goto out;
	}
	if (flags & REG_OPEN_NO_AUTOCHECKPOINT) {
		sqlite3_wal_autocheckpoint(r->db, 0);
		sqlite3_wal_hook(r->db, wal_hook, r);
	}
	r->wal_pages = 0;
	note_side_files(r);
	rc = REG_OK;
out:
	if (rc != REG_OK && r->db != NULL)
		close_db(r);
	return rc;
}

struct registry *
registry_sqlite_open(const char *path, int busy_timeout_ms, unsigned flags,
    enum reg_err *err, char *errmsg)
{
	struct sqreg *r;

	if ((r = reg_new(sizeof(*r), &sqlite_ops, path, busy_timeout_ms, flags,
	    err, errmsg)) == NULL)
		return NULL;
	r->path = r->base.location;
	return reg_opened(&r->base, open_db(r, flags), err, errmsg);
}

static void
sq_close(struct registry *reg)
{
	close_db(sq(reg));
	sqlite_readcache_free(sq(reg)->cache);
	reg_free(reg);
}

static enum reg_err
sq_refresh(struct registry *reg)
{
	struct sqreg *r = sq(reg);
	int moved = 0;

	if (r->db != NULL) {
		/* The inode at the path against the one open (one stat). */
		if (sqlite3_file_control(r->db, "main", SQLITE_FCNTL_HAS_MOVED,
		    &moved) != SQLITE_OK)
			moved = 1;
		if (!moved)
			return REG_OK;
		r->moved = 1;
		close_db(r);
		/* A pool's master clears them once every worker let go. */
		if (!(reg->flags & REG_OPEN_NO_REOPEN))
			drop_own_side_files(r);
	}
	if (r->moved && (reg->flags & REG_OPEN_NO_REOPEN))
		return reg_fail_msg(reg, REG_UNAVAILABLE, "registry file '%s' "
		    "was replaced or deleted", r->path);
	/* Reopen at the path; never create a registry nobody asked for. */
	return open_db(r, reg->flags & ~(unsigned)REG_OPEN_CREATE);
}

static int
sq_moved(const struct registry *reg)
{
	return ((const struct sqreg *)(const void *)reg)->moved;
}

static enum reg_err
sq_maintain(struct registry *reg)
{
	struct sqreg *r = sq(reg);
	int src;

	if (r->db == NULL || r->wal_pages < SQ_CHECKPOINT_PAGES)
		return REG_OK;
	/* PASSIVE: never waits for readers; the rest waits for next time. */
	src = sqlite3_wal_checkpoint_v2(r->db, "main",
	    SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	if (src != SQLITE_OK && (src & 0xff) != SQLITE_BUSY)
		return fail(r, src);
	r->wal_pages = 0;
	return REG_OK;
}

static enum reg_err
sq_begin(struct registry *reg, enum reg_txn kind)
{
	struct sqreg *r = sq(reg);

	if (r->db == NULL)
		return down(r);
	/* DEFERRED: the snapshot is taken by the first read in it. */
	return run(r, kind == REG_TXN_WRITE ? ST_BEGIN_WRITE :
	    ST_BEGIN_READ);
}

static int
sq_in_transaction(const struct registry *reg)
{
	const struct sqreg *r = (const struct sqreg *)(const void *)reg;

	return r->db != NULL && !sqlite3_get_autocommit(r->db);
}

/* Stores the revision and users count a write transaction changed. */
static enum reg_err
store_meta(struct sqreg *r, const struct reg_meta *m)
{
	sqlite3_stmt *st;
	enum reg_err rc;
	int src;

	if (m->loaded) {
		if ((st = stmt(r, ST_SET_REVISION)) == NULL)
			return no_stmt(r);
		if ((src = sqlite3_bind_int64(st, 1, m->revision)) != SQLITE_OK) {
			done(r, ST_SET_REVISION);
			return fail(r, src);
		}
		if ((rc = run(r, ST_SET_REVISION)) != REG_OK)
			return rc;
	}
	if (m->count_delta != 0) {
		if ((st = stmt(r, ST_ADD_USERS)) == NULL)
			return no_stmt(r);
		if ((src = sqlite3_bind_int64(st, 1, m->count_delta)) !=
		    SQLITE_OK) {
			done(r, ST_ADD_USERS);
			return fail(r, src);
		}
		if ((rc = run(r, ST_ADD_USERS)) != REG_OK)
			return rc;
	}
	return REG_OK;
}

static enum reg_err
sq_commit(struct registry *reg, const struct reg_meta *m)
{
	struct sqreg *r = sq(reg);
	enum reg_err rc;
	int moved = 0;

	if (m != NULL && (rc = store_meta(r, m)) != REG_OK)
		return rc;
	if ((rc = run(r, ST_COMMIT)) != REG_OK)
		return rc;
	/*
	 * A file replaced while we wrote took our write with it: never
	 * acknowledge a write that landed where nobody will read it.
	 */
	if (sqlite3_file_control(r->db, "main", SQLITE_FCNTL_HAS_MOVED,
	    &moved) != SQLITE_OK || moved) {
		r->moved = 1;
		return reg_fail_msg(reg, REG_UNAVAILABLE, "registry file '%s' "
		    "was replaced or deleted during a write", r->path);
	}
	return REG_OK;
}

static void
sq_rollback(struct registry *reg)
{
	struct sqreg *r = sq(reg);

	if (sq_in_transaction(reg))
		run(r, ST_ROLLBACK);
}

static enum reg_err
sq_savepoint(struct registry *reg)
{
	return run(sq(reg), ST_SAVEPOINT);
}

static enum reg_err
sq_savepoint_end(struct registry *reg, int keep)
{
	struct sqreg *r = sq(reg);

	if (!keep && run(r, ST_ROLLBACK_TO) != REG_OK)
		return REG_ERROR;
	/* An I/O error may have ended the whole transaction meanwhile. */
	if (!sq_in_transaction(reg))
		return keep ? reg_fail_msg(reg, REG_UNAVAILABLE, "transaction "
		    "ended by an error") : REG_OK;
	return run(r, ST_RELEASE);
}

static enum reg_err
sq_revision(struct registry *reg, int64_t *v)
{
	return sq(reg)->db == NULL ? down(sq(reg)) :
	    one_int(sq(reg), ST_REVISION, v);
}

static enum reg_err
sq_count(struct registry *reg, int64_t *n)
{
	return sq(reg)->db == NULL ? down(sq(reg)) :
	    one_int(sq(reg), ST_COUNT, n);
}

/* Reads the USER_COLUMNS of the current row of st into out. */
static enum reg_err
row_read(struct sqreg *r, sqlite3_stmt *st, struct user *out)
{
	const unsigned char *t[4];
	int i;

	for (i = 0; i < 4; i++) {
		t[i] = sqlite3_column_text(st, i);
		/* A NUL inside a column would cut it short unseen. */
		if (t[i] != NULL && (size_t)sqlite3_column_bytes(st, i) !=
		    strlen((const char *)t[i]))
			return reg_fail_msg(&r->base, REG_ERROR,
			    "stored user holds a NUL");
	}
	return reg_row_to_user(&r->base, (const char *)t[0],
	    (const char *)t[1], (const char *)t[2], (const char *)t[3],
	    sqlite3_column_int64(st, 4), sqlite3_column_int64(st, 5),
	    sqlite3_column_int64(st, 6), out);
}

static enum reg_err
sq_get(struct registry *reg, const char *key, struct user *out)
{
	struct sqreg *r = sq(reg);
	sqlite3_stmt *st;
	enum reg_err rc;
	int src, cached;

	/* Outside a transaction a read sees the last commit: cacheable. */
	cached = r->db != NULL && sqlite3_get_autocommit(r->db) &&
	    (r->cache != NULL || (r->cache = sqlite_readcache_new()) != NULL);
	if (cached && sqlite_readcache_get(r->cache, r->db, key, out))
		return REG_OK;
	if ((st = stmt(r, ST_GET)) == NULL)
		return no_stmt(r);
	if ((src = bind_text(st, 1, key, 0)) != SQLITE_OK) {
		rc = fail(r, src);
		goto out;
	}
	src = sqlite3_step(st);
	if (src == SQLITE_ROW)
		rc = row_read(r, st, out);
	else if (src == SQLITE_DONE)
		rc = REG_NOT_FOUND;
	else
		rc = fail(r, src);
out:
	done(r, ST_GET);
	if (cached && rc == REG_OK)
		sqlite_readcache_put(r->cache, r->db, key, out);
	return rc;
}

/* Binds ?1..?10 of ST_INSERT / ST_UPDATE from row. */
static int
bind_row(sqlite3_stmt *st, const struct reg_row *row)
{
	int src;

	if ((src = bind_text(st, 1, row->key, 0)) ||
	    (src = bind_text(st, 2, row->u->username, 0)) ||
	    (src = bind_text(st, 3, row->u->email, 1)) ||
	    (src = bind_text(st, 4, row->email_key, 1)) ||
	    (src = bind_text(st, 5, row->u->display_name, 1)) ||
	    (src = bind_text(st, 6, row->roles, 0)) ||
	    (src = sqlite3_bind_int(st, 7, row->admin)) ||
	    (src = sqlite3_bind_int64(st, 8, row->version)) ||
	    (src = sqlite3_bind_int64(st, 9, row->created_at)) ||
	    (src = sqlite3_bind_int64(st, 10, row->updated_at)))
		return src;
	return SQLITE_OK;
}

static enum reg_err
sq_insert(struct registry *reg, const struct reg_row *row)
{
	struct sqreg *r = sq(reg);
	sqlite3_stmt *st = stmt(r, ST_INSERT);
	enum reg_err rc = REG_OK;
	int src;

	if (st == NULL)
		return no_stmt(r);
	if ((src = bind_row(st, row)) == SQLITE_OK)
		src = sqlite3_step(st);
	if (src == SQLITE_CONSTRAINT_PRIMARYKEY)
		rc = REG_EXISTS;
	else if (src == SQLITE_CONSTRAINT_UNIQUE)
		rc = REG_EMAIL_TAKEN;
	else if (src != SQLITE_DONE)
		rc = fail(r, src);
	done(r, ST_INSERT);
	return rc;
}

static enum reg_err
sq_update(struct registry *reg, const struct reg_row *row, int64_t expected,
    int64_t *created_at)
{
	struct sqreg *r = sq(reg);
	sqlite3_stmt *st = stmt(r, ST_UPDATE);
	enum reg_err rc = REG_OK;
	int src;

	if (st == NULL)
		return no_stmt(r);
	if ((src = bind_row(st, row)) == SQLITE_OK &&
	    (src = sqlite3_bind_int64(st, 11, expected)) == SQLITE_OK)
		src = sqlite3_step(st);
	if (src == SQLITE_ROW) {
		*created_at = sqlite3_column_int64(st, 0);
		src = sqlite3_step(st);
	} else if (src == SQLITE_DONE) {
		rc = REG_NOT_FOUND;
	}
	if (rc == REG_OK && src == SQLITE_CONSTRAINT_UNIQUE)
		rc = REG_EMAIL_TAKEN;
	else if (rc == REG_OK && src != SQLITE_DONE)
		rc = fail(r, src);
	done(r, ST_UPDATE);
	return rc;
}

static enum reg_err
sq_delete(struct registry *reg, const char *key, int64_t expected,
    int *was_admin)
{
	struct sqreg *r = sq(reg);
	sqlite3_stmt *st = stmt(r, ST_DELETE);
	enum reg_err rc = REG_OK;
	int src;

	if (st == NULL)
		return no_stmt(r);
	if ((src = bind_text(st, 1, key, 0)) == SQLITE_OK &&
	    (src = sqlite3_bind_int64(st, 2, expected)) == SQLITE_OK)
		src = sqlite3_step(st);
	if (src == SQLITE_ROW) {
		*was_admin = sqlite3_column_int(st, 0);
		if ((src = sqlite3_step(st)) != SQLITE_DONE)
			rc = fail(r, src);
	} else if (src == SQLITE_DONE) {
		rc = REG_NOT_FOUND;
	} else {
		rc = fail(r, src);
	}
	done(r, ST_DELETE);
	return rc;
}

static enum reg_err
sq_other_admin(struct registry *reg, const char *key, int *found)
{
	struct sqreg *r = sq(reg);
	sqlite3_stmt *st = stmt(r, ST_OTHER_ADMIN);
	enum reg_err rc = REG_OK;
	int src;

	if (st == NULL)
		return no_stmt(r);
	if ((src = bind_text(st, 1, key, 0)) == SQLITE_OK)
		src = sqlite3_step(st);
	if (src == SQLITE_ROW || src == SQLITE_DONE)
		*found = src == SQLITE_ROW;
	else
		rc = fail(r, src);
	done(r, ST_OTHER_ADMIN);
	return rc;
}

static enum reg_err
sq_list(struct registry *reg, const char *after, const char *prefix,
    size_t limit, struct user *out, size_t *n, int *more)
{
	struct sqreg *r = sq(reg);
	sqlite3_stmt *st = stmt(r, ST_LIST);
	enum reg_err rc = REG_OK;
	int src;

	if (st == NULL)
		return no_stmt(r);
	if ((src = bind_text(st, 1, after, 0)) != SQLITE_OK ||
	    (src = bind_text(st, 2, prefix, 0)) != SQLITE_OK ||
	    (src = sqlite3_bind_int64(st, 3, (int64_t)limit + 1)) !=
	    SQLITE_OK) {
		rc = fail(r, src);
		goto out;
	}
	while ((src = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == limit) {
			*more = 1;
			break;
		}
		if ((rc = row_read(r, st, &out[*n])) != REG_OK)
			goto out;
		(*n)++;
	}
	if (src != SQLITE_ROW && src != SQLITE_DONE)
		rc = fail(r, src);
out:
	done(r, ST_LIST);
	return rc;
}

/* Copies columns (fingerprint, status, response, expires_at) from first. */
static enum reg_err
idem_read(struct sqreg *r, sqlite3_stmt *st, int first,
    struct reg_idem *rec)
{
	const unsigned char *fp = sqlite3_column_text(st, first);
	const void *blob = sqlite3_column_blob(st, first + 2);
	int n = sqlite3_column_bytes(st, first + 2);

	if (fp == NULL || strlen((const char *)fp) > REG_IDEM_FINGERPRINT_MAX)
		return reg_fail_msg(&r->base, REG_ERROR,
		    "idempotency record malformed");
	snprintf(rec->fingerprint, sizeof(rec->fingerprint), "%s",
	    (const char *)fp);
	rec->status = sqlite3_column_int(st, first + 1);
	rec->expires_at = sqlite3_column_int64(st, first + 3);
	if (n < 0 || (n > 0 && blob == NULL))
		return reg_fail_msg(&r->base, REG_ERROR,
		    "stored response unreadable");
	if ((rec->response = malloc((size_t)n + 1)) == NULL)
		return reg_fail_msg(&r->base, REG_ERROR, "out of memory");
	if (n > 0)
		memcpy(rec->response, blob, (size_t)n);
	rec->response[n] = '\0';
	rec->response_len = (size_t)n;
	return REG_OK;
}

static enum reg_err
sq_idem_get(struct registry *reg, const char *scope, const char *key,
    int64_t now, struct reg_idem *rec)
{
	struct sqreg *r = sq(reg);
	sqlite3_stmt *st = stmt(r, ST_IDEM_GET);
	enum reg_err rc;
	int src;

	if (st == NULL)
		return no_stmt(r);
	if ((src = bind_text(st, 1, scope, 0)) != SQLITE_OK ||
	    (src = bind_text(st, 2, key, 0)) != SQLITE_OK ||
	    (src = sqlite3_bind_int64(st, 3, now)) != SQLITE_OK) {
		rc = fail(r, src);
		goto out;
	}
	src = sqlite3_step(st);
	if (src == SQLITE_ROW)
		rc = idem_read(r, st, 0, rec);
	else if (src == SQLITE_DONE)
		rc = REG_NOT_FOUND;
	else
		rc = fail(r, src);
out:
	done(r, ST_IDEM_GET);
	if (rc != REG_OK)
		registry_idem_release(rec);
	return rc;
}

static enum reg_err
sq_idem_put(struct registry *reg, const char *scope, const char *key,
    const char *fingerprint, int status, const char *response, size_t len,
    int64_t expires_at)
{
	struct sqreg *r = sq(reg);
	sqlite3_stmt *st = stmt(r, ST_IDEM_PUT);
	int src;

	if (st == NULL)
		return no_stmt(r);
	if ((src = bind_text(st, 1, scope, 0)) != SQLITE_OK ||
	    (src = bind_text(st, 2, key, 0)) != SQLITE_OK ||
	    (src = bind_text(st, 3, fingerprint, 0)) != SQLITE_OK ||
	    (src = sqlite3_bind_int(st, 4, status)) != SQLITE_OK ||
	    (src = sqlite3_bind_blob64(st, 5, response, (sqlite3_uint64)len,
	    SQLITE_STATIC)) != SQLITE_OK ||
	    (src = sqlite3_bind_int64(st, 6, expires_at)) != SQLITE_OK) {
		done(r, ST_IDEM_PUT);
		return fail(r, src);
	}
	return run(r, ST_IDEM_PUT);
}

static enum reg_err
sq_idem_purge(struct registry *reg, int64_t now, int batch)
{
	struct sqreg *r = sq(reg);
	sqlite3_stmt *st = stmt(r, ST_IDEM_PURGE);
	int src;

	if (st == NULL)
		return no_stmt(r);
	if ((src = sqlite3_bind_int64(st, 1, now)) != SQLITE_OK ||
	    (src = sqlite3_bind_int(st, 2, batch)) != SQLITE_OK) {
		done(r, ST_IDEM_PURGE);
		return fail(r, src);
	}
	return run(r, ST_IDEM_PURGE);
}

static enum reg_err
sq_idem_scan(struct registry *reg, registry_idem_fn *fn, void *arg)
{
	struct sqreg *r = sq(reg);
	sqlite3_stmt *st = stmt(r, ST_IDEM_SCAN);
	struct reg_idem rec;
	const unsigned char *scope, *key;
	enum reg_err rc = REG_OK;
	int src;

	if (st == NULL)
		return no_stmt(r);
	while ((src = sqlite3_step(st)) == SQLITE_ROW) {
		memset(&rec, 0, sizeof(rec));
		scope = sqlite3_column_text(st, 0);
		key = sqlite3_column_text(st, 1);
		if (scope == NULL || key == NULL) {
			rc = reg_fail_msg(reg, REG_ERROR,
			    "idempotency record without scope or key");
			break;
		}
		if ((rc = idem_read(r, st, 2, &rec)) == REG_OK &&
		    fn(arg, (const char *)scope, (const char *)key, &rec) != 0)
			rc = REG_ERROR;
		registry_idem_release(&rec);
		if (rc != REG_OK)
			break;
	}
	if (rc == REG_OK && src != SQLITE_DONE)
		rc = fail(r, src);
	done(r, ST_IDEM_SCAN);
	return rc;
}

static enum reg_err
sq_integrity(struct registry *reg)
{
	struct sqreg *r = sq(reg);
	char result[REG_ERRMSG_SIZE];
	enum reg_err rc;

	if (r->db == NULL)
		return down(r);
	if ((rc = pragma_text(r, "PRAGMA integrity_check", result,
	    sizeof(result), 1)) != REG_OK)
		return rc;
	if (strcmp(result, "ok") != 0)
		return reg_fail_msg(reg, REG_ERROR, "integrity check: %s",
		    result);
	return REG_OK;
}

static enum reg_err
sq_backup(struct registry *reg, const char *dest)
{
	struct sqreg *r = sq(reg);
	sqlite3_stmt *st = NULL;
	sqlite3 *copy = NULL;
	enum reg_err rc;
	int src;

	if (r->db == NULL)
		return down(r);
	if (access(dest, F_OK) == 0)
		return reg_fail_msg(reg, REG_ERROR, "'%s' exists", dest);
	/* One read transaction: a consistent snapshot, writers go on. */
	if ((src = sqlite3_prepare_v2(r->db, "VACUUM INTO ?1", -1, &st,
	    NULL)) != SQLITE_OK ||
	    (src = bind_text(st, 1, dest, 0)) != SQLITE_OK ||
	    (src = sqlite3_step(st)) != SQLITE_DONE) {
		rc = fail(r, src);
		goto out;
	}
	/* The copy is a registry of its own: WAL, like any we open. */
	if ((src = sqlite3_open_v2(dest, &copy, SQLITE_OPEN_READWRITE,
	    NULL)) != SQLITE_OK ||
	    (src = sqlite3_exec(copy, "PRAGMA journal_mode = WAL", NULL, NULL,
	    NULL)) != SQLITE_OK) {
		rc = reg_fail_msg(reg, REG_ERROR, "backup '%s': %s", dest,
		    copy != NULL ? sqlite3_errmsg(copy) : sqlite3_errstr(src));
		goto out;
	}
	rc = REG_OK;
out:
	sqlite3_finalize(st);
	sqlite3_close_v2(copy);
	return rc;
}

static const struct registry_ops sqlite_ops = {
	.name = "sqlite",
	.close = sq_close,
	.refresh = sq_refresh,
	.moved = sq_moved,
	.maintain = sq_maintain,
	.begin = sq_begin,
	.commit = sq_commit,
	.rollback = sq_rollback,
	.in_transaction = sq_in_transaction,
	.savepoint = sq_savepoint,
	.savepoint_end = sq_savepoint_end,
	.revision = sq_revision,
	.count = sq_count,
	.get = sq_get,
	.insert = sq_insert,
	.update = sq_update,
	.delete = sq_delete,
	.other_admin = sq_other_admin,
	.list = sq_list,
	.idem_get = sq_idem_get,
	.idem_put = sq_idem_put,
	.idem_purge = sq_idem_purge,
	.idem_scan = sq_idem_scan,
	.integrity = sq_integrity,
	.backup = sq_backup,
};
