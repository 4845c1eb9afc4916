"""The zygote: a pre-initialised interpreter that forks execution environments.

Started by the platform (``strato.sandbox.zygote``) as
``python3.X -E -s -S zygote.py <control_fd>``, where ``control_fd`` is one end of an
``AF_UNIX``/``SOCK_SEQPACKET`` socketpair. It imports the built-in runtime once, so a forked
environment reaches its first ``invocation/next`` without importing anything.

Protocol: one UTF-8 JSON object per datagram, file descriptors attached with ``send_fds``.

- zygote -> platform, once: ``{"op": "ready", "pid": <pid>, "python": "3.12.1"}``
- platform -> zygote: ``{"op": "spawn", "id": <env id>, "mode": "python" | "exec",
  "argv": [...] (exec: argv[0] absolute), "env": {...} (the whole environment), "cwd": <dir>,
  "tier": "namespaces" | "fallback" | "unconfined", "cgroups": [<cgroup.procs path>, ...],
  "nofile": <int> | null, "uid"/"gid": <int> | null, "netns": <bool>, "tmp": <bool>,
  "root": {"staging", "task_root", "tmp_mb", "binds", "symlinks", "runtime_trees", "views"}
  (namespaces tier; ``runtime_trees``: host directories merged into /var/runtime;
  ``views``: [[host dir, path inside], ...] shown over the skeleton's mount points),
  "spare": <spare id> (namespaces tier, optional: become that spare), "platform_port":
  <int> (namespaces tier: the loopback port to listen at for strato's API, default 9002),
  "landlock": {"read", "write", "tcp_ports"} | null, "restrict_sockets": <bool> (fallback
  tier: a seccomp filter that lets it make only TCP sockets and connected unix pairs)}``
  "channel": <bool>, "standby": <bool>} with the write end of the environment's log pipe
  attached, then, when
  ``netns``, an fd of the network namespace to join, then, when ``tmp`` (namespaces tier), the
  fd of a detached tmpfs mount whose clone is to be its /tmp (that of the runtime it
  restarts), then, when ``channel`` (python mode
  only), the environment's end of its runtime channel (``lambda_runtime/channel.py``), which
  the runtime finds at fd 3. With ``spare``, the spare's cgroups are the environment's
  (``cgroups`` is ignored) and ``root`` needs only ``task_root``, ``tmp_mb`` and ``views``.
  With ``standby`` (namespaces tier, exec mode, with ``channel``, which the program finds at
  fd 3 too): a standby environment, ``root["task_root"]`` null: it takes the whole recipe
  but its code, which a ``show`` request mounts later (``strato.sandbox.standby``).
- zygote -> platform: ``{"op": "spawned", "id", "pid"}`` (namespaces tier: with the
  environment's listening Runtime API socket attached, then, without ``tmp``, the fd of the
  detached tmpfs mount its /tmp is a clone of) or ``{"op": "spawn_failed", "id",
  "error": "<step>: <reason>"}``; ``spawned`` always precedes that pid's
  ``{"op": "exited", "pid", "exit_code": <int> | null, "signal": <int> | null}``.
- platform -> zygote: ``{"op": "show", "id": <request id>, "pid": <pid>, "task_root":
  <host dir>}``: show ``task_root`` read-only at /var/task of the standby environment ``pid``
  (a helper child does it from outside: ``Confiner.show_code``); once per standby, refused
  for any other pid. Answered ``{"op": "shown", "id"}`` or ``{"op": "show_failed", "id",
  "error"}``.
- platform -> zygote: ``{"op": "prepare", "id": <spare id>, "tier": "namespaces",
  "cgroups": [...], "root": {"staging", "binds", "symlinks", "runtime_trees"}}``: fork a
  spare, a process that takes the first half of the namespaces recipe ahead of demand (joins
  its cgroups, is pid 2 of a new pid namespace whose init reaps orphans (``reaper.py``), in
  new mount, ipc and uts namespaces, has the function-independent part of its root built)
  and waits to become an environment. Answered ``{"op": "prepared", "id", "pid"}`` or
  ``{"op": "prepare_failed", "id", "error"}``; a spare that dies unused is reported as
  ``{"op": "spare_lost", "id"}``, one that is used reports as the environment it became.

Requests are answered in the order their children finish, not the order they came in: the
zygote forks and goes back to its socket while children set themselves up, so many may be in
set-up at once (the platform bounds how many). A child applies its tier (``confine.py`` draws
each recipe) and reports success or the failed step over a private socketpair; then it closes
every other fd, restores signal dispositions, and either ``execve``s (exec mode; a failure is
written to the log and the status is 127) or runs ``lambda_runtime.bootstrap.main()`` under
``env`` (python mode). When the control socket reaches EOF the zygote SIGKILLs its children
(environments, spares, children in set-up) and exits.

The zygote itself never runs user code and writes nothing to stdout; stderr only for fatal
errors. Stdlib only, Python 3.10 to 3.13.
"""

from __future__ import annotations

import os
import sys

_GUEST_DIR = os.path.dirname(os.path.abspath(__file__))
if _GUEST_DIR not in sys.path:
    sys.path.insert(0, _GUEST_DIR)

import array  # noqa: E402
import atexit  # noqa: E402  (the guest directory must be on sys.path first)
import gc  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import select  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import time  # noqa: E402

try:
    import confine  # ctypes inside: a build without _ctypes can only run unconfined
except ImportError as _exc:
    # Every use is behind a check of it (a request that needs it is refused: _valid_spawn).
    confine = None  # type: ignore[assignment]
    _CONFINE_MISSING = str(_exc)
import child  # noqa: E402
import forking  # noqa: E402
import lambda_runtime.bootstrap as bootstrap  # noqa: E402
import reaper  # noqa: E402

TYPE_CHECKING = False  # not typing's: the annotations need no import at run time
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from typing import Any, NoReturn

    #: A request or report of the control protocol (a JSON object).
    Message = dict[str, Any]

# Cheap, commonly imported stdlib modules: imported here once, shared copy-on-write by every
# environment, so user code's INIT does not pay for them.
_WARM_MODULES = ("base64", "datetime", "hashlib", "uuid", "urllib.parse", "typing",
                 "dataclasses", "collections", "functools", "tempfile")

_MAX_DATAGRAM = 1 << 20
_SETUP_TIMEOUT_MS = 10_000
#: Environments made from spares looked at, each shortly after it started (its INIT and
#: first invocation done, for a small function), to learn which inherited pages
#: environments write; the pages all of them wrote, spares prefault (``forking.prefault``).
_LEARN_SAMPLES = 3
_LEARN_AFTER_S = 0.02
_PR_SET_CHILD_SUBREAPER = 36
#: Where a namespaces-tier environment sees the interpreter's prefix and this directory (as
#: on Lambda; ``_interpreter_view``).
LANG_DIR, RUNTIME_DIR = "/var/lang", "/var/runtime"
_BOOTSTRAP = os.path.join("lambda_runtime", "bootstrap.py")
#: The interpreter's prefix (as given and resolved) and executable on the host, taken before
#: any fork: inside an environment the prefix's host path is a symlink to ``LANG_DIR``.
_HOST_PREFIXES = tuple(p for p in dict.fromkeys((sys.base_prefix,
                                                 os.path.realpath(sys.base_prefix)))
                       if p != "/")
_HOST_EXECUTABLE = os.path.realpath(sys.executable)
_TIERS = ("namespaces", "fallback", "unconfined")



class _PlatformGone(Exception):
    """The control socket is closed: the platform died or stopped the zygote."""


def _valid_spawn(request: Message, fds: Sequence[int]) -> str | None:
    """The reason a spawn request cannot be honoured, or None."""
    tier = request.get("tier", "unconfined")
    if tier not in _TIERS:
        return f"unknown tier {tier!r}"
    if tier != "unconfined" and confine is None:
        return f"tier {tier} needs ctypes: {_CONFINE_MISSING}"
    if request.get("tmp") and tier != "namespaces":
        return "a /tmp mount is for the namespaces tier only"
    wanted = (1 + bool(request.get("netns")) + bool(request.get("tmp"))
              + bool(request.get("channel")))
    if len(fds) != wanted:
        return (f"expected {wanted} fds (log pipe[, network namespace][, /tmp mount]"
                f"[, runtime channel]), got {len(fds)}")
    if request.get("mode") not in ("python", "exec"):
        return f"unknown mode {request.get('mode')!r}"
    standby = request.get("standby", False)
    if not isinstance(standby, bool) or standby and (tier != "namespaces" or "spare" in request
                                                     or not request.get("channel")):
        return "a standby is a namespaces-tier spawn with a channel and no spare"
    if request.get("channel") and request["mode"] != "python" and not standby:
        return "a runtime channel is for the built-in runtime (python mode) or a standby only"
    argv = request.get("argv") or []
    if request["mode"] == "exec" and not (
            argv and all(isinstance(a, str) and "\0" not in a for a in argv)
            and os.path.isabs(argv[0])):
        return "exec mode needs argv with an absolute argv[0]"
    env = request.get("env")
    if not isinstance(env, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and k and "=" not in k
            and "\0" not in k and "\0" not in v for k, v in env.items()):
        return "env must map names to strings (no '=' in names, no NUL)"
    if not isinstance(request.get("cwd"), str):
        return "cwd must be a string"
    for key in ("nofile", "uid", "gid"):
        value = request.get(key)
        if value is not None and (not isinstance(value, int) or value <= 0):
            return f"{key} must be a positive integer or null"
    if not isinstance(request.get("restrict_sockets", False), bool):
        return "restrict_sockets must be a boolean"
    cgroups = request.get("cgroups") or []
    if not isinstance(cgroups, list) or not all(isinstance(p, str) for p in cgroups):
        return "cgroups must be a list of paths"
    if tier == "namespaces":
        root = request.get("root")
        if not isinstance(root, dict) \
                or not isinstance(root.get("task_root"), str) and not standby \
                or standby and root.get("task_root") is not None \
                or not isinstance(root.get("tmp_mb"), int) or root["tmp_mb"] <= 0 \
                or "spare" not in request and not isinstance(root.get("staging"), str):
            return "the namespaces tier needs root: {staging, task_root, tmp_mb, binds}"
        if request.get("uid") is None or request.get("gid") is None:
            return "the namespaces tier needs a uid and a gid"
    elif "spare" in request:
        return "only the namespaces tier has spares"
    return None


def _valid_prepare(request: Message, fds: Sequence[int]) -> str | None:
    """The reason a prepare request cannot be honoured, or None."""
    if fds:
        return f"a prepare request carries no fds, got {len(fds)}"
    if request.get("tier") != "namespaces":
        return "only the namespaces tier has spares"
    if confine is None:
        return f"tier namespaces needs ctypes: {_CONFINE_MISSING}"
    cgroups = request.get("cgroups") or []
    if not isinstance(cgroups, list) or not all(isinstance(p, str) for p in cgroups):
        return "cgroups must be a list of paths"
    root = request.get("root")
    if not isinstance(root, dict) or not isinstance(root.get("staging"), str):
        return "a spare needs root: {staging, binds, symlinks}"
    return None


def _valid_show(request: Message, fds: Sequence[int], standbys: set[int]) -> str | None:
    """The reason a show request cannot be honoured, or None."""
    if fds:
        return f"a show request carries no fds, got {len(fds)}"
    if confine is None:
        return f"showing code needs ctypes: {_CONFINE_MISSING}"
    if request.get("pid") not in standbys:
        return f"no standby environment {request.get('pid')!r} waits for its code"
    task_root = request.get("task_root")
    if not isinstance(task_root, str) or not os.path.isabs(task_root) or "\0" in task_root:
        return "task_root must be an absolute path"
    return None


def _recv_nowait(sock: socket.socket, size: int,
                 max_fds: int) -> tuple[bytes, list[int], int]:
    """``socket.recv_fds`` that does not block (it ignores its flags before Python 3.13):
    ``(data, fds, msg_flags)``; raises BlockingIOError when nothing is waiting."""
    fds = array.array("i")
    data, ancillary, flags, _ = sock.recvmsg(size, socket.CMSG_LEN(max_fds * fds.itemsize),
                                             socket.MSG_DONTWAIT)
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
    return data, list(fds), flags


def _interpreter_view() -> tuple[list[list[str]], list[list[str]]]:
    """The interpreter's and the runtime's part of every namespaces-tier root, ``(binds,
    symlinks)`` in ``confine.compile_root``'s terms: the interpreter's prefix shown at
    ``LANG_DIR`` and this directory at ``RUNTIME_DIR`` (shown trees: the mount table names
    neither host path); a directory the interpreter needs outside its prefix (rare) bound at
    its own path. Each shown host path is also a symlink to where it is shown, so that what
    the zygote imported before the fork (module files, package search paths) still resolves
    inside, unless the host path is hidden by what an environment mounts (a runtime installed
    below /tmp, which everything the runtime uses was imported ahead of)."""
    prefix = os.path.realpath(sys.base_prefix)
    shown = [(prefix, LANG_DIR)] if prefix != "/" else []
    shown.append((_GUEST_DIR, RUNTIME_DIR))
    binds = [[source, inside, "tree"] for source, inside in shown]
    found = {os.path.realpath(p) for p in (sys.prefix, sys.exec_prefix, sys.base_exec_prefix)}
    found.add(os.path.dirname(os.path.realpath(sys.executable)))
    others = sorted(p for p in found if p and p != "/" and os.path.isdir(p)
                    and not _below(p, [source for source, _ in shown]))
    # A directory inside another bound one needs no bind of its own.
    binds += [[p, p, "dir"] for p in others if not _below(p, [q for q in others if q != p])]
    return binds, [[source, inside] for source, inside in shown]


def _below(path: str, others: Iterable[str]) -> bool:
    """Whether ``path`` is one of ``others`` or lies below one."""
    return any(path == other or path.startswith(other.rstrip("/") + "/") for other in others)


def _relocate_interpreter() -> None:
    """In a namespaces-tier environment: the interpreter as it sees itself, its executable,
    prefixes and search path below ``LANG_DIR`` instead of the host's prefix."""
    def moved(path: str) -> str:
        for host in _HOST_PREFIXES:
            if path and _below(path, [host]):
                return LANG_DIR + path[len(host.rstrip("/")):]
        return path

    sys.path[:] = [moved(entry) for entry in sys.path]
    for name in ("prefix", "base_prefix", "exec_prefix", "base_exec_prefix"):
        setattr(sys, name, moved(getattr(sys, name)))
    sys.executable = moved(_HOST_EXECUTABLE)
    if hasattr(sys, "_base_executable"):
        sys._base_executable = moved(_HOST_EXECUTABLE)


class _Setup:
    """A child on its way to becoming an environment (``kind`` "spawn", or "finish" for a
    spare that becomes one) or a spare ("prepare"), as the zygote follows it: its private
    socket, its pid (None once reaped), fds it passed back, its deadline."""

    __slots__ = ("kind", "key", "sock", "pid", "deadline", "outcome", "fds", "request_standby")

    def __init__(self, kind: str, key: Any, sock: socket.socket, pid: int,
                 standby: bool = False) -> None:
        self.kind = kind
        #: A spawn of a standby environment (``show`` may give it its code once).
        self.request_standby = standby
        self.key = key
        self.sock = sock
        self.pid: int | None = pid
        self.deadline = time.monotonic() + _SETUP_TIMEOUT_MS / 1000
        self.outcome: str | None = None
        self.fds: list[int] = []


class Zygote:
    """The fork server. ``serve`` runs until the control socket closes."""

    def __init__(self, control: socket.socket) -> None:
        self._control = control
        self._pid = os.getpid()
        self._children: dict[int, Any] = {}  # pid -> environment id, for children reported as spawned
        self._setups: dict[int, _Setup] = {}  # private socket fd -> _Setup, for children in set-up
        self._setup_pids: dict[int, _Setup] = {}  # pid -> _Setup, for children in set-up
        # spare id -> (socket, pid), for spares waiting to be used
        self._spares: dict[Any, tuple[socket.socket, int]] = {}
        self._spare_ids: dict[int, Any] = {}  # pid -> spare id, for spares waiting or becoming environments
        self._standbys: set[int] = set()  # pids of standby environments that have no code yet
        # Namespaces-tier children and the inits of their pid namespaces (``reaper.py``),
        # both ways, while both live: an init is killed when its child is reaped.
        self._inits: dict[int, int] = {}  # child pid -> init pid
        self._init_of: dict[int, int] = {}  # init pid -> child pid
        self._poller = select.poll()
        self._skeletons: set[str] = set()  # staging paths with a skeleton (see _skeleton)
        self._learned: dict[int, int] = {}  # page -> environments seen writing it (see _learn)
        self._samples = 0
        self._learning: tuple[float, int] | None = None  # (when, pid): the next environment to look at
        self._confiner = confine.Confiner() if confine is not None else None
        self._interpreter_binds, self._interpreter_links = _interpreter_view()
        # Processes an environment of a tier without a pid namespace leaves behind are
        # re-parented here (and reaped silently) rather than to the host's init.
        if self._confiner is not None:
            self._confiner._prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        # Namespaces-tier children are forked straight into a new pid namespace: the zygote
        # unshares one for its next child, then comes back to its own with this fd.
        self._own_pids = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC) \
            if self._confiner is not None else -1
        # Every fd the zygote holds is below its soft limit; close_range(2) makes the size of
        # the range free where the kernel has it.
        self._fd_ceiling = max(resource.getrlimit(resource.RLIMIT_NOFILE)[0], 1024,
                               control.fileno() + 1)
        self._child = child.Child(self._confiner, self._interpreter_binds, self._fd_ceiling,
                                  _run)
        self._wakeup_r, self._wakeup_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(self._wakeup_w)
        # A Python-level handler (rather than SIG_DFL, which ignores SIGCHLD) makes the
        # interpreter write to the wakeup fd on each SIGCHLD.
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)

    def serve(self) -> int:
        """Answer requests, follow children in set-up and report exits. Returns the
        zygote's exit status."""
        try:
            self._send({"op": "ready", "pid": os.getpid(),
                        "python": "{}.{}.{}".format(*sys.version_info[:3])})
            self._poller.register(self._control.fileno(), select.POLLIN)
            self._poller.register(self._wakeup_r, select.POLLIN)
            while True:
                events = self._poller.poll(self._poll_timeout())
                # Reports before exits (``_reap`` also reads what a child it reaps reported):
                # a child reports before it can exit, so a pid is known as spawned, or as
                # failed, before its exit is.
                woken = False
                for fd, _ in events:
                    if fd == self._wakeup_r:
                        woken = True
                    elif fd == self._control.fileno():
                        self._on_requests()
                    elif fd in self._setups:
                        self._on_report(self._setups[fd])
                if woken:
                    self._drain_wakeups()
                    self._reap()
                self._expire()
                self._learn()
        except _PlatformGone:
            return 0
        finally:
            # Also on a fatal error: environments must not outlive the zygote unnoticed.
            if os.getpid() == self._pid:
                self._kill_children()

    def _send(self, message: Message, fds: Iterable[int] = ()) -> None:
        try:
            data = json.dumps(message).encode()
            if fds:
                socket.send_fds(self._control, [data], list(fds))
            else:
                self._control.send(data)
        except OSError as exc:
            raise _PlatformGone() from exc

    def _drain_wakeups(self) -> None:
        try:
            while os.read(self._wakeup_r, 4096):
                pass
        except BlockingIOError:
            pass

    def _reap(self) -> None:
        """Report exits of environments; a spare that dies unused is lost; a child that dies
        in set-up fails its request. Other pids (children killed after a failed set-up, orphans
        an environment without a pid namespace left behind) are reaped silently."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self._reaped_init_partner(pid)
            setup = self._setup_pids.get(pid)
            if setup is not None:
                # Its report, if it made one, is waiting: a child reports before it exits.
                self._on_report(setup)
            setup = self._setup_pids.pop(pid, None)
            if setup is not None:
                setup.pid = None  # reaped: the number may be reused, never kill it
                self._finish(setup, "the child died during setup")
            spare_id = self._spare_ids.pop(pid, None)
            if spare_id is not None and spare_id in self._spares:
                sock, _ = self._spares.pop(spare_id)
                sock.close()
                self._send({"op": "spare_lost", "id": spare_id})
            self._standbys.discard(pid)
            if self._children.pop(pid, None) is None:
                continue
            if os.WIFSIGNALED(status):
                self._send({"op": "exited", "pid": pid, "exit_code": None,
                            "signal": os.WTERMSIG(status)})
            else:
                self._send({"op": "exited", "pid": pid,
                            "exit_code": os.WEXITSTATUS(status), "signal": None})

    def _reaped_init_partner(self, pid: int) -> None:
        """``pid`` is reaped: if it was a namespaces-tier child, kill the init of its pid
        namespace (and with it what the environment left there); if it was such an init,
        forget it (its number may be reused: never kill it again)."""
        child_pid = self._init_of.pop(pid, None)
        if child_pid is not None:
            del self._inits[child_pid]
            return
        init = self._inits.pop(pid, None)
        if init is not None:
            del self._init_of[init]
            try:
                os.kill(init, signal.SIGKILL)  # reaped silently by _reap
            except OSError:
                pass

    def _kill_children(self) -> None:
        pids = set(self._children) | set(self._spare_ids) | set(self._setup_pids) \
            | set(self._init_of)
        for pid in pids:
            for kill in (os.killpg, os.kill):
                try:
                    kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        # Reap in whatever order they die: a dying pid-namespace init waits until every
        # process of its namespace is reaped, and the environment in it (pid 2) is this
        # zygote's child, so waiting for an init before its environment would never end.
        while True:
            try:
                os.waitpid(-1, 0)
            except ChildProcessError:
                break
            except InterruptedError:
                continue
        self._children.clear()

    # --- requests ---------------------------------------------------------------------------

    def _on_requests(self) -> None:
        """Take every request waiting on the control socket."""
        while True:
            try:
                data, fds, flags = _recv_nowait(self._control, _MAX_DATAGRAM, 4)
            except BlockingIOError:
                return
            except OSError as exc:
                raise _PlatformGone() from exc
            if not data and not fds:
                raise _PlatformGone()
            self._on_request(data, fds, flags)

    def _on_request(self, data: bytes, fds: list[int], flags: int) -> None:
        try:
            request = json.loads(data)
            if not isinstance(request, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            self._close_fds(fds)
            sys.stderr.write(f"strato zygote: ignoring an unreadable request: {exc}\n")
            return
        key = request.get("id")
        op = request.get("op")
        if op not in ("spawn", "prepare", "show"):
            self._close_fds(fds)
            sys.stderr.write(f"strato zygote: ignoring unknown op {op!r}\n")
            return
        failed = f"{op}_failed"
        problem: str | None
        if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
            problem = "request truncated"
        elif op == "prepare":
            problem = _valid_prepare(request, fds)
        elif op == "show":
            problem = _valid_show(request, fds, self._standbys)
        else:
            problem = _valid_spawn(request, fds)
            if problem is None and "spare" in request \
                    and request["spare"] not in self._spares:
                problem = f"no spare {request['spare']!r}"
        if problem is not None:
            self._close_fds(fds)
            self._send({"op": failed, "id": key, "error": f"invalid request: {problem}"})
            return
        if op == "spawn" and "spare" in request:
            self._hand_to_spare(key, request["spare"], data, fds)
        elif op == "show":
            self._show(key, request["pid"], request["task_root"])
        else:
            self._fork(op, key, request, fds)

    @staticmethod
    def _close_fds(fds: Iterable[int]) -> None:
        for fd in fds:
            os.close(fd)

    def _fork(self, op: str, key: Any, request: Message, fds: list[int]) -> None:
        namespaced = op == "prepare" or request.get("tier") == "namespaces"
        failed = "spawn_failed" if op == "spawn" else "prepare_failed"
        if namespaced:
            try:
                self._skeleton(request["root"])
            except (OSError, confine.SetupError) as exc:
                self._close_fds(fds)
                self._send({"op": failed, "id": key, "error": f"the root's skeleton: {exc}"})
                return
        parent, ours = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            pid = self._fork_child(namespaced, request.get("cgroups") or [])
        except OSError as exc:
            for sock in (parent, ours):
                sock.close()
            self._close_fds(fds)
            self._send({"op": failed, "id": key, "error": f"fork: {exc}"})
            return
        if pid == 0:
            parent.close()
            self._leave_zygote([ours.fileno(), *fds])
            if op == "prepare":
                self._child.become_spare(request, ours)  # never returns
            self._child.become_environment(request, fds, ours)  # never returns
        ours.close()
        self._close_fds(fds)
        self._follow(_Setup("prepare" if op == "prepare" else "spawn", key, parent, pid,
                            standby=bool(request.get("standby"))))

    def _show(self, key: Any, pid: int, task_root: str) -> None:
        """Fork a child that shows ``task_root`` at /var/task of the standby environment
        ``pid`` (``child.show_code``); answered ``shown`` or ``show_failed``. Single use:
        the environment is no standby any more, whatever the outcome."""
        self._standbys.discard(pid)
        try:
            # Opened here, while ``pid`` is an unreaped child: the number cannot be reused.
            mounts = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            self._send({"op": "show_failed", "id": key,
                        "error": f"the environment's mount namespace: {exc}"})
            return
        parent, ours = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            helper = forking.fork()
        except OSError as exc:
            for sock in (parent, ours):
                sock.close()
            os.close(mounts)
            self._send({"op": "show_failed", "id": key, "error": f"fork: {exc}"})
            return
        if helper == 0:
            parent.close()
            self._leave_zygote([ours.fileno(), mounts])
            self._child.show_code(task_root, mounts, ours)  # never returns
        ours.close()
        os.close(mounts)
        self._follow(_Setup("show", key, parent, helper))

    def _fork_child(self, namespaced: bool, cgroups: Iterable[str]) -> int:
        """Fork; with ``namespaced``, the child is pid 2 of a new pid namespace whose init,
        forked first into ``cgroups``, reaps its orphans (``reaper.py``). The zygote itself
        stays where it is."""
        if not namespaced:
            return forking.fork()
        assert self._confiner is not None  # a request that needs it is refused without it
        self._confiner.unshare(confine.CLONE_NEWPID, "new pid namespace")
        init = None
        try:
            init = forking.fork()
            if init == 0:
                try:
                    self._leave_zygote([])
                    reaper.serve(self._confiner._prctl, lambda: child.join_cgroups(cgroups))
                finally:
                    os._exit(127)  # serve never returns: nothing of the zygote's may run on
            pid = forking.fork()
        except BaseException:
            if init:
                os.kill(init, signal.SIGKILL)  # reaped silently by _reap
            self._confiner.enter_pid_namespace(self._own_pids)
            raise
        if pid:
            self._confiner.enter_pid_namespace(self._own_pids)
            self._inits[pid] = init
            self._init_of[init] = pid
        return pid

    def _skeleton(self, root: Message) -> None:
        """Build the skeleton of namespaces-tier roots at ``root["staging"]`` unless it is
        built: the system part of the root with this interpreter's own directories
        (``confine.compile_root``), once, in the zygote's own mount namespace (a slave of the
        host's: the host's mounts still come in, the zygote's never go out), so that every
        environment's mount namespace is a copy with the skeleton in place. Raises OSError
        or SetupError (what was mounted is detached again)."""
        staging = root["staging"]
        if staging in self._skeletons:
            return
        assert self._confiner is not None  # a request that needs it is refused without it
        if not self._skeletons:
            self._confiner.unshare(confine.CLONE_NEWNS, "a mount namespace for the zygote")
            self._confiner.make_slave()
        binds = list(root.get("binds") or [])
        symlinks = list(root.get("symlinks") or [])
        # A host path already in the root (an interpreter below /usr) needs no symlink.
        taken = [inside for _, inside, _ in binds + self._interpreter_binds]
        taken += [path for path, _ in symlinks]
        symlinks += [link for link in self._interpreter_links if not _below(link[0], taken)
                     and not _below(link[0], [other[0] for other in self._interpreter_links
                                              if other is not link])]
        plan = {"staging": staging, "symlinks": symlinks,
                "binds": binds + self._interpreter_binds,
                "runtime_trees": list(root.get("runtime_trees") or [])}
        try:
            self._confiner.build_skeleton(confine.compile_root(plan))
        except BaseException:
            self._confiner.detach(staging)
            raise
        self._skeletons.add(staging)

    def _hand_to_spare(self, env_id: Any, spare_id: Any, data: bytes, fds: list[int]) -> None:
        """Pass the request on to the spare, which finishes the recipe and becomes the
        environment."""
        sock, pid = self._spares.pop(spare_id)
        try:
            socket.send_fds(sock, [data], fds)
        except OSError as exc:
            sock.close()
            self._send({"op": "spawn_failed", "id": env_id,
                        "error": f"spare {spare_id} is gone: {exc}"})
            return
        finally:
            self._close_fds(fds)
        self._follow(_Setup("finish", env_id, sock, pid))

    def _follow(self, setup: _Setup) -> None:
        sock = setup.sock
        sock.setblocking(False)
        self._setups[sock.fileno()] = setup
        self._poller.register(sock.fileno(), select.POLLIN)
        assert setup.pid is not None  # a child is followed from its fork on, before any reaping
        self._setup_pids[setup.pid] = setup

    # --- children in set-up -----------------------------------------------------------------

    def _on_report(self, setup: _Setup) -> None:
        """Read everything the child reported so far."""
        while setup.sock.fileno() in self._setups:
            try:
                data, got, _, _ = socket.recv_fds(setup.sock, 65536, 4)
            except BlockingIOError:
                return
            except OSError as exc:
                self._finish(setup, f"the child's report was lost: {exc}")
                return
            setup.fds.extend(got)
            if not data:
                self._finish(setup, "the child died during setup")
                return
            # "ok", "ready" or the failed step.
            self._finish(setup, data.decode("utf-8", "replace"))
            return

    def _expire(self) -> None:
        now = time.monotonic()
        for setup in [s for s in self._setups.values() if s.deadline <= now]:
            self._finish(setup, f"setup did not finish within {_SETUP_TIMEOUT_MS} ms")

    def _poll_timeout(self) -> int | None:
        times = [setup.deadline for setup in self._setups.values()]
        if self._learning is not None:
            times.append(self._learning[0])
        if not times:
            return None
        return max(0, int((min(times) - time.monotonic()) * 1000) + 1)

    def _learn(self) -> None:
        """When it is time, note which inherited pages the environment being looked at has
        written; after ``_LEARN_SAMPLES`` environments, spares prefault what all wrote."""
        if self._learning is None or time.monotonic() < self._learning[0]:
            return
        _, pid = self._learning
        self._learning = None
        if pid not in self._children:  # gone already: the next one will do
            return
        regions = forking.writable_regions()
        # A page the zygote itself wrote since is private to both: its writes are not the
        # environment's, and an idle zygote leaves such pages shared.
        written = forking.private_pages(pid, regions) - forking.private_pages(os.getpid(),
                                                                              regions)
        for page in written:
            self._learned[page] = self._learned.get(page, 0) + 1
        self._samples += 1
        if self._samples == _LEARN_SAMPLES:
            common = [page for page, seen in self._learned.items() if seen == _LEARN_SAMPLES]
            self._child.prefault_ranges = forking.ranges_of(common)
            self._learned = {}

    def _finish(self, setup: _Setup, outcome: str) -> None:
        """The child is done with its set-up: answer the platform, and clean up after a
        failure (the child is killed, then reaped silently by ``_reap``)."""
        fd = setup.sock.fileno()
        if self._setups.pop(fd, None) is None:
            return
        self._poller.unregister(fd)
        pid = setup.pid
        if pid is not None:
            self._setup_pids.pop(pid, None)
        passed, setup.fds = setup.fds, []
        if outcome == "ready" and pid is not None:
            self._spares[setup.key] = (setup.sock, pid)
            self._spare_ids[pid] = setup.key
            self._close_fds(passed)
            self._send({"op": "prepared", "id": setup.key, "pid": pid})
            return
        setup.sock.close()
        if setup.kind == "show":  # the helper exits by itself; reaped silently
            self._close_fds(passed)
            if outcome == "ok":
                self._send({"op": "shown", "id": setup.key})
            else:
                if pid is not None:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
                self._send({"op": "show_failed", "id": setup.key, "error": outcome})
            return
        if outcome == "ok" and pid is not None:
            self._spare_ids.pop(pid, None)
            if setup.request_standby:
                self._standbys.add(pid)
            self._children[pid] = setup.key
            if setup.kind == "finish" and self._learning is None \
                    and self._samples < _LEARN_SAMPLES:
                self._learning = (time.monotonic() + _LEARN_AFTER_S, pid)
            try:
                self._send({"op": "spawned", "id": setup.key, "pid": pid}, passed)
            finally:
                self._close_fds(passed)
            return
        self._close_fds(passed)
        if outcome in ("ok", "ready"):
            outcome = "the child died during setup"
        if pid is not None:
            self._spare_ids.pop(pid, None)
            try:
                os.kill(pid, signal.SIGKILL)  # reaped (and ignored) by _reap
            except OSError:
                pass
        failed = "prepare_failed" if setup.kind == "prepare" else "spawn_failed"
        self._send({"op": failed, "id": setup.key, "error": outcome})

    # --- in the forked child ----------------------------------------------------------

    def _leave_zygote(self, keep: Iterable[int]) -> None:
        """First thing in a forked child: let go of the zygote's fds (control socket, other
        children's sockets, the wakeup pipe), keeping only ``keep``."""
        signal.set_wakeup_fd(-1)
        self._control.detach()  # its fd is closed below; the object must never close it
        for setup in self._setups.values():
            setup.sock.detach()
        for sock, _ in self._spares.values():
            sock.detach()
        low = 3
        for fd in sorted(keep):
            if fd >= low:
                os.closerange(low, fd)
                low = fd + 1
        os.closerange(low, self._fd_ceiling)


def _run(request: Message) -> int:
    """In a child that reported success: exec (never returns) or run the runtime (returns
    its exit status)."""
    if request["mode"] == "exec":
        _exec(request["argv"], request["env"])
    forking.reseed_after_fork()
    if request.get("tier") == "namespaces":
        _relocate_interpreter()
        argv = [os.path.join(RUNTIME_DIR, _BOOTSTRAP)]
    else:
        argv = [os.path.join(_GUEST_DIR, _BOOTSTRAP)]
    return _run_python(request["env"], argv,
                       child.CHANNEL_FD if request.get("channel") else None)


def _exec(argv: list[str], env: dict[str, str]) -> NoReturn:
    # Python ignores SIGPIPE and SIGXFSZ; a new program must start with the defaults.
    for signum in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(signum, signal.SIG_DFL)
    try:
        os.execve(argv[0], argv, env)
    except OSError as exc:
        os.write(2, f"strato: cannot execute {argv[0]}: {exc.strerror}\n".encode())
        os._exit(127)


def _run_python(env: dict[str, str], argv: list[str], channel_fd: int | None) -> int:
    """Run the built-in runtime in this (forked) interpreter as ``argv``, over the runtime
    channel at ``channel_fd`` when there is one; returns the exit status."""
    os.environ.clear()  # already empty (see main); kept so that nothing can leak through
    # Item by item: MutableMapping.update's ABC checks write to some 25 more inherited pages.
    for name, value in env.items():
        os.environ[name] = value
    time.tzset()  # the zygote's time zone state came from its own (empty) environment
    # New stream objects on the log pipe: nothing the zygote buffered can leak into them.
    # buffering=1: line-buffered text.
    # (``__stdout__`` and ``__stderr__`` are final to type checkers, not to the interpreter.)
    sys.stdout = sys.__stdout__ = open(  # type: ignore[misc]  # noqa: SIM115 (kept open)
        1, "w", buffering=1, encoding="utf-8", closefd=False)
    sys.stderr = sys.__stderr__ = open(  # type: ignore[misc]  # noqa: SIM115 (kept open)
        2, "w", buffering=1, encoding="utf-8", errors="backslashreplace", closefd=False)
    sys.argv = argv
    if _GUEST_DIR in sys.path:
        sys.path.remove(_GUEST_DIR)
    status: int | str | None
    try:
        status = bootstrap.main(channel_fd)
    except SystemExit as exc:
        status = exc.code
    if status is None:
        status = 0
    elif not isinstance(status, int):
        sys.stderr.write(f"{status}\n")
        status = 1
    # What the interpreter would do at exit, short of joining threads.
    atexit._run_exitfuncs()
    bootstrap.flush_output()
    return status & 0xFF


def _warm_up() -> None:
    for name in _WARM_MODULES:
        try:
            __import__(name)
        except ImportError:
            pass
    # Move everything imported so far out of the collector's reach: a child's collections
    # then do not write to (and copy) the zygote's pages.
    gc.collect()
    gc.freeze()


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not argv[1].isdigit():
        sys.stderr.write("usage: zygote.py <control_fd>\n")
        return 2
    control = socket.socket(fileno=int(argv[1]))
    _warm_up()
    # The zygote needs no environment of its own, and a child then only adds its variables:
    # the first writes after a fork fault pages in, so every removed variable costs time.
    os.environ.clear()
    return Zygote(control).serve()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
