"""AWS's recorded responses for versions, aliases, concurrency and tags
(``aws_versions_expectations.json``), event source mappings (``aws_esm_expectations.json``),
function logs (``aws_logs_expectations.json``), LoggingConfig (``aws_logcfg_expectations.json``)
and layers (``aws_layers_expectations.json``),
the checks that hold strato's answers against them, and
a handler that reports what ran.

A recorded value is a template: ``<<region>>``, ``<<account>>``, ``<<function_name>>`` and the
like are filled in per test; what AWS's recorder redacted (``<uuid:4>``, ``date``,
``<code-size>``, ``<<role_name>>`` left unfilled) matches any value, and the same labelled
placeholder (``<uuid:4>``) must stand for the same value throughout one comparison.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from strato.config import DEFAULT_ACCOUNT
from tests.e2e.test_permissions_api import raw_bodies

RECORDINGS: dict[str, Any] = {
    key: value
    for file in ("aws_versions_expectations.json", "aws_esm_expectations.json",
                 "aws_logs_expectations.json", "aws_logcfg_expectations.json",
                 "aws_layers_expectations.json")
    for key, value in json.loads((Path(__file__).parent / file).read_text())["expectations"].items()
}
REGION = "us-east-1"
#: The e2e servers inherit this process's environment, so their account is the configured one.
ACCOUNT = os.environ.get("STRATO_ACCOUNT_ID", DEFAULT_ACCOUNT)

_REDACTED = re.compile(r"<<[a-z_0-9]+>>|<[a-z0-9-]+(?::\d+)?>|(?<![A-Za-z])date(?:time)?(?![A-Za-z])")
_LABELLED = re.compile(r"<[a-z0-9-]+:\d+>")


def function_arn(name: str, qualifier: str | None = None) -> str:
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
    return arn if qualifier is None else f"{arn}:{qualifier}"


def recorded(key: str, **names: str) -> Any:
    """The recording ``key`` with its placeholders filled in (region and account always)."""
    text = json.dumps(RECORDINGS[key])
    for placeholder, value in {"region": REGION, "account": ACCOUNT, **names}.items():
        text = text.replace(f"<<{placeholder}>>", value)
    return json.loads(text)


def check_error(client: Any, key: str, call: Callable[[], Any], **names: str) -> dict[str, Any]:
    """``call`` fails as AWS recorded under ``key``: code, HTTP status, message (exact, or as a
    pattern where the recording says so), the body's message key and ``Type``, and ``Reason``
    where AWS gave one. Returns botocore's error response."""
    expected = recorded(key, **names)
    with raw_bodies(client) as bodies, pytest.raises(ClientError) as caught:
        call()
    response: dict[str, Any] = caught.value.response
    assert response["Error"]["Code"] == expected["error_code"], (key, response["Error"])
    assert response["ResponseMetadata"]["HTTPStatusCode"] == expected["http_status"], (key, response["Error"])
    message = response["Error"]["Message"]
    if expected["message_match"] == "regex":
        pattern = re.escape(expected["message"]).replace(re.escape("<<int>>"), r"\d+")
        assert re.fullmatch(pattern, message), (key, message)
    else:
        assert message == expected["message"], (key, message)
    body = json.loads(bodies[-1])
    if expected.get("body_message_key") is not None:
        assert body[expected["body_message_key"]] == message, key
    if expected.get("body_type") is not None:
        assert body.get("Type") == expected["body_type"], key
    if "reason" in expected:
        assert response["Reason"] == expected["reason"], key
    return response


def error_of(call: Callable[[], Any]) -> tuple[str, int, str]:
    """(code, HTTP status, message) of the error ``call`` fails with."""
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    return (response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"],
            response["Error"]["Message"])


def _template_matches(template: str, actual: Any, bindings: dict[str, str]) -> bool:
    text = actual if isinstance(actual, str) else json.dumps(actual)
    pattern, position = "", 0
    labels: list[str] = []
    for redacted in _REDACTED.finditer(template):
        pattern += re.escape(template[position:redacted.start()]) + "(.+)"
        labels.append(redacted.group())
        position = redacted.end()
    pattern += re.escape(template[position:])
    found = re.fullmatch(pattern, text)
    if found is None:
        return False
    for label, value in zip(labels, found.groups(), strict=True):
        if _LABELLED.fullmatch(label) and bindings.setdefault(label, value) != value:
            return False
    return True


def assert_matches(actual: Any, expected: Any, *, path: str = "", exact: bool = False,
                   bindings: dict[str, str] | None = None) -> None:
    """Every member AWS recorded is in ``actual`` with the recorded value (redacted values
    match anything, consistently); lists match item by item. ``_http_status`` is the HTTP
    status of the response ``actual`` is. With ``exact``, ``actual`` has no other members
    either (``ResponseMetadata`` aside)."""
    bindings = {} if bindings is None else bindings
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: {actual!r}"
        if exact:
            extra = set(actual) - set(expected) - {"ResponseMetadata"}
            assert not extra, f"{path}: members AWS does not answer: {sorted(extra)}"
        for member, value in expected.items():
            if member == "_http_status":
                assert actual["ResponseMetadata"]["HTTPStatusCode"] == value, f"{path}: status"
                continue
            assert member in actual, f"{path}.{member} is missing from {sorted(actual)}"
            assert_matches(actual[member], value, path=f"{path}.{member}", exact=exact, bindings=bindings)
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), f"{path}: {actual!r}"
        for index, (got, want) in enumerate(zip(actual, expected, strict=True)):
            assert_matches(got, want, path=f"{path}[{index}]", exact=exact, bindings=bindings)
    elif isinstance(expected, str) and _REDACTED.search(expected):
        assert _template_matches(expected, actual, bindings), f"{path}: {actual!r} vs {expected!r}"
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"


def assert_recorded(actual: Any, key: str, *, exact: bool = False, **names: str) -> None:
    """``actual`` (a boto3 response) matches the value AWS recorded under ``key`` (with
    ``exact``, member for member)."""
    assert_matches(actual, recorded(key, **names)["value"], path=key, exact=exact)


def invoke(client: Any, name: str, payload: Any = None, **kwargs: Any) -> tuple[dict[str, Any], Any]:
    """Invoke synchronously; the response and its payload decoded from JSON."""
    body = json.dumps(payload).encode() if payload is not None else b"{}"
    response = client.invoke(FunctionName=name, Payload=body, **kwargs)
    raw = response["Payload"].read()
    return response, json.loads(raw) if raw else None


def reporter(label: str) -> dict[str, str]:
    """Source of ``index.handler``, which reports ``label`` (which code ran), an id of its
    execution environment (process id and a per-process UUID), its context and its
    initialization type; it sleeps ``event["sleep"]`` seconds first."""
    return {"index.py": (
        "import os, time, uuid\n"
        "ENVIRONMENT_ID = f'{os.getpid()}-{uuid.uuid4().hex}'\n"
        "def handler(event, context):\n"
        "    time.sleep(event.get('sleep', 0))\n"
        f"    return {{'label': {label!r}, 'environment': ENVIRONMENT_ID,\n"
        "            'function_version': context.function_version,\n"
        "            'invoked_function_arn': context.invoked_function_arn,\n"
        "            'initialization_type': os.environ['AWS_LAMBDA_INITIALIZATION_TYPE']}\n"
    )}
