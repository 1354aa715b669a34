# Wesendall — `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install run test lint typecheck bench migrate clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip 'setuptools>=75'
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock
	PYTHONWARNINGS=ignore $(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e . || \
		$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install the pinned dependencies

run: $(STAMP) ## Run the whole platform with its simulators (Ctrl-C stops it)
	$(BIN)/python -m deploy.run

test: $(STAMP) ## Run every test (real Postgres and RabbitMQ)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP) ## ruff check and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP) ## mypy, no untyped definitions
	$(BIN)/mypy libs services simulators deploy

bench: $(STAMP) ## Benchmark the platform on loopback; prints a table and JSON
	$(BIN)/python -m bench

migrate: $(STAMP) ## Apply database migrations to WESENDALL_DATABASE_URL
	$(BIN)/wesendall db upgrade

clean: ## Remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
