"""Router: every request botocore's own Lambda client builds routes back to its operation."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import botocore.session
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.config import Config
from botocore.model import ServiceModel, Shape

from strato.api.routing import Router

ARN = "arn:aws:lambda:us-east-1:123456789012:function:f:1"


class _Raw(io.BytesIO):
    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.getvalue()


@pytest.fixture(scope="module")
def lambda_model() -> ServiceModel:
    return botocore.session.get_session().get_service_model("lambda")


@pytest.fixture(scope="module")
def router(lambda_model: ServiceModel) -> Router:
    return Router(lambda_model)


def _sent(service: str, method: str, **params: Any) -> AWSPreparedRequest:
    """The request botocore's client sends for ``method(**params)`` (never leaves the process)."""
    client = boto3.client(
        service,
        endpoint_url="http://localhost:1",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="y",
        config=Config(retries={"total_max_attempts": 1}),
    )
    sent: list[AWSPreparedRequest] = []

    def before_send(request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        sent.append(request)
        return AWSResponse(request.url, 200, {}, _Raw(b"{}"))

    client.meta.events.register("before-send", before_send)
    with contextlib.suppress(Exception):  # only the request matters here
        getattr(client, method)(**params)
    return sent[0]


def _route(router: Router, request: AWSPreparedRequest) -> tuple[str, dict[str, str]]:
    url = urlsplit(request.url)
    match = router.match(request.method, url.path, parse_qs(url.query, keep_blank_values=True))
    assert match is not None, f"{request.method} {request.url} did not route"
    return match.operation.name, match.uri_params


def _example(shape: Shape, depth: int = 0) -> Any:
    """A value botocore's client-side validation accepts for ``shape`` (required members only)."""
    kind = shape.type_name
    if kind == "structure":
        if depth > 4:
            return {}
        return {name: _example(shape.members[name], depth + 1) for name in shape.required_members}
    if kind == "list":
        return [_example(shape.member, depth + 1) for _ in range(shape.metadata.get("min", 0))]
    if kind == "map":
        return {}
    if kind == "string":
        if shape.enum:
            return shape.enum[0]
        return "x" * max(shape.metadata.get("min", 1), 1)
    if kind in ("integer", "long"):
        return max(int(shape.metadata.get("min", 1)), 1)
    if kind in ("float", "double"):
        return 1.0
    if kind == "boolean":
        return True
    if kind == "blob":
        return b"x"
    if kind == "timestamp":
        return dt.datetime(2024, 1, 2, tzinfo=dt.UTC)
    raise AssertionError(kind)


def _python_name(operation_name: str) -> str:
    return botocore.xform_name(operation_name)


def test_every_lambda_operation_routes_to_itself(
    router: Router, lambda_model: ServiceModel
) -> None:
    wrong = {}
    for name in lambda_model.operation_names:
        operation = lambda_model.operation_model(name)
        params = _example(operation.input_shape) if operation.input_shape else {}
        routed, _ = _route(router, _sent("lambda", _python_name(name), **params))
        if routed != name:
            wrong[name] = routed
    assert wrong == {}


@pytest.mark.parametrize(
    ("method", "params", "operation", "uri_params"),
    [
        ("get_function", {"FunctionName": ARN}, "GetFunction", {"FunctionName": ARN}),
        ("invoke", {"FunctionName": ARN}, "Invoke", {"FunctionName": ARN}),
        (
            "list_versions_by_function",
            {"FunctionName": "f"},
            "ListVersionsByFunction",
            {"FunctionName": "f"},
        ),
        (
            "get_alias",
            {"FunctionName": "f", "Name": "live"},
            "GetAlias",
            {"FunctionName": "f", "Name": "live"},
        ),
        ("list_tags", {"Resource": ARN}, "ListTags", {"Resource": ARN}),
        ("list_functions", {}, "ListFunctions", {}),
        ("list_layers", {}, "ListLayers", {}),
        (
            "get_layer_version_by_arn",
            {"Arn": "arn:aws:lambda:us-east-1:123456789012:layer:l:1"},
            "GetLayerVersionByArn",
            {},
        ),
        (
            "list_provisioned_concurrency_configs",
            {"FunctionName": "f"},
            "ListProvisionedConcurrencyConfigs",
            {"FunctionName": "f"},
        ),
        (
            "get_provisioned_concurrency_config",
            {"FunctionName": "f", "Qualifier": "1"},
            "GetProvisionedConcurrencyConfig",
            {"FunctionName": "f"},
        ),
        (
            "list_function_event_invoke_configs",
            {"FunctionName": "f"},
            "ListFunctionEventInvokeConfigs",
            {"FunctionName": "f"},
        ),
        (
            "remove_layer_version_permission",
            {"LayerName": "l", "VersionNumber": 3, "StatementId": "s"},
            "RemoveLayerVersionPermission",
            {"LayerName": "l", "VersionNumber": "3", "StatementId": "s"},
        ),
    ],
)
def test_routes_and_decodes_labels(
    router: Router,
    method: str,
    params: dict[str, Any],
    operation: str,
    uri_params: dict[str, str],
) -> None:
    assert _route(router, _sent("lambda", method, **params)) == (operation, uri_params)


def test_arn_label_arrives_percent_encoded(router: Router) -> None:
    request = _sent("lambda", "get_function", FunctionName=ARN)
    assert "arn%3Aaws%3Alambda" in urlsplit(request.url).path
    assert _route(router, request)[1] == {"FunctionName": ARN}


def test_literal_segment_beats_label(router: Router) -> None:
    versions = router.match("GET", "/2015-03-31/functions/f/versions")
    function = router.match("GET", "/2015-03-31/functions/versions")
    assert versions is not None and versions.operation.name == "ListVersionsByFunction"
    assert function is not None and function.operation.name == "GetFunction"
    assert function.uri_params == {"FunctionName": "versions"}


def test_method_and_unknown_paths(router: Router) -> None:
    assert router.match("PATCH", "/2015-03-31/functions/f") is None
    assert router.match("GET", "/2015-03-31/nothing-here") is None
    assert router.match("GET", "/2015-03-31/functions/a/b") is None  # labels never span "/"
    assert router.match("GET", "/2015-03-31/functions//configuration") is None


def test_query_literal_required(router: Router) -> None:
    plain = router.match("GET", "/2019-09-30/functions/f/provisioned-concurrency")
    listed = router.match(
        "GET", "/2019-09-30/functions/f/provisioned-concurrency", {"List": ["ALL"]}
    )
    other = router.match(
        "GET", "/2019-09-30/functions/f/provisioned-concurrency", {"List": ["SOME"]}
    )
    assert plain is not None and plain.operation.name == "GetProvisionedConcurrencyConfig"
    assert listed is not None and listed.operation.name == "ListProvisionedConcurrencyConfigs"
    assert other is not None and other.operation.name == "GetProvisionedConcurrencyConfig"


def test_trailing_slash_tolerated(router: Router) -> None:
    match = router.match("GET", "/2015-03-31/functions/")
    assert match is not None and match.operation.name == "ListFunctions"


def _model(operations: dict[str, tuple[str, str]]) -> ServiceModel:
    """A rest-xml model with one ``{Bucket}``/``{Key}`` input per operation."""
    shapes: dict[str, Any] = {
        "S": {"type": "string"},
        "In": {
            "type": "structure",
            "members": {
                "Bucket": {"shape": "S", "location": "uri", "locationName": "Bucket"},
                "Key": {"shape": "S", "location": "uri", "locationName": "Key"},
            },
        },
    }
    return ServiceModel(
        {
            "metadata": {"protocol": "rest-xml", "apiVersion": "2006-03-01"},
            "operations": {
                name: {
                    "name": name,
                    "http": {"method": method, "requestUri": uri},
                    "input": {"shape": "In"},
                }
                for name, (method, uri) in operations.items()
            },
            "shapes": shapes,
        },
        service_name="toy",
    )


def test_greedy_labels_and_bare_query_keys() -> None:
    router = Router(
        _model(
            {
                "GetObject": ("GET", "/{Bucket}/{Key+}"),
                "GetObjectAcl": ("GET", "/{Bucket}/{Key+}?acl"),
                "GetObjectPolicy": ("GET", "/{Bucket}/{Key+}/policy"),
                "ListObjects": ("GET", "/{Bucket}"),
                "GetBucketVersioning": ("GET", "/{Bucket}?versioning"),
                "ListBuckets": ("GET", "/"),
            }
        )
    )

    def name(path: str, query: dict[str, list[str]] | None = None) -> tuple[str, dict[str, str]]:
        match = router.match("GET", path, query)
        assert match is not None
        return match.operation.name, match.uri_params

    assert name("/b/a/b%20c.txt") == ("GetObject", {"Bucket": "b", "Key": "a/b c.txt"})
    assert name("/b/a/b", {"acl": [""]}) == ("GetObjectAcl", {"Bucket": "b", "Key": "a/b"})
    assert name("/b/a/policy") == ("GetObjectPolicy", {"Bucket": "b", "Key": "a"})
    assert name("/b") == ("ListObjects", {"Bucket": "b"})
    assert name("/b", {"versioning": [""]}) == ("GetBucketVersioning", {"Bucket": "b"})
    assert name("/") == ("ListBuckets", {})
