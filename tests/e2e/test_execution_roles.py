"""Execution roles inside functions, in both sandbox tiers: every environment signs its own
calls to strato's API (``AWS_ENDPOINT_URL``) with its role session's credentials, which its
role's inline policies authorise; a role strato does not store is allowed nothing unless the
operator trusts such roles; credentials are retired with their environment before they
expire, and refused once expired.

The functions sign with a small stdlib SigV4 signer (the built-in runtime has no boto3): what
is tested is that the environment's own variables work from inside its sandbox.
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

from tests.conftest import make_zip
from tests.e2e.conftest import client_for
from tests.e2e.hostile import TierServer, serve_tier, succeed

RECORDINGS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "aws_iam_expectations.json").read_text())["expectations"]
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
    "Action": "sts:AssumeRole"}]})
DUMMY_ROLE = "arn:aws:iam::000000000000:role/x"

HANDLER = r'''
import datetime, hashlib, hmac, json, os, urllib.error, urllib.parse, urllib.request

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _mac(key, text):
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def call(service, body, content_type, extra=None):
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    region = os.environ["AWS_REGION"]
    headers = {"content-type": content_type, "host": urllib.parse.urlsplit(endpoint).netloc,
               "x-amz-date": now, "x-amz-security-token": os.environ["AWS_SESSION_TOKEN"],
               **(extra or {})}
    names = sorted(headers)
    canonical = "\n".join(["POST", "/", "", "".join(f"{n}:{headers[n]}\n" for n in names),
                           ";".join(names), hashlib.sha256(body).hexdigest()])
    scope = f"{now[:8]}/{region}/{service}/aws4_request"
    to_sign = f"AWS4-HMAC-SHA256\n{now}\n{scope}\n" + hashlib.sha256(canonical.encode()).hexdigest()
    key = _mac(("AWS4" + os.environ["AWS_SECRET_ACCESS_KEY"]).encode(), now[:8])
    key = _mac(_mac(_mac(key, region), service), "aws4_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={os.environ['AWS_ACCESS_KEY_ID']}/"
                                f"{scope}, SignedHeaders={';'.join(names)}, Signature={signature}")
    request = urllib.request.Request(endpoint + "/", data=body, headers=headers, method="POST")
    try:
        with _OPENER.open(request, timeout=20) as response:
            return response.status, response.read().decode(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), dict(error.headers)


def handler(event, context):
    keys = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                           "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL")}
    if event["op"] == "whoami":
        status, body, _ = call("sts", b"Action=GetCallerIdentity&Version=2011-06-15",
                               "application/x-www-form-urlencoded; charset=utf-8")
        return {"status": status, "body": body, **keys}
    body = json.dumps({"QueueUrl": event["queue_url"], "MessageBody": "from a function"})
    status, text, headers = call("sqs", body.encode(), "application/x-amz-json-1.0",
                                 {"x-amz-target": "AmazonSQS.SendMessage"})
    return {"status": status, "body": text, "query_error": headers.get("x-amzn-query-error"),
            **keys}
'''


@pytest.fixture(scope="module", params=["namespaces", "fallback"])
def tier(request: pytest.FixtureRequest,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[TierServer]:
    with serve_tier(request.param, tmp_path_factory) as server:
        yield server


def create(client: Any, name: str, role: str) -> None:
    """A python3.11 function of ``HANDLER`` acting as ``role``, once Active."""
    client.create_function(FunctionName=name, Runtime="python3.11", Role=role,
                           Handler="app.handler", Code={"ZipFile": make_zip({"app.py": HANDLER})})
    client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})


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
    assert result["status"] == expected["http_status"], result
    code = result["query_error"].split(";")[0]
    assert code in expected["error_codes"], result
    assert json.loads(result["body"])["__type"].endswith("AccessDeniedException"), result


def test_a_function_sends_to_a_queue_when_its_role_allows_it(tier: TierServer) -> None:
    endpoint, secret, client = tier.server.endpoint, tier.admin_secret, tier.client
    iam = client_for(endpoint, "iam", access_key="hostile", secret_key=secret)
    role_name = _name("sender")
    role = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=TRUST)["Role"]
    queue_url = _queue(endpoint, secret)
    name = _name("send")
    create(client, name, role["Arn"])

    denied = succeed(client, name, {"op": "send", "queue_url": queue_url})
    _assert_denied(denied)
    assert f":assumed-role/{role_name}/{name} is not authorized to perform: sqs:SendMessage" \
        in json.loads(denied["body"])["message"]
    assert _received(endpoint, secret, queue_url) == []

    iam.put_role_policy(RoleName=role_name, PolicyName="send", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "sqs:SendMessage",
            "Resource": f"arn:aws:sqs:*:*:{queue_url.rsplit('/', 1)[1]}"}]}))
    allowed = succeed(client, name, {"op": "send", "queue_url": queue_url})
    assert allowed["status"] == 200, allowed
    assert _received(endpoint, secret, queue_url) == ["from a function"]

    iam.delete_role_policy(RoleName=role_name, PolicyName="send")  # applies to the next call
    _assert_denied(succeed(client, name, {"op": "send", "queue_url": queue_url}))


def test_get_caller_identity_from_inside_a_function(tier: TierServer) -> None:
    endpoint, secret, client = tier.server.endpoint, tier.admin_secret, tier.client
    iam = client_for(endpoint, "iam", access_key="hostile", secret_key=secret)
    role_name = _name("who")
    role = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=TRUST)["Role"]
    name = _name("whoami")
    create(client, name, role["Arn"])
    result = succeed(client, name, {"op": "whoami"})
    assert result["status"] == 200, result
    account = role["Arn"].split(":")[4]
    assert f"<Arn>arn:aws:sts::{account}:assumed-role/{role_name}/{name}</Arn>" in result["body"]
    assert f"<UserId>{role['RoleId']}:{name}</UserId>" in result["body"]
    assert result["AWS_ACCESS_KEY_ID"].startswith("ASIA")
    expected = "http://127.0.0.1:9002" if tier.tier == "namespaces" else endpoint
    assert result["AWS_ENDPOINT_URL"] == expected


def test_a_role_strato_does_not_know_is_allowed_nothing(tier: TierServer) -> None:
    endpoint, secret, client = tier.server.endpoint, tier.admin_secret, tier.client
    queue_url = _queue(endpoint, secret)
    name = _name("dummy")
    create(client, name, DUMMY_ROLE)  # still accepted
    who = succeed(client, name, {"op": "whoami"})  # needs no permission, as on AWS
    assert who["status"] == 200 and f"assumed-role/x/{name}" in who["body"], who
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
    assert result["status"] == 200, result
    assert _received(endpoint, secret, queue_url) == ["from a function"]


def test_credentials_are_renewed_with_the_environment_and_refused_once_expired(
        trusting: TierServer) -> None:
    endpoint, client = trusting.server.endpoint, trusting.client
    name = _name("expiry")
    create(client, name, DUMMY_ROLE)
    first = succeed(client, name, {"op": "whoami"})
    assert first["status"] == 200, first
    # Every call works while the environment is used, and it is replaced (new credentials)
    # before its credentials could expire during an invocation.
    deadline = time.monotonic() + 30
    while True:
        result = succeed(client, name, {"op": "whoami"})
        assert result["status"] == 200, result
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
