/* cli.c: the userreg admin tool: its options, its registry, its commands. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_args.h"
#include "admin_check.h"
#include "admin_copy.h"
#include "admin_env.h"
#include "admin_export.h"
#include "admin_import.h"
#include "admin_write.h"
#include "config.h"
#include "log.h"
#include "registry.h"
#include "users.h"
#include "version.h"

static int
run_init(struct admin_env *env, const struct admin_args *a)
{
	(void)env;
	(void)a;
	return ADMIN_EXIT_OK;	/* opening with REG_OPEN_CREATE did it */
}

/* show: the answer GET /users/NAME gives, from the same handler. */
static int
run_show(struct admin_env *env, const struct admin_args *a)
{
	struct users_ctx ctx = { .cfg = &env->cfg, .reg = env->reg };
	struct http_request req;
	struct http_response resp;
	int status;

	memset(&req, 0, sizeof(req));
	req.method = "GET";
	req.path = "/users";
	req.query = "";
	http_new_request_id(&req);
	http_response_init(&resp);
	users_get(&ctx, &req, a->pos[0], &resp);
	status = admin_write_exit(resp.status);
	if (status == ADMIN_EXIT_OK)
		fprintf(env->out, "%.*s\n", (int)resp.body_len, resp.body);
	else
		admin_write_report(env, a->cmd, a->pos[0], &resp);
	http_response_release(&resp);
	return status;
}

typedef int command_fn(struct admin_env *, const struct admin_args *);

static command_fn *const commands[ADMIN_CMD__MAX] = {
	[ADMIN_CMD_INIT] = run_init,
	[ADMIN_CMD_ADD] = admin_write,
	[ADMIN_CMD_SHOW] = run_show,
	[ADMIN_CMD_LIST] = admin_list,
	[ADMIN_CMD_SET] = admin_write,
	[ADMIN_CMD_DELETE] = admin_write,
	[ADMIN_CMD_GRANT] = admin_write,
	[ADMIN_CMD_REVOKE] = admin_write,
	[ADMIN_CMD_EXPORT] = admin_export,
	[ADMIN_CMD_IMPORT] = admin_import,
	[ADMIN_CMD_CHECK] = admin_check,
	[ADMIN_CMD_BACKUP] = admin_backup,
	[ADMIN_CMD_MIGRATE] = admin_migrate,
};

/* The config of -c or USERREG_CONF, -r over its registry, access open. */
static int
configure(struct admin_env *env, const struct admin_args *a)
{
	const char *conf = a->conf != NULL ? a->conf : getenv("USERREG_CONF");
	char err[512];

	config_defaults(&env->cfg);
	if (conf != NULL && conf[0] != '\0' &&
	    config_load(&env->cfg, conf, err, sizeof(err)) != 0)
		return admin_say(env, ADMIN_EXIT_FAILURE, "%s", err);
	if (a->registry != NULL) {
		if (a->registry[0] == '\0' || strlen(a->registry) >=
		    sizeof(env->cfg.registry))
			return admin_say(env, ADMIN_EXIT_USAGE, "--registry "
			    "must name a registry of at most %zu bytes",
			    sizeof(env->cfg.registry) - 1);
		memcpy(env->cfg.registry, a->registry,
		    strlen(a->registry) + 1);
	}
	/* Whoever runs the tool holds the registry file itself. */
	env->cfg.access = CONFIG_ACCESS_OPEN;
	env->cfg.signup = CONFIG_SIGNUP_OPEN;
	log_set_level(env->cfg.log_level);
	return ADMIN_EXIT_OK;
}

static int
open_registry(struct admin_env *env, enum admin_cmd cmd)
{
	char why[REG_ERRMSG_SIZE] = "";
	enum reg_err rc;

	env->reg = registry_open(env->cfg.registry, env->cfg.busy_timeout_ms,
	    cmd == ADMIN_CMD_INIT ? REG_OPEN_CREATE : 0, &rc, why);
	if (env->reg != NULL)
		return ADMIN_EXIT_OK;
	/* The backend's reason says how to create a registry if it can. */
	if (why[0] != '\0')
		return admin_say(env, ADMIN_EXIT_FAILURE, "cannot open the "
		    "registry: %s%s", why, cmd == ADMIN_CMD_INIT ||
		    strstr(why, "userreg init") != NULL ? "" :
		    " (userreg init creates one)");
	return admin_say(env, ADMIN_EXIT_FAILURE, "cannot open registry "
	    "'%s': %s", env->cfg.registry, registry_err_str(rc));
}

int
main(int argc, char **argv)
{
	struct admin_env env;
	struct admin_args a;
	char err[ADMIN_ARGS_ERROR_SIZE];
	int status;

	memset(&env, 0, sizeof(env));
	env.out = stdout;
	env.err = stderr;
	if (admin_args_parse(argc, argv, &a, err) != 0) {
		fprintf(stderr, "userreg: %s\nTry 'userreg %s%s--help'.\n",
		    err, admin_cmd_name(a.cmd),
		    a.cmd != ADMIN_CMD_NONE ? " " : "");
		return ADMIN_EXIT_USAGE;
	}
	if (a.help) {
		admin_help(stdout, a.cmd);
		return fflush(stdout) == 0 ? ADMIN_EXIT_OK : ADMIN_EXIT_FAILURE;
	}
	if (a.version) {
		printf("userreg %s\n", USERREG_VERSION);
		return fflush(stdout) == 0 ? ADMIN_EXIT_OK : ADMIN_EXIT_FAILURE;
	}
	if ((status = configure(&env, &a)) != ADMIN_EXIT_OK)
		return status;
	/* migrate opens the two registries it names, not the config's. */
	if (a.cmd != ADMIN_CMD_MIGRATE &&
	    (status = open_registry(&env, a.cmd)) != ADMIN_EXIT_OK)
		return status;
	status = commands[a.cmd](&env, &a);
	registry_close(env.reg);
	if (fflush(stdout) != 0 && status == ADMIN_EXIT_OK)
		status = admin_say(&env, ADMIN_EXIT_FAILURE, "cannot write "
		    "the output");
	return status;
}
