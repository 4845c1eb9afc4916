"""The queue service over a real SQLite file, on a virtual clock: long polling and its
wake-ups, visibility, FIFO order and deduplication, dead letters, purge, and the built-in
``QueueClient``."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from strato.domain.clock import VirtualClock
from strato.domain.sqs.errors import (
    InvalidAttributeValue,
    InvalidParameterValue,
    MessageNotInflight,
    PurgeQueueInProgress,
    QueueDoesNotExist,
    QueueNameExists,
    ReceiptHandleIsInvalid,
)
from strato.domain.sqs.queues import ReceiveRequest, Sent
from strato.domain.sqs.sends import SendRequest
from strato.services.sqs_queues import QueueService
from strato.sqs.builtin import BuiltinQueueClient
from strato.sqs.client import QueueUnavailable
from strato.store.sqlite_queues import SqliteQueueStore
from tests.support.waiting import until

ACCOUNT = "000000000000"
T = TypeVar("T")
Test = Callable[[QueueService, VirtualClock], Awaitable[None]]


def run(path: Path, test: Test) -> None:
    async def main() -> None:
        clock = VirtualClock()
        service = QueueService(SqliteQueueStore(path / "queues.db"), clock, ACCOUNT)
        try:
            await test(service, clock)
        finally:
            await service.close()
    asyncio.run(main())


def arn(name: str) -> str:
    return f"arn:aws:sqs:us-east-1:{ACCOUNT}:{name}"


async def send(service: QueueService, name: str, *bodies: str, **fields: Any) -> list[Sent]:
    outcomes = await service.send(name, [SendRequest(b, **fields) for b in bodies], sender_id="me")
    sent = [o for o in outcomes if isinstance(o, Sent)]
    assert len(sent) == len(outcomes), outcomes
    return sent


async def bodies(service: QueueService, name: str, **request: Any) -> list[str]:
    return [d.message.body for d in await service.receive(name, ReceiveRequest(**request))]


async def until_waiting(service: QueueService, name: str) -> None:
    await until(lambda: service.waiting(name), f"a receive waiting on {name}", timeout=5)


async def advance_until_done(clock: VirtualClock, task: asyncio.Task[T], step: float = 0.5) -> float:
    """Advance the clock step by step until ``task`` ends; how far it went."""
    moved = 0.0
    for _ in range(200):
        if task.done():
            return moved
        await asyncio.sleep(0.01)  # lets the service's thread answer before time moves on
        clock.advance(step)
        moved += step
    raise AssertionError("the task never finished")


def spawn(coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    return asyncio.ensure_future(coro)


def test_create_is_idempotent_only_for_the_same_attributes(tmp_path: Path) -> None:
    async def test(service: QueueService, clock: VirtualClock) -> None:
        first = await service.create_queue("q", {"VisibilityTimeout": "10"})
        clock.advance(5)
        again = await service.create_queue("q", {"VisibilityTimeout": "10"})
        assert again == first
        with pytest.raises(QueueNameExists, match="attribute VisibilityTimeout"):
            await service.create_queue("q", {"VisibilityTimeout": "11"})
        attributes = await service.get_attributes("q", ["All"], "eu-west-1")
        assert attributes["QueueArn"] == f"arn:aws:sqs:eu-west-1:{ACCOUNT}:q"
        assert attributes["VisibilityTimeout"] == "10"
        assert attributes["CreatedTimestamp"] == str(1_700_000_000)
        await service.set_attributes("q", {"DelaySeconds": "4"})
        changed = await service.get_attributes("q", ["DelaySeconds", "LastModifiedTimestamp"], "us-east-1")
        assert changed == {"DelaySeconds": "4", "LastModifiedTimestamp": str(1_700_000_005)}
        with pytest.raises(QueueDoesNotExist):
            await service.get_attributes("nope", ["All"], "us-east-1")
    run(tmp_path, test)


def test_long_poll_returns_when_a_message_is_sent(tmp_path: Path) -> None:
    async def test(service: QueueService, clock: VirtualClock) -> None:
        await service.create_queue("q", {})
        poll = spawn(bodies(service, "q", wait_s=20))
        await until_waiting(service, "q")
        await send(service, "q", "hello")
        assert await asyncio.wait_for(poll, timeout=10) == ["hello"]  # the clock never moved
        assert service.waiting("q") == 0
    run(tmp_path, test)


def test_long_poll_ends_empty_after_its_wait(tmp_path: Path) -> None:
    async def test(service: QueueService, clock: VirtualClock) -> None:
        await service.create_queue("q", {"ReceiveMessageWaitTimeSeconds": "3"})
        poll = spawn(bodies(service, "q"))
        moved = await advance_until_done(clock, poll)
        assert poll.result() == [] and 3 <= moved < 4
    run(tmp_path, test)


def test_long_poll_wakes_when_a_message_becomes_visible_again(tmp_path: Path) -> None:
    async def test(service: QueueService, clock: VirtualClock) -> None:
        await service.create_queue("q", {"VisibilityTimeout": "5"})
        await send(service, "q", "m")
        assert await bodies(service, "q") == ["m"]
        poll = spawn(bodies(service, "q", wait_s=20))
        moved = await advance_until_done(clock, poll)
        assert poll.result() == ["m"] and 5 <= moved < 20
    run(tmp_path, test)


def test_receive_parameters_are_checked(tmp_path: Path) -> None:
    async def test(service: QueueService, clock: VirtualClock) -> None:
        await service.create_queue("q", {})
        with pytest.raises(InvalidParameterValue, match="MaxNumberOfMessages is invalid"):
            await service.receive("q", ReceiveRequest(max_messages=11))
        with pytest.raises(InvalidParameterValue, match="WaitTimeSeconds is invalid"):
            await service.receive("q", ReceiveRequest(wait_s=21))
        with pytest.raises(InvalidParameterValue, match="VisibilityTimeout is invalid"):
            await service.receive("q", ReceiveRequest(visibility_timeout_s=43_201))
        with pytest.raises(QueueDoesNotExist):
            await service.receive("nope", ReceiveRequest())
    run(tmp_path, test)


def test_dead_letter_queue_after_max_receive_count(tmp_path: Path) -> None:
    async def test(service: QueueService, clock: VirtualClock) -> None:
        await service.create_queue("dlq", {})
        policy = f'{{"deadLetterTargetArn": "{arn("dlq")}", "maxReceiveCount": 2}}'
        await service.create_queue("src", {"RedrivePolicy": policy})
        await send(service, "src", "poison")
        for _ in range(2):
            assert await bodies(service, "src", visibility_timeout_s=0) == ["poison"]
        dead = spawn(service.receive("dlq", ReceiveRequest(wait_s=20, max_messages=10)))
        await until_waiting(service, "dlq")
        await send(service, "src", "fine")
        assert await bodies(service, "src", max_messages=10) == ["fine"]
        moved = await asyncio.wait_for(dead, timeout=10)
        assert [d.message.body for d in moved] == ["poison"]
        assert moved[0].message.dead_letter_source_arn == arn("src")
        assert await service.dead_letter_sources("dlq") == ["src"]
    run(tmp_path, test)


def test_redrive_policy_needs_an_existing_target_of_the_same_type(tmp_path: Path) -> None:
    async def test(service: QueueService, clock: VirtualClock) -> None:
        missing = f'{{"deadLetterTargetArn": "{arn("nope")}", "maxReceiveCount": 2}}'
        with pytest.raises(InvalidAttributeValue, match="Dead letter target does not exist"):
            await service.create_queue("src", {"RedrivePolicy": missing})
        await service.create_queue("dlq.fifo", {"FifoQueue": "true"})
        await service.create_queue("src", {})
        mismatched = f'{{"deadLetterTargetArn": "{arn("dlq.fifo")}", "maxReceiveCount": 2}}'
        with pytest.raises(InvalidAttributeValue, match="same type"):
            await service.set_attributes("src", {"RedrivePolicy": mismatched})
    run(tmp_path, test)


def test_fifo_order_deduplication_and_group_blocking(tmp_path: Path) -> None:
    async def test(service: QueueService, clock: VirtualClock) -> None:
        await service.create_queue("f.fifo", {"FifoQueue": "true", "ContentBasedDeduplication": "true"})
        first = await send(service, "f.fifo", "a1", "a2", "a3", group_id="a")
        duplicate = await send(service, "f.fifo", "a1", group_id="a")
        assert duplicate[0].message_id == first[0].message_id and duplicate[0].duplicate
        await send(service, "f.fifo", "b1", group_id="b")
        got = await service.receive("f.fifo", ReceiveRequest(max_messages=2))
        assert [d.message.body for d in got] == ["a1", "a2"]
        assert await bodies(service, "f.fifo", max_messages=10) == ["b1"]
        blocked = spawn(bodies(service, "f.fifo", wait_s=20))
        await until_waiting(service, "f.fifo")
        assert not blocked.done()
        await service.delete("f.fifo", [d.receipt_handle for d in got])
        assert await asyncio.wait_for(blocked, timeout=10) == ["a3"]
        clock.advance(301)  # past the deduplication window
        again = await send(service, "f.fifo", "a1", group_id="a")
        assert not again[0].duplicate and again[0].message_id != first[0].message_id
    run(tmp_path, test)


def test_receipt_handle_outcomes(tmp_path: Path) -> None:
    async def test(service: QueueService, clock: VirtualClock) -> None:
        await service.create_queue("q", {})
        await service.create_queue("other", {})
        await send(service, "q", "m")
        await send(service, "other", "o")
        handle = (await service.receive("q", ReceiveRequest(visibility_timeout_s=10)))[0].receipt_handle
        foreign = (await service.receive("other", ReceiveRequest()))[0].receipt_handle
        changes = await service.change_visibility("q", [(handle, 0), (foreign, 5), ("junk", 5), (handle, 43_201)])
        assert changes[0] is None
        assert isinstance(changes[1], ReceiptHandleIsInvalid) and isinstance(changes[2], ReceiptHandleIsInvalid)
        assert isinstance(changes[3], InvalidParameterValue)
        assert isinstance((await service.change_visibility("q", [(handle, 5)]))[0], MessageNotInflight)
        assert await service.delete("q", [handle]) == [None]
        assert await service.delete("q", [handle]) == [None]  # stale: ignored, as SQS does
        unknown = (await service.change_visibility("q", [(handle, 5)]))[0]
        assert isinstance(unknown, InvalidParameterValue) and "does not exist" in unknown.message
    run(tmp_path, test)


def test_purge_once_a_minute_and_batches_with_partial_failures(tmp_path: Path) -> None:
    async def test(service: QueueService, clock: VirtualClock) -> None:
        await service.create_queue("q", {})
        outcomes = await service.send("q", [SendRequest("ok"), SendRequest(""), SendRequest("x\x00")],
                                      sender_id="me", batch=True)
        assert isinstance(outcomes[0], Sent)
        assert [type(o).__name__ for o in outcomes[1:]] == ["MissingParameter", "InvalidMessageContents"]
        await service.purge("q")
        with pytest.raises(PurgeQueueInProgress):
            await service.purge("q")
        clock.advance(60)
        await service.purge("q")
        assert await bodies(service, "q") == []
    run(tmp_path, test)


def test_list_queues_pages(tmp_path: Path) -> None:
    async def test(service: QueueService, clock: VirtualClock) -> None:
        for name in ("a1", "a2", "a3", "b1"):
            await service.create_queue(name, {})
        names, token = await service.list_queues("a", max_results=2)
        assert names == ["a1", "a2"] and token
        names, token = await service.list_queues("a", max_results=2, next_token=token)
        assert names == ["a3"] and token is None
        assert (await service.list_queues())[0] == ["a1", "a2", "a3", "b1"]
        with pytest.raises(InvalidParameterValue):
            await service.list_queues(max_results=0)
    run(tmp_path, test)


def test_close_ends_long_polls(tmp_path: Path) -> None:
    async def main() -> None:
        service = QueueService(SqliteQueueStore(tmp_path / "queues.db"), VirtualClock(), ACCOUNT)
        await service.create_queue("q", {})
        poll = spawn(bodies(service, "q", wait_s=20))
        await until_waiting(service, "q")
        await service.close()
        assert await asyncio.wait_for(poll, timeout=10) == []
    asyncio.run(main())


def test_builtin_queue_client(tmp_path: Path) -> None:
    async def test(service: QueueService, clock: VirtualClock) -> None:
        client = BuiltinQueueClient(service, sender_id=ACCOUNT)
        await service.create_queue("q", {})
        await service.create_queue("f.fifo", {"FifoQueue": "true"})
        attributes = {"s": {"DataType": "String", "StringValue": "v"},
                      "b": {"DataType": "Binary", "BinaryValue": "AAE="}}
        message_id = await client.send(arn("q"), '{"k": 1}', message_attributes=attributes)
        received = await client.receive(arn("q"), max_messages=10, wait_s=0)
        assert [m.message_id for m in received] == [message_id]
        assert received[0].message_attributes == attributes
        assert received[0].md5_of_message_attributes is not None
        assert received[0].attributes["SenderId"] == ACCOUNT
        assert received[0].attributes["ApproximateReceiveCount"] == "1"
        assert received[0].md5_of_body == hashlib.md5(b'{"k": 1}').hexdigest()
        await client.change_visibility(arn("q"), received[0].receipt_handle, 0)
        again = await client.receive(arn("q"), max_messages=1, wait_s=0.5, visibility_timeout=30)
        await client.delete(arn("q"), [again[0].receipt_handle, received[0].receipt_handle, "junk"])
        assert (await client.attributes(arn("q")))["ApproximateNumberOfMessagesNotVisible"] == "0"
        await client.send(arn("f.fifo"), "x", group_id="g", deduplication_id="d")
        fifo = await client.receive(arn("f.fifo"), max_messages=1, wait_s=0)
        assert fifo[0].attributes["MessageGroupId"] == "g" and "SequenceNumber" in fifo[0].attributes
        with pytest.raises(QueueUnavailable, match="does not exist"):
            await client.send(arn("nope"), "x")
        with pytest.raises(QueueUnavailable, match="does not exist"):
            await client.attributes(arn("nope"))
        with pytest.raises(QueueUnavailable, match="not a queue of strato's account"):
            await client.receive("arn:aws:sqs:us-east-1:111111111111:q", max_messages=1, wait_s=0)
        with pytest.raises(QueueUnavailable, match="MessageGroupId"):
            await client.send(arn("f.fifo"), "x")
        with pytest.raises(QueueUnavailable, match="non-empty value"):
            await client.send(arn("q"), "x", message_attributes={"e": {"DataType": "String", "StringValue": ""}})
    run(tmp_path, test)
