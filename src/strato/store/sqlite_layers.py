"""The SQLite backend of ``LayerStore`` (contract in ``store.layer_base``), in a file of its
own (``layers.db`` in the data dir, with its own migrations).

Tables: ``layers`` (one row per layer ever published, with the highest version number it
gave: rows are never deleted, so numbers are never reused) and ``layer_versions`` (one row
per existing version, the record as JSON, ``code_sha256`` beside it for GC without parsing).
"""

from __future__ import annotations

from pathlib import Path

from strato.domain.layers import LayerId, LayerVersion
from strato.errors import NotFoundError, RevisionMismatchError
from strato.store.layer_codec import dumps, loads
from strato.store.sqlite_db import SqliteDatabase

#: Statements of each migration of ``layers.db``, in order. Never edit a released entry.
LAYER_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (  # 1: layers and their versions
        """CREATE TABLE layers (
            account TEXT NOT NULL,
            name TEXT NOT NULL,
            last_version INTEGER NOT NULL,
            PRIMARY KEY (account, name)
        ) WITHOUT ROWID""",
        """CREATE TABLE layer_versions (
            account TEXT NOT NULL,
            name TEXT NOT NULL,
            version INTEGER NOT NULL,
            code_sha256 TEXT NOT NULL,
            record TEXT NOT NULL,
            PRIMARY KEY (account, name, version),
            FOREIGN KEY (account, name) REFERENCES layers (account, name)
        ) WITHOUT ROWID""",
    ),
)


class SqliteLayerStore:
    """Safe to use from several threads (``SqliteDatabase`` gives each its connection)."""

    def __init__(self, path: Path) -> None:
        self._db = SqliteDatabase(path, migrations=LAYER_MIGRATIONS)

    def close(self) -> None:
        self._db.close()

    def publish(self, record: LayerVersion) -> LayerVersion:
        """One ``BEGIN IMMEDIATE`` transaction bumps the layer's number and inserts the
        version, so concurrent publishers each get their own number."""
        layer = record.layer
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO layers (account, name, last_version) VALUES (?, ?, 1)"
                " ON CONFLICT (account, name) DO UPDATE SET last_version = last_version + 1",
                (layer.account, layer.name),
            )
            (number,) = conn.execute(
                "SELECT last_version FROM layers WHERE account = ? AND name = ?",
                (layer.account, layer.name),
            ).fetchone()
            stored = record.replace(version=int(number))
            conn.execute(
                "INSERT INTO layer_versions (account, name, version, code_sha256, record)"
                " VALUES (?, ?, ?, ?, ?)",
                (layer.account, layer.name, stored.version, stored.code.sha256_hex, dumps(stored)),
            )
        return stored

    def get(self, layer: LayerId, version: int) -> LayerVersion | None:
        rows = self._db.fetchall(
            "SELECT record FROM layer_versions WHERE account = ? AND name = ? AND version = ?",
            (layer.account, layer.name, version),
        )
        return loads(rows[0][0]) if rows else None

    def put_policy(self, record: LayerVersion, expected_policy_revision: str | None) -> None:
        layer = record.layer
        with self._db.transaction() as conn:
            row = conn.execute(
                "SELECT record FROM layer_versions WHERE account = ? AND name = ? AND version = ?",
                (layer.account, layer.name, record.version),
            ).fetchone()
            if row is None:
                raise NotFoundError(f"layer version {layer}:{record.version} is gone")
            current = loads(row[0])
            if current.policy_revision_id != expected_policy_revision:
                raise RevisionMismatchError("the layer version's policy changed")
            updated = current.replace(statements=record.statements,
                                      policy_revision_id=record.policy_revision_id)
            conn.execute(
                "UPDATE layer_versions SET record = ? WHERE account = ? AND name = ? AND version = ?",
                (dumps(updated), layer.account, layer.name, record.version),
            )

    def delete(self, layer: LayerId, version: int) -> bool:
        with self._db.transaction() as conn:
            cursor = conn.execute(
                "DELETE FROM layer_versions WHERE account = ? AND name = ? AND version = ?",
                (layer.account, layer.name, version),
            )
            return cursor.rowcount > 0

    def list_versions(self, layer: LayerId) -> list[LayerVersion]:
        rows = self._db.fetchall(
            "SELECT record FROM layer_versions WHERE account = ? AND name = ?"
            " ORDER BY version DESC",
            (layer.account, layer.name),
        )
        return [loads(row[0]) for row in rows]

    def list_layers(self, account: str) -> list[LayerId]:
        rows = self._db.fetchall(
            "SELECT DISTINCT name FROM layer_versions WHERE account = ? ORDER BY name",
            (account,),
        )
        return [LayerId(account, str(row[0])) for row in rows]

    def code_references(self) -> set[str]:
        rows = self._db.fetchall("SELECT DISTINCT code_sha256 FROM layer_versions")
        return {str(row[0]) for row in rows}
