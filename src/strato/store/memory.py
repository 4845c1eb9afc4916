"""In-memory ``FunctionStore``, ``AliasStore``, ``ProvisionedConcurrencyStore``, ``LogStore``
and ``PolicyStore``: the contracts of ``store.base`` in plain dicts.

For unit tests of the services and for throw-away servers; nothing survives the process.
Every method holds the store's lock for its whole body, so each call is atomic and the stores
are safe to use from any thread. Frozen records need no copying on the way in or out.

The alias and provisioned concurrency stores given a ``MemoryFunctionStore`` share its lock
and hear of every function it deletes, as SQLite's cascade would: a function's aliases and
configurations go in the same atomic step as the function, and none can be written for a
function that does not exist.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from strato.domain.models import LATEST, Alias, FunctionVersion, ProvisionedConcurrencyConfig
from strato.domain.permissions import ResourcePolicy
from strato.errors import AlreadyExistsError, NotFoundError, RevisionMismatchError
from strato.store.base import LogEvent, LogStreamInfo, StoredLogEvent
from strato.store.codec import published_number


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class _Function:
    """What the memory store keeps of one function."""

    versions: dict[str, FunctionVersion]
    last_version: int = 0
    tags: dict[str, str] = field(default_factory=dict)
    reserved: int | None = None


def _version_order(version: str) -> int:
    """AWS's order of versions: ``$LATEST`` first, then published ones by number."""
    return 0 if version == LATEST else int(version)


class MemoryFunctionStore:
    """Functions by name, each with a dict of its versions by version string."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._functions: dict[str, _Function] = {}
        self._on_delete: list[Callable[[str], None]] = []

    def create_function(self, latest: FunctionVersion) -> None:
        if latest.version != LATEST:
            raise ValueError(f"a new function starts at {LATEST}, not {latest.version}")
        with self._lock:
            if latest.name in self._functions:
                raise AlreadyExistsError(f"function {latest.name} exists")
            self._functions[latest.name] = _Function(versions={LATEST: latest})

    def get_version(self, name: str, version: str) -> FunctionVersion | None:
        with self._lock:
            function = self._functions.get(name)
            return None if function is None else function.versions.get(version)

    def put_version(self, record: FunctionVersion, *, expected_revision: str) -> None:
        with self._lock:
            function = self._functions.get(record.name)
            stored = None if function is None else function.versions.get(record.version)
            if function is None or stored is None:
                raise NotFoundError(f"function {record.name} has no version {record.version}")
            if stored.revision_id != expected_revision:
                raise RevisionMismatchError(
                    f"{record.name}:{record.version} is at revision {stored.revision_id},"
                    f" not {expected_revision}"
                )
            function.versions[record.version] = record

    def list_latest(self, *, after: str | None, limit: int) -> list[FunctionVersion]:
        """Raises ValueError unless ``limit`` >= 1."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        with self._lock:
            names = sorted(name for name in self._functions if after is None or name > after)
            return [self._functions[name].versions[LATEST] for name in names[:limit]]

    def delete_function(self, name: str) -> bool:
        """Also forgets, in the same step, the function's records in the stores that share
        this store's lock (``_share_lock``)."""
        with self._lock:
            if self._functions.pop(name, None) is None:
                return False
            for forget in self._on_delete:
                forget(name)
            return True

    def code_references(self) -> set[str]:
        with self._lock:
            return {
                record.code.sha256_hex
                for function in self._functions.values()
                for record in function.versions.values()
            }

    # published versions ---------------------------------------------------------------
    def last_version_number(self, name: str) -> int:
        with self._lock:
            return self._function(name).last_version

    def publish_version(self, record: FunctionVersion) -> None:
        number = published_number(record.version)
        with self._lock:
            function = self._function(record.name)
            if number != function.last_version + 1:
                raise AlreadyExistsError(
                    f"{record.name} is at version {function.last_version}:"
                    f" {number} is not the next one"
                )
            function.versions[record.version] = record
            function.last_version = number

    def list_versions(self, name: str, *, after: str | None, limit: int) -> list[FunctionVersion]:
        """Raises ValueError if ``after`` is neither ``$LATEST`` nor a version number."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        start = -1 if after is None else 0 if after == LATEST else published_number(after)
        with self._lock:
            function = self._functions.get(name)
            if function is None:
                return []
            wanted = sorted((v for v in function.versions if _version_order(v) > start),
                            key=_version_order)
            return [function.versions[v] for v in wanted[:limit]]

    def delete_version(self, name: str, version: str) -> bool:
        if version == LATEST:
            raise ValueError(f"{LATEST} is deleted only with its function")
        with self._lock:
            function = self._functions.get(name)
            return function is not None and function.versions.pop(version, None) is not None

    # tags and reserved concurrency ----------------------------------------------------
    def get_tags(self, name: str) -> dict[str, str]:
        with self._lock:
            function = self._functions.get(name)
            return {} if function is None else dict(function.tags)

    def put_tags(self, name: str, tags: Mapping[str, str]) -> None:
        with self._lock:
            self._function(name).tags = dict(tags)

    def get_reserved_concurrency(self, name: str) -> int | None:
        with self._lock:
            function = self._functions.get(name)
            return None if function is None else function.reserved

    def put_reserved_concurrency(self, name: str, value: int | None) -> None:
        """Raises ValueError for a negative ``value``."""
        if value is not None and value < 0:
            raise ValueError(f"reserved concurrency must be at least 0, not {value}")
        with self._lock:
            self._function(name).reserved = value

    def reserved_concurrency(self) -> dict[str, int]:
        with self._lock:
            return {
                name: function.reserved
                for name, function in sorted(self._functions.items())
                if function.reserved is not None
            }

    # for the stores of a function's other records -------------------------------------
    def _share_lock(self, forget: Callable[[str], None]) -> threading.Lock:
        """Register ``forget``, called with the name of each deleted function while this
        store's lock is held, and return that lock: the caller must hold it, not a lock of
        its own, around everything it does (so ``forget`` needs no locking)."""
        with self._lock:
            self._on_delete.append(forget)
        return self._lock

    def _exists(self, name: str) -> bool:
        """Caller holds this store's lock."""
        return name in self._functions

    def _function(self, name: str) -> _Function:
        """Caller holds the lock. Raises NotFoundError if there is no such function."""
        function = self._functions.get(name)
        if function is None:
            raise NotFoundError(f"function {name} does not exist")
        return function


class _FunctionRecords:
    """The lock and existence check of a memory store of records that belong to functions:
    with ``functions``, its lock and its functions (``forget`` hears of every deleted one);
    without, a lock of its own and every function taken to exist."""

    def __init__(self, functions: MemoryFunctionStore | None, forget: Callable[[str], None]) -> None:
        self._functions = functions
        self.lock = threading.Lock() if functions is None else functions._share_lock(forget)

    def require(self, name: str) -> None:
        """Caller holds ``lock``. Raises NotFoundError if the function is known not to exist."""
        if self._functions is not None and not self._functions._exists(name):
            raise NotFoundError(f"function {name} does not exist")


class MemoryAliasStore:
    """Aliases by (function name, alias name). Give it the ``MemoryFunctionStore`` they
    belong to, so that it refuses aliases of missing functions and drops a deleted
    function's; without one it takes every function to exist."""

    def __init__(self, functions: MemoryFunctionStore | None = None) -> None:
        self._aliases: dict[tuple[str, str], Alias] = {}
        self._records = _FunctionRecords(functions, self._forget_function)
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
        self._records = _FunctionRecords(functions, self._forget_function)
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


class MemoryLogStore:
    """Log events in one list in append order; positions count from 1 and are never reused.

    ``clock`` gives the ingestion time in epoch milliseconds.
    """

    def __init__(self, *, clock: Callable[[], int] = _wall_clock_ms) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._events: list[StoredLogEvent] = []
        self._last_position = 0

    def append(self, events: Sequence[LogEvent]) -> None:
        if not events:
            return
        ingestion_ms = self._clock()
        with self._lock:
            for event in events:
                self._last_position += 1
                self._events.append(
                    StoredLogEvent(event=event, ingestion_ms=ingestion_ms,
                                   position=self._last_position)
                )

    def query(
        self,
        group: str,
        *,
        streams: Sequence[str] | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
        after_position: int = 0,
        limit: int = 10_000,
    ) -> list[StoredLogEvent]:
        """Ordered by position (the order of ``append``), so that the last position returned
        is a cursor for the next page. Raises ValueError unless ``limit`` >= 1."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        wanted = None if streams is None else set(streams)
        found: list[StoredLogEvent] = []
        with self._lock:
            for stored in self._events:
                event = stored.event
                if (
                    event.group == group
                    and stored.position > after_position
                    and (wanted is None or event.stream in wanted)
                    and (start_ms is None or event.timestamp_ms >= start_ms)
                    and (end_ms is None or event.timestamp_ms < end_ms)
                ):
                    found.append(stored)
                    if len(found) == limit:
                        break
        return found

    def streams(self, group: str, *, prefix: str | None = None) -> list[LogStreamInfo]:
        infos: dict[str, LogStreamInfo] = {}
        with self._lock:
            for stored in self._events:
                event = stored.event
                if event.group != group or not event.stream.startswith(prefix or ""):
                    continue
                seen = infos.get(event.stream)
                infos[event.stream] = LogStreamInfo(
                    group=group,
                    stream=event.stream,
                    first_event_ms=min(event.timestamp_ms,
                                       seen.first_event_ms if seen else event.timestamp_ms),
                    last_event_ms=max(event.timestamp_ms,
                                      seen.last_event_ms if seen else event.timestamp_ms),
                    last_ingestion_ms=max(stored.ingestion_ms,
                                          seen.last_ingestion_ms if seen else 0),
                )
        return [infos[stream] for stream in sorted(infos)]

    def delete_group(self, group: str) -> None:
        with self._lock:
            self._events = [s for s in self._events if s.event.group != group]

    def group_bytes(self, group: str) -> int:
        with self._lock:
            return sum(len(s.event.message.encode()) for s in self._events
                       if s.event.group == group)

    def delete_oldest(self, group: str, at_least: int) -> int:
        with self._lock:
            freed, kept = 0, []
            for stored in self._events:
                if stored.event.group == group and freed < at_least:
                    freed += len(stored.event.message.encode())
                else:
                    kept.append(stored)
            self._events = kept
            return freed


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
