"""One execution environment: its lifecycle, its Runtime API endpoint, its log capture.

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

The runtime inside talks to the environment through its own Runtime API endpoint
(``AWS_LAMBDA_RUNTIME_API``), served here: ``GET /2018-06-01/runtime/invocation/next``,
``POST …/invocation/{id}/response``, ``POST …/invocation/{id}/error``,
``POST /2018-06-01/runtime/init/error``. All methods run on the event loop's thread.
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
from strato.http.request import Request, Responder
from strato.sandbox.base import EnvironmentProcess, ExitStatus
from strato.scheduler import invocation as faults
from strato.scheduler.invocation import Fault, Invocation, InvocationResult

log = logging.getLogger(__name__)

_PREFIX = "/2018-06-01/runtime/"
_NEXT = _PREFIX + "invocation/next"
_INIT_ERROR = _PREFIX + "init/error"
_ACCEPTED = ([("Content-Type", "application/json")], b'{"status":"OK"}')
_JSON = [("Content-Type", "application/json")]
#: Output kept per invocation for the log store; beyond it, lines are counted, not kept.
_MAX_LOG_BYTES_PER_INVOCATION = 1024 * 1024
_MAX_LINE = 256 * 1024


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


class IllegalTransition(StratoError):
    pass


class LogSink(Protocol):
    def emit(self, group: str, stream: str, lines: list[tuple[int, str]]) -> None:
        """Queue ``(timestamp_ms, message)`` lines for storage; never blocks."""


def _error_response(status: int, error_type: str, message: str) -> tuple[int, list[tuple[str, str]], bytes]:
    body = json.dumps({"errorMessage": message, "errorType": error_type}).encode()
    return status, _JSON, body


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
        self.server: asyncio.Server | None = None
        self._sink = sink
        self._on_released = on_released
        self._on_dead = on_dead
        self._on_finished = on_finished
        self._loop = asyncio.get_running_loop()
        self._spawned_at = time.monotonic()
        self._init_ms: float | None = None
        self._parked_next: Responder | None = None
        self._current: Invocation | None = None
        self._delivered = False
        self._started_at = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._partial = bytearray()
        self._lines: list[tuple[int, str]] = []
        self._kept_bytes = 0
        self._dropped_bytes = 0
        self._death_fault: Fault | None = None

    # lifecycle -------------------------------------------------------------------------
    @property
    def dead(self) -> bool:
        """True once the environment is DEAD (it never leaves that state)."""
        return self.state is State.DEAD

    def _move(self, target: State) -> None:
        if target not in _TRANSITIONS[self.state]:
            raise IllegalTransition(f"environment {self.env_id}: {self.state.name} → {target.name}")
        self.state = target

    def attach(self, process: EnvironmentProcess, server: asyncio.Server) -> None:
        """Adopt the started process and its Runtime API server. Only while INIT."""
        self.process = process
        self.server = server
        self._loop.add_reader(process.log_fd, self._on_output)
        process.exited.add_done_callback(self._on_exit)
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
        if self._parked_next is not None:
            responder, self._parked_next = self._parked_next, None
            self._deliver(responder)

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

    # Runtime API -----------------------------------------------------------------------
    def handle(self, request: Request, responder: Responder) -> None:
        path = request.path
        if self.state is State.DEAD:
            responder.send(*_error_response(410, "Runtime.Gone", "environment is shutting down"))
        elif path == _NEXT and request.method == "GET":
            self._on_next(responder)
        elif path.startswith(_PREFIX + "invocation/") and request.method == "POST":
            request_id, _, action = path[len(_PREFIX) + 11:].partition("/")
            self._on_post(request_id, action, request, responder)
        elif path == _INIT_ERROR and request.method == "POST":
            self._on_init_error(request, responder)
        else:
            responder.send(*_error_response(404, "NotFound", f"no route {request.method} {path}"))

    @staticmethod
    def body_limit(method: str, path: str) -> int:
        return limits.SYNC_RESPONSE_MAX_BYTES

    def _on_next(self, responder: Responder) -> None:
        if self.state is State.INIT:
            # Init Duration belongs to the invocation that waited for INIT (a cold start).
            if self._current is not None:
                self._init_ms = (time.monotonic() - self._spawned_at) * 1000
            self._cancel_timer()
            self._move(State.BUSY if self._current is not None else State.IDLE)
            if self._current is None:
                self.idle_since = time.monotonic()
                self._on_released(self)
        if self._current is not None and not self._delivered:
            self._deliver(responder)
        else:
            self._parked_next = responder

    def _deliver(self, responder: Responder) -> None:
        invocation = self._current
        assert invocation is not None
        self._delivered = True
        version = self.version
        now = time.time()
        self._started_at = time.monotonic()
        self._timer = self._loop.call_later(version.timeout, self._on_timeout)
        self._lines.append(self._start_line(invocation))
        headers = [
            ("Content-Type", "application/json"),
            ("Lambda-Runtime-Aws-Request-Id", invocation.request_id),
            ("Lambda-Runtime-Deadline-Ms", str(int((now + version.timeout) * 1000))),
            ("Lambda-Runtime-Invoked-Function-Arn", invocation.invoked_arn),
        ]
        if invocation.trace_id:
            headers.append(("Lambda-Runtime-Trace-Id", invocation.trace_id))
        if invocation.client_context:
            headers.append(("Lambda-Runtime-Client-Context", invocation.client_context))
        if invocation.cognito_identity:
            headers.append(("Lambda-Runtime-Cognito-Identity", invocation.cognito_identity))
        responder.send(200, headers, invocation.payload or b"{}")

    def _start_line(self, invocation: Invocation) -> tuple[int, str]:
        return (int(time.time() * 1000),
                f"START RequestId: {invocation.request_id} Version: {self.version.version}")

    def _on_post(self, request_id: str, action: str, request: Request, responder: Responder) -> None:
        invocation = self._current
        if invocation is None or not self._delivered or invocation.request_id != request_id:
            responder.send(*_error_response(400, "InvalidRequestID", "Invalid request ID"))
            return
        if action == "response":
            if request.too_large:
                responder.send(*_error_response(
                    413, "RequestEntityTooLarge",
                    f"Exceeded maximum allowed payload size ({limits.SYNC_RESPONSE_MAX_BYTES} bytes)."))
                self._complete(faults.response_too_large(limits.SYNC_RESPONSE_MAX_BYTES).payload(), True)
                return
            responder.send(202, *_ACCEPTED)
            self._complete(request.body, False)
        elif action == "error":
            responder.send(202, *_ACCEPTED)
            self._complete(self._error_body(request), True)
        else:
            responder.send(*_error_response(404, "NotFound", f"no route {request.path}"))

    def _on_init_error(self, request: Request, responder: Responder) -> None:
        if self.state is not State.INIT:
            responder.send(*_error_response(403, "InvalidStateTransition",
                                            "init/error is only legal during INIT"))
            return
        responder.send(202, *_ACCEPTED)
        body = self._error_body(request)
        self.init_error = self._error_type(body)
        invocation = self._current
        if invocation is not None:
            self._init_ms = (time.monotonic() - self._spawned_at) * 1000
            self._move(State.BUSY)
            self._delivered = True
            self._started_at = time.monotonic()
            self._lines.append(self._start_line(invocation))
            self._complete(body, True, then_destroy=True)
        else:
            self.destroy()

    @staticmethod
    def _error_body(request: Request) -> bytes:
        """The runtime's error document; a body that is not JSON is wrapped as AWS does."""
        body = request.body
        try:
            json.loads(body)
            return body
        except ValueError:
            error_type = request.headers.get("lambda-runtime-function-error-type", "Runtime.Unknown")
            return json.dumps({"errorMessage": body.decode("utf-8", "replace"),
                               "errorType": error_type}).encode()

    @staticmethod
    def _error_type(body: bytes) -> str:
        try:
            document = json.loads(body)
        except ValueError:
            return "Runtime.Unknown"
        error_type = document.get("errorType") if isinstance(document, dict) else None
        return error_type if isinstance(error_type, str) and error_type else "Runtime.Unknown"

    # completion ------------------------------------------------------------------------
    def _complete(self, payload: bytes, error: bool, *, then_destroy: bool = False,
                  extra_line: str | None = None) -> None:
        invocation = self._current
        assert invocation is not None
        # First, so that nothing below can keep the invocation's concurrency lease.
        self._on_finished(self)
        self._cancel_timer()
        duration_ms = (time.monotonic() - self._started_at) * 1000
        self._drain_output()
        request_id = invocation.request_id
        now_ms = int(time.time() * 1000)
        if extra_line:
            self._lines.append((now_ms, extra_line))
        if self._dropped_bytes:
            self._lines.append((now_ms, f"[strato: {self._dropped_bytes} bytes of output dropped]"))
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
        self._kept_bytes = self._dropped_bytes = 0
        self._sink.emit(self.version.log_group, self.log_stream, lines)
        tail = None
        if invocation.want_tail:
            text = "".join(line + "\n" for _, line in lines).encode()
            tail = base64.b64encode(text[-limits.LOG_TAIL_BYTES:]).decode()
        self._current = None
        self._delivered = False
        result = InvocationResult(payload, self.version.version, "Unhandled" if error else None, tail)
        if then_destroy or self.retired or self.state is State.DEAD:
            if self.state is not State.DEAD:
                self.destroy()
        else:
            self._move(State.IDLE)
            self.idle_since = time.monotonic()
        try:
            invocation.finish(result)
        finally:
            if self.state is State.IDLE:
                self._on_released(self)

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
        if self._parked_next is not None:
            self._parked_next = None
        self._cancel_timer()
        if self.process is not None:
            self._loop.remove_reader(self.process.log_fd)
            self.process.release()
        if self.server is not None:
            self.server.close()
        if not was_dead:
            self._on_dead(self)

    # output ----------------------------------------------------------------------------
    def _on_output(self) -> None:
        assert self.process is not None
        try:
            chunk = os.read(self.process.log_fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._loop.remove_reader(self.process.log_fd)
            return
        self._take_output(chunk)

    def _drain_output(self) -> None:
        """Read everything already in the pipe: the runtime flushes before it posts."""
        if self.process is None:
            return
        while True:
            try:
                chunk = os.read(self.process.log_fd, 65536)
            except (BlockingIOError, OSError):
                break
            if not chunk:
                break
            self._take_output(chunk)
        if self._partial:
            self._keep_line(bytes(self._partial))
            self._partial.clear()

    def _take_output(self, chunk: bytes) -> None:
        data = self._partial + chunk if self._partial else chunk
        *complete, rest = data.split(b"\n")
        self._partial = bytearray(rest[:_MAX_LINE])
        for line in complete:
            self._keep_line(line)

    def _keep_line(self, raw: bytes | bytearray) -> None:
        line = raw[:_MAX_LINE].decode("utf-8", "replace")
        if self._current is None or not self._delivered:
            # Output outside an invocation (INIT, background threads) goes straight to the log.
            self._sink.emit(self.version.log_group, self.log_stream,
                            [(int(time.time() * 1000), line)])
            return
        if self._kept_bytes + len(line) > _MAX_LOG_BYTES_PER_INVOCATION:
            self._dropped_bytes += len(raw) + 1
            return
        self._kept_bytes += len(line)
        self._lines.append((int(time.time() * 1000), line))
