"""The SQLite queue store on a real file: queues, sends, receives (visibility, FIFO groups,
dead letters, expiry), receipt handles, deduplication, purge, counts, and reopening."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from strato.domain.sqs import attributes as attrs
from strato.domain.sqs.queues import Message, Queue, QueueCounts, ReceiptHandle
from strato.errors import NotFoundError
from strato.store.queue_base import DeadLetterTarget, Deduplication, ReceiveParams, VisibilityChange
from strato.store.sqlite_queues import SqliteQueueStore

DAY = 86_400_000
T0 = 1_700_000_000_000


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "queues.db"


@pytest.fixture
def store(path: Path) -> Iterator[SqliteQueueStore]:
    backend = SqliteQueueStore(path)
    yield backend
    backend.close()


def make_queue(store: SqliteQueueStore, name: str, **given: str) -> Queue:
    fifo = name.endswith(".fifo")
    attributes = attrs.creation_attributes(name, {"FifoQueue": "true", **given} if fifo else given)
    return store.create_queue(Queue(name, attributes, T0, T0))


def msg(mid: str, *, sent: int = T0, visible: int | None = None, group: str | None = None,
        dedup: str | None = None, body: str = "body") -> Message:
    return Message(mid, body, "md5", "sender", sent, sent if visible is None else visible,
                   group_id=group, deduplication_id=dedup)


def receive(store: SqliteQueueStore, name: str, now: int, *, n: int = 10, vt: int = 30_000,
            fifo: bool = False, dead_letter: DeadLetterTarget | None = None) -> list[str]:
    outcome = store.receive(name, ReceiveParams(now, n, vt, DAY, fifo, dead_letter))
    return [d.message.message_id for d in outcome.deliveries]


def test_queue_records(store: SqliteQueueStore) -> None:
    first = make_queue(store, "orders", VisibilityTimeout="5")
    assert store.create_queue(Queue("orders", {}, 1, 1)) == first  # the existing one, unchanged
    make_queue(store, "Orders_2")
    make_queue(store, "ordersX")
    make_queue(store, "other")
    assert [q.name for q in store.list_queues(prefix="orders", after=None, limit=10)] == ["orders", "ordersX"]
    assert [q.name for q in store.list_queues(prefix="Orders_", after=None, limit=10)] == ["Orders_2"]
    assert [q.name for q in store.list_queues(prefix="o", after=None, limit=1)] == ["orders"]  # case counts
    assert [q.name for q in store.list_queues(prefix="", after="orders", limit=2)] == ["ordersX", "other"]
    updated = store.update_queue("orders", modified_ms=T0 + 5, attributes={**first.attributes, "DelaySeconds": "2"},
                                 tags={"team": "a"})
    assert updated.attributes["DelaySeconds"] == "2" and updated.tags == {"team": "a"}
    assert updated.modified_ms == T0 + 5 and updated.created_ms == T0
    with pytest.raises(NotFoundError):
        store.update_queue("nope", modified_ms=0, tags={})
    assert store.delete_queue("orders") and not store.delete_queue("orders")
    assert store.get_queue("orders") is None


def test_receive_hides_message_for_its_visibility_timeout(store: SqliteQueueStore) -> None:
    make_queue(store, "q")
    store.send("q", [msg("a"), msg("b", visible=T0 + 10_000)])
    assert receive(store, "q", T0, vt=1_000) == ["a"]
    assert store.counts("q", now_ms=T0, retention_ms=DAY) == QueueCounts(visible=0, in_flight=1, delayed=1)
    assert receive(store, "q", T0 + 999) == []
    assert store.next_visible_ms("q", now_ms=T0 + 999) == T0 + 1_000
    assert receive(store, "q", T0 + 1_000) == ["a"]
    assert receive(store, "q", T0 + 60_000) == ["b", "a"]  # in the order they became visible


def test_delivery_records_receives(store: SqliteQueueStore) -> None:
    make_queue(store, "q")
    store.send("q", [msg("a")])
    first = store.receive("q", ReceiveParams(T0 + 5, 1, 0, DAY)).deliveries[0]
    second = store.receive("q", ReceiveParams(T0 + 9, 1, 0, DAY)).deliveries[0]
    assert (first.receive_count, first.first_receive_ms) == (1, T0 + 5)
    assert (second.receive_count, second.first_receive_ms) == (2, T0 + 5)
    assert first.receipt_handle != second.receipt_handle


def test_only_the_current_receipt_handle_deletes(store: SqliteQueueStore) -> None:
    make_queue(store, "q")
    store.send("q", [msg("a")])
    old = store.receive("q", ReceiveParams(T0, 1, 0, DAY)).deliveries[0]
    new = store.receive("q", ReceiveParams(T0, 1, 1_000, DAY)).deliveries[0]
    old_handle = ReceiptHandle.decode(old.receipt_handle)
    new_handle = ReceiptHandle.decode(new.receipt_handle)
    assert old_handle is not None and new_handle is not None
    assert not store.delete_message("q", old_handle)
    assert store.change_visibility("q", old_handle, now_ms=T0, visible_ms=T0) is VisibilityChange.UNKNOWN
    assert store.change_visibility("q", new_handle, now_ms=T0, visible_ms=T0 + 5) is VisibilityChange.CHANGED
    assert store.change_visibility("q", new_handle, now_ms=T0 + 5, visible_ms=T0 + 9) is VisibilityChange.NOT_IN_FLIGHT
    assert store.delete_message("q", new_handle)
    assert store.counts("q", now_ms=T0, retention_ms=DAY) == QueueCounts(0, 0, 0)


def test_fifo_sequence_numbers_and_deduplication(store: SqliteQueueStore) -> None:
    make_queue(store, "f.fifo")
    dedup = Deduplication(T0, 300_000)
    sent = store.send("f.fifo", [msg("1", group="g", dedup="d1"), msg("2", group="g", dedup="d2"),
                                 msg("3", group="h", dedup="d1")], deduplication=dedup)
    assert [s.message_id for s in sent] == ["1", "2", "1"]
    assert [s.duplicate for s in sent] == [False, False, True]
    assert sent[2].sequence_number == sent[0].sequence_number
    assert sent[0].sequence_number is not None and sent[1].sequence_number is not None
    assert int(sent[1].sequence_number) > int(sent[0].sequence_number)
    again = store.send("f.fifo", [msg("4", group="g", dedup="d1")], deduplication=Deduplication(T0 + 299_999, 300_000))
    assert again[0].duplicate
    later = store.send("f.fifo", [msg("5", group="g", dedup="d1")], deduplication=Deduplication(T0 + 300_000, 300_000))
    assert not later[0].duplicate and later[0].message_id == "5"


def test_fifo_deduplication_by_message_group(store: SqliteQueueStore) -> None:
    make_queue(store, "g.fifo", DeduplicationScope="messageGroup")
    dedup = Deduplication(T0, 300_000, by_group=True)
    sent = store.send("g.fifo", [msg("1", group="a", dedup="d"), msg("2", group="b", dedup="d")],
                      deduplication=dedup)
    assert [s.duplicate for s in sent] == [False, False]


def test_fifo_group_blocks_while_in_flight(store: SqliteQueueStore) -> None:
    make_queue(store, "f.fifo")
    dedup = Deduplication(T0, 300_000)
    store.send("f.fifo", [msg("a1", group="a", dedup="1"), msg("a2", group="a", dedup="2"),
                          msg("b1", group="b", dedup="3")], deduplication=dedup)
    assert receive(store, "f.fifo", T0, n=1, fifo=True) == ["a1"]
    assert receive(store, "f.fifo", T0, n=10, fifo=True) == ["b1"]
    assert receive(store, "f.fifo", T0, n=10, fifo=True) == []
    assert receive(store, "f.fifo", T0 + 30_000, n=10, fifo=True) == ["a1", "a2", "b1"]


def test_dead_letter_move(store: SqliteQueueStore) -> None:
    make_queue(store, "src")
    make_queue(store, "dlq")
    target = DeadLetterTarget("dlq", 1, "arn:aws:sqs:us-east-1:000000000000:src")
    store.send("src", [msg("poison"), msg("good", sent=T0 + 1)])
    assert receive(store, "src", T0 + 1, n=1, vt=0, dead_letter=target) == ["poison"]
    outcome = store.receive("src", ReceiveParams(T0 + 2, 10, 0, DAY, dead_letter=target))
    assert [d.message.message_id for d in outcome.deliveries] == ["good"] and outcome.dead_lettered == 1
    moved = store.receive("dlq", ReceiveParams(T0 + 3, 10, 0, DAY)).deliveries
    assert [d.message.message_id for d in moved] == ["poison"]
    assert moved[0].message.dead_letter_source_arn == target.source_arn
    assert moved[0].message.sent_ms == T0 and moved[0].receive_count == 2
    gone = DeadLetterTarget("missing", 1, target.source_arn)
    assert receive(store, "src", T0 + 4, vt=0, dead_letter=gone) == ["good"]


def test_dead_letter_to_fifo_queue_numbers_anew(store: SqliteQueueStore) -> None:
    make_queue(store, "src.fifo")
    make_queue(store, "dlq.fifo")
    store.send("src.fifo", [msg("p", group="g", dedup="1")], deduplication=Deduplication(T0, 300_000))
    target = DeadLetterTarget("dlq.fifo", 1, "arn:src")
    receive(store, "src.fifo", T0, vt=0, fifo=True, dead_letter=target)
    assert receive(store, "src.fifo", T0 + 1, vt=0, fifo=True, dead_letter=target) == []
    moved = store.receive("dlq.fifo", ReceiveParams(T0 + 2, 10, 0, DAY, fifo=True)).deliveries
    assert moved[0].message.group_id == "g" and moved[0].message.sequence_number == str(10**19 + 1)


def test_expired_messages_are_dropped(store: SqliteQueueStore) -> None:
    make_queue(store, "q")
    store.send("q", [msg("old"), msg("new", sent=T0 + 10)])
    assert store.counts("q", now_ms=T0 + DAY, retention_ms=DAY).visible == 1
    assert receive(store, "q", T0 + DAY) == ["new"]
    assert store.counts("q", now_ms=T0 + DAY + 1, retention_ms=DAY) == QueueCounts(0, 1, 0)
    assert receive(store, "q", T0 + DAY + 60_000) == []  # visible again, but expired now
    assert store.counts("q", now_ms=T0, retention_ms=10 * DAY) == QueueCounts(0, 0, 0)


def test_purge_at_most_once_a_minute(store: SqliteQueueStore) -> None:
    make_queue(store, "q")
    store.send("q", [msg("a"), msg("b")])
    assert store.purge("q", now_ms=T0, interval_ms=60_000)
    store.send("q", [msg("c")])
    assert not store.purge("q", now_ms=T0 + 59_999, interval_ms=60_000)
    assert store.counts("q", now_ms=T0, retention_ms=DAY).visible == 1
    assert store.purge("q", now_ms=T0 + 60_000, interval_ms=60_000)


def test_missing_queue_raises_not_found(store: SqliteQueueStore) -> None:
    with pytest.raises(NotFoundError):
        store.send("nope", [msg("a")])
    with pytest.raises(NotFoundError):
        store.receive("nope", ReceiveParams(T0, 1, 0, DAY))
    with pytest.raises(NotFoundError):
        store.purge("nope", now_ms=T0, interval_ms=1)


def test_deleting_a_queue_deletes_its_messages(store: SqliteQueueStore, path: Path) -> None:
    make_queue(store, "q")
    store.send("q", [msg("a")])
    store.delete_queue("q")
    make_queue(store, "q")
    assert receive(store, "q", T0) == []


def test_everything_survives_reopening(path: Path) -> None:
    first = SqliteQueueStore(path)
    make_queue(first, "q")
    first.send("q", [msg("a", body="durable ✓")])
    first.close()
    second = SqliteQueueStore(path)
    try:
        deliveries = second.receive("q", ReceiveParams(T0, 10, 0, DAY)).deliveries
        assert [d.message.body for d in deliveries] == ["durable ✓"]
    finally:
        second.close()
