# Two commands do all the set-up on a fresh Debian machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test deps setup graphviz browser torch lint bench gallery clean

# A virtual environment (Debian's python3 needs its python3-venv package for that).
$(BIN)/python:
	@$(PY) -m venv $(VENV) 2>/dev/null || { \
	  echo "installing python3-venv with apt-get"; rm -rf $(VENV); \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq python3-venv >/dev/null && \
	  $(PY) -m venv $(VENV); }
	$(BIN)/python -m pip install -q --upgrade pip

# Python packages: the library with its test and example extras, and Graphviz.
deps: $(BIN)/python graphviz
	$(BIN)/python -m pip install -q -e ".[test]"

setup: deps browser torch

# PyTorch for tinygraph.pytorch and its tests (the "torch" extra). PyPI's Linux wheel brings
# NVIDIA's CUDA libraries along (about 2.6 GB of downloads, 4.7 GB installed; under 2 minutes
# on a fast line); tinygraph runs it on the CPU. Without it those tests skip, except in CI.
torch: deps
	$(BIN)/python -m pip install -q -e ".[torch]"

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

demo: deps
	$(BIN)/python -m tinygraph demo

lint: deps
	$(BIN)/ruff check .

test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -rs -n auto

bench: deps
	$(BIN)/python benchmarks/run.py

gallery: deps
	$(BIN)/python viz/gallery.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .ruff_cache
