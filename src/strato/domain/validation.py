"""Lambda's own rules for a function's configuration, beyond what the service model says.

Messages copy AWS's (recorded from the real service, or from the API reference where no
recording exists). Each check raises the AWS error; none changes anything.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from strato.domain import limits
from strato.domain.arns import FunctionRef
from strato.domain.errors import (
    InvalidParameterValueException,
    PreconditionFailedException,
    ResourceConflictException,
    ValidationException,
)
from strato.domain.runtimes import AWS_RUNTIMES, SUPPORTED

_NAME = re.compile(r"[a-zA-Z0-9-_]+")

#: Variables Lambda sets itself and refuses in a function's configuration
#: (https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime).
RESERVED_VARIABLES = frozenset({
    "_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR",
})


def _range_item(value: int, path: str, low: int, high: int) -> str | None:
    if value > high:
        bound = f"less than or equal to {high}"
    elif value < low:
        bound = f"greater than or equal to {low}"
    else:
        return None
    return f"Value '{value}' at '{path}' failed to satisfy constraint: Member must have value {bound}"


def check_function_name(name: str) -> None:
    if len(name) > limits.FUNCTION_NAME_MAX:
        raise InvalidParameterValueException(
            f"1 validation error detected: Value '{name}' at 'functionName' failed to satisfy "
            f"constraint: Member must have length less than or equal to {limits.FUNCTION_NAME_MAX}"
        )
    if not _NAME.fullmatch(name):
        raise ValidationException.from_items([
            f"Value '{name}' at 'functionName' failed to satisfy constraint: Member must "
            "satisfy regular expression pattern: [a-zA-Z0-9-_]+"
        ])


def check_runtime(runtime: str) -> None:
    """Unknown runtimes get AWS's message; known ones strato cannot run get a clear one."""
    if runtime not in AWS_RUNTIMES:
        raise InvalidParameterValueException(
            f"Value {runtime} at 'runtime' failed to satisfy constraint: Member must satisfy "
            f"enum value set: [{', '.join(AWS_RUNTIMES)}] or be a valid ARN"
        )
    if runtime not in SUPPORTED:
        raise InvalidParameterValueException(
            f"The runtime parameter of {runtime} is not supported by strato. Supported runtimes: "
            f"{', '.join(sorted(SUPPORTED))}."
        )


def check_sizes(*, memory: int | None, timeout: int | None, ephemeral: int | None) -> None:
    items = [
        item
        for item in (
            memory is not None and _range_item(
                memory, "memorySize", limits.MEMORY_MIN_MB, limits.MEMORY_MAX_MB),
            timeout is not None and _range_item(
                timeout, "timeout", limits.TIMEOUT_MIN_S, limits.TIMEOUT_MAX_S),
            ephemeral is not None and _range_item(
                ephemeral, "ephemeralStorage.size", limits.EPHEMERAL_MIN_MB, limits.EPHEMERAL_MAX_MB),
        )
        if item
    ]
    if items:
        raise ValidationException.from_items([i for i in items if isinstance(i, str)])


def check_environment(variables: Mapping[str, str]) -> None:
    reserved = sorted(k for k in variables if k in RESERVED_VARIABLES)
    if reserved:
        raise InvalidParameterValueException(
            "Lambda was unable to configure your environment variables because the environment "
            "variables you have provided contains reserved keys that are currently not "
            f"supported for modification. Reserved keys used in this request: {','.join(reserved)}"
        )
    measured = json.dumps(dict(variables), separators=(",", ":"), ensure_ascii=False)
    if len(measured.encode()) > limits.ENVIRONMENT_MAX_BYTES:
        raise InvalidParameterValueException(
            "Lambda was unable to configure your environment variables because the environment "
            "variables you have provided exceeded the 4KB limit. String measured: " + measured
        )


def check_dead_letter_target(arn: str) -> None:
    """A ``DeadLetterConfig.TargetArn`` must name an SQS queue: the dead-letter queues strato
    delivers to (Lambda also takes SNS topics, which strato has no client for)."""
    parts = arn.split(":")
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "sqs" or not parts[5]:
        raise InvalidParameterValueException(
            f"The provided target arn {arn} is invalid: strato delivers dead letters to SQS "
            "queues only (arn:aws:sqs:<region>:<account>:<queue>)."
        )


def require_unqualified(ref: FunctionRef) -> None:
    """Operations on a function as a whole (concurrency, aliases, versions) refuse a qualified
    name, in AWS's words."""
    if ref.qualifier is not None:
        raise InvalidParameterValueException(
            "This operation is permitted on Lambda functions only. Aliases and versions do not "
            "support this operation. Please specify either a function name or an unqualified "
            "function ARN."
        )


def revision_mismatch() -> PreconditionFailedException:
    """A stale RevisionId of a function, version or alias."""
    return PreconditionFailedException(
        "The Revision Id provided does not match the latest Revision Id. "
        "Call the GetFunction/GetAlias API to retrieve the latest Revision Id"
    )


def update_in_progress(function_arn: str) -> ResourceConflictException:
    """A change refused while an update of ``$LATEST`` is in progress."""
    return ResourceConflictException(
        "The operation cannot be performed at this time. An update is in progress for "
        f"resource: {function_arn}"
    )
