# Two commands on a fresh machine: `make run` serves the service, `make test` passes the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8080
WORKERS ?= 2

.PHONY: install run test lint format clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: setup.cfg setup.py | $(BIN)/activate
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[postgresql,test]'
	touch $@

install: $(VENV)/.installed

run: install
	$(BIN)/flask --app wsgi db upgrade
	@if [ -z "$$BOOTSTRAP_API_KEY" ]; then \
	  echo "No BOOTSTRAP_API_KEY set. To get an api key, either restart with"; \
	  echo "  BOOTSTRAP_API_KEY=<a long random secret> make run"; \
	  echo "or, in another terminal:"; \
	  echo "  $(BIN)/flask --app wsgi api-key create --name admin --permission AccessControl.ClientCreate ..."; \
	fi
	@echo "Serving on http://$(HOST):$(PORT) (Ctrl-C to stop)"
	$(BIN)/gunicorn --bind $(HOST):$(PORT) --workers $(WORKERS) wsgi:app

test: install
	$(BIN)/ruff check app tests migrations wsgi.py
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check app tests migrations wsgi.py
	$(BIN)/ruff format --check app tests migrations wsgi.py

format: install
	$(BIN)/ruff format app tests migrations wsgi.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

# Load test under gunicorn with wrk (bench/run.py; README "Benchmarks"). BENCH_* variables
# configure it; wrk comes from Debian's packages.
.PHONY: bench
bench: install
	@command -v wrk >/dev/null 2>&1 || apt-get install -y wrk || \
	  (apt-get update && apt-get install -y wrk)
	$(BIN)/python bench/run.py

# Instructions per request, counted by valgrind's callgrind: steady on a shared machine
# (bench/instructions.py; README "Benchmarks").
.PHONY: bench-instructions
bench-instructions: install
	@command -v valgrind >/dev/null 2>&1 || apt-get install -y valgrind || \
	  (apt-get update && apt-get install -y valgrind)
	$(BIN)/python bench/instructions.py

# Schema-driven fuzzing with schemathesis against gunicorn (tests/fuzz; README "API
# documentation"): every operation of /openapi.json, seed and examples per operation in
# tests/fuzz/schemathesis.toml; on PostgreSQL too when TEST_DATABASE_URL is set.
.PHONY: fuzz
fuzz: install
	FUZZ=1 $(BIN)/pytest -s -q tests/fuzz/test_fuzz.py $(PYTEST_ARGS)
