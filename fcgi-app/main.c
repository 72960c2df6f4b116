/* main.c: the userreg.fcgi process: options, config, pool, accept loop. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "http.h"
#include "log.h"
#include "problem.h"
#include "registry.h"
#include "router.h"
#include "users.h"

#define WORKERS_MAX 256
#define LISTEN_BACKLOG 1024
/* A worker that dies sooner than this after its start is crash-looping. */
#define RESPAWN_MIN_SECONDS 1

static volatile sig_atomic_t stopping;	/* SIGTERM or SIGINT seen */
static volatile sig_atomic_t busy;	/* a worker is inside a request */

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: userreg.fcgi [-c FILE] [--listen unix:PATH|HOST:PORT]\n"
	    "                    [--workers N] [--socket-mode OCTAL]\n"
	    "Without --listen it serves FastCGI on fd 0 (spawn-fcgi, systemd)\n"
	    "or, when fd 0 is not a socket, one CGI request.\n"
	    "The config file also comes from USERREG_CONF.\n");
}

/* Idle workers leave at once; busy ones finish the request first. */
static void
worker_on_term(int sig)
{
	(void)sig;
	stopping = 1;
	if (!busy)
		_exit(0);
}

static void
master_on_term(int sig)
{
	(void)sig;
	stopping = 1;
}

static void
on_signal(int sig, void (*fn)(int))
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fn;
	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, NULL);
}

/*
 * Creates the registry's directory when it is missing (one level, as for
 * the default var/users.db), so a fresh checkout runs as it is.
 */
static void
make_registry_dir(const char *path)
{
	char dir[CONFIG_PATH_MAX];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	if ((slash = strrchr(dir, '/')) == NULL || slash == dir)
		return;
	*slash = '\0';
	if (mkdir(dir, 0750) != 0 && errno != EEXIST)
		log_warn("cannot create directory '%s': %s", dir,
		    strerror(errno));
}

/* Opens the registry on first use, so a worker outlives a bad moment. */
static struct registry *
worker_registry(struct users_ctx *ctx)
{
	enum reg_err err;

	if (ctx->reg == NULL) {
		ctx->reg = registry_open(ctx->cfg->registry,
		    ctx->cfg->busy_timeout_ms, &err);
		if (ctx->reg == NULL)
			log_error("cannot open registry '%s': %s",
			    ctx->cfg->registry, registry_err_str(err));
	}
	return ctx->reg;
}

static double
elapsed_ms(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 +
	    (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* The http_handler of a worker: one request, one access log line. */
static void
answer(void *arg, const struct http_request *req, struct http_response *resp)
{
	struct users_ctx *ctx = arg;
	struct timespec t0;
	char path[256], method[32];

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (worker_registry(ctx) == NULL) {
		problem_answer(resp, PROBLEM_REGISTRY_UNAVAILABLE,
		    ctx->cfg->base_path, req->request_id,
		    "the registry cannot be opened; retry later");
		http_add_header(resp, "Retry-After", "%d", USERS_RETRY_AFTER);
	} else {
		router_dispatch(ctx, req, resp);
	}
	/* A handler that forgot to answer still gives a problem body. */
	if (resp->status >= 500 && resp->body == NULL)
		problem_answer(resp, PROBLEM_INTERNAL_ERROR,
		    ctx->cfg->base_path, req->request_id, NULL);
	log_info("%s \"%s %s\" %d %.2fms id=%s",
	    req->remote_addr != NULL ? req->remote_addr : "-",
	    log_escape(method, sizeof(method), req->method),
	    log_escape(path, sizeof(path), req->path), resp->status,
	    elapsed_ms(&t0), req->request_id);
}

/* The accept loop of one worker on listen socket sock (0: fd 0 or CGI). */
static int
worker_loop(const struct config *cfg, int sock)
{
	struct users_ctx ctx = { cfg, NULL };
	int rc;

	on_signal(SIGTERM, worker_on_term);
	on_signal(SIGINT, worker_on_term);
	on_signal(SIGPIPE, SIG_IGN);
	worker_registry(&ctx);
	if (sock == 0 && http_is_cgi())
		rc = http_serve_cgi(cfg->max_body, answer, &ctx);
	else
		rc = http_serve_fastcgi(sock, cfg->max_body, answer, &ctx,
		    &stopping, &busy);
	if (rc != 0 && !stopping)
		log_error("cannot accept requests: %s", strerror(errno));
	registry_close(ctx.reg);
	return rc == 0 ? 0 : 1;
}

static pid_t
spawn_worker(const struct config *cfg, int sock)
{
	pid_t pid = fork();

	if (pid == 0) {
		/* The master's handlers must not run in the worker. */
		_exit(worker_loop(cfg, sock));
	}
	if (pid < 0)
		log_error("cannot fork a worker: %s", strerror(errno));
	return pid;
}

/*
 * The pre-fork master: keeps n workers on sock, replaces any that die,
 * and on SIGTERM or SIGINT stops them (each finishes its request) and
 * returns.
 */
static int
run_pool(const struct config *cfg, int sock, int n)
{
	pid_t pids[WORKERS_MAX];
	time_t started[WORKERS_MAX];
	int i, status, alive;
	pid_t pid;

	on_signal(SIGTERM, master_on_term);
	on_signal(SIGINT, master_on_term);
	on_signal(SIGPIPE, SIG_IGN);
	for (i = 0; i < n; i++) {
		pids[i] = spawn_worker(cfg, sock);
		started[i] = time(NULL);
	}
	log_info("serving with %d workers", n);
	while (!stopping) {
		pid = waitpid(-1, &status, 0);
		if (pid < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (i = 0; i < n; i++) {
			if (pids[i] != pid)
				continue;
			if (stopping)
				break;
			log_error("worker %ld ended (%s %d); starting another",
			    (long)pid, WIFSIGNALED(status) ? "signal" :
			    "status", WIFSIGNALED(status) ? WTERMSIG(status) :
			    WEXITSTATUS(status));
			if (time(NULL) - started[i] < RESPAWN_MIN_SECONDS)
				sleep(1);	/* no spinning on a crash */
			pids[i] = spawn_worker(cfg, sock);
			started[i] = time(NULL);
		}
	}
	for (i = 0; i < n; i++)
		if (pids[i] > 0)
			kill(pids[i], SIGTERM);
	do {
		alive = 0;
		for (i = 0; i < n; i++) {
			if (pids[i] <= 0)
				continue;
			if (waitpid(pids[i], &status, 0) == pids[i] ||
			    errno != EINTR)
				pids[i] = 0;
			else
				alive = 1;
		}
	} while (alive);
	log_info("stopped");
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "workers", required_argument, NULL, 'w' },
		{ "socket-mode", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct config cfg;
	const char *conf = getenv("USERREG_CONF"), *listen_at = NULL;
	char err[512], *end;
	long workers = 1, mode = 0660;
	struct registry *reg;
	enum reg_err rerr;
	int ch, sock, rc, is_unix;

	while ((ch = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			conf = optarg;
			break;
		case 'l':
			listen_at = optarg;
			break;
		case 'w':
			workers = strtol(optarg, &end, 10);
			if (*end != '\0' || workers < 1 ||
			    workers > WORKERS_MAX) {
				fprintf(stderr, "userreg: --workers wants 1 to "
				    "%d\n", WORKERS_MAX);
				return 2;
			}
			break;
		case 'm':
			mode = strtol(optarg, &end, 8);
			if (*end != '\0' || mode < 0 || mode > 0777) {
				fprintf(stderr, "userreg: --socket-mode wants "
				    "an octal mode like 0660\n");
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	config_defaults(&cfg);
	if (conf != NULL && conf[0] != '\0' &&
	    config_load(&cfg, conf, err, sizeof(err)) != 0) {
		fprintf(stderr, "userreg: %s\n", err);
		return 1;
	}
	log_set_level(cfg.log_level);

	/* Create or check the registry once, before any worker exists. */
	make_registry_dir(cfg.registry);
	if ((reg = registry_open(cfg.registry, cfg.busy_timeout_ms,
	    &rerr)) == NULL) {
		log_error("cannot open registry '%s': %s", cfg.registry,
		    registry_err_str(rerr));
		return 1;
	}
	registry_close(reg);

	if (http_init() != 0) {
		log_error("cannot initialize libfcgi");
		return 1;
	}
	if (listen_at == NULL)
		return worker_loop(&cfg, 0);

	/* libfcgi reads "HOST:PORT" or ":PORT" as TCP, anything else a path. */
	is_unix = strchr(listen_at, ':') == NULL;
	if (strncmp(listen_at, "unix:", 5) == 0) {
		listen_at += 5;
		is_unix = 1;
	}
	if (is_unix)
		unlink(listen_at);	/* a stale socket from a killed run */
	if ((sock = http_listen(listen_at, LISTEN_BACKLOG)) < 0) {
		log_error("cannot listen on '%s'", listen_at);
		return 1;
	}
	if (is_unix && chmod(listen_at, (mode_t)mode) != 0)
		log_warn("cannot set mode of '%s': %s", listen_at,
		    strerror(errno));
	rc = run_pool(&cfg, sock, (int)workers);
	close(sock);
	if (is_unix)
		unlink(listen_at);
	return rc;
}
