"""The EventInvokeConfigStore contract on a real database file, and what only SQLite does:
a function's configurations go with it (cascade), and survive a reopen."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from strato.store.sqlite import SqliteFunctionStore
from strato.store.sqlite_event_invoke_configs import SqliteEventInvokeConfigStore
from tests.support.event_invoke_config_contracts import EventInvokeConfigStoreContract, make_config
from tests.support.store_contracts import make_version


class TestSqliteEventInvokeConfigStore(EventInvokeConfigStoreContract):
    @pytest.fixture
    def function_store(self, tmp_path: Path) -> Iterator[SqliteFunctionStore]:
        store = SqliteFunctionStore(tmp_path / "state.db")
        yield store
        store.close()

    @pytest.fixture
    def config_store(self, tmp_path: Path) -> Iterator[SqliteEventInvokeConfigStore]:
        store = SqliteEventInvokeConfigStore(tmp_path / "state.db")
        yield store
        store.close()


def test_deleting_a_function_deletes_its_configs_and_they_survive_a_reopen(tmp_path: Path) -> None:
    functions = SqliteFunctionStore(tmp_path / "state.db")
    configs = SqliteEventInvokeConfigStore(tmp_path / "state.db")
    for name in ("kept", "gone"):
        functions.create_function(make_version(name))
        configs.put_config(make_config(name, maximum_retry_attempts=1))
    functions.delete_function("gone")
    configs.close()
    reopened = SqliteEventInvokeConfigStore(tmp_path / "state.db")
    assert [c.function_name for c in reopened.list_configs()] == ["kept"]
    assert reopened.get_config("kept", "$LATEST") == make_config("kept", maximum_retry_attempts=1)
    reopened.close()
    functions.close()
