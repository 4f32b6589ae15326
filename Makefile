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

.PHONY: help venv test lint typecheck pytest docs docs-serve bench demo soak fuzz clean

help:
	@echo "make demo   - create .venv, install, start the demo server"
	@echo "make test   - create .venv, install, run lint, type checks, docs build and the test suite"
	@echo "make lint | typecheck | pytest | docs | bench | soak | fuzz | clean"

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

# Not part of `make test`: minutes of load on loopback, then checks (lost
# events, RSS plateau, tasks and fds back to idle); exits 1 if one fails.
SOAK_MINUTES ?= 5
soak: $(STAMP)
	$(BIN)/python -m benchmarks.soak --minutes $(SOAK_MINUTES) --sse-clients 1000 --ws-clients 200

# Not part of `make test`: long hypothesis runs and the atheris harnesses.
FUZZ_RUNS ?= 200000
fuzz: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[fuzz]'
	mkdir -p build/fuzz
	FUZZ_EXAMPLES=2000 $(BIN)/python -m pytest tests/fuzz -q -p no:cacheprovider
	$(BIN)/python fuzz/sse_decoder.py -runs=$(FUZZ_RUNS) -artifact_prefix=build/fuzz/
	$(BIN)/python fuzz/chat_chunks.py -runs=$(FUZZ_RUNS) -artifact_prefix=build/fuzz/
	$(BIN)/python fuzz/websocket_messages.py -runs=10000 -artifact_prefix=build/fuzz/
	FUZZ_CODEC=msgpack $(BIN)/python fuzz/websocket_messages.py -runs=10000 -artifact_prefix=build/fuzz/

demo: $(STAMP)
	$(BIN)/trio-stream demo --host $(HOST) --port $(PORT) --ws-port $(WS_PORT)

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov
