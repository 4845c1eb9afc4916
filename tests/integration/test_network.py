"""Internet egress and isolation of environments, on real kernel objects.

The module sets up an ``EgressNetwork`` on a bridge, subnet and nftables table of its own
(named after the test process, so a running strato is never touched), plus a "remote host":
a network namespace made with ``ip netns add``, linked to the host by a veth pair
(100.64.N.0/30, a network the host is directly connected to) and holding 198.51.100.1 and
169.254.211.7 behind it (routed through it, the way the internet is). Environments are
played by a small stdlib-only program started with a namespace's fd, which joins it as root
(as the zygote does), drops to uid 65534 in a user namespace of its own, then listens and
connects as told and reports what it reached. A target counts as reached only when the
banner of the server behind it arrives.

Needs root and nft (``EgressNetwork.probe``): skipped without them, failed in CI.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from strato.errors import SandboxError
from strato.sandbox.netlink import Rtnl
from strato.sandbox.network import EgressConfig, EgressNetwork
from strato.sandbox.network_pool import NetnsPool, NetworkNamespace
from strato.sandbox.network_rules import EgressRules, render_ruleset
from tests.support.waiting import wait_until

GUEST_DIR = Path(__file__).resolve().parents[2] / "src" / "strato" / "sandbox" / "guest"
VERSIONS = ("3.10", "3.11", "3.12", "3.13")
TAG = os.getpid() % 250 + 1
REMOTE_NETNS = f"strato-test-remote-{os.getpid()}"
REMOTE_HOST_END = f"sttr{os.getpid() % 100000}"
REMOTE_LINK = ipaddress.IPv4Network(f"100.64.{TAG}.0/30")
REMOTE_HOST_SIDE, REMOTE_SIDE = REMOTE_LINK[1], REMOTE_LINK[2]
INTERNET_ADDRESS = "198.51.100.1"
LINK_LOCAL_ADDRESS = "169.254.211.7"
REMOTE_PORT = 8080
BLOCKED_TIMEOUT = 1.5

#: The environment: joins a namespace or makes its own, drops privileges, listens on
#: ``listen`` ([host, port, banner]) and connects to ``connect`` ([host, port]); prints one
#: JSON report. With ``serve`` it prints the report once listening and serves until stdin
#: closes.
ENVIRONMENT = r"""
import ctypes, errno, fcntl, json, os, select, socket, struct, sys, time
CLONE_NEWNET, CLONE_NEWUSER = 0x40000000, 0x10000000
libc = ctypes.CDLL(None, use_errno=True)
spec = json.loads(sys.argv[1])

def check(rc, what):
    if rc != 0:
        code = ctypes.get_errno()
        raise OSError(code, "%s: %s" % (what, os.strerror(code)))

if spec.get("netns_fd") is not None:
    check(libc.setns(spec["netns_fd"], CLONE_NEWNET), "setns")
    os.close(spec["netns_fd"])
if spec.get("isolated"):
    sys.path.insert(0, spec["guest_dir"])
    import netsetup
    check(libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
    netsetup.bring_loopback_up()
    netsetup.bring_loopback_up()  # idempotent
os.setgroups([])
os.setresgid(65534, 65534, 65534)
os.setresuid(65534, 65534, 65534)
check(libc.unshare(CLONE_NEWUSER), "unshare(CLONE_NEWUSER)")

def may_configure(name):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH22x", name.encode(), 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(sock, 0x8913, request))[1]
        try:
            fcntl.ioctl(sock, 0x8914, struct.pack("16sH22x", name.encode(), flags))
        except PermissionError:
            return False
        return True

report = {"uid": os.getuid(), "may_configure_lo": may_configure("lo"),
          "interfaces": sorted(name for _, name in socket.if_nameindex())}
listeners = {}
for host, port, banner in spec.get("listen", []):
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(16)
    listeners[sock] = banner.encode()
results, connecting, reading = {}, {}, {}
for host, port in spec.get("connect", []):
    key = "%s:%d" % (host, port)
    sock = socket.socket()
    sock.setblocking(False)
    code = sock.connect_ex((host, port))
    if code in (0, errno.EINPROGRESS):
        connecting[sock] = key
    else:
        results[key] = errno.errorcode.get(code, str(code))
        sock.close()
serve = spec.get("serve", False)
if serve:
    print(json.dumps(report), flush=True)
deadline = time.monotonic() + spec.get("timeout", 1.5)
while serve or connecting or reading:
    remaining = deadline - time.monotonic()
    if (connecting or reading) and remaining <= 0:
        for sock, key in list(connecting.items()) + list(reading.items()):
            results[key] = "timeout"
            sock.close()
        connecting, reading = {}, {}
        continue
    wait = [sys.stdin] if serve else []
    ready_r, ready_w, _ = select.select(list(listeners) + list(reading) + wait, list(connecting),
                                        [], remaining if connecting or reading else None)
    if sys.stdin in ready_r and not sys.stdin.readline():
        break
    for sock in ready_w:
        key = connecting.pop(sock)
        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            results[key] = errno.errorcode.get(code, str(code))
            sock.close()
        else:
            reading[sock] = key
    for sock in ready_r:
        if sock in listeners:
            conn, _ = sock.accept()
            conn.sendall(listeners[sock] + b"\n")
            conn.close()
        elif sock in reading:
            key = reading.pop(sock)
            try:
                data = sock.recv(256).decode().strip()
                results[key] = "reached " + data if data else "closed"
            except OSError as exc:
                results[key] = errno.errorcode.get(exc.errno, str(exc))
            sock.close()
report["connect"] = results
if not serve:
    print(json.dumps(report), flush=True)
"""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def _environment_argv(spec: dict[str, Any]) -> list[str]:
    return [sys.executable, "-I", "-S", "-c", ENVIRONMENT, json.dumps(spec)]


def run_environment(namespace: NetworkNamespace | None, **spec: Any) -> dict[str, Any]:
    """Run the environment program to completion in ``namespace`` (or, with
    ``isolated=True``, in a namespace of its own) and return its report."""
    fds: tuple[int, ...] = ()
    if namespace is not None:
        spec["netns_fd"] = namespace.fd
        fds = (namespace.fd,)
    spec.setdefault("timeout", BLOCKED_TIMEOUT)
    done = subprocess.run(_environment_argv(spec), pass_fds=fds, capture_output=True,
                          text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return report


@contextlib.contextmanager
def serving_environment(namespace: NetworkNamespace, listen: list[list[Any]]
                        ) -> Iterator[dict[str, Any]]:
    """The environment program listening in ``namespace`` until the block ends."""
    spec = {"netns_fd": namespace.fd, "listen": listen, "serve": True}
    process = subprocess.Popen(_environment_argv(spec), pass_fds=(namespace.fd,),
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # printed once it listens
        if not line:
            assert process.stderr is not None
            pytest.fail(f"environment server failed: {process.stderr.read()}")
        yield json.loads(line)
    finally:
        process.kill()
        process.communicate()


def _require_egress(network: EgressNetwork) -> None:
    reason = network.probe()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"internet egress unavailable in CI: {reason}")
        pytest.skip(f"internet egress unavailable: {reason}")


# --- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def remote() -> Iterator[None]:
    """A host on the "internet": 198.51.100.1 and 169.254.211.7 routed through a directly
    connected neighbour at REMOTE_SIDE, all serving a ``remote`` banner on REMOTE_PORT."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
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
        _ip(*inside, "route", "add", "default", "via", str(REMOTE_HOST_SIDE))
        _ip("route", "add", "198.51.100.0/24", "via", str(REMOTE_SIDE))
        _ip("route", "add", f"{LINK_LOCAL_ADDRESS}/32", "via", str(REMOTE_SIDE))
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
        for route in ("198.51.100.0/24", f"{LINK_LOCAL_ADDRESS}/32"):
            subprocess.run(["ip", "route", "del", route], capture_output=True)
        subprocess.run(["ip", "link", "del", REMOTE_HOST_END], capture_output=True)
        subprocess.run(["ip", "netns", "del", REMOTE_NETNS], capture_output=True)


def _config(name: str, third_octet: int) -> EgressConfig:
    return EgressConfig(bridge=f"st{name}{os.getpid() % 10000}",
                        subnet=f"10.253.{third_octet}.0/24",
                        table=f"strato_test_{name}_{os.getpid()}")


@pytest.fixture(scope="module")
def network(remote: None) -> Iterator[EgressNetwork]:
    network = EgressNetwork(_config("t", TAG))
    _require_egress(network)
    try:
        network.setup()
        yield network
    finally:
        network.teardown()


@pytest.fixture(scope="module")
def pool(network: EgressNetwork) -> Iterator[NetnsPool]:
    pool = NetnsPool(network, size=4)
    try:
        pool.start()
        yield pool
    finally:
        pool.close()


@pytest.fixture
def leases(pool: NetnsPool) -> Iterator[list[NetworkNamespace]]:
    """Namespaces acquired by a test, released after it whatever happens."""
    taken: list[NetworkNamespace] = []
    try:
        yield taken
    finally:
        for namespace in taken:
            pool.release(namespace)


def _acquire(pool: NetnsPool, leases: list[NetworkNamespace]) -> NetworkNamespace:
    namespace = pool.acquire_blocking(timeout=10)
    leases.append(namespace)
    return namespace


class _Banner(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.sendall(b"host\n")


class _BannerServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


@pytest.fixture(scope="module")
def host_server() -> Iterator[int]:
    """A server on every host address (0.0.0.0) answering ``host``; yields its port."""
    server = _BannerServer(("0.0.0.0", 0), _Banner)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _host_ipv4_addresses() -> list[str]:
    with Rtnl() as rtnl:
        return [str(entry.address) for entry in rtnl.addresses()]


def _reached(result: str) -> bool:
    return result.startswith("reached")


# --- internet mode ------------------------------------------------------------------------


def test_probe_finds_internet_egress_possible(network: EgressNetwork) -> None:
    assert network.probe() is None


def test_environment_reaches_the_internet_unprivileged(pool: NetnsPool,
                                                       leases: list[NetworkNamespace]) -> None:
    namespace = _acquire(pool, leases)
    report = run_environment(namespace, connect=[[INTERNET_ADDRESS, REMOTE_PORT]])
    assert report["connect"] == {f"{INTERNET_ADDRESS}:{REMOTE_PORT}": "reached remote"}
    assert report["uid"] == 65534
    assert report["interfaces"] == ["eth0", "lo"]
    # The namespace belongs to the host's user namespace: no CAP_NET_ADMIN over it.
    assert report["may_configure_lo"] is False


def test_environment_cannot_reach_the_host(pool: NetnsPool, leases: list[NetworkNamespace],
                                           host_server: int, network: EgressNetwork) -> None:
    addresses = _host_ipv4_addresses()
    assert str(network.gateway) in addresses and "127.0.0.1" in addresses
    for address in addresses:  # each one is reachable from the host itself
        with socket.create_connection((address, host_server), timeout=5) as sock:
            assert sock.recv(16) == b"host\n"
    namespace = _acquire(pool, leases)
    report = run_environment(namespace, connect=[[a, host_server] for a in addresses])
    assert len(report["connect"]) == len(addresses)
    reached = {k: v for k, v in report["connect"].items() if _reached(v)}
    assert reached == {}, report


def test_environment_cannot_reach_link_local_or_the_hosts_networks(
        pool: NetnsPool, leases: list[NetworkNamespace]) -> None:
    for address in (LINK_LOCAL_ADDRESS, str(REMOTE_SIDE)):  # reachable from the host
        with socket.create_connection((address, REMOTE_PORT), timeout=5) as sock:
            assert sock.recv(16) == b"remote\n"
    namespace = _acquire(pool, leases)
    targets = [[LINK_LOCAL_ADDRESS, REMOTE_PORT], [str(REMOTE_SIDE), REMOTE_PORT],
               ["169.254.169.254", 80], [INTERNET_ADDRESS, REMOTE_PORT]]
    report = run_environment(namespace, connect=targets)["connect"]
    assert report[f"{INTERNET_ADDRESS}:{REMOTE_PORT}"] == "reached remote"
    assert report[f"{LINK_LOCAL_ADDRESS}:{REMOTE_PORT}"] == "timeout"
    assert report[f"{REMOTE_SIDE}:{REMOTE_PORT}"] == "timeout"
    assert not _reached(report["169.254.169.254:80"])


def test_environments_cannot_reach_each_other(pool: NetnsPool,
                                              leases: list[NetworkNamespace]) -> None:
    first, second = _acquire(pool, leases), _acquire(pool, leases)
    assert first.address != second.address
    port = 7000
    with serving_environment(second, [["0.0.0.0", port, "second"]]):
        # The server is up: the second environment reaches itself on its own address.
        own = run_environment(second, connect=[[str(second.address), port]])["connect"]
        assert own == {f"{second.address}:{port}": "reached second"}
        report = run_environment(first, connect=[[str(second.address), port]])["connect"]
        assert not _reached(report[f"{second.address}:{port}"]), report


def test_each_environment_has_its_own_loopback_for_the_runtime_api(
        pool: NetnsPool, leases: list[NetworkNamespace]) -> None:
    first, second = _acquire(pool, leases), _acquire(pool, leases)
    with serving_environment(first, [["127.0.0.1", 9001, "first"]]), \
            serving_environment(second, [["127.0.0.1", 9001, "second"]]):
        assert run_environment(first, connect=[["127.0.0.1", 9001]])["connect"] == \
            {"127.0.0.1:9001": "reached first"}
        assert run_environment(second, connect=[["127.0.0.1", 9001]])["connect"] == \
            {"127.0.0.1:9001": "reached second"}


def test_async_acquire_from_an_event_loop(network: EgressNetwork) -> None:
    pool = NetnsPool(network, size=0)  # nothing ready: every acquire waits on the worker
    pool.start()
    try:
        async def take_two() -> list[NetworkNamespace]:
            return list(await asyncio.gather(pool.acquire(), pool.acquire()))

        taken = asyncio.run(take_two())
        try:
            assert len({ns.address for ns in taken}) == 2
            assert pool.stats().leased == 2
        finally:
            for namespace in taken:
                pool.release(namespace)
    finally:
        pool.close()


def test_release_deletes_the_interfaces(pool: NetnsPool) -> None:
    namespace = pool.acquire_blocking(timeout=10)
    host_end = Path("/sys/class/net") / namespace.host_ifname
    assert host_end.exists()
    assert (host_end / "brport" / "isolated").read_text().strip() == "1"
    pool.release(namespace)
    pool.release(namespace)  # idempotent
    assert pool.settle(timeout=10)
    assert not host_end.exists()


def test_teardown_leaves_nothing_behind(remote: None) -> None:
    network = EgressNetwork(_config("d", (TAG + 1) % 250 + 1))
    _require_egress(network)
    forwarding = Path("/proc/sys/net/ipv4/ip_forward").read_text()
    pool = NetnsPool(network, size=2)
    leased: list[NetworkNamespace] = []
    try:
        network.setup()
        pool.start()
        leased.append(pool.acquire_blocking(timeout=10))  # still leased when the pool closes
    finally:
        pool.close()
        network.teardown()
        for namespace in leased:
            pool.release(namespace)
    network.teardown()  # idempotent
    leftovers = [p.name for p in Path("/sys/class/net").iterdir()
                 if p.name == network.bridge or p.name.startswith(f"{network.bridge}-")]
    assert leftovers == []
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True,
                            check=True).stdout
    assert network.config.table not in tables
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text() == forwarding


def test_kernel_accepts_a_ruleset_with_overlaps_and_nameservers(network: EgressNetwork) -> None:
    rules = EgressRules(
        table=network.config.table + "_check", bridge=network.bridge, subnet=network.subnet,
        blocked=(ipaddress.IPv4Network("10.0.0.0/8"), ipaddress.IPv4Network("192.0.2.0/24")),
        nameservers=(ipaddress.IPv4Address("10.255.255.53"),), guard_forwarding=True)
    done = subprocess.run(["nft", "--check", "-f", "-"], input=render_ruleset(rules),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# --- isolated mode ------------------------------------------------------------------------


def _interpreter(version: str) -> str | None:
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    for candidate in sorted(pyenv.glob(f"{version}.*/bin/python{version}"), reverse=True):
        return str(candidate)
    return None


@pytest.mark.parametrize("version", VERSIONS)
def test_isolated_environment_has_loopback_only(version: str, remote: None,
                                                host_server: int) -> None:
    python = _interpreter(version)
    if python is None:
        pytest.skip(f"python{version} is not installed")
    elsewhere = [[a, host_server] for a in _host_ipv4_addresses() if a != "127.0.0.1"]
    spec = {"isolated": True, "guest_dir": str(GUEST_DIR), "timeout": BLOCKED_TIMEOUT,
            "listen": [["127.0.0.1", 9001, "self"]],
            "connect": [["127.0.0.1", 9001], [INTERNET_ADDRESS, REMOTE_PORT], *elsewhere]}
    done = subprocess.run([python, "-I", "-S", "-c", ENVIRONMENT, json.dumps(spec)],
                          capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["interfaces"] == ["lo"]
    connect = report["connect"]
    assert connect.pop("127.0.0.1:9001") == "reached self"
    assert set(connect.values()) == {"ENETUNREACH"}, connect


def test_the_pool_keeps_up_with_a_burst_ahead_of_demand(network: EgressNetwork) -> None:
    pool = NetnsPool(network, size=2, max_ready=64)
    pool.start()
    taken: list[NetworkNamespace] = []
    try:
        taken += [pool.acquire_blocking(timeout=10) for _ in range(24)]
        # Demand of the last second is what the worker now keeps ready, unasked.
        wait_until(lambda: pool.stats().ready >= 24, "24 namespaces ready", timeout=10)
        waited = pool.stats().waited
        taken += [pool.acquire_blocking(timeout=10) for _ in range(24)]
        assert pool.stats().waited == waited  # the second burst found them all ready
    finally:
        for namespace in taken:
            pool.release(namespace)
        pool.close()


def test_the_pool_refuses_beyond_its_capacity_instead_of_waiting(remote: None) -> None:
    network = EgressNetwork(_config("c", (TAG + 2) % 250 + 1))
    small = EgressNetwork(EgressConfig(bridge=network.bridge,
                                       subnet=network.config.subnet.replace("/24", "/28"),
                                       table=network.config.table))
    _require_egress(small)
    pool = NetnsPool(small, size=0)
    taken: list[NetworkNamespace] = []
    try:
        small.setup()
        pool.start()
        assert pool.capacity == 13  # a /28 without its network, gateway and broadcast
        taken += [pool.acquire_blocking(timeout=10) for _ in range(pool.capacity)]
        started = time.monotonic()
        with pytest.raises(SandboxError, match="alive already"):
            pool.acquire_blocking(timeout=10)
        assert time.monotonic() - started < 5
        pool.release(taken.pop())
        taken.append(pool.acquire_blocking(timeout=10))  # one freed: one more
    finally:
        for namespace in taken:
            pool.release(namespace)
        pool.close()
        small.teardown()
