"""IAM roles: the operations of the IAM API's role subset, and the directory of roles that
role sessions read on every request.

``RoleService`` runs on the control-plane thread: it checks its input as IAM does (nothing is
written when a check fails), writes through the ``RoleStore``, and then updates the
``RoleDirectory`` so that a change of a role's inline policies applies to the very next
request its sessions sign. ``RoleDirectory`` is read from any thread: each write replaces a
whole immutable entry.

Messages are IAM's (recorded: ``Role with name x already exists.``, ``Cannot delete entity,
must delete policies first.``, ``The role with name x cannot be found.``, ``The role policy
with name p cannot be found.``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from strato.domain.iam.documents import check_inline_policy, check_trust_policy
from strato.domain.iam.errors import (
    DeleteConflict,
    EntityAlreadyExists,
    IamValidationError,
    NoSuchEntity,
)
from strato.domain.iam.roles import Role, RolePolicy, name_key, new_role_id, parse_role_arn
from strato.errors import AlreadyExistsError, InUseError, NotFoundError
from strato.store.role_base import RoleStore

#: IAM's bounds of a role's MaxSessionDuration, in seconds.
MIN_SESSION_S, MAX_SESSION_S = 3600, 43200


@dataclass(frozen=True)
class RoleEntry:
    """What role sessions need of a role: its ARN, its id, and the identity policy that its
    inline policies make together (every statement of each; none allows nothing)."""

    arn: str
    role_id: str
    policy: Mapping[str, Any]


def combined_policy(documents: Iterable[str]) -> Mapping[str, Any]:
    """One identity policy holding every statement of ``documents`` (checked when stored):
    IAM evaluates a principal's policies together, so their union is the same decision."""
    statements: list[Any] = []
    for text in documents:
        raw = json.loads(text)["Statement"]
        statements.extend(raw if isinstance(raw, list) else [raw])
    return MappingProxyType({"Version": "2012-10-17", "Statement": statements})


class RoleDirectory:
    """Every stored role's ``RoleEntry``, by lower-cased name. Written by the control-plane
    thread, read by any."""

    def __init__(self, account_id: str) -> None:
        self._account = account_id
        self._by_name: dict[str, RoleEntry] = {}

    def load(self, store: RoleStore) -> None:
        """Fill the directory from ``store`` (at start)."""
        for role in store.list_roles():
            self.put(role, store.list_role_policies(role.name))

    def put(self, role: Role, policies: Iterable[RolePolicy]) -> None:
        self._by_name[name_key(role.name)] = RoleEntry(
            role.arn(self._account), role.role_id, combined_policy(p.document for p in policies))

    def remove(self, name: str) -> None:
        self._by_name.pop(name_key(name), None)

    def by_name(self, name: str) -> RoleEntry | None:
        return self._by_name.get(name_key(name))

    def by_arn(self, arn: str) -> RoleEntry | None:
        """The entry of the role ``arn`` names; None unless a stored role has exactly that
        ARN (account and path included)."""
        ref = parse_role_arn(arn)
        entry = self._by_name.get(name_key(ref.name)) if ref is not None else None
        if entry is None or entry.arn.lower() != arn.lower():
            return None
        return entry


class RoleService:
    """The IAM role operations. Legal on the control-plane thread only."""

    def __init__(self, store: RoleStore, directory: RoleDirectory) -> None:
        self._store = store
        self._directory = directory

    def _role(self, name: str) -> Role:
        role = self._store.get_role(name)
        if role is None:
            raise NoSuchEntity.role(name)
        return role

    def _publish(self, role: Role) -> None:
        self._directory.put(role, self._store.list_role_policies(role.name))

    def create_role(self, name: str, trust_policy: str, *, path: str | None = None,
                    description: str | None = None,
                    max_session_duration: int | None = None) -> Role:
        check_trust_policy(trust_policy)
        duration = MIN_SESSION_S if max_session_duration is None else max_session_duration
        if not MIN_SESSION_S <= duration <= MAX_SESSION_S:
            raise IamValidationError.from_items([
                f"Value '{duration}' at 'maxSessionDuration' failed to satisfy constraint: "
                f"Member must have value less than or equal to {MAX_SESSION_S}"
                if duration > MAX_SESSION_S else
                f"Value '{duration}' at 'maxSessionDuration' failed to satisfy constraint: "
                f"Member must have value greater than or equal to {MIN_SESSION_S}"])
        role = Role(name, new_role_id(), path or "/", trust_policy,
                    time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), description, duration)
        try:
            self._store.create_role(role)
        except AlreadyExistsError:
            raise EntityAlreadyExists(f"Role with name {name} already exists.") from None
        self._directory.put(role, ())
        return role

    def get_role(self, name: str) -> Role:
        return self._role(name)

    def list_roles(self, path_prefix: str | None = None) -> list[Role]:
        prefix = path_prefix or "/"
        return [r for r in self._store.list_roles() if r.path.startswith(prefix)]

    def update_assume_role_policy(self, name: str, trust_policy: str) -> None:
        self._role(name)
        check_trust_policy(trust_policy)
        try:
            self._store.update_trust_policy(name, trust_policy)
        except NotFoundError:
            raise NoSuchEntity.role(name) from None

    def delete_role(self, name: str) -> None:
        try:
            self._store.delete_role(name)
        except NotFoundError:
            raise NoSuchEntity.role(name) from None
        except InUseError:
            raise DeleteConflict("Cannot delete entity, must delete policies first.") from None
        self._directory.remove(name)

    def put_role_policy(self, role_name: str, policy_name: str, document: str) -> None:
        role = self._role(role_name)
        check_inline_policy(document)
        try:
            self._store.put_role_policy(RolePolicy(role.name, policy_name, document))
        except NotFoundError:
            raise NoSuchEntity.role(role_name) from None
        self._publish(role)

    def get_role_policy(self, role_name: str, policy_name: str) -> RolePolicy:
        self._role(role_name)
        policy = self._store.get_role_policy(role_name, policy_name)
        if policy is None:
            raise NoSuchEntity.role_policy(policy_name)
        return policy

    def list_role_policies(self, role_name: str) -> list[str]:
        self._role(role_name)
        return [p.policy_name for p in self._store.list_role_policies(role_name)]

    def delete_role_policy(self, role_name: str, policy_name: str) -> None:
        role = self._role(role_name)
        if not self._store.delete_role_policy(role_name, policy_name):
            raise NoSuchEntity.role_policy(policy_name)
        self._publish(role)
