# Streams Lab. The two commands: `make lab` (open the course) and `make test` (run every test).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
STAGE  := tools/stage
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help setup lab restore test test-helpers test-notebooks services-up services-down services-status \
        services-logs strip site clean bench

help:
	@echo "make lab             set up what is missing, start Redis + Kafka + JupyterLab (127.0.0.1:8888)"
	@echo "                     on your own copies of the notebooks, in workspace/ (git-ignored)"
	@echo "make restore NB=03   put your copy of notebook 03 back to the course version (yours kept in .backup/)"
	@echo "make test            set up what is missing, start the services, run every test"
	@echo "make services-up | services-down | services-status | services-logs"
	@echo "make strip           remove outputs from the notebooks before committing"
	@echo "make site            execute every notebook into site/ (rendered HTML that needs no network)"
	@echo "make bench           course figures beside redis-benchmark and Kafka's perf tools -> bench/results.md"
	@echo "make clean           stop the services and delete .course/ (data, logs, jars)"

setup: $(STAMP)

$(STAMP): pyproject.toml
	@$(STAGE) "python environment ($(VENV))" bash -c '\
	  set -e; \
	  if ! $(PYTHON) -c "import sys; sys.exit(sys.version_info < (3, 10))" 2>/dev/null; then \
	    echo "Python 3.10 or newer is needed: install python3 (e.g. sudo apt-get install python3 python3-venv)"; exit 1; fi; \
	  test -x $(PY) || $(PYTHON) -m venv $(VENV) || { echo "python3 -m venv failed: install python3-venv (sudo apt-get install python3-venv)"; exit 1; }; \
	  $(PY) -m pip install -q --disable-pip-version-check -U pip; \
	  $(PY) -m pip install -q --disable-pip-version-check -e ".[dev]"; \
	  rm -f $(VENV)/.installed-*; touch $@'

services-up: setup
	@$(STAGE) "services (Redis + Kafka)" $(PY) -m helpers.services up

services-down:
	@test -x $(PY) && $(PY) -m helpers.services down || echo "nothing to stop (no $(VENV) yet)"

services-status: setup
	@$(PY) -m helpers.services status

services-logs: setup
	@$(PY) -m helpers.services logs

lab: setup
	@$(STAGE) "services (Redis + Kafka + JupyterLab)" $(PY) -m helpers.services up --lab

restore: setup
	@test -n "$(NB)" || { echo "say which notebook: make restore NB=03"; exit 2; }
	@$(PY) -m helpers.workspace restore $(NB)

# two passes (tools/run_tests.py): the tests not marked `serial` on $(TEST_WORKERS) pytest-xdist
# workers, then the `serial` ones one at a time; one summary at the end. TEST_WORKERS=0: no xdist.
TEST_WORKERS ?= 3

test: services-up
	@$(STAGE) "tests (helpers + every notebook)" $(PY) tools/run_tests.py --workers $(TEST_WORKERS)

test-helpers: services-up
	@$(PY) tools/run_tests.py --workers $(TEST_WORKERS) -m "not notebook"

test-notebooks: services-up
	@$(PY) tools/run_tests.py --workers $(TEST_WORKERS) -m notebook

strip: setup
	@$(PY) tools/strip_notebooks.py notebooks

site: services-up
	@$(STAGE) "render notebooks into site/ (offline: charts as inline SVG)" $(PY) tools/build_site.py --out site

bench: services-up
	@$(STAGE) "bench: course figures beside the native tools (bench/results.csv, bench/results.md)" \
	  $(PY) tools/bench.py

clean: services-down
	rm -rf .course site test-artifacts
