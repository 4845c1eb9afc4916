"""The store contracts (tests/support/store_contracts.py) against the in-memory backend."""

from __future__ import annotations

import pytest

from strato.store.base import FunctionStore, LogStore
from strato.store.memory import MemoryFunctionStore, MemoryLogStore
from tests.support.store_contracts import FakeClock, FunctionStoreContract, LogStoreContract


class TestMemoryFunctionStore(FunctionStoreContract):
    @pytest.fixture
    def function_store(self) -> FunctionStore:
        return MemoryFunctionStore()


class TestMemoryLogStore(LogStoreContract):
    @pytest.fixture
    def log_store(self, clock: FakeClock) -> LogStore:
        return MemoryLogStore(clock=clock)
