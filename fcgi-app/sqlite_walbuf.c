/* sqlite_walbuf.c: a SQLite VFS writing each commit's log in one go. */
#include "sqlite_walbuf.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

/* Most bytes gathered before they are written anyway. */
#define WALBUF_MAX (1024 * 1024)
/* Most bytes handed to the default VFS in one write. */
#define WALBUF_CHUNK (64 * 1024)

/* A log file: the default VFS's file right after it, and what waits. */
struct wb_file {
	sqlite3_file base;
	sqlite3_file *real;
	char *buf;
	size_t len, cap;
	sqlite3_int64 at;	/* the file offset of buf[0] */
};

static sqlite3_vfs wb_vfs;
static sqlite3_vfs *real_vfs;
static unsigned long wb_writes;

static struct wb_file *
wb(sqlite3_file *file)
{
	return (struct wb_file *)(void *)file;
}

/*
 * Writes what waits, WALBUF_CHUNK bytes at a time at most: the default
 * VFS writes no more than 128 KiB - 1 in one call and takes a bigger
 * write cut short for a full disk. The bytes are gone from buf even when
 * that fails.
 */
static int
wb_flush(struct wb_file *f)
{
	size_t done, n;
	int rc = SQLITE_OK;

	for (done = 0; done < f->len && rc == SQLITE_OK; done += n) {
		n = f->len - done < WALBUF_CHUNK ? f->len - done : WALBUF_CHUNK;
		rc = f->real->pMethods->xWrite(f->real, f->buf + done, (int)n,
		    f->at + (sqlite3_int64)done);
		wb_writes++;
	}
	f->len = 0;
	return rc;
}

static int
wb_close(sqlite3_file *file)
{
	struct wb_file *f = wb(file);
	int rc = wb_flush(f), rc2;

	rc2 = f->real->pMethods->xClose(f->real);
	free(f->buf);
	f->buf = NULL;
	f->cap = 0;
	return rc != SQLITE_OK ? rc : rc2;
}

static int
wb_read(sqlite3_file *file, void *p, int n, sqlite3_int64 off)
{
	struct wb_file *f = wb(file);
	int rc = wb_flush(f);

	return rc != SQLITE_OK ? rc :
	    f->real->pMethods->xRead(f->real, p, n, off);
}

/* Makes room for n more bytes in f->buf. Returns 0, or -1. */
static int
wb_room(struct wb_file *f, size_t n)
{
	size_t cap = f->cap != 0 ? f->cap : 64 * 1024;
	char *p;

	while (cap - f->len < n)
		cap *= 2;
	if (cap == f->cap)
		return 0;
	if ((p = realloc(f->buf, cap)) == NULL)
		return -1;
	f->buf = p;
	f->cap = cap;
	return 0;
}

static int
wb_write(sqlite3_file *file, const void *p, int n, sqlite3_int64 off)
{
	struct wb_file *f = wb(file);
	int rc;

	if (n <= 0)
		return f->real->pMethods->xWrite(f->real, p, n, off);
	/* Not right after what waits, or too much: that goes first. */
	if (f->len > 0 && (off != f->at + (sqlite3_int64)f->len ||
	    f->len + (size_t)n > WALBUF_MAX) && (rc = wb_flush(f)) !=
	    SQLITE_OK)
		return rc;
	if ((size_t)n > WALBUF_CHUNK || wb_room(f, (size_t)n) != 0) {
		/* Out of memory is no reason to fail a write. */
		if ((rc = wb_flush(f)) != SQLITE_OK)
			return rc;
		wb_writes++;
		return f->real->pMethods->xWrite(f->real, p, n, off);
	}
	if (f->len == 0)
		f->at = off;
	memcpy(f->buf + f->len, p, (size_t)n);
	f->len += (size_t)n;
	return SQLITE_OK;
}

static int
wb_truncate(sqlite3_file *file, sqlite3_int64 size)
{
	struct wb_file *f = wb(file);
	int rc = wb_flush(f);

	return rc != SQLITE_OK ? rc :
	    f->real->pMethods->xTruncate(f->real, size);
}

static int
wb_sync(sqlite3_file *file, int flags)
{
	struct wb_file *f = wb(file);
	int rc = wb_flush(f);

	return rc != SQLITE_OK ? rc : f->real->pMethods->xSync(f->real, flags);
}

static int
wb_file_size(sqlite3_file *file, sqlite3_int64 *size)
{
	struct wb_file *f = wb(file);
	int rc = wb_flush(f);

	return rc != SQLITE_OK ? rc :
	    f->real->pMethods->xFileSize(f->real, size);
}

/* The rest goes straight to the default VFS's file. */
static int
wb_lock(sqlite3_file *file, int lock)
{
	return wb(file)->real->pMethods->xLock(wb(file)->real, lock);
}

static int
wb_unlock(sqlite3_file *file, int lock)
{
	return wb(file)->real->pMethods->xUnlock(wb(file)->real, lock);
}

static int
wb_check_reserved(sqlite3_file *file, int *out)
{
	return wb(file)->real->pMethods->xCheckReservedLock(wb(file)->real,
	    out);
}

static int
wb_file_control(sqlite3_file *file, int op, void *arg)
{
	return wb(file)->real->pMethods->xFileControl(wb(file)->real, op, arg);
}

static int
wb_sector_size(sqlite3_file *file)
{
	return wb(file)->real->pMethods->xSectorSize(wb(file)->real);
}

static int
wb_device(sqlite3_file *file)
{
	return wb(file)->real->pMethods->xDeviceCharacteristics(
	    wb(file)->real);
}

/* A log is never shared memory nor mapped: these only refuse. */
static int
wb_shm_map(sqlite3_file *file, int page, int size, int extend,
    void volatile **p)
{
	(void)file, (void)page, (void)size, (void)extend;
	*p = NULL;
	return SQLITE_IOERR_SHMMAP;
}

static int
wb_shm_lock(sqlite3_file *file, int offset, int n, int flags)
{
	(void)file, (void)offset, (void)n, (void)flags;
	return SQLITE_IOERR_SHMLOCK;
}

static void
wb_shm_barrier(sqlite3_file *file)
{
	(void)file;
}

static int
wb_shm_unmap(sqlite3_file *file, int delete_flag)
{
	(void)file, (void)delete_flag;
	return SQLITE_OK;
}

static int
wb_fetch(sqlite3_file *file, sqlite3_int64 off, int n, void **p)
{
	(void)file, (void)off, (void)n;
	*p = NULL;
	return SQLITE_OK;
}

static int
wb_unfetch(sqlite3_file *file, sqlite3_int64 off, void *p)
{
	(void)file, (void)off, (void)p;
	return SQLITE_OK;
}

static const sqlite3_io_methods wb_methods = {
	3, wb_close, wb_read, wb_write, wb_truncate, wb_sync, wb_file_size,
	wb_lock, wb_unlock, wb_check_reserved, wb_file_control,
	wb_sector_size, wb_device, wb_shm_map, wb_shm_lock, wb_shm_barrier,
	wb_shm_unmap, wb_fetch, wb_unfetch
};

/* Log files get the gathering file; every other file is the default's. */
static int
wb_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *file,
    int flags, int *out_flags)
{
	struct wb_file *f = wb(file);
	int rc;

	(void)vfs;
	if (!(flags & SQLITE_OPEN_WAL))
		return real_vfs->xOpen(real_vfs, name, file, flags, out_flags);
	memset(f, 0, sizeof(*f));
	f->real = (sqlite3_file *)(void *)(f + 1);
	rc = real_vfs->xOpen(real_vfs, name, f->real, flags, out_flags);
	if (rc != SQLITE_OK) {
		if (f->real->pMethods != NULL)
			f->real->pMethods->xClose(f->real);
		f->base.pMethods = NULL;
		return rc;
	}
	f->base.pMethods = &wb_methods;
	return SQLITE_OK;
}

static int register_rc = SQLITE_ERROR;

static void
register_once(void)
{
	if ((real_vfs = sqlite3_vfs_find(NULL)) == NULL)
		return;
	wb_vfs = *real_vfs;
	wb_vfs.pNext = NULL;
	wb_vfs.zName = SQLITE_WALBUF_VFS;
	/* The real file lives right after ours, aligned as ours is. */
	wb_vfs.szOsFile = (int)sizeof(struct wb_file) + real_vfs->szOsFile;
	wb_vfs.xOpen = wb_open;
	register_rc = sqlite3_vfs_register(&wb_vfs, 0);
}

int
sqlite_walbuf_register(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, register_once);
	return register_rc;
}

unsigned long
sqlite_walbuf_writes(void)
{
	return wb_writes;
}
