"""The queues strato sends to and polls, behind one Protocol.

``QueueClient`` is how the async path delivers destination and dead-letter records and how
event source mappings poll: the same calls whether the queue is one of strato's built-in
queues or lives on an external SQS-compatible endpoint. Queues are named by ARN
(``arn:aws:sqs:<region>:<account>:<name>``). ``QueueRouter`` picks the client: queues of
strato's own account are built in; others go to the external endpoint when one is
configured, and are refused otherwise (``QueueUnavailable``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from strato.errors import StratoError


class QueueUnavailable(StratoError):
    """The queue does not exist or cannot be reached (no endpoint serves its account)."""


@dataclass(frozen=True)
class ReceivedMessage:
    """One message as ReceiveMessage returns it. ``attributes`` are SQS's system attributes
    (``ApproximateReceiveCount``, ``SentTimestamp``, ``SenderId``,
    ``ApproximateFirstReceiveTimestamp``, and for FIFO ``MessageGroupId``...), as strings;
    ``message_attributes`` in SQS's JSON shape (``{"name": {"DataType": ..., "StringValue": ...}}``)."""

    message_id: str
    receipt_handle: str
    body: str
    md5_of_body: str
    attributes: Mapping[str, str] = field(default_factory=dict)
    message_attributes: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    md5_of_message_attributes: str | None = None


class QueueClient(Protocol):
    async def send(self, queue_arn: str, body: str, *, group_id: str | None = None,
                   deduplication_id: str | None = None,
                   message_attributes: Mapping[str, Mapping[str, str]] | None = None) -> str:
        """Send one message; returns its MessageId. Raises QueueUnavailable.
        ``message_attributes`` are in SQS's JSON shape (``{"name": {"DataType": "String",
        "StringValue": ...}}``); None sends none."""

    async def receive(self, queue_arn: str, *, max_messages: int, wait_s: float,
                      visibility_timeout: int | None = None) -> list[ReceivedMessage]:
        """Receive up to ``max_messages`` (1–10), long-polling up to ``wait_s`` seconds.
        Raises QueueUnavailable."""

    async def delete(self, queue_arn: str, receipt_handles: Sequence[str]) -> None:
        """Delete received messages (unknown or stale handles are ignored)."""

    async def change_visibility(self, queue_arn: str, receipt_handle: str, timeout_s: int) -> None:
        """Make a received message visible again after ``timeout_s`` seconds."""

    async def attributes(self, queue_arn: str) -> dict[str, str]:
        """GetQueueAttributes(All) of the queue. Raises QueueUnavailable."""


def queue_account(queue_arn: str) -> str | None:
    """The account of a queue ARN, None if it is not an SQS ARN."""
    parts = queue_arn.split(":")
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "sqs":
        return None
    return parts[4]


class QueueRouter:
    """A QueueClient that sends each call to the built-in queues (strato's account) or to
    the external endpoint (any other account), when there is one."""

    def __init__(self, account: str, builtin: QueueClient, external: QueueClient | None) -> None:
        self._account = account
        self._builtin = builtin
        self._external = external

    def client_for(self, queue_arn: str) -> QueueClient:
        account = queue_account(queue_arn)
        if account is None:
            raise QueueUnavailable(f"not an SQS queue ARN: {queue_arn}")
        if account == self._account:
            return self._builtin
        if self._external is None:
            raise QueueUnavailable(
                f"queue {queue_arn} belongs to account {account}: no external SQS endpoint is "
                "configured (STRATO_SQS_ENDPOINT)"
            )
        return self._external

    async def send(self, queue_arn: str, body: str, *, group_id: str | None = None,
                   deduplication_id: str | None = None,
                   message_attributes: Mapping[str, Mapping[str, str]] | None = None) -> str:
        client = self.client_for(queue_arn)
        if message_attributes is None:
            return await client.send(queue_arn, body, group_id=group_id,
                                     deduplication_id=deduplication_id)
        return await client.send(queue_arn, body, group_id=group_id,
                                 deduplication_id=deduplication_id,
                                 message_attributes=message_attributes)

    async def receive(self, queue_arn: str, *, max_messages: int, wait_s: float,
                      visibility_timeout: int | None = None) -> list[ReceivedMessage]:
        return await self.client_for(queue_arn).receive(
            queue_arn, max_messages=max_messages, wait_s=wait_s,
            visibility_timeout=visibility_timeout)

    async def delete(self, queue_arn: str, receipt_handles: Sequence[str]) -> None:
        await self.client_for(queue_arn).delete(queue_arn, receipt_handles)

    async def change_visibility(self, queue_arn: str, receipt_handle: str, timeout_s: int) -> None:
        await self.client_for(queue_arn).change_visibility(queue_arn, receipt_handle, timeout_s)

    async def attributes(self, queue_arn: str) -> dict[str, str]:
        return await self.client_for(queue_arn).attributes(queue_arn)
