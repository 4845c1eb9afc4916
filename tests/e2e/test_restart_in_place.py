"""A runtime that times out or crashes is restarted in the same execution environment, as on
Lambda (recorded: ``inv.timeout_env_reuse.*``): the failed invocation fails as before; the
next one runs in the same environment (same log stream), finds the files its predecessor
left in /tmp, but a fresh module state (a new INIT, whose Init Duration its REPORT shows).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest

from tests.e2e.hostile import RESTARTING_TIERS, TierServer, create, invoke, serve_tier, succeed, unique

APP = r'''
import ctypes, os, time

counter = 0
# /tmp, or the fallback tier's stand-in for it.
MARKER = os.path.join(os.environ.get("TMPDIR", "/tmp"), "marker")


def handler(event, context):
    global counter
    action = event.get("action")
    if action == "set":
        counter = 42
        with open(MARKER, "w") as handle:
            handle.write("some-content")
        how = event["then"]
        if how == "sleep":
            time.sleep(30)
        elif how == "exit":
            os._exit(3)
        elif how == "segfault":
            ctypes.string_at(0)
        return {}
    try:
        with open(MARKER) as handle:
            content = handle.read()
    except FileNotFoundError:
        content = None
    return {"number": counter, "content": content,
            "stream": os.environ["AWS_LAMBDA_LOG_STREAM_NAME"]}
'''

@pytest.fixture(scope="module", params=RESTARTING_TIERS)
def server(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[TierServer]:
    with serve_tier(request.param, tmp_path_factory) as running:
        yield running


@pytest.mark.parametrize("then", ["sleep", "exit", "segfault"])
def test_the_runtime_restarts_in_its_environment_keeping_tmp(server: TierServer,
                                                            then: str) -> None:
    client = server.client
    name = unique(f"restart-{then}")
    create(client, name, {"app.py": APP}, Timeout=1)
    before = succeed(client, name)
    assert before["number"] == 0 and before["content"] is None

    response, payload = invoke(client, name, {"action": "set", "then": then})
    assert response.get("FunctionError") == "Unhandled", payload
    if then == "sleep":
        assert payload["errorType"] == "Sandbox.Timedout"
    else:
        assert payload["errorType"] == "Runtime.ExitError"

    response = client.invoke(FunctionName=name, Payload=b"{}", LogType="Tail")
    after = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, after
    assert after == {"number": 0, "content": "some-content", "stream": before["stream"]}
    tail = base64.b64decode(response["LogResult"]).decode()
    report = [line for line in tail.splitlines() if line.startswith("REPORT")]
    assert report and "Init Duration:" in report[-1], tail
