# pgstack's vocabulary: each target is a short line you could run by hand.
#
# PGSTACK_TEST_ADMIN_URL: a server where the tests may create and drop their own
# databases (default: the local socket). DATABASE_URL: the database `migrate` upgrades.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export PGSTACK_TEST_ADMIN_URL ?= postgresql:///postgres

.PHONY: help install migrate test test-sql test-python test-chaos-short chaos lint lint-sql lint-python bench clean

help:
	@echo "make install      virtual environment in $(VENV) with pgstack and its dev tools"
	@echo "make migrate      apply pending migrations to \$$DATABASE_URL"
	@echo "make test         lint, pgTAP suite, pytest suite, short chaos suite"
	@echo "make test-sql     pgTAP suite (tests/sql) against a fresh database"
	@echo "make test-python  pytest suite (tests/python)"
	@echo "make chaos        fault-injection suite, full (tests/chaos, ~10 min)"
	@echo "make lint         sqlfluff, ruff, mypy"
	@echo "make bench        pgstack vs graphile-worker, PgQueuer, procrastinate, pgbench (~15 min)"

$(BIN)/pgstack: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

install: $(BIN)/pgstack

migrate: install
	$(BIN)/pgstack migrate

test: lint test-sql test-python test-chaos-short

test-sql: install
	$(BIN)/python tests/sql/run.py

test-python: install
	$(BIN)/pytest tests/python

# Workers killed, the server restarted, connections cut, poison input: no job lost.
test-chaos-short: install
	$(BIN)/python tests/chaos/run.py --short

chaos: install
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
