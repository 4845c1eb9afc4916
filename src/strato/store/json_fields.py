"""Typed reads of the fields of a stored JSON record, shared by the stores' codecs.

Each reader returns the field as its type or raises StoreError naming the record kind
(``record``, e.g. ``"function"``) and the field: a stored record that does not read back as
written is corrupt, and says so.
"""

from __future__ import annotations

from typing import TypeAlias

from strato.errors import StoreError

JsonValue: TypeAlias = "str | int | float | bool | None | list[JsonValue] | dict[str, JsonValue]"
JsonObject: TypeAlias = dict[str, JsonValue]


def corrupt(record: str, detail: str) -> StoreError:
    return StoreError(f"corrupt {record} record: {detail}")


def read_object(value: JsonValue, what: str, record: str) -> JsonObject:
    if not isinstance(value, dict):
        raise corrupt(record, f"{what} is not an object")
    return value


def read_str(obj: JsonObject, key: str, record: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise corrupt(record, f"{key} is not a string")
    return value


def read_opt_str(obj: JsonObject, key: str, record: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise corrupt(record, f"{key} is not a string or null")
    return value


def read_int(obj: JsonObject, key: str, record: str) -> int:
    value = obj.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise corrupt(record, f"{key} is not an integer")
    return value


def read_opt_int(obj: JsonObject, key: str, record: str) -> int | None:
    if obj.get(key) is None:
        return None
    return read_int(obj, key, record)
