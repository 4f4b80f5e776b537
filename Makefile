PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
LOCK := requirements.lock
# The virtualenv is made for one Python: another one (or a new lock file) gets a fresh virtualenv.
PYTHON_VERSION := $(shell $(PYTHON) -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null)
STAMP := $(VENV)/.installed-$(PYTHON_VERSION)

.DEFAULT_GOAL := help
.PHONY: help test lint typecheck demo bench soak lock clean

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): $(LOCK) pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "archi3d needs Python 3.11 or newer; $(PYTHON) is " + sys.version.split()[0] + " (make PYTHON=python3.11 ...)")'
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r $(LOCK)
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

lint: $(STAMP) ## ruff: lint and formatting
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP) ## mypy --strict on src, tests and bench
	$(PY) -m mypy

test: lint typecheck ## lint, types, then the tests with their coverage
	$(PY) -m pytest -q --cov=archi3d --cov-report=term:skip-covered

soak: $(STAMP) ## the long reliability runs (crash loop, concurrency soaks)
	$(PY) -m pytest -q -m soak

demo: $(STAMP) ## build a demo workspace and consolidate it
	rm -rf demo-workspace
	$(VENV)/bin/archi3d demo --workspace demo-workspace
	$(VENV)/bin/archi3d consolidate --workspace demo-workspace --run-id demo-run
	@echo
	@echo "table: demo-workspace/tables/generations.csv"
	@echo "log:   demo-workspace/logs/metrics.log"

bench: $(STAMP) ## the benchmark (consolidate and upserts against their I/O floors)
	$(PY) bench/bench.py

lock: $(STAMP) ## pin the newest versions pyproject.toml allows into requirements.lock
	$(PY) -m piptools compile --quiet --extra dev --generate-hashes --strip-extras --allow-unsafe \
		--output-file $(LOCK) pyproject.toml

clean: ## remove the virtualenv, the demo workspace and the caches
	rm -rf $(VENV) demo-workspace .mypy_cache .pytest_cache .ruff_cache .hypothesis .coverage
