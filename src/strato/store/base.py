"""Repositories of strato's state. Each backend (sqlite, postgres, memory) implements these.

Contracts shared by every backend:

- Records go in and come out as frozen domain models; no SQL or rows leak out.
- Writes are atomic: a failed call changes nothing.
- ``put_version`` is a compare-and-swap on ``revision_id`` so that two writers cannot both win.
- Methods are safe to call from any thread.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from strato.domain.event_invoke import EventInvokeConfig
from strato.domain.event_source_mappings import EventSourceMapping
from strato.domain.models import Alias, FunctionVersion, ProvisionedConcurrencyConfig
from strato.domain.permissions import ResourcePolicy


class FunctionStore(Protocol):
    """Functions: their versions (``$LATEST`` and published ones), tags and reserved
    concurrency. Deleting a function deletes everything that belongs to it."""

    def create_function(self, latest: FunctionVersion) -> None:
        """Store a new function whose ``$LATEST`` is ``latest``.

        Raises AlreadyExistsError if a function of that name exists.
        """

    def get_version(self, name: str, version: str) -> FunctionVersion | None:
        """The version ``version`` of function ``name``, or None."""

    def put_version(self, record: FunctionVersion, *, expected_revision: str) -> None:
        """Replace the stored record of (``record.name``, ``record.version``).

        Raises NotFoundError if it does not exist and RevisionMismatchError if its stored
        ``revision_id`` is not ``expected_revision``.
        """

    def list_latest(self, *, after: str | None, limit: int) -> list[FunctionVersion]:
        """``$LATEST`` of functions in name order, starting after the name ``after``."""

    def delete_function(self, name: str) -> bool:
        """Delete the function and all its versions; False if there was none."""

    def code_references(self) -> set[str]:
        """The sha256 hex of every package any stored version uses, its layers' included
        (for code-store GC)."""

    # published versions ---------------------------------------------------------------
    def last_version_number(self, name: str) -> int:
        """The number of the newest version ever published (0 if none). Numbers are never
        reused: deleting version 3 does not make the next publish 3 again.

        Raises NotFoundError if there is no such function."""

    def publish_version(self, record: FunctionVersion) -> None:
        """Store a published version. ``record.version`` must be the decimal text of
        ``last_version_number(name) + 1``, which becomes the new last number.

        Raises NotFoundError if the function does not exist, AlreadyExistsError if the number
        is not the next one (another publish won), ValueError for ``$LATEST`` or a version
        that is not a positive decimal number."""

    def list_versions(self, name: str, *, after: str | None, limit: int) -> list[FunctionVersion]:
        """The function's versions in AWS's order: ``$LATEST`` first, then published ones by
        number; starting after the version ``after`` (None: from the start). Empty if there
        is no such function. Raises ValueError unless ``limit`` >= 1."""

    def delete_version(self, name: str, version: str) -> bool:
        """Delete one published version; False if it did not exist. ValueError for
        ``$LATEST`` (only the whole function deletes it)."""

    # tags and reserved concurrency ----------------------------------------------------
    def get_tags(self, name: str) -> dict[str, str]:
        """The function's tags (empty if none or no such function)."""

    def put_tags(self, name: str, tags: Mapping[str, str]) -> None:
        """Replace the function's tags with ``tags``. Raises NotFoundError if there is no
        such function."""

    def get_reserved_concurrency(self, name: str) -> int | None:
        """The function's reserved concurrency, None if it has none (or no such function)."""

    def put_reserved_concurrency(self, name: str, value: int | None) -> None:
        """Set (an int >= 0) or clear (None) the function's reserved concurrency. Raises
        NotFoundError if there is no such function."""

    def reserved_concurrency(self) -> dict[str, int]:
        """Every function's reserved concurrency, by name (functions with none are absent)."""


class AliasStore(Protocol):
    """Aliases of functions. Writes are compare-and-swap on the alias's ``revision_id``.
    Deleting a function deletes its aliases (in SQLite by cascade; the service also calls
    nothing extra for it)."""

    def create_alias(self, alias: Alias) -> None:
        """Raises AlreadyExistsError if the function has an alias of that name, NotFoundError
        if the function does not exist."""

    def get_alias(self, function_name: str, name: str) -> Alias | None: ...

    def list_aliases(self, function_name: str) -> list[Alias]:
        """The function's aliases by name (empty if none or no such function)."""

    def put_alias(self, alias: Alias, *, expected_revision: str) -> None:
        """Replace an alias. Raises NotFoundError if it does not exist, RevisionMismatchError
        if its stored revision is not ``expected_revision``."""

    def delete_alias(self, function_name: str, name: str) -> bool:
        """False if there was no such alias."""


class ProvisionedConcurrencyStore(Protocol):
    """Provisioned concurrency configurations, one per (function, qualifier). Deleting a
    function, or the version or alias a configuration names, deletes the configuration
    (the services call ``delete_provisioned`` for versions and aliases)."""

    def put_provisioned(self, config: ProvisionedConcurrencyConfig) -> None:
        """Create or replace the configuration of (function, qualifier). Raises NotFoundError
        if the function does not exist."""

    def get_provisioned(self, function_name: str, qualifier: str) -> ProvisionedConcurrencyConfig | None: ...

    def list_provisioned(self, function_name: str | None = None) -> list[ProvisionedConcurrencyConfig]:
        """The configurations of one function (all functions when None), by function name
        then qualifier."""

    def delete_provisioned(self, function_name: str, qualifier: str) -> bool:
        """False if there was no such configuration."""


class PolicyStore(Protocol):
    """Resource-based policies, one per (function, qualifier); qualifier None is the
    unqualified function's.

    Writes are compare-and-swap on the policy's ``revision_id``: ``expected_revision`` is the
    revision the caller read, None when it read no policy. A policy with no statements is not
    stored (delete it instead). A backend that keeps functions alongside (SQLite) also drops a
    function's policies when the function is deleted; every caller still calls
    ``delete_policies`` then, which is idempotent.
    """

    def get_policy(self, function_name: str, qualifier: str | None) -> ResourcePolicy | None:
        """The policy of (``function_name``, ``qualifier``), or None."""

    def put_policy(self, policy: ResourcePolicy, *, expected_revision: str | None) -> None:
        """Create or replace the policy of (``policy.function_name``, ``policy.qualifier``).

        Raises RevisionMismatchError if the stored policy's revision (None if there is none)
        is not ``expected_revision``; NotFoundError where the backend knows that the function
        does not exist; ValueError for a policy without statements.
        """

    def delete_policy(self, function_name: str, qualifier: str | None, *, expected_revision: str) -> None:
        """Delete one policy; raises RevisionMismatchError if its stored revision (None if
        there is none) is not ``expected_revision``."""

    def delete_policies(self, function_name: str) -> None:
        """Delete every policy of the function (all qualifiers). Idempotent."""

    def list_policies(self) -> list[ResourcePolicy]:
        """Every stored policy, by function name then qualifier (unqualified first)."""


class EventSourceMappingStore(Protocol):
    """Event source mappings by UUID. They do not belong to their function: deleting a
    function leaves its mappings (AWS keeps them too)."""

    def create_mapping(self, mapping: EventSourceMapping) -> None:
        """Raises AlreadyExistsError if a mapping has that UUID."""

    def get_mapping(self, uuid: str) -> EventSourceMapping | None: ...

    def put_mapping(self, mapping: EventSourceMapping) -> None:
        """Replace a mapping. Raises NotFoundError if there is none of that UUID."""

    def delete_mapping(self, uuid: str) -> bool:
        """False if there was no such mapping."""

    def list_mappings(self, *, function_name: str | None = None,
                      event_source_arn: str | None = None, after: str | None = None,
                      limit: int | None = None) -> list[EventSourceMapping]:
        """Mappings by UUID, after the UUID ``after``, at most ``limit`` (None: all),
        only those of ``function_name`` and of ``event_source_arn`` when given."""


class LogEvent(NamedTuple):
    """One line of a function's log (CloudWatch Logs' shape: ms timestamps). A NamedTuple:
    the log writer makes one per invocation while it holds the GIL, so it must be cheap."""

    group: str
    stream: str
    timestamp_ms: int
    message: str


@dataclass(frozen=True)
class StoredLogEvent:
    """A LogEvent as stored, with its ingestion time and a position usable as a cursor."""

    event: LogEvent
    ingestion_ms: int
    position: int


@dataclass(frozen=True)
class LogStreamInfo:
    group: str
    stream: str
    first_event_ms: int
    last_event_ms: int
    last_ingestion_ms: int


class LogStore(Protocol):
    """Function logs, by log group (``/aws/lambda/<name>``) and stream (one per environment)."""

    def append(self, events: Sequence[LogEvent]) -> None:
        """Store ``events`` in order, in one transaction."""

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
        """Events of ``group`` (optionally only ``streams``), oldest first, with
        ``start_ms <= timestamp < end_ms`` and position greater than ``after_position``."""

    def streams(self, group: str, *, prefix: str | None = None) -> list[LogStreamInfo]:
        """The streams of ``group``, by name."""

    def delete_group(self, group: str) -> None:
        """Forget every event of ``group``."""

    def group_bytes(self, group: str) -> int:
        """The bytes (UTF-8) of the messages ``group`` holds."""

    def delete_oldest(self, group: str, at_least: int) -> int:
        """Delete the oldest events of ``group`` (by position) until at least ``at_least``
        bytes of messages are gone, or none is left; the bytes deleted. One transaction."""


class EventInvokeConfigStore(Protocol):
    """Asynchronous invocation settings (FunctionEventInvokeConfig), one per (function,
    qualifier); an unqualified one is stored under ``$LATEST``. A backend that keeps functions
    alongside (SQLite) drops a function's configurations with the function; every caller still
    calls ``delete_configs`` then, which is idempotent."""

    def put_config(self, config: EventInvokeConfig) -> None:
        """Create or replace the configuration of (function, qualifier). Raises NotFoundError
        where the backend knows that the function does not exist."""

    def get_config(self, function_name: str, qualifier: str) -> EventInvokeConfig | None: ...

    def list_configs(self, function_name: str | None = None) -> list[EventInvokeConfig]:
        """The configurations of one function (every function's when None), by function name
        then qualifier."""

    def delete_config(self, function_name: str, qualifier: str) -> bool:
        """False if there was no such configuration."""

    def delete_configs(self, function_name: str) -> None:
        """Delete every configuration of the function. Idempotent."""
