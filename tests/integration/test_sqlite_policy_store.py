"""The SQLite policy store on a real database file: the shared contract, then what only a file
with functions beside it has (surviving a reopen, the cascade on function delete, the reference
to the function, corrupt rows)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from strato.errors import NotFoundError, StoreError
from strato.store.base import PolicyStore
from strato.store.sqlite import SqliteFunctionStore
from strato.store.sqlite_policies import SqlitePolicyStore
from tests.support.policy_store_contracts import CreateFunction, PolicyStoreContract, policy, statement
from tests.support.store_contracts import make_version


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


@pytest.fixture
def functions(db_path: Path) -> Iterator[SqliteFunctionStore]:
    store = SqliteFunctionStore(db_path)
    yield store
    store.close()


@pytest.fixture
def policies(db_path: Path) -> Iterator[SqlitePolicyStore]:
    store = SqlitePolicyStore(db_path)
    yield store
    store.close()


class TestSqlitePolicyStore(PolicyStoreContract):
    @pytest.fixture
    def policy_store(self, policies: SqlitePolicyStore) -> PolicyStore:
        return policies

    @pytest.fixture
    def create_function(self, functions: SqliteFunctionStore) -> CreateFunction:
        return lambda name: functions.create_function(make_version(name))


def test_policies_survive_close_and_reopen(db_path: Path, functions: SqliteFunctionStore) -> None:
    functions.create_function(make_version("fn"))
    store = SqlitePolicyStore(db_path)
    stored = policy("fn", "1", statement("a"), statement("b"))
    store.put_policy(stored, expected_revision=None)
    store.close()
    reopened = SqlitePolicyStore(db_path)
    try:
        assert reopened.get_policy("fn", "1") == stored
        assert reopened.list_policies() == [stored]
    finally:
        reopened.close()


def test_deleting_the_function_deletes_its_policies(
    functions: SqliteFunctionStore, policies: SqlitePolicyStore
) -> None:
    functions.create_function(make_version("fn"))
    policies.put_policy(policy("fn"), expected_revision=None)
    policies.put_policy(policy("fn", "prod"), expected_revision=None)
    assert functions.delete_function("fn") is True
    assert policies.list_policies() == []
    functions.create_function(make_version("fn"))
    assert policies.get_policy("fn", None) is None


def test_a_policy_of_a_missing_function_is_refused(policies: SqlitePolicyStore) -> None:
    with pytest.raises(NotFoundError):
        policies.put_policy(policy("ghost"), expected_revision=None)
    assert policies.list_policies() == []


def test_a_corrupt_policy_raises_store_error(
    db_path: Path, functions: SqliteFunctionStore, policies: SqlitePolicyStore
) -> None:
    functions.create_function(make_version("fn"))
    policies.put_policy(policy("fn"), expected_revision=None)
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        conn.execute("UPDATE function_policies SET statements = '{\"format\": 99}'")
    finally:
        conn.close()
    with pytest.raises(StoreError, match="corrupt"):
        policies.get_policy("fn", None)
