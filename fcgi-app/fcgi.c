/* fcgi.c: the responder's side of FastCGI on one connection. */
#include "fcgi.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

/* Record types, roles, flags and statuses of the specification. */
enum {
	T_BEGIN_REQUEST = 1, T_ABORT_REQUEST, T_END_REQUEST, T_PARAMS,
	T_STDIN, T_STDOUT, T_STDERR, T_DATA, T_GET_VALUES,
	T_GET_VALUES_RESULT, T_UNKNOWN_TYPE
};
#define FCGI_VERSION_1 1
#define ROLE_RESPONDER 1
#define FLAG_KEEP_CONN 1
#define ST_REQUEST_COMPLETE 0
#define ST_CANT_MPX_CONN 1
#define ST_UNKNOWN_ROLE 3

#define HEADER_LEN 8
#define BEGIN_BODY_LEN 8
#define END_RECORD_LEN 16
/* Content of one output record: a multiple of 8 that fits its length. */
#define OUT_RECORD_MAX 65528
/* One read's worth: a typical request's records come in one. */
#define IN_BUF_LEN 16384
/* A buffer grown past this is given back when its request ends. */
#define KEEP_MAX (256 * 1024)
/* No output record is open. */
#define NO_RECORD SIZE_MAX

struct header {
	unsigned type, id;
	size_t len, pad;
};

struct buf {
	char *p;
	size_t len, cap;
};

struct fcgi_conn {
	int fd;
	unsigned char in[IN_BUF_LEN];
	size_t in_at, in_end;		/* unread bytes of in */
	unsigned id;			/* the open request; 0: none */
	int keep;
	size_t in_left, in_pad;		/* of the current input record */
	int in_ended, in_failed;
	struct buf raw;			/* params as they came */
	struct buf env;			/* params decoded: NAME=value\0... */
	char **envp;
	size_t envp_cap;
	struct buf out;			/* output records, ready to send */
	size_t rec_at;			/* the open output record's header */
	int out_failed;
};

static int
grow(struct buf *b, size_t need)
{
	size_t cap;
	char *p;

	if (need <= b->cap)
		return 0;
	for (cap = b->cap > 0 ? b->cap : 1024; cap < need; cap *= 2)
		if (cap > SIZE_MAX / 2)
			return -1;
	if ((p = realloc(b->p, cap)) == NULL)
		return -1;
	b->p = p;
	b->cap = cap;
	return 0;
}

static void
trim(struct buf *b)
{
	if (b->cap > KEEP_MAX) {
		free(b->p);
		b->p = NULL;
		b->cap = 0;
	}
	b->len = 0;
}

struct fcgi_conn *
fcgi_conn_new(void)
{
	struct fcgi_conn *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->fd = -1;
	c->rec_at = NO_RECORD;
	return c;
}

void
fcgi_conn_free(struct fcgi_conn *c)
{
	if (c == NULL)
		return;
	fcgi_close(c, 0);
	free(c->raw.p);
	free(c->env.p);
	free(c->envp);
	free(c->out.p);
	free(c);
}

/* Makes sure unread input is buffered: 0, or -1 at the end or on error. */
static int
fill(struct fcgi_conn *c)
{
	ssize_t n;

	if (c->in_at < c->in_end)
		return 0;
	do
		n = read(c->fd, c->in, sizeof(c->in));
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return -1;
	c->in_at = 0;
	c->in_end = (size_t)n;
	return 0;
}

/* Moves the next n input bytes to dst, or past them when dst is NULL. */
static int
take(struct fcgi_conn *c, void *dst, size_t n)
{
	size_t k;

	while (n > 0) {
		if (fill(c) != 0)
			return -1;
		k = c->in_end - c->in_at < n ? c->in_end - c->in_at : n;
		if (dst != NULL) {
			memcpy(dst, c->in + c->in_at, k);
			dst = (char *)dst + k;
		}
		c->in_at += k;
		n -= k;
	}
	return 0;
}

static int
read_header(struct fcgi_conn *c, struct header *h)
{
	unsigned char b[HEADER_LEN];

	if (take(c, b, sizeof(b)) != 0 || b[0] != FCGI_VERSION_1)
		return -1;
	h->type = b[1];
	h->id = (unsigned)b[2] << 8 | b[3];
	h->len = (size_t)b[4] << 8 | b[5];
	h->pad = b[6];
	return 0;
}

static void
put_header(unsigned char *p, unsigned type, unsigned id, size_t len,
    size_t pad)
{
	p[0] = FCGI_VERSION_1;
	p[1] = (unsigned char)type;
	p[2] = (unsigned char)(id >> 8);
	p[3] = (unsigned char)id;
	p[4] = (unsigned char)(len >> 8);
	p[5] = (unsigned char)len;
	p[6] = (unsigned char)pad;
	p[7] = 0;
}

static int
send_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	ssize_t w;

	while (n > 0) {
		if ((w = send(fd, p, n, MSG_NOSIGNAL)) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* An end-of-request record for request id, with its protocol status. */
static void
put_end_request(unsigned char *p, unsigned id, unsigned status)
{
	put_header(p, T_END_REQUEST, id, END_RECORD_LEN - HEADER_LEN, 0);
	memset(p + HEADER_LEN, 0, END_RECORD_LEN - HEADER_LEN);
	p[HEADER_LEN + 4] = (unsigned char)status;	/* after appStatus */
}

static int
send_end_request(struct fcgi_conn *c, unsigned id, unsigned status)
{
	unsigned char rec[END_RECORD_LEN];

	put_end_request(rec, id, status);
	return send_all(c->fd, rec, sizeof(rec));
}

/*
 * Reads one length of a name-value pair at p[*at] (one byte, or four
 * with the top bit set), within n bytes. Returns 0, or -1 past the end.
 */
static inline int
pair_length(const unsigned char *p, size_t n, size_t *at, size_t *len)
{
	if (*at >= n)
		return -1;
	if (p[*at] < 0x80) {
		*len = p[(*at)++];
		return 0;
	}
	if (n - *at < 4)
		return -1;
	*len = ((size_t)p[*at] & 0x7f) << 24 | (size_t)p[*at + 1] << 16 |
	    (size_t)p[*at + 2] << 8 | p[*at + 3];
	*at += 4;
	return 0;
}

/* The next pair of p's n bytes from *at: -1 when it runs past the end. */
static inline int
next_pair(const unsigned char *p, size_t n, size_t *at,
    const unsigned char **name, size_t *nlen, const unsigned char **value,
    size_t *vlen)
{
	if (pair_length(p, n, at, nlen) != 0 ||
	    pair_length(p, n, at, vlen) != 0 || *nlen > n - *at ||
	    *vlen > n - *at - *nlen)
		return -1;
	*name = p + *at;
	*value = *name + *nlen;
	*at += *nlen + *vlen;
	return 0;
}

/*
 * Answers a management record whose header is h, its content unread:
 * the values asked for of the three FCGI_GET_VALUES knows, each once.
 */
static int
management(struct fcgi_conn *c, const struct header *h)
{
	static const struct {
		const char *name;
		char value;
	} vars[] = {
		{ "FCGI_MAX_CONNS", '1' },
		{ "FCGI_MAX_REQS", '1' },
		{ "FCGI_MPXS_CONNS", '0' },
	};
	unsigned char body[FCGI_CONTENT_MAX], rec[HEADER_LEN + 64];
	const unsigned char *name, *value;
	size_t at = 0, len = 0, nlen, vlen, i, pad;
	unsigned told = 0;

	if (take(c, body, h->len) != 0 || take(c, NULL, h->pad) != 0)
		return -1;
	if (h->type != T_GET_VALUES) {
		put_header(rec, T_UNKNOWN_TYPE, 0, 8, 0);
		memset(rec + HEADER_LEN, 0, 8);
		rec[HEADER_LEN] = (unsigned char)h->type;
		return send_all(c->fd, rec, HEADER_LEN + 8);
	}
	while (at < h->len) {
		if (next_pair(body, h->len, &at, &name, &nlen, &value,
		    &vlen) != 0)
			return -1;
		for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
			if (told & 1u << i || strlen(vars[i].name) != nlen ||
			    memcmp(vars[i].name, name, nlen) != 0)
				continue;
			rec[HEADER_LEN + len++] = (unsigned char)nlen;
			rec[HEADER_LEN + len++] = 1;
			memcpy(rec + HEADER_LEN + len, name, nlen);
			len += nlen;
			rec[HEADER_LEN + len++] = (unsigned char)vars[i].value;
			told |= 1u << i;
		}
	}
	pad = (8 - len % 8) % 8;
	memset(rec + HEADER_LEN + len, 0, pad);
	put_header(rec, T_GET_VALUES_RESULT, 0, len, pad);
	return send_all(c->fd, rec, HEADER_LEN + len + pad);
}

/*
 * Turns the params gathered in raw into env and envp. Every pair takes
 * at least its name, value and two length bytes in raw, so that env
 * (name, '=', value, NUL) never needs more than raw's length.
 */
static int
decode_params(struct fcgi_conn *c)
{
	const unsigned char *raw = (const unsigned char *)c->raw.p;
	const unsigned char *name, *value;
	size_t at = 0, n = 0, nlen, vlen, slots = c->raw.len / 2 + 1;
	char **envp, *dst;

	if (grow(&c->env, c->raw.len + 1) != 0)
		return -1;
	if (slots > c->envp_cap) {
		if ((envp = realloc(c->envp, slots * sizeof(*envp))) == NULL)
			return -1;
		c->envp = envp;
		c->envp_cap = slots;
	}
	c->env.len = 0;
	while (at < c->raw.len) {
		if (next_pair(raw, c->raw.len, &at, &name, &nlen, &value,
		    &vlen) != 0)
			return -1;
		if (nlen == 0 || memchr(name, '=', nlen) != NULL ||
		    memchr(name, '\0', nlen) != NULL)
			continue;
		dst = c->env.p + c->env.len;
		memcpy(dst, name, nlen);
		dst[nlen] = '=';
		memcpy(dst + nlen + 1, value, vlen);
		dst[nlen + 1 + vlen] = '\0';
		c->env.len += nlen + vlen + 2;
		c->envp[n++] = dst;
	}
	c->envp[n] = NULL;
	return 0;
}

int
fcgi_begin(struct fcgi_conn *c, int fd)
{
	unsigned char body[BEGIN_BODY_LEN];
	struct header h;
	int lingering = 0;

	fcgi_close(c, 0);
	c->fd = fd;
	c->in_at = c->in_end = 0;
	c->id = 0;
	c->keep = 0;
	c->in_left = c->in_pad = 0;
	c->in_ended = c->in_failed = 0;
	c->raw.len = 0;
	c->out.len = 0;
	c->rec_at = NO_RECORD;
	c->out_failed = 0;
	for (;;) {
		if (read_header(c, &h) != 0)
			goto gone;
		if (h.type == T_BEGIN_REQUEST) {
			if (h.id == 0 || h.len != BEGIN_BODY_LEN)
				goto gone;
			if (c->id != 0) {
				if (send_end_request(c, h.id,
				    ST_CANT_MPX_CONN) != 0 ||
				    take(c, NULL, h.len + h.pad) != 0)
					goto gone;
				continue;
			}
			if (take(c, body, h.len) != 0 ||
			    take(c, NULL, h.pad) != 0)
				goto gone;
			if (((unsigned)body[0] << 8 | body[1]) !=
			    ROLE_RESPONDER) {
				/*
				 * Refused, and closed: a front that keeps the
				 * connection would otherwise hold this worker
				 * until its next request. Its params are still
				 * unread: linger, unless the front keeps its
				 * end open.
				 */
				lingering = !(body[2] & FLAG_KEEP_CONN);
				(void)send_end_request(c, h.id,
				    ST_UNKNOWN_ROLE);
				goto gone;
			}
			c->id = h.id;
			c->keep = body[2] & FLAG_KEEP_CONN;
			c->raw.len = 0;
			continue;
		}
		if (h.id == 0) {
			if (management(c, &h) != 0)
				goto gone;
			continue;
		}
		if (h.id != c->id) {
			if (take(c, NULL, h.len + h.pad) != 0)
				goto gone;
			continue;
		}
		if (h.type == T_ABORT_REQUEST) {
			/* Aborted before it began: ended, and closed. */
			(void)send_end_request(c, h.id, ST_REQUEST_COMPLETE);
			goto gone;
		}
		if (h.type != T_PARAMS || h.len > FCGI_PARAMS_MAX - c->raw.len)
			goto gone;
		if (h.len == 0) {
			if (take(c, NULL, h.pad) != 0 || decode_params(c) != 0)
				goto gone;
			return 1;
		}
		if (grow(&c->raw, c->raw.len + h.len) != 0 ||
		    take(c, c->raw.p + c->raw.len, h.len) != 0 ||
		    take(c, NULL, h.pad) != 0)
			goto gone;
		c->raw.len += h.len;
	}
gone:
	fcgi_close(c, lingering);
	c->id = 0;
	return 0;
}

char **
fcgi_params(const struct fcgi_conn *c)
{
	static char *none[] = { NULL };

	return c->id != 0 && c->envp != NULL ? c->envp : none;
}

/* Reads on to the next input content, or to the input's end record. */
static int
next_input(struct fcgi_conn *c)
{
	struct header h;

	while (c->in_left == 0 && !c->in_ended) {
		if (take(c, NULL, c->in_pad) != 0)
			return -1;
		c->in_pad = 0;
		if (read_header(c, &h) != 0)
			return -1;
		if (h.type == T_BEGIN_REQUEST) {
			if (h.id == 0 || h.len != BEGIN_BODY_LEN ||
			    send_end_request(c, h.id, ST_CANT_MPX_CONN) != 0)
				return -1;
			c->in_pad = h.len + h.pad;
			continue;
		}
		if (h.id == 0) {
			if (management(c, &h) != 0)
				return -1;
			continue;
		}
		if (h.id != c->id) {
			c->in_pad = h.len + h.pad;
			continue;
		}
		/* An abort, or any other stream, ends the input short. */
		if (h.type != T_STDIN)
			return -1;
		c->in_left = h.len;
		c->in_pad = h.pad;
		if (h.len == 0) {
			if (take(c, NULL, c->in_pad) != 0)
				return -1;
			c->in_pad = 0;
			c->in_ended = 1;
		}
	}
	return 0;
}

long
fcgi_read(struct fcgi_conn *c, char *buf, size_t n)
{
	size_t k;

	if (c->in_failed || c->fd < 0 || c->id == 0)
		return -1;
	if (n == 0)
		return 0;
	if (next_input(c) != 0 || (!c->in_ended && fill(c) != 0)) {
		c->in_failed = 1;
		return -1;
	}
	if (c->in_ended)
		return 0;
	k = c->in_end - c->in_at;
	if (k > c->in_left)
		k = c->in_left;
	if (k > n)
		k = n;
	memcpy(buf, c->in + c->in_at, k);
	c->in_at += k;
	c->in_left -= k;
	return (long)k;
}

int
fcgi_input_ended(const struct fcgi_conn *c)
{
	return c->in_ended;
}

int
fcgi_input_failed(const struct fcgi_conn *c)
{
	return c->in_failed;
}

int
fcgi_read_ahead(const struct fcgi_conn *c)
{
	return c->in_at < c->in_end;
}

int
fcgi_input_waiting(const struct fcgi_conn *c)
{
	int n;

	return fcgi_read_ahead(c) || c->fd < 0 ||
	    ioctl(c->fd, FIONREAD, &n) != 0 || n != 0;
}

int
fcgi_keep_conn(const struct fcgi_conn *c)
{
	return c->keep;
}

/* Closes the open output record, padded to a multiple of 8 bytes. */
static int
close_record(struct fcgi_conn *c)
{
	size_t len, pad;

	if (c->rec_at == NO_RECORD)
		return 0;
	len = c->out.len - c->rec_at - HEADER_LEN;
	if (len == 0) {
		c->out.len = c->rec_at;
		c->rec_at = NO_RECORD;
		return 0;
	}
	pad = (8 - len % 8) % 8;
	if (grow(&c->out, c->out.len + pad) != 0)
		return -1;
	memset(c->out.p + c->out.len, 0, pad);
	c->out.len += pad;
	put_header((unsigned char *)c->out.p + c->rec_at, T_STDOUT, c->id,
	    len, pad);
	c->rec_at = NO_RECORD;
	return 0;
}

int
fcgi_write(struct fcgi_conn *c, const char *buf, size_t n)
{
	size_t k, used;

	while (n > 0 && !c->out_failed) {
		if (c->rec_at == NO_RECORD) {
			if (grow(&c->out, c->out.len + HEADER_LEN) != 0)
				break;
			c->rec_at = c->out.len;
			c->out.len += HEADER_LEN;
		}
		used = c->out.len - c->rec_at - HEADER_LEN;
		k = OUT_RECORD_MAX - used < n ? OUT_RECORD_MAX - used : n;
		if (grow(&c->out, c->out.len + k) != 0)
			break;
		memcpy(c->out.p + c->out.len, buf, k);
		c->out.len += k;
		buf += k;
		n -= k;
		if (used + k == OUT_RECORD_MAX && close_record(c) != 0)
			break;
	}
	if (n > 0)
		c->out_failed = 1;
	return c->out_failed ? -1 : 0;
}

int
fcgi_end(struct fcgi_conn *c)
{
	int rc = -1;

	if (c->fd < 0 || c->id == 0)
		return -1;
	if (!c->out_failed && close_record(c) == 0 &&
	    grow(&c->out, c->out.len + HEADER_LEN + END_RECORD_LEN) == 0) {
		put_header((unsigned char *)c->out.p + c->out.len, T_STDOUT,
		    c->id, 0, 0);
		c->out.len += HEADER_LEN;
		put_end_request((unsigned char *)c->out.p + c->out.len, c->id,
		    ST_REQUEST_COMPLETE);
		c->out.len += END_RECORD_LEN;
		rc = send_all(c->fd, c->out.p, c->out.len);
	}
	/* An answer cut short leaves the connection unfit for another. */
	if (rc != 0)
		c->keep = 0;
	trim(&c->out);
	trim(&c->raw);
	trim(&c->env);
	if (c->envp_cap > KEEP_MAX / sizeof(*c->envp)) {
		free(c->envp);
		c->envp = NULL;
		c->envp_cap = 0;
	}
	c->rec_at = NO_RECORD;
	c->id = 0;
	return rc;
}

int
fcgi_detach(struct fcgi_conn *c)
{
	int fd = c->fd;

	c->fd = -1;
	return fd;
}

static long
ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long)(t.tv_sec - t0->tv_sec) * 1000 +
	    (t.tv_nsec - t0->tv_nsec) / 1000000;
}

void
fcgi_close(struct fcgi_conn *c, int linger)
{
	struct timespec t0;
	struct pollfd p;
	char trash[4096];
	long left;

	if (c->fd < 0)
		return;
	if (linger && shutdown(c->fd, SHUT_WR) == 0) {
		clock_gettime(CLOCK_MONOTONIC, &t0);
		p.fd = c->fd;
		p.events = POLLIN;
		while ((left = FCGI_LINGER_MS - ms_since(&t0)) > 0 &&
		    poll(&p, 1, (int)left) > 0 &&
		    read(c->fd, trash, sizeof(trash)) > 0)
			;
	}
	close(c->fd);
	c->fd = -1;
}
