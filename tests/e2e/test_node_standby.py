"""Node.js cold starts from standby environments (``sandbox/standby.py``), driven with boto3
against a real server of the namespaces tier: a cold start is served by a node that was
booted before its function existed; it sees its own code and variables and nothing else;
a standby serves one function only; the variants a standby cannot serve still start."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.hostile import TierServer, internet, invoke, serve_tier
from tests.e2e.test_nodejs_runtime import create_node

#: What a function tells of the process it runs in: how long ago node started (a standby's
#: did before its function existed; the process may be older, forked ahead of demand), and
#: everything an attacker would look through.
INTROSPECT = r"""
const fs = require('fs');
const path = require('path');

function walk(dir, depth) {
  let found = [];
  let entries = [];
  try { entries = fs.readdirSync(dir, { withFileTypes: true }); } catch { return found; }
  for (const entry of entries) {
    const full = path.join(dir, entry.name);
    found.push(full);
    if (entry.isDirectory() && depth > 0) found = found.concat(walk(full, depth - 1));
  }
  return found;
}

function fds() {
  return fs.readdirSync('/proc/self/fd').map((fd) => {
    try { return fs.readlinkSync(`/proc/self/fd/${fd}`).replace(/\[\d+\]/, ''); }
    catch { return 'gone'; }
  }).sort();
}

exports.handler = async (event) => {
  if (event.leave) fs.writeFileSync(`/tmp/${event.leave}`, event.leave);
  if (event.daemon) {
    require('child_process').spawn('/bin/sleep', ['300'], { detached: true, stdio: 'ignore' })
      .unref();
  }
  return {
    age: process.uptime(),  // since node started (its exec, not the fork before)
    task: fs.readdirSync('/var/task').sort(),
    cwd: process.cwd(),
    tmp: walk('/tmp', 3),
    shm: walk('/dev/shm', 1),
    argv: process.argv,
    env: process.env,
    environ: fs.readFileSync('/proc/self/environ', 'utf8'),  // as node was exec'd
    fds: fds(),
    mounts: fs.readFileSync('/proc/self/mountinfo', 'utf8'),
    interfaces: fs.readFileSync('/proc/self/net/dev', 'utf8').split('\n').slice(2)
      .map((line) => line.split(':')[0].trim()).filter(Boolean).sort(),
    processes: fs.readdirSync('/proc').filter((name) => /^\d+$/.test(name)),
  };
};
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TierServer]:
    with serve_tier("namespaces", tmp_path_factory) as tier_server:
        yield tier_server


def cold_start(server: TierServer, files: dict[str, str], event: Any = None,
               **kwargs: Any) -> tuple[dict[str, Any], float]:
    """Create a function and invoke it once: its result, and the seconds from just before
    the function was created to the result."""
    began = time.monotonic()
    name = create_node(server, files, **kwargs)
    response, payload = invoke(server.client, name, event or {})
    assert "FunctionError" not in response, payload
    return payload, time.monotonic() - began


def standby_start(server: TierServer, files: dict[str, str], event: Any = None,
                  **kwargs: Any) -> dict[str, Any]:
    """A cold start served by a standby: its process started before the function was
    created. Standbys boot on first demand and again after each is taken, so the first
    cold starts may start node afresh; tries until one is a standby's (30 s at most)."""
    deadline = time.monotonic() + 30
    while True:
        payload, elapsed = cold_start(server, files, event, **kwargs)
        if payload["age"] > elapsed:
            return payload
        assert time.monotonic() < deadline, "no cold start came from a standby"


def test_a_cold_start_is_served_by_a_node_booted_before_the_function(server: TierServer) -> None:
    payload = standby_start(server, {"index.js": INTROSPECT},
                            Environment={"Variables": {"GREETING": "hello"}})
    assert payload["task"] == ["index.js"]
    assert payload["cwd"] == "/var/task"
    assert payload["env"]["GREETING"] == "hello"
    assert payload["env"]["LAMBDA_TASK_ROOT"] == "/var/task"
    assert payload["argv"] == ["/var/lang/bin/node", "/var/runtime/index.mjs"]
    assert payload["interfaces"] == ["lo"]  # egress none: a loopback of its own
    # The code is a read-only mount of its own at /var/task.
    task_mounts = [line for line in payload["mounts"].splitlines()
                   if line.split()[4] == "/var/task"]
    assert len(task_mounts) == 1
    assert "ro" in task_mounts[0].split()[5].split(",")


def test_a_standby_sees_what_a_fresh_start_sees(server: TierServer) -> None:
    """Same variables (names), same open files, same processes as node started afresh
    (EphemeralStorage other than 512 MB is one case a standby does not serve)."""
    standby = standby_start(server, {"index.js": INTROSPECT})
    fresh, elapsed = cold_start(server, {"index.js": INTROSPECT},
                                EphemeralStorage={"Size": 1024})
    assert fresh["age"] < elapsed
    ignored = {"_X_AMZN_TRACE_ID"}
    assert set(standby["env"]) - ignored == set(fresh["env"]) - ignored
    assert standby["fds"] == fresh["fds"]
    assert standby["processes"] == fresh["processes"]
    assert standby["argv"] == fresh["argv"]


def test_a_standby_serves_one_function_only(server: TierServer) -> None:
    """Whatever a function leaves in its environment, the next function's standby has
    none of it: not its /tmp, its code, its variables."""
    first = standby_start(server, {"index.js": INTROSPECT, "first-marker.txt": "x"},
                          {"leave": "first-was-here", "daemon": True},
                          Environment={"Variables": {"FIRST_SECRET": "s3cret"}})
    assert "/tmp/first-was-here" in first["tmp"]
    assert len(first["processes"]) == 2  # itself and the daemon it left, still running
    second = standby_start(server, {"index.js": INTROSPECT}, {"leave": "second"})
    assert len(second["processes"]) == 1
    assert second["task"] == ["index.js"]
    assert second["tmp"] == ["/tmp/second"]
    assert second["shm"] == []
    assert "FIRST_SECRET" not in second["env"]
    assert "s3cret" not in repr(second) and "first" not in repr(second).lower()


@pytest.mark.parametrize("variant", [
    {"EphemeralStorage": {"Size": 2048}},
    {"Environment": {"Variables": {"NODE_OPTIONS": "--max-old-space-size=100"}}},
    {"MemorySize": 256},
])
def test_variants_start_and_see_their_settings(server: TierServer, variant: dict[str, Any]) -> None:
    files = {"index.js": INTROSPECT + """
const v8 = require('v8');
const os = require('os');
const inner = exports.handler;
exports.handler = async (event) => ({...await inner(event),
  heapLimitMB: v8.getHeapStatistics().heap_size_limit / 1048576,
  tmpSize: require('child_process') && fs.statfsSync('/tmp').blocks * fs.statfsSync('/tmp').bsize});
"""}
    payload, _ = cold_start(server, files, **variant)
    if "EphemeralStorage" in variant:
        assert payload["tmpSize"] == 2048 * 1024 * 1024
    if "Environment" in variant:
        assert payload["heapLimitMB"] < 200  # node started with the function's NODE_OPTIONS
    if "MemorySize" in variant:
        assert payload["task"] == ["index.js"]


def test_a_crashed_standby_restarts_in_place_with_its_tmp(server: TierServer) -> None:
    crash = INTROSPECT + """
const inner = exports.handler;
exports.handler = async (event) => {
  if (event.crash) process.exit(3);
  return inner(event);
};
"""
    deadline = time.monotonic() + 30
    while True:
        began = time.monotonic()
        name = create_node(server, {"index.js": crash})
        _, payload = invoke(server.client, name, {"leave": "kept"})
        if payload["age"] > time.monotonic() - began:
            break
        assert time.monotonic() < deadline, "no cold start came from a standby"
    response, _ = invoke(server.client, name, {"crash": True})
    assert response.get("FunctionError") == "Unhandled"
    _, payload = invoke(server.client, name, {})
    assert "/tmp/kept" in payload["tmp"]
    assert payload["task"] == ["index.js"]


def test_the_first_function_leaves_nothing_in_the_standbys_made_for_the_next(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """Standbys are made once the first nodejs function starts, but with the platform's
    values only: that function's own variables (even those node reads as it starts) are in
    no standby's environment."""
    with serve_tier("namespaces", tmp_path_factory) as server:
        first, _ = cold_start(server, {"index.js": INTROSPECT}, Environment={"Variables": {
            "LD_LIBRARY_PATH": "/var/task/first-lib", "LANG": "C.UTF-8", "MARK": "first"}})
        assert first["env"]["LD_LIBRARY_PATH"] == "/var/task/first-lib"
        second = standby_start(server, {"index.js": INTROSPECT})
        assert "first" not in second["environ"] and "C.UTF-8" not in second["environ"]
        assert second["env"]["LANG"] == "en_US.UTF-8"
        assert "MARK" not in second["env"]


def test_internet_egress_has_standbys_of_its_own(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """A standby of a server with internet egress is in one of the network pool's
    namespaces (its eth0 on the bridge) from the start."""
    env = internet(f"sns{os.getpid() % 1000}", "10.219.0.0/16")
    with serve_tier("namespaces", tmp_path_factory, egress="internet", env=env) as server:
        payload = standby_start(server, {"index.js": INTROSPECT})
        assert payload["interfaces"] == ["eth0", "lo"]
        assert payload["task"] == ["index.js"]


#: Connects to strato's API where the function is told it is (``AWS_ENDPOINT_URL``).
REACH_ENDPOINT = r"""
const net = require('net');
exports.handler = async () => {
  const url = new URL(process.env.AWS_ENDPOINT_URL);
  const reached = await new Promise((resolve) => {
    const socket = net.connect(Number(url.port), url.hostname, () => {
      socket.end();
      resolve('connected');
    });
    socket.on('error', (error) => resolve(error.code));
  });
  return { age: process.uptime(), endpoint: process.env.AWS_ENDPOINT_URL, reached };
};
"""


def test_a_standby_reaches_strato_where_its_variables_say(server: TierServer) -> None:
    """The standby listened for strato's API before it knew its function: at the port its
    ``AWS_ENDPOINT_URL`` names, which the SDKs call."""
    payload = standby_start(server, {"index.js": REACH_ENDPOINT})
    assert payload["endpoint"] == f"http://127.0.0.1:{server.port}"
    assert payload["reached"] == "connected", payload
