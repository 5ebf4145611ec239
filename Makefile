# Two commands for a fresh machine:
#   make demo   install (venv + package) and run the main job on the embedded example data
#   make test   install (with the probe and dev extras) and run the test suite
PYTHON ?= $(shell scripts/find-python.sh)
VENV   ?= .venv
BIN     = $(VENV)/bin
PIP     = $(BIN)/python -m pip
DEMO_OUT ?= demo-out
PYTEST_ARGS ?=
# Two pytest workers, each test file on one (its module fixtures built once), the slowest files first
# (tests/conftest.py): much of the suite is single-threaded (compiling models, Python), so two files overlap on
# 2 cores (BENCHMARKS.md, "The test suite's wall time").
PYTEST_WORKERS ?= -n 2 --dist loadfile --no-loadscope-reorder

.PHONY: demo test install install-dev models example-data long-data notebooks clean

$(BIN)/python:
	@test -n "$(PYTHON)" || (echo "no Python >= 3.12 found (see the message above)"; exit 1)
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) install -q -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(PIP) install -q -e ".[dev,probe]"
	@touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

demo: $(VENV)/.installed
	$(BIN)/bayes-dcpt demo --out $(DEMO_OUT)

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest $(PYTEST_WORKERS) $(PYTEST_ARGS)

# Regenerate the embedded example grid (real CPU probes; ~25 min on 2 shared cores) and its record
example-data: $(VENV)/.installed-dev
	$(BIN)/python scripts/make_example_data.py --workers 2 --threads 1

# The long-CPT probe grid (2 domains x 3 sizes x 7 ratios, 2^21 CPT tokens; ~35 min on 2 cores, 2 h when shared)
long-data: $(VENV)/.installed-dev
	$(BIN)/python scripts/make_example_data.py --grid long --workers 2 --threads 1

# Execute every notebook (jupytext percent text -> executed .ipynb + notebooks/figures/*.png, both regenerated)
NB_QUICK ?= 0
notebooks: $(VENV)/.installed-dev
	$(BIN)/python scripts/run_notebooks.py $(if $(filter 1,$(NB_QUICK)),--quick,)

models: $(VENV)/.installed
	$(BIN)/python scripts/build_models.py

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache build/example build/long
