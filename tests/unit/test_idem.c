/* test_idem.c: Idempotency-Key syntax and the stored-answer encoding. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <criterion/parameterized.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "idem.h"
#include "registry.h"

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

/* ---- idem_encode / idem_decode ------------------------------------------ */

Test(idem, round_trip_restores_headers_type_and_body)
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

	buf = idem_encode(&in, &len);
	cr_assert(not(eq(ptr, buf, NULL)));
	cr_assert(eq(sz, len, strlen(buf)));

	http_response_init(&out);
	cr_assert(eq(int, idem_decode(buf, len, 201, &out), 0));
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

Test(idem, round_trip_of_a_problem_with_newlines_in_the_body)
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
	buf = idem_encode(&in, &len);
	cr_assert(not(eq(ptr, buf, NULL)));
	http_response_init(&out);
	cr_assert(eq(int, idem_decode(buf, len, 409, &out), 0));
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

Test(idem, round_trip_without_a_body)
{
	struct http_response in, out;
	char *buf;
	size_t len = 0;

	http_response_init(&in);
	in.status = 204;
	buf = idem_encode(&in, &len);
	cr_assert(not(eq(ptr, buf, NULL)));
	http_response_init(&out);
	cr_assert(eq(int, idem_decode(buf, len, 204, &out), 0));
	cr_assert(eq(int, out.status, 204));
	cr_assert(eq(ptr, (void *)out.content_type, NULL));
	cr_assert(eq(sz, out.nheaders, 0));
	cr_assert(eq(sz, out.body_len, 0));
	cr_assert(eq(ptr, out.body, NULL));
	free(buf);
	http_response_release(&out);
}

Test(idem, replay_drops_headers_it_does_not_know)
{
	struct http_response in, out;
	char *buf;
	size_t len = 0;

	http_response_init(&in);
	in.status = 201;
	in.content_type = "application/json";
	in.body = strdup("{}");
	in.body_len = 2;
	cr_assert(eq(int, http_add_header(&in, "X-Request-Id",
	    "0b5e3c1a-9d2f-4e6b-8a7c-1d2e3f405162"), 0));
	cr_assert(eq(int, http_add_header(&in, "ETag", "\"3\""), 0));
	cr_assert(eq(int, http_add_header(&in, "Idempotent-Replayed",
	    "true"), 0));
	buf = idem_encode(&in, &len);
	http_response_init(&out);
	cr_assert(eq(int, idem_decode(buf, len, 201, &out), 0));
	cr_assert(eq(sz, out.nheaders, 1));
	cr_assert(eq(str, (char *)http_header(&out, "ETag"), "\"3\""));
	cr_assert(eq(ptr, (void *)http_header(&out, "X-Request-Id"), NULL));
	free(buf);
	http_response_release(&in);
	http_response_release(&out);
}

Test(idem, decode_gives_static_names_case_folded)
{
	const char buf[] = "content-type: APPLICATION/JSON\n"
	    "etag: \"9\"\nlink: </users?cursor=x>; rel=\"next\"\n\n[]";
	struct http_response out;

	http_response_init(&out);
	cr_assert(eq(int, idem_decode(buf, sizeof(buf) - 1, 200, &out), 0));
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

ParameterizedTestParameters(idem, decode_refuses_garbage)
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
	};

	return cr_make_param_array(struct garbage_case, cases,
	    sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct garbage_case *c, idem, decode_refuses_garbage)
{
	struct http_response out;

	http_response_init(&out);
	cr_assert(eq(int, idem_decode(c->buf, strlen(c->buf), 200, &out), -1),
	    "[%s]", c->buf);
	http_response_release(&out);
}

Test(idem, decode_refuses_more_headers_than_a_response_holds)
{
	struct http_response out;
	char buf[1024];
	size_t n = 0, i;

	for (i = 0; i <= HTTP_HEADERS_MAX; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n,
		    "Link: <%zu>\n", i);
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\n{}");
	http_response_init(&out);
	cr_assert(eq(int, idem_decode(buf, n, 200, &out), -1));
	http_response_release(&out);
}

Test(idem, decode_reads_only_len_bytes)
{
	const char buf[] = "ETag: \"1\"\n\n{}TRAILING";
	struct http_response out;

	http_response_init(&out);
	cr_assert(eq(int, idem_decode(buf, strlen(buf) - 8, 200, &out), 0));
	cr_assert(eq(sz, out.body_len, 2));
	cr_assert(eq(str, out.body, "{}"));
	http_response_release(&out);
}
