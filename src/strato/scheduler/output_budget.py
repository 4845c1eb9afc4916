"""How much of an execution environment's output strato keeps: pure byte accounting.

An environment's stdout and stderr reach strato through one pipe, one line at a time. A
function can write to it at the pipe's full speed (a thread left running after its handler
returned wrote 8 KB lines at about 120 MB/s), so what strato keeps is bounded in every phase:

- during an invocation (from its delivery to its END line), ``InvocationOutput`` keeps the
  first ``INVOCATION_HEAD_BYTES`` and the last ``INVOCATION_TAIL_BYTES``, and counts the
  middle, which one line reports (``dropped_line``). strato goes on reading, so a handler
  that prints more still completes; the tail keeps what it printed last (usually its error)
  even when another thread filled the head first;
- outside an invocation (INIT, and between invocations), an ``Allowance`` of
  ``INIT_BYTES`` or ``BETWEEN_INVOCATIONS_BYTES``. INIT goes on past it, its further lines
  dropped and counted (INIT ends within its timeout). Between invocations strato stops
  reading the pipe once the allowance is spent, so the writer blocks on the full pipe (back
  pressure, where Lambda freezes an idle environment) until the next invocation is
  delivered, whose own budget then accounts for what was waiting.

Sizes are bytes as written, a line's newline included.
"""

from __future__ import annotations

from collections import deque

INVOCATION_HEAD_BYTES = 768 * 1024
INVOCATION_TAIL_BYTES = 256 * 1024
INIT_BYTES = 1024 * 1024
BETWEEN_INVOCATIONS_BYTES = 256 * 1024
#: Longer lines are cut to this many bytes (their full size is what the budgets count).
MAX_LINE_BYTES = 256 * 1024

Line = tuple[int, str]


class Allowance:
    """A byte budget for output outside an invocation, spent line by line.

    ``take`` keeps a line while some of the budget is left (so the line that crosses it is
    kept whole, and what is kept never exceeds ``limit + MAX_LINE_BYTES``); later lines are
    counted in ``dropped``. ``restart`` opens the next period."""

    __slots__ = ("limit", "spent", "dropped")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.spent = 0
        self.dropped = 0

    @property
    def exhausted(self) -> bool:
        return self.spent >= self.limit

    def take(self, size: int) -> bool:
        """Spend ``size`` bytes if anything is left (True: keep the line)."""
        if self.spent >= self.limit:
            self.dropped += size
            return False
        self.spent += size
        return True

    def restart(self, limit: int) -> int:
        """Begin a new period of ``limit`` bytes; the bytes the last one dropped."""
        dropped = self.dropped
        self.limit, self.spent, self.dropped = limit, 0, 0
        return dropped


class InvocationOutput:
    """The output of one invocation: its first ``head`` bytes and last ``tail`` bytes of
    lines, and the count of the bytes between them. Lines past the head are held undecoded
    until ``take``, so that a flood costs no decoding of what is dropped."""

    __slots__ = ("_head", "_head_limit", "_head_left", "_tail", "_tail_bytes", "_tail_limit",
                 "dropped")

    def __init__(self, head: int = INVOCATION_HEAD_BYTES, tail: int = INVOCATION_TAIL_BYTES) -> None:
        self._head: list[Line] = []
        self._head_limit = self._head_left = head
        self._tail: deque[tuple[int, bytes, int]] = deque()
        self._tail_bytes = 0
        self._tail_limit = tail
        #: Bytes of output between the head and the tail, counted and not kept.
        self.dropped = 0

    def add(self, stamp_ms: int, raw: bytes, size: int) -> None:
        """One line (``raw``, at most MAX_LINE_BYTES of it) that took ``size`` bytes."""
        if size <= self._head_left and not self._tail:
            self._head_left -= size
            self._head.append((stamp_ms, raw.decode("utf-8", "replace")))
            return
        self._head_left = 0  # later lines go to the tail, in order
        self._tail.append((stamp_ms, raw, size))
        self._tail_bytes += size
        while self._tail_bytes > self._tail_limit:
            _, _, old = self._tail.popleft()
            self._tail_bytes -= old
            self.dropped += old

    def take(self) -> tuple[list[Line], int]:
        """The lines kept, in the order written, and the bytes dropped between them; the
        object is empty afterwards, ready for the next invocation."""
        lines, dropped = self._head, self.dropped
        lines.extend((stamp, raw.decode("utf-8", "replace")) for stamp, raw, _ in self._tail)
        self._head, self._tail, self._tail_bytes, self.dropped = [], deque(), 0, 0
        self._head_left = self._head_limit
        return lines, dropped


def dropped_line(dropped: int, where: str) -> str:
    """The line that tells a log reader how many bytes of output strato did not keep."""
    return f"[strato: {dropped} bytes of output dropped: {where}]"


def invocation_dropped_line(dropped: int) -> str:
    return dropped_line(dropped, f"an invocation keeps the first {INVOCATION_HEAD_BYTES} and "
                                 f"the last {INVOCATION_TAIL_BYTES} bytes of its output")


def outside_dropped_line(dropped: int) -> str:
    return dropped_line(dropped, f"outside an invocation strato keeps {INIT_BYTES} bytes of "
                                 f"output during INIT and {BETWEEN_INVOCATIONS_BYTES} between "
                                 f"invocations")


def paused_line() -> str:
    """Said each time strato stops reading an environment's output between invocations."""
    return (f"[strato: over {BETWEEN_INVOCATIONS_BYTES} bytes of output between invocations: "
            f"strato reads no more of it until the next invocation]")
