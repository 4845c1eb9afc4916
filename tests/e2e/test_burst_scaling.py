"""Lambda's concurrency scaling rate: a function gets at most so many new execution
environments per window (1,000 per 10 s on AWS; ``--burst-concurrency`` here)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import make_zip
from tests.e2e.conftest import ROLE, StratoServer, client_for, start_server, stop_server

SLOW = {"app.py": "import time\ndef handler(event, context):\n    time.sleep(1.5)\n    return 'ok'\n"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StratoServer]:
    started = start_server(tmp_path_factory.mktemp("burst"), "--burst-concurrency", "2")
    yield started
    stop_server(started)


def _invoke(client: Any, name: str) -> str:
    try:
        response = client.invoke(FunctionName=name, Payload=b"{}")
        return str(json.loads(response["Payload"].read()))
    except ClientError as error:
        return f"{error.response['Error']['Code']}:{error.response.get('Reason')}"


def test_new_environments_beyond_the_scaling_rate_are_throttled(server: StratoServer,
                                                                tmp_path: Path) -> None:
    client = client_for(server.endpoint)
    client.create_function(FunctionName="burst", Runtime="python3.11", Role=ROLE,
                           Handler="app.handler", Code={"ZipFile": make_zip(SLOW)})
    client.get_waiter("function_active_v2").wait(FunctionName="burst",
                                                 WaiterConfig={"Delay": 1})
    with ThreadPoolExecutor(3) as pool:
        outcomes = sorted(pool.map(lambda _: _invoke(client, "burst"), range(3)))
    # Two environments may start at once; the third concurrent request needs a third one.
    assert outcomes == ["TooManyRequestsException:ConcurrentInvocationLimitExceeded", "ok", "ok"]
    # The two environments are warm now: invocations that fit in them need no new one.
    with ThreadPoolExecutor(2) as pool:
        assert list(pool.map(lambda _: _invoke(client, "burst"), range(2))) == ["ok", "ok"]
    # The rate refills continuously (2 per 10 s): after 5 s there is one new environment. The
    # point is time passing (the server runs on the real clock).
    time.sleep(5.5)
    with ThreadPoolExecutor(3) as pool:
        assert sorted(pool.map(lambda _: _invoke(client, "burst"), range(3))) == ["ok"] * 3
