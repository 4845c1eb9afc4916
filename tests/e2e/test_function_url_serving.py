"""Function URLs served end to end: a real ``strato serve``, URLs created with boto3 and
fetched as they are with ``requests`` and with curl (no DNS set-up), checked against AWS's
recorded answers (``aws_url_serving_expectations.json``) and its documented event format."""

from __future__ import annotations

import base64
import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from strato.domain import limits
from tests.conftest import make_zip
from tests.e2e.conftest import ROLE, StratoServer, client_for, start_server, stop_server
from tests.e2e.test_permission_enforcement import create_credentials

EXPECTATIONS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "aws_url_serving_expectations.json").read_text())["expectations"]
PLATFORM = "000000000000"

#: What the function does depends on the path it is called on.
HANDLER = '''
import base64, json

def handler(event, context):
    path = event["rawPath"]
    if path == "/error":
        raise RuntimeError("boom")
    if path == "/version":
        return {"statusCode": 200, "body": context.function_version}
    if path == "/return":
        return json.loads(event["body"])
    if path == "/binary":
        data = base64.b64decode(event["body"]) if event["isBase64Encoded"] else b""
        return {"statusCode": 200, "headers": {"Content-Type": "application/octet-stream"},
                "isBase64Encoded": True, "body": base64.b64encode(data[::-1]).decode()}
    return {"statusCode": 200, "headers": {"Content-Type": "application/json",
                                           "x-invoked": "yes"},
            "body": json.dumps(event)}
'''
INVOKE_URLS = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "lambda:InvokeFunctionUrl", "Resource": "*"}]}
READ_ONLY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["lambda:Get*", "lambda:List*"], "Resource": "*"}]}


@dataclass
class World:
    server: StratoServer
    admin: Any
    keys: dict[str, tuple[str, str]]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data = tmp_path_factory.mktemp("url-serving")
    keys = {"invoker": create_credentials(data, "invoker", PLATFORM, INVOKE_URLS),
            "reader": create_credentials(data, "reader", PLATFORM, READ_ONLY)}
    server = start_server(data, "--keep-alive", "60")
    try:
        yield World(server, client_for(server.endpoint, parameter_validation=False), keys)
    finally:
        stop_server(server)


@pytest.fixture
def function(world: World) -> Iterator[str]:
    name = f"url-{uuid.uuid4().hex[:10]}"
    world.admin.create_function(FunctionName=name, Runtime="python3.11", Role=ROLE,
                                Handler="app.handler", Code={"ZipFile": make_zip({"app.py": HANDLER})})
    world.admin.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    yield name
    world.admin.delete_function(FunctionName=name)


def public_url(world: World, name: str, qualifier: str | None = None, **config: Any) -> str:
    """A URL of AuthType NONE open to everyone, as AWS's console makes it."""
    extra = {"Qualifier": qualifier} if qualifier else {}
    url = world.admin.create_function_url_config(FunctionName=name, AuthType="NONE", **extra,
                                                 **config)["FunctionUrl"]
    world.admin.add_permission(FunctionName=name, StatementId="public", Principal="*",
                               Action="lambda:InvokeFunctionUrl", FunctionUrlAuthType="NONE",
                               **extra)
    return str(url)


def curl(*args: str) -> tuple[int, dict[str, list[str]], bytes]:
    """Status, headers (lower-case names) and body of one curl call."""
    out = subprocess.run(["curl", "-sS", "-D", "-", "-o", "-", *args], check=True,
                         capture_output=True, timeout=60).stdout
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return int(lines[0].split()[1]), headers, body


# the event ----------------------------------------------------------------------------------

def test_the_event_is_awss_payload_2_0(world: World, function: str) -> None:
    url = public_url(world, function)
    assert url.endswith("/") and urlsplit(url).hostname == "127.0.0.1"
    sent = EXPECTATIONS["urlx.echo_http_default"]["input"]
    before = time.time()
    # requests (urllib3) would re-quote the recorded path's "%Ft", not an escape: this path
    # has a real one; curl sends the recorded path as is below.
    response = requests.post(url.rstrip("/") + sent["path_and_query"].replace("%F", "%2F", 1),
                             json=sent["json_body"], timeout=60,
                             headers={**sent["headers"], "Cookie": "theme=dark; session=abc"})
    assert response.status_code == 200 and response.headers["x-invoked"] == "yes"
    event = response.json()
    expected = EXPECTATIONS["urlx.echo_http_default"]["value"]
    url_id = urlsplit(url).path.split("/")[2]
    host = urlsplit(url).netloc
    assert event["version"] == "2.0" and event["routeKey"] == "$default"
    assert event["rawPath"] == "/pa2%2Fth/1"
    assert event["rawQueryString"] == "q=query&multiQuery=foo&multiQuery=%2Fbar"
    assert event["queryStringParameters"] == expected["args"]
    assert event["cookies"] == ["theme=dark", "session=abc"]
    assert "cookie" not in event["headers"]
    assert json.loads(event["body"]) == expected["data"] and event["isBase64Encoded"] is False
    for name, value in expected["headers"].items():
        if not value.startswith("<"):
            assert event["headers"][name] == value.replace("<<domain>>", host), name
    context = event["requestContext"]
    assert context["accountId"] == "anonymous" and "authorizer" not in context
    assert context["apiId"] == context["domainPrefix"] == url_id
    assert context["domainName"] == host
    assert context["http"] == {"method": "POST", "path": "/pa2%2Fth/1", "protocol": "HTTP/1.1",
                               "sourceIp": "127.0.0.1", "userAgent": "test/echo"}
    assert context["requestId"] == response.headers["x-amzn-RequestId"]
    assert before * 1000 - 1000 <= context["timeEpoch"] <= time.time() * 1000 + 1000
    assert context["time"] == time.strftime("%d/%b/%Y:%H:%M:%S +0000",
                                            time.gmtime(context["timeEpoch"] / 1000))
    status, _, body = curl("--path-as-is", url.rstrip("/") + sent["path_and_query"])
    assert status == 200 and json.loads(body)["rawPath"] == expected["path"]


def test_a_text_body_and_a_form_with_curl(world: World, function: str) -> None:
    url = public_url(world, function)
    status, headers, body = curl("-H", "Content-Type: text/plain", "--data-binary", "text",
                                 url + "echo")
    event = json.loads(body)
    recorded = EXPECTATIONS["url.event_text_body"]["value"]
    assert status == 200 and headers["content-type"] == ["application/json"]
    assert event["body"] == recorded["body"] and event["isBase64Encoded"] is recorded["isBase64Encoded"]
    # multipart/form-data is not text: it arrives as base64 of the exact bytes (recorded).
    status, _, body = curl("-F", "field=value", url + "test/value?a=1&a=2")
    event = json.loads(body)
    assert status == 200 and event["isBase64Encoded"] is True
    assert b'name="field"' in base64.b64decode(event["body"])
    assert event["rawPath"] == "/test/value" and event["queryStringParameters"] == {"a": "1,2"}


def test_binary_bodies_both_ways(world: World, function: str, tmp_path: Path) -> None:
    url = public_url(world, function)
    data = bytes(range(256)) * 64
    response = requests.post(url + "binary", data=data,
                             headers={"Content-Type": "application/octet-stream"}, timeout=60)
    assert response.status_code == 200 and response.content == data[::-1]
    assert response.headers["Content-Type"] == "application/octet-stream"
    upload = tmp_path / "upload.png"
    upload.write_bytes(data)
    status, headers, body = curl("-H", "Content-Type: image/png", "--data-binary", f"@{upload}",
                                 url + "binary")
    assert status == 200 and body == data[::-1]
    assert headers["content-length"] == [str(len(data))]


# the response -------------------------------------------------------------------------------

@pytest.mark.parametrize("case", [key.removeprefix("url.invoke.") for key in EXPECTATIONS
                                  if key.startswith("url.invoke.")])
def test_results_map_as_aws_recorded(world: World, function: str, case: str) -> None:
    returned = {"boolean": True, "dict": {"hello": "world"}, "float": 3.1, "integer": 3,
                "list-mixed": ["hello", 3, True], "string": "hello",
                "http-response": {"statusCode": 200, "body": "body123"},
                "http-response-json": {"statusCode": 200,
                                       "body": json.dumps({"hello": "world"})}}[case]
    url = public_url(world, function)
    response = requests.post(url + "return", json=returned, timeout=60)
    recorded = EXPECTATIONS[f"url.invoke.{case}"]["value"]
    assert response.status_code == recorded["statuscode"]
    content = recorded["content"]
    assert (response.json() if isinstance(content, dict) else response.text) == content
    for name, value in recorded["headers"].items():
        assert response.headers[name] == value, name


def test_status_headers_and_cookies(world: World, function: str) -> None:
    url = public_url(world, function)
    recorded = EXPECTATIONS["url.status_and_headers"]["value"]
    name, value = recorded["custom_header"]
    response = requests.post(url + "return", timeout=60, json={
        "statusCode": recorded["string_status_code"]["statusCode"],
        "body": recorded["string_status_code"]["body"], "headers": {name: value},
        "cookies": ["a=1; Path=/; HttpOnly", "b=2"]})
    assert response.status_code == recorded["string_status_code"]["resulting_status"]
    assert response.text == recorded["string_status_code"]["body"]
    assert response.headers[name] == value
    assert response.raw.headers.getlist("Set-Cookie") == ["a=1; Path=/; HttpOnly", "b=2"]
    response = requests.post(url + "return", json={"statusCode": recorded["status_code"]},
                             timeout=60)
    assert response.status_code == 201


def test_a_function_error_is_502(world: World, function: str) -> None:
    url = public_url(world, function)
    response = requests.get(url + "error", timeout=60)
    recorded = EXPECTATIONS["url.function_error"]["value"]
    assert (response.status_code, response.text) == (recorded["status_code"], recorded["body"])


def test_a_throttled_function_is_429(world: World, function: str) -> None:
    url = public_url(world, function)
    world.admin.put_function_concurrency(FunctionName=function, ReservedConcurrentExecutions=0)
    response = requests.get(url, timeout=60)
    assert response.status_code == EXPECTATIONS["urlx.throttle_doc"]["value"]["reserved_concurrency_0_status"]
    assert response.headers["x-amzn-ErrorType"] == "TooManyRequestsException"
    world.admin.delete_function_concurrency(FunctionName=function)
    assert requests.get(url, timeout=60).status_code == 200


def test_a_body_over_6_mb_is_413_and_runs_nothing(world: World, function: str) -> None:
    url = public_url(world, function)
    response = requests.post(url + "return", data=b"x" * (limits.SYNC_PAYLOAD_MAX_BYTES + 1),
                             headers={"Content-Type": "text/plain"}, timeout=60)
    assert response.status_code == 413
    assert response.headers["x-amzn-ErrorType"] == "RequestEntityTooLargeException"
    assert "6291456" in response.json()["Message"]
    # A body within the limit whose event (base64 and all) is over it is refused the same way.
    response = requests.post(url + "return", data=b"\x00" * (limits.SYNC_PAYLOAD_MAX_BYTES - 10),
                             headers={"Content-Type": "application/octet-stream"}, timeout=60)
    assert response.status_code == 413


# who may call -------------------------------------------------------------------------------

def test_auth_none_needs_the_public_permission(world: World, function: str) -> None:
    url = world.admin.create_function_url_config(FunctionName=function, AuthType="NONE")["FunctionUrl"]
    forbidden = EXPECTATIONS["urlx.forbidden_response"]["value"]
    response = requests.get(url, timeout=60)
    assert response.status_code == forbidden["status_code"]
    assert response.json() == EXPECTATIONS["urlx.permission_missing"]["value"]
    assert response.headers["x-amzn-ErrorType"] == forbidden["headers"]["x-amzn-ErrorType"]
    # A permission for AWS_IAM URLs, or for the account rather than everyone, opens nothing.
    world.admin.add_permission(FunctionName=function, StatementId="iam-only", Principal="*",
                               Action="lambda:InvokeFunctionUrl", FunctionUrlAuthType="AWS_IAM")
    world.admin.add_permission(FunctionName=function, StatementId="account",
                               Principal=PLATFORM, Action="lambda:InvokeFunctionUrl",
                               FunctionUrlAuthType="NONE")
    assert requests.get(url, timeout=60).status_code == 403
    world.admin.add_permission(FunctionName=function, StatementId="public", Principal="*",
                               Action="lambda:InvokeFunctionUrl", FunctionUrlAuthType="NONE")
    assert requests.get(url, timeout=60).status_code == 200


def _signed_get(url: str, key: tuple[str, str]) -> requests.Response:
    request = AWSRequest(method="GET", url=url, headers={"Host": urlsplit(url).netloc})
    SigV4Auth(Credentials(*key), "lambda", "us-east-1").add_auth(request)
    return requests.get(url, headers=dict(request.headers), timeout=60)


def test_auth_aws_iam_needs_a_signature_of_an_allowed_caller(world: World, function: str) -> None:
    url = world.admin.create_function_url_config(FunctionName=function,
                                                 AuthType="AWS_IAM")["FunctionUrl"] + "who?x=1"
    unsigned = requests.get(url, timeout=60)
    assert unsigned.status_code == 403
    assert unsigned.json() == EXPECTATIONS["urlx.permission_missing"]["value"]
    assert _signed_get(url, ("test", "wrong-secret")).status_code == 403
    assert _signed_get(url, world.keys["reader"]).status_code == 403
    # The identity policy of the caller allows it...
    response = _signed_get(url, world.keys["invoker"])
    assert response.status_code == 200
    iam = response.json()["requestContext"]["authorizer"]["iam"]
    assert iam["accessKey"] == world.keys["invoker"][0] and iam["accountId"] == PLATFORM
    assert iam["userArn"].endswith(":user/invoker")
    assert response.json()["requestContext"]["accountId"] == PLATFORM
    # ... or the function's resource policy does, for AWS_IAM URLs.
    world.admin.add_permission(FunctionName=function, StatementId="reader",
                               Principal=iam["userArn"].replace("invoker", "reader"),
                               Action="lambda:InvokeFunctionUrl", FunctionUrlAuthType="AWS_IAM")
    assert _signed_get(url, world.keys["reader"]).status_code == 200
    assert _signed_get(url, ("test", "test")).status_code == 200


# CORS ---------------------------------------------------------------------------------------

def test_cors_preflight_and_response_headers(world: World, function: str) -> None:
    url = public_url(world, function, Cors={
        "AllowOrigins": ["https://app.example.com"], "AllowMethods": ["GET", "POST"],
        "AllowHeaders": ["x-custom"], "ExposeHeaders": ["x-invoked"], "MaxAge": 600,
        "AllowCredentials": True})
    preflight = requests.options(url, timeout=60, headers={
        "Origin": "https://app.example.com", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-custom"})
    # Answered by strato: the function (which would add x-invoked) never ran.
    assert preflight.status_code == 200 and preflight.content == b""
    assert "x-invoked" not in preflight.headers
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert preflight.headers["Access-Control-Allow-Methods"] == "GET,POST"
    assert preflight.headers["Access-Control-Allow-Headers"] == "x-custom"
    assert preflight.headers["Access-Control-Max-Age"] == "600"
    assert preflight.headers["Access-Control-Allow-Credentials"] == "true"
    assert preflight.headers["Vary"] == "Origin"
    response = requests.get(url, headers={"Origin": "https://app.example.com"}, timeout=60)
    assert response.headers["x-invoked"] == "yes"
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert response.headers["Access-Control-Expose-Headers"] == "x-invoked"
    other = requests.get(url, headers={"Origin": "https://evil.example.com"}, timeout=60)
    assert other.status_code == 200
    assert not [h for h in other.headers if h.lower().startswith("access-control-")]


def test_without_cors_a_preflight_reaches_the_function(world: World, function: str) -> None:
    url = public_url(world, function)
    response = requests.options(url, timeout=60, headers={
        "Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"})
    assert response.headers["x-invoked"] == "yes"
    assert response.json()["requestContext"]["http"]["method"] == "OPTIONS"


# aliases ------------------------------------------------------------------------------------

def test_an_alias_has_its_own_url_invoking_its_version(world: World, function: str) -> None:
    version = world.admin.publish_version(FunctionName=function)["Version"]
    world.admin.create_alias(FunctionName=function, Name="live", FunctionVersion=version)
    alias_url = public_url(world, function, "live")
    latest_url = public_url(world, function)
    assert alias_url != latest_url
    assert requests.get(alias_url + "version", timeout=60).text == version
    assert requests.get(latest_url + "version", timeout=60).text == "$LATEST"
    # The alias's URL is refused once the alias is gone.
    world.admin.delete_alias(FunctionName=function, Name="live")
    assert requests.get(alias_url + "version", timeout=60).status_code == 403
