"""In-memory ``FunctionStore``, ``LogStore`` and ``PolicyStore``: the contracts of ``store.base``
in plain dicts.

For unit tests of the services and for throw-away servers; nothing survives the process.
Every method holds the store's lock for its whole body, so each call is atomic and the stores
are safe to use from any thread. Frozen records need no copying on the way in or out.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from strato.domain.models import LATEST, FunctionVersion
from strato.domain.permissions import ResourcePolicy
from strato.errors import AlreadyExistsError, NotFoundError, RevisionMismatchError
from strato.store.base import LogEvent, LogStreamInfo, StoredLogEvent


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class MemoryFunctionStore:
    """Functions by name, each a dict of its versions by version string."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._functions: dict[str, dict[str, FunctionVersion]] = {}

    def create_function(self, latest: FunctionVersion) -> None:
        if latest.version != LATEST:
            raise ValueError(f"a new function starts at {LATEST}, not {latest.version}")
        with self._lock:
            if latest.name in self._functions:
                raise AlreadyExistsError(f"function {latest.name} exists")
            self._functions[latest.name] = {LATEST: latest}

    def get_version(self, name: str, version: str) -> FunctionVersion | None:
        with self._lock:
            return self._functions.get(name, {}).get(version)

    def put_version(self, record: FunctionVersion, *, expected_revision: str) -> None:
        with self._lock:
            versions = self._functions.get(record.name, {})
            stored = versions.get(record.version)
            if stored is None:
                raise NotFoundError(f"function {record.name} has no version {record.version}")
            if stored.revision_id != expected_revision:
                raise RevisionMismatchError(
                    f"{record.name}:{record.version} is at revision {stored.revision_id},"
                    f" not {expected_revision}"
                )
            versions[record.version] = record

    def list_latest(self, *, after: str | None, limit: int) -> list[FunctionVersion]:
        """Raises ValueError unless ``limit`` >= 1."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        with self._lock:
            names = sorted(name for name in self._functions if after is None or name > after)
            return [self._functions[name][LATEST] for name in names[:limit]]

    def delete_function(self, name: str) -> bool:
        with self._lock:
            return self._functions.pop(name, None) is not None

    def code_references(self) -> set[str]:
        with self._lock:
            return {
                record.code.sha256_hex
                for versions in self._functions.values()
                for record in versions.values()
            }


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
