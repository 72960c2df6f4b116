/* registry.h: the user registry, one SQLite file shared by every process. */
#ifndef USERREG_REGISTRY_H
#define USERREG_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "user.h"

/*
 * The registry knows users, revisions and idempotency records; it knows
 * nothing of HTTP or FastCGI. Every write happens inside a transaction
 * taken with registry_begin(), which holds the registry's write lock
 * (SQLite BEGIN IMMEDIATE) until registry_commit() or registry_rollback():
 * whatever a caller reads with registry_get() between the two cannot
 * change before the commit, so check-then-write is a compare-and-swap.
 * Another backend can implement this same interface.
 */

/* Outcome of a registry call; zero is success. */
enum reg_err {
	REG_OK = 0,
	REG_NOT_FOUND,		/* no such user (or idempotency record) */
	REG_EXISTS,		/* the canonical username is taken */
	REG_EMAIL_TAKEN,	/* the canonical email is taken by another user */
	REG_LAST_ADMIN,		/* the write would leave no user with "admin" */
	REG_BUSY,		/* the lock wait passed busy_timeout_ms */
	REG_UNAVAILABLE,	/* disk full, read-only, I/O error: retry later */
	REG_IDEM_DONE,		/* idempotency key has a stored response */
	REG_IDEM_IN_FLIGHT,	/* idempotency key claimed by a running request */
	REG_IDEM_MISMATCH,	/* idempotency key used with another fingerprint */
	REG_ERROR,		/* anything else (misuse, corruption, no memory) */
	REG_ERR__MAX
};

/* Limits enforced here; each has a unit test. */
#define REG_LIST_MAX 200		/* users one registry_list() returns */
#define REG_IDEM_KEY_MAX 255		/* bytes of an idempotency key */
#define REG_IDEM_SCOPE_MAX 255		/* bytes of an idempotency scope */
#define REG_IDEM_FINGERPRINT_MAX 64	/* bytes of a request fingerprint */
#define REG_IDEM_PURGE_BATCH 64		/* expired records purged per claim */

struct registry;

/* Returns a short lowercase phrase for err, for logs. */
const char *registry_err_str(enum reg_err err);

/*
 * Opens (creating if needed) the registry file at path: WAL journal,
 * synchronous=FULL, busy timeout busy_timeout_ms, schema created or
 * checked. Returns NULL on failure and, if err is not NULL, stores why
 * there. The handle belongs to the calling process: open it after fork().
 * Free with registry_close().
 */
struct registry *registry_open(const char *path, int busy_timeout_ms,
    enum reg_err *err);

/* Finalizes every statement and closes the handle; NULL is a no-op. */
void registry_close(struct registry *reg);

/*
 * Returns the last SQLite error text for logs, valid until the next call
 * on reg. Never send it to a client.
 */
const char *registry_errmsg(const struct registry *reg);

/*
 * Starts a write transaction (BEGIN IMMEDIATE). Returns REG_OK, REG_BUSY
 * after busy_timeout_ms, REG_UNAVAILABLE or REG_ERROR. Transactions do not
 * nest.
 */
enum reg_err registry_begin(struct registry *reg);

/*
 * Commits the open transaction: on REG_OK every write in it is durable
 * (fsynced). On failure the transaction is rolled back.
 */
enum reg_err registry_commit(struct registry *reg);

/* Rolls back the open transaction, if any; safe to call when none is. */
void registry_rollback(struct registry *reg);

/*
 * Reads the user whose canonical key matches name (any case) into out.
 * Works inside or outside a transaction. Returns REG_OK, REG_NOT_FOUND,
 * REG_BUSY, REG_UNAVAILABLE or REG_ERROR.
 */
enum reg_err registry_get(struct registry *reg, const char *name,
    struct user *out);

/*
 * Inside a transaction, inserts u (fields already valid, roles sorted).
 * Advances the revision counter and sets u->version, u->created_at and
 * u->updated_at. Returns REG_OK, REG_EXISTS (canonical name taken),
 * REG_EMAIL_TAKEN, or an error; on failure nothing was written and the
 * transaction stays open.
 */
enum reg_err registry_insert(struct registry *reg, struct user *u);

/*
 * Inside a transaction, replaces the writable members of the user cur
 * (as just read with registry_get() in this transaction) with those of
 * next, whose canonical name must equal cur's. Advances the revision and
 * sets next->version, next->updated_at, next->created_at. Returns REG_OK,
 * REG_EMAIL_TAKEN, REG_LAST_ADMIN (cur holds "admin", next does not, and
 * no other user does), REG_NOT_FOUND, or an error; on failure nothing was
 * written and the transaction stays open.
 */
enum reg_err registry_update(struct registry *reg, const struct user *cur,
    struct user *next);

/*
 * Inside a transaction, deletes the user cur and advances the revision.
 * Returns REG_OK, REG_LAST_ADMIN, REG_NOT_FOUND, or an error.
 */
enum reg_err registry_delete(struct registry *reg, const struct user *cur);

/*
 * Lists up to limit (1..REG_LIST_MAX) users in byte order of canonical key,
 * starting strictly after the canonical key after (NULL or "" for the
 * start), keeping only keys that begin with prefix (NULL or "" for all;
 * prefix is compared literally against the canonical key, so pass it
 * lowercased). One indexed range scan. Stores the users in out (room for
 * limit) and their count in *n; *more is set to 1 when at least one further
 * user matches. Returns REG_OK or an error.
 */
enum reg_err registry_list(struct registry *reg, const char *after,
    const char *prefix, size_t limit, struct user *out, size_t *n,
    int *more);

/* Returns the current revision (0 for a new registry) in *revision. */
enum reg_err registry_revision(struct registry *reg, int64_t *revision);

/* Runs a trivial read to prove the registry answers: REG_OK or an error. */
enum reg_err registry_ping(struct registry *reg);

/*
 * A stored idempotent response: the HTTP layer decides what the bytes
 * mean. response is owned by the record; release it with
 * registry_idem_release().
 */
struct reg_idem {
	int status;
	char *response;
	size_t response_len;
};

/* Frees what registry_idem_claim() stored in rec; rec itself stays. */
void registry_idem_release(struct reg_idem *rec);

/*
 * In its own write transaction: purges up to REG_IDEM_PURGE_BATCH records
 * that expired before now, then looks up (scope, key).
 * - None, or an in-flight claim older than lease_s seconds (its owner
 *   died): claims it for this request with fingerprint, expiring at
 *   now + ttl_s, and returns REG_OK.
 * - A stored response with the same fingerprint: fills rec, returns
 *   REG_IDEM_DONE.
 * - Another fingerprint: REG_IDEM_MISMATCH.
 * - A live claim with the same fingerprint: REG_IDEM_IN_FLIGHT.
 * Or REG_BUSY, REG_UNAVAILABLE, REG_ERROR. Must not be called inside an
 * open transaction.
 */
enum reg_err registry_idem_claim(struct registry *reg, const char *scope,
    const char *key, const char *fingerprint, int64_t now, int64_t ttl_s,
    int64_t lease_s, struct reg_idem *rec);

/*
 * Inside a transaction (the one that wrote the user), stores the final
 * response for the claim (scope, key) that registry_idem_claim() made at
 * claimed_at (its now): a claim taken over since then is not touched.
 * Returns REG_OK, REG_NOT_FOUND if that claim is gone, or an error.
 */
enum reg_err registry_idem_store(struct registry *reg, const char *scope,
    const char *key, int64_t claimed_at, int status, const char *response,
    size_t len);

/*
 * Drops the claim (scope, key) made at claimed_at if it is still in
 * flight, in its own transaction: used when the request ends in a result
 * that is not stored (5xx). Another request's claim on the same key is
 * left alone. Returns REG_OK (also when there was nothing to drop) or an
 * error.
 */
enum reg_err registry_idem_abandon(struct registry *reg, const char *scope,
    const char *key, int64_t claimed_at);

#endif
