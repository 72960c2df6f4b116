/* test_jsonio.c: strict JSON parsing, typed getters and the user encoder. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <criterion/parameterized.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jsonio.h"

/* A literal with its length, so that embedded NULs are kept. */
#define LIT(s) s, sizeof(s) - 1
#define NO_OFFSET (-1L)

/*
 * Parameters hold arrays, not pointers: Criterion runs each test in a
 * fresh process of the (PIE) binary, where the parent's pointers into
 * static storage need not be valid.
 */
struct parse_case {
	char text[96];
	size_t len;
	enum jsonio_err want;
	long offset;		/* NO_OFFSET: not checked */
};

/*
 * Parses a copy of len bytes of text (NUL-terminated, as the contract
 * requires) with max_depth; returns the code and fills err.
 */
static enum jsonio_err
parse(const char *text, size_t len, int max_depth, struct jsonio_error *err)
{
	struct json_object *o = (struct json_object *)&o;	/* poison */
	enum jsonio_err rc;
	char *buf = malloc(len + 1);

	cr_assert(not(eq(ptr, buf, NULL)));
	memcpy(buf, text, len);
	buf[len] = '\0';
	rc = jsonio_parse_object(buf, len, max_depth, &o, err);
	cr_assert(eq(int, (int)err->code, (int)rc));
	if (rc == JSONIO_OK) {
		cr_assert(not(eq(ptr, o, NULL)));
		cr_assert(json_object_is_type(o, json_type_object));
	} else {
		cr_assert(eq(ptr, o, NULL), "*out must be NULL on failure");
		cr_assert(gt(sz, strlen(err->detail), 0));
	}
	json_object_put(o);
	free(buf);
	return rc;
}

static void
check_case(const struct parse_case *c)
{
	struct jsonio_error err;
	enum jsonio_err rc;

	rc = parse(c->text, c->len, JSONIO_DEPTH_MAX, &err);
	cr_assert(eq(int, (int)rc, (int)c->want), "input %zu bytes: \"%.*s\"",
	    c->len, (int)c->len, c->text);
	if (c->offset != NO_OFFSET) {
		cr_assert(err.has_offset, "no offset for \"%.*s\"",
		    (int)c->len, c->text);
		cr_assert(eq(sz, err.offset, (size_t)c->offset),
		    "offset for \"%.*s\" (%s)", (int)c->len, c->text,
		    err.detail);
	}
}

ParameterizedTestParameters(jsonio, parse_rejects_malformed)
{
	static struct parse_case cases[] = {
		/* truncated and empty */
		{ LIT("{\"a\":"), JSONIO_MALFORMED, 5 },
		{ LIT("{\"a\""), JSONIO_MALFORMED, 4 },
		{ LIT("{\"a"), JSONIO_MALFORMED, 3 },
		{ LIT("{"), JSONIO_MALFORMED, 1 },
		{ LIT("{\"a\":[1,"), JSONIO_MALFORMED, 8 },
		{ LIT(""), JSONIO_MALFORMED, 0 },
		{ LIT("   "), JSONIO_MALFORMED, 3 },
		/* trailing commas, missing separators */
		{ LIT("{\"a\":1,}"), JSONIO_MALFORMED, 7 },
		{ LIT("{\"a\":[1,]}"), JSONIO_MALFORMED, 8 },
		{ LIT("{\"a\":[,1]}"), JSONIO_MALFORMED, 6 },
		{ LIT("{,}"), JSONIO_MALFORMED, 1 },
		{ LIT("{\"a\":1,,\"b\":2}"), JSONIO_MALFORMED, 7 },
		{ LIT("{\"a\" 1}"), JSONIO_MALFORMED, 5 },
		{ LIT("{\"a\"}"), JSONIO_MALFORMED, 4 },
		{ LIT("{\"a\":[1 2]}"), JSONIO_MALFORMED, 8 },
		{ LIT("{\"a\":1 \"b\":2}"), JSONIO_MALFORMED, 7 },
		{ LIT("{\"a\":1]"), JSONIO_MALFORMED, 6 },
		{ LIT("{\"a\":[1}"), JSONIO_MALFORMED, 7 },
		{ LIT("{a:1}"), JSONIO_MALFORMED, 1 },
		/* comments */
		{ LIT("{/*c*/}"), JSONIO_MALFORMED, 1 },
		{ LIT("{\"a\":1 /*c*/}"), JSONIO_MALFORMED, 7 },
		{ LIT("{\"a\":1}/*c*/"), JSONIO_MALFORMED, 7 },
		{ LIT("{\"a\":1}//c"), JSONIO_MALFORMED, 7 },
		{ LIT("{\"a\":1}#c"), JSONIO_MALFORMED, 7 },
		/* single quotes (json-c accepts them for names) */
		{ LIT("{'a':1}"), JSONIO_MALFORMED, 1 },
		{ LIT("{\"a\":'b'}"), JSONIO_MALFORMED, 5 },
		/* non-numbers and bad numbers (json-c accepts several) */
		{ LIT("{\"a\":NaN}"), JSONIO_MALFORMED, 5 },
		{ LIT("{\"a\":nan}"), JSONIO_MALFORMED, 5 },
		{ LIT("{\"a\":Infinity}"), JSONIO_MALFORMED, 5 },
		{ LIT("{\"a\":-Infinity}"), JSONIO_MALFORMED, 5 },
		{ LIT("{\"a\":1.}"), JSONIO_MALFORMED, 5 },
		{ LIT("{\"a\":1.e5}"), JSONIO_MALFORMED, 5 },
		{ LIT("{\"a\":.5}"), JSONIO_MALFORMED, 5 },
		{ LIT("{\"a\":+1}"), JSONIO_MALFORMED, 5 },
		{ LIT("{\"a\":-01}"), JSONIO_MALFORMED, 7 },
		{ LIT("{\"a\":01}"), JSONIO_MALFORMED, 6 },
		{ LIT("{\"a\":1e}"), JSONIO_MALFORMED, 5 },
		{ LIT("{\"a\":1e+}"), JSONIO_MALFORMED, 5 },
		{ LIT("{\"a\":-}"), JSONIO_MALFORMED, 5 },
		{ LIT("{\"a\":0x10}"), JSONIO_MALFORMED, 6 },
		/* literals */
		{ LIT("{\"a\":tru}"), JSONIO_MALFORMED, 5 },
		{ LIT("{\"a\":True}"), JSONIO_MALFORMED, 5 },
		{ LIT("{\"a\":nul}"), JSONIO_MALFORMED, 5 },
		{ LIT("{\"a\":NULL}"), JSONIO_MALFORMED, 5 },
		{ LIT("{\"a\":undefined}"), JSONIO_MALFORMED, 5 },
		/* invalid UTF-8 (json-c accepts overlongs and surrogates) */
		{ LIT("{\"a\":\"\xff\"}"), JSONIO_MALFORMED, 6 },
		{ LIT("{\"a\":\"\x80\"}"), JSONIO_MALFORMED, 6 },
		{ LIT("{\"a\":\"\xc0\xaf\"}"), JSONIO_MALFORMED, 6 },
		{ LIT("{\"a\":\"\xe0\x80\xaf\"}"), JSONIO_MALFORMED, 6 },
		{ LIT("{\"a\":\"\xf0\x80\x80\xaf\"}"), JSONIO_MALFORMED, 6 },
		{ LIT("{\"a\":\"\xed\xa0\x80\"}"), JSONIO_MALFORMED, 6 },
		{ LIT("{\"a\":\"\xf4\x90\x80\x80\"}"), JSONIO_MALFORMED, 6 },
		{ LIT("{\"a\":\"\xe2\x82\"}"), JSONIO_MALFORMED, 6 },
		{ LIT("{\"a\":\"x\xc3\"}"), JSONIO_MALFORMED, 7 },
		{ LIT("{\"\xfe\":1}"), JSONIO_MALFORMED, 2 },
		{ LIT("\xef\xbb\xbf{}"), JSONIO_MALFORMED, 0 },
		{ LIT("{\"a\":1,\xc3\xa9:1}"), JSONIO_MALFORMED, 7 },
		/* lone surrogate escapes (json-c turns them into U+FFFD) */
		{ LIT("{\"a\":\"\\ud800\"}"), JSONIO_MALFORMED, 6 },
		{ LIT("{\"a\":\"\\uDBFF\"}"), JSONIO_MALFORMED, 6 },
		{ LIT("{\"a\":\"\\udc00\"}"), JSONIO_MALFORMED, 6 },
		{ LIT("{\"a\":\"x\\ud800y\"}"), JSONIO_MALFORMED, 7 },
		{ LIT("{\"a\":\"\\ud800\\u0041\"}"), JSONIO_MALFORMED, 6 },
		{ LIT("{\"a\":\"\\ud800\\ud800\"}"), JSONIO_MALFORMED, 6 },
		{ LIT("{\"a\":\"\\udc00\\ud800\"}"), JSONIO_MALFORMED, 6 },
		{ LIT("{\"a\":\"\\ud800\\n\"}"), JSONIO_MALFORMED, 6 },
		{ LIT("{\"\\ud800\":1}"), JSONIO_MALFORMED, 2 },
		/* bad escapes */
		{ LIT("{\"a\":\"\\x41\"}"), JSONIO_MALFORMED, 6 },
		{ LIT("{\"a\":\"\\U0041\"}"), JSONIO_MALFORMED, 6 },
		{ LIT("{\"a\":\"\\u00\"}"), JSONIO_MALFORMED, 6 },
		{ LIT("{\"a\":\"\\u00g1\"}"), JSONIO_MALFORMED, 6 },
		{ LIT("{\"a\":\"\\'\"}"), JSONIO_MALFORMED, 6 },
		{ LIT("{\"a\":\"\\"), JSONIO_MALFORMED, 6 },
		/* raw control characters in strings (json-c accepts them) */
		{ LIT("{\"a\":\"\x01\"}"), JSONIO_MALFORMED, 6 },
		{ LIT("{\"a\":\"x\ny\"}"), JSONIO_MALFORMED, 7 },
		{ LIT("{\"a\":\"\t\"}"), JSONIO_MALFORMED, 6 },
		{ LIT("{\"a\":\"\x1f\"}"), JSONIO_MALFORMED, 6 },
		{ LIT("{\"a\r\":1}"), JSONIO_MALFORMED, 3 },
		/* raw NUL bytes anywhere */
		{ LIT("{\"a\":\"\0\"}"), JSONIO_MALFORMED, 6 },
		{ LIT("\0{}"), JSONIO_MALFORMED, 0 },
		{ LIT("{}\0"), JSONIO_MALFORMED, 2 },
		{ LIT("{\"a\":1\0}"), JSONIO_MALFORMED, 6 },
		/* anything after the value but RFC 8259 whitespace */
		{ LIT("{\"a\":1} x"), JSONIO_MALFORMED, 8 },
		{ LIT("{}{}"), JSONIO_MALFORMED, 2 },
		{ LIT("{} {}"), JSONIO_MALFORMED, 3 },
		{ LIT("{}]"), JSONIO_MALFORMED, 2 },
		{ LIT("{},"), JSONIO_MALFORMED, 2 },
		{ LIT("{}\f"), JSONIO_MALFORMED, 2 },
		{ LIT("\v{}"), JSONIO_MALFORMED, 0 },
		{ LIT("{\"a\":\f1}"), JSONIO_MALFORMED, 5 },
		{ LIT("{\"a\":1}\xc2\xa0"), JSONIO_MALFORMED, 7 },
		/* json-c would keep "a\u0000b" as "a" */
		{ LIT("{\"a\\u0000b\":1}"), JSONIO_MALFORMED, 1 },
		{ LIT("{\"\\u0000\":1}"), JSONIO_MALFORMED, 1 },
	};

	return cr_make_param_array(struct parse_case, cases,
	    sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct parse_case *c, jsonio, parse_rejects_malformed)
{
	check_case(c);
}

ParameterizedTestParameters(jsonio, parse_rejects_non_objects)
{
	static struct parse_case cases[] = {
		{ LIT("[]"), JSONIO_NOT_OBJECT, 0 },
		{ LIT("[{}]"), JSONIO_NOT_OBJECT, 0 },
		{ LIT(" [1, 2]\n"), JSONIO_NOT_OBJECT, 1 },
		{ LIT("1"), JSONIO_NOT_OBJECT, 0 },
		{ LIT("-0.5e3"), JSONIO_NOT_OBJECT, 0 },
		{ LIT("\"x\""), JSONIO_NOT_OBJECT, 0 },
		{ LIT("null"), JSONIO_NOT_OBJECT, 0 },
		{ LIT("true"), JSONIO_NOT_OBJECT, 0 },
		{ LIT("false"), JSONIO_NOT_OBJECT, 0 },
		/* not an object first: the duplicate does not matter */
		{ LIT("[{\"a\":1,\"a\":2}]"), JSONIO_NOT_OBJECT, 0 },
		/* malformed first */
		{ LIT("[1,]"), JSONIO_MALFORMED, 3 },
		{ LIT("NaN"), JSONIO_MALFORMED, 0 },
		{ LIT("1 2"), JSONIO_MALFORMED, 2 },
	};

	return cr_make_param_array(struct parse_case, cases,
	    sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct parse_case *c, jsonio, parse_rejects_non_objects)
{
	check_case(c);
}

ParameterizedTestParameters(jsonio, parse_accepts_valid)
{
	static struct parse_case cases[] = {
		{ LIT("{}"), JSONIO_OK, NO_OFFSET },
		{ LIT(" \t\r\n{ \t\r\n} \t\r\n"), JSONIO_OK, NO_OFFSET },
		{ LIT("{\"a\":1}"), JSONIO_OK, NO_OFFSET },
		{ LIT("{\"\":1}"), JSONIO_OK, NO_OFFSET },
		{ LIT("{\"a\":[],\"b\":{},\"c\":null,\"d\":true,\"e\":false}"),
		    JSONIO_OK, NO_OFFSET },
		{ LIT("{\"a\":0,\"b\":-0,\"c\":1.5,\"d\":-2e10,\"e\":3E-2,"
		    "\"f\":4.25e+1}"), JSONIO_OK, NO_OFFSET },
		{ LIT("{\"a\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\u20AC\"}"),
		    JSONIO_OK, NO_OFFSET },
		{ LIT("{\"a\":\"\\ud83d\\ude00\"}"), JSONIO_OK, NO_OFFSET },
		{ LIT("{\"a\":\"\\uDBFF\\uDFFF\"}"), JSONIO_OK, NO_OFFSET },
		{ LIT("{\"a\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"
		    "\xf4\x8f\xbf\xbf\xef\xbf\xbd\"}"), JSONIO_OK, NO_OFFSET },
		{ LIT("{\"\xc3\xa9\":\"\x7f\"}"), JSONIO_OK, NO_OFFSET },
		/* \u0000 in a value parses; jsonio_string rejects it */
		{ LIT("{\"a\":\"\\u0000\"}"), JSONIO_OK, NO_OFFSET },
		/* same name in different objects is no duplicate */
		{ LIT("{\"a\":{\"a\":{\"a\":1}}}"), JSONIO_OK, NO_OFFSET },
		{ LIT("{\"x\":[{\"b\":1},{\"b\":2}],\"b\":3}"), JSONIO_OK,
		    NO_OFFSET },
		{ LIT("{\"a\":1,\"A\":2,\"a \":3,\" a\":4,\"\\u00e9\":5,"
		    "\"e\\u0301\":6}"), JSONIO_OK, NO_OFFSET },
		/* huge numbers must not crash */
		{ LIT("{\"a\":1e999999}"), JSONIO_OK, NO_OFFSET },
		{ LIT("{\"a\":-1e999999}"), JSONIO_OK, NO_OFFSET },
		{ LIT("{\"a\":1e-999999}"), JSONIO_OK, NO_OFFSET },
		{ LIT("{\"a\":123456789012345678901234567890}"), JSONIO_OK,
		    NO_OFFSET },
		{ LIT("{\"a\":-123456789012345678901234567890}"), JSONIO_OK,
		    NO_OFFSET },
		{ LIT("{\"a\":9223372036854775808}"), JSONIO_OK, NO_OFFSET },
	};

	return cr_make_param_array(struct parse_case, cases,
	    sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct parse_case *c, jsonio, parse_accepts_valid)
{
	check_case(c);
}

ParameterizedTestParameters(jsonio, parse_rejects_duplicates)
{
	static struct parse_case cases[] = {
		{ LIT("{\"a\":1,\"a\":2}"), JSONIO_DUPLICATE, 7 },
		{ LIT("{\"a\":1,\"a\":1}"), JSONIO_DUPLICATE, 7 },
		{ LIT("{ \"a\" : 1 , \"a\" : 2 }"), JSONIO_DUPLICATE, 12 },
		{ LIT("{\"a\":1,\"\\u0061\":2}"), JSONIO_DUPLICATE, 7 },
		{ LIT("{\"\\u0061\":1,\"a\":2}"), JSONIO_DUPLICATE, 12 },
		{ LIT("{\"a/b\":1,\"a\\/b\":2}"), JSONIO_DUPLICATE, 9 },
		{ LIT("{\"\\n\":1,\"\\u000a\":2}"), JSONIO_DUPLICATE, 8 },
		{ LIT("{\"\\\"\":1,\"\\u0022\":2}"), JSONIO_DUPLICATE, 8 },
		{ LIT("{\"\\\\\":1,\"\\u005C\":2}"), JSONIO_DUPLICATE, 8 },
		{ LIT("{\"\xc3\xa9\":1,\"\\u00e9\":2}"), JSONIO_DUPLICATE, 8 },
		{ LIT("{\"\xf0\x9f\x98\x80\":1,\"\\ud83d\\ude00\":2}"),
		    JSONIO_DUPLICATE, 10 },
		{ LIT("{\"\":1,\"\":2}"), JSONIO_DUPLICATE, 6 },
		{ LIT("{\"a\":1,\"a\":2,\"a\":3}"), JSONIO_DUPLICATE, 7 },
		/* the first second occurrence in the text is reported */
		{ LIT("{\"b\":1,\"a\":2,\"b\":3,\"a\":4}"), JSONIO_DUPLICATE,
		    13 },
		{ LIT("{\"b\":1,\"a\":2,\"a\":3,\"b\":4}"), JSONIO_DUPLICATE,
		    13 },
		/* nested */
		{ LIT("{\"a\":{\"b\":1,\"b\":2}}"), JSONIO_DUPLICATE, 12 },
		{ LIT("{\"x\":[1,{\"b\":1,\"c\":[],\"b\":2}]}"),
		    JSONIO_DUPLICATE, 22 },
		{ LIT("{\"a\":1,\"a\":{\"c\":1,\"c\":2}}"), JSONIO_DUPLICATE,
		    7 },
		{ LIT("{\"a\":{\"c\":1,\"c\":2},\"a\":1}"), JSONIO_DUPLICATE,
		    12 },
	};

	return cr_make_param_array(struct parse_case, cases,
	    sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct parse_case *c, jsonio, parse_rejects_duplicates)
{
	check_case(c);
}

/*
 * Builds n nested containers, alternating object and array from an
 * object at the top, the innermost one empty or holding a number.
 */
static char *
nest(int n, int empty_leaf)
{
	size_t cap = (size_t)n * 8 + 16, pos = 0;
	char *s = malloc(cap);
	int i;

	cr_assert(not(eq(ptr, s, NULL)));
	for (i = 0; i < n; i++)
		pos += (size_t)sprintf(s + pos, i % 2 == 0 ? "{\"k\":" : "[");
	/* The last opener of an object is '{"k":', take the ':' value. */
	if (n % 2 == 1) {
		pos -= 5;
		pos += (size_t)sprintf(s + pos, empty_leaf ? "{" : "{\"k\":1");
	} else if (!empty_leaf)
		pos += (size_t)sprintf(s + pos, "1");
	for (i = n - 1; i >= 0; i--)
		s[pos++] = i % 2 == 0 ? '}' : ']';
	s[pos] = '\0';
	return s;
}

Test(jsonio, nest_helper_builds_what_it_says)
{
	char *a = nest(1, 1), *b = nest(1, 0), *c = nest(3, 1), *d = nest(2, 0);

	cr_assert(eq(str, a, "{}"));
	cr_assert(eq(str, b, "{\"k\":1}"));
	cr_assert(eq(str, c, "{\"k\":[{}]}"));
	cr_assert(eq(str, d, "{\"k\":[1]}"));
	free(a);
	free(b);
	free(c);
	free(d);
}

Test(jsonio, depth_up_to_the_limit_is_accepted)
{
	struct jsonio_error err;
	char *s;
	int n, leaf;

	for (n = 1; n <= JSONIO_DEPTH_MAX; n++) {
		for (leaf = 0; leaf < 2; leaf++) {
			s = nest(n, leaf);
			cr_assert(eq(int, parse(s, strlen(s), JSONIO_DEPTH_MAX,
			    &err), JSONIO_OK), "%s", s);
			free(s);
		}
	}
}

Test(jsonio, depth_past_the_limit_is_too_deep)
{
	struct jsonio_error err;
	char *s;
	int leaf;

	for (leaf = 0; leaf < 2; leaf++) {
		s = nest(JSONIO_DEPTH_MAX + 1, leaf);
		cr_assert(eq(int, parse(s, strlen(s), JSONIO_DEPTH_MAX, &err),
		    JSONIO_TOO_DEEP), "%s", s);
		cr_assert(err.has_offset);
		/* the bracket that opens level 9 */
		cr_assert(eq(sz, err.offset, strcspn(s, "{[") +
		    (size_t)(JSONIO_DEPTH_MAX / 2) * 6), "%s", s);
		free(s);
	}
}

Test(jsonio, depth_8_literal_ok_9_too_deep)
{
	struct jsonio_error err;
	const char *ok = "{\"a\":[[[[[[{\"b\":1}]]]]]]}";
	const char *ok_empty = "{\"a\":[[[[[[{}]]]]]]}";
	const char *deep = "{\"a\":[[[[[[{\"b\":[1]}]]]]]]}";
	const char *deep_empty = "{\"a\":[[[[[[{\"b\":[]}]]]]]]}";

	cr_assert(eq(int, JSONIO_DEPTH_MAX, 8));
	cr_assert(eq(int, parse(ok, strlen(ok), 8, &err), JSONIO_OK));
	cr_assert(eq(int, parse(ok_empty, strlen(ok_empty), 8, &err),
	    JSONIO_OK));
	cr_assert(eq(int, parse(deep, strlen(deep), 8, &err),
	    JSONIO_TOO_DEEP));
	cr_assert(eq(int, parse(deep_empty, strlen(deep_empty), 8, &err),
	    JSONIO_TOO_DEEP));
	cr_assert(eq(sz, err.offset, 16));
}

Test(jsonio, depth_counts_for_other_limits)
{
	struct jsonio_error err;

	cr_assert(eq(int, parse(LIT("{}"), 1, &err), JSONIO_OK));
	cr_assert(eq(int, parse(LIT("{\"a\":1}"), 1, &err), JSONIO_OK));
	cr_assert(eq(int, parse(LIT("{\"a\":[]}"), 1, &err),
	    JSONIO_TOO_DEEP));
	cr_assert(eq(int, parse(LIT("{\"a\":[]}"), 2, &err), JSONIO_OK));
	cr_assert(eq(int, parse(LIT("{}"), 0, &err), JSONIO_TOO_DEEP));
	cr_assert(eq(int, parse(LIT("{}"), -1, &err), JSONIO_TOO_DEEP));
}

Test(jsonio, very_deep_nesting_is_too_deep_not_a_crash)
{
	struct jsonio_error err;
	size_t n = 60000, i;
	char *s = malloc(2 * n + 1);

	cr_assert(not(eq(ptr, s, NULL)));
	for (i = 0; i < n; i++) {
		s[i] = '[';
		s[n + i] = ']';
	}
	s[2 * n] = '\0';
	cr_assert(eq(int, parse(s, 2 * n, JSONIO_DEPTH_MAX, &err),
	    JSONIO_TOO_DEEP));
	free(s);
}

Test(jsonio, raw_nul_reports_its_offset)
{
	struct jsonio_error err;

	cr_assert(eq(int, parse(LIT("{\"a\":\"x\0y\"}"), 8, &err),
	    JSONIO_MALFORMED));
	cr_assert(err.has_offset);
	cr_assert(eq(sz, err.offset, 7));
}

Test(jsonio, null_text_is_malformed)
{
	struct json_object *o = NULL;
	struct jsonio_error err;

	cr_assert(eq(int, jsonio_parse_object(NULL, 0, JSONIO_DEPTH_MAX, &o,
	    &err), JSONIO_MALFORMED));
	cr_assert(eq(ptr, o, NULL));
}

Test(jsonio, error_detail_does_not_echo_input)
{
	struct jsonio_error err;
	const char *texts[] = {
		"{\"secretname\":1,\"secretname\":2}",
		"{\"secretname\":secretvalue}",
		"{\"secretname\":\"\\ud800\"}",
		"[\"secretname\"]",
	};
	size_t i;

	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		cr_assert(not(eq(int, parse(texts[i], strlen(texts[i]),
		    JSONIO_DEPTH_MAX, &err), JSONIO_OK)));
		cr_assert(eq(ptr, strstr(err.detail, "secret"), NULL));
		cr_assert(gt(sz, strlen(err.detail), 0));
	}
}

/* Builds an object of n members with distinct (or, if same, equal) names. */
static char *
many_members(size_t n, int same, size_t *len)
{
	size_t cap = n * 16 + 8, pos = 0, i;
	char *s = malloc(cap);

	cr_assert(not(eq(ptr, s, NULL)));
	s[pos++] = '{';
	for (i = 0; i < n; i++)
		pos += (size_t)snprintf(s + pos, cap - pos, "%s\"m%zu\":%zu",
		    i ? "," : "", same ? (size_t)0 : (n - i) * 7919 % 100003,
		    i);
	s[pos++] = '}';
	s[pos] = '\0';
	*len = pos;
	return s;
}

Test(jsonio, ten_thousand_members_stay_fast)
{
	struct jsonio_error err;
	struct timespec t0, t1;
	size_t len;
	char *s = many_members(10000, 0, &len);
	double ms;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	cr_assert(eq(int, parse(s, len, JSONIO_DEPTH_MAX, &err), JSONIO_OK));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	/* O(n log n) takes a few ms; quadratic would take far longer. */
	cr_assert(lt(dbl, ms, 500.0), "took %.1f ms", ms);
	free(s);

	s = many_members(10000, 1, &len);
	cr_assert(eq(int, parse(s, len, JSONIO_DEPTH_MAX, &err),
	    JSONIO_DUPLICATE));
	cr_assert(eq(sz, err.offset, strlen("{\"m0\":0,")));
	free(s);
}

Test(jsonio, many_sibling_objects_reuse_names)
{
	struct jsonio_error err;
	size_t n = 5000, i, pos = 0, cap = n * 16 + 16;
	char *s = malloc(cap);

	cr_assert(not(eq(ptr, s, NULL)));
	pos += (size_t)snprintf(s, cap, "{\"x\":[");
	for (i = 0; i < n; i++)
		pos += (size_t)snprintf(s + pos, cap - pos, "%s{\"a\":%zu}",
		    i ? "," : "", i);
	pos += (size_t)snprintf(s + pos, cap - pos, "]}");
	cr_assert(eq(int, parse(s, pos, JSONIO_DEPTH_MAX, &err), JSONIO_OK));
	free(s);
}

Test(jsonio, huge_numbers_parse_deterministically)
{
	const char *texts[] = {
		"{\"a\":1e999999}",
		"{\"a\":123456789012345678901234567890}",
		"{\"a\":-123456789012345678901234567890}",
		"{\"a\":0.0000000000000000000000000000000000000001e-400}",
	};
	struct json_object *o1, *o2;
	struct jsonio_error err;
	char *s1, *s2;
	size_t i;

	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		cr_assert(eq(int, jsonio_parse_object(texts[i],
		    strlen(texts[i]), JSONIO_DEPTH_MAX, &o1, &err),
		    JSONIO_OK));
		cr_assert(eq(int, jsonio_parse_object(texts[i],
		    strlen(texts[i]), JSONIO_DEPTH_MAX, &o2, &err),
		    JSONIO_OK));
		s1 = jsonio_serialize(o1, NULL);
		s2 = jsonio_serialize(o2, NULL);
		cr_assert(eq(str, s1, s2));
		free(s1);
		free(s2);
		json_object_put(o1);
		json_object_put(o2);
	}
}

Test(jsonio, parsed_object_is_usable)
{
	struct json_object *o, *v;
	struct jsonio_error err;
	const char *text = "{\"username\":\"Al\\u00efce\",\"n\":[1,2]}";
	const char *s;
	size_t len;

	cr_assert(eq(int, jsonio_parse_object(text, strlen(text),
	    JSONIO_DEPTH_MAX, &o, &err), JSONIO_OK));
	cr_assert(eq(int, err.code, JSONIO_OK));
	cr_assert(json_object_object_get_ex(o, "username", &v));
	cr_assert(jsonio_string(v, &s, &len));
	cr_assert(eq(str, (char *)s, "Al\xc3\xaf" "ce"));
	cr_assert(eq(sz, len, 6));
	json_object_put(o);
}

/* jsonio_string */

Test(jsonio, string_accepts_strings)
{
	struct json_object *v = json_object_new_string("h\xc3\xa9llo");
	struct json_object *e = json_object_new_string("");
	const char *s = NULL;
	size_t len = 99;

	cr_assert(jsonio_string(v, &s, &len));
	cr_assert(eq(str, (char *)s, "h\xc3\xa9llo"));
	cr_assert(eq(sz, len, 6));
	cr_assert(jsonio_string(e, &s, &len));
	cr_assert(eq(sz, len, 0));
	json_object_put(v);
	json_object_put(e);
}

Test(jsonio, string_rejects_other_types_and_embedded_nul)
{
	const char *text = "{\"n\":1,\"d\":1.5,\"b\":true,\"z\":null,\"a\":[],"
	    "\"o\":{},\"nul\":\"\\u0000\",\"mid\":\"a\\u0000b\","
	    "\"end\":\"ab\\u0000\"}";
	const char *names[] = { "n", "d", "b", "z", "a", "o", "nul", "mid",
	    "end" };
	struct json_object *o, *v;
	struct jsonio_error err;
	const char *s = NULL;
	size_t len = 0, i;

	cr_assert(eq(int, jsonio_parse_object(text, strlen(text),
	    JSONIO_DEPTH_MAX, &o, &err), JSONIO_OK));
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		cr_assert(json_object_object_get_ex(o, names[i], &v));
		cr_assert(not(jsonio_string(v, &s, &len)), "%s", names[i]);
	}
	cr_assert(not(jsonio_string(NULL, &s, &len)));
	json_object_put(o);
}

/* jsonio_time */

struct time_case {
	int64_t t;
	char want[JSONIO_TIME_SIZE];
};

ParameterizedTestParameters(jsonio, time_formats_rfc3339)
{
	static struct time_case cases[] = {
		{ 0, "1970-01-01T00:00:00Z" },
		{ 1795624800, "2026-11-25T16:40:00Z" },
		{ 1795624867, "2026-11-25T16:41:07Z" },
		{ 951782400, "2000-02-29T00:00:00Z" },
		{ 2147483648, "2038-01-19T03:14:08Z" },
		{ 253402300799, "9999-12-31T23:59:59Z" },
		{ -1, "1969-12-31T23:59:59Z" },
		/* outside gmtime's range: the epoch, never garbage */
		{ INT64_MAX, "1970-01-01T00:00:00Z" },
		{ INT64_MIN, "1970-01-01T00:00:00Z" },
	};

	return cr_make_param_array(struct time_case, cases,
	    sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct time_case *c, jsonio, time_formats_rfc3339)
{
	char buf[JSONIO_TIME_SIZE];

	cr_assert(eq(ptr, jsonio_time(c->t, buf), buf));
	cr_assert(eq(str, buf, c->want));
}

/* jsonio_time(t) against gmtime_r() and strftime(). */
static void
assert_time_as_gmtime(int64_t t)
{
	char buf[JSONIO_TIME_SIZE], want[64];
	time_t tt = (time_t)t;
	struct tm tm;

	cr_assert(not(eq(ptr, gmtime_r(&tt, &tm), NULL)));
	/* %Y does not pad years below 1000. */
	snprintf(want, sizeof(want), "%04d-%02d-%02dT%02d:%02d:%02dZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec);
	cr_assert(eq(str, jsonio_time(t, buf), want), "at %lld", (long long)t);
}

/* The same text as gmtime_r() over all four-digit years. */
Test(jsonio, time_agrees_with_gmtime_everywhere)
{
	const int64_t lo = INT64_C(-62167219200), hi = INT64_C(253402300799);
	const int64_t near = INT64_C(86400) * 800;	/* a few leap days */
	char buf[JSONIO_TIME_SIZE];
	int64_t t;

	/* Every 114 days or so, and by odd steps across each end and 0. */
	for (t = lo; t <= hi; t += 9876543)
		assert_time_as_gmtime(t);
	for (t = lo; t < lo + near; t += 3607)
		assert_time_as_gmtime(t);
	for (t = -near; t < near; t += 3607)
		assert_time_as_gmtime(t);
	for (t = hi; t > hi - near; t -= 3607)
		assert_time_as_gmtime(t);
	cr_assert(eq(str, jsonio_time(lo, buf), "0000-01-01T00:00:00Z"));
	cr_assert(eq(str, jsonio_time(lo - 1, buf), "1970-01-01T00:00:00Z"));
	cr_assert(eq(str, jsonio_time(hi + 1, buf), "1970-01-01T00:00:00Z"));
}

/* jsonio_user and jsonio_serialize */

static struct user
sample_user(void)
{
	struct user u;

	memset(&u, 0, sizeof(u));
	strcpy(u.username, "Alice");
	strcpy(u.email, "alice@example.org");
	strcpy(u.display_name, "Alice L.");
	strcpy(u.roles[0], "admin");
	u.nroles = 1;
	u.version = 1841;
	u.created_at = 1795624800;	/* 2026-11-25T16:40:00Z */
	u.updated_at = 1795624867;	/* 2026-11-25T16:41:07Z */
	return u;
}

/*
 * u's representation through the object tree; every test of it also
 * holds jsonio_user_text(), which must write the very same bytes.
 */
static char *
user_json(const struct user *u, size_t *len)
{
	struct json_object *o = jsonio_user(u);
	size_t tree_len, text_len = 0;
	char *s, *text;

	cr_assert(not(eq(ptr, o, NULL)));
	s = jsonio_serialize(o, &tree_len);
	cr_assert(not(eq(ptr, s, NULL)));
	json_object_put(o);
	text = jsonio_user_text(u, &text_len);
	cr_assert(not(eq(ptr, text, NULL)));
	cr_assert(eq(str, text, s));
	cr_assert(eq(sz, text_len, tree_len));
	free(text);
	if (len != NULL)
		*len = tree_len;
	return s;
}

Test(jsonio, user_matches_the_contract_byte_for_byte)
{
	struct user u = sample_user();
	size_t len = 0;
	char *s = user_json(&u, &len);
	const char *want = "{\"username\":\"Alice\","
	    "\"email\":\"alice@example.org\",\"display_name\":\"Alice L.\","
	    "\"roles\":[\"admin\"],"
	    "\"version\":\"1841\",\"created_at\":\"2026-11-25T16:40:00Z\","
	    "\"updated_at\":\"2026-11-25T16:41:07Z\"}";

	cr_assert(eq(str, s, (char *)want));
	cr_assert(eq(sz, len, strlen(want)));
	free(s);
}

Test(jsonio, user_without_optional_members)
{
	struct user u;
	char *s;

	memset(&u, 0, sizeof(u));
	strcpy(u.username, "bob");
	u.version = 7;
	s = user_json(&u, NULL);
	cr_assert(eq(str, s, "{\"username\":\"bob\",\"roles\":[],"
	    "\"version\":\"7\",\"created_at\":\"1970-01-01T00:00:00Z\","
	    "\"updated_at\":\"1970-01-01T00:00:00Z\"}"));
	free(s);

	strcpy(u.email, "b@x");
	s = user_json(&u, NULL);
	cr_assert(eq(str, s, "{\"username\":\"bob\",\"email\":\"b@x\","
	    "\"roles\":[],\"version\":\"7\","
	    "\"created_at\":\"1970-01-01T00:00:00Z\","
	    "\"updated_at\":\"1970-01-01T00:00:00Z\"}"));
	free(s);

	u.email[0] = '\0';
	strcpy(u.display_name, "B");
	s = user_json(&u, NULL);
	cr_assert(eq(str, s, "{\"username\":\"bob\",\"display_name\":\"B\","
	    "\"roles\":[],\"version\":\"7\","
	    "\"created_at\":\"1970-01-01T00:00:00Z\","
	    "\"updated_at\":\"1970-01-01T00:00:00Z\"}"));
	free(s);
}

Test(jsonio, user_with_many_roles_and_special_characters)
{
	struct user u = sample_user();
	char *s;
	size_t i;

	strcpy(u.display_name, "A \"q\" \\ a/b \xc3\xa9 \x7f");
	u.nroles = USER_ROLES_MAX;
	for (i = 0; i < USER_ROLES_MAX; i++)
		snprintf(u.roles[i], sizeof(u.roles[i]), "r%02zu", i);
	u.version = INT64_MAX;
	s = user_json(&u, NULL);
	cr_assert(not(eq(ptr, strstr(s, "\"display_name\":"
	    "\"A \\\"q\\\" \\\\ a/b \xc3\xa9 \x7f\""), NULL)), "%s", s);
	cr_assert(not(eq(ptr, strstr(s, "\"roles\":[\"r00\",\"r01\","), NULL)));
	cr_assert(not(eq(ptr, strstr(s, ",\"r15\"],"), NULL)));
	cr_assert(not(eq(ptr, strstr(s, "\"version\":\"9223372036854775807\""),
	    NULL)));
	free(s);
}

Test(jsonio, user_text_escapes_and_caps_like_the_tree)
{
	struct user u = sample_user();
	size_t i;

	strcpy(u.username, "c\x01\x1f\t\n\"\\/");
	strcpy(u.email, "\xe2\x80\xa8@x");
	u.display_name[0] = '\0';
	u.nroles = USER_ROLES_MAX + 3;	/* never more than the cap goes out */
	for (i = 0; i < USER_ROLES_MAX; i++)
		snprintf(u.roles[i], sizeof(u.roles[i]), "role-%zu", i);
	u.version = -5;
	u.created_at = -1;
	u.updated_at = INT64_MAX;
	free(user_json(&u, NULL));
	u.nroles = 0;
	free(user_json(&u, NULL));
}

Test(jsonio, user_representation_parses_back)
{
	struct user u = sample_user();
	struct json_object *o;
	struct jsonio_error err;
	size_t len;
	char *s = user_json(&u, &len);

	cr_assert(eq(int, jsonio_parse_object(s, len, JSONIO_DEPTH_MAX, &o,
	    &err), JSONIO_OK));
	json_object_put(o);
	free(s);
}

Test(jsonio, serialize_is_compact_and_keeps_slashes)
{
	struct json_object *o = json_object_new_object();
	size_t len = 0;
	char *s;

	json_object_object_add(o, "p", json_object_new_string("/a/b"));
	json_object_object_add(o, "n", json_object_new_array());
	s = jsonio_serialize(o, &len);
	cr_assert(eq(str, s, "{\"p\":\"/a/b\",\"n\":[]}"));
	cr_assert(eq(sz, len, strlen(s)));
	free(s);
	json_object_put(o);
}

/*
 * Closing a container before any object member was seen once did
 * pointer arithmetic on the still-NULL member array (UBSan with clang:
 * "applying zero offset to null pointer"); found by fuzz_jsonio.
 */
Test(jsonio, containers_closed_before_any_member)
{
	static const char *const bodies[] = {
		"{}", "[]]]]]]]]]", "[[]]", "{\"a\":[]}", "[{}]"
	};
	struct json_object *obj;
	struct jsonio_error err;
	size_t i;

	for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		obj = NULL;
		(void)jsonio_parse_object(bodies[i], strlen(bodies[i]),
		    JSONIO_DEPTH_MAX, &obj, &err);
		json_object_put(obj);
	}
	obj = NULL;
	cr_assert(eq(int, jsonio_parse_object("{}", 2, JSONIO_DEPTH_MAX, &obj,
	    &err), JSONIO_OK));
	json_object_put(obj);
}

/* The writer against json-c's own printer, which it replaces. */
static void
assert_as_json_c(struct json_object *o)
{
	const char *want = json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	size_t len = 0;
	char *got = jsonio_serialize(o, &len);

	cr_assert(not(eq(ptr, got, NULL)));
	cr_assert(eq(str, got, (char *)want));
	cr_assert(eq(sz, len, strlen(want)));
	free(got);
}

Test(jsonio, serialize_escapes_every_byte_as_json_c_does)
{
	struct json_object *o;
	char s[4];
	int c;

	for (c = 1; c < 256; c++) {
		s[0] = 'a';
		s[1] = (char)c;
		s[2] = 'z';
		s[3] = '\0';	/* member names are C strings */
		o = json_object_new_object();
		json_object_object_add(o, s, json_object_new_string_len(s, 3));
		assert_as_json_c(o);
		json_object_put(o);
	}
	/* A NUL inside a string value is kept, escaped. */
	o = json_object_new_string_len("a\0b", 3);
	assert_as_json_c(o);
	json_object_put(o);
}

Test(jsonio, serialize_writes_every_type_as_json_c_does)
{
	struct json_object *o = json_object_new_object();
	struct json_object *a = json_object_new_array();
	struct json_object *inner = json_object_new_object();

	json_object_object_add(o, "min", json_object_new_int64(INT64_MIN));
	json_object_object_add(o, "max", json_object_new_int64(INT64_MAX));
	json_object_object_add(o, "zero", json_object_new_int64(0));
	json_object_object_add(o, "neg", json_object_new_int(-42));
	json_object_object_add(o, "yes", json_object_new_boolean(1));
	json_object_object_add(o, "no", json_object_new_boolean(0));
	json_object_object_add(o, "nothing", NULL);
	json_object_object_add(o, "half", json_object_new_double(0.5));
	json_object_object_add(o, "empty", json_object_new_string(""));
	json_object_object_add(o, "path", json_object_new_string("/users/a"));
	json_object_object_add(o, "utf8", json_object_new_string(
	    "caf\xc3\xa9 \xf0\x9f\x98\x80"));
	json_object_array_add(a, json_object_new_int(1));
	json_object_array_add(a, NULL);
	json_object_array_add(a, json_object_new_array());
	json_object_array_add(a, json_object_new_object());
	json_object_object_add(inner, "list", a);
	json_object_object_add(o, "inner", inner);
	assert_as_json_c(o);
	json_object_put(o);
	o = json_object_new_array();
	assert_as_json_c(o);
	json_object_put(o);
	o = json_object_new_object();
	assert_as_json_c(o);
	json_object_put(o);
}

/* Larger than the first buffer: it grows without losing a byte. */
Test(jsonio, serialize_grows_past_its_first_buffer)
{
	struct json_object *o = json_object_new_array();
	char name[32];
	int i;

	for (i = 0; i < 500; i++) {
		snprintf(name, sizeof(name), "user-%d\t\"q\"", i);
		json_object_array_add(o, json_object_new_string(name));
	}
	assert_as_json_c(o);
	json_object_put(o);
}
