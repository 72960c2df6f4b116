/* body.c: a /users request body read against the user model (steps 8, 9). */
#include "body.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* Why a member failed: picks the 422's problem type. */
enum error_kind { ERR_INVALID, ERR_UNKNOWN, ERR_MISMATCH };

static void
body_error(struct body *b, enum error_kind kind, const char *pointer,
    const char *detail)
{
	struct json_object *e;

	if (b->errors == NULL && (b->errors = json_object_new_array()) == NULL)
		return;
	if (kind == ERR_INVALID)
		b->n_invalid++;
	else if (kind == ERR_UNKNOWN)
		b->n_unknown++;
	else
		b->n_mismatch++;
	/* Enough to act on; a hostile body must not grow the answer. */
	if (json_object_array_length(b->errors) >= BODY_ERRORS_MAX)
		return;
	if ((e = json_object_new_object()) == NULL)
		return;
	json_object_object_add(e, "pointer", json_object_new_string(pointer));
	json_object_object_add(e, "detail", json_object_new_string(detail));
	json_object_array_add(b->errors, e);
}

/* Appends "/" + name escaped per RFC 6901 ("~" as "~0", "/" as "~1"). */
static char *
member_pointer(const char *name)
{
	size_t n = strlen(name), i, o = 0;
	char *p = malloc(2 * n + 2);

	if (p == NULL)
		return NULL;
	p[o++] = '/';
	for (i = 0; i < n; i++) {
		if (name[i] == '~' || name[i] == '/') {
			p[o++] = '~';
			p[o++] = name[i] == '~' ? '0' : '1';
		} else {
			p[o++] = name[i];
		}
	}
	p[o] = '\0';
	return p;
}

/* Reads an optional string member (email, display_name) into dst. */
static void
read_text(struct body *b, struct json_object *v, unsigned bit,
    const char *pointer, char *dst,
    enum user_err (*check)(const char *, size_t))
{
	const char *s;
	size_t len;
	enum user_err e;
	char detail[96];

	if (json_object_get_type(v) == json_type_null) {
		b->nulled |= bit;
		return;
	}
	if (!jsonio_string(v, &s, &len)) {
		body_error(b, ERR_INVALID, pointer,
		    "must be a string without NUL characters, or null");
		return;
	}
	if ((e = check(s, len)) != USER_OK) {
		snprintf(detail, sizeof(detail), "%s", user_err_str(e));
		body_error(b, ERR_INVALID, pointer, detail);
		return;
	}
	memcpy(dst, s, len + 1);
}

static void
read_roles(struct body *b, struct json_object *v)
{
	char pointer[32], detail[96];
	size_t i, n, len;
	const char *s;
	enum user_err e;

	if (json_object_get_type(v) == json_type_null) {
		b->nulled |= BODY_ROLES;
		return;
	}
	if (json_object_get_type(v) != json_type_array) {
		body_error(b, ERR_INVALID, "/roles",
		    "must be an array of role names");
		return;
	}
	if ((n = json_object_array_length(v)) > USER_ROLES_MAX) {
		snprintf(detail, sizeof(detail), "at most %d roles",
		    USER_ROLES_MAX);
		body_error(b, ERR_INVALID, "/roles", detail);
		return;
	}
	for (i = 0; i < n; i++) {
		snprintf(pointer, sizeof(pointer), "/roles/%zu", i);
		if (!jsonio_string(json_object_array_get_idx(v, i), &s, &len)) {
			body_error(b, ERR_INVALID, pointer,
			    "must be a string");
			continue;
		}
		if ((e = user_check_role(s, len)) != USER_OK) {
			snprintf(detail, sizeof(detail), "%s; roles match "
			    "^[a-z][a-z0-9_-]{0,31}$", user_err_str(e));
			body_error(b, ERR_INVALID, pointer, detail);
			continue;
		}
		memcpy(b->u.roles[b->u.nroles++], s, len + 1);
	}
	if (b->u.nroles == n && user_sort_roles(&b->u) == USER_DUPLICATE)
		body_error(b, ERR_INVALID, "/roles", "names a role twice");
}

void
body_read(const struct http_request *req, int max_depth,
    enum body_mode mode, const char *url_name, struct body *b)
{
	struct json_object *obj = NULL;
	const char *s;
	size_t len;
	char a[USER_NAME_MAX + 1], c[USER_NAME_MAX + 1];

	memset(b, 0, sizeof(*b));
	b->parse = jsonio_parse_object(req->body, req->body_len,
	    max_depth, &obj, &b->perr);
	if (b->parse != JSONIO_OK)
		return;

	json_object_object_foreach(obj, key, v) {
		if (strcmp(key, "username") == 0) {
			b->present |= BODY_USERNAME;
			if (!jsonio_string(v, &s, &len)) {
				body_error(b, ERR_INVALID, "/username",
				    "must be a string");
			} else if (user_check_name(s, len) != USER_OK) {
				body_error(b, ERR_INVALID, "/username",
				    "must match ^[A-Za-z0-9][A-Za-z0-9._-]"
				    "{0,63}$");
			} else {
				memcpy(b->u.username, s, len + 1);
			}
		} else if (strcmp(key, "email") == 0) {
			b->present |= BODY_EMAIL;
			read_text(b, v, BODY_EMAIL, "/email", b->u.email,
			    user_check_email);
		} else if (strcmp(key, "display_name") == 0) {
			b->present |= BODY_DISPLAY_NAME;
			read_text(b, v, BODY_DISPLAY_NAME, "/display_name",
			    b->u.display_name, user_check_display_name);
		} else if (strcmp(key, "roles") == 0) {
			b->present |= BODY_ROLES;
			read_roles(b, v);
		} else if (strcmp(key, "version") == 0) {
			b->present |= BODY_VERSION;
			if (mode == BODY_FOR_POST)
				body_error(b, ERR_INVALID, "/version",
				    "is set by the server; leave it out of a "
				    "POST");
			else if (!jsonio_string(v, &s, &len) ||
			    user_parse_version(s, len, &b->version) != 0)
				body_error(b, ERR_INVALID, "/version",
				    "must be a version string as the "
				    "representation carries it");
		} else if (strcmp(key, "created_at") == 0 ||
		    strcmp(key, "updated_at") == 0) {
			continue;	/* read-only; ignored (API.md) */
		} else {
			char *pointer = member_pointer(key);
			body_error(b, ERR_UNKNOWN, pointer != NULL ? pointer :
			    "", "is not a member of a user");
			free(pointer);
		}
	}
	json_object_put(obj);

	if (mode != BODY_FOR_PATCH && !(b->present & BODY_USERNAME))
		body_error(b, ERR_INVALID, "/username", "is required");
	if (mode == BODY_FOR_PATCH && (b->nulled & BODY_USERNAME))
		body_error(b, ERR_INVALID, "/username", "cannot be removed");
	if (url_name != NULL && b->u.username[0] != '\0') {
		user_canonical(url_name, a);
		user_canonical(b->u.username, c);
		if (strcmp(a, c) != 0)
			body_error(b, ERR_MISMATCH, "/username",
			    mode == BODY_FOR_PATCH ?
			    "a username cannot be changed" :
			    "must name the same user as the URL");
	}
}

void
body_release(struct body *b)
{
	json_object_put(b->errors);
	b->errors = NULL;
}

void
body_merge_patch(const struct user *cur, const struct body *b,
    struct user *next)
{
	*next = *cur;
	if (b->present & BODY_USERNAME)
		memcpy(next->username, b->u.username, sizeof(next->username));
	if (b->present & BODY_EMAIL)
		memcpy(next->email, b->u.email, sizeof(next->email));
	if (b->present & BODY_DISPLAY_NAME)
		memcpy(next->display_name, b->u.display_name,
		    sizeof(next->display_name));
	if (b->present & BODY_ROLES) {
		memcpy(next->roles, b->u.roles, sizeof(next->roles));
		next->nroles = b->u.nroles;
	}
}
