# make run   - create .venv, install the server's requirements, apply migrations, serve http://127.0.0.1:5000/scim/v2
#              with a webhook delivery worker beside it (python manage.py events deliver)
# make test  - the whole suite, on SQLite, then on a throwaway PostgreSQL that the tests start themselves, then
#              through a throwaway PgBouncer in transaction pooling mode in front of it
# make lint  - ruff over the whole tree (settings in pyproject.toml)
# make bench - the load benchmark against its floor, sync then gthread workers (bench/run.py;
#              BENCH_ARGS=--quick for a smoke run, BENCH_ARGS="--worker-class sync" for one class)
# make lock  - regenerate requirements.txt (server) and requirements-dev.txt (tests, lint) from pyproject.toml,
#              keeping every pin they already hold
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python

.PHONY: run test test-sqlite test-postgresql test-pgbouncer lint bench lock clean

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt $(VENV)/.installed
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

run: $(VENV)/.installed
	$(PY) manage.py db upgrade
	$(PY) manage.py events deliver & worker=$$!; trap 'kill $$worker 2>/dev/null' EXIT; $(PY) app.py

test: test-sqlite test-postgresql test-pgbouncer

test-sqlite: $(VENV)/.installed-dev
	TEST_DATABASE=sqlite $(PY) -m pytest

test-postgresql: $(VENV)/.installed-dev
	TEST_DATABASE=postgresql $(PY) -m pytest

test-pgbouncer: $(VENV)/.installed-dev
	TEST_DATABASE=pgbouncer $(PY) -m pytest

lint: $(VENV)/.installed-dev
	$(PY) -m ruff check .

bench: $(VENV)/.installed
	$(PY) bench/run.py $(BENCH_ARGS)

# requirements-dev.txt is constrained to requirements.txt, so the two always agree on the server's pins.
lock: $(VENV)/.installed-dev
	$(VENV)/bin/pip-compile --no-emit-find-links --no-emit-index-url --no-emit-trusted-host \
		--output-file=requirements.txt --strip-extras pyproject.toml
	$(VENV)/bin/pip-compile --constraint=requirements.txt --extra=dev --no-emit-find-links --no-emit-index-url \
		--no-emit-trusted-host --output-file=requirements-dev.txt --strip-extras pyproject.toml

clean:
	rm -rf $(VENV) instance
