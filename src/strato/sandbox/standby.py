"""Standby environments: a language runtime booted ahead of its function, for runtimes that
cannot fork from a warm interpreter (Node.js: ``Launch.standby``).

A standby is an environment of the namespaces tier that took the whole recipe before any
function asked for it: cgroups, pid, mount, ipc and uts namespaces, its network namespace (a
new one with its loopback, or, for internet egress, one of the network pool's), /proc, the
Runtime API and platform API sockets, the runtime's views, a /tmp of the default size,
pivot_root, its own uid and user namespace, capabilities dropped, no_new_privs, seccomp. All
but the two function-specific things: its code (/var/task is an empty mount point) and its
variables. Then it exec'd the runtime's client in standby mode, which loads its own modules,
says so (one byte on fd 3, a connected unix socket) and waits, blocked on fd 3. It is ready
from that byte on: a standby taken before would make its cold start wait for the runtime's
boot.

Becoming an environment (``StandbyEnvironment.become``): the zygote forks a helper that
shows the function's code at the standby's /var/task from outside (``Confiner.show_code``:
the standby has no privilege left to mount anything), then the platform writes the
environment's variables to the socket and closes it; the client reads them to the end,
closes its fd, and goes on as a freshly exec'd one (INIT, then ``invocation/next``). A
standby serves one environment only: nothing of any function was ever in it before, and it
is destroyed with its environment.

A standby fits a start (``refusal``) when the environment is fresh (a restart execs, in the
environment's own /tmp), has the default /tmp size, the runtime's views and nothing more
(no layers), and the same values as the standby for the variables the runtime reads as it
starts. Anything else starts the runtime afresh, as without standbys.

``StandbyPool`` keeps ``size`` standbys of one runtime (one ``Standby.argv`` and views) and
one egress (loopback only, or internet: each has its pool), made on first demand and again
each time one is taken or lost. All methods run on the event loop's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import signal
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from strato.errors import SandboxError
from strato.sandbox.base import EGRESS_NONE, EnvironmentSpec, ExitStatus, Standby
from strato.sandbox.cgroups import CgroupParent, EnvironmentCgroup
from strato.sandbox.zygote import Zygote

if TYPE_CHECKING:
    from strato.sandbox.local import NetworkPool

log = logging.getLogger(__name__)

#: Standbys' ids, and so the names of their cgroups until they become environments.
STANDBY_PREFIX = "standby-"
#: The /tmp size of a standby: Lambda's default EphemeralStorage.
STANDBY_TMP_MB = 512
#: ``LANG`` of every Lambda environment
#: (https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html).
LAMBDA_LANG = "en_US.UTF-8"
#: How long a pool waits before booting again after a standby could not be made.
RETRY_AFTER_S = 5.0
#: How long after a standby is taken its replacement boots: the cold start that took it
#: does not share the CPU with a node's start it does not need.
REFILL_AFTER_S = 0.1
#: How long a standby may take to boot (Lambda's INIT limit).
BOOT_TIMEOUT_S = 10.0
#: What the client says on fd 3 once it is booted (``standby.mjs``).
BOOTED = b"B"


def refusal(spec: EnvironmentSpec, boot_variables: Mapping[str, str]) -> str | None:
    """Why a standby of ``spec.standby`` booted with ``boot_variables`` (and the egress
    ``spec`` has: the pool's) cannot become the fresh environment ``spec``, or None when it
    can. Pure."""
    standby = spec.standby
    if standby is None:
        return "the runtime has no standby mode"
    if spec.tmp_mb != STANDBY_TMP_MB:
        return f"/tmp of {spec.tmp_mb} MB (standbys have {STANDBY_TMP_MB} MB)"
    if tuple(spec.views) != tuple(standby.views):
        return "views beyond the runtime's own (layers)"
    names = {name for name in (*spec.env, *boot_variables) if standby.reads_at_start(name)}
    for name in sorted(names):
        if spec.env.get(name) != boot_variables.get(name):
            return f"{name} is read as the runtime starts"
    return None


def boot_variables(standby: Standby, platform: Mapping[str, str]) -> dict[str, str]:
    """The variables a standby of ``standby`` boots with: those of the platform's own
    ``platform`` (never a function's) that its runtime reads as it starts. Pure."""
    return {name: value for name, value in platform.items() if standby.reads_at_start(name)}


@dataclass
class StandbyEnvironment:
    """A booted standby, as its zygote answered for it: what the environment it becomes
    holds (the caller of ``StandbyPool.take`` owns it all from then on)."""

    id: str
    pid: int
    exited: asyncio.Future[ExitStatus]
    uid: int
    cgroup: EnvironmentCgroup | None
    #: The memory size its cgroup's limits are set for.
    memory_mb: int
    #: The read end of its output pipe (non-blocking), and the platform's end of the socket
    #: its variables go through.
    log_fd: int
    variables: socket.socket
    runtime_socket: socket.socket
    platform_socket: socket.socket
    #: The detached tmpfs mount its /tmp is a clone of (``Sandbox.restart`` carries it).
    tmp_mount: int
    zygote: Zygote
    #: Gives its network namespace back to the network pool, when it has one of the pool's.
    release_network: Callable[[], None] | None = None

    async def become(self, env_id: str, code_dir: str, variables: Mapping[str, str]) -> None:
        """Show ``code_dir`` at its /var/task, then give it ``variables``: it runs the
        function from here on. Once. Raises SandboxError (the caller then ``abandon``s it)."""
        await self.zygote.show(f"{env_id}.code", self.pid, code_dir)
        try:
            self.variables.sendall(json.dumps(dict(variables)).encode())  # a few KB: at once
        except OSError as exc:
            raise SandboxError(f"standby {self.id} did not take its variables: {exc}") from exc
        finally:
            self.variables.close()

    def abandon(self) -> None:
        """Kill it and close what the platform holds of it (its uid and cgroup stay the
        caller's to release). Idempotent."""
        _kill(self.pid)
        for fd in (self.log_fd, self.tmp_mount):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.log_fd = self.tmp_mount = -1
        self.variables.close()
        self.runtime_socket.close()
        self.platform_socket.close()


class StandbyPool:
    """Standbys of one runtime and ``egress`` (see the module docstring). ``request`` is
    the zygote's spawn request for one, without its ``id``, ``uid``/``gid``, ``cgroups`` and
    ``netns``; ``uids`` acquires and releases a uid; ``network`` (internet egress) gives
    each a network namespace of its pool; ``admit`` bounds the starts in progress (the
    sandbox's); ``discard`` removes a cgroup."""

    def __init__(self, zygote: Callable[[], Awaitable[Zygote]], *, size: int,
                 request: dict[str, Any], boot_variables: Mapping[str, str],
                 uids: tuple[Callable[[], int], Callable[[int], None]],
                 cgroups: CgroupParent | None, max_pids: int, limit_cpu: bool,
                 admit: asyncio.Semaphore, discard: Callable[[EnvironmentCgroup], None],
                 memory_mb: int, egress: str = EGRESS_NONE,
                 network: NetworkPool | None = None) -> None:
        self.size = size
        self.egress = egress
        self._network = network
        self.boot_variables = dict(boot_variables)
        self._zygote = zygote
        self._request = request
        self._acquire_uid, self._release_uid = uids
        self._cgroups = cgroups
        self._max_pids = max_pids
        self._limit_cpu = limit_cpu
        self._admit = admit
        self._discard = discard
        self._memory_mb = memory_mb
        self._ready: dict[str, StandbyEnvironment] = {}
        self._booting: set[asyncio.Task[None]] = set()
        self._retry_at = 0.0
        self._refill: asyncio.TimerHandle | None = None
        self._closed = False

    def take(self, spec: EnvironmentSpec) -> StandbyEnvironment | None:
        """The oldest ready standby that may become ``spec`` (``refusal``), or None; the
        caller owns it now (its cgroup's limits are for ``StandbyEnvironment.memory_mb``).
        Either way another boots shortly, its limits set for ``spec.memory_mb``."""
        self._memory_mb = spec.memory_mb
        if self._refill is None and not self._closed:
            self._refill = asyncio.get_running_loop().call_later(REFILL_AFTER_S, self.refill)
        reason = refusal(spec, self.boot_variables)
        if reason is not None:
            log.debug("environment %s starts its runtime afresh: %s", spec.env_id, reason)
            return None
        while self._ready:
            standby = self._ready.pop(next(iter(self._ready)))
            if not standby.exited.done():
                return standby
            self._lose(standby)
        return None

    def refill(self) -> None:
        """Start booting standbys until ``size`` are ready or on their way."""
        self._refill = None
        while not self._closed and len(self._ready) + len(self._booting) < self.size \
                and time.monotonic() >= self._retry_at:
            task = asyncio.ensure_future(self._boot())
            self._booting.add(task)
            task.add_done_callback(self._booting.discard)

    async def _boot(self) -> None:
        name = STANDBY_PREFIX + uuid.uuid4().hex
        held: list[Callable[[], None]] = []
        try:
            async with self._admit:
                if self._closed:
                    return
                standby = await self._spawn(name, held)
        except SandboxError as exc:
            _run_all(held)
            if self._closed:
                return
            log.warning("cannot boot a standby environment (cold starts start the runtime "
                        "afresh; trying again in %.0f s): %s", RETRY_AFTER_S, exc)
            self._retry_at = time.monotonic() + RETRY_AFTER_S
            asyncio.get_running_loop().call_later(RETRY_AFTER_S, self.refill)
            return
        except BaseException:
            _run_all(held)
            raise
        if self._closed:
            standby.abandon()
            self._free(standby)
            return
        self._ready[name] = standby
        standby.exited.add_done_callback(lambda _: self._lost(name))

    async def _spawn(self, name: str, held: list[Callable[[], None]]) -> StandbyEnvironment:
        """Spawn one standby; what it holds joins ``held`` until it is ready."""
        zygote = await self._zygote()
        uid = self._acquire_uid()
        held.append(lambda: self._release_uid(uid))
        memory_mb = self._memory_mb
        cgroup = None
        if self._cgroups is not None:
            try:
                cgroup = self._cgroups.create(name, memory_mb, self._max_pids,
                                              limit_cpu=self._limit_cpu)
            except OSError as exc:
                raise SandboxError(f"cannot limit standby {name}: {exc}") from exc
            group = cgroup
            held.append(lambda: self._discard(group))
        log_read, log_write = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        os.set_blocking(log_write, True)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        held.append(lambda: os.close(log_read))
        held.append(ours.close)
        request = {**self._request, "id": name, "uid": uid, "gid": uid, "netns": False,
                   "cgroups": cgroup.procs_files if cgroup is not None else []}
        fds = [log_write]
        release_network = None
        try:
            if self._network is not None:
                network = self._network
                namespace = await network.acquire()
                release_network = functools.partial(network.release, namespace)
                held.append(release_network)
                request["netns"] = True
                fds.append(namespace.fd)
            answer = await zygote.spawn(request, [*fds, theirs.fileno()])
        finally:
            os.close(log_write)
            theirs.close()
        pid, exited, runtime_fd, platform_fd, tmp_fd = answer
        held.append(lambda: _kill(pid))
        for fd in (runtime_fd, platform_fd, tmp_fd):
            if fd is not None:
                held.append(functools.partial(os.close, fd))
        if runtime_fd is None or platform_fd is None or tmp_fd is None:
            raise SandboxError(f"standby {name} handed over no sockets or /tmp")
        ours.setblocking(False)
        try:
            said = await asyncio.wait_for(asyncio.get_running_loop().sock_recv(ours, 1),
                                          BOOT_TIMEOUT_S)
        except (TimeoutError, OSError) as exc:
            raise SandboxError(f"standby {name} did not boot: {exc!r}") from exc
        if said != BOOTED:
            raise SandboxError(f"standby {name} closed its socket as it booted")
        ours.setblocking(True)
        held.clear()
        return StandbyEnvironment(name, pid, exited, uid, cgroup, memory_mb, log_read, ours,
                                  socket.socket(fileno=runtime_fd),
                                  socket.socket(fileno=platform_fd), tmp_fd, zygote,
                                  release_network)

    def _lost(self, name: str) -> None:
        """A standby ended before it was taken: free what it held, boot another."""
        standby = self._ready.pop(name, None)
        if standby is not None:
            self._lose(standby)
            self.refill()

    def _lose(self, standby: StandbyEnvironment) -> None:
        log.warning("standby environment %s ended before it was used: %s", standby.id,
                    standby.exited.result().describe() if standby.exited.done()
                    and not standby.exited.cancelled() else "unknown")
        standby.abandon()
        self._free(standby)

    def _free(self, standby: StandbyEnvironment) -> None:
        if standby.release_network is not None:
            standby.release_network()
        self._release_uid(standby.uid)
        if standby.cgroup is not None:
            self._discard(standby.cgroup)

    async def close(self) -> None:
        """Boot no more; kill the ready standbys and free what they hold. Idempotent."""
        self._closed = True
        if self._refill is not None:
            self._refill.cancel()
        for task in list(self._booting):
            task.cancel()
        for task in list(self._booting):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for standby in self._ready.values():
            standby.abandon()
            self._free(standby)
        self._ready.clear()


def _kill(pid: int) -> None:
    """SIGKILL a standby's process group and itself (the zygote reaps it)."""
    for kill in (os.killpg, os.kill):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            kill(pid, signal.SIGKILL)


def _run_all(cleanups: list[Callable[[], None]]) -> None:
    for cleanup in reversed(cleanups):
        try:
            cleanup()
        except OSError as exc:
            log.warning("releasing a standby's resources: %s", exc)
    cleanups.clear()
