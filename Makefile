# make run   - create .venv, install requirements, apply migrations, serve http://127.0.0.1:5000/scim/v2
# make test  - the whole suite, on SQLite and then on a throwaway PostgreSQL that the tests start themselves
# make bench - the load benchmark against its floor (bench/run.py; BENCH_ARGS=--quick for a smoke run)
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python

.PHONY: run test test-sqlite test-postgresql bench clean

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

run: $(VENV)/.installed
	$(PY) manage.py db upgrade
	$(PY) app.py

test: test-sqlite test-postgresql

test-sqlite: $(VENV)/.installed
	TEST_DATABASE=sqlite $(PY) -m pytest

test-postgresql: $(VENV)/.installed
	TEST_DATABASE=postgresql $(PY) -m pytest

bench: $(VENV)/.installed
	$(PY) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) instance
