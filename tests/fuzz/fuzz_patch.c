/*
 * fuzz_patch.c: libFuzzer harness for PATCH bodies (RFC 7396 merge patch).
 * The input is a request body: body_read() reads it for PATCH, and
 * whenever it reports neither a parse error nor member errors,
 * body_merge_patch() applies it to a few fixed users. The result must
 * hold to the user model (every field passes its user_check_*, roles
 * sorted and distinct, the username changed in case at most) and to
 * RFC 7396 (members the patch names take its value, null removes, the
 * rest stays), checked against an independent walk of the parsed body.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "body.h"
#include "jsonio.h"
#include "user.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NFIXED 3

static struct user fixed[NFIXED];
static int ready;

/* Fills dst with n copies of c (dst has room for n + 1 bytes). */
static void
fill(char *dst, char c, size_t n)
{
	memset(dst, c, n);
	dst[n] = '\0';
}

static void
setup(void)
{
	static const char *const roles[] = { "admin", "dev" };
	struct user *u;
	size_t i;

	/* A user with nothing optional set. */
	u = &fixed[0];
	strcpy(u->username, "alice");
	u->version = 1;
	u->created_at = u->updated_at = 1700000000;

	/* Every member set, mixed case, UTF-8 in the display name. */
	u = &fixed[1];
	strcpy(u->username, "Bob.Smith-2");
	strcpy(u->email, "bob@example.org");
	strcpy(u->display_name, "Bob \xc3\x89mile \xf0\x9f\x98\x80");
	for (i = 0; i < 2; i++)
		strcpy(u->roles[i], roles[i]);
	u->nroles = 2;
	u->version = 42;
	u->created_at = 1700000000;
	u->updated_at = 1700000500;

	/* Every field at its limit. */
	u = &fixed[2];
	fill(u->username, 'Z', USER_NAME_MAX);
	fill(u->email, 'e', USER_EMAIL_MAX);
	u->email[USER_EMAIL_MAX / 2] = '@';
	fill(u->display_name, 'd', USER_DISPLAY_NAME_MAX);
	for (i = 0; i < USER_ROLES_MAX; i++) {
		fill(u->roles[i], 'r', USER_ROLE_MAX);
		u->roles[i][1] = (char)('a' + i);
	}
	u->nroles = USER_ROLES_MAX;
	u->version = INT64_MAX;
	u->created_at = 0;
	u->updated_at = INT64_MAX;

	for (i = 0; i < NFIXED; i++)
		if (user_sort_roles(&fixed[i]) != USER_OK)
			abort();
	ready = 1;
}

/* Every field of u passes the model's checks; roles sorted, distinct. */
static void
check_model(const struct user *u)
{
	size_t i, len;

	len = strnlen(u->username, sizeof(u->username));
	if (len == sizeof(u->username) ||
	    user_check_name(u->username, len) != USER_OK)
		abort();
	len = strnlen(u->email, sizeof(u->email));
	if (len == sizeof(u->email) ||
	    (len > 0 && user_check_email(u->email, len) != USER_OK))
		abort();
	len = strnlen(u->display_name, sizeof(u->display_name));
	if (len == sizeof(u->display_name) || (len > 0 &&
	    user_check_display_name(u->display_name, len) != USER_OK))
		abort();
	if (u->nroles > USER_ROLES_MAX)
		abort();
	for (i = 0; i < u->nroles; i++) {
		len = strnlen(u->roles[i], sizeof(u->roles[i]));
		if (len == sizeof(u->roles[i]) ||
		    user_check_role(u->roles[i], len) != USER_OK)
			abort();
		if (i > 0 && strcmp(u->roles[i - 1], u->roles[i]) >= 0)
			abort();
	}
}

/*
 * next's text field after the patch member name of obj. json-c holds a
 * JSON null as a NULL value: whether obj names it tells null from absent.
 */
static void
check_text(struct json_object *obj, const char *name, const char *cur,
    const char *next)
{
	struct json_object *m;
	const char *s;
	size_t len;

	if (!json_object_object_get_ex(obj, name, &m)) {
		if (strcmp(cur, next) != 0)
			abort();
	} else if (json_object_get_type(m) == json_type_null) {
		if (next[0] != '\0')
			abort();
	} else if (!jsonio_string(m, &s, &len) || strcmp(s, next) != 0) {
		abort();
	}
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* next's roles after the patch member "roles" of obj. */
static void
check_roles(struct json_object *obj, const struct user *cur,
    const struct user *next)
{
	const char *want[USER_ROLES_MAX];
	struct json_object *m;
	size_t i, n, len;

	if (!json_object_object_get_ex(obj, "roles", &m)) {
		if (next->nroles != cur->nroles)
			abort();
		for (i = 0; i < cur->nroles; i++)
			if (strcmp(cur->roles[i], next->roles[i]) != 0)
				abort();
		return;
	}
	if (json_object_get_type(m) == json_type_null) {
		/* API.md: in PATCH, "roles": null means []. */
		if (next->nroles != 0)
			abort();
		return;
	}
	if (json_object_get_type(m) != json_type_array ||
	    (n = json_object_array_length(m)) > USER_ROLES_MAX ||
	    next->nroles != n)
		abort();
	for (i = 0; i < n; i++)
		if (!jsonio_string(json_object_array_get_idx(m, i), &want[i],
		    &len))
			abort();
	qsort(want, n, sizeof(want[0]), cmp_str);
	for (i = 0; i < n; i++)
		if (strcmp(want[i], next->roles[i]) != 0)
			abort();
}

/* The 422's errors[]: bounded, counted exactly, each a pointer + detail. */
static void
check_errors(const struct body *b)
{
	struct json_object *e, *p, *d;
	size_t i, n, total;
	const char *s;
	size_t len;
	char *text;

	total = (size_t)b->n_invalid + (size_t)b->n_unknown +
	    (size_t)b->n_mismatch;
	if (b->errors == NULL) {
		if (total != 0)
			abort();
		return;
	}
	n = json_object_array_length(b->errors);
	if (total == 0 || n > BODY_ERRORS_MAX ||
	    n != (total < BODY_ERRORS_MAX ? total : BODY_ERRORS_MAX))
		abort();
	for (i = 0; i < n; i++) {
		e = json_object_array_get_idx(b->errors, i);
		if (!json_object_object_get_ex(e, "pointer", &p) ||
		    !json_object_object_get_ex(e, "detail", &d) ||
		    !jsonio_string(p, &s, &len) || (len > 0 && s[0] != '/') ||
		    !jsonio_string(d, &s, &len) || len == 0)
			abort();
	}
	/* The 422 serializes errors[] into its answer. */
	if ((text = jsonio_serialize(b->errors, NULL)) == NULL)
		abort();
	free(text);
}

/* Applies the patch in body onto cur, as PATCH /users/{url_name} would. */
static void
one_patch(const struct http_request *req, struct json_object *obj,
    const struct user *cur, const char *url_name)
{
	struct body b;
	struct user next;
	char a[USER_NAME_MAX + 1], c[USER_NAME_MAX + 1];

	body_read(req, JSONIO_DEPTH_MAX, BODY_FOR_PATCH, url_name, &b);
	if (b.parse != JSONIO_OK) {
		if (obj != NULL || b.errors != NULL || b.present != 0)
			abort();
		goto out;
	}
	if (obj == NULL)
		abort();
	check_errors(&b);
	if (b.errors != NULL)
		goto out;

	memset(&next, 0xa5, sizeof(next));
	body_merge_patch(cur, &b, &next);
	check_model(&next);

	/* The username may change its case only (API.md, PATCH). */
	user_canonical(url_name, a);
	user_canonical(next.username, c);
	if (strcmp(a, c) != 0)
		abort();
	check_text(obj, "username", cur->username, next.username);
	check_text(obj, "email", cur->email, next.email);
	check_text(obj, "display_name", cur->display_name, next.display_name);
	check_roles(obj, cur, &next);
	/* The server owns these; the patch never sets them. */
	if (next.version != cur->version ||
	    next.created_at != cur->created_at ||
	    next.updated_at != cur->updated_at)
		abort();
	if ((b.present & BODY_VERSION) && b.version <= 0)
		abort();
out:
	body_release(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_request req;
	struct json_object *obj = NULL;
	struct jsonio_error perr;
	struct body b;
	char upper[USER_NAME_MAX + 1];
	size_t i, j;

	if (!ready)
		setup();
	memset(&req, 0, sizeof(req));
	req.method = "PATCH";
	req.path = "/users/x";
	req.query = "";
	req.content_type = "application/merge-patch+json";
	if ((req.body = malloc(size + 1)) == NULL)
		return 0;
	memcpy(req.body, data, size);
	req.body[size] = '\0';
	req.body_len = size;

	/* The oracle's own view of the body, by the same strict parser. */
	if (jsonio_parse_object(req.body, size, JSONIO_DEPTH_MAX, &obj,
	    &perr) != JSONIO_OK)
		obj = NULL;
	for (i = 0; i < NFIXED; i++) {
		/* The URL names the user as stored and in upper case. */
		one_patch(&req, obj, &fixed[i], fixed[i].username);
		for (j = 0; fixed[i].username[j] != '\0'; j++) {
			char ch = fixed[i].username[j];
			upper[j] = ch >= 'a' && ch <= 'z' ?
			    (char)(ch - 'a' + 'A') : ch;
		}
		upper[j] = '\0';
		one_patch(&req, obj, &fixed[i], upper);
	}

	/* The deepest nesting the config allows parses what 8 parses. */
	body_read(&req, 64, BODY_FOR_PATCH, fixed[0].username, &b);
	if (obj != NULL && b.parse != JSONIO_OK)
		abort();
	body_release(&b);
	/* And the shallowest (a flat object) parses nothing 8 refuses. */
	body_read(&req, 1, BODY_FOR_PATCH, fixed[0].username, &b);
	if (obj == NULL && b.parse == JSONIO_OK)
		abort();
	body_release(&b);

	json_object_put(obj);
	free(req.body);
	return 0;
}
