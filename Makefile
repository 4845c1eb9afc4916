# Two commands: `make run` starts strato, `make test` runs the whole suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 9000
DATA   ?= .strato
# ACCESS_KEY_ID:SECRET of an administrator key (e.g. ADMIN=test:test); unset, the first start
# generates one and prints it once (`$(BIN)/strato credentials create` issues more).
ADMIN  ?=

.PHONY: run test client host lint bench soak crash-soak clean

$(BIN)/strato: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.dev: $(BIN)/strato
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# boto3 and the AWS CLI, for the README's examples.
client: $(VENV)/.client
$(VENV)/.client: $(BIN)/strato
	$(BIN)/pip install --quiet -e '.[client]'
	touch $@

# What the host needs beyond Python: nft (nftables) for functions' internet egress; a JDK
# (javac) to build strato's Java runtime client once and to compile the Java tests' handlers.
host:
	@command -v nft >/dev/null || apt-get install -y -q nftables >/dev/null 2>&1 || \
		(apt-get update -q >/dev/null 2>&1 && apt-get install -y -q nftables >/dev/null 2>&1) || \
		echo "nftables could not be installed: functions get no internet egress"
	@command -v javac >/dev/null || apt-get install -y -q openjdk-17-jdk-headless >/dev/null 2>&1 || \
		(apt-get update -q >/dev/null 2>&1 && (apt-get install -y -q openjdk-17-jdk-headless \
		|| apt-get install -y -q default-jdk-headless) >/dev/null 2>&1) || \
		echo "no JDK could be installed: the java17/java21/java25 runtimes are unavailable"

run: $(BIN)/strato host
	@echo "strato commands: $(BIN)/strato (. $(BIN)/activate puts it on PATH); other terminals: STRATO_ENDPOINT=http://$(HOST):$(PORT)"
	$(if $(ADMIN),STRATO_ADMIN_CREDENTIALS=$(ADMIN) )$(BIN)/strato serve --host $(HOST) --port $(PORT) --data-dir $(DATA)

test: $(VENV)/.dev host
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/mypy --config-file mypy-guest.ini
	$(BIN)/python -m pytest -q

bench: $(VENV)/.dev
	@command -v wrk >/dev/null || apt-get install -y -q wrk >/dev/null 2>&1 || \
		echo "wrk is not installed: throughput is measured with the (heavier) asyncio client"
	$(BIN)/python bench/invoke_bench.py
	$(BIN)/python bench/sqs_bench.py
	$(BIN)/python bench/async_bench.py
	$(BIN)/python bench/scale_bench.py
	$(BIN)/python bench/java_bench.py

# Thousands of invocations, some crashing, timing out or running out of memory: fails if the
# platform or what it leaves on the host grows (INVOCATIONS=2000 for a shorter run).
soak: $(VENV)/.dev
	$(BIN)/python bench/soak.py $(if $(INVOCATIONS),--invocations $(INVOCATIONS))

# SIGKILLs a server at random moments, LOOPS times (default 500), under asynchronous invokes and
# SQS messages, a share of them poison: fails if accepted work was lost (duplicates are counted).
crash-soak: $(VENV)/.dev
	$(BIN)/python bench/crash_soak.py $(if $(LOOPS),--loops $(LOOPS))

clean:
	rm -rf $(VENV) $(DATA) build *.egg-info src/*.egg-info
