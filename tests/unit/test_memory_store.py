"""The store contracts (tests/support/store_contracts.py) against the in-memory backend, then
how its alias and provisioned stores follow the function store they are given."""

from __future__ import annotations

import contextlib

import pytest

from strato.errors import NotFoundError
from strato.store.base import AliasStore, LogStore, ProvisionedConcurrencyStore
from strato.store.memory_aliases import MemoryAliasStore, MemoryProvisionedStore
from strato.store.memory_functions import MemoryFunctionStore
from strato.store.memory_logs import MemoryLogStore
from tests.support.store_contracts import (
    AliasStoreContract,
    FakeClock,
    FunctionStoreContract,
    LogStoreContract,
    ProvisionedStoreContract,
    PublishedVersionContract,
    make_alias,
    make_provisioned,
    make_version,
    run_threads,
)


class MemoryStores:
    """The contracts' fixtures: alias and provisioned stores given the function store."""

    @pytest.fixture
    def function_store(self) -> MemoryFunctionStore:
        return MemoryFunctionStore()

    @pytest.fixture
    def alias_store(self, function_store: MemoryFunctionStore) -> AliasStore:
        return MemoryAliasStore(function_store)

    @pytest.fixture
    def provisioned_store(self, function_store: MemoryFunctionStore) -> ProvisionedConcurrencyStore:
        return MemoryProvisionedStore(function_store)


class TestMemoryFunctionStore(MemoryStores, FunctionStoreContract):
    pass


class TestMemoryPublishedVersions(MemoryStores, PublishedVersionContract):
    pass


class TestMemoryAliasStore(MemoryStores, AliasStoreContract):
    pass


class TestMemoryProvisionedStore(MemoryStores, ProvisionedStoreContract):
    pass


class TestMemoryLogStore(LogStoreContract):
    @pytest.fixture
    def log_store(self, clock: FakeClock) -> LogStore:
        return MemoryLogStore(clock=clock)


def test_without_a_function_store_every_function_is_taken_to_exist() -> None:
    aliases, provisioned = MemoryAliasStore(), MemoryProvisionedStore()
    aliases.create_alias(make_alias("anything", "live"))
    provisioned.put_provisioned(make_provisioned("anything", "live"))
    assert [a.name for a in aliases.list_aliases("anything")] == ["live"]
    assert [c.qualifier for c in provisioned.list_provisioned()] == ["live"]


def test_every_store_given_the_function_store_forgets_a_deleted_function() -> None:
    functions = MemoryFunctionStore()
    stores = [(MemoryAliasStore(functions), MemoryProvisionedStore(functions)) for _ in range(2)]
    functions.create_function(make_version("fn"))
    for aliases, provisioned in stores:
        aliases.create_alias(make_alias("fn", "live"))
        provisioned.put_provisioned(make_provisioned("fn", "live"))
    functions.delete_function("fn")
    for aliases, provisioned in stores:
        assert aliases.list_aliases("fn") == []
        assert provisioned.list_provisioned() == []


def test_aliases_created_while_their_function_is_deleted_leave_no_orphan() -> None:
    functions = MemoryFunctionStore()
    aliases = MemoryAliasStore(functions)
    for _ in range(50):
        functions.create_function(make_version("fn"))

        def work(index: int) -> None:
            if index == 0:
                functions.delete_function("fn")
                return
            with contextlib.suppress(NotFoundError):  # once the function is gone
                aliases.create_alias(make_alias("fn", f"a{index}"))

        run_threads(4, work)
        assert aliases.list_aliases("fn") == []
