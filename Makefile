# Two commands: `make run` starts strato, `make test` runs the whole suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 9000
DATA   ?= .strato

.PHONY: run test lint bench clean

$(BIN)/strato: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.dev: $(BIN)/strato
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

run: $(BIN)/strato
	$(BIN)/strato serve --host $(HOST) --port $(PORT) --data-dir $(DATA)

test: $(VENV)/.dev
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

bench: $(VENV)/.dev
	@command -v wrk >/dev/null || apt-get install -y -q wrk >/dev/null 2>&1 || \
		echo "wrk is not installed: throughput is measured with the (heavier) asyncio client"
	$(BIN)/python bench/invoke_bench.py

clean:
	rm -rf $(VENV) $(DATA) build *.egg-info src/*.egg-info
