/* jsonio.h: strict bounded JSON parsing and the user encoder, over json-c. */
#ifndef USERREG_JSONIO_H
#define USERREG_JSONIO_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "user.h"

/* Deepest nesting of arrays and objects a request body may have. */
#define JSONIO_DEPTH_MAX 8

/* Outcome of a parse; zero is success. */
enum jsonio_err {
	JSONIO_OK = 0,
	JSONIO_MALFORMED,	/* not JSON (or truncated, or a raw NUL byte) */
	JSONIO_TOO_DEEP,	/* nesting over the depth limit */
	JSONIO_NOT_OBJECT,	/* valid JSON, but the top level is no object */
	JSONIO_DUPLICATE,	/* an object names the same member twice */
	JSONIO_NOMEM,
	JSONIO_ERR__MAX
};

/* Where and why a parse failed. */
struct jsonio_error {
	enum jsonio_err code;
	size_t offset;		/* byte offset of the fault, when known */
	int has_offset;
	char detail[160];	/* short lowercase text, no request data */
};

/*
 * Parses text (len bytes, text[len] must be '\0') as one strict JSON value
 * (RFC 8259: no comments, no trailing commas, valid UTF-8, nothing after
 * the value but whitespace) nested at most max_depth deep, whose top level
 * must be an object whose objects name no member twice (compared after
 * unescaping). On JSONIO_OK, *out is a new object the caller releases with
 * json_object_put(). On failure *out is NULL and err says why.
 */
enum jsonio_err jsonio_parse_object(const char *text, size_t len,
    int max_depth, struct json_object **out, struct jsonio_error *err);

/*
 * If v is a JSON string without embedded NUL, stores its bytes (borrowed
 * from v, valid while v lives) and length and returns 1; otherwise 0.
 */
int jsonio_string(struct json_object *v, const char **s, size_t *len);

/*
 * Formats unix time t as RFC 3339 UTC with seconds ("2026-11-25T16:40:00Z")
 * into buf, which has room for JSONIO_TIME_SIZE bytes. Returns buf.
 */
#define JSONIO_TIME_SIZE 32
char *jsonio_time(int64_t t, char buf[JSONIO_TIME_SIZE]);

/*
 * Builds the representation of u in the contract's fixed member order:
 * username, email (if set), display_name (if set), roles, version (a
 * decimal string), created_at, updated_at. Returns a new object (release
 * with json_object_put()) or NULL when out of memory.
 */
struct json_object *jsonio_user(const struct user *u);

/*
 * Serializes o compactly (no spaces, "/" not escaped) into a new
 * NUL-terminated string the caller frees with free(); stores its length in
 * *len if len is not NULL. Returns NULL when out of memory.
 */
char *jsonio_serialize(struct json_object *o, size_t *len);

/*
 * The text jsonio_serialize(jsonio_user(u), len) returns, written with no
 * object tree: the answers that carry a user need no json-c objects.
 * NULL when out of memory.
 */
char *jsonio_user_text(const struct user *u, size_t *len);

#endif
