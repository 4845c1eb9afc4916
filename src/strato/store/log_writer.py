"""Writes function logs to a LogStore off the event loop, in batches.

``emit`` only appends to a queue (safe from the event loop: it never blocks on I/O); a
writer thread stores what has accumulated every ``interval`` seconds, or at once when a
batch is full. ``flush`` waits until everything emitted before it is stored.
"""

from __future__ import annotations

import logging
import threading
from collections import deque

from strato.store.base import LogEvent, LogStore

log = logging.getLogger(__name__)


class BatchingLogWriter:
    def __init__(self, store: LogStore, *, interval: float = 0.2, batch: int = 2_000) -> None:
        self._store = store
        self._interval = interval
        self._batch = batch
        self._queue: deque[LogEvent] = deque()
        self._wake = threading.Event()
        self._idle = threading.Condition()
        self._pending = 0
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="strato-log-writer", daemon=True)
        self._thread.start()

    def emit(self, group: str, stream: str, lines: list[tuple[int, str]]) -> None:
        self._queue.extend(LogEvent(group, stream, ts, message) for ts, message in lines)
        with self._idle:
            self._pending += len(lines)
        if len(self._queue) >= self._batch:
            self._wake.set()

    def flush(self, timeout: float = 10.0) -> None:
        self._wake.set()
        with self._idle:
            self._idle.wait_for(lambda: self._pending == 0, timeout)

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
                events: list[LogEvent] = []
                while self._queue and len(events) < self._batch:
                    events.append(self._queue.popleft())
                try:
                    self._store.append(events)
                except Exception:
                    log.exception("could not store %d log events", len(events))
                with self._idle:
                    self._pending -= len(events)
                    self._idle.notify_all()
