/* userlist.c: GET /users, keyset pages over the canonical name. */
#include "userlist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "answer.h"
#include "jsonio.h"
#include "problem.h"
#include "user.h"

/*
 * A cursor is "u" + base64url(last canonical key of the page): opaque to
 * clients, valid forever, and correct under concurrent writes because the
 * next page starts strictly after that key whatever changed meanwhile.
 */
#define CURSOR_TAG 'u'
#define CURSOR_MAX (2 + (USER_NAME_MAX + 2) / 3 * 4)

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void
cursor_encode(const char *key, char out[CURSOR_MAX + 1])
{
	const unsigned char *k = (const unsigned char *)key;
	size_t n = strlen(key), i, o = 0;

	out[o++] = CURSOR_TAG;
	for (i = 0; i < n; i += 3) {
		unsigned v = (unsigned)k[i] << 16;
		if (i + 1 < n)
			v |= (unsigned)k[i + 1] << 8;
		if (i + 2 < n)
			v |= k[i + 2];
		out[o++] = b64[v >> 18 & 63];
		out[o++] = b64[v >> 12 & 63];
		if (i + 1 < n)
			out[o++] = b64[v >> 6 & 63];
		if (i + 2 < n)
			out[o++] = b64[v & 63];
	}
	out[o] = '\0';
}

/* Returns 0 and the key in key when c is a cursor this service issued. */
static int
cursor_decode(const char *c, size_t len, char key[USER_NAME_MAX + 1])
{
	unsigned v = 0;
	size_t i, bits = 0, o = 0;
	char canon[USER_NAME_MAX + 1];

	if (len < 2 || len > CURSOR_MAX || c[0] != CURSOR_TAG || len % 4 == 2)
		return -1;
	for (i = 1; i < len; i++) {
		const char *p = c[i] != '\0' ? strchr(b64, c[i]) : NULL;
		if (p == NULL)
			return -1;
		v = (v << 6 | (unsigned)(p - b64)) & 0xffffff;
		if ((bits += 6) >= 8) {
			bits -= 8;
			if (o >= USER_NAME_MAX)
				return -1;
			key[o++] = (char)(v >> bits & 0xff);
		}
	}
	/* Stray low bits: not a cursor this service issued. */
	if ((v & ((1u << bits) - 1)) != 0)
		return -1;
	key[o] = '\0';
	/* Canonical, valid keys only: anything else was not issued here. */
	if (user_check_name(key, o) != USER_OK)
		return -1;
	user_canonical(key, canon);
	return strcmp(canon, key) == 0 ? 0 : -1;
}

/* Percent-encodes s for a query value: unreserved characters stay. */
static void
query_encode(const char *s, char *out, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (; *s != '\0' && o + 4 < size; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == '~') {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
}

static void
answer_bad_param(struct users_ctx *ctx, const struct http_request *req,
    struct http_response *resp, const char *param, const char *detail)
{
	struct json_object *p = problem_new(PROBLEM_INVALID_QUERY,
	    ctx->cfg->base_path, req->request_id, detail);

	if (p != NULL)
		json_object_object_add(p, "parameter",
		    json_object_new_string(param));
	problem_send(resp, PROBLEM_INVALID_QUERY, p);
}

/* The list's query: limit, cursor and prefix, checked. */
struct list_query {
	size_t limit;
	char after[USER_NAME_MAX + 1];
	char prefix[USERS_PREFIX_MAX + 1];
};

static int
read_query(struct users_ctx *ctx, const struct http_request *req,
    struct http_response *resp, struct list_query *q)
{
	char buf[3 * USERS_PREFIX_MAX + 1];
	const char *v;
	size_t len, i;
	long n;

	memset(q, 0, sizeof(*q));
	q->limit = USERS_LIST_DEFAULT;
	if ((v = http_query_param(req->query, "limit", &len)) != NULL) {
		/* Digits only, any number of them; the value saturates. */
		q->limit = 0;
		for (i = 0; i < len; i++) {
			if (v[i] < '0' || v[i] > '9')
				break;
			if (q->limit <= USERS_LIST_MAX)
				q->limit = q->limit * 10 + (size_t)(v[i] - '0');
		}
		if (len == 0 || i != len || q->limit < 1 ||
		    q->limit > USERS_LIST_MAX) {
			answer_bad_param(ctx, req, resp, "limit",
			    "limit must be a whole number from 1 to 200");
			return -1;
		}
	}
	if ((v = http_query_param(req->query, "cursor", &len)) != NULL &&
	    cursor_decode(v, len, q->after) != 0) {
		answer_bad_param(ctx, req, resp, "cursor",
		    "cursor must be a value from a next link");
		return -1;
	}
	if ((v = http_query_param(req->query, "prefix", &len)) != NULL) {
		if (len >= sizeof(buf) ||
		    (n = http_percent_decode(v, len, buf, 1)) < 0 ||
		    (size_t)n > USERS_PREFIX_MAX) {
			answer_bad_param(ctx, req, resp, "prefix",
			    "prefix must be at most 64 characters, "
			    "percent-encoded");
			return -1;
		}
		/* Case-insensitive: compare against canonical keys. */
		for (i = 0; i < (size_t)n; i++)
			q->prefix[i] = buf[i] >= 'A' && buf[i] <= 'Z' ?
			    (char)(buf[i] - 'A' + 'a') : buf[i];
		q->prefix[n] = '\0';
	}
	return 0;
}

void
userlist_page(struct users_ctx *ctx, const struct http_request *req,
    struct http_response *resp)
{
	struct list_query q;
	struct user *users = NULL;
	struct json_object *body = NULL, *items;
	char next[CONFIG_BASE_PATH_MAX + 3 * USERS_PREFIX_MAX + CURSOR_MAX +
	    64];
	char cursor[CURSOR_MAX + 1], prefix[3 * USERS_PREFIX_MAX + 1];
	char key[USER_NAME_MAX + 1];
	size_t n = 0, i;
	int more = 0;
	enum reg_err rc;

	if (read_query(ctx, req, resp, &q) != 0)
		return;
	if ((users = calloc(q.limit, sizeof(*users))) == NULL) {
		problem_answer(resp, PROBLEM_INTERNAL_ERROR,
		    ctx->cfg->base_path, req->request_id, NULL);
		return;
	}
	rc = registry_list(ctx->reg, q.after, q.prefix, q.limit, users, &n,
	    &more);
	if (rc != REG_OK) {
		answer_registry_error(ctx, req, resp, rc);
		goto out;
	}
	body = json_object_new_object();
	items = json_object_new_array_ext((int)n);
	for (i = 0; i < n; i++)
		json_object_array_add(items, jsonio_user(&users[i]));
	json_object_object_add(body, "items", items);
	if (more && n > 0) {
		user_canonical(users[n - 1].username, key);
		cursor_encode(key, cursor);
		query_encode(q.prefix, prefix, sizeof(prefix));
		snprintf(next, sizeof(next), "%susers?limit=%zu&cursor=%s%s%s",
		    ctx->cfg->base_path, q.limit, cursor,
		    q.prefix[0] != '\0' ? "&prefix=" : "", prefix);
		json_object_object_add(body, "next",
		    json_object_new_string(next));
		http_add_header(resp, "Link", "<%s>; rel=\"next\"", next);
	} else {
		json_object_object_add(body, "next", NULL);
	}
	if (http_set_json(resp, 200, "application/json", body) != 0)
		problem_answer(resp, PROBLEM_INTERNAL_ERROR,
		    ctx->cfg->base_path, req->request_id, NULL);
	http_add_header(resp, "Cache-Control", "private, no-cache");
out:
	json_object_put(body);
	free(users);
}
