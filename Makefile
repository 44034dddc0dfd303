# mailbox-service: developer entry points. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .stack/tools
UV := $(shell command -v uv 2>/dev/null || echo $(TOOLS)/bin/uv)
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := $(PYTHON)

.PHONY: help setup promtool portal run test test-fast lint format bench stack-up stack-down clean clean-cache

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

$(TOOLS)/bin/uv:
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found: install Python >= 3.11 (or use docker compose up)"; exit 2; }
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --target $(TOOLS) uv==$(UV_VERSION)

.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --all-groups
	@touch $@

setup: .venv/.synced ## install Python dependencies (locked) into .venv

promtool: ## build promtool into the tool cache (the alert-rule tests need it; `make test` builds it)
	scripts/build-promtool.sh

portal: ## fetch the portal's browser dependencies (Socket.IO client) from the npm registry
	scripts/build-portal.sh

run: setup portal ## the whole service on a local stack: API :8000, worker, SMTP capture (Ctrl-C stops)
	$(UV) run mailbox-service dev run

test: setup portal ## the whole test suite against a private stack, with coverage of src/
	scripts/ensure-chromium.sh
	scripts/build-promtool.sh >/dev/null
	@# First run on a machine: installs and Go builds take minutes; do them before any test
	@# timer starts. The session reuses this stack and stops it at the end.
	@# Measured too: on a fresh machine this is where installs and builds run.
	$(UV) run coverage erase
	$(UV) run coverage run -m mailbox_service dev stack-up --profile $${MAILBOX_TEST_STACK_PROFILE:-test}
	$(UV) run pytest --cov=mailbox_service --cov-append --cov-branch --cov-report=term-missing:skip-covered

test-fast: setup ## unit tests only (no servers)
	$(UV) run pytest tests/unit -q

lint: setup ## ruff and mypy
	$(UV) run ruff check src tests bench migrations
	$(UV) run ruff format --check src tests bench migrations
	$(UV) run mypy

format: setup ## apply ruff's formatting and safe fixes
	$(UV) run ruff check --fix src tests bench migrations
	$(UV) run ruff format src tests bench migrations

bench: setup ## run the benchmarks (each prints its figures)
	$(UV) run python bench/ingest.py
	$(UV) run python bench/mailbox.py
	$(UV) run python bench/notify.py
	$(UV) run python bench/backfill.py

stack-up: setup ## start Redis, PostgreSQL+FerretDB, MinIO and SMTP capture; writes .stack/env
	$(UV) run mailbox-service dev stack-up

stack-down: setup ## stop the backing servers (data is kept)
	$(UV) run mailbox-service dev stack-down

clean: ## stop stacks and delete .stack (data, logs) and .venv; the build cache stays
	-$(UV) run mailbox-service dev stack-down
	-$(UV) run mailbox-service dev stack-down --profile test
	rm -rf .stack .venv .coverage* coverage.xml

clean-cache: ## delete the per-user build cache (FerretDB, MinIO, DocumentDB, promtool builds)
	rm -rf "$${MAILBOX_STACK_CACHE:-$${XDG_CACHE_HOME:-$$HOME/.cache}/mailbox-service}"
