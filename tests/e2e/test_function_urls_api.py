"""Function URL configurations (Create, Get, Update, Delete and ListFunctionUrlConfig(s))
through boto3 and the AWS CLI against a real server, held against AWS's recorded answers
(``aws_url_api_expectations.json``). Every refused request leaves the URLs as they were."""

from __future__ import annotations

import json
import re
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.e2e.conftest import CreateFunction, StratoServer
from tests.e2e.recordings import ACCOUNT, REGION, assert_matches, function_arn
from tests.e2e.test_first_hour import ADMIN_ENV, _run
from tests.e2e.test_permissions_api import raw_bodies

pytestmark = pytest.mark.e2e

RECORDINGS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "aws_url_api_expectations.json").read_text())["expectations"]


def recorded(key: str, **names: str) -> Any:
    """The recording ``key`` with its placeholders filled in (region and account always)."""
    text = json.dumps(RECORDINGS[key])
    for placeholder, value in {"region": REGION, "account": ACCOUNT, **names}.items():
        text = text.replace(f"<<{placeholder}>>", value)
    return json.loads(text)


def url_pattern(endpoint: str) -> re.Pattern[str]:
    """A ``FunctionUrl`` of the server at ``endpoint`` (the default scheme: a path below it)."""
    return re.compile(re.escape(endpoint) + r"/lambda-url/([a-z0-9]{32})/")


def as_recorded(response: dict[str, Any], endpoint: str) -> dict[str, Any]:
    """``response`` with each ``FunctionUrl`` checked and written as AWS's recorder redacted
    it (``lambda-url``)."""
    def redact(config: dict[str, Any]) -> dict[str, Any]:
        assert url_pattern(endpoint).fullmatch(config["FunctionUrl"]), config["FunctionUrl"]
        return {**config, "FunctionUrl": "lambda-url"}

    if "FunctionUrlConfigs" in response:
        return {**response, "FunctionUrlConfigs": [redact(c) for c in response["FunctionUrlConfigs"]]}
    return redact(response)


def assert_recorded(response: dict[str, Any], endpoint: str, key: str, **names: str) -> None:
    assert_matches(as_recorded(response, endpoint), recorded(key, **names)["value"], path=key,
                   exact=True)


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
    if expected["body_message_key"] is not None:
        assert body[expected["body_message_key"]] == expected["message"], (key, body)
    assert body.get("Type") == expected["body_type"], (key, body)


def urls(client: Any, name: str) -> list[dict[str, Any]]:
    return list(client.list_function_url_configs(FunctionName=name)["FunctionUrlConfigs"])


def test_url_config_lifecycle(strato: StratoServer, lambda_client: Any,
                              create_function: CreateFunction, function_name: str) -> None:
    create_function()
    name = {"function_name": function_name}
    created = lambda_client.create_function_url_config(FunctionName=function_name,
                                                       AuthType="NONE")
    assert_recorded(created, strato.endpoint, "url.lifecycle.url_creation", **name)
    check_error(lambda_client, "url.duplicate", lambda: lambda_client.create_function_url_config(
        FunctionName=function_name, AuthType="AWS_IAM"), **name)
    got = lambda_client.get_function_url_config(FunctionName=function_name)
    assert_recorded(got, strato.endpoint, "url.lifecycle.get_url_config", **name)
    assert got["AuthType"] == "NONE" and got["CreationTime"] == created["CreationTime"]
    updated = lambda_client.update_function_url_config(FunctionName=function_name,
                                                       AuthType="AWS_IAM")
    assert_recorded(updated, strato.endpoint, "url.lifecycle.updated_url_config", **name)
    # The URL stays the same across updates; the update is what Get answers from then on.
    assert updated["FunctionUrl"] == created["FunctionUrl"]
    assert updated["CreationTime"] == created["CreationTime"]
    assert updated["LastModifiedTime"] >= got["LastModifiedTime"]
    assert lambda_client.get_function_url_config(FunctionName=function_name)["AuthType"] == "AWS_IAM"
    deleted = lambda_client.delete_function_url_config(FunctionName=function_name)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    check_error(lambda_client, "url.get_after_delete",
                lambda: lambda_client.get_function_url_config(FunctionName=function_name), **name)
    assert urls(lambda_client, function_name) == []
    # A new URL of the same function is a new URL.
    again = lambda_client.create_function_url_config(FunctionName=function_name, AuthType="NONE")
    assert again["FunctionUrl"] != created["FunctionUrl"]


def test_cors_and_invoke_mode_round_trip(strato: StratoServer, lambda_client: Any,
                                         create_function: CreateFunction,
                                         function_name: str) -> None:
    create_function()
    cors = {"AllowCredentials": True, "AllowHeaders": ["x-custom"], "AllowMethods": ["GET", "POST"],
            "AllowOrigins": ["https://example.com"], "ExposeHeaders": ["x-out"], "MaxAge": 600}
    created = lambda_client.create_function_url_config(
        FunctionName=function_name, AuthType="AWS_IAM", Cors=cors, InvokeMode="RESPONSE_STREAM")
    assert created["Cors"] == cors and created["InvokeMode"] == "RESPONSE_STREAM"
    got = lambda_client.get_function_url_config(FunctionName=function_name)
    assert got["Cors"] == cors and got["InvokeMode"] == "RESPONSE_STREAM"
    # Given CORS settings replace the whole configuration; what is not given stays.
    updated = lambda_client.update_function_url_config(
        FunctionName=function_name, Cors={"AllowOrigins": ["*"]}, InvokeMode="BUFFERED")
    assert updated["Cors"] == {"AllowOrigins": ["*"]} and updated["InvokeMode"] == "BUFFERED"
    assert updated["AuthType"] == "AWS_IAM"
    assert lambda_client.get_function_url_config(FunctionName=function_name)["Cors"] == {
        "AllowOrigins": ["*"]}


def test_url_config_exceptions(lambda_client: Any, create_function: CreateFunction,
                               function_name: str) -> None:
    """Each bad request gets AWS's answer and creates nothing."""
    create_function()
    missing = f"missing-{uuid.uuid4().hex[:8]}"
    name = {"function_name": function_name}
    cases: list[tuple[str, Callable[[], Any]]] = [
        ("url.create_function_url_config_name_doesnotexist",
         lambda: lambda_client.create_function_url_config(FunctionName=missing, AuthType="NONE")),
        ("url.create_function_url_config_qualifier_alias_doesnotexist",
         lambda: lambda_client.create_function_url_config(
             FunctionName=function_name, Qualifier="nosuchalias", AuthType="NONE")),
        ("url.create_function_url_config_qualifier_latest",
         lambda: lambda_client.create_function_url_config(
             FunctionName=function_name, Qualifier="$LATEST", AuthType="NONE")),
        ("url.create_function_url_config_qualifier_version",
         lambda: lambda_client.create_function_url_config(
             FunctionName=function_name, Qualifier="1", AuthType="NONE")),
        ("url.invalid_invoke_mode",
         lambda: lambda_client.create_function_url_config(
             FunctionName=function_name, AuthType="NONE", InvokeMode="UNKNOWN")),
        ("url.get_function_url_config_name_doesnotexist",
         lambda: lambda_client.get_function_url_config(FunctionName=missing)),
        ("fn.not_found.get_function_url_config",
         lambda: lambda_client.get_function_url_config(FunctionName=missing)),
        ("url.get_function_url_config_config_doesnotexist",
         lambda: lambda_client.get_function_url_config(FunctionName=function_name)),
        ("url.update_function_url_config_config_doesnotexist",
         lambda: lambda_client.update_function_url_config(FunctionName=function_name,
                                                          AuthType="NONE")),
        ("url.delete_function_url_config_config_doesnotexist",
         lambda: lambda_client.delete_function_url_config(FunctionName=function_name)),
        ("url.list_function_notfound",
         lambda: lambda_client.list_function_url_configs(FunctionName=missing)),
    ]
    for key, call in cases:
        check_error(lambda_client, key, call, **name)
    with pytest.raises(ClientError) as caught:
        lambda_client.create_function_url_config(FunctionName=function_name)
    assert caught.value.response["Error"]["Message"] == (
        "1 validation error detected: Value null at 'authType' failed to satisfy constraint: "
        "Member must not be null")
    assert urls(lambda_client, function_name) == []
    # Refused changes of an existing URL change nothing either.
    lambda_client.create_function_url_config(FunctionName=function_name, AuthType="NONE")
    before = lambda_client.get_function_url_config(FunctionName=function_name)
    with pytest.raises(ClientError) as caught:
        lambda_client.update_function_url_config(FunctionName=function_name, AuthType="BASIC")
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as caught:
        lambda_client.update_function_url_config(
            FunctionName=function_name, Cors={"AllowMethods": ["GET", "TOOLONGMETHOD"]})
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    check_error(lambda_client, "url.duplicate", lambda: lambda_client.create_function_url_config(
        FunctionName=function_name, AuthType="AWS_IAM"), **name)
    after = lambda_client.get_function_url_config(FunctionName=function_name)
    assert {**after, "ResponseMetadata": None} == {**before, "ResponseMetadata": None}


def test_list_paging_and_aliases_with_their_own_url(
        strato: StratoServer, lambda_client: Any, create_function: CreateFunction,
        function_name: str) -> None:
    create_function()
    version = lambda_client.publish_version(FunctionName=function_name)["Version"]
    lambda_client.create_alias(FunctionName=function_name, Name="urlalias", FunctionVersion=version)
    unqualified = lambda_client.create_function_url_config(FunctionName=function_name,
                                                           AuthType="NONE")
    aliased = lambda_client.create_function_url_config(FunctionName=function_name,
                                                       Qualifier="urlalias", AuthType="NONE")
    assert aliased["FunctionArn"] == function_arn(function_name, "urlalias")
    assert aliased["FunctionUrl"] != unqualified["FunctionUrl"]
    assert lambda_client.get_function_url_config(
        FunctionName=function_name, Qualifier="urlalias")["FunctionUrl"] == aliased["FunctionUrl"]
    # An alias's URL is also reached with the qualifier in the name.
    assert lambda_client.get_function_url_config(
        FunctionName=f"{function_name}:urlalias")["FunctionUrl"] == aliased["FunctionUrl"]
    listed = lambda_client.list_function_url_configs(FunctionName=function_name)
    assert_recorded(listed, strato.endpoint, "url.list_all", function_name=function_name)
    first = lambda_client.list_function_url_configs(FunctionName=function_name, MaxItems=1)
    assert [c["FunctionArn"] for c in first["FunctionUrlConfigs"]] == [function_arn(function_name)]
    rest = lambda_client.list_function_url_configs(FunctionName=function_name,
                                                   Marker=first["NextMarker"])
    assert [c["FunctionArn"] for c in rest["FunctionUrlConfigs"]] == [
        function_arn(function_name, "urlalias")]
    assert "NextMarker" not in rest
    # Deleting the alias deletes its URL; a new alias of that name has none.
    lambda_client.delete_alias(FunctionName=function_name, Name="urlalias")
    lambda_client.create_alias(FunctionName=function_name, Name="urlalias", FunctionVersion=version)
    check_error(lambda_client, "url.get_function_url_config_config_doesnotexist",
                lambda: lambda_client.get_function_url_config(FunctionName=function_name,
                                                              Qualifier="urlalias"))
    assert [c["FunctionUrl"] for c in urls(lambda_client, function_name)] == [
        unqualified["FunctionUrl"]]


def test_deleting_the_function_deletes_its_urls(lambda_client: Any,
                                               create_function: CreateFunction,
                                               function_name: str) -> None:
    create_function()
    lambda_client.create_function_url_config(FunctionName=function_name, AuthType="NONE")
    lambda_client.delete_function(FunctionName=function_name)
    create_function()
    check_error(lambda_client, "url.get_function_url_config_config_doesnotexist",
                lambda: lambda_client.get_function_url_config(FunctionName=function_name))
    assert urls(lambda_client, function_name) == []


def test_the_aws_cli_reads_a_url(strato: StratoServer, lambda_client: Any,
                                 create_function: CreateFunction, function_name: str) -> None:
    create_function()
    created = lambda_client.create_function_url_config(FunctionName=function_name,
                                                       AuthType="AWS_IAM")
    done = _run(sys.executable, "-m", "awscli", "--endpoint-url", strato.endpoint, "lambda",
                "get-function-url-config", "--function-name", function_name, env=ADMIN_ENV)
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["FunctionUrl"] == created["FunctionUrl"] and shown["AuthType"] == "AWS_IAM"
    assert url_pattern(strato.endpoint).fullmatch(shown["FunctionUrl"])
