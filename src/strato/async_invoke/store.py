"""The durable queue of asynchronous events and of their deliveries, behind one Protocol.

Contracts every backend keeps:

- Work runs in transactions: ``EventStore.atomically(work)`` runs ``work`` with an
  ``EventTransaction`` and commits it, durably, before returning (or rolls it back if it
  raises). Inside, ``savepoint()`` isolates one piece of work: if it raises, only its changes
  are undone. The group-commit writer (``async_invoke.writer``) runs many callers' work in one
  transaction this way.
- **Leases.** ``claim`` moves waiting events to IN_FLIGHT under a lease that expires at
  ``lease_expires_at`` and bumps each event's ``generation`` (the fencing token). ``settle``
  changes an event only while it is IN_FLIGHT with the generation its claim returned: a
  worker whose lease lapsed and whose event was taken again can neither settle it nor write
  its deliveries. ``expire_leases`` returns lapsed claims to the queue; ``release_leases``
  returns every claim (a server starting on a data dir that only it uses).
- **Counting.** A claim counts as an invocation of the function until it is settled with
  ``invoked=False`` (throttled, never started, too old): a worker killed mid-attempt leaves
  the attempt counted, so duplicates are visible.
- Deliveries follow the same lease and generation rules, from their own table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Protocol, TypeVar

from strato.async_invoke.events import (
    MAX_CLAIM_BYTES,
    ClaimedDelivery,
    ClaimedEvent,
    EventState,
    LedgerEntry,
    NewEvent,
    Settlement,
)

T = TypeVar("T")


class EventTransaction(Protocol):
    def savepoint(self) -> AbstractContextManager[None]:
        """Undo only this block's changes if it raises (the exception propagates)."""

    # events ---------------------------------------------------------------------------
    def insert(self, events: Sequence[NewEvent]) -> None:
        """Queue accepted events (QUEUED, due at their ``accepted_at``)."""

    def claim(self, function_name: str, limit: int, *, now: float, lease_expires_at: float,
              max_bytes: int = MAX_CLAIM_BYTES) -> list[ClaimedEvent]:
        """Up to ``limit`` of the function's waiting events due at ``now``, oldest due first,
        now IN_FLIGHT under a lease until ``lease_expires_at``; no more than fit in
        ``max_bytes`` of payload, but always one when one is due."""

    def next_due(self, function_name: str) -> float | None:
        """When the function's next waiting event is due; None if it has none."""

    def waiting_functions(self) -> list[str]:
        """Every function with waiting events."""

    def settle(self, settlement: Settlement) -> bool:
        """Apply ``settlement`` (and write its deliveries) if the claim it names still holds;
        False, changing nothing, otherwise."""

    def expire_leases(self, now: float) -> list[str]:
        """Return IN_FLIGHT events and deliveries whose lease expired by ``now`` to their
        queues, due now; the names of the functions whose events came back."""

    def release_leases(self, now: float) -> int:
        """Return every IN_FLIGHT event and delivery to its queue, due now; how many events."""

    def redrive(self, function_name: str, *, now: float, qualifier: str | None) -> int:
        """Queue the function's FAILED events again as new (age, attempts and outcome reset),
        to run ``qualifier`` when given; how many."""

    def prune(self, *, succeeded_before: float, failed_before: float, limit: int) -> int:
        """Forget up to ``limit`` finished events: succeeded ones finished before
        ``succeeded_before``, failed ones before ``failed_before``."""

    # deliveries -----------------------------------------------------------------------
    def claim_deliveries(self, limit: int, *, now: float,
                         lease_expires_at: float) -> list[ClaimedDelivery]:
        """Up to ``limit`` pending deliveries due at ``now``, now IN_FLIGHT under a lease."""

    def next_delivery_due(self) -> float | None: ...

    def finish_delivery(self, delivery_id: int, generation: int,
                        event: NewEvent | None = None) -> bool:
        """The delivery arrived: forget it. With ``event`` (a delivery to a function), queue
        that event in the same step. False, changing nothing, if the claim no longer holds."""

    def retry_delivery(self, delivery_id: int, generation: int, *, next_attempt_at: float | None,
                       error: str) -> bool:
        """The delivery failed: try again at ``next_attempt_at``, or give it up (None).
        False, changing nothing, if the claim no longer holds."""


class EventStore(Protocol):
    def atomically(self, work: Callable[[EventTransaction], T]) -> T:
        """Run ``work`` in one transaction and commit it durably (see the module docstring)."""

    def ledger(self, *, function_name: str | None, states: Sequence[EventState] | None,
               after_seq: int, limit: int) -> list[LedgerEntry]:
        """Events in acceptance order after ``after_seq`` (a cursor), optionally of one
        function and in some states. A read: safe from any thread, concurrently with writes."""

    def counts(self, function_name: str | None) -> dict[EventState, int]:
        """How many events are in each state (of one function, or all)."""

    def close(self) -> None: ...

