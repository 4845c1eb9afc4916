"""The zygote: a pre-initialised interpreter that forks execution environments.

Started by the platform (``strato.sandbox.zygote``) as
``python3.X -E -s -S zygote.py <control_fd>``, where ``control_fd`` is one end of an
``AF_UNIX``/``SOCK_SEQPACKET`` socketpair. It imports the built-in runtime once, so a forked
environment reaches its first ``invocation/next`` without importing anything.

Protocol: one UTF-8 JSON object per datagram, file descriptors attached with ``send_fds``.

- zygote -> platform, once: ``{"op": "ready", "pid": <pid>, "python": "3.12.1"}``
- platform -> zygote: ``{"op": "spawn", "id": <env id>, "mode": "python" | "exec",
  "argv": [...] (exec: argv[0] absolute), "env": {...} (the whole environment), "cwd": <dir>,
  "cgroups": [<cgroup.procs path>, ...], "tmpfs_mb": <int> | null, "nofile": <int> | null}``
  with exactly one fd attached: the write end of the environment's log pipe.
- zygote -> platform: ``{"op": "spawned", "id", "pid"}`` or ``{"op": "spawn_failed", "id",
  "error": "<step>: <reason>"}``; ``spawned`` always precedes that pid's
  ``{"op": "exited", "pid", "exit_code": <int> | null, "signal": <int> | null}``.

A child sets itself up in this order, reporting success or the failed step over a private
pipe before the zygote answers: new session; join each cgroup; private mount namespace with a
fresh tmpfs on /tmp (``tmpfs_mb``); RLIMIT_NOFILE; chdir to ``cwd``; stdout and stderr onto the
log pipe. Only then does it close every other fd, restore signal dispositions, and either
``execve`` (exec mode; a failure is written to the log and the status is 127) or run
``lambda_runtime.bootstrap.main()`` under ``env`` (python mode). When the control socket
reaches EOF the zygote SIGKILLs its children's process groups and exits.

The zygote itself never runs user code and writes nothing to stdout; stderr only for fatal
errors. Stdlib only, Python 3.10 to 3.13.
"""

import os
import sys

_GUEST_DIR = os.path.dirname(os.path.abspath(__file__))
if _GUEST_DIR not in sys.path:
    sys.path.insert(0, _GUEST_DIR)

import atexit  # noqa: E402  (the guest directory must be on sys.path first)
import gc  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import select  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402

try:
    import ctypes  # only for mount(2), and unshare(2) before 3.12; never imported in a child
except ImportError:  # a build without _ctypes: private /tmp is then unavailable
    ctypes = None

import lambda_runtime.bootstrap as bootstrap  # noqa: E402

# Cheap, commonly imported stdlib modules: imported here once, shared copy-on-write by every
# environment, so user code's INIT does not pay for them.
_WARM_MODULES = ("base64", "datetime", "hashlib", "uuid", "urllib.parse", "typing",
                 "dataclasses", "collections", "functools", "tempfile")

_MAX_DATAGRAM = 1 << 20
_SETUP_TIMEOUT_MS = 10_000
_CLONE_NEWNS = 0x00020000
_MS_NOSUID, _MS_NODEV, _MS_REC, _MS_PRIVATE = 0x2, 0x4, 0x4000, 0x40000
_MS_RDONLY, _MS_REMOUNT, _MS_BIND = 0x1, 0x20, 0x1000
_BOOTSTRAP_ARGV = [os.path.join(_GUEST_DIR, "lambda_runtime", "bootstrap.py")]


class SetupError(Exception):
    """A child's setup step failed; the message names the step."""


class _PlatformGone(Exception):
    """The control socket is closed: the platform died or stopped the zygote."""


class PrivateTmp:
    """unshare(CLONE_NEWNS) + mount(2) for a per-environment tmpfs /tmp, resolved in the
    zygote so that a child calls straight into libc."""

    def __init__(self):
        self.unavailable = None
        self._mount = self._unshare = None
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            self._mount = libc.mount
            self._mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                                    ctypes.c_ulong, ctypes.c_char_p]
            self._mount.restype = ctypes.c_int
            if not hasattr(os, "unshare"):
                self._unshare = libc.unshare
                self._unshare.argtypes = [ctypes.c_int]
                self._unshare.restype = ctypes.c_int
        except (AttributeError, OSError) as exc:
            self.unavailable = f"libc mount/unshare unavailable: {exc}"

    def _check(self, result, step):
        if result != 0:
            err = ctypes.get_errno()
            raise SetupError(f"{step}: [Errno {err}] {os.strerror(err)}")

    def apply(self, size_mb, task_root=None):
        """Give the calling process its own mount namespace and an empty /tmp of size_mb;
        with task_root, that directory is also bound read-only at /var/task (before /tmp is
        covered, so a package stored under the host's /tmp stays reachable)."""
        if ctypes is None or self.unavailable:
            raise SetupError(f"private /tmp: {self.unavailable or 'ctypes is unavailable'}")
        if self._unshare is None:
            try:
                os.unshare(os.CLONE_NEWNS)
            except OSError as exc:
                raise SetupError(f"unshare mount namespace: {exc}") from exc
        else:
            self._check(self._unshare(_CLONE_NEWNS), "unshare mount namespace")
        # Without this, the tmpfs mount would propagate back to the host's namespace.
        self._check(self._mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None),
                    "make / private")
        if task_root:
            self._check(self._mount(task_root.encode(), b"/var/task", None, _MS_BIND | _MS_REC,
                                    None), "bind the function code at /var/task")
            self._check(self._mount(None, b"/var/task", None,
                                    _MS_BIND | _MS_REMOUNT | _MS_RDONLY | _MS_REC, None),
                        "make /var/task read-only")
        options = b"size=%dm,mode=1777" % size_mb
        self._check(self._mount(b"tmpfs", b"/tmp", b"tmpfs", _MS_NOSUID | _MS_NODEV, options),
                    "mount tmpfs on /tmp")


def _valid_spawn(request, fds):
    """The reason a spawn request cannot be honoured, or None."""
    if len(fds) != 1:
        return f"expected exactly one fd (the log pipe), got {len(fds)}"
    if request.get("mode") not in ("python", "exec"):
        return f"unknown mode {request.get('mode')!r}"
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
    for key in ("tmpfs_mb", "nofile"):
        value = request.get(key)
        if value is not None and (not isinstance(value, int) or value <= 0):
            return f"{key} must be a positive integer or null"
    cgroups = request.get("cgroups") or []
    if not isinstance(cgroups, list) or not all(isinstance(p, str) for p in cgroups):
        return "cgroups must be a list of paths"
    return None


class Zygote:
    """The fork server. ``serve`` runs until the control socket closes."""

    def __init__(self, control):
        self._control = control
        self._pid = os.getpid()
        self._children = {}  # pid -> environment id, for children reported as spawned
        self._private_tmp = PrivateTmp() if ctypes is not None else None
        # Every fd the zygote holds is below its soft limit; close_range(2) makes the size of
        # the range free where the kernel has it.
        self._fd_ceiling = max(resource.getrlimit(resource.RLIMIT_NOFILE)[0], 1024,
                               control.fileno() + 1)
        self._wakeup_r, self._wakeup_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(self._wakeup_w)
        # A Python-level handler (rather than SIG_DFL, which ignores SIGCHLD) makes the
        # interpreter write to the wakeup fd on each SIGCHLD.
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)

    def serve(self):
        """Answer requests and report exits. Returns the zygote's exit status."""
        try:
            self._send({"op": "ready", "pid": os.getpid(),
                        "python": "%d.%d.%d" % sys.version_info[:3]})
            poller = select.poll()
            poller.register(self._control.fileno(), select.POLLIN)
            poller.register(self._wakeup_r, select.POLLIN)
            while True:
                for fd, _ in poller.poll():
                    if fd == self._wakeup_r:
                        self._drain_wakeups()
                        self._reap()
                    else:
                        self._on_request()
        except _PlatformGone:
            return 0
        finally:
            # Also on a fatal error: environments must not outlive the zygote unnoticed.
            if os.getpid() == self._pid:
                self._kill_children()

    def _send(self, message):
        try:
            self._control.send(json.dumps(message).encode())
        except OSError as exc:
            raise _PlatformGone() from exc

    def _drain_wakeups(self):
        try:
            while os.read(self._wakeup_r, 4096):
                pass
        except BlockingIOError:
            pass

    def _reap(self):
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if self._children.pop(pid, None) is None:
                continue
            if os.WIFSIGNALED(status):
                self._send({"op": "exited", "pid": pid, "exit_code": None,
                            "signal": os.WTERMSIG(status)})
            else:
                self._send({"op": "exited", "pid": pid,
                            "exit_code": os.WEXITSTATUS(status), "signal": None})

    def _kill_children(self):
        for pid in list(self._children):
            for kill in (os.killpg, os.kill):
                try:
                    kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        for pid in list(self._children):
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        self._children.clear()

    def _on_request(self):
        try:
            data, fds, flags, _ = socket.recv_fds(self._control, _MAX_DATAGRAM, 4)
        except OSError as exc:
            raise _PlatformGone() from exc
        if not data and not fds:
            raise _PlatformGone()
        try:
            request = json.loads(data)
            if not isinstance(request, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            self._close_fds(fds)
            sys.stderr.write(f"strato zygote: ignoring an unreadable request: {exc}\n")
            return
        env_id = request.get("id")
        if request.get("op") != "spawn":
            self._close_fds(fds)
            sys.stderr.write(f"strato zygote: ignoring unknown op {request.get('op')!r}\n")
            return
        if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
            problem = "request truncated"
        else:
            problem = _valid_spawn(request, fds)
        if problem is not None:
            self._close_fds(fds)
            self._send({"op": "spawn_failed", "id": env_id, "error": f"invalid request: {problem}"})
            return
        self._spawn(env_id, request, fds[0])

    @staticmethod
    def _close_fds(fds):
        for fd in fds:
            os.close(fd)

    def _spawn(self, env_id, request, log_fd):
        status_r, status_w = os.pipe2(os.O_CLOEXEC)
        try:
            pid = os.fork()
        except OSError as exc:
            for fd in (status_r, status_w, log_fd):
                os.close(fd)
            self._send({"op": "spawn_failed", "id": env_id, "error": f"fork: {exc}"})
            return
        if pid == 0:
            self._become_environment(request, log_fd, status_w)  # never returns
        os.close(status_w)
        os.close(log_fd)
        try:
            report = self._read_report(status_r, pid)
        finally:
            os.close(status_r)
        if report == "ok":
            self._children[pid] = env_id
            self._send({"op": "spawned", "id": env_id, "pid": pid})
            return
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        self._send({"op": "spawn_failed", "id": env_id, "error": report})

    @staticmethod
    def _read_report(status_r, pid):
        poller = select.poll()
        poller.register(status_r, select.POLLIN)
        if not poller.poll(_SETUP_TIMEOUT_MS):
            os.kill(pid, signal.SIGKILL)
            return f"setup did not finish within {_SETUP_TIMEOUT_MS} ms"
        report = os.read(status_r, 65536).decode("utf-8", "replace")
        return report or "the child died during setup"

    # --- everything below runs in the forked child --------------------------------------

    def _become_environment(self, request, log_fd, status_w):
        """Set up the child, report to the zygote, then exec or run the runtime. Never
        returns: every path ends in ``execve`` or ``os._exit``."""
        status = 127
        try:
            try:
                self._set_up(request, log_fd)
            except BaseException as exc:
                text = str(exc) if isinstance(exc, SetupError) else f"setup: {exc!r}"
                os.write(status_w, text.encode("utf-8", "replace")[:60000])
                os._exit(127)
            os.write(status_w, b"ok")
            self._control.detach()  # its fd is closed below; the object must never close it
            signal.set_wakeup_fd(-1)
            os.closerange(3, self._fd_ceiling)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_SETMASK, set())
            if request["mode"] == "exec":
                _exec(request["argv"], request["env"])
            else:
                status = _run_python(request["env"])
        except BaseException:
            status = 1
            try:
                traceback.print_exc()
                sys.stderr.flush()
            except BaseException:
                pass
        finally:
            os._exit(status)

    def _set_up(self, request, log_fd):
        step = "setsid"
        try:
            os.setsid()
            pid_text = str(os.getpid()).encode()
            for path in request.get("cgroups") or ():
                step = f"join cgroup {path}"
                fd = os.open(path, os.O_WRONLY)
                try:
                    os.write(fd, pid_text)
                finally:
                    os.close(fd)
            if request.get("tmpfs_mb"):
                step = "private /tmp"
                if self._private_tmp is None:
                    raise SetupError("private /tmp: ctypes is unavailable")
                self._private_tmp.apply(request["tmpfs_mb"], request.get("task_root"))
            if request.get("nofile"):
                step = f"set RLIMIT_NOFILE to {request['nofile']}"
                resource.setrlimit(resource.RLIMIT_NOFILE, (request["nofile"],) * 2)
            step = f"chdir {request['cwd']}"
            os.chdir(request["cwd"])
            step = "redirect stdout/stderr to the log pipe"
            os.dup2(log_fd, 1)
            os.dup2(log_fd, 2)
        except SetupError:
            raise
        except Exception as exc:
            raise SetupError(f"{step}: {exc}") from exc


def _exec(argv, env):
    # Python ignores SIGPIPE and SIGXFSZ; a new program must start with the defaults.
    for signum in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(signum, signal.SIG_DFL)
    try:
        os.execve(argv[0], argv, env)
    except OSError as exc:
        os.write(2, f"strato: cannot execute {argv[0]}: {exc.strerror}\n".encode())
        os._exit(127)


def _run_python(env):
    """Run the built-in runtime in this (forked) interpreter; returns the exit status."""
    os.environ.clear()  # already empty (see main); kept so that nothing can leak through
    os.environ.update(env)
    time.tzset()  # the zygote's time zone state came from its own (empty) environment
    # New stream objects on the log pipe: nothing the zygote buffered can leak into them.
    # buffering=1: line-buffered text.
    sys.stdout = sys.__stdout__ = open(1, "w", buffering=1, encoding="utf-8", closefd=False)
    sys.stderr = sys.__stderr__ = open(2, "w", buffering=1, encoding="utf-8",
                                       errors="backslashreplace", closefd=False)
    sys.argv = list(_BOOTSTRAP_ARGV)
    if _GUEST_DIR in sys.path:
        sys.path.remove(_GUEST_DIR)
    try:
        status = bootstrap.main()
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


def _warm_up():
    for name in _WARM_MODULES:
        try:
            __import__(name)
        except ImportError:
            pass
    # Move everything imported so far out of the collector's reach: a child's collections
    # then do not write to (and copy) the zygote's pages.
    gc.collect()
    gc.freeze()


def main(argv):
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
