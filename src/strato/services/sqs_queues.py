"""The built-in queue service: SQS's semantics over a ``QueueStore``, for the SQS API edge and
for strato's own use (``strato.sqs.builtin``).

Threading: every method is a coroutine to be awaited on the event loop. Store calls run on
the service's own single thread (never the event loop's, never the control plane's), so a
slow disk stalls neither invokes nor Lambda operations, and one writer means SQLite never
waits on itself. Long polling waits on the loop: a receive that finds nothing waits (without
a thread) until a send, delete or visibility change on its queue wakes it, a message of the
queue becomes visible, or its wait time is over (``services.sqs_waiters``).

Time comes from the ``Clock``: ``--time-scale`` shortens visibility timeouts, delays and long
polls alike.

Errors are SQS API errors (``strato.domain.sqs.errors``); a queue that does not exist is
QueueDoesNotExist everywhere.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from strato.domain.clock import Clock
from strato.domain.sqs import attributes as attrs
from strato.domain.sqs import queues as q
from strato.domain.sqs.batches import check_batch_size
from strato.domain.sqs.errors import (
    InvalidParameterValue,
    MessageNotInflight,
    PurgeQueueInProgress,
    QueueDoesNotExist,
    QueueNameExists,
    ReceiptHandleIsInvalid,
    SqsError,
)
from strato.domain.sqs.queues import ReceiveRequest
from strato.domain.sqs.sends import SendRequest, prepare_message
from strato.errors import NotFoundError
from strato.services.sqs_waiters import QueueWaiters
from strato.store.queue_base import (
    DeadLetterTarget,
    Deduplication,
    QueueStore,
    ReceiveParams,
    VisibilityChange,
)

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True)
class _Attempt:
    deliveries: list[q.Delivery]
    wait_s: float
    next_visible_ms: int | None
    dead_letter_queue: str | None


def _check_range(parameter: str, value: float | None, low: int, high: int, reason: str) -> None:
    if value is not None and not low <= value <= high:
        raise InvalidParameterValue(
            f"Value {value} for parameter {parameter} is invalid. Reason: {reason}"
        )


class QueueService:
    def __init__(self, store: QueueStore, clock: Clock, account: str) -> None:
        """``store`` is owned by the service from now on (``close`` closes it)."""
        self.account = account
        self._store = store
        self._clock = clock
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="strato-queues")
        self._waiters = QueueWaiters()
        self._closed = False

    async def close(self) -> None:
        """Wake and end every long poll (with no messages), finish the store calls under
        way, close the store. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._waiters.notify_all()
        await asyncio.get_running_loop().run_in_executor(None, self._thread.shutdown)
        self._store.close()

    def waiting(self, name: str) -> int:
        """How many receives are long-polling queue ``name`` right now."""
        return self._waiters.waiting(name)

    async def _run(self, call: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``call`` on the service's thread; a store's NotFoundError is QueueDoesNotExist."""
        if self._closed:
            raise QueueDoesNotExist("The queue service is shutting down.")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._thread, functools.partial(call, *args, **kwargs))
        except NotFoundError as e:
            raise QueueDoesNotExist() from e

    def _now_ms(self) -> int:
        return int(self._clock.now() * 1000)

    def _queue(self, name: str) -> q.Queue:
        queue = self._store.get_queue(name)
        if queue is None:
            raise QueueDoesNotExist()
        return queue

    # queues -------------------------------------------------------------------------
    async def create_queue(
        self, name: str, attributes: Mapping[str, str], tags: Mapping[str, str] | None = None
    ) -> q.Queue:
        """Create queue ``name``; idempotent when the existing queue has every requested
        attribute value, QueueNameExists otherwise."""
        return await self._run(self._create_queue, name, dict(attributes), dict(tags or {}))

    def _create_queue(self, name: str, given: dict[str, str], tags: dict[str, str]) -> q.Queue:
        attributes = attrs.creation_attributes(name, given)
        existing = self._store.get_queue(name)
        if existing is None:
            self._check_redrive(name, attributes)
            now = self._now_ms()
            existing = self._store.create_queue(q.Queue(name, attributes, now, now, tags))
        conflict = attrs.conflicting_attribute(existing, given)
        if conflict is not None:
            raise QueueNameExists(
                "A queue already exists with the same name and a different value for "
                f"attribute {conflict}"
            )
        return existing

    def _check_redrive(self, name: str, attributes: Mapping[str, str]) -> None:
        """The dead-letter target of a redrive policy must exist, in strato's account, and
        be of the queue's type."""
        policy = attrs.redrive_policy(attributes)
        if policy is None:
            return
        address = q.parse_queue_arn(policy.dead_letter_target_arn)
        target = None
        if address is not None and address.account == self.account:
            target = self._store.get_queue(address.name)
        if target is None:
            raise attrs.invalid_value("RedrivePolicy", "Dead letter target does not exist.")
        if target.fifo != q.is_fifo_name(name):
            raise attrs.invalid_value(
                "RedrivePolicy", "Dead-letter queue must be same type of queue as the source."
            )

    async def get_queue(self, name: str) -> q.Queue:
        return await self._run(self._queue, name)

    async def list_queues(
        self, prefix: str = "", *, max_results: int | None = None, next_token: str | None = None
    ) -> tuple[list[str], str | None]:
        """Names of the queues starting with ``prefix``, in name order, and the token of the
        next page (only when ``max_results`` is given and there are more)."""
        _check_range("MaxResults", max_results, 1, q.LIST_QUEUES_MAX,
                     f"MaxResults must be an integer between 1 and {q.LIST_QUEUES_MAX}.")
        after = None
        if next_token:
            try:
                after = base64.urlsafe_b64decode(next_token.encode()).decode()
            except ValueError as e:
                raise InvalidParameterValue("Invalid NextToken value.") from e
        limit = max_results or q.LIST_QUEUES_MAX
        found = await self._run(self._store.list_queues, prefix=prefix, after=after, limit=limit + 1)
        names = [queue.name for queue in found[:limit]]
        token = None
        if max_results is not None and len(found) > limit:
            token = base64.urlsafe_b64encode(names[-1].encode()).decode()
        return names, token

    async def delete_queue(self, name: str) -> None:
        if not await self._run(self._store.delete_queue, name):
            raise QueueDoesNotExist()
        self._waiters.notify(name)

    async def get_attributes(self, name: str, names: Sequence[str], region: str) -> dict[str, str]:
        """GetQueueAttributes: the attributes ``names`` selects (``All``: every one);
        ``QueueArn`` is rendered in ``region``."""
        return await self._run(self._get_attributes, name, list(names), region)

    def _get_attributes(self, name: str, names: list[str], region: str) -> dict[str, str]:
        queue = self._queue(name)
        wanted = attrs.requested_names(names, queue.fifo)
        now = self._now_ms()
        out: dict[str, str] = {}
        if any(n.startswith("ApproximateNumberOf") for n in wanted):
            counts = self._store.counts(name, now_ms=now, retention_ms=self._retention_ms(queue))
            out["ApproximateNumberOfMessages"] = str(counts.visible)
            out["ApproximateNumberOfMessagesNotVisible"] = str(counts.in_flight)
            out["ApproximateNumberOfMessagesDelayed"] = str(counts.delayed)
        out["QueueArn"] = q.queue_arn(region, self.account, name)
        out["CreatedTimestamp"] = str(queue.created_ms // 1000)
        out["LastModifiedTimestamp"] = str(queue.modified_ms // 1000)
        out.update(queue.attributes)
        return {n: out[n] for n in wanted if n in out}

    async def set_attributes(self, name: str, attributes: Mapping[str, str]) -> None:
        await self._run(self._set_attributes, name, dict(attributes))

    def _set_attributes(self, name: str, given: dict[str, str]) -> None:
        queue = self._queue(name)
        attributes = attrs.changed_attributes(queue, given)
        if "RedrivePolicy" in given:
            self._check_redrive(name, attributes)
        self._store.update_queue(name, attributes=attributes, modified_ms=self._now_ms())

    async def tags(self, name: str) -> dict[str, str]:
        return dict((await self.get_queue(name)).tags)

    async def tag(self, name: str, tags: Mapping[str, str]) -> None:
        await self._run(self._retag, name, lambda current: {**current, **tags})

    async def untag(self, name: str, keys: Sequence[str]) -> None:
        await self._run(self._retag, name,
                        lambda current: {k: v for k, v in current.items() if k not in keys})

    def _retag(self, name: str, change: Callable[[Mapping[str, str]], dict[str, str]]) -> None:
        queue = self._queue(name)
        self._store.update_queue(name, tags=change(queue.tags), modified_ms=queue.modified_ms)

    async def dead_letter_sources(self, name: str) -> list[str]:
        """Names of the queues whose redrive policy targets queue ``name``."""
        return await self._run(self._dead_letter_sources, name)

    def _dead_letter_sources(self, name: str) -> list[str]:
        self._queue(name)
        sources: list[str] = []
        after = None
        while batch := self._store.list_queues(prefix="", after=after, limit=500):
            after = batch[-1].name
            for queue in batch:
                policy = attrs.redrive_policy(queue.attributes)
                address = q.parse_queue_arn(policy.dead_letter_target_arn) if policy else None
                if address is not None and address.name == name and address.account == self.account:
                    sources.append(queue.name)
        return sources

    async def purge(self, name: str) -> None:
        """Delete every message; PurgeQueueInProgress within 60 s of the last purge."""
        if not await self._run(self._store.purge, name, now_ms=self._now_ms(),
                               interval_ms=q.PURGE_INTERVAL_MS):
            raise PurgeQueueInProgress(
                f"Only one PurgeQueue operation on {name} is allowed every 60 seconds."
            )

    # messages -----------------------------------------------------------------------
    async def send(
        self, name: str, requests: Sequence[SendRequest], *, sender_id: str, batch: bool = False
    ) -> list[q.Sent | SqsError]:
        """Send ``requests`` in order; one outcome each, an SqsError for a refused message
        (the others are sent). With ``batch``, messages over the queue's maximum size in
        total refuse the whole batch (BatchRequestTooLong)."""
        outcomes = await self._run(self._send, name, list(requests), sender_id, batch)
        if any(isinstance(o, q.Sent) and not o.duplicate for o in outcomes):
            self._waiters.notify(name)
        return outcomes

    def _send(
        self, name: str, requests: list[SendRequest], sender_id: str, batch: bool
    ) -> list[q.Sent | SqsError]:
        queue = self._queue(name)
        if batch:
            check_batch_size(sum(r.size() for r in requests),
                             attrs.int_attribute(queue, "MaximumMessageSize"))
        now = self._now_ms()
        prepared: list[q.Message | SqsError] = []
        for request in requests:
            try:
                prepared.append(prepare_message(queue, request, message_id=str(uuid.uuid4()),
                                                sender_id=sender_id, now_ms=now))
            except SqsError as error:
                prepared.append(error)
        messages = [m for m in prepared if isinstance(m, q.Message)]
        deduplication = None
        if queue.fifo:
            deduplication = Deduplication(
                now, q.DEDUPLICATION_WINDOW_MS,
                by_group=queue.attributes.get("DeduplicationScope") == "messageGroup")
        sent = iter(self._store.send(name, messages, deduplication=deduplication) if messages else [])
        return [next(sent) if isinstance(p, q.Message) else p for p in prepared]

    async def receive(self, name: str, request: ReceiveRequest) -> list[q.Delivery]:
        """Receive up to ``request.max_messages`` messages, long-polling up to the wait time
        (the request's, else the queue's ``ReceiveMessageWaitTimeSeconds``): returns as soon
        as there is at least one message, or empty when the wait is over."""
        _check_range("MaxNumberOfMessages", request.max_messages, 1, q.MAX_RECEIVE_MESSAGES,
                     f"Must be between 1 and {q.MAX_RECEIVE_MESSAGES}, if provided.")
        _check_range("WaitTimeSeconds", request.wait_s, 0, q.MAX_WAIT_S,
                     f"Must be >= 0 and <= {q.MAX_WAIT_S}, if provided.")
        _check_range("VisibilityTimeout", request.visibility_timeout_s, 0,
                     q.MAX_VISIBILITY_TIMEOUT_S,
                     f"Must be >= 0 and <= {q.MAX_VISIBILITY_TIMEOUT_S}, if provided.")
        deadline: float | None = None
        while True:
            if self._closed and deadline is not None:
                return []
            ticket = self._waiters.ticket(name)
            try:
                attempt = await self._run(self._receive_once, name, request)
                if attempt.dead_letter_queue is not None:
                    self._waiters.notify(attempt.dead_letter_queue)
                if attempt.deliveries or self._closed:
                    return attempt.deliveries
                if deadline is None:
                    deadline = self._clock.monotonic() + attempt.wait_s
                remaining = deadline - self._clock.monotonic()
                if remaining <= 0:
                    return []
                if attempt.next_visible_ms is not None:
                    remaining = min(remaining, max(0.001, (attempt.next_visible_ms - self._now_ms()) / 1000))
                await self._pause(ticket, remaining)
            finally:
                self._waiters.discard(name, ticket)

    async def _pause(self, ticket: asyncio.Future[None], seconds: float) -> None:
        """Until ``ticket`` completes or ``seconds`` of the clock's time pass."""
        sleeper = asyncio.ensure_future(self._clock.sleep(seconds))
        try:
            await asyncio.wait((ticket, sleeper), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()

    def _receive_once(self, name: str, request: ReceiveRequest) -> _Attempt:
        queue = self._queue(name)
        visibility_s = request.visibility_timeout_s
        if visibility_s is None:
            visibility_s = attrs.int_attribute(queue, "VisibilityTimeout")
        wait_s: float | None = request.wait_s
        if wait_s is None:
            wait_s = attrs.int_attribute(queue, "ReceiveMessageWaitTimeSeconds")
        target = self._dead_letter_target(queue)
        now = self._now_ms()
        outcome = self._store.receive(name, ReceiveParams(
            now_ms=now, max_messages=request.max_messages, visibility_timeout_ms=visibility_s * 1000,
            retention_ms=self._retention_ms(queue), fifo=queue.fifo, dead_letter=target,
        ))
        next_visible = None
        if not outcome.deliveries and wait_s > 0:
            next_visible = self._store.next_visible_ms(name, now_ms=now)
        moved_to = target.queue_name if target is not None and outcome.dead_lettered else None
        return _Attempt(outcome.deliveries, wait_s, next_visible, moved_to)

    def _dead_letter_target(self, queue: q.Queue) -> DeadLetterTarget | None:
        policy = attrs.redrive_policy(queue.attributes)
        if policy is None:
            return None
        address = q.parse_queue_arn(policy.dead_letter_target_arn)
        if address is None or address.account != self.account:
            return None
        region = policy.dead_letter_target_arn.split(":")[3]
        return DeadLetterTarget(address.name, policy.max_receive_count,
                                q.queue_arn(region, self.account, queue.name))

    @staticmethod
    def _retention_ms(queue: q.Queue) -> int:
        return attrs.int_attribute(queue, "MessageRetentionPeriod") * 1000

    async def delete(self, name: str, handles: Sequence[str]) -> list[SqsError | None]:
        """Delete received messages; one outcome each (None: deleted, or the handle was
        stale). A handle that is not one of this queue's is ReceiptHandleIsInvalid."""
        outcomes, deleted = await self._run(self._delete, name, list(handles))
        if deleted:
            self._waiters.notify(name)  # a FIFO group may be free again
        return outcomes

    def _delete(self, name: str, handles: list[str]) -> tuple[list[SqsError | None], bool]:
        self._queue(name)
        outcomes: list[SqsError | None] = []
        deleted = False
        for text in handles:
            handle = q.ReceiptHandle.decode(text)
            if handle is None or handle.queue != name:
                outcomes.append(ReceiptHandleIsInvalid.of(text))
                continue
            deleted = self._store.delete_message(name, handle) or deleted
            outcomes.append(None)
        return outcomes, deleted

    async def change_visibility(
        self, name: str, changes: Sequence[tuple[str, int]]
    ) -> list[SqsError | None]:
        """Set the visibility timeout of received messages, from now: one outcome per
        (receipt handle, timeout in seconds)."""
        outcomes = await self._run(self._change_visibility, name, list(changes))
        if any(outcome is None for outcome in outcomes):
            self._waiters.notify(name)
        return outcomes

    def _change_visibility(self, name: str, changes: list[tuple[str, int]]) -> list[SqsError | None]:
        self._queue(name)
        now = self._now_ms()
        outcomes: list[SqsError | None] = []
        for text, timeout_s in changes:
            try:
                self._change_one(name, text, timeout_s, now)
            except SqsError as error:
                outcomes.append(error)
            else:
                outcomes.append(None)
        return outcomes

    def _change_one(self, name: str, text: str, timeout_s: int, now: int) -> None:
        _check_range("VisibilityTimeout", timeout_s, 0, q.MAX_VISIBILITY_TIMEOUT_S,
                     f"VisibilityTimeout must be an integer between 0 and "
                     f"{q.MAX_VISIBILITY_TIMEOUT_S}.")
        handle = q.ReceiptHandle.decode(text)
        if handle is None or handle.queue != name:
            raise ReceiptHandleIsInvalid.of(text)
        change = self._store.change_visibility(name, handle, now_ms=now,
                                               visible_ms=now + timeout_s * 1000)
        if change is VisibilityChange.NOT_IN_FLIGHT:
            raise MessageNotInflight()
        if change is VisibilityChange.UNKNOWN:
            raise InvalidParameterValue(
                f"Value {text} for parameter ReceiptHandle is invalid. Reason: Message does not "
                "exist or is not available for visibility timeout change."
            )

