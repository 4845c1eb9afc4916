"""Domain records → the output shapes of the Lambda API (plain dicts for the serialiser)."""

from __future__ import annotations

from typing import Any

from strato.domain.arns import Scope
from strato.domain.models import FunctionVersion, format_last_modified


def function_configuration(
    record: FunctionVersion, scope: Scope, *, qualified_arn: bool = False
) -> dict[str, Any]:
    """``FunctionConfiguration`` as AWS returns it for ``record``.

    ``qualified_arn`` adds the version to ``FunctionArn`` (ListFunctions with
    FunctionVersion=ALL, and the configuration of a published version do so)."""
    config: dict[str, Any] = {
        "FunctionName": record.name,
        "FunctionArn": scope.function_arn(record.name, record.version if qualified_arn else None),
        "Runtime": record.runtime,
        "Role": record.role,
        "Handler": record.handler,
        "CodeSize": record.code.size,
        "Description": record.description,
        "Timeout": record.timeout,
        "MemorySize": record.memory_size,
        "LastModified": format_last_modified(record.last_modified),
        "CodeSha256": record.code.code_sha256,
        "Version": record.version,
        "Environment": {"Variables": dict(record.environment)},
        "TracingConfig": {"Mode": "PassThrough"},
        "RevisionId": record.revision_id,
        "State": record.state.value,
        "PackageType": "Zip",
        "Architectures": list(record.architectures),
        "EphemeralStorage": {"Size": record.ephemeral_storage},
        "SnapStart": {"ApplyOn": "None", "OptimizationStatus": "Off"},
        "RuntimeVersionConfig": {
            "RuntimeVersionArn": f"arn:aws:lambda:{scope.region}::runtime:{record.runtime}"
        },
        "LoggingConfig": {"LogFormat": "Text", "LogGroup": record.log_group},
    }
    optional = {
        "StateReason": record.state_reason,
        "StateReasonCode": record.state_reason_code,
        "LastUpdateStatus": record.last_update_status.value if record.last_update_status else None,
        "LastUpdateStatusReason": record.last_update_status_reason,
        "LastUpdateStatusReasonCode": record.last_update_status_reason_code,
    }
    config.update({k: v for k, v in optional.items() if v is not None})
    return config
