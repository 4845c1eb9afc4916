"""Repositories of strato's state. Each backend (sqlite, postgres, memory) implements these.

Contracts shared by every backend:

- Records go in and come out as frozen domain models; no SQL or rows leak out.
- Writes are atomic: a failed call changes nothing.
- ``put_version`` is a compare-and-swap on ``revision_id`` so that two writers cannot both win.
- Methods are safe to call from any thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from strato.domain.models import FunctionVersion
from strato.domain.permissions import ResourcePolicy


class FunctionStore(Protocol):
    """Functions and their versions (only ``$LATEST`` for now)."""

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
        """The sha256 hex of every package any stored version uses (for code-store GC)."""


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


@dataclass(frozen=True)
class LogEvent:
    """One line of a function's log (CloudWatch Logs' shape: ms timestamps)."""

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
