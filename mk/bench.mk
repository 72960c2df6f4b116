# bench.mk: `make bench`, userreg under load through real nginx beside its
# ceilings (tests/bench/bench.py), and the check step that runs it briefly
# to see every row answer correctly (never to judge its speed).
#   make bench                        the whole run, under 10 minutes
#   BENCH_QUICK=1 make bench          a very short run, harness check only
#   BENCH_SECONDS=N make bench        seconds per load (default 2)
#   BENCH_ROUNDS=N make bench         rounds of paired loads (default 5)
#   BENCH_BACKENDS="sqlite postgresql" make bench
#                                     the service rows on both backends, side
#                                     by side (PostgreSQL: a throwaway cluster,
#                                     fsync on); about 17 minutes on 2 cores,
#                                     so make bench runs SQLite's alone
#                                     (about 8)
# Results: tests/bench/results/ (results.md, results.json, a PNG per row).

BENCH_BACKENDS ?= sqlite
# check-bench's quick run takes both: every row must answer on each.
CHECK_BENCH_BACKENDS := sqlite postgresql
BENCH_PACKAGES := wrk gnuplot-nox
BENCH_PG_PACKAGES := postgresql-15
BENCH_TOOLS := $(BUILD)/bench-tools
FCGI_LIBS := $(shell pkg-config --libs fcgi 2>/dev/null || echo -lfcgi)

$(BENCH_TOOLS)/%: tests/bench/%.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(FCGI_LIBS)

bench-tools: $(BENCH_TOOLS)/ceiling $(BENCH_TOOLS)/cgitime

# deps first, then a fresh make: pkg-config flags are read at parse time.
bench: deps
	@USERREG_EXTRA_PACKAGES="$(BENCH_PACKAGES) $(if $(findstring \
	    postgresql,$(BENCH_BACKENDS)),$(BENCH_PG_PACKAGES))" \
	    sh deploy/install-deps.sh
	@$(MAKE) --no-print-directory all bench-tools
	BENCH_BACKENDS="$(BENCH_BACKENDS)" python3 tests/bench/bench.py \
	    --build $(BUILD) --tools $(BENCH_TOOLS) --workers $(WORKERS) \
	    --out tests/bench/results

# One testcase per row in $(RESULTS)/bench.xml: it passes when the row ran
# and every answer had the expected status. The quick run's figures go to
# $(RESULTS)/bench, not over the committed results.
check-bench:
	@USERREG_EXTRA_PACKAGES="$(BENCH_PACKAGES) $(BENCH_PG_PACKAGES)" \
	    sh deploy/install-deps.sh
	@$(MAKE) --no-print-directory all bench-tools
	@mkdir -p $(RESULTS)
	BENCH_QUICK=1 BENCH_BACKENDS="$(CHECK_BENCH_BACKENDS)" \
	    python3 tests/bench/bench.py --build $(BUILD) \
	    --tools $(BENCH_TOOLS) --workers $(WORKERS) --out $(RESULTS)/bench \
	    --junitxml $(RESULTS)/bench.xml

CHECK_STEPS += check-bench

.PHONY: bench bench-tools check-bench
