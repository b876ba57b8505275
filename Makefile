# platewatch: every target bootstraps .venv from pyproject.toml first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CONFIG ?= config/platewatch.toml

.PHONY: demo test run bench lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/platewatch demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

run: $(STAMP)
	$(BIN)/platewatch run --config $(CONFIG)

bench: $(STAMP)
	$(BIN)/python -m bench.fit
	$(BIN)/python -m bench.analyze
	$(BIN)/python -m bench.qc_rates
	$(BIN)/python -m bench.latency
	$(BIN)/python -m bench.torture

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) var build *.egg-info
