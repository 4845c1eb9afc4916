"""How execution environments are started: the Sandbox Protocol.

A sandbox turns an ``EnvironmentSpec`` into a running process tree whose stdout and stderr go
to a pipe the platform reads, and reports how it ended. It knows nothing of invocations: the
process talks to the platform only through the Runtime API named in its environment, or, for
the built-in runtime, through a runtime channel (a connected unix socket, the same operations
without HTTP; ``strato.runtime_api.channel``).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

#: Egress modes: ``internet`` (Lambda's default outside a VPC, the host's own services out of
#: reach) or ``none`` (loopback only; what a VpcConfig maps to).
EGRESS_INTERNET = "internet"
EGRESS_NONE = "none"


@dataclass(frozen=True)
class Standby:
    """How a language runtime boots ahead of its function, where the sandbox keeps standby
    environments (``sandbox/standby.py``): ``argv`` starts its client waiting on fd 3 for
    the environment's variables (one JSON object, then the end of the pipe) in a sandbox
    with ``views`` shown and no code yet; ``reads_at_start(name)`` says whether the runtime
    reads a variable as it starts (a standby booted without the function's value of it
    cannot honour it)."""

    argv: tuple[str, ...]
    views: tuple[tuple[str, str], ...]
    reads_at_start: Callable[[str], bool]


@dataclass(frozen=True)
class EnvironmentSpec:
    """What to start. ``argv`` is None for the built-in Python runtime (forked from a warm
    interpreter of ``python_version``) and an absolute command for custom runtimes."""

    env_id: str
    python_version: str | None
    argv: tuple[str, ...] | None
    env: Mapping[str, str]
    #: The function's unpacked code on the host.
    cwd: str
    memory_mb: int
    tmp_mb: int
    egress: str = EGRESS_INTERNET
    #: The host port the platform serves this environment's Runtime API on, when the sandbox
    #: does not provide an endpoint inside the environment (``Sandbox.runtime_api`` is None).
    runtime_api_port: int | None = None
    #: Host directories the environment sees at Lambda's paths, ``(host dir, path inside)``:
    #: a language's prefix at /var/lang, its runtime at /var/runtime, layers at /opt. Shown
    #: read-only where the sandbox builds a root (``Sandbox.shows_views``); elsewhere the
    #: environment reads them at their host paths, which ``argv`` and ``env`` then name.
    views: tuple[tuple[str, str], ...] = ()
    #: How the runtime can boot ahead of the function, or None (it cannot).
    standby: Standby | None = None


@dataclass(frozen=True)
class ExitStatus:
    """How the environment's main process ended: an exit code or a signal number."""

    exit_code: int | None
    signal: int | None

    def describe(self) -> str:
        """Lambda's words for it: ``exit status 1`` / ``signal: killed``."""
        if self.signal is not None:
            names = {9: "killed", 11: "segmentation fault", 6: "aborted", 15: "terminated"}
            return f"signal: {names.get(self.signal, str(self.signal))}"
        return f"exit status {self.exit_code}"


class EnvironmentProcess(Protocol):
    """A started environment. ``log_fd`` is the non-blocking read end of its output pipe,
    owned by the caller until ``release``."""

    pid: int
    #: The host uid the environment's processes run as (the sockets they make are this
    #: uid's: a Runtime API served on a host port serves this uid only).
    uid: int
    log_fd: int
    exited: asyncio.Future[ExitStatus]
    #: The listening socket of the Runtime API inside the environment's own network, for the
    #: platform to serve (owned by the caller), or None when ``Sandbox.runtime_api`` is None.
    runtime_socket: socket.socket | None
    #: The platform's end of the built-in runtime's channel (owned by the caller), or None
    #: when the environment runs a custom runtime (it has only the HTTP Runtime API).
    runtime_channel: socket.socket | None
    #: The listening socket inside the environment's own network through which it reaches
    #: strato's API (``Sandbox.platform_api``), for the platform to serve (owned by the
    #: caller), or None when the environment reaches strato's listen address itself.
    platform_socket: socket.socket | None

    def kill(self) -> None:
        """SIGKILL the whole process tree. Idempotent; ``exited`` resolves afterwards."""

    def peak_memory_mb(self) -> int:
        """Peak memory used by the environment so far, in MB (rounded up)."""

    def oom_killed(self) -> bool:
        """True if the environment was killed for exceeding its memory."""

    def release(self) -> None:
        """Free what the sandbox holds for the environment. Only after ``exited``."""


class Sandbox(Protocol):
    #: Human-readable description of the confinement in force (for ``strato doctor``/logs).
    description: str
    #: ``AWS_LAMBDA_RUNTIME_API`` as environments see it when the sandbox gives each one an
    #: endpoint of its own (``127.0.0.1:9001``); None when the platform picks a host port.
    runtime_api: str | None
    #: ``host:port`` where environments reach strato's API when the sandbox gives each one an
    #: endpoint of its own (``127.0.0.1:<strato's port>``); None when they reach strato's
    #: listen address.
    platform_api: str | None

    async def start(self, spec: EnvironmentSpec) -> EnvironmentProcess:
        """Start the environment. Raises SandboxError with the step that failed."""

    async def restart(self, process: EnvironmentProcess, spec: EnvironmentSpec) -> EnvironmentProcess:
        """Start ``spec`` again in the execution environment ``process`` ran in, once
        ``process`` has exited (its runtime timed out or crashed): a new runtime with nothing
        of the old one's memory, the same uid and the same ``/tmp``, its files kept. Takes
        over what carries across (the caller still releases ``process``, which then frees
        only the rest). Raises SandboxError; ``process`` then still holds everything."""

    #: Whether ``EnvironmentSpec.views`` appear at their paths inside (a root of the
    #: environment's own); when False, an environment reads those directories at their host
    #: paths.
    shows_views: bool

    def task_root(self, code_dir: str) -> str:
        """Where an environment sees the code stored at ``code_dir`` (``/var/task`` when the
        sandbox mounts it there)."""

    async def prepare(self, python_version: str | None) -> None:
        """Warm whatever makes ``start`` fast for this runtime (e.g. a zygote)."""

    async def close(self) -> None:
        """Kill every environment and helper process."""
