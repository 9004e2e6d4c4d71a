# Two commands: `make demo` (the main job: `dla demo`) and `make test`; `make lint` for contributors. Each creates .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The local CPU build; installed before the package so no dependency pulls a newer torch.
TORCH := torch==2.13.0

# Run as root (CI) or through sudo: what installs the browser of the app's browser test.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test lint clean browser

demo: $(VENV)/.installed
	$(BIN)/dla demo

test: $(VENV)/.installed browser
	$(BIN)/python -m pytest

# Debian's Chromium and its driver, for tests/test_app.py (Selenium is pointed at these two files; no other browser
# is ever downloaded). Nothing to do when both are there; without apt-get the test is skipped, and says why.
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	elif command -v apt-get >/dev/null; then \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	else echo "no apt-get: install chromium and its driver to run tests/test_app.py"; fi

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests benchmarks hubconf.py
	$(BIN)/ruff format --check src tests benchmarks hubconf.py
	$(BIN)/mypy

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[dev,export,app]"
	touch $@

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
