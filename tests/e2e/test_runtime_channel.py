"""The runtime channel under function code that misuses it: user code shares the built-in
runtime's process, so it can write to the channel's socket (fd 3). Whatever it writes, the
platform stays healthy, other invocations are unaffected, and the invocation fails as AWS
would report it."""

from __future__ import annotations

import json
from typing import Any

from tests.e2e.conftest import CreateFunction

#: A handler that writes raw bytes to the runtime channel, then returns normally.
WRITER = """
import os, struct

def frame(kind, *fields):
    payload = b"\\0".join(fields)
    return struct.pack("!IB", 1 + len(payload), kind) + payload

def handler(event, context):
    what = event["what"]
    if what == "garbage":
        os.write(3, b"\\xff" * 64)
    elif what == "huge":
        size = 7 * 1024 * 1024
        os.write(3, struct.pack("!IB", size, 2) + context.aws_request_id.encode() + b"\\0")
        chunk = b"x" * 65536
        left = size - 2 - len(context.aws_request_id)
        while left > 0:
            left -= os.write(3, chunk[:left])
    elif what == "stale":
        os.write(3, frame(2, b"00000000-0000-0000-0000-000000000000", b'"forged"'))
    elif what == "probe":
        return {"inheritable": os.get_inheritable(3)}
    return {"ok": what}
"""


def _invoke(client: Any, name: str, payload: Any) -> tuple[dict[str, Any], Any]:
    response = client.invoke(FunctionName=name, Payload=json.dumps(payload).encode())
    return response, json.loads(response["Payload"].read())


def test_garbage_on_the_channel_ends_the_environment_not_the_platform(
        lambda_client: Any, create_function: CreateFunction, function_name: str) -> None:
    create_function({"app.py": WRITER})
    assert _invoke(lambda_client, function_name, {"what": "warm"})[1] == {"ok": "warm"}
    response, payload = _invoke(lambda_client, function_name, {"what": "garbage"})
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Runtime.ExitError"
    # A new environment serves the next invocation.
    assert _invoke(lambda_client, function_name, {"what": "after"})[1] == {"ok": "after"}


def test_a_response_over_6_mb_written_to_the_channel_fails_as_too_large(
        lambda_client: Any, create_function: CreateFunction, function_name: str) -> None:
    create_function({"app.py": WRITER}, Timeout=10)
    response, payload = _invoke(lambda_client, function_name, {"what": "huge"})
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Function.ResponseSizeTooLarge"
    assert _invoke(lambda_client, function_name, {"what": "after"})[1] == {"ok": "after"}


def test_a_post_for_another_request_id_is_refused_and_changes_nothing(
        lambda_client: Any, create_function: CreateFunction, function_name: str) -> None:
    create_function({"app.py": WRITER})
    response, payload = _invoke(lambda_client, function_name, {"what": "stale"})
    assert "FunctionError" not in response
    assert payload == {"ok": "stale"}
    assert _invoke(lambda_client, function_name, {"what": "again"})[1] == {"ok": "again"}


def test_programs_the_function_starts_do_not_inherit_the_channel(
        lambda_client: Any, create_function: CreateFunction, function_name: str) -> None:
    create_function({"app.py": WRITER})
    assert _invoke(lambda_client, function_name, {"what": "probe"})[1] == {"inheritable": False}
