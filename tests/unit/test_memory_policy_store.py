"""The policy store contract (tests/support/policy_store_contracts.py) against the in-memory
backend."""

from __future__ import annotations

import pytest

from strato.store.base import PolicyStore
from strato.store.memory_policies import MemoryPolicyStore
from tests.support.policy_store_contracts import PolicyStoreContract


class TestMemoryPolicyStore(PolicyStoreContract):
    @pytest.fixture
    def policy_store(self) -> PolicyStore:
        return MemoryPolicyStore()
