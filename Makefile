# Railfleet defect service. `make run` to develop, `make test` to check everything.
# Only python3 (3.11+), make and node/npm are assumed; the rest is installed here.

VENV    := .venv
PY      := $(VENV)/bin/python
RUN_STAMP := $(VENV)/.installed-run
STAMP   := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench
DENO    := node_modules/.bin/deno
CHROMIUM := /usr/bin/chromium
PORT    ?= 8000
COUNTER_PORT ?= 8888

.DEFAULT_GOAL := help
.PHONY: help install run test test-fast lint typecheck format check serve bench bench-latency clean

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(PY):
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade "pip>=25.1"

# Re-installs only when pyproject.toml changes, so repeated runs are fast.
# Running needs the dependencies and the `run` group (honcho) only; the tests
# and tools (the `dev` group: Playwright, mypy, schemathesis...) come with `make test`.
$(RUN_STAMP): pyproject.toml | $(PY)
	$(VENV)/bin/pip install --quiet --editable . --group run
	touch $@

$(STAMP): $(RUN_STAMP)
	$(VENV)/bin/pip install --quiet --editable . --group dev
	touch $@

# The benchmarks' own group (plots, profiler): only `make bench` needs it.
$(BENCH_STAMP): $(STAMP)
	$(VENV)/bin/pip install --quiet --group bench
	touch $@

# Deno (for counters_server.js) comes from the npm registry, pinned in package-lock.json.
$(DENO): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(STAMP) $(DENO)  ## Install everything: Python (with the dev group) and Deno

# railfleet/devrun.py: honcho, which closing the terminal (SIGHUP) stops as Ctrl-C does.
run: $(RUN_STAMP) $(DENO)  ## Serve the app (debug) with the dispatcher and the counter server
	$(PY) manage.py migrate --no-input
	$(PY) manage.py ensure_dev_admin
	PORT=$(PORT) COUNTER_PORT=$(COUNTER_PORT) COUNTER_SERVER_URL=http://127.0.0.1:$(COUNTER_PORT)/ \
		$(PY) -m railfleet.devrun --procfile Procfile.dev start

# Production shape (docs/production.md): debug off, gunicorn workers
# and the broadcast dispatcher (Procfile, run by honcho), static files collected
# for WhiteNoise. DJANGO_SECRET_KEY comes from the environment, else from
# .secret_key, generated once (untracked, readable by its owner only).
SERVE_ENV = DJANGO_DEBUG=0 \
	DJANGO_SECRET_KEY="$${DJANGO_SECRET_KEY:-$$(cat .secret_key)}" \
	DJANGO_ALLOWED_HOSTS="$${DJANGO_ALLOWED_HOSTS:-localhost,127.0.0.1}"

serve: $(RUN_STAMP)  ## Serve the production shape: gunicorn, dispatcher, debug off
	@test -n "$$DJANGO_SECRET_KEY" || test -s .secret_key || \
		(umask 077 && $(PY) -c "import secrets; print(secrets.token_urlsafe(50))" > .secret_key)
	$(SERVE_ENV) $(PY) manage.py collectstatic --no-input --verbosity 0
	$(SERVE_ENV) $(PY) manage.py migrate --no-input
	$(SERVE_ENV) PORT=$(PORT) $(PY) -m railfleet.devrun --procfile Procfile start

# The same tools and versions as .pre-commit-config.yaml (pinned in the dev group).
lint: $(STAMP)  ## ruff lint and format check, django-upgrade --check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	git ls-files -z '*.py' | xargs -0 $(VENV)/bin/django-upgrade --target-version 5.2 --check

typecheck: $(STAMP)  ## mypy with django-stubs and djangorestframework-stubs (pyproject.toml)
	$(VENV)/bin/mypy

format: $(STAMP)  ## Reformat the code
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# The browser tests drive Debian's chromium, never a downloaded browser. A
# missing browser is an installation failure, never a skipped test.
$(CHROMIUM):
	@[ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null || { \
		echo "$(CHROMIUM) is missing: install it with 'sudo apt-get install chromium'" >&2; exit 1; }
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
	@test -x $@

test: install lint typecheck $(CHROMIUM)  ## Run the whole test suite (lint, mypy and browser tests included)
	$(PY) manage.py makemigrations --check --dry-run
	$(VENV)/bin/pytest

# No browser, no end-to-end processes, nothing that starts manage.py or make, no
# fuzzing: the quick loop while editing. `make test-fast ARGS=--lf` reruns the last failures.
test-fast: install  ## The suite without browser, end-to-end, subprocess and fuzz tests
	$(VENV)/bin/pytest -n 2 -m "not browser and not e2e and not subprocess and not fuzz" $(ARGS)

# wrk (the load generator) comes from Debian's apt, installed here when missing.
bench: install $(BENCH_STAMP)  ## Benchmarks: write BENCHMARKS.md (also on PostgreSQL if DATABASE_URL names one)
	@command -v wrk >/dev/null || { SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq wrk; }
	$(PY) -m bench.run
	$(PY) -m bench.report

bench-latency: install $(BENCH_STAMP)  ## Delivery latency at a steady 20 defects/s (the bench's own databases)
	$(PY) -m bench.run --only steady_latency

# The chaos soak (docs/reliability.md): SOAK_SECONDS (180) of load and seeded faults
# (SOAK_SEED) against gunicorn, 2 dispatchers and the counter server, then the ledger.
.PHONY: soak
soak: install  ## Chaos soak and ledger check: SQLite, and PostgreSQL if DATABASE_URL names one
	$(PY) -m soak

clean:  ## Remove the virtualenv, node_modules and the development database
	rm -rf $(VENV) node_modules db.sqlite3 db.sqlite3-wal db.sqlite3-shm db.sqlite3-writelock staticfiles
	rm -rf var  # the counter server's data file under make run (Procfile.dev)
