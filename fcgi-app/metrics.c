/* metrics.c: per-process slots in shared memory, summed into /metrics text. */
#include "metrics.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

/*
 * Atomics are shared between processes only when lock-free: those are
 * address-free (C11 7.17.5), the others hide a lock in each process.
 */
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2,
    "64-bit atomics must be lock-free to live in shared memory");
_Static_assert(sizeof(unsigned long long) == 8, "counters are 64 bits");

/* Status codes the service answers itself, each with its own label. */
enum code {
	CODE_200 = 0, CODE_201, CODE_204, CODE_304, CODE_400, CODE_401,
	CODE_403, CODE_404, CODE_405, CODE_409, CODE_412, CODE_413, CODE_415,
	CODE_422, CODE_428, CODE_500, CODE_503, CODE_OTHER, CODE__MAX
};

static const int code_status[CODE_OTHER] = {
	200, 201, 204, 304, 400, 401, 403, 404, 405, 409, 412, 413, 415,
	422, 428, 500, 503
};

static const char *const code_label[CODE__MAX] = {
	"200", "201", "204", "304", "400", "401", "403", "404", "405", "409",
	"412", "413", "415", "422", "428", "500", "503", "other"
};

/* The problem types userreg_conflicts_total tells apart. */
enum conflict {
	CONFLICT_USER_EXISTS = 0,
	CONFLICT_EMAIL_TAKEN,
	CONFLICT_STALE_VERSION,
	CONFLICT_BUSINESS_RULE,
	CONFLICT_PRECONDITION_FAILED,
	CONFLICT_PRECONDITION_REQUIRED,
	CONFLICT__MAX
};

static const char *const conflict_label[CONFLICT__MAX] = {
	"user-exists", "email-taken", "stale-version",
	"business-rule-violation", "precondition-failed",
	"precondition-required"
};

static const char *const route_label[METRICS_ROUTE__MAX] = {
	"users", "user", "healthz", "metrics", "other"
};

static const char *const method_label[METRICS_METHOD__MAX] = {
	"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"
};

static const char *const reg_op_label[METRICS_REG__MAX] = {
	"read", "write", "commit"
};

/* Restarts are counted for the roles before the master's. */
static const char *const role_label[METRICS_ROLE_MASTER] = {
	"worker", "writer"
};

/*
 * Latency buckets from 25 us (a registry read) to 10 s (past the default
 * lock wait of 5 s), kept in nanoseconds so that bucketing and the sum
 * are exact integers; le is the label as it is rendered.
 */
#define TIME_BUCKETS 18
static const struct {
	uint64_t ns;
	const char *le;
} time_bounds[TIME_BUCKETS] = {
	{ 25000, "2.5e-05" }, { 50000, "5e-05" }, { 100000, "0.0001" },
	{ 250000, "0.00025" }, { 500000, "0.0005" }, { 1000000, "0.001" },
	{ 2500000, "0.0025" }, { 5000000, "0.005" }, { 10000000, "0.01" },
	{ 25000000, "0.025" }, { 50000000, "0.05" }, { 100000000, "0.1" },
	{ 250000000, "0.25" }, { 500000000, "0.5" }, { 1000000000, "1" },
	{ 2500000000, "2.5" }, { 5000000000, "5" }, { 10000000000, "10" }
};

/* Longest duration taken as it is, so that no sum can overflow. */
#define TIME_MAX_NS 1000000000000000ULL		/* 10^6 s, 11.6 days */

/* Writes per group-commit batch. */
#define BATCH_BUCKETS 9
static const uint64_t batch_bounds[BATCH_BUCKETS] = {
	1, 2, 4, 8, 16, 32, 64, 128, 256
};

/*
 * A histogram is its buckets, not cumulated (one word per bound, then
 * one for observations above the last), then its sum.
 */
#define TIME_HIST (TIME_BUCKETS + 2)
#define BATCH_HIST (BATCH_BUCKETS + 2)

/* A slot is a flat array of counters; these name its words. */
enum slot_word {
	W_REQUESTS = 0,
	W_REQUEST_TIME = W_REQUESTS +
	    METRICS_ROUTE__MAX * METRICS_METHOD__MAX * CODE__MAX,
	W_REGISTRY_TIME = W_REQUEST_TIME + METRICS_ROUTE__MAX * TIME_HIST,
	W_LOCK_WAIT = W_REGISTRY_TIME + METRICS_REG__MAX * TIME_HIST,
	W_CONFLICTS = W_LOCK_WAIT + TIME_HIST,
	W_UNAVAILABLE = W_CONFLICTS + CONFLICT__MAX,
	W_REPLAYS = W_UNAVAILABLE + 1,
	W_RESTARTS = W_REPLAYS + 1,
	W_BATCH = W_RESTARTS + METRICS_ROLE_MASTER,
	W_IN_FLIGHT = W_BATCH + BATCH_HIST,	/* a gauge, not a counter */
	SLOT_WORDS = W_IN_FLIGHT + 1
};

/*
 * Slots start on cache lines of their own (64 bytes, 8 words): processes
 * writing neighbouring slots never share a line.
 */
#define SLOT_STRIDE ((SLOT_WORDS + 7) / 8 * 8)

static atomic_ullong local_slot[SLOT_STRIDE];	/* without a pool */
static atomic_ullong *pool;	/* the shared slots, NULL without a pool */
static int pool_workers;	/* worker slots in pool */
static atomic_ullong *self = local_slot;	/* the slot this process writes */

static size_t
pool_slots(void)
{
	return (size_t)pool_workers + 2;
}

/* Word w summed over every slot of the pool (or this process's own). */
static uint64_t
sum_word(size_t w)
{
	const atomic_ullong *s;
	size_t i, n = pool != NULL ? pool_slots() : 1;
	uint64_t v = 0;

	for (i = 0; i < n; i++) {
		s = pool != NULL ? pool + i * SLOT_STRIDE : local_slot;
		v += atomic_load_explicit(&s[w], memory_order_relaxed);
	}
	return v;
}

/* Only this process writes its slot: a plain load and store, no lock. */
static void
add(size_t word, uint64_t n)
{
	atomic_ullong *w = &self[word];

	atomic_store_explicit(w, atomic_load_explicit(w, memory_order_relaxed)
	    + n, memory_order_relaxed);
}

static uint64_t
to_ns(double seconds)
{
	if (!(seconds > 0))	/* negative, zero or NaN */
		return 0;
	if (seconds >= (double)TIME_MAX_NS / 1e9)
		return TIME_MAX_NS;
	return (uint64_t)(seconds * 1e9 + 0.5);
}

/* An observation falls in the first bucket whose bound is not below it. */
static void
observe_time(size_t hist, double seconds)
{
	uint64_t ns = to_ns(seconds);
	size_t i = 0;

	while (i < TIME_BUCKETS && ns > time_bounds[i].ns)
		i++;
	add(hist + i, 1);
	add(hist + TIME_BUCKETS + 1, ns);
}

/*
 * A child forked after metrics_init_pool() inherits the slot of its
 * parent; until it attaches to a slot of its own it counts in private
 * memory, so that no slot ever has two writers.
 */
static void
on_fork_child(void)
{
	size_t i;

	for (i = 0; i < SLOT_STRIDE; i++)
		atomic_store_explicit(&local_slot[i], 0, memory_order_relaxed);
	self = local_slot;
}

size_t
metrics_pool_size(int workers)
{
	if (workers < 1 || workers > METRICS_WORKERS_MAX)
		return 0;
	return ((size_t)workers + 2) * SLOT_STRIDE * sizeof(atomic_ullong);
}

int
metrics_init_pool(int workers)
{
	size_t size;
	void *p;
	int rc;

	if ((size = metrics_pool_size(workers)) == 0) {
		errno = EINVAL;
		return -1;
	}
	if (pool != NULL) {
		errno = EBUSY;
		return -1;
	}
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
	    -1, 0);
	if (p == MAP_FAILED)
		return -1;
	if ((rc = pthread_atfork(NULL, NULL, on_fork_child)) != 0) {
		munmap(p, size);
		errno = rc;
		return -1;
	}
	pool = p;
	pool_workers = workers;
	self = pool + (size_t)(workers + 1) * SLOT_STRIDE;
	return 0;
}

int
metrics_attach(enum metrics_role role, int index)
{
	size_t slot;

	if (pool == NULL)
		goto bad;
	switch (role) {
	case METRICS_ROLE_WORKER:
		if (index < 0 || index >= pool_workers)
			goto bad;
		slot = (size_t)index;
		break;
	case METRICS_ROLE_WRITER:
		slot = (size_t)pool_workers;
		break;
	case METRICS_ROLE_MASTER:
		slot = (size_t)pool_workers + 1;
		break;
	default:
		goto bad;
	}
	self = pool + slot * SLOT_STRIDE;
	return 0;
bad:
	errno = EINVAL;
	return -1;
}

double
metrics_now(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		return 0;
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

enum metrics_method
metrics_method_of(const char *method)
{
	int i;

	if (method == NULL)
		return METRICS_METHOD_OTHER;
	for (i = 0; i < METRICS_METHOD_OTHER; i++)
		if (strcmp(method, method_label[i]) == 0)
			return (enum metrics_method)i;
	return METRICS_METHOD_OTHER;
}

enum metrics_route
metrics_route_of(const char *base_path, const char *path)
{
	size_t blen;

	if (base_path == NULL || path == NULL)
		return METRICS_ROUTE_OTHER;
	blen = strlen(base_path);
	if (strncmp(path, base_path, blen) != 0)
		return METRICS_ROUTE_OTHER;
	path += blen;
	if (strcmp(path, "users") == 0)
		return METRICS_ROUTE_USERS;
	if (strncmp(path, "users/", 6) == 0 && path[6] != '\0' &&
	    strchr(path + 6, '/') == NULL)
		return METRICS_ROUTE_USER;
	if (strcmp(path, "healthz") == 0)
		return METRICS_ROUTE_HEALTHZ;
	if (strcmp(path, "metrics") == 0)
		return METRICS_ROUTE_METRICS;
	return METRICS_ROUTE_OTHER;
}

static enum code
code_of(int status)
{
	int i;

	for (i = 0; i < CODE_OTHER; i++)
		if (code_status[i] == status)
			return (enum code)i;
	return CODE_OTHER;
}

void
metrics_request(enum metrics_route route, enum metrics_method method,
    int status, double seconds)
{
	if ((unsigned)route >= METRICS_ROUTE__MAX)
		route = METRICS_ROUTE_OTHER;
	if ((unsigned)method >= METRICS_METHOD__MAX)
		method = METRICS_METHOD_OTHER;
	add(W_REQUESTS + ((size_t)route * METRICS_METHOD__MAX +
	    (size_t)method) * CODE__MAX + (size_t)code_of(status), 1);
	observe_time(W_REQUEST_TIME + (size_t)route * TIME_HIST, seconds);
}

void
metrics_problem(const char *slug)
{
	int i;

	if (slug == NULL)
		return;
	if (strcmp(slug, "registry-unavailable") == 0) {
		add(W_UNAVAILABLE, 1);
		return;
	}
	for (i = 0; i < CONFLICT__MAX; i++)
		if (strcmp(slug, conflict_label[i]) == 0) {
			add(W_CONFLICTS + (size_t)i, 1);
			return;
		}
}

void
metrics_registry(enum metrics_reg_op op, double seconds)
{
	if ((unsigned)op >= METRICS_REG__MAX)
		return;
	observe_time(W_REGISTRY_TIME + (size_t)op * TIME_HIST, seconds);
}

void
metrics_lock_wait(double seconds)
{
	observe_time(W_LOCK_WAIT, seconds);
}

void
metrics_replay(void)
{
	add(W_REPLAYS, 1);
}

void
metrics_restart(enum metrics_role role)
{
	if ((unsigned)role >= METRICS_ROLE_MASTER)
		return;
	add(W_RESTARTS + (size_t)role, 1);
}

void
metrics_in_flight(unsigned requests)
{
	atomic_store_explicit(&self[W_IN_FLIGHT], requests,
	    memory_order_relaxed);
}

unsigned long
metrics_pool_in_flight(void)
{
	return (unsigned long)sum_word(W_IN_FLIGHT);
}

void
metrics_batch(size_t operations)
{
	size_t i = 0;

	while (i < BATCH_BUCKETS && operations > batch_bounds[i])
		i++;
	add(W_BATCH + i, 1);
	add(W_BATCH + BATCH_BUCKETS + 1, operations);
}

/* ---- rendering ----------------------------------------------------- */

/* A growing text buffer; after a failed allocation it ignores writes. */
struct buf {
	char *p;
	size_t len, cap;
	int failed;
};

#define BUF_START 32768		/* twice what a busy pool renders */

static int
buf_grow(struct buf *b, size_t need)
{
	size_t cap = b->cap;
	char *p;

	while (cap - b->len < need) {
		if (cap > SIZE_MAX / 2)
			goto fail;
		cap *= 2;
	}
	if ((p = realloc(b->p, cap)) == NULL)
		goto fail;
	b->p = p;
	b->cap = cap;
	return 0;
fail:
	b->failed = 1;
	return -1;
}

static void buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	while (!b->failed) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->failed = 1;
			return;
		}
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		buf_grow(b, (size_t)n + 1);
	}
}

/*
 * Writes s as a label value: backslash, double quote and line feed
 * escaped (exposition format 0.0.4). Only the caller's version needs it;
 * every other value is a fixed label of this file.
 */
static void
buf_label_value(struct buf *b, const char *s)
{
	for (; *s != '\0' && !b->failed; s++) {
		if (*s == '\\')
			buf_printf(b, "\\\\");
		else if (*s == '"')
			buf_printf(b, "\\\"");
		else if (*s == '\n')
			buf_printf(b, "\\n");
		else
			buf_printf(b, "%c", *s);
	}
}

static void
family(struct buf *b, const char *name, const char *type, const char *help)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Writes ns as seconds with every digit: 1500 is 0.000001500. */
static void
buf_seconds(struct buf *b, uint64_t ns)
{
	buf_printf(b, "%llu.%09llu", (unsigned long long)(ns / 1000000000),
	    (unsigned long long)(ns % 1000000000));
}

/*
 * Writes the samples of the time histogram h, labelled label="value" when
 * label is not NULL: cumulative buckets, +Inf, _sum, _count.
 */
static void
time_hist(struct buf *b, const char *name, const char *label,
    const char *value, const uint64_t *h)
{
	char lbl[64] = "", sep[2] = "";
	uint64_t n = 0;
	size_t i;

	if (label != NULL) {
		snprintf(lbl, sizeof(lbl), "%s=\"%s\"", label, value);
		sep[0] = ',';
	}
	for (i = 0; i < TIME_BUCKETS; i++) {
		n += h[i];
		buf_printf(b, "%s_bucket{%s%sle=\"%s\"} %llu\n", name, lbl,
		    sep, time_bounds[i].le, (unsigned long long)n);
	}
	n += h[TIME_BUCKETS];
	buf_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, lbl, sep,
	    (unsigned long long)n);
	buf_printf(b, "%s_sum%s%s%s ", name, label ? "{" : "", lbl,
	    label ? "}" : "");
	buf_seconds(b, h[TIME_BUCKETS + 1]);
	buf_printf(b, "\n%s_count%s%s%s %llu\n", name, label ? "{" : "", lbl,
	    label ? "}" : "", (unsigned long long)n);
}

static void
render_requests(struct buf *b, const uint64_t *t)
{
	const uint64_t *c = t + W_REQUESTS;
	size_t r, m, k;

	family(b, "userreg_http_requests_total", "counter",
	    "HTTP requests answered, by route, method and status code.");
	/* Only combinations seen; once seen, a series never goes away. */
	for (r = 0; r < METRICS_ROUTE__MAX; r++)
		for (m = 0; m < METRICS_METHOD__MAX; m++)
			for (k = 0; k < CODE__MAX; k++, c++)
				if (*c != 0)
					buf_printf(b, "userreg_http_requests_"
					    "total{route=\"%s\",method=\"%s\","
					    "code=\"%s\"} %llu\n",
					    route_label[r], method_label[m],
					    code_label[k],
					    (unsigned long long)*c);
	family(b, "userreg_http_request_duration_seconds", "histogram",
	    "Time a worker took to answer an HTTP request, by route.");
	for (r = 0; r < METRICS_ROUTE__MAX; r++)
		time_hist(b, "userreg_http_request_duration_seconds", "route",
		    route_label[r], t + W_REQUEST_TIME + r * TIME_HIST);
}

static void
render_registry(struct buf *b, const uint64_t *t)
{
	size_t i;

	family(b, "userreg_conflicts_total", "counter",
	    "Requests refused for conflicting with the registry's state "
	    "(409) or for their preconditions (412, 428), by problem type.");
	for (i = 0; i < CONFLICT__MAX; i++)
		buf_printf(b, "userreg_conflicts_total{type=\"%s\"} %llu\n",
		    conflict_label[i],
		    (unsigned long long)t[W_CONFLICTS + i]);
	family(b, "userreg_registry_unavailable_total", "counter",
	    "Answers 503 registry-unavailable: lock wait timed out, disk "
	    "full, read-only or unopenable registry.");
	buf_printf(b, "userreg_registry_unavailable_total %llu\n",
	    (unsigned long long)t[W_UNAVAILABLE]);
	family(b, "userreg_registry_operation_duration_seconds", "histogram",
	    "Time of registry operations: reads, whole write transactions "
	    "and their commits.");
	for (i = 0; i < METRICS_REG__MAX; i++)
		time_hist(b, "userreg_registry_operation_duration_seconds",
		    "operation", reg_op_label[i],
		    t + W_REGISTRY_TIME + i * TIME_HIST);
	family(b, "userreg_registry_lock_wait_seconds", "histogram",
	    "Time writes waited for the registry's write lock.");
	time_hist(b, "userreg_registry_lock_wait_seconds", NULL, NULL,
	    t + W_LOCK_WAIT);
	family(b, "userreg_idempotent_replays_total", "counter",
	    "Responses replayed from an idempotency record.");
	buf_printf(b, "userreg_idempotent_replays_total %llu\n",
	    (unsigned long long)t[W_REPLAYS]);
}

static void
render_pool(struct buf *b, const uint64_t *t)
{
	const uint64_t *h = t + W_BATCH;
	uint64_t n = 0;
	size_t i;

	family(b, "userreg_process_restarts_total", "counter",
	    "Pool processes that ended unexpectedly and were started again, "
	    "by role.");
	for (i = 0; i < METRICS_ROLE_MASTER; i++)
		buf_printf(b, "userreg_process_restarts_total{role=\"%s\"} "
		    "%llu\n", role_label[i],
		    (unsigned long long)t[W_RESTARTS + i]);
	family(b, "userreg_writer_batch_operations", "histogram",
	    "Writes committed per group-commit batch; _count counts the "
	    "batches.");
	for (i = 0; i < BATCH_BUCKETS; i++) {
		n += h[i];
		buf_printf(b, "userreg_writer_batch_operations_bucket{le=\"%llu\"}"
		    " %llu\n", (unsigned long long)batch_bounds[i],
		    (unsigned long long)n);
	}
	n += h[BATCH_BUCKETS];
	buf_printf(b, "userreg_writer_batch_operations_bucket{le=\"+Inf\"} "
	    "%llu\nuserreg_writer_batch_operations_sum %llu\n"
	    "userreg_writer_batch_operations_count %llu\n",
	    (unsigned long long)n, (unsigned long long)h[BATCH_BUCKETS + 1],
	    (unsigned long long)n);
	family(b, "userreg_requests_in_flight", "gauge",
	    "Requests the workers have read and not yet answered.");
	buf_printf(b, "userreg_requests_in_flight %llu\n",
	    (unsigned long long)t[W_IN_FLIGHT]);
}

static void
render_gauges(struct buf *b, const struct metrics_gauges *g)
{
	if (g != NULL && g->users >= 0) {
		family(b, "userreg_users", "gauge", "Users in the registry.");
		buf_printf(b, "userreg_users %lld\n", (long long)g->users);
	}
	if (g != NULL && g->revision >= 0) {
		family(b, "userreg_registry_revision", "gauge",
		    "The registry's revision counter: the version of its "
		    "latest write.");
		buf_printf(b, "userreg_registry_revision %lld\n",
		    (long long)g->revision);
	}
	family(b, "userreg_build_info", "gauge",
	    "The running build, in its labels; the value is always 1.");
	buf_printf(b, "userreg_build_info{version=\"");
	buf_label_value(b, g != NULL && g->version != NULL ? g->version :
	    "unknown");
	buf_printf(b, "\"} 1\n");
	family(b, "userreg_metrics_scope", "gauge",
	    "Which processes these metrics sum: the whole pool, or only the "
	    "process that answered (CGI, one worker under spawn-fcgi or "
	    "systemd).");
	buf_printf(b, "userreg_metrics_scope{scope=\"%s\"} 1\n",
	    pool != NULL ? "pool" : "process");
	if (pool != NULL) {
		family(b, "userreg_pool_workers", "gauge",
		    "Worker slots summed into these metrics.");
		buf_printf(b, "userreg_pool_workers %d\n", pool_workers);
	}
}

/* Adds every slot of the pool (or this process's own) into t. */
static void
sum_slots(uint64_t *t)
{
	size_t w;

	for (w = 0; w < SLOT_WORDS; w++)
		t[w] += sum_word(w);
}

char *
metrics_render(const struct metrics_gauges *g, size_t *len)
{
	struct buf b = { NULL, 0, BUF_START, 0 };
	uint64_t *t;
	char *text = NULL;

	if ((t = calloc(SLOT_WORDS, sizeof(*t))) == NULL)
		goto out;
	if ((b.p = malloc(b.cap)) == NULL)
		goto out;
	sum_slots(t);
	render_requests(&b, t);
	render_registry(&b, t);
	render_pool(&b, t);
	render_gauges(&b, g);
	if (b.failed)
		goto out;
	text = b.p;
	b.p = NULL;
	if (len != NULL)
		*len = b.len;
out:
	free(b.p);
	free(t);
	return text;
}
