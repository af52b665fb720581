# The two commands: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test check lint typecheck unit bench serve clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/ipgw demo

serve: $(STAMP)
	$(BIN)/ipgw serve

test: check
	$(BIN)/pytest -q

check: lint typecheck

lint: $(STAMP)
	$(BIN)/ruff check gateway adapters mappings tests bench
	$(BIN)/ruff format --check gateway adapters mappings tests bench

typecheck: $(STAMP)
	$(BIN)/mypy gateway mappings adapters

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

bench: $(STAMP)
	$(BIN)/python bench/e2e.py

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
