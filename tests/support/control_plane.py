"""The control plane on in-memory backends, for unit tests of the services: memory stores, the
memory code store, a registry kept in step as the application keeps it, deferred work run on
demand."""

from __future__ import annotations

from collections.abc import Callable

from strato.codestore.memory import MemoryCodeStore
from strato.domain.arns import Scope
from strato.sandbox.launch import Launchers
from strato.services.aliases import AliasService
from strato.services.concurrency import ConcurrencyService, ProvisionedState
from strato.services.functions import ConfigurationChanges, FunctionService
from strato.services.registry import FunctionRegistry, load_entry
from strato.store.memory_aliases import MemoryAliasStore, MemoryProvisionedStore
from strato.store.memory_functions import MemoryFunctionStore
from tests.support.zips import build_zip, file

SCOPE = Scope("us-east-1", "000000000000")
#: A custom runtime: no interpreter of the host is needed to create it.
RUNTIME = "provided.al2023"
CHANGES = ConfigurationChanges(runtime=RUNTIME, handler="app.handler",
                               role="arn:aws:iam::000000000000:role/r")


def package(text: str = "#!/bin/sh\n") -> bytes:
    return build_zip(file("bootstrap", text.encode(), 0o755))


class ControlPlane:
    def __init__(self, *, account_limit: int = 1000) -> None:
        self.functions = MemoryFunctionStore()
        self.aliases = MemoryAliasStore(self.functions)
        self.provisioned = MemoryProvisionedStore(self.functions)
        self.code = MemoryCodeStore()
        self.registry = FunctionRegistry()
        self.changed: list[str] = []
        self.deleted: list[tuple[str, str | None]] = []
        self.deferred: list[Callable[[], None]] = []
        self.pool_states: dict[tuple[str, str], ProvisionedState] = {}
        self.function_service = FunctionService(
            self.functions, self.code, Launchers.builtin(), self._on_change,
            self.deferred.append, on_delete=lambda n, v: self.deleted.append((n, v)),
            aliases=self.aliases)
        self.alias_service = AliasService(self.functions, self.aliases, self._on_change)
        self.concurrency_service = ConcurrencyService(
            self.functions, self.aliases, self.provisioned, account_limit, self._on_change,
            lambda name, qualifier: self.pool_states.get((name, qualifier)))

    def _on_change(self, name: str) -> None:
        self.changed.append(name)
        self.registry.put(name, load_entry(name, self.functions, self.aliases, self.provisioned))

    def settle(self) -> None:
        """Run the deferred work (what the control-plane thread runs after a response)."""
        while self.deferred:
            self.deferred.pop(0)()
