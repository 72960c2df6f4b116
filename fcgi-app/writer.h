/* writer.h: the group-commit writer process and its workers' client. */
#ifndef USERREG_WRITER_H
#define USERREG_WRITER_H

#include <stddef.h>

#include "config.h"
#include "http.h"
#include "pool.h"
#include "users.h"
#include "write.h"

/*
 * One writer process per pool applies every write: workers parse,
 * validate and read the SQLite file directly, and hand each write that
 * would change something to the writer over a unix socket. The writer
 * takes what has queued, applies each write in a savepoint of its own
 * inside one BEGIN IMMEDIATE transaction (a refused check undoes only its
 * own savepoint), commits once (synchronous=FULL: one fsync for the whole
 * batch, nothing visible before it is durable) and only then answers
 * them all. No artificial delay: a batch is whatever arrived while the
 * previous commit was syncing.
 */

/* Most writes applied in one transaction. */
#define WRITER_BATCH_MAX 256
/* Longest abstract socket name, with its leading NUL. */
#define WRITER_ADDR_MAX 64

/*
 * The pool master, before it forks: creates the writer's listening socket
 * in the abstract namespace (nothing on disk) and writes its name into
 * addr (WRITER_ADDR_MAX bytes, starting with a NUL) and the name's length
 * into *addr_len. The socket outlives writer restarts, so a write sent
 * while the writer restarts waits for the next one. Returns the
 * descriptor, or -1 with errno set.
 */
int writer_listen(char *addr, size_t *addr_len);

/*
 * The writer process: serves the listening socket listen_fd until a
 * signal on sig_fd (a signalfd) asks it to stop, answering the batch in
 * hand first. It opens only the registry file vetted (see pool.h; NULL:
 * any); while it cannot, every batch is answered 503. Connections from
 * processes of another user are refused. Returns the process's exit
 * status (POOL_EXIT_MOVED when its file was replaced).
 */
int writer_main(const struct config *cfg, int listen_fd, int sig_fd,
    const struct pool_vetted *vetted);

struct writer_client;

/*
 * A worker's connection to the writer at addr (addr_len bytes, as
 * writer_listen() made), connected on first use. A write waits for its
 * answer at most timeout_ms. Returns NULL when out of memory.
 */
struct writer_client *writer_client_new(const char *addr, size_t addr_len,
    int timeout_ms);

/* Closes the connection and frees wc; NULL is a no-op. */
void writer_client_free(struct writer_client *wc);

/*
 * Hands the write kind on name asked by req to the writer without waiting
 * for it; its answer comes through writer_client_collect(), named by tag.
 * Many writes may wait at once. Returns 0, or -1 when the writer cannot be
 * reached (the caller answers 503).
 */
int writer_submit(struct writer_client *wc, void *tag, enum write_kind kind,
    const char *name, const struct http_request *req);

/* The descriptor to poll for answers while writes wait, else -1. */
int writer_client_fd(const struct writer_client *wc);

/*
 * A number that changes whenever wc connects anew: the descriptor of
 * writer_client_fd() may be a new socket under an old number, which an
 * epoll set must be told of.
 */
unsigned writer_client_connection(const struct writer_client *wc);

/* How many writes wait for their answer. */
size_t writer_client_pending(const struct writer_client *wc);

/*
 * Milliseconds until the oldest waiting write's deadline (0 once past),
 * or -1 when none waits: the poll timeout of the caller's loop.
 */
int writer_client_timeout(const struct writer_client *wc);

/*
 * Called for each write that ended: resp holds the writer's answer, to
 * be moved out (its fields may be taken, leaving it initialized), or is
 * NULL when the writer did not answer in time or went away: the write may
 * or may not have happened, and must be answered 503 (never acknowledged).
 */
typedef void writer_done(void *arg, void *tag, struct http_response *resp);

/*
 * Takes the answers that arrived (readable: the descriptor polled
 * readable) and ends the writes whose deadline passed, calling done for
 * each. Bodies are bounded by max_body.
 */
void writer_client_collect(struct writer_client *wc, int readable,
    size_t max_body, writer_done *done, void *arg);

/*
 * Has the writer apply the write (as write_apply() would) and waits for
 * its answer in resp (initialized). When the writer cannot be reached or
 * does not answer in time, resp is 503 registry-unavailable: the write
 * may or may not have happened, and was never acknowledged. Only when no
 * other write of wc waits.
 */
void writer_call(struct writer_client *wc, struct users_ctx *ctx,
    enum write_kind kind, const char *name, const struct http_request *req,
    struct http_response *resp);

#endif
