/*
 * fuzz_request.c: libFuzzer harness for the whole handler path. The input
 * is split on NUL bytes into method, path, query, If-Match,
 * If-None-Match, Idempotency-Key and the body; every answer must be a
 * well-formed response with a problem+json body on errors.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "http.h"
#include "registry.h"
#include "router.h"
#include "users.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct config cfg;
static struct users_ctx ctx;
static char dir[] = "/tmp/userreg-fuzz-XXXXXX";

/* The registry and its -wal and -shm files go with the directory. */
static void
cleanup(void)
{
	static const char *const suffix[] = { "", "-wal", "-shm" };
	char path[sizeof(cfg.registry) + 8];
	size_t i;

	registry_close(ctx.reg);
	ctx.reg = NULL;
	for (i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
		snprintf(path, sizeof(path), "%s%s", cfg.registry, suffix[i]);
		unlink(path);
	}
	rmdir(dir);
}

static void
setup(void)
{
	enum reg_err err;

	if (mkdtemp(dir) == NULL)
		abort();
	config_defaults(&cfg);
	snprintf(cfg.registry, sizeof(cfg.registry), "%s/users.db", dir);
	cfg.busy_timeout_ms = 100;
	ctx.cfg = &cfg;
	if ((ctx.reg = registry_open(cfg.registry, 100, REG_OPEN_CREATE, &err,
	    NULL)) == NULL)
		abort();
	atexit(cleanup);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *field[7] = { "GET", "/users", "", NULL, NULL, NULL, "" };
	struct http_request req;
	struct http_response resp;
	char *copy;
	size_t i, start = 0, n = 0;

	if (ctx.reg == NULL)
		setup();
	if ((copy = malloc(size + 1)) == NULL)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	for (i = 0; i <= size && n < 7; i++)
		if (i == size || copy[i] == '\0') {
			copy[i] = '\0';
			field[n++] = copy + start;
			start = i + 1;
		}
	memset(&req, 0, sizeof(req));
	req.method = field[0];
	req.path = field[1];
	req.query = field[2];
	req.if_match = field[3] != NULL && field[3][0] != '\0' ?
	    field[3] : NULL;
	req.if_none_match = field[4] != NULL && field[4][0] != '\0' ?
	    field[4] : NULL;
	req.idempotency_key = field[5] != NULL && field[5][0] != '\0' ?
	    field[5] : NULL;
	req.content_type = strcmp(req.method, "PATCH") == 0 ?
	    "application/merge-patch+json" : "application/json";
	req.body = strdup(field[6] != NULL ? field[6] : "");
	req.body_len = strlen(req.body);
	strcpy(req.request_id, "00000000-0000-4000-8000-000000000000");
	http_response_init(&resp);
	router_dispatch(&ctx, &req, &resp);
	if (resp.status < 200 || resp.status > 599 || resp.status == 500)
		abort();
	if (resp.status >= 400 && (resp.body == NULL ||
	    strcmp(resp.content_type, "application/problem+json") != 0))
		abort();
	http_response_release(&resp);
	free(req.body);
	free(copy);
	return 0;
}
