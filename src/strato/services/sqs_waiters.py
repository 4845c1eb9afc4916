"""Long polling's wake-ups: receives waiting on a queue, woken when something happens to it.

A waiting receive takes a ticket *before* it looks at the queue, so that a message sent
between its look and its wait still wakes it. ``notify`` wakes every ticket of the queue (each
woken receive looks again; those that find nothing take a new ticket). Tickets are futures of
the event loop they were taken on; every method must be called on that loop's thread.
"""

from __future__ import annotations

import asyncio


class QueueWaiters:
    def __init__(self) -> None:
        self._tickets: dict[str, set[asyncio.Future[None]]] = {}

    def ticket(self, queue: str) -> asyncio.Future[None]:
        """A future that completes at the next ``notify(queue)`` (or ``notify_all``)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._tickets.setdefault(queue, set()).add(future)
        return future

    def discard(self, queue: str, ticket: asyncio.Future[None]) -> None:
        """Forget a ticket its receive no longer waits on. Idempotent."""
        tickets = self._tickets.get(queue)
        if tickets is not None:
            tickets.discard(ticket)
            if not tickets:
                del self._tickets[queue]

    def notify(self, queue: str) -> None:
        """Wake every receive waiting on ``queue``."""
        for ticket in self._tickets.pop(queue, ()):
            if not ticket.done():
                ticket.set_result(None)

    def notify_all(self) -> None:
        for queue in list(self._tickets):
            self.notify(queue)

    def waiting(self, queue: str) -> int:
        """How many receives wait on ``queue`` (for tests and metrics)."""
        return len(self._tickets.get(queue, ()))
