/*
 * ceiling.c: the ceilings userreg is measured against, behind the same
 * nginx: N pre-forked libfcgi workers that read the request body and
 * answer every request with a fixed small JSON body.
 *
 * usage: ceiling SOCKET_PATH WORKERS [DURABLE_FILE [relay]]
 *
 * Without DURABLE_FILE it is the trivial responder: nothing beyond
 * FastCGI itself. With it, the durable responder: each request first takes
 * an exclusive lock on DURABLE_FILE, appends 100 bytes, fdatasyncs and
 * unlocks, as a registry that makes every acknowledged write durable under
 * one lock must at least do; the difference between the two is one
 * serialized fdatasync.
 *
 * With "relay", the relayed responder: the workers hand each request's
 * 100 bytes to one relay process over a socket of their own and answer
 * once it replies; the relay appends what every worker sent, fdatasyncs
 * once for all of them and replies to each. That is the least a service
 * whose writes go through one writer process can do: its difference from
 * the durable responder is the hand-off to the writer and back.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcgiapp.h>

#define WORKERS_MAX 64
#define RECORD_BYTES 100

static pid_t pids[WORKERS_MAX + 1];	/* the relay too */
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

static const char record[RECORD_BYTES + 1] =
    "0123456789012345678901234567890123456789"
    "0123456789012345678901234567890123456789"
    "0123456789012345678\n";

/* One durable record: lock, append, fdatasync, unlock. 0 or -1. */
static int
durable_append(int fd)
{
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

/* A relayed record: sent to the relay, then its one-byte verdict. */
static int
relayed_append(int relay)
{
	char verdict;

	if (write(relay, record, RECORD_BYTES) != RECORD_BYTES ||
	    read(relay, &verdict, 1) != 1)
		return -1;
	return verdict == 'y' ? 0 : -1;
}

/* Reads exactly n bytes from fd: 0, or -1 at its end or on an error. */
static int
read_full(int fd, char *buf, size_t n)
{
	ssize_t got;

	while (n > 0) {
		if ((got = read(fd, buf, n)) <= 0) {
			if (got < 0 && errno == EINTR)
				continue;
			return -1;
		}
		buf += got;
		n -= (size_t)got;
	}
	return 0;
}

/*
 * The relay: waits for records from the workers' sockets, appends all
 * that came together in one write, fdatasyncs once and replies to each.
 * No delay is added: a batch is whatever arrived during the last sync.
 */
static void
relay(const int *socks, int n, const char *path)
{
	static char batch[WORKERS_MAX * RECORD_BYTES];
	struct pollfd p[WORKERS_MAX];
	int from[WORKERS_MAX];
	int fd, i, k, ready;
	char verdict;

	if ((fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0600)) < 0) {
		perror(path);
		_exit(1);
	}
	for (i = 0; i < n; i++) {
		p[i].fd = socks[i];
		p[i].events = POLLIN;
	}
	for (;;) {
		if ((ready = poll(p, (nfds_t)n, -1)) < 0) {
			if (errno == EINTR)
				continue;
			_exit(1);
		}
		for (i = k = 0; i < n; i++) {
			if (!(p[i].revents & (POLLIN | POLLHUP)))
				continue;
			if (read_full(p[i].fd, batch + k * RECORD_BYTES,
			    RECORD_BYTES) != 0)
				_exit(0);	/* a worker is gone */
			from[k++] = p[i].fd;
		}
		verdict = write(fd, batch, (size_t)k * RECORD_BYTES) ==
		    (ssize_t)k * RECORD_BYTES && fdatasync(fd) == 0 ? 'y' : 'n';
		for (i = 0; i < k; i++)
			if (write(from[i], &verdict, 1) != 1)
				_exit(0);
	}
}

static void
serve(int sock, const char *durable, int relay_fd)
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
	if (durable != NULL && relay_fd < 0 &&
	    (fd = open(durable, O_WRONLY | O_APPEND | O_CREAT, 0600)) < 0) {
		perror(durable);
		_exit(1);
	}
	FCGX_InitRequest(&fr, sock, 0);
	while (FCGX_Accept_r(&fr) >= 0) {
		/* Read the whole body, as any real responder must. */
		while (FCGX_GetStr(buf, sizeof(buf), fr.in) > 0)
			;
		good = relay_fd >= 0 ? relayed_append(relay_fd) == 0 :
		    fd < 0 || durable_append(fd) == 0;
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
	int pair[WORKERS_MAX][2];
	int relay_end[WORKERS_MAX];
	int sock, i, n, relayed;

	relayed = argc == 5 && strcmp(argv[4], "relay") == 0;
	if ((argc != 3 && argc != 4 && !relayed) ||
	    (n = parse_count(argv[2], WORKERS_MAX)) < 0) {
		fprintf(stderr, "usage: ceiling SOCKET_PATH WORKERS "
		    "[DURABLE_FILE [relay]]\n");
		return 2;
	}
	durable = argc >= 4 ? argv[3] : NULL;
	for (i = 0; relayed && i < n; i++) {
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, pair[i]) != 0) {
			perror("socketpair");
			return 1;
		}
		relay_end[i] = pair[i][1];
	}
	FCGX_Init();
	unlink(argv[1]);
	if ((sock = FCGX_OpenSocket(argv[1], 1024)) < 0) {
		fprintf(stderr, "ceiling: cannot listen on %s\n", argv[1]);
		return 1;
	}
	chmod(argv[1], 0666);
	signal(SIGTERM, on_term);
	if (relayed && (pids[npids] = fork()) == 0) {
		signal(SIGTERM, SIG_DFL);
		close(sock);
		for (i = 0; i < n; i++)
			close(pair[i][0]);
		relay(relay_end, n, durable);
	}
	if (relayed && pids[npids] > 0)
		npids++;
	for (i = 0; i < n; i++) {
		if ((pids[npids] = fork()) == 0) {
			int j;

			signal(SIGTERM, SIG_DFL);
			for (j = 0; relayed && j < n; j++) {
				close(pair[j][1]);
				if (j != i)
					close(pair[j][0]);
			}
			serve(sock, durable, relayed ? pair[i][0] : -1);
		}
		if (pids[npids] > 0)
			npids++;
	}
	while (wait(NULL) > 0 || errno == EINTR)
		;
	return 0;
}
