"""The platform side of a zygote: a pre-initialised interpreter that forks environments.

One zygote runs per interpreter (``guest/zygote.py``). Requests and replies are JSON
datagrams over a SEQPACKET socketpair, with the log pipe's write end passed as an fd; see
``guest/zygote.py`` for the protocol. All methods run on the event loop's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import subprocess
from pathlib import Path
from typing import Any

from strato.errors import SandboxError
from strato.sandbox.base import ExitStatus

log = logging.getLogger(__name__)

GUEST_DIR = Path(__file__).parent / "guest"
_MAX_DATAGRAM = 1 << 20


class Zygote:
    """A running zygote. Use ``await Zygote.start(interpreter)``."""

    def __init__(self, interpreter: str, process: subprocess.Popen[bytes], sock: socket.socket):
        self.interpreter = interpreter
        self._process = process
        self._sock = sock
        self._loop = asyncio.get_running_loop()
        self._ready: asyncio.Future[dict[str, Any]] = self._loop.create_future()
        self._spawns: dict[str, asyncio.Future[tuple[int, asyncio.Future[ExitStatus], int | None]]] = {}
        self._exits: dict[int, asyncio.Future[ExitStatus]] = {}
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
            zygote.close()
            raise SandboxError(f"zygote {interpreter} did not become ready: {exc}") from exc
        return zygote

    async def spawn(
        self, request: dict[str, Any], fds: list[int]
    ) -> tuple[int, asyncio.Future[ExitStatus], int | None]:
        """Fork an environment from ``request`` with ``fds`` attached (the log pipe first).
        Returns its pid, a future of its exit status, and the fd of the Runtime API socket it
        listens on inside its sandbox (namespaces tier; the caller owns it) or None."""
        if not self.alive:
            raise SandboxError(f"zygote {self.interpreter} is gone")
        env_id = request["id"]
        waiter: asyncio.Future[tuple[int, asyncio.Future[ExitStatus], int | None]] = \
            self._loop.create_future()
        self._spawns[env_id] = waiter
        data = json.dumps({"op": "spawn", **request}).encode()
        try:
            socket.send_fds(self._sock, [data], fds)
        except OSError as exc:
            self._spawns.pop(env_id, None)
            raise SandboxError(f"zygote {self.interpreter} refused a request: {exc}") from exc
        return await waiter

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
        elif op == "spawned":
            waiter = self._spawns.pop(message["id"], None)
            if waiter and not waiter.done():
                # The exit future travels with the answer: an "exited" read in the same
                # batch resolves (and forgets) it before ``spawn`` resumes.
                exited = self._exits.setdefault(message["pid"], self._loop.create_future())
                runtime_fd = unused.pop(0) if unused else None
                waiter.set_result((message["pid"], exited, runtime_fd))
        elif op == "spawn_failed":
            waiter = self._spawns.pop(message["id"], None)
            if waiter and not waiter.done():
                waiter.set_exception(SandboxError(message.get("error", "spawn failed")))
        elif op == "exited":
            status = ExitStatus(message.get("exit_code"), message.get("signal"))
            future = self._exits.pop(message["pid"], None)
            if future is not None and not future.done():
                future.set_result(status)
        else:
            log.warning("zygote %s sent an unknown message %r", self.interpreter, message)
        for fd in unused:
            os.close(fd)

    def _on_lost(self) -> None:
        """The zygote died: fail what waits on it; environments it forked are orphans now and
        are reported as killed (the caller kills their process trees)."""
        self.alive = False
        with contextlib.suppress(Exception):
            self._loop.remove_reader(self._sock.fileno())
        error = SandboxError(f"zygote {self.interpreter} exited")
        if not self._ready.done():
            self._ready.set_exception(error)
        for waiter in self._spawns.values():
            if not waiter.done():
                waiter.set_exception(error)
        for future in self._exits.values():
            if not future.done():
                future.set_result(ExitStatus(None, 9))
        self._spawns.clear()
        self._exits.clear()

    def close(self) -> None:
        """Stop the zygote; it kills its children when its socket closes."""
        if self.alive:
            self._on_lost()
        with contextlib.suppress(OSError):
            self._sock.close()
        with contextlib.suppress(OSError):
            self._process.kill()
        with contextlib.suppress(Exception):
            self._process.wait(timeout=5)


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

    def close(self) -> None:
        for zygote in self._zygotes.values():
            zygote.close()
        self._zygotes.clear()
