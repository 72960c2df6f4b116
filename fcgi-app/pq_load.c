/*
 * pq_load.c: opens libpq with dlopen() and fills pq_api (see pq_load.h).
 * Touches nothing but the table and the library handle it keeps open for
 * the life of the process.
 */
#define PQ_LOAD_NO_MACROS
#include "pq_load.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

struct pq_api pq_api;

static int loaded;

int
pq_load(char *errmsg, size_t errmsg_size)
{
	return pq_load_from(PQ_LOAD_SONAME, errmsg, errmsg_size);
}

int
pq_load_from(const char *soname, char *errmsg, size_t errmsg_size)
{
	void *lib, *sym;

	if (loaded)
		return 0;
	if ((lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		snprintf(errmsg, errmsg_size, "a PostgreSQL registry needs "
		    "libpq (apt-get install libpq5): %s", dlerror());
		return -1;
	}
	/* Assigned through memcpy: ISO C has no object-to-function cast. */
#define PQ_LOAD_RESOLVE(name) \
	if ((sym = dlsym(lib, #name)) == NULL) \
		goto missing; \
	memcpy(&pq_api.name, &sym, sizeof(sym));
	PQ_LOAD_FUNCTIONS(PQ_LOAD_RESOLVE)
#undef PQ_LOAD_RESOLVE
	loaded = 1;
	return 0;
missing:
	snprintf(errmsg, errmsg_size, "%s is too old for userreg: %s",
	    soname, dlerror());
	dlclose(lib);
	memset(&pq_api, 0, sizeof(pq_api));
	return -1;
}
