# The two commands of the README. Both work on a fresh machine with only python3: they make
# .venv themselves and reinstall when a requirements file changes.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test lint bench

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.run-deps: requirements.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-deps: requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.run-deps

# The README's commands (manage.py sync_ips, ...) read their settings from .env: make run writes one
# in development mode when there is none, and never touches one that exists.
.env:
	@printf '# Written by make run for the demo: development mode. For production see .env.example.\nDEBUG=1\n' > $@
	@echo "Wrote .env with DEBUG=1 (development mode), so that manage.py commands work as the README shows them."

# The demo: the ISPmanager emulator on :1500 (administrator root / ispmgr-demo) and the IPmanager
# emulator on :1501 (user billing / billing-demo), as load_demo configures them, a background
# worker, and the site on :8000. Ctrl-C stops all four. The emulators keep their data in var/, so that
# they and the database still agree after a restart.
run: export DEBUG ?= 1
run: export WEBHOOK_ALLOW_PRIVATE_ADDRESSES ?= 1
run: .env $(VENV)/.run-deps
	$(PY) manage.py migrate --noinput
	$(PY) manage.py load_demo
	$(PY) manage.py collectstatic --noinput -v0
	@echo "The panel emulators keep their accounts and addresses in var/ispmanager-demo.json and var/ipmanager-demo.json"
	@echo "across restarts; to start the demo afresh, stop it and delete those two files together with db.sqlite3."
	@$(PY) -m provisioning.ispmanager.emulator --port 1500 --admin root:ispmgr-demo --state var/ispmanager-demo.json & ispmanager=$$!; \
	$(PY) -m ipam_sync.ipmanager.emulator --port 1501 --admin admin:ipmgr-demo --state var/ipmanager-demo.json & ipmanager=$$!; \
	$(PY) manage.py db_worker --interval 1 --no-reload & worker=$$!; \
	trap 'kill $$ispmanager $$ipmanager $$worker 2>/dev/null' EXIT INT TERM; \
	$(PY) manage.py runserver 127.0.0.1:8000 --noreload

test: $(VENV)/.dev-deps
	$(PY) -m pytest

lint: $(VENV)/.dev-deps
	$(VENV)/bin/ruff check .
	DJANGO_SETTINGS_MODULE=tests.settings $(PY) manage.py makemigrations --check --dry-run

bench: $(VENV)/.dev-deps
	@for script in bench/*.py; do echo "== $$script"; $(PY) $$script || exit 1; done
