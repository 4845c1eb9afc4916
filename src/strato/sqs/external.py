"""``QueueClient`` on an external SQS-compatible endpoint (AWS SQS, ElasticMQ, moto, ...).

botocore's calls block, so they run on a small pool of daemon threads: a long poll (up to
20 s) in flight never holds up the process's exit, and the event loop never waits on the
network. Queue URLs are looked up once per ARN (GetQueueUrl with the ARN's account as
``QueueOwnerAWSAccountId``). Every failure to reach a queue, or a queue that does not exist,
is a ``QueueUnavailable``. A receive whose caller is cancelled (a poller stopped mid long
poll) cannot be called back; whatever messages it still gets are made visible again at once.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import math
import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, Future
from typing import Any, TypeVar

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from strato.sqs.client import QueueUnavailable, ReceivedMessage

log = logging.getLogger(__name__)
T = TypeVar("T")
_DELETE_BATCH = 10
_READ_TIMEOUT_S = 40  # above SQS's 20 s long poll


class DaemonThreadPool(Executor):
    """A fixed pool of daemon threads (``ThreadPoolExecutor``'s threads are joined at
    interpreter exit, which would wait for any long poll in flight)."""

    def __init__(self, threads: int, name: str) -> None:
        self._jobs: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]] | None] = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
                         for i in range(threads)]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        self._jobs.put((future, lambda: fn(*args, **kwargs)))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        for _ in self._threads:
            self._jobs.put(None)
        if wait:
            for thread in self._threads:
                thread.join()

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            future, call = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(call())
            except BaseException as exc:  # handed to the awaiting coroutine
                future.set_exception(exc)


def _abandoned(job: Future[Any], handle: Callable[[dict[str, Any]], None]) -> None:
    """Hand the result of a call nobody awaits any more to ``handle`` (failures are logged:
    there is no caller left to tell)."""
    if job.cancelled() or job.exception() is not None:
        return
    try:
        handle(job.result())
    except (BotoCoreError, ClientError) as exc:
        log.warning("could not release the messages of an abandoned receive: %s", exc)


def _arn_parts(queue_arn: str) -> tuple[str, str]:
    """(account, name) of an SQS queue ARN."""
    parts = queue_arn.split(":")
    if len(parts) != 6 or parts[2] != "sqs":
        raise QueueUnavailable(f"not an SQS queue ARN: {queue_arn}")
    return parts[4], parts[5]


def _message_attributes(raw: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """botocore's parsed message attributes in SQS's JSON shape (binary values base64)."""
    shaped: dict[str, dict[str, Any]] = {}
    for name, value in raw.items():
        attribute: dict[str, Any] = {"DataType": value.get("DataType", "String")}
        if "StringValue" in value:
            attribute["StringValue"] = value["StringValue"]
        if "BinaryValue" in value:
            attribute["BinaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
        if value.get("StringListValues"):
            attribute["StringListValues"] = list(value["StringListValues"])
        if value.get("BinaryListValues"):
            attribute["BinaryListValues"] = [base64.b64encode(v).decode()
                                             for v in value["BinaryListValues"]]
        shaped[name] = attribute
    return shaped


class ExternalQueueClient:
    """Queues on ``endpoint`` (signed with the given key pair in ``region``)."""

    def __init__(self, endpoint: str, *, region: str, access_key_id: str | None,
                 secret_access_key: str | None, threads: int = 16) -> None:
        """Without a key pair, botocore's usual credential chain is used (environment,
        profile); with none there either, ``test``/``test`` (what local emulators take)."""
        session = botocore.session.get_session()
        if access_key_id is None or secret_access_key is None:
            found = session.get_credentials()
            if found is None:
                access_key_id, secret_access_key = "test", "test"
        self.endpoint = endpoint
        self._client = session.create_client(
            "sqs", endpoint_url=endpoint, region_name=region,
            aws_access_key_id=access_key_id, aws_secret_access_key=secret_access_key,
            config=Config(read_timeout=_READ_TIMEOUT_S, retries={"max_attempts": 2},
                          max_pool_connections=threads),
        )
        self._pool = DaemonThreadPool(threads, "strato-sqs")
        self._urls: dict[str, str] = {}

    def close(self) -> None:
        """Let the pool's threads go (calls in flight finish on their own). Idempotent."""
        self._pool.shutdown(wait=False)

    async def _call(self, operation: str, *,
                    if_abandoned: Callable[[dict[str, Any]], None] | None = None,
                    **params: Any) -> dict[str, Any]:
        """Run one botocore call on the pool. ``if_abandoned`` receives the result of a call
        whose caller was cancelled while it ran (on the pool's thread)."""
        method = getattr(self._client, operation)
        job = self._pool.submit(method, **params)
        try:
            result: dict[str, Any] = await asyncio.wrap_future(job)
        except asyncio.CancelledError:
            if if_abandoned is not None:
                job.add_done_callback(lambda done: _abandoned(done, if_abandoned))
            raise
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise QueueUnavailable(
                f"{operation} at {self.endpoint}: {error.get('Code')}: {error.get('Message')}"
            ) from exc
        except BotoCoreError as exc:
            raise QueueUnavailable(f"{operation} at {self.endpoint}: {exc}") from exc
        return result

    async def _url(self, queue_arn: str) -> str:
        url = self._urls.get(queue_arn)
        if url is None:
            account, name = _arn_parts(queue_arn)
            found = await self._call("get_queue_url", QueueName=name, QueueOwnerAWSAccountId=account)
            url = self._urls[queue_arn] = str(found["QueueUrl"])
        return url

    async def send(self, queue_arn: str, body: str, *, group_id: str | None = None,
                   deduplication_id: str | None = None,
                   message_attributes: Mapping[str, Mapping[str, str]] | None = None) -> str:
        params: dict[str, Any] = {"QueueUrl": await self._url(queue_arn), "MessageBody": body}
        if group_id is not None:
            params["MessageGroupId"] = group_id
        if deduplication_id is not None:
            params["MessageDeduplicationId"] = deduplication_id
        if message_attributes:
            params["MessageAttributes"] = {
                name: {k: base64.b64decode(v) if k == "BinaryValue" else v for k, v in value.items()}
                for name, value in message_attributes.items()
            }
        return str((await self._call("send_message", **params))["MessageId"])

    async def receive(self, queue_arn: str, *, max_messages: int, wait_s: float,
                      visibility_timeout: int | None = None) -> list[ReceivedMessage]:
        params: dict[str, Any] = {
            "QueueUrl": await self._url(queue_arn),
            "MaxNumberOfMessages": max(1, min(10, max_messages)),
            "WaitTimeSeconds": max(0, min(20, math.ceil(wait_s))),
            "MessageSystemAttributeNames": ["All"],
            "MessageAttributeNames": ["All"],
        }
        if visibility_timeout is not None:
            params["VisibilityTimeout"] = visibility_timeout
        response = await self._call("receive_message", if_abandoned=lambda found: self._release(
            params["QueueUrl"], found), **params)
        return [
            ReceivedMessage(
                message_id=m["MessageId"],
                receipt_handle=m["ReceiptHandle"],
                body=m.get("Body", ""),
                md5_of_body=m.get("MD5OfBody", ""),
                attributes=dict(m.get("Attributes") or {}),
                message_attributes=_message_attributes(m.get("MessageAttributes") or {}),
                md5_of_message_attributes=m.get("MD5OfMessageAttributes"),
            )
            for m in response.get("Messages") or []
        ]

    def _release(self, url: str, response: Mapping[str, Any]) -> None:
        """Make the messages of an abandoned receive visible again at once (a poller that was
        stopped mid long poll must not hide them for a whole visibility timeout)."""
        handles = [m["ReceiptHandle"] for m in response.get("Messages") or []]
        if handles:
            self._client.change_message_visibility_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0}
                for i, h in enumerate(handles)])

    async def delete(self, queue_arn: str, receipt_handles: Sequence[str]) -> None:
        url = await self._url(queue_arn)
        for start in range(0, len(receipt_handles), _DELETE_BATCH):
            chunk = receipt_handles[start:start + _DELETE_BATCH]
            entries = [{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(chunk)]
            # Per-entry failures (a stale handle) are ignored, as the Protocol says.
            await self._call("delete_message_batch", QueueUrl=url, Entries=entries)

    async def change_visibility(self, queue_arn: str, receipt_handle: str, timeout_s: int) -> None:
        await self._call("change_message_visibility", QueueUrl=await self._url(queue_arn),
                         ReceiptHandle=receipt_handle, VisibilityTimeout=timeout_s)

    async def attributes(self, queue_arn: str) -> dict[str, str]:
        response = await self._call("get_queue_attributes", QueueUrl=await self._url(queue_arn),
                                    AttributeNames=["All"])
        return {str(k): str(v) for k, v in (response.get("Attributes") or {}).items()}
