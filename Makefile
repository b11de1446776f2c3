# One command per job. `make run` and `make test` set everything up first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help setup run test lint format lock bench clean

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

setup: $(STAMP) ## create or update the virtualenv .venv/ (fast when nothing changed)

# Rebuilt only when the lock or the project metadata changes; pip installs from the
# lock with hashes, so every machine gets the same packages.
$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

run: setup ## set up and start the server on http://127.0.0.1:9090 (embedded default)
	$(BIN)/chatstream serve

test: setup ## set up and run the whole suite: ruff, mypy, pytest
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy
	$(BIN)/pytest

lint: setup ## ruff and mypy only
	$(BIN)/ruff check src tests
	$(BIN)/mypy

format: setup ## reformat the code
	$(BIN)/ruff format src tests
	$(BIN)/ruff check --fix src tests

lock: ## re-resolve requirements.lock from pyproject.toml
	@test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --generate-hashes --universal \
		--python-version 3.11 -q -o requirements.lock

clean: ## remove the virtualenv (keeps ./data)
	rm -rf $(VENV)
