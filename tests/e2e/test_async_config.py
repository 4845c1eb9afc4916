"""FunctionEventInvokeConfig and DeadLetterConfig through boto3, held against AWS's recorded
answers."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.e2e.async_support import assert_recorded, check_error
from tests.e2e.conftest import CreateFunction
from tests.e2e.recordings import function_arn

pytestmark = pytest.mark.e2e

QUEUE = "arn:aws:sqs:us-east-1:000000000000:async-config-dlq"


def test_event_invoke_config_lifecycle(lambda_client: Any, create_function: CreateFunction,
                                       function_name: str) -> None:
    create_function()
    name = {"function_name": function_name}
    put = lambda_client.put_function_event_invoke_config(FunctionName=function_name,
                                                         MaximumRetryAttempts=0)
    assert_recorded(put, "eic.lifecycle.put_invokeconfig_retries_0", exact=True, **name)
    put = lambda_client.put_function_event_invoke_config(FunctionName=function_name,
                                                         MaximumEventAgeInSeconds=60)
    assert_recorded(put, "eic.lifecycle.put_invokeconfig_eventage_60", exact=True, **name)
    updated = lambda_client.update_function_event_invoke_config(FunctionName=function_name,
                                                                MaximumRetryAttempts=1)
    assert_recorded(updated, "eic.lifecycle.update_invokeconfig_retries", exact=True, **name)
    got = lambda_client.get_function_event_invoke_config(FunctionName=function_name)
    assert_recorded(got, "eic.lifecycle.get_invokeconfig", exact=True, **name)
    listed = lambda_client.list_function_event_invoke_configs(FunctionName=function_name)
    assert_recorded(listed, "eic.lifecycle.list_single_invokeconfig", exact=True, **name)
    lambda_client.publish_version(FunctionName=function_name)
    check_error(lambda_client, "eic.lifecycle.get_invokeconfig_postpublish",
                lambda: lambda_client.get_function_event_invoke_config(
                    FunctionName=function_name, Qualifier="1"), **name)
    published = lambda_client.put_function_event_invoke_config(
        FunctionName=function_name, Qualifier="1", MaximumEventAgeInSeconds=120)
    assert_recorded(published, "eic.lifecycle.put_published_invokeconfig", exact=True, **name)
    both = lambda_client.list_function_event_invoke_configs(FunctionName=function_name, MaxItems=1)
    assert [c["FunctionArn"] for c in both["FunctionEventInvokeConfigs"]] == [
        function_arn(function_name, "$LATEST")]
    rest = lambda_client.list_function_event_invoke_configs(FunctionName=function_name,
                                                            Marker=both["NextMarker"])
    assert [c["FunctionArn"] for c in rest["FunctionEventInvokeConfigs"]] == [
        function_arn(function_name, "1")]
    deleted = lambda_client.delete_function_event_invoke_config(FunctionName=function_name,
                                                                Qualifier="$LATEST")
    assert_recorded(deleted, "eic.value.delete_latest", **name)
    check_error(lambda_client, "eic.delete_function_not_found",
                lambda: lambda_client.delete_function_event_invoke_config(FunctionName=function_name),
                **name)


def test_event_invoke_config_values(lambda_client: Any, create_function: CreateFunction,
                                    function_name: str) -> None:
    create_function()
    other = f"{function_name}-2"
    create_function(name=other)
    lambda_client.publish_version(FunctionName=function_name)
    lambda_client.create_alias(FunctionName=function_name, Name="eventinvokealias", FunctionVersion="1")
    names = {"function_name": function_name, "function_name_2": other}
    assert_recorded(lambda_client.put_function_event_invoke_config(
        FunctionName=function_name, MaximumRetryAttempts=2, MaximumEventAgeInSeconds=21600),
        "eic.value.put_maxevent_maxvalue_result", exact=True, **names)
    assert_recorded(lambda_client.put_function_event_invoke_config(
        FunctionName=function_name, MaximumRetryAttempts=0),
        "eic.value.put_post_overwrite", exact=True, **names)
    assert_recorded(lambda_client.update_function_event_invoke_config(
        FunctionName=function_name, MaximumEventAgeInSeconds=60),
        "eic.value.update_response", exact=True, **names)
    assert_recorded(lambda_client.put_function_event_invoke_config(
        FunctionName=function_name, DestinationConfig={"OnSuccess": {"Destination": function_arn(other)}}),
        "eic.value.put_destination_other_lambda", exact=True, **names)
    assert_recorded(lambda_client.put_function_event_invoke_config(
        FunctionName=function_name, DestinationConfig={"OnSuccess": {}}),
        "eic.value.put_destination_success_no_destination_arn", exact=True, **names)
    assert_recorded(lambda_client.put_function_event_invoke_config(
        FunctionName=function_name, Qualifier="eventinvokealias", MaximumRetryAttempts=1),
        "eic.value.put_alias_functionname_qualifier", exact=True, **names)
    assert_recorded(lambda_client.put_function_event_invoke_config(
        FunctionName=f"{function_name}:1", MaximumRetryAttempts=1),
        "eic.value.put_version_shorthand", exact=True, **names)


def test_event_invoke_config_errors(lambda_client: Any, create_function: CreateFunction,
                                    function_name: str) -> None:
    create_function()
    names = {"function_name": function_name}
    put = lambda_client.put_function_event_invoke_config
    check_error(lambda_client, "eic.put_functionname_nootherargs",
                lambda: put(FunctionName=function_name), **names)
    check_error(lambda_client, "eic.put_functionname_name_notfound",
                lambda: put(FunctionName=f"{function_name}-missing", MaximumRetryAttempts=1), **names)
    check_error(lambda_client, "eic.put_alias_doesnotexist",
                lambda: put(FunctionName=function_name, Qualifier="doesnotexist",
                            MaximumRetryAttempts=1), **names)
    check_error(lambda_client, "eic.put_shorthand_qualifier_mismatch_1",
                lambda: put(FunctionName=f"{function_name}:1", Qualifier="2",
                            MaximumRetryAttempts=1), **names)
    check_error(lambda_client, "eic.put_alias_qualifiedarn_qualifierconflict",
                lambda: put(FunctionName=function_arn(function_name, "alias"), Qualifier="other",
                            MaximumRetryAttempts=1), **names)
    check_error(lambda_client, "eic.put_destination_lambda_doesntexist",
                lambda: put(FunctionName=function_name, DestinationConfig={
                    "OnSuccess": {"Destination": function_arn("doesnotexist")}}), **names)
    check_error(lambda_client, "eic.put_destination_recursive",
                lambda: put(FunctionName=function_name, DestinationConfig={
                    "OnSuccess": {"Destination": function_arn(function_name)}}), **names)
    iam = function_arn(function_name).replace(":lambda:", ":iam:")
    check_error(lambda_client, "eic.put_destination_invalid_service_arn",
                lambda: put(FunctionName=function_name, DestinationConfig={
                    "OnSuccess": {"Destination": iam}}), **names)
    check_error(lambda_client, "eic.get_function_doesnotexist",
                lambda: lambda_client.get_function_event_invoke_config(FunctionName="doesnotexist"))
    check_error(lambda_client, "fn.not_found.get_function_event_invoke_config",
                lambda: lambda_client.get_function_event_invoke_config(FunctionName=function_name),
                **names)
    check_error(lambda_client, "fn.version_not_found.get_function_event_invoke_config",
                lambda: lambda_client.get_function_event_invoke_config(
                    FunctionName=function_name, Qualifier="1221"), **names)
    check_error(lambda_client, "eic.list_function_doesnotexist",
                lambda: lambda_client.list_function_event_invoke_configs(FunctionName="doesnotexist"))
    check_error(lambda_client, "eic.update_eventinvokeconfig_function_doesnotexist",
                lambda: lambda_client.update_function_event_invoke_config(
                    FunctionName="doesnotexist", MaximumRetryAttempts=1))
    check_error(lambda_client, "eic.update_eventinvokeconfig_config_doesnotexist_without_qualifier",
                lambda: lambda_client.update_function_event_invoke_config(
                    FunctionName=function_name, MaximumRetryAttempts=1), **names)
    for bad, member, rule in ((dict(MaximumRetryAttempts=3), "maximumRetryAttempts",
                               "Member must have value less than or equal to 2"),
                              (dict(MaximumEventAgeInSeconds=59), "maximumEventAgeInSeconds",
                               "Member must have value greater than or equal to 60")):
        with pytest.raises(ClientError) as caught:
            put(FunctionName=function_name, **bad)
        error = caught.value.response["Error"]
        assert error["Code"] == "ValidationException"
        assert error["Message"] == (f"1 validation error detected: Value '{list(bad.values())[0]}' at "
                                    f"'{member}' failed to satisfy constraint: {rule}")


def test_dead_letter_config_is_part_of_the_configuration(
        lambda_client: Any, create_function: CreateFunction, function_name: str) -> None:
    created = create_function(DeadLetterConfig={"TargetArn": QUEUE})
    assert created["DeadLetterConfig"] == {"TargetArn": QUEUE}
    got = lambda_client.get_function_configuration(FunctionName=function_name)
    assert got["DeadLetterConfig"] == {"TargetArn": QUEUE}
    lambda_client.get_waiter("function_updated_v2").wait(FunctionName=function_name)
    published = lambda_client.publish_version(FunctionName=function_name)
    assert published["DeadLetterConfig"] == {"TargetArn": QUEUE}
    lambda_client.update_function_configuration(FunctionName=function_name,
                                                DeadLetterConfig={"TargetArn": ""})
    assert "DeadLetterConfig" not in lambda_client.get_function_configuration(FunctionName=function_name)
    lambda_client.get_waiter("function_updated_v2").wait(FunctionName=function_name)
    with pytest.raises(ClientError) as caught:
        lambda_client.update_function_configuration(
            FunctionName=function_name,
            DeadLetterConfig={"TargetArn": "arn:aws:sns:us-east-1:000000000000:topic"})
    assert caught.value.response["Error"]["Code"] == "InvalidParameterValueException"
    version = lambda_client.get_function_configuration(FunctionName=function_name, Qualifier="1")
    assert version["DeadLetterConfig"] == {"TargetArn": QUEUE}
