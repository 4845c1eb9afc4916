"""cgroup v1 groups for execution environments: memory limit, peak usage, OOM kills, a limit on
socket buffers, a CPU share in proportion to memory (Lambda's rule: 1,769 MB is one vCPU), a
pids limit, and the list of processes to kill when an environment is destroyed.

Socket buffers are kernel memory that cgroup v1 does not count in ``memory.usage_in_bytes``:
a function could hold gigabytes of the host's in loopback connections it never reads. Writing
``memory.kmem.tcp.limit_in_bytes`` turns on socket accounting for the group (sockets made by
its processes afterwards: TCP's and UDP's buffers are charged to that counter; unix sockets'
are ordinary kernel memory, within ``memory.limit_in_bytes`` already) and bounds it at
``socket_memory_bytes``: past it, sends block and receive windows shrink.

Groups live under the memory (and pids) hierarchy *below the cgroup strato itself runs in*,
at ``<hierarchy>/<own path>/strato-<pid>/<name>``, so that a host that confines strato also
confines its functions. What a strato that was killed left there is removed by the next one
to start. A group can be made ahead of demand without limits (for a spare
process, ``sandbox/spares.py``) and given its environment's name and limits when it is used.

Removal never waits: a group whose processes have not all exited yet (the kernel frees a
killed process asynchronously; in the fallback tier a tree may even keep forking) is kept as
a leftover, killed and tried again by ``CgroupParent.retry_leftovers`` until it can go.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from strato.errors import SandboxError

log = logging.getLogger(__name__)

_ROOT = Path("/sys/fs/cgroup")
#: Memory that buys one full vCPU on Lambda.
MB_PER_VCPU = 1769
#: CFS period (the kernel's default, left as it is); the quota is this times the
#: environment's share of a vCPU.
CPU_PERIOD_US = 100_000
_MIN_QUOTA_US = 1_000
#: Where cgroup v1 limits (and, once written, accounts) an environment's socket buffers.
_TCP_LIMIT = "memory.kmem.tcp.limit_in_bytes"
#: How often ``CgroupParent.remove`` looks again at groups whose processes are exiting.
_REMOVE_POLL_S = 0.01


def socket_memory_bytes(memory_mb: int) -> int:
    """Socket buffers an environment of ``memory_mb`` may hold (pure): 3/32 of its memory,
    the share Linux gives TCP on a machine of that size (``tcp_mem``'s hard limit is 3/32 of
    the memory it finds at boot), so that environments whose memory adds up to the host's
    cannot together exhaust the host's own TCP memory."""
    return memory_mb * 1024 * 1024 * 3 // 32


def cpu_quota_us(memory_mb: int, period_us: int = CPU_PERIOD_US) -> int:
    """CPU time per period an environment of ``memory_mb`` may use (pure)."""
    return max(_MIN_QUOTA_US, period_us * memory_mb // MB_PER_VCPU)


def _write(path: Path, data: bytes) -> None:
    """One write to a control file (cheaper than a text-mode Path.write_text)."""
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _remove_stale_siblings(own: Path) -> None:
    """Remove the empty groups a strato that is gone left beside ``own`` (``strato-<pid>`` of
    a pid that is not running: a server that was killed never removed its groups; its
    environments died with its zygote). A group with a process in it is left alone: its pid
    may be of another pid namespace that shares this cgroup."""
    for sibling in own.parent.glob("strato-*"):
        pid = sibling.name.removeprefix("strato-")
        if sibling == own or not pid.isdigit() or Path(f"/proc/{pid}").exists():
            continue
        for group in [p for p in sibling.iterdir() if p.is_dir()]:
            with contextlib.suppress(OSError):
                group.rmdir()
        with contextlib.suppress(OSError):
            sibling.rmdir()


def _own_path(controller: str) -> str | None:
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return path
    return None


@dataclass
class CgroupParent:
    """The directory under which environment groups are made, one per controller, and the
    groups given up that could not be removed yet."""

    memory: Path
    pids: Path | None
    cpu: Path | None = None
    leftovers: list[EnvironmentCgroup] = field(default_factory=list)

    @classmethod
    def probe(cls) -> CgroupParent | None:
        """Create strato's parent groups, or return None (with the reason logged) when the
        host has no writable cgroup v1 memory controller."""
        own = _own_path("memory")
        if own is None or not (_ROOT / "memory").is_dir():
            log.warning("no cgroup v1 memory controller: memory limits are approximate")
            return None
        name = f"strato-{os.getpid()}"
        memory = _ROOT / "memory" / own.lstrip("/") / name
        try:
            memory.mkdir(exist_ok=True)
        except OSError as exc:
            log.warning("cannot create cgroup %s (%s): memory limits are approximate", memory, exc)
            return None
        if not (memory / _TCP_LIMIT).exists():
            log.warning("no %s in the memory controller: environments' socket buffers are "
                        "not limited", _TCP_LIMIT)
        pids: Path | None = None
        own_pids = _own_path("pids")
        if own_pids is not None and (_ROOT / "pids").is_dir():
            pids = _ROOT / "pids" / own_pids.lstrip("/") / name
            try:
                pids.mkdir(exist_ok=True)
            except OSError:
                pids = None
        cpu: Path | None = None
        own_cpu = _own_path("cpu")
        if own_cpu is not None and (_ROOT / "cpu").is_dir():
            cpu = _ROOT / "cpu" / own_cpu.lstrip("/") / name
            try:
                cpu.mkdir(exist_ok=True)
            except OSError as exc:
                log.warning("cannot create cgroup %s (%s): CPU is not limited", cpu, exc)
                cpu = None
        else:
            log.warning("no cgroup v1 cpu controller: CPU is not limited")
        for path in (memory, pids, cpu):
            if path is not None:
                _remove_stale_siblings(path)
        return cls(memory, pids, cpu)

    def create(self, name: str, memory_mb: int | None, max_pids: int | None,
               *, limit_cpu: bool = True) -> EnvironmentCgroup:
        """Make the groups ``name`` with their limits (none for memory and CPU when
        ``memory_mb`` is None: ``EnvironmentCgroup.set_limits`` gives them later). Raises
        SandboxError."""
        memory = self.memory / name
        pids = self.pids / name if self.pids else None
        cpu = self.cpu / name if self.cpu and limit_cpu else None
        group = EnvironmentCgroup(memory, pids, cpu)
        try:
            memory.mkdir()
            if pids is not None:
                pids.mkdir()
                if max_pids:
                    _write(pids / "pids.max", b"%d" % max_pids)
            if cpu is not None:
                cpu.mkdir()
            if memory_mb is not None:
                group.set_limits(memory_mb)
        except OSError as exc:
            group.try_remove()
            raise SandboxError(f"cannot set up cgroup {name}: {exc}") from exc
        return group

    def discard(self, group: EnvironmentCgroup) -> None:
        """Kill what is left in ``group`` and remove it, now if it is empty, else later
        (``retry_leftovers``). Never blocks."""
        group.kill_all()
        if not group.try_remove():
            self.leftovers.append(group)

    def retry_leftovers(self) -> bool:
        """Kill and try to remove the leftovers again; True while some remain."""
        remaining = []
        for group in self.leftovers:
            group.kill_all()
            if not group.try_remove():
                remaining.append(group)
        self.leftovers = remaining
        return bool(remaining)

    def remove(self, timeout: float = 5.0) -> None:
        """Kill what is left in any group (leftovers included), remove every group, then
        the parents. Waits up to ``timeout`` seconds for the kernel to free killed
        processes, polling."""
        names = [p.name for p in self.memory.iterdir() if p.is_dir()] \
            if self.memory.is_dir() else []
        self.leftovers = [EnvironmentCgroup(self.memory / name,
                                            self.pids / name if self.pids else None,
                                            self.cpu / name if self.cpu else None)
                          for name in names]
        deadline = time.monotonic() + timeout
        while self.retry_leftovers() and time.monotonic() < deadline:
            time.sleep(_REMOVE_POLL_S)
        for path in (self.memory, self.pids, self.cpu):
            if path is not None:
                with contextlib.suppress(OSError):
                    path.rmdir()


class EnvironmentCgroup:
    """The groups of one environment. ``procs_files`` are what a new process joins."""

    def __init__(self, memory: Path, pids: Path | None, cpu: Path | None = None) -> None:
        self.memory = memory
        self.pids = pids
        self.cpu = cpu
        self._peak_fd: int | None = None

    @property
    def procs_files(self) -> list[str]:
        files = [str(self.memory / "cgroup.procs")]
        for group in (self.pids, self.cpu):
            if group is not None:
                files.append(str(group / "cgroup.procs"))
        return files

    def peak_bytes(self) -> int:
        """Peak memory use of the whole group since it was made (cheap: one pread)."""
        if self._peak_fd is None:
            self._peak_fd = os.open(self.memory / "memory.max_usage_in_bytes", os.O_RDONLY)
        return int(os.pread(self._peak_fd, 32, 0))

    def oom_killed(self) -> bool:
        """True if the kernel's OOM killer has killed a process of this group."""
        try:
            text = (self.memory / "memory.oom_control").read_text()
        except OSError:
            return False
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value) > 0
        # Older kernels have no counter; a hit limit is the best evidence left.
        try:
            return int((self.memory / "memory.failcnt").read_text()) > 0
        except OSError:
            return False

    def pids_in_group(self) -> list[int]:
        try:
            return [int(p) for p in (self.memory / "cgroup.procs").read_text().split()]
        except OSError:
            return []

    def rename(self, name: str) -> None:
        """Rename the groups (cgroup v1 allows it within a parent): a group made ahead of
        demand takes the name of the environment it serves. Raises OSError."""
        renamed = []
        for path in (self.memory, self.pids, self.cpu):
            if path is not None:
                target = path.with_name(name)
                os.rename(path, target)
                renamed.append(target)
        self.memory, *rest = renamed
        self.pids = rest.pop(0) if self.pids is not None else None
        self.cpu = rest.pop(0) if self.cpu is not None else None

    def set_limits(self, memory_mb: int) -> None:
        """Limit memory (and swap) to ``memory_mb``, socket buffers to
        ``socket_memory_bytes(memory_mb)`` and CPU in proportion to memory (over the kernel's
        default period, ``CPU_PERIOD_US``). Called before any process of the environment
        makes a socket: only sockets made after the first call are accounted. Raises
        OSError."""
        limit = b"%d" % (memory_mb * 1024 * 1024)
        memory, swap = self.memory / "memory.limit_in_bytes", self.memory / "memory.memsw.limit_in_bytes"
        # The kernel keeps memory <= memory+swap at every write: lowering, memory goes
        # first; raising (a spare made for a smaller size), memory+swap does.
        try:
            _write(memory, limit)
        except OSError as exc:
            if exc.errno != errno.EINVAL or not swap.exists():
                raise
            _write(swap, limit)
            _write(memory, limit)
        else:
            with contextlib.suppress(FileNotFoundError):  # absent when swap accounting is off
                _write(swap, limit)
        with contextlib.suppress(FileNotFoundError):  # absent on kernels that dropped it: probe
            _write(self.memory / _TCP_LIMIT, b"%d" % socket_memory_bytes(memory_mb))
        if self.cpu is not None:
            _write(self.cpu / "cpu.cfs_quota_us", b"%d" % cpu_quota_us(memory_mb))

    def kill_all(self) -> None:
        """SIGKILL every process in the group now, including ones that left the process
        group (one pass: a process forked meanwhile is found by the next)."""
        for pid in self.pids_in_group():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def try_remove(self) -> bool:
        """Remove the groups if they are empty; True when none is left. Safe to call more
        than once."""
        if self._peak_fd is not None:
            os.close(self._peak_fd)
            self._peak_fd = None
        gone = True
        for path in (self.memory, self.pids, self.cpu):
            if path is not None:
                try:
                    path.rmdir()
                except FileNotFoundError:
                    pass
                except OSError:
                    gone = False
        return gone
