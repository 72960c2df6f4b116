/*
 * ceiling.c: the fastest possible FastCGI responder behind the same nginx,
 * the ceiling userreg is measured against: N pre-forked libfcgi workers
 * that answer every request with a fixed small JSON body.
 * usage: ceiling SOCKET_PATH WORKERS
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcgiapp.h>

static pid_t pids[64];
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

int
main(int argc, char **argv)
{
	static const char response[] = "Status: 200 OK\r\n"
	    "Content-Type: application/json\r\nContent-Length: 15\r\n\r\n"
	    "{\"status\":\"ok\"}";
	FCGX_Request fr;
	int sock, i, n;

	if (argc != 3 || (n = atoi(argv[2])) < 1 || n > 64) {
		fprintf(stderr, "usage: ceiling SOCKET_PATH WORKERS\n");
		return 2;
	}
	FCGX_Init();
	unlink(argv[1]);
	if ((sock = FCGX_OpenSocket(argv[1], 1024)) < 0)
		return 1;
	chmod(argv[1], 0666);
	for (i = 0; i < n; i++) {
		if ((pids[npids] = fork()) != 0) {
			npids++;
			continue;
		}
		FCGX_InitRequest(&fr, sock, 0);
		while (FCGX_Accept_r(&fr) >= 0) {
			/* libfcgi's own printf knows no %zu: send fixed bytes. */
			FCGX_PutS(response, fr.out);
			FCGX_Finish_r(&fr);
		}
		_exit(0);
	}
	signal(SIGTERM, on_term);
	while (wait(NULL) > 0)
		;
	return 0;
}
