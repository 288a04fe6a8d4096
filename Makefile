# Concord: every target but `venv` uses the project's own environment in .venv.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: venv up down status reset topics demo chaos test test-unit lint typecheck check bench bench-policy bench-console clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

up: venv            ## start Kafka and PostgreSQL, create the topics
	$(BIN)/concord stack up
	$(BIN)/concord topics ensure

down: venv          ## stop what `up` started (data stays)
	$(BIN)/concord stack down

status: venv
	$(BIN)/concord stack status

reset: venv         ## stop and wipe the stack's data
	$(BIN)/concord stack reset

topics: venv
	$(BIN)/concord topics ensure

demo: venv          ## the main job: stack, gateway, services, and cases of the agency service end to end
	$(BIN)/concord demo

chaos: venv         ## cases carried through an exchange being broken on purpose, then reconciled (a few minutes)
	$(BIN)/concord chaos

test: venv          ## unit tests, then integration and end-to-end tests on the real stack
	$(BIN)/python -m tests.datacontract
	$(BIN)/pytest

test-unit: venv     ## the fast layer only: no I/O
	$(BIN)/pytest tests/unit

lint: venv
	$(BIN)/ruff check .

typecheck: venv
	$(BIN)/mypy contracts base gateway services deploy bench

check: lint typecheck

bench: venv         ## throughput and latency figures (not part of the tests)
	$(BIN)/python -m bench.router

bench-policy: venv  ## what a change of the agreements costs the router, with 5,000 approved (on the stack's database)
	$(BIN)/python -m bench.policy

bench-console: venv ## first paint of each console view, on the stack's database (after `make demo`)
	$(BIN)/python -m bench.console

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
