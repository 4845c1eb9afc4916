"""The SQLite backend of ``RoleStore`` (contract in ``store.role_base``), in a file of its own
(``iam.db``) with its own migrations.

``roles`` holds one row per role keyed by its lower-cased name (IAM's names are unique
regardless of case), ``role_policies`` one row per inline policy, referencing its role: a
role with policies cannot be deleted (``ON DELETE RESTRICT``), and a policy of a missing role
cannot be written.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from strato.domain.iam.roles import Role, RolePolicy, name_key
from strato.errors import AlreadyExistsError, InUseError, NotFoundError
from strato.store.sqlite_db import SqliteDatabase

#: Statements of each migration of ``iam.db``, in order. Never edit a released entry.
ROLE_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (  # 1: roles and their inline policies
        """CREATE TABLE roles (
            key TEXT PRIMARY KEY NOT NULL,
            name TEXT NOT NULL,
            role_id TEXT NOT NULL,
            path TEXT NOT NULL,
            trust_policy TEXT NOT NULL,
            created TEXT NOT NULL,
            description TEXT,
            max_session_duration INTEGER NOT NULL
        ) WITHOUT ROWID""",
        """CREATE TABLE role_policies (
            role_key TEXT NOT NULL REFERENCES roles (key) ON DELETE RESTRICT,
            key TEXT NOT NULL,
            name TEXT NOT NULL,
            document TEXT NOT NULL,
            PRIMARY KEY (role_key, key)
        ) WITHOUT ROWID""",
    ),
)

_ROLE_COLUMNS = "name, role_id, path, trust_policy, created, description, max_session_duration"


def _role(row: tuple[object, ...]) -> Role:
    name, role_id, path, trust, created, description, duration = row
    return Role(str(name), str(role_id), str(path), str(trust), str(created),
                None if description is None else str(description), int(str(duration)))


class SqliteRoleStore:
    def __init__(self, path: Path) -> None:
        self._db = SqliteDatabase(path, migrations=ROLE_MIGRATIONS)

    def close(self) -> None:
        """Close the database; legal once no other thread uses the store. Idempotent."""
        self._db.close()

    def create_role(self, role: Role) -> None:
        with self._db.transaction() as conn:
            try:
                conn.execute(
                    f"INSERT INTO roles (key, {_ROLE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (name_key(role.name), role.name, role.role_id, role.path, role.trust_policy,
                     role.created, role.description, role.max_session_duration))
            except sqlite3.IntegrityError as e:
                raise AlreadyExistsError(f"role {role.name} exists") from e

    def get_role(self, name: str) -> Role | None:
        rows = self._db.fetchall(f"SELECT {_ROLE_COLUMNS} FROM roles WHERE key = ?",
                                 (name_key(name),))
        return _role(rows[0]) if rows else None

    def list_roles(self) -> list[Role]:
        return [_role(row) for row in
                self._db.fetchall(f"SELECT {_ROLE_COLUMNS} FROM roles ORDER BY name")]

    def update_trust_policy(self, name: str, document: str) -> None:
        with self._db.transaction() as conn:
            updated = conn.execute("UPDATE roles SET trust_policy = ? WHERE key = ?",
                                   (document, name_key(name))).rowcount
        if updated != 1:
            raise NotFoundError(f"role {name} does not exist")

    def delete_role(self, name: str) -> None:
        with self._db.transaction() as conn:
            try:
                deleted = conn.execute("DELETE FROM roles WHERE key = ?",
                                       (name_key(name),)).rowcount
            except sqlite3.IntegrityError as e:
                raise InUseError(f"role {name} has inline policies") from e
        if deleted != 1:
            raise NotFoundError(f"role {name} does not exist")

    def put_role_policy(self, policy: RolePolicy) -> None:
        role_key, key = name_key(policy.role_name), name_key(policy.policy_name)
        with self._db.transaction() as conn:
            try:
                conn.execute(
                    "INSERT INTO role_policies (role_key, key, name, document) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (role_key, key) DO UPDATE SET document = excluded.document",
                    (role_key, key, policy.policy_name, policy.document))
            except sqlite3.IntegrityError as e:
                raise NotFoundError(f"role {policy.role_name} does not exist") from e

    def get_role_policy(self, role_name: str, policy_name: str) -> RolePolicy | None:
        rows = self._db.fetchall(
            "SELECT r.name, p.name, p.document FROM role_policies p JOIN roles r"
            " ON r.key = p.role_key WHERE p.role_key = ? AND p.key = ?",
            (name_key(role_name), name_key(policy_name)))
        return RolePolicy(str(rows[0][0]), str(rows[0][1]), str(rows[0][2])) if rows else None

    def list_role_policies(self, role_name: str) -> list[RolePolicy]:
        rows = self._db.fetchall(
            "SELECT r.name, p.name, p.document FROM role_policies p JOIN roles r"
            " ON r.key = p.role_key WHERE p.role_key = ? ORDER BY p.name",
            (name_key(role_name),))
        return [RolePolicy(str(r), str(n), str(d)) for r, n, d in rows]

    def delete_role_policy(self, role_name: str, policy_name: str) -> bool:
        with self._db.transaction() as conn:
            deleted: int = conn.execute(
                "DELETE FROM role_policies WHERE role_key = ? AND key = ?",
                (name_key(role_name), name_key(policy_name))).rowcount
        return deleted == 1
