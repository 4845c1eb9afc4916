"""The stored form of a ``FunctionUrlConfig``: one JSON document, written and read by this
explicit codec (no reflection), with a format number so a later shape can read older rows."""

from __future__ import annotations

from strato.domain.function_urls import AuthType, Cors, FunctionUrlConfig, InvokeMode
from strato.errors import StoreError
from strato.store.json_fields import (
    JsonObject,
    JsonValue,
    corrupt,
    read_object,
    read_opt_int,
    read_opt_str,
    read_str,
)

_RECORD = "function url config"

#: Written into every record; a later change of shape bumps it and reads both.
CONFIG_FORMAT = 1


def encode_config(config: FunctionUrlConfig) -> JsonObject:
    cors = config.cors
    return {
        "format": CONFIG_FORMAT,
        "url_id": config.url_id,
        "function_name": config.function_name,
        "qualifier": config.qualifier,
        "auth_type": config.auth_type.value,
        "invoke_mode": config.invoke_mode.value,
        "cors": None if cors is None else {
            "allow_credentials": cors.allow_credentials,
            "allow_headers": list(cors.allow_headers),
            "allow_methods": list(cors.allow_methods),
            "allow_origins": list(cors.allow_origins),
            "expose_headers": list(cors.expose_headers),
            "max_age": cors.max_age,
        },
        "creation_time": config.creation_time,
        "last_modified_time": config.last_modified_time,
    }


def decode_config(data: JsonValue) -> FunctionUrlConfig:
    """The configuration ``encode_config`` made. Raises StoreError if ``data`` is not one."""
    obj = read_object(data, "the record", _RECORD)
    if obj.get("format") != CONFIG_FORMAT:
        raise corrupt(_RECORD, f"unknown format {obj.get('format')!r}")
    try:
        return FunctionUrlConfig(
            url_id=read_str(obj, "url_id", _RECORD),
            function_name=read_str(obj, "function_name", _RECORD),
            qualifier=read_opt_str(obj, "qualifier", _RECORD),
            auth_type=AuthType(read_str(obj, "auth_type", _RECORD)),
            invoke_mode=InvokeMode(read_str(obj, "invoke_mode", _RECORD)),
            cors=_decode_cors(obj.get("cors")),
            creation_time=read_str(obj, "creation_time", _RECORD),
            last_modified_time=read_str(obj, "last_modified_time", _RECORD),
        )
    except ValueError as e:  # an enum value this strato does not know
        raise StoreError(f"corrupt {_RECORD} record: {e}") from e


def _decode_cors(value: JsonValue) -> Cors | None:
    if value is None:
        return None
    obj = read_object(value, "cors", _RECORD)
    credentials = obj.get("allow_credentials")
    if credentials is not None and not isinstance(credentials, bool):
        raise corrupt(_RECORD, "allow_credentials is not a boolean or null")
    return Cors(
        allow_credentials=credentials,
        allow_headers=_strings(obj, "allow_headers"),
        allow_methods=_strings(obj, "allow_methods"),
        allow_origins=_strings(obj, "allow_origins"),
        expose_headers=_strings(obj, "expose_headers"),
        max_age=read_opt_int(obj, "max_age", _RECORD),
    )


def _strings(obj: JsonObject, key: str) -> tuple[str, ...]:
    value = obj.get(key)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise corrupt(_RECORD, f"{key} is not a list of strings")
    return tuple(str(item) for item in value)
