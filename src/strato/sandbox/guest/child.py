"""What a child forked by the zygote does on its way to user code: apply its tier's recipe
(``confine.py`` draws each one), report to the zygote over its private socket, then run.

Reports, one datagram each: ``ready`` (a spare waiting for its environment), ``ok`` (with the
Runtime API socket attached in the namespaces tier, then the fd of the detached tmpfs mount
its /tmp is a clone of, when it made one), or the failed step as ``<step>:
<reason>``, after which the child exits with 127. A namespaces-tier child is already pid 2 of
a pid namespace of its own when it starts (the zygote forked it there, after the namespace's
init: ``reaper.py``).

A standby environment (a spawn with ``standby``) takes the whole recipe but its code, then
execs its runtime, which waits on fd 3; ``show_code``, in a helper child forked for it,
mounts the code from outside later.

Two ways into the namespaces tier: a direct spawn takes the whole recipe at once; a spare
(``become_spare``) takes its first half ahead of demand (cgroups, namespaces, its /proc),
reports ``ready`` and blocks until the zygote passes it the request of the environment it
becomes, then takes the second half. The function-independent part of the root (the
skeleton) is already there: the zygote built it once in its own mount namespace, of which an
environment's is a copy. Everything before
the report runs as root in the host's user namespace and never touches user code.

Stdlib only, Python 3.10 to 3.13; runs only in forked children (every path ends in
``execve`` or ``os._exit``).
"""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import sys
import traceback

import forking
import netsetup

TYPE_CHECKING = False  # not typing's: the annotations need no import at run time
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from typing import Any, NoReturn

SetupError: type[Exception]
try:
    import confine  # ctypes inside: a build without _ctypes can only run unconfined
    SetupError = confine.SetupError
except ImportError:
    # Only the unconfined tier runs without it (the zygote refuses the others).
    confine = None  # type: ignore[assignment]
    SetupError = RuntimeError

_MAX_DATAGRAM = 1 << 20


#: Where a python-mode environment finds its runtime channel (after stdin, stdout, stderr).
CHANNEL_FD = 3


class Child:
    """Built once in the zygote (before any fork) with what every child needs: the
    ``Confiner``, the interpreter's own read-only binds (readable in the fallback tier), the
    highest fd to close, and ``run(request)``, which execs or runs the runtime and returns an
    exit status."""

    def __init__(self, confiner: confine.Confiner | None,
                 interpreter_binds: Sequence[Sequence[str]], fd_ceiling: int,
                 run: Callable[[dict[str, Any]], int]) -> None:
        #: Pages a spare copies ahead of its environment (``forking.prefault``).
        self.prefault_ranges: Sequence[tuple[int, int]] = ()
        self._confiner = confiner
        self._interpreter_binds = interpreter_binds
        self._fd_ceiling = fd_ceiling
        self._run_request = run

    def _confinement(self) -> confine.Confiner:
        """The ``Confiner``, which every tier but ``unconfined`` needs (the zygote refuses
        their requests when it has none, as without ctypes)."""
        if self._confiner is None:
            raise SetupError("confinement needs ctypes")
        return self._confiner

    def become_environment(self, request: dict[str, Any], fds: list[int],
                           report: socket.socket) -> NoReturn:
        """Set up the child, report to the zygote, then run. Never returns."""
        try:
            passed = self._set_up(request, fds, report)
        except BaseException as exc:
            _report_failure(report, exc)
        self._run(request, report, passed, fds)

    def become_spare(self, request: dict[str, Any], report: socket.socket) -> NoReturn:
        """Take the first half of the namespaces recipe, report ``ready``, wait for the
        environment's request, then finish the recipe as that environment. Exits quietly
        when the zygote closes the socket instead. Never returns."""
        staging = request["root"]["staging"]
        try:
            os.umask(0o022)
            join_cgroups(request.get("cgroups") or ())
            self._unshare()
            self._confinement().enter_root(staging)
            forking.prefault(self.prefault_ranges)
        except BaseException as exc:
            _report_failure(report, exc)
        try:
            report.send(b"ready")
            data, fds, _, _ = socket.recv_fds(report, _MAX_DATAGRAM, 4)
        except OSError:
            os._exit(0)
        if not data:  # the zygote is gone, or gave the spare up
            os._exit(0)
        try:
            request = json.loads(data)
            passed = self._finish_namespaces(request, fds, staging)
            _redirect_output(request, fds[0])
        except BaseException as exc:
            _report_failure(report, exc)
        self._run(request, report, passed, fds)

    def show_code(self, task_root: str, mounts: int, report: socket.socket) -> NoReturn:
        """In a child forked for it: show ``task_root`` at /var/task of the standby
        environment whose mount namespace ``mounts`` is (``Confiner.show_code``), report
        ``ok`` or the failed step, and exit. Never returns."""
        try:
            self._confinement().show_code(task_root, mounts)
        except BaseException as exc:
            _report_failure(report, exc)
        try:
            report.send(b"ok")
        finally:
            os._exit(0)

    def _run(self, request: dict[str, Any], report: socket.socket,
             passed: list[int] | None, fds: list[int]) -> NoReturn:
        """Report success, shed everything but stdio (and the runtime channel, placed at
        ``CHANNEL_FD``), then exec or run the runtime."""
        status = 127
        try:
            if passed:
                socket.send_fds(report, [b"ok"], passed)
                for fd in passed:
                    os.close(fd)
            else:
                report.send(b"ok")
            report.close()
            if request.get("channel"):
                # Whatever held that fd (a pipe, a socket of the zygote's) is closed below.
                os.dup2(fds[-1], CHANNEL_FD)
            os.closerange(CHANNEL_FD + 1 if request.get("channel") else 3, self._fd_ceiling)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_SETMASK, set())
            status = self._run_request(request)
        except BaseException:
            status = 1
            try:
                traceback.print_exc()
                sys.stderr.flush()
            except BaseException:
                pass
        finally:
            os._exit(status)

    def _set_up(self, request: dict[str, Any], fds: list[int],
                report: socket.socket) -> list[int] | None:
        """Apply the request's tier; returns the fds to hand over (``_finish_namespaces``),
        or None."""
        tier = request.get("tier", "unconfined")
        try:
            os.umask(0o022)  # the platform's own umask is stricter; an environment's is Lambda's
            if tier != "namespaces":
                os.setsid()
            join_cgroups(request.get("cgroups") or ())
            passed = None
            if tier == "namespaces":
                staging = request["root"]["staging"]
                self._unshare()
                self._confinement().enter_root(staging)
                passed = self._finish_namespaces(request, fds, staging)
            elif request.get("nofile"):
                _plain_file_limit(request["nofile"])
            if tier == "fallback":
                self._confine_fallback(request)
            _redirect_output(request, fds[0])
            return passed
        except SetupError:
            raise
        except Exception as exc:
            raise SetupError(f"{tier} tier: {exc}") from exc

    def _unshare(self) -> None:
        """Namespaces tier, in the new pid namespace: new mount, ipc and uts namespaces
        (the last with a host name of its own), and a session of its own."""
        c = self._confinement()
        c.unshare(confine.CLONE_NEWNS | confine.CLONE_NEWIPC | confine.CLONE_NEWUTS)
        c.name_host()
        os.setsid()

    def _finish_namespaces(self, request: dict[str, Any], fds: list[int],
                           staging: str) -> list[int]:
        """The function-specific half of the namespaces recipe, in the
        environment's pid namespace after ``Confiner.enter_root``: its network, the Runtime API
        and platform API sockets, its code and /tmp, the switch of root, then the confinement.
        Returns the fds to hand over: the Runtime API socket's, the platform API socket's,
        then that of the /tmp mount when it made one
        (with ``tmp``, /tmp is a clone of the mount passed after the network namespace)."""
        c = self._confinement()
        tmp_fd = fds[1 + bool(request.get("netns"))] if request.get("tmp") else None
        if request.get("netns"):
            c.join_network(fds[1])
            os.close(fds[1])
        else:
            c.unshare(confine.CLONE_NEWNET, "new network namespace")
            try:
                netsetup.bring_loopback_up()
            except OSError as exc:
                raise SetupError(f"bring up the loopback interface: {exc}") from exc
        try:
            runtime_socket = c.runtime_api_socket()
        except OSError as exc:
            raise SetupError(f"listen for the Runtime API: {exc}") from exc
        try:
            platform_socket = c.runtime_api_socket(
                request.get("platform_port") or confine.PLATFORM_API_PORT)
        except OSError as exc:
            raise SetupError(f"listen for strato's API: {exc}") from exc
        root = request["root"]
        try:
            tmp_mount = c.finish_root({"staging": staging, "task_root": root["task_root"],
                                       "tmp_mb": root["tmp_mb"],
                                       "views": root.get("views", ())}, tmp_fd)
        except OSError as exc:
            raise SetupError(f"build the root: {exc}") from exc
        if tmp_fd is not None:
            os.close(tmp_fd)  # before user code, whatever ``_run`` keeps
        c.limit_files(request.get("nofile") or 1024)
        c.become(request["uid"], request["gid"], user_namespace=True)
        c.drop_capabilities()
        c.no_new_privs()
        c.install_seccomp()
        passed = [runtime_socket.detach(), platform_socket.detach()]
        return passed if tmp_mount is None else [*passed, tmp_mount]

    def _confine_fallback(self, request: dict[str, Any]) -> None:
        c = self._confinement()
        if request.get("uid") is not None:
            c.become(request["uid"], request["gid"], user_namespace=False)
        c.no_new_privs()
        rules = request.get("landlock")
        if rules is not None:
            read = list(rules.get("read") or ()) + [b[0] for b in self._interpreter_binds]
            c.restrict_paths(read, rules.get("write") or (), rules.get("tcp_ports"))
        c.install_seccomp(restrict_sockets=request.get("restrict_sockets", False))


def _report_failure(report: socket.socket, exc: BaseException) -> NoReturn:
    """Tell the zygote which step failed, then exit with 127."""
    text = str(exc) if isinstance(exc, SetupError) else f"setup: {exc!r}"
    try:
        report.send(text.encode("utf-8", "replace")[:60000])
    finally:
        os._exit(127)


def join_cgroups(paths: Iterable[str]) -> None:
    """Move this process into the groups whose ``cgroup.procs`` are ``paths``. Raises
    SetupError."""
    pid_text = str(os.getpid()).encode()
    for path in paths:
        try:
            fd = os.open(path, os.O_WRONLY)
            try:
                os.write(fd, pid_text)
            finally:
                os.close(fd)
        except OSError as exc:
            raise SetupError(f"join cgroup {path}: {exc}") from exc


def _redirect_output(request: dict[str, Any], log_fd: int) -> None:
    step = f"chdir {request['cwd']}"
    try:
        os.chdir(request["cwd"])
        step = "redirect stdout/stderr to the log pipe"
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
    except OSError as exc:
        raise SetupError(f"{step}: {exc}") from exc


def _plain_file_limit(nofile: int) -> None:
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
    except (OSError, ValueError) as exc:
        raise SetupError(f"set RLIMIT_NOFILE to {nofile}: {exc}") from exc
