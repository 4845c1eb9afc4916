"""The in-memory ``AliasStore`` and ``ProvisionedConcurrencyStore`` (contracts in
``store.base``), as ``sqlite_aliases`` is for SQLite.

Every method holds the store's lock, so each call is atomic. Given the ``MemoryFunctionStore``
their records belong to, both share its lock and lose a function's records in the same step
that deletes the function (``memory_functions.FunctionRecords``).
"""

from __future__ import annotations

from strato.domain.models import Alias, ProvisionedConcurrencyConfig
from strato.errors import AlreadyExistsError, NotFoundError, RevisionMismatchError
from strato.store.memory_functions import FunctionRecords, MemoryFunctionStore


class MemoryAliasStore:
    """Aliases by (function name, alias name). Give it the ``MemoryFunctionStore`` they
    belong to, so that it refuses aliases of missing functions and drops a deleted
    function's; without one it takes every function to exist."""

    def __init__(self, functions: MemoryFunctionStore | None = None) -> None:
        self._aliases: dict[tuple[str, str], Alias] = {}
        self._records = FunctionRecords(functions, self._forget_function)
        self._lock = self._records.lock

    def create_alias(self, alias: Alias) -> None:
        key = (alias.function_name, alias.name)
        with self._lock:
            self._records.require(alias.function_name)
            if key in self._aliases:
                raise AlreadyExistsError(f"function {key[0]} has an alias {key[1]}")
            self._aliases[key] = alias

    def get_alias(self, function_name: str, name: str) -> Alias | None:
        with self._lock:
            return self._aliases.get((function_name, name))

    def list_aliases(self, function_name: str) -> list[Alias]:
        with self._lock:
            return [self._aliases[k] for k in sorted(self._aliases) if k[0] == function_name]

    def put_alias(self, alias: Alias, *, expected_revision: str) -> None:
        key = (alias.function_name, alias.name)
        with self._lock:
            stored = self._aliases.get(key)
            if stored is None:
                raise NotFoundError(f"function {key[0]} has no alias {key[1]}")
            if stored.revision_id != expected_revision:
                raise RevisionMismatchError(
                    f"alias {key[0]}:{key[1]} is at revision {stored.revision_id},"
                    f" not {expected_revision}"
                )
            self._aliases[key] = alias

    def delete_alias(self, function_name: str, name: str) -> bool:
        with self._lock:
            return self._aliases.pop((function_name, name), None) is not None

    def _forget_function(self, function_name: str) -> None:
        """Caller holds the lock."""
        for key in [k for k in self._aliases if k[0] == function_name]:
            del self._aliases[key]


class MemoryProvisionedStore:
    """Provisioned concurrency configurations by (function name, qualifier). Give it the
    ``MemoryFunctionStore`` they belong to, as for ``MemoryAliasStore``."""

    def __init__(self, functions: MemoryFunctionStore | None = None) -> None:
        self._configs: dict[tuple[str, str], ProvisionedConcurrencyConfig] = {}
        self._records = FunctionRecords(functions, self._forget_function)
        self._lock = self._records.lock

    def put_provisioned(self, config: ProvisionedConcurrencyConfig) -> None:
        with self._lock:
            self._records.require(config.function_name)
            self._configs[(config.function_name, config.qualifier)] = config

    def get_provisioned(self, function_name: str, qualifier: str) -> ProvisionedConcurrencyConfig | None:
        with self._lock:
            return self._configs.get((function_name, qualifier))

    def list_provisioned(self, function_name: str | None = None) -> list[ProvisionedConcurrencyConfig]:
        with self._lock:
            return [
                self._configs[key]
                for key in sorted(self._configs)
                if function_name is None or key[0] == function_name
            ]

    def delete_provisioned(self, function_name: str, qualifier: str) -> bool:
        with self._lock:
            return self._configs.pop((function_name, qualifier), None) is not None

    def _forget_function(self, function_name: str) -> None:
        """Caller holds the lock."""
        for key in [k for k in self._configs if k[0] == function_name]:
            del self._configs[key]
