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
        services-logs strip site clean bench docker-check student classroom-drill

help:
	@echo "make lab             set up what is missing, start Redis + Kafka + JupyterLab (127.0.0.1:8888)"
	@echo "                     on your own copies of the notebooks, in workspace/ (git-ignored)"
	@echo "make restore NB=03   put your copy of notebook 03 back to the course version (yours kept in .backup/)"
	@echo "make test            set up what is missing, start the services, run every test"
	@echo "make services-up | services-down | services-status | services-logs"
	@echo "make strip           remove outputs from the notebooks before committing"
	@echo "make site            execute every notebook into site/ (rendered HTML that needs no network)"
	@echo "make classroom-drill 5 learners at once on the shared servers: Run All of every shared-server notebook"
	@echo "                     each (LEARNERS=n; REDIS_URL / KAFKA_BOOTSTRAP point it at the room's servers)"
	@echo "make student         the learner copies of every notebook in student/ (OUT=dir; SOLUTIONS=1 adds solutions/)"
	@echo "make bench           course figures beside redis-benchmark and Kafka's perf tools -> bench/results.md"
	@echo "make clean           stop the services and delete .course/ (data, logs, jars)"
	@echo "make docker-check    build and run the Docker image, measure it (needs Docker; DOCKER_CHECK_ARGS=--stand-in)"

setup: $(STAMP)

$(STAMP): pyproject.toml
	@$(STAGE) "python environment ($(VENV))" bash -c '\
	  set -e; \
	  if ! $(PYTHON) -c "import sys; sys.exit(sys.version_info < (3, 10))" 2>/dev/null; then \
	    echo "Python 3.10 or newer is needed: install python3 (e.g. sudo apt-get install python3 python3-venv)"; exit 1; fi; \
	  d=$(VENV); test -e $$d || d=$(CURDIR); \
	  if [ ! -w $$d ]; then \
	    echo "cannot set up $(VENV): $$d is not writable by $$(id -un) (uid $$(id -u)); it belongs to uid $$($(PYTHON) -c "import os, sys; print(os.stat(sys.argv[1]).st_uid)" $$d). Give the folder to this user (e.g. sudo chown -R $$(id -u) $(CURDIR)) or work in a clone you own."; exit 1; fi; \
	  test -x $(PY) || $(PYTHON) -m venv $(VENV) || { $(PYTHON) -c "import ensurepip" 2>/dev/null \
	    && echo "python3 -m venv failed (its error is above)" \
	    || echo "python3 -m venv failed: install python3-venv (sudo apt-get install python3-venv)"; exit 1; }; \
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

docker-check: setup
	@$(STAGE) "Docker check (build, run, notebooks 00 + 02, stop, restart, Dev Container)" $(PY) tools/docker_check.py $(DOCKER_CHECK_ARGS)

classroom-drill: services-up
	@$(STAGE) "classroom drill ($(or $(LEARNERS),5) learners, Run All)" $(PY) tools/classroom_drill.py --full --learners $(or $(LEARNERS),5)

student: setup
	@$(PY) tools/student.py --out "$(or $(OUT),student)" $(if $(filter 1 yes true,$(SOLUTIONS)),--solutions)

bench: services-up
	@$(STAGE) "bench: course figures beside the native tools (bench/results.csv, bench/results.md)" \
	  $(PY) tools/bench.py

clean: services-down
	rm -rf .course site test-artifacts
