# cluster.mk: `make run-cluster`, two web hosts on one PostgreSQL registry
# on this machine, in the foreground, for trying docs/scale-out.md out.
#   make run-cluster                 host A on 127.0.0.1:$(PORT) (8080),
#                                    host B on 127.0.0.1:$(PORT2) (8081)
#   PORT=9080 PORT2=9081 make run-cluster
#   WORKERS=2 make run-cluster       workers per host
# deploy/run-cluster.sh starts PostgreSQL (tests/lib/pg.py: the server
# binaries of Debian's postgresql-15, never the system's service), then an
# nginx + pool pair per host, all on 127.0.0.1; Ctrl-C stops everything
# by pid and make exits 0. State (the cluster's data, configs, sockets,
# logs) stays in var/cluster/ (CLUSTER_DIR in the environment moves it),
# so the registry outlives a run; rm -rf var/cluster starts afresh.

PORT2 ?= 8081

# deps first, then a fresh make: pkg-config flags are read at parse time.
# set -m: the script runs as a job of its own that has the terminal, so
# Ctrl-C reaches it and not make (which would end on "*** Interrupt").
run-cluster: deps
	@USERREG_EXTRA_PACKAGES="postgresql-15" sh deploy/install-deps.sh
	@$(MAKE) --no-print-directory all
	@PORT=$(PORT) PORT2=$(PORT2) WORKERS=$(WORKERS) BUILD=$(BUILD) \
	    sh -c 'set -m 2>/dev/null; sh deploy/run-cluster.sh'

.PHONY: run-cluster
