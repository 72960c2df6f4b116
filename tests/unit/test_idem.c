/* test_idem.c: Idempotency-Key syntax, scope, fingerprint, replay, store. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <criterion/parameterized.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "http.h"
#include "idem.h"
#include "registry.h"
#include "sha256.h"
#include "support.h"

/*
 * Parameters hold arrays, not pointers: Criterion runs each test in a
 * fresh process, where the parent's pointers need not be valid.
 */

/* ---- idem_key_valid ------------------------------------------------------ */

struct key_case {
	char header[40];
	int valid;
};

ParameterizedTestParameters(idem, key_valid)
{
	static struct key_case cases[] = {
		/* bare tokens: 1-255 visible ASCII */
		{ "a", 1 },
		{ "abc-123", 1 },
		{ "8e3f0c52-6d6b-4a0e-9f1f-3c2b1a0d9e8f", 1 },
		{ "!#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", 1 },
		{ "a\"b", 1 },
		{ "a\\b", 1 },
		{ "", 0 },
		{ " ", 0 },
		{ " a", 0 },
		{ "a ", 0 },
		{ "a b", 0 },
		{ "a\tb", 0 },
		{ "\t", 0 },
		{ "a\x01", 0 },
		{ "a\x1f", 0 },
		{ "a\x7f", 0 },
		{ "a\r\nb", 0 },
		{ "caf\xc3\xa9", 0 },
		{ "\x80", 0 },
		{ "\xff", 0 },
		/* RFC 8941 strings */
		{ "\"abc\"", 1 },
		{ "\"a\\\"b\"", 1 },		/* "a\"b" */
		{ "\"a\\\\b\"", 1 },		/* "a\\b" */
		{ "\"\\\"\"", 1 },		/* "\"" */
		{ "\"\\\\\"", 1 },		/* "\\" */
		{ "\"a'b\"", 1 },
		{ "\"\"", 0 },			/* empty */
		{ "\"a b\"", 0 },		/* the key must be visible ASCII */
		{ "\" \"", 0 },
		{ "\"a\tb\"", 0 },
		{ "\"a\x7f\"", 0 },
		{ "\"caf\xc3\xa9\"", 0 },
		{ "\"a\\nb\"", 0 },		/* bad escape */
		{ "\"a\\tb\"", 0 },
		{ "\"a\\u0041\"", 0 },
		{ "\"a\\\"", 0 },		/* escape eats the closing quote */
		{ "\"\\\"", 0 },
		{ "\"a\"b\"", 0 },		/* unescaped quote inside */
		{ "\"abc", 0 },			/* unterminated */
		{ "\"", 0 },
	};

	return cr_make_param_array(struct key_case, cases,
	    sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct key_case *c, idem, key_valid)
{
	cr_assert(eq(int, idem_key_valid(c->header), c->valid), "[%s]",
	    c->header);
}

/* A key of n characters c, bare or quoted. */
static char *
long_key(size_t n, char c, int quoted)
{
	char *s = malloc(n + 3);
	size_t o = 0;

	cr_assert(not(eq(ptr, s, NULL)));
	if (quoted)
		s[o++] = '"';
	memset(s + o, c, n);
	o += n;
	if (quoted)
		s[o++] = '"';
	s[o] = '\0';
	return s;
}

Test(idem, key_length_is_1_to_255)
{
	char *k;

	cr_assert(eq(int, REG_IDEM_KEY_MAX, 255));
	k = long_key(255, 'k', 0);
	cr_assert(idem_key_valid(k));
	free(k);
	k = long_key(256, 'k', 0);
	cr_assert(not(idem_key_valid(k)));
	free(k);
	k = long_key(255, 'k', 1);
	cr_assert(idem_key_valid(k));
	free(k);
	k = long_key(256, 'k', 1);
	cr_assert(not(idem_key_valid(k)));
	free(k);
}

Test(idem, quoted_length_counts_unescaped_characters)
{
	/* 253 letters, \" and a letter: 255 key characters, 258 bytes. */
	char *k = long_key(256, 'k', 1);

	k[254] = '\\';
	k[255] = '"';
	cr_assert(eq(sz, strlen(k), 258));
	cr_assert(idem_key_valid(k));
	free(k);
}


/* ---- idem_init ---------------------------------------------------------- */

static struct config cfg;

/* A POST carrying key (NULL for none) from user with body. */
static struct http_request
post(const char *key, const char *user, const char *body)
{
	struct http_request req;

	memset(&req, 0, sizeof(req));
	req.method = "POST";
	req.path = "/users";
	req.query = "";
	req.idempotency_key = key;
	req.remote_user = user;
	req.body = (char *)body;
	req.body_len = strlen(body);
	req.content_length = req.body_len;
	return req;
}

Test(idem, request_without_a_valid_key_is_inactive)
{
	struct http_request req = post(NULL, NULL, "{}");
	struct idem idem;

	config_defaults(&cfg);
	idem_init(&idem, &cfg, &req);
	cr_assert(eq(int, idem.active, 0));
	req = post("a b", NULL, "{}");
	idem_init(&idem, &cfg, &req);
	cr_assert(eq(int, idem.active, 0));
	req = post("", NULL, "{}");
	idem_init(&idem, &cfg, &req);
	cr_assert(eq(int, idem.active, 0));
}

Test(idem, quoted_key_names_the_same_key_as_bare)
{
	struct http_request req = post("\"a\\\"b\"", NULL, "{}");
	struct idem idem;

	config_defaults(&cfg);
	idem_init(&idem, &cfg, &req);
	cr_assert(eq(int, idem.active, 1));
	cr_assert(eq(str, idem.key, "a\"b"));
	req = post("a\"b", NULL, "{}");
	idem_init(&idem, &cfg, &req);
	cr_assert(eq(str, idem.key, "a\"b"));
}

Test(idem, fingerprint_is_the_sha256_of_the_body_bytes)
{
	struct http_request req = post("k", NULL, "");
	struct idem idem;
	char want[SHA256_HEX_SIZE];

	config_defaults(&cfg);
	idem_init(&idem, &cfg, &req);
	cr_assert(eq(str, idem.fingerprint, "e3b0c44298fc1c149afbf4c8996fb924"
	    "27ae41e4649b934ca495991b7852b855"));
	req = post("k", NULL, "{\"username\":\"carol\"}");
	idem_init(&idem, &cfg, &req);
	sha256_hex(req.body, req.body_len, want);
	cr_assert(eq(str, idem.fingerprint, want));
}

Test(idem, scope_is_global_under_open_access)
{
	struct http_request req = post("k", "alice", "{}");
	struct idem idem;

	config_defaults(&cfg);
	idem_init(&idem, &cfg, &req);
	cr_assert(eq(int, idem.active, 1));
	cr_assert(eq(str, idem.scope, ""));
}

Test(idem, scope_is_the_hashed_principal_under_self_access)
{
	struct http_request req = post("k", "alice", "{}");
	struct idem idem;
	char want[SHA256_HEX_SIZE];

	config_defaults(&cfg);
	cfg.access = CONFIG_ACCESS_SELF;
	idem_init(&idem, &cfg, &req);
	sha256_hex("alice", 5, want);
	cr_assert(eq(str, idem.scope, want));
	/* No principal: the global scope. */
	req = post("k", "", "{}");
	idem_init(&idem, &cfg, &req);
	cr_assert(eq(str, idem.scope, ""));
	req = post("k", NULL, "{}");
	idem_init(&idem, &cfg, &req);
	cr_assert(eq(str, idem.scope, ""));
}

/* ---- idem_store and idem_lookup over a registry -------------------------- */

static char tmpdir[64];
static struct registry *reg;

static void
open_registry(void)
{
	char path[128];

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_idem.XXXXXX");
	cr_assert(not(eq(ptr, mkdtemp(tmpdir), NULL)));
	snprintf(path, sizeof(path), "%s/users.db", tmpdir);
	reg = registry_open(path, 2000, REG_OPEN_CREATE, NULL, NULL);
	cr_assert(not(eq(ptr, reg, NULL)));
	config_defaults(&cfg);
}

static void
close_registry(void)
{
	registry_close(reg);
	reg = NULL;
	support_remove_dir(tmpdir);
}

static int
count_one(void *arg, const char *scope, const char *key,
    const struct reg_idem *rec)
{
	(void)scope;
	(void)key;
	(void)rec;
	(*(int *)arg)++;
	return 0;
}

/* How many idempotency records the registry holds. */
static int
records(void)
{
	int n = 0;

	cr_assert(eq(int, registry_idem_scan(reg, count_one, &n), REG_OK));
	return n;
}

/* A 201 with a body and two headers, as a create answers. */
static void
created(struct http_response *resp)
{
	struct json_object *o = json_object_new_object();

	http_response_init(resp);
	json_object_object_add(o, "username", json_object_new_string("carol"));
	cr_assert(eq(int, http_set_json(resp, 201, "application/json", o), 0));
	json_object_put(o);
	http_add_header(resp, "ETag", "\"3\"");
	http_add_header(resp, "Location", "/users/carol");
}

/* Stores resp as idem's answer in a transaction of its own. */
static enum reg_err
store(const struct idem *idem, const struct http_response *resp)
{
	enum reg_err rc;

	cr_assert(eq(int, registry_begin(reg), REG_OK));
	if ((rc = idem_store(idem, reg, cfg.idempotency_ttl, resp)) == REG_OK)
		cr_assert(eq(int, registry_commit(reg), REG_OK));
	else
		registry_rollback(reg);
	return rc;
}

Test(idem, stored_answer_replays_marked_as_a_replay,
    .init = open_registry, .fini = close_registry)
{
	struct http_request req = post("k", NULL, "{\"username\":\"carol\"}");
	struct http_response first, again;
	struct idem idem;

	idem_init(&idem, &cfg, &req);
	created(&first);
	cr_assert(eq(int, store(&idem, &first), REG_OK));
	http_response_init(&again);
	cr_assert(eq(int, idem_lookup(&idem, reg, &again), REG_IDEM_DONE));
	cr_assert(eq(int, again.status, 201));
	cr_assert(eq(str, (char *)again.content_type, "application/json"));
	cr_assert(eq(str, again.body, first.body));
	cr_assert(eq(str, (char *)http_header(&again, "ETag"), "\"3\""));
	cr_assert(eq(str, (char *)http_header(&again, "Location"),
	    "/users/carol"));
	cr_assert(eq(str, (char *)http_header(&again, "Idempotent-Replayed"),
	    "true"));
	http_response_release(&first);
	http_response_release(&again);
}

Test(idem, another_body_with_the_key_is_a_mismatch,
    .init = open_registry, .fini = close_registry)
{
	struct http_request req = post("k", NULL, "{\"username\":\"carol\"}");
	struct http_response first, again;
	struct idem idem;

	idem_init(&idem, &cfg, &req);
	created(&first);
	cr_assert(eq(int, store(&idem, &first), REG_OK));
	req = post("k", NULL, "{\"username\":\"dave\"}");
	idem_init(&idem, &cfg, &req);
	http_response_init(&again);
	cr_assert(eq(int, idem_lookup(&idem, reg, &again), REG_IDEM_MISMATCH));
	cr_assert(eq(ptr, again.body, NULL));
	http_response_release(&first);
	http_response_release(&again);
}

Test(idem, unknown_key_is_not_found, .init = open_registry,
    .fini = close_registry)
{
	struct http_request req = post("k", NULL, "{}");
	struct http_response resp;
	struct idem idem;

	idem_init(&idem, &cfg, &req);
	http_response_init(&resp);
	cr_assert(eq(int, idem_lookup(&idem, reg, &resp), REG_NOT_FOUND));
	cr_assert(eq(int, resp.status, 500), "resp was touched");
	http_response_release(&resp);
}

Test(idem, store_keeps_final_answers_for_the_ttl, .init = open_registry,
    .fini = close_registry)
{
	struct http_request req = post("k", NULL, "{}");
	struct http_response resp;
	struct reg_idem rec;
	struct idem idem;
	int64_t before = (int64_t)time(NULL);

	cfg.idempotency_ttl = 600;
	idem_init(&idem, &cfg, &req);
	created(&resp);
	resp.status = 409;
	cr_assert(eq(int, store(&idem, &resp), REG_OK));
	cr_assert(eq(int, registry_idem_get(reg, "", "k", idem.fingerprint,
	    before, &rec), REG_IDEM_DONE));
	cr_assert(eq(int, rec.status, 409));
	cr_assert(ge(i64, rec.expires_at, before + 600));
	cr_assert(le(i64, rec.expires_at, (int64_t)time(NULL) + 600));
	registry_idem_release(&rec);
	http_response_release(&resp);
}

Test(idem, store_skips_5xx_answers_and_requests_without_a_key,
    .init = open_registry, .fini = close_registry)
{
	struct http_request req = post("k", NULL, "{}");
	struct http_response resp;
	struct reg_idem rec;
	struct idem idem;

	idem_init(&idem, &cfg, &req);
	created(&resp);
	resp.status = 503;
	cr_assert(eq(int, store(&idem, &resp), REG_OK));
	cr_assert(eq(int, registry_idem_get(reg, "", "k", idem.fingerprint,
	    (int64_t)time(NULL), &rec), REG_NOT_FOUND));
	req = post(NULL, NULL, "{}");
	idem_init(&idem, &cfg, &req);
	resp.status = 201;
	cr_assert(eq(int, store(&idem, &resp), REG_OK));
	cr_assert(eq(int, records(), 0), "a record was stored");
	http_response_release(&resp);
}

Test(idem, store_outside_a_write_transaction_is_an_error,
    .init = open_registry, .fini = close_registry)
{
	struct http_request req = post("k", NULL, "{}");
	struct http_response resp;
	struct idem idem;

	idem_init(&idem, &cfg, &req);
	created(&resp);
	cr_assert(eq(int, idem_store(&idem, reg, cfg.idempotency_ttl, &resp),
	    REG_ERROR));
	http_response_release(&resp);
}

Test(idem, unreadable_stored_answer_is_an_error_not_a_replay,
    .init = open_registry, .fini = close_registry)
{
	struct http_request req = post("k", NULL, "{}");
	struct http_response resp;
	struct idem idem;

	idem_init(&idem, &cfg, &req);
	cr_assert(eq(int, registry_begin(reg), REG_OK));
	cr_assert(eq(int, registry_idem_put(reg, "", "k", idem.fingerprint,
	    201, "no blank line", 13, (int64_t)time(NULL), 600), REG_OK));
	cr_assert(eq(int, registry_commit(reg), REG_OK));
	http_response_init(&resp);
	cr_assert(eq(int, idem_lookup(&idem, reg, &resp), REG_ERROR));
	cr_assert(eq(ptr, resp.body, NULL));
	cr_assert(eq(ptr, (void *)http_header(&resp, "Idempotent-Replayed"),
	    NULL));
	http_response_release(&resp);
}
