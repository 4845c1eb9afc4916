"""The in-memory ``FunctionUrlConfigStore`` (contract in ``store.url_base``), for unit tests.
Every method holds the store's lock, so each call is atomic."""

from __future__ import annotations

import threading

from strato.domain.function_urls import FunctionUrlConfig
from strato.errors import AlreadyExistsError, NotFoundError


def _order(config: FunctionUrlConfig) -> tuple[str, str]:
    return config.function_name, config.qualifier or ""


class MemoryFunctionUrlConfigStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._configs: dict[tuple[str, str | None], FunctionUrlConfig] = {}

    def create_config(self, config: FunctionUrlConfig) -> None:
        key = (config.function_name, config.qualifier)
        with self._lock:
            if key in self._configs:
                raise AlreadyExistsError(f"{config.function_name} {config.qualifier} has a URL")
            if any(c.url_id == config.url_id for c in self._configs.values()):
                raise AlreadyExistsError(f"URL id {config.url_id} is taken")
            self._configs[key] = config

    def update_config(self, config: FunctionUrlConfig) -> None:
        key = (config.function_name, config.qualifier)
        with self._lock:
            if key not in self._configs:
                raise NotFoundError(f"{config.function_name} {config.qualifier} has no URL")
            self._configs[key] = config

    def get_config(self, function_name: str, qualifier: str | None) -> FunctionUrlConfig | None:
        with self._lock:
            return self._configs.get((function_name, qualifier))

    def list_configs(self, function_name: str | None = None) -> list[FunctionUrlConfig]:
        with self._lock:
            found = [c for c in self._configs.values()
                     if function_name is None or c.function_name == function_name]
        return sorted(found, key=_order)

    def delete_config(self, function_name: str, qualifier: str | None) -> bool:
        with self._lock:
            return self._configs.pop((function_name, qualifier), None) is not None

    def delete_configs(self, function_name: str) -> None:
        with self._lock:
            for key in [k for k in self._configs if k[0] == function_name]:
                del self._configs[key]
