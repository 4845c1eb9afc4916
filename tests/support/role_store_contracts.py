"""The ``RoleStore`` contract of ``strato.store.role_base``, written once and run against every
backend. A backend's test module subclasses ``RoleStoreContract`` in a ``Test...`` class and
overrides the ``role_store`` fixture."""

from __future__ import annotations

import pytest

from strato.domain.iam.roles import Role, RolePolicy, new_role_id
from strato.errors import AlreadyExistsError, InUseError, NotFoundError
from strato.store.role_base import RoleStore

TRUST = '{"Version": "2012-10-17", "Statement": []}'


def role(name: str = "worker", path: str = "/") -> Role:
    return Role(name, new_role_id(), path, TRUST, "2025-01-01T00:00:00Z")


class RoleStoreContract:
    @pytest.fixture
    def role_store(self) -> RoleStore:
        raise NotImplementedError("a backend's test class provides this fixture")

    def test_a_created_role_is_found_by_its_name_in_any_case(self, role_store: RoleStore) -> None:
        stored = role("Worker", "/service/")
        role_store.create_role(stored)
        assert role_store.get_role("Worker") == stored
        assert role_store.get_role("WORKER") == stored
        assert role_store.get_role("other") is None

    def test_a_name_taken_in_another_case_is_refused(self, role_store: RoleStore) -> None:
        role_store.create_role(role("worker"))
        with pytest.raises(AlreadyExistsError):
            role_store.create_role(role("WORKER"))
        assert [r.name for r in role_store.list_roles()] == ["worker"]

    def test_roles_are_listed_by_name(self, role_store: RoleStore) -> None:
        for name in ("b", "c", "a"):
            role_store.create_role(role(name))
        assert [r.name for r in role_store.list_roles()] == ["a", "b", "c"]

    def test_the_trust_policy_is_replaced(self, role_store: RoleStore) -> None:
        role_store.create_role(role())
        role_store.update_trust_policy("WORKER", "{}")
        found = role_store.get_role("worker")
        assert found is not None and found.trust_policy == "{}"
        with pytest.raises(NotFoundError):
            role_store.update_trust_policy("ghost", "{}")

    def test_inline_policies_are_put_replaced_listed_and_deleted(self, role_store: RoleStore) -> None:
        role_store.create_role(role("worker"))
        role_store.put_role_policy(RolePolicy("worker", "Send", "1"))
        role_store.put_role_policy(RolePolicy("WORKER", "send", "2"))  # the same policy
        role_store.put_role_policy(RolePolicy("worker", "Audit", "3"))
        assert role_store.get_role_policy("worker", "SEND") == RolePolicy("worker", "Send", "2")
        assert [p.policy_name for p in role_store.list_role_policies("Worker")] == ["Audit", "Send"]
        assert role_store.delete_role_policy("worker", "send") is True
        assert role_store.delete_role_policy("worker", "send") is False
        assert role_store.get_role_policy("worker", "Send") is None

    def test_a_policy_of_a_missing_role_is_refused(self, role_store: RoleStore) -> None:
        with pytest.raises(NotFoundError):
            role_store.put_role_policy(RolePolicy("ghost", "p", "{}"))
        assert role_store.list_role_policies("ghost") == []

    def test_a_role_with_inline_policies_is_not_deleted(self, role_store: RoleStore) -> None:
        role_store.create_role(role())
        role_store.put_role_policy(RolePolicy("worker", "p", "{}"))
        with pytest.raises(InUseError):
            role_store.delete_role("worker")
        assert role_store.get_role("worker") is not None
        role_store.delete_role_policy("worker", "p")
        role_store.delete_role("Worker")
        assert role_store.get_role("worker") is None
        with pytest.raises(NotFoundError):
            role_store.delete_role("worker")
