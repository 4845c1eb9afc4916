"""One execution environment: its lifecycle, what its runtime may ask, its log capture.

Lifecycle (a transition outside this table raises IllegalTransition)::

    INIT ──first `next`──▶ IDLE ◀──result── BUSY
      │  └──first `next` with an invocation waiting──▶ BUSY
      └──────────────┬─────────────────────────┘
                     ▼
                   DEAD   (timeout, crash, init error, reaped, retired)

An environment serves one function version, one invocation at a time. Every invocation
assigned to it ends in ``_complete``, which calls ``on_finished`` and then
``Invocation.finish``, exactly once, whatever the outcome (result, error, timeout, crash, INIT
failure, failed start). An environment started without an invocation (provisioned
concurrency) runs INIT, parks on ``next`` as IDLE, and reports no Init Duration on its first
invocation: nobody waited for its INIT.

The runtime inside reaches the environment through the Runtime API's transports
(``strato.runtime_api``: HTTP at ``AWS_LAMBDA_RUNTIME_API`` for any runtime, the runtime
channel for strato's built-in one), which turn its requests into ``runtime_next``,
``runtime_response``, ``runtime_error`` and ``runtime_init_error``, whichever transport the
runtime uses. All methods run on the event loop's thread.

Output (stdout and stderr, one pipe) is read as it comes and kept within the budgets of
``output_budget``: an invocation's lines go to the log with its END and REPORT, what is
written outside an invocation goes to the log line by line. Between invocations strato stops
reading once that budget is spent, so a process that keeps writing after its handler returned
blocks on the full pipe instead of filling strato's memory and disk; the next delivery
resumes reading. Reading never monopolises the loop: one read per readiness callback, and a
drain reads at most ``_DRAIN_LIMIT`` bytes.
"""

from __future__ import annotations

import asyncio
import base64
import enum
import json
import logging
import math
import os
import time
from collections.abc import Callable
from typing import Protocol

from strato.domain import limits
from strato.domain.models import FunctionVersion
from strato.errors import StratoError
from strato.sandbox.base import EnvironmentProcess, ExitStatus
from strato.scheduler import invocation as faults
from strato.scheduler.invocation import Fault, Invocation, InvocationResult
from strato.scheduler.output_budget import (
    BETWEEN_INVOCATIONS_BYTES,
    INIT_BYTES,
    MAX_LINE_BYTES,
    Allowance,
    InvocationOutput,
    invocation_dropped_line,
    outside_dropped_line,
    paused_line,
)

log = logging.getLogger(__name__)

_READ_BYTES = 65536
#: At most this much is read by one drain: more than a pipe holds (an unprivileged writer
#: may grow it to 1 MiB), so a drain takes what was written before it, and a writer racing
#: the drain cannot keep the loop in it.
_DRAIN_LIMIT = 2 * 1024 * 1024


class State(enum.Enum):
    INIT = "init"
    IDLE = "idle"
    BUSY = "busy"
    DEAD = "dead"


_TRANSITIONS = {
    State.INIT: {State.IDLE, State.BUSY, State.DEAD},
    State.IDLE: {State.BUSY, State.DEAD},
    State.BUSY: {State.IDLE, State.DEAD},
    State.DEAD: set(),
}


#: The transitions as pairs of state names (an Enum's hash is a Python call; a str's is not).
_LEGAL = frozenset((a.name, b.name) for a, targets in _TRANSITIONS.items() for b in targets)


class IllegalTransition(StratoError):
    pass


class LogSink(Protocol):
    def emit(self, group: str, stream: str, lines: list[tuple[int, str]]) -> None:
        """Queue ``(timestamp_ms, message)`` lines for storage; never blocks."""


class RuntimeEndpoints(Protocol):
    """The Runtime API transports serving one environment."""

    def close(self) -> None:
        """Stop serving the environment (idempotent)."""


class EventWaiter(Protocol):
    """A runtime waiting for its next event, on one of the Runtime API's transports."""

    def deliver(self, invocation: Invocation, deadline_ms: int) -> None:
        """Hand ``invocation`` to the runtime; it must finish by ``deadline_ms`` (epoch)."""


class Post(enum.Enum):
    """What became of something the runtime posted (the transport tells the runtime)."""

    ACCEPTED = "accepted"
    INVALID_REQUEST_ID = "invalid request id"
    TOO_LARGE = "too large"
    NOT_IN_INIT = "not in INIT"


def _error_body(body: bytes, error_type: str | None) -> bytes:
    """The runtime's error document; a body that is not JSON is wrapped as AWS does."""
    try:
        json.loads(body)
        return body
    except ValueError:
        return json.dumps({"errorMessage": body.decode("utf-8", "replace"),
                           "errorType": error_type or "Runtime.Unknown"}).encode()


def _error_type(document: bytes) -> str:
    try:
        parsed = json.loads(document)
    except ValueError:
        return "Runtime.Unknown"
    error_type = parsed.get("errorType") if isinstance(parsed, dict) else None
    return error_type if isinstance(error_type, str) and error_type else "Runtime.Unknown"


class ExecutionEnvironment:
    """See the module docstring. Built by the pool, which passes ``on_released`` (called when
    the environment became IDLE and can take an invocation), ``on_dead`` and ``on_finished``
    (called once per assigned invocation as it ends, before the caller hears of it).

    ``init_error`` is the error type that ended INIT (``Runtime.ImportModuleError``,
    ``Sandbox.Timedout``, ``Runtime.ExitError``, ``Sandbox.StartFailed``), None otherwise.
    """

    def __init__(
        self,
        env_id: str,
        version: FunctionVersion,
        log_stream: str,
        sink: LogSink,
        on_released: Callable[[ExecutionEnvironment], None],
        on_dead: Callable[[ExecutionEnvironment], None],
        *,
        on_finished: Callable[[ExecutionEnvironment], None],
        initialization_type: str = "on-demand",
    ) -> None:
        self.env_id = env_id
        self.version = version
        self.log_stream = log_stream
        self.initialization_type = initialization_type
        self.state = State.INIT
        self.idle_since = time.monotonic()
        self.retired = False
        self.init_error: str | None = None
        self.process: EnvironmentProcess | None = None
        self.endpoints: RuntimeEndpoints | None = None
        self._sink = sink
        self._on_released = on_released
        self._on_dead = on_dead
        self._on_finished = on_finished
        self._loop = asyncio.get_running_loop()
        self._spawned_at = time.monotonic()
        self._init_ms: float | None = None
        self._parked: EventWaiter | None = None
        self._current: Invocation | None = None
        self._delivered = False
        self._started_at = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._partial = b""
        #: Bytes cut from the line in ``_partial`` (beyond MAX_LINE_BYTES).
        self._cut = 0
        #: START of the invocation in flight (and, once it ends, its closing lines).
        self._lines: list[tuple[int, str]] = []
        self._output = InvocationOutput()
        self._outside = Allowance(INIT_BYTES)
        #: Reading stopped between invocations (see the module docstring).
        self._paused = False
        self._eof = False
        self._death_fault: Fault | None = None

    # lifecycle -------------------------------------------------------------------------
    @property
    def current(self) -> Invocation | None:
        """The invocation assigned and not yet finished, if any."""
        return self._current

    @property
    def dead(self) -> bool:
        """True once the environment is DEAD (it never leaves that state)."""
        return self.state is State.DEAD

    def _move(self, target: State) -> None:
        if (self.state._name_, target._name_) not in _LEGAL:
            raise IllegalTransition(f"environment {self.env_id}: {self.state.name} → {target.name}")
        self.state = target

    def attach(self, process: EnvironmentProcess, endpoints: RuntimeEndpoints) -> None:
        """Adopt the started process and its Runtime API endpoints (closed when the
        environment is finalised). Once per environment, right after its start."""
        self.process = process
        self.endpoints = endpoints
        self._loop.add_reader(process.log_fd, self._on_output)
        process.exited.add_done_callback(self._on_exit)
        # The runtime may have spoken before (its channel is read from the moment it is
        # served): an INIT already over must keep the timer its invocation set.
        if self.state is State.INIT:
            self._timer = self._loop.call_later(limits.INIT_TIMEOUT_S, self._on_init_timeout)

    def assign(self, invocation: Invocation) -> None:
        """Give the environment an invocation. Only while INIT (the cold-start invocation) or
        IDLE; it is delivered when the runtime asks for the next event."""
        if self.state is State.IDLE:
            self._move(State.BUSY)
        elif self.state is not State.INIT or self._current is not None:
            raise IllegalTransition(f"environment {self.env_id} cannot take an invocation now")
        self._current = invocation
        self._delivered = False
        if self._parked is not None:
            waiter, self._parked = self._parked, None
            self._deliver(waiter)

    def destroy(self, fault: Fault | None = None) -> None:
        """Kill the process tree; the environment is DEAD now and never reused. An invocation
        in flight fails with ``fault`` (or the exit it causes)."""
        if self.state is State.DEAD:
            return
        self._death_fault = fault
        if self.process is not None:
            self.process.kill()
        if self.process is None or self.process.exited.done():
            self._finalise(None)
        else:
            self._move(State.DEAD)
            self._on_dead(self)

    def fail_start(self, reason: str) -> None:
        """The process could not be started: INIT failed with ``Sandbox.StartFailed`` and the
        environment is destroyed; an assigned invocation fails with ``reason``. Only while
        INIT and before ``attach``; a no-op once DEAD."""
        if self.state is State.DEAD:
            return
        self.init_error = faults.SANDBOX_START_FAILED
        request_id = self._current.request_id if self._current is not None else ""
        self.destroy(Fault(faults.SANDBOX_START_FAILED, f"RequestId: {request_id} Error: {reason}"))

    # what the runtime asks (through runtime_api/: HTTP or the runtime channel) -----------
    def runtime_next(self, waiter: EventWaiter) -> None:
        """The runtime is ready for its next event: ``waiter`` receives it now if one is
        assigned, else when one is. Ends INIT (the first call) and, with no invocation
        waiting, makes the environment IDLE. A waiter parked before is forgotten."""
        if self.state is State.DEAD:
            return
        if self.state is State.INIT:
            # Init Duration belongs to the invocation that waited for INIT (a cold start).
            if self._current is not None:
                self._init_ms = (time.monotonic() - self._spawned_at) * 1000
            self._cancel_timer()
            self._end_outside_period()
            self._move(State.BUSY if self._current is not None else State.IDLE)
            if self._current is None:
                self.idle_since = time.monotonic()
                self._on_released(self)
        if self._current is not None and not self._delivered:
            self._deliver(waiter)
        else:
            self._parked = waiter

    def runtime_response(self, request_id: str, body: bytes | None) -> Post:
        """The runtime's result for ``request_id``; ``body`` None when it was over the size
        limit (dropped unread): the invocation then fails with Function.ResponseSizeTooLarge."""
        if not self._expects(request_id):
            return Post.INVALID_REQUEST_ID
        if body is None:
            self._complete(faults.response_too_large(limits.SYNC_RESPONSE_MAX_BYTES).payload(), True)
            return Post.TOO_LARGE
        self._complete(body, False)
        return Post.ACCEPTED

    def runtime_error(self, request_id: str, body: bytes, error_type: str | None) -> Post:
        """The runtime's error document for ``request_id`` (a body that is not JSON is
        wrapped as AWS does, under ``error_type``)."""
        if not self._expects(request_id):
            return Post.INVALID_REQUEST_ID
        self._complete(_error_body(body, error_type), True)
        return Post.ACCEPTED

    def runtime_init_error(self, body: bytes, error_type: str | None) -> Post:
        """INIT failed: the environment is destroyed; an invocation waiting for the INIT
        fails with the runtime's error document. Only during INIT."""
        if self.state is not State.INIT:
            return Post.NOT_IN_INIT
        document = _error_body(body, error_type)
        self.init_error = _error_type(document)
        invocation = self._current
        if invocation is not None:
            self._init_ms = (time.monotonic() - self._spawned_at) * 1000
            self._move(State.BUSY)
            self._delivered = True
            self._started_at = time.monotonic()
            self._lines.append(self._start_line(invocation))
            self._complete(document, True, then_destroy=True)
        else:
            self.destroy()
        return Post.ACCEPTED

    def _expects(self, request_id: str) -> bool:
        invocation = self._current
        return invocation is not None and self._delivered and invocation.request_id == request_id

    def _deliver(self, waiter: EventWaiter) -> None:
        invocation = self._current
        assert invocation is not None
        if self._paused or self._outside.spent:
            self._end_outside_period()
        self._delivered = True
        timeout = self.version.timeout
        self._started_at = time.monotonic()
        self._timer = self._loop.call_later(timeout, self._on_timeout)
        now = time.time()
        waiter.deliver(invocation, int((now + timeout) * 1000))
        self._lines.append((int(now * 1000), self._start_text(invocation)))

    def _start_line(self, invocation: Invocation) -> tuple[int, str]:
        return int(time.time() * 1000), self._start_text(invocation)

    def _start_text(self, invocation: Invocation) -> str:
        return f"START RequestId: {invocation.request_id} Version: {self.version.version}"

    # completion ------------------------------------------------------------------------
    def _complete(self, payload: bytes, error: bool, *, then_destroy: bool = False,
                  extra_line: str | None = None) -> None:
        """End the invocation in flight: return its lease, answer its caller, close its log
        (END and REPORT), then settle the environment (IDLE, or destroyed). The caller hears
        before the log is written unless it asked for the log's tail."""
        invocation = self._current
        assert invocation is not None
        # First, so that nothing below can keep the invocation's concurrency lease.
        self._on_finished(self)
        self._cancel_timer()
        duration_ms = (time.monotonic() - self._started_at) * 1000
        function_error = "Unhandled" if error else None
        try:
            if invocation.want_tail:
                lines = self._close_log(invocation, duration_ms, extra_line)
                text = "".join(line + "\n" for _, line in lines).encode()
                tail = base64.b64encode(text[-limits.LOG_TAIL_BYTES:]).decode()
                invocation.finish(InvocationResult(payload, self.version.version, function_error,
                                                   tail))
            else:
                try:
                    invocation.finish(InvocationResult(payload, self.version.version,
                                                       function_error))
                finally:
                    self._close_log(invocation, duration_ms, extra_line)
        finally:
            self._current = None
            self._delivered = False
            if then_destroy or self.retired or self.state is State.DEAD:
                if self.state is not State.DEAD:
                    self.destroy()
            else:
                self._move(State.IDLE)
                self.idle_since = time.monotonic()
                self._on_released(self)

    def _close_log(self, invocation: Invocation, duration_ms: float,
                   extra_line: str | None) -> list[tuple[int, str]]:
        """The invocation's output (what is still in the pipe included), END and REPORT:
        emitted to the sink, and returned. Only while ``invocation`` is the current one."""
        self._drain_output()
        output, dropped = self._output.take()
        self._lines.extend(output)
        request_id = invocation.request_id
        now_ms = int(time.time() * 1000)
        if extra_line:
            self._lines.append((now_ms, extra_line))
        if dropped:
            self._lines.append((now_ms, invocation_dropped_line(dropped)))
        memory = self.version.memory_size
        used = self.process.peak_memory_mb() if self.process else 0
        report = (f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
                  f"Billed Duration: {max(1, math.ceil(duration_ms))} ms\tMemory Size: {memory} MB\t"
                  f"Max Memory Used: {min(used, memory) if used else 1} MB\t")
        if self._init_ms is not None:
            report += f"Init Duration: {self._init_ms:.2f} ms\t"
            self._init_ms = None
        self._lines.append((now_ms, f"END RequestId: {request_id}"))
        self._lines.append((now_ms, report))
        lines, self._lines = self._lines, []
        self._sink.emit(self.version.log_group, self.log_stream, lines)
        return lines

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_timeout(self) -> None:
        invocation = self._current
        self._timer = None
        if invocation is None:
            return
        fault = faults.timed_out(invocation.request_id, self.version.timeout)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        self.destroy()
        if self._current is not invocation:  # the process had exited already: failed as such
            return
        self._complete(fault.payload(), True, extra_line=(
            f"{stamp}.{int(time.time() * 1000) % 1000:03d}Z {invocation.request_id} "
            f"Task timed out after {self.version.timeout:.2f} seconds"))

    def _on_init_timeout(self) -> None:
        self._timer = None
        if self.state is not State.INIT:
            return
        self.init_error = faults.SANDBOX_TIMEDOUT
        invocation = self._current
        self.destroy()
        if invocation is not None and self._current is invocation:
            self._started_at = self._spawned_at
            self._delivered = True
            self._lines.insert(0, self._start_line(invocation))
            fault = Fault(faults.SANDBOX_TIMEDOUT,
                          f"RequestId: {invocation.request_id} Error: INIT phase timed out after "
                          f"{limits.INIT_TIMEOUT_S:.2f} seconds")
            self._complete(fault.payload(), True)

    def _on_exit(self, future: asyncio.Future[ExitStatus]) -> None:
        self._finalise(future.result())

    def _finalise(self, status: ExitStatus | None) -> None:
        """The process is gone: fail what was in flight, free everything, report DEAD."""
        self._drain_output()
        invocation = self._current
        was_dead = self.state is State.DEAD
        if self.state is State.INIT and self.init_error is None:
            oom = self.process is not None and self.process.oom_killed()
            self.init_error = faults.RUNTIME_OUT_OF_MEMORY if oom else faults.RUNTIME_EXIT_ERROR
        if self.state is not State.DEAD:
            self._move(State.DEAD)
        if invocation is not None:
            process = self.process
            oom = process.oom_killed() if process else False
            fault = self._death_fault
            if fault is None:
                how = None if status is None or status.exit_code == 0 else status.describe()
                fault = faults.runtime_exited(invocation.request_id, how, out_of_memory=oom)
            if not self._delivered:
                self._delivered = True
                self._started_at = time.monotonic()
                self._lines.insert(0, self._start_line(invocation))
            self._complete(fault.payload(), True, extra_line=f"{fault.message}\n{fault.error_type}")
        self._end_outside_period()
        self._parked = None
        self._cancel_timer()
        if self.process is not None:
            self._loop.remove_reader(self.process.log_fd)
            self.process.release()
        if self.endpoints is not None:
            self.endpoints.close()
        if not was_dead:
            self._on_dead(self)

    # output ----------------------------------------------------------------------------
    def _on_output(self) -> None:
        assert self.process is not None
        try:
            chunk = os.read(self.process.log_fd, _READ_BYTES)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._eof = True
            self._loop.remove_reader(self.process.log_fd)
            return
        self._take_output(chunk)

    def _drain_output(self) -> None:
        """Read what is already in the pipe (the runtime flushes before it posts), up to
        ``_DRAIN_LIMIT`` bytes, and end a line left unfinished."""
        if self.process is None:
            return
        left = _DRAIN_LIMIT
        while left > 0:
            try:
                chunk = os.read(self.process.log_fd, min(_READ_BYTES, left))
            except (BlockingIOError, OSError):
                break
            if not chunk:
                break
            left -= len(chunk)
            self._take_output(chunk)
        if self._partial or self._cut:
            partial, self._partial = self._partial, b""
            self._keep_line(partial, len(partial) + self._cut)
            self._cut = 0

    def _take_output(self, chunk: bytes) -> None:
        if self._cut:
            # The line in ``_partial`` is full: only its end is looked for, nothing copied.
            end = chunk.find(b"\n")
            if end < 0:
                self._cut += len(chunk)
                return
            partial, self._partial = self._partial, b""
            self._keep_line(partial, len(partial) + self._cut + end + 1)
            self._cut = 0
            chunk = chunk[end + 1:]
        data = self._partial + chunk if self._partial else chunk
        *complete, rest = data.split(b"\n")
        for line in complete:
            # What a line counts is its size as written, its newline included.
            self._keep_line(line[:MAX_LINE_BYTES], len(line) + 1)
        if len(rest) > MAX_LINE_BYTES:
            self._cut += len(rest) - MAX_LINE_BYTES
            rest = rest[:MAX_LINE_BYTES]
        self._partial = rest

    def _keep_line(self, raw: bytes, size: int) -> None:
        """One line of output (at most MAX_LINE_BYTES of it) that took ``size`` bytes."""
        if self._current is not None and self._delivered:
            self._output.add(int(time.time() * 1000), raw, size)
            return
        if not self._outside.take(size):
            return
        self._sink.emit(self.version.log_group, self.log_stream,
                        [(int(time.time() * 1000), raw.decode("utf-8", "replace"))])
        # INIT goes on dropping (it ends within its timeout); a DEAD one is drained once.
        if (self._outside.exhausted and not self._paused
                and (self.state is State.IDLE or self.state is State.BUSY)):
            self._pause()

    def _pause(self) -> None:
        """Stop reading the pipe until the next delivery (its writer blocks once it is full)."""
        assert self.process is not None
        self._paused = True
        self._loop.remove_reader(self.process.log_fd)
        self._sink.emit(self.version.log_group, self.log_stream,
                        [(int(time.time() * 1000), paused_line())])

    def _end_outside_period(self) -> None:
        """INIT or a wait between invocations is over: report what its allowance dropped,
        give the next wait a fresh one, and read again if reading was paused."""
        dropped = self._outside.restart(BETWEEN_INVOCATIONS_BYTES)
        if dropped:
            self._sink.emit(self.version.log_group, self.log_stream,
                            [(int(time.time() * 1000), outside_dropped_line(dropped))])
        if self._paused:
            self._paused = False
            if self.process is not None and not self._eof and self.state is not State.DEAD:
                self._loop.add_reader(self.process.log_fd, self._on_output)
