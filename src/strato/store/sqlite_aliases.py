"""The SQLite backends of ``AliasStore`` and ``ProvisionedConcurrencyStore`` (contracts in
``store.base``).

One row of ``function_aliases`` per (function, alias), the alias as one JSON document (the
explicit codec below) beside its ``revision_id``, so that a change is one compare-and-swap
``UPDATE ... WHERE revision_id = ?``. One row of ``provisioned_concurrency`` per (function,
qualifier). Both tables reference ``functions``: deleting a function deletes its rows in the
same transaction, and a row of a function that does not exist cannot be written.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from strato.domain.models import Alias, ProvisionedConcurrencyConfig
from strato.errors import AlreadyExistsError, NotFoundError, RevisionMismatchError, StoreError
from strato.store.json_fields import JsonObject, JsonValue, read_object, read_str
from strato.store.sqlite_db import SqliteDatabase

#: Written into every alias record; a later change of shape bumps it and reads both.
ALIAS_FORMAT = 1


def encode_alias(alias: Alias) -> JsonObject:
    """The alias as plain JSON types, every field named; the weights an object
    version → float."""
    return {
        "format": ALIAS_FORMAT,
        "function_name": alias.function_name,
        "name": alias.name,
        "function_version": alias.function_version,
        "revision_id": alias.revision_id,
        "description": alias.description,
        "additional_weights": {
            version: float(weight) for version, weight in alias.additional_weights.items()
        },
    }


def decode_alias(data: JsonValue) -> Alias:
    """The alias ``encode_alias`` made. Raises StoreError if ``data`` is not one."""
    obj = _object(data, "record")
    if obj.get("format") != ALIAS_FORMAT:
        raise StoreError(f"unknown alias record format {obj.get('format')!r}")
    return Alias(
        function_name=_str(obj, "function_name"),
        name=_str(obj, "name"),
        function_version=_str(obj, "function_version"),
        revision_id=_str(obj, "revision_id"),
        description=_str(obj, "description"),
        additional_weights=_weights(obj.get("additional_weights")),
    )


def _object(value: JsonValue, what: str) -> JsonObject:
    return read_object(value, what, "alias")


def _str(obj: JsonObject, key: str) -> str:
    return read_str(obj, key, "alias")


def _weights(value: JsonValue) -> dict[str, float]:
    weights: dict[str, float] = {}
    for version, weight in _object(value, "additional_weights").items():
        if not isinstance(weight, int | float) or isinstance(weight, bool):
            raise StoreError(f"corrupt alias record: the weight of {version} is not a number")
        weights[version] = float(weight)
    return weights


def _alias_text(alias: Alias) -> str:
    return json.dumps(encode_alias(alias), separators=(",", ":"), sort_keys=True)


def _decode_alias_text(text: object) -> Alias:
    try:
        data: JsonValue = json.loads(str(text))
    except ValueError as e:
        raise StoreError(f"corrupt alias record: {e}") from e
    return decode_alias(data)


def _function_exists(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM functions WHERE name = ?", (name,)).fetchone() is not None


class SqliteAliasStore:
    """Aliases on the database file ``path`` (the file of ``SqliteFunctionStore``)."""

    def __init__(self, path: Path) -> None:
        self._db = SqliteDatabase(path)

    def close(self) -> None:
        """Close the database; legal once no other thread uses the store. Idempotent."""
        self._db.close()

    def create_alias(self, alias: Alias) -> None:
        text = _alias_text(alias)
        with self._db.transaction() as conn:
            if not _function_exists(conn, alias.function_name):
                raise NotFoundError(f"function {alias.function_name} does not exist")
            try:
                conn.execute(
                    "INSERT INTO function_aliases (function_name, name, revision_id, record)"
                    " VALUES (?, ?, ?, ?)",
                    (alias.function_name, alias.name, alias.revision_id, text),
                )
            except sqlite3.IntegrityError as e:
                raise AlreadyExistsError(
                    f"function {alias.function_name} has an alias {alias.name}"
                ) from e

    def get_alias(self, function_name: str, name: str) -> Alias | None:
        rows = self._db.fetchall(
            "SELECT record FROM function_aliases WHERE function_name = ? AND name = ?",
            (function_name, name),
        )
        return _decode_alias_text(rows[0][0]) if rows else None

    def list_aliases(self, function_name: str) -> list[Alias]:
        rows = self._db.fetchall(
            "SELECT record FROM function_aliases WHERE function_name = ? ORDER BY name",
            (function_name,),
        )
        return [_decode_alias_text(row[0]) for row in rows]

    def put_alias(self, alias: Alias, *, expected_revision: str) -> None:
        key = (alias.function_name, alias.name)
        text = _alias_text(alias)
        with self._db.transaction() as conn:
            updated = conn.execute(
                "UPDATE function_aliases SET revision_id = ?, record = ?"
                " WHERE function_name = ? AND name = ? AND revision_id = ?",
                (alias.revision_id, text, *key, expected_revision),
            ).rowcount
            if updated == 1:
                return
            stored = conn.execute(
                "SELECT revision_id FROM function_aliases WHERE function_name = ? AND name = ?",
                key,
            ).fetchone()
        if stored is None:
            raise NotFoundError(f"function {alias.function_name} has no alias {alias.name}")
        raise RevisionMismatchError(
            f"alias {alias.function_name}:{alias.name} is at revision {stored[0]},"
            f" not {expected_revision}"
        )

    def delete_alias(self, function_name: str, name: str) -> bool:
        with self._db.transaction() as conn:
            deleted = conn.execute(
                "DELETE FROM function_aliases WHERE function_name = ? AND name = ?",
                (function_name, name),
            ).rowcount
        return deleted > 0


class SqliteProvisionedStore:
    """Provisioned concurrency configurations on the database file ``path`` (the file of
    ``SqliteFunctionStore``); ``last_modified`` is stored as ISO 8601 text in UTC."""

    def __init__(self, path: Path) -> None:
        self._db = SqliteDatabase(path)

    def close(self) -> None:
        """Close the database; legal once no other thread uses the store. Idempotent."""
        self._db.close()

    def put_provisioned(self, config: ProvisionedConcurrencyConfig) -> None:
        """Also raises ValueError if ``config.last_modified`` is naive."""
        if config.last_modified.tzinfo is None:
            raise ValueError(f"last_modified of {config.function_name} must be timezone-aware")
        modified = config.last_modified.astimezone(UTC).isoformat()
        with self._db.transaction() as conn:
            if not _function_exists(conn, config.function_name):
                raise NotFoundError(f"function {config.function_name} does not exist")
            conn.execute(
                "INSERT INTO provisioned_concurrency"
                " (function_name, qualifier, requested, last_modified) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (function_name, qualifier) DO UPDATE"
                " SET requested = excluded.requested, last_modified = excluded.last_modified",
                (config.function_name, config.qualifier, config.requested, modified),
            )

    def get_provisioned(self, function_name: str, qualifier: str) -> ProvisionedConcurrencyConfig | None:
        rows = self._db.fetchall(
            _SELECT_PROVISIONED + " WHERE function_name = ? AND qualifier = ?",
            (function_name, qualifier),
        )
        return _provisioned(rows[0]) if rows else None

    def list_provisioned(self, function_name: str | None = None) -> list[ProvisionedConcurrencyConfig]:
        if function_name is None:
            rows = self._db.fetchall(_SELECT_PROVISIONED + " ORDER BY function_name, qualifier")
        else:
            rows = self._db.fetchall(
                _SELECT_PROVISIONED + " WHERE function_name = ? ORDER BY qualifier",
                (function_name,),
            )
        return [_provisioned(row) for row in rows]

    def delete_provisioned(self, function_name: str, qualifier: str) -> bool:
        with self._db.transaction() as conn:
            deleted = conn.execute(
                "DELETE FROM provisioned_concurrency WHERE function_name = ? AND qualifier = ?",
                (function_name, qualifier),
            ).rowcount
        return deleted > 0


_SELECT_PROVISIONED = (
    "SELECT function_name, qualifier, requested, last_modified FROM provisioned_concurrency"
)


def _provisioned(row: tuple[object, ...]) -> ProvisionedConcurrencyConfig:
    function_name, qualifier, requested, modified = row
    try:
        last_modified = datetime.fromisoformat(str(modified))
    except ValueError as e:
        raise StoreError(f"corrupt provisioned concurrency of {function_name}: {e}") from e
    if last_modified.tzinfo is None or not isinstance(requested, int):
        raise StoreError(f"corrupt provisioned concurrency of {function_name}:{qualifier}")
    return ProvisionedConcurrencyConfig(
        function_name=str(function_name),
        qualifier=str(qualifier),
        requested=requested,
        last_modified=last_modified,
    )
