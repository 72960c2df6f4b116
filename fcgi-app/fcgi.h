/* fcgi.h: the responder's side of FastCGI on one connection. */
#ifndef USERREG_FCGI_H
#define USERREG_FCGI_H

#include <stddef.h>

/*
 * One connection's FastCGI records (FastCGI 1.0 specification): a
 * request's begin record and params read whole, its standard input read
 * on demand, its standard output gathered and written with its end
 * record in one go. Buffers are kept from one request to the next, so
 * that a steady stream of requests allocates nothing: libfcgi allocated
 * some thirty blocks for each request, a quarter of a read's work.
 *
 * Management records (request id 0) are answered wherever they come:
 * FCGI_GET_VALUES with FCGI_MAX_CONNS, FCGI_MAX_REQS (1) and
 * FCGI_MPXS_CONNS (0), any other type with FCGI_UNKNOWN_TYPE. A second
 * begin record while a request is open is refused with FCGI_CANT_MPX_CONN
 * and records of any other request are skipped. A request in a role
 * other than FCGI_RESPONDER ends at once with FCGI_UNKNOWN_ROLE, and one
 * aborted before its params ended with FCGI_REQUEST_COMPLETE; either
 * closes the connection. An abort or a record of another stream while
 * the input is read ends the input short.
 */

/* Most bytes of params one request may carry; more ends the connection. */
#define FCGI_PARAMS_MAX (1024 * 1024)

/* Largest content of one record (its length field is 16 bits). */
#define FCGI_CONTENT_MAX 65535

/* How long a connection being closed is drained, at most (libfcgi: 2 s). */
#define FCGI_LINGER_MS 2000

struct fcgi_conn;

/* Returns a connection holding no socket, or NULL when out of memory. */
struct fcgi_conn *fcgi_conn_new(void);

/* Frees c and closes the socket it holds, if any. */
void fcgi_conn_free(struct fcgi_conn *c);

/*
 * Takes the connected socket fd (blocking; a socket c still held is
 * closed first) and reads records until a responder request's params
 * are complete. Returns 1 with the request
 * open; 0 when the front server closed the connection, broke the
 * protocol or sent too many params: fd is closed then. Reads are
 * restarted after EINTR.
 */
int fcgi_begin(struct fcgi_conn *c, int fd);

/*
 * The open request's params as "NAME=value" strings, NULL-terminated,
 * in the order they came: owned by c until the request ends. A name
 * holding '=' or NUL is dropped, and a value ends at its first NUL.
 */
char **fcgi_params(const struct fcgi_conn *c);

/*
 * Reads up to n bytes of the request's standard input. Returns the
 * count, 0 at its end, or -1 when the connection failed, broke the
 * protocol or aborted the request (see fcgi_input_failed()).
 */
long fcgi_read(struct fcgi_conn *c, char *buf, size_t n);

/* Whether the input's end record has been read. */
int fcgi_input_ended(const struct fcgi_conn *c);

/* Whether reading the input failed: the connection cannot be kept. */
int fcgi_input_failed(const struct fcgi_conn *c);

/*
 * Whether input past what was read so far is held by c (read_ahead) or,
 * with the socket's too (input_waiting): once the input has ended,
 * nothing ought to follow before the answer.
 */
int fcgi_read_ahead(const struct fcgi_conn *c);
int fcgi_input_waiting(const struct fcgi_conn *c);

/* Whether the front server asked to keep the connection (FCGI_KEEP_CONN). */
int fcgi_keep_conn(const struct fcgi_conn *c);

/* Adds n bytes to the request's standard output. Returns 0, or -1 (memory). */
int fcgi_write(struct fcgi_conn *c, const char *buf, size_t n);

/*
 * Sends the gathered output, its end and the end of the request
 * (FCGI_REQUEST_COMPLETE). Returns 0, or -1 when the front server went
 * away or output could not be gathered. The socket stays with c.
 */
int fcgi_end(struct fcgi_conn *c);

/* Gives up the socket without closing it: the caller's now, or -1. */
int fcgi_detach(struct fcgi_conn *c);

/*
 * Closes the socket. With linger, first shuts down its sending side and
 * reads what the front server still sends, for FCGI_LINGER_MS at most,
 * so that bytes on their way cannot turn the close into a TCP reset
 * that takes the answer with it.
 */
void fcgi_close(struct fcgi_conn *c, int linger);

#endif
