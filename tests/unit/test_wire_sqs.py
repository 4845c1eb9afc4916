"""SQS's error form, read back by a real boto3 ``sqs`` client: the modelled exception classes
and the legacy query codes SDKs report."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse, HeadersDict
from botocore.config import Config
from botocore.exceptions import ClientError

from strato.api import sqs_wire
from strato.domain.errors import AccessDeniedException, LambdaApiError
from strato.domain.sqs.errors import (
    InvalidParameterValue,
    PurgeQueueInProgress,
    QueueDoesNotExist,
    QueueNameExists,
    ReceiptHandleIsInvalid,
)


class _Raw(io.BytesIO):
    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.getvalue()


def _client_answering(error: LambdaApiError) -> Any:
    status, headers, body = sqs_wire.error_response(error, "req-1")
    client = boto3.client("sqs", endpoint_url="http://localhost:1", region_name="us-east-1",
                          aws_access_key_id="x", aws_secret_access_key="y",
                          config=Config(retries={"total_max_attempts": 1}))

    def before_send(request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        return AWSResponse(request.url, status, HeadersDict(headers), _Raw(body))

    client.meta.events.register("before-send", before_send)
    return client


def test_queue_does_not_exist_is_the_modelled_exception_with_the_query_code() -> None:
    client = _client_answering(QueueDoesNotExist())
    with pytest.raises(client.exceptions.QueueDoesNotExist) as caught:
        client.get_queue_url(QueueName="missing")
    error = caught.value.response["Error"]
    assert error["Code"] == "AWS.SimpleQueueService.NonExistentQueue"
    assert error["QueryErrorCode"] == "QueueDoesNotExist"
    assert error["Message"] == "The specified queue does not exist."
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


@pytest.mark.parametrize(
    ("error", "exception", "code", "status"),
    [
        (QueueNameExists("differs"), "QueueNameExists", "QueueAlreadyExists", 400),
        (PurgeQueueInProgress("again"), "PurgeQueueInProgress",
         "AWS.SimpleQueueService.PurgeQueueInProgress", 403),
        (ReceiptHandleIsInvalid.of("h"), "ReceiptHandleIsInvalid", "ReceiptHandleIsInvalid", 400),
    ],
)
def test_modelled_errors(error: LambdaApiError, exception: str, code: str, status: int) -> None:
    client = _client_answering(error)
    with pytest.raises(getattr(client.exceptions, exception)) as caught:
        client.purge_queue(QueueUrl="http://localhost:1/000000000000/q")
    assert caught.value.response["Error"]["Code"] == code
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == status


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (InvalidParameterValue("Value 11 for parameter MaxNumberOfMessages is invalid."), "InvalidParameterValue"),
        (AccessDeniedException("no"), "AccessDenied"),
    ],
)
def test_unmodelled_errors_carry_their_query_code(error: LambdaApiError, code: str) -> None:
    client = _client_answering(error)
    with pytest.raises(ClientError) as caught:
        client.receive_message(QueueUrl="http://localhost:1/000000000000/q")
    assert caught.value.response["Error"]["Code"] == code
    assert caught.value.response["Error"]["Message"] == error.message


def test_query_protocol_is_recognised() -> None:
    form = {"content-type": "application/x-www-form-urlencoded; charset=utf-8"}
    assert sqs_wire.is_query_protocol(form, b"Action=ListQueues&Version=2012-11-05")
    assert not sqs_wire.is_query_protocol(form, b"Action=ListQueues&Version=2015-03-31")
    assert not sqs_wire.is_query_protocol({"content-type": "application/json"}, b"Action=x&Version=2012-11-05")
    status, _, body = sqs_wire.query_protocol_refusal("r")
    assert status == 400 and b"<Code>InvalidAction</Code>" in body and b"JSON protocol" in body
