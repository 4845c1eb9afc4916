"""Environments at scale, on a real server with internet egress: a burst of provisioned
environments queues and comes up whole, and a server holding many environments stops on one
SIGTERM without leaving processes, cgroups or network interfaces behind.

Each test starts a server of its own with its own bridge and subnet (other servers run at
once here). The bounds on time are generous: the machine is shared; the figures live in
``bench/scale_bench.py``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_zip
from tests.e2e.conftest import ROLE, StratoServer, client_for, start_server, stop_server
from tests.e2e.hostile import HostView, egress_of, internet
from tests.support.waiting import wait_until

NOOP = {"app.py": "def handler(event, context):\n    return None\n"}
BURST = 200
TEARDOWN = 150
#: Generous: 200 environments come up in a few seconds on 2 shared cores.
READY_WITHIN_S = 120
#: Generous too: the stop takes about a second for 150 environments.
STOP_WITHIN_S = 30


def _start(tmp_path: Path, tag: int) -> StratoServer:
    """A server with internet egress (bridge ``sc<tag><pid><slot>``, a /22 of
    10.<225 + tag>.0.0/16)."""
    return start_server(tmp_path, "--account-concurrency", "1000", "--keep-alive", "600",
                        env=internet(f"sc{tag}{os.getpid() % 1000}", f"10.{225 + tag}.0.0/16"))


@pytest.fixture
def burst_server(tmp_path: Path) -> Iterator[StratoServer]:
    server = _start(tmp_path, 1)
    yield server
    stop_server(server)


def _provision(client: Any, name: str, count: int) -> str:
    client.create_function(FunctionName=name, Runtime="python3.11", Role=ROLE,
                           Handler="app.handler", Code={"ZipFile": make_zip(NOOP)},
                           MemorySize=1769)
    client.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1})
    version = str(client.publish_version(FunctionName=name)["Version"])
    client.put_provisioned_concurrency_config(FunctionName=name, Qualifier=version,
                                              ProvisionedConcurrentExecutions=count)
    return version


def _wait_ready(client: Any, name: str, version: str) -> dict[str, Any]:
    """The configuration once it is no longer IN_PROGRESS (within ``READY_WITHIN_S``)."""
    def settled() -> dict[str, Any] | None:
        config = dict(client.get_provisioned_concurrency_config(FunctionName=name, Qualifier=version))
        return config if config["Status"] != "IN_PROGRESS" else None

    return wait_until(settled, f"{name}:{version} to leave IN_PROGRESS", timeout=READY_WITHIN_S, interval=0.2)


def test_a_burst_of_provisioned_environments_queues_and_comes_up_whole(
        burst_server: StratoServer) -> None:
    client = client_for(burst_server.endpoint)
    version = _provision(client, "burst", BURST)
    config = _wait_ready(client, "burst", version)
    assert (config["Status"], config.get("StatusReason")) == ("READY", None), config
    assert config["AllocatedProvisionedConcurrentExecutions"] == BURST
    assert config["AvailableProvisionedConcurrentExecutions"] == BURST
    host = HostView(burst_server.process.pid)
    assert len(host.environment_cgroups()) == BURST
    # Each one serves.
    response = client.invoke(FunctionName="burst", Qualifier=version, Payload=b"{}")
    assert "FunctionError" not in response and response["StatusCode"] == 200


def _host_links(prefix: str) -> list[str]:
    return [p.name for p in Path("/sys/class/net").iterdir()
            if p.name == prefix or p.name.startswith(f"{prefix}-")]


def test_one_sigterm_stops_a_server_full_of_environments_and_leaves_nothing(
        tmp_path: Path) -> None:
    server = _start(tmp_path, 2)
    config = egress_of(server.process.pid)
    try:
        client = client_for(server.endpoint)
        version = _provision(client, "held", TEARDOWN)
        assert _wait_ready(client, "held", version)["Status"] == "READY"
        host = HostView(server.process.pid)
        processes = host.environment_processes() | set(host.zygotes())
        cgroup_parents = [host.cgroup_parent(c) for c in ("memory", "pids", "cpu")]
        assert len(host.environment_cgroups()) == TEARDOWN
        assert len(_host_links(config.bridge)) > TEARDOWN  # one port each, and the bridge
        started = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(timeout=STOP_WITHIN_S)
        stopped_in = time.monotonic() - started
    finally:
        if server.process.poll() is None:
            server.process.kill()
        stop_server(server)
    assert server.process.returncode == 0
    assert stopped_in < STOP_WITHIN_S
    assert [p for p in processes if Path(f"/proc/{p}").exists()
            and _state(p) != "Z"] == []
    assert [str(p) for p in cgroup_parents if p.exists()] == []
    assert _host_links(config.bridge) == []
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True,
                            check=True).stdout
    assert config.table not in tables


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"
