/* registry.h: the user registry, one interface over its storage backends. */
#ifndef USERREG_REGISTRY_H
#define USERREG_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "user.h"

/*
 * The registry knows users, revisions and idempotency records; it knows
 * nothing of HTTP or FastCGI. Two backends implement it: one SQLite file
 * shared by every process of a host (the default), and PostgreSQL for
 * several hosts (registry_pg.c). Callers never see which one runs.
 *
 * Every write happens inside a transaction taken with registry_begin(),
 * which holds the registry's write lock (SQLite BEGIN IMMEDIATE, a locked
 * row in PostgreSQL) until registry_commit() or registry_rollback():
 * whatever a caller reads between the two cannot change before the
 * commit, so check-then-write is a compare-and-swap. Writes are serialized
 * and the revision counter advances by one with each.
 */

/* Outcome of a registry call; zero is success. */
enum reg_err {
	REG_OK = 0,
	REG_NOT_FOUND,		/* no such user (or idempotency record) */
	REG_EXISTS,		/* the canonical username is taken */
	REG_EMAIL_TAKEN,	/* the canonical email is taken by another user */
	REG_LAST_ADMIN,		/* the write would leave no user with "admin" */
	REG_BUSY,		/* the lock wait passed busy_timeout_ms */
	REG_UNAVAILABLE,	/* disk full, read-only, moved, down: retry */
	REG_IDEM_DONE,		/* idempotency key has a stored response */
	REG_IDEM_MISMATCH,	/* idempotency key used with another fingerprint */
	REG_ERROR,		/* anything else (misuse, corruption, no memory) */
	REG_ERR__MAX
};

/* Limits enforced here; each has a unit test. */
#define REG_LIST_MAX 200		/* users one registry_list() returns */
#define REG_IDEM_KEY_MAX 255		/* bytes of an idempotency key */
#define REG_IDEM_SCOPE_MAX 255		/* bytes of an idempotency scope */
#define REG_IDEM_FINGERPRINT_MAX 64	/* bytes of a request fingerprint */
#define REG_IDEM_PURGE_BATCH 64		/* expired records purged per store */
#define REG_ERRMSG_SIZE 256		/* bytes of registry_errmsg() */

/* Flags of registry_open(). */
enum reg_open_flag {
	/* Create the registry (file and schema) when it does not exist. */
	REG_OPEN_CREATE = 1 << 0,
	/*
	 * Commits do not checkpoint SQLite's write-ahead log on their own:
	 * the caller runs registry_maintain() when it has time (the writer,
	 * after answering a batch).
	 */
	REG_OPEN_NO_AUTOCHECKPOINT = 1 << 1,
	/*
	 * A SQLite file replaced or deleted under the handle is not reopened
	 * in place by registry_refresh(): a pool restarts all its processes
	 * instead, so no process opens the new file while another still
	 * writes the old one's log, which sits at the same path.
	 */
	REG_OPEN_NO_REOPEN = 1 << 2
};

struct registry;

/* Returns a short lowercase phrase for err, for logs. */
const char *registry_err_str(enum reg_err err);

/*
 * Opens the registry at location: "postgresql://..." or "postgres://..."
 * (a libpq connection URI) for PostgreSQL, anything else is the path of
 * a SQLite file. An existing registry is opened without taking the write
 * lock when its schema is current; one of an older schema is upgraded
 * (once, under the lock). Without REG_OPEN_CREATE a missing registry is
 * REG_UNAVAILABLE, so nothing is ever created by accident. Lock waits last
 * at most busy_timeout_ms. Returns NULL on failure and, if err is not
 * NULL, stores why there; errmsg (REG_ERRMSG_SIZE bytes, or NULL) gets
 * the backend's own reason for logs. The handle belongs to the calling
 * process: open it after fork(). Free with registry_close().
 */
struct registry *registry_open(const char *location, int busy_timeout_ms,
    unsigned flags, enum reg_err *err, char *errmsg);

/* Finalizes everything and closes the handle; NULL is a no-op. */
void registry_close(struct registry *reg);

/* Returns "sqlite" or "postgresql". */
const char *registry_backend(const struct registry *reg);

/*
 * Returns the last backend error text for logs, valid until the next call
 * on reg. Never send it to a client.
 */
const char *registry_errmsg(const struct registry *reg);

/*
 * Makes sure the handle still reaches the registry before a request: a
 * SQLite file that was deleted or replaced (a restored backup) is
 * reopened at its path, a lost PostgreSQL connection is reconnected, so
 * no write ever lands where nobody will read it. Returns REG_OK, or
 * REG_UNAVAILABLE when the registry cannot be reached now (the handle
 * then refuses every call until a later refresh succeeds). Must not be
 * called inside a transaction.
 */
enum reg_err registry_refresh(struct registry *reg);

/*
 * Returns 1 when a registry_refresh() found the file at the registry's
 * path replaced or deleted since the handle opened it, 0 otherwise.
 */
int registry_moved(const struct registry *reg);

/*
 * Does deferred housekeeping outside any transaction (SQLite: checkpoints
 * the write-ahead log once it has grown past its limit). Returns REG_OK
 * or an error, which only means the work is left for a later call.
 */
enum reg_err registry_maintain(struct registry *reg);

/*
 * Starts a write transaction, holding the registry's write lock. Returns
 * REG_OK, REG_BUSY after busy_timeout_ms, REG_UNAVAILABLE or REG_ERROR.
 * Transactions do not nest (savepoints do).
 */
enum reg_err registry_begin(struct registry *reg);

/*
 * registry_begin() without waiting: REG_BUSY at once when another
 * process holds the write lock, for a caller that has a better place to
 * send its write (a worker that can hand it to the pool's writer).
 * PostgreSQL takes no lock when a transaction begins: there it is
 * registry_begin().
 */
enum reg_err registry_try_begin(struct registry *reg);

/*
 * Starts a read transaction: every read until registry_commit() or
 * registry_rollback() sees one committed (hence durable) state, and no
 * lock is taken. Writes inside it are refused.
 */
enum reg_err registry_begin_read(struct registry *reg);

/*
 * Commits the open transaction: on REG_OK every write in it is durable
 * (fsynced). On failure the transaction is rolled back. The outcome of a
 * commit the backend could not confirm is REG_UNAVAILABLE, never REG_OK.
 */
enum reg_err registry_commit(struct registry *reg);

/* Rolls back the open transaction, if any; safe to call when none is. */
void registry_rollback(struct registry *reg);

/* Returns 1 while a transaction is open, 0 otherwise. */
int registry_in_transaction(const struct registry *reg);

/*
 * Savepoints inside a write transaction, so one of several writes in it
 * can be undone alone (group commit). registry_savepoint() opens one;
 * registry_savepoint_end() keeps its writes when keep is 1 and undoes them
 * otherwise, then closes it. An error may end the whole transaction: check
 * registry_in_transaction() after each.
 */
enum reg_err registry_savepoint(struct registry *reg);
enum reg_err registry_savepoint_end(struct registry *reg, int keep);

/*
 * Reads the user whose canonical key matches name (any case) into out.
 * Works inside or outside a transaction. Returns REG_OK, REG_NOT_FOUND,
 * REG_BUSY, REG_UNAVAILABLE or REG_ERROR.
 */
enum reg_err registry_get(struct registry *reg, const char *name,
    struct user *out);

/*
 * Inside a write transaction, inserts u (fields already valid, roles
 * sorted). Advances the revision counter and sets u->version,
 * u->created_at and u->updated_at. Returns REG_OK, REG_EXISTS (canonical
 * name taken), REG_EMAIL_TAKEN, or an error; on failure nothing was
 * written and the transaction stays open unless the error ended it.
 */
enum reg_err registry_insert(struct registry *reg, struct user *u);

/*
 * Inside a write transaction, replaces the writable members of the user
 * cur (as just read with registry_get() in this transaction) with those
 * of next, whose canonical name must equal cur's. Advances the revision
 * and sets next->version, next->updated_at, next->created_at. Returns
 * REG_OK, REG_EMAIL_TAKEN, REG_LAST_ADMIN (cur holds "admin", next does
 * not, and no other user does), REG_NOT_FOUND (cur's version is no longer
 * the stored one), or an error; on failure nothing was written.
 */
enum reg_err registry_update(struct registry *reg, const struct user *cur,
    struct user *next);

/*
 * Inside a write transaction, deletes the user cur (at cur's version) and
 * advances the revision. Returns REG_OK, REG_LAST_ADMIN, REG_NOT_FOUND, or
 * an error.
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

/* Returns how many users the registry holds in *count. */
enum reg_err registry_count(struct registry *reg, int64_t *count);

/* Runs a read of the stored data to prove the registry answers. */
enum reg_err registry_ping(struct registry *reg);

/*
 * Inside a write transaction, stores u exactly as given (version and
 * timestamps kept, no revision advanced): restoring an export or moving
 * a registry between backends. Returns REG_OK, REG_EXISTS,
 * REG_EMAIL_TAKEN or an error.
 */
enum reg_err registry_load(struct registry *reg, const struct user *u);

/*
 * Inside a write transaction, raises the revision counter to revision
 * (never lowers it). Returns REG_OK or an error.
 */
enum reg_err registry_raise_revision(struct registry *reg, int64_t revision);

/*
 * Runs the backend's own consistency check (SQLite PRAGMA
 * integrity_check). Returns REG_OK when it passes; otherwise REG_ERROR
 * with the first complaint in registry_errmsg().
 */
enum reg_err registry_integrity(struct registry *reg);

/*
 * Writes a consistent copy of the registry to the SQLite file dest while
 * others keep writing (SQLite's online backup); dest must not exist.
 * Returns REG_OK or an error (REG_ERROR from a backend that cannot).
 */
enum reg_err registry_backup(struct registry *reg, const char *dest);

/*
 * A stored idempotent response: the HTTP layer decides what the bytes
 * mean. response is owned by the record; release it with
 * registry_idem_release().
 */
struct reg_idem {
	int status;
	char *response;
	size_t response_len;
	char fingerprint[REG_IDEM_FINGERPRINT_MAX + 1];
	int64_t expires_at;
};

/* Frees what registry_idem_get() stored in rec; rec itself stays. */
void registry_idem_release(struct reg_idem *rec);

/*
 * Looks up the record of (scope, key) that has not expired at now. With
 * none: REG_NOT_FOUND. Another fingerprint: REG_IDEM_MISMATCH. The same:
 * fills rec and returns REG_IDEM_DONE. Or REG_BUSY, REG_UNAVAILABLE,
 * REG_ERROR. Inside a write transaction the answer holds until commit.
 */
enum reg_err registry_idem_get(struct registry *reg, const char *scope,
    const char *key, const char *fingerprint, int64_t now,
    struct reg_idem *rec);

/*
 * Inside the write transaction that produced it, stores the final
 * response for (scope, key) with fingerprint, expiring at now + ttl_s (an
 * expired record of the key is replaced), and purges up to
 * REG_IDEM_PURGE_BATCH other expired records. Returns REG_OK or an error.
 */
enum reg_err registry_idem_put(struct registry *reg, const char *scope,
    const char *key, const char *fingerprint, int status,
    const char *response, size_t len, int64_t now, int64_t ttl_s);

/*
 * Calls fn for every stored idempotency record (expired or not) with the
 * record's scope and key, for `userreg check`; stops at the first nonzero
 * return of fn and returns REG_ERROR then. Returns REG_OK or an error.
 */
typedef int registry_idem_fn(void *arg, const char *scope, const char *key,
    const struct reg_idem *rec);
enum reg_err registry_idem_scan(struct registry *reg, registry_idem_fn *fn,
    void *arg);

/*
 * Time spent waiting for locks by this handle since it was opened, in
 * seconds, and how many waits there were (for metrics).
 */
void registry_lock_waits(const struct registry *reg, double *seconds,
    uint64_t *waits);

#endif
