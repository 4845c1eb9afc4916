"""Internet egress beside another strato: two servers with the same settings each take a slot
of their own (``sandbox/network_slots.py``): their own bridge, nftables table and subnet,
and an unreachable route to that subnet, so that a bridge that goes missing fails closed.
Environments must stay out of the host's services whatever the other server does: start,
run, stop, or be killed.

Runs in a module of its own: starting and stopping servers with internet egress here must not
touch the servers of other hostile tests.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from strato.sandbox.forwarding import LEASE_DIR
from strato.sandbox.network import EgressConfig
from tests.e2e.conftest import start_server, stop_server
from tests.e2e.hostile import (
    PROBER,
    TierServer,
    create,
    egress_of,
    internet,
    probe,
    serve_tier,
    unique,
)

TAG = os.getpid() % 250 + 1
#: Both servers of a test have the same settings: what keeps them apart is their slots.
PREFIX, POOL = f"sta{TAG}", "10.218.0.0/16"
FORWARDING = Path("/proc/sys/net/ipv4/ip_forward")
FORWARDING_USERS = Path(LEASE_DIR)


@pytest.fixture(scope="module")
def settings() -> dict[str, str]:
    """Internet egress settings (skips where the host cannot give it)."""
    env = internet(PREFIX, POOL)
    del env["STRATO_EGRESS"]  # serve_tier sets it
    return env


@pytest.fixture(scope="module")
def host_service() -> Iterator[int]:
    """A TCP service on every host address, answering ``host``; yields its port."""
    listener = socket.create_server(("0.0.0.0", 0))

    def serve() -> None:
        try:
            while True:
                connection, _ = listener.accept()
                with connection:
                    connection.sendall(b"host\n")
        except OSError:
            pass

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()[1]
    listener.close()


def _reaches_host(server: TierServer, name: str, port: int) -> dict[str, Any]:
    gateway = str(egress_of(server.pid).gateway)
    with socket.create_connection((gateway, port), timeout=5) as sock:
        assert sock.recv(16) == b"host\n"  # the host reaches it on that address
    outcome: dict[str, Any] = probe(server.client, name, ("connect", gateway, port))[0]
    return outcome


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=False)


def _present(config: EgressConfig) -> dict[str, bool]:
    """Which of the server's bridge, table and unreachable route exist on the host."""
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True,
                            check=True).stdout.split("\n")
    routes = _ip("route", "show", "type", "unreachable", str(config.network)).stdout
    return {"bridge": _ip("link", "show", config.bridge).returncode == 0,
            "table": f"table inet {config.table}" in tables,
            "route": str(config.network) in routes and "metric 4294967295" in routes}


def test_a_second_strato_leaves_the_firewall_of_the_first_in_place(
        tmp_path_factory: pytest.TempPathFactory, host_service: int,
        settings: dict[str, str]) -> None:
    with serve_tier("namespaces", tmp_path_factory, egress="internet", env=settings) as first:
        name = unique("prober")
        create(first.client, name, {"app.py": PROBER})
        seen = {"alone": _reaches_host(first, name, host_service)}
        with serve_tier("namespaces", tmp_path_factory, egress="internet", env=settings):
            seen["beside a second strato"] = _reaches_host(first, name, host_service)
        seen["after the second stopped"] = _reaches_host(first, name, host_service)
    reached = {when: outcome for when, outcome in seen.items() if outcome["ok"]}
    assert reached == {}, seen


def test_two_servers_never_share_a_bridge_table_or_subnet(
        tmp_path_factory: pytest.TempPathFactory, settings: dict[str, str]) -> None:
    with serve_tier("namespaces", tmp_path_factory, egress="internet", env=settings) as first:
        mine = egress_of(first.pid)
        with serve_tier("namespaces", tmp_path_factory, egress="internet",
                        env=settings) as second:
            theirs = egress_of(second.pid)
            assert mine.bridge != theirs.bridge and mine.table != theirs.table
            assert not mine.network.overlaps(theirs.network), (mine.subnet, theirs.subnet)
            assert _present(mine) == _present(theirs) == \
                {"bridge": True, "table": True, "route": True}
        # The second's stop removed its own and left the first's.
        assert _present(theirs) == {"bridge": False, "table": False, "route": False}
        assert _present(mine) == {"bridge": True, "table": True, "route": True}
    assert _present(mine) == {"bridge": False, "table": False, "route": False}


def test_a_deleted_bridge_fails_closed(tmp_path_factory: pytest.TempPathFactory,
                                       settings: dict[str, str]) -> None:
    """With its bridge deleted under it, a server's subnet is unreachable from the host: a
    probe for the gateway or an environment's address does not follow the default route
    out of the machine."""
    with serve_tier("namespaces", tmp_path_factory, egress="internet", env=settings) as server:
        name = unique("prober")
        create(server.client, name, {"app.py": PROBER})
        config = egress_of(server.pid)
        gateway, neighbour = str(config.gateway), str(config.gateway + 5)
        assert f"dev {config.bridge}" in _ip("route", "get", neighbour).stdout
        assert _ip("link", "del", config.bridge).returncode == 0
        for address in (gateway, neighbour):
            lookup = _ip("route", "get", address)
            assert lookup.returncode != 0 and "No route to host" in lookup.stderr, lookup
        # An environment's packets have no way out either.
        outcome = probe(server.client, name, ("connect", "1.1.1.1", 80))[0]
        assert not outcome["ok"], outcome
    assert _present(config) == {"bridge": False, "table": False, "route": False}


def test_what_a_killed_server_left_is_removed_by_the_next(
        tmp_path_factory: pytest.TempPathFactory, settings: dict[str, str]) -> None:
    env = {**settings, "STRATO_EGRESS": "internet", "STRATO_SANDBOX": "namespaces"}
    killed = start_server(tmp_path_factory.mktemp("killed"), env=env)
    left = egress_of(killed.process.pid)
    killed.process.send_signal(signal.SIGKILL)
    killed.process.wait()
    stop_server(killed)
    assert _present(left) == {"bridge": True, "table": True, "route": True}
    with serve_tier("namespaces", tmp_path_factory, egress="internet", env=settings) as server:
        mine = egress_of(server.pid)
        if mine.bridge != left.bridge:
            assert _present(left) == {"bridge": False, "table": False, "route": False}
        assert _present(mine) == {"bridge": True, "table": True, "route": True}
    assert _present(left) == {"bridge": False, "table": False, "route": False}


def test_a_stopping_server_leaves_forwarding_on_while_another_uses_it(
        tmp_path_factory: pytest.TempPathFactory, settings: dict[str, str]) -> None:
    """IPv4 forwarding is one switch for the host: each server with internet egress holds a
    lease on it (``/run/strato/forwarding/<pid>-<random>.user``), and the first to stop leaves it on
    for the other (tests/integration/test_forwarding.py shows the last one restoring the
    host's setting)."""
    env = {**settings, "STRATO_EGRESS": "internet", "STRATO_SANDBOX": "namespaces"}
    first = start_server(tmp_path_factory.mktemp("first"), env=env)
    try:
        with serve_tier("namespaces", tmp_path_factory, egress="internet", env=settings) as second:
            assert _forwarding_users() >= {first.process.pid, second.pid}
            stop_server(first)
            assert FORWARDING.read_text().strip() == "1"
            users = _forwarding_users()
            assert second.pid in users and first.process.pid not in users
        assert second.pid not in _forwarding_users()
    finally:
        stop_server(first)


def _forwarding_users() -> set[int]:
    """The pids holding a lease on IPv4 forwarding (files ``<pid>-<random>.user``)."""
    return {int(p.name.split("-")[0]) for p in FORWARDING_USERS.glob("*.user")}
