"""SQS's wire forms that botocore's model does not describe: errors, message attributes as the
JSON protocol carries them, and the refusal of the older query protocol.

Errors (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/
sqs-json-api-responses.html): status, ``{"__type": "com.amazonaws.sqs#<shape>", "message":
...}`` and the ``x-amzn-query-error: <query code>;<Sender|Receiver>`` header. botocore reports
the query code as ``Error.Code`` and raises the modelled exception of the shape
(``client.exceptions.QueueDoesNotExist``). Errors of the endpoint itself (authentication,
authorisation, a body too large) keep their JSON name and get the query code AWS's query
services use for them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from xml.sax.saxutils import escape

from strato.api import query_codes
from strato.domain.errors import LambdaApiError
from strato.domain.sqs.errors import InvalidParameterValue, SqsError
from strato.domain.sqs.queues import MessageAttribute

CONTENT_TYPE = "application/x-amz-json-1.0"
#: The ``X-Amz-Target`` prefix of SQS's operations.
TARGET_PREFIX = "AmazonSQS."


def error_response(error: LambdaApiError, request_id: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and body of ``error`` in SQS's JSON form."""
    if isinstance(error, SqsError):
        type_name = f"com.amazonaws.sqs#{error.code}"
        query_code, fault = error.query_code, "Sender" if error.sender_fault else "Receiver"
    else:
        type_name = f"com.amazon.coral.service#{error.code}"
        query_code = query_codes.query_code(error.code)
        fault = "Receiver" if error.status >= 500 else "Sender"
    body = json.dumps({"__type": type_name, "message": error.message}).encode()
    headers = [
        ("Content-Type", CONTENT_TYPE),
        ("x-amzn-query-error", f"{query_code};{fault}"),
        ("x-amzn-RequestId", request_id),
    ]
    return error.status, headers, body


def batch_failure(entry_id: str, error: SqsError) -> dict[str, Any]:
    """A ``BatchResultErrorEntry``: the entry's id and its error's query code."""
    return {"Id": entry_id, "SenderFault": error.sender_fault, "Code": error.query_code,
            "Message": error.message}


def is_query_protocol(headers: Mapping[str, str], body: bytes) -> bool:
    """Whether a request is SQS's query protocol (form-encoded ``Action=...``, signed for
    ``sqs`` or naming SQS's API version), which strato does not speak."""
    if not headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return False
    return b"Action=" in body and (
        "/sqs/aws4_request" in headers.get("authorization", "") or b"Version=2012-11-05" in body
    )


def query_protocol_refusal(request_id: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """The query protocol's own error form, saying which protocol to use instead."""
    message = (
        "strato's SQS API speaks the JSON protocol (X-Amz-Target: AmazonSQS.<Operation>, "
        "application/x-amz-json-1.0), as current AWS SDKs and CLIs do (boto3 and the AWS CLI "
        "since spring 2024): upgrade the SDK or CLI."
    )
    body = (
        '<?xml version="1.0"?><ErrorResponse xmlns="http://queue.amazonaws.com/doc/2012-11-05/">'
        f"<Error><Type>Sender</Type><Code>InvalidAction</Code><Message>{escape(message)}"
        f"</Message><Detail/></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
    )
    return 400, [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)], body.encode()


def message_attributes(wire: Mapping[str, Mapping[str, Any]] | None) -> dict[str, MessageAttribute]:
    """``MessageAttributes`` (or ``MessageSystemAttributes``) of a send as parsed by the
    model (binary values already bytes). The list values SQS reserves are ignored."""
    out: dict[str, MessageAttribute] = {}
    for name, value in (wire or {}).items():
        data_type = value.get("DataType")
        if not data_type:
            raise InvalidParameterValue(
                f"The message attribute '{name}' must contain non-empty message attribute type."
            )
        out[name] = MessageAttribute(data_type, value.get("StringValue"), value.get("BinaryValue"))
    return out


def wire_attributes(attributes: Mapping[str, MessageAttribute]) -> dict[str, dict[str, Any]]:
    """Message attributes as ReceiveMessage's model output (binary values as bytes)."""
    out: dict[str, dict[str, Any]] = {}
    for name, attribute in attributes.items():
        value: dict[str, Any] = {"DataType": attribute.data_type}
        if attribute.binary_value is not None:
            value["BinaryValue"] = attribute.binary_value
        else:
            value["StringValue"] = attribute.string_value
        out[name] = value
    return out
