"""Invocation records and dead letters in AWS's shapes (held against AWS's recordings)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from strato.async_invoke.events import AttemptResult
from strato.async_invoke.records import (
    dead_letter_attributes,
    dead_letter_body,
    error_message,
    error_type,
    invocation_record,
    record_timestamp,
)

RECORDINGS: dict[str, Any] = json.loads(
    (Path(__file__).parent.parent / "e2e" / "aws_async_expectations.json").read_text()
)["expectations"]
ARN = "arn:aws:lambda:us-east-1:000000000000:function:fn:$LATEST"
REQUEST_ID = "7d4d5b52-1b8f-4ad6-a3f3-3e0ce8e2d4b1"
ERROR = AttemptResult("$LATEST", json.dumps({
    "errorMessage": "intentional failure", "errorType": "Exception", "requestId": REQUEST_ID,
    "stackTrace": ["  File \"/var/task/handler.py\", line 7, in handler\n"],
}).encode(), "Unhandled")


def _shape(value: Any) -> Any:
    """The structure of a value: its keys (recursively) and the types of its leaves."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value[:1]]
    return type(value).__name__


def _body(key: str) -> dict[str, Any]:
    value = RECORDINGS[key]["value"]
    message = value["Messages"][0] if "Messages" in value else value
    body: dict[str, Any] = message["Body"]
    return body


def test_a_failure_record_has_aws_members_in_aws_order() -> None:
    record = invocation_record(request_id=REQUEST_ID, function_arn=ARN, condition="RetriesExhausted",
                               invocations=3, request_payload=b'{"message": "m"}',
                               timestamp=1_700_000_000.123, result=ERROR)
    recorded = _body("dst.retries_record")
    assert _shape(record) == _shape(recorded)
    assert list(record) == ["version", "timestamp", "requestContext", "requestPayload",
                            "responseContext", "responsePayload"]
    assert record["requestContext"] == {"requestId": REQUEST_ID, "functionArn": ARN,
                                        "condition": "RetriesExhausted", "approximateInvokeCount": 3}
    assert record["responseContext"] == recorded["responseContext"]
    assert record["version"] == "1.0"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["timestamp"])


def test_a_success_record_has_no_function_error() -> None:
    result = AttemptResult("$LATEST", b'{"context": {}, "event": {}}')
    record = invocation_record(request_id=REQUEST_ID, function_arn=ARN, condition="Success",
                               invocations=1, request_payload=b"{}", timestamp=0.0, result=result)
    assert record["responseContext"] == _body("dst.success_record")["responseContext"]
    assert record["requestPayload"] == {}
    assert record["responsePayload"] == {"context": {}, "event": {}}


def test_a_record_of_an_event_that_never_ran_has_no_response() -> None:
    record = invocation_record(request_id=REQUEST_ID, function_arn=ARN,
                               condition="ZeroReservedConcurrency", invocations=0,
                               request_payload=b"", timestamp=0.0, result=None)
    recorded = _body("conc.zero_reserved_async_record")
    assert set(record) == set(recorded)
    assert set(record["requestContext"]) == set(recorded["requestContext"])
    assert record["requestContext"]["approximateInvokeCount"] == 0
    assert record["requestPayload"] == recorded["requestPayload"] == {}


def test_the_event_age_record_keeps_the_last_response() -> None:
    record = invocation_record(request_id=REQUEST_ID, function_arn=ARN, condition="EventAgeExceeded",
                               invocations=1, request_payload=b'{"message": "m"}', timestamp=0.0,
                               result=ERROR)
    assert _shape(record) == _shape(_body("dst.maxeventage_record"))


def test_payloads_that_are_not_json_objects() -> None:
    record = invocation_record(request_id="r", function_arn=ARN, condition="Success",
                               invocations=1, request_payload=b"[1, 2]", timestamp=0.0,
                               result=AttemptResult("1", b"null"))
    assert record["requestPayload"] == [1, 2]
    assert record["responsePayload"] is None
    text = invocation_record(request_id="r", function_arn=ARN, condition="Success",
                             invocations=1, request_payload=b"{}", timestamp=0.0,
                             result=AttemptResult("1", b"not json"))
    assert text["responsePayload"] == "not json"


def test_dead_letters_carry_the_payload_and_aws_attributes() -> None:
    recorded = RECORDINGS["dst.dlq_message"]["value"]["Messages"][0]
    attributes = dead_letter_attributes(REQUEST_ID, 200, error_message(ERROR))
    assert set(attributes) == set(recorded["MessageAttributes"])
    for name, value in attributes.items():
        assert value["DataType"] == recorded["MessageAttributes"][name]["DataType"]
    assert attributes["ErrorCode"]["StringValue"] == "200"
    assert attributes["ErrorMessage"]["StringValue"] == "intentional failure"
    assert dead_letter_body(b'{"raise_error": 1}') == '{"raise_error": 1}'
    assert dead_letter_body(b"") == "{}"
    assert dead_letter_attributes("r", 429, "")["ErrorMessage"]["StringValue"]


def test_error_type_and_message_of_an_attempt() -> None:
    assert error_type(ERROR) == "Exception"
    assert error_message(ERROR) == "intentional failure"
    odd = AttemptResult("1", b"plain", "Unhandled")
    assert error_type(odd) is None and error_message(odd) == "plain"


def test_record_timestamps_are_utc_milliseconds() -> None:
    assert record_timestamp(1_573_755_365.568) == "2019-11-14T18:16:05.568Z"
