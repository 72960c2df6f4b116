/* registry.c: the rules every registry backend shares, and the dispatch. */
#include "registry_impl.h"

#include "config.h"
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const err_str[REG_ERR__MAX] = {
	[REG_OK] = "success",
	[REG_NOT_FOUND] = "not found",
	[REG_EXISTS] = "username exists",
	[REG_EMAIL_TAKEN] = "email taken",
	[REG_LAST_ADMIN] = "would remove the last admin",
	[REG_BUSY] = "registry busy",
	[REG_UNAVAILABLE] = "registry unavailable",
	[REG_IDEM_DONE] = "idempotency key has a stored response",
	[REG_IDEM_MISMATCH] = "idempotency key reused with another request",
	[REG_ERROR] = "registry error",
};

const char *
registry_err_str(enum reg_err err)
{
	if ((unsigned)err >= REG_ERR__MAX)
		return "unknown registry error";
	return err_str[err];
}

enum reg_err
reg_fail_msg(struct registry *reg, enum reg_err err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reg->errmsg, sizeof(reg->errmsg), fmt, ap);
	va_end(ap);
	return err;
}

void *
reg_new(size_t size, const struct registry_ops *ops, const char *location,
    int busy_timeout_ms, unsigned flags, enum reg_err *err, char *errmsg)
{
	struct registry *reg;

	if ((reg = calloc(1, size)) == NULL ||
	    (reg->location = strdup(location)) == NULL) {
		free(reg);
		if (errmsg != NULL)
			snprintf(errmsg, REG_ERRMSG_SIZE, "out of memory");
		*err = REG_ERROR;
		return NULL;
	}
	reg->ops = ops;
	reg->busy_timeout_ms = busy_timeout_ms;
	reg->flags = flags;
	*err = REG_OK;
	return reg;
}

struct registry *
reg_opened(struct registry *reg, enum reg_err rc, enum reg_err *err,
    char *errmsg)
{
	*err = rc;
	if (rc == REG_OK)
		return reg;
	if (errmsg != NULL)
		snprintf(errmsg, REG_ERRMSG_SIZE, "%s", reg->errmsg);
	reg_free(reg);
	return NULL;
}

void
reg_free(struct registry *reg)
{
	free(reg->location);
	free(reg);
}

/* A caller broke the interface's rules: always REG_ERROR. */
static enum reg_err
misuse(struct registry *reg, const char *what)
{
	return reg_fail_msg(reg, REG_ERROR, "%s", what);
}

void
reg_note_lock_wait(struct registry *reg, double seconds)
{
	reg->lock_wait_seconds += seconds;
	reg->lock_waits++;
}

void
registry_lock_waits(const struct registry *reg, double *seconds,
    uint64_t *waits)
{
	*seconds = reg != NULL ? reg->lock_wait_seconds : 0;
	*waits = reg != NULL ? reg->lock_waits : 0;
}

size_t
reg_lowercase(const char *text, char *key, size_t max)
{
	size_t i;

	for (i = 0; i < max && text[i] != '\0'; i++)
		key[i] = (text[i] >= 'A' && text[i] <= 'Z') ?
		    (char)(text[i] - 'A' + 'a') : text[i];
	key[i] = '\0';
	return i;
}

/* Copies a stored string into dst (size bytes) if it fits; NULL is "". */
static int
text_fits(const char *s, char *dst, size_t size)
{
	size_t n;

	if (s == NULL) {
		dst[0] = '\0';
		return 0;
	}
	if ((n = strlen(s)) >= size)
		return -1;
	memcpy(dst, s, n + 1);
	return 0;
}

/* Splits the comma-joined roles text into u->roles. Returns 0 or -1. */
static int
roles_split(const char *text, struct user *u)
{
	const char *p, *end;
	size_t len;

	u->nroles = 0;
	if (text == NULL || *text == '\0')
		return 0;
	for (p = text; ; p = end + 1) {
		end = strchr(p, ',');
		len = end != NULL ? (size_t)(end - p) : strlen(p);
		if (len == 0 || len > USER_ROLE_MAX ||
		    u->nroles == USER_ROLES_MAX)
			return -1;
		memcpy(u->roles[u->nroles], p, len);
		u->roles[u->nroles][len] = '\0';
		u->nroles++;
		if (end == NULL)
			return 0;
	}
}

/* Joins u's roles with commas into buf (REG_ROLES_TEXT_MAX bytes). */
static void
roles_join(const struct user *u, char buf[REG_ROLES_TEXT_MAX])
{
	size_t i, len, off = 0;

	buf[0] = '\0';
	for (i = 0; i < u->nroles; i++) {
		len = strlen(u->roles[i]);
		if (i > 0)
			buf[off++] = ',';
		memcpy(buf + off, u->roles[i], len);
		off += len;
	}
	buf[off] = '\0';
}

enum reg_err
reg_row_to_user(struct registry *reg, const char *username,
    const char *email, const char *display, const char *roles,
    int64_t version, int64_t created_at, int64_t updated_at,
    struct user *out)
{
	memset(out, 0, sizeof(*out));
	if (username == NULL ||
	    text_fits(username, out->username, sizeof(out->username)) ||
	    out->username[0] == '\0' ||
	    text_fits(email, out->email, sizeof(out->email)) ||
	    text_fits(display, out->display_name,
	    sizeof(out->display_name)) || roles_split(roles, out) == -1)
		return misuse(reg, "stored user does not fit its limits");
	out->version = version;
	out->created_at = created_at;
	out->updated_at = updated_at;
	return REG_OK;
}

/*
 * Returns 1 if the strings of u are terminated within their buffers and
 * its roles can be joined and split back, 0 otherwise. The handlers have
 * validated the rest.
 */
static int
user_fits(const struct user *u)
{
	size_t i, len;

	len = strnlen(u->username, sizeof(u->username));
	if (len == 0 || len == sizeof(u->username) ||
	    strnlen(u->email, sizeof(u->email)) == sizeof(u->email) ||
	    strnlen(u->display_name, sizeof(u->display_name)) ==
	    sizeof(u->display_name) ||
	    u->nroles > USER_ROLES_MAX)
		return 0;
	for (i = 0; i < u->nroles; i++) {
		len = strnlen(u->roles[i], sizeof(u->roles[i]));
		if (len == 0 || len == sizeof(u->roles[i]) ||
		    memchr(u->roles[i], ',', len) != NULL)
			return 0;
	}
	return 1;
}

/* A row for u with its text columns in the caller's buffers. */
struct row_buf {
	char key[USER_NAME_MAX + 1];
	char email_key[USER_EMAIL_MAX + 1];
	char roles[REG_ROLES_TEXT_MAX];
	struct reg_row row;
};

static const struct reg_row *
row_of(const struct user *u, int64_t version, int64_t created_at,
    int64_t updated_at, struct row_buf *b)
{
	user_canonical(u->username, b->key);
	reg_lowercase(u->email, b->email_key, USER_EMAIL_MAX);
	roles_join(u, b->roles);
	b->row.key = b->key;
	b->row.u = u;
	b->row.email_key = b->email_key;
	b->row.roles = b->roles;
	b->row.admin = user_has_role(u, "admin");
	b->row.version = version;
	b->row.created_at = created_at;
	b->row.updated_at = updated_at;
	return &b->row;
}

struct registry *
registry_open(const char *location, int busy_timeout_ms, unsigned flags,
    enum reg_err *err, char *errmsg)
{
	enum reg_err rc = REG_ERROR;
	struct registry *reg;

	if (errmsg != NULL)
		errmsg[0] = '\0';
	if (location == NULL || *location == '\0' || busy_timeout_ms < 0) {
		if (errmsg != NULL)
			snprintf(errmsg, REG_ERRMSG_SIZE, "no registry named");
		if (err != NULL)
			*err = REG_ERROR;
		return NULL;
	}
	if (config_is_postgresql(location))
		reg = registry_pg_open(location, busy_timeout_ms, flags, &rc,
		    errmsg);
	else
		reg = registry_sqlite_open(location, busy_timeout_ms, flags,
		    &rc, errmsg);
	if (reg != NULL) {
		reg->busy_timeout_ms = busy_timeout_ms;
		reg->flags = flags;
		reg->errmsg[0] = '\0';
		rc = REG_OK;
	}
	if (err != NULL)
		*err = rc;
	return reg;
}

void
registry_close(struct registry *reg)
{
	if (reg != NULL)
		reg->ops->close(reg);
}

const char *
registry_backend(const struct registry *reg)
{
	return reg->ops->name;
}

const char *
registry_errmsg(const struct registry *reg)
{
	if (reg == NULL)
		return "no registry";
	return reg->errmsg[0] != '\0' ? reg->errmsg : "no error";
}

int
registry_in_transaction(const struct registry *reg)
{
	return reg->txn != REG_TXN_NONE && reg->ops->in_transaction(reg);
}

/* Inside a write transaction? An I/O error may have ended it. */
static int
in_write(const struct registry *reg)
{
	return reg->txn == REG_TXN_WRITE && reg->ops->in_transaction(reg);
}

enum reg_err
registry_refresh(struct registry *reg)
{
	if (registry_in_transaction(reg))
		return misuse(reg, "refresh inside a transaction");
	reg->txn = REG_TXN_NONE;
	return reg->ops->refresh(reg);
}

int
registry_moved(const struct registry *reg)
{
	return reg->ops->moved(reg);
}

enum reg_err
registry_maintain(struct registry *reg)
{
	if (registry_in_transaction(reg))
		return misuse(reg, "maintenance inside a transaction");
	return reg->ops->maintain(reg);
}

static enum reg_err
begin(struct registry *reg, enum reg_txn kind)
{
	enum reg_err rc;

	if (registry_in_transaction(reg))
		return misuse(reg, "transaction already open");
	reg->txn = REG_TXN_NONE;
	memset(&reg->meta, 0, sizeof(reg->meta));
	reg->nsaved = 0;
	reg->txn_started = metrics_now();
	rc = reg->ops->begin(reg, kind);
	/* Taking a write transaction is waiting for the write lock. */
	if (kind == REG_TXN_WRITE)
		metrics_lock_wait(metrics_now() - reg->txn_started);
	if (rc == REG_OK)
		reg->txn = kind;
	return rc;
}

/* Observes the end of the transaction begun at reg->txn_started. */
static void
txn_ended(struct registry *reg)
{
	memset(&reg->meta, 0, sizeof(reg->meta));
	reg->nsaved = 0;
	if (reg->txn == REG_TXN_WRITE)
		metrics_registry(METRICS_REG_WRITE,
		    metrics_now() - reg->txn_started);
	else if (reg->txn == REG_TXN_READ)
		metrics_registry(METRICS_REG_READ,
		    metrics_now() - reg->txn_started);
	reg->txn = REG_TXN_NONE;
}

enum reg_err
registry_begin(struct registry *reg)
{
	return begin(reg, REG_TXN_WRITE);
}

enum reg_err
registry_try_begin(struct registry *reg)
{
	enum reg_err rc;

	reg->no_wait = 1;
	rc = begin(reg, REG_TXN_WRITE);
	reg->no_wait = 0;
	return rc;
}

enum reg_err
registry_begin_read(struct registry *reg)
{
	return begin(reg, REG_TXN_READ);
}

enum reg_err
registry_commit(struct registry *reg)
{
	enum reg_err rc;
	double t0;

	if (!registry_in_transaction(reg)) {
		reg->txn = REG_TXN_NONE;
		return misuse(reg, "no transaction to commit");
	}
	t0 = metrics_now();
	rc = reg->ops->commit(reg, reg->txn == REG_TXN_WRITE && reg->meta.dirty ?
	    &reg->meta : NULL);
	if (reg->txn == REG_TXN_WRITE)
		metrics_registry(METRICS_REG_COMMIT, metrics_now() - t0);
	if (rc != REG_OK)
		reg->ops->rollback(reg);
	txn_ended(reg);
	return rc;
}

void
registry_rollback(struct registry *reg)
{
	if (reg == NULL)
		return;
	if (reg->txn != REG_TXN_NONE)
		reg->ops->rollback(reg);
	txn_ended(reg);
}

/* Opens a savepoint, noting the meta change so far to restore it. */
static enum reg_err
savepoint_open(struct registry *reg)
{
	enum reg_err rc;

	if (reg->nsaved == REG_SAVEPOINTS_MAX)
		return misuse(reg, "savepoints nested too deep");
	if ((rc = reg->ops->savepoint(reg)) == REG_OK)
		reg->saved[reg->nsaved++] = reg->meta;
	return rc;
}

/* Closes the last savepoint: kept, or undone with its meta change. */
static enum reg_err
savepoint_close(struct registry *reg, int keep)
{
	if (reg->nsaved > 0) {
		reg->nsaved--;
		if (!keep)
			reg->meta = reg->saved[reg->nsaved];
	}
	return reg->ops->savepoint_end(reg, keep);
}

enum reg_err
registry_savepoint(struct registry *reg)
{
	if (!in_write(reg))
		return misuse(reg, "savepoint outside a write transaction");
	return savepoint_open(reg);
}

enum reg_err
registry_savepoint_end(struct registry *reg, int keep)
{
	if (!in_write(reg))
		return misuse(reg, "savepoint outside a write transaction");
	return savepoint_close(reg, keep);
}

/* The revision inside the write, read from the store once. */
static enum reg_err
meta_load(struct registry *reg)
{
	enum reg_err rc;

	if (reg->meta.loaded)
		return REG_OK;
	if ((rc = reg->ops->revision(reg, &reg->meta.revision)) == REG_OK)
		reg->meta.loaded = 1;
	return rc;
}

/* Advances the revision counter in memory; the new value in *v. */
static enum reg_err
bump_revision(struct registry *reg, int64_t *v)
{
	enum reg_err rc;

	if ((rc = meta_load(reg)) != REG_OK)
		return rc;
	*v = ++reg->meta.revision;
	reg->meta.dirty = 1;
	return REG_OK;
}

/* Counts a user in (1) or out (-1) of the write's transaction. */
static void
count_user(struct registry *reg, int delta)
{
	reg->meta.count_delta += delta;
	reg->meta.dirty = 1;
}

/*
 * Ends the savepoint of one write: kept when rc is REG_OK, undone
 * otherwise. Returns rc, or the error of keeping it.
 */
static enum reg_err
write_end(struct registry *reg, enum reg_err rc)
{
	enum reg_err src;

	if (!in_write(reg))
		return rc != REG_OK ? rc :
		    misuse(reg, "the transaction ended under a write");
	src = savepoint_close(reg, rc == REG_OK);
	return rc != REG_OK ? rc : src;
}

enum reg_err
registry_get(struct registry *reg, const char *name, struct user *out)
{
	char key[USER_NAME_MAX + 1];
	size_t len;
	enum reg_err rc;
	double t0;

	/* No stored name is longer: don't let truncation find one. */
	len = strnlen(name, USER_NAME_MAX + 1);
	if (len == 0 || len > USER_NAME_MAX)
		return REG_NOT_FOUND;
	user_canonical(name, key);
	t0 = reg->txn == REG_TXN_NONE ? metrics_now() : 0;
	rc = reg->ops->get(reg, key, out);
	if (reg->txn == REG_TXN_NONE)
		metrics_registry(METRICS_REG_READ, metrics_now() - t0);
	return rc;
}

/*
 * After an insert refused for its email (and undone): a taken name wins
 * over a taken email, whichever index the backend checked first.
 */
static enum reg_err
name_wins(struct registry *reg, const char *key)
{
	struct user existing;
	enum reg_err rc;

	if (!in_write(reg))
		return REG_EMAIL_TAKEN;
	rc = reg->ops->get(reg, key, &existing);
	return rc == REG_OK ? REG_EXISTS : rc == REG_NOT_FOUND ?
	    REG_EMAIL_TAKEN : rc;
}

enum reg_err
registry_insert(struct registry *reg, struct user *u)
{
	struct row_buf b;
	int64_t version = 0, now;
	enum reg_err rc;

	if (!in_write(reg))
		return misuse(reg, "insert outside a write transaction");
	if (!user_fits(u))
		return misuse(reg, "user to insert is malformed");
	now = (int64_t)time(NULL);
	if ((rc = savepoint_open(reg)) != REG_OK)
		return rc;
	if ((rc = bump_revision(reg, &version)) == REG_OK &&
	    (rc = reg->ops->insert(reg, row_of(u, version, now, now, &b))) ==
	    REG_OK)
		count_user(reg, 1);
	if ((rc = write_end(reg, rc)) == REG_EMAIL_TAKEN)
		rc = name_wins(reg, b.key);
	if (rc == REG_OK) {
		u->version = version;
		u->created_at = now;
		u->updated_at = now;
	}
	return rc;
}

/*
 * The last-admin rule: a write that takes "admin" from key (or deletes
 * it) must leave another admin. Returns REG_OK or REG_LAST_ADMIN.
 */
static enum reg_err
keep_an_admin(struct registry *reg, const char *key)
{
	enum reg_err rc;
	int found = 0;

	if ((rc = reg->ops->other_admin(reg, key, &found)) != REG_OK)
		return rc;
	return found ? REG_OK : REG_LAST_ADMIN;
}

enum reg_err
registry_update(struct registry *reg, const struct user *cur,
    struct user *next)
{
	char key[USER_NAME_MAX + 1];
	struct row_buf b;
	int64_t version = 0, now, created_at = 0;
	enum reg_err rc;

	if (!in_write(reg))
		return misuse(reg, "update outside a write transaction");
	if (!user_fits(cur) || !user_fits(next))
		return misuse(reg, "user to update is malformed");
	user_canonical(cur->username, key);
	row_of(next, 0, 0, 0, &b);
	if (strcmp(key, b.key) != 0)
		return misuse(reg, "update cannot rename a user");
	now = (int64_t)time(NULL);
	if ((rc = savepoint_open(reg)) != REG_OK)
		return rc;
	if ((rc = bump_revision(reg, &version)) != REG_OK)
		goto out;
	b.row.version = version;
	b.row.updated_at = now;
	/* Compare-and-swap on the version the caller read. */
	if ((rc = reg->ops->update(reg, &b.row, cur->version,
	    &created_at)) != REG_OK)
		goto out;
	if (user_has_role(cur, "admin") && !user_has_role(next, "admin"))
		rc = keep_an_admin(reg, key);
out:
	if ((rc = write_end(reg, rc)) == REG_OK) {
		next->version = version;
		next->created_at = created_at;
		next->updated_at = now;
	}
	return rc;
}

enum reg_err
registry_delete(struct registry *reg, const struct user *cur)
{
	char key[USER_NAME_MAX + 1];
	int64_t version = 0;
	enum reg_err rc;
	int admin = 0;

	if (!in_write(reg))
		return misuse(reg, "delete outside a write transaction");
	if (!user_fits(cur))
		return misuse(reg, "user to delete is malformed");
	user_canonical(cur->username, key);
	if ((rc = savepoint_open(reg)) != REG_OK)
		return rc;
	if ((rc = bump_revision(reg, &version)) == REG_OK &&
	    (rc = reg->ops->delete(reg, key, cur->version, &admin)) ==
	    REG_OK) {
		count_user(reg, -1);
		/* The stored flag, not the caller's copy, decides. */
		if (admin)
			rc = keep_an_admin(reg, key);
	}
	return write_end(reg, rc);
}

enum reg_err
registry_list(struct registry *reg, const char *after, const char *prefix,
    size_t limit, struct user *out, size_t *n, int *more)
{
	enum reg_err rc;
	double t0;

	*n = 0;
	*more = 0;
	if (limit < 1 || limit > REG_LIST_MAX)
		return misuse(reg, "list limit out of range");
	/*
	 * A prefix with a byte no canonical name holds matches nothing; a
	 * backend need not see it (PostgreSQL refuses what is not UTF-8).
	 */
	if (prefix != NULL && strspn(prefix, "abcdefghijklmnopqrstuvwxyz"
	    "0123456789._-") != strlen(prefix))
		return REG_OK;
	t0 = metrics_now();
	rc = reg->ops->list(reg, after != NULL ? after : "",
	    prefix != NULL ? prefix : "", limit, out, n, more);
	if (reg->txn == REG_TXN_NONE)
		metrics_registry(METRICS_REG_READ, metrics_now() - t0);
	if (rc != REG_OK) {
		*n = 0;
		*more = 0;
	}
	return rc;
}

enum reg_err
registry_revision(struct registry *reg, int64_t *revision)
{
	/* Inside a write, with its own writes. */
	if (in_write(reg) && reg->meta.loaded) {
		*revision = reg->meta.revision;
		return REG_OK;
	}
	return reg->ops->revision(reg, revision);
}

enum reg_err
registry_count(struct registry *reg, int64_t *count)
{
	enum reg_err rc;

	if ((rc = reg->ops->count(reg, count)) == REG_OK && in_write(reg))
		*count += reg->meta.count_delta;
	return rc;
}

enum reg_err
registry_ping(struct registry *reg)
{
	int64_t revision;

	/* Reads the stored data, unlike SELECT 1. */
	return registry_revision(reg, &revision);
}

enum reg_err
registry_load(struct registry *reg, const struct user *u)
{
	struct row_buf b;
	enum reg_err rc;

	if (!in_write(reg))
		return misuse(reg, "load outside a write transaction");
	if (!user_fits(u) || u->version < 1 || u->created_at < 0 ||
	    u->updated_at < u->created_at)
		return misuse(reg, "user to load is malformed");
	if ((rc = savepoint_open(reg)) != REG_OK)
		return rc;
	if ((rc = reg->ops->insert(reg, row_of(u, u->version, u->created_at,
	    u->updated_at, &b))) == REG_OK)
		count_user(reg, 1);
	if ((rc = write_end(reg, rc)) == REG_EMAIL_TAKEN)
		rc = name_wins(reg, b.key);
	return rc;
}

enum reg_err
registry_raise_revision(struct registry *reg, int64_t revision)
{
	enum reg_err rc;

	if (!in_write(reg))
		return misuse(reg, "revision outside a write transaction");
	if ((rc = meta_load(reg)) != REG_OK)
		return rc;
	if (revision > reg->meta.revision) {
		reg->meta.revision = revision;
		reg->meta.dirty = 1;
	}
	return REG_OK;
}

enum reg_err
registry_integrity(struct registry *reg)
{
	return reg->ops->integrity(reg);
}

enum reg_err
registry_backup(struct registry *reg, const char *dest)
{
	if (dest == NULL || *dest == '\0')
		return misuse(reg, "no backup file named");
	return reg->ops->backup(reg, dest);
}

void
registry_idem_release(struct reg_idem *rec)
{
	if (rec == NULL)
		return;
	free(rec->response);
	memset(rec, 0, sizeof(*rec));
}

/* Returns 1 if scope and key are within their limits (key not empty). */
static int
idem_fits(const char *scope, const char *key)
{
	size_t klen;

	klen = strnlen(key, REG_IDEM_KEY_MAX + 1);
	return strnlen(scope, REG_IDEM_SCOPE_MAX + 1) <= REG_IDEM_SCOPE_MAX &&
	    klen > 0 && klen <= REG_IDEM_KEY_MAX;
}

static int
fingerprint_fits(const char *fp)
{
	size_t n = strnlen(fp, REG_IDEM_FINGERPRINT_MAX + 1);

	return n > 0 && n <= REG_IDEM_FINGERPRINT_MAX;
}

enum reg_err
registry_idem_get(struct registry *reg, const char *scope, const char *key,
    const char *fingerprint, int64_t now, struct reg_idem *rec)
{
	enum reg_err rc;

	memset(rec, 0, sizeof(*rec));
	if (!idem_fits(scope, key) || !fingerprint_fits(fingerprint) ||
	    now < 0)
		return misuse(reg, "bad idempotency lookup");
	if ((rc = reg->ops->idem_get(reg, scope, key, now, rec)) != REG_OK)
		return rc;
	if (strcmp(rec->fingerprint, fingerprint) != 0) {
		registry_idem_release(rec);
		return REG_IDEM_MISMATCH;
	}
	return REG_IDEM_DONE;
}

enum reg_err
registry_idem_put(struct registry *reg, const char *scope, const char *key,
    const char *fingerprint, int status, const char *response, size_t len,
    int64_t now, int64_t ttl_s)
{
	enum reg_err rc;

	if (!idem_fits(scope, key) || !fingerprint_fits(fingerprint) ||
	    (response == NULL && len > 0) || now < 0 || ttl_s < 0 ||
	    ttl_s > INT64_MAX - now || status < 100 || status > 599)
		return misuse(reg, "bad idempotency record");
	if (!in_write(reg))
		return misuse(reg, "idempotency store outside a write "
		    "transaction");
	/* Old records go a few at a time, as new ones arrive. */
	if ((rc = reg->ops->idem_purge(reg, now, REG_IDEM_PURGE_BATCH)) !=
	    REG_OK)
		return rc;
	return reg->ops->idem_put(reg, scope, key, fingerprint, status,
	    response != NULL ? response : "", len, now + ttl_s);
}

enum reg_err
registry_idem_scan(struct registry *reg, registry_idem_fn *fn, void *arg)
{
	return reg->ops->idem_scan(reg, fn, arg);
}
