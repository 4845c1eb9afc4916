"""The SQLite backend of ``PolicyStore`` (contract in ``store.base``).

One row of ``function_policies`` per (function, qualifier), the unqualified function's under
qualifier ``''``; the statements are one JSON document (``store.policy_codec``), so that a
policy changes in one compare-and-swap ``UPDATE ... WHERE revision_id = ?``. The rows reference
``functions``: deleting a function deletes its policies in the same transaction, and a policy
of a function that does not exist cannot be written.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from strato.domain.permissions import ResourcePolicy
from strato.errors import NotFoundError, RevisionMismatchError
from strato.store.policy_codec import decode_statements, encode_statements
from strato.store.sqlite_db import SqliteDatabase

_UNQUALIFIED = ""


def _column(qualifier: str | None) -> str:
    return _UNQUALIFIED if qualifier is None else qualifier


class SqlitePolicyStore:
    def __init__(self, path: Path) -> None:
        self._db = SqliteDatabase(path)

    def close(self) -> None:
        """Close the database; legal once no other thread uses the store. Idempotent."""
        self._db.close()

    def get_policy(self, function_name: str, qualifier: str | None) -> ResourcePolicy | None:
        rows = self._db.fetchall(
            "SELECT revision_id, statements FROM function_policies"
            " WHERE function_name = ? AND qualifier = ?",
            (function_name, _column(qualifier)),
        )
        if not rows:
            return None
        revision_id, text = rows[0]
        return ResourcePolicy(function_name, qualifier, decode_statements(str(text)), str(revision_id))

    def put_policy(self, policy: ResourcePolicy, *, expected_revision: str | None) -> None:
        if not policy.statements:
            raise ValueError("a policy without statements is deleted, not stored")
        key = (policy.function_name, _column(policy.qualifier))
        text = encode_statements(policy.statements)
        with self._db.transaction() as conn:
            if expected_revision is None:
                try:
                    conn.execute(
                        "INSERT INTO function_policies"
                        " (function_name, qualifier, revision_id, statements) VALUES (?, ?, ?, ?)",
                        (*key, policy.revision_id, text),
                    )
                    return
                except sqlite3.IntegrityError as e:
                    stored = self._stored_revision(conn, key)
                    if stored is None:
                        raise NotFoundError(f"function {policy.function_name} does not exist") from e
            else:
                updated = conn.execute(
                    "UPDATE function_policies SET revision_id = ?, statements = ?"
                    " WHERE function_name = ? AND qualifier = ? AND revision_id = ?",
                    (policy.revision_id, text, *key, expected_revision),
                ).rowcount
                if updated == 1:
                    return
                stored = self._stored_revision(conn, key)
        raise RevisionMismatchError(
            f"policy of {policy.function_name}:{key[1]} is at revision {stored},"
            f" not {expected_revision}"
        )

    def delete_policy(self, function_name: str, qualifier: str | None, *, expected_revision: str) -> None:
        key = (function_name, _column(qualifier))
        with self._db.transaction() as conn:
            deleted = conn.execute(
                "DELETE FROM function_policies"
                " WHERE function_name = ? AND qualifier = ? AND revision_id = ?",
                (*key, expected_revision),
            ).rowcount
            if deleted == 1:
                return
            stored = self._stored_revision(conn, key)
        raise RevisionMismatchError(
            f"policy of {function_name}:{key[1]} is at revision {stored}, not {expected_revision}"
        )

    def delete_policies(self, function_name: str) -> None:
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM function_policies WHERE function_name = ?", (function_name,))

    def list_policies(self) -> list[ResourcePolicy]:
        rows = self._db.fetchall(
            "SELECT function_name, qualifier, revision_id, statements FROM function_policies"
            " ORDER BY function_name, qualifier"
        )
        return [
            ResourcePolicy(str(name), str(qualifier) or None, decode_statements(str(text)), str(revision))
            for name, qualifier, revision, text in rows
        ]

    @staticmethod
    def _stored_revision(conn: sqlite3.Connection, key: tuple[str, str]) -> str | None:
        row = conn.execute(
            "SELECT revision_id FROM function_policies WHERE function_name = ? AND qualifier = ?", key
        ).fetchone()
        return None if row is None else str(row[0])
