# The two commands of the README: `make run` and `make test`. Everything else is a helper.
PYTHON_BIN ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
KAIKU_DEMO ?= 1
KAIKU_WEB_PORT := $(PORT)
export HOST PORT KAIKU_DEMO KAIKU_WEB_PORT

.PHONY: run test test-slow test-fast test-db lint bench bench-quick install services stop clean

$(VENV)/.installed: requirements/base.txt requirements/test.txt
	@test -x $(PY) || $(PYTHON_BIN) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements/test.txt
	@touch $@

install: $(VENV)/.installed

services: install
	@$(PY) -m kaiku_ops.embedded start

run: services
	@$(PY) manage.py preflight
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py bootstrap_admin
	@$(PY) manage.py demo_procfile --output .data/Procfile.run
	@echo "Command Center: http://$(HOST):$(PORT)/admin/command-center/"
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/honcho start -f .data/Procfile.run -d . -p $(PORT)

# The suite but the tests marked slow (each starts whole stacks: `make run` itself, fault injection that kills
# PostgreSQL/Redis/workers, the incident drill); `make test-slow` runs those, and CI (.ci/run) runs both.
test: services
	$(PY) -m pytest --durations=25 -m "not slow"

test-slow: services
	$(PY) -m pytest --durations=10 -m slow

# The developer loop: everything but the browser and the end-to-end/reliability runs (real processes, faults).
# `make test` stays the whole suite.
test-fast: services
	$(PY) -m pytest -q -m "not e2e" --ignore=tests/e2e --ignore=tests/reliability tests

# The database-facing tests again, against the servers named by DATABASE_URL / REDIS_URL.
test-db: install
	$(PY) -m pytest -m "not e2e" tests

lint: install
	$(VENV)/bin/ruff check .

bench: install
	$(PY) -m bench.run_all

bench-quick: install
	$(PY) -m bench.run_all --quick

stop:
	@$(PY) -m kaiku_ops.embedded stop

clean: stop
	rm -rf .data
