/* http.c: requests and responses as plain structs, and their FastCGI I/O. */
#define _GNU_SOURCE		/* accept4() */
#include "http.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "fcgi.h"
#include "jsonio.h"

void
http_response_init(struct http_response *resp)
{
	memset(resp, 0, sizeof(*resp));
	resp->status = 500;
}

void
http_response_release(struct http_response *resp)
{
	size_t i;

	for (i = 0; i < resp->nheaders; i++)
		free(resp->headers[i].value);
	free(resp->body);
	http_response_init(resp);
}

int
http_add_header(struct http_response *resp, const char *name,
    const char *fmt, ...)
{
	va_list ap;
	char *value = NULL;
	int n;

	if (resp->nheaders >= HTTP_HEADERS_MAX)
		return -1;
	va_start(ap, fmt);
	/* Most headers are one string or a constant: no formatting to do. */
	if (strcmp(fmt, "%s") == 0 || strchr(fmt, '%') == NULL) {
		value = strdup(fmt[0] == '%' ? va_arg(ap, const char *) : fmt);
		va_end(ap);
		if (value == NULL)
			return -1;
	} else if (strcmp(fmt, "%.*s") == 0) {
		n = va_arg(ap, int);
		value = strndup(va_arg(ap, const char *), (size_t)n);
		va_end(ap);
		if (value == NULL)
			return -1;
	} else {
		n = vsnprintf(NULL, 0, fmt, ap);
		va_end(ap);
		if (n < 0 || (value = malloc((size_t)n + 1)) == NULL)
			return -1;
		va_start(ap, fmt);
		vsnprintf(value, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	/* Header splitting is impossible by construction, not by hope. */
	if (strpbrk(value, "\r\n") != NULL) {
		free(value);
		return -1;
	}
	resp->headers[resp->nheaders].name = name;
	resp->headers[resp->nheaders].value = value;
	resp->nheaders++;
	return 0;
}

const char *
http_header(const struct http_response *resp, const char *name)
{
	size_t i;

	for (i = 0; i < resp->nheaders; i++)
		if (strcasecmp(resp->headers[i].name, name) == 0)
			return resp->headers[i].value;
	return NULL;
}

void
http_set_body(struct http_response *resp, int status,
    const char *content_type, char *body, size_t len)
{
	free(resp->body);
	resp->status = status;
	resp->content_type = content_type;
	resp->body = body;
	resp->body_len = len;
}

int
http_set_json(struct http_response *resp, int status,
    const char *content_type, struct json_object *o)
{
	char *body;
	size_t len;

	if ((body = jsonio_serialize(o, &len)) == NULL) {
		http_set_body(resp, 500, NULL, NULL, 0);
		return -1;
	}
	http_set_body(resp, status, content_type, body, len);
	return 0;
}

/* Every header the service sends, as the static names headers keep. */
static const char *const known_headers[] = {
	"Location", "Content-Location", "ETag", "Cache-Control", "Allow",
	"Accept", "Accept-Patch", "Link", "Retry-After", "WWW-Authenticate",
	"Idempotent-Replayed", NULL
};
static const char *const known_types[] = {
	"application/json", "application/problem+json", NULL
};

char *
http_response_encode(const struct http_response *resp, size_t *len)
{
	size_t n = 0, i;
	char *buf, *p;

	n += strlen("Content-Type: \n") +
	    (resp->content_type != NULL ? strlen(resp->content_type) : 0);
	for (i = 0; i < resp->nheaders; i++)
		n += strlen(resp->headers[i].name) + 3 +
		    strlen(resp->headers[i].value);
	n += 1 + resp->body_len;
	if ((buf = malloc(n + 1)) == NULL)
		return NULL;
	p = buf;
	if (resp->content_type != NULL)
		p += sprintf(p, "Content-Type: %s\n", resp->content_type);
	for (i = 0; i < resp->nheaders; i++)
		p += sprintf(p, "%s: %s\n", resp->headers[i].name,
		    resp->headers[i].value);
	*p++ = '\n';
	if (resp->body_len > 0)
		memcpy(p, resp->body, resp->body_len);
	p += resp->body_len;
	*p = '\0';
	*len = (size_t)(p - buf);
	return buf;
}

static const char *
known(const char *const *list, const char *s, size_t n)
{
	for (; *list != NULL; list++)
		if (strlen(*list) == n && strncasecmp(*list, s, n) == 0)
			return *list;
	return NULL;
}

int
http_response_decode(const char *buf, size_t len, int status,
    struct http_response *resp)
{
	const char *p = buf, *end = buf + len, *nl, *colon, *name;

	resp->status = status;
	while (p < end && *p != '\n') {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL ||
		    (colon = memchr(p, ':', (size_t)(nl - p))) == NULL ||
		    colon + 2 > nl)
			return -1;
		if ((size_t)(colon - p) == strlen("Content-Type") &&
		    strncasecmp(p, "Content-Type", 12) == 0) {
			resp->content_type = known(known_types, colon + 2,
			    (size_t)(nl - colon - 2));
		} else if ((name = known(known_headers, p,
		    (size_t)(colon - p))) != NULL) {
			if (http_add_header(resp, name, "%.*s",
			    (int)(nl - colon - 2), colon + 2) != 0)
				return -1;
		}
		p = nl + 1;
	}
	if (p >= end)
		return -1;
	p++;
	if ((resp->body_len = (size_t)(end - p)) > 0) {
		if ((resp->body = malloc(resp->body_len + 1)) == NULL)
			return -1;
		memcpy(resp->body, p, resp->body_len);
		resp->body[resp->body_len] = '\0';
	}
	return 0;
}

const char *
http_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 412: return "Precondition Failed";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Content";
	case 428: return "Precondition Required";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return "";
	}
}

void
http_new_request_id(struct http_request *req)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char r[16];
	size_t i, o = 0;

	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
		/* The id only correlates logs; a weak fallback beats none. */
		for (i = 0; i < sizeof(r); i++)
			r[i] = (unsigned char)random();
	}
	r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);	/* version 4 */
	r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);	/* RFC 4122 */
	for (i = 0; i < sizeof(r); i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			req->request_id[o++] = '-';
		req->request_id[o++] = hex[r[i] >> 4];
		req->request_id[o++] = hex[r[i] & 15];
	}
	req->request_id[o] = '\0';
}

int
http_adopt_request_id(struct http_request *req, const char *id)
{
	size_t i;

	if (id == NULL || strlen(id) != HTTP_REQUEST_ID_SIZE - 1)
		return -1;
	for (i = 0; i < HTTP_REQUEST_ID_SIZE - 1; i++) {
		int dash = i == 8 || i == 13 || i == 18 || i == 23;
		int hex = (id[i] >= '0' && id[i] <= '9') ||
		    (id[i] >= 'a' && id[i] <= 'f');
		if (dash ? id[i] != '-' : !hex)
			return -1;
	}
	memcpy(req->request_id, id, HTTP_REQUEST_ID_SIZE);
	return 0;
}

const char *
http_query_param(const char *query, const char *name, size_t *len)
{
	size_t nlen = strlen(name);
	const char *p = query;

	while (p != NULL && *p != '\0') {
		size_t plen = strcspn(p, "&");
		if (plen >= nlen && strncmp(p, name, nlen) == 0 &&
		    (plen == nlen || p[nlen] == '=')) {
			const char *v = plen == nlen ? p + plen : p + nlen + 1;
			*len = plen - (size_t)(v - p);
			return v;
		}
		p += plen;
		if (*p == '&')
			p++;
	}
	return NULL;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

long
http_percent_decode(const char *src, size_t len, char *dst, int plus_space)
{
	size_t i, o = 0;

	for (i = 0; i < len; i++) {
		if (src[i] == '%') {
			int hi, lo;
			if (i + 2 >= len)
				return -1;
			hi = hexval(src[i + 1]);
			lo = hexval(src[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return -1;
			dst[o++] = (char)(hi << 4 | lo);
			i += 2;
		} else if (src[i] == '\0') {
			return -1;
		} else {
			dst[o++] = plus_space && src[i] == '+' ? ' ' : src[i];
		}
	}
	dst[o] = '\0';
	return (long)o;
}

void
http_request_release(struct http_request *req)
{
	free(req->body);
	free(req->path_buf);
	req->body = NULL;
	req->body_len = 0;
	req->path_buf = NULL;
}

/*
 * Digits only, no sign: CONTENT_LENGTH is untrusted. Returns 0, -1 for
 * anything but digits, 1 for a number too large to represent (API.md:
 * that is 413, not 400).
 */
static int
parse_length(const char *s, size_t *out)
{
	size_t v = 0;
	int over = 0;

	if (*s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		if (v > (SIZE_MAX - 9) / 10)
			over = 1;
		else
			v = v * 10 + (size_t)(*s - '0');
	}
	*out = over ? SIZE_MAX : v;
	return over;
}

/*
 * Where a request comes from and its answer goes: a FastCGI request or
 * the CGI process's environment and standard streams.
 */
struct http_io {
	struct fcgi_conn *fc;	/* NULL for CGI */
};

/* The parameters a request is read from, by their index below. */
enum param {
	P_REQUEST_ID, P_REQUEST_METHOD, P_REQUEST_URI, P_SCRIPT_NAME,
	P_PATH_INFO, P_QUERY_STRING, P_CONTENT_TYPE, P_CONTENT_LENGTH,
	P_IF_MATCH, P_IF_NONE_MATCH, P_IDEMPOTENCY_KEY, P_REMOTE_USER,
	P_REMOTE_ADDR, P__MAX
};

/* Each with its length: most names in a request are of no interest. */
#define PARAM(name) { name, sizeof(name) - 1 }
static const struct {
	const char *name;
	size_t len;
} params[P__MAX] = {
	[P_REQUEST_ID] = PARAM("REQUEST_ID"),
	[P_REQUEST_METHOD] = PARAM("REQUEST_METHOD"),
	[P_REQUEST_URI] = PARAM("REQUEST_URI"),
	[P_SCRIPT_NAME] = PARAM("SCRIPT_NAME"),
	[P_PATH_INFO] = PARAM("PATH_INFO"),
	[P_QUERY_STRING] = PARAM("QUERY_STRING"),
	[P_CONTENT_TYPE] = PARAM("CONTENT_TYPE"),
	[P_CONTENT_LENGTH] = PARAM("CONTENT_LENGTH"),
	[P_IF_MATCH] = PARAM("HTTP_IF_MATCH"),
	[P_IF_NONE_MATCH] = PARAM("HTTP_IF_NONE_MATCH"),
	[P_IDEMPOTENCY_KEY] = PARAM("HTTP_IDEMPOTENCY_KEY"),
	[P_REMOTE_USER] = PARAM("REMOTE_USER"),
	[P_REMOTE_ADDR] = PARAM("REMOTE_ADDR"),
};
#undef PARAM

extern char **environ;

/* The longest name above. */
#define PARAM_NAME_MAX (sizeof("HTTP_IDEMPOTENCY_KEY") - 1)

/*
 * Finds every parameter a request is read from in one pass over the
 * "NAME=value" list (the FastCGI params or the CGI environment); the
 * first occurrence of a name wins, absent ones stay NULL. A request
 * carries some twenty names: each is compared only with those of its
 * length.
 */
static void
io_params(const struct http_io *io, const char *v[P__MAX])
{
	static unsigned by_len[PARAM_NAME_MAX + 1];	/* bit i: params[i] */
	char **env = io->fc != NULL ? fcgi_params(io->fc) : environ;
	const char *e, *eq;
	unsigned left, found = 0;
	size_t i, n;

	_Static_assert(P__MAX <= 32, "by_len holds a bit per parameter");
	if (by_len[params[0].len] == 0)
		for (i = 0; i < P__MAX; i++)
			if (params[i].len <= PARAM_NAME_MAX)
				by_len[params[i].len] |= 1u << i;
	for (i = 0; i < P__MAX; i++)
		v[i] = NULL;
	for (; env != NULL && *env != NULL; env++) {
		e = *env;
		if ((eq = strchr(e, '=')) == NULL ||
		    (n = (size_t)(eq - e)) > PARAM_NAME_MAX)
			continue;
		for (left = by_len[n] & ~found; left != 0; left &= left - 1) {
			i = (size_t)__builtin_ctz(left);
			if (memcmp(params[i].name, e, n) == 0) {
				v[i] = eq + 1;
				found |= 1u << i;
				break;
			}
		}
	}
}

/* Reads up to n bytes; returns the count, 0 at the end, -1 on error. */
static long
io_read(const struct http_io *io, char *buf, size_t n)
{
	ssize_t r;

	if (io->fc != NULL)
		return fcgi_read(io->fc, buf, n);
	do
		r = read(STDIN_FILENO, buf, n);
	while (r < 0 && errno == EINTR);
	return (long)r;
}

/*
 * Writes n bytes; returns 0, or -1 when the client went away (FastCGI:
 * when the output could not be gathered; it is sent as the request ends).
 */
static int
io_write(const struct http_io *io, const char *buf, size_t n)
{
	ssize_t w;

	if (io->fc != NULL)
		return fcgi_write(io->fc, buf, n);
	while (n > 0) {
		if ((w = write(STDOUT_FILENO, buf, n)) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Returns the path part of REQUEST_URI, or SCRIPT_NAME + PATH_INFO. */
static const char *
request_path(const char *const v[P__MAX], char **owned)
{
	const char *uri = v[P_REQUEST_URI];
	const char *script, *info;
	size_t n;

	*owned = NULL;
	if (uri != NULL && uri[0] != '\0') {
		n = strcspn(uri, "?#");
		if (uri[n] == '\0')
			return uri;
		if ((*owned = strndup(uri, n)) == NULL)
			return NULL;
		return *owned;
	}
	script = v[P_SCRIPT_NAME];
	info = v[P_PATH_INFO];
	if (script == NULL)
		script = "";
	if (info == NULL)
		info = "";
	n = strlen(script) + strlen(info) + 1;
	if ((*owned = malloc(n)) == NULL)
		return NULL;
	snprintf(*owned, n, "%s%s", script, info);
	return *owned;
}


/* Fills req from io, reading the body whole when it fits max_body. */
static int
read_request(const struct http_io *io, size_t max_body,
    struct http_request *req)
{
	const char *v[P__MAX], *cl;
	size_t got = 0;
	long n;
	int over;

	memset(req, 0, sizeof(*req));
	io_params(io, v);
	/* The front server's id, when it sends one, ties both logs together. */
	if (http_adopt_request_id(req, v[P_REQUEST_ID]) != 0)
		http_new_request_id(req);
	req->method = v[P_REQUEST_METHOD] != NULL ? v[P_REQUEST_METHOD] : "GET";
	if ((req->path = request_path(v, &req->path_buf)) == NULL)
		return -1;
	req->query = v[P_QUERY_STRING] != NULL ? v[P_QUERY_STRING] : "";
	req->content_type = v[P_CONTENT_TYPE];
	req->if_match = v[P_IF_MATCH];
	req->if_none_match = v[P_IF_NONE_MATCH];
	req->idempotency_key = v[P_IDEMPOTENCY_KEY];
	req->remote_user = v[P_REMOTE_USER];
	req->remote_addr = v[P_REMOTE_ADDR];
	if (req->content_type != NULL && req->content_type[0] == '\0')
		req->content_type = NULL;

	cl = v[P_CONTENT_LENGTH];
	if (cl == NULL || cl[0] == '\0')
		req->content_length = 0;
	else if ((over = parse_length(cl, &req->content_length)) < 0)
		req->body_state = HTTP_BODY_BAD_LENGTH;
	else if (over || req->content_length > max_body)
		req->body_state = HTTP_BODY_TOO_LARGE;

	/* The length is checked before a byte is read or allocated. */
	if ((req->body = malloc(req->body_state == HTTP_BODY_OK ?
	    req->content_length + 1 : 1)) == NULL)
		return -1;
	if (req->body_state == HTTP_BODY_OK) {
		while (got < req->content_length) {
			n = io_read(io, req->body + got,
			    req->content_length - got);
			if (n <= 0)
				break;
			got += (size_t)n;
		}
		if (got < req->content_length)
			req->body_state = HTTP_BODY_TRUNCATED;
	}
	req->body[got] = '\0';
	req->body_len = got;
	return 0;
}

/* Room for a response's head; HTTP_HEADERS_MAX values fit many times. */
#define HEAD_MAX (16 * 1024)

/* A response head being built; len stays within buf, over marks a loss. */
struct head {
	char buf[HEAD_MAX];
	size_t len;
	int over;
};

static void
head_put(struct head *h, const char *s, size_t n)
{
	if (h->over || n > sizeof(h->buf) - h->len) {
		h->over = 1;
		return;
	}
	memcpy(h->buf + h->len, s, n);
	h->len += n;
}

static void
head_str(struct head *h, const char *s)
{
	head_put(h, s, strlen(s));
}

static void
head_num(struct head *h, size_t v)
{
	char digits[24];
	size_t i = sizeof(digits);

	do
		digits[--i] = (char)('0' + v % 10);
	while ((v /= 10) > 0);
	head_put(h, digits + i, sizeof(digits) - i);
}

static void
head_line(struct head *h, const char *name, const char *value)
{
	head_str(h, name);
	head_put(h, ": ", 2);
	head_str(h, value);
	head_put(h, "\r\n", 2);
}

/*
 * Writes resp as a CGI response: Status, headers, X-Request-Id, then
 * Content-Type, Content-Length and the body unless HEAD or 204/304. The
 * head is built in place: this runs for every request.
 */
static int
write_response(const struct http_io *io, const struct http_request *req,
    const struct http_response *resp)
{
	int with_body = resp->body != NULL && resp->status != 204 &&
	    resp->status != 304;
	struct head h;
	size_t i;
	int rc;

	h.len = 0;
	h.over = 0;
	head_str(&h, "Status: ");
	head_num(&h, (size_t)resp->status);
	head_put(&h, " ", 1);
	head_str(&h, http_reason(resp->status));
	head_put(&h, "\r\n", 2);
	for (i = 0; i < resp->nheaders; i++)
		head_line(&h, resp->headers[i].name, resp->headers[i].value);
	if (http_header(resp, "X-Request-Id") == NULL)
		head_line(&h, "X-Request-Id", req->request_id);
	if (with_body) {
		head_line(&h, "Content-Type", resp->content_type != NULL ?
		    resp->content_type : "application/octet-stream");
		head_str(&h, "Content-Length: ");
		head_num(&h, resp->body_len);
		head_put(&h, "\r\n", 2);
	}
	head_put(&h, "\r\n", 2);
	if (h.over)
		return -1;
	rc = io_write(io, h.buf, h.len);
	/* HEAD announces the GET's length but sends no body. */
	if (rc == 0 && with_body && strcmp(req->method, "HEAD") != 0)
		rc = io_write(io, resp->body, resp->body_len);
	return rc;
}

/* Reads, answers and writes one request on io. */
static int
serve_one(const struct http_io *io, size_t max_body, http_handler *fn,
    void *arg)
{
	struct http_request req;
	struct http_response resp;
	int rc;

	http_response_init(&resp);
	if (read_request(io, max_body, &req) == 0)
		fn(arg, &req, &resp);
	/* Out of memory: fn never ran, and resp is a bare 500. */
	rc = write_response(io, &req, &resp);
	http_response_release(&resp);
	http_request_release(&req);
	return rc;
}

int
http_init(void)
{
	return FCGX_Init() == 0 ? 0 : -1;
}

int
http_is_cgi(void)
{
	return FCGX_IsCGI();
}

int
http_listen(const char *addr, int backlog)
{
	return FCGX_OpenSocket(addr, backlog);
}

int
http_listener_ready(int sock)
{
	int flags;

	if ((flags = fcntl(sock, F_GETFL)) < 0 ||
	    fcntl(sock, F_SETFL, flags | O_NONBLOCK) < 0)
		return -1;
	return 0;
}

struct http_exchange {
	struct fcgi_conn *fc;
	struct http_io io;
	struct http_request req;
	struct http_response resp;
	int holding;		/* a request is open */
	int unkept;		/* its connection ends with it */
};

struct http_exchange *
http_exchange_new(void)
{
	struct http_exchange *x;

	if ((x = calloc(1, sizeof(*x))) == NULL)
		return NULL;
	if ((x->fc = fcgi_conn_new()) == NULL) {
		free(x);
		return NULL;
	}
	x->io.fc = x->fc;
	http_response_init(&x->resp);
	return x;
}

void
http_exchange_free(struct http_exchange *x)
{
	if (x == NULL)
		return;
	if (x->holding)
		(void)http_exchange_finish(x);
	fcgi_conn_free(x->fc);
	free(x);
}

/*
 * FCGI_WEB_SERVER_ADDRS, as libfcgi reads it (once, at the first accept):
 * the IPv4 addresses, comma separated, a TCP peer must have; unset or
 * empty, any peer is taken.
 */
static int
peer_allowed(const struct sockaddr_storage *ss)
{
	static const char *addrs;
	static int read_env;
	const struct sockaddr_in *in;
	const char *list;
	char one[INET_ADDRSTRLEN];
	struct in_addr a;
	size_t n;

	if (!read_env) {
		addrs = getenv("FCGI_WEB_SERVER_ADDRS");
		read_env = 1;
	}
	if (ss->ss_family != AF_INET || addrs == NULL || *addrs == '\0')
		return 1;
	in = (const struct sockaddr_in *)(const void *)ss;
	for (list = addrs; *list != '\0';) {
		n = strcspn(list, ",");
		if (n < sizeof(one)) {
			memcpy(one, list, n);
			one[n] = '\0';
			if (inet_pton(AF_INET, one, &a) == 1 &&
			    a.s_addr == in->sin_addr.s_addr)
				return 1;
		}
		list += n + (list[n] == ',');
	}
	return 0;
}

int
http_accept_connection(int sock)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd;

	for (;;) {
		len = sizeof(ss);
		fd = accept4(sock, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED ||
			    errno == EPROTO)
				continue;
			return -1;
		}
		if (peer_allowed(&ss))
			return fd;
		close(fd);
	}
}

int
http_exchange_start(struct http_exchange *x, int conn, size_t max_body)
{
	if (x->holding) {
		close(conn);
		return -1;
	}
	/* It closed the connection: gone, or not FastCGI. */
	if (fcgi_begin(x->fc, conn) != 1)
		return 0;
	x->holding = 1;
	x->unkept = 0;
	http_response_init(&x->resp);
	if (read_request(&x->io, max_body, &x->req) != 0) {
		/* Out of memory: the bare 500 goes out, and the connection. */
		x->unkept = 1;
		(void)http_exchange_finish(x);
		return 0;
	}
	return 1;
}

int
http_exchange_kept_connection(struct http_exchange *x)
{
	if (x->holding)
		return -1;
	return fcgi_detach(x->fc);
}

const struct http_request *
http_exchange_request(const struct http_exchange *x)
{
	return &x->req;
}

struct http_response *
http_exchange_response(struct http_exchange *x)
{
	return &x->resp;
}

/*
 * Whether x's front server has sent all it will: the request's input
 * read to its end record, and no byte waiting beyond it. Reading to the
 * end record costs nothing more when it came with the body, as it does
 * from nginx; Apache sends it on its own after the request's head.
 */
static int
request_consumed(struct http_exchange *x)
{
	char c;

	return x->req.body_state == HTTP_BODY_OK &&
	    fcgi_read(x->fc, &c, 1) == 0 && fcgi_input_ended(x->fc) &&
	    !fcgi_input_waiting(x->fc);
}

/*
 * A kept connection's next request begins after this one's end-of-input
 * record: reads up to it, so that it is not taken for the next request's
 * first record. Returns whether the connection can be kept: not with a
 * body left unread, input beyond its length, or input read past the end.
 */
static int
end_kept_input(struct http_exchange *x)
{
	char buf[4096];
	size_t total = 0;
	long n;

	if (x->req.body_state != HTTP_BODY_OK)
		return 0;
	while (total <= sizeof(buf) &&
	    (n = fcgi_read(x->fc, buf, sizeof(buf))) > 0)
		total += (size_t)n;
	return total <= sizeof(buf) && fcgi_input_ended(x->fc) &&
	    !fcgi_read_ahead(x->fc);
}

int
http_exchange_finish(struct http_exchange *x)
{
	int rc, keep, linger;

	if (!x->holding)
		return -1;
	rc = write_response(&x->io, &x->req, &x->resp);
	/*
	 * The input is read to its end before the answer goes: a front that
	 * sends that end after the head (Apache) has its send succeed.
	 * Closing while the front still sends could turn the close into a
	 * TCP reset that takes the answer with it: such a connection
	 * lingers (fcgi_close()); one whose input was all read gets a plain
	 * close, so that a front keeping its end open stalls no one.
	 */
	keep = !x->unkept && fcgi_keep_conn(x->fc) && end_kept_input(x);
	linger = !keep && !request_consumed(x);
	if (fcgi_end(x->fc) != 0) {
		rc = -1;
		keep = linger = 0;
	}
	http_response_release(&x->resp);
	http_request_release(&x->req);
	if (!keep)
		fcgi_close(x->fc, linger);
	x->holding = 0;
	return rc;
}

int
http_serve_cgi(size_t max_body, http_handler *fn, void *arg)
{
	struct http_io io = { NULL };

	return serve_one(&io, max_body, fn, arg);
}
