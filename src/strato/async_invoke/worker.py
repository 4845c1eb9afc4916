"""The worker that runs queued asynchronous events through the environment pool.

Per function with waiting events, the worker claims events from the store (under a lease, in
batches sized by the function's concurrency window and how fast it runs), runs them through
the same pool and concurrency rules as synchronous invokes, and settles each outcome with the
retry policy: success, a retry later, or failure with its condition (``async_invoke.settlements``
decides; a settlement carries the invocation record for the on-success or on-failure
destination and the dead letter, written in the same transaction, which
``async_invoke.destinations`` then sends).

Everything runs on the event loop's thread; the store is reached only through the
group-commit writer. Time (ages, retry waits, leases) is the injected ``Clock``'s.
``time_scale`` is how many clock seconds pass per real second: an invocation's timeout is real
time, so a lease must cover it scaled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from strato.async_invoke.events import ClaimedEvent, EventState, Settlement
from strato.async_invoke.retry import Outcome, expired
from strato.async_invoke.scaling import ConcurrencyWindow
from strato.async_invoke.settlements import Attempt, classify, function_arn, settle, settle_expired
from strato.async_invoke.store import EventTransaction
from strato.async_invoke.writer import EventWriter
from strato.domain import limits
from strato.domain.clock import Clock, sleep_or_wake
from strato.domain.errors import TooManyRequestsException
from strato.domain.event_invoke import MAX_EVENT_AGE_DEFAULT_S, EventInvokeConfig
from strato.domain.ids import trace_id
from strato.domain.models import LATEST, FunctionVersion
from strato.scheduler.invocation import Invocation, InvocationResult

log = logging.getLogger(__name__)

#: Real seconds a claim's lease covers beyond the longest timeout and INIT.
LEASE_MARGIN_S = 60.0
#: Real seconds of work a fast function's claims fetch ahead, and the most held per function.
PREFETCH_S = 0.25
MAX_BUFFER = 1024
#: Real seconds between sweeps for lapsed leases and finished events to forget, and how long
#: the ledger keeps succeeded and failed events (failed ones can be redriven until then).
SWEEP_INTERVAL_S = 30.0
SUCCEEDED_RETENTION_S = 3_600.0
FAILED_RETENTION_S = 14 * 86_400.0
PRUNE_BATCH = 5_000


@dataclass(frozen=True)
class FunctionTarget:
    """What an event of a function runs on: the version its qualifier resolves to now, the
    function's reserved concurrency (None: none) and the qualifier's event invoke config."""

    version: FunctionVersion
    reserved_concurrency: int | None
    config: EventInvokeConfig | None


#: ``lookup(function_name, qualifier)``: the target now, None if the function or qualifier
#: does not exist.
Lookup = Callable[[str, str | None], FunctionTarget | None]
#: ``invoke(version, invocation)``: the pool's; raises TooManyRequestsException when throttled.
Invoke = Callable[[FunctionVersion, Invocation], None]


@dataclass
class _Function:
    """The worker's view of one function's queue."""

    window: ConcurrencyWindow
    buffer: deque[ClaimedEvent] = field(default_factory=deque)
    #: A claim for it is in flight.
    claiming: bool = False
    #: Clock time its next waiting event is due; None when it is not known to have any.
    due_at: float | None = 0.0

    def buffer_target(self) -> int:
        """Events to hold claimed beyond the free slots: about ``PREFETCH_S`` of work for a
        fast function, none for a slow one (its events would only wait under lease)."""
        average = self.window.average_s
        if average is None:
            return 0
        ahead = int(self.window.size / max(average, 1e-4) * PREFETCH_S)
        return min(MAX_BUFFER, ahead if ahead > self.window.size else 0)


class AsyncWorker:
    def __init__(
        self,
        writer: EventWriter,
        lookup: Lookup,
        invoke: Invoke,
        clock: Clock,
        *,
        account: str,
        account_concurrency: int,
        time_scale: float = 1.0,
        on_deliveries: Callable[[], None] | None = None,
        lease_s: float | None = None,
    ) -> None:
        self._writer = writer
        self._lookup = lookup
        self._invoke = invoke
        self._clock = clock
        self._account = account
        self._account_concurrency = account_concurrency
        self._time_scale = time_scale
        self._on_deliveries = on_deliveries
        self._lease_s = lease_s if lease_s is not None else (
            limits.TIMEOUT_MAX_S + limits.INIT_TIMEOUT_S + LEASE_MARGIN_S) * time_scale
        self._functions: dict[str, _Function] = {}
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False

    # lifecycle ----------------------------------------------------------------------------
    async def start(self, *, release_leases: bool = True) -> None:
        """Start claiming. With ``release_leases`` (a server starting on a data dir only it
        uses), every claim a previous run held goes back to the queue first."""
        now = self._clock.now()

        def recover(tx: EventTransaction) -> list[str]:
            if release_leases:
                tx.release_leases(now)
            return tx.waiting_functions()

        for name in await self._writer.submit(recover):
            self.notify(name)
        if self._on_deliveries is not None:
            self._on_deliveries()
        self._tasks = [asyncio.ensure_future(self._claim_loop()),
                       asyncio.ensure_future(self._sweep_loop())]

    async def stop(self) -> None:
        """Stop claiming and settling. Invocations still running are left claimed: the next
        start returns them to the queue (they may run again: delivery is at least once)."""
        self._closing = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def notify(self, function_name: str) -> None:
        """Events of ``function_name`` may be waiting (accepted, redriven, returned)."""
        fn = self._function(function_name)
        fn.due_at = 0.0
        self._wake.set()

    def _function(self, name: str) -> _Function:
        fn = self._functions.get(name)
        if fn is None:
            fn = self._functions[name] = _Function(ConcurrencyWindow(self._account_concurrency))
        return fn

    # claiming -----------------------------------------------------------------------------
    async def _claim_loop(self) -> None:
        while not self._closing:
            self._wake.clear()
            wake_at = self._claim_due()
            if wake_at is None:
                await self._wake.wait()
                continue
            await sleep_or_wake(self._clock, wake_at - self._clock.now(), self._wake)

    def _claim_due(self) -> float | None:
        """Start a claim for every function with events due and room for them; the earliest
        clock time a function not claimed now has events due (None: none known)."""
        now = self._clock.now()
        earliest: float | None = None
        for name, fn in list(self._functions.items()):
            if fn.claiming or fn.due_at is None:
                continue
            if fn.due_at > now:
                earliest = fn.due_at if earliest is None else min(earliest, fn.due_at)
                continue
            target = fn.buffer_target()
            if fn.buffer and len(fn.buffer) > target // 2:
                continue
            want = target - len(fn.buffer) + fn.window.free
            if want <= 0:
                continue
            fn.claiming = True
            self._claim(name, fn, want, now)
        return earliest

    def _claim(self, name: str, fn: _Function, want: int, now: float) -> None:
        lease = now + self._lease_s

        def claim(tx: EventTransaction) -> tuple[list[ClaimedEvent], float | None]:
            return tx.claim(name, want, now=now, lease_expires_at=lease), tx.next_due(name)

        future = self._writer.submit(claim, isolated=False)
        future.add_done_callback(lambda f: self._claimed(name, fn, f))

    def _claimed(self, name: str, fn: _Function,
                 future: asyncio.Future[tuple[list[ClaimedEvent], float | None]]) -> None:
        fn.claiming = False
        if self._closing:
            return
        try:
            events, next_due = future.result()
        except Exception as exc:
            log.error("cannot claim events of %s: %s", name, exc)
            fn.due_at = self._clock.now() + 1.0
            return
        fn.buffer.extend(events)
        fn.due_at = next_due
        self._dispatch(name, fn)
        self._wake.set()

    # running ------------------------------------------------------------------------------
    def _dispatch(self, name: str, fn: _Function) -> None:
        while fn.buffer and fn.window.free > 0 and not self._closing:
            self._run(name, fn, fn.buffer.popleft())

    def _run(self, name: str, fn: _Function, claimed: ClaimedEvent) -> None:
        event = claimed.event
        target = self._lookup(name, event.qualifier)
        now = self._clock.now()
        if target is None:
            arn = function_arn(event, self._account, event.qualifier or LATEST)
            self._settle(fn, Settlement(
                claimed.seq, claimed.generation, EventState.FAILED, now, invoked=False,
                last_error=f"ResourceNotFoundException: Function not found: {arn}"))
            return
        config = target.config
        max_age = config.max_age_s if config is not None else MAX_EVENT_AGE_DEFAULT_S
        if expired(now - event.accepted_at, max_age):
            self._settle(fn, settle_expired(claimed, version=target.version, config=config,
                                            now=now, account=self._account))
            return
        if target.reserved_concurrency == 0:
            self._attempted(fn, claimed, target, Attempt(
                Outcome.ZERO_RESERVED_CONCURRENCY, None,
                "TooManyRequestsException: the function's reserved concurrency is 0", 429))
            return
        fn.window.set_limit(target.reserved_concurrency or self._account_concurrency)
        if not target.version.is_ready:
            self._attempted(fn, claimed, target, Attempt(
                Outcome.SYSTEM_ERROR, None,
                f"ResourceConflictException: the function is {target.version.state.value}", 500))
            return
        started = time.monotonic()

        def on_done(result: InvocationResult) -> None:
            self._done(name, fn, claimed, target, result, time.monotonic() - started)

        invocation = Invocation(
            event.request_id, event.payload, function_arn(event, self._account, event.qualifier),
            on_done, trace_id=trace_id(now),
        )
        fn.window.started()
        try:
            self._invoke(target.version, invocation)
        except TooManyRequestsException as exc:
            fn.window.throttled()
            reason = exc.fields.get("Reason", "")
            self._attempted(fn, claimed, target, Attempt(
                Outcome.THROTTLED, None, f"TooManyRequestsException: {exc.message} {reason}".strip(),
                429))
        except Exception as exc:  # the pool could not take it: a system error, retried
            log.exception("cannot invoke %s", name)
            fn.window.throttled()
            self._attempted(fn, claimed, target, Attempt(
                Outcome.SYSTEM_ERROR, None, f"{type(exc).__name__}: {exc}", 500))

    def _done(self, name: str, fn: _Function, claimed: ClaimedEvent, target: FunctionTarget,
              result: InvocationResult, duration_s: float) -> None:
        fn.window.finished(duration_s, waiting=bool(fn.buffer) or fn.due_at is not None)
        if self._closing:
            return
        self._attempted(fn, claimed, target, classify(result))
        self._dispatch(name, fn)
        self._wake.set()

    def _attempted(self, fn: _Function, claimed: ClaimedEvent, target: FunctionTarget,
                   attempt: Attempt) -> None:
        """Settle ``claimed`` after ``attempt``, as the retry policy decides."""
        self._settle(fn, settle(claimed, attempt, version=target.version, config=target.config,
                                now=self._clock.now(), account=self._account))

    def _settle(self, fn: _Function, settlement: Settlement) -> None:
        future = self._writer.submit(lambda tx: tx.settle(settlement), isolated=False)

        def settled(done: asyncio.Future[bool]) -> None:
            try:
                held = done.result()
            except Exception as exc:  # the claim lapses and the event runs again
                log.error("cannot settle event %s: %s", settlement.seq, exc)
                return
            if not held:
                log.warning("event %s was taken over by another claim; its outcome is dropped",
                            settlement.seq)
                return
            if settlement.deliveries and self._on_deliveries is not None:
                self._on_deliveries()
            if settlement.state is EventState.RETRYING and settlement.next_attempt_at is not None:
                due = settlement.next_attempt_at
                fn.due_at = due if fn.due_at is None else min(fn.due_at, due)
                self._wake.set()

        future.add_done_callback(settled)

    # housekeeping -------------------------------------------------------------------------
    async def _sweep_loop(self) -> None:
        while not self._closing:
            await self._clock.sleep(SWEEP_INTERVAL_S * self._time_scale)
            await self.sweep()

    async def sweep(self) -> None:
        """Return lapsed claims to the queue and forget old finished events."""
        now = self._clock.now()

        def sweep(tx: EventTransaction) -> list[str]:
            # Retention is the ledger's, in real time: a faster clock does not shorten it.
            tx.prune(succeeded_before=now - SUCCEEDED_RETENTION_S * self._time_scale,
                     failed_before=now - FAILED_RETENTION_S * self._time_scale, limit=PRUNE_BATCH)
            return tx.expire_leases(now)

        try:
            returned = await self._writer.submit(sweep)
        except Exception as exc:
            log.error("cannot sweep the event queue: %s", exc)
            return
        for name in returned:
            self.notify(name)
        if self._on_deliveries is not None:
            self._on_deliveries()

    def in_flight(self) -> int:
        """Events being run or held claimed right now."""
        return sum(fn.window.in_flight + len(fn.buffer) for fn in self._functions.values())
