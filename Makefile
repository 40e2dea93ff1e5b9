# Entry points: `make demo` runs the main job end to end, `make test` runs every test.
# Both set themselves up from nothing; everything else is a step they call.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV        ?= .venv
PY          := $(VENV)/bin/python
DBT         := $(VENV)/bin/dbt
SENDER      := $(VENV)/bin/sender
PYTEST      := $(VENV)/bin/pytest
STAMP       := $(VENV)/.installed

export DBT_PROFILES_DIR ?= $(CURDIR)
export DBT_DUCKDB_PATH  ?= $(CURDIR)/target/tiktok_outbox.duckdb
# Demo event-source ids: real deployments set these in their environment.
export TIKTOK_PIXEL_CODE             ?= CDEMOPIXEL00000000001
export TIKTOK_APP_ID                 ?= 7000000000000000001
export TIKTOK_OFFLINE_EVENT_SET_ID   ?= 7100000000000000001
export TIKTOK_CRM_EVENT_SET_ID       ?= 7200000000000000001

.PHONY: help setup setup-bench setup-snowflake test-snowflake snowflake-emulator system-deps demo-data build audit monitor demo test test-dbt test-integration test-python lint lint-python lint-sql lint-dbt clean fault-matrix bench test-postgres test-spark spark-server

help:
	@echo "make demo   - set up, generate demo data, build the outbox, deliver it to the local emulator"
	@echo "make test   - set up and run every test (dbt data + unit tests, the package's integration_tests, pytest)"
	@echo "make test-integration - integration_tests/: a project that installs this one as a package, built and tested"
	@echo "make build  - dbt build (seeds, models, data tests, unit tests)"
	@echo "make audit  - rebuild the audit models after a push; make monitor - run the monitors"
	@echo "make setup  - create .venv with the pinned dependencies and profiles.yml"
	@echo "make lint   - ruff over the Python code, sqlfluff over the SQL (dbt templater), the dbt project's rules (scripts/check_project.py)"
	@echo "make test-postgres - the dbt project and the sender on a throwaway PostgreSQL 15 cluster, and the cloud SQL renders"
	@echo "make test-spark - the dbt project (and the sender) on a local Spark through Spark Connect"
	@echo "make spark-server - a local Spark with a Spark Connect endpoint for the spark target (SPARK_REMOTE)"
	@echo "make test-snowflake - the dbt project and the sender on emulated Snowflake (fakesnow, in .venv-snowflake)"
	@echo "make snowflake-emulator - a local fakesnow server for the snowflake_emulated target (FAKESNOW_PORT)"
	@echo "make fault-matrix - every delivery fault scenario against the emulator, with the reconciliation table"
	@echo "make bench  - benchmark (BENCH_EVENTS=N, default 1,000,000): generate, dbt build, +1% rebuild, push vs one-event-per-request and vs drt (in .venv-bench)"

setup: $(STAMP) profiles.yml

$(STAMP): requirements.txt sender/pyproject.toml emulator/pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e sender
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e emulator
	touch $@

# Debian packages some tests drive: Chromium (the report renders in it), the PostgreSQL server
# (a throwaway cluster) and OpenJDK 17 (a local Spark). Installed when missing and run as root (CI,
# these machines); elsewhere the command to run is printed, and those tests skip, except under
# CI=true, where a skip fails.
system-deps:
	@missing=""; command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v java >/dev/null 2>&1 || missing="$$missing openjdk-17-jre-headless"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else \
		echo "missing system packages:$$missing (sudo apt-get install$$missing); tests that need them will skip"; \
	fi

profiles.yml: | profiles.example.yml
	cp profiles.example.yml profiles.yml

demo-data: setup
	$(PY) scripts/generate_demo_data.py --out seeds/demo

build: demo-data
	mkdir -p $(dir $(DBT_DUCKDB_PATH))
	$(DBT) build

# Audit models read the receipts: rebuild them after a push. Monitors gate on their own.
audit: setup
	$(DBT) build --selector audit

monitor: setup
	$(DBT) test --select tag:monitor

# The demo replays its last 8 days of scheduled builds and `sender push` against the emulator
# (scripts/demo_replay.py), so the monitors judge a deployment, not a first backfill.
demo: demo-data
	rm -f $(DBT_DUCKDB_PATH) $(DBT_DUCKDB_PATH).wal
	mkdir -p $(dir $(DBT_DUCKDB_PATH))
	$(PY) scripts/demo_push.py
	$(PY) scripts/show_outbox.py
	$(DBT) build --selector audit --quiet
	$(DBT) test --select tag:monitor --quiet && echo "all monitors pass"
	$(SENDER) report --out target/report.html
	@echo "open target/report.html (self-contained, works offline)"

# The dbt suite gets a warehouse of its own, so receipts of an earlier demo do not leak in.
test-dbt: export DBT_DUCKDB_PATH = $(CURDIR)/target/test/tiktok_outbox.duckdb
test-dbt: demo-data
	rm -rf $(dir $(DBT_DUCKDB_PATH)) && mkdir -p $(dir $(DBT_DUCKDB_PATH))
	$(DBT) build --full-refresh
	$(DBT) build --selector audit
	$(DBT) test --select tag:monitor

# integration_tests/: a project that installs this one as a package (packages.yml, `local: ../`;
# `dbt deps` links it, no network), the way an analytics engineer adds it to theirs. It loads the
# demo data (var tiktok_load_demo_data), checks that a plain build selects no audit model and no
# monitor, builds, then runs the audit and the monitors with var tiktok_enable_audit, as README,
# "Installing it as a package", tells a user to.
IT_DBT := cd integration_tests && $(abspath $(DBT))
test-integration: export DBT_DUCKDB_PATH = $(CURDIR)/target/integration/tiktok_outbox.duckdb
test-integration: demo-data
	rm -rf $(dir $(DBT_DUCKDB_PATH)) && mkdir -p $(dir $(DBT_DUCKDB_PATH))
	$(IT_DBT) deps --quiet
	@selected="$$($(IT_DBT) ls --select tag:audit tag:monitor --output name --quiet)"; \
	if [ -n "$$selected" ]; then echo "a plain build of an installing project selects the audit: $$selected" >&2; exit 1; fi
	$(IT_DBT) build
	$(IT_DBT) build --select tag:audit --vars '{tiktok_enable_audit: true}'
	$(IT_DBT) test --select tag:monitor --vars '{tiktok_enable_audit: true}'

# pytest exits 5 when it collected nothing: that is a broken suite, not a pass. The suite runs on
# PYTEST_WORKERS processes (pytest-xdist; whole modules per worker, see tests/python/conftest.py).
PYTEST_WORKERS ?= 2
test-python: setup
	@$(PYTEST) tests/python -n $(PYTEST_WORKERS) --durations=15; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$rc

test: setup system-deps setup-snowflake
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory test-dbt
	$(MAKE) --no-print-directory test-integration
	$(MAKE) --no-print-directory test-python

fault-matrix: setup
	$(PY) scripts/fault_matrix.py

# The benchmark's peer, drt (requirements-bench.txt), lives in a virtualenv of its own,
# .venv-bench, so that its dependencies never touch the project's .venv.
BENCH_EVENTS ?= 1000000
BENCH_VENV   ?= .venv-bench
BENCH_STAMP  := $(BENCH_VENV)/.installed

setup-bench: $(BENCH_STAMP)

$(BENCH_STAMP): requirements-bench.txt
	test -x $(BENCH_VENV)/bin/python || python3 -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-bench.txt
	touch $@

bench: setup setup-bench
	$(PY) scripts/bench.py --events $(BENCH_EVENTS) --bench-venv $(BENCH_VENV)

# PostgreSQL 15: the dbt build and the sender (tests/python/sender/test_postgres_*.py) on a
# throwaway cluster the tests start and stop, and the cross-warehouse SQL. Without PostgreSQL's
# server binaries they say so and skip; under CI=true that is a failure.
test-postgres: setup system-deps
	@$(PYTEST) tests/python/test_postgres_build.py tests/python/sender/test_postgres_*.py \
		tests/python/test_cross_db_rendering.py; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$rc

# One step per linter; `lint` runs them all. Part of `make test`.
lint: lint-python lint-sql lint-dbt

lint-python: setup
	$(VENV)/bin/ruff check sender emulator scripts tests/python

# sqlfluff over the models, singular tests, monitors and analyses as dbt compiles them (the dbt
# templater, .sqlfluff: the house style). It compiles against a warehouse of its own that nothing
# builds, so every model is linted as a full build renders it (is_incremental() false), whatever
# the demo's warehouse holds.
lint-sql: demo-data
	mkdir -p target/lint
	DBT_DUCKDB_PATH=$(CURDIR)/target/lint/never_built.duckdb \
		$(VENV)/bin/sqlfluff lint models tests analyses --processes 2 --disable-progress-bar

# The dbt project's rules (scripts/check_project.py, README "Project rules") over the manifest of a
# `dbt parse` of its own (target/lint), so the sender's target/manifest.json is left alone.
lint-dbt: setup
	$(DBT) parse --quiet --target-path target/lint
	$(PY) scripts/check_project.py --manifest target/lint/manifest.json

clean:
	rm -rf target logs $(VENV) $(SNOWFLAKE_VENV) $(BENCH_VENV) seeds/demo/*.csv

# Spark 4 (pyspark's jars, OpenJDK 17): the dbt build and the sender through Spark Connect on a
# local server the tests start and stop (tests/python/spark_fixtures.py). Without Java they say so
# and skip; under CI=true that is a failure.
test-spark: setup system-deps
	@$(PYTEST) tests/python/test_spark_build.py tests/python/sender/test_spark_push.py \
		tests/python/sender/test_spark_profiles.py; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$rc

# A local Spark Connect server for `dbt build --target spark` and `sender push --target spark`:
# tables and metastore under target/spark. Stop it with Ctrl-C.
SPARK_PORT ?= 15002
spark-server: setup system-deps
	$(PY) scripts/spark_server.py --dir target/spark --port $(SPARK_PORT)

# Snowflake, emulated: dbt-snowflake against fakesnow (scripts/snowflake_emulator.py), a local
# server speaking Snowflake's HTTP protocol over DuckDB. fakesnow pins a DuckDB other than the
# project's, so both live in a virtualenv of their own, .venv-snowflake (requirements-snowflake.txt).
# The sender reaches the emulator through the ADBC Snowflake driver of the project's .venv.
# Without .venv-snowflake the Snowflake tests skip; under CI=true that is a failure.
SNOWFLAKE_VENV  ?= .venv-snowflake
SNOWFLAKE_STAMP := $(SNOWFLAKE_VENV)/.installed
FAKESNOW_PORT   ?= 8085

setup-snowflake: $(SNOWFLAKE_STAMP) profiles.yml

$(SNOWFLAKE_STAMP): requirements-snowflake.txt
	test -x $(SNOWFLAKE_VENV)/bin/python || python3 -m venv $(SNOWFLAKE_VENV)
	$(SNOWFLAKE_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-snowflake.txt
	touch $@

test-snowflake: setup setup-snowflake
	@$(PYTEST) tests/python/test_snowflake_emulated.py tests/python/sender/test_snowflake_*.py; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$rc

# Serves until Ctrl-C; then, in another shell:
#   FAKESNOW_PORT=8085 .venv-snowflake/bin/dbt build --target snowflake_emulated
snowflake-emulator: setup-snowflake
	$(SNOWFLAKE_VENV)/bin/python scripts/snowflake_emulator.py --port $(FAKESNOW_PORT)
