"""Invoke semantics, driven by boto3 against a real strato server and real environments."""

from __future__ import annotations

import base64
import json
import re
import threading
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.e2e.conftest import CreateFunction

ECHO = {"app.py": "def handler(event, context):\n    return event\n"}


def _invoke(client: Any, name: str, payload: Any = None, **kwargs: Any) -> tuple[dict[str, Any], Any]:
    body = json.dumps(payload).encode() if payload is not None else b""
    response = client.invoke(FunctionName=name, Payload=body, **kwargs)
    raw = response["Payload"].read()
    return response, json.loads(raw) if raw else None


def _tail(response: dict[str, Any]) -> str:
    return base64.b64decode(response["LogResult"]).decode()


def test_sync_invoke_returns_the_handler_result(lambda_client: Any, create_function: CreateFunction,
                                                function_name: str) -> None:
    create_function(ECHO)
    response, payload = _invoke(lambda_client, function_name, {"a": 1, "s": "quote's \"x\" 🥳"})
    assert response["StatusCode"] == 200
    assert response["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in response
    assert payload == {"a": 1, "s": "quote's \"x\" 🥳"}
    for value in (True, False, [1, 2], 1, "text"):
        assert _invoke(lambda_client, function_name, value)[1] == value
    assert lambda_client.invoke(FunctionName=function_name, Payload=b"null")["Payload"].read() == b"null"
    _, empty = _invoke(lambda_client, function_name)
    assert empty == {}


def test_context_and_environment_as_on_lambda(lambda_client: Any, create_function: CreateFunction,
                                              function_name: str) -> None:
    create_function({"app.py": (
        "import os\n"
        "def handler(event, context):\n"
        "    return {'ctx': {k: str(getattr(context, k)) for k in ('function_name', 'function_version',\n"
        "        'invoked_function_arn', 'memory_limit_in_mb', 'aws_request_id', 'log_group_name',\n"
        "        'log_stream_name')}, 'remaining': context.get_remaining_time_in_millis(),\n"
        "        'client_context': context.client_context and context.client_context.custom,\n"
        "        'env': dict(os.environ)}\n")}, Timeout=7, Environment={"Variables": {"MY_VAR": "v"}})
    context = base64.b64encode(json.dumps({"custom": {"k": "v"}}).encode()).decode()
    response, payload = _invoke(lambda_client, function_name, {}, ClientContext=context)
    ctx, env = payload["ctx"], payload["env"]
    assert ctx["function_name"] == function_name and ctx["function_version"] == "$LATEST"
    assert ctx["invoked_function_arn"] == f"arn:aws:lambda:us-east-1:000000000000:function:{function_name}"
    assert ctx["memory_limit_in_mb"] == "128"
    assert ctx["aws_request_id"] == response["ResponseMetadata"]["RequestId"]
    assert ctx["log_group_name"] == f"/aws/lambda/{function_name}"
    assert re.fullmatch(r"\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}", ctx["log_stream_name"])
    assert 5000 < payload["remaining"] <= 7000
    assert payload["client_context"] == {"k": "v"}
    assert env["MY_VAR"] == "v" and env["_HANDLER"] == "app.handler"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == function_name
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "128"
    assert env["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.11"
    assert env["AWS_REGION"] == "us-east-1" and "AWS_LAMBDA_RUNTIME_API" in env
    assert env["LAMBDA_TASK_ROOT"]


def test_function_error_is_200_with_unhandled(lambda_client: Any, create_function: CreateFunction,
                                              function_name: str) -> None:
    create_function({"app.py": "def handler(event, context):\n    raise ValueError('Handler fails')\n"})
    response, payload = _invoke(lambda_client, function_name, {})
    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "ValueError" and payload["errorMessage"] == "Handler fails"
    assert payload["requestId"] == response["ResponseMetadata"]["RequestId"]
    assert any("app.py" in frame and "in handler" in frame for frame in payload["stackTrace"])


@pytest.mark.parametrize(
    ("files", "handler", "error_type", "message"),
    [
        (ECHO, "missing.handler", "Runtime.ImportModuleError",
         "Unable to import module 'missing': No module named 'missing'"),
        (ECHO, "app.nope", "Runtime.HandlerNotFound", "Handler 'nope' missing on module 'app'"),
        ({"app.py": "raise Exception('Runtime startup fails')\n"}, "app.handler", "Exception",
         "Runtime startup fails"),
    ],
)
def test_init_errors(lambda_client: Any, create_function: CreateFunction, function_name: str,
                     files: dict[str, str], handler: str, error_type: str, message: str) -> None:
    create_function(files, handler=handler)
    response, payload = _invoke(lambda_client, function_name, {})
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == error_type and payload["errorMessage"] == message
    # A fresh environment tries INIT again on the next invoke, with the same outcome.
    assert _invoke(lambda_client, function_name, {})[1]["errorType"] == error_type


def test_nested_handler_path(lambda_client: Any, create_function: CreateFunction, function_name: str) -> None:
    create_function({"pkg/__init__.py": "", "pkg/sub/__init__.py": "",
                     "pkg/sub/mod.py": "def handler(e, c):\n    return 'nested'\n"},
                    handler="pkg/sub/mod.handler")
    assert _invoke(lambda_client, function_name, {})[1] == "nested"


def test_tail_log_has_start_end_report(lambda_client: Any, create_function: CreateFunction,
                                       function_name: str) -> None:
    create_function({"app.py": (
        "import logging\nlogger = logging.getLogger()\nlogger.setLevel(logging.INFO)\n"
        "def handler(event, context):\n    print('hello from print')\n"
        "    logger.info('hello from logging')\n    return 1\n")})
    cold, _ = _invoke(lambda_client, function_name, {}, LogType="Tail")
    request_id = cold["ResponseMetadata"]["RequestId"]
    lines = _tail(cold).splitlines()
    assert lines[0] == f"START RequestId: {request_id} Version: $LATEST"
    assert "hello from print" in lines
    assert any(re.fullmatch(rf"\[INFO\]\t\S+Z\t{request_id}\thello from logging", line) for line in lines)
    assert lines[-2] == f"END RequestId: {request_id}"
    assert re.fullmatch(
        rf"REPORT RequestId: {request_id}\tDuration: \d+\.\d\d ms\tBilled Duration: \d+ ms\t"
        r"Memory Size: 128 MB\tMax Memory Used: \d+ MB\tInit Duration: \d+\.\d\d ms\t", lines[-1])
    warm, _ = _invoke(lambda_client, function_name, {}, LogType="Tail")
    assert "Init Duration" not in _tail(warm).splitlines()[-1]
    noisy = create_function({"app.py": "def handler(e, c):\n    print('x' * 10000)\n"},
                            name=function_name + "-noisy")
    response, _ = _invoke(lambda_client, noisy["FunctionName"], {}, LogType="Tail")
    assert len(base64.b64decode(response["LogResult"])) <= 4096


def test_warm_environment_keeps_globals_and_tmp(lambda_client: Any, create_function: CreateFunction,
                                                function_name: str) -> None:
    create_function({"app.py": (
        "import os\ncounter = 0\n"
        "def handler(event, context):\n    global counter\n"
        "    first = not os.path.exists('/tmp/marker')\n"
        "    open('/tmp/marker', 'w').write('x')\n"
        "    counter += 1\n    return {'counter': counter, 'first': first, 'pid': os.environ['AWS_LAMBDA_LOG_STREAM_NAME']}\n")})
    first = _invoke(lambda_client, function_name, {})[1]
    second = _invoke(lambda_client, function_name, {})[1]
    assert (first["counter"], first["first"]) == (1, True)
    assert (second["counter"], second["first"], second["pid"]) == (2, False, first["pid"])


def test_concurrent_invokes_start_more_environments_with_own_tmp(
    lambda_client: Any, create_function: CreateFunction, function_name: str
) -> None:
    create_function({"app.py": (
        "import os, time\n"
        "def handler(event, context):\n"
        "    seen = os.listdir('/tmp')\n    open('/tmp/' + os.environ['AWS_LAMBDA_LOG_STREAM_NAME'].rsplit(']', 1)[1], 'w').close()\n"
        "    time.sleep(0.5)\n    return {'pid': os.environ['AWS_LAMBDA_LOG_STREAM_NAME'], 'seen': seen}\n")})
    results: list[Any] = []

    def call() -> None:
        results.append(_invoke(lambda_client, function_name, {})[1])

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({r["pid"] for r in results}) == 4
    assert all(r["seen"] == [] for r in results)


def test_timeout_kills_the_runtime_and_restarts_it_in_its_environment(
        lambda_client: Any, create_function: CreateFunction, function_name: str) -> None:
    """As on Lambda, the next invocation runs in the same environment (log stream) with a
    fresh module state."""
    create_function({"app.py": (
        "import os, subprocess, time\nstate = {'n': 0}\n"
        "def handler(event, context):\n"
        "    state['n'] += 1\n"
        "    if event.get('sleep'):\n"
        "        subprocess.Popen(['sleep', '300'])\n"
        "        time.sleep(10)\n"
        "    return {'n': state['n'], 'pid': os.environ['AWS_LAMBDA_LOG_STREAM_NAME']}\n")}, Timeout=1)
    before = _invoke(lambda_client, function_name, {})[1]
    response, payload = _invoke(lambda_client, function_name, {"sleep": True}, LogType="Tail")
    request_id = response["ResponseMetadata"]["RequestId"]
    assert response["FunctionError"] == "Unhandled"
    assert payload == {"errorType": "Sandbox.Timedout",
                       "errorMessage": f"RequestId: {request_id} Error: Task timed out after 1.00 seconds"}
    assert "Task timed out after 1.00 seconds" in _tail(response)
    after = _invoke(lambda_client, function_name, {})[1]
    assert after["n"] == 1 and after["pid"] == before["pid"]


def test_crash_and_exit_are_reported_and_the_runtime_restarted(
        lambda_client: Any, create_function: CreateFunction, function_name: str) -> None:
    create_function({"app.py": (
        "import os, sys\n"
        "def handler(event, context):\n"
        "    if event.get('exit') is not None:\n        os._exit(event['exit'])\n"
        "    if event.get('segv'):\n        import ctypes; ctypes.string_at(0)\n"
        "    return os.environ['AWS_LAMBDA_LOG_STREAM_NAME']\n")})
    pid = _invoke(lambda_client, function_name, {})[1]
    response, payload = _invoke(lambda_client, function_name, {"exit": 1})
    request_id = response["ResponseMetadata"]["RequestId"]
    assert response["FunctionError"] == "Unhandled"
    assert payload == {"errorType": "Runtime.ExitError",
                       "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: exit status 1"}
    response, payload = _invoke(lambda_client, function_name, {"exit": 0})
    assert payload["errorMessage"].endswith("Error: Runtime exited without providing a reason")
    response, payload = _invoke(lambda_client, function_name, {"segv": True})
    assert payload["errorType"] == "Runtime.ExitError"
    assert payload["errorMessage"].endswith("Runtime exited with error: signal: segmentation fault")
    assert _invoke(lambda_client, function_name, {})[1] == pid  # the same environment


def test_out_of_memory_is_reported_and_replaced(lambda_client: Any, create_function: CreateFunction,
                                                function_name: str) -> None:
    create_function({"app.py": (
        "def handler(event, context):\n"
        "    if event.get('hog'):\n        blocks = [bytearray(16 * 1024 * 1024) for _ in range(40)]\n"
        "    return 'ok'\n")}, MemorySize=128)
    response, payload = _invoke(lambda_client, function_name, {"hog": True}, LogType="Tail")
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Runtime.OutOfMemory"
    assert payload["errorMessage"].endswith("Runtime exited with error: signal: killed")
    assert _invoke(lambda_client, function_name, {})[1] == "ok"


def test_payload_limits(lambda_client: Any, create_function: CreateFunction, function_name: str) -> None:
    create_function({"app.py": "def handler(event, context):\n    return 'x' * event['n']\n"})
    with pytest.raises(ClientError) as too_large:
        lambda_client.invoke(FunctionName=function_name, Payload=b'{"a":"' + b"x" * (6 * 1024 * 1024) + b'"}')
    assert too_large.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert too_large.value.response["Error"]["Code"] == "RequestEntityTooLargeException"
    response, payload = _invoke(lambda_client, function_name, {"n": 7 * 1024 * 1024})
    assert response["FunctionError"] == "Unhandled"
    assert payload == {"errorType": "Function.ResponseSizeTooLarge", "errorMessage":
                       "Response payload size exceeded maximum allowed payload size (6291556 bytes)."}
    assert _invoke(lambda_client, function_name, {"n": 3})[1] == "xxx"


def test_invalid_json_payload(lambda_client: Any, create_function: CreateFunction, function_name: str) -> None:
    create_function(ECHO)
    with pytest.raises(ClientError) as invalid:
        lambda_client.invoke(FunctionName=function_name, Payload=b"\x87{not json")
    assert invalid.value.response["Error"]["Code"] == "InvalidRequestContentException"
    assert invalid.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert invalid.value.response["Error"]["Message"].startswith(
        "Could not parse request body into json: Could not parse payload into json: ")


def test_dry_run_and_event(lambda_client: Any, create_function: CreateFunction, function_name: str) -> None:
    create_function(ECHO)
    dry = lambda_client.invoke(FunctionName=function_name, InvocationType="DryRun")
    assert dry["StatusCode"] == 204
    event = lambda_client.invoke(FunctionName=function_name, InvocationType="Event", Payload=b"{}")
    assert event["StatusCode"] == 202 and event["Payload"].read() == b""


def test_update_retires_warm_environments(lambda_client: Any, create_function: CreateFunction,
                                          function_name: str) -> None:
    create_function({"app.py": "import os\ndef handler(e, c):\n    return [os.environ['AWS_LAMBDA_LOG_STREAM_NAME'], os.environ.get('VV')]\n"})
    pid, _ = _invoke(lambda_client, function_name, {})[1]
    lambda_client.update_function_configuration(FunctionName=function_name,
                                                Environment={"Variables": {"VV": "2"}})
    lambda_client.get_waiter("function_updated_v2").wait(FunctionName=function_name)
    new_pid, value = _invoke(lambda_client, function_name, {})[1]
    assert value == "2" and new_pid != pid
