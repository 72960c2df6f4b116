/* writer.c: the group-commit writer process and its workers' client. */
#define _GNU_SOURCE	/* accept4(2), struct ucred */
#include "writer.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "answer.h"
#include "log.h"
#include "pool.h"
#include "metrics.h"

/*
 * The wire: every message is a 4-byte length (network order) and that
 * many bytes. A write is a sequence number, its kind, and then name,
 * If-Match, If-None-Match, Idempotency-Key, REMOTE_USER, REMOTE_ADDR, the
 * request id and the body, each a 4-byte length (0xffffffff for absent)
 * and the bytes with a NUL after them, so the receiver reads them in
 * place. An answer is the write's sequence number, the status (4 bytes
 * each) and http_response_encode()'s bytes. A connection may carry many
 * writes at once; the writer answers them in the order they came.
 */
#define WIRE_ABSENT 0xffffffffu
/* Room a message may take beyond the body. */
#define WIRE_OVERHEAD (16 * 1024)
/* Connections the writer keeps at most (workers, admin tools). */
#define WRITER_CONN_MAX 512
/* Idle writer: how often it looks for maintenance to do (ms). */
#define WRITER_IDLE_MS 1000
/* Longest wait for a worker to take an answer off the socket (ms). */
#define WRITER_SEND_MS 1000

/* A growable byte buffer. */
struct wbuf {
	char *p;
	size_t len, cap;
};

static int
wbuf_room(struct wbuf *b, size_t n)
{
	char *p;
	size_t cap;

	if (b->cap - b->len >= n)
		return 0;
	cap = b->cap > 0 ? b->cap : 256;
	while (cap - b->len < n)
		cap *= 2;
	if ((p = realloc(b->p, cap)) == NULL)
		return -1;
	b->p = p;
	b->cap = cap;
	return 0;
}

static int
put_u32(struct wbuf *b, uint32_t v)
{
	if (wbuf_room(b, 4) != 0)
		return -1;
	b->p[b->len++] = (char)(v >> 24);
	b->p[b->len++] = (char)(v >> 16);
	b->p[b->len++] = (char)(v >> 8);
	b->p[b->len++] = (char)v;
	return 0;
}

static uint32_t
get_u32(const char *p)
{
	const unsigned char *u = (const unsigned char *)p;

	return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 |
	    (uint32_t)u[2] << 8 | u[3];
}

/* Appends s (len bytes, NULL for absent) and a NUL. */
static int
put_bytes(struct wbuf *b, const char *s, size_t len)
{
	if (s == NULL)
		return put_u32(b, WIRE_ABSENT);
	if (len >= WIRE_ABSENT || put_u32(b, (uint32_t)len) != 0 ||
	    wbuf_room(b, len + 1) != 0)
		return -1;
	memcpy(b->p + b->len, s, len);
	b->len += len;
	b->p[b->len++] = '\0';
	return 0;
}

static int
put_str(struct wbuf *b, const char *s)
{
	return put_bytes(b, s, s != NULL ? strlen(s) : 0);
}

/* Reads one string at *p (end bounds it): *s in place, NULL if absent. */
static int
get_str(const char **p, const char *end, const char **s, size_t *len)
{
	uint32_t n;

	if (end - *p < 4)
		return -1;
	n = get_u32(*p);
	*p += 4;
	if (n == WIRE_ABSENT) {
		*s = NULL;
		*len = 0;
		return 0;
	}
	if ((size_t)(end - *p) < (size_t)n + 1 || (*p)[n] != '\0')
		return -1;
	*s = *p;
	*len = n;
	*p += n + 1;
	return 0;
}

/* Writes all of buf to the non-blocking fd, waiting up to ms for room. */
static int
send_all(int fd, const char *buf, size_t n, int ms)
{
	struct pollfd pfd = { fd, POLLOUT, 0 };
	ssize_t w;

	while (n > 0) {
		if ((w = send(fd, buf, n, MSG_NOSIGNAL)) > 0) {
			buf += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return -1;
		if (poll(&pfd, 1, ms) <= 0)
			return -1;
	}
	return 0;
}

/* ---- the listening socket ------------------------------------------- */

int
writer_listen(char *addr, size_t *addr_len)
{
	struct sockaddr_un sa;
	unsigned char nonce[8];
	int fd, n;

	if (getrandom(nonce, sizeof(nonce), 0) != (ssize_t)sizeof(nonce))
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	/* Abstract: a leading NUL, no file; the name is ours alone. */
	n = snprintf(sa.sun_path + 1, sizeof(sa.sun_path) - 1,
	    "userreg-writer-%ld-%02x%02x%02x%02x%02x%02x%02x%02x",
	    (long)getpid(), nonce[0], nonce[1], nonce[2], nonce[3], nonce[4],
	    nonce[5], nonce[6], nonce[7]);
	if (n < 0 || (size_t)n + 1 > WRITER_ADDR_MAX)
		return -1;
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0)) < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&sa, (socklen_t)(offsetof(struct
	    sockaddr_un, sun_path) + 1 + (size_t)n)) != 0 ||
	    listen(fd, WRITER_CONN_MAX) != 0) {
		close(fd);
		return -1;
	}
	memcpy(addr, sa.sun_path, (size_t)n + 1);
	*addr_len = (size_t)n + 1;
	return fd;
}

/* ---- the writer process ---------------------------------------------- */

/* One connection of a worker or admin tool. */
struct conn {
	int fd;
	struct wbuf in;		/* bytes read, not yet a whole message */
};

/* One write of a batch, with its answer until the batch is sent. */
struct op {
	struct conn *conn;
	uint32_t seq;		/* the client's number for it */
	char *msg;		/* the message; req's strings point into it */
	enum write_kind kind;
	const char *name;
	struct http_request req;
	struct http_response resp;
};

struct writer {
	const struct config *cfg;
	struct users_ctx ctx;
	struct conn *conns[WRITER_CONN_MAX];
	size_t nconns;
	struct op ops[WRITER_BATCH_MAX];
	size_t nops;
	size_t max_msg;
	int stopping;
	int moved;		/* the registry file is not the vetted one */
};

static void
conn_close(struct writer *w, size_t i)
{
	struct conn *c = w->conns[i];
	size_t j;

	/* Its writes still in the batch are applied; no one hears of them. */
	for (j = 0; j < w->nops; j++)
		if (w->ops[j].conn == c)
			w->ops[j].conn = NULL;
	close(c->fd);
	free(c->in.p);
	free(c);
	w->conns[i] = w->conns[--w->nconns];
}

/* Takes the connections waiting on the listening socket. */
static void
accept_all(struct writer *w, int listen_fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct conn *c;
	int fd;

	while ((fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK |
	    SOCK_CLOEXEC)) >= 0) {
		/* Only this user's processes may write: they could anyway. */
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
		    cred.uid != geteuid() || w->nconns == WRITER_CONN_MAX ||
		    (c = calloc(1, sizeof(*c))) == NULL) {
			log_warn("writer refused a connection");
			close(fd);
			continue;
		}
		c->fd = fd;
		w->conns[w->nconns++] = c;
	}
}

/* Parses the write at msg (len bytes) into op. Returns 0 or -1. */
static int
op_parse(struct op *op, char *msg, size_t len)
{
	const char *p = msg, *end = msg + len, *s[8];
	size_t n[8], i;
	uint32_t kind;

	memset(op, 0, sizeof(*op));
	if (len < 8 || (kind = get_u32(p + 4)) >= WRITE__MAX)
		return -1;
	op->seq = get_u32(p);
	p += 8;
	for (i = 0; i < 8; i++)
		if (get_str(&p, end, &s[i], &n[i]) != 0)
			return -1;
	if (p != end || s[6] == NULL || n[6] >= HTTP_REQUEST_ID_SIZE ||
	    s[7] == NULL)
		return -1;
	op->msg = msg;
	op->kind = (enum write_kind)kind;
	op->name = s[0];
	op->req.method = write_method(op->kind);
	op->req.path = "";
	op->req.query = "";
	op->req.if_match = s[1];
	op->req.if_none_match = s[2];
	op->req.idempotency_key = s[3];
	op->req.remote_user = s[4];
	op->req.remote_addr = s[5];
	memcpy(op->req.request_id, s[6], n[6] + 1);
	/* Read-only to everyone here; the struct's field is not const. */
	op->req.body = (char *)(uintptr_t)s[7];
	op->req.body_len = n[7];
	op->req.content_length = n[7];
	op->req.body_state = HTTP_BODY_OK;
	http_response_init(&op->resp);
	return 0;
}

/*
 * Reads what connection i has and queues each whole write it holds.
 * Returns 0, or -1 when the connection ended or broke the protocol.
 */
static int
conn_read(struct writer *w, size_t i)
{
	struct conn *c = w->conns[i];
	uint32_t len;
	size_t used = 0;
	ssize_t r;
	char *msg;

	for (;;) {
		if (wbuf_room(&c->in, 4096) != 0)
			return -1;
		r = recv(c->fd, c->in.p + c->in.len, c->in.cap - c->in.len, 0);
		if (r > 0) {
			c->in.len += (size_t)r;
			continue;
		}
		if (r == 0)
			return -1;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			break;
		return -1;
	}
	while (c->in.len - used >= 4 && w->nops < WRITER_BATCH_MAX) {
		len = get_u32(c->in.p + used);
		if (len > w->max_msg)
			return -1;
		if (c->in.len - used - 4 < len)
			break;
		if ((msg = malloc(len + 1)) == NULL)
			return -1;
		memcpy(msg, c->in.p + used + 4, len);
		msg[len] = '\0';
		used += 4 + (size_t)len;
		if (op_parse(&w->ops[w->nops], msg, len) != 0) {
			free(msg);
			return -1;
		}
		w->ops[w->nops++].conn = c;
	}
	/* One move for all the messages taken, not one each. */
	if (used > 0) {
		memmove(c->in.p, c->in.p + used, c->in.len - used);
		c->in.len -= used;
	}
	return 0;
}

/* Answers every write of the batch with the registry failure rc. */
static void
fail_batch(struct writer *w, enum reg_err rc)
{
	size_t i;

	for (i = 0; i < w->nops; i++)
		answer_registry_error(&w->ctx, &w->ops[i].req, &w->ops[i].resp,
		    rc);
}

/*
 * Applies the batch: one transaction, a savepoint per write, one commit.
 * Every answer is held until the commit is durable; a failed commit
 * turns them all into 503.
 */
static void
apply_batch(struct writer *w)
{
	struct registry *reg = w->ctx.reg;
	enum reg_err rc, batch_rc = REG_OK;
	struct op *op;
	size_t i;
	int needs_write, keep;

	if ((rc = registry_refresh(reg)) != REG_OK ||
	    (rc = registry_begin(reg)) != REG_OK) {
		fail_batch(w, rc);
		return;
	}
	for (i = 0; i < w->nops && batch_rc == REG_OK; i++) {
		op = &w->ops[i];
		if ((batch_rc = registry_savepoint(reg)) != REG_OK)
			break;
		rc = write_apply(&w->ctx, op->kind, op->name, &op->req,
		    &op->resp, 0, &needs_write);
		keep = rc == REG_OK && op->resp.status < 500;
		if (rc != REG_OK)
			answer_registry_error(&w->ctx, &op->req, &op->resp, rc);
		/* An I/O error may have ended the transaction: all fail. */
		if (registry_savepoint_end(reg, keep) != REG_OK ||
		    !registry_in_transaction(reg))
			batch_rc = REG_UNAVAILABLE;
	}
	if (batch_rc == REG_OK)
		batch_rc = registry_commit(reg);
	else
		registry_rollback(reg);
	if (batch_rc != REG_OK)
		fail_batch(w, batch_rc);
	else
		metrics_batch(w->nops);
}

/*
 * Appends the answer of op to out. Returns 0, or -1 when out of memory,
 * with out as it was.
 */
static int
put_answer(struct wbuf *out, const struct op *op)
{
	char *enc;
	size_t len, was = out->len;
	int rc = -1;

	if ((enc = http_response_encode(&op->resp, &len)) == NULL)
		return -1;
	if (put_u32(out, (uint32_t)(len + 8)) == 0 &&
	    put_u32(out, op->seq) == 0 &&
	    put_u32(out, (uint32_t)op->resp.status) == 0 &&
	    wbuf_room(out, len) == 0) {
		memcpy(out->p + out->len, enc, len);
		out->len += len;
		rc = 0;
	}
	free(enc);
	if (rc != 0)
		out->len = was;
	return rc;
}

/*
 * Sends every answer of the batch, in the order its writes came, and
 * frees the batch. A connection's answers leave in one send: its worker
 * wakes once for all of them.
 */
static void
answer_batch(struct writer *w)
{
	struct wbuf out = { NULL, 0, 0 };
	struct conn *c;
	size_t i, j;
	int whole;

	/* From the last, as closing one moves the last into its place. */
	for (j = w->nconns; j-- > 0;) {
		c = w->conns[j];
		out.len = 0;
		whole = 1;
		for (i = 0; i < w->nops && whole; i++)
			if (w->ops[i].conn == c)
				whole = put_answer(&out, &w->ops[i]) == 0;
		/* What is not sent, the worker answers 503 itself. */
		if ((out.len > 0 && send_all(c->fd, out.p, out.len,
		    WRITER_SEND_MS) != 0) || !whole)
			conn_close(w, j);
	}
	for (i = 0; i < w->nops; i++) {
		http_response_release(&w->ops[i].resp);
		free(w->ops[i].msg);
	}
	free(out.p);
	w->nops = 0;
}

/* Reads the signals waiting on sig_fd: stop on TERM and INT. */
static void
take_signals(struct writer *w, int sig_fd)
{
	struct signalfd_siginfo si;

	while (read(sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT ||
		    si.ssi_signo == SIGUSR2)
			w->stopping = 1;
		else if (si.ssi_signo == SIGHUP)
			log_reopen();
	}
}

/*
 * Makes w->ctx.reg a handle on the vetted registry. Returns 0, or -1
 * with every write of the batch answered 503.
 */
static int
writer_registry(struct writer *w, const struct pool_vetted *vetted)
{
	char why[REG_ERRMSG_SIZE];
	size_t i;

	if (w->ctx.reg == NULL && !w->moved) {
		/* A replaced file means a restart of the pool, not a reopen. */
		w->ctx.reg = pool_open_registry(w->cfg,
		    REG_OPEN_NO_AUTOCHECKPOINT | REG_OPEN_NO_REOPEN, vetted,
		    &w->moved, why);
		if (w->ctx.reg == NULL)
			log_error("writer cannot open registry '%s': %s",
			    w->cfg->registry, why);
	}
	if (w->ctx.reg != NULL)
		return 0;
	for (i = 0; i < w->nops; i++)
		answer_unavailable(&w->ctx, &w->ops[i].req, &w->ops[i].resp,
		    "the registry cannot be reached; retry later");
	return -1;
}

int
writer_main(const struct config *cfg, int listen_fd, int sig_fd,
    const struct pool_vetted *vetted)
{
	static struct writer w;
	struct pollfd pfd[WRITER_CONN_MAX + 2];
	size_t i, n;
	int status = 0;

	w.cfg = cfg;
	w.ctx.cfg = cfg;
	w.max_msg = cfg->max_body + WIRE_OVERHEAD;
	while (!w.stopping) {
		pfd[0].fd = sig_fd;
		pfd[0].events = POLLIN;
		pfd[1].fd = listen_fd;
		pfd[1].events = POLLIN;
		for (i = 0; i < w.nconns; i++) {
			pfd[i + 2].fd = w.conns[i]->fd;
			pfd[i + 2].events = POLLIN;
		}
		n = w.nconns;
		if (poll(pfd, n + 2, WRITER_IDLE_MS) == 0) {
			if (w.ctx.reg != NULL)
				registry_maintain(w.ctx.reg);
			continue;
		}
		if (pfd[0].revents & POLLIN)
			take_signals(&w, sig_fd);
		/* From the last, as closing one moves the last into its place. */
		for (i = n; i-- > 0;)
			if (pfd[i + 2].revents != 0 && conn_read(&w, i) != 0)
				conn_close(&w, i);
		if (pfd[1].revents & POLLIN)
			accept_all(&w, listen_fd);
		if (w.nops == 0)
			continue;
		if (writer_registry(&w, vetted) == 0)
			apply_batch(&w);
		answer_batch(&w);
		if (w.moved || (w.ctx.reg != NULL && registry_moved(w.ctx.reg))) {
			log_error("registry file '%s' was replaced or deleted; "
			    "the pool restarts", cfg->registry);
			status = POOL_EXIT_MOVED;
			break;
		}
		registry_maintain(w.ctx.reg);
	}
	while (w.nconns > 0)
		conn_close(&w, w.nconns - 1);
	registry_close(w.ctx.reg);
	return status;
}

/* ---- the workers' client --------------------------------------------- */

/* Writes a client keeps waiting for their answers at most. */
#define WRITER_CLIENT_PENDING_MAX 64

/* A write sent, waiting for its answer. */
struct pending {
	uint32_t seq;
	void *tag;
	struct timespec deadline;
};

struct writer_client {
	struct sockaddr_un addr;
	socklen_t addr_len;
	int fd;
	unsigned connection;	/* counts the connections made */
	int timeout_ms;
	uint32_t next_seq;
	struct pending pending[WRITER_CLIENT_PENDING_MAX];
	size_t head, npending;		/* a ring, oldest at head */
	struct wbuf out, in;
};

struct writer_client *
writer_client_new(const char *addr, size_t addr_len, int timeout_ms)
{
	struct writer_client *wc;

	if (addr_len == 0 || addr_len > sizeof(wc->addr.sun_path) ||
	    (wc = calloc(1, sizeof(*wc))) == NULL)
		return NULL;
	wc->addr.sun_family = AF_UNIX;
	memcpy(wc->addr.sun_path, addr, addr_len);
	wc->addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
	    addr_len);
	wc->fd = -1;
	wc->timeout_ms = timeout_ms;
	return wc;
}

static void
client_close(struct writer_client *wc)
{
	if (wc->fd >= 0)
		close(wc->fd);
	wc->fd = -1;
	wc->in.len = 0;
}

void
writer_client_free(struct writer_client *wc)
{
	if (wc == NULL)
		return;
	client_close(wc);
	free(wc->out.p);
	free(wc->in.p);
	free(wc);
}

static int
client_connect(struct writer_client *wc)
{
	if (wc->fd >= 0)
		return 0;
	wc->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (wc->fd < 0)
		return -1;
	/* The master holds the socket: this queues even while it restarts. */
	if (connect(wc->fd, (struct sockaddr *)&wc->addr, wc->addr_len) != 0) {
		client_close(wc);
		return -1;
	}
	wc->connection++;
	return 0;
}

/* Milliseconds left until deadline, at least 0. */
static int
ms_left(const struct timespec *deadline)
{
	struct timespec now;
	long long ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (long long)(deadline->tv_sec - now.tv_sec) * 1000 +
	    (deadline->tv_nsec - now.tv_nsec) / 1000000;
	return ms < 0 ? 0 : ms > INT32_MAX ? INT32_MAX : (int)ms;
}

/* Encodes the write numbered seq into wc->out. Returns 0 or -1. */
static int
encode_write(struct writer_client *wc, uint32_t seq, enum write_kind kind,
    const char *name, const struct http_request *req)
{
	struct wbuf *b = &wc->out;

	b->len = 0;
	if (put_u32(b, 0) != 0 || put_u32(b, seq) != 0 ||
	    put_u32(b, (uint32_t)kind) != 0 ||
	    put_str(b, name) != 0 || put_str(b, req->if_match) != 0 ||
	    put_str(b, req->if_none_match) != 0 ||
	    put_str(b, req->idempotency_key) != 0 ||
	    put_str(b, req->remote_user) != 0 ||
	    put_str(b, req->remote_addr) != 0 ||
	    put_str(b, req->request_id) != 0 ||
	    put_bytes(b, req->body != NULL ? req->body : "",
	    req->body_len) != 0)
		return -1;
	b->p[0] = (char)((b->len - 4) >> 24);
	b->p[1] = (char)((b->len - 4) >> 16);
	b->p[2] = (char)((b->len - 4) >> 8);
	b->p[3] = (char)(b->len - 4);
	return 0;
}

int
writer_submit(struct writer_client *wc, void *tag, enum write_kind kind,
    const char *name, const struct http_request *req)
{
	struct pending *pd;
	struct timespec deadline;
	uint32_t seq = wc->next_seq++;
	int attempt;

	if (wc->npending == WRITER_CLIENT_PENDING_MAX ||
	    encode_write(wc, seq, kind, name, req) != 0) {
		log_error("write in request %s not sent: %s", req->request_id,
		    wc->npending == WRITER_CLIENT_PENDING_MAX ?
		    "too many writes waiting" : "out of memory");
		return -1;
	}
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += wc->timeout_ms / 1000;
	deadline.tv_nsec += (long)(wc->timeout_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	/*
	 * A connection the writer's restart broke refuses the send: with no
	 * write of ours waiting on it, the write never left, so a fresh
	 * connection may carry it, once.
	 */
	for (attempt = 0; ; attempt++) {
		if (client_connect(wc) != 0)
			break;
		if (send_all(wc->fd, wc->out.p, wc->out.len,
		    ms_left(&deadline)) == 0) {
			pd = &wc->pending[(wc->head + wc->npending) %
			    WRITER_CLIENT_PENDING_MAX];
			pd->seq = seq;
			pd->tag = tag;
			pd->deadline = deadline;
			wc->npending++;
			return 0;
		}
		if (wc->npending > 0 || attempt == 1)
			break;
		client_close(wc);
	}
	log_error("write in request %s not sent: cannot reach the writer",
	    req->request_id);
	return -1;
}

int
writer_client_fd(const struct writer_client *wc)
{
	return wc->npending > 0 ? wc->fd : -1;
}

unsigned
writer_client_connection(const struct writer_client *wc)
{
	return wc->connection;
}

size_t
writer_client_pending(const struct writer_client *wc)
{
	return wc->npending;
}

int
writer_client_timeout(const struct writer_client *wc)
{
	return wc->npending > 0 ? ms_left(&wc->pending[wc->head].deadline) :
	    -1;
}

/* Ends every pending write unanswered and drops the connection. */
static void
fail_pending(struct writer_client *wc, const char *why, writer_done *done,
    void *arg)
{
	struct pending pd;

	if (wc->npending > 0)
		log_error("%zu writes not answered: %s", wc->npending, why);
	client_close(wc);
	while (wc->npending > 0) {
		pd = wc->pending[wc->head];
		wc->head = (wc->head + 1) % WRITER_CLIENT_PENDING_MAX;
		wc->npending--;
		done(arg, pd.tag, NULL);
	}
}

/*
 * Hands every whole answer in wc->in to done, oldest write first. Returns
 * 0, or -1 when the writer broke the protocol.
 */
static int
take_answers(struct writer_client *wc, size_t max_msg, writer_done *done,
    void *arg)
{
	struct http_response resp;
	struct pending pd;
	uint32_t len;
	size_t used = 0;

	while (wc->in.len - used >= 4 && wc->npending > 0) {
		len = get_u32(wc->in.p + used);
		if (len < 8 || len > max_msg)
			return -1;
		if (wc->in.len - used - 4 < len)
			break;
		pd = wc->pending[wc->head];
		if (get_u32(wc->in.p + used + 4) != pd.seq)
			return -1;
		http_response_init(&resp);
		if (http_response_decode(wc->in.p + used + 12, len - 8,
		    (int)get_u32(wc->in.p + used + 8), &resp) != 0) {
			http_response_release(&resp);
			return -1;
		}
		wc->head = (wc->head + 1) % WRITER_CLIENT_PENDING_MAX;
		wc->npending--;
		used += 4 + (size_t)len;
		done(arg, pd.tag, &resp);
		http_response_release(&resp);
	}
	/* Nothing read yet leaves the buffer unallocated: no move then. */
	if (used > 0) {
		memmove(wc->in.p, wc->in.p + used, wc->in.len - used);
		wc->in.len -= used;
	}
	return wc->in.len > 0 && wc->npending == 0 ? -1 : 0;
}

void
writer_client_collect(struct writer_client *wc, int readable, size_t max_body,
    writer_done *done, void *arg)
{
	ssize_t r;

	if (wc->npending == 0)
		return;
	while (readable) {
		if (wbuf_room(&wc->in, 4096) != 0) {
			fail_pending(wc, "out of memory", done, arg);
			return;
		}
		r = recv(wc->fd, wc->in.p + wc->in.len, wc->in.cap - wc->in.len,
		    0);
		if (r > 0) {
			wc->in.len += (size_t)r;
			continue;
		}
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (r < 0 && errno == EINTR)
			continue;
		/* The writer ended: what it had not answered is unknown. */
		if (take_answers(wc, max_body + WIRE_OVERHEAD, done, arg) != 0)
			fail_pending(wc, "the writer's answer is unreadable",
			    done, arg);
		else
			fail_pending(wc, "the writer went away", done, arg);
		return;
	}
	if (take_answers(wc, max_body + WIRE_OVERHEAD, done, arg) != 0) {
		fail_pending(wc, "the writer's answer is unreadable", done, arg);
		return;
	}
	if (wc->npending > 0 && writer_client_timeout(wc) == 0)
		fail_pending(wc, "the writer did not answer in time", done, arg);
}

/* writer_call()'s done: keeps the one answer. */
struct call_result {
	int answered;
	struct http_response *resp;
};

static void
call_done(void *arg, void *tag, struct http_response *resp)
{
	struct call_result *cr = arg;

	(void)tag;
	if (resp != NULL) {
		*cr->resp = *resp;
		http_response_init(resp);
		cr->answered = 1;
	} else {
		cr->answered = -1;
	}
}

void
writer_call(struct writer_client *wc, struct users_ctx *ctx,
    enum write_kind kind, const char *name, const struct http_request *req,
    struct http_response *resp)
{
	struct call_result cr = { 0, resp };
	struct pollfd pfd;
	int ms;

	if (wc->npending > 0 || writer_submit(wc, &cr, kind, name, req) != 0) {
		answer_unavailable(ctx, req, resp, "the registry's writer "
		    "cannot be reached; retry later");
		return;
	}
	while (cr.answered == 0) {
		pfd.fd = wc->fd;
		pfd.events = POLLIN;
		ms = writer_client_timeout(wc);
		writer_client_collect(wc, poll(&pfd, 1, ms) > 0,
		    ctx->cfg->max_body, call_done, &cr);
	}
	if (cr.answered < 0)
		/* Its outcome is unknown: never acknowledged, retry later. */
		answer_unavailable(ctx, req, resp, "the registry's writer did "
		    "not answer; retry later");
}
