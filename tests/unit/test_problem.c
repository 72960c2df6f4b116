/* test_problem.c: every problem type's status, members and resolution. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <criterion/parameterized.h>

#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "http.h"
#include "problem.h"

/*
 * Parameters hold arrays, not pointers: Criterion runs each test in a
 * fresh process, where the parent's pointers need not be valid.
 */

#define REQ_ID "0b5e3c1a-9d2f-4e6b-8a7c-1d2e3f405162"

/* API.md, "Errors": the table and the resolution rules, slug by slug. */
struct slug_case {
	int slug;		/* enum problem_slug */
	char text[40];
	int status;
	char resolution[24];
};

static const struct slug_case catalogue[] = {
	{ PROBLEM_USER_EXISTS, "user-exists", 409, "change-request" },
	{ PROBLEM_EMAIL_TAKEN, "email-taken", 409, "change-request" },
	{ PROBLEM_STALE_VERSION, "stale-version", 409, "refetch-and-retry" },
	{ PROBLEM_BUSINESS_RULE, "business-rule-violation", 409,
	    "change-request" },
	{ PROBLEM_PRECONDITION_FAILED, "precondition-failed", 412,
	    "refetch-and-retry" },
	{ PROBLEM_PRECONDITION_REQUIRED, "precondition-required", 428,
	    "change-request" },
	{ PROBLEM_MALFORMED_JSON, "malformed-json", 400, "change-request" },
	{ PROBLEM_NOT_AN_OBJECT, "not-an-object", 400, "change-request" },
	{ PROBLEM_DUPLICATE_MEMBER, "duplicate-member", 400,
	    "change-request" },
	{ PROBLEM_INVALID_QUERY, "invalid-query-parameter", 400,
	    "change-request" },
	{ PROBLEM_INVALID_HEADER, "invalid-header", 400, "change-request" },
	{ PROBLEM_INCONSISTENT_PRECONDITION, "inconsistent-precondition", 400,
	    "change-request" },
	{ PROBLEM_VALIDATION_FAILED, "validation-failed", 422,
	    "change-request" },
	{ PROBLEM_UNKNOWN_MEMBER, "unknown-member", 422, "change-request" },
	{ PROBLEM_NAME_MISMATCH, "name-mismatch", 422, "change-request" },
	{ PROBLEM_IDEM_REUSED, "idempotency-key-reused", 422,
	    "change-request" },
	{ PROBLEM_USER_NOT_FOUND, "user-not-found", 404, "none" },
	{ PROBLEM_NOT_FOUND, "not-found", 404, "none" },
	{ PROBLEM_METHOD_NOT_ALLOWED, "method-not-allowed", 405, "none" },
	{ PROBLEM_UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type", 415,
	    "change-request" },
	{ PROBLEM_PAYLOAD_TOO_LARGE, "payload-too-large", 413,
	    "change-request" },
	{ PROBLEM_FORBIDDEN, "forbidden", 403, "change-request" },
	{ PROBLEM_UNAUTHENTICATED, "unauthenticated", 401, "change-request" },
	{ PROBLEM_REGISTRY_UNAVAILABLE, "registry-unavailable", 503,
	    "retry-after" },
	{ PROBLEM_INTERNAL_ERROR, "internal-error", 500, "none" },
};

#define NCATALOGUE (sizeof(catalogue) / sizeof(catalogue[0]))

/* One row per slug and base path. */
struct answer_case {
	struct slug_case s;
	char base[16];
	char detail[48];	/* "" means pass NULL */
};

ParameterizedTestParameters(problem, answer)
{
	static struct answer_case cases[2 * NCATALOGUE];
	size_t i;

	for (i = 0; i < NCATALOGUE; i++) {
		cases[2 * i].s = catalogue[i];
		snprintf(cases[2 * i].base, sizeof(cases[2 * i].base), "/");
		snprintf(cases[2 * i].detail, sizeof(cases[2 * i].detail),
		    "what went wrong: %s", catalogue[i].text);
		cases[2 * i + 1].s = catalogue[i];
		snprintf(cases[2 * i + 1].base, sizeof(cases[2 * i + 1].base),
		    "/api/");
	}
	return cr_make_param_array(struct answer_case, cases,
	    sizeof(cases) / sizeof(cases[0]));
}

static const char *
member_str(struct json_object *o, const char *key)
{
	struct json_object *v;

	cr_assert(json_object_object_get_ex(o, key, &v), "no %s", key);
	cr_assert(json_object_is_type(v, json_type_string), "%s: not a string",
	    key);
	return json_object_get_string(v);
}

ParameterizedTest(struct answer_case *c, problem, answer)
{
	static const char *const order[] = {
		"type", "title", "status", "detail", "instance", "error",
		"resolution"
	};
	struct http_response r;
	struct json_object *o, *v;
	char want[128];
	size_t i = 0;

	cr_assert(eq(str, (char *)problem_slug_str(c->s.slug), c->s.text));
	cr_assert(eq(int, problem_status(c->s.slug), c->s.status), "%s",
	    c->s.text);

	http_response_init(&r);
	problem_answer(&r, c->s.slug, c->base, REQ_ID,
	    c->detail[0] != '\0' ? c->detail : NULL);
	cr_assert(eq(int, r.status, c->s.status), "%s", c->s.text);
	cr_assert(eq(str, (char *)r.content_type, "application/problem+json"));
	cr_assert(not(eq(ptr, r.body, NULL)));
	cr_assert(eq(sz, r.body_len, strlen(r.body)));
	/* The worker adds the status-specific headers, not the catalogue. */
	cr_assert(eq(sz, r.nheaders, 0));

	o = json_tokener_parse(r.body);
	cr_assert(not(eq(ptr, o, NULL)), "[%s]", r.body);
	cr_assert(json_object_is_type(o, json_type_object));
	/* Exactly these members, in this order. */
	cr_assert(eq(int, json_object_object_length(o), 7), "[%s]", r.body);
	json_object_object_foreach(o, key, val) {
		(void)val;
		cr_assert(eq(str, key, (char *)order[i]), "member %zu of [%s]",
		    i, r.body);
		i++;
	}

	snprintf(want, sizeof(want), "%sproblems/%s", c->base, c->s.text);
	cr_assert(eq(str, (char *)member_str(o, "type"), want));
	cr_assert(not(eq(str, (char *)member_str(o, "title"), "")));
	cr_assert(json_object_object_get_ex(o, "status", &v));
	cr_assert(json_object_is_type(v, json_type_int), "status: not a "
	    "number");
	cr_assert(eq(int, json_object_get_int(v), c->s.status));
	if (c->detail[0] != '\0')
		cr_assert(eq(str, (char *)member_str(o, "detail"), c->detail));
	else
		cr_assert(not(eq(str, (char *)member_str(o, "detail"), "")));
	cr_assert(eq(str, (char *)member_str(o, "instance"),
	    "urn:uuid:" REQ_ID));
	cr_assert(not(eq(str, (char *)member_str(o, "error"), "")));
	cr_assert(eq(str, (char *)member_str(o, "resolution"),
	    c->s.resolution), "%s", c->s.text);
	json_object_put(o);
	http_response_release(&r);
}

Test(problem, catalogue_covers_every_slug_once)
{
	size_t i, j;

	cr_assert(eq(sz, NCATALOGUE, (size_t)PROBLEM__MAX));
	for (i = 0; i < NCATALOGUE; i++) {
		cr_assert(eq(int, catalogue[i].slug, (int)i),
		    "row %zu is out of enum order", i);
		for (j = 0; j < i; j++)
			cr_assert(not(eq(str, (char *)problem_slug_str(
			    (enum problem_slug)i), (char *)problem_slug_str(
			    (enum problem_slug)j))), "%zu and %zu", i, j);
	}
}

Test(problem, user_exists_error_is_the_seed_message)
{
	struct json_object *p = problem_new(PROBLEM_USER_EXISTS, "/", REQ_ID,
	    NULL);

	cr_assert(not(eq(ptr, p, NULL)));
	cr_assert(eq(str, (char *)member_str(p, "error"),
	    "User already exists."));
	json_object_put(p);
}

Test(problem, titles_are_fixed_per_slug)
{
	struct json_object *a, *b;
	size_t i;

	for (i = 0; i < PROBLEM__MAX; i++) {
		a = problem_new((enum problem_slug)i, "/", REQ_ID, "one");
		b = problem_new((enum problem_slug)i, "/x/", REQ_ID, "two");
		cr_assert(eq(str, (char *)member_str(a, "title"),
		    (char *)member_str(b, "title")));
		cr_assert(eq(str, (char *)member_str(a, "error"),
		    (char *)member_str(b, "error")));
		json_object_put(a);
		json_object_put(b);
	}
}

Test(problem, extensions_follow_the_fixed_members)
{
	struct http_response r;
	struct json_object *p, *o, *v;

	p = problem_new(PROBLEM_EMAIL_TAKEN, "/api/", REQ_ID, "taken");
	cr_assert(not(eq(ptr, p, NULL)));
	json_object_object_add(p, "pointer", json_object_new_string("/email"));
	http_response_init(&r);
	problem_send(&r, PROBLEM_EMAIL_TAKEN, p);	/* consumes p */
	cr_assert(eq(int, r.status, 409));
	cr_assert(eq(str, (char *)r.content_type, "application/problem+json"));
	cr_assert(eq(str, r.body,
	    "{\"type\":\"/api/problems/email-taken\","
	    "\"title\":\"Email address already in use\",\"status\":409,"
	    "\"detail\":\"taken\",\"instance\":\"urn:uuid:" REQ_ID "\","
	    "\"error\":\"Email already in use.\","
	    "\"resolution\":\"change-request\",\"pointer\":\"/email\"}"));
	o = json_tokener_parse(r.body);
	cr_assert(json_object_object_get_ex(o, "pointer", &v));
	cr_assert(eq(str, (char *)json_object_get_string(v), "/email"));
	json_object_put(o);
	http_response_release(&r);
}

Test(problem, send_without_an_object_is_a_bare_500)
{
	struct http_response r;

	http_response_init(&r);
	r.status = 200;
	problem_send(&r, PROBLEM_USER_EXISTS, NULL);
	cr_assert(eq(int, r.status, 500));
	cr_assert(eq(ptr, r.body, NULL));
	http_response_release(&r);
}

Test(problem, detail_text_is_escaped_by_the_serializer)
{
	struct http_response r;
	struct json_object *o, *v;
	const char *detail = "quote \" backslash \\ newline \n tab \t";

	http_response_init(&r);
	problem_answer(&r, PROBLEM_VALIDATION_FAILED, "/", REQ_ID, detail);
	o = json_tokener_parse(r.body);
	cr_assert(not(eq(ptr, o, NULL)), "[%s]", r.body);
	cr_assert(json_object_object_get_ex(o, "detail", &v));
	cr_assert(eq(str, (char *)json_object_get_string(v), (char *)detail));
	json_object_put(o);
	http_response_release(&r);
}
