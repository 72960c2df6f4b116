/* test_precond.c: entity-tag lists and RFC 9110 13.1 / 13.2 evaluation. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <criterion/parameterized.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "precond.h"

/*
 * Parameters hold arrays, not pointers: Criterion runs each test in a
 * fresh process of the (PIE) binary, where the parent's pointers into
 * static storage need not be valid.
 */
struct syntax_case {
	char value[48];
	int valid;
	int star;
};

ParameterizedTestParameters(precond, valid_syntax)
{
	static struct syntax_case cases[] = {
		{ "*", 1, 1 },
		{ " * ", 1, 1 },
		{ "\t*\t", 1, 1 },
		{ "\"5\"", 1, 0 },
		{ "W/\"5\"", 1, 0 },
		{ "\"\"", 1, 0 },
		{ "W/\"\"", 1, 0 },
		{ "\"5\",\"6\"", 1, 0 },
		{ "\"5\", W/\"6\"", 1, 0 },
		{ " \"5\" ,\t\"6\" ", 1, 0 },
		{ ",\"5\"", 1, 0 },
		{ "\"5\",", 1, 0 },
		{ " , ,\"5\" , , ", 1, 0 },
		{ "\"5\",,\"6\"", 1, 0 },
		{ "\"!#$%&'()*+,-./:;<=>?@[\\]^_`{|}~\"", 1, 0 },
		{ "\"W/\"", 1, 0 },
		{ "\"*\"", 1, 0 },
		{ "\"a,b\"", 1, 0 },
		{ "\"\x80\xff\xc3\xa9\"", 1, 0 },	/* obs-text */
		/* blank and all-empty lists */
		{ "", 0, 0 },
		{ " ", 0, 0 },
		{ "\t", 0, 0 },
		{ ",", 0, 0 },
		{ " , ,\t, ", 0, 0 },
		/* unquoted, half-quoted, badly prefixed */
		{ "5", 0, 0 },
		{ "\"5", 0, 0 },
		{ "5\"", 0, 0 },
		{ "\"", 0, 0 },
		{ "'5'", 0, 0 },
		{ "w/\"5\"", 0, 0 },
		{ "W/ \"5\"", 0, 0 },
		{ "W /\"5\"", 0, 0 },
		{ "W\"5\"", 0, 0 },
		{ "W/5", 0, 0 },
		{ "W/", 0, 0 },
		{ "/\"5\"", 0, 0 },
		/* "*" mixed with tags, or doubled */
		{ "*, \"5\"", 0, 0 },
		{ "\"5\", *", 0, 0 },
		{ "*,", 0, 0 },
		{ "**", 0, 0 },
		{ "* *", 0, 0 },
		{ "W/*", 0, 0 },
		/* separators and characters outside etagc */
		{ "\"5\" \"6\"", 0, 0 },
		{ "\"5\"\"6\"", 0, 0 },
		{ "\"5\";\"6\"", 0, 0 },
		{ "\"5\", x", 0, 0 },
		{ "\"a b\"", 0, 0 },
		{ "\"a\\\"b\"", 0, 0 },
		{ "\"a\tb\"", 0, 0 },
		{ "\"a\x01\"", 0, 0 },
		{ "\"a\x7f\"", 0, 0 },
		{ "\"5\"\r\n", 0, 0 },
		{ "\"5\"\n", 0, 0 },
		{ "\"5\"\r\nX-Evil: 1", 0, 0 },
		{ "\r\n\"5\"", 0, 0 },
		{ "\v\"5\"", 0, 0 },
		{ "\"5\"\f", 0, 0 },
		{ "\x01*", 0, 0 },
	};

	return cr_make_param_array(struct syntax_case, cases,
	    sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct syntax_case *c, precond, valid_syntax)
{
	cr_assert(eq(int, precond_valid(c->value), c->valid), "[%s]",
	    c->value);
	cr_assert(eq(int, precond_is_star(c->value), c->star), "[%s]",
	    c->value);
}

Test(precond, null_is_not_valid)
{
	cr_assert(not(precond_valid(NULL)));
	cr_assert(not(precond_is_star(NULL)));
}

/* Builds a value of n bytes: OWS padding in front of "\"5\"". */
static char *
padded(size_t n)
{
	char *s = malloc(n + 1);

	cr_assert(not(eq(ptr, s, NULL)));
	memset(s, ' ', n - 3);
	memcpy(s + n - 3, "\"5\"", 3);
	s[n] = '\0';
	return s;
}

Test(precond, header_max_is_inclusive)
{
	char *at = padded(PRECOND_HEADER_MAX);
	char *past = padded(PRECOND_HEADER_MAX + 1);

	cr_assert(eq(int, PRECOND_HEADER_MAX, 8192));
	cr_assert(precond_valid(at));
	cr_assert(precond_if_match(at, 5));
	cr_assert(not(precond_if_none_match(at, 5)));
	cr_assert(not(precond_valid(past)));
	cr_assert(not(precond_if_match(past, 5)));
	free(at);
	free(past);
}

Test(precond, header_max_applies_to_star_and_long_tags)
{
	char *s = malloc(PRECOND_HEADER_MAX + 2);

	cr_assert(not(eq(ptr, s, NULL)));
	memset(s, ' ', PRECOND_HEADER_MAX + 1);
	s[0] = '*';
	s[PRECOND_HEADER_MAX] = '\0';
	cr_assert(precond_valid(s));
	cr_assert(precond_is_star(s));
	s[PRECOND_HEADER_MAX] = ' ';
	s[PRECOND_HEADER_MAX + 1] = '\0';
	cr_assert(not(precond_valid(s)));
	cr_assert(not(precond_is_star(s)));

	/* one opaque-tag filling the whole value */
	memset(s, 'a', PRECOND_HEADER_MAX + 1);
	s[0] = '"';
	s[PRECOND_HEADER_MAX - 1] = '"';
	s[PRECOND_HEADER_MAX] = '\0';
	cr_assert(precond_valid(s));
	s[PRECOND_HEADER_MAX - 1] = 'a';
	s[PRECOND_HEADER_MAX] = '"';
	s[PRECOND_HEADER_MAX + 1] = '\0';
	cr_assert(not(precond_valid(s)));
	free(s);
}

Test(precond, long_lists_are_parsed)
{
	size_t n = 0, cap = PRECOND_HEADER_MAX + 1;
	char *s = malloc(cap);
	int v;

	cr_assert(not(eq(ptr, s, NULL)));
	s[0] = '\0';
	for (v = 1; n + 16 < PRECOND_HEADER_MAX; v++)
		n += (size_t)snprintf(s + n, cap - n, "%s\"%d\"", v > 1 ?
		    ", " : "", v * 2);
	cr_assert(precond_valid(s));
	cr_assert(precond_if_match(s, 2));
	cr_assert(precond_if_match(s, (int64_t)(v - 1) * 2));
	cr_assert(not(precond_if_match(s, 3)));
	cr_assert(not(precond_if_none_match(s, 4)));
	cr_assert(precond_if_none_match(s, 5));
	free(s);
}

/* RFC 9110 13.1.1 and 13.1.2 on their own */

struct match_case {
	char value[32];
	int64_t version;
	int if_match;		/* precond_if_match() */
	int if_none_match;	/* precond_if_none_match() */
};

ParameterizedTestParameters(precond, match)
{
	static struct match_case cases[] = {
		{ "\"5\"", 5, 1, 0 },
		{ "\"5\"", 6, 0, 1 },
		{ "\"5\"", 0, 0, 1 },
		{ "W/\"5\"", 5, 0, 0 },		/* strong vs weak compare */
		{ "W/\"5\"", 6, 0, 1 },
		{ "*", 5, 1, 0 },
		{ "*", 1, 1, 0 },
		{ "*", 0, 0, 1 },
		{ " * ", 0, 0, 1 },
		{ "\"0\"", 0, 0, 1 },		/* no representation: no tag */
		{ "W/\"0\"", 0, 0, 1 },
		{ "\"05\"", 5, 0, 1 },		/* opaque, not numeric */
		{ "\"5 \"", 5, 0, 0 },		/* SP is no etagc */
		{ "\"+5\"", 5, 0, 1 },
		{ "\"5.0\"", 5, 0, 1 },
		{ "\"55\"", 5, 0, 1 },
		{ "\"5\"", 55, 0, 1 },
		{ "\"\"", 5, 0, 1 },
		{ "\"4\", \"5\"", 5, 1, 0 },
		{ "\"5\", \"4\"", 5, 1, 0 },
		{ "W/\"5\", \"5\"", 5, 1, 0 },
		{ "W/\"4\", W/\"5\"", 5, 0, 0 },
		{ " , \"5\" ,, ", 5, 1, 0 },
		{ "\"4\",\"6\"", 5, 0, 1 },
		{ "\"9223372036854775807\"", INT64_MAX, 1, 0 },
		/* malformed values are never true (callers reject them) */
		{ "5", 5, 0, 0 },
		{ "", 5, 0, 0 },
		{ "*, \"5\"", 5, 0, 0 },
		{ "\"5\" \"5\"", 5, 0, 0 },
		{ "w/\"5\"", 5, 0, 0 },
	};

	return cr_make_param_array(struct match_case, cases,
	    sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct match_case *c, precond, match)
{
	cr_assert(eq(int, precond_if_match(c->value, c->version),
	    c->if_match), "If-Match: %s on %lld", c->value,
	    (long long)c->version);
	cr_assert(eq(int, precond_if_none_match(c->value, c->version),
	    c->if_none_match), "If-None-Match: %s on %lld", c->value,
	    (long long)c->version);
}

Test(precond, null_values_are_false)
{
	cr_assert(not(precond_if_match(NULL, 5)));
	cr_assert(not(precond_if_none_match(NULL, 5)));
}

/* RFC 9110 13.2.2: header values x current version x safe/unsafe */

#define NONE "\x01"	/* the header is absent */

struct eval_case {
	char if_match[24];
	char if_none_match[24];
	int64_t version;
	enum precond_outcome safe;	/* GET, HEAD */
	enum precond_outcome unsafe;	/* PUT, PATCH, DELETE */
};

ParameterizedTestParameters(precond, evaluate)
{
	static struct eval_case cases[] = {
		/* no preconditions */
		{ NONE, NONE, 0, PRECOND_PROCEED, PRECOND_PROCEED },
		{ NONE, NONE, 5, PRECOND_PROCEED, PRECOND_PROCEED },
		/* If-Match alone */
		{ "\"5\"", NONE, 5, PRECOND_PROCEED, PRECOND_PROCEED },
		{ "\"5\"", NONE, 6, PRECOND_FAILED, PRECOND_FAILED },
		{ "\"5\"", NONE, 0, PRECOND_FAILED, PRECOND_FAILED },
		{ "\"0\"", NONE, 0, PRECOND_FAILED, PRECOND_FAILED },
		{ "W/\"5\"", NONE, 5, PRECOND_FAILED, PRECOND_FAILED },
		{ "\"05\"", NONE, 5, PRECOND_FAILED, PRECOND_FAILED },
		{ "*", NONE, 5, PRECOND_PROCEED, PRECOND_PROCEED },
		{ "*", NONE, 0, PRECOND_FAILED, PRECOND_FAILED },
		{ "\"4\", \"5\"", NONE, 5, PRECOND_PROCEED, PRECOND_PROCEED },
		{ " ,\"5\", ", NONE, 5, PRECOND_PROCEED, PRECOND_PROCEED },
		{ "\"4\", \"6\"", NONE, 5, PRECOND_FAILED, PRECOND_FAILED },
		/* If-None-Match alone */
		{ NONE, "\"5\"", 5, PRECOND_NOT_MODIFIED, PRECOND_FAILED },
		{ NONE, "W/\"5\"", 5, PRECOND_NOT_MODIFIED, PRECOND_FAILED },
		{ NONE, "\"5\"", 6, PRECOND_PROCEED, PRECOND_PROCEED },
		{ NONE, "\"5\"", 0, PRECOND_PROCEED, PRECOND_PROCEED },
		{ NONE, "\"0\"", 0, PRECOND_PROCEED, PRECOND_PROCEED },
		{ NONE, "\"05\"", 5, PRECOND_PROCEED, PRECOND_PROCEED },
		{ NONE, "*", 0, PRECOND_PROCEED, PRECOND_PROCEED },
		{ NONE, "*", 5, PRECOND_NOT_MODIFIED, PRECOND_FAILED },
		{ NONE, "\"4\",,W/\"5\"", 5, PRECOND_NOT_MODIFIED,
		    PRECOND_FAILED },
		{ NONE, "\"4\", \"6\"", 5, PRECOND_PROCEED, PRECOND_PROCEED },
		/* both: If-Match is evaluated first (step 1, then step 3) */
		{ "\"5\"", "\"5\"", 5, PRECOND_NOT_MODIFIED, PRECOND_FAILED },
		{ "\"5\"", "\"6\"", 5, PRECOND_PROCEED, PRECOND_PROCEED },
		{ "\"4\"", "\"5\"", 5, PRECOND_FAILED, PRECOND_FAILED },
		{ "\"4\"", "\"6\"", 5, PRECOND_FAILED, PRECOND_FAILED },
		{ "*", "*", 5, PRECOND_NOT_MODIFIED, PRECOND_FAILED },
		{ "*", "*", 0, PRECOND_FAILED, PRECOND_FAILED },
		{ "\"5\"", "*", 5, PRECOND_NOT_MODIFIED, PRECOND_FAILED },
		{ "*", "\"4\"", 5, PRECOND_PROCEED, PRECOND_PROCEED },
		/* malformed values that reach evaluation never proceed */
		{ "5", NONE, 5, PRECOND_FAILED, PRECOND_FAILED },
		{ NONE, "5", 5, PRECOND_NOT_MODIFIED, PRECOND_FAILED },
	};

	return cr_make_param_array(struct eval_case, cases,
	    sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct eval_case *c, precond, evaluate)
{
	const char *im = strcmp(c->if_match, NONE) ? c->if_match : NULL;
	const char *inm = strcmp(c->if_none_match, NONE) ?
	    c->if_none_match : NULL;

	cr_assert(eq(int, (int)precond_evaluate(im, inm, 1, c->version),
	    (int)c->safe), "safe, If-Match: %s, If-None-Match: %s, v%lld",
	    im ? im : "-", inm ? inm : "-", (long long)c->version);
	cr_assert(eq(int, (int)precond_evaluate(im, inm, 0, c->version),
	    (int)c->unsafe), "unsafe, If-Match: %s, If-None-Match: %s, v%lld",
	    im ? im : "-", inm ? inm : "-", (long long)c->version);
}

Test(precond, etag_formats_the_version)
{
	char buf[PRECOND_ETAG_SIZE];

	cr_assert(eq(ptr, precond_etag(1841, buf), buf));
	cr_assert(eq(str, buf, "\"1841\""));
	cr_assert(eq(str, precond_etag(0, buf), "\"0\""));
	cr_assert(eq(str, precond_etag(1, buf), "\"1\""));
	cr_assert(eq(str, precond_etag(INT64_MAX, buf),
	    "\"9223372036854775807\""));
	cr_assert(eq(str, precond_etag(INT64_MIN, buf),
	    "\"-9223372036854775808\""));
	cr_assert(lt(sz, strlen(buf), PRECOND_ETAG_SIZE));
}

Test(precond, etag_round_trips_through_if_match)
{
	char buf[PRECOND_ETAG_SIZE];
	int64_t v[] = { 1, 9, 10, 1841, INT64_MAX };
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		precond_etag(v[i], buf);
		cr_assert(precond_valid(buf));
		cr_assert(precond_if_match(buf, v[i]));
		cr_assert(not(precond_if_match(buf, v[i] - 1)));
		cr_assert(not(precond_if_none_match(buf, v[i])));
	}
}
