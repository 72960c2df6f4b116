/* registry_pg.c: the registry in PostgreSQL, for several web hosts. */
#include "registry_impl.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pq_load.h"

/* meta row 'schema' of the schema below. */
#define PG_SCHEMA_VERSION 2

/*
 * Every call waits at most busy_timeout_ms for PostgreSQL, but never less
 * than this: a deadline of 0 would refuse even a healthy server.
 */
#define PG_DEADLINE_MIN_MS 100
/*
 * lock_timeout and statement_timeout are these eighths of the deadline:
 * the server ends a statement that waits too long, and says why, before
 * the client gives up on the connection; a lock wait is reported as one.
 */
#define PG_LOCK_EIGHTHS 6
#define PG_STATEMENT_EIGHTHS 7
/* A transaction idle this many deadlines is ended by the server. */
#define PG_IDLE_DEADLINES 4
/* Taking the write lock longer than this counts as a lock wait. */
#define PG_LOCK_WAIT_MIN_US 1000
/* TCP keepalives of an idle connection, in seconds. */
#define PG_KEEPALIVE_IDLE "15"
#define PG_KEEPALIVE_INTERVAL "5"
#define PG_KEEPALIVE_COUNT "3"
/* Idempotency records one idem_scan() query reads. */
#define PG_SCAN_BATCH 100
/* pg_advisory_xact_lock() key of schema creation: "userreg" in ASCII. */
#define PG_SCHEMA_LOCK "33059451824137575"
/* Parameters of the widest statement. */
#define PG_PARAMS_MAX 10

/*
 * The canonical key is the primary key, COLLATE "C" so that its order is
 * byte order whatever the database's locale (keys are ASCII): a list page
 * is one range scan of the primary key index. email_key (lowercased email)
 * is UNIQUE and NULL when unset, so any number of users may have no email.
 * The constraints are named: a unique violation is told apart by the name.
 * roles is sorted and comma-joined; admin mirrors "admin" in roles for the
 * partial index. meta holds the schema version, the revision counter and
 * the number of users, both written once by each commit, in its own round
 * trip (registry_impl.h, struct reg_meta): a per-row trigger made a
 * transaction that loads many users update one row again and again, each
 * update slower than the last, so an import took time quadratic in size.
 */
static const char schema_sql[] =
	"CREATE TABLE meta ("
	" k text COLLATE \"C\" PRIMARY KEY,"
	" v bigint NOT NULL);"
	"INSERT INTO meta (k, v) VALUES ('schema', 2), ('revision', 0),"
	" ('users', 0);"
	"CREATE TABLE users ("
	" key text COLLATE \"C\" NOT NULL,"
	" username text NOT NULL,"
	" email text,"
	" email_key text COLLATE \"C\","
	" display_name text,"
	" roles text NOT NULL,"
	" admin boolean NOT NULL,"
	" version bigint NOT NULL,"
	" created_at bigint NOT NULL,"
	" updated_at bigint NOT NULL,"
	" CONSTRAINT users_pkey PRIMARY KEY (key),"
	" CONSTRAINT users_email_key UNIQUE (email_key));"
	"CREATE INDEX users_admin ON users (key) WHERE admin;"
	"CREATE TABLE idempotency ("
	" scope text COLLATE \"C\" NOT NULL,"
	" key text COLLATE \"C\" NOT NULL,"
	" fingerprint text NOT NULL,"
	" status integer NOT NULL,"
	" response bytea NOT NULL,"
	" expires_at bigint NOT NULL,"
	" CONSTRAINT idempotency_pkey PRIMARY KEY (scope, key));"
	"CREATE INDEX idempotency_expires ON idempotency (expires_at);";

/* Version 1 counted users with a per-row trigger: it goes. */
static const char upgrade_1_sql[] =
	"DROP TRIGGER IF EXISTS users_counted ON users;"
	"DROP FUNCTION IF EXISTS users_counted();"
	"UPDATE meta SET v = 2 WHERE k = 'schema' AND v = 1;";

/* Prepared on first use on a connection, again after a reconnect. */
enum stmt {
	ST_SCHEMA,
	ST_REVISION,
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
#define IDEM_COLUMNS "fingerprint, status, response, expires_at"

static const char *const stmt_name[ST__MAX] = {
	[ST_SCHEMA] = "userreg_schema",
	[ST_REVISION] = "userreg_revision",
	[ST_COUNT] = "userreg_count",
	[ST_GET] = "userreg_get",
	[ST_INSERT] = "userreg_insert",
	[ST_UPDATE] = "userreg_update",
	[ST_DELETE] = "userreg_delete",
	[ST_OTHER_ADMIN] = "userreg_other_admin",
	[ST_LIST] = "userreg_list",
	[ST_IDEM_GET] = "userreg_idem_get",
	[ST_IDEM_PUT] = "userreg_idem_put",
	[ST_IDEM_PURGE] = "userreg_idem_purge",
	[ST_IDEM_SCAN] = "userreg_idem_scan",
};

static const char *const stmt_sql[ST__MAX] = {
	[ST_SCHEMA] = "SELECT v FROM meta WHERE k = 'schema'",
	[ST_REVISION] = "SELECT v FROM meta WHERE k = 'revision'",
	[ST_COUNT] = "SELECT v FROM meta WHERE k = 'users'",
	[ST_GET] = "SELECT " USER_COLUMNS " FROM users WHERE key = $1",
	[ST_INSERT] = "INSERT INTO users (key, username, email, email_key,"
	    " display_name, roles, admin, version, created_at, updated_at)"
	    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
	/* Compare-and-swap: only the version the caller read is replaced. */
	[ST_UPDATE] = "UPDATE users SET username = $2, email = $3,"
	    " email_key = $4, display_name = $5, roles = $6, admin = $7,"
	    " version = $8, updated_at = $9"
	    " WHERE key = $1 AND version = $10 RETURNING created_at",
	[ST_DELETE] = "DELETE FROM users WHERE key = $1 AND version = $2"
	    " RETURNING admin",
	/* Walks the partial index users_admin. */
	[ST_OTHER_ADMIN] = "SELECT 1 FROM users WHERE admin AND key <> $1"
	    " LIMIT 1",
	/* Keys are ASCII below 0x7f, so prefix || chr(127) bounds them. */
	[ST_LIST] = "SELECT " USER_COLUMNS " FROM users"
	    " WHERE key > $1::text AND key >= $2::text"
	    " AND key < $2::text || chr(127) ORDER BY key LIMIT $3",
	[ST_IDEM_GET] = "SELECT " IDEM_COLUMNS " FROM idempotency"
	    " WHERE scope = $1 AND key = $2 AND expires_at >= $3",
	/* Under the write lock: no other writer can race for the key. */
	[ST_IDEM_PUT] = "INSERT INTO idempotency (scope, key, fingerprint,"
	    " status, response, expires_at) VALUES ($1, $2, $3, $4, $5, $6)"
	    " ON CONFLICT (scope, key) DO UPDATE SET"
	    " fingerprint = EXCLUDED.fingerprint, status = EXCLUDED.status,"
	    " response = EXCLUDED.response, expires_at = EXCLUDED.expires_at",
	[ST_IDEM_PURGE] = "DELETE FROM idempotency WHERE (scope, key) IN"
	    " (SELECT scope, key FROM idempotency WHERE expires_at < $1"
	    " ORDER BY expires_at LIMIT $2)",
	[ST_IDEM_SCAN] = "SELECT scope, key, " IDEM_COLUMNS
	    " FROM idempotency WHERE (scope, key) > ($1::text, $2::text)"
	    " ORDER BY scope, key LIMIT $3",
};

/*
 * A write transaction locks the revision row first thing, so every write
 * on every host holds one shared row lock until it commits: writes are
 * serialized, versions increase in commit order, and whatever a write
 * reads after begin() (its target, the last-admin check, an idempotency
 * record a concurrent request with the same key just stored) is the
 * latest committed state and cannot change before its commit. READ
 * COMMITTED, not REPEATABLE READ: each statement after the lock wait must
 * see what the previous holder committed. Without the lock two demotions
 * of the last two admins at READ COMMITTED could both pass the check
 * (write skew).
 */
static const char begin_write_sql[] =
	"BEGIN ISOLATION LEVEL READ COMMITTED;"
	" SELECT v FROM meta WHERE k = 'revision' FOR UPDATE";
/* One snapshot for every read; no lock, nothing to serialize. */
static const char begin_read_sql[] =
	"BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";

struct pgreg {
	struct registry base;
	const char *uri;		/* base.location */
	PGconn *conn;			/* NULL while the server is unreachable */
	int deadline_ms;		/* what one call may wait in all */
	unsigned char prepared[ST__MAX];	/* on this connection */
};

/* Text or binary values of one statement's parameters. */
struct params {
	int n;
	const char *v[PG_PARAMS_MAX];
	int len[PG_PARAMS_MAX];
	int fmt[PG_PARAMS_MAX];
	char num[PG_PARAMS_MAX][24];
};

static const struct registry_ops pg_ops;

static struct pgreg *
pg(struct registry *reg)
{
	return (struct pgreg *)(void *)reg;
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void
p_text(struct params *p, const char *s)
{
	p->v[p->n] = s;
	p->len[p->n] = 0;
	p->fmt[p->n] = 0;
	p->n++;
}

/* "" is stored as NULL (no email, no display name). */
static void
p_text_or_null(struct params *p, const char *s)
{
	p_text(p, *s != '\0' ? s : NULL);
}

static void
p_int(struct params *p, int64_t v)
{
	snprintf(p->num[p->n], sizeof(p->num[p->n]), "%" PRId64, v);
	p_text(p, p->num[p->n]);
}

/* Binary bytes; len must fit an int (the caller checks). */
static void
p_bytes(struct params *p, const char *data, size_t len)
{
	p->v[p->n] = data;
	p->len[p->n] = (int)len;
	p->fmt[p->n] = 1;
	p->n++;
}

/* Copies msg into the handle's reason, newlines made spaces. */
static void
keep_msg(struct pgreg *r, const char *prefix, const char *msg)
{
	char *p;

	snprintf(r->base.errmsg, sizeof(r->base.errmsg), "%s%s", prefix,
	    msg != NULL && *msg != '\0' ? msg : "no message");
	for (p = r->base.errmsg; *p != '\0'; p++)
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
	while (p > r->base.errmsg && p[-1] == ' ')
		*--p = '\0';
}

/* Forgets the connection (the server rolls back what it held). */
static void
drop(struct pgreg *r)
{
	if (r->conn != NULL)
		PQfinish(r->conn);
	r->conn = NULL;
	memset(r->prepared, 0, sizeof(r->prepared));
}

/* The handle has no connection: every call refuses until a refresh. */
static enum reg_err
down(struct pgreg *r)
{
	return reg_fail_msg(&r->base, REG_UNAVAILABLE, "not connected to "
	    "PostgreSQL (a refresh reconnects)");
}

/* The connection broke: keeps libpq's reason, drops it. */
static enum reg_err
lost(struct pgreg *r)
{
	keep_msg(r, "connection to PostgreSQL lost: ",
	    r->conn != NULL ? PQerrorMessage(r->conn) : NULL);
	drop(r);
	return REG_UNAVAILABLE;
}

/*
 * No answer before the deadline (w == 0) or poll() failed (w < 0). The
 * connection is dropped, not cancelled: PQcancel() connects to the server
 * and waits for it to answer, without any timeout, which is exactly what
 * an unresponsive server would not do. The server's own lock_timeout and
 * statement_timeout, shorter than the deadline, already end whatever a
 * live server was running, and closing the connection rolls back its
 * transaction.
 */
static enum reg_err
stuck(struct pgreg *r, int w)
{
	if (w < 0)
		reg_fail_msg(&r->base, REG_UNAVAILABLE, "poll on the "
		    "PostgreSQL connection: %s", strerror(errno));
	else
		reg_fail_msg(&r->base, REG_UNAVAILABLE, "PostgreSQL did not "
		    "answer within %d ms", r->deadline_ms);
	drop(r);
	return REG_UNAVAILABLE;
}

/*
 * Waits until fd is ready for events or deadline (CLOCK_MONOTONIC ms)
 * passes. Returns 1 when ready, 0 at the deadline, -1 on error.
 */
static int
wait_fd(int fd, short events, int64_t deadline)
{
	struct pollfd pfd;
	int64_t left;
	int n;

	if (fd < 0)
		return -1;
	for (;;) {
		if ((left = deadline - now_ms()) <= 0)
			return 0;
		pfd.fd = fd;
		pfd.events = events;
		pfd.revents = 0;
		n = poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (n > 0)
			return 1;
		if (n == 0)
			return 0;
		if (errno != EINTR)
			return -1;
	}
}

/*
 * Maps a SQLSTATE (and the constraint a unique violation names) to the
 * registry's error domain.
 */
static enum reg_err
map_state(const char *state, const char *constraint)
{
	static const char *const busy[] = {
		"40001",	/* serialization_failure */
		"40P01",	/* deadlock_detected */
		"55P03",	/* lock_not_available: lock_timeout */
		"57014",	/* query_canceled: statement_timeout */
	};
	static const char *const unavailable[] = {
		"25006",	/* read_only_sql_transaction: a standby */
		"25P03",	/* idle_in_transaction_session_timeout */
	};
	size_t i;

	if (state == NULL || strlen(state) != 5)
		return REG_ERROR;
	if (strcmp(state, "23505") == 0) {
		if (constraint != NULL && strcmp(constraint, "users_pkey") == 0)
			return REG_EXISTS;
		if (constraint != NULL &&
		    strcmp(constraint, "users_email_key") == 0)
			return REG_EMAIL_TAKEN;
		return REG_ERROR;
	}
	for (i = 0; i < sizeof(busy) / sizeof(busy[0]); i++)
		if (strcmp(state, busy[i]) == 0)
			return REG_BUSY;
	for (i = 0; i < sizeof(unavailable) / sizeof(unavailable[0]); i++)
		if (strcmp(state, unavailable[i]) == 0)
			return REG_UNAVAILABLE;
	/* connection_exception, insufficient_resources (disk full, memory,
	 * too many connections), shutdown and crash, system/I/O errors. */
	if (strncmp(state, "08", 2) == 0 || strncmp(state, "53", 2) == 0 ||
	    strncmp(state, "57P", 3) == 0 || strncmp(state, "58", 2) == 0)
		return REG_UNAVAILABLE;
	return REG_ERROR;
}

/*
 * Turns a finished result into REG_OK (a command or rows) or the mapped
 * error, keeping the server's message; res is cleared on error.
 */
static enum reg_err
check(struct pgreg *r, PGresult *res)
{
	const char *state, *msg;
	char prefix[32];
	enum reg_err err;

	switch (PQresultStatus(res)) {
	case PGRES_COMMAND_OK:
	case PGRES_TUPLES_OK:
		return REG_OK;
	default:
		break;
	}
	if (PQstatus(r->conn) == CONNECTION_BAD) {
		PQclear(res);
		return lost(r);
	}
	state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	err = map_state(state, PQresultErrorField(res,
	    PG_DIAG_CONSTRAINT_NAME));
	if ((msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)) == NULL)
		msg = PQresultErrorMessage(res);
	snprintf(prefix, sizeof(prefix), "[%s] ", state != NULL ? state :
	    "no sqlstate");
	keep_msg(r, prefix, msg);
	/*
	 * A server that takes no writes (a primary demoted in a failover):
	 * the next refresh connects again, to the new primary when the URI
	 * lists the hosts with target_session_attrs=read-write.
	 */
	if (state != NULL && strcmp(state, "25006") == 0)
		drop(r);
	PQclear(res);
	return err;
}

/*
 * After a PQsend*(): flushes what is queued and waits, until deadline,
 * for every result of it. Stores in *out the first failed result if any,
 * else the last one (the caller clears it). Any other outcome drops the
 * connection: REG_UNAVAILABLE.
 */
static enum reg_err
finish(struct pgreg *r, int64_t deadline, PGresult **out)
{
	PGresult *res, *keep = NULL;
	int fl, w;

	*out = NULL;
	while ((fl = PQflush(r->conn)) == 1) {
		w = wait_fd(PQsocket(r->conn), POLLIN | POLLOUT, deadline);
		if (w <= 0)
			return stuck(r, w);
		if (!PQconsumeInput(r->conn))
			return lost(r);
	}
	if (fl == -1)
		return lost(r);
	for (;;) {
		while (PQisBusy(r->conn)) {
			w = wait_fd(PQsocket(r->conn), POLLIN, deadline);
			if (w <= 0 || !PQconsumeInput(r->conn)) {
				PQclear(keep);
				return w <= 0 ? stuck(r, w) : lost(r);
			}
		}
		if ((res = PQgetResult(r->conn)) == NULL)
			break;
		if (keep != NULL && PQresultStatus(keep) == PGRES_FATAL_ERROR) {
			PQclear(res);
		} else {
			PQclear(keep);
			keep = res;
		}
	}
	if (keep == NULL)
		return lost(r);
	*out = keep;
	return REG_OK;
}

static int64_t
deadline_of(const struct pgreg *r)
{
	return now_ms() + r->deadline_ms;
}

/* Runs sql (one or more statements, no parameters) as a simple query. */
static enum reg_err
simple(struct pgreg *r, const char *sql, PGresult **out)
{
	int64_t deadline = deadline_of(r);
	PGresult *res;
	enum reg_err rc;

	if (out != NULL)
		*out = NULL;
	if (r->conn == NULL)
		return down(r);
	if (!PQsendQuery(r->conn, sql))
		return lost(r);
	if ((rc = finish(r, deadline, &res)) != REG_OK ||
	    (rc = check(r, res)) != REG_OK)
		return rc;
	if (out != NULL)
		*out = res;
	else
		PQclear(res);
	return REG_OK;
}

/* Runs prepared statement id with p, preparing it first if need be. */
static enum reg_err
execute(struct pgreg *r, enum stmt id, const struct params *p,
    PGresult **out)
{
	int64_t deadline = deadline_of(r);
	PGresult *res;
	enum reg_err rc;

	*out = NULL;
	if (r->conn == NULL)
		return down(r);
	if (!r->prepared[id]) {
		/* Not transactional: a rollback does not undo it. */
		if (!PQsendPrepare(r->conn, stmt_name[id], stmt_sql[id], p->n,
		    NULL))
			return lost(r);
		if ((rc = finish(r, deadline, &res)) != REG_OK ||
		    (rc = check(r, res)) != REG_OK)
			return rc;
		PQclear(res);
		r->prepared[id] = 1;
	}
	if (!PQsendQueryPrepared(r->conn, stmt_name[id], p->n, p->v, p->len,
	    p->fmt, 0))
		return lost(r);
	if ((rc = finish(r, deadline, &res)) != REG_OK ||
	    (rc = check(r, res)) != REG_OK)
		return rc;
	*out = res;
	return REG_OK;
}

/* Parses a text column as a decimal integer; -1 if it is not one. */
static int
col_int(const PGresult *res, int row, int col, int64_t *v)
{
	const char *s;
	char *end;
	long long n;

	if (PQgetisnull(res, row, col))
		return -1;
	s = PQgetvalue(res, row, col);
	errno = 0;
	n = strtoll(s, &end, 10);
	if (end == s || *end != '\0' || errno != 0)
		return -1;
	*v = (int64_t)n;
	return 0;
}

/* A text column, NULL for SQL NULL; -1 when it would not read back. */
static int
col_text(const PGresult *res, int row, int col, const char **s)
{
	if (PQgetisnull(res, row, col)) {
		*s = NULL;
		return 0;
	}
	*s = PQgetvalue(res, row, col);
	return (size_t)PQgetlength(res, row, col) == strlen(*s) ? 0 : -1;
}

/* Runs id, which yields one integer (*v). */
static enum reg_err
one_int(struct pgreg *r, enum stmt id, const struct params *p, int64_t *v)
{
	PGresult *res;
	enum reg_err rc;

	if ((rc = execute(r, id, p, &res)) != REG_OK)
		return rc;
	if (PQntuples(res) != 1)
		rc = reg_fail_msg(&r->base, REG_ERROR, "meta row missing");
	else if (col_int(res, 0, 0, v) == -1)
		rc = reg_fail_msg(&r->base, REG_ERROR, "meta row malformed");
	PQclear(res);
	return rc;
}

static void
quiet_notice(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

/* Where the handle points, for messages: never the URI (passwords). */
static void
where(const struct pgreg *r, char *buf, size_t size)
{
	const char *host = r->conn != NULL ? PQhost(r->conn) : NULL;
	const char *db = r->conn != NULL ? PQdb(r->conn) : NULL;

	snprintf(buf, size, "database '%s' on '%s'", db != NULL ? db : "?",
	    host != NULL ? host : "?");
}

/*
 * Creates the schema when no process has: under an advisory lock, so
 * several processes opening a fresh database at once are safe; whoever
 * comes second finds the tables there. The lock is the session's, taken
 * before the transaction: a transaction that began before another's DDL
 * committed would still find its own cached "no such table".
 */
static enum reg_err
schema_create(struct pgreg *r)
{
	PGresult *res;
	enum reg_err rc;
	int exists;

	if ((rc = simple(r, "SELECT pg_advisory_lock(" PG_SCHEMA_LOCK ")",
	    NULL)) != REG_OK)
		return rc;
	if ((rc = simple(r, "BEGIN; SELECT to_regclass('meta') IS NOT NULL",
	    &res)) != REG_OK)
		goto out;
	exists = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") ==
	    0;
	PQclear(res);
	/* Another process may have done it meanwhile; both are idempotent. */
	if ((rc = simple(r, exists ? upgrade_1_sql : schema_sql, NULL)) !=
	    REG_OK)
		goto out;
	rc = simple(r, "COMMIT", NULL);
out:
	if (r->conn != NULL &&
	    PQtransactionStatus(r->conn) != PQTRANS_IDLE)
		simple(r, "ROLLBACK", NULL);
	if (r->conn != NULL)
		simple(r, "SELECT pg_advisory_unlock(" PG_SCHEMA_LOCK ")",
		    NULL);
	return rc;
}

/*
 * Sets the session's timeouts and checks the schema: creates it with
 * REG_OPEN_CREATE, else a database without it is REG_UNAVAILABLE.
 */
static enum reg_err
session_ready(struct pgreg *r, unsigned flags)
{
	char sql[512], at[160];
	struct params p = { 0 };
	const char *enc;
	PGresult *res;
	enum reg_err rc;
	int64_t version = 0;
	int lock_ms, statement_ms, has_schema;

	/* Never 0, which is "no limit". */
	lock_ms = r->deadline_ms / 8 * PG_LOCK_EIGHTHS + 1;
	statement_ms = r->deadline_ms / 8 * PG_STATEMENT_EIGHTHS + 1;
	/*
	 * synchronous_commit off would acknowledge writes a crash can lose;
	 * any stronger setting of the server's is kept.
	 */
	snprintf(sql, sizeof(sql), "SET lock_timeout = %d;"
	    " SET statement_timeout = %d;"
	    " SET idle_in_transaction_session_timeout = %d;"
	    " SELECT set_config('synchronous_commit', 'on', false)"
	    " WHERE current_setting('synchronous_commit') = 'off';"
	    " SELECT current_setting('server_encoding'),"
	    " to_regclass('meta') IS NOT NULL", lock_ms, statement_ms,
	    r->deadline_ms * PG_IDLE_DEADLINES);
	if ((rc = simple(r, sql, &res)) != REG_OK)
		return rc;
	if (PQntuples(res) != 1 || PQnfields(res) != 2) {
		PQclear(res);
		return reg_fail_msg(&r->base, REG_ERROR, "unexpected answer to "
		    "the session set-up");
	}
	enc = PQgetvalue(res, 0, 0);
	has_schema = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
	where(r, at, sizeof(at));
	if (strcmp(enc, "UTF8") != 0 && strcmp(enc, "SQL_ASCII") != 0) {
		rc = reg_fail_msg(&r->base, REG_ERROR, "%s has encoding %s: "
		    "the registry needs UTF8", at, enc);
		PQclear(res);
		return rc;
	}
	PQclear(res);
	if (!has_schema) {
		if (!(flags & REG_OPEN_CREATE))
			return reg_fail_msg(&r->base, REG_UNAVAILABLE, "%s has "
			    "no registry: create it with `userreg init`", at);
		if ((rc = schema_create(r)) != REG_OK)
			return rc;
	}
	if ((rc = one_int(r, ST_SCHEMA, &p, &version)) != REG_OK)
		return rc;
	if (version == 1) {
		/* Once, under the same lock as a creation. */
		if ((rc = schema_create(r)) != REG_OK ||
		    (rc = one_int(r, ST_SCHEMA, &p, &version)) != REG_OK)
			return rc;
	}
	if (version != PG_SCHEMA_VERSION)
		return reg_fail_msg(&r->base, REG_ERROR, "%s has schema version "
		    "%" PRId64 ", this program knows %d", at, version,
		    PG_SCHEMA_VERSION);
	return REG_OK;
}

/*
 * Connects without ever blocking past the deadline (libpq's own
 * connect_timeout is only a backstop, in whole seconds) and readies the
 * session. Options of the URI win over the defaults here, except the
 * client encoding: every text the registry stores is UTF-8.
 */
static enum reg_err
connect_db(struct pgreg *r, unsigned flags)
{
	char timeout_s[16], user_timeout_ms[16];
	const char *const kw[] = {
		"connect_timeout", "keepalives", "keepalives_idle",
		"keepalives_interval", "keepalives_count", "tcp_user_timeout",
		"fallback_application_name", "dbname", "client_encoding", NULL
	};
	const char *const val[] = {
		timeout_s, "1", PG_KEEPALIVE_IDLE, PG_KEEPALIVE_INTERVAL,
		PG_KEEPALIVE_COUNT, user_timeout_ms, "userreg", r->uri, "UTF8",
		NULL
	};
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	int64_t deadline = deadline_of(r);
	enum reg_err rc;
	int w;

	drop(r);
	/* libpq takes 1 as 2: the smallest it knows. */
	snprintf(timeout_s, sizeof(timeout_s), "%d",
	    r->deadline_ms / 1000 < 2 ? 2 : (r->deadline_ms + 999) / 1000);
	snprintf(user_timeout_ms, sizeof(user_timeout_ms), "%d",
	    r->deadline_ms);
	if ((r->conn = PQconnectStartParams(kw, val, 1)) == NULL)
		return reg_fail_msg(&r->base, REG_ERROR, "out of memory");
	while (PQstatus(r->conn) != CONNECTION_BAD && st != PGRES_POLLING_OK &&
	    st != PGRES_POLLING_FAILED) {
		/* The socket may change as libpq tries host after host. */
		w = wait_fd(PQsocket(r->conn), st == PGRES_POLLING_READING ?
		    POLLIN : POLLOUT, deadline);
		if (w <= 0) {
			reg_fail_msg(&r->base, REG_UNAVAILABLE, "cannot connect "
			    "to PostgreSQL within %d ms", r->deadline_ms);
			drop(r);
			return REG_UNAVAILABLE;
		}
		st = PQconnectPoll(r->conn);
	}
	if (PQstatus(r->conn) != CONNECTION_OK) {
		keep_msg(r, "cannot connect to PostgreSQL: ",
		    PQerrorMessage(r->conn));
		drop(r);
		return REG_UNAVAILABLE;
	}
	PQsetNoticeProcessor(r->conn, quiet_notice, NULL);
	if (PQsetnonblocking(r->conn, 1) != 0)
		return lost(r);
	if ((rc = session_ready(r, flags)) != REG_OK)
		drop(r);
	return rc;
}

/*
 * A URI libpq cannot parse is a mistake in the configuration (REG_ERROR),
 * not a server to wait for. libpq's reason is kept up to the token it
 * quotes, which may be a piece of a password.
 */
static enum reg_err
uri_check(const char *uri, char *errmsg)
{
	PQconninfoOption *opts;
	char *why = NULL;
	size_t n;

	if ((opts = PQconninfoParse(uri, &why)) != NULL) {
		PQconninfoFree(opts);
		return REG_OK;
	}
	n = why != NULL ? strcspn(why, "\"\n") : 0;
	if (errmsg != NULL)
		snprintf(errmsg, REG_ERRMSG_SIZE, "malformed PostgreSQL URI: "
		    "%.*s", (int)n, why != NULL ? why : "out of memory");
	PQfreemem(why);
	return REG_ERROR;
}

struct registry *
registry_pg_open(const char *uri, int busy_timeout_ms, unsigned flags,
    enum reg_err *err, char *errmsg)
{
	char why[REG_ERRMSG_SIZE];
	struct pgreg *r;

	if (pq_load(why, sizeof(why)) != 0) {
		if (errmsg != NULL)
			snprintf(errmsg, REG_ERRMSG_SIZE, "%s", why);
		*err = REG_ERROR;
		return NULL;
	}
	if ((*err = uri_check(uri, errmsg)) != REG_OK)
		return NULL;
	if ((r = reg_new(sizeof(*r), &pg_ops, uri, busy_timeout_ms, flags, err,
	    errmsg)) == NULL)
		return NULL;
	r->uri = r->base.location;
	r->deadline_ms = busy_timeout_ms < PG_DEADLINE_MIN_MS ?
	    PG_DEADLINE_MIN_MS : busy_timeout_ms;
	return reg_opened(&r->base, connect_db(r, flags), err, errmsg);
}

static void
pg_close(struct registry *reg)
{
	drop(pg(reg));
	reg_free(reg);
}

/* Returns 1 if fd has something to read right now (no waiting). */
static int
readable(int fd)
{
	struct pollfd pfd;
	int n;

	pfd.fd = fd;
	pfd.events = POLLIN;
	pfd.revents = 0;
	while ((n = poll(&pfd, 1, 0)) == -1 && errno == EINTR)
		;
	return n > 0;
}

/*
 * Returns 1 if the idle connection still looks alive. A server that shut
 * down or restarted has sent its goodbye and closed the socket: reading
 * what is there, without waiting, finds that out for the cost of a poll.
 */
static int
alive(struct pgreg *r)
{
	PGresult *res;
	int i;

	if (r->conn == NULL || PQstatus(r->conn) != CONNECTION_OK ||
	    PQtransactionStatus(r->conn) != PQTRANS_IDLE)
		return 0;
	/* The goodbye, then the end of the stream: a few reads at most. */
	for (i = 0; i < 4 && readable(PQsocket(r->conn)); i++) {
		if (!PQconsumeInput(r->conn))
			return 0;
		/* A FATAL while idle comes as a result; nothing else should. */
		while (!PQisBusy(r->conn) &&
		    (res = PQgetResult(r->conn)) != NULL)
			PQclear(res);
		if (PQstatus(r->conn) != CONNECTION_OK)
			return 0;
	}
	return 1;
}

static enum reg_err
pg_refresh(struct registry *reg)
{
	struct pgreg *r = pg(reg);

	if (alive(r))
		return REG_OK;
	/* Reconnect; never create a registry nobody asked for. */
	return connect_db(r, reg->flags & ~(unsigned)REG_OPEN_CREATE);
}

static int
pg_moved(const struct registry *reg)
{
	(void)reg;
	return 0;
}

static enum reg_err
pg_maintain(struct registry *reg)
{
	/* Vacuuming is the server's (autovacuum). */
	(void)reg;
	return REG_OK;
}

static int
pg_in_transaction(const struct registry *reg)
{
	const struct pgreg *r = (const struct pgreg *)(const void *)reg;
	PGTransactionStatusType st;

	if (r->conn == NULL)
		return 0;
	st = PQtransactionStatus(r->conn);
	return st == PQTRANS_INTRANS || st == PQTRANS_INERROR;
}

static void
pg_rollback(struct registry *reg)
{
	struct pgreg *r = pg(reg);

	if (pg_in_transaction(reg))
		simple(r, "ROLLBACK", NULL);
}

static enum reg_err
pg_begin(struct registry *reg, enum reg_txn kind)
{
	struct pgreg *r = pg(reg);
	PGresult *res;
	enum reg_err rc;
	int64_t t0, waited_us;

	if (r->conn == NULL)
		return down(r);
	if (kind != REG_TXN_WRITE)
		return simple(r, begin_read_sql, NULL);
	t0 = now_us();
	rc = simple(r, begin_write_sql, &res);
	/* The lock wait cannot be told from the round trip: count long
	 * ones. */
	if ((waited_us = now_us() - t0) >= PG_LOCK_WAIT_MIN_US)
		reg_note_lock_wait(reg, (double)waited_us / 1e6);
	if (rc == REG_OK) {
		/* The locked row is the revision: registry.c counts from it. */
		if (PQntuples(res) != 1 ||
		    col_int(res, 0, 0, &reg->meta.revision) == -1)
			rc = reg_fail_msg(reg, REG_ERROR, "meta row missing");
		else
			reg->meta.loaded = 1;
		PQclear(res);
	}
	if (rc != REG_OK)
		pg_rollback(reg);
	return rc;
}

static enum reg_err
pg_commit(struct registry *reg, const struct reg_meta *m)
{
	struct pgreg *r = pg(reg);
	char why[REG_ERRMSG_SIZE], sql[192];
	PGresult *res;
	enum reg_err rc;

	if (r->conn == NULL)
		return down(r);
	/* COMMIT of an aborted transaction rolls back and says so. */
	if (PQtransactionStatus(r->conn) == PQTRANS_INERROR)
		return reg_fail_msg(reg, REG_ERROR, "transaction aborted by an "
		    "earlier error");
	/*
	 * statement_timeout does not reach the commit itself (the server
	 * stops the clock before committing), so a commit waiting for a
	 * synchronous standby waits until the deadline here, and a commit
	 * never "succeeds" by being cancelled.
	 */
	/* The meta rows move with the commit, in the same round trip. */
	if (m != NULL)
		snprintf(sql, sizeof(sql), "UPDATE meta SET v = %" PRId64
		    " WHERE k = 'revision'; UPDATE meta SET v = v + (%" PRId64
		    ") WHERE k = 'users'; COMMIT", m->revision, m->count_delta);
	else
		snprintf(sql, sizeof(sql), "COMMIT");
	if ((rc = simple(r, sql, &res)) != REG_OK) {
		if (rc == REG_UNAVAILABLE) {
			snprintf(why, sizeof(why), "%s", reg->errmsg);
			reg_fail_msg(reg, rc, "outcome of the commit unknown: "
			    "%s", why);
		}
		return rc;
	}
	if (strcmp(PQcmdStatus(res), "COMMIT") != 0)
		rc = reg_fail_msg(reg, REG_ERROR, "commit answered '%s'",
		    PQcmdStatus(res));
	PQclear(res);
	return rc;
}

static enum reg_err
pg_savepoint(struct registry *reg)
{
	return simple(pg(reg), "SAVEPOINT reg_sp", NULL);
}

/*
 * A failed statement aborts the transaction until ROLLBACK TO; undoing
 * and closing the savepoint is one round trip.
 */
static enum reg_err
pg_savepoint_end(struct registry *reg, int keep)
{
	return simple(pg(reg), keep ? "RELEASE SAVEPOINT reg_sp" :
	    "ROLLBACK TO SAVEPOINT reg_sp; RELEASE SAVEPOINT reg_sp", NULL);
}

static enum reg_err
pg_revision(struct registry *reg, int64_t *v)
{
	struct params p = { 0 };

	return one_int(pg(reg), ST_REVISION, &p, v);
}

static enum reg_err
pg_count(struct registry *reg, int64_t *n)
{
	struct params p = { 0 };

	return one_int(pg(reg), ST_COUNT, &p, n);
}

/* Reads the USER_COLUMNS of row of res into out. */
static enum reg_err
row_read(struct pgreg *r, const PGresult *res, int row, struct user *out)
{
	const char *t[4];
	int64_t n[3];
	int i;

	for (i = 0; i < 4; i++)
		if (col_text(res, row, i, &t[i]) == -1)
			return reg_fail_msg(&r->base, REG_ERROR,
			    "stored user holds a NUL");
	for (i = 0; i < 3; i++)
		if (col_int(res, row, 4 + i, &n[i]) == -1)
			return reg_fail_msg(&r->base, REG_ERROR,
			    "stored user has a malformed number");
	return reg_row_to_user(&r->base, t[0], t[1], t[2], t[3], n[0], n[1],
	    n[2], out);
}

static enum reg_err
pg_get(struct registry *reg, const char *key, struct user *out)
{
	struct pgreg *r = pg(reg);
	struct params p = { 0 };
	PGresult *res;
	enum reg_err rc;

	p_text(&p, key);
	if ((rc = execute(r, ST_GET, &p, &res)) != REG_OK)
		return rc;
	rc = PQntuples(res) == 0 ? REG_NOT_FOUND : row_read(r, res, 0, out);
	PQclear(res);
	return rc;
}

/* The ten columns of a row, in ST_INSERT's order. */
static void
p_row(struct params *p, const struct reg_row *row, int with_created)
{
	p_text(p, row->key);
	p_text(p, row->u->username);
	p_text_or_null(p, row->u->email);
	p_text_or_null(p, row->email_key);
	p_text_or_null(p, row->u->display_name);
	p_text(p, row->roles);
	p_text(p, row->admin ? "t" : "f");
	p_int(p, row->version);
	if (with_created)
		p_int(p, row->created_at);
	p_int(p, row->updated_at);
}

static enum reg_err
pg_insert(struct registry *reg, const struct reg_row *row)
{
	struct params p = { 0 };
	PGresult *res;
	enum reg_err rc;

	p_row(&p, row, 1);
	/* A unique violation comes back by constraint name. */
	if ((rc = execute(pg(reg), ST_INSERT, &p, &res)) == REG_OK)
		PQclear(res);
	return rc;
}

static enum reg_err
pg_update(struct registry *reg, const struct reg_row *row, int64_t expected,
    int64_t *created_at)
{
	struct pgreg *r = pg(reg);
	struct params p = { 0 };
	PGresult *res;
	enum reg_err rc;

	p_row(&p, row, 0);
	p_int(&p, expected);
	if ((rc = execute(r, ST_UPDATE, &p, &res)) != REG_OK)
		return rc;
	if (PQntuples(res) == 0)
		rc = REG_NOT_FOUND;
	else if (col_int(res, 0, 0, created_at) == -1)
		rc = reg_fail_msg(reg, REG_ERROR, "stored user has a "
		    "malformed created_at");
	PQclear(res);
	return rc;
}

static enum reg_err
pg_delete(struct registry *reg, const char *key, int64_t expected,
    int *was_admin)
{
	struct params p = { 0 };
	PGresult *res;
	enum reg_err rc;

	p_text(&p, key);
	p_int(&p, expected);
	if ((rc = execute(pg(reg), ST_DELETE, &p, &res)) != REG_OK)
		return rc;
	if (PQntuples(res) == 0)
		rc = REG_NOT_FOUND;
	else
		*was_admin = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	return rc;
}

static enum reg_err
pg_other_admin(struct registry *reg, const char *key, int *found)
{
	struct params p = { 0 };
	PGresult *res;
	enum reg_err rc;

	p_text(&p, key);
	if ((rc = execute(pg(reg), ST_OTHER_ADMIN, &p, &res)) != REG_OK)
		return rc;
	*found = PQntuples(res) > 0;
	PQclear(res);
	return REG_OK;
}

static enum reg_err
pg_list(struct registry *reg, const char *after, const char *prefix,
    size_t limit, struct user *out, size_t *n, int *more)
{
	struct pgreg *r = pg(reg);
	struct params p = { 0 };
	PGresult *res;
	enum reg_err rc = REG_OK;
	int i, rows;

	p_text(&p, after);
	p_text(&p, prefix);
	/* One more than asked: whether there is a next page. */
	p_int(&p, (int64_t)limit + 1);
	if ((rc = execute(r, ST_LIST, &p, &res)) != REG_OK)
		return rc;
	rows = PQntuples(res);
	for (i = 0; i < rows && rc == REG_OK; i++) {
		if ((size_t)i == limit) {
			*more = 1;
			break;
		}
		if ((rc = row_read(r, res, i, &out[i])) == REG_OK)
			(*n)++;
	}
	PQclear(res);
	return rc;
}

/* Copies columns (fingerprint, status, response, expires_at) from first. */
static enum reg_err
idem_read(struct pgreg *r, const PGresult *res, int row, int first,
    struct reg_idem *rec)
{
	const char *fp;
	unsigned char *bytes;
	int64_t status;
	size_t n;

	if (col_text(res, row, first, &fp) == -1 || fp == NULL ||
	    strlen(fp) > REG_IDEM_FINGERPRINT_MAX ||
	    col_int(res, row, first + 1, &status) == -1 ||
	    status < 0 || status > INT_MAX ||
	    col_int(res, row, first + 3, &rec->expires_at) == -1 ||
	    PQgetisnull(res, row, first + 2))
		return reg_fail_msg(&r->base, REG_ERROR,
		    "idempotency record malformed");
	snprintf(rec->fingerprint, sizeof(rec->fingerprint), "%s", fp);
	rec->status = (int)status;
	bytes = PQunescapeBytea((const unsigned char *)PQgetvalue(res, row,
	    first + 2), &n);
	if (bytes == NULL)
		return reg_fail_msg(&r->base, REG_ERROR, "out of memory");
	/* Ours to free(), with a NUL after the bytes. */
	if ((rec->response = malloc(n + 1)) == NULL) {
		PQfreemem(bytes);
		return reg_fail_msg(&r->base, REG_ERROR, "out of memory");
	}
	if (n > 0)
		memcpy(rec->response, bytes, n);
	rec->response[n] = '\0';
	rec->response_len = n;
	PQfreemem(bytes);
	return REG_OK;
}

static enum reg_err
pg_idem_get(struct registry *reg, const char *scope, const char *key,
    int64_t now, struct reg_idem *rec)
{
	struct pgreg *r = pg(reg);
	struct params p = { 0 };
	PGresult *res;
	enum reg_err rc;

	p_text(&p, scope);
	p_text(&p, key);
	p_int(&p, now);
	if ((rc = execute(r, ST_IDEM_GET, &p, &res)) != REG_OK)
		return rc;
	rc = PQntuples(res) == 0 ? REG_NOT_FOUND :
	    idem_read(r, res, 0, 0, rec);
	PQclear(res);
	if (rc != REG_OK)
		registry_idem_release(rec);
	return rc;
}

static enum reg_err
pg_idem_put(struct registry *reg, const char *scope, const char *key,
    const char *fingerprint, int status, const char *response, size_t len,
    int64_t expires_at)
{
	struct params p = { 0 };
	PGresult *res;
	enum reg_err rc;

	if (len > INT_MAX)
		return reg_fail_msg(reg, REG_ERROR, "response too large");
	p_text(&p, scope);
	p_text(&p, key);
	p_text(&p, fingerprint);
	p_int(&p, status);
	p_bytes(&p, response, len);
	p_int(&p, expires_at);
	if ((rc = execute(pg(reg), ST_IDEM_PUT, &p, &res)) == REG_OK)
		PQclear(res);
	return rc;
}

static enum reg_err
pg_idem_purge(struct registry *reg, int64_t now, int batch)
{
	struct params p = { 0 };
	PGresult *res;
	enum reg_err rc;

	p_int(&p, now);
	p_int(&p, batch);
	if ((rc = execute(pg(reg), ST_IDEM_PURGE, &p, &res)) == REG_OK)
		PQclear(res);
	return rc;
}

/* Walks the records PG_SCAN_BATCH at a time, by (scope, key). */
static enum reg_err
pg_idem_scan(struct registry *reg, registry_idem_fn *fn, void *arg)
{
	char scope[REG_IDEM_SCOPE_MAX + 1] = "", key[REG_IDEM_KEY_MAX + 1] = "";
	struct pgreg *r = pg(reg);
	struct reg_idem rec;
	struct params p;
	const char *s, *k;
	PGresult *res;
	enum reg_err rc;
	int i, rows;

	do {
		memset(&p, 0, sizeof(p));
		p_text(&p, scope);
		p_text(&p, key);
		p_int(&p, PG_SCAN_BATCH);
		if ((rc = execute(r, ST_IDEM_SCAN, &p, &res)) != REG_OK)
			return rc;
		rows = PQntuples(res);
		for (i = 0; i < rows && rc == REG_OK; i++) {
			memset(&rec, 0, sizeof(rec));
			if (col_text(res, i, 0, &s) == -1 || s == NULL ||
			    col_text(res, i, 1, &k) == -1 || k == NULL ||
			    strlen(s) > REG_IDEM_SCOPE_MAX ||
			    strlen(k) > REG_IDEM_KEY_MAX) {
				rc = reg_fail_msg(reg, REG_ERROR, "idempotency "
				    "record without a usable scope or key");
				break;
			}
			if ((rc = idem_read(r, res, i, 2, &rec)) == REG_OK &&
			    fn(arg, s, k, &rec) != 0)
				rc = REG_ERROR;
			registry_idem_release(&rec);
			memcpy(scope, s, strlen(s) + 1);
			memcpy(key, k, strlen(k) + 1);
		}
		PQclear(res);
	} while (rc == REG_OK && rows == PG_SCAN_BATCH);
	return rc;
}

/*
 * What can be checked cheaply in one statement (one snapshot): the
 * schema version, the meta rows, the users count against the rows (one
 * pass over the table), no version above the revision, the key's
 * collation, every index valid. On success errmsg lists what was checked.
 */
static enum reg_err
pg_integrity(struct registry *reg)
{
	static const char sql[] =
	    "SELECT (SELECT v FROM meta WHERE k = 'schema'),"
	    " (SELECT v FROM meta WHERE k = 'revision'),"
	    " (SELECT v FROM meta WHERE k = 'users'),"
	    " count(*), coalesce(max(version), 0),"
	    " (SELECT c.collname FROM pg_attribute a JOIN pg_collation c"
	    " ON c.oid = a.attcollation WHERE a.attrelid = 'users'::regclass"
	    " AND a.attname = 'key'),"
	    " (SELECT bool_and(i.indisvalid) FROM pg_index i"
	    " WHERE i.indrelid IN ('users'::regclass,"
	    " 'idempotency'::regclass, 'meta'::regclass))"
	    " FROM users";
	struct pgreg *r = pg(reg);
	int64_t v[5];
	PGresult *res;
	enum reg_err rc;
	const char *coll, *valid;
	int i;

	if ((rc = simple(r, sql, &res)) != REG_OK)
		return rc;
	rc = REG_ERROR;
	if (PQntuples(res) != 1 || PQnfields(res) != 7) {
		reg_fail_msg(reg, rc, "unexpected answer");
		goto out;
	}
	for (i = 0; i < 5; i++)
		if (col_int(res, 0, i, &v[i]) == -1) {
			reg_fail_msg(reg, rc, "meta row '%s' missing "
			    "or malformed", i == 0 ? "schema" : i == 1 ?
			    "revision" : "users");
			goto out;
		}
	coll = PQgetvalue(res, 0, 5);
	valid = PQgetvalue(res, 0, 6);
	/* The count and the versions are the admin tool's check's to judge. */
	if (v[0] != PG_SCHEMA_VERSION)
		reg_fail_msg(reg, rc, "schema version %" PRId64 ", expected %d",
		    v[0], PG_SCHEMA_VERSION);
	else if (strcmp(coll, "C") != 0)
		reg_fail_msg(reg, rc, "users.key has collation '%s', not "
		    "\"C\"", coll);
	else if (strcmp(valid, "t") != 0)
		reg_fail_msg(reg, rc, "an index is not valid");
	else
		rc = reg_fail_msg(reg, REG_OK, "checked: schema version %d, "
		    "meta rows, %" PRId64 " users counted, versions within "
		    "revision %" PRId64 ", key collation C, indexes valid",
		    PG_SCHEMA_VERSION, v[3], v[1]);
out:
	PQclear(res);
	return rc;
}

static enum reg_err
pg_backup(struct registry *reg, const char *dest)
{
	(void)dest;
	return reg_fail_msg(reg, REG_ERROR, "a PostgreSQL registry is backed "
	    "up with pg_dump (or pg_basebackup), not copied to a file");
}

static const struct registry_ops pg_ops = {
	.name = "postgresql",
	.close = pg_close,
	.refresh = pg_refresh,
	.moved = pg_moved,
	.maintain = pg_maintain,
	.begin = pg_begin,
	.commit = pg_commit,
	.rollback = pg_rollback,
	.in_transaction = pg_in_transaction,
	.savepoint = pg_savepoint,
	.savepoint_end = pg_savepoint_end,
	.revision = pg_revision,
	.count = pg_count,
	.get = pg_get,
	.insert = pg_insert,
	.update = pg_update,
	.delete = pg_delete,
	.other_admin = pg_other_admin,
	.list = pg_list,
	.idem_get = pg_idem_get,
	.idem_put = pg_idem_put,
	.idem_purge = pg_idem_purge,
	.idem_scan = pg_idem_scan,
	.integrity = pg_integrity,
	.backup = pg_backup,
};
