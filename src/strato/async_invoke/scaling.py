"""How many of a function's queued events the worker runs at once: its concurrency window.

Lambda scales the processing of a function's asynchronous queue up gradually and backs off
when it is throttled. The window does the same with Little's law as its target: to keep up
with ``TARGET_RATE_PER_S`` events a second, a function whose invocations take ``d`` seconds
needs ``d × rate`` of them in flight. So a function that returns in a millisecond keeps a
few warm environments busy (more would only cost cold starts: the platform's own work is
the bottleneck then), while a function that sleeps for a second is scaled towards hundreds.

- Growth is at most one slot per completed invocation (the window at most doubles per
  round of invocations), and only while events are waiting.
- A throttle halves the window.
- ``limit`` caps it (the function's reserved concurrency, or the account's).

Pure bookkeeping: no I/O, no clock of its own (durations are given).
"""

from __future__ import annotations

import math

MIN_WINDOW = 4
TARGET_RATE_PER_S = 500.0
#: Weight of the newest duration in the moving average.
SMOOTHING = 0.3


class ConcurrencyWindow:
    def __init__(self, limit: int, *, minimum: int = MIN_WINDOW) -> None:
        self.limit = max(1, limit)
        self.minimum = max(1, minimum)
        self.size = min(self.minimum, self.limit)
        self.in_flight = 0
        self.average_s: float | None = None

    @property
    def free(self) -> int:
        """Slots free for more invocations now."""
        return max(0, self.size - self.in_flight)

    def set_limit(self, limit: int) -> None:
        self.limit = max(1, limit)
        self.size = min(self.size, self.limit)

    def target(self) -> int:
        average = self.average_s or 0.0
        wanted = self.minimum + math.ceil(average * TARGET_RATE_PER_S)
        return max(1, min(self.limit, wanted))

    def started(self) -> None:
        self.in_flight += 1

    def finished(self, duration_s: float, *, waiting: bool) -> None:
        """An invocation took ``duration_s``; ``waiting`` says whether events are waiting for
        a slot (the window grows only then)."""
        self.in_flight = max(0, self.in_flight - 1)
        sample = max(0.0, duration_s)
        self.average_s = sample if self.average_s is None else (
            SMOOTHING * sample + (1 - SMOOTHING) * self.average_s)
        target = self.target()
        if target > self.size and waiting:
            self.size += 1
        elif target < self.size:
            self.size -= 1

    def throttled(self) -> None:
        """An invocation was refused for want of concurrency (it never ran)."""
        self.in_flight = max(0, self.in_flight - 1)
        self.size = max(1, min(self.limit, self.size // 2))
