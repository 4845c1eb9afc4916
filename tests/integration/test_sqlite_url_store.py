"""The FunctionUrlConfigStore contract on a real database file (``urls.db``), and what only
a file does: configurations survive a reopen, and a corrupt record says so."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from strato.errors import StoreError
from strato.store.sqlite_db import SqliteDatabase
from strato.store.sqlite_urls import URL_MIGRATIONS, SqliteFunctionUrlConfigStore
from tests.support.url_store_contracts import FunctionUrlConfigStoreContract, make_url


class TestSqliteFunctionUrlConfigStore(FunctionUrlConfigStoreContract):
    @pytest.fixture
    def url_store(self, tmp_path: Path) -> Iterator[SqliteFunctionUrlConfigStore]:
        store = SqliteFunctionUrlConfigStore(tmp_path / "urls.db")
        yield store
        store.close()


def test_configs_survive_a_reopen(tmp_path: Path) -> None:
    config = make_url(qualifier="live")
    store = SqliteFunctionUrlConfigStore(tmp_path / "urls.db")
    store.create_config(config)
    store.close()
    reopened = SqliteFunctionUrlConfigStore(tmp_path / "urls.db")
    try:
        assert reopened.list_configs() == [config]
    finally:
        reopened.close()


def test_a_corrupt_record_is_reported(tmp_path: Path) -> None:
    store = SqliteFunctionUrlConfigStore(tmp_path / "urls.db")
    store.create_config(make_url())
    store.close()
    db = SqliteDatabase(tmp_path / "urls.db", migrations=URL_MIGRATIONS)
    with db.transaction() as conn:
        conn.execute("UPDATE function_url_configs SET record = '{\"format\": 1}'")
    db.close()
    reopened = SqliteFunctionUrlConfigStore(tmp_path / "urls.db")
    try:
        with pytest.raises(StoreError, match="corrupt function url config record"):
            reopened.get_config("fn", None)
    finally:
        reopened.close()
