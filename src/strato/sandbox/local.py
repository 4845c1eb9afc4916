"""The process sandbox: environments forked from zygotes and confined by the chosen tier.

Each environment is one process tree forked from a warm interpreter (``zygote.py``), set up
in the forked child by the recipe of its tier (``guest/confine.py``; tiers in ``tiers.py``),
limited by cgroup v1 memory, cpu and pids where the host has them (memory by sampling resident
size where it does not), and given a uid of its own from a pool. In the namespaces tier a cold
start takes a spare when one is ready (``spares.py``): half of its recipe is then done.

At most ``MAX_STARTING`` starts (and preparations of spares) are in progress at once; more
wait their turn, so a burst queues instead of failing, and what a start holds (a uid, cgroups,
a network namespace) is taken only when its turn comes. Releasing an environment never waits:
cgroups whose processes are still exiting are removed a little later.

In the fallback tier (no mount namespace) an environment's ``TMPDIR`` is a directory of its
own below the host's /tmp, on which strato, when it runs as root and may mount, mounts a
private tmpfs sized by EphemeralStorage; the mount goes when the environment is released, or
at the latest when the sandbox closes.

A runtime that timed out or crashed is restarted in the same execution environment
(``restart``): the new process runs as the same uid with the same /tmp, which carry across
as a ``_Carried``; everything else (cgroups, network, pipes) is new. In the fallback tier
/tmp is the TMPDIR mount; in the namespaces tier it is a detached tmpfs mount whose fd the
environment hands over with its Runtime API socket (``guest/confine.py``), kept here and
passed to the restarted runtime, which attaches a clone of it (the old mount namespace is
gone with the old runtime).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from strato.errors import SandboxError
from strato.sandbox.base import (
    EGRESS_INTERNET,
    EGRESS_NONE,
    EnvironmentProcess,
    EnvironmentSpec,
    ExitStatus,
    Standby,
)
from strato.sandbox.cgroups import CgroupParent, EnvironmentCgroup
from strato.sandbox.interpreters import InterpreterRegistry
from strato.sandbox.lambda_paths import EnvironmentLayout
from strato.sandbox.rootfs import (
    LAMBDA_LANG_DIR,
    LAMBDA_OPT_DIR,
    LAMBDA_RUNTIME_DIR,
    readable_paths,
    root_plan,
    system_binds,
    system_root_plan,
)
from strato.sandbox.runtime_deps import RuntimeDeps
from strato.sandbox.spares import SparePool
from strato.sandbox.standby import (
    LAMBDA_LANG,
    STANDBY_TMP_MB,
    StandbyEnvironment,
    StandbyPool,
    boot_variables,
)
from strato.sandbox.tiers import Tier
from strato.sandbox.tmp_leftovers import remove_dead_servers_tmp
from strato.sandbox.uids import UidPool
from strato.sandbox.zygote import GUEST_DIR, Zygote, ZygotePool

log = logging.getLogger(__name__)

NOFILE_LIMIT = 1024
#: Where the function's code is mounted (read-only) in the namespaces tier.
TASK_ROOT = "/var/task"
RUNTIME_API_PORT = 9001
RUNTIME_API_INSIDE = f"127.0.0.1:{RUNTIME_API_PORT}"
#: The port at which an environment of the namespaces tier reaches strato's API when
#: strato's own port is unknown or is the Runtime API's there (``inside_platform_port``).
PLATFORM_API_PORT = 9002
#: The home directory of Lambda's sandbox user (sbx_user1051), which the namespaces tier's
#: /etc/passwd names: a fallback-tier environment's ``HOME``, since its uid has no entry in
#: the host's passwd, and without one node's ``os.homedir()`` (which the AWS SDK for
#: JavaScript calls to find ``~/.aws/config``) throws ENOENT.
SANDBOX_HOME = "/home/sbx_user1051"
MAX_PIDS = 1024
#: Starts (and preparations of spares) in progress at once.
MAX_STARTING = 16
#: Spares kept ready per zygote (namespaces tier).
SPARES = 4
#: Standby environments kept ready per runtime that has them (namespaces tier).
STANDBYS = 2
#: Longest pause between attempts at removing cgroups whose processes are still exiting.
_LEFTOVER_RETRY_MAX_S = 1.0
_PAGE_MB = 1024 * 1024
_DEVICE_FILES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
_MS_NOSUID, _MS_NODEV = 0x2, 0x4
_MNT_DETACH = 2


class NetworkPool(Protocol):
    """Ready network namespaces with internet egress (``sandbox/network.py``)."""

    async def acquire(self) -> Any:
        """A namespace with an ``fd``; waits only when none is ready."""

    def release(self, namespace: Any) -> None:
        """Give the namespace up (its fd is closed, its interfaces removed)."""


@dataclass
class _Carried:
    """What an execution environment keeps across restarts of its runtime: its uid and its
    /tmp (fallback tier: TMPDIR; namespaces tier: the fd of its detached tmpfs mount), with
    what frees them (run once, by the last process to hold them: the mount's fd is closed
    then, which frees the tmpfs)."""

    uid: int | None = None
    tmp_dir: str | None = None
    tmp_mount: int | None = None
    #: Restarts so far: a restart's cgroups are named ``<env id>.<n>`` (the old ones may
    #: still be on their way out under the environment's own name).
    restarts: int = 0
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    def release(self) -> None:
        cleanups, self.cleanups = self.cleanups, []
        _run_all(list(reversed(cleanups)))


class LocalProcess:
    """An environment started by ``ProcessSandbox``. ``carried`` is what a restart takes
    over (None once taken)."""

    def __init__(
        self,
        pid: int,
        uid: int,
        log_fd: int,
        exited: asyncio.Future[ExitStatus],
        cgroup: EnvironmentCgroup | None,
        memory_mb: int,
        runtime_socket: socket.socket | None,
        runtime_channel: socket.socket | None,
        on_release: Callable[[], None],
        carried: _Carried,
        platform_socket: socket.socket | None = None,
    ) -> None:
        self.carried: _Carried | None = carried
        self.pid = pid
        self.uid = uid
        self.log_fd = log_fd
        self.exited = exited
        self.runtime_socket = runtime_socket
        self.runtime_channel = runtime_channel
        self.platform_socket = platform_socket
        self._cgroup = cgroup
        self._memory_mb = memory_mb
        self._on_release: Callable[[], None] | None = on_release
        self._oom_by_watch = False
        self._peak_sampled = 0

    def kill(self) -> None:
        # The environment leads its own process group (and, in the namespaces tier, its pid
        # namespace's init dies with it, taking every process in the namespace along). What
        # left the group is found in the cgroup, now and again when the cgroup is removed.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(self.pid, signal.SIGKILL)
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
        """Free what the environment held (its cgroups go with ``on_release``: usually empty
        already; a tree that keeps forking, without a pid namespace in the fallback tier, is
        killed round after round until the group can go). Never blocks."""
        with contextlib.suppress(OSError):
            os.close(self.log_fd)
        if self.runtime_socket is not None:
            self.runtime_socket.close()
        if self.runtime_channel is not None:
            self.runtime_channel.close()
        if self._on_release is not None:
            on_release, self._on_release = self._on_release, None
            on_release()
        if self.carried is not None:
            carried, self.carried = self.carried, None
            carried.release()

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


class TmpfsMounts:
    """Private tmpfs mounts made by the platform itself (no helper program), and which of
    them are still mounted."""

    def __init__(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self._mount = libc.mount
        self._mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                                ctypes.c_ulong, ctypes.c_char_p]
        self._umount2 = libc.umount2
        self._umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
        self.mounted: set[str] = set()

    def mount(self, path: str, size_mb: int, uid: int, gid: int) -> None:
        """Mount a tmpfs of ``size_mb`` on the directory ``path``, its root mode 0700 and
        owned by ``uid``/``gid``, without setuid programs or device files. Raises OSError."""
        options = f"size={size_mb}m,mode=0700,uid={uid},gid={gid}".encode()
        if self._mount(b"tmpfs", path.encode(), b"tmpfs", _MS_NOSUID | _MS_NODEV, options) != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"mount a tmpfs on {path}: {os.strerror(code)}")
        self.mounted.add(path)

    def unmount(self, path: str) -> None:
        """Detach the tmpfs on ``path`` if this object mounted it (and still has it); what
        is open in it stays usable until closed. Raises OSError (``path`` stays listed)."""
        if path not in self.mounted:
            return
        if self._umount2(path.encode(), _MNT_DETACH) != 0:
            code = ctypes.get_errno()
            if code != errno.EINVAL:  # EINVAL: not a mount point (any more)
                raise OSError(code, f"unmount the tmpfs on {path}: {os.strerror(code)}")
        self.mounted.discard(path)

    def unmount_all(self) -> None:
        for path in sorted(self.mounted):
            try:
                self.unmount(path)
            except OSError as exc:
                log.warning("%s", exc)


class ProcessSandbox:
    """Sandbox that forks environments from per-interpreter zygotes."""

    def __init__(
        self,
        interpreters: InterpreterRegistry,
        *,
        tier: Tier,
        work_dir: str,
        use_cgroups: bool = True,
        limit_cpu: bool = True,
        extra_binds: Sequence[str] = (),
        network: NetworkPool | None = None,
        landlock: bool = True,
        platform_api_port: int | None = None,
        runtime_deps: RuntimeDeps | None = None,
        standbys: int = STANDBYS,
    ) -> None:
        """``platform_api_port``: the host port of strato's API, which environments of the
        fallback tier without egress may still connect to (their ``AWS_ENDPOINT_URL``), and
        at which those of the namespaces tier find it on their own loopback
        (``inside_platform_port``); ``standbys``: standby environments kept per runtime
        that has them (0: none)."""
        self._standby_count = standbys
        self._interpreters = interpreters
        self._runtime_deps = runtime_deps or RuntimeDeps()
        self._tier = tier
        self._zygotes = ZygotePool()
        self._admit = asyncio.Semaphore(MAX_STARTING)
        self._spares: dict[str, SparePool] = {}
        self._standbys: dict[tuple[Any, ...], StandbyPool] = {}
        self._cgroups = CgroupParent.probe() if use_cgroups else None
        self._leftover_retry: asyncio.TimerHandle | None = None
        self._leftover_delay = 0.0
        self._closed = False
        self._limit_cpu = limit_cpu
        self._network = network
        self._landlock = landlock
        self._uids = UidPool.claim() if os.geteuid() == 0 and tier is not Tier.UNCONFINED else None
        self._work_dir = work_dir
        self._staging = os.path.join(work_dir, "root")
        os.makedirs(self._staging, mode=0o700, exist_ok=True)
        # The fallback tier's temporary directories must be reachable by environments' uids
        # whatever the modes above the data dir: they live below the host's /tmp, in a
        # directory whose name says which strato process made it (and the mounts below it).
        remove_dead_servers_tmp(tempfile.gettempdir())
        self._tmp_root = tempfile.mkdtemp(prefix=f"strato-env-tmp-{os.getpid()}-")
        os.chmod(self._tmp_root, 0o711)
        # Fallback tier as root: tmpfs mounts for TMPDIRs, made while the probe and every
        # mount since succeeded (``_mount_tmp``); the object keeps track of what to unmount.
        self._tmpfs = TmpfsMounts() if tier is Tier.FALLBACK and self._uids is not None else None
        self._mount_tmp = self._probe_tmpfs()
        self._binds, self._symlinks = system_binds(extra_binds)
        self._watched: dict[int, LocalProcess] = {}
        self._watcher: asyncio.Task[None] | None = None
        self.runtime_api = RUNTIME_API_INSIDE if tier is Tier.NAMESPACES else None
        self.shows_views = tier is Tier.NAMESPACES
        self._platform_inside_port = inside_platform_port(platform_api_port)
        self.platform_api = (f"127.0.0.1:{self._platform_inside_port}"
                             if tier is Tier.NAMESPACES else None)
        self._platform_api_port = platform_api_port
        parts = [f"{tier.value} tier (zygote fork)"]
        parts.append("cgroup v1 memory/pids" if self._cgroups else "memory by RSS sampling")
        if self._cgroups is not None and self._cgroups.cpu is not None and limit_cpu:
            parts.append("cpu in proportion to memory")
        if tier is Tier.NAMESPACES:
            parts.append("internet egress through a filtered bridge" if network
                         else "no egress (loopback only)")
        if tier is Tier.FALLBACK:
            parts.append("TMPDIR on a tmpfs sized by EphemeralStorage" if self._mount_tmp
                         else "TMPDIR unlimited in size")
        self.description = ", ".join(parts)

    def _probe_tmpfs(self) -> bool:
        """Whether this process may mount the fallback tier's TMPDIRs (root with
        CAP_SYS_ADMIN); says once, at start-up, when it may not."""
        if self._tmpfs is None:
            return False
        probe = os.path.join(self._tmp_root, "probe")
        os.mkdir(probe, 0o700)
        try:
            self._tmpfs.mount(probe, 1, 0, 0)
            self._tmpfs.unmount(probe)
        except OSError as exc:
            self._tmpfs_unavailable(exc)
            return False
        finally:
            with contextlib.suppress(OSError):
                os.rmdir(probe)
        return True

    def _tmpfs_unavailable(self, exc: OSError) -> None:
        """Stop mounting TMPDIRs, with the one warning that says so."""
        self._mount_tmp = False
        log.warning("fallback tier: %s; environments' temporary directories (TMPDIR) are "
                    "not limited in size (EphemeralStorage is not enforced)", exc)

    def _interpreter_for(self, python_version: str | None) -> str:
        if python_version is None:
            return os.path.realpath(sys.executable)
        return self._interpreters.require(python_version)

    def task_root(self, code_dir: str) -> str:
        """The path of the function's code as the environment sees it."""
        return TASK_ROOT if self._tier is Tier.NAMESPACES else code_dir

    def path_variables(self, runtime: str, task_root: str,
                       runtime_dir: str | None = None) -> dict[str, str]:
        """The search paths of an environment of ``runtime`` whose code is at ``task_root``
        (``lambda_paths.py``): Lambda's values in the namespaces tier, whose root lays things
        out as Lambda does (the SDKs merged into /var/runtime); without a root of its own, the
        host's system directories, the runtime's and the SDKs' host paths, nothing of the
        environment strato was started with."""
        if self._tier is Tier.NAMESPACES:
            layout = EnvironmentLayout(runtime_dir or LAMBDA_RUNTIME_DIR,
                                       lang_dir=LAMBDA_LANG_DIR, opt_dir=LAMBDA_OPT_DIR)
        else:
            deps = self._runtime_deps
            layout = EnvironmentLayout(runtime_dir or str(GUEST_DIR), python_sdk=deps.python,
                                       node_modules=deps.nodejs)
        return layout.variables(runtime, task_root)

    def _system_root_plan(self) -> dict[str, Any]:
        """The function-independent part of every namespaces-tier root (a spare's, or a
        whole one with the function's part added)."""
        return system_root_plan(self._staging, self._binds, self._symlinks,
                                runtime_trees=self._runtime_deps.trees)

    async def prepare(self, python_version: str | None) -> None:
        await self._zygote(python_version)

    async def _zygote(self, python_version: str | None) -> Zygote:
        """The zygote of ``python_version``, started on first use (and again if it died),
        with its spares (namespaces tier)."""
        interpreter = self._interpreter_for(python_version)
        zygote = await self._zygotes.get(interpreter)
        pool = self._spares.get(interpreter)
        if self._tier is Tier.NAMESPACES and (pool is None or pool.zygote is not zygote):
            if pool is not None:
                await pool.close()
            pool = self._spares[interpreter] = SparePool(
                zygote, size=SPARES,
                root=self._system_root_plan(),
                cgroups=self._cgroups, max_pids=MAX_PIDS, limit_cpu=self._limit_cpu,
                admit=self._admit, discard=self._discard_cgroup)
            pool.refill()
        return zygote

    async def start(self, spec: EnvironmentSpec) -> LocalProcess:
        """Start an environment; waits its turn when ``MAX_STARTING`` starts are in
        progress. Raises SandboxError; on any failure nothing stays held."""
        carried = _Carried()
        try:
            return await self._admitted(spec, carried, fresh=True)
        except BaseException:
            carried.release()
            raise

    async def restart(self, process: EnvironmentProcess, spec: EnvironmentSpec) -> LocalProcess:
        """Start ``spec`` again in the environment ``process`` ran in (``Sandbox.restart``):
        same uid and /tmp. Only after ``process.exited``; the unconfined tier has no /tmp of
        its own to keep, and starts the runtime afresh under the same uid."""
        if not isinstance(process, LocalProcess):
            raise SandboxError(f"environment {spec.env_id} was not started by this sandbox")
        carried = process.carried
        if not process.exited.done():
            raise SandboxError(f"environment {spec.env_id} is still running")
        if carried is None:
            raise SandboxError(f"environment {spec.env_id} was restarted already")
        new = await self._admitted(spec, carried, fresh=False)
        carried.restarts += 1
        process.carried = None
        return new

    async def _admitted(self, spec: EnvironmentSpec, carried: _Carried, *,
                        fresh: bool) -> LocalProcess:
        """``_start`` once admitted; what it took (``carried`` aside) is freed on failure."""
        interpreter = self._interpreter_for(spec.python_version)
        async with self._admit:
            if self._closed:
                raise SandboxError("the sandbox is closed")
            zygote = await self._zygote(spec.python_version)
            pool = self._spares.get(interpreter)
            cleanups: list[Callable[[], None]] = []
            try:
                return await self._start(zygote, pool, spec, cleanups, carried, fresh)
            except BaseException:
                for cleanup in reversed(cleanups):
                    cleanup()
                raise

    async def _start(self, zygote: Zygote, pool: SparePool | None, spec: EnvironmentSpec,
                     cleanups: list[Callable[[], None]], carried: _Carried,
                     fresh: bool) -> LocalProcess:
        """Start ``spec``; a ``fresh`` environment takes its uid (and TMPDIR) into
        ``carried``, a restarted one runs with those ``carried`` holds."""
        if fresh:
            carried.uid = self._uids.acquire() if self._uids is not None else None
            if carried.uid is not None and self._uids is not None:
                uids, taken = self._uids, carried.uid
                carried.cleanups.append(lambda: uids.release(taken))
        if fresh and spec.standby is not None and self._tier is Tier.NAMESPACES \
                and self._uids is not None and self._standby_count > 0:
            standby = self._standby_pool(spec, spec.standby).take(spec)
            if standby is not None:
                return await self._become(standby, spec, cleanups, carried)
        uid = carried.uid
        # A restart's cgroups are named apart: the old ones may still be on their way out.
        name = spec.env_id if fresh else f"{spec.env_id}.{carried.restarts + 1}"
        spare = pool.take(spec.memory_mb) if pool is not None else None
        try:
            if spare is not None:
                cgroup = spare.cgroup
                if cgroup is not None and spare.memory_mb != spec.memory_mb:
                    cgroup.set_limits(spec.memory_mb)
            elif self._cgroups is not None:
                cgroup = self._cgroups.create(name, spec.memory_mb, MAX_PIDS,
                                              limit_cpu=self._limit_cpu)
            else:
                cgroup = None
        except OSError as exc:
            raise SandboxError(f"cannot limit environment {spec.env_id}: {exc}") from exc
        finally:
            if spare is not None and spare.cgroup is not None:
                group = spare.cgroup
                cleanups.append(lambda: self._discard_cgroup(group))
        if spare is None and cgroup is not None:
            cleanups.append(lambda: self._discard_cgroup(cgroup))
        read_fd, write_fd = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        os.set_blocking(write_fd, True)
        # The built-in runtime's channel; custom runtimes have the HTTP Runtime API only.
        channel = (socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
                   if spec.argv is None else None)
        env = dict(spec.env)
        request: dict[str, Any] = {
            "id": spec.env_id,
            "mode": "python" if spec.argv is None else "exec",
            "argv": list(spec.argv or ()),
            "cwd": spec.cwd,
            "tier": self._tier.value,
            "cgroups": cgroup.procs_files if cgroup is not None and spare is None else [],
            "nofile": NOFILE_LIMIT,
            "uid": uid,
            "gid": uid,
            "netns": False,
        }
        fds = [write_fd]
        try:
            if self._tier is Tier.NAMESPACES:
                request["cwd"] = TASK_ROOT
                request["platform_port"] = self._platform_inside_port
                if spare is not None:
                    request["spare"] = spare.id
                    request["root"] = {"task_root": spec.cwd, "tmp_mb": spec.tmp_mb}
                else:
                    request["root"] = root_plan(self._staging, spec.cwd, spec.tmp_mb,
                                                self._binds, self._symlinks,
                                                runtime_trees=self._runtime_deps.trees)
                request["root"]["views"] = [list(view) for view in spec.views]
                if spec.egress == EGRESS_INTERNET and self._network is not None:
                    network = self._network
                    namespace = await network.acquire()
                    cleanups.append(lambda: network.release(namespace))
                    request["netns"] = True
                    fds.append(namespace.fd)
                if carried.tmp_mount is not None:
                    request["tmp"] = True
                    fds.append(carried.tmp_mount)
            elif self._tier is Tier.FALLBACK:
                if carried.tmp_dir is None:
                    carried.tmp_dir = self._private_tmp(spec.env_id, uid, spec.tmp_mb,
                                                        carried.cleanups)
                tmp_dir = carried.tmp_dir
                env["TMPDIR"] = tmp_dir
                env.setdefault("HOME", SANDBOX_HOME)
                # Sharing the host's network, it may make only TCP sockets (which Landlock
                # governs) and connected unix pairs.
                request["restrict_sockets"] = spec.egress != EGRESS_INTERNET
                if self._landlock:
                    request["landlock"] = {
                        "read": readable_paths(self._binds) + [spec.cwd,
                                                               *self._runtime_deps.trees]
                        + [source for source, _ in spec.views],
                        "write": [tmp_dir, *_DEVICE_FILES],
                        "tcp_ports": None if spec.egress == EGRESS_INTERNET
                        else [p for p in (spec.runtime_api_port, self._platform_api_port) if p],
                    }
            request["env"] = env
            if channel is not None:
                request["channel"] = True
                fds.append(channel[1].fileno())
            answer = zygote.spawn(request, fds)
            if spare is not None and cgroup is not None:
                self._name_cgroup(cgroup, name)  # while the spare takes the request
            pid, exited, runtime_fd, platform_fd, tmp_fd = await answer
        except BaseException:
            os.close(read_fd)
            if channel is not None:
                channel[0].close()
            raise
        finally:
            os.close(write_fd)
            if channel is not None:
                channel[1].close()
        runtime_socket = socket.socket(fileno=runtime_fd) if runtime_fd is not None else None
        platform_socket = socket.socket(fileno=platform_fd) if platform_fd is not None else None
        if tmp_fd is not None:
            if carried.tmp_mount is None:
                carried.tmp_mount = tmp_fd
                carried.cleanups.append(lambda: os.close(tmp_fd))
            else:  # it was given the mount to clone: one it made anyway is not used
                os.close(tmp_fd)
        # From here the process owns what was acquired for it, released after it exits.
        owned = list(reversed(cleanups))
        cleanups.clear()
        # Without a uid of its own (strato is not root, or unconfined), it runs as strato.
        process = LocalProcess(pid, uid if uid is not None else os.geteuid(), read_fd, exited,
                               cgroup, spec.memory_mb, runtime_socket,
                               channel[0] if channel is not None else None,
                               lambda: _run_all(owned), carried, platform_socket)
        if cgroup is None:
            self._watch(process)
        return process

    def _standby_pool(self, spec: EnvironmentSpec, standby: Standby) -> StandbyPool:
        """The pool of standbys of ``spec``'s runtime, made (and filled) on first demand."""
        network = self._network if spec.egress == EGRESS_INTERNET else None
        egress = spec.egress if network is not None else EGRESS_NONE
        key = (standby.argv, standby.views, egress)
        pool = self._standbys.get(key)
        if pool is not None:
            return pool
        plan = root_plan(self._staging, "", STANDBY_TMP_MB, self._binds, self._symlinks,
                         runtime_trees=self._runtime_deps.trees)
        # Lambda's own values: the search paths every runtime gets (no language's) and LANG.
        variables = boot_variables(standby, {**self.path_variables("", TASK_ROOT),
                                             "LANG": LAMBDA_LANG})
        uids = self._uids
        assert uids is not None  # the caller checked
        pool = self._standbys[key] = StandbyPool(
            lambda: self._zygote(None), size=self._standby_count,
            request={"mode": "exec", "argv": list(standby.argv), "env": variables,
                     "cwd": TASK_ROOT, "tier": Tier.NAMESPACES.value,
                     "nofile": NOFILE_LIMIT, "standby": True,
                     "channel": True, "platform_port": self._platform_inside_port,
                     "root": {**plan, "task_root": None,
                              "views": [list(view) for view in standby.views]}},
            boot_variables=variables, uids=(uids.acquire, uids.release),
            cgroups=self._cgroups, max_pids=MAX_PIDS, limit_cpu=self._limit_cpu,
            admit=self._admit, discard=self._discard_cgroup, memory_mb=spec.memory_mb,
            egress=egress, network=network)
        pool.refill()
        return pool

    async def _become(self, standby: StandbyEnvironment, spec: EnvironmentSpec,
                      cleanups: list[Callable[[], None]], carried: _Carried) -> LocalProcess:
        """Make ``standby`` the fresh environment ``spec``: it takes the environment's name
        and memory size, its code and variables (``StandbyEnvironment.become``). What it
        holds is ``carried``'s or ``cleanups``' from the start, so a failure frees it."""
        uids = self._uids
        assert uids is not None  # standbys exist only with a uid pool
        carried.uid = uid = standby.uid
        carried.cleanups.append(lambda: uids.release(uid))
        cgroup = standby.cgroup
        if cgroup is not None:
            cleanups.append(lambda: self._discard_cgroup(cgroup))
        if standby.release_network is not None:
            cleanups.append(standby.release_network)
        cleanups.append(standby.abandon)
        try:
            if cgroup is not None:
                if standby.memory_mb != spec.memory_mb:
                    cgroup.set_limits(spec.memory_mb)
                self._name_cgroup(cgroup, spec.env_id)
        except OSError as exc:
            raise SandboxError(f"cannot limit environment {spec.env_id}: {exc}") from exc
        await standby.become(spec.env_id, spec.cwd, spec.env)
        cleanups.remove(standby.abandon)
        tmp_mount = standby.tmp_mount
        carried.tmp_mount = tmp_mount
        carried.cleanups.append(lambda: os.close(tmp_mount))
        owned = list(reversed(cleanups))
        cleanups.clear()
        log.debug("environment %s: standby %s (pid %d)", spec.env_id, standby.id, standby.pid)
        process = LocalProcess(standby.pid, uid, standby.log_fd, standby.exited, cgroup,
                               spec.memory_mb, standby.runtime_socket, None,
                               lambda: _run_all(owned), carried, standby.platform_socket)
        if cgroup is None:
            self._watch(process)
        return process

    @staticmethod
    def _name_cgroup(group: EnvironmentCgroup, env_id: str) -> None:
        """Rename a spare's groups after the environment it became (for whoever looks at
        the host's cgroups; the limits do not depend on it, so a failure is only logged)."""
        try:
            group.rename(env_id)
        except OSError as exc:
            log.warning("cannot rename cgroup %s after environment %s: %s", group.memory.name,
                        env_id, exc)

    def _discard_cgroup(self, group: EnvironmentCgroup) -> None:
        """Remove ``group`` now, or soon if its processes are still exiting."""
        if self._cgroups is None:
            return
        self._cgroups.discard(group)
        if self._cgroups.leftovers and self._leftover_retry is None:
            self._leftover_delay = 0.01
            self._leftover_retry = asyncio.get_running_loop().call_later(
                self._leftover_delay, self._retry_leftovers)

    def _retry_leftovers(self) -> None:
        self._leftover_retry = None
        if self._cgroups is None or not self._cgroups.retry_leftovers():
            return
        self._leftover_delay = min(_LEFTOVER_RETRY_MAX_S, self._leftover_delay * 2)
        self._leftover_retry = asyncio.get_running_loop().call_later(
            self._leftover_delay, self._retry_leftovers)

    def _private_tmp(self, env_id: str, uid: int | None, tmp_mb: int,
                     cleanups: list[Callable[[], None]]) -> str:
        """The fallback tier's stand-in for a private /tmp: a directory only ``uid`` reads
        and writes, a tmpfs of ``tmp_mb`` where the platform may mount. Its removal (after
        the unmount) joins ``cleanups`` as soon as there is something to remove."""
        path = os.path.join(self._tmp_root, env_id)
        os.mkdir(path, 0o700)
        cleanups.append(lambda: self._remove_private_tmp(path))
        if uid is None:
            return path
        if self._tmpfs is not None and self._mount_tmp:
            try:
                self._tmpfs.mount(path, tmp_mb, uid, uid)
                return path
            except OSError as exc:
                self._tmpfs_unavailable(exc)  # this environment and the next: unlimited
        os.chown(path, uid, uid)
        return path

    def _remove_private_tmp(self, path: str) -> None:
        """Unmount (if mounted) and remove an environment's TMPDIR. Never raises: a tmpfs
        that cannot be unmounted now stays listed for ``close`` to try again."""
        if self._tmpfs is not None:
            try:
                self._tmpfs.unmount(path)
            except OSError as exc:
                log.warning("%s", exc)
                return
        shutil.rmtree(path, ignore_errors=True)

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
        """Stop the zygotes (each kills what it forked), then remove every cgroup and
        temporary directory left."""
        self._closed = True
        for standbys in self._standbys.values():
            await standbys.close()
        for pool in self._spares.values():
            await pool.close()
        await self._zygotes.close()
        if self._watcher is not None:
            self._watcher.cancel()
        if self._leftover_retry is not None:
            self._leftover_retry.cancel()
        if self._cgroups is not None:
            await asyncio.to_thread(self._cgroups.remove)
        if self._tmpfs is not None:
            self._tmpfs.unmount_all()
        shutil.rmtree(self._tmp_root, ignore_errors=True)


def inside_platform_port(host_port: int | None) -> int:
    """The loopback port at which a namespaces-tier environment listens for strato's API:
    strato's own port, so that its ``AWS_ENDPOINT_URL`` is the address clients on the host
    use (with strato on a loopback or every address), and URLs strato hands them, such as
    queue URLs, which the AWS SDK for JavaScript sends SQS calls to, lead to strato from
    inside too; ``PLATFORM_API_PORT`` when that port is unknown or is the Runtime API's."""
    if host_port is None or host_port == RUNTIME_API_PORT:
        return PLATFORM_API_PORT
    return host_port


def _run_all(cleanups: Sequence[Callable[[], None]]) -> None:
    for cleanup in cleanups:
        try:
            cleanup()
        except OSError as exc:
            log.warning("releasing an environment's resources: %s", exc)
