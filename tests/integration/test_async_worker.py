"""The asynchronous worker and the destination sender on a real event store, with a virtual
clock and a fake pool: Lambda's retry schedule, throttles, event age, reserved concurrency 0,
destinations, dead letters, and fencing of a worker that stalled past its lease."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from strato.async_invoke.destinations import DestinationSender
from strato.async_invoke.events import EventState, NewEvent
from strato.async_invoke.sqlite_events import SqliteEventStore
from strato.async_invoke.worker import AsyncWorker, FunctionTarget
from strato.async_invoke.writer import EventWriter
from strato.domain.clock import VirtualClock
from strato.domain.event_invoke import Destinations, EventInvokeConfig
from strato.domain.models import FunctionState
from strato.scheduler.concurrency import ACCOUNT_LIMIT_EXCEEDED, throttled
from strato.scheduler.invocation import Invocation, InvocationResult
from tests.support.store_contracts import make_version
from tests.support.waiting import until

ACCOUNT = "000000000000"
QUEUE = f"arn:aws:sqs:us-east-1:{ACCOUNT}:records"
DLQ = f"arn:aws:sqs:us-east-1:{ACCOUNT}:dead"
FAILURE = json.dumps({"errorMessage": "intentional failure", "errorType": "Exception"}).encode()

#: How a fake function answers: a result, a throttle (an exception to raise), or None (it
#: never answers: the invocation stalls).
Behaviour = Callable[[Invocation], InvocationResult | Exception | None]


class FakePool:
    def __init__(self) -> None:
        self.behaviour: dict[str, Behaviour] = {}
        self.calls: list[tuple[str, Invocation, float]] = []
        self.clock: VirtualClock | None = None

    def invoke(self, version: Any, invocation: Invocation) -> None:
        answer = self.behaviour[version.name](invocation)
        if isinstance(answer, Exception):
            raise answer
        assert self.clock is not None
        self.calls.append((version.name, invocation, self.clock.now()))
        if answer is not None:
            asyncio.get_running_loop().call_soon(invocation.finish, answer)


class FakeQueues:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any], Mapping[str, Mapping[str, str]] | None]] = []

    async def send(self, queue_arn: str, body: str, *, group_id: str | None = None,
                   deduplication_id: str | None = None,
                   message_attributes: Mapping[str, Mapping[str, str]] | None = None) -> str:
        self.sent.append((queue_arn, json.loads(body), message_attributes))
        return str(uuid.uuid4())


def ok(invocation: Invocation) -> InvocationResult:
    return InvocationResult(b'{"ok": true}', "$LATEST")


def fail(invocation: Invocation) -> InvocationResult:
    return InvocationResult(FAILURE, "$LATEST", "Unhandled")


class World:
    """A worker and a sender on one event store, driven by a virtual clock."""

    def __init__(self, tmp_path: Path, *, lease_s: float | None = None) -> None:
        self.clock = VirtualClock()
        self.store = SqliteEventStore(tmp_path / "events.db")
        self.writer = EventWriter(self.store)
        self.pool = FakePool()
        self.pool.clock = self.clock
        self.queues = FakeQueues()
        self.targets: dict[str, FunctionTarget] = {}
        self.worker = self.make_worker(lease_s)
        self.sender = DestinationSender(self.writer, lambda: self.queues, self.exists,
                                        self.worker.notify, self.clock)

    def make_worker(self, lease_s: float | None = None) -> AsyncWorker:
        return AsyncWorker(self.writer, self.lookup, self.pool.invoke, self.clock, account=ACCOUNT,
                           account_concurrency=100, on_deliveries=lambda: self.sender.notify(),
                           lease_s=lease_s)

    def lookup(self, name: str, qualifier: str | None) -> FunctionTarget | None:
        return self.targets.get(name)

    def exists(self, name: str, qualifier: str | None) -> bool:
        return name in self.targets

    def function(self, name: str, behaviour: Behaviour, *, reserved: int | None = None,
                 config: EventInvokeConfig | None = None, dead_letter: str | None = None,
                 state: FunctionState = FunctionState.ACTIVE) -> None:
        version = make_version(name, state=state, dead_letter_target=dead_letter)
        self.targets[name] = FunctionTarget(version, reserved, config)
        self.pool.behaviour[name] = behaviour

    async def accept(self, name: str, payload: dict[str, Any] | None = None) -> str:
        request_id = str(uuid.uuid4())
        body = json.dumps(payload if payload is not None else {"n": 1}).encode()
        await self.writer.insert(NewEvent(request_id, name, None, "us-east-1", body, self.clock.now()))
        self.worker.notify(name)
        return request_id

    async def settled(self) -> None:
        """Wait until nothing is being claimed, run or written."""
        await until(lambda: self.worker.in_flight() == 0, "the worker to be idle")
        await self.writer.drain()
        # What the committed writes' callbacks write in turn shows nowhere until it is queued:
        # they get a moment on the loop, and the writer is drained again.
        await asyncio.sleep(0.01)
        await self.writer.drain()

    def states(self, name: str) -> list[EventState]:
        return [e.state for e in self.store.ledger(function_name=name, states=None, after_seq=0,
                                                   limit=100)]

    async def start(self) -> None:
        await self.worker.start()
        self.sender.start()

    async def stop(self) -> None:
        await self.worker.stop()
        await self.sender.stop()
        await self.writer.close()
        self.store.close()


def config(name: str, **changes: object) -> EventInvokeConfig:
    return EventInvokeConfig(name, "$LATEST", datetime.now(UTC)).replace(**changes)


def run(tmp_path: Path, scenario: Callable[[World], Awaitable[None]], **options: Any) -> None:
    async def main() -> None:
        world = World(tmp_path, **options)
        await world.start()
        try:
            await scenario(world)
        finally:
            await world.stop()

    asyncio.run(main())


def test_a_success_runs_once_and_sends_the_on_success_record(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        w.function("fn", ok, config=config("fn", destinations=Destinations(on_success=QUEUE)))
        request_id = await w.accept("fn", {"hello": "world"})
        await until(lambda: len(w.queues.sent) == 1, "the success record")
        (arn, record, attributes) = w.queues.sent[0]
        assert arn == QUEUE and attributes is None
        assert record["requestContext"] == {
            "requestId": request_id, "functionArn": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:fn:$LATEST",
            "condition": "Success", "approximateInvokeCount": 1}
        assert record["requestPayload"] == {"hello": "world"}
        assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
        assert record["responsePayload"] == {"ok": True}
        (_, invocation, _) = w.pool.calls[0]
        assert invocation.request_id == request_id
        assert invocation.invoked_arn == f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:fn"
        await w.settled()
        assert w.states("fn") == [EventState.SUCCEEDED]

    run(tmp_path, scenario)


def test_function_errors_follow_lambdas_schedule_then_fail_with_records(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        w.function("fn", fail, dead_letter=DLQ,
                   config=config("fn", destinations=Destinations(on_failure=QUEUE)))
        request_id = await w.accept("fn")
        start = w.clock.now()
        await until(lambda: len(w.pool.calls) == 1, "the first attempt")
        await w.settled()
        assert w.states("fn") == [EventState.RETRYING]
        w.clock.advance(59)
        await w.settled()
        assert len(w.pool.calls) == 1
        w.clock.advance(1)
        await until(lambda: len(w.pool.calls) == 2, "the first retry")
        await w.settled()
        w.clock.advance(119)
        await w.settled()
        assert len(w.pool.calls) == 2
        w.clock.advance(1)
        await until(lambda: len(w.queues.sent) == 2, "the failure record and the dead letter")
        assert [at - start for (_, _, at) in w.pool.calls] == [0, 60, 180]
        sent = {arn: (body, attributes) for arn, body, attributes in w.queues.sent}
        record, _ = sent[QUEUE]
        assert record["requestContext"]["condition"] == "RetriesExhausted"
        assert record["requestContext"]["approximateInvokeCount"] == 3
        assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST",
                                             "functionError": "Unhandled"}
        assert record["responsePayload"]["errorMessage"] == "intentional failure"
        letter, attributes = sent[DLQ]
        assert letter == {"n": 1}
        assert attributes == {
            "RequestID": {"DataType": "String", "StringValue": request_id},
            "ErrorCode": {"DataType": "Number", "StringValue": "200"},
            "ErrorMessage": {"DataType": "String", "StringValue": "intentional failure"}}
        await w.settled()
        (entry,) = w.store.ledger(function_name="fn", states=None, after_seq=0, limit=5)
        assert entry.state is EventState.FAILED and entry.attempts == 3
        assert entry.condition == "RetriesExhausted" and entry.last_error == "Exception: intentional failure"

    run(tmp_path, scenario)


def test_throttles_back_off_exponentially_without_using_retries(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        refusals = [throttled(ACCOUNT_LIMIT_EXCEEDED), throttled(ACCOUNT_LIMIT_EXCEEDED)]
        attempts: list[float] = []

        def busy_then_ok(invocation: Invocation) -> InvocationResult | Exception:
            attempts.append(w.clock.now())
            return refusals.pop(0) if refusals else ok(invocation)

        w.function("fn", busy_then_ok, config=config("fn", maximum_retry_attempts=0))
        await w.accept("fn")
        for wait in (1, 2):
            await w.settled()
            assert w.states("fn") == [EventState.RETRYING]
            w.clock.advance(wait)
        await until(lambda: len(w.pool.calls) == 1, "the attempt after two throttles")
        await w.settled()
        assert [at - attempts[0] for at in attempts] == [0, 1, 3]
        (entry,) = w.store.ledger(function_name="fn", states=None, after_seq=0, limit=5)
        assert entry.state is EventState.SUCCEEDED and entry.attempts == 1 and entry.claims == 3

    run(tmp_path, scenario)


def test_an_event_too_old_for_its_retry_fails_with_event_age_exceeded(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        w.function("fn", fail, config=config("fn", maximum_event_age_s=60,
                                              destinations=Destinations(on_failure=QUEUE)))
        await w.accept("fn")
        await until(lambda: len(w.queues.sent) == 1, "the failure record")
        record = w.queues.sent[0][1]
        assert record["requestContext"]["condition"] == "EventAgeExceeded"
        assert record["requestContext"]["approximateInvokeCount"] == 1
        assert record["responseContext"]["functionError"] == "Unhandled"
        assert len(w.pool.calls) == 1

    run(tmp_path, scenario)


def test_an_event_that_waited_past_its_age_never_runs(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        w.function("fn", ok, state=FunctionState.PENDING,
                   config=config("fn", maximum_event_age_s=60, destinations=Destinations(on_failure=QUEUE)))
        await w.accept("fn")
        for _ in range(7):  # a function not ready is retried like a system error: 1, 2, 4 ... s
            await w.settled()
            w.clock.advance(10)
        await until(lambda: len(w.queues.sent) == 1, "the failure record")
        record = w.queues.sent[0][1]
        assert record["requestContext"]["condition"] == "EventAgeExceeded"
        assert record["requestContext"]["approximateInvokeCount"] == 0
        assert "responseContext" not in record and w.pool.calls == []

    run(tmp_path, scenario)


def test_reserved_concurrency_zero_fails_at_once(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        w.function("fn", ok, reserved=0, dead_letter=DLQ,
                   config=config("fn", destinations=Destinations(on_failure=QUEUE)))
        await w.accept("fn", {})
        await until(lambda: len(w.queues.sent) == 2, "the record and the dead letter")
        record = next(body for arn, body, _ in w.queues.sent if arn == QUEUE)
        assert record["requestContext"]["condition"] == "ZeroReservedConcurrency"
        assert record["requestContext"]["approximateInvokeCount"] == 0
        assert record["requestPayload"] == {} and "responseContext" not in record
        assert w.pool.calls == []

    run(tmp_path, scenario)


def test_a_function_destination_gets_the_record_as_an_asynchronous_event(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        received: list[dict[str, Any]] = []

        def collect(invocation: Invocation) -> InvocationResult:
            received.append(json.loads(invocation.payload))
            return ok(invocation)

        w.function("target", collect)
        w.function("fn", ok, config=config("fn", destinations=Destinations(
            on_success=f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:target")))
        request_id = await w.accept("fn")
        await until(lambda: len(received) == 1, "the destination function's event")
        assert received[0]["requestContext"]["requestId"] == request_id
        assert received[0]["requestContext"]["condition"] == "Success"
        await w.settled()
        assert w.states("target") == [EventState.SUCCEEDED]

    run(tmp_path, scenario)


def test_a_missing_queue_service_delays_delivery_until_there_is_one(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        present: list[FakeQueues] = []
        w.sender = DestinationSender(w.writer, lambda: present[0] if present else None, w.exists,
                                     w.worker.notify, w.clock)
        w.sender.start()
        w.function("fn", ok, config=config("fn", destinations=Destinations(on_success=QUEUE)))
        await w.accept("fn")
        await w.settled()
        await until(lambda: bool(w.store.atomically(lambda tx: tx.next_delivery_due())),
                      "the delivery to be rescheduled")
        present.append(w.queues)
        w.clock.advance(1)
        await until(lambda: len(w.queues.sent) == 1, "the delivery")

    run(tmp_path, scenario)


def test_a_worker_that_stalled_past_its_lease_cannot_settle_the_event(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        stalled: list[Invocation] = []

        def stall(invocation: Invocation) -> None:
            stalled.append(invocation)
            return None

        w.function("fn", stall, config=config("fn", destinations=Destinations(on_success=QUEUE)))
        await w.accept("fn")
        await until(lambda: len(stalled) == 1, "the stalled attempt")
        # Another worker on the same queue takes the event over once the lease has expired.
        w.pool.behaviour["fn"] = ok
        other = w.make_worker(lease_s=10)
        await other.start(release_leases=False)
        w.clock.advance(11)
        await other.sweep()
        await until(lambda: len(w.queues.sent) == 1, "the other worker's success record")
        await w.writer.drain()
        # The stalled attempt finishes late: its outcome and its record are dropped.
        stalled[0].finish(InvocationResult(b'{"late": true}', "$LATEST"))
        await w.settled()
        await asyncio.sleep(0.05)  # the point is what does not happen: no record of the late outcome
        await w.writer.drain()
        assert len(w.queues.sent) == 1
        assert w.queues.sent[0][1]["responsePayload"] == {"ok": True}
        (entry,) = w.store.ledger(function_name="fn", states=None, after_seq=0, limit=5)
        assert entry.state is EventState.SUCCEEDED and entry.attempts == 2 and entry.claims == 2
        await other.stop()

    run(tmp_path, scenario, lease_s=10)
