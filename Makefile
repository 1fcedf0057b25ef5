# One Makefile for people, hooks and CI. Every target installs what it needs.
# Dependencies come from requirements-dev.lock (exact versions; `make lock` pins them again;
# requirements.lock is the runtime subset the image installs).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test check pytest bench chaos screenshots lint typecheck format hooks lock clean

$(STAMP): requirements-dev.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/tthc demo

# The whole check, as CI runs it: lint, strict types, then every test.
test check: lint typecheck pytest

pytest: $(STAMP)
	@[ -x /usr/bin/chromium ] || ! command -v apt-get >/dev/null \
	  || { apt-get update -q && apt-get install -y -q chromium; } \
	  || echo "tests: no Chromium could be installed; the browser tests will be SKIPPED"
	$(BIN)/python -m tests.prepare
	$(BIN)/pytest -q -n auto

bench: $(STAMP)
	@command -v wrk >/dev/null && [ -x /usr/bin/time ] \
	  || { apt-get update -q && apt-get install -y -q wrk time; }
	$(BIN)/python -m bench.run

# Faults under load: processes SIGKILLed, Redis and PostgreSQL crashed, vendors failing;
# prints lost / duplicated / unanswered counts (all must be 0). A short form runs in `make test`.
chaos: $(STAMP)
	$(BIN)/python -m bench.chaos --events 10000

# The console's pictures in docs/screenshots/ (a seeded gateway, Debian's Chromium).
screenshots: $(STAMP)
	@[ -x /usr/bin/chromium ] || { apt-get update -q && apt-get install -y -q chromium; }
	$(BIN)/python -m tests.browser.screenshots docs/screenshots

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The same fast checks before each commit (ruff) and push (mypy).
hooks: $(STAMP)
	$(BIN)/pre-commit install --hook-type pre-commit --hook-type pre-push

# After changing dependencies in pyproject.toml: pin every package again.
PIN := $(BIN)/pip-compile -q --strip-extras --allow-unsafe --no-emit-index-url --no-emit-find-links
lock: $(STAMP)
	$(PIN) -o requirements.lock pyproject.toml
	$(PIN) --extra dev -o requirements-dev.lock pyproject.toml

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache var
