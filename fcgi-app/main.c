/* main.c: the userreg.fcgi program: options, config, socket, mode. */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "http.h"
#include "log.h"
#include "pool.h"
#include "registry.h"
#include "version.h"
#include "worker.h"

#define LISTEN_BACKLOG 1024

/* What the command line asks for. */
struct options {
	const char *conf;
	const char *listen_at;
	long workers;		/* 0: not given */
	long mode;		/* of a unix socket */
	const char *owner, *group;
	int check_config;
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: userreg.fcgi [-c FILE] [--listen unix:PATH|HOST:PORT]\n"
	    "                    [--workers N] [--socket-mode OCTAL]\n"
	    "                    [--socket-owner USER] [--socket-group GROUP]\n"
	    "       userreg.fcgi --check-config [-c FILE]\n"
	    "       userreg.fcgi --version\n"
	    "Without --listen it serves FastCGI on the socket systemd passes\n"
	    "(LISTEN_FDS) or on fd 0 (spawn-fcgi, StandardInput=socket), as a\n"
	    "pool with --workers N, or, started by a web server as CGI,\n"
	    "answers one request. The config file also comes from\n"
	    "USERREG_CONF.\n");
}

/* Parses argv into o. Returns -1 to go on, else an exit status. */
static int
parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "workers", required_argument, NULL, 'w' },
		{ "socket-mode", required_argument, NULL, 'm' },
		{ "socket-owner", required_argument, NULL, 'o' },
		{ "socket-group", required_argument, NULL, 'g' },
		{ "check-config", no_argument, NULL, 'k' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	char *end;
	int ch;

	memset(o, 0, sizeof(*o));
	o->conf = getenv("USERREG_CONF");
	o->mode = 0660;
	while ((ch = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			o->conf = optarg;
			break;
		case 'l':
			o->listen_at = optarg;
			break;
		case 'w':
			o->workers = strtol(optarg, &end, 10);
			if (*end != '\0' || o->workers < 1 ||
			    o->workers > POOL_WORKERS_MAX) {
				fprintf(stderr, "userreg.fcgi: --workers wants "
				    "1 to %d\n", POOL_WORKERS_MAX);
				return 2;
			}
			break;
		case 'm':
			o->mode = strtol(optarg, &end, 8);
			if (*end != '\0' || o->mode < 0 || o->mode > 0777) {
				fprintf(stderr, "userreg.fcgi: --socket-mode "
				    "wants an octal mode like 0660\n");
				return 2;
			}
			break;
		case 'o':
			o->owner = optarg;
			break;
		case 'g':
			o->group = optarg;
			break;
		case 'k':
			o->check_config = 1;
			break;
		case 'V':
			printf("userreg.fcgi %s\n", USERREG_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	return -1;
}

/*
 * Makes the unix socket at path reachable by the front server: mode,
 * then owner and group by name. Returns 0 or -1 (logged).
 */
static int
own_socket(const char *path, const struct options *o)
{
	struct passwd *pw = NULL;
	struct group *gr = NULL;

	if (o->owner != NULL && (pw = getpwnam(o->owner)) == NULL) {
		log_error("unknown user '%s' for --socket-owner", o->owner);
		return -1;
	}
	if (o->group != NULL && (gr = getgrnam(o->group)) == NULL) {
		log_error("unknown group '%s' for --socket-group", o->group);
		return -1;
	}
	if ((pw != NULL || gr != NULL) && chown(path, pw != NULL ?
	    pw->pw_uid : (uid_t)-1, gr != NULL ? gr->gr_gid : (gid_t)-1) != 0) {
		log_error("cannot give socket '%s' to %s:%s: %s", path,
		    o->owner != NULL ? o->owner : "-",
		    o->group != NULL ? o->group : "-", strerror(errno));
		return -1;
	}
	if (chmod(path, (mode_t)o->mode) != 0) {
		log_error("cannot set mode of socket '%s': %s", path,
		    strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Creates the directory a unix socket goes into when it is missing (one
 * level, 0755, like a runtime directory), or says why not.
 */
static int
socket_dir(const char *path)
{
	char dir[CONFIG_PATH_MAX];
	struct stat sb;
	char *slash;

	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir)) {
		log_error("socket path '%s' is too long", path);
		return -1;
	}
	if ((slash = strrchr(dir, '/')) == NULL || slash == dir)
		return 0;
	*slash = '\0';
	if (stat(dir, &sb) == 0)
		return 0;
	if (mkdir(dir, 0755) != 0) {
		log_error("cannot create socket directory '%s': %s", dir,
		    strerror(errno));
		return -1;
	}
	return 0;
}

/* Opens the listening socket of --listen; *unix_path set for a file. */
static int
open_listener(const struct options *o, const char **unix_path)
{
	const char *at = o->listen_at;
	int is_unix, sock;

	/* libfcgi reads "HOST:PORT" or ":PORT" as TCP, anything else a path. */
	is_unix = strchr(at, ':') == NULL;
	if (strncmp(at, "unix:", 5) == 0) {
		at += 5;
		is_unix = 1;
	}
	*unix_path = is_unix ? at : NULL;
	if (is_unix) {
		if (at[0] == '\0' || socket_dir(at) != 0)
			return -1;
		unlink(at);	/* a stale socket from a killed run */
	}
	if ((sock = http_listen(at, LISTEN_BACKLOG)) < 0) {
		log_error("cannot listen on '%s': %s", at, strerror(errno));
		return -1;
	}
	if (is_unix && own_socket(at, o) != 0) {
		close(sock);
		unlink(at);
		return -1;
	}
	return sock;
}

/*
 * The listening socket systemd passes (sd_listen_fds(3): LISTEN_PID is
 * ours, LISTEN_FDS counts sockets from fd 3), or -1. fd 0 is the other
 * way (StandardInput=socket, spawn-fcgi).
 */
static int
systemd_socket(void)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	char *end;
	long n;

	if (pid == NULL || fds == NULL || strtol(pid, &end, 10) != getpid() ||
	    *end != '\0')
		return -1;
	n = strtol(fds, &end, 10);
	if (*end != '\0' || n < 1)
		return -1;
	/* Not for the children, which take it by inheritance. */
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return 3;
}

/* --check-config: the file parses; says where the registry is. */
static int
check_config(const struct config *cfg, const char *conf)
{
	char why[REG_ERRMSG_SIZE];
	struct registry *reg;
	enum reg_err err;

	printf("config %s: ok\n", conf != NULL ? conf : "(defaults)");
	printf("registry %s: ", cfg->registry);
	if ((reg = registry_open(cfg->registry, cfg->busy_timeout_ms, 0, &err,
	    why)) == NULL) {
		printf("%s (%s)\n", registry_err_str(err), why);
		return err == REG_UNAVAILABLE ? 0 : 1;
	}
	printf("ok (%s)\n", registry_backend(reg));
	registry_close(reg);
	return 0;
}

/*
 * Before serving: the registry exists (created on the first start) and
 * opens. Returns 0 or -1 (logged).
 */
static int
registry_ensure(const struct config *cfg)
{
	char why[REG_ERRMSG_SIZE];
	struct registry *reg;
	enum reg_err err;

	if ((reg = registry_open(cfg->registry, cfg->busy_timeout_ms,
	    REG_OPEN_CREATE, &err, why)) == NULL) {
		log_error("cannot open registry '%s': %s", cfg->registry, why);
		return -1;
	}
	registry_close(reg);
	return 0;
}

int
main(int argc, char **argv)
{
	struct pool_opts po;
	struct options o;
	struct config cfg;
	const char *unix_path = NULL;
	char err[512];
	int rc, sock, cgi, cfg_ok, sd;

	if ((rc = parse_options(argc, argv, &o)) >= 0)
		return rc;
	config_defaults(&cfg);
	cfg_ok = o.conf == NULL || o.conf[0] == '\0' ||
	    config_load(&cfg, o.conf, err, sizeof(err)) == 0;
	if (o.check_config) {
		if (!cfg_ok) {
			fprintf(stderr, "userreg.fcgi: %s\n", err);
			return 1;
		}
		return check_config(&cfg, o.conf);
	}
	sd = o.listen_at == NULL ? systemd_socket() : -1;
	cgi = o.listen_at == NULL && sd < 0 && o.workers == 0 && http_is_cgi();
	if (cgi) {
		/* RFC 3875 4.1.4: a CGI server always sets it. */
		if (getenv("GATEWAY_INTERFACE") == NULL) {
			fprintf(stderr, "userreg.fcgi: not started by a FastCGI "
			    "or CGI server; see --help\n");
			return 2;
		}
		if (!cfg_ok)
			config_defaults(&cfg);
		else if (cfg.log_file[0] != '\0' && log_open(cfg.log_file) != 0)
			log_error("cannot open log file '%s': %s",
			    cfg.log_file, strerror(errno));
		log_set_level(cfg.log_level);
		/* Even a broken start answers with a status and a problem. */
		return worker_cgi(&cfg, cfg_ok ? NULL : err);
	}
	if (!cfg_ok) {
		fprintf(stderr, "userreg.fcgi: %s\n", err);
		return 1;
	}
	if (cfg.log_file[0] != '\0' && log_open(cfg.log_file) != 0) {
		fprintf(stderr, "userreg.fcgi: cannot open log file '%s': %s\n",
		    cfg.log_file, strerror(errno));
		return 1;
	}
	log_set_level(cfg.log_level);
	if (registry_ensure(&cfg) != 0 || http_init() != 0)
		return 1;
	if (o.listen_at == NULL) {
		sock = sd >= 0 ? sd : 0;
		if (o.workers == 0)
			return pool_serve_alone(&cfg, sock);
	} else if ((sock = open_listener(&o, &unix_path)) < 0) {
		return 1;
	}
	memset(&po, 0, sizeof(po));
	po.cfg = &cfg;
	po.listen_fd = sock;
	po.workers = o.workers > 0 ? (int)o.workers : 1;
	po.unix_path = unix_path;
	rc = pool_run(&po);
	if (o.listen_at != NULL)
		close(sock);
	if (unix_path != NULL)
		unlink(unix_path);
	return rc;
}
