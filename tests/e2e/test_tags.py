"""Tags of functions (``Tags`` on CreateFunction, TagResource, UntagResource, ListTags) through
boto3 and the AWS CLI against a real strato server, compared with AWS's recordings; and the
AWS CLI publishing a version, making an alias and invoking through it."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

from tests.conftest import make_zip
from tests.e2e.conftest import ROLE, CreateFunction, StratoServer
from tests.e2e.recordings import (
    assert_recorded,
    check_error,
    function_arn,
    recorded,
    reporter,
)
from tests.e2e.test_cli_and_restart import _aws


def _tags(client: Any, name: str) -> dict[str, str]:
    return dict(client.list_tags(Resource=function_arn(name))["Tags"])


def test_tag_lifecycle_matches_aws(lambda_client: Any, create_function: CreateFunction,
                                   function_name: str) -> None:
    """TagResource adds and overwrites (204), UntagResource removes (204, also for keys that
    are not there), ListTags lists, as AWS recorded (tag.lifecycle.*)."""
    create_function(reporter("v1"), handler="index.handler")
    arn = function_arn(function_name)
    assert_recorded(lambda_client.list_tags(Resource=arn), "tag.list_tag_lambda_empty", exact=True)
    tagged = lambda_client.tag_resource(Resource=arn, Tags={"key_a": "value_a", "key_b": "value_b"})
    assert_recorded(tagged, "tag.lifecycle.tag_resource_response", exact=True)
    lambda_client.tag_resource(Resource=arn, Tags={"key_c": "value_c", "key_d": "value_d", "key_e": "value_e"})
    assert_recorded(lambda_client.list_tags(Resource=arn), "tag.lifecycle.list_tags_response_postaddtags", exact=True)
    lambda_client.tag_resource(Resource=arn, Tags={"key_c": "value_x"})
    assert_recorded(lambda_client.list_tags(Resource=arn), "tag.lifecycle.list_tags_response_overwrite", exact=True)
    untagged = lambda_client.untag_resource(Resource=arn, TagKeys=["key_c", "key_d"])
    assert untagged["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert_recorded(lambda_client.list_tags(Resource=arn), "tag.lifecycle.list_tags_response_postuntag", exact=True)
    lambda_client.untag_resource(Resource=arn, TagKeys=["key_a", "key_b", "key_e"])
    assert_recorded(lambda_client.list_tags(Resource=arn), "tag.lifecycle.list_tags_response_postuntagall", exact=True)
    assert_recorded(lambda_client.untag_resource(Resource=arn, TagKeys=["nomatch"]), "tag.untag_nomatch", exact=True)
    assert _tags(lambda_client, function_name) == {}


def test_tags_on_create_show_in_get_function(lambda_client: Any, create_function: CreateFunction,
                                             function_name: str) -> None:
    """``Tags`` given to CreateFunction are the function's: GetFunction shows them (as AWS
    recorded, fn.tags.in_get_function) and ListTags lists them; without tags GetFunction has
    no ``Tags``."""
    create_function(reporter("v1"), handler="index.handler", Tags={"key_a": "value_a"})
    got = lambda_client.get_function(FunctionName=function_name)
    assert got["Tags"] == recorded("fn.tags.in_get_function")["value"]["Tags"]
    assert _tags(lambda_client, function_name) == {"key_a": "value_a"}
    untagged = create_function(reporter("v1"), handler="index.handler", name=f"{function_name}-bare")
    assert "Tags" not in lambda_client.get_function(FunctionName=untagged["FunctionName"])


def test_more_than_50_tags_are_refused(lambda_client: Any, create_function: CreateFunction,
                                       function_name: str) -> None:
    """51 tags are refused with AWS's message, on TagResource (the tags stay as they were,
    also when the 51st would come on top of 50) and on CreateFunction (no function is made)."""
    create_function(reporter("v1"), handler="index.handler")
    arn = function_arn(function_name)
    many = {f"key{i}": f"value{i}" for i in range(51)}
    check_error(lambda_client, "tag.too_many", lambda: lambda_client.tag_resource(Resource=arn, Tags=many))
    assert _tags(lambda_client, function_name) == {}
    fifty = dict(list(many.items())[:50])
    lambda_client.tag_resource(Resource=arn, Tags=fifty)
    check_error(lambda_client, "tag.too_many",
                lambda: lambda_client.tag_resource(Resource=arn, Tags={"one-more": "value"}))
    assert _tags(lambda_client, function_name) == fifty
    lambda_client.tag_resource(Resource=arn, Tags={"key0": "overwritten"})
    assert _tags(lambda_client, function_name)["key0"] == "overwritten"

    other = f"{function_name}-many"
    check_error(lambda_client, "tag.too_many_on_create", lambda: lambda_client.create_function(
        FunctionName=other, Runtime="python3.11", Role=ROLE, Handler="index.handler",
        Code={"ZipFile": make_zip(reporter("v1"))}, Tags=many))
    check_error(lambda_client, "tag.list_after_delete",
                lambda: lambda_client.get_function(FunctionName=other), function_name=other)


def test_versions_and_aliases_cannot_be_tagged(lambda_client: Any, create_function: CreateFunction,
                                               function_name: str) -> None:
    """A version's or an alias's ARN is refused by TagResource, UntagResource and ListTags
    with AWS's message (tag.version_arn, tag.tag_lambda_qualifier_doesnotexist); the
    function's tags are untouched."""
    create_function(reporter("v1"), handler="index.handler", Publish=True, Tags={"team": "a"})
    lambda_client.create_alias(FunctionName=function_name, Name="live", FunctionVersion="1")
    for qualifier, key in (("1", "tag.version_arn"), ("live", "tag.version_arn"),
                           ("missing", "tag.tag_lambda_qualifier_doesnotexist")):
        arn = function_arn(function_name, qualifier)
        check_error(lambda_client, key, partial(lambda_client.tag_resource, Resource=arn, Tags={"k": "v"}))
        check_error(lambda_client, key, partial(lambda_client.untag_resource, Resource=arn, TagKeys=["team"]))
        check_error(lambda_client, key, partial(lambda_client.list_tags, Resource=arn))
    assert _tags(lambda_client, function_name) == {"team": "a"}


def test_bad_tag_requests_are_refused(lambda_client: Any, create_function: CreateFunction,
                                      function_name: str) -> None:
    """Empty tags, no tag keys and an ARN that is not a Lambda resource are refused with AWS's
    errors; unknown and deleted functions are not found."""
    create_function(reporter("v1"), handler="index.handler", Tags={"team": "a"})
    arn = function_arn(function_name)
    check_error(lambda_client, "tag.tag_empty_tags", lambda: lambda_client.tag_resource(Resource=arn, Tags={}))
    check_error(lambda_client, "tag.untag_empty_keys", lambda: lambda_client.untag_resource(Resource=arn))
    # AWS's words, its pattern included, whatever pattern the model botocore ships has.
    malformed = "arn:aws:something"
    check_error(lambda_client, "tag.tag_lambda_invalidarn",
                lambda: lambda_client.tag_resource(Resource=malformed, Tags={"k": "v"}))
    check_error(lambda_client, "tag.tag_lambda_invalidarn",
                lambda: lambda_client.untag_resource(Resource=malformed, TagKeys=["k"]))
    check_error(lambda_client, "tag.tag_lambda_invalidarn", lambda: lambda_client.list_tags(Resource=malformed))
    assert _tags(lambda_client, function_name) == {"team": "a"}
    missing = function_arn("doesnotexist")
    check_error(lambda_client, "tag.tag_lambda_doesnotexist",
                lambda: lambda_client.tag_resource(Resource=missing, Tags={"k": "v"}))
    check_error(lambda_client, "tag.tag_lambda_doesnotexist", lambda: lambda_client.list_tags(Resource=missing))
    lambda_client.delete_function(FunctionName=function_name)
    names = {"function_name": function_name}
    check_error(lambda_client, "tag.list_after_delete", lambda: lambda_client.list_tags(Resource=arn), **names)
    check_error(lambda_client, "tag.list_after_delete",
                lambda: lambda_client.tag_resource(Resource=arn, Tags={"k": "v"}), **names)


# the AWS CLI ---------------------------------------------------------------------------------


def test_aws_cli_tags_a_function(strato: StratoServer, create_function: CreateFunction,
                                 function_name: str) -> None:
    """``aws lambda tag-resource``, ``list-tags`` and ``untag-resource`` work on a function."""
    create_function(reporter("v1"), handler="index.handler")
    arn = function_arn(function_name)
    _aws(strato.endpoint, "lambda", "tag-resource", "--resource", arn, "--tags", "team=core,stage=prod")
    assert _aws(strato.endpoint, "lambda", "list-tags", "--resource", arn) == {
        "Tags": {"team": "core", "stage": "prod"}}
    _aws(strato.endpoint, "lambda", "untag-resource", "--resource", arn, "--tag-keys", "stage")
    assert _aws(strato.endpoint, "lambda", "list-tags", "--resource", arn) == {"Tags": {"team": "core"}}


def test_aws_cli_publishes_aliases_and_invokes_through_them(
    strato: StratoServer, lambda_client: Any, create_function: CreateFunction, function_name: str,
    tmp_path: Path,
) -> None:
    """``aws lambda publish-version``, ``create-alias`` and ``invoke --qualifier <alias>`` run
    the published code, whatever ``$LATEST`` became since."""
    create_function(reporter("v1"), handler="index.handler")
    published = _aws(strato.endpoint, "lambda", "publish-version", "--function-name", function_name,
                     "--description", "first")
    assert (published["Version"], published["FunctionArn"], published["Description"]) == (
        "1", function_arn(function_name, "1"), "first")
    alias = _aws(strato.endpoint, "lambda", "create-alias", "--function-name", function_name,
                 "--name", "live", "--function-version", "1")
    assert (alias["AliasArn"], alias["FunctionVersion"]) == (function_arn(function_name, "live"), "1")
    lambda_client.update_function_code(FunctionName=function_name, ZipFile=make_zip(reporter("v2")))
    lambda_client.get_waiter("function_updated_v2").wait(FunctionName=function_name)
    out = tmp_path / "out.json"
    result = _aws(strato.endpoint, "lambda", "invoke", "--function-name", function_name, "--qualifier", "live",
                  "--payload", "{}", str(out))
    assert (result["StatusCode"], result["ExecutedVersion"]) == (200, "1")
    payload = json.loads(out.read_text())
    assert payload["label"] == "v1" and payload["invoked_function_arn"] == function_arn(function_name, "live")
    listed = _aws(strato.endpoint, "lambda", "list-aliases", "--function-name", function_name)
    assert [a["Name"] for a in listed["Aliases"]] == ["live"]
