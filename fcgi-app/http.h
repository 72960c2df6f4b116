/* http.h: requests and responses as plain structs, and their FastCGI I/O. */
#ifndef USERREG_HTTP_H
#define USERREG_HTTP_H

#include <stddef.h>

#include <json-c/json.h>

/*
 * Handlers see only these structs, so they are tested without FastCGI;
 * http.c is the one file that includes <fcgiapp.h>.
 */

#define HTTP_HEADERS_MAX 16		/* response headers besides the body's */
#define HTTP_REQUEST_ID_SIZE 37		/* a UUID and its NUL */

/* What became of the request body. */
enum http_body_state {
	HTTP_BODY_OK = 0,	/* read whole (possibly empty) */
	HTTP_BODY_TOO_LARGE,	/* Content-Length over max_body: not read */
	HTTP_BODY_TRUNCATED,	/* fewer bytes arrived than announced */
	HTTP_BODY_BAD_LENGTH	/* Content-Length is not a decimal number */
};

/*
 * One request. Strings are borrowed from the server's parameters and live
 * until http_request_release(); absent headers are NULL.
 */
struct http_request {
	const char *method;		/* never NULL */
	const char *path;		/* raw path, no query; never NULL */
	const char *query;		/* raw query string; "" when none */
	const char *content_type;
	const char *if_match;
	const char *if_none_match;
	const char *idempotency_key;
	const char *remote_user;	/* NULL or "" when unauthenticated */
	const char *remote_addr;	/* for logs; NULL when unknown */
	enum http_body_state body_state;
	size_t content_length;		/* announced length */
	char *body;			/* owned, NUL-terminated; may be "" */
	size_t body_len;
	char request_id[HTTP_REQUEST_ID_SIZE];
	char *path_buf;			/* owned storage behind path, if any */
};

struct http_header {
	const char *name;		/* static string */
	char *value;			/* owned */
};

/* One response; build with the functions below, then send or inspect. */
struct http_response {
	/*
	 * Set by a handler that handed the request on (to the writer): the
	 * answer comes later and the rest of resp means nothing yet.
	 */
	int deferred;
	int status;
	const char *content_type;	/* static string, NULL without body */
	struct http_header headers[HTTP_HEADERS_MAX];
	size_t nheaders;
	char *body;			/* owned */
	size_t body_len;
};

/* Sets resp empty with status 500 (so a forgotten answer is loud). */
void http_response_init(struct http_response *resp);

/* Frees what resp owns and leaves it as after init. */
void http_response_release(struct http_response *resp);

/*
 * Adds a header; name must be a static string and the formatted value is
 * copied. Callers pass only validated text (never raw request data), so no
 * CR or LF can reach the wire; a value holding one is refused. Returns 0,
 * or -1 when the table is full, the value is refused or memory ran out.
 */
int http_add_header(struct http_response *resp, const char *name,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Returns the value of header name (case-insensitive), or NULL. */
const char *http_header(const struct http_response *resp, const char *name);

/*
 * Sets status and a body serialized from o with the given content type
 * ("application/json" or "application/problem+json"). o is not consumed.
 * Returns 0, or -1 when out of memory (resp is then a bare 500).
 */
int http_set_json(struct http_response *resp, int status,
    const char *content_type, struct json_object *o);

/*
 * Sets status and body, a malloc()ed text of len bytes that resp now owns
 * (NULL for none), with the given content type; any earlier body is freed.
 */
void http_set_body(struct http_response *resp, int status,
    const char *content_type, char *body, size_t len);

/*
 * Encodes resp (Content-Type, headers, body; not X-Request-Id) as bytes
 * that http_response_decode() restores: a stored idempotent answer, or
 * one handed between processes. Returns a new buffer (free()) and its
 * length in *len, or NULL when out of memory.
 */
char *http_response_encode(const struct http_response *resp, size_t *len);

/*
 * Restores into resp (initialized) what http_response_encode() made, with
 * status. Only headers the service itself sends are restored (as the
 * static names http_add_header() needs); others are dropped. Returns 0,
 * or -1 for bytes it did not make.
 */
int http_response_decode(const char *buf, size_t len, int status,
    struct http_response *resp);

/* Returns the reason phrase for status ("Conflict"), "" if unknown. */
const char *http_reason(int status);

/*
 * Fills req->request_id with a random (version 4) UUID from getrandom(2).
 */
void http_new_request_id(struct http_request *req);

/*
 * Takes id as req->request_id when it is a UUID in lowercase hex
 * (8-4-4-4-12): the front server's REQUEST_ID parameter, never a client
 * header. Returns 0, or -1 (req unchanged) for anything else.
 */
int http_adopt_request_id(struct http_request *req, const char *id);

/*
 * Returns a pointer to the value of the query parameter name in query
 * (raw, still percent-encoded) and stores its length in *len, or NULL
 * when absent. The first occurrence wins.
 */
const char *http_query_param(const char *query, const char *name,
    size_t *len);

/*
 * Percent-decodes len bytes of src into dst (room for len + 1 bytes);
 * with plus_space, '+' means ' ' (query strings). Returns the decoded
 * length, or -1 for a bad escape or an encoded NUL.
 */
long http_percent_decode(const char *src, size_t len, char *dst,
    int plus_space);

/* Frees what req owns (body, path storage). */
void http_request_release(struct http_request *req);

/*
 * Answers one request: fills resp (initialized) from req. Must not exit;
 * arg is the caller's context.
 */
typedef void http_handler(void *arg, const struct http_request *req,
    struct http_response *resp);

/* Initializes libfcgi. Returns 0, or -1. */
int http_init(void);

/* Returns 1 when fd 0 is not a socket: the process was started as CGI. */
int http_is_cgi(void);

/*
 * Opens a FastCGI listen socket on addr ("HOST:PORT", ":PORT" or a unix
 * socket path). Returns the descriptor, or -1.
 */
int http_listen(const char *addr, int backlog);

/* Longest a stopping worker drains its socket while connections arrive (ms). */
#define HTTP_DRAIN_MAX_MS 2000

/*
 * One FastCGI request held by the process from its accept to its answer.
 * A worker keeps several: a request whose answer waits for another
 * process (the group-commit writer) stays open while others are read and
 * answered, all in one thread.
 */
struct http_exchange;

/*
 * Makes the listening socket sock (0: the socket on fd 0) ready for
 * http_accept_connection(): non-blocking, so that of the workers woken
 * for one connection the ones that lose the race come back instead of
 * blocking in accept(2) where no signal could reach them. Returns 0, or
 * -1 with errno set.
 */
int http_listener_ready(int sock);

/*
 * Accepts a connection waiting on the listening socket sock: its fd,
 * blocking (Linux does not inherit O_NONBLOCK) and close-on-exec, or -1
 * with errno set (EAGAIN: none waits). A TCP peer missing from
 * FCGI_WEB_SERVER_ADDRS, when that is set, is closed unread, as libfcgi
 * does. The caller waits for the connection to be readable before
 * http_exchange_start(): a front server may connect before it writes.
 */
int http_accept_connection(int sock);

/* Returns a new exchange, holding no connection, or NULL. */
struct http_exchange *http_exchange_new(void);

/* Frees x, answering a request it still holds with what its response has. */
void http_exchange_free(struct http_exchange *x);

/*
 * Reads a request from the connection conn, which x now owns, whole
 * (params; the body when it fits max_body). Returns 1 with x holding the
 * request (see http_exchange_request/response), 0 when the connection
 * went away or carried no request (it is closed then), -1 when x already
 * held one (conn is closed). The reads block (and are restarted after
 * EINTR): the caller starts it once conn is readable.
 */
int http_exchange_start(struct http_exchange *x, int conn, size_t max_body);

/* The request x holds, and its response to fill (initialized 500). */
const struct http_request *http_exchange_request(const struct http_exchange *x);
struct http_response *http_exchange_response(struct http_exchange *x);

/*
 * Writes x's response and ends its request; x may start again. Returns
 * 0, or -1 when the client went away.
 */
int http_exchange_finish(struct http_exchange *x);

/*
 * After http_exchange_finish(): the connection whose front server keeps
 * it for its next request (FCGI_KEEP_CONN), now the caller's, or -1 when
 * the connection was closed.
 */
int http_exchange_kept_connection(struct http_exchange *x);

/*
 * Answers the one CGI request of this process (RFC 3875: environment,
 * stdin, stdout) through fn. Returns 0, or -1 when stdout failed.
 */
int http_serve_cgi(size_t max_body, http_handler *fn, void *arg);

#endif
