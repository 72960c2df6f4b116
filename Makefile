# userreg: one non-recursive GNU Makefile.
# make            build build/userreg.fcgi and build/userreg
# make run        install missing packages (as root), build, serve on 127.0.0.1:$(PORT)
# make check      install missing packages (as root), unit + integration tests
# make test       unit tests only
# make sanitize   unit + integration tests under ASan, UBSan and LeakSanitizer
# make valgrind   unit tests under valgrind's memcheck
# make fuzz       libFuzzer harnesses for a bounded time
# make bench      load through real nginx beside a trivial FastCGI ceiling
# make install    PREFIX DESTDIR BINDIR SBINDIR SYSCONFDIR LOCALSTATEDIR MANDIR DATADIR STRIP (mk/install.mk); make uninstall; make deb

PORT ?= 8080
WORKERS ?= 4
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
SYSCONFDIR ?= /etc
BUILD ?= build

# libpq's header only: the binaries load the library when a PostgreSQL
# registry is opened (fcgi-app/pq_load.h); a test calling it links PQ_LIBS.
PKGS := fcgi json-c sqlite3
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) libpq 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lfcgi -ljson-c -lsqlite3) -ldl
PQ_LIBS := $(shell pkg-config --libs libpq 2>/dev/null || echo -lpq)
CRIT_CFLAGS := $(shell pkg-config --cflags criterion 2>/dev/null)
CRIT_LIBS := $(shell pkg-config --libs criterion 2>/dev/null || echo -lcriterion)

WARNINGS := -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -Wformat=2 -Wvla -Wpointer-arith -Wcast-align \
	-Wwrite-strings -Wundef -Wnull-dereference -Wold-style-definition
# Criterion's Test() macro trips -Wwrite-strings and its headers -Wpedantic.
TEST_WARNINGS := $(filter-out -Wwrite-strings -Wpedantic -Wmissing-prototypes,$(WARNINGS))
HARDENING := -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE
ifeq ($(CI),true)
WERROR := -Werror
endif

CFLAGS ?= -O2 -g
VERSION ?= 1.0.0
LOCALSTATEDIR ?= /var
CPPFLAGS += -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L \
	-DUSERREG_VERSION=\"$(VERSION)\" \
	-DUSERREG_STATE_DIR=\"$(LOCALSTATEDIR)/lib/userreg\"
ALL_CFLAGS = -std=c11 $(WARNINGS) $(WERROR) $(HARDENING) $(CFLAGS) $(PKG_CFLAGS)
LDFLAGS ?= -pie -Wl,-z,relro,-z,now

APP_SRC := $(filter-out fcgi-app/main.c fcgi-app/cli.c,$(wildcard fcgi-app/*.c))
APP_OBJ := $(APP_SRC:fcgi-app/%.c=$(BUILD)/obj/%.o)
UNIT_SRC := $(wildcard tests/unit/*.c)
UNIT_OBJ := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/obj/unit/%.o)

all: $(BUILD)/userreg.fcgi $(BUILD)/userreg

$(BUILD)/obj/%.o: fcgi-app/%.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/obj/unit/%.o: tests/unit/%.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -std=gnu11 $(TEST_WARNINGS) $(WERROR) $(CFLAGS) \
	    $(PKG_CFLAGS) $(CRIT_CFLAGS) -Ifcgi-app -MMD -MP -c -o $@ $<

$(BUILD)/libuserreg.a: $(APP_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/userreg.fcgi: $(BUILD)/obj/main.o $(BUILD)/libuserreg.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/userreg: $(BUILD)/obj/cli.o $(BUILD)/libuserreg.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

# Criterion re-runs the binary for each test and hands parameter tables
# over by address: the test binary must not be position-independent.
$(BUILD)/unit-tests: $(UNIT_OBJ) $(BUILD)/libuserreg.a
	$(CC) $(ALL_CFLAGS) -no-pie -o $@ $^ $(PKG_LIBS) $(CRIT_LIBS)

-include $(wildcard $(BUILD)/obj/*.d $(BUILD)/obj/unit/*.d)

# Installs missing Debian packages when run as root; otherwise names them.
deps:
	@sh deploy/install-deps.sh
deps-check:
	@sh deploy/install-deps.sh check
deps-clang:
	@USERREG_EXTRA_PACKAGES="clang libclang-rt-14-dev" sh deploy/install-deps.sh

# deps first, then a fresh make: pkg-config flags are read at parse time.
run: deps
	@$(MAKE) --no-print-directory all
	@PORT=$(PORT) WORKERS=$(WORKERS) BUILD=$(BUILD) sh deploy/run-local.sh

test: $(BUILD)/unit-tests
	$(BUILD)/unit-tests --jobs 2

integration: all
	/usr/bin/python3 -m pytest tests/integration --build $(BUILD) --workers $(WORKERS)

# Every check step writes JUnit XML into $(RESULTS); the last line printed
# is the sum over all of them, "N passed, M failed". Fragments in mk/ add
# their steps to CHECK_STEPS; a failing step does not stop the others.
RESULTS = $(BUILD)/results
CHECK_STEPS := check-unit check-integration

check-unit: $(BUILD)/unit-tests
	@mkdir -p $(RESULTS)
	$(BUILD)/unit-tests --jobs 2 --xml=$(RESULTS)/unit.xml

check-integration: all
	@mkdir -p $(RESULTS)
	/usr/bin/python3 -m pytest tests/integration --build $(BUILD) --workers $(WORKERS) \
	    --fronts nginx-pool,nginx-pool-api,nginx-pool-keepalive,apache-proxy-fcgi,apache-cgi,spawn-fcgi-nginx,systemd-socket-nginx,prism \
	    --junitxml $(RESULTS)/integration.xml

# clang's UBSan also checks pointer arithmetic on NULL, which gcc's misses.
SAN_CC ?= $(shell command -v clang >/dev/null && echo clang || echo $(CC))
SAN_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
	-fno-sanitize-recover=all
sanitize: deps deps-clang
	@rm -f $(BUILD)-san/sanitize.log $(BUILD)-san/asan.* $(BUILD)-san/ubsan.*
	$(MAKE) --no-print-directory BUILD=$(BUILD)-san CC=$(SAN_CC) \
	    CFLAGS="$(SAN_FLAGS)" \
	    LDFLAGS="-fsanitize=address,undefined" $(BUILD)-san/unit-tests all
	@mkdir -p $(BUILD)-san
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    $(BUILD)-san/unit-tests --jobs 1 2>&1 | tee $(BUILD)-san/sanitize.log
	ASAN_OPTIONS=detect_leaks=1:log_path=$(CURDIR)/$(BUILD)-san/asan \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$(CURDIR)/$(BUILD)-san/ubsan \
	    /usr/bin/python3 -m pytest tests/integration --build $(BUILD)-san --workers 2 \
	    2>&1 | tee -a $(BUILD)-san/sanitize.log
	@cat $(BUILD)-san/asan.* $(BUILD)-san/ubsan.* 2>/dev/null >> $(BUILD)-san/sanitize.log || true
	@! grep -E 'ERROR: (Address|Leak)Sanitizer|runtime error:|[1-9][0-9]* failed' $(BUILD)-san/sanitize.log

# libFuzzer harnesses, each run FUZZ_SECONDS on a scratch copy of its seeds.
FUZZ_SECONDS ?= 60
FUZZERS := jsonio precond request config patch fcgi
FUZZ_CFLAGS := -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=all $(CPPFLAGS) $(PKG_CFLAGS) -Ifcgi-app
$(BUILD)-fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(APP_SRC)
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) -o $@ $^ $(PKG_LIBS)

fuzz: deps deps-clang
	@$(MAKE) --no-print-directory fuzz-run

fuzz-run: $(FUZZERS:%=$(BUILD)-fuzz/fuzz_%)
	@for f in $(FUZZERS); do \
	    rm -rf $(BUILD)-fuzz/corpus-$$f; \
	    cp -r tests/fuzz/corpus/$$f $(BUILD)-fuzz/corpus-$$f; \
	    echo "fuzzing $$f for $(FUZZ_SECONDS)s"; \
	    $(BUILD)-fuzz/fuzz_$$f -max_total_time=$(FUZZ_SECONDS) \
	        -max_len=70000 -print_final_stats=1 \
	        -artifact_prefix=$(BUILD)-fuzz/$$f- \
	        $(BUILD)-fuzz/corpus-$$f > $(BUILD)-fuzz/$$f.log 2>&1 || \
	        { tail -30 $(BUILD)-fuzz/$$f.log; exit 1; }; \
	    grep -E '^stat::(number_of_executed_units|new_units_added)' \
	        $(BUILD)-fuzz/$$f.log; \
	done

valgrind: $(BUILD)/unit-tests
	valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
	    --trace-children=yes $(BUILD)/unit-tests --jobs 1

clean:
	rm -rf $(BUILD) $(BUILD)-san $(BUILD)-fuzz $(BUILD)-nosync


# Parts with a life of their own (power-loss harness, benchmark, contract
# lint, packaging...) keep their rules in mk/*.mk.
-include $(sort $(wildcard mk/*.mk))

check: deps-check
	@rm -rf $(RESULTS) && mkdir -p $(RESULTS)
	@printf '%s\n' $(patsubst check-%,%,$(CHECK_STEPS)) > $(RESULTS)/expected
	@status=0; for step in $(CHECK_STEPS); do \
	    echo "== $$step"; \
	    $(MAKE) --no-print-directory $$step || status=1; \
	done; \
	echo "== summary"; \
	python3 tests/summary.py $(RESULTS) || status=1; \
	exit $$status

.PHONY: check check-unit check-integration all deps deps-check deps-clang fuzz-run run test integration check sanitize fuzz valgrind clean
