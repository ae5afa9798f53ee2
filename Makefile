# sophsync: `make demo` and `make test` are the whole set-up on a fresh machine.
# Every target creates or updates .venv by itself (uv, pinned, from uv.lock).

PYTHON ?= python3
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
PYTEST_ARGS ?= -n auto

.PHONY: demo test bench soak lint format typecheck sandbox install install-dev clean help

help:
	@echo "make demo      install, then run the whole flow against the built-in sandbox"
	@echo "make test      install dev tools, then run every test (lint and types included)"
	@echo "make bench     run the benchmarks: a table on screen, JSON in bench/results.json"
	@echo "make soak      the long reliability soak (PostgreSQL, more logins, 60 worker kills)"
	@echo "make lint      ruff (lint + format check) and mypy"
	@echo "make format    apply ruff's formatting and safe fixes"
	@echo "make sandbox   serve a local Sophtron on http://127.0.0.1:8111/api"

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# Bytecode is compiled at install (the libraries by uv, sophsync's own source by compileall): a
# process then starts in about a second, not two and a half, even where PYTHONDONTWRITEBYTECODE
# keeps Python from caching what it compiles.
install: $(UV)
	$(UV) sync --frozen --inexact --no-default-groups --python $(PYTHON) --quiet --compile-bytecode
	$(VENV)/bin/python -m compileall -q src >/dev/null

install-dev: $(UV)
	$(UV) sync --frozen --python $(PYTHON) --quiet --compile-bytecode
	$(VENV)/bin/python -m compileall -q src >/dev/null

demo: install
	$(VENV)/bin/sophsync demo

sandbox: install
	$(VENV)/bin/sophsync sandbox

test: install-dev
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# The web benchmark loads the server with wrk (Debian's package), installed here when missing.
bench: install-dev
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; } \
		|| { echo "make bench needs wrk, the HTTP load generator: apt-get install wrk"; exit 1; }
	$(VENV)/bin/python bench/run.py

soak: install-dev
	SOPHSYNC_SOAK=long $(VENV)/bin/pytest -p no:randomly -q tests/reliability/test_soak.py tests/reliability/test_crash.py

lint: install-dev
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy

typecheck: install-dev
	$(VENV)/bin/mypy

format: install-dev
	$(VENV)/bin/ruff format src tests bench
	$(VENV)/bin/ruff check --fix src tests bench

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache demo-output bench/results.json
