"""Authorisation end to end: principals made with ``strato credentials create`` call a server
through boto3, and their identity policies and the functions' resource-based policies decide,
with AWS's AccessDeniedException."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import make_zip
from tests.e2e.conftest import ROLE, StratoServer, client_for, start_server, stop_server
from tests.e2e.test_permissions_api import raw_bodies

PLATFORM = "000000000000"
PARTNER = "111122223333"
ECHO = make_zip({"app.py": "def handler(event, context):\n    return event\n"})
INVOKE_ONLY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": "*"}]}
READ_ONLY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["lambda:Get*", "lambda:List*"], "Resource": "*"}]}
NO_DELETE = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "*", "Resource": "*"},
    {"Effect": "Deny", "Action": "lambda:DeleteFunction", "Resource": "*"}]}


@dataclass(frozen=True)
class Caller:
    arn: str
    client: Any


def create_credentials(data_dir: Path, name: str, account: str, policy: dict[str, Any] | None) -> tuple[str, str]:
    command = [sys.executable, "-m", "strato.cli.main", "credentials", "create", "--name", name,
               "--account", account, "--data-dir", str(data_dir)]
    if policy is not None:
        command += ["--policy", json.dumps(policy)]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    values = dict(line.split("=", 1) for line in out.splitlines())
    return values["AWS_ACCESS_KEY_ID"], values["AWS_SECRET_ACCESS_KEY"]


@dataclass
class World:
    server: StratoServer
    admin: Any
    callers: dict[str, Caller]

    def caller(self, name: str) -> Caller:
        return self.callers[name]


CALLERS = {
    "bob": (PARTNER, INVOKE_ONLY),       # another account, may only invoke
    "eve": (PARTNER, None),              # an administrator of another account
    "reader": (PLATFORM, READ_ONLY),     # this account, read-only
    "careful": (PLATFORM, NO_DELETE),    # this account, everything but DeleteFunction
    "nobody": (PLATFORM, {"Version": "2012-10-17", "Statement": []}),
}


Keys = dict[str, tuple[str, str]]


def _prepare(data_dir: Path) -> Keys:
    """Every caller's key pair, written to the data dir's credentials before a server starts."""
    return {name: create_credentials(data_dir, name, account, policy)
            for name, (account, policy) in CALLERS.items()}


def _start(data_dir: Path, keys: Keys) -> World:
    server = start_server(data_dir)
    callers = {
        name: Caller(f"arn:aws:iam::{account}:user/{name}",
                     client_for(server.endpoint, access_key=keys[name][0], secret_key=keys[name][1]))
        for name, (account, _) in CALLERS.items()
    }
    return World(server, client_for(server.endpoint), callers)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data_dir = tmp_path_factory.mktemp("enforced") / "data"
    world = _start(data_dir, _prepare(data_dir))
    yield world
    stop_server(world.server)


@pytest.fixture
def function(world: World, request: pytest.FixtureRequest) -> Iterator[str]:
    """A new function of the platform's account, made by its administrator; yields its name."""
    name = f"{request.node.name[:40]}-{uuid.uuid4().hex[:8]}".replace("[", "-").replace("]", "-")
    world.admin.create_function(FunctionName=name, Runtime="python3.11", Role=ROLE,
                                Handler="app.handler", Code={"ZipFile": ECHO})
    world.admin.get_waiter("function_active_v2").wait(FunctionName=name,
                                                      WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    yield name
    with contextlib.suppress(world.admin.exceptions.ResourceNotFoundException):
        world.admin.delete_function(FunctionName=name)


def arn(name: str) -> str:
    return f"arn:aws:lambda:us-east-1:{PLATFORM}:function:{name}"


def invoke(caller: Caller, name: str, **kwargs: Any) -> Any:
    response = caller.client.invoke(FunctionName=arn(name), Payload=b'{"hello": "strato"}', **kwargs)
    return json.loads(response["Payload"].read())


def denied(caller: Caller, call: Callable[[], Any]) -> str:
    """The AccessDeniedException message ``call`` fails with (checking AWS's shape)."""
    with raw_bodies(caller.client) as bodies, pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    assert response["Error"]["Code"] == "AccessDeniedException"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 403
    message: str = response["Error"]["Message"]
    assert json.loads(bodies[-1]) == {"Message": message}
    return message


def not_authorized(caller: Caller, action: str, resource: str) -> str:
    return f"User: {caller.arn} is not authorized to perform: {action} on resource: {resource} "


# cross-account ---------------------------------------------------------------------------------


def test_cross_account_invoke_follows_the_resource_policy(world: World, function: str) -> None:
    bob = world.caller("bob")
    assert denied(bob, lambda: invoke(bob, function)) == (
        not_authorized(bob, "lambda:InvokeFunction", arn(function))
        + "because no resource-based policy allows the lambda:InvokeFunction action"
    )
    world.admin.add_permission(FunctionName=function, StatementId="partner",
                               Action="lambda:InvokeFunction", Principal=PARTNER)
    assert invoke(bob, function) == {"hello": "strato"}
    assert invoke(bob, function, Qualifier="$LATEST") == {"hello": "strato"}
    world.admin.remove_permission(FunctionName=function, StatementId="partner")
    denied(bob, lambda: invoke(bob, function))


def test_a_grant_to_another_principal_of_the_account_does_not_help(world: World, function: str) -> None:
    bob = world.caller("bob")
    world.admin.add_permission(FunctionName=function, StatementId="alice", Action="lambda:InvokeFunction",
                               Principal=f"arn:aws:iam::{PARTNER}:user/alice")
    denied(bob, lambda: invoke(bob, function))
    world.admin.add_permission(FunctionName=function, StatementId="bob", Action="lambda:InvokeFunction",
                               Principal=bob.arn)
    assert invoke(bob, function) == {"hello": "strato"}


def test_cross_account_needs_the_identity_policy_too(world: World, function: str) -> None:
    bob = world.caller("bob")
    world.admin.add_permission(FunctionName=function, StatementId="all", Action="lambda:*", Principal=PARTNER)
    assert denied(bob, lambda: bob.client.get_function(FunctionName=arn(function))) == (
        not_authorized(bob, "lambda:GetFunction", arn(function))
        + "because no identity-based policy allows the lambda:GetFunction action"
    )


def test_another_accounts_administrator_is_bound_by_the_resource_policy(world: World, function: str) -> None:
    eve = world.caller("eve")
    world.admin.add_permission(FunctionName=function, StatementId="invoke", Action="lambda:InvokeFunction",
                               Principal=PARTNER)
    assert invoke(eve, function) == {"hello": "strato"}
    assert denied(eve, lambda: eve.client.delete_function(FunctionName=arn(function))).endswith(
        "because no resource-based policy allows the lambda:DeleteFunction action"
    )
    # ListFunctions lists the caller's own account (as on AWS), which strato does not host:
    # its identity policy alone decides, and none of the platform's functions is listed.
    assert eve.client.list_functions()["Functions"] == []
    bob = world.caller("bob")
    assert denied(bob, bob.client.list_functions) == (
        not_authorized(bob, "lambda:ListFunctions", "*")
        + "because no identity-based policy allows the lambda:ListFunctions action"
    )


def test_a_conditioned_statement_the_request_cannot_satisfy_does_not_apply(world: World, function: str) -> None:
    bob = world.caller("bob")
    world.admin.add_permission(FunctionName=function, StatementId="from-s3", Action="lambda:InvokeFunction",
                               Principal="*", SourceArn="arn:aws:s3:::some-bucket")
    denied(bob, lambda: invoke(bob, function))


def test_deleting_a_function_forgets_its_policy(world: World, function: str) -> None:
    bob = world.caller("bob")
    world.admin.add_permission(FunctionName=function, StatementId="partner",
                               Action="lambda:InvokeFunction", Principal=PARTNER)
    assert invoke(bob, function) == {"hello": "strato"}
    world.admin.delete_function(FunctionName=function)
    world.admin.create_function(FunctionName=function, Runtime="python3.11", Role=ROLE,
                                Handler="app.handler", Code={"ZipFile": ECHO})
    world.admin.get_waiter("function_active_v2").wait(FunctionName=function)
    denied(bob, lambda: invoke(bob, function))


# same account ----------------------------------------------------------------------------------


def test_same_account_principals_follow_their_identity_policy(world: World, function: str) -> None:
    reader = world.caller("reader")
    assert reader.client.get_function(FunctionName=function)["Configuration"]["FunctionName"] == function
    assert reader.client.list_functions()["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert denied(reader, lambda: reader.client.delete_function(FunctionName=function)) == (
        not_authorized(reader, "lambda:DeleteFunction", arn(function))
        + "because no identity-based policy allows the lambda:DeleteFunction action"
    )
    denied(reader, lambda: invoke(reader, function))
    careful = world.caller("careful")
    assert invoke(careful, function) == {"hello": "strato"}
    assert denied(careful, lambda: careful.client.delete_function(FunctionName=function)) == (
        not_authorized(careful, "lambda:DeleteFunction", arn(function))
        + "with an explicit deny in an identity-based policy"
    )
    world.admin.get_function(FunctionName=function)


def test_a_resource_policy_naming_a_same_account_principal_lets_it_invoke(world: World, function: str) -> None:
    nobody = world.caller("nobody")
    denied(nobody, lambda: invoke(nobody, function))
    world.admin.add_permission(FunctionName=function, StatementId="account", Action="lambda:InvokeFunction",
                               Principal=PLATFORM)
    denied(nobody, lambda: invoke(nobody, function))  # a grant to its own account delegates to IAM
    world.admin.add_permission(FunctionName=function, StatementId="nobody", Action="lambda:InvokeFunction",
                               Principal=nobody.arn)
    assert invoke(nobody, function) == {"hello": "strato"}


# restart ---------------------------------------------------------------------------------------


def test_policies_are_enforced_after_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    keys = _prepare(data_dir)
    world = _start(data_dir, keys)
    try:
        world.admin.create_function(FunctionName="shared", Runtime="python3.11", Role=ROLE,
                                    Handler="app.handler", Code={"ZipFile": ECHO})
        world.admin.get_waiter("function_active_v2").wait(FunctionName="shared")
        world.admin.add_permission(FunctionName="shared", StatementId="partner",
                                   Action="lambda:InvokeFunction", Principal=PARTNER)
    finally:
        stop_server(world.server)
    world = _start(data_dir, keys)
    try:
        assert invoke(world.caller("bob"), "shared") == {"hello": "strato"}
        world.admin.remove_permission(FunctionName="shared", StatementId="partner")
        denied(world.caller("bob"), lambda: invoke(world.caller("bob"), "shared"))
    finally:
        stop_server(world.server)
