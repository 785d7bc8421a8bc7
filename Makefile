# Two commands on a fresh machine: `make plan STACK=prod` and `make test`.
STACK ?= prod
# What `make plan` compares with: empty for the merge base with main, a git ref, a saved plan JSON, or `none`.
BASE ?=
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
RUNTIME := $(VENV)/.runtime-installed
DEV := $(VENV)/.dev-installed

# actionlint, built from its Go module (the workflow tests lint with it). Go fetches the toolchain
# actionlint's go.mod asks for when the installed one is older (GOTOOLCHAIN=auto, Go's default).
ACTIONLINT_VERSION := 1.7.12
ACTIONLINT := tools/actionlint/bin/actionlint

.PHONY: plan test venv bench bench-policy readme verify lab

$(RUNTIME): requirements.txt policies/requirements.txt
	@test -x $(PY) || echo "First run: creating $(VENV) and installing the Pulumi SDK with the AWS, Hetzner and random providers' Python packages, pydantic, boto3 and the policy pack's requirements (about 430 MB; a minute or two, most of it downloading pulumi-aws). Later runs start at once."
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -r policies/requirements.txt
	touch $@

$(DEV): $(RUNTIME) requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

$(ACTIONLINT):
	@command -v go >/dev/null || { echo "actionlint is built with Go: install it (apt-get install golang-go, or .ci/run does)"; exit 1; }
	GOBIN="$(CURDIR)/$(dir $(ACTIONLINT))" go install github.com/rhysd/actionlint/cmd/actionlint@v$(ACTIONLINT_VERSION)

## The virtualenv with what `make plan` and `make verify` need (CI calls the tools in it directly).
venv: $(RUNTIME)

## Offline plan of a stack under Pulumi's mock engine, as a diff against BASE. PLAN_ARGS="--json plan.json"
## Exit codes (make itself reports any failure as 2; its last line, "Error N", is the plan's code):
## 0 planned, 1 mandatory policy violation, 2 config error, 3 a protected resource would be replaced or deleted.
plan: $(RUNTIME)
	$(PY) -m tools.plan --stack $(STACK) --base "$(BASE)" $(PLAN_ARGS)

## Lint, then every test, in three processes (the lab's tests keep to one of them: tests/conftest.py).
## Much of the run waits on real services, so three share two cores well. PYTEST_ARGS="-n 0" for one process.
test: $(DEV) $(ACTIONLINT)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest -q -n 3 $(PYTEST_ARGS)

## Plan wall time for fleets of 1+1, 10+10 and 50+50 hosts.
bench: $(DEV)
	$(PY) -m tools.bench_plan

## The guide's checklist and a drift audit against the live stack. VERIFY_ARGS="--only drift --json verify.json"
verify: $(RUNTIME)
	$(PY) -m tools.verify --stack $(STACK) $(VERIFY_ARGS)

## The planned stack in network namespaces on this machine, checked on real packets, then the day-2 changes
## delivered through each cloud's channel, with their delivery times (root). LAB_ARGS="--fleet 3+4 -v"
lab: $(DEV)
	$(PY) -m tools.lab run --stack $(STACK) $(LAB_ARGS)

## Policy pack throughput: 10,000 rule resources through Analyze over gRPC.
bench-policy: $(DEV)
	$(PY) -m tools.bench_policy

## Regenerate the README port tables from the matrix table.
readme: $(RUNTIME)
	$(PY) -m tools.readme_tables --write
