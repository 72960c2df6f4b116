/* worker.c: one process answering requests, under FastCGI or as CGI. */
#include "worker.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "log.h"
#include "pool.h"
#include "metrics.h"
#include "problem.h"
#include "registry.h"
#include "router.h"
#include "users.h"
#include "writer.h"

/* A worker's whole state. */
struct worker {
	const struct config *cfg;
	struct users_ctx ctx;
	unsigned open_flags;	/* for registry_open() */
	int sig_fd;
	int in_pool;
	const struct pool_vetted *vetted;
	int moved;		/* the registry file was replaced: stop */
	const char *cfg_error;	/* CGI: the config could not be read */
};

static double
elapsed_ms(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 +
	    (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/*
 * Makes ctx.reg a handle that still reaches the registry: opened on first
 * use (so a worker outlives a bad moment) and checked before every
 * request. Returns 0, or -1 with resp answered 503.
 */
static int
registry_ready(struct worker *w, const struct http_request *req,
    struct http_response *resp)
{
	char why[REG_ERRMSG_SIZE];

	if (w->moved)
		goto unavailable;
	if (w->ctx.reg == NULL) {
		w->ctx.reg = pool_open_registry(w->cfg, w->open_flags,
		    w->vetted, &w->moved, why);
		if (w->ctx.reg == NULL) {
			log_error("cannot open registry '%s' in request %s: %s",
			    w->cfg->registry, req->request_id, why);
			goto unavailable;
		}
	} else if (registry_refresh(w->ctx.reg) != REG_OK) {
		log_error("registry unavailable in request %s: %s",
		    req->request_id, registry_errmsg(w->ctx.reg));
		if (registry_moved(w->ctx.reg) && w->in_pool)
			w->moved = 1;
		goto unavailable;
	}
	return 0;
unavailable:
	problem_answer(resp, PROBLEM_REGISTRY_UNAVAILABLE, w->cfg->base_path,
	    req->request_id, "the registry cannot be reached; retry later");
	http_add_header(resp, "Retry-After", "%d", USERS_RETRY_AFTER);
	return -1;
}

/* The http_handler of a worker: one request, one access log line. */
static void
answer(void *arg, const struct http_request *req, struct http_response *resp)
{
	struct worker *w = arg;
	struct timespec t0;
	char path[256], method[32];
	enum metrics_route route;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	route = metrics_route_of(w->cfg->base_path, req->path);
	if (w->cfg_error != NULL) {
		problem_answer(resp, PROBLEM_INTERNAL_ERROR, w->cfg->base_path,
		    req->request_id, "the service is misconfigured");
		log_error("request %s not served: %s", req->request_id,
		    w->cfg_error);
	} else if (registry_ready(w, req, resp) == 0 ||
	    (route == METRICS_ROUTE_METRICS && w->ctx.reg != NULL)) {
		/* Metrics are most wanted while the registry is down. */
		http_response_release(resp);
		router_dispatch(&w->ctx, req, resp);
	}
	/* A handler that forgot to answer still gives a problem body. */
	if (resp->status >= 500 && resp->body == NULL)
		problem_answer(resp, PROBLEM_INTERNAL_ERROR, w->cfg->base_path,
		    req->request_id, NULL);
	metrics_request(route, metrics_method_of(req->method), resp->status,
	    elapsed_ms(&t0) / 1e3);
	log_info("%s \"%s %s\" %d %.2fms id=%s",
	    req->remote_addr != NULL ? req->remote_addr : "-",
	    log_escape(method, sizeof(method), req->method),
	    log_escape(path, sizeof(path), req->path), resp->status,
	    elapsed_ms(&t0), req->request_id);
}

/* The accept loop's control: signals, and a replaced registry. */
static enum http_run
control(void *arg, int signalled)
{
	struct worker *w = arg;
	struct signalfd_siginfo si;
	enum http_run run = HTTP_RUN;

	if (!signalled)
		return w->moved ? HTTP_STOP : HTTP_RUN;
	while (read(w->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGTERM:
		case SIGINT:
			if (run == HTTP_RUN)
				run = HTTP_DRAIN;
			break;
		case SIGUSR2:
			run = HTTP_STOP;
			break;
		case SIGHUP:
			log_reopen();
			break;
		default:
			break;
		}
	}
	return run;
}

int
worker_main(const struct worker_opts *o)
{
	struct worker w;
	int rc, status = 0;

	memset(&w, 0, sizeof(w));
	w.cfg = o->cfg;
	w.ctx.cfg = o->cfg;
	w.sig_fd = o->sig_fd;
	w.in_pool = o->in_pool;
	w.vetted = o->vetted;
	/* In a pool a replaced file restarts every process; see registry.h. */
	w.open_flags = o->in_pool ? REG_OPEN_NO_REOPEN : 0;
	if (o->writer_addr != NULL) {
		/* Two lock waits: the batch ahead of ours, then ours. */
		w.ctx.writer = writer_client_new(o->writer_addr,
		    o->writer_addr_len, 2 * o->cfg->busy_timeout_ms + 2000);
		if (w.ctx.writer == NULL) {
			log_error("cannot set up the writer's client");
			return 1;
		}
	}
	rc = http_serve_fastcgi(o->listen_fd, o->cfg->max_body, answer, &w,
	    o->sig_fd, control);
	if (rc != 0) {
		log_error("cannot accept requests: %s", strerror(errno));
		status = 1;
	} else if (w.moved) {
		status = POOL_EXIT_MOVED;
	}
	writer_client_free(w.ctx.writer);
	registry_close(w.ctx.reg);
	return status;
}

int
worker_cgi(const struct config *cfg, const char *cfg_error)
{
	struct worker w;
	int rc;

	memset(&w, 0, sizeof(w));
	w.cfg = cfg;
	w.ctx.cfg = cfg;
	w.cfg_error = cfg_error;
	signal(SIGPIPE, SIG_IGN);
	rc = http_serve_cgi(cfg->max_body, answer, &w);
	registry_close(w.ctx.reg);
	return rc == 0 ? 0 : 1;
}
