# BCFL: two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
export PATH := $(CURDIR)/$(VENV)/bin:$(CURDIR)/node_modules/.bin:$(PATH)

.PHONY: demo demo-platform test test-fast lint format compile check-artifacts gas fuzz bench-web bench bench-tables setup clean-demo

setup: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements.txt
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q -U pip
	$(PIP) install -q -r requirements.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

var:
	mkdir -p var

## Bring the platform up on embedded defaults (SQLite, anvil, local workers) and play the whole story (a funded
## task, 8 honest + 2 malicious participants, 3 rounds, settlement, licence and NFT sales, payouts; 2 to 3 minutes),
## print its summary and leave the site running. Ctrl-C stops it.
demo: setup var
	DJANGO_SETTINGS_MODULE=bcfl_site.settings.local $(PY) manage.py migrate --noinput
	DJANGO_SETTINGS_MODULE=bcfl_site.settings.local $(PY) manage.py play_demo --platform

## The platform alone, without the story (`manage.py play_demo` in another terminal plays it). Ctrl-C stops it.
demo-platform: setup var
	DJANGO_SETTINGS_MODULE=bcfl_site.settings.local $(PY) manage.py migrate --noinput
	DJANGO_SETTINGS_MODULE=bcfl_site.settings.local $(VENV)/bin/honcho -f Procfile start

## The whole test suite (DATABASE_URL selects PostgreSQL; SQLite otherwise): fast tests on 2 workers,
## then the slow end-to-end tests one at a time (each runs many processes of its own).
test: setup
	$(PY) contracts/compile.py --check
	$(PY) -m pytest -q -n 2 -p no:cacheprovider -m "not slow"
	$(PY) -m pytest -q -p no:cacheprovider -m slow

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

compile: setup
	$(PY) contracts/compile.py

check-artifacts: setup
	$(PY) contracts/compile.py --check

gas: setup
	$(PY) benchmarks/gas.py

## Web latency/throughput on PostgreSQL (127.0.0.1:5432) with 10,000 models: gunicorn + locust, ~3 minutes.
bench-web: setup
	$(PY) benchmarks/web.py

## Every benchmark in benchmarks/, each in a bounded quick mode (gas in full: it takes seconds), then the
## README's tables from benchmarks/results/*.json. Quick runs write *-quick.json (git-ignored) and print their
## tables; the README keeps the published runs' numbers. BENCH_FULL=1 runs the published configurations
## instead (about 45 minutes on 2 cores) and so updates the tables. BENCH_WEB=: skips the web benchmark
## (it needs PostgreSQL on 127.0.0.1:5432).
BENCH_FULL ?=
BENCH_WEB ?= $(PY) benchmarks/web.py
QUICK := $(if $(BENCH_FULL),,--quick)
WEB_QUICK := $(if $(BENCH_FULL),,--models 1000 --seconds 5 --no-write)
bench: setup
	$(PY) benchmarks/gas.py
	$(PY) benchmarks/contribution.py $(QUICK)
	$(PY) benchmarks/robustness.py $(QUICK)
	$(PY) benchmarks/fl_overhead.py $(QUICK)
	$(BENCH_WEB) $(WEB_QUICK)
	$(MAKE) --no-print-directory bench-tables

## Rewrite README.md's benchmark tables from benchmarks/results/*.json (no benchmark is run).
bench-tables: setup
	$(PY) benchmarks/readme_tables.py
	$(PY) benchmarks/robustness.py --readme

## The StakeToken property test (hypothesis state machine on anvil) with 10,000 sequences instead of CI's 200.
FUZZ_EXAMPLES ?= 10000
fuzz: setup
	STAKE_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest -q -p no:cacheprovider --durations=1 \
		tests/contracts/solidity/test_stake_properties.py

clean-demo:
	rm -rf var
