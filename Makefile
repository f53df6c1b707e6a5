# certgraph: `make run` to try it, `make test` to check it. Each sets up its own .venv.
#
#   make run            serve on http://127.0.0.1:$(PORT)/graphql with demo data (another port: PORT=...)
#   make test           lint, type-check and run the test suite on SQLite, less the tests marked slow
#   make test-postgres  the whole test suite, slow tests included, on PostgreSQL ($(CERTGRAPH_TEST_DATABASE_URL))
#   make lint           ruff check, ruff format --check, mypy, the layer contracts (lint-imports)
#   make clean          remove .venv and caches (var/, your data, is kept)

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
CERTGRAPH_TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/certgraph_test
PYTEST_ARGS ?=
# The suite runs in this many processes (pytest-xdist; 0: in this one). On PostgreSQL each
# worker has its own database: the URL's name with `_gw0`, `_gw1`, ... appended.
TEST_WORKERS ?= 2

# Stamps: an unchanged pyproject.toml does not reinstall anything.
RUNTIME_STAMP := $(VENV)/.installed-runtime
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: help run test test-postgres lint clean

# The lines above with the values in force (`make help PORT=9000` shows 9000).
help:
	@sed -n 's/^#   //p' Makefile | sed -e 's|$$(PORT)|$(PORT)|g' \
	  -e 's|$$(CERTGRAPH_TEST_DATABASE_URL)|$(CERTGRAPH_TEST_DATABASE_URL)|g'

# The venv is made with the first Python >= 3.11 found: $(PYTHON), then python3.14 .. 3.11.
$(BIN)/python:
	@chosen=""; \
	for candidate in $(PYTHON) python3.14 python3.13 python3.12 python3.11; do \
	  if command -v "$$candidate" >/dev/null 2>&1 && \
	     "$$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then \
	    chosen="$$candidate"; break; \
	  fi; \
	done; \
	if [ -z "$$chosen" ]; then \
	  found="$$($(PYTHON) --version 2>&1 || echo 'no $(PYTHON) on PATH')"; \
	  echo "certgraph needs Python >= 3.11 (strawberry-graphql requires it); found: $$found." >&2; \
	  echo "Install Python 3.11 or newer, or point to one: make $(MAKECMDGOALS) PYTHON=/path/to/python3.12" >&2; \
	  exit 1; \
	fi; \
	echo "creating $(VENV) with $$("$$chosen" --version)"; \
	"$$chosen" -m venv $(VENV)

$(RUNTIME_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	@touch $@

# The dev extras include the runtime, so a dev install satisfies `make run` too.
$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@ $(RUNTIME_STAMP)

# First of all: is the port free? (Nothing is installed, migrated or printed if it is not.)
.PHONY: port-free
port-free:
	@$(PYTHON) -c 'import socket, sys; s = socket.socket(); \
	s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1])))' \
	  $(PORT) 2>/dev/null || { \
	  echo "make run: port $(PORT) on 127.0.0.1 is in use (another certgraph?); try: make run PORT=$$(( $(PORT) + 1 ))" >&2; \
	  exit 1; }

run: port-free $(RUNTIME_STAMP)
	$(BIN)/certgraph migrate
	$(BIN)/certgraph demo --if-empty
	@echo
	@echo "certgraph: http://127.0.0.1:$(PORT)/graphql  (GraphiQL is on: CERTGRAPH_DEBUG=true)"
	@echo "Paste a token above into GraphiQL's headers: {\"Authorization\": \"Bearer <token>\"}"
	@echo
	CERTGRAPH_DEBUG=true $(BIN)/certgraph serve --port $(PORT)

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

# `make test` leaves out the tests marked slow (processes, big data, many examples: docs/quality.md);
# `make test-postgres` and CI run them. PYTEST_ARGS='-m slow' runs only those.
test: lint
	$(BIN)/pytest -n $(TEST_WORKERS) -m 'not slow' $(PYTEST_ARGS)
	$(BIN)/pytest examples/certgraph-quorum

test-postgres: $(DEV_STAMP)
	CERTGRAPH_TEST_DATABASE_URL='$(CERTGRAPH_TEST_DATABASE_URL)' $(BIN)/pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

#   make bench          benchmark vs a hand-written floor and PostGraphile, SQLite + PostgreSQL (docs/performance.md)
# Installs PostGraphile (npm ci in bench/peer; skipped without node/npm), generates both
# datasets, checks them against certgraph (bench.verify), runs bench.run; the
# table lands in bench/results/latest.md. BENCH_SCALE=1 for the full size; BENCH_ARGS for run
# length (py-spy, for bench.run --profile only, is not installed here).
BENCH_SCALE ?= 0.1
BENCH_SQLITE ?= sqlite://./var/bench/bench-$(BENCH_SCALE).sqlite3
BENCH_POSTGRES ?= postgres://postgres@127.0.0.1:5432/certgraph_bench
BENCH_ARGS ?= --duration 2 --repeats 2

.PHONY: bench
bench: $(RUNTIME_STAMP)
	@command -v wrk >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq wrk; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq wrk; fi; }
	@if ! command -v npm >/dev/null || ! command -v node >/dev/null; then \
	  echo "make bench: no node/npm here: PostGraphile (the peer) is skipped" >&2; \
	elif [ ! bench/peer/node_modules/.package-lock.json -nt bench/peer/package-lock.json ]; then \
	  (cd bench/peer && npm ci --no-audit --no-fund --loglevel=error) || \
	    echo "make bench: npm ci in bench/peer failed: PostGraphile (the peer) is skipped" >&2; \
	fi
	$(BIN)/python -m bench.generate --scale $(BENCH_SCALE) --db $(BENCH_SQLITE)
	$(BIN)/python -m bench.verify --db $(BENCH_SQLITE)
	$(BIN)/python -m bench.generate --scale $(BENCH_SCALE) --db $(BENCH_POSTGRES)
	$(BIN)/python -m bench.verify --db $(BENCH_POSTGRES)
	$(BIN)/python -m bench.run --db $(BENCH_SQLITE) --db $(BENCH_POSTGRES) $(BENCH_ARGS)

#   make proof          docs/quality.md's Security and Reliability bars against real servers, SQLite + PostgreSQL
# Starts `certgraph serve` subprocesses on loopback (docs/reliability.md); each test makes its own
# SQLite file or PostgreSQL database (named after PROOF_DATABASE_URL's) and drops it after.
# Debian's chromium (installed when /usr/bin/chromium is missing) drives GraphiQL headless, and
# examples/spa (npm ci and built once here, for both passes).
PROOF_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/certgraph_proof
PROOF_ARGS ?=
# The server tests only: tests/proof's in-process tests run with the suite (`make test`,
# `make test-postgres`). A proof marked DATABASE_INDEPENDENT (tests/proof/live.py) is skipped
# on the PostgreSQL pass: it would repeat the SQLite pass unchanged.
PROOF_TESTS := $(sort $(wildcard tests/proof/test_live_*.py))

.PHONY: proof
proof: $(DEV_STAMP)
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium; fi; }
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,proof]'
	$(BIN)/python -m tests.proof.oidc_live
	$(BIN)/python -m tests.proof.spa_live
	CERTGRAPH_PROOF=1 $(BIN)/pytest $(PROOF_TESTS) $(PROOF_ARGS)
	CERTGRAPH_PROOF=1 CERTGRAPH_TEST_DATABASE_URL='$(PROOF_DATABASE_URL)' $(BIN)/pytest $(PROOF_TESTS) $(PROOF_ARGS)
