"""Resource-based policies (AddPermission, GetPolicy, RemovePermission) through boto3 against a
real strato server, compared with AWS's recorded responses (aws_perm_expectations.json: the
``perm.*`` entries of the shared AWS recordings)."""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from strato.config import DEFAULT_ACCOUNT
from tests.conftest import make_zip
from tests.e2e.conftest import ROLE, CreateFunction, client_for, start_server, stop_server

EXPECTATIONS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "aws_perm_expectations.json").read_text()
)["expectations"]
REGION = "us-east-1"


def _expected(key: str, **names: str) -> Any:
    """A recorded value with its placeholders filled in (``<<function_name>>`` and so on)."""
    text = json.dumps(EXPECTATIONS[key])
    for placeholder, value in names.items():
        text = text.replace(f"<<{placeholder}>>", value)
    return json.loads(text)


@contextlib.contextmanager
def raw_bodies(client: Any) -> Iterator[list[bytes]]:
    """The raw response bodies of the calls made inside (botocore hides which key, ``message``
    or ``Message``, AWS put an error's text under)."""
    bodies: list[bytes] = []
    handler_id = f"raw-bodies-{uuid.uuid4().hex}"

    def keep(response_dict: dict[str, Any], **_: Any) -> None:
        bodies.append(response_dict["body"])

    client.meta.events.register("before-parse.lambda.*", keep, unique_id=handler_id)
    try:
        yield bodies
    finally:
        client.meta.events.unregister("before-parse.lambda.*", unique_id=handler_id)


@pytest.fixture
def names(function_name: str) -> dict[str, str]:
    """Values of the recordings' placeholders for this test (the server's account is the
    configured one: the e2e servers inherit this process's environment)."""
    account = os.environ.get("STRATO_ACCOUNT_ID", DEFAULT_ACCOUNT)
    return {"region": REGION, "account": account, "function_name": function_name,
            "bucket": f"bucket-{function_name.lower()}"[:63], "principal_resource": "root"}


def check_error(client: Any, key: str, call: Callable[[], Any], **names: str) -> None:
    """``call`` fails as AWS recorded under ``key``: code, status, exact text, message key."""
    expected = _expected(key, **names)
    with raw_bodies(client) as bodies, pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    assert response["Error"]["Code"] == expected["error_code"], key
    assert response["ResponseMetadata"]["HTTPStatusCode"] == expected["http_status"], key
    assert response["Error"]["Message"] == expected["message"], key
    body = json.loads(bodies[-1])
    if expected["body_message_key"] is not None:
        assert body[expected["body_message_key"]] == expected["message"], key
    if expected["body_type"] is not None:
        assert body.get("Type") == expected["body_type"], key


# round trip ----------------------------------------------------------------------------------


def test_add_permission_and_get_policy_match_aws(
    lambda_client: Any, create_function: CreateFunction, function_name: str, names: dict[str, str]
) -> None:
    create_function()
    added = lambda_client.add_permission(
        FunctionName=function_name, StatementId="s3", Action="lambda:InvokeFunction",
        Principal="s3.amazonaws.com", SourceArn=f"arn:aws:s3:::{names['bucket']}",
    )
    expected_add = _expected("perm.add.response", **names)["value"]
    assert added["ResponseMetadata"]["HTTPStatusCode"] == expected_add["_http_status"] == 201
    assert isinstance(added["Statement"], str)
    assert json.loads(added["Statement"]) == expected_add["Statement"]

    got = lambda_client.get_policy(FunctionName=function_name)
    expected_get = _expected("perm.get_policy", **names)["value"]
    assert got["ResponseMetadata"]["HTTPStatusCode"] == expected_get["_http_status"]
    assert isinstance(got["Policy"], str) and " " not in got["Policy"]
    assert json.loads(got["Policy"]) == expected_get["Policy"]
    assert list(json.loads(got["Policy"])) == ["Version", "Id", "Statement"]
    assert str(uuid.UUID(got["RevisionId"])) == got["RevisionId"]

    removed = lambda_client.remove_permission(FunctionName=function_name, StatementId="s3")
    assert removed["ResponseMetadata"]["HTTPStatusCode"] == 204
    check_error(lambda_client, "perm.get_policy_after_all_removed",
                lambda: lambda_client.get_policy(FunctionName=function_name), **names)


@pytest.mark.parametrize(
    ("key", "members"),
    [
        ("perm.fields.add_permission_principal_account",
         {"StatementId": "account-id", "Principal": "<<account>>"}),
        ("perm.fields.add_permission_principal_service",
         {"StatementId": "lambda", "Principal": "lambda.amazonaws.com", "SourceAccount": "<<account>>"}),
        ("perm.fields.add_permission_principal_wildcard",
         {"StatementId": "wilcard", "Principal": "*", "SourceAccount": "<<account>>"}),
        ("perm.fields.add_permission_optional_fields",
         {"StatementId": "urlPermission", "Principal": "*", "Action": "lambda:InvokeFunctionUrl",
          "SourceArn": "arn:aws:s3:::<<bucket>>", "SourceAccount": "<<account>>",
          "PrincipalOrgID": "o-1234567890", "FunctionUrlAuthType": "NONE"}),
    ],
)
def test_add_permission_fields_match_aws(
    lambda_client: Any, create_function: CreateFunction, function_name: str, names: dict[str, str],
    key: str, members: dict[str, str],
) -> None:
    create_function()
    filled = {k: v.replace("<<account>>", names["account"]).replace("<<bucket>>", names["bucket"])
              for k, v in members.items()}
    filled.setdefault("Action", "lambda:InvokeFunction")
    added = lambda_client.add_permission(FunctionName=function_name, **filled)
    expected = _expected(key, **names)["value"]
    assert added["ResponseMetadata"]["HTTPStatusCode"] == expected["_http_status"]
    assert json.loads(added["Statement"]) == expected["Statement"]
    policy = json.loads(lambda_client.get_policy(FunctionName=function_name)["Policy"])
    assert policy["Statement"] == [expected["Statement"]]


def test_statements_keep_their_order_and_each_change_makes_a_new_revision(
    lambda_client: Any, create_function: CreateFunction, function_name: str
) -> None:
    create_function()
    revisions = []
    for sid in ("one", "two", "three"):
        lambda_client.add_permission(FunctionName=function_name, StatementId=sid,
                                     Action="lambda:InvokeFunction", Principal="111122223333")
        revisions.append(lambda_client.get_policy(FunctionName=function_name)["RevisionId"])
    lambda_client.remove_permission(FunctionName=function_name, StatementId="two")
    got = lambda_client.get_policy(FunctionName=function_name)
    revisions.append(got["RevisionId"])
    assert [s["Sid"] for s in json.loads(got["Policy"])["Statement"]] == ["one", "three"]
    assert len(set(revisions)) == 4


def test_any_spelling_of_the_function_name_reaches_its_policy(
    lambda_client: Any, create_function: CreateFunction, function_name: str, names: dict[str, str]
) -> None:
    create_function()
    arn = f"arn:aws:lambda:{REGION}:{names['account']}:function:{function_name}"
    lambda_client.add_permission(FunctionName=arn, StatementId="by-arn",
                                 Action="lambda:InvokeFunction", Principal="*")
    partial = f"{names['account']}:function:{function_name}"
    statement = json.loads(lambda_client.get_policy(FunctionName=partial)["Policy"])["Statement"][0]
    assert statement["Resource"] == arn
    assert json.loads(lambda_client.get_policy(FunctionName=function_name, Qualifier="$LATEST")["Policy"]) \
        == json.loads(lambda_client.get_policy(FunctionName=function_name)["Policy"])
    lambda_client.remove_permission(FunctionName=arn, StatementId="by-arn")


# errors --------------------------------------------------------------------------------------


def test_add_permission_errors_match_aws(
    lambda_client: Any, create_function: CreateFunction, function_name: str, names: dict[str, str]
) -> None:
    create_function()

    def add(**members: str) -> Callable[[], Any]:
        args = {"FunctionName": function_name, "StatementId": "s3", "Action": "lambda:InvokeFunction",
                "Principal": "s3.amazonaws.com", **members}
        return lambda: lambda_client.add_permission(**args)

    lambda_client.add_permission(FunctionName=function_name, StatementId="s3",
                                 Action="lambda:InvokeFunction", Principal="s3.amazonaws.com")
    check_error(lambda_client, "perm.add_permission_conflicting_statement_id", add(), **names)
    check_error(lambda_client, "perm.add_permission_fn_doesnotexist",
                add(FunctionName="doesnotexist", StatementId="x"), **names)
    check_error(lambda_client, "perm.add_permission_fn_alias_doesnotexist",
                add(Qualifier="alias-doesnotexist", StatementId="x"), **names)
    check_error(lambda_client, "perm.add_permission_fn_version_doesnotexist",
                add(Qualifier="42", StatementId="x"), **names)
    check_error(lambda_client, "perm.add_permission_fn_qualifier_latest",
                add(Qualifier="$LATEST", StatementId="x"), **names)
    check_error(lambda_client, "perm.add_permission_fn_qualifier_mismatch",
                add(FunctionName=f"{function_name}:alias-doesnotexist", Qualifier="1", StatementId="x"),
                **names)
    check_error(lambda_client, "perm.add_permission_invalid_statement_id",
                add(StatementId="example.com"), **names)
    check_error(lambda_client, "perm.add_permission_principal_invalid",
                add(StatementId="x", Principal="invalid.nonaws.com"), **names)
    check_error(lambda_client, "perm.alias_revision_mismatch",
                add(StatementId="x", RevisionId=str(uuid.uuid4())), **names)


def test_a_first_alias_policy_takes_the_alias_revision_id(
    lambda_client: Any, create_function: CreateFunction, function_name: str, names: dict[str, str]
) -> None:
    """AddPermission with ``Qualifier=<alias>`` and no policy on the alias yet checks
    ``RevisionId`` against the alias's RevisionId (AWS's test_lambda_permission_fn_versioning)."""
    create_function()
    lambda_client.publish_version(FunctionName=function_name)
    alias = lambda_client.create_alias(FunctionName=function_name, Name="permission", FunctionVersion="1")
    function_revision = lambda_client.get_function_configuration(FunctionName=function_name)["RevisionId"]

    def add(revision: str) -> Callable[[], Any]:
        return lambda: lambda_client.add_permission(
            FunctionName=function_name, Qualifier="permission", StatementId="alias",
            Action="lambda:InvokeFunction", Principal="s3.amazonaws.com", RevisionId=revision)

    check_error(lambda_client, "perm.alias_revision_mismatch", add(function_revision), **names)
    add(alias["RevisionId"])()
    policy = json.loads(lambda_client.get_policy(FunctionName=function_name, Qualifier="permission")["Policy"])
    assert [s["Sid"] for s in policy["Statement"]] == ["alias"]


def test_get_policy_and_remove_permission_errors_match_aws(
    lambda_client: Any, create_function: CreateFunction, function_name: str, names: dict[str, str]
) -> None:
    create_function()
    check_error(lambda_client, "perm.get_policy_fn_doesnotexist",
                lambda: lambda_client.get_policy(FunctionName="doesnotexist"), **names)
    check_error(lambda_client, "perm.get_policy_fn_version_doesnotexist",
                lambda: lambda_client.get_policy(FunctionName=function_name, Qualifier="88"), **names)
    check_error(lambda_client, "perm.remove_permission_fn_doesnotexist",
                lambda: lambda_client.remove_permission(FunctionName="doesnotexist", StatementId="s3"),
                **names)
    check_error(lambda_client, "perm.remove_permission_policy_doesnotexist",
                lambda: lambda_client.remove_permission(FunctionName=function_name, StatementId="s3"),
                **names)
    lambda_client.add_permission(FunctionName=function_name, StatementId="s3",
                                 Action="lambda:InvokeFunction", Principal="s3.amazonaws.com")
    check_error(lambda_client, "perm.remove_unknown_sid",
                lambda: lambda_client.remove_permission(FunctionName=function_name, StatementId="non-existent"),
                **names)


def test_revision_id_preconditions(
    lambda_client: Any, create_function: CreateFunction, function_name: str, names: dict[str, str]
) -> None:
    create_function()
    # no policy yet: the function's RevisionId is accepted (on AWS the policy shares it)
    revision = lambda_client.get_function(FunctionName=function_name)["Configuration"]["RevisionId"]
    lambda_client.add_permission(FunctionName=function_name, StatementId="first", RevisionId=revision,
                                 Action="lambda:InvokeFunction", Principal="*")
    current = lambda_client.get_policy(FunctionName=function_name)["RevisionId"]
    check_error(lambda_client, "perm.alias_revision_mismatch",
                lambda: lambda_client.add_permission(
                    FunctionName=function_name, StatementId="second", RevisionId=revision,
                    Action="lambda:InvokeFunction", Principal="*"), **names)
    lambda_client.add_permission(FunctionName=function_name, StatementId="second", RevisionId=current,
                                 Action="lambda:InvokeFunction", Principal="*")
    check_error(lambda_client, "perm.alias_revision_mismatch",
                lambda: lambda_client.remove_permission(
                    FunctionName=function_name, StatementId="first", RevisionId=current), **names)
    latest = lambda_client.get_policy(FunctionName=function_name)["RevisionId"]
    lambda_client.remove_permission(FunctionName=function_name, StatementId="first", RevisionId=latest)
    statements = json.loads(lambda_client.get_policy(FunctionName=function_name)["Policy"])["Statement"]
    assert [s["Sid"] for s in statements] == ["second"]


# lifetime ------------------------------------------------------------------------------------


def test_deleting_the_function_deletes_its_policy(
    lambda_client: Any, create_function: CreateFunction, function_name: str, names: dict[str, str]
) -> None:
    create_function()
    lambda_client.add_permission(FunctionName=function_name, StatementId="s3",
                                 Action="lambda:InvokeFunction", Principal="s3.amazonaws.com")
    lambda_client.delete_function(FunctionName=function_name)
    check_error(lambda_client, "perm.get_policy_fn_doesnotexist",
                lambda: lambda_client.get_policy(FunctionName=function_name), **names)
    create_function()
    check_error(lambda_client, "perm.get_policy_fn_doesnotexist",
                lambda: lambda_client.get_policy(FunctionName=function_name), **names)
    lambda_client.add_permission(FunctionName=function_name, StatementId="s3",
                                 Action="lambda:InvokeFunction", Principal="s3.amazonaws.com")


def test_policies_survive_a_restart(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data")
    try:
        client = client_for(server.endpoint)
        client.create_function(FunctionName="guarded", Runtime="python3.11", Role=ROLE,
                               Handler="app.handler",
                               Code={"ZipFile": make_zip({"app.py": "def handler(e, c):\n    return e\n"})})
        client.get_waiter("function_active_v2").wait(FunctionName="guarded")
        for sid, principal in (("s3", "s3.amazonaws.com"), ("partner", "111122223333")):
            client.add_permission(FunctionName="guarded", StatementId=sid,
                                  Action="lambda:InvokeFunction", Principal=principal)
        before = client.get_policy(FunctionName="guarded")
    finally:
        stop_server(server)
    server = start_server(tmp_path / "data")
    try:
        client = client_for(server.endpoint)
        after = client.get_policy(FunctionName="guarded")
        assert (after["Policy"], after["RevisionId"]) == (before["Policy"], before["RevisionId"])
        client.remove_permission(FunctionName="guarded", StatementId="s3", RevisionId=after["RevisionId"])
        statements = json.loads(client.get_policy(FunctionName="guarded")["Policy"])["Statement"]
        assert [s["Sid"] for s in statements] == ["partner"]
    finally:
        stop_server(server)
