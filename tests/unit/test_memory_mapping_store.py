"""The event source mapping store contract (tests/support/mapping_store_contracts.py) against
the in-memory backend."""

from __future__ import annotations

import pytest

from strato.store.base import EventSourceMappingStore
from strato.store.memory_mappings import MemoryEventSourceMappingStore
from tests.support.mapping_store_contracts import MappingStoreContract


class TestMemoryMappingStore(MappingStoreContract):
    @pytest.fixture
    def mapping_store(self) -> EventSourceMappingStore:
        return MemoryEventSourceMappingStore()
