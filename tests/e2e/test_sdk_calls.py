"""The AWS SDKs of the runtimes calling strato from inside functions with their default
settings (``sdk_functions.py``: boto3, the AWS SDK for JavaScript), in both sandbox tiers:
many calls at once from one function, and a kept-alive connection that strato closed while
it was idle, which the SDK replaces without the function seeing an error.

The server here trusts unknown roles (what a call may do is ``test_execution_roles.py``'s
subject) and closes a keep-alive connection after one idle second.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import ROLE, client_for
from tests.e2e.hostile import TIERS, TierServer, invoke, serve_tier, succeed, unique
from tests.e2e.sdk_functions import SDKS, create_sdk_function

IDLE_TIMEOUT_S = 1


@pytest.fixture(scope="module", params=TIERS)
def tier(request: pytest.FixtureRequest,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[TierServer]:
    with serve_tier(request.param, tmp_path_factory, env={
            "STRATO_TRUST_UNKNOWN_ROLES": "1",
            "STRATO_HTTP_IDLE_TIMEOUT": str(IDLE_TIMEOUT_S)}) as server:
        yield server


@pytest.fixture(params=SDKS)
def sdk(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _sqs(tier: TierServer) -> Any:
    return client_for(tier.server.endpoint, "sqs", access_key="hostile",
                      secret_key=tier.admin_secret)


def _bodies(tier: TierServer, queue_url: str, count: int) -> list[str]:
    """The bodies of ``count`` messages of the queue (fails after 30 s without them all)."""
    sqs, bodies = _sqs(tier), []
    deadline = time.monotonic() + 30
    while len(bodies) < count:
        assert time.monotonic() < deadline, f"only {len(bodies)} of {count} messages: {bodies}"
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                       WaitTimeSeconds=1).get("Messages", [])
        for message in messages:
            bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return sorted(bodies, key=int)


def test_twenty_calls_at_once_from_one_function_all_succeed(tier: TierServer, sdk: str) -> None:
    queue_url = _sqs(tier).create_queue(QueueName=unique("q"))["QueueUrl"]
    name = unique(f"many-{sdk}")
    create_sdk_function(tier.client, name, sdk, ROLE)
    for _ in range(2):  # cold, then warm with the connections the first one left open
        response, result = invoke(tier.client, name, {"op": "send", "queue_url": queue_url,
                                                      "count": 20}, LogType="Tail")
        assert "FunctionError" not in response and result.get("sent") == 20, result
        # The queue URL's origin is the function's endpoint, where the AWS SDK for JavaScript
        # sends SQS calls (it warns when they differ).
        assert "differs from SQSClient resolved endpoint" \
            not in base64.b64decode(response["LogResult"]).decode()
        assert _bodies(tier, queue_url, 20) == [str(i) for i in range(20)]


def test_a_connection_strato_closed_while_idle_is_replaced(tier: TierServer, sdk: str) -> None:
    queue_url = _sqs(tier).create_queue(QueueName=unique("q"))["QueueUrl"]
    name = unique(f"idle-{sdk}")
    create_sdk_function(tier.client, name, sdk, ROLE)
    # Between its two calls the function is quiet for longer than strato keeps an idle
    # connection: the second call finds its pooled connection closed by strato.
    result = succeed(tier.client, name, {"op": "send_twice", "queue_url": queue_url,
                                         "pause": IDLE_TIMEOUT_S + 1})
    assert result.get("sent") == 2, result
    assert _bodies(tier, queue_url, 2) == ["0", "1"]
