"""The function URL directory: every URL's configuration by its URL id, in memory.

Serving a URL request reads it on the event loop (``UrlDirectory.find``) and never the
database: the function URL service writes each committed change into the live directory
(``UrlDirectoryCache``) on the control-plane thread. ``FakeUrlDirectory`` stands in for it in
tests of the serving side.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Protocol

from strato.domain.function_urls import FunctionUrlConfig


class UrlDirectory(Protocol):
    """What serving a function URL needs to know about URLs."""

    def find(self, url_id: str) -> FunctionUrlConfig | None:
        """The configuration of the URL with this id, or None when there is none (never
        created, or deleted with its function or alias). Reads no database; safe on any
        thread."""
        ...


class UrlDirectoryCache:
    """The live ``UrlDirectory``. Written by one thread (the control plane), read by any:
    each write replaces a whole immutable mapping, so a reader sees a change entirely or not
    at all."""

    def __init__(self, configs: Iterable[FunctionUrlConfig] = ()) -> None:
        self._by_id: Mapping[str, FunctionUrlConfig] = MappingProxyType(
            {config.url_id: config for config in configs})

    def find(self, url_id: str) -> FunctionUrlConfig | None:
        return self._by_id.get(url_id)

    def put(self, config: FunctionUrlConfig) -> None:
        """Add or replace a configuration (the URL id stays the same across updates)."""
        self._by_id = MappingProxyType({**self._by_id, config.url_id: config})

    def remove(self, function_name: str, qualifier: str | None) -> None:
        """Forget the URL of one qualifier (None: the unqualified function's)."""
        self._by_id = MappingProxyType({
            url_id: config for url_id, config in self._by_id.items()
            if (config.function_name, config.qualifier) != (function_name, qualifier)})

    def remove_function(self, function_name: str) -> None:
        """Forget every URL of a function (it was deleted)."""
        self._by_id = MappingProxyType({
            url_id: config for url_id, config in self._by_id.items()
            if config.function_name != function_name})


class FakeUrlDirectory:
    """A ``UrlDirectory`` holding what a test gives it."""

    def __init__(self, *configs: FunctionUrlConfig) -> None:
        self.configs = {config.url_id: config for config in configs}

    def find(self, url_id: str) -> FunctionUrlConfig | None:
        return self.configs.get(url_id)
