"""``ExternalQueueClient`` against a real SQS-compatible endpoint (moto's server): the
``QueueClient`` contract over botocore, and what it does when a queue or the endpoint is
missing."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from strato.sqs.client import QueueUnavailable
from strato.sqs.external import ExternalQueueClient
from tests.support.moto_server import MOTO_ACCOUNT, MotoServer, start_moto
from tests.support.waiting import until


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    server = start_moto()
    yield server
    server.stop()


@pytest.fixture
def client(moto: MotoServer) -> Iterator[ExternalQueueClient]:
    queues = ExternalQueueClient(moto.endpoint, region="us-east-1", access_key_id="test",
                                 secret_access_key="test", threads=4)
    yield queues
    queues.close()


def new_queue(moto: MotoServer, name: str, **attributes: str) -> tuple[Any, str, str]:
    sqs = moto.sqs()
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    return sqs, url, f"arn:aws:sqs:us-east-1:{MOTO_ACCOUNT}:{name}"


def test_send_receive_delete_and_attributes(moto: MotoServer, client: ExternalQueueClient) -> None:
    sqs, url, arn = new_queue(moto, "contract", VisibilityTimeout="45")

    async def scenario() -> None:
        sent_id = await client.send(arn, "hello", message_attributes={
            "Author": {"DataType": "String", "StringValue": "John"},
            "Blob": {"DataType": "Binary", "BinaryValue": base64.b64encode(b"\x00\x01").decode()},
        })
        (message,) = await client.receive(arn, max_messages=10, wait_s=1)
        assert message.message_id == sent_id and message.body == "hello"
        assert message.attributes["ApproximateReceiveCount"] == "1"
        assert {"SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"} <= set(message.attributes)
        assert message.message_attributes == {
            "Author": {"DataType": "String", "StringValue": "John"},
            "Blob": {"DataType": "Binary", "BinaryValue": base64.b64encode(b"\x00\x01").decode()},
        }
        assert message.md5_of_message_attributes
        assert await client.receive(arn, max_messages=10, wait_s=0) == []  # in flight
        await client.delete(arn, [message.receipt_handle, "stale-handle"])
        attributes = await client.attributes(arn)
        assert attributes["VisibilityTimeout"] == "45"
        assert attributes["ApproximateNumberOfMessages"] == "0"
        assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0"

    asyncio.run(scenario())


def test_change_visibility_makes_a_message_visible_again(moto: MotoServer, client: ExternalQueueClient) -> None:
    sqs, url, arn = new_queue(moto, "visibility")
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"n": 1}))

    async def scenario() -> None:
        (first,) = await client.receive(arn, max_messages=1, wait_s=1)
        await client.change_visibility(arn, first.receipt_handle, 0)
        (again,) = await client.receive(arn, max_messages=1, wait_s=1)
        assert again.message_id == first.message_id
        assert again.attributes["ApproximateReceiveCount"] == "2"

    asyncio.run(scenario())


def test_a_missing_queue_or_endpoint_is_unavailable(moto: MotoServer, client: ExternalQueueClient) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]
    nowhere = ExternalQueueClient(f"http://127.0.0.1:{dead_port}", region="us-east-1",
                                  access_key_id="test", secret_access_key="test", threads=1)

    async def scenario() -> None:
        with pytest.raises(QueueUnavailable, match="NonExistentQueue"):
            await client.attributes(f"arn:aws:sqs:us-east-1:{MOTO_ACCOUNT}:missing")
        with pytest.raises(QueueUnavailable):
            await client.receive("not-an-arn", max_messages=1, wait_s=0)
        with pytest.raises(QueueUnavailable):
            await nowhere.attributes(f"arn:aws:sqs:us-east-1:{MOTO_ACCOUNT}:any")

    try:
        asyncio.run(scenario())
    finally:
        nowhere.close()


def test_messages_of_a_cancelled_long_poll_are_released(moto: MotoServer, client: ExternalQueueClient) -> None:
    sqs, url, arn = new_queue(moto, "released", VisibilityTimeout="600")

    # botocore's own hook, in the pool's thread: the long poll is under way.
    sent = threading.Event()
    events = client._client.meta.events
    events.register("before-send.sqs.ReceiveMessage", lambda **_: sent.set())

    async def scenario() -> None:
        poll = asyncio.ensure_future(client.receive(arn, max_messages=10, wait_s=20))
        await until(sent.is_set, "the long poll to be sent", timeout=10)
        poll.cancel()
        sqs.send_message(QueueUrl=url, MessageBody="caught by the abandoned poll")
        # Without the release, the message would stay hidden for 600 s.
        for _ in range(100):
            found = await client.receive(arn, max_messages=10, wait_s=1)
            if found:
                assert [m.body for m in found] == ["caught by the abandoned poll"]
                assert found[0].attributes["ApproximateReceiveCount"] == "2"
                return
        raise AssertionError("the message was not released")

    asyncio.run(scenario())
