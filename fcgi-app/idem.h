/* idem.h: Idempotency-Key on POST: claim a key, replay, store the answer. */
#ifndef USERREG_IDEM_H
#define USERREG_IDEM_H

#include "http.h"
#include "registry.h"
#include "sha256.h"
#include "users.h"

/* One POST's idempotency state, from idem_begin() to idem_finish(). */
struct idem {
	int claimed;		/* this request holds the key's claim */
	int stored;		/* its answer is committed (caller sets it) */
	int64_t claimed_at;	/* names this request's claim to the registry */
	char scope[SHA256_HEX_SIZE];	/* "" or the principal's SHA-256 */
	char key[REG_IDEM_KEY_MAX + 1];
};

enum idem_result {
	IDEM_PROCEED = 0,	/* run the request (a claim may be held) */
	IDEM_ANSWERED		/* resp holds a replay, 409, 422 or 503 */
};

/*
 * Returns 1 if header is a valid Idempotency-Key: 1-255 visible ASCII
 * characters, bare, or inside double quotes as an RFC 8941 string.
 */
int idem_key_valid(const char *header);

/*
 * Returns how long (seconds) a claim lasts before another request may
 * take over the key: USERS_IDEM_LEASE plus three lock waits.
 */
int64_t idem_lease(const struct config *cfg);

/*
 * Step 4 of the order of checks. Without an Idempotency-Key header:
 * IDEM_PROCEED with nothing claimed. Otherwise claims the key for this
 * request's body (scoped to REMOTE_USER, or global under access = open),
 * or answers: the stored response replayed with Idempotent-Replayed: true,
 * 409 idempotency-key-in-use + Retry-After while another request holds
 * it, 422 idempotency-key-reused for another body, 503 when the registry
 * cannot tell.
 */
enum idem_result idem_begin(struct idem *idem, struct users_ctx *ctx,
    const struct http_request *req, struct http_response *resp);

/*
 * Inside the transaction that wrote the user: stores resp as the key's
 * answer when this request holds a claim and resp is not a 5xx. The
 * caller sets idem->stored once that transaction commits.
 */
enum reg_err idem_store_locked(struct idem *idem, struct users_ctx *ctx,
    const struct http_response *resp);

/*
 * Ends the claim: an answer not yet stored is stored in a transaction of
 * its own when it is final (2xx, 4xx); a 5xx drops the claim so a retry
 * runs again. Failures are logged; resp is not changed.
 */
void idem_finish(struct idem *idem, struct users_ctx *ctx,
    const struct http_request *req, const struct http_response *resp);

/*
 * Encodes resp (Content-Type, headers, body; not X-Request-Id) as the
 * bytes a replay restores. Returns a new buffer (free()) and its length
 * in *len, or NULL when out of memory.
 */
char *idem_encode(const struct http_response *resp, size_t *len);

/*
 * Restores into resp (initialized) what idem_encode() made, with status.
 * Returns 0, or -1 for bytes it did not make.
 */
int idem_decode(const char *buf, size_t len, int status,
    struct http_response *resp);

#endif
