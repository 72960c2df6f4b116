/* test_fcgi.c: FastCGI records in and out of one connection. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <criterion/parameterized.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fcgi.h"

enum {
	BEGIN = 1, ABORT, END, PARAMS, STDIN, STDOUT, STDERR, DATA,
	GET_VALUES, GET_VALUES_RESULT, UNKNOWN_TYPE
};

/* A byte stream being built: what a front server sends. */
struct stream {
	unsigned char b[256 * 1024];
	size_t len;
};

static void
put(struct stream *s, const void *p, size_t n)
{
	cr_assert(s->len + n <= sizeof(s->b));
	if (n > 0)	/* an empty record's content may be NULL */
		memcpy(s->b + s->len, p, n);
	s->len += n;
}

/* A record: version, type, id, content, padding of pad zero bytes. */
static void
record_v(struct stream *s, unsigned version, unsigned type, unsigned id,
    const void *content, size_t len, size_t pad)
{
	unsigned char h[8] = { (unsigned char)version, (unsigned char)type,
		(unsigned char)(id >> 8), (unsigned char)id,
		(unsigned char)(len >> 8), (unsigned char)len,
		(unsigned char)pad, 0 };
	static const unsigned char zeros[256];

	put(s, h, sizeof(h));
	put(s, content, len);
	put(s, zeros, pad);
}

static void
record(struct stream *s, unsigned type, unsigned id, const void *content,
    size_t len, size_t pad)
{
	record_v(s, 1, type, id, content, len, pad);
}

static void
begin(struct stream *s, unsigned id, unsigned role, int keep)
{
	unsigned char b[8] = { (unsigned char)(role >> 8), (unsigned char)role,
		(unsigned char)(keep ? 1 : 0) };

	record(s, BEGIN, id, b, sizeof(b), 0);
}

/* Appends one length of a name-value pair, in four bytes when long4. */
static void
pair_len(unsigned char **p, size_t n, int long4)
{
	if (!long4 && n < 128) {
		*(*p)++ = (unsigned char)n;
		return;
	}
	*(*p)++ = (unsigned char)(0x80 | n >> 24);
	*(*p)++ = (unsigned char)(n >> 16);
	*(*p)++ = (unsigned char)(n >> 8);
	*(*p)++ = (unsigned char)n;
}

/* A name-value pair into buf; returns its length. */
static size_t
pair(unsigned char *buf, const char *name, size_t nlen, const char *value,
    size_t vlen, int long4)
{
	unsigned char *p = buf;

	pair_len(&p, nlen, long4);
	pair_len(&p, vlen, long4);
	memcpy(p, name, nlen);
	memcpy(p + nlen, value, vlen);
	return (size_t)(p - buf) + nlen + vlen;
}

static void
param(struct stream *s, unsigned id, const char *name, const char *value)
{
	unsigned char buf[1024];
	size_t n = pair(buf, name, strlen(name), value, strlen(value), 0);

	record(s, PARAMS, id, buf, n, 0);
}

/* A whole GET-like request: begin, params, their end, input, its end. */
static void
request(struct stream *s, unsigned id, int keep, const char *body)
{
	begin(s, id, 1, keep);
	param(s, id, "REQUEST_METHOD", "POST");
	param(s, id, "REQUEST_URI", "/users");
	record(s, PARAMS, id, NULL, 0, 0);
	if (body[0] != '\0')
		record(s, STDIN, id, body, strlen(body), 3);
	record(s, STDIN, id, NULL, 0, 0);
}

static int sv[2];
static struct fcgi_conn *conn;

static void
setup(void)
{
	cr_assert(eq(int, socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0));
	cr_assert(not(eq(ptr, conn = fcgi_conn_new(), NULL)));
}

static void
teardown(void)
{
	fcgi_conn_free(conn);
	if (sv[1] >= 0)
		close(sv[1]);
}

TestSuite(fcgi, .init = setup, .fini = teardown);

static void
send_stream(const struct stream *s)
{
	cr_assert(eq(sz, (size_t)write(sv[1], s->b, s->len), s->len));
}

/* What the responder sent, until it closed or stopped for 100 ms. */
static size_t
receive(unsigned char *buf, size_t cap, int *closed)
{
	struct pollfd p = { sv[1], POLLIN, 0 };
	size_t got = 0;
	ssize_t n;

	*closed = 0;
	while (got < cap && poll(&p, 1, 100) == 1) {
		if ((n = read(sv[1], buf + got, cap - got)) <= 0) {
			*closed = 1;
			break;
		}
		got += (size_t)n;
	}
	return got;
}

/* One record of what the responder sent, at *at. */
struct rec {
	unsigned type, id;
	const unsigned char *content;
	size_t len, pad;
};

static struct rec
next_rec(const unsigned char *buf, size_t n, size_t *at)
{
	struct rec r;

	cr_assert(n - *at >= 8, "a record header at %zu of %zu", *at, n);
	cr_assert(eq(u8, buf[*at], 1));
	r.type = buf[*at + 1];
	r.id = (unsigned)buf[*at + 2] << 8 | buf[*at + 3];
	r.len = (size_t)buf[*at + 4] << 8 | buf[*at + 5];
	r.pad = buf[*at + 6];
	r.content = buf + *at + 8;
	cr_assert(n - *at - 8 >= r.len + r.pad);
	*at += 8 + r.len + r.pad;
	return r;
}

static void
assert_end_request(const struct rec *r, unsigned id, unsigned status)
{
	cr_assert(eq(u32, r->type, END));
	cr_assert(eq(u32, r->id, id));
	cr_assert(eq(sz, r->len, 8));
	cr_assert(eq(u8, r->content[0] | r->content[1] | r->content[2] |
	    r->content[3], 0));
	cr_assert(eq(u8, r->content[4], status));
}

static void
assert_params(const char *const *want, size_t n)
{
	char **got = fcgi_params(conn);
	size_t i;

	for (i = 0; i < n; i++) {
		cr_assert(not(eq(ptr, got[i], NULL)), "param %zu missing", i);
		cr_assert(eq(str, got[i], (char *)want[i]));
	}
	cr_assert(eq(ptr, got[n], NULL));
}

static void
assert_body(const char *want)
{
	char buf[4096];
	size_t got = 0;
	long n;

	while ((n = fcgi_read(conn, buf + got, sizeof(buf) - got)) > 0)
		got += (size_t)n;
	cr_assert(eq(long, n, 0));
	cr_assert(eq(sz, got, strlen(want)));
	cr_assert(eq(int, memcmp(buf, want, got), 0));
	cr_assert(fcgi_input_ended(conn));
	cr_assert(not(fcgi_input_failed(conn)));
}

Test(fcgi, reads_params_and_input_of_a_request)
{
	static const char *want[] = { "REQUEST_METHOD=POST",
		"REQUEST_URI=/users" };
	struct stream s = { .len = 0 };

	request(&s, 1, 1, "{\"username\":\"alice\"}");
	send_stream(&s);
	cr_assert(eq(int, fcgi_begin(conn, sv[0]), 1));
	cr_assert(fcgi_keep_conn(conn));
	assert_params(want, 2);
	assert_body("{\"username\":\"alice\"}");
	cr_assert(not(fcgi_read_ahead(conn)));
	cr_assert(not(fcgi_input_waiting(conn)));
}

Test(fcgi, takes_long_lengths_and_params_split_across_records)
{
	static unsigned char buf[40000];
	static char value[20000], want0[20040];
	struct stream s = { .len = 0 };
	const char *want[2];
	size_t n;

	memset(value, 'v', sizeof(value) - 1);
	snprintf(want0, sizeof(want0), "HTTP_COOKIE=%s", value);
	want[0] = want0;
	want[1] = "A=";
	begin(&s, 7, 1, 0);
	n = pair(buf, "HTTP_COOKIE", 11, value, strlen(value), 0);
	n += pair(buf + n, "A", 1, "", 0, 1);
	/* Cut mid-length, mid-name and mid-value. */
	record(&s, PARAMS, 7, buf, 3, 5);
	record(&s, PARAMS, 7, buf + 3, 9, 0);
	record(&s, PARAMS, 7, buf + 12, 10000, 255);
	record(&s, PARAMS, 7, buf + 10012, n - 10012, 1);
	record(&s, PARAMS, 7, NULL, 0, 0);
	record(&s, STDIN, 7, NULL, 0, 0);
	send_stream(&s);
	cr_assert(eq(int, fcgi_begin(conn, sv[0]), 1));
	cr_assert(not(fcgi_keep_conn(conn)));
	assert_params(want, 2);
	assert_body("");
}

Test(fcgi, reads_a_request_that_comes_a_byte_at_a_time)
{
	static const char *want[] = { "REQUEST_METHOD=POST",
		"REQUEST_URI=/users" };
	struct stream s = { .len = 0 };
	pid_t pid;
	size_t i;
	int status;

	request(&s, 300, 0, "0123456789");
	if ((pid = fork()) == 0) {
		close(sv[0]);
		for (i = 0; i < s.len; i++) {
			if (write(sv[1], s.b + i, 1) != 1)
				_exit(1);
			usleep(200);
		}
		_exit(0);
	}
	cr_assert(eq(int, fcgi_begin(conn, sv[0]), 1));
	assert_params(want, 2);
	assert_body("0123456789");
	cr_assert(eq(int, waitpid(pid, &status, 0), pid));
	cr_assert(eq(int, status, 0));
}

Test(fcgi, drops_names_holding_equals_or_nul_and_ends_values_at_nul)
{
	static const char *want[] = { "B=x", "C=ab", "D=1" };
	unsigned char buf[256];
	struct stream s = { .len = 0 };
	size_t n;

	begin(&s, 1, 1, 0);
	n = pair(buf, "A=B", 3, "1", 1, 0);
	n += pair(buf + n, "B", 1, "x", 1, 0);
	n += pair(buf + n, "", 0, "nameless", 8, 0);
	n += pair(buf + n, "N\0L", 3, "1", 1, 0);
	n += pair(buf + n, "C", 1, "ab\0cd", 5, 0);
	n += pair(buf + n, "D", 1, "1", 1, 0);
	record(&s, PARAMS, 1, buf, n, 0);
	record(&s, PARAMS, 1, NULL, 0, 0);
	send_stream(&s);
	cr_assert(eq(int, fcgi_begin(conn, sv[0]), 1));
	assert_params(want, 3);
}

Test(fcgi, a_request_without_params_has_none)
{
	struct stream s = { .len = 0 };

	begin(&s, 1, 1, 0);
	record(&s, PARAMS, 1, NULL, 0, 0);
	send_stream(&s);
	cr_assert(eq(int, fcgi_begin(conn, sv[0]), 1));
	assert_params(NULL, 0);
}

Test(fcgi, writes_output_in_padded_records_then_the_end)
{
	static char out[200000];
	static unsigned char got[260000];
	static char back[200000];
	struct stream s = { .len = 0 };
	size_t n, at = 0, total = 0, i;
	struct rec r;
	int closed;

	for (i = 0; i < sizeof(out); i++)
		out[i] = (char)('a' + i % 26);
	request(&s, 0x1234, 1, "");
	send_stream(&s);
	cr_assert(eq(int, fcgi_begin(conn, sv[0]), 1));
	assert_body("");
	cr_assert(eq(int, fcgi_write(conn, out, 5), 0));
	cr_assert(eq(int, fcgi_write(conn, out + 5, sizeof(out) - 5), 0));
	cr_assert(eq(int, fcgi_end(conn), 0));
	n = receive(got, sizeof(got), &closed);
	cr_assert(not(closed), "the connection is kept");
	for (;;) {
		r = next_rec(got, n, &at);
		cr_assert(eq(u32, r.type, STDOUT));
		cr_assert(eq(u32, r.id, 0x1234));
		cr_assert(eq(sz, (r.len + r.pad) % 8, 0));
		if (r.len == 0)
			break;
		memcpy(back + total, r.content, r.len);
		total += r.len;
	}
	cr_assert(eq(sz, total, sizeof(out)));
	cr_assert(eq(int, memcmp(back, out, total), 0));
	r = next_rec(got, n, &at);
	assert_end_request(&r, 0x1234, 0);
	cr_assert(eq(sz, at, n), "nothing after the end");
}

Test(fcgi, serves_two_requests_on_a_kept_connection)
{
	static const char *want[] = { "REQUEST_METHOD=POST",
		"REQUEST_URI=/users" };
	unsigned char got[256];
	struct stream s = { .len = 0 };
	size_t n, at = 0;
	struct rec r;
	int closed, round;

	for (round = 0; round < 2; round++) {
		s.len = 0;
		request(&s, (unsigned)round + 1, 1, round ? "second" : "1st");
		send_stream(&s);
		cr_assert(eq(int, fcgi_begin(conn, round ? fcgi_detach(conn) :
		    sv[0]), 1));
		assert_params(want, 2);
		assert_body(round ? "second" : "1st");
		cr_assert(eq(int, fcgi_write(conn, "ok", 2), 0));
		cr_assert(eq(int, fcgi_end(conn), 0));
		n = receive(got, sizeof(got), &closed);
		at = 0;
		r = next_rec(got, n, &at);
		cr_assert(eq(u32, r.id, (unsigned)round + 1));
		cr_assert(eq(sz, r.len, 2));
		r = next_rec(got, n, &at);
		r = next_rec(got, n, &at);
		assert_end_request(&r, (unsigned)round + 1, 0);
	}
}

Test(fcgi, answers_get_values_each_once_and_unknown_types)
{
	unsigned char buf[256], got[256];
	struct stream s = { .len = 0 };
	size_t n, at = 0;
	struct rec r;
	int closed;

	n = pair(buf, "FCGI_MPXS_CONNS", 15, "", 0, 0);
	n += pair(buf + n, "FCGI_SOMETHING", 14, "", 0, 0);
	n += pair(buf + n, "FCGI_MAX_CONNS", 14, "", 0, 1);
	n += pair(buf + n, "FCGI_MPXS_CONNS", 15, "", 0, 0);
	record(&s, GET_VALUES, 0, buf, n, 2);
	record(&s, 99, 0, "xyz", 3, 5);
	request(&s, 1, 0, "");
	send_stream(&s);
	cr_assert(eq(int, fcgi_begin(conn, sv[0]), 1));
	n = receive(got, sizeof(got), &closed);
	r = next_rec(got, n, &at);
	cr_assert(eq(u32, r.type, GET_VALUES_RESULT));
	cr_assert(eq(u32, r.id, 0));
	cr_assert(eq(sz, r.len, 18 + 17));
	cr_assert(eq(int, memcmp(r.content, "\x0f\x01" "FCGI_MPXS_CONNS0"
	    "\x0e\x01" "FCGI_MAX_CONNS1", r.len), 0));
	r = next_rec(got, n, &at);
	cr_assert(eq(u32, r.type, UNKNOWN_TYPE));
	cr_assert(eq(sz, r.len, 8));
	cr_assert(eq(u8, r.content[0], 99));
	cr_assert(eq(sz, at, n));
}

Test(fcgi, refuses_a_second_request_and_skips_records_of_others)
{
	static const char *want[] = { "REQUEST_METHOD=POST",
		"REQUEST_URI=/users" };
	unsigned char got[256];
	struct stream s = { .len = 0 };
	size_t n, at = 0;
	struct rec r;
	int closed;

	begin(&s, 1, 1, 0);
	param(&s, 1, "REQUEST_METHOD", "POST");
	begin(&s, 2, 1, 0);
	param(&s, 2, "REQUEST_METHOD", "DELETE");
	param(&s, 1, "REQUEST_URI", "/users");
	record(&s, PARAMS, 1, NULL, 0, 0);
	record(&s, STDIN, 1, "ab", 2, 0);
	begin(&s, 3, 1, 0);
	record(&s, STDIN, 9, "zz", 2, 6);
	record(&s, STDIN, 1, "cd", 2, 0);
	record(&s, STDIN, 1, NULL, 0, 0);
	send_stream(&s);
	cr_assert(eq(int, fcgi_begin(conn, sv[0]), 1));
	assert_params(want, 2);
	assert_body("abcd");
	n = receive(got, sizeof(got), &closed);
	r = next_rec(got, n, &at);
	assert_end_request(&r, 2, 1);
	r = next_rec(got, n, &at);
	assert_end_request(&r, 3, 1);
	cr_assert(eq(sz, at, n));
}

/* What a responder sends and does for a request it will not serve. */
static void
assert_refused(unsigned id, unsigned status)
{
	unsigned char got[256];
	size_t n, at = 0;
	struct rec r;
	int closed;

	n = receive(got, sizeof(got), &closed);
	r = next_rec(got, n, &at);
	assert_end_request(&r, id, status);
	cr_assert(closed, "the connection is closed");
}

Test(fcgi, ends_a_request_in_another_role_with_unknown_role)
{
	struct stream s = { .len = 0 };

	begin(&s, 5, 2, 0);	/* FCGI_AUTHORIZER */
	param(&s, 5, "REQUEST_METHOD", "GET");
	record(&s, PARAMS, 5, NULL, 0, 0);
	send_stream(&s);
	shutdown(sv[1], SHUT_WR);
	cr_assert(eq(int, fcgi_begin(conn, sv[0]), 0));
	assert_refused(5, 3);
}

Test(fcgi, ends_a_request_aborted_before_its_params_end)
{
	struct stream s = { .len = 0 };

	begin(&s, 5, 1, 1);
	param(&s, 5, "REQUEST_METHOD", "GET");
	record(&s, ABORT, 5, NULL, 0, 0);
	send_stream(&s);
	cr_assert(eq(int, fcgi_begin(conn, sv[0]), 0));
	assert_refused(5, 0);
}

Test(fcgi, an_abort_or_another_stream_ends_the_input_short)
{
	static const unsigned types[] = { ABORT, DATA, PARAMS, STDOUT };
	struct stream s;
	char buf[64];
	size_t i;

	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		s.len = 0;
		begin(&s, 1, 1, 1);
		record(&s, PARAMS, 1, NULL, 0, 0);
		record(&s, STDIN, 1, "abc", 3, 0);
		record(&s, types[i], 1, NULL, 0, 0);
		send_stream(&s);
		cr_assert(eq(int, fcgi_begin(conn, i == 0 ? sv[0] :
		    fcgi_detach(conn)), 1));
		cr_assert(eq(long, fcgi_read(conn, buf, sizeof(buf)), 3));
		cr_assert(eq(long, fcgi_read(conn, buf, sizeof(buf)), -1));
		cr_assert(fcgi_input_failed(conn));
		cr_assert(not(fcgi_input_ended(conn)));
		cr_assert(eq(long, fcgi_read(conn, buf, sizeof(buf)), -1));
	}
}

Test(fcgi, notes_input_past_the_request)
{
	struct stream s = { .len = 0 };

	request(&s, 1, 1, "x");
	begin(&s, 2, 1, 1);
	send_stream(&s);
	cr_assert(eq(int, fcgi_begin(conn, sv[0]), 1));
	assert_body("x");
	cr_assert(fcgi_read_ahead(conn));
	cr_assert(fcgi_input_waiting(conn));
}

Test(fcgi, notes_input_waiting_on_the_socket)
{
	struct stream s = { .len = 0 };

	request(&s, 1, 0, "x");
	send_stream(&s);
	cr_assert(eq(int, fcgi_begin(conn, sv[0]), 1));
	assert_body("x");
	cr_assert(not(fcgi_input_waiting(conn)));
	cr_assert(eq(long, write(sv[1], "more", 4), 4));
	cr_assert(not(fcgi_read_ahead(conn)));
	cr_assert(fcgi_input_waiting(conn));
}

Test(fcgi, end_fails_when_the_front_went_away)
{
	struct stream s = { .len = 0 };

	request(&s, 1, 1, "");
	send_stream(&s);
	cr_assert(eq(int, fcgi_begin(conn, sv[0]), 1));
	close(sv[1]);
	sv[1] = -1;
	cr_assert(eq(int, fcgi_write(conn, "hello", 5), 0));
	cr_assert(eq(int, fcgi_end(conn), -1));
	cr_assert(not(fcgi_keep_conn(conn)));
}

Test(fcgi, a_lingering_close_ends_when_the_front_closes)
{
	struct stream s = { .len = 0 };
	struct timespec t0, t1;
	pid_t pid;
	int status;

	request(&s, 1, 0, "");
	send_stream(&s);
	cr_assert(eq(int, fcgi_begin(conn, sv[0]), 1));
	if ((pid = fork()) == 0) {
		char b[64];

		/* Sends more, and closes once the other side shut down. */
		close(sv[0]);
		if (write(sv[1], "late bytes", 10) != 10)
			_exit(1);
		while (read(sv[1], b, sizeof(b)) > 0)
			;
		_exit(0);
	}
	close(sv[1]);
	sv[1] = -1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	fcgi_close(conn, 1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	cr_assert(lt(long, (t1.tv_sec - t0.tv_sec) * 1000 +
	    (t1.tv_nsec - t0.tv_nsec) / 1000000, FCGI_LINGER_MS / 2));
	cr_assert(eq(int, waitpid(pid, &status, 0), pid));
	cr_assert(eq(int, status, 0));
	cr_assert(eq(int, fcgi_detach(conn), -1));
}

/* ---- streams the responder must give up on ------------------------------ */

struct bad_case {
	char name[48];
	int kind;
};

enum {
	BAD_VERSION, BEGIN_ID_ZERO, BEGIN_SHORT, STDIN_BEFORE_PARAMS_END,
	PAIR_PAST_RECORD, LENGTH4_CUT, HEADER_CUT, CONTENT_CUT, NOTHING,
	GET_VALUES_BAD_PAIR, PARAMS_TOO_MANY, BEGIN_ID_ZERO_IN_INPUT
};

ParameterizedTestParameters(fcgi, gives_up_on_a_broken_stream)
{
	static struct bad_case cases[] = {
		{ "version 2", BAD_VERSION },
		{ "begin of request 0", BEGIN_ID_ZERO },
		{ "begin of 7 bytes", BEGIN_SHORT },
		{ "input before the params end", STDIN_BEFORE_PARAMS_END },
		{ "a pair longer than its params", PAIR_PAST_RECORD },
		{ "a four-byte length cut short", LENGTH4_CUT },
		{ "a header cut short", HEADER_CUT },
		{ "content cut short", CONTENT_CUT },
		{ "nothing at all", NOTHING },
		{ "get values with a broken pair", GET_VALUES_BAD_PAIR },
		{ "params past FCGI_PARAMS_MAX", PARAMS_TOO_MANY },
	};

	return cr_make_param_array(struct bad_case, cases,
	    sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct bad_case *c, fcgi, gives_up_on_a_broken_stream)
{
	static unsigned char big[FCGI_CONTENT_MAX];
	struct stream *s = calloc(1, sizeof(*s));
	unsigned char got[64];
	pid_t pid;
	int closed, status;
	size_t i;

	cr_assert(not(eq(ptr, s, NULL)));
	switch (c->kind) {
	case BAD_VERSION:
		record_v(s, 2, BEGIN, 1, "\0\1\0\0\0\0\0\0", 8, 0);
		break;
	case BEGIN_ID_ZERO:
		begin(s, 0, 1, 0);
		break;
	case BEGIN_SHORT:
		record(s, BEGIN, 1, "\0\1\0\0\0\0\0", 7, 0);
		break;
	case STDIN_BEFORE_PARAMS_END:
		begin(s, 1, 1, 0);
		param(s, 1, "A", "b");
		record(s, STDIN, 1, NULL, 0, 0);
		break;
	case PAIR_PAST_RECORD:
		begin(s, 1, 1, 0);
		record(s, PARAMS, 1, "\x0a\x01" "abc", 5, 0);
		record(s, PARAMS, 1, NULL, 0, 0);
		break;
	case LENGTH4_CUT:
		begin(s, 1, 1, 0);
		record(s, PARAMS, 1, "\x01\x80\x00", 3, 0);
		record(s, PARAMS, 1, NULL, 0, 0);
		break;
	case HEADER_CUT:
		begin(s, 1, 1, 0);
		put(s, "\1\4\0\1", 4);
		break;
	case CONTENT_CUT:
		begin(s, 1, 1, 0);
		record(s, PARAMS, 1, "\x01\x01" "ab", 4, 0);
		s->len -= 2;
		break;
	case NOTHING:
		break;
	case GET_VALUES_BAD_PAIR:
		record(s, GET_VALUES, 0, "\x7f\x00" "abc", 5, 3);
		request(s, 1, 0, "");
		break;
	case PARAMS_TOO_MANY:
		break;
	}
	if (c->kind == PARAMS_TOO_MANY) {
		/* A writer of its own: more than one socket buffer's worth. */
		if ((pid = fork()) == 0) {
			/* Its copy of the reader would block its writes. */
			close(sv[0]);
			signal(SIGPIPE, SIG_IGN);
			for (i = 0; i <= FCGI_PARAMS_MAX / sizeof(big) + 1;
			    i++) {
				s->len = 0;
				if (i == 0)
					begin(s, 1, 1, 0);
				record(s, PARAMS, 1, big, sizeof(big), 0);
				/* Fails once the responder gave up. */
				if (write(sv[1], s->b, s->len) < 0)
					break;
			}
			_exit(0);
		}
		close(sv[1]);
		sv[1] = -1;
		cr_assert(eq(int, fcgi_begin(conn, sv[0]), 0));
		cr_assert(eq(int, waitpid(pid, &status, 0), pid));
		free(s);
		return;
	}
	send_stream(s);
	shutdown(sv[1], SHUT_WR);
	cr_assert(eq(int, fcgi_begin(conn, sv[0]), 0), "%s", c->name);
	receive(got, sizeof(got), &closed);
	cr_assert(closed, "%s: closed", c->name);
	free(s);
}
