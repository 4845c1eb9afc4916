"""The log writer's bounds (``store/log_writer.py``): the memory its queue holds, and the
storage quota of each log group, against the in-memory LogStore."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

import pytest

from strato.store.base import LogEvent
from strato.store.log_writer import LINE_OVERHEAD, BatchingLogWriter, expand
from strato.store.memory_logs import MemoryLogStore

GROUP = "/aws/lambda/f"


class GatedStore(MemoryLogStore):
    """A MemoryLogStore whose ``append`` waits while the gate is closed: a writer that fell
    behind."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.gate.set()

    def append(self, events: Sequence[LogEvent]) -> None:
        assert self.gate.wait(10), "the gate stayed closed"
        super().append(events)


@pytest.fixture
def store() -> GatedStore:
    return GatedStore()


@pytest.fixture
def writers() -> Iterator[list[BatchingLogWriter]]:
    made: list[BatchingLogWriter] = []
    yield made
    for writer in made:
        writer.close()


def _lines(store: MemoryLogStore, stream: str | None = None) -> list[str]:
    return [line for stored in store.query(GROUP, streams=None if stream is None else [stream])
            for line in expand(stored.event.message)]


def test_a_full_queue_drops_lines_and_says_how_many_once_it_has_room(
        store: GatedStore, writers: list[BatchingLogWriter]) -> None:
    line = "x" * 1000
    cost = LINE_OVERHEAD + len(line)
    writer = BatchingLogWriter(store, interval=0.01, max_queued=10 * cost)
    writers.append(writer)
    store.gate.clear()
    for _ in range(25):
        writer.emit(GROUP, "flood", [(1, line)])
    assert writer.backlog <= 10 * cost
    store.gate.set()
    writer.flush()
    writer.emit(GROUP, "quiet", [(2, "next")])
    writer.flush()
    kept = _lines(store, "flood")
    assert kept.count(line) == 10
    assert kept[-1] == (f"[strato: {15 * cost} bytes of log lines dropped: the log writer "
                        f"fell behind the output of functions]")
    assert _lines(store, "quiet") == ["next"]
    assert writer.backlog == 0


def test_a_group_over_its_quota_loses_its_oldest_events(
        store: GatedStore, writers: list[BatchingLogWriter]) -> None:
    writer = BatchingLogWriter(store, interval=0.01, quota=1000)
    writers.append(writer)
    other = "/aws/lambda/other"
    writer.emit(other, "s", [(0, "kept")])
    for i in range(10):
        writer.emit(GROUP, "s", [(i, f"{i}" * 300)])
        writer.flush()
    lines = _lines(store)
    assert store.group_bytes(GROUP) <= 1000
    assert "9" * 300 in lines and "0" * 300 not in lines
    notice = (f"[strato: log group {GROUP} is over its storage quota of 1000 bytes: its oldest "
              f"events were deleted]")
    assert notice in lines
    assert [s.event.message for s in store.query(other)] == ["kept"]


def test_the_quota_counts_what_the_store_held_before(
        store: GatedStore, writers: list[BatchingLogWriter]) -> None:
    store.append([LogEvent(GROUP, "old", 0, "o" * 900)])
    writer = BatchingLogWriter(store, interval=0.01, quota=1000)
    writers.append(writer)
    writer.emit(GROUP, "s", [(1, "n" * 200)])
    writer.flush()
    assert "o" * 900 not in _lines(store)
    assert store.group_bytes(GROUP) <= 1000
