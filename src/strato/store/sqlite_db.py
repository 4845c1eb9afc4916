"""One SQLite database file: its connections, its pragmas and its schema migrations.

Thread safety: one connection per thread. Each thread that touches the database gets its own
``sqlite3.Connection`` (kept in a ``threading.local``), so no Python lock is held across a
query. WAL mode lets readers run while a writer commits; writers are serialised by SQLite's
own lock, waited on for up to ``busy_timeout``. Every write runs in ``BEGIN IMMEDIATE``, which
takes the write lock up front, so a transaction never fails half way when upgrading a read lock.
A connection lives until ``close()``, even if its thread ends: strato's store users are a few
long-lived threads (control plane, log writer), not a thread per request.

The schema is an ordered list of migrations (``MIGRATIONS``); migration *n* brings the
database to schema version *n*. Every store of strato shares the list, so one file can hold
them all, and a later change appends a migration instead of editing an old one.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from strato.errors import StoreError

#: Statements of each migration, in order. Never edit a released entry: append a new one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (  # 1: functions and their versions ($LATEST now; published versions later)
        "CREATE TABLE functions (name TEXT PRIMARY KEY NOT NULL) WITHOUT ROWID",
        """CREATE TABLE function_versions (
            name TEXT NOT NULL REFERENCES functions (name) ON DELETE CASCADE,
            version TEXT NOT NULL,
            revision_id TEXT NOT NULL,
            code_sha256 TEXT NOT NULL,
            record TEXT NOT NULL,
            PRIMARY KEY (name, version)
        ) WITHOUT ROWID""",
    ),
    (  # 2: function logs; AUTOINCREMENT so that a position is never reused as a cursor
        """CREATE TABLE log_events (
            position INTEGER PRIMARY KEY AUTOINCREMENT,
            log_group TEXT NOT NULL,
            log_stream TEXT NOT NULL,
            timestamp_ms INTEGER NOT NULL,
            ingestion_ms INTEGER NOT NULL,
            message TEXT NOT NULL
        )""",
        "CREATE INDEX log_events_by_group ON log_events (log_group, position)",
        "CREATE INDEX log_events_by_stream ON log_events (log_group, log_stream)",
    ),
    (  # 3: resource-based policies, one per (function, qualifier); '' is the unqualified one
        """CREATE TABLE function_policies (
            function_name TEXT NOT NULL REFERENCES functions (name) ON DELETE CASCADE,
            qualifier TEXT NOT NULL,
            revision_id TEXT NOT NULL,
            statements TEXT NOT NULL,
            PRIMARY KEY (function_name, qualifier)
        ) WITHOUT ROWID""",
    ),
    (  # 4: published versions' numbering, tags, reserved concurrency, aliases, provisioned
        "ALTER TABLE functions ADD COLUMN last_version INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE functions ADD COLUMN tags TEXT NOT NULL DEFAULT '{}'",
        "ALTER TABLE functions ADD COLUMN reserved_concurrency INTEGER"
        " CHECK (reserved_concurrency >= 0)",
        # Numbers are never reused: start after any published row already in the file.
        """UPDATE functions SET last_version = (
            SELECT COALESCE(MAX(CAST(version AS INTEGER)), 0) FROM function_versions
            WHERE function_versions.name = functions.name AND version != '$LATEST'
        )""",
        """CREATE TABLE function_aliases (
            function_name TEXT NOT NULL REFERENCES functions (name) ON DELETE CASCADE,
            name TEXT NOT NULL,
            revision_id TEXT NOT NULL,
            record TEXT NOT NULL,
            PRIMARY KEY (function_name, name)
        ) WITHOUT ROWID""",
        """CREATE TABLE provisioned_concurrency (
            function_name TEXT NOT NULL REFERENCES functions (name) ON DELETE CASCADE,
            qualifier TEXT NOT NULL,
            requested INTEGER NOT NULL,
            last_modified TEXT NOT NULL,
            PRIMARY KEY (function_name, qualifier)
        ) WITHOUT ROWID""",
    ),
    (  # 5: asynchronous invocation settings (FunctionEventInvokeConfig), one per qualifier
        """CREATE TABLE event_invoke_configs (
            function_name TEXT NOT NULL REFERENCES functions (name) ON DELETE CASCADE,
            qualifier TEXT NOT NULL,
            record TEXT NOT NULL,
            PRIMARY KEY (function_name, qualifier)
        ) WITHOUT ROWID""",
    ),
    (  # 6: event source mappings (they outlive their function, as on AWS)
        """CREATE TABLE event_source_mappings (
            uuid TEXT PRIMARY KEY NOT NULL,
            function_name TEXT NOT NULL,
            event_source_arn TEXT NOT NULL,
            record TEXT NOT NULL
        ) WITHOUT ROWID""",
        "CREATE INDEX event_source_mappings_by_function ON event_source_mappings (function_name)",
    ),
)

BUSY_TIMEOUT_MS = 5_000


class SqliteDatabase:
    """A SQLite file in WAL mode, migrated to the newest schema when opened.

    Legal from any thread until ``close()``; ``close()`` must be called once no other thread
    is using the database. Errors of SQLite surface as StoreError.
    """

    def __init__(
        self,
        path: Path,
        *,
        migrations: Sequence[Sequence[str]] = MIGRATIONS,
        busy_timeout_ms: int = BUSY_TIMEOUT_MS,
        synchronous: str = "NORMAL",
    ) -> None:
        """``synchronous`` is SQLite's setting for every connection: ``NORMAL`` (a commit
        survives a crash of the process, the last ones may not survive a power loss) or
        ``FULL`` (every commit is on disk before it returns)."""
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")
        self.path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._synchronous = synchronous
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._closed = False
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._migrate(migrations)
        except BaseException:
            self.close()
            raise

    def connection(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use (autocommit: no implicit BEGIN)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if self._closed:
            raise StoreError(f"database {self.path} is closed")
        if conn is None:
            conn = self._open()
            self._local.conn = conn
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run the body in ``BEGIN IMMEDIATE``; commit if it returns, roll back if it raises."""
        conn = self.connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            raise StoreError(f"could not start a transaction on {self.path}: {e}") from e
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException as e:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(e, sqlite3.Error):
                raise StoreError(f"write to {self.path} failed: {e}") from e
            raise

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Rows of one read-only statement (each statement sees one consistent snapshot)."""
        try:
            return self.connection().execute(sql, params).fetchall()
        except sqlite3.Error as e:
            raise StoreError(f"read from {self.path} failed: {e}") from e

    def schema_version(self) -> int:
        rows = self.fetchall("SELECT COALESCE(MAX(version), 0) FROM schema_version")
        return int(rows[0][0])

    def close(self) -> None:
        """Close every connection this object opened. Idempotent."""
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()

    def _open(self) -> sqlite3.Connection:
        try:
            # check_same_thread=False only so that close() may close it from another thread;
            # otherwise each connection is used by the thread that opened it.
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as e:
            raise StoreError(f"could not open {self.path}: {e}") from e
        if str(mode).lower() != "wal":
            conn.close()
            raise StoreError(f"{self.path} cannot use WAL mode (journal_mode is {mode})")
        with self._lock:
            if self._closed:
                conn.close()
                raise StoreError(f"database {self.path} is closed")
            self._connections.append(conn)
        return conn

    def _migrate(self, migrations: Sequence[Sequence[str]]) -> None:
        """Apply the migrations this file lacks, all in one transaction (so concurrent openers
        of a fresh file cannot both apply one). Idempotent."""
        with self.transaction() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version ("
                " version INTEGER PRIMARY KEY NOT NULL, applied_ms INTEGER NOT NULL)"
            )
            row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()
            current = int(row[0])
            if current > len(migrations):
                raise StoreError(
                    f"{self.path} has schema version {current}, newer than the "
                    f"{len(migrations)} this strato knows; upgrade strato"
                )
            for version, statements in enumerate(migrations, start=1):
                if version <= current:
                    continue
                for statement in statements:
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_version (version, applied_ms) VALUES (?, ?)",
                    (version, time.time_ns() // 1_000_000),
                )
