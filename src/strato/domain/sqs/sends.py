"""What a SendMessage becomes: the rules that turn a requested message into the ``Message`` a
queue stores, or the SQS error of the request (https://docs.aws.amazon.com/AWSSimpleQueueService/
latest/APIReference/API_SendMessage.html).

- The body and the attributes are checked (``messages``), and their size against the
  queue's ``MaximumMessageSize``.
- Standard queues: a message's ``DelaySeconds`` (0–900) overrides the queue's; a
  ``MessageDeduplicationId`` is refused; a ``MessageGroupId`` is kept (fair queues).
- FIFO queues: ``MessageGroupId`` is required; the deduplication id is the given one, or the
  body's SHA-256 with ``ContentBasedDeduplication``, and one of the two is required; a
  per-message delay is refused (only the queue's applies).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from strato.domain.sqs import messages as rules
from strato.domain.sqs import queues as q
from strato.domain.sqs.attributes import int_attribute
from strato.domain.sqs.errors import InvalidParameterValue, MissingParameter


@dataclass(frozen=True)
class SendRequest:
    """One message a client asks to send (one entry of a batch)."""

    body: str
    delay_s: int | None = None
    attributes: Mapping[str, q.MessageAttribute] = field(default_factory=dict)
    system_attributes: Mapping[str, q.MessageAttribute] = field(default_factory=dict)
    group_id: str | None = None
    deduplication_id: str | None = None

    def size(self) -> int:
        return rules.message_size(self.body or "", self.attributes)


def _not_for_this_queue(parameter: str, value: object) -> InvalidParameterValue:
    return InvalidParameterValue(
        f"Value {value} for parameter {parameter} is invalid. Reason: The request include "
        "parameter that is not valid for this queue type."
    )


def prepare_message(
    queue: q.Queue, request: SendRequest, *, message_id: str, sender_id: str, now_ms: int
) -> q.Message:
    """The message ``queue`` stores for ``request``, sent at ``now_ms``; raises the SQS error
    (InvalidParameterValue, MissingParameter, InvalidMessageContents) of a request the queue
    refuses."""
    body = rules.check_body(request.body)
    rules.check_attributes(request.attributes)
    rules.check_attributes(request.system_attributes, system=True)
    rules.check_size(rules.message_size(body, request.attributes),
                     int_attribute(queue, "MaximumMessageSize"))
    delay_s = int_attribute(queue, "DelaySeconds")
    group_id = request.group_id
    deduplication_id = request.deduplication_id
    if queue.fifo:
        if request.delay_s:
            raise _not_for_this_queue("DelaySeconds", request.delay_s)
        if not group_id:
            raise MissingParameter.named("MessageGroupId")
        rules.check_token("MessageGroupId", group_id)
        if deduplication_id:
            rules.check_token("MessageDeduplicationId", deduplication_id)
        elif queue.attributes.get("ContentBasedDeduplication") == "true":
            deduplication_id = rules.content_deduplication_id(body)
        else:
            raise InvalidParameterValue(
                "The queue should either have ContentBasedDeduplication enabled or "
                "MessageDeduplicationId provided explicitly"
            )
    else:
        if deduplication_id is not None:
            raise _not_for_this_queue("MessageDeduplicationId", deduplication_id)
        if group_id is not None:
            rules.check_token("MessageGroupId", group_id)
        if request.delay_s is not None:
            if not 0 <= request.delay_s <= q.MAX_DELAY_S:
                raise InvalidParameterValue(
                    f"Value {request.delay_s} for parameter DelaySeconds is invalid. Reason: "
                    f"DelaySeconds must be >= 0 and <= {q.MAX_DELAY_S}."
                )
            delay_s = request.delay_s
    return q.Message(
        message_id=message_id,
        body=body,
        md5_of_body=rules.md5_of_body(body),
        sender_id=sender_id,
        sent_ms=now_ms,
        visible_ms=now_ms + delay_s * 1000,
        attributes=dict(request.attributes),
        md5_of_attributes=rules.md5_of_attributes(request.attributes),
        system_attributes=dict(request.system_attributes),
        md5_of_system_attributes=rules.md5_of_attributes(request.system_attributes),
        group_id=group_id,
        deduplication_id=deduplication_id,
    )
