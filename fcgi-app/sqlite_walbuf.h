/* sqlite_walbuf.h: a SQLite VFS writing each commit's log in one go. */
#ifndef USERREG_SQLITE_WALBUF_H
#define USERREG_SQLITE_WALBUF_H

/*
 * SQLite writes each frame of its write-ahead log in two writes, the
 * frame's 24-byte header and then its page: a commit of 20 pages is 40
 * system calls before its fsync. This VFS wraps the default one and,
 * for log files only, gathers writes that follow one another in memory
 * and gives them to the kernel in a single write when SQLite syncs,
 * reads, truncates, sizes or closes the log (or 1 MiB has gathered).
 * Nothing changes for SQLite: every byte is in the file before the
 * fsync that makes a commit durable, and no other process reads a frame
 * before that commit's fsync (the index in shared memory names it only
 * afterwards). Only for synchronous = FULL, where every commit syncs
 * its log (NORMAL does not: readers would find frames not yet written).
 * Every other file passes through untouched.
 */

/* The VFS's name, for sqlite3_open_v2(). */
#define SQLITE_WALBUF_VFS "userreg-walbuf"

/*
 * Registers the VFS (once; later calls do nothing). Returns a SQLite
 * result code: SQLITE_OK, or the error of the registration.
 */
int sqlite_walbuf_register(void);

/* Writes this process has made to log files: for tests. */
unsigned long sqlite_walbuf_writes(void);

#endif
