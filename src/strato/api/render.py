"""Domain records → the output shapes of the Lambda API (plain dicts for the serialiser)."""

from __future__ import annotations

import json
from typing import Any

from strato.domain.arns import Scope
from strato.domain.event_source_mappings import EventSourceMapping, mapping_arn
from strato.domain.models import Alias, FunctionVersion, format_last_modified
from strato.domain.permissions import (
    POLICY_ID,
    POLICY_VERSION,
    PermissionStatement,
    PrincipalKind,
    ResourcePolicy,
)


def function_configuration(
    record: FunctionVersion, scope: Scope, *, qualified_arn: bool = False,
    arn_qualifier: str | None = None, listing: bool = False,
) -> dict[str, Any]:
    """``FunctionConfiguration`` as AWS returns it for ``record``.

    ``qualified_arn`` adds the version to ``FunctionArn`` (ListFunctions with
    FunctionVersion=ALL, and the configuration of a published version do so);
    ``arn_qualifier`` adds another qualifier (the alias a read went through). ``listing``
    gives the entry of ListFunctions and ListVersionsByFunction, which on AWS carries no
    state (``State``, ``LastUpdateStatus`` and their reasons) and no ``RuntimeVersionConfig``.
    ``Environment`` is there only once the function was given one, even an empty one."""
    qualifier = arn_qualifier or (record.version if qualified_arn else None)
    config: dict[str, Any] = {
        "FunctionName": record.name,
        "FunctionArn": scope.function_arn(record.name, qualifier),
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
        "LoggingConfig": logging_configuration(record),
    }
    if record.environment or record.environment_configured:
        config["Environment"] = {"Variables": dict(record.environment)}
    if record.vpc_config.subnet_ids or record.vpc_config.security_group_ids:
        config["VpcConfig"] = {
            "SubnetIds": list(record.vpc_config.subnet_ids),
            "SecurityGroupIds": list(record.vpc_config.security_group_ids),
            "VpcId": "vpc-strato",
            "Ipv6AllowedForDualStack": record.vpc_config.ipv6_allowed_for_dual_stack,
        }
    if record.dead_letter_target:
        config["DeadLetterConfig"] = {"TargetArn": record.dead_letter_target}
    if record.layers:
        config["Layers"] = [{"Arn": layer.arn, "CodeSize": layer.code.size}
                            for layer in record.layers]
    if listing:
        for member in ("State", "RuntimeVersionConfig"):
            del config[member]
        return config
    optional = {
        "StateReason": record.state_reason,
        "StateReasonCode": record.state_reason_code,
        "LastUpdateStatus": record.last_update_status.value if record.last_update_status else None,
        "LastUpdateStatusReason": record.last_update_status_reason,
        "LastUpdateStatusReasonCode": record.last_update_status_reason_code,
    }
    config.update({k: v for k, v in optional.items() if v is not None})
    return config


def logging_configuration(record: FunctionVersion) -> dict[str, Any]:
    """``LoggingConfig`` as AWS answers it: the levels only with the JSON format, the log
    group always (the default one when none was given)."""
    logging = record.logging_config
    config: dict[str, Any] = {"LogFormat": logging.log_format.value}
    if logging.application_log_level is not None:
        config["ApplicationLogLevel"] = logging.application_log_level
    if logging.system_log_level is not None:
        config["SystemLogLevel"] = logging.system_log_level
    config["LogGroup"] = record.log_group
    return config


def alias_configuration(alias: Alias, scope: Scope) -> dict[str, Any]:
    """``AliasConfiguration``; ``RoutingConfig`` only when the alias splits traffic."""
    config: dict[str, Any] = {
        "AliasArn": scope.function_arn(alias.function_name, alias.name),
        "Name": alias.name,
        "FunctionVersion": alias.function_version,
        "Description": alias.description,
        "RevisionId": alias.revision_id,
    }
    if alias.additional_weights:
        config["RoutingConfig"] = {"AdditionalVersionWeights": dict(alias.additional_weights)}
    return config


def policy_statement(statement: PermissionStatement, resource_arn: str) -> dict[str, Any]:
    """One statement of a resource-based policy in IAM's JSON form (AWS's member order)."""
    principal = statement.principal
    rendered: dict[str, Any] = {
        "Sid": statement.sid,
        "Effect": statement.effect.value,
        "Principal": "*" if principal.kind is PrincipalKind.ANY else {principal.kind.value: principal.value},
        "Action": statement.action,
        "Resource": resource_arn,
    }
    if statement.conditions:
        block: dict[str, dict[str, Any]] = {}
        for condition in statement.conditions:
            values = condition.values
            block.setdefault(condition.operator, {})[condition.key] = (
                values[0] if len(values) == 1 else list(values)
            )
        rendered["Condition"] = block
    return rendered


def policy_document(policy: ResourcePolicy, resource_arn: str) -> dict[str, Any]:
    """``{"Version": "2012-10-17", "Id": "default", "Statement": [...]}`` as GetPolicy has it."""
    return {
        "Version": POLICY_VERSION,
        "Id": POLICY_ID,
        "Statement": [policy_statement(s, resource_arn) for s in policy.statements],
    }


def compact_json(document: dict[str, Any]) -> str:
    """JSON as AWS embeds it in a string member (``Policy``, ``Statement``): no spaces."""
    return json.dumps(document, separators=(",", ":"))


def event_source_mapping_configuration(mapping: EventSourceMapping, scope: Scope) -> dict[str, Any]:
    """``EventSourceMappingConfiguration`` of an SQS mapping, with the members AWS answers
    for one (``FilterCriteria`` and ``ScalingConfig`` only when set); ``FunctionArn`` is
    qualified when the mapping's function name was."""
    config: dict[str, Any] = {
        "UUID": mapping.uuid,
        "BatchSize": mapping.batch_size,
        "MaximumBatchingWindowInSeconds": mapping.maximum_batching_window_s,
        "EventSourceArn": mapping.event_source_arn,
        "FunctionArn": scope.function_arn(mapping.function_name, mapping.qualifier),
        "LastModified": mapping.last_modified,
        "State": mapping.state.value,
        "StateTransitionReason": mapping.state_transition_reason,
        "FunctionResponseTypes": list(mapping.function_response_types),
        "EventSourceMappingArn": mapping_arn(scope.region, scope.account, mapping.uuid),
    }
    if mapping.filter_patterns:
        config["FilterCriteria"] = {"Filters": [{"Pattern": p} for p in mapping.filter_patterns]}
    if mapping.maximum_concurrency is not None:
        config["ScalingConfig"] = {"MaximumConcurrency": mapping.maximum_concurrency}
    return config
