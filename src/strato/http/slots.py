"""The cap on a server's open connections, kept as back-pressure.

``limit`` connections are served at once. A connection that arrives when all are taken is
accepted but not read: it waits, in arrival order, and is admitted when a served one closes.
At most ``limit`` connections wait; one more is turned away (answered 503 and closed), so
that the process's file descriptors stay bounded too. A waiting connection holds at most the
one read the event loop may deliver before its pause takes effect. Loop thread only.
"""

from __future__ import annotations

from enum import Enum
from typing import Protocol


class Admittable(Protocol):
    def admit(self) -> None:
        """Start serving: the connection waited, and a slot is now its."""


class Arrival(Enum):
    ADMITTED = "admitted"
    WAITING = "waiting"
    TURNED_AWAY = "turned away"


class ConnectionSlots:
    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._served: set[Admittable] = set()
        #: Waiting connections in arrival order (a dict is an ordered set here).
        self._waiting: dict[Admittable, None] = {}

    @property
    def served(self) -> int:
        return len(self._served)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def arrive(self, connection: Admittable) -> Arrival:
        """Place a new connection: served now, waiting for a slot, or turned away (the caller
        answers and closes it; it holds nothing here)."""
        if len(self._served) < self._limit:
            self._served.add(connection)
            return Arrival.ADMITTED
        if len(self._waiting) < self._limit:
            self._waiting[connection] = None
            return Arrival.WAITING
        return Arrival.TURNED_AWAY

    def leave(self, connection: Admittable) -> None:
        """``connection`` closed: its slot, if it had one, goes to the longest waiting
        connection (``admit`` is called on it). Idempotent."""
        if connection in self._waiting:
            del self._waiting[connection]
            return
        if connection not in self._served:
            return
        self._served.discard(connection)
        if self._waiting:
            successor = next(iter(self._waiting))
            del self._waiting[successor]
            self._served.add(successor)
            successor.admit()
