# One entry point for the portal: install, run, test, lint, export, bench.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test lint format export bench bench-rest bench-graphql clean

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

DEMO_SCALE ?= 0.02

## Serve http://$(HOST):$(PORT) on the embedded SQLite database: reference data, the 2019 census
## totals and the synthetic demo register (a small scale so that it starts in well under a minute).
run: install
	$(BIN)/portal geography load > /dev/null
	$(BIN)/portal ingest census2019 > /dev/null
	$(BIN)/portal demo --scale $(DEMO_SCALE) > /dev/null
	$(BIN)/portal serve --host $(HOST) --port $(PORT)

## The whole suite (SQLite; PostgreSQL and Redis too when PORTAL_TEST_DATABASE_URL/REDIS_URL are set).
test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy app auth connectors schema tests bench

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## Write the contracts checked by the tests: openapi/openapi.json and schema/schema.graphql.
export: install
	$(BIN)/python -m app.contracts

## Benchmarks (one command each; figures and ratios printed).
bench: install
	$(BIN)/python -m bench.release_build

## GraphQL against datasette-graphql on the same cells (datasette runs from its own venv under var/).
bench-graphql: install
	$(BIN)/python -m bench.graphql

## REST /v1/data against a bare ASGI app and Datasette, SQLite and PostgreSQL (needs wrk; PostgreSQL at
## 127.0.0.1:5432, or BENCH_REST_ARGS=--no-postgres). Datasette goes into its own venv, var/bench-venv.
bench-rest: install
	$(BIN)/python -m bench.rest_api $(BENCH_REST_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
