"""The platform's side of a zygote (``sandbox/zygote.py``) against a real zygote: a flood of
requests queues instead of failing, a request given up before it went out never runs, and
spares are prepared, used and lost as the protocol says (``guest/zygote.py``).

Spares belong to the namespaces tier: those tests need root and namespaces.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from strato.sandbox.base import ExitStatus
from strato.sandbox.rootfs import root_plan, system_binds, system_root_plan
from strato.sandbox.zygote import Zygote

#: Enough padding that a few dozen requests fill the socket's send buffer (about 200 kB).
PADDING = "x" * 8000
FLOOD = 300


def run(scenario: Callable[[Zygote], Awaitable[None]]) -> None:
    async def main() -> None:
        zygote = await Zygote.start(sys.executable)
        try:
            await asyncio.wait_for(scenario(zygote), 120)
        finally:
            await zygote.close()
    asyncio.run(main())


def exec_request(env_id: str, argv: list[str], **extra: Any) -> dict[str, Any]:
    return {"id": env_id, "mode": "exec", "argv": argv, "cwd": "/", "tier": "unconfined",
            "cgroups": [], "nofile": None, "uid": None, "gid": None, "netns": False,
            "env": {"PATH": "/usr/bin:/bin", "PADDING": PADDING}, **extra}


async def spawn_and_wait(zygote: Zygote, request: dict[str, Any]) -> ExitStatus:
    read_fd, write_fd = os.pipe()
    try:
        try:
            _, exited, _, _, _ = await zygote.spawn(request, [write_fd])
        finally:
            os.close(write_fd)
        return await exited
    finally:
        os.close(read_fd)


def test_a_flood_of_requests_waits_for_the_socket_and_every_one_runs() -> None:
    async def scenario(zygote: Zygote) -> None:
        statuses = await asyncio.gather(*(
            spawn_and_wait(zygote, exec_request(f"flood-{i}", ["/bin/sh", "-c", f"exit {i % 7}"]))
            for i in range(FLOOD)))
        assert [s.exit_code for s in statuses] == [i % 7 for i in range(FLOOD)]
        assert zygote.deferred > 0  # the socket was full: requests waited, none failed

    run(scenario)


def test_a_request_given_up_before_it_went_out_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"

    async def scenario(zygote: Zygote) -> None:
        others = [asyncio.ensure_future(spawn_and_wait(
            zygote, exec_request(f"busy-{i}", ["/bin/true"]))) for i in range(100)]
        late = asyncio.ensure_future(spawn_and_wait(
            zygote, exec_request("late", ["/bin/sh", "-c", f": > {marker}"])))
        # One turn of the loop, no more: its request is queued behind a full socket, and a longer
        # wait would let it out.
        await asyncio.sleep(0)
        assert zygote.deferred > 0
        late.cancel()
        await asyncio.gather(*others)
        with pytest.raises(asyncio.CancelledError):
            await late

    run(scenario)
    assert not marker.exists()


# --- spares (namespaces tier) --------------------------------------------------------------

def _namespaces_or_skip() -> None:
    if os.geteuid() != 0:
        pytest.skip("spares belong to the namespaces tier, which needs root")


def _plans(tmp_path: Path) -> tuple[dict[str, Any], dict[str, Any], str]:
    staging = tmp_path / "staging"
    staging.mkdir()
    task = tmp_path / "task"
    task.mkdir()
    task.chmod(0o755)
    binds, symlinks = system_binds()
    return (system_root_plan(str(staging), binds, symlinks),
            root_plan(str(staging), str(task), 16, binds, symlinks), str(task))


def test_a_spare_becomes_the_environment_it_is_given(tmp_path: Path) -> None:
    _namespaces_or_skip()
    system, _, task = _plans(tmp_path)

    async def scenario(zygote: Zygote) -> None:
        spare = f"spare-{uuid.uuid4().hex}"
        pid = await zygote.prepare({"id": spare, "tier": "namespaces", "cgroups": [],
                                    "root": system})
        # pid 2 of its pid namespace (after the namespace's init), waiting.
        assert _pid_in_own_namespace(pid) == 2
        request = exec_request(
            "from-spare", ["/bin/sh", "-c", "echo $$; exit 3"], tier="namespaces",
            uid=1_600_101, gid=1_600_101, spare=spare, cwd="/var/task",
            root={"task_root": task, "tmp_mb": 8}, platform_port=45678)
        read_fd, write_fd = os.pipe()
        try:
            env_pid, exited, runtime_fd, platform_fd, tmp_fd = await zygote.spawn(
                request, [write_fd])
        finally:
            os.close(write_fd)
        assert env_pid == pid and runtime_fd is not None and tmp_fd is not None
        assert platform_fd is not None  # strato's API, inside its network, at the port asked
        with socket.socket(fileno=platform_fd) as platform:
            assert platform.getsockname() == ("127.0.0.1", 45678)
        os.close(runtime_fd)
        os.close(tmp_fd)
        assert await exited == ExitStatus(3, None)
        with os.fdopen(read_fd, "rb") as log:
            assert log.read() == b"2\n"  # its pid in its own pid namespace

    run(scenario)


def test_a_spare_that_dies_unused_is_reported_lost(tmp_path: Path) -> None:
    _namespaces_or_skip()
    system, _, _ = _plans(tmp_path)

    async def scenario(zygote: Zygote) -> None:
        lost: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        zygote.on_spare_lost = lost.set_result
        spare = f"spare-{uuid.uuid4().hex}"
        pid = await zygote.prepare({"id": spare, "tier": "namespaces", "cgroups": [],
                                    "root": system})
        os.kill(pid, signal.SIGKILL)
        assert await lost == spare
        # A request naming it now is refused, not sent anywhere.
        with pytest.raises(Exception, match="no spare"):
            await spawn_and_wait(zygote, exec_request("too-late", ["/bin/true"],
                                                      tier="namespaces", uid=1_600_102,
                                                      gid=1_600_102, spare=spare,
                                                      root={"task_root": "/", "tmp_mb": 8}))

    run(scenario)


def test_a_zygote_with_spares_stops_by_itself(tmp_path: Path) -> None:
    """At EOF the zygote kills its spares and their pid namespaces' inits and exits on its
    own: it must not wait for an init before the spare in its namespace is reaped (a dying
    init waits for that), which left it to be killed after ``close``'s timeout."""
    _namespaces_or_skip()
    system, _, _ = _plans(tmp_path)

    async def main() -> None:
        zygote = await Zygote.start(sys.executable)
        try:
            for _ in range(3):
                await zygote.prepare({"id": f"spare-{uuid.uuid4().hex}", "tier": "namespaces",
                                      "cgroups": [], "root": system})
        finally:
            await zygote.close(timeout=30)
        assert zygote._process.returncode == 0  # exited, not killed by ``close``

    asyncio.run(main())


def _pid_in_own_namespace(pid: int) -> int:
    """The last NSpid of ``pid``: its number in the innermost pid namespace it is in."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("NSpid:"):
            return int(line.split()[-1])
    raise AssertionError("no NSpid line")


def test_spares_take_ahead_the_page_faults_environments_take(tmp_path: Path) -> None:
    """After a few environments made from spares have run, a new spare copies the pages they
    all wrote before its environment needs them (``guest/forking.py``)."""
    _namespaces_or_skip()
    system, _, task = _plans(tmp_path)
    Path(task, "app.py").write_text("def handler(event, context):\n    return None\n")

    async def spare(zygote: Zygote) -> tuple[str, int]:
        name = f"spare-{uuid.uuid4().hex}"
        return name, await zygote.prepare({"id": name, "tier": "namespaces", "cgroups": [],
                                           "root": system})

    async def scenario(zygote: Zygote) -> None:
        before = [await spare(zygote) for _ in range(2)]
        held = []
        for index, (name, _) in enumerate([await spare(zygote) for _ in range(3)]):
            request = {**exec_request(f"runtime-{index}", []), "mode": "python",
                       "tier": "namespaces", "uid": 1_600_110 + index, "gid": 1_600_110 + index,
                       "spare": name, "cwd": "/var/task", "root": {"task_root": task, "tmp_mb": 8},
                       "env": {"PATH": "/usr/bin:/bin", "_HANDLER": "app.handler",
                               "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001",
                               "LAMBDA_TASK_ROOT": "/var/task"}}
            read_fd, write_fd = os.pipe()
            try:
                _, _, runtime_fd, platform_fd, tmp_fd = await zygote.spawn(request, [write_fd])
            finally:
                os.close(write_fd)
            held += [read_fd, runtime_fd, platform_fd, tmp_fd]  # the runtime waits on its first next meanwhile
            # The zygote looks at it 20 ms after it starts and reports nothing: time passing is
            # what lets it learn.
            await asyncio.sleep(0.2)
        after = [await spare(zygote) for _ in range(2)]
        faults_before = min(_minor_faults(pid) for _, pid in before)
        faults_after = min(_minor_faults(pid) for _, pid in after)
        assert faults_after > faults_before + 100, (faults_before, faults_after)
        for fd in held:
            if fd is not None:
                os.close(fd)

    run(scenario)


def _minor_faults(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[7])


# --- standby environments (namespaces tier) ------------------------------------------------

def _standby_request(env_id: str, system: dict[str, Any], script: str,
                     uid: int) -> dict[str, Any]:
    """A standby that runs ``script`` (its variables' pipe at fd 3) with no code yet."""
    return exec_request(env_id, ["/bin/sh", "-c", script], tier="namespaces", uid=uid,
                        gid=uid, cwd="/", standby=True, channel=True,
                        root={**system, "task_root": None, "tmp_mb": 8})


async def _spawn_standby(zygote: Zygote, request: dict[str, Any]
                         ) -> tuple[int, asyncio.Future[ExitStatus], int, int]:
    """Spawn ``request``: its pid, exit, the read end of its log and the write end of its
    variables' pipe."""
    log_read, log_write = os.pipe()
    variables_read, variables_write = os.pipe()
    try:
        pid, exited, *fds = await zygote.spawn(request, [log_write, variables_read])
    finally:
        os.close(log_write)
        os.close(variables_read)
    for fd in fds:
        assert fd is not None  # the Runtime API's and strato's API's sockets, /tmp's mount
        os.close(fd)
    return pid, exited, log_read, variables_write


def test_a_standby_is_shown_its_code_from_outside_then_told_its_variables(
        tmp_path: Path) -> None:
    _namespaces_or_skip()
    system, _, task = _plans(tmp_path)
    Path(task, "handler.txt").write_text("code\n")

    async def scenario(zygote: Zygote) -> None:
        script = ("ls -A /var/task; echo waiting; cat <&3; echo; exec 3<&-; "
                  "cat /var/task/handler.txt; touch /var/task/written 2>/dev/null || echo read-only")
        pid, exited, log_read, variables = await _spawn_standby(
            zygote, _standby_request("standby-1", system, script, 1_600_103))
        log = os.fdopen(log_read, "rb")
        # Nothing at /var/task before (ls printed nothing), then it waits for its variables.
        assert await asyncio.to_thread(log.readline) == b"waiting\n"
        await zygote.show("standby-1.code", pid, task)
        os.write(variables, b'{"A": "1"}')
        os.close(variables)
        assert await exited == ExitStatus(0, None)
        with log:
            assert log.read().decode().splitlines() == ['{"A": "1"}', "code", "read-only"]
        assert not Path(task, "written").exists()

    run(scenario)


def test_code_is_shown_once_and_only_to_a_standby(tmp_path: Path) -> None:
    _namespaces_or_skip()
    system, _, task = _plans(tmp_path)

    async def scenario(zygote: Zygote) -> None:
        pid, exited, log_read, variables = await _spawn_standby(
            zygote, _standby_request("standby-2", system, "cat <&3 >/dev/null", 1_600_104))
        await zygote.show("standby-2.code", pid, task)
        with pytest.raises(Exception, match="no standby environment"):
            await zygote.show("standby-2.again", pid, task)
        with pytest.raises(Exception, match="no standby environment"):
            await zygote.show("not-a-standby", os.getpid(), task)
        os.close(variables)
        assert await exited == ExitStatus(0, None)
        os.close(log_read)

    run(scenario)
