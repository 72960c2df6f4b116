# powerloss.mk: acknowledged writes survive power cuts (tests/powerloss).
# make crash          the full run: CRASH_CUTS (50) cuts, then a build that
#                     does not sync must be caught; report in
#                     $(BUILD)/powerloss/crash.xml
# make crash-broken   the harness run against that broken build: it fails
# check-lossyfs       (make check) the filesystem's self-test
# check-powerloss     (make check) CHECK_CUTS (5) cuts plus the broken build
# Needs root, /dev/fuse and the Debian packages fuse3 and libfuse3-dev.
# CRASH_ARGS passes more options to crash.py (e.g. --seed 42).

CRASH_CUTS ?= 50
CHECK_CUTS := 5
CRASH_ARGS ?=
PL_DIR := $(BUILD)/powerloss
LOSSYFS := $(PL_DIR)/lossyfs
NOSYNC := $(PL_DIR)/nosync.so

# The broken build: the service's own switch when the sources have it,
# else the normal build with fsync and fdatasync made no-ops by LD_PRELOAD.
ifneq ($(strip $(shell grep -rlw USERREG_SYNCHRONOUS fcgi-app 2>/dev/null)),)
PL_BROKEN_BUILD := $(BUILD)-nosync
PL_BROKEN_DEPS := powerloss-broken-build
PL_BROKEN := --broken-binary $(PL_BROKEN_BUILD)/userreg.fcgi
PL_BROKEN_ALONE := --binary $(PL_BROKEN_BUILD)/userreg.fcgi
else
PL_BROKEN_DEPS := $(NOSYNC)
PL_BROKEN := --broken-preload $(NOSYNC)
PL_BROKEN_ALONE := --preload $(NOSYNC)
endif

PL_RUN = python3 tests/powerloss/crash.py --lossyfs $(LOSSYFS) --build $(BUILD) \
	--workers $(WORKERS)

# pkg-config runs in the recipe: the packages may be newer than this make.
$(LOSSYFS): tests/powerloss/lossyfs.c
	@mkdir -p $(@D)
	@pkg-config --exists fuse3 || { echo "powerloss: libfuse3-dev is" \
	    "missing (apt-get install fuse3 libfuse3-dev)" >&2; exit 1; }
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $$(pkg-config --cflags fuse3) \
	    $(LDFLAGS) -o $@ $< $$(pkg-config --libs fuse3)

$(NOSYNC): tests/powerloss/nosync.c
	@mkdir -p $(@D)
	$(CC) -std=c11 $(WARNINGS) $(WERROR) $(CFLAGS) -fPIC -shared -o $@ $<

powerloss-broken-build:
	@$(MAKE) --no-print-directory BUILD=$(PL_BROKEN_BUILD) \
	    CFLAGS="$(CFLAGS) -DUSERREG_SYNCHRONOUS=OFF" all

powerloss-tools: all $(LOSSYFS) $(PL_BROKEN_DEPS)

# deps first, then a fresh make: pkg-config flags are read at parse time.
crash: deps
	@$(MAKE) --no-print-directory crash-run

crash-run: powerloss-tools
	$(PL_RUN) --cuts $(CRASH_CUTS) $(PL_BROKEN) \
	    --junitxml $(PL_DIR)/crash.xml $(CRASH_ARGS)

crash-broken: deps
	@$(MAKE) --no-print-directory crash-broken-run

crash-broken-run: powerloss-tools
	@if $(PL_RUN) --cuts 3 $(PL_BROKEN_ALONE) $(CRASH_ARGS); then \
	    echo "crash-broken: the harness passed a build that does not" \
	        "sync" >&2; exit 1; \
	else \
	    echo "crash-broken: the harness failed, as it must for a build" \
	        "that does not sync"; \
	fi

check-lossyfs: $(LOSSYFS)
	@mkdir -p $(RESULTS)
	python3 tests/powerloss/selftest.py --lossyfs $(LOSSYFS) \
	    --junitxml $(RESULTS)/lossyfs.xml

check-powerloss: powerloss-tools
	@mkdir -p $(RESULTS)
	$(PL_RUN) --cuts $(CHECK_CUTS) $(PL_BROKEN) \
	    --junitxml $(RESULTS)/powerloss.xml $(CRASH_ARGS)

CHECK_STEPS += check-lossyfs check-powerloss

.PHONY: crash crash-run crash-broken crash-broken-run check-lossyfs \
	check-powerloss powerloss-tools powerloss-broken-build
