"""The role store contract (tests/support/role_store_contracts.py) against the in-memory
backend."""

from __future__ import annotations

import pytest

from strato.store.memory_roles import MemoryRoleStore
from strato.store.role_base import RoleStore
from tests.support.role_store_contracts import RoleStoreContract


class TestMemoryRoleStore(RoleStoreContract):
    @pytest.fixture
    def role_store(self) -> RoleStore:
        return MemoryRoleStore()
