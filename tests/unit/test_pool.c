/* test_pool.c: what the pool's children may open, and its stop timing. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "http.h"
#include "pool.h"
#include "registry.h"
#include "support.h"

/*
 * pool_run() itself forks, signals and supervises: the integration tests
 * drive it. Here: pool_open_registry(), the gate every child opens the
 * registry through, and the figures the master works with.
 */

static char tmpdir[64];
static char other[128];
static struct config cfg;

/* A registry at path holding the one user name, closed again. */
static void
make_registry(const char *path, const char *name)
{
	struct registry *r;
	struct user u;

	r = registry_open(path, 2000, REG_OPEN_CREATE, NULL, NULL);
	cr_assert(not(eq(ptr, r, NULL)));
	memset(&u, 0, sizeof(u));
	snprintf(u.username, sizeof(u.username), "%s", name);
	cr_assert(eq(int, registry_begin(r), REG_OK));
	cr_assert(eq(int, registry_insert(r, &u), REG_OK));
	cr_assert(eq(int, registry_commit(r), REG_OK));
	registry_close(r);
}

static void
setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_pool.XXXXXX");
	cr_assert(not(eq(ptr, mkdtemp(tmpdir), NULL)));
	config_defaults(&cfg);
	snprintf(cfg.registry, sizeof(cfg.registry), "%s/users.db", tmpdir);
	snprintf(other, sizeof(other), "%s/restored.db", tmpdir);
	make_registry(cfg.registry, "alice");
}

static void
teardown(void)
{
	support_remove_dir(tmpdir);
}

TestSuite(pool, .init = setup, .fini = teardown);

/* The identity of the file at path, as the master notes it. */
static struct pool_vetted
vetted_of(const char *path)
{
	struct pool_vetted v = { 0, 0, 0 };
	struct stat sb;

	cr_assert(eq(int, stat(path, &sb), 0));
	v.present = 1;
	v.dev = sb.st_dev;
	v.ino = sb.st_ino;
	return v;
}

static int
has_user(struct registry *r, const char *name)
{
	struct user u;

	return registry_get(r, name, &u) == REG_OK;
}

Test(pool, child_opens_the_vetted_file)
{
	struct pool_vetted v = vetted_of(cfg.registry);
	char why[REG_ERRMSG_SIZE];
	struct registry *r;
	int moved = -1;

	r = pool_open_registry(&cfg, 0, &v, &moved, why);
	cr_assert(not(eq(ptr, r, NULL)), "%s", why);
	cr_assert(eq(int, moved, 0));
	cr_assert(has_user(r, "alice"));
	registry_close(r);
}

Test(pool, child_without_a_vetted_file_opens_what_is_there)
{
	struct pool_vetted none = { 0, 0, 0 };
	char why[REG_ERRMSG_SIZE];
	struct registry *r;
	int moved = -1;

	r = pool_open_registry(&cfg, 0, NULL, &moved, why);
	cr_assert(not(eq(ptr, r, NULL)), "%s", why);
	cr_assert(eq(int, moved, 0));
	registry_close(r);
	r = pool_open_registry(&cfg, 0, &none, &moved, why);
	cr_assert(not(eq(ptr, r, NULL)), "%s", why);
	registry_close(r);
}

Test(pool, child_refuses_a_file_other_than_the_vetted_one)
{
	struct pool_vetted v = vetted_of(cfg.registry);
	char why[REG_ERRMSG_SIZE];
	struct registry *r;
	int moved = 0;

	make_registry(other, "bob");
	cr_assert(eq(int, rename(other, cfg.registry), 0));
	r = pool_open_registry(&cfg, 0, &v, &moved, why);
	cr_assert(eq(ptr, r, NULL));
	cr_assert(eq(int, moved, 1));
	cr_assert(not(eq(ptr, strstr(why, "not the one"), NULL)), "%s", why);
}

Test(pool, child_of_a_missing_registry_is_unavailable_not_moved)
{
	struct pool_vetted v = vetted_of(cfg.registry);
	char why[REG_ERRMSG_SIZE];
	struct registry *r;
	int moved = -1;

	cr_assert(eq(int, unlink(cfg.registry), 0));
	r = pool_open_registry(&cfg, 0, &v, &moved, why);
	cr_assert(eq(ptr, r, NULL));
	cr_assert(eq(int, moved, 0));
	cr_assert(eq(int, access(cfg.registry, F_OK), -1), "it was created");
}

/*
 * A child that starts after a restore by rename, before the master has
 * seen it, must leave the new file and the old file's log alone: the old
 * file is still in use, and its log, still at the path, is not the new
 * file's. Opening the new file first, then refusing it, checkpointed that
 * log into the restored file and deleted it under the processes using it.
 */
Test(pool, child_refusing_a_replaced_file_leaves_it_and_the_old_log_alone)
{
	struct pool_vetted v = vetted_of(cfg.registry);
	char why[REG_ERRMSG_SIZE], wal[CONFIG_PATH_MAX + 8];
	struct registry *old, *r;
	struct user u;
	int moved = 0;

	/* A process of the pool still has the old file, its log in use. */
	old = registry_open(cfg.registry, 2000, REG_OPEN_NO_REOPEN, NULL,
	    NULL);
	cr_assert(not(eq(ptr, old, NULL)));
	memset(&u, 0, sizeof(u));
	snprintf(u.username, sizeof(u.username), "carol");
	cr_assert(eq(int, registry_begin(old), REG_OK));
	cr_assert(eq(int, registry_insert(old, &u), REG_OK));
	cr_assert(eq(int, registry_commit(old), REG_OK));
	make_registry(other, "bob");
	cr_assert(eq(int, rename(other, cfg.registry), 0));

	r = pool_open_registry(&cfg, 0, &v, &moved, why);
	cr_assert(eq(ptr, r, NULL));
	cr_assert(eq(int, moved, 1));
	snprintf(wal, sizeof(wal), "%s-wal", cfg.registry);
	cr_assert(eq(int, access(wal, F_OK), 0), "the old file's log is gone");
	cr_assert(has_user(old, "carol"));
	registry_close(old);

	/* As the master's vet() does, then the restored file as restored. */
	unlink(wal);
	snprintf(wal, sizeof(wal), "%s-shm", cfg.registry);
	unlink(wal);
	r = registry_open(cfg.registry, 2000, 0, NULL, NULL);
	cr_assert(not(eq(ptr, r, NULL)));
	cr_assert(has_user(r, "bob"));
	cr_assert(not(has_user(r, "alice")), "the old file's log got in");
	cr_assert(not(has_user(r, "carol")), "the old file's log got in");
	cr_assert(eq(int, registry_integrity(r), REG_OK), "%s",
	    registry_errmsg(r));
	registry_close(r);
}

Test(pool, stop_waits_two_lock_waits_a_drain_and_a_second)
{
	cfg.busy_timeout_ms = 5000;
	cr_assert(eq(int, pool_stop_ms(&cfg), 2 * 5000 + HTTP_DRAIN_MAX_MS +
	    1000));
	cfg.busy_timeout_ms = 0;
	cr_assert(eq(int, pool_stop_ms(&cfg), HTTP_DRAIN_MAX_MS + 1000));
}

Test(pool, limits_have_their_documented_values)
{
	cr_assert(eq(int, POOL_WORKERS_MAX, 256));
	cr_assert(le(int, POOL_RESPAWN_MIN_MS, POOL_RESPAWN_MAX_MS));
	cr_assert(not(eq(int, POOL_EXIT_MOVED, POOL_EXIT_UNAVAILABLE)));
	/* Neither may look like a crash or valgrind's error status. */
	cr_assert(gt(int, POOL_EXIT_MOVED, 1));
	cr_assert(gt(int, POOL_EXIT_UNAVAILABLE, 1));
}
