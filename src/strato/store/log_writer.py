"""Writes function logs to a LogStore off the event loop, in batches.

The lines of one ``emit`` (an invocation's START … REPORT block, or a line of INIT output) are
stored as one record whose message joins them with newlines; readers split them again (see
``expand``). That keeps the store's work per invocation constant, off the invoke path's CPU.

``emit`` only appends to a deque (thread-safe, never blocks, no lock taken on the event loop's
thread); a writer thread stores what has accumulated every ``interval`` seconds, or sooner when
woken. ``flush`` waits until everything emitted before it is stored.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque

from strato.store.base import LogEvent, LogStore

log = logging.getLogger(__name__)

Batch = tuple[str, str, list[tuple[int, str]]]


class BatchingLogWriter:
    def __init__(self, store: LogStore, *, interval: float = 0.2, batch: int = 2_000) -> None:
        self._store = store
        self._interval = interval
        self._batch = batch
        self._queue: deque[Batch] = deque()
        self._wake = threading.Event()
        self._writing = False
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="strato-log-writer", daemon=True)
        self._thread.start()

    def emit(self, group: str, stream: str, lines: list[tuple[int, str]]) -> None:
        self._queue.append((group, stream, lines))

    def flush(self, timeout: float = 10.0) -> None:
        """Wait (polling, bounded by ``timeout``) until the queue is stored."""
        deadline = time.monotonic() + timeout
        self._wake.set()
        while (self._queue or self._writing) and time.monotonic() < deadline:
            time.sleep(0.005)

    def close(self) -> None:
        self.flush()
        self._stopped = True
        self._wake.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stopped or self._queue:
            self._wake.wait(self._interval)
            self._wake.clear()
            while self._queue:
                self._writing = True
                events: list[LogEvent] = []
                while self._queue and len(events) < self._batch:
                    group, stream, lines = self._queue.popleft()
                    if lines:
                        events.append(LogEvent(group, stream, lines[0][0],
                                               "\n".join([message for _, message in lines])))
                try:
                    self._store.append(events)
                except Exception:
                    log.exception("could not store %d log events", len(events))
                finally:
                    self._writing = False


def expand(message: str) -> list[str]:
    """The log lines of a stored record (see the module docstring)."""
    return message.split("\n")
