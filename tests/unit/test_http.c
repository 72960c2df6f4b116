/* test_http.c: query parameters, percent-decoding and response building. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <criterion/parameterized.h>

#include <fcntl.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "http.h"

/*
 * Parameters hold arrays, not pointers: Criterion runs each test in a
 * fresh process, where the parent's pointers need not be valid.
 */

/* ---- http_query_param ---------------------------------------------------- */

struct query_case {
	char query[64];
	char name[16];
	int found;
	char value[32];
	size_t offset;		/* of the value in query, when found */
};

ParameterizedTestParameters(http, query_param)
{
	static struct query_case cases[] = {
		{ "limit=5", "limit", 1, "5", 6 },
		{ "limit=5&limit=6", "limit", 1, "5", 6 },
		{ "limit=&limit=6", "limit", 1, "", 6 },
		{ "limitx=1&limit=5", "limit", 1, "5", 15 },
		{ "limitx=1", "limit", 0, "", 0 },
		{ "xlimit=1", "limit", 0, "", 0 },
		{ "lim=1", "limit", 0, "", 0 },
		{ "LIMIT=1", "limit", 0, "", 0 },
		{ "a=1&limit=", "limit", 1, "", 10 },
		{ "limit", "limit", 1, "", 5 },
		{ "limit&limit=4", "limit", 1, "", 5 },
		{ "", "limit", 0, "", 0 },
		{ "&", "limit", 0, "", 0 },
		{ "a=limit=1", "limit", 0, "", 0 },
		{ "limit=a=b", "limit", 1, "a=b", 6 },
		{ "a=1&&limit=2", "limit", 1, "2", 11 },
		{ "&limit=3", "limit", 1, "3", 7 },
		{ "cursor=abc&limit=7&prefix=x", "limit", 1, "7", 17 },
		{ "cursor=abc&limit=7&prefix=x", "prefix", 1, "x", 26 },
		{ "cursor=abc&limit=7&prefix=x", "cursor", 1, "abc", 7 },
		{ "prefix=a%20b+c", "prefix", 1, "a%20b+c", 7 },
		{ "limit=5;x=1", "limit", 1, "5;x=1", 6 },
	};

	return cr_make_param_array(struct query_case, cases,
	    sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct query_case *c, http, query_param)
{
	size_t len = 12345;
	const char *v = http_query_param(c->query, c->name, &len);

	if (!c->found) {
		cr_assert(eq(ptr, (void *)v, NULL), "[%s] %s found", c->query,
		    c->name);
		return;
	}
	cr_assert(not(eq(ptr, (void *)v, NULL)), "[%s] %s not found",
	    c->query, c->name);
	cr_assert(eq(sz, (size_t)(v - c->query), c->offset), "[%s] %s",
	    c->query, c->name);
	cr_assert(eq(sz, len, strlen(c->value)), "[%s] %s", c->query,
	    c->name);
	cr_assert(eq(int, strncmp(v, c->value, len), 0), "[%s] %s",
	    c->query, c->name);
}

/* ---- http_percent_decode ------------------------------------------------- */

struct decode_case {
	char src[32];
	int len;		/* bytes of src; -1 for strlen */
	int plus_space;
	long want_len;		/* -1: refused */
	char want[32];
};

ParameterizedTestParameters(http, percent_decode)
{
	static struct decode_case cases[] = {
		{ "", -1, 0, 0, "" },
		{ "abc", -1, 0, 3, "abc" },
		{ "a%20b", -1, 0, 3, "a b" },
		{ "%41%42", -1, 0, 2, "AB" },
		{ "%4a%4A", -1, 0, 2, "JJ" },
		{ "%2f%2F", -1, 0, 2, "//" },
		{ "%25", -1, 0, 1, "%" },
		{ "%2525", -1, 0, 3, "%25" },
		{ "%ff", -1, 0, 1, "\xff" },
		{ "%01", -1, 0, 1, "\x01" },
		{ "a+b", -1, 1, 3, "a b" },
		{ "a+b", -1, 0, 3, "a+b" },
		{ "%2B", -1, 1, 1, "+" },
		{ "++", -1, 1, 2, "  " },
		/* decoding stops at len */
		{ "abc%zz", 3, 0, 3, "abc" },
		{ "%41%", 3, 0, 1, "A" },
		/* bad escapes */
		{ "%", -1, 0, -1, "" },
		{ "%4", -1, 0, -1, "" },
		{ "a%", -1, 0, -1, "" },
		{ "a%4", -1, 0, -1, "" },
		{ "%41%4", -1, 0, -1, "" },
		{ "%zz", -1, 0, -1, "" },
		{ "%4g", -1, 0, -1, "" },
		{ "%g4", -1, 0, -1, "" },
		{ "% 1", -1, 0, -1, "" },
		{ "%+1", -1, 1, -1, "" },
		{ "%-1", -1, 0, -1, "" },
		{ "%%41", -1, 0, -1, "" },
		/* an encoded or raw NUL */
		{ "%00", -1, 0, -1, "" },
		{ "a%00b", -1, 1, -1, "" },
		{ "a\0b", 3, 0, -1, "" },
	};

	return cr_make_param_array(struct decode_case, cases,
	    sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct decode_case *c, http, percent_decode)
{
	size_t len = c->len < 0 ? strlen(c->src) : (size_t)c->len;
	char dst[64];
	long n;

	memset(dst, '#', sizeof(dst));
	n = http_percent_decode(c->src, len, dst, c->plus_space);
	cr_assert(eq(long, n, c->want_len), "[%s]", c->src);
	if (n < 0)
		return;
	cr_assert(eq(int, memcmp(dst, c->want, (size_t)n), 0), "[%s]",
	    c->src);
	cr_assert(eq(chr, dst[n], '\0'), "[%s] not terminated", c->src);
}

Test(http, percent_decode_fills_at_most_len_plus_one)
{
	char dst[8];

	memset(dst, '#', sizeof(dst));
	cr_assert(eq(long, http_percent_decode("abc", 3, dst, 0), 3));
	cr_assert(eq(str, dst, "abc"));
	cr_assert(eq(chr, dst[4], '#'));
}

/* ---- responses ---------------------------------------------------------- */

Test(http, response_init_is_a_bare_500)
{
	struct http_response r;

	memset(&r, 0x5a, sizeof(r));
	http_response_init(&r);
	cr_assert(eq(int, r.status, 500));
	cr_assert(eq(sz, r.nheaders, 0));
	cr_assert(eq(ptr, r.body, NULL));
	cr_assert(eq(sz, r.body_len, 0));
	cr_assert(eq(ptr, (void *)r.content_type, NULL));
}

Test(http, release_frees_and_reinitializes)
{
	struct http_response r;
	struct json_object *o = json_object_new_object();

	http_response_init(&r);
	cr_assert(eq(int, http_add_header(&r, "ETag", "\"%d\"", 7), 0));
	cr_assert(eq(int, http_set_json(&r, 200, "application/json", o), 0));
	json_object_put(o);
	http_response_release(&r);
	cr_assert(eq(int, r.status, 500));
	cr_assert(eq(sz, r.nheaders, 0));
	cr_assert(eq(ptr, r.body, NULL));
	cr_assert(eq(ptr, (void *)r.content_type, NULL));
	http_response_release(&r);	/* twice is harmless */
}

Test(http, add_header_formats_and_copies_the_value)
{
	struct http_response r;
	char buf[16];

	http_response_init(&r);
	snprintf(buf, sizeof(buf), "abc");
	cr_assert(eq(int, http_add_header(&r, "ETag", "\"%d\"", 1841), 0));
	cr_assert(eq(int, http_add_header(&r, "Link", "<%s>; rel=\"next\"",
	    buf), 0));
	buf[0] = 'X';
	cr_assert(eq(sz, r.nheaders, 2));
	cr_assert(eq(str, (char *)r.headers[0].name, "ETag"));
	cr_assert(eq(str, r.headers[0].value, "\"1841\""));
	cr_assert(eq(str, r.headers[1].value, "<abc>; rel=\"next\""));
	http_response_release(&r);
}

struct crlf_case {
	char value[32];
};

ParameterizedTestParameters(http, add_header_refuses_cr_lf)
{
	static struct crlf_case cases[] = {
		{ "\r" }, { "\n" }, { "a\r\nb" }, { "a\nX-Evil: 1" },
		{ "a\rb" }, { "\r\n" }, { "trailing\n" }, { "\nleading" },
	};

	return cr_make_param_array(struct crlf_case, cases,
	    sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct crlf_case *c, http, add_header_refuses_cr_lf)
{
	struct http_response r;

	http_response_init(&r);
	cr_assert(eq(int, http_add_header(&r, "X-Test", "%s", c->value), -1));
	cr_assert(eq(sz, r.nheaders, 0));
	cr_assert(eq(ptr, (void *)http_header(&r, "X-Test"), NULL));
	/* The table still works afterwards. */
	cr_assert(eq(int, http_add_header(&r, "X-Test", "ok"), 0));
	cr_assert(eq(str, (char *)http_header(&r, "X-Test"), "ok"));
	http_response_release(&r);
}

Test(http, add_header_refuses_a_full_table)
{
	struct http_response r;
	size_t i;

	cr_assert(eq(int, HTTP_HEADERS_MAX, 16));
	http_response_init(&r);
	for (i = 0; i < HTTP_HEADERS_MAX; i++)
		cr_assert(eq(int, http_add_header(&r, "X-N", "%zu", i), 0),
		    "header %zu", i);
	cr_assert(eq(sz, r.nheaders, HTTP_HEADERS_MAX));
	cr_assert(eq(int, http_add_header(&r, "X-Last", "no room"), -1));
	cr_assert(eq(sz, r.nheaders, HTTP_HEADERS_MAX));
	cr_assert(eq(ptr, (void *)http_header(&r, "X-Last"), NULL));
	http_response_release(&r);
}

Test(http, add_header_accepts_an_empty_value)
{
	struct http_response r;

	http_response_init(&r);
	cr_assert(eq(int, http_add_header(&r, "X-Empty", "%s", ""), 0));
	cr_assert(eq(str, (char *)http_header(&r, "X-Empty"), ""));
	http_response_release(&r);
}

/* The formats add_header takes without printf: each as printf would. */
Test(http, add_header_shortcuts_match_printf)
{
	struct http_response r;

	http_response_init(&r);
	cr_assert(eq(int, http_add_header(&r, "X-Cut", "%.*s", 3, "abcdef"),
	    0));
	cr_assert(eq(str, (char *)http_header(&r, "X-Cut"), "abc"));
	cr_assert(eq(int, http_add_header(&r, "X-Const", "private, no-cache"),
	    0));
	cr_assert(eq(str, (char *)http_header(&r, "X-Const"),
	    "private, no-cache"));
	cr_assert(eq(int, http_add_header(&r, "X-Pct", "100%%"), 0));
	cr_assert(eq(str, (char *)http_header(&r, "X-Pct"), "100%"));
	/* Neither shortcut lets a line break through. */
	cr_assert(eq(int, http_add_header(&r, "X-Bad", "a\r\nb"), -1));
	cr_assert(eq(int, http_add_header(&r, "X-Bad", "%.*s", 3, "a\nbc"),
	    -1));
	http_response_release(&r);
}

Test(http, header_lookup_is_case_insensitive_and_first_wins)
{
	struct http_response r;

	http_response_init(&r);
	cr_assert(eq(int, http_add_header(&r, "Content-Location", "/a"), 0));
	cr_assert(eq(int, http_add_header(&r, "ETag", "\"1\""), 0));
	cr_assert(eq(int, http_add_header(&r, "etag", "\"2\""), 0));
	cr_assert(eq(str, (char *)http_header(&r, "ETag"), "\"1\""));
	cr_assert(eq(str, (char *)http_header(&r, "etag"), "\"1\""));
	cr_assert(eq(str, (char *)http_header(&r, "ETAG"), "\"1\""));
	cr_assert(eq(str, (char *)http_header(&r, "content-location"), "/a"));
	cr_assert(eq(ptr, (void *)http_header(&r, "Location"), NULL));
	cr_assert(eq(ptr, (void *)http_header(&r, "ETa"), NULL));
	cr_assert(eq(ptr, (void *)http_header(&r, "ETags"), NULL));
	http_response_release(&r);
}

Test(http, set_json_serializes_compactly_without_consuming)
{
	struct http_response r;
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "b", json_object_new_string("x/y"));
	json_object_object_add(o, "a", json_object_new_int(1));
	json_object_object_add(o, "c", json_object_new_array());
	http_response_init(&r);
	cr_assert(eq(int, http_set_json(&r, 201, "application/json", o), 0));
	cr_assert(eq(int, r.status, 201));
	cr_assert(eq(str, (char *)r.content_type, "application/json"));
	cr_assert(eq(str, r.body, "{\"b\":\"x/y\",\"a\":1,\"c\":[]}"));
	cr_assert(eq(sz, r.body_len, strlen(r.body)));
	/* o is still the caller's. */
	cr_assert(eq(int, json_object_object_length(o), 3));
	json_object_put(o);
	http_response_release(&r);
}

Test(http, set_json_replaces_an_earlier_body)
{
	struct http_response r;
	struct json_object *a = json_object_new_object();
	struct json_object *b = json_object_new_array();

	json_object_object_add(a, "first", json_object_new_boolean(1));
	http_response_init(&r);
	cr_assert(eq(int, http_set_json(&r, 200, "application/json", a), 0));
	cr_assert(eq(int, http_set_json(&r, 409, "application/problem+json",
	    b), 0));
	cr_assert(eq(int, r.status, 409));
	cr_assert(eq(str, (char *)r.content_type,
	    "application/problem+json"));
	cr_assert(eq(str, r.body, "[]"));
	cr_assert(eq(sz, r.body_len, 2));
	json_object_put(a);
	json_object_put(b);
	http_response_release(&r);
}

Test(http, set_json_keeps_headers)
{
	struct http_response r;
	struct json_object *o = json_object_new_object();

	http_response_init(&r);
	cr_assert(eq(int, http_add_header(&r, "Allow", "GET"), 0));
	cr_assert(eq(int, http_set_json(&r, 405, "application/problem+json",
	    o), 0));
	cr_assert(eq(str, (char *)http_header(&r, "Allow"), "GET"));
	cr_assert(eq(str, r.body, "{}"));
	json_object_put(o);
	http_response_release(&r);
}

/* ---- request ids --------------------------------------------------------- */

#define UUID4_RE "^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-" \
	"[0-9a-f]{12}$"

Test(http, request_id_is_a_uuid_v4)
{
	struct http_request req;
	regex_t re;
	int i;

	cr_assert(eq(int, HTTP_REQUEST_ID_SIZE, 37));
	cr_assert(eq(int, regcomp(&re, UUID4_RE, REG_EXTENDED | REG_NOSUB),
	    0));
	/* Version and variant bits are forced, whatever getrandom gave. */
	for (i = 0; i < 200; i++) {
		memset(&req, 0, sizeof(req));
		http_new_request_id(&req);
		cr_assert(eq(sz, strlen(req.request_id), 36));
		cr_assert(eq(int, regexec(&re, req.request_id, 0, NULL, 0),
		    0), "[%s]", req.request_id);
	}
	regfree(&re);
}

Test(http, request_ids_differ)
{
	struct http_request a, b;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	http_new_request_id(&a);
	http_new_request_id(&b);
	cr_assert(not(eq(str, a.request_id, b.request_id)));
}

Test(http, request_release_frees_and_clears)
{
	struct http_request req;

	memset(&req, 0, sizeof(req));
	req.body = strdup("{}");
	req.body_len = 2;
	req.path_buf = strdup("/users");
	req.path = req.path_buf;
	http_request_release(&req);
	cr_assert(eq(ptr, req.body, NULL));
	cr_assert(eq(ptr, req.path_buf, NULL));
	cr_assert(eq(sz, req.body_len, 0));
	http_request_release(&req);	/* twice is harmless */
}

/* ---- reason phrases ----------------------------------------------------- */

struct reason_case {
	int status;
	char reason[32];
};

ParameterizedTestParameters(http, reason)
{
	static struct reason_case cases[] = {
		{ 200, "OK" },
		{ 201, "Created" },
		{ 204, "No Content" },
		{ 304, "Not Modified" },
		{ 400, "Bad Request" },
		{ 401, "Unauthorized" },
		{ 403, "Forbidden" },
		{ 404, "Not Found" },
		{ 405, "Method Not Allowed" },
		{ 409, "Conflict" },
		{ 412, "Precondition Failed" },
		{ 413, "Content Too Large" },
		{ 415, "Unsupported Media Type" },
		{ 422, "Unprocessable Content" },
		{ 428, "Precondition Required" },
		{ 500, "Internal Server Error" },
		{ 503, "Service Unavailable" },
		{ 0, "" },
		{ 202, "" },
		{ 418, "" },
		{ 999, "" },
		{ -1, "" },
	};

	return cr_make_param_array(struct reason_case, cases,
	    sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct reason_case *c, http, reason)
{
	const char *r = http_reason(c->status);

	cr_assert(not(eq(ptr, (void *)r, NULL)));
	cr_assert(eq(str, (char *)r, c->reason), "%d", c->status);
}

/* ---- CGI I/O: the request read and the response written ------------------ */

/*
 * http_serve_cgi() reads the environment and fd 0 and writes fd 1, so
 * these tests point both at files in a temp directory (each test runs in
 * its own process).
 */

static char cgidir[64], in_path[128], out_path[128];

static const char *const cgi_vars[] = {
	"REQUEST_METHOD", "REQUEST_URI", "SCRIPT_NAME", "PATH_INFO",
	"QUERY_STRING", "CONTENT_TYPE", "CONTENT_LENGTH", "HTTP_IF_MATCH",
	"HTTP_IF_NONE_MATCH", "HTTP_IDEMPOTENCY_KEY", "REMOTE_USER",
	"REMOTE_ADDR", "REQUEST_ID", NULL
};

static void
cgi_setup(void)
{
	size_t i;

	snprintf(cgidir, sizeof(cgidir), "/tmp/test_http.XXXXXX");
	cr_assert(not(eq(ptr, mkdtemp(cgidir), NULL)));
	snprintf(in_path, sizeof(in_path), "%s/in", cgidir);
	snprintf(out_path, sizeof(out_path), "%s/out", cgidir);
	for (i = 0; cgi_vars[i] != NULL; i++)
		unsetenv(cgi_vars[i]);
}

static void
cgi_teardown(void)
{
	unlink(in_path);
	unlink(out_path);
	rmdir(cgidir);
}

TestSuite(http_cgi, .init = cgi_setup, .fini = cgi_teardown);

/* What the handler saw, copied (NULL strings as "(null)"). */
static struct {
	int called;
	char method[16], path[64], query[64], ct[64], im[32], inm[32];
	char key[32], user[32], addr[32], body[64];
	int state;
	size_t body_len, content_length;
	char request_id[HTTP_REQUEST_ID_SIZE];
} seen;

/* How the handler answers. */
static enum { ANSWER_JSON, ANSWER_204, ANSWER_304, ANSWER_NOTHING } mode;

static void
copy(char *dst, size_t size, const char *s)
{
	snprintf(dst, size, "%s", s != NULL ? s : "(null)");
}

static void
record(void *arg, const struct http_request *req, struct http_response *resp)
{
	struct json_object *o;

	(void)arg;
	seen.called++;
	copy(seen.method, sizeof(seen.method), req->method);
	copy(seen.path, sizeof(seen.path), req->path);
	copy(seen.query, sizeof(seen.query), req->query);
	copy(seen.ct, sizeof(seen.ct), req->content_type);
	copy(seen.im, sizeof(seen.im), req->if_match);
	copy(seen.inm, sizeof(seen.inm), req->if_none_match);
	copy(seen.key, sizeof(seen.key), req->idempotency_key);
	copy(seen.user, sizeof(seen.user), req->remote_user);
	copy(seen.addr, sizeof(seen.addr), req->remote_addr);
	copy(seen.body, sizeof(seen.body), req->body);
	seen.state = (int)req->body_state;
	seen.body_len = req->body_len;
	seen.content_length = req->content_length;
	memcpy(seen.request_id, req->request_id, sizeof(seen.request_id));
	switch (mode) {
	case ANSWER_JSON:
		o = json_object_new_object();
		http_set_json(resp, 201, "application/json", o);
		json_object_put(o);
		http_add_header(resp, "ETag", "\"7\"");
		http_add_header(resp, "Location", "/users/bob");
		break;
	case ANSWER_204:
	case ANSWER_304:
		/* A body set by mistake must still not be sent. */
		o = json_object_new_object();
		http_set_json(resp, mode == ANSWER_204 ? 204 : 304,
		    "application/json", o);
		json_object_put(o);
		http_add_header(resp, "ETag", "\"7\"");
		break;
	case ANSWER_NOTHING:
		break;
	}
}

/* Runs one CGI request with stdin holding in; returns what was written. */
static char *
run_cgi(const char *in, size_t inlen, size_t max_body)
{
	int fd, saved_in, saved_out;
	FILE *f;
	char *out;
	long n;

	f = fopen(in_path, "w");
	cr_assert(not(eq(ptr, f, NULL)));
	cr_assert(eq(sz, fwrite(in, 1, inlen, f), inlen));
	cr_assert(eq(int, fclose(f), 0));
	memset(&seen, 0, sizeof(seen));

	saved_in = dup(0);
	saved_out = dup(1);
	fd = open(in_path, O_RDONLY);
	cr_assert(ge(int, fd, 0));
	dup2(fd, 0);
	close(fd);
	fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	cr_assert(ge(int, fd, 0));
	dup2(fd, 1);
	close(fd);
	n = http_serve_cgi(max_body, record, NULL);
	dup2(saved_in, 0);
	dup2(saved_out, 1);
	close(saved_in);
	close(saved_out);
	cr_assert(eq(long, n, 0));

	f = fopen(out_path, "r");
	cr_assert(not(eq(ptr, f, NULL)));
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	out = malloc((size_t)n + 1);
	cr_assert(not(eq(ptr, out, NULL)));
	cr_assert(eq(sz, fread(out, 1, (size_t)n, f), (size_t)n));
	out[n] = '\0';
	fclose(f);
	return out;
}

Test(http_cgi, request_is_read_from_params_and_stdin)
{
	char *out;

	setenv("REQUEST_METHOD", "PATCH", 1);
	setenv("REQUEST_URI", "/api/users/bob?x=1", 1);
	setenv("QUERY_STRING", "x=1", 1);
	setenv("CONTENT_TYPE", "application/merge-patch+json", 1);
	setenv("CONTENT_LENGTH", "2", 1);
	setenv("HTTP_IF_MATCH", "\"5\"", 1);
	setenv("HTTP_IF_NONE_MATCH", "*", 1);
	setenv("HTTP_IDEMPOTENCY_KEY", "k1", 1);
	setenv("REMOTE_USER", "bob", 1);
	setenv("REMOTE_ADDR", "192.0.2.1", 1);
	out = run_cgi("{}", 2, 65536);
	cr_assert(eq(int, seen.called, 1));
	cr_assert(eq(str, seen.method, "PATCH"));
	cr_assert(eq(str, seen.path, "/api/users/bob"));
	cr_assert(eq(str, seen.query, "x=1"));
	cr_assert(eq(str, seen.ct, "application/merge-patch+json"));
	cr_assert(eq(str, seen.im, "\"5\""));
	cr_assert(eq(str, seen.inm, "*"));
	cr_assert(eq(str, seen.key, "k1"));
	cr_assert(eq(str, seen.user, "bob"));
	cr_assert(eq(str, seen.addr, "192.0.2.1"));
	cr_assert(eq(str, seen.body, "{}"));
	cr_assert(eq(sz, seen.body_len, 2));
	cr_assert(eq(int, seen.state, HTTP_BODY_OK));
	free(out);
}

Test(http_cgi, absent_params_have_defaults)
{
	char *out;

	out = run_cgi("", 0, 65536);
	cr_assert(eq(str, seen.method, "GET"));
	cr_assert(eq(str, seen.query, ""));
	cr_assert(eq(str, seen.ct, "(null)"));
	cr_assert(eq(str, seen.im, "(null)"));
	cr_assert(eq(str, seen.user, "(null)"));
	cr_assert(eq(str, seen.body, ""));
	cr_assert(eq(sz, seen.body_len, 0));
	cr_assert(eq(int, seen.state, HTTP_BODY_OK));
	free(out);
}

Test(http_cgi, empty_content_type_is_absent)
{
	char *out;

	setenv("CONTENT_TYPE", "", 1);
	out = run_cgi("", 0, 65536);
	cr_assert(eq(str, seen.ct, "(null)"));
	free(out);
}

Test(http_cgi, path_without_request_uri_is_script_name_and_path_info)
{
	char *out;

	setenv("SCRIPT_NAME", "/cgi-bin/userreg", 1);
	setenv("PATH_INFO", "/users/bob", 1);
	out = run_cgi("", 0, 65536);
	cr_assert(eq(str, seen.path, "/cgi-bin/userreg/users/bob"));
	free(out);
}

Test(http_cgi, body_limit_is_inclusive)
{
	char *out;

	setenv("REQUEST_METHOD", "POST", 1);
	setenv("CONTENT_LENGTH", "4", 1);
	out = run_cgi("abcd", 4, 4);
	cr_assert(eq(int, seen.state, HTTP_BODY_OK));
	cr_assert(eq(str, seen.body, "abcd"));
	free(out);

	setenv("CONTENT_LENGTH", "5", 1);
	out = run_cgi("abcde", 5, 4);
	cr_assert(eq(int, seen.state, HTTP_BODY_TOO_LARGE));
	cr_assert(eq(sz, seen.content_length, 5));
	cr_assert(eq(sz, seen.body_len, 0), "a refused body was read");
	cr_assert(eq(str, seen.body, ""));
	free(out);
}

Test(http_cgi, short_body_is_truncated)
{
	char *out;

	setenv("REQUEST_METHOD", "POST", 1);
	setenv("CONTENT_LENGTH", "10", 1);
	out = run_cgi("abc", 3, 65536);
	cr_assert(eq(int, seen.state, HTTP_BODY_TRUNCATED));
	cr_assert(eq(sz, seen.body_len, 3));
	cr_assert(eq(str, seen.body, "abc"));
	free(out);
}

Test(http_cgi, only_content_length_bytes_are_read)
{
	char *out;

	setenv("REQUEST_METHOD", "POST", 1);
	setenv("CONTENT_LENGTH", "2", 1);
	out = run_cgi("{}trailing", 10, 65536);
	cr_assert(eq(int, seen.state, HTTP_BODY_OK));
	cr_assert(eq(str, seen.body, "{}"));
	free(out);
}

struct length_case {
	char value[32];
};

ParameterizedTestParameters(http_cgi, bad_content_length)
{
	static struct length_case cases[] = {
		{ "abc" }, { "-1" }, { "+5" }, { "1e3" }, { " 5" }, { "5 " },
		{ "0x10" }, { "5.0" }, { "-99999999999999999999999" },
	};

	return cr_make_param_array(struct length_case, cases,
	    sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct length_case *c, http_cgi, bad_content_length)
{
	char *out;

	setenv("REQUEST_METHOD", "POST", 1);
	setenv("CONTENT_LENGTH", c->value, 1);
	out = run_cgi("12345", 5, 65536);
	cr_assert(eq(int, seen.state, HTTP_BODY_BAD_LENGTH), "[%s]",
	    c->value);
	cr_assert(eq(sz, seen.body_len, 0));
	free(out);
}

/* API.md: a Content-Length too large to represent is 413, not 400. */
Test(http_cgi, content_length_too_large_to_represent_is_too_large)
{
	static const char *const values[] = {
		"99999999999999999999999", "18446744073709551616",
		"18446744073709551615",
	};
	size_t i;
	char *out;

	setenv("REQUEST_METHOD", "POST", 1);
	for (i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		setenv("CONTENT_LENGTH", values[i], 1);
		out = run_cgi("12345", 5, 65536);
		cr_assert(eq(int, seen.state, HTTP_BODY_TOO_LARGE), "[%s]",
		    values[i]);
		cr_assert(eq(sz, seen.body_len, 0), "[%s]", values[i]);
		free(out);
	}
}

Test(http_cgi, response_has_status_headers_request_id_and_body)
{
	char *out, want[512];

	setenv("REQUEST_METHOD", "POST", 1);
	mode = ANSWER_JSON;
	out = run_cgi("", 0, 65536);
	snprintf(want, sizeof(want), "Status: 201 Created\r\n"
	    "ETag: \"7\"\r\nLocation: /users/bob\r\n"
	    "X-Request-Id: %s\r\n"
	    "Content-Type: application/json\r\nContent-Length: 2\r\n"
	    "\r\n{}", seen.request_id);
	cr_assert(eq(str, out, want));
	free(out);
}

Test(http_cgi, head_announces_the_length_without_the_body)
{
	char *out, want[512];

	setenv("REQUEST_METHOD", "HEAD", 1);
	mode = ANSWER_JSON;
	out = run_cgi("", 0, 65536);
	snprintf(want, sizeof(want), "Status: 201 Created\r\n"
	    "ETag: \"7\"\r\nLocation: /users/bob\r\n"
	    "X-Request-Id: %s\r\n"
	    "Content-Type: application/json\r\nContent-Length: 2\r\n"
	    "\r\n", seen.request_id);
	cr_assert(eq(str, out, want));
	free(out);
}

Test(http_cgi, no_content_and_not_modified_send_no_body)
{
	char *out, want[512];

	mode = ANSWER_204;
	out = run_cgi("", 0, 65536);
	snprintf(want, sizeof(want), "Status: 204 No Content\r\n"
	    "ETag: \"7\"\r\nX-Request-Id: %s\r\n\r\n", seen.request_id);
	cr_assert(eq(str, out, want));
	free(out);
	mode = ANSWER_304;
	out = run_cgi("", 0, 65536);
	snprintf(want, sizeof(want), "Status: 304 Not Modified\r\n"
	    "ETag: \"7\"\r\nX-Request-Id: %s\r\n\r\n", seen.request_id);
	cr_assert(eq(str, out, want));
	free(out);
}

Test(http_cgi, unanswered_request_is_a_bare_500)
{
	char *out, want[256];

	mode = ANSWER_NOTHING;
	out = run_cgi("", 0, 65536);
	snprintf(want, sizeof(want), "Status: 500 Internal Server Error\r\n"
	    "X-Request-Id: %s\r\n\r\n", seen.request_id);
	cr_assert(eq(str, out, want));
	free(out);
}

Test(http_cgi, every_request_gets_a_new_id)
{
	char first[HTTP_REQUEST_ID_SIZE], *out;

	mode = ANSWER_NOTHING;
	out = run_cgi("", 0, 65536);
	memcpy(first, seen.request_id, sizeof(first));
	free(out);
	out = run_cgi("", 0, 65536);
	cr_assert(not(eq(str, first, seen.request_id)));
	cr_assert(eq(sz, strlen(first), 36));
	free(out);
}

/* ---- http_response_encode / http_response_decode ---------------------- */

Test(http, response_round_trip_restores_headers_type_and_body)
{
	struct http_response in, out;
	const char body[] = "{\"username\":\"alice\",\"roles\":[]}";
	char *buf;
	size_t len = 0, i;

	http_response_init(&in);
	in.status = 201;
	in.content_type = "application/json";
	in.body = strdup(body);
	in.body_len = strlen(body);
	cr_assert(eq(int, http_add_header(&in, "ETag", "\"7\""), 0));
	cr_assert(eq(int, http_add_header(&in, "Content-Location",
	    "/api/users/alice"), 0));
	cr_assert(eq(int, http_add_header(&in, "Location",
	    "/api/users/alice"), 0));

	buf = http_response_encode(&in, &len);
	cr_assert(not(eq(ptr, buf, NULL)));
	cr_assert(eq(sz, len, strlen(buf)));

	http_response_init(&out);
	cr_assert(eq(int, http_response_decode(buf, len, 201, &out), 0));
	cr_assert(eq(int, out.status, 201));
	cr_assert(eq(str, (char *)out.content_type, "application/json"));
	cr_assert(eq(sz, out.nheaders, 3));
	for (i = 0; i < 3; i++) {
		cr_assert(eq(str, (char *)out.headers[i].name,
		    (char *)in.headers[i].name));
		cr_assert(eq(str, out.headers[i].value, in.headers[i].value));
	}
	cr_assert(eq(sz, out.body_len, in.body_len));
	cr_assert(eq(int, memcmp(out.body, body, out.body_len), 0));
	cr_assert(eq(chr, out.body[out.body_len], '\0'));
	free(buf);
	http_response_release(&in);
	http_response_release(&out);
}

Test(http, response_round_trip_of_a_problem_with_newlines_in_the_body)
{
	struct http_response in, out;
	const char body[] = "{\"a\":1}\n\nX-Evil: 1\n\n";
	char *buf;
	size_t len = 0;

	http_response_init(&in);
	in.status = 409;
	in.content_type = "application/problem+json";
	in.body = strdup(body);
	in.body_len = strlen(body);
	buf = http_response_encode(&in, &len);
	cr_assert(not(eq(ptr, buf, NULL)));
	http_response_init(&out);
	cr_assert(eq(int, http_response_decode(buf, len, 409, &out), 0));
	cr_assert(eq(int, out.status, 409));
	cr_assert(eq(str, (char *)out.content_type,
	    "application/problem+json"));
	cr_assert(eq(sz, out.nheaders, 0));
	cr_assert(eq(sz, out.body_len, strlen(body)));
	cr_assert(eq(int, memcmp(out.body, body, out.body_len), 0));
	free(buf);
	http_response_release(&in);
	http_response_release(&out);
}

Test(http, response_round_trip_without_a_body)
{
	struct http_response in, out;
	char *buf;
	size_t len = 0;

	http_response_init(&in);
	in.status = 204;
	buf = http_response_encode(&in, &len);
	cr_assert(not(eq(ptr, buf, NULL)));
	http_response_init(&out);
	cr_assert(eq(int, http_response_decode(buf, len, 204, &out), 0));
	cr_assert(eq(int, out.status, 204));
	cr_assert(eq(ptr, (void *)out.content_type, NULL));
	cr_assert(eq(sz, out.nheaders, 0));
	cr_assert(eq(sz, out.body_len, 0));
	cr_assert(eq(ptr, out.body, NULL));
	free(buf);
	http_response_release(&out);
}

Test(http, response_decode_drops_headers_it_does_not_know)
{
	const char buf[] = "X-Request-Id: 0b5e3c1a-9d2f-4e6b-8a7c-1d2e3f405162\n"
	    "ETag: \"3\"\nX-Evil: 1\nSet-Cookie: a=b\n\n{}";
	struct http_response out;

	http_response_init(&out);
	cr_assert(eq(int, http_response_decode(buf, sizeof(buf) - 1, 201,
	    &out), 0));
	cr_assert(eq(sz, out.nheaders, 1));
	cr_assert(eq(str, (char *)http_header(&out, "ETag"), "\"3\""));
	cr_assert(eq(ptr, (void *)http_header(&out, "X-Request-Id"), NULL));
	cr_assert(eq(ptr, (void *)http_header(&out, "X-Evil"), NULL));
	cr_assert(eq(str, out.body, "{}"));
	http_response_release(&out);
}

Test(http, response_decode_drops_a_content_type_it_does_not_send)
{
	const char buf[] = "Content-Type: text/html\n\n<p>";
	struct http_response out;

	http_response_init(&out);
	cr_assert(eq(int, http_response_decode(buf, sizeof(buf) - 1, 200,
	    &out), 0));
	cr_assert(eq(ptr, (void *)out.content_type, NULL));
	http_response_release(&out);
}

/* A replay handed on by the writer keeps saying it is one. */
Test(http, response_round_trip_keeps_idempotent_replayed)
{
	struct http_response in, out;
	char *buf;
	size_t len = 0;

	http_response_init(&in);
	in.status = 201;
	cr_assert(eq(int, http_add_header(&in, "Idempotent-Replayed",
	    "true"), 0));
	cr_assert(not(eq(ptr, buf = http_response_encode(&in, &len), NULL)));
	http_response_init(&out);
	cr_assert(eq(int, http_response_decode(buf, len, 201, &out), 0));
	cr_assert(eq(str, (char *)http_header(&out, "Idempotent-Replayed"),
	    "true"));
	free(buf);
	http_response_release(&in);
	http_response_release(&out);
}

Test(http, response_round_trip_keeps_every_header_the_service_sends)
{
	static const char *const names[] = {
		"Location", "Content-Location", "ETag", "Cache-Control",
		"Allow", "Accept", "Accept-Patch", "Link", "Retry-After",
		"WWW-Authenticate", "Idempotent-Replayed"
	};
	struct http_response in, out;
	char *buf;
	size_t len = 0, i, n = sizeof(names) / sizeof(names[0]);

	http_response_init(&in);
	in.status = 200;
	for (i = 0; i < n; i++)
		cr_assert(eq(int, http_add_header(&in, names[i], "v%zu", i),
		    0));
	cr_assert(not(eq(ptr, buf = http_response_encode(&in, &len), NULL)));
	http_response_init(&out);
	cr_assert(eq(int, http_response_decode(buf, len, 200, &out), 0));
	cr_assert(eq(sz, out.nheaders, n));
	for (i = 0; i < n; i++) {
		cr_assert(eq(str, (char *)out.headers[i].name,
		    (char *)names[i]));
		cr_assert(eq(str, out.headers[i].value, in.headers[i].value));
	}
	free(buf);
	http_response_release(&in);
	http_response_release(&out);
}

Test(http, response_decode_gives_static_names_case_folded)
{
	const char buf[] = "content-type: APPLICATION/JSON\n"
	    "etag: \"9\"\nlink: </users?cursor=x>; rel=\"next\"\n\n[]";
	struct http_response out;

	http_response_init(&out);
	cr_assert(eq(int, http_response_decode(buf, sizeof(buf) - 1, 200, &out), 0));
	cr_assert(eq(str, (char *)out.content_type, "application/json"));
	cr_assert(eq(sz, out.nheaders, 2));
	cr_assert(eq(str, (char *)out.headers[0].name, "ETag"));
	cr_assert(eq(str, (char *)out.headers[1].name, "Link"));
	cr_assert(eq(str, out.headers[1].value,
	    "</users?cursor=x>; rel=\"next\""));
	cr_assert(eq(str, out.body, "[]"));
	http_response_release(&out);
}

struct garbage_case {
	char buf[64];
};

ParameterizedTestParameters(http, response_decode_refuses_garbage)
{
	static struct garbage_case cases[] = {
		{ "" },				/* nothing at all */
		{ "garbage" },			/* no line end */
		{ "ETag: \"1\"" },		/* unterminated header */
		{ "ETag: \"1\"\n" },		/* no blank line */
		{ "no colon here\n\n{}" },
		{ "ETag:\n\n{}" },		/* no room for ": " */
		{ "ETag: a\rb\n\n{}" },		/* CR in a value */
		{ "Content-Type: a\nETag\n\n" },
		{ "ETag: \"1\"\nLink" },		/* second line unterminated */
	};

	return cr_make_param_array(struct garbage_case, cases,
	    sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct garbage_case *c, http, response_decode_refuses_garbage)
{
	struct http_response out;

	http_response_init(&out);
	cr_assert(eq(int, http_response_decode(c->buf, strlen(c->buf), 200, &out), -1),
	    "[%s]", c->buf);
	http_response_release(&out);
}

Test(http, response_decode_refuses_more_headers_than_a_response_holds)
{
	struct http_response out;
	char buf[1024];
	size_t n = 0, i;

	for (i = 0; i <= HTTP_HEADERS_MAX; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n,
		    "Link: <%zu>\n", i);
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\n{}");
	http_response_init(&out);
	cr_assert(eq(int, http_response_decode(buf, n, 200, &out), -1));
	http_response_release(&out);
}

Test(http, response_decode_reads_only_len_bytes)
{
	const char buf[] = "ETag: \"1\"\n\n{}TRAILING";
	struct http_response out;

	http_response_init(&out);
	cr_assert(eq(int, http_response_decode(buf, strlen(buf) - 8, 200, &out), 0));
	cr_assert(eq(sz, out.body_len, 2));
	cr_assert(eq(str, out.body, "{}"));
	http_response_release(&out);
}

/* ---- the front server's request id ---------------------------------- */

Test(http, adopts_a_lowercase_uuid_as_request_id)
{
	struct http_request req;

	memset(&req, 0, sizeof(req));
	cr_assert(eq(int, http_adopt_request_id(&req,
	    "0123abcd-4567-89ef-0123-456789abcdef"), 0));
	cr_assert(eq(str, req.request_id,
	    "0123abcd-4567-89ef-0123-456789abcdef"));
}

Test(http, refuses_anything_else_as_request_id)
{
	static const char *const bad[] = {
		"", "0123abcd-4567-89ef-0123-456789abcde",
		"0123abcd-4567-89ef-0123-456789abcdef0",
		"0123ABCD-4567-89EF-0123-456789ABCDEF",
		"0123abcd04567-89ef-0123-456789abcdef",
		"0123abcd-4567-89ef-0123-456789abcde\n",
		"0123abcd-4567-89ef-0123-456789abcdeg",
		"0123abcd-4567-89ef-0123-45678\r\nX: y",
		"------------------------------------",
	};
	struct http_request req;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&req, 0, sizeof(req));
		strcpy(req.request_id, "kept");
		cr_assert(eq(int, http_adopt_request_id(&req, bad[i]), -1),
		    "accepted \"%s\"", bad[i]);
		cr_assert(eq(str, req.request_id, "kept"));
	}
	cr_assert(eq(int, http_adopt_request_id(&req, NULL), -1));
}

Test(http_cgi, front_server_request_id_is_the_answers_id)
{
	char *out;

	setenv("REQUEST_ID", "0123abcd-4567-49ef-8123-456789abcdef", 1);
	out = run_cgi("", 0, 65536);
	cr_assert(not(eq(ptr, strstr(out,
	    "X-Request-Id: 0123abcd-4567-49ef-8123-456789abcdef\r\n"), NULL)),
	    "%s", out);
	free(out);
	/* A malformed one is ignored: the worker makes its own. */
	setenv("REQUEST_ID", "not-a-uuid\r\nX-Evil: 1", 1);
	out = run_cgi("", 0, 65536);
	cr_assert(eq(ptr, strstr(out, "X-Evil"), NULL), "%s", out);
	cr_assert(not(eq(ptr, strstr(out, "X-Request-Id: "), NULL)), "%s",
	    out);
	free(out);
}
