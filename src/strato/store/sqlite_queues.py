"""The SQLite backend of ``QueueStore`` (contract in ``store.queue_base``), in a file of its
own (``queues.db`` in the data dir) so that message traffic never waits on the control
plane's database, nor it on messages.

Tables: ``queues`` (attributes and tags as JSON, the FIFO sequence counter, the last purge);
``messages`` (one row per stored message; ``visible_ms`` is when it can be received next,
``receipt`` the nonce of its current receipt handle, ``receive_count`` how often it was
received); ``deduplication`` (FIFO deduplication ids with their expiry). Messages and
deduplication rows go with their queue (``ON DELETE CASCADE``).

Standard queues deliver visible messages in the order they became visible (index
``(queue, visible_ms)``); FIFO queues walk messages in send order (index ``(queue, id)``).
"""

from __future__ import annotations

import base64
import json
import secrets
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from strato.domain.sqs.delivery import Candidate, plan_delivery
from strato.domain.sqs.queues import (
    Delivery,
    Message,
    MessageAttribute,
    Queue,
    QueueCounts,
    ReceiptHandle,
    Sent,
)
from strato.errors import NotFoundError
from strato.store.queue_base import (
    Deduplication,
    ReceiveOutcome,
    ReceiveParams,
    VisibilityChange,
)
from strato.store.sqlite_db import SqliteDatabase

#: Statements of each migration of ``queues.db``, in order. Never edit a released entry.
QUEUE_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (  # 1: queues, messages, FIFO deduplication
        """CREATE TABLE queues (
            name TEXT PRIMARY KEY NOT NULL,
            attributes TEXT NOT NULL,
            tags TEXT NOT NULL,
            created_ms INTEGER NOT NULL,
            modified_ms INTEGER NOT NULL,
            last_sequence INTEGER NOT NULL DEFAULT 0,
            purged_ms INTEGER
        ) WITHOUT ROWID""",
        """CREATE TABLE messages (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            queue TEXT NOT NULL REFERENCES queues (name) ON DELETE CASCADE,
            message_id TEXT NOT NULL,
            body TEXT NOT NULL,
            md5_of_body TEXT NOT NULL,
            sender_id TEXT NOT NULL,
            sent_ms INTEGER NOT NULL,
            visible_ms INTEGER NOT NULL,
            receive_count INTEGER NOT NULL DEFAULT 0,
            first_receive_ms INTEGER,
            receipt TEXT,
            attributes TEXT,
            md5_of_attributes TEXT,
            system_attributes TEXT,
            md5_of_system_attributes TEXT,
            group_id TEXT,
            deduplication_id TEXT,
            sequence_number TEXT,
            dead_letter_source_arn TEXT
        )""",
        "CREATE INDEX messages_by_visibility ON messages (queue, visible_ms)",
        "CREATE INDEX messages_in_order ON messages (queue, id)",
        """CREATE TABLE deduplication (
            queue TEXT NOT NULL REFERENCES queues (name) ON DELETE CASCADE,
            scope TEXT NOT NULL,
            deduplication_id TEXT NOT NULL,
            message_id TEXT NOT NULL,
            sequence_number TEXT,
            expires_ms INTEGER NOT NULL,
            PRIMARY KEY (queue, scope, deduplication_id)
        ) WITHOUT ROWID""",
        "CREATE INDEX deduplication_by_expiry ON deduplication (queue, expires_ms)",
    ),
)

_MESSAGE_COLUMNS = (
    "id, message_id, body, md5_of_body, sender_id, sent_ms, visible_ms, receive_count,"
    " first_receive_ms, receipt, attributes, md5_of_attributes, system_attributes,"
    " md5_of_system_attributes, group_id, deduplication_id, sequence_number,"
    " dead_letter_source_arn"
)
#: Sequence numbers are this plus the queue's counter: 20 digits, increasing.
_SEQUENCE_BASE = 10**19


def _encode_attributes(attributes: Mapping[str, MessageAttribute]) -> str | None:
    if not attributes:
        return None
    out: dict[str, dict[str, str]] = {}
    for name, attribute in attributes.items():
        value = {"DataType": attribute.data_type}
        if attribute.binary_value is not None:
            value["BinaryValue"] = base64.b64encode(attribute.binary_value).decode("ascii")
        else:
            value["StringValue"] = attribute.string_value or ""
        out[name] = value
    return json.dumps(out, separators=(",", ":"))


def _decode_attributes(text: str | None) -> dict[str, MessageAttribute]:
    if not text:
        return {}
    out: dict[str, MessageAttribute] = {}
    for name, value in json.loads(text).items():
        binary = value.get("BinaryValue")
        out[name] = MessageAttribute(
            value["DataType"],
            string_value=value.get("StringValue"),
            binary_value=base64.b64decode(binary) if binary is not None else None,
        )
    return out


def _queue(row: Sequence[Any]) -> Queue:
    name, attributes, tags, created_ms, modified_ms = row
    return Queue(str(name), json.loads(attributes), int(created_ms), int(modified_ms), json.loads(tags))


def _message(row: Sequence[Any]) -> Message:
    return Message(
        message_id=row[1], body=row[2], md5_of_body=row[3], sender_id=row[4], sent_ms=row[5],
        visible_ms=row[6], attributes=_decode_attributes(row[10]), md5_of_attributes=row[11],
        system_attributes=_decode_attributes(row[12]), md5_of_system_attributes=row[13],
        group_id=row[14], deduplication_id=row[15], sequence_number=row[16],
        dead_letter_source_arn=row[17],
    )


class SqliteQueueStore:
    """Queues and messages in SQLite. Commits are ``synchronous = FULL``: a message SQS has
    acknowledged (sent, moved to a dead-letter queue) survives a power loss, as on SQS."""

    def __init__(self, path: Path) -> None:
        self._db = SqliteDatabase(path, migrations=QUEUE_MIGRATIONS, synchronous="FULL")

    def close(self) -> None:
        """Close the database; legal once no other thread uses the store. Idempotent."""
        self._db.close()

    # queues -------------------------------------------------------------------------
    def create_queue(self, queue: Queue) -> Queue:
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO queues (name, attributes, tags, created_ms, modified_ms)"
                " VALUES (?, ?, ?, ?, ?)",
                (queue.name, json.dumps(dict(queue.attributes)), json.dumps(dict(queue.tags)),
                 queue.created_ms, queue.modified_ms),
            )
            return self._get(conn, queue.name)

    def get_queue(self, name: str) -> Queue | None:
        rows = self._db.fetchall(
            "SELECT name, attributes, tags, created_ms, modified_ms FROM queues WHERE name = ?",
            (name,),
        )
        return _queue(rows[0]) if rows else None

    def list_queues(self, *, prefix: str, after: str | None, limit: int) -> list[Queue]:
        rows = self._db.fetchall(
            "SELECT name, attributes, tags, created_ms, modified_ms FROM queues"
            " WHERE substr(name, 1, ?) = ? AND name > ? ORDER BY name LIMIT ?",
            (len(prefix), prefix, after or "", limit),
        )
        return [_queue(row) for row in rows]

    def update_queue(
        self, name: str, *, modified_ms: int, attributes: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> Queue:
        with self._db.transaction() as conn:
            if attributes is not None:
                conn.execute(
                    "UPDATE queues SET attributes = ?, modified_ms = ? WHERE name = ?",
                    (json.dumps(dict(attributes)), modified_ms, name),
                )
            if tags is not None:
                conn.execute("UPDATE queues SET tags = ? WHERE name = ?",
                             (json.dumps(dict(tags)), name))
            return self._get(conn, name)

    def delete_queue(self, name: str) -> bool:
        with self._db.transaction() as conn:
            return conn.execute("DELETE FROM queues WHERE name = ?", (name,)).rowcount == 1

    @staticmethod
    def _get(conn: sqlite3.Connection, name: str) -> Queue:
        row = conn.execute(
            "SELECT name, attributes, tags, created_ms, modified_ms FROM queues WHERE name = ?",
            (name,),
        ).fetchone()
        if row is None:
            raise NotFoundError(f"queue {name} does not exist")
        return _queue(row)

    @staticmethod
    def _exists(conn: sqlite3.Connection, name: str) -> bool:
        return conn.execute("SELECT 1 FROM queues WHERE name = ?", (name,)).fetchone() is not None

    @staticmethod
    def _next_sequence(conn: sqlite3.Connection, name: str) -> str:
        row = conn.execute(
            "UPDATE queues SET last_sequence = last_sequence + 1 WHERE name = ?"
            " RETURNING last_sequence", (name,),
        ).fetchone()
        return str(_SEQUENCE_BASE + int(row[0]))

    # messages -----------------------------------------------------------------------
    def send(
        self, name: str, messages: Sequence[Message], *, deduplication: Deduplication | None = None
    ) -> list[Sent]:
        sent: list[Sent] = []
        with self._db.transaction() as conn:
            if not self._exists(conn, name):
                raise NotFoundError(f"queue {name} does not exist")
            if deduplication is not None:
                conn.execute("DELETE FROM deduplication WHERE queue = ? AND expires_ms <= ?",
                             (name, deduplication.now_ms))
            for message in messages:
                sequence = None
                if deduplication is not None:
                    scope = (message.group_id or "") if deduplication.by_group else ""
                    original = conn.execute(
                        "SELECT message_id, sequence_number FROM deduplication"
                        " WHERE queue = ? AND scope = ? AND deduplication_id = ? AND expires_ms > ?",
                        (name, scope, message.deduplication_id, deduplication.now_ms),
                    ).fetchone()
                    if original is not None:
                        sent.append(Sent(original[0], original[1], duplicate=True))
                        continue
                    sequence = self._next_sequence(conn, name)
                    conn.execute(
                        "INSERT OR REPLACE INTO deduplication (queue, scope, deduplication_id,"
                        " message_id, sequence_number, expires_ms) VALUES (?, ?, ?, ?, ?, ?)",
                        (name, scope, message.deduplication_id, message.message_id, sequence,
                         deduplication.now_ms + deduplication.window_ms),
                    )
                self._insert(conn, name, message, sequence)
                sent.append(Sent(message.message_id, sequence))
        return sent

    @staticmethod
    def _insert(conn: sqlite3.Connection, name: str, message: Message, sequence: str | None) -> None:
        conn.execute(
            "INSERT INTO messages (queue, message_id, body, md5_of_body, sender_id, sent_ms,"
            " visible_ms, attributes, md5_of_attributes, system_attributes,"
            " md5_of_system_attributes, group_id, deduplication_id, sequence_number)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (name, message.message_id, message.body, message.md5_of_body, message.sender_id,
             message.sent_ms, message.visible_ms, _encode_attributes(message.attributes),
             message.md5_of_attributes, _encode_attributes(message.system_attributes),
             message.md5_of_system_attributes, message.group_id, message.deduplication_id,
             sequence),
        )

    def receive(self, name: str, params: ReceiveParams) -> ReceiveOutcome:
        now = params.now_ms
        with self._db.transaction() as conn:
            if not self._exists(conn, name):
                raise NotFoundError(f"queue {name} does not exist")
            target = params.dead_letter
            if target is not None and (target.queue_name == name
                                       or not self._exists(conn, target.queue_name)):
                target = None  # a missing target moves nothing: messages keep being delivered
            in_flight: set[str] = set()
            if params.fifo:
                in_flight = {str(row[0]) for row in conn.execute(
                    "SELECT DISTINCT group_id FROM messages WHERE queue = ? AND visible_ms > ?"
                    " AND receive_count > 0", (name, now))}
                cursor = conn.execute(
                    "SELECT id, group_id, visible_ms, receive_count, sent_ms FROM messages"
                    " WHERE queue = ? ORDER BY id", (name,))
            else:
                cursor = conn.execute(
                    "SELECT id, group_id, visible_ms, receive_count, sent_ms FROM messages"
                    " WHERE queue = ? AND visible_ms <= ? ORDER BY visible_ms, id", (name, now))
            plan = plan_delivery(
                _candidates(cursor), now_ms=now, max_messages=params.max_messages,
                retention_ms=params.retention_ms, fifo=params.fifo, in_flight_groups=in_flight,
                max_receive_count=target.max_receive_count if target else None,
            )
            cursor.close()
            conn.executemany("DELETE FROM messages WHERE id = ?", [(k,) for k in plan.expire])
            if target is not None:
                for key in plan.dead_letter:
                    self._move(conn, key, target.queue_name, target.source_arn, now)
            deliveries = [self._deliver(conn, name, key, now, params.visibility_timeout_ms)
                          for key in plan.deliver]
        return ReceiveOutcome(deliveries, len(plan.dead_letter) if target else 0)

    def _move(self, conn: sqlite3.Connection, key: int, target: str, source_arn: str, now: int) -> None:
        """Move message ``key`` to queue ``target``: visible there now, its id, body,
        attributes, send time and receive count kept; a FIFO target numbers it anew."""
        sequence = self._next_sequence(conn, target) if self._get(conn, target).fifo else None
        conn.execute(
            "INSERT INTO messages (queue, message_id, body, md5_of_body, sender_id, sent_ms,"
            " visible_ms, receive_count, first_receive_ms, attributes, md5_of_attributes,"
            " system_attributes, md5_of_system_attributes, group_id, deduplication_id,"
            " sequence_number, dead_letter_source_arn)"
            " SELECT ?, message_id, body, md5_of_body, sender_id, sent_ms, ?, receive_count,"
            " first_receive_ms, attributes, md5_of_attributes, system_attributes,"
            " md5_of_system_attributes, group_id, deduplication_id, ?, ?"
            " FROM messages WHERE id = ?",
            (target, now, sequence, source_arn, key),
        )
        conn.execute("DELETE FROM messages WHERE id = ?", (key,))

    @staticmethod
    def _deliver(conn: sqlite3.Connection, name: str, key: int, now: int, visibility_ms: int) -> Delivery:
        nonce = secrets.token_urlsafe(18)
        row = conn.execute(
            "UPDATE messages SET receive_count = receive_count + 1,"
            " first_receive_ms = COALESCE(first_receive_ms, ?), visible_ms = ?, receipt = ?"
            f" WHERE id = ? RETURNING {_MESSAGE_COLUMNS}",
            (now, now + visibility_ms, nonce, key),
        ).fetchone()
        return Delivery(_message(row), ReceiptHandle(name, key, nonce).encode(), int(row[7]), int(row[8]))

    def delete_message(self, name: str, handle: ReceiptHandle) -> bool:
        with self._db.transaction() as conn:
            if not self._exists(conn, name):
                raise NotFoundError(f"queue {name} does not exist")
            return conn.execute(
                "DELETE FROM messages WHERE id = ? AND queue = ? AND receipt = ?",
                (handle.key, name, handle.nonce),
            ).rowcount == 1

    def change_visibility(
        self, name: str, handle: ReceiptHandle, *, now_ms: int, visible_ms: int
    ) -> VisibilityChange:
        with self._db.transaction() as conn:
            if not self._exists(conn, name):
                raise NotFoundError(f"queue {name} does not exist")
            row = conn.execute(
                "SELECT visible_ms FROM messages WHERE id = ? AND queue = ? AND receipt = ?",
                (handle.key, name, handle.nonce),
            ).fetchone()
            if row is None:
                return VisibilityChange.UNKNOWN
            if int(row[0]) <= now_ms:
                return VisibilityChange.NOT_IN_FLIGHT
            conn.execute("UPDATE messages SET visible_ms = ? WHERE id = ?", (visible_ms, handle.key))
            return VisibilityChange.CHANGED

    def purge(self, name: str, *, now_ms: int, interval_ms: int) -> bool:
        with self._db.transaction() as conn:
            row = conn.execute("SELECT purged_ms FROM queues WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise NotFoundError(f"queue {name} does not exist")
            if row[0] is not None and now_ms - int(row[0]) < interval_ms:
                return False
            conn.execute("DELETE FROM messages WHERE queue = ?", (name,))
            conn.execute("UPDATE queues SET purged_ms = ? WHERE name = ?", (now_ms, name))
            return True

    def counts(self, name: str, *, now_ms: int, retention_ms: int) -> QueueCounts:
        rows = self._db.fetchall(
            "SELECT COALESCE(SUM(visible_ms <= ?1), 0),"
            " COALESCE(SUM(visible_ms > ?1 AND receive_count > 0), 0),"
            " COALESCE(SUM(visible_ms > ?1 AND receive_count = 0), 0)"
            " FROM messages WHERE queue = ?2 AND sent_ms > ?3",
            (now_ms, name, now_ms - retention_ms),
        )
        visible, in_flight, delayed = rows[0]
        return QueueCounts(int(visible), int(in_flight), int(delayed))

    def next_visible_ms(self, name: str, *, now_ms: int) -> int | None:
        rows = self._db.fetchall(
            "SELECT MIN(visible_ms) FROM messages WHERE queue = ? AND visible_ms > ?", (name, now_ms)
        )
        return None if rows[0][0] is None else int(rows[0][0])


def _candidates(cursor: sqlite3.Cursor) -> Iterator[Candidate]:
    for key, group_id, visible_ms, receive_count, sent_ms in cursor:
        yield Candidate(int(key), group_id, int(visible_ms), int(receive_count), int(sent_ms))
