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

.PHONY: run test client host node runtime-deps test-tools lint bench soak crash-soak clean

# What environments get besides their runtime, as Lambda includes its SDKs: strato finds them
# here (STRATO_RUNTIME_DEPS, default <venv>/strato-runtime-deps). The AWS SDK for Python is
# pinned: one pure-Python copy for every python3.X runtime, with bytecode for each of them.
RUNTIME_DEPS := $(VENV)/strato-runtime-deps
BOTO3_VERSION := 1.44.18

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

runtime-deps: $(RUNTIME_DEPS)/.boto3-$(BOTO3_VERSION) $(RUNTIME_DEPS)/nodejs/.installed
$(RUNTIME_DEPS)/.boto3-$(BOTO3_VERSION): $(BIN)/strato
	rm -rf $(RUNTIME_DEPS)/python $(RUNTIME_DEPS)/.boto3-*
	$(BIN)/pip install --quiet --no-compile --target $(RUNTIME_DEPS)/python \
		boto3==$(BOTO3_VERSION) botocore==$(BOTO3_VERSION)
	rm -rf $(RUNTIME_DEPS)/python/bin
	@$(BIN)/python -c 'import subprocess, sys; from strato.sandbox.interpreters import InterpreterRegistry; \
		found = InterpreterRegistry(); \
		[subprocess.run([python, "-m", "compileall", "-q", sys.argv[1]], check=False) \
		 for version in ("3.10", "3.11", "3.12", "3.13") if (python := found.find(version))]' \
		$(RUNTIME_DEPS)/python
	chmod -R a+rX $(RUNTIME_DEPS)
	touch $@

# What the tests need beyond Python: Go, to build a custom runtime's bootstrap from source;
# curl, which fetches function URLs as users do.
test-tools:
	@command -v go >/dev/null || apt-get install -y -q golang-go >/dev/null 2>&1 || \
		(apt-get update -q >/dev/null 2>&1 && apt-get install -y -q golang-go >/dev/null 2>&1) || \
		echo "golang-go could not be installed: the Go custom runtime test is skipped"
	@command -v curl >/dev/null || apt-get install -y -q curl >/dev/null 2>&1 || \
		echo "curl could not be installed: the function URL tests that fetch with curl fail"

# Node.js for the nodejs*.x runtimes (Debian's nodejs package; other major versions: nvm, or
# STRATO_NODE_<major>=/path/to/node) and npm for the SDK below.
node:
	@command -v node >/dev/null && command -v npm >/dev/null || \
		(apt-get update -q >/dev/null 2>&1; apt-get install -y -q nodejs npm >/dev/null 2>&1) || \
		echo "Node.js could not be installed: the nodejs*.x runtimes are refused"

# What functions get without bundling it, as on Lambda: the AWS SDK for JavaScript v3 (its
# clients for the services strato serves and more), pinned, in $(RUNTIME_DEPS)/nodejs.
NODE_SDK := @aws-sdk/client-lambda@3.1178.0 @aws-sdk/client-sqs@3.1178.0 \
	@aws-sdk/client-sts@3.1178.0 @aws-sdk/client-iam@3.1178.0 \
	@aws-sdk/client-cloudwatch-logs@3.1178.0 @aws-sdk/client-sns@3.1178.0 \
	@aws-sdk/client-eventbridge@3.1178.0 @aws-sdk/client-s3@3.1178.0 \
	@aws-sdk/client-cloudwatch@3.1178.0 @aws-sdk/client-kinesis@3.1143.0 \
	@aws-sdk/client-dynamodb@3.1178.0
runtime-deps: $(RUNTIME_DEPS)/nodejs/.installed
$(RUNTIME_DEPS)/nodejs/.installed: Makefile | node
	mkdir -p $(RUNTIME_DEPS)/nodejs
	@if command -v npm >/dev/null && \
		npm install --quiet --no-audit --no-fund --prefix $(RUNTIME_DEPS)/nodejs $(NODE_SDK); then \
		chmod -R a+rX $(RUNTIME_DEPS)/nodejs && touch $@; \
	else echo "the AWS SDK for JavaScript could not be installed: Node.js functions get none"; fi

run: $(BIN)/strato host runtime-deps
	@echo "strato commands: $(BIN)/strato (. $(BIN)/activate puts it on PATH); other terminals: STRATO_ENDPOINT=http://$(HOST):$(PORT)"
	$(if $(ADMIN),STRATO_ADMIN_CREDENTIALS=$(ADMIN) )$(BIN)/strato serve --host $(HOST) --port $(PORT) --data-dir $(DATA)

test: $(VENV)/.dev host runtime-deps test-tools
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/mypy --config-file mypy-guest.ini
	$(BIN)/python -m pytest -q

bench: $(VENV)/.dev runtime-deps
	@command -v wrk >/dev/null || apt-get install -y -q wrk >/dev/null 2>&1 || \
		echo "wrk is not installed: throughput is measured with the (heavier) asyncio client"
	$(BIN)/python bench/invoke_bench.py
	$(BIN)/python bench/streaming_bench.py
	$(BIN)/python bench/sqs_bench.py
	$(BIN)/python bench/async_bench.py
	$(BIN)/python bench/scale_bench.py
	$(BIN)/python bench/node_cold_start_bench.py
	$(BIN)/python bench/url_bench.py
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
