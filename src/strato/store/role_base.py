"""The ``RoleStore`` Protocol: IAM roles and their inline policies.

Backends: ``sqlite_roles`` (its own file, ``iam.db``) and ``memory_roles`` (tests); both pass
``tests/support/role_store_contracts.py``. Names are unique regardless of case (IAM's rule):
every lookup by name ignores case, and what is stored keeps the case it was created with.
"""

from __future__ import annotations

from typing import Protocol

from strato.domain.iam.roles import Role, RolePolicy


class RoleStore(Protocol):
    def create_role(self, role: Role) -> None:
        """Store a new role; AlreadyExistsError if a role has its name (in any case)."""

    def get_role(self, name: str) -> Role | None:
        """The role named ``name`` (any case), or None."""

    def list_roles(self) -> list[Role]:
        """Every role, by name."""

    def update_trust_policy(self, name: str, document: str) -> None:
        """Replace a role's trust policy; NotFoundError if there is no such role."""

    def delete_role(self, name: str) -> None:
        """Delete a role that has no inline policy left; NotFoundError if there is no such
        role, InUseError (and the role is kept) while it has inline policies."""

    def put_role_policy(self, policy: RolePolicy) -> None:
        """Create or replace an inline policy of its role (a policy name keeps the case it
        was first stored with); NotFoundError if the role does not exist."""

    def get_role_policy(self, role_name: str, policy_name: str) -> RolePolicy | None:
        """One inline policy (names in any case), or None."""

    def list_role_policies(self, role_name: str) -> list[RolePolicy]:
        """The inline policies of a role, by policy name (empty for an unknown role)."""

    def delete_role_policy(self, role_name: str, policy_name: str) -> bool:
        """Delete one inline policy; False if there was none."""

    def close(self) -> None:
        """Release the backend's resources; legal once no other thread uses it."""
