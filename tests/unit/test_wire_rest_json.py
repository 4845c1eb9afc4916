"""rest-json wire layer, round-tripped through botocore's own serializer and parser.

Requests are built by a real boto3 Lambda client (captured before they leave the process)
and must parse back to the parameters that went in; responses are parsed by the client and
must come back as the output that went in.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import io
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import botocore.session
import pytest
from botocore.awsrequest import (
    AWSPreparedRequest,
    AWSResponse,
    HeadersDict,
    create_request_object,
    prepare_request_dict,
)
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.model import OperationModel, ServiceModel
from botocore.parsers import create_parser
from botocore.serialize import create_serializer

from strato.api import rest_json
from strato.api.rest_json import Response
from strato.api.routing import Router
from strato.domain.errors import (
    InvalidRequestContentException,
    LambdaApiError,
    ResourceConflictException,
    ResourceNotFoundException,
    ServiceException,
    TooManyRequestsException,
    ValidationException,
)

ARN = "arn:aws:lambda:us-east-1:123456789012:function:f:1"
ZIP = b"PK\x03\x04\x00\xff\xfe binary \x00 zip"


class _Raw(io.BytesIO):
    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.getvalue()


@pytest.fixture(scope="module")
def model() -> ServiceModel:
    return botocore.session.get_session().get_service_model("lambda")


@pytest.fixture(scope="module")
def router(model: ServiceModel) -> Router:
    return Router(model)


def _client(reply: Response | None, sent: list[AWSPreparedRequest]) -> Any:
    client = boto3.client(
        "lambda",
        endpoint_url="http://localhost:1",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="y",
        config=Config(retries={"total_max_attempts": 1}),
    )
    reply = reply or Response(200, [], b"{}")

    def before_send(request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        sent.append(request)
        return AWSResponse(request.url, reply.status, HeadersDict(reply.headers), _Raw(reply.body))

    client.meta.events.register("before-send", before_send)
    return client


def _sent(method: str, **params: Any) -> AWSPreparedRequest:
    sent: list[AWSPreparedRequest] = []
    with contextlib.suppress(Exception):  # only the request matters here
        getattr(_client(None, sent), method)(**params)
    return sent[0]


def _received(reply: Response, method: str, **params: Any) -> dict[str, Any]:
    """What the boto3 client returns to its caller when the server answers ``reply``."""
    parsed: dict[str, Any] = getattr(_client(reply, []), method)(**params)
    parsed.pop("ResponseMetadata")
    return parsed


def _parse(router: Router, request: AWSPreparedRequest) -> tuple[str, dict[str, Any]]:
    url = urlsplit(request.url)
    query = parse_qs(url.query, keep_blank_values=True)
    match = router.match(request.method, url.path, query)
    assert match is not None
    headers = {
        k.lower(): v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()
    }
    body = request.body or b""
    body = body.encode() if isinstance(body, str) else body
    params = rest_json.parse_request(match.operation, match.uri_params, query, headers, body)
    return match.operation.name, params


# ------------------------------------------------------------------ requests, Lambda


REQUESTS: list[tuple[str, str, dict[str, Any]]] = [
    (
        "create_function",
        "CreateFunction",
        {
            "FunctionName": "my-function",
            "Runtime": "python3.12",
            "Role": "arn:aws:iam::123456789012:role/r",
            "Handler": "app.handler",
            "Code": {"ZipFile": ZIP},
            "Description": "",
            "Timeout": 30,
            "MemorySize": 256,
            "Publish": False,
            "Environment": {"Variables": {"A": "1", "B": "two words"}},
            "Tags": {"team": "x", "empty": ""},
            "Architectures": ["arm64"],
            "Layers": ["arn:aws:lambda:us-east-1:123456789012:layer:l:1"],
            "EphemeralStorage": {"Size": 1024},
            "TracingConfig": {"Mode": "Active"},
        },
    ),
    (
        "invoke",
        "Invoke",
        {
            "FunctionName": "my-function",
            "InvocationType": "Event",
            "LogType": "Tail",
            "ClientContext": base64.b64encode(b'{"custom": {"a": 1}}').decode(),
            "Payload": b'{"key": "value", "bin": "\xc3\xa9"}',
            "Qualifier": "live",
        },
    ),
    ("invoke", "Invoke", {"FunctionName": ARN}),
    ("get_function", "GetFunction", {"FunctionName": ARN}),
    ("get_function", "GetFunction", {"FunctionName": "f", "Qualifier": "$LATEST"}),
    (
        "list_functions",
        "ListFunctions",
        {"Marker": "a/b+c=d==&e?f", "MaxItems": 50, "FunctionVersion": "ALL"},
    ),
    (
        "update_function_configuration",
        "UpdateFunctionConfiguration",
        {
            "FunctionName": "f",
            "Timeout": 900,
            "MemorySize": 10240,
            "Environment": {"Variables": {}},
            "RevisionId": "abc",
            "Layers": [],
        },
    ),
    ("delete_function", "DeleteFunction", {"FunctionName": "f", "Qualifier": "3"}),
    (
        "list_versions_by_function",
        "ListVersionsByFunction",
        {"FunctionName": "f", "Marker": "m", "MaxItems": 1},
    ),
    (
        "put_function_concurrency",
        "PutFunctionConcurrency",
        {"FunctionName": "f", "ReservedConcurrentExecutions": 0},
    ),
    ("get_alias", "GetAlias", {"FunctionName": "f", "Name": "live"}),
    (
        "untag_resource",
        "UntagResource",
        {"Resource": ARN, "TagKeys": ["a", "b c", "d/e"]},
    ),
    ("tag_resource", "TagResource", {"Resource": ARN, "Tags": {"k": "v"}}),
    (
        "remove_layer_version_permission",
        "RemoveLayerVersionPermission",
        {"LayerName": "l", "VersionNumber": 7, "StatementId": "s", "RevisionId": "r"},
    ),
    ("list_layers", "ListLayers", {"CompatibleArchitecture": "arm64", "MaxItems": 2}),
]


@pytest.mark.parametrize(("method", "operation", "params"), REQUESTS)
def test_request_round_trip(
    router: Router, method: str, operation: str, params: dict[str, Any]
) -> None:
    assert _parse(router, _sent(method, **params)) == (operation, params)


def test_empty_body_and_no_payload(router: Router) -> None:
    assert _parse(router, _sent("get_account_settings")) == ("GetAccountSettings", {})


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "Could not parse request body into json"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"Code": {"ZipFile": "not*base64"}}', "'Code.ZipFile' is not valid base64"),
        (b'{"MemorySize": "128"}', "expected an integer at 'MemorySize'"),
        (b'{"Publish": "true"}', "expected a boolean at 'Publish'"),
        (b'{"Tags": ["a"]}', "expected an object at 'Tags'"),
        (b"\xff\xfe\x00", "Could not parse request body into json"),
    ],
)
def test_malformed_body(model: ServiceModel, body: bytes, fragment: str) -> None:
    operation = model.operation_model("CreateFunction")
    with pytest.raises(InvalidRequestContentException, match="Could not parse") as raised:
        rest_json.parse_request(operation, {}, {}, {}, body)
    assert fragment in raised.value.message


def test_malformed_query_value(model: ServiceModel) -> None:
    operation = model.operation_model("ListFunctions")
    with pytest.raises(
        InvalidRequestContentException,
        match="Could not parse request parameters: 'ten' is not a valid integer",
    ):
        rest_json.parse_request(operation, {}, {"MaxItems": ["ten"]}, {}, b"")


def test_unknown_members_and_nulls_ignored(model: ServiceModel) -> None:
    operation = model.operation_model("CreateFunction")
    body = b'{"FunctionName": "f", "Bogus": 1, "Description": null, "Code": {"S3Key": "k"}}'
    assert rest_json.parse_request(operation, {}, {}, {}, body) == {
        "FunctionName": "f",
        "Code": {"S3Key": "k"},
    }


# ------------------------------------------------------------------ responses, Lambda

CONFIGURATION: dict[str, Any] = {
    "FunctionName": "f",
    "FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:f",
    "Runtime": "python3.12",
    "Role": "arn:aws:iam::123456789012:role/r",
    "Handler": "app.handler",
    "CodeSize": 1234,
    "Description": "",
    "Timeout": 3,
    "MemorySize": 128,
    "LastModified": "2024-01-02T03:04:05.000+0000",
    "CodeSha256": "abc=",
    "Version": "$LATEST",
    "Environment": {"Variables": {"A": "1"}},
    "TracingConfig": {"Mode": "PassThrough"},
    "RevisionId": "r",
    "State": "Active",
    "LastUpdateStatus": "Successful",
    "PackageType": "Zip",
    "Architectures": ["x86_64"],
    "EphemeralStorage": {"Size": 512},
    "Layers": [],
}


def test_get_function_response(model: ServiceModel) -> None:
    output = {
        "Configuration": CONFIGURATION,
        "Code": {"RepositoryType": "S3", "Location": "http://localhost/code?x=1"},
        "Tags": {"team": "x"},
        "Concurrency": {"ReservedConcurrentExecutions": 0},
    }
    reply = rest_json.serialize_response(model.operation_model("GetFunction"), output)
    assert reply.status == 200
    assert ("Content-Type", "application/json") in reply.headers
    assert not any(name.lower() == "content-length" for name, _ in reply.headers)
    assert _received(reply, "get_function", FunctionName="f") == output


def test_create_function_response_uses_model_status(model: ServiceModel) -> None:
    reply = rest_json.serialize_response(model.operation_model("CreateFunction"), CONFIGURATION)
    assert reply.status == 201
    assert json.loads(reply.body)["MemorySize"] == 128


def test_list_functions_response(model: ServiceModel) -> None:
    output = {"Functions": [CONFIGURATION, {"FunctionName": "g"}], "NextMarker": "n/+="}
    reply = rest_json.serialize_response(model.operation_model("ListFunctions"), output)
    assert _received(reply, "list_functions") == output


def test_none_members_are_left_out(model: ServiceModel) -> None:
    output = {"Functions": [], "NextMarker": None, "NotModelled": 1}
    reply = rest_json.serialize_response(model.operation_model("ListFunctions"), output)
    assert json.loads(reply.body) == {"Functions": []}


def test_invoke_response(model: ServiceModel) -> None:
    output = {
        "StatusCode": 200,
        "FunctionError": "Unhandled",
        "LogResult": base64.b64encode(b"START RequestId: 1\n").decode(),
        "ExecutedVersion": "$LATEST",
        "Payload": b'{"errorMessage": "boom"}',
    }
    reply = rest_json.serialize_response(model.operation_model("Invoke"), output)
    assert reply.body == output["Payload"]
    assert ("Content-Type", "application/octet-stream") in reply.headers
    parsed = _received(reply, "invoke", FunctionName="f")
    parsed["Payload"] = parsed["Payload"].read()
    assert parsed == output


def test_invoke_status_code_member_sets_status(model: ServiceModel) -> None:
    operation = model.operation_model("Invoke")
    reply = rest_json.serialize_response(
        operation, {"StatusCode": 202}, payload_content_type="application/json"
    )
    assert (reply.status, reply.body) == (202, b"")
    assert ("Content-Type", "application/json") in reply.headers
    parsed = _received(reply, "invoke", FunctionName="f", InvocationType="Event")
    assert parsed["StatusCode"] == 202
    assert parsed["Payload"].read() == b""


def test_no_output_shape(model: ServiceModel) -> None:
    reply = rest_json.serialize_response(model.operation_model("DeleteFunction"), {})
    assert (reply.status, reply.body) == (200, b"")
    reply = rest_json.serialize_response(model.operation_model("TagResource"), {})
    assert (reply.status, reply.body) == (204, b"")
    assert _received(reply, "tag_resource", Resource=ARN, Tags={"a": "b"}) == {}


def test_response_through_botocore_parser_directly(model: ServiceModel) -> None:
    operation = model.operation_model("Invoke")
    output = {"StatusCode": 200, "ExecutedVersion": "7", "Payload": b"[]"}
    reply = rest_json.serialize_response(operation, output)
    parsed = create_parser("rest-json").parse(
        {"status_code": reply.status, "headers": HeadersDict(reply.headers), "body": reply.body},
        operation.output_shape,
    )
    # Given bytes rather than a stream, botocore's parser decodes a blob payload to text.
    assert (parsed["StatusCode"], parsed["ExecutedVersion"], parsed["Payload"]) == (200, "7", "[]")


# ------------------------------------------------------------------ errors


def _client_error(error: Exception, method: str, **params: Any) -> dict[str, Any]:
    assert isinstance(error, LambdaApiError)
    with pytest.raises(ClientError) as raised:
        getattr(_client(rest_json.serialize_error(error), []), method)(**params)
    response: dict[str, Any] = raised.value.response
    return response


def test_resource_not_found() -> None:
    error = ResourceNotFoundException(f"Function not found: {ARN}")
    reply = rest_json.serialize_error(error)
    assert reply.status == 404
    assert json.loads(reply.body) == {"Type": "User", "Message": f"Function not found: {ARN}"}
    response = _client_error(error, "get_function", FunctionName="f")
    assert response["Error"] == {"Code": "ResourceNotFoundException", "Message": error.message}
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert response["Type"] == "User"


def test_validation_exception_has_no_type() -> None:
    error = ValidationException.from_items(["Value null at 'functionName' failed"])
    assert "Type" not in json.loads(rest_json.serialize_error(error).body)
    response = _client_error(error, "get_function", FunctionName="f")
    assert response["Error"]["Code"] == "ValidationException"
    assert response["Error"]["Message"] == error.message
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_too_many_requests_carries_reason() -> None:
    error = TooManyRequestsException(
        "Rate Exceeded.", Reason="ReservedFunctionConcurrentInvocationLimitExceeded"
    )
    response = _client_error(error, "invoke", FunctionName="f")
    assert response["Error"]["Code"] == "TooManyRequestsException"
    assert response["Error"]["Message"] == "Rate Exceeded."
    assert response["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 429


def test_error_code_with_coral_suffix_still_parses() -> None:
    error = ResourceConflictException("The operation cannot be performed at this time.")
    reply = rest_json.serialize_error(error)
    headers = [
        (k, f"{v}:http://internal.amazon.com/coral/com.amazonaws.awslambda.frontend/")
        if k == "x-amzn-ErrorType"
        else (k, v)
        for k, v in reply.headers
    ]
    parsed = create_parser("rest-json").parse(
        {"status_code": reply.status, "headers": HeadersDict(headers), "body": reply.body}, None
    )
    assert parsed["Error"]["Code"] == "ResourceConflictException"
    assert parsed["Error"]["Message"] == error.message


def test_service_exception() -> None:
    response = _client_error(ServiceException("Internal error"), "get_function", FunctionName="f")
    assert response["Error"]["Code"] == "ServiceException"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 500


# ------------------------------------------------------------------ model features Lambda lacks

TOY = {
    "metadata": {"protocol": "rest-json", "apiVersion": "2020-01-01", "endpointPrefix": "toy"},
    "operations": {
        "Put": {
            "name": "Put",
            "http": {"method": "PUT", "requestUri": "/things/{Id}?mode=full", "responseCode": 200},
            "input": {"shape": "PutIn"},
            "output": {"shape": "PutOut"},
        },
        "Upload": {
            "name": "Upload",
            "http": {"method": "POST", "requestUri": "/upload/{Path+}"},
            "input": {"shape": "UploadIn"},
            "output": {"shape": "UploadOut"},
        },
    },
    "shapes": {
        "S": {"type": "string"},
        "I": {"type": "integer"},
        "B": {"type": "boolean"},
        "D": {"type": "double"},
        "Blob": {"type": "blob"},
        "T": {"type": "timestamp"},
        "TIso": {"type": "timestamp", "timestampFormat": "iso8601"},
        "Json": {"type": "string"},
        "SList": {"type": "list", "member": {"shape": "S"}},
        "IList": {"type": "list", "member": {"shape": "I"}},
        "SMap": {"type": "map", "key": {"shape": "S"}, "value": {"shape": "S"}},
        "Nested": {
            "type": "structure",
            "members": {
                "When": {"shape": "T"},
                "WhenIso": {"shape": "TIso"},
                "Data": {"shape": "Blob"},
                "Ratio": {"shape": "D"},
                "Deep": {
                    "shape": "DeepMap",
                },
            },
        },
        "DeepMap": {"type": "map", "key": {"shape": "S"}, "value": {"shape": "NestedList"}},
        "NestedList": {"type": "list", "member": {"shape": "Leaf"}},
        "Leaf": {"type": "structure", "members": {"Name": {"shape": "S", "locationName": "name"}}},
        "PutIn": {
            "type": "structure",
            "required": ["Id"],
            "members": {
                "Id": {"shape": "I", "location": "uri", "locationName": "Id"},
                "Flag": {"shape": "B", "location": "querystring", "locationName": "flag"},
                "Since": {"shape": "T", "location": "querystring", "locationName": "since"},
                "Ids": {"shape": "IList", "location": "querystring", "locationName": "id"},
                "Extra": {"shape": "SMap", "location": "querystring"},
                "At": {"shape": "T", "location": "header", "locationName": "X-At"},
                "Names": {"shape": "SList", "location": "header", "locationName": "X-Names"},
                "Attrs": {
                    "shape": "Json",
                    "location": "header",
                    "locationName": "X-Attrs",
                    "jsonvalue": True,
                },
                "Meta": {"shape": "SMap", "location": "headers", "locationName": "x-meta-"},
                "Ratio": {"shape": "D", "location": "header", "locationName": "X-Ratio"},
                "Body": {"shape": "Nested"},
                "Label": {"shape": "S", "locationName": "label"},
            },
        },
        "PutOut": {
            "type": "structure",
            "members": {
                "At": {"shape": "T", "location": "header", "locationName": "X-At"},
                "Names": {"shape": "SList", "location": "header", "locationName": "X-Names"},
                "Attrs": {
                    "shape": "Json",
                    "location": "header",
                    "locationName": "X-Attrs",
                    "jsonvalue": True,
                },
                "Meta": {"shape": "SMap", "location": "headers", "locationName": "x-meta-"},
                "Flag": {"shape": "B", "location": "header", "locationName": "X-Flag"},
                "Count": {"shape": "I", "location": "header", "locationName": "X-Count"},
                "Body": {"shape": "Nested"},
                "Label": {"shape": "S", "locationName": "label"},
            },
        },
        "UploadIn": {
            "type": "structure",
            "payload": "Doc",
            "members": {
                "Path": {"shape": "S", "location": "uri", "locationName": "Path"},
                "Doc": {"shape": "Nested"},
            },
        },
        "UploadOut": {
            "type": "structure",
            "payload": "Doc",
            "members": {"Doc": {"shape": "Nested"}},
        },
    },
}

WHEN = dt.datetime(2024, 1, 2, 3, 4, 5, 123000, tzinfo=dt.UTC)
NESTED = {
    "When": WHEN,
    "WhenIso": WHEN,
    "Data": b"\x00\x01binary",
    "Ratio": 0.25,
    "Deep": {"k": [{"Name": "a"}, {"Name": "b"}]},
}


@pytest.fixture(scope="module")
def toy() -> ServiceModel:
    return ServiceModel(TOY, service_name="toy")


def _toy_request(operation: OperationModel, params: dict[str, Any]) -> AWSPreparedRequest:
    request_dict = create_serializer("rest-json").serialize_to_request(params, operation)
    prepare_request_dict(request_dict, endpoint_url="http://localhost:1")
    return create_request_object(request_dict).prepare()


def test_toy_request_round_trip(toy: ServiceModel) -> None:
    params = {
        "Id": 42,
        "Flag": False,
        "Since": WHEN,
        "Ids": [1, 2, 3],
        "Extra": {"free": "form", "other": "x"},
        "At": WHEN.replace(microsecond=0),
        "Names": ["plain", "with, comma", 'with "quote"'],
        "Attrs": {"nested": [1, {"a": None}]},
        "Meta": {"owner": "me"},
        "Ratio": 1.5,
        "Body": NESTED,
        "Label": "l",
    }
    assert _parse(Router(toy), _toy_request(toy.operation_model("Put"), params)) == (
        "Put",
        params,
    )


def test_toy_payload_structure_and_greedy_label(toy: ServiceModel) -> None:
    params = {"Path": "a/b c/d.txt", "Doc": NESTED}
    request = _toy_request(toy.operation_model("Upload"), params)
    assert _parse(Router(toy), request) == ("Upload", params)


def test_toy_response_round_trip(toy: ServiceModel) -> None:
    output = {
        "At": WHEN.replace(microsecond=0),
        "Names": ["a", "b"],
        "Attrs": {"x": [1, 2]},
        "Meta": {"owner": "me"},
        "Flag": True,
        "Count": 0,
        "Body": NESTED,
        "Label": "l",
    }
    for name, out in (("Put", output), ("Upload", {"Doc": NESTED})):
        operation = toy.operation_model(name)
        reply = rest_json.serialize_response(operation, out)
        parsed = create_parser("rest-json").parse(
            {
                "status_code": reply.status,
                "headers": HeadersDict(reply.headers),
                "body": reply.body,
            },
            operation.output_shape,
        )
        parsed.pop("ResponseMetadata")
        assert parsed == out


def test_json_body_timestamps_are_epoch_seconds(toy: ServiceModel) -> None:
    reply = rest_json.serialize_response(toy.operation_model("Put"), {"Body": {"When": WHEN}})
    assert json.loads(reply.body) == {"Body": {"When": WHEN.timestamp()}}
