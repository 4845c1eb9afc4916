"""Sending invocation records and dead letters to their destinations.

A settlement writes its deliveries in the transaction that settles the event, so a crash
cannot lose them; this sender claims them from the store under a lease, sends each, and
forgets it once it arrived. A delivery that fails is retried with the backoff of throttled
events (1 s doubling to 5 minutes) for up to ``DELIVERY_MAX_AGE_S``, then given up (and
logged). Sends run as their own tasks, at most ``concurrency`` at once: a slow or missing
destination never holds up the queue of events.

Destinations are SQS queues (through a ``QueueClient``; none configured is a failure that is
retried, so that records wait for the queue service) and Lambda functions (an asynchronous
invocation of that function: its event is queued in the same step that forgets the delivery).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable

from strato.async_invoke.events import ClaimedDelivery, NewEvent
from strato.async_invoke.retry import backoff_s
from strato.async_invoke.store import EventTransaction
from strato.async_invoke.writer import EventWriter
from strato.domain.clock import Clock, sleep_or_wake
from strato.domain.errors import LambdaApiError
from strato.sqs.client import QueueClient

log = logging.getLogger(__name__)

DELIVERY_MAX_AGE_S = 21_600.0
#: Clock seconds a delivery's lease lasts (a send is bounded well below it).
DELIVERY_LEASE_S = 300.0
DEFAULT_CONCURRENCY = 16


class DeliveryFailed(Exception):
    """A destination did not take a delivery (the reason is the message)."""


#: ``function_exists(name, qualifier)``.
FunctionExists = Callable[[str, str | None], bool]


def parse_function_arn(arn: str) -> tuple[str, str, str | None] | None:
    """(region, function name, qualifier) of a Lambda function ARN, None if it is not one."""
    parts = arn.split(":")
    if len(parts) not in (7, 8) or parts[0] != "arn" or parts[2] != "lambda" or parts[5] != "function":
        return None
    return parts[3], parts[6], parts[7] if len(parts) == 8 else None


class DestinationSender:
    def __init__(
        self,
        writer: EventWriter,
        queues: Callable[[], QueueClient | None],
        function_exists: FunctionExists,
        on_event: Callable[[str], None],
        clock: Clock,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        time_scale: float = 1.0,
    ) -> None:
        self._writer = writer
        self._queues = queues
        self._function_exists = function_exists
        self._on_event = on_event
        self._clock = clock
        self._concurrency = concurrency
        self._lease_s = DELIVERY_LEASE_S * time_scale
        self._wake = asyncio.Event()
        self._sending: set[asyncio.Task[None]] = set()
        self._claiming = False
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._loop())
        self._wake.set()

    def notify(self) -> None:
        """Deliveries may be due (a settlement wrote some, leases were returned)."""
        self._wake.set()

    async def stop(self) -> None:
        """Stop sending; sends in progress are abandoned to their lease (sent again later)."""
        self._closing = True
        tasks = [t for t in (self._task, *self._sending) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        while not self._closing:
            self._wake.clear()
            free = self._concurrency - len(self._sending)
            next_due: float | None = None
            if free > 0:
                try:
                    claimed, next_due = await self._writer.submit(
                        self._claim_work(free, self._clock.now()))
                except Exception as exc:
                    log.error("cannot claim deliveries: %s", exc)
                    claimed, next_due = [], self._clock.now() + 1.0
                for delivery in claimed:
                    task = asyncio.ensure_future(self._send(delivery))
                    self._sending.add(task)
                    task.add_done_callback(self._sent)
                if len(claimed) == free:
                    continue
            if next_due is None or free <= 0:
                await self._wake.wait()
                continue
            await sleep_or_wake(self._clock, next_due - self._clock.now(), self._wake)

    def _claim_work(self, limit: int, now: float
                    ) -> Callable[[EventTransaction], tuple[list[ClaimedDelivery], float | None]]:
        lease = now + self._lease_s

        def claim(tx: EventTransaction) -> tuple[list[ClaimedDelivery], float | None]:
            return tx.claim_deliveries(limit, now=now, lease_expires_at=lease), tx.next_delivery_due()

        return claim

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._sending.discard(task)
        self._wake.set()

    async def _send(self, claimed: ClaimedDelivery) -> None:
        delivery = claimed.delivery
        try:
            event = await self._deliver(claimed)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._failed(claimed, f"{type(exc).__name__}: {exc}")
            return
        try:
            held = await self._writer.submit(
                lambda tx: tx.finish_delivery(claimed.delivery_id, claimed.generation, event))
        except Exception as exc:
            log.error("cannot record the delivery to %s: %s", delivery.target_arn, exc)
            return
        if held and event is not None:
            self._on_event(event.function_name)

    async def _deliver(self, claimed: ClaimedDelivery) -> NewEvent | None:
        """Send to an SQS queue now; for a function, the event to queue (the caller queues
        it in the step that forgets the delivery)."""
        delivery = claimed.delivery
        target = delivery.target_arn
        function = parse_function_arn(target)
        if function is not None:
            region, name, qualifier = function
            if not self._function_exists(name, qualifier):
                raise DeliveryFailed(f"the destination function {target} does not exist")
            return NewEvent(str(uuid.uuid4()), name, qualifier, region, delivery.body.encode(),
                            self._clock.now())
        queues = self._queues()
        if queues is None:
            raise DeliveryFailed("no queue service is configured to deliver to SQS")
        try:
            if delivery.attributes:
                await queues.send(target, delivery.body, message_attributes=delivery.attributes)
            else:
                await queues.send(target, delivery.body)
        except LambdaApiError as exc:
            raise DeliveryFailed(f"{exc.code}: {exc.message}") from exc
        return None

    async def _failed(self, claimed: ClaimedDelivery, error: str) -> None:
        now = self._clock.now()
        delay = backoff_s(max(1, claimed.attempts))
        next_at: float | None = now + delay
        if now + delay - claimed.created_at > DELIVERY_MAX_AGE_S:
            next_at = None
            log.error("giving up the delivery of %s to %s after %d attempts: %s",
                      claimed.delivery.request_id, claimed.delivery.target_arn, claimed.attempts,
                      error)
        else:
            log.warning("delivery of %s to %s failed (attempt %d, next in %.0f s): %s",
                        claimed.delivery.request_id, claimed.delivery.target_arn,
                        claimed.attempts, delay, error)
        try:
            await self._writer.submit(lambda tx: tx.retry_delivery(
                claimed.delivery_id, claimed.generation, next_attempt_at=next_at, error=error))
        except Exception as exc:  # the lease lapses and the delivery is tried again
            log.error("cannot record the failed delivery of %s: %s",
                      claimed.delivery.request_id, exc)
        self._wake.set()
