"""The FunctionUrlConfigStore contract against the in-memory backend."""

from __future__ import annotations

import pytest

from strato.store.memory_urls import MemoryFunctionUrlConfigStore
from tests.support.url_store_contracts import FunctionUrlConfigStoreContract


class TestMemoryFunctionUrlConfigStore(FunctionUrlConfigStoreContract):
    @pytest.fixture
    def url_store(self) -> MemoryFunctionUrlConfigStore:
        return MemoryFunctionUrlConfigStore()
