"""Helpers of the asynchronous invocation tests: AWS's recordings of event invoke configs,
destination records and dead letters (``aws_async_expectations.json``), waiting for what a
server does in the background, reading function logs and the event ledger."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import pytest
from botocore.exceptions import ClientError

from tests.e2e.recordings import ACCOUNT, REGION, assert_matches
from tests.e2e.test_permissions_api import raw_bodies
from tests.support.signing import send, sign

RECORDINGS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "aws_async_expectations.json").read_text())["expectations"]

T = TypeVar("T")


def recorded(key: str, **names: str) -> Any:
    """The recording ``key`` with its placeholders filled in (region and account always)."""
    text = json.dumps(RECORDINGS[key])
    for placeholder, value in {"region": REGION, "account": ACCOUNT, **names}.items():
        text = text.replace(f"<<{placeholder}>>", value)
    return json.loads(text)


def _plain(value: Any) -> Any:
    """``value`` with datetimes (boto3's timestamps) as text, as the recordings hold them."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def assert_recorded(actual: Any, key: str, *, exact: bool = False, **names: str) -> None:
    assert_matches(_plain(actual), recorded(key, **names)["value"], path=key, exact=exact)


def check_error(client: Any, key: str, call: Callable[[], Any], **names: str) -> None:
    """``call`` fails as AWS recorded under ``key``: code, status, exact message, the body's
    message key and ``Type``."""
    expected = recorded(key, **names)
    with raw_bodies(client) as bodies, pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    assert response["Error"]["Code"] == expected["error_code"], (key, response["Error"])
    assert response["ResponseMetadata"]["HTTPStatusCode"] == expected["http_status"], key
    assert response["Error"]["Message"] == expected["message"], (key, response["Error"])
    body = json.loads(bodies[-1])
    assert body[expected["body_message_key"]] == expected["message"], key
    assert body.get("Type") == expected["body_type"], key


def log_events(logs: Any, function: str) -> list[dict[str, Any]]:
    """Every log event of ``function`` so far, oldest first."""
    events: list[dict[str, Any]] = []
    request: dict[str, Any] = {"logGroupName": f"/aws/lambda/{function}"}
    while True:
        page = logs.filter_log_events(**request)
        events += page["events"]
        if "nextToken" not in page:
            return events
        request["nextToken"] = page["nextToken"]


def starts(logs: Any, function: str, request_id: str | None = None) -> list[int]:
    """Timestamps (ms) of the START lines of ``function`` (of one request id if given)."""
    return [e["timestamp"] for e in log_events(logs, function)
            if e["message"].startswith("START RequestId:")
            and (request_id is None or request_id in e["message"])]


def ledger(endpoint: str, function: str, **query: str) -> dict[str, Any]:
    """The event ledger of ``function`` (``GET /_strato/events``), signed as the admin."""
    url = f"{endpoint}/_strato/events?{urlencode({'function': function, **query})}"
    response = send("GET", url, headers=sign("GET", url))
    assert response.status == 200, response.body
    document: dict[str, Any] = json.loads(response.body)
    return document


def receive_all(sqs: Any, queue_url: str, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
    """``count`` messages of a queue (with every attribute), deleting them."""
    messages: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(messages) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"only {len(messages)} of {count} messages arrived")
        page = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                   AttributeNames=["All"], MessageAttributeNames=["All"])
        for message in page.get("Messages", []):
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            messages.append(message)
    return messages
