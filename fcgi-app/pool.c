/* pool.c: the pre-fork master: workers, the writer, signals, restarts. */
#include "pool.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "log.h"
#include "metrics.h"
#include "worker.h"
#include "writer.h"

/* Slot 0 is the writer (when there is one), then the workers. */
enum slot_kind { SLOT_WRITER, SLOT_WORKER };

_Static_assert(POOL_WORKERS_MAX <= METRICS_WORKERS_MAX,
    "every worker needs a metrics slot");

struct slot {
	enum slot_kind kind;
	pid_t pid;			/* 0 while not running */
	struct timespec started;
	struct timespec due;		/* when to start it again */
	int fails;			/* short lives in a row */
};

/* Which file a path names: its device and inode, if it is there. */
#define file_id pool_vetted

struct pool {
	const struct pool_opts *o;
	struct slot slots[POOL_WORKERS_MAX + 1];
	int nslots;
	int sig_fd;
	sigset_t mask;
	pid_t master;
	int writer_fd;			/* -1 without a writer */
	char writer_addr[WRITER_ADDR_MAX];
	size_t writer_addr_len;
	struct file_id db;		/* the registry file children may use */
	struct file_id wal;		/* its log, as it was when vetted */
	struct registry *reg;		/* kept open: its log stays put */
	int restart;			/* restart every process */
	int stopping;
};

static struct registry *
not_vetted(int *moved, char *why)
{
	snprintf(why, REG_ERRMSG_SIZE, "the registry file is not the one the "
	    "pool started with");
	*moved = 1;
	return NULL;
}

struct registry *
pool_open_registry(const struct config *cfg, unsigned flags,
    const struct pool_vetted *v, int *moved, char *why)
{
	struct registry *reg;
	struct stat sb;
	enum reg_err err;

	*moved = 0;
	/*
	 * Checked before the open: opening a replacement would read the old
	 * file's log, still at the path, as its own, and closing it would
	 * checkpoint that log into the replacement under the processes still
	 * using it. A missing file is the open's to report.
	 */
	if (v != NULL && v->present && stat(cfg->registry, &sb) == 0 &&
	    (sb.st_dev != v->dev || sb.st_ino != v->ino))
		return not_vetted(moved, why);
	if ((reg = registry_open(cfg->registry, cfg->busy_timeout_ms, flags,
	    &err, why)) == NULL || v == NULL || !v->present)
		return reg;
	/* And after: a replacement in the moment between is seen here. */
	if (stat(cfg->registry, &sb) != 0 || sb.st_dev != v->dev ||
	    sb.st_ino != v->ino) {
		registry_close(reg);
		return not_vetted(moved, why);
	}
	return reg;
}

int
pool_stop_ms(const struct config *cfg)
{
	return 2 * cfg->busy_timeout_ms + HTTP_DRAIN_MAX_MS + 1000;
}

static void
now_plus(struct timespec *t, long ms)
{
	clock_gettime(CLOCK_MONOTONIC, t);
	t->tv_sec += ms / 1000;
	t->tv_nsec += (ms % 1000) * 1000000L;
	if (t->tv_nsec >= 1000000000L) {
		t->tv_sec++;
		t->tv_nsec -= 1000000000L;
	}
}

/* Milliseconds from now until t (negative when past). */
static long long
ms_until(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long long)(t->tv_sec - now.tv_sec) * 1000 +
	    (t->tv_nsec - now.tv_nsec) / 1000000;
}

/* The signals every process of the pool takes through a signalfd. */
static void
pool_signals(sigset_t *mask)
{
	sigemptyset(mask);
	sigaddset(mask, SIGTERM);
	sigaddset(mask, SIGINT);
	sigaddset(mask, SIGHUP);
	sigaddset(mask, SIGUSR2);
	sigaddset(mask, SIGCHLD);
}

/* The child's side of a fork: never returns. */
static void
child(struct pool *p, struct slot *s)
{
	struct worker_opts wo;
	sigset_t mask;
	int sig_fd, status;

	/* Die with the master, even if it died before this line. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != p->master)
		_exit(0);
	close(p->sig_fd);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGUSR2);
	if ((sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
		log_error("cannot create a signalfd: %s", strerror(errno));
		_exit(1);
	}
	/* The same slot for the same worker index across restarts. */
	if (s->kind == SLOT_WRITER)
		metrics_attach(METRICS_ROLE_WRITER, 0);
	else
		metrics_attach(METRICS_ROLE_WORKER,
		    (int)(s - p->slots) - (p->writer_fd >= 0));
	if (s->kind == SLOT_WRITER) {
		prctl(PR_SET_NAME, "userreg-writer");
		close(p->o->listen_fd);
		status = writer_main(p->o->cfg, p->writer_fd, sig_fd, &p->db);
	} else {
		prctl(PR_SET_NAME, "userreg-worker");
		if (p->writer_fd >= 0)
			close(p->writer_fd);
		memset(&wo, 0, sizeof(wo));
		wo.cfg = p->o->cfg;
		wo.listen_fd = p->o->listen_fd;
		wo.sig_fd = sig_fd;
		wo.in_pool = 1;
		wo.vetted = &p->db;
		if (p->writer_fd >= 0) {
			wo.writer_addr = p->writer_addr;
			wo.writer_addr_len = p->writer_addr_len;
		}
		status = worker_main(&wo);
	}
	_exit(status);
}

/* Starts slot s; a failed fork is retried later. */
static void
spawn(struct pool *p, struct slot *s)
{
	pid_t pid = fork();

	if (pid == 0)
		child(p, s);
	if (pid < 0) {
		log_error("cannot fork a %s: %s; retrying",
		    s->kind == SLOT_WRITER ? "writer" : "worker",
		    strerror(errno));
		s->fails++;
		now_plus(&s->due, POOL_RESPAWN_MIN_MS << (s->fails < 6 ?
		    s->fails : 6));
		return;
	}
	s->pid = pid;
	clock_gettime(CLOCK_MONOTONIC, &s->started);
}

static struct slot *
slot_of(struct pool *p, pid_t pid)
{
	int i;

	for (i = 0; i < p->nslots; i++)
		if (p->slots[i].pid == pid)
			return &p->slots[i];
	return NULL;
}

static void check_identity(struct pool *p);

/* Collects every child that ended and decides when each starts again. */
static void
reap(struct pool *p)
{
	struct slot *s;
	long long lived;
	long delay;
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if ((s = slot_of(p, pid)) == NULL)
			continue;
		s->pid = 0;
		if (p->stopping || p->restart)
			continue;
		if (WIFEXITED(status) && (WEXITSTATUS(status) ==
		    POOL_EXIT_MOVED)) {
			/* It saw the file change first: look now. */
			check_identity(p);
			p->restart = 1;
			continue;
		}
		metrics_restart(s->kind == SLOT_WRITER ? METRICS_ROLE_WRITER :
		    METRICS_ROLE_WORKER);
		log_error("%s %ld ended (%s %d); starting another",
		    s->kind == SLOT_WRITER ? "writer" : "worker", (long)pid,
		    WIFSIGNALED(status) ? "signal" : "status",
		    WIFSIGNALED(status) ? WTERMSIG(status) :
		    WEXITSTATUS(status));
		lived = -ms_until(&s->started);
		s->fails = lived < POOL_HEALTHY_MS ? s->fails + 1 : 0;
		delay = s->fails == 0 ? 0 : POOL_RESPAWN_MIN_MS <<
		    (s->fails < 6 ? s->fails - 1 : 5);
		if (delay > POOL_RESPAWN_MAX_MS)
			delay = POOL_RESPAWN_MAX_MS;
		now_plus(&s->due, delay);
	}
}

/* Sends sig to every running child of kind (or both when all). */
static void
signal_children(struct pool *p, int sig, int all, enum slot_kind kind)
{
	int i;

	for (i = 0; i < p->nslots; i++)
		if (p->slots[i].pid > 0 && (all || p->slots[i].kind == kind))
			kill(p->slots[i].pid, sig);
}

static int
running(const struct pool *p, int all, enum slot_kind kind)
{
	int i, n = 0;

	for (i = 0; i < p->nslots; i++)
		if (p->slots[i].pid > 0 && (all || p->slots[i].kind == kind))
			n++;
	return n;
}

/* Reads pending signals; what they ask for goes into p. */
static void
take_signals(struct pool *p)
{
	struct signalfd_siginfo si;

	while (read(p->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGTERM:
		case SIGINT:
			p->stopping = 1;
			break;
		case SIGHUP:
			/* logrotate moved the file: everyone reopens it. */
			log_reopen();
			signal_children(p, SIGHUP, 1, SLOT_WORKER);
			break;
		default:
			break;	/* SIGCHLD: reap() below */
		}
	}
	reap(p);
}

/*
 * Sends sig to the children (all, or those of kind) and waits until they
 * are gone, killing what is left after ms.
 */
static void
stop_children(struct pool *p, int sig, int all, enum slot_kind kind, int ms)
{
	struct pollfd pfd = { p->sig_fd, POLLIN, 0 };
	struct timespec deadline;
	long long left;
	int killed = 0;

	signal_children(p, sig, all, kind);
	now_plus(&deadline, ms);
	while (running(p, all, kind) > 0) {
		left = ms_until(&deadline);
		if (left <= 0 && !killed) {
			log_error("processes still running after %d ms; "
			    "killing them", ms);
			signal_children(p, SIGKILL, all, kind);
			killed = 1;
		}
		poll(&pfd, 1, left > 0 ? (int)(left < 100 ? left : 100) : 100);
		take_signals(p);
	}
}

static struct file_id
file_id_of(const char *path)
{
	struct file_id id = { 0, 0, 0 };
	struct stat sb;

	if (stat(path, &sb) == 0) {
		id.present = 1;
		id.dev = sb.st_dev;
		id.ino = sb.st_ino;
	}
	return id;
}

static int
same_file(const struct file_id *a, const struct file_id *b)
{
	return a->present == b->present &&
	    (!a->present || (a->dev == b->dev && a->ino == b->ino));
}

/* Writes the path of the registry's file with suffix into buf. */
static int
sibling(const struct pool *p, const char *suffix, char *buf, size_t size)
{
	return snprintf(buf, size, "%s%s", p->o->cfg->registry, suffix) <
	    (int)size ? 0 : -1;
}

/* Does this pool's registry live in a file the master can watch? */
static int
file_registry(const struct pool *p)
{
	return !config_is_postgresql(p->o->cfg->registry);
}

/*
 * With no child running: makes the registry file at the path the one
 * children may open. The master keeps a handle on it, so its log file
 * (-wal) stays the same file all along, which is noted. After the file
 * was replaced, the log and index (-shm) at its path still belong to the
 * old file when the log is the one noted: SQLite itself leaves them there
 * for a moved database and would replay that log into the new file. They
 * go (after a deletion too: a log without its file is of no use and
 * would be replayed into whatever file is put there next), so the new file
 * opens clean; a log that came with the new file (both restored) is kept.
 * A restored copy in rollback-journal mode is switched to WAL.
 */
static void
vet(struct pool *p)
{
	char wal[CONFIG_PATH_MAX + 8], shm[CONFIG_PATH_MAX + 8];
	char why[REG_ERRMSG_SIZE];
	struct file_id now;
	enum reg_err err;

	registry_close(p->reg);
	p->reg = NULL;
	p->db = file_id_of(p->o->cfg->registry);
	if (sibling(p, "-wal", wal, sizeof(wal)) != 0 ||
	    sibling(p, "-shm", shm, sizeof(shm)) != 0)
		return;
	now = file_id_of(wal);
	if (now.present && same_file(&now, &p->wal)) {
		log_warn("removing the log of the %s registry file: '%s'",
		    p->db.present ? "replaced" : "deleted", wal);
		if (unlink(wal) != 0 && errno != ENOENT)
			log_error("cannot remove '%s': %s", wal,
			    strerror(errno));
		unlink(shm);
	}
	p->wal.present = 0;
	if (!p->db.present)
		return;
	p->reg = registry_open(p->o->cfg->registry,
	    p->o->cfg->busy_timeout_ms, REG_OPEN_CREATE | REG_OPEN_NO_REOPEN,
	    &err, why);
	if (p->reg == NULL)
		log_error("registry '%s' cannot be used: %s",
		    p->o->cfg->registry, why);
	/* Opening it read the file: its log exists now, if it is WAL. */
	p->db = file_id_of(p->o->cfg->registry);
	p->wal = file_id_of(wal);
}

/*
 * Every POOL_IDENTITY_MS: notes which log file is in use, and starts a
 * restart of every process when the registry file was replaced (a backup
 * restored by rename), deleted, or came back.
 */
static void
check_identity(struct pool *p)
{
	struct file_id now;

	if (!file_registry(p) || p->restart)
		return;
	now = file_id_of(p->o->cfg->registry);
	if (same_file(&now, &p->db))
		return;
	log_warn("registry file '%s' was %s; restarting every process",
	    p->o->cfg->registry, !now.present ? "deleted" :
	    p->db.present ? "replaced" : "restored");
	p->restart = 1;
}

/*
 * Stops every child (each after its request in hand), cleans up after
 * the old registry file, and starts them again on the new one (while it
 * is missing they answer 503 and wait for it to come back).
 */
static void
restart_all(struct pool *p)
{
	int i;

	stop_children(p, SIGUSR2, 1, SLOT_WORKER, pool_stop_ms(p->o->cfg));
	p->restart = 0;
	if (file_registry(p))
		vet(p);
	for (i = 0; i < p->nslots; i++) {
		p->slots[i].fails = 0;
		now_plus(&p->slots[i].due, 0);
	}
}

/* Milliseconds until the next thing to do. */
static int
next_timeout(const struct pool *p)
{
	long long t = POOL_IDENTITY_MS, left;
	int i;

	for (i = 0; i < p->nslots; i++) {
		if (p->slots[i].pid != 0)
			continue;
		left = ms_until(&p->slots[i].due);
		if (left < t)
			t = left < 0 ? 0 : left;
	}
	return (int)t;
}

/* Starts every slot that is down and due. */
static void
spawn_due(struct pool *p)
{
	int i;

	for (i = 0; i < p->nslots && !p->stopping; i++)
		if (p->slots[i].pid == 0 && ms_until(&p->slots[i].due) <= 0)
			spawn(p, &p->slots[i]);
}

/* Uses SQLite's group-commit writer? Not for PostgreSQL. */
static int
wants_writer(const struct config *cfg)
{
	return cfg->group_commit && !config_is_postgresql(cfg->registry);
}

int
pool_run(const struct pool_opts *o)
{
	static struct pool p;
	struct pollfd pfd;
	int i;

	memset(&p, 0, sizeof(p));
	p.o = o;
	p.master = getpid();
	p.writer_fd = -1;
	signal(SIGPIPE, SIG_IGN);
	pool_signals(&p.mask);
	if (sigprocmask(SIG_BLOCK, &p.mask, NULL) != 0 ||
	    (p.sig_fd = signalfd(-1, &p.mask, SFD_NONBLOCK | SFD_CLOEXEC)) <
	    0) {
		log_error("cannot take signals: %s", strerror(errno));
		return 1;
	}
	if (wants_writer(o->cfg)) {
		p.writer_fd = writer_listen(p.writer_addr, &p.writer_addr_len);
		if (p.writer_fd < 0) {
			log_error("cannot create the writer's socket: %s",
			    strerror(errno));
			return 1;
		}
		p.slots[p.nslots++].kind = SLOT_WRITER;
	}
	for (i = 0; i < o->workers; i++)
		p.slots[p.nslots++].kind = SLOT_WORKER;
	if (file_registry(&p))
		vet(&p);
	if (metrics_init_pool(o->workers) != 0)
		log_warn("cannot share metrics memory: %s; each process "
		    "counts alone", strerror(errno));
	spawn_due(&p);
	log_info("serving with %d workers%s", o->workers,
	    p.writer_fd >= 0 ? " and a group-commit writer" : "");
	pfd.fd = p.sig_fd;
	pfd.events = POLLIN;
	while (!p.stopping) {
		if (poll(&pfd, 1, next_timeout(&p)) < 0 && errno != EINTR)
			break;
		take_signals(&p);
		check_identity(&p);
		if (p.restart && !p.stopping)
			restart_all(&p);
		spawn_due(&p);
	}
	/* New connections fail at once; those queued are still answered. */
	if (o->unix_path != NULL)
		unlink(o->unix_path);
	stop_children(&p, SIGTERM, 0, SLOT_WORKER, pool_stop_ms(o->cfg));
	stop_children(&p, SIGTERM, 1, SLOT_WRITER, pool_stop_ms(o->cfg));
	if (p.writer_fd >= 0)
		close(p.writer_fd);
	registry_close(p.reg);
	close(p.sig_fd);
	log_info("stopped");
	return 0;
}

int
pool_serve_alone(const struct config *cfg, int listen_fd)
{
	struct worker_opts wo;
	sigset_t mask;
	int sig_fd, status;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGUSR2);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) != 0 ||
	    (sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
		log_error("cannot take signals: %s", strerror(errno));
		return 1;
	}
	memset(&wo, 0, sizeof(wo));
	wo.cfg = cfg;
	wo.listen_fd = listen_fd;
	wo.sig_fd = sig_fd;
	status = worker_main(&wo);
	close(sig_fd);
	return status;
}
