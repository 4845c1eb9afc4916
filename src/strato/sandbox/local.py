"""The process sandbox: environments forked from zygotes, limited by cgroup v1 where present.

This tier gives each environment its own process tree (own session), its own memory cgroup
(limit = MemorySize, peak and OOM reported), its own tmpfs ``/tmp`` sized by EphemeralStorage
in a private mount namespace, and an RLIMIT_NOFILE. Where the host lacks cgroups, memory is
watched by sampling resident memory instead (approximate; a warning says so at start).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys

from strato.errors import SandboxError
from strato.sandbox.base import EnvironmentSpec, ExitStatus
from strato.sandbox.cgroups import CgroupParent, EnvironmentCgroup
from strato.sandbox.interpreters import InterpreterRegistry
from strato.sandbox.zygote import ZygotePool

log = logging.getLogger(__name__)

NOFILE_LIMIT = 1024
#: Where the function's code is mounted (read-only) when the host has mount namespaces.
TASK_ROOT = "/var/task"
MAX_PIDS = 1024
_PAGE_MB = 1024 * 1024


def _probe_private_tmp() -> bool:
    """Can a child make a private mount namespace and mount a tmpfs? (root, no seccomp block)"""
    probe = (
        "import ctypes,sys;libc=ctypes.CDLL(None,use_errno=True);"
        "sys.exit(0 if libc.unshare(0x00020000)==0 and "
        "libc.mount(b'none',b'/',None,0x4000|0x40000,None)==0 and "
        "libc.mount(b'tmpfs',b'/tmp',b'tmpfs',0,b'size=1m')==0 else 1)"
    )
    try:
        return subprocess.run([sys.executable, "-S", "-c", probe], timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _ensure_mountpoint() -> bool:
    """/var/task must exist on the host to be a mount point (it stays empty there)."""
    try:
        os.makedirs(TASK_ROOT, exist_ok=True)
    except OSError as exc:
        log.warning("cannot create %s (%s): code is not mounted at /var/task", TASK_ROOT, exc)
        return False
    return True


class LocalProcess:
    """An environment started by ``ProcessSandbox``."""

    def __init__(
        self,
        pid: int,
        log_fd: int,
        exited: asyncio.Future[ExitStatus],
        cgroup: EnvironmentCgroup | None,
        memory_mb: int,
    ) -> None:
        self.pid = pid
        self.log_fd = log_fd
        self.exited = exited
        self._cgroup = cgroup
        self._memory_mb = memory_mb
        self._oom_by_watch = False
        self._peak_sampled = 0

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        if self._cgroup is not None:
            self._cgroup.kill_all()

    def peak_memory_mb(self) -> int:
        if self._cgroup is not None:
            with contextlib.suppress(OSError, ValueError):
                return -(-self._cgroup.peak_bytes() // _PAGE_MB)
        return max(self._peak_sampled, self._rss_mb(peak=True))

    def oom_killed(self) -> bool:
        if self._cgroup is not None:
            return self._cgroup.oom_killed()
        return self._oom_by_watch

    def release(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.log_fd)
        if self._cgroup is not None:
            self._cgroup.kill_all()
            self._cgroup.remove()

    def _rss_mb(self, *, peak: bool = False) -> int:
        key = "VmHWM:" if peak else "VmRSS:"
        try:
            with open(f"/proc/{self.pid}/status", "rb") as status:
                for line in status:
                    if line.startswith(key.encode()):
                        return -(-int(line.split()[1]) // 1024)
        except OSError:
            pass
        return 0

    def watch_memory(self) -> None:
        """Fallback enforcement: kill the environment when its resident memory is over."""
        rss = self._rss_mb()
        self._peak_sampled = max(self._peak_sampled, rss)
        if rss > self._memory_mb and not self.exited.done():
            self._oom_by_watch = True
            self.kill()


class ProcessSandbox:
    """Sandbox that forks environments from per-interpreter zygotes."""

    def __init__(
        self,
        interpreters: InterpreterRegistry,
        *,
        use_cgroups: bool = True,
        private_tmp: bool = True,
    ) -> None:
        self._interpreters = interpreters
        self._zygotes = ZygotePool()
        self._cgroups = CgroupParent.probe() if use_cgroups else None
        self._private_tmp = private_tmp and _probe_private_tmp() and _ensure_mountpoint()
        self._watched: dict[int, LocalProcess] = {}
        self._watcher: asyncio.Task[None] | None = None
        if private_tmp and not self._private_tmp:
            log.warning("no mount namespaces: environments share the host's /tmp")
        parts = ["process sandbox (zygote fork)"]
        parts.append("cgroup v1 memory limits" if self._cgroups else "memory by RSS sampling")
        parts.append("private tmpfs /tmp" if self._private_tmp else "shared /tmp")
        self.description = ", ".join(parts)

    def _interpreter_for(self, python_version: str | None) -> str:
        if python_version is None:
            return os.path.realpath(sys.executable)
        return self._interpreters.require(python_version)

    def task_root(self, code_dir: str) -> str:
        """The path of the function's code as the environment sees it."""
        return TASK_ROOT if self._private_tmp else code_dir

    async def prepare(self, python_version: str | None) -> None:
        await self._zygotes.get(self._interpreter_for(python_version))

    async def start(self, spec: EnvironmentSpec) -> LocalProcess:
        zygote = await self._zygotes.get(self._interpreter_for(spec.python_version))
        cgroup = (
            self._cgroups.create(spec.env_id, spec.memory_mb, MAX_PIDS) if self._cgroups else None
        )
        read_fd, write_fd = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        os.set_blocking(write_fd, True)
        request = {
            "id": spec.env_id,
            "mode": "python" if spec.argv is None else "exec",
            "argv": list(spec.argv or ()),
            "env": dict(spec.env),
            "cwd": TASK_ROOT if self._private_tmp else spec.cwd,
            "cgroups": cgroup.procs_files if cgroup else [],
            "tmpfs_mb": spec.tmp_mb if self._private_tmp else None,
            "task_root": spec.cwd if self._private_tmp else None,
            "nofile": NOFILE_LIMIT,
        }
        try:
            pid, exited = await zygote.spawn(request, write_fd)
        except SandboxError:
            os.close(read_fd)
            if cgroup is not None:
                cgroup.remove()
            raise
        finally:
            os.close(write_fd)
        process = LocalProcess(pid, read_fd, exited, cgroup, spec.memory_mb)
        if cgroup is None:
            self._watch(process)
        return process

    def _watch(self, process: LocalProcess) -> None:
        self._watched[process.pid] = process
        process.exited.add_done_callback(lambda _: self._watched.pop(process.pid, None))
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.ensure_future(self._watch_loop())

    async def _watch_loop(self) -> None:
        while self._watched:
            for process in list(self._watched.values()):
                process.watch_memory()
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        self._zygotes.close()
        if self._watcher is not None:
            self._watcher.cancel()
        if self._cgroups is not None:
            self._cgroups.remove()
