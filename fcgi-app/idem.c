/* idem.c: Idempotency-Key on POST: find a key's answer, store a new one. */
#include "idem.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "metrics.h"

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

void
idem_init(struct idem *idem, const struct config *cfg,
    const struct http_request *req)
{
	memset(idem, 0, sizeof(*idem));
	/*
	 * A cut body is not the request the key names: never replayed, never
	 * stored (API.md), so the client's whole retry runs.
	 */
	if (req->body_state == HTTP_BODY_TRUNCATED ||
	    req->idempotency_key == NULL ||
	    key_parse(req->idempotency_key, idem->key) != 0)
		return;
	idem->active = 1;
	/*
	 * Keys are per principal; global when access is open (API.md). The
	 * principal is hashed: a name of any length is its own scope.
	 */
	if (cfg->access != CONFIG_ACCESS_OPEN && req->remote_user != NULL &&
	    req->remote_user[0] != '\0')
		sha256_hex(req->remote_user, strlen(req->remote_user),
		    idem->scope);
	/* "The same body" means the same bytes. */
	sha256_hex(req->body, req->body_len, idem->fingerprint);
}

enum reg_err
idem_lookup(const struct idem *idem, struct registry *reg,
    struct http_response *resp)
{
	struct reg_idem rec;
	enum reg_err rc;

	rc = registry_idem_get(reg, idem->scope, idem->key, idem->fingerprint,
	    (int64_t)time(NULL), &rec);
	if (rc != REG_IDEM_DONE)
		return rc;
	if (http_response_decode(rec.response, rec.response_len, rec.status,
	    resp) != 0) {
		http_response_release(resp);
		log_error("stored answer of idempotency key '%s' is "
		    "unreadable", idem->key);
		rc = REG_ERROR;
	} else {
		http_add_header(resp, "Idempotent-Replayed", "true");
		metrics_replay();
	}
	registry_idem_release(&rec);
	return rc;
}

enum reg_err
idem_store(const struct idem *idem, struct registry *reg, int64_t ttl_s,
    const struct http_response *resp)
{
	enum reg_err rc;
	char *buf;
	size_t len;

	if (!idem->active || resp->status >= 500)
		return REG_OK;
	if ((buf = http_response_encode(resp, &len)) == NULL)
		return REG_ERROR;
	rc = registry_idem_put(reg, idem->scope, idem->key, idem->fingerprint,
	    resp->status, buf, len, (int64_t)time(NULL), ttl_s);
	free(buf);
	return rc;
}
