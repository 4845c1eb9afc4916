"""Bad input gets AWS's error code and status, and changes nothing."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import make_zip
from tests.e2e.conftest import ROLE, CreateFunction, StratoServer

SOURCE = {"app.py": "def handler(event, context):\n    return event\n"}
PATTERN = (
    r"(arn:(aws[a-zA-Z-]*)?:lambda:)?((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:)?"
    r"(\d{12}:)?(function:)?([a-zA-Z0-9-_]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?"
)


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def _symlink_zip(target: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", SOURCE["app.py"])
        link = zipfile.ZipInfo("escape")
        link.external_attr = (0o120777) << 16
        archive.writestr(link, target)
    return buffer.getvalue()


def _create(client: Any, name: str, package: bytes, **overrides: Any) -> None:
    kwargs = {"FunctionName": name, "Runtime": "python3.11", "Role": ROLE,
              "Handler": "app.handler", "Code": {"ZipFile": package}, **overrides}
    client.create_function(**kwargs)


CASES = {
    "not a zip": (b"this is not a zip", {}, "InvalidParameterValueException", 400,
                  "Could not unzip uploaded file. Please check your file, then try to upload again."),
    "truncated zip": (make_zip(SOURCE)[:-30], {}, "InvalidParameterValueException", 400, None),
    "dot-dot entry": (make_zip({"../evil.py": "x=1", **SOURCE}), {}, "InvalidParameterValueException", 400, None),
    "absolute entry": (make_zip({"/etc/evil.py": "x=1", **SOURCE}), {}, "InvalidParameterValueException", 400, None),
    "symlink out": (_symlink_zip("/etc/passwd"), {}, "InvalidParameterValueException", 400, None),
    "symlink up": (_symlink_zip("../../../x"), {}, "InvalidParameterValueException", 400, None),
    "memory too small": (make_zip(SOURCE), {"MemorySize": 64}, "ValidationException", 400, None),
    "memory too large": (make_zip(SOURCE), {"MemorySize": 10241}, "ValidationException", 400,
                         "1 validation error detected: Value '10241' at 'memorySize' failed to satisfy "
                         "constraint: Member must have value less than or equal to 10240"),
    "timeout too long": (make_zip(SOURCE), {"Timeout": 901}, "ValidationException", 400, None),
    "timeout zero": (make_zip(SOURCE), {"Timeout": 0}, "ValidationException", 400, None),
    "tmp too small": (make_zip(SOURCE), {"EphemeralStorage": {"Size": 100}}, "ValidationException", 400, None),
    "tmp too large": (make_zip(SOURCE), {"EphemeralStorage": {"Size": 20000}}, "ValidationException", 400, None),
    "environment over 4 KB": (make_zip(SOURCE), {"Environment": {"Variables": {"BIG": "x" * 4100}}},
                              "InvalidParameterValueException", 400, None),
    "reserved variable": (make_zip(SOURCE), {"Environment": {"Variables": {"AWS_REGION": "x"}}},
                          "InvalidParameterValueException", 400, None),
    "unknown runtime": (make_zip(SOURCE), {"Runtime": "cobol85"}, "InvalidParameterValueException", 400, None),
    "invalid role": (make_zip(SOURCE), {"Role": "r1"}, "ValidationException", 400,
                     "1 validation error detected: Value 'r1' at 'role' failed to satisfy constraint: "
                     "Member must satisfy regular expression pattern: "
                     r"arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_create_is_refused_and_writes_nothing(
    strato: StratoServer, lambda_client: Any, function_name: str, case: str
) -> None:
    package, overrides, code, status, message = CASES[case]
    before = _files(strato.data_dir / "code")
    with pytest.raises(ClientError) as refused:
        _create(lambda_client, function_name, package, **overrides)
    error = refused.value.response
    assert error["Error"]["Code"] == code
    assert error["ResponseMetadata"]["HTTPStatusCode"] == status
    if message is not None:
        assert error["Error"]["Message"] == message
    # Nothing added (other tests' deleted functions may still be leaving, in the background).
    assert _files(strato.data_dir / "code") <= before
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException):
        lambda_client.get_function(FunctionName=function_name)


def test_environment_limit_message_quotes_what_was_measured(lambda_client: Any, function_name: str) -> None:
    with pytest.raises(ClientError) as refused:
        _create(lambda_client, function_name, make_zip(SOURCE),
                Environment={"Variables": {"LARGE_VAR": "x" * 4096}})
    assert refused.value.response["Error"]["Message"] == (
        "Lambda was unable to configure your environment variables because the environment "
        "variables you have provided exceeded the 4KB limit. String measured: "
        '{"LARGE_VAR":"' + "x" * 4096 + '"}')


def test_unzipped_over_250_mb_is_refused(strato: StratoServer, lambda_client: Any, function_name: str) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("app.py", SOURCE["app.py"])
        archive.writestr("zeros.bin", b"\0" * (251 * 1024 * 1024))
    before = _files(strato.data_dir / "code")
    with pytest.raises(ClientError) as refused:
        _create(lambda_client, function_name, buffer.getvalue())
    assert refused.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert refused.value.response["Error"]["Message"] == "Unzipped size must be smaller than 262144000 bytes"
    # Nothing added (other tests' deleted functions may still be leaving, in the background).
    assert _files(strato.data_dir / "code") <= before


def test_zipped_over_50_mb_is_refused(lambda_client: Any, function_name: str) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("app.py", SOURCE["app.py"])
        archive.writestr("noise.bin", os.urandom(51 * 1024 * 1024))
    with pytest.raises(ClientError) as refused:
        _create(lambda_client, function_name, buffer.getvalue())
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert refused.value.response["Error"]["Code"] == "RequestEntityTooLargeException"


@pytest.mark.parametrize(
    ("name", "code", "message"),
    [
        ("a" * 65, "InvalidParameterValueException",
         "1 validation error detected: Value '" + "a" * 65 + "' at 'functionName' failed to satisfy "
         "constraint: Member must have length less than or equal to 64"),
        ("invalid:function:name", "ValidationException",
         "1 validation error detected: Value 'invalid:function:name' at 'functionName' failed to "
         "satisfy constraint: Member must satisfy regular expression pattern: " + PATTERN),
        ("bad name!", "ValidationException", None),
    ],
)
def test_bad_function_names(lambda_client: Any, name: str, code: str, message: str | None) -> None:
    with pytest.raises(ClientError) as refused:
        _create(lambda_client, name, make_zip(SOURCE))
    assert refused.value.response["Error"]["Code"] == code
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    if message:
        assert refused.value.response["Error"]["Message"] == message


def test_creating_an_existing_function_conflicts(
    lambda_client: Any, create_function: CreateFunction, function_name: str
) -> None:
    created = create_function(SOURCE)
    with pytest.raises(ClientError) as conflict:
        _create(lambda_client, function_name, make_zip({"app.py": "x = 2\n"}))
    assert conflict.value.response["Error"]["Code"] == "ResourceConflictException"
    assert conflict.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    config = lambda_client.get_function_configuration(FunctionName=function_name)
    assert config["CodeSha256"] == created["CodeSha256"]


def test_missing_functions_are_not_found(lambda_client: Any) -> None:
    for call in (
        lambda: lambda_client.invoke(FunctionName="doesnotexist", Payload=b"{}"),
        lambda: lambda_client.delete_function(FunctionName="doesnotexist"),
        lambda: lambda_client.get_function(FunctionName="doesnotexist"),
    ):
        with pytest.raises(ClientError) as missing:
            call()
        assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
        assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(ClientError) as invoke_missing:
        lambda_client.invoke(FunctionName="doesnotexist", Payload=b"{}")
    assert invoke_missing.value.response["Error"]["Message"] == (
        "Function not found: arn:aws:lambda:us-east-1:000000000000:function:doesnotexist:$LATEST")


def test_invalid_names_and_qualifiers_on_read(lambda_client: Any) -> None:
    with pytest.raises(ClientError) as bad_name:
        lambda_client.get_function(FunctionName="my-function!")
    assert bad_name.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as bad_qualifier:
        lambda_client.get_function(FunctionName="my-function", Qualifier="invalid!")
    assert bad_qualifier.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as lowercase:
        lambda_client.get_function(FunctionName="my-function", Qualifier="$latest")
    assert lowercase.value.response["Error"]["Code"] == "ResourceNotFoundException"
