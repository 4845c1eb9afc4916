"""The invoke path's view of functions: an in-memory map of name → ``FunctionEntry``.

Loaded from the store at start, then kept current by the services' change notifications
(delivered on the event loop's thread, each a whole new entry). Reads are plain dict lookups,
so the invoke path never touches the database. ``resolve`` turns a qualifier into the version
that runs, alias weights included.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from strato.domain.models import LATEST, Alias, FunctionVersion
from strato.store.base import AliasStore, FunctionStore, ProvisionedConcurrencyStore


def _empty() -> Mapping[str, object]:
    return MappingProxyType({})


@dataclass(frozen=True)
class FunctionEntry:
    """Everything the invoke path knows of one function: ``$LATEST`` as it serves now, the
    published versions and aliases by name, the reserved concurrency (None: none) and the
    provisioned concurrency requested per qualifier."""

    latest: FunctionVersion
    versions: Mapping[str, FunctionVersion] = field(default_factory=_empty)  # type: ignore[arg-type]
    aliases: Mapping[str, Alias] = field(default_factory=_empty)  # type: ignore[arg-type]
    reserved_concurrency: int | None = None
    provisioned: Mapping[str, int] = field(default_factory=_empty)  # type: ignore[arg-type]

    @property
    def name(self) -> str:
        return self.latest.name

    def version(self, version: str) -> FunctionVersion | None:
        """``$LATEST`` or a published version by number, None if there is none."""
        return self.latest if version == LATEST else self.versions.get(version)

    def records(self) -> list[FunctionVersion]:
        """``$LATEST`` and every published version."""
        return [self.latest, *self.versions.values()]


def pick_version(alias: Alias, draw: float) -> str:
    """The version an invocation through ``alias`` runs, given a uniform ``draw`` in [0, 1):
    the additional version when the draw falls inside its weight, the alias's own otherwise."""
    for version, weight in alias.additional_weights.items():
        if draw < weight:
            return version
    return alias.function_version


def resolve(entry: FunctionEntry, qualifier: str | None,
            draw: float | None = None) -> FunctionVersion | None:
    """The version that serves an invocation of ``entry`` through ``qualifier`` (None or
    ``$LATEST``, a version number, or an alias name); None when the qualifier names nothing.
    ``draw`` (uniform in [0, 1)) decides a weighted alias's routing; random when omitted."""
    if qualifier is None or qualifier == LATEST:
        return entry.latest
    record = entry.versions.get(qualifier)
    if record is not None:
        return record
    alias = entry.aliases.get(qualifier)
    if alias is None:
        return None
    if alias.additional_weights:
        version = pick_version(alias, random.random() if draw is None else draw)
    else:
        version = alias.function_version
    return entry.version(version)


def load_entry(name: str, functions: FunctionStore, aliases: AliasStore,
               provisioned: ProvisionedConcurrencyStore) -> FunctionEntry | None:
    """Read a function's entry from the stores (on the control-plane thread); None if the
    function does not exist."""
    records: list[FunctionVersion] = []
    while batch := functions.list_versions(
            name, after=records[-1].version if records else None, limit=500):
        records += batch
    latest = next((r for r in records if r.version == LATEST), None)
    if latest is None:
        return None
    return FunctionEntry(
        latest=latest,
        versions=MappingProxyType({r.version: r for r in records if r.version != LATEST}),
        aliases=MappingProxyType({a.name: a for a in aliases.list_aliases(name)}),
        reserved_concurrency=functions.get_reserved_concurrency(name),
        provisioned=MappingProxyType(
            {c.qualifier: c.requested for c in provisioned.list_provisioned(name)}),
    )


class FunctionRegistry:
    def __init__(self, entries: Iterable[FunctionEntry] = ()) -> None:
        self._entries: dict[str, FunctionEntry] = {e.name: e for e in entries}

    def get(self, name: str) -> FunctionEntry | None:
        return self._entries.get(name)

    def put(self, name: str, entry: FunctionEntry | None) -> FunctionEntry | None:
        """Record a change; returns the entry it replaces (None if new)."""
        previous = self._entries.get(name)
        if entry is None:
            self._entries.pop(name, None)
        else:
            self._entries[name] = entry
        return previous

    def __len__(self) -> int:
        return len(self._entries)
