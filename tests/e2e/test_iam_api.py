"""The IAM API's role subset and STS GetCallerIdentity, driven by boto3's ``iam`` and ``sts``
clients against a real server, held against AWS's recorded answers
(``aws_iam_expectations.json``): each operation, and each bad input with its code, status,
message and ``Type``, changing nothing."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from strato.config import DEFAULT_ACCOUNT
from tests.e2e.conftest import StratoServer, client_for

RECORDINGS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "aws_iam_expectations.json").read_text())["expectations"]
ACCOUNT = os.environ.get("STRATO_ACCOUNT_ID", DEFAULT_ACCOUNT)
TRUST = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": ["ec2.amazonaws.com"]},
    "Action": ["sts:AssumeRole"]}]}
SEND = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"}]}


@pytest.fixture(scope="module")
def iam(strato: StratoServer) -> Any:
    return client_for(strato.endpoint, "iam")


@pytest.fixture
def role_name() -> str:
    return f"role-{uuid.uuid4().hex[:12]}"


def check_error(key: str, call: Callable[[], Any], **names: str) -> None:
    expected = RECORDINGS[key]
    message = expected["message"]
    for placeholder, value in names.items():
        message = message.replace(f"<<{placeholder}>>", value)
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response["Error"]
    assert error["Code"] == expected["error_code"], (key, error)
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == expected["http_status"]
    assert error["Message"] == message, (key, error)
    assert error["Type"] == expected["body_type"], (key, error)


def test_create_get_list_and_delete_a_role_as_aws_answers(iam: Any, role_name: str) -> None:
    created = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(TRUST))
    recorded = RECORDINGS["iam.create_role.response"]["value"]["Role"]
    role = created["Role"]
    assert role["Arn"] == f"arn:aws:iam::{ACCOUNT}:role/{role_name}"
    assert role["AssumeRolePolicyDocument"] == recorded["AssumeRolePolicyDocument"]
    assert role["Path"] == recorded["Path"] == "/"
    assert role["RoleName"] == role_name and role["RoleId"].startswith("AROA")
    assert set(role) == set(recorded)

    got = iam.get_role(RoleName=role_name.upper())["Role"]  # names ignore case
    recorded_get = RECORDINGS["iam.get_role.response"]["value"]["Role"]
    assert set(got) == set(recorded_get)
    assert got["MaxSessionDuration"] == recorded_get["MaxSessionDuration"]
    assert got["RoleLastUsed"] == {} and got["RoleId"] == role["RoleId"]
    assert role_name in [r["RoleName"] for r in iam.list_roles()["Roles"]]

    iam.delete_role(RoleName=role_name)
    check_error("iam.get_role.not_found", lambda: iam.get_role(RoleName=role_name),
                role_name=role_name)


def test_a_role_under_a_path(iam: Any, role_name: str) -> None:
    role = iam.create_role(RoleName=role_name, Path="/service-role/",
                           AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]
    assert role["Arn"] == f"arn:aws:iam::{ACCOUNT}:role/service-role/{role_name}"
    listed = iam.list_roles(PathPrefix="/service-role/")["Roles"]
    assert [r["RoleName"] for r in listed if r["RoleName"] == role_name] == [role_name]
    iam.delete_role(RoleName=role_name)


def test_inline_policies_and_the_trust_policy(iam: Any, role_name: str) -> None:
    iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(TRUST))
    iam.put_role_policy(RoleName=role_name, PolicyName="send", PolicyDocument=json.dumps(SEND))
    got = iam.get_role_policy(RoleName=role_name, PolicyName="send")
    assert got["PolicyDocument"] == SEND and got["RoleName"] == role_name
    assert iam.list_role_policies(RoleName=role_name)["PolicyNames"] == ["send"]
    lambda_trust = RECORDINGS["iam.create_role.lambda_trust"]["value"]["Role"]["AssumeRolePolicyDocument"]
    iam.update_assume_role_policy(RoleName=role_name, PolicyDocument=json.dumps(lambda_trust))
    assert iam.get_role(RoleName=role_name)["Role"]["AssumeRolePolicyDocument"] == lambda_trust

    check_error("iam.delete_role.conflict", lambda: iam.delete_role(RoleName=role_name))
    assert iam.get_role(RoleName=role_name)["Role"]["RoleName"] == role_name  # kept
    iam.delete_role_policy(RoleName=role_name, PolicyName="send")
    check_error("iam.delete_role_policy.not_found",
                lambda: iam.delete_role_policy(RoleName=role_name, PolicyName="send"),
                policy_name="send")
    assert iam.list_role_policies(RoleName=role_name)["PolicyNames"] == []
    iam.delete_role(RoleName=role_name)


def test_bad_input_is_refused_as_aws_does_and_writes_nothing(iam: Any, role_name: str) -> None:
    check_error("iam.create_role.malformed_trust_policy",
                lambda: iam.create_role(RoleName=role_name, AssumeRolePolicyDocument="{not json"))
    check_error("iam.get_role.not_found", lambda: iam.get_role(RoleName=role_name),
                role_name=role_name)
    iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(TRUST))
    check_error("iam.create_role.exists",
                lambda: iam.create_role(RoleName=role_name,
                                        AssumeRolePolicyDocument=json.dumps(TRUST)),
                role_name=role_name)
    with pytest.raises(ClientError) as caught:
        iam.put_role_policy(RoleName=role_name, PolicyName="p", PolicyDocument="[1")
    assert caught.value.response["Error"]["Code"] == "MalformedPolicyDocument"
    with pytest.raises(ClientError) as caught:  # an identity policy names no principal
        iam.put_role_policy(RoleName=role_name, PolicyName="p", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{**SEND["Statement"][0], "Principal": "*"}]}))
    assert caught.value.response["Error"]["Code"] == "MalformedPolicyDocument"
    with pytest.raises(ClientError) as caught:
        iam.get_role(RoleName="bad name!")
    assert caught.value.response["Error"]["Code"] == "ValidationError"
    assert iam.list_role_policies(RoleName=role_name)["PolicyNames"] == []
    check_error("iam.delete_role_policy.not_found",
                lambda: iam.delete_role_policy(RoleName=role_name, PolicyName="p"),
                policy_name="p")
    iam.delete_role(RoleName=role_name)


def test_get_caller_identity_of_the_administrator(strato: StratoServer) -> None:
    identity = client_for(strato.endpoint, "sts").get_caller_identity()
    assert identity["Account"] == ACCOUNT
    assert identity["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/admin"
    assert identity["UserId"].startswith("AIDA")
