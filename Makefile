# Two commands do all set-up on a fresh machine: `make run` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: run test bench lint format deps clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

deps:
	@bash scripts/system-deps.sh

run: deps $(VENV)/.installed
	$(PY) scripts/run.py

# Twice: the service connected directly, then (all but the slow fault tests, which bring their
# own servers) through a real pgbouncer in transaction pooling mode.
test: $(VENV)/.installed
	@bash scripts/system-deps.sh --test
	$(VENV)/bin/pytest $(PYTEST_ARGS)
	INDOOR_TEST_PGBOUNCER=1 $(VENV)/bin/pytest -m "not slow" $(PYTEST_ARGS)

bench: $(VENV)/.installed
	@bash scripts/system-deps.sh --bench
	$(PY) -m bench

# locustfile.py headless against `make run`'s server for a short time (LOADTEST_TIME, 30s): the summary.
.PHONY: loadtest
loadtest: deps $(VENV)/.installed
	$(PY) scripts/loadtest.py

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.installed
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	-$(PY) -c "from scripts.services import PostgresCluster as C; C('.data/pg').stop()" 2>/dev/null
	rm -rf .data $(VENV)
