"""Orphans a function leaves are reaped: children that fork a grandchild and exit (a double
fork, ``sh -c 'sleep 0 &'``) leave the grandchild to the reaper of the environment, and each
one that exits must be reaped, or zombies pile up across invocations and eat the function's
own pids limit (1,024). The function counts the zombies of its own uid in ``/proc`` (all of
its pid namespace's in the namespaces tier; in the fallback tier its orphans go to the
zygote, which reaps them); its own children are its to wait for, and still are.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.hostile import TIERS, TierServer, create, serve_tier, succeed, unique

ORPHANS = r'''
import os, subprocess, time


def zombies():
    """Zombie processes of this environment's uid that this process can see."""
    found = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as handle:
                fields = dict(line.split(":", 1) for line in handle if ":" in line)
        except OSError:
            continue
        if fields["State"].split()[0] == "Z" and int(fields["Uid"].split()[0]) == os.getuid():
            found += 1
    return found


def double_fork():
    child = os.fork()
    if child == 0:
        if os.fork() == 0:
            os._exit(0)
        os._exit(0)
    os.waitpid(child, 0)


def handler(event, context):
    for _ in range(event["count"]):
        double_fork()
    for _ in range(event["shells"]):
        subprocess.run(["/bin/sh", "-c", "sleep 0 & exit 0"], check=True)
    # A child of the handler's own stays the handler's: its exit status is not taken away.
    own = subprocess.Popen(["/bin/sh", "-c", "exit 7"])
    status = own.wait()
    # Reaping is asynchronous where the zygote reaps (the fallback tier).
    deadline = time.monotonic() + event["settle"]
    while zombies() and time.monotonic() < deadline:
        time.sleep(0.01)
    return {"zombies": zombies(), "own": status}
'''


@pytest.fixture(scope="module", params=TIERS)
def hostile(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[TierServer]:
    with serve_tier(request.param, tmp_path_factory) as server:
        yield server


@pytest.mark.timeout(120)
def test_orphans_are_reaped_across_invocations(hostile: TierServer) -> None:
    name = unique("orphans")
    # A whole vCPU: forking is CPU-bound, and 128 MB buys 7 % of one.
    create(hostile.client, name, {"app.py": ORPHANS}, MemorySize=1769, Timeout=30)
    event = {"count": 100, "shells": 20, "settle": 2.0}
    results = [succeed(hostile.client, name, event) for _ in range(3)]
    for result in results:
        assert result["own"] == 7, results
        assert result["zombies"] == 0, results
