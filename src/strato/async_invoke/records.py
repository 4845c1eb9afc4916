"""Invocation records and dead letters, in AWS's shapes.

An invocation record is what an asynchronous invocation's destination receives
(https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html)::

    {"version": "1.0", "timestamp": "2019-11-14T18:16:05.568Z",
     "requestContext": {"requestId": ..., "functionArn": "...:function:name:$LATEST",
                        "condition": "RetriesExhausted", "approximateInvokeCount": 3},
     "requestPayload": {...},
     "responseContext": {"statusCode": 200, "executedVersion": "$LATEST",
                         "functionError": "Unhandled"},
     "responsePayload": {...}}

``responseContext`` and ``responsePayload`` are present only when the function ran;
``functionError`` only when it failed. A dead letter is the event's own payload with the
message attributes ``RequestID``, ``ErrorCode`` (a number) and ``ErrorMessage``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from strato.async_invoke.events import AttemptResult

RECORD_VERSION = "1.0"


def record_timestamp(moment: float) -> str:
    """``2019-11-14T18:16:05.568Z``: UTC with milliseconds."""
    when = datetime.fromtimestamp(moment, UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def parsed_payload(payload: bytes) -> Any:
    """A payload as the record embeds it: parsed JSON (an empty payload is ``{}``, what the
    function received), or the text itself when it is not JSON."""
    if not payload:
        return {}
    try:
        return json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return payload.decode("utf-8", "replace")


def invocation_record(
    *,
    request_id: str,
    function_arn: str,
    condition: str,
    invocations: int,
    request_payload: bytes,
    timestamp: float,
    result: AttemptResult | None,
) -> dict[str, Any]:
    """The record of an event whose processing ended with ``condition``. ``function_arn`` is
    qualified (``...:$LATEST`` for an unqualified invocation); ``result`` is the function's
    answer to the last attempt, None if it never ran."""
    record: dict[str, Any] = {
        "version": RECORD_VERSION,
        "timestamp": record_timestamp(timestamp),
        "requestContext": {
            "requestId": request_id,
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": invocations,
        },
        "requestPayload": parsed_payload(request_payload),
    }
    if result is not None:
        context: dict[str, Any] = {"statusCode": result.status_code,
                                   "executedVersion": result.executed_version}
        if result.function_error is not None:
            context["functionError"] = result.function_error
        record["responseContext"] = context
        record["responsePayload"] = parsed_payload(result.payload) if result.payload else None
    return record


def record_body(record: dict[str, Any]) -> str:
    return json.dumps(record, separators=(",", ":"))


def dead_letter_body(payload: bytes) -> str:
    """A dead letter's body: the event as the caller sent it (``{}`` when it was empty)."""
    return payload.decode("utf-8", "replace") if payload else "{}"


def dead_letter_attributes(request_id: str, error_code: int, error_message: str) -> dict[str, dict[str, str]]:
    """The message attributes Lambda puts on a dead letter."""
    return {
        "RequestID": {"DataType": "String", "StringValue": request_id},
        "ErrorCode": {"DataType": "Number", "StringValue": str(error_code)},
        # SQS refuses an empty attribute value.
        "ErrorMessage": {"DataType": "String", "StringValue": error_message or "Unknown"},
    }


def error_message(result: AttemptResult) -> str:
    """The ``errorMessage`` of a failed attempt's payload (its text when it has none)."""
    body = parsed_payload(result.payload)
    if isinstance(body, dict) and isinstance(body.get("errorMessage"), str):
        return str(body["errorMessage"])
    return result.payload.decode("utf-8", "replace")[:1024]


def error_type(result: AttemptResult) -> str | None:
    """The ``errorType`` of a failed attempt's payload, None if it has none."""
    body = parsed_payload(result.payload)
    if isinstance(body, dict) and isinstance(body.get("errorType"), str):
        return str(body["errorType"])
    return None
