/*
 * test_registry_pg.c: the PostgreSQL registry, one schema per test: the
 * contract of tests/unit/registry_contract.h, and what is PostgreSQL's
 * own (URIs, connection loss and outages, lock timeouts, concurrent
 * connections, constraint names), and migration between backends.
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "migrate.h"
#include "registry.h"
#include "support.h"

/*
 * tests/lib/pg.py runs this binary against a cluster of its own:
 * USERREG_TEST_PG_URI names a database, USERREG_TEST_PG_CTL the command
 * that stops, starts, pauses and crashes that cluster. Each test gets a
 * schema of its own, chosen with search_path in the URI's options.
 */
#define URI_LEN 1024
#define SQL_LEN 2048
/* Seconds a test may take before Criterion ends it. */
#define TEST_TIMEOUT 120
/* Slack over a deadline for the scheduler of a busy 2-core machine. */
#define SLACK_MS 400

static char schema[32];
static char uri[URI_LEN];
static PGconn *raw;

/* What registry_contract.h asks of this suite. */
#define CONTRACT_SUITE pg
#define CONTRACT_BACKEND "postgresql"
#define SQL_REPEAT(c, n) "repeat('" c "', " #n ")"
/* No SQL_TEXT_WITH_NUL: PostgreSQL's text cannot hold a NUL. */
static struct registry *open_fixture(int busy_ms, unsigned flags);
static void raw_exec(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static const char *raw_text(const char *sql);
static int64_t raw_int(const char *sql);

#include "registry_contract.h"

static const char *
base_uri(void)
{
	const char *u = getenv("USERREG_TEST_PG_URI");

	cr_assert(not(eq(ptr, (void *)u, NULL)), "USERREG_TEST_PG_URI is not "
	    "set: run this suite through tests/lib/pg.py run");
	return u;
}

/* The test database's URI with search_path s and more options (or ""). */
static void
uri_for(char *buf, size_t size, const char *s, const char *more)
{
	const char *base = base_uri();

	snprintf(buf, size, "%s%coptions=-csearch_path%%3D%s%s", base,
	    strchr(base, '?') != NULL ? '&' : '?', s, more);
}

static void
quiet(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

/* Connects (or reconnects) the raw connection, set to the test schema. */
static void
raw_connect(void)
{
	char sql[128];
	PGresult *res;

	if (raw != NULL && PQstatus(raw) == CONNECTION_OK)
		return;
	if (raw != NULL)
		PQfinish(raw);
	raw = PQconnectdb(base_uri());
	cr_assert(eq(int, PQstatus(raw), CONNECTION_OK), "raw connection: %s",
	    PQerrorMessage(raw));
	PQsetNoticeProcessor(raw, quiet, NULL);
	snprintf(sql, sizeof(sql), "SET search_path = %s", schema);
	res = PQexec(raw, sql);
	cr_assert(eq(int, PQresultStatus(res), PGRES_COMMAND_OK));
	PQclear(res);
}

/* Runs sql (printf format) on the raw connection; it must succeed. */
static void
raw_exec(const char *fmt, ...)
{
	char sql[SQL_LEN];
	PGresult *res;
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	raw_connect();
	res = PQexec(raw, sql);
	st = PQresultStatus(res);
	cr_assert(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK, "%s: %s",
	    sql, PQresultErrorMessage(res));
	PQclear(res);
}

/* The first column of the one row sql yields, as text (static). */
static const char *
raw_text(const char *sql)
{
	static char out[SQL_LEN];
	PGresult *res;

	raw_connect();
	res = PQexec(raw, sql);
	cr_assert(eq(int, PQresultStatus(res), PGRES_TUPLES_OK), "%s: %s",
	    sql, PQresultErrorMessage(res));
	cr_assert(eq(int, PQntuples(res), 1), "%s", sql);
	snprintf(out, sizeof(out), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return out;
}

static int64_t
raw_int(const char *sql)
{
	return strtoll(raw_text(sql), NULL, 10);
}

/* Runs the cluster's control command with action; it must succeed. */
static void
ctl(const char *action)
{
	const char *c = getenv("USERREG_TEST_PG_CTL");
	char cmd[URI_LEN];

	cr_assert(not(eq(ptr, (void *)c, NULL)), "USERREG_TEST_PG_CTL unset");
	snprintf(cmd, sizeof(cmd), "%s %s", c, action);
	/* The raw connection does not outlive a stop: start afresh. */
	if (raw != NULL)
		PQfinish(raw);
	raw = NULL;
	cr_assert(eq(int, system(cmd), 0), "%s", cmd);
}

static void
setup(void)
{
	snprintf(schema, sizeof(schema), "t%d", (int)getpid());
	raw_connect();
	raw_exec("DROP SCHEMA IF EXISTS %s CASCADE", schema);
	raw_exec("CREATE SCHEMA %s", schema);
	uri_for(uri, sizeof(uri), schema, "");
	reg = open_reg(uri, 2000, REG_OPEN_CREATE);
}

static void
teardown(void)
{
	registry_close(reg);
	reg = NULL;
	raw_connect();
	raw_exec("DROP SCHEMA IF EXISTS %s CASCADE", schema);
	PQfinish(raw);
	raw = NULL;
}

/* After a test that stops, pauses or crashes the server: bring it back. */
static void
teardown_outage(void)
{
	ctl("start");
	raw_exec("ALTER SYSTEM RESET synchronous_standby_names");
	raw_exec("SELECT pg_reload_conf()");
	teardown();
}

static struct registry *
open_fixture(int busy_ms, unsigned flags)
{
	return open_reg(uri, busy_ms, flags);
}

TestSuite(pg, .init = setup, .fini = teardown, .timeout = TEST_TIMEOUT);
TestSuite(pg_outage, .init = setup, .fini = teardown_outage,
    .timeout = TEST_TIMEOUT);

static void
sleep_ms(long ms)
{
	struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&t, &t) == -1 && errno == EINTR)
		;
}

/* A TCP port on 127.0.0.1 that nothing listens on now. */
static int
unused_port(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int fd, port;

	cr_assert(ge(int, fd = socket(AF_INET, SOCK_STREAM, 0), 0));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert(eq(int, bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0));
	cr_assert(eq(int, getsockname(fd, (struct sockaddr *)&sa, &len), 0));
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

/* Opening */

Test(pg, open_without_create_refuses_a_database_without_the_schema)
{
	char other[URI_LEN], why[REG_ERRMSG_SIZE];
	enum reg_err err = REG_OK;

	raw_exec("CREATE SCHEMA %s_empty", schema);
	snprintf(why, sizeof(why), "%s_empty", schema);
	uri_for(other, sizeof(other), why, "");
	cr_assert(eq(ptr, registry_open(other, 500, 0, &err, why), NULL));
	cr_assert(eq(int, err, REG_UNAVAILABLE));
	cr_assert(not(eq(ptr, strstr(why, "no registry"), NULL)), "%s", why);
	/* Nothing was created by accident. */
	cr_assert(eq(str, (char *)raw_text("SELECT count(*) FROM "
	    "pg_tables WHERE schemaname = current_schema() || '_empty'"),
	    "0"));
	raw_exec("DROP SCHEMA %s_empty", schema);
}

Test(pg, open_rejects_an_unknown_schema_version)
{
	char why[REG_ERRMSG_SIZE];
	enum reg_err err = REG_OK;

	raw_exec("UPDATE meta SET v = 99 WHERE k = 'schema'");
	cr_assert(eq(ptr, registry_open(uri, 500, 0, &err, why), NULL));
	cr_assert(eq(int, err, REG_ERROR));
	cr_assert(not(eq(ptr, strstr(why, "schema version 99"), NULL)), "%s",
	    why);
}

Test(pg, open_of_a_closed_port_is_unavailable_and_keeps_the_password)
{
	char u[URI_LEN], why[REG_ERRMSG_SIZE];
	enum reg_err err = REG_OK;
	int64_t t0;

	snprintf(u, sizeof(u), "postgresql://postgres:s3cret-word@127.0.0.1:"
	    "%d/x", unused_port());
	t0 = support_mono_ms();
	cr_assert(eq(ptr, registry_open(u, 300, 0, &err, why), NULL));
	cr_assert(lt(i64, support_mono_ms() - t0, 300 + SLACK_MS));
	cr_assert(eq(int, err, REG_UNAVAILABLE));
	cr_assert(not(eq(str, why, "")));
	cr_assert(eq(ptr, strstr(why, "s3cret"), NULL), "%s", why);
}

/* A URI libpq cannot read is a configuration error, told without secrets. */
Test(pg, open_of_a_malformed_uri_is_an_error_not_unavailable)
{
	static const char *const bad[] = {
		"postgresql://h/db?no_such_option=1",
		"postgresql://user:pass%zzword@h/db",
		"postgres://h:notaport:1/db?x",
	};
	char why[REG_ERRMSG_SIZE];
	enum reg_err err;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err = REG_OK;
		cr_assert(eq(ptr, registry_open(bad[i], 300, 0, &err, why),
		    NULL), "%s", bad[i]);
		cr_assert(eq(int, err, REG_ERROR), "%s: %s", bad[i], why);
		cr_assert(not(eq(ptr, strstr(why, "malformed"), NULL)), "%s",
		    why);
		cr_assert(eq(ptr, strstr(why, "zzword"), NULL), "%s", why);
	}
}

/*
 * A peer that accepts the connection and never answers (a hung server,
 * a black hole behind a firewall): the open gives up at the deadline.
 */
Test(pg, open_of_a_server_that_never_answers_ends_at_the_deadline)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	char u[URI_LEN], why[REG_ERRMSG_SIZE];
	enum reg_err err = REG_OK;
	int64_t t0, ms;
	int fd;

	cr_assert(ge(int, fd = socket(AF_INET, SOCK_STREAM, 0), 0));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert(eq(int, bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0));
	cr_assert(eq(int, listen(fd, 4), 0));
	cr_assert(eq(int, getsockname(fd, (struct sockaddr *)&sa, &len), 0));
	snprintf(u, sizeof(u), "postgresql://postgres@127.0.0.1:%d/x?"
	    "sslmode=disable", ntohs(sa.sin_port));
	t0 = support_mono_ms();
	cr_assert(eq(ptr, registry_open(u, 400, 0, &err, why), NULL));
	ms = support_mono_ms() - t0;
	close(fd);
	cr_assert(eq(int, err, REG_UNAVAILABLE));
	cr_assert(ge(i64, ms, 350), "gave up after %lld ms", (long long)ms);
	cr_assert(lt(i64, ms, 400 + SLACK_MS), "gave up after %lld ms",
	    (long long)ms);
	cr_assert(not(eq(ptr, strstr(why, "within 400 ms"), NULL)), "%s", why);
}

Test(pg, open_over_the_unix_socket)
{
	const char *s = getenv("USERREG_TEST_PG_SOCKET_URI");
	char u[URI_LEN];
	struct registry *r;
	struct user got;

	cr_assert(not(eq(ptr, (void *)s, NULL)));
	cr_assert(eq(int, add("alice", "", ""), REG_OK));
	snprintf(u, sizeof(u), "%s&options=-csearch_path%%3D%s", s, schema);
	r = open_reg(u, 2000, 0);
	cr_assert(eq(int, registry_get(r, "ALICE", &got), REG_OK));
	registry_close(r);
}

/* Unique constraints: mapped by name, never REG_ERROR */

Test(pg, unique_violations_map_by_constraint_name)
{
	struct user cur, next, u;

	cr_assert(eq(int, add("alice", "a@example.org", ""), REG_OK));
	cr_assert(eq(int, add("bob", "b@example.org", ""), REG_OK));
	cr_assert(eq(int, add("Alice", "new@example.org", ""), REG_EXISTS));
	cr_assert(eq(int, add("carol", "A@EXAMPLE.org", ""), REG_EMAIL_TAKEN));
	/* Both taken: the name wins, whichever index answered first. */
	cr_assert(eq(int, add("ALICE", "B@example.org", ""), REG_EXISTS));
	cr_assert(eq(int, add("ALICE", "a@example.org", ""), REG_EXISTS));
	cr_assert(eq(int, registry_get(reg, "bob", &cur), REG_OK));
	mkuser(&next, "bob", "a@Example.org", "", "");
	cr_assert(eq(int, update(&cur, &next), REG_EMAIL_TAKEN));
	/* registry_load goes through the same constraints. */
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	mkuser(&u, "BOB", "z@example.org", "", "");
	u.version = 7;
	cr_assert(eq(int, registry_load(reg, &u), REG_EXISTS));
	mkuser(&u, "dave", "B@example.org", "", "");
	u.version = 7;
	cr_assert(eq(int, registry_load(reg, &u), REG_EMAIL_TAKEN));
	mkuser(&u, "bob", "a@example.org", "", "");
	u.version = 7;
	cr_assert(eq(int, registry_load(reg, &u), REG_EXISTS));
	cr_assert(eq(int, registry_commit(reg), REG_OK));
	cr_assert(eq(i64, revision(), 2));
	cr_assert(eq(i64, count(), 2));
}

/* Transactions */

/*
 * A failed statement aborts a PostgreSQL transaction: a commit after one
 * is refused, and nothing of the transaction is kept.
 */
Test(pg, commit_after_a_statement_failed_outside_a_savepoint_is_refused)
{
	struct reg_idem rec;
	PGresult *res;
	struct user u;

	/* Another session holds an uncommitted record of the key. */
	raw_connect();
	res = PQexec(raw, "BEGIN; INSERT INTO idempotency VALUES ('s', 'k', "
	    "'fp', 201, '', 9999)");
	cr_assert(eq(int, PQresultStatus(res), PGRES_COMMAND_OK));
	PQclear(res);
	registry_close(reg);
	reg = open_reg(uri, 400, 0);
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	mkuser(&u, "alice", "", "", "");
	cr_assert(eq(int, registry_insert(reg, &u), REG_OK));
	cr_assert(eq(int, registry_idem_put(reg, "s", "k", "fp", 201, "x", 1,
	    1000, 100), REG_BUSY));
	cr_assert(eq(int, registry_commit(reg), REG_ERROR));
	cr_assert(eq(int, registry_in_transaction(reg), 0));
	res = PQexec(raw, "ROLLBACK");
	PQclear(res);
	cr_assert(eq(int, registry_get(reg, "alice", &u), REG_NOT_FOUND));
	cr_assert(eq(int, registry_idem_get(reg, "s", "k", "fp", 1000, &rec),
	    REG_NOT_FOUND));
	cr_assert(eq(i64, revision(), 0));
}

/* A lock held by another connection beyond busy_timeout_ms is REG_BUSY. */
Test(pg, begin_reports_busy_after_the_lock_timeout_while_another_writes)
{
	struct registry *other;
	struct user got;
	int64_t t0, ms;

	cr_assert(eq(int, add("alice", "", ""), REG_OK));
	other = open_reg(uri, 400, 0);
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	t0 = support_mono_ms();
	cr_assert(eq(int, registry_begin(other), REG_BUSY), "%s",
	    registry_errmsg(other));
	ms = support_mono_ms() - t0;
	/* lock_timeout is 3/4 of busy_timeout_ms. */
	cr_assert(ge(i64, ms, 290), "waited %lld ms", (long long)ms);
	cr_assert(lt(i64, ms, 400 + SLACK_MS), "waited %lld ms",
	    (long long)ms);
	/* The server's own message, for the log. */
	cr_assert(not(eq(ptr, strstr(registry_errmsg(other), "55P03"), NULL)),
	    "%s", registry_errmsg(other));
	cr_assert(eq(int, registry_in_transaction(other), 0));
	/* Readers are not blocked by the writer. */
	cr_assert(eq(int, registry_get(other, "alice", &got), REG_OK));
	cr_assert(eq(int, registry_ping(other), REG_OK));
	cr_assert(eq(int, registry_begin_read(other), REG_OK));
	cr_assert(eq(int, registry_get(other, "alice", &got), REG_OK));
	registry_rollback(other);
	registry_rollback(reg);
	cr_assert(eq(int, registry_begin(other), REG_OK));
	registry_rollback(other);
	registry_close(other);
}

/* A server that takes no writes (a standby, a read-only database). */
Test(pg, read_only_server_is_unavailable_for_writes_and_reads_go_on)
{
	char u[URI_LEN];
	struct registry *r;
	struct user got;

	cr_assert(eq(int, add("alice", "", ""), REG_OK));
	uri_for(u, sizeof(u), schema,
	    "%20-cdefault_transaction_read_only%3Don");
	r = open_reg(u, 2000, 0);
	cr_assert(eq(int, registry_get(r, "alice", &got), REG_OK));
	cr_assert(eq(int, registry_begin(r), REG_UNAVAILABLE), "%s",
	    registry_errmsg(r));
	cr_assert(not(eq(ptr, strstr(registry_errmsg(r), "25006"), NULL)));
	cr_assert(eq(int, registry_in_transaction(r), 0));
	/* The connection is dropped: a refresh looks for a primary again. */
	cr_assert(eq(int, registry_get(r, "alice", &got), REG_UNAVAILABLE));
	cr_assert(eq(int, registry_refresh(r), REG_OK));
	cr_assert(eq(int, registry_get(r, "alice", &got), REG_OK));
	registry_close(r);
}

/* List */

/*
 * The test database sorts text by an ICU collation, in which "a_b" comes
 * before "a-b"; the list is in byte order all the same.
 */
Test(pg, list_orders_by_canonical_key_bytes_whatever_the_database_locale)
{
	cr_assert(eq(str, (char *)raw_text("SELECT 'a_b' < 'a-b'"), "t"),
	    "the test database must not sort text in byte order");
	list_in_key_byte_order();
}

/*
 * A page is one range scan of the primary key, in key order, with no
 * sort: the plan of the page query (ST_LIST in registry_pg.c) as
 * prepared, with the other plans made unattractive so only an unusable
 * index would show a sort or a sequential scan.
 */
Test(pg, list_page_is_one_range_scan_of_the_primary_key)
{
	PGresult *res;
	char plan[SQL_LEN] = "";
	size_t used = 0;
	int i;

	raw_exec("SET enable_seqscan = off");
	raw_exec("SET enable_bitmapscan = off");
	raw_exec("SET enable_sort = off");
	raw_exec("PREPARE page (text, text, bigint) AS SELECT username FROM "
	    "users WHERE key > $1::text AND key >= $2::text AND "
	    "key < $2::text || chr(127) ORDER BY key LIMIT $3");
	res = PQexec(raw, "EXPLAIN EXECUTE page('al', 'a', 10)");
	cr_assert(eq(int, PQresultStatus(res), PGRES_TUPLES_OK));
	for (i = 0; i < PQntuples(res); i++)
		used += (size_t)snprintf(plan + used, sizeof(plan) - used,
		    "%s;", PQgetvalue(res, i, 0));
	PQclear(res);
	cr_assert(not(eq(ptr, strstr(plan, "Index Scan using users_pkey"),
	    NULL)), "plan: %s", plan);
	cr_assert(not(eq(ptr, strstr(plan, "Index Cond"), NULL)), "plan: %s",
	    plan);
	cr_assert(eq(ptr, strstr(plan, "Sort"), NULL), "plan: %s", plan);
	cr_assert(eq(ptr, strstr(plan, "Filter"), NULL), "plan: %s", plan);
}

/* Idempotency records */

Test(pg, idem_stored_response_replays_its_bytes)
{
	idem_replay_keeps_its_bytes();
}

Test(pg, idem_put_outside_write_transaction_is_misuse)
{
	idem_put_outside_a_write_is_refused();
}

/* Integrity, backup */

Test(pg, integrity_passes_and_says_what_it_checked)
{
	cr_assert(eq(int, add("alice", "", "admin"), REG_OK));
	cr_assert(eq(int, registry_integrity(reg), REG_OK), "%s",
	    registry_errmsg(reg));
	cr_assert(not(eq(ptr, strstr(registry_errmsg(reg), "1 users counted"),
	    NULL)), "%s", registry_errmsg(reg));
}

Test(pg, integrity_finds_a_missing_meta_row_and_a_wrong_schema_version)
{
	/* The users count and the versions are `userreg check`'s to judge. */
	cr_assert(eq(int, add("alice", "", ""), REG_OK));
	cr_assert(eq(int, registry_integrity(reg), REG_OK));
	raw_exec("UPDATE meta SET v = 7 WHERE k = 'schema'");
	cr_assert(eq(int, registry_integrity(reg), REG_ERROR));
	cr_assert(not(eq(ptr, strstr(registry_errmsg(reg), "schema version 7"),
	    NULL)), "%s", registry_errmsg(reg));
	raw_exec("UPDATE meta SET v = 2 WHERE k = 'schema'");
	cr_assert(eq(int, registry_integrity(reg), REG_OK));
	raw_exec("DELETE FROM meta WHERE k = 'revision'");
	cr_assert(eq(int, registry_integrity(reg), REG_ERROR));
	cr_assert(not(eq(ptr, strstr(registry_errmsg(reg), "revision"),
	    NULL)), "%s", registry_errmsg(reg));
	/* Without its row, a write cannot take the lock. */
	cr_assert(eq(int, registry_begin(reg), REG_ERROR));
}

Test(pg, backup_is_refused_with_a_pointer_to_pg_dump)
{
	cr_assert(eq(int, registry_backup(reg, "/tmp/never-written.db"),
	    REG_ERROR));
	cr_assert(not(eq(ptr, strstr(registry_errmsg(reg), "pg_dump"), NULL)));
	cr_assert(eq(int, access("/tmp/never-written.db", F_OK), -1));
}

/* Several connections */

/* Opens a handle in a child: nothing of the parent's crosses fork(). */
static struct registry *
child_open(int busy_ms)
{
	struct registry *r;
	enum reg_err err;

	if ((r = registry_open(uri, busy_ms, 0, &err, NULL)) == NULL)
		_exit(CHILD_OPEN + (int)err);
	return r;
}

static void
wait_child(pid_t pid, int want)
{
	int status;

	cr_assert(eq(int, waitpid(pid, &status, 0), pid));
	cr_assert(eq(int, WIFEXITED(status), 1));
	cr_assert(eq(int, WEXITSTATUS(status), want));
}

/* The child says it is about to start the step the parent times. */
static void
child_ready(int fd)
{
	if (write(fd, "r", 1) != 1)
		_exit(97);
	close(fd);
}

static void
wait_ready(int fd)
{
	char c;

	cr_assert(eq(int, (int)read(fd, &c, 1), 1), "the child died early");
	close(fd);
}

Test(pg, concurrent_openers_create_the_schema_once_and_one_name_wins)
{
	/* A brand-new schema: the children race to create it. */
	registry_close(reg);
	reg = NULL;
	raw_exec("DROP SCHEMA %s CASCADE", schema);
	raw_exec("CREATE SCHEMA %s", schema);
	race_to_insert_one_name(uri);
}

/*
 * Two connections writing at once: every write takes the next version,
 * none is handed out twice or skipped, and each connection sees its own
 * versions increase.
 */
Test(pg, versions_strictly_increase_across_two_connections)
{
	enum { PER_CHILD = 60 };
	int64_t got[2][PER_CHILD], seen[2 * PER_CHILD + 1];
	int fds[2][2], i, c;
	pid_t pids[2];

	for (c = 0; c < 2; c++) {
		cr_assert(eq(int, pipe(fds[c]), 0));
		pids[c] = fork();
		cr_assert(ge(int, pids[c], 0));
		if (pids[c] == 0) {
			struct registry *r = child_open(10000);
			struct user u;
			enum reg_err rc;
			char name[32];

			close(fds[c][0]);
			for (i = 0; i < PER_CHILD; i++) {
				snprintf(name, sizeof(name), "c%d-%02d", c, i);
				mkuser(&u, name, "", "", "");
				if ((rc = registry_begin(r)) != REG_OK)
					_exit(CHILD_BEGIN + (int)rc);
				if ((rc = registry_insert(r, &u)) != REG_OK)
					_exit(CHILD_INSERT + (int)rc);
				if ((rc = registry_commit(r)) != REG_OK)
					_exit(CHILD_COMMIT + (int)rc);
				if (write(fds[c][1], &u.version,
				    sizeof(u.version)) != sizeof(u.version))
					_exit(98);
			}
			registry_close(r);
			_exit(0);
		}
		close(fds[c][1]);
	}
	for (c = 0; c < 2; c++) {
		for (i = 0; i < PER_CHILD; i++)
			cr_assert(eq(sz, (size_t)read(fds[c][0], &got[c][i],
			    sizeof(got[c][i])), sizeof(got[c][i])));
		close(fds[c][0]);
		wait_child(pids[c], 0);
	}
	memset(seen, 0, sizeof(seen));
	for (c = 0; c < 2; c++)
		for (i = 0; i < PER_CHILD; i++) {
			cr_assert(ge(i64, got[c][i], 1));
			cr_assert(le(i64, got[c][i], 2 * PER_CHILD));
			cr_assert(eq(i64, seen[got[c][i]], 0), "version %lld "
			    "twice", (long long)got[c][i]);
			seen[got[c][i]] = 1;
			if (i > 0)
				cr_assert(gt(i64, got[c][i], got[c][i - 1]));
		}
	cr_assert(eq(i64, revision(), 2 * PER_CHILD));
	cr_assert(eq(i64, count(), 2 * PER_CHILD));
}

/*
 * The write lock serializes writers in commit order: a writer that
 * begins while another holds the lock waits for its commit, then reads
 * what it committed and takes a later version, and commits after it.
 */
Test(pg, a_writer_waits_for_the_lock_then_sees_the_last_commit)
{
	struct { int64_t begin_ms, version, commit_ms; int found; } b;
	struct user a, next;
	int64_t a_commit_ms;
	int fds[2], ready[2];
	pid_t pid;

	cr_assert(eq(int, add("alice", "", ""), REG_OK));
	cr_assert(eq(int, registry_get(reg, "alice", &a), REG_OK));
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	mkuser(&next, "alice", "", "By A", "");
	cr_assert(eq(int, registry_update(reg, &a, &next), REG_OK));
	cr_assert(eq(int, pipe(fds), 0));
	cr_assert(eq(int, pipe(ready), 0));
	pid = fork();
	cr_assert(ge(int, pid, 0));
	if (pid == 0) {
		struct registry *r = child_open(10000);
		struct user cur, bob;
		int64_t t0;

		close(fds[0]);
		close(ready[0]);
		child_ready(ready[1]);
		t0 = support_mono_ms();
		if (registry_begin(r) != REG_OK)
			_exit(CHILD_BEGIN);
		b.begin_ms = support_mono_ms() - t0;
		b.found = registry_get(r, "alice", &cur) == REG_OK &&
		    strcmp(cur.display_name, "By A") == 0;
		mkuser(&bob, "bob", "", "", "");
		if (registry_insert(r, &bob) != REG_OK)
			_exit(CHILD_INSERT);
		if (registry_commit(r) != REG_OK)
			_exit(CHILD_COMMIT);
		b.commit_ms = support_mono_ms();
		b.version = bob.version;
		if (write(fds[1], &b, sizeof(b)) != sizeof(b))
			_exit(98);
		registry_close(r);
		_exit(0);
	}
	close(fds[1]);
	close(ready[1]);
	wait_ready(ready[0]);
	/* B is blocked in registry_begin() meanwhile. */
	sleep_ms(300);
	cr_assert(eq(int, registry_commit(reg), REG_OK));
	a_commit_ms = support_mono_ms();
	cr_assert(eq(sz, (size_t)read(fds[0], &b, sizeof(b)), sizeof(b)));
	close(fds[0]);
	wait_child(pid, 0);
	cr_assert(ge(i64, b.begin_ms, 250), "B began after %lld ms",
	    (long long)b.begin_ms);
	cr_assert(eq(int, b.found, 1));
	cr_assert(gt(i64, b.version, next.version));
	cr_assert(ge(i64, b.commit_ms, a_commit_ms - 5));
}

/*
 * An idempotency lookup under the lock sees the answer a concurrent
 * request with the same key committed while it waited: it replays.
 */
Test(pg, idem_lookup_under_the_lock_sees_a_concurrent_same_key_answer)
{
	struct reg_idem rec;
	struct user u;
	int fds[2], ready[2];
	pid_t pid;
	int rc;

	cr_assert(eq(int, registry_begin(reg), REG_OK));
	cr_assert(eq(int, registry_idem_get(reg, "scope", "k1", "fp", 1000,
	    &rec), REG_NOT_FOUND));
	mkuser(&u, "alice", "", "", "");
	cr_assert(eq(int, registry_insert(reg, &u), REG_OK));
	cr_assert(eq(int, registry_idem_put(reg, "scope", "k1", "fp", 201,
	    "created", 7, 1000, 100), REG_OK));
	cr_assert(eq(int, pipe(fds), 0));
	cr_assert(eq(int, pipe(ready), 0));
	pid = fork();
	cr_assert(ge(int, pid, 0));
	if (pid == 0) {
		struct registry *r = child_open(10000);
		struct reg_idem got;
		int64_t t0;

		close(fds[0]);
		close(ready[0]);
		child_ready(ready[1]);
		t0 = support_mono_ms();
		if (registry_begin(r) != REG_OK)
			_exit(CHILD_BEGIN);
		/* It must have waited for the lock, or proves nothing. */
		if (support_mono_ms() - t0 < 250)
			_exit(96);
		rc = registry_idem_get(r, "scope", "k1", "fp", 1000, &got);
		if (rc == REG_IDEM_DONE && (got.status != 201 ||
		    got.response_len != 7))
			rc = REG_ERROR;
		registry_idem_release(&got);
		registry_rollback(r);
		if (write(fds[1], &rc, sizeof(rc)) != sizeof(rc))
			_exit(98);
		registry_close(r);
		_exit(0);
	}
	close(fds[1]);
	close(ready[1]);
	wait_ready(ready[0]);
	sleep_ms(300);
	cr_assert(eq(int, registry_commit(reg), REG_OK));
	cr_assert(eq(sz, (size_t)read(fds[0], &rc, sizeof(rc)), sizeof(rc)));
	close(fds[0]);
	wait_child(pid, 0);
	cr_assert(eq(int, rc, REG_IDEM_DONE), "the waiting request got %s",
	    registry_err_str(rc));
}

/*
 * The last two admins demoted at the same moment by two connections,
 * 100 times: exactly one demotion passes each time, never none, never
 * both (at READ COMMITTED without the shared lock, both could: each
 * sees the other still an admin).
 */
Test(pg, last_admin_rule_holds_when_two_connections_demote_the_last_two)
{
	enum { ROUNDS = 100 };
	int go[2][2], res[2][2], c, round, ok, last;
	enum reg_err got[2];
	pid_t pids[2];

	cr_assert(eq(int, add("a", "", "admin"), REG_OK));
	cr_assert(eq(int, add("b", "", "admin"), REG_OK));
	for (c = 0; c < 2; c++) {
		cr_assert(eq(int, pipe(go[c]), 0));
		cr_assert(eq(int, pipe(res[c]), 0));
	}
	for (c = 0; c < 2; c++) {
		pids[c] = fork();
		cr_assert(ge(int, pids[c], 0));
		if (pids[c] == 0) {
			struct registry *r = child_open(10000);
			const char *name = c == 0 ? "a" : "b";
			struct user cur, next;
			enum reg_err rc;
			char byte;

			/* Only its own ends: the parent's close must end it. */
			close(go[c][1]);
			close(res[c][0]);
			close(go[1 - c][0]);
			close(go[1 - c][1]);
			close(res[1 - c][0]);
			close(res[1 - c][1]);
			/* One round per byte. */
			while (read(go[c][0], &byte, 1) == 1) {
				if ((rc = registry_begin(r)) == REG_OK &&
				    (rc = registry_get(r, name, &cur)) ==
				    REG_OK) {
					next = cur;
					next.nroles = 0;
					rc = registry_update(r, &cur, &next);
				}
				if (rc == REG_OK)
					rc = registry_commit(r);
				else
					registry_rollback(r);
				if (write(res[c][1], &rc, sizeof(rc)) !=
				    sizeof(rc))
					_exit(98);
			}
			registry_close(r);
			_exit(0);
		}
	}
	for (c = 0; c < 2; c++) {
		close(go[c][0]);
		close(res[c][1]);
	}
	for (round = 0; round < ROUNDS; round++) {
		for (c = 0; c < 2; c++)
			cr_assert(eq(int, (int)write(go[c][1], "g", 1), 1));
		ok = last = 0;
		for (c = 0; c < 2; c++) {
			cr_assert(eq(sz, (size_t)read(res[c][0], &got[c],
			    sizeof(got[c])), sizeof(got[c])));
			ok += got[c] == REG_OK;
			last += got[c] == REG_LAST_ADMIN;
		}
		cr_assert(eq(int, ok, 1), "round %d: %s and %s", round,
		    registry_err_str(got[0]), registry_err_str(got[1]));
		cr_assert(eq(int, last, 1), "round %d", round);
		cr_assert(eq(i64, raw_int("SELECT count(*) FROM users WHERE "
		    "admin AND roles = 'admin'"), 1), "round %d", round);
		raw_exec("UPDATE users SET roles = 'admin', admin = true");
	}
	for (c = 0; c < 2; c++) {
		close(go[c][1]);
		close(res[c][0]);
		wait_child(pids[c], 0);
	}
	cr_assert(eq(i64, revision(), 2 + ROUNDS));
}

/* Outages */

/*
 * The server stops under a live handle: calls answer REG_UNAVAILABLE
 * within busy_timeout_ms, and once it is back a refresh reconnects and
 * prepares the statements again.
 */
Test(pg_outage, server_stopped_mid_run_is_unavailable_then_refresh_reconnects)
{
	struct user got, u;
	int64_t t0, ms;

	registry_close(reg);
	reg = open_reg(uri, 1000, 0);
	cr_assert(eq(int, add("alice", "", ""), REG_OK));
	ctl("stop");
	t0 = support_mono_ms();
	cr_assert(eq(int, registry_get(reg, "alice", &got), REG_UNAVAILABLE));
	cr_assert(eq(int, registry_refresh(reg), REG_UNAVAILABLE), "%s",
	    registry_errmsg(reg));
	cr_assert(eq(int, registry_begin(reg), REG_UNAVAILABLE));
	cr_assert(eq(int, registry_ping(reg), REG_UNAVAILABLE));
	ms = support_mono_ms() - t0;
	cr_assert(lt(i64, ms, 1000), "took %lld ms", (long long)ms);
	ctl("start");
	cr_assert(eq(int, registry_refresh(reg), REG_OK), "%s",
	    registry_errmsg(reg));
	cr_assert(eq(int, registry_get(reg, "alice", &got), REG_OK));
	cr_assert(eq(int, add("bob", "", ""), REG_OK));
	cr_assert(eq(i64, revision(), 2));
	/* A refresh of a healthy connection keeps it. */
	cr_assert(eq(int, registry_refresh(reg), REG_OK));
	mkuser(&u, "carol", "", "", "");
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	cr_assert(eq(int, registry_insert(reg, &u), REG_OK));
	cr_assert(eq(int, registry_commit(reg), REG_OK));
}

/* A restart between requests is noticed by the refresh before one. */
Test(pg_outage, refresh_after_a_restart_reconnects_before_the_request)
{
	struct user got;

	cr_assert(eq(int, add("alice", "", ""), REG_OK));
	ctl("restart");
	cr_assert(eq(int, registry_refresh(reg), REG_OK), "%s",
	    registry_errmsg(reg));
	cr_assert(eq(int, registry_get(reg, "alice", &got), REG_OK), "%s",
	    registry_errmsg(reg));
	cr_assert(eq(int, add("bob", "", ""), REG_OK));
}

/* The server dies inside a write transaction: nothing is acknowledged. */
Test(pg_outage, transaction_cut_by_a_stop_is_unavailable_and_undone)
{
	struct user u;

	registry_close(reg);
	reg = open_reg(uri, 1000, 0);
	mkuser(&u, "carol", "", "", "");
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	cr_assert(eq(int, registry_insert(reg, &u), REG_OK));
	ctl("stop");
	cr_assert(eq(int, registry_commit(reg), REG_UNAVAILABLE));
	cr_assert(eq(int, registry_in_transaction(reg), 0));
	ctl("start");
	cr_assert(eq(int, registry_refresh(reg), REG_OK));
	cr_assert(eq(int, registry_get(reg, "carol", &u), REG_NOT_FOUND));
	cr_assert(eq(i64, revision(), 0));
}

/*
 * A server that answers nothing at all (every process stopped, sockets
 * open): each call gives up at the deadline, never hangs; after it
 * resumes a refresh reconnects.
 */
Test(pg_outage, server_that_stops_answering_is_unavailable_at_the_deadline)
{
	struct user got;
	int64_t t0, ms;

	registry_close(reg);
	reg = open_reg(uri, 500, 0);
	cr_assert(eq(int, add("alice", "", ""), REG_OK));
	ctl("pause");
	t0 = support_mono_ms();
	cr_assert(eq(int, registry_get(reg, "alice", &got), REG_UNAVAILABLE));
	ms = support_mono_ms() - t0;
	cr_assert(ge(i64, ms, 450), "gave up after %lld ms", (long long)ms);
	cr_assert(lt(i64, ms, 500 + SLACK_MS), "gave up after %lld ms",
	    (long long)ms);
	t0 = support_mono_ms();
	cr_assert(eq(int, registry_refresh(reg), REG_UNAVAILABLE));
	ms = support_mono_ms() - t0;
	cr_assert(lt(i64, ms, 500 + SLACK_MS), "refresh took %lld ms",
	    (long long)ms);
	ctl("resume");
	cr_assert(eq(int, registry_refresh(reg), REG_OK), "%s",
	    registry_errmsg(reg));
	cr_assert(eq(int, registry_get(reg, "alice", &got), REG_OK));
}

/* Every commit waits for a synchronous standby that never comes. */
static void
standby_required(void)
{
	int i;

	raw_exec("ALTER SYSTEM SET synchronous_standby_names = "
	    "'userreg_absent'");
	raw_exec("SELECT pg_reload_conf()");
	for (i = 0; i < 100 && strcmp(raw_text("SHOW "
	    "synchronous_standby_names"), "userreg_absent") != 0; i++)
		sleep_ms(20);
	cr_assert(lt(int, i, 100), "the server did not reload its settings");
	/* Other backends reload at their next command. */
	sleep_ms(100);
}

/*
 * A commit the server cannot confirm in time (its standby is gone) is
 * REG_UNAVAILABLE at the deadline, never REG_OK: the server does not
 * cancel the wait by itself (statement_timeout stops before the commit).
 * The write may well be committed locally: the outcome is unknown.
 */
Test(pg_outage, commit_that_cannot_be_confirmed_is_unavailable_not_ok)
{
	struct user u;
	int64_t t0, ms;

	registry_close(reg);
	reg = open_reg(uri, 600, 0);
	standby_required();
	mkuser(&u, "alice", "", "", "");
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	cr_assert(eq(int, registry_insert(reg, &u), REG_OK));
	t0 = support_mono_ms();
	cr_assert(eq(int, registry_commit(reg), REG_UNAVAILABLE));
	ms = support_mono_ms() - t0;
	cr_assert(ge(i64, ms, 550), "gave up after %lld ms", (long long)ms);
	cr_assert(lt(i64, ms, 600 + SLACK_MS), "gave up after %lld ms",
	    (long long)ms);
	cr_assert(not(eq(ptr, strstr(registry_errmsg(reg), "unknown"),
	    NULL)), "%s", registry_errmsg(reg));
}

/*
 * The server dies while a commit waits for its answer: the client gets
 * REG_UNAVAILABLE, never REG_OK, although after recovery the write turns
 * out to be there (it was written locally before the standby's answer
 * was awaited).
 */
Test(pg_outage, commit_cut_off_by_the_servers_death_is_never_ok)
{
	struct user u;
	int fds[2], ready[2], rc;
	int64_t t0;
	pid_t pid;

	standby_required();
	cr_assert(eq(int, pipe(fds), 0));
	cr_assert(eq(int, pipe(ready), 0));
	pid = fork();
	cr_assert(ge(int, pid, 0));
	if (pid == 0) {
		struct registry *r = child_open(20000);
		struct user nu;

		close(fds[0]);
		close(ready[0]);
		mkuser(&nu, "alice", "", "", "");
		if (registry_begin(r) != REG_OK)
			_exit(CHILD_BEGIN);
		if (registry_insert(r, &nu) != REG_OK)
			_exit(CHILD_INSERT);
		child_ready(ready[1]);
		rc = registry_commit(r);
		if (write(fds[1], &rc, sizeof(rc)) != sizeof(rc))
			_exit(98);
		registry_close(r);
		_exit(0);
	}
	close(fds[1]);
	close(ready[1]);
	wait_ready(ready[0]);
	/* The commit is waiting for the standby by now. */
	sleep_ms(300);
	t0 = support_mono_ms();
	ctl("kill");
	cr_assert(eq(sz, (size_t)read(fds[0], &rc, sizeof(rc)), sizeof(rc)));
	close(fds[0]);
	wait_child(pid, 0);
	cr_assert(eq(int, rc, REG_UNAVAILABLE), "the commit answered %s",
	    registry_err_str(rc));
	cr_assert(lt(i64, support_mono_ms() - t0, 5000));
	ctl("start");
	raw_exec("ALTER SYSTEM RESET synchronous_standby_names");
	raw_exec("SELECT pg_reload_conf()");
	cr_assert(eq(int, registry_refresh(reg), REG_OK), "%s",
	    registry_errmsg(reg));
	cr_assert(eq(int, registry_get(reg, "alice", &u), REG_OK));
}

/* Moving a registry between backends */

static char sqdir[64];

static void
setup_migrate(void)
{
	setup();
	snprintf(sqdir, sizeof(sqdir), "/tmp/test_registry_pg.XXXXXX");
	cr_assert(not(eq(ptr, mkdtemp(sqdir), NULL)));
}

static void
teardown_migrate(void)
{
	teardown();
	support_remove_dir(sqdir);
}

TestSuite(migrate, .init = setup_migrate, .fini = teardown_migrate,
    .timeout = TEST_TIMEOUT);

static struct registry *
open_sqlite(const char *name)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/%s", sqdir, name);
	return open_reg(path, 2000, REG_OPEN_CREATE);
}

/* A registry with some history: updates, a delete, idempotency records. */
static void
fill(struct registry *r)
{
	struct user cur, next;

	cr_assert(eq(int, add_to(r, "Root", "root@example.org", "admin,ops"),
	    REG_OK));
	cr_assert(eq(int, add_to(r, "alice", "Alice@Example.org", ""),
	    REG_OK));
	cr_assert(eq(int, add_to(r, "bob", "", "ops"), REG_OK));
	cr_assert(eq(int, add_to(r, "gone", "", ""), REG_OK));
	cr_assert(eq(int, registry_get(r, "alice", &cur), REG_OK));
	mkuser(&next, "Alice", "Alice@Example.org", "Alice L\xc3\xa9vy",
	    "ops");
	cr_assert(eq(int, registry_begin(r), REG_OK));
	cr_assert(eq(int, registry_update(r, &cur, &next), REG_OK));
	cr_assert(eq(int, registry_commit(r), REG_OK));
	cr_assert(eq(int, registry_get(r, "gone", &cur), REG_OK));
	cr_assert(eq(int, registry_begin(r), REG_OK));
	cr_assert(eq(int, registry_delete(r, &cur), REG_OK));
	cr_assert(eq(int, registry_idem_put(r, "", "live", "fp1", 201,
	    "a\0b", 3, 2000, 1000), REG_OK));
	cr_assert(eq(int, registry_idem_put(r, "s", "expired", "fp2", 422,
	    "x", 1, 100, 10), REG_OK));
	cr_assert(eq(int, registry_commit(r), REG_OK));
}

/* Every user of a is in b exactly as stored, and the counters agree. */
static void
same_registry(struct registry *a, struct registry *b)
{
	static struct user ua[REG_LIST_MAX], ub[REG_LIST_MAX];
	int64_t ra, rb, ca, cb;
	size_t na, nb, i, j;
	int more;

	cr_assert(eq(int, registry_list(a, NULL, NULL, REG_LIST_MAX, ua, &na,
	    &more), REG_OK));
	cr_assert(eq(int, registry_list(b, NULL, NULL, REG_LIST_MAX, ub, &nb,
	    &more), REG_OK));
	cr_assert(eq(sz, na, nb));
	for (i = 0; i < na; i++) {
		cr_assert(eq(str, ua[i].username, ub[i].username));
		cr_assert(eq(str, ua[i].email, ub[i].email));
		cr_assert(eq(str, ua[i].display_name, ub[i].display_name));
		cr_assert(eq(sz, ua[i].nroles, ub[i].nroles));
		for (j = 0; j < ua[i].nroles; j++)
			cr_assert(eq(str, ua[i].roles[j], ub[i].roles[j]));
		cr_assert(eq(i64, ua[i].version, ub[i].version));
		cr_assert(eq(i64, ua[i].created_at, ub[i].created_at));
		cr_assert(eq(i64, ua[i].updated_at, ub[i].updated_at));
	}
	cr_assert(eq(int, registry_revision(a, &ra), REG_OK));
	cr_assert(eq(int, registry_revision(b, &rb), REG_OK));
	cr_assert(eq(i64, ra, rb));
	cr_assert(eq(int, registry_count(a, &ca), REG_OK));
	cr_assert(eq(int, registry_count(b, &cb), REG_OK));
	cr_assert(eq(i64, ca, cb));
}

Test(migrate, sqlite_to_postgresql_and_back_keeps_everything)
{
	struct registry *sq = open_sqlite("from.db"), *back;
	struct migrate_report rep;
	struct reg_idem rec;
	struct user u;

	fill(sq);
	cr_assert(eq(int, migrate_registry(sq, reg, 3000, &rep), MIGRATE_OK),
	    "%s", rep.why);
	cr_assert(eq(i64, rep.users, 3));
	cr_assert(eq(i64, rep.records, 1));
	cr_assert(eq(i64, rep.revision, 6));
	same_registry(sq, reg);
	cr_assert(eq(int, registry_integrity(reg), REG_OK), "%s",
	    registry_errmsg(reg));
	/* The live record replays, expiry kept; the expired one stayed. */
	cr_assert(eq(int, registry_idem_get(reg, "", "live", "fp1", 3000,
	    &rec), REG_IDEM_DONE));
	cr_assert(eq(int, rec.status, 201));
	cr_assert(eq(i64, rec.expires_at, 3000));
	cr_assert(eq(sz, rec.response_len, 3));
	cr_assert(eq(int, memcmp(rec.response, "a\0b", 3), 0));
	registry_idem_release(&rec);
	cr_assert(eq(i64, raw_int("SELECT count(*) FROM idempotency"), 1));
	/* The next write goes on from the source's revision. */
	cr_assert(eq(int, add("carol", "", ""), REG_OK));
	cr_assert(eq(int, registry_get(reg, "carol", &u), REG_OK));
	cr_assert(eq(i64, u.version, 7));
	/* And back into a new SQLite file. */
	back = open_sqlite("back.db");
	cr_assert(eq(int, migrate_registry(reg, back, 3000, &rep), MIGRATE_OK),
	    "%s", rep.why);
	cr_assert(eq(i64, rep.users, 4));
	cr_assert(eq(i64, rep.revision, 7));
	same_registry(reg, back);
	cr_assert(eq(int, registry_idem_get(back, "", "live", "fp1", 3000,
	    &rec), REG_IDEM_DONE));
	registry_idem_release(&rec);
	cr_assert(eq(int, registry_integrity(back), REG_OK));
	registry_close(back);
	registry_close(sq);
}

Test(migrate, refuses_a_target_that_is_not_fresh)
{
	struct registry *sq = open_sqlite("from.db");
	struct migrate_report rep;
	struct user u;

	fill(sq);
	/* A user. */
	cr_assert(eq(int, add("zed", "", ""), REG_OK));
	cr_assert(eq(int, migrate_registry(sq, reg, 3000, &rep),
	    MIGRATE_NOT_EMPTY));
	cr_assert(not(eq(ptr, strstr(rep.why, "1 users"), NULL)), "%s",
	    rep.why);
	cr_assert(eq(i64, count(), 1));
	/* No user left, but versions were handed out. */
	cr_assert(eq(int, registry_get(reg, "zed", &u), REG_OK));
	cr_assert(eq(int, delete(&u), REG_OK));
	cr_assert(eq(int, migrate_registry(sq, reg, 3000, &rep),
	    MIGRATE_NOT_EMPTY));
	/* Only an idempotency record. */
	raw_exec("UPDATE meta SET v = 0 WHERE k = 'revision'");
	idem_put("k", "fp", 201, "x", 1, 1000, 100);
	cr_assert(eq(int, migrate_registry(sq, reg, 3000, &rep),
	    MIGRATE_NOT_EMPTY));
	cr_assert(not(eq(ptr, strstr(rep.why, "idempotency"), NULL)));
	cr_assert(eq(i64, count(), 0));
	cr_assert(eq(i64, revision(), 0));
	/* A handle is not a copy of itself. */
	cr_assert(eq(int, migrate_registry(sq, sq, 3000, &rep), MIGRATE_SAME));
	registry_close(sq);
}

Test(migrate, is_all_or_nothing)
{
	struct registry *sq = open_sqlite("from.db");
	struct migrate_report rep;

	fill(sq);
	/* The target refuses one of the users, the last one copied. */
	raw_exec("ALTER TABLE users ADD CONSTRAINT no_root CHECK "
	    "(key <> 'root')");
	cr_assert(eq(int, migrate_registry(sq, reg, 3000, &rep),
	    MIGRATE_TARGET));
	cr_assert(eq(int, rep.reg, REG_ERROR));
	cr_assert(not(eq(ptr, strstr(rep.why, "Root"), NULL)), "%s", rep.why);
	cr_assert(eq(i64, rep.users, 0));
	cr_assert(eq(i64, count(), 0));
	cr_assert(eq(i64, revision(), 0));
	cr_assert(eq(i64, raw_int("SELECT count(*) FROM users"), 0));
	cr_assert(eq(i64, raw_int("SELECT count(*) FROM idempotency"), 0));
	cr_assert(eq(int, registry_in_transaction(reg), 0));
	cr_assert(eq(int, registry_in_transaction(sq), 0));
	/* Fixed, the same migration goes through. */
	raw_exec("ALTER TABLE users DROP CONSTRAINT no_root");
	cr_assert(eq(int, migrate_registry(sq, reg, 3000, &rep), MIGRATE_OK),
	    "%s", rep.why);
	same_registry(sq, reg);
	registry_close(sq);
}

Test(migrate, error_texts_are_distinct)
{
	int i, j;

	for (i = 0; i < MIGRATE_ERR__MAX; i++)
		for (j = 0; j < i; j++)
			cr_assert(not(eq(str, (char *)migrate_err_str(i),
			    (char *)migrate_err_str(j))));
	cr_assert(not(eq(ptr, (void *)migrate_err_str(MIGRATE_ERR__MAX),
	    NULL)));
}
