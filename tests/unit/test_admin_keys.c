/* test_admin_keys.c: the set of canonical keys import and check use. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include <stdio.h>
#include <string.h>

#include "admin_keys.h"

Test(admin_keys, second_add_names_the_first_line)
{
	struct admin_keys k;
	unsigned long first = 0;

	admin_keys_init(&k);
	cr_assert(eq(int, admin_keys_add(&k, "alice", 3, &first), 0));
	cr_assert(eq(int, admin_keys_add(&k, "bob", 4, &first), 0));
	cr_assert(eq(int, admin_keys_add(&k, "alice", 9, &first), 1));
	cr_assert(eq(u64, first, 3));
	cr_assert(eq(int, admin_keys_add(&k, "alice", 12, NULL), 1));
	cr_assert(eq(sz, admin_keys_count(&k), 2));
	admin_keys_release(&k);
	cr_assert(eq(sz, admin_keys_count(&k), 0));
}

Test(admin_keys, compares_bytes_exactly)
{
	struct admin_keys k;

	admin_keys_init(&k);
	cr_assert(eq(int, admin_keys_add(&k, "alice", 1, NULL), 0));
	/* Callers pass canonical keys: the set itself folds nothing. */
	cr_assert(eq(int, admin_keys_add(&k, "Alice", 2, NULL), 0));
	cr_assert(eq(int, admin_keys_add(&k, "alic", 3, NULL), 0));
	cr_assert(eq(int, admin_keys_add(&k, "alicee", 4, NULL), 0));
	cr_assert(eq(int, admin_keys_add(&k, "", 5, NULL), 0));
	cr_assert(eq(int, admin_keys_add(&k, "", 6, NULL), 1));
	cr_assert(eq(sz, admin_keys_count(&k), 5));
	admin_keys_release(&k);
}

/* Far past ADMIN_KEYS_INITIAL: growth keeps every key and its line. */
Test(admin_keys, grows_and_keeps_every_key)
{
	enum { N = 50000 };
	struct admin_keys k;
	unsigned long first;
	char key[32];
	int i;

	admin_keys_init(&k);
	for (i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "u%07d@example.org", i);
		cr_assert(eq(int, admin_keys_add(&k, key,
		    (unsigned long)i + 1, NULL), 0));
	}
	cr_assert(eq(sz, admin_keys_count(&k), N));
	for (i = 0; i < N; i += 997) {
		snprintf(key, sizeof(key), "u%07d@example.org", i);
		first = 0;
		cr_assert(eq(int, admin_keys_add(&k, key, 0, &first), 1));
		cr_assert(eq(u64, first, (unsigned long)i + 1));
	}
	cr_assert(eq(sz, admin_keys_count(&k), N));
	admin_keys_release(&k);
}

Test(admin_keys, canonical_folds_ascii_only_and_bounds)
{
	char buf[8];

	admin_keys_canonical("Alice.B-Z_9", buf, sizeof(buf));
	cr_assert(eq(str, buf, "alice.b"));
	admin_keys_canonical("MiXeD@Ex", buf, sizeof(buf));
	cr_assert(eq(str, buf, "mixed@e"));
	/* Bytes past ASCII stay as they are. */
	admin_keys_canonical("\xc3\x89T", buf, sizeof(buf));
	cr_assert(eq(str, buf, "\xc3\x89t"));
	admin_keys_canonical("", buf, sizeof(buf));
	cr_assert(eq(str, buf, ""));
}
