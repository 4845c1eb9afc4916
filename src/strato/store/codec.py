"""FunctionVersion <-> a JSON-able dict, field by field.

The codec is explicit on purpose: a stored record outlives the dataclass that wrote it, so
every field is named here and a renamed attribute cannot silently change the stored shape.
``FORMAT`` is written into every record; a later change of shape bumps it and teaches
``decode_function_version`` to read both.

Datetimes are stored as ISO 8601 text in UTC, enums by their AWS value, ``environment`` as an
object and ``architectures`` as a list.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TypeAlias

from strato.domain.models import CodeRef, FunctionState, FunctionVersion, LastUpdateStatus
from strato.errors import StoreError

JsonValue: TypeAlias = "str | int | float | bool | None | list[JsonValue] | dict[str, JsonValue]"
JsonObject: TypeAlias = dict[str, JsonValue]

FORMAT = 1


def encode_function_version(record: FunctionVersion) -> JsonObject:
    """The record as plain JSON types. Raises ValueError if ``last_modified`` is naive."""
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
        "environment": dict(record.environment),
        "architectures": list(record.architectures),
        "state": record.state.value,
        "state_reason": record.state_reason,
        "state_reason_code": record.state_reason_code,
        "last_update_status": (
            None if record.last_update_status is None else record.last_update_status.value
        ),
        "last_update_status_reason": record.last_update_status_reason,
        "last_update_status_reason_code": record.last_update_status_reason_code,
    }


def decode_function_version(data: JsonValue) -> FunctionVersion:
    """The record ``encode_function_version`` made. Raises StoreError if ``data`` is not one."""
    try:
        obj = _object(data, "record")
        if obj.get("format") != FORMAT:
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
            environment=_str_map(obj.get("environment"), "environment"),
            architectures=tuple(_str_list(obj.get("architectures"), "architectures")),
            state=FunctionState(_str(obj, "state")),
            state_reason=_opt_str(obj, "state_reason"),
            state_reason_code=_opt_str(obj, "state_reason_code"),
            last_update_status=None if status is None else LastUpdateStatus(status),
            last_update_status_reason=_opt_str(obj, "last_update_status_reason"),
            last_update_status_reason_code=_opt_str(obj, "last_update_status_reason_code"),
        )
    except ValueError as e:  # an unknown enum value or a malformed datetime
        raise StoreError(f"corrupt function record: {e}") from e


def _object(value: JsonValue, what: str) -> JsonObject:
    if not isinstance(value, dict):
        raise StoreError(f"corrupt function record: {what} is not an object")
    return value


def _str(obj: JsonObject, key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise StoreError(f"corrupt function record: {key} is not a string")
    return value


def _opt_str(obj: JsonObject, key: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise StoreError(f"corrupt function record: {key} is not a string or null")
    return value


def _int(obj: JsonObject, key: str) -> int:
    value = obj.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise StoreError(f"corrupt function record: {key} is not an integer")
    return value


def _str_map(value: JsonValue, what: str) -> dict[str, str]:
    obj = _object(value, what)
    return {key: _str(obj, key) for key in obj}


def _str_list(value: JsonValue, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise StoreError(f"corrupt function record: {what} is not a list of strings")
    return [item for item in value if isinstance(item, str)]


def _datetime(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise StoreError(f"corrupt function record: last_modified {text!r} has no time zone")
    return moment
