"""A ``Sandbox`` whose environments are asyncio tasks, for fast tests of the platform above it.

``FakeSandbox.start`` starts no process: it makes a connected socket pair and a pipe, gives
the platform's ends to the environment (``runtime_channel`` and ``log_fd``, exactly as the
built-in runtime's would be) and runs a *runtime program* as a task on the other ends. The
program speaks the runtime channel's frames (``strato.runtime_api.channel``) through a
``FakeRuntime``, so the platform's Runtime API transport, the execution environment and the
pool all run for real; only the process is simulated.

A program is ``async def program(runtime: FakeRuntime) -> None``. When it returns the
"process" exits with status 0; when it raises, with status 1; ``FakeProcess.kill`` cancels it
(``signal: killed``). ``serve(handler)`` makes the usual program: a runtime loop calling
``handler(event, runtime)`` for each event. ``FakeSandbox`` records every spec it was asked
to start and every process it made, and can be told to refuse starts (``start_error``).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import json
import os
import signal
import socket
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from strato.errors import SandboxError
from strato.runtime_api.channel import ERROR, EVENT, INIT_ERROR, NEXT, REFUSED, RESPONSE, frame
from strato.sandbox.base import EnvironmentProcess, EnvironmentSpec, ExitStatus

#: Where environments see their code (``task_root``), as in the namespaces tier.
TASK_ROOT = "/var/task"
#: ``runtime_api`` of the fake sandbox: every environment has an endpoint of its own (its
#: channel), so the pool binds no host port.
RUNTIME_API = "127.0.0.1:9001"

Program = Callable[["FakeRuntime"], Awaitable[None]]
#: ``handler(event, runtime)`` → the response (JSON-serialisable, or bytes sent as they are);
#: may be a coroutine function. An exception is reported as the invocation's error.
Handler = Callable[[Any, "FakeRuntime"], Any]


@dataclass(frozen=True)
class FakeEvent:
    """An event as the runtime receives it from the platform."""

    request_id: str
    deadline_ms: int
    invoked_arn: str
    trace_id: str
    client_context: str
    cognito_identity: str
    body: bytes


class ChannelClosed(Exception):
    """The platform closed the runtime channel (a real runtime ends then)."""


class FakeRuntime:
    """The runtime's end of an environment's channel and of its output pipe; what a program
    is given. ``spec`` is what the environment was started with."""

    def __init__(self, spec: EnvironmentSpec, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, log_fd: int) -> None:
        self.spec = spec
        self._reader = reader
        self._writer = writer
        self._log_fd = log_fd
        #: What the platform refused of the runtime's posts (REFUSED frames), in order.
        self.refusals: list[str] = []

    async def next(self) -> FakeEvent:
        """Ask for the next event and wait for it (REFUSED frames that come first are
        recorded in ``refusals``). Raises ChannelClosed when the platform closes the channel."""
        self._writer.write(frame(NEXT))
        while True:
            kind, payload = await self._frame()
            if kind == REFUSED:
                self.refusals.append(payload.decode())
                continue
            if kind != EVENT:
                raise ChannelClosed(f"unexpected frame kind {kind}")
            fields = payload.split(b"\0", 6)
            return FakeEvent(fields[0].decode(), int(fields[1]), fields[2].decode(),
                             fields[3].decode(), fields[4].decode(), fields[5].decode(), fields[6])

    def respond(self, request_id: str, body: bytes) -> None:
        """Post the invocation's response (it travels with the next ``next``, as the built-in
        runtime's does)."""
        self._writer.write(frame(RESPONSE, request_id.encode(), body))

    def error(self, request_id: str, error_type: str, message: str) -> None:
        """Post the invocation's error, as a runtime reports an unhandled exception."""
        document = json.dumps({"errorMessage": message, "errorType": error_type}).encode()
        self._writer.write(frame(ERROR, request_id.encode(), error_type.encode(), document))

    def init_error(self, error_type: str, message: str) -> None:
        """Report that INIT failed (the platform then ends the environment)."""
        document = json.dumps({"errorMessage": message, "errorType": error_type}).encode()
        self._writer.write(frame(INIT_ERROR, error_type.encode(), document))

    def log(self, line: str) -> None:
        """Write a line to the environment's output (stdout and stderr are one pipe)."""
        os.write(self._log_fd, line.encode() + b"\n")

    async def drain(self) -> None:
        """Wait until what was posted is handed to the platform's socket."""
        await self._writer.drain()

    async def _frame(self) -> tuple[int, bytes]:
        try:
            header = await self._reader.readexactly(5)
            length = int.from_bytes(header[:4], "big")
            return header[4], await self._reader.readexactly(length - 1)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            raise ChannelClosed("the platform closed the runtime channel") from exc


def serve(handler: Handler, *, init: Callable[[FakeRuntime], Any] | None = None) -> Program:
    """The program of a runtime that runs ``init(runtime)`` (INIT: an exception is reported
    as an init error of its type), then answers each event with ``handler(event, runtime)``
    (the event parsed from JSON; an exception is the invocation's error, of its type), until
    the platform closes the channel."""

    async def program(runtime: FakeRuntime) -> None:
        if init is not None:
            try:
                await _maybe_await(init(runtime))
            except Exception as exc:
                runtime.init_error(f"Runtime.{type(exc).__name__}", str(exc))
                await runtime.drain()
                await asyncio.Event().wait()  # the platform ends the environment
        while True:
            try:
                event = await runtime.next()
            except ChannelClosed:
                return
            try:
                result = await _maybe_await(handler(json.loads(event.body or b"null"), runtime))
            except Exception as exc:
                runtime.error(event.request_id, type(exc).__name__, str(exc))
                continue
            body = result if isinstance(result, bytes) else json.dumps(result).encode()
            runtime.respond(event.request_id, body)

    return program


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


class FakeProcess:
    """A started fake environment (``EnvironmentProcess``). ``pid`` is a made-up number no
    real process has; ``peak_mb`` is what ``peak_memory_mb`` reports."""

    _pids = itertools.count(4_000_000)

    def __init__(self, spec: EnvironmentSpec, program: Program, *, peak_mb: int = 32) -> None:
        self.spec = spec
        self.pid = next(self._pids)
        self.uid = 65534
        self.peak_mb = peak_mb
        self.released = False
        self._oom = False
        loop = asyncio.get_running_loop()
        self.exited: asyncio.Future[ExitStatus] = loop.create_future()
        self.log_fd, self._log_write = os.pipe()
        os.set_blocking(self.log_fd, False)
        self.runtime_socket: socket.socket | None = None
        self.platform_socket: socket.socket | None = None
        self.runtime_channel: socket.socket | None
        self.runtime_channel, self._runtime_end = socket.socketpair()
        self._program = program
        self._task: asyncio.Task[None] | None = None
        self._began = False

    async def run(self) -> None:
        """Start the program on the runtime's ends (``FakeSandbox.start`` calls it)."""
        self._runtime_end.setblocking(False)
        reader, writer = await asyncio.open_unix_connection(sock=self._runtime_end)
        runtime = FakeRuntime(self.spec, reader, writer, self._log_write)
        self._task = asyncio.ensure_future(self._main(runtime, writer))
        self._task.add_done_callback(lambda _: self._never_ran(writer))

    def _never_ran(self, writer: asyncio.StreamWriter) -> None:
        """A task cancelled before its first step never enters ``_main`` (whose ``finally``
        would close the runtime's end and report the exit): a kill right after ``run``."""
        if not self._began:
            writer.close()
            self._exit(ExitStatus(None, signal.SIGKILL))

    async def _main(self, runtime: FakeRuntime, writer: asyncio.StreamWriter) -> None:
        self._began = True
        status = ExitStatus(0, None)
        try:
            await self._program(runtime)
        except asyncio.CancelledError:
            status = ExitStatus(None, signal.SIGKILL)
            raise
        except Exception:
            with contextlib.suppress(OSError):
                os.write(self._log_write, traceback.format_exc().encode())
            status = ExitStatus(1, None)
        finally:
            writer.close()
            self._exit(status)

    def _exit(self, status: ExitStatus) -> None:
        """The "process" is gone: its ends of the channel and the pipe close, then ``exited``
        resolves (on a later turn of the loop, as a real exit is reported)."""
        if self._log_write >= 0:
            os.close(self._log_write)
            self._log_write = -1
        if self._task is None:  # never ran: no stream owns the runtime's end yet
            self._runtime_end.close()
        if not self.exited.done():
            asyncio.get_running_loop().call_soon(self._report, status)

    def _report(self, status: ExitStatus) -> None:
        if not self.exited.done():
            self.exited.set_result(status)

    def kill(self) -> None:
        """End the program as SIGKILL ends a process. Idempotent."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
        elif self._task is None:
            self._exit(ExitStatus(None, signal.SIGKILL))

    def kill_for_memory(self) -> None:
        """End the program as the OOM killer does (``oom_killed`` is then True)."""
        self._oom = True
        self.kill()

    def peak_memory_mb(self) -> int:
        return self.peak_mb

    def oom_killed(self) -> bool:
        return self._oom

    def release(self) -> None:
        """Close the platform's ends still open. Only after ``exited``."""
        self.released = True
        for sock in (self.runtime_channel, self.runtime_socket):
            if sock is not None:
                sock.close()
        if self.log_fd >= 0:
            os.close(self.log_fd)
            self.log_fd = -1


def _always(program: Program) -> Callable[[EnvironmentSpec], Program]:
    return lambda _: program


class FakeSandbox:
    """``Sandbox`` of fake environments that all run ``program`` (a function of the spec may
    choose one per environment: ``program_for``)."""

    description = "fake (asyncio tasks, no processes)"
    runtime_api: str | None = RUNTIME_API
    shows_views = True
    platform_api: str | None = None

    def __init__(self, program: Program | None = None, *,
                 program_for: Callable[[EnvironmentSpec], Program] | None = None) -> None:
        if program_for is None:
            if program is None:
                raise ValueError("give either program or program_for")
            program_for = _always(program)
        self._program_for = program_for
        #: Raised by ``start`` (after recording the spec) while set.
        self.start_error: SandboxError | None = None
        self.started: list[EnvironmentSpec] = []
        self.restarted: list[EnvironmentSpec] = []
        self.processes: list[FakeProcess] = []
        self.prepared: list[str | None] = []

    async def start(self, spec: EnvironmentSpec) -> FakeProcess:
        self.started.append(spec)
        return await self._launch(spec)

    async def restart(self, process: EnvironmentProcess, spec: EnvironmentSpec) -> FakeProcess:
        """A new fake process for the same environment (a fake has no /tmp to carry over);
        recorded in ``restarted`` and subject to ``start_error`` as ``start`` is."""
        self.restarted.append(spec)
        return await self._launch(spec)

    async def _launch(self, spec: EnvironmentSpec) -> FakeProcess:
        """A running fake process for ``spec``. Raises ``start_error`` while set; when
        cancelled (a pool closing while a start or restart is in progress), the process the
        caller never got is killed and released here, so none of its ends stays open."""
        if self.start_error is not None:
            raise self.start_error
        process = FakeProcess(spec, self._program_for(spec))
        self.processes.append(process)
        try:
            await process.run()
        except BaseException:
            process.kill()
            process.release()
            raise
        return process

    def running(self) -> list[FakeProcess]:
        """Processes whose exit has not been reported."""
        return [process for process in self.processes if not process.exited.done()]

    def task_root(self, code_dir: str) -> str:
        return TASK_ROOT

    async def prepare(self, python_version: str | None) -> None:
        self.prepared.append(python_version)

    async def close(self) -> None:
        for process in self.processes:
            process.kill()
        waits = [process.exited for process in self.processes if not process.exited.done()]
        if waits:
            await asyncio.wait(waits)
