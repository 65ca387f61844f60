# Two commands for a newcomer: `make run` (local mode) and `make test` (the whole suite).
# Everything they need is installed here, into .venv and node_modules, from pinned versions.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PYTHONPATH := $(CURDIR)/layers:$(CURDIR)
# jsii silences its Node end-of-life banner only for the major versions listed here.
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 20
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: run test audit bench cost synth deploy layer clean

# The Lambda layer bundles, built for the Lambda runtime by pip, without Docker: the shared one
# (build/layer/python) and the live channel authorizer's (build/layer-live-auth/python: joserfc and
# cryptography, which only that function needs), with bytecode for the runtime's Python compiled by
# Pyodide (node_modules). The script also skips the work itself when a bundle's inputs' digest is
# unchanged.
LAYER := build/layer.inputs.sha256
BYTECODE_INPUTS := layers/bytecode.py layers/run_in_pyodide.mjs package-lock.json
LAYER_INPUTS := requirements.txt constraints.txt layers/build_layer.py stacks/lambda_runtime.py $(BYTECODE_INPUTS) \
	$(shell find layers/coexist \( -name '*.py' -o -name '*.json' \) -not -path '*/__pycache__/*')
LIVE_AUTH_LAYER := build/layer-live-auth.inputs.sha256
LIVE_AUTH_LAYER_INPUTS := requirements-live-auth.txt requirements.txt constraints.txt layers/build_layer.py \
	stacks/lambda_runtime.py $(BYTECODE_INPUTS)
# Each function's code with its bytecode (build/functions/<name>, the asset it deploys).
FUNCTION_CODE := build/functions.inputs.sha256
FUNCTION_CODE_INPUTS := layers/build_layer.py stacks/lambda_runtime.py $(BYTECODE_INPUTS) \
	$(shell find functions -name '*.py' -not -path '*/__pycache__/*')
LAYERS := $(LAYER) $(LIVE_AUTH_LAYER) $(FUNCTION_CODE)

$(BIN)/.installed: requirements.txt requirements-live-auth.txt requirements-dev.txt constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt -c constraints.txt
	touch $@

# The console's browser tests drive Debian's Chromium through Playwright (Playwright's own browser
# download is not used), with a Thai font for the Thai screens. Installed here when missing; CI runs
# as root on Debian.
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	@if [ "$$(id -u)" != 0 ]; then echo "Chromium is missing: run 'sudo apt-get install -y chromium' (Debian)" >&2; exit 1; fi
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-thai-tlwg

run: $(BIN)/.installed
	$(BIN)/python -m local

# The suites run in TEST_WORKERS processes (pytest-xdist; one more than two cores: the e2e tests
# spend part of their time waiting on local mode and moto's workflows), recording every AWS call
# the functions make into one directory; then, in a session of their own, the browser tests (their
# timings want a quiet machine) and the IAM contract test, which checks those calls against the
# stage the first session synthesised (kept in the same directory). The slowest tests are listed
# at the end: where the suite's time goes, on every run.
TEST_WORKERS ?= 3
AWS_CALLS := $(CURDIR)/build/aws-calls/make-test
# Bytecode is written even where the machine asks Python not to (PYTHONDONTWRITEBYTECODE): every
# worker and every local mode the suites start imports the same modules, and compiling them again
# in each made collecting the tests take twice as long. Function and layer assets leave it out.
test: export PYTHONDONTWRITEBYTECODE :=
test: $(BIN)/.installed node_modules/.installed $(LAYERS) $(CHROMIUM) audit
	rm -rf $(AWS_CALLS)
	COEXIST_AWS_CALL_LOG=$(AWS_CALLS) $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup --durations=15 -m "not after_suites and not browser"
	COEXIST_AWS_CALL_LOG=$(AWS_CALLS) $(BIN)/python -m pytest -m "browser or after_suites"

# Every pinned package (constraints.txt pins the whole closure, the layer's included) against PyPI's
# advisory data. An advisory without a fixed version to move to is waived here, one line each:
#   --ignore-vuln <id>  # <package>: <why it does not apply or what mitigates it>
# PIP_AUDIT_FLAGS=--strict also fails when a package could not be looked up at all.
PIP_AUDIT_FLAGS ?=
audit: $(BIN)/.installed
	$(BIN)/pip-audit --no-deps --disable-pip --progress-spinner off -r constraints.txt $(PIP_AUDIT_FLAGS)

bench: $(BIN)/.installed $(LAYERS)
	$(BIN)/python -m benchmarks

# USD per million inbound messages and sends, by service (benchmarks/cost.py); PRICES=path/to/prices.json
# replaces the us-east-1 list prices of benchmarks/prices-us-east-1.json.
cost: $(BIN)/.installed
	$(BIN)/python -m benchmarks.cost $(if $(PRICES),--prices $(PRICES))

$(LAYER): $(BIN)/.installed node_modules/.installed $(LAYER_INPUTS)
	$(BIN)/python layers/build_layer.py --bundle shared
	touch $@

# After the shared bundle: it leaves out what that one carries.
$(LIVE_AUTH_LAYER): $(BIN)/.installed node_modules/.installed $(LAYER) $(LIVE_AUTH_LAYER_INPUTS)
	$(BIN)/python layers/build_layer.py --bundle live-auth
	touch $@

$(FUNCTION_CODE): $(BIN)/.installed node_modules/.installed $(FUNCTION_CODE_INPUTS)
	$(BIN)/python layers/build_layer.py --functions
	touch $@

layer: $(LAYERS)

# The CDK CLI and Pyodide (the layers' bytecode compiler), pinned in package-lock.json.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Offline: no AWS credentials or Docker needed to synthesise (and run cdk-nag).
synth: $(BIN)/.installed node_modules/.installed $(LAYERS)
	npx cdk synth --quiet

# Needs AWS credentials and a one-time `npx cdk bootstrap` in the target account/region (docs/DEPLOY.md).
deploy: $(BIN)/.installed node_modules/.installed $(LAYERS)
	npx cdk deploy --all

clean:
	rm -rf $(VENV) node_modules build cdk.out .pytest_cache
