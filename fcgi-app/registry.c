/* registry.c: the user registry over one SQLite file (WAL, BEGIN IMMEDIATE). */
#include "registry.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

/* PRAGMA user_version of the schema below. */
#define REG_SCHEMA_VERSION 1

/* Bytes of the comma-joined roles column, with its NUL. */
#define REG_ROLES_TEXT_MAX (USER_ROLES_MAX * (USER_ROLE_MAX + 1))

/* Pause between attempts to switch a brand-new file to WAL. */
#define REG_WAL_RETRY_NS (5 * 1000 * 1000L)

/*
 * The canonical key (ASCII-lowercased name) is the primary key; email_key
 * (lowercased email) is UNIQUE and NULL when unset, so any number of users
 * may have no email. roles is sorted and comma-joined (role names cannot
 * hold a comma); admin mirrors "admin" in roles for the partial index.
 */
static const char schema_sql[] =
	"CREATE TABLE meta ("
	" k TEXT PRIMARY KEY,"
	" v INTEGER NOT NULL);"
	"INSERT INTO meta (k, v) VALUES ('revision', 0);"
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
	"CREATE TABLE idempotency ("
	" scope TEXT NOT NULL,"
	" key TEXT NOT NULL,"
	" fingerprint TEXT NOT NULL,"
	" state INTEGER NOT NULL,"	/* 0 in flight, 1 done */
	" status INTEGER,"
	" response BLOB,"
	" claimed_at INTEGER NOT NULL,"
	" expires_at INTEGER NOT NULL,"
	" PRIMARY KEY (scope, key)"
	") WITHOUT ROWID;"
	"CREATE INDEX idempotency_expires ON idempotency (expires_at);";

/* Prepared once per handle, reset after every use. */
enum stmt {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_SAVEPOINT,
	ST_RELEASE,
	ST_ROLLBACK_TO,
	ST_REVISION,
	ST_BUMP,
	ST_GET,
	ST_EXISTS,
	ST_INSERT,
	ST_UPDATE,
	ST_DELETE,
	ST_OTHER_ADMIN,
	ST_LIST,
	ST_IDEM_PURGE,
	ST_IDEM_GET,
	ST_IDEM_PUT,
	ST_IDEM_STORE,
	ST_IDEM_DROP,
	ST__MAX
};

/* The columns registry_row() reads, in its order. */
#define USER_COLUMNS \
	"username, email, display_name, roles, version, created_at, updated_at"

static const char *const stmt_sql[ST__MAX] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_SAVEPOINT] = "SAVEPOINT reg_write",
	[ST_RELEASE] = "RELEASE reg_write",
	[ST_ROLLBACK_TO] = "ROLLBACK TO reg_write",
	[ST_REVISION] = "SELECT v FROM meta WHERE k = 'revision'",
	[ST_BUMP] = "UPDATE meta SET v = v + 1 WHERE k = 'revision'"
	    " RETURNING v",
	[ST_GET] = "SELECT " USER_COLUMNS " FROM users WHERE key = ?1",
	[ST_EXISTS] = "SELECT 1 FROM users WHERE key = ?1",
	[ST_INSERT] = "INSERT INTO users (key, username, email, email_key,"
	    " display_name, roles, admin, version, created_at, updated_at)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
	[ST_UPDATE] = "UPDATE users SET username = ?2, email = ?3,"
	    " email_key = ?4, display_name = ?5, roles = ?6, admin = ?7,"
	    " version = ?8, updated_at = ?9"
	    " WHERE key = ?1 AND version = ?10 RETURNING created_at",
	[ST_DELETE] = "DELETE FROM users WHERE key = ?1 AND version = ?2"
	    " RETURNING admin",
	/* Walks the partial index users_admin. */
	[ST_OTHER_ADMIN] = "SELECT 1 FROM users WHERE admin = 1 AND key <> ?1"
	    " LIMIT 1",
	/* Keys are ASCII below 0x7f, so prefix || char(127) bounds them. */
	[ST_LIST] = "SELECT " USER_COLUMNS " FROM users"
	    " WHERE key > ?1 AND key >= ?2 AND key < ?2 || char(127)"
	    " ORDER BY key LIMIT ?3",
	[ST_IDEM_PURGE] = "DELETE FROM idempotency WHERE (scope, key) IN"
	    " (SELECT scope, key FROM idempotency WHERE expires_at < ?1"
	    " LIMIT ?2)",
	[ST_IDEM_GET] = "SELECT fingerprint, state, status, response,"
	    " claimed_at, expires_at FROM idempotency"
	    " WHERE scope = ?1 AND key = ?2",
	[ST_IDEM_PUT] = "INSERT OR REPLACE INTO idempotency (scope, key,"
	    " fingerprint, state, status, response, claimed_at, expires_at)"
	    " VALUES (?1, ?2, ?3, 0, NULL, NULL, ?4, ?5)",
	[ST_IDEM_STORE] = "UPDATE idempotency SET state = 1, status = ?3,"
	    " response = ?4 WHERE scope = ?1 AND key = ?2 AND state = 0"
	    " AND claimed_at = ?5 RETURNING 1",
	[ST_IDEM_DROP] = "DELETE FROM idempotency"
	    " WHERE scope = ?1 AND key = ?2 AND state = 0 AND claimed_at = ?3",
};

struct registry {
	sqlite3 *db;
	sqlite3_stmt *st[ST__MAX];
	char errmsg[256];	/* last failure, for registry_errmsg() */
};

static const char *const err_str[REG_ERR__MAX] = {
	[REG_OK] = "success",
	[REG_NOT_FOUND] = "not found",
	[REG_EXISTS] = "username exists",
	[REG_EMAIL_TAKEN] = "email taken",
	[REG_LAST_ADMIN] = "would remove the last admin",
	[REG_BUSY] = "registry busy",
	[REG_UNAVAILABLE] = "registry unavailable",
	[REG_IDEM_DONE] = "idempotency key has a stored response",
	[REG_IDEM_IN_FLIGHT] = "idempotency key in flight",
	[REG_IDEM_MISMATCH] = "idempotency key reused with another request",
	[REG_ERROR] = "registry error",
};

const char *
registry_err_str(enum reg_err err)
{
	if ((unsigned)err >= REG_ERR__MAX)
		return "unknown registry error";
	return err_str[err];
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
		return REG_UNAVAILABLE;
	default:
		return REG_ERROR;
	}
}

/* Keeps SQLite's message for rc (it changes with the next call). */
static enum reg_err
reg_fail(struct registry *reg, int rc)
{
	const char *msg;

	msg = sqlite3_errmsg(reg->db);
	if (msg == NULL || (sqlite3_errcode(reg->db) & 0xff) != (rc & 0xff))
		msg = sqlite3_errstr(rc);
	snprintf(reg->errmsg, sizeof(reg->errmsg), "%s", msg);
	return map_rc(rc) == REG_OK ? REG_ERROR : map_rc(rc);
}

/* Records a misuse or a bad row: always REG_ERROR. */
static enum reg_err
reg_misuse(struct registry *reg, const char *msg)
{
	snprintf(reg->errmsg, sizeof(reg->errmsg), "%s", msg);
	return REG_ERROR;
}

/* Makes st ready for its next use and drops its bound strings. */
static void
stmt_done(struct registry *reg, enum stmt st)
{
	sqlite3_reset(reg->st[st]);
	sqlite3_clear_bindings(reg->st[st]);
}

static int
in_transaction(const struct registry *reg)
{
	return !sqlite3_get_autocommit(reg->db);
}

/* Steps st to completion expecting no row; returns the SQLite code. */
static int
step_done(struct registry *reg, enum stmt st)
{
	int rc;

	rc = sqlite3_step(reg->st[st]);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Binds a NUL-terminated string; an empty one as NULL when empty_null. */
static int
bind_str(sqlite3_stmt *st, int i, const char *s, size_t len, int empty_null)
{
	if (len == 0 && empty_null)
		return sqlite3_bind_null(st, i);
	if (len > INT_MAX)
		return SQLITE_TOOBIG;
	return sqlite3_bind_text(st, i, s, (int)len, SQLITE_STATIC);
}

/*
 * Copies text column i into buf of size bytes; NULL reads as "". Returns
 * 0, or -1 if it does not fit or holds a NUL.
 */
static int
col_copy(sqlite3_stmt *st, int i, char *buf, size_t size)
{
	const unsigned char *t;
	int n;

	buf[0] = '\0';
	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return 0;
	t = sqlite3_column_text(st, i);
	n = sqlite3_column_bytes(st, i);
	if (t == NULL || n < 0 || (size_t)n >= size ||
	    memchr(t, '\0', (size_t)n) != NULL)
		return -1;
	memcpy(buf, t, (size_t)n);
	buf[n] = '\0';
	return 0;
}

/* Splits the comma-joined roles text into u->roles. Returns 0 or -1. */
static int
roles_split(const char *text, struct user *u)
{
	const char *p, *end;
	size_t len;

	u->nroles = 0;
	if (*text == '\0')
		return 0;
	for (p = text; ; p = end + 1) {
		end = strchr(p, ',');
		len = end != NULL ? (size_t)(end - p) : strlen(p);
		if (len == 0 || len > USER_ROLE_MAX ||
		    u->nroles == USER_ROLES_MAX)
			return -1;
		memcpy(u->roles[u->nroles], p, len);
		u->roles[u->nroles][len] = '\0';
		u->nroles++;
		if (end == NULL)
			return 0;
	}
}

/* Joins u's roles with commas into buf (REG_ROLES_TEXT_MAX bytes). */
static size_t
roles_join(const struct user *u, char buf[REG_ROLES_TEXT_MAX])
{
	size_t i, len, off = 0;

	buf[0] = '\0';
	for (i = 0; i < u->nroles; i++) {
		len = strlen(u->roles[i]);
		if (i > 0)
			buf[off++] = ',';
		memcpy(buf + off, u->roles[i], len);
		off += len;
	}
	buf[off] = '\0';
	return off;
}

/* Reads the USER_COLUMNS of the current row of st into out. */
static enum reg_err
row_to_user(struct registry *reg, sqlite3_stmt *st, struct user *out)
{
	char roles[REG_ROLES_TEXT_MAX];

	memset(out, 0, sizeof(*out));
	if (col_copy(st, 0, out->username, sizeof(out->username)) == -1 ||
	    out->username[0] == '\0' ||
	    col_copy(st, 1, out->email, sizeof(out->email)) == -1 ||
	    col_copy(st, 2, out->display_name,
	    sizeof(out->display_name)) == -1 ||
	    col_copy(st, 3, roles, sizeof(roles)) == -1 ||
	    roles_split(roles, out) == -1)
		return reg_misuse(reg, "stored user does not fit its limits");
	out->version = sqlite3_column_int64(st, 4);
	out->created_at = sqlite3_column_int64(st, 5);
	out->updated_at = sqlite3_column_int64(st, 6);
	return REG_OK;
}

/*
 * Returns 1 if the strings of u are terminated within their buffers and
 * its roles can be joined and split back, 0 otherwise. The handlers have
 * validated the rest.
 */
static int
user_fits(const struct user *u)
{
	size_t i, len;

	len = strnlen(u->username, sizeof(u->username));
	if (len == 0 || len == sizeof(u->username) ||
	    strnlen(u->email, sizeof(u->email)) == sizeof(u->email) ||
	    strnlen(u->display_name, sizeof(u->display_name)) ==
	    sizeof(u->display_name) ||
	    u->nroles > USER_ROLES_MAX)
		return 0;
	for (i = 0; i < u->nroles; i++) {
		len = strnlen(u->roles[i], sizeof(u->roles[i]));
		if (len == 0 || len == sizeof(u->roles[i]) ||
		    memchr(u->roles[i], ',', len) != NULL)
			return 0;
	}
	return 1;
}

/* Writes the ASCII-lowercased email into key (USER_EMAIL_MAX + 1). */
static size_t
email_canonical(const char *email, char key[USER_EMAIL_MAX + 1])
{
	size_t i;

	for (i = 0; i < USER_EMAIL_MAX && email[i] != '\0'; i++)
		key[i] = (email[i] >= 'A' && email[i] <= 'Z') ?
		    (char)(email[i] - 'A' + 'a') : email[i];
	key[i] = '\0';
	return i;
}

/* Advances the revision counter inside the transaction; stores it in *v. */
static enum reg_err
bump_revision(struct registry *reg, int64_t *v)
{
	sqlite3_stmt *st = reg->st[ST_BUMP];
	enum reg_err rc;
	int src;

	src = sqlite3_step(st);
	if (src != SQLITE_ROW) {
		rc = src == SQLITE_DONE ?
		    reg_misuse(reg, "revision row missing") :
		    reg_fail(reg, src);
		goto out;
	}
	*v = sqlite3_column_int64(st, 0);
	if ((src = sqlite3_step(st)) != SQLITE_DONE) {
		rc = reg_fail(reg, src);
		goto out;
	}
	rc = REG_OK;
out:
	stmt_done(reg, ST_BUMP);
	return rc;
}

/*
 * Runs the one-row probe id with key bound to ?1 and sets *found to 1
 * when it yields a row. Returns REG_OK or an error.
 */
static enum reg_err
probe_key(struct registry *reg, enum stmt id, const char *key, int *found)
{
	sqlite3_stmt *st = reg->st[id];
	enum reg_err rc;
	int src;

	if ((src = bind_str(st, 1, key, strlen(key), 0)) != SQLITE_OK) {
		rc = reg_fail(reg, src);
		goto out;
	}
	src = sqlite3_step(st);
	if (src != SQLITE_ROW && src != SQLITE_DONE) {
		rc = reg_fail(reg, src);
		goto out;
	}
	*found = src == SQLITE_ROW;
	rc = REG_OK;
out:
	stmt_done(reg, id);
	return rc;
}

/* Sets *found to 1 if a user other than key holds "admin". */
static enum reg_err
other_admin(struct registry *reg, const char *key, int *found)
{
	return probe_key(reg, ST_OTHER_ADMIN, key, found);
}

/* Opens the savepoint that makes one write all-or-nothing. */
static enum reg_err
savepoint_open(struct registry *reg)
{
	enum reg_err rc = REG_OK;
	int src;

	if ((src = step_done(reg, ST_SAVEPOINT)) != SQLITE_OK)
		rc = reg_fail(reg, src);
	stmt_done(reg, ST_SAVEPOINT);
	return rc;
}

/*
 * Ends the savepoint: kept when rc is REG_OK, undone otherwise. Returns
 * rc, or the error of the release.
 */
static enum reg_err
savepoint_close(struct registry *reg, enum reg_err rc)
{
	int src;

	if (rc != REG_OK) {
		/* An I/O error may have ended the whole transaction. */
		if (in_transaction(reg)) {
			step_done(reg, ST_ROLLBACK_TO);
			stmt_done(reg, ST_ROLLBACK_TO);
			step_done(reg, ST_RELEASE);
			stmt_done(reg, ST_RELEASE);
		}
		return rc;
	}
	if ((src = step_done(reg, ST_RELEASE)) != SQLITE_OK)
		rc = reg_fail(reg, src);
	stmt_done(reg, ST_RELEASE);
	return rc;
}

/* Sleeps REG_WAL_RETRY_NS; returns 0 while deadline_ms is not passed. */
static int
retry_wait(const struct timespec *start, int deadline_ms)
{
	struct timespec now, pause = { 0, REG_WAL_RETRY_NS };
	long long ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (long long)(now.tv_sec - start->tv_sec) * 1000 +
	    (now.tv_nsec - start->tv_nsec) / 1000000;
	if (ms >= deadline_ms)
		return -1;
	nanosleep(&pause, NULL);
	return 0;
}

/*
 * Switches the file to WAL. Several processes may open a brand-new file at
 * once; the switch needs an exclusive lock, so SQLITE_BUSY is retried
 * until busy_timeout_ms.
 */
static enum reg_err
set_wal(struct registry *reg, int busy_timeout_ms)
{
	struct timespec start;
	sqlite3_stmt *st = NULL;
	const unsigned char *mode;
	enum reg_err rc;
	int src;

	clock_gettime(CLOCK_MONOTONIC, &start);
	src = sqlite3_prepare_v2(reg->db, "PRAGMA journal_mode = WAL", -1,
	    &st, NULL);
	if (src != SQLITE_OK) {
		rc = reg_fail(reg, src);
		goto out;
	}
	for (;;) {
		src = sqlite3_step(st);
		if (src == SQLITE_ROW)
			break;
		sqlite3_reset(st);
		if (map_rc(src) != REG_BUSY ||
		    retry_wait(&start, busy_timeout_ms) == -1) {
			rc = reg_fail(reg, src);
			goto out;
		}
	}
	mode = sqlite3_column_text(st, 0);
	if (mode == NULL || strcmp((const char *)mode, "wal") != 0) {
		rc = reg_misuse(reg, "cannot use a write-ahead log");
		goto out;
	}
	rc = REG_OK;
out:
	sqlite3_finalize(st);
	return rc;
}

/* Reads PRAGMA user_version into *v. */
static enum reg_err
schema_version(struct registry *reg, int *v)
{
	sqlite3_stmt *st = NULL;
	enum reg_err rc;
	int src;

	src = sqlite3_prepare_v2(reg->db, "PRAGMA user_version", -1, &st,
	    NULL);
	if (src != SQLITE_OK) {
		rc = reg_fail(reg, src);
		goto out;
	}
	if ((src = sqlite3_step(st)) != SQLITE_ROW) {
		rc = reg_fail(reg, src);
		goto out;
	}
	*v = sqlite3_column_int(st, 0);
	rc = REG_OK;
out:
	sqlite3_finalize(st);
	return rc;
}

/*
 * Creates the schema under the write lock, or checks its version: the
 * first of several processes opening a new file creates it, the others
 * then see user_version set.
 */
static enum reg_err
schema_init(struct registry *reg)
{
	enum reg_err rc;
	int src, v = 0;

	if ((src = sqlite3_exec(reg->db, "BEGIN IMMEDIATE", NULL, NULL,
	    NULL)) != SQLITE_OK)
		return reg_fail(reg, src);
	if ((rc = schema_version(reg, &v)) != REG_OK)
		goto out;
	if (v == 0) {
		src = sqlite3_exec(reg->db, schema_sql, NULL, NULL, NULL);
		if (src == SQLITE_OK)
			src = sqlite3_exec(reg->db, "PRAGMA user_version = "
			    "1", NULL, NULL, NULL);
		if (src != SQLITE_OK) {
			rc = reg_fail(reg, src);
			goto out;
		}
	} else if (v != REG_SCHEMA_VERSION) {
		rc = reg_misuse(reg, "unknown registry schema version");
		goto out;
	}
	if ((src = sqlite3_exec(reg->db, "COMMIT", NULL, NULL, NULL)) !=
	    SQLITE_OK)
		rc = reg_fail(reg, src);
out:
	if (in_transaction(reg))
		sqlite3_exec(reg->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

struct registry *
registry_open(const char *path, int busy_timeout_ms, enum reg_err *err)
{
	struct registry *reg = NULL;
	enum reg_err rc;
	int src;
	size_t i;

	if (path == NULL || *path == '\0') {
		rc = REG_ERROR;
		goto out;
	}
	if ((reg = calloc(1, sizeof(*reg))) == NULL) {
		rc = REG_ERROR;
		goto out;
	}
	/* Each worker is single-threaded: no SQLite mutexes. */
	src = sqlite3_open_v2(path, &reg->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (src != SQLITE_OK) {
		rc = reg->db != NULL ? reg_fail(reg, src) : REG_ERROR;
		goto out;
	}
	sqlite3_extended_result_codes(reg->db, 1);
	sqlite3_busy_timeout(reg->db, busy_timeout_ms);
	if ((rc = set_wal(reg, busy_timeout_ms)) != REG_OK)
		goto out;
	/* An acknowledged write has been fsynced. */
	if ((src = sqlite3_exec(reg->db, "PRAGMA synchronous = FULL", NULL,
	    NULL, NULL)) != SQLITE_OK) {
		rc = reg_fail(reg, src);
		goto out;
	}
	if ((rc = schema_init(reg)) != REG_OK)
		goto out;
	for (i = 0; i < ST__MAX; i++) {
		src = sqlite3_prepare_v3(reg->db, stmt_sql[i], -1,
		    SQLITE_PREPARE_PERSISTENT, &reg->st[i], NULL);
		if (src != SQLITE_OK) {
			rc = reg_fail(reg, src);
			goto out;
		}
	}
	reg->errmsg[0] = '\0';
	rc = REG_OK;
out:
	if (rc != REG_OK) {
		registry_close(reg);
		reg = NULL;
	}
	if (err != NULL)
		*err = rc;
	return reg;
}

void
registry_close(struct registry *reg)
{
	size_t i;

	if (reg == NULL)
		return;
	for (i = 0; i < ST__MAX; i++)
		sqlite3_finalize(reg->st[i]);
	/* Rolls back an open transaction. */
	sqlite3_close_v2(reg->db);
	free(reg);
}

const char *
registry_errmsg(const struct registry *reg)
{
	if (reg == NULL)
		return "no registry";
	return reg->errmsg[0] != '\0' ? reg->errmsg : "no error";
}

enum reg_err
registry_begin(struct registry *reg)
{
	enum reg_err rc = REG_OK;
	int src;

	if (in_transaction(reg))
		return reg_misuse(reg, "transaction already open");
	if ((src = step_done(reg, ST_BEGIN)) != SQLITE_OK)
		rc = reg_fail(reg, src);
	stmt_done(reg, ST_BEGIN);
	return rc;
}

enum reg_err
registry_commit(struct registry *reg)
{
	enum reg_err rc = REG_OK;
	int src;

	if (!in_transaction(reg))
		return reg_misuse(reg, "no transaction to commit");
	if ((src = step_done(reg, ST_COMMIT)) != SQLITE_OK)
		rc = reg_fail(reg, src);
	stmt_done(reg, ST_COMMIT);
	if (rc != REG_OK)
		registry_rollback(reg);
	return rc;
}

void
registry_rollback(struct registry *reg)
{
	if (reg == NULL || !in_transaction(reg))
		return;
	step_done(reg, ST_ROLLBACK);
	stmt_done(reg, ST_ROLLBACK);
}

enum reg_err
registry_get(struct registry *reg, const char *name, struct user *out)
{
	sqlite3_stmt *st = reg->st[ST_GET];
	char key[USER_NAME_MAX + 1];
	enum reg_err rc;
	size_t len;
	int src;

	/* No stored name is longer: don't let truncation find one. */
	len = strnlen(name, USER_NAME_MAX + 1);
	if (len == 0 || len > USER_NAME_MAX)
		return REG_NOT_FOUND;
	user_canonical(name, key);
	if ((src = bind_str(st, 1, key, strlen(key), 0)) != SQLITE_OK) {
		rc = reg_fail(reg, src);
		goto out;
	}
	src = sqlite3_step(st);
	if (src == SQLITE_ROW)
		rc = row_to_user(reg, st, out);
	else if (src == SQLITE_DONE)
		rc = REG_NOT_FOUND;
	else
		rc = reg_fail(reg, src);
out:
	stmt_done(reg, ST_GET);
	return rc;
}

/* Binds ?2..?9 of ST_INSERT / ST_UPDATE from u; buffers outlive the step. */
static int
bind_user(sqlite3_stmt *st, const struct user *u,
    char ekey[USER_EMAIL_MAX + 1], char roles[REG_ROLES_TEXT_MAX],
    int64_t version, int64_t now)
{
	size_t elen, rlen;
	int src;

	elen = email_canonical(u->email, ekey);
	rlen = roles_join(u, roles);
	if ((src = bind_str(st, 2, u->username, strlen(u->username), 0)) ||
	    (src = bind_str(st, 3, u->email, elen, 1)) ||
	    (src = bind_str(st, 4, ekey, elen, 1)) ||
	    (src = bind_str(st, 5, u->display_name, strlen(u->display_name),
	    1)) ||
	    (src = bind_str(st, 6, roles, rlen, 0)) ||
	    (src = sqlite3_bind_int(st, 7, user_has_role(u, "admin"))) ||
	    (src = sqlite3_bind_int64(st, 8, version)) ||
	    (src = sqlite3_bind_int64(st, 9, now)))
		return src;
	return SQLITE_OK;
}

/* Sets *exists to 1 if the canonical key is taken. */
static enum reg_err
key_exists(struct registry *reg, const char *key, int *exists)
{
	return probe_key(reg, ST_EXISTS, key, exists);
}

enum reg_err
registry_insert(struct registry *reg, struct user *u)
{
	sqlite3_stmt *st = reg->st[ST_INSERT];
	char key[USER_NAME_MAX + 1], ekey[USER_EMAIL_MAX + 1];
	char roles[REG_ROLES_TEXT_MAX];
	int64_t version = 0, now;
	enum reg_err rc;
	int src, exists = 0;

	if (!in_transaction(reg))
		return reg_misuse(reg, "insert outside a transaction");
	if (!user_fits(u))
		return reg_misuse(reg, "user to insert is malformed");
	user_canonical(u->username, key);
	now = (int64_t)time(NULL);
	if ((rc = savepoint_open(reg)) != REG_OK)
		return rc;
	if ((rc = bump_revision(reg, &version)) != REG_OK)
		goto out;
	if ((src = bind_str(st, 1, key, strlen(key), 0)) != SQLITE_OK ||
	    (src = bind_user(st, u, ekey, roles, version, now)) != SQLITE_OK) {
		rc = reg_fail(reg, src);
		goto out;
	}
	src = step_done(reg, ST_INSERT);
	stmt_done(reg, ST_INSERT);
	if (src == SQLITE_CONSTRAINT_PRIMARYKEY) {
		rc = REG_EXISTS;
	} else if (src == SQLITE_CONSTRAINT_UNIQUE) {
		/*
		 * SQLite checks the email index before the primary key of a
		 * WITHOUT ROWID table: a taken name must still win.
		 */
		if ((rc = key_exists(reg, key, &exists)) == REG_OK)
			rc = exists ? REG_EXISTS : REG_EMAIL_TAKEN;
	} else if (src != SQLITE_OK) {
		rc = reg_fail(reg, src);
	} else {
		rc = REG_OK;
	}
out:
	stmt_done(reg, ST_INSERT);
	rc = savepoint_close(reg, rc);
	if (rc == REG_OK) {
		u->version = version;
		u->created_at = now;
		u->updated_at = now;
	}
	return rc;
}

enum reg_err
registry_update(struct registry *reg, const struct user *cur,
    struct user *next)
{
	sqlite3_stmt *st = reg->st[ST_UPDATE];
	char key[USER_NAME_MAX + 1], nkey[USER_NAME_MAX + 1];
	char ekey[USER_EMAIL_MAX + 1], roles[REG_ROLES_TEXT_MAX];
	int64_t version = 0, now, created_at = 0;
	enum reg_err rc;
	int src, found = 0;

	if (!in_transaction(reg))
		return reg_misuse(reg, "update outside a transaction");
	if (!user_fits(cur) || !user_fits(next))
		return reg_misuse(reg, "user to update is malformed");
	user_canonical(cur->username, key);
	user_canonical(next->username, nkey);
	if (strcmp(key, nkey) != 0)
		return reg_misuse(reg, "update cannot rename a user");
	now = (int64_t)time(NULL);
	if ((rc = savepoint_open(reg)) != REG_OK)
		return rc;
	if ((rc = bump_revision(reg, &version)) != REG_OK)
		goto out;
	/* Compare-and-swap on the version the caller read. */
	if ((src = bind_str(st, 1, key, strlen(key), 0)) != SQLITE_OK ||
	    (src = bind_user(st, next, ekey, roles, version, now)) !=
	    SQLITE_OK ||
	    (src = sqlite3_bind_int64(st, 10, cur->version)) != SQLITE_OK) {
		rc = reg_fail(reg, src);
		goto out;
	}
	src = sqlite3_step(st);
	if (src == SQLITE_ROW) {
		created_at = sqlite3_column_int64(st, 0);
		src = step_done(reg, ST_UPDATE);
	} else if (src == SQLITE_DONE) {
		rc = REG_NOT_FOUND;
		goto out;
	}
	if (src == SQLITE_CONSTRAINT_UNIQUE) {
		rc = REG_EMAIL_TAKEN;
		goto out;
	} else if (src != SQLITE_OK) {
		rc = reg_fail(reg, src);
		goto out;
	}
	stmt_done(reg, ST_UPDATE);
	if (user_has_role(cur, "admin") && !user_has_role(next, "admin")) {
		if ((rc = other_admin(reg, key, &found)) != REG_OK)
			goto out;
		if (!found) {
			rc = REG_LAST_ADMIN;
			goto out;
		}
	}
	rc = REG_OK;
out:
	stmt_done(reg, ST_UPDATE);
	rc = savepoint_close(reg, rc);
	if (rc == REG_OK) {
		next->version = version;
		next->created_at = created_at;
		next->updated_at = now;
	}
	return rc;
}

enum reg_err
registry_delete(struct registry *reg, const struct user *cur)
{
	sqlite3_stmt *st = reg->st[ST_DELETE];
	char key[USER_NAME_MAX + 1];
	int64_t version = 0;
	enum reg_err rc;
	int src, admin = 0, found = 0;

	if (!in_transaction(reg))
		return reg_misuse(reg, "delete outside a transaction");
	if (!user_fits(cur))
		return reg_misuse(reg, "user to delete is malformed");
	user_canonical(cur->username, key);
	if ((rc = savepoint_open(reg)) != REG_OK)
		return rc;
	if ((rc = bump_revision(reg, &version)) != REG_OK)
		goto out;
	if ((src = bind_str(st, 1, key, strlen(key), 0)) != SQLITE_OK ||
	    (src = sqlite3_bind_int64(st, 2, cur->version)) != SQLITE_OK) {
		rc = reg_fail(reg, src);
		goto out;
	}
	src = sqlite3_step(st);
	if (src == SQLITE_DONE) {
		rc = REG_NOT_FOUND;
		goto out;
	} else if (src != SQLITE_ROW) {
		rc = reg_fail(reg, src);
		goto out;
	}
	/* The stored flag, not the caller's copy, decides. */
	admin = sqlite3_column_int(st, 0);
	if ((src = step_done(reg, ST_DELETE)) != SQLITE_OK) {
		rc = reg_fail(reg, src);
		goto out;
	}
	stmt_done(reg, ST_DELETE);
	if (admin) {
		if ((rc = other_admin(reg, key, &found)) != REG_OK)
			goto out;
		if (!found) {
			rc = REG_LAST_ADMIN;
			goto out;
		}
	}
	rc = REG_OK;
out:
	stmt_done(reg, ST_DELETE);
	return savepoint_close(reg, rc);
}

enum reg_err
registry_list(struct registry *reg, const char *after, const char *prefix,
    size_t limit, struct user *out, size_t *n, int *more)
{
	sqlite3_stmt *st = reg->st[ST_LIST];
	enum reg_err rc;
	int src;

	*n = 0;
	*more = 0;
	if (limit < 1 || limit > REG_LIST_MAX)
		return reg_misuse(reg, "list limit out of range");
	if (after == NULL)
		after = "";
	if (prefix == NULL)
		prefix = "";
	if ((src = bind_str(st, 1, after, strlen(after), 0)) != SQLITE_OK ||
	    (src = bind_str(st, 2, prefix, strlen(prefix), 0)) !=
	    SQLITE_OK ||
	    (src = sqlite3_bind_int64(st, 3, (int64_t)limit + 1)) !=
	    SQLITE_OK) {
		rc = reg_fail(reg, src);
		goto out;
	}
	while ((src = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == limit) {
			*more = 1;
			break;
		}
		if ((rc = row_to_user(reg, st, &out[*n])) != REG_OK)
			goto out;
		(*n)++;
	}
	if (src != SQLITE_ROW && src != SQLITE_DONE) {
		rc = reg_fail(reg, src);
		goto out;
	}
	rc = REG_OK;
out:
	if (rc != REG_OK) {
		*n = 0;
		*more = 0;
	}
	stmt_done(reg, ST_LIST);
	return rc;
}

enum reg_err
registry_revision(struct registry *reg, int64_t *revision)
{
	sqlite3_stmt *st = reg->st[ST_REVISION];
	enum reg_err rc;
	int src;

	src = sqlite3_step(st);
	if (src == SQLITE_ROW) {
		*revision = sqlite3_column_int64(st, 0);
		rc = REG_OK;
	} else if (src == SQLITE_DONE) {
		rc = reg_misuse(reg, "revision row missing");
	} else {
		rc = reg_fail(reg, src);
	}
	stmt_done(reg, ST_REVISION);
	return rc;
}

enum reg_err
registry_ping(struct registry *reg)
{
	int64_t revision;

	/* Reads the file, unlike SELECT 1. */
	return registry_revision(reg, &revision);
}

void
registry_idem_release(struct reg_idem *rec)
{
	if (rec == NULL)
		return;
	free(rec->response);
	rec->response = NULL;
	rec->response_len = 0;
	rec->status = 0;
}

/* Returns 1 if scope and key are within their limits (key not empty). */
static int
idem_fits(const char *scope, const char *key)
{
	size_t klen;

	klen = strnlen(key, REG_IDEM_KEY_MAX + 1);
	return strnlen(scope, REG_IDEM_SCOPE_MAX + 1) <= REG_IDEM_SCOPE_MAX &&
	    klen > 0 && klen <= REG_IDEM_KEY_MAX;
}

/* Binds ?1 scope and ?2 key of an idempotency statement. */
static int
bind_idem(sqlite3_stmt *st, const char *scope, const char *key)
{
	int src;

	if ((src = bind_str(st, 1, scope, strlen(scope), 0)) != SQLITE_OK)
		return src;
	return bind_str(st, 2, key, strlen(key), 0);
}

/* Copies the stored response of the current ST_IDEM_GET row into rec. */
static enum reg_err
idem_fill(struct registry *reg, sqlite3_stmt *st, struct reg_idem *rec)
{
	const void *blob;
	int n;

	rec->status = sqlite3_column_int(st, 2);
	blob = sqlite3_column_blob(st, 3);
	n = sqlite3_column_bytes(st, 3);
	if (n < 0 || (n > 0 && blob == NULL))
		return reg_misuse(reg, "stored response unreadable");
	if ((rec->response = malloc((size_t)n + 1)) == NULL)
		return reg_misuse(reg, "out of memory");
	if (n > 0)
		memcpy(rec->response, blob, (size_t)n);
	rec->response[n] = '\0';
	rec->response_len = (size_t)n;
	return REG_OK;
}

enum reg_err
registry_idem_claim(struct registry *reg, const char *scope,
    const char *key, const char *fingerprint, int64_t now, int64_t ttl_s,
    int64_t lease_s, struct reg_idem *rec)
{
	sqlite3_stmt *get = reg->st[ST_IDEM_GET], *put = reg->st[ST_IDEM_PUT];
	sqlite3_stmt *purge = reg->st[ST_IDEM_PURGE];
	const unsigned char *fp;
	size_t flen;
	int64_t claimed_at, expires_at;
	enum reg_err rc, crc;
	int src, state, claim = 0;

	memset(rec, 0, sizeof(*rec));
	flen = strnlen(fingerprint, REG_IDEM_FINGERPRINT_MAX + 1);
	if (!idem_fits(scope, key) || flen == 0 ||
	    flen > REG_IDEM_FINGERPRINT_MAX || now < 0 || ttl_s < 0 ||
	    lease_s < 0 || ttl_s > INT64_MAX - now)
		return reg_misuse(reg, "bad idempotency claim");
	if (in_transaction(reg))
		return reg_misuse(reg, "idempotency claim inside a "
		    "transaction");
	if ((rc = registry_begin(reg)) != REG_OK)
		return rc;

	if ((src = sqlite3_bind_int64(purge, 1, now)) != SQLITE_OK ||
	    (src = sqlite3_bind_int(purge, 2, REG_IDEM_PURGE_BATCH)) !=
	    SQLITE_OK || (src = step_done(reg, ST_IDEM_PURGE)) != SQLITE_OK) {
		rc = reg_fail(reg, src);
		goto out;
	}
	stmt_done(reg, ST_IDEM_PURGE);

	if ((src = bind_idem(get, scope, key)) != SQLITE_OK) {
		rc = reg_fail(reg, src);
		goto out;
	}
	src = sqlite3_step(get);
	if (src == SQLITE_DONE) {
		claim = 1;
	} else if (src != SQLITE_ROW) {
		rc = reg_fail(reg, src);
		goto out;
	} else {
		fp = sqlite3_column_text(get, 0);
		state = sqlite3_column_int(get, 1);
		claimed_at = sqlite3_column_int64(get, 4);
		expires_at = sqlite3_column_int64(get, 5);
		if (fp == NULL || (state != 0 && state != 1)) {
			rc = reg_misuse(reg, "idempotency record malformed");
			goto out;
		}
		if (expires_at < now) {
			/* Expired but left by a full purge batch. */
			claim = 1;
		} else if (state == 0 && claimed_at < now - lease_s) {
			/* Its owner died without storing or abandoning. */
			claim = 1;
		} else if ((size_t)sqlite3_column_bytes(get, 0) != flen ||
		    memcmp(fp, fingerprint, flen) != 0) {
			rc = REG_IDEM_MISMATCH;
		} else if (state == 1) {
			if ((rc = idem_fill(reg, get, rec)) != REG_OK)
				goto out;
			rc = REG_IDEM_DONE;
		} else {
			rc = REG_IDEM_IN_FLIGHT;
		}
	}
	stmt_done(reg, ST_IDEM_GET);

	if (claim) {
		if ((src = bind_idem(put, scope, key)) != SQLITE_OK ||
		    (src = bind_str(put, 3, fingerprint, flen, 0)) !=
		    SQLITE_OK ||
		    (src = sqlite3_bind_int64(put, 4, now)) != SQLITE_OK ||
		    (src = sqlite3_bind_int64(put, 5, now + ttl_s)) !=
		    SQLITE_OK ||
		    (src = step_done(reg, ST_IDEM_PUT)) != SQLITE_OK) {
			rc = reg_fail(reg, src);
			goto out;
		}
		stmt_done(reg, ST_IDEM_PUT);
		rc = REG_OK;
	}
	/* The purge is worth keeping whatever the answer. */
	if ((crc = registry_commit(reg)) != REG_OK)
		rc = crc;
out:
	stmt_done(reg, ST_IDEM_PURGE);
	stmt_done(reg, ST_IDEM_GET);
	stmt_done(reg, ST_IDEM_PUT);
	registry_rollback(reg);
	if (rc != REG_IDEM_DONE)
		registry_idem_release(rec);
	return rc;
}

enum reg_err
registry_idem_store(struct registry *reg, const char *scope,
    const char *key, int64_t claimed_at, int status, const char *response,
    size_t len)
{
	sqlite3_stmt *st = reg->st[ST_IDEM_STORE];
	enum reg_err rc;
	int src;

	if (!idem_fits(scope, key) || (response == NULL && len > 0))
		return reg_misuse(reg, "bad idempotency response");
	if (!in_transaction(reg))
		return reg_misuse(reg, "idempotency store outside a "
		    "transaction");
	/* A non-NULL pointer makes an empty response a blob, not NULL. */
	if ((src = bind_idem(st, scope, key)) != SQLITE_OK ||
	    (src = sqlite3_bind_int64(st, 5, claimed_at)) != SQLITE_OK ||
	    (src = sqlite3_bind_int(st, 3, status)) != SQLITE_OK ||
	    (src = sqlite3_bind_blob64(st, 4, response != NULL ? response :
	    "", (sqlite3_uint64)len, SQLITE_STATIC)) != SQLITE_OK) {
		rc = reg_fail(reg, src);
		goto out;
	}
	src = sqlite3_step(st);
	if (src == SQLITE_DONE) {
		rc = REG_NOT_FOUND;
		goto out;
	} else if (src != SQLITE_ROW ||
	    (src = sqlite3_step(st)) != SQLITE_DONE) {
		rc = reg_fail(reg, src);
		goto out;
	}
	rc = REG_OK;
out:
	stmt_done(reg, ST_IDEM_STORE);
	return rc;
}

enum reg_err
registry_idem_abandon(struct registry *reg, const char *scope,
    const char *key, int64_t claimed_at)
{
	sqlite3_stmt *st = reg->st[ST_IDEM_DROP];
	enum reg_err rc;
	int src;

	if (!idem_fits(scope, key))
		return reg_misuse(reg, "bad idempotency key");
	if (in_transaction(reg))
		return reg_misuse(reg, "idempotency abandon inside a "
		    "transaction");
	if ((rc = registry_begin(reg)) != REG_OK)
		return rc;
	if ((src = bind_idem(st, scope, key)) != SQLITE_OK ||
	    (src = sqlite3_bind_int64(st, 3, claimed_at)) != SQLITE_OK ||
	    (src = step_done(reg, ST_IDEM_DROP)) != SQLITE_OK) {
		rc = reg_fail(reg, src);
		goto out;
	}
	stmt_done(reg, ST_IDEM_DROP);
	rc = registry_commit(reg);
out:
	stmt_done(reg, ST_IDEM_DROP);
	registry_rollback(reg);
	return rc;
}
