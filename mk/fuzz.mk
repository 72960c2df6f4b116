# fuzz.mk: `make check-fuzz`, every libFuzzer harness in FUZZERS run
# briefly, reported in $(RESULTS)/fuzz.xml (one testcase per harness).
#   make check-fuzz                      CHECK_FUZZ_SECONDS (20) each
#   make fuzz FUZZ_SECONDS=600           the long runs (Makefile)
# Each runs on a scratch copy of tests/fuzz/corpus/NAME in
# $(BUILD)-fuzz/check, where its log and any crashing input stay. A
# harness that does not build still gets its testcase, failed.

CHECK_FUZZ_SECONDS ?= 20
FUZZ_CHECK_DIR := $(BUILD)-fuzz/check

check-fuzz:
	@mkdir -p $(RESULTS)
	-@$(MAKE) --no-print-directory -k $(FUZZERS:%=$(BUILD)-fuzz/fuzz_%)
	python3 tests/fuzz/run.py --bin $(BUILD)-fuzz --corpus tests/fuzz/corpus \
	    --work $(FUZZ_CHECK_DIR) --seconds $(CHECK_FUZZ_SECONDS) \
	    --junitxml $(RESULTS)/fuzz.xml $(FUZZERS)

CHECK_STEPS += check-fuzz

.PHONY: check-fuzz
