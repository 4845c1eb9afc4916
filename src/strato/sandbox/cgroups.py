"""cgroup v1 groups for execution environments: memory limit, peak usage, OOM kills, a CPU
share in proportion to memory (Lambda's rule: 1,769 MB is one vCPU), a pids limit, and the
list of processes to kill when an environment is destroyed.

Groups live under the memory (and pids) hierarchy *below the cgroup strato itself runs in*,
at ``<hierarchy>/<own path>/strato-<pid>/<environment id>``, so that a host that confines strato
also confines its functions.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from strato.errors import SandboxError

log = logging.getLogger(__name__)

_ROOT = Path("/sys/fs/cgroup")
#: Memory that buys one full vCPU on Lambda.
MB_PER_VCPU = 1769
#: CFS period; the quota is this times the environment's share of a vCPU.
CPU_PERIOD_US = 100_000
_MIN_QUOTA_US = 1_000


def cpu_quota_us(memory_mb: int, period_us: int = CPU_PERIOD_US) -> int:
    """CPU time per period an environment of ``memory_mb`` may use (pure)."""
    return max(_MIN_QUOTA_US, period_us * memory_mb // MB_PER_VCPU)


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
    """The directory under which environment groups are made, one per controller."""

    memory: Path
    pids: Path | None
    cpu: Path | None = None

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
        return cls(memory, pids, cpu)

    def create(self, env_id: str, memory_mb: int, max_pids: int | None,
               *, limit_cpu: bool = True) -> EnvironmentCgroup:
        """Make the groups of one environment with its limits. Raises SandboxError."""
        memory = self.memory / env_id
        pids = self.pids / env_id if self.pids else None
        cpu = self.cpu / env_id if self.cpu and limit_cpu else None
        try:
            memory.mkdir()
            limit = str(memory_mb * 1024 * 1024)
            (memory / "memory.limit_in_bytes").write_text(limit)
            with contextlib.suppress(OSError):  # absent when swap accounting is off
                (memory / "memory.memsw.limit_in_bytes").write_text(limit)
            if pids is not None:
                pids.mkdir()
                if max_pids:
                    (pids / "pids.max").write_text(str(max_pids))
            if cpu is not None:
                cpu.mkdir()
                (cpu / "cpu.cfs_period_us").write_text(str(CPU_PERIOD_US))
                (cpu / "cpu.cfs_quota_us").write_text(str(cpu_quota_us(memory_mb)))
        except OSError as exc:
            group = EnvironmentCgroup(memory, pids, cpu)
            group.remove()
            raise SandboxError(f"cannot set up cgroup for environment {env_id}: {exc}") from exc
        return EnvironmentCgroup(memory, pids, cpu)

    def remove(self) -> None:
        """Kill what is left in any environment group, then remove every group."""
        for child in [p for p in self.memory.iterdir() if p.is_dir()] if self.memory.is_dir() else []:
            EnvironmentCgroup(child, self.pids / child.name if self.pids else None,
                              self.cpu / child.name if self.cpu else None).remove_now()
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

    def kill_all(self) -> None:
        """SIGKILL every process in the group, including ones that left the process group."""
        for _ in range(100):
            pids = self.pids_in_group()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def remove_now(self) -> None:
        """Kill every process of the group and remove it."""
        self.kill_all()
        for _ in range(200):
            if not self.pids_in_group():
                break
            time.sleep(0.005)  # the kernel frees a killed process asynchronously
        self.remove()

    def remove(self) -> None:
        """Remove the (empty) groups. Safe to call more than once."""
        if self._peak_fd is not None:
            os.close(self._peak_fd)
            self._peak_fd = None
        for path in (self.memory, self.pids, self.cpu):
            if path is not None:
                with contextlib.suppress(OSError):
                    path.rmdir()
