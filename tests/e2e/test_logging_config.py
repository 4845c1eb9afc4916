"""LoggingConfig through the Lambda API (CreateFunction, UpdateFunctionConfiguration, the
reads, versions), driven by boto3 against a real strato server and held against AWS's
recordings (logcfg.*)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import CreateFunction
from tests.e2e.recordings import assert_matches, error_of, recorded

TEXT_LEVEL_MESSAGE = ('LogLevel is not supported when LogFormat is set to "Text". Remove LogLevel '
                      'from your request or change the LogFormat to "JSON" and try again.')


def _logging(lambda_client: Any, name: str, qualifier: str | None = None) -> dict[str, Any]:
    extra = {"Qualifier": qualifier} if qualifier else {}
    return dict(lambda_client.get_function_configuration(FunctionName=name, **extra)["LoggingConfig"])


def _expect(key: str, name: str) -> tuple[dict[str, Any], Any]:
    entry = recorded(key, function_name=name)
    return entry.get("request", {}), entry["value"]


def test_default_and_json_on_create(lambda_client: Any, create_function: CreateFunction,
                                    function_name: str) -> None:
    """Without LoggingConfig a function logs as Text to /aws/lambda/<name>; created with
    LogFormat JSON it gets both levels INFO, in CreateFunction, GetFunctionConfiguration,
    GetFunction and ListFunctions alike."""
    create_function(name=f"{function_name}-d")
    _, default = _expect("logcfg.default", f"{function_name}-d")
    assert _logging(lambda_client, f"{function_name}-d") == default

    request, _ = _expect("logcfg.json_on_create.create", function_name)
    created = create_function(LoggingConfig=request)
    _, on_create = _expect("logcfg.json_on_create.create", function_name)
    assert created["LoggingConfig"] == on_create
    _, configuration = _expect("logcfg.json_on_create.get_configuration", function_name)
    assert _logging(lambda_client, function_name) == configuration
    _, got = _expect("logcfg.json_on_create.get_function", function_name)
    assert lambda_client.get_function(FunctionName=function_name)["Configuration"]["LoggingConfig"] == got
    listed = [f for page in lambda_client.get_paginator("list_functions").paginate()
              for f in page["Functions"] if f["FunctionName"] == function_name]
    assert listed[0]["LoggingConfig"] == on_create


def test_full_update(lambda_client: Any, create_function: CreateFunction, function_name: str) -> None:
    create_function()
    request, updated = _expect("logcfg.full_update.updated", function_name)
    response = lambda_client.update_function_configuration(FunctionName=function_name,
                                                           LoggingConfig=request)
    assert response["LoggingConfig"] == updated
    _, received = _expect("logcfg.full_update.received", function_name)
    assert _logging(lambda_client, function_name) == received


@pytest.mark.parametrize("case", ["partial0", "partial1", "partial2", "partial3"])
def test_partial_update_fills_in_what_aws_does(lambda_client: Any, create_function: CreateFunction,
                                               function_name: str, case: str) -> None:
    """Members left out keep their values or get AWS's defaults (levels INFO with JSON)."""
    create_function()
    request, updated = _expect(f"logcfg.{case}.updated", function_name)
    response = lambda_client.update_function_configuration(FunctionName=function_name,
                                                           LoggingConfig=request)
    assert response["LoggingConfig"] == updated
    _, received = _expect(f"logcfg.{case}.received", function_name)
    lambda_client.get_waiter("function_updated_v2").wait(FunctionName=function_name)
    assert _logging(lambda_client, function_name) == received


def test_switching_text_and_json(lambda_client: Any, create_function: CreateFunction,
                                 function_name: str) -> None:
    """To JSON the levels appear (INFO); back to Text they go; each change is a new
    RevisionId."""
    before = create_function()
    revision = lambda_client.get_function_configuration(FunctionName=function_name)["RevisionId"]
    for step in ("to_json", "to_text"):
        request, updated = _expect(f"logcfg.switch.{step}.updated", function_name)
        response = lambda_client.update_function_configuration(FunctionName=function_name,
                                                               LoggingConfig=request)
        assert response["LoggingConfig"] == updated
        assert response["RevisionId"] != revision
        lambda_client.get_waiter("function_updated_v2").wait(FunctionName=function_name)
        _, received = _expect(f"logcfg.switch.{step}.received", function_name)
        assert _logging(lambda_client, function_name) == received
        revision = lambda_client.get_function_configuration(FunctionName=function_name)["RevisionId"]
    assert before["LoggingConfig"] == _logging(lambda_client, function_name)


def test_a_json_update_keeps_levels_given_before(lambda_client: Any, create_function: CreateFunction,
                                                 function_name: str) -> None:
    """Members left out keep their values: a later update of the level alone keeps the
    format and the other level and the group."""
    create_function(LoggingConfig={"LogFormat": "JSON", "SystemLogLevel": "WARN",
                                   "LogGroup": "custom/group"})
    response = lambda_client.update_function_configuration(
        FunctionName=function_name, LoggingConfig={"ApplicationLogLevel": "ERROR"})
    assert response["LoggingConfig"] == {"LogFormat": "JSON", "ApplicationLogLevel": "ERROR",
                                         "SystemLogLevel": "WARN", "LogGroup": "custom/group"}


def test_bad_logging_config_changes_nothing(lambda_client: Any, create_function: CreateFunction,
                                            function_name: str) -> None:
    """A level with the Text format (given, or kept from the function) is refused with AWS's
    InvalidParameterValueException; an unknown level or a group breaking the model's pattern
    with a ValidationException; the function is left as it was."""
    create_function()
    before = lambda_client.get_function_configuration(FunctionName=function_name)
    for config in ({"LogFormat": "Text", "ApplicationLogLevel": "DEBUG"},
                   {"SystemLogLevel": "WARN"}):
        code, status, message = error_of(lambda config=config: lambda_client.update_function_configuration(
            FunctionName=function_name, LoggingConfig=config))
        assert (code, status, message) == ("InvalidParameterValueException", 400, TEXT_LEVEL_MESSAGE)
    code, status, message = error_of(lambda: lambda_client.update_function_configuration(
        FunctionName=function_name, LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "LOUD"}))
    assert (code, status) == ("ValidationException", 400)
    assert "Value 'LOUD' at 'loggingConfig.applicationLogLevel' failed to satisfy constraint" in message
    code, status, message = error_of(lambda: lambda_client.update_function_configuration(
        FunctionName=function_name, LoggingConfig={"LogGroup": "no spaces"}))
    assert (code, status) == ("ValidationException", 400)
    assert "at 'loggingConfig.logGroup' failed to satisfy constraint" in message
    after = lambda_client.get_function_configuration(FunctionName=function_name)
    assert after["RevisionId"] == before["RevisionId"]
    assert after["LoggingConfig"] == before["LoggingConfig"]


def test_create_refuses_a_level_with_text(lambda_client: Any, create_function: CreateFunction,
                                          function_name: str) -> None:
    code, status, message = error_of(lambda: create_function(
        LoggingConfig={"LogFormat": "Text", "SystemLogLevel": "DEBUG"}))
    assert (code, status, message) == ("InvalidParameterValueException", 400, TEXT_LEVEL_MESSAGE)
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException):
        lambda_client.get_function(FunctionName=function_name)


def test_published_versions_keep_their_logging_config(
    lambda_client: Any, create_function: CreateFunction, function_name: str
) -> None:
    create_function(LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "WARN"})
    version = lambda_client.publish_version(FunctionName=function_name)
    assert version["LoggingConfig"]["ApplicationLogLevel"] == "WARN"
    lambda_client.update_function_configuration(FunctionName=function_name,
                                                LoggingConfig={"LogFormat": "Text"})
    lambda_client.get_waiter("function_updated_v2").wait(FunctionName=function_name)
    assert _logging(lambda_client, function_name, version["Version"]) == {
        "LogFormat": "JSON", "ApplicationLogLevel": "WARN", "SystemLogLevel": "INFO",
        "LogGroup": f"/aws/lambda/{function_name}"}
    assert_matches(_logging(lambda_client, function_name),
                   recorded("logcfg.default", function_name=function_name)["value"], exact=True)
    # $LATEST changed since version 1: publishing makes version 2, with Text.
    second = lambda_client.publish_version(FunctionName=function_name)
    assert second["Version"] != version["Version"]
    assert second["LoggingConfig"]["LogFormat"] == "Text"
