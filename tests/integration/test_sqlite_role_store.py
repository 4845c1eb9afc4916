"""The SQLite role store on a real database file: the shared contract, then surviving a
reopen."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from strato.domain.iam.roles import RolePolicy
from strato.store.role_base import RoleStore
from strato.store.sqlite_roles import SqliteRoleStore
from tests.support.role_store_contracts import RoleStoreContract, role


@pytest.fixture
def roles(tmp_path: Path) -> Iterator[SqliteRoleStore]:
    store = SqliteRoleStore(tmp_path / "iam.db")
    yield store
    store.close()


class TestSqliteRoleStore(RoleStoreContract):
    @pytest.fixture
    def role_store(self, roles: SqliteRoleStore) -> RoleStore:
        return roles


def test_roles_and_policies_survive_close_and_reopen(tmp_path: Path) -> None:
    store = SqliteRoleStore(tmp_path / "iam.db")
    stored = role("Worker", "/a/b/")
    store.create_role(stored)
    store.put_role_policy(RolePolicy("worker", "Send", "{}"))
    store.close()
    reopened = SqliteRoleStore(tmp_path / "iam.db")
    try:
        assert reopened.get_role("worker") == stored
        assert reopened.list_role_policies("worker") == [RolePolicy("Worker", "Send", "{}")]
    finally:
        reopened.close()
