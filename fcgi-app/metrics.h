/* metrics.h: the pool's counters and histograms, served as /metrics text. */
#ifndef USERREG_METRICS_H
#define USERREG_METRICS_H

#include <stddef.h>
#include <stdint.h>

/*
 * Every process of a pool (the master, each worker, the writer) counts
 * into a slot of its own in one anonymous shared mapping that the master
 * makes before it forks. Only that process writes its slot, with relaxed
 * atomic stores, so recording takes no lock, no system call and no
 * allocation, and a reader never sees a torn value. A process restarted
 * in the same slot carries on from its predecessor's values, so every
 * counter stays monotonic. metrics_render() sums every slot: whichever
 * worker answers GET /metrics serves the totals of the whole pool.
 *
 * Without metrics_init_pool() (plain CGI, one worker under spawn-fcgi or
 * systemd) a process counts in memory of its own, and the exposition says
 * so with userreg_metrics_scope{scope="process"}.
 *
 * The state is per process (a module of process-level concerns, like the
 * log level); nothing here may be called from a signal handler.
 */

#define METRICS_WORKERS_MAX 256	/* worker slots metrics_init_pool() makes */

/* The Content-Type of metrics_render()'s text (exposition format 0.0.4). */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Which slot a process of the pool writes. */
enum metrics_role {
	METRICS_ROLE_WORKER = 0,	/* one slot per worker index */
	METRICS_ROLE_WRITER,		/* the group-commit writer */
	METRICS_ROLE_MASTER,		/* counts restarts */
	METRICS_ROLE__MAX
};

/* The route label: what the router matched, below the base path. */
enum metrics_route {
	METRICS_ROUTE_USERS = 0,	/* users */
	METRICS_ROUTE_USER,		/* users/{username} */
	METRICS_ROUTE_HEALTHZ,		/* healthz */
	METRICS_ROUTE_METRICS,		/* metrics */
	METRICS_ROUTE_OTHER,		/* anything else (404 not-found) */
	METRICS_ROUTE__MAX
};

/* The method label. */
enum metrics_method {
	METRICS_METHOD_GET = 0,
	METRICS_METHOD_HEAD,
	METRICS_METHOD_POST,
	METRICS_METHOD_PUT,
	METRICS_METHOD_PATCH,
	METRICS_METHOD_DELETE,
	METRICS_METHOD_OPTIONS,
	METRICS_METHOD_OTHER,
	METRICS_METHOD__MAX
};

/*
 * The operation label of the registry latency histogram. A write spans
 * registry_begin() to registry_commit() or registry_rollback(), its lock
 * wait included; a commit is registry_commit() alone, its fsync.
 */
enum metrics_reg_op {
	METRICS_REG_READ = 0,	/* a read outside a write transaction */
	METRICS_REG_WRITE,	/* a whole write transaction */
	METRICS_REG_COMMIT,	/* the commit of one */
	METRICS_REG__MAX
};

/*
 * Values only the caller knows, read at render time. A negative count
 * leaves its gauge out (the registry did not answer).
 */
struct metrics_gauges {
	int64_t users;		/* userreg_users: users in the registry */
	int64_t revision;	/* userreg_registry_revision */
	const char *version;	/* userreg_build_info's version label; */
				/* NULL for "unknown" */
};

/*
 * In the master, before it forks anything: maps one shared slot for each
 * of workers worker processes (1..METRICS_WORKERS_MAX), one for the
 * writer and one for the master, all zero, and makes the calling process
 * write the master's slot. A process forked afterwards counts nothing
 * into the pool until it calls metrics_attach(). Returns 0, or -1 with
 * errno set (EINVAL for a bad count, EBUSY when already done, or mmap's
 * error); on failure the process keeps counting on its own and the
 * exposition says scope="process". The mapping lasts until the process
 * exits and is inherited by every child.
 */
int metrics_init_pool(int workers);

/*
 * Returns the bytes metrics_init_pool(workers) maps: workers + 2 slots of
 * whole cache lines. 0 for a count out of range.
 */
size_t metrics_pool_size(int workers);

/*
 * In a child of the master, right after fork(): makes this process write
 * the slot of role (index: the worker's index, 0..workers-1, as the
 * master numbers its workers; ignored for the writer and the master). A
 * process started again in the same slot continues its counters, so the
 * master must never run two live processes in one slot. Returns 0, or -1
 * (EINVAL) when there is no pool mapping or index is out of range: the
 * process then counts only for itself.
 */
int metrics_attach(enum metrics_role role, int index);

/*
 * Returns CLOCK_MONOTONIC in seconds, for timing what the functions
 * below record: t0 = metrics_now(); ...; metrics_now() - t0. Uses the
 * vDSO clock, not a system call; 0 if the clock fails.
 */
double metrics_now(void);

/* Returns the label of an HTTP method ("GET"; case-sensitive), or OTHER. */
enum metrics_method metrics_method_of(const char *method);

/*
 * Returns the route of the raw request path below base_path (ending in
 * '/', as config.h keeps it): "users", "users/" + one non-empty segment,
 * "healthz", "metrics"; anything else, or a path outside base_path, is
 * METRICS_ROUTE_OTHER. The name in users/{username} is not checked: a
 * name the router refuses counts as route "user" with code 404.
 */
enum metrics_route metrics_route_of(const char *base_path, const char *path);

/*
 * Counts one answered request by route, method and status (200, 201,
 * 204, 304, 400, 401, 403, 404, 405, 409, 412, 413, 415, 422, 428, 500
 * and 503 by number, anything else as "other") and observes its duration
 * in seconds in the latency histogram of route. Out-of-range enum values
 * count as OTHER; negative or NaN durations as 0.
 */
void metrics_request(enum metrics_route route, enum metrics_method method,
    int status, double seconds);

/*
 * Counts a problem answered, by its slug ("user-exists"): the conflict
 * types user-exists, email-taken, stale-version, business-rule-violation,
 * precondition-failed and precondition-required in
 * userreg_conflicts_total, registry-unavailable in
 * userreg_registry_unavailable_total; other slugs are not counted here
 * (their status is, by metrics_request()). NULL is ignored.
 */
void metrics_problem(const char *slug);

/* Observes the duration in seconds of one registry operation op. */
void metrics_registry(enum metrics_reg_op op, double seconds);

/*
 * Observes how long a write waited for the registry's write lock (the
 * time spent taking BEGIN IMMEDIATE), in seconds, timed-out waits too.
 */
void metrics_lock_wait(double seconds);

/* Counts one response replayed from an idempotency record. */
void metrics_replay(void);

/*
 * In the master: counts a process of role (worker or writer) that ended
 * unexpectedly and was started again. METRICS_ROLE_MASTER is ignored.
 */
void metrics_restart(enum metrics_role role);

/*
 * In a worker: the requests it has read and not yet answered, now (a
 * gauge: stored, not added; a worker started again in a slot stores its
 * own count before its first request).
 */
void metrics_in_flight(unsigned requests);

/*
 * The requests every worker of the pool holds now, the sum of their
 * metrics_in_flight() (this process's own without a pool). Besides
 * /metrics, the write path reads it to tell a pool with nothing else to
 * do, where a write is fastest committed by its own worker (users.c).
 */
unsigned long metrics_pool_in_flight(void);

/*
 * In the writer: counts one group-commit batch of operations writes
 * (userreg_writer_batch_operations: its _count is the number of batches,
 * its _sum the number of writes).
 */
void metrics_batch(size_t operations);

/*
 * Renders every metric, summed over the pool's slots (or this process's
 * alone without a pool), and the gauges g (NULL: all unknown) as
 * Prometheus text exposition format 0.0.4. Returns a NUL-terminated
 * buffer that the caller frees with free(), and stores its length without
 * the NUL in *len when len is not NULL; NULL when out of memory. Values
 * other processes are writing meanwhile may show an observation in a
 * histogram's buckets before its _sum; _count always equals +Inf.
 */
char *metrics_render(const struct metrics_gauges *g, size_t *len);

#endif
