/* test_write.c: write_apply() against a read snapshot and a transaction. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <criterion/parameterized.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <sqlite3.h>

#include "config.h"
#include "http.h"
#include "registry.h"
#include "router.h"
#include "sha256.h"
#include "support.h"
#include "users.h"
#include "write.h"

/*
 * Every test gets a fresh registry holding alice (version 1, the only
 * admin, alice@example.org) and bob (version 2, bob@example.org).
 * Parameters hold arrays, not pointers: Criterion runs each test in a
 * fresh process, where the parent's pointers need not be valid.
 */

#define MJ "application/json"
#define MP "application/merge-patch+json"
#define PJ "application/problem+json"
#define REQ_ID "0b5e3c1a-9d2f-4e6b-8a7c-1d2e3f405162"

static char tmpdir[64];
static struct config cfg;
static struct registry *reg;
static struct users_ctx ctx;

static void
add_user(const char *name, const char *email, const char *role)
{
	struct user u;

	memset(&u, 0, sizeof(u));
	snprintf(u.username, sizeof(u.username), "%s", name);
	snprintf(u.email, sizeof(u.email), "%s", email);
	if (role != NULL)
		snprintf(u.roles[u.nroles++], USER_ROLE_MAX + 1, "%s", role);
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	cr_assert(eq(int, registry_insert(reg, &u), REG_OK));
	cr_assert(eq(int, registry_commit(reg), REG_OK));
}

static void
setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_write.XXXXXX");
	cr_assert(not(eq(ptr, mkdtemp(tmpdir), NULL)));
	config_defaults(&cfg);
	snprintf(cfg.registry, sizeof(cfg.registry), "%s/users.db", tmpdir);
	reg = registry_open(cfg.registry, 2000, REG_OPEN_CREATE, NULL, NULL);
	cr_assert(not(eq(ptr, reg, NULL)));
	memset(&ctx, 0, sizeof(ctx));
	ctx.cfg = &cfg;
	ctx.reg = reg;
	add_user("alice", "alice@example.org", "admin");
	add_user("bob", "bob@example.org", NULL);
}

static void
teardown(void)
{
	registry_close(reg);
	reg = NULL;
	support_remove_dir(tmpdir);
}

TestSuite(write, .init = setup, .fini = teardown);

/* ---- requests ------------------------------------------------------------ */

/* One write; "" is an absent header. */
struct write_case {
	char name[72];
	int kind;		/* enum write_kind */
	char target[16];	/* {username}; unused for POST */
	char im[16];
	char inm[8];
	char key[16];
	char principal[12];
	int self;		/* access = self */
	int signup_admin;
	char body[128];
	int needs_write;	/* what the dry run must say */
	int status;		/* the answer, dry or in a transaction */
	char slug[32];		/* its problem, "" for none */
};

static const char *
opt(const char *s)
{
	return s[0] != '\0' ? s : NULL;
}

/*
 * The request of c, whose strings it borrows (c must outlive it); the
 * body is req's own (http_request_release).
 */
static void
request_of(const struct write_case *c, struct http_request *req)
{
	static char path[64];

	memset(req, 0, sizeof(*req));
	req->method = write_method((enum write_kind)c->kind);
	if (c->kind == WRITE_CREATE)
		snprintf(path, sizeof(path), "/users");
	else
		snprintf(path, sizeof(path), "/users/%s", c->target);
	req->path = path;
	req->query = "";
	req->content_type = c->kind == WRITE_PATCH ? MP :
	    c->kind == WRITE_DELETE ? NULL : MJ;
	req->if_match = opt(c->im);
	req->if_none_match = opt(c->inm);
	req->idempotency_key = opt(c->key);
	req->remote_user = opt(c->principal);
	req->body = strdup(c->body);
	cr_assert(not(eq(ptr, req->body, NULL)));
	req->body_len = req->content_length = strlen(c->body);
	memcpy(req->request_id, REQ_ID, sizeof(REQ_ID));
}

static void
configure(const struct write_case *c)
{
	if (c->self)
		cfg.access = CONFIG_ACCESS_SELF;
	if (c->signup_admin)
		cfg.signup = CONFIG_SIGNUP_ADMIN;
}

static const char *
target_of(const struct write_case *c)
{
	return c->kind == WRITE_CREATE ? NULL : c->target;
}

static int64_t
revision(void)
{
	int64_t v = -1;

	cr_assert(eq(int, registry_revision(reg, &v), REG_OK));
	return v;
}

/* Runs sql on a plain SQLite connection to the registry file. */
static void
raw_exec(const char *sql)
{
	sqlite3 *db = NULL;
	char *msg = NULL;

	cr_assert(eq(int, sqlite3_open(cfg.registry, &db), SQLITE_OK));
	cr_assert(eq(int, sqlite3_exec(db, sql, NULL, NULL, &msg), SQLITE_OK),
	    "%s: %s", sql, msg != NULL ? msg : "");
	sqlite3_free(msg);
	sqlite3_close(db);
}

static int64_t
idem_rows(void)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int64_t n;

	cr_assert(eq(int, sqlite3_open(cfg.registry, &db), SQLITE_OK));
	cr_assert(eq(int, sqlite3_prepare_v2(db, "SELECT count(*) FROM "
	    "idempotency", -1, &st, NULL), SQLITE_OK));
	cr_assert(eq(int, sqlite3_step(st), SQLITE_ROW));
	n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

/* Asserts resp is status, with problem slug unless slug is "". */
static void
assert_answer(const struct http_response *resp, int status,
    const char *slug, const char *name)
{
	char want[96];

	cr_assert(eq(int, resp->status, status), "%s: [%s]", name,
	    resp->body != NULL ? resp->body : "");
	if (slug[0] == '\0')
		return;
	cr_assert(eq(str, (char *)resp->content_type, PJ), "%s", name);
	snprintf(want, sizeof(want), "\"type\":\"/problems/%s\"", slug);
	cr_assert(not(eq(ptr, strstr(resp->body, want), NULL)), "%s: [%s]",
	    name, resp->body);
}

/*
 * The body of resp with the timestamps taken out (top level and in
 * "current"), so two answers a second apart compare equal. Free it.
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

/* ---- the cases ------------------------------------------------------------ */

static struct write_case cases[] = {
	/* Answered from the snapshot: no write lock needed. */
	{ .name = "POST a taken name", .kind = WRITE_CREATE,
	    .body = "{\"username\":\"Alice\"}", .status = 409,
	    .slug = "user-exists" },
	{ .name = "POST an invalid member", .kind = WRITE_CREATE,
	    .body = "{\"username\":\"-x\"}", .status = 422,
	    .slug = "validation-failed" },
	{ .name = "POST an unknown member", .kind = WRITE_CREATE,
	    .body = "{\"username\":\"carol\",\"nick\":1}", .status = 422,
	    .slug = "unknown-member" },
	{ .name = "POST a body that does not parse", .kind = WRITE_CREATE,
	    .body = "{\"username\":", .status = 400,
	    .slug = "malformed-json" },
	{ .name = "POST with a version member", .kind = WRITE_CREATE,
	    .body = "{\"username\":\"carol\",\"version\":\"1\"}",
	    .status = 422, .slug = "validation-failed" },
	{ .name = "sign-up granting itself roles", .kind = WRITE_CREATE,
	    .self = 1, .body = "{\"username\":\"carol\",\"roles\":[\"ops\"]}",
	    .status = 403, .slug = "forbidden" },
	{ .name = "signup = admin without a principal", .kind = WRITE_CREATE,
	    .self = 1, .signup_admin = 1, .body = "{\"username\":\"carol\"}",
	    .status = 401, .slug = "unauthenticated" },
	{ .name = "PUT without a precondition", .kind = WRITE_PUT,
	    .target = "bob", .body = "{\"username\":\"bob\"}", .status = 428,
	    .slug = "precondition-required" },
	{ .name = "PUT with a stale If-Match", .kind = WRITE_PUT,
	    .target = "bob", .im = "\"1\"", .body = "{\"username\":\"bob\"}",
	    .status = 412, .slug = "precondition-failed" },
	{ .name = "PUT If-None-Match: * on a user", .kind = WRITE_PUT,
	    .target = "bob", .inm = "*", .body = "{\"username\":\"bob\"}",
	    .status = 412, .slug = "precondition-failed" },
	{ .name = "PUT with a stale body version", .kind = WRITE_PUT,
	    .target = "bob", .body = "{\"username\":\"bob\",\"version\":\"1\"}",
	    .status = 409, .slug = "stale-version" },
	{ .name = "PUT naming another user", .kind = WRITE_PUT,
	    .target = "bob", .im = "\"2\"", .body = "{\"username\":\"carol\"}",
	    .status = 422, .slug = "name-mismatch" },
	{ .name = "PUT with If-Match and version apart", .kind = WRITE_PUT,
	    .target = "bob", .im = "\"2\"",
	    .body = "{\"username\":\"bob\",\"version\":\"1\"}", .status = 400,
	    .slug = "inconsistent-precondition" },
	{ .name = "PUT that changes nothing", .kind = WRITE_PUT,
	    .target = "bob", .im = "\"2\"",
	    .body = "{\"username\":\"bob\",\"email\":\"bob@example.org\"}",
	    .status = 200 },
	{ .name = "PATCH a missing user", .kind = WRITE_PATCH,
	    .target = "nobody", .im = "\"1\"", .body = "{}", .status = 404,
	    .slug = "user-not-found" },
	{ .name = "PATCH that changes nothing", .kind = WRITE_PATCH,
	    .target = "bob", .im = "\"2\"", .body = "{}", .status = 200 },
	{ .name = "PATCH with a stale If-Match", .kind = WRITE_PATCH,
	    .target = "bob", .im = "\"1\"", .body = "{\"display_name\":\"B\"}",
	    .status = 412, .slug = "precondition-failed" },
	{ .name = "PATCH another user as non-admin", .kind = WRITE_PATCH,
	    .target = "alice", .im = "\"1\"", .self = 1, .principal = "bob",
	    .body = "{\"display_name\":\"A\"}", .status = 403,
	    .slug = "forbidden" },
	{ .name = "DELETE a missing user", .kind = WRITE_DELETE,
	    .target = "nobody", .im = "\"1\"", .status = 404,
	    .slug = "user-not-found" },
	{ .name = "DELETE without If-Match", .kind = WRITE_DELETE,
	    .target = "bob", .status = 428, .slug = "precondition-required" },
	{ .name = "DELETE with a stale If-Match", .kind = WRITE_DELETE,
	    .target = "bob", .im = "\"1\"", .status = 412,
	    .slug = "precondition-failed" },

	/* Writes: the dry run asks for the lock. */
	{ .name = "POST a new user", .kind = WRITE_CREATE,
	    .body = "{\"username\":\"carol\"}", .needs_write = 1,
	    .status = 201 },
	{ .name = "POST with a key that has no record", .kind = WRITE_CREATE,
	    .key = "k1", .body = "{\"username\":\"carol\"}", .needs_write = 1,
	    .status = 201 },
	{ .name = "POST a taken name with a new key", .kind = WRITE_CREATE,
	    .key = "k1", .body = "{\"username\":\"bob\"}", .needs_write = 1,
	    .status = 409, .slug = "user-exists" },
	{ .name = "POST an invalid member with a new key",
	    .kind = WRITE_CREATE, .key = "k1",
	    .body = "{\"username\":\"-x\"}", .needs_write = 1, .status = 422,
	    .slug = "validation-failed" },
	{ .name = "POST a taken email", .kind = WRITE_CREATE,
	    .body = "{\"username\":\"carol\",\"email\":\"BOB@example.org\"}",
	    .needs_write = 1, .status = 409, .slug = "email-taken" },
	{ .name = "PUT If-None-Match: * creates", .kind = WRITE_PUT,
	    .target = "carol", .inm = "*", .body = "{\"username\":\"carol\"}",
	    .needs_write = 1, .status = 201 },
	{ .name = "PUT with If-Match updates", .kind = WRITE_PUT,
	    .target = "bob", .im = "\"2\"",
	    .body = "{\"username\":\"bob\",\"display_name\":\"B\"}",
	    .needs_write = 1, .status = 200 },
	{ .name = "PATCH with a body version", .kind = WRITE_PATCH,
	    .target = "bob", .body = "{\"version\":\"2\",\"display_name\":\"B\"}",
	    .needs_write = 1, .status = 200 },
	{ .name = "PATCH to a taken email", .kind = WRITE_PATCH,
	    .target = "bob", .im = "\"2\"",
	    .body = "{\"email\":\"alice@example.org\"}", .needs_write = 1,
	    .status = 409, .slug = "email-taken" },
	{ .name = "PATCH away the last admin", .kind = WRITE_PATCH,
	    .target = "alice", .im = "\"1\"", .body = "{\"roles\":[]}",
	    .needs_write = 1, .status = 409,
	    .slug = "business-rule-violation" },
	{ .name = "PATCH by the user itself", .kind = WRITE_PATCH,
	    .target = "bob", .im = "\"2\"", .self = 1, .principal = "bob",
	    .body = "{\"display_name\":\"Bobby\"}", .needs_write = 1,
	    .status = 200 },
	{ .name = "DELETE with If-Match", .kind = WRITE_DELETE,
	    .target = "bob", .im = "\"2\"", .needs_write = 1, .status = 204 },
	{ .name = "DELETE the last admin", .kind = WRITE_DELETE,
	    .target = "alice", .im = "\"1\"", .needs_write = 1,
	    .status = 409, .slug = "business-rule-violation" },
};

#define NCASES (sizeof(cases) / sizeof(cases[0]))

ParameterizedTestParameters(write, dry_run_answers_or_asks_for_the_lock)
{
	return cr_make_param_array(struct write_case, cases, NCASES);
}

/* In dry mode every non-write is answered and only writes ask for more. */
ParameterizedTest(struct write_case *c, write,
    dry_run_answers_or_asks_for_the_lock)
{
	struct http_request req;
	struct http_response resp;
	int64_t before = revision();
	int needs_write = -1;

	configure(c);
	request_of(c, &req);
	http_response_init(&resp);
	cr_assert(eq(int, registry_begin_read(reg), REG_OK));
	cr_assert(eq(int, write_apply(&ctx, (enum write_kind)c->kind,
	    target_of(c), &req, &resp, 1, &needs_write), REG_OK), "%s",
	    c->name);
	registry_rollback(reg);
	cr_assert(eq(int, needs_write, c->needs_write), "%s: [%s]", c->name,
	    resp.body != NULL ? resp.body : "");
	if (c->needs_write) {
		/* Nothing is answered: the caller runs it under the lock. */
		cr_assert(eq(int, resp.status, 500), "%s", c->name);
		cr_assert(eq(ptr, resp.body, NULL), "%s", c->name);
		cr_assert(eq(sz, resp.nheaders, 0), "%s", c->name);
	} else {
		assert_answer(&resp, c->status, c->slug, c->name);
	}
	cr_assert(eq(i64, revision(), before), "%s wrote", c->name);
	cr_assert(eq(i64, idem_rows(), 0), "%s stored a key", c->name);
	http_response_release(&resp);
	http_request_release(&req);
}

ParameterizedTestParameters(write, transaction_answers_as_the_handlers_do)
{
	return cr_make_param_array(struct write_case, cases, NCASES);
}

/*
 * The same request applied in a write transaction (then rolled back)
 * and through the handlers answers alike: status, headers and body.
 */
ParameterizedTest(struct write_case *c, write,
    transaction_answers_as_the_handlers_do)
{
	struct http_response wet, handled;
	struct http_request req;
	char *a, *b;
	int64_t before = revision();
	int needs_write = -1;
	size_t i;

	configure(c);
	request_of(c, &req);
	http_response_init(&wet);
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	cr_assert(eq(int, write_apply(&ctx, (enum write_kind)c->kind,
	    target_of(c), &req, &wet, 0, &needs_write), REG_OK), "%s",
	    c->name);
	cr_assert(eq(int, needs_write, 0), "%s", c->name);
	registry_rollback(reg);
	assert_answer(&wet, c->status, c->slug, c->name);
	cr_assert(eq(i64, revision(), before), "%s: rollback kept a write",
	    c->name);

	http_response_init(&handled);
	router_dispatch(&ctx, &req, &handled);
	cr_assert(eq(int, handled.status, wet.status), "%s: [%s]", c->name,
	    handled.body != NULL ? handled.body : "");
	if (wet.content_type == NULL)
		cr_assert(eq(ptr, (void *)handled.content_type, NULL));
	else
		cr_assert(eq(str, (char *)handled.content_type,
		    (char *)wet.content_type), "%s", c->name);
	cr_assert(eq(sz, handled.nheaders, wet.nheaders), "%s", c->name);
	for (i = 0; i < wet.nheaders; i++) {
		cr_assert(eq(str, (char *)handled.headers[i].name,
		    (char *)wet.headers[i].name), "%s", c->name);
		cr_assert(eq(str, handled.headers[i].value,
		    wet.headers[i].value), "%s", c->name);
	}
	a = comparable_body(&wet);
	b = comparable_body(&handled);
	cr_assert(eq(str, b, a), "%s", c->name);
	free(a);
	free(b);
	http_response_release(&wet);
	http_response_release(&handled);
	http_request_release(&req);
}

/* ---- idempotent POSTs ------------------------------------------------------ */

/*
 * A POST with Idempotency-Key key ("" for none) and body; its headers
 * live until the next call.
 */
static void
post_req(const char *key, const char *body, struct http_request *req)
{
	static struct write_case c;

	memset(&c, 0, sizeof(c));
	c.kind = WRITE_CREATE;
	snprintf(c.key, sizeof(c.key), "%s", key);
	snprintf(c.body, sizeof(c.body), "%s", body);
	request_of(&c, req);
}

/* Looks up key's record for body (global scope) at the current time. */
static enum reg_err
record_of(const char *key, const char *body, struct reg_idem *rec)
{
	char fp[SHA256_HEX_SIZE];

	sha256_hex(body, strlen(body), fp);
	return registry_idem_get(reg, "", key, fp, (int64_t)time(NULL), rec);
}

struct stored_case {
	char body[96];
	int status;
};

ParameterizedTestParameters(write, key_answer_is_stored_in_the_same_transaction)
{
	static struct stored_case stored[] = {
		{ "{\"username\":\"carol\"}", 201 },
		{ "{\"username\":\"BOB\"}", 409 },
		{ "{\"username\":\"carol\",\"email\":\"bob@example.org\"}", 409 },
		{ "{\"username\":\"-x\"}", 422 },
		{ "{\"username\":\"carol\",\"roles\":5}", 422 },
		{ "[]", 400 },
	};

	return cr_make_param_array(struct stored_case, stored,
	    sizeof(stored) / sizeof(stored[0]));
}

/*
 * The key's answer is written by the write's own transaction: there
 * inside it, and gone with it, user and all, when it rolls back.
 */
ParameterizedTest(struct stored_case *c, write,
    key_answer_is_stored_in_the_same_transaction)
{
	struct http_request req;
	struct http_response resp;
	struct reg_idem rec;
	struct user u;
	int64_t before = revision();
	int needs_write;

	post_req("k-tx", c->body, &req);
	http_response_init(&resp);
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	cr_assert(eq(int, write_apply(&ctx, WRITE_CREATE, NULL, &req, &resp, 0,
	    &needs_write), REG_OK));
	cr_assert(eq(int, resp.status, c->status), "[%s]", resp.body);
	cr_assert(eq(int, record_of("k-tx", c->body, &rec), REG_IDEM_DONE));
	cr_assert(eq(int, rec.status, c->status));
	registry_idem_release(&rec);
	registry_rollback(reg);
	cr_assert(eq(int, record_of("k-tx", c->body, &rec), REG_NOT_FOUND));
	cr_assert(eq(int, registry_get(reg, "carol", &u), REG_NOT_FOUND));
	cr_assert(eq(i64, revision(), before));
	http_response_release(&resp);
	http_request_release(&req);
}

Test(write, dry_run_replays_a_stored_answer)
{
	struct http_request req;
	struct http_response first, again;
	int needs_write = -1;

	post_req("k-re", "{\"username\":\"carol\"}", &req);
	http_response_init(&first);
	write_run_locally(&ctx, WRITE_CREATE, NULL, &req, &first);
	cr_assert(eq(int, first.status, 201), "[%s]", first.body);
	http_response_init(&again);
	cr_assert(eq(int, registry_begin_read(reg), REG_OK));
	cr_assert(eq(int, write_apply(&ctx, WRITE_CREATE, NULL, &req, &again,
	    1, &needs_write), REG_OK));
	registry_rollback(reg);
	cr_assert(eq(int, needs_write, 0));
	cr_assert(eq(int, again.status, 201));
	cr_assert(eq(str, again.body, first.body));
	cr_assert(eq(str, (char *)http_header(&again, "Idempotent-Replayed"),
	    "true"));
	http_response_release(&first);
	http_response_release(&again);
	http_request_release(&req);
}

Test(write, dry_run_refuses_a_key_used_with_another_body)
{
	struct http_request req;
	struct http_response resp;
	int needs_write = -1;

	post_req("k-re", "{\"username\":\"carol\"}", &req);
	http_response_init(&resp);
	write_run_locally(&ctx, WRITE_CREATE, NULL, &req, &resp);
	cr_assert(eq(int, resp.status, 201));
	http_response_release(&resp);
	http_request_release(&req);
	post_req("k-re", "{\"username\":\"dave\"}", &req);
	http_response_init(&resp);
	cr_assert(eq(int, registry_begin_read(reg), REG_OK));
	cr_assert(eq(int, write_apply(&ctx, WRITE_CREATE, NULL, &req, &resp,
	    1, &needs_write), REG_OK));
	registry_rollback(reg);
	cr_assert(eq(int, needs_write, 0));
	assert_answer(&resp, 422, "idempotency-key-reused", "reused key");
	http_response_release(&resp);
	http_request_release(&req);
}

/*
 * Step 3 answers a truncated body before write_apply() runs (see
 * test_users.c); write_apply() must not store that 400 either, should it
 * ever be handed one (API.md: never stored).
 */
Test(write, truncated_body_never_reaches_a_record)
{
	const char *body = "{\"username\":\"carol\"}";
	struct http_request req;
	struct http_response resp;
	struct reg_idem rec;
	int needs_write;

	post_req("k-cut", body, &req);
	req.body_state = HTTP_BODY_TRUNCATED;
	req.content_length = req.body_len + 10;
	http_response_init(&resp);
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	cr_assert(eq(int, write_apply(&ctx, WRITE_CREATE, NULL, &req, &resp, 0,
	    &needs_write), REG_OK));
	assert_answer(&resp, 400, "malformed-json", "truncated");
	cr_assert(eq(int, record_of("k-cut", body, &rec), REG_NOT_FOUND),
	    "a truncated body's 400 was stored as the key's answer");
	registry_rollback(reg);
	http_response_release(&resp);
	http_request_release(&req);
}

/* ---- write_run_locally ------------------------------------------------------ */

Test(write, run_locally_commits_a_create)
{
	struct registry *other;
	struct http_request req;
	struct http_response resp;
	struct user u;

	post_req("", "{\"username\":\"carol\"}", &req);
	http_response_init(&resp);
	write_run_locally(&ctx, WRITE_CREATE, NULL, &req, &resp);
	cr_assert(eq(int, resp.status, 201), "[%s]", resp.body);
	cr_assert(eq(int, registry_in_transaction(reg), 0));
	other = registry_open(cfg.registry, 2000, 0, NULL, NULL);
	cr_assert(not(eq(ptr, other, NULL)));
	cr_assert(eq(int, registry_get(other, "carol", &u), REG_OK));
	cr_assert(eq(i64, u.version, 3));
	registry_close(other);
	http_response_release(&resp);
	http_request_release(&req);
}

Test(write, run_locally_commits_a_refusal_with_its_key)
{
	const char *body = "{\"username\":\"bob\"}";
	struct registry *other;
	struct http_request req;
	struct http_response resp;
	struct reg_idem rec;
	char fp[SHA256_HEX_SIZE];

	post_req("k-409", body, &req);
	http_response_init(&resp);
	write_run_locally(&ctx, WRITE_CREATE, NULL, &req, &resp);
	assert_answer(&resp, 409, "user-exists", "taken");
	other = registry_open(cfg.registry, 2000, 0, NULL, NULL);
	cr_assert(not(eq(ptr, other, NULL)));
	sha256_hex(body, strlen(body), fp);
	cr_assert(eq(int, registry_idem_get(other, "", "k-409", fp,
	    (int64_t)time(NULL), &rec), REG_IDEM_DONE));
	cr_assert(eq(int, rec.status, 409));
	registry_idem_release(&rec);
	registry_close(other);
	cr_assert(eq(i64, revision(), 2));
	http_response_release(&resp);
	http_request_release(&req);
}

Test(write, run_locally_rolls_back_a_write_that_fails)
{
	struct http_request req;
	struct http_response resp;
	struct user u;

	/* The key's record cannot be written: the create must go too. */
	raw_exec("CREATE TRIGGER refuse BEFORE INSERT ON idempotency BEGIN"
	    " SELECT RAISE(ABORT, 'refused'); END");
	post_req("k-fail", "{\"username\":\"carol\"}", &req);
	http_response_init(&resp);
	write_run_locally(&ctx, WRITE_CREATE, NULL, &req, &resp);
	cr_assert(ge(int, resp.status, 500), "[%s]", resp.body);
	assert_answer(&resp, 500, "internal-error", "refused record");
	cr_assert(eq(int, registry_in_transaction(reg), 0));
	cr_assert(eq(int, registry_get(reg, "carol", &u), REG_NOT_FOUND));
	cr_assert(eq(i64, revision(), 2));
	http_response_release(&resp);
	http_request_release(&req);
}

Test(write, run_locally_answers_503_when_the_lock_wait_times_out)
{
	struct registry *other;
	struct http_request req;
	struct http_response resp;

	registry_close(reg);
	reg = ctx.reg = registry_open(cfg.registry, 50, 0, NULL, NULL);
	cr_assert(not(eq(ptr, reg, NULL)));
	other = registry_open(cfg.registry, 50, 0, NULL, NULL);
	cr_assert(not(eq(ptr, other, NULL)));
	cr_assert(eq(int, registry_begin(other), REG_OK));
	post_req("k-busy", "{\"username\":\"carol\"}", &req);
	http_response_init(&resp);
	write_run_locally(&ctx, WRITE_CREATE, NULL, &req, &resp);
	assert_answer(&resp, 503, "registry-unavailable", "locked");
	cr_assert(eq(str, (char *)http_header(&resp, "Retry-After"), "1"));
	registry_rollback(other);
	registry_close(other);
	cr_assert(eq(i64, idem_rows(), 0), "a 503 was stored");
	http_response_release(&resp);
	http_request_release(&req);
}

/* ---- misuse ------------------------------------------------------------------ */

Test(write, method_names_each_kind)
{
	cr_assert(eq(str, (char *)write_method(WRITE_CREATE), "POST"));
	cr_assert(eq(str, (char *)write_method(WRITE_PUT), "PUT"));
	cr_assert(eq(str, (char *)write_method(WRITE_PATCH), "PATCH"));
	cr_assert(eq(str, (char *)write_method(WRITE_DELETE), "DELETE"));
	cr_assert(eq(str, (char *)write_method(WRITE__MAX), "?"));
}

Test(write, change_without_a_name_or_of_no_kind_is_an_error)
{
	struct write_case c = { .kind = WRITE_DELETE, .target = "bob",
	    .im = "\"2\"" };
	struct http_request req;
	struct http_response resp;
	int needs_write = -1;

	request_of(&c, &req);
	http_response_init(&resp);
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	cr_assert(eq(int, write_apply(&ctx, WRITE_DELETE, NULL, &req, &resp, 0,
	    &needs_write), REG_ERROR));
	cr_assert(eq(int, write_apply(&ctx, WRITE__MAX, "bob", &req, &resp, 0,
	    &needs_write), REG_ERROR));
	cr_assert(eq(int, needs_write, 0));
	registry_rollback(reg);
	cr_assert(eq(i64, revision(), 2));
	http_response_release(&resp);
	http_request_release(&req);
}
