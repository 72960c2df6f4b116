/* idem.h: Idempotency-Key on POST: find a key's answer, store a new one. */
#ifndef USERREG_IDEM_H
#define USERREG_IDEM_H

#include "config.h"
#include "http.h"
#include "registry.h"
#include "sha256.h"

/*
 * A key's record is written in the transaction of the write it answers,
 * and writes are serialized under the registry's lock: a request either
 * finds the key's final answer or runs alone, so no key is ever seen
 * "in flight" and nothing needs a lease.
 */

/* One POST's Idempotency-Key, read from its headers and body. */
struct idem {
	int active;			/* the request carries a valid key */
	char scope[SHA256_HEX_SIZE];	/* "" or the principal's SHA-256 */
	char key[REG_IDEM_KEY_MAX + 1];
	char fingerprint[SHA256_HEX_SIZE];	/* SHA-256 of the body bytes */
};

/*
 * Returns 1 if header is a valid Idempotency-Key: 1-255 visible ASCII
 * characters, bare, or inside double quotes as an RFC 8941 string.
 */
int idem_key_valid(const char *header);

/*
 * Reads req's key into idem: active when the request has a valid key
 * (step 3 refused invalid ones), scoped to REMOTE_USER unless access is
 * open (API.md), fingerprinted by the body's bytes.
 */
void idem_init(struct idem *idem, const struct config *cfg,
    const struct http_request *req);

/*
 * Step 4: looks up the key's stored answer. REG_IDEM_DONE: resp
 * (initialized) holds the replay with Idempotent-Replayed: true.
 * REG_IDEM_MISMATCH: the key answered another body (the caller answers
 * 422). REG_NOT_FOUND: run the request. Or a registry error.
 */
enum reg_err idem_lookup(const struct idem *idem, struct registry *reg,
    struct http_response *resp);

/*
 * Inside the write transaction that produced resp, stores it as the
 * key's answer for ttl_s seconds when it is final (below 500). Returns
 * REG_OK (also when there is nothing to store) or an error, upon which
 * the caller must not commit.
 */
enum reg_err idem_store(const struct idem *idem, struct registry *reg,
    int64_t ttl_s, const struct http_response *resp);

#endif
