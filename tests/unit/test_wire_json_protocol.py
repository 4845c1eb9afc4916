"""json protocol (CloudWatch Logs), round-tripped through a real boto3 logs client."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse, HeadersDict
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.model import ServiceModel

from strato.api import json_protocol
from strato.api.json_protocol import SerializationException
from strato.api.rest_json import Response
from strato.domain.errors import ResourceNotFoundException, ValidationException


class _Raw(io.BytesIO):
    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.getvalue()


@pytest.fixture(scope="module")
def model() -> ServiceModel:
    return botocore.session.get_session().get_service_model("logs")


def _client(reply: Response, sent: list[AWSPreparedRequest]) -> Any:
    client = boto3.client(
        "logs",
        endpoint_url="http://localhost:1",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="y",
        config=Config(retries={"total_max_attempts": 1}),
    )

    def before_send(request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        sent.append(request)
        return AWSResponse(request.url, reply.status, HeadersDict(reply.headers), _Raw(reply.body))

    client.meta.events.register("before-send", before_send)
    return client


def _sent(method: str, **params: Any) -> AWSPreparedRequest:
    sent: list[AWSPreparedRequest] = []
    getattr(_client(Response(200, [], b"{}"), sent), method)(**params)
    return sent[0]


@pytest.mark.parametrize(
    ("method", "operation", "params"),
    [
        (
            "filter_log_events",
            "FilterLogEvents",
            {
                "logGroupName": "/aws/lambda/f",
                "logStreamNames": ["2024/01/02/[$LATEST]abc", "s2"],
                "startTime": 1704164645123,
                "endTime": 1704164700000,
                "filterPattern": '"ERROR"',
                "nextToken": "t/+=",
                "limit": 100,
                "interleaved": True,
            },
        ),
        (
            "get_log_events",
            "GetLogEvents",
            {
                "logGroupName": "/aws/lambda/f",
                "logStreamName": "2024/01/02/[$LATEST]abc",
                "startFromHead": False,
                "limit": 10,
                "startTime": 0,
            },
        ),
        (
            "describe_log_streams",
            "DescribeLogStreams",
            {
                "logGroupName": "/aws/lambda/f",
                "orderBy": "LastEventTime",
                "descending": True,
                "limit": 5,
            },
        ),
        ("describe_log_groups", "DescribeLogGroups", {}),
    ],
)
def test_request_round_trip(
    model: ServiceModel, method: str, operation: str, params: dict[str, Any]
) -> None:
    request = _sent(method, **params)
    target = request.headers["X-Amz-Target"]
    target = target.decode() if isinstance(target, bytes) else target
    found = json_protocol.operation_for_target(model, target)
    assert found is not None and found.name == operation
    body = request.body if isinstance(request.body, bytes) else request.body.encode()
    assert json_protocol.parse_request(found, body) == params


def test_unknown_targets(model: ServiceModel) -> None:
    assert json_protocol.operation_for_target(model, "") is None
    assert json_protocol.operation_for_target(model, "Logs_20140328.NoSuchThing") is None
    assert json_protocol.operation_for_target(model, "Other_20140328.GetLogEvents") is None
    assert json_protocol.operation_for_target(model, "GetLogEvents") is None


@pytest.mark.parametrize(
    "body", [b"{", b"[]", b'{"logGroupName": 5}', b'{"limit": "ten"}', b"\xff"]
)
def test_malformed_bodies(model: ServiceModel, body: bytes) -> None:
    operation = model.operation_model("GetLogEvents")
    with pytest.raises(SerializationException) as raised:
        json_protocol.parse_request(operation, body)
    assert raised.value.status == 400


def test_empty_body_is_empty_input(model: ServiceModel) -> None:
    assert json_protocol.parse_request(model.operation_model("DescribeLogGroups"), b"") == {}


def _received(reply: Response, method: str, **params: Any) -> dict[str, Any]:
    parsed: dict[str, Any] = getattr(_client(reply, []), method)(**params)
    parsed.pop("ResponseMetadata")
    return parsed


def test_filter_log_events_response(model: ServiceModel) -> None:
    output = {
        "events": [
            {
                "logStreamName": "s",
                "timestamp": 1704164645123,
                "message": "START RequestId: 1\n",
                "ingestionTime": 1704164646000,
                "eventId": "1",
            }
        ],
        "searchedLogStreams": [{"logStreamName": "s", "searchedCompletely": True}],
        "nextToken": "n",
    }
    operation = model.operation_model("FilterLogEvents")
    reply = json_protocol.serialize_response(operation, output)
    assert reply.status == 200
    assert reply.headers == [("Content-Type", "application/x-amz-json-1.1")]
    assert _received(reply, "filter_log_events", logGroupName="g") == output


def test_get_log_events_and_describe_log_streams_responses(model: ServiceModel) -> None:
    events = {
        "events": [{"timestamp": 1, "message": "m", "ingestionTime": 2}],
        "nextForwardToken": "f/1",
        "nextBackwardToken": "b/1",
    }
    reply = json_protocol.serialize_response(model.operation_model("GetLogEvents"), events)
    assert _received(reply, "get_log_events", logGroupName="g", logStreamName="s") == events
    streams = {
        "logStreams": [
            {
                "logStreamName": "s",
                "creationTime": 1,
                "firstEventTimestamp": 2,
                "lastEventTimestamp": 3,
                "lastIngestionTime": 4,
                "arn": "arn:aws:logs:us-east-1:123456789012:log-group:g:log-stream:s",
            }
        ]
    }
    reply = json_protocol.serialize_response(model.operation_model("DescribeLogStreams"), streams)
    assert _received(reply, "describe_log_streams", logGroupName="g") == streams


def test_empty_output(model: ServiceModel) -> None:
    reply = json_protocol.serialize_response(model.operation_model("DescribeLogStreams"), {})
    assert reply.body == b"{}"
    reply = json_protocol.serialize_response(model.operation_model("DeleteLogGroup"), {})
    assert (reply.status, reply.body) == (200, b"{}")


@pytest.mark.parametrize(
    "error",
    [
        ResourceNotFoundException("The specified log group does not exist."),
        ValidationException("1 validation error detected: ..."),
        SerializationException("Could not parse the request body"),
    ],
)
def test_errors(model: ServiceModel, error: Any) -> None:
    reply = json_protocol.serialize_error(error, model.operation_model("GetLogEvents"))
    assert json.loads(reply.body) == {"__type": error.code, "message": error.message}
    with pytest.raises(ClientError) as raised:
        _client(reply, []).get_log_events(logGroupName="g", logStreamName="s")
    response = raised.value.response
    assert response["Error"]["Code"] == error.code
    assert response["Error"]["Message"] == error.message
    assert response["ResponseMetadata"]["HTTPStatusCode"] == error.status
