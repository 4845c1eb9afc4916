"""LayerVersion <-> a JSON-able dict, field by field (the reasons of ``store.codec`` hold:
a stored record outlives the dataclass, so every field is named here)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from strato.domain.layers import LayerId, LayerVersion
from strato.domain.models import CodeRef
from strato.errors import StoreError
from strato.store.json_fields import (
    JsonObject,
    JsonValue,
    corrupt,
    read_int,
    read_object,
    read_opt_str,
    read_str,
)
from strato.store.policy_codec import decode_statements, encode_statements

_RECORD = "layer version"
FORMAT = 1


def encode_layer_version(record: LayerVersion) -> JsonObject:
    return {
        "format": FORMAT,
        "account": record.layer.account,
        "name": record.layer.name,
        "version": record.version,
        "code": {"sha256_hex": record.code.sha256_hex, "size": record.code.size},
        "unzipped_size": record.unzipped_size,
        "created": record.created.astimezone(UTC).isoformat(),
        "description": record.description,
        "license_info": record.license_info,
        "compatible_runtimes": list(record.compatible_runtimes),
        "compatible_architectures": list(record.compatible_architectures),
        "statements": encode_statements(record.statements),
        "policy_revision_id": record.policy_revision_id,
    }


def decode_layer_version(data: JsonValue) -> LayerVersion:
    """Raises StoreError if ``data`` is not a record ``encode_layer_version`` made."""
    obj = read_object(data, "record", _RECORD)
    if obj.get("format") != FORMAT:
        raise StoreError(f"unknown layer version record format {obj.get('format')!r}")
    code = read_object(obj.get("code"), "code", _RECORD)
    try:
        created = datetime.fromisoformat(read_str(obj, "created", _RECORD))
    except ValueError as e:
        raise corrupt(_RECORD, f"created is not a datetime: {e}") from e
    return LayerVersion(
        layer=LayerId(read_str(obj, "account", _RECORD), read_str(obj, "name", _RECORD)),
        version=read_int(obj, "version", _RECORD),
        code=CodeRef(read_str(code, "sha256_hex", _RECORD), read_int(code, "size", _RECORD)),
        unzipped_size=read_int(obj, "unzipped_size", _RECORD),
        created=created,
        description=read_str(obj, "description", _RECORD),
        license_info=read_opt_str(obj, "license_info", _RECORD),
        compatible_runtimes=_strings(obj, "compatible_runtimes"),
        compatible_architectures=_strings(obj, "compatible_architectures"),
        statements=decode_statements(read_str(obj, "statements", _RECORD)),
        policy_revision_id=read_opt_str(obj, "policy_revision_id", _RECORD),
    )


def _strings(obj: JsonObject, key: str) -> tuple[str, ...]:
    value = obj.get(key)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise corrupt(_RECORD, f"{key} is not a list of strings")
    return tuple(item for item in value if isinstance(item, str))


def dumps(record: LayerVersion) -> str:
    return json.dumps(encode_layer_version(record), separators=(",", ":"))


def loads(text: str) -> LayerVersion:
    try:
        data: JsonValue = json.loads(text)
    except ValueError as e:
        raise corrupt(_RECORD, f"not JSON: {e}") from e
    return decode_layer_version(data)
