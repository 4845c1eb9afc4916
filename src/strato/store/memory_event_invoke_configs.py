"""The in-memory ``EventInvokeConfigStore`` (contract in ``store.base``), for unit tests.

Every method holds the store's lock, so each call is atomic. Given a ``MemoryFunctionStore``,
it refuses configurations of functions that do not exist, as SQLite's foreign key does.
"""

from __future__ import annotations

import threading

from strato.domain.event_invoke import EventInvokeConfig
from strato.domain.models import LATEST
from strato.errors import NotFoundError
from strato.store.memory_functions import MemoryFunctionStore


class MemoryEventInvokeConfigStore:
    def __init__(self, functions: MemoryFunctionStore | None = None) -> None:
        self._functions = functions
        self._lock = threading.Lock()
        self._configs: dict[tuple[str, str], EventInvokeConfig] = {}

    def put_config(self, config: EventInvokeConfig) -> None:
        if self._functions is not None and self._functions.get_version(
                config.function_name, LATEST) is None:
            raise NotFoundError(f"function {config.function_name} does not exist")
        with self._lock:
            self._configs[(config.function_name, config.qualifier)] = config

    def get_config(self, function_name: str, qualifier: str) -> EventInvokeConfig | None:
        with self._lock:
            return self._configs.get((function_name, qualifier))

    def list_configs(self, function_name: str | None = None) -> list[EventInvokeConfig]:
        with self._lock:
            return [config for key, config in sorted(self._configs.items())
                    if function_name is None or key[0] == function_name]

    def delete_config(self, function_name: str, qualifier: str) -> bool:
        with self._lock:
            return self._configs.pop((function_name, qualifier), None) is not None

    def delete_configs(self, function_name: str) -> None:
        with self._lock:
            for key in [k for k in self._configs if k[0] == function_name]:
                del self._configs[key]
