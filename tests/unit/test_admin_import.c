/* test_admin_import.c: lines of an import file, and the time they carry. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <criterion/parameterized.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin_export.h"
#include "admin_import.h"
#include "jsonio.h"

/*
 * Parameters hold arrays, not pointers: Criterion runs each test in a
 * fresh process, where the parent's pointers need not be valid.
 */

#define T0 "2026-11-25T16:40:00Z"
#define T1 "2026-11-25T16:41:07Z"
#define TIMES "\"created_at\":\"" T0 "\",\"updated_at\":\"" T1 "\""

static void
parse(const char *line, struct admin_line *l)
{
	admin_import_parse(line, strlen(line), l);
}

/* ---- times --------------------------------------------------------------- */

Test(admin_import, time_reads_what_jsonio_writes)
{
	static const int64_t samples[] = { 0, 1, 59, 86399, 86400,
	    951782400 /* 2000-02-29 */, 1795624800, 4102444799,
	    253402300799 /* 9999-12-31T23:59:59Z */ };
	char buf[JSONIO_TIME_SIZE];
	int64_t t;
	size_t i;

	for (i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		jsonio_time(samples[i], buf);
		cr_assert(eq(int, admin_import_time(buf, strlen(buf), &t), 0),
		    "%s", buf);
		cr_assert(eq(i64, t, samples[i]), "%s", buf);
	}
}

Test(admin_import, time_agrees_with_timegm_each_day)
{
	char buf[JSONIO_TIME_SIZE];
	int64_t t, day;
	struct tm tm;
	time_t want;

	/* Every day of 1970-2100 at 12:34:56, leap years included. */
	for (day = 0; day < 47482; day++) {
		want = (time_t)(day * 86400 + 45296);
		gmtime_r(&want, &tm);
		strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
		cr_assert(eq(int, admin_import_time(buf, strlen(buf), &t), 0),
		    "%s", buf);
		cr_assert(eq(i64, t, (int64_t)want), "%s", buf);
	}
}

struct bad_time {
	char s[32];
};

ParameterizedTestParameters(admin_import, time_refuses)
{
	static struct bad_time cases[] = {
		{ "" }, { "2026-11-25" }, { "2026-11-25T16:40:00" },
		{ "2026-11-25T16:40:00z" }, { "2026-11-25 16:40:00Z" },
		{ "2026-11-25T16:40:00+00:00" }, { "2026-11-25T16:40:00.5Z" },
		{ "1969-12-31T23:59:59Z" }, { "0000-01-01T00:00:00Z" },
		{ "2026-00-10T00:00:00Z" }, { "2026-13-10T00:00:00Z" },
		{ "2026-01-00T00:00:00Z" }, { "2026-01-32T00:00:00Z" },
		{ "2026-02-29T00:00:00Z" }, { "1900-02-29T00:00:00Z" },
		{ "2026-04-31T00:00:00Z" }, { "2026-01-01T24:00:00Z" },
		{ "2026-01-01T00:60:00Z" }, { "2026-01-01T00:00:60Z" },
		{ "2026-1-01T00:00:00ZZ" }, { "+026-01-01T00:00:00Z" },
		{ "2026-01-01T0a:00:00Z" }, { " 2026-01-01T00:00:00Z" },
	};

	return cr_make_param_array(struct bad_time, cases,
	    sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct bad_time *c, admin_import, time_refuses)
{
	int64_t t = 77;

	cr_assert(eq(int, admin_import_time(c->s, strlen(c->s), &t), -1),
	    "'%s'", c->s);
	cr_assert(eq(i64, t, 77));
}

Test(admin_import, time_takes_leap_days)
{
	int64_t t;

	cr_assert(eq(int, admin_import_time("2000-02-29T00:00:00Z", 20, &t),
	    0));
	cr_assert(eq(i64, t, 951782400));
	cr_assert(eq(int, admin_import_time("2024-02-29T23:59:59Z", 20, &t),
	    0));
	cr_assert(eq(i64, t, 1709251199));
}

/* ---- lines --------------------------------------------------------------- */

Test(admin_import, representation_reads_back_whole)
{
	struct admin_line l;
	int64_t t0, t1;

	parse("{\"username\":\"Alice\",\"email\":\"alice@example.org\","
	    "\"display_name\":\"Alice L.\",\"roles\":[\"ops\",\"admin\"],"
	    "\"version\":\"1841\"," TIMES "}", &l);
	cr_assert(eq(int, l.kind, ADMIN_LINE_USER), "%s", l.why);
	cr_assert(eq(str, l.u.username, "Alice"));
	cr_assert(eq(str, l.u.email, "alice@example.org"));
	cr_assert(eq(str, l.u.display_name, "Alice L."));
	cr_assert(eq(sz, l.u.nroles, 2));
	/* Sorted as the registry stores them. */
	cr_assert(eq(str, l.u.roles[0], "admin"));
	cr_assert(eq(str, l.u.roles[1], "ops"));
	cr_assert(eq(i64, l.u.version, 1841));
	admin_import_time(T0, 20, &t0);
	admin_import_time(T1, 20, &t1);
	cr_assert(eq(i64, l.u.created_at, t0));
	cr_assert(eq(i64, l.u.updated_at, t1));
}

Test(admin_import, optional_members_may_be_absent_or_null)
{
	struct admin_line l;

	parse("{\"username\":\"bob\",\"version\":\"2\"," TIMES "}", &l);
	cr_assert(eq(int, l.kind, ADMIN_LINE_USER), "%s", l.why);
	cr_assert(eq(str, l.u.email, ""));
	cr_assert(eq(sz, l.u.nroles, 0));
	parse("{\"username\":\"bob\",\"email\":null,\"display_name\":null,"
	    "\"roles\":[],\"version\":\"2\"," TIMES "}", &l);
	cr_assert(eq(int, l.kind, ADMIN_LINE_USER), "%s", l.why);
	cr_assert(eq(str, l.u.display_name, ""));
}

Test(admin_import, a_users_line_round_trips_through_the_encoder)
{
	struct admin_line l, again;
	struct json_object *o;
	char *s;

	parse("{\"username\":\"Zoë-not\",\"version\":\"2\"," TIMES "}", &l);
	cr_assert(eq(int, l.kind, ADMIN_LINE_BAD));
	parse("{\"username\":\"zoe\",\"display_name\":\"Zo\\u00eb \\\"Z\\\"\","
	    "\"roles\":[\"a-b\",\"c_d\"],\"version\":\"7\"," TIMES "}", &l);
	cr_assert(eq(int, l.kind, ADMIN_LINE_USER), "%s", l.why);
	o = jsonio_user(&l.u);
	s = jsonio_serialize(o, NULL);
	json_object_put(o);
	parse(s, &again);
	cr_assert(eq(int, again.kind, ADMIN_LINE_USER), "%s", again.why);
	cr_assert(eq(int, memcmp(&l.u, &again.u, sizeof(l.u)), 0), "%s", s);
	free(s);
}

Test(admin_import, header_is_recognized)
{
	struct admin_line l;
	char *h = admin_export_header(1234);

	parse(h, &l);
	cr_assert(eq(int, l.kind, ADMIN_LINE_HEADER), "%s: %s", h, l.why);
	cr_assert(eq(i64, l.revision, 1234));
	free(h);
	parse("{\"revision\":0,\"userreg_export\":1}", &l);
	cr_assert(eq(int, l.kind, ADMIN_LINE_HEADER), "%s", l.why);
	cr_assert(eq(i64, l.revision, 0));
}

Test(admin_import, blank_lines_are_skipped)
{
	struct admin_line l;

	parse("", &l);
	cr_assert(eq(int, l.kind, ADMIN_LINE_BLANK));
	parse(" \t\r", &l);
	cr_assert(eq(int, l.kind, ADMIN_LINE_BLANK));
}

struct bad_line {
	char line[200];
	char why[48];		/* a part of the reason */
};

ParameterizedTestParameters(admin_import, line_refuses)
{
	static struct bad_line cases[] = {
		{ "x", "not a JSON object" },
		{ "[]", "not a JSON object" },
		{ "\"alice\"", "not a JSON object" },
		{ "{\"username\":\"a\",}", "not a JSON object" },
		{ "{\"username\":\"a\",\"username\":\"b\"}", "not a JSON object" },
		{ "{\"username\":\"a\"} {}", "not a JSON object" },
		{ "{}", "no username" },
		{ "{\"username\":\"a\"," TIMES "}", "no version" },
		{ "{\"username\":\"a\",\"version\":\"1\"}", "no created_at" },
		{ "{\"username\":\"a\",\"version\":\"1\",\"created_at\":\"" T0
		    "\"}", "no updated_at" },
		{ "{\"username\":\"a b\",\"version\":\"1\"," TIMES "}",
		    "username" },
		{ "{\"username\":7,\"version\":\"1\"," TIMES "}",
		    "username must be a string" },
		{ "{\"username\":\"a\",\"version\":1," TIMES "}",
		    "version must be" },
		{ "{\"username\":\"a\",\"version\":\"0\"," TIMES "}",
		    "version must be" },
		{ "{\"username\":\"a\",\"version\":\"-1\"," TIMES "}",
		    "version must be" },
		{ "{\"username\":\"a\",\"version\":\"01\"," TIMES "}",
		    "version must be" },
		{ "{\"username\":\"a\",\"version\":\"9223372036854775808\","
		    TIMES "}", "version must be" },
		{ "{\"username\":\"a\",\"email\":\"no-at\",\"version\":\"1\","
		    TIMES "}", "email" },
		{ "{\"username\":\"a\",\"email\":\"\",\"version\":\"1\"," TIMES
		    "}", "email" },
		{ "{\"username\":\"a\",\"email\":5,\"version\":\"1\"," TIMES "}",
		    "email must be a string" },
		{ "{\"username\":\"a\",\"display_name\":\"a\\u0001\","
		    "\"version\":\"1\"," TIMES "}", "display_name" },
		{ "{\"username\":\"a\",\"roles\":\"admin\",\"version\":\"1\","
		    TIMES "}", "roles must be an array" },
		{ "{\"username\":\"a\",\"roles\":[\"Admin\"],\"version\":\"1\","
		    TIMES "}", "roles/0" },
		{ "{\"username\":\"a\",\"roles\":[1],\"version\":\"1\"," TIMES
		    "}", "roles/0 must be a string" },
		{ "{\"username\":\"a\",\"roles\":[\"x\",\"x\"],\"version\":\"1\","
		    TIMES "}", "named twice" },
		{ "{\"username\":\"a\",\"version\":\"1\",\"created_at\":\""
		    T1 "\",\"updated_at\":\"" T0 "\"}", "after updated_at" },
		{ "{\"username\":\"a\",\"version\":\"1\",\"created_at\":1,"
		    "\"updated_at\":\"" T0 "\"}", "created_at must be" },
		{ "{\"username\":\"a\",\"version\":\"1\",\"created_at\":\""
		    T0 "\",\"updated_at\":\"yesterday\"}", "updated_at must be" },
		{ "{\"username\":\"a\",\"version\":\"1\",\"admin\":true," TIMES
		    "}", "unknown member 'admin'" },
		{ "{\"userreg_export\":2,\"revision\":1}", "userreg_export must" },
		{ "{\"userreg_export\":\"1\",\"revision\":1}",
		    "userreg_export must" },
		{ "{\"userreg_export\":1}", "revision must" },
		{ "{\"userreg_export\":1,\"revision\":-1}", "revision must" },
		{ "{\"userreg_export\":1,\"revision\":\"5\"}", "revision must" },
		{ "{\"userreg_export\":1,\"revision\":1.5}", "revision must" },
		{ "{\"userreg_export\":1,\"revision\":1,\"x\":0}",
		    "unknown member 'x'" },
	};

	return cr_make_param_array(struct bad_line, cases,
	    sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct bad_line *c, admin_import, line_refuses)
{
	struct admin_line l;

	parse(c->line, &l);
	cr_assert(eq(int, l.kind, ADMIN_LINE_BAD), "%s", c->line);
	cr_assert(not(eq(ptr, strstr(l.why, c->why), NULL)),
	    "'%s' said '%s', want '%s'", c->line, l.why, c->why);
}

Test(admin_import, a_nul_inside_a_line_is_refused)
{
	static const char line[] = "{\"username\":\"a\0b\",\"version\":\"1\","
	    TIMES "}";
	struct admin_line l;

	admin_import_parse(line, sizeof(line) - 1, &l);
	cr_assert(eq(int, l.kind, ADMIN_LINE_BAD));
}
