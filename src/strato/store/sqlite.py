"""The SQLite backend of ``FunctionStore`` and ``LogStore`` (contracts in ``store.base``).
Aliases and provisioned concurrency are in ``sqlite_aliases``, policies in ``sqlite_policies``.

Each store owns a ``SqliteDatabase`` (connections, pragmas, migrations: see ``sqlite_db``) on
the file it is given; both stores may be given the same file. Thread safety is that of
``SqliteDatabase``: one connection per thread, writes in ``BEGIN IMMEDIATE`` transactions.

Environment variables are sealed in every stored record (see ``store.secretbox``, which also
says why they are opened on read); no row holds them in plaintext.
"""

from __future__ import annotations

import functools
import itertools
import json
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from strato.domain.models import LATEST, FunctionVersion
from strato.errors import (
    AlreadyExistsError,
    NotFoundError,
    RevisionMismatchError,
    StoreError,
)
from strato.store.base import LogEvent, LogStreamInfo, StoredLogEvent
from strato.store.codec import (
    PLAINTEXT_FORMAT,
    decode_function_version,
    encode_function_version,
    published_number,
)
from strato.store.secretbox import MASTER_KEY_FILE, SecretBox, master_key
from strato.store.sqlite_db import SqliteDatabase


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class SqliteFunctionStore:
    """Functions as rows of ``function_versions`` keyed (name, version), the record as JSON;
    ``$LATEST`` and published versions alike.

    ``revision_id`` and the code's sha256 are also columns, so that compare-and-swap is one
    ``UPDATE ... WHERE revision_id = ?`` and ``code_references`` needs no JSON parsing. The
    ``functions`` row holds what belongs to the function rather than to a version: the last
    version number ever published, the tags (a JSON object) and the reserved concurrency (NULL
    for none). Every other table's rows reference it ``ON DELETE CASCADE``, so deleting the
    row deletes the whole function in one statement.

    ``box`` seals and opens environment variables; without one, the store uses the master key
    beside the database file (``master.key``, created if absent). Opening the store seals the
    records an older strato wrote in plaintext (``_seal_plaintext_records``). Raises
    ConfigError if the master key is unusable.
    """

    def __init__(self, path: Path, *, box: SecretBox | None = None) -> None:
        self._db = SqliteDatabase(path)
        try:
            self._box = box or SecretBox(master_key(path.parent / MASTER_KEY_FILE))
            self._seal_plaintext_records()
        except BaseException:
            self._db.close()
            raise

    def close(self) -> None:
        """Close the database; legal once no other thread uses the store. Idempotent."""
        self._db.close()

    def create_function(self, latest: FunctionVersion) -> None:
        if latest.version != LATEST:
            raise ValueError(f"a new function starts at {LATEST}, not {latest.version}")
        row = _version_row(latest, self._box)
        with self._db.transaction() as conn:
            try:
                conn.execute("INSERT INTO functions (name) VALUES (?)", (latest.name,))
            except sqlite3.IntegrityError as e:
                raise AlreadyExistsError(f"function {latest.name} exists") from e
            conn.execute(
                "INSERT INTO function_versions (name, version, revision_id, code_sha256, record)"
                " VALUES (?, ?, ?, ?, ?)",
                row,
            )

    def get_version(self, name: str, version: str) -> FunctionVersion | None:
        rows = self._db.fetchall(
            "SELECT record FROM function_versions WHERE name = ? AND version = ?",
            (name, version),
        )
        return _decode(rows[0][0], self._box) if rows else None

    def put_version(self, record: FunctionVersion, *, expected_revision: str) -> None:
        name, version, revision_id, code_sha256, text = _version_row(record, self._box)
        with self._db.transaction() as conn:
            updated = conn.execute(
                "UPDATE function_versions SET revision_id = ?, code_sha256 = ?, record = ?"
                " WHERE name = ? AND version = ? AND revision_id = ?",
                (revision_id, code_sha256, text, name, version, expected_revision),
            ).rowcount
            if updated == 1:
                return
            stored = conn.execute(
                "SELECT revision_id FROM function_versions WHERE name = ? AND version = ?",
                (name, version),
            ).fetchone()
        if stored is None:
            raise NotFoundError(f"function {name} has no version {version}")
        raise RevisionMismatchError(
            f"{name}:{version} is at revision {stored[0]}, not {expected_revision}"
        )

    def list_latest(self, *, after: str | None, limit: int) -> list[FunctionVersion]:
        """Raises ValueError unless ``limit`` >= 1."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        rows = self._db.fetchall(
            "SELECT record FROM function_versions WHERE version = ? AND name > ?"
            " ORDER BY name LIMIT ?",
            (LATEST, after or "", limit),
        )
        return [_decode(row[0], self._box) for row in rows]

    def delete_function(self, name: str) -> bool:
        with self._db.transaction() as conn:
            # function_versions rows go with it: ON DELETE CASCADE (foreign_keys is on).
            deleted = conn.execute("DELETE FROM functions WHERE name = ?", (name,)).rowcount
        return deleted > 0

    def code_references(self) -> set[str]:
        rows = self._db.fetchall("SELECT DISTINCT code_sha256 FROM function_versions")
        # The packages of the layers a version uses are kept with it (in its record).
        layer_rows = self._db.fetchall(
            "SELECT DISTINCT json_extract(layer.value, '$.sha256_hex') FROM function_versions,"
            " json_each(function_versions.record, '$.layers') AS layer"
        )
        return {str(row[0]) for row in rows} | {str(row[0]) for row in layer_rows}

    # published versions ---------------------------------------------------------------
    def last_version_number(self, name: str) -> int:
        rows = self._db.fetchall("SELECT last_version FROM functions WHERE name = ?", (name,))
        if not rows:
            raise NotFoundError(f"function {name} does not exist")
        return int(rows[0][0])

    def publish_version(self, record: FunctionVersion) -> None:
        """One ``BEGIN IMMEDIATE`` transaction reads the last number, inserts the version and
        bumps the number, so that concurrent publishers of one function each get their own
        number or AlreadyExistsError."""
        number = published_number(record.version)
        row = _version_row(record, self._box)
        with self._db.transaction() as conn:
            found = conn.execute(
                "SELECT last_version FROM functions WHERE name = ?", (record.name,)
            ).fetchone()
            if found is None:
                raise NotFoundError(f"function {record.name} does not exist")
            if number != int(found[0]) + 1:
                raise AlreadyExistsError(
                    f"{record.name} is at version {found[0]}: {number} is not the next one"
                )
            try:
                conn.execute(
                    "INSERT INTO function_versions"
                    " (name, version, revision_id, code_sha256, record) VALUES (?, ?, ?, ?, ?)",
                    row,
                )
            except sqlite3.IntegrityError as e:
                raise AlreadyExistsError(f"{record.name}:{record.version} exists") from e
            conn.execute(
                "UPDATE functions SET last_version = ? WHERE name = ?", (number, record.name)
            )

    def list_versions(self, name: str, *, after: str | None, limit: int) -> list[FunctionVersion]:
        """Raises ValueError if ``after`` is neither ``$LATEST`` nor a version number."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        sql = "SELECT record FROM function_versions WHERE name = ?"
        params: list[Any] = [name]
        if after is not None:
            sql += " AND version != ? AND CAST(version AS INTEGER) > ?"
            params += [LATEST, 0 if after == LATEST else published_number(after)]
        sql += " ORDER BY version != ?, CAST(version AS INTEGER) LIMIT ?"
        params += [LATEST, limit]
        return [_decode(row[0], self._box) for row in self._db.fetchall(sql, params)]

    def delete_version(self, name: str, version: str) -> bool:
        if version == LATEST:
            raise ValueError(f"{LATEST} is deleted only with its function")
        with self._db.transaction() as conn:
            deleted = conn.execute(
                "DELETE FROM function_versions WHERE name = ? AND version = ?", (name, version)
            ).rowcount
        return deleted > 0

    # tags and reserved concurrency ----------------------------------------------------
    def get_tags(self, name: str) -> dict[str, str]:
        rows = self._db.fetchall("SELECT tags FROM functions WHERE name = ?", (name,))
        return _decode_tags(rows[0][0]) if rows else {}

    def put_tags(self, name: str, tags: Mapping[str, str]) -> None:
        text = json.dumps(dict(tags), separators=(",", ":"), sort_keys=True)
        self._update_function(name, "tags", text)

    def get_reserved_concurrency(self, name: str) -> int | None:
        rows = self._db.fetchall(
            "SELECT reserved_concurrency FROM functions WHERE name = ?", (name,)
        )
        return None if not rows or rows[0][0] is None else int(rows[0][0])

    def put_reserved_concurrency(self, name: str, value: int | None) -> None:
        """Raises ValueError for a negative ``value``."""
        if value is not None and value < 0:
            raise ValueError(f"reserved concurrency must be at least 0, not {value}")
        self._update_function(name, "reserved_concurrency", value)

    def reserved_concurrency(self) -> dict[str, int]:
        rows = self._db.fetchall(
            "SELECT name, reserved_concurrency FROM functions"
            " WHERE reserved_concurrency IS NOT NULL ORDER BY name"
        )
        return {str(name): int(value) for name, value in rows}

    def _update_function(self, name: str, column: str, value: object) -> None:
        """Set one column of the function's row; ``column`` is one of ours, never input.
        Raises NotFoundError if there is no such function."""
        with self._db.transaction() as conn:
            updated = conn.execute(
                f"UPDATE functions SET {column} = ? WHERE name = ?", (value, name)
            ).rowcount
        if updated == 0:
            raise NotFoundError(f"function {name} does not exist")

    def _seal_plaintext_records(self) -> None:
        """Rewrite every record of ``PLAINTEXT_FORMAT`` with its environment sealed, leaving no
        copy of the plaintext in the file. Idempotent, and one scan of the records once done.
        Raises StoreError (and seals nothing) if such a record is corrupt.

        The order survives a crash half way. VACUUM first rebuilds the file without the free
        space where earlier updates left old plaintext (``temp_store`` in memory, so that no
        temporary file holds it); the rewrite then runs with ``secure_delete``, which zeroes
        the cells it frees; the WAL is checkpointed and truncated last. A crash before the
        rewrite commits leaves plaintext records, so the next open does it all again.
        """
        if not self._db.fetchall(_SELECT_OF_FORMAT + " LIMIT 1", (PLAINTEXT_FORMAT,)):
            return
        conn = self._db.connection()
        try:
            [[secure_delete]] = conn.execute("PRAGMA secure_delete").fetchall()
            conn.execute("PRAGMA temp_store = MEMORY")
            conn.execute("PRAGMA secure_delete = ON")
            conn.execute("VACUUM")
            with self._db.transaction():
                rows = conn.execute(_SELECT_OF_FORMAT, (PLAINTEXT_FORMAT,)).fetchall()
                for name, version, text in rows:
                    sealed = _version_row(_decode(text, self._box), self._box)[4]
                    conn.execute(
                        "UPDATE function_versions SET record = ? WHERE name = ? AND version = ?",
                        (sealed, name, version),
                    )
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.execute(f"PRAGMA secure_delete = {int(secure_delete)}")  # as SQLite was built
            conn.execute("PRAGMA temp_store = DEFAULT")
        except sqlite3.Error as e:
            raise StoreError(f"could not seal the plaintext records of {self._db.path}: {e}") from e


#: Rows per INSERT statement (4 parameters each, well within SQLite's 32,766 variables).
_ROWS_PER_INSERT = 500


@functools.lru_cache(maxsize=8)
def _insert_rows(count: int) -> str:
    rows = ", ".join(f"(?{i}, ?{i + 1}, ?{i + 2}, ?1, ?{i + 3})" for i in range(2, 4 * count + 2, 4))
    return ("INSERT INTO log_events (log_group, log_stream, timestamp_ms, ingestion_ms, message)"
            " VALUES " + rows)


class SqliteLogStore:
    """Log events in ``log_events``; a row's autoincrement ``position`` is its cursor.

    ``clock`` gives the ingestion time in epoch milliseconds (the wall clock unless a test
    passes another).
    """

    def __init__(self, path: Path, *, clock: Callable[[], int] = _wall_clock_ms) -> None:
        self._db = SqliteDatabase(path)
        self._clock = clock

    def close(self) -> None:
        """Close the database; legal once no other thread uses the store. Idempotent."""
        self._db.close()

    def append(self, events: Sequence[LogEvent]) -> None:
        """Store ``events`` in one transaction, many rows per statement: the sqlite3 module
        releases and retakes the GIL around every statement it steps, and one statement per
        row made the writer thread and the event loop hand the GIL back and forth (futex
        waits and wake-ups) hundreds of times per batch."""
        if not events:
            return
        ingestion_ms = self._clock()
        with self._db.transaction() as conn:
            for start in range(0, len(events), _ROWS_PER_INSERT):
                chunk = events[start:start + _ROWS_PER_INSERT]
                # ?1 is the ingestion time; each event's four fields follow in order.
                conn.execute(_insert_rows(len(chunk)),
                             [ingestion_ms, *itertools.chain.from_iterable(chunk)])

    def query(
        self,
        group: str,
        *,
        streams: Sequence[str] | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
        after_position: int = 0,
        limit: int = 10_000,
    ) -> list[StoredLogEvent]:
        """Ordered by position (the order of ``append``), so that the last position returned
        is a cursor for the next page. Raises ValueError unless ``limit`` >= 1."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        if streams is not None and not streams:
            return []
        sql = ["SELECT position, log_stream, timestamp_ms, ingestion_ms, message FROM log_events"
               " WHERE log_group = ? AND position > ?"]
        params: list[Any] = [group, after_position]
        if streams is not None:
            sql.append(f" AND log_stream IN ({', '.join('?' * len(streams))})")
            params.extend(streams)
        if start_ms is not None:
            sql.append(" AND timestamp_ms >= ?")
            params.append(start_ms)
        if end_ms is not None:
            sql.append(" AND timestamp_ms < ?")
            params.append(end_ms)
        sql.append(" ORDER BY position LIMIT ?")
        params.append(limit)
        return [
            StoredLogEvent(
                event=LogEvent(group=group, stream=stream, timestamp_ms=ts, message=message),
                ingestion_ms=ingestion_ms,
                position=position,
            )
            for position, stream, ts, ingestion_ms, message in self._db.fetchall(
                "".join(sql), params
            )
        ]

    def streams(self, group: str, *, prefix: str | None = None) -> list[LogStreamInfo]:
        sql = ("SELECT log_stream, MIN(timestamp_ms), MAX(timestamp_ms), MAX(ingestion_ms)"
               " FROM log_events WHERE log_group = ?")
        params: list[Any] = [group]
        if prefix:
            # ">=" lets the (log_group, log_stream) index start at the prefix; substr, unlike
            # LIKE, is case-sensitive and has no wildcards.
            sql += " AND log_stream >= ? AND substr(log_stream, 1, ?) = ?"
            params.extend([prefix, len(prefix), prefix])
        sql += " GROUP BY log_stream ORDER BY log_stream"
        return [
            LogStreamInfo(
                group=group,
                stream=stream,
                first_event_ms=first,
                last_event_ms=last,
                last_ingestion_ms=ingested,
            )
            for stream, first, last, ingested in self._db.fetchall(sql, params)
        ]

    def delete_group(self, group: str) -> None:
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM log_events WHERE log_group = ?", (group,))

    def group_bytes(self, group: str) -> int:
        [[held]] = self._db.fetchall(
            "SELECT total(length(CAST(message AS BLOB))) FROM log_events WHERE log_group = ?",
            (group,))
        return int(held)

    def delete_oldest(self, group: str, at_least: int) -> int:
        freed, last = 0, None
        with self._db.transaction() as conn:
            # Walks the (log_group, position) index from the oldest; stops once enough.
            rows = conn.execute(
                "SELECT position, length(CAST(message AS BLOB)) FROM log_events"
                " WHERE log_group = ? ORDER BY position", (group,))
            try:
                for position, size in rows:
                    freed += size
                    last = position
                    if freed >= at_least:
                        break
            finally:
                rows.close()
            if last is not None:
                conn.execute("DELETE FROM log_events WHERE log_group = ? AND position <= ?",
                             (group, last))
        return freed


#: Rows whose record is of a given format (a record that is not JSON is left to ``_decode``).
_SELECT_OF_FORMAT = (
    "SELECT name, version, record FROM function_versions"
    " WHERE CASE WHEN json_valid(record) THEN json_extract(record, '$.format') END = ?"
)


def _version_row(record: FunctionVersion, box: SecretBox) -> tuple[str, str, str, str, str]:
    text = json.dumps(encode_function_version(record, box), separators=(",", ":"), sort_keys=True)
    return record.name, record.version, record.revision_id, record.code.sha256_hex, text


def _decode_tags(text: object) -> dict[str, str]:
    try:
        tags: object = json.loads(str(text))
    except ValueError as e:
        raise StoreError(f"corrupt tags: {e}") from e
    if not isinstance(tags, dict):
        raise StoreError("corrupt tags: not an object")
    decoded = {key: value for key, value in tags.items()
               if isinstance(key, str) and isinstance(value, str)}
    if len(decoded) != len(tags):
        raise StoreError("corrupt tags: a value is not a string")
    return decoded


def _decode(text: object, box: SecretBox) -> FunctionVersion:
    try:
        data = json.loads(str(text))
    except ValueError as e:
        raise StoreError(f"corrupt function record: {e}") from e
    return decode_function_version(data, box)
