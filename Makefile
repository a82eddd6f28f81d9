# Two commands do all the set-up on a fresh Debian machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test setup graphviz browser lint bench gallery clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Python packages: the library, its test and example extras.
setup: $(BIN)/python graphviz browser
	$(BIN)/python -m pip install -q -e ".[test]"

# The Graphviz `dot` executable (macOS: brew install graphviz; conda: conda install graphviz).
graphviz:
	@command -v dot >/dev/null 2>&1 || { \
	  echo "installing Graphviz (dot) with apt-get"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq graphviz >/dev/null; }

# Debian's chromium and its driver, for the tests that load the HTML pages in a real browser
# (tests/browser/). Without them those tests skip, except in CI (CI=true), where they fail.
browser:
	@{ command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; } || { \
	  echo "installing chromium and chromium-driver with apt-get"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver \
	    >/dev/null || echo "could not install chromium: the browser tests will skip (CI: fail)"; }

demo: setup
	$(BIN)/python -m tinygraph demo

lint: setup
	$(BIN)/ruff check .

test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python benchmarks/run.py

gallery: setup
	$(BIN)/python viz/gallery.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .ruff_cache
