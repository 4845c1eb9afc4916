"""Internet egress beside another strato: each server has its own bridge and subnet
(STRATO_EGRESS_BRIDGE, STRATO_EGRESS_SUBNET), and its environments must stay out of the
host's services whatever the other server does: start, run, stop.

Runs in a module of its own: starting and stopping servers with internet egress here must not
touch the servers of other hostile tests.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from strato.sandbox.network import EgressConfig, EgressNetwork
from tests.e2e.hostile import PROBER, TierServer, create, probe, serve_tier, unique

TAG = os.getpid() % 250 + 1
FIRST = EgressConfig(bridge=f"stratoa{TAG}", subnet="10.218.0.0/16")
SECOND = EgressConfig(bridge=f"stratob{TAG}", subnet="10.219.0.0/16")


def _internet(config: EgressConfig) -> dict[str, str]:
    return {"STRATO_EGRESS_BRIDGE": config.bridge, "STRATO_EGRESS_SUBNET": config.subnet}


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
    gateway = str(FIRST.gateway)
    with socket.create_connection((gateway, port), timeout=5) as sock:
        assert sock.recv(16) == b"host\n"  # the host reaches it on that address
    outcome: dict[str, Any] = probe(server.client, name, ("connect", gateway, port))[0]
    return outcome


def test_a_second_strato_leaves_the_firewall_of_the_first_in_place(
        tmp_path_factory: pytest.TempPathFactory, host_service: int) -> None:
    for config in (FIRST, SECOND):
        reason = EgressNetwork(config).probe()
        if reason is not None:
            if os.environ.get("CI"):
                pytest.fail(f"internet egress unavailable in CI: {reason}")
            pytest.skip(f"internet egress is unavailable here: {reason}")
    with serve_tier("namespaces", tmp_path_factory, egress="internet",
                    env=_internet(FIRST)) as first:
        name = unique("prober")
        create(first.client, name, {"app.py": PROBER})
        seen = {"alone": _reaches_host(first, name, host_service)}
        with serve_tier("namespaces", tmp_path_factory, egress="internet",
                        env=_internet(SECOND)):
            seen["beside a second strato"] = _reaches_host(first, name, host_service)
        seen["after the second stopped"] = _reaches_host(first, name, host_service)
    reached = {when: outcome for when, outcome in seen.items() if outcome["ok"]}
    assert reached == {}, seen
