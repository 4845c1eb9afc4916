"""The in-memory ``RoleStore`` (contract in ``store.role_base``), for unit tests and throw-away
servers. Every method holds the store's lock, so each call is atomic."""

from __future__ import annotations

import dataclasses
import threading

from strato.domain.iam.roles import Role, RolePolicy, name_key
from strato.errors import AlreadyExistsError, InUseError, NotFoundError


class MemoryRoleStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._roles: dict[str, Role] = {}
        #: Role key → policy key → policy.
        self._policies: dict[str, dict[str, RolePolicy]] = {}

    def create_role(self, role: Role) -> None:
        key = name_key(role.name)
        with self._lock:
            if key in self._roles:
                raise AlreadyExistsError(f"role {role.name} exists")
            self._roles[key] = role
            self._policies[key] = {}

    def get_role(self, name: str) -> Role | None:
        with self._lock:
            return self._roles.get(name_key(name))

    def list_roles(self) -> list[Role]:
        with self._lock:
            return sorted(self._roles.values(), key=lambda r: r.name)

    def update_trust_policy(self, name: str, document: str) -> None:
        key = name_key(name)
        with self._lock:
            role = self._roles.get(key)
            if role is None:
                raise NotFoundError(f"role {name} does not exist")
            self._roles[key] = dataclasses.replace(role, trust_policy=document)

    def delete_role(self, name: str) -> None:
        key = name_key(name)
        with self._lock:
            if key not in self._roles:
                raise NotFoundError(f"role {name} does not exist")
            if self._policies[key]:
                raise InUseError(f"role {name} has inline policies")
            del self._roles[key]
            del self._policies[key]

    def put_role_policy(self, policy: RolePolicy) -> None:
        key = name_key(policy.role_name)
        with self._lock:
            role = self._roles.get(key)
            if role is None:
                raise NotFoundError(f"role {policy.role_name} does not exist")
            policies = self._policies[key]
            stored = policies.get(name_key(policy.policy_name))
            name = stored.policy_name if stored is not None else policy.policy_name
            policies[name_key(name)] = RolePolicy(role.name, name, policy.document)

    def get_role_policy(self, role_name: str, policy_name: str) -> RolePolicy | None:
        with self._lock:
            return self._policies.get(name_key(role_name), {}).get(name_key(policy_name))

    def list_role_policies(self, role_name: str) -> list[RolePolicy]:
        with self._lock:
            policies = self._policies.get(name_key(role_name), {})
            return sorted(policies.values(), key=lambda p: p.policy_name)

    def delete_role_policy(self, role_name: str, policy_name: str) -> bool:
        with self._lock:
            policies = self._policies.get(name_key(role_name), {})
            return policies.pop(name_key(policy_name), None) is not None

    def close(self) -> None:
        """Nothing to release."""
