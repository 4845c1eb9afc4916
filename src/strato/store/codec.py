"""FunctionVersion <-> a JSON-able dict, field by field.

The codec is explicit on purpose: a stored record outlives the dataclass that wrote it, so
every field is named here and a renamed attribute cannot silently change the stored shape.
``FORMAT`` is written into every record; a later change of shape bumps it and teaches
``decode_function_version`` to read both.

Datetimes are stored as ISO 8601 text in UTC, enums by their AWS value and ``architectures``
as a list. The environment variables are sealed (``store.secretbox``): ``environment_sealed``
is the base64 of the sealed JSON object, bound to the function's name, version and revision
so that a ciphertext moved to another record does not open. Format 1 kept them in plaintext
(``environment``, an object); it is still read, so that a store can seal old records when it
opens, and never written.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime

from strato.domain.logging_config import LogFormat, LoggingConfig
from strato.domain.models import (
    CodeRef,
    FunctionLayer,
    FunctionState,
    FunctionVersion,
    LastUpdateStatus,
    VpcConfig,
)
from strato.errors import SealedSecretError, StoreError
from strato.store.json_fields import (
    JsonObject,
    JsonValue,
    read_int,
    read_object,
    read_opt_str,
    read_str,
)
from strato.store.secretbox import SecretBox

_RECORD = "function"

FORMAT = 2
#: The format that kept environment variables in plaintext.
PLAINTEXT_FORMAT = 1


def published_number(version: str) -> int:
    """The number of a published version from its text (``"1"``, ``"2"``, …). Raises
    ValueError for ``$LATEST`` and for any text that is not a positive decimal number in its
    canonical form (no sign, no leading zero, ASCII digits only)."""
    if not (version.isascii() and version.isdecimal()) or version.startswith("0"):
        raise ValueError(f"{version!r} is not the number of a published version")
    return int(version)


def environment_binding(name: str, version: str, revision_id: str) -> bytes:
    """The associated data a version's sealed environment is bound to."""
    return json.dumps(["function-environment", name, version, revision_id]).encode()


def encode_function_version(record: FunctionVersion, box: SecretBox) -> JsonObject:
    """The record as plain JSON types, its environment sealed by ``box``. Raises ValueError
    if ``last_modified`` is naive."""
    if record.last_modified.tzinfo is None:
        raise ValueError(f"last_modified of {record.name} must be timezone-aware")
    return {
        "format": FORMAT,
        "name": record.name,
        "version": record.version,
        "runtime": record.runtime,
        "handler": record.handler,
        "role": record.role,
        "code": {"sha256_hex": record.code.sha256_hex, "size": record.code.size},
        "revision_id": record.revision_id,
        "last_modified": record.last_modified.astimezone(UTC).isoformat(),
        "memory_size": record.memory_size,
        "timeout": record.timeout,
        "ephemeral_storage": record.ephemeral_storage,
        "description": record.description,
        "environment_sealed": _seal_environment(record, box),
        "environment_configured": record.environment_configured,
        "architectures": list(record.architectures),
        "state": record.state.value,
        "state_reason": record.state_reason,
        "state_reason_code": record.state_reason_code,
        "last_update_status": (
            None if record.last_update_status is None else record.last_update_status.value
        ),
        "last_update_status_reason": record.last_update_status_reason,
        "last_update_status_reason_code": record.last_update_status_reason_code,
        "vpc_config": {
            "subnet_ids": list(record.vpc_config.subnet_ids),
            "security_group_ids": list(record.vpc_config.security_group_ids),
            "ipv6_allowed_for_dual_stack": record.vpc_config.ipv6_allowed_for_dual_stack,
        },
        "dead_letter_target": record.dead_letter_target,
        "logging_config": {
            "log_format": record.logging_config.log_format.value,
            "application_log_level": record.logging_config.application_log_level,
            "system_log_level": record.logging_config.system_log_level,
            "log_group": record.logging_config.log_group,
        },
        "layers": [
            {"arn": layer.arn, "sha256_hex": layer.code.sha256_hex, "size": layer.code.size,
             "unzipped_size": layer.unzipped_size}
            for layer in record.layers
        ],
    }


def decode_function_version(data: JsonValue, box: SecretBox) -> FunctionVersion:
    """The record ``encode_function_version`` made (or one of format 1), its environment
    opened by ``box``. Raises SealedSecretError if the environment does not open under
    ``box`` for this record, StoreError if ``data`` is not a record."""
    try:
        obj = _object(data, "record")
        if obj.get("format") == FORMAT:
            environment = _open_environment(obj, box)
        elif obj.get("format") == PLAINTEXT_FORMAT:
            environment = _str_map(obj.get("environment"), "environment")
        else:
            raise StoreError(f"unknown function record format {obj.get('format')!r}")
        code = _object(obj.get("code"), "code")
        status = _opt_str(obj, "last_update_status")
        return FunctionVersion(
            name=_str(obj, "name"),
            version=_str(obj, "version"),
            runtime=_str(obj, "runtime"),
            handler=_str(obj, "handler"),
            role=_str(obj, "role"),
            code=CodeRef(sha256_hex=_str(code, "sha256_hex"), size=_int(code, "size")),
            revision_id=_str(obj, "revision_id"),
            last_modified=_datetime(_str(obj, "last_modified")),
            memory_size=_int(obj, "memory_size"),
            timeout=_int(obj, "timeout"),
            ephemeral_storage=_int(obj, "ephemeral_storage"),
            description=_str(obj, "description"),
            environment=environment,
            # Records written before the member existed had an Environment if any variable.
            environment_configured=bool(obj.get("environment_configured", bool(environment))),
            architectures=tuple(_str_list(obj.get("architectures"), "architectures")),
            state=FunctionState(_str(obj, "state")),
            state_reason=_opt_str(obj, "state_reason"),
            state_reason_code=_opt_str(obj, "state_reason_code"),
            last_update_status=None if status is None else LastUpdateStatus(status),
            last_update_status_reason=_opt_str(obj, "last_update_status_reason"),
            last_update_status_reason_code=_opt_str(obj, "last_update_status_reason_code"),
            vpc_config=_vpc_config(obj.get("vpc_config")),
            # Records written before DeadLetterConfig existed have none.
            dead_letter_target=_opt_str(obj, "dead_letter_target"),
            logging_config=_logging_config(obj.get("logging_config")),
            # Records written before Layers existed have none.
            layers=_layers(obj.get("layers", [])),
        )
    except ValueError as e:  # an unknown enum value or a malformed datetime
        raise StoreError(f"corrupt function record: {e}") from e


def _seal_environment(record: FunctionVersion, box: SecretBox) -> str:
    plaintext = json.dumps(dict(record.environment), separators=(",", ":"), sort_keys=True)
    binding = environment_binding(record.name, record.version, record.revision_id)
    return base64.b64encode(box.seal(plaintext.encode(), binding)).decode("ascii")


def _open_environment(obj: JsonObject, box: SecretBox) -> dict[str, str]:
    name, version = _str(obj, "name"), _str(obj, "version")
    try:
        sealed = base64.b64decode(_str(obj, "environment_sealed"), validate=True)
    except binascii.Error as e:
        raise StoreError(f"corrupt function record: environment_sealed is not base64: {e}") from e
    try:
        plaintext = box.open(sealed, environment_binding(name, version, _str(obj, "revision_id")))
    except SealedSecretError as e:
        raise SealedSecretError(f"the environment of {name}:{version} does not open: {e}") from e
    try:
        variables: JsonValue = json.loads(plaintext)
    except ValueError as e:  # authentic yet not JSON: only a bug of the writer can do this
        raise StoreError(f"corrupt function record: sealed environment is not JSON: {e}") from e
    return _str_map(variables, "environment")


def _object(value: JsonValue, what: str) -> JsonObject:
    return read_object(value, what, _RECORD)


def _str(obj: JsonObject, key: str) -> str:
    return read_str(obj, key, _RECORD)


def _opt_str(obj: JsonObject, key: str) -> str | None:
    return read_opt_str(obj, key, _RECORD)


def _int(obj: JsonObject, key: str) -> int:
    return read_int(obj, key, _RECORD)


def _str_map(value: JsonValue, what: str) -> dict[str, str]:
    obj = _object(value, what)
    return {key: _str(obj, key) for key in obj}


def _str_list(value: JsonValue, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise StoreError(f"corrupt function record: {what} is not a list of strings")
    return [item for item in value if isinstance(item, str)]


def _layers(value: JsonValue) -> tuple[FunctionLayer, ...]:
    if not isinstance(value, list):
        raise StoreError("corrupt function record: layers is not a list")
    layers = []
    for item in value:
        obj = _object(item, "layer")
        code = CodeRef(sha256_hex=_str(obj, "sha256_hex"), size=_int(obj, "size"))
        layers.append(FunctionLayer(_str(obj, "arn"), code, _int(obj, "unzipped_size")))
    return tuple(layers)


def _datetime(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise StoreError(f"corrupt function record: last_modified {text!r} has no time zone")
    return moment


def _vpc_config(data: JsonValue) -> VpcConfig:
    """A stored VpcConfig; records written before it existed have none."""
    if data is None:
        return VpcConfig()
    obj = _object(data, "vpc_config")
    return VpcConfig(
        subnet_ids=tuple(_str_list(obj.get("subnet_ids"), "subnet_ids")),
        security_group_ids=tuple(_str_list(obj.get("security_group_ids"), "security_group_ids")),
        ipv6_allowed_for_dual_stack=obj.get("ipv6_allowed_for_dual_stack") is True,
    )


def _logging_config(data: JsonValue) -> LoggingConfig:
    """A stored LoggingConfig; records written before it existed have the default one."""
    if data is None:
        return LoggingConfig()
    obj = _object(data, "logging_config")
    return LoggingConfig(
        log_format=LogFormat(_str(obj, "log_format")),
        application_log_level=_opt_str(obj, "application_log_level"),
        system_log_level=_opt_str(obj, "system_log_level"),
        log_group=_opt_str(obj, "log_group"),
    )
