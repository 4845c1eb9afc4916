"""The SQLite backend of ``FunctionUrlConfigStore`` (contract in ``store.url_base``), in a
file of its own (``urls.db`` in the data dir, with its own migrations).

One row per (function, qualifier) (``''`` is the unqualified function), the configuration as
JSON (``store.url_codec``) beside its URL id, which is unique. With no foreign key to the
functions (another file), the function URL service deletes a function's rows when it goes.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from strato.domain.function_urls import FunctionUrlConfig
from strato.errors import AlreadyExistsError, NotFoundError, StoreError
from strato.store.sqlite_db import SqliteDatabase
from strato.store.url_codec import decode_config, encode_config

#: Statements of each migration of ``urls.db``, in order. Never edit a released entry.
URL_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (  # 1: function URL configurations
        """CREATE TABLE function_url_configs (
            function_name TEXT NOT NULL,
            qualifier TEXT NOT NULL,
            url_id TEXT NOT NULL UNIQUE,
            record TEXT NOT NULL,
            PRIMARY KEY (function_name, qualifier)
        ) WITHOUT ROWID""",
    ),
)


def _key(qualifier: str | None) -> str:
    return qualifier or ""


class SqliteFunctionUrlConfigStore:
    """Safe to use from several threads (``SqliteDatabase`` gives each its connection)."""

    def __init__(self, path: Path) -> None:
        self._db = SqliteDatabase(path, migrations=URL_MIGRATIONS)

    def close(self) -> None:
        """Close the database; legal once no other thread uses the store. Idempotent."""
        self._db.close()

    def create_config(self, config: FunctionUrlConfig) -> None:
        try:
            with self._db.transaction() as conn:
                conn.execute(
                    "INSERT INTO function_url_configs (function_name, qualifier, url_id, record)"
                    " VALUES (?, ?, ?, ?)",
                    (config.function_name, _key(config.qualifier), config.url_id,
                     json.dumps(encode_config(config))),
                )
        except StoreError as e:
            if isinstance(e.__cause__, sqlite3.IntegrityError):
                raise AlreadyExistsError(
                    f"{config.function_name} {config.qualifier or ''} has a URL") from e
            raise

    def update_config(self, config: FunctionUrlConfig) -> None:
        with self._db.transaction() as conn:
            updated = conn.execute(
                "UPDATE function_url_configs SET url_id = ?, record = ?"
                " WHERE function_name = ? AND qualifier = ?",
                (config.url_id, json.dumps(encode_config(config)), config.function_name,
                 _key(config.qualifier)),
            ).rowcount
        if updated != 1:
            raise NotFoundError(f"{config.function_name} {config.qualifier or ''} has no URL")

    def get_config(self, function_name: str, qualifier: str | None) -> FunctionUrlConfig | None:
        rows = self._db.fetchall(
            "SELECT record FROM function_url_configs WHERE function_name = ? AND qualifier = ?",
            (function_name, _key(qualifier)),
        )
        return decode_config(json.loads(rows[0][0])) if rows else None

    def list_configs(self, function_name: str | None = None) -> list[FunctionUrlConfig]:
        if function_name is None:
            rows = self._db.fetchall(
                "SELECT record FROM function_url_configs ORDER BY function_name, qualifier")
        else:
            rows = self._db.fetchall(
                "SELECT record FROM function_url_configs WHERE function_name = ?"
                " ORDER BY qualifier", (function_name,))
        return [decode_config(json.loads(row[0])) for row in rows]

    def delete_config(self, function_name: str, qualifier: str | None) -> bool:
        with self._db.transaction() as conn:
            return conn.execute(
                "DELETE FROM function_url_configs WHERE function_name = ? AND qualifier = ?",
                (function_name, _key(qualifier)),
            ).rowcount == 1

    def delete_configs(self, function_name: str) -> None:
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM function_url_configs WHERE function_name = ?",
                         (function_name,))
