/* sqlite_readcache.h: users kept while a SQLite registry is unchanged. */
#ifndef USERREG_SQLITE_READCACHE_H
#define USERREG_SQLITE_READCACHE_H

#include <sqlite3.h>

#include "user.h"

/*
 * A read of one user costs a SQLite statement and two file-lock calls
 * (the read transaction's mark in the -shm file), about a third of a
 * cached GET's work. This cache keeps the users one handle read, and
 * answers from them for as long as the database has not changed: the
 * header of the write-ahead log's index in shared memory (SQLite's
 * "wal-index", two 48-byte copies at the start of the -shm file) names
 * the last commit, and every commit of any process rewrites it, only
 * once its log is synced. Reading it costs no system call.
 *
 * The header is taken before and after each read that fills the cache:
 * unchanged, the read saw the state it names. A header being rewritten
 * (its two copies differ), a layout of another version, or a handle not
 * in WAL mode simply bypass the cache. Use it only for reads outside any
 * transaction: inside one, a read sees the transaction's own state.
 */

/* Users kept per handle; a slot is chosen by the name's hash. */
#define SQLITE_READCACHE_SLOTS 64

struct sqlite_readcache;

/* Returns an empty cache, or NULL when out of memory. */
struct sqlite_readcache *sqlite_readcache_new(void);

void sqlite_readcache_free(struct sqlite_readcache *c);

/*
 * Forgets every user and the shared memory of the handle they came
 * from: to call before that handle closes.
 */
void sqlite_readcache_forget(struct sqlite_readcache *c);

/*
 * Looks up the user of canonical name key. Returns 1 with *out filled
 * when db has not changed since it was read; 0 otherwise, and the next
 * sqlite_readcache_put() may then keep what the caller reads.
 */
int sqlite_readcache_get(struct sqlite_readcache *c, sqlite3 *db,
    const char *key, struct user *out);

/*
 * Keeps u, read just now from db as the user of key, unless db changed
 * since the sqlite_readcache_get() that missed it.
 */
void sqlite_readcache_put(struct sqlite_readcache *c, sqlite3 *db,
    const char *key, const struct user *u);

/* Reads this process answered from a cache: for tests. */
unsigned long sqlite_readcache_hits(void);

#endif
