/*
 * cgitime.c: times plain CGI requests from exec to exit, so the figure
 * holds the program's own start, request and exit and next to nothing of
 * the harness: each run spawns BINARY with a CGI environment (RFC 3875),
 * writes the body into its stdin pipe, reads its stdout to the end and
 * waits for it.
 *
 * usage: cgitime RUNS EXPECT BINARY METHOD URI [BODY]
 *
 * Every "@@" in BODY becomes the run's number (fresh names per run).
 * USERREG_CONF and PATH pass through. Prints one line
 *   runs N bad B median_us M p90_us P min_us L max_us H
 * and exits 1 when any answer's Status was not EXPECT (or the program
 * failed), 2 on bad usage.
 */
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RUNS_MAX 100000
#define BODY_MAX 4096
#define OUT_MAX 65536
#define ENV_MAX 24

extern char **environ;

/* Digits only, 1 to max; -1 otherwise. */
static long
parse_count(const char *s, long max)
{
	long n = 0;

	if (*s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9' || n > max)
			return -1;
		n = n * 10 + (*s - '0');
	}
	return n >= 1 && n <= max ? n : -1;
}

/* tmpl with each "@@" replaced by run into out (size BODY_MAX). */
static size_t
expand(const char *tmpl, long run, char *out)
{
	char num[24];
	size_t len = 0, nlen;

	nlen = (size_t)snprintf(num, sizeof(num), "%ld", run);
	while (*tmpl != '\0' && len + nlen + 1 < BODY_MAX) {
		if (tmpl[0] == '@' && tmpl[1] == '@') {
			memcpy(out + len, num, nlen);
			len += nlen;
			tmpl += 2;
		} else {
			out[len++] = *tmpl++;
		}
	}
	out[len] = '\0';
	return len;
}

/* Appends one formatted "NAME=value" to envp (room for ENV_MAX). */
static void add_env(char **envp, size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
add_env(char **envp, size_t *n, const char *fmt, ...)
{
	static char vars[ENV_MAX][BODY_MAX];
	va_list ap;

	if (*n >= ENV_MAX - 1)
		return;
	va_start(ap, fmt);
	vsnprintf(vars[*n], BODY_MAX, fmt, ap);
	va_end(ap);
	envp[*n] = vars[*n];
	(*n)++;
}

static int
cmp_long(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;

	return (x > y) - (x < y);
}

static long
usec_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (long)(t1.tv_sec - t0->tv_sec) * 1000000L +
	    (t1.tv_nsec - t0->tv_nsec) / 1000L;
}

/*
 * One request: the answer's status code into *status (0 when there was
 * none), microseconds from spawn to exit into *usec. 0, or -1 when the
 * program could not be run.
 */
static int
run_once(char *const argv[], char *const envp[], const char *body,
    size_t body_len, int *status, long *usec)
{
	static char out[OUT_MAX + 1];
	posix_spawn_file_actions_t fa;
	struct timespec t0;
	int in[2], outp[2], wstatus, rc = -1;
	size_t got = 0;
	ssize_t n;
	pid_t pid;

	*status = 0;
	if (pipe(in) != 0)
		return -1;
	if (pipe(outp) != 0) {
		close(in[0]);
		close(in[1]);
		return -1;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, outp[1], 1);
	posix_spawn_file_actions_addclose(&fa, in[1]);
	posix_spawn_file_actions_addclose(&fa, outp[0]);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if ((errno = posix_spawn(&pid, argv[0], &fa, NULL, argv, envp)) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		goto out;
	}
	close(in[0]);
	close(outp[1]);
	in[0] = outp[1] = -1;
	if (body_len > 0 && write(in[1], body, body_len) != (ssize_t)body_len)
		fprintf(stderr, "cgitime: short write to the program\n");
	close(in[1]);
	in[1] = -1;
	for (;;) {
		n = read(outp[0], out + got, OUT_MAX - got);
		if (n > 0 && (got += (size_t)n) < OUT_MAX)
			continue;
		if (n < 0 && errno == EINTR)
			continue;
		if (n > 0) {
			/* Longer than we keep: drain the rest. */
			got = OUT_MAX;
			while (read(outp[0], out, 1) > 0)
				;
		}
		break;
	}
	while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR)
		;
	*usec = usec_since(&t0);
	posix_spawn_file_actions_destroy(&fa);
	out[got] = '\0';
	if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0 &&
	    strncmp(out, "Status: ", 8) == 0)
		*status = (int)strtol(out + 8, NULL, 10);
	rc = 0;
out:
	if (in[0] >= 0)
		close(in[0]);
	if (in[1] >= 0)
		close(in[1]);
	if (outp[0] >= 0)
		close(outp[0]);
	if (outp[1] >= 0)
		close(outp[1]);
	return rc;
}

int
main(int argc, char **argv)
{
	static char body[BODY_MAX], length[32];
	char *envp[ENV_MAX + 1], *args[2];
	const char *uri, *q, *tmpl, *v;
	long runs, expect, i, *usec, bad = 0;
	size_t body_len, nenv = 0;
	int status, first_bad = -1;

	if ((argc != 6 && argc != 7) ||
	    (runs = parse_count(argv[1], RUNS_MAX)) < 0 ||
	    (expect = parse_count(argv[2], 599)) < 0) {
		fprintf(stderr, "usage: cgitime RUNS EXPECT BINARY METHOD URI "
		    "[BODY]\n");
		return 2;
	}
	uri = argv[5];
	tmpl = argc == 7 ? argv[6] : NULL;
	if ((usec = calloc((size_t)runs, sizeof(*usec))) == NULL)
		return 1;
	q = strchr(uri, '?');

	add_env(envp, &nenv, "GATEWAY_INTERFACE=CGI/1.1");
	add_env(envp, &nenv, "SERVER_PROTOCOL=HTTP/1.1");
	add_env(envp, &nenv, "SERVER_SOFTWARE=userreg-bench");
	add_env(envp, &nenv, "SERVER_NAME=localhost");
	add_env(envp, &nenv, "SERVER_PORT=80");
	add_env(envp, &nenv, "REMOTE_ADDR=127.0.0.1");
	add_env(envp, &nenv, "REQUEST_METHOD=%s", argv[4]);
	add_env(envp, &nenv, "REQUEST_URI=%s", uri);
	add_env(envp, &nenv, "SCRIPT_NAME=%.*s",
	    (int)(q != NULL ? (size_t)(q - uri) : strlen(uri)), uri);
	add_env(envp, &nenv, "QUERY_STRING=%s", q != NULL ? q + 1 : "");
	if ((v = getenv("USERREG_CONF")) != NULL)
		add_env(envp, &nenv, "USERREG_CONF=%s", v);
	if ((v = getenv("PATH")) != NULL)
		add_env(envp, &nenv, "PATH=%s", v);
	if (tmpl != NULL)
		add_env(envp, &nenv, "CONTENT_TYPE=application/json");
	/* CONTENT_LENGTH goes last: it changes with every run's body. */
	envp[nenv + (tmpl != NULL)] = NULL;
	args[0] = argv[3];
	args[1] = NULL;

	for (i = 0; i < runs; i++) {
		body_len = tmpl != NULL ? expand(tmpl, i, body) : 0;
		if (tmpl != NULL) {
			snprintf(length, sizeof(length), "CONTENT_LENGTH=%zu",
			    body_len);
			envp[nenv] = length;
		}
		if (run_once(args, envp, body, body_len, &status,
		    &usec[i]) != 0) {
			fprintf(stderr, "cgitime: cannot run %s: %s\n",
			    argv[3], strerror(errno));
			return 1;
		}
		if (status != expect) {
			if (bad++ == 0)
				first_bad = status;
		}
	}
	qsort(usec, (size_t)runs, sizeof(*usec), cmp_long);
	printf("runs %ld bad %ld median_us %ld p90_us %ld min_us %ld "
	    "max_us %ld\n", runs, bad, usec[runs / 2],
	    usec[(runs * 9) / 10 < runs ? (runs * 9) / 10 : runs - 1],
	    usec[0], usec[runs - 1]);
	if (bad > 0)
		fprintf(stderr, "cgitime: %ld answers were not %ld (first: "
		    "%d)\n", bad, expect, first_bad);
	free(usec);
	return bad > 0 ? 1 : 0;
}
