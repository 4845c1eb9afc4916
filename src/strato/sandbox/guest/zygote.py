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
  "nofile": <int> | null, "uid"/"gid": <int> | null, "netns": <bool>,
  "root": {"staging", "task_root", "tmp_mb", "binds", "symlinks"} (namespaces tier),
  "landlock": {"read", "write", "tcp_ports"} | null, "restrict_sockets": <bool> (fallback
  tier: a seccomp filter that lets it make only TCP sockets and connected unix pairs)}``
  "channel": <bool>} with the write end of the environment's log pipe attached, then, when
  ``netns``, an fd of the network namespace to join, then, when ``channel`` (python mode
  only), the environment's end of its runtime channel (``lambda_runtime/channel.py``), which
  the runtime finds at fd 3.
- zygote -> platform: ``{"op": "spawned", "id", "pid"}`` (namespaces tier: with the
  environment's listening Runtime API socket attached) or ``{"op": "spawn_failed", "id",
  "error": "<step>: <reason>"}``; ``spawned`` always precedes that pid's
  ``{"op": "exited", "pid", "exit_code": <int> | null, "signal": <int> | null}``.

A child applies its tier (``confine.py`` draws each recipe) and reports success or the failed
step over a private socketpair before the zygote answers; then it closes every other fd,
restores signal dispositions, and either ``execve``s (exec mode; a failure is written to the
log and the status is 127) or runs ``lambda_runtime.bootstrap.main()`` under ``env`` (python
mode). When the control socket reaches EOF the zygote SIGKILLs its children and exits.

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
    import confine  # ctypes inside: a build without _ctypes can only run unconfined
except ImportError as _exc:
    confine = None
    _CONFINE_MISSING = str(_exc)
import netsetup  # noqa: E402

import lambda_runtime.bootstrap as bootstrap  # noqa: E402

# Cheap, commonly imported stdlib modules: imported here once, shared copy-on-write by every
# environment, so user code's INIT does not pay for them.
_WARM_MODULES = ("base64", "datetime", "hashlib", "uuid", "urllib.parse", "typing",
                 "dataclasses", "collections", "functools", "tempfile")

_MAX_DATAGRAM = 1 << 20
_SETUP_TIMEOUT_MS = 10_000
#: Where a python-mode environment finds its runtime channel (after stdin, stdout, stderr).
_CHANNEL_FD = 3
_PR_SET_CHILD_SUBREAPER = 36
_BOOTSTRAP_ARGV = [os.path.join(_GUEST_DIR, "lambda_runtime", "bootstrap.py")]
_TIERS = ("namespaces", "fallback", "unconfined")


SetupError = confine.SetupError if confine is not None else RuntimeError


class _PlatformGone(Exception):
    """The control socket is closed: the platform died or stopped the zygote."""


def _valid_spawn(request, fds):
    """The reason a spawn request cannot be honoured, or None."""
    tier = request.get("tier", "unconfined")
    if tier not in _TIERS:
        return f"unknown tier {tier!r}"
    if tier != "unconfined" and confine is None:
        return f"tier {tier} needs ctypes: {_CONFINE_MISSING}"
    wanted = 1 + bool(request.get("netns")) + bool(request.get("channel"))
    if len(fds) != wanted:
        return (f"expected {wanted} fds (log pipe[, network namespace][, runtime channel]), "
                f"got {len(fds)}")
    if request.get("mode") not in ("python", "exec"):
        return f"unknown mode {request.get('mode')!r}"
    if request.get("channel") and request["mode"] != "python":
        return "a runtime channel is for the built-in runtime (python mode) only"
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
        if not isinstance(root, dict) or not isinstance(root.get("staging"), str) \
                or not isinstance(root.get("task_root"), str) \
                or not isinstance(root.get("tmp_mb"), int) or root["tmp_mb"] <= 0:
            return "the namespaces tier needs root: {staging, task_root, tmp_mb, binds}"
        if request.get("uid") is None or request.get("gid") is None:
            return "the namespaces tier needs a uid and a gid"
    return None


def _interpreter_binds():
    """Read-only binds that let an environment of this interpreter import its stdlib."""
    paths = {os.path.realpath(p) for p in (sys.base_prefix, sys.prefix, sys.exec_prefix)}
    paths.add(os.path.dirname(os.path.realpath(sys.executable)))
    paths.add(_GUEST_DIR)
    paths = sorted(p for p in paths if p and p != "/" and os.path.isdir(p))
    # A directory inside another bound one needs no bind of its own.
    kept = [p for p in paths if not any(p != q and p.startswith(q + "/") for q in paths)]
    return [[p, p, "dir"] for p in kept]


class Zygote:
    """The fork server. ``serve`` runs until the control socket closes."""

    def __init__(self, control):
        self._control = control
        self._pid = os.getpid()
        self._children = {}  # pid -> environment id, for children reported as spawned
        self._confiner = confine.Confiner() if confine is not None else None
        self._interpreter_binds = _interpreter_binds()
        # Environments of the namespaces tier are grandchildren: when their parent exits they
        # are re-parented here, so that their exits are reported like any child's.
        if self._confiner is not None:
            self._confiner._prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
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

    def _send(self, message, fds=()):
        try:
            data = json.dumps(message).encode()
            if fds:
                socket.send_fds(self._control, [data], list(fds))
            else:
                self._control.send(data)
        except OSError as exc:
            raise _PlatformGone() from exc

    def _drain_wakeups(self):
        try:
            while os.read(self._wakeup_r, 4096):
                pass
        except BlockingIOError:
            pass

    def _reap(self):
        """Report children's exits. Pids never reported as spawned (the short-lived first
        child of a namespaced environment, a failed setup) are reaped silently."""
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
        self._spawn(env_id, request, fds)

    @staticmethod
    def _close_fds(fds):
        for fd in fds:
            os.close(fd)

    def _spawn(self, env_id, request, fds):
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            pid = os.fork()
        except OSError as exc:
            for sock in (parent, child):
                sock.close()
            self._close_fds(fds)
            self._send({"op": "spawn_failed", "id": env_id, "error": f"fork: {exc}"})
            return
        if pid == 0:
            parent.close()
            self._become_environment(request, fds, child)  # never returns
        child.close()
        self._close_fds(fds)
        two_stage = request.get("tier") == "namespaces"
        try:
            outcome, env_pid, passed = self._read_report(parent, pid, two_stage)
        finally:
            parent.close()
        if outcome == "ok":
            self._children[env_pid] = env_id
            try:
                self._send({"op": "spawned", "id": env_id, "pid": env_pid}, passed)
            finally:
                self._close_fds(passed)
            return
        self._close_fds(passed)
        if env_pid is not None and env_pid != pid:
            try:
                os.kill(env_pid, signal.SIGKILL)  # reaped (and ignored) by _reap
            except OSError:
                pass
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        self._send({"op": "spawn_failed", "id": env_id, "error": outcome})

    @staticmethod
    def _read_report(sock, pid, two_stage):
        """Wait for the child's report: ``(outcome, environment pid, fds)``, where outcome
        is "ok" or the failed step. A two-stage child (namespaces tier) first reports the
        pid of the grandchild that becomes the environment, which then reports itself."""
        deadline = time.monotonic() + _SETUP_TIMEOUT_MS / 1000
        env_pid = None if two_stage else pid
        outcome = None
        fds = []
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN)
        while outcome is None or env_pid is None:
            remaining = int((deadline - time.monotonic()) * 1000)
            if remaining <= 0 or not poller.poll(remaining):
                for target in {pid, env_pid} - {None}:
                    try:
                        os.kill(target, signal.SIGKILL)
                    except OSError:
                        pass
                return f"setup did not finish within {_SETUP_TIMEOUT_MS} ms", env_pid, fds
            try:
                data, got, _, _ = socket.recv_fds(sock, 65536, 4)
            except OSError as exc:
                return f"the child's report was lost: {exc}", env_pid, fds
            fds.extend(got)
            if not data:
                return outcome or "the child died during setup", env_pid, fds
            text = data.decode("utf-8", "replace")
            if text.startswith("pid:"):
                env_pid = int(text[4:])
            elif text == "ok":
                outcome = "ok"
            else:
                return text, env_pid, fds
        return outcome, env_pid, fds

    # --- everything below runs in the forked child --------------------------------------

    def _become_environment(self, request, fds, report):
        """Set up the child, report to the zygote, then exec or run the runtime. Never
        returns: every path ends in ``execve`` or ``os._exit``."""
        status = 127
        try:
            try:
                passed = self._set_up(request, fds, report)
            except BaseException as exc:
                text = str(exc) if isinstance(exc, SetupError) else f"setup: {exc!r}"
                report.send(text.encode("utf-8", "replace")[:60000])
                os._exit(127)
            if passed is not None:
                socket.send_fds(report, [b"ok"], [passed.fileno()])
                passed.close()
            else:
                report.send(b"ok")
            report.close()
            self._control.detach()  # its fd is closed below; the object must never close it
            signal.set_wakeup_fd(-1)
            if request.get("channel"):
                # Whatever held fd 3 (the control socket, a pipe) is closed below anyway.
                os.dup2(fds[-1], _CHANNEL_FD)
            os.closerange(_CHANNEL_FD + 1 if request.get("channel") else 3, self._fd_ceiling)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_SETMASK, set())
            if request["mode"] == "exec":
                _exec(request["argv"], request["env"])
            else:
                status = _run_python(request["env"],
                                     _CHANNEL_FD if request.get("channel") else None)
        except BaseException:
            status = 1
            try:
                traceback.print_exc()
                sys.stderr.flush()
            except BaseException:
                pass
        finally:
            os._exit(status)

    def _set_up(self, request, fds, report):
        """Apply the request's tier; returns the Runtime API socket to hand over, if any."""
        log_fd = fds[0]
        tier = request.get("tier", "unconfined")
        step = "setsid"
        try:
            os.umask(0o022)  # the platform's own umask is stricter; an environment's is Lambda's
            if tier != "namespaces":
                os.setsid()
            pid_text = str(os.getpid()).encode()
            for path in request.get("cgroups") or ():
                step = f"join cgroup {path}"
                fd = os.open(path, os.O_WRONLY)
                try:
                    os.write(fd, pid_text)
                finally:
                    os.close(fd)
            runtime_socket = None
            if tier == "namespaces":
                runtime_socket = self._enter_namespaces(request, fds, report)
            elif request.get("nofile"):
                self._confiner_or_plain_limit(request["nofile"])
            if tier == "fallback":
                self._confine_fallback(request)
            step = f"chdir {request['cwd']}"
            os.chdir(request["cwd"])
            step = "redirect stdout/stderr to the log pipe"
            os.dup2(log_fd, 1)
            os.dup2(log_fd, 2)
            return runtime_socket
        except SetupError:
            raise
        except Exception as exc:
            raise SetupError(f"{step}: {exc}") from exc

    @staticmethod
    def _confiner_or_plain_limit(nofile):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
        except (OSError, ValueError) as exc:
            raise SetupError(f"set RLIMIT_NOFILE to {nofile}: {exc}") from exc

    def _enter_namespaces(self, request, fds, report):
        """Default tier. Runs in the child, forks the environment (pid 1 of a new pid
        namespace), which returns from here; the child itself exits after reporting."""
        c = self._confiner
        flags = confine.CLONE_NEWNS | confine.CLONE_NEWPID | confine.CLONE_NEWIPC \
            | confine.CLONE_NEWUTS
        if request.get("netns"):
            c.join_network(fds[1])
            os.close(fds[1])
        else:
            flags |= confine.CLONE_NEWNET
        c.unshare(flags)
        pid = os.fork()
        if pid:
            report.send(b"pid:%d" % pid)
            os._exit(0)
        os.setsid()
        if not request.get("netns"):
            try:
                netsetup.bring_loopback_up()
            except OSError as exc:
                raise SetupError(f"bring up the loopback interface: {exc}") from exc
        try:
            runtime_socket = c.runtime_api_socket()
        except OSError as exc:
            raise SetupError(f"listen for the Runtime API: {exc}") from exc
        root = dict(request["root"])
        root["binds"] = list(root.get("binds") or ()) + self._interpreter_binds
        c.build_root(root)
        c.limit_files(request.get("nofile") or 1024)
        c.become(request["uid"], request["gid"], user_namespace=True)
        c.drop_capabilities()
        c.no_new_privs()
        c.install_seccomp()
        return runtime_socket

    def _confine_fallback(self, request):
        c = self._confiner
        if request.get("uid") is not None:
            c.become(request["uid"], request["gid"], user_namespace=False)
        c.no_new_privs()
        rules = request.get("landlock")
        if rules is not None:
            read = list(rules.get("read") or ()) + [b[0] for b in self._interpreter_binds]
            c.restrict_paths(read, rules.get("write") or (), rules.get("tcp_ports"))
        c.install_seccomp(restrict_sockets=request.get("restrict_sockets", False))


def _exec(argv, env):
    # Python ignores SIGPIPE and SIGXFSZ; a new program must start with the defaults.
    for signum in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(signum, signal.SIG_DFL)
    try:
        os.execve(argv[0], argv, env)
    except OSError as exc:
        os.write(2, f"strato: cannot execute {argv[0]}: {exc.strerror}\n".encode())
        os._exit(127)


def _run_python(env, channel_fd):
    """Run the built-in runtime in this (forked) interpreter, over the runtime channel at
    ``channel_fd`` when there is one; returns the exit status."""
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
