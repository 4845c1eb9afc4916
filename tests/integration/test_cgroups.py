"""cgroup v1 groups of environments on the real hierarchy: groups made ahead of demand take
an environment's name and limits later, and removal never waits for exiting processes (a
busy group is a leftover, tried again until it can go). Needs root and a writable cgroup v1
memory hierarchy: skipped without them, failed in CI."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest

from strato.sandbox.cgroups import CgroupParent, cpu_quota_us, socket_memory_bytes
from tests.support.waiting import wait_until


@pytest.fixture
def parent() -> Iterator[CgroupParent]:
    found = CgroupParent.probe() if os.geteuid() == 0 else None
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("no writable cgroup v1 memory hierarchy in CI")
        pytest.skip("needs root and a writable cgroup v1 memory hierarchy")
    yield found
    found.remove()


def test_a_group_made_without_limits_takes_a_name_and_limits_later(parent: CgroupParent) -> None:
    group = parent.create(f"spare-{uuid.uuid4().hex}", None, 64)
    assert (group.memory / "memory.limit_in_bytes").read_text().strip() != str(256 << 20)
    name = uuid.uuid4().hex
    group.rename(name)
    group.set_limits(256)
    assert group.memory == parent.memory / name
    assert (group.memory / "memory.limit_in_bytes").read_text().strip() == str(256 << 20)
    if group.pids is not None:
        assert group.pids.name == name
        assert (group.pids / "pids.max").read_text().strip() == "64"
    if group.cpu is not None:
        assert group.cpu.name == name
        assert int((group.cpu / "cpu.cfs_quota_us").read_text()) == cpu_quota_us(256)
        assert int((group.cpu / "cpu.cfs_period_us").read_text()) == 100_000
    assert group.try_remove()
    assert not group.memory.exists()


def test_discard_kills_what_is_in_the_group_and_never_waits(parent: CgroupParent) -> None:
    group = parent.create(uuid.uuid4().hex, 64, None)
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        (group.memory / "cgroup.procs").write_text(str(sleeper.pid))
        started = time.monotonic()
        parent.discard(group)
        assert time.monotonic() - started < 0.5
        assert sleeper.wait(timeout=10) == -9
        _until_removed(parent)
        assert not group.memory.exists()
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
            sleeper.wait()


def test_a_group_that_cannot_go_yet_is_a_leftover_tried_again(parent: CgroupParent) -> None:
    group = parent.create(uuid.uuid4().hex, 64, None)
    blocker = group.memory / "busy"  # a group with a child group cannot be removed
    blocker.mkdir()
    parent.discard(group)
    assert parent.leftovers == [group] and group.memory.exists()
    assert parent.retry_leftovers()  # still there
    blocker.rmdir()
    assert not parent.retry_leftovers()
    assert parent.leftovers == [] and not group.memory.exists()


def _until_removed(parent: CgroupParent) -> None:
    wait_until(lambda: not parent.retry_leftovers(), "the leftover groups removed", timeout=10, interval=0.01)
    assert parent.leftovers == []


def test_limits_can_be_raised_as_well_as_lowered(parent: CgroupParent) -> None:
    group = parent.create(uuid.uuid4().hex, 128, None)
    group.set_limits(1024)  # a spare made for a smaller function, taken by a larger one
    assert (group.memory / "memory.limit_in_bytes").read_text().strip() == str(1024 << 20)
    group.set_limits(256)
    assert (group.memory / "memory.limit_in_bytes").read_text().strip() == str(256 << 20)
    swap = group.memory / "memory.memsw.limit_in_bytes"
    if swap.exists():
        assert swap.read_text().strip() == str(256 << 20)
    tcp = group.memory / "memory.kmem.tcp.limit_in_bytes"
    if tcp.exists():  # socket buffers follow the memory size, both ways
        assert tcp.read_text().strip() == str(socket_memory_bytes(256))
    assert group.try_remove()


def test_groups_left_by_a_strato_that_is_gone_are_removed_at_start() -> None:
    if os.geteuid() != 0 or CgroupParent.probe() is None:
        pytest.skip("needs root and a writable cgroup v1 memory hierarchy")
    gone = subprocess.Popen(["true"])  # a pid that is not running any more
    gone.wait()
    first = CgroupParent.probe()
    assert first is not None
    stale = first.memory.parent / f"strato-{gone.pid}"
    (stale / uuid.uuid4().hex).mkdir(parents=True)
    try:
        again = CgroupParent.probe()  # as the next server to start would
        assert again is not None
        assert not stale.exists()
    finally:
        if stale.exists():
            for group in stale.iterdir():
                group.rmdir()
            stale.rmdir()
        first.remove()
