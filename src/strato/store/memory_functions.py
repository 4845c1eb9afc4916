"""The in-memory ``FunctionStore`` (contract in ``store.base``): functions, their versions,
tags and reserved concurrency in plain dicts, for unit tests of the services and throw-away
servers; nothing survives the process.

Every method holds the store's lock for its whole body, so each call is atomic and the store
is safe to use from any thread. Frozen records need no copying on the way in or out.

``FunctionRecords`` is how the memory stores of a function's other records (aliases,
provisioned concurrency: ``memory_aliases``) share this store's lock and hear of every
function it deletes, as SQLite's cascade would: a function's records go in the same atomic
step as the function, and none can be written for a function that does not exist.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from strato.domain.models import LATEST, FunctionVersion
from strato.errors import AlreadyExistsError, NotFoundError, RevisionMismatchError
from strato.store.codec import published_number


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
                code.sha256_hex
                for function in self._functions.values()
                for record in function.versions.values()
                for code in (record.code, *(layer.code for layer in record.layers))
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


class FunctionRecords:
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
