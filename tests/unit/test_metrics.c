/* test_metrics.c: counting, pool aggregation and the /metrics exposition. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <criterion/parameterized.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "metrics.h"
#include "support.h"

/*
 * Criterion runs each test in a fresh process, so every test starts with
 * zero counters and no pool. Parameters hold arrays, not pointers.
 */

static const struct metrics_gauges gauges = { 42, 1841, "1.2.3" };

/* Renders with the fixed gauges; the caller frees. */
static char *
render(void)
{
	size_t len = 0;
	char *text = metrics_render(&gauges, &len);

	cr_assert(not(eq(ptr, text, NULL)));
	cr_assert(eq(sz, len, strlen(text)));
	return text;
}

/* Returns 1 when text holds line (without its newline) as a whole line. */
static int
has_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	const char *p = text;

	while ((p = strstr(p, line)) != NULL) {
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return 1;
		p++;
	}
	return 0;
}

/* Returns the value of the sample series ("name{labels}"), -1 if absent. */
static long long
value_of(const char *text, const char *series)
{
	size_t n = strlen(series);
	const char *p = text;

	while ((p = strstr(p, series)) != NULL) {
		if ((p == text || p[-1] == '\n') && p[n] == ' ')
			return strtoll(p + n + 1, NULL, 10);
		p++;
	}
	return -1;
}

/* ---- an exposition format 0.0.4 checker ---------------------------------- */

/*
 * Checks what promtool does not: every family has HELP then TYPE before
 * its samples and no family appears twice; counters end in _total;
 * samples belong to their family; label values use only the three
 * escapes; each histogram's buckets rise in le and in value, end with
 * +Inf, and its _count equals +Inf. The renderer writes a histogram's
 * series one after another, which the checker relies on. Returns NULL or
 * a reason (static text), with the line number in *lineno.
 */
struct checker {
	char family[128];
	char type[16];
	char seen[4096];	/* " name" of every family so far */
	char key[256];		/* labels of the histogram series, without le */
	int open;		/* a histogram series has begun, no _count yet */
	double le;		/* last bucket's bound */
	double bucket;		/* last bucket's value */
	int inf;		/* +Inf seen for key */
	double inf_value;
	int sum;		/* _sum seen for key */
};

static int
is_name_char(char c, int first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
	    c == ':' || (!first && c >= '0' && c <= '9');
}

static int
ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Reads a label set at *p ('{' already consumed) into key and le. */
static const char *
parse_labels(const char **p, char *key, size_t keysize, char *le,
    size_t lesize)
{
	const char *s = *p;
	char name[64], value[256];
	size_t n;

	key[0] = le[0] = '\0';
	while (*s != '}') {
		for (n = 0; is_name_char(*s, n == 0) && *s != ':'; s++)
			if (n < sizeof(name) - 1)
				name[n++] = *s;
		name[n] = '\0';
		if (n == 0 || *s++ != '=' || *s++ != '"')
			return "bad label name";
		for (n = 0; *s != '"'; s++) {
			if (*s == '\n' || *s == '\0')
				return "unterminated label value";
			if (*s == '\\') {
				s++;
				if (*s != '\\' && *s != '"' && *s != 'n')
					return "bad escape in label value";
			}
			if (n < sizeof(value) - 1)
				value[n++] = *s;
		}
		value[n] = '\0';
		s++;
		if (strcmp(name, "le") == 0) {
			if (snprintf(le, lesize, "%s", value) >= (int)lesize)
				return "le too long";
		} else if (snprintf(key + strlen(key), keysize - strlen(key),
		    "%s=%s,", name, value) >= (int)(keysize - strlen(key))) {
			return "labels too long";
		}
		if (*s == ',')
			s++;
		else if (*s != '}')
			return "bad label separator";
	}
	*p = s + 1;
	return NULL;
}

static const char *
check_histogram(struct checker *c, const char *name, const char *key,
    const char *le, double v)
{
	char want[160];
	double bound;

	if (!c->open) {
		snprintf(c->key, sizeof(c->key), "%s", key);
		c->open = 1;
		c->inf = c->sum = 0;
		c->le = -1e300;
		c->bucket = 0;
	} else if (strcmp(key, c->key) != 0) {
		return "histogram series interleaved or without _count";
	}
	snprintf(want, sizeof(want), "%s_bucket", c->family);
	if (strcmp(name, want) == 0) {
		if (le[0] == '\0' || c->inf)
			return "bucket without le, or after +Inf";
		bound = strcmp(le, "+Inf") == 0 ? 1e300 : strtod(le, NULL);
		if (bound <= c->le || v < c->bucket)
			return "buckets not rising in le and in value";
		c->le = bound;
		c->bucket = v;
		if (strcmp(le, "+Inf") == 0) {
			c->inf = 1;
			c->inf_value = v;
		}
		return NULL;
	}
	snprintf(want, sizeof(want), "%s_sum", c->family);
	if (strcmp(name, want) == 0) {
		c->sum = 1;
		return NULL;
	}
	snprintf(want, sizeof(want), "%s_count", c->family);
	if (strcmp(name, want) == 0) {
		if (!c->inf || !c->sum || v != c->inf_value)
			return "_count without +Inf and _sum, or unequal "
			    "to +Inf";
		c->open = 0;
		return NULL;
	}
	return "sample outside its histogram family";
}

static const char *
check_sample(struct checker *c, const char *line)
{
	char name[160], key[256], le[32], *end;
	const char *p = line, *why;
	size_t n;
	double v;

	for (n = 0; is_name_char(*p, n == 0); p++)
		if (n < sizeof(name) - 1)
			name[n++] = *p;
	name[n] = '\0';
	if (n == 0)
		return "bad metric name";
	key[0] = le[0] = '\0';
	if (*p == '{') {
		p++;
		if ((why = parse_labels(&p, key, sizeof(key), le,
		    sizeof(le))) != NULL)
			return why;
	}
	if (*p++ != ' ')
		return "no space before the value";
	v = strtod(p, &end);
	if (end == p || *end != '\n')
		return "bad value (or a timestamp)";
	if (c->family[0] == '\0')
		return "sample before any HELP and TYPE";
	if (strcmp(c->type, "histogram") == 0)
		return check_histogram(c, name, key, le, v);
	if (strcmp(name, c->family) != 0)
		return "sample outside its family";
	if (v < 0 && strcmp(c->type, "counter") == 0)
		return "negative counter";
	return NULL;
}

static const char *
check_exposition(const char *text, int *lineno)
{
	struct checker c;
	char name[160], help[160], want[200];
	const char *line = text, *nl, *why;

	memset(&c, 0, sizeof(c));
	*lineno = 0;
	if (text[0] == '\0' || text[strlen(text) - 1] != '\n')
		return "text does not end in a newline";
	for (; *line != '\0'; line = nl + 1) {
		nl = strchr(line, '\n');
		(*lineno)++;
		if (nl == line)
			return "empty line";
		if (strncmp(line, "# HELP ", 7) == 0) {
			if (c.open)
				return "histogram family ends mid-series";
			if (sscanf(line, "# HELP %159s %159[^\n]", name,
			    help) != 2)
				return "HELP without name or text";
			snprintf(want, sizeof(want), " %s ", name);
			if (strstr(c.seen, want) != NULL)
				return "family appears twice";
			snprintf(c.seen + strlen(c.seen),
			    sizeof(c.seen) - strlen(c.seen), " %s ", name);
			line = nl + 1;
			nl = strchr(line, '\n');
			(*lineno)++;
			if (nl == NULL || sscanf(line, "# TYPE %159s %15s",
			    c.family, c.type) != 2 ||
			    strcmp(c.family, name) != 0)
				return "HELP not followed by its TYPE";
			if (strcmp(c.type, "counter") != 0 &&
			    strcmp(c.type, "gauge") != 0 &&
			    strcmp(c.type, "histogram") != 0)
				return "unexpected TYPE";
			if ((strcmp(c.type, "counter") == 0) !=
			    ends_with(name, "_total"))
				return "counter without _total, or _total on "
				    "something else";
			continue;
		}
		if (line[0] == '#')
			return "comment that is neither HELP nor TYPE";
		if ((why = check_sample(&c, line)) != NULL)
			return why;
	}
	return c.open ? "histogram series without _count" : NULL;
}

static void
assert_valid(const char *text)
{
	int lineno;
	const char *why = check_exposition(text, &lineno);

	cr_assert(eq(ptr, (void *)why, NULL), "line %d: %s\n%s", lineno,
	    why != NULL ? why : "", text);
}

/* Records something of every kind, so every family has samples. */
static void
record_everything(void)
{
	metrics_request(METRICS_ROUTE_USERS, METRICS_METHOD_POST, 201, 0.004);
	metrics_request(METRICS_ROUTE_USER, METRICS_METHOD_GET, 304, 0.0002);
	metrics_request(METRICS_ROUTE_OTHER, METRICS_METHOD_OTHER, 418, 0.1);
	metrics_problem("user-exists");
	metrics_problem("precondition-required");
	metrics_problem("registry-unavailable");
	metrics_registry(METRICS_REG_READ, 0.00003);
	metrics_registry(METRICS_REG_WRITE, 0.002);
	metrics_registry(METRICS_REG_COMMIT, 0.0011);
	metrics_lock_wait(0.5);
	metrics_replay();
	metrics_restart(METRICS_ROLE_WORKER);
	metrics_batch(7);
}

/* ---- limits and helpers -------------------------------------------------- */

Test(metrics, limits_have_their_documented_values)
{
	cr_assert(eq(int, METRICS_WORKERS_MAX, 256));
	cr_assert(eq(str, METRICS_CONTENT_TYPE,
	    "text/plain; version=0.0.4; charset=utf-8"));
}

Test(metrics, now_is_a_monotonic_clock_in_seconds)
{
	double t0 = metrics_now(), t1;

	usleep(20000);
	t1 = metrics_now();
	cr_assert(gt(dbl, t0, 0.0));
	cr_assert(ge(dbl, t1 - t0, 0.019));
	cr_assert(lt(dbl, t1 - t0, 5.0));
}

struct method_case {
	char method[16];
	int want;		/* enum metrics_method */
};

ParameterizedTestParameters(metrics, method_of)
{
	static struct method_case cases[] = {
		{ "GET", METRICS_METHOD_GET },
		{ "HEAD", METRICS_METHOD_HEAD },
		{ "POST", METRICS_METHOD_POST },
		{ "PUT", METRICS_METHOD_PUT },
		{ "PATCH", METRICS_METHOD_PATCH },
		{ "DELETE", METRICS_METHOD_DELETE },
		{ "OPTIONS", METRICS_METHOD_OPTIONS },
		{ "get", METRICS_METHOD_OTHER },	/* methods are */
		{ "Post", METRICS_METHOD_OTHER },	/* case-sensitive */
		{ "TRACE", METRICS_METHOD_OTHER },
		{ "GETS", METRICS_METHOD_OTHER },
		{ "GE", METRICS_METHOD_OTHER },
		{ "", METRICS_METHOD_OTHER },
	};

	return cr_make_param_array(struct method_case, cases,
	    sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct method_case *c, metrics, method_of)
{
	cr_assert(eq(int, (int)metrics_method_of(c->method), c->want),
	    "[%s]", c->method);
}

Test(metrics, method_of_null_is_other)
{
	cr_assert(eq(int, (int)metrics_method_of(NULL),
	    (int)METRICS_METHOD_OTHER));
}

struct route_case {
	char base[16];
	char path[48];
	int want;		/* enum metrics_route */
};

ParameterizedTestParameters(metrics, route_of)
{
	static struct route_case cases[] = {
		{ "/", "/users", METRICS_ROUTE_USERS },
		{ "/", "/users/alice", METRICS_ROUTE_USER },
		{ "/", "/users/%41lice", METRICS_ROUTE_USER },
		{ "/", "/users/-bad-name-", METRICS_ROUTE_USER },
		{ "/", "/healthz", METRICS_ROUTE_HEALTHZ },
		{ "/", "/metrics", METRICS_ROUTE_METRICS },
		{ "/api/", "/api/users", METRICS_ROUTE_USERS },
		{ "/api/", "/api/users/bob", METRICS_ROUTE_USER },
		{ "/api/", "/api/healthz", METRICS_ROUTE_HEALTHZ },
		{ "/api/", "/api/metrics", METRICS_ROUTE_METRICS },
		{ "/api/", "/users", METRICS_ROUTE_OTHER },
		{ "/api/", "/api", METRICS_ROUTE_OTHER },
		{ "/", "/", METRICS_ROUTE_OTHER },
		{ "/", "", METRICS_ROUTE_OTHER },
		{ "/", "/users/", METRICS_ROUTE_OTHER },
		{ "/", "/users/a/b", METRICS_ROUTE_OTHER },
		{ "/", "/users/a/", METRICS_ROUTE_OTHER },
		{ "/", "/usersx", METRICS_ROUTE_OTHER },
		{ "/", "/Users", METRICS_ROUTE_OTHER },
		{ "/", "/healthz/", METRICS_ROUTE_OTHER },
		{ "/", "/metrics.txt", METRICS_ROUTE_OTHER },
		{ "/", "//users", METRICS_ROUTE_OTHER },
		{ "/", "users", METRICS_ROUTE_OTHER },
	};

	return cr_make_param_array(struct route_case, cases,
	    sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct route_case *c, metrics, route_of)
{
	cr_assert(eq(int, (int)metrics_route_of(c->base, c->path), c->want),
	    "base [%s] path [%s]", c->base, c->path);
}

Test(metrics, route_of_null_is_other)
{
	cr_assert(eq(int, (int)metrics_route_of(NULL, "/users"),
	    (int)METRICS_ROUTE_OTHER));
	cr_assert(eq(int, (int)metrics_route_of("/", NULL),
	    (int)METRICS_ROUTE_OTHER));
}

/* ---- what is counted ----------------------------------------------------- */

Test(metrics_render, an_empty_exposition_has_every_family)
{
	static const char *const families[] = {
		"userreg_http_requests_total counter",
		"userreg_http_request_duration_seconds histogram",
		"userreg_conflicts_total counter",
		"userreg_registry_unavailable_total counter",
		"userreg_registry_operation_duration_seconds histogram",
		"userreg_registry_lock_wait_seconds histogram",
		"userreg_idempotent_replays_total counter",
		"userreg_process_restarts_total counter",
		"userreg_writer_batch_operations histogram",
		"userreg_requests_in_flight gauge",
		"userreg_users gauge",
		"userreg_registry_revision gauge",
		"userreg_build_info gauge",
		"userreg_metrics_scope gauge",
	};
	char *text = render(), line[128];
	size_t i;

	assert_valid(text);
	for (i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
		snprintf(line, sizeof(line), "# TYPE %s", families[i]);
		cr_assert(has_line(text, line), "no [%s]\n%s", line, text);
	}
	/* Fixed label sets are there from the start, at zero. */
	cr_assert(has_line(text, "userreg_conflicts_total"
	    "{type=\"business-rule-violation\"} 0"));
	cr_assert(has_line(text, "userreg_process_restarts_total"
	    "{role=\"writer\"} 0"));
	cr_assert(has_line(text, "userreg_http_request_duration_seconds_count"
	    "{route=\"metrics\"} 0"));
	cr_assert(has_line(text, "userreg_registry_operation_duration_"
	    "seconds_count{operation=\"commit\"} 0"));
	free(text);
}

Test(metrics_render, counts_requests_by_route_method_and_code)
{
	char *text;

	metrics_request(METRICS_ROUTE_USER, METRICS_METHOD_GET, 200, 0.0003);
	metrics_request(METRICS_ROUTE_USER, METRICS_METHOD_GET, 200, 0.0004);
	metrics_request(METRICS_ROUTE_USERS, METRICS_METHOD_POST, 409, 0.002);
	text = render();
	assert_valid(text);
	cr_assert(has_line(text, "userreg_http_requests_total{route=\"user\","
	    "method=\"GET\",code=\"200\"} 2"), "%s", text);
	cr_assert(has_line(text, "userreg_http_requests_total{route=\"users\","
	    "method=\"POST\",code=\"409\"} 1"), "%s", text);
	/* A combination never seen has no series at all. */
	cr_assert(eq(i64, value_of(text, "userreg_http_requests_total"
	    "{route=\"user\",method=\"GET\",code=\"404\"}"), -1));
	cr_assert(has_line(text, "userreg_http_request_duration_seconds_count"
	    "{route=\"user\"} 2"));
	cr_assert(has_line(text, "userreg_http_request_duration_seconds_count"
	    "{route=\"users\"} 1"));
	free(text);
}

struct status_case {
	int status;
	char label[8];
};

ParameterizedTestParameters(metrics_render, status_label)
{
	static struct status_case cases[] = {
		{ 200, "200" }, { 201, "201" }, { 204, "204" }, { 304, "304" },
		{ 400, "400" }, { 401, "401" }, { 403, "403" }, { 404, "404" },
		{ 405, "405" }, { 409, "409" }, { 412, "412" }, { 413, "413" },
		{ 415, "415" }, { 422, "422" }, { 428, "428" }, { 500, "500" },
		{ 503, "503" },
		{ 302, "other" }, { 414, "other" }, { 418, "other" },
		{ 431, "other" }, { 502, "other" }, { 0, "other" },
		{ -200, "other" }, { 2000, "other" },
	};

	return cr_make_param_array(struct status_case, cases,
	    sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct status_case *c, metrics_render, status_label)
{
	char *text, line[160];

	metrics_request(METRICS_ROUTE_USERS, METRICS_METHOD_GET, c->status,
	    0.001);
	text = render();
	snprintf(line, sizeof(line), "userreg_http_requests_total"
	    "{route=\"users\",method=\"GET\",code=\"%s\"} 1", c->label);
	cr_assert(has_line(text, line), "status %d: no [%s]\n%s", c->status,
	    line, text);
	free(text);
}

Test(metrics_render, out_of_range_labels_count_as_other)
{
	char *text;

	metrics_request((enum metrics_route)99, (enum metrics_method)-1, 200,
	    0.001);
	metrics_registry((enum metrics_reg_op)7, 1.0);
	metrics_restart(METRICS_ROLE_MASTER);
	metrics_restart((enum metrics_role)9);
	text = render();
	assert_valid(text);
	cr_assert(has_line(text, "userreg_http_requests_total{route=\"other\","
	    "method=\"other\",code=\"200\"} 1"), "%s", text);
	cr_assert(has_line(text, "userreg_process_restarts_total"
	    "{role=\"worker\"} 0"));
	cr_assert(has_line(text, "userreg_process_restarts_total"
	    "{role=\"writer\"} 0"));
	free(text);
}

Test(metrics_render, histogram_buckets_are_cumulative_with_sum_and_count)
{
	const char *h = "userreg_http_request_duration_seconds";
	char *text, series[160];
	static const struct {
		const char *le;
		long long want;
	} buckets[] = {
		{ "2.5e-05", 1 }, { "5e-05", 1 }, { "0.0001", 1 },
		{ "0.00025", 1 }, { "0.0005", 2 }, { "0.001", 3 },
		{ "0.0025", 3 }, { "0.005", 4 }, { "0.25", 4 }, { "0.5", 5 },
		{ "10", 5 }, { "+Inf", 6 },
	};
	size_t i;

	/* 0.001 is on a bound: le means "less than or equal". */
	metrics_request(METRICS_ROUTE_USERS, METRICS_METHOD_GET, 200, 0.00002);
	metrics_request(METRICS_ROUTE_USERS, METRICS_METHOD_GET, 200, 0.0003);
	metrics_request(METRICS_ROUTE_USERS, METRICS_METHOD_GET, 200, 0.001);
	metrics_request(METRICS_ROUTE_USERS, METRICS_METHOD_GET, 200, 0.003);
	metrics_request(METRICS_ROUTE_USERS, METRICS_METHOD_GET, 200, 0.3);
	metrics_request(METRICS_ROUTE_USERS, METRICS_METHOD_GET, 200, 20.0);
	text = render();
	assert_valid(text);
	for (i = 0; i < sizeof(buckets) / sizeof(buckets[0]); i++) {
		snprintf(series, sizeof(series), "%s_bucket{route=\"users\","
		    "le=\"%s\"}", h, buckets[i].le);
		cr_assert(eq(i64, value_of(text, series), buckets[i].want),
		    "%s\n%s", series, text);
	}
	cr_assert(has_line(text, "userreg_http_request_duration_seconds_sum"
	    "{route=\"users\"} 20.304320000"), "%s", text);
	cr_assert(has_line(text, "userreg_http_request_duration_seconds_count"
	    "{route=\"users\"} 6"), "%s", text);
	/* Another route's histogram is untouched. */
	cr_assert(has_line(text, "userreg_http_request_duration_seconds_bucket"
	    "{route=\"user\",le=\"+Inf\"} 0"));
	free(text);
}

Test(metrics_render, negative_and_nan_durations_count_as_zero)
{
	char *text;

	metrics_lock_wait(-1.0);
	metrics_lock_wait(NAN);
	metrics_lock_wait(1e300);	/* clamped, never overflows the sum */
	text = render();
	assert_valid(text);
	cr_assert(has_line(text, "userreg_registry_lock_wait_seconds_bucket"
	    "{le=\"2.5e-05\"} 2"), "%s", text);
	cr_assert(has_line(text, "userreg_registry_lock_wait_seconds_bucket"
	    "{le=\"+Inf\"} 3"));
	cr_assert(has_line(text, "userreg_registry_lock_wait_seconds_sum "
	    "1000000.000000000"), "%s", text);
	cr_assert(has_line(text, "userreg_registry_lock_wait_seconds_count 3"));
	free(text);
}

Test(metrics_render, registry_operations_and_lock_waits_are_observed)
{
	char *text;

	metrics_registry(METRICS_REG_READ, 0.00004);
	metrics_registry(METRICS_REG_READ, 0.00006);
	metrics_registry(METRICS_REG_WRITE, 0.0021);
	metrics_registry(METRICS_REG_COMMIT, 0.0009);
	metrics_lock_wait(0.25);
	text = render();
	assert_valid(text);
	cr_assert(has_line(text, "userreg_registry_operation_duration_seconds_"
	    "bucket{operation=\"read\",le=\"5e-05\"} 1"), "%s", text);
	cr_assert(has_line(text, "userreg_registry_operation_duration_seconds_"
	    "count{operation=\"read\"} 2"));
	cr_assert(has_line(text, "userreg_registry_operation_duration_seconds_"
	    "sum{operation=\"read\"} 0.000100000"));
	cr_assert(has_line(text, "userreg_registry_operation_duration_seconds_"
	    "count{operation=\"write\"} 1"));
	cr_assert(has_line(text, "userreg_registry_operation_duration_seconds_"
	    "bucket{operation=\"commit\",le=\"0.001\"} 1"));
	cr_assert(has_line(text, "userreg_registry_lock_wait_seconds_bucket"
	    "{le=\"0.1\"} 0"));
	cr_assert(has_line(text, "userreg_registry_lock_wait_seconds_bucket"
	    "{le=\"0.25\"} 1"));
	free(text);
}

Test(metrics_render, conflicts_are_counted_by_problem_type)
{
	static const char *const slugs[] = {
		"user-exists", "email-taken", "stale-version",
		"business-rule-violation", "precondition-failed",
		"precondition-required"
	};
	char *text, line[160];
	size_t i, j;

	for (i = 0; i < 6; i++)
		for (j = 0; j <= i; j++)
			metrics_problem(slugs[i]);
	/* Not conflicts: counted only by their status code, or elsewhere. */
	metrics_problem("not-found");
	metrics_problem("idempotency-key-in-use");
	metrics_problem("user-exists ");
	metrics_problem("");
	metrics_problem(NULL);
	metrics_problem("registry-unavailable");
	metrics_problem("registry-unavailable");
	text = render();
	assert_valid(text);
	for (i = 0; i < 6; i++) {
		snprintf(line, sizeof(line), "userreg_conflicts_total"
		    "{type=\"%s\"} %zu", slugs[i], i + 1);
		cr_assert(has_line(text, line), "no [%s]\n%s", line, text);
	}
	cr_assert(eq(i64, value_of(text, "userreg_conflicts_total"
	    "{type=\"not-found\"}"), -1));
	cr_assert(has_line(text, "userreg_registry_unavailable_total 2"));
	free(text);
}

Test(metrics_render, replays_restarts_and_batches_are_counted)
{
	char *text;

	metrics_replay();
	metrics_replay();
	metrics_restart(METRICS_ROLE_WORKER);
	metrics_restart(METRICS_ROLE_WORKER);
	metrics_restart(METRICS_ROLE_WORKER);
	metrics_restart(METRICS_ROLE_WRITER);
	metrics_batch(1);
	metrics_batch(2);
	metrics_batch(3);
	metrics_batch(300);
	text = render();
	assert_valid(text);
	cr_assert(has_line(text, "userreg_idempotent_replays_total 2"));
	cr_assert(has_line(text, "userreg_process_restarts_total"
	    "{role=\"worker\"} 3"));
	cr_assert(has_line(text, "userreg_process_restarts_total"
	    "{role=\"writer\"} 1"));
	cr_assert(has_line(text, "userreg_writer_batch_operations_bucket"
	    "{le=\"1\"} 1"), "%s", text);
	cr_assert(has_line(text, "userreg_writer_batch_operations_bucket"
	    "{le=\"2\"} 2"));
	cr_assert(has_line(text, "userreg_writer_batch_operations_bucket"
	    "{le=\"4\"} 3"));
	cr_assert(has_line(text, "userreg_writer_batch_operations_bucket"
	    "{le=\"256\"} 3"));
	cr_assert(has_line(text, "userreg_writer_batch_operations_bucket"
	    "{le=\"+Inf\"} 4"));
	cr_assert(has_line(text, "userreg_writer_batch_operations_sum 306"));
	cr_assert(has_line(text, "userreg_writer_batch_operations_count 4"));
	free(text);
}

Test(metrics_render, gauges_come_from_the_caller)
{
	struct metrics_gauges g = { 0, 0, "0.9" };
	char *text = render();

	cr_assert(has_line(text, "userreg_users 42"));
	cr_assert(has_line(text, "userreg_registry_revision 1841"));
	cr_assert(has_line(text, "userreg_build_info{version=\"1.2.3\"} 1"));
	free(text);
	text = metrics_render(&g, NULL);
	cr_assert(not(eq(ptr, text, NULL)));
	cr_assert(has_line(text, "userreg_users 0"));
	cr_assert(has_line(text, "userreg_registry_revision 0"));
	free(text);
}

Test(metrics_render, unknown_gauges_are_left_out)
{
	struct metrics_gauges g = { -1, -1, NULL };
	char *text = metrics_render(&g, NULL);

	cr_assert(not(eq(ptr, text, NULL)));
	assert_valid(text);
	cr_assert(eq(ptr, strstr(text, "userreg_users"), NULL), "%s", text);
	cr_assert(eq(ptr, strstr(text, "userreg_registry_revision"), NULL));
	cr_assert(has_line(text, "userreg_build_info{version=\"unknown\"} 1"));
	free(text);
	text = metrics_render(NULL, NULL);
	cr_assert(not(eq(ptr, text, NULL)));
	assert_valid(text);
	cr_assert(eq(ptr, strstr(text, "userreg_users"), NULL));
	cr_assert(has_line(text, "userreg_build_info{version=\"unknown\"} 1"));
	free(text);
}

Test(metrics_render, label_values_are_escaped)
{
	struct metrics_gauges g = { 1, 1, "1.0\"rc\\2\nx" };
	char *text = metrics_render(&g, NULL);

	cr_assert(not(eq(ptr, text, NULL)));
	assert_valid(text);
	cr_assert(has_line(text, "userreg_build_info"
	    "{version=\"1.0\\\"rc\\\\2\\nx\"} 1"), "%s", text);
	free(text);
}

Test(metrics_render, the_checker_refuses_broken_expositions)
{
	/* The checker above must be able to fail, or it proves nothing. */
	static const char *const bad[] = {
		"x_total 1\n",
		"# HELP x_total t\nx_total 1\n",
		"# HELP x t\n# TYPE x counter\nx 1\n",
		"# HELP x_total t\n# TYPE x_total counter\nx_total 1",
		"# HELP x_total t\n# TYPE x_total counter\ny_total 1\n",
		"# HELP x_total t\n# TYPE x_total counter\n"
		    "x_total{a=\"\\t\"} 1\n",
		"# HELP x_total t\n# TYPE x_total counter\n"
		    "# HELP x_total t\n# TYPE x_total counter\n",
		"# HELP h t\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\n"
		    "h_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
		"# HELP h t\n# TYPE h histogram\nh_bucket{le=\"2\"} 1\n"
		    "h_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\n"
		    "h_sum 1\nh_count 1\n",
		"# HELP h t\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\n"
		    "h_sum 1\nh_count 1\n",
		"# HELP h t\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\n"
		    "h_sum 1\nh_count 1\n",
		"# HELP g t\n# TYPE g gauge\ng 1 1700000000\n",
	};
	const char *good = "# HELP h t\n# TYPE h histogram\n"
	    "h_bucket{a=\"x\",le=\"1\"} 1\nh_bucket{a=\"x\",le=\"+Inf\"} 2\n"
	    "h_sum{a=\"x\"} 3.5\nh_count{a=\"x\"} 2\n";
	int lineno;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert(not(eq(ptr, (void *)check_exposition(bad[i],
		    &lineno), NULL)), "accepted:\n%s", bad[i]);
	assert_valid(good);
}

/* ---- the pool: one slot per process, summed ------------------------------ */

/* Forks a child that runs fn(arg) and exits with its result. */
static pid_t
spawn(int (*fn)(int), int arg)
{
	pid_t pid;

	fflush(NULL);
	pid = fork();
	cr_assert(ge(int, pid, 0));
	if (pid == 0)
		_exit(fn(arg));
	return pid;
}

static void
wait_ok(pid_t pid)
{
	int status;

	cr_assert(eq(int, waitpid(pid, &status, 0), pid));
	cr_assert(eq(int, WIFEXITED(status), 1), "child %ld: status %d",
	    (long)pid, status);
	cr_assert(eq(int, WEXITSTATUS(status), 0), "child %ld failed",
	    (long)pid);
}

/* Worker i: i + 1 creations and one conflict. */
static int
worker_job(int i)
{
	int n;

	if (metrics_attach(METRICS_ROLE_WORKER, i) != 0)
		return 1;
	for (n = 0; n <= i; n++)
		metrics_request(METRICS_ROUTE_USERS, METRICS_METHOD_POST, 201,
		    0.003);
	metrics_problem("user-exists");
	return 0;
}

static int
writer_job(int ops)
{
	if (metrics_attach(METRICS_ROLE_WRITER, 0) != 0)
		return 1;
	metrics_batch((size_t)ops);
	metrics_registry(METRICS_REG_COMMIT, 0.0012);
	return 0;
}

/* Worker i writes its rendering of the pool to pipe_fd. */
static int pipe_fd = -1;

static int
render_job(int i)
{
	char *text;
	size_t len, off = 0;
	ssize_t n;

	if (metrics_attach(METRICS_ROLE_WORKER, i) != 0 ||
	    (text = metrics_render(&gauges, &len)) == NULL)
		return 1;
	while (off < len) {
		if ((n = write(pipe_fd, text + off, len - off)) <= 0)
			return 1;
		off += (size_t)n;
	}
	free(text);
	return 0;
}

static char *
read_all(int fd)
{
	size_t len = 0, cap = 65536;
	char *s = malloc(cap);
	ssize_t n;

	cr_assert(not(eq(ptr, s, NULL)));
	while ((n = read(fd, s + len, cap - len - 1)) > 0) {
		len += (size_t)n;
		if (cap - len < 2) {
			cap *= 2;
			s = realloc(s, cap);
			cr_assert(not(eq(ptr, s, NULL)));
		}
	}
	s[len] = '\0';
	return s;
}

Test(metrics_pool, init_refuses_a_worker_count_out_of_range)
{
	errno = 0;
	cr_assert(eq(int, metrics_init_pool(0), -1));
	cr_assert(eq(int, errno, EINVAL));
	cr_assert(eq(int, metrics_init_pool(-4), -1));
	cr_assert(eq(int, metrics_init_pool(METRICS_WORKERS_MAX + 1), -1));
	cr_assert(eq(int, errno, EINVAL));
	cr_assert(eq(int, metrics_init_pool(METRICS_WORKERS_MAX), 0));
	cr_assert(eq(int, metrics_init_pool(4), -1));
	cr_assert(eq(int, errno, EBUSY));
}

Test(metrics_pool, size_is_whole_cache_lines_per_slot)
{
	size_t slot = (metrics_pool_size(5) - metrics_pool_size(4));

	cr_assert(eq(sz, metrics_pool_size(0), 0));
	cr_assert(eq(sz, metrics_pool_size(METRICS_WORKERS_MAX + 1), 0));
	cr_assert(eq(sz, slot % 64, 0));
	cr_assert(le(sz, slot, 8192), "a slot takes %zu bytes", slot);
	/* Workers, the writer and the master. */
	cr_assert(eq(sz, metrics_pool_size(4), 6 * slot));
	cr_assert(eq(sz, metrics_pool_size(METRICS_WORKERS_MAX),
	    (METRICS_WORKERS_MAX + 2) * slot));
	cr_log_info("slot %zu bytes; 4 workers %zu, %d workers %zu", slot,
	    metrics_pool_size(4), METRICS_WORKERS_MAX,
	    metrics_pool_size(METRICS_WORKERS_MAX));
}

Test(metrics_pool, attach_refuses_a_slot_out_of_range)
{
	cr_assert(eq(int, metrics_attach(METRICS_ROLE_WORKER, 0), -1),
	    "attached without a pool");
	cr_assert(eq(int, metrics_init_pool(2), 0));
	cr_assert(eq(int, metrics_attach(METRICS_ROLE_WORKER, 2), -1));
	cr_assert(eq(int, metrics_attach(METRICS_ROLE_WORKER, -1), -1));
	cr_assert(eq(int, metrics_attach((enum metrics_role)7, 0), -1));
	cr_assert(eq(int, metrics_attach(METRICS_ROLE_WORKER, 1), 0));
	cr_assert(eq(int, metrics_attach(METRICS_ROLE_WRITER, 0), 0));
	cr_assert(eq(int, metrics_attach(METRICS_ROLE_MASTER, 0), 0));
}

Test(metrics_pool, sums_the_slots_of_every_process)
{
	pid_t pids[5];
	char *text, *seen;
	int i, fds[2];

	cr_assert(eq(int, metrics_init_pool(4), 0));
	for (i = 0; i < 4; i++)
		pids[i] = spawn(worker_job, i);
	pids[4] = spawn(writer_job, 5);
	for (i = 0; i < 5; i++)
		wait_ok(pids[i]);
	metrics_restart(METRICS_ROLE_WORKER);	/* the master's own slot */

	text = render();
	assert_valid(text);
	cr_assert(has_line(text, "userreg_http_requests_total{route=\"users\","
	    "method=\"POST\",code=\"201\"} 10"), "%s", text);
	cr_assert(has_line(text, "userreg_http_request_duration_seconds_count"
	    "{route=\"users\"} 10"));
	cr_assert(has_line(text, "userreg_http_request_duration_seconds_sum"
	    "{route=\"users\"} 0.030000000"), "%s", text);
	cr_assert(has_line(text, "userreg_conflicts_total"
	    "{type=\"user-exists\"} 4"));
	cr_assert(has_line(text, "userreg_writer_batch_operations_count 1"));
	cr_assert(has_line(text, "userreg_writer_batch_operations_sum 5"));
	cr_assert(has_line(text, "userreg_registry_operation_duration_seconds_"
	    "count{operation=\"commit\"} 1"));
	cr_assert(has_line(text, "userreg_process_restarts_total"
	    "{role=\"worker\"} 1"));
	cr_assert(has_line(text, "userreg_metrics_scope{scope=\"pool\"} 1"));
	cr_assert(has_line(text, "userreg_pool_workers 4"));

	/* Any worker serves the same totals, not its own share. */
	cr_assert(eq(int, pipe(fds), 0));
	pipe_fd = fds[1];
	pids[0] = spawn(render_job, 2);
	close(fds[1]);
	seen = read_all(fds[0]);
	close(fds[0]);
	wait_ok(pids[0]);
	cr_assert(eq(str, seen, text));
	free(seen);
	free(text);
}

/* A worker in slot 0 that answers n requests. */
static int
requests_job(int n)
{
	if (metrics_attach(METRICS_ROLE_WORKER, 0) != 0)
		return 1;
	while (n-- > 0)
		metrics_request(METRICS_ROUTE_USER, METRICS_METHOD_GET, 200,
		    0.0001);
	return 0;
}

Test(metrics_pool, a_restarted_process_continues_its_slot)
{
	const char *series = "userreg_http_requests_total{route=\"user\","
	    "method=\"GET\",code=\"200\"}";
	char *text;

	cr_assert(eq(int, metrics_init_pool(2), 0));
	wait_ok(spawn(requests_job, 3));
	text = render();
	cr_assert(eq(i64, value_of(text, series), 3), "%s", text);
	free(text);
	/* The master starts another worker in the dead one's slot. */
	wait_ok(spawn(requests_job, 2));
	text = render();
	cr_assert(eq(i64, value_of(text, series), 5), "%s", text);
	cr_assert(has_line(text, "userreg_http_request_duration_seconds_count"
	    "{route=\"user\"} 5"));
	free(text);
}

/* Worker i leaves i + 1 requests in flight. */
static int
in_flight_job(int i)
{
	if (metrics_attach(METRICS_ROLE_WORKER, i) != 0)
		return 1;
	metrics_in_flight((unsigned)i + 1);
	return 0;
}

/* A worker started again in slot i, before its first request. */
static int
restarted_idle_job(int i)
{
	if (metrics_attach(METRICS_ROLE_WORKER, i) != 0)
		return 1;
	metrics_in_flight(0);
	return 0;
}

Test(metrics_pool, requests_in_flight_is_the_sum_of_the_workers_gauges)
{
	char *text;
	int i;

	cr_assert(eq(int, metrics_init_pool(3), 0));
	cr_assert(eq(ulong, metrics_pool_in_flight(), 0));
	for (i = 0; i < 3; i++)
		wait_ok(spawn(in_flight_job, i));
	cr_assert(eq(ulong, metrics_pool_in_flight(), 6));
	text = render();
	cr_assert(has_line(text, "userreg_requests_in_flight 6"), "%s", text);
	free(text);
	/* A gauge, unlike the counters, starts again from the new count. */
	wait_ok(spawn(restarted_idle_job, 2));
	cr_assert(eq(ulong, metrics_pool_in_flight(), 3));
	text = render();
	cr_assert(has_line(text, "userreg_requests_in_flight 3"), "%s", text);
	free(text);
}

Test(metrics_scope, without_a_pool_requests_in_flight_are_this_process_s)
{
	metrics_in_flight(2);
	cr_assert(eq(ulong, metrics_pool_in_flight(), 2));
	metrics_in_flight(0);
	cr_assert(eq(ulong, metrics_pool_in_flight(), 0));
}

/* Worker i answers LOAD_REQUESTS requests as fast as it can. */
#define LOAD_REQUESTS 200000

static int
load_job(int i)
{
	int n;

	if (metrics_attach(METRICS_ROLE_WORKER, i) != 0)
		return 1;
	for (n = 0; n < LOAD_REQUESTS; n++) {
		metrics_request(METRICS_ROUTE_USER, METRICS_METHOD_GET, 200,
		    0.0002);
		metrics_registry(METRICS_REG_READ, 0.00003);
	}
	return 0;
}

Test(metrics_pool, concurrent_writers_lose_nothing_readers_see_no_dip)
{
	const char *series = "userreg_http_requests_total{route=\"user\","
	    "method=\"GET\",code=\"200\"}";
	pid_t pids[4];
	long long v, last = 0;
	int i, running = 4, status, renders = 0;
	char *text;

	cr_assert(eq(int, metrics_init_pool(4), 0));
	for (i = 0; i < 4; i++)
		pids[i] = spawn(load_job, i);
	while (running > 0) {
		text = render();
		v = value_of(text, series);
		free(text);
		if (v < 0)
			v = 0;		/* no series before the first request */
		cr_assert(ge(i64, v, last), "total went back from %lld to %lld",
		    last, v);
		cr_assert(le(i64, v, 4LL * LOAD_REQUESTS));
		last = v;
		renders++;
		for (i = 0; i < 4; i++)
			if (pids[i] > 0 &&
			    waitpid(pids[i], &status, WNOHANG) == pids[i]) {
				cr_assert(eq(int, WIFEXITED(status), 1));
				cr_assert(eq(int, WEXITSTATUS(status), 0));
				pids[i] = 0;
				running--;
			}
	}
	text = render();
	cr_assert(eq(i64, value_of(text, series), 4LL * LOAD_REQUESTS));
	cr_assert(eq(i64, value_of(text, "userreg_registry_operation_duration_"
	    "seconds_count{operation=\"read\"}"), 4LL * LOAD_REQUESTS));
	cr_assert(eq(i64, value_of(text, "userreg_registry_operation_duration_"
	    "seconds_bucket{operation=\"read\",le=\"2.5e-05\"}"), 0));
	cr_assert(eq(i64, value_of(text, "userreg_registry_operation_duration_"
	    "seconds_bucket{operation=\"read\",le=\"5e-05\"}"),
	    4LL * LOAD_REQUESTS));
	free(text);
	cr_log_info("%d renders during the load", renders);
}

/* A child that records without attaching, then checks the pool's view. */
static int
unattached_job(int unused)
{
	char *text;
	int rc;

	(void)unused;
	metrics_request(METRICS_ROUTE_HEALTHZ, METRICS_METHOD_GET, 200, 0.001);
	if ((text = metrics_render(NULL, NULL)) == NULL)
		return 1;
	/* Its own request is in no slot: the pool has only the master's. */
	rc = value_of(text, "userreg_http_requests_total{route=\"healthz\","
	    "method=\"GET\",code=\"200\"}") == 1 ? 0 : 2;
	free(text);
	return rc;
}

Test(metrics_pool, a_child_never_writes_its_parents_slot_unattached)
{
	char *text;

	cr_assert(eq(int, metrics_init_pool(1), 0));
	metrics_request(METRICS_ROUTE_HEALTHZ, METRICS_METHOD_GET, 200, 0.001);
	wait_ok(spawn(unattached_job, 0));
	text = render();
	cr_assert(eq(i64, value_of(text, "userreg_http_requests_total"
	    "{route=\"healthz\",method=\"GET\",code=\"200\"}"), 1), "%s", text);
	free(text);
}

/* ---- without a pool ----------------------------------------------------- */

static int
local_job(int n)
{
	while (n-- > 0)
		metrics_request(METRICS_ROUTE_USERS, METRICS_METHOD_GET, 200,
		    0.001);
	return 0;
}

Test(metrics_scope, without_a_pool_counts_in_this_process_and_says_so)
{
	const char *series = "userreg_http_requests_total{route=\"users\","
	    "method=\"GET\",code=\"200\"}";
	char *text;

	metrics_request(METRICS_ROUTE_USERS, METRICS_METHOD_GET, 200, 0.001);
	metrics_request(METRICS_ROUTE_USERS, METRICS_METHOD_GET, 200, 0.001);
	cr_assert(eq(int, metrics_attach(METRICS_ROLE_WORKER, 0), -1));
	/* Another process (a second spawn-fcgi worker) counts for itself. */
	wait_ok(spawn(local_job, 5));
	text = render();
	assert_valid(text);
	cr_assert(eq(i64, value_of(text, series), 2), "%s", text);
	cr_assert(has_line(text, "userreg_metrics_scope{scope=\"process\"} 1"));
	cr_assert(eq(ptr, strstr(text, "scope=\"pool\""), NULL));
	cr_assert(eq(ptr, strstr(text, "userreg_pool_workers"), NULL));
	free(text);
}

Test(metrics_scope, a_pool_says_so)
{
	char *text;

	cr_assert(eq(int, metrics_init_pool(3), 0));
	text = render();
	assert_valid(text);
	cr_assert(has_line(text, "userreg_metrics_scope{scope=\"pool\"} 1"));
	cr_assert(has_line(text, "userreg_pool_workers 3"));
	cr_assert(eq(ptr, strstr(text, "scope=\"process\""), NULL));
	free(text);
}

/* ---- promtool ----------------------------------------------------------- */

static char tmpdir[64];

static void
promtool_setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_metrics.XXXXXX");
	cr_assert(not(eq(ptr, mkdtemp(tmpdir), NULL)));
}

static void
promtool_teardown(void)
{
	support_remove_dir(tmpdir);
}

TestSuite(metrics_promtool, .init = promtool_setup,
    .fini = promtool_teardown);

/*
 * Runs `promtool check metrics` (Debian package prometheus) on text;
 * returns its exit status and leaves its output in out. Skips the test
 * when promtool is not installed.
 */
static int
promtool_check(const char *text, char *out, size_t outsize)
{
	char in[128], res[128], cmd[512];
	FILE *f;
	size_t n;
	int status;

	const char *preload = getenv("LD_PRELOAD");

	if (system("command -v promtool >/dev/null 2>&1") != 0)
		cr_skip_test("promtool is not installed (apt-get install "
		    "prometheus)");
	/* Under valgrind --trace-children, promtool (Go) would run in it. */
	if (preload != NULL && strstr(preload, "vgpreload") != NULL)
		cr_skip_test("promtool cannot run under valgrind");
	snprintf(in, sizeof(in), "%s/metrics.txt", tmpdir);
	snprintf(res, sizeof(res), "%s/promtool.out", tmpdir);
	cr_assert(not(eq(ptr, f = fopen(in, "w"), NULL)));
	cr_assert(eq(sz, fwrite(text, 1, strlen(text), f), strlen(text)));
	cr_assert(eq(int, fclose(f), 0));
	snprintf(cmd, sizeof(cmd), "promtool check metrics < %s > %s 2>&1",
	    in, res);
	status = system(cmd);
	cr_assert(not(eq(ptr, f = fopen(res, "r"), NULL)));
	n = fread(out, 1, outsize - 1, f);
	out[n] = '\0';
	fclose(f);
	cr_assert(eq(int, WIFEXITED(status), 1), "promtool did not run");
	return WEXITSTATUS(status);
}

Test(metrics_promtool, accepts_the_rendered_exposition)
{
	struct metrics_gauges g = { 7, 99, "1.0\"rc\\2\nx" };
	char *text, out[4096];
	int rc;

	cr_assert(eq(int, metrics_init_pool(2), 0));
	record_everything();
	text = metrics_render(&g, NULL);
	cr_assert(not(eq(ptr, text, NULL)));
	rc = promtool_check(text, out, sizeof(out));
	free(text);
	cr_assert(eq(int, rc, 0), "promtool: %s", out);
}

Test(metrics_promtool, accepts_the_process_scope_exposition)
{
	char *text, out[4096];
	int rc;

	record_everything();
	text = metrics_render(NULL, NULL);
	cr_assert(not(eq(ptr, text, NULL)));
	rc = promtool_check(text, out, sizeof(out));
	free(text);
	cr_assert(eq(int, rc, 0), "promtool: %s", out);
}

Test(metrics_promtool, refuses_a_counter_named_against_the_conventions)
{
	/* The harness must see promtool fail, or a pass means nothing. */
	char out[4096];

	cr_assert(not(eq(int, promtool_check("# HELP userreg_requests x\n"
	    "# TYPE userreg_requests counter\nuserreg_requests 1\n", out,
	    sizeof(out)), 0)), "promtool accepted it: %s", out);
	cr_assert(not(eq(int, promtool_check("userreg_x{a=\"1} 1\n", out,
	    sizeof(out)), 0)), "promtool accepted it: %s", out);
}
