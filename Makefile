# The two commands: `make up` runs Overture, `make test` runs the whole suite.
# Both create .venv and install what they need on first use.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: up test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

up: $(STAMP)
	$(BIN)/overture up

lint: $(STAMP)
	$(BIN)/ruff check overture tests migrations bench
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest -q -n 2

# The engine benchmark (bench/README.md): installs the optional `bench` extra, then
# runs everything in one go, under ~10 minutes, and prints one table.
BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python -m bench.engine

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache
