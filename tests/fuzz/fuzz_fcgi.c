/*
 * fuzz_fcgi.c: libFuzzer harness for FastCGI records as a front server
 * sends them. The input is the byte stream of one connection; every
 * request found in it is read to its end and answered, the connection
 * kept while the front asks for it. Params must come out as NAME=value
 * strings within FCGI_PARAMS_MAX, and nothing may hang or crash.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fcgi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads what the responder answers, so that its sends never block. */
static void *
drain(void *arg)
{
	char buf[65536];
	int fd = *(int *)arg;

	while (read(fd, buf, sizeof(buf)) > 0)
		;
	return NULL;
}

static void
check_params(struct fcgi_conn *c)
{
	char **p;
	size_t total = 0;

	for (p = fcgi_params(c); *p != NULL; p++) {
		const char *eq = strchr(*p, '=');

		if (eq == NULL || eq == *p)
			abort();
		total += strlen(*p);
	}
	if (total > FCGI_PARAMS_MAX)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fcgi_conn *c;
	char buf[4096];
	pthread_t t;
	int sv[2], fd, served = 0;
	long n;

	if (c == NULL && (c = fcgi_conn_new()) == NULL)
		abort();
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		return 0;
	/* The whole stream is queued before the responder reads. */
	if (size > 0 && write(sv[1], data, size) != (ssize_t)size)
		abort();
	shutdown(sv[1], SHUT_WR);
	if (pthread_create(&t, NULL, drain, &sv[1]) != 0)
		abort();
	for (fd = sv[0]; fd >= 0 && served < 64; served++) {
		/* It closes fd when it finds no request. */
		if (fcgi_begin(c, fd) != 1) {
			fd = -1;
			break;
		}
		check_params(c);
		while ((n = fcgi_read(c, buf, sizeof(buf))) > 0)
			;
		if (n == 0 && !fcgi_input_ended(c))
			abort();
		(void)fcgi_write(c, "Status: 200 OK\r\n\r\nok", 20);
		if (fcgi_end(c) != 0 || !fcgi_keep_conn(c) ||
		    fcgi_input_failed(c) || fcgi_read_ahead(c)) {
			fcgi_close(c, 0);
			fd = -1;
			break;
		}
		fd = fcgi_detach(c);
	}
	if (fd >= 0)
		close(fd);
	pthread_join(t, NULL);
	close(sv[1]);
	return 0;
}
