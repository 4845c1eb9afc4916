"""The event ledger (``/_strato/events``), ``strato events`` and ``strato events redrive``,
who may read them, and events that outlive a restart of the server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_zip
from tests.e2e.async_support import ledger, starts
from tests.e2e.conftest import ROLE, StratoServer, client_for, start_server, stop_server
from tests.e2e.recordings import ACCOUNT
from tests.e2e.test_permission_enforcement import create_credentials
from tests.support.signing import send, sign
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

def _source(failing: bool) -> str:
    """A handler that always fails (``failing``) or always succeeds."""
    return ("def handler(event, context):\n"
            f"    if {failing!r}:\n"
            "        raise Exception('version 1 is broken')\n"
            "    return 'ok'\n")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StratoServer]:
    started = start_server(tmp_path_factory.mktemp("strato-ledger"), "--time-scale", "120")
    yield started
    stop_server(started)


def deploy(lam: Any, name: str, source: str, **kwargs: Any) -> None:
    lam.create_function(FunctionName=name, Runtime="python3.11", Role=ROLE, Handler="app.handler",
                        Code={"ZipFile": make_zip({"app.py": source})}, **kwargs)
    lam.get_waiter("function_active_v2").wait(FunctionName=name,
                                              WaiterConfig={"Delay": 1, "MaxAttempts": 60})


def strato_cli(endpoint: str, *args: str) -> str:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_DEFAULT_REGION": "us-east-1"}
    done = subprocess.run([sys.executable, "-m", "strato.cli.main", *args, "--endpoint-url", endpoint],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def states(endpoint: str, name: str) -> list[str]:
    return [e["State"] for e in ledger(endpoint, name)["Events"]]


def test_the_ledger_lists_events_and_redrive_runs_failed_ones_again(server: StratoServer) -> None:
    lam = client_for(server.endpoint)
    name = f"ledger-{uuid.uuid4().hex[:8]}"
    deploy(lam, name, _source(True))
    lam.publish_version(FunctionName=name)
    lam.put_function_event_invoke_config(FunctionName=name, Qualifier="1", MaximumRetryAttempts=0)
    ids = [lam.invoke(FunctionName=name, Qualifier="1", InvocationType="Event",
                      Payload=json.dumps({"n": n}).encode())["ResponseMetadata"]["RequestId"]
           for n in range(3)]
    wait_until(lambda: states(server.endpoint, name) == ["failed"] * 3, "three failed events")
    document = ledger(server.endpoint, name, state="failed", limit="2")
    assert [e["RequestId"] for e in document["Events"]] == ids[:2]
    assert document["Counts"]["failed"] == 3 and "NextMarker" in document
    event = document["Events"][0]
    assert event["Qualifier"] == "1" and event["Attempts"] == 1
    assert event["Condition"] == "RetriesExhausted"
    assert event["LastError"] == "Exception: version 1 is broken"
    assert event["NextAttemptAt"] is None and event["AgeSeconds"] >= 0

    table = strato_cli(server.endpoint, "events", name)
    assert table.splitlines()[0] == f"events of {name}: failed 3"
    assert "REQUEST ID" in table and "RetriesExhausted" in table
    assert all(request_id in table for request_id in ids)

    lam.update_function_code(FunctionName=name, ZipFile=make_zip({"app.py": _source(False)}))
    lam.get_waiter("function_updated_v2").wait(FunctionName=name)
    lam.publish_version(FunctionName=name)
    printed = strato_cli(server.endpoint, "events", "redrive", name, "--to-version", "2")
    assert printed.strip() == f"re-queued 3 failed events of {name} to version 2"
    wait_until(lambda: states(server.endpoint, name) == ["succeeded"] * 3, "the redriven events")
    assert {e["Qualifier"] for e in ledger(server.endpoint, name)["Events"]} == {"2"}
    logs = client_for(server.endpoint, "logs")
    wait_until(lambda: all(len(starts(logs, name, request_id)) == 2 for request_id in ids),
               "each event to have run twice")
    again = strato_cli(server.endpoint, "events", "redrive", name)
    assert again.strip() == f"re-queued 0 failed events of {name}"


def test_the_ledger_needs_a_signature_and_a_principal_allowed_to_read_it(server: StratoServer) -> None:
    url = f"{server.endpoint}/_strato/events?function=anything"
    unsigned = send("GET", url)
    assert unsigned.status == 403
    assert unsigned.headers["x-amzn-errortype"] == "MissingAuthenticationTokenException"
    forged = send("GET", url, headers=sign("GET", url, secret_key="wrong"))
    assert forged.status == 403
    assert forged.headers["x-amzn-errortype"] == "InvalidSignatureException"
    policy = {"Version": "2012-10-17",
              "Statement": [{"Effect": "Allow", "Action": "lambda:*", "Resource": "*"}]}
    key, secret = create_credentials(server.data_dir, "lambda-only", ACCOUNT, policy)

    def denied() -> bool:
        response = send("GET", url, headers=sign("GET", url, access_key=key, secret_key=secret))
        return response.status == 403 and \
            response.headers["x-amzn-errortype"] == "AccessDeniedException"

    wait_until(denied, "the new key to be known and refused")
    redrive = f"{server.endpoint}/_strato/events/redrive"
    body = json.dumps({"FunctionName": "anything"}).encode()
    refused = send("POST", redrive, body, sign("POST", redrive, body, access_key=key, secret_key=secret))
    assert refused.status == 403
    missing = send("POST", redrive, body, sign("POST", redrive, body))
    assert missing.status == 404
    assert missing.headers["x-amzn-errortype"] == "ResourceNotFoundException"


def test_queued_events_still_run_after_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = start_server(data)
    lam = client_for(first.endpoint)
    name = "restarted"
    deploy(lam, name, "import time\ndef handler(event, context):\n    time.sleep(0.2)\n")
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    ids = [lam.invoke(FunctionName=name, InvocationType="Event", Payload=b"{}")
           ["ResponseMetadata"]["RequestId"] for _ in range(6)]
    stop_server(first)
    second = start_server(data)
    try:
        logs = client_for(second.endpoint, "logs")
        wait_until(lambda: all(starts(logs, name, request_id) for request_id in ids),
                   "every event to run", timeout=60)
        wait_until(lambda: states(second.endpoint, name) == ["succeeded"] * 6,
                   "every event to succeed", timeout=60)
    finally:
        stop_server(second)
