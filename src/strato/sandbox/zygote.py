"""The platform side of a zygote: a pre-initialised interpreter that forks environments.

One zygote runs per interpreter (``guest/zygote.py``). Requests and replies are JSON
datagrams over a SEQPACKET socketpair, with fds attached; see ``guest/zygote.py`` for the
protocol. A zygote works on many requests at once and answers each as its child finishes.

Requests are never refused for back-pressure: they wait in a queue and go out as the socket
takes them (the caller bounds how many are outstanding, ``ProcessSandbox``). A request whose
caller gave up before it went out is dropped from the queue; an environment whose caller gave
up after it went out is killed when its answer comes. All methods run on the event loop's
thread.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from strato.errors import SandboxError
from strato.sandbox.base import ExitStatus

log = logging.getLogger(__name__)

GUEST_DIR = Path(__file__).parent / "guest"
_MAX_DATAGRAM = 1 << 20


#: A zygote's answer: the pid, the future of its exit status, the fds it passed (or None):
#: the Runtime API socket's, the platform API socket's and the /tmp mount's.
_Answer = tuple[int, "asyncio.Future[ExitStatus]", "int | None", "int | None", "int | None"]


class _Outgoing:
    """A request in the queue: its datagram and fds (owned by the caller until it is
    answered), and whether it has gone out yet."""

    __slots__ = ("key", "data", "fds", "sent")

    def __init__(self, key: str, data: bytes, fds: list[int]) -> None:
        self.key = key
        self.data = data
        self.fds = fds
        self.sent = False


class Zygote:
    """A running zygote. Use ``await Zygote.start(interpreter)``. ``on_spare_lost(spare id)``
    is called when a spare dies before it is used."""

    def __init__(self, interpreter: str, process: subprocess.Popen[bytes], sock: socket.socket):
        self.interpreter = interpreter
        self.on_spare_lost: Callable[[str], None] = lambda spare_id: None
        self._process = process
        self._sock = sock
        self._loop = asyncio.get_running_loop()
        self._ready: asyncio.Future[dict[str, Any]] = self._loop.create_future()
        self._waiters: dict[str, asyncio.Future[Any]] = {}
        self._exits: dict[int, asyncio.Future[ExitStatus]] = {}
        self._outbox: collections.deque[_Outgoing] = collections.deque()
        self._writing = False
        #: Requests that found the socket full and waited in the queue for it.
        self.deferred = 0
        self.alive = True
        self._loop.add_reader(sock.fileno(), self._on_readable)

    @classmethod
    async def start(cls, interpreter: str) -> Zygote:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            process = subprocess.Popen(
                [interpreter, "-E", "-s", "-S", str(GUEST_DIR / "zygote.py"), str(child.fileno())],
                pass_fds=(child.fileno(),),
                stdin=subprocess.DEVNULL,
                # Nothing of strato's own environment (keys, credentials) may reach the zygote:
                # its initial stack is inherited by every environment it forks.
                env={"LD_LIBRARY_PATH": os.environ["LD_LIBRARY_PATH"]}
                if "LD_LIBRARY_PATH" in os.environ else {},
                start_new_session=True,
            )
        except OSError as exc:
            parent.close()
            raise SandboxError(f"cannot start zygote {interpreter}: {exc}") from exc
        finally:
            child.close()
        parent.setblocking(False)
        zygote = cls(interpreter, process, parent)
        try:
            await asyncio.wait_for(asyncio.shield(zygote._ready), timeout=30)
        except (TimeoutError, SandboxError) as exc:
            await zygote.close()
            raise SandboxError(f"zygote {interpreter} did not become ready: {exc}") from exc
        return zygote

    def spawn(self, request: dict[str, Any], fds: list[int]) -> asyncio.Future[_Answer]:
        """Fork an environment from ``request`` with ``fds`` attached (the log pipe first).
        The request goes out now if the socket takes it, else waits its turn; the caller
        keeps ``fds`` open until the future is done. The future's result is the pid, a future
        of its exit status, the fds of the Runtime API socket and of strato's API socket it
        listens on inside its sandbox (namespaces tier; the caller owns them) or None, and
        the fd of the detached tmpfs mount its /tmp is a clone of (namespaces tier, when the
        request passed none; the caller owns it) or None; its exception SandboxError.
        Cancelling the future before the request went out drops the request; after, the
        environment is killed when the answer comes (``_abandoned``)."""
        return self._ask("spawn", request, fds)

    async def prepare(self, request: dict[str, Any]) -> int:
        """Fork a spare from ``request`` (``guest/zygote.py``); returns its pid. Raises
        SandboxError."""
        answer: _Answer = await self._ask("prepare", request, [])
        return answer[0]

    async def show(self, request_id: str, pid: int, task_root: str) -> None:
        """Show the host directory ``task_root`` at /var/task of the standby environment
        ``pid`` (spawned with ``"standby": true``; once). Raises SandboxError."""
        await self._ask("show", {"id": request_id, "pid": pid, "task_root": task_root}, [])

    def _ask(self, op: str, request: dict[str, Any], fds: list[int]) -> asyncio.Future[Any]:
        waiter: asyncio.Future[Any] = self._loop.create_future()
        if not self.alive:
            waiter.set_exception(SandboxError(f"zygote {self.interpreter} is gone"))
            return waiter
        key = request["id"]
        self._waiters[key] = waiter
        outgoing = _Outgoing(key, json.dumps({"op": op, **request}).encode(), fds)
        self._outbox.append(outgoing)
        self._flush()
        if not outgoing.sent:
            self.deferred += 1
            waiter.add_done_callback(lambda _: self._given_up(outgoing))
        return waiter

    def _given_up(self, outgoing: _Outgoing) -> None:
        """A request's waiter is done: if it was cancelled before the request went out,
        the request never will."""
        waiter = self._waiters.get(outgoing.key)
        if outgoing.sent or (waiter is not None and not waiter.cancelled()):
            return
        with contextlib.suppress(ValueError):
            self._outbox.remove(outgoing)
        self._waiters.pop(outgoing.key, None)

    def _flush(self) -> None:
        """Send what the socket takes now; the rest goes when it is writable again."""
        while self._outbox:
            outgoing = self._outbox[0]
            try:
                socket.send_fds(self._sock, [outgoing.data], outgoing.fds)
            except BlockingIOError:
                if not self._writing:
                    self._loop.add_writer(self._sock.fileno(), self._flush)
                    self._writing = True
                return
            except OSError as exc:
                self._outbox.popleft()
                waiter = self._waiters.pop(outgoing.key, None)
                if waiter is not None and not waiter.done():
                    waiter.set_exception(SandboxError(
                        f"zygote {self.interpreter} refused a request: {exc}"))
                continue
            outgoing.sent = True
            self._outbox.popleft()
        if self._writing:
            self._loop.remove_writer(self._sock.fileno())
            self._writing = False

    def _on_readable(self) -> None:
        while True:
            fds: list[int] = []
            try:
                data, fds, _, _ = socket.recv_fds(self._sock, _MAX_DATAGRAM, 4)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._on_lost()
                return
            self._dispatch(json.loads(data), fds)

    def _dispatch(self, message: dict[str, Any], fds: list[int]) -> None:
        unused = list(fds)
        op = message.get("op")
        if op == "ready":
            if not self._ready.done():
                self._ready.set_result(message)
        elif op in ("spawned", "prepared"):
            pid = message["pid"]
            # Its exit may be read before the waiter resumes: the future goes with the answer.
            exited = self._exits.setdefault(pid, self._loop.create_future())
            runtime_fd = unused.pop(0) if unused else None
            platform_fd = unused.pop(0) if unused else None
            tmp_fd = unused.pop(0) if unused else None
            waiter = self._waiters.pop(message["id"], None)
            if waiter is not None and not waiter.done():
                waiter.set_result((pid, exited, runtime_fd, platform_fd, tmp_fd))
            else:
                self._abandoned(pid, runtime_fd, platform_fd, tmp_fd)
        elif op == "shown":
            waiter = self._waiters.pop(message["id"], None)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        elif op in ("spawn_failed", "prepare_failed", "show_failed"):
            waiter = self._waiters.pop(message["id"], None)
            if waiter and not waiter.done():
                waiter.set_exception(SandboxError(message.get("error", f"{op[:-7]} failed")))
        elif op == "exited":
            status = ExitStatus(message.get("exit_code"), message.get("signal"))
            future = self._exits.pop(message["pid"], None)
            if future is not None and not future.done():
                future.set_result(status)
        elif op == "spare_lost":
            self.on_spare_lost(message["id"])
        else:
            log.warning("zygote %s sent an unknown message %r", self.interpreter, message)
        for fd in unused:
            os.close(fd)

    def _abandoned(self, pid: int, *fds: int | None) -> None:
        """Nobody waits for this environment or spare any more: close the ``fds`` it passed
        and kill it (its exit is reported and forgotten)."""
        for fd in fds:
            if fd is not None:
                os.close(fd)
        for kill in (os.killpg, os.kill):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                kill(pid, signal.SIGKILL)

    def _on_lost(self) -> None:
        """The zygote died: fail what waits on it; environments it forked are orphans now and
        are reported as killed (the caller kills their process trees)."""
        self.alive = False
        with contextlib.suppress(Exception):
            self._loop.remove_reader(self._sock.fileno())
        if self._writing:
            with contextlib.suppress(Exception):
                self._loop.remove_writer(self._sock.fileno())
            self._writing = False
        self._outbox.clear()
        error = SandboxError(f"zygote {self.interpreter} exited")
        if not self._ready.done():
            self._ready.set_exception(error)
        for waiter in self._waiters.values():
            if not waiter.done():
                waiter.set_exception(error)
        for future in self._exits.values():
            if not future.done():
                future.set_result(ExitStatus(None, 9))
        self._waiters.clear()
        self._exits.clear()

    async def close(self, timeout: float = 5.0) -> None:
        """Stop the zygote: at EOF on its socket it SIGKILLs every child it has (environments,
        spares, children in set-up), waits for them and exits; after ``timeout`` seconds it
        is killed itself. Idempotent."""
        if self.alive:
            self._on_lost()
        with contextlib.suppress(OSError):
            self._sock.close()
        try:
            await asyncio.wait_for(asyncio.to_thread(self._process.wait), timeout)
        except TimeoutError:
            log.warning("zygote %s did not stop within %.0f s: killed", self.interpreter,
                        timeout)
            with contextlib.suppress(OSError):
                self._process.kill()
            await asyncio.to_thread(self._process.wait)


class ZygotePool:
    """One zygote per interpreter, started on first use and restarted if it dies."""

    def __init__(self) -> None:
        self._zygotes: dict[str, Zygote] = {}
        self._starting: dict[str, asyncio.Task[Zygote]] = {}

    async def get(self, interpreter: str) -> Zygote:
        zygote = self._zygotes.get(interpreter)
        if zygote is not None and zygote.alive:
            return zygote
        task = self._starting.get(interpreter)
        if task is None:
            task = asyncio.ensure_future(Zygote.start(interpreter))
            self._starting[interpreter] = task
        try:
            zygote = await asyncio.shield(task)
        finally:
            self._starting.pop(interpreter, None)
        self._zygotes[interpreter] = zygote
        return zygote

    async def close(self) -> None:
        """Stop every zygote (at once: each stops its own children)."""
        zygotes = list(self._zygotes.values())
        self._zygotes.clear()
        await asyncio.gather(*(zygote.close() for zygote in zygotes))
