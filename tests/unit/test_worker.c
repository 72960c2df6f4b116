/* test_worker.c: a plain CGI process answers its one request, always. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "registry.h"
#include "support.h"
#include "worker.h"

/*
 * worker_cgi() reads the request from the environment and stdin and
 * writes the answer to stdout (RFC 3875); the test points both at files
 * of its temp directory. FastCGI serving is left to the integration
 * tests, which run it behind nginx.
 */

static char tmpdir[64];
static char in_path[128], out_path[128];
static struct config cfg;

static void
setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_worker.XXXXXX");
	cr_assert(not(eq(ptr, mkdtemp(tmpdir), NULL)));
	snprintf(in_path, sizeof(in_path), "%s/stdin", tmpdir);
	snprintf(out_path, sizeof(out_path), "%s/stdout", tmpdir);
	config_defaults(&cfg);
	snprintf(cfg.registry, sizeof(cfg.registry), "%s/users.db", tmpdir);
}

static void
teardown(void)
{
	support_remove_dir(tmpdir);
}

TestSuite(worker, .init = setup, .fini = teardown);

static void
seed(void)
{
	struct registry *r;
	struct user u;

	r = registry_open(cfg.registry, 2000, REG_OPEN_CREATE, NULL, NULL);
	cr_assert(not(eq(ptr, r, NULL)));
	memset(&u, 0, sizeof(u));
	snprintf(u.username, sizeof(u.username), "alice");
	cr_assert(eq(int, registry_begin(r), REG_OK));
	cr_assert(eq(int, registry_insert(r, &u), REG_OK));
	cr_assert(eq(int, registry_commit(r), REG_OK));
	registry_close(r);
}

/*
 * Runs one CGI request (method, uri, body as stdin) through worker_cgi()
 * with cfg_error; returns what it wrote (free()) and its exit status in
 * *status.
 */
static char *
run(const char *method, const char *uri, const char *body,
    const char *cfg_error, int *status)
{
	int fd, saved_in, saved_out;
	char len[24];
	FILE *f;
	char *out;
	long n;

	f = fopen(in_path, "w");
	cr_assert(not(eq(ptr, f, NULL)));
	fputs(body, f);
	cr_assert(eq(int, fclose(f), 0));
	setenv("REQUEST_METHOD", method, 1);
	setenv("REQUEST_URI", uri, 1);
	snprintf(len, sizeof(len), "%zu", strlen(body));
	setenv("CONTENT_LENGTH", len, 1);
	if (body[0] != '\0')
		setenv("CONTENT_TYPE", "application/json", 1);
	else
		unsetenv("CONTENT_TYPE");

	saved_in = dup(0);
	saved_out = dup(1);
	cr_assert(ge(int, fd = open(in_path, O_RDONLY), 0));
	dup2(fd, 0);
	close(fd);
	cr_assert(ge(int, fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC,
	    0600), 0));
	dup2(fd, 1);
	close(fd);
	*status = worker_cgi(&cfg, cfg_error);
	dup2(saved_in, 0);
	dup2(saved_out, 1);
	close(saved_in);
	close(saved_out);

	f = fopen(out_path, "r");
	cr_assert(not(eq(ptr, f, NULL)));
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	cr_assert(not(eq(ptr, out = malloc((size_t)n + 1), NULL)));
	cr_assert(eq(sz, fread(out, 1, (size_t)n, f), (size_t)n));
	out[n] = '\0';
	fclose(f);
	return out;
}

static void
assert_has(const char *out, const char *want)
{
	cr_assert(not(eq(ptr, strstr(out, want), NULL)), "no [%s] in [%s]",
	    want, out);
}

Test(worker, cgi_with_a_config_error_answers_500_with_a_problem_body)
{
	int status = -1;
	char *out;

	seed();
	out = run("GET", "/users/alice", "", "userreg.conf:3: unknown key "
	    "'colour'", &status);
	cr_assert(eq(int, status, 0));
	cr_assert(eq(int, strncmp(out, "Status: 500 Internal Server Error\r\n",
	    35), 0), "[%s]", out);
	assert_has(out, "Content-Type: application/problem+json\r\n");
	assert_has(out, "\"type\":\"/problems/internal-error\"");
	/* The reason is logged, never sent. */
	cr_assert(eq(ptr, strstr(out, "colour"), NULL), "[%s]", out);
	free(out);
}

Test(worker, cgi_with_a_missing_registry_answers_503_and_creates_none)
{
	int status = -1;
	char *out;

	out = run("POST", "/users", "{\"username\":\"carol\"}", NULL, &status);
	cr_assert(eq(int, status, 0));
	cr_assert(eq(int, strncmp(out, "Status: 503 Service Unavailable\r\n",
	    33), 0), "[%s]", out);
	assert_has(out, "Retry-After: 1\r\n");
	assert_has(out, "\"type\":\"/problems/registry-unavailable\"");
	cr_assert(eq(int, access(cfg.registry, F_OK), -1),
	    "a request created the registry");
	free(out);
}

Test(worker, cgi_healthz_without_a_registry_is_503)
{
	int status = -1;
	char *out;

	out = run("GET", "/healthz", "", NULL, &status);
	cr_assert(eq(int, strncmp(out, "Status: 503 ", 12), 0), "[%s]", out);
	free(out);
}

Test(worker, cgi_answers_a_read)
{
	int status = -1;
	char *out;

	seed();
	out = run("GET", "/users/ALICE", "", NULL, &status);
	cr_assert(eq(int, status, 0));
	cr_assert(eq(int, strncmp(out, "Status: 200 OK\r\n", 16), 0), "[%s]",
	    out);
	assert_has(out, "ETag: \"1\"\r\n");
	assert_has(out, "Content-Location: /users/alice\r\n");
	assert_has(out, "\"username\":\"alice\"");
	free(out);
}

Test(worker, cgi_commits_a_write_in_a_transaction_of_its_own)
{
	struct registry *r;
	struct user u;
	int status = -1;
	char *out;

	seed();
	out = run("POST", "/users", "{\"username\":\"carol\"}", NULL, &status);
	cr_assert(eq(int, status, 0));
	cr_assert(eq(int, strncmp(out, "Status: 201 Created\r\n", 21), 0),
	    "[%s]", out);
	assert_has(out, "Location: /users/carol\r\n");
	free(out);
	r = registry_open(cfg.registry, 2000, 0, NULL, NULL);
	cr_assert(not(eq(ptr, r, NULL)));
	cr_assert(eq(int, registry_get(r, "carol", &u), REG_OK));
	cr_assert(eq(i64, u.version, 2));
	registry_close(r);
}
