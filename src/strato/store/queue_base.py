"""The repository of the built-in queues: queues, their messages, FIFO deduplication.

Contract of every backend:

- Records go in and come out as frozen models of ``strato.domain.sqs.queues``.
- Each call is atomic: a failed call changes nothing; ``receive`` decides and records a whole
  receive (deliveries, dead-letter moves, expiries) in one transaction.
- Calls naming a queue that does not exist raise NotFoundError (``strato.errors``), except
  ``delete_queue`` and ``get_queue``, which answer False/None.
- The queue service calls a store from one thread at a time; a backend need not be faster
  for more threads, but must be correct with them.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from strato.domain.sqs.queues import Delivery, Message, Queue, QueueCounts, ReceiptHandle, Sent


@dataclass(frozen=True)
class DeadLetterTarget:
    """Where a receive moves messages received ``max_receive_count`` times: queue
    ``queue_name``, the moved messages recording ``source_arn`` as where they came from."""

    queue_name: str
    max_receive_count: int
    source_arn: str


@dataclass(frozen=True)
class ReceiveParams:
    now_ms: int
    max_messages: int
    visibility_timeout_ms: int
    retention_ms: int
    fifo: bool = False
    dead_letter: DeadLetterTarget | None = None


@dataclass(frozen=True)
class ReceiveOutcome:
    deliveries: list[Delivery]
    #: How many messages moved to the dead-letter queue.
    dead_lettered: int = 0


@dataclass(frozen=True)
class Deduplication:
    """FIFO deduplication of a send: a message whose ``deduplication_id`` was stored in the
    last ``window_ms`` (within its group when ``by_group``) is not stored again."""

    now_ms: int
    window_ms: int
    by_group: bool = False


class VisibilityChange(enum.Enum):
    CHANGED = "changed"
    #: The handle is the message's current one but the message is visible already.
    NOT_IN_FLIGHT = "not-in-flight"
    #: No stored message has this handle as its current one (deleted, or received again).
    UNKNOWN = "unknown"


class QueueStore(Protocol):
    def create_queue(self, queue: Queue) -> Queue:
        """Store ``queue`` unless one of its name exists; returns the stored queue (the
        existing one, unchanged, if there was one)."""

    def get_queue(self, name: str) -> Queue | None:
        """The queue ``name``, or None."""

    def list_queues(self, *, prefix: str, after: str | None, limit: int) -> list[Queue]:
        """Up to ``limit`` queues whose names start with ``prefix``, in name order, after
        the name ``after``."""

    def update_queue(
        self, name: str, *, modified_ms: int, attributes: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> Queue:
        """Replace the queue's attributes and/or tags (a given mapping replaces the whole
        stored one); ``LastModifiedTimestamp`` moves only when ``attributes`` are given."""

    def delete_queue(self, name: str) -> bool:
        """Delete the queue with its messages; False if there was none."""

    def send(
        self, name: str, messages: Sequence[Message], *, deduplication: Deduplication | None = None
    ) -> list[Sent]:
        """Store ``messages`` in order; one ``Sent`` each. With ``deduplication`` (FIFO
        queues) every message has a ``deduplication_id`` and gets the queue's next sequence
        number; a duplicate within the window is not stored and reports the original."""

    def receive(self, name: str, params: ReceiveParams) -> ReceiveOutcome:
        """Deliver up to ``params.max_messages`` messages (``strato.domain.sqs.delivery``
        decides which): each gets a new receipt handle, one more receive, and stays invisible
        for the visibility timeout. Messages the decision dead-letters move to
        ``params.dead_letter``'s queue (when it exists); expired ones are deleted."""

    def delete_message(self, name: str, handle: ReceiptHandle) -> bool:
        """Delete the message ``handle`` names if it is still the message's current handle;
        False otherwise (deleted already, or received again since)."""

    def change_visibility(
        self, name: str, handle: ReceiptHandle, *, now_ms: int, visible_ms: int
    ) -> VisibilityChange:
        """Make the message of ``handle`` visible at ``visible_ms``, if it is in flight under
        this handle."""

    def purge(self, name: str, *, now_ms: int, interval_ms: int) -> bool:
        """Delete every message of the queue; False (and nothing deleted) if the queue was
        purged less than ``interval_ms`` ago."""

    def counts(self, name: str, *, now_ms: int, retention_ms: int) -> QueueCounts:
        """The queue's visible, in-flight and delayed messages (expired ones left out)."""

    def next_visible_ms(self, name: str, *, now_ms: int) -> int | None:
        """The earliest time after ``now_ms`` at which a message becomes visible, or None."""

    def close(self) -> None:
        """Release the backend. Idempotent."""
