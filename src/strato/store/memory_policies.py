"""The in-memory ``PolicyStore`` (contract in ``store.base``): resource policies in a dict, for
unit tests and throw-away servers. Every method holds the store's lock, so each call is atomic.
"""

from __future__ import annotations

import threading

from strato.domain.permissions import ResourcePolicy
from strato.errors import RevisionMismatchError


class MemoryPolicyStore:
    """Policies by (function name, qualifier). It does not know which functions exist: the
    function service's delete hook calls ``delete_policies``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._policies: dict[tuple[str, str | None], ResourcePolicy] = {}

    def get_policy(self, function_name: str, qualifier: str | None) -> ResourcePolicy | None:
        with self._lock:
            return self._policies.get((function_name, qualifier))

    def put_policy(self, policy: ResourcePolicy, *, expected_revision: str | None) -> None:
        if not policy.statements:
            raise ValueError("a policy without statements is deleted, not stored")
        key = (policy.function_name, policy.qualifier)
        with self._lock:
            self._check_revision(key, expected_revision)
            self._policies[key] = policy

    def delete_policy(self, function_name: str, qualifier: str | None, *, expected_revision: str) -> None:
        key = (function_name, qualifier)
        with self._lock:
            self._check_revision(key, expected_revision)
            del self._policies[key]

    def delete_policies(self, function_name: str) -> None:
        with self._lock:
            for key in [k for k in self._policies if k[0] == function_name]:
                del self._policies[key]

    def list_policies(self) -> list[ResourcePolicy]:
        with self._lock:
            keys = sorted(self._policies, key=lambda k: (k[0], k[1] or ""))
            return [self._policies[k] for k in keys]

    def _check_revision(self, key: tuple[str, str | None], expected: str | None) -> None:
        """Caller holds the lock."""
        stored = self._policies.get(key)
        revision = None if stored is None else stored.revision_id
        if revision != expected:
            raise RevisionMismatchError(
                f"policy of {key[0]}:{key[1] or ''} is at revision {revision}, not {expected}"
            )
