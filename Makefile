# Two commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip

.PHONY: demo test lint typecheck pytest bench schema docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	@rm -f .corral/demo.db
	$(BIN)/corral run examples/support_desk/team.yaml \
		--input @examples/support_desk/ticket.json --db .corral/demo.db

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check corral tests benchmarks examples notebooks
	$(BIN)/ruff format --check corral tests benchmarks examples notebooks
	$(BIN)/lint-imports

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy corral

pytest: $(VENV)/.installed-dev
	$(BIN)/pytest -n 2 -q -m "not serial"
	$(BIN)/pytest -q -m serial

test: lint typecheck pytest

bench: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/step_overhead.py
	$(BIN)/python benchmarks/checkpointer.py
	$(BIN)/python benchmarks/long_run.py
	$(BIN)/python benchmarks/scans.py
	$(BIN)/python benchmarks/concurrency.py
	$(BIN)/python benchmarks/memory.py --runs 100000
	$(BIN)/python benchmarks/delegation.py
	$(BIN)/python benchmarks/budgets.py
	$(BIN)/python benchmarks/startup.py
	$(BIN)/python benchmarks/otel_overhead.py
	$(BIN)/python benchmarks/crash_trials.py --trials 1000
	$(BIN)/python benchmarks/tokens.py
	$(BIN)/python benchmarks/server.py
	$(BIN)/python benchmarks/postgres.py

schema: $(VENV)/.installed
	$(BIN)/corral schema -o corral-team.schema.json

# The README's pictures; tests/graphs/test_pictures.py fails when they are out of date.
docs: $(VENV)/.installed
	$(BIN)/corral graph examples/support_desk/team.yaml --format svg -o docs/support_desk.svg

clean:
	rm -rf $(VENV) .corral .mypy_cache .ruff_cache .pytest_cache
