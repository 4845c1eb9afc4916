"""``QueueClient`` over strato's built-in queues: direct calls into the queue service, no HTTP.

Queues are named by ARN (``arn:aws:sqs:<region>:<account>:<name>``); only queues of strato's
own account are built in (``QueueRouter`` sends the others elsewhere). The service is
reached through ``QueueOperations``, the part of ``strato.services.sqs_queues.QueueService`` this
client uses, so that the engine layer does not import the services layer.

Errors: a queue that does not exist, or any message the queue refuses, is QueueUnavailable
(the one error of the ``QueueClient`` contract). Stale or unknown receipt handles given to
``delete`` and ``change_visibility`` are ignored, as the contract says.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping, Sequence
from typing import Protocol

from strato.domain.sqs import messages as rules
from strato.domain.sqs.errors import QueueDoesNotExist, SqsError
from strato.domain.sqs.queues import Delivery, MessageAttribute, ReceiveRequest, Sent, parse_queue_arn
from strato.domain.sqs.sends import SendRequest
from strato.sqs.client import QueueUnavailable, ReceivedMessage

log = logging.getLogger(__name__)


class QueueOperations(Protocol):
    """What the client needs of the queue service (``QueueService`` has it)."""

    @property
    def account(self) -> str: ...

    async def send(self, name: str, requests: Sequence[SendRequest], *, sender_id: str,
                   batch: bool = False) -> list[Sent | SqsError]: ...

    async def receive(self, name: str, request: ReceiveRequest) -> list[Delivery]: ...

    async def delete(self, name: str, handles: Sequence[str]) -> list[SqsError | None]: ...

    async def change_visibility(self, name: str,
                                changes: Sequence[tuple[str, int]]) -> list[SqsError | None]: ...

    async def get_attributes(self, name: str, names: Sequence[str], region: str) -> dict[str, str]: ...


def _wire(attribute: MessageAttribute) -> dict[str, str]:
    value = {"DataType": attribute.data_type}
    if attribute.binary_value is not None:
        value["BinaryValue"] = base64.b64encode(attribute.binary_value).decode("ascii")
    else:
        value["StringValue"] = attribute.string_value or ""
    return value


def _attributes(queue_arn: str, wire: Mapping[str, Mapping[str, str]]) -> dict[str, MessageAttribute]:
    out: dict[str, MessageAttribute] = {}
    for name, value in wire.items():
        binary = value.get("BinaryValue")
        try:
            decoded = base64.b64decode(binary, validate=True) if binary is not None else None
        except ValueError as e:
            raise QueueUnavailable(f"queue {queue_arn} refused the request: message attribute "
                                   f"{name}'s BinaryValue is not base64") from e
        out[name] = MessageAttribute(value.get("DataType", ""), value.get("StringValue"), decoded)
    return out


def received(delivery: Delivery) -> ReceivedMessage:
    """A delivery as ``QueueClient.receive`` returns it: every system attribute the message
    has, every message attribute."""
    message = delivery.message
    attributes: Mapping[str, Mapping[str, str]] = {
        name: _wire(a) for name, a in message.attributes.items()
    }
    return ReceivedMessage(
        message_id=message.message_id,
        receipt_handle=delivery.receipt_handle,
        body=message.body,
        md5_of_body=message.md5_of_body,
        attributes=rules.system_attributes(delivery, rules.RECEIVABLE),
        message_attributes=attributes,
        md5_of_message_attributes=message.md5_of_attributes,
    )


class BuiltinQueueClient:
    def __init__(self, queues: QueueOperations, *, sender_id: str) -> None:
        """``sender_id`` is the ``SenderId`` of the messages this client sends (strato's
        account id, as AWS services that send to queues report their account)."""
        self._queues = queues
        self._sender_id = sender_id

    def _name(self, queue_arn: str) -> str:
        address = parse_queue_arn(queue_arn)
        if address is None or address.account != self._queues.account:
            raise QueueUnavailable(f"{queue_arn} is not a queue of strato's account "
                                   f"{self._queues.account}")
        return address.name

    @staticmethod
    def _unavailable(queue_arn: str, error: SqsError) -> QueueUnavailable:
        if isinstance(error, QueueDoesNotExist):
            return QueueUnavailable(f"queue {queue_arn} does not exist")
        return QueueUnavailable(f"queue {queue_arn} refused the request: {error.message}")

    async def send(self, queue_arn: str, body: str, *, group_id: str | None = None,
                   deduplication_id: str | None = None,
                   message_attributes: Mapping[str, Mapping[str, str]] | None = None) -> str:
        """Send one message; returns its MessageId (the original's for a FIFO duplicate).
        ``message_attributes`` are in SQS's JSON shape (binary values base64)."""
        name = self._name(queue_arn)
        request = SendRequest(body, group_id=group_id, deduplication_id=deduplication_id,
                              attributes=_attributes(queue_arn, message_attributes or {}))
        try:
            outcome = (await self._queues.send(name, [request], sender_id=self._sender_id))[0]
        except SqsError as error:
            raise self._unavailable(queue_arn, error) from error
        if isinstance(outcome, SqsError):
            raise self._unavailable(queue_arn, outcome)
        return outcome.message_id

    async def receive(self, queue_arn: str, *, max_messages: int, wait_s: float,
                      visibility_timeout: int | None = None) -> list[ReceivedMessage]:
        name = self._name(queue_arn)
        request = ReceiveRequest(max_messages, visibility_timeout, wait_s)
        try:
            deliveries = await self._queues.receive(name, request)
        except SqsError as error:
            raise self._unavailable(queue_arn, error) from error
        return [received(d) for d in deliveries]

    async def delete(self, queue_arn: str, receipt_handles: Sequence[str]) -> None:
        name = self._name(queue_arn)
        try:
            outcomes = await self._queues.delete(name, list(receipt_handles))
        except SqsError as error:
            raise self._unavailable(queue_arn, error) from error
        for handle, outcome in zip(receipt_handles, outcomes, strict=True):
            if outcome is not None:
                log.debug("ignored receipt handle %s of %s: %s", handle, queue_arn, outcome.message)

    async def change_visibility(self, queue_arn: str, receipt_handle: str, timeout_s: int) -> None:
        name = self._name(queue_arn)
        try:
            outcome = (await self._queues.change_visibility(name, [(receipt_handle, timeout_s)]))[0]
        except SqsError as error:
            raise self._unavailable(queue_arn, error) from error
        if outcome is not None:
            log.debug("visibility of %s in %s unchanged: %s", receipt_handle, queue_arn,
                      outcome.message)

    async def attributes(self, queue_arn: str) -> dict[str, str]:
        name = self._name(queue_arn)
        region = queue_arn.split(":")[3]
        try:
            return await self._queues.get_attributes(name, ["All"], region)
        except SqsError as error:
            raise self._unavailable(queue_arn, error) from error
