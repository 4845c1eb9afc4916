"""The SQLite event store on a real file: claims under leases, fencing, lease expiry, the
ledger, deliveries, and the group-commit writer in front of it."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from strato.async_invoke.events import (
    AttemptResult,
    Delivery,
    EventState,
    NewEvent,
    Settlement,
)
from strato.async_invoke.sqlite_events import SqliteEventStore, SqliteEventTransaction
from strato.async_invoke.writer import EventWriter

T0 = 1_700_000_000.0
LEASE = 30.0
QUEUE = "arn:aws:sqs:us-east-1:000000000000:records"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteEventStore]:
    events = SqliteEventStore(tmp_path / "events.db")
    yield events
    events.close()


def event(request_id: str, function: str = "fn", at: float = T0, payload: bytes = b'{"n": 1}',
          qualifier: str | None = None) -> NewEvent:
    return NewEvent(request_id, function, qualifier, "us-east-1", payload, at)


def claim(store: SqliteEventStore, function: str = "fn", limit: int = 10, now: float = T0):  # type: ignore[no-untyped-def]
    return store.atomically(lambda tx: tx.claim(function, limit, now=now, lease_expires_at=now + LEASE))


def settle(store: SqliteEventStore, settlement: Settlement) -> bool:
    return store.atomically(lambda tx: tx.settle(settlement))


def test_events_are_claimed_due_first_per_function_under_a_lease(store: SqliteEventStore) -> None:
    store.atomically(lambda tx: tx.insert([event("a", at=T0 + 1), event("b"), event("c", "other"),
                                           event("later", at=T0 + 100)]))
    assert sorted(store.atomically(lambda tx: tx.waiting_functions())) == ["fn", "other"]
    claimed = claim(store, limit=5, now=T0 + 10)
    assert [c.event.request_id for c in claimed] == ["a", "b"]
    first = claimed[0]
    assert first.generation == 1 and first.invocations == 0 and first.throttles == 0
    assert first.lease_expires_at == T0 + 10 + LEASE and first.last_result is None
    assert first.event == event("a", at=T0 + 1)
    assert store.atomically(lambda tx: tx.next_due("fn")) == T0 + 100
    assert claim(store, now=T0 + 10) == []
    counts = store.counts("fn")
    assert counts[EventState.IN_FLIGHT] == 2 and counts[EventState.QUEUED] == 1


def test_settling_counts_invocations_and_keeps_the_last_result(store: SqliteEventStore) -> None:
    store.atomically(lambda tx: tx.insert([event("a")]))
    (claimed,) = claim(store)
    failure = AttemptResult("$LATEST", b'{"errorMessage": "boom"}', "Unhandled")
    assert settle(store, Settlement(claimed.seq, claimed.generation, EventState.RETRYING, T0,
                                    invoked=True, next_attempt_at=T0 + 60,
                                    last_error="Exception: boom", last_result=failure))
    assert claim(store, now=T0 + 59) == []
    (again,) = claim(store, now=T0 + 60)
    assert again.invocations == 1 and again.generation == 2 and again.last_result == failure
    # A throttle: the claim does not count as an invocation.
    assert settle(store, Settlement(again.seq, again.generation, EventState.RETRYING, T0 + 60,
                                    invoked=False, throttles=1, next_attempt_at=T0 + 61))
    (third,) = claim(store, now=T0 + 61)
    assert third.invocations == 1 and third.throttles == 1 and third.last_result == failure
    assert settle(store, Settlement(third.seq, third.generation, EventState.SUCCEEDED, T0 + 62,
                                    invoked=True, condition="Success",
                                    last_result=AttemptResult("$LATEST", b"null")))
    (entry,) = store.ledger(function_name="fn", states=None, after_seq=0, limit=10)
    assert entry.state is EventState.SUCCEEDED and entry.attempts == 2 and entry.claims == 3
    assert entry.condition == "Success" and entry.finished_at == T0 + 62
    assert entry.last_error == "Exception: boom"


def test_a_stalled_claim_is_fenced_off_after_its_lease_expired_and_was_taken_again(
        store: SqliteEventStore) -> None:
    store.atomically(lambda tx: tx.insert([event("a")]))
    (stale,) = claim(store, now=T0)
    assert store.atomically(lambda tx: tx.expire_leases(T0 + LEASE - 1)) == []
    assert store.atomically(lambda tx: tx.expire_leases(T0 + LEASE)) == ["fn"]
    # Returned, not yet taken: the stale claim still cannot settle it.
    record = Delivery(QUEUE, '{"condition": "Success"}', "a")
    succeed = Settlement(stale.seq, stale.generation, EventState.SUCCEEDED, T0 + LEASE,
                         invoked=True, condition="Success", deliveries=(record,))
    assert settle(store, succeed) is False
    (taken,) = claim(store, now=T0 + LEASE)
    assert taken.generation == stale.generation + 1
    assert taken.invocations == 1  # the stalled attempt may have run: it counts
    assert settle(store, succeed) is False
    assert store.atomically(lambda tx: tx.claim_deliveries(10, now=T0 + LEASE, lease_expires_at=T0 + 99)) == []
    assert settle(store, Settlement(taken.seq, taken.generation, EventState.SUCCEEDED, T0 + LEASE,
                                    invoked=True, condition="Success", deliveries=(record,)))
    delivered = store.atomically(
        lambda tx: tx.claim_deliveries(10, now=T0 + LEASE, lease_expires_at=T0 + 99))
    assert [d.delivery for d in delivered] == [record]
    (entry,) = store.ledger(function_name="fn", states=None, after_seq=0, limit=10)
    assert entry.attempts == 2 and entry.claims == 2


def test_a_restart_releases_every_lease(store: SqliteEventStore, tmp_path: Path) -> None:
    store.atomically(lambda tx: tx.insert([event("a"), event("b")]))
    claim(store, limit=1)
    store.close()
    reopened = SqliteEventStore(tmp_path / "events.db")
    assert reopened.atomically(lambda tx: tx.release_leases(T0 + 5)) == 1
    claimed = claim(reopened, limit=5, now=T0 + 5)
    assert sorted(c.event.request_id for c in claimed) == ["a", "b"]
    states = {e.request_id: e for e in reopened.ledger(function_name=None, states=None,
                                                       after_seq=0, limit=10)}
    # The attempt cut short by the restart counts, and so does the one in flight now.
    assert states["a"].attempts == 2 and states["a"].claims == 2
    reopened.close()


def test_redrive_requeues_failed_events_as_new(store: SqliteEventStore) -> None:
    store.atomically(lambda tx: tx.insert([event("a"), event("b")]))
    for claimed in claim(store):
        settle(store, Settlement(claimed.seq, claimed.generation, EventState.FAILED, T0 + 1,
                                 invoked=True, condition="RetriesExhausted", last_error="boom"))
    assert store.atomically(lambda tx: tx.redrive("fn", now=T0 + 50, qualifier="3")) == 2
    assert store.atomically(lambda tx: tx.redrive("fn", now=T0 + 50, qualifier=None)) == 0
    claimed = claim(store, now=T0 + 50)
    assert [(c.event.qualifier, c.event.accepted_at, c.invocations) for c in claimed] == [
        ("3", T0 + 50, 0), ("3", T0 + 50, 0)]
    assert claimed[0].event.payload == b'{"n": 1}'


def test_only_finished_events_past_their_retention_are_pruned(store: SqliteEventStore) -> None:
    store.atomically(lambda tx: tx.insert([event("ok"), event("bad"), event("waiting")]))
    ok, bad, _ = claim(store)
    settle(store, Settlement(ok.seq, ok.generation, EventState.SUCCEEDED, T0 + 1, invoked=True,
                             condition="Success"))
    settle(store, Settlement(bad.seq, bad.generation, EventState.FAILED, T0 + 1, invoked=True,
                             condition="RetriesExhausted"))
    prune = store.atomically(lambda tx: tx.prune(succeeded_before=T0 + 2, failed_before=T0, limit=10))
    assert prune == 1
    left = [e.request_id for e in store.ledger(function_name="fn", states=None, after_seq=0, limit=10)]
    assert left == ["bad", "waiting"]


def test_ledger_filters_and_pages(store: SqliteEventStore) -> None:
    store.atomically(lambda tx: tx.insert([event(f"e{i}", "fn" if i % 2 else "other") for i in range(7)]))
    page = store.ledger(function_name="fn", states=[EventState.QUEUED], after_seq=0, limit=2)
    assert [e.request_id for e in page] == ["e1", "e3"]
    rest = store.ledger(function_name="fn", states=[EventState.QUEUED], after_seq=page[-1].seq, limit=5)
    assert [e.request_id for e in rest] == ["e5"]
    assert store.ledger(function_name="fn", states=[EventState.FAILED], after_seq=0, limit=5) == []
    assert store.counts(None)[EventState.QUEUED] == 7


def test_deliveries_are_retried_given_up_and_fenced(store: SqliteEventStore) -> None:
    store.atomically(lambda tx: tx.insert([event("a")]))
    (claimed,) = claim(store)
    records = (Delivery(QUEUE, "r1", "a"), Delivery(QUEUE, "dead", "a", {"ErrorCode": {"DataType": "Number", "StringValue": "200"}}))
    settle(store, Settlement(claimed.seq, claimed.generation, EventState.FAILED, T0, invoked=True,
                             condition="RetriesExhausted", deliveries=records))
    first, second = store.atomically(lambda tx: tx.claim_deliveries(10, now=T0, lease_expires_at=T0 + 10))
    assert second.delivery.attributes == records[1].attributes and first.attempts == 1
    assert store.atomically(lambda tx: tx.retry_delivery(first.delivery_id, first.generation,
                                                        next_attempt_at=T0 + 1, error="down"))
    assert store.atomically(lambda tx: tx.retry_delivery(second.delivery_id, second.generation,
                                                        next_attempt_at=None, error="gone"))
    assert store.atomically(lambda tx: tx.next_delivery_due()) == T0 + 1
    (retried,) = store.atomically(lambda tx: tx.claim_deliveries(10, now=T0 + 1, lease_expires_at=T0 + 2))
    assert retried.attempts == 2 and retried.generation == first.generation + 1
    assert store.atomically(lambda tx: tx.finish_delivery(first.delivery_id, first.generation)) is False
    target = event("to-other", "other")
    assert store.atomically(lambda tx: tx.finish_delivery(retried.delivery_id, retried.generation, target))
    assert [c.event for c in claim(store, "other")] == [target]
    assert store.atomically(lambda tx: tx.next_delivery_due()) is None


def test_events_survive_a_reopen_and_the_schema_is_wal(store: SqliteEventStore, tmp_path: Path) -> None:
    store.atomically(lambda tx: tx.insert([event("durable")]))
    with sqlite3.connect(tmp_path / "events.db") as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("SELECT request_id FROM events").fetchall() == [("durable",)]


def test_a_savepoint_undoes_only_its_own_work(store: SqliteEventStore) -> None:
    def work(tx: SqliteEventTransaction) -> None:
        tx.insert([event("kept")])
        with pytest.raises(RuntimeError), tx.savepoint():
            tx.insert([event("undone")])
            raise RuntimeError("this piece fails")

    store.atomically(work)
    assert [e.request_id for e in store.ledger(function_name=None, states=None, after_seq=0, limit=5)] == ["kept"]


def test_group_commit_shares_transactions_and_resolves_after_commit(tmp_path: Path) -> None:
    asyncio.run(_group_commit(tmp_path))


async def _group_commit(tmp_path: Path) -> None:
    store = SqliteEventStore(tmp_path / "events.db")
    writer = EventWriter(store)
    futures = [writer.insert(event(f"e{i}")) for i in range(2000)]
    await asyncio.gather(*futures)
    assert writer.committed == 2000
    assert writer.commits < 20  # a burst shares a handful of transactions
    with sqlite3.connect(tmp_path / "events.db") as raw:  # committed, seen by another reader
        assert raw.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 2000

    def boom(tx: SqliteEventTransaction) -> None:
        tx.insert([event("undone")])
        raise ValueError("bad work")

    failing = writer.submit(boom)
    fine = writer.insert(event("fine"))
    counted = writer.submit(lambda tx: len(tx.claim("fn", 5000, now=T0, lease_expires_at=T0 + 1)))
    with pytest.raises(ValueError):
        await failing
    await fine
    assert await counted == 2001
    await writer.close()
    store.close()


def test_a_claim_holds_a_bounded_amount_of_payload(store: SqliteEventStore) -> None:
    big = b'"' + b"x" * 400 + b'"'
    store.atomically(lambda tx: tx.insert([event(f"e{i}", payload=big) for i in range(5)]))
    first = store.atomically(lambda tx: tx.claim("fn", 10, now=T0, lease_expires_at=T0 + 1, max_bytes=1000))
    assert [c.event.request_id for c in first] == ["e0", "e1", "e2"]
    one = store.atomically(lambda tx: tx.claim("fn", 10, now=T0, lease_expires_at=T0 + 1, max_bytes=10))
    assert [c.event.request_id for c in one] == ["e3"]
