"""The event ledger: what became of asynchronous events, and redriving the failed ones.

Reads go straight to the event store (safe from any thread: the API runs them on its query
executor); a redrive is one transaction of the group-commit writer, which queues a function's
failed events again as new ones and, when it queued any, wakes the async worker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from strato.async_invoke.events import EventState, LedgerEntry
from strato.async_invoke.store import EventStore
from strato.async_invoke.writer import EventWriter
from strato.domain.arns import Scope
from strato.domain.clock import Clock
from strato.domain.errors import ResourceNotFoundException


@dataclass(frozen=True)
class LedgerPage:
    """One page of the ledger: its entries in acceptance order, the counts of every state
    (of the function asked about, or of all), the cursor of the next page (None: the last)
    and the engine's time it was read at (what ages are measured against)."""

    entries: Sequence[LedgerEntry]
    counts: Mapping[EventState, int]
    next_marker: int | None
    now: float


class EventLedgerService:
    def __init__(self, store: EventStore, writer: EventWriter, clock: Clock, *,
                 function_exists: Callable[[str, str | None], bool],
                 on_redrive: Callable[[str], None]) -> None:
        """``function_exists(name, qualifier)`` is read on the loop's thread;
        ``on_redrive(name)`` is called there once a redrive queued some of ``name``'s
        events."""
        self._store = store
        self._writer = writer
        self._clock = clock
        self._function_exists = function_exists
        self._on_redrive = on_redrive

    def page(self, function: str | None, states: Sequence[EventState], after: int,
             limit: int) -> LedgerPage:
        """At most ``limit`` (>= 1) events after the cursor ``after`` (0: from the first), of
        ``function`` (None: every function) and in ``states`` (empty: any). Blocking: call it
        off the loop's thread."""
        entries = self._store.ledger(function_name=function, states=states or None,
                                     after_seq=after, limit=limit + 1)
        counts = self._store.counts(function)
        now = self._clock.now()
        more = len(entries) > limit
        return LedgerPage(entries[:limit], counts, entries[limit - 1].seq if more else None, now)

    def redrive(self, scope: Scope, name: str, to_version: str | None) -> asyncio.Future[int]:
        """Queue ``name``'s failed events again as new ones (to run ``to_version``, else the
        qualifier each was sent to); the future has how many once committed. Raises
        ResourceNotFoundException when the function or ``to_version`` does not exist. Only
        on the loop's thread."""
        if not self._function_exists(name, None):
            raise ResourceNotFoundException(f"Function not found: {scope.function_arn(name)}")
        if to_version is not None and not self._function_exists(name, to_version):
            raise ResourceNotFoundException(
                f"Function not found: {scope.function_arn(name, to_version)}")
        now = self._clock.now()
        future = self._writer.submit(lambda tx: tx.redrive(name, now=now, qualifier=to_version))

        def done(finished: asyncio.Future[int]) -> None:
            if not finished.cancelled() and finished.exception() is None and finished.result():
                self._on_redrive(name)

        future.add_done_callback(done)
        return future
