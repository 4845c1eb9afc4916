"""Which stored messages a ReceiveMessage delivers, moves to the dead-letter queue, or drops
as expired: one pure decision over the queue's candidates, walked in delivery order.

- A message older than the queue's retention period is dropped (never delivered).
- A message not yet visible (delayed, or in flight) is not delivered.
- A message already received ``maxReceiveCount`` times moves to the dead-letter queue instead
  of being delivered a further time; the walk goes on, so a poison message does not keep
  others from being delivered (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/
  SQSDeveloperGuide/sqs-dead-letter-queues.html).
- FIFO queues keep each message group in order: candidates come in send order, a group with
  a message in flight delivers nothing, and a group whose next message is not visible (still
  delayed) delivers nothing after it. Several messages of one group may go in one receive,
  in order (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/
  FIFO-queues-understanding-logic.html).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Candidate:
    """A stored message as the decision sees it; ``key`` identifies it in the store."""

    key: int
    group_id: str | None
    visible_ms: int
    receive_count: int
    sent_ms: int


@dataclass
class DeliveryPlan:
    deliver: list[int] = field(default_factory=list)
    dead_letter: list[int] = field(default_factory=list)
    expire: list[int] = field(default_factory=list)


def plan_delivery(
    candidates: Iterable[Candidate],
    *,
    now_ms: int,
    max_messages: int,
    retention_ms: int,
    fifo: bool = False,
    in_flight_groups: Collection[str] = (),
    max_receive_count: int | None = None,
) -> DeliveryPlan:
    """Walk ``candidates`` (send order for FIFO queues; any order of preference otherwise)
    until ``max_messages`` are to be delivered. ``in_flight_groups`` are the FIFO groups with
    a message in flight; ``max_receive_count`` is the redrive policy's, None without one.
    Stops consuming ``candidates`` as soon as the plan is full."""
    plan = DeliveryPlan()
    stopped = set(in_flight_groups)
    for candidate in candidates:
        if len(plan.deliver) >= max_messages:
            break
        if candidate.sent_ms + retention_ms <= now_ms:
            plan.expire.append(candidate.key)
            continue
        group = candidate.group_id
        if fifo and group is not None and group in stopped:
            continue
        if candidate.visible_ms > now_ms:
            if fifo and group is not None:
                stopped.add(group)
            continue
        if max_receive_count is not None and candidate.receive_count >= max_receive_count:
            plan.dead_letter.append(candidate.key)
            continue
        plan.deliver.append(candidate.key)
    return plan
