"""Execution roles inside functions, in both sandbox tiers: every environment signs its own
calls to strato's API (``AWS_ENDPOINT_URL``) with its role session's credentials, which its
role's inline policies authorise; a role strato does not store is allowed nothing unless the
operator trusts such roles; credentials are retired with their environment before they
expire, and refused once expired.

The functions call with the AWS SDK their runtime brings and no configuration
(``sdk_functions.py``): boto3, and where a test is about what every SDK sees, the AWS SDK for
JavaScript too.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.e2e.conftest import client_for
from tests.e2e.hostile import TierServer, serve_tier, succeed
from tests.e2e.sdk_functions import SDKS, create_sdk_function

RECORDINGS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "aws_iam_expectations.json").read_text())["expectations"]
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
    "Action": "sts:AssumeRole"}]})
DUMMY_ROLE = "arn:aws:iam::000000000000:role/x"

@pytest.fixture(scope="module", params=["namespaces", "fallback"])
def tier(request: pytest.FixtureRequest,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[TierServer]:
    with serve_tier(request.param, tmp_path_factory) as server:
        yield server


@pytest.fixture(params=SDKS)
def sdk(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def create(client: Any, name: str, role: str, sdk: str = "python", **kwargs: Any) -> None:
    """A function calling with ``sdk`` as ``role``, once Active."""
    create_sdk_function(client, name, sdk, role, **kwargs)


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _queue(endpoint: str, secret: str, access_key: str = "hostile") -> str:
    sqs = client_for(endpoint, "sqs", access_key=access_key, secret_key=secret)
    return str(sqs.create_queue(QueueName=_name("q"))["QueueUrl"])


def _received(endpoint: str, secret: str, queue_url: str, access_key: str = "hostile") -> list[str]:
    sqs = client_for(endpoint, "sqs", access_key=access_key, secret_key=secret)
    messages = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages", [])
    return [m["Body"] for m in messages]


def _assert_denied(result: dict[str, Any]) -> None:
    expected = RECORDINGS["iam.sqs_access_denied"]["value"]
    assert "error" in result, result
    assert result["error"]["status"] == expected["http_status"], result
    assert result["error"]["code"] in expected["error_codes"], result


def test_a_function_sends_to_a_queue_when_its_role_allows_it(tier: TierServer, sdk: str) -> None:
    endpoint, secret, client = tier.server.endpoint, tier.admin_secret, tier.client
    iam = client_for(endpoint, "iam", access_key="hostile", secret_key=secret)
    role_name = _name("sender")
    role = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=TRUST)["Role"]
    queue_url = _queue(endpoint, secret)
    name = _name("send")
    create(client, name, role["Arn"], sdk)

    denied = succeed(client, name, {"op": "send", "queue_url": queue_url})
    _assert_denied(denied)
    assert f":assumed-role/{role_name}/{name} is not authorized to perform: sqs:SendMessage" \
        in denied["error"]["message"]
    assert _received(endpoint, secret, queue_url) == []

    iam.put_role_policy(RoleName=role_name, PolicyName="send", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "sqs:SendMessage",
            "Resource": f"arn:aws:sqs:*:*:{queue_url.rsplit('/', 1)[1]}"}]}))
    allowed = succeed(client, name, {"op": "send", "queue_url": queue_url})
    assert allowed["sent"] == 1, allowed
    assert _received(endpoint, secret, queue_url) == ["0"]

    iam.delete_role_policy(RoleName=role_name, PolicyName="send")  # applies to the next call
    _assert_denied(succeed(client, name, {"op": "send", "queue_url": queue_url}))


def test_get_caller_identity_from_inside_a_function(tier: TierServer, sdk: str) -> None:
    endpoint, secret, client = tier.server.endpoint, tier.admin_secret, tier.client
    iam = client_for(endpoint, "iam", access_key="hostile", secret_key=secret)
    role_name = _name("who")
    role = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=TRUST)["Role"]
    name = _name("whoami")
    create(client, name, role["Arn"], sdk)
    result = succeed(client, name, {"op": "whoami"})
    account = role["Arn"].split(":")[4]
    assert result["identity"] == {"Arn": f"arn:aws:sts::{account}:assumed-role/{role_name}/{name}",
                                  "UserId": f"{role['RoleId']}:{name}", "Account": account}, result
    assert result["AWS_ACCESS_KEY_ID"].startswith("ASIA")
    # In both tiers, strato's address as this host's clients use it.
    assert result["AWS_ENDPOINT_URL"] == endpoint


def test_a_role_strato_does_not_know_is_allowed_nothing(tier: TierServer) -> None:
    endpoint, secret, client = tier.server.endpoint, tier.admin_secret, tier.client
    queue_url = _queue(endpoint, secret)
    name = _name("dummy")
    create(client, name, DUMMY_ROLE)  # still accepted
    who = succeed(client, name, {"op": "whoami"})  # needs no permission, as on AWS
    assert who["identity"]["Arn"].endswith(f":assumed-role/x/{name}"), who
    _assert_denied(succeed(client, name, {"op": "send", "queue_url": queue_url}))
    assert _received(endpoint, secret, queue_url) == []


@pytest.fixture(scope="module")
def trusting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TierServer]:
    """A server that trusts unknown roles, with role credentials that last 8 seconds."""
    with serve_tier("namespaces", tmp_path_factory, env={
            "STRATO_TRUST_UNKNOWN_ROLES": "1", "STRATO_ROLE_SESSION_SECONDS": "8"}) as server:
        yield server


def test_the_operator_may_trust_unknown_roles(trusting: TierServer) -> None:
    endpoint, secret, client = trusting.server.endpoint, trusting.admin_secret, trusting.client
    queue_url = _queue(endpoint, secret)
    name = _name("trusted")
    create(client, name, DUMMY_ROLE)
    result = succeed(client, name, {"op": "send", "queue_url": queue_url})
    assert result["sent"] == 1, result
    assert _received(endpoint, secret, queue_url) == ["0"]


def test_credentials_are_renewed_with_the_environment_and_refused_once_expired(
        trusting: TierServer) -> None:
    endpoint, client = trusting.server.endpoint, trusting.client
    name = _name("expiry")
    # Well within the credentials' 8 seconds, so that an environment serves several calls.
    create(client, name, DUMMY_ROLE, Timeout=2)
    first = succeed(client, name, {"op": "whoami"})
    assert "identity" in first, first
    # Every call works while the environment is used, and it is replaced (new credentials)
    # before its credentials could expire during an invocation.
    deadline = time.monotonic() + 30
    while True:
        result = succeed(client, name, {"op": "whoami"})
        assert "identity" in result, result
        if result["AWS_ACCESS_KEY_ID"] != first["AWS_ACCESS_KEY_ID"]:
            break
        assert time.monotonic() < deadline, "the environment was never renewed"
        time.sleep(0.5)
    sts = boto3.client("sts", endpoint_url=endpoint, region_name="us-east-1",
                       aws_access_key_id=first["AWS_ACCESS_KEY_ID"],
                       aws_secret_access_key=first["AWS_SECRET_ACCESS_KEY"],
                       aws_session_token=first["AWS_SESSION_TOKEN"])
    deadline = time.monotonic() + 30
    while True:
        try:
            sts.get_caller_identity()
        except ClientError as error:
            assert error.response["Error"]["Code"] == "ExpiredToken", error.response
            assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 403
            break
        assert time.monotonic() < deadline, "expired credentials were still accepted"
        time.sleep(0.5)
