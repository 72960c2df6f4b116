/* pool.h: the pre-fork master: workers, the writer, signals, restarts. */
#ifndef USERREG_POOL_H
#define USERREG_POOL_H

#include <sys/types.h>

#include "config.h"
#include "registry.h"

#define POOL_WORKERS_MAX 256
/* Respawn delays of a process that keeps dying young (ms). */
#define POOL_RESPAWN_MIN_MS 100
#define POOL_RESPAWN_MAX_MS 5000
/* A process that lived this long was not crash-looping (ms). */
#define POOL_HEALTHY_MS 10000
/* How often the master checks that the registry file is the same (ms). */
#define POOL_IDENTITY_MS 1000

/*
 * How a child tells its master why it ended: its registry file was
 * replaced or deleted (the master restarts every process, and decides
 * when a new file may be opened), or the registry could not be opened
 * when it started (it is started again later).
 */
#define POOL_EXIT_MOVED 75
#define POOL_EXIT_UNAVAILABLE 69

/*
 * The registry file the master vetted for its children: after a file was
 * replaced, no child may open the new one before the master has cleaned
 * up after the old one (see pool.c, vet()).
 */
struct pool_vetted {
	int present;		/* 0: none, or not a file (PostgreSQL) */
	dev_t dev;
	ino_t ino;
};

/*
 * In a child: opens the registry as registry_open() does, but refuses a
 * file other than the vetted one v (v NULL or not present: any), setting
 * *moved to 1 then so the child ends with POOL_EXIT_MOVED. Returns the
 * handle, or NULL with why (REG_ERRMSG_SIZE bytes) filled.
 */
struct registry *pool_open_registry(const struct config *cfg, unsigned flags,
    const struct pool_vetted *v, int *moved, char *why);

/* A pool to run. */
struct pool_opts {
	const struct config *cfg;
	int listen_fd;		/* FastCGI listening socket */
	int workers;		/* 1..POOL_WORKERS_MAX */
	const char *unix_path;	/* socket file removed at stop, or NULL */
};

/*
 * Returns how long the master waits at stop for its processes (ms):
 * two lock waits, a drain and a second of slack. After that it kills
 * what is left.
 */
int pool_stop_ms(const struct config *cfg);

/*
 * The master: forks the group-commit writer (SQLite with group_commit =
 * on) and o->workers workers, restarts any that die (with a growing delay
 * when they die young, and retrying a failed fork the same way), and
 * restarts all of them when the registry file at its path is replaced.
 * Signals reach it through a signalfd, so none is lost between checks:
 * SIGTERM or SIGINT stops the workers (each answers what it holds and
 * what waits on the socket), then the writer, and returns 0; SIGHUP
 * reopens the log file and passes itself on. Workers die with their
 * master (PR_SET_PDEATHSIG), so no pool serves unsupervised. Returns the
 * exit status.
 */
int pool_run(const struct pool_opts *o);

/*
 * Serves as a lone worker on listen_fd (spawn-fcgi or systemd without
 * --workers): the signals of a pool worker, no master, writes in
 * transactions of its own. Returns the exit status.
 */
int pool_serve_alone(const struct config *cfg, int listen_fd);

#endif
