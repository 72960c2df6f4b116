/*
 * test_pq_load.c: libpq loaded on demand. This binary does not link libpq,
 * so what it finds is what a worker finds. Each test is a fresh process:
 * nothing is loaded when it starts.
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include <string.h>

#include "pq_load.h"

static char why[256];

static int
table_is_empty(void)
{
	static const struct pq_api empty;

	return memcmp(&pq_api, &empty, sizeof(empty)) == 0;
}

/* Entries of the table still NULL (its members are function pointers). */
static size_t
unset_entries(void)
{
	void (*slot)(void);
	size_t i, n = 0;

	for (i = 0; i < sizeof(pq_api) / sizeof(slot); i++) {
		memcpy(&slot, (const char *)&pq_api + i * sizeof(slot),
		    sizeof(slot));
		n += slot == NULL;
	}
	return n;
}

Test(pq_load, fills_every_entry_and_libpq_answers)
{
	PQconninfoOption *opts;
	char *err = NULL;

	cr_assert(table_is_empty());
	cr_assert(eq(int, pq_load(why, sizeof(why)), 0), "%s", why);
	cr_assert(eq(sz, unset_entries(), 0));
	opts = PQconninfoParse("postgresql://db.example/users", &err);
	cr_assert(not(eq(ptr, opts, NULL)), "%s", err != NULL ? err : "");
	PQconninfoFree(opts);
	/* Once is enough: a second call finds it loaded. */
	cr_assert(eq(int, pq_load(why, sizeof(why)), 0));
}

Test(pq_load, a_missing_library_names_the_package)
{
	cr_assert(eq(int, pq_load_from("libpq-absent.so.0", why, sizeof(why)),
	    -1));
	cr_assert(not(eq(ptr, strstr(why, "apt-get install libpq5"), NULL)),
	    "%s", why);
	cr_assert(not(eq(ptr, strstr(why, "libpq-absent.so.0"), NULL)), "%s",
	    why);
	cr_assert(table_is_empty());
	/* Installing it later is enough: nothing is remembered. */
	cr_assert(eq(int, pq_load(why, sizeof(why)), 0), "%s", why);
}

Test(pq_load, a_library_without_the_functions_is_refused_whole)
{
	cr_assert(eq(int, pq_load_from("libc.so.6", why, sizeof(why)), -1));
	cr_assert(not(eq(ptr, strstr(why, "too old"), NULL)), "%s", why);
	cr_assert(table_is_empty(), "a half-filled table was left");
	cr_assert(eq(int, pq_load(why, sizeof(why)), 0), "%s", why);
}
