"""The EventInvokeConfigStore contract against the in-memory backend."""

from __future__ import annotations

import pytest

from strato.store.memory_event_invoke_configs import MemoryEventInvokeConfigStore
from strato.store.memory_functions import MemoryFunctionStore
from tests.support.event_invoke_config_contracts import EventInvokeConfigStoreContract


class TestMemoryEventInvokeConfigStore(EventInvokeConfigStoreContract):
    @pytest.fixture
    def function_store(self) -> MemoryFunctionStore:
        return MemoryFunctionStore()

    @pytest.fixture
    def config_store(self, function_store: MemoryFunctionStore) -> MemoryEventInvokeConfigStore:
        return MemoryEventInvokeConfigStore(function_store)
