"""The SQLite stores on a real database file: the shared contracts, then what only a file has
(surviving a reopen, migrations, pragmas, corrupt rows)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pytest

from strato.domain.models import LATEST
from strato.errors import StoreError
from strato.store.base import (
    AliasStore,
    FunctionStore,
    LogEvent,
    LogStore,
    ProvisionedConcurrencyStore,
)
from strato.store.sqlite import SqliteFunctionStore, SqliteLogStore
from strato.store.sqlite_aliases import SqliteAliasStore, SqliteProvisionedStore
from strato.store.sqlite_db import MIGRATIONS, SqliteDatabase
from tests.support.store_contracts import (
    AliasStoreContract,
    FakeClock,
    FunctionStoreContract,
    LogStoreContract,
    ProvisionedStoreContract,
    PublishedVersionContract,
    make_version,
    run_threads,
)


class SqliteStores:
    """The contracts' fixtures: every store on one database file, as ``app`` opens them."""

    @pytest.fixture
    def function_store(self, tmp_path: Path) -> Iterator[FunctionStore]:
        store = SqliteFunctionStore(tmp_path / "strato.db")
        yield store
        store.close()

    @pytest.fixture
    def alias_store(self, tmp_path: Path) -> Iterator[AliasStore]:
        store = SqliteAliasStore(tmp_path / "strato.db")
        yield store
        store.close()

    @pytest.fixture
    def provisioned_store(self, tmp_path: Path) -> Iterator[ProvisionedConcurrencyStore]:
        store = SqliteProvisionedStore(tmp_path / "strato.db")
        yield store
        store.close()


class TestSqliteFunctionStore(SqliteStores, FunctionStoreContract):
    pass


class TestSqlitePublishedVersions(SqliteStores, PublishedVersionContract):
    pass


class TestSqliteAliasStore(SqliteStores, AliasStoreContract):
    pass


class TestSqliteProvisionedStore(SqliteStores, ProvisionedStoreContract):
    pass


class TestSqliteLogStore(LogStoreContract):
    @pytest.fixture
    def log_store(self, tmp_path: Path, clock: FakeClock) -> Iterator[LogStore]:
        store = SqliteLogStore(tmp_path / "strato.db", clock=clock)
        yield store
        store.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "strato.db"


@contextmanager
def raw(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection of our own, behind the store's back."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


def test_functions_survive_close_and_reopen(db_path: Path) -> None:
    store = SqliteFunctionStore(db_path)
    record = make_version("fn", description="persisted", environment={"K": "V"})
    store.create_function(record)
    store.close()
    reopened = SqliteFunctionStore(db_path)
    try:
        assert reopened.get_version("fn", LATEST) == record
        assert reopened.code_references() == {record.code.sha256_hex}
    finally:
        reopened.close()


def test_logs_survive_close_and_reopen(db_path: Path) -> None:
    store = SqliteLogStore(db_path, clock=FakeClock(5))
    store.append([LogEvent("/aws/lambda/fn", "s", 1, "hello")])
    store.close()
    reopened = SqliteLogStore(db_path)
    try:
        [stored] = reopened.query("/aws/lambda/fn")
        assert (stored.event.message, stored.ingestion_ms) == ("hello", 5)
    finally:
        reopened.close()


def test_both_stores_share_one_file(db_path: Path) -> None:
    functions, logs = SqliteFunctionStore(db_path), SqliteLogStore(db_path)
    try:
        functions.create_function(make_version("fn"))
        logs.append([LogEvent("/aws/lambda/fn", "s", 1, "m")])
        assert functions.get_version("fn", LATEST) is not None
        assert len(logs.query("/aws/lambda/fn")) == 1
    finally:
        functions.close()
        logs.close()


def test_migrations_apply_once_and_are_idempotent_on_reopen(db_path: Path) -> None:
    for _ in range(3):
        db = SqliteDatabase(db_path)
        assert db.schema_version() == len(MIGRATIONS)
        db.close()
    with raw(db_path) as conn:
        versions = [row[0] for row in conn.execute("SELECT version FROM schema_version")]
    assert versions == list(range(1, len(MIGRATIONS) + 1))


def test_a_later_migration_is_applied_to_an_existing_file(db_path: Path) -> None:
    SqliteFunctionStore(db_path).close()
    extended = (*MIGRATIONS, ("CREATE TABLE aliases (name TEXT PRIMARY KEY NOT NULL)",))
    db = SqliteDatabase(db_path, migrations=extended)
    try:
        assert db.schema_version() == len(MIGRATIONS) + 1
        assert db.fetchall("SELECT name FROM aliases") == []
    finally:
        db.close()


def test_concurrent_first_opens_migrate_once(db_path: Path) -> None:
    databases: list[SqliteDatabase] = []
    run_threads(6, lambda _: databases.append(SqliteDatabase(db_path)))
    try:
        assert {db.schema_version() for db in databases} == {len(MIGRATIONS)}
    finally:
        for db in databases:
            db.close()


def test_a_schema_newer_than_this_code_is_refused(db_path: Path) -> None:
    SqliteDatabase(db_path).close()
    with raw(db_path) as conn:
        conn.execute("INSERT INTO schema_version (version, applied_ms) VALUES (999, 0)")
    with pytest.raises(StoreError, match="newer"):
        SqliteFunctionStore(db_path)


def test_pragmas_wal_normal_foreign_keys_busy_timeout(db_path: Path) -> None:
    db = SqliteDatabase(db_path, busy_timeout_ms=1234)
    try:
        conn = db.connection()
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 1234
    finally:
        db.close()


def test_each_thread_gets_its_own_connection(db_path: Path) -> None:
    db = SqliteDatabase(db_path)
    try:
        connections: list[sqlite3.Connection] = []
        run_threads(3, lambda _: connections.append(db.connection()))
        assert len({id(conn) for conn in connections}) == 3
        assert db.connection() is db.connection()
    finally:
        db.close()


def test_delete_cascades_to_every_version_row(db_path: Path) -> None:
    store = SqliteFunctionStore(db_path)
    store.create_function(make_version("fn"))
    store.close()
    with raw(db_path) as conn:  # a published version, as a later migration will write them
        conn.execute(
            "INSERT INTO function_versions SELECT name, '1', revision_id, code_sha256, record"
            " FROM function_versions WHERE name = 'fn'"
        )
    store = SqliteFunctionStore(db_path)
    try:
        assert store.delete_function("fn") is True
    finally:
        store.close()
    with raw(db_path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM function_versions").fetchone()[0] == 0


def test_a_corrupt_record_raises_store_error(db_path: Path) -> None:
    store = SqliteFunctionStore(db_path)
    try:
        store.create_function(make_version("fn"))
        with raw(db_path) as conn:
            conn.execute("UPDATE function_versions SET record = '{\"format\": 1}'")
        with pytest.raises(StoreError, match="corrupt"):
            store.get_version("fn", LATEST)
        with raw(db_path) as conn:
            conn.execute("UPDATE function_versions SET record = 'not json'")
        with pytest.raises(StoreError, match="corrupt"):
            store.list_latest(after=None, limit=1)
    finally:
        store.close()


def test_a_naive_last_modified_is_refused_before_writing(db_path: Path) -> None:
    store = SqliteFunctionStore(db_path)
    try:
        with pytest.raises(ValueError):
            store.create_function(make_version("fn", last_modified=datetime(2024, 1, 1)))
        assert store.get_version("fn", LATEST) is None
    finally:
        store.close()


def test_a_closed_store_raises_store_error(db_path: Path) -> None:
    store = SqliteFunctionStore(db_path)
    store.close()
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.get_version("fn", LATEST)
