# Maestro — two commands: `make demo` and `make test`. Everything else is a convenience.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

export NUMBA_CACHE_DIR := $(CURDIR)/$(VENV)/numba_cache
export DAGSTER_HOME    := $(CURDIR)/.dagster_home
export MPLBACKEND      := Agg
export PYTHONWARNINGS  := ignore::DeprecationWarning

.PHONY: setup demo test lint test-real test-browser test-faults test-cluster test-all ui bench validate clean-lake clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@mkdir -p $(NUMBA_CACHE_DIR) $(DAGSTER_HOME)
	@test -f $(DAGSTER_HOME)/dagster.yaml || printf 'telemetry:\n  enabled: false\n' > $(DAGSTER_HOME)/dagster.yaml
	@touch $(STAMP)

## Materialize the whole graph on the embedded market and print the leaderboard.
demo: $(STAMP)
	$(BIN)/maestro demo

## Unit, Dagster and end-to-end tests (no network, no external data).
test: $(STAMP)
	$(BIN)/python -m pytest -m "not real_data and not browser and not faults and not cluster" $(PYTEST_ARGS)

## ruff (rules and line length in pyproject.toml) over the code and the tests.
lint: $(STAMP)
	$(BIN)/ruff check maestro_pipeline assets resources tests

## Tests on real exchange candles; needs MAESTRO_DATASETS (e.g. ../shared/datasets).
test-real: $(STAMP)
	@test -n "$(MAESTRO_DATASETS)" || { echo "MAESTRO_DATASETS is not set: point it at a folder of real candles, e.g. MAESTRO_DATASETS=../shared/datasets make test-real" >&2; exit 2; }
	$(BIN)/python -m pytest -m real_data $(PYTEST_ARGS)

## The fault tier: kill -9 of a real `maestro demo` at several moments and a re-run equal to a clean run, Ctrl-C,
## crafted bad configs (docs/faults.md; 20-30 minutes on a busy 2-core machine: seven demo runs).
test-faults: $(STAMP)
	$(BIN)/python -m pytest -m faults tests/faults $(PYTEST_ARGS)

## The Dagster UI in a real browser (Playwright + the system chromium at /usr/bin/chromium; screenshots in
## artifacts/screenshots or MAESTRO_SCREENSHOT_DIR).
test-browser: $(STAMP)
	$(BIN)/python -m pytest -m browser -s $(PYTEST_ARGS)

## Team mode on one machine (docs/team.md): a real PostgreSQL and Redis (Debian's postgresql and redis-server),
## dagster-daemon and two Celery workers. The team extra (the same dagster pin as .venv, plus dagster-postgres,
## dagster-celery, celery, redis) goes into an overlay venv on top of .venv ($(TEAM_VENV)), so .venv stays the
## one-machine install the other tiers test.
TEAM_VENV := .venv-team
test-cluster: $(STAMP)
	@test -x $(TEAM_VENV)/bin/python || { $(PYTHON) -m venv $(TEAM_VENV) && \
	  $(BIN)/python -c 'import site; print(site.getsitepackages()[0])' \
	    > $$($(TEAM_VENV)/bin/python -c 'import site; print(site.getsitepackages()[0])')/zz_base_venv.pth; }
	$(TEAM_VENV)/bin/pip install --quiet -e '.[team]'
	PATH=$(CURDIR)/$(TEAM_VENV)/bin:$$PATH $(TEAM_VENV)/bin/python -m pytest -m cluster $(PYTEST_ARGS)

## Start the Dagster UI on 127.0.0.1:3000 (PORT=… to change) and `maestro serve` (tearsheets, Data Docs) beside it.
## `dg` (Dagster's CLI) reads the project from [tool.dg] in pyproject.toml; VIRTUAL_ENV tells it .venv is active.
ui: $(STAMP)
	$(BIN)/maestro instance
	@mkdir -p data_lake
	$(BIN)/maestro serve & SERVE=$$!; trap "kill $$SERVE" EXIT INT TERM; \
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(BIN)/dg dev -h 127.0.0.1 -p $${PORT:-3000}

## The configuration (maestro check-config) and the Dagster definitions it builds (dg check defs).
validate: $(STAMP)
	$(BIN)/maestro check-config
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(BIN)/dg check defs

bench: $(STAMP)
	$(BIN)/python -m maestro_pipeline.bench $(BENCH_ARGS)

clean-lake:
	rm -rf data_lake/*/ data_lake/*.duckdb .dagster_home

clean: clean-lake
	rm -rf $(VENV) $(TEAM_VENV)
