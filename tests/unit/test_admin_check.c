/* test_admin_check.c: what check holds one user and one record to. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <criterion/parameterized.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_check.h"
#include "http.h"
#include "sha256.h"

/*
 * Parameters hold arrays, not pointers: Criterion runs each test in a
 * fresh process, where the parent's pointers need not be valid.
 */

static void
good_user(struct user *u)
{
	memset(u, 0, sizeof(*u));
	snprintf(u->username, sizeof(u->username), "Alice");
	snprintf(u->email, sizeof(u->email), "alice@example.org");
	snprintf(u->display_name, sizeof(u->display_name), "Alice L.");
	snprintf(u->roles[0], sizeof(u->roles[0]), "admin");
	snprintf(u->roles[1], sizeof(u->roles[1]), "ops");
	u->nroles = 2;
	u->version = 7;
	u->created_at = 1000;
	u->updated_at = 2000;
}

Test(admin_check, a_valid_user_passes)
{
	char why[ADMIN_CHECK_WHY_SIZE] = "";
	struct user u;

	good_user(&u);
	cr_assert(eq(int, admin_check_user(&u, 7, why), 0), "%s", why);
	u.email[0] = u.display_name[0] = '\0';
	u.nroles = 0;
	u.created_at = u.updated_at;
	cr_assert(eq(int, admin_check_user(&u, 9, why), 0), "%s", why);
}

/* One way a stored user can be wrong. */
struct bad_user {
	int what;
	char why[48];
};

enum {
	BAD_NAME, BAD_EMAIL, BAD_DISPLAY, BAD_ROLE, BAD_ORDER, BAD_TWICE,
	BAD_VERSION_ZERO, BAD_VERSION_HIGH, BAD_TIMES, BAD_NEGATIVE
};

ParameterizedTestParameters(admin_check, user_faults)
{
	static struct bad_user cases[] = {
		{ BAD_NAME, "username" },
		{ BAD_EMAIL, "email" },
		{ BAD_DISPLAY, "display_name" },
		{ BAD_ROLE, "role 1" },
		{ BAD_ORDER, "not sorted" },
		{ BAD_TWICE, "not sorted and distinct" },
		{ BAD_VERSION_ZERO, "not positive" },
		{ BAD_VERSION_HIGH, "above the revision counter 7" },
		{ BAD_TIMES, "after updated_at" },
		{ BAD_NEGATIVE, "negative" },
	};

	return cr_make_param_array(struct bad_user, cases,
	    sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct bad_user *c, admin_check, user_faults)
{
	char why[ADMIN_CHECK_WHY_SIZE] = "";
	struct user u;

	good_user(&u);
	switch (c->what) {
	case BAD_NAME: snprintf(u.username, sizeof(u.username), "a b"); break;
	case BAD_EMAIL: snprintf(u.email, sizeof(u.email), "no-at"); break;
	case BAD_DISPLAY: u.display_name[0] = '\x01'; break;
	case BAD_ROLE: snprintf(u.roles[1], sizeof(u.roles[1]), "Ops"); break;
	case BAD_ORDER: snprintf(u.roles[0], sizeof(u.roles[0]), "zed"); break;
	case BAD_TWICE: snprintf(u.roles[1], sizeof(u.roles[1]), "admin");
		break;
	case BAD_VERSION_ZERO: u.version = 0; break;
	case BAD_VERSION_HIGH: u.version = 8; break;
	case BAD_TIMES: u.created_at = 2001; break;
	case BAD_NEGATIVE: u.created_at = -1; break;
	}
	cr_assert(eq(int, admin_check_user(&u, 7, why), -1));
	cr_assert(not(eq(ptr, strstr(why, c->why), NULL)), "'%s', want '%s'",
	    why, c->why);
}

/* ---- idempotency records ------------------------------------------------- */

static char scope[SHA256_HEX_SIZE], fp[SHA256_HEX_SIZE];

/* A record as idem_store() keeps a 201 of POST /users. */
static void
good_record(struct reg_idem *rec)
{
	struct http_response resp;

	sha256_hex("alice", 5, scope);
	sha256_hex("{}", 2, fp);
	http_response_init(&resp);
	resp.status = 201;
	resp.content_type = "application/json";
	cr_assert(eq(int, http_add_header(&resp, "ETag", "\"3\""), 0));
	resp.body = strdup("{\"username\":\"bob\"}");
	resp.body_len = strlen(resp.body);
	memset(rec, 0, sizeof(*rec));
	rec->status = 201;
	rec->response = http_response_encode(&resp, &rec->response_len);
	cr_assert(not(eq(ptr, rec->response, NULL)));
	snprintf(rec->fingerprint, sizeof(rec->fingerprint), "%s", fp);
	rec->expires_at = 1795624800;
	http_response_release(&resp);
}

Test(admin_check, a_stored_answer_passes)
{
	char why[ADMIN_CHECK_WHY_SIZE] = "";
	struct reg_idem rec;

	good_record(&rec);
	cr_assert(eq(int, admin_check_idem(scope, "key-1", &rec, why), 0),
	    "%s", why);
	cr_assert(eq(int, admin_check_idem("", "k", &rec, why), 0), "%s", why);
	registry_idem_release(&rec);
}

struct bad_record {
	int what;
	char why[48];
};

enum {
	REC_SCOPE, REC_KEY_EMPTY, REC_KEY_SPACE, REC_KEY_LONG, REC_FP,
	REC_STATUS_500, REC_STATUS_100, REC_EXPIRES, REC_GARBLED, REC_CUT
};

ParameterizedTestParameters(admin_check, record_faults)
{
	static struct bad_record cases[] = {
		{ REC_SCOPE, "scope" },
		{ REC_KEY_EMPTY, "key of 0 bytes" },
		{ REC_KEY_SPACE, "key holds byte 0x20" },
		{ REC_KEY_LONG, "key of 256 bytes" },
		{ REC_FP, "fingerprint" },
		{ REC_STATUS_500, "status 500" },
		{ REC_STATUS_100, "status 100" },
		{ REC_EXPIRES, "expires_at" },
		{ REC_GARBLED, "malformed" },
		{ REC_CUT, "malformed" },
	};

	return cr_make_param_array(struct bad_record, cases,
	    sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct bad_record *c, admin_check, record_faults)
{
	char why[ADMIN_CHECK_WHY_SIZE] = "", key[300] = "key-1";
	const char *sc = scope;
	struct reg_idem rec;

	good_record(&rec);
	switch (c->what) {
	case REC_SCOPE: sc = "alice"; break;
	case REC_KEY_EMPTY: key[0] = '\0'; break;
	case REC_KEY_SPACE: snprintf(key, sizeof(key), "a b"); break;
	case REC_KEY_LONG: memset(key, 'k', 256); key[256] = '\0'; break;
	case REC_FP: rec.fingerprint[3] = 'G'; break;
	case REC_STATUS_500: rec.status = 500; break;
	case REC_STATUS_100: rec.status = 100; break;
	case REC_EXPIRES: rec.expires_at = -5; break;
	case REC_GARBLED: memcpy(rec.response, "garbage", 7);
		rec.response_len = 7; break;
	case REC_CUT: rec.response_len = 3; break;
	}
	cr_assert(eq(int, admin_check_idem(sc, key, &rec, why), -1));
	cr_assert(not(eq(ptr, strstr(why, c->why), NULL)), "'%s', want '%s'",
	    why, c->why);
	registry_idem_release(&rec);
}
