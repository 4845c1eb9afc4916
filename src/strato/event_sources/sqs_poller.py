"""The poller of one enabled SQS event source mapping (on the event loop's thread).

Each of its workers long-polls the queue, gathers a batch (``batching.next_receive``: up to
BatchSize messages within MaximumBatchingWindowInSeconds), deletes the messages the mapping's
filters reject (Lambda deletes them unprocessed), invokes the function synchronously with
Lambda's SQS event, and then:

- on success deletes the batch, or with ``ReportBatchItemFailures`` all but the messages the
  response names (a malformed response fails the whole batch);
- on a function error deletes nothing: the messages become visible again after the queue's
  visibility timeout and, past its ``maxReceiveCount``, go to its dead-letter queue;
- when the invoke is refused (throttled, function not ready) deletes nothing and backs off.

A worker that gathered a full batch adds a worker (there is a backlog), one whose long poll
came back empty retires, between one and ``ScalingConfig.MaximumConcurrency`` (default
``batching.DEFAULT_MAXIMUM_CONCURRENCY``). While the function does not exist or is not
ready, workers wait without receiving, so that messages are not counted as received.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from strato.domain import limits
from strato.domain.arns import Scope
from strato.domain.clock import Clock, SystemClock
from strato.domain.errors import LambdaApiError, TooManyRequestsException
from strato.domain.event_filter import matches_any, parse
from strato.domain.event_source_mappings import EventSourceMapping
from strato.event_sources import sqs_event
from strato.event_sources.batch_response import partial_batch_verdict
from strato.event_sources.batching import (
    DEFAULT_MAXIMUM_CONCURRENCY,
    backoff_s,
    desired_pollers,
    next_receive,
    split_by_size,
)
from strato.event_sources.invoker import FunctionInvoker
from strato.sqs.client import QueueClient, QueueUnavailable, ReceivedMessage

log = logging.getLogger(__name__)

#: Room left in the 6 MB invoke payload for ``{"Records":[...]}`` around the records.
_PAYLOAD_LIMIT = limits.SYNC_PAYLOAD_MAX_BYTES - 64


@dataclass(eq=False)
class _Worker:
    task: asyncio.Task[None] | None = None
    #: True while it holds received messages (stopping lets it finish them).
    busy: bool = False
    failures: int = field(default=0)


class SqsPoller:
    def __init__(self, mapping: EventSourceMapping, queues: QueueClient, invoker: FunctionInvoker,
                 account: str, *, clock: Clock | None = None,
                 default_concurrency: int = DEFAULT_MAXIMUM_CONCURRENCY) -> None:
        """``mapping``'s filter patterns must be valid (the service checked them)."""
        self.mapping = mapping
        self._queues = queues
        self._invoker = invoker
        self._clock = clock or SystemClock()
        self._patterns = [parse(p) for p in mapping.filter_patterns]
        self._scope = Scope(sqs_event.queue_region(mapping.event_source_arn), account)
        self._maximum = mapping.maximum_concurrency or default_concurrency
        self._workers: list[_Worker] = []
        self._stopping = False
        self._queue_failing = False

    @property
    def workers(self) -> int:
        return len(self._workers)

    def start(self) -> None:
        """Start the first worker. Legal once, on the event loop's thread."""
        self._spawn()

    async def stop(self, grace_s: float) -> None:
        """Stop every worker: idle ones at once, those holding messages once they have
        finished them, or after ``grace_s`` seconds (their messages are then left to
        reappear). Idempotent."""
        self._stopping = True
        workers = list(self._workers)
        for worker in workers:
            if not worker.busy and worker.task is not None:
                worker.task.cancel()
        tasks = [w.task for w in workers if w.task is not None]
        if not tasks:
            return
        try:
            await asyncio.wait(tasks, timeout=grace_s)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    # workers ---------------------------------------------------------------------------
    def _spawn(self) -> None:
        worker = _Worker()
        self._workers.append(worker)
        worker.task = asyncio.ensure_future(self._run(worker))

    async def _run(self, worker: _Worker) -> None:
        try:
            while not self._stopping:
                try:
                    if not await self._step(worker):
                        return
                except Exception:  # a fault must not end delivery silently: say so, go on
                    log.exception("event source mapping %s: poller failed", self.mapping.uuid)
                    worker.busy = False
                    await self._back_off(worker)
        finally:
            self._workers.remove(worker)

    async def _step(self, worker: _Worker) -> bool:
        """One round: gather, process. False when the worker retires."""
        mapping = self.mapping
        if not self._invoker.available(mapping.function_name, mapping.qualifier, self._scope):
            await self._back_off(worker)
            return True
        try:
            messages = await self._gather(worker)
        except QueueUnavailable as exc:
            if not self._queue_failing:
                log.warning("event source mapping %s: cannot receive from %s: %s",
                            mapping.uuid, mapping.event_source_arn, exc)
            self._queue_failing = True
            await self._back_off(worker)
            return True
        self._queue_failing = False
        wanted = desired_pollers(len(self._workers), self._maximum, gathered=len(messages),
                                 batch_size=mapping.batch_size)
        if not messages:
            return wanted >= len(self._workers)
        if wanted > len(self._workers) and not self._stopping:
            self._spawn()
        try:
            refused = not await self._process(messages)
        finally:
            worker.busy = False
        if refused:
            await self._back_off(worker)
        else:
            worker.failures = 0
        return True

    async def _back_off(self, worker: _Worker) -> None:
        worker.failures += 1
        await self._clock.sleep(backoff_s(worker.failures))

    async def _gather(self, worker: _Worker) -> list[ReceivedMessage]:
        """A batch, as ``batching.next_receive`` decides; empty after an empty long poll.
        Raises QueueUnavailable when the queue fails before any message came."""
        mapping = self.mapping
        messages: list[ReceivedMessage] = []
        first_at = 0.0
        while True:
            elapsed = self._clock.monotonic() - first_at if messages else 0.0
            plan = next_receive(mapping.batch_size, mapping.maximum_batching_window_s,
                                len(messages), elapsed)
            if plan is None or (messages and self._stopping):
                return messages
            try:
                received = await self._queues.receive(mapping.event_source_arn,
                                                      max_messages=plan.max_messages,
                                                      wait_s=plan.wait_s)
            except QueueUnavailable:
                if messages:  # the batch so far goes out; the next round meets the failure
                    return messages
                raise
            if not messages:
                if not received:
                    return []
                first_at = self._clock.monotonic()
                worker.busy = True
            messages += received

    # a batch ---------------------------------------------------------------------------
    async def _process(self, messages: list[ReceivedMessage]) -> bool:
        """Filter, invoke, delete. False when an invoke was refused (throttled, function
        gone or not ready): the rest of the batch is left in the queue."""
        arn = self.mapping.event_source_arn
        kept: list[tuple[ReceivedMessage, dict[str, Any]]] = []
        dropped: list[str] = []
        for message in messages:
            record = sqs_event.record(message, arn)
            if matches_any(self._patterns, sqs_event.filter_view(record)):
                kept.append((message, record))
            else:
                dropped.append(message.receipt_handle)
        if dropped:
            await self._delete(dropped)
        sizes = [len(json.dumps(record, separators=(",", ":"))) + 1 for _, record in kept]
        for run in split_by_size(sizes, _PAYLOAD_LIMIT):
            if not await self._invoke([kept[i] for i in run]):
                return False
        return True

    async def _invoke(self, batch: list[tuple[ReceivedMessage, dict[str, Any]]]) -> bool:
        mapping = self.mapping
        try:
            result = await self._invoker.invoke(
                mapping.function_name, mapping.qualifier,
                sqs_event.event([record for _, record in batch]), self._scope)
        except TooManyRequestsException:
            log.debug("event source mapping %s: throttled", mapping.uuid)
            return False
        except LambdaApiError as exc:
            log.info("event source mapping %s: invoke refused: %s", mapping.uuid, exc.message)
            return False
        if result.function_error:
            log.debug("event source mapping %s: function error; %d messages stay in the queue",
                      mapping.uuid, len(batch))
            return True
        handles = {message.message_id: message.receipt_handle for message, _ in batch}
        if mapping.report_batch_item_failures:
            to_delete = partial_batch_verdict(result.payload, list(handles)).to_delete(list(handles))
        else:
            to_delete = list(handles)
        if to_delete:
            await self._delete([handles[m] for m in to_delete])
        return True

    async def _delete(self, receipt_handles: list[str]) -> None:
        """Delete; a failure is logged and the messages reappear later (at-least-once)."""
        try:
            await self._queues.delete(self.mapping.event_source_arn, receipt_handles)
        except QueueUnavailable as exc:
            log.warning("event source mapping %s: could not delete %d messages: %s",
                        self.mapping.uuid, len(receipt_handles), exc)
