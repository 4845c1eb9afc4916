"""The event Lambda delivers for an SQS batch, built from received messages (pure).

The record's shape is the one in "Using Lambda with Amazon SQS"
(https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html): ``messageId``, ``receiptHandle``,
``body``, ``attributes`` (SQS's system attributes, as strings), ``messageAttributes`` in
Lambda's casing (``stringValue``/``binaryValue``, ``stringListValues``/``binaryListValues``
always present, ``dataType``), ``md5OfMessageAttributes`` (null without attributes),
``md5OfBody``, ``eventSource``, ``eventSourceARN`` and ``awsRegion``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from strato.sqs.client import ReceivedMessage

EVENT_SOURCE = "aws:sqs"


def queue_region(queue_arn: str) -> str:
    """The region of an SQS queue ARN (``arn:aws:sqs:<region>:<account>:<name>``)."""
    return queue_arn.split(":")[3]


def _message_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    attribute: dict[str, Any] = {}
    if value.get("StringValue") is not None:
        attribute["stringValue"] = value["StringValue"]
    if value.get("BinaryValue") is not None:
        attribute["binaryValue"] = value["BinaryValue"]
    attribute["stringListValues"] = list(value.get("StringListValues") or [])
    attribute["binaryListValues"] = list(value.get("BinaryListValues") or [])
    attribute["dataType"] = value.get("DataType", "String")
    return attribute


def record(message: ReceivedMessage, queue_arn: str) -> dict[str, Any]:
    """The record of one message in Lambda's SQS event."""
    return {
        "messageId": message.message_id,
        "receiptHandle": message.receipt_handle,
        "body": message.body,
        "attributes": dict(message.attributes),
        "messageAttributes": {name: _message_attribute(value)
                              for name, value in message.message_attributes.items()},
        "md5OfMessageAttributes": message.md5_of_message_attributes,
        "md5OfBody": message.md5_of_body,
        "eventSource": EVENT_SOURCE,
        "eventSourceARN": queue_arn,
        "awsRegion": queue_region(queue_arn),
    }


def filter_view(sqs_record: Mapping[str, Any]) -> dict[str, Any]:
    """What filter patterns see of a record: the record with ``body`` parsed when it is
    JSON (Lambda's SQS filters address keys of a JSON body as ``{"body": {...}}``; a plain
    text body stays a string)."""
    view = dict(sqs_record)
    with contextlib.suppress(ValueError):
        view["body"] = json.loads(sqs_record["body"])
    return view


def event(records: Sequence[Mapping[str, Any]]) -> bytes:
    """The invoke payload: ``{"Records": [...]}``."""
    return json.dumps({"Records": list(records)}, separators=(",", ":")).encode()
