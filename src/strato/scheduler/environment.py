"""One execution environment: its lifecycle and what its runtime may ask.

Lifecycle (a transition outside this table raises IllegalTransition)::

    INIT ──first `next`──▶ IDLE ◀──result── BUSY
      │▲ └──first `next` with an invocation waiting──▶ BUSY
      │└────────────restart (timeout, crash)──────────────┘
      └──────────────┬─────────────────────────┘
                     ▼
                   DEAD   (init error, failed restart, reaped, retired)

An invocation that times out or whose runtime exits (a crash, an OOM kill) fails as before,
and then, as on Lambda, the runtime is restarted in the same environment: the environment
goes back to INIT with its id and log stream, the sandbox starts a new runtime in it that
keeps its ``/tmp`` (``Sandbox.restart``), and the environment is offered for placement at
once, so the next invocation waits for that INIT and reports its Init Duration. A restart
that cannot be done destroys the environment.

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
runtime uses. All methods run on the event loop's thread. A response the runtime streams
(``runtime_stream``, ``runtime_stream_chunk``, ``runtime_stream_end``) reaches a caller that
takes it as a stream (``Invocation.stream``) chunk by chunk, and is gathered for one that
does not; either way the invocation ends at the stream's end, as with a response post.

Its output goes to its log stream through its ``LogCapture`` (``scheduler.log_capture``),
which the environment tells when an invocation begins and closes and when INIT or a wait
between invocations is over.
"""

from __future__ import annotations

import asyncio
import base64
import enum
import json
import logging
import time
from collections.abc import Callable
from typing import Protocol

from strato.domain import limits
from strato.domain.models import FunctionVersion
from strato.errors import StratoError
from strato.sandbox.base import EnvironmentProcess, ExitStatus
from strato.scheduler import invocation as faults
from strato.scheduler.invocation import Fault, Invocation, InvocationResult
from strato.scheduler.log_capture import LogCapture, LogSink

log = logging.getLogger(__name__)


class State(enum.Enum):
    INIT = "init"
    IDLE = "idle"
    BUSY = "busy"
    DEAD = "dead"


_TRANSITIONS = {
    State.INIT: {State.IDLE, State.BUSY, State.DEAD},
    State.IDLE: {State.BUSY, State.DEAD},
    State.BUSY: {State.IDLE, State.INIT, State.DEAD},
    State.DEAD: set(),
}


#: The transitions as pairs of state names (an Enum's hash is a Python call; a str's is not).
_LEGAL = frozenset((a.name, b.name) for a, targets in _TRANSITIONS.items() for b in targets)


class IllegalTransition(StratoError):
    pass


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


class _StreamedResponse:
    """The response a runtime is streaming for ``invocation``; ``limit`` its most bytes."""

    __slots__ = ("invocation", "limit", "size", "gathered")

    def __init__(self, invocation: Invocation) -> None:
        self.invocation = invocation
        self.limit = (limits.STREAMING_RESPONSE_MAX_BYTES if invocation.stream is not None
                      else limits.SYNC_RESPONSE_MAX_BYTES)
        self.size = 0
        #: The chunks, for a caller that takes the whole response.
        self.gathered: list[bytes] = []


class ExecutionEnvironment:
    """See the module docstring. Built by the pool, which passes ``on_released`` (called when
    the environment became IDLE and can take an invocation), ``on_dead`` and ``on_finished``
    (called once per assigned invocation as it ends, before the caller hears of it), and
    ``on_restart`` (called with the process that ended when the environment went back to INIT
    to be restarted; the callee owns that process from then, starts the new one and
    ``attach``es it). Without ``on_restart`` a timeout or crash destroys the environment.

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
        on_restart: Callable[[ExecutionEnvironment, EnvironmentProcess | None], None] | None = None,
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
        self._on_released = on_released
        self._on_dead = on_dead
        self._on_finished = on_finished
        self._on_restart = on_restart
        #: The runtime ended while BUSY: once the invocation is answered, restart (not IDLE).
        self._restart_pending = False
        #: In INIT after a restart: the INIT's duration goes to the next invocation's REPORT.
        self._restarted = False
        self._loop = asyncio.get_running_loop()
        self._spawned_at = time.monotonic()
        self._init_ms: float | None = None
        self._parked: EventWaiter | None = None
        self._current: Invocation | None = None
        self._delivered = False
        self._started_at = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._log = LogCapture(self._loop, sink, version.log_group, log_stream,
                               version.logging_config)
        self._death_fault: Fault | None = None
        self._streamed: _StreamedResponse | None = None

    # lifecycle -------------------------------------------------------------------------
    @property
    def current(self) -> Invocation | None:
        """The invocation assigned and not yet finished, if any."""
        return self._current

    @property
    def spawned_at(self) -> float:
        """When its current process was asked for (``time.monotonic``): at creation, then at
        each restart of its runtime. What the process was given (role credentials) dates
        from then."""
        return self._spawned_at

    @property
    def dead(self) -> bool:
        """True once the environment is DEAD (it never leaves that state)."""
        return self.state is State.DEAD

    def _move(self, target: State) -> None:
        if (self.state._name_, target._name_) not in _LEGAL:
            raise IllegalTransition(f"environment {self.env_id}: {self.state.name} → {target.name}")
        self.state = target
        # INIT is never a target: IDLE and BUSY are the states past INIT and alive.
        self._log.pausable = target is not State.DEAD

    def attach(self, process: EnvironmentProcess, endpoints: RuntimeEndpoints) -> None:
        """Adopt the started process and its Runtime API endpoints (closed when the
        environment is finalised). Once per start: right after the first, and after each
        restart (in INIT, with no process attached)."""
        self.process = process
        self.endpoints = endpoints
        self._log.attach(process)
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
            # Init Duration belongs to the invocation that waited for INIT (a cold start),
            # and a restart's to the next invocation, as Lambda reports it.
            if self._current is not None or self._restarted:
                self._init_ms = (time.monotonic() - self._spawned_at) * 1000
            restarted, self._restarted = self._restarted, False
            self._cancel_timer()
            self._log.end_outside_period()
            self._move(State.BUSY if self._current is not None else State.IDLE)
            # A restarted environment was offered for placement when its restart began.
            if self._current is None and not restarted:
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

    def runtime_stream(self, request_id: str, content_type: str) -> Post:
        """The runtime begins streaming its response for ``request_id`` (once per
        invocation; a response or error post is refused from then on)."""
        if not self._expects(request_id):
            return Post.INVALID_REQUEST_ID
        invocation = self._current
        assert invocation is not None
        self._streamed = _StreamedResponse(invocation)
        if invocation.stream is not None:
            invocation.stream.begin(content_type)
        return Post.ACCEPTED

    def runtime_stream_chunk(self, request_id: str, data: bytes) -> Post:
        """The next bytes of the response ``request_id``'s runtime streams. Past the limit
        (``limits.STREAMING_RESPONSE_MAX_BYTES`` to a streaming caller, the buffered one
        otherwise) the invocation fails with Function.ResponseSizeTooLarge at once."""
        streamed = self._streamed
        if streamed is None or streamed.invocation.request_id != request_id:
            return Post.INVALID_REQUEST_ID
        if not data:
            return Post.ACCEPTED
        streamed.size += len(data)
        if streamed.size > streamed.limit:
            self._complete(faults.response_too_large(streamed.limit).payload(), True)
            return Post.TOO_LARGE
        sink = streamed.invocation.stream
        if sink is not None:
            sink.chunk(data)
        else:
            streamed.gathered.append(data)
        return Post.ACCEPTED

    def runtime_stream_end(self, request_id: str, error_type: str | None,
                           error_body: bytes | None) -> Post:
        """The streamed response of ``request_id`` is over: complete, or (``error_type``
        given) ended by the error the runtime reported mid-stream, whose document is
        ``error_body`` (wrapped as AWS does when it is not JSON)."""
        streamed = self._streamed
        if streamed is None or streamed.invocation.request_id != request_id:
            return Post.INVALID_REQUEST_ID
        if error_type is not None:
            self._complete(_error_body(error_body or b"", error_type), True)
        else:
            self._complete(b"".join(streamed.gathered), False)
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
            self._log.begin_undelivered(invocation.request_id, self.version.version)
            self._complete(document, True, then_destroy=True)
        else:
            self.destroy()
        return Post.ACCEPTED

    def _expects(self, request_id: str) -> bool:
        invocation = self._current
        return (invocation is not None and self._delivered and invocation.request_id == request_id
                and self._streamed is None)

    def _deliver(self, waiter: EventWaiter) -> None:
        invocation = self._current
        assert invocation is not None
        self._delivered = True
        timeout = self.version.timeout
        now = time.time()
        self._log.begin_delivered(int(now * 1000), invocation.request_id, self.version.version)
        self._started_at = time.monotonic()
        self._timer = self._loop.call_later(timeout, self._on_timeout)
        waiter.deliver(invocation, int((now + timeout) * 1000))

    # completion ------------------------------------------------------------------------
    def _complete(self, payload: bytes, error: bool, *, then_destroy: bool = False,
                  extra_line: str | None = None, timed_out: bool = False) -> None:
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
        # The platform.report record's status (JSON log format).
        status = "timeout" if timed_out else "error" if error else "success"
        try:
            if invocation.want_tail:
                lines = self._close_log(invocation.request_id, duration_ms, extra_line, status)
                text = "".join(line + "\n" for _, line in lines).encode()
                tail = base64.b64encode(text[-limits.LOG_TAIL_BYTES:]).decode()
                invocation.finish(InvocationResult(payload, self.version.version, function_error,
                                                   tail))
            else:
                try:
                    invocation.finish(InvocationResult(payload, self.version.version,
                                                       function_error))
                finally:
                    self._close_log(invocation.request_id, duration_ms, extra_line, status)
        finally:
            self._current = None
            self._delivered = False
            self._streamed = None
            if then_destroy or self.retired or self.state is State.DEAD:
                if self.state is not State.DEAD:
                    self.destroy()
            elif self._restart_pending:
                self._begin_restart()
            else:
                self._move(State.IDLE)
                self.idle_since = time.monotonic()
                self._on_released(self)

    def _close_log(self, request_id: str, duration_ms: float, extra_line: str | None,
                   status: str) -> list[tuple[int, str]]:
        """Close the log of the invocation in flight (its Init Duration, if it waited for
        INIT, goes to its REPORT); the lines emitted."""
        init_ms, self._init_ms = self._init_ms, None
        return self._log.close_invocation(request_id, duration_ms, self.version.memory_size,
                                          init_ms, extra_line, status)

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
        if self._restartable():
            # The runtime is killed and restarted in this environment once the caller has
            # its answer (``_complete`` → ``_begin_restart``).
            self._restart_pending = True
            assert self.process is not None
            self.process.kill()
        else:
            self.destroy()
            if self._current is not invocation:  # the process had exited: failed as such
                return
        self._complete(fault.payload(), True, timed_out=True, extra_line=(
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
            self._log.begin_undelivered(invocation.request_id, self.version.version)
            fault = Fault(faults.SANDBOX_TIMEDOUT,
                          f"RequestId: {invocation.request_id} Error: INIT phase timed out after "
                          f"{limits.INIT_TIMEOUT_S:.2f} seconds")
            self._complete(fault.payload(), True)

    def _restartable(self) -> bool:
        """Whether the runtime, ending now, is to be restarted rather than the environment
        destroyed: only from BUSY (a timeout or a crash during an invocation), with a pool
        that restarts, and not once retired."""
        return (self.state is State.BUSY and self._on_restart is not None
                and not self.retired and self.process is not None)

    def _begin_restart(self) -> None:
        """BUSY → INIT with the runtime gone or killed: let go of its process (handed to
        ``on_restart``, which starts the new one once it has exited) and its endpoints, and
        keep the id, log stream and place in the pool."""
        self._restart_pending = False
        self._move(State.INIT)
        process, self.process = self.process, None
        if process is not None:
            process.exited.remove_done_callback(self._on_exit)
            self._log.drain()
        self._log.end_outside_period()
        self._log.detach()
        self._parked = None
        self._cancel_timer()
        if self.endpoints is not None:
            self.endpoints.close()
            self.endpoints = None
        self._spawned_at = time.monotonic()
        self.idle_since = time.monotonic()
        self._restarted = True
        assert self._on_restart is not None
        self._on_restart(self, process)

    def _on_exit(self, future: asyncio.Future[ExitStatus]) -> None:
        # A process let go of for a restart may have exited before its callback was removed.
        if self.process is None or future is not self.process.exited:
            return
        self._finalise(future.result())

    def _finalise(self, status: ExitStatus | None) -> None:
        """The process is gone: fail what was in flight, free everything, report DEAD."""
        self._log.drain()
        invocation = self._current
        was_dead = self.state is State.DEAD
        if self.state is State.INIT and self.init_error is None:
            oom = self.process is not None and self.process.oom_killed()
            self.init_error = faults.RUNTIME_OUT_OF_MEMORY if oom else faults.RUNTIME_EXIT_ERROR
        if self._restartable():
            self._restart_pending = True
            if invocation is None or not self._delivered:
                # It ended between an answer and the exit (as Lambda's Node.js runtime does
                # after reporting an unhandled rejection): restart now; an invocation placed
                # on it meanwhile, not taken yet, waits for the new runtime.
                self._begin_restart()
                return
        elif self.state is not State.DEAD:
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
                self._log.begin_undelivered(invocation.request_id, self.version.version)
            self._complete(fault.payload(), True, extra_line=f"{fault.message}\n{fault.error_type}")
        if self.state is State.INIT and self._restarted:  # ``_complete`` began the restart
            return
        self._log.end_outside_period()
        self._parked = None
        self._cancel_timer()
        self._log.detach()
        if self.process is not None:
            self.process.release()
        if self.endpoints is not None:
            self.endpoints.close()
        if not was_dead:
            self._on_dead(self)
