# On a machine with only Python 3.11+ and make:
#   make run     serve the API on an embedded PostgreSQL (or on DATABASE_URL)
#   make test    the project's fast tests, in parallel (embedded server, or TEST_DATABASE_URL)
#   make check   before you push: lint, every project test (slow proofs and the fuzzer too)
#                with coverage, and pg-harness's own tests
# Each creates .venv and installs the locked dependencies first, bootstrapping uv if needed.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SERVE_VENV := .venv-serve
# uv from PATH if there is one, else the version pinned in uv.lock, installed into the venv.
UV := $(or $(shell command -v uv 2>/dev/null),$(BIN)/uv)
SERVE_UV := $(or $(shell command -v uv 2>/dev/null),$(SERVE_VENV)/bin/uv)
UV_VERSION := $(shell sed -n '/^name = "uv"$$/{n;s/^version = "\(.*\)"/\1/p;}' uv.lock)
# Runs a command with DATABASE_URL set: as given, or the embedded dev server's.
WITH_DB := $(BIN)/python -m pg_harness.embedded

export PATH := $(abspath $(BIN)):$(PATH)
export UV_PYTHON_DOWNLOADS := never

.PHONY: roles run serve test check check-project check-harness check-runtime lint migrate downgrade revision reset-db clean-db

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.synced: pyproject.toml uv.lock | $(BIN)/python
	@[ -x "$(UV)" ] || $(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	$(UV) sync --frozen --compile-bytecode --python $(BIN)/python
	@touch $@

# A target variable, not `ENVIRONMENT=... command`: that would put a shell between make and
# the command, and a signal to make's own pid would no longer reach it (pg_harness.embedded).
run: export ENVIRONMENT ?= development
run: $(VENV)/.synced
	$(WITH_DB) sh -c 'alembic upgrade head && exec python main.py'

# Production, on your server: the runtime dependencies only, in an environment of its own
# (`uv sync` makes an environment exact: sharing .venv, `make serve` and `make test` would
# each remove what the other installed). --inexact keeps uv itself, if bootstrapped there.
$(SERVE_VENV)/bin/python:
	$(PYTHON) -m venv $(SERVE_VENV)

$(SERVE_VENV)/.synced: pyproject.toml uv.lock | $(SERVE_VENV)/bin/python
	@[ -x "$(SERVE_UV)" ] || $(SERVE_VENV)/bin/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	UV_PROJECT_ENVIRONMENT=$(SERVE_VENV) $(SERVE_UV) sync --frozen --no-dev --inexact --compile-bytecode --python $(SERVE_VENV)/bin/python
	@touch $@

# Migrate (over DIRECT_URL, else DATABASE_URL), then serve with WORKERS processes.
# Instances started at once take turns migrating. No DATABASE_URL: both refuse to start.
serve: $(SERVE_VENV)/.synced
	$(SERVE_VENV)/bin/alembic upgrade head
	exec $(SERVE_VENV)/bin/python main.py

# The fast suite: pyproject.toml's addopts leave out the slow tests and the fuzzer's plugins,
# so this is what a bare `pytest -n auto` runs too.
test: $(VENV)/.synced
	$(BIN)/pytest -n auto

# Slow tests too, and the fuzzer's plugins (pyproject.toml's addopts leave both out).
EVERY_TEST := -m "" -p schemathesis -p hypothesispytest

check: lint check-project check-harness check-runtime

# Every test of the project, slow ones included, with the coverage of app/, orm/ and api/
# (served subprocesses too: [tool.coverage] in pyproject.toml).
check-project: $(VENV)/.synced
	$(BIN)/pytest -n auto $(EVERY_TEST) --cov --cov-report=term:skip-covered

# pg-harness's own tests: run ownership, Ctrl-C, broken revisions, the newcomer's proof.
check-harness: $(VENV)/.synced
	$(BIN)/pytest -n auto $(EVERY_TEST) harness/tests

# The runtime's own tests on its probe app (runtime/tests/probe/), slow proofs included, with
# the coverage of pg_runtime (served subprocesses too: [tool.coverage] in runtime/pyproject.toml).
check-runtime: $(VENV)/.synced
	cd runtime && $(abspath $(BIN))/pytest -n auto $(EVERY_TEST) --cov=pg_runtime --cov-report=term:skip-covered

lint: $(VENV)/.synced
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/mypy runtime

migrate: $(VENV)/.synced
	$(WITH_DB) alembic upgrade head

downgrade: $(VENV)/.synced
	$(WITH_DB) alembic downgrade -1

revision: $(VENV)/.synced
	@[ -n "$(m)" ] || { echo 'usage: make revision m="add tag"'; exit 2; }
	@$(WITH_DB) alembic -q revision --autogenerate -m "$(m)"
	@new=$$(ls -t alembic/versions/*.py | head -1); \
	  $(BIN)/ruff format --quiet "$$new" && $(BIN)/ruff check --fix --quiet "$$new" && \
	  $(BIN)/ruff format --quiet "$$new" && \
	  echo "wrote $$new; read it, then its checks (stairway, offline SQL, DDL review):" && \
	  { $(BIN)/pytest -q --no-header tests/migrations \
	      -k "$$(sed -n 's/^revision: str = "\(.*\)"/\1/p' "$$new")" || \
	    echo "the new revision fails the checks above: fix it (an empty one: write it), then make test"; }

# The app's and the reader's roles on your server, as DIRECT_URL's owner (docs/roles.md):
# prints the DATABASE_URL and DATABASE_READER_URL to store as secrets.
roles: $(VENV)/.synced
	$(BIN)/python -m pg_runtime.roles $(args)

# Empty the development database (data and migration stamp), for a history that changed
# under it; the embedded server's only, never DATABASE_URL's.
reset-db: $(VENV)/.synced
	$(BIN)/python -m pg_harness.embedded.reset

# Drop the migrated template the tests keep between runs (it is rebuilt on the next run).
clean-db: $(VENV)/.synced
	$(BIN)/python -m pg_harness.clean_db
	cd runtime && $(abspath $(BIN))/python -m pg_harness.clean_db
