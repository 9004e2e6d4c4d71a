# Two commands: `make demo` (the main job: `dla demo`) and `make test`; `make lint` for contributors. Each creates .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The local CPU build; installed before the package so no dependency pulls a newer torch.
TORCH := torch==2.13.0

.PHONY: demo test lint clean

demo: $(VENV)/.installed
	$(BIN)/dla demo

test: $(VENV)/.installed
	$(BIN)/python -m pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests benchmarks hubconf.py
	$(BIN)/ruff format --check src tests benchmarks hubconf.py
	$(BIN)/mypy

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[dev,export]"
	touch $@

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
