# Every target works on a fresh clone: the venv is created on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup up down plan test lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The main job: Prefect server and UI, sandbox, deployments and worker, then a run of the
# platform deployment; everything is left up to explore in the UI.
up: $(STAMP)
	$(BIN)/platformctl stack up

# Stop everything `make up` started.
down: $(STAMP)
	$(BIN)/platformctl stack down

plan: $(STAMP)
	$(BIN)/platformctl plan --env $(or $(ENV),sandbox)

# Two workers, a test file each at a time: the e2e modules mostly wait on their sandbox,
# so two at once take 620 s where one after another took 940 s (docs/measurements.md).
test: $(STAMP)
	$(BIN)/pytest -n 2 --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python -m tests.bench.bench_platform

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
