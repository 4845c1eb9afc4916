"""Group commit: many callers' writes to the event store share one transaction and one fsync.

Callers on the event loop hand the writer their work (``submit``, or ``insert`` for accepted
events) and get a future that resolves once the transaction holding it has committed. The
writer keeps one transaction in flight on its own thread; whatever arrives meanwhile goes
into the next one. Batches therefore grow with the load and the commit latency, not with a
timer: an idle writer commits a lone event at once, a busy one commits thousands together.

Each submitted piece of work runs in its own savepoint, so one that raises fails alone,
unless it is submitted as ``isolated=False``: work that raises only when the database does
(claims, settlements) skips the savepoint's cost and fails with the whole transaction.
Accepted events are inserted together and fail together only if the transaction does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Future as ThreadFuture
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from strato.async_invoke.events import NewEvent
from strato.async_invoke.store import EventStore, EventTransaction

log = logging.getLogger(__name__)

T = TypeVar("T")
Work = Callable[[EventTransaction], Any]
#: A piece of work, whether it runs in a savepoint of its own, and its caller's future.
_Pending = tuple[Work, bool, "asyncio.Future[Any]"]

#: Most pieces of work in one transaction (a bound on a transaction's duration).
MAX_BATCH = 8192


class EventWriter:
    """See the module docstring. ``submit`` and ``insert`` are called on the event loop's
    thread; ``close`` waits for everything submitted before it to commit."""

    def __init__(self, store: EventStore) -> None:
        self._store = store
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="strato-events")
        self._events: list[NewEvent] = []
        self._inserted: list[asyncio.Future[None]] = []
        self._work: list[_Pending] = []
        self._flushing = False
        self._scheduled = False
        self._idle: asyncio.Event | None = None
        #: Transactions committed and pieces of work they held (for the benchmark and tests).
        self.commits = 0
        self.committed = 0

    def insert(self, event: NewEvent) -> asyncio.Future[None]:
        """Queue ``event``; the future resolves once it is durably stored."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._events.append(event)
        self._inserted.append(future)
        self._schedule()
        return future

    def submit(self, work: Callable[[EventTransaction], T], *,
               isolated: bool = True) -> asyncio.Future[T]:
        """Run ``work`` in the next transaction; the future has its result once committed (or
        its exception: the work's own, or the transaction's). ``isolated=False`` is for work
        that cannot fail on its own: it runs without a savepoint."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._work.append((work, isolated, future))
        self._schedule()
        return future

    def _schedule(self) -> None:
        if not self._flushing and not self._scheduled:
            self._scheduled = True
            # After the callbacks already due: a burst arriving in one loop turn shares a commit.
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        if self._flushing or not (self._events or self._work):
            return
        events, inserted = self._events[:MAX_BATCH], self._inserted[:MAX_BATCH]
        del self._events[:MAX_BATCH], self._inserted[:MAX_BATCH]
        work = self._work[:MAX_BATCH]
        del self._work[:MAX_BATCH]
        self._flushing = True
        done: ThreadFuture[list[tuple[bool, Any]]] = self._executor.submit(
            self._commit, events, [(w, isolated) for w, isolated, _ in work])
        loop = asyncio.get_running_loop()
        done.add_done_callback(
            lambda f: loop.call_soon_threadsafe(self._committed, f, inserted, work))

    def _commit(self, events: list[NewEvent],
                work: list[tuple[Work, bool]]) -> list[tuple[bool, Any]]:
        """On the writer's thread: one transaction for the whole batch."""

        def run(tx: EventTransaction) -> list[tuple[bool, Any]]:
            if events:
                tx.insert(events)
            results: list[tuple[bool, Any]] = []
            for piece, isolated in work:
                if not isolated:
                    results.append((True, piece(tx)))
                    continue
                try:
                    with tx.savepoint():
                        results.append((True, piece(tx)))
                except Exception as exc:  # handed to that piece's caller
                    results.append((False, exc))
            return results

        return self._store.atomically(run)

    def _committed(self, done: ThreadFuture[list[tuple[bool, Any]]],
                   inserted: list[asyncio.Future[None]],
                   work: list[_Pending]) -> None:
        self._flushing = False
        try:
            results = done.result()
        except Exception as exc:
            log.error("event store transaction failed: %s", exc)
            for future in [*inserted, *(f for _, _, f in work)]:
                if not future.done():
                    future.set_exception(exc)
        else:
            self.commits += 1
            self.committed += len(inserted) + len(work)
            for future in inserted:
                if not future.done():
                    future.set_result(None)
            for (_, _, future), (ok, value) in zip(work, results, strict=True):
                if future.done():
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)
        if self._events or self._work:
            self._flush()
        elif self._idle is not None:
            self._idle.set()

    async def drain(self) -> None:
        """Wait until everything submitted so far has committed."""
        while self._flushing or self._scheduled or self._events or self._work:
            self._idle = asyncio.Event()
            if not self._flushing and not self._scheduled:
                self._flush()
            await self._idle.wait()
        self._idle = None

    async def close(self) -> None:
        """Commit what is pending, then stop the writer's thread."""
        await self.drain()
        self._executor.shutdown(wait=True)
