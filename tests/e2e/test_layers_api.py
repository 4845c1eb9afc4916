"""Layer operations through boto3 against a server: every operation, AWS's recorded answers
and errors, ``Layers`` on functions, and the 250 MB over a function and its layers."""

from __future__ import annotations

import urllib.request
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import make_zip
from tests.e2e.conftest import ROLE, CreateFunction
from tests.e2e.recordings import (
    ACCOUNT,
    REGION,
    assert_matches,
    assert_recorded,
    check_error,
    recorded,
)

LAYER_ZIP = make_zip({"python/layered.py": "VALUE = 'from the layer'\n"})


def layer_name() -> str:
    return f"layer-{uuid.uuid4().hex[:10]}"


def layer_arn(name: str, version: int | None = None) -> str:
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:{name}"
    return arn if version is None else f"{arn}:{version}"


def publish(client: Any, name: str, content: bytes = LAYER_ZIP, **kwargs: Any) -> dict[str, Any]:
    response: dict[str, Any] = client.publish_layer_version(
        LayerName=name, Content={"ZipFile": content}, **kwargs)
    return response


def test_publish_answers_as_aws_and_its_content_downloads(lambda_client: Any) -> None:
    name = layer_name()
    response = publish(lambda_client, name, CompatibleRuntimes=["python3.12"],
                       CompatibleArchitectures=["x86_64"])
    assert_recorded(response, "layer.publish", exact=True, layer_name=name)
    with urllib.request.urlopen(response["Content"]["Location"], timeout=30) as download:
        assert download.read() == LAYER_ZIP
    assert response["Content"]["CodeSize"] == len(LAYER_ZIP)
    empty = publish(lambda_client, layer_name())
    assert_recorded(empty, "layer.publish_empty_compat", exact=True,
                    layer_name=empty["LayerArn"].rsplit(":", 1)[1])


def test_read_list_and_delete_versions(lambda_client: Any) -> None:
    name = layer_name()
    meta = {"CompatibleRuntimes": ["python3.12"], "CompatibleArchitectures": ["x86_64"],
            "Description": "a layer", "LicenseInfo": "MIT"}
    first, second = publish(lambda_client, name, **meta), publish(lambda_client, name, **meta)
    assert (first["Version"], second["Version"]) == (1, 2)
    listed = lambda_client.list_layer_versions(LayerName=name)
    assert_recorded(listed, "layer.lifecycle.list_layer_versions_predelete", exact=True,
                    layer_name=name)
    got = lambda_client.get_layer_version(LayerName=name, VersionNumber=1)
    by_arn = lambda_client.get_layer_version_by_arn(Arn=layer_arn(name, 1))
    for response in (got, by_arn):
        assert response["LayerVersionArn"] == layer_arn(name, 1)
        assert response["Content"]["CodeSha256"] == first["Content"]["CodeSha256"]
        assert response["LicenseInfo"] == "MIT"
    assert lambda_client.get_layer_version(LayerName=layer_arn(name), VersionNumber=2)["Version"] == 2

    layers = lambda_client.list_layers(CompatibleRuntime="python3.12")["Layers"]
    entry = next(layer for layer in layers if layer["LayerName"] == name)
    assert entry["LayerArn"] == layer_arn(name)
    assert entry["LatestMatchingVersion"]["Version"] == 2
    assert not [la for la in lambda_client.list_layers(CompatibleRuntime="nodejs20.x")["Layers"]
                if la["LayerName"] == name]
    assert lambda_client.list_layer_versions(LayerName=name, CompatibleArchitecture="arm64")[
        "LayerVersions"] == []
    page = lambda_client.list_layer_versions(LayerName=name, MaxItems=1)
    assert [v["Version"] for v in page["LayerVersions"]] == [2]
    rest = lambda_client.list_layer_versions(LayerName=name, Marker=page["NextMarker"])
    assert [v["Version"] for v in rest["LayerVersions"]] == [1]

    for version in (1, 2):
        response = lambda_client.delete_layer_version(LayerName=name, VersionNumber=version)
        assert_recorded(response, "layer.delete_layer_again_response")
    again = lambda_client.delete_layer_version(LayerName=name, VersionNumber=2)
    assert_recorded(again, "layer.delete_layer_again_response")
    assert_recorded(lambda_client.list_layer_versions(LayerName=name),
                    "layer.list_nonexistent_layer", exact=True)
    third = publish(lambda_client, name, **meta)
    assert third["Version"] == recorded("layer.versions_continue")["value"][
        "after_deleting_1_and_2_next_version"]
    assert_recorded(third, "layer.lifecycle.publish_result_3", layer_name=name)


def test_bad_layer_requests_get_aws_errors(lambda_client: Any) -> None:
    name = layer_name()
    publish(lambda_client, name)
    missing = layer_name()
    check_error(lambda_client, "layer.get_layer_version_exc_layer_doesnotexist",
                lambda: lambda_client.get_layer_version(LayerName=missing, VersionNumber=1))
    check_error(lambda_client, "layer.get_layer_version_exc_layer_version_doesnotexist_2",
                lambda: lambda_client.get_layer_version(LayerName=name, VersionNumber=2))
    check_error(lambda_client, "layer.get_layer_version_exc_layer_version_doesnotexist_zero",
                lambda: lambda_client.get_layer_version(LayerName=name, VersionNumber=0))
    check_error(lambda_client, "layer.get_layer_version_exc_layer_version_doesnotexist_negative",
                lambda: lambda_client.get_layer_version(LayerName=name, VersionNumber=-1))
    check_error(lambda_client, "layer.delete_layer_version_exc_layerversion_invalid_version",
                lambda: lambda_client.delete_layer_version(LayerName=name, VersionNumber=0))
    check_error(lambda_client, "layer.get_layer_version_by_arn_exc_invalidarn",
                lambda: lambda_client.get_layer_version_by_arn(Arn=layer_arn(name)),
                layer_name=name)
    check_error(lambda_client, "layer.list_layers_exc_compatiblearchitecture_invalid",
                lambda: lambda_client.list_layers(CompatibleArchitecture="archdoesnotexist"))
    assert_recorded(lambda_client.list_layer_versions(LayerName=missing),
                    "layer.list_nonexistent_layer", exact=True)
    assert_recorded(lambda_client.delete_layer_version(LayerName=missing, VersionNumber=1),
                    "layer.delete_nonexistent_response")
    # A bad package is refused as a function's is, and publishes nothing.
    code, status = _error(lambda: publish(lambda_client, name, content=b"not a zip"))
    assert (code, status) == ("InvalidParameterValueException", 400)
    assert [v["Version"] for v in lambda_client.list_layer_versions(LayerName=name)[
        "LayerVersions"]] == [1]


def _error(call: Any) -> tuple[str, int]:
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def test_layer_version_policy(lambda_client: Any) -> None:
    name = layer_name()
    publish(lambda_client, name)
    missing_policy = _error(lambda: lambda_client.get_layer_version_policy(
        LayerName=name, VersionNumber=1))
    assert missing_policy == ("ResourceNotFoundException", 404)
    added = lambda_client.add_layer_version_permission(
        LayerName=name, VersionNumber=1, StatementId="everyone",
        Action="lambda:GetLayerVersion", Principal="*")
    assert added["Statement"] == (
        '{"Sid":"everyone","Effect":"Allow","Principal":"*","Action":"lambda:GetLayerVersion",'
        f'"Resource":"{layer_arn(name, 1)}"}}')
    lambda_client.add_layer_version_permission(
        LayerName=name, VersionNumber=1, StatementId="partner",
        Action="lambda:GetLayerVersion", Principal="111122223333")
    policy = lambda_client.get_layer_version_policy(LayerName=name, VersionNumber=1)
    assert '"Principal":{"AWS":"arn:aws:iam::111122223333:root"}' in policy["Policy"]
    assert _error(lambda: lambda_client.add_layer_version_permission(
        LayerName=name, VersionNumber=1, StatementId="partner",
        Action="lambda:GetLayerVersion", Principal="*")) == ("ResourceConflictException", 409)
    assert _error(lambda: lambda_client.add_layer_version_permission(
        LayerName=name, VersionNumber=1, StatementId="other", Action="lambda:GetLayerVersion",
        Principal="*", RevisionId="stale")) == ("PreconditionFailedException", 412)
    assert _error(lambda: lambda_client.add_layer_version_permission(
        LayerName=name, VersionNumber=7, StatementId="x", Action="lambda:GetLayerVersion",
        Principal="*")) == ("ResourceNotFoundException", 404)
    lambda_client.remove_layer_version_permission(LayerName=name, VersionNumber=1,
                                                  StatementId="everyone")
    assert _error(lambda: lambda_client.remove_layer_version_permission(
        LayerName=name, VersionNumber=1, StatementId="everyone")) == (
        "ResourceNotFoundException", 404)
    policy = lambda_client.get_layer_version_policy(LayerName=name, VersionNumber=1)
    assert "everyone" not in policy["Policy"] and "partner" in policy["Policy"]


def test_bad_function_layers_get_aws_errors_and_write_nothing(
        lambda_client: Any, function_name: str) -> None:
    name = layer_name()
    publish(lambda_client, name)
    publish(lambda_client, name)
    code = make_zip({"app.py": "def handler(event, context):\n    return event\n"})

    def create(layers: list[str]) -> Any:
        return lambda_client.create_function(
            FunctionName=function_name, Runtime="python3.11", Role=ROLE, Handler="app.handler",
            Code={"ZipFile": code}, Layers=layers)

    check_error(lambda_client, "layer.add_nonexistent_layer_exc",
                lambda: create([layer_arn("doesnotexist", 1)]))
    check_error(lambda_client, "layer.add_nonexistent_layer_version_exc",
                lambda: create([layer_arn(name, 9)]), layer_name=name)
    check_error(lambda_client, "layer.six_layers", lambda: create([layer_arn(name, 1)] * 6))
    check_error(lambda_client, "layer.two_layer_versions_single_function_exc",
                lambda: create([layer_arn(name, 1), layer_arn(name, 2)]), layer_name=name)
    malformed = _error(lambda: create([f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:{name}"]))
    assert malformed == ("ValidationException", 400)
    assert _error(lambda: lambda_client.get_function(FunctionName=function_name)) == (
        "ResourceNotFoundException", 404)


def test_function_layers_are_shown_and_kept_by_versions(
        lambda_client: Any, create_function: CreateFunction, function_name: str) -> None:
    name = layer_name()
    first = publish(lambda_client, name)
    other = layer_name()
    publish(lambda_client, other)
    create_function()
    updated = lambda_client.update_function_configuration(
        FunctionName=function_name, Layers=[layer_arn(name, 1)])
    expected_layers = recorded("layer.lifecycle.update_fn_config", layer_name=name)["value"]["Layers"]
    assert_matches(updated["Layers"], expected_layers)
    assert updated["Layers"][0]["CodeSize"] == first["Content"]["CodeSize"]
    lambda_client.get_waiter("function_updated_v2").wait(FunctionName=function_name)
    version = lambda_client.publish_version(FunctionName=function_name)["Version"]
    lambda_client.update_function_configuration(
        FunctionName=function_name, Layers=[layer_arn(other, 1), layer_arn(name, 1)])
    lambda_client.get_waiter("function_updated_v2").wait(FunctionName=function_name)
    lambda_client.delete_layer_version(LayerName=name, VersionNumber=1)
    published = lambda_client.get_function_configuration(FunctionName=function_name,
                                                         Qualifier=version)
    assert_matches(published["Layers"], expected_layers)
    latest = lambda_client.get_function(FunctionName=function_name)["Configuration"]
    assert [layer["Arn"] for layer in latest["Layers"]] == [layer_arn(other, 1), layer_arn(name, 1)]
    listed = lambda_client.list_functions()["Functions"]
    assert next(f for f in listed if f["FunctionName"] == function_name)["Layers"] == latest["Layers"]
    cleared = lambda_client.update_function_configuration(FunctionName=function_name, Layers=[])
    assert "Layers" not in cleared


def test_code_and_layers_together_must_fit_in_250_mb(
        lambda_client: Any, function_name: str) -> None:
    # Zeros deflate a thousandfold: two packages of 130 MiB unzipped upload in 260 KB.
    big = b"\0" * (130 * 1024 * 1024)
    name = layer_name()
    layer = publish(lambda_client, name, content=make_zip({"python/big.bin": big}))
    code = make_zip({"app.py": "def handler(event, context):\n    return event\n",
                     "big.bin": big})
    with pytest.raises(ClientError) as caught:
        lambda_client.create_function(
            FunctionName=function_name, Runtime="python3.11", Role=ROLE, Handler="app.handler",
            Code={"ZipFile": code}, Layers=[layer["LayerVersionArn"]])
    error = caught.value.response["Error"]
    total = 2 * len(big) + len("def handler(event, context):\n    return event\n")
    assert error["Code"] == "InvalidParameterValueException"
    assert error["Message"] == (
        "Function code combined with layers exceeds the maximum allowed size of 262144000 "
        f"bytes. The actual size is {total} bytes.")
    assert _error(lambda: lambda_client.get_function(FunctionName=function_name)) == (
        "ResourceNotFoundException", 404)
