"""Aliases (CreateAlias, GetAlias, ListAliases, UpdateAlias, DeleteAlias), invocations through
them, weighted routing and resource policies per alias, driven by boto3 against a real strato
server and compared with AWS's recordings."""

from __future__ import annotations

import contextlib
import math
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_zip
from tests.e2e.conftest import ROLE, CreateFunction, stop_server
from tests.e2e.recordings import (
    assert_recorded,
    check_error,
    function_arn,
    invoke,
    recorded,
    reporter,
)
from tests.e2e.test_permission_enforcement import (
    PARTNER,
    World,
    _prepare,
    _start,
    denied,
    not_authorized,
)
from tests.e2e.test_permission_enforcement import invoke as invoke_as

WAIT = {"Delay": 1, "MaxAttempts": 60}


def _version_reporter(version_id: str) -> dict[str, str]:
    """The handler of AWS's recording of an alias moving between versions (inv.alias_moving.*)."""
    return {"index.py": (
        "def handler(event, context):\n"
        f"    return {{'version_id': {version_id!r}, 'invoked_arn': context.invoked_function_arn,\n"
        "            'version_from_ctx': context.function_version}\n"
    )}


def _publish(client: Any, name: str, files: dict[str, str]) -> str:
    """Replace ``$LATEST``'s code with ``files``, publish it; the new version's number."""
    client.update_function_code(FunctionName=name, ZipFile=make_zip(files))
    client.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig=WAIT)
    return str(client.publish_version(FunctionName=name)["Version"])


def _with_versions(client: Any, create_function: CreateFunction, name: str, count: int) -> None:
    """Function ``name`` (``reporter`` code) with versions 1 … ``count``, version n labelled "vn"."""
    create_function(reporter("v1"), name=name, handler="index.handler", Publish=True)
    client.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig=WAIT)
    for number in range(2, count + 1):
        _publish(client, name, reporter(f"v{number}"))


def _aliases(client: Any, name: str) -> list[dict[str, Any]]:
    return list(client.list_aliases(FunctionName=name)["Aliases"])


# the shared function of the bad-input tests -------------------------------------------------


@pytest.fixture(scope="module")
def versioned(lambda_client: Any) -> Iterator[str]:
    """A function with versions 1, 2 and 3 and the alias ``custom`` on version 1; the tests
    that use it only make requests that must fail, and check that nothing changed."""
    name = f"aliases-{uuid.uuid4().hex[:8]}"
    lambda_client.create_function(FunctionName=name, Runtime="python3.12", Role=ROLE,
                                  Handler="index.handler", Code={"ZipFile": make_zip(reporter("v1"))},
                                  Publish=True)
    lambda_client.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig=WAIT)
    for number in (2, 3):
        _publish(lambda_client, name, reporter(f"v{number}"))
    lambda_client.create_alias(FunctionName=name, Name="custom", FunctionVersion="1")
    yield name
    with contextlib.suppress(lambda_client.exceptions.ResourceNotFoundException):
        lambda_client.delete_function(FunctionName=name)


@contextlib.contextmanager
def unchanged(client: Any, name: str) -> Iterator[None]:
    """The function's aliases are the same after the block as before it."""
    before = _aliases(client, name)
    yield
    assert _aliases(client, name) == before


# lifecycle ---------------------------------------------------------------------------------


def test_alias_lifecycle_matches_aws(lambda_client: Any, create_function: CreateFunction,
                                     function_name: str) -> None:
    """Create (201, RoutingConfig only when weighted), Get, GetFunction through the alias,
    Update (routing removed), List for a version and Delete (204) answer as AWS recorded
    (test_alias_lifecycle)."""
    create_function(reporter("v1"), handler="index.handler", runtime="python3.12", Publish=True,
                    Environment={"Variables": {"testenv": "staging"}})
    lambda_client.get_waiter("function_updated_v2").wait(FunctionName=function_name, WaiterConfig=WAIT)
    _publish(lambda_client, function_name, reporter("v2"))
    names = {"function_name": function_name}

    created = lambda_client.create_alias(FunctionName=function_name, Name="aliasname1_1", FunctionVersion="1",
                                         Description="custom-alias",
                                         RoutingConfig={"AdditionalVersionWeights": {"2": 0.2}})
    assert_recorded(created, "alias.lifecycle.create_alias_1_1", exact=True, **names)
    got = lambda_client.get_alias(FunctionName=function_name, Name="aliasname1_1")
    assert_recorded(got, "alias.lifecycle.get_alias_1_1", exact=True, **names)
    assert got["RevisionId"] == created["RevisionId"]
    assert_recorded(lambda_client.get_function(FunctionName=function_name, Qualifier="aliasname1_1"),
                    "alias.get_function", **names)
    check_error(lambda_client, "alias.get_function_not_found",
                lambda: lambda_client.get_function(FunctionName=function_name, Qualifier="aliasdoesnotexist"),
                **names)

    updated = lambda_client.update_alias(FunctionName=function_name, Name="aliasname1_1",
                                         RoutingConfig={"AdditionalVersionWeights": {}})
    assert_recorded(updated, "alias.lifecycle.update_alias_1_1", exact=True, **names)
    assert "RoutingConfig" not in updated and updated["RevisionId"] != created["RevisionId"]
    lambda_client.create_alias(FunctionName=function_name, Name="aliasname1_2", FunctionVersion="1",
                               Description="custom-alias")
    third = lambda_client.create_alias(FunctionName=function_name, Name="aliasname1_3", FunctionVersion="1")
    assert_recorded(third, "alias.lifecycle.create_alias_1_3", exact=True, **names)
    assert "RoutingConfig" not in third
    lambda_client.create_alias(FunctionName=function_name, Name="aliasname2_1", FunctionVersion="2")
    listed = lambda_client.list_aliases(FunctionName=function_name, FunctionVersion="1")
    assert_recorded(listed, "alias.lifecycle.list_aliases_for_version", exact=True, **names)
    assert listed["Aliases"][0]["RevisionId"] == updated["RevisionId"]
    assert listed["Aliases"][2]["RevisionId"] == third["RevisionId"]
    assert [a["Name"] for a in _aliases(lambda_client, function_name)] == [
        "aliasname1_1", "aliasname1_2", "aliasname1_3", "aliasname2_1"]

    deleted = lambda_client.delete_alias(FunctionName=function_name, Name="aliasname1_1")
    assert_recorded(deleted, "alias.lifecycle.delete_alias_response", exact=True, **names)
    check_error(lambda_client, "alias.alias_does_not_exist_esc",
                lambda: lambda_client.get_alias(FunctionName=function_name, Name="non-existent"), **names)
    assert [a["Name"] for a in _aliases(lambda_client, function_name)] == [
        "aliasname1_2", "aliasname1_3", "aliasname2_1"]
    assert_recorded(lambda_client.delete_alias(FunctionName=function_name, Name="non-existent"),
                    "alias.delete_nonexistent", exact=True, **names)


def test_alias_on_latest_and_dated_names(lambda_client: Any, create_function: CreateFunction,
                                         function_name: str) -> None:
    """An alias may point to ``$LATEST`` and be named like a date (not all digits), as AWS
    recorded; its ARN is the function's with the alias name."""
    create_function(reporter("v1"), handler="index.handler", Publish=True)
    names = {"function_name": function_name}
    assert_recorded(lambda_client.create_alias(FunctionName=function_name, Name="custom-latest",
                                               FunctionVersion="$LATEST"), "alias.create_latest", exact=True, **names)
    assert_recorded(lambda_client.create_alias(FunctionName=function_name, Name="2024-01-02",
                                               FunctionVersion="1", Description="custom-alias"),
                    "alias.date_name", exact=True, **names)
    got = lambda_client.get_alias(FunctionName=function_arn(function_name), Name="2024-01-02")
    assert got["AliasArn"] == function_arn(function_name, "2024-01-02")


def test_list_aliases_pages_with_marker(lambda_client: Any, create_function: CreateFunction,
                                        function_name: str) -> None:
    """ListAliases with MaxItems=1 and NextMarker walks every alias once, by name; the
    FunctionVersion filter keeps the aliases of that version."""
    create_function(reporter("v1"), handler="index.handler", Publish=True)
    lambda_client.get_waiter("function_updated_v2").wait(FunctionName=function_name, WaiterConfig=WAIT)
    _publish(lambda_client, function_name, reporter("v2"))
    for alias, version in (("gamma", "1"), ("alpha", "2"), ("beta", "1")):
        lambda_client.create_alias(FunctionName=function_name, Name=alias, FunctionVersion=version)
    walked: list[str] = []
    marker: dict[str, str] = {}
    while True:
        page = lambda_client.list_aliases(FunctionName=function_name, MaxItems=1, **marker)
        assert len(page["Aliases"]) == 1
        walked += [a["Name"] for a in page["Aliases"]]
        if "NextMarker" not in page:
            break
        marker = {"Marker": page["NextMarker"]}
    assert walked == ["alpha", "beta", "gamma"]
    by_version = lambda_client.list_aliases(FunctionName=function_name, FunctionVersion="1")["Aliases"]
    assert [a["Name"] for a in by_version] == ["beta", "gamma"]


# invoking through an alias -------------------------------------------------------------------


def test_invocations_follow_the_alias(lambda_client: Any, create_function: CreateFunction,
                                      function_name: str) -> None:
    """Invoking through an alias runs its version, with the alias ARN as
    ``invoked_function_arn``; publishing or changing ``$LATEST`` leaves it there and moving it
    (UpdateAlias FunctionVersion) moves the invocations (AWS's inv.alias_moving.*)."""
    create_function(_version_reporter("version1"), handler="index.handler", Publish=True)
    lambda_client.get_waiter("function_updated_v2").wait(FunctionName=function_name, WaiterConfig=WAIT)
    lambda_client.create_alias(FunctionName=function_name, Name="alias1", FunctionVersion="1")
    names = {"function_name": function_name}

    def through_alias() -> dict[str, Any]:
        response, payload = invoke(lambda_client, function_name, Qualifier="alias1")
        return {**response, "Payload": payload}

    assert_recorded(through_alias(), "inv.alias_moving.invocation_result_qualifier_v1", **names)
    for spelling in (f"{function_name}:alias1", function_arn(function_name, "alias1")):
        response, payload = invoke(lambda_client, spelling)
        assert (response["ExecutedVersion"], payload["invoked_arn"]) == ("1", function_arn(function_name, "alias1"))
    assert _publish(lambda_client, function_name, _version_reporter("version2")) == "2"
    assert_recorded(through_alias(), "inv.alias_moving.invocation_result_qualifier_v1_after_publish", **names)
    lambda_client.update_function_code(FunctionName=function_name, ZipFile=make_zip(_version_reporter("latest")))
    lambda_client.get_waiter("function_updated_v2").wait(FunctionName=function_name, WaiterConfig=WAIT)
    assert_recorded(through_alias(), "inv.alias_moving.invocation_result_qualifier_v1_after_update", **names)
    lambda_client.update_alias(FunctionName=function_name, Name="alias1", FunctionVersion="2")
    assert_recorded(through_alias(), "inv.alias_moving.invocation_result_qualifier_v2", **names)
    check_error(lambda_client, "inv.alias_not_found",
                lambda: lambda_client.invoke(FunctionName=function_name, Qualifier="non-existent-alias"), **names)


def _share_bound(n: int, p: float, sigmas: float) -> tuple[float, float]:
    """The interval of the observed share of successes in ``n`` draws of probability ``p``
    that a correct router leaves only with the probability of a ``sigmas``-sigma deviation."""
    half_width = sigmas * math.sqrt(p * (1 - p) / n)
    return p - half_width, p + half_width


def test_weighted_routing_splits_invocations(lambda_client: Any, create_function: CreateFunction,
                                             function_name: str) -> None:
    """An alias on version 1 with ``{"2": 0.1}`` sends about a tenth of its invocations to
    version 2: over 2,000 invocations the share executed on version 2 (``ExecutedVersion``,
    and the code that ran agrees) lies within 4.5 binomial standard deviations of 0.1."""
    _with_versions(lambda_client, create_function, function_name, 2)
    lambda_client.create_alias(FunctionName=function_name, Name="canary", FunctionVersion="1",
                               RoutingConfig={"AdditionalVersionWeights": {"2": 0.1}})
    invocations, weight = 2000, 0.1

    def once(_: int) -> str:
        response, payload = invoke(lambda_client, function_name, Qualifier="canary")
        assert payload["label"] == f"v{response['ExecutedVersion']}"
        assert payload["invoked_function_arn"] == function_arn(function_name, "canary")
        return str(response["ExecutedVersion"])

    with ThreadPoolExecutor(max_workers=8) as pool:
        executed = Counter(pool.map(once, range(invocations)))
    assert set(executed) == {"1", "2"}
    low, high = _share_bound(invocations, weight, 4.5)
    share = executed["2"] / invocations
    assert low <= share <= high, (share, low, high)


def test_an_even_split_reaches_both_versions_quickly(lambda_client: Any, create_function: CreateFunction,
                                                     function_name: str) -> None:
    """With ``{"2": 0.5}`` both versions run within 20 invocations (AWS's inv.routing_hits_both)."""
    expected = recorded("inv.routing_hits_both")["value"]
    _with_versions(lambda_client, create_function, function_name, 2)
    lambda_client.create_alias(FunctionName=function_name, Name="split", FunctionVersion="1",
                               RoutingConfig={"AdditionalVersionWeights": expected["weights"]})
    seen: set[str] = set()
    for _ in range(expected["max_invokes"]):
        seen.add(invoke(lambda_client, function_name, Qualifier="split")[0]["ExecutedVersion"])
        if len(seen) == expected["distinct_versions"]:
            break
    assert seen == {"1", "2"}


# bad input ---------------------------------------------------------------------------------


def test_an_all_digit_alias_name_is_refused(lambda_client: Any, versioned: str) -> None:
    """An alias name of digits only is a ValidationException (it would read as a version)."""
    with unchanged(lambda_client, versioned):
        check_error(lambda_client, "alias.numeric_name",
                    lambda: lambda_client.create_alias(FunctionName=versioned, Name="2024", FunctionVersion="1"))


@pytest.mark.parametrize(("key", "weight"), [("alias.routing_config_exc_subzero", -1.0),
                                             ("alias.routing_config_exc_toohigh", 2.0)])
def test_a_weight_outside_zero_to_one_is_refused(lambda_client: Any, versioned: str, key: str,
                                                 weight: float) -> None:
    """A routing weight below 0 or above 1 is a ValidationException, on create and update."""
    routing = {"AdditionalVersionWeights": {"2": weight}}
    with unchanged(lambda_client, versioned):
        check_error(lambda_client, key, lambda: lambda_client.create_alias(
            FunctionName=versioned, Name="weighted", FunctionVersion="1", RoutingConfig=routing))
        check_error(lambda_client, key, lambda: lambda_client.update_alias(
            FunctionName=versioned, Name="custom", RoutingConfig=routing))


@pytest.mark.parametrize(
    ("key", "version", "weights"),
    [
        ("alias.routing_config_exc_toomany", "1", {"2": 0.5, "3": 0.5}),
        ("alias.routing_config_exc_sameversion", "1", {"1": 0.5}),
        ("alias.target_version_exc_version_latest", "$LATEST", {"1": 0.5}),
        ("alias.routing_config_exc_version_latest", "1", {"$LATEST": 0.5}),
        ("alias.routing_config_exc_version_doesnotexist", "1", {"10": 0.5}),
        ("alias.target_version_doesnotexist", "10", None),
    ],
)
def test_bad_routing_is_refused(lambda_client: Any, versioned: str, key: str, version: str,
                                weights: dict[str, float] | None) -> None:
    """Two additional versions, an additional version equal to the alias's own, routing from
    ``$LATEST`` or to ``$LATEST``, and unknown versions are refused with AWS's errors, on
    create and on update, and change nothing."""
    routing = {} if weights is None else {"RoutingConfig": {"AdditionalVersionWeights": weights}}
    names = {"function_name": versioned}
    with unchanged(lambda_client, versioned):
        check_error(lambda_client, key, lambda: lambda_client.create_alias(
            FunctionName=versioned, Name="bad", FunctionVersion=version, **routing), **names)
        check_error(lambda_client, key, lambda: lambda_client.update_alias(
            FunctionName=versioned, Name="custom", FunctionVersion=version, **routing), **names)


def test_an_existing_alias_name_is_a_conflict(lambda_client: Any, versioned: str) -> None:
    """Creating an alias whose name is taken is a 409 ResourceConflictException."""
    with unchanged(lambda_client, versioned):
        check_error(lambda_client, "alias.routing_config_exc_already_exist",
                    lambda: lambda_client.create_alias(FunctionName=versioned, Name="custom", FunctionVersion="2"),
                    function_name=versioned)


def test_update_with_a_stale_revision_id_is_refused(lambda_client: Any, versioned: str) -> None:
    """UpdateAlias with a RevisionId that is not the alias's is a 412 and changes nothing;
    the current RevisionId is accepted."""
    current = lambda_client.get_alias(FunctionName=versioned, Name="custom")
    with unchanged(lambda_client, versioned):
        check_error(lambda_client, "alias.wrong_revision", lambda: lambda_client.update_alias(
            FunctionName=versioned, Name="custom", FunctionVersion="2", RevisionId=str(uuid.uuid4())))
    accepted = lambda_client.update_alias(FunctionName=versioned, Name="custom", FunctionVersion="1",
                                          RevisionId=current["RevisionId"])
    assert accepted["FunctionVersion"] == "1" and accepted["RevisionId"] != current["RevisionId"]


def test_unknown_functions_and_aliases_are_not_found(lambda_client: Any, versioned: str) -> None:
    """An alias of an unknown function, and reads or updates of an unknown alias, are 404s
    with AWS's messages."""
    names = {"function_name": versioned}
    with unchanged(lambda_client, versioned):
        check_error(lambda_client, "alias.routing_config_exc_fn_doesnotexist", lambda: lambda_client.create_alias(
            FunctionName=f"{versioned}-unknown", Name="custom", FunctionVersion="1"), **names)
        check_error(lambda_client, "alias.update_nonexistent", lambda: lambda_client.update_alias(
            FunctionName=versioned, Name="non-existent", FunctionVersion="1"), **names)
        check_error(lambda_client, "alias.alias_does_not_exist_esc", lambda: lambda_client.get_alias(
            FunctionName=versioned, Name="non-existent"), **names)


# resource policies per qualifier -----------------------------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A server whose credentials include ``bob``, of another account, allowed to invoke."""
    data_dir: Path = tmp_path_factory.mktemp("alias-policies") / "data"
    world = _start(data_dir, _prepare(data_dir))
    yield world
    stop_server(world.server)


def test_a_permission_on_an_alias_covers_only_the_alias(world: World) -> None:
    """A resource policy statement added with ``Qualifier=<alias>`` lets a principal of
    another account invoke through the alias, but neither the unqualified function nor the
    version behind the alias."""
    admin, bob = world.admin, world.caller("bob")
    name = f"alias-policy-{uuid.uuid4().hex[:8]}"
    admin.create_function(FunctionName=name, Runtime="python3.11", Role=ROLE, Handler="index.handler",
                          Code={"ZipFile": make_zip(reporter("v1"))}, Publish=True)
    try:
        admin.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig=WAIT)
        admin.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
        arn = function_arn(name)

        def unqualified() -> Any:
            return invoke_as(bob, name)

        assert denied(bob, unqualified) == (
            not_authorized(bob, "lambda:InvokeFunction", arn)
            + "because no resource-based policy allows the lambda:InvokeFunction action")
        admin.add_permission(FunctionName=name, Qualifier="live", StatementId="partner",
                             Action="lambda:InvokeFunction", Principal=PARTNER)
        assert invoke_as(bob, name, Qualifier="live")["label"] == "v1"
        denied(bob, unqualified)
        assert denied(bob, lambda: invoke_as(bob, name, Qualifier="1")) == (
            not_authorized(bob, "lambda:InvokeFunction", f"{arn}:1")
            + "because no resource-based policy allows the lambda:InvokeFunction action")
        admin.remove_permission(FunctionName=name, Qualifier="live", StatementId="partner")
        denied(bob, lambda: invoke_as(bob, name, Qualifier="live"))
    finally:
        admin.delete_function(FunctionName=name)
