/* fuzz_jsonio.c: libFuzzer harness for the strict JSON body parser. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jsonio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_object *obj = NULL;
	struct jsonio_error err;
	char *text = malloc(size + 1);

	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (jsonio_parse_object(text, size, JSONIO_DEPTH_MAX, &obj, &err) ==
	    JSONIO_OK) {
		/* A parsed object must serialize again without trouble. */
		char *out = jsonio_serialize(obj, NULL);
		free(out);
		json_object_put(obj);
	} else if (obj != NULL) {
		abort();	/* failures must not hand out an object */
	}
	free(text);
	return 0;
}
