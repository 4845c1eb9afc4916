"""The in-memory ``LogStore`` (contract in ``store.base``): log events in one list, for unit
tests and throw-away servers. Every method holds the store's lock, so each call is atomic.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from strato.store.base import LogEvent, LogStreamInfo, StoredLogEvent


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class MemoryLogStore:
    """Log events in one list in append order; positions count from 1 and are never reused.

    ``clock`` gives the ingestion time in epoch milliseconds.
    """

    def __init__(self, *, clock: Callable[[], int] = _wall_clock_ms) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._events: list[StoredLogEvent] = []
        self._last_position = 0

    def append(self, events: Sequence[LogEvent]) -> None:
        if not events:
            return
        ingestion_ms = self._clock()
        with self._lock:
            for event in events:
                self._last_position += 1
                self._events.append(
                    StoredLogEvent(event=event, ingestion_ms=ingestion_ms,
                                   position=self._last_position)
                )

    def query(
        self,
        group: str,
        *,
        streams: Sequence[str] | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
        after_position: int = 0,
        limit: int = 10_000,
    ) -> list[StoredLogEvent]:
        """Ordered by position (the order of ``append``), so that the last position returned
        is a cursor for the next page. Raises ValueError unless ``limit`` >= 1."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        wanted = None if streams is None else set(streams)
        found: list[StoredLogEvent] = []
        with self._lock:
            for stored in self._events:
                event = stored.event
                if (
                    event.group == group
                    and stored.position > after_position
                    and (wanted is None or event.stream in wanted)
                    and (start_ms is None or event.timestamp_ms >= start_ms)
                    and (end_ms is None or event.timestamp_ms < end_ms)
                ):
                    found.append(stored)
                    if len(found) == limit:
                        break
        return found

    def streams(self, group: str, *, prefix: str | None = None) -> list[LogStreamInfo]:
        infos: dict[str, LogStreamInfo] = {}
        with self._lock:
            for stored in self._events:
                event = stored.event
                if event.group != group or not event.stream.startswith(prefix or ""):
                    continue
                seen = infos.get(event.stream)
                infos[event.stream] = LogStreamInfo(
                    group=group,
                    stream=event.stream,
                    first_event_ms=min(event.timestamp_ms,
                                       seen.first_event_ms if seen else event.timestamp_ms),
                    last_event_ms=max(event.timestamp_ms,
                                      seen.last_event_ms if seen else event.timestamp_ms),
                    last_ingestion_ms=max(stored.ingestion_ms,
                                          seen.last_ingestion_ms if seen else 0),
                )
        return [infos[stream] for stream in sorted(infos)]

    def delete_group(self, group: str) -> None:
        with self._lock:
            self._events = [s for s in self._events if s.event.group != group]

    def group_bytes(self, group: str) -> int:
        with self._lock:
            return sum(len(s.event.message.encode()) for s in self._events
                       if s.event.group == group)

    def delete_oldest(self, group: str, at_least: int) -> int:
        with self._lock:
            freed, kept = 0, []
            for stored in self._events:
                if stored.event.group == group and freed < at_least:
                    freed += len(stored.event.message.encode())
                else:
                    kept.append(stored)
            self._events = kept
            return freed
