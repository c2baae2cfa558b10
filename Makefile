# Two commands on a fresh machine:  `make demo`  and  `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: install demo test test-unit test-slow bench deployments server

$(BIN)/synth: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# CPU build of torch first (a local file here); the project's torch range is then satisfied.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev]"
	# anonymeter pins numpy<1.27 / pyarrow<22 in its metadata but runs on numpy 2: its real
	# requirements are in pyproject.toml; install it alone, without its pins.
	$(BIN)/pip install --quiet --no-deps "anonymeter==1.1.0"
	touch $(BIN)/synth

install: $(BIN)/synth

demo: install
	$(BIN)/synth demo

test: install
	$(BIN)/python -m pytest

test-unit: install  # the fast inner loop: unit tests only (no Prefect server, no end-to-end runs)
	$(BIN)/python -m pytest tests/unit

test-slow: install
	$(BIN)/python -m pytest -m slow

bench: install
	$(BIN)/python bench/tabular.py

# prefect.yaml from the job files (a test fails when they drift apart).
deployments: install
	$(BIN)/synth deployments data/jobs --write prefect.yaml

# A long-lived local Prefect server: `export PREFECT_API_URL=http://127.0.0.1:4200/api`
# and every `synth run` skips starting the embedded one.
server: install
	$(BIN)/prefect server start --host 127.0.0.1 --port 4200
