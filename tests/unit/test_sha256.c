/* test_sha256.c: SHA-256 against FIPS 180-4 vectors and sha256sum. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <criterion/parameterized.h>

#include <stdlib.h>
#include <string.h>

#include "sha256.h"

/*
 * Parameters hold arrays, not pointers: Criterion runs each test in a
 * fresh process, where the parent's pointers need not be valid.
 */

struct vector {
	char msg[120];
	char hex[SHA256_HEX_SIZE];
};

ParameterizedTestParameters(sha256, fips_vectors)
{
	static struct vector cases[] = {
		{ "",
		    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
		{ "abc",
		    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
		/* 56 bytes: the padding needs a second block */
		{ "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
		    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
		/* 112 bytes */
		{ "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
		    "hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
		    "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1" },
	};

	return cr_make_param_array(struct vector, cases,
	    sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct vector *c, sha256, fips_vectors)
{
	char out[SHA256_HEX_SIZE];

	memset(out, '#', sizeof(out));
	sha256_hex(c->msg, strlen(c->msg), out);
	cr_assert(eq(str, out, c->hex), "[%s]", c->msg);
}

Test(sha256, one_million_a)
{
	char out[SHA256_HEX_SIZE];
	char *m = malloc(1000000);

	cr_assert(not(eq(ptr, m, NULL)));
	memset(m, 'a', 1000000);
	sha256_hex(m, 1000000, out);
	cr_assert(eq(str, out,
	    "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"));
	free(m);
}

/*
 * Lengths around the padding boundaries: 55 (length fits the block), 56
 * (it does not), 63, 64 (a whole block), 65, and the same one block on.
 * Messages are bytes 0x30 + i % 43; digests from sha256sum(1).
 */
struct length_case {
	size_t len;
	char hex[SHA256_HEX_SIZE];
};

ParameterizedTestParameters(sha256, padding_boundaries)
{
	static struct length_case cases[] = {
		{ 55, "5115528ed8d30114d2c26627c045ccc1ed16e95d21a1118df62b39c601cfeb58" },
		{ 56, "436d4d7a61515716fae1cc93feaf7c658a619a10a96a36fe148693a9d241f317" },
		{ 63, "439a1bc75f8d2f18917893df1a66be79196e3e17ce07961b1b56c67a7e436918" },
		{ 64, "5d730a4aedc643aa5f0ddb472d76f5fea8960e273329a3e0b0564c45aa7217f5" },
		{ 65, "77af5c6d978131f977161f05717a6a09af3bb73a0e479c8a268e5400f03f8e09" },
		{ 119, "b8db8213013d5455a65a27a5860b8668e7808d71b1c69627032906cd8f0f95d8" },
		{ 120, "aa9b3be984cd3cd4b96fa1c9da29b7b647c6bf6161fb31a594a1b65f1945cdee" },
		{ 127, "42932971caf297396447574f71c6af8cb1937a8da5e092176cb354f7edf01518" },
		{ 128, "c5635a88feef14c30640680e78688f2fe3e7fcd059b165bb593560db8b73f53e" },
	};

	return cr_make_param_array(struct length_case, cases,
	    sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct length_case *c, sha256, padding_boundaries)
{
	char out[SHA256_HEX_SIZE];
	/* Exactly len bytes on the heap, so an overread is caught. */
	unsigned char *m = malloc(c->len);
	size_t i;

	cr_assert(not(eq(ptr, m, NULL)));
	for (i = 0; i < c->len; i++)
		m[i] = (unsigned char)(0x30 + i % 43);
	sha256_hex(m, c->len, out);
	cr_assert(eq(str, out, c->hex), "length %zu", c->len);
	free(m);
}

Test(sha256, every_byte_value)
{
	unsigned char m[256];
	char out[SHA256_HEX_SIZE];
	size_t i;

	for (i = 0; i < sizeof(m); i++)
		m[i] = (unsigned char)i;
	sha256_hex(m, sizeof(m), out);
	cr_assert(eq(str, out,
	    "40aff2e9d2d8922e47afd4648e6967497158785fbd1da870e7110266bf944880"));
}

Test(sha256, embedded_nul_counts)
{
	char a[SHA256_HEX_SIZE], b[SHA256_HEX_SIZE];

	sha256_hex("abc\0", 4, a);
	sha256_hex("abc", 3, b);
	cr_assert(not(eq(str, a, b)));
	cr_assert(eq(sz, strlen(a), 64));
}
