"""Hostile functions against the file system, /proc, other processes and the kernel, in both
sandbox tiers.

Each test invokes a PROBER (``hostile.py``) that attempts the forbidden and reports the errno;
the invocation must succeed, every attempt fail, and the host be as it was. Two functions
share each server: the prober ("A") and its neighbour ("B"), whose code, ``/tmp`` and
processes A must not reach.

What each tier answers: in ``namespaces`` the host's paths and processes do not exist in the
environment (ENOENT, or EROFS for its own read-only root); in ``fallback`` they exist but
Landlock and the environment's own uid refuse them (EACCES), and seccomp refuses the listed
system calls (EPERM) in both.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import hashlib
import logging
import os
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from strato.errors import SandboxError
from strato.sandbox.base import EGRESS_NONE, EnvironmentSpec, ExitStatus
from strato.sandbox.interpreters import InterpreterRegistry
from strato.sandbox.local import ProcessSandbox, TmpfsMounts
from strato.sandbox.tiers import Tier
from strato.sandbox.uids import FIRST_UID, POOL_SIZE
from tests.e2e.conftest import start_server, stop_server
from tests.e2e.hostile import (
    PROBER,
    TIERS,
    TierServer,
    create,
    denied,
    host_ids,
    interpreter_prefix,
    invoke,
    is_namespace_init,
    probe,
    serve_tier,
    tmp_mounts,
    unique,
)
from tests.support.waiting import wait_until

#: What a denied path gives in each tier.
HIDDEN = {"namespaces": "ENOENT", "fallback": "EACCES"}
#: The ids a function sees itself as in the namespaces tier (Lambda's sbx_user1051).
INSIDE_UID, INSIDE_GID = 993, 990


@pytest.fixture(scope="module", params=TIERS)
def hostile(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[TierServer]:
    with serve_tier(request.param, tmp_path_factory) as server:
        yield server


@pytest.fixture(scope="module")
def prober(hostile: TierServer) -> str:
    name = unique("prober")
    create(hostile.client, name, {"app.py": PROBER})
    return name


@dataclass
class Neighbour:
    """Function B, warm, with a marker in its /tmp."""

    name: str
    tree: Path          # its code on the host
    blob: Path          # its package on the host
    identity: dict[str, Any]
    main_pid: int       # its environment's first process, as the host numbers it
    marker: str         # the marker's path as B sees it
    marker_on_host: Path
    marker_text: str


@pytest.fixture(scope="module")
def neighbour(hostile: TierServer) -> Neighbour:
    name = unique("neighbour")
    package = create(hostile.client, name, {"app.py": PROBER, "secret.txt": "neighbour's code"})
    sha = hashlib.sha256(package).hexdigest()
    identity = probe(hostile.client, name, ("identity",))[0]["result"]
    marker, text = f"{identity['tmp']}/marker", f"B's marker {unique('m')}"
    assert probe(hostile.client, name, ("write", marker, text))[0]["ok"]
    main_pid = hostile.host.main_pid(identity["env_id"])
    on_host = (Path(f"/proc/{main_pid}/root{marker}") if hostile.tier == "namespaces"
               else Path(marker))
    assert on_host.read_text() == text
    return Neighbour(name, hostile.data_dir / "code" / "trees" / sha,
                     hostile.data_dir / "code" / "blobs" / f"{sha}.zip", identity, main_pid,
                     marker, on_host, text)


def _identity(hostile: TierServer, name: str) -> dict[str, Any]:
    result: dict[str, Any] = probe(hostile.client, name, ("identity",))[0]["result"]
    return result


def test_store_keys_and_data_dir_are_out_of_reach(hostile: TierServer, prober: str,
                                                  neighbour: Neighbour) -> None:
    data = hostile.data_dir
    steps = [("read", str(data / name)) for name in
             ("state.db", "master.key", "code-url.key", "credentials.json")]
    steps += [("list", str(data)), ("list", str(data / "code" / "trees")),
              ("list", str(data / "code" / "blobs")), ("read", str(neighbour.blob)),
              ("read", f"/proc/{hostile.pid}/root{data}/state.db"),
              ("list", f"/proc/{hostile.pid}/cwd")]
    for step, outcome in zip(steps, probe(hostile.client, prober, *steps), strict=True):
        assert denied(outcome, HIDDEN[hostile.tier]), (step, outcome)


def test_root_home_is_out_of_reach(hostile: TierServer, prober: str) -> None:
    own = _identity(hostile, prober)
    host_files = sorted(p for p in Path("/root").iterdir() if p.is_file())[:5]
    steps = [("list", "/root"), *[("read", str(p)) for p in host_files]]
    listing, *reads = probe(hostile.client, prober, *steps)
    for path, outcome in zip(host_files, reads, strict=True):
        assert denied(outcome, HIDDEN[hostile.tier]), (path, outcome)
    if hostile.tier == "namespaces" and listing["ok"]:
        # /root exists only on the way to the symlink that stands at the host path of an
        # interpreter from below it (pyenv's), pointing at /var/lang where the interpreter is
        # shown: the host's own entries are not there.
        prefix = interpreter_prefix()
        for entry in listing["result"]:
            assert prefix.startswith(f"/root/{entry}/"), listing
        assert own["executable"].startswith("/var/lang/"), own
    elif hostile.tier == "namespaces":
        assert denied(listing, "ENOENT"), listing
    else:
        assert denied(listing, "EACCES"), listing


def test_another_functions_code_is_out_of_reach(hostile: TierServer, prober: str,
                                                neighbour: Neighbour) -> None:
    own = _identity(hostile, prober)
    steps = [("list", str(neighbour.tree)), ("read", str(neighbour.tree / "secret.txt")),
             ("read", str(neighbour.tree / "app.py")), ("read", f"{own['task_root']}/app.py")]
    *others, mine = probe(hostile.client, prober, *steps)
    for step, outcome in zip(steps[:-1], others, strict=True):
        assert denied(outcome, HIDDEN[hostile.tier]), (step, outcome)
    assert mine["ok"] and "LIBC = ctypes.CDLL" in mine["result"]  # its own code: a control
    if hostile.tier == "namespaces":
        assert own["task_root"] == "/var/task"


def test_another_functions_tmp_is_out_of_reach(hostile: TierServer, prober: str,
                                               neighbour: Neighbour) -> None:
    own = _identity(hostile, prober)
    assert own["env_id"] != neighbour.identity["env_id"]
    steps = [("list", own["tmp"]), ("list", neighbour.identity["tmp"]),
             ("read", neighbour.marker), ("read", f"/proc/{neighbour.main_pid}/root/tmp/marker"),
             ("overwrite", neighbour.marker)]
    mine, theirs, read, through_proc, overwrite = probe(hostile.client, prober, *steps)
    assert mine["ok"] and "marker" not in mine["result"], mine
    if hostile.tier == "namespaces":
        # Both see "/tmp", each its own tmpfs: the marker is not in A's, and what A writes
        # there lands in its own.
        assert theirs == mine
        assert denied(read, "ENOENT") and denied(through_proc, "ENOENT"), (read, through_proc)
        assert overwrite["ok"], overwrite
    else:
        for step, outcome in zip(steps[1:], (theirs, read, through_proc, overwrite), strict=True):
            assert denied(outcome, "EACCES"), (step, outcome)
    assert neighbour.marker_on_host.read_text() == neighbour.marker_text
    back = probe(hostile.client, neighbour.name, ("read", neighbour.marker))[0]
    assert back == {"ok": True, "result": neighbour.marker_text}


def test_other_processes_environ_is_out_of_reach(hostile: TierServer, prober: str,
                                                 neighbour: Neighbour) -> None:
    own = _identity(hostile, prober)
    targets = [hostile.pid, *hostile.host.zygotes(), neighbour.main_pid, 1]
    assert len(targets) >= 4
    outcomes = probe(hostile.client, prober, *[("read", f"/proc/{p}/environ") for p in targets])
    if hostile.tier == "namespaces":
        # pid 2 of its own pid namespace; pid 1, the namespace's init (root, in the host's
        # network and the zygote's mounts), is hidden like every process of another uid.
        assert own["pid"] == 2, own
    for pid, outcome in zip(targets, outcomes, strict=True):
        assert denied(outcome, HIDDEN[hostile.tier]), (pid, outcome)


def test_the_init_of_the_pid_namespace_is_hidden(hostile: TierServer, prober: str) -> None:
    """The init of the environment's pid namespace (``guest/reaper.py``) lives in the host's
    network and the zygote's mounts, which its /proc entries would show to any uid; the
    environment's /proc does not list it."""
    if hostile.tier != "namespaces":
        pytest.skip("only the namespaces tier has a pid namespace (and an init) of its own")
    net, mounts, listing = probe(hostile.client, prober, ("read", "/proc/1/net/tcp"),
                                 ("read", "/proc/1/mountinfo"), ("list", "/proc"))
    assert denied(net, "ENOENT") and denied(mounts, "ENOENT"), (net, mounts)
    assert [entry for entry in listing["result"] if entry.isdigit()] == ["2"], listing


def test_platform_secrets_are_nowhere_in_the_function(hostile: TierServer, prober: str) -> None:
    """The server's environment (here: its administrator key pair, given as
    STRATO_ADMIN_CREDENTIALS) must not reach a function, not even in its own memory."""
    where = probe(hostile.client, prober, ("secret_in_memory", hostile.admin_secret))[0]
    assert where == {"ok": True, "result": []}


def test_writes_outside_tmp_fail_and_leave_the_host_unchanged(hostile: TierServer, prober: str,
                                                              neighbour: Neighbour) -> None:
    own = _identity(hostile, prober)
    name = unique("hostile-write")
    targets = [f"{own['task_root']}/{name}", f"/etc/{name}", f"/{name}", f"/usr/{name}",
               f"{hostile.data_dir}/{name}", f"{neighbour.tree}/{name}"]
    outcomes = probe(hostile.client, prober, *[("write", t) for t in targets],
                     ("write", f"{own['tmp']}/{name}"))
    for target, outcome in zip(targets, outcomes[:-1], strict=True):
        expected = {"EROFS", "ENOENT"} if hostile.tier == "namespaces" else {"EACCES"}
        assert denied(outcome, *expected), (target, outcome)
    assert outcomes[-1]["ok"], outcomes[-1]  # its own /tmp is writable
    data = hostile.data_dir
    created = [p for p in (Path(f"/etc/{name}"), Path(f"/{name}"), Path(f"/usr/{name}"),
                           data / name) if p.exists()]
    created += list(data.glob(f"code/trees/*/{name}"))  # both functions' code
    assert created == []


def test_ptrace_is_refused(hostile: TierServer, prober: str, neighbour: Neighbour) -> None:
    targets = [hostile.pid, *hostile.host.zygotes(), neighbour.main_pid, 1]
    outcomes = probe(hostile.client, prober, *[("ptrace", p) for p in targets])
    for pid, outcome in zip(targets, outcomes, strict=True):
        assert denied(outcome, "EPERM"), (pid, outcome)


@pytest.mark.parametrize("call", ["unshare", "mount", "setns", "keyctl", "bpf",
                                  "perf_event_open", "io_uring_setup"])
def test_refused_system_calls(hostile: TierServer, prober: str, call: str) -> None:
    outcome = probe(hostile.client, prober, ("refused", call))[0]
    assert denied(outcome, "EPERM"), outcome


def test_identity_is_unprivileged_and_own(hostile: TierServer, prober: str,
                                          neighbour: Neighbour) -> None:
    own = _identity(hostile, prober)
    assert own["CapEff"] == own["CapPrm"] == own["CapInh"] == own["CapAmb"] == "0" * 16
    assert own["NoNewPrivs"] == "1" and own["Seccomp"] == "2"
    assert own["nofile"] == [1024, 1024]
    if hostile.tier == "namespaces":
        assert (own["uid"], own["euid"], own["gid"]) == (INSIDE_UID, INSIDE_UID, INSIDE_GID)
        # Only this recipe empties the bounding set; the fallback one keeps it, which
        # no_new_privs makes harmless (no exec can gain capabilities from it).
        assert own["CapBnd"] == "0" * 16
    uids = {}
    for env_id in (own["env_id"], neighbour.identity["env_id"]):
        ids = host_ids(hostile.host.main_pid(env_id))
        assert ids is not None
        host_uid, host_gid = ids[0][0], ids[1][0]
        assert ids[0] == [host_uid] * 4 and ids[1] == [host_gid] * 4
        assert FIRST_UID <= host_uid < FIRST_UID + POOL_SIZE
        uids[env_id] = host_uid
    if hostile.tier == "fallback":
        assert own["uid"] == own["euid"] == uids[own["env_id"]]
    assert len(set(uids.values())) == 2, uids
    _assert_one_uid_per_environment(hostile)


def _assert_one_uid_per_environment(hostile: TierServer) -> None:
    """Every process of an environment runs as its uid, which no other environment has; but
    the init of its pid namespace (namespaces tier), which is root, runs no code of the
    function's and is hidden from it (``test_the_init_of_the_pid_namespace_is_hidden``)."""
    owner: dict[int, str] = {}
    for env_id in hostile.host.environment_cgroups():
        for pid in hostile.host.pids_of(env_id):
            ids = host_ids(pid)
            if ids is None:
                continue  # exited meanwhile
            if hostile.tier == "namespaces" and is_namespace_init(pid):
                assert ids == ([0] * 4, [0] * 4), (pid, ids)
                continue
            assert owner.setdefault(ids[0][0], env_id) == env_id, (ids, env_id, owner)


def _env_id_of_invocation(hostile: TierServer, name: str) -> str:
    response = hostile.client.invoke(FunctionName=name, Payload=b"{}")
    assert "FunctionError" not in response
    return str(response["Payload"].read().decode().strip('"'))


def test_concurrent_environments_run_as_different_host_uids(hostile: TierServer) -> None:
    name = unique("pair")
    create(hostile.client, name, {"app.py": (
        "import os, time\n"
        "def handler(event, context):\n"
        "    time.sleep(1)  # keeps both invocations in flight at once\n"
        "    return os.environ['AWS_LAMBDA_LOG_STREAM_NAME'].rsplit(']', 1)[1]\n")})
    env_ids: list[str] = []

    def call() -> None:
        env_ids.append(_env_id_of_invocation(hostile, name))

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(env_ids)) == 2, env_ids
    uids = set()
    for env_id in env_ids:
        ids = host_ids(hostile.host.main_pid(env_id))
        assert ids is not None
        uids.add(ids[0][0])
    assert len(uids) == 2 and 0 not in uids
    _assert_one_uid_per_environment(hostile)


def test_tmp_is_limited_to_ephemeral_storage(hostile: TierServer) -> None:
    """600 MB into a 512 MB /tmp ends in ENOSPC. MemorySize is large enough that memory is
    not what stops it (see test_hostile_faults for /tmp and memory)."""
    name = unique("filler")
    create(hostile.client, name, {"app.py": PROBER}, MemorySize=1024, Timeout=60,
           EphemeralStorage={"Size": 512})
    own = _identity(hostile, name)
    outcome = probe(hostile.client, name, ("fill", own["tmp"], 600))[0]
    assert outcome["ok"], outcome
    assert outcome["result"]["stopped"] == "ENOSPC", outcome
    assert 500 <= outcome["result"]["megabytes"] <= 512, outcome


def test_fallback_tmp_is_a_private_tmpfs_that_goes_with_its_environment(hostile: TierServer) -> None:
    """In the fallback tier TMPDIR is a tmpfs of EphemeralStorage's size, mode 0700 and owned
    by the environment's uid; a restarted runtime keeps it; when the environment ends, the
    mount and the directory go."""
    if hostile.tier != "fallback":
        pytest.skip("the namespaces tier's /tmp lives and dies with its mount namespace")
    name = unique("tmpfs")
    create(hostile.client, name, {"app.py": PROBER}, EphemeralStorage={"Size": 600})
    own = _identity(hostile, name)
    mounts = tmp_mounts(hostile.pid)
    assert own["tmp"] in mounts, mounts
    fstype, mount_options, options = mounts[own["tmp"]].split(" ")
    assert fstype == "tmpfs"
    assert {"nosuid", "nodev"} <= set(mount_options.split(",")), mount_options
    assert {"size=614400k", "mode=700", f"uid={own['uid']}", f"gid={own['gid']}"} \
        <= set(options.split(",")), options
    info = os.stat(own["tmp"])
    assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (own["uid"], 0o700)
    response, _ = invoke(hostile.client, name, {"steps": [["exit", 3]]})
    assert response["FunctionError"] == "Unhandled"
    # The runtime is restarted in its environment, which keeps its TMPDIR ...
    assert _identity(hostile, name)["tmp"] == own["tmp"]
    assert own["tmp"] in tmp_mounts(hostile.pid)
    # ... until the environment ends.
    hostile.client.delete_function(FunctionName=name)
    wait_until(lambda: own["tmp"] not in tmp_mounts(hostile.pid)
               and not os.path.lexists(own["tmp"]), timeout=15,
               what="the TMPDIR of an ended environment")


def _detached_mounts(server_pid: int) -> int:
    """How many of the server's fds are detached mounts (an environment's /tmp, namespaces
    tier): a mount in no namespace of the server's reads as its root, "/"."""
    count = 0
    for fd in os.listdir(f"/proc/{server_pid}/fd"):
        with contextlib.suppress(OSError):
            count += os.readlink(f"/proc/{server_pid}/fd/{fd}") == "/"
    return count


def test_namespaces_tmp_mount_is_held_across_restarts_and_closed_with_its_environment(
        hostile: TierServer) -> None:
    """The namespaces tier's /tmp is a detached tmpfs whose fd strato keeps while the
    environment lives, restarts included, and closes when it ends (no fd leak)."""
    if hostile.tier != "namespaces":
        pytest.skip("the fallback tier's TMPDIR is a mount on the host (test above)")
    before = _detached_mounts(hostile.pid)
    name = unique("tmpfd")
    create(hostile.client, name, {"app.py": PROBER}, EphemeralStorage={"Size": 600})
    _identity(hostile, name)
    assert _detached_mounts(hostile.pid) == before + 1
    for _ in range(2):
        response, _ = invoke(hostile.client, name, {"steps": [["exit", 3]]})
        assert response["FunctionError"] == "Unhandled"
        _identity(hostile, name)
        assert _detached_mounts(hostile.pid) == before + 1
    hostile.client.delete_function(FunctionName=name)
    wait_until(lambda: _detached_mounts(hostile.pid) == before, timeout=15,
               what="the /tmp mount of an ended environment closed")


def test_fallback_tmp_mounts_outlive_neither_a_failed_start_nor_the_sandbox(tmp_path: Path) -> None:
    """The sandbox driven directly, in this process: a start whose setup fails in the child
    leaves no mount; closing the sandbox under a live environment unmounts its TMPDIR and
    removes every directory the sandbox made below /tmp."""
    if os.geteuid() != 0:
        pytest.skip("TMPDIR mounts need root")
    spec = EnvironmentSpec("failing", None, ("/bin/sleep", "60"), {}, str(tmp_path / "missing"),
                           memory_mb=128, tmp_mb=512, egress=EGRESS_NONE)
    mine = f"/tmp/strato-env-tmp-{os.getpid()}-"

    async def scenario() -> None:
        sandbox = ProcessSandbox(InterpreterRegistry(), tier=Tier.FALLBACK,
                                 work_dir=str(tmp_path / "work"), use_cgroups=False)
        if "TMPDIR on a tmpfs" not in sandbox.description:
            await sandbox.close()
            pytest.skip(f"this host does not let strato mount: {sandbox.description}")
        live = None
        try:
            with pytest.raises(SandboxError, match="chdir"):
                await sandbox.start(spec)
            assert tmp_mounts(os.getpid()) == {}
            live = await sandbox.start(dataclasses.replace(spec, env_id="live", cwd="/"))
            assert [Path(p).name for p in tmp_mounts(os.getpid())] == ["live"]
        finally:
            await sandbox.close()
            if live is not None:
                live.release()
        assert tmp_mounts(os.getpid()) == {}

    asyncio.run(scenario())
    assert not [p for p in Path("/tmp").iterdir() if str(p).startswith(mine)]


def test_fallback_tmp_without_mounting_is_an_unlimited_directory_and_one_warning(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Where strato may not mount (EPERM: a container without CAP_SYS_ADMIN), TMPDIR is the
    plain directory, still the environment's own (0700, its uid), and strato says so once."""
    if os.geteuid() != 0:
        pytest.skip("TMPDIR mounts and distinct uids need root")

    def refuse(self: TmpfsMounts, path: str, size_mb: int, uid: int, gid: int) -> None:
        raise OSError(errno.EPERM, f"mount a tmpfs on {path}: {os.strerror(errno.EPERM)}")

    monkeypatch.setattr(TmpfsMounts, "mount", refuse)
    spec = EnvironmentSpec("plain", None, ("/bin/sh", "-c", 'stat -c "%u %a" "$TMPDIR"'),
                           {"PATH": "/usr/bin:/bin"}, "/", memory_mb=256, tmp_mb=512,
                           egress=EGRESS_NONE)

    async def scenario() -> list[str]:
        sandbox = ProcessSandbox(InterpreterRegistry(), tier=Tier.FALLBACK,
                                 work_dir=str(tmp_path / "work"), use_cgroups=False, landlock=False)
        outputs = []
        try:
            assert "TMPDIR unlimited in size" in sandbox.description
            for env_id in ("plain-1", "plain-2"):
                process = await sandbox.start(dataclasses.replace(spec, env_id=env_id))
                try:
                    assert await process.exited == ExitStatus(0, None)
                    outputs.append(os.read(process.log_fd, 4096).decode().strip())
                    assert tmp_mounts(os.getpid()) == {}
                finally:
                    process.release()
        finally:
            await sandbox.close()
        return outputs

    with caplog.at_level(logging.WARNING, logger="strato.sandbox.local"):
        outputs = asyncio.run(scenario())
    assert len({output.split()[0] for output in outputs}) == 2, outputs  # two uids
    assert all(output.split()[1] == "700" and int(output.split()[0]) >= FIRST_UID
               for output in outputs), outputs
    warnings = [r.getMessage() for r in caplog.records if "TMPDIR" in r.getMessage()]
    assert len(warnings) == 1 and "Operation not permitted" in warnings[0], warnings


def test_a_killed_servers_tmp_mounts_are_removed_by_the_next_server(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """A fallback server SIGKILLed with a live environment leaves its TMPDIR tmpfs mounted
    below ``/tmp/strato-env-tmp-<pid>-*``; the next server to start unmounts and removes it."""
    with serve_tier("fallback", tmp_path_factory) as killed:
        name = unique("killedtmp")
        create(killed.client, name, {"app.py": PROBER})
        own = _identity(killed, name)
        assert own["tmp"] in tmp_mounts(killed.pid)
        killed.server.process.kill()
        killed.server.process.wait()
        assert own["tmp"] in tmp_mounts(killed.pid)  # nothing cleaned up after a SIGKILL
        parent = Path(own["tmp"]).parent
        assert parent.name.startswith(f"strato-env-tmp-{killed.pid}-")
        after = start_server(tmp_path_factory.mktemp("after"), env={"STRATO_SANDBOX": "fallback"})
        try:
            assert tmp_mounts(killed.pid) == {}
            assert not parent.exists()
        finally:
            stop_server(after)
