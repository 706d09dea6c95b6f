# Two commands do all the set-up on a fresh machine with Python 3.11 and make:
#   make demo   create .venv, install, run the ICP worked example end to end
#   make test   create .venv, install with test and spark extras, run the whole suite
#               (the Spark tests run when Java 17+ is installed, and skip saying so otherwise)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test install spark bench clean tables

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed-demo

# the demo needs the package and its run-time dependencies only (no test extras)
$(VENV)/.installed-demo: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	touch $@

install: $(VENV)/.installed

# PySpark (about 400 MB) for the Spark engine and its tests: `make test` installs it.
$(VENV)/.spark: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[test,spark]'
	touch $@

spark: $(VENV)/.spark

demo: $(VENV)/.installed-demo
	$(BIN)/python examples/icp/generate.py
	$(BIN)/costing run examples/icp/run.toml

test: install spark
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python benchmarks/bench_pricing.py --records 1000000

# Re-derive the shipped tables from ../shared/data with our own importers (maintainers only).
tables: install
	$(BIN)/python -m pip install --quiet -e '.[test,maintainers]'
	$(BIN)/python -m costing.importers.build_shipped

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
