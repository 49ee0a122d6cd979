# Two entry points for a fresh machine: `make serve` and `make test` (see README).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_DIRS := tests/interop tests/hocuspocus tests/comments
NODE_STAMPS := $(addsuffix /node_modules/.installed,$(NODE_DIRS))
ARGS ?=
WEB := client/web
WEB_SOURCES := $(WEB)/build.mjs $(WEB)/index.html $(wildcard $(WEB)/src/*)

.PHONY: serve test lint install node web bench

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

%/node_modules/.installed: %/package.json %/package-lock.json
	cd $* && npm ci --no-audit --no-fund --loglevel=error
	touch $@

node: $(NODE_STAMPS)

# The browser app: `npm ci` when its lock changed, then esbuild into client/web/dist (served at /).
$(WEB)/dist/.built: $(WEB)/node_modules/.installed $(WEB_SOURCES)
	cd $(WEB) && node build.mjs
	touch $@

web: $(WEB)/dist/.built

serve: $(STAMP) web
	$(BIN)/cocreate serve $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: $(STAMP) node web lint
	$(BIN)/python -m pytest $(ARGS)

bench: $(STAMP) node
	$(BIN)/python -m pip install -q -e ".[bench]"
	$(BIN)/python -m benchmarks setup
	$(BIN)/python -m benchmarks all $(ARGS)
