VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test demo bench soak typecheck clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

typecheck: $(STAMP)
	$(PY) -m mypy

test: typecheck
	$(PY) -m pytest -q

soak: $(STAMP)
	$(PY) -m pytest -q -m soak

demo: $(STAMP)
	rm -rf demo-workspace
	$(VENV)/bin/archi3d demo --workspace demo-workspace
	$(VENV)/bin/archi3d consolidate --workspace demo-workspace --run-id demo-run
	@echo
	@echo "table: demo-workspace/tables/generations.csv"
	@echo "log:   demo-workspace/logs/metrics.log"

bench: $(STAMP)
	$(PY) bench/bench.py

clean:
	rm -rf $(VENV) demo-workspace .mypy_cache .pytest_cache .hypothesis
