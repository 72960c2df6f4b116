/* admin_write.c: the admin tool's writes, each the API request it would be. */
#include "admin_write.h"

#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "jsonio.h"
#include "users.h"

int
admin_write_exit(int status)
{
	if (status >= 200 && status < 300)
		return ADMIN_EXIT_OK;
	switch (status) {
	case 409:
		return ADMIN_EXIT_CONFLICT;
	case 412:
		return ADMIN_EXIT_STALE;
	case 404:
		return ADMIN_EXIT_NOT_FOUND;
	case 400: case 413: case 415: case 422: case 428:
		return ADMIN_EXIT_USAGE;
	default:
		return ADMIN_EXIT_FAILURE;
	}
}

/* Adds a string member; an add that fails leaves it out (NULL body). */
static int
add_string(struct json_object *o, const char *key, const char *s)
{
	struct json_object *v = json_object_new_string(s);

	if (v == NULL || json_object_object_add(o, key, v) != 0) {
		json_object_put(v);
		return -1;
	}
	return 0;
}

static int
add_string_len(struct json_object *a, const char *s, size_t len)
{
	struct json_object *v = json_object_new_string_len(s, (int)len);

	if (v == NULL || json_object_array_add(a, v) != 0) {
		json_object_put(v);
		return -1;
	}
	return 0;
}

/* --roles R,R...: the list split at commas; "" is no role at all. */
static struct json_object *
split_roles(const char *list)
{
	struct json_object *a = json_object_new_array();
	const char *p = list, *comma;

	if (a == NULL || *list == '\0')
		return a;
	for (;;) {
		comma = strchr(p, ',');
		if (add_string_len(a, p, comma != NULL ?
		    (size_t)(comma - p) : strlen(p)) != 0) {
			json_object_put(a);
			return NULL;
		}
		if (comma == NULL)
			return a;
		p = comma + 1;
	}
}

/* cur's roles with role added (grant) or taken out (revoke). */
static struct json_object *
changed_roles(const struct user *cur, const char *role, int grant)
{
	struct json_object *a = json_object_new_array();
	size_t i;
	int held = 0;

	if (a == NULL)
		return NULL;
	for (i = 0; cur != NULL && i < cur->nroles; i++) {
		if (strcmp(cur->roles[i], role) == 0) {
			held = 1;
			if (!grant)
				continue;
		}
		if (add_string_len(a, cur->roles[i], strlen(cur->roles[i])) !=
		    0)
			goto fail;
	}
	if (grant && !held && add_string_len(a, role, strlen(role)) != 0)
		goto fail;
	return a;
fail:
	json_object_put(a);
	return NULL;
}

/* Adds member key = v (consumed); NULL v stands for JSON null. */
static int
add_member(struct json_object *o, const char *key, struct json_object *v,
    int null_ok)
{
	if (v == NULL && !null_ok)
		return -1;
	if (json_object_object_add(o, key, v) != 0) {
		json_object_put(v);
		return -1;
	}
	return 0;
}

char *
admin_write_body(const struct admin_args *a, const struct user *cur)
{
	struct json_object *o = json_object_new_object(), *roles;
	char *s = NULL;
	size_t i;
	int rc = 0;

	if (o == NULL)
		return NULL;
	switch (a->cmd) {
	case ADMIN_CMD_ADD:
		rc |= add_string(o, "username", a->pos[0]);
		if (a->email != NULL)
			rc |= add_string(o, "email", a->email);
		if (a->display_name != NULL)
			rc |= add_string(o, "display_name", a->display_name);
		if (a->nrole > 0) {
			roles = json_object_new_array();
			for (i = 0; roles != NULL && i < a->nrole; i++)
				rc |= add_string_len(roles, a->role[i],
				    strlen(a->role[i]));
			rc |= add_member(o, "roles", roles, 0);
		}
		break;
	case ADMIN_CMD_SET:
		if (a->email != NULL)
			rc |= add_string(o, "email", a->email);
		else if (a->no_email)
			rc |= add_member(o, "email", NULL, 1);
		if (a->display_name != NULL)
			rc |= add_string(o, "display_name", a->display_name);
		else if (a->no_display_name)
			rc |= add_member(o, "display_name", NULL, 1);
		if (a->roles != NULL)
			rc |= add_member(o, "roles", split_roles(a->roles), 0);
		break;
	case ADMIN_CMD_GRANT:
	case ADMIN_CMD_REVOKE:
		rc |= add_member(o, "roles", changed_roles(cur, a->pos[1],
		    a->cmd == ADMIN_CMD_GRANT), 0);
		break;
	default:
		rc = -1;
		break;
	}
	if (rc == 0)
		s = jsonio_serialize(o, NULL);
	json_object_put(o);
	return s;
}

void
admin_write_send(struct admin_env *env, enum write_kind kind,
    const char *name, const char *body, int64_t if_version,
    struct http_response *resp)
{
	static const char *const media[WRITE__MAX] = {
		[WRITE_CREATE] = "application/json",
		[WRITE_PUT] = "application/json",
		[WRITE_PATCH] = "application/merge-patch+json",
		[WRITE_DELETE] = NULL,
	};
	struct users_ctx ctx = { .cfg = &env->cfg, .reg = env->reg };
	struct http_request req;
	char if_match[32];
	size_t plen;

	memset(&req, 0, sizeof(req));
	req.method = write_method(kind);
	req.query = "";
	req.content_type = media[kind];
	req.body_state = HTTP_BODY_OK;
	http_new_request_id(&req);
	plen = strlen("/users/") + (name != NULL ? strlen(name) : 0) + 1;
	req.body = strdup(body != NULL ? body : "");
	if ((req.path_buf = malloc(plen)) == NULL || req.body == NULL) {
		http_request_release(&req);
		resp->status = 500;
		return;
	}
	snprintf(req.path_buf, plen, "/users%s%s", name != NULL ? "/" : "",
	    name != NULL ? name : "");
	req.path = req.path_buf;
	req.body_len = req.content_length = strlen(req.body);
	if (if_version > 0) {
		snprintf(if_match, sizeof(if_match), "\"%lld\"",
		    (long long)if_version);
		req.if_match = if_match;
	}
	write_run_locally(&ctx, kind, kind == WRITE_CREATE ? NULL : name,
	    &req, resp);
	http_request_release(&req);
}

void
admin_write_report(struct admin_env *env, enum admin_cmd cmd,
    const char *name, const struct http_response *resp)
{
	struct json_object *p = NULL, *v;
	const char *type = "", *detail = "", *slug;

	if (resp->body != NULL)
		p = json_tokener_parse(resp->body);
	if (p != NULL && json_object_object_get_ex(p, "type", &v) &&
	    json_object_is_type(v, json_type_string))
		type = json_object_get_string(v);
	if (p != NULL && json_object_object_get_ex(p, "detail", &v) &&
	    json_object_is_type(v, json_type_string))
		detail = json_object_get_string(v);
	slug = strrchr(type, '/') != NULL ? strrchr(type, '/') + 1 : type;
	fprintf(env->err, "userreg: %s %s: %d %s%s%s\n", admin_cmd_name(cmd),
	    name, resp->status, slug[0] != '\0' ? slug : "error",
	    detail[0] != '\0' ? ": " : "", detail);
	if (resp->body != NULL && resp->body_len > 0)
		fprintf(env->err, "%.*s\n", (int)resp->body_len, resp->body);
	json_object_put(p);
}

static enum write_kind
kind_of(enum admin_cmd cmd)
{
	switch (cmd) {
	case ADMIN_CMD_ADD:
		return WRITE_CREATE;
	case ADMIN_CMD_DELETE:
		return WRITE_DELETE;
	default:
		return WRITE_PATCH;
	}
}

int
admin_write(struct admin_env *env, const struct admin_args *a)
{
	enum write_kind kind = kind_of(a->cmd);
	struct http_response resp;
	struct user cur, *have;
	enum reg_err rc;
	int64_t version;
	char *body = NULL;
	int tries, status = ADMIN_EXIT_FAILURE, own;

	http_response_init(&resp);
	for (tries = 0; tries < ADMIN_WRITE_TRIES; tries++) {
		have = NULL;
		version = a->if_version;
		/* The version it reads itself, as a client would GET it. */
		own = kind != WRITE_CREATE && a->if_version == 0;
		if (own || a->cmd == ADMIN_CMD_GRANT ||
		    a->cmd == ADMIN_CMD_REVOKE) {
			rc = registry_get(env->reg, a->pos[0], &cur);
			if (rc == REG_OK)
				have = &cur;
			else if (rc != REG_NOT_FOUND) {
				status = admin_registry_failed(env, "read", rc);
				goto out;
			}
			if (own && have != NULL)
				version = cur.version;
		}
		free(body);
		body = NULL;
		if (kind != WRITE_DELETE &&
		    (body = admin_write_body(a, have)) == NULL) {
			status = admin_say(env, ADMIN_EXIT_FAILURE,
			    "%s: out of memory", admin_cmd_name(a->cmd));
			goto out;
		}
		http_response_release(&resp);
		admin_write_send(env, kind, a->pos[0], body, version, &resp);
		/*
		 * Another write won between our read and our write (412), or
		 * created the user we found missing (428): read again.
		 */
		if (!own || (resp.status != 412 && resp.status != 428))
			break;
	}
	status = admin_write_exit(resp.status);
	if (status != ADMIN_EXIT_OK)
		admin_write_report(env, a->cmd, a->pos[0], &resp);
	else if (resp.body != NULL && resp.body_len > 0)
		fprintf(env->out, "%.*s\n", (int)resp.body_len, resp.body);
out:
	free(body);
	http_response_release(&resp);
	return status;
}
