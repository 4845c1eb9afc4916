"""Shared pieces of the hostile-input tests (``test_hostile_*.py``).

- ``serve_tier``: a real ``strato serve`` confining environments with one sandbox tier; once
  it stops, none of the tmpfs mounts it made for fallback-tier TMPDIRs may remain
  (``tmp_mounts``).
- ``HostView``: what the host sees of a server's execution environments: its zygotes, the
  processes descending from them, the environments' cgroups and host uids.
- ``PROBER``: a function that attempts hostile actions, one ``step`` after another, and
  returns what each did (its result, or the errno it failed with). A denied action is thus a
  successful invocation whose result names the error.

The fallback tier reaches a function's code and interpreter by their host paths, so both must
be traversable by other users: ``serve_tier`` opens up the pytest directories on the way to
the data dir, and runs fallback environments on an interpreter whose directories are
traversable when the default one is not (``test_hostile_fallback.py`` shows what happens
without that help).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from strato.sandbox.interpreters import InterpreterRegistry
from strato.sandbox.network import EgressConfig, EgressNetwork
from strato.sandbox.network_slots import LOCK_DIR, slot_config
from tests.conftest import make_zip
from tests.e2e.conftest import ROLE, StratoServer, client_for, start_server, stop_server

TIERS = ("namespaces", "fallback")
#: The tiers that restart a timed-out or crashed runtime in its execution environment (the
#: others replace the environment).
RESTARTING_TIERS = ("namespaces", "fallback")
#: Errors that mean "denied": not permitted, not there, or read-only.
DENIED = {"EACCES", "EPERM", "ENOENT", "EROFS"}
_CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass
class TierServer:
    """A running server and a client signing with its administrator key pair."""

    tier: str
    egress: str
    server: StratoServer
    client: Any
    #: The administrator's secret key: a needle no environment may ever find.
    admin_secret: str

    @property
    def pid(self) -> int:
        return self.server.process.pid

    @property
    def data_dir(self) -> Path:
        return self.server.data_dir

    @property
    def port(self) -> int:
        return int(self.server.endpoint.rsplit(":", 1)[1])

    @property
    def host(self) -> HostView:
        return HostView(self.pid)


def _traversable_by_others(path: Path) -> bool:
    return all(p.stat().st_mode & 0o001 for p in [path, *path.parents])


def open_up(path: Path, base: Path) -> None:
    """Let other users traverse ``path`` and its ancestors up to ``base`` (pytest's
    session directories' parent, ``tests/conftest.py``)."""
    for directory in [path, *path.parents]:
        if not directory.stat().st_mode & 0o001:
            directory.chmod(0o711)
        if directory == base:
            break


def interpreter_prefix() -> str:
    """The host prefix (resolved) of the python3.11 servers' functions run on."""
    interpreter = InterpreterRegistry().find("3.11")
    if interpreter is None:
        pytest.skip("no python3.11 on this host")
    done = subprocess.run([interpreter, "-E", "-S", "-c",
                           "import os, sys; print(os.path.realpath(sys.base_prefix))"],
                          capture_output=True, text=True, check=True)
    return done.stdout.strip()


def fallback_interpreter() -> str:
    """A python3.11 that other users can run and import from: the default one when its
    directories are traversable, else one from the system directories."""
    default = InterpreterRegistry().find("3.11")
    candidates = [default] if default else []
    candidates += [p for p in (shutil.which("python3.11", path="/usr/local/bin:/usr/bin"),) if p]
    for candidate in candidates:
        if _traversable_by_others(Path(os.path.realpath(candidate))):
            return candidate
    pytest.skip("no python3.11 on this host is reachable by other users, which the fallback "
                "tier needs")


@contextlib.contextmanager
def serve_tier(tier: str, tmp_path_factory: pytest.TempPathFactory, *, egress: str = "none",
               env: dict[str, str] | None = None, workarounds: bool = True,
               ) -> Iterator[TierServer]:
    """A server of ``tier`` (``--keep-alive 60``) with a random administrator secret.

    ``workarounds`` (fallback tier): run on an interpreter other users can reach, which the
    default one may not be (``test_hostile_fallback.py`` shows a server without that help)."""
    if os.geteuid() != 0:
        pytest.skip("the sandbox tiers need root (distinct uids, cgroups, namespaces)")
    data_dir = tmp_path_factory.mktemp(f"hostile-{tier}-{egress}")
    open_up(data_dir, tmp_path_factory.getbasetemp().parent)
    secret = secrets.token_hex(16)
    environment = {"STRATO_SANDBOX": tier, "STRATO_EGRESS": egress, **(env or {})}
    if tier == "fallback" and workarounds:
        environment["STRATO_PYTHON_3_11"] = fallback_interpreter()
    server = start_server(data_dir, "--keep-alive", "60", env=environment,
                          admin=f"hostile:{secret}")
    client = client_for(server.endpoint, access_key="hostile", secret_key=secret)
    try:
        yield TierServer(tier, egress, server, client, secret)
    finally:
        client.close()
        stop_server(server)
        _assert_no_tmp_mounts_left(server.process.pid)


# --- internet egress ----------------------------------------------------------------------


def internet(prefix: str, pool: str) -> dict[str, str]:
    """The settings of a server with internet egress whose bridge and table are named
    ``<prefix><slot>`` and whose subnet is its slot's /22 of ``pool``, after checking that
    the host can give it (skips where it cannot, fails in CI)."""
    reason = EgressNetwork(slot_config(0, prefix, pool)).probe()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"internet egress unavailable in CI: {reason}")
        pytest.skip(f"internet egress is unavailable here: {reason}")
    return {"STRATO_EGRESS": "internet", "STRATO_EGRESS_BRIDGE": prefix,
            "STRATO_EGRESS_SUBNET": pool}


def egress_of(server_pid: int) -> EgressConfig:
    """The bridge, table and subnet of a running server, as its slot's lock file says
    (``sandbox/network_slots.py``)."""
    for lock in Path(LOCK_DIR).glob("*.lock"):
        fields = lock.read_text().split()
        if fields and fields[0] == str(server_pid):
            return EgressConfig(bridge=fields[1], table=fields[2], subnet=fields[3])
    raise AssertionError(f"strato {server_pid} holds no egress slot")


# --- mounts -------------------------------------------------------------------------------


def tmp_mounts(server_pid: int | None = None) -> dict[str, str]:
    """The fallback tier's TMPDIR mounts on the host (of every server, or of the one whose
    pid is ``server_pid``: strato names its TMPDIRs' parent after its pid): mount point →
    its file system type, mount options and file system options, as in
    ``tmpfs rw,nosuid,nodev,relatime rw,size=524288k,mode=700,uid=…,gid=…``."""
    marker = "/strato-env-tmp-" + (f"{server_pid}-" if server_pid is not None else "")
    found = {}
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        target = fields[4].replace("\\040", " ")
        if marker in target:
            after = fields[fields.index("-") + 1:]
            found[target] = " ".join([after[0], fields[5], *after[2:]])
    return found


def _assert_no_tmp_mounts_left(server_pid: int) -> None:
    """No mount of the stopped server may remain; detach any that did, then fail."""
    leaked = tmp_mounts(server_pid)
    for target in leaked:
        subprocess.run(["umount", "-l", target], capture_output=True)
    assert leaked == {}, f"the server left these mounts behind: {leaked}"


# --- functions ----------------------------------------------------------------------------


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create(client: Any, name: str, files: dict[str, str], **kwargs: Any) -> bytes:
    """Create a python3.11 function from ``files`` and wait until it is Active; returns the
    zip it was made from."""
    package = make_zip(files)
    client.create_function(FunctionName=name, Runtime="python3.11", Role=ROLE,
                           Handler="app.handler", Code={"ZipFile": package}, **kwargs)
    client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    return package


def invoke(client: Any, name: str, event: Any = None, **kwargs: Any) -> tuple[dict[str, Any], Any]:
    response = client.invoke(FunctionName=name, Payload=json.dumps(event or {}).encode(), **kwargs)
    raw = response["Payload"].read()
    return response, json.loads(raw) if raw else None


def succeed(client: Any, name: str, event: Any = None, **kwargs: Any) -> Any:
    """Invoke and return the result, failing the test on any function error."""
    response, payload = invoke(client, name, event, **kwargs)
    assert "FunctionError" not in response, payload
    return payload


# --- the host's view ----------------------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state, ppid, pgrp, session…)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _parent_of(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[1]) if fields else None


def session_of(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[3]) if fields else None


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def processes() -> dict[int, int]:
    """Every process on the host: pid → parent pid."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            parent = _parent_of(int(entry))
            if parent is not None:
                table[int(entry)] = parent
    return table


def host_ids(pid: int) -> tuple[list[int], list[int]] | None:
    """The (real, effective, saved, fs) uids and gids of ``pid`` as the host sees them."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in lines if ":" in line)
    return [int(v) for v in fields["Uid"].split()], [int(v) for v in fields["Gid"].split()]


def is_namespace_init(pid: int) -> bool:
    """Whether ``pid`` is pid 1 of a pid namespace below the host's: a namespaces-tier
    environment's init (``guest/reaper.py``), root by design."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return False
    for line in lines:
        if line.startswith("NSpid:"):
            numbers = line.split()[1:]
            return len(numbers) > 1 and numbers[-1] == "1"
    return False


def cmdline_of(pid: int) -> list[str]:
    return [a.decode() for a in _cmdline(pid).split(b"\0") if a]


#: How the cgroups of spares are named (``sandbox/spares.py``).
SPARE = "spare-"


def _is_spare(pid: int) -> bool:
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return False
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return path.rsplit("/", 1)[-1].startswith(SPARE)
    return False


class HostView:
    """One server's environments, seen from the host."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid

    def zygotes(self) -> list[int]:
        return sorted(pid for pid, parent in processes().items()
                      if parent == self.server_pid and b"zygote.py" in _cmdline(pid))

    def environment_processes(self) -> set[int]:
        """Every process descending from the server's zygotes, except spares (processes
        prepared ahead of demand, in cgroups named ``spare-*``: not environments yet)."""
        table = processes()
        children: dict[int, list[int]] = {}
        for pid, parent in table.items():
            children.setdefault(parent, []).append(pid)
        found: set[int] = set()
        todo = [p for p, parent in table.items()
                if parent == self.server_pid and b"zygote.py" in _cmdline(p)]
        while todo:
            for child in children.get(todo.pop(), []):
                if child not in found:
                    found.add(child)
                    todo.append(child)
        return {pid for pid in found if not _is_spare(pid)}

    def cgroup_parent(self, controller: str = "memory") -> Path:
        """``<hierarchy>/<server's own group>/strato-<pid>`` (see ``sandbox/cgroups.py``)."""
        for line in Path(f"/proc/{self.server_pid}/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if controller in controllers.split(","):
                return _CGROUP_ROOT / controller / path.lstrip("/") / f"strato-{self.server_pid}"
        raise AssertionError(f"strato runs in no {controller} cgroup")

    def environment_cgroups(self, controller: str = "memory") -> set[str]:
        """The names of the environments' groups (spares' groups left out)."""
        parent = self.cgroup_parent(controller)
        if not parent.is_dir():
            return set()
        return {p.name for p in parent.iterdir() if p.is_dir() and not p.name.startswith(SPARE)}

    def pids_of(self, env_id: str) -> set[int]:
        """The processes in the environment's memory cgroup (empty once it is removed)."""
        try:
            text = (self.cgroup_parent() / env_id / "cgroup.procs").read_text()
        except OSError:
            return set()
        return {int(p) for p in text.split()}

    def main_pid(self, env_id: str) -> int:
        """The environment's first process: the zygote's child in its cgroup that leads a
        session (orphans of the environment are re-parented to the zygote too)."""
        zygotes = set(self.zygotes())
        mains = [p for p in self.pids_of(env_id)
                 if _parent_of(p) in zygotes and session_of(p) == p]
        assert len(mains) == 1, (env_id, mains)
        return mains[0]

    def snapshot(self) -> tuple[int, int]:
        """(processes under the zygotes, environment cgroups)."""
        return len(self.environment_processes()), len(self.environment_cgroups())

    def gone(self, env_id: str, pids: set[int]) -> bool:
        """The environment's cgroups are removed and none of ``pids`` is alive in them."""
        live = self.environment_processes()
        return (env_id not in self.environment_cgroups()
                and env_id not in self.environment_cgroups("pids")
                and not pids & live)


# --- the prober ---------------------------------------------------------------------------

#: Attempts ``event["steps"]`` ([action, *args] each) and returns, per step,
#: ``{"ok": true, "result": ...}`` or ``{"ok": false, "errno": "EACCES", "error": "..."}``.
PROBER = r'''
import ctypes, errno, os, resource, socket, sys

LIBC = ctypes.CDLL(None, use_errno=True)
LIBC.syscall.restype = ctypes.c_long
#: From the kernel's asm/unistd_64.h (x86_64) and asm-generic/unistd.h (aarch64).
NUMBERS = {
    "x86_64": {"ptrace": 101, "unshare": 272, "mount": 165, "setns": 308, "keyctl": 250,
               "bpf": 321, "perf_event_open": 298, "io_uring_setup": 425},
    "aarch64": {"ptrace": 117, "unshare": 97, "mount": 40, "setns": 268, "keyctl": 219,
                "bpf": 280, "perf_event_open": 241, "io_uring_setup": 425},
}[os.uname().machine]
PTRACE_ATTACH = 16
#: Arguments that are harmless when a call goes through (a no-op, or an invalid pointer or
#: fd), so that only the seccomp filter answers EPERM for every one of them.
HARMLESS = {"unshare": (0,), "mount": (0, 0, 0, 0, 0), "setns": (-1, 0),
            "keyctl": (0, -3, 0), "bpf": (0, 0, 0), "perf_event_open": (0, 0, -1, -1, 0),
            "io_uring_setup": (1, 0)}


def syscall(name, *args):
    rc = LIBC.syscall(ctypes.c_long(NUMBERS[name]), *[ctypes.c_long(a) for a in args])
    if rc == -1:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return rc


def read(path):
    with open(path, "rb") as handle:
        return handle.read(4096).decode("latin-1")


def listdir(path):
    return sorted(os.listdir(path))


def write(path, text="hostile"):
    with open(path, "x") as handle:
        handle.write(text)
    return path


def overwrite(path, text="hostile"):
    with open(path, "w") as handle:
        handle.write(text)
    return path


def connect(host, port, timeout=1.0):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect((host, port))
        return "reached " + sock.recv(64).decode("latin-1").strip()


def connect_many(targets, timeout=1.0):
    """``connect`` to every [host, port] at once; the outcome per "host:port"."""
    import threading

    results = {}

    def one(host, port):
        results[f"{host}:{port}"] = attempt("connect", host, port, timeout)

    threads = [threading.Thread(target=one, args=target) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def udp(host, port, text):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        return sock.sendto(text.encode(), (host, port))


def unix(path, timeout=1.0):
    address = "\0" + path[1:] if path.startswith("@") else path
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(address)
        return "reached " + sock.recv(64).decode("latin-1").strip()


def make_socket(family, kind, proto=0):
    """socket(2) with these numbers; "made" if the kernel (and the filter) allowed it."""
    socket.socket(family, kind, proto).close()
    return "made"


def make_socketpair(kind):
    """socketpair(2) of AF_UNIX and this type, with one message through it."""
    a, b = socket.socketpair(socket.AF_UNIX, kind)
    with a, b:
        a.send(b"ping")
        return b.recv(16).decode()


def make_socketpair_of(family, kind):
    """socketpair(2) with these numbers; "made" if the kernel (and the filter) allowed it."""
    a, b = socket.socketpair(family, kind)
    a.close()
    b.close()
    return "made"


def leave(status):
    os._exit(status)


def ptrace(pid):
    return syscall("ptrace", PTRACE_ATTACH, pid, 0, 0)


def refused(name):
    return syscall(name, *HARMLESS[name])


def identity():
    status = {}
    with open("/proc/self/status") as handle:
        for line in handle:
            key, _, value = line.partition(":")
            status[key] = value.strip()
    return {"uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(),
            "groups": os.getgroups(), "pid": os.getpid(),
            "env_id": os.environ["AWS_LAMBDA_LOG_STREAM_NAME"].rsplit("]", 1)[1],
            "tmp": os.environ.get("TMPDIR", "/tmp"), "task_root": os.environ["LAMBDA_TASK_ROOT"],
            "executable": os.path.realpath(sys.executable),
            "nofile": list(resource.getrlimit(resource.RLIMIT_NOFILE)),
            **{k: status[k] for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb",
                                      "NoNewPrivs", "Seccomp")}}


def secret_in_memory(needle):
    """Where ``needle`` shows up: the environment the process was started with, as
    /proc/self/environ gives it, and the strings at the top of its initial stack (argv and the
    environment, just past argv[0]), read page by page through a pipe: write(2) answers
    EFAULT rather than crashing past the stack's end."""
    needle = needle.encode()
    found = []
    try:
        with open("/proc/self/environ", "rb") as handle:
            if needle in handle.read():
                found.append("/proc/self/environ")
    except OSError:
        pass
    address = ctypes.c_void_p.in_dll(LIBC, "program_invocation_name").value
    page = address & ~4095
    blob = b""
    r, w = os.pipe()
    try:
        for _ in range(64):
            if LIBC.write(w, ctypes.c_void_p(page), 4096) != 4096:
                break
            blob += os.read(r, 4096)
            page += 4096
    finally:
        os.close(r)
        os.close(w)
    if needle in blob:
        found.append("initial stack")
    return found


def fill(directory, megabytes):
    """Write up to ``megabytes`` MB below ``directory``; how far it got and why it stopped."""
    path = os.path.join(directory, "fill")
    chunk = b"\0" * (1 << 20)
    written, stopped = 0, None
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        while written < megabytes << 20:
            try:
                written += os.write(fd, chunk)
            except OSError as exc:
                stopped = errno.errorcode.get(exc.errno, str(exc.errno))
                break
    finally:
        os.close(fd)
        os.unlink(path)
    return {"megabytes": written >> 20, "stopped": stopped}


ACTIONS = {"read": read, "list": listdir, "write": write, "overwrite": overwrite,
           "connect": connect, "connect_many": connect_many, "udp": udp, "unix": unix,
           "socket": make_socket, "socketpair": make_socketpair,
           "socketpair_of": make_socketpair_of, "exit": leave,
           "ptrace": ptrace, "refused": refused, "identity": identity,
           "secret_in_memory": secret_in_memory, "fill": fill}


def attempt(action, *args):
    try:
        return {"ok": True, "result": ACTIONS[action](*args)}
    except OSError as exc:
        if exc.errno is None:  # a socket timeout
            return {"ok": False, "errno": "timeout", "error": str(exc)}
        return {"ok": False, "errno": errno.errorcode.get(exc.errno, str(exc.errno)),
                "error": str(exc)}


def handler(event, context):
    return [attempt(*step) for step in event["steps"]]
'''


def probe(client: Any, name: str, *steps: tuple[Any, ...]) -> list[dict[str, Any]]:
    """Run ``steps`` in function ``name`` (a PROBER); the outcome of each."""
    outcomes: list[dict[str, Any]] = succeed(client, name, {"steps": [list(s) for s in steps]})
    assert len(outcomes) == len(steps)
    return outcomes


def denied(outcome: dict[str, Any], *errnos: str) -> bool:
    """The step failed, with one of ``errnos`` (default: any of DENIED)."""
    return not outcome["ok"] and outcome["errno"] in (set(errnos) or DENIED)
