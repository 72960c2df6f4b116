/* worker.h: one process answering requests, under FastCGI or as CGI. */
#ifndef USERREG_WORKER_H
#define USERREG_WORKER_H

#include <stddef.h>

#include "config.h"
#include "pool.h"


/* How a worker runs. */
struct worker_opts {
	const struct config *cfg;
	int listen_fd;			/* FastCGI listening socket */
	int sig_fd;			/* signalfd of TERM, INT, HUP, USR2 */
	int in_pool;			/* a master supervises it */
	const struct pool_vetted *vetted;	/* the file it may open */
	const char *writer_addr;	/* the pool's writer, or NULL */
	size_t writer_addr_len;
};

/*
 * Serves FastCGI requests on o->listen_fd until a signal stops it:
 * SIGTERM or SIGINT answers the request in hand and those already
 * waiting on the socket, then returns; SIGUSR2 (a pool restarting) stops
 * after the request in hand; SIGHUP reopens the log file. While the
 * registry cannot be reached every request is answered 503 at once. In a
 * pool a registry file found replaced (or not the one vetted) ends the
 * worker with POOL_EXIT_MOVED: the master, not the worker, decides when a
 * new file may be opened. Returns the exit status.
 */
int worker_main(const struct worker_opts *o);

/*
 * Answers the one request of a plain CGI process. cfg_error is NULL, or
 * why the configuration could not be read (the answer is then 500 with
 * a problem body, the reason logged): even a start-up failure answers
 * with a status, never a bare exit. Returns the exit status.
 */
int worker_cgi(const struct config *cfg, const char *cfg_error);

#endif
