"""Applies a committed change of a function to the invoke path (on the event loop's thread).

The control plane announces a change by reloading the function's whole ``FunctionEntry``
(``registry.load_entry``); ``EntryApplier.apply`` then puts it in the registry and brings the
environment pool in line with it:

- environments of a version whose record changed or went are retired (an update of
  ``$LATEST`` retires only ``$LATEST``'s, so published versions stay warm); those of a
  version that went (DeleteFunction, a deleted version) end at once, busy or not;
- the function's reserved concurrency is handed to the pool's limits;
- each provisioned concurrency configuration is (re)applied to the version its qualifier
  resolves to now (an alias that moves takes its provisioned environments along), and
  configurations that went are removed.

While an update of ``$LATEST`` is in progress the previous settled ``$LATEST`` keeps serving,
as on Lambda.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from strato.domain.models import LATEST, FunctionVersion, LastUpdateStatus
from strato.scheduler.pool import EnvironmentPool
from strato.services.registry import FunctionEntry, FunctionRegistry


class EntryApplier:
    def __init__(self, registry: FunctionRegistry, pool: EnvironmentPool,
                 prepare: Callable[[FunctionVersion], None]) -> None:
        self._registry = registry
        self._pool = pool
        #: Called with each ready version, so that its runtime can be readied ahead of use.
        self._prepare = prepare

    def apply(self, name: str, entry: FunctionEntry | None) -> None:
        current = self._registry.get(name)
        if (entry is not None and current is not None
                and entry.latest.last_update_status is LastUpdateStatus.IN_PROGRESS):
            entry = dataclasses.replace(entry, latest=current.latest)
        self._registry.put(name, entry)
        self._retire_changed(name, current, entry)
        self._pool.set_reserved(name, None if entry is None else entry.reserved_concurrency)
        self._provision(name, current, entry)
        if entry is not None:
            for record in entry.records():
                if record.is_ready:
                    self._prepare(record)

    def load(self, entries: list[FunctionEntry]) -> None:
        """Apply the entries read at start (nothing is in the registry yet)."""
        for entry in entries:
            self.apply(entry.name, entry)

    def _retire_changed(self, name: str, before: FunctionEntry | None,
                        after: FunctionEntry | None) -> None:
        if before is None:
            return
        for record in before.records():
            now = None if after is None else after.version(record.version)
            if now is None or now.revision_id != record.revision_id:
                self._pool.retire(name, record.version, deleted=now is None)

    def _provision(self, name: str, before: FunctionEntry | None,
                   after: FunctionEntry | None) -> None:
        wanted = {} if after is None else dict(after.provisioned)
        if before is not None:
            for qualifier in before.provisioned:
                if qualifier not in wanted:
                    self._pool.unprovision((name, qualifier))
        if after is None:
            return
        for qualifier, count in wanted.items():
            record = _target(after, qualifier)
            if record is None:
                self._pool.unprovision((name, qualifier))
            elif (before is None or before.provisioned.get(qualifier) != count
                  or _key(_target(before, qualifier)) != _key(record)):
                # Only a change of count or target reaches the pool: provisioning again would
                # reset a FAILED configuration's backoff on every unrelated change.
                self._pool.provision((name, qualifier), record, count)


def _key(record: FunctionVersion | None) -> tuple[str, str] | None:
    return None if record is None else (record.version, record.revision_id)


def _target(entry: FunctionEntry, qualifier: str) -> FunctionVersion | None:
    """The version a provisioned configuration keeps environments of: the version itself, or
    the version an alias points to (never ``$LATEST``)."""
    if qualifier.isdigit():
        return entry.versions.get(qualifier)
    alias = entry.aliases.get(qualifier)
    if alias is None or alias.function_version == LATEST:
        return None
    return entry.versions.get(alias.function_version)
