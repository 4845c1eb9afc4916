"""A function that floods its output after its handler returned, in both sandbox tiers.

The attack: the handler starts a thread that writes 8 KB lines to stdout as fast as the pipe
takes them (about 120 MB/s) and returns. Before output was bounded, the idle environment's
lines went straight to the log store: the data dir grew by 1.4 GB, strato's resident memory
followed the log writer's queue, and both went on growing after DeleteFunction (the queue's
backlog). Now strato stops reading an idle environment's pipe after
``BETWEEN_INVOCATIONS_BYTES`` (the writer blocks), says so in the log stream, and reads again
when the next invocation is delivered; deleting or updating the function ends the environment
at once; and a log group keeps at most its quota (``--log-quota-mb``).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_zip
from tests.e2e.conftest import client_for
from tests.e2e.hostile import TIERS, TierServer, create, serve_tier, succeed, unique
from tests.support.waiting import wait_until

#: Its first invocation starts the flood; ``{"stop": true, "after": s, "tag": t}`` lets it go
#: on for ``s`` seconds, ends it, then prints ``own line t`` (after the flood's last line:
#: writes over 4 KB to a pipe are not atomic, so lines written at once would interleave);
#: ``{"print": n, "tag": t}`` prints ``n`` bytes in 10 KB lines that begin with ``t``.
FLOODER = r'''
import os, threading, time

LINE = b"x" * 8191 + b"\n"
stop = threading.Event()
pourers = []


def pour():
    while not stop.is_set():
        os.write(1, LINE)  # blocks while strato does not read


def handler(event, context):
    env_id = os.environ["AWS_LAMBDA_LOG_STREAM_NAME"].rsplit("]", 1)[1]
    if event.get("stop"):
        time.sleep(event.get("after", 0))
        stop.set()
        for pourer in pourers:
            pourer.join()
        print("own line", event["tag"], flush=True)
    elif event.get("print"):
        for _ in range(event["print"] // 10_000):
            print(event["tag"], "y" * 9_992, flush=True)
    else:
        pourers.append(threading.Thread(target=pour, daemon=True))
        pourers[-1].start()
    return env_id
'''
PAUSED = "strato reads no more of it until the next invocation"
#: What the data dir may grow by while one flooding environment lives: the log of a few
#: invocations (about 1 MiB each) and SQLite's write-ahead log, far from the 120 MB a second
#: the flood writes.
DATA_DIR_SLACK = 16 << 20
RSS_SLACK_KB = 64 * 1024
#: How long the flood is watched.
WATCH_S = 3.0


@pytest.fixture(scope="module", params=TIERS)
def hostile(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[TierServer]:
    with serve_tier(request.param, tmp_path_factory) as server:
        yield server


def _data_dir_bytes(data_dir: Path) -> int:
    total = 0
    for path in data_dir.rglob("*"):
        try:
            if path.is_file():
                total += path.stat().st_size
        except OSError:
            pass  # a file removed meanwhile
    return total


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def _log_lines(server: TierServer, name: str) -> list[str]:
    logs = client_for(server.server.endpoint, "logs", access_key="hostile",
                      secret_key=server.admin_secret)
    try:
        events = logs.filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]
    except logs.exceptions.ResourceNotFoundException:
        return []
    finally:
        logs.close()
    return [event["message"].removesuffix("\n") for event in events]


def _flooding(server: TierServer) -> tuple[str, str]:
    """A FLOODER function whose first invocation started the flood: (name, environment id),
    once lines of the flood are stored."""
    name = unique("flood")
    create(server.client, name, {"app.py": FLOODER}, MemorySize=256, Timeout=30)
    env_id = succeed(server.client, name)
    wait_until(lambda: any(line.startswith("xxx") for line in _log_lines(server, name)),
               timeout=15, what="the flood's lines are stored")
    return name, env_id


def _watch(server: TierServer, seconds: float) -> tuple[int, int]:
    """The largest data dir size and resident memory of strato seen over ``seconds``."""
    deadline = time.monotonic() + seconds
    size, rss = 0, 0
    while time.monotonic() < deadline:
        size = max(size, _data_dir_bytes(server.data_dir))
        rss = max(rss, _rss_kb(server.pid))
        time.sleep(0.2)  # sampling over a span of time, which is the point
    return size, rss


def _settles(server: TierServer, timeout: float = 10.0) -> int:
    """Wait until the data dir stops growing (no change over half a second); its size."""
    sizes = [_data_dir_bytes(server.data_dir)]

    def still() -> bool:
        time.sleep(0.5)  # "still" means unchanged over a span of time
        sizes.append(_data_dir_bytes(server.data_dir))
        return sizes[-1] == sizes[-2]

    wait_until(still, timeout=timeout, what="the data dir stops growing")
    return sizes[-1]


@pytest.mark.timeout(120)
def test_output_after_return_is_held_back(hostile: TierServer) -> None:
    size_before = _data_dir_bytes(hostile.data_dir)
    rss_before = _rss_kb(hostile.pid)
    name, env_id = _flooding(hostile)
    assert hostile.host.pids_of(env_id), "the flooding environment is alive"
    size, rss = _watch(hostile, WATCH_S)
    assert size - size_before < DATA_DIR_SLACK, (size_before, size)
    assert rss - rss_before < RSS_SLACK_KB, (rss_before, rss)
    assert any(PAUSED in line for line in _log_lines(hostile, name))

    # The next invocation runs in the same environment and logs its own lines; the flood it
    # reads for half a second before the handler stops it is over its budget, and its log
    # says how much went.
    tag = unique("tag")
    response = hostile.client.invoke(FunctionName=name, LogType="Tail",
                                     Payload=json.dumps({"stop": True, "after": 0.5, "tag": tag}).encode())
    assert "FunctionError" not in response
    assert json.loads(response["Payload"].read()) == env_id
    tail = base64.b64decode(response["LogResult"]).decode()
    assert f"own line {tag}" in tail, tail[-1000:]
    wait_until(lambda: f"own line {tag}" in _log_lines(hostile, name), timeout=10,
               what="the invocation's own line is stored")
    lines = _log_lines(hostile, name)
    assert any(line.startswith("[strato: ") and "bytes of output dropped" in line
               for line in lines), [line[:120] for line in lines if not line.startswith("xxx")]
    assert _settles(hostile) - size_before < DATA_DIR_SLACK
    assert succeed(hostile.client, name) == env_id  # and it floods again, held back again
    hostile.client.delete_function(FunctionName=name)


@pytest.mark.timeout(120)
def test_delete_ends_a_flooding_environment_at_once(hostile: TierServer) -> None:
    size_before = _data_dir_bytes(hostile.data_dir)
    name, env_id = _flooding(hostile)
    pids = hostile.host.pids_of(env_id)
    assert pids
    hostile.client.delete_function(FunctionName=name)
    wait_until(lambda: hostile.host.gone(env_id, pids), timeout=3,
               what=f"the environment {env_id} is gone")
    assert _settles(hostile) - size_before < DATA_DIR_SLACK


#: A handler that floods its own invocation until its timeout: busy, not idle.
BUSY_FLOODER = r'''
import os

LINE = b"z" * 8191 + b"\n"


def handler(event, context):
    while True:
        os.write(1, LINE)
'''


@pytest.mark.timeout(120)
def test_delete_ends_a_busy_flooding_environment_at_once(hostile: TierServer) -> None:
    """Its invocation in flight fails at once, rather than running out its 30 s timeout."""
    name = unique("busyflood")
    create(hostile.client, name, {"app.py": BUSY_FLOODER}, MemorySize=256, Timeout=30)
    before = hostile.host.environment_cgroups()
    outcome: dict[str, Any] = {}

    def call() -> None:
        response = hostile.client.invoke(FunctionName=name, Payload=b"{}")
        outcome["error"] = response.get("FunctionError")
        outcome["payload"] = json.loads(response["Payload"].read())

    caller = threading.Thread(target=call)
    caller.start()
    wait_until(lambda: bool(hostile.host.environment_cgroups() - before), timeout=15,
               what="the flooding environment starts")
    (env_id,) = hostile.host.environment_cgroups() - before
    wait_until(lambda: bool(hostile.host.pids_of(env_id)), timeout=15,
               what="the flooding environment runs")
    pids = hostile.host.pids_of(env_id)
    started = time.monotonic()
    hostile.client.delete_function(FunctionName=name)
    wait_until(lambda: hostile.host.gone(env_id, pids), timeout=3,
               what=f"the busy environment {env_id} is gone")
    caller.join(timeout=10)
    assert not caller.is_alive()
    assert time.monotonic() - started < 10
    assert outcome["error"] == "Unhandled", outcome
    assert outcome["payload"]["errorType"] == "Runtime.ExitError", outcome
    assert "the function was deleted" in outcome["payload"]["errorMessage"], outcome


@pytest.mark.timeout(120)
@pytest.mark.parametrize("update", ["code", "configuration"])
def test_an_update_ends_a_flooding_environment_at_once(hostile: TierServer, update: str) -> None:
    name, env_id = _flooding(hostile)
    pids = hostile.host.pids_of(env_id)
    assert pids
    if update == "code":
        hostile.client.update_function_code(
            FunctionName=name, ZipFile=make_zip({"app.py": FLOODER + "\n# changed\n"}))
    else:
        hostile.client.update_function_configuration(FunctionName=name, Description="changed")
    wait_until(lambda: hostile.host.gone(env_id, pids), timeout=3,
               what=f"the environment {env_id} is gone")
    hostile.client.get_waiter("function_updated_v2").wait(FunctionName=name)
    assert succeed(hostile.client, name, {"stop": True, "tag": "after"}) != env_id
    hostile.client.delete_function(FunctionName=name)


@pytest.mark.timeout(180)
def test_a_log_group_keeps_its_quota(tmp_path_factory: pytest.TempPathFactory) -> None:
    """With ``--log-quota-mb 4``, twelve invocations that print 700 KB each leave the newest
    4 MB at most: the oldest events are deleted, and the stream says so."""
    quota = 4 << 20
    with serve_tier("namespaces", tmp_path_factory,
                    env={"STRATO_LOG_QUOTA_MB": str(quota >> 20)}) as server:
        name = unique("chatty")
        create(server.client, name, {"app.py": FLOODER})
        size_before = _data_dir_bytes(server.data_dir)
        tags = [f"tag-{i:02d}" for i in range(12)]
        for tag in tags:
            assert succeed(server.client, name, {"print": 700_000, "tag": tag})
        wait_until(lambda: any(line.startswith(tags[-1]) for line in _log_lines(server, name)),
                   timeout=10, what="the last invocation's line is stored")
        lines = _log_lines(server, name)
        assert any("is over its storage quota of 4194304 bytes" in line for line in lines)
        kept = {line.split()[0] for line in lines if line.startswith("tag-")}
        assert tags[0] not in kept and tags[-1] in kept, sorted(kept)
        assert sum(len(line) + 1 for line in lines) <= quota
        sizes = {p.name: p.stat().st_size for p in server.data_dir.rglob("*") if p.is_file()}
        assert _settles(server) - size_before < 3 * quota, {k: v for k, v in sizes.items() if v > 100000}
