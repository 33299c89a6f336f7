# Loupe: `make demo` runs the app locally with its demo project; `make test` runs every check CI runs.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test

.PHONY: demo test lint install serve clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Loupe needs Python 3.11, found " + sys.version.split()[0]'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	mkdir -p var
	DEBUG=1 $(PY) manage.py migrate --noinput
	DEBUG=1 $(PY) manage.py setup_demo --url http://$(HOST):$(PORT)
	$(MAKE) --no-print-directory serve

# Web server and task worker together; Ctrl+C stops both.
serve: $(VENV)/.installed
	@echo "Loupe is at http://$(HOST):$(PORT)/  (Ctrl+C stops the web server and the worker)"
	@DEBUG=1 $(PY) manage.py db_worker --interval 1 & worker=$$!; \
	trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
	DEBUG=1 $(PY) manage.py runserver $(HOST):$(PORT) --noreload

lint: $(VENV)/.installed
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports --no-logo --no-cache
	SECRET_KEY=lint DATABASE_URL=sqlite:///:memory: $(PY) manage.py makemigrations --check --dry-run
	@echo "== check --deploy with the production settings README.md documents =="
	SECRET_KEY=deploy-check-only-k2pv9qw4zm1n8b5c3r6t0y2u4i6o8p0a2s4d6f8g0h2j4 LOUPE_URL=https://loupe.example.com \
	  BEHIND_TLS_PROXY=1 DATABASE_URL=sqlite:///:memory: DEBUG=0 $(PY) manage.py check --deploy --fail-level WARNING

test: lint
	@if ! command -v chromium >/dev/null 2>&1; then \
	  echo "NOTE: chromium is not installed: browser tests will be skipped (apt-get install -y chromium)."; fi
	@echo "== review editor unit tests (node --test) =="
	@if command -v node >/dev/null 2>&1; then node --test tests/reviewer/js/; \
	elif [ -n "$$CI" ]; then echo "node is not installed: the review editor's unit tests cannot run"; exit 1; \
	else echo "NOTE: node is not installed: skipped the review editor's unit tests (tests/reviewer/js)."; fi
	@echo "== tests on SQLite =="
	$(PY) -m pytest -q
	@echo "== tests on PostgreSQL ($(TEST_DATABASE_URL)) =="
	@if $(PY) -c "import psycopg,sys; psycopg.connect(sys.argv[1], connect_timeout=3).close()" "$(TEST_DATABASE_URL)" 2>/dev/null; then \
	  DATABASE_URL="$(TEST_DATABASE_URL)" $(PY) -m pytest -q; \
	elif [ -n "$$CI" ]; then echo "PostgreSQL is not reachable at $(TEST_DATABASE_URL)"; exit 1; \
	else echo "NOTE: PostgreSQL is not reachable at $(TEST_DATABASE_URL): skipped the PostgreSQL run."; fi

clean:
	rm -rf $(VENV) var staticfiles
