/*
 * ceiling.c: the ceilings userreg is measured against, behind the same
 * nginx: N pre-forked libfcgi workers that read the request body and
 * answer every request with a fixed small JSON body.
 *
 * usage: ceiling SOCKET_PATH WORKERS [DURABLE_FILE]
 *
 * Without DURABLE_FILE it is the trivial responder: nothing beyond
 * FastCGI itself. With it, the durable responder: each request first takes
 * an exclusive lock on DURABLE_FILE, appends 100 bytes, fdatasyncs and
 * unlocks, as a registry that makes every acknowledged write durable under
 * one lock must at least do; the difference between the two is one
 * serialized fdatasync.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcgiapp.h>

#define WORKERS_MAX 64
#define RECORD_BYTES 100

static pid_t pids[WORKERS_MAX];
static int npids;

/* The master forwards SIGTERM to its workers, then leaves. */
static void
on_term(int sig)
{
	int i;

	(void)sig;
	for (i = 0; i < npids; i++)
		kill(pids[i], SIGTERM);
	_exit(0);
}

/* Digits only, 1 to max; -1 otherwise. */
static int
parse_count(const char *s, int max)
{
	int n = 0;

	if (*s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9' || n > max)
			return -1;
		n = n * 10 + (*s - '0');
	}
	return n >= 1 && n <= max ? n : -1;
}

/* One durable record: lock, append, fdatasync, unlock. 0 or -1. */
static int
durable_append(int fd)
{
	static const char record[RECORD_BYTES + 1] =
	    "0123456789012345678901234567890123456789"
	    "0123456789012345678901234567890123456789"
	    "0123456789012345678\n";
	struct flock lk;
	int rc = -1;

	memset(&lk, 0, sizeof(lk));
	lk.l_type = F_WRLCK;
	lk.l_whence = SEEK_SET;
	while (fcntl(fd, F_SETLKW, &lk) != 0)
		if (errno != EINTR)
			return -1;
	if (write(fd, record, RECORD_BYTES) == RECORD_BYTES &&
	    fdatasync(fd) == 0)
		rc = 0;
	lk.l_type = F_UNLCK;
	fcntl(fd, F_SETLK, &lk);
	return rc;
}

static void
serve(int sock, const char *durable)
{
	static const char ok[] = "Status: 200 OK\r\n"
	    "Content-Type: application/json\r\nContent-Length: 15\r\n\r\n"
	    "{\"status\":\"ok\"}";
	static const char fail[] = "Status: 500 Internal Server Error\r\n"
	    "Content-Type: application/json\r\nContent-Length: 18\r\n\r\n"
	    "{\"status\":\"fail\"}";
	char buf[4096];
	FCGX_Request fr;
	int fd = -1, good;

	/* Opened after fork, like the registry: each worker its own. */
	if (durable != NULL &&
	    (fd = open(durable, O_WRONLY | O_APPEND | O_CREAT, 0600)) < 0) {
		perror(durable);
		_exit(1);
	}
	FCGX_InitRequest(&fr, sock, 0);
	while (FCGX_Accept_r(&fr) >= 0) {
		/* Read the whole body, as any real responder must. */
		while (FCGX_GetStr(buf, sizeof(buf), fr.in) > 0)
			;
		good = fd < 0 || durable_append(fd) == 0;
		/* libfcgi's own printf knows no %zu: send fixed bytes. */
		FCGX_PutS(good ? ok : fail, fr.out);
		FCGX_Finish_r(&fr);
	}
	_exit(0);
}

int
main(int argc, char **argv)
{
	const char *durable;
	int sock, i, n;

	if ((argc != 3 && argc != 4) ||
	    (n = parse_count(argv[2], WORKERS_MAX)) < 0) {
		fprintf(stderr,
		    "usage: ceiling SOCKET_PATH WORKERS [DURABLE_FILE]\n");
		return 2;
	}
	durable = argc == 4 ? argv[3] : NULL;
	FCGX_Init();
	unlink(argv[1]);
	if ((sock = FCGX_OpenSocket(argv[1], 1024)) < 0) {
		fprintf(stderr, "ceiling: cannot listen on %s\n", argv[1]);
		return 1;
	}
	chmod(argv[1], 0666);
	signal(SIGTERM, on_term);
	for (i = 0; i < n; i++) {
		if ((pids[npids] = fork()) == 0) {
			signal(SIGTERM, SIG_DFL);
			serve(sock, durable);
		}
		if (pids[npids] > 0)
			npids++;
	}
	while (wait(NULL) > 0 || errno == EINTR)
		;
	return 0;
}
