# pg.mk: the PostgreSQL backend's unit suite, against a throwaway server,
# and the integration suite on a PostgreSQL registry.
# make test-pg    build $(BUILD)/unit-pg-tests and run it against a cluster
#                 that tests/lib/pg.py starts in a temp dir and removes
# check-pg        (make check) the same, JUnit report in $(RESULTS)/pg.xml
# make integration-pg
#                 tests/integration on the front nginx-pool-pg: every test
#                 that takes srv (those of SQLite files excepted) on a pool
#                 whose registry is a schema in a throwaway cluster, and
#                 test_twohost.py (two nginx + pool pairs, one registry)
# check-integration-pg
#                 (make check) the same, $(RESULTS)/integration-pg.xml
# Needs the Debian packages libpq-dev and postgresql-15 (only the server
# binaries: the system's own PostgreSQL service is never touched).

PG_UNIT_SRC := $(wildcard tests/unit-pg/*.c)
PG_UNIT_OBJ := $(PG_UNIT_SRC:tests/unit-pg/%.c=$(BUILD)/obj/unit-pg/%.o)
# The cluster's URI reaches the suite as USERREG_TEST_PG_URI.
PG_CLUSTER := /usr/bin/python3 tests/lib/pg.py run --

$(BUILD)/obj/unit-pg/%.o: tests/unit-pg/%.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -std=gnu11 $(TEST_WARNINGS) $(WERROR) $(CFLAGS) \
	    $(PKG_CFLAGS) $(CRIT_CFLAGS) -Ifcgi-app -Itests/unit -MMD -MP \
	    -c -o $@ $<

# Not position-independent, like the unit suite: Criterion re-runs it.
$(BUILD)/unit-pg-tests: $(PG_UNIT_OBJ) $(BUILD)/obj/unit/support.o \
    $(BUILD)/libuserreg.a
	$(CC) $(ALL_CFLAGS) -no-pie -o $@ $^ $(PKG_LIBS) $(PQ_LIBS) $(CRIT_LIBS)

-include $(wildcard $(BUILD)/obj/unit-pg/*.d)

# One test at a time: some of them stop, pause or crash the server.
test-pg: $(BUILD)/unit-pg-tests
	$(PG_CLUSTER) $(BUILD)/unit-pg-tests --jobs 1

check-pg: $(BUILD)/unit-pg-tests
	@mkdir -p $(RESULTS)
	$(PG_CLUSTER) $(BUILD)/unit-pg-tests --jobs 1 --xml=$(RESULTS)/pg.xml

CHECK_STEPS += check-pg

PG_INTEGRATION = /usr/bin/python3 -m pytest tests/integration --build $(BUILD) \
	--workers $(WORKERS) --fronts nginx-pool-pg

integration-pg: all
	$(PG_INTEGRATION)

check-integration-pg: all
	@mkdir -p $(RESULTS)
	$(PG_INTEGRATION) --junitxml $(RESULTS)/integration-pg.xml

CHECK_STEPS += check-integration-pg

.PHONY: test-pg check-pg integration-pg check-integration-pg
