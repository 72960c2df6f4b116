# bench.mk: `make bench`, load through real nginx beside its ceilings.

# wrk through real nginx: userreg beside a trivial FastCGI responder.
bench: deps
	@USERREG_EXTRA_PACKAGES=wrk sh deploy/install-deps.sh
	@$(MAKE) --no-print-directory all
	BUILD=$(BUILD) WORKERS=$(WORKERS) sh tests/bench/run.sh

.PHONY: bench
