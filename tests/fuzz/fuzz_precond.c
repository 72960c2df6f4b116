/* fuzz_precond.c: libFuzzer harness for If-Match / If-None-Match values. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "precond.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *v = malloc(size + 1);

	if (v == NULL)
		return 0;
	memcpy(v, data, size);
	v[size] = '\0';
	if (precond_valid(v)) {
		/* A W/ tag never matches strongly; "*" matches any user. */
		int m = precond_if_match(v, 5);
		int n = precond_if_none_match(v, 5);
		if (precond_is_star(v) && (!m || n))
			abort();
		if (precond_if_match(v, 0) && !precond_is_star(v))
			abort();
		(void)precond_evaluate(v, v, 1, 5);
		(void)precond_evaluate(v, NULL, 0, 0);
	}
	free(v);
	return 0;
}
