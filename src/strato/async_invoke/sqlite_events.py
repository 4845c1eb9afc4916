"""The SQLite ``EventStore``: ``events.db`` in the data dir, apart from the control plane's
``state.db`` so that a high rate of events does not contend with it.

One row per event in ``events`` (its payload, state, counters, lease and last outcome) and one
per pending delivery in ``deliveries``. Commits are ``synchronous = FULL``: an accepted event
is on disk before its caller hears 202. Waiting events are found through a partial index on
(function, due time), leases through one on their expiry, so that neither grows with the
number of finished events.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from strato.async_invoke.events import (
    MAX_CLAIM_BYTES,
    AttemptResult,
    ClaimedDelivery,
    ClaimedEvent,
    Delivery,
    EventState,
    LedgerEntry,
    NewEvent,
    Settlement,
)
from strato.store.sqlite_db import SqliteDatabase

T = TypeVar("T")

#: The schema of events.db. Never edit a released entry: append a new one.
EVENT_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (  # 1: events and their deliveries
        """CREATE TABLE events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            request_id TEXT NOT NULL,
            function_name TEXT NOT NULL,
            qualifier TEXT,
            region TEXT NOT NULL,
            payload BLOB NOT NULL,
            state TEXT NOT NULL,
            accepted_at REAL NOT NULL,
            next_attempt_at REAL,
            invocations INTEGER NOT NULL DEFAULT 0,
            claims INTEGER NOT NULL DEFAULT 0,
            throttles INTEGER NOT NULL DEFAULT 0,
            generation INTEGER NOT NULL DEFAULT 0,
            lease_expires_at REAL,
            finished_at REAL,
            condition TEXT,
            last_error TEXT,
            result_version TEXT,
            result_error TEXT,
            result_status INTEGER,
            result_payload BLOB
        )""",
        "CREATE INDEX events_due ON events (function_name, next_attempt_at)"
        " WHERE state IN ('queued', 'retrying')",
        "CREATE INDEX events_leased ON events (lease_expires_at) WHERE state = 'in_flight'",
        "CREATE INDEX events_by_function ON events (function_name, seq)",
        "CREATE INDEX events_finished ON events (finished_at)"
        " WHERE state IN ('succeeded', 'failed')",
        """CREATE TABLE deliveries (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            event_seq INTEGER NOT NULL,
            request_id TEXT NOT NULL,
            target_arn TEXT NOT NULL,
            body TEXT NOT NULL,
            attributes TEXT,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            generation INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            next_attempt_at REAL,
            lease_expires_at REAL,
            last_error TEXT
        )""",
        "CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state = 'pending'",
        "CREATE INDEX deliveries_leased ON deliveries (lease_expires_at)"
        " WHERE state = 'in_flight'",
    ),
)

_WAITING = "state IN ('queued', 'retrying')"
_INSERT = (
    "INSERT INTO events (request_id, function_name, qualifier, region, payload, state,"
    " accepted_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, 'queued', ?, ?)"
)
_LEDGER_COLUMNS = (
    "seq, request_id, function_name, qualifier, state, invocations, claims, accepted_at,"
    " next_attempt_at, finished_at, condition, last_error"
)


class SqliteEventTransaction:
    """The ``EventTransaction`` of one open SQLite transaction (``SqliteEventStore.atomically``)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._savepoints = 0

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        self._savepoints += 1
        name = f"s{self._savepoints}"
        self._conn.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            self._conn.execute(f"ROLLBACK TO {name}")
            self._conn.execute(f"RELEASE {name}")
            raise
        self._conn.execute(f"RELEASE {name}")

    # events ---------------------------------------------------------------------------
    def insert(self, events: Sequence[NewEvent]) -> None:
        self._conn.executemany(_INSERT, [
            (e.request_id, e.function_name, e.qualifier, e.region, e.payload, e.accepted_at,
             e.accepted_at) for e in events
        ])

    def claim(self, function_name: str, limit: int, *, now: float, lease_expires_at: float,
              max_bytes: int = MAX_CLAIM_BYTES) -> list[ClaimedEvent]:
        # The payloads claimed (before each one) stay under max_bytes: the first always fits.
        rows = self._conn.execute(
            "UPDATE events SET state = 'in_flight', generation = generation + 1,"
            " claims = claims + 1, invocations = invocations + 1, lease_expires_at = ?,"
            " next_attempt_at = NULL"
            " WHERE seq IN (SELECT seq FROM (SELECT seq, SUM(length(payload)) OVER"
            " (ORDER BY next_attempt_at, seq) - length(payload) AS before FROM events"
            " WHERE function_name = ? AND " + _WAITING + " AND next_attempt_at <= ?"
            " ORDER BY next_attempt_at, seq LIMIT ?) WHERE before < ?)"
            " RETURNING seq, generation, request_id, qualifier, region, payload, accepted_at,"
            " invocations, throttles, result_version, result_error, result_status,"
            " result_payload",
            (lease_expires_at, function_name, now, limit, max_bytes),
        ).fetchall()
        claimed = [
            ClaimedEvent(
                seq=row[0], generation=row[1],
                event=NewEvent(row[2], function_name, row[3], row[4], bytes(row[5]), row[6]),
                invocations=row[7] - 1, throttles=row[8], lease_expires_at=lease_expires_at,
                last_result=None if row[9] is None else AttemptResult(
                    row[9], bytes(row[12] or b""), row[10], row[11] or 200),
            )
            for row in rows
        ]
        claimed.sort(key=lambda c: c.seq)
        return claimed

    def next_due(self, function_name: str) -> float | None:
        row = self._conn.execute(
            "SELECT MIN(next_attempt_at) FROM events WHERE function_name = ? AND " + _WAITING,
            (function_name,),
        ).fetchone()
        return None if row[0] is None else float(row[0])

    def waiting_functions(self) -> list[str]:
        rows = self._conn.execute(
            "SELECT DISTINCT function_name FROM events WHERE " + _WAITING).fetchall()
        return [row[0] for row in rows]

    def settle(self, settlement: Settlement) -> bool:
        s = settlement
        finished = s.state in (EventState.SUCCEEDED, EventState.FAILED)
        result = s.last_result
        cursor = self._conn.execute(
            "UPDATE events SET state = ?, lease_expires_at = NULL, next_attempt_at = ?,"
            " finished_at = ?, invocations = invocations - ?, throttles = ?,"
            " condition = ?, last_error = COALESCE(?, last_error),"
            " result_version = COALESCE(?, result_version),"
            " result_error = CASE WHEN ? THEN ? ELSE result_error END,"
            " result_status = COALESCE(?, result_status),"
            " result_payload = COALESCE(?, result_payload),"
            # A succeeded event is never run again: its payload need not be kept.
            " payload = CASE WHEN ? THEN x'' ELSE payload END"
            " WHERE seq = ? AND generation = ? AND state = 'in_flight'",
            (
                s.state.value, s.next_attempt_at, s.now if finished else None,
                0 if s.invoked else 1, s.throttles, s.condition, s.last_error,
                None if result is None else result.executed_version,
                result is not None, None if result is None else result.function_error,
                None if result is None else result.status_code,
                None if result is None else result.payload,
                s.state is EventState.SUCCEEDED, s.seq, s.generation,
            ),
        )
        if cursor.rowcount != 1:
            return False
        if s.deliveries:
            self._conn.executemany(
                "INSERT INTO deliveries (event_seq, request_id, target_arn, body, attributes,"
                " state, created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)",
                [(s.seq, d.request_id, d.target_arn, d.body,
                  None if d.attributes is None else json.dumps(d.attributes), s.now, s.now)
                 for d in s.deliveries],
            )
        return True

    def expire_leases(self, now: float) -> list[str]:
        rows = self._conn.execute(
            "UPDATE events SET state = CASE WHEN invocations > 0 THEN 'retrying' ELSE 'queued'"
            " END, lease_expires_at = NULL, next_attempt_at = ?"
            " WHERE state = 'in_flight' AND lease_expires_at <= ? RETURNING function_name",
            (now, now),
        ).fetchall()
        self._conn.execute(
            "UPDATE deliveries SET state = 'pending', lease_expires_at = NULL, next_attempt_at = ?"
            " WHERE state = 'in_flight' AND lease_expires_at <= ?", (now, now))
        return sorted({row[0] for row in rows})

    def release_leases(self, now: float) -> int:
        cursor = self._conn.execute(
            "UPDATE events SET state = CASE WHEN invocations > 0 THEN 'retrying' ELSE 'queued'"
            " END, lease_expires_at = NULL, next_attempt_at = ? WHERE state = 'in_flight'",
            (now,),
        )
        self._conn.execute(
            "UPDATE deliveries SET state = 'pending', lease_expires_at = NULL, next_attempt_at = ?"
            " WHERE state = 'in_flight'", (now,))
        return cursor.rowcount

    def redrive(self, function_name: str, *, now: float, qualifier: str | None) -> int:
        cursor = self._conn.execute(
            "UPDATE events SET state = 'queued', accepted_at = ?, next_attempt_at = ?,"
            " invocations = 0, throttles = 0, finished_at = NULL, condition = NULL,"
            " last_error = NULL, result_version = NULL, result_error = NULL,"
            " result_status = NULL, result_payload = NULL, qualifier = COALESCE(?, qualifier)"
            " WHERE function_name = ? AND state = 'failed'",
            (now, now, qualifier, function_name),
        )
        return cursor.rowcount

    def prune(self, *, succeeded_before: float, failed_before: float, limit: int) -> int:
        cursor = self._conn.execute(
            "DELETE FROM events WHERE seq IN (SELECT seq FROM events"
            " WHERE state IN ('succeeded', 'failed') AND finished_at < ?"
            " AND ((state = 'succeeded' AND finished_at < ?) OR (state = 'failed' AND finished_at < ?))"
            " LIMIT ?)",
            (max(succeeded_before, failed_before), succeeded_before, failed_before, limit),
        )
        return cursor.rowcount

    # deliveries -----------------------------------------------------------------------
    def claim_deliveries(self, limit: int, *, now: float,
                         lease_expires_at: float) -> list[ClaimedDelivery]:
        rows = self._conn.execute(
            "UPDATE deliveries SET state = 'in_flight', generation = generation + 1,"
            " attempts = attempts + 1, lease_expires_at = ?"
            " WHERE id IN (SELECT id FROM deliveries WHERE state = 'pending'"
            " AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?)"
            " RETURNING id, generation, target_arn, body, request_id, attributes, attempts,"
            " created_at",
            (lease_expires_at, now, limit),
        ).fetchall()
        claimed = [
            ClaimedDelivery(
                delivery_id=row[0], generation=row[1],
                delivery=Delivery(row[2], row[3], row[4],
                                  None if row[5] is None else json.loads(row[5])),
                attempts=row[6], created_at=row[7],
            )
            for row in rows
        ]
        claimed.sort(key=lambda c: c.delivery_id)
        return claimed

    def next_delivery_due(self) -> float | None:
        row = self._conn.execute(
            "SELECT MIN(next_attempt_at) FROM deliveries WHERE state = 'pending'").fetchone()
        return None if row[0] is None else float(row[0])

    def finish_delivery(self, delivery_id: int, generation: int,
                        event: NewEvent | None = None) -> bool:
        cursor = self._conn.execute(
            "DELETE FROM deliveries WHERE id = ? AND generation = ? AND state = 'in_flight'",
            (delivery_id, generation),
        )
        if cursor.rowcount != 1:
            return False
        if event is not None:
            self.insert([event])
        return True

    def retry_delivery(self, delivery_id: int, generation: int, *, next_attempt_at: float | None,
                       error: str) -> bool:
        cursor = self._conn.execute(
            "UPDATE deliveries SET state = ?, next_attempt_at = ?, lease_expires_at = NULL,"
            " last_error = ? WHERE id = ? AND generation = ? AND state = 'in_flight'",
            ("pending" if next_attempt_at is not None else "abandoned", next_attempt_at, error,
             delivery_id, generation),
        )
        return cursor.rowcount == 1


class SqliteEventStore:
    """See the module docstring. ``atomically`` is meant for one writer thread (the
    group-commit writer); reads (``ledger``, ``counts``) may run on any other."""

    def __init__(self, path: Path) -> None:
        self._db = SqliteDatabase(path, migrations=EVENT_MIGRATIONS, synchronous="FULL")

    def atomically(self, work: Callable[[SqliteEventTransaction], T]) -> T:
        with self._db.transaction() as conn:
            return work(SqliteEventTransaction(conn))

    def ledger(self, *, function_name: str | None, states: Sequence[EventState] | None,
               after_seq: int, limit: int) -> list[LedgerEntry]:
        where = ["seq > ?"]
        params: list[Any] = [after_seq]
        if function_name is not None:
            where.append("function_name = ?")
            params.append(function_name)
        if states:
            where.append(f"state IN ({', '.join('?' for _ in states)})")
            params += [s.value for s in states]
        rows = self._db.fetchall(
            f"SELECT {_LEDGER_COLUMNS} FROM events WHERE {' AND '.join(where)}"
            " ORDER BY seq LIMIT ?", [*params, limit])
        return [
            LedgerEntry(seq=r[0], request_id=r[1], function_name=r[2], qualifier=r[3],
                        state=EventState(r[4]), attempts=r[5], claims=r[6], accepted_at=r[7],
                        next_attempt_at=r[8], finished_at=r[9], condition=r[10],
                        last_error=r[11])
            for r in rows
        ]

    def counts(self, function_name: str | None) -> dict[EventState, int]:
        if function_name is None:
            rows = self._db.fetchall("SELECT state, COUNT(*) FROM events GROUP BY state")
        else:
            rows = self._db.fetchall(
                "SELECT state, COUNT(*) FROM events WHERE function_name = ? GROUP BY state",
                (function_name,))
        return {EventState(state): int(count) for state, count in rows}

    def close(self) -> None:
        self._db.close()
