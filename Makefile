# Two entry points for a fresh machine: `make serve` and `make test` (see README).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_DIRS := tests/interop tests/hocuspocus tests/comments
NODE_STAMPS := $(addsuffix /node_modules/.installed,$(NODE_DIRS))
ARGS ?=

.PHONY: serve test lint install node bench

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

serve: $(STAMP)
	$(BIN)/cocreate serve $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: $(STAMP) node lint
	$(BIN)/python -m pytest $(ARGS)

bench: $(STAMP) node
	$(BIN)/python -m pip install -q -e ".[bench]"
	$(BIN)/python -m benchmarks setup
	$(BIN)/python -m benchmarks all $(ARGS)
