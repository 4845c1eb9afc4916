"""Socket buffers are memory outside MemorySize unless strato bounds them: a function opens
loopback connections (and UDP sockets) with 4 MB buffers and fills them without reading,
while the test watches the host's TCP and UDP memory (``/proc/net/sockstat``, global to the
host whatever the network namespace). The environment's cgroup bounds them at
``socket_memory_bytes(MemorySize)`` (``sandbox/cgroups.py``): its sends stop (EAGAIN) there.

The fallback tier runs with egress ``internet`` here: with egress ``none`` Landlock and the
seccomp filter keep its TCP off loopback and refuse UDP, which is no test of memory.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from strato.sandbox.cgroups import socket_memory_bytes
from tests.e2e.hostile import TIERS, TierServer, create, invoke, serve_tier, unique
from tests.support.waiting import wait_until

FLOOD = r'''
import socket, time

CHUNK = b"x" * 65536
BUFFER = 4 << 20


def send_until_blocked(sock, send):
    """Send until the kernel would block; the bytes it took."""
    sock.setblocking(False)
    taken = 0
    while True:
        try:
            taken += send(CHUNK)
        except BlockingIOError:
            return taken


def tcp(count, opened):
    listener = socket.create_server(("127.0.0.1", 0))
    opened.append(listener)
    queued = 0
    for _ in range(count):
        sender = socket.socket()
        sender.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, BUFFER)
        opened.append(sender)
        sender.connect(listener.getsockname())
        receiver, _ = listener.accept()
        receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, BUFFER)
        opened.append(receiver)
        queued += send_until_blocked(sender, sender.send)
    return queued


def udp(count, opened):
    sent = 0
    for _ in range(count):
        receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, BUFFER)
        receiver.bind(("127.0.0.1", 0))
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        opened += [receiver, sender]
        address = receiver.getsockname()
        for _ in range(2 * BUFFER // len(CHUNK)):
            sent += sender.sendto(CHUNK[:60000], address)
    return sent


def handler(event, context):
    opened = []
    try:
        queued = {"tcp": tcp, "udp": udp}[event["kind"]](event["count"], opened)
        time.sleep(event["hold"])  # the test reads the host's socket memory meanwhile
        return {"queued": queued}
    finally:
        for sock in opened:
            sock.close()
'''

MEMORY_MB = 256
#: What the kernel may charge past a group's limit: a socket whose send queue is empty always
#: gets one skb (``sk_forced_mem_schedule``), and the host's other sockets come and go.
SLACK = 16 << 20


@pytest.fixture(scope="module", params=TIERS)
def hostile(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[TierServer]:
    egress = "internet" if request.param == "fallback" else "none"
    with serve_tier(request.param, tmp_path_factory, egress=egress) as server:
        yield server


def _socket_memory() -> dict[str, int]:
    """The host's TCP and UDP memory in bytes (``/proc/net/sockstat`` counts pages)."""
    page = os.sysconf("SC_PAGE_SIZE")
    found = {}
    for line in Path("/proc/net/sockstat").read_text().splitlines():
        protocol, _, fields = line.partition(":")
        values = fields.split()
        if protocol in ("TCP", "UDP") and "mem" in values:
            found[protocol.lower()] = int(values[values.index("mem") + 1]) * page
    return found


class _Peak:
    """The most of one protocol's memory seen on the host while a ``with`` block runs."""

    def __init__(self, protocol: str) -> None:
        self.protocol = protocol
        self.most = _socket_memory()[protocol]
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch)

    def _watch(self) -> None:
        while not self._done.wait(0.01):
            self.most = max(self.most, _socket_memory()[self.protocol])

    def __enter__(self) -> _Peak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("kind", "count"), [("tcp", 24), ("udp", 24)])
def test_socket_buffers_are_bounded_by_the_environment(hostile: TierServer, kind: str,
                                                        count: int) -> None:
    """24 pairs of 4 MB buffers could hold some 400 MB of the host's memory (a 256 MB
    function held 1 GB that way, its own cgroup showing 3 MB); bounded, they hold no more
    than the environment's socket memory, and all of it is given back."""
    name = unique("flood")
    create(hostile.client, name, {"app.py": FLOOD}, MemorySize=MEMORY_MB, Timeout=30)
    bound = socket_memory_bytes(MEMORY_MB)
    before = _socket_memory()[kind]
    with _Peak(kind) as peak:
        response, payload = invoke(hostile.client, name, {"kind": kind, "count": count,
                                                          "hold": 1.0})
    if response.get("FunctionError"):
        # Stopped for its memory is the other acceptable end.
        assert payload["errorType"] == "Runtime.OutOfMemory", payload
    elif kind == "tcp":
        assert payload["queued"] <= bound + SLACK, (payload, bound)
    grown = peak.most - before
    assert grown <= bound + SLACK, f"the host's {kind} memory grew by {grown >> 20} MB"
    wait_until(lambda: _socket_memory()[kind] - before <= SLACK, timeout=10,
               what=f"the host's {kind} memory given back")
