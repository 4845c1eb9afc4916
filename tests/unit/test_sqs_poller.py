"""The SQS poller on fakes: a queue in memory and a function invoker that records what it
was given (the real queue and invoke path are exercised end to end in tests/e2e)."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import time
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from strato.domain.arns import Scope
from strato.domain.errors import ResourceNotFoundException, TooManyRequestsException
from strato.domain.event_source_mappings import EventSourceMapping, MappingState
from strato.event_sources.manager import PollerManager
from strato.event_sources.sqs_poller import SqsPoller
from strato.scheduler.invocation import InvocationResult
from strato.sqs.client import QueueUnavailable, ReceivedMessage
from tests.support.waiting import until

QUEUE = "arn:aws:sqs:eu-west-1:000000000000:orders"


def in_loop(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test on a fresh event loop."""
    @functools.wraps(test)
    def run_it(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))
    return run_it


class InstantClock:
    """Real monotonic time; back-off sleeps only yield."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)


class FakeQueue:
    """Messages handed out once (a received message never reappears here)."""

    def __init__(self) -> None:
        self.visible: list[ReceivedMessage] = []
        self.in_flight: dict[str, ReceivedMessage] = {}
        self.deleted: list[str] = []
        self.receives = 0
        self.fail = False

    def publish(self, *bodies: str, attributes: dict[str, dict[str, str]] | None = None) -> None:
        for body in bodies:
            n = len(self.visible) + len(self.in_flight) + len(self.deleted)
            self.visible.append(ReceivedMessage(
                message_id=f"id-{n}", receipt_handle=f"rh-{n}", body=body,
                md5_of_body=hashlib.md5(body.encode()).hexdigest(),
                attributes={"ApproximateReceiveCount": "1", "SentTimestamp": "1700000000000",
                            "SenderId": "AIDATEST", "ApproximateFirstReceiveTimestamp": "1700000000001"},
                message_attributes=attributes or {},
                md5_of_message_attributes="abc" if attributes else None,
            ))

    async def receive(self, queue_arn: str, *, max_messages: int, wait_s: float,
                      visibility_timeout: int | None = None) -> list[ReceivedMessage]:
        self.receives += 1
        if self.fail:
            raise QueueUnavailable("down")
        if not self.visible:
            await asyncio.sleep(0.002)  # an empty long poll takes a while, and the poller loops
            return []
        taken, self.visible = self.visible[:max_messages], self.visible[max_messages:]
        self.in_flight.update((m.receipt_handle, m) for m in taken)
        return taken

    async def delete(self, queue_arn: str, receipt_handles: Sequence[str]) -> None:
        for handle in receipt_handles:
            if self.in_flight.pop(handle, None) is not None:
                self.deleted.append(handle)

    async def send(self, queue_arn: str, body: str, *, group_id: str | None = None,
                   deduplication_id: str | None = None) -> str:
        raise NotImplementedError

    async def change_visibility(self, queue_arn: str, receipt_handle: str, timeout_s: int) -> None:
        raise NotImplementedError

    async def attributes(self, queue_arn: str) -> dict[str, str]:
        return {"VisibilityTimeout": "30"}


class FakeInvoker:
    def __init__(self, respond: Callable[[dict[str, Any]], InvocationResult | Exception]) -> None:
        self.respond = respond
        self.events: list[dict[str, Any]] = []
        self.scopes: list[Scope] = []
        self.ready = True
        self.in_flight = 0
        self.most_in_flight = 0

    def available(self, function_name: str, qualifier: str | None, scope: Scope) -> bool:
        return self.ready

    async def invoke(self, function_name: str, qualifier: str | None, payload: bytes,
                     scope: Scope) -> InvocationResult:
        event = json.loads(payload)
        self.events.append(event)
        self.scopes.append(scope)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.01)  # an invocation lasts: the ones the poller overlaps are counted
        finally:
            self.in_flight -= 1
        outcome = self.respond(event)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def ok(event: dict[str, Any]) -> InvocationResult:
    return InvocationResult(b"null", "$LATEST")


def mapping(**changes: Any) -> EventSourceMapping:
    return EventSourceMapping(uuid="u-1", event_source_arn=QUEUE, function_name="fn", qualifier=None,
                              last_modified=datetime.now(UTC), state=MappingState.ENABLED).replace(**changes)


async def run(poller: SqsPoller, condition: Callable[[], bool]) -> None:
    poller.start()
    try:
        await until(condition)
    finally:
        await poller.stop(1.0)


def make(queue: FakeQueue, invoker: FakeInvoker, **changes: Any) -> SqsPoller:
    return SqsPoller(mapping(**changes), queue, invoker, "000000000000", clock=InstantClock())


@in_loop
async def test_messages_reach_the_function_as_lambda_sqs_records_then_are_deleted() -> None:
    queue, invoker = FakeQueue(), FakeInvoker(ok)
    queue.publish("hello", attributes={"Author": {"DataType": "String", "StringValue": "John"}})
    await run(make(queue, invoker), lambda: len(queue.deleted) == 1)
    (record,) = invoker.events[0]["Records"]
    assert record == {
        "messageId": "id-0", "receiptHandle": "rh-0", "body": "hello",
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1700000000000",
                       "SenderId": "AIDATEST", "ApproximateFirstReceiveTimestamp": "1700000000001"},
        "messageAttributes": {"Author": {"stringValue": "John", "stringListValues": [],
                                         "binaryListValues": [], "dataType": "String"}},
        "md5OfMessageAttributes": "abc",
        "md5OfBody": hashlib.md5(b"hello").hexdigest(),
        "eventSource": "aws:sqs", "eventSourceARN": QUEUE, "awsRegion": "eu-west-1",
    }
    assert invoker.scopes[0] == Scope("eu-west-1", "000000000000")


@in_loop
async def test_filtered_out_messages_are_deleted_without_an_invoke() -> None:
    queue, invoker = FakeQueue(), FakeInvoker(ok)
    queue.publish(json.dumps({"kind": "keep"}), json.dumps({"kind": "drop"}), "plain text")
    poller = make(queue, invoker, filter_patterns=('{"body": {"kind": ["keep"]}}',))
    await run(poller, lambda: len(queue.deleted) == 3)
    bodies = [r["body"] for e in invoker.events for r in e["Records"]]
    assert bodies == [json.dumps({"kind": "keep"})]


@in_loop
async def test_a_function_error_leaves_every_message() -> None:
    queue, invoker = FakeQueue(), FakeInvoker(lambda e: InvocationResult(b"{}", "$LATEST", "Unhandled"))
    queue.publish("a", "b")
    await run(make(queue, invoker), lambda: len(invoker.events) >= 1 and not queue.visible)
    assert queue.deleted == []
    assert len(queue.in_flight) == 2


@in_loop
async def test_report_batch_item_failures_keeps_only_the_failed_items() -> None:
    def respond(event: dict[str, Any]) -> InvocationResult:
        failed = [{"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"] == "bad"]
        return InvocationResult(json.dumps({"batchItemFailures": failed}).encode(), "$LATEST")

    queue, invoker = FakeQueue(), FakeInvoker(respond)
    queue.publish("good", "bad", "good")
    poller = make(queue, invoker, function_response_types=("ReportBatchItemFailures",))
    await run(poller, lambda: len(queue.deleted) == 2)
    assert sorted(queue.deleted) == ["rh-0", "rh-2"]
    assert list(queue.in_flight) == ["rh-1"]


@in_loop
async def test_without_report_batch_item_failures_a_response_is_ignored() -> None:
    queue = FakeQueue()
    invoker = FakeInvoker(lambda e: InvocationResult(b'{"batchItemFailures": [{"itemIdentifier": "id-0"}]}', "$LATEST"))
    queue.publish("a")
    await run(make(queue, invoker), lambda: queue.deleted == ["rh-0"])


@in_loop
async def test_a_malformed_partial_response_fails_the_whole_batch() -> None:
    queue = FakeQueue()
    invoker = FakeInvoker(lambda e: InvocationResult(b'{"batchItemFailures": [{"itemIdentifier": "nope"}]}', "$LATEST"))
    queue.publish("a", "b")
    poller = make(queue, invoker, function_response_types=("ReportBatchItemFailures",))
    await run(poller, lambda: len(invoker.events) == 1 and not queue.visible)
    assert queue.deleted == []


@pytest.mark.parametrize("refusal", [TooManyRequestsException("Rate Exceeded."),
                                     ResourceNotFoundException("Function not found")])
@in_loop
async def test_a_refused_invoke_leaves_the_messages_and_backs_off(refusal: Exception) -> None:
    queue, invoker = FakeQueue(), FakeInvoker(lambda e: refusal)
    queue.publish("a")
    poller = make(queue, invoker)
    await run(poller, lambda: len(invoker.events) == 1)
    assert queue.deleted == [] and list(queue.in_flight) == ["rh-0"]


@in_loop
async def test_batches_hold_at_most_batch_size_messages() -> None:
    queue, invoker = FakeQueue(), FakeInvoker(ok)
    queue.publish(*[f"m{i}" for i in range(25)])
    poller = make(queue, invoker, batch_size=4, maximum_concurrency=2)
    await run(poller, lambda: len(queue.deleted) == 25)
    sizes = [len(e["Records"]) for e in invoker.events]
    assert sum(sizes) == 25 and max(sizes) <= 4


@in_loop
async def test_a_batching_window_gathers_more_than_one_receive() -> None:
    queue, invoker = FakeQueue(), FakeInvoker(ok)
    queue.publish(*[f"m{i}" for i in range(25)])
    poller = make(queue, invoker, batch_size=25, maximum_batching_window_s=1)
    await run(poller, lambda: len(queue.deleted) == 25)
    assert [len(e["Records"]) for e in invoker.events] == [25]


@in_loop
async def test_pollers_scale_up_with_a_backlog_within_maximum_concurrency() -> None:
    queue, invoker = FakeQueue(), FakeInvoker(ok)
    queue.publish(*[f"m{i}" for i in range(200)])
    poller = make(queue, invoker, batch_size=2, maximum_concurrency=3)
    await run(poller, lambda: len(queue.deleted) == 200)
    assert invoker.most_in_flight == 3


@in_loop
async def test_nothing_is_received_while_the_function_is_unavailable() -> None:
    queue, invoker = FakeQueue(), FakeInvoker(ok)
    invoker.ready = False
    queue.publish("a")
    poller = make(queue, invoker)
    poller.start()
    await asyncio.sleep(0.05)  # the point is what does not happen: no receive meanwhile
    assert queue.receives == 0
    invoker.ready = True
    try:
        await until(lambda: queue.deleted == ["rh-0"])
    finally:
        await poller.stop(1.0)


@in_loop
async def test_an_unreachable_queue_is_retried() -> None:
    queue, invoker = FakeQueue(), FakeInvoker(ok)
    queue.fail = True
    queue.publish("a")
    poller = make(queue, invoker)
    poller.start()
    try:
        await until(lambda: queue.receives >= 3)
        queue.fail = False
        await until(lambda: queue.deleted == ["rh-0"])
    finally:
        await poller.stop(1.0)


@in_loop
async def test_the_manager_runs_pollers_of_enabled_mappings_only() -> None:
    queue, invoker = FakeQueue(), FakeInvoker(ok)
    manager = PollerManager(lambda m: SqsPoller(m, queue, invoker, "000000000000", clock=InstantClock()))
    manager.apply("u-1", mapping(state=MappingState.DISABLED))
    assert manager.poller("u-1") is None
    manager.apply("u-1", mapping())
    first = manager.poller("u-1")
    assert first is not None and first.workers == 1
    manager.apply("u-1", mapping(batch_size=3))
    second = manager.poller("u-1")
    assert second is not None and second is not first and second.mapping.batch_size == 3
    await until(lambda: first.workers == 0)
    manager.apply("u-1", None)
    assert manager.poller("u-1") is None
    await manager.close()
    assert second.workers == 0
