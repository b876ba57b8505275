# platewatch: every target bootstraps .venv from pyproject.toml first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CONFIG ?= config/platewatch.toml
PEERS  ?= .venv-peers
PEERS_STAMP := $(PEERS)/.installed

.PHONY: demo test run bench lint clean peers

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The cross-check and benchmark peers (allotropy, flowio, fcsparser, FlowCal, FlowKit) in
# their own environment: they pin older pandas than platewatch runs on.
$(PEERS_STAMP): bench/peers/requirements.txt
	test -x $(PEERS)/bin/python || $(PYTHON) -m venv $(PEERS)
	$(PEERS)/bin/python -m pip install --quiet --upgrade pip
	$(PEERS)/bin/python -m pip install --quiet -r bench/peers/requirements.txt
	$(PEERS)/bin/python -m pip install --quiet --no-deps fcsparser==0.2.8
	touch $(PEERS_STAMP)

peers: $(PEERS_STAMP)

demo: $(STAMP)
	$(BIN)/platewatch demo

test: $(STAMP) $(PEERS_STAMP)
	HYPOTHESIS_PROFILE=ci PLATEWATCH_PEERS_PYTHON=$(abspath $(PEERS))/bin/python PLATEWATCH_REQUIRE_PEERS=1 $(BIN)/python -m pytest -q -n 2 --dist loadfile

run: $(STAMP)
	$(BIN)/platewatch run --config $(CONFIG)

bench: $(STAMP) $(PEERS_STAMP)
	$(BIN)/python -m bench.fit
	$(BIN)/python -m bench.analyze
	$(BIN)/python -m bench.qc_rates
	$(BIN)/python -m bench.latency
	$(BIN)/python -m bench.torture
	$(BIN)/python -m bench.parse
	$(BIN)/python -m bench.cli
	$(BIN)/python -m bench.screen
	$(BIN)/python -m bench.fcs
	$(BIN)/python -m bench.web
	$(BIN)/python -m bench.timecourse
	$(BIN)/python -m bench.reprocess
	$(BIN)/python -m bench.fuzz_formats
	$(BIN)/python -m bench.fuzz_fcs

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) $(PEERS) var build *.egg-info
