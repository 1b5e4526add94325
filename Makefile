# Two entry points: `make demo` (the main job) and `make test` (lint + the suite on both backends).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Test processes per backend (pytest-xdist; a module's tests stay in one process, so its
# fixtures are built once). 2 matches CI's 2 cores; 0 runs in this process.
PYTEST_WORKERS ?= 2

.PHONY: demo test lint venv clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) -m nasnet_tf demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# The JAX half shares one compilation cache, new for each run and removed after it: the
# tests (and the commands they start) compile many of the same small models (925 -> 883 s
# in one hour's A/B on the 2-core machine).
test: lint
	KERAS_BACKEND=tensorflow $(PY) -m pytest -q -p no:cacheprovider -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)
	cache=$$(mktemp -d) && trap 'rm -rf "$$cache"' EXIT && \
	  KERAS_BACKEND=jax JAX_COMPILATION_CACHE_DIR=$$cache JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0 \
	  $(PY) -m pytest -q -p no:cacheprovider -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) *.egg-info
