"""Writes function logs to a LogStore off the event loop, in batches, within bounds.

The lines of one ``emit`` (an invocation's START … REPORT block, or a line of INIT output) are
stored as one record whose message joins them with newlines; readers split them again (see
``expand``). That keeps the store's work per invocation constant, off the invoke path's CPU.

``emit`` only appends to a deque (never blocks, no lock taken); a writer thread stores what has
accumulated every ``interval`` seconds, or sooner when woken. ``flush`` waits until everything
emitted before it is stored.

Two bounds hold whatever functions write:

- memory: what waits in the queue is at most ``max_queued`` bytes (message characters plus
  ``LINE_OVERHEAD`` per line, what a queued line costs in Python). Beyond it ``emit`` drops
  lines and counts them per stream; once the queue has room again, each such stream gets one
  line saying how many bytes it lost (``overflow_line``);
- disk: each log group holds at most ``quota`` bytes of messages (``log_quota``). Before
  storing a batch that would take a group over it, the writer deletes the group's oldest
  events, and stores one line saying so in the stream it is writing (``quota_line``). A batch
  is at most a quarter of the quota (plus one record, at most an invocation's log of about
  1 MiB), which is what keeps a group of the minimum quota (4 MiB) within it. A transaction
  is at most ``batch_bytes``, which bounds what SQLite's write-ahead log takes at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque

from strato.store.base import LogEvent, LogStore
from strato.store.log_quota import LogQuota, overflow_line, quota_line

log = logging.getLogger(__name__)

#: What queuing a line costs beyond its characters (its tuple, timestamp and str header).
LINE_OVERHEAD = 128
DEFAULT_MAX_QUEUED = 64 * 1024 * 1024
DEFAULT_QUOTA = 64 * 1024 * 1024
DEFAULT_BATCH_BYTES = 4 * 1024 * 1024

#: (group, stream, lines, the bytes they count in the queue).
Batch = tuple[str, str, list[tuple[int, str]], int]


class BatchingLogWriter:
    """See the module docstring. ``emit`` is called from one thread (the event loop's):
    the queue's accounting is split in counters that each thread only increments."""

    def __init__(self, store: LogStore, *, interval: float = 0.2, batch: int = 2_000,
                 batch_bytes: int = DEFAULT_BATCH_BYTES, quota: int = DEFAULT_QUOTA,
                 max_queued: int = DEFAULT_MAX_QUEUED) -> None:
        self._store = store
        self._interval = interval
        #: A transaction stores at most ``batch`` records, of about ``batch_bytes`` (a
        #: bound on what SQLite's write-ahead log takes at once).
        self._batch = batch
        #: A quarter of the quota at most, so that a group can take any batch within it.
        self._batch_bytes = min(batch_bytes, quota // 4)
        self._quota = LogQuota(quota)
        self._max_queued = max_queued
        self._queue: deque[Batch] = deque()
        #: Bytes ever queued (by ``emit``) and ever taken off the queue (by the writer).
        self._queued = 0
        self._stored = 0
        #: (group, stream) → bytes dropped while the queue was full (``emit``'s thread only).
        self._overflow: dict[tuple[str, str], int] = {}
        self._wake = threading.Event()
        self._writing = False
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="strato-log-writer", daemon=True)
        self._thread.start()

    @property
    def backlog(self) -> int:
        """Bytes waiting to be stored (as ``max_queued`` counts them)."""
        return self._queued - self._stored

    def emit(self, group: str, stream: str, lines: list[tuple[int, str]]) -> None:
        size = LINE_OVERHEAD * len(lines) + sum([len(message) for _, message in lines])
        if self._overflow and self._queued - self._stored <= self._max_queued // 2:
            self._report_overflow()
        if self._queued - self._stored + size > self._max_queued:
            key = (group, stream)
            self._overflow[key] = self._overflow.get(key, 0) + size
            return
        self._queued += size
        self._queue.append((group, stream, lines, size))

    def _report_overflow(self) -> None:
        overflow, self._overflow = self._overflow, {}
        now_ms = int(time.time() * 1000)
        for (group, stream), dropped in overflow.items():
            line = overflow_line(dropped)
            self._queued += LINE_OVERHEAD + len(line)
            self._queue.append((group, stream, [(now_ms, line)], LINE_OVERHEAD + len(line)))

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
                taken = 0
                while self._queue and len(events) < self._batch and taken < self._batch_bytes:
                    group, stream, lines, size = self._queue.popleft()
                    taken += size
                    if lines:
                        events.append(LogEvent(group, stream, lines[0][0],
                                               "\n".join([message for _, message in lines])))
                try:
                    self._store_within_quota(events)
                except Exception:
                    log.exception("could not store %d log events", len(events))
                finally:
                    self._stored += taken
                    self._writing = False

    def _store_within_quota(self, events: list[LogEvent]) -> None:
        """Store ``events`` within the quota of their groups: a group they would take over it
        first loses its oldest events, and gets the line saying so with them."""
        quota = self._quota
        groups = {event.group for event in events}
        for group in groups:
            if not quota.knows(group):
                quota.load(group, self._store.group_bytes(group))
        last_stream: dict[str, str] = {}
        for event in events:
            quota.charge(event.group, len(event.message.encode()))
            last_stream[event.group] = event.stream
        now_ms = int(time.time() * 1000)
        notices = [LogEvent(group, stream, now_ms, quota_line(group, quota.quota))
                   for group, stream in last_stream.items() if quota.excess(group)]
        try:
            for notice in notices:
                # Deleted before the append, so the group never holds its quota and a batch.
                group = notice.group
                quota.charge(group, len(notice.message.encode()))
                quota.credit(group, self._store.delete_oldest(group, quota.excess(group)))
            self._store.append(events + notices if notices else events)
        except BaseException:
            for group in groups:  # counted again from the store when next written
                quota.forget(group)
            raise


def expand(message: str) -> list[str]:
    """The log lines of a stored record (see the module docstring)."""
    return message.split("\n")
