/* worker.c: one process answering requests, under FastCGI or as CGI. */
#include "worker.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
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

/* Starts answering req into resp; dispatch() may leave it deferred. */
static void
dispatch(struct worker *w, const struct http_request *req,
    struct http_response *resp, enum metrics_route route)
{
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
}

/* Ends the answer begun at t0: a body for a bare 5xx, metrics, a log line. */
static void
conclude(struct worker *w, const struct http_request *req,
    struct http_response *resp, const struct timespec *t0)
{
	char path[256], method[32];
	double ms = elapsed_ms(t0);

	/* A handler that forgot to answer still gives a problem body. */
	if (resp->status >= 500 && resp->body == NULL)
		problem_answer(resp, PROBLEM_INTERNAL_ERROR, w->cfg->base_path,
		    req->request_id, NULL);
	metrics_request(metrics_route_of(w->cfg->base_path, req->path),
	    metrics_method_of(req->method), resp->status, ms / 1e3);
	log_info("%s \"%s %s\" %d %.2fms id=%s",
	    req->remote_addr != NULL ? req->remote_addr : "-",
	    log_escape(method, sizeof(method), req->method),
	    log_escape(path, sizeof(path), req->path), resp->status, ms,
	    req->request_id);
}

/* The http_handler of a CGI process: one request, one access log line. */
static void
answer(void *arg, const struct http_request *req, struct http_response *resp)
{
	struct worker *w = arg;
	struct timespec t0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	dispatch(w, req, resp, metrics_route_of(w->cfg->base_path,
	    req->path));
	conclude(w, req, resp, &t0);
}

/*
 * Requests one worker holds at once. Only writes handed to the writer
 * wait; everything else is answered as soon as it is read. Enough for
 * every connection of a busy front server to have a write in one batch.
 */
#define WORKER_INFLIGHT_MAX 16

/* One request a worker holds. */
struct slot {
	struct http_exchange *x;
	int busy;
	struct timespec t0;
};

/*
 * Connections accepted and not yet read, at most: each waits in the epoll
 * set, so that a front server that connects before it writes, or keeps a
 * connection open for its next request (FCGI_KEEP_CONN), blocks no read.
 */
#define WORKER_WAITING_MAX 64

/* How long a new connection may stay silent, as libfcgi waited for it. */
#define WORKER_FIRST_BYTE_MS 2000

/* A connection waiting for its request. */
struct waiting {
	int fd;
	int kept;		/* between two requests: no time limit */
	int ready;		/* readable, and no slot was free */
	struct timespec since;
};

/* What the loop does next. */
enum run { RUN = 0, DRAIN, STOP };

struct loop {
	struct worker *w;
	struct slot slots[WORKER_INFLIGHT_MAX];
	size_t nslots;			/* in use: one without a writer */
	size_t busy;
	struct waiting waiting[WORKER_WAITING_MAX];
	size_t nwaiting;
	enum run run;
	int drained;			/* nothing was left on the socket */
	struct timespec drain_start;
	/* What the epoll set watches besides the signalfd: see serve(). */
	int ep;
	int listen_armed;
	int wfd_armed;			/* -1: none */
	unsigned wconn_armed;		/* writer_client_connection() of it */
};

static void await_request(struct loop *l, int fd, int kept);

/* Writes the answer of slot s and frees it. */
static void
finish(struct loop *l, struct slot *s)
{
	int kept;

	conclude(l->w, http_exchange_request(s->x), http_exchange_response(
	    s->x), &s->t0);
	/*
	 * Out of the gauge before the answer leaves: a client's next request
	 * must not find this one still counted (users.c pool_idle()).
	 */
	l->busy--;
	metrics_in_flight((unsigned)l->busy);
	/* A client that went away is its own loss, not the worker's. */
	(void)http_exchange_finish(s->x);
	s->busy = 0;
	if ((kept = http_exchange_kept_connection(s->x)) >= 0)
		await_request(l, kept, 1);
}

/* writer_done: the writer answered a deferred request (or did not). */
static void
written(void *arg, void *tag, struct http_response *answer)
{
	struct loop *l = arg;
	struct slot *s = tag;
	struct http_response *resp = http_exchange_response(s->x);
	const struct http_request *req = http_exchange_request(s->x);

	http_response_release(resp);
	if (answer != NULL) {
		*resp = *answer;
		http_response_init(answer);
	} else {
		/* Its outcome is unknown: never acknowledged, retry later. */
		problem_answer(resp, PROBLEM_REGISTRY_UNAVAILABLE,
		    l->w->cfg->base_path, req->request_id, "the registry's "
		    "writer did not answer; retry later");
		http_add_header(resp, "Retry-After", "%d", USERS_RETRY_AFTER);
	}
	finish(l, s);
}

/* Answers the request slot s has just read, now or once deferred. */
static void
take(struct loop *l, struct slot *s)
{
	struct worker *w = l->w;
	const struct http_request *req = http_exchange_request(s->x);
	struct http_response *resp = http_exchange_response(s->x);

	clock_gettime(CLOCK_MONOTONIC, &s->t0);
	s->busy = 1;
	l->busy++;
	metrics_in_flight((unsigned)l->busy);
	w->ctx.pending_tag = s;
	dispatch(w, req, resp, metrics_route_of(w->cfg->base_path,
	    req->path));
	w->ctx.pending_tag = NULL;
	if (!resp->deferred)
		finish(l, s);
	if (w->moved && l->run == RUN)
		l->run = STOP;
}

/* Reads the signals waiting: TERM and INT drain, USR2 stops, HUP logs. */
static void
take_signals(struct loop *l)
{
	struct signalfd_siginfo si;

	while (read(l->w->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGTERM:
		case SIGINT:
			if (l->run == RUN) {
				l->run = DRAIN;
				clock_gettime(CLOCK_MONOTONIC, &l->drain_start);
			}
			break;
		case SIGUSR2:
			l->run = STOP;
			break;
		case SIGHUP:
			log_reopen();
			break;
		default:
			break;
		}
	}
}

/* Adds fd to (or, add 0, removes it from) the loop's epoll set. */
static int
watch(struct loop *l, int fd, int add, uint32_t events)
{
	struct epoll_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.events = events;
	ev.data.fd = fd;
	if (!add)
		return epoll_ctl(l->ep, EPOLL_CTL_DEL, fd, &ev);
	if (epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ev) == 0)
		return 0;
	return errno == EEXIST ? epoll_ctl(l->ep, EPOLL_CTL_MOD, fd, &ev) :
	    -1;
}

/* Forgets waiting connection i, closing it when close_it. */
static void
drop_waiting(struct loop *l, size_t i, int close_it)
{
	if (close_it)
		close(l->waiting[i].fd);
	l->waiting[i] = l->waiting[--l->nwaiting];
}

/*
 * Waits in the epoll set for the request on connection fd, one event at
 * a time: a connection being answered reports nothing. A connection that
 * cannot wait is closed; its front server sees the close at once.
 */
static void
await_request(struct loop *l, int fd, int kept)
{
	struct waiting *c;

	if (l->nwaiting == WORKER_WAITING_MAX ||
	    watch(l, fd, 1, EPOLLIN | EPOLLONESHOT) != 0) {
		log_error("cannot wait for a request on a connection: %s",
		    l->nwaiting == WORKER_WAITING_MAX ? "too many" :
		    strerror(errno));
		close(fd);
		return;
	}
	c = &l->waiting[l->nwaiting++];
	c->fd = fd;
	c->kept = kept;
	c->ready = 0;
	clock_gettime(CLOCK_MONOTONIC, &c->since);
}

/* A slot holding no request, or NULL. */
static struct slot *
free_slot(struct loop *l)
{
	size_t i;

	for (i = 0; i < l->nslots; i++)
		if (!l->slots[i].busy)
			return &l->slots[i];
	return NULL;
}

/* Reads and answers waiting connection i's request, when a slot is free. */
static void
start_waiting(struct loop *l, size_t i)
{
	struct slot *s = free_slot(l);
	int fd = l->waiting[i].fd;

	if (s == NULL || l->run == STOP) {
		l->waiting[i].ready = 1;
		return;
	}
	drop_waiting(l, i, 0);
	if (http_exchange_start(s->x, fd, l->w->cfg->max_body) == 1)
		take(l, s);
}

/* Whether connection fd has input waiting (or was closed): never waits. */
static int
readable_now(int fd)
{
	struct pollfd p = { fd, POLLIN, 0 };

	return poll(&p, 1, 0) == 1;
}

/*
 * Waits for the request on new connection fd, or, when it is there
 * already and a slot is free, answers it at once: nginx writes its
 * request as it connects, so a worker that wakes for the connection
 * mostly finds it, and one poll() saves a round through the epoll set.
 */
static void
start_new_connection(struct loop *l, int fd)
{
	struct slot *s;

	if (l->run != RUN || (s = free_slot(l)) == NULL || !readable_now(fd)) {
		await_request(l, fd, 0);
		return;
	}
	if (http_exchange_start(s->x, fd, l->w->cfg->max_body) == 1)
		take(l, s);
}

/* Starts the connections whose readiness found every slot taken. */
static void
start_ready(struct loop *l)
{
	size_t i = 0;

	while (i < l->nwaiting && l->busy < l->nslots && l->run != STOP) {
		if (l->waiting[i].ready)
			start_waiting(l, i);	/* moves another one to i */
		else
			i++;
	}
}

/* The waiting connection on fd, reported readable (or closed). */
static void
connection_event(struct loop *l, int fd)
{
	size_t i;

	for (i = 0; i < l->nwaiting; i++)
		if (l->waiting[i].fd == fd) {
			start_waiting(l, i);
			return;
		}
}

/*
 * Closes new connections silent for too long; returns the milliseconds
 * until the next one's limit, or -1 when none waits for its first byte.
 */
static int
expire_waiting(struct loop *l)
{
	double left, next = -1;
	size_t i = 0;

	while (i < l->nwaiting) {
		struct waiting *c = &l->waiting[i];

		if (c->kept || c->ready) {
			i++;
			continue;
		}
		left = WORKER_FIRST_BYTE_MS - elapsed_ms(&c->since);
		if (left <= 0) {
			log_info("closed a connection silent for %d ms",
			    WORKER_FIRST_BYTE_MS);
			drop_waiting(l, i, 1);
			continue;
		}
		if (next < 0 || left < next)
			next = left;
		i++;
	}
	/* Rounded up: a wait that ends early would only wait again. */
	return next < 0 ? -1 : (int)next + 1;
}

/* Whether a new connection still waits for its request. */
static int
new_connection_waiting(const struct loop *l)
{
	size_t i;

	for (i = 0; i < l->nwaiting; i++)
		if (!l->waiting[i].kept)
			return 1;
	return 0;
}

/*
 * Accepts a connection waiting on the socket; while draining, every
 * one, as long as it can wait. Running, one is enough: the listening
 * socket is watched level-triggered, so the next wait returns at once
 * while more are queued, and an accept() that would find nothing is
 * saved on every request of a lightly loaded worker.
 */
static int
accept_all(struct loop *l, int listen_fd)
{
	int fd;

	while (l->run != STOP && l->nwaiting < WORKER_WAITING_MAX) {
		if ((fd = http_accept_connection(listen_fd)) < 0) {
			/* Another worker took it, or the client left first. */
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				l->drained = l->run == DRAIN;
				return 0;
			}
			return -1;
		}
		start_new_connection(l, fd);
		if (l->run == RUN)
			break;
	}
	return 0;
}

/*
 * Watches the listening socket while the loop takes requests. Exclusive:
 * each new connection wakes one idle worker, not all of them.
 */
static int
arm_listener(struct loop *l, int listen_fd, int want)
{
	if (want == l->listen_armed)
		return 0;
	if (watch(l, listen_fd, want, EPOLLIN | EPOLLEXCLUSIVE) != 0)
		return -1;
	l->listen_armed = want;
	return 0;
}

/*
 * Watches the writer's connection while a write waits. Closing a socket
 * drops it from the set by itself; a new connection, maybe under the
 * same number, is added again.
 */
static int
arm_writer(struct loop *l)
{
	const struct writer_client *wc = l->w->ctx.writer;
	int wfd = wc != NULL ? writer_client_fd(wc) : -1;

	if (wfd < 0 || (wfd == l->wfd_armed &&
	    writer_client_connection(wc) == l->wconn_armed))
		return 0;
	if (watch(l, wfd, 1, EPOLLIN) != 0)
		return -1;
	l->wfd_armed = wfd;
	l->wconn_armed = writer_client_connection(wc);
	return 0;
}

/*
 * The worker's loop: waits in epoll(7) on the listening socket, the
 * signalfd and the writer's connection, so signals stay blocked while a
 * request is read and answered (no read ever sees EINTR) and a write
 * waiting for its batch holds no one else up. Returns 0 once it is to
 * stop and holds nothing, -1 when accepting or waiting failed.
 */
static int
serve(struct loop *l, int listen_fd)
{
	struct worker *w = l->w;
	struct epoll_event ev[8];
	int i, n, ms, first_byte, listening, rc = 0;
	int sig, incoming, answers;

	for (;;) {
		if (l->run == DRAIN && !l->drained &&
		    elapsed_ms(&l->drain_start) > HTTP_DRAIN_MAX_MS)
			l->drained = 1;
		first_byte = expire_waiting(l);
		/* Draining, a connection accepted is a request owed. */
		if (l->run != RUN && (l->run == STOP || (l->drained &&
		    !new_connection_waiting(l))) && l->busy == 0)
			break;
		listening = l->run == RUN || (l->run == DRAIN && !l->drained);
		if (arm_listener(l, listen_fd, listening &&
		    l->busy < l->nslots && l->nwaiting < WORKER_WAITING_MAX &&
		    rc == 0) != 0 || arm_writer(l) != 0)
			return -1;
		ms = w->ctx.writer != NULL ?
		    writer_client_timeout(w->ctx.writer) : -1;
		if (first_byte >= 0 && (ms < 0 || first_byte < ms))
			ms = first_byte;
		if (l->run == DRAIN && !l->drained && (ms < 0 || ms > 100))
			ms = 100;
		if ((n = epoll_wait(l->ep, ev, 8, ms)) < 0) {
			if (errno != EINTR)
				return -1;
			n = 0;
		}
		sig = incoming = answers = 0;
		for (i = 0; i < n; i++) {
			if (ev[i].data.fd == w->sig_fd)
				sig = 1;
			else if (ev[i].data.fd == listen_fd)
				incoming = 1;
			else if (ev[i].data.fd == l->wfd_armed)
				answers = 1;
		}
		if (sig)
			take_signals(l);
		if (w->ctx.writer != NULL && answers &&
		    writer_client_pending(w->ctx.writer) == 0) {
			/* Nothing waits, so the writer hung up: unwatch. */
			(void)watch(l, l->wfd_armed, 0, 0);
			l->wfd_armed = -1;
		} else if (w->ctx.writer != NULL) {
			writer_client_collect(w->ctx.writer, answers,
			    w->cfg->max_body, written, l);
		}
		/* Connections after answers: those free the slots they need. */
		for (i = 0; i < n; i++)
			if (ev[i].data.fd != w->sig_fd &&
			    ev[i].data.fd != listen_fd &&
			    ev[i].data.fd != l->wfd_armed)
				connection_event(l, ev[i].data.fd);
		start_ready(l);
		if (l->listen_armed && (incoming || l->run == DRAIN) &&
		    accept_all(l, listen_fd) != 0) {
			log_error("cannot accept requests: %s",
			    strerror(errno));
			rc = -1;
			l->run = STOP;
		}
	}
	return rc;
}

int
worker_main(const struct worker_opts *o)
{
	static struct loop l;
	struct worker w;
	int status = 0;
	size_t i;

	memset(&w, 0, sizeof(w));
	memset(&l, 0, sizeof(l));
	w.cfg = o->cfg;
	w.ctx.cfg = o->cfg;
	w.sig_fd = o->sig_fd;
	w.in_pool = o->in_pool;
	w.vetted = o->vetted;
	l.w = &w;
	l.wfd_armed = -1;
	/* A predecessor killed in this slot may have left its count. */
	metrics_in_flight(0);
	/* In a pool a replaced file restarts every process; see registry.h. */
	w.open_flags = o->in_pool ? REG_OPEN_NO_REOPEN : 0;
	if (http_listener_ready(o->listen_fd) != 0) {
		log_error("cannot use the listening socket: %s",
		    strerror(errno));
		return 1;
	}
	if (o->writer_addr != NULL) {
		/* Two lock waits: the batch ahead of ours, then ours. */
		w.ctx.writer = writer_client_new(o->writer_addr,
		    o->writer_addr_len, 2 * o->cfg->busy_timeout_ms + 2000);
		if (w.ctx.writer == NULL) {
			log_error("cannot set up the writer's client");
			return 1;
		}
	}
	if ((l.ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    watch(&l, w.sig_fd, 1, EPOLLIN) != 0) {
		log_error("cannot set up the worker's epoll: %s",
		    strerror(errno));
		status = 1;
		goto out;
	}
	/* Without a writer nothing waits: one request at a time. */
	l.nslots = w.ctx.writer != NULL ? WORKER_INFLIGHT_MAX : 1;
	for (i = 0; i < l.nslots; i++)
		if ((l.slots[i].x = http_exchange_new()) == NULL) {
			log_error("out of memory");
			status = 1;
			goto out;
		}
	if (serve(&l, o->listen_fd) != 0)
		status = 1;
	else if (w.moved)
		status = POOL_EXIT_MOVED;
out:
	while (l.nwaiting > 0)
		drop_waiting(&l, 0, 1);
	for (i = 0; i < l.nslots; i++)
		http_exchange_free(l.slots[i].x);
	if (l.ep >= 0)
		close(l.ep);
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
