/* cli.c: the userreg admin tool, over the same registry the workers use. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "jsonio.h"
#include "registry.h"
#include "user.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: userreg [-c FILE] COMMAND [ARGS]\n"
	    "  init                       create the registry if missing\n"
	    "  get NAME                   print a user\n"
	    "  list [PREFIX]              print users in canonical order\n"
	    "  create NAME [ROLE...]      create a user holding ROLEs\n"
	    "  grant NAME ROLE            add a role to a user\n"
	    "  revoke NAME ROLE           remove a role (not the last admin)\n"
	    "  delete NAME                delete a user (not the last admin)\n"
	    "The config file also comes from USERREG_CONF.\n");
}

static int
print_user(const struct user *u)
{
	struct json_object *o = jsonio_user(u);
	char *s = o != NULL ? jsonio_serialize(o, NULL) : NULL;

	json_object_put(o);
	if (s == NULL)
		return 1;
	puts(s);
	free(s);
	return 0;
}

static int
fail(struct registry *reg, const char *what, enum reg_err rc)
{
	fprintf(stderr, "userreg: %s: %s", what, registry_err_str(rc));
	if (rc == REG_ERROR || rc == REG_UNAVAILABLE)
		fprintf(stderr, " (%s)", registry_errmsg(reg));
	fputc('\n', stderr);
	return 1;
}

static int
add_role(struct user *u, const char *role)
{
	if (user_check_role(role, strlen(role)) != USER_OK) {
		fprintf(stderr, "userreg: bad role '%s'\n", role);
		return -1;
	}
	if (user_has_role(u, role))
		return 0;
	if (u->nroles >= USER_ROLES_MAX) {
		fprintf(stderr, "userreg: too many roles\n");
		return -1;
	}
	strcpy(u->roles[u->nroles++], role);
	user_sort_roles(u);
	return 0;
}

static void
drop_role(struct user *u, const char *role)
{
	size_t i, o = 0;

	for (i = 0; i < u->nroles; i++)
		if (strcmp(u->roles[i], role) != 0)
			memmove(u->roles[o++], u->roles[i],
			    sizeof(u->roles[i]));
	u->nroles = o;
}

/* create, grant, revoke and delete: one transaction each. */
static int
write_cmd(struct registry *reg, const char *cmd, int argc, char **argv)
{
	struct user cur, next;
	enum reg_err rc;
	int i, status = 1;

	if (argc < 1 || user_check_name(argv[0], strlen(argv[0])) != USER_OK) {
		fprintf(stderr, "userreg: %s needs a valid username\n", cmd);
		return 2;
	}
	if ((rc = registry_begin(reg)) != REG_OK)
		return fail(reg, cmd, rc);
	if (strcmp(cmd, "create") == 0) {
		memset(&next, 0, sizeof(next));
		strcpy(next.username, argv[0]);
		for (i = 1; i < argc; i++)
			if (add_role(&next, argv[i]) != 0)
				goto out;
		rc = registry_insert(reg, &next);
	} else if ((rc = registry_get(reg, argv[0], &cur)) == REG_OK) {
		next = cur;
		if (strcmp(cmd, "delete") == 0) {
			rc = registry_delete(reg, &cur);
		} else if (argc != 2) {
			fprintf(stderr, "userreg: %s needs NAME ROLE\n", cmd);
			goto out;
		} else {
			if (strcmp(cmd, "grant") == 0) {
				if (add_role(&next, argv[1]) != 0)
					goto out;
			} else {
				drop_role(&next, argv[1]);
			}
			rc = user_same_writable(&cur, &next) ? REG_OK :
			    registry_update(reg, &cur, &next);
		}
	}
	if (rc != REG_OK) {
		fail(reg, cmd, rc);
		goto out;
	}
	if ((rc = registry_commit(reg)) != REG_OK) {
		fail(reg, "commit", rc);
		goto out;
	}
	status = strcmp(cmd, "delete") == 0 ? 0 : print_user(&next);
out:
	registry_rollback(reg);
	return status;
}

static int
list_cmd(struct registry *reg, const char *prefix)
{
	struct user *page;
	char after[USER_NAME_MAX + 1] = "", lower[USER_NAME_MAX + 1] = "";
	size_t n, i;
	int more = 1, status = 0;
	enum reg_err rc;

	if (prefix != NULL) {
		for (i = 0; prefix[i] != '\0' && i < USER_NAME_MAX; i++)
			lower[i] = prefix[i] >= 'A' && prefix[i] <= 'Z' ?
			    (char)(prefix[i] - 'A' + 'a') : prefix[i];
		lower[i] = '\0';
	}
	if ((page = calloc(REG_LIST_MAX, sizeof(*page))) == NULL)
		return 1;
	while (more) {
		rc = registry_list(reg, after, lower, REG_LIST_MAX, page, &n,
		    &more);
		if (rc != REG_OK) {
			status = fail(reg, "list", rc);
			break;
		}
		for (i = 0; i < n; i++)
			status |= print_user(&page[i]);
		if (n == 0)
			break;
		user_canonical(page[n - 1].username, after);
	}
	free(page);
	return status;
}

int
main(int argc, char **argv)
{
	const char *conf = getenv("USERREG_CONF");
	struct config cfg;
	struct registry *reg;
	struct user u;
	enum reg_err rc;
	char err[512];
	int status;

	if (argc >= 3 && strcmp(argv[1], "-c") == 0) {
		conf = argv[2];
		argc -= 2;
		argv += 2;
	}
	if (argc < 2 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "--help") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	config_defaults(&cfg);
	if (conf != NULL && conf[0] != '\0' &&
	    config_load(&cfg, conf, err, sizeof(err)) != 0) {
		fprintf(stderr, "userreg: %s\n", err);
		return 1;
	}
	if ((reg = registry_open(cfg.registry, cfg.busy_timeout_ms,
	    strcmp(argv[1], "init") == 0 ? REG_OPEN_CREATE : 0, &rc, err)) ==
	    NULL) {
		fprintf(stderr, "userreg: cannot open registry '%s': %s\n",
		    cfg.registry, err);
		return 1;
	}
	if (strcmp(argv[1], "init") == 0 && argc == 2) {
		status = 0;
	} else if (strcmp(argv[1], "get") == 0 && argc == 3) {
		rc = registry_get(reg, argv[2], &u);
		status = rc == REG_OK ? print_user(&u) : fail(reg, "get", rc);
	} else if (strcmp(argv[1], "list") == 0 && argc <= 3) {
		status = list_cmd(reg, argc == 3 ? argv[2] : NULL);
	} else if (strcmp(argv[1], "create") == 0 ||
	    strcmp(argv[1], "grant") == 0 || strcmp(argv[1], "revoke") == 0 ||
	    strcmp(argv[1], "delete") == 0) {
		status = write_cmd(reg, argv[1], argc - 2, argv + 2);
	} else {
		usage(stderr);
		status = 2;
	}
	registry_close(reg);
	return status;
}
