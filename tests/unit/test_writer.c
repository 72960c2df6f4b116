/* test_writer.c: the group-commit writer process, driven by its client. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <sqlite3.h>

#include "config.h"
#include "http.h"
#include "pool.h"
#include "registry.h"
#include "support.h"
#include "users.h"
#include "write.h"
#include "writer.h"

/*
 * Each test seeds a registry (alice, version 1, the only admin; bob,
 * version 2), forks a writer on it the way the pool does (a listening
 * socket made first, a signalfd of its own) and sends it writes with
 * writer_call(), from this process or from forked clients. No SQLite
 * handle is open across a fork. Every process started here is reaped in
 * the fixture, and dies with the test process besides.
 */

#define PJ "application/problem+json"
#define CLIENTS_MAX 8
/* How long a client waits for the writer's answer (ms). */
#define CALL_MS 5000

static char tmpdir[64];
static struct config cfg;
static int listen_fd = -1;
static char addr[WRITER_ADDR_MAX];
static size_t addr_len;
static pid_t writers[4];
static int nwriters;

static void
seed(const char *path)
{
	struct registry *r;
	struct user u;
	int i;

	r = registry_open(path, 2000, REG_OPEN_CREATE, NULL, NULL);
	cr_assert(not(eq(ptr, r, NULL)));
	for (i = 0; i < 2; i++) {
		memset(&u, 0, sizeof(u));
		snprintf(u.username, sizeof(u.username), "%s",
		    i == 0 ? "alice" : "bob");
		if (i == 0)
			snprintf(u.roles[u.nroles++], USER_ROLE_MAX + 1,
			    "admin");
		cr_assert(eq(int, registry_begin(r), REG_OK));
		cr_assert(eq(int, registry_insert(r, &u), REG_OK));
		cr_assert(eq(int, registry_commit(r), REG_OK));
	}
	registry_close(r);
}

static void
setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_writer.XXXXXX");
	cr_assert(not(eq(ptr, mkdtemp(tmpdir), NULL)));
	config_defaults(&cfg);
	snprintf(cfg.registry, sizeof(cfg.registry), "%s/users.db", tmpdir);
	cfg.busy_timeout_ms = 5000;
	seed(cfg.registry);
	signal(SIGPIPE, SIG_IGN);
	listen_fd = writer_listen(addr, &addr_len);
	cr_assert(ge(int, listen_fd, 0), "writer_listen: %s", strerror(errno));
	cr_assert(eq(chr, addr[0], '\0'), "not an abstract socket name");
	nwriters = 0;
}

static void
teardown(void)
{
	int i;

	for (i = 0; i < nwriters; i++) {
		kill(writers[i], SIGKILL);
		waitpid(writers[i], NULL, 0);
	}
	nwriters = 0;
	if (listen_fd >= 0)
		close(listen_fd);
	listen_fd = -1;
	support_remove_dir(tmpdir);
}

TestSuite(writer, .init = setup, .fini = teardown);

/* The signals a pool's children take through their signalfd. */
static void
pool_signals(sigset_t *mask)
{
	sigemptyset(mask);
	sigaddset(mask, SIGTERM);
	sigaddset(mask, SIGINT);
	sigaddset(mask, SIGHUP);
	sigaddset(mask, SIGUSR2);
}

/* Forks a writer on listen_fd, as pool.c's child() does. */
static pid_t
start_writer(void)
{
	sigset_t mask, old;
	pid_t pid;
	int sig_fd;

	cr_assert(lt(int, nwriters, 4));
	pool_signals(&mask);
	/* Blocked before the fork: no signal is lost or kills it early. */
	cr_assert(eq(int, sigprocmask(SIG_BLOCK, &mask, &old), 0));
	pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if ((sig_fd = signalfd(-1, &mask, SFD_NONBLOCK |
		    SFD_CLOEXEC)) < 0)
			_exit(90);
		/* No vetted file: the writer opens whatever is at the path. */
		_exit(writer_main(&cfg, listen_fd, sig_fd, NULL));
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	cr_assert(gt(int, pid, 0));
	writers[nwriters++] = pid;
	return pid;
}

/* Waits up to ms for pid to end; returns its wait status, or -1. */
static int
wait_exit(pid_t pid, int ms)
{
	struct timespec pause = { 0, 10 * 1000 * 1000L };
	int status, i;

	for (i = 0; i < ms / 10; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid) {
			for (int j = 0; j < nwriters; j++)
				if (writers[j] == pid)
					writers[j] = writers[--nwriters];
			return status;
		}
		nanosleep(&pause, NULL);
	}
	return -1;
}

/* A wait status as a number: the exit status, or 1000 + the signal. */
static int
ended(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return WIFSIGNALED(status) ? 1000 + WTERMSIG(status) : -1;
}

static void
pause_ms(long ms)
{
	struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&t, NULL);
}

/* ---- writes --------------------------------------------------------------- */

/* One write; "" is an absent header. */
struct wreq {
	int kind;		/* enum write_kind */
	char target[16];
	char im[8];
	char inm[4];
	char key[8];
	char body[64];
	int status;		/* what it must be answered */
};

static const char *
opt(const char *s)
{
	return s[0] != '\0' ? s : NULL;
}

/* The request of w (borrowing w's strings); n numbers its request id. */
static void
request_of(const struct wreq *w, int n, struct http_request *req)
{
	memset(req, 0, sizeof(*req));
	req->method = write_method((enum write_kind)w->kind);
	req->path = "";
	req->query = "";
	req->if_match = opt(w->im);
	req->if_none_match = opt(w->inm);
	req->idempotency_key = opt(w->key);
	req->body = strdup(w->body);
	cr_assert(not(eq(ptr, req->body, NULL)));
	req->body_len = req->content_length = strlen(w->body);
	snprintf(req->request_id, sizeof(req->request_id),
	    "00000000-0000-4000-8000-%012d", n);
}

static const char *
target_of(const struct wreq *w)
{
	return w->kind == WRITE_CREATE ? NULL : w->target;
}

/* Has the writer apply w; the answer goes into resp (initialized here). */
static void
call(struct writer_client *wc, const struct wreq *w, int n,
    struct http_response *resp)
{
	struct users_ctx ctx = { .cfg = &cfg };
	struct http_request req;

	request_of(w, n, &req);
	http_response_init(resp);
	writer_call(wc, &ctx, (enum write_kind)w->kind, target_of(w), &req,
	    resp);
	http_request_release(&req);
}

static struct writer_client *
client(int timeout_ms)
{
	struct writer_client *wc = writer_client_new(addr, addr_len,
	    timeout_ms);

	cr_assert(not(eq(ptr, wc, NULL)));
	return wc;
}

/*
 * The body of resp without timestamps (top level and in "current"), so
 * two answers a second apart compare equal. Free it.
 */
static char *
comparable_body(const struct http_response *resp)
{
	struct json_object *o, *cur;
	char *s;

	if (resp->body == NULL)
		return strdup("");
	o = json_tokener_parse(resp->body);
	cr_assert(not(eq(ptr, o, NULL)), "[%s]", resp->body);
	json_object_object_del(o, "created_at");
	json_object_object_del(o, "updated_at");
	if (json_object_object_get_ex(o, "current", &cur) &&
	    json_object_is_type(cur, json_type_object)) {
		json_object_object_del(cur, "created_at");
		json_object_object_del(cur, "updated_at");
	}
	s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return s;
}

static void
assert_same_answer(const struct http_response *a,
    const struct http_response *b, int n)
{
	char *x, *y;
	size_t i;

	cr_assert(eq(int, a->status, b->status), "write %d: [%s] [%s]", n,
	    a->body != NULL ? a->body : "", b->body != NULL ? b->body : "");
	cr_assert(eq(int, a->content_type == NULL, b->content_type == NULL),
	    "write %d", n);
	if (a->content_type != NULL)
		cr_assert(eq(str, (char *)a->content_type,
		    (char *)b->content_type), "write %d", n);
	cr_assert(eq(sz, a->nheaders, b->nheaders), "write %d", n);
	for (i = 0; i < a->nheaders; i++) {
		cr_assert(eq(str, (char *)a->headers[i].name,
		    (char *)b->headers[i].name), "write %d", n);
		cr_assert(eq(str, a->headers[i].value, b->headers[i].value),
		    "write %d", n);
	}
	x = comparable_body(a);
	y = comparable_body(b);
	cr_assert(eq(str, x, y), "write %d", n);
	free(x);
	free(y);
}

static void
assert_unavailable(const struct http_response *resp, const char *what)
{
	cr_assert(eq(int, resp->status, 503), "%s: [%s]", what,
	    resp->body != NULL ? resp->body : "");
	cr_assert(eq(str, (char *)resp->content_type, PJ), "%s", what);
	cr_assert(not(eq(ptr, strstr(resp->body,
	    "/problems/registry-unavailable"), NULL)), "%s: [%s]", what,
	    resp->body);
	cr_assert(eq(str, (char *)http_header(resp, "Retry-After"), "1"),
	    "%s", what);
}

/* How many users the registry at path holds; opened and closed here. */
static int64_t
users_in(const char *path)
{
	struct registry *r = registry_open(path, 2000, 0, NULL, NULL);
	int64_t n = -1;

	cr_assert(not(eq(ptr, r, NULL)), "cannot open %s", path);
	cr_assert(eq(int, registry_count(r, &n), REG_OK));
	registry_close(r);
	return n;
}

static int
has_user(const char *path, const char *name)
{
	struct registry *r = registry_open(path, 2000, 0, NULL, NULL);
	struct user u;
	enum reg_err rc;

	cr_assert(not(eq(ptr, r, NULL)), "cannot open %s", path);
	rc = registry_get(r, name, &u);
	registry_close(r);
	cr_assert(rc == REG_OK || rc == REG_NOT_FOUND);
	return rc == REG_OK;
}

/* ---- answers ---------------------------------------------------------------- */

static const struct wreq sequence[] = {
	{ WRITE_CREATE, "", "", "", "", "{\"username\":\"carol\"}", 201 },
	{ WRITE_CREATE, "", "", "", "", "{\"username\":\"ALICE\"}", 409 },
	{ WRITE_CREATE, "", "", "", "k1", "{\"username\":\"dave\"}", 201 },
	{ WRITE_CREATE, "", "", "", "k1", "{\"username\":\"dave\"}", 201 },
	{ WRITE_CREATE, "", "", "", "k1", "{\"username\":\"erin\"}", 422 },
	{ WRITE_CREATE, "", "", "", "", "{\"username\":\"-x\"}", 422 },
	{ WRITE_PATCH, "bob", "\"2\"", "", "", "{\"display_name\":\"B\"}", 200 },
	{ WRITE_PATCH, "bob", "\"2\"", "", "", "{\"display_name\":\"C\"}", 412 },
	{ WRITE_PATCH, "nobody", "\"2\"", "", "", "{}", 404 },
	{ WRITE_PUT, "frank", "", "*", "", "{\"username\":\"frank\"}", 201 },
	{ WRITE_PUT, "bob", "", "", "", "{\"username\":\"bob\"}", 428 },
	{ WRITE_DELETE, "alice", "\"1\"", "", "", "", 409 },
	{ WRITE_DELETE, "carol", "\"3\"", "", "", "", 204 },
	{ WRITE_DELETE, "carol", "\"3\"", "", "", "", 404 },
};

#define NSEQUENCE (int)(sizeof(sequence) / sizeof(sequence[0]))

Test(writer, answers_equal_what_write_run_locally_gives)
{
	struct http_response via[NSEQUENCE], local;
	struct writer_client *wc;
	struct http_request req;
	struct users_ctx ctx;
	struct config lcfg;
	int i;

	start_writer();
	wc = client(CALL_MS);
	for (i = 0; i < NSEQUENCE; i++) {
		call(wc, &sequence[i], i, &via[i]);
		cr_assert(eq(int, via[i].status, sequence[i].status),
		    "write %d: [%s]", i, via[i].body != NULL ? via[i].body :
		    "");
	}
	writer_client_free(wc);
	cr_assert(eq(str, (char *)http_header(&via[3], "Idempotent-Replayed"),
	    "true"));

	/* The same writes on a twin registry, each in its own transaction. */
	lcfg = cfg;
	snprintf(lcfg.registry, sizeof(lcfg.registry), "%s/twin.db", tmpdir);
	seed(lcfg.registry);
	memset(&ctx, 0, sizeof(ctx));
	ctx.cfg = &lcfg;
	ctx.reg = registry_open(lcfg.registry, 2000, 0, NULL, NULL);
	cr_assert(not(eq(ptr, ctx.reg, NULL)));
	for (i = 0; i < NSEQUENCE; i++) {
		request_of(&sequence[i], i, &req);
		http_response_init(&local);
		write_run_locally(&ctx, (enum write_kind)sequence[i].kind,
		    target_of(&sequence[i]), &req, &local);
		assert_same_answer(&via[i], &local, i);
		http_response_release(&local);
		http_request_release(&req);
		http_response_release(&via[i]);
	}
	registry_close(ctx.reg);
	cr_assert(eq(i64, users_in(cfg.registry), users_in(lcfg.registry)));
}

/*
 * A client process: waits on gate, then has the writer create the user
 * name and writes the answer's status to out. Returns its exit status.
 */
static int
create_from_a_client(int gate, int out, const char *name)
{
	struct writer_client *wc;
	struct http_response resp;
	struct wreq w = { .kind = WRITE_CREATE };
	char c;
	int status;

	snprintf(w.body, sizeof(w.body), "{\"username\":\"%s\"}", name);
	if (read(gate, &c, 1) < 0)
		return 20;
	if ((wc = writer_client_new(addr, addr_len, CALL_MS)) == NULL)
		return 21;
	{
		struct users_ctx ctx = { .cfg = &cfg };
		struct http_request req;

		memset(&req, 0, sizeof(req));
		req.method = "POST";
		req.path = "";
		req.query = "";
		req.body = w.body;
		req.body_len = req.content_length = strlen(w.body);
		http_new_request_id(&req);
		http_response_init(&resp);
		writer_call(wc, &ctx, WRITE_CREATE, NULL, &req, &resp);
	}
	status = resp.status;
	/* user-exists is the only 409 a create of a free email gives. */
	if (status == 409 && (resp.body == NULL ||
	    strstr(resp.body, "/problems/user-exists") == NULL))
		status = 1409;
	if (write(out, &status, sizeof(status)) != (ssize_t)sizeof(status))
		status = 22;
	http_response_release(&resp);
	writer_client_free(wc);
	return status == 22 ? 22 : 0;
}

/*
 * Forks n clients that each create names[i] at once; stores what each
 * was answered in statuses.
 */
static void
run_clients(int n, const char *const *names, int *statuses)
{
	int gate[2], out[CLIENTS_MAX][2], status, i;
	pid_t pids[CLIENTS_MAX];

	cr_assert(le(int, n, CLIENTS_MAX));
	cr_assert(eq(int, pipe(gate), 0));
	for (i = 0; i < n; i++) {
		cr_assert(eq(int, pipe(out[i]), 0));
		pids[i] = fork();
		cr_assert(ge(int, pids[i], 0));
		if (pids[i] == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			close(gate[1]);
			close(out[i][0]);
			_exit(create_from_a_client(gate[0], out[i][1],
			    names[i]));
		}
		close(out[i][1]);
	}
	/* Opening the gate lets them all go at once. */
	close(gate[0]);
	close(gate[1]);
	for (i = 0; i < n; i++) {
		statuses[i] = -1;
		cr_assert(eq(long, (long)read(out[i][0], &statuses[i],
		    sizeof(statuses[i])), (long)sizeof(statuses[i])),
		    "client %d gave no answer", i);
		close(out[i][0]);
		cr_assert(eq(int, waitpid(pids[i], &status, 0), pids[i]));
		cr_assert(eq(int, status, 0), "client %d: wait status %#x", i,
		    status);
	}
}

Test(writer, concurrent_creates_of_one_name_give_exactly_one_201)
{
	static const char *const names[CLIENTS_MAX] = {
		"racer", "RACER", "Racer", "rAcer", "raCer", "racEr", "raceR",
		"RaCeR"
	};
	int statuses[CLIENTS_MAX], created = 0, exists = 0, i;

	start_writer();
	run_clients(CLIENTS_MAX, names, statuses);
	for (i = 0; i < CLIENTS_MAX; i++) {
		if (statuses[i] == 201)
			created++;
		else if (statuses[i] == 409)
			exists++;
		else
			cr_fail("client %d answered %d", i, statuses[i]);
	}
	cr_assert(eq(int, created, 1));
	cr_assert(eq(int, exists, CLIENTS_MAX - 1));
	cr_assert(eq(i64, users_in(cfg.registry), 3));
}

Test(writer, concurrent_creates_of_distinct_names_all_commit)
{
	static const char *const names[CLIENTS_MAX] = {
		"u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8"
	};
	int statuses[CLIENTS_MAX], i;

	start_writer();
	run_clients(CLIENTS_MAX, names, statuses);
	for (i = 0; i < CLIENTS_MAX; i++)
		cr_assert(eq(int, statuses[i], 201), "client %d", i);
	cr_assert(eq(i64, users_in(cfg.registry), 2 + CLIENTS_MAX));
}

/* ---- failures ----------------------------------------------------------------- */

/* A plain connection holding the registry's write lock until unlock(). */
static sqlite3 *
lock_registry(const char *begin)
{
	sqlite3 *db = NULL;

	cr_assert(eq(int, sqlite3_open(cfg.registry, &db), SQLITE_OK));
	cr_assert(eq(int, sqlite3_exec(db, begin, NULL, NULL, NULL),
	    SQLITE_OK), "%s", sqlite3_errmsg(db));
	return db;
}

static void
unlock_registry(sqlite3 *db)
{
	cr_assert(eq(int, sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL),
	    SQLITE_OK));
	sqlite3_close(db);
}

Test(writer, batch_that_cannot_take_the_lock_answers_503_and_writes_nothing)
{
	static const char *const names[4] = { "w1", "w2", "w3", "w4" };
	static const struct wreq after = { WRITE_CREATE, "", "", "", "",
	    "{\"username\":\"w5\"}", 201 };
	int statuses[4], i;
	struct writer_client *wc;
	struct http_response resp;
	sqlite3 *lock;

	cfg.busy_timeout_ms = 100;
	start_writer();
	lock = lock_registry("BEGIN EXCLUSIVE");
	run_clients(4, names, statuses);
	for (i = 0; i < 4; i++)
		cr_assert(eq(int, statuses[i], 503), "client %d", i);
	unlock_registry(lock);
	cr_assert(eq(i64, users_in(cfg.registry), 2));
	/* The writer goes on serving once the registry is free again. */
	wc = client(CALL_MS);
	call(wc, &after, 0, &resp);
	cr_assert(eq(int, resp.status, 201), "[%s]", resp.body);
	http_response_release(&resp);
	writer_client_free(wc);
	cr_assert(eq(i64, users_in(cfg.registry), 3));
}

/*
 * A client process for the next case: has the writer create name and
 * writes the whole answer (status, then the encoded response) to out.
 */
static int
call_from_a_client(int out, const char *name)
{
	struct writer_client *wc;
	struct http_response resp;
	struct wreq w = { .kind = WRITE_CREATE };
	char *enc;
	size_t len = 0;
	int rc = 0;

	snprintf(w.body, sizeof(w.body), "{\"username\":\"%s\"}", name);
	if ((wc = writer_client_new(addr, addr_len, CALL_MS)) == NULL)
		return 21;
	{
		struct users_ctx ctx = { .cfg = &cfg };
		struct http_request req;

		memset(&req, 0, sizeof(req));
		req.method = "POST";
		req.path = "";
		req.query = "";
		req.body = w.body;
		req.body_len = req.content_length = strlen(w.body);
		http_new_request_id(&req);
		http_response_init(&resp);
		writer_call(wc, &ctx, WRITE_CREATE, NULL, &req, &resp);
	}
	if ((enc = http_response_encode(&resp, &len)) == NULL ||
	    write(out, &resp.status, sizeof(int)) != (ssize_t)sizeof(int) ||
	    write(out, &len, sizeof(len)) != (ssize_t)sizeof(len) ||
	    write(out, enc, len) != (ssize_t)len)
		rc = 22;
	free(enc);
	http_response_release(&resp);
	writer_client_free(wc);
	return rc;
}

/* Reads what call_from_a_client() wrote into resp (initialized here). */
static void
read_answer(int fd, struct http_response *resp)
{
	char buf[4096];
	size_t len = 0;
	int status = 0;

	cr_assert(eq(long, (long)read(fd, &status, sizeof(status)),
	    (long)sizeof(status)), "no answer");
	cr_assert(eq(long, (long)read(fd, &len, sizeof(len)),
	    (long)sizeof(len)));
	cr_assert(lt(sz, len, sizeof(buf)));
	cr_assert(eq(long, (long)read(fd, buf, len), (long)len));
	http_response_init(resp);
	cr_assert(eq(int, http_response_decode(buf, len, status, resp), 0));
}

/* One create through the writer, so it has its registry open. */
static void
warm_up(const char *name)
{
	struct wreq w = { .kind = WRITE_CREATE };
	struct http_response resp;
	struct writer_client *wc = client(CALL_MS);

	snprintf(w.body, sizeof(w.body), "{\"username\":\"%s\"}", name);
	call(wc, &w, 99, &resp);
	cr_assert(eq(int, resp.status, 201), "[%s]", resp.body);
	http_response_release(&resp);
	writer_client_free(wc);
}

static pid_t
fork_caller(int out[2], const char *name)
{
	pid_t pid;

	cr_assert(eq(int, pipe(out), 0));
	pid = fork();
	cr_assert(ge(int, pid, 0));
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(out[0]);
		_exit(call_from_a_client(out[1], name));
	}
	close(out[1]);
	return pid;
}

/*
 * The registry file is replaced (a backup restored) while the batch
 * waits for the lock: its commit lands in the old file, cannot be
 * confirmed, and every write of the batch is answered 503, never 201.
 */
Test(writer, batch_whose_commit_fails_answers_every_write_503)
{
	static const char *const names[3] = { "c1", "c2", "c3" };
	char restored[128], side[CONFIG_PATH_MAX + 8];
	struct http_response resp;
	int out[3][2], status, i;
	pid_t pids[3], writer;
	sqlite3 *lock;

	snprintf(restored, sizeof(restored), "%s/restored.db", tmpdir);
	seed(restored);
	writer = start_writer();
	warm_up("w0");
	lock = lock_registry("BEGIN IMMEDIATE");
	for (i = 0; i < 3; i++)
		pids[i] = fork_caller(out[i], names[i]);
	/* Let the writer take the batch and wait for the lock. */
	pause_ms(1000);
	cr_assert(eq(int, rename(restored, cfg.registry), 0));
	unlock_registry(lock);
	for (i = 0; i < 3; i++) {
		read_answer(out[i][0], &resp);
		close(out[i][0]);
		assert_unavailable(&resp, names[i]);
		http_response_release(&resp);
		cr_assert(eq(int, waitpid(pids[i], &status, 0), pids[i]));
		cr_assert(eq(int, status, 0), "client %d", i);
	}
	/* A writer whose file was replaced leaves it to the pool. */
	status = wait_exit(writer, 5000);
	cr_assert(not(eq(int, status, -1)), "the writer did not stop");
	cr_assert(eq(int, ended(status), POOL_EXIT_MOVED));
	/* As the pool does: the old file's log goes before the new opens. */
	snprintf(side, sizeof(side), "%s-wal", cfg.registry);
	unlink(side);
	snprintf(side, sizeof(side), "%s-shm", cfg.registry);
	unlink(side);
	cr_assert(eq(i64, users_in(cfg.registry), 2));
	for (i = 0; i < 3; i++)
		cr_assert(not(has_user(cfg.registry, names[i])), "%s",
		    names[i]);
	cr_assert(not(has_user(cfg.registry, "w0")));
}

Test(writer, killed_writer_is_503_within_the_timeout_and_a_new_one_serves)
{
	static const struct wreq first = { WRITE_CREATE, "", "", "", "",
	    "{\"username\":\"carol\"}", 201 };
	static const struct wreq lost = { WRITE_CREATE, "", "", "", "",
	    "{\"username\":\"dave\"}", 503 };
	static const struct wreq next = { WRITE_CREATE, "", "", "", "",
	    "{\"username\":\"erin\"}", 201 };
	struct http_response resp;
	struct writer_client *wc;
	long long t0, ms;
	pid_t writer;
	int status;

	writer = start_writer();
	warm_up("bea");
	wc = client(1000);
	call(wc, &first, 0, &resp);
	cr_assert(eq(int, resp.status, 201), "[%s]", resp.body);
	http_response_release(&resp);
	cr_assert(eq(int, kill(writer, SIGKILL), 0));
	status = wait_exit(writer, 5000);
	cr_assert(eq(int, ended(status), 1000 + SIGKILL));
	/* Nobody answers: 503 once the call's time is up, not a hang. */
	t0 = support_mono_ms();
	call(wc, &lost, 1, &resp);
	ms = support_mono_ms() - t0;
	assert_unavailable(&resp, "no writer");
	cr_assert(lt(llong, ms, 3500), "writer_call took %lld ms", ms);
	http_response_release(&resp);
	/* A new writer on the same socket serves the next call. */
	start_writer();
	call(wc, &next, 2, &resp);
	cr_assert(eq(int, resp.status, 201), "[%s]", resp.body);
	http_response_release(&resp);
	writer_client_free(wc);
	cr_assert(has_user(cfg.registry, "carol"));
	cr_assert(has_user(cfg.registry, "erin"));
}

Test(writer, sigterm_answers_the_batch_in_hand_then_exits_0)
{
	struct http_response resp;
	int out[2], status;
	pid_t writer, caller;
	sqlite3 *lock;

	writer = start_writer();
	warm_up("bea");
	/* Hold the batch inside the writer: it waits for this lock. */
	lock = lock_registry("BEGIN IMMEDIATE");
	caller = fork_caller(out, "carol");
	pause_ms(1000);
	cr_assert(eq(int, kill(writer, SIGTERM), 0));
	pause_ms(100);
	unlock_registry(lock);
	read_answer(out[0], &resp);
	close(out[0]);
	cr_assert(eq(int, resp.status, 201), "[%s]", resp.body);
	http_response_release(&resp);
	cr_assert(eq(int, waitpid(caller, &status, 0), caller));
	cr_assert(eq(int, status, 0));
	status = wait_exit(writer, 5000);
	cr_assert(not(eq(int, status, -1)), "the writer did not stop");
	cr_assert(eq(int, ended(status), 0));
	cr_assert(has_user(cfg.registry, "carol"));
}

Test(writer, sigterm_when_idle_exits_0)
{
	pid_t writer = start_writer();
	int status;

	pause_ms(100);
	cr_assert(eq(int, kill(writer, SIGTERM), 0));
	status = wait_exit(writer, 5000);
	cr_assert(not(eq(int, status, -1)), "the writer did not stop");
	cr_assert(eq(int, ended(status), 0));
}

Test(writer, call_without_a_writer_listening_is_503)
{
	static const struct wreq w = { WRITE_CREATE, "", "", "", "",
	    "{\"username\":\"carol\"}", 503 };
	struct http_response resp;
	struct writer_client *wc;

	/* The socket is gone altogether: connect itself fails. */
	close(listen_fd);
	listen_fd = -1;
	wc = client(500);
	call(wc, &w, 0, &resp);
	assert_unavailable(&resp, "no socket");
	http_response_release(&resp);
	writer_client_free(wc);
	writer_client_free(NULL);
	cr_assert(not(has_user(cfg.registry, "carol")));
}

Test(writer, listening_address_is_abstract_and_within_its_limit)
{
	char again[WRITER_ADDR_MAX];
	size_t again_len = 0;
	int fd;

	cr_assert(eq(int, WRITER_BATCH_MAX, 256));
	cr_assert(gt(sz, addr_len, 1));
	cr_assert(le(sz, addr_len, WRITER_ADDR_MAX));
	cr_assert(eq(chr, addr[0], '\0'));
	cr_assert(eq(sz, strlen(addr + 1), addr_len - 1));
	/* Each socket gets a name of its own. */
	cr_assert(ge(int, fd = writer_listen(again, &again_len), 0));
	cr_assert(not(eq(int, again_len == addr_len &&
	    memcmp(again, addr, addr_len) == 0, 1)));
	close(fd);
}
