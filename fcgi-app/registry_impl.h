/* registry_impl.h: what a registry backend implements, for registry*.c only. */
#ifndef USERREG_REGISTRY_IMPL_H
#define USERREG_REGISTRY_IMPL_H

#include "registry.h"

/*
 * registry.c holds the rules every backend shares (argument checks, the
 * revision advanced with each write, the last-admin rule, savepoints that
 * make one write all-or-nothing); a backend only stores and finds rows.
 * Handlers never include this header.
 */

/* Bytes of the comma-joined roles column, with its NUL. */
#define REG_ROLES_TEXT_MAX (USER_ROLES_MAX * (USER_ROLE_MAX + 1))

/* Savepoints open at once at most (the writer's, a write's own). */
#define REG_SAVEPOINTS_MAX 8

/*
 * What a write transaction changes in the registry's meta rows, kept in
 * memory and stored once by the commit: each write used to update the
 * revision row (and a trigger the users count) on its own, the dearest
 * statements of a small write, and in PostgreSQL one round trip more.
 */
struct reg_meta {
	int loaded;		/* revision read, under the write lock */
	int64_t revision;	/* the revision now, with this txn's writes */
	int64_t count_delta;	/* users inserted less deleted */
	int dirty;		/* revision or count changed */
};

/* The kind of transaction open on a handle. */
enum reg_txn { REG_TXN_NONE = 0, REG_TXN_READ, REG_TXN_WRITE };

/* One user as a row: what registry.c hands a backend to store. */
struct reg_row {
	const char *key;		/* canonical (lowercased) username */
	const struct user *u;		/* username as created, email, name */
	const char *email_key;		/* lowercased email, "" when none */
	const char *roles;		/* sorted, comma-joined, "" for none */
	int admin;			/* roles hold "admin" */
	int64_t version;
	int64_t created_at;
	int64_t updated_at;
};

/*
 * A backend's primitive operations. Each returns REG_OK or an error and
 * records the backend's reason with reg_fail_msg(). Row operations run
 * inside a transaction opened by begin(); registry.c checks that before
 * calling them.
 */
struct registry_ops {
	const char *name;
	void (*close)(struct registry *reg);
	enum reg_err (*refresh)(struct registry *reg);
	int (*moved)(const struct registry *reg);
	enum reg_err (*maintain)(struct registry *reg);
	/*
	 * A write's begin may fill reg->meta (loaded = 1) when it reads the
	 * revision anyway; otherwise registry.c reads it with revision().
	 */
	enum reg_err (*begin)(struct registry *reg, enum reg_txn kind);
	/* Stores m (the revision and count change) first when m is given. */
	enum reg_err (*commit)(struct registry *reg, const struct reg_meta *m);
	void (*rollback)(struct registry *reg);
	int (*in_transaction)(const struct registry *reg);
	/* Nested savepoints; end() keeps (1) or undoes (0), then closes. */
	enum reg_err (*savepoint)(struct registry *reg);
	enum reg_err (*savepoint_end)(struct registry *reg, int keep);
	/* The stored revision counter and users count. */
	enum reg_err (*revision)(struct registry *reg, int64_t *v);
	enum reg_err (*count)(struct registry *reg, int64_t *n);
	/* REG_OK with *out filled, or REG_NOT_FOUND. */
	enum reg_err (*get)(struct registry *reg, const char *key,
	    struct user *out);
	/* REG_OK, REG_EXISTS (key) or REG_EMAIL_TAKEN; nothing else known. */
	enum reg_err (*insert)(struct registry *reg, const struct reg_row *r);
	/*
	 * Replaces the row of r->key whose version is expected with r
	 * (created_at kept; its value in *created_at): REG_OK,
	 * REG_NOT_FOUND (no such row at that version), REG_EMAIL_TAKEN.
	 */
	enum reg_err (*update)(struct registry *reg, const struct reg_row *r,
	    int64_t expected, int64_t *created_at);
	/* Deletes key at version expected: REG_OK (*was_admin set) or
	 * REG_NOT_FOUND. */
	enum reg_err (*delete)(struct registry *reg, const char *key,
	    int64_t expected, int *was_admin);
	/* *found = 1 when a user other than key holds "admin". */
	enum reg_err (*other_admin)(struct registry *reg, const char *key,
	    int *found);
	enum reg_err (*list)(struct registry *reg, const char *after,
	    const char *prefix, size_t limit, struct user *out, size_t *n,
	    int *more);
	/* REG_NOT_FOUND, or REG_OK with rec filled (fingerprint included). */
	enum reg_err (*idem_get)(struct registry *reg, const char *scope,
	    const char *key, int64_t now, struct reg_idem *rec);
	enum reg_err (*idem_put)(struct registry *reg, const char *scope,
	    const char *key, const char *fingerprint, int status,
	    const char *response, size_t len, int64_t expires_at);
	enum reg_err (*idem_purge)(struct registry *reg, int64_t now,
	    int batch);
	enum reg_err (*idem_scan)(struct registry *reg, registry_idem_fn *fn,
	    void *arg);
	enum reg_err (*integrity)(struct registry *reg);
	enum reg_err (*backup)(struct registry *reg, const char *dest);
};

/* The part of every handle registry.c knows; backends embed it first. */
struct registry {
	const struct registry_ops *ops;
	char *location;			/* as opened: a file's path or a URI */
	int busy_timeout_ms;
	unsigned flags;
	enum reg_txn txn;		/* what begin() opened */
	double txn_started;		/* when, for metrics */
	struct reg_meta meta;		/* of the open write transaction */
	struct reg_meta saved[REG_SAVEPOINTS_MAX];	/* at each savepoint */
	int nsaved;
	char errmsg[REG_ERRMSG_SIZE];	/* last failure, for registry_errmsg */
	int no_wait;			/* registry_try_begin() under way */
	double lock_wait_seconds;	/* waited for locks, in total */
	uint64_t lock_waits;		/* how many waits */
};

/*
 * For a backend's constructor: a zeroed handle of size bytes, struct
 * registry first, with the base set and location copied; or NULL with
 * *err and errmsg (may be NULL) set.
 */
void *reg_new(size_t size, const struct registry_ops *ops,
    const char *location, int busy_timeout_ms, unsigned flags,
    enum reg_err *err, char *errmsg);

/*
 * Ends a constructor whose opening returned rc: the handle if rc is
 * REG_OK, else NULL with rc in *err, the reason in errmsg and the handle
 * freed (reg_free()).
 */
struct registry *reg_opened(struct registry *reg, enum reg_err rc,
    enum reg_err *err, char *errmsg);

/* Frees a handle reg_new() made, once its backend let go of the rest. */
void reg_free(struct registry *reg);

/*
 * The backends' constructors: each returns a handle with base filled, or
 * NULL with *err and errmsg set (errmsg may be NULL).
 */
struct registry *registry_sqlite_open(const char *path, int busy_timeout_ms,
    unsigned flags, enum reg_err *err, char *errmsg);
struct registry *registry_pg_open(const char *uri, int busy_timeout_ms,
    unsigned flags, enum reg_err *err, char *errmsg);

/* Records msg (printf format) as the handle's reason; returns err. */
enum reg_err reg_fail_msg(struct registry *reg, enum reg_err err,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * Fills out from a stored row's text columns, checking every field
 * against its limit (a row that would not round-trip is REG_ERROR).
 * email and display may be NULL for unset.
 */
enum reg_err reg_row_to_user(struct registry *reg, const char *username,
    const char *email, const char *display, const char *roles,
    int64_t version, int64_t created_at, int64_t updated_at,
    struct user *out);

/* Writes the ASCII-lowercased text into key (room for max + 1 bytes). */
size_t reg_lowercase(const char *text, char *key, size_t max);

/* Adds seconds to the handle's lock-wait totals. */
void reg_note_lock_wait(struct registry *reg, double seconds);

#endif
