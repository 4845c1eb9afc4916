"""The SQLite event source mapping store on a real database file: the shared contract, then
what only a file has (surviving a reopen, outliving the function, unreadable rows)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from strato.errors import StoreError
from strato.store.base import EventSourceMappingStore
from strato.store.sqlite import SqliteFunctionStore
from strato.store.sqlite_db import SqliteDatabase
from strato.store.sqlite_mappings import SqliteEventSourceMappingStore
from tests.support.mapping_store_contracts import MappingStoreContract, make_mapping
from tests.support.store_contracts import make_version


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


@pytest.fixture
def mappings(db_path: Path) -> Iterator[SqliteEventSourceMappingStore]:
    store = SqliteEventSourceMappingStore(db_path)
    yield store
    store.close()


class TestSqliteMappingStore(MappingStoreContract):
    @pytest.fixture
    def mapping_store(self, mappings: SqliteEventSourceMappingStore) -> EventSourceMappingStore:
        return mappings


def test_mappings_survive_a_reopen(db_path: Path, mappings: SqliteEventSourceMappingStore) -> None:
    mapping = make_mapping(batch_size=42, filter_patterns=('{"body": {"a": ["b"]}}',))
    mappings.create_mapping(mapping)
    mappings.close()
    reopened = SqliteEventSourceMappingStore(db_path)
    try:
        assert reopened.get_mapping(mapping.uuid) == mapping
    finally:
        reopened.close()


def test_a_mapping_outlives_its_function(db_path: Path, mappings: SqliteEventSourceMappingStore) -> None:
    functions = SqliteFunctionStore(db_path)
    try:
        functions.create_function(make_version("fn"))
        mapping = make_mapping("fn")
        mappings.create_mapping(mapping)
        assert functions.delete_function("fn")
        assert mappings.get_mapping(mapping.uuid) == mapping
    finally:
        functions.close()


def test_an_unreadable_row_is_a_store_error(db_path: Path, mappings: SqliteEventSourceMappingStore) -> None:
    mapping = make_mapping()
    mappings.create_mapping(mapping)
    db = SqliteDatabase(db_path)
    try:
        with db.transaction() as conn:
            conn.execute("UPDATE event_source_mappings SET record = '{\"format\": 99}'")
    finally:
        db.close()
    with pytest.raises(StoreError):
        mappings.get_mapping(mapping.uuid)
