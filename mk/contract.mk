# contract.mk: `make check-contract`, the HTTP contract (docs/API.md and
# docs/openapi.yaml) checked by tools pinned from the npm registry.
#
# tests/contract/lint.py installs @redocly/cli and @stoplight/prism-cli at
# their pinned versions into var/npm (or $USERREG_NPM_PREFIX) when missing,
# lints docs/openapi.yaml with `redocly lint` (any error fails), and checks
# that the description, docs/API.md, fcgi-app/problem.c and the nginx
# snippet name the same problem types. tests/contract/prism.py starts Prism
# as a validating proxy for the integration tests.

check-contract:
	@mkdir -p $(RESULTS)
	python3 tests/contract/lint.py --junit $(RESULTS)/contract.xml

# The pinned tools only, e.g. before running tests through Prism.
contract-tools:
	python3 tests/contract/lint.py --install-only

CHECK_STEPS += check-contract

.PHONY: check-contract contract-tools
