/* test_users.c: the /users handlers through router_dispatch(), no FastCGI. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <criterion/parameterized.h>

#include <dirent.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <sqlite3.h>

#include "config.h"
#include "http.h"
#include "registry.h"
#include "support.h"
#include "router.h"
#include "sha256.h"
#include "user.h"
#include "body.h"
#include "users.h"
#include "write.h"

/*
 * Every test gets a fresh registry in its own temp directory holding
 * alice (the only admin) and bob. Requests are plain structs handed to
 * router_dispatch(), so the whole order of checks (API.md) runs without a
 * server. Parameters hold arrays, not pointers: Criterion runs each test
 * in a fresh process, where the parent's pointers need not be valid.
 */

#define MJ "application/json"
#define MP "application/merge-patch+json"
#define PJ "application/problem+json"
#define ALLOW_USERS "GET, HEAD, POST, OPTIONS"
#define ALLOW_USER "GET, HEAD, PUT, PATCH, DELETE, OPTIONS"

static char tmpdir[64];
static struct config cfg;
static struct registry *reg;
static struct users_ctx ctx;
static int64_t v_alice, v_bob;		/* versions after seeding */
static char last_id[HTTP_REQUEST_ID_SIZE];	/* of the last request */

/* ---- fixture ------------------------------------------------------------ */

/* Inserts a user straight into the registry; returns its version. */
static int64_t
add_user(const char *name, const char *email, const char *display,
    const char *role1, const char *role2)
{
	struct user u;

	memset(&u, 0, sizeof(u));
	snprintf(u.username, sizeof(u.username), "%s", name);
	snprintf(u.email, sizeof(u.email), "%s", email);
	snprintf(u.display_name, sizeof(u.display_name), "%s", display);
	if (role1 != NULL)
		snprintf(u.roles[u.nroles++], USER_ROLE_MAX + 1, "%s", role1);
	if (role2 != NULL)
		snprintf(u.roles[u.nroles++], USER_ROLE_MAX + 1, "%s", role2);
	cr_assert(eq(int, user_sort_roles(&u), USER_OK));
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	cr_assert(eq(int, registry_insert(reg, &u), REG_OK), "seed %s", name);
	cr_assert(eq(int, registry_commit(reg), REG_OK));
	return u.version;
}

static void
setup(void)
{
	enum reg_err err = REG_ERR__MAX;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_users.XXXXXX");
	cr_assert(not(eq(ptr, mkdtemp(tmpdir), NULL)));
	config_defaults(&cfg);
	snprintf(cfg.registry, sizeof(cfg.registry), "%s/users.db", tmpdir);
	reg = registry_open(cfg.registry, 2000, REG_OPEN_CREATE, &err, NULL);
	cr_assert(not(eq(ptr, reg, NULL)), "open: %s", registry_err_str(err));
	ctx.cfg = &cfg;
	ctx.reg = reg;
	v_alice = add_user("alice", "alice@example.org", "Alice L.", "admin",
	    NULL);
	v_bob = add_user("bob", "bob@example.org", "", NULL, NULL);
}

static void
teardown(void)
{
	registry_close(reg);
	reg = NULL;
	support_remove_dir(tmpdir);
}

TestSuite(users, .init = setup, .fini = teardown);

/* ---- requests and answers ------------------------------------------------ */

/* One request; NULL headers are absent. */
struct rq {
	const char *method;
	const char *path;
	const char *query;
	const char *ct;
	const char *im;		/* If-Match */
	const char *inm;	/* If-None-Match */
	const char *key;	/* Idempotency-Key */
	const char *user;	/* REMOTE_USER */
	const char *body;
	enum http_body_state state;
};

/* Answers r into resp (initialized here; the caller releases it). */
static void
send_rq(const struct rq *r, struct http_response *resp)
{
	struct http_request req;
	const char *body = r->body != NULL ? r->body : "";

	memset(&req, 0, sizeof(req));
	req.method = r->method;
	req.path = r->path;
	req.query = r->query != NULL ? r->query : "";
	req.content_type = r->ct;
	req.if_match = r->im;
	req.if_none_match = r->inm;
	req.idempotency_key = r->key;
	req.remote_user = r->user;
	req.body_state = r->state;
	req.body = strdup(body);
	cr_assert(not(eq(ptr, req.body, NULL)));
	req.body_len = strlen(body);
	req.content_length = r->state == HTTP_BODY_TOO_LARGE ?
	    cfg.max_body + 1 : req.body_len;
	if (r->state == HTTP_BODY_TOO_LARGE) {
		req.body[0] = '\0';	/* not read, as http.c does */
		req.body_len = 0;
	}
	http_new_request_id(&req);
	memcpy(last_id, req.request_id, sizeof(last_id));
	http_response_init(resp);
	router_dispatch(&ctx, &req, resp);
	http_request_release(&req);
}

static void
get(const char *path, struct http_response *resp)
{
	send_rq(&(struct rq){ .method = "GET", .path = path }, resp);
}

static char *
etag(int64_t v, char buf[32])
{
	snprintf(buf, 32, "\"%lld\"", (long long)v);
	return buf;
}

/* Parses the response body; the caller puts the object. */
static struct json_object *
body_json(const struct http_response *resp)
{
	struct json_object *o;

	cr_assert(not(eq(ptr, resp->body, NULL)), "no body (status %d)",
	    resp->status);
	o = json_tokener_parse(resp->body);
	cr_assert(not(eq(ptr, o, NULL)), "body is not JSON: [%s]", resp->body);
	return o;
}

/*
 * Asserts that the member at JSON pointer ptr serializes to want (JSON
 * text), or is absent when want is "!".
 */
static void
assert_member(struct json_object *o, const char *ptr, const char *want,
    const char *body)
{
	struct json_object *v = NULL;
	int rc = json_pointer_get(o, ptr, &v);

	if (strcmp(want, "!") == 0) {
		cr_assert(not(eq(int, rc, 0)), "%s present in [%s]", ptr, body);
		return;
	}
	cr_assert(eq(int, rc, 0), "%s absent from [%s]", ptr, body);
	cr_assert(eq(str, (char *)json_object_to_json_string_ext(v,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
	    (char *)want), "%s in [%s]", ptr, body);
}

static void
assert_body_member(const struct http_response *resp, const char *ptr,
    const char *want)
{
	struct json_object *o = body_json(resp);

	assert_member(o, ptr, want, resp->body);
	json_object_put(o);
}

static void
assert_header(const struct http_response *resp, const char *name,
    const char *want)
{
	const char *v = http_header(resp, name);

	if (want == NULL) {
		cr_assert(eq(ptr, (void *)v, NULL), "%s: [%s]", name,
		    v != NULL ? v : "");
		return;
	}
	cr_assert(not(eq(ptr, (void *)v, NULL)), "no %s header", name);
	cr_assert(eq(str, (char *)v, (char *)want), "%s", name);
}

/* Asserts resp is the problem slug with the status it maps to. */
static void
assert_problem(const struct http_response *resp, int status,
    const char *slug)
{
	struct json_object *o;
	char want[CONFIG_BASE_PATH_MAX + 64];

	cr_assert(eq(int, resp->status, status), "[%s]",
	    resp->body != NULL ? resp->body : "");
	cr_assert(not(eq(ptr, (void *)resp->content_type, NULL)));
	cr_assert(eq(str, (char *)resp->content_type, PJ));
	o = body_json(resp);
	snprintf(want, sizeof(want), "\"%sproblems/%s\"", cfg.base_path, slug);
	assert_member(o, "/type", want, resp->body);
	snprintf(want, sizeof(want), "%d", status);
	assert_member(o, "/status", want, resp->body);
	snprintf(want, sizeof(want), "\"urn:uuid:%s\"", last_id);
	assert_member(o, "/instance", want, resp->body);
	json_object_put(o);
}

static int64_t
revision(void)
{
	int64_t v = -1;

	cr_assert(eq(int, registry_revision(reg, &v), REG_OK));
	return v;
}

/* Replaces @alice and @bob with the seeded versions. */
static void
expand(const char *in, char *out, size_t size)
{
	size_t o = 0;

	while (*in != '\0' && o + 24 < size) {
		if (strncmp(in, "@alice", 6) == 0) {
			o += (size_t)snprintf(out + o, size - o, "%lld",
			    (long long)v_alice);
			in += 6;
		} else if (strncmp(in, "@bob", 4) == 0) {
			o += (size_t)snprintf(out + o, size - o, "%lld",
			    (long long)v_bob);
			in += 4;
		} else {
			out[o++] = *in++;
		}
	}
	cr_assert(eq(chr, *in, '\0'), "expand: no room");
	out[o] = '\0';
}

/* ---- the order of checks, as a table ------------------------------------ */

/*
 * Strings: "" means absent for headers, "!" means "must be absent" for
 * expected values. @alice and @bob stand for the seeded versions. p1/p2
 * are JSON pointers into the answer, v1/v2 the JSON text expected there.
 */
struct flow_case {
	char name[72];
	int self;		/* access = self */
	int signup_admin;
	char method[12];
	char path[48];
	char query[48];
	char ct[40];
	char im[24];
	char inm[24];
	char key[16];
	char user[12];
	char body[240];
	int state;		/* enum http_body_state */
	int status;
	char slug[32];		/* problem slug, "" for no problem */
	char hname[24];
	char hvalue[48];
	char p1[24];
	char v1[64];
	char p2[24];
	char v2[64];
};

static const char *
opt(const char *s)
{
	return s[0] != '\0' ? s : NULL;
}

static void
run_flow_case(const struct flow_case *c)
{
	char im[64], inm[64], body[512], hv[128], v1[128], v2[128];
	struct http_response resp;
	struct json_object *o;

	if (c->self)
		cfg.access = CONFIG_ACCESS_SELF;
	if (c->signup_admin)
		cfg.signup = CONFIG_SIGNUP_ADMIN;
	expand(c->im, im, sizeof(im));
	expand(c->inm, inm, sizeof(inm));
	expand(c->body, body, sizeof(body));
	expand(c->hvalue, hv, sizeof(hv));
	expand(c->v1, v1, sizeof(v1));
	expand(c->v2, v2, sizeof(v2));
	send_rq(&(struct rq){
		.method = c->method, .path = c->path, .query = c->query,
		.ct = opt(c->ct), .im = opt(im), .inm = opt(inm),
		.key = opt(c->key), .user = opt(c->user), .body = body,
		.state = (enum http_body_state)c->state }, &resp);
	cr_assert(eq(int, resp.status, c->status), "%s: [%s]", c->name,
	    resp.body != NULL ? resp.body : "");
	if (c->slug[0] != '\0')
		assert_problem(&resp, c->status, c->slug);
	if (c->hname[0] != '\0')
		assert_header(&resp, c->hname, strcmp(hv, "!") == 0 ? NULL :
		    hv);
	if (c->p1[0] != '\0' || c->p2[0] != '\0') {
		o = body_json(&resp);
		if (c->p1[0] != '\0')
			assert_member(o, c->p1, v1, resp.body);
		if (c->p2[0] != '\0')
			assert_member(o, c->p2, v2, resp.body);
		json_object_put(o);
	}
	http_response_release(&resp);
}

ParameterizedTestParameters(users, order_of_checks)
{
	static struct flow_case cases[] = {
		/* 1. route: 404, 405 + Allow, OPTIONS */
		{ .name = "unknown path", .method = "GET", .path = "/nope",
		    .status = 404, .slug = "not-found" },
		{ .name = "unknown path, POST", .method = "POST",
		    .path = "/nope", .ct = MJ, .body = "{}", .status = 404,
		    .slug = "not-found" },
		{ .name = "users/ with an empty name", .method = "GET",
		    .path = "/users/", .status = 404, .slug = "not-found" },
		{ .name = "below a user", .method = "GET",
		    .path = "/users/alice/x", .status = 404,
		    .slug = "not-found" },
		{ .name = "longer collection name", .method = "GET",
		    .path = "/userss", .status = 404, .slug = "not-found" },
		{ .name = "name outside the pattern", .method = "GET",
		    .path = "/users/-alice", .status = 404,
		    .slug = "not-found" },
		{ .name = "encoded slash in the name", .method = "GET",
		    .path = "/users/a%2Fb", .status = 404,
		    .slug = "not-found" },
		{ .name = "encoded NUL in the name", .method = "GET",
		    .path = "/users/a%00b", .status = 404,
		    .slug = "not-found" },
		{ .name = "bad escape in the name", .method = "GET",
		    .path = "/users/a%zz", .status = 404,
		    .slug = "not-found" },
		{ .name = "encoded letters name the user", .method = "GET",
		    .path = "/users/%41lice", .status = 200,
		    .hname = "Content-Location", .hvalue = "/users/alice" },
		{ .name = "405 on the item", .method = "POST",
		    .path = "/users/alice", .ct = MJ, .body = "{}",
		    .status = 405, .slug = "method-not-allowed",
		    .hname = "Allow", .hvalue = ALLOW_USER },
		{ .name = "405 on a missing item", .method = "POST",
		    .path = "/users/nobody", .status = 405,
		    .slug = "method-not-allowed", .hname = "Allow",
		    .hvalue = ALLOW_USER },
		{ .name = "405 PUT on the collection", .method = "PUT",
		    .path = "/users", .ct = MJ, .body = "{}", .status = 405,
		    .slug = "method-not-allowed", .hname = "Allow",
		    .hvalue = ALLOW_USERS },
		{ .name = "405 DELETE on the collection", .method = "DELETE",
		    .path = "/users", .status = 405,
		    .slug = "method-not-allowed", .hname = "Allow",
		    .hvalue = ALLOW_USERS },
		{ .name = "405 for an unknown method", .method = "TRACE",
		    .path = "/users/alice", .status = 405,
		    .slug = "method-not-allowed", .hname = "Allow",
		    .hvalue = ALLOW_USER },
		{ .name = "methods are case-sensitive", .method = "get",
		    .path = "/users", .status = 405,
		    .slug = "method-not-allowed", .hname = "Allow",
		    .hvalue = ALLOW_USERS },
		{ .name = "405 before 401", .self = 1, .method = "POST",
		    .path = "/users/alice", .status = 405,
		    .slug = "method-not-allowed" },
		{ .name = "OPTIONS on the collection", .method = "OPTIONS",
		    .path = "/users", .status = 204, .hname = "Allow",
		    .hvalue = ALLOW_USERS },
		{ .name = "OPTIONS on the collection: no Accept-Patch",
		    .method = "OPTIONS", .path = "/users", .status = 204,
		    .hname = "Accept-Patch", .hvalue = "!" },
		{ .name = "OPTIONS on the item", .method = "OPTIONS",
		    .path = "/users/alice", .status = 204, .hname = "Allow",
		    .hvalue = ALLOW_USER },
		{ .name = "OPTIONS on the item: Accept-Patch",
		    .method = "OPTIONS", .path = "/users/nobody",
		    .status = 204, .hname = "Accept-Patch", .hvalue = MP },

		/* 3. headers: 415, 413, malformed preconditions */
		{ .name = "415 before 404 on PATCH", .method = "PATCH",
		    .path = "/users/nobody", .ct = MJ, .body = "{}",
		    .status = 415, .slug = "unsupported-media-type",
		    .hname = "Accept-Patch", .hvalue = MP },
		{ .name = "PATCH without Content-Type", .method = "PATCH",
		    .path = "/users/alice", .im = "*", .body = "{}",
		    .status = 415, .slug = "unsupported-media-type",
		    .hname = "Accept-Patch", .hvalue = MP },
		{ .name = "PATCH as json-patch", .method = "PATCH",
		    .path = "/users/alice", .im = "*",
		    .ct = "application/json-patch+json", .body = "[]",
		    .status = 415, .slug = "unsupported-media-type" },
		{ .name = "POST as text", .method = "POST", .path = "/users",
		    .ct = "text/plain", .body = "{\"username\":\"carol\"}",
		    .status = 415, .slug = "unsupported-media-type",
		    .hname = "Accept", .hvalue = MJ },
		{ .name = "POST without Content-Type", .method = "POST",
		    .path = "/users", .body = "{\"username\":\"carol\"}",
		    .status = 415, .slug = "unsupported-media-type",
		    .hname = "Accept", .hvalue = MJ },
		{ .name = "POST as a longer type", .method = "POST",
		    .path = "/users", .ct = "application/jsonx",
		    .body = "{\"username\":\"carol\"}", .status = 415,
		    .slug = "unsupported-media-type" },
		{ .name = "PUT as merge-patch", .method = "PUT",
		    .path = "/users/alice", .ct = MP, .im = "\"@alice\"",
		    .body = "{\"username\":\"alice\"}", .status = 415,
		    .slug = "unsupported-media-type", .hname = "Accept",
		    .hvalue = MJ },
		{ .name = "media type parameters are ignored", .method = "POST",
		    .path = "/users", .ct = "application/json; charset=utf-8",
		    .body = "{\"username\":\"carol\"}", .status = 201 },
		{ .name = "media types compare case-insensitively",
		    .method = "POST", .path = "/users",
		    .ct = "Application/JSON", .body = "{\"username\":\"carol\"}",
		    .status = 201 },
		{ .name = "413 on POST", .method = "POST", .path = "/users",
		    .ct = MJ, .state = HTTP_BODY_TOO_LARGE, .status = 413,
		    .slug = "payload-too-large", .p1 = "/max_bytes",
		    .v1 = "65536" },
		{ .name = "413 before 404 on PATCH", .method = "PATCH",
		    .path = "/users/nobody", .ct = MP,
		    .state = HTTP_BODY_TOO_LARGE, .status = 413,
		    .slug = "payload-too-large", .p1 = "/max_bytes",
		    .v1 = "65536" },
		{ .name = "415 before 413", .method = "POST", .path = "/users",
		    .ct = "text/plain", .state = HTTP_BODY_TOO_LARGE,
		    .status = 415, .slug = "unsupported-media-type" },
		{ .name = "413 before a malformed If-Match", .method = "PUT",
		    .path = "/users/alice", .ct = MJ, .im = "5",
		    .state = HTTP_BODY_TOO_LARGE, .status = 413,
		    .slug = "payload-too-large" },
		{ .name = "Content-Length not a number", .method = "POST",
		    .path = "/users", .ct = MJ,
		    .state = HTTP_BODY_BAD_LENGTH, .status = 400,
		    .slug = "invalid-header", .p1 = "/header",
		    .v1 = "\"Content-Length\"" },
		{ .name = "malformed If-Match", .method = "PUT",
		    .path = "/users/alice", .ct = MJ, .im = "5",
		    .body = "{\"username\":\"alice\"}", .status = 400,
		    .slug = "invalid-header", .p1 = "/header",
		    .v1 = "\"If-Match\"" },
		{ .name = "malformed If-Match before 404", .method = "PATCH",
		    .path = "/users/nobody", .ct = MP, .im = "\"5",
		    .body = "{}", .status = 400, .slug = "invalid-header",
		    .p1 = "/header", .v1 = "\"If-Match\"" },
		{ .name = "malformed If-Match on DELETE", .method = "DELETE",
		    .path = "/users/bob", .im = "W/5", .status = 400,
		    .slug = "invalid-header", .p1 = "/header",
		    .v1 = "\"If-Match\"" },
		{ .name = "malformed If-None-Match on GET", .method = "GET",
		    .path = "/users/alice", .inm = "alice", .status = 400,
		    .slug = "invalid-header", .p1 = "/header",
		    .v1 = "\"If-None-Match\"" },
		{ .name = "malformed If-None-Match on PUT", .method = "PUT",
		    .path = "/users/carol", .ct = MJ, .inm = "*, \"1\"",
		    .body = "{\"username\":\"carol\"}", .status = 400,
		    .slug = "invalid-header", .p1 = "/header",
		    .v1 = "\"If-None-Match\"" },
		{ .name = "malformed Idempotency-Key", .method = "POST",
		    .path = "/users", .ct = MJ, .key = "a b",
		    .body = "{\"username\":\"carol\"}", .status = 400,
		    .slug = "invalid-header", .p1 = "/header",
		    .v1 = "\"Idempotency-Key\"" },
		{ .name = "Idempotency-Key with a bad escape", .method = "POST",
		    .path = "/users", .ct = MJ, .key = "\"a\\nb\"",
		    .body = "{\"username\":\"carol\"}", .status = 400,
		    .slug = "invalid-header", .p1 = "/header",
		    .v1 = "\"Idempotency-Key\"" },

		/* 3. a body cut short of its Content-Length */
		{ .name = "truncated POST body", .method = "POST",
		    .path = "/users", .ct = MJ,
		    .body = "{\"username\":\"carol\"}",
		    .state = HTTP_BODY_TRUNCATED, .status = 400,
		    .slug = "malformed-json" },
		{ .name = "415 before a truncated body", .method = "POST",
		    .path = "/users", .ct = "text/plain", .body = "{}",
		    .state = HTTP_BODY_TRUNCATED, .status = 415,
		    .slug = "unsupported-media-type" },
		{ .name = "truncated body before a malformed key",
		    .method = "POST", .path = "/users", .ct = MJ,
		    .key = "a b", .body = "{\"username\":\"carol\"}",
		    .state = HTTP_BODY_TRUNCATED, .status = 400,
		    .slug = "malformed-json" },
		{ .name = "truncated body before a malformed If-Match",
		    .method = "PUT", .path = "/users/alice", .ct = MJ,
		    .im = "5", .body = "{\"username\":\"alice\"}",
		    .state = HTTP_BODY_TRUNCATED, .status = 400,
		    .slug = "malformed-json" },
		{ .name = "truncated PATCH body before 404", .method = "PATCH",
		    .path = "/users/nobody", .ct = MP, .im = "\"1\"",
		    .body = "{}", .state = HTTP_BODY_TRUNCATED, .status = 400,
		    .slug = "malformed-json" },
		{ .name = "truncated PUT body on a create",
		    .method = "PUT", .path = "/users/carol", .ct = MJ,
		    .inm = "*", .body = "{\"username\":\"carol\"}",
		    .state = HTTP_BODY_TRUNCATED, .status = 400,
		    .slug = "malformed-json" },
		{ .name = "truncated PUT body before 428", .method = "PUT",
		    .path = "/users/alice", .ct = MJ,
		    .body = "{\"username\":\"alice\"}",
		    .state = HTTP_BODY_TRUNCATED, .status = 400,
		    .slug = "malformed-json" },
		{ .name = "truncated PATCH body before 428", .method = "PATCH",
		    .path = "/users/bob", .ct = MP, .body = "{}",
		    .state = HTTP_BODY_TRUNCATED, .status = 400,
		    .slug = "malformed-json" },
		{ .name = "truncated PUT body before 412", .method = "PUT",
		    .path = "/users/alice", .ct = MJ, .im = "\"999\"",
		    .body = "{\"username\":\"alice\"}",
		    .state = HTTP_BODY_TRUNCATED, .status = 400,
		    .slug = "malformed-json" },
		{ .name = "truncated PATCH body before 412", .method = "PATCH",
		    .path = "/users/bob", .ct = MP, .im = "\"999\"",
		    .body = "{}", .state = HTTP_BODY_TRUNCATED, .status = 400,
		    .slug = "malformed-json" },

		/* 3. on GET /users too */
		{ .name = "list: malformed If-None-Match", .method = "GET",
		    .path = "/users", .inm = "alice", .status = 400,
		    .slug = "invalid-header", .p1 = "/header",
		    .v1 = "\"If-None-Match\"" },
		{ .name = "list: malformed If-Match", .method = "GET",
		    .path = "/users", .im = "W/5", .status = 400,
		    .slug = "invalid-header", .p1 = "/header",
		    .v1 = "\"If-Match\"" },
		{ .name = "list: Content-Length not a number", .method = "GET",
		    .path = "/users", .state = HTTP_BODY_BAD_LENGTH,
		    .status = 400, .slug = "invalid-header", .p1 = "/header",
		    .v1 = "\"Content-Length\"" },
		{ .name = "list: body too large", .method = "GET",
		    .path = "/users", .state = HTTP_BODY_TOO_LARGE,
		    .status = 413, .slug = "payload-too-large" },
		{ .name = "list: headers before the query", .method = "GET",
		    .path = "/users", .query = "limit=0", .inm = "x",
		    .status = 400, .slug = "invalid-header", .p1 = "/header",
		    .v1 = "\"If-None-Match\"" },
		{ .name = "list: HEAD runs the header checks", .method = "HEAD",
		    .path = "/users", .im = "5", .status = 400,
		    .slug = "invalid-header" },

		/* 5. target lookup: 404 whatever the preconditions */
		{ .name = "GET a missing user", .method = "GET",
		    .path = "/users/nobody", .status = 404,
		    .slug = "user-not-found" },
		{ .name = "GET a missing user with If-None-Match: *",
		    .method = "GET", .path = "/users/nobody", .inm = "*",
		    .status = 404, .slug = "user-not-found" },
		{ .name = "HEAD a missing user", .method = "HEAD",
		    .path = "/users/nobody", .status = 404,
		    .slug = "user-not-found" },
		{ .name = "PATCH a missing user without preconditions",
		    .method = "PATCH", .path = "/users/nobody", .ct = MP,
		    .body = "{}", .status = 404, .slug = "user-not-found" },
		{ .name = "PATCH a missing user with If-Match",
		    .method = "PATCH", .path = "/users/nobody", .ct = MP,
		    .im = "\"1\"", .body = "{}", .status = 404,
		    .slug = "user-not-found" },
		{ .name = "PATCH a missing user with a bad body",
		    .method = "PATCH", .path = "/users/nobody", .ct = MP,
		    .body = "{", .status = 404, .slug = "user-not-found" },
		{ .name = "DELETE a missing user without If-Match",
		    .method = "DELETE", .path = "/users/nobody", .status = 404,
		    .slug = "user-not-found" },
		{ .name = "DELETE a missing user with If-Match",
		    .method = "DELETE", .path = "/users/nobody",
		    .im = "\"@alice\"", .status = 404,
		    .slug = "user-not-found" },

		/* 6. 428 without any precondition */
		{ .name = "PUT without a precondition", .method = "PUT",
		    .path = "/users/alice", .ct = MJ,
		    .body = "{\"username\":\"alice\"}", .status = 428,
		    .slug = "precondition-required", .p1 = "/accepted",
		    .v1 = "[\"If-Match\",\"If-None-Match: *\"]",
		    .p2 = "/current_version", .v2 = "!" },
		{ .name = "428 carries no current state", .method = "PUT",
		    .path = "/users/alice", .ct = MJ,
		    .body = "{\"username\":\"alice\"}", .status = 428,
		    .slug = "precondition-required", .hname = "ETag",
		    .hvalue = "!", .p1 = "/current", .v1 = "!" },
		{ .name = "PUT to create without If-None-Match",
		    .method = "PUT", .path = "/users/carol", .ct = MJ,
		    .body = "{\"username\":\"carol\"}", .status = 428,
		    .slug = "precondition-required" },
		{ .name = "PUT with a non-star If-None-Match",
		    .method = "PUT", .path = "/users/alice", .ct = MJ,
		    .inm = "\"1\"", .body = "{\"username\":\"alice\"}",
		    .status = 428, .slug = "precondition-required" },
		{ .name = "PATCH without a precondition", .method = "PATCH",
		    .path = "/users/bob", .ct = MP, .body = "{}",
		    .status = 428, .slug = "precondition-required",
		    .p1 = "/accepted",
		    .v1 = "[\"If-Match\",\"If-None-Match: *\"]" },
		{ .name = "PATCH: If-None-Match: * is no precondition",
		    .method = "PATCH", .path = "/users/bob", .ct = MP,
		    .inm = "*", .body = "{}", .status = 428,
		    .slug = "precondition-required" },
		{ .name = "DELETE without If-Match", .method = "DELETE",
		    .path = "/users/bob", .status = 428,
		    .slug = "precondition-required" },
		{ .name = "DELETE: If-None-Match: * is no precondition",
		    .method = "DELETE", .path = "/users/bob", .inm = "*",
		    .status = 428, .slug = "precondition-required" },
		{ .name = "PUT: unparsable body is 400, not 428",
		    .method = "PUT", .path = "/users/alice", .ct = MJ,
		    .body = "{\"username\":", .status = 400,
		    .slug = "malformed-json" },
		{ .name = "PUT: array body is 400, not 428", .method = "PUT",
		    .path = "/users/alice", .ct = MJ, .body = "[]",
		    .status = 400, .slug = "not-an-object" },
		{ .name = "PATCH: duplicate member is 400, not 428",
		    .method = "PATCH", .path = "/users/bob", .ct = MP,
		    .body = "{\"email\":null,\"email\":null}", .status = 400,
		    .slug = "duplicate-member" },
		{ .name = "PUT: empty body is 400, not 428", .method = "PUT",
		    .path = "/users/carol", .ct = MJ, .body = "",
		    .status = 400, .slug = "malformed-json" },

		/* 7. If-Match / If-None-Match */
		{ .name = "PUT with a stale If-Match", .method = "PUT",
		    .path = "/users/alice", .ct = MJ, .im = "\"999\"",
		    .body = "{\"username\":\"alice\",\"roles\":[\"admin\"]}",
		    .status = 412, .slug = "precondition-failed",
		    .p1 = "/current_version", .v1 = "\"@alice\"",
		    .p2 = "/current/username", .v2 = "\"alice\"" },
		{ .name = "412 carries the whole current representation",
		    .method = "PATCH", .path = "/users/alice", .ct = MP,
		    .im = "\"999\"", .body = "{}", .status = 412,
		    .slug = "precondition-failed", .p1 = "/current/roles",
		    .v1 = "[\"admin\"]", .p2 = "/current/version",
		    .v2 = "\"@alice\"" },
		{ .name = "a weak If-Match never matches", .method = "PATCH",
		    .path = "/users/bob", .ct = MP, .im = "W/\"@bob\"",
		    .body = "{}", .status = 412,
		    .slug = "precondition-failed", .p1 = "/current_version",
		    .v1 = "\"@bob\"" },
		{ .name = "If-Match list without the version",
		    .method = "DELETE", .path = "/users/bob",
		    .im = "\"1000\", \"1001\"", .status = 412,
		    .slug = "precondition-failed", .p1 = "/current/username",
		    .v1 = "\"bob\"" },
		{ .name = "If-Match list with the version",
		    .method = "DELETE", .path = "/users/bob",
		    .im = "\"1000\", \"@bob\"", .status = 204 },
		{ .name = "412 before a bad body", .method = "PUT",
		    .path = "/users/alice", .ct = MJ, .im = "\"999\"",
		    .body = "{", .status = 412,
		    .slug = "precondition-failed" },
		{ .name = "412 before 422", .method = "PATCH",
		    .path = "/users/bob", .ct = MP, .im = "\"999\"",
		    .body = "{\"email\":\"nope\"}", .status = 412,
		    .slug = "precondition-failed" },
		{ .name = "If-Match on a missing user: 412 without current",
		    .method = "PUT", .path = "/users/carol", .ct = MJ,
		    .im = "\"1\"", .body = "{\"username\":\"carol\"}",
		    .status = 412, .slug = "precondition-failed",
		    .p1 = "/current", .v1 = "!", .p2 = "/current_version",
		    .v2 = "!" },
		{ .name = "If-Match: * on a missing user", .method = "PUT",
		    .path = "/users/carol", .ct = MJ, .im = "*",
		    .body = "{\"username\":\"carol\"}", .status = 412,
		    .slug = "precondition-failed" },
		{ .name = "If-None-Match: * on an existing user",
		    .method = "PUT", .path = "/users/bob", .ct = MJ,
		    .inm = "*", .body = "{\"username\":\"bob\"}",
		    .status = 412, .slug = "precondition-failed",
		    .p1 = "/current_version", .v1 = "\"@bob\"",
		    .p2 = "/current/email", .v2 = "\"bob@example.org\"" },
		{ .name = "PUT If-None-Match: * creates", .method = "PUT",
		    .path = "/users/NewBie", .ct = MJ, .inm = "*",
		    .body = "{\"username\":\"NewBie\"}", .status = 201,
		    .hname = "Location", .hvalue = "/users/newbie",
		    .p1 = "/username", .v1 = "\"NewBie\"" },
		{ .name = "PUT create: Content-Location", .method = "PUT",
		    .path = "/users/newbie", .ct = MJ, .inm = "*",
		    .body = "{\"username\":\"NEWBIE\"}", .status = 201,
		    .hname = "Content-Location", .hvalue = "/users/newbie",
		    .p1 = "/username", .v1 = "\"NEWBIE\"" },
		{ .name = "PUT If-Match: * updates", .method = "PUT",
		    .path = "/users/bob", .ct = MJ, .im = "*",
		    .body = "{\"username\":\"bob\",\"display_name\":\"B\"}",
		    .status = 200, .p1 = "/display_name", .v1 = "\"B\"",
		    .p2 = "/email", .v2 = "!" },
		{ .name = "GET If-None-Match match is 304", .method = "GET",
		    .path = "/users/alice", .inm = "\"@alice\"",
		    .status = 304, .hname = "ETag", .hvalue = "\"@alice\"" },
		{ .name = "304 has Content-Location", .method = "GET",
		    .path = "/users/ALICE", .inm = "\"@alice\"",
		    .status = 304, .hname = "Content-Location",
		    .hvalue = "/users/alice" },
		{ .name = "304 has Cache-Control", .method = "GET",
		    .path = "/users/alice", .inm = "\"@alice\"",
		    .status = 304, .hname = "Cache-Control",
		    .hvalue = "private, no-cache" },
		{ .name = "a weak tag matches If-None-Match", .method = "GET",
		    .path = "/users/alice", .inm = "W/\"@alice\"",
		    .status = 304, .hname = "ETag", .hvalue = "\"@alice\"" },
		{ .name = "If-None-Match list with the tag", .method = "HEAD",
		    .path = "/users/alice", .inm = "\"1000\", W/\"@alice\"",
		    .status = 304, .hname = "ETag", .hvalue = "\"@alice\"" },
		{ .name = "If-None-Match: * on GET", .method = "GET",
		    .path = "/users/alice", .inm = "*", .status = 304 },
		{ .name = "If-None-Match mismatch is 200", .method = "GET",
		    .path = "/users/alice", .inm = "\"1000\"", .status = 200,
		    .hname = "ETag", .hvalue = "\"@alice\"" },
		{ .name = "GET with a false If-Match", .method = "GET",
		    .path = "/users/alice", .im = "\"1000\"", .status = 412,
		    .slug = "precondition-failed" },

		/* 8. body version, inconsistent preconditions */
		{ .name = "PUT body version on a missing user",
		    .method = "PUT", .path = "/users/carol", .ct = MJ,
		    .body = "{\"username\":\"carol\",\"version\":\"5\"}",
		    .status = 409, .slug = "stale-version",
		    .p1 = "/current", .v1 = "null", .p2 = "/current_version",
		    .v2 = "null" },
		{ .name = "PUT stale body version", .method = "PUT",
		    .path = "/users/bob", .ct = MJ,
		    .body = "{\"username\":\"bob\",\"version\":\"999\"}",
		    .status = 409, .slug = "stale-version",
		    .p1 = "/current_version", .v1 = "\"@bob\"",
		    .p2 = "/current/username", .v2 = "\"bob\"" },
		{ .name = "PATCH stale body version", .method = "PATCH",
		    .path = "/users/bob", .ct = MP,
		    .body = "{\"version\":\"999\",\"display_name\":\"B\"}",
		    .status = 409, .slug = "stale-version",
		    .p1 = "/current_version", .v1 = "\"@bob\"" },
		{ .name = "body version is a precondition", .method = "PATCH",
		    .path = "/users/bob", .ct = MP,
		    .body = "{\"version\":\"@bob\",\"display_name\":\"B\"}",
		    .status = 200, .p1 = "/display_name", .v1 = "\"B\"" },
		{ .name = "If-Match and body version disagree",
		    .method = "PUT", .path = "/users/bob", .ct = MJ,
		    .im = "\"@bob\"",
		    .body = "{\"username\":\"bob\",\"version\":\"999\"}",
		    .status = 400, .slug = "inconsistent-precondition" },
		{ .name = "If-Match and body version agree", .method = "PATCH",
		    .path = "/users/bob", .ct = MP, .im = "\"@bob\"",
		    .body = "{\"version\":\"@bob\",\"display_name\":\"B\"}",
		    .status = 200 },
		{ .name = "422 before 409 stale-version", .method = "PATCH",
		    .path = "/users/bob", .ct = MP,
		    .body = "{\"version\":\"999\",\"email\":\"nope\"}",
		    .status = 422, .slug = "validation-failed",
		    .p1 = "/errors/0/pointer", .v1 = "\"/email\"" },
		{ .name = "body version must be a version string",
		    .method = "PATCH", .path = "/users/bob", .ct = MP,
		    .body = "{\"version\":@bob}", .status = 422,
		    .slug = "validation-failed", .p1 = "/errors/0/pointer",
		    .v1 = "\"/version\"" },
		{ .name = "body version with a leading zero", .method = "PATCH",
		    .path = "/users/bob", .ct = MP,
		    .body = "{\"version\":\"0@bob\"}", .status = 422,
		    .slug = "validation-failed", .p1 = "/errors/0/pointer",
		    .v1 = "\"/version\"" },

		/* 9. names */
		{ .name = "PUT name mismatch", .method = "PUT",
		    .path = "/users/alice", .ct = MJ, .im = "\"@alice\"",
		    .body = "{\"username\":\"bob\",\"roles\":[\"admin\"]}",
		    .status = 422, .slug = "name-mismatch",
		    .p1 = "/errors/0/pointer", .v1 = "\"/username\"" },
		{ .name = "PUT without a username", .method = "PUT",
		    .path = "/users/bob", .ct = MJ, .im = "\"@bob\"",
		    .body = "{\"email\":\"b@example.org\"}", .status = 422,
		    .slug = "validation-failed", .p1 = "/errors/0/pointer",
		    .v1 = "\"/username\"" },
		{ .name = "PUT case-only difference is no mismatch",
		    .method = "PUT", .path = "/users/bob", .ct = MJ,
		    .im = "\"@bob\"", .body = "{\"username\":\"BoB\"}",
		    .status = 200, .p1 = "/username", .v1 = "\"BoB\"",
		    .hname = "Content-Location", .hvalue = "/users/bob" },
		{ .name = "PATCH changing the username", .method = "PATCH",
		    .path = "/users/bob", .ct = MP, .im = "\"@bob\"",
		    .body = "{\"username\":\"robert\"}", .status = 422,
		    .slug = "name-mismatch", .p1 = "/errors/0/pointer",
		    .v1 = "\"/username\"" },
		{ .name = "PATCH removing the username", .method = "PATCH",
		    .path = "/users/bob", .ct = MP, .im = "\"@bob\"",
		    .body = "{\"username\":null}", .status = 422,
		    .slug = "validation-failed", .p1 = "/errors/0/pointer",
		    .v1 = "\"/username\"" },
		{ .name = "PATCH case-only change", .method = "PATCH",
		    .path = "/users/bob", .ct = MP, .im = "\"@bob\"",
		    .body = "{\"username\":\"BOB\"}", .status = 200,
		    .p1 = "/username", .v1 = "\"BOB\"",
		    .hname = "Content-Location", .hvalue = "/users/bob" },
		{ .name = "PATCH null removes a member", .method = "PATCH",
		    .path = "/users/alice", .ct = MP, .im = "\"@alice\"",
		    .body = "{\"email\":null}", .status = 200,
		    .p1 = "/email", .v1 = "!", .p2 = "/display_name",
		    .v2 = "\"Alice L.\"" },
		{ .name = "PATCH ignores read-only members", .method = "PATCH",
		    .path = "/users/bob", .ct = MP, .im = "\"@bob\"",
		    .body = "{\"created_at\":\"x\",\"updated_at\":5,"
		    "\"display_name\":\"B\"}", .status = 200,
		    .p1 = "/display_name", .v1 = "\"B\"" },

		/* 10. conflicts */
		{ .name = "last admin: PATCH roles", .method = "PATCH",
		    .path = "/users/alice", .ct = MP, .im = "\"@alice\"",
		    .body = "{\"roles\":[\"ops\"]}", .status = 409,
		    .slug = "business-rule-violation", .p1 = "/rule",
		    .v1 = "\"last-admin\"", .p2 = "/pointer",
		    .v2 = "\"/roles\"" },
		{ .name = "last admin: PATCH roles null", .method = "PATCH",
		    .path = "/users/alice", .ct = MP, .im = "\"@alice\"",
		    .body = "{\"roles\":null}", .status = 409,
		    .slug = "business-rule-violation", .p1 = "/rule",
		    .v1 = "\"last-admin\"" },
		{ .name = "last admin: PUT without roles", .method = "PUT",
		    .path = "/users/alice", .ct = MJ, .im = "\"@alice\"",
		    .body = "{\"username\":\"alice\"}", .status = 409,
		    .slug = "business-rule-violation", .p1 = "/rule",
		    .v1 = "\"last-admin\"", .p2 = "/pointer",
		    .v2 = "\"/roles\"" },
		{ .name = "last admin: DELETE", .method = "DELETE",
		    .path = "/users/alice", .im = "\"@alice\"", .status = 409,
		    .slug = "business-rule-violation", .p1 = "/rule",
		    .v1 = "\"last-admin\"" },
		{ .name = "email taken on PATCH", .method = "PATCH",
		    .path = "/users/bob", .ct = MP, .im = "\"@bob\"",
		    .body = "{\"email\":\"ALICE@example.org\"}", .status = 409,
		    .slug = "email-taken", .p1 = "/pointer",
		    .v1 = "\"/email\"", .p2 = "/current", .v2 = "!" },
		{ .name = "email taken on POST", .method = "POST",
		    .path = "/users", .ct = MJ,
		    .body = "{\"username\":\"carol\",\"email\":"
		    "\"Bob@Example.ORG\"}", .status = 409,
		    .slug = "email-taken", .p1 = "/pointer",
		    .v1 = "\"/email\"", .p2 = "/existing", .v2 = "!" },
		{ .name = "email taken on PUT create", .method = "PUT",
		    .path = "/users/carol", .ct = MJ, .inm = "*",
		    .body = "{\"username\":\"carol\",\"email\":"
		    "\"bob@example.org\"}", .status = 409,
		    .slug = "email-taken", .p1 = "/pointer",
		    .v1 = "\"/email\"" },
		{ .name = "own email is no conflict", .method = "PATCH",
		    .path = "/users/bob", .ct = MP, .im = "\"@bob\"",
		    .body = "{\"email\":\"BOB@example.org\"}", .status = 200,
		    .p1 = "/email", .v1 = "\"BOB@example.org\"" },
		{ .name = "user exists", .method = "POST", .path = "/users",
		    .ct = MJ, .body = "{\"username\":\"ALICE\"}",
		    .status = 409, .slug = "user-exists",
		    .p1 = "/existing", .v1 = "\"/users/alice\"",
		    .p2 = "/existing_version", .v2 = "\"@alice\"" },
		{ .name = "user exists: pointer", .method = "POST",
		    .path = "/users", .ct = MJ, .body = "{\"username\":\"Bob\"}",
		    .status = 409, .slug = "user-exists", .p1 = "/pointer",
		    .v1 = "\"/username\"", .p2 = "/error",
		    .v2 = "\"User already exists.\"" },
		{ .name = "422 before 409 user-exists", .method = "POST",
		    .path = "/users", .ct = MJ,
		    .body = "{\"username\":\"bob\",\"email\":\"x\"}",
		    .status = 422, .slug = "validation-failed" },

		/* other routes */
		{ .name = "healthz", .method = "GET", .path = "/healthz",
		    .status = 200, .p1 = "", .v1 = "" },
		{ .name = "healthz body", .method = "GET", .path = "/healthz",
		    .status = 200, .p1 = "/status", .v1 = "\"ok\"" },
		{ .name = "healthz: 405", .method = "POST", .path = "/healthz",
		    .status = 405, .slug = "method-not-allowed",
		    .hname = "Allow", .hvalue = "GET, HEAD, OPTIONS" },
		{ .name = "GET user: Cache-Control", .method = "GET",
		    .path = "/users/alice", .status = 200,
		    .hname = "Cache-Control", .hvalue = "private, no-cache" },
		{ .name = "GET user: ETag", .method = "GET",
		    .path = "/users/Alice", .status = 200, .hname = "ETag",
		    .hvalue = "\"@alice\"", .p1 = "/version",
		    .v1 = "\"@alice\"" },
		{ .name = "HEAD user: ETag", .method = "HEAD",
		    .path = "/users/bob", .status = 200, .hname = "ETag",
		    .hvalue = "\"@bob\"" },
	};

	return cr_make_param_array(struct flow_case, cases,
	    sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct flow_case *c, users, order_of_checks)
{
	run_flow_case(c);
}

/* ---- POST validation ---------------------------------------------------- */

struct invalid_case {
	char body[240];
	char slug[24];		/* validation-failed or unknown-member */
	char pointer[24];	/* of errors[0] */
};

ParameterizedTestParameters(users, post_rejects_invalid_members)
{
	static struct invalid_case cases[] = {
		{ "{}", "validation-failed", "/username" },
		{ "{\"email\":\"c@example.org\"}", "validation-failed",
		    "/username" },
		{ "{\"username\":\"\"}", "validation-failed", "/username" },
		{ "{\"username\":\"-carol\"}", "validation-failed",
		    "/username" },
		{ "{\"username\":\".carol\"}", "validation-failed",
		    "/username" },
		{ "{\"username\":\"_carol\"}", "validation-failed",
		    "/username" },
		{ "{\"username\":\"ca rol\"}", "validation-failed",
		    "/username" },
		{ "{\"username\":\"carol!\"}", "validation-failed",
		    "/username" },
		{ "{\"username\":\"ca/rol\"}", "validation-failed",
		    "/username" },
		{ "{\"username\":\"car\\u00e9l\"}", "validation-failed",
		    "/username" },
		{ "{\"username\":\"carol\\n\"}", "validation-failed",
		    "/username" },
		{ "{\"username\":\"ca\\u0000rol\"}", "validation-failed",
		    "/username" },
		{ "{\"username\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		    "aaaaaaaaaaaaaaaaaaa\"}", "validation-failed",
		    "/username" },	/* 65 */
		{ "{\"username\":5}", "validation-failed", "/username" },
		{ "{\"username\":null}", "validation-failed", "/username" },
		{ "{\"username\":true}", "validation-failed", "/username" },
		{ "{\"username\":[\"carol\"]}", "validation-failed",
		    "/username" },
		{ "{\"username\":{\"a\":\"carol\"}}", "validation-failed",
		    "/username" },
		{ "{\"username\":123456789012345678901234567890}",
		    "validation-failed", "/username" },
		{ "{\"username\":1e400}", "validation-failed", "/username" },
		{ "{\"username\":\"carol\",\"email\":\"\"}",
		    "validation-failed", "/email" },
		{ "{\"username\":\"carol\",\"email\":\"carol\"}",
		    "validation-failed", "/email" },
		{ "{\"username\":\"carol\",\"email\":\"a@@b\"}",
		    "validation-failed", "/email" },
		{ "{\"username\":\"carol\",\"email\":\"a@b@c\"}",
		    "validation-failed", "/email" },
		{ "{\"username\":\"carol\",\"email\":\"@b\"}",
		    "validation-failed", "/email" },
		{ "{\"username\":\"carol\",\"email\":\"a@\"}",
		    "validation-failed", "/email" },
		{ "{\"username\":\"carol\",\"email\":\"a b@c\"}",
		    "validation-failed", "/email" },
		{ "{\"username\":\"carol\",\"email\":\"a@b\\u0001\"}",
		    "validation-failed", "/email" },
		{ "{\"username\":\"carol\",\"email\":\"a@b\\u007f\"}",
		    "validation-failed", "/email" },
		{ "{\"username\":\"carol\",\"email\":\"a\\u0000@b\"}",
		    "validation-failed", "/email" },
		{ "{\"username\":\"carol\",\"email\":5}",
		    "validation-failed", "/email" },
		{ "{\"username\":\"carol\",\"email\":"
		    "123456789012345678901234567890}", "validation-failed",
		    "/email" },
		{ "{\"username\":\"carol\",\"email\":{\"x\":\"a@b\"}}",
		    "validation-failed", "/email" },
		{ "{\"username\":\"carol\",\"email\":[\"a@b\"]}",
		    "validation-failed", "/email" },
		{ "{\"username\":\"carol\",\"display_name\":\"\"}",
		    "validation-failed", "/display_name" },
		{ "{\"username\":\"carol\",\"display_name\":\"a\\u0001b\"}",
		    "validation-failed", "/display_name" },
		{ "{\"username\":\"carol\",\"display_name\":\"a\\nb\"}",
		    "validation-failed", "/display_name" },
		{ "{\"username\":\"carol\",\"display_name\":\"a\\tb\"}",
		    "validation-failed", "/display_name" },
		{ "{\"username\":\"carol\",\"display_name\":\"a\\u007fb\"}",
		    "validation-failed", "/display_name" },
		{ "{\"username\":\"carol\",\"display_name\":\"a\\u0000b\"}",
		    "validation-failed", "/display_name" },
		{ "{\"username\":\"carol\",\"display_name\":false}",
		    "validation-failed", "/display_name" },
		{ "{\"username\":\"carol\",\"display_name\":{}}",
		    "validation-failed", "/display_name" },
		{ "{\"username\":\"carol\",\"roles\":\"admin\"}",
		    "validation-failed", "/roles" },
		{ "{\"username\":\"carol\",\"roles\":{\"0\":\"ops\"}}",
		    "validation-failed", "/roles" },
		{ "{\"username\":\"carol\",\"roles\":[\"Ops\"]}",
		    "validation-failed", "/roles/0" },
		{ "{\"username\":\"carol\",\"roles\":[\"1ops\"]}",
		    "validation-failed", "/roles/0" },
		{ "{\"username\":\"carol\",\"roles\":[\"o ps\"]}",
		    "validation-failed", "/roles/0" },
		{ "{\"username\":\"carol\",\"roles\":[\"\"]}",
		    "validation-failed", "/roles/0" },
		{ "{\"username\":\"carol\",\"roles\":[5]}",
		    "validation-failed", "/roles/0" },
		{ "{\"username\":\"carol\",\"roles\":[null]}",
		    "validation-failed", "/roles/0" },
		{ "{\"username\":\"carol\",\"roles\":[[\"ops\"]]}",
		    "validation-failed", "/roles/0" },
		{ "{\"username\":\"carol\",\"roles\":[\"ops\",\"BAD\"]}",
		    "validation-failed", "/roles/1" },
		{ "{\"username\":\"carol\",\"roles\":[\"abcdefghijabcdefghij"
		    "abcdefghijabc\"]}", "validation-failed",
		    "/roles/0" },	/* 33 */
		{ "{\"username\":\"carol\",\"roles\":[\"ops\",\"ops\"]}",
		    "validation-failed", "/roles" },
		{ "{\"username\":\"carol\",\"roles\":[\"a\",\"b\",\"c\",\"d\","
		    "\"e\",\"f\",\"g\",\"h\",\"i\",\"j\",\"k\",\"l\",\"m\","
		    "\"n\",\"o\",\"p\",\"q\"]}", "validation-failed",
		    "/roles" },	/* 17 */
		{ "{\"username\":\"carol\",\"version\":\"1\"}",
		    "validation-failed", "/version" },
		{ "{\"username\":\"carol\",\"nickname\":\"c\"}",
		    "unknown-member", "/nickname" },
		{ "{\"username\":\"carol\",\"a/b\":1}", "unknown-member",
		    "/a~1b" },
		{ "{\"username\":\"carol\",\"a~b\":1}", "unknown-member",
		    "/a~0b" },
		{ "{\"username\":\"carol\",\"Email\":\"c@example.org\"}",
		    "unknown-member", "/Email" },
		/* an invalid member outranks an unknown one */
		{ "{\"nickname\":\"c\",\"username\":\"-\"}",
		    "validation-failed", "/username" },
	};

	return cr_make_param_array(struct invalid_case, cases,
	    sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct invalid_case *c, users, post_rejects_invalid_members)
{
	struct http_response resp;
	struct json_object *o, *errors, *e, *v;
	int64_t before = revision();
	size_t i;
	int found = 0;

	send_rq(&(struct rq){ .method = "POST", .path = "/users", .ct = MJ,
	    .body = c->body }, &resp);
	assert_problem(&resp, 422, c->slug);
	o = body_json(&resp);
	cr_assert(json_object_object_get_ex(o, "errors", &errors), "[%s]",
	    resp.body);
	cr_assert(json_object_is_type(errors, json_type_array));
	cr_assert(gt(sz, json_object_array_length(errors), 0));
	for (i = 0; i < json_object_array_length(errors); i++) {
		e = json_object_array_get_idx(errors, i);
		cr_assert(json_object_object_get_ex(e, "pointer", &v));
		cr_assert(json_object_is_type(v, json_type_string));
		if (strcmp(json_object_get_string(v), c->pointer) == 0)
			found = 1;
		cr_assert(json_object_object_get_ex(e, "detail", &v));
		cr_assert(json_object_is_type(v, json_type_string));
	}
	cr_assert(found, "no error at %s in [%s]", c->pointer, resp.body);
	json_object_put(o);
	http_response_release(&resp);
	cr_assert(eq(i64, revision(), before), "a 422 wrote");
}

struct parse_case {
	char body[96];
	char slug[24];
};

ParameterizedTestParameters(users, post_rejects_unparsable_bodies)
{
	static struct parse_case cases[] = {
		{ "", "malformed-json" },
		{ " ", "malformed-json" },
		{ "{", "malformed-json" },
		{ "{\"username\":\"carol\"", "malformed-json" },
		{ "{\"username\":\"carol\"} x", "malformed-json" },
		{ "{\"username\":\"carol\",}", "malformed-json" },
		{ "/* c */{\"username\":\"carol\"}", "malformed-json" },
		{ "{'username':'carol'}", "malformed-json" },
		{ "{\"username\":\"\xff\"}", "malformed-json" },
		{ "{\"a\":NaN}", "malformed-json" },
		{ "{\"a\":[[[[[[[[1]]]]]]]]}", "malformed-json" },	/* 9 */
		{ "[]", "not-an-object" },
		{ "[{\"username\":\"carol\"}]", "not-an-object" },
		{ "\"carol\"", "not-an-object" },
		{ "null", "not-an-object" },
		{ "5", "not-an-object" },
		{ "{\"username\":\"carol\",\"username\":\"carol\"}",
		    "duplicate-member" },
		{ "{\"username\":\"carol\",\"user\\u006eame\":\"x\"}",
		    "duplicate-member" },
		{ "{\"username\":\"carol\",\"x\":{\"a\":1,\"a\":2}}",
		    "duplicate-member" },
	};

	return cr_make_param_array(struct parse_case, cases,
	    sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct parse_case *c, users, post_rejects_unparsable_bodies)
{
	struct http_response resp;

	send_rq(&(struct rq){ .method = "POST", .path = "/users", .ct = MJ,
	    .body = c->body }, &resp);
	assert_problem(&resp, 400, c->slug);
	http_response_release(&resp);
}

Test(users, nesting_of_eight_is_read_nine_is_malformed)
{
	struct http_response resp;

	/* 8 levels: the object and 7 arrays; the member is then unknown. */
	send_rq(&(struct rq){ .method = "POST", .path = "/users", .ct = MJ,
	    .body = "{\"username\":\"carol\",\"a\":[[[[[[[1]]]]]]]}" },
	    &resp);
	assert_problem(&resp, 422, "unknown-member");
	assert_body_member(&resp, "/errors/0/pointer", "\"/a\"");
	http_response_release(&resp);
	send_rq(&(struct rq){ .method = "POST", .path = "/users", .ct = MJ,
	    .body = "{\"username\":\"carol\",\"a\":[[[[[[[[1]]]]]]]]}" },
	    &resp);
	assert_problem(&resp, 400, "malformed-json");
	http_response_release(&resp);
}

Test(users, truncated_body_is_malformed_json)
{
	struct http_response resp;

	send_rq(&(struct rq){ .method = "POST", .path = "/users", .ct = MJ,
	    .body = "{\"username\":\"carol\"}",
	    .state = HTTP_BODY_TRUNCATED }, &resp);
	assert_problem(&resp, 400, "malformed-json");
	http_response_release(&resp);
}

Test(users, errors_list_every_bad_member)
{
	struct http_response resp;
	struct json_object *o, *errors;

	send_rq(&(struct rq){ .method = "POST", .path = "/users", .ct = MJ,
	    .body = "{\"username\":\"-x\",\"email\":\"bad\",\"roles\":\"x\","
	    "\"display_name\":\"\"}" }, &resp);
	assert_problem(&resp, 422, "validation-failed");
	o = body_json(&resp);
	cr_assert(json_object_object_get_ex(o, "errors", &errors));
	cr_assert(eq(sz, json_object_array_length(errors), 4), "[%s]",
	    resp.body);
	assert_member(o, "/errors/0/pointer", "\"/username\"", resp.body);
	assert_member(o, "/errors/1/pointer", "\"/email\"", resp.body);
	assert_member(o, "/errors/2/pointer", "\"/roles\"", resp.body);
	assert_member(o, "/errors/3/pointer", "\"/display_name\"", resp.body);
	json_object_put(o);
	http_response_release(&resp);
}

Test(users, errors_list_is_capped)
{
	struct http_response resp;
	struct json_object *o, *errors;
	char body[2048];
	size_t n = 0;
	int i;

	n += (size_t)snprintf(body + n, sizeof(body) - n,
	    "{\"username\":\"carol\"");
	for (i = 0; i < BODY_ERRORS_MAX + 8; i++)
		n += (size_t)snprintf(body + n, sizeof(body) - n,
		    ",\"m%d\":1", i);
	snprintf(body + n, sizeof(body) - n, "}");
	send_rq(&(struct rq){ .method = "POST", .path = "/users", .ct = MJ,
	    .body = body }, &resp);
	assert_problem(&resp, 422, "unknown-member");
	o = body_json(&resp);
	cr_assert(json_object_object_get_ex(o, "errors", &errors));
	cr_assert(eq(sz, json_object_array_length(errors), BODY_ERRORS_MAX));
	json_object_put(o);
	http_response_release(&resp);
}

/* Field limits: at the limit accepted, one past refused. */
static void
post_with(const char *member, const char *value, int want)
{
	struct http_response resp;
	char *body = malloc(strlen(value) + 128);

	cr_assert(not(eq(ptr, body, NULL)));
	sprintf(body, "{\"username\":\"carol\",\"%s\":%s}", member, value);
	send_rq(&(struct rq){ .method = "POST", .path = "/users", .ct = MJ,
	    .body = body }, &resp);
	cr_assert(eq(int, resp.status, want), "%s: [%s]", member,
	    resp.body != NULL ? resp.body : "");
	http_response_release(&resp);
	free(body);
}

/* A JSON string of n bytes: pre, then fill, then post. */
static char *
json_str(const char *pre, char fill, size_t n, const char *post)
{
	char *s = malloc(n + 8);
	size_t o = 0, i;

	cr_assert(not(eq(ptr, s, NULL)));
	s[o++] = '"';
	o += (size_t)sprintf(s + o, "%s", pre);
	for (i = strlen(pre) + strlen(post); i < n; i++)
		s[o++] = fill;
	o += (size_t)sprintf(s + o, "%s", post);
	s[o++] = '"';
	s[o] = '\0';
	return s;
}

Test(users, email_limit_is_254_bytes)
{
	char *at = json_str("", 'e', USER_EMAIL_MAX, "@example.org");
	char *past = json_str("", 'e', USER_EMAIL_MAX + 1, "@example.org");

	cr_assert(eq(int, USER_EMAIL_MAX, 254));
	post_with("email", past, 422);
	post_with("email", at, 201);
	free(at);
	free(past);
}

Test(users, display_name_limit_is_128_bytes)
{
	/* é is two bytes: the limit counts bytes, not characters. */
	char *at = json_str("\xc3\xa9", 'd', USER_DISPLAY_NAME_MAX, "");
	char *past = json_str("\xc3\xa9", 'd', USER_DISPLAY_NAME_MAX + 1, "");

	cr_assert(eq(int, USER_DISPLAY_NAME_MAX, 128));
	post_with("display_name", past, 422);
	post_with("display_name", at, 201);
	free(at);
	free(past);
}

Test(users, username_limit_is_64_bytes)
{
	struct http_response resp;
	char body[160], name[USER_NAME_MAX + 2];

	memset(name, 'u', sizeof(name));
	name[USER_NAME_MAX] = '\0';
	snprintf(body, sizeof(body), "{\"username\":\"%s\"}", name);
	send_rq(&(struct rq){ .method = "POST", .path = "/users", .ct = MJ,
	    .body = body }, &resp);
	cr_assert(eq(int, resp.status, 201), "[%s]", resp.body);
	http_response_release(&resp);
}

Test(users, sixteen_roles_of_32_bytes_are_accepted)
{
	char roles[1024];
	size_t n = 0;
	int i;

	n += (size_t)snprintf(roles + n, sizeof(roles) - n, "[");
	for (i = 0; i < USER_ROLES_MAX; i++)
		n += (size_t)snprintf(roles + n, sizeof(roles) - n,
		    "%s\"r%c-%s\"", i > 0 ? "," : "", 'a' + i,
		    "abcdefghijabcdefghijabcdefghi");	/* 32 bytes */
	snprintf(roles + n, sizeof(roles) - n, "]");
	post_with("roles", roles, 201);
}

/* ---- representations ---------------------------------------------------- */

Test(users, post_creates_with_the_stored_representation)
{
	static const char *const order[] = {
		"username", "email", "display_name", "roles", "version",
		"created_at", "updated_at"
	};
	struct http_response resp;
	struct json_object *o, *v;
	char want[64];
	regex_t re;
	size_t i = 0;
	int64_t rev;

	send_rq(&(struct rq){ .method = "POST", .path = "/users", .ct = MJ,
	    .body = "{\"roles\":[\"ops\",\"dev\"],\"display_name\":\"Carol "
	    "\xc3\xa9\",\"email\":\"Carol@Example.org\",\"username\":"
	    "\"Carol\",\"created_at\":\"1999-01-01T00:00:00Z\"}" }, &resp);
	cr_assert(eq(int, resp.status, 201), "[%s]", resp.body);
	cr_assert(eq(str, (char *)resp.content_type, MJ));
	rev = revision();
	cr_assert(eq(i64, rev, v_bob + 1));
	assert_header(&resp, "Location", "/users/carol");
	assert_header(&resp, "Content-Location", "/users/carol");
	assert_header(&resp, "ETag", etag(rev, want));
	o = body_json(&resp);
	cr_assert(eq(int, json_object_object_length(o), 7), "[%s]", resp.body);
	json_object_object_foreach(o, key, val) {
		(void)val;
		cr_assert(eq(str, key, (char *)order[i]), "[%s]", resp.body);
		i++;
	}
	assert_member(o, "/username", "\"Carol\"", resp.body);
	assert_member(o, "/email", "\"Carol@Example.org\"", resp.body);
	assert_member(o, "/display_name", "\"Carol \xc3\xa9\"", resp.body);
	assert_member(o, "/roles", "[\"dev\",\"ops\"]", resp.body);
	snprintf(want, sizeof(want), "\"%lld\"", (long long)rev);
	assert_member(o, "/version", want, resp.body);
	cr_assert(eq(int, regcomp(&re, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T"
	    "[0-9]{2}:[0-9]{2}:[0-9]{2}Z$", REG_EXTENDED | REG_NOSUB), 0));
	cr_assert(json_object_object_get_ex(o, "created_at", &v));
	cr_assert(eq(int, regexec(&re, json_object_get_string(v), 0, NULL, 0),
	    0));
	cr_assert(not(eq(str, (char *)json_object_get_string(v),
	    "1999-01-01T00:00:00Z")), "created_at taken from the body");
	regfree(&re);
	json_object_put(o);
	http_response_release(&resp);
}

Test(users, minimal_representation_leaves_out_unset_members)
{
	struct http_response resp;

	send_rq(&(struct rq){ .method = "POST", .path = "/users", .ct = MJ,
	    .body = "{\"username\":\"dave\",\"email\":null}" }, &resp);
	cr_assert(eq(int, resp.status, 201), "[%s]", resp.body);
	assert_body_member(&resp, "/email", "!");
	assert_body_member(&resp, "/display_name", "!");
	assert_body_member(&resp, "/roles", "[]");
	http_response_release(&resp);
	get("/users/DAVE", &resp);
	cr_assert(eq(int, resp.status, 200));
	assert_header(&resp, "Content-Location", "/users/dave");
	assert_body_member(&resp, "/username", "\"dave\"");
	http_response_release(&resp);
}

Test(users, get_answers_the_representation_and_head_the_same_headers)
{
	struct http_response g, h;
	char buf[32];

	get("/users/alice", &g);
	cr_assert(eq(int, g.status, 200));
	cr_assert(eq(str, (char *)g.content_type, MJ));
	assert_header(&g, "ETag", etag(v_alice, buf));
	assert_header(&g, "Content-Location", "/users/alice");
	assert_header(&g, "Cache-Control", "private, no-cache");
	assert_body_member(&g, "/email", "\"alice@example.org\"");
	assert_body_member(&g, "/display_name", "\"Alice L.\"");
	assert_body_member(&g, "/roles", "[\"admin\"]");
	send_rq(&(struct rq){ .method = "HEAD", .path = "/users/alice" }, &h);
	cr_assert(eq(int, h.status, 200));
	assert_header(&h, "ETag", etag(v_alice, buf));
	assert_header(&h, "Content-Location", "/users/alice");
	assert_header(&h, "Cache-Control", "private, no-cache");
	/* HEAD announces GET's length; http.c leaves the body out. */
	cr_assert(eq(sz, h.body_len, g.body_len));
	http_response_release(&g);
	http_response_release(&h);
}

Test(users, not_modified_has_no_body)
{
	struct http_response resp;
	char buf[32];

	send_rq(&(struct rq){ .method = "GET", .path = "/users/alice",
	    .inm = etag(v_alice, buf) }, &resp);
	cr_assert(eq(int, resp.status, 304));
	cr_assert(eq(ptr, resp.body, NULL));
	cr_assert(eq(sz, resp.body_len, 0));
	assert_header(&resp, "ETag", buf);
	assert_header(&resp, "Content-Location", "/users/alice");
	assert_header(&resp, "Cache-Control", "private, no-cache");
	http_response_release(&resp);
}

/* ---- writes in sequence ------------------------------------------------- */

Test(users, delete_needs_if_match_then_is_gone)
{
	struct http_response resp;
	char buf[32];
	int64_t v2;

	send_rq(&(struct rq){ .method = "DELETE", .path = "/users/bob" },
	    &resp);
	assert_problem(&resp, 428, "precondition-required");
	http_response_release(&resp);

	send_rq(&(struct rq){ .method = "DELETE", .path = "/users/bob",
	    .im = "\"999\"" }, &resp);
	assert_problem(&resp, 412, "precondition-failed");
	assert_body_member(&resp, "/current_version",
	    (snprintf(buf, sizeof(buf), "\"%lld\"", (long long)v_bob), buf));
	http_response_release(&resp);

	send_rq(&(struct rq){ .method = "DELETE", .path = "/users/BOB",
	    .im = etag(v_bob, buf) }, &resp);
	cr_assert(eq(int, resp.status, 204), "[%s]", resp.body);
	cr_assert(eq(ptr, resp.body, NULL));
	http_response_release(&resp);

	/* A retried delete, same If-Match: 404. */
	send_rq(&(struct rq){ .method = "DELETE", .path = "/users/bob",
	    .im = etag(v_bob, buf) }, &resp);
	assert_problem(&resp, 404, "user-not-found");
	http_response_release(&resp);
	get("/users/bob", &resp);
	assert_problem(&resp, 404, "user-not-found");
	http_response_release(&resp);

	/* Created again: a new version, never the old ETag. */
	send_rq(&(struct rq){ .method = "POST", .path = "/users", .ct = MJ,
	    .body = "{\"username\":\"bob\",\"email\":\"bob@example.org\"}" },
	    &resp);
	cr_assert(eq(int, resp.status, 201), "[%s]", resp.body);
	v2 = revision();
	cr_assert(gt(i64, v2, v_bob + 1));
	assert_header(&resp, "ETag", etag(v2, buf));
	http_response_release(&resp);
}

Test(users, delete_advances_the_revision)
{
	struct http_response resp;
	char buf[32];
	int64_t before = revision();

	send_rq(&(struct rq){ .method = "DELETE", .path = "/users/bob",
	    .im = etag(v_bob, buf) }, &resp);
	cr_assert(eq(int, resp.status, 204));
	http_response_release(&resp);
	cr_assert(eq(i64, revision(), before + 1));
}

Test(users, no_effective_change_keeps_etag_and_version)
{
	struct http_response resp;
	char buf[32];
	int64_t before = revision();

	/* PUT with what is stored (timestamps in a body are ignored). */
	send_rq(&(struct rq){ .method = "PUT", .path = "/users/alice",
	    .ct = MJ, .im = etag(v_alice, buf),
	    .body = "{\"username\":\"alice\",\"email\":\"alice@example.org\","
	    "\"display_name\":\"Alice L.\",\"roles\":[\"admin\"],"
	    "\"created_at\":\"2000-01-01T00:00:00Z\"}" }, &resp);
	cr_assert(eq(int, resp.status, 200), "[%s]", resp.body);
	assert_header(&resp, "ETag", etag(v_alice, buf));
	assert_body_member(&resp, "/version",
	    (snprintf(buf, sizeof(buf), "\"%lld\"", (long long)v_alice), buf));
	http_response_release(&resp);
	cr_assert(eq(i64, revision(), before));

	/* PATCH with nothing, or with the values already there. */
	send_rq(&(struct rq){ .method = "PATCH", .path = "/users/bob",
	    .ct = MP, .im = etag(v_bob, buf), .body = "{}" }, &resp);
	cr_assert(eq(int, resp.status, 200), "[%s]", resp.body);
	assert_header(&resp, "ETag", etag(v_bob, buf));
	http_response_release(&resp);
	send_rq(&(struct rq){ .method = "PATCH", .path = "/users/bob",
	    .ct = MP, .im = etag(v_bob, buf),
	    .body = "{\"roles\":null,\"display_name\":null,"
	    "\"email\":\"bob@example.org\",\"username\":\"bob\"}" }, &resp);
	cr_assert(eq(int, resp.status, 200), "[%s]", resp.body);
	assert_header(&resp, "ETag", etag(v_bob, buf));
	http_response_release(&resp);
	cr_assert(eq(i64, revision(), before));

	/* A body version equal to the current one is no change either. */
	snprintf(buf, sizeof(buf), "{\"version\":\"%lld\"}",
	    (long long)v_bob);
	send_rq(&(struct rq){ .method = "PATCH", .path = "/users/bob",
	    .ct = MP, .body = buf }, &resp);
	cr_assert(eq(int, resp.status, 200), "[%s]", resp.body);
	http_response_release(&resp);
	cr_assert(eq(i64, revision(), before));
}

Test(users, update_gives_a_new_etag_and_the_old_one_fails)
{
	struct http_response resp;
	char old[32], cur[32];
	int64_t v;

	send_rq(&(struct rq){ .method = "PATCH", .path = "/users/bob",
	    .ct = MP, .im = etag(v_bob, old),
	    .body = "{\"display_name\":\"Bobby\"}" }, &resp);
	cr_assert(eq(int, resp.status, 200), "[%s]", resp.body);
	v = revision();
	cr_assert(eq(i64, v, v_bob + 1));
	assert_header(&resp, "ETag", etag(v, cur));
	assert_header(&resp, "Content-Location", "/users/bob");
	assert_body_member(&resp, "/display_name", "\"Bobby\"");
	http_response_release(&resp);

	send_rq(&(struct rq){ .method = "PATCH", .path = "/users/bob",
	    .ct = MP, .im = old, .body = "{\"display_name\":\"Rob\"}" },
	    &resp);
	assert_problem(&resp, 412, "precondition-failed");
	assert_body_member(&resp, "/current_version",
	    (snprintf(cur, sizeof(cur), "\"%lld\"", (long long)v), cur));
	assert_body_member(&resp, "/current/display_name", "\"Bobby\"");
	http_response_release(&resp);

	/* And the 304 follows the new tag. */
	send_rq(&(struct rq){ .method = "GET", .path = "/users/bob",
	    .inm = old }, &resp);
	cr_assert(eq(int, resp.status, 200));
	http_response_release(&resp);
}

Test(users, put_replaces_every_writable_member)
{
	struct http_response resp;
	char buf[32];

	send_rq(&(struct rq){ .method = "PUT", .path = "/users/bob",
	    .ct = MJ, .im = etag(v_bob, buf),
	    .body = "{\"username\":\"bob\",\"roles\":[\"ops\"]}" }, &resp);
	cr_assert(eq(int, resp.status, 200), "[%s]", resp.body);
	assert_body_member(&resp, "/email", "!");
	assert_body_member(&resp, "/roles", "[\"ops\"]");
	http_response_release(&resp);
}

Test(users, last_admin_rule_lifts_with_a_second_admin)
{
	struct http_response resp;
	char buf[32];

	send_rq(&(struct rq){ .method = "PATCH", .path = "/users/bob",
	    .ct = MP, .im = etag(v_bob, buf),
	    .body = "{\"roles\":[\"admin\"]}" }, &resp);
	cr_assert(eq(int, resp.status, 200), "[%s]", resp.body);
	http_response_release(&resp);
	send_rq(&(struct rq){ .method = "DELETE", .path = "/users/alice",
	    .im = etag(v_alice, buf) }, &resp);
	cr_assert(eq(int, resp.status, 204), "[%s]", resp.body);
	http_response_release(&resp);
	/* bob is now the last admin. */
	send_rq(&(struct rq){ .method = "PATCH", .path = "/users/bob",
	    .ct = MP, .im = "*", .body = "{\"roles\":[]}" }, &resp);
	assert_problem(&resp, 409, "business-rule-violation");
	assert_body_member(&resp, "/rule", "\"last-admin\"");
	http_response_release(&resp);
}

Test(users, require_preconditions_off_allows_blind_writes)
{
	struct http_response resp;

	cfg.require_preconditions = 0;
	send_rq(&(struct rq){ .method = "PATCH", .path = "/users/bob",
	    .ct = MP, .body = "{\"display_name\":\"B\"}" }, &resp);
	cr_assert(eq(int, resp.status, 200), "[%s]", resp.body);
	http_response_release(&resp);
	send_rq(&(struct rq){ .method = "PUT", .path = "/users/carol",
	    .ct = MJ, .body = "{\"username\":\"carol\"}" }, &resp);
	cr_assert(eq(int, resp.status, 201), "[%s]", resp.body);
	assert_header(&resp, "Location", "/users/carol");
	http_response_release(&resp);
}

/* ---- base path ---------------------------------------------------------- */

Test(users, base_path_prefixes_every_uri)
{
	struct http_response resp;

	snprintf(cfg.base_path, sizeof(cfg.base_path), "/api/");
	get("/users/alice", &resp);
	assert_problem(&resp, 404, "not-found");	/* type /api/problems */
	assert_body_member(&resp, "/type", "\"/api/problems/not-found\"");
	http_response_release(&resp);

	get("/api/users/ALICE", &resp);
	cr_assert(eq(int, resp.status, 200));
	assert_header(&resp, "Content-Location", "/api/users/alice");
	http_response_release(&resp);

	send_rq(&(struct rq){ .method = "POST", .path = "/api/users",
	    .ct = MJ, .body = "{\"username\":\"Carol\"}" }, &resp);
	cr_assert(eq(int, resp.status, 201), "[%s]", resp.body);
	assert_header(&resp, "Location", "/api/users/carol");
	http_response_release(&resp);

	send_rq(&(struct rq){ .method = "POST", .path = "/api/users",
	    .ct = MJ, .body = "{\"username\":\"alice\"}" }, &resp);
	assert_problem(&resp, 409, "user-exists");
	assert_body_member(&resp, "/existing", "\"/api/users/alice\"");
	http_response_release(&resp);

	send_rq(&(struct rq){ .method = "GET", .path = "/api/users",
	    .query = "limit=1" }, &resp);
	cr_assert(eq(int, resp.status, 200));
	assert_header(&resp, "Link",
	    "</api/users?limit=1&cursor=uYWxpY2U>; rel=\"next\"");
	http_response_release(&resp);

	get("/api/healthz", &resp);
	cr_assert(eq(int, resp.status, 200));
	http_response_release(&resp);
	get("/healthz", &resp);
	assert_problem(&resp, 404, "not-found");
	http_response_release(&resp);
}

/* ---- the list ----------------------------------------------------------- */

/* Seeds more users: alfred alice alicia bob carol dave erin. */
static void
seed_list(void)
{
	add_user("Alicia", "", "", NULL, NULL);
	add_user("carol", "", "", NULL, NULL);
	add_user("alfred", "", "", NULL, NULL);
	add_user("Erin", "", "", NULL, NULL);
	add_user("dave", "", "", NULL, NULL);
}

/* Returns the usernames of a page, comma-joined, in buf. */
static void
page_names(const struct http_response *resp, char *buf, size_t size)
{
	struct json_object *o = body_json(resp), *items, *u, *n;
	size_t i, off = 0;

	buf[0] = '\0';
	cr_assert(json_object_object_get_ex(o, "items", &items));
	cr_assert(json_object_is_type(items, json_type_array));
	for (i = 0; i < json_object_array_length(items); i++) {
		u = json_object_array_get_idx(items, i);
		cr_assert(json_object_object_get_ex(u, "username", &n));
		off += (size_t)snprintf(buf + off, size - off, "%s%s",
		    i > 0 ? "," : "", json_object_get_string(n));
	}
	json_object_put(o);
}

Test(users, list_first_page_defaults)
{
	struct http_response resp;
	char names[256];

	seed_list();
	send_rq(&(struct rq){ .method = "GET", .path = "/users" }, &resp);
	cr_assert(eq(int, resp.status, 200), "[%s]", resp.body);
	cr_assert(eq(str, (char *)resp.content_type, MJ));
	page_names(&resp, names, sizeof(names));
	cr_assert(eq(str, names, "alfred,alice,Alicia,bob,carol,dave,Erin"));
	assert_body_member(&resp, "/next", "null");
	assert_header(&resp, "Link", NULL);
	/* Items are full representations. */
	assert_body_member(&resp, "/items/1/roles", "[\"admin\"]");
	http_response_release(&resp);
}

Test(users, list_pages_follow_the_cursor)
{
	struct http_response resp;
	char names[64], all[256] = "", query[256], link[300];
	struct json_object *o, *next;
	const char *q;
	int pages = 0;

	seed_list();
	snprintf(query, sizeof(query), "limit=3");
	for (;;) {
		send_rq(&(struct rq){ .method = "GET", .path = "/users",
		    .query = query }, &resp);
		cr_assert(eq(int, resp.status, 200), "[%s]", resp.body);
		page_names(&resp, names, sizeof(names));
		if (all[0] != '\0')
			strcat(all, ",");
		strcat(all, names);
		pages++;
		o = body_json(&resp);
		cr_assert(json_object_object_get_ex(o, "next", &next));
		if (next == NULL) {
			assert_header(&resp, "Link", NULL);
			json_object_put(o);
			http_response_release(&resp);
			break;
		}
		cr_assert(json_object_is_type(next, json_type_string));
		cr_assert(eq(int, strncmp(json_object_get_string(next),
		    "/users?", 7), 0), "[%s]", json_object_get_string(next));
		snprintf(link, sizeof(link), "<%s>; rel=\"next\"",
		    json_object_get_string(next));
		assert_header(&resp, "Link", link);
		q = strchr(json_object_get_string(next), '?') + 1;
		snprintf(query, sizeof(query), "%s", q);
		json_object_put(o);
		http_response_release(&resp);
		cr_assert(lt(int, pages, 10), "the walk does not end");
	}
	cr_assert(eq(int, pages, 3));
	cr_assert(eq(str, all, "alfred,alice,Alicia,bob,carol,dave,Erin"));
}

Test(users, list_exact_last_page_has_no_next)
{
	struct http_response resp;

	/* Two users, limit 2: no further user, so no next link. */
	send_rq(&(struct rq){ .method = "GET", .path = "/users",
	    .query = "limit=2" }, &resp);
	cr_assert(eq(int, resp.status, 200));
	assert_body_member(&resp, "/next", "null");
	assert_header(&resp, "Link", NULL);
	http_response_release(&resp);
}

Test(users, list_cursor_survives_a_deleted_anchor)
{
	struct http_response resp;
	char names[128], buf[32];

	seed_list();
	/* Page 1 ends at alice; alice's cursor outlives her record. */
	send_rq(&(struct rq){ .method = "GET", .path = "/users",
	    .query = "limit=2" }, &resp);
	page_names(&resp, names, sizeof(names));
	cr_assert(eq(str, names, "alfred,alice"));
	assert_body_member(&resp, "/next",
	    "\"/users?limit=2&cursor=uYWxpY2U\"");
	http_response_release(&resp);
	send_rq(&(struct rq){ .method = "PATCH", .path = "/users/bob",
	    .ct = MP, .im = etag(v_bob, buf), .body = "{\"roles\":[\"admin\"]}" },
	    &resp);
	cr_assert(eq(int, resp.status, 200));
	http_response_release(&resp);
	send_rq(&(struct rq){ .method = "DELETE", .path = "/users/alice",
	    .im = etag(v_alice, buf) }, &resp);
	cr_assert(eq(int, resp.status, 204));
	http_response_release(&resp);
	send_rq(&(struct rq){ .method = "GET", .path = "/users",
	    .query = "limit=2&cursor=uYWxpY2U" }, &resp);
	cr_assert(eq(int, resp.status, 200), "[%s]", resp.body);
	page_names(&resp, names, sizeof(names));
	cr_assert(eq(str, names, "Alicia,bob"));
	http_response_release(&resp);
}

struct prefix_case {
	char query[64];
	char names[96];
	char next[96];		/* JSON text of "next" */
};

ParameterizedTestParameters(users, list_prefix)
{
	static struct prefix_case cases[] = {
		{ "prefix=al", "alfred,alice,Alicia", "null" },
		{ "prefix=AL", "alfred,alice,Alicia", "null" },
		{ "prefix=ali", "alice,Alicia", "null" },
		{ "prefix=alice", "alice", "null" },
		{ "prefix=z", "", "null" },
		{ "prefix=", "alfred,alice,Alicia,bob,carol,dave,Erin",
		    "null" },
		{ "prefix=%61l", "alfred,alice,Alicia", "null" },
		{ "prefix=a_", "", "null" },	/* literal, no wildcard */
		{ "prefix=a%25", "", "null" },
		{ "prefix=al&limit=1", "alfred",
		    "\"/users?limit=1&cursor=uYWxmcmVk&prefix=al\"" },
		{ "limit=2&prefix=AL", "alfred,alice",
		    "\"/users?limit=2&cursor=uYWxpY2U&prefix=al\"" },
		{ "prefix=al&cursor=uYWxpY2U", "Alicia", "null" },
		{ "foo=bar&prefix=e", "Erin", "null" },
	};

	return cr_make_param_array(struct prefix_case, cases,
	    sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct prefix_case *c, users, list_prefix)
{
	struct http_response resp;
	char names[256];

	seed_list();
	send_rq(&(struct rq){ .method = "GET", .path = "/users",
	    .query = c->query }, &resp);
	cr_assert(eq(int, resp.status, 200), "%s: [%s]", c->query, resp.body);
	page_names(&resp, names, sizeof(names));
	cr_assert(eq(str, names, c->names), "%s", c->query);
	assert_body_member(&resp, "/next", c->next);
	http_response_release(&resp);
}

struct bad_query_case {
	char query[160];
	char parameter[12];	/* "" for a query that is fine */
};

ParameterizedTestParameters(users, list_refuses_bad_parameters)
{
	static struct bad_query_case cases[] = {
		{ "limit=0", "limit" },
		{ "limit=201", "limit" },
		{ "limit=", "limit" },
		{ "limit", "limit" },
		{ "limit=abc", "limit" },
		{ "limit=-1", "limit" },
		{ "limit=+5", "limit" },
		{ "limit=1e2", "limit" },
		{ "limit=5.0", "limit" },
		{ "limit=%205", "limit" },
		{ "limit=5%20", "limit" },
		{ "limit=99999999999999999999", "limit" },
		{ "limit=4294967297", "limit" },
		{ "limit=0&limit=5", "limit" },
		{ "limit=000", "limit" },
		{ "limit=00000000000000000000000000201", "limit" },
		{ "cursor=", "cursor" },
		{ "cursor=x", "cursor" },
		{ "cursor=u", "cursor" },
		{ "cursor=YWxpY2U", "cursor" },
		{ "cursor=uYWxpY2U=", "cursor" },
		{ "cursor=uYWxp%59", "cursor" },
		{ "cursor=u!!!!", "cursor" },
		{ "cursor=uQUxJQ0U", "cursor" },	/* "ALICE" */
		{ "cursor=uLWFsaWNl", "cursor" },	/* "-alice" */
		{ "cursor=uYR", "cursor" },	/* "a" with stray bits */
		{ "cursor=uYWxpY2V", "cursor" },	/* "alice", stray bits */
		{ "cursor=uYQ", "" },		/* "a": could have been issued */
		{ "prefix=%zz", "prefix" },
		{ "prefix=%00", "prefix" },
		{ "prefix=%", "prefix" },
		{ "prefix=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		    "aaaaaaaaaa", "prefix" },		/* 65 */
	};

	return cr_make_param_array(struct bad_query_case, cases,
	    sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct bad_query_case *c, users, list_refuses_bad_parameters)
{
	struct http_response resp;
	char want[32];

	send_rq(&(struct rq){ .method = "GET", .path = "/users",
	    .query = c->query }, &resp);
	if (c->parameter[0] == '\0') {
		cr_assert(eq(int, resp.status, 200), "[%s]", resp.body);
		http_response_release(&resp);
		return;
	}
	assert_problem(&resp, 400, "invalid-query-parameter");
	snprintf(want, sizeof(want), "\"%s\"", c->parameter);
	assert_body_member(&resp, "/parameter", want);
	http_response_release(&resp);
}

Test(users, list_limit_bounds_are_inclusive)
{
	struct http_response resp;

	send_rq(&(struct rq){ .method = "GET", .path = "/users",
	    .query = "limit=1" }, &resp);
	cr_assert(eq(int, resp.status, 200));
	http_response_release(&resp);
	send_rq(&(struct rq){ .method = "GET", .path = "/users",
	    .query = "limit=200" }, &resp);
	cr_assert(eq(int, resp.status, 200));
	http_response_release(&resp);
	send_rq(&(struct rq){ .method = "GET", .path = "/users",
	    .query = "limit=1&limit=0" }, &resp);
	cr_assert(eq(int, resp.status, 200), "the first limit wins");
	http_response_release(&resp);
	/* Digits are digits: leading zeros do not change the value. */
	send_rq(&(struct rq){ .method = "GET", .path = "/users",
	    .query = "limit=0001" }, &resp);
	cr_assert(eq(int, resp.status, 200), "[%s]", resp.body);
	assert_body_member(&resp, "/next",
	    "\"/users?limit=1&cursor=uYWxpY2U\"");
	http_response_release(&resp);
	send_rq(&(struct rq){ .method = "GET", .path = "/users",
	    .query = "limit=00000000000000000000000000200" }, &resp);
	cr_assert(eq(int, resp.status, 200), "[%s]", resp.body);
	http_response_release(&resp);
}

/* ---- access = self ------------------------------------------------------ */

ParameterizedTestParameters(users, access_self)
{
	static struct flow_case cases[] = {
		{ .name = "GET user without a principal", .self = 1,
		    .method = "GET", .path = "/users/alice", .status = 401,
		    .slug = "unauthenticated", .hname = "WWW-Authenticate",
		    .hvalue = "Basic realm=\"userreg\"" },
		{ .name = "GET list without a principal", .self = 1,
		    .method = "GET", .path = "/users", .status = 401,
		    .slug = "unauthenticated", .hname = "WWW-Authenticate",
		    .hvalue = "Basic realm=\"userreg\"" },
		{ .name = "401 before 404", .self = 1, .method = "GET",
		    .path = "/users/nobody", .status = 401,
		    .slug = "unauthenticated" },
		{ .name = "401 before 404 on PATCH", .self = 1,
		    .method = "PATCH", .path = "/users/nobody", .ct = MP,
		    .body = "{}", .status = 401, .slug = "unauthenticated" },
		{ .name = "GET by any principal", .self = 1, .method = "GET",
		    .path = "/users/alice", .user = "bob", .status = 200 },
		{ .name = "GET by a principal without a record", .self = 1,
		    .method = "GET", .path = "/users/alice", .user = "ghost",
		    .status = 200 },
		{ .name = "GET list by a principal", .self = 1,
		    .method = "GET", .path = "/users", .user = "bob",
		    .status = 200 },
		{ .name = "PATCH another user as non-admin", .self = 1,
		    .method = "PATCH", .path = "/users/alice", .ct = MP,
		    .im = "\"@alice\"", .user = "bob",
		    .body = "{\"display_name\":\"x\"}", .status = 403,
		    .slug = "forbidden" },
		{ .name = "403 before 415", .self = 1, .method = "PATCH",
		    .path = "/users/alice", .ct = "text/plain", .user = "bob",
		    .body = "{}", .status = 403, .slug = "forbidden" },
		{ .name = "403 before 428", .self = 1, .method = "DELETE",
		    .path = "/users/alice", .user = "bob", .status = 403,
		    .slug = "forbidden" },
		{ .name = "PUT another user as non-admin", .self = 1,
		    .method = "PUT", .path = "/users/alice", .ct = MJ,
		    .im = "\"@alice\"", .user = "bob",
		    .body = "{\"username\":\"alice\",\"roles\":[\"admin\"]}",
		    .status = 403, .slug = "forbidden" },
		{ .name = "DELETE by a principal without a record", .self = 1,
		    .method = "DELETE", .path = "/users/bob", .im = "\"@bob\"",
		    .user = "ghost", .status = 403, .slug = "forbidden" },
		{ .name = "admin edits another user", .self = 1,
		    .method = "PATCH", .path = "/users/bob", .ct = MP,
		    .im = "\"@bob\"", .user = "alice",
		    .body = "{\"display_name\":\"By Alice\"}", .status = 200,
		    .p1 = "/display_name", .v1 = "\"By Alice\"" },
		{ .name = "admin grants another user a role", .self = 1,
		    .method = "PATCH", .path = "/users/bob", .ct = MP,
		    .im = "\"@bob\"", .user = "alice",
		    .body = "{\"roles\":[\"ops\"]}", .status = 200,
		    .p1 = "/roles", .v1 = "[\"ops\"]" },
		{ .name = "admin deletes another user", .self = 1,
		    .method = "DELETE", .path = "/users/bob", .im = "\"@bob\"",
		    .user = "alice", .status = 204 },
		{ .name = "self edit", .self = 1, .method = "PATCH",
		    .path = "/users/bob", .ct = MP, .im = "\"@bob\"",
		    .user = "bob", .body = "{\"display_name\":\"Bobby\"}",
		    .status = 200, .p1 = "/display_name", .v1 = "\"Bobby\"" },
		{ .name = "self edit, principal in another case", .self = 1,
		    .method = "PATCH", .path = "/users/bob", .ct = MP,
		    .im = "\"@bob\"", .user = "BOB",
		    .body = "{\"display_name\":\"Bobby\"}", .status = 200 },
		{ .name = "self delete", .self = 1, .method = "DELETE",
		    .path = "/users/bob", .im = "\"@bob\"", .user = "bob",
		    .status = 204 },
		{ .name = "self grant by PATCH", .self = 1, .method = "PATCH",
		    .path = "/users/bob", .ct = MP, .im = "\"@bob\"",
		    .user = "bob", .body = "{\"roles\":[\"admin\"]}",
		    .status = 403, .slug = "forbidden" },
		{ .name = "self grant by PUT", .self = 1, .method = "PUT",
		    .path = "/users/bob", .ct = MJ, .im = "\"@bob\"",
		    .user = "bob", .body = "{\"username\":\"bob\","
		    "\"roles\":[\"ops\"]}", .status = 403,
		    .slug = "forbidden" },
		{ .name = "an admin may not grant itself a new role",
		    .self = 1, .method = "PATCH", .path = "/users/alice",
		    .ct = MP, .im = "\"@alice\"", .user = "alice",
		    .body = "{\"roles\":[\"admin\",\"ops\"]}", .status = 403,
		    .slug = "forbidden" },
		{ .name = "keeping held roles is no grant", .self = 1,
		    .method = "PATCH", .path = "/users/alice", .ct = MP,
		    .im = "\"@alice\"", .user = "alice",
		    .body = "{\"roles\":[\"admin\"],\"display_name\":\"A\"}",
		    .status = 200 },
		{ .name = "sign-up without a principal", .self = 1,
		    .method = "POST", .path = "/users", .ct = MJ,
		    .body = "{\"username\":\"carol\"}", .status = 201,
		    .hname = "Location", .hvalue = "/users/carol" },
		{ .name = "sign-up cannot take roles", .self = 1,
		    .method = "POST", .path = "/users", .ct = MJ,
		    .body = "{\"username\":\"carol\",\"roles\":[\"admin\"]}",
		    .status = 403, .slug = "forbidden" },
		{ .name = "signup = admin: no principal", .self = 1,
		    .signup_admin = 1, .method = "POST", .path = "/users",
		    .ct = MJ, .body = "{\"username\":\"carol\"}",
		    .status = 401, .slug = "unauthenticated" },
		{ .name = "signup = admin: non-admin", .self = 1,
		    .signup_admin = 1, .method = "POST", .path = "/users",
		    .ct = MJ, .user = "bob",
		    .body = "{\"username\":\"carol\"}", .status = 403,
		    .slug = "forbidden" },
		{ .name = "signup = admin: admin", .self = 1,
		    .signup_admin = 1, .method = "POST", .path = "/users",
		    .ct = MJ, .user = "alice",
		    .body = "{\"username\":\"carol\",\"roles\":[\"ops\"]}",
		    .status = 201, .p1 = "/roles", .v1 = "[\"ops\"]" },
		{ .name = "signup = admin: 403 before 415", .self = 1,
		    .signup_admin = 1, .method = "POST", .path = "/users",
		    .ct = "text/plain", .user = "bob", .body = "{}",
		    .status = 403, .slug = "forbidden" },
	};

	return cr_make_param_array(struct flow_case, cases,
	    sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct flow_case *c, users, access_self)
{
	run_flow_case(c);
}

Test(users, empty_remote_user_is_no_principal)
{
	struct http_response resp;

	cfg.access = CONFIG_ACCESS_SELF;
	send_rq(&(struct rq){ .method = "GET", .path = "/users/alice",
	    .user = "" }, &resp);
	assert_problem(&resp, 401, "unauthenticated");
	http_response_release(&resp);
	send_rq(&(struct rq){ .method = "GET", .path = "/users", .user = "" },
	    &resp);
	assert_problem(&resp, 401, "unauthenticated");
	http_response_release(&resp);
}

Test(users, open_access_ignores_the_principal)
{
	struct http_response resp;
	char buf[32];

	send_rq(&(struct rq){ .method = "PATCH", .path = "/users/alice",
	    .ct = MP, .im = etag(v_alice, buf), .user = "bob",
	    .body = "{\"display_name\":\"x\"}" }, &resp);
	cr_assert(eq(int, resp.status, 200), "[%s]", resp.body);
	http_response_release(&resp);
}

/* ---- Idempotency-Key ---------------------------------------------------- */

static void
post_key(const char *key, const char *body, struct http_response *resp)
{
	send_rq(&(struct rq){ .method = "POST", .path = "/users", .ct = MJ,
	    .key = key, .body = body }, resp);
}

Test(users, idempotent_replay_of_a_201)
{
	struct http_response first, again;
	const char *body = "{\"username\":\"carol\"}";
	int64_t rev;

	post_key("k-201", body, &first);
	cr_assert(eq(int, first.status, 201), "[%s]", first.body);
	assert_header(&first, "Idempotent-Replayed", NULL);
	rev = revision();

	post_key("k-201", body, &again);
	cr_assert(eq(int, again.status, 201), "[%s]", again.body);
	assert_header(&again, "Idempotent-Replayed", "true");
	cr_assert(eq(str, (char *)again.content_type, MJ));
	cr_assert(eq(sz, again.body_len, first.body_len));
	cr_assert(eq(str, again.body, first.body));
	assert_header(&again, "Location", http_header(&first, "Location"));
	assert_header(&again, "Content-Location",
	    http_header(&first, "Content-Location"));
	assert_header(&again, "ETag", http_header(&first, "ETag"));
	cr_assert(eq(i64, revision(), rev), "the replay wrote");
	http_response_release(&first);
	http_response_release(&again);

	/* The quoted form names the same key. */
	post_key("\"k-201\"", body, &again);
	cr_assert(eq(int, again.status, 201));
	assert_header(&again, "Idempotent-Replayed", "true");
	http_response_release(&again);
}

Test(users, idempotency_key_reused_with_another_body)
{
	struct http_response resp;

	post_key("k-reuse", "{\"username\":\"carol\"}", &resp);
	cr_assert(eq(int, resp.status, 201));
	http_response_release(&resp);
	/* Same JSON meaning, other bytes: still another body. */
	post_key("k-reuse", "{ \"username\":\"carol\"}", &resp);
	assert_problem(&resp, 422, "idempotency-key-reused");
	assert_header(&resp, "Idempotent-Replayed", NULL);
	http_response_release(&resp);
	post_key("k-reuse", "{\"username\":\"dave\"}", &resp);
	assert_problem(&resp, 422, "idempotency-key-reused");
	http_response_release(&resp);
}

Test(users, idempotent_replay_of_a_409)
{
	struct http_response first, again;
	const char *body = "{\"username\":\"BOB\"}";
	char buf[32];

	post_key("k-409", body, &first);
	assert_problem(&first, 409, "user-exists");

	/* bob goes away; the key still answers what it answered. */
	send_rq(&(struct rq){ .method = "DELETE", .path = "/users/bob",
	    .im = etag(v_bob, buf) }, &again);
	cr_assert(eq(int, again.status, 204));
	http_response_release(&again);

	post_key("k-409", body, &again);
	cr_assert(eq(int, again.status, 409), "[%s]", again.body);
	cr_assert(eq(str, (char *)again.content_type, PJ));
	assert_header(&again, "Idempotent-Replayed", "true");
	cr_assert(eq(str, again.body, first.body));
	http_response_release(&first);
	http_response_release(&again);
}

Test(users, idempotent_replay_of_a_422)
{
	struct http_response first, again;
	const char *body = "{\"username\":\"-bad\"}";

	post_key("k-422", body, &first);
	assert_problem(&first, 422, "validation-failed");
	post_key("k-422", body, &again);
	cr_assert(eq(int, again.status, 422));
	assert_header(&again, "Idempotent-Replayed", "true");
	cr_assert(eq(str, again.body, first.body));
	http_response_release(&first);
	http_response_release(&again);
}

Test(users, answers_from_steps_1_to_3_are_not_stored)
{
	struct http_response resp;
	const char *body = "{\"username\":\"carol\"}";

	send_rq(&(struct rq){ .method = "POST", .path = "/users",
	    .ct = "text/plain", .key = "k-415", .body = body }, &resp);
	assert_problem(&resp, 415, "unsupported-media-type");
	http_response_release(&resp);
	send_rq(&(struct rq){ .method = "POST", .path = "/users", .ct = MJ,
	    .key = "k-415", .state = HTTP_BODY_TOO_LARGE }, &resp);
	assert_problem(&resp, 413, "payload-too-large");
	http_response_release(&resp);
	send_rq(&(struct rq){ .method = "POST", .path = "/users", .ct = MJ,
	    .key = "k-415", .body = body, .state = HTTP_BODY_TRUNCATED },
	    &resp);
	assert_problem(&resp, 400, "malformed-json");
	http_response_release(&resp);
	post_key("k-415", body, &resp);
	cr_assert(eq(int, resp.status, 201), "[%s]", resp.body);
	assert_header(&resp, "Idempotent-Replayed", NULL);
	http_response_release(&resp);
}

/*
 * The first request of a key, in another process: inside its write
 * transaction it creates the user and stores the key's answer, tells the
 * parent on ready_fd, and commits a moment later. Returns an exit status:
 * 0 when it committed its 201.
 */
static int
run_first_request(int ready_fd, const char *key, const char *body)
{
	struct timespec pause = { 0, 300 * 1000 * 1000L };
	struct http_response resp;
	struct http_request req;
	struct users_ctx c = { .cfg = &cfg };
	int needs_write = 0, rc = 10;

	memset(&req, 0, sizeof(req));
	req.method = "POST";
	req.path = "/users";
	req.query = "";
	req.content_type = MJ;
	req.idempotency_key = key;
	req.body = (char *)(uintptr_t)body;
	req.body_len = req.content_length = strlen(body);
	http_new_request_id(&req);
	http_response_init(&resp);
	if ((c.reg = registry_open(cfg.registry, 2000, 0, NULL, NULL)) ==
	    NULL)
		return 11;
	if (registry_begin(c.reg) != REG_OK)
		rc = 12;
	else if (write_apply(&c, WRITE_CREATE, NULL, &req, &resp, 0,
	    &needs_write) != REG_OK || resp.status != 201)
		rc = 13;
	else if (write(ready_fd, "r", 1) != 1)
		rc = 14;
	else if (nanosleep(&pause, NULL) != 0 ||
	    registry_commit(c.reg) != REG_OK)
		rc = 15;
	else
		rc = 0;
	registry_rollback(c.reg);
	registry_close(c.reg);
	http_response_release(&resp);
	return rc;
}

/*
 * No key is ever seen in flight: a request with the key of one still
 * running waits for the write lock and replays the first one's answer.
 */
Test(users, same_key_while_the_first_runs_waits_and_replays_its_answer)
{
	struct http_response resp;
	const char *body = "{\"username\":\"carol\"}";
	int ready[2], status;
	pid_t pid;
	char c;

	cr_assert(eq(int, pipe(ready), 0));
	pid = fork();
	cr_assert(ge(int, pid, 0));
	if (pid == 0) {
		close(ready[0]);
		_exit(run_first_request(ready[1], "k-wait", body));
	}
	close(ready[1]);
	cr_assert(eq(long, (long)read(ready[0], &c, 1), 1),
	    "the first request did not get under way");
	close(ready[0]);
	post_key("k-wait", body, &resp);
	cr_assert(eq(int, waitpid(pid, &status, 0), pid));
	/* 0: it exited 0, having committed its 201. */
	cr_assert(eq(int, status, 0), "first request: wait status %#x",
	    status);
	cr_assert(eq(int, resp.status, 201), "[%s]", resp.body);
	assert_header(&resp, "Idempotent-Replayed", "true");
	assert_body_member(&resp, "/username", "\"carol\"");
	http_response_release(&resp);
	cr_assert(eq(i64, revision(), v_bob + 1), "carol was written twice");
}

Test(users, idempotency_keys_are_scoped_per_principal)
{
	struct http_response resp;
	const char *body = "{\"username\":\"carol\"}";

	cfg.access = CONFIG_ACCESS_SELF;
	send_rq(&(struct rq){ .method = "POST", .path = "/users", .ct = MJ,
	    .key = "k-scope", .user = "alice", .body = body }, &resp);
	cr_assert(eq(int, resp.status, 201), "[%s]", resp.body);
	http_response_release(&resp);
	/* bob's k-scope is his own: the request runs (and finds carol). */
	send_rq(&(struct rq){ .method = "POST", .path = "/users", .ct = MJ,
	    .key = "k-scope", .user = "bob", .body = body }, &resp);
	assert_problem(&resp, 409, "user-exists");
	assert_header(&resp, "Idempotent-Replayed", NULL);
	http_response_release(&resp);
	/* alice's replays. */
	send_rq(&(struct rq){ .method = "POST", .path = "/users", .ct = MJ,
	    .key = "k-scope", .user = "alice", .body = body }, &resp);
	cr_assert(eq(int, resp.status, 201));
	assert_header(&resp, "Idempotent-Replayed", "true");
	http_response_release(&resp);
}

/* ---- more writes ---------------------------------------------------------- */

Test(users, update_keeps_created_at)
{
	struct http_response resp;
	struct json_object *o, *v;
	char created[40], buf[32];

	get("/users/bob", &resp);
	o = body_json(&resp);
	cr_assert(json_object_object_get_ex(o, "created_at", &v));
	snprintf(created, sizeof(created), "\"%s\"", json_object_get_string(v));
	json_object_put(o);
	http_response_release(&resp);
	send_rq(&(struct rq){ .method = "PUT", .path = "/users/bob",
	    .ct = MJ, .im = etag(v_bob, buf),
	    .body = "{\"username\":\"bob\",\"display_name\":\"B\","
	    "\"created_at\":\"2001-01-01T00:00:00Z\"}" }, &resp);
	cr_assert(eq(int, resp.status, 200), "[%s]", resp.body);
	assert_body_member(&resp, "/created_at", created);
	http_response_release(&resp);
}

Test(users, role_order_is_no_change)
{
	struct http_response resp;
	char buf[32];
	int64_t v;

	send_rq(&(struct rq){ .method = "PATCH", .path = "/users/bob",
	    .ct = MP, .im = etag(v_bob, buf),
	    .body = "{\"roles\":[\"ops\",\"dev\"]}" }, &resp);
	cr_assert(eq(int, resp.status, 200), "[%s]", resp.body);
	assert_body_member(&resp, "/roles", "[\"dev\",\"ops\"]");
	http_response_release(&resp);
	v = revision();
	send_rq(&(struct rq){ .method = "PUT", .path = "/users/bob",
	    .ct = MJ, .im = etag(v, buf), .body = "{\"username\":\"bob\","
	    "\"email\":\"bob@example.org\",\"roles\":[\"ops\",\"dev\"]}" },
	    &resp);
	cr_assert(eq(int, resp.status, 200), "[%s]", resp.body);
	assert_header(&resp, "ETag", etag(v, buf));
	http_response_release(&resp);
	cr_assert(eq(i64, revision(), v));
}

Test(users, email_case_change_is_a_change)
{
	struct http_response resp;
	char buf[32];

	send_rq(&(struct rq){ .method = "PATCH", .path = "/users/bob",
	    .ct = MP, .im = etag(v_bob, buf),
	    .body = "{\"email\":\"Bob@Example.org\"}" }, &resp);
	cr_assert(eq(int, resp.status, 200), "[%s]", resp.body);
	assert_body_member(&resp, "/email", "\"Bob@Example.org\"");
	assert_header(&resp, "ETag", etag(v_bob + 1, buf));
	http_response_release(&resp);
}

/* ---- registry unavailable ------------------------------------------------ */

Test(users, locked_registry_is_503_with_retry_after)
{
	struct http_response resp;
	struct registry *other;
	enum reg_err err;
	char buf[32];

	/* Reopen with a short lock wait; another handle holds the lock. */
	registry_close(reg);
	reg = registry_open(cfg.registry, 50, 0, &err, NULL);
	cr_assert(not(eq(ptr, reg, NULL)));
	ctx.reg = reg;
	other = registry_open(cfg.registry, 50, 0, &err, NULL);
	cr_assert(not(eq(ptr, other, NULL)));
	cr_assert(eq(int, registry_begin(other), REG_OK));

	send_rq(&(struct rq){ .method = "POST", .path = "/users", .ct = MJ,
	    .body = "{\"username\":\"carol\"}" }, &resp);
	assert_problem(&resp, 503, "registry-unavailable");
	assert_header(&resp, "Retry-After", "1");
	assert_body_member(&resp, "/resolution", "\"retry-after\"");
	http_response_release(&resp);

	send_rq(&(struct rq){ .method = "PATCH", .path = "/users/bob",
	    .ct = MP, .im = etag(v_bob, buf),
	    .body = "{\"display_name\":\"B\"}" }, &resp);
	assert_problem(&resp, 503, "registry-unavailable");
	assert_header(&resp, "Retry-After", "1");
	http_response_release(&resp);

	send_rq(&(struct rq){ .method = "POST", .path = "/users", .ct = MJ,
	    .key = "k-503", .body = "{\"username\":\"carol\"}" }, &resp);
	assert_problem(&resp, 503, "registry-unavailable");
	http_response_release(&resp);

	/* Readers are not blocked. */
	get("/users/bob", &resp);
	cr_assert(eq(int, resp.status, 200));
	http_response_release(&resp);

	registry_rollback(other);
	registry_close(other);

	/* 5xx answers are not stored: the key runs afresh. */
	send_rq(&(struct rq){ .method = "POST", .path = "/users", .ct = MJ,
	    .key = "k-503", .body = "{\"username\":\"carol\"}" }, &resp);
	cr_assert(eq(int, resp.status, 201), "[%s]", resp.body);
	assert_header(&resp, "Idempotent-Replayed", NULL);
	http_response_release(&resp);
}

/* Reopens the fixture's registry with a lock wait of ms. */
static void
reopen_registry(int ms)
{
	enum reg_err err;

	registry_close(reg);
	reg = registry_open(cfg.registry, ms, 0, &err, NULL);
	cr_assert(not(eq(ptr, reg, NULL)), "%s", registry_err_str(err));
	ctx.reg = reg;
}

/* Refusals are true of a committed state: they never wait for writers. */
Test(users, refusals_are_answered_while_another_holds_the_write_lock)
{
	struct http_response resp;
	struct registry *other;
	char buf[32];

	reopen_registry(50);
	other = registry_open(cfg.registry, 50, 0, NULL, NULL);
	cr_assert(not(eq(ptr, other, NULL)));
	cr_assert(eq(int, registry_begin(other), REG_OK));
	send_rq(&(struct rq){ .method = "POST", .path = "/users", .ct = MJ,
	    .body = "{\"username\":\"Alice\"}" }, &resp);
	assert_problem(&resp, 409, "user-exists");
	http_response_release(&resp);
	send_rq(&(struct rq){ .method = "PATCH", .path = "/users/bob",
	    .ct = MP, .im = "\"999\"", .body = "{}" }, &resp);
	assert_problem(&resp, 412, "precondition-failed");
	http_response_release(&resp);
	send_rq(&(struct rq){ .method = "DELETE", .path = "/users/nobody",
	    .im = "\"1\"" }, &resp);
	assert_problem(&resp, 404, "user-not-found");
	http_response_release(&resp);
	/* A change that changes nothing writes nothing either. */
	send_rq(&(struct rq){ .method = "PATCH", .path = "/users/bob",
	    .ct = MP, .im = etag(v_bob, buf), .body = "{}" }, &resp);
	cr_assert(eq(int, resp.status, 200), "[%s]", resp.body);
	assert_header(&resp, "ETag", etag(v_bob, buf));
	http_response_release(&resp);
	registry_rollback(other);
	registry_close(other);
}

/* Runs sql on a plain SQLite connection to the fixture's registry. */
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

Test(users, healthz_is_503_when_the_registry_file_is_gone)
{
	struct http_response resp;

	cr_assert(eq(int, unlink(cfg.registry), 0));
	/* As a worker does before each request. */
	cr_assert(eq(int, registry_refresh(reg), REG_UNAVAILABLE));
	get("/healthz", &resp);
	assert_problem(&resp, 503, "registry-unavailable");
	assert_header(&resp, "Retry-After", "1");
	http_response_release(&resp);
}

Test(users, healthz_is_503_when_the_registry_is_damaged)
{
	struct http_response resp;

	/* A fault the registry calls an error, not an outage: still 503. */
	raw_exec("DROP TABLE meta");
	get("/healthz", &resp);
	assert_problem(&resp, 503, "registry-unavailable");
	assert_header(&resp, "Retry-After", "1");
	http_response_release(&resp);
}

Test(users, truncated_body_is_400_even_when_its_key_has_an_answer)
{
	struct http_response resp;
	const char *body = "{\"username\":\"carol\"}";
	int64_t rev;

	post_key("k-cut", body, &resp);
	cr_assert(eq(int, resp.status, 201), "[%s]", resp.body);
	http_response_release(&resp);
	rev = revision();
	/* The same bytes, announced longer: step 3 answers before step 4. */
	send_rq(&(struct rq){ .method = "POST", .path = "/users", .ct = MJ,
	    .key = "k-cut", .body = body, .state = HTTP_BODY_TRUNCATED },
	    &resp);
	assert_problem(&resp, 400, "malformed-json");
	assert_header(&resp, "Idempotent-Replayed", NULL);
	http_response_release(&resp);
	cr_assert(eq(i64, revision(), rev));
}

/* ---- more of the list and keys -------------------------------------------- */

Test(users, list_order_is_byte_order_of_the_canonical_name)
{
	struct http_response resp;
	char names[256];

	add_user("a_b", "", "", NULL, NULL);
	add_user("AB", "", "", NULL, NULL);
	add_user("a0", "", "", NULL, NULL);
	add_user("a.b", "", "", NULL, NULL);
	add_user("a-b", "", "", NULL, NULL);
	send_rq(&(struct rq){ .method = "GET", .path = "/users",
	    .query = "prefix=a" }, &resp);
	cr_assert(eq(int, resp.status, 200));
	page_names(&resp, names, sizeof(names));
	/* '-' < '.' < '0' < '_' < 'b' < 'l' */
	cr_assert(eq(str, names, "a-b,a.b,a0,a_b,AB,alice"));
	http_response_release(&resp);
}

Test(users, list_limit_defaults_to_50)
{
	struct http_response resp;
	struct json_object *o, *items;
	char name[16];
	int i;

	for (i = 0; i < 60; i++) {
		snprintf(name, sizeof(name), "u%02d", i);
		add_user(name, "", "", NULL, NULL);
	}
	send_rq(&(struct rq){ .method = "GET", .path = "/users" }, &resp);
	cr_assert(eq(int, resp.status, 200));
	o = body_json(&resp);
	cr_assert(json_object_object_get_ex(o, "items", &items));
	cr_assert(eq(sz, json_object_array_length(items), USERS_LIST_DEFAULT));
	cr_assert(eq(int, USERS_LIST_DEFAULT, 50));
	/* alice, bob, u00..u47: the cursor is u47's name. */
	assert_member(o, "/items/49/username", "\"u47\"", resp.body);
	assert_member(o, "/next", "\"/users?limit=50&cursor=udTQ3\"",
	    resp.body);
	json_object_put(o);
	assert_header(&resp, "Link", "</users?limit=50&cursor=udTQ3>; "
	    "rel=\"next\"");
	http_response_release(&resp);
}

Test(users, idempotency_keys_are_global_under_open_access)
{
	struct http_response resp;
	const char *body = "{\"username\":\"carol\"}";

	send_rq(&(struct rq){ .method = "POST", .path = "/users", .ct = MJ,
	    .key = "k-open", .user = "alice", .body = body }, &resp);
	cr_assert(eq(int, resp.status, 201), "[%s]", resp.body);
	http_response_release(&resp);
	send_rq(&(struct rq){ .method = "POST", .path = "/users", .ct = MJ,
	    .key = "k-open", .user = "bob", .body = body }, &resp);
	cr_assert(eq(int, resp.status, 201), "[%s]", resp.body);
	assert_header(&resp, "Idempotent-Replayed", "true");
	http_response_release(&resp);
}

Test(users, duplicate_member_names_its_offset)
{
	struct http_response resp;

	send_rq(&(struct rq){ .method = "POST", .path = "/users", .ct = MJ,
	    .body = "{\"username\":\"carol\",\"username\":\"carol\"}" },
	    &resp);
	assert_problem(&resp, 400, "duplicate-member");
	assert_body_member(&resp, "/offset", "20");
	http_response_release(&resp);
}

Test(users, longest_base_path_and_name_fit_every_uri)
{
	struct http_response resp;
	char base[CONFIG_BASE_PATH_MAX], path[CONFIG_BASE_PATH_MAX + 16];
	char name[USER_NAME_MAX + 1], body[420], want[400];

	/* "/" + 253 letters + "/": the longest base path config accepts. */
	memset(base, 'b', sizeof(base));
	base[0] = '/';
	base[CONFIG_BASE_PATH_MAX - 2] = '\0';
	cr_assert(eq(int, config_set(&cfg, "base_path", base, want,
	    sizeof(want)), 0), "%s", want);
	cr_assert(eq(sz, strlen(cfg.base_path), CONFIG_BASE_PATH_MAX - 1));
	memset(name, 'N', USER_NAME_MAX);
	name[USER_NAME_MAX] = '\0';
	snprintf(body, sizeof(body), "{\"username\":\"%s\"}", name);
	snprintf(path, sizeof(path), "%susers", cfg.base_path);
	send_rq(&(struct rq){ .method = "POST", .path = path, .ct = MJ,
	    .body = body }, &resp);
	cr_assert(eq(int, resp.status, 201), "[%s]", resp.body);
	memset(name, 'n', USER_NAME_MAX);
	snprintf(want, sizeof(want), "%susers/%s", cfg.base_path, name);
	assert_header(&resp, "Location", want);
	assert_header(&resp, "Content-Location", want);
	http_response_release(&resp);

	send_rq(&(struct rq){ .method = "POST", .path = path, .ct = MJ,
	    .body = body }, &resp);
	assert_problem(&resp, 409, "user-exists");
	snprintf(body, sizeof(body), "\"%s\"", want);
	assert_body_member(&resp, "/existing", body);
	http_response_release(&resp);
}

Test(users, encoded_username_of_64_characters_is_routed)
{
	struct http_response resp;
	char path[8 + 3 * USER_NAME_MAX + 8];
	size_t n = 0;
	int i;

	n += (size_t)snprintf(path + n, sizeof(path) - n, "/users/");
	for (i = 0; i < USER_NAME_MAX; i++)
		n += (size_t)snprintf(path + n, sizeof(path) - n, "%%61");
	get(path, &resp);
	assert_problem(&resp, 404, "user-not-found");	/* routed */
	http_response_release(&resp);
	/* 65 decoded characters: not a username, so no route. */
	snprintf(path + n, sizeof(path) - n, "a");
	get(path, &resp);
	assert_problem(&resp, 404, "not-found");
	http_response_release(&resp);
}

Test(users, idempotency_scope_is_the_whole_principal_name)
{
	struct http_response resp;
	const char *body = "{\"username\":\"carol\"}";
	char a[301], b[301];

	/* Two principals equal in their first 255 bytes and more. */
	memset(a, 'p', 300);
	a[300] = '\0';
	memcpy(b, a, sizeof(b));
	b[299] = 'q';
	cfg.access = CONFIG_ACCESS_SELF;
	send_rq(&(struct rq){ .method = "POST", .path = "/users", .ct = MJ,
	    .key = "k-long", .user = a, .body = body }, &resp);
	cr_assert(eq(int, resp.status, 201), "[%s]", resp.body);
	http_response_release(&resp);
	send_rq(&(struct rq){ .method = "POST", .path = "/users", .ct = MJ,
	    .key = "k-long", .user = b, .body = body }, &resp);
	assert_problem(&resp, 409, "user-exists");
	assert_header(&resp, "Idempotent-Replayed", NULL);
	http_response_release(&resp);
	send_rq(&(struct rq){ .method = "POST", .path = "/users", .ct = MJ,
	    .key = "k-long", .user = a, .body = body }, &resp);
	cr_assert(eq(int, resp.status, 201));
	assert_header(&resp, "Idempotent-Replayed", "true");
	http_response_release(&resp);
}
