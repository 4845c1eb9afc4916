"""The SQLite backend of ``EventSourceMappingStore`` (contract in ``store.base``).

One row of ``event_source_mappings`` per mapping (schema migration 6): the UUID, the function
name and the event source ARN as columns to look up by, the whole record as JSON
(``store.mapping_codec``). The rows do not reference ``functions``: a mapping outlives its
function, as on AWS.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from strato.domain.event_source_mappings import EventSourceMapping
from strato.errors import AlreadyExistsError, NotFoundError
from strato.store.mapping_codec import decode_mapping, encode_mapping
from strato.store.sqlite_db import SqliteDatabase


class SqliteEventSourceMappingStore:
    def __init__(self, path: Path) -> None:
        self._db = SqliteDatabase(path)

    def close(self) -> None:
        """Close the database; legal once no other thread uses the store. Idempotent."""
        self._db.close()

    def create_mapping(self, mapping: EventSourceMapping) -> None:
        record = encode_mapping(mapping)
        with self._db.transaction() as conn:
            try:
                conn.execute(
                    "INSERT INTO event_source_mappings (uuid, function_name, event_source_arn,"
                    " record) VALUES (?, ?, ?, ?)",
                    (mapping.uuid, mapping.function_name, mapping.event_source_arn, record),
                )
            except sqlite3.IntegrityError as e:
                raise AlreadyExistsError(f"event source mapping {mapping.uuid} exists") from e

    def get_mapping(self, uuid: str) -> EventSourceMapping | None:
        rows = self._db.fetchall("SELECT record FROM event_source_mappings WHERE uuid = ?", (uuid,))
        return decode_mapping(str(rows[0][0])) if rows else None

    def put_mapping(self, mapping: EventSourceMapping) -> None:
        record = encode_mapping(mapping)
        with self._db.transaction() as conn:
            updated = conn.execute(
                "UPDATE event_source_mappings SET function_name = ?, event_source_arn = ?,"
                " record = ? WHERE uuid = ?",
                (mapping.function_name, mapping.event_source_arn, record, mapping.uuid),
            ).rowcount
        if updated != 1:
            raise NotFoundError(f"no event source mapping {mapping.uuid}")

    def delete_mapping(self, uuid: str) -> bool:
        with self._db.transaction() as conn:
            deleted = conn.execute("DELETE FROM event_source_mappings WHERE uuid = ?", (uuid,)).rowcount
        return deleted == 1

    def list_mappings(self, *, function_name: str | None = None,
                      event_source_arn: str | None = None, after: str | None = None,
                      limit: int | None = None) -> list[EventSourceMapping]:
        if limit is not None and limit < 1:
            raise ValueError("limit must be at least 1")
        conditions = (("function_name = ?", function_name),
                      ("event_source_arn = ?", event_source_arn), ("uuid > ?", after))
        clauses = [sql for sql, value in conditions if value is not None]
        params: list[object] = [value for _, value in conditions if value is not None]
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        tail = " LIMIT ?" if limit is not None else ""
        if limit is not None:
            params.append(limit)
        rows = self._db.fetchall(
            f"SELECT record FROM event_source_mappings{where} ORDER BY uuid{tail}", params
        )
        return [decode_mapping(str(row[0])) for row in rows]
