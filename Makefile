# The two commands of the README: `make study` (the main job) and `make test`.
# Both install skreg and its dependencies into .venv first (once).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SHARED_DATA := $(abspath ../shared/data)
export SKREG_DATA_HOME ?= $(if $(wildcard $(SHARED_DATA)/aclImdb_v1.tar.gz),$(SHARED_DATA),$(HOME)/skreg_data)

.PHONY: study test test-oldest bench clean docs

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test,plot,bench]"
	touch $@

study: $(BIN)/.installed
	$(BIN)/skreg study --output study_results $(STUDY_ARGS)

# Two test processes (pytest-xdist), each test file in one of them (its
# module fixtures made once): most tests trace small programs, one core's
# work each, so two share the 2-core machines (measured in one hour: 5:27
# against 7:30 in one process).
PYTEST_ARGS ?= -n 2 --dist loadfile

test: $(BIN)/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The same suite on the oldest versions pyproject.toml declares (Python 3.10
# where the machine has it; the libraries pinned by .ci/oldest.txt).
OLDEST_VENV := .venv-oldest
OLDEST_PYTHON ?= $(or $(firstword $(wildcard $(HOME)/.pyenv/versions/3.10*/bin/python3.10 \
	/usr/bin/python3.10 /usr/local/bin/python3.10)),$(PYTHON))

$(OLDEST_VENV)/bin/.installed: pyproject.toml .ci/oldest.txt
	$(OLDEST_PYTHON) -m venv $(OLDEST_VENV)
	$(OLDEST_VENV)/bin/pip install --quiet --upgrade pip
	$(OLDEST_VENV)/bin/pip install --quiet -c .ci/oldest.txt -e ".[test,plot]"
	touch $@

test-oldest: $(OLDEST_VENV)/bin/.installed
	$(OLDEST_VENV)/bin/python -m pytest $(PYTEST_ARGS)

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(OLDEST_VENV) study_results .pytest_cache

# The documentation site: HTML in docs/_build/html, offline, warnings as errors.
$(BIN)/.docs-installed: $(BIN)/.installed
	$(BIN)/pip install --quiet -e ".[docs]"
	touch $@

docs: $(BIN)/.docs-installed
	$(BIN)/sphinx-build -W --keep-going -b html docs docs/_build/html $(DOCS_ARGS)
