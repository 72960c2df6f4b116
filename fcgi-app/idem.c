/* idem.c: Idempotency-Key on POST: claim a key, replay, store the answer. */
#include "idem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "log.h"
#include "problem.h"
#include "sha256.h"

/* Headers a stored answer may carry, as the static names replay needs. */
static const char *const replay_headers[] = {
	"Location", "Content-Location", "ETag", "Cache-Control", "Allow",
	"Accept", "Accept-Patch", "Link", NULL
};
static const char *const replay_types[] = {
	"application/json", "application/problem+json", NULL
};

/*
 * Unquotes an Idempotency-Key into key (room for REG_IDEM_KEY_MAX + 1).
 * Returns 0, or -1 when the header is not a valid key.
 */
static int
key_parse(const char *h, char *key)
{
	size_t len = strlen(h), i, o = 0;

	/* A leading quote starts an sf-string, which must also end. */
	if (h[0] == '"') {
		if (len < 2 || h[len - 1] != '"')
			return -1;
		/* RFC 8941 sf-string: printable ASCII, \" and \\ escaped. */
		for (i = 1; i < len - 1; i++) {
			char c = h[i];
			if (c == '\\') {
				if (i + 1 >= len - 1 ||
				    (h[i + 1] != '"' && h[i + 1] != '\\'))
					return -1;
				c = h[++i];
			} else if (c == '"' || c < 0x20 || c > 0x7e) {
				return -1;
			}
			/* The key itself must be visible ASCII. */
			if (c == ' ' || o >= REG_IDEM_KEY_MAX)
				return -1;
			key[o++] = c;
		}
	} else {
		for (i = 0; i < len; i++) {
			if (h[i] < 0x21 || h[i] > 0x7e || o >= REG_IDEM_KEY_MAX)
				return -1;
			key[o++] = h[i];
		}
	}
	key[o] = '\0';
	return o > 0 ? 0 : -1;
}

int
idem_key_valid(const char *header)
{
	char key[REG_IDEM_KEY_MAX + 1];

	return key_parse(header, key) == 0;
}

char *
idem_encode(const struct http_response *resp, size_t *len)
{
	size_t n = 0, i;
	char *buf, *p;

	n += strlen("Content-Type: \n") +
	    (resp->content_type != NULL ? strlen(resp->content_type) : 0);
	for (i = 0; i < resp->nheaders; i++)
		n += strlen(resp->headers[i].name) + 3 +
		    strlen(resp->headers[i].value);
	n += 1 + resp->body_len;
	if ((buf = malloc(n + 1)) == NULL)
		return NULL;
	p = buf;
	if (resp->content_type != NULL)
		p += sprintf(p, "Content-Type: %s\n", resp->content_type);
	for (i = 0; i < resp->nheaders; i++)
		p += sprintf(p, "%s: %s\n", resp->headers[i].name,
		    resp->headers[i].value);
	*p++ = '\n';
	if (resp->body_len > 0)
		memcpy(p, resp->body, resp->body_len);
	p += resp->body_len;
	*p = '\0';
	*len = (size_t)(p - buf);
	return buf;
}

static const char *
known(const char *const *list, const char *s, size_t n)
{
	for (; *list != NULL; list++)
		if (strlen(*list) == n && strncasecmp(*list, s, n) == 0)
			return *list;
	return NULL;
}

int
idem_decode(const char *buf, size_t len, int status,
    struct http_response *resp)
{
	const char *p = buf, *end = buf + len, *nl, *colon, *name;

	resp->status = status;
	while (p < end && *p != '\n') {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL ||
		    (colon = memchr(p, ':', (size_t)(nl - p))) == NULL ||
		    colon + 2 > nl)
			return -1;
		if ((size_t)(colon - p) == strlen("Content-Type") &&
		    strncasecmp(p, "Content-Type", 12) == 0) {
			resp->content_type = known(replay_types, colon + 2,
			    (size_t)(nl - colon - 2));
		} else if ((name = known(replay_headers, p,
		    (size_t)(colon - p))) != NULL) {
			if (http_add_header(resp, name, "%.*s",
			    (int)(nl - colon - 2), colon + 2) != 0)
				return -1;
		}
		p = nl + 1;
	}
	if (p >= end)
		return -1;
	p++;
	if ((resp->body_len = (size_t)(end - p)) > 0) {
		if ((resp->body = malloc(resp->body_len + 1)) == NULL)
			return -1;
		memcpy(resp->body, p, resp->body_len);
		resp->body[resp->body_len] = '\0';
	}
	return 0;
}

/*
 * A claim outlives any request that holds it, or a slow request could
 * find its key reclaimed: a POST waits for the registry's lock at most
 * three times (claim, create, store), each up to busy_timeout_ms.
 */
int64_t
idem_lease(const struct config *cfg)
{
	return USERS_IDEM_LEASE + 3 * ((int64_t)cfg->busy_timeout_ms + 999) /
	    1000;
}

enum idem_result
idem_begin(struct idem *idem, struct users_ctx *ctx,
    const struct http_request *req, struct http_response *resp)
{
	const char *base = ctx->cfg->base_path;
	char fp[SHA256_HEX_SIZE];
	struct reg_idem rec;
	enum reg_err rc;

	memset(idem, 0, sizeof(*idem));
	if (req->idempotency_key == NULL ||
	    key_parse(req->idempotency_key, idem->key) != 0)
		return IDEM_PROCEED;	/* none; step 3 refused bad keys */
	/*
	 * Keys are per principal; global when access is open (API.md). The
	 * principal is hashed: a name of any length is its own scope.
	 */
	if (ctx->cfg->access != CONFIG_ACCESS_OPEN &&
	    req->remote_user != NULL && req->remote_user[0] != '\0')
		sha256_hex(req->remote_user, strlen(req->remote_user),
		    idem->scope);
	/* "The same body" means the same bytes. */
	sha256_hex(req->body, req->body_len, fp);
	memset(&rec, 0, sizeof(rec));
	idem->claimed_at = (int64_t)time(NULL);
	rc = registry_idem_claim(ctx->reg, idem->scope, idem->key, fp,
	    idem->claimed_at, ctx->cfg->idempotency_ttl,
	    idem_lease(ctx->cfg), &rec);
	switch (rc) {
	case REG_OK:
		idem->claimed = 1;
		return IDEM_PROCEED;
	case REG_IDEM_DONE:
		if (idem_decode(rec.response, rec.response_len, rec.status,
		    resp) != 0) {
			http_response_release(resp);
			problem_answer(resp, PROBLEM_INTERNAL_ERROR, base,
			    req->request_id, NULL);
			log_error("stored response for idempotency key "
			    "unreadable in request %s", req->request_id);
		} else {
			http_add_header(resp, "Idempotent-Replayed", "true");
		}
		registry_idem_release(&rec);
		return IDEM_ANSWERED;
	case REG_IDEM_IN_FLIGHT:
		problem_answer(resp, PROBLEM_IDEM_IN_USE, base,
		    req->request_id, "a request with this Idempotency-Key is "
		    "still in progress; retry after it ends");
		http_add_header(resp, "Retry-After", "%d", USERS_RETRY_AFTER);
		return IDEM_ANSWERED;
	case REG_IDEM_MISMATCH:
		problem_answer(resp, PROBLEM_IDEM_REUSED, base,
		    req->request_id, "this Idempotency-Key was used with a "
		    "different request body; use a new key");
		return IDEM_ANSWERED;
	default:
		users_registry_error(ctx, req, resp, rc);
		return IDEM_ANSWERED;
	}
}

enum reg_err
idem_store_locked(struct idem *idem, struct users_ctx *ctx,
    const struct http_response *resp)
{
	enum reg_err rc;
	char *buf;
	size_t len;

	if (!idem->claimed || resp->status >= 500)
		return REG_OK;
	if ((buf = idem_encode(resp, &len)) == NULL)
		return REG_ERROR;
	rc = registry_idem_store(ctx->reg, idem->scope, idem->key,
	    idem->claimed_at, resp->status, buf, len);
	free(buf);
	return rc;
}

void
idem_finish(struct idem *idem, struct users_ctx *ctx,
    const struct http_request *req, const struct http_response *resp)
{
	enum reg_err rc = REG_OK;

	if (!idem->claimed || idem->stored)
		return;
	if (resp->status < 500) {
		if ((rc = registry_begin(ctx->reg)) == REG_OK &&
		    (rc = idem_store_locked(idem, ctx, resp)) == REG_OK &&
		    (rc = registry_commit(ctx->reg)) == REG_OK) {
			idem->stored = 1;
			return;
		}
		registry_rollback(ctx->reg);
	}
	/* Not stored: free the key so the client's retry runs afresh. */
	if (rc != REG_OK)
		log_error("registry error '%s' storing idempotent answer in "
		    "request %s", registry_err_str(rc), req->request_id);
	if ((rc = registry_idem_abandon(ctx->reg, idem->scope, idem->key,
	    idem->claimed_at)) != REG_OK)
		log_error("registry error '%s' releasing idempotency key in "
		    "request %s", registry_err_str(rc), req->request_id);
}
