"""Published versions (PublishVersion, ListVersionsByFunction, qualified reads, invokes and
deletes), driven by boto3 against a real strato server and compared with AWS's recordings."""

from __future__ import annotations

import base64
import hashlib
from functools import partial
from typing import Any

from tests.conftest import make_zip
from tests.e2e.conftest import CreateFunction
from tests.e2e.recordings import (
    assert_matches,
    assert_recorded,
    check_error,
    error_of,
    function_arn,
    invoke,
    recorded,
    reporter,
)

RECORDED = {"handler": "index.handler", "runtime": "python3.12"}
WAIT = {"Delay": 1, "MaxAttempts": 60}
#: The handler of AWS's recording of an invocation of a version (inv.qualifier.*).
CONTEXT_REPORTER = {"index.py": (
    "import logging\n"
    "logger = logging.getLogger()\n"
    "logger.setLevel(logging.INFO)\n"
    "def handler(event, context):\n"
    "    print('Lambda log message - print function')\n"
    "    logger.info('Lambda log message - logging module')\n"
    "    return {'event': event, 'context': {key: getattr(context, key) for key in (\n"
    "        'aws_request_id', 'client_context', 'function_name', 'function_version',\n"
    "        'invoked_function_arn', 'log_group_name', 'log_stream_name', 'memory_limit_in_mb')}}\n"
)}


def _wait_updated(client: Any, name: str) -> None:
    client.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig=WAIT)


def _wait_active(client: Any, name: str, qualifier: str) -> None:
    client.get_waiter("function_active_v2").wait(FunctionName=name, Qualifier=qualifier,
                                                 WaiterConfig=WAIT)


def _versions(client: Any, name: str) -> list[str]:
    return [v["Version"] for v in client.list_versions_by_function(FunctionName=name)["Versions"]]


def _publish_new_code(client: Any, name: str, label: str) -> dict[str, Any]:
    """Replace ``$LATEST``'s code with ``reporter(label)`` and publish it."""
    client.update_function_code(FunctionName=name, ZipFile=make_zip(reporter(label)))
    _wait_updated(client, name)
    return dict(client.publish_version(FunctionName=name))


def _sha256(package: bytes) -> str:
    return base64.b64encode(hashlib.sha256(package).digest()).decode()


# publishing ----------------------------------------------------------------------------------


def assert_latest_revision_renewed(client: Any, name: str, *, before: str) -> None:
    """``$LATEST``'s RevisionId is no longer ``before`` (publishing changes it on AWS), and a
    RevisionId read before no longer updates the function."""
    assert client.get_function_configuration(FunctionName=name)["RevisionId"] != before
    check_error(client, "fn.revision.mismatch", lambda: client.update_function_configuration(
        FunctionName=name, Description="stale", RevisionId=before))


def test_version_lifecycle_matches_aws(lambda_client: Any, create_function: CreateFunction,
                                       function_name: str) -> None:
    """Versions are numbered 1, 2, … with qualified ARNs; a description change is a change;
    publishing an unchanged ``$LATEST`` answers the newest version; deleting a version leaves
    the others (AWS's test_version_lifecycle)."""
    create_function(reporter("one"), Description="No version :(", **RECORDED)
    lambda_client.update_function_configuration(FunctionName=function_name, Description="First version :)")
    _wait_updated(lambda_client, function_name)
    updated_revision = lambda_client.get_function_configuration(FunctionName=function_name)["RevisionId"]
    first = lambda_client.publish_version(FunctionName=function_name,
                                          Description="First version description :)")
    assert_recorded(first, "ver.lifecycle.first_publish_response", function_name=function_name)
    assert_latest_revision_renewed(lambda_client, function_name, before=updated_revision)

    lambda_client.update_function_configuration(FunctionName=function_name, Description="Second version :))")
    _wait_updated(lambda_client, function_name)
    second = lambda_client.publish_version(FunctionName=function_name)
    assert_recorded(second, "ver.lifecycle.second_publish_response", function_name=function_name)
    third = lambda_client.publish_version(FunctionName=function_name)
    assert_recorded(third, "ver.lifecycle.third_publish_response", function_name=function_name)
    assert third["RevisionId"] == second["RevisionId"]

    listed = lambda_client.list_versions_by_function(FunctionName=function_name)
    assert_recorded(listed, "ver.lifecycle.list_versions_result_after_third_publish",
                    exact=True, function_name=function_name)
    assert [v["RevisionId"] for v in listed["Versions"][1:]] == [first["RevisionId"], second["RevisionId"]]

    deleted = lambda_client.delete_function(FunctionName=function_name, Qualifier="1")
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert_recorded(lambda_client.list_versions_by_function(FunctionName=function_name),
                    "ver.lifecycle.list_versions_result_after_deletion_of_first_version",
                    exact=True, function_name=function_name)


def test_publish_on_create_matches_aws(lambda_client: Any, create_function: CreateFunction,
                                       function_name: str) -> None:
    """``Publish=True`` on CreateFunction answers version 1 (under the function's ARN, still
    Pending); both ``$LATEST`` and version 1 become Active, and publishing again answers 1."""
    created = create_function(reporter("one"), Publish=True, **RECORDED)
    assert_recorded(created, "ver.publish_on_create.create_response", function_name=function_name)
    _wait_active(lambda_client, function_name, "1")
    assert_recorded(lambda_client.get_function(FunctionName=function_name, Qualifier="$LATEST"),
                    "ver.publish_on_create.get_function_latest_result", function_name=function_name)
    assert_recorded(lambda_client.get_function(FunctionName=function_name, Qualifier="1"),
                    "ver.publish_on_create.get_function_version_result", function_name=function_name)
    assert_recorded(lambda_client.list_versions_by_function(FunctionName=function_name),
                    "ver.publish_on_create.list_versions_result", exact=True, function_name=function_name)
    assert_recorded(lambda_client.publish_version(FunctionName=function_name),
                    "ver.publish_on_create.repeated_publish_response", function_name=function_name)
    assert _versions(lambda_client, function_name) == ["$LATEST", "1"]


def test_update_code_with_publish_answers_the_new_version(
    lambda_client: Any, create_function: CreateFunction, function_name: str
) -> None:
    """``Publish=True`` on UpdateFunctionCode answers the new version's configuration under
    its qualified ARN (Pending, as on AWS); the version then runs the new code."""
    create_function(reporter("one"), **RECORDED)
    package = make_zip(reporter("two"))
    updated = lambda_client.update_function_code(FunctionName=function_name, ZipFile=package, Publish=True)
    assert_recorded(updated, "ver.update_code_publish", function_name=function_name)
    assert updated["CodeSha256"] == _sha256(package)
    _wait_active(lambda_client, function_name, "1")
    response, payload = invoke(lambda_client, function_name, Qualifier="1")
    assert (response["ExecutedVersion"], payload["label"]) == ("1", "two")

    _wait_updated(lambda_client, function_name)
    again = lambda_client.update_function_code(FunctionName=function_name, ZipFile=make_zip(reporter("three")),
                                               Publish=True)
    assert (again["Version"], again["FunctionArn"]) == ("2", function_arn(function_name, "2"))
    assert _versions(lambda_client, function_name) == ["$LATEST", "1", "2"]


def test_publish_with_a_wrong_code_sha256_changes_nothing(
    lambda_client: Any, create_function: CreateFunction, function_name: str
) -> None:
    """A CodeSha256 other than ``$LATEST``'s is refused with AWS's message; no version is made."""
    created = create_function(reporter("one"), handler="index.handler")
    check_error(lambda_client, "ver.wrong_sha256",
                lambda: lambda_client.publish_version(FunctionName=function_name,
                                                      CodeSha256="somenonexistentsha256"),
                code_sha256=created["CodeSha256"])
    assert _versions(lambda_client, function_name) == ["$LATEST"]
    published = lambda_client.publish_version(FunctionName=function_name, CodeSha256=created["CodeSha256"])
    assert published["Version"] == "1"


def test_publish_with_a_stale_revision_id_changes_nothing(
    lambda_client: Any, create_function: CreateFunction, function_name: str
) -> None:
    """A RevisionId that is not ``$LATEST``'s is a 412 PreconditionFailedException; no version
    is made, and the current RevisionId publishes."""
    created = create_function(reporter("one"), handler="index.handler")
    lambda_client.update_function_configuration(FunctionName=function_name, Timeout=5)
    _wait_updated(lambda_client, function_name)
    check_error(lambda_client, "ver.wrong_revision",
                lambda: lambda_client.publish_version(FunctionName=function_name,
                                                      RevisionId=created["RevisionId"]))
    assert _versions(lambda_client, function_name) == ["$LATEST"]
    current = lambda_client.get_function_configuration(FunctionName=function_name)["RevisionId"]
    assert lambda_client.publish_version(FunctionName=function_name, RevisionId=current)["Version"] == "1"


def test_list_versions_pages_with_marker(lambda_client: Any, create_function: CreateFunction,
                                         function_name: str) -> None:
    """ListVersionsByFunction lists ``$LATEST`` first, then the versions by number; MaxItems=1
    with NextMarker walks every one of them, once."""
    create_function(reporter("one"), Publish=True, handler="index.handler")
    _wait_updated(lambda_client, function_name)
    for label in ("two", "three"):
        _publish_new_code(lambda_client, function_name, label)
    walked: list[str] = []
    marker: dict[str, str] = {}
    while True:
        page = lambda_client.list_versions_by_function(FunctionName=function_name, MaxItems=1, **marker)
        assert len(page["Versions"]) == 1
        walked += [v["Version"] for v in page["Versions"]]
        if "NextMarker" not in page:
            break
        marker = {"Marker": page["NextMarker"]}
    assert walked == ["$LATEST", "1", "2", "3"]
    assert _versions(lambda_client, function_name) == walked


# qualified reads and invokes ---------------------------------------------------------------


def test_a_version_is_reachable_by_qualifier_suffix_and_arn(
    lambda_client: Any, create_function: CreateFunction, function_name: str
) -> None:
    """GetFunction, GetFunctionConfiguration and Invoke reach version 1 with ``Qualifier=1``,
    with ``name:1`` and with its qualified ARN; a name's qualifier that contradicts
    ``Qualifier`` is refused as on AWS."""
    create_function(reporter("one"), Publish=True, handler="index.handler")
    _wait_updated(lambda_client, function_name)
    _publish_new_code(lambda_client, function_name, "two")
    arn = function_arn(function_name, "1")
    spellings: list[dict[str, str]] = [
        {"FunctionName": function_name, "Qualifier": "1"},
        {"FunctionName": f"{function_name}:1"},
        {"FunctionName": arn},
        {"FunctionName": arn, "Qualifier": "1"},
    ]
    for spelling in spellings:
        config = lambda_client.get_function_configuration(**spelling)
        assert (config["Version"], config["FunctionArn"]) == ("1", arn), spelling
        got = lambda_client.get_function(**spelling)
        assert (got["Configuration"]["Version"], got["Configuration"]["FunctionArn"]) == ("1", arn), spelling
        qualifier = {k: v for k, v in spelling.items() if k == "Qualifier"}
        response, payload = invoke(lambda_client, spelling["FunctionName"], **qualifier)
        assert (response["ExecutedVersion"], payload["label"]) == ("1", "one"), spelling
    check_error(lambda_client, "fn.qualifier_mismatch",
                lambda: lambda_client.get_function(FunctionName=f"{function_name}:1", Qualifier="2"))


def test_a_version_keeps_its_code_and_context_after_latest_changes(
    lambda_client: Any, create_function: CreateFunction, function_name: str
) -> None:
    """Invoking version 1 after ``$LATEST``'s code changed still runs version 1's code;
    ``ExecutedVersion``, the context and the log say which version ran, as AWS recorded
    (inv.qualifier.response, inv.qualifier.log_lines)."""
    create_function(CONTEXT_REPORTER, Publish=True, handler="index.handler")
    _wait_updated(lambda_client, function_name)
    lambda_client.update_function_code(FunctionName=function_name, ZipFile=make_zip(reporter("two")))
    _wait_updated(lambda_client, function_name)

    response, payload = invoke(lambda_client, function_name, {"foo": "bar with 'quotes\""},
                               Qualifier="1", LogType="Tail")
    log = base64.b64decode(response["LogResult"]).decode().splitlines()
    expected_log = recorded("inv.qualifier.log_lines")["value"]["log_result"]
    assert_matches({"response": {**response, "Payload": payload}, "log": log[:len(expected_log)]},
                   {"response": recorded("inv.qualifier.response", function_name=function_name)["value"],
                    "log": expected_log})
    assert payload["context"]["aws_request_id"] == response["ResponseMetadata"]["RequestId"]
    assert "[1]" in payload["context"]["log_stream_name"]

    response, payload = invoke(lambda_client, function_name)
    assert (response["ExecutedVersion"], payload["label"]) == ("$LATEST", "two")
    assert payload["function_version"] == "$LATEST"
    assert payload["invoked_function_arn"] == function_arn(function_name)


def test_an_unknown_version_is_not_found(lambda_client: Any, create_function: CreateFunction,
                                         function_name: str) -> None:
    """Reads and invokes of a version that was never published fail with AWS's
    ResourceNotFoundException."""
    create_function(reporter("one"), Publish=True, handler="index.handler")
    check_error(lambda_client, "fn.version_not_found.get_function",
                lambda: lambda_client.get_function(FunctionName=function_name, Qualifier="1221"),
                function_name=function_name)
    check_error(lambda_client, "fn.version_not_found.get_function_configuration",
                lambda: lambda_client.get_function_configuration(FunctionName=f"{function_name}:1221"),
                function_name=function_name)
    check_error(lambda_client, "fn.version_not_found.get_function",
                lambda: lambda_client.invoke(FunctionName=function_arn(function_name, "1221")),
                function_name=function_name)


# execution environments per version ------------------------------------------------------


def test_updating_latest_retires_only_latest_environments(
    lambda_client: Any, create_function: CreateFunction, function_name: str
) -> None:
    """Each version has its own execution environments: an update of ``$LATEST``'s code
    replaces ``$LATEST``'s environment but version 1's warm one keeps serving."""
    create_function(reporter("one"), Publish=True, handler="index.handler")
    _wait_active(lambda_client, function_name, "1")
    version_env = invoke(lambda_client, function_name, Qualifier="1")[1]["environment"]
    latest_env = invoke(lambda_client, function_name)[1]["environment"]
    assert version_env != latest_env
    assert invoke(lambda_client, function_name, Qualifier="1")[1]["environment"] == version_env
    assert invoke(lambda_client, function_name)[1]["environment"] == latest_env

    lambda_client.update_function_code(FunctionName=function_name, ZipFile=make_zip(reporter("two")))
    _wait_updated(lambda_client, function_name)
    after_version = invoke(lambda_client, function_name, Qualifier="1")[1]
    after_latest = invoke(lambda_client, function_name)[1]
    assert (after_version["label"], after_version["environment"]) == ("one", version_env)
    assert after_latest["label"] == "two" and after_latest["environment"] != latest_env


# deleting versions ---------------------------------------------------------------------------


def test_deleted_version_numbers_are_never_reused(lambda_client: Any, create_function: CreateFunction,
                                                  function_name: str) -> None:
    """DeleteFunction with a version qualifier deletes just that version (204): ``$LATEST``
    and the other versions stay, and the next publish is 3 after deleting 2."""
    create_function(reporter("one"), Publish=True, handler="index.handler")
    _wait_updated(lambda_client, function_name)
    assert _publish_new_code(lambda_client, function_name, "two")["Version"] == "2"
    deleted = lambda_client.delete_function(FunctionName=function_name, Qualifier="2")
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert _versions(lambda_client, function_name) == ["$LATEST", "1"]
    assert error_of(lambda: lambda_client.get_function(FunctionName=function_name, Qualifier="2")) == (
        "ResourceNotFoundException", 404, f"Function not found: {function_arn(function_name, '2')}")
    assert invoke(lambda_client, function_name, Qualifier="1")[1]["label"] == "one"
    assert invoke(lambda_client, function_name)[1]["label"] == "two"
    third = _publish_new_code(lambda_client, function_name, "three")
    assert (third["Version"], third["FunctionArn"]) == ("3", function_arn(function_name, "3"))
    assert _versions(lambda_client, function_name) == ["$LATEST", "1", "3"]


def test_a_version_an_alias_uses_cannot_be_deleted(lambda_client: Any, create_function: CreateFunction,
                                                   function_name: str) -> None:
    """Deleting a version an alias points or routes to is a 409 naming the alias; the version
    stays until the alias lets it go."""
    create_function(reporter("one"), Publish=True, handler="index.handler")
    _wait_updated(lambda_client, function_name)
    _publish_new_code(lambda_client, function_name, "two")
    _publish_new_code(lambda_client, function_name, "three")
    lambda_client.create_alias(FunctionName=function_name, Name="live", FunctionVersion="1")
    lambda_client.create_alias(FunctionName=function_name, Name="canary", FunctionVersion="3",
                               RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}})
    for version, alias in (("1", "live"), ("2", "canary"), ("3", "canary")):
        assert error_of(partial(lambda_client.delete_function, FunctionName=function_name, Qualifier=version)) == (
            "ResourceConflictException", 409,
            f"Unable to delete version because the following aliases reference it: [{alias}]")
    assert _versions(lambda_client, function_name) == ["$LATEST", "1", "2", "3"]
    lambda_client.update_alias(FunctionName=function_name, Name="canary",
                               RoutingConfig={"AdditionalVersionWeights": {}})
    lambda_client.delete_function(FunctionName=function_name, Qualifier="2")
    assert _versions(lambda_client, function_name) == ["$LATEST", "1", "3"]


def test_deleting_the_latest_qualifier_is_refused(lambda_client: Any, create_function: CreateFunction,
                                                  function_name: str) -> None:
    """``Qualifier=$LATEST`` on DeleteFunction is refused with AWS's message; the function stays."""
    create_function(reporter("one"), handler="index.handler")
    check_error(lambda_client, "fn.delete_latest_qualifier",
                lambda: lambda_client.delete_function(FunctionName=function_name, Qualifier="$LATEST"))
    assert lambda_client.get_function(FunctionName=function_name)["Configuration"]["Version"] == "$LATEST"


# listing -----------------------------------------------------------------------------------


def _all_functions(client: Any, **kwargs: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    marker: dict[str, str] = {}
    while True:
        page = client.list_functions(MaxItems=50, **marker, **kwargs)
        found += page["Functions"]
        if "NextMarker" not in page:
            return found
        marker = {"Marker": page["NextMarker"]}


def test_list_entries_match_aws(lambda_client: Any, create_function: CreateFunction,
                                function_name: str) -> None:
    """ListFunctions entries are AWS's, member for member: no state (``State``,
    ``LastUpdateStatus``, their reasons) and no ``RuntimeVersionConfig``, and the
    ``Environment`` the functions were created with, empty as it is (AWS's
    test_list_functions)."""
    second = f"{function_name}-2"
    listing = {"handler": "handler.handler", "runtime": "python3.12", "Timeout": 30,
               "Environment": {"Variables": {}}}
    create_function({"handler.py": "def handler(event, context):\n    return 1\n"}, Publish=True, **listing)
    create_function({"handler.py": "def handler(event, context):\n    return 2\n"}, name=second, **listing)
    _wait_active(lambda_client, function_name, "1")
    names = {"function_name": function_name, "function_name_2": second}
    for key, kwargs in (("fn.list.all", {"FunctionVersion": "ALL"}), ("fn.list.default", {})):
        ours = [f for f in _all_functions(lambda_client, **kwargs) if f["FunctionName"] in names.values()]
        assert_matches({"Functions": ours}, recorded(key, **names)["value"], path=key, exact=True)


def test_list_functions_all_includes_versions(lambda_client: Any, create_function: CreateFunction,
                                              function_name: str) -> None:
    """ListFunctions with FunctionVersion=ALL lists every version of a function with its
    qualified ARN; without it only ``$LATEST``, under the unqualified ARN."""
    create_function(reporter("one"), Publish=True, handler="index.handler")
    _wait_updated(lambda_client, function_name)
    _publish_new_code(lambda_client, function_name, "two")
    every = [f for f in _all_functions(lambda_client, FunctionVersion="ALL")
             if f["FunctionName"] == function_name]
    assert [(f["Version"], f["FunctionArn"]) for f in every] == [
        (version, function_arn(function_name, version)) for version in ("$LATEST", "1", "2")]
    latest = [f for f in _all_functions(lambda_client) if f["FunctionName"] == function_name]
    assert [(f["Version"], f["FunctionArn"]) for f in latest] == [("$LATEST", function_arn(function_name))]
    check_error(lambda_client, "fn.list.invalid_function_version",
                lambda: lambda_client.list_functions(FunctionVersion="invalid"))
