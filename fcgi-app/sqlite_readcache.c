/* sqlite_readcache.c: users kept while a SQLite registry is unchanged. */
#include "sqlite_readcache.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/*
 * The wal-index header as SQLite's file format documents it: iVersion
 * (3007000 since the format began), unused, iChange (bumped by every
 * commit), isInit, bigEndCksum, szPage, mxFrame, nPage, aFrameCksum[2],
 * aSalt[2], aCksum[2]; two copies, the second written first.
 */
#define WALINDEX_VERSION 3007000
#define WALINDEX_HDR_LEN 48
#define WALINDEX_IS_INIT 12
/* The size SQLite maps the index with, one part at a time. */
#define WALINDEX_PART 32768

struct slot {
	char key[USER_NAME_MAX + 1];
	unsigned long gen;		/* valid while it is the cache's */
	struct user u;
};

struct sqlite_readcache {
	sqlite3 *db;			/* whose index shm is */
	const volatile unsigned char *shm;
	int off;			/* db has no index: not in WAL mode */
	unsigned char hdr[WALINDEX_HDR_LEN];	/* what gen's slots saw */
	unsigned long gen;
	int armed;			/* a get() missed under hdr */
	struct slot slots[SQLITE_READCACHE_SLOTS];
};

static unsigned long hits;

struct sqlite_readcache *
sqlite_readcache_new(void)
{
	struct sqlite_readcache *c;

	if ((c = calloc(1, sizeof(*c))) != NULL)
		c->gen = 1;
	return c;
}

void
sqlite_readcache_free(struct sqlite_readcache *c)
{
	free(c);
}

void
sqlite_readcache_forget(struct sqlite_readcache *c)
{
	if (c == NULL)
		return;
	c->db = NULL;
	c->shm = NULL;
	c->off = 0;
	c->gen++;
	c->armed = 0;
}

/* Whether db is in WAL mode: mapping an index would create one otherwise. */
static int
in_wal_mode(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	const unsigned char *mode;
	int wal = 0;

	if (sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL) ==
	    SQLITE_OK && sqlite3_step(st) == SQLITE_ROW &&
	    (mode = sqlite3_column_text(st, 0)) != NULL)
		wal = sqlite3_stricmp((const char *)mode, "wal") == 0;
	sqlite3_finalize(st);
	return wal;
}

/*
 * Finds the first part of db's index as SQLite mapped it for its own
 * reads (a registry handle has read its schema before any user).
 */
static int
bind(struct sqlite_readcache *c, sqlite3 *db)
{
	sqlite3_file *f = NULL;
	void volatile *p = NULL;

	if (c->db == db && (c->shm != NULL || c->off))
		return c->off ? -1 : 0;
	sqlite_readcache_forget(c);
	/* Tried once per handle: a handle without an index stays uncached. */
	c->db = db;
	if (!in_wal_mode(db) ||
	    sqlite3_file_control(db, "main", SQLITE_FCNTL_FILE_POINTER, &f) !=
	    SQLITE_OK || f == NULL || f->pMethods == NULL ||
	    f->pMethods->iVersion < 2 || f->pMethods->xShmMap == NULL ||
	    /* Not extended: only what is mapped already. */
	    f->pMethods->xShmMap(f, 0, WALINDEX_PART, 0, &p) != SQLITE_OK ||
	    p == NULL) {
		c->off = 1;
		return -1;
	}
	c->shm = p;
	return 0;
}

/* Copies the index header when its two copies agree, as SQLite reads it. */
static int
header(const struct sqlite_readcache *c, unsigned char h[WALINDEX_HDR_LEN])
{
	unsigned char second[WALINDEX_HDR_LEN];
	uint32_t version;

	memcpy(h, (const void *)c->shm, WALINDEX_HDR_LEN);
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	memcpy(second, (const void *)(c->shm + WALINDEX_HDR_LEN),
	    WALINDEX_HDR_LEN);
	memcpy(&version, h, sizeof(version));
	if (memcmp(h, second, WALINDEX_HDR_LEN) != 0 ||
	    h[WALINDEX_IS_INIT] == 0 || version != WALINDEX_VERSION)
		return -1;
	return 0;
}

static struct slot *
slot_of(struct sqlite_readcache *c, const char *key)
{
	uint32_t h = 2166136261u;	/* FNV-1a */

	for (; *key != '\0'; key++)
		h = (h ^ (unsigned char)*key) * 16777619u;
	return &c->slots[h % SQLITE_READCACHE_SLOTS];
}

int
sqlite_readcache_get(struct sqlite_readcache *c, sqlite3 *db,
    const char *key, struct user *out)
{
	unsigned char h[WALINDEX_HDR_LEN];
	struct slot *s;

	c->armed = 0;
	if (bind(c, db) != 0 || header(c, h) != 0)
		return 0;
	if (memcmp(h, c->hdr, sizeof(h)) != 0) {
		/* A commit since: every slot is stale. */
		memcpy(c->hdr, h, sizeof(h));
		c->gen++;
	}
	c->armed = 1;
	s = slot_of(c, key);
	if (s->gen != c->gen || strcmp(s->key, key) != 0)
		return 0;
	*out = s->u;
	hits++;
	return 1;
}

void
sqlite_readcache_put(struct sqlite_readcache *c, sqlite3 *db,
    const char *key, const struct user *u)
{
	unsigned char h[WALINDEX_HDR_LEN];
	struct slot *s;
	size_t len = strlen(key);

	if (!c->armed || c->db != db || len > USER_NAME_MAX)
		return;
	c->armed = 0;
	/* The same header after the read as before: it saw that state. */
	if (header(c, h) != 0 || memcmp(h, c->hdr, sizeof(h)) != 0)
		return;
	s = slot_of(c, key);
	memcpy(s->key, key, len + 1);
	s->u = *u;
	s->gen = c->gen;
}

unsigned long
sqlite_readcache_hits(void)
{
	return hits;
}
