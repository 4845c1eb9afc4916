"""Hostile functions against the network: strato's own API, the host's services (TCP, UDP,
unix sockets), the metadata address; in the namespaces tier with egress ``none`` and
``internet``, and in the fallback tier with egress ``none``.

The fallback tier shares the host's network; with egress ``none`` Landlock limits TCP connect
to the environment's own Runtime API port, and the seccomp filter lets it make no socket but
TCP ones and connected unix pairs (no UDP, no unix socket that could reach the host's). Its
``internet`` mode leaves the host's network wide open by design (no firewall without a
network namespace), so it is not tested here.

In internet mode a "remote host" (a network namespace behind a veth pair, as in
``tests/integration/test_network.py``) plays the internet: reaching it proves that egress
works, so that what is not reached is held back by the firewall, not by a missing route.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.hostile import (
    PROBER,
    TierServer,
    create,
    denied,
    egress_of,
    internet,
    open_up,
    probe,
    serve_tier,
    unique,
)

MODES = [("namespaces", "none"), ("namespaces", "internet"), ("fallback", "none")]
TAG = os.getpid() % 250 + 1
EGRESS_PREFIX, EGRESS_POOL = f"stt{TAG}", "10.214.0.0/16"
REMOTE_NETNS = f"strato-hostile-{os.getpid()}"
REMOTE_HOST_END = f"sthr{os.getpid() % 100000}"
REMOTE_HOST_SIDE, REMOTE_SIDE = f"100.65.{TAG}.1", f"100.65.{TAG}.2"
#: Behind the remote host: an "internet" address and a link-local one (as a metadata service).
INTERNET_ADDRESS, LINK_LOCAL_ADDRESS = f"203.0.113.{TAG}", f"169.254.213.{TAG}"
REMOTE_PORT = 8080
METADATA = ("169.254.169.254", 80)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@contextlib.contextmanager
def remote_host() -> Iterator[None]:
    """INTERNET_ADDRESS and LINK_LOCAL_ADDRESS, routed through a directly connected
    neighbour, both answering ``remote`` on REMOTE_PORT."""
    server: subprocess.Popen[str] | None = None
    try:
        _ip("netns", "add", REMOTE_NETNS)
        _ip("link", "add", REMOTE_HOST_END, "type", "veth", "peer", "name", "remote0",
            "netns", REMOTE_NETNS)
        _ip("addr", "add", f"{REMOTE_HOST_SIDE}/30", "dev", REMOTE_HOST_END)
        _ip("link", "set", REMOTE_HOST_END, "up")
        inside = ["-n", REMOTE_NETNS]
        _ip(*inside, "addr", "add", f"{REMOTE_SIDE}/30", "dev", "remote0")
        _ip(*inside, "link", "set", "remote0", "up")
        _ip(*inside, "link", "set", "lo", "up")
        for address in (INTERNET_ADDRESS, LINK_LOCAL_ADDRESS):
            _ip(*inside, "addr", "add", f"{address}/32", "dev", "lo")
            _ip("route", "add", f"{address}/32", "via", REMOTE_SIDE)
        _ip(*inside, "route", "add", "default", "via", REMOTE_HOST_SIDE)
        code = ("import socket\n"
                "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                f"s.bind(('0.0.0.0', {REMOTE_PORT})); s.listen(64); print('ready', flush=True)\n"
                "while True:\n"
                "    c, _ = s.accept(); c.sendall(b'remote\\n'); c.close()\n")
        server = subprocess.Popen(["ip", "netns", "exec", REMOTE_NETNS, sys.executable, "-I",
                                   "-S", "-c", code], stdout=subprocess.PIPE, text=True)
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        yield
    finally:
        if server is not None:
            server.kill()
            server.communicate()
        for address in (INTERNET_ADDRESS, LINK_LOCAL_ADDRESS):
            subprocess.run(["ip", "route", "del", f"{address}/32"], capture_output=True)
        subprocess.run(["ip", "link", "del", REMOTE_HOST_END], capture_output=True)
        subprocess.run(["ip", "netns", "del", REMOTE_NETNS], capture_output=True)


@pytest.fixture(scope="module", params=MODES, ids=["-".join(m) for m in MODES])
def hostile(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[TierServer]:
    tier, egress = request.param
    with contextlib.ExitStack() as stack:
        env = {}
        if egress == "internet":
            env = internet(EGRESS_PREFIX, EGRESS_POOL)
            stack.enter_context(remote_host())
        yield stack.enter_context(serve_tier(tier, tmp_path_factory, egress=egress, env=env))


@pytest.fixture(scope="module")
def prober(hostile: TierServer) -> str:
    name = unique("prober")
    create(hostile.client, name, {"app.py": PROBER})
    return name


@dataclass
class Services:
    """Services on the host that no environment may reach."""

    tcp: int            # TCP on 0.0.0.0, answers "host"
    udp: socket.socket  # UDP on 0.0.0.0
    unix: str           # a unix socket anyone may connect to (mode 0777), answers "host"
    abstract: str       # "@name" of an abstract unix socket, answers "host"

    @property
    def udp_port(self) -> int:
        return int(self.udp.getsockname()[1])

    def datagrams(self) -> list[bytes]:
        """What reached the UDP service: everything before a sentinel the host sends to it
        now (datagrams sent earlier are queued ahead of it)."""
        sentinel = unique("sentinel").encode()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(sentinel, ("127.0.0.1", self.udp_port))
        received = []
        while (data := self.udp.recv(4096)) != sentinel:
            received.append(data)
        return received


def _serve(listener: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while True:
            connection, _ = listener.accept()
            with connection:
                connection.sendall(b"host\n")


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    directory = tmp_path_factory.mktemp("hostile-services")
    open_up(directory, tmp_path_factory.getbasetemp().parent)
    tcp = socket.create_server(("0.0.0.0", 0))
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("0.0.0.0", 0))
    udp.settimeout(10)
    path = str(directory / "service.sock")
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(path)
    os.chmod(path, 0o777)
    unix.listen()
    abstract_name = unique("strato-hostile")
    abstract = socket.socket(socket.AF_UNIX)
    abstract.bind("\0" + abstract_name)
    abstract.listen()
    listeners = [tcp, unix, abstract]
    for listener in listeners:
        threading.Thread(target=_serve, args=(listener,), daemon=True).start()
    try:
        yield Services(tcp.getsockname()[1], udp, path, "@" + abstract_name)
    finally:
        for sock in [*listeners, udp]:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


def host_addresses() -> list[str]:
    """Every IPv4 address of the host (loopback, eth0, bridges)."""
    out = subprocess.run(["ip", "-j", "-4", "addr", "show"], capture_output=True, text=True,
                         check=True).stdout
    return [a["local"] for link in json.loads(out) for a in link.get("addr_info", [])]


def _targets(hostile: TierServer, port: int) -> list[list[Any]]:
    """Where an environment might find a host service on ``port``: the loopback, and in
    internet mode every address of the host (the bridge's gateway among them)."""
    if hostile.egress == "internet":
        assert str(egress_of(hostile.pid).gateway) in host_addresses()
        return [[address, port] for address in host_addresses()]
    return [["127.0.0.1", port]]


def _unreached(hostile: TierServer, outcomes: dict[str, dict[str, Any]]) -> None:
    reached = {k: v for k, v in outcomes.items() if v["ok"]}
    assert reached == {}, reached
    if hostile.tier == "fallback":  # Landlock refuses every TCP connect but the Runtime API's
        assert {v["errno"] for v in outcomes.values()} == {"EACCES"}, outcomes


def _internet_control(hostile: TierServer, prober: str) -> None:
    """In internet mode the remote host is reachable: egress works."""
    if hostile.egress == "internet":
        outcome = probe(hostile.client, prober, ("connect", INTERNET_ADDRESS, REMOTE_PORT))[0]
        assert outcome == {"ok": True, "result": "reached remote"}, outcome


def test_strato_api_is_reached_only_as_the_functions_endpoint(hostile: TierServer,
                                                              prober: str) -> None:
    """The API's port on the loopback is the function's ``AWS_ENDPOINT_URL`` in both tiers:
    namespaces tier, a socket of the environment's own network that strato serves (the
    API's host socket is out of reach at every address of the host); fallback tier, which
    shares the host's network, the API itself, the one port besides the Runtime API's that
    Landlock lets it connect to. Every call still needs the role's credentials."""
    with socket.create_connection(("127.0.0.1", hostile.port), timeout=5):
        pass  # the API listens
    outcome = probe(hostile.client, prober, ("connect_many", _targets(hostile, hostile.port)))[0]
    results = outcome["result"]
    # Connected: the API says nothing until it gets a request, so the read times out.
    assert results.pop(f"127.0.0.1:{hostile.port}") == {
        "ok": False, "errno": "timeout", "error": "timed out"}, outcome
    if hostile.tier == "fallback":
        assert results == {}, outcome
    else:  # internet egress: the host's other addresses
        _unreached(hostile, results)
    _internet_control(hostile, prober)


def test_host_tcp_service_is_out_of_reach(hostile: TierServer, prober: str,
                                          services: Services) -> None:
    targets = _targets(hostile, services.tcp)
    for address, port in targets:  # each one answers the host itself
        with socket.create_connection((address, port), timeout=5) as sock:
            assert sock.recv(16) == b"host\n"
    outcome = probe(hostile.client, prober, ("connect_many", targets))[0]
    _unreached(hostile, outcome["result"])
    _internet_control(hostile, prober)


def test_metadata_and_link_local_addresses_are_out_of_reach(hostile: TierServer,
                                                            prober: str) -> None:
    targets = [list(METADATA)]
    if hostile.egress == "internet":
        with socket.create_connection((LINK_LOCAL_ADDRESS, REMOTE_PORT), timeout=5) as sock:
            assert sock.recv(16) == b"remote\n"  # reachable from the host
        targets.append([LINK_LOCAL_ADDRESS, REMOTE_PORT])
    outcome = probe(hostile.client, prober, ("connect_many", targets))[0]
    _unreached(hostile, outcome["result"])
    _internet_control(hostile, prober)


def test_udp_to_the_host_is_not_delivered(hostile: TierServer, prober: str,
                                          services: Services) -> None:
    """UDP is not TCP: Landlock has no rule for it. Whatever the function manages to send,
    nothing may arrive at a host service (in the fallback tier, it cannot make the socket)."""
    text = unique("udp-from-a-function")
    steps = [("udp", address, port, text) for address, port in _targets(hostile, services.udp_port)]
    outcomes = probe(hostile.client, prober, *steps)
    assert text.encode() not in services.datagrams()
    if hostile.tier == "fallback":
        assert all(outcome.get("errno") == "EPERM" for outcome in outcomes), outcomes


def test_host_unix_sockets_are_out_of_reach(hostile: TierServer, prober: str,
                                            services: Services) -> None:
    for address in (services.unix, "\0" + services.abstract[1:]):
        with socket.socket(socket.AF_UNIX) as sock:  # both answer the host
            sock.connect(address)
            assert sock.recv(16) == b"host\n"
    path, abstract = probe(hostile.client, prober, ("unix", services.unix),
                           ("unix", services.abstract))
    assert not path["ok"], path
    assert not abstract["ok"], abstract
    if hostile.tier == "namespaces":
        # The path is not in its file system; the abstract name lives in the host's network
        # namespace, not in its own.
        assert (path["errno"], abstract["errno"]) == ("ENOENT", "ECONNREFUSED")
    else:
        # Seccomp: no AF_UNIX socket (and Landlock's scope, from ABI 6, for abstract names).
        assert (path["errno"], abstract["errno"]) == ("EPERM", "EPERM")


AF_UNIX, AF_INET, AF_INET6, AF_NETLINK, AF_PACKET, AF_VSOCK = 1, 2, 10, 16, 17, 40
SOCK_STREAM, SOCK_DGRAM, SOCK_RAW, SOCK_SEQPACKET = 1, 2, 3, 5
SOCK_NONBLOCK, SOCK_CLOEXEC = 0o4000, 0o2000000
IPPROTO_TCP, IPPROTO_UDP, IPPROTO_MPTCP = 6, 17, 262
#: Sockets a function makes; in the fallback tier with egress ``none`` those of MADE only.
MADE = [("socket", AF_INET, SOCK_STREAM), ("socket", AF_INET6, SOCK_STREAM),
        ("socket", AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC),
        ("socket", AF_INET, SOCK_STREAM, IPPROTO_TCP),
        ("socketpair", SOCK_STREAM), ("socketpair", SOCK_SEQPACKET)]
REFUSED = [("socket", AF_INET, SOCK_DGRAM), ("socket", AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC),
           ("socket", AF_INET, SOCK_STREAM, IPPROTO_UDP),
           ("socket", AF_INET, SOCK_STREAM, IPPROTO_MPTCP), ("socket", AF_INET, SOCK_RAW),
           ("socket", AF_UNIX, SOCK_STREAM), ("socket", AF_UNIX, SOCK_DGRAM),
           ("socket", AF_NETLINK, SOCK_RAW), ("socket", AF_PACKET, SOCK_DGRAM),
           ("socketpair", SOCK_DGRAM)]
#: Refused to an unprivileged process by the kernel itself (CAP_NET_RAW), in every tier.
PRIVILEGED = {("socket", AF_INET, SOCK_RAW), ("socket", AF_PACKET, SOCK_DGRAM)}


def test_which_sockets_a_function_can_make(hostile: TierServer, prober: str) -> None:
    """The fallback tier (egress ``none``) refuses every socket but TCP ones and connected
    unix pairs (a datagram pair could send to any unix socket by its path); the namespaces
    tier, in a network namespace of its own, refuses none."""
    made = probe(hostile.client, prober, *MADE)
    for step, outcome in zip(MADE, made, strict=True):
        # An IPv6 socket needs IPv6 in the kernel.
        assert outcome["ok"] or (step[1] == AF_INET6 and outcome["errno"] == "EAFNOSUPPORT"), \
            (step, outcome)
        if step[0] == "socketpair":
            assert outcome["result"] == "ping", outcome
    refused = probe(hostile.client, prober, *REFUSED)
    for step, outcome in zip(REFUSED, refused, strict=True):
        if hostile.tier == "fallback":
            assert denied(outcome, "EPERM"), (step, outcome)
        elif step not in PRIVILEGED:
            assert outcome.get("errno") != "EPERM", (step, outcome)


def test_vsock_is_refused_in_every_tier(hostile: TierServer, prober: str) -> None:
    """A vsock reaches the hypervisor's side of the virtual machine strato runs in, past any
    network namespace: the seccomp filter refuses it (``socket`` and ``socketpair``)."""
    steps = [("socket", AF_VSOCK, SOCK_STREAM), ("socket", AF_VSOCK, SOCK_SEQPACKET),
             ("socket", AF_VSOCK, SOCK_DGRAM | SOCK_CLOEXEC),
             ("socketpair_of", AF_VSOCK, SOCK_STREAM)]
    outcomes = probe(hostile.client, prober, *steps)
    for step, outcome in zip(steps, outcomes, strict=True):
        assert denied(outcome, "EPERM"), (step, outcome)
