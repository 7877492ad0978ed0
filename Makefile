# Two commands do all set-up on a fresh machine: `make run` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
# Test processes per pass (pytest-xdist): each starts its own servers; most tests wait on them.
TEST_WORKERS ?= 2

.PHONY: run test bench lint format deps clean client translations messages

$(VENV)/.installed: requirements.txt requirements-dev.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

# The map page (indoor/client): npm installs MapLibre (and axe-core, for the accessibility tests
# only: never copied to dist/) from the committed lock file, the build
# copies the page and MapLibre's files into indoor/client/dist/ (served at / and /assets/).
CLIENT := indoor/client
$(CLIENT)/node_modules/.package-lock.json: $(CLIENT)/package.json $(CLIENT)/package-lock.json
	@bash scripts/system-deps.sh
	cd $(CLIENT) && npm ci --no-audit --no-fund --loglevel=error
$(CLIENT)/dist/index.html: $(CLIENT)/node_modules/.package-lock.json $(CLIENT)/build.mjs $(wildcard $(CLIENT)/src/*)
	cd $(CLIENT) && npm run --silent build

client: $(CLIENT)/dist/index.html

# The words (indoor/translations, README "Languages"): every .po compiled to its .mo before the
# service runs or is tested, so no catalogue is ever stale. pybabel skips a fuzzy catalogue
# without failing: the check after it does fail.
PO := $(wildcard indoor/translations/*/LC_MESSAGES/*.po)
MO := $(PO:.po=.mo)
%.mo: %.po $(VENV)/.installed
	@$(VENV)/bin/pybabel compile -i $< -o $@ -l $(word 3,$(subst /, ,$<)) >/dev/null
	@test -f $@ && touch $@ || { echo "$< was not compiled (fuzzy?): fix it and rerun" >&2; exit 1; }
translations: $(MO)

# After changing words in the code: extract the templates and merge them into every catalogue.
messages: $(VENV)/.installed
	$(VENV)/bin/pybabel extract -F babel.cfg --no-location --omit-header -o indoor/translations/messages.pot .
	$(VENV)/bin/pybabel extract -F babel-page.cfg --no-location --omit-header -o indoor/translations/page.pot .
	$(VENV)/bin/pybabel update -i indoor/translations/messages.pot -d indoor/translations -D messages --no-fuzzy-matching
	$(VENV)/bin/pybabel update -i indoor/translations/page.pot -d indoor/translations -D page --no-fuzzy-matching

deps:
	@bash scripts/system-deps.sh

run: deps $(VENV)/.installed client translations
	$(PY) scripts/run.py

# Twice: the service connected directly, then (all but the slow fault tests, which bring their
# own servers) through a real pgbouncer in transaction pooling mode.
test: $(VENV)/.installed client translations
	@bash scripts/system-deps.sh --test
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)
	INDOOR_TEST_PGBOUNCER=1 $(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadfile -m "not slow" $(PYTEST_ARGS)

bench: $(VENV)/.installed client translations
	@bash scripts/system-deps.sh --bench
	$(PY) -m bench

# locustfile.py headless against `make run`'s server for a short time (LOADTEST_TIME, 30s): the summary.
.PHONY: loadtest
loadtest: deps $(VENV)/.installed client translations
	$(PY) scripts/loadtest.py

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.installed
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	-$(PY) -c "from scripts.services import PostgresCluster as C; C('.data/pg').stop()" 2>/dev/null
	rm -rf .data $(VENV) $(CLIENT)/node_modules $(CLIENT)/dist
