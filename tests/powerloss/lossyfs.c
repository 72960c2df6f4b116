/* lossyfs.c: a FUSE filesystem that loses what was not synced when told to */

/*
 * usage: lossyfs BACKING MOUNTPOINT [-o FUSE-OPTION]... [-d]
 *
 * Every operation passes through to the directory BACKING, except that
 * written data stays in the daemon's memory until it is synced, as it would
 * stay in a page cache. Writing "cut" to MOUNTPOINT/.lossyfs-control is a
 * power cut: everything not yet synced is thrown away and every later
 * operation fails with EIO, until the filesystem is unmounted and mounted
 * again. Reading the control file shows counters. The daemon stays in the
 * foreground and serves one request at a time; unmounting it (or SIGTERM)
 * without a cut syncs everything first, as a clean shutdown would.
 *
 * The model:
 * - File data. A write goes into 4 KiB pages held in memory; reads see
 *   them over the backing file. A truncate or an extension by a write only
 *   changes the size held in memory. fsync and fdatasync (and msync, which
 *   the kernel turns into fsync) write the file's pages and size to the
 *   backing file, sync it there, and forget them. A cut drops every page
 *   and size change not yet synced. close() syncs nothing.
 * - Names. create, mknod, mkdir, symlink, link, unlink, rmdir and rename
 *   take effect on the backing directory at once, but each is recorded in
 *   one journal until a directory is fsynced: fsync of any directory
 *   commits the whole journal (a journaling filesystem commits all of its
 *   metadata at once). A cut undoes every uncommitted entry, newest first:
 *   created names disappear, removed and displaced files come back (they
 *   wait in BACKING/.lossyfs-trash, hidden from the mount, until the
 *   journal commits), renames go back. fsync of a file does not commit its
 *   name: POSIX asks for an fsync of the directory for that.
 * - Attributes (mode, owner, times) are written through at once and are
 *   not part of the model.
 * - Locks. There is no lock operation, so the kernel keeps POSIX record
 *   locks itself, across every process using the mount, as SQLite needs.
 *   Page caching stays on (no direct_io), so a MAP_SHARED mmap works: its
 *   dirty pages reach the daemon as writes when the kernel writes them
 *   back, and are as volatile as any other write.
 *
 * A file's unsynced pages survive its last close (the page cache keeps
 * them); its backing descriptor stays open meanwhile, so the backing inode
 * number cannot be reused by another file.
 */

#define _GNU_SOURCE		/* renameat2, RENAME_EXCHANGE */
#define FUSE_USE_VERSION 31

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define LFS_PAGE 4096
#define LFS_BUCKETS 1024
#define LFS_CONTROL ".lossyfs-control"
#define LFS_TRASH ".lossyfs-trash"
#define LFS_STATS_MAX 1024

/* One page of unsynced data of a file. */
struct page {
	off_t index;
	struct page *next;
	unsigned char data[LFS_PAGE];
};

/*
 * One backing file with its unsynced state. The bytes a read sees at
 * offset x < size are those of its page if there is one, else the backing
 * file's when x < valid, else zeros.
 */
struct node {
	dev_t dev;
	ino_t ino;
	int fd;			/* the backing file, read-write if possible */
	int refs;		/* open handles */
	int dirty;		/* pages or a size not yet synced */
	off_t size;		/* the size reads see */
	off_t valid;		/* backing bytes below this are current */
	size_t npages;
	struct timespec mtime;	/* of the last unsynced change */
	struct page *bucket[LFS_BUCKETS];
	struct node *next;
};

enum ns_kind {
	NS_CREATE,		/* undo: unlink path */
	NS_MKDIR,		/* undo: rmdir path */
	NS_REMOVE,		/* undo: move trash back to path */
	NS_RMDIR,		/* undo: mkdir path with mode */
	NS_RENAME,		/* undo: path2 to path, trash to path2 */
	NS_EXCHANGE		/* undo: exchange path and path2 again */
};

/* One uncommitted change of names, in the journal. */
struct ns_op {
	enum ns_kind kind;
	char *path;
	char *path2;
	char *trash;		/* a removed or displaced entry, or NULL */
	mode_t mode;
	struct ns_op *prev;
};

static struct {
	const char *backing;
	int dirfd;		/* BACKING */
	int trashfd;		/* BACKING/.lossyfs-trash */
	int off;		/* the power is cut */
	unsigned long trash_seq;
	struct node *nodes;
	struct ns_op *journal;	/* newest first */
	size_t journal_len;
	/* counters shown by the control file */
	unsigned long long fsyncs, dirsyncs, cuts;
	unsigned long long dropped_pages, dropped_sizes, dropped_ops;
	unsigned long long undo_failures;
} lfs;

/* The control file's handle, told apart from nodes by its address. */
static char control_handle;

/*
 * "/a/b" -> "a/b", "/" -> ".": a path relative to lfs.dirfd. No path
 * (which only operations on open files may get) names nothing.
 */
static const char *
rel(const char *path)
{
	if (path == NULL)
		return "";
	while (*path == '/')
		path++;
	return *path == '\0' ? "." : path;
}

static int
is_control(const char *path)
{
	return path != NULL && strcmp(path, "/" LFS_CONTROL) == 0;
}

static int
is_control_fi(const struct fuse_file_info *fi)
{
	return fi != NULL && fi->fh == (uint64_t)(uintptr_t)&control_handle;
}

/* The trash is not part of the mounted tree. */
static int
is_hidden(const char *path)
{
	size_t n = strlen("/" LFS_TRASH);

	return path != NULL && strncmp(path, "/" LFS_TRASH, n) == 0 &&
	    (path[n] == '\0' || path[n] == '/');
}

static struct node *
node_of(struct fuse_file_info *fi)
{
	if (fi == NULL || fi->fh == 0 || is_control_fi(fi))
		return NULL;
	return (struct node *)(uintptr_t)fi->fh;
}

static struct node *
node_find(dev_t dev, ino_t ino)
{
	struct node *n;

	for (n = lfs.nodes; n != NULL; n = n->next)
		if (n->dev == dev && n->ino == ino)
			return n;
	return NULL;
}

static struct page *
page_find(struct node *n, off_t index)
{
	struct page *p;

	for (p = n->bucket[index % LFS_BUCKETS]; p != NULL; p = p->next)
		if (p->index == index)
			return p;
	return NULL;
}

/* Frees every page of n; returns how many there were. */
static size_t
node_drop_pages(struct node *n)
{
	struct page *p, *next;
	size_t i, count = n->npages;

	for (i = 0; i < LFS_BUCKETS; i++) {
		for (p = n->bucket[i]; p != NULL; p = next) {
			next = p->next;
			free(p);
		}
		n->bucket[i] = NULL;
	}
	n->npages = 0;
	return count;
}

/*
 * Shrinking to size: frees the pages wholly past it and clears the tail of
 * the page it ends in, so that growing again reads zeros there.
 */
static void
node_cut_pages(struct node *n, off_t size)
{
	struct page **pp, *p;
	off_t first = (size + LFS_PAGE - 1) / LFS_PAGE;
	size_t i;

	for (i = 0; i < LFS_BUCKETS; i++) {
		pp = &n->bucket[i];
		while ((p = *pp) != NULL) {
			if (p->index >= first) {
				*pp = p->next;
				free(p);
				n->npages--;
			} else {
				pp = &p->next;
			}
		}
	}
	if (size % LFS_PAGE != 0 &&
	    (p = page_find(n, size / LFS_PAGE)) != NULL)
		memset(p->data + size % LFS_PAGE, 0,
		    LFS_PAGE - (size_t)(size % LFS_PAGE));
}

static void
node_free(struct node *n)
{
	struct node **pp;

	for (pp = &lfs.nodes; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == n) {
			*pp = n->next;
			break;
		}
	}
	node_drop_pages(n);
	close(n->fd);
	free(n);
}

/* Frees n unless it is open or holds unsynced data of a linked file. */
static void
node_maybe_free(struct node *n)
{
	struct stat st;

	if (n->refs > 0)
		return;
	if (n->dirty && fstat(n->fd, &st) == 0 && st.st_nlink > 0)
		return;
	node_free(n);
}

/*
 * Takes a reference on the node of the open backing descriptor fd: the
 * existing one (fd is then closed) or a new one owning fd. Returns NULL
 * with errno set on failure (fd is then closed too).
 */
static struct node *
node_get(int fd)
{
	struct node *n;
	struct stat st;
	int e;

	if (fstat(fd, &st) == -1) {
		e = errno;
		close(fd);
		errno = e;
		return NULL;
	}
	if ((n = node_find(st.st_dev, st.st_ino)) != NULL) {
		close(fd);
		n->refs++;
		return n;
	}
	if ((n = calloc(1, sizeof(*n))) == NULL) {
		close(fd);
		errno = ENOMEM;
		return NULL;
	}
	n->dev = st.st_dev;
	n->ino = st.st_ino;
	n->fd = fd;
	n->refs = 1;
	n->size = st.st_size;
	n->valid = st.st_size;
	n->next = lfs.nodes;
	lfs.nodes = n;
	return n;
}

static void
node_put(struct node *n)
{
	n->refs--;
	node_maybe_free(n);
}

/* Reads the current bytes of one page range [off, off + len). */
static int
node_read_range(struct node *n, unsigned char *buf, off_t off, size_t len)
{
	struct page *p;
	ssize_t got;
	size_t from_backing = 0;

	if ((p = page_find(n, off / LFS_PAGE)) != NULL) {
		memcpy(buf, p->data + off % LFS_PAGE, len);
		return 0;
	}
	if (off < n->valid)
		from_backing = (size_t)(n->valid - off) < len ?
		    (size_t)(n->valid - off) : len;
	if (from_backing > 0) {
		got = pread(n->fd, buf, from_backing, off);
		if (got < 0)
			return -errno;
		/* A backing file shorter than valid reads as zeros past it. */
		from_backing = (size_t)got;
	}
	memset(buf + from_backing, 0, len - from_backing);
	return 0;
}

static int
node_read(struct node *n, char *buf, size_t len, off_t off)
{
	size_t done = 0, chunk;
	int rc;

	if (off >= n->size)
		return 0;
	if ((off_t)len > n->size - off)
		len = (size_t)(n->size - off);
	while (done < len) {
		chunk = LFS_PAGE - (size_t)((off + (off_t)done) % LFS_PAGE);
		if (chunk > len - done)
			chunk = len - done;
		rc = node_read_range(n, (unsigned char *)buf + done,
		    off + (off_t)done, chunk);
		if (rc != 0)
			return rc;
		done += chunk;
	}
	return (int)len;
}

static void
node_touch(struct node *n)
{
	n->dirty = 1;
	clock_gettime(CLOCK_REALTIME, &n->mtime);
}

static int
node_write(struct node *n, const char *buf, size_t len, off_t off)
{
	struct page *p;
	size_t done = 0, chunk, at;
	off_t index;
	int rc;

	while (done < len) {
		index = (off + (off_t)done) / LFS_PAGE;
		at = (size_t)((off + (off_t)done) % LFS_PAGE);
		chunk = LFS_PAGE - at < len - done ? LFS_PAGE - at : len - done;
		if ((p = page_find(n, index)) == NULL) {
			if ((p = malloc(sizeof(*p))) == NULL)
				return -ENOMEM;
			memset(p->data, 0, LFS_PAGE);
			if (index * LFS_PAGE < n->size) {
				rc = node_read_range(n, p->data,
				    index * LFS_PAGE, LFS_PAGE);
				if (rc != 0) {
					free(p);
					return rc;
				}
			}
			p->index = index;
			p->next = n->bucket[index % LFS_BUCKETS];
			n->bucket[index % LFS_BUCKETS] = p;
			n->npages++;
		}
		memcpy(p->data + at, buf + done, chunk);
		done += chunk;
	}
	if (off + (off_t)len > n->size)
		n->size = off + (off_t)len;
	node_touch(n);
	return (int)len;
}

static int
node_truncate(struct node *n, off_t size)
{
	if (size < 0)
		return -EINVAL;
	if (size < n->size)
		node_cut_pages(n, size);
	if (size < n->valid)
		n->valid = size;
	n->size = size;
	node_touch(n);
	return 0;
}

/* Writes n's size and pages to the backing file and syncs it there. */
static int
node_sync(struct node *n, int datasync)
{
	struct stat st;
	struct page *p;
	size_t i, len;
	ssize_t done;
	off_t at;

	lfs.fsyncs++;
	if (n->dirty) {
		if (fstat(n->fd, &st) == -1)
			return -errno;
		if (n->valid < st.st_size && ftruncate(n->fd, n->valid) == -1)
			return -errno;
		if (n->size != (n->valid < st.st_size ? n->valid : st.st_size)
		    && ftruncate(n->fd, n->size) == -1)
			return -errno;
		for (i = 0; i < LFS_BUCKETS; i++) {
			for (p = n->bucket[i]; p != NULL; p = p->next) {
				at = p->index * LFS_PAGE;
				if (at >= n->size)
					continue;
				len = n->size - at < LFS_PAGE ?
				    (size_t)(n->size - at) : LFS_PAGE;
				if ((done = pwrite(n->fd, p->data, len, at)) ==
				    -1)
					return -errno;
				if ((size_t)done != len)
					return -EIO;
			}
		}
	}
	if ((datasync ? fdatasync(n->fd) : fsync(n->fd)) == -1)
		return -errno;
	node_drop_pages(n);
	n->valid = n->size;
	n->dirty = 0;
	return 0;
}

/* ---------------------------------------------------------- journal */

static int
journal_add(enum ns_kind kind, const char *path, const char *path2,
    const char *trash, mode_t mode)
{
	struct ns_op *op;

	if ((op = calloc(1, sizeof(*op))) == NULL)
		return -ENOMEM;
	op->kind = kind;
	op->mode = mode;
	op->path = strdup(path);
	op->path2 = path2 != NULL ? strdup(path2) : NULL;
	op->trash = trash != NULL ? strdup(trash) : NULL;
	if (op->path == NULL || (path2 != NULL && op->path2 == NULL) ||
	    (trash != NULL && op->trash == NULL)) {
		free(op->path);
		free(op->path2);
		free(op->trash);
		free(op);
		return -ENOMEM;
	}
	op->prev = lfs.journal;
	lfs.journal = op;
	lfs.journal_len++;
	return 0;
}

static void
ns_op_free(struct ns_op *op)
{
	free(op->path);
	free(op->path2);
	free(op->trash);
	free(op);
}

/* Moves the entry at relative path into the trash; its name in *name. */
static int
trash_move(const char *path, char *name, size_t size)
{
	snprintf(name, size, "%lu", ++lfs.trash_seq);
	if (renameat(lfs.dirfd, path, lfs.trashfd, name) == -1)
		return -errno;
	return 0;
}

static void
trash_remove(const char *name)
{
	/* A displaced empty directory is the only non-file in there. */
	if (unlinkat(lfs.trashfd, name, 0) == -1)
		unlinkat(lfs.trashfd, name, AT_REMOVEDIR);
}

/* Removes everything in the trash (what an earlier daemon left too). */
static void
trash_empty(void)
{
	struct dirent *de;
	DIR *d;
	int fd;

	if ((fd = dup(lfs.trashfd)) == -1 || (d = fdopendir(fd)) == NULL)
		return;
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (unlinkat(lfs.trashfd, de->d_name, 0) == -1)
			unlinkat(lfs.trashfd, de->d_name, AT_REMOVEDIR);
	}
	closedir(d);
}

/* A directory fsync: every change of names so far becomes durable. */
static void
journal_commit(void)
{
	struct ns_op *op, *prev;
	struct node *n, *next;

	for (op = lfs.journal; op != NULL; op = prev) {
		prev = op->prev;
		if (op->trash != NULL)
			trash_remove(op->trash);
		ns_op_free(op);
	}
	lfs.journal = NULL;
	lfs.journal_len = 0;
	fsync(lfs.trashfd);
	fsync(lfs.dirfd);
	/* Files removed for good need their unsynced pages no more. */
	for (n = lfs.nodes; n != NULL; n = next) {
		next = n->next;
		node_maybe_free(n);
	}
}

static int
undo_step(const char *what, int rc, const char *path)
{
	if (rc == -1) {
		fprintf(stderr, "lossyfs: error undoing %s of '%s': %s\n",
		    what, path, strerror(errno));
		lfs.undo_failures++;
	}
	return rc;
}

/* A cut: every uncommitted change of names is undone, newest first. */
static void
journal_undo(void)
{
	struct ns_op *op, *prev;

	for (op = lfs.journal; op != NULL; op = prev) {
		prev = op->prev;
		switch (op->kind) {
		case NS_CREATE:
			undo_step("create", unlinkat(lfs.dirfd, op->path, 0),
			    op->path);
			break;
		case NS_MKDIR:
			undo_step("mkdir", unlinkat(lfs.dirfd, op->path,
			    AT_REMOVEDIR), op->path);
			break;
		case NS_REMOVE:
			undo_step("unlink", renameat(lfs.trashfd, op->trash,
			    lfs.dirfd, op->path), op->path);
			break;
		case NS_RMDIR:
			undo_step("rmdir", mkdirat(lfs.dirfd, op->path,
			    op->mode), op->path);
			break;
		case NS_RENAME:
			if (undo_step("rename", renameat(lfs.dirfd, op->path2,
			    lfs.dirfd, op->path), op->path2) == 0 &&
			    op->trash != NULL)
				undo_step("rename", renameat(lfs.trashfd,
				    op->trash, lfs.dirfd, op->path2),
				    op->path2);
			break;
		case NS_EXCHANGE:
			undo_step("rename", renameat2(lfs.dirfd, op->path,
			    lfs.dirfd, op->path2, RENAME_EXCHANGE), op->path);
			break;
		}
		lfs.dropped_ops++;
		ns_op_free(op);
	}
	lfs.journal = NULL;
	lfs.journal_len = 0;
	fsync(lfs.trashfd);
	fsync(lfs.dirfd);
}

/* The power cut itself. */
static void
power_cut(void)
{
	struct node *n;

	if (lfs.off)
		return;
	for (n = lfs.nodes; n != NULL; n = n->next) {
		lfs.dropped_pages += node_drop_pages(n);
		if (n->dirty && n->size != n->valid)
			lfs.dropped_sizes++;
		n->dirty = 0;
	}
	journal_undo();
	lfs.cuts++;
	lfs.off = 1;
	fprintf(stderr, "lossyfs: power cut: %llu unsynced pages, %llu "
	    "sizes and %llu name changes dropped\n", lfs.dropped_pages,
	    lfs.dropped_sizes, lfs.dropped_ops);
}

/* Syncs everything, for a clean unmount. */
static void
sync_all(void)
{
	struct node *n;
	int rc;

	for (n = lfs.nodes; n != NULL; n = n->next)
		if (n->dirty && (rc = node_sync(n, 0)) != 0)
			fprintf(stderr, "lossyfs: error syncing inode %lu: "
			    "%s\n", (unsigned long)n->ino, strerror(-rc));
	journal_commit();
}

static int
control_text(char *buf, size_t size)
{
	unsigned long long pages = 0, files = 0;
	struct node *n;

	for (n = lfs.nodes; n != NULL; n = n->next) {
		pages += n->npages;
		files += n->dirty ? 1 : 0;
	}
	return snprintf(buf, size,
	    "power %s\nunsynced_files %llu\nunsynced_pages %llu\n"
	    "uncommitted_names %zu\nfsyncs %llu\ndirsyncs %llu\n"
	    "cuts %llu\ndropped_pages %llu\ndropped_sizes %llu\n"
	    "dropped_names %llu\nundo_failures %llu\n",
	    lfs.off ? "off" : "on", files, pages, lfs.journal_len,
	    lfs.fsyncs, lfs.dirsyncs, lfs.cuts, lfs.dropped_pages,
	    lfs.dropped_sizes, lfs.dropped_ops, lfs.undo_failures);
}

/* ------------------------------------------------------- operations */

/* Every operation starts with this: no entry to the trash, no power. */
#define GUARD(path)							\
	do {								\
		if (lfs.off)						\
			return -EIO;					\
		if (is_hidden(path))					\
			return -ENOENT;					\
	} while (0)

static void
chown_to_caller(const char *path)
{
	struct fuse_context *c = fuse_get_context();

	if (geteuid() == 0 && c != NULL && fchownat(lfs.dirfd, rel(path),
	    c->uid, c->gid, AT_SYMLINK_NOFOLLOW) == -1)
		fprintf(stderr, "lossyfs: error giving '%s' to its creator: "
		    "%s\n", path, strerror(errno));
}

static void *
lfs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	/* Unsynced data must stay here, where a cut can reach it. */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	cfg->use_ino = 1;
	cfg->hard_remove = 1;
	cfg->nullpath_ok = 1;
	cfg->direct_io = 0;
	cfg->kernel_cache = 0;
	cfg->auto_cache = 0;
	cfg->entry_timeout = 0;
	cfg->attr_timeout = 0;
	cfg->negative_timeout = 0;
	return NULL;
}

static void
lfs_destroy(void *data)
{
	(void)data;
	if (!lfs.off)
		sync_all();
}

static int
lfs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	struct node *n = node_of(fi);

	if (is_control(path) || is_control_fi(fi)) {
		memset(st, 0, sizeof(*st));
		st->st_mode = S_IFREG | 0600;
		st->st_nlink = 1;
		st->st_uid = getuid();
		st->st_gid = getgid();
		return 0;
	}
	GUARD(path);
	if (n != NULL) {
		if (fstat(n->fd, st) == -1)
			return -errno;
	} else if (fstatat(lfs.dirfd, rel(path), st, AT_SYMLINK_NOFOLLOW) ==
	    -1) {
		return -errno;
	} else if (S_ISREG(st->st_mode)) {
		n = node_find(st->st_dev, st->st_ino);
	}
	if (n != NULL && n->dirty) {
		st->st_size = n->size;
		st->st_blocks = (n->size + 511) / 512;
		st->st_mtim = n->mtime;
		st->st_ctim = n->mtime;
	}
	return 0;
}

static int
lfs_access(const char *path, int mask)
{
	if (is_control(path))
		return 0;
	GUARD(path);
	if (faccessat(lfs.dirfd, rel(path), mask, 0) == -1)
		return -errno;
	return 0;
}

static int
lfs_readlink(const char *path, char *buf, size_t size)
{
	ssize_t len;

	GUARD(path);
	if (size == 0)
		return -EINVAL;
	if ((len = readlinkat(lfs.dirfd, rel(path), buf, size - 1)) == -1)
		return -errno;
	buf[len] = '\0';
	return 0;
}

static int
lfs_mknod(const char *path, mode_t mode, dev_t rdev)
{
	GUARD(path);
	if (is_control(path))
		return -EEXIST;
	if (mknodat(lfs.dirfd, rel(path), mode, rdev) == -1)
		return -errno;
	chown_to_caller(path);
	return journal_add(NS_CREATE, rel(path), NULL, NULL, 0);
}

static int
lfs_mkdir(const char *path, mode_t mode)
{
	GUARD(path);
	if (is_control(path))
		return -EEXIST;
	if (mkdirat(lfs.dirfd, rel(path), mode) == -1)
		return -errno;
	chown_to_caller(path);
	return journal_add(NS_MKDIR, rel(path), NULL, NULL, 0);
}

static int
lfs_unlink(const char *path)
{
	char name[32];
	struct stat st;
	int rc;

	GUARD(path);
	if (is_control(path))
		return -EPERM;
	if (fstatat(lfs.dirfd, rel(path), &st, AT_SYMLINK_NOFOLLOW) == -1)
		return -errno;
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	if ((rc = trash_move(rel(path), name, sizeof(name))) != 0)
		return rc;
	return journal_add(NS_REMOVE, rel(path), NULL, name, 0);
}

static int
lfs_rmdir(const char *path)
{
	struct stat st;

	GUARD(path);
	if (fstatat(lfs.dirfd, rel(path), &st, AT_SYMLINK_NOFOLLOW) == -1)
		return -errno;
	if (unlinkat(lfs.dirfd, rel(path), AT_REMOVEDIR) == -1)
		return -errno;
	return journal_add(NS_RMDIR, rel(path), NULL, NULL, st.st_mode & 07777);
}

static int
lfs_symlink(const char *target, const char *path)
{
	GUARD(path);
	if (is_control(path))
		return -EEXIST;
	if (symlinkat(target, lfs.dirfd, rel(path)) == -1)
		return -errno;
	chown_to_caller(path);
	return journal_add(NS_CREATE, rel(path), NULL, NULL, 0);
}

static int
lfs_link(const char *from, const char *to)
{
	GUARD(from);
	GUARD(to);
	if (is_control(from) || is_control(to))
		return -EPERM;
	if (linkat(lfs.dirfd, rel(from), lfs.dirfd, rel(to), 0) == -1)
		return -errno;
	return journal_add(NS_CREATE, rel(to), NULL, NULL, 0);
}

/* 1 if the directory at relative path has entries besides . and .. */
static int
dir_has_entries(const char *path)
{
	struct dirent *de;
	DIR *d;
	int fd, found = 0;

	fd = openat(lfs.dirfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1 || (d = fdopendir(fd)) == NULL) {
		if (fd != -1)
			close(fd);
		return 0;
	}
	while (!found && (de = readdir(d)) != NULL)
		found = strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0;
	closedir(d);
	return found;
}

static int
lfs_rename(const char *from, const char *to, unsigned int flags)
{
	struct stat sf, sto;
	char name[32];
	const char *f = rel(from), *t = rel(to);
	int rc, displaced;

	GUARD(from);
	GUARD(to);
	if (is_control(from) || is_control(to))
		return -EPERM;
	if (flags & ~(unsigned int)(RENAME_NOREPLACE | RENAME_EXCHANGE))
		return -EINVAL;
	if (flags & RENAME_EXCHANGE) {
		if (renameat2(lfs.dirfd, f, lfs.dirfd, t, RENAME_EXCHANGE) ==
		    -1)
			return -errno;
		return journal_add(NS_EXCHANGE, f, t, NULL, 0);
	}
	if (fstatat(lfs.dirfd, f, &sf, AT_SYMLINK_NOFOLLOW) == -1)
		return -errno;
	displaced = fstatat(lfs.dirfd, t, &sto, AT_SYMLINK_NOFOLLOW) == 0;
	if (displaced && (flags & RENAME_NOREPLACE))
		return -EEXIST;
	if (displaced && sf.st_dev == sto.st_dev && sf.st_ino == sto.st_ino)
		return 0;	/* the same file: POSIX does nothing */
	if (displaced) {
		/* The checks rename(2) would make against the target. */
		if (S_ISDIR(sf.st_mode) && !S_ISDIR(sto.st_mode))
			return -ENOTDIR;
		if (!S_ISDIR(sf.st_mode) && S_ISDIR(sto.st_mode))
			return -EISDIR;
		if (S_ISDIR(sto.st_mode) && dir_has_entries(t))
			return -ENOTEMPTY;
		if ((rc = trash_move(t, name, sizeof(name))) != 0)
			return rc;
	}
	if (renameat(lfs.dirfd, f, lfs.dirfd, t) == -1) {
		rc = -errno;
		if (displaced)
			renameat(lfs.trashfd, name, lfs.dirfd, t);
		return rc;
	}
	return journal_add(NS_RENAME, f, t, displaced ? name : NULL, 0);
}

static int
lfs_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct node *n = node_of(fi);

	GUARD(path);
	if (is_control(path))
		return -EPERM;
	if (n != NULL ? fchmod(n->fd, mode) :
	    fchmodat(lfs.dirfd, rel(path), mode, 0))
		return -errno;
	return 0;
}

static int
lfs_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
	struct node *n = node_of(fi);

	GUARD(path);
	if (is_control(path))
		return -EPERM;
	if (n != NULL ? fchown(n->fd, uid, gid) :
	    fchownat(lfs.dirfd, rel(path), uid, gid, AT_SYMLINK_NOFOLLOW))
		return -errno;
	return 0;
}

static int
lfs_utimens(const char *path, const struct timespec tv[2],
    struct fuse_file_info *fi)
{
	struct node *n = node_of(fi);

	GUARD(path);
	if (is_control(path))
		return 0;
	if (n != NULL ? futimens(n->fd, tv) :
	    utimensat(lfs.dirfd, rel(path), tv, AT_SYMLINK_NOFOLLOW))
		return -errno;
	if (n == NULL && path != NULL) {
		struct stat st;

		if (fstatat(lfs.dirfd, rel(path), &st, AT_SYMLINK_NOFOLLOW) ==
		    0)
			n = node_find(st.st_dev, st.st_ino);
	}
	/* The times just set win over those of unsynced writes. */
	if (n != NULL && n->dirty && tv[1].tv_nsec != UTIME_OMIT) {
		if (tv[1].tv_nsec == UTIME_NOW)
			clock_gettime(CLOCK_REALTIME, &n->mtime);
		else
			n->mtime = tv[1];
	}
	return 0;
}

/* Opens the backing file at path for a node, read-write when allowed. */
static int
backing_open(const char *path, int flags, mode_t mode)
{
	int fd, want = flags & (O_CREAT | O_EXCL | O_NOFOLLOW);

	fd = openat(lfs.dirfd, rel(path), O_RDWR | O_CLOEXEC | want, mode);
	if (fd == -1 && (errno == EACCES || errno == EROFS) &&
	    (flags & O_ACCMODE) == O_RDONLY)
		fd = openat(lfs.dirfd, rel(path), O_RDONLY | O_CLOEXEC | want,
		    mode);
	return fd;
}

static int
open_node(struct fuse_file_info *fi, int fd)
{
	struct node *n;
	int rc;

	if ((n = node_get(fd)) == NULL)
		return -errno;
	if ((fi->flags & O_TRUNC) && (fi->flags & O_ACCMODE) != O_RDONLY &&
	    (rc = node_truncate(n, 0)) != 0) {
		node_put(n);
		return rc;
	}
	fi->fh = (uint64_t)(uintptr_t)n;
	/* Only this daemon changes the files: the kernel's cache holds. */
	fi->keep_cache = 1;
	fi->direct_io = 0;
	return 0;
}

static int
lfs_open(const char *path, struct fuse_file_info *fi)
{
	int fd;

	if (is_control(path)) {
		fi->fh = (uint64_t)(uintptr_t)&control_handle;
		fi->direct_io = 1;
		return 0;
	}
	GUARD(path);
	if ((fd = backing_open(path, fi->flags, 0)) == -1)
		return -errno;
	return open_node(fi, fd);
}

static int
lfs_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	int fd, created = 1, rc;

	GUARD(path);
	if (is_control(path))
		return -EEXIST;
	fd = backing_open(path, O_CREAT | O_EXCL, mode);
	if (fd == -1 && errno == EEXIST && !(fi->flags & O_EXCL)) {
		created = 0;
		fd = backing_open(path, fi->flags & ~(O_CREAT | O_EXCL), 0);
	}
	if (fd == -1)
		return -errno;
	if (created) {
		chown_to_caller(path);
		if ((rc = journal_add(NS_CREATE, rel(path), NULL, NULL, 0)) !=
		    0) {
			close(fd);
			return rc;
		}
	}
	return open_node(fi, fd);
}

static int
lfs_read(const char *path, char *buf, size_t size, off_t off,
    struct fuse_file_info *fi)
{
	char text[LFS_STATS_MAX];
	struct node *n = node_of(fi);
	int len;

	(void)path;
	if (is_control_fi(fi)) {
		len = control_text(text, sizeof(text));
		if (off >= len)
			return 0;
		if (size > (size_t)(len - off))
			size = (size_t)(len - off);
		memcpy(buf, text + off, size);
		return (int)size;
	}
	if (lfs.off)
		return -EIO;
	if (n == NULL)
		return -EBADF;
	return node_read(n, buf, size, off);
}

static int
lfs_write(const char *path, const char *buf, size_t size, off_t off,
    struct fuse_file_info *fi)
{
	struct node *n = node_of(fi);
	size_t len = size;

	(void)path;
	if (is_control_fi(fi)) {
		while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
			len--;
		if (len == 3 && memcmp(buf, "cut", 3) == 0) {
			power_cut();
			return (int)size;
		}
		return -EINVAL;
	}
	if (lfs.off)
		return -EIO;
	if (n == NULL)
		return -EBADF;
	return node_write(n, buf, size, off);
}

static int
lfs_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	struct node *n = node_of(fi);
	int fd, rc;

	if (is_control(path))
		return 0;
	GUARD(path);
	if (n != NULL)
		return node_truncate(n, size);
	if ((fd = backing_open(path, O_WRONLY, 0)) == -1)
		return -errno;
	if ((n = node_get(fd)) == NULL)
		return -errno;
	rc = node_truncate(n, size);
	node_put(n);
	return rc;
}

static int
lfs_statfs(const char *path, struct statvfs *sv)
{
	GUARD(path);
	if (fstatvfs(lfs.dirfd, sv) == -1)
		return -errno;
	return 0;
}

/* Closing syncs nothing, so it has nothing to report either. */
static int
lfs_flush(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	(void)fi;
	return 0;
}

static int
lfs_release(const char *path, struct fuse_file_info *fi)
{
	struct node *n = node_of(fi);

	(void)path;
	if (n != NULL)
		node_put(n);
	return 0;
}

static int
lfs_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	struct node *n = node_of(fi);

	(void)path;
	if (is_control_fi(fi))
		return 0;
	if (lfs.off)
		return -EIO;
	if (n == NULL)
		return -EBADF;
	return node_sync(n, datasync);
}

/* An open directory; readdir gets no path, so it knows the root here. */
struct dir_handle {
	DIR *d;
	int root;
};

static int
lfs_opendir(const char *path, struct fuse_file_info *fi)
{
	struct dir_handle *h;
	int fd;

	GUARD(path);
	if ((h = calloc(1, sizeof(*h))) == NULL)
		return -ENOMEM;
	h->root = strcmp(rel(path), ".") == 0;
	fd = openat(lfs.dirfd, rel(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1 || (h->d = fdopendir(fd)) == NULL) {
		int e = errno;

		if (fd != -1)
			close(fd);
		free(h);
		return -e;
	}
	fi->fh = (uint64_t)(uintptr_t)h;
	return 0;
}

static int
lfs_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
    struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	struct dir_handle *h = (struct dir_handle *)(uintptr_t)fi->fh;
	struct dirent *de;
	struct stat st;

	(void)path;
	(void)off;
	(void)flags;
	if (lfs.off)
		return -EIO;
	rewinddir(h->d);
	while ((de = readdir(h->d)) != NULL) {
		if (h->root && strcmp(de->d_name, LFS_TRASH) == 0)
			continue;
		memset(&st, 0, sizeof(st));
		st.st_ino = de->d_ino;
		st.st_mode = (mode_t)DTTOIF(de->d_type);
		if (fill(buf, de->d_name, &st, 0, 0) != 0)
			break;
	}
	return 0;
}

static int
lfs_releasedir(const char *path, struct fuse_file_info *fi)
{
	struct dir_handle *h = (struct dir_handle *)(uintptr_t)fi->fh;

	(void)path;
	closedir(h->d);
	free(h);
	return 0;
}

static int
lfs_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi)
{
	struct dir_handle *h = (struct dir_handle *)(uintptr_t)fi->fh;

	(void)path;
	if (lfs.off)
		return -EIO;
	lfs.dirsyncs++;
	journal_commit();
	if ((datasync ? fdatasync(dirfd(h->d)) : fsync(dirfd(h->d))) == -1)
		return -errno;
	return 0;
}

static const struct fuse_operations lfs_ops = {
	.init = lfs_init,
	.destroy = lfs_destroy,
	.getattr = lfs_getattr,
	.access = lfs_access,
	.readlink = lfs_readlink,
	.mknod = lfs_mknod,
	.mkdir = lfs_mkdir,
	.unlink = lfs_unlink,
	.rmdir = lfs_rmdir,
	.symlink = lfs_symlink,
	.link = lfs_link,
	.rename = lfs_rename,
	.chmod = lfs_chmod,
	.chown = lfs_chown,
	.utimens = lfs_utimens,
	.truncate = lfs_truncate,
	.open = lfs_open,
	.create = lfs_create,
	.read = lfs_read,
	.write = lfs_write,
	.statfs = lfs_statfs,
	.flush = lfs_flush,
	.release = lfs_release,
	.fsync = lfs_fsync,
	.opendir = lfs_opendir,
	.readdir = lfs_readdir,
	.releasedir = lfs_releasedir,
	.fsyncdir = lfs_fsyncdir,
};

/* The first argument that is no option is BACKING; the mountpoint stays. */
static int
opt_proc(void *data, const char *arg, int key, struct fuse_args *out)
{
	(void)data;
	(void)out;
	if (key == FUSE_OPT_KEY_NONOPT && lfs.backing == NULL) {
		lfs.backing = arg;
		return 0;
	}
	return 1;
}

int
main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	int rc;

	if (fuse_opt_parse(&args, NULL, NULL, opt_proc) == -1)
		return 2;
	if (lfs.backing == NULL) {
		fprintf(stderr, "usage: lossyfs BACKING MOUNTPOINT "
		    "[-o OPTION]... [-d]\n");
		return 2;
	}
	lfs.dirfd = open(lfs.backing, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (lfs.dirfd == -1) {
		fprintf(stderr, "lossyfs: cannot open '%s': %s\n",
		    lfs.backing, strerror(errno));
		return 1;
	}
	if (mkdirat(lfs.dirfd, LFS_TRASH, 0700) == -1 && errno != EEXIST) {
		fprintf(stderr, "lossyfs: cannot create '%s/%s': %s\n",
		    lfs.backing, LFS_TRASH, strerror(errno));
		return 1;
	}
	lfs.trashfd = openat(lfs.dirfd, LFS_TRASH,
	    O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (lfs.trashfd == -1) {
		fprintf(stderr, "lossyfs: cannot open '%s/%s': %s\n",
		    lfs.backing, LFS_TRASH, strerror(errno));
		return 1;
	}
	/* A daemon that died left no journal: its trash is for good. */
	trash_empty();
	/* Foreground (the caller keeps the pid), one request at a time. */
	if (fuse_opt_add_arg(&args, "-f") == -1 ||
	    fuse_opt_add_arg(&args, "-s") == -1 ||
	    fuse_opt_add_arg(&args, "-ofsname=lossyfs,subtype=lossyfs") ==
	    -1)
		return 2;
	rc = fuse_main(args.argc, args.argv, &lfs_ops, NULL);
	fuse_opt_free_args(&args);
	return rc;
}
