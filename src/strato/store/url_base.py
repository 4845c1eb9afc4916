"""The repository of function URL configurations (``domain.function_urls``): one Protocol,
two backends (``memory_urls`` for tests, ``sqlite_urls`` for a server).

Contracts:

- At most one configuration per (function, qualifier); ``qualifier`` None is the unqualified
  function's. ``create_config`` of a second one changes nothing and raises
  AlreadyExistsError; ``update_config`` of a missing one raises NotFoundError.
- URL ids are unique across every configuration; an update keeps the id it was created with.
- The store does not know functions or aliases (it lives in a file of its own): whoever
  deletes a function or an alias deletes its configurations.
- Every call is atomic.
"""

from __future__ import annotations

from typing import Protocol

from strato.domain.function_urls import FunctionUrlConfig


class FunctionUrlConfigStore(Protocol):
    def create_config(self, config: FunctionUrlConfig) -> None:
        """Raises AlreadyExistsError when (function, qualifier) has a configuration."""

    def update_config(self, config: FunctionUrlConfig) -> None:
        """Replace the configuration of (function, qualifier), URL id included as given.
        Raises NotFoundError when there is none."""

    def get_config(self, function_name: str, qualifier: str | None) -> FunctionUrlConfig | None:
        ...

    def list_configs(self, function_name: str | None = None) -> list[FunctionUrlConfig]:
        """The configurations of one function (every function's when None), by function
        name, then the unqualified one first, then by alias name."""

    def delete_config(self, function_name: str, qualifier: str | None) -> bool:
        """False if there was no such configuration."""

    def delete_configs(self, function_name: str) -> None:
        """Delete every configuration of the function. Idempotent."""
