"""The AWS CLI and the ``strato`` CLI against a server; state surviving a restart."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.conftest import make_zip
from tests.e2e.conftest import ROLE, CreateFunction, StratoServer, client_for, start_server, stop_server
from tests.support.waiting import wait_until


def _aws(endpoint: str, *args: str) -> dict[str, Any]:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_DEFAULT_REGION": "us-east-1"}
    out = subprocess.run(
        [sys.executable, "-m", "awscli", "--endpoint-url", endpoint, "--output", "json", *args],
        check=True, capture_output=True, text=True, env=env,
    ).stdout
    return json.loads(out) if out.strip() else {}


def test_aws_cli_create_and_invoke_with_tail(strato: StratoServer, function_name: str, tmp_path: Path) -> None:
    package = tmp_path / "hello.zip"
    package.write_bytes(make_zip({"app.py": "def handler(event, context):\n    print('hi')\n    return event\n"}))
    created = _aws(strato.endpoint, "lambda", "create-function", "--function-name", function_name,
                   "--runtime", "python3.11", "--handler", "app.handler",
                   "--zip-file", f"fileb://{package}", "--role", ROLE)
    assert created["FunctionName"] == function_name
    _aws(strato.endpoint, "lambda", "wait", "function-active-v2", "--function-name", function_name)
    out = tmp_path / "out.json"
    result = _aws(strato.endpoint, "lambda", "invoke", "--function-name", function_name,
                  "--payload", '{"a":1}', "--log-type", "Tail", str(out))
    assert result["StatusCode"] == 200 and result["ExecutedVersion"] == "$LATEST"
    assert json.loads(out.read_text()) == {"a": 1}
    log = base64.b64decode(result["LogResult"]).decode()
    assert log.startswith("START RequestId:") and "\nhi\n" in log and "REPORT RequestId:" in log
    _aws(strato.endpoint, "lambda", "delete-function", "--function-name", function_name)


def test_strato_logs_prints_the_function_log(
    strato: StratoServer, lambda_client: Any, create_function: CreateFunction, function_name: str
) -> None:
    create_function({"app.py": "def handler(event, context):\n    print('marker-line-42')\n"})
    request_id = lambda_client.invoke(FunctionName=function_name)["ResponseMetadata"]["RequestId"]
    logs = client_for(strato.endpoint, "logs")
    # The log writer stores in batches; ask the API until the REPORT line is there.
    wait_until(lambda: any(e["message"].startswith(f"REPORT RequestId: {request_id}") for e in logs.filter_log_events(
        logGroupName=f"/aws/lambda/{function_name}")["events"]), "the REPORT line", timeout=10)
    printed = subprocess.run(
        [sys.executable, "-m", "strato.cli.main", "logs", function_name, "--endpoint-url", strato.endpoint],
        check=True, capture_output=True, text=True,
        env={**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"},
    ).stdout.splitlines()
    assert f"START RequestId: {request_id} Version: $LATEST" in printed
    assert "marker-line-42" in printed
    assert f"END RequestId: {request_id}" in printed
    assert "" not in printed  # a message's own newline ends its line: no blank line after it
    streams = logs.describe_log_streams(logGroupName=f"/aws/lambda/{function_name}")["logStreams"]
    assert len(streams) == 1 and "[$LATEST]" in streams[0]["logStreamName"]


def test_strato_logs_reads_the_functions_log_group(
    strato: StratoServer, lambda_client: Any, create_function: CreateFunction, function_name: str
) -> None:
    """A function given its own LogGroup: ``strato logs`` reads that group."""
    group = f"custom/{function_name}"
    create_function({"app.py": "def handler(event, context):\n    print('in-my-group')\n"},
                    LoggingConfig={"LogGroup": group})
    request_id = lambda_client.invoke(FunctionName=function_name)["ResponseMetadata"]["RequestId"]
    logs = client_for(strato.endpoint, "logs")
    wait_until(lambda: any(e["message"].startswith(f"REPORT RequestId: {request_id}")
                           for e in logs.filter_log_events(logGroupName=group)["events"]),
               "the REPORT line", timeout=10)
    printed = subprocess.run(
        [sys.executable, "-m", "strato.cli.main", "logs", function_name, "--endpoint-url", strato.endpoint],
        check=True, capture_output=True, text=True,
        env={**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"},
    ).stdout.splitlines()
    assert "in-my-group" in printed


def test_state_survives_a_restart(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data")
    try:
        client = client_for(server.endpoint)
        client.create_function(FunctionName="persisted", Runtime="python3.11", Role=ROLE,
                               Handler="app.handler",
                               Code={"ZipFile": make_zip({"app.py": "def handler(e, c):\n    return 'still here'\n"})})
        client.get_waiter("function_active_v2").wait(FunctionName="persisted")
    finally:
        stop_server(server)
    server = start_server(tmp_path / "data")
    try:
        client = client_for(server.endpoint)
        assert client.get_function(FunctionName="persisted")["Configuration"]["State"] == "Active"
        response = client.invoke(FunctionName="persisted")
        assert json.loads(response["Payload"].read()) == "still here"
    finally:
        stop_server(server)


def test_idle_environments_are_reaped_after_keep_alive(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", "--keep-alive", "0.3")
    try:
        client = client_for(server.endpoint)
        client.create_function(FunctionName="reaped", Runtime="python3.11", Role=ROLE, Handler="app.handler",
                               Code={"ZipFile": make_zip({"app.py": "import os\ndef handler(e, c):\n    return os.environ['AWS_LAMBDA_LOG_STREAM_NAME']\n"})})
        client.get_waiter("function_active_v2").wait(FunctionName="reaped")
        first = json.loads(client.invoke(FunctionName="reaped")["Payload"].read())
        assert json.loads(client.invoke(FunctionName="reaped")["Payload"].read()) == first  # warm
        time.sleep(1.0)  # the behaviour under test is the passing of idle time
        again = client.invoke(FunctionName="reaped", LogType="Tail")
        assert json.loads(again["Payload"].read()) != first
        assert "Init Duration" in base64.b64decode(again["LogResult"]).decode()
    finally:
        stop_server(server)
