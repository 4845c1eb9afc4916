"""One periodic timer that checks the deadlines of many connections.

Connections arm no timers of their own: serving a request only bumps counters on its
connection, and the sweep, every ``interval_s``, hands each watched connection the time so it
can compare its state with its deadlines (``Watched.check_deadline``). A deadline therefore
fires between its time and one interval later, and the request path pays no timer handle.
The timer runs only while something is watched. One sweep may serve many servers (the
environment pool shares one among all Runtime API servers). Loop thread only.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

log = logging.getLogger(__name__)


class Watched(Protocol):
    def check_deadline(self, now: float) -> None:
        """Act on any deadline passed by ``now`` (``loop.time()``); may stop watching itself."""


class DeadlineSweep:
    def __init__(self, interval_s: float = 0.5) -> None:
        self._interval_s = interval_s
        self._watched: set[Watched] = set()
        self._timer: asyncio.TimerHandle | None = None

    def watch(self, item: Watched) -> None:
        """Check ``item`` on every tick until ``unwatch``; idempotent."""
        self._watched.add(item)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._interval_s, self._tick)

    def unwatch(self, item: Watched) -> None:
        """Stop checking ``item``; idempotent."""
        self._watched.discard(item)

    def __len__(self) -> int:
        return len(self._watched)

    def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        for item in list(self._watched):
            try:
                item.check_deadline(now)
            except Exception:  # one broken connection must not stop the others' deadlines
                log.exception("deadline check failed")
                self._watched.discard(item)
        self._timer = loop.call_later(self._interval_s, self._tick) if self._watched else None
