"""Time as strato's engine sees it: a ``Clock`` that tests can run fast or by hand.

Everything that waits for Lambda's schedules (async retries after about one and two minutes,
backoff of throttled events up to five minutes, event ages up to six hours, SQS visibility
timeouts and delays, batching windows) asks a ``Clock`` rather than ``time``:

- ``SystemClock``: the real time.
- ``ScaledClock(scale)``: time that passes ``scale`` times faster than the real one, from the
  moment it was made (``strato serve --time-scale 60`` turns a one-minute retry wait into one
  second), so that users can test the real schedule without waiting for it.
- ``VirtualClock``: time that moves only when a test calls ``advance``; ``sleep`` returns once
  the clock has been advanced past its deadline.

``now()`` is seconds since the epoch (what timestamps and ages are made of), ``monotonic()`` a
clock that never goes back (what intervals are measured with); ``sleep`` is a coroutine.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""

    async def sleep(self, seconds: float) -> None:
        """Return after ``seconds`` of this clock's time."""


async def sleep_or_wake(clock: Clock, seconds: float, wake: asyncio.Event) -> None:
    """Return after ``seconds`` of ``clock``'s time or as soon as ``wake`` is set, whichever
    comes first."""
    sleeper = asyncio.ensure_future(clock.sleep(seconds))
    waker = asyncio.ensure_future(wake.wait())
    try:
        await asyncio.wait((sleeper, waker), return_when=asyncio.FIRST_COMPLETED)
    finally:
        sleeper.cancel()
        waker.cancel()


class SystemClock:
    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class ScaledClock:
    """Time ``scale`` times faster than the real one (``scale`` > 0) since the wall-clock
    moment ``origin`` (now, when omitted).

    A server that keeps its origin across restarts (the application stores it in the data
    dir) never sees its time go back: timestamps it stored before a restart stay in the
    past, as they would with the real clock."""

    def __init__(self, scale: float, origin: float | None = None) -> None:
        if scale <= 0:
            raise ValueError(f"time scale must be positive, not {scale}")
        self.scale = scale
        wall, self._mono0 = time.time(), time.monotonic()
        self.origin = wall if origin is None else min(origin, wall)
        #: The scaled time at this clock's creation.
        self._wall0 = self.origin + (wall - self.origin) * scale

    def now(self) -> float:
        return self._wall0 + (time.monotonic() - self._mono0) * self.scale

    def monotonic(self) -> float:
        return self._mono0 + (time.monotonic() - self._mono0) * self.scale

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.scale)


class VirtualClock:
    """A clock for tests: ``advance(seconds)`` moves time and wakes the sleepers it passes.
    ``sleep`` must be awaited on the event loop that calls ``advance``."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def now(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._order), future))
        await future

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` and wake every sleeper whose deadline passed."""
        self._now += seconds
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)
