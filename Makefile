# NotifyHub: `make run` starts everything, `make test` runs the whole suite.
VENV    := .venv
BIN     := $(VENV)/bin
PYTHON  := $(BIN)/python
STAMP   := $(VENV)/.requirements-installed
# The official SignalR JavaScript client the tests drive (tests/support/signalr_node.py), installed from the lock file.
NODE_CLIENT := tests/support/signalr-node
NODE_STAMP  := $(NODE_CLIENT)/node_modules/.installed

# The test suite runs against real PostgreSQL and Redis; override on the command line or in the environment.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/notifyhub
TEST_REDIS_URL    ?= redis://127.0.0.1:6379/15
# make bench uses its own database (created and migrated by the bench) and Redis database.
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/notifyhub_bench
BENCH_REDIS_URL    ?= redis://127.0.0.1:6379/14
BENCH_STAMP := $(VENV)/.bench-requirements-installed
# make soak uses its own database (created, migrated and emptied by the soak) and its own redis-server.
SOAK_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/notifyhub_soak

.PHONY: help venv run test bench soak lint format clean lock

help:
	@echo "make run    create .venv, migrate, seed demo data, start web + worker + beat"
	@echo "make test   create/update .venv and run the whole test suite (PostgreSQL + Redis)"
	@echo "make bench  about 9 minutes of benchmarks against a bare baseline (BENCH_ARGS=--help for options)"
	@echo "make soak   8-15 minutes of chaos under load; exits 1 if anything was lost (SOAK_ARGS=--help for options)"
	@echo "make lint   ruff check, then mypy (django-stubs; strict for core/ and the restructured modules)"
	@echo "make lock   pin every dependency with hashes again from requirements/*.in and bench/requirements.in"

# requirements.txt: what production installs (runtime only); requirements-dev.txt: that plus the tools for
# make run, test and lint. Both are lock files with hashes made by `make lock` from requirements/*.in.
$(STAMP): requirements-dev.txt
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet --require-hashes -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP)

$(NODE_STAMP): $(NODE_CLIENT)/package-lock.json
	cd $(NODE_CLIENT) && npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

# First start only: a private .env with a fresh secret key.
.env:
	@sed "s|^SECRET_KEY=.*|SECRET_KEY=$$(python3 -c 'import secrets; print(secrets.token_urlsafe(50))')|" .env.example > .env
	@echo "Created .env from .env.example (edit it to point at another PostgreSQL or Redis)."

run: venv .env
	@$(PYTHON) manage.py preflight
	$(PYTHON) manage.py migrate --noinput
	$(PYTHON) manage.py collectstatic --noinput --verbosity 0
	$(PYTHON) manage.py seed_demo
	@echo ""
	@echo "NotifyHub is starting:"
	@echo "  pages      http://127.0.0.1:$${PORT:-8000}/            (alice, bob, carol / notifyhub-demo)"
	@echo "  admin      http://127.0.0.1:$${PORT:-8000}/admin/      (admin / notifyhub-demo)"
	@echo "  API        http://127.0.0.1:$${PORT:-8000}/api/docs/  (guide: docs/api.md)"
	@echo "  WebSocket  ws://127.0.0.1:$${PORT:-8000}/ws/notifications/"
	@echo "  SignalR    http://127.0.0.1:$${PORT:-8000}/hubs/workflow      (guide: docs/signalr.md)"
	@echo "  Stop with Ctrl-C."
	@echo "  This is a demo (DEBUG, demo users with known passwords); production: docs/deploy.md."
	@echo ""
	@# --env /dev/null: honcho would put .env over the real environment; the processes read .env themselves
	@# (settings), where the real environment wins, as it did for preflight and migrate above.
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start --env /dev/null --port $${PORT:-8000}

# The browser tests drive this Chromium (Debian's package; .ci/run installs it when missing).
CHROMIUM_PATH ?= /usr/bin/chromium

test: venv $(NODE_STAMP)
	@test -x "$(CHROMIUM_PATH)" || { echo "make test: no Chromium at $(CHROMIUM_PATH) for the browser tests:" \
		"apt-get install chromium (Debian), or set CHROMIUM_PATH"; exit 1; }
	CHROMIUM_PATH="$(CHROMIUM_PATH)" DATABASE_URL="$(TEST_DATABASE_URL)" REDIS_URL="$(TEST_REDIS_URL)" $(BIN)/pytest $(PYTEST_ARGS)

$(BENCH_STAMP): bench/requirements.txt $(STAMP)
	$(PYTHON) -m pip install --quiet --require-hashes -r bench/requirements.txt
	touch $(BENCH_STAMP)

bench: venv $(BENCH_STAMP)
	$(PYTHON) -m bench --database-url "$(BENCH_DATABASE_URL)" --redis-url "$(BENCH_REDIS_URL)" $(BENCH_ARGS)

soak: venv
	$(PYTHON) -m bench.soak --database-url "$(SOAK_DATABASE_URL)" $(SOAK_ARGS)

# mypy's Django plugin loads the settings, which stop without SECRET_KEY: lint reads .env.example, never your .env.
lint: venv
	$(BIN)/ruff check .
	ENV_FILE=.env.example $(BIN)/mypy

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache .mypy_cache bench/results/logs bench/results/soak-logs $(NODE_CLIENT)/node_modules

# The lock files, regenerated from the .in files (pins and hashes of every package, for Python 3.11).
LOCK := $(BIN)/uv pip compile --quiet --generate-hashes --python-version 3.11 --custom-compile-command "make lock"
lock: venv
	$(LOCK) requirements/runtime.in -o requirements.txt
	$(LOCK) requirements/dev.in -o requirements-dev.txt
	$(LOCK) bench/requirements.in -c requirements-dev.txt -o bench/requirements.txt
