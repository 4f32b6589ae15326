# Two commands set everything up on a fresh machine: `make demo` and `make test`.
# Both create .venv on first use and reinstall when pyproject.toml changes.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000
WS_PORT ?= 8001
PYTEST_ARGS ?=

.PHONY: help venv test lint typecheck pytest docs docs-serve bench demo soak clean

help:
	@echo "make demo   - create .venv, install, start the demo server"
	@echo "make test   - create .venv, install, run lint, type checks, docs build and the test suite"
	@echo "make lint | typecheck | pytest | docs | bench | clean"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff format --check trio_stream tests examples benchmarks
	$(BIN)/ruff check trio_stream tests examples benchmarks
	# flake8-async runs on its own: ruff implements only part of the ASYNC rules.
	$(BIN)/flake8 trio_stream tests examples benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

# pytest exits 5 when it collected no test: that is a broken suite, not a pass.
pytest: $(STAMP)
	$(BIN)/python -m pytest --cov --cov-report=term $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests" >&2; fi; exit $$status

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir build/site

test: lint typecheck docs pytest

bench: $(STAMP)
	$(BIN)/python -m benchmarks

demo: $(STAMP)
	$(BIN)/trio-stream demo --host $(HOST) --port $(PORT) --ws-port $(WS_PORT)

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov
