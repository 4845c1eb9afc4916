"""Pure parts: name resolution, configuration rules, pool decisions, fault texts."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from strato.domain.arns import FunctionRef, Scope, resolve_function_name
from strato.domain.errors import (
    InvalidParameterValueException,
    ResourceNotFoundException,
    ValidationException,
)
from strato.domain.models import CodeRef, format_last_modified, utcnow
from strato.domain.validation import check_environment, check_function_name, check_runtime, check_sizes
from strato.sandbox.base import ExitStatus
from strato.scheduler.invocation import response_too_large, runtime_exited, timed_out
from strato.scheduler.placement import expired

SCOPE = Scope("us-east-1", "123456789012")


@pytest.mark.parametrize(
    ("spelling", "qualifier", "expected"),
    [
        ("f", None, FunctionRef("f")),
        ("f:1", None, FunctionRef("f", "1")),
        ("f", "$LATEST", FunctionRef("f", "$LATEST")),
        ("123456789012:function:f", None, FunctionRef("f")),
        ("arn:aws:lambda:us-east-1:123456789012:function:f:prod", None, FunctionRef("f", "prod")),
        ("arn:aws:lambda:us-east-1:123456789012:function:f:prod", "prod", FunctionRef("f", "prod")),
    ],
)
def test_every_spelling_of_a_function_name(spelling: str, qualifier: str | None, expected: FunctionRef) -> None:
    assert resolve_function_name(spelling, SCOPE, qualifier) == expected


def test_other_region_and_conflicting_qualifier() -> None:
    with pytest.raises(ResourceNotFoundException, match="Functions from 'eu-west-1' are not reachable"):
        resolve_function_name("arn:aws:lambda:eu-west-1:123456789012:function:f", SCOPE)
    with pytest.raises(InvalidParameterValueException):
        resolve_function_name("f:1", SCOPE, "2")


def test_configuration_rules() -> None:
    check_function_name("a" * 64)
    with pytest.raises(InvalidParameterValueException, match="less than or equal to 64"):
        check_function_name("a" * 65)
    with pytest.raises(ValidationException):
        check_function_name("bad name")
    check_runtime("python3.12")
    with pytest.raises(InvalidParameterValueException, match="enum value set"):
        check_runtime("PYTHON3.9")
    with pytest.raises(InvalidParameterValueException, match="not supported by strato"):
        check_runtime("ruby3.3")
    check_sizes(memory=128, timeout=900, ephemeral=10240)
    with pytest.raises(ValidationException) as both:
        check_sizes(memory=10241, timeout=0, ephemeral=None)
    assert str(both.value).startswith("2 validation errors detected: ")
    check_environment({"K": "v" * 4000})
    with pytest.raises(InvalidParameterValueException, match="exceeded the 4KB limit"):
        check_environment({"K": "v" * 4100})
    with pytest.raises(InvalidParameterValueException, match="reserved keys"):
        check_environment({"AWS_REGION": "x"})


def test_code_sha_and_last_modified_formats() -> None:
    assert CodeRef("00" * 32, 1).code_sha256 == "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
    stamp = format_last_modified(utcnow())
    assert len(stamp) == len("2024-01-15T10:30:00.000+0000") and stamp.endswith("+0000")


@dataclass
class Env:
    idle_since: float


def test_expired_after_keep_alive() -> None:
    envs = [Env(0.0), Env(5.0), Env(9.0)]
    assert expired(envs, now=10.0, keep_alive_s=5.0) == envs[:2]
    assert expired(envs, now=10.0, keep_alive_s=60.0) == []


def test_fault_texts_are_lambdas() -> None:
    assert timed_out("r", 1).message == "RequestId: r Error: Task timed out after 1.00 seconds"
    assert runtime_exited("r", None).message == "RequestId: r Error: Runtime exited without providing a reason"
    oom = runtime_exited("r", ExitStatus(None, 9).describe(), out_of_memory=True)
    assert (oom.error_type, oom.message) == (
        "Runtime.OutOfMemory", "RequestId: r Error: Runtime exited with error: signal: killed")
    assert ExitStatus(1, None).describe() == "exit status 1"
    assert response_too_large(6291556).error_type == "Function.ResponseSizeTooLarge"
