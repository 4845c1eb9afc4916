"""The control-plane API, driven by boto3 against a real strato server."""

from __future__ import annotations

import base64
import hashlib
import re
import urllib.request
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import make_zip
from tests.e2e.conftest import ROLE, CreateFunction

ARN = re.compile(r"arn:aws:lambda:us-east-1:\d{12}:function:")
LAST_MODIFIED = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3,6}\+0000$")
SOURCE = {"app.py": "def handler(event, context):\n    return event\n"}


def _error(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, str]:
    response = excinfo.value.response
    return (response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"],
            response["Error"]["Message"])


def test_create_function_answers_pending_with_aws_fields(lambda_client: Any, function_name: str) -> None:
    package = make_zip(SOURCE)
    response = lambda_client.create_function(
        FunctionName=function_name, Runtime="python3.11", Role=ROLE, Handler="app.handler",
        Code={"ZipFile": package},
    )
    try:
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 201
        assert response["FunctionArn"] == f"arn:aws:lambda:us-east-1:000000000000:function:{function_name}"
        assert response["CodeSha256"] == base64.b64encode(hashlib.sha256(package).digest()).decode()
        assert response["CodeSize"] == len(package)
        assert response["Version"] == "$LATEST"
        assert response["State"] == "Pending"
        assert response["StateReasonCode"] == "Creating"
        assert response["Timeout"] == 3 and response["MemorySize"] == 128
        assert response["EphemeralStorage"] == {"Size": 512}
        assert response["PackageType"] == "Zip" and response["Architectures"] == ["x86_64"]
        assert LAST_MODIFIED.match(response["LastModified"])
        assert response["LoggingConfig"] == {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{function_name}"}
        assert "Environment" not in response  # created without one: AWS leaves it out
        lambda_client.get_waiter("function_active_v2").wait(FunctionName=function_name)
        active = lambda_client.get_function(FunctionName=function_name)["Configuration"]
        assert active["State"] == "Active"
        assert active["LastUpdateStatus"] == "Successful"
        # Pending → Active is a change of the record: AWS gives it a new RevisionId.
        assert active["RevisionId"] != response["RevisionId"]
        assert "Environment" not in lambda_client.get_function_configuration(FunctionName=function_name)
        emptied = lambda_client.update_function_configuration(FunctionName=function_name,
                                                              Environment={"Variables": {}})
        assert emptied["Environment"] == {"Variables": {}}
    finally:
        lambda_client.delete_function(FunctionName=function_name)


def test_get_function_code_location_serves_the_exact_zip(
    lambda_client: Any, create_function: CreateFunction, function_name: str
) -> None:
    create_function(SOURCE)
    got = lambda_client.get_function(FunctionName=function_name)
    assert got["Code"]["RepositoryType"] == "S3"
    with urllib.request.urlopen(got["Code"]["Location"]) as download:
        body = download.read()
    assert base64.b64encode(hashlib.sha256(body).digest()).decode() == got["Configuration"]["CodeSha256"]
    assert len(body) == got["Configuration"]["CodeSize"]
    tampered = got["Code"]["Location"].replace("signature=", "signature=0")
    with pytest.raises(urllib.error.HTTPError) as denied:
        urllib.request.urlopen(tampered)
    assert denied.value.code == 403
    denied.value.close()


def test_function_is_reachable_by_name_partial_and_full_arn(
    lambda_client: Any, create_function: CreateFunction, function_name: str
) -> None:
    create_function(SOURCE)
    arn = f"arn:aws:lambda:us-east-1:000000000000:function:{function_name}"
    for spelling in (function_name, f"000000000000:function:{function_name}", arn):
        config = lambda_client.get_function_configuration(FunctionName=spelling)
        assert config["FunctionArn"] == arn
    # A qualifier, $LATEST included, qualifies the ARN AWS answers with.
    config = lambda_client.get_function_configuration(FunctionName=f"{arn}:$LATEST")
    assert config["FunctionArn"] == f"{arn}:$LATEST"
    with pytest.raises(ClientError) as other_region:
        lambda_client.get_function(FunctionName=arn.replace("us-east-1", "eu-west-1"))
    assert _error(other_region) == (
        "ResourceNotFoundException", 404,
        "Functions from 'eu-west-1' are not reachable in this region ('us-east-1')")


def test_update_configuration_and_code_go_through_in_progress(
    lambda_client: Any, create_function: CreateFunction, function_name: str
) -> None:
    created = create_function(SOURCE)
    updated = lambda_client.update_function_configuration(
        FunctionName=function_name, MemorySize=256, Timeout=10, Description="d",
        Environment={"Variables": {"AA": "1"}}, EphemeralStorage={"Size": 1024},
        Handler="app.handler", Runtime="python3.12",
    )
    assert updated["LastUpdateStatus"] == "InProgress"
    assert updated["RevisionId"] != created["RevisionId"]
    lambda_client.get_waiter("function_updated_v2").wait(FunctionName=function_name)
    config = lambda_client.get_function_configuration(FunctionName=function_name)
    assert (config["MemorySize"], config["Timeout"], config["Description"]) == (256, 10, "d")
    assert config["Environment"] == {"Variables": {"AA": "1"}}
    assert config["EphemeralStorage"] == {"Size": 1024} and config["Runtime"] == "python3.12"
    assert config["LastUpdateStatus"] == "Successful"

    new_package = make_zip({"app.py": "def handler(e, c):\n    return 'v2'\n"})
    code = lambda_client.update_function_code(FunctionName=function_name, ZipFile=new_package)
    assert code["CodeSha256"] == base64.b64encode(hashlib.sha256(new_package).digest()).decode()
    lambda_client.get_waiter("function_updated_v2").wait(FunctionName=function_name)

    with pytest.raises(ClientError) as stale:
        lambda_client.update_function_configuration(
            FunctionName=function_name, Timeout=5, RevisionId=created["RevisionId"])
    assert _error(stale)[:2] == ("PreconditionFailedException", 412)


def test_list_functions_paginates_with_marker(lambda_client: Any, create_function: CreateFunction,
                                              function_name: str) -> None:
    names = [f"{function_name}-{i}" for i in range(5)]
    for name in names:
        create_function(SOURCE, name=name)
    seen: list[str] = []
    marker = None
    while True:
        kwargs = {"MaxItems": 2, **({"Marker": marker} if marker else {})}
        page = lambda_client.list_functions(**kwargs)
        assert len(page["Functions"]) <= 2
        seen += [f["FunctionName"] for f in page["Functions"]]
        marker = page.get("NextMarker")
        if not marker:
            break
    assert [n for n in seen if n in names] == names
    everything = lambda_client.get_paginator("list_functions").paginate(FunctionVersion="ALL")
    arns = [f["FunctionArn"] for page in everything for f in page["Functions"]]
    assert f"arn:aws:lambda:us-east-1:000000000000:function:{names[0]}:$LATEST" in arns


def test_account_settings(lambda_client: Any, create_function: CreateFunction, function_name: str) -> None:
    """AccountUsage counts the code of ``$LATEST`` and of each published version (the same
    package twice when a version has it too), as AWS does."""
    before = lambda_client.get_account_settings()["AccountUsage"]["TotalCodeSize"]
    size = create_function(SOURCE)["CodeSize"]
    assert lambda_client.get_account_settings()["AccountUsage"]["TotalCodeSize"] == before + size
    lambda_client.publish_version(FunctionName=function_name)
    settings = lambda_client.get_account_settings()
    assert settings["AccountUsage"]["TotalCodeSize"] == before + 2 * size
    assert set(settings["AccountLimit"]) == {
        "CodeSizeUnzipped", "CodeSizeZipped", "ConcurrentExecutions", "TotalCodeSize",
        "UnreservedConcurrentExecutions"}
    assert settings["AccountLimit"]["ConcurrentExecutions"] == 1000
    assert settings["AccountUsage"]["FunctionCount"] >= 1
    assert settings["AccountUsage"]["TotalCodeSize"] > 0


def test_delete_function(lambda_client: Any, create_function: CreateFunction, function_name: str) -> None:
    create_function(SOURCE)
    with pytest.raises(ClientError) as latest:
        lambda_client.delete_function(FunctionName=function_name, Qualifier="$LATEST")
    assert _error(latest) == ("InvalidParameterValueException", 400,
                              "$LATEST version cannot be deleted without deleting the function.")
    assert lambda_client.delete_function(FunctionName=function_name)["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as twice:
        lambda_client.delete_function(FunctionName=function_name)
    assert _error(twice) == (
        "ResourceNotFoundException", 404,
        f"Function not found: arn:aws:lambda:us-east-1:000000000000:function:{function_name}")
