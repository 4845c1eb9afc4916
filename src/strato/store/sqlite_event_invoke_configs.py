"""The SQLite backend of ``EventInvokeConfigStore`` (contract in ``store.base``).

One row of ``event_invoke_configs`` per (function, qualifier), the configuration as one JSON
document (the explicit codec below). The rows reference ``functions``: deleting a function
deletes its configurations in the same transaction, and one of a function that does not exist
cannot be written.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from strato.domain.event_invoke import Destinations, EventInvokeConfig
from strato.errors import NotFoundError, StoreError
from strato.store.json_fields import (
    JsonObject,
    JsonValue,
    read_opt_int,
    read_opt_str,
    read_str,
)
from strato.store.sqlite_db import SqliteDatabase

_RECORD = "event invoke config"

#: Written into every record; a later change of shape bumps it and reads both.
CONFIG_FORMAT = 1


def encode_config(config: EventInvokeConfig) -> JsonObject:
    if config.last_modified.tzinfo is None:
        raise ValueError("last_modified must be timezone-aware")
    return {
        "format": CONFIG_FORMAT,
        "function_name": config.function_name,
        "qualifier": config.qualifier,
        "last_modified": config.last_modified.astimezone(UTC).isoformat(),
        "maximum_retry_attempts": config.maximum_retry_attempts,
        "maximum_event_age_s": config.maximum_event_age_s,
        "on_success": config.destinations.on_success,
        "on_failure": config.destinations.on_failure,
    }


def decode_config(data: JsonValue) -> EventInvokeConfig:
    """The configuration ``encode_config`` made. Raises StoreError if ``data`` is not one."""
    if not isinstance(data, dict) or data.get("format") != CONFIG_FORMAT:
        raise StoreError("corrupt event invoke config record")
    try:
        return EventInvokeConfig(
            function_name=_str(data, "function_name"),
            qualifier=_str(data, "qualifier"),
            last_modified=datetime.fromisoformat(_str(data, "last_modified")),
            maximum_retry_attempts=_opt_int(data, "maximum_retry_attempts"),
            maximum_event_age_s=_opt_int(data, "maximum_event_age_s"),
            destinations=Destinations(_opt_str(data, "on_success"), _opt_str(data, "on_failure")),
        )
    except ValueError as e:
        raise StoreError(f"corrupt event invoke config record: {e}") from e


def _str(obj: JsonObject, key: str) -> str:
    return read_str(obj, key, _RECORD)


def _opt_str(obj: JsonObject, key: str) -> str | None:
    return read_opt_str(obj, key, _RECORD)


def _opt_int(obj: JsonObject, key: str) -> int | None:
    return read_opt_int(obj, key, _RECORD)


class SqliteEventInvokeConfigStore:
    def __init__(self, path: Path) -> None:
        self._db = SqliteDatabase(path)

    def close(self) -> None:
        """Close the database; legal once no other thread uses the store. Idempotent."""
        self._db.close()

    def put_config(self, config: EventInvokeConfig) -> None:
        text = json.dumps(encode_config(config))
        try:
            with self._db.transaction() as conn:
                conn.execute(
                    "INSERT INTO event_invoke_configs (function_name, qualifier, record)"
                    " VALUES (?, ?, ?) ON CONFLICT (function_name, qualifier)"
                    " DO UPDATE SET record = excluded.record",
                    (config.function_name, config.qualifier, text),
                )
        except StoreError as e:
            if isinstance(e.__cause__, sqlite3.IntegrityError):
                raise NotFoundError(f"function {config.function_name} does not exist") from e
            raise

    def get_config(self, function_name: str, qualifier: str) -> EventInvokeConfig | None:
        rows = self._db.fetchall(
            "SELECT record FROM event_invoke_configs WHERE function_name = ? AND qualifier = ?",
            (function_name, qualifier),
        )
        return decode_config(json.loads(rows[0][0])) if rows else None

    def list_configs(self, function_name: str | None = None) -> list[EventInvokeConfig]:
        if function_name is None:
            rows = self._db.fetchall(
                "SELECT record FROM event_invoke_configs ORDER BY function_name, qualifier")
        else:
            rows = self._db.fetchall(
                "SELECT record FROM event_invoke_configs WHERE function_name = ?"
                " ORDER BY qualifier", (function_name,))
        return [decode_config(json.loads(row[0])) for row in rows]

    def delete_config(self, function_name: str, qualifier: str) -> bool:
        with self._db.transaction() as conn:
            return conn.execute(
                "DELETE FROM event_invoke_configs WHERE function_name = ? AND qualifier = ?",
                (function_name, qualifier),
            ).rowcount == 1

    def delete_configs(self, function_name: str) -> None:
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM event_invoke_configs WHERE function_name = ?",
                         (function_name,))
